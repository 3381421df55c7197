//! `tenon`: the command line for Tenon's operators and plugin authors.
//!
//! Operators install, configure, grant, enable, upgrade, roll back and
//! diagnose plugins in a registry (SQLite by default, PostgreSQL for
//! fleets); plugin authors scaffold, build, pack and try plugins. Outside a
//! host application, `hooks` and `call` run the enabled plugins in a
//! built-in generic host.
//!
//! Exit codes: 0 success; 1 the operation failed (an invalid manifest, a
//! conflict, a refused transition, missing config, permissions not
//! granted, an unknown plugin, a corrupt archive); 2 a usage, IO or
//! environment error (bad flags, an unreadable file, an unreachable
//! registry). Every command that prints data takes `--format json`, whose
//! shapes are documented in docs/cli.md.

mod commands;
mod console;
mod exit;
mod output;
mod session;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands::{author, config, events, hooks, lifecycle, plugins};
use crate::exit::{CommandResult, Failure};
pub(crate) use crate::output::Format;
use crate::session::{Access, GlobalArgs};

/// Install, configure, run and diagnose Tenon plugins.
#[derive(Debug, Parser)]
#[command(
    name = "tenon",
    version,
    about,
    propagate_version = true,
    after_help = "Examples:\n  tenon install examples/plugins/moderator\n  tenon config set tenon-examples/moderator blocked_words '[\"secret\"]'\n  tenon grant tenon-examples/moderator --all && tenon enable tenon-examples/moderator\n  tenon hooks dispatch response.pre_deliver --data '{\"content\": \"a secret\"}'\n\nExit status: 0 success, 1 the operation failed or was refused, 2 usage, IO or environment error.\nJSON output (--format json) is documented in docs/cli.md."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new plugin project that builds and passes its own test.
    New(author::NewArgs),
    /// Build a plugin project to WebAssembly and assemble an installable
    /// plugin directory.
    Build(author::BuildArgs),
    /// Make a package archive (.tenon) of a plugin, optionally signed.
    Pack(author::PackArgs),
    /// Make an ed25519 key for signing packages (`pack --sign`), or a new
    /// key and its rotation statement signed by the old one
    /// (`--rotate-from`).
    Keygen(author::KeygenArgs),
    /// Edit and show the trust policy: trusted, publisher, marketplace and
    /// revoked keys, levels, rotations; and the publishers bound to keys.
    #[command(subcommand)]
    Trust(commands::trust::TrustCommand),
    /// What a package's signatures prove under the trust policy in force:
    /// signer keys and roles, trust level, its publisher's binding, or why
    /// it would be refused.
    Verify(commands::trust::VerifyArgs),
    /// Install a plugin from a directory, a project, a package archive, or
    /// by id from a marketplace with its dependencies.
    Install(plugins::InstallArgs),
    /// List (--check) or install the newer versions a marketplace has of
    /// the installed plugins.
    Update(commands::catalog::UpdateArgs),
    /// List the installed plugins.
    #[command(after_help = "Examples:
  tenon list
  tenon --tenant acme --format json list")]
    List,
    /// Show a plugin: manifest summary, state, versions, permissions
    /// declared and granted, config keys, last error.
    Info(plugins::InfoArgs),
    /// Read and change a plugin's config (secrets are never shown).
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Grant the permissions a plugin version declares (some or all).
    Grant(lifecycle::GrantArgs),
    /// Take permissions back; a running plugin that needs them stops.
    Revoke(lifecycle::RevokeArgs),
    /// Enable (activate) a plugin, its dependencies first.
    Enable(lifecycle::EnableArgs),
    /// Disable (deactivate) a plugin.
    Disable(lifecycle::DisableArgs),
    /// Install a new version of an installed plugin and make it current.
    Upgrade(plugins::UpgradeArgs),
    /// Go back to an earlier installed version.
    Rollback(lifecycle::RollbackArgs),
    /// Remove a plugin that is not active.
    Uninstall(lifecycle::UninstallArgs),
    /// See the host's hooks and their handlers, and dispatch a hook.
    #[command(subcommand)]
    Hooks(hooks::HooksCommand),
    /// Call a function an enabled plugin exports.
    Call(hooks::CallArgs),
    /// Show the event log (lifecycle changes, hook receipts, denials…).
    Events(events::EventsArgs),
    /// Delete old events from the event log (by age, by count).
    PruneEvents(events::PruneArgs),
    /// Show plugins' own log lines kept in the registry (`--follow` to tail).
    Logs(commands::logs::LogsArgs),
    /// Run a plugin directory under development, reloading it whenever its
    /// files change (the old code keeps running when the new one fails).
    Dev(commands::dev::DevArgs),
    /// Statistics per plugin from the stored hook receipts.
    Stats(events::StatsArgs),
    /// Check every plugin and the registry; exit 1 when something needs
    /// attention.
    #[command(after_help = "Examples:
  tenon doctor
  tenon --format json doctor")]
    Doctor,
    /// Validate, convert and describe plugin manifests.
    #[command(subcommand)]
    Manifest(commands::manifest::ManifestCommand),
    /// Choose plugin versions and a load order from an index, or explain why
    /// none exist.
    Resolve(commands::resolve::ResolveArgs),
    /// Serve the engine over HTTP: the admin API (/api/v1), events,
    /// metrics; callers need a token from `tenon token create`.
    Serve(commands::serve::ServeArgs),
    /// Make, list and revoke the bearer tokens of `tenon serve`.
    #[command(subcommand)]
    Token(commands::serve::TokenCommand),
    /// Run a marketplace server: make its keys, tokens, and serve it.
    #[command(subcommand)]
    Market(commands::market::MarketCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    init_logging(cli.global.verbose);
    let format = cli.global.format;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(format),
    }
}

/// Reports what clap refused: help and the version print as usual; a
/// mistyped subcommand gets only the close suggestions (the shared
/// did-you-mean rule), and `--format json` gets the error as JSON too.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !error.use_stderr() {
        return match error.print() {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(2),
        };
    }
    let mut text = error.to_string();
    if error.kind() == ErrorKind::InvalidSubcommand
        && let Some(ContextValue::String(typed)) = error.get(ContextKind::InvalidSubcommand)
    {
        let known: Vec<String> = match error.get(ContextKind::SuggestedSubcommand) {
            Some(ContextValue::Strings(known)) => known.clone(),
            Some(ContextValue::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        let close = tenon_types::similar(typed, known.iter().map(String::as_str));
        let mut lines: Vec<String> = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("tip: a similar subcommand"))
            .filter(|line| {
                !line
                    .trim_start()
                    .starts_with("tip: some similar subcommands")
            })
            .map(str::to_owned)
            .collect();
        let tip = match close.as_slice() {
            [] => None,
            [one] => Some(format!("  tip: a similar subcommand exists: '{one}'")),
            many => Some(format!(
                "  tip: some similar subcommands exist: {}",
                many.iter()
                    .map(|s| format!("'{s}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        if let Some(tip) = tip {
            lines.insert(1.min(lines.len()), String::new());
            lines.insert(2.min(lines.len()), tip);
        }
        text = lines.join("\n");
        while text.contains("\n\n\n") {
            text = text.replace("\n\n\n", "\n\n");
        }
        text.push('\n');
    }
    if json_asked() {
        let message = text.lines().next().unwrap_or_default();
        let message = message.strip_prefix("error: ").unwrap_or(message);
        let json = serde_json::json!({
            "error": { "code": "usage", "message": message, "exit": 2 }
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    }
    eprint!("{text}");
    ExitCode::from(2)
}

/// Whether the command line asks for `--format json` (read before clap
/// has parsed it, for reporting its refusal).
fn json_asked() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().enumerate().any(|(i, arg)| {
        arg == "--format=json"
            || (arg == "--format" && args.get(i + 1).is_some_and(|v| v == "json"))
    })
}

/// Log lines (the engine's warnings, plugin logs, the runtimes' logs) go
/// to stderr as `warning: …`, filtered by `TENON_LOG` (`warn` by default,
/// `info` with `-v`; `debug`, or per target), each line once (see
/// [`console`]).
fn init_logging(verbose: bool) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let asked = std::env::var("TENON_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let whole = verbose
        || asked
            .as_deref()
            .is_some_and(|v| v.contains("debug") || v.contains("trace"));
    let filter = match &asked {
        Some(text) => tracing_subscriber::EnvFilter::try_new(text)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        None if verbose => tracing_subscriber::EnvFilter::new("info"),
        None => tracing_subscriber::EnvFilter::new("warn"),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(console::Console { verbose: whole })
        .try_init();
}

/// What a command may do to its registry: only `install` makes a new one;
/// commands that only look create nothing (see [`Access`]).
fn access(command: &Command) -> Access {
    match command {
        Command::List
        | Command::Info(_)
        | Command::Stats(_)
        | Command::Doctor
        | Command::Events(_)
        | Command::Logs(_)
        | Command::Config(config::ConfigCommand::Get { .. })
        | Command::Hooks(hooks::HooksCommand::List) => Access::Read,
        Command::Config(_)
        | Command::Grant(_)
        | Command::Revoke(_)
        | Command::Enable(_)
        | Command::Disable(_)
        | Command::Upgrade(_)
        | Command::Rollback(_)
        | Command::Uninstall(_)
        | Command::Hooks(_)
        | Command::Call(_)
        | Command::PruneEvents(_) => Access::Write,
        _ => Access::Create,
    }
}

fn run(mut cli: Cli) -> CommandResult {
    cli.global.access = access(&cli.command);
    let global = &cli.global;
    let output = global.output();
    match cli.command {
        Command::New(args) => author::new(args, &output),
        Command::Build(args) => author::build(args, &output),
        Command::Pack(args) => author::pack(args, &output),
        Command::Keygen(args) => author::keygen(args, &output),
        Command::Trust(command) => block_on(commands::trust::run(command, global)),
        Command::Verify(args) => block_on(commands::trust::verify(args, global)),
        Command::Install(args) => block_on(plugins::install(args, global)),
        Command::Update(args) => block_on(commands::catalog::update(args, global)),
        Command::List => block_on(plugins::list(global)),
        Command::Info(args) => block_on(plugins::info(args, global)),
        Command::Config(command) => block_on(config::run(command, global)),
        Command::Grant(args) => block_on(lifecycle::grant(args, global)),
        Command::Revoke(args) => block_on(lifecycle::revoke(args, global)),
        Command::Enable(args) => block_on(lifecycle::enable(args, global)),
        Command::Disable(args) => block_on(lifecycle::disable(args, global)),
        Command::Upgrade(args) => block_on(plugins::upgrade(args, global)),
        Command::Rollback(args) => block_on(lifecycle::rollback(args, global)),
        Command::Uninstall(args) => block_on(lifecycle::uninstall(args, global)),
        Command::Hooks(command) => block_on(hooks::run(command, global)),
        Command::Call(args) => block_on(hooks::call(args, global)),
        Command::Events(args) => block_on(events::events(args, global)),
        Command::PruneEvents(args) => block_on(events::prune(args, global)),
        Command::Logs(args) => block_on(commands::logs::logs(args, global)),
        Command::Dev(args) => block_on(commands::dev::dev(args, global)),
        Command::Stats(args) => block_on(events::stats(args, global)),
        Command::Doctor => block_on(plugins::doctor(global)),
        Command::Manifest(command) => commands::manifest::run(command, global.format),
        Command::Resolve(args) => commands::resolve::run(args, global.format),
        Command::Serve(args) => block_on(commands::serve::serve(args, global)),
        Command::Token(command) => block_on(commands::serve::token(command, global)),
        Command::Market(command) => block_on(commands::market::run(command, &output)),
    }
}

/// Runs `future` on a multi-threaded runtime (plugins run on its workers).
fn block_on(future: impl Future<Output = CommandResult>) -> CommandResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(future);
    // Plugins' blocking work must not keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    result
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
