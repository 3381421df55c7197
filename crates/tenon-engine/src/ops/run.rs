//! Enabling, disabling and uninstalling.

use serde_json::json;
use tenon_manifest::{DependencyScope, Manifest, PluginId};
use tenon_registry::{DeleteOptions, LastError, PluginRecord, PluginState, Purge};

use super::{DisableOptions, UninstallOptions, topic};
use crate::activate::{self, LoadSpec};
use crate::engine::PluginEngine;
use crate::error::{EngineError, Result};
use crate::lifecycle::{self, Action};

impl PluginEngine {
    /// Enables (activates) a plugin: its dependencies first, then it.
    ///
    /// Refused while required config is missing, while its declared
    /// permissions are not granted (unless the grant policy trusts it), in
    /// safe mode for third-party plugins, or when its state does not allow
    /// it.
    pub async fn enable(&self, id: &PluginId) -> Result<PluginRecord> {
        let _ops = self.tenant.ops.lock().await;
        let mut visiting = Vec::new();
        self.enable_locked(id, &mut visiting).await
    }

    async fn enable_locked(
        &self,
        id: &PluginId,
        visiting: &mut Vec<PluginId>,
    ) -> Result<PluginRecord> {
        if let Some(start) = visiting.iter().position(|v| v == id) {
            let mut cycle: Vec<String> =
                visiting[start..].iter().map(ToString::to_string).collect();
            cycle.push(id.to_string());
            return Err(EngineError::Dependencies {
                id: id.clone(),
                explanation: format!("dependency cycle: {}", cycle.join(" → ")),
            });
        }
        let record = self.record(id).await?;
        if record.state == PluginState::PendingConfig {
            let values = activate::stored_config(&self.shared, &self.tenant, id).await?;
            return Err(EngineError::MissingConfig {
                id: id.clone(),
                keys: self
                    .shared
                    .config_spec(&record.manifest.config)
                    .missing_required(&values),
            });
        }
        Self::allowed(&record, Action::Load)?;
        if !self.may_start(&record) {
            return Err(EngineError::SafeMode { id: id.clone() });
        }
        let spec = LoadSpec::current(&self.shared, &self.tenant, &record, "enable").await?;
        visiting.push(id.clone());
        let dependencies = self.enable_dependencies(&record.manifest, visiting).await;
        visiting.pop();
        dependencies?;
        let record = self
            .transition(&record, Action::Load, "enabled by operator", |u| {
                u.with_enabled(true).with_last_error(None)
            })
            .await?;
        self.bring_up(record, spec).await
    }

    /// The transitions from `loading` to `active`, starting the code. On any
    /// failure the code is stopped and the plugin recorded in `error`.
    pub(crate) async fn bring_up(
        &self,
        record: PluginRecord,
        spec: LoadSpec,
    ) -> Result<PluginRecord> {
        let id = record.id.clone();
        let result = async {
            activate::start_local(&self.shared, &self.tenant, spec).await?;
            let mut record = record;
            for (action, reason) in [
                (Action::Loaded, "code loaded"),
                (Action::Activate, "starting"),
                (Action::Activated, "active"),
            ] {
                if Self::allowed(&record, action).is_ok() {
                    record = self.transition(&record, action, reason, |u| u).await?;
                }
            }
            Ok(record)
        }
        .await;
        match result {
            Ok(record) => {
                self.shared
                    .telemetry
                    .reenabled(self.tenant.id.as_str(), id.as_str());
                Ok(record)
            }
            Err(error) => {
                activate::stop_local(&self.shared, &self.tenant, &id).await;
                self.fail(&id, &error).await;
                Err(error)
            }
        }
    }

    /// Makes every dependency the plugin cannot do without run here:
    /// enables the ones that are not active, starts the active ones that do
    /// not run in this engine. Optional dependencies are used when they can
    /// be.
    pub(crate) async fn enable_dependencies(
        &self,
        manifest: &Manifest,
        visiting: &mut Vec<PluginId>,
    ) -> Result<()> {
        for (dependency, requirement) in &manifest.dependencies {
            if requirement.scope == DependencyScope::Dev {
                continue;
            }
            let unmet = |explanation: String| {
                if requirement.optional {
                    tracing::info!(plugin = %manifest.plugin.id, "optional dependency {dependency} not used: {explanation}");
                    Ok(())
                } else {
                    Err(EngineError::Dependencies {
                        id: manifest.plugin.id.clone(),
                        explanation,
                    })
                }
            };
            let Some(record) = self
                .shared
                .store
                .get_plugin(&self.tenant.id, dependency)
                .await?
            else {
                unmet(format!(
                    "{} {} needs {dependency} {}, which is not installed",
                    manifest.plugin.id, manifest.plugin.version, requirement.version
                ))?;
                continue;
            };
            if !requirement.version.matches(&record.version) {
                unmet(format!(
                    "{} {} needs {dependency} {}, but {} is installed",
                    manifest.plugin.id,
                    manifest.plugin.version,
                    requirement.version,
                    record.version
                ))?;
                continue;
            }
            if self.tenant.running(dependency).is_some() {
                continue;
            }
            let started = if record.state == PluginState::Active {
                // Active (here before, or on another host) but not running in
                // this engine: start its code without a transition.
                async {
                    if !self.may_start(&record) {
                        return Err(EngineError::SafeMode {
                            id: dependency.clone(),
                        });
                    }
                    Box::pin(self.enable_dependencies(&record.manifest, visiting)).await?;
                    let spec =
                        LoadSpec::current(&self.shared, &self.tenant, &record, "enable").await?;
                    activate::start_local(&self.shared, &self.tenant, spec).await
                }
                .await
            } else {
                Box::pin(self.enable_locked(dependency, visiting))
                    .await
                    .map(drop)
            };
            if let Err(error) = started {
                unmet(format!("its dependency {dependency} cannot run: {error}"))?;
            }
        }
        Ok(())
    }

    /// Disables (deactivates) a plugin. Refused while active plugins depend
    /// on it, unless cascaded. A plugin in `error` is parked as `disabled`;
    /// a start or a stop that never finished is stopped.
    pub async fn disable(&self, id: &PluginId, options: DisableOptions) -> Result<Vec<PluginId>> {
        let _ops = self.tenant.ops.lock().await;
        let mut disabled = Vec::new();
        self.disable_locked(id, options, &mut disabled).await?;
        Ok(disabled)
    }

    async fn disable_locked(
        &self,
        id: &PluginId,
        options: DisableOptions,
        disabled: &mut Vec<PluginId>,
    ) -> Result<()> {
        let record = self.record(id).await?;
        if record.state == PluginState::Error {
            activate::stop_local(&self.shared, &self.tenant, id).await;
            self.transition(&record, Action::Acknowledge, "disabled by operator", |u| {
                u.with_enabled(false)
            })
            .await?;
            disabled.push(id.clone());
            return Ok(());
        }
        Self::allowed(&record, Action::Deactivate)?;
        let dependents: Vec<PluginRecord> = self
            .dependents(id)
            .await?
            .into_iter()
            .filter(|r| lifecycle::is_running(r.state))
            .collect();
        if !dependents.is_empty() {
            if !options.cascade {
                return Err(EngineError::DependentsActive {
                    id: id.clone(),
                    dependents: dependents.iter().map(|r| r.id.to_string()).collect(),
                });
            }
            for dependent in dependents {
                Box::pin(self.disable_locked(&dependent.id, options, disabled)).await?;
            }
        }
        let record = self.record(id).await?;
        let record = if record.state == PluginState::Deactivating {
            record
        } else {
            self.transition(&record, Action::Deactivate, "disabled by operator", |u| {
                u.with_enabled(false)
            })
            .await?
        };
        activate::stop_local(&self.shared, &self.tenant, id).await;
        self.transition(&record, Action::Deactivated, "stopped", |u| u)
            .await?;
        disabled.push(id.clone());
        Ok(())
    }

    /// Disables a plugin the crash guard condemned, saying why.
    pub(crate) async fn auto_disable(&self, id: &PluginId, reason: &str) -> Result<()> {
        let _ops = self.tenant.ops.lock().await;
        let record = self.record(id).await?;
        self.stop_for(&record, "crash_loop", reason).await.map(drop)
    }

    /// Stops and disables a plugin the engine may no longer run, recording
    /// why (`code` and `reason` become its last error); whether it was
    /// stopped (`false` when its state has nothing to stop). The caller
    /// holds the tenant's operation lock.
    pub(crate) async fn stop_for(
        &self,
        record: &PluginRecord,
        code: &str,
        reason: &str,
    ) -> Result<bool> {
        if Self::allowed(record, Action::AutoDisable).is_err() {
            return Ok(false);
        }
        activate::stop_local(&self.shared, &self.tenant, &record.id).await;
        self.transition(record, Action::AutoDisable, reason, |u| {
            u.with_enabled(false)
                .with_last_error(Some(LastError::new(code, reason)))
        })
        .await?;
        self.announce(
            "plugin.auto_disabled",
            &record.id,
            json!({ "reason": reason, "code": code }),
        );
        Ok(true)
    }

    /// Uninstalls a plugin that is not active (or finishes an uninstall that
    /// was interrupted). Its versions and modules are deleted; what it left
    /// behind only as `options` says.
    pub async fn uninstall(
        &self,
        id: &PluginId,
        options: UninstallOptions,
    ) -> Result<tenon_registry::DeleteReport> {
        let _ops = self.tenant.ops.lock().await;
        let record = self.record(id).await?;
        Self::allowed(&record, Action::Uninstall)?;
        let dependents: Vec<String> = self
            .dependents(id)
            .await?
            .iter()
            .map(|r| r.id.to_string())
            .collect();
        if !dependents.is_empty() {
            return Err(EngineError::Dependencies {
                id: id.clone(),
                explanation: format!(
                    "cannot uninstall {id}: {} depend on it; uninstall them first",
                    dependents.join(", ")
                ),
            });
        }
        let record = if record.state == PluginState::Uninstalling {
            record
        } else {
            self.transition(&record, Action::Uninstall, "uninstalled by operator", |u| {
                u.with_enabled(false)
            })
            .await?
        };
        activate::stop_local(&self.shared, &self.tenant, id).await;
        let all = options.purge_data;
        let files = all || options.purge_files;
        let purge = Purge {
            config: all || options.purge_config,
            kv: all || options.purge_kv,
            events: all || options.purge_events,
            versions: true,
            grants: all || options.purge_config,
        };
        let report = self
            .shared
            .store
            .delete_plugin(
                &self.tenant.id,
                id,
                &DeleteOptions {
                    expected_row_version: Some(record.row_version),
                    purge,
                    // Who leaves what is kept, for a later reinstall.
                    leftovers_owner: (!(purge.config && purge.kv && purge.grants && files))
                        .then(|| crate::publisher::LeftBy::of(&record).to_json()),
                },
            )
            .await?;
        self.shared
            .store
            .delete_unused_artifacts(&self.tenant.id)
            .await?;
        if files {
            let dir = self.paths().plugin_data(self.tenant.id.as_str(), id)?;
            if let Err(error) = tokio::fs::remove_dir_all(&dir).await
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(plugin = %id, "cannot delete {}: {error}", dir.display());
            }
        }
        self.shared
            .telemetry
            .forget(self.tenant.id.as_str(), id.as_str());
        self.announce(
            topic(PluginState::Removed),
            id,
            json!({ "purged": { "config": purge.config, "kv": purge.kv, "events": purge.events, "files": files } }),
        );
        Ok(report)
    }
}
