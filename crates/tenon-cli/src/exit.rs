//! How a command fails: the exit code and what is printed.
//!
//! Exit codes: 0 success; 1 the operation was refused or failed (an invalid
//! manifest, a conflict, a refused transition, missing config, permissions
//! not granted, an unknown plugin, a corrupt archive); 2 a usage, IO or
//! environment error (bad flags, an unreadable file, an unreachable
//! registry).

use std::process::ExitCode;

use owo_colors::OwoColorize;
use serde::Serialize;
use tenon_build::BuildError;
use tenon_engine::EngineError;
use tenon_marketplace::PackageError;

use crate::Format;

/// A command's failure, carrying its exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The operation was refused or failed (exit 1). The message may be empty
    /// when the command already printed everything (for example a JSON report).
    Operation(String),
    /// Bad usage or an IO error (exit 2).
    Usage(anyhow::Error),
    /// The engine refused or failed: its own code, exit 1 for a refusal and
    /// 2 for the environment.
    Engine(EngineError),
    /// A failure with a stable code of its own.
    Coded {
        /// The stable code (`unknown_function`, `registry_missing` …).
        code: &'static str,
        /// What to say.
        message: String,
        /// The exit status (1 or 2).
        exit: u8,
    },
    /// Whoever read the output stopped reading (`tenon events | head`):
    /// exit 0 quietly.
    Closed,
}

/// What `--format json` prints on stdout when a command fails.
#[derive(Serialize)]
struct ErrorJson<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    exit: u8,
    /// An invalid manifest's diagnostics (as `manifest validate` reports
    /// them).
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnostics: Option<&'a [tenon_manifest::Diagnostic]>,
}

impl Failure {
    /// A usage error with this message.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::Usage(anyhow::Error::msg(message.into()))
    }

    /// A refusal (exit 1) with a stable code.
    pub(crate) fn refused(code: &'static str, message: impl Into<String>) -> Self {
        Self::Coded {
            code,
            message: message.into(),
            exit: 1,
        }
    }

    /// A usage or environment error (exit 2) with a stable code.
    pub(crate) fn environment(code: &'static str, message: impl Into<String>) -> Self {
        Self::Coded {
            code,
            message: message.into(),
            exit: 2,
        }
    }

    /// The exit code.
    pub(crate) fn code(&self) -> u8 {
        match self {
            Self::Closed => 0,
            Self::Operation(_) => 1,
            Self::Usage(_) => 2,
            Self::Engine(error) => {
                if error.is_refusal() {
                    1
                } else {
                    2
                }
            }
            Self::Coded { exit, .. } => *exit,
        }
    }

    /// The stable name of the failure's kind, as JSON reports it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Operation(_) => "failed",
            Self::Usage(_) => "usage",
            Self::Engine(error) => error.code(),
            Self::Coded { code, .. } => code,
        }
    }

    /// Prints the failure (`error: …` on stderr; under `--format json` also
    /// `{"error": {"code", "message", "exit"}}` on stdout) and returns the
    /// exit code. An empty message prints nothing: the command printed its
    /// own report.
    pub(crate) fn report(self, format: Format) -> ExitCode {
        let code = self.code();
        let kind = self.kind();
        let mut diagnostics = None;
        let message = match self {
            Failure::Closed => String::new(),
            Failure::Operation(message) | Failure::Coded { message, .. } => message,
            Failure::Usage(error) => format!("{error:#}"),
            Failure::Engine(EngineError::InvalidManifest {
                path,
                diagnostics: found,
            }) => {
                let file = path
                    .as_ref()
                    .map_or_else(|| "the manifest".to_owned(), |p| p.display().to_string());
                if format == Format::Human {
                    for d in &found {
                        eprintln!("{}", crate::commands::manifest::human_line(&file, d));
                    }
                }
                let errors = found.iter().filter(|d| d.is_error()).count();
                diagnostics = Some(found);
                format!(
                    "invalid manifest {file}: {}{}",
                    crate::commands::plural(errors, "error"),
                    if format == Format::Human {
                        " (listed above; `tenon manifest validate FILE` checks it alone)"
                    } else {
                        ""
                    }
                )
            }
            Failure::Engine(error) => error.to_string(),
        };
        if !message.is_empty() {
            if format == Format::Json {
                let json = ErrorJson {
                    error: ErrorBody {
                        code: kind,
                        message: &message,
                        exit: code,
                        diagnostics: diagnostics.as_deref(),
                    },
                };
                if let Ok(text) = serde_json::to_string_pretty(&json) {
                    println!("{text}");
                }
            }
            if crate::output::stderr_colour() {
                eprintln!("{} {message}", "error:".red().bold());
            } else {
                eprintln!("error: {message}");
            }
        }
        ExitCode::from(code)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Usage(error)
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::Closed
        } else {
            Failure::Usage(error.into())
        }
    }
}

impl From<EngineError> for Failure {
    /// Refusals (the engine's own verdicts) exit 1; IO, registry and setup
    /// failures exit 2.
    fn from(error: EngineError) -> Self {
        Failure::Engine(error)
    }
}

impl From<BuildError> for Failure {
    /// What is wrong with the project or its code exits 1; what is wrong
    /// with the arguments or the machine (no such directory, no Rust target,
    /// no cargo) exits 2.
    fn from(error: BuildError) -> Self {
        match error {
            BuildError::Io { .. }
            | BuildError::NoCargoToml { .. }
            | BuildError::NoManifest { .. }
            | BuildError::MissingTarget { .. }
            | BuildError::CargoNotFound { .. }
            | BuildError::CargoOutput { .. }
            | BuildError::InvalidName { .. }
            | BuildError::DirectoryNotEmpty { .. } => {
                Failure::environment("build_environment", error.to_string())
            }
            _ => Failure::refused("build_failed", error.to_string()),
        }
    }
}

impl From<PackageError> for Failure {
    /// A package that cannot be made or read from its content exits 1; a
    /// file that cannot be read or written exits 2.
    fn from(error: PackageError) -> Self {
        if matches!(
            error,
            PackageError::Io { .. } | PackageError::NotADirectory { .. }
        ) {
            Failure::environment("io", error.to_string())
        } else {
            Failure::refused("package_refused", error.to_string())
        }
    }
}

/// The result of a command.
pub(crate) type CommandResult = Result<(), Failure>;
