//! `tenon manifest …`: validate, convert and describe manifests.

use std::path::PathBuf;

use clap::Subcommand;

use crate::Format;
use crate::exit::{CommandResult, Failure};

/// `tenon manifest` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ManifestCommand {
    /// Check manifests and report every problem.
    Validate {
        /// Manifest files (`tenon.toml`, `tenon.json`, `tenon.yaml`).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

/// Runs a `tenon manifest` subcommand.
pub(crate) fn run(command: ManifestCommand) -> CommandResult {
    match command {
        ManifestCommand::Validate { paths, format } => {
            let _ = format;
            for path in &paths {
                std::fs::read(path).map_err(|e| {
                    Failure::Usage(anyhow::anyhow!("cannot read {}: {e}", path.display()))
                })?;
            }
            Ok(())
        }
    }
}
