//! The registry's error type.

use std::fmt;

use tenon_manifest::PluginId;

use crate::artifact::Sha256Digest;
use crate::secret::KeyFingerprint;
use crate::tenant::TenantId;

/// A boxed error from a backend driver.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What the registry returns.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// The kinds of record the registry keeps, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Record {
    /// A row of `plugins`.
    Plugin,
    /// A row of `plugin_versions`.
    Version,
    /// A row of `plugin_artifacts`.
    Artifact,
    /// A plugin's configuration (all its keys, with one revision).
    Config,
    /// A row of `plugin_grants`.
    Grant,
    /// A row of `plugin_kv`.
    KvEntry,
    /// A row of `plugin_events`.
    Event,
    /// A row of `api_tokens`.
    ApiToken,
}

impl Record {
    /// The record's name in messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Plugin => "plugin",
            Self::Version => "plugin version",
            Self::Artifact => "artifact",
            Self::Config => "plugin config",
            Self::Grant => "permission grant",
            Self::KvEntry => "kv entry",
            Self::Event => "event",
            Self::ApiToken => "API token",
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in the registry. Each variant says what was
/// being done and where, and the message says what would be right.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// An optimistic write lost a race: the record changed since it was read.
    #[error(
        "the {record} of `{plugin}` in tenant `{tenant}` was changed concurrently: the write expected \
         row version {expected_row_version} but the registry holds {current_row_version}; reload it and retry"
    )]
    Conflict {
        /// Which kind of record.
        record: Record,
        /// Its tenant.
        tenant: TenantId,
        /// Its plugin.
        plugin: PluginId,
        /// The row version the write was based on.
        expected_row_version: u64,
        /// The row version the registry holds now.
        current_row_version: u64,
    },

    /// The record does not exist.
    #[error("{record} `{key}` not found in tenant `{tenant}`")]
    NotFound {
        /// Which kind of record.
        record: Record,
        /// Its tenant.
        tenant: TenantId,
        /// Its key, as text (`acme/x`, `acme/x@1.2.0`…).
        key: String,
    },

    /// An insert met an existing record.
    #[error("{record} `{key}` already exists in tenant `{tenant}`{hint}")]
    AlreadyExists {
        /// Which kind of record.
        record: Record,
        /// Its tenant.
        tenant: TenantId,
        /// Its key, as text.
        key: String,
        /// What to do instead, starting with `; ` (or empty).
        hint: &'static str,
    },

    /// An artifact's stored bytes no longer hash to its name.
    #[error(
        "artifact sha256:{expected} of tenant `{tenant}` is corrupt: its stored bytes hash to \
         sha256:{actual}; reinstall the plugin version that uses it"
    )]
    Integrity {
        /// Its tenant.
        tenant: TenantId,
        /// The digest it is stored under.
        expected: Sha256Digest,
        /// The digest of what was read back.
        actual: Sha256Digest,
    },

    /// A KV write would take a plugin over its quota; nothing was stored.
    #[error(
        "kv quota exceeded for `{plugin}` in tenant `{tenant}`: the write needs {needed} bytes \
         (keys and values) but the quota is {quota} bytes ({used} in use); delete keys or raise the quota"
    )]
    QuotaExceeded {
        /// Its tenant.
        tenant: TenantId,
        /// The plugin.
        plugin: PluginId,
        /// The quota in bytes.
        quota: u64,
        /// Bytes in use before the write.
        used: u64,
        /// Bytes the plugin would use after the write.
        needed: u64,
    },

    /// A KV write would add a key beyond a plugin's key quota; nothing was
    /// stored.
    #[error(
        "kv key quota exceeded for `{plugin}` in tenant `{tenant}`: the write adds a key but the \
         quota is {max_keys} keys ({keys} in use); delete keys or raise the quota"
    )]
    KeyQuotaExceeded {
        /// Its tenant.
        tenant: TenantId,
        /// The plugin.
        plugin: PluginId,
        /// The quota in keys.
        max_keys: u64,
        /// Keys held before the write.
        keys: u64,
    },

    /// The database was migrated by a newer Tenon.
    #[error(
        "the registry at {location} has schema version {found}, written by a newer Tenon; this Tenon \
         knows schema versions up to {supported}. Upgrade Tenon, or point it at another registry; \
         nothing was changed"
    )]
    NewerSchema {
        /// Where the registry is (password removed).
        location: String,
        /// The newest schema version recorded in the database.
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },

    /// The database's schema history does not match this build's migrations.
    #[error("the registry at {location} has an unexpected schema history: {detail}")]
    SchemaMismatch {
        /// Where the registry is (password removed).
        location: String,
        /// What does not match.
        detail: String,
    },

    /// A secret was to be written or read but no key is configured.
    #[error(
        "cannot {action}: no secret key is configured; set RegistryOptions::secret_key (secrets are \
         never stored in clear text)"
    )]
    SecretKeyMissing {
        /// What was being done.
        action: String,
    },

    /// A secret was encrypted with another key than the configured one.
    #[error(
        "secret `{key}` of `{plugin}` in tenant `{tenant}` was encrypted with key {stored_fingerprint}, \
         but the configured key is {configured_fingerprint}; configure the key it was written with"
    )]
    SecretKeyMismatch {
        /// Its tenant.
        tenant: TenantId,
        /// The plugin.
        plugin: PluginId,
        /// The config key.
        key: String,
        /// Fingerprint of the key that encrypted it.
        stored_fingerprint: KeyFingerprint,
        /// Fingerprint of the configured key.
        configured_fingerprint: KeyFingerprint,
    },

    /// A secret failed authentication: it was altered or moved.
    #[error(
        "secret `{key}` of `{plugin}` in tenant `{tenant}` failed authentication (altered, or copied \
         from another key); set it again"
    )]
    SecretCorrupt {
        /// Its tenant.
        tenant: TenantId,
        /// The plugin.
        plugin: PluginId,
        /// The config key.
        key: String,
    },

    /// An argument is malformed.
    #[error("invalid {what} `{value}`: {reason}")]
    InvalidInput {
        /// What the argument is.
        what: &'static str,
        /// The argument, as given (possibly shortened).
        value: String,
        /// What is wrong and what would be right.
        reason: String,
    },

    /// Stored data could not be read back.
    #[error("cannot read {what} from the registry: {reason}")]
    Decode {
        /// What was read, with its key.
        what: String,
        /// Why it failed.
        reason: String,
    },

    /// The location names a backend this build was compiled without.
    #[error(
        "the registry location `{location}` needs the `{feature}` backend, but tenon-registry was \
         built without its `{feature}` feature"
    )]
    BackendUnavailable {
        /// The location, as given (password removed).
        location: String,
        /// The missing feature.
        feature: &'static str,
    },

    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The database failed.
    #[error("registry backend error while {context}: {source}")]
    Backend {
        /// What was being done.
        context: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

impl RegistryError {
    /// Whether this is a lost optimistic race ([`RegistryError::Conflict`]).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    /// Whether the record was missing ([`RegistryError::NotFound`]).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    pub(crate) fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> Self {
        const MAX: usize = 80;
        let value = if value.len() > MAX {
            let mut end = MAX;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…", &value[..end])
        } else {
            value.to_owned()
        };
        Self::InvalidInput {
            what,
            value,
            reason: reason.into(),
        }
    }

    pub(crate) fn decode(what: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self::Decode {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn not_found(record: Record, tenant: &TenantId, key: impl Into<String>) -> Self {
        Self::NotFound {
            record,
            tenant: tenant.clone(),
            key: key.into(),
        }
    }

    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn backend(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Backend {
            context: context.into(),
            source: Box::new(source),
        }
    }
}
