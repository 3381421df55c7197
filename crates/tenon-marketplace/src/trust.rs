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
    /// Never.
    Never,
    /// Only from [`Origin::Local`] (the default: development works, nothing
    /// fetched is installed unsigned).
    #[default]
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
/// policy trusts, is installed only where `allow_unsigned` allows it. A
/// signature that does not verify, or a signature file for another archive,
/// is always refused.
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
    /// When packages without a trusted signature are accepted.
    pub allow_unsigned: AllowUnsigned,
}

impl TrustPolicy {
    /// A policy for development: no keys, every package accepted, signed or
    /// not (bad signatures are still refused).
    pub fn development() -> Self {
        Self {
            allow_unsigned: AllowUnsigned::Always,
            ..Self::default()
        }
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

    /// Whether `key` is trusted to sign `plugin` as its author.
    pub fn trusts_author(&self, plugin: &PluginId, key: &PublicKey) -> bool {
        self.author_keys.contains(key)
            || self
                .publisher_keys
                .get(plugin.publisher())
                .is_some_and(|keys| keys.contains(key))
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

    let by_role = |role: Role| file.signatures.iter().filter(move |s| s.role == role);
    let ids = |entries: Vec<&SignatureEntry>| -> Vec<KeyId> {
        entries.iter().map(|s| s.public_key.key_id()).collect()
    };
    let marketplace =
        by_role(Role::Marketplace).find(|s| policy.marketplace_keys.contains(&s.public_key));
    let vouched = policy.trust_marketplace_countersigned && marketplace.is_some();
    let author = by_role(Role::Author)
        .find(|s| vouched || policy.trusts_author(&file.plugin, &s.public_key));
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
    Ok(VerifiedPackage {
        bytes,
        verification: Verification {
            trust,
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
