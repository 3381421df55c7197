//! How a command fails: the exit code and what is printed.

use std::process::ExitCode;

/// A command's failure, carrying its exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The operation was refused or failed (exit 1). The message may be empty
    /// when the command already printed everything (for example a JSON report).
    Operation(String),
    /// Bad usage or an IO error (exit 2).
    Usage(anyhow::Error),
}

impl Failure {
    /// Prints the failure to stderr and returns the exit code.
    pub(crate) fn report(self) -> ExitCode {
        match self {
            Failure::Operation(message) => {
                if !message.is_empty() {
                    eprintln!("error: {message}");
                }
                ExitCode::from(1)
            }
            Failure::Usage(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(2)
            }
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Usage(error)
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure::Usage(error.into())
    }
}

/// The result of a command.
pub(crate) type CommandResult = Result<(), Failure>;
