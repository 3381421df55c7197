//! Reading an archive: one pass over the gzip'd tar stream that checks every
//! header before touching its content, counts every decompressed byte, hands
//! file contents to a [`Sink`], and judges the whole against the layout once
//! the manifest is known.

use std::cell::Cell;
use std::io::{self, BufRead, Read, Write};
use std::path::PathBuf;

use tar::EntryType;

use crate::digest::{HashingWriter, Sha256Digest};
use crate::error::{EntryName, LinkKind, PackageError, SpecialKind};
use crate::info::{FileInfo, PackageInfo};
use crate::layout::{self, FileKind};
use crate::limits::UnpackLimits;
use crate::manifest;
use crate::path::{self, PathSet};

const BLOCK: u64 = 512;
const END_MARKER: u64 = 2 * BLOCK;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Where the content of an archive goes.
pub(crate) trait Sink {
    /// A file being written.
    type File: Write;
    /// Makes a directory (its parents may not exist yet).
    fn dir(&mut self, path: &str) -> Result<(), PackageError>;
    /// Starts a file of `size` bytes (its parent directories may not exist
    /// yet).
    fn create(&mut self, path: &str, size: u64) -> Result<Self::File, PackageError>;
    /// Finishes a file.
    fn close(&mut self, path: &str, file: Self::File) -> Result<(), PackageError>;
    /// Where `path` is written, for error messages.
    fn location(&self, path: &str) -> PathBuf;
}

/// Reads and checks a whole archive, writing its content to `sink`.
pub(crate) fn read_package<S: Sink>(
    bytes: &[u8],
    limits: &UnpackLimits,
    sink: &mut S,
) -> Result<PackageInfo, PackageError> {
    let size = bytes.len() as u64;
    if size > limits.max_archive_bytes {
        return Err(PackageError::ArchiveTooLarge {
            size,
            limit: limits.max_archive_bytes,
        });
    }
    // One byte of the magic is a truncated archive, not another format.
    let start = &bytes[..bytes.len().min(GZIP_MAGIC.len())];
    if start.is_empty() || !GZIP_MAGIC.starts_with(start) {
        return Err(PackageError::NotGzip {
            start: bytes[..bytes.len().min(4)].to_vec(),
        });
    }
    let tracker = Tracker {
        input_len: size,
        cap: limits.max_stream_bytes(),
        total_limit: limits.max_total_bytes,
        ..Tracker::default()
    };
    let input = Input {
        data: bytes,
        pos: 0,
        tracker: &tracker,
    };
    let stream = Counted {
        inner: flate2::bufread::GzDecoder::new(input),
        tracker: &tracker,
    };
    let mut archive = tar::Archive::new(stream);
    let mut walk = Walk::new(limits);
    {
        let entries = archive
            .entries()
            .map_err(|e| tracker.error(e, None))?
            .raw(true);
        for entry in entries {
            let mut entry = entry.map_err(|e| tracker.error(e, None))?;
            walk.entry(&mut entry, sink, &tracker)?;
        }
    }
    finish_stream(archive.into_inner(), &tracker, walk.end)?;
    walk.judge(Sha256Digest::of(bytes), size)
}

/// Reads what follows the last entry: the end-of-archive marker and any
/// zero padding, then the gzip trailer; anything else is refused.
fn finish_stream(
    mut stream: Counted<'_, flate2::bufread::GzDecoder<Input<'_>>>,
    tracker: &Tracker,
    end_of_entries: u64,
) -> Result<(), PackageError> {
    // tar stops at the first all-zero block (or at the end of the stream),
    // so whatever it read past the last entry was zeros.
    let mut zeros = tracker.decompressed.get().saturating_sub(end_of_entries);
    let mut buf = [0u8; 8192];
    loop {
        let before = tracker.decompressed.get();
        let n = stream.read(&mut buf).map_err(|e| tracker.error(e, None))?;
        if n == 0 {
            break;
        }
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            return Err(PackageError::TrailingData {
                offset: before + i as u64,
                compressed: false,
            });
        }
        zeros += n as u64;
    }
    if zeros < END_MARKER {
        return Err(PackageError::Truncated {
            offset: tracker.input_len,
            entry: None,
        });
    }
    let input = stream.inner.into_inner();
    if input.pos < input.data.len() {
        return Err(PackageError::TrailingData {
            offset: input.pos as u64,
            compressed: true,
        });
    }
    Ok(())
}

/// What one pass has seen so far.
struct Walk<'l> {
    limits: &'l UnpackLimits,
    entries: usize,
    total: u64,
    /// End of the last entry's data, rounded up to a block.
    end: u64,
    seen: PathSet,
    files: Vec<RawFile>,
    dirs: Vec<String>,
}

struct RawFile {
    path: String,
    size: u64,
    sha256: Sha256Digest,
    /// Kept for manifest candidates only.
    content: Option<Vec<u8>>,
}

impl<'l> Walk<'l> {
    fn new(limits: &'l UnpackLimits) -> Self {
        Self {
            limits,
            entries: 0,
            total: 0,
            end: 0,
            seen: PathSet::default(),
            files: Vec::new(),
            dirs: Vec::new(),
        }
    }

    fn entry<R: Read, S: Sink>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        sink: &mut S,
        tracker: &Tracker,
    ) -> Result<(), PackageError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(PackageError::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        let raw_path = entry.path_bytes().into_owned();
        let name = || EntryName::lossy(&raw_path);
        let entry_type = entry.header().entry_type();
        if let Some(kind) = extension_kind(entry_type) {
            return Err(PackageError::ExtendedHeader {
                entry: name(),
                kind,
            });
        }
        let is_dir = entry_type == EntryType::Directory;
        let checked = if is_dir {
            raw_path.strip_suffix(b"/").unwrap_or(&raw_path)
        } else {
            &raw_path
        };
        let path = path::check_bytes(checked)
            .map_err(|problem| PackageError::UnsafePath {
                entry: name(),
                problem,
            })?
            .to_owned();
        match entry_type {
            EntryType::Regular | EntryType::Directory => {}
            EntryType::Symlink | EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                let kind = if entry_type == EntryType::Symlink {
                    LinkKind::Symbolic
                } else {
                    LinkKind::Hard
                };
                return Err(PackageError::Link {
                    entry: name(),
                    kind,
                    target,
                });
            }
            other => {
                let kind = match other {
                    EntryType::Char => SpecialKind::CharDevice,
                    EntryType::Block => SpecialKind::BlockDevice,
                    EntryType::Fifo => SpecialKind::Fifo,
                    EntryType::GNUSparse => SpecialKind::Sparse,
                    other => SpecialKind::Other(other.as_byte()),
                };
                return Err(PackageError::SpecialFile {
                    entry: name(),
                    kind,
                });
            }
        }
        let size = entry.size();
        self.seen.insert(&path, is_dir)?;
        if is_dir {
            if size != 0 {
                return Err(PackageError::CorruptTar {
                    offset: entry.raw_header_position(),
                    entry: Some(name()),
                    message: format!("a directory entry with {size} bytes of content"),
                });
            }
            self.end = entry.raw_file_position();
            sink.dir(&path)?;
            self.dirs.push(path);
            return Ok(());
        }
        self.file(entry, path, size, sink, tracker)
    }

    fn file<R: Read, S: Sink>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: String,
        size: u64,
        sink: &mut S,
        tracker: &Tracker,
    ) -> Result<(), PackageError> {
        let is_manifest = layout::is_manifest_name(&path);
        let limit = if is_manifest {
            self.limits
                .max_entry_bytes
                .min(self.limits.max_manifest_bytes)
        } else {
            self.limits.max_entry_bytes
        };
        if size > limit {
            return Err(PackageError::EntryTooLarge {
                entry: path.as_str().into(),
                size,
                limit,
            });
        }
        if self.total.saturating_add(size) > self.limits.max_total_bytes {
            return Err(PackageError::TotalTooLarge {
                limit: self.limits.max_total_bytes,
                entry: Some(path.as_str().into()),
            });
        }
        self.total += size;
        // (tar has checked that this does not overflow.)
        self.end = entry.raw_file_position() + size.div_ceil(BLOCK) * BLOCK;
        let file = sink.create(&path, size)?;
        let mut writer = HashingWriter::new(Tee {
            file,
            copy: is_manifest.then(Vec::new),
        });
        let copied = copy(entry, &mut writer).map_err(|e| match e {
            CopyError::Read(e) => tracker.error(e, Some(&path)),
            CopyError::Write(e) => PackageError::io("write", sink.location(&path), e),
        })?;
        if copied != size {
            return Err(PackageError::Truncated {
                offset: tracker.input_len,
                entry: Some(path.as_str().into()),
            });
        }
        let (tee, sha256, _) = writer.finish();
        sink.close(&path, tee.file)?;
        self.files.push(RawFile {
            path,
            size,
            sha256,
            content: tee.copy,
        });
        Ok(())
    }

    /// Judges the whole: one manifest that validates, the files it names
    /// present (and matching their pin), nothing outside the layout.
    fn judge(self, sha256: Sha256Digest, archive_size: u64) -> Result<PackageInfo, PackageError> {
        let manifests: Vec<&RawFile> = self
            .files
            .iter()
            .filter(|f| layout::is_manifest_name(&f.path))
            .collect();
        let within = "the archive".to_owned();
        let manifest_file = match manifests.as_slice() {
            [] => return Err(PackageError::MissingManifest { within }),
            [one] => *one,
            several => {
                return Err(PackageError::SeveralManifests {
                    within,
                    found: several.iter().map(|f| f.path.clone()).collect(),
                });
            }
        };
        let (manifest, warnings) = manifest::parse(
            &manifest_file.path,
            manifest_file.content.as_deref().unwrap_or_default(),
        )?;
        let named = layout::named_files(&manifest);
        for &(named_path, kind) in &named {
            let Some(file) = self.files.iter().find(|f| f.path == named_path) else {
                return Err(PackageError::MissingFile {
                    path: named_path.to_owned(),
                    kind,
                });
            };
            check_pin(&manifest, kind, named_path, &file.sha256)?;
        }
        let mut files = Vec::with_capacity(self.files.len());
        for file in &self.files {
            let Some(kind) = layout::classify(&file.path, &manifest_file.path, &named) else {
                return Err(PackageError::NotInLayout {
                    entry: file.path.as_str().into(),
                });
            };
            files.push(FileInfo {
                path: file.path.clone(),
                kind,
                size: file.size,
                sha256: file.sha256,
            });
        }
        if let Some(dir) = self.dirs.iter().find(|d| !layout::allows_dir(d, &named)) {
            return Err(PackageError::NotInLayout {
                entry: dir.as_str().into(),
            });
        }
        let manifest_path = manifest_file.path.clone();
        Ok(PackageInfo {
            sha256,
            archive_size,
            manifest,
            manifest_path,
            files,
            warnings,
        })
    }
}

/// Checks a module against `runtime.sha256`, when the manifest pins it.
pub(crate) fn check_pin(
    manifest: &tenon_manifest::Manifest,
    kind: FileKind,
    path: &str,
    actual: &Sha256Digest,
) -> Result<(), PackageError> {
    match manifest.runtime.sha256.as_deref() {
        Some(pinned)
            if kind == FileKind::Module && !pinned.eq_ignore_ascii_case(&actual.to_hex()) =>
        {
            Err(PackageError::Sha256Mismatch {
                path: path.to_owned(),
                pinned: pinned.to_owned(),
                actual: *actual,
            })
        }
        _ => Ok(()),
    }
}

fn extension_kind(entry_type: EntryType) -> Option<&'static str> {
    match entry_type {
        EntryType::XHeader => Some("pax"),
        EntryType::XGlobalHeader => Some("pax global"),
        EntryType::GNULongName => Some("GNU long-name"),
        EntryType::GNULongLink => Some("GNU long-link"),
        _ => None,
    }
}

/// A file being written, and a copy of it when it is the manifest.
struct Tee<W> {
    file: W,
    copy: Option<Vec<u8>>,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        if let Some(copy) = &mut self.copy {
            copy.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

fn copy(reader: &mut impl Read, writer: &mut impl Write) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        writer.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}

/// Positions and the first failure of the decoding stack, shared by its
/// layers so that an error surfacing through `tar` can be told apart: a
/// corrupt or truncated gzip stream, the size counter, or tar itself.
#[derive(Default)]
struct Tracker {
    input_len: u64,
    /// Most decompressed bytes allowed.
    cap: u64,
    /// `max_total_bytes`, for the message when the cap is reached.
    total_limit: u64,
    /// Compressed bytes consumed.
    compressed: Cell<u64>,
    /// Decompressed bytes produced.
    decompressed: Cell<u64>,
    /// Whether the decompressed stream has ended.
    eof: Cell<bool>,
    failure: Cell<Option<Failure>>,
}

enum Failure {
    Gzip { offset: u64, message: String },
    Truncated,
    Limit,
}

impl Tracker {
    /// Turns an error that surfaced while reading into the right
    /// [`PackageError`], naming `entry` when one was being read.
    fn error(&self, error: io::Error, entry: Option<&str>) -> PackageError {
        let entry = entry.map(EntryName::from);
        match self.failure.take() {
            Some(Failure::Limit) => PackageError::TotalTooLarge {
                limit: self.total_limit,
                entry,
            },
            Some(Failure::Truncated) => PackageError::Truncated {
                offset: self.input_len,
                entry,
            },
            Some(Failure::Gzip { offset, message }) => PackageError::CorruptGzip {
                offset,
                entry,
                message,
            },
            None if self.eof.get() => PackageError::Truncated {
                offset: self.input_len,
                entry,
            },
            None => PackageError::CorruptTar {
                offset: self.decompressed.get(),
                entry,
                message: error.to_string(),
            },
        }
    }
}

/// The archive's bytes, counting what the decoder consumes.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
    tracker: &'a Tracker,
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&self.data[self.pos..]).read(buf)?;
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Input<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(&self.data[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.data.len());
        self.tracker.compressed.set(self.pos as u64);
    }
}

/// The decompressed stream, counted and capped.
struct Counted<'a, R> {
    inner: R,
    tracker: &'a Tracker,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let t = self.tracker;
        let pos = t.decompressed.get();
        // Ask for one byte more than the room left, so that reaching the
        // cap exactly is fine and passing it is seen.
        let room = t.cap.saturating_sub(pos).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        match self.inner.read(&mut buf[..want]) {
            Ok(0) => {
                t.eof.set(true);
                Ok(0)
            }
            Ok(n) if pos + n as u64 > t.cap => {
                t.failure.set(Some(Failure::Limit));
                Err(io::Error::other("decompressed size limit reached"))
            }
            Ok(n) => {
                t.decompressed.set(pos + n as u64);
                Ok(n)
            }
            Err(e) => {
                let offset = t.compressed.get();
                let failure = if e.kind() == io::ErrorKind::UnexpectedEof {
                    Failure::Truncated
                } else {
                    Failure::Gzip {
                        offset,
                        message: e.to_string(),
                    }
                };
                t.failure.set(Some(failure));
                Err(e)
            }
        }
    }
}
