//! `cargo xtask build-plugins`: builds the example and hostile plugins of
//! `examples/plugins` into installable directories under `target/plugins/`.

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

/// `cargo fmt --check` of the examples workspace (it is not part of the
/// root workspace, so `cargo fmt --all` does not reach it).
pub(crate) fn fmt_check_args() -> [&'static str; 6] {
    [
        "fmt",
        "--manifest-path",
        EXAMPLES_MANIFEST,
        "--all",
        "--",
        "--check",
    ]
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
pub(crate) fn test_args() -> [&'static str; 4] {
    ["test", "--manifest-path", EXAMPLES_MANIFEST, "--workspace"]
}
