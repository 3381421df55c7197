//! The runtime contract: load a plugin, start it, call it, stop it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tenon_manifest::{Manifest, RuntimeKind};
use tenon_types::Causation;

use crate::error::SandboxError;
use crate::host::{Caller, HostApi, SandboxObserver};

/// Everything a runtime needs to load one plugin for one tenant.
#[derive(Clone)]
pub struct LoadRequest {
    /// The plugin's manifest (already validated).
    pub manifest: Arc<Manifest>,
    /// The module's bytes (empty for native plugins).
    pub module: Arc<[u8]>,
    /// Who the plugin is when it calls the host, with its effective
    /// permissions.
    pub caller: Arc<Caller>,
    /// The embedder's services.
    pub host: Arc<dyn HostApi>,
    /// Told about refused host calls.
    pub observer: Arc<dyn SandboxObserver>,
    /// The directory that `permissions.filesystem` paths are relative to;
    /// no filesystem access at all when `None`.
    pub data_dir: Option<PathBuf>,
}

impl std::fmt::Debug for LoadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadRequest")
            .field("plugin", &self.manifest.plugin.id)
            .field("module_len", &self.module.len())
            .field("caller", &self.caller)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// A runtime: turns a [`LoadRequest`] into a running [`Plugin`].
///
/// Implementations share compiled code between loads of the same module (and
/// between tenants) and keep every plugin's instances separate.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// The manifest `runtime.kind` this runtime serves.
    fn kind(&self) -> RuntimeKind;

    /// Compiles (or fetches from cache) and checks the plugin, ready to
    /// [`Plugin::start`]. Fails on a module that does not fit the runtime or
    /// the plugin API versions the host serves.
    async fn load(&self, request: LoadRequest) -> Result<Arc<dyn Plugin>, SandboxError>;

    /// What the runtime counted across every plugin it ran since it was
    /// made. The default counts nothing.
    fn counters(&self) -> RuntimeCounters {
        RuntimeCounters::default()
    }

    /// Live instances and their memory per tenant, and what the runtime's
    /// fairness ledger did under pressure; `None` for a runtime without one
    /// (the native runtime).
    fn fairness(&self) -> Option<crate::FairnessReport> {
        None
    }
}

impl RuntimeCounters {
    /// `counters` with the usage and pressure of `report`.
    pub fn with_fairness(self, report: &crate::FairnessReport) -> Self {
        Self {
            instances_live: report.total.instances,
            instance_memory: report.total.memory,
            instances_reclaimed: report.reclaimed,
            instance_cap_refusals: report.refused,
            ..self
        }
    }
}

/// What a runtime counts across every plugin it runs, for the host's
/// metrics and its doctor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeCounters {
    /// Compiled artifacts found in the runtime's cache and refused (forged,
    /// foreign or corrupt): never deserialized, each recompiled.
    pub cache_rejections: u64,
    /// Live instances now (idle or running), every tenant's.
    pub instances_live: u64,
    /// The memory those instances may reach together, in bytes (each counts
    /// its `limits.memory`).
    pub instance_memory: u64,
    /// Idle instances dropped to make room for another plugin's under a
    /// fairness cap.
    pub instances_reclaimed: u64,
    /// Instances refused at a fairness cap (each failed a call or start).
    pub instance_cap_refusals: u64,
}

impl std::ops::Add for RuntimeCounters {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            cache_rejections: self.cache_rejections + other.cache_rejections,
            instances_live: self.instances_live + other.instances_live,
            instance_memory: self.instance_memory + other.instance_memory,
            instances_reclaimed: self.instances_reclaimed + other.instances_reclaimed,
            instance_cap_refusals: self.instance_cap_refusals + other.instance_cap_refusals,
        }
    }
}

/// Per-call options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Overrides the manifest's `limits.timeout` for this call when shorter
    /// (a hook's own timeout, or the remainder of a dispatch budget).
    pub timeout: Option<Duration>,
    /// The causation of the events the plugin publishes during this call:
    /// when the call delivers an event, the chain that event continues
    /// (`Event::caused` in `tenon-hooks`); empty otherwise. Every runtime
    /// hands it to [`crate::HostApi::emit_event`] with each event.
    pub cause: Causation,
}

/// The context of one hook dispatch, as a plugin sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookContextData {
    /// Unique per dispatch.
    pub execution_id: String,
    /// The tenant.
    pub tenant: String,
    /// The end user, if known.
    pub user_id: Option<String>,
    /// The session, if known.
    pub session_id: Option<String>,
    /// Dispatch start, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// State shared by the handlers of the dispatch, a JSON object.
    pub state: String,
}

/// One hook call.
#[derive(Debug, Clone)]
pub struct HookCall<'a> {
    /// The hook's name.
    pub hook: &'a str,
    /// The dispatch context.
    pub context: &'a HookContextData,
    /// The hook's data as it stands, JSON.
    pub data: &'a str,
    /// Per-call options.
    pub options: CallOptions,
}

/// A plugin's answer to a hook call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookResponse {
    /// Go on, optionally with a JSON merge patch of the data (JSON text).
    Continue {
        /// The patch.
        patch: Option<String>,
    },
    /// Stop the chain, where the hook allows it.
    Block {
        /// Why.
        reason: Option<String>,
    },
}

/// One HTTP request routed to a plugin's endpoint (`[[endpoints]]`), as the
/// host hands it over: credentials are already taken out of the headers and
/// the body is already bounded by the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointRequest {
    /// The `function` of the endpoint the request matched, so that one
    /// `handle_request` export can serve every endpoint.
    pub function: String,
    /// The HTTP method, upper case.
    pub method: String,
    /// The path after the plugin's prefix, starting with `/`.
    pub path: String,
    /// The query string without `?` (empty when there is none).
    pub query: String,
    /// The request headers (names lower case) but credentials.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// A plugin's answer to an [`EndpointRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointResponse {
    /// The HTTP status (100 to 599; the host checks it).
    pub status: u16,
    /// Response headers, as the plugin wrote them (the host checks them).
    pub headers: Vec<(String, String)>,
    /// The body, at most the plugin's answer limit.
    pub body: Vec<u8>,
}

/// Whether a plugin is ready, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Started and not stopped.
    pub ready: bool,
    /// The last error any call returned.
    pub last_error: Option<String>,
    /// Time since it was started (zero when not started).
    pub uptime: Duration,
}

/// Resource figures of one plugin, cumulative since load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceStats {
    /// Calls made (hooks, functions, lifecycle).
    pub calls: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Linear memory in use now, summed over live instances, in bytes.
    pub memory_bytes: u64,
    /// The most linear memory any one instance reached, in bytes.
    pub memory_peak_bytes: u64,
    /// Fuel consumed, when fuel metering is on.
    pub fuel_consumed: u64,
    /// Time spent executing plugin code.
    pub cpu_time: Duration,
    /// Outbound HTTP requests made.
    pub http_requests: u64,
    /// HTTP bytes sent.
    pub http_bytes_out: u64,
    /// HTTP bytes received.
    pub http_bytes_in: u64,
    /// Live instances (busy or pooled).
    pub instances: u64,
    /// Of the live instances, those idle in the warm pool.
    pub instances_pooled: u64,
}

/// A loaded plugin. Safe to call from many tasks at once: the runtime gives
/// concurrent calls separate instances (up to `limits.max_instances`, then
/// they wait up to `limits.wait_timeout`).
#[async_trait]
pub trait Plugin: Send + Sync + 'static {
    /// Who the plugin is.
    fn caller(&self) -> &Arc<Caller>;

    /// Starts it with its config (a JSON object, secrets left out: the plugin
    /// reads granted secrets through the host API).
    async fn start(&self, config: &serde_json::Value) -> Result<(), SandboxError>;

    /// Delivers a changed config without a restart.
    async fn configure(&self, config: &serde_json::Value) -> Result<(), SandboxError>;

    /// Handles one hook.
    async fn handle_hook(&self, call: HookCall<'_>) -> Result<HookResponse, SandboxError>;

    /// Calls a named function, bytes in and out.
    async fn call(
        &self,
        function: &str,
        input: &[u8],
        options: CallOptions,
    ) -> Result<Vec<u8>, SandboxError>;

    /// Serves one request to one of its `[[endpoints]]`, under the call's
    /// deadline and the plugin's limits like any call. A runtime or plugin
    /// that serves no endpoints fails with [`SandboxError::MissingExport`]
    /// naming `handle_request`: the default, kept by the component runtime
    /// (its `tenon:plugin@1.0.0` world has no such export) and the process
    /// runtime.
    async fn handle_request(
        &self,
        request: &EndpointRequest,
        options: CallOptions,
    ) -> Result<EndpointResponse, SandboxError> {
        let _ = (request, options);
        Err(SandboxError::MissingExport {
            plugin: self.caller().plugin.to_string(),
            export: "handle_request".to_owned(),
        })
    }

    /// Exports in-memory state, if the plugin keeps any.
    async fn snapshot(&self) -> Result<Option<Vec<u8>>, SandboxError>;

    /// Imports state exported by [`Plugin::snapshot`].
    async fn restore(&self, state: &[u8]) -> Result<(), SandboxError>;

    /// Stops it; later calls fail with [`SandboxError::NotRunning`].
    async fn stop(&self) -> Result<(), SandboxError>;

    /// Readiness, last error and uptime.
    fn health(&self) -> Health;

    /// Resource figures.
    fn stats(&self) -> ResourceStats;
}
