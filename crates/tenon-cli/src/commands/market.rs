//! `tenon market`: run a marketplace server (`init`, `rotate-root`,
//! `token`, `serve`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde_json::json;
use tenon_market_server::{
    HttpLimits, Market, MarketConfig, MarketError, MarketKeys, Scope, TrustedProxy, encode_upload,
};
use tenon_marketplace::SignatureFile;
use time::OffsetDateTime;

use crate::exit::{CommandResult, Failure};
use crate::output::Output;

/// `tenon market` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum MarketCommand {
    /// Create a marketplace's keys: offline root keys (a threshold of them
    /// signs a root), the online key and `root.json`.
    Init(InitArgs),
    /// Replace the root with the next version: new root keys, signed by a
    /// threshold of the current root keys and by the new ones, so that
    /// clients trusting the current root follow it. Restart the server to
    /// serve it.
    RotateRoot(RotateRootArgs),
    /// Create an account (if new) and an API token for it; the token is
    /// printed once.
    Token(TokenArgs),
    /// Serve the marketplace over HTTP until interrupted.
    Serve(ServeArgs),
}

/// Where a marketplace keeps its keys and database.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// The directory of `root.json` and `online.key` (made by `init`).
    #[arg(long, value_name = "DIR", default_value = "market-keys")]
    keys: PathBuf,
    /// The database: a SQLite file (created on first use) or a
    /// `postgres://` URL (its `options=-c search_path=…` picks a schema).
    #[arg(long, value_name = "PATH|URL", default_value = "market.db")]
    db: String,
}

/// `tenon market init` arguments.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Where to write the keys and `root.json`.
    #[arg(long, value_name = "DIR", default_value = "market-keys")]
    keys: PathBuf,
    /// How many root keys to make.
    #[arg(long, default_value_t = 3)]
    root_keys: usize,
    /// How many root keys must sign a root.
    #[arg(long, default_value_t = 2)]
    threshold: u32,
}

/// `tenon market rotate-root` arguments.
#[derive(Debug, Args)]
pub(crate) struct RotateRootArgs {
    /// The directory of `root.json` (made by `init`).
    #[arg(long, value_name = "DIR", default_value = "market-keys")]
    keys: PathBuf,
    /// A current root key file; give as many as the current root's
    /// threshold.
    #[arg(long = "root-key", value_name = "FILE", required = true)]
    old_keys: Vec<PathBuf>,
    /// How many new root keys to make.
    #[arg(long, default_value_t = 3)]
    root_keys: usize,
    /// How many new root keys must sign the next root.
    #[arg(long, default_value_t = 2)]
    threshold: u32,
}

/// `tenon market token` arguments.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The account (lowercase letters, digits, '-').
    account: String,
    /// What the token may do: publish, yank, owners, admin (repeat or
    /// separate with commas).
    #[arg(long = "scope", value_delimiter = ',', required = true)]
    scopes: Vec<String>,
}

/// `tenon market serve` arguments.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8470")]
    listen: SocketAddr,
    /// Publish these signed packages (`.tenon`, with `<package>.sig`
    /// beside it) before serving, as the account `seed`; versions already
    /// published are skipped.
    #[arg(long, value_name = "PACKAGE")]
    seed: Vec<PathBuf>,
    /// A proxy in front of the server (an address or a network such as
    /// `10.0.0.0/8`) whose `X-Forwarded-For` names the client, for the
    /// per-client limits and download counts; repeatable. Without it, the
    /// client is the connection's peer.
    #[arg(long = "trusted-proxy", value_name = "ADDR[/PREFIX]")]
    trusted_proxies: Vec<TrustedProxy>,
}

pub(crate) async fn run(command: MarketCommand, output: &Output) -> CommandResult {
    match command {
        MarketCommand::Init(args) => init(args, output),
        MarketCommand::RotateRoot(args) => rotate_root(args, output),
        MarketCommand::Token(args) => token(args, output).await,
        MarketCommand::Serve(args) => serve(args, output).await,
    }
}

fn failure(error: MarketError) -> Failure {
    if error.status() >= 500 {
        Failure::usage(error.to_string())
    } else {
        Failure::Operation(error.to_string())
    }
}

fn paths(p: &[PathBuf]) -> Vec<String> {
    p.iter().map(|p| p.display().to_string()).collect()
}

fn rotate_root(args: RotateRootArgs, output: &Output) -> CommandResult {
    let mut old_keys = Vec::new();
    for path in &args.old_keys {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("cannot read `{}`: {e}", path.display())))?;
        let key = tenon_marketplace::SigningKey::from_base64(&text)
            .map_err(|e| Failure::usage(format!("`{}` is not a root key: {e}", path.display())))?;
        old_keys.push(key);
    }
    let report = tenon_market_server::keys::rotate_root(
        &args.keys,
        &old_keys,
        args.root_keys,
        args.threshold,
        OffsetDateTime::now_utc(),
    )
    .map_err(failure)?;
    if output.is_json() {
        return output.json(&json!({
            "version": report.version,
            "root": report.root.display().to_string(),
            "root_keys": paths(&report.root_keys),
        }));
    }
    output.text(&format!(
        "{} root version {} to {}\nnew root keys (move them offline): {}\nrestart `tenon market serve` to serve it\n",
        output.good("Wrote"),
        report.version,
        report.root.display(),
        paths(&report.root_keys).join(", "),
    ))
}

fn init(args: InitArgs, output: &Output) -> CommandResult {
    let report = tenon_market_server::init(
        &args.keys,
        args.root_keys,
        args.threshold,
        OffsetDateTime::now_utc(),
    )
    .map_err(failure)?;
    if output.is_json() {
        return output.json(&json!({
            "root": report.root.display().to_string(),
            "root_keys": paths(&report.root_keys),
            "online_key": report.online_key.display().to_string(),
        }));
    }
    output.text(&format!(
        "{} {}\nroot keys (move them offline): {}\nonline key (the server reads it): {}\n",
        output.good("Wrote"),
        report.root.display(),
        paths(&report.root_keys).join(", "),
        report.online_key.display()
    ))
}

async fn open(store: &StoreArgs) -> Result<Market, Failure> {
    let keys = MarketKeys::load(&store.keys, OffsetDateTime::now_utc()).map_err(failure)?;
    Market::open(&store.db, keys, MarketConfig::default())
        .await
        .map_err(failure)
}

async fn token(args: TokenArgs, output: &Output) -> CommandResult {
    let scopes = args
        .scopes
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(failure)?;
    let market = open(&args.store).await?;
    let token = market
        .create_token(&args.account, &scopes)
        .await
        .map_err(failure)?;
    if output.is_json() {
        return output.json(&json!({"account": args.account, "token": token}));
    }
    output.text(&format!("{token}\n"))
}

/// What seeding did: the packages published (`id version`), and those whose
/// version was published already (by path), skipped so that serving again
/// with the same seeds works.
#[derive(Default)]
struct Seeded {
    published: Vec<String>,
    skipped: Vec<String>,
}

async fn seed(market: &Market, packages: &[PathBuf]) -> Result<Seeded, Failure> {
    let who = market
        .account("seed", &[Scope::Publish])
        .await
        .map_err(failure)?;
    let mut seeded = Seeded::default();
    for path in packages {
        let read = |p: &Path| {
            std::fs::read(p)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", p.display())))
        };
        let archive = read(path)?;
        let signatures = read(&SignatureFile::path_for(path))?;
        match market
            .publish(&who, &encode_upload(&signatures, &archive))
            .await
        {
            Ok(entry) => seeded
                .published
                .push(format!("{} {}", entry.id, entry.version)),
            Err(MarketError::Conflict(_)) => seeded.skipped.push(path.display().to_string()),
            Err(e) => {
                return Err(Failure::Operation(format!(
                    "cannot seed {}: {e}",
                    path.display()
                )));
            }
        }
    }
    Ok(seeded)
}

async fn serve(args: ServeArgs, output: &Output) -> CommandResult {
    let market = Arc::new(open(&args.store).await?);
    let seeded = seed(&market, &args.seed).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::usage(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener.local_addr()?;
    if output.is_json() {
        output.json_line(&json!({
            "listening": format!("http://{addr}"),
            "seeded": seeded.published,
            "already_published": seeded.skipped,
        }))?;
    } else {
        for line in &seeded.published {
            output.text(&format!("seeded {line}\n"))?;
        }
        for line in &seeded.skipped {
            output.text(&format!("already published {line}\n"))?;
        }
        output.text(&format!("listening on http://{addr}\n"))?;
    }
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let limits = HttpLimits {
        trusted_proxies: args.trusted_proxies,
        ..HttpLimits::default()
    };
    tenon_market_server::serve(market, limits, listener, shutdown)
        .await
        .map_err(|e| Failure::usage(format!("the server stopped: {e}")))
}
