//! Tenon's distribution layer. Today it owns the **package format**: one
//! `.tenon` archive per plugin version, its identity, its signatures, and
//! every check that stands between a file from somewhere and a plugin on disk.
//!
//! - [`pack`] turns a plugin directory into a deterministic archive (gzip'd
//!   ustar: manifest, the module it names, `assets/`, `README.md`,
//!   `CHANGELOG.md`, `LICENSE*`); the sha256 of its bytes is its identity.
//! - [`SignatureFile`] holds detached ed25519 signatures (the author's, and
//!   optionally a marketplace's counter-signature), stored beside the
//!   archive as `<archive>.sig`; [`SigningKey`] makes and signs with keys.
//! - [`verify`] decides, from the archive's sha256 and the signature file
//!   alone, whether the operator's [`TrustPolicy`] accepts the package —
//!   before anything is decompressed.
//! - [`inspect`], [`unpack`] and [`unpack_to_memory`] read an archive under
//!   [`UnpackLimits`], refusing path traversal, links, devices, duplicates,
//!   anything outside the layout, oversized entries and decompression bombs,
//!   corrupt or truncated streams, and a missing or invalid manifest; `unpack`
//!   puts a package in place only once all of it checked out.
//!
//! Every failure is a [`PackageError`] naming what went wrong and where.
//! The format is specified in `docs/package-format.md`.
//!
//! Not here (yet): the catalog index, search, and the marketplace's HTTP
//! server and client. Not here (ever): where installed plugins are recorded
//! (`tenon-registry`) and how they run (`tenon-sandbox`).
//!
//! Depend on it to make, check or install packages: the engine (`install`)
//! and the CLI (`pack`, `install`, key management) do.

mod digest;
mod error;
mod info;
mod layout;
mod limits;
mod manifest;
mod pack;
mod path;
mod read;
mod sign;
mod trust;
mod unpack;

pub use digest::{DigestParseError, Sha256Digest};
pub use error::{EntryName, LinkKind, PackageError, PackageId, SpecialKind};
pub use info::{FileInfo, PACKAGE_EXTENSION, PackageContents, PackageInfo, UnpackedPackage};
pub use layout::{ASSETS_DIR, FileKind, MANIFEST_FILES};
pub use limits::UnpackLimits;
pub use pack::{PACKAGE_MTIME, PackOptions, PackedPackage, pack};
pub use path::{MAX_COMPONENT_LEN, MAX_PATH_LEN, PathProblem};
pub use sign::{
    KeyId, MAX_SIGNATURE_FILE_BYTES, MAX_SIGNATURES, PublicKey, Role, SIGNATURE_CONTEXT,
    SIGNATURE_EXTENSION, SignatureEntry, SignatureFile, SigningKey, signed_message,
};
pub use trust::{
    AllowUnsigned, Origin, Trust, TrustPolicy, Verification, VerifiedPackage, verify,
    verify_checksum,
};
pub use unpack::{inspect, inspect_with, unpack, unpack_to_memory};
