//! `cargo xtask`: all of Tenon's automation, in Rust rather than shell.
//!
//! Run `cargo xtask help` for the list of tasks.

mod browser;
mod fuzz;
mod market;
mod plugins;
mod proto;
mod python;
mod release;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const HELP: &str = "\
cargo xtask <task>

Tasks:
  demo [DIR]      Tenon's main job: a host that builds, installs and runs the example
                  plugins on a fresh SQLite registry (in DIR, default target/demo)
  ci              what CI runs: format check, clippy (warnings denied), dependency
                  policy (cargo-deny: bans, licences, sources), release packaging
                  (`release check --no-verify`), then `test`
  deny            check the dependency policy in deny.toml (installs cargo-deny if missing)
  test            build what the tests need (the example plugins; for the admin page's
                  browser test, Debian's chromium and tests/browser's playwright-core;
                  for the Python process plugin, grpcio and its stubs from proto/ under
                  target/python-plugin), then run every test of the workspace
  build-plugins [--release|--debug] [--locked]
                  build the example and hostile plugins into target/plugins/<name>/
  fmt             format the whole tree
  market-serve [--listen ADDR]
                  a marketplace seeded with the example plugins: builds them, makes
                  a demo author key and the market's keys under target/market-demo
                  (reused when there), packs and signs the plugins, and runs
                  `tenon market serve` on SQLite (default 127.0.0.1:8470)
  fuzz [SECONDS] [TARGET]
                  fuzz with nightly cargo-fuzz, each target (or TARGET: `parse`, the
                  manifest parser; `handshake`, the process plugins' handshake line)
                  for SECONDS (default 60)
  proto           regenerate the process plugins' gRPC code from proto/ (protox)
  release plan [--json] [--write] [--no-semver-checks]
                  the next release of each publishable crate (from its changes
                  since its last tag), the publish order, tags and CHANGELOG section
  release check [--no-verify]
                  metadata, READMEs and `cargo package` of every publishable crate
  release publish [--dry-run]
                  publish the crates in dependency order and tag each
  help            this text
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    match task {
        "demo" => demo(rest),
        "ci" => ci(),
        "deny" => deny(),
        "test" => test(rest),
        "fmt" => cargo(&["fmt", "--all"]),
        "fuzz" => fuzz::fuzz(rest),
        "proto" => proto::proto(rest),
        "build-plugins" => plugins::build_plugins(rest),
        "market-serve" => market::market_serve(rest),
        "release" => release::release(rest),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => bail!("unknown task `{other}`\n\n{HELP}"),
    }
}

/// The repository root (the parent of `xtask/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_path_buf()
}

fn demo(extra: &[String]) -> Result<()> {
    step("demo host");
    let mut args = vec!["run", "--quiet", "--package", "tenon-demo", "--"];
    args.extend(extra.iter().map(String::as_str));
    cargo(&args)
}

fn ci() -> Result<()> {
    step("format check");
    cargo(&["fmt", "--all", "--", "--check"])?;
    plugins::fmt_check(&root())?;
    step("clippy");
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ])?;
    cargo(&plugins::clippy_args())?;
    deny()?;
    step("release packaging");
    release::release(&["check".to_owned(), "--no-verify".to_owned()])?;
    test(&[])
}

/// `cargo deny check bans licenses sources` (advisories need GitHub, which
/// CI machines cannot reach). Installs cargo-deny first when it is missing.
fn deny() -> Result<()> {
    step("dependency policy (cargo-deny)");
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let installed = Command::new(&program)
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
        eprintln!("cargo-deny is not installed; installing it from crates.io (once)");
        cargo(&["install", "cargo-deny", "--locked"])?;
    }
    cargo(&["deny", "check", "bans", "licenses", "sources"])
}

fn test(extra: &[String]) -> Result<()> {
    step("plugins");
    plugins::build_plugins(&[])?;
    step("plugin tests");
    cargo(&plugins::test_args())?;
    step("browser test set-up (chromium, playwright-core)");
    browser::setup(&root())?;
    step("Python process plugin set-up (grpcio, grpcio-tools, stubs from proto/)");
    python::setup(&root())?;
    step("tests");
    let mut args = vec!["test", "--workspace", "--all-features"];
    args.extend(extra.iter().map(String::as_str));
    cargo(&args)
}

fn step(name: &str) {
    eprintln!("\n==> {name}");
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    run(Command::new(cargo).args(args).current_dir(root()))
}

fn run(command: &mut Command) -> Result<()> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}
