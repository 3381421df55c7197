//! The compiled-artifact cache on disk.
//!
//! Layout: `<cache_dir>/<engine fingerprint>/<module sha256>.cwasm`, where
//! the fingerprint digests wasmtime's precompile compatibility hash (its
//! version and every setting that affects code), the wasmtime version and
//! Tenon's file format. A file is `MAGIC`, the SHA-256 of the payload, then
//! the payload (`Component::serialize`). Files are written to a temporary
//! file in the same directory and renamed into place, so readers never see
//! a partial file. A file whose magic or checksum is wrong, or that wasmtime
//! refuses, is recompiled and replaced, never trusted.
//!
//! The checksum detects corruption and foreign files; it is not a signature.
//! The cache directory must be the host's own: it is created `0700`, and a
//! directory that group or others can write is refused (the disk cache is
//! then skipped).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasmtime::component::Component;

use super::engine::EngineInfo;

/// Version 2: authenticated (version 1 carried a plain SHA-256).
const MAGIC: &[u8; 8] = b"TENONCW2";
const MAC_LEN: usize = 32;
const HEADER: usize = MAGIC.len() + MAC_LEN;
/// The cache key's size, in bytes.
const KEY_LEN: usize = 32;
/// The key file's name inside the cache directory, by default.
pub(crate) const KEY_FILE: &str = "cache.key";

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSource {
    /// Already compiled in this process (another load of the same module).
    Memory,
    /// Deserialized from the artifact cache on disk.
    Disk,
    /// Compiled (and written to the disk cache, when there is one).
    Compiled,
    /// Compiled because the cached artifact was forged, foreign or corrupt
    /// (its MAC did not verify) or wasmtime refused it; it was never
    /// deserialized, and the cache file was replaced.
    Recompiled,
}

/// The disk cache; `None` directory means compile every time.
pub(crate) struct DiskCache {
    dir: Option<PathBuf>,
    key: [u8; KEY_LEN],
    rejected: AtomicU64,
}

impl std::fmt::Debug for DiskCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskCache")
            .field("dir", &self.dir)
            .field("rejected", &self.rejected)
            .finish_non_exhaustive()
    }
}

impl DiskCache {
    /// The cache in `dir`, authenticated with the key in `key_file`
    /// (default `dir/cache.key`).
    pub(crate) fn new(dir: Option<PathBuf>, key_file: Option<PathBuf>) -> Self {
        let opened = dir.and_then(|dir| {
            let key_file = key_file.unwrap_or_else(|| dir.join(KEY_FILE));
            match crate::private::private_dir(&dir).and_then(|()| cache_key(&key_file)) {
                Ok(key) => Some((dir, key)),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "the artifact cache is disabled");
                    None
                }
            }
        });
        let (dir, key) = match opened {
            Some((dir, key)) => (Some(dir), key),
            None => (None, [0; KEY_LEN]),
        };
        Self {
            dir,
            key,
            rejected: AtomicU64::new(0),
        }
    }

    /// Cached entries refused since the runtime started (forged, foreign,
    /// corrupt, or refused by wasmtime): each was recompiled instead.
    pub(crate) fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The MAC of an entry for the module `sha256` on `engine`.
    fn mac(&self, engine: &EngineInfo, sha256: &[u8; 32], payload: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes a key of any size");
        mac.update(engine.fingerprint.as_bytes());
        mac.update(&[0]);
        mac.update(sha256);
        mac.update(payload);
        mac
    }

    fn path(&self, engine: &EngineInfo, sha256: &[u8; 32]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(
            dir.join(&engine.fingerprint)
                .join(format!("{}.cwasm", hex::encode(sha256))),
        )
    }

    /// The component for `module` (whose digest is `sha256`), from the disk
    /// cache or compiled. Blocking: call it off the async executor.
    pub(crate) fn load(
        &self,
        engine: &EngineInfo,
        sha256: &[u8; 32],
        module: &[u8],
    ) -> Result<(Component, LoadSource), String> {
        let path = self.path(engine, sha256);
        let mut source = LoadSource::Compiled;
        if let Some(path) = &path {
            match self.read_artifact(engine, sha256, path) {
                Ok(Some(component)) => return Ok((component, LoadSource::Disk)),
                Ok(None) => {}
                Err(problem) => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        path = %path.display(),
                        problem = %problem,
                        "cached artifact rejected; recompiling"
                    );
                    source = LoadSource::Recompiled;
                }
            }
        }
        let component = Component::new(&engine.engine, module).map_err(|e| format!("{e:#}"))?;
        if let Some(path) = &path
            && let Err(e) = self.write_artifact(engine, sha256, &component, path)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the artifact cache");
        }
        Ok((component, source))
    }
}

impl DiskCache {
    /// `Ok(None)` when there is no cached file; `Err` when there is one
    /// that cannot be trusted.
    fn read_artifact(
        &self,
        engine: &EngineInfo,
        sha256: &[u8; 32],
        path: &Path,
    ) -> Result<Option<Component>, String> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read it: {e}")),
        };
        if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
            return Err("it is not an authenticated Tenon artifact".to_owned());
        }
        let (tag, payload) = bytes[MAGIC.len()..].split_at(MAC_LEN);
        self.mac(engine, sha256, payload)
            .verify_slice(tag)
            .map_err(|_| {
                "its MAC does not verify (forged, foreign, corrupt or written under another key)"
                    .to_owned()
            })?;
        deserialize(engine, payload).map(Some)
    }

    fn write_artifact(
        &self,
        engine: &EngineInfo,
        sha256: &[u8; 32],
        component: &Component,
        path: &Path,
    ) -> Result<(), String> {
        let payload = component.serialize().map_err(|e| e.to_string())?;
        let tag = self.mac(engine, sha256, &payload).finalize().into_bytes();
        let dir = path.parent().ok_or("the cache path has no directory")?;
        crate::private::private_dir(dir).map_err(|e| e.to_string())?;
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| e.to_string())?;
        file.write_all(MAGIC).map_err(|e| e.to_string())?;
        file.write_all(&tag).map_err(|e| e.to_string())?;
        file.write_all(&payload).map_err(|e| e.to_string())?;
        file.as_file().sync_all().map_err(|e| e.to_string())?;
        file.persist(path).map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// The cache key in `path`, created (32 random bytes, `0600`) when missing
/// or of the wrong size.
fn cache_key(path: &Path) -> std::io::Result<[u8; KEY_LEN]> {
    match fs::read(path) {
        Ok(bytes) if bytes.len() == KEY_LEN => {
            let mut key = [0; KEY_LEN];
            key.copy_from_slice(&bytes);
            return Ok(key);
        }
        Ok(_) => {
            tracing::warn!(path = %path.display(), "the cache key has the wrong size; replacing it")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut key = [0; KEY_LEN];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::private::private_dir(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(&key)?;
    file.as_file().sync_all()?;
    // Never replace a key another process created meanwhile: that one is
    // the key.
    match file.persist_noclobber(path) {
        Ok(_) => Ok(key),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => cache_key(path),
        Err(e) => Err(e.error),
    }
}

/// Turns a verified payload back into a component.
#[allow(unsafe_code)]
fn deserialize(engine: &EngineInfo, payload: &[u8]) -> Result<Component, String> {
    // SAFETY: `Component::deserialize` trusts its input to be compiled code
    // that wasmtime produced. The payload comes only from this cache, whose
    // directory is the host's own (created 0700, refused when others can
    // write), and its MAC under the host's cache key, over the engine's
    // fingerprint, the module's digest and the payload, was just verified:
    // this host wrote it, for this module and this engine. Deserializing from memory (not `deserialize_file`) leaves no
    // window for the file to change between the check and the load.
    // wasmtime itself rejects artifacts of another version or configuration.
    unsafe { Component::deserialize(&engine.engine, payload) }
        .map_err(|e| format!("wasmtime refused it: {e}"))
}
