//! Bearer tokens of the HTTP admin API: who holds one (its name), what it
//! may do (its role) and the sha256 of its secret. The engine makes the
//! secrets and decides what a role allows; the registry keeps only the
//! hash, so a stolen database yields no usable token.

use time::OffsetDateTime;

use crate::tenant::TenantId;

/// A token to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    /// Its tenant.
    pub tenant: TenantId,
    /// Who holds it (unique in the tenant).
    pub name: String,
    /// Its role, as the engine names it.
    pub role: String,
    /// The lowercase hex sha256 of the secret.
    pub token_sha256: String,
}

/// A recorded token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Its tenant.
    pub tenant: TenantId,
    /// Who holds it.
    pub name: String,
    /// Its role.
    pub role: String,
    /// The lowercase hex sha256 of the secret.
    pub token_sha256: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
}
