//! Plugins and their versions: the records the engine boots from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tenon_manifest::{Manifest, PluginId, Version};
use time::OffsetDateTime;

use crate::artifact::Sha256Digest;
use crate::error::RegistryError;
use crate::tenant::TenantId;

/// Where a plugin is in its lifecycle.
///
/// The registry stores the state and records every change of it as a
/// `state_changed` event; which transitions are allowed is the engine's
/// business (`tenon_engine::lifecycle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginState {
    /// Stored, not yet checked against its config and dependencies.
    Installed,
    /// Waiting for required configuration.
    PendingConfig,
    /// Configured and resolved against its dependencies.
    Resolved,
    /// Its code is being loaded.
    Loading,
    /// Loaded, not started.
    Loaded,
    /// Being started.
    Activating,
    /// Running.
    Active,
    /// Being stopped.
    Deactivating,
    /// Stopped by an operator or automatically.
    Disabled,
    /// Being removed.
    Uninstalling,
    /// Removed (kept as a tombstone until deleted).
    Removed,
    /// Failed; `last_error` says why.
    Error,
}

impl PluginState {
    /// Every state, in lifecycle order.
    pub const ALL: [Self; 12] = [
        Self::Installed,
        Self::PendingConfig,
        Self::Resolved,
        Self::Loading,
        Self::Loaded,
        Self::Activating,
        Self::Active,
        Self::Deactivating,
        Self::Disabled,
        Self::Uninstalling,
        Self::Removed,
        Self::Error,
    ];

    /// The name stored in the registry and shown to operators.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Installed => "installed",
            Self::PendingConfig => "pending_config",
            Self::Resolved => "resolved",
            Self::Loading => "loading",
            Self::Loaded => "loaded",
            Self::Activating => "activating",
            Self::Active => "active",
            Self::Deactivating => "deactivating",
            Self::Disabled => "disabled",
            Self::Uninstalling => "uninstalling",
            Self::Removed => "removed",
            Self::Error => "error",
        }
    }
}

impl fmt::Display for PluginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PluginState {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                RegistryError::invalid(
                    "plugin state",
                    s,
                    format!("expected one of {}", names(Self::ALL.map(Self::as_str))),
                )
            })
    }
}

/// How a plugin came to be installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A directory on the host (development).
    Directory,
    /// A package archive file.
    Archive,
    /// A marketplace.
    Marketplace,
    /// Shipped inside the host.
    Builtin,
    /// Trusted Rust code registered by the host.
    Native,
}

impl SourceKind {
    /// Whether the host itself supplies plugins of this kind (built in, or
    /// native code it registers), as opposed to a package or a directory.
    pub const fn is_host(self) -> bool {
        matches!(self, Self::Builtin | Self::Native)
    }

    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::Directory,
        Self::Archive,
        Self::Marketplace,
        Self::Builtin,
        Self::Native,
    ];

    /// The name stored in the registry.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Directory => "directory",
            Self::Archive => "archive",
            Self::Marketplace => "marketplace",
            Self::Builtin => "builtin",
            Self::Native => "native",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceKind {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| {
                RegistryError::invalid(
                    "source kind",
                    s,
                    format!("expected one of {}", names(Self::ALL.map(Self::as_str))),
                )
            })
    }
}

/// Where a plugin came from: a kind and a reference in that kind's terms (a
/// path, a marketplace coordinate, an entry point name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PluginSource {
    /// The kind of source.
    pub kind: SourceKind,
    /// The reference within it.
    pub reference: String,
}

impl PluginSource {
    /// A source of `kind` at `reference`.
    pub fn new(kind: SourceKind, reference: &str) -> Self {
        Self {
            kind,
            reference: reference.to_owned(),
        }
    }
}

/// Why a plugin last failed, as the engine recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    /// A stable, machine-readable cause (`load_failed`, `crash_loop`…).
    pub code: String,
    /// The message for operators.
    pub message: String,
}

impl LastError {
    /// An error with `code` and `message`.
    pub fn new(code: &str, message: &str) -> Self {
        Self {
            code: code.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// A plugin to insert. Its id and version are the manifest's.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPlugin {
    /// Its tenant.
    pub tenant: TenantId,
    /// Its manifest (becomes its first, current version).
    pub manifest: Manifest,
    /// Where it came from.
    pub source: PluginSource,
    /// Its initial state (usually [`PluginState::Installed`]).
    pub state: PluginState,
    /// Whether the operator enabled it.
    pub enabled: bool,
    /// Its stored artifact, if any ([`put_artifact`](crate::RegistryStore::put_artifact) first).
    pub artifact: Option<Sha256Digest>,
    /// What verifying its package found (the engine's record, as JSON).
    pub verification: Option<serde_json::Value>,
}

impl NewPlugin {
    /// A disabled plugin in state `installed`, without an artifact.
    pub fn new(tenant: TenantId, manifest: Manifest, source: PluginSource) -> Self {
        Self {
            tenant,
            manifest,
            source,
            state: PluginState::Installed,
            enabled: false,
            artifact: None,
            verification: None,
        }
    }

    /// Sets the initial state.
    pub fn with_state(mut self, state: PluginState) -> Self {
        self.state = state;
        self
    }

    /// Sets whether it is enabled.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Sets its artifact.
    pub fn with_artifact(mut self, artifact: Sha256Digest) -> Self {
        self.artifact = Some(artifact);
        self
    }

    /// Records what verifying its package found.
    pub fn with_verification(mut self, verification: serde_json::Value) -> Self {
        self.verification = Some(verification);
        self
    }

    /// Its id (the manifest's).
    pub fn id(&self) -> &PluginId {
        &self.manifest.plugin.id
    }

    /// Its version (the manifest's).
    pub fn version(&self) -> &Version {
        &self.manifest.plugin.version
    }
}

/// A stored plugin, with its current version's manifest and artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginRecord {
    /// Its tenant.
    pub tenant: TenantId,
    /// Its id.
    pub id: PluginId,
    /// Its current version.
    pub version: Version,
    /// Its lifecycle state.
    pub state: PluginState,
    /// Where it came from.
    pub source: PluginSource,
    /// Whether the operator enabled it.
    pub enabled: bool,
    /// The current version's manifest.
    pub manifest: Manifest,
    /// The current version's artifact.
    pub artifact: Option<Sha256Digest>,
    /// What verifying the current version's package found (the engine's
    /// record, as JSON); `None` for versions stored before it was kept.
    pub verification: Option<serde_json::Value>,
    /// Why it last failed, if the engine recorded a failure.
    pub last_error: Option<LastError>,
    /// When it was inserted.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// Starts at 1 and grows by one with every update: pass it back as
    /// [`PluginUpdate::expected_row_version`].
    pub row_version: u64,
}

/// A change to a plugin, applied only if its row version is still
/// `expected_row_version` (otherwise [`RegistryError::Conflict`]).
///
/// Fields left `None` keep their value. A change of state, enabled flag or
/// current version is recorded as an event in the same transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginUpdate {
    /// The row version the change is based on.
    pub expected_row_version: u64,
    /// A new lifecycle state.
    pub state: Option<PluginState>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// Point at another installed version (upgrade or rollback).
    pub current_version: Option<Version>,
    /// A new source.
    pub source: Option<PluginSource>,
    /// Set (`Some(Some(_))`) or clear (`Some(None)`) the last error.
    pub last_error: Option<Option<LastError>>,
    /// Why, for the events this change records (`operator`, `crash loop`…).
    pub reason: Option<String>,
}

impl PluginUpdate {
    /// A change based on `expected_row_version` that changes nothing yet.
    pub fn new(expected_row_version: u64) -> Self {
        Self {
            expected_row_version,
            state: None,
            enabled: None,
            current_version: None,
            source: None,
            last_error: None,
            reason: None,
        }
    }

    /// Sets the state.
    pub fn with_state(mut self, state: PluginState) -> Self {
        self.state = Some(state);
        self
    }

    /// Sets the enabled flag.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// Points at another installed version.
    pub fn with_current_version(mut self, version: Version) -> Self {
        self.current_version = Some(version);
        self
    }

    /// Sets the source.
    pub fn with_source(mut self, source: PluginSource) -> Self {
        self.source = Some(source);
        self
    }

    /// Sets or clears the last error.
    pub fn with_last_error(mut self, error: Option<LastError>) -> Self {
        self.last_error = Some(error);
        self
    }

    /// Says why, for the recorded events.
    pub fn with_reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }
}

impl PluginUpdate {
    /// Applies the fields this update sets to `record`, bumps its row
    /// version and stamps it `now`. The manifest and artifact of a new
    /// current version are the caller's to load.
    pub(crate) fn apply(&self, record: &mut PluginRecord, now: OffsetDateTime) {
        if let Some(state) = self.state {
            record.state = state;
        }
        if let Some(enabled) = self.enabled {
            record.enabled = enabled;
        }
        if let Some(version) = &self.current_version {
            record.version = version.clone();
        }
        if let Some(source) = &self.source {
            record.source = source.clone();
        }
        if let Some(last_error) = &self.last_error {
            record.last_error = last_error.clone();
        }
        record.row_version += 1;
        record.updated_at = now;
    }
}

/// Which plugins [`list_plugins`](crate::RegistryStore::list_plugins)
/// returns: ordered by id, a page at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginQuery {
    /// Only these states (all when empty).
    pub states: Vec<PluginState>,
    /// Only enabled (`Some(true)`) or disabled (`Some(false)`) plugins.
    pub enabled: Option<bool>,
    /// Start after this id (the previous page's [`PluginPage::next`]).
    pub after: Option<PluginId>,
    /// At most this many (at least 1).
    pub limit: usize,
}

impl PluginQuery {
    /// The default page size.
    pub const DEFAULT_LIMIT: usize = 1000;

    /// Only plugins in `states`.
    pub fn with_states(mut self, states: &[PluginState]) -> Self {
        self.states = states.to_vec();
        self
    }

    /// Only enabled or only disabled plugins.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// Starts after `id`.
    pub fn with_after(mut self, id: Option<PluginId>) -> Self {
        self.after = id;
        self
    }

    /// Sets the page size.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Whether the memory backend keeps this record.
    #[cfg_attr(not(feature = "memory"), allow(dead_code))]
    pub(crate) fn matches(&self, plugin: &PluginRecord) -> bool {
        (self.states.is_empty() || self.states.contains(&plugin.state))
            && self.enabled.is_none_or(|e| e == plugin.enabled)
            && self.after.as_ref().is_none_or(|after| plugin.id > *after)
    }

    pub(crate) fn checked_limit(&self) -> Result<usize, RegistryError> {
        crate::page::check_limit(self.limit, "plugin page size", "plugin")
    }
}

impl Default for PluginQuery {
    fn default() -> Self {
        Self {
            states: Vec::new(),
            enabled: None,
            after: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

/// A page of plugins.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginPage {
    /// The plugins, ordered by id.
    pub plugins: Vec<PluginRecord>,
    /// Where the next page starts, if there is one.
    pub next: Option<PluginId>,
}

/// What [`delete_plugin`](crate::RegistryStore::delete_plugin) removes
/// besides the plugin row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purge {
    /// Its configuration, secrets included.
    pub config: bool,
    /// Its KV entries.
    pub kv: bool,
    /// Its events and its log lines.
    pub events: bool,
    /// Its installed versions, and the artifacts no other version uses.
    pub versions: bool,
    /// Its permission grants.
    pub grants: bool,
}

impl Purge {
    /// Remove everything the plugin left.
    pub const ALL: Self = Self {
        config: true,
        kv: true,
        events: true,
        versions: true,
        grants: true,
    };

    /// Remove the plugin row only: a reinstall finds its data again.
    pub const NOTHING: Self = Self {
        config: false,
        kv: false,
        events: false,
        versions: false,
        grants: false,
    };
}

/// How to delete a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteOptions {
    /// Delete only if the row version is still this one.
    pub expected_row_version: Option<u64>,
    /// What else to remove.
    pub purge: Purge,
    /// Who leaves what is kept (an opaque record of the caller's, JSON),
    /// stored in the same transaction and read back with
    /// [`get_leftovers_owner`](crate::RegistryStore::get_leftovers_owner);
    /// `None` records no owner. Any earlier record is replaced.
    pub leftovers_owner: Option<String>,
}

/// What [`delete_plugin`](crate::RegistryStore::delete_plugin) removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeleteReport {
    /// Version rows.
    pub versions: u64,
    /// Artifacts no longer used by any version.
    pub artifacts: u64,
    /// Config keys.
    pub config_keys: u64,
    /// KV entries.
    pub kv_entries: u64,
    /// Events.
    pub events: u64,
    /// Grants.
    pub grants: u64,
}

/// A version to add to an installed plugin. Its version is the manifest's.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    /// Its manifest.
    pub manifest: Manifest,
    /// Its stored artifact, if any.
    pub artifact: Option<Sha256Digest>,
    /// What verifying its package found (the engine's record, as JSON).
    pub verification: Option<serde_json::Value>,
}

/// An installed version of a plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRecord {
    /// Its tenant.
    pub tenant: TenantId,
    /// The plugin.
    pub plugin: PluginId,
    /// The version.
    pub version: Version,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its artifact.
    pub artifact: Option<Sha256Digest>,
    /// What verifying its package found (the engine's record, as JSON);
    /// `None` for versions stored before it was kept.
    pub verification: Option<serde_json::Value>,
    /// When it was installed.
    pub installed_at: OffsetDateTime,
    /// Whether it is the plugin's current version.
    pub current: bool,
}

fn names<const N: usize>(names: [&str; N]) -> String {
    names.join(", ")
}

/// Checks that a manifest belongs to `plugin`.
pub(crate) fn check_manifest_id(
    plugin: &PluginId,
    manifest: &Manifest,
) -> Result<(), RegistryError> {
    if manifest.plugin.id != *plugin {
        return Err(RegistryError::invalid(
            "version manifest",
            manifest.plugin.id.as_str(),
            format!(
                "the manifest is for `{}`, not `{plugin}`",
                manifest.plugin.id
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for state in PluginState::ALL {
            assert_eq!(state.as_str().parse::<PluginState>().unwrap(), state);
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::String(state.as_str().to_owned())
            );
        }
        for kind in SourceKind::ALL {
            assert_eq!(kind.as_str().parse::<SourceKind>().unwrap(), kind);
        }
        assert_eq!(
            "running".parse::<PluginState>().unwrap_err().to_string(),
            "invalid plugin state `running`: expected one of installed, pending_config, resolved, \
             loading, loaded, activating, active, deactivating, disabled, uninstalling, removed, error"
        );
    }
}
