//! The operator's [`TrustPolicy`] and [`verify`]: deciding, before anything
//! is unpacked, whether a package may be installed.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tenon_manifest::{PluginId, Version};

use crate::digest::Sha256Digest;
use crate::error::{PackageError, PackageId};
use crate::info::{PackageContents, PackageInfo, UnpackedPackage};
use crate::limits::UnpackLimits;
use crate::rotation::KeyRotation;
use crate::sign::{KeyId, PublicKey, Role, SignatureEntry, SignatureFile};
use crate::unpack::{unpack_checked, unpack_to_memory};

/// Where a package comes from, as far as trust is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The operator's own machine: a file they built or copied by hand
    /// (development).
    Local,
    /// A marketplace, a URL, or anything fetched for the operator.
    Remote,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Remote => "remote",
        })
    }
}

/// When packages without a trusted signature may be installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllowUnsigned {
    /// Never (the default).
    #[default]
    Never,
    /// Only from [`Origin::Local`] (development: nothing fetched is
    /// installed unsigned).
    Local,
    /// From anywhere (tests and closed networks only).
    Always,
}

impl AllowUnsigned {
    /// Whether a package from `origin` may be installed unsigned.
    pub fn allows(self, origin: Origin) -> bool {
        match self {
            Self::Never => false,
            Self::Local => origin == Origin::Local,
            Self::Always => true,
        }
    }
}

/// How far a plugin is trusted, which caps what it may be granted and how it
/// may run (the engine enforces the caps):
///
/// - `untrusted`: WebAssembly only, no private networks, fail-open hooks
///   only;
/// - `partner`: WebAssembly or a confined process, not native code;
/// - `internal`: anything, native code in the host's process included.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TrustLevel {
    /// Unproven code.
    #[default]
    Untrusted,
    /// A publisher the operator trusts with a key.
    Partner,
    /// The operator's own code.
    Internal,
}

impl TrustLevel {
    /// Every level, lowest first.
    pub const ALL: [Self; 3] = [Self::Untrusted, Self::Partner, Self::Internal];

    /// `untrusted`, `partner` or `internal`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Untrusted => "untrusted",
            Self::Partner => "partner",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for TrustLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TrustLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|level| level.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a trust level: untrusted, partner or internal"))
    }
}

/// Which signatures an operator requires, and whose keys they trust.
///
/// A package is **trusted** when every signature in its signature file
/// verifies, at least one author signature is by a key trusted for the
/// plugin's publisher (in `author_keys`, or in `publisher_keys` under the
/// publisher, or any author key when `trust_marketplace_countersigned` and a
/// trusted marketplace counter-signed), and, when
/// `require_marketplace_signature`, at least one marketplace signature is by
/// a key in `marketplace_keys`.
///
/// A package with no signatures, or with valid signatures none of which the
/// policy trusts, is installed only where `allow_unsigned` allows it, at
/// `unsigned_level`. A signature that does not verify, a signature by a key
/// in `revoked_keys`, or a signature file for another archive, is always
/// refused.
///
/// A key in `rotations` (a [`KeyRotation`] signed by a trusted key) is
/// trusted as the key it rotates from, for the plugins that key is trusted
/// for (only the named publisher's, when the statement names one). Every statement is followed (a key two old keys hand over to
/// succeeds both); a revoked key cuts every chain through it; one key
/// handing over to two keys, or a cycle, makes the policy invalid. A
/// trusted author key confers the level `key_levels` names for it (by the
/// whole public key), else, when it is trusted for the plugin only through
/// a rotation, the level of the key it rotated from, else `partner`: a
/// rotation never raises the level of a key trusted on its own.
///
/// Plugin directories carry no signatures: they are installed only with the
/// development switch `allow_unsigned_directories`, at `unsigned_level`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustPolicy {
    /// Author keys trusted for every publisher.
    pub author_keys: Vec<PublicKey>,
    /// Author keys trusted for one publisher's plugins only, by publisher.
    pub publisher_keys: BTreeMap<String, Vec<PublicKey>>,
    /// Marketplace keys whose counter-signatures count.
    pub marketplace_keys: Vec<PublicKey>,
    /// Whether a trusted marketplace counter-signature is required.
    pub require_marketplace_signature: bool,
    /// Whether a trusted marketplace counter-signature vouches for the
    /// author's key (so operators need not list every author).
    pub trust_marketplace_countersigned: bool,
    /// The marketplace to install from when none is named (an `http://`
    /// or `https://` URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marketplace: Option<String>,
    /// When packages without a trusted signature are accepted.
    pub allow_unsigned: AllowUnsigned,
    /// The development switch: whether plugin directories (never signed)
    /// may be installed.
    pub allow_unsigned_directories: bool,
    /// The level unsigned and untrusted packages (and directories) reach.
    pub unsigned_level: TrustLevel,
    /// The level each trusted key confers, by public key (base64; a short
    /// key id is not enough): `partner` when not named.
    pub key_levels: BTreeMap<PublicKey, TrustLevel>,
    /// Keys whose signatures are refused, whatever else trusts them.
    pub revoked_keys: Vec<PublicKey>,
    /// Signed statements handing a key's trust over to a new key.
    pub rotations: Vec<KeyRotation>,
}

impl TrustPolicy {
    /// A policy for development: no keys, every package and plugin
    /// directory accepted, signed or not, as `internal` (bad and revoked
    /// signatures are still refused).
    pub fn development() -> Self {
        Self {
            allow_unsigned: AllowUnsigned::Always,
            allow_unsigned_directories: true,
            unsigned_level: TrustLevel::Internal,
            ..Self::default()
        }
    }

    /// Parses a policy file (TOML) and checks its rotation statements.
    pub fn from_toml(text: &str) -> Result<Self, PackageError> {
        let policy: Self = toml::from_str(text).map_err(|e| PackageError::InvalidPolicy {
            message: e.to_string(),
        })?;
        policy.check()?;
        Ok(policy)
    }

    /// The TOML form of the policy.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a trust policy always serializes")
    }

    /// Checks every publisher name (by the rules of a plugin id's
    /// publisher part), every rotation statement's signature, and that no
    /// two statements conflict (one key handing over to two keys, or a
    /// cycle).
    pub fn check(&self) -> Result<(), PackageError> {
        for publisher in self.publisher_keys.keys() {
            PluginId::check_publisher(publisher).map_err(|e| PackageError::InvalidPolicy {
                message: format!("`publisher_keys.{publisher}` does not name a publisher: {e}"),
            })?;
        }
        if let Some(url) = &self.marketplace
            && crate::catalog::marketplace_url(url).is_none()
        {
            return Err(PackageError::InvalidPolicy {
                message: format!("`marketplace = {url:?}` is not an http:// or https:// URL"),
            });
        }
        self.rotations.iter().try_for_each(KeyRotation::check)?;
        let conflict = |message: String| PackageError::InvalidPolicy {
            message: format!("conflicting rotation statements: {message}; keep one"),
        };
        for (i, one) in self.rotations.iter().enumerate() {
            if let Some(other) = self.rotations[i + 1..]
                .iter()
                .find(|r| r.from == one.from && r.to != one.to && r.overlaps(one))
            {
                return Err(conflict(format!(
                    "key {} hands over to both {} and {}",
                    one.from.key_id(),
                    one.to.key_id(),
                    other.to.key_id()
                )));
            }
            if self.walk_back(&one.from, None, false).contains(&one.to) {
                return Err(conflict(format!(
                    "key {} hands over to {}, which was rotated from it (a cycle)",
                    one.from.key_id(),
                    one.to.key_id()
                )));
            }
        }
        Ok(())
    }

    /// Whether `key` is revoked.
    pub fn is_revoked(&self, key: &PublicKey) -> bool {
        self.revoked_keys.contains(key)
    }

    /// The keys `key` was rotated from, nearest first, following every
    /// verified rotation statement (each key once). A revoked key hands
    /// nothing over: a chain through one ends there (and a revoked `key`
    /// was rotated from nothing).
    pub fn rotated_from(&self, key: &PublicKey) -> Vec<PublicKey> {
        if self.is_revoked(key) {
            return Vec::new();
        }
        self.walk_back(key, None, true)
    }

    /// [`rotated_from`](Self::rotated_from), following only the statements
    /// that speak for `publisher` (those made for it, and those made for
    /// no publisher in particular).
    pub fn rotated_from_for(&self, publisher: &str, key: &PublicKey) -> Vec<PublicKey> {
        if self.is_revoked(key) {
            return Vec::new();
        }
        self.walk_back(key, Some(publisher), true)
    }

    fn walk_back(
        &self,
        key: &PublicKey,
        publisher: Option<&str>,
        cut_at_revoked: bool,
    ) -> Vec<PublicKey> {
        let mut chain: Vec<PublicKey> = Vec::new();
        let mut next = 0;
        let mut current = *key;
        loop {
            for rotation in self
                .rotations
                .iter()
                .filter(|r| r.to == current && publisher.is_none_or(|p| r.applies_to(p)))
            {
                let from = rotation.from;
                if from == *key
                    || chain.contains(&from)
                    || (cut_at_revoked && self.is_revoked(&from))
                    || rotation.check().is_err()
                {
                    continue;
                }
                chain.push(from);
            }
            let Some(earlier) = chain.get(next) else {
                return chain;
            };
            current = *earlier;
            next += 1;
        }
    }

    /// Whether `new` is `old`, or was rotated from it by verified
    /// statements through no revoked key.
    pub fn succeeds(&self, old: &PublicKey, new: &PublicKey) -> bool {
        old == new || self.rotated_from(new).contains(old)
    }

    /// [`succeeds`](Self::succeeds) by the statements that speak for
    /// `publisher` only: what moves `publisher`'s binding.
    pub fn succeeds_for(&self, publisher: &str, old: &PublicKey, new: &PublicKey) -> bool {
        old == new || self.rotated_from_for(publisher, new).contains(old)
    }

    /// The level a trusted author key confers on its own: the one
    /// `key_levels` names for it, else `partner`.
    pub fn level_of(&self, key: &PublicKey) -> TrustLevel {
        self.key_levels
            .get(key)
            .copied()
            .unwrap_or(TrustLevel::Partner)
    }

    /// The level `key` confers on `plugin`: the level `key_levels` names
    /// for it; else, when it is trusted for `plugin` only as the successor
    /// of keys that are, the lowest of those keys' levels; else
    /// `partner`. A rotation never raises a key trusted on its own, nor
    /// carries a level to another publisher's plugins.
    pub fn level_for(&self, plugin: &PluginId, key: &PublicKey) -> TrustLevel {
        if let Some(level) = self.key_levels.get(key) {
            return *level;
        }
        if self.trusts_directly(plugin, key) {
            return TrustLevel::Partner;
        }
        self.rotated_from_for(plugin.publisher(), key)
            .iter()
            .filter(|old| self.trusts_directly(plugin, old))
            .map(|old| self.level_of(old))
            .min()
            .unwrap_or(TrustLevel::Partner)
    }

    /// Whether the policy names `key` for `plugin` (an author key, or one
    /// of its publisher's keys).
    fn trusts_directly(&self, plugin: &PluginId, key: &PublicKey) -> bool {
        self.author_keys.contains(key)
            || self
                .publisher_keys
                .get(plugin.publisher())
                .is_some_and(|keys| keys.contains(key))
    }

    /// Trusts `key` as an author key for every publisher.
    #[must_use]
    pub fn with_author_key(mut self, key: PublicKey) -> Self {
        self.author_keys.push(key);
        self
    }

    /// Trusts `key` as an author key for `publisher`'s plugins only.
    #[must_use]
    pub fn with_publisher_key(mut self, publisher: &str, key: PublicKey) -> Self {
        self.publisher_keys
            .entry(publisher.to_owned())
            .or_default()
            .push(key);
        self
    }

    /// Trusts `key`'s marketplace counter-signatures.
    #[must_use]
    pub fn with_marketplace_key(mut self, key: PublicKey) -> Self {
        self.marketplace_keys.push(key);
        self
    }

    /// Whether `key` (or a key it was rotated from) is trusted to sign
    /// `plugin` as its author, and not revoked.
    pub fn trusts_author(&self, plugin: &PluginId, key: &PublicKey) -> bool {
        !self.is_revoked(key)
            && (self.trusts_directly(plugin, key)
                || self
                    .rotated_from_for(plugin.publisher(), key)
                    .iter()
                    .any(|old| self.trusts_directly(plugin, old)))
    }
}

/// How far a verified package is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trust {
    /// No signatures; accepted because the policy allows unsigned packages
    /// from this origin.
    Unsigned,
    /// Valid signatures, but not by keys the policy trusts (or lacking a
    /// required counter-signature); accepted as an unsigned package would be.
    Untrusted,
    /// Signed as the policy requires.
    Trusted,
}

/// One signature that verified: its key and role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signer {
    /// The key's id.
    pub key_id: KeyId,
    /// Who signed.
    pub role: Role,
}

/// The outcome of [`verify`], for the registry and `doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// The archive's sha256.
    pub sha256: Sha256Digest,
    /// How far it is trusted.
    pub trust: Trust,
    /// The plugin the signatures are for, when signed.
    pub plugin: Option<PluginId>,
    /// The version the signatures are for, when signed.
    pub version: Option<Version>,
    /// The trusted author key that signed, if any.
    pub author_key: Option<KeyId>,
    /// The trusted marketplace key that counter-signed, if any.
    pub marketplace_key: Option<KeyId>,
    /// Every signature that verified.
    pub signers: Vec<Signer>,
    /// The author key that satisfied the policy, when the package is
    /// trusted and that key is unambiguous: the only key a publisher may be
    /// bound to. An untrusted signature, or one added beside a trusted one,
    /// never binds a publisher.
    pub author_public_key: Option<PublicKey>,
    /// The level reached: the trusted author key's, or the policy's
    /// `unsigned_level`.
    pub level: TrustLevel,
}

/// Checks that `bytes` hash to `expected` (the sha256 a catalog or a lock
/// file names), before anything else is done with them.
pub fn verify_checksum(bytes: &[u8], expected: &Sha256Digest) -> Result<(), PackageError> {
    let actual = Sha256Digest::of(bytes);
    if actual != *expected {
        return Err(PackageError::ChecksumMismatch {
            expected: *expected,
            actual,
            expected_by: "the caller",
        });
    }
    Ok(())
}

/// Verifies a package archive's signatures against `policy`, without
/// reading the archive's content: only its sha256 and the signature file are
/// looked at, so nothing is decompressed or unpacked before trust is
/// decided.
///
/// `signatures` is the parsed signature file, `None` when there is none.
/// The returned [`VerifiedPackage`] inspects and unpacks the archive and
/// checks that its manifest names the plugin and version that were signed.
pub fn verify<'a>(
    bytes: &'a [u8],
    signatures: Option<&SignatureFile>,
    policy: &TrustPolicy,
    origin: Origin,
) -> Result<VerifiedPackage<'a>, PackageError> {
    let sha256 = Sha256Digest::of(bytes);
    if let Some(file) = signatures
        && file.package_sha256 != sha256
    {
        return Err(PackageError::ChecksumMismatch {
            expected: file.package_sha256,
            actual: sha256,
            expected_by: "the signature file",
        });
    }
    let unsigned = Verification {
        sha256,
        trust: Trust::Unsigned,
        plugin: None,
        version: None,
        author_key: None,
        marketplace_key: None,
        signers: Vec::new(),
        author_public_key: None,
        level: policy.unsigned_level,
    };
    let file = match signatures {
        Some(file) if !file.signatures.is_empty() => file,
        _ if policy.allow_unsigned.allows(origin) => {
            return Ok(VerifiedPackage {
                bytes,
                verification: unsigned,
            });
        }
        _ => return Err(PackageError::Unsigned { origin }),
    };
    file.check_signatures()?;
    if let Some(revoked) = file
        .signatures
        .iter()
        .find(|s| policy.is_revoked(&s.public_key))
    {
        return Err(PackageError::RevokedKey {
            role: revoked.role,
            key_id: revoked.public_key.key_id(),
        });
    }

    let by_role = |role: Role| file.signatures.iter().filter(move |s| s.role == role);
    let ids = |entries: Vec<&SignatureEntry>| -> Vec<KeyId> {
        entries.iter().map(|s| s.public_key.key_id()).collect()
    };
    let marketplace =
        by_role(Role::Marketplace).find(|s| policy.marketplace_keys.contains(&s.public_key));
    let vouched = policy.trust_marketplace_countersigned && marketplace.is_some();
    let named_author =
        by_role(Role::Author).find(|s| policy.trusts_author(&file.plugin, &s.public_key));
    let author = named_author.or_else(|| by_role(Role::Author).find(|_| vouched));
    let marketplace_ok = marketplace.is_some() || !policy.require_marketplace_signature;
    let trust = match (author, marketplace_ok) {
        (Some(_), true) => Trust::Trusted,
        _ if policy.allow_unsigned.allows(origin) => Trust::Untrusted,
        (None, _) => {
            return Err(PackageError::UntrustedAuthor {
                plugin: file.plugin.clone(),
                key_ids: ids(by_role(Role::Author).collect()),
            });
        }
        (Some(_), false) => {
            return Err(PackageError::MissingMarketplaceSignature {
                key_ids: ids(by_role(Role::Marketplace).collect()),
            });
        }
    };
    let trusted = trust == Trust::Trusted;
    let level = match author {
        Some(author) if trusted => policy.level_for(&file.plugin, &author.public_key),
        _ => policy.unsigned_level,
    };
    Ok(VerifiedPackage {
        bytes,
        verification: Verification {
            trust,
            level,
            signers: file
                .signatures
                .iter()
                .map(|s| Signer {
                    key_id: s.public_key.key_id(),
                    role: s.role,
                })
                .collect(),
            author_public_key: binding_author(
                named_author,
                author,
                trusted,
                by_role(Role::Author).count(),
            ),
            plugin: Some(file.plugin.clone()),
            version: Some(file.version.clone()),
            author_key: author.filter(|_| trusted).map(|s| s.public_key.key_id()),
            marketplace_key: marketplace
                .filter(|_| trusted)
                .map(|s| s.public_key.key_id()),
            ..unsigned
        },
    })
}

/// A package archive that passed [`verify`]. Reading it through these
/// methods also checks that the manifest inside names the plugin and version
/// the signatures were made for (before anything is put in place).
#[derive(Debug, Clone)]
pub struct VerifiedPackage<'a> {
    bytes: &'a [u8],
    verification: Verification,
}

impl<'a> VerifiedPackage<'a> {
    /// The archive's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// What verification found.
    pub fn verification(&self) -> &Verification {
        &self.verification
    }

    /// [`inspect_with`](crate::inspect_with), plus the identity check.
    pub fn inspect(&self, limits: &UnpackLimits) -> Result<PackageInfo, PackageError> {
        let info = crate::inspect_with(self.bytes, limits)?;
        self.check_identity(&info)?;
        Ok(info)
    }

    /// [`unpack_to_memory`](crate::unpack_to_memory), plus the identity
    /// check.
    pub fn unpack_to_memory(&self, limits: &UnpackLimits) -> Result<PackageContents, PackageError> {
        let contents = unpack_to_memory(self.bytes, limits)?;
        self.check_identity(&contents.info)?;
        Ok(contents)
    }

    /// [`unpack`](crate::unpack), plus the identity check (made before the
    /// package is renamed into place).
    pub fn unpack(
        &self,
        dest: &Path,
        limits: &UnpackLimits,
    ) -> Result<UnpackedPackage, PackageError> {
        unpack_checked(self.bytes, dest, limits, &|info| self.check_identity(info))
    }

    fn check_identity(&self, info: &PackageInfo) -> Result<(), PackageError> {
        let (Some(signed_id), Some(signed_version)) =
            (&self.verification.plugin, &self.verification.version)
        else {
            return Ok(());
        };
        if signed_id != info.id() || signed_version != info.version() {
            return Err(PackageError::IdentityMismatch {
                signed: Box::new(PackageId {
                    id: signed_id.clone(),
                    version: signed_version.clone(),
                }),
                manifest: Box::new(PackageId {
                    id: info.id().clone(),
                    version: info.version().clone(),
                }),
            });
        }
        Ok(())
    }
}

/// The author key a trusted package may bind its publisher to: the author
/// key the policy trusts by name; failing that, under marketplace vouching
/// (where any author key is accepted), only a package's sole author
/// signature, since anyone can add a valid signature of their own beside the
/// real one.
fn binding_author(
    named: Option<&SignatureEntry>,
    vouched: Option<&SignatureEntry>,
    trusted: bool,
    author_signatures: usize,
) -> Option<PublicKey> {
    if !trusted {
        return None;
    }
    named
        .or(vouched.filter(|_| author_signatures == 1))
        .map(|s| s.public_key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SigningKey;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_seed(&[n; 32])
    }

    #[test]
    fn rotations_are_followed_through_every_statement_and_cut_by_revocations() {
        let (a, b, c, d) = (key(1), key(2), key(3), key(4));
        let (pa, pb, pc) = (a.public_key(), b.public_key(), c.public_key());
        let chain = TrustPolicy {
            rotations: vec![KeyRotation::sign(&a, &pb), KeyRotation::sign(&b, &pc)],
            ..TrustPolicy::default()
        }
        .with_publisher_key("acme", pa);
        let middle_revoked = TrustPolicy {
            revoked_keys: vec![pb],
            ..chain.clone()
        };
        // Two old keys (of two publishers) hand over to the same new key.
        let merged = TrustPolicy {
            rotations: vec![KeyRotation::sign(&d, &pc), KeyRotation::sign(&a, &pc)],
            ..TrustPolicy::default()
        }
        .with_publisher_key("acme", pa);
        // A statement made for beta speaks for beta only.
        let for_beta = TrustPolicy {
            rotations: vec![KeyRotation::sign_for(&a, &pc, "beta")],
            ..TrustPolicy::default()
        }
        .with_author_key(pa);
        let acme: PluginId = "acme/tool".parse().unwrap();
        assert!(for_beta.succeeds_for("beta", &pa, &pc));
        assert!(for_beta.trusts_author(&"beta/tool".parse().unwrap(), &pc));
        assert!(
            !for_beta.succeeds_for("acme", &pa, &pc),
            "not acme's binding"
        );
        assert!(!for_beta.trusts_author(&acme, &pc), "not acme's trust");
        // (case, policy, old, new, succeeds, new trusted for acme)
        let cases = [
            ("a chain", &chain, pa, pc, true, true),
            (
                "a chain through a revoked key",
                &middle_revoked,
                pa,
                pc,
                false,
                false,
            ),
            (
                "the revoked key itself",
                &middle_revoked,
                pa,
                pb,
                false,
                false,
            ),
            (
                "the first of two statements",
                &merged,
                d.public_key(),
                pc,
                true,
                true,
            ),
            ("the second of two statements", &merged, pa, pc, true, true),
        ];
        for (name, policy, old, new, succeeds, trusted) in cases {
            assert_eq!(policy.succeeds(&old, &new), succeeds, "{name}: succeeds");
            assert_eq!(
                policy.trusts_author(&acme, &new),
                trusted,
                "{name}: trusted"
            );
        }
    }

    #[test]
    fn conflicting_rotations_and_bad_publishers_make_a_policy_invalid() {
        let (a, b, c) = (key(1), key(2), key(3));
        let fork = TrustPolicy {
            rotations: vec![
                KeyRotation::sign(&a, &b.public_key()),
                KeyRotation::sign(&a, &c.public_key()),
            ],
            ..TrustPolicy::default()
        };
        let error = fork.check().unwrap_err().to_string();
        assert!(error.contains("conflicting rotation statements"), "{error}");
        assert!(error.contains(a.public_key().key_id().as_str()), "{error}");
        let cycle = TrustPolicy {
            rotations: vec![
                KeyRotation::sign(&a, &b.public_key()),
                KeyRotation::sign(&b, &a.public_key()),
            ],
            ..TrustPolicy::default()
        };
        let error = cycle.check().unwrap_err().to_string();
        assert!(error.contains("conflicting rotation statements"), "{error}");
        let bad = TrustPolicy::default().with_publisher_key("Acme Corp", a.public_key());
        let error = bad.check().unwrap_err().to_string();
        assert!(error.contains("`publisher_keys.Acme Corp`"), "{error}");
        // Statements from one key for two publishers do not conflict.
        let per_publisher = TrustPolicy {
            rotations: vec![
                KeyRotation::sign_for(&a, &b.public_key(), "acme"),
                KeyRotation::sign_for(&a, &c.public_key(), "beta"),
            ],
            ..TrustPolicy::default()
        };
        per_publisher.check().unwrap();
        // The same statement twice is no conflict.
        let twice = TrustPolicy {
            rotations: vec![KeyRotation::sign(&a, &b.public_key()); 2],
            ..TrustPolicy::default()
        };
        twice.check().unwrap();
    }

    #[test]
    fn levels_are_keyed_by_the_whole_key_and_never_raised_across_publishers() {
        let (a, b) = (key(1), key(2));
        let (pa, pb) = (a.public_key(), b.public_key());
        // `a` is acme's internal key; it hands over to `b`, which beta
        // trusts on its own (as a partner).
        let policy = TrustPolicy {
            key_levels: [(pa, TrustLevel::Internal)].into(),
            rotations: vec![KeyRotation::sign(&a, &pb)],
            ..TrustPolicy::default()
        }
        .with_publisher_key("acme", pa)
        .with_publisher_key("beta", pb);
        let (acme, beta): (PluginId, PluginId) =
            ("acme/tool".parse().unwrap(), "beta/tool".parse().unwrap());
        let cases = [
            ("acme's key for acme", &acme, pa, TrustLevel::Internal),
            ("its successor for acme", &acme, pb, TrustLevel::Internal),
            ("its successor for beta", &beta, pb, TrustLevel::Partner),
        ];
        for (name, plugin, key, level) in cases {
            assert_eq!(policy.level_for(plugin, &key), level, "{name}");
        }
        // The policy file names keys whole; a short key id is refused.
        let text = format!("[key_levels]\n\"{}\" = \"internal\"\n", pa.key_id());
        let error = TrustPolicy::from_toml(&text).unwrap_err().to_string();
        assert!(error.contains("public key"), "{error}");
        let text = format!("[key_levels]\n\"{pa}\" = \"internal\"\n");
        assert_eq!(
            TrustPolicy::from_toml(&text).unwrap().key_levels,
            [(pa, TrustLevel::Internal)].into()
        );
    }
}
