//! The SQL backends. SQLite and PostgreSQL run the same statements (SQLite
//! accepts `$n` placeholders, `ON CONFLICT` and `RETURNING`); the store
//! implementation is written once in `store.rs` and compiled once per
//! backend, with `Db` and the few dialect hooks (how a write transaction
//! begins, how the event log is serialized, how changes are announced)
//! supplied by the backend's module.

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

use std::str::FromStr;

use sqlx::migrate::{MigrateError, Migrator};
use tenon_manifest::{Manifest, PluginId, Version};

use crate::artifact::Sha256Digest;
use crate::error::RegistryError;
use crate::tenant::TenantId;

/// Maps a driver error, saying what was being done.
pub(crate) fn db_err(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> RegistryError {
    let context = context.into();
    move |source| RegistryError::backend(context, source)
}

/// Whether a statement failed on a unique or primary key.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// The versions of the embedded migrations.
pub(crate) fn known_versions(migrator: &Migrator) -> Vec<i64> {
    migrator.iter().map(|m| m.version).collect()
}

/// Maps a migration failure.
pub(crate) fn migrate_err(location: &str, error: MigrateError) -> RegistryError {
    match error {
        MigrateError::VersionMismatch(version) => RegistryError::SchemaMismatch {
            location: location.to_owned(),
            detail: format!(
                "migration {version} was applied from a different file than this build's \
                 (edited after release, or checked out with CRLF line endings)"
            ),
        },
        MigrateError::Dirty(version) => RegistryError::SchemaMismatch {
            location: location.to_owned(),
            detail: format!(
                "migration {version} failed part-way; restore the database from a backup"
            ),
        },
        other => RegistryError::backend(format!("migrating the registry at {location}"), other),
    }
}

/// Converts an unsigned count or version for binding.
pub(crate) fn to_i64(value: u64, what: &'static str) -> Result<i64, RegistryError> {
    i64::try_from(value).map_err(|_| {
        RegistryError::invalid(
            what,
            &value.to_string(),
            "it does not fit in a signed 64-bit integer",
        )
    })
}

/// Converts a stored count or version back.
pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, RegistryError> {
    u64::try_from(value).map_err(|_| RegistryError::decode(what, format!("{value} is negative")))
}

pub(crate) fn parse_tenant(text: &str) -> Result<TenantId, RegistryError> {
    TenantId::new(text).map_err(|e| RegistryError::decode("a tenant id", e))
}

pub(crate) fn parse_plugin_id(text: &str) -> Result<PluginId, RegistryError> {
    PluginId::new(text).map_err(|e| RegistryError::decode("a plugin id", e))
}

pub(crate) fn parse_version(text: &str, plugin: &str) -> Result<Version, RegistryError> {
    Version::parse(text).map_err(|e| RegistryError::decode(format!("a version of `{plugin}`"), e))
}

pub(crate) fn parse_manifest(
    text: &str,
    plugin: &str,
    version: &str,
) -> Result<Manifest, RegistryError> {
    serde_json::from_str(text)
        .map_err(|e| RegistryError::decode(format!("the manifest of `{plugin}@{version}`"), e))
}

pub(crate) fn parse_sha(text: &str) -> Result<Sha256Digest, RegistryError> {
    Sha256Digest::parse(text).map_err(|e| RegistryError::decode("an artifact digest", e))
}

pub(crate) fn parse_enum<T: FromStr<Err = RegistryError>>(text: &str) -> Result<T, RegistryError> {
    text.parse()
        .map_err(|e| RegistryError::decode("a stored name", e))
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> Result<T, RegistryError> {
    serde_json::from_str(text).map_err(|e| RegistryError::decode(what, e))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T, what: &str) -> Result<String, RegistryError> {
    serde_json::to_string(value)
        .map_err(|e| RegistryError::invalid("value to store", what, e.to_string()))
}
