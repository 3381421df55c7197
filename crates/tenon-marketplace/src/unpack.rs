//! [`inspect`], [`unpack`] and [`unpack_to_memory`]: the three ways to read a
//! package, all through the same checks.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use crate::error::PackageError;
use crate::info::{PackageContents, PackageInfo, UnpackedPackage};
use crate::layout::FileKind;
use crate::limits::UnpackLimits;
use crate::read::{Sink, read_package};

/// Reads a package archive without writing anything: its identity, its
/// validated manifest and each file's size and sha256.
///
/// Every check of [`unpack`] applies, so a package that inspects cleanly
/// unpacks cleanly (disk space permitting).
///
/// Reads under the default [`UnpackLimits`]; see [`inspect_with`] for
/// others.
///
/// This does not verify signatures: call [`verify`](crate::verify) first for
/// packages from anywhere but the operator's own hands.
pub fn inspect(bytes: &[u8]) -> Result<PackageInfo, PackageError> {
    inspect_with(bytes, &UnpackLimits::default())
}

/// [`inspect`] under `limits` (use the ones the package will be unpacked
/// under).
pub fn inspect_with(bytes: &[u8], limits: &UnpackLimits) -> Result<PackageInfo, PackageError> {
    read_package(bytes, limits, &mut Discard)
}

/// Unpacks a package into memory, for hosts that store artifacts in a
/// registry rather than on disk.
///
/// This does not verify signatures: call [`verify`](crate::verify) first for
/// packages from anywhere but the operator's own hands.
pub fn unpack_to_memory(
    bytes: &[u8],
    limits: &UnpackLimits,
) -> Result<PackageContents, PackageError> {
    let mut sink = Memory::default();
    let info = read_package(bytes, limits, &mut sink)?;
    Ok(PackageContents {
        info,
        files: sink.files,
    })
}

/// Unpacks a package under `dest`, into `dest/<publisher>/<name>/<version>`.
///
/// The package is written to a fresh temporary directory inside `dest` and
/// renamed into place only when every check has passed and every file is
/// synced, so the destination either holds the whole package or nothing.
/// `dest` is created if missing; an existing destination is never
/// overwritten ([`PackageError::DestinationExists`]).
///
/// This does not verify signatures: call [`verify`](crate::verify) first for
/// packages from anywhere but the operator's own hands.
pub fn unpack(
    bytes: &[u8],
    dest: &Path,
    limits: &UnpackLimits,
) -> Result<UnpackedPackage, PackageError> {
    unpack_checked(bytes, dest, limits, &|_| Ok(()))
}

/// [`unpack`], with `check` judging the package after it is read and before
/// it is put in place.
pub(crate) fn unpack_checked(
    bytes: &[u8],
    dest: &Path,
    limits: &UnpackLimits,
    check: &dyn Fn(&PackageInfo) -> Result<(), PackageError>,
) -> Result<UnpackedPackage, PackageError> {
    fs::create_dir_all(dest).map_err(|e| PackageError::io("create directory", dest, e))?;
    let temp = tempfile::Builder::new()
        .prefix(".tenon-unpack-")
        .tempdir_in(dest)
        .map_err(|e| PackageError::io("create a temporary directory in", dest, e))?;
    let mut sink = Disk {
        root: temp.path().to_owned(),
    };
    let info = read_package(bytes, limits, &mut sink)?;
    check(&info)?;
    for file in info.files.iter().filter(|f| f.kind == FileKind::Command) {
        set_mode(&sink.location(&file.path), FileKind::Command.mode())?;
    }
    // The temporary directory was made private (0700); the package is not.
    set_mode(temp.path(), 0o755)?;
    let id = info.id();
    let parent = dest.join(id.publisher()).join(id.name());
    let root = parent.join(info.version().to_string());
    if fs::symlink_metadata(&root).is_ok() {
        return Err(PackageError::DestinationExists { path: root });
    }
    fs::create_dir_all(&parent).map_err(|e| PackageError::io("create directory", &parent, e))?;
    match fs::rename(temp.path(), &root) {
        Ok(()) => {
            // The directory has moved: nothing is left for `temp` to clean.
            let _ = temp.keep();
        }
        Err(_) if root.exists() => return Err(PackageError::DestinationExists { path: root }),
        Err(e) => return Err(PackageError::io("rename into place", &root, e)),
    }
    sync_dir(&parent)?;
    Ok(UnpackedPackage { root, info })
}

/// Hashes and forgets (the reader keeps the manifest itself).
struct Discard;

impl Sink for Discard {
    type File = io::Sink;

    fn dir(&mut self, _path: &str) -> Result<(), PackageError> {
        Ok(())
    }

    fn create(&mut self, _path: &str, _size: u64) -> Result<io::Sink, PackageError> {
        Ok(io::sink())
    }

    fn close(&mut self, _path: &str, _file: io::Sink) -> Result<(), PackageError> {
        Ok(())
    }

    fn location(&self, path: &str) -> PathBuf {
        PathBuf::from(path)
    }
}

#[derive(Default)]
struct Memory {
    files: BTreeMap<String, Vec<u8>>,
}

/// Reserved up front at most, whatever a header claims.
const MAX_PREALLOCATION: u64 = 1 << 20;

impl Sink for Memory {
    type File = Vec<u8>;

    fn dir(&mut self, _path: &str) -> Result<(), PackageError> {
        Ok(())
    }

    fn create(&mut self, _path: &str, size: u64) -> Result<Vec<u8>, PackageError> {
        let capacity = usize::try_from(size.min(MAX_PREALLOCATION)).unwrap_or(0);
        Ok(Vec::with_capacity(capacity))
    }

    fn close(&mut self, path: &str, file: Vec<u8>) -> Result<(), PackageError> {
        self.files.insert(path.to_owned(), file);
        Ok(())
    }

    fn location(&self, path: &str) -> PathBuf {
        PathBuf::from(path)
    }
}

/// Writes under a directory the caller made for this purpose alone, so
/// nothing in it can be a link planted by someone else.
struct Disk {
    root: PathBuf,
}

impl Sink for Disk {
    type File = BufWriter<File>;

    fn dir(&mut self, path: &str) -> Result<(), PackageError> {
        let at = self.location(path);
        fs::create_dir_all(&at).map_err(|e| PackageError::io("create directory", at, e))
    }

    fn create(&mut self, path: &str, _size: u64) -> Result<BufWriter<File>, PackageError> {
        let at = self.location(path);
        if let Some(parent) = at.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| PackageError::io("create directory", parent, e))?;
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
        let file = options
            .open(&at)
            .map_err(|e| PackageError::io("create", at, e))?;
        Ok(BufWriter::new(file))
    }

    fn close(&mut self, path: &str, file: BufWriter<File>) -> Result<(), PackageError> {
        let file = file
            .into_inner()
            .map_err(|e| PackageError::io("write", self.location(path), e.into_error()))?;
        file.sync_all()
            .map_err(|e| PackageError::io("sync", self.location(path), e))
    }

    fn location(&self, path: &str) -> PathBuf {
        // Package paths are checked (relative, `/`-separated, no `..`) before
        // they get here.
        path.split('/')
            .fold(self.root.clone(), |at, part| at.join(part))
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), PackageError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| PackageError::io("set permissions of", path, e))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<(), PackageError> {
    Ok(())
}

/// Makes a rename durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), PackageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| PackageError::io("sync", dir, e))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), PackageError> {
    Ok(())
}
