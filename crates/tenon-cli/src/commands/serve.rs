//! `tenon serve`: the engine over HTTP (the admin API, events, metrics);
//! `tenon token`: the bearer tokens that call it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use tenon_engine::{GrantRequest, PluginEngine, Role};
use tenon_http::HttpConfig;

use crate::exit::{CommandResult, Failure};
use crate::output::{Output, warn};
use crate::session::{Boot, GlobalArgs, parse_duration};

/// `tenon serve` arguments.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8480")]
    listen: SocketAddr,
    /// Example data first: install every example plugin (publisher
    /// `tenon-examples`) under `--plugins` not installed yet, grant what
    /// each declares, enable those whose config is complete, and make an
    /// admin token `demo` (printed once) unless one exists. Plugin
    /// directories are unsigned: run it with `tenon --dev`.
    #[arg(long)]
    demo: bool,
    /// Where `--demo` finds plugin directories (`cargo xtask build-plugins`
    /// builds the examples there).
    #[arg(long, value_name = "DIR", default_value = "target/plugins")]
    plugins: PathBuf,
    /// How long a request may take (the event stream excepted).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    request_timeout: std::time::Duration,
}

/// `tenon token` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a bearer token for `tenon serve`; it is printed once and only
    /// its hash is stored.
    Create(CreateArgs),
    /// List the tenant's tokens (names and roles, never secrets).
    List,
    /// Revoke a token by name.
    Revoke(RevokeArgs),
}

/// A role, as `--role` takes it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum RoleArg {
    /// Read plugins, events, stats, doctor, metrics.
    Viewer,
    /// Also enable, disable, configure, dispatch hooks.
    Operator,
    /// Also install, upgrade, roll back, uninstall, grant, revoke.
    Admin,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Operator => Role::Operator,
            RoleArg::Admin => Role::Admin,
        }
    }
}

/// `tenon token create` arguments.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Who holds it: recorded with every change it makes (letters, digits,
    /// '-', '_', '.', '@').
    name: String,
    /// What it may do.
    #[arg(long, value_enum)]
    role: RoleArg,
}

/// `tenon token revoke` arguments.
#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// The token's name.
    name: String,
}

/// Runs `tenon token …`.
pub(crate) async fn token(command: TokenCommand, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    global
        .with_engine(Boot::No, async |engine| match command {
            TokenCommand::Create(args) => {
                let made = engine.create_token(&args.name, args.role.into()).await?;
                if output.is_json() {
                    return output.json(&made);
                }
                output.text(&format!("{}\n", made.secret))
            }
            TokenCommand::List => {
                let tokens = engine.tokens().await?;
                if output.is_json() {
                    return output.json(&json!({ "tokens": tokens }));
                }
                if tokens.is_empty() {
                    return output
                        .text("no tokens (make one with `tenon token create NAME --role ROLE`)");
                }
                let mut table = output.table(["NAME", "ROLE", "CREATED"]);
                for t in &tokens {
                    table.add_row([
                        output.cell(&t.name),
                        output.cell(t.role),
                        output.cell(super::timestamp(t.created_at)),
                    ]);
                }
                output.text(&output.render(&mut table))
            }
            TokenCommand::Revoke(args) => {
                if !engine.revoke_token(&args.name).await? {
                    return Err(Failure::Operation(format!(
                        "no token named `{}` in tenant {}",
                        args.name.escape_default(),
                        engine.tenant()
                    )));
                }
                if output.is_json() {
                    return output.json(&json!({ "revoked": args.name }));
                }
                output.text(&format!("{} {}\n", output.good("Revoked"), args.name))
            }
        })
        .await
}

/// The publisher of the example plugins `--demo` installs (the examples'
/// build directory also holds the hostile test plugins).
const DEMO_PUBLISHER: &str = "tenon-examples";

/// `--demo`: installs, grants and enables the plugins under `dir`; the
/// lines to print.
async fn demo(engine: &PluginEngine, dir: &std::path::Path) -> Result<Vec<String>, Failure> {
    if !dir.is_dir() {
        return Err(Failure::usage(format!(
            "--demo installs the plugin directories under {}, which does not exist; build the examples first with `cargo xtask build-plugins`",
            dir.display()
        )));
    }
    let (found, problems) = engine.discover(dir).await?;
    for (path, why) in problems {
        warn(&format!("skipped {}: {why}", path.display()));
    }
    let mut lines = Vec::new();
    for plugin in found {
        if plugin.installed.is_some() || plugin.id.publisher() != DEMO_PUBLISHER {
            continue;
        }
        let report = engine.install(plugin.source.clone()).await?;
        engine
            .grant(&report.id, GrantRequest::all("tenon serve --demo"))
            .await?;
        match engine.enable(&report.id).await {
            Ok(_) => lines.push(format!(
                "installed and enabled {} {}",
                report.id, report.version
            )),
            Err(why) => lines.push(format!(
                "installed {} {} (not enabled: {why})",
                report.id, report.version
            )),
        }
    }
    let has_demo = engine.tokens().await?.iter().any(|t| t.name == "demo");
    if !has_demo {
        let made = engine.create_token("demo", Role::Admin).await?;
        lines.push(format!("admin token `demo` (shown once): {}", made.secret));
    }
    Ok(lines)
}

/// Runs `tenon serve`.
pub(crate) async fn serve(args: ServeArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let handle = tenon_engine::prometheus::install().map_err(|e| Failure::usage(e.to_string()))?;
    let metrics: tenon_http::MetricsRenderer = Arc::new(move || handle.render());
    let engine = global.engine(Boot::Plugins).await?;
    let result = run(&engine, args, &output, metrics).await;
    engine.shutdown().await;
    result
}

async fn run(
    engine: &PluginEngine,
    args: ServeArgs,
    output: &Output,
    metrics: tenon_http::MetricsRenderer,
) -> CommandResult {
    let demo_lines = if args.demo {
        demo(engine, &args.plugins).await?
    } else {
        Vec::new()
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener.local_addr()?;
    if output.is_json() {
        output.json_line(&json!({"listening": format!("http://{addr}"), "demo": demo_lines}))?;
    } else {
        for line in &demo_lines {
            output.text(&format!("{line}\n"))?;
        }
        output.text(&format!(
            "listening on http://{addr} (API: /api/v1, OpenAPI: /api/v1/openapi.json)\n"
        ))?;
    }
    let config = HttpConfig {
        request_timeout: args.request_timeout,
        metrics: Some(metrics),
        ..HttpConfig::default()
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    tenon_http::serve(engine.clone(), config, listener, shutdown)
        .await
        .map_err(|e| Failure::usage(format!("the server stopped: {e}")))
}
