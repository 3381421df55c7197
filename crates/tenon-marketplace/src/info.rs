//! What a package holds, as reported by [`pack`](crate::pack),
//! [`inspect`](crate::inspect) and the unpack functions.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use tenon_manifest::{Diagnostic, Manifest, PluginId, Version};

use crate::digest::Sha256Digest;
use crate::layout::FileKind;

/// The file extension of package archives.
pub const PACKAGE_EXTENSION: &str = "tenon";

/// A package's identity, manifest and files.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackageInfo {
    /// The sha256 of the archive's bytes: the package's identity.
    pub sha256: Sha256Digest,
    /// The archive's size in bytes (compressed).
    pub archive_size: u64,
    /// The validated manifest.
    pub manifest: Manifest,
    /// Where the manifest is in the package (`tenon.toml` …).
    pub manifest_path: String,
    /// Every file, in archive order (the manifest first in archives made by
    /// [`pack`](crate::pack), then the rest sorted by path).
    pub files: Vec<FileInfo>,
    /// The manifest's warnings (a missing license, an unknown hook …).
    pub warnings: Vec<Diagnostic>,
}

/// One file of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileInfo {
    /// Its path in the package, `/`-separated.
    pub path: String,
    /// What it is.
    pub kind: FileKind,
    /// Its size in bytes, uncompressed.
    pub size: u64,
    /// The sha256 of its content.
    pub sha256: Sha256Digest,
}

impl PackageInfo {
    /// The plugin's id.
    pub fn id(&self) -> &PluginId {
        &self.manifest.plugin.id
    }

    /// The plugin's version.
    pub fn version(&self) -> &Version {
        &self.manifest.plugin.version
    }

    /// The file at `path`, if the package has it.
    pub fn file(&self, path: &str) -> Option<&FileInfo> {
        self.files.iter().find(|f| f.path == path)
    }

    /// The WebAssembly module, if the plugin has one.
    pub fn module(&self) -> Option<&FileInfo> {
        self.files.iter().find(|f| f.kind == FileKind::Module)
    }

    /// The sum of the files' sizes.
    pub fn unpacked_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The conventional archive file name: `publisher.name-version.tenon`
    /// (a `.` cannot occur in either part of an id, so the name is
    /// unambiguous).
    pub fn file_name(&self) -> String {
        let id = self.id();
        format!(
            "{}.{}-{}.{PACKAGE_EXTENSION}",
            id.publisher(),
            id.name(),
            self.version()
        )
    }
}

/// A package unpacked into memory, for hosts that keep artifacts in a
/// registry rather than on disk.
#[derive(Clone, PartialEq)]
pub struct PackageContents {
    /// What it holds.
    pub info: PackageInfo,
    /// Each file's bytes, by path.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for PackageContents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes: BTreeMap<&str, usize> = self
            .files
            .iter()
            .map(|(path, bytes)| (path.as_str(), bytes.len()))
            .collect();
        f.debug_struct("PackageContents")
            .field("info", &self.info)
            .field("file_sizes", &sizes)
            .finish()
    }
}

impl PackageContents {
    /// The bytes of the file at `path`.
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// The manifest's source bytes.
    pub fn manifest_source(&self) -> &[u8] {
        self.get(&self.info.manifest_path).unwrap_or_default()
    }

    /// The WebAssembly module's bytes, if the plugin has one.
    pub fn module(&self) -> Option<&[u8]> {
        self.info.module().and_then(|m| self.get(&m.path))
    }
}

/// A package unpacked on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct UnpackedPackage {
    /// The directory holding it: `dest/publisher/name/version`.
    pub root: PathBuf,
    /// What it holds.
    pub info: PackageInfo,
}
