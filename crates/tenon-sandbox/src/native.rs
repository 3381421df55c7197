//! The native runtime: trusted first-party plugins written in Rust and
//! linked into the host, behind the same [`Runtime`]/[`Plugin`] contract and
//! the same permission [`Boundary`] as WebAssembly plugins.
//!
//! A native plugin is not sandboxed: it runs in the host's process with the
//! host's authority. What the runtime still gives it is the same host API
//! (through [`NativeContext`], checked by the boundary like any plugin's
//! requests), the same deadlines on its async work, the same instance
//! limits and the same isolation modes; a panic becomes
//! [`SandboxError::Trap`] instead of unwinding into the host.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt;
use parking_lot::{Mutex, RwLock};
use tenon_manifest::{Isolation, RuntimeKind};
use tokio::sync::Semaphore;

use crate::boundary::{Boundary, CallScope};
use crate::config::SandboxConfig;
use crate::error::{SandboxError, TrapKind};
use crate::host::{Caller, HostError, HttpRequest, HttpResponse, LogLevel};
use crate::runtime::{
    CallOptions, EndpointRequest, EndpointResponse, Health, HookCall, HookContextData,
    HookResponse, LoadRequest, Plugin, ResourceStats, Runtime,
};
use crate::stats::HealthState;

/// An error a native plugin reports (the `plugin-error` of the WIT world).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct PluginError {
    /// A short machine-readable word, such as `invalid-config`.
    pub code: String,
    /// What went wrong, for the operator.
    pub message: String,
}

impl PluginError {
    /// An error with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl From<HostError> for PluginError {
    fn from(e: HostError) -> Self {
        let code = match &e {
            HostError::PermissionDenied(_) => "permission-denied",
            HostError::QuotaExceeded(_) => "quota-exceeded",
            HostError::Timeout(_) => "timeout",
            HostError::InvalidInput(_) => "invalid-input",
            HostError::Unavailable(_) => "unavailable",
        };
        Self::new(code, e.to_string())
    }
}

/// A trusted plugin, mirroring the `guest` interface of the WIT world.
///
/// One value serves every call of a plugin in `reuse` mode (calls may run
/// concurrently, up to `limits.max_instances`); in `fresh` mode the factory
/// makes a new value for every call, which is activated first.
#[async_trait]
pub trait NativePlugin: Send + Sync + 'static {
    /// Starts the plugin with its config (a JSON object without secrets).
    async fn activate(
        &self,
        cx: &NativeContext,
        config: &serde_json::Value,
    ) -> Result<(), PluginError>;

    /// Delivers a changed config; by default, activates again.
    async fn configure(
        &self,
        cx: &NativeContext,
        config: &serde_json::Value,
    ) -> Result<(), PluginError> {
        self.activate(cx, config).await
    }

    /// Stops the plugin.
    async fn deactivate(&self, _cx: &NativeContext) -> Result<(), PluginError> {
        Ok(())
    }

    /// Handles one hook; by default, continues without a patch.
    async fn handle_hook(
        &self,
        _cx: &NativeContext,
        _hook: &str,
        _context: &HookContextData,
        _data: &str,
    ) -> Result<HookResponse, PluginError> {
        Ok(HookResponse::Continue { patch: None })
    }

    /// Calls a named function; by default, every name is unknown.
    async fn call(
        &self,
        _cx: &NativeContext,
        function: &str,
        _input: &[u8],
    ) -> Result<Vec<u8>, PluginError> {
        Err(PluginError::new(
            "unknown-function",
            format!("no function `{function}`"),
        ))
    }

    /// Serves one request to one of its `[[endpoints]]` (the request's
    /// `function` names which); by default, it serves none.
    async fn handle_request(
        &self,
        _cx: &NativeContext,
        request: &EndpointRequest,
    ) -> Result<EndpointResponse, PluginError> {
        Err(PluginError::new(
            "unknown-function",
            format!("no endpoint function `{}`", request.function),
        ))
    }

    /// Exports in-memory state; by default, none.
    async fn snapshot(&self, _cx: &NativeContext) -> Result<Option<Vec<u8>>, PluginError> {
        Ok(None)
    }

    /// Imports state exported by [`NativePlugin::snapshot`].
    async fn restore(&self, _cx: &NativeContext, _state: &[u8]) -> Result<(), PluginError> {
        Err(PluginError::new(
            "unsupported",
            "this plugin keeps no state to restore",
        ))
    }
}

/// The host API as a native plugin sees it during one call: every request
/// goes through the same permission [`Boundary`] as a WebAssembly plugin's,
/// bounded by the call's deadline.
#[derive(Debug)]
pub struct NativeContext {
    boundary: Arc<Boundary>,
    scope: CallScope,
}

impl NativeContext {
    /// Who the plugin is.
    pub fn caller(&self) -> &Caller {
        self.boundary.caller()
    }

    /// Time left before the call's deadline.
    pub fn remaining(&self) -> Duration {
        self.scope.remaining()
    }

    /// Writes a log line.
    pub fn log(&self, level: LogLevel, message: &str, fields: &[(String, String)]) {
        self.boundary.log(&self.scope, level, message, fields);
    }

    /// Reads a config value (declared keys only; secrets only when granted).
    pub async fn config_get(&self, key: &str) -> Result<Option<serde_json::Value>, HostError> {
        self.boundary.config_get(&self.scope, key).await
    }

    /// Reads a KV value.
    pub async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.boundary.kv_get(&self.scope, key).await
    }

    /// Writes a KV value.
    pub async fn kv_set(&self, key: &str, value: &[u8]) -> Result<(), HostError> {
        self.boundary.kv_set(&self.scope, key, value).await
    }

    /// Deletes a KV value.
    pub async fn kv_delete(&self, key: &str) -> Result<(), HostError> {
        self.boundary.kv_delete(&self.scope, key).await
    }

    /// Lists KV keys starting with `prefix`.
    pub async fn kv_list(&self, prefix: &str) -> Result<Vec<String>, HostError> {
        self.boundary.kv_list(&self.scope, prefix).await
    }

    /// Sends an HTTP request to an allowlisted host.
    pub async fn http_send(&self, request: HttpRequest) -> Result<HttpResponse, HostError> {
        self.boundary.http_request(&self.scope, request).await
    }

    /// Calls `method` of the host service `service` (see
    /// [`crate::HostServices`]): the method's permission and input schema
    /// are checked first, and its answer against its output schema.
    pub async fn call_service(
        &self,
        service: &str,
        method: &str,
        input: serde_json::Value,
    ) -> Result<serde_json::Value, HostError> {
        self.boundary
            .call_service(&self.scope, service, method, input)
            .await
    }

    /// Publishes an event.
    pub async fn emit_event(
        &self,
        topic: &str,
        payload: &serde_json::Value,
    ) -> Result<(), HostError> {
        self.boundary.emit_event(&self.scope, topic, payload).await
    }
}

/// Makes a native plugin's value (once per load in `reuse` mode, once per
/// call in `fresh` mode).
pub type NativeFactory = Arc<dyn Fn() -> Arc<dyn NativePlugin> + Send + Sync>;

/// Runs native plugins registered by `runtime.entry` name.
#[derive(Clone, Default)]
pub struct NativeRuntime {
    entries: Arc<RwLock<HashMap<String, NativeFactory>>>,
    sandbox: Arc<SandboxConfig>,
}

impl std::fmt::Debug for NativeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeRuntime")
            .field("entries", &self.entries.read().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl NativeRuntime {
    /// A runtime with no entries, under the host policy `sandbox`.
    pub fn new(sandbox: SandboxConfig) -> Self {
        Self {
            entries: Arc::default(),
            sandbox: Arc::new(sandbox),
        }
    }

    /// Registers `factory` under `entry` (a manifest's `runtime.entry`),
    /// replacing any earlier one.
    pub fn register<F, P>(&self, entry: &str, factory: F)
    where
        F: Fn() -> P + Send + Sync + 'static,
        P: NativePlugin,
    {
        let factory: NativeFactory = Arc::new(move || Arc::new(factory()) as Arc<dyn NativePlugin>);
        self.entries.write().insert(entry.to_owned(), factory);
    }

    /// The registered entry names, sorted.
    pub fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = self.entries.read().keys().cloned().collect();
        names.sort();
        names
    }
}

#[async_trait]
impl Runtime for NativeRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Native
    }

    async fn load(&self, request: LoadRequest) -> Result<Arc<dyn Plugin>, SandboxError> {
        let manifest = &request.manifest;
        let plugin = manifest.plugin.id.as_str();
        if manifest.runtime.kind != RuntimeKind::Native {
            return Err(SandboxError::Unsupported {
                plugin: plugin.to_owned(),
                message: format!(
                    "its runtime.kind is `{}`; the native runtime runs `native` plugins",
                    manifest.runtime.kind
                ),
            });
        }
        let Some(entry) = manifest.runtime.entry.as_deref() else {
            return Err(SandboxError::Unsupported {
                plugin: plugin.to_owned(),
                message: "a native plugin needs runtime.entry".to_owned(),
            });
        };
        let Some(factory) = self.entries.read().get(entry).cloned() else {
            return Err(SandboxError::MissingExport {
                plugin: plugin.to_owned(),
                export: format!(
                    "native entry `{entry}` (registered: {})",
                    self.entries().join(", ")
                ),
            });
        };
        let limits = &manifest.limits;
        let shared = match limits.isolation {
            Isolation::Reuse => Some(factory()),
            Isolation::Fresh => None,
        };
        Ok(Arc::new(NativeLoaded {
            boundary: Arc::new(Boundary::new(&request, self.sandbox.clone())),
            factory,
            shared,
            timeout: limits.timeout.get(),
            wait_timeout: limits.wait_timeout.get(),
            max_instances: limits.max_instances.max(1),
            permits: Semaphore::new(limits.max_instances.max(1) as usize),
            config: Mutex::new(serde_json::Value::Object(Default::default())),
            running: AtomicBool::new(false),
            health: HealthState::default(),
        }))
    }
}

struct NativeLoaded {
    boundary: Arc<Boundary>,
    factory: NativeFactory,
    shared: Option<Arc<dyn NativePlugin>>,
    timeout: Duration,
    wait_timeout: Duration,
    max_instances: u32,
    permits: Semaphore,
    config: Mutex<serde_json::Value>,
    running: AtomicBool,
    health: HealthState,
}

impl NativeLoaded {
    fn name(&self) -> &str {
        self.boundary.caller().plugin.as_str()
    }

    /// Runs `f` against the plugin value (shared, or fresh and activated)
    /// under the call's deadline, turning panics into traps.
    async fn run<T, F, Fut>(
        &self,
        options: CallOptions,
        check_running: bool,
        f: F,
    ) -> Result<T, SandboxError>
    where
        F: FnOnce(Arc<dyn NativePlugin>, Arc<NativeContext>) -> Fut,
        Fut: Future<Output = Result<T, PluginError>>,
    {
        if check_running && !self.running.load(Ordering::Acquire) {
            return Err(SandboxError::NotRunning {
                plugin: self.name().to_owned(),
            });
        }
        let started = Instant::now();
        let result = self.run_inner(options, f).await;
        self.boundary
            .stats()
            .record_call(started.elapsed(), result.is_ok());
        if let Err(e) = &result {
            self.health.failed(e);
        }
        result
    }

    async fn run_inner<T, F, Fut>(&self, options: CallOptions, f: F) -> Result<T, SandboxError>
    where
        F: FnOnce(Arc<dyn NativePlugin>, Arc<NativeContext>) -> Fut,
        Fut: Future<Output = Result<T, PluginError>>,
    {
        let plugin = self.name().to_owned();
        let _permit = match self.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => tokio::time::timeout(self.wait_timeout, self.permits.acquire())
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or_else(|| SandboxError::Busy {
                    plugin: plugin.clone(),
                    waited: self.wait_timeout,
                    max_instances: self.max_instances,
                })?,
        };
        let timeout = options
            .timeout
            .map_or(self.timeout, |t| t.min(self.timeout));
        let mut scope = CallScope::new(timeout);
        scope.reset_caused(scope.deadline(), options.cause);
        let cx = Arc::new(NativeContext {
            boundary: self.boundary.clone(),
            scope,
        });
        let work = async {
            let value = match &self.shared {
                Some(value) => value.clone(),
                None => {
                    let value = (self.factory)();
                    let config = self.config.lock().clone();
                    value.activate(&cx, &config).await?;
                    value
                }
            };
            f(value, cx.clone()).await
        };
        let outcome = tokio::time::timeout(timeout, AssertUnwindSafe(work).catch_unwind()).await;
        match outcome {
            Err(_) => Err(SandboxError::Timeout {
                plugin,
                after: timeout,
            }),
            Ok(Err(panic)) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "the plugin panicked".to_owned());
                Err(SandboxError::Trap {
                    plugin,
                    kind: TrapKind::Unreachable,
                    message,
                })
            }
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(e))) => Err(match cx.scope.take_denial() {
                Some(denial) => SandboxError::PermissionDenied {
                    plugin,
                    permission: denial.permission,
                    detail: format!(
                        "{} ({}); the plugin then failed: {e}",
                        denial.attempted, denial.reason
                    ),
                },
                None => SandboxError::Plugin {
                    plugin,
                    code: e.code,
                    message: e.message,
                },
            }),
        }
    }
}

#[async_trait]
impl Plugin for NativeLoaded {
    fn caller(&self) -> &Arc<Caller> {
        self.boundary.caller()
    }

    async fn start(&self, config: &serde_json::Value) -> Result<(), SandboxError> {
        *self.config.lock() = config.clone();
        let config = config.clone();
        let result = match &self.shared {
            Some(_) => {
                self.run(CallOptions::default(), false, |p, cx| async move {
                    p.activate(&cx, &config).await
                })
                .await
            }
            // Fresh values are activated per call; check the config once.
            None => {
                self.run(CallOptions::default(), false, |_, _| async { Ok(()) })
                    .await
            }
        };
        if result.is_ok() {
            self.running.store(true, Ordering::Release);
            self.health.started();
        }
        result
    }

    async fn configure(&self, config: &serde_json::Value) -> Result<(), SandboxError> {
        *self.config.lock() = config.clone();
        let config = config.clone();
        if self.shared.is_none() {
            return Ok(());
        }
        self.run(CallOptions::default(), true, |p, cx| async move {
            p.configure(&cx, &config).await
        })
        .await
    }

    async fn handle_hook(&self, call: HookCall<'_>) -> Result<HookResponse, SandboxError> {
        self.run(call.options, true, |p, cx| async move {
            p.handle_hook(&cx, call.hook, call.context, call.data).await
        })
        .await
    }

    async fn call(
        &self,
        function: &str,
        input: &[u8],
        options: CallOptions,
    ) -> Result<Vec<u8>, SandboxError> {
        self.run(options, true, |p, cx| async move {
            p.call(&cx, function, input).await
        })
        .await
    }

    async fn handle_request(
        &self,
        request: &EndpointRequest,
        options: CallOptions,
    ) -> Result<EndpointResponse, SandboxError> {
        self.run(options, true, |p, cx| async move {
            p.handle_request(&cx, request).await
        })
        .await
    }

    async fn snapshot(&self) -> Result<Option<Vec<u8>>, SandboxError> {
        self.run(CallOptions::default(), true, |p, cx| async move {
            p.snapshot(&cx).await
        })
        .await
    }

    async fn restore(&self, state: &[u8]) -> Result<(), SandboxError> {
        self.run(CallOptions::default(), true, |p, cx| async move {
            p.restore(&cx, state).await
        })
        .await
    }

    async fn stop(&self) -> Result<(), SandboxError> {
        if !self.running.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        self.health.stopped();
        if self.shared.is_none() {
            return Ok(());
        }
        self.run(CallOptions::default(), false, |p, cx| async move {
            p.deactivate(&cx).await
        })
        .await
    }

    fn health(&self) -> Health {
        self.health.health()
    }

    fn stats(&self) -> ResourceStats {
        self.boundary.stats().snapshot()
    }
}
