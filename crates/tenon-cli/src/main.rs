//! `tenon`: the command line for Tenon's operators and plugin authors.
//!
//! Exit codes: 0 success; 1 the operation failed (an invalid manifest, a
//! conflict, a refused transition); 2 a usage or IO error.

mod commands;
mod exit;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Install, configure, run and diagnose Tenon plugins.
#[derive(Debug, Parser)]
#[command(name = "tenon", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output format of commands that print data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum Format {
    /// Text for people.
    #[default]
    Human,
    /// Stable JSON for programs.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate, convert and describe plugin manifests.
    #[command(subcommand)]
    Manifest(commands::manifest::ManifestCommand),
    /// Choose plugin versions and a load order from an index, or explain why
    /// none exist.
    Resolve(commands::resolve::ResolveArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Manifest(command) => commands::manifest::run(command),
        Command::Resolve(args) => commands::resolve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
