//! What the Python process plugin's test (`tests/process.rs`,
//! `examples/plugins/python-counter`) needs, under `target/python-plugin/`:
//! grpcio and grpcio-tools from PyPI (`pip install --target site`), the
//! Python modules grpcio-tools generates from `proto/` (in `stubs`), and the
//! interpreter's path (in `python`). Under `CI=true` a set-up that fails
//! fails the task; elsewhere it says why and the test skips itself.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::browser::under_ci;

/// What pip installs: grpcio for the plugin, grpcio-tools for the stubs.
const PACKAGES: [&str; 2] = ["grpcio", "grpcio-tools"];

/// Sets up `target/python-plugin/` (pip only when grpcio or grpcio-tools is
/// missing there; the stubs every time, from the current `proto/`).
pub(crate) fn setup(root: &Path) -> Result<()> {
    match install(root) {
        Ok(()) => Ok(()),
        Err(error) if !under_ci() => {
            eprintln!(
                "the Python process plugin's test will skip itself: {error:#} (under CI=true this fails)"
            );
            Ok(())
        }
        Err(error) => Err(error.context("setting up the Python process plugin's test")),
    }
}

/// The interpreter: `TENON_PYTHON`, else `python3.11`, else `python3`.
fn interpreter() -> Result<String> {
    let candidates: Vec<String> = match std::env::var("TENON_PYTHON") {
        Ok(python) => vec![python],
        Err(_) => vec!["python3.11".to_owned(), "python3".to_owned()],
    };
    for candidate in &candidates {
        // Its real path: the plugin starts with an empty environment, so a
        // shim that needs one (pyenv's) would not run there.
        let Ok(output) = Command::new(candidate)
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
        else {
            continue;
        };
        let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if output.status.success() && Path::new(&path).is_absolute() {
            return Ok(path);
        }
    }
    bail!(
        "no Python interpreter found (tried {})",
        candidates.join(", ")
    )
}

fn install(root: &Path) -> Result<()> {
    let dir = root.join("target").join("python-plugin");
    let site = dir.join("site");
    let stubs = dir.join("stubs");
    let python = interpreter()?;
    if !(site.join("grpc").is_dir() && site.join("grpc_tools").is_dir()) {
        eprintln!("installing {} into {}", PACKAGES.join(" "), site.display());
        let status = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-warn-script-location",
                "--only-binary",
                ":all:",
                "--upgrade",
                "--target",
            ])
            .arg(&site)
            .args(PACKAGES)
            .status()
            .with_context(|| format!("could not start {python} -m pip"))?;
        if !status.success() {
            bail!(
                "{python} -m pip install {} failed with {status}",
                PACKAGES.join(" ")
            );
        }
    }
    if stubs.exists() {
        fs::remove_dir_all(&stubs).with_context(|| format!("removing {}", stubs.display()))?;
    }
    fs::create_dir_all(&stubs).with_context(|| format!("creating {}", stubs.display()))?;
    // Each .proto from its own directory: the modules are then top-level
    // (`plugin_pb2`, `health_pb2`), and `grpc.health.v1` does not clash with
    // grpcio's own `grpc` package.
    let proto = root.join("proto");
    let status = Command::new(&python)
        .env("PYTHONPATH", &site)
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("-I{}", proto.join("tenon/plugin/v1").display()))
        .arg(format!("-I{}", proto.join("grpc/health/v1").display()))
        .arg(format!("--python_out={}", stubs.display()))
        .arg(format!("--grpc_python_out={}", stubs.display()))
        .arg(proto.join("tenon/plugin/v1/plugin.proto"))
        .arg(proto.join("grpc/health/v1/health.proto"))
        .status()
        .with_context(|| format!("could not start {python} -m grpc_tools.protoc"))?;
    if !status.success() {
        bail!("generating the Python stubs from proto/ failed with {status}");
    }
    fs::write(dir.join("python"), &python)
        .with_context(|| format!("writing {}", dir.join("python").display()))?;
    Ok(())
}
