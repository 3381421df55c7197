//! Bringing a plugin's code up and down in this engine: load through its
//! runtime, start with its config, register its hooks, commands and event
//! subscriptions — and the reverse. Recording the lifecycle in the registry
//! is the caller's job (`ops`); fleets use these alone to follow changes
//! made elsewhere.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tenon_hooks::{
    Backoff as HookBackoff, BusItem, ErrorKind, FailPolicy, HandlerError, HandlerOptions, HookSpec,
    Priority,
};
use tenon_manifest::{
    BackoffKind, ConfigSpec, FailPolicy as ManifestFailPolicy, Manifest, Permissions, PluginId,
    ResolvedConfig,
};
use tenon_metrics::{Failure, FailureKind};
use tenon_registry::{
    ConfigValue, EventKind, EventStatus, NewEvent, PluginRecord, RegistryError, Sha256Digest,
    TenantId,
};
use tenon_sandbox::{CallOptions, Caller, LoadRequest, ProcessFailure, SandboxError};

use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::grants;
use crate::slot::{Loaded, Loader, PluginSlot, SlotCommand, SlotHandler};
use crate::tenant::{Running, TenantState};

/// The exported function subscribed bus events are delivered to, with
/// `{"topic", "source", "payload"}` JSON.
pub const EVENT_FUNCTION: &str = "on-event";

/// The kind of a sandbox error, the one fault classification of hooks and
/// direct calls: [`ErrorKind::Unavailable`] for errors that are not the
/// plugin's doing (a function it does not export, a busy pool, a stopped
/// plugin, input the caller got wrong), which say nothing about its health.
pub(crate) fn error_kind(error: &SandboxError) -> ErrorKind {
    match error {
        SandboxError::Timeout { .. } => ErrorKind::Timeout,
        SandboxError::Trap { .. } | SandboxError::OutOfMemory { .. } => ErrorKind::Trap,
        // A process plugin's process that died mid-call crashed, like a
        // trap; one that could not start failed to load.
        SandboxError::Process {
            cause: ProcessFailure::Exited,
            ..
        } => ErrorKind::Trap,
        SandboxError::Process { .. } => ErrorKind::Load,
        SandboxError::Compile { .. }
        | SandboxError::Incompatible { .. }
        | SandboxError::Unsupported { .. }
        | SandboxError::Filesystem { .. }
        | SandboxError::Host { .. } => ErrorKind::Load,
        SandboxError::MissingExport { .. }
        | SandboxError::Busy { .. }
        | SandboxError::InstanceCap { .. }
        | SandboxError::NotRunning { .. } => ErrorKind::Unavailable,
        SandboxError::Plugin { code, .. }
            if matches!(code.as_str(), "unknown-function" | "invalid-input") =>
        {
            ErrorKind::Unavailable
        }
        SandboxError::Protocol { .. } | SandboxError::OutputTooLarge { .. } => {
            ErrorKind::InvalidOutput
        }
        _ => ErrorKind::Handler,
    }
}

/// A sandbox error as a handler error, keeping its kind.
pub(crate) fn handler_error(error: &SandboxError) -> HandlerError {
    HandlerError::new(error.to_string()).with_kind(error_kind(error))
}

/// The crash guard's view of a sandbox error met outside a call (loading,
/// starting); `None` when it is not the plugin's doing.
pub(crate) fn failure_of(error: &SandboxError) -> Option<Failure> {
    let kind = FailureKind::of(error_kind(error))?;
    Some(Failure::new(kind, error.code(), error.to_string()))
}

/// A plugin's config as stored, secrets revealed, as plain JSON values.
/// Without a secret key, a config holding no secret reads fine; one holding
/// secrets is an error that says a key is needed (a plugin never runs
/// without its secrets).
pub(crate) async fn stored_config(
    shared: &Shared,
    tenant: &TenantState,
    id: &PluginId,
) -> Result<Map<String, Value>> {
    let config = match shared.store.get_config_revealed(&tenant.id, id).await {
        Ok(config) => config,
        Err(missing @ RegistryError::SecretKeyMissing { .. }) => {
            let config = shared.store.get_config(&tenant.id, id).await?;
            if config.values.values().any(ConfigValue::is_secret) {
                return Err(missing.into());
            }
            config
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
/// checked against its manifest. Problems with secret values are reported
/// without the values.
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
                diagnostics: crate::ops::redact_diagnostics(spec, diagnostics),
            }
        } else {
            EngineError::MissingConfig {
                id: id.clone(),
                keys: missing,
            }
        }
    })
}

/// The permissions granted to a plugin: everything declared when the grant
/// policy trusts it, otherwise the grant for its version, or its most recent
/// grant (an operator's grant covers later versions that ask for no more).
pub(crate) async fn granted_for(
    shared: &Shared,
    tenant: &TenantState,
    manifest: &Manifest,
    source: tenon_registry::SourceKind,
) -> Result<Permissions> {
    // Trusted publishers got a stored grant when their signature proved
    // them; only the host's own sources are trusted here.
    if shared.grant_policy.trusted_sources.contains(&source) {
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

/// What loading one version of a plugin needs.
#[derive(Clone)]
pub(crate) struct LoadSpec {
    pub(crate) manifest: Arc<Manifest>,
    /// The module in the registry, or the bytes themselves (a hot reload of
    /// a module the registry does not keep).
    pub(crate) module: Module,
    pub(crate) permissions: Permissions,
    pub(crate) config: ResolvedConfig,
}

/// Where a module's bytes are.
#[derive(Clone)]
pub(crate) enum Module {
    /// In the registry, by sha256.
    Stored(Option<Sha256Digest>),
    /// In memory.
    Bytes(Arc<[u8]>),
}

impl LoadSpec {
    /// The spec of `manifest` for this tenant: its grant, its stored config.
    /// Fails when its permissions are not granted (naming `operation`) or
    /// its required config is missing.
    pub(crate) async fn build(
        shared: &Shared,
        tenant: &TenantState,
        manifest: &Manifest,
        source: tenon_registry::SourceKind,
        module: Module,
        operation: &'static str,
    ) -> Result<Self> {
        let granted = granted_for(shared, tenant, manifest, source).await?;
        let missing = grants::missing_to_run(&manifest.permissions, &granted);
        if !missing.is_empty() {
            return Err(EngineError::NotGranted {
                operation,
                id: manifest.plugin.id.clone(),
                version: manifest.plugin.version.clone(),
                missing,
            });
        }
        let values = stored_config(shared, tenant, &manifest.plugin.id).await?;
        let config = resolve_config(
            &manifest.plugin.id,
            &shared.config_spec(&manifest.config),
            &values,
        )?;
        Ok(Self {
            permissions: grants::effective(&manifest.permissions, &granted),
            manifest: Arc::new(manifest.clone()),
            module,
            config,
        })
    }

    /// The spec of a plugin's current version as the registry has it.
    pub(crate) async fn current(
        shared: &Shared,
        tenant: &TenantState,
        record: &PluginRecord,
        operation: &'static str,
    ) -> Result<Self> {
        Self::build(
            shared,
            tenant,
            &record.manifest,
            record.source.kind,
            Module::Stored(record.artifact),
            operation,
        )
        .await
    }
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
    let module: Arc<[u8]> = match &spec.module {
        Module::Bytes(bytes) => bytes.clone(),
        Module::Stored(Some(sha256)) => shared
            .store
            .get_artifact(&tenant.id, sha256)
            .await
            .map_err(|e| host_failure(format!("reading its module from the registry: {e}")))?
            .ok_or_else(|| host_failure(format!("its module {sha256} is not in the registry")))?
            .into(),
        Module::Stored(None) => Arc::from(Vec::new()),
    };
    // The sandbox creates the granted directories beneath the data
    // directory itself, through a handle, never following a symlink.
    let data_dir = (!spec.permissions.filesystem.is_empty())
        .then(|| shared.paths.plugin_data(tenant.id.as_str(), id))
        .transpose()
        .map_err(|e| host_failure(e.to_string()))?;
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

/// Starts a loaded plugin with `config`; the config is published to the
/// host API first, so the plugin may read it while it activates.
pub(crate) async fn start_plugin(
    tenant: &TenantState,
    spec: &LoadSpec,
    config: Arc<ResolvedConfig>,
    plugin: Arc<dyn tenon_sandbox::Plugin>,
) -> Result<Loaded, SandboxError> {
    let manifest = &spec.manifest;
    let previous = tenant
        .configs
        .write()
        .insert(manifest.plugin.id.clone(), config.clone());
    if let Err(error) = plugin.start(&Value::Object(config.without_secrets())).await {
        let mut configs = tenant.configs.write();
        match previous {
            Some(previous) => configs.insert(manifest.plugin.id.clone(), previous),
            None => configs.remove(&manifest.plugin.id),
        };
        return Err(error);
    }
    Ok(Loaded {
        manifest: manifest.clone(),
        permissions: spec.permissions.clone(),
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
    start_plugin(tenant, spec, Arc::new(spec.config.clone()), plugin).await
}

/// How a plugin's handler is registered: the power over the hook it asks
/// for, only as far as it is granted (`permissions.hooks`, in the effective
/// `permissions`) and the host's `spec` allows. A handler that fails closed
/// without the grant, or on a hook whose spec does not allow it, runs
/// fail-open; a priority above the host's `threshold` is cut to what was
/// granted (at least the threshold), and every priority to the spec's
/// `max_priority`. A plugin runs without these grants
/// ([`grants::missing_to_run`]): ungranted, it simply has no power over the
/// hook.
fn handler_options(
    hook: &tenon_manifest::HookDecl,
    spec: &HookSpec,
    permissions: &Permissions,
    threshold: i32,
) -> HandlerOptions {
    let power = permissions.hooks.as_ref();
    let fail_closed = hook.fail_policy == ManifestFailPolicy::Closed
        && spec.allow_fail_closed
        && power.is_some_and(|p| p.fail_closed.contains(&hook.name));
    let mut priority = hook.priority.0;
    if priority > threshold {
        let granted = power
            .and_then(|p| p.priority.get(&hook.name))
            .copied()
            .unwrap_or(threshold);
        priority = priority.min(granted.max(threshold));
    }
    if let Some(max) = spec.max_priority {
        priority = priority.min(max);
    }
    let mut options = HandlerOptions::new()
        .with_priority(Priority(priority))
        .with_fail_policy(if fail_closed {
            FailPolicy::Closed
        } else {
            FailPolicy::Open
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
    options
}

/// Registers a slot's hooks, commands and event subscriptions (from the
/// manifest of the version it runs) and records it as running, retiring
/// whatever the plugin had registered before.
pub(crate) fn register(
    shared: &Arc<Shared>,
    tenant: &Arc<TenantState>,
    slot: Arc<PluginSlot>,
    manifest: &Manifest,
    permissions: &Permissions,
) -> Result<()> {
    let id = &manifest.plugin.id;
    tenant.retire(id);
    let mut handlers = Vec::new();
    for hook in &manifest.hooks {
        let Ok(spec) = tenant.hooks.spec(&hook.name) else {
            tracing::warn!(
                plugin = %id,
                hook = %hook.name,
                "the plugin handles hook `{}`, which this host does not declare; ignored",
                hook.name
            );
            continue;
        };
        let handler = Arc::new(SlotHandler {
            slot: slot.clone(),
            timeout: hook.timeout.map_or(spec.default_timeout, |t| t.get()),
        });
        let options = handler_options(
            hook,
            &spec,
            permissions,
            shared.profile.hook_priority_threshold,
        );
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
    let subscriptions = subscribe(shared, tenant, &slot, permissions);
    tenant.running.write().insert(
        id.clone(),
        Arc::new(Running {
            slot,
            endpoints: manifest.endpoints.clone().into(),
            handlers,
            commands,
            subscriptions,
        }),
    );
    Ok(())
}

/// Delivers the tenant's bus events matching the topics the plugin may
/// subscribe to (granted `permissions.events.subscribe`) to its
/// [`EVENT_FUNCTION`] export, one at a time, in order. A plugin activated on
/// first use (`activation.on_events`) starts with its first event. Events it
/// published itself are not echoed back. An event that cannot be delivered
/// is recorded (an `error` event naming the topic) and counted like a
/// failed call of [`EVENT_FUNCTION`], by the crash guard too when the
/// plugin is at fault; events missed because the plugin is too slow are
/// recorded as well.
fn subscribe(
    shared: &Arc<Shared>,
    tenant: &Arc<TenantState>,
    slot: &Arc<PluginSlot>,
    permissions: &Permissions,
) -> Vec<tokio::task::JoinHandle<()>> {
    let Some(events) = &permissions.events else {
        return Vec::new();
    };
    let id = slot.id.clone();
    events
        .subscribe
        .iter()
        .filter_map(|pattern| match tenant.bus.subscribe(pattern) {
            Ok(subscription) => Some(subscription),
            Err(error) => {
                tracing::warn!(plugin = %id, "cannot subscribe to `{pattern}`: {error}");
                None
            }
        })
        .map(|mut subscription| {
            let slot = Arc::downgrade(slot);
            let shared = Arc::downgrade(shared);
            let tenant = tenant.id.clone();
            let id = id.clone();
            tokio::spawn(async move {
                while let Some(item) = subscription.recv().await {
                    let Some(slot) = slot.upgrade() else { return };
                    let event = match item {
                        BusItem::Event(event) => event,
                        BusItem::Lagged(missed) => {
                            tracing::warn!(plugin = %id, "missed {missed} events: it is too slow");
                            if let Some(shared) = shared.upgrade() {
                                delivery_failed(
                                    &shared,
                                    &tenant,
                                    &id,
                                    json!({ "operation": "deliver", "missed": missed, "error": format!("missed {missed} events: it is too slow") }),
                                );
                            }
                            continue;
                        }
                    };
                    if event.source.as_deref() == Some(id.as_str()) {
                        continue;
                    }
                    let input = json!({
                        "topic": event.topic,
                        "source": event.source,
                        "payload": event.payload,
                    })
                    .to_string();
                    let started = tokio::time::Instant::now();
                    let delivered = match slot.plugin().await {
                        Ok(plugin) => {
                            // What it publishes while handling the event
                            // continues the event's chain.
                            let options = CallOptions {
                                cause: event.caused(),
                                ..CallOptions::default()
                            };
                            plugin
                                .call(EVENT_FUNCTION, input.as_bytes(), options)
                                .await
                        }
                        Err(error) => Err(error),
                    };
                    let Some(shared) = shared.upgrade() else { return };
                    let error = delivered.as_ref().err().map(handler_error);
                    shared.telemetry.record_call(
                        tenant.as_str(),
                        id.as_str(),
                        EVENT_FUNCTION,
                        started.elapsed(),
                        error.as_ref(),
                    );
                    if let Some(error) = error {
                        tracing::warn!(plugin = %id, topic = %event.topic, "event not delivered: {}", crate::host::loggable(&error));
                        delivery_failed(
                            &shared,
                            &tenant,
                            &id,
                            json!({
                                "operation": "deliver",
                                "topic": event.topic,
                                "error": error.message(),
                                "error_kind": error.kind(),
                            }),
                        );
                    }
                }
            })
        })
        .collect()
}

/// Records a bus event that did not reach a plugin.
fn delivery_failed(shared: &Shared, tenant: &TenantId, id: &PluginId, detail: Value) {
    shared.writer.record(
        NewEvent::new(tenant.clone(), EventKind::Error, EventStatus::Error)
            .with_plugin(id.clone())
            .with_detail(detail),
    );
}

/// How long a stop waits for calls in flight.
pub(crate) fn drain_limit(manifest: &Manifest) -> Duration {
    manifest.limits.timeout.get() + Duration::from_secs(1)
}

/// Loads, starts and registers a plugin. A plugin activated on first use
/// (`activation` naming hooks, commands or events, without `on_startup`) is
/// loaded — compiled — now, so that its first use does not pay for
/// compilation, and started when that use comes, with the config current
/// then.
pub(crate) async fn start_local(
    shared: &Arc<Shared>,
    tenant: &Arc<TenantState>,
    spec: LoadSpec,
) -> Result<()> {
    let id = spec.manifest.plugin.id.clone();
    let manifest = spec.manifest.clone();
    let permissions = spec.permissions.clone();
    let failed = |source: SandboxError| {
        if let Some(failure) = failure_of(&source) {
            shared
                .telemetry
                .record_failure(tenant.id.as_str(), id.as_str(), failure);
        }
        EngineError::Plugin {
            id: id.clone(),
            source,
        }
    };
    let slot = if manifest.activation.is_lazy() {
        let plugin = load_plugin(shared, tenant, &spec).await.map_err(failed)?;
        tenant
            .configs
            .write()
            .insert(id.clone(), Arc::new(spec.config.clone()));
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
    if let Err(error) = register(shared, tenant, slot.clone(), &manifest, &permissions) {
        if let Some(loaded) = slot.take() {
            loaded.drain_and_stop(Duration::ZERO).await;
        }
        tenant.configs.write().remove(&id);
        return Err(error);
    }
    crate::observe::seed_guard(shared, tenant, &id).await;
    Ok(())
}

/// Unregisters and stops a plugin running in this engine (if it is), after
/// the calls in flight finish.
pub(crate) async fn stop_local(shared: &Shared, tenant: &TenantState, id: &PluginId) {
    let Some(running) = tenant.unregister(id) else {
        return;
    };
    if let Some(loaded) = running.slot.take() {
        loaded.drain_and_stop(drain_limit(&loaded.manifest)).await;
        shared
            .telemetry
            .plugin_stopped(tenant.id.as_str(), id.as_str());
    }
}

/// Starts a plugin activated on first use, when that use comes, with the
/// config current then (a config change before the first use is not lost).
struct LazyStart {
    shared: std::sync::Weak<Shared>,
    tenant: std::sync::Weak<TenantState>,
    spec: LoadSpec,
    plugin: Arc<dyn tenon_sandbox::Plugin>,
}

impl Loader for LazyStart {
    fn load(&self) -> tenon_hooks::BoxFuture<'_, Result<Loaded, SandboxError>> {
        Box::pin(async move {
            let id = &self.spec.manifest.plugin.id;
            let (Some(shared), Some(tenant)) = (self.shared.upgrade(), self.tenant.upgrade())
            else {
                return Err(SandboxError::NotRunning {
                    plugin: id.to_string(),
                });
            };
            let config = tenant
                .config(id)
                .unwrap_or_else(|| Arc::new(self.spec.config.clone()));
            let started = start_plugin(&tenant, &self.spec, config, self.plugin.clone()).await;
            match &started {
                Ok(_) => shared
                    .telemetry
                    .plugin_started(tenant.id.as_str(), id.as_str()),
                Err(error) => {
                    if let Some(failure) = failure_of(error) {
                        shared
                            .telemetry
                            .record_failure(tenant.id.as_str(), id.as_str(), failure);
                    }
                }
            }
            started
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tenon_hooks::ErrorKind;
    use tenon_sandbox::{SandboxError, TrapKind};

    use super::{error_kind, failure_of};

    #[test]
    fn one_fault_classification_for_hooks_and_calls() {
        let p = || "a/x".to_owned();
        let cases = [
            (
                SandboxError::Busy {
                    plugin: p(),
                    waited: Duration::from_secs(1),
                    max_instances: 1,
                },
                ErrorKind::Unavailable,
            ),
            (
                SandboxError::NotRunning { plugin: p() },
                ErrorKind::Unavailable,
            ),
            // Another tenant's pressure says nothing of this plugin's health.
            (
                SandboxError::InstanceCap {
                    plugin: p(),
                    cap: "the runtime is at its cap of 2 live instances".to_owned(),
                    setting: "pool_instances",
                },
                ErrorKind::Unavailable,
            ),
            (
                SandboxError::MissingExport {
                    plugin: p(),
                    export: "f".into(),
                },
                ErrorKind::Unavailable,
            ),
            (
                SandboxError::Plugin {
                    plugin: p(),
                    code: "unknown-function".into(),
                    message: String::new(),
                },
                ErrorKind::Unavailable,
            ),
            (
                SandboxError::Plugin {
                    plugin: p(),
                    code: "deliberate".into(),
                    message: String::new(),
                },
                ErrorKind::Handler,
            ),
            (
                SandboxError::Trap {
                    plugin: p(),
                    kind: TrapKind::Unreachable,
                    message: String::new(),
                },
                ErrorKind::Trap,
            ),
            (
                SandboxError::OutOfMemory {
                    plugin: p(),
                    limit: 1,
                },
                ErrorKind::Trap,
            ),
            (
                SandboxError::Timeout {
                    plugin: p(),
                    after: Duration::from_secs(1),
                },
                ErrorKind::Timeout,
            ),
            (
                SandboxError::Compile {
                    plugin: p(),
                    message: String::new(),
                },
                ErrorKind::Load,
            ),
            (
                SandboxError::Protocol {
                    plugin: p(),
                    message: String::new(),
                },
                ErrorKind::InvalidOutput,
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(error_kind(&error), kind, "{error}");
            assert_eq!(
                failure_of(&error).is_none(),
                kind == ErrorKind::Unavailable,
                "{error}"
            );
        }
    }
}
