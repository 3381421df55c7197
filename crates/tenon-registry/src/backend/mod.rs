//! The backends, and what they share.

#[cfg(feature = "memory")]
pub(crate) mod memory;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod sql;

use crate::artifact::Sha256Digest;
use crate::error::{RegistryError, Result};
use crate::grant::Grant;
use crate::plugin::Purge;
use crate::tenant::TenantId;

/// The bytes, if they still hash to their name.
pub(crate) fn verified(
    tenant: &TenantId,
    expected: &Sha256Digest,
    bytes: Vec<u8>,
) -> Result<Vec<u8>> {
    let actual = Sha256Digest::of(&bytes);
    if actual != *expected {
        return Err(RegistryError::Integrity {
            tenant: tenant.clone(),
            expected: *expected,
            actual,
        });
    }
    Ok(bytes)
}

/// A stored KV key as text.
pub(crate) fn kv_key(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|e| RegistryError::decode("a kv key", e))
}

/// Most recent first, then highest version first.
pub(crate) fn sort_grants(grants: &mut [Grant]) {
    grants.sort_by(|a, b| {
        b.granted_at
            .cmp(&a.granted_at)
            .then_with(|| b.version.cmp(&a.version))
    });
}

/// What a delete purged, for the `removed` event.
pub(crate) fn purge_detail(purge: &Purge) -> serde_json::Value {
    serde_json::json!({
        "config": purge.config,
        "kv": purge.kv,
        "events": purge.events,
        "versions": purge.versions,
        "grants": purge.grants,
    })
}

/// The record of a binding made `now`.
#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
pub(crate) fn bound(
    new: &crate::publisher::NewPublisherKey,
    now: time::OffsetDateTime,
) -> crate::publisher::PublisherKey {
    crate::publisher::PublisherKey {
        tenant: new.tenant.clone(),
        publisher: new.publisher.clone(),
        public_key: new.public_key.clone(),
        key_id: new.key_id.clone(),
        bound_by: new.bound_by.clone(),
        bound_at: now,
    }
}

/// The refusal to purge the leftovers of a plugin that is installed.
pub(crate) fn still_installed(tenant: &TenantId, id: &tenon_manifest::PluginId) -> RegistryError {
    RegistryError::AlreadyExists {
        record: crate::error::Record::Plugin,
        tenant: tenant.clone(),
        key: id.to_string(),
        hint: "; what a plugin left is purged only once it is uninstalled",
    }
}

/// The record of a token made `now`.
#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
pub(crate) fn token_made(
    new: &crate::token::NewApiToken,
    now: time::OffsetDateTime,
) -> crate::token::ApiToken {
    crate::token::ApiToken {
        tenant: new.tenant.clone(),
        name: new.name.clone(),
        role: new.role.clone(),
        token_sha256: new.token_sha256.clone(),
        created_at: now,
    }
}

/// A token's name (or hash) taken.
#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
pub(crate) fn token_exists(new: &crate::token::NewApiToken) -> RegistryError {
    RegistryError::AlreadyExists {
        record: crate::error::Record::ApiToken,
        tenant: new.tenant.clone(),
        key: new.name.clone(),
        hint: "; choose another name, or revoke the existing token first",
    }
}
