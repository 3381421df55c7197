//! Upgrades and rollbacks, and swapping running code.

use std::sync::Arc;

use serde_json::json;
use tenon_manifest::{Manifest, PluginId, Version};
use tenon_registry::{NewVersion, PluginRecord, PluginState, VersionRecord};

use super::UpgradeReport;
use crate::activate::{self, LoadSpec, Module};
use crate::engine::PluginEngine;
use crate::error::{EngineError, Result};
use crate::lifecycle::Action;
use crate::publisher::Arrival;
use crate::slot::Loaded;
use crate::source::InstallSource;
use crate::trust::TrustRecord;

/// A new version loaded and started beside the running one, not swapped in
/// yet.
pub(crate) struct Prepared {
    loaded: Loaded,
    carried: bool,
}

impl PluginEngine {
    /// Installs another version of an installed plugin and makes it current,
    /// keeping the previous one for [`rollback`](Self::rollback). An active
    /// plugin is swapped without a gap: the new version is loaded and
    /// started beside the old one (with its in-memory state carried over
    /// when it exports snapshot/restore), the registry is updated, and only
    /// then is the new code swapped in; calls in flight finish on the old
    /// code. If anything fails, the old version keeps running and stays
    /// current.
    pub async fn upgrade(&self, source: impl Into<InstallSource>) -> Result<UpgradeReport> {
        let candidate = self.read_source(&source.into()).await?;
        let _ops = self.tenant.ops.lock().await;
        let id = candidate.manifest.plugin.id.clone();
        let record = self.record(&id).await?;
        let version = candidate.manifest.plugin.version.clone();
        if version == record.version {
            return Err(EngineError::Version {
                id,
                message: format!("version {version} is already current"),
            });
        }
        if version < record.version {
            return Err(EngineError::Version {
                id: id.clone(),
                message: format!(
                    "version {version} is lower than the current {}: upgrade never goes back; `rollback {id} --to {version}` returns to an installed earlier version",
                    record.version
                ),
            });
        }
        Self::allowed(&record, Action::Upgrade)?;
        if record.source.kind.is_host() != candidate.source.kind.is_host() {
            return Err(EngineError::Version {
                id,
                message: format!(
                    "installed from a {} source, it cannot be upgraded from a {} source: the host's own plugins and packages never replace each other",
                    record.source.kind.as_str(),
                    candidate.source.kind.as_str()
                ),
            });
        }
        self.check_runtime(&candidate.manifest)?;
        let standing = self.check_publisher(&candidate, Arrival::Upgrade).await?;
        self.check_secrets_kept(&candidate.manifest, false).await?;
        self.check_dependencies(&candidate.manifest).await?;
        let existing = self
            .shared
            .store
            .get_version(&self.tenant.id, &id, &version)
            .await?;
        if existing.is_none() {
            let artifact = self.store_module(candidate.module.as_deref()).await?;
            self.shared
                .store
                .add_version(
                    &self.tenant.id,
                    &id,
                    &NewVersion {
                        manifest: candidate.manifest.clone(),
                        artifact,
                        verification: Some(candidate.trust.to_value()),
                    },
                )
                .await?;
        }
        if self.shared.grant_policy.trusts(
            &candidate.manifest,
            candidate.source.kind,
            candidate.trust.publisher_proven,
        ) {
            self.put_grant(
                &candidate.manifest,
                &candidate.manifest.permissions,
                "policy",
            )
            .await?;
        }
        let report = self
            .switch_version(record, &version, "plugin.upgraded")
            .await?;
        self.record_publisher(standing.as_ref()).await?;
        Ok(report)
    }

    /// Makes an earlier version current again (the newest one below the
    /// current, unless `to` names one), swapping running code like an
    /// upgrade, after checking that it still fits the installed plugins.
    pub async fn rollback(&self, id: &PluginId, to: Option<&Version>) -> Result<UpgradeReport> {
        let _ops = self.tenant.ops.lock().await;
        let record = self.record(id).await?;
        let versions = self.versions(id).await?;
        let target = match to {
            Some(version) => versions
                .iter()
                .find(|v| &v.version == version)
                .map(|v| v.version.clone())
                .ok_or_else(|| EngineError::Version {
                    id: id.clone(),
                    message: format!(
                        "version {version} is not installed (installed: {})",
                        versions
                            .iter()
                            .map(|v| v.version.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })?,
            None => versions
                .iter()
                .filter(|v| v.version < record.version)
                .map(|v| v.version.clone())
                .max()
                .ok_or_else(|| EngineError::Version {
                    id: id.clone(),
                    message: format!(
                        "there is no version below {} to roll back to",
                        record.version
                    ),
                })?,
        };
        if target == record.version {
            return Err(EngineError::Version {
                id: id.clone(),
                message: format!("version {target} is already current"),
            });
        }
        if let Some(stored) = versions.iter().find(|v| v.version == target) {
            self.check_secrets_kept(&stored.manifest, false).await?;
        }
        self.switch_version(record, &target, "plugin.rolled_back")
            .await
    }

    /// Refuses a version that would receive in clear a config value stored
    /// as a secret: once a secret, a key stays one until the operator
    /// re-classifies it (unsets it). Every path on which stored config
    /// meets a manifest other than the one it was stored under checks it:
    /// upgrade, rollback, a same-version reload, and a reinstall inheriting
    /// what an uninstalled plugin left (`uninstalled`).
    pub(crate) async fn check_secrets_kept(
        &self,
        manifest: &Manifest,
        uninstalled: bool,
    ) -> Result<()> {
        let id = &manifest.plugin.id;
        let stored = self.shared.store.get_config(&self.tenant.id, id).await?;
        let keys: Vec<String> = stored
            .values
            .iter()
            .filter(|(key, value)| {
                matches!(value, tenon_registry::ConfigValue::Secret(_))
                    && !manifest.config.is_secret(key)
            })
            .map(|(key, _)| key.clone())
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        Err(EngineError::SecretReclassified {
            id: id.clone(),
            version: manifest.plugin.version.clone(),
            keys,
            uninstalled,
        })
    }

    /// Every installed version of a plugin, highest first.
    pub async fn versions(&self, id: &PluginId) -> Result<Vec<VersionRecord>> {
        self.record(id).await?;
        Ok(self.shared.store.list_versions(&self.tenant.id, id).await?)
    }

    /// Points the plugin at `version`: checks it against the installed
    /// plugins and its config; when active, loads it beside the running
    /// version, records the switch, then swaps.
    async fn switch_version(
        &self,
        record: PluginRecord,
        version: &Version,
        topic: &str,
    ) -> Result<UpgradeReport> {
        Self::allowed(&record, Action::Upgrade)?;
        let id = record.id.clone();
        let target = self
            .shared
            .store
            .get_version(&self.tenant.id, &id, version)
            .await?
            .ok_or_else(|| EngineError::Version {
                id: id.clone(),
                message: format!("version {version} is not installed"),
            })?;
        self.check_dependencies(&target.manifest).await?;
        let values = activate::stored_config(&self.shared, &self.tenant, &id).await?;
        let missing = self
            .shared
            .config_spec(&target.manifest.config)
            .missing_required(&values);
        let from = record.version.clone();
        let runs_here = self.tenant.running(&id).is_some();
        let active = record.state == PluginState::Active;
        if active && !missing.is_empty() {
            return Err(EngineError::ConfigRequired {
                id,
                state: record.state,
                keys: missing,
            });
        }
        let prepared = if active && runs_here {
            let spec = LoadSpec::build(
                &self.shared,
                &self.tenant,
                &target.manifest,
                record.source.kind,
                Module::Stored(target.artifact),
                "upgrade to",
            )
            .await?;
            let mut visiting = vec![id.clone()];
            self.enable_dependencies(&target.manifest, &mut visiting)
                .await?;
            Some(self.prepare_swap(&id, spec).await?)
        } else {
            None
        };
        let switched = self
            .shared
            .store
            .set_current_version(&self.tenant.id, &id, version, record.row_version)
            .await;
        let mut record = match switched {
            Ok(record) => record,
            Err(error) => {
                if let Some(prepared) = prepared {
                    prepared
                        .loaded
                        .drain_and_stop(std::time::Duration::ZERO)
                        .await;
                }
                return Err(error.into());
            }
        };
        let swapped = prepared.is_some();
        let mut state_carried = false;
        if let Some(prepared) = prepared {
            state_carried = prepared.carried;
            self.commit_swap(&id, prepared).await;
        }
        // A plugin that is not running follows its new version's config
        // needs.
        let gate = if missing.is_empty() {
            Action::ConfigComplete
        } else {
            Action::ConfigMissing
        };
        if matches!(
            record.state,
            PluginState::Installed | PluginState::PendingConfig | PluginState::Resolved
        ) && Self::allowed(&record, gate)? != record.state
        {
            record = self
                .transition(&record, gate, "the new version's config needs", |u| u)
                .await?;
        }
        self.announce(
            topic,
            &id,
            json!({ "from": from.to_string(), "to": version.to_string(), "swapped": swapped }),
        );
        Ok(UpgradeReport {
            id,
            from,
            to: version.clone(),
            state: record.state,
            swapped,
            state_carried,
            trust: TrustRecord::from_stored(target.verification.as_ref()),
        })
    }

    /// Loads and starts `spec` beside the running version, carrying its
    /// in-memory state over. Nothing is swapped yet.
    pub(crate) async fn prepare_swap(&self, id: &PluginId, spec: LoadSpec) -> Result<Prepared> {
        let previous_config = self.tenant.config(id);
        let loaded = match activate::load_version(&self.shared, &self.tenant, &spec).await {
            Ok(loaded) => loaded,
            Err(source) => {
                // The running version keeps its config.
                if let Some(config) = previous_config {
                    self.tenant.configs.write().insert(id.clone(), config);
                }
                if let Some(failure) = activate::failure_of(&source) {
                    self.shared.telemetry.record_failure(
                        self.tenant.id.as_str(),
                        id.as_str(),
                        failure,
                    );
                }
                return Err(EngineError::Plugin {
                    id: id.clone(),
                    source,
                });
            }
        };
        let mut carried = false;
        if let Some(old) = self.tenant.running(id).and_then(|r| r.slot.current()) {
            match old.plugin.snapshot().await {
                Ok(Some(state)) => match loaded.plugin.restore(&state).await {
                    Ok(()) => carried = true,
                    Err(error) => tracing::warn!(plugin = %id, "restoring state failed: {error}"),
                },
                Ok(None) => {}
                Err(error) => tracing::warn!(plugin = %id, "snapshot failed: {error}"),
            }
        }
        Ok(Prepared { loaded, carried })
    }

    /// Swaps prepared code in: hooks call the new version from now on (they
    /// are re-registered only when the version declares other hooks,
    /// commands or subscriptions); the old version stops once the calls in
    /// flight finish.
    pub(crate) async fn commit_swap(&self, id: &PluginId, prepared: Prepared) {
        let Prepared { loaded, .. } = prepared;
        let Some(running) = self.tenant.running(id) else {
            loaded.drain_and_stop(std::time::Duration::ZERO).await;
            return;
        };
        let manifest: Arc<Manifest> = loaded.manifest.clone();
        let permissions = loaded.permissions.clone();
        let old = running.slot.swap(loaded);
        let same_registrations = old.as_ref().is_some_and(|old| {
            old.manifest.hooks == manifest.hooks
                && old.manifest.commands == manifest.commands
                && old.permissions.events == permissions.events
        });
        if !same_registrations
            && let Err(error) = activate::register(
                &self.shared,
                &self.tenant,
                running.slot.clone(),
                &manifest,
                &permissions,
            )
        {
            tracing::error!(plugin = %id, "registering the new version's hooks failed: {error}");
        }
        if let Some(old) = old {
            old.drain_and_stop(activate::drain_limit(&old.manifest))
                .await;
        }
        self.shared
            .telemetry
            .plugin_started(self.tenant.id.as_str(), id.as_str());
    }

    /// Loads `spec` beside the running version and swaps it in (or starts
    /// it, when it does not run here); the old version keeps running if the
    /// new one fails. Returns whether in-memory state was carried over.
    pub(crate) async fn swap_running(&self, id: &PluginId, spec: LoadSpec) -> Result<bool> {
        if self.tenant.running(id).is_none() {
            activate::start_local(&self.shared, &self.tenant, spec).await?;
            return Ok(false);
        }
        let prepared = self.prepare_swap(id, spec).await?;
        let carried = prepared.carried;
        self.commit_swap(id, prepared).await;
        Ok(carried)
    }
}
