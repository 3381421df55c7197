//! What can go wrong building or scaffolding a plugin.

use std::fmt;
use std::path::PathBuf;

use tenon_manifest::{Diagnostic, RuntimeKind};

/// Why a plugin could not be built or scaffolded. Every variant names the
/// file or command concerned and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The directory has no `Cargo.toml`.
    #[error(
        "{} has no Cargo.toml: a plugin project is a Cargo package (create one with `tenon new`)",
        dir.display()
    )]
    NoCargoToml {
        /// The project directory.
        dir: PathBuf,
    },
    /// The directory has no manifest.
    #[error(
        "{} has no plugin manifest: write a tenon.toml (or tenon.json / tenon.yaml) beside Cargo.toml",
        dir.display()
    )]
    NoManifest {
        /// The project directory.
        dir: PathBuf,
    },
    /// The manifest is not valid.
    #[error("{} is not a valid manifest:\n{}", path.display(), Diagnostics(diagnostics))]
    InvalidManifest {
        /// The manifest file.
        path: PathBuf,
        /// Every problem found.
        diagnostics: Vec<Diagnostic>,
    },
    /// The manifest's runtime is not built by this crate (a native plugin is
    /// compiled into its host).
    #[error(
        "{}: runtime.kind = \"{kind}\" is not built by `tenon build`; a native plugin is compiled into its host",
        path.display()
    )]
    UnsupportedKind {
        /// The manifest file.
        path: PathBuf,
        /// Its runtime kind.
        kind: RuntimeKind,
    },
    /// The Rust target is not installed.
    #[error(
        "the Rust target `{target}` is not installed: run `rustup target add {target}` \
         (a rust-toolchain.toml listing it installs it automatically)"
    )]
    MissingTarget {
        /// The target triple.
        target: &'static str,
    },
    /// Cargo could not be started.
    #[error("could not run `{program}`: {source} (is Rust installed and cargo on the PATH?)")]
    CargoNotFound {
        /// The program that was tried.
        program: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Cargo ran and failed.
    #[error("`{command}` failed ({status}):\n{stderr}")]
    Cargo {
        /// The command line.
        command: String,
        /// How it ended.
        status: String,
        /// What it wrote to stderr (compiler errors included).
        stderr: String,
    },
    /// Cargo's output could not be understood.
    #[error("`{command}` printed something unexpected: {message}")]
    CargoOutput {
        /// The command line.
        command: String,
        /// What was wrong.
        message: String,
    },
    /// The build succeeded but produced no WebAssembly module.
    #[error(
        "cargo built `{package}` but produced no .wasm: its Cargo.toml needs `[lib] crate-type = [\"cdylib\"]`"
    )]
    MissingModule {
        /// The package.
        package: String,
    },
    /// The module is not the kind of WebAssembly the runtime needs.
    #[error("{}: {problem}", path.display())]
    WrongModule {
        /// The module.
        path: PathBuf,
        /// What is wrong, and the fix.
        problem: String,
    },
    /// A workspace has no plugin packages.
    #[error(
        "{} has no plugins: no workspace member has a tenon.toml beside its Cargo.toml",
        dir.display()
    )]
    NoPlugins {
        /// The workspace directory.
        dir: PathBuf,
    },
    /// The name for a new plugin is not usable.
    #[error("`{name}` cannot name a plugin: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why, and what would be right.
        reason: String,
    },
    /// The directory for a new plugin is in use.
    #[error(
        "{} already exists and is not empty: choose another name or directory",
        dir.display()
    )]
    DirectoryNotEmpty {
        /// The directory.
        dir: PathBuf,
    },
}

impl BuildError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// One diagnostic per line, indented.
struct Diagnostics<'a>(&'a [Diagnostic]);

impl fmt::Display for Diagnostics<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  {diagnostic}")?;
        }
        Ok(())
    }
}
