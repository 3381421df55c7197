//! Running cargo: a clean environment for nested builds, `cargo metadata`,
//! and `cargo build` with machine-readable output.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;

use crate::{BuildError, Profile};

/// Variables an outer cargo (or a user's shell, for the outer build) sets
/// that would change or break a nested build for a WebAssembly target: host
/// flags (`-C target-cpu=native`), a redirected target directory, a forced
/// target, the outer build's jobserver, clippy's wrapper.
const CLEARED_VARS: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_BUILD_RUSTDOCFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_DEP_INFO_BASEDIR",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_TARGET_TMPDIR",
    "OUT_DIR",
    "__CARGO_FIX_PLZ",
];

/// Prefixes of variables cargo sets for the package it is building.
const CLEARED_PREFIXES: &[&str] = &["CARGO_PKG_", "CARGO_CFG_", "CARGO_FEATURE_"];

/// The cargo to run: `program`, else the cargo running us (`$CARGO`), else
/// `cargo` on the PATH.
fn program(program: Option<&Path>) -> OsString {
    match program {
        Some(program) => program.as_os_str().to_owned(),
        None => std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
    }
}

/// A cargo command to run in `dir`, also from inside another cargo command
/// (a test, a build script, xtask): `program`, else `$CARGO`, else `cargo`
/// on the PATH, with the variables an outer cargo sets that would change or
/// break the nested one removed (`RUSTFLAGS`, `CARGO_TARGET_DIR`,
/// `CARGO_BUILD_TARGET`, `CARGO_MAKEFLAGS`, the package's `CARGO_PKG_*`…).
pub fn cargo_command(program_path: Option<&Path>, dir: &Path) -> Command {
    let mut command = Command::new(program(program_path));
    command.current_dir(dir);
    for var in CLEARED_VARS {
        command.env_remove(var);
    }
    for (key, _) in std::env::vars_os() {
        if let Some(key) = key.to_str()
            && CLEARED_PREFIXES.iter().any(|p| key.starts_with(p))
        {
            command.env_remove(key);
        }
    }
    command
}

/// A cargo executable.
#[derive(Debug, Clone)]
pub(crate) struct Cargo {
    program: OsString,
}

impl Cargo {
    /// `program`, or the cargo running us (`$CARGO`), or `cargo` on the PATH.
    pub(crate) fn new(program_path: Option<&Path>) -> Self {
        Self {
            program: program(program_path),
        }
    }

    /// A cargo command in `dir`, cleaned for nesting.
    pub(crate) fn command(&self, dir: &Path) -> Command {
        cargo_command(Some(Path::new(&self.program)), dir)
    }

    fn run(&self, mut command: Command) -> Result<(String, Output), BuildError> {
        let shown = show(&command);
        let output = command
            .output()
            .map_err(|source| BuildError::CargoNotFound {
                program: self.program.to_string_lossy().into_owned(),
                source,
            })?;
        Ok((shown, output))
    }

    /// `cargo metadata --no-deps` of the workspace holding `manifest`.
    pub(crate) fn metadata(&self, manifest: &Path) -> Result<Metadata, BuildError> {
        let dir = manifest.parent().unwrap_or(Path::new("."));
        let mut command = self.command(dir);
        command
            .args([
                "metadata",
                "--no-deps",
                "--format-version",
                "1",
                "--color",
                "never",
            ])
            .arg("--manifest-path")
            .arg(manifest);
        let (shown, output) = self.run(command)?;
        if !output.status.success() {
            return Err(failure(shown, &output));
        }
        serde_json::from_slice(&output.stdout).map_err(|e| BuildError::CargoOutput {
            command: shown,
            message: format!("its JSON does not parse: {e}"),
        })
    }

    /// Builds `request.packages` of the workspace of `request.manifest` for
    /// one target, and returns the `.wasm` each produced (for the host's
    /// target, `None`: the executable of its binary target), keyed by the
    /// package's `Cargo.toml` path.
    pub(crate) fn build(
        &self,
        request: &BuildRequest<'_>,
    ) -> Result<HashMap<PathBuf, PathBuf>, BuildError> {
        let dir = request.manifest.parent().unwrap_or(Path::new("."));
        let mut command = self.command(dir);
        command
            .arg("build")
            .arg("--manifest-path")
            .arg(request.manifest);
        if let Some(target) = request.target {
            command.args(["--target", target]);
        }
        command
            .arg("--target-dir")
            .arg(request.target_dir)
            .args(["--message-format", "json-render-diagnostics"])
            .args(["--color", "never"]);
        if request.profile == Profile::Release {
            command.arg("--release");
        }
        if request.locked {
            command.arg("--locked");
        }
        if request.offline {
            command.arg("--offline");
        }
        for package in request.packages {
            command.args(["--package", package]);
        }
        let (shown, output) = self.run(command)?;
        if !output.status.success() {
            if let Some(target) = request.target
                && is_missing_target(&String::from_utf8_lossy(&output.stderr), target)
            {
                return Err(BuildError::MissingTarget { target });
            }
            return Err(failure(shown, &output));
        }
        let mut modules = HashMap::new();
        for line in output.stdout.split(|b| *b == b'\n') {
            if line.is_empty() || line[0] != b'{' {
                continue;
            }
            let message: Message =
                serde_json::from_slice(line).map_err(|e| BuildError::CargoOutput {
                    command: shown.clone(),
                    message: format!("a JSON message does not parse: {e}"),
                })?;
            if message.reason != "compiler-artifact" {
                continue;
            }
            let (Some(manifest), Some(target)) = (message.manifest_path, message.target) else {
                continue;
            };
            if request.target.is_none() {
                // A process plugin: its binary target's executable.
                if target.kind.iter().any(|k| k == "bin")
                    && let Some(executable) = message.executable
                {
                    modules.insert(manifest, executable);
                }
                continue;
            }
            if !target.crate_types.iter().any(|t| t == "cdylib") {
                continue;
            }
            if let Some(wasm) = message
                .filenames
                .into_iter()
                .find(|f| f.extension().is_some_and(|e| e == "wasm"))
            {
                modules.insert(manifest, wasm);
            }
        }
        Ok(modules)
    }
}

/// What [`Cargo::build`] builds.
#[derive(Debug)]
pub(crate) struct BuildRequest<'a> {
    /// A `Cargo.toml` of the workspace (or the package).
    pub(crate) manifest: &'a Path,
    /// The packages, by name.
    pub(crate) packages: &'a [String],
    /// The target triple; `None` for the host's.
    pub(crate) target: Option<&'static str>,
    /// The profile.
    pub(crate) profile: Profile,
    /// The target directory.
    pub(crate) target_dir: &'a Path,
    /// `--locked`.
    pub(crate) locked: bool,
    /// `--offline`.
    pub(crate) offline: bool,
}

/// Whether rustc's errors say that the standard library for `target` is
/// missing (the target is not installed).
fn is_missing_target(stderr: &str, target: &str) -> bool {
    stderr.contains("target may not be installed")
        || stderr.contains(&format!("rustup target add {target}"))
}

fn failure(command: String, output: &Output) -> BuildError {
    BuildError::Cargo {
        command,
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr)
            .trim_end()
            .to_owned(),
    }
}

fn show(command: &Command) -> String {
    let mut shown = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        shown.push(' ');
        shown.push_str(&arg.to_string_lossy());
    }
    shown
}

/// The part of `cargo metadata` we read.
#[derive(Debug, Deserialize)]
pub(crate) struct Metadata {
    pub(crate) packages: Vec<Package>,
    pub(crate) workspace_members: Vec<String>,
    pub(crate) target_directory: PathBuf,
    pub(crate) workspace_root: PathBuf,
}

/// A package of [`Metadata`].
#[derive(Debug, Deserialize)]
pub(crate) struct Package {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) manifest_path: PathBuf,
    pub(crate) targets: Vec<Target>,
}

impl Package {
    /// Whether it builds a `cdylib` (the only crate type that becomes a
    /// WebAssembly module or component).
    pub(crate) fn is_cdylib(&self) -> bool {
        self.targets
            .iter()
            .any(|t| t.crate_types.iter().any(|c| c == "cdylib"))
    }

    /// Whether it builds an executable (a process plugin).
    pub(crate) fn is_bin(&self) -> bool {
        self.targets
            .iter()
            .any(|t| t.kind.iter().any(|k| k == "bin"))
    }
}

/// A build target of a [`Package`].
#[derive(Debug, Deserialize)]
pub(crate) struct Target {
    pub(crate) crate_types: Vec<String>,
    #[serde(default)]
    pub(crate) kind: Vec<String>,
}

/// One line of `--message-format json`.
#[derive(Debug, Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    manifest_path: Option<PathBuf>,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    filenames: Vec<PathBuf>,
    #[serde(default)]
    executable: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_a_missing_target() {
        let rustc = "error[E0463]: can't find crate for `core`\n  |\n  = note: the `wasm32-wasip2` \
                     target may not be installed\n  = help: consider downloading the target with \
                     `rustup target add wasm32-wasip2`";
        assert!(is_missing_target(rustc, "wasm32-wasip2"));
        assert!(!is_missing_target(
            "error[E0308]: mismatched types",
            "wasm32-wasip2"
        ));
    }

    #[test]
    fn nested_builds_do_not_inherit_the_outer_build() {
        let command = Cargo::new(Some(Path::new("cargo"))).command(Path::new("."));
        let removed: Vec<_> = command
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(key, _)| key.to_string_lossy().into_owned())
            .collect();
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "CARGO_MAKEFLAGS",
        ] {
            assert!(removed.iter().any(|r| r == var), "{var} is not cleared");
        }
    }
}
