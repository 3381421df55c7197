//! TUF-lite: the signed metadata that covers a marketplace's index.
//!
//! Four roles, as in TUF (spec 1.0): **root** names the keys of every role
//! and how many of them must sign (kept offline; rotating it needs the old
//! and the new threshold), **targets** pins the length and sha256 of every
//! index file, **snapshot** pins the targets version, and **timestamp** pins
//! the snapshot, with a short expiry. Each file is
//! `{"signed": {…}, "signatures": [{"keyid": …, "sig": …}]}`; a signature
//! covers [`METADATA_CONTEXT`], the role and the exact bytes of `signed` as
//! they appear in the file (no canonical JSON needed).
//!
//! [`TrustedMetadata`] is the client's side: it accepts a new file only if
//! it is signed by its role's threshold (each key counted once), not expired
//! (freeze), not older than what it trusted before (rollback), and exactly
//! the version and bytes the role above it pins (mix-and-match). The server
//! makes the files with [`sign_metadata`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::digest::Sha256Digest;
use crate::sign::{KeyId, PublicKey, SigningKey};

/// The domain-separation prefix of every metadata signature.
pub const METADATA_CONTEXT: &str = "tenon marketplace metadata v1";

/// The metadata format version this crate reads and writes.
pub const SPEC_VERSION: u32 = 1;

/// The largest root file read, in bytes.
pub const MAX_ROOT_BYTES: u64 = 512 * 1024;

/// The most root rotations a client follows in one refresh. A real
/// marketplace rotates its root a handful of times in its life; the bound
/// stops a server that holds old root keys from walking a client through
/// an endless chain (python-tuf stops at 32, tough at 1024).
pub const MAX_ROOT_ROTATIONS: u32 = 1024;
/// The largest timestamp file read, in bytes.
pub const MAX_TIMESTAMP_BYTES: u64 = 16 * 1024;
/// The largest snapshot file read, in bytes.
pub const MAX_SNAPSHOT_BYTES: u64 = 64 * 1024;
/// The largest targets file read, in bytes (about 400,000 plugins).
pub const MAX_TARGETS_BYTES: u64 = 64 * 1024 * 1024;

/// The most signatures one metadata file may carry.
pub const MAX_METADATA_SIGNATURES: usize = 64;

/// The name snapshot pins targets under, and timestamp pins snapshot under.
pub const TARGETS_FILE: &str = "targets.json";
/// See [`TARGETS_FILE`].
pub const SNAPSHOT_FILE: &str = "snapshot.json";

/// A metadata role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetaRole {
    /// Names every role's keys and thresholds.
    Root,
    /// Pins every index file.
    Targets,
    /// Pins the targets version.
    Snapshot,
    /// Pins the snapshot; expires soonest.
    Timestamp,
}

impl MetaRole {
    /// Every role.
    pub const ALL: [Self; 4] = [Self::Root, Self::Targets, Self::Snapshot, Self::Timestamp];

    /// `root`, `targets`, `snapshot` or `timestamp`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Targets => "targets",
            Self::Snapshot => "snapshot",
            Self::Timestamp => "timestamp",
        }
    }
}

impl fmt::Display for MetaRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a metadata file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The file is bigger than its role allows (endless data).
    #[error("the {role} metadata is {size} bytes or more, more than the limit of {limit}")]
    TooLarge {
        /// The role.
        role: MetaRole,
        /// Its size, as far as it was read.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file does not parse, or breaks the format.
    #[error("invalid {role} metadata: {message}")]
    Invalid {
        /// The role.
        role: MetaRole,
        /// What is wrong.
        message: String,
    },
    /// Fewer trusted keys signed than the threshold asks.
    #[error(
        "the {role} metadata has {valid} valid signature(s) by {signer} {role} keys, below the threshold of {threshold}"
    )]
    Threshold {
        /// The role.
        role: MetaRole,
        /// Whose keys were counted (`trusted`, `the new root's`).
        signer: &'static str,
        /// Distinct trusted keys whose signature verified.
        valid: usize,
        /// How many are needed.
        threshold: u32,
    },
    /// The file has expired: the server, or someone between, froze it.
    #[error("the {role} metadata expired at {expires} (it is now {now}); refusing a frozen index")]
    Expired {
        /// The role.
        role: MetaRole,
        /// When it expired (RFC 3339).
        expires: String,
        /// The time checked against (RFC 3339).
        now: String,
    },
    /// The file is older than one trusted before (a replay).
    #[error(
        "the {role} metadata is version {offered}, older than version {trusted} trusted before; refusing a rollback"
    )]
    Rollback {
        /// The role (for the version pinned inside a file: the pinned role).
        role: MetaRole,
        /// The version trusted before.
        trusted: u64,
        /// The version offered.
        offered: u64,
    },
    /// The file is not the version the role above it pins (mix-and-match).
    #[error(
        "the {role} metadata is version {found}, but {pinned_by} pins version {expected}; refusing metadata from different moments"
    )]
    VersionMismatch {
        /// The role.
        role: MetaRole,
        /// Who pins it.
        pinned_by: MetaRole,
        /// The pinned version.
        expected: u64,
        /// The version offered.
        found: u64,
    },
    /// The bytes are not the ones the role above pins.
    #[error("{what} does not match what {pinned_by} pins: {detail}")]
    Mismatch {
        /// The file (`snapshot.json`, `index/acme/hello`).
        what: String,
        /// Who pins it.
        pinned_by: MetaRole,
        /// Length or hash, expected and found.
        detail: String,
    },
    /// A new root is not the next version.
    #[error("a root update must be version {expected}, this is {found}")]
    RootVersion {
        /// The next version.
        expected: u64,
        /// What was offered.
        found: u64,
    },
    /// More root rotations were offered in one refresh than any real
    /// marketplace makes (a server holding old root keys walking a client
    /// through an endless chain).
    #[error("the marketplace offered more than {limit} root rotations in one refresh")]
    TooManyRootRotations {
        /// [`MAX_ROOT_ROTATIONS`].
        limit: u32,
    },
    /// A step was taken out of order (snapshot before timestamp …).
    #[error("no trusted {0} metadata yet: update it first")]
    Missing(MetaRole),
    /// Targets does not list the file.
    #[error("`{0}` is not listed in the trusted targets metadata")]
    UnknownTarget(String),
}

/// An RFC 3339 time, as the metadata writes it.
fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The keys of one role and how many must sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleKeys {
    /// The role's keys, by id (each must be in [`Root::keys`]).
    pub keyids: Vec<KeyId>,
    /// How many distinct keys must sign (at least 1).
    pub threshold: u32,
}

/// The root role: every role's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Root {
    /// Always `root`.
    pub role: MetaRole,
    /// [`SPEC_VERSION`].
    pub spec_version: u32,
    /// Starts at 1; each rotation adds 1.
    pub version: u64,
    /// When it stops being trusted.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// Every key any role uses, by id.
    pub keys: BTreeMap<KeyId, PublicKey>,
    /// The keys and threshold of each of the four roles.
    pub roles: BTreeMap<MetaRole, RoleKeys>,
}

/// The pinned length, sha256 and (for metadata) version of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMeta {
    /// Its version, for metadata files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Its length in bytes.
    pub length: u64,
    /// The sha256 of its bytes.
    pub sha256: Sha256Digest,
}

impl FileMeta {
    /// The length and sha256 of `bytes`.
    pub fn of(bytes: &[u8], version: Option<u64>) -> Self {
        Self {
            version,
            length: bytes.len() as u64,
            sha256: Sha256Digest::of(bytes),
        }
    }

    fn check(&self, what: &str, pinned_by: MetaRole, bytes: &[u8]) -> Result<(), MetadataError> {
        let mismatch = |detail: String| MetadataError::Mismatch {
            what: what.to_owned(),
            pinned_by,
            detail,
        };
        if bytes.len() as u64 != self.length {
            return Err(mismatch(format!(
                "{} bytes, expected {}",
                bytes.len(),
                self.length
            )));
        }
        let actual = Sha256Digest::of(bytes);
        if actual != self.sha256 {
            return Err(mismatch(format!(
                "sha256 {actual}, expected {}",
                self.sha256
            )));
        }
        Ok(())
    }
}

/// The targets role: every index file, by path (`index/acme/hello`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Always `targets`.
    pub role: MetaRole,
    /// [`SPEC_VERSION`].
    pub spec_version: u32,
    /// Grows by one on every change.
    pub version: u64,
    /// When it stops being trusted.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// Each index file's length and sha256, by path.
    pub targets: BTreeMap<String, FileMeta>,
}

/// The snapshot and timestamp roles: one pinned metadata file each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pinning {
    /// `snapshot` or `timestamp`.
    pub role: MetaRole,
    /// [`SPEC_VERSION`].
    pub spec_version: u32,
    /// Grows by one on every change.
    pub version: u64,
    /// When it stops being trusted.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// The pinned file ([`TARGETS_FILE`] or [`SNAPSHOT_FILE`]), with its
    /// version.
    pub meta: BTreeMap<String, FileMeta>,
}

/// A metadata body: what [`sign_metadata`] signs and [`open`] reads.
pub trait Signed: Serialize + DeserializeOwned {
    /// Its role (for [`Pinning`]: the role it claims, checked against the
    /// one expected).
    fn role(&self) -> MetaRole;
    /// Its version.
    fn version(&self) -> u64;
    /// Its expiry.
    fn expires(&self) -> OffsetDateTime;
    /// Its format version.
    fn spec_version(&self) -> u32;
}

macro_rules! signed_body {
    ($($ty:ty),*) => {$(
        impl Signed for $ty {
            fn role(&self) -> MetaRole { self.role }
            fn version(&self) -> u64 { self.version }
            fn expires(&self) -> OffsetDateTime { self.expires }
            fn spec_version(&self) -> u32 { self.spec_version }
        }
    )*};
}
signed_body!(Root, Targets, Pinning);

/// One signature of a metadata file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaSignature {
    /// The signing key's id.
    pub keyid: KeyId,
    /// The ed25519 signature, base64.
    pub sig: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    signed: &'a RawValue,
    signatures: Vec<MetaSignature>,
}

/// The bytes a metadata signature covers.
pub fn metadata_message(role: MetaRole, signed: &[u8]) -> Vec<u8> {
    let mut message = format!("{METADATA_CONTEXT}\n{role}\n").into_bytes();
    message.extend_from_slice(signed);
    message
}

/// Serializes `body` and signs it with each of `keys`: the file's bytes.
pub fn sign_metadata<T: Signed>(body: &T, keys: &[&SigningKey]) -> Vec<u8> {
    let signed = serde_json::to_string(body).expect("metadata always serializes");
    let message = metadata_message(body.role(), signed.as_bytes());
    let signatures = keys
        .iter()
        .map(|key| MetaSignature {
            keyid: key.key_id(),
            sig: BASE64.encode(key.sign_message(&message)),
        })
        .collect();
    let raw = RawValue::from_string(signed).expect("serde_json output is valid JSON");
    serde_json::to_vec(&Envelope {
        signed: &raw,
        signatures,
    })
    .expect("metadata always serializes")
}

/// A metadata file parsed, not yet trusted: its body and the keys whose
/// signatures verify over it.
#[derive(Debug, Clone)]
pub struct Opened<T> {
    /// The body.
    pub body: T,
    /// Ids (recomputed from the keys) of the keys whose signature verified.
    signers: BTreeSet<KeyId>,
}

/// Parses a metadata file of `role` (at most `limit` bytes) and checks its
/// signatures against the keys listed in `keys`; which of them count, and
/// how many are needed, is [`Opened::require`]'s job.
pub fn open<T: Signed>(
    role: MetaRole,
    bytes: &[u8],
    limit: u64,
    keys: &BTreeMap<KeyId, PublicKey>,
) -> Result<Opened<T>, MetadataError> {
    if bytes.len() as u64 > limit {
        return Err(MetadataError::TooLarge {
            role,
            size: bytes.len() as u64,
            limit,
        });
    }
    let invalid = |message: String| MetadataError::Invalid { role, message };
    let envelope: Envelope<'_> =
        serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    if envelope.signatures.len() > MAX_METADATA_SIGNATURES {
        return Err(invalid(format!(
            "{} signatures, more than the limit of {MAX_METADATA_SIGNATURES}",
            envelope.signatures.len()
        )));
    }
    let body: T =
        serde_json::from_str(envelope.signed.get()).map_err(|e| invalid(e.to_string()))?;
    if body.role() != role {
        return Err(invalid(format!("it says it is {} metadata", body.role())));
    }
    if body.spec_version() != SPEC_VERSION {
        return Err(invalid(format!(
            "spec_version {} is not supported (this client reads {SPEC_VERSION})",
            body.spec_version()
        )));
    }
    let message = metadata_message(role, envelope.signed.get().as_bytes());
    let mut signers = BTreeSet::new();
    for signature in &envelope.signatures {
        let Some(key) = keys.get(&signature.keyid) else {
            continue;
        };
        let Ok(raw) = BASE64.decode(&signature.sig) else {
            continue;
        };
        let Ok(raw) = <[u8; 64]>::try_from(raw) else {
            continue;
        };
        if key.verifies(&message, &raw) {
            signers.insert(key.key_id());
        }
    }
    Ok(Opened { body, signers })
}

impl<T: Signed> Opened<T> {
    /// Checks that at least `threshold` distinct keys of `role_keys` signed
    /// (a key listed twice, or signing twice, counts once).
    pub fn require(
        &self,
        role_keys: &RoleKeys,
        keys: &BTreeMap<KeyId, PublicKey>,
        signer: &'static str,
    ) -> Result<(), MetadataError> {
        let allowed: BTreeSet<KeyId> = role_keys
            .keyids
            .iter()
            .filter_map(|id| keys.get(id).map(PublicKey::key_id))
            .collect();
        let valid = self.signers.intersection(&allowed).count();
        if role_keys.threshold == 0 || valid < role_keys.threshold as usize {
            return Err(MetadataError::Threshold {
                role: self.body.role(),
                signer,
                valid,
                threshold: role_keys.threshold,
            });
        }
        Ok(())
    }

    fn unexpired(&self, now: OffsetDateTime) -> Result<(), MetadataError> {
        if self.body.expires() <= now {
            return Err(MetadataError::Expired {
                role: self.body.role(),
                expires: rfc3339(self.body.expires()),
                now: rfc3339(now),
            });
        }
        Ok(())
    }
}

impl Root {
    /// Checks the root's own consistency: all four roles present, each
    /// threshold at least 1 and reachable with the keys listed, each key id
    /// the id of its key.
    pub fn check(&self) -> Result<(), MetadataError> {
        let invalid = |message: String| MetadataError::Invalid {
            role: MetaRole::Root,
            message,
        };
        for (id, key) in &self.keys {
            if key.key_id() != *id {
                return Err(invalid(format!(
                    "key `{id}` is listed under the wrong id (its id is {})",
                    key.key_id()
                )));
            }
        }
        for role in MetaRole::ALL {
            let Some(keys) = self.roles.get(&role) else {
                return Err(invalid(format!("the {role} role is missing")));
            };
            let known: BTreeSet<&KeyId> = keys
                .keyids
                .iter()
                .filter(|id| self.keys.contains_key(*id))
                .collect();
            if keys.threshold == 0 || known.len() < keys.threshold as usize {
                return Err(invalid(format!(
                    "the {role} role needs {} signature(s) but lists {} known key(s)",
                    keys.threshold,
                    known.len()
                )));
            }
        }
        Ok(())
    }

    fn role_keys(&self, role: MetaRole) -> &RoleKeys {
        // `check` ran on every root this type trusts.
        &self.roles[&role]
    }
}

/// The metadata a client trusts, and the versions it has seen: keep
/// [`TrustedMetadata::versions`] across restarts so that a rollback is
/// refused then too.
#[derive(Debug, Clone)]
pub struct TrustedMetadata {
    root: Root,
    timestamp: Option<Pinning>,
    snapshot: Option<Pinning>,
    targets: Option<Targets>,
    floor: SeenVersions,
}

/// The highest version of each role a client has trusted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeenVersions {
    /// Timestamp.
    pub timestamp: u64,
    /// Snapshot.
    pub snapshot: u64,
    /// Targets.
    pub targets: u64,
}

impl TrustedMetadata {
    /// Starts from a root the operator trusts (shipped with the client or
    /// pinned at first use): it must be signed by its own root threshold and
    /// unexpired. `seen` are the versions trusted before, if any.
    pub fn new(
        root_bytes: &[u8],
        seen: SeenVersions,
        now: OffsetDateTime,
    ) -> Result<Self, MetadataError> {
        let trusted = Self::trusting_root(root_bytes, seen)?;
        trusted.check_root_fresh(now)?;
        Ok(trusted)
    }

    /// Starts from a root trusted before, which may have expired since:
    /// it must be signed by its own root threshold. Walk it forward with
    /// [`Self::update_root`], then [`Self::check_root_fresh`] (TUF checks
    /// only the last root's expiry, so that a client away for longer than
    /// a root's lifetime can still follow the rotations).
    pub fn trusting_root(root_bytes: &[u8], seen: SeenVersions) -> Result<Self, MetadataError> {
        let opened = Self::open_root(root_bytes)?;
        opened.require(
            opened.body.role_keys(MetaRole::Root),
            &opened.body.keys,
            "its own",
        )?;
        Ok(Self {
            root: opened.body,
            timestamp: None,
            snapshot: None,
            targets: None,
            floor: seen,
        })
    }

    fn open_root(bytes: &[u8]) -> Result<Opened<Root>, MetadataError> {
        // The keys to check against are in the file itself; thresholds
        // decide which of them count.
        let invalid = |message: String| MetadataError::Invalid {
            role: MetaRole::Root,
            message,
        };
        if bytes.len() as u64 > MAX_ROOT_BYTES {
            return Err(MetadataError::TooLarge {
                role: MetaRole::Root,
                size: bytes.len() as u64,
                limit: MAX_ROOT_BYTES,
            });
        }
        let envelope: Envelope<'_> =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        let body: Root =
            serde_json::from_str(envelope.signed.get()).map_err(|e| invalid(e.to_string()))?;
        body.check()?;
        open(MetaRole::Root, bytes, MAX_ROOT_BYTES, &body.keys)
    }

    /// The trusted root.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The highest versions trusted so far (persist them).
    pub fn versions(&self) -> SeenVersions {
        self.floor
    }

    /// Accepts the next root (`version + 1`): it must be signed by the
    /// trusted root's threshold and by its own. Expiry is checked only for
    /// the last root of a chain (TUF 5.3.10), by [`Self::check_root_fresh`].
    /// A new root forgets the timestamp, snapshot and targets trusted before
    /// when their keys changed.
    pub fn update_root(&mut self, bytes: &[u8]) -> Result<(), MetadataError> {
        let new = Self::open_root(bytes)?;
        let expected = self.root.version.checked_add(1);
        if expected != Some(new.body.version) {
            return Err(MetadataError::RootVersion {
                expected: expected.unwrap_or(u64::MAX),
                found: new.body.version,
            });
        }
        // Signatures by the old root's keys, counted against the old threshold.
        let by_old = open::<Root>(MetaRole::Root, bytes, MAX_ROOT_BYTES, &self.root.keys)?;
        by_old.require(
            self.root.role_keys(MetaRole::Root),
            &self.root.keys,
            "trusted",
        )?;
        new.require(
            new.body.role_keys(MetaRole::Root),
            &new.body.keys,
            "the new root's",
        )?;
        for role in [MetaRole::Timestamp, MetaRole::Snapshot, MetaRole::Targets] {
            if self.root.role_keys(role) != new.body.role_keys(role) {
                // TUF 5.3.11: a rotated role starts over.
                match role {
                    MetaRole::Timestamp => {
                        self.timestamp = None;
                        self.floor.timestamp = 0;
                    }
                    MetaRole::Snapshot => {
                        self.snapshot = None;
                        self.floor.snapshot = 0;
                    }
                    _ => {
                        self.targets = None;
                        self.floor.targets = 0;
                    }
                }
            }
        }
        self.root = new.body;
        Ok(())
    }

    /// Refuses an expired root (after the last [`Self::update_root`]).
    pub fn check_root_fresh(&self, now: OffsetDateTime) -> Result<(), MetadataError> {
        if self.root.expires <= now {
            return Err(MetadataError::Expired {
                role: MetaRole::Root,
                expires: rfc3339(self.root.expires),
                now: rfc3339(now),
            });
        }
        Ok(())
    }

    fn open_role<T: Signed>(
        &self,
        role: MetaRole,
        bytes: &[u8],
        limit: u64,
        now: OffsetDateTime,
    ) -> Result<T, MetadataError> {
        let opened = open::<T>(role, bytes, limit, &self.root.keys)?;
        opened.require(self.root.role_keys(role), &self.root.keys, "trusted")?;
        opened.unexpired(now)?;
        Ok(opened.body)
    }

    /// Opens `role`'s file, which the role above pins (`pinned_by`, under
    /// the name `file`): at most the pinned length, exactly the pinned
    /// bytes and version, signed and unexpired.
    fn open_pinned<T: Signed>(
        &self,
        role: MetaRole,
        (pinned_by, file, pin): (MetaRole, &str, &FileMeta),
        bytes: &[u8],
        limit: u64,
        now: OffsetDateTime,
    ) -> Result<T, MetadataError> {
        let limit = pin.length.min(limit);
        if bytes.len() as u64 > limit {
            return Err(MetadataError::TooLarge {
                role,
                size: bytes.len() as u64,
                limit,
            });
        }
        pin.check(file, pinned_by, bytes)?;
        let new: T = self.open_role(role, bytes, limit, now)?;
        let expected = pin.version.unwrap_or_default();
        if new.version() != expected {
            return Err(MetadataError::VersionMismatch {
                role,
                pinned_by,
                expected,
                found: new.version(),
            });
        }
        Ok(new)
    }

    /// Accepts a timestamp: signed, unexpired, not older than the one
    /// trusted before, and pinning a snapshot not older than before.
    pub fn update_timestamp(
        &mut self,
        bytes: &[u8],
        now: OffsetDateTime,
    ) -> Result<&Pinning, MetadataError> {
        let new: Pinning = self.open_role(MetaRole::Timestamp, bytes, MAX_TIMESTAMP_BYTES, now)?;
        not_older(MetaRole::Timestamp, self.floor.timestamp, new.version)?;
        let pinned = pinned_version(&new, SNAPSHOT_FILE)?;
        not_older(MetaRole::Snapshot, self.floor.snapshot, pinned)?;
        self.floor.timestamp = new.version;
        Ok(self.timestamp.insert(new))
    }

    /// Accepts a snapshot: the bytes the timestamp pins, signed, unexpired,
    /// pinning a targets version not older than before.
    pub fn update_snapshot(
        &mut self,
        bytes: &[u8],
        now: OffsetDateTime,
    ) -> Result<&Pinning, MetadataError> {
        let pin = self
            .timestamp
            .as_ref()
            .ok_or(MetadataError::Missing(MetaRole::Timestamp))?
            .meta[SNAPSHOT_FILE]
            .clone();
        let new: Pinning = self.open_pinned(
            MetaRole::Snapshot,
            (MetaRole::Timestamp, SNAPSHOT_FILE, &pin),
            bytes,
            MAX_SNAPSHOT_BYTES,
            now,
        )?;
        let targets = pinned_version(&new, TARGETS_FILE)?;
        not_older(MetaRole::Targets, self.floor.targets, targets)?;
        self.floor.snapshot = new.version;
        Ok(self.snapshot.insert(new))
    }

    /// Accepts targets: the bytes the snapshot pins, signed and unexpired.
    pub fn update_targets(
        &mut self,
        bytes: &[u8],
        now: OffsetDateTime,
    ) -> Result<&Targets, MetadataError> {
        let pin = self
            .snapshot
            .as_ref()
            .ok_or(MetadataError::Missing(MetaRole::Snapshot))?
            .meta[TARGETS_FILE]
            .clone();
        let new: Targets = self.open_pinned(
            MetaRole::Targets,
            (MetaRole::Snapshot, TARGETS_FILE, &pin),
            bytes,
            MAX_TARGETS_BYTES,
            now,
        )?;
        self.floor.targets = new.version;
        Ok(self.targets.insert(new))
    }

    /// What the trusted targets pin for `path` (its length is the most a
    /// download of it may read).
    pub fn target(&self, path: &str) -> Result<&FileMeta, MetadataError> {
        let targets = self
            .targets
            .as_ref()
            .ok_or(MetadataError::Missing(MetaRole::Targets))?;
        targets
            .targets
            .get(path)
            .ok_or_else(|| MetadataError::UnknownTarget(path.to_owned()))
    }

    /// Checks downloaded bytes of `path` against the trusted targets.
    pub fn check_target(&self, path: &str, bytes: &[u8]) -> Result<(), MetadataError> {
        self.target(path)?.check(path, MetaRole::Targets, bytes)
    }
}

fn not_older(role: MetaRole, trusted: u64, offered: u64) -> Result<(), MetadataError> {
    if offered < trusted {
        return Err(MetadataError::Rollback {
            role,
            trusted,
            offered,
        });
    }
    Ok(())
}

fn pinned_version(body: &Pinning, file: &str) -> Result<u64, MetadataError> {
    let invalid = |message: String| MetadataError::Invalid {
        role: body.role,
        message,
    };
    let pin = body
        .meta
        .get(file)
        .ok_or_else(|| invalid(format!("it does not pin `{file}`")))?;
    if body.meta.len() != 1 {
        return Err(invalid(format!("it must pin only `{file}`")));
    }
    pin.version
        .ok_or_else(|| invalid(format!("it pins `{file}` without a version")))
}
