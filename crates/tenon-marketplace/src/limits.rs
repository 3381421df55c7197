//! Bounds on what a package may hold.

use serde::{Deserialize, Serialize};

/// Bounds enforced while reading an archive (and by [`pack`](crate::pack),
/// so that what it makes can be installed).
///
/// Sizes are counted while decompressing: a gzip bomb is stopped by the
/// counter after at most `max_total_bytes` (plus tar headers) of output,
/// never by running out of memory or disk.
///
/// Operators can set them from configuration (serde, every field optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnpackLimits {
    /// The largest archive, compressed, in bytes (default 64 MiB).
    pub max_archive_bytes: u64,
    /// The most entries (files and directories) an archive may hold
    /// (default 1024).
    pub max_entries: usize,
    /// The largest file, uncompressed, in bytes (default 64 MiB).
    pub max_entry_bytes: u64,
    /// The largest sum of all files, uncompressed, in bytes (default 128 MiB).
    pub max_total_bytes: u64,
    /// The largest manifest, in bytes (default 1 MiB).
    pub max_manifest_bytes: u64,
}

const MIB: u64 = 1 << 20;

impl Default for UnpackLimits {
    fn default() -> Self {
        Self {
            max_archive_bytes: 64 * MIB,
            max_entries: 1024,
            max_entry_bytes: 64 * MIB,
            max_total_bytes: 128 * MIB,
            max_manifest_bytes: MIB,
        }
    }
}

impl UnpackLimits {
    /// The most decompressed bytes a conforming archive can have under these
    /// limits: the files, a header and padding per entry, the end-of-archive
    /// marker and a tar record's worth of trailing zeros.
    pub(crate) fn max_stream_bytes(&self) -> u64 {
        let entries = u64::try_from(self.max_entries).unwrap_or(u64::MAX);
        self.max_total_bytes
            .saturating_add(entries.saturating_mul(1024))
            .saturating_add(20 * 512 + 1024)
    }
}
