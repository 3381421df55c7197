//! What a package may hold, and what each file is.
//!
//! ```text
//! tenon.toml | .json | .yaml | .yml       exactly one manifest, at the root
//! <runtime.module>                       the WebAssembly module it names (component, extism)
//! <runtime.command>                      the executable it names (process)
//! assets/**                              anything the plugin ships beside its code
//! README.md, CHANGELOG.md, LICENSE*      documentation, at the root
//! ```
//!
//! Nothing else: no sources, no build output other than the named module, no
//! dot-files picked up by accident.

use std::fmt;

use serde::{Deserialize, Serialize};
use tenon_manifest::{Manifest, RuntimeKind};

/// The directory whose whole content a package may carry.
pub const ASSETS_DIR: &str = "assets";

/// The manifest file names a package root may hold (exactly one of them).
pub const MANIFEST_FILES: [&str; 4] = ["tenon.toml", "tenon.json", "tenon.yaml", "tenon.yml"];

/// What a file in a package is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// The manifest.
    Manifest,
    /// The WebAssembly module the manifest names (`runtime.module`).
    Module,
    /// The executable a process plugin's manifest names (`runtime.command`).
    Command,
    /// A file under `assets/`.
    Asset,
    /// `README.md`.
    Readme,
    /// `CHANGELOG.md`.
    Changelog,
    /// `LICENSE`, `LICENSE-MIT`, `LICENSE.txt` …
    License,
}

impl FileKind {
    /// The lowercase name used in JSON and messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Manifest => "manifest",
            Self::Module => "module",
            Self::Command => "command",
            Self::Asset => "asset",
            Self::Readme => "readme",
            Self::Changelog => "changelog",
            Self::License => "license",
        }
    }

    /// The unix mode the file gets when packed or unpacked.
    pub(crate) const fn mode(self) -> u32 {
        match self {
            Self::Command => 0o755,
            _ => 0o644,
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `path` is one of the manifest file names.
pub(crate) fn is_manifest_name(path: &str) -> bool {
    MANIFEST_FILES.contains(&path)
}

/// The files a manifest names, with what they are, in manifest order.
pub(crate) fn named_files(manifest: &Manifest) -> Vec<(&str, FileKind)> {
    let runtime = &manifest.runtime;
    let mut named = Vec::new();
    if runtime.kind.is_wasm()
        && let Some(module) = runtime.module.as_deref()
    {
        named.push((module, FileKind::Module));
    }
    if runtime.kind == RuntimeKind::Process
        && let Some(command) = runtime.command.as_deref()
    {
        named.push((command, FileKind::Command));
    }
    named
}

/// A root-level documentation file's kind, from its name.
pub(crate) fn doc_kind(name: &str) -> Option<FileKind> {
    match name {
        "README.md" => Some(FileKind::Readme),
        "CHANGELOG.md" => Some(FileKind::Changelog),
        _ if name.starts_with("LICENSE") => Some(FileKind::License),
        _ => None,
    }
}

/// What a (checked) path is in a package whose manifest is `manifest_path`
/// and names `named`; `None` when the layout does not allow it.
pub(crate) fn classify(
    path: &str,
    manifest_path: &str,
    named: &[(&str, FileKind)],
) -> Option<FileKind> {
    if path == manifest_path {
        return Some(FileKind::Manifest);
    }
    if let Some((_, kind)) = named.iter().find(|(p, _)| *p == path) {
        return Some(*kind);
    }
    if path
        .strip_prefix(ASSETS_DIR)
        .is_some_and(|rest| rest.starts_with('/'))
    {
        return Some(FileKind::Asset);
    }
    if path.contains('/') {
        return None;
    }
    doc_kind(path)
}

/// Whether a directory entry is allowed: `assets` and what is below it, and
/// the directories holding a named file.
pub(crate) fn allows_dir(path: &str, named: &[(&str, FileKind)]) -> bool {
    path == ASSETS_DIR
        || path
            .strip_prefix(ASSETS_DIR)
            .is_some_and(|rest| rest.starts_with('/'))
        || named
            .iter()
            .any(|(file, _)| crate::path::ancestors(file).any(|dir| dir == path))
}

/// A human list of what the layout allows, for error messages.
pub(crate) const LAYOUT_SUMMARY: &str = "the manifest, the files it names (runtime.module or runtime.command), assets/…, README.md, CHANGELOG.md and LICENSE*";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let named = [("target/wasm32-wasip2/release/x.wasm", FileKind::Module)];
        let check = |path: &str, expected: Option<FileKind>| {
            assert_eq!(classify(path, "tenon.toml", &named), expected, "{path}");
        };
        check("tenon.toml", Some(FileKind::Manifest));
        check("tenon.json", None);
        check(
            "target/wasm32-wasip2/release/x.wasm",
            Some(FileKind::Module),
        );
        check("target/wasm32-wasip2/release/y.wasm", None);
        check("assets/a/b.png", Some(FileKind::Asset));
        check("assets", None);
        check("assetsx/a", None);
        check("README.md", Some(FileKind::Readme));
        check("docs/README.md", None);
        check("readme.md", None);
        check("CHANGELOG.md", Some(FileKind::Changelog));
        check("LICENSE", Some(FileKind::License));
        check("LICENSE-APACHE", Some(FileKind::License));
        check("src/lib.rs", None);
        check("Cargo.toml", None);

        assert!(allows_dir("assets", &named));
        assert!(allows_dir("assets/a", &named));
        assert!(allows_dir("target", &named));
        assert!(allows_dir("target/wasm32-wasip2", &named));
        assert!(!allows_dir("src", &named));
        assert!(!allows_dir("target/debug", &named));
    }
}
