//! How a command fails: the exit code and what is printed.
//!
//! Exit codes: 0 success; 1 the operation was refused or failed (an invalid
//! manifest, a conflict, a refused transition, missing config, permissions
//! not granted, an unknown plugin, a corrupt archive); 2 a usage, IO or
//! environment error (bad flags, an unreadable file, an unreachable
//! registry).

use std::process::ExitCode;

use owo_colors::OwoColorize;
use tenon_build::BuildError;
use tenon_engine::EngineError;
use tenon_marketplace::PackageError;

/// A command's failure, carrying its exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The operation was refused or failed (exit 1). The message may be empty
    /// when the command already printed everything (for example a JSON report).
    Operation(String),
    /// Bad usage or an IO error (exit 2).
    Usage(anyhow::Error),
    /// Whoever read the output stopped reading (`tenon events | head`):
    /// exit 0 quietly.
    Closed,
}

impl Failure {
    /// A usage error with this message.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::Usage(anyhow::Error::msg(message.into()))
    }

    /// The exit code.
    pub(crate) fn code(&self) -> u8 {
        match self {
            Self::Closed => 0,
            Self::Operation(_) => 1,
            Self::Usage(_) => 2,
        }
    }

    /// Prints the failure to stderr and returns the exit code.
    pub(crate) fn report(self) -> ExitCode {
        let code = self.code();
        let message = match self {
            Failure::Closed => String::new(),
            Failure::Operation(message) => message,
            Failure::Usage(error) => format!("{error:#}"),
        };
        if !message.is_empty() {
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
        if error.is_refusal() {
            Failure::Operation(error.to_string())
        } else {
            Failure::Usage(anyhow::Error::msg(error.to_string()))
        }
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
                Failure::Usage(anyhow::Error::msg(error.to_string()))
            }
            _ => Failure::Operation(error.to_string()),
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
            Failure::Usage(anyhow::Error::msg(error.to_string()))
        } else {
            Failure::Operation(error.to_string())
        }
    }
}

/// The result of a command.
pub(crate) type CommandResult = Result<(), Failure>;
