//! What operators do to plugins: install, configure, grant, enable, disable,
//! upgrade, roll back, uninstall. Every change goes through the lifecycle
//! state machine, is stored with an event, and is published on the bus.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value, json};
use tenon_manifest::{
    DependencyScope, Diagnostic, Manifest, Permissions, PluginId, Version, VersionReq,
};
use tenon_registry::{
    ConfigChange, ConfigInput, ConfigValue, DeleteOptions, Grant, LastError, NewGrant, NewPlugin,
    NewVersion, PluginRecord, PluginState, PluginUpdate, Purge, RegistryError,
};
use tenon_resolver::{HostVersions, Index, IndexVersion, Options, Request, Requirement, Strategy};

use crate::activate::{self, LoadSpec};
use crate::engine::PluginEngine;
use crate::error::{EngineError, Result};
use crate::grants;
use crate::lifecycle::{self, Action};
use crate::source::{Candidate, InstallSource};

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

/// How to disable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DisableOptions {
    /// Also disable the active plugins that depend on it (otherwise their
    /// presence refuses the disable).
    pub cascade: bool,
}

/// How to uninstall. The plugin's versions and modules always go; what it
/// leaves behind is kept (so that reinstalling finds it) unless purged.
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

fn conflict_free(error: RegistryError) -> EngineError {
    EngineError::Registry(error)
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

    /// Moves a plugin through `action`, storing the new state (with
    /// `update`'s other changes) and announcing it.
    pub(crate) async fn transition(
        &self,
        record: &PluginRecord,
        action: Action,
        reason: &str,
        update: impl FnOnce(PluginUpdate) -> PluginUpdate,
    ) -> Result<PluginRecord> {
        let to = lifecycle::next(record.state, action).map_err(|transition| {
            EngineError::InvalidTransition {
                id: record.id.clone(),
                transition,
            }
        })?;
        let change = update(
            PluginUpdate::new(record.row_version)
                .with_state(to)
                .with_reason(reason),
        );
        let updated = self
            .shared
            .store
            .update_plugin(&self.tenant.id, &record.id, &change)
            .await
            .map_err(conflict_free)?;
        if to != record.state {
            self.announce(
                topic(to),
                &record.id,
                json!({ "version": updated.version.to_string(), "from": record.state.as_str(), "state": to.as_str(), "reason": reason }),
            );
        }
        Ok(updated)
    }

    /// Records a failure: state `error` with its cause.
    async fn fail(&self, record: &PluginRecord, error: &EngineError) -> Result<PluginRecord> {
        let code = match error {
            EngineError::Plugin { source, .. } => source.code(),
            EngineError::MissingConfig { .. } | EngineError::InvalidConfig { .. } => "config",
            _ => "error",
        };
        let message = error.to_string();
        self.transition(record, Action::Fail, &message, |u| {
            u.with_last_error(Some(LastError::new(code, &message)))
        })
        .await
    }

    /// Installs a plugin from a directory or a package archive.
    ///
    /// The manifest is validated against the host, the engine requirement
    /// checked, dependencies resolved against what is installed, and the
    /// module stored in the registry (boot needs nothing else). The plugin
    /// ends `pending_config` (required config missing) or `resolved`.
    pub async fn install(&self, source: impl Into<InstallSource>) -> Result<InstallReport> {
        let source = source.into();
        let _ops = self.tenant.ops.lock().await;
        let candidate = self.read_source(&source).await?;
        self.install_candidate(candidate).await
    }

    /// Installs several plugins that may depend on each other: they are
    /// resolved together with what is installed (each is "offered" to the
    /// others) and installed in dependency order. Nothing is installed when
    /// any of them is refused.
    pub async fn install_all(&self, sources: &[InstallSource]) -> Result<Vec<InstallReport>> {
        let _ops = self.tenant.ops.lock().await;
        let mut candidates = Vec::new();
        for source in sources {
            let candidate = self.read_source(source).await?;
            self.check_runtime(&candidate.manifest)?;
            let id = &candidate.manifest.plugin.id;
            if let Some(existing) = self.shared.store.get_plugin(&self.tenant.id, id).await? {
                return Err(EngineError::AlreadyInstalled {
                    id: id.clone(),
                    version: existing.version,
                });
            }
            candidates.push(candidate);
        }
        let Some(first) = candidates.first() else {
            return Ok(Vec::new());
        };
        let manifests: Vec<&Manifest> = candidates.iter().map(|c| &c.manifest).collect();
        let resolution = self.resolve_with(&manifests).await.map_err(|explanation| {
            EngineError::Dependencies {
                id: first.manifest.plugin.id.clone(),
                explanation,
            }
        })?;
        let mut reports = Vec::new();
        for selected in &resolution.order {
            if let Some(at) = candidates
                .iter()
                .position(|c| c.manifest.plugin.id == selected.id)
            {
                let candidate = candidates.remove(at);
                reports.push(self.store_candidate(candidate, Vec::new()).await?);
            }
        }
        Ok(reports)
    }

    fn check_runtime(&self, manifest: &Manifest) -> Result<()> {
        if self.shared.runtimes.contains_key(&manifest.runtime.kind) {
            return Ok(());
        }
        let kind = manifest.runtime.kind.as_str();
        let hint = match kind {
            "component" | "extism" | "native" => {
                format!(" (build Tenon with the `{kind}` feature)")
            }
            _ => String::new(),
        };
        Err(EngineError::NoRuntime {
            id: manifest.plugin.id.clone(),
            kind: kind.to_owned(),
            hint,
        })
    }

    /// The installed plugins as a resolver index and installed set.
    async fn installed_index(&self) -> Result<(Index, BTreeMap<PluginId, Version>)> {
        let mut index = Index::new();
        let mut installed = BTreeMap::new();
        for record in self.list().await? {
            index.insert(
                record.id.clone(),
                record.version.clone(),
                IndexVersion::from_manifest(&record.manifest),
            );
            installed.insert(record.id.clone(), record.version.clone());
        }
        Ok((index, installed))
    }

    /// Resolves `manifests` (each at its exact version) together with the
    /// installed plugins, keeping those at their versions; the explanation
    /// of the conflict when there is one.
    async fn resolve_with(
        &self,
        manifests: &[&Manifest],
    ) -> Result<tenon_resolver::Resolution, String> {
        let (mut index, mut installed) = self.installed_index().await.map_err(|e| e.to_string())?;
        let mut requirements = Vec::new();
        for manifest in manifests {
            let id = &manifest.plugin.id;
            installed.remove(id);
            if let Some(plugin) = index.plugins.get_mut(id) {
                plugin.versions.clear();
            }
            index.insert(
                id.clone(),
                manifest.plugin.version.clone(),
                IndexVersion::from_manifest(manifest),
            );
            let exact = VersionReq::parse(&format!("={}", manifest.plugin.version))
                .expect("an exact requirement parses");
            requirements.push(Requirement::new(id.clone(), exact));
        }
        let request = Request {
            requirements,
            installed,
            host: HostVersions {
                api: self.shared.profile.api_versions.clone(),
                host: self.shared.profile.version.clone(),
            },
            options: Options {
                strategy: Strategy::Manual,
                prerelease: true,
                prune: false,
            },
        };
        tenon_resolver::resolve(&index, &request).map_err(|error| error.to_string())
    }

    /// Checks that `manifest` can join the installed plugins: its engine
    /// requirement and its dependencies (runtime dependencies must be
    /// installed at a fitting version, peers present, optional ones are
    /// noted when missing).
    async fn check_dependencies(&self, manifest: &Manifest) -> Result<Vec<String>> {
        let resolution = self
            .resolve_with(&[manifest])
            .await
            .map_err(|explanation| EngineError::Dependencies {
                id: manifest.plugin.id.clone(),
                explanation,
            })?;
        Ok(resolution.notes.into_iter().map(|n| n.message).collect())
    }

    pub(crate) async fn install_candidate(&self, candidate: Candidate) -> Result<InstallReport> {
        let manifest = &candidate.manifest;
        self.check_runtime(manifest)?;
        if let Some(existing) = self
            .shared
            .store
            .get_plugin(&self.tenant.id, &manifest.plugin.id)
            .await?
        {
            return Err(EngineError::AlreadyInstalled {
                id: manifest.plugin.id.clone(),
                version: existing.version,
            });
        }
        let notes = self.check_dependencies(manifest).await?;
        self.store_candidate(candidate, notes).await
    }

    /// Stores a checked candidate: its module, its record, its first
    /// transition, and a grant when the policy trusts it.
    async fn store_candidate(
        &self,
        candidate: Candidate,
        notes: Vec<String>,
    ) -> Result<InstallReport> {
        let Candidate {
            manifest,
            module,
            source,
            warnings,
        } = candidate;
        let id = manifest.plugin.id.clone();
        let artifact = match &module {
            Some(bytes) => Some(
                self.shared
                    .store
                    .put_artifact(&self.tenant.id, bytes)
                    .await?
                    .sha256,
            ),
            None => None,
        };
        let trusted = self.shared.grant_policy.trusts(&manifest, source.kind);
        let mut new = NewPlugin::new(self.tenant.id.clone(), manifest.clone(), source);
        if let Some(artifact) = artifact {
            new = new.with_artifact(artifact);
        }
        let record = self.shared.store.insert_plugin(&new).await?;
        self.announce(
            topic(PluginState::Installed),
            &id,
            json!({ "version": record.version.to_string() }),
        );
        let values = activate::stored_config(&self.shared, &self.tenant, &id).await?;
        let missing = manifest.config.missing_required(&values);
        let action = if missing.is_empty() {
            Action::ConfigComplete
        } else {
            Action::ConfigMissing
        };
        let reason = if missing.is_empty() {
            "installed; config complete".to_owned()
        } else {
            format!("installed; required config missing: {}", missing.join(", "))
        };
        let record = self.transition(&record, action, &reason, |u| u).await?;
        if trusted && !manifest.permissions.is_empty() {
            self.put_grant(&manifest, &manifest.permissions, "policy")
                .await?;
        }
        let granted =
            activate::granted_for(&self.shared, &self.tenant, &manifest, record.source.kind)
                .await?;
        Ok(InstallReport {
            id,
            version: record.version.clone(),
            state: record.state,
            missing_config: missing,
            permissions: grants::describe(&manifest.permissions),
            granted: grants::missing(&manifest.permissions, &granted).is_empty(),
            warnings,
            notes,
        })
    }

    async fn put_grant(
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

    /// The permissions declared by a plugin's current version, those granted,
    /// and those in force.
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

    /// Sets and unsets config keys, validated against the manifest. A plugin
    /// waiting for config becomes `resolved` when its config is complete; an
    /// active plugin receives the change without a restart.
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
        let mut current = activate::stored_config(&self.shared, &self.tenant, id).await?;
        for key in unset {
            current.remove(key);
            change.unset.insert(key.clone());
        }
        current.extend(set.clone());
        let missing = spec.missing_required(&current);
        if lifecycle::is_running(record.state) && !missing.is_empty() {
            return Err(EngineError::ConfigRequired {
                id: id.clone(),
                state: record.state,
                keys: missing,
            });
        }
        if !problems.is_empty() {
            return Err(EngineError::InvalidConfig {
                id: id.clone(),
                diagnostics: problems,
            });
        }
        let stored = self
            .shared
            .store
            .update_config(&self.tenant.id, id, &change)
            .await?;
        let mut record = record;
        let mut delivered = false;
        match record.state {
            PluginState::Installed | PluginState::PendingConfig | PluginState::Resolved => {
                let action = if missing.is_empty() {
                    Action::ConfigComplete
                } else {
                    Action::ConfigMissing
                };
                let to = lifecycle::next(record.state, action).unwrap_or(record.state);
                if to != record.state {
                    record = self
                        .transition(&record, action, "config changed", |u| u)
                        .await?;
                }
            }
            PluginState::Active => {
                delivered = self.deliver_config(&record, &current).await?;
            }
            _ => {}
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

    /// Gives an active plugin its new config without a restart.
    pub(crate) async fn deliver_config(
        &self,
        record: &PluginRecord,
        values: &Map<String, Value>,
    ) -> Result<bool> {
        let Some(running) = self.tenant.running(&record.id) else {
            return Ok(false);
        };
        let config = activate::resolve_config(&record.id, &record.manifest.config, values)?;
        self.tenant
            .configs
            .write()
            .insert(record.id.clone(), Arc::new(config.values.clone()));
        let Some(loaded) = running.slot.current() else {
            // Not loaded yet (activated on first use): it starts with the
            // new config.
            return Ok(true);
        };
        loaded
            .plugin
            .configure(&Value::Object(config.without_secrets()))
            .await
            .map_err(|source| EngineError::Plugin {
                id: record.id.clone(),
                source,
            })?;
        Ok(true)
    }

    /// Enables (activates) a plugin: its dependencies first, then it.
    ///
    /// Refused while required config is missing, while its declared
    /// permissions are not granted (unless the grant policy trusts it), or
    /// when its state does not allow it.
    pub async fn enable(&self, id: &PluginId) -> Result<PluginRecord> {
        let _ops = self.tenant.ops.lock().await;
        let mut visiting = Vec::new();
        self.enable_locked(id, &mut visiting).await
    }

    pub(crate) async fn enable_locked(
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
                keys: record.manifest.config.missing_required(&values),
            });
        }
        lifecycle::next(record.state, Action::Load).map_err(|transition| {
            EngineError::InvalidTransition {
                id: id.clone(),
                transition,
            }
        })?;
        let granted = activate::granted_for(
            &self.shared,
            &self.tenant,
            &record.manifest,
            record.source.kind,
        )
        .await?;
        let missing = grants::missing(&record.manifest.permissions, &granted);
        if !missing.is_empty() {
            return Err(EngineError::NotGranted {
                id: id.clone(),
                version: record.version.clone(),
                missing,
            });
        }
        visiting.push(id.clone());
        let dependencies = self.enable_dependencies(&record.manifest, visiting).await;
        visiting.pop();
        dependencies?;
        let spec = LoadSpec::current(&self.shared, &self.tenant, &record).await?;
        let record = self
            .transition(&record, Action::Load, "enabled by operator", |u| {
                u.with_enabled(true).with_last_error(None)
            })
            .await?;
        self.bring_up(record, spec).await
    }

    /// The transitions from `loading` to `active`, starting the code.
    pub(crate) async fn bring_up(
        &self,
        record: PluginRecord,
        spec: LoadSpec,
    ) -> Result<PluginRecord> {
        if let Err(error) = activate::start_local(&self.shared, &self.tenant, spec).await {
            self.fail(&record, &error).await?;
            return Err(error);
        }
        let record = self
            .transition(&record, Action::Loaded, "code loaded", |u| u)
            .await?;
        let record = self
            .transition(&record, Action::Activate, "starting", |u| u)
            .await?;
        let record = self
            .transition(&record, Action::Activated, "active", |u| u)
            .await?;
        self.shared
            .telemetry
            .reenabled(self.tenant.id.as_str(), record.id.as_str());
        Ok(record)
    }

    async fn enable_dependencies(
        &self,
        manifest: &Manifest,
        visiting: &mut Vec<PluginId>,
    ) -> Result<()> {
        for (dependency, requirement) in &manifest.dependencies {
            if requirement.scope == DependencyScope::Dev {
                continue;
            }
            let record = self
                .shared
                .store
                .get_plugin(&self.tenant.id, dependency)
                .await?;
            let Some(record) = record else {
                if requirement.optional {
                    continue;
                }
                return Err(EngineError::Dependencies {
                    id: manifest.plugin.id.clone(),
                    explanation: format!(
                        "{} {} needs {dependency} {}, which is not installed",
                        manifest.plugin.id, manifest.plugin.version, requirement.version
                    ),
                });
            };
            if !requirement.version.matches(&record.version) {
                if requirement.optional {
                    continue;
                }
                return Err(EngineError::Dependencies {
                    id: manifest.plugin.id.clone(),
                    explanation: format!(
                        "{} {} needs {dependency} {}, but {} is installed",
                        manifest.plugin.id,
                        manifest.plugin.version,
                        requirement.version,
                        record.version
                    ),
                });
            }
            if record.state == PluginState::Active {
                continue;
            }
            match Box::pin(self.enable_locked(dependency, visiting)).await {
                Ok(_) => {}
                Err(error) if requirement.optional => {
                    tracing::info!(
                        plugin = %manifest.plugin.id,
                        "optional dependency {dependency} not enabled: {error}"
                    );
                }
                Err(error) => {
                    return Err(EngineError::Dependencies {
                        id: manifest.plugin.id.clone(),
                        explanation: format!(
                            "its dependency {dependency} cannot be enabled: {error}"
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// The active plugins that need `id` (a non-optional runtime or peer
    /// dependency).
    async fn active_dependents(&self, id: &PluginId) -> Result<Vec<PluginRecord>> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .filter(|r| lifecycle::is_running(r.state))
            .filter(|r| {
                r.manifest
                    .dependencies
                    .get(id)
                    .is_some_and(|d| !d.optional && d.scope != DependencyScope::Dev)
            })
            .collect())
    }

    /// Disables (deactivates) a plugin. Refused while active plugins depend
    /// on it, unless cascaded. A plugin in `error` is parked as `disabled`.
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
        lifecycle::next(record.state, Action::Deactivate).map_err(|transition| {
            EngineError::InvalidTransition {
                id: id.clone(),
                transition,
            }
        })?;
        let dependents = self.active_dependents(id).await?;
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
        let record = self
            .transition(&record, Action::Deactivate, "disabled by operator", |u| {
                u.with_enabled(false)
            })
            .await?;
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
        if lifecycle::next(record.state, Action::AutoDisable).is_err() {
            return Ok(());
        }
        activate::stop_local(&self.shared, &self.tenant, id).await;
        self.transition(&record, Action::AutoDisable, reason, |u| {
            u.with_enabled(false)
                .with_last_error(Some(LastError::new("crash_loop", reason)))
        })
        .await?;
        self.announce("plugin.auto_disabled", id, json!({ "reason": reason }));
        Ok(())
    }

    /// Uninstalls a plugin that is not active. Its versions and modules are
    /// deleted; its config, KV, grants, events and data files only with
    /// `purge_data`.
    pub async fn uninstall(
        &self,
        id: &PluginId,
        options: UninstallOptions,
    ) -> Result<tenon_registry::DeleteReport> {
        let _ops = self.tenant.ops.lock().await;
        let record = self.record(id).await?;
        lifecycle::next(record.state, Action::Uninstall).map_err(|transition| {
            EngineError::InvalidTransition {
                id: id.clone(),
                transition,
            }
        })?;
        let dependents: Vec<String> = self
            .list()
            .await?
            .into_iter()
            .filter(|r| {
                r.manifest
                    .dependencies
                    .get(id)
                    .is_some_and(|d| !d.optional && d.scope == DependencyScope::Runtime)
            })
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
        let record = self
            .transition(&record, Action::Uninstall, "uninstalled by operator", |u| {
                u.with_enabled(false)
            })
            .await?;
        activate::stop_local(&self.shared, &self.tenant, id).await;
        let all = options.purge_data;
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
                },
            )
            .await?;
        self.shared
            .store
            .delete_unused_artifacts(&self.tenant.id)
            .await?;
        if all || options.purge_files {
            let dir = self.paths().plugin_data(self.tenant.id.as_str(), id);
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
            json!({ "purged": options.purge_data }),
        );
        Ok(report)
    }

    /// Installs another version of an installed plugin and makes it current,
    /// keeping the previous one for [`rollback`](Self::rollback). An active
    /// plugin is swapped without a gap: the new version is loaded and
    /// started beside the old one (with its in-memory state carried over
    /// when it exports snapshot/restore), and if it fails the old one keeps
    /// running.
    pub async fn upgrade(&self, source: impl Into<InstallSource>) -> Result<UpgradeReport> {
        let source = source.into();
        let _ops = self.tenant.ops.lock().await;
        let candidate = self.read_source(&source).await?;
        let id = candidate.manifest.plugin.id.clone();
        let record = self.record(&id).await?;
        let version = candidate.manifest.plugin.version.clone();
        if version == record.version {
            return Err(EngineError::Version {
                id,
                message: format!("version {version} is already current"),
            });
        }
        self.check_runtime(&candidate.manifest)?;
        self.check_dependencies(&candidate.manifest).await?;
        let artifact = match &candidate.module {
            Some(bytes) => Some(
                self.shared
                    .store
                    .put_artifact(&self.tenant.id, bytes)
                    .await?
                    .sha256,
            ),
            None => None,
        };
        let exists = self
            .shared
            .store
            .get_version(&self.tenant.id, &id, &version)
            .await?
            .is_some();
        if !exists {
            self.shared
                .store
                .add_version(
                    &self.tenant.id,
                    &id,
                    &NewVersion {
                        manifest: candidate.manifest.clone(),
                        artifact,
                    },
                )
                .await?;
        }
        if self
            .shared
            .grant_policy
            .trusts(&candidate.manifest, record.source.kind)
        {
            self.put_grant(
                &candidate.manifest,
                &candidate.manifest.permissions,
                "policy",
            )
            .await?;
        }
        self.switch_version(record, &version, "upgraded").await
    }

    /// Makes an earlier version current again (the newest one below the
    /// current, unless `to` names one), swapping running code like an
    /// upgrade.
    pub async fn rollback(&self, id: &PluginId, to: Option<&Version>) -> Result<UpgradeReport> {
        let _ops = self.tenant.ops.lock().await;
        let record = self.record(id).await?;
        let versions = self.shared.store.list_versions(&self.tenant.id, id).await?;
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
        self.switch_version(record, &target, "rolled back").await
    }

    /// Points the plugin at `version`, swapping running code when active.
    async fn switch_version(
        &self,
        record: PluginRecord,
        version: &Version,
        why: &str,
    ) -> Result<UpgradeReport> {
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
        let from = record.version.clone();
        let active = record.state == PluginState::Active;
        let mut swapped = false;
        let mut state_carried = false;
        if active {
            let granted = activate::granted_for(
                &self.shared,
                &self.tenant,
                &target.manifest,
                record.source.kind,
            )
            .await?;
            let missing = grants::missing(&target.manifest.permissions, &granted);
            if !missing.is_empty() {
                return Err(EngineError::NotGranted {
                    id: id.clone(),
                    version: version.clone(),
                    missing,
                });
            }
            let values = activate::stored_config(&self.shared, &self.tenant, &id).await?;
            let config = activate::resolve_config(&id, &target.manifest.config, &values)?;
            let spec = LoadSpec {
                permissions: grants::effective(&target.manifest.permissions, &granted),
                manifest: Arc::new(target.manifest.clone()),
                artifact: target.artifact,
                config,
            };
            state_carried = self.swap_running(&id, spec).await?;
            swapped = true;
        }
        let record = self
            .shared
            .store
            .set_current_version(&self.tenant.id, &id, version, record.row_version)
            .await?;
        let topic = if why == "rolled back" {
            "plugin.rolled_back"
        } else {
            "plugin.upgraded"
        };
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
        })
    }

    /// Loads `spec` beside the running version and swaps it in; the old
    /// version keeps running if the new one fails. Returns whether in-memory
    /// state was carried over.
    pub(crate) async fn swap_running(&self, id: &PluginId, spec: LoadSpec) -> Result<bool> {
        let Some(running) = self.tenant.running(id) else {
            activate::start_local(&self.shared, &self.tenant, spec).await?;
            return Ok(false);
        };
        let old_config = self.tenant.configs.read().get(id).cloned();
        let loaded = match activate::load_version(&self.shared, &self.tenant, &spec).await {
            Ok(loaded) => loaded,
            Err(source) => {
                if let Some(config) = old_config {
                    self.tenant.configs.write().insert(id.clone(), config);
                }
                self.shared.telemetry.record_failure(
                    self.tenant.id.as_str(),
                    id.as_str(),
                    activate::failure_of(&source),
                );
                return Err(EngineError::Plugin {
                    id: id.clone(),
                    source,
                });
            }
        };
        let mut carried = false;
        if let Some(old) = running.slot.current() {
            match old.plugin.snapshot().await {
                Ok(Some(state)) => match loaded.plugin.restore(&state).await {
                    Ok(()) => carried = true,
                    Err(error) => tracing::warn!(plugin = %id, "restoring state failed: {error}"),
                },
                Ok(None) => {}
                Err(error) => tracing::warn!(plugin = %id, "snapshot failed: {error}"),
            }
        }
        let hooks_changed = running.slot.current().is_none_or(|old| {
            old.manifest.hooks != loaded.manifest.hooks
                || old.manifest.commands != loaded.manifest.commands
        });
        let manifest = loaded.manifest.clone();
        let old = running.slot.swap(loaded);
        if hooks_changed {
            activate::register(&self.shared, &self.tenant, running.slot.clone(), &manifest)?;
        }
        if let Some(old) = old
            && let Err(error) = old.plugin.stop().await
        {
            tracing::warn!(plugin = %id, "stopping the previous version failed: {error}");
        }
        Ok(carried)
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

fn redact(values: &BTreeMap<String, ConfigValue>) -> BTreeMap<String, Value> {
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
