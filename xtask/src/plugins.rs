//! `cargo xtask build-plugins`: builds the example and hostile plugins of
//! `examples/plugins` into installable directories under `target/plugins/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use tenon_build::{Profile, build_workspace, examples_build_options, examples_dir};

/// The options of the task, in its help line's words.
pub(crate) const USAGE: &str = "build-plugins [--release|--debug] [--locked]";

/// Builds every plugin of the examples workspace (release by default, as the
/// tests use them) and lists where each landed.
pub(crate) fn build_plugins(args: &[String]) -> Result<()> {
    let mut options = examples_build_options();
    for arg in args {
        match arg.as_str() {
            "--release" => options.profile = Profile::Release,
            "--debug" => options.profile = Profile::Debug,
            "--locked" => options.locked = true,
            other => bail!("unknown option `{other}`: cargo xtask {USAGE}"),
        }
    }
    let dir = examples_dir();
    let built = build_workspace(&dir, &options)
        .with_context(|| format!("building the plugins of {}", dir.display()))?;
    let name_width = built.keys().map(String::len).max().unwrap_or(0);
    let id_width = built.values().map(|p| p.id().len()).max().unwrap_or(0);
    for (name, plugin) in &built {
        eprintln!(
            "  {name:<name_width$}  {:<id_width$}  {}",
            plugin.id(),
            plugin.dir.display()
        );
    }
    Ok(())
}

/// The examples workspace, relative to the repository root.
const EXAMPLES_MANIFEST: &str = "examples/plugins/Cargo.toml";

/// Checks the formatting of every Rust file of the examples workspace.
///
/// `cargo fmt --all` would also reach the crates the plugins depend on by
/// path (the root workspace's), and without `--all` cargo fmt cannot format
/// a virtual workspace: so rustfmt checks the files directly.
pub(crate) fn fmt_check(root: &Path) -> Result<()> {
    let mut files = Vec::new();
    rust_files(&root.join("examples").join("plugins"), &mut files)?;
    files.sort();
    let status = Command::new("rustfmt")
        .args(["--edition", "2024", "--check"])
        .args(&files)
        .status()
        .context("could not start rustfmt")?;
    if !status.success() {
        bail!("the examples are not formatted: run `cargo fmt` in examples/plugins ({status})");
    }
    Ok(())
}

/// The `.rs` files under `dir`, outside `target` directories.
fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, files)?;
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// `cargo clippy` of the examples workspace on the host target, warnings
/// denied.
pub(crate) fn clippy_args() -> [&'static str; 8] {
    [
        "clippy",
        "--manifest-path",
        EXAMPLES_MANIFEST,
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]
}

/// The plugins' own tests: each runs its plugin under tenon-pdk's mock host.
/// Extism plugins (`extism-*`, `hostile-extism-*`) are core modules whose
/// imports exist only inside an Extism host: their test binaries cannot link
/// on the host target, and the sandbox's tests run them instead.
pub(crate) fn test_args() -> [&'static str; 8] {
    [
        "test",
        "--manifest-path",
        EXAMPLES_MANIFEST,
        "--workspace",
        "--exclude",
        "extism-*",
        "--exclude",
        "hostile-extism-*",
    ]
}
