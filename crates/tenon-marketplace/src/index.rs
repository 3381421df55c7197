//! The sparse index: one file per plugin (`index/<publisher>/<name>`), one
//! JSON line per version, in publishing order. A line never changes once
//! written, except its `yanked` flag.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tenon_manifest::{Dependency, EngineRequirement, PluginId, RuntimeKind, Version};
use time::OffsetDateTime;

use crate::digest::Sha256Digest;
use crate::info::PackageInfo;
use crate::sign::SignatureEntry;

/// The largest index file read, in bytes.
pub const MAX_INDEX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// The path of a plugin's index file, relative to the index root (and its
/// name in the targets metadata).
pub fn index_path(id: &PluginId) -> String {
    format!("index/{}/{}", id.publisher(), id.name())
}

/// One version of a plugin, as the index lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexEntry {
    /// The plugin.
    pub id: PluginId,
    /// The version.
    pub version: Version,
    /// Its display name.
    pub name: String,
    /// Its one-line description.
    #[serde(default)]
    pub description: String,
    /// Its dependencies, as the manifest declares them.
    #[serde(default)]
    pub dependencies: BTreeMap<PluginId, Dependency>,
    /// The plugin API, host versions and host features it needs.
    pub engine: EngineRequirement,
    /// How it runs.
    pub runtime: RuntimeKind,
    /// The sha256 of the package archive.
    pub sha256: Sha256Digest,
    /// The archive's size in bytes.
    pub size: u64,
    /// The package's signatures (author, and the marketplace's).
    pub signatures: Vec<SignatureEntry>,
    /// Whether it was withdrawn (resolvers skip it unless locked to it).
    #[serde(default)]
    pub yanked: bool,
    /// When it was published.
    #[serde(with = "time::serde::rfc3339")]
    pub published_at: OffsetDateTime,
}

impl IndexEntry {
    /// The line for a package the marketplace accepted.
    pub fn for_package(
        info: &PackageInfo,
        signatures: Vec<SignatureEntry>,
        published_at: OffsetDateTime,
    ) -> Self {
        let manifest = &info.manifest;
        Self {
            id: manifest.plugin.id.clone(),
            version: manifest.plugin.version.clone(),
            name: manifest.plugin.name.clone(),
            description: manifest.plugin.description.clone(),
            dependencies: manifest.dependencies.clone(),
            engine: manifest.engine.clone(),
            runtime: manifest.runtime.kind,
            sha256: info.sha256,
            size: info.archive_size,
            signatures,
            yanked: false,
            published_at,
        }
    }

    /// The line's JSON, without a newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("index entries always serialize")
    }
}

/// Why an index file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The file is bigger than [`MAX_INDEX_FILE_BYTES`].
    #[error("the index file of {id} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The plugin it was fetched for.
        id: PluginId,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A line does not parse.
    #[error("line {line} of the index file of {id} is invalid: {message}")]
    Line {
        /// The plugin it was fetched for.
        id: PluginId,
        /// 1-based.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A line names another plugin, or repeats a version.
    #[error("line {line} of the index file of {id} {problem}")]
    Inconsistent {
        /// The plugin it was fetched for.
        id: PluginId,
        /// 1-based.
        line: usize,
        /// What is wrong.
        problem: String,
    },
}

/// Parses the index file of `id`: every line must be an entry of `id`, each
/// version once.
pub fn parse_index_file(id: &PluginId, bytes: &[u8]) -> Result<Vec<IndexEntry>, IndexError> {
    if bytes.len() as u64 > MAX_INDEX_FILE_BYTES {
        return Err(IndexError::TooLarge {
            id: id.clone(),
            size: bytes.len() as u64,
            limit: MAX_INDEX_FILE_BYTES,
        });
    }
    let mut entries: Vec<IndexEntry> = Vec::new();
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line_no = n + 1;
        let entry: IndexEntry = serde_json::from_slice(line).map_err(|e| IndexError::Line {
            id: id.clone(),
            line: line_no,
            message: e.to_string(),
        })?;
        let problem = if entry.id != *id {
            Some(format!("lists {}", entry.id))
        } else if entries.iter().any(|e| e.version == entry.version) {
            Some(format!("repeats version {}", entry.version))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(IndexError::Inconsistent {
                id: id.clone(),
                line: line_no,
                problem,
            });
        }
        entries.push(entry);
    }
    Ok(entries)
}
