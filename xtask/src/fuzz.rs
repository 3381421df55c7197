//! `cargo xtask fuzz [SECONDS] [TARGET]`: runs the fuzz targets (`fuzz/`,
//! cargo-fuzz and libFuzzer) with the nightly toolchain for a bounded time
//! each: `parse` (the manifest parser, seeded with the manifest fixtures)
//! and `handshake` (the process plugins' handshake line, seeded with valid
//! and broken lines).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{root, run, step};

/// The default run time, in seconds.
const DEFAULT_SECONDS: u64 = 60;
/// The fuzz targets.
const TARGETS: [&str; 2] = ["parse", "handshake"];

/// Handshake lines the `handshake` target starts from.
const HANDSHAKE_SEEDS: [&str; 5] = [
    "1|1|unix|/tmp/tenon-process/plugin.sock|grpc\n",
    "1|1|unix|/tmp/p.sock|grpc|\r\n",
    "1|1|tcp|127.0.0.1:1234|grpc\n",
    "2|9|unix|relative|netrpc|cert\n",
    "hello from a plugin that prints garbage\n",
];

pub(crate) fn fuzz(args: &[String]) -> Result<()> {
    let usage = "usage: cargo xtask fuzz [SECONDS] [parse|handshake]";
    let (seconds, targets): (u64, Vec<&str>) = match args {
        [] => (DEFAULT_SECONDS, TARGETS.to_vec()),
        [s] => (seconds(s)?, TARGETS.to_vec()),
        [s, t] if TARGETS.contains(&t.as_str()) => (seconds(s)?, vec![t.as_str()]),
        _ => bail!("{usage}"),
    };
    let root = root();
    ensure_cargo_fuzz()?;
    for target in targets {
        let corpus = root.join("fuzz/corpus").join(target);
        if target == "parse" {
            step("seeding the corpus from the manifest fixtures");
            seed(&root.join("crates/tenon-manifest/tests/fixtures"), &corpus)?;
        } else {
            step("seeding the corpus with handshake lines");
            std::fs::create_dir_all(&corpus)
                .with_context(|| format!("creating {}", corpus.display()))?;
            for (i, line) in HANDSHAKE_SEEDS.iter().enumerate() {
                std::fs::write(corpus.join(format!("seed-{i}")), line)?;
            }
        }
        step(&format!("fuzzing `{target}` for {seconds}s"));
        run(nightly()
            .current_dir(root.join("fuzz"))
            .args(["fuzz", "run", target, "--"])
            .arg(format!("-max_total_time={seconds}"))
            .args(["-max_len=65536", "-rss_limit_mb=2048", "-timeout=10"]))?;
    }
    Ok(())
}

fn seconds(s: &str) -> Result<u64> {
    s.parse()
        .with_context(|| format!("`{s}` is not a number of seconds"))
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
