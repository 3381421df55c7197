//! [`PackageError`]: everything that can go wrong with a package, saying what
//! and which entry.

use std::fmt;
use std::io;
use std::path::PathBuf;

use tenon_manifest::{Diagnostic, PluginId, Version};

use crate::digest::Sha256Digest;
use crate::layout::{FileKind, LAYOUT_SUMMARY};
use crate::path::PathProblem;
use crate::sign::{KeyId, Role};
use crate::trust::Origin;

/// A plugin id and version: what a package is a package of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageId {
    /// The plugin.
    pub id: PluginId,
    /// The version.
    pub version: Version,
}

impl fmt::Display for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.id, self.version)
    }
}

/// A link entry's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// A symbolic link.
    Symbolic,
    /// A hard link.
    Hard,
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Symbolic => "a symbolic link",
            Self::Hard => "a hard link",
        })
    }
}

/// What a non-regular, non-link file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialKind {
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A unix socket.
    Socket,
    /// A GNU sparse file.
    Sparse,
    /// A tar entry type the format does not use, by its type byte.
    Other(u8),
}

impl fmt::Display for SpecialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CharDevice => f.write_str("a character device"),
            Self::BlockDevice => f.write_str("a block device"),
            Self::Fifo => f.write_str("a named pipe (fifo)"),
            Self::Socket => f.write_str("a socket"),
            Self::Sparse => f.write_str("a sparse file"),
            Self::Other(byte) => write!(f, "an entry of tar type {:?}", char::from(*byte)),
        }
    }
}

/// A package path as it appears in messages: escaped, so a hostile entry
/// name cannot forge output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryName(pub String);

impl EntryName {
    pub(crate) fn lossy(raw: &[u8]) -> Self {
        Self(String::from_utf8_lossy(raw).into_owned())
    }
}

impl fmt::Display for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.0.escape_debug())
    }
}

impl From<&str> for EntryName {
    fn from(path: &str) -> Self {
        Self(path.to_owned())
    }
}

/// Everything that can go wrong packing, reading, verifying or unpacking a
/// package. Each variant says what went wrong, which entry or file, and what
/// would be right; [`PackageError::code`] gives a stable kebab-case name.
///
/// Entry names are paths inside the package (for [`pack`](crate::pack),
/// relative to the plugin directory).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// Reading or writing the file system failed.
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        /// What was being done: `read`, `create`, `rename` …
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },

    /// `pack` was given something that is not a directory.
    #[error("`{}` is not a directory: pack takes the plugin's directory", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },

    /// No manifest at the root.
    #[error(
        "no manifest in {within}: a package needs one of tenon.toml, tenon.json, tenon.yaml or tenon.yml at its root"
    )]
    MissingManifest {
        /// `the archive`, or the directory being packed.
        within: String,
    },

    /// More than one manifest at the root.
    #[error("{within} holds several manifests ({}); keep exactly one", found.join(", "))]
    SeveralManifests {
        /// `the archive`, or the directory being packed.
        within: String,
        /// Their names.
        found: Vec<String>,
    },

    /// The manifest does not parse or validate.
    #[error("`{path}` is not a valid manifest:{}", Bullets(diagnostics))]
    InvalidManifest {
        /// The manifest's path in the package.
        path: String,
        /// Every problem (and warning), as `tenon-manifest` reports them.
        diagnostics: Vec<Diagnostic>,
    },

    /// The manifest names a file the package (or directory) does not have.
    #[error("the manifest names `{path}` as its {kind}, but the package has no such file")]
    MissingFile {
        /// The path the manifest gives.
        path: String,
        /// What it was to be.
        kind: FileKind,
    },

    /// The module's sha256 differs from `runtime.sha256`.
    #[error(
        "`{path}` has sha256 {actual}, but the manifest pins {pinned}: rebuild the module or update runtime.sha256"
    )]
    Sha256Mismatch {
        /// The module.
        path: String,
        /// What the manifest says.
        pinned: String,
        /// What the file hashes to.
        actual: Sha256Digest,
    },

    /// A path breaks the package path rules (traversal, absolute, Windows
    /// prefixes, backslashes, forbidden characters …).
    #[error("entry {entry} has an unsafe path: {problem}")]
    UnsafePath {
        /// The entry.
        entry: EntryName,
        /// Which rule it breaks.
        problem: PathProblem,
    },

    /// A symbolic or hard link, which packages never hold.
    #[error(
        "entry {entry} is {kind} (to {}); packages hold regular files only: copy the file into place instead",
        EntryName(target.clone())
    )]
    Link {
        /// The entry.
        entry: EntryName,
        /// Symbolic or hard.
        kind: LinkKind,
        /// Where it points.
        target: String,
    },

    /// A device, fifo, socket or other non-regular file.
    #[error("entry {entry} is {kind}; packages hold regular files only")]
    SpecialFile {
        /// The entry.
        entry: EntryName,
        /// What it is.
        kind: SpecialKind,
    },

    /// A pax or GNU extended header, which the package format does not use
    /// (a packer could hide a different path or size in one).
    #[error(
        "entry {entry} is a {kind} extended header; package archives use plain ustar headers only (make the archive with `tenon pack`)"
    )]
    ExtendedHeader {
        /// The header's own name.
        entry: EntryName,
        /// `pax` or `GNU long-name` …
        kind: &'static str,
    },

    /// The same path twice, or two paths that differ only in case.
    #[error("entry {entry} duplicates {first}{}", if entry == first { "" } else { " (they differ only in case, so they are one file on macOS and Windows)" })]
    DuplicateEntry {
        /// The later entry.
        entry: EntryName,
        /// The earlier one.
        first: EntryName,
    },

    /// A file where another entry needs a directory, or the reverse.
    #[error(
        "entry {entry} conflicts with {other}: one is a file where the other needs a directory"
    )]
    PathConflict {
        /// The later entry.
        entry: EntryName,
        /// The earlier one.
        other: EntryName,
    },

    /// An entry the layout does not allow.
    #[error("entry {entry} is not part of the package layout (allowed: {LAYOUT_SUMMARY})")]
    NotInLayout {
        /// The entry.
        entry: EntryName,
    },

    /// More entries than the limit.
    #[error("the archive has more than {limit} entries")]
    TooManyEntries {
        /// The limit.
        limit: usize,
    },

    /// A file larger than the limit.
    #[error("entry {entry} is {size} bytes, more than the limit of {limit}")]
    EntryTooLarge {
        /// The entry.
        entry: EntryName,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// The files together exceed the limit (a decompression bomb is stopped
    /// here).
    #[error("the package's content exceeds {limit} bytes uncompressed{}", At(entry.as_ref()))]
    TotalTooLarge {
        /// The limit.
        limit: u64,
        /// The entry being read when the limit was reached.
        entry: Option<EntryName>,
    },

    /// The archive file is larger than the limit.
    #[error("the archive is {size} bytes, more than the limit of {limit}")]
    ArchiveTooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },

    /// The bytes are not a gzip stream at all.
    #[error(
        "not a package archive: a .tenon file is a gzip'd tar starting with bytes 1f 8b, this starts with {}",
        hex_prefix(start)
    )]
    NotGzip {
        /// The first bytes.
        start: Vec<u8>,
    },

    /// The gzip stream is corrupt.
    #[error("corrupt gzip stream at byte {offset} of the archive{}: {message}", At(entry.as_ref()))]
    CorruptGzip {
        /// Compressed byte offset where decoding failed.
        offset: u64,
        /// The entry being read.
        entry: Option<EntryName>,
        /// The decoder's message.
        message: String,
    },

    /// The archive ends early.
    #[error(
        "the archive is truncated: its data ends at byte {offset}{} before the end of the tar stream",
        At(entry.as_ref())
    )]
    Truncated {
        /// Compressed size (where the data ran out).
        offset: u64,
        /// The entry being read.
        entry: Option<EntryName>,
    },

    /// The tar stream inside is malformed.
    #[error("corrupt tar stream at byte {offset} of the uncompressed archive{}: {message}", At(entry.as_ref()))]
    CorruptTar {
        /// Uncompressed byte offset.
        offset: u64,
        /// The entry being read.
        entry: Option<EntryName>,
        /// What is wrong.
        message: String,
    },

    /// Data after the end of the tar stream or the gzip member.
    #[error(
        "unexpected data after the end of the {} at byte {offset}; a package archive ends with its end-of-archive marker",
        if *compressed { "gzip stream" } else { "tar stream" }
    )]
    TrailingData {
        /// Offset of the first unexpected byte (in the compressed archive when
        /// `compressed`, else in the uncompressed tar stream).
        offset: u64,
        /// Whether the data follows the gzip member (else it follows the tar
        /// end-of-archive marker inside it).
        compressed: bool,
    },

    /// The destination of an unpack already exists.
    #[error(
        "`{}` already exists; remove it first or unpack elsewhere (unpack never overwrites)",
        path.display()
    )]
    DestinationExists {
        /// The path.
        path: PathBuf,
    },

    /// The archive's sha256 differs from the one expected (by the signature
    /// file or the caller): the archive was altered or is another package.
    #[error(
        "the archive's sha256 is {actual}, but {expected_by} expects {expected}: the archive was altered or is not the package that was published"
    )]
    ChecksumMismatch {
        /// The expected digest.
        expected: Sha256Digest,
        /// The archive's digest.
        actual: Sha256Digest,
        /// Who expected it (`the signature file`, `the caller`).
        expected_by: &'static str,
    },

    /// The signature file does not parse.
    #[error("invalid signature file: {message}")]
    InvalidSignatureFile {
        /// What is wrong.
        message: String,
    },

    /// A key does not parse.
    #[error("invalid key: {message}")]
    InvalidKey {
        /// What is wrong.
        message: String,
    },

    /// A signature does not verify: the archive or the signature file was
    /// altered.
    #[error(
        "the {role} signature by key {key_id} does not verify for this package: the archive or its signature file was altered"
    )]
    BadSignature {
        /// Whose signature.
        role: Role,
        /// By which key.
        key_id: KeyId,
    },

    /// Unsigned, and the trust policy refuses unsigned packages here.
    #[error(
        "the package is not signed, and the trust policy refuses unsigned packages from {origin} sources"
    )]
    Unsigned {
        /// Where the package came from.
        origin: Origin,
    },

    /// Signed, but no author signature is by a key the policy trusts for
    /// the plugin's publisher.
    #[error(
        "{plugin} is not signed by an author key the trust policy trusts for publisher `{}`{}; add the author's public key to the policy (`tenon trust add KEY`)",
        plugin.publisher(),
        KeyList(key_ids, " (signed by keys ", ")", " (no author signature)")
    )]
    UntrustedAuthor {
        /// The plugin.
        plugin: PluginId,
        /// The author keys that did sign it.
        key_ids: Vec<KeyId>,
    },

    /// The policy requires a marketplace counter-signature and there is none
    /// by a trusted marketplace key.
    #[error(
        "the trust policy requires a marketplace counter-signature by a trusted key{}",
        KeyList(
            key_ids,
            "; the package is counter-signed by untrusted keys ",
            "",
            ", and the package has none"
        )
    )]
    MissingMarketplaceSignature {
        /// The marketplace keys that did sign it.
        key_ids: Vec<KeyId>,
    },

    /// A signature is by a key the trust policy revoked.
    #[error(
        "the {role} signature is by key {key_id}, which the trust policy revokes; packages it signed are refused"
    )]
    RevokedKey {
        /// Whose signature.
        role: Role,
        /// The revoked key.
        key_id: KeyId,
    },

    /// A trust policy file does not parse.
    #[error("the trust policy does not parse: {message}")]
    InvalidPolicy {
        /// What is wrong, and where.
        message: String,
    },

    /// A key rotation statement does not verify.
    #[error(
        "the rotation from key {from} to key {to} is not signed by key {from}: the statement was altered or forged"
    )]
    BadRotation {
        /// The old key.
        from: KeyId,
        /// The new key.
        to: KeyId,
    },

    /// The plugin id or version inside the archive differs from the ones
    /// that were signed.
    #[error("the signatures are for {signed}, but the archive's manifest is {manifest}")]
    IdentityMismatch {
        /// What the signature file names.
        signed: Box<PackageId>,
        /// What the manifest says.
        manifest: Box<PackageId>,
    },
}

impl PackageError {
    /// A stable kebab-case name for the error, for JSON output and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::NotADirectory { .. } => "not-a-directory",
            Self::MissingManifest { .. } => "missing-manifest",
            Self::SeveralManifests { .. } => "several-manifests",
            Self::InvalidManifest { .. } => "invalid-manifest",
            Self::MissingFile { .. } => "missing-file",
            Self::Sha256Mismatch { .. } => "sha256-mismatch",
            Self::UnsafePath { .. } => "unsafe-path",
            Self::Link { .. } => "link",
            Self::SpecialFile { .. } => "special-file",
            Self::ExtendedHeader { .. } => "extended-header",
            Self::DuplicateEntry { .. } => "duplicate-entry",
            Self::PathConflict { .. } => "path-conflict",
            Self::NotInLayout { .. } => "not-in-layout",
            Self::TooManyEntries { .. } => "too-many-entries",
            Self::EntryTooLarge { .. } => "entry-too-large",
            Self::TotalTooLarge { .. } => "total-too-large",
            Self::ArchiveTooLarge { .. } => "archive-too-large",
            Self::NotGzip { .. } => "not-gzip",
            Self::CorruptGzip { .. } => "corrupt-gzip",
            Self::Truncated { .. } => "truncated",
            Self::CorruptTar { .. } => "corrupt-tar",
            Self::TrailingData { .. } => "trailing-data",
            Self::DestinationExists { .. } => "destination-exists",
            Self::ChecksumMismatch { .. } => "checksum-mismatch",
            Self::InvalidSignatureFile { .. } => "invalid-signature-file",
            Self::InvalidKey { .. } => "invalid-key",
            Self::BadSignature { .. } => "bad-signature",
            Self::Unsigned { .. } => "unsigned",
            Self::UntrustedAuthor { .. } => "untrusted-author",
            Self::MissingMarketplaceSignature { .. } => "missing-marketplace-signature",
            Self::IdentityMismatch { .. } => "identity-mismatch",
            Self::RevokedKey { .. } => "revoked-key",
            Self::BadRotation { .. } => "bad-rotation",
            Self::InvalidPolicy { .. } => "invalid-policy",
        }
    }

    /// The entry the error is about, when there is one.
    pub fn entry(&self) -> Option<&str> {
        match self {
            Self::UnsafePath { entry, .. }
            | Self::Link { entry, .. }
            | Self::SpecialFile { entry, .. }
            | Self::ExtendedHeader { entry, .. }
            | Self::DuplicateEntry { entry, .. }
            | Self::PathConflict { entry, .. }
            | Self::NotInLayout { entry }
            | Self::EntryTooLarge { entry, .. } => Some(&entry.0),
            Self::TotalTooLarge { entry, .. }
            | Self::CorruptGzip { entry, .. }
            | Self::Truncated { entry, .. }
            | Self::CorruptTar { entry, .. } => entry.as_ref().map(|e| e.0.as_str()),
            Self::MissingFile { path, .. } | Self::Sha256Mismatch { path, .. } => Some(path),
            _ => None,
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// ` (while reading entry `x`)` or nothing.
struct At<'a>(Option<&'a EntryName>);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(entry) => write!(f, " (while reading entry {entry})"),
            None => Ok(()),
        }
    }
}

/// One problem per indented line.
struct Bullets<'a>(&'a [Diagnostic]);

impl fmt::Display for Bullets<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in self.0 {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

/// `prefix k1, k2 suffix`, or `empty` when there are no keys.
struct KeyList<'a>(&'a [KeyId], &'static str, &'static str, &'static str);

impl fmt::Display for KeyList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let KeyList(keys, prefix, suffix, empty) = self;
        if keys.is_empty() {
            return f.write_str(empty);
        }
        f.write_str(prefix)?;
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{key}")?;
        }
        f.write_str(suffix)
    }
}

fn hex_prefix(start: &[u8]) -> String {
    if start.is_empty() {
        return "nothing (the file is empty)".to_owned();
    }
    start
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
