//! Config and grants.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tenon_manifest::{Manifest, Permissions, PluginId};
use tenon_registry::{ConfigChange, ConfigInput, Grant, NewGrant, PluginRecord, PluginState};

use super::{ConfigReport, GrantRequest, PermissionReport, redact, redact_diagnostics};
use crate::activate;
use crate::engine::PluginEngine;
use crate::error::{EngineError, Result};
use crate::grants;
use crate::lifecycle::{self, Action};

impl PluginEngine {
    pub(crate) async fn put_grant(
        &self,
        manifest: &Manifest,
        permissions: &Permissions,
        granted_by: &str,
    ) -> Result<Grant> {
        let grant = self
            .shared
            .store
            .put_grant(&NewGrant {
                tenant: self.tenant.id.clone(),
                plugin: manifest.plugin.id.clone(),
                version: manifest.plugin.version.clone(),
                permissions: permissions.clone(),
                granted_by: granted_by.to_owned(),
            })
            .await?;
        self.announce(
            "plugin.granted",
            &manifest.plugin.id,
            json!({ "version": manifest.plugin.version.to_string(), "granted_by": granted_by }),
        );
        Ok(grant)
    }

    /// Grants a version's declared permissions (all, or those named).
    pub async fn grant(&self, id: &PluginId, request: GrantRequest) -> Result<Grant> {
        let _ops = self.tenant.ops.lock().await;
        let record = self.record(id).await?;
        let manifest = match &request.version {
            None => record.manifest.clone(),
            Some(version) => {
                self.shared
                    .store
                    .get_version(&self.tenant.id, id, version)
                    .await?
                    .ok_or_else(|| EngineError::Version {
                        id: id.clone(),
                        message: format!("version {version} is not installed"),
                    })?
                    .manifest
            }
        };
        let declared = &manifest.permissions;
        let granted = match &request.permissions {
            None => declared.clone(),
            Some(asked) => grants::effective(declared, asked),
        };
        self.put_grant(&manifest, &granted, &request.granted_by)
            .await
    }

    /// The permissions declared by a plugin's current version, those
    /// missing a grant, and those in force.
    pub async fn permissions(&self, id: &PluginId) -> Result<PermissionReport> {
        let record = self.record(id).await?;
        let granted = activate::granted_for(
            &self.shared,
            &self.tenant,
            &record.manifest,
            record.source.kind,
        )
        .await?;
        Ok(PermissionReport {
            declared: grants::describe(&record.manifest.permissions),
            missing: grants::missing(&record.manifest.permissions, &granted),
            effective: grants::effective(&record.manifest.permissions, &granted),
        })
    }

    /// The plugin's config, secrets redacted.
    pub async fn config(&self, id: &PluginId) -> Result<BTreeMap<String, Value>> {
        self.record(id).await?;
        let config = self.shared.store.get_config(&self.tenant.id, id).await?;
        Ok(redact(&config.values))
    }

    /// Sets one config key.
    pub async fn set_config(&self, id: &PluginId, key: &str, value: Value) -> Result<ConfigReport> {
        let mut set = Map::new();
        set.insert(key.to_owned(), value);
        self.configure(id, set, &[]).await
    }

    /// Unsets one config key.
    pub async fn unset_config(&self, id: &PluginId, key: &str) -> Result<ConfigReport> {
        self.configure(id, Map::new(), &[key.to_owned()]).await
    }

    /// Sets and unsets config keys, validated against the manifest. A plugin
    /// waiting for config becomes `resolved` when its config is complete.
    /// An active plugin receives the change without a restart: the new
    /// config is checked as a whole and accepted by the plugin before it is
    /// stored, so a change the plugin refuses is not kept.
    pub async fn configure(
        &self,
        id: &PluginId,
        set: Map<String, Value>,
        unset: &[String],
    ) -> Result<ConfigReport> {
        let _ops = self.tenant.ops.lock().await;
        let record = self.record(id).await?;
        let spec = &record.manifest.config;
        let mut problems = Vec::new();
        let mut change = ConfigChange::new();
        for (key, value) in &set {
            match spec.check_value(key, value) {
                Ok(()) if spec.is_secret(key) => {
                    change
                        .set
                        .insert(key.clone(), ConfigInput::Secret(value.clone()));
                }
                Ok(()) => {
                    change
                        .set
                        .insert(key.clone(), ConfigInput::Plain(value.clone()));
                }
                Err(diagnostic) => problems.push(diagnostic),
            }
        }
        if !problems.is_empty() {
            return Err(EngineError::InvalidConfig {
                id: id.clone(),
                diagnostics: redact_diagnostics(spec, problems),
            });
        }
        let mut values = activate::stored_config(&self.shared, &self.tenant, id).await?;
        for key in unset {
            values.remove(key);
            change.unset.insert(key.clone());
        }
        values.extend(set.clone());
        let missing = spec.missing_required(&values);
        if lifecycle::is_running(record.state) && !missing.is_empty() {
            return Err(EngineError::ConfigRequired {
                id: id.clone(),
                state: record.state,
                keys: missing,
            });
        }
        let delivered = if record.state == PluginState::Active {
            self.deliver_config(&record, &values).await?
        } else {
            false
        };
        let stored = match self
            .shared
            .store
            .update_config(&self.tenant.id, id, &change)
            .await
        {
            Ok(stored) => stored,
            Err(error) => {
                if delivered {
                    // Give the plugin back the config the registry still has.
                    let previous = activate::stored_config(&self.shared, &self.tenant, id).await?;
                    if let Err(undo) = self.deliver_config(&record, &previous).await {
                        tracing::error!(plugin = %id, "restoring its config failed: {undo}");
                    }
                }
                return Err(error.into());
            }
        };
        let mut record = record;
        if matches!(
            record.state,
            PluginState::Installed | PluginState::PendingConfig | PluginState::Resolved
        ) {
            let action = if missing.is_empty() {
                Action::ConfigComplete
            } else {
                Action::ConfigMissing
            };
            if Self::allowed(&record, action)? != record.state {
                record = self
                    .transition(&record, action, "config changed", |u| u)
                    .await?;
            }
        }
        self.announce(
            "plugin.configured",
            id,
            json!({ "keys": set.keys().chain(unset.iter()).collect::<Vec<_>>(), "delivered": delivered }),
        );
        Ok(ConfigReport {
            id: id.clone(),
            state: record.state,
            values: redact(&stored.values),
            missing,
            delivered,
        })
    }

    /// Gives a plugin running here a new config without a restart (a plugin
    /// not started yet starts with it). `false` when it does not run here.
    pub(crate) async fn deliver_config(
        &self,
        record: &PluginRecord,
        values: &Map<String, Value>,
    ) -> Result<bool> {
        let Some(running) = self.tenant.running(&record.id) else {
            return Ok(false);
        };
        let config = Arc::new(activate::resolve_config(
            &record.id,
            &record.manifest.config,
            values,
        )?);
        if let Some(loaded) = running.slot.current() {
            loaded
                .plugin
                .configure(&Value::Object(config.without_secrets()))
                .await
                .map_err(|source| EngineError::Plugin {
                    id: record.id.clone(),
                    source,
                })?;
        }
        self.tenant
            .configs
            .write()
            .insert(record.id.clone(), config);
        Ok(true)
    }
}
