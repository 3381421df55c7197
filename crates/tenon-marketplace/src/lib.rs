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
//! - [`KeyRotation`] is a signed statement that a publisher's old key hands
//!   over to a new one; [`TrustLevel`] is what a trusted key confers.
//! - [`verify`] decides, from the archive's sha256 and the signature file
//!   alone, whether the operator's [`TrustPolicy`] accepts the package —
//!   before anything is decompressed.
//! - [`inspect`], [`unpack`] and [`unpack_to_memory`] read an archive under
//!   [`UnpackLimits`], refusing path traversal, links, devices, duplicates,
//!   anything outside the layout, oversized entries and decompression bombs,
//!   corrupt or truncated streams, and a missing or invalid manifest; `unpack`
//!   puts a package in place only once all of it checked out.
//!
//! - [`index`] is the marketplace's sparse index format (one file per
//!   plugin, one [`IndexEntry`] line per version) and [`metadata`] the
//!   TUF-lite metadata that signs it (root, targets, snapshot, timestamp),
//!   with [`TrustedMetadata`], the client-side checks that refuse forged,
//!   expired, rolled-back and mixed-up metadata.
//!
//! - [`catalog`] holds the types of the marketplace's JSON catalog (search
//!   pages, listings, categories, curated and popular lists), shared by the
//!   server and the client.
//!
//! - [`client`] (the `client` feature) is the marketplace client: it
//!   fetches the metadata and index over HTTP with a cache, refuses what the
//!   chain of trust does not vouch for, and downloads packages checked
//!   against their pinned size and sha256 and the trust policy.
//!
//! Every package failure is a [`PackageError`] naming what went wrong and
//! where; index and metadata failures are [`IndexError`] and
//! [`MetadataError`]. The formats are specified in `docs/package-format.md`
//! and `docs/marketplace.md`.
//!
//! Not here: the marketplace server (`tenon-market-server`, its own database).
//! Not here (ever): where installed plugins are recorded
//! (`tenon-registry`) and how they run (`tenon-sandbox`).
//!
//! Depend on it to make, check or install packages: the engine (`install`),
//! the CLI (`pack`, `install`, key management) and the marketplace server do.

pub mod catalog;
#[cfg(feature = "client")]
pub mod client;
mod digest;
mod error;
pub mod index;
mod info;
mod layout;
mod limits;
mod manifest;
pub mod metadata;
mod pack;
mod path;
mod read;
mod rotation;
mod sign;
mod trust;
mod unpack;

pub use digest::{DigestParseError, Sha256Digest};
pub use error::{EntryName, LinkKind, PackageError, PackageId, SpecialKind};
pub use index::{IndexEntry, IndexError, index_path, parse_index_file};
pub use info::{FileInfo, PACKAGE_EXTENSION, PackageContents, PackageInfo, UnpackedPackage};
pub use layout::{ASSETS_DIR, FileKind, MANIFEST_FILES};
pub use limits::UnpackLimits;
pub use metadata::{MetadataError, TrustedMetadata};
pub use pack::{PACKAGE_MTIME, PackOptions, PackedPackage, pack};
pub use path::{MAX_COMPONENT_LEN, MAX_PATH_LEN, PathProblem};
pub use rotation::{KeyRotation, PUBLISHER_ROTATION_CONTEXT, ROTATION_CONTEXT};
pub use sign::{
    KeyId, MAX_SIGNATURE_FILE_BYTES, MAX_SIGNATURES, PublicKey, Role, SIGNATURE_CONTEXT,
    SIGNATURE_EXTENSION, SignatureEntry, SignatureFile, SigningKey, signed_message,
};
pub use trust::{
    AllowUnsigned, Origin, Signer, Trust, TrustLevel, TrustPolicy, Verification, VerifiedPackage,
    verify, verify_checksum,
};
pub use unpack::{inspect, inspect_with, unpack, unpack_to_memory};
