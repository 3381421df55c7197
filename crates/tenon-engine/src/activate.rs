//! Bringing a plugin's code up and down in this engine: load through its
//! runtime, start with its config, register its hooks and commands — and
//! the reverse. Recording the lifecycle in the registry is the caller's job
//! (`ops`); fleets use these alone to follow changes made elsewhere.

use std::sync::Arc;

use serde_json::{Map, Value};
use tenon_hooks::{Backoff as HookBackoff, FailPolicy, HandlerOptions, Priority};
use tenon_manifest::{
    BackoffKind, ConfigSpec, FailPolicy as ManifestFailPolicy, Manifest, Permissions, PluginId,
    ResolvedConfig,
};
use tenon_metrics::{Failure, FailureKind};
use tenon_registry::{ConfigValue, PluginRecord, RegistryError, Sha256Digest};
use tenon_sandbox::{Caller, LoadRequest, SandboxError};

use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::grants;
use crate::slot::{Loaded, Loader, PluginSlot, SlotCommand, SlotHandler};
use crate::tenant::{Running, TenantState};

/// The crash guard's view of a sandbox error.
pub(crate) fn failure_of(error: &SandboxError) -> Failure {
    let kind = match error {
        SandboxError::Timeout { .. } => FailureKind::Timeout,
        SandboxError::Trap { .. } | SandboxError::OutOfMemory { .. } => FailureKind::Trap,
        SandboxError::Compile { .. }
        | SandboxError::Incompatible { .. }
        | SandboxError::MissingExport { .. }
        | SandboxError::Unsupported { .. }
        | SandboxError::Host { .. } => FailureKind::Load,
        _ => FailureKind::HandlerError,
    };
    Failure::new(kind, error.code(), error.to_string())
}

/// A plugin's config as stored, secrets revealed when the engine has the
/// key, as plain JSON values.
pub(crate) async fn stored_config(
    shared: &Shared,
    tenant: &TenantState,
    id: &PluginId,
) -> Result<Map<String, Value>> {
    let config = match shared.store.get_config_revealed(&tenant.id, id).await {
        Ok(config) => config,
        Err(RegistryError::SecretKeyMissing { .. }) => {
            shared.store.get_config(&tenant.id, id).await?
        }
        Err(other) => return Err(other.into()),
    };
    Ok(config
        .values
        .into_iter()
        .filter_map(|(key, value)| {
            let value = match value {
                ConfigValue::Plain(v) => v,
                ConfigValue::Secret(secret) => secret.expose()?.clone(),
            };
            Some((key, value))
        })
        .collect())
}

/// The config a plugin starts with: stored values with defaults applied,
/// checked against its manifest.
pub(crate) fn resolve_config(
    id: &PluginId,
    spec: &ConfigSpec,
    values: &Map<String, Value>,
) -> Result<ResolvedConfig> {
    spec.validate(values).map_err(|diagnostics| {
        let missing = spec.missing_required(values);
        if missing.is_empty() {
            EngineError::InvalidConfig {
                id: id.clone(),
                diagnostics,
            }
        } else {
            EngineError::MissingConfig {
                id: id.clone(),
                keys: missing,
            }
        }
    })
}

/// What loading one version of a plugin needs.
#[derive(Clone)]
pub(crate) struct LoadSpec {
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) artifact: Option<Sha256Digest>,
    pub(crate) permissions: Permissions,
    pub(crate) config: ResolvedConfig,
}

impl LoadSpec {
    /// The spec of a plugin's current version as the registry has it.
    pub(crate) async fn current(
        shared: &Shared,
        tenant: &TenantState,
        record: &PluginRecord,
    ) -> Result<Self> {
        let manifest = record.manifest.clone();
        let granted = granted_for(shared, tenant, &manifest, record.source.kind).await?;
        let values = stored_config(shared, tenant, &record.id).await?;
        let config = resolve_config(&record.id, &manifest.config, &values)?;
        Ok(Self {
            permissions: grants::effective(&manifest.permissions, &granted),
            manifest: Arc::new(manifest),
            artifact: record.artifact,
            config,
        })
    }
}

/// The permissions granted to a plugin: everything declared when the grant
/// policy trusts it, otherwise its most recent grant (an operator's grant
/// covers later versions that ask for no more).
pub(crate) async fn granted_for(
    shared: &Shared,
    tenant: &TenantState,
    manifest: &Manifest,
    source: tenon_registry::SourceKind,
) -> Result<Permissions> {
    if shared.grant_policy.trusts(manifest, source) {
        return Ok(manifest.permissions.clone());
    }
    let grants = shared
        .store
        .list_grants(&tenant.id, &manifest.plugin.id)
        .await?;
    let exact = grants.iter().find(|g| g.version == manifest.plugin.version);
    Ok(exact
        .or_else(|| grants.first())
        .map(|g| g.permissions.clone())
        .unwrap_or_default())
}

/// Loads (compiles, or fetches from the cache) one version, not started.
pub(crate) async fn load_plugin(
    shared: &Shared,
    tenant: &TenantState,
    spec: &LoadSpec,
) -> Result<Arc<dyn tenon_sandbox::Plugin>, SandboxError> {
    let manifest = &spec.manifest;
    let id = &manifest.plugin.id;
    let host_failure = |message: String| SandboxError::Host {
        plugin: id.to_string(),
        message,
    };
    let runtime =
        shared
            .runtimes
            .get(&manifest.runtime.kind)
            .ok_or_else(|| SandboxError::Unsupported {
                plugin: id.to_string(),
                message: format!(
                    "this host has no `{}` runtime",
                    manifest.runtime.kind.as_str()
                ),
            })?;
    let module: Arc<[u8]> = match &spec.artifact {
        Some(sha256) => shared
            .store
            .get_artifact(&tenant.id, sha256)
            .await
            .map_err(|e| host_failure(format!("reading its module from the registry: {e}")))?
            .ok_or_else(|| host_failure(format!("its module {sha256} is not in the registry")))?
            .into(),
        None => Arc::from(Vec::new()),
    };
    let data_dir = if spec.permissions.filesystem.is_empty() {
        None
    } else {
        let root = shared.paths.plugin_data(tenant.id.as_str(), id);
        for fs in &spec.permissions.filesystem {
            tokio::fs::create_dir_all(root.join(&fs.path))
                .await
                .map_err(|e| host_failure(format!("creating its data directory: {e}")))?;
        }
        Some(root)
    };
    let caller = Arc::new(Caller {
        plugin: id.clone(),
        version: manifest.plugin.version.clone(),
        tenant: tenant.id.as_str().to_owned(),
        permissions: Arc::new(spec.permissions.clone()),
    });
    runtime
        .load(LoadRequest {
            manifest: manifest.clone(),
            module,
            caller,
            host: shared.host.clone(),
            observer: shared.host.clone(),
            data_dir,
        })
        .await
}

/// Starts a loaded plugin with its config; the config is published to the
/// host API first, so the plugin may read it while it activates.
pub(crate) async fn start_plugin(
    tenant: &TenantState,
    spec: &LoadSpec,
    plugin: Arc<dyn tenon_sandbox::Plugin>,
) -> Result<Loaded, SandboxError> {
    let manifest = &spec.manifest;
    tenant.configs.write().insert(
        manifest.plugin.id.clone(),
        Arc::new(spec.config.values.clone()),
    );
    plugin
        .start(&Value::Object(spec.config.without_secrets()))
        .await?;
    Ok(Loaded {
        version: manifest.plugin.version.clone(),
        manifest: manifest.clone(),
        plugin,
    })
}

/// Loads and starts one version.
pub(crate) async fn load_version(
    shared: &Shared,
    tenant: &TenantState,
    spec: &LoadSpec,
) -> Result<Loaded, SandboxError> {
    let plugin = load_plugin(shared, tenant, spec).await?;
    start_plugin(tenant, spec, plugin).await
}

fn handler_options(shared: &Shared, hook: &tenon_manifest::HookDecl) -> HandlerOptions {
    let mut options = HandlerOptions::new()
        .with_priority(Priority(hook.priority.0))
        .with_fail_policy(match hook.fail_policy {
            ManifestFailPolicy::Open => FailPolicy::Open,
            ManifestFailPolicy::Closed => FailPolicy::Closed,
        });
    if let Some(timeout) = hook.timeout {
        options = options.with_timeout(timeout.get());
    }
    if hook.retries > 0 {
        let backoff = hook.backoff.as_ref().map(|b| match b.kind {
            BackoffKind::Linear => HookBackoff::linear(b.delay.get()),
            BackoffKind::Exponential => HookBackoff::exponential(b.delay.get()),
        });
        options = options.with_retries(hook.retries, backoff);
    }
    let _ = shared;
    options
}

/// Registers a slot's hooks and commands (from the manifest of the version
/// it runs) and records it as running.
pub(crate) fn register(
    shared: &Shared,
    tenant: &TenantState,
    slot: Arc<PluginSlot>,
    manifest: &Manifest,
) -> Result<()> {
    let id = &manifest.plugin.id;
    let mut handlers = Vec::new();
    for hook in &manifest.hooks {
        let Ok(spec) = tenant.hooks.spec(&hook.name) else {
            tracing::warn!(
                plugin = %id,
                hook = %hook.name,
                "the plugin handles a hook this host does not declare; ignored"
            );
            continue;
        };
        let options = handler_options(shared, hook);
        let timeout = hook.timeout.map_or(spec.default_timeout, |t| t.get());
        let handler = Arc::new(SlotHandler {
            slot: slot.clone(),
            timeout,
        });
        match tenant
            .hooks
            .register(id.as_str(), &hook.name, handler, options)
        {
            Ok(handler) => handlers.push(handler),
            Err(error) => {
                for handler in handlers {
                    tenant.hooks.unregister(handler);
                }
                return Err(error.into());
            }
        }
    }
    let mut commands = Vec::new();
    for command in &manifest.commands {
        let handler = Arc::new(SlotCommand {
            slot: slot.clone(),
            function: command
                .function
                .clone()
                .unwrap_or_else(|| command.name.clone()),
        });
        match tenant
            .commands
            .register(id.as_str(), &command.name, handler)
        {
            Ok(name) => commands.push(name),
            Err(error) => {
                tracing::warn!(plugin = %id, "command {} not registered: {error}", command.name)
            }
        }
    }
    let previous = tenant.running.write().insert(
        id.clone(),
        Arc::new(Running {
            slot,
            handlers,
            commands,
        }),
    );
    if let Some(previous) = previous {
        for handler in &previous.handlers {
            tenant.hooks.unregister(*handler);
        }
    }
    Ok(())
}

/// Loads, starts and registers a plugin. A plugin activated on first use
/// (`activation.on_hooks` without `on_startup`) is loaded — compiled — now,
/// so that its first hook does not pay for compilation, and started when
/// that hook arrives.
pub(crate) async fn start_local(
    shared: &Arc<Shared>,
    tenant: &Arc<TenantState>,
    spec: LoadSpec,
) -> Result<()> {
    let id = spec.manifest.plugin.id.clone();
    let manifest = spec.manifest.clone();
    let failed = |source: SandboxError| {
        shared
            .telemetry
            .record_failure(tenant.id.as_str(), id.as_str(), failure_of(&source));
        tenant.configs.write().remove(&id);
        EngineError::Plugin {
            id: id.clone(),
            source,
        }
    };
    let slot = if manifest.activation.is_lazy() {
        let plugin = load_plugin(shared, tenant, &spec).await.map_err(failed)?;
        Arc::new(PluginSlot::lazy(
            id.clone(),
            Box::new(LazyStart {
                shared: Arc::downgrade(shared),
                tenant: Arc::downgrade(tenant),
                spec,
                plugin,
            }),
        ))
    } else {
        let loaded = load_version(shared, tenant, &spec).await.map_err(failed)?;
        shared
            .telemetry
            .plugin_started(tenant.id.as_str(), id.as_str());
        Arc::new(PluginSlot::loaded(id.clone(), loaded))
    };
    if let Err(error) = register(shared, tenant, slot.clone(), &manifest) {
        if let Some(loaded) = slot.take() {
            let _ = loaded.plugin.stop().await;
        }
        return Err(error);
    }
    Ok(())
}

/// Unregisters and stops a plugin running in this engine (if it is).
pub(crate) async fn stop_local(shared: &Shared, tenant: &TenantState, id: &PluginId) {
    let Some(running) = tenant.unregister(id) else {
        return;
    };
    if let Some(loaded) = running.slot.take() {
        if let Err(error) = loaded.plugin.stop().await {
            tracing::warn!(plugin = %id, "stopping failed: {error}");
        }
        shared
            .telemetry
            .plugin_stopped(tenant.id.as_str(), id.as_str());
    }
}

/// Starts a plugin activated on first use, when that use comes.
struct LazyStart {
    shared: std::sync::Weak<Shared>,
    tenant: std::sync::Weak<TenantState>,
    spec: LoadSpec,
    plugin: Arc<dyn tenon_sandbox::Plugin>,
}

impl Loader for LazyStart {
    fn load(&self) -> tenon_hooks::BoxFuture<'_, Result<Loaded, SandboxError>> {
        Box::pin(async move {
            let id = self.spec.manifest.plugin.id.to_string();
            let (Some(shared), Some(tenant)) = (self.shared.upgrade(), self.tenant.upgrade())
            else {
                return Err(SandboxError::NotRunning { plugin: id });
            };
            let started = start_plugin(&tenant, &self.spec, self.plugin.clone()).await;
            match &started {
                Ok(_) => shared.telemetry.plugin_started(tenant.id.as_str(), &id),
                Err(error) => {
                    shared
                        .telemetry
                        .record_failure(tenant.id.as_str(), &id, failure_of(error));
                }
            }
            started
        })
    }
}
