//! What operators do to plugins: install, configure, grant, enable, disable,
//! upgrade, roll back, uninstall. Every change goes through the lifecycle
//! state machine, is stored with its event in one registry transaction, and
//! is published on the bus.

mod configure;
mod install;
mod run;
mod versions;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use tenon_manifest::{ConfigSpec, Diagnostic, Permissions, PluginId, Version};
use tenon_registry::{ConfigValue, LastError, PluginRecord, PluginState, PluginUpdate};

use crate::engine::PluginEngine;
use crate::error::{EngineError, Result};
use crate::lifecycle::{self, Action};

/// What an install did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstallReport {
    /// The plugin.
    pub id: PluginId,
    /// The version installed.
    pub version: Version,
    /// Its state: `pending_config` or `resolved`.
    pub state: PluginState,
    /// Required config keys still without a value.
    pub missing_config: Vec<String>,
    /// The permissions it declares, described, for the operator to review.
    pub permissions: Vec<String>,
    /// Whether its permissions are granted (by policy or an earlier grant).
    pub granted: bool,
    /// Warnings about its manifest.
    pub warnings: Vec<Diagnostic>,
    /// What the dependency check noticed.
    pub notes: Vec<String>,
    /// What checking its origin found: signers, trust level, posture.
    pub trust: crate::trust::TrustRecord,
    /// What became of the config, grants, KV and data an uninstalled
    /// plugin of this id left, when it left any: passed on (the same
    /// publisher) or purged.
    pub leftovers: Option<crate::publisher::Leftovers>,
}

/// What a plugin would ask for if installed: [`PluginEngine::preview`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preview {
    /// The plugin.
    pub id: PluginId,
    /// The version offered.
    pub version: Version,
    /// The version installed now, when this would be an upgrade.
    pub installed: Option<Version>,
    /// The permissions it declares, described, for the operator to review.
    pub permissions: Vec<String>,
    /// Whether the grant policy would grant them without the operator.
    pub granted_by_policy: bool,
    /// Its configuration schema.
    pub config: ConfigSpec,
    /// The hooks it handles.
    pub hooks: Vec<String>,
    /// The sha256 of its module (none for a native plugin).
    pub sha256: Option<tenon_registry::Sha256Digest>,
    /// Its whole manifest.
    pub manifest: tenon_manifest::Manifest,
    /// What checking its origin found: signers, trust level, posture.
    pub trust: crate::trust::TrustRecord,
    /// Warnings about its manifest.
    pub warnings: Vec<Diagnostic>,
    /// What the dependency check noticed.
    pub notes: Vec<String>,
}

/// What a config change did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigReport {
    /// The plugin.
    pub id: PluginId,
    /// Its state after the change.
    pub state: PluginState,
    /// The config, secrets shown as `********`.
    pub values: BTreeMap<String, Value>,
    /// Required keys still without a value.
    pub missing: Vec<String>,
    /// Whether the change was delivered to the running plugin.
    pub delivered: bool,
}

/// What an upgrade or a rollback did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpgradeReport {
    /// The plugin.
    pub id: PluginId,
    /// The version before.
    pub from: Version,
    /// The version now current.
    pub to: Version,
    /// Its state.
    pub state: PluginState,
    /// Whether running code was swapped (the plugin was active).
    pub swapped: bool,
    /// Whether in-memory state was carried over (snapshot and restore).
    pub state_carried: bool,
    /// What checking the now current version's origin found (`None` for a
    /// version stored before this was recorded).
    pub trust: Option<crate::trust::TrustRecord>,
}

/// An operator's grant.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRequest {
    /// The version granted; the current one when `None`.
    pub version: Option<Version>,
    /// What is granted; everything declared when `None`. Anything not
    /// declared is ignored.
    pub permissions: Option<Permissions>,
    /// Who grants (recorded).
    pub granted_by: String,
}

impl GrantRequest {
    /// Grants everything the current version declares.
    pub fn all(granted_by: &str) -> Self {
        Self {
            version: None,
            permissions: None,
            granted_by: granted_by.to_owned(),
        }
    }
}

/// What a revocation took back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeReport {
    /// The plugin.
    pub id: PluginId,
    /// The permissions withdrawn (from any version's grant), described.
    pub revoked: Vec<String>,
    /// The permissions its current version still holds, described.
    pub remaining: Vec<String>,
    /// Whether it was running and was stopped and disabled because it no
    /// longer holds every permission it declares.
    pub stopped: bool,
}

/// How to disable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DisableOptions {
    /// Also disable the active plugins that depend on it (otherwise their
    /// presence refuses the disable).
    pub cascade: bool,
}

/// How to uninstall. The plugin's versions and modules always go; what it
/// leaves behind is kept (so that reinstalling finds it) unless purged:
/// `purge_data` purges everything, the other flags one part each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UninstallOptions {
    /// Delete everything it left: config and grants, KV, events, data files.
    pub purge_data: bool,
    /// Delete its config and grants.
    pub purge_config: bool,
    /// Delete its KV entries.
    pub purge_kv: bool,
    /// Delete its events.
    pub purge_events: bool,
    /// Delete its data files (the directories its filesystem permissions
    /// name).
    pub purge_files: bool,
}

impl UninstallOptions {
    /// Purges everything the plugin left.
    pub fn purge_all() -> Self {
        Self {
            purge_data: true,
            ..Self::default()
        }
    }
}

/// The bus topic announcing that a plugin entered `state`.
fn topic(state: PluginState) -> &'static str {
    match state {
        PluginState::Installed => "plugin.installed",
        PluginState::PendingConfig => "plugin.pending_config",
        PluginState::Resolved => "plugin.resolved",
        PluginState::Loading => "plugin.loading",
        PluginState::Loaded => "plugin.loaded",
        PluginState::Activating => "plugin.activating",
        PluginState::Active => "plugin.activated",
        PluginState::Deactivating => "plugin.deactivating",
        PluginState::Disabled => "plugin.disabled",
        PluginState::Uninstalling => "plugin.uninstalling",
        PluginState::Removed => "plugin.uninstalled",
        PluginState::Error => "plugin.failed",
    }
}

impl PluginEngine {
    /// Publishes a lifecycle event on the tenant's bus.
    pub(crate) fn announce(&self, topic: &str, id: &PluginId, detail: Value) {
        let mut payload = json!({ "plugin": id.as_str(), "tenant": self.tenant.id.as_str() });
        if let (Value::Object(payload), Value::Object(detail)) = (&mut payload, detail) {
            payload.extend(detail);
        }
        if let Err(error) = self.tenant.bus.publish(topic, payload) {
            tracing::warn!("cannot publish {topic}: {error}");
        }
    }

    /// Where `action` leads from the plugin's state, or the refusal naming
    /// the state.
    pub(crate) fn allowed(record: &PluginRecord, action: Action) -> Result<PluginState> {
        lifecycle::next(record.state, action).map_err(|transition| EngineError::InvalidTransition {
            id: record.id.clone(),
            transition,
        })
    }

    /// Moves a plugin through `action`, storing the new state (with
    /// `update`'s other changes) and announcing it.
    pub(crate) async fn transition(
        &self,
        record: &PluginRecord,
        action: Action,
        reason: &str,
        update: impl FnOnce(PluginUpdate) -> PluginUpdate,
    ) -> Result<PluginRecord> {
        let to = Self::allowed(record, action)?;
        let change = update(
            PluginUpdate::new(record.row_version)
                .with_state(to)
                .with_reason(reason),
        );
        let updated = self
            .shared
            .store
            .update_plugin(&self.tenant.id, &record.id, &change)
            .await?;
        if to != record.state {
            self.announce(
                topic(to),
                &record.id,
                json!({
                    "version": updated.version.to_string(),
                    "from": record.state.as_str(),
                    "state": to.as_str(),
                    "reason": reason,
                }),
            );
        }
        Ok(updated)
    }

    /// Records a failure: state `error` with its cause. Best effort: the
    /// original error matters more than a failure to record it.
    pub(crate) async fn fail(&self, id: &PluginId, error: &EngineError) {
        let code = match error {
            EngineError::Plugin { source, .. } => source.code(),
            EngineError::MissingConfig { .. } | EngineError::InvalidConfig { .. } => "config",
            EngineError::NotGranted { .. } => "not-granted",
            _ => "error",
        };
        let message = error.to_string();
        let recorded = match self.shared.store.get_plugin(&self.tenant.id, id).await {
            Ok(Some(record)) => self
                .transition(&record, Action::Fail, &message, |u| {
                    u.with_last_error(Some(LastError::new(code, &message)))
                })
                .await
                .map(drop),
            Ok(None) => Ok(()),
            Err(error) => Err(error.into()),
        };
        if let Err(failure) = recorded {
            tracing::error!(plugin = %id, "cannot record the failure ({message}): {failure}");
        }
    }

    /// Whether this engine may start the plugin's code: in safe mode only
    /// first-party plugins run.
    pub(crate) fn may_start(&self, record: &PluginRecord) -> bool {
        let proven = crate::trust::TrustRecord::from_stored(record.verification.as_ref())
            .is_some_and(|t| t.publisher_proven);
        !self.shared.safe_mode
            || self
                .shared
                .grant_policy
                .trusts(&record.manifest, record.source.kind, proven)
    }

    /// The installed plugins that cannot do without `id`: a non-optional
    /// runtime or peer dependency on it.
    pub(crate) async fn dependents(&self, id: &PluginId) -> Result<Vec<PluginRecord>> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .filter(|r| {
                r.manifest
                    .dependencies
                    .get(id)
                    .is_some_and(|d| !d.optional && d.scope != tenon_manifest::DependencyScope::Dev)
            })
            .collect())
    }
}

/// Declared, missing and effective permissions of a plugin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PermissionReport {
    /// Everything the current version declares, described.
    pub declared: Vec<String>,
    /// What is declared but not granted.
    pub missing: Vec<String>,
    /// What is in force (declared ∩ granted).
    pub effective: Permissions,
}

/// Stored config for display: secrets as `********`.
pub(crate) fn redact(values: &BTreeMap<String, ConfigValue>) -> BTreeMap<String, Value> {
    values
        .iter()
        .map(|(key, value)| {
            let shown = match value {
                ConfigValue::Plain(v) => v.clone(),
                ConfigValue::Secret(_) => Value::String(tenon_manifest::REDACTED.to_owned()),
            };
            (key.clone(), shown)
        })
        .collect()
}

/// Config diagnostics with the values of secret keys left out of their
/// messages (an invalid secret must not end up in an error, a log or the
/// registry).
pub(crate) fn redact_diagnostics(
    spec: &ConfigSpec,
    diagnostics: Vec<Diagnostic>,
) -> Vec<Diagnostic> {
    diagnostics
        .into_iter()
        .map(|mut diagnostic| {
            let key = diagnostic
                .path
                .split(['.', '['])
                .next()
                .unwrap_or_default()
                .to_owned();
            if spec.is_secret(&key) {
                diagnostic.message = format!(
                    "the value of `{key}` (a secret, not shown) does not fit its declared type or constraints"
                );
            }
            diagnostic
        })
        .collect()
}
