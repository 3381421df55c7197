//! What the browser tests need (`crates/tenon-cli/tests/browser.rs`):
//! Debian's `chromium` and the `playwright-core` of the committed
//! `tests/browser/package-lock.json`. Under `CI=true` a set-up that fails
//! fails the task; elsewhere it says why and the test skips itself.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Where the tests expect the browser.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether this runs under CI (`CI=true`, as CI services set it).
pub(crate) fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Installs chromium (apt) when missing and playwright-core (npm ci).
pub(crate) fn setup(root: &Path) -> Result<()> {
    match install(root) {
        Ok(()) => Ok(()),
        Err(error) if !under_ci() => {
            eprintln!(
                "the browser tests will skip themselves: {error:#} (under CI=true this fails)"
            );
            Ok(())
        }
        Err(error) => Err(error.context("setting up the browser tests")),
    }
}

fn install(root: &Path) -> Result<()> {
    if !Path::new(CHROMIUM).exists() {
        eprintln!("{CHROMIUM} is missing; installing Debian's chromium (apt-get)");
        for args in [
            &["update"][..],
            &["install", "-y", "--no-install-recommends", "chromium"][..],
        ] {
            let status = Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .context("could not start apt-get (the browser tests need Debian's chromium)")?;
            if !status.success() {
                bail!("apt-get {} failed with {status}", args.join(" "));
            }
        }
        if !Path::new(CHROMIUM).exists() {
            bail!("apt-get installed chromium but {CHROMIUM} is not there");
        }
    }
    let dir = root.join("tests").join("browser");
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .status()
        .with_context(|| format!("could not start npm ci in {}", dir.display()))?;
    if !status.success() {
        bail!("npm ci in {} failed with {status}", dir.display());
    }
    Ok(())
}
