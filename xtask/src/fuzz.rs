//! `cargo xtask fuzz [SECONDS]`: runs the manifest parser's fuzz target
//! (`fuzz/`, cargo-fuzz and libFuzzer) with the nightly toolchain for a
//! bounded time, seeded with the manifest fixtures.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{root, run, step};

/// The default run time, in seconds.
const DEFAULT_SECONDS: u64 = 60;
/// The fuzz target.
const TARGET: &str = "parse";

pub(crate) fn fuzz(args: &[String]) -> Result<()> {
    let seconds = match args {
        [] => DEFAULT_SECONDS,
        [s] => s
            .parse()
            .with_context(|| format!("`{s}` is not a number of seconds"))?,
        _ => bail!("usage: cargo xtask fuzz [SECONDS]"),
    };
    let root = root();
    ensure_cargo_fuzz()?;
    step("seeding the corpus from the manifest fixtures");
    let corpus = root.join("fuzz/corpus").join(TARGET);
    seed(&root.join("crates/tenon-manifest/tests/fixtures"), &corpus)?;
    step(&format!("fuzzing `{TARGET}` for {seconds}s"));
    run(nightly()
        .current_dir(root.join("fuzz"))
        .args(["fuzz", "run", TARGET, "--"])
        .arg(format!("-max_total_time={seconds}"))
        .args(["-max_len=65536", "-rss_limit_mb=2048", "-timeout=10"]))
}

/// `cargo +nightly`, through rustup, ignoring the pinned toolchain of the
/// repository and whatever toolchain runs this task.
fn nightly() -> Command {
    let mut command = Command::new("cargo");
    command
        .arg("+nightly")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC");
    command
}

fn ensure_cargo_fuzz() -> Result<()> {
    let installed = nightly()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        step("installing cargo-fuzz");
        run(nightly().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// Copies each fixture into the corpus, behind the byte that selects its
/// format (0 TOML, 1 JSON, 2 YAML; see `fuzz/fuzz_targets/parse.rs`).
fn seed(fixtures: &Path, corpus: &Path) -> Result<()> {
    std::fs::create_dir_all(corpus).with_context(|| format!("creating {}", corpus.display()))?;
    for entry in
        std::fs::read_dir(fixtures).with_context(|| format!("reading {}", fixtures.display()))?
    {
        let path = entry?.path();
        let selector: u8 = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => 0,
            Some("json") => 1,
            Some("yaml" | "yml") => 2,
            _ => continue,
        };
        let mut data = vec![selector];
        data.extend(std::fs::read(&path)?);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        std::fs::write(corpus.join(format!("fixture-{name}")), data)?;
    }
    Ok(())
}
