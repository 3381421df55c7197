//! Publishers bound to keys: which signing key speaks for a publisher (the
//! part of a plugin id before `/`) in a tenant. The engine decides when a
//! binding is made or moved; the registry keeps it, also after every plugin
//! of the publisher is uninstalled.

use time::OffsetDateTime;

use crate::tenant::TenantId;

/// A binding to record; it replaces the publisher's earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPublisherKey {
    /// Its tenant.
    pub tenant: TenantId,
    /// The publisher.
    pub publisher: String,
    /// The key, base64 of its 32 bytes.
    pub public_key: String,
    /// The key's id (16 hex digits).
    pub key_id: String,
    /// How the binding came about: `first-signature`, `policy`, `rotation`.
    pub bound_by: String,
}

/// A recorded binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherKey {
    /// Its tenant.
    pub tenant: TenantId,
    /// The publisher.
    pub publisher: String,
    /// The key, base64 of its 32 bytes.
    pub public_key: String,
    /// The key's id.
    pub key_id: String,
    /// How the binding came about.
    pub bound_by: String,
    /// When it was recorded.
    pub bound_at: OffsetDateTime,
}
