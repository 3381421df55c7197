//! [`pack`]: a plugin directory in, a deterministic package archive out.

use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::Path;

use flate2::{Compression, GzBuilder};
use tar::{EntryType, Header};

use crate::digest::Sha256Digest;
use crate::error::{EntryName, LinkKind, PackageError, SpecialKind};
use crate::info::{FileInfo, PackageInfo};
use crate::layout::{self, ASSETS_DIR, FileKind, MANIFEST_FILES};
use crate::limits::UnpackLimits;
use crate::manifest;
use crate::path::{self, PathProblem, PathSet};
use crate::read::check_pin;

/// The modification time every entry gets: fixed, so that packing is
/// reproducible (the tar crate's deterministic-mode constant,
/// 2006-07-24T01:21:28Z, which no tool takes for "unset").
pub const PACKAGE_MTIME: u64 = 1_153_704_088;

/// The gzip compression level (fixed: it is part of what makes packing
/// reproducible).
const LEVEL: u32 = 6;

/// How to pack.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackOptions {
    /// The limits the package must fit: those it will be unpacked under, so
    /// that what `pack` makes, hosts accept.
    pub limits: UnpackLimits,
}

/// A package archive made by [`pack`].
#[derive(Clone, PartialEq)]
pub struct PackedPackage {
    /// The archive (`.tenon`: gzip'd ustar).
    pub bytes: Vec<u8>,
    /// Its identity, manifest and files.
    pub info: PackageInfo,
}

impl fmt::Debug for PackedPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackedPackage")
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("info", &self.info)
            .finish()
    }
}

impl PackedPackage {
    /// The sha256 of the archive: the package's identity.
    pub fn sha256(&self) -> Sha256Digest {
        self.info.sha256
    }

    /// The conventional file name, `publisher.name-version.tenon`.
    pub fn file_name(&self) -> String {
        self.info.file_name()
    }
}

/// Packs the plugin in `dir` into a package archive.
///
/// The package holds the manifest (`tenon.toml`, `tenon.json`, `tenon.yaml`
/// or `tenon.yml`), the files it names (`runtime.module`, or `runtime.command`
/// for a process plugin), everything under `assets/` except dot-files, and
/// `README.md`, `CHANGELOG.md` and `LICENSE*` from the root. Nothing else
/// is looked at: sources, `target/` (but the module it names), `.git/` and
/// the like stay out by construction.
///
/// Refused: a missing or invalid manifest, a named file that is missing or
/// does not match `runtime.sha256`, symbolic links and special files
/// anywhere on the way to an included file, paths that are not portable, and
/// anything over `options.limits`.
///
/// The archive is deterministic: the same directory content always gives the
/// same bytes (see `docs/package-format.md`).
pub fn pack(dir: &Path, options: &PackOptions) -> Result<PackedPackage, PackageError> {
    let limits = &options.limits;
    let meta = fs::metadata(dir).map_err(|e| PackageError::io("read", dir, e))?;
    if !meta.is_dir() {
        return Err(PackageError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    let root_names = list_dir(dir, false)?;
    let within = || format!("`{}`", dir.display());
    let manifests: Vec<&str> = MANIFEST_FILES
        .iter()
        .copied()
        .filter(|name| root_names.iter().any(|n| n == name))
        .collect();
    let manifest_path = match manifests.as_slice() {
        [] => return Err(PackageError::MissingManifest { within: within() }),
        [one] => *one,
        several => {
            return Err(PackageError::SeveralManifests {
                within: within(),
                found: several.iter().map(|s| (*s).to_owned()).collect(),
            });
        }
    };

    let mut plan = Plan::new(dir, limits);
    let manifest_limit = limits.max_manifest_bytes.min(limits.max_entry_bytes);
    let source = plan.read(manifest_path, manifest_limit)?;
    let (manifest, warnings) = manifest::parse(manifest_path, &source)?;
    plan.add(manifest_path, FileKind::Manifest, source)?;

    for (named, kind) in layout::named_files(&manifest) {
        path::check(named).map_err(|problem| unsafe_path(named, problem))?;
        let content = match plan.read(named, limits.max_entry_bytes) {
            Err(PackageError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(PackageError::MissingFile {
                    path: named.to_owned(),
                    kind,
                });
            }
            other => other?,
        };
        check_pin(&manifest, kind, named, &Sha256Digest::of(&content))?;
        plan.add(named, kind, content)?;
    }
    for name in &root_names {
        if let Some(kind) = layout::doc_kind(name) {
            let at = dir.join(name);
            let is_dir = fs::symlink_metadata(&at)
                .map_err(|e| PackageError::io("read", &at, e))?
                .is_dir();
            // `LICENSES/` (REUSE) is a directory, not a license file.
            if is_dir || plan.has(name) {
                continue;
            }
            path::check(name).map_err(|problem| unsafe_path(name, problem))?;
            let content = plan.read(name, limits.max_entry_bytes)?;
            plan.add(name, kind, content)?;
        }
    }
    if root_names.iter().any(|n| n == ASSETS_DIR) {
        plan.assets(ASSETS_DIR)?;
    }

    let bytes = plan.write()?;
    let archive_size = bytes.len() as u64;
    if archive_size > limits.max_archive_bytes {
        return Err(PackageError::ArchiveTooLarge {
            size: archive_size,
            limit: limits.max_archive_bytes,
        });
    }
    let files = plan
        .files
        .iter()
        .map(|f| FileInfo {
            path: f.path.clone(),
            kind: f.kind,
            size: f.content.len() as u64,
            sha256: Sha256Digest::of(&f.content),
        })
        .collect();
    let info = PackageInfo {
        sha256: Sha256Digest::of(&bytes),
        archive_size,
        manifest,
        manifest_path: manifest_path.to_owned(),
        files,
        warnings,
    };
    Ok(PackedPackage { bytes, info })
}

fn unsafe_path(path: &str, problem: PathProblem) -> PackageError {
    PackageError::UnsafePath {
        entry: path.into(),
        problem,
    }
}

/// The files chosen so far, in archive order once sorted.
struct Plan<'a> {
    dir: &'a Path,
    limits: &'a UnpackLimits,
    files: Vec<Planned>,
    paths: PathSet,
    total: u64,
}

struct Planned {
    path: String,
    kind: FileKind,
    content: Vec<u8>,
}

impl<'a> Plan<'a> {
    fn new(dir: &'a Path, limits: &'a UnpackLimits) -> Self {
        Self {
            dir,
            limits,
            files: Vec::new(),
            paths: PathSet::default(),
            total: 0,
        }
    }

    fn has(&self, path: &str) -> bool {
        self.files.iter().any(|f| f.path == path)
    }

    fn add(&mut self, path: &str, kind: FileKind, content: Vec<u8>) -> Result<(), PackageError> {
        if self.has(path) {
            // A named module under assets/ is found twice; it is one file.
            return Ok(());
        }
        if self.files.len() >= self.limits.max_entries {
            return Err(PackageError::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        self.total = self.total.saturating_add(content.len() as u64);
        if self.total > self.limits.max_total_bytes {
            return Err(PackageError::TotalTooLarge {
                limit: self.limits.max_total_bytes,
                entry: Some(path.into()),
            });
        }
        self.paths.insert(path, false)?;
        self.files.push(Planned {
            path: path.to_owned(),
            kind,
            content,
        });
        Ok(())
    }

    /// Reads the regular file at package path `path`, refusing links and
    /// special files on the way.
    fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, PackageError> {
        let mut at = self.dir.to_owned();
        for (end, part) in components(path) {
            at.push(part);
            let meta = fs::symlink_metadata(&at).map_err(|e| PackageError::io("read", &at, e))?;
            check_type(&at, &path[..end], &meta, end == path.len())?;
        }
        let entry = || EntryName::from(path);
        let mut file = File::open(&at).map_err(|e| PackageError::io("open", &at, e))?;
        let size = file
            .metadata()
            .map_err(|e| PackageError::io("read", &at, e))?
            .len();
        if size > limit {
            return Err(PackageError::EntryTooLarge {
                entry: entry(),
                size,
                limit,
            });
        }
        let mut content = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        (&mut file)
            .take(limit + 1)
            .read_to_end(&mut content)
            .map_err(|e| PackageError::io("read", &at, e))?;
        if content.len() as u64 > limit {
            return Err(PackageError::EntryTooLarge {
                entry: entry(),
                size: content.len() as u64,
                limit,
            });
        }
        Ok(content)
    }

    /// Adds everything under `rel` (a directory), skipping dot-files.
    fn assets(&mut self, rel: &str) -> Result<(), PackageError> {
        let at = rel.split('/').fold(self.dir.to_owned(), |p, c| p.join(c));
        let meta = fs::symlink_metadata(&at).map_err(|e| PackageError::io("read", &at, e))?;
        check_type(&at, rel, &meta, false)?;
        for name in list_dir(&at, true)? {
            if name.starts_with('.') {
                continue;
            }
            let child = format!("{rel}/{name}");
            path::check(&child).map_err(|problem| unsafe_path(&child, problem))?;
            let child_at = at.join(&name);
            let meta = fs::symlink_metadata(&child_at)
                .map_err(|e| PackageError::io("read", &child_at, e))?;
            if meta.is_dir() {
                self.assets(&child)?;
            } else {
                let content = self.read(&child, self.limits.max_entry_bytes)?;
                self.add(&child, FileKind::Asset, content)?;
            }
        }
        Ok(())
    }

    /// Writes the archive: the manifest first, then the rest by path, each
    /// with a fixed ustar header, gzip'd with fixed settings.
    fn write(&mut self) -> Result<Vec<u8>, PackageError> {
        self.files.sort_by(|a, b| {
            (a.kind != FileKind::Manifest, a.path.as_bytes())
                .cmp(&(b.kind != FileKind::Manifest, b.path.as_bytes()))
        });
        let encoder = GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(Vec::new(), Compression::new(LEVEL));
        let mut builder = tar::Builder::new(encoder);
        for file in &self.files {
            let header = header(&file.path, file.kind, file.content.len() as u64)?;
            builder
                .append(&header, file.content.as_slice())
                .map_err(in_memory)?;
        }
        let encoder = builder.into_inner().map_err(in_memory)?;
        encoder.finish().map_err(in_memory)
    }
}

/// A ustar header that depends on nothing but the path, the kind and the
/// size.
fn header(path: &str, kind: FileKind, size: u64) -> Result<Header, PackageError> {
    let mut header = Header::new_ustar();
    header
        .set_path(path)
        .map_err(|_| unsafe_path(path, PathProblem::TooLong(path.len())))?;
    header.set_entry_type(EntryType::Regular);
    header.set_size(size);
    header.set_mode(kind.mode());
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(PACKAGE_MTIME);
    header.set_cksum();
    Ok(header)
}

/// Writing to a `Vec` cannot fail; if the encoder ever does, say so.
fn in_memory(e: io::Error) -> PackageError {
    PackageError::io("write the archive in memory", "<memory>", e)
}

/// Refuses a link or special file at `at` (package path `entry`); `last`
/// says whether it must be a regular file (else a directory).
fn check_type(at: &Path, entry: &str, meta: &Metadata, last: bool) -> Result<(), PackageError> {
    let ty = meta.file_type();
    if ty.is_symlink() {
        let target = fs::read_link(at)
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        return Err(PackageError::Link {
            entry: entry.into(),
            kind: LinkKind::Symbolic,
            target,
        });
    }
    if (last && ty.is_file()) || (!last && ty.is_dir()) {
        return Ok(());
    }
    if ty.is_file() || ty.is_dir() {
        let message = if last {
            "a directory where a file is needed"
        } else {
            "a file where a directory is needed"
        };
        return Err(PackageError::io(
            "read",
            at,
            io::Error::new(io::ErrorKind::NotFound, message),
        ));
    }
    Err(PackageError::SpecialFile {
        entry: entry.into(),
        kind: special_kind(meta),
    })
}

/// Each component of `path` with the byte offset where it ends.
fn components(path: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start = 0;
    path.split('/').map(move |part| {
        start += part.len() + 1;
        (start - 1, part)
    })
}

#[cfg(unix)]
fn special_kind(meta: &Metadata) -> SpecialKind {
    use std::os::unix::fs::FileTypeExt;
    let ty = meta.file_type();
    if ty.is_char_device() {
        SpecialKind::CharDevice
    } else if ty.is_block_device() {
        SpecialKind::BlockDevice
    } else if ty.is_fifo() {
        SpecialKind::Fifo
    } else {
        SpecialKind::Socket
    }
}

#[cfg(not(unix))]
fn special_kind(_meta: &Metadata) -> SpecialKind {
    SpecialKind::Other(b'?')
}

/// The UTF-8 names in a directory, sorted; other names are refused when
/// `strict`, else skipped (the plugin root holds much that is not packed).
fn list_dir(dir: &Path, strict: bool) -> Result<Vec<String>, PackageError> {
    let read = fs::read_dir(dir).map_err(|e| PackageError::io("list", dir, e))?;
    let mut names = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| PackageError::io("list", dir, e))?;
        match entry.file_name().into_string() {
            Ok(name) => names.push(name),
            Err(_) if !strict => {}
            Err(raw) => {
                return Err(PackageError::UnsafePath {
                    entry: EntryName(raw.to_string_lossy().into_owned()),
                    problem: PathProblem::NotUtf8,
                });
            }
        }
    }
    names.sort();
    Ok(names)
}
