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

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::engine::EngineInfo;

const MAGIC: &[u8; 8] = b"TENONCW1";
const HEADER: usize = MAGIC.len() + 32;

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSource {
    /// Already compiled in this process (another load of the same module).
    Memory,
    /// Deserialized from the artifact cache on disk.
    Disk,
    /// Compiled (and written to the disk cache, when there is one).
    Compiled,
    /// Compiled because the cached artifact was corrupt or foreign; the
    /// cache file was replaced.
    Recompiled,
}

/// The disk cache; `None` directory means compile every time.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: Option<PathBuf>,
}

impl DiskCache {
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        let dir = dir.and_then(|dir| match prepare_dir(&dir) {
            Ok(()) => Some(dir),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "the artifact cache is disabled");
                None
            }
        });
        Self { dir }
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
            match read_artifact(engine, path) {
                Ok(Some(component)) => return Ok((component, LoadSource::Disk)),
                Ok(None) => {}
                Err(problem) => {
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
            && let Err(e) = write_artifact(&component, path)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the artifact cache");
        }
        Ok((component, source))
    }
}

#[cfg(unix)]
fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "group or others may write to it (mode {:o}); make it 0700",
                mode & 0o777
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

/// `Ok(None)` when there is no cached file; `Err` when there is one that
/// cannot be trusted.
fn read_artifact(engine: &EngineInfo, path: &Path) -> Result<Option<Component>, String> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
        return Err("it is not a Tenon artifact".to_owned());
    }
    let (checksum, payload) = bytes[MAGIC.len()..].split_at(32);
    if Sha256::digest(payload).as_slice() != checksum {
        return Err("its checksum does not match its content".to_owned());
    }
    deserialize(engine, payload).map(Some)
}

/// Turns a verified payload back into a component.
#[allow(unsafe_code)]
fn deserialize(engine: &EngineInfo, payload: &[u8]) -> Result<Component, String> {
    // SAFETY: `Component::deserialize` trusts its input to be compiled code
    // that wasmtime produced. The payload comes only from this cache, whose
    // directory is the host's own (created 0700, refused when others can
    // write), under a name keyed by the module's digest and the engine's
    // fingerprint, and its SHA-256 was just checked against the one written
    // with it. Deserializing from memory (not `deserialize_file`) leaves no
    // window for the file to change between the check and the load.
    // wasmtime itself rejects artifacts of another version or configuration.
    unsafe { Component::deserialize(&engine.engine, payload) }
        .map_err(|e| format!("wasmtime refused it: {e}"))
}

fn write_artifact(component: &Component, path: &Path) -> Result<(), String> {
    let payload = component.serialize().map_err(|e| e.to_string())?;
    let dir = path.parent().ok_or("the cache path has no directory")?;
    prepare_dir(dir).map_err(|e| e.to_string())?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| e.to_string())?;
    file.write_all(MAGIC).map_err(|e| e.to_string())?;
    file.write_all(&Sha256::digest(&payload))
        .map_err(|e| e.to_string())?;
    file.write_all(&payload).map_err(|e| e.to_string())?;
    file.as_file().sync_all().map_err(|e| e.to_string())?;
    file.persist(path).map_err(|e| e.to_string())?;
    Ok(())
}
