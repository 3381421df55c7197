//! Config and grants.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tenon_manifest::{Manifest, Permissions, PluginId, Version};
use tenon_registry::{ConfigChange, ConfigInput, Grant, NewGrant, PluginRecord, PluginState};

use super::{
    ConfigReport, GrantRequest, PermissionReport, RevokeReport, redact, redact_diagnostics,
};
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

    /// The permissions a plugin's current version holds.
    async fn granted(&self, record: &PluginRecord) -> Result<Permissions> {
        activate::granted_for(
            &self.shared,
            &self.tenant,
            &record.manifest,
            record.source.kind,
        )
        .await
    }

    /// The manifest of an installed version (the current one when
    /// `version` is `None`).
    async fn manifest_of(&self, id: &PluginId, version: Option<&Version>) -> Result<Manifest> {
        let record = self.record(id).await?;
        match version {
            None => Ok(record.manifest),
            Some(version) => Ok(self
                .shared
                .store
                .get_version(&self.tenant.id, id, version)
                .await?
                .ok_or_else(|| EngineError::Version {
                    id: id.clone(),
                    message: format!("version {version} is not installed"),
                })?
                .manifest),
        }
    }

    /// Grants a version's declared permissions (all, or those named).
    pub async fn grant(&self, id: &PluginId, request: GrantRequest) -> Result<Grant> {
        let _ops = self.tenant.ops.lock().await;
        let manifest = self.manifest_of(id, request.version.as_ref()).await?;
        let declared = &manifest.permissions;
        let granted = match &request.permissions {
            None => declared.clone(),
            Some(asked) => grants::effective(declared, asked),
        };
        self.put_grant(&manifest, &granted, &request.granted_by)
            .await
    }

    /// Grants the permissions of a version (the current one when `version`
    /// is `None`) that `names` name (`secrets`, `secrets: token`,
    /// `network: outbound api.example.com`, `kv`; see [`grants::names`]),
    /// on top of what that version holds already. A name that matches
    /// nothing the version declares is refused with what it declares, and
    /// nothing is stored.
    pub async fn grant_named(
        &self,
        id: &PluginId,
        version: Option<&Version>,
        names: &[String],
        granted_by: &str,
    ) -> Result<Grant> {
        let _ops = self.tenant.ops.lock().await;
        let manifest = self.manifest_of(id, version).await?;
        let declared = &manifest.permissions;
        let unknown = grants::unknown(declared, names);
        if !unknown.is_empty() {
            return Err(EngineError::UnknownPermission {
                id: id.clone(),
                among: "declares",
                names: unknown,
                known: grants::describe(declared),
            });
        }
        let held = self
            .shared
            .store
            .get_grant(&self.tenant.id, id, &manifest.plugin.version)
            .await?
            .map(|g| grants::describe(&g.permissions))
            .unwrap_or_default();
        let granted = grants::retain(declared, |d| {
            held.iter().any(|h| h == d) || names.iter().any(|n| grants::names(n, d))
        });
        self.put_grant(&manifest, &granted, granted_by).await
    }

    /// Takes permissions back from a plugin: those `names` name (as
    /// [`grant_named`](Self::grant_named) reads them), or every one when
    /// `names` is empty, from the grant of each of its versions. Each
    /// changed grant is withdrawn (a `grant_revoked` event) and what remains
    /// of it granted again. A plugin running without a permission it
    /// declares is stopped at once and disabled with the revocation as its
    /// recorded reason — here, and through the registry on every host
    /// sharing it. Power over hooks taken from a running plugin (failing
    /// closed, a priority above the host's threshold) is taken from its
    /// handlers here at once; it keeps running. Refused for a plugin whose source the grant policy
    /// trusts (the host's own: it holds no grant) and for a name that
    /// matches nothing it holds.
    pub async fn revoke(&self, id: &PluginId, names: &[String]) -> Result<RevokeReport> {
        let _ops = self.tenant.ops.lock().await;
        let record = self.record(id).await?;
        // The host's own plugins hold no grant; a trusted publisher's
        // plugins hold the grant its proven signature earned, which an
        // operator may take back like any other.
        if self
            .shared
            .grant_policy
            .trusted_sources
            .contains(&record.source.kind)
        {
            return Err(EngineError::Trusted {
                id: id.clone(),
                origin: record.source.kind.as_str().to_owned(),
            });
        }
        let store = &self.shared.store;
        let stored = store.list_grants(&self.tenant.id, id).await?;
        let unknown: Vec<String> = names
            .iter()
            .filter(|name| {
                !stored.iter().any(|g| {
                    grants::describe(&g.permissions)
                        .iter()
                        .any(|d| grants::names(name, d))
                })
            })
            .cloned()
            .collect();
        if !unknown.is_empty() {
            let granted = self.granted(&record).await?;
            return Err(EngineError::UnknownPermission {
                id: id.clone(),
                among: "holds",
                names: unknown,
                known: grants::describe(&granted),
            });
        }
        let mut revoked = Vec::new();
        for grant in &stored {
            let kept = grants::retain(&grant.permissions, |d| {
                !names.is_empty() && !names.iter().any(|n| grants::names(n, d))
            });
            if kept == grant.permissions {
                continue;
            }
            let before = grants::describe(&grant.permissions);
            let after = grants::describe(&kept);
            for gone in before.into_iter().filter(|d| !after.contains(d)) {
                if !revoked.contains(&gone) {
                    revoked.push(gone);
                }
            }
            store
                .revoke_grant(&self.tenant.id, id, &grant.version)
                .await?;
            if kept != Permissions::default() {
                store
                    .put_grant(&NewGrant {
                        tenant: self.tenant.id.clone(),
                        plugin: id.clone(),
                        version: grant.version.clone(),
                        permissions: kept,
                        granted_by: grant.granted_by.clone(),
                    })
                    .await?;
            }
        }
        let granted = self.granted(&record).await?;
        let declared = &record.manifest.permissions;
        let stopped = if revoked.is_empty() || grants::missing_to_run(declared, &granted).is_empty()
        {
            false
        } else {
            let reason = format!("permission revoked: {}", revoked.join(", "));
            lifecycle::is_running(record.state)
                && self
                    .stop_for(&record, "permission_revoked", &reason)
                    .await?
        };
        // Power over hooks is not needed to run: a running plugin keeps
        // running, its handlers registered again with what remains (fail
        // open, at most the host's priority threshold) from the next
        // dispatch on.
        if !stopped
            && revoked.iter().any(|r| grants::is_hook_power(r))
            && let Some(running) = self.tenant.running(id)
        {
            activate::register(
                &self.shared,
                &self.tenant,
                running.slot.clone(),
                &record.manifest,
                &grants::effective(declared, &granted),
            )?;
        }
        if !revoked.is_empty() {
            self.announce(
                "plugin.grant_revoked",
                id,
                json!({ "revoked": revoked, "stopped": stopped }),
            );
        }
        Ok(RevokeReport {
            id: id.clone(),
            revoked,
            remaining: grants::describe(&grants::effective(declared, &granted)),
            stopped,
        })
    }

    /// The permissions declared by a plugin's current version, those
    /// missing a grant, and those in force.
    pub async fn permissions(&self, id: &PluginId) -> Result<PermissionReport> {
        let record = self.record(id).await?;
        let granted = self.granted(&record).await?;
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
        let spec = &*self.shared.config_spec(&record.manifest.config);
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
            &self.shared.config_spec(&record.manifest.config),
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
