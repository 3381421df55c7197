//! The directories `permissions.filesystem` grants, opened so that nothing
//! a plugin does inside them can lead a later instance outside its data
//! directory.
//!
//! Runtimes preopen directories by a host path, for every new instance, and
//! the OS follows symlinks on the way. A plugin that can write a directory
//! can put a symlink where a granted directory was (the nested-grant
//! escape). So each grant is opened here once per load, component by
//! component from a handle on the data directory, refusing any component
//! that is a symlink or not a directory (`openat` with `O_NOFOLLOW`: with
//! only plain components this resolves exactly as `openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`). Runtimes then open the
//! directory through the handle's own name (`/proc/self/fd/N` on Linux,
//! `/dev/fd/N` on macOS), which names the opened directory itself and is
//! never resolved again; the handle lives as long as the
//! [`GrantedDirectory`].
//!
//! Nested grants are flattened: a grant at or beneath a read-write grant is
//! covered by it and not opened on its own (a read-only grant inside a
//! writable one never protected anything, and the plugin could replace it).
//! A grant beneath read-only grants only keeps its own directory, which the
//! plugin cannot replace.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use tenon_manifest::FsMode;

use crate::error::SandboxError;
use crate::runtime::LoadRequest;

/// A directory granted by `permissions.filesystem`, opened beneath the
/// plugin's data directory.
#[derive(Debug, Clone)]
pub struct GrantedDirectory {
    /// The path a runtime opens: the name of the handle held here, never a
    /// path resolved through the data directory again. Valid while this
    /// value (or a clone) lives.
    pub host: PathBuf,
    /// Where the guest sees it: `/` followed by the manifest path (`data`
    /// is `/data`; relative paths such as `data/x` reach it too).
    pub guest: String,
    /// Read only, or read and write.
    pub mode: FsMode,
    /// The directory relative to the data directory.
    pub relative: PathBuf,
    /// Kept open: `host` names it.
    _handle: Arc<handle::Handle>,
}

/// One grant, checked and normalised.
struct Grant {
    parts: Vec<OsString>,
    mode: FsMode,
}

/// The directories a plugin may reach, for every runtime that preopens
/// directories: each `permissions.filesystem` path (relative, never
/// climbing out with `..`, checked again here) under
/// [`LoadRequest::data_dir`], nested grants flattened, each created when
/// missing and opened without following a symlink. Nothing at all when the
/// request has no data directory.
pub fn granted_directories(request: &LoadRequest) -> Result<Vec<GrantedDirectory>, SandboxError> {
    let plugin = request.manifest.plugin.id.as_str();
    let Some(root) = &request.data_dir else {
        return Ok(Vec::new());
    };
    let mut grants: Vec<Grant> = Vec::new();
    for grant in &request.caller.permissions.filesystem {
        let mut parts = Vec::new();
        for part in Path::new(&grant.path).components() {
            match part {
                Component::Normal(name) => parts.push(name.to_owned()),
                Component::CurDir => {}
                _ => {
                    return Err(SandboxError::Unsupported {
                        plugin: plugin.to_owned(),
                        message: format!(
                            "permissions.filesystem path `{}` must be relative and stay inside the data directory",
                            grant.path
                        ),
                    });
                }
            }
        }
        match grants.iter_mut().find(|g| g.parts == parts) {
            Some(same) if grant.mode == FsMode::ReadWrite => same.mode = FsMode::ReadWrite,
            Some(_) => {}
            None => grants.push(Grant {
                parts,
                mode: grant.mode,
            }),
        }
    }
    let flat: Vec<&Grant> = grants
        .iter()
        .filter(|g| {
            !grants.iter().any(|outer| {
                outer.mode == FsMode::ReadWrite
                    && outer.parts.len() < g.parts.len()
                    && g.parts.starts_with(&outer.parts)
            })
        })
        .collect();
    if flat.is_empty() {
        return Ok(Vec::new());
    }
    let failure = |relative: &Path, message: String| SandboxError::Filesystem {
        plugin: plugin.to_owned(),
        path: relative.display().to_string(),
        message,
    };
    let base = handle::Handle::open_root(root).map_err(|e| {
        failure(
            Path::new("."),
            format!("cannot open the data directory {}: {e}", root.display()),
        )
    })?;
    flat.into_iter()
        .map(|grant| {
            let relative: PathBuf = grant.parts.iter().collect();
            let handle = base
                .open_beneath(&grant.parts)
                .map_err(|e| failure(&relative, e))?;
            let guest = format!(
                "/{}",
                grant
                    .parts
                    .iter()
                    .map(|p| p.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/")
            );
            Ok(GrantedDirectory {
                host: handle.name(),
                guest,
                mode: grant.mode,
                relative,
                _handle: Arc::new(handle),
            })
        })
        .collect()
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "macos"))]
mod handle {
    use std::ffi::OsString;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::path::{Path, PathBuf};

    use rustix::fs::{Mode, OFlags};
    use rustix::io::Errno;

    /// Where the process names its own descriptors.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const FD_NAMES: &str = "/proc/self/fd";
    #[cfg(target_os = "macos")]
    const FD_NAMES: &str = "/dev/fd";

    /// An open directory.
    #[derive(Debug)]
    pub(super) struct Handle(OwnedFd);

    const DIR: OFlags = OFlags::RDONLY
        .union(OFlags::DIRECTORY)
        .union(OFlags::NOFOLLOW)
        .union(OFlags::CLOEXEC);

    impl Handle {
        /// The data directory itself: the host chose its path, so it is
        /// opened as the host names it (created owner-only when missing).
        pub(super) fn open_root(root: &Path) -> std::io::Result<Self> {
            if !root.exists() {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(root)?;
            }
            if !Path::new(FD_NAMES).is_dir() {
                return Err(std::io::Error::other(format!(
                    "{FD_NAMES} is not available; granted directories are opened through it"
                )));
            }
            let fd = rustix::fs::open(root, DIR.difference(OFlags::NOFOLLOW), Mode::empty())?;
            Ok(Self(fd))
        }

        /// The directory at `parts` beneath this one, each component
        /// created (owner-only) when missing, none followed if it is a
        /// symlink.
        pub(super) fn open_beneath(&self, parts: &[OsString]) -> Result<Self, String> {
            let mut at: Option<OwnedFd> = None;
            for (depth, part) in parts.iter().enumerate() {
                let dir = at.as_ref().unwrap_or(&self.0);
                let where_ = || {
                    parts[..=depth]
                        .iter()
                        .map(|p| p.to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/")
                };
                let opened = match rustix::fs::openat(dir, part.as_os_str(), DIR, Mode::empty()) {
                    Err(Errno::NOENT) => {
                        match rustix::fs::mkdirat(dir, part.as_os_str(), Mode::RWXU) {
                            Ok(()) | Err(Errno::EXIST) => {}
                            Err(e) => return Err(format!("cannot create `{}`: {e}", where_())),
                        }
                        rustix::fs::openat(dir, part.as_os_str(), DIR, Mode::empty())
                    }
                    other => other,
                };
                at = Some(opened.map_err(|e| match e {
                    Errno::LOOP | Errno::NOTDIR | Errno::MLINK => format!(
                        "`{}` is a symbolic link or not a directory; a granted directory is never reached through a link",
                        where_()
                    ),
                    e => format!("cannot open `{}`: {e}", where_()),
                })?);
            }
            match at {
                Some(fd) => Ok(Self(fd)),
                None => rustix::io::dup(&self.0)
                    .map(Self)
                    .map_err(|e| format!("cannot open the data directory: {e}")),
            }
        }

        /// The path that names this very directory.
        pub(super) fn name(&self) -> PathBuf {
            Path::new(FD_NAMES).join(self.0.as_raw_fd().to_string())
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos")))]
mod handle {
    use std::ffi::OsString;
    use std::path::{Path, PathBuf};

    /// Never built: filesystem grants are refused on this platform.
    #[derive(Debug)]
    pub(super) enum Handle {}

    impl Handle {
        pub(super) fn open_root(_root: &Path) -> std::io::Result<Self> {
            Err(std::io::Error::other(
                "filesystem grants are supported on Linux and macOS only",
            ))
        }

        pub(super) fn open_beneath(&self, _parts: &[OsString]) -> Result<Self, String> {
            match *self {}
        }

        pub(super) fn name(&self) -> PathBuf {
            match *self {}
        }
    }
}
