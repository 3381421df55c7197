//! [`PluginEngine`]: the handle hosts hold.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tenon_hooks::{
    CommandRegistry, DispatchConfig, DispatchOutcome, EventBus, HandlerInfo, HookContext,
    HookError, HookSpec,
};
use tenon_manifest::{PluginId, RuntimeKind};
use tenon_marketplace::TrustPolicy;
use tenon_metrics::{HostCounters, PluginStats, Telemetry, trace};
use tenon_registry::{
    EventKind, EventPage, EventQuery, EventStatus, EventWriter, LogPage, LogQuery, NewEvent,
    PluginQuery, PluginRecord, RegistryStore, TenantId,
};
use tenon_sandbox::{
    CallOptions, EndpointRequest, EndpointResponse, HostServices, Plugin, Runtime, RuntimeCounters,
    SandboxError,
};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::builder::EngineBuilder;
use crate::config::{GrantPolicy, HostProfile, Paths};
use crate::error::{EngineError, Result};
use crate::host::EngineHost;
use crate::receipts::ReceiptLog;
use crate::routes::EndpointRoutes;
use crate::tenant::{TenantState, Tenants};

/// The `operation` of the `error` event a failed endpoint request stores;
/// the crash guard does not count those (see `observe::seed_guard`).
pub(crate) const ENDPOINT_OPERATION: &str = "endpoint";

/// Who asked for a call to a running plugin.
#[derive(Debug, Clone, Copy)]
enum Caller {
    /// The host (`PluginEngine::call`): judged by the crash guard.
    Host,
    /// An HTTP request to one of the plugin's endpoints: not judged.
    Endpoint,
}

/// What every tenant's engine handle shares.
pub(crate) struct Shared {
    pub(crate) profile: HostProfile,
    pub(crate) specs: Vec<HookSpec>,
    pub(crate) dispatch: DispatchConfig,
    pub(crate) grant_policy: GrantPolicy,
    pub(crate) trust: TrustPolicy,
    /// How marketplaces are reached and cached.
    pub(crate) marketplace: crate::market::MarketplaceOptions,
    pub(crate) paths: Paths,
    pub(crate) safe_mode: bool,
    pub(crate) store: Arc<dyn RegistryStore>,
    pub(crate) writer: EventWriter,
    pub(crate) runtimes: BTreeMap<RuntimeKind, Arc<dyn Runtime>>,
    pub(crate) telemetry: Arc<Telemetry>,
    pub(crate) tenants: Arc<Tenants>,
    pub(crate) host: Arc<EngineHost>,
    pub(crate) tasks: parking_lot::Mutex<Vec<JoinHandle<()>>>,
    /// The crash guard's decisions not yet acted on.
    pub(crate) decisions: Arc<crate::background::Decisions>,
    /// Whether tenants boot their enabled plugins when first used.
    pub(crate) boot: bool,
    /// Whether a boot stores the failures it meets (a host does; an
    /// operator's one-shot process only reports them).
    pub(crate) boot_records_failures: bool,
    /// How much of each tenant's event log the background keeps.
    pub(crate) retention: crate::config::EventRetention,
    /// How often the background samples plugin resources.
    pub(crate) sampling: Option<std::time::Duration>,
    /// How many events may lead to an event on a tenant's bus.
    pub(crate) event_depth: usize,
    /// The environment whose config overrides apply.
    pub(crate) environment: Option<String>,
    /// The tenants whose live instances were last exported (so that a
    /// tenant whose instances are gone is exported as 0).
    pub(crate) instance_tenants: parking_lot::Mutex<std::collections::BTreeSet<String>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().drain(..) {
            task.abort();
        }
    }
}

impl Shared {
    /// The host's counters, exported as metrics on the way.
    pub(crate) fn host_counters(&self) -> HostCounters {
        let writer = self.writer.stats();
        let runtimes = self
            .runtimes
            .values()
            .map(|runtime| runtime.counters())
            .fold(RuntimeCounters::default(), |a, b| a + b);
        let counters = HostCounters {
            events_written: writer.written,
            events_dropped: writer.dropped,
            events_failed: writer.failed,
            cache_rejections: runtimes.cache_rejections,
            instances_live: runtimes.instances_live,
            instance_memory: runtimes.instance_memory,
            instances_reclaimed: runtimes.instances_reclaimed,
            instance_cap_refusals: runtimes.instance_cap_refusals,
        };
        self.telemetry.record_host_counters(&counters);
        let mut tenants: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for report in self.runtimes.values().filter_map(|r| r.fairness()) {
            for (tenant, usage) in report.tenants {
                let entry = tenants.entry(tenant).or_default();
                entry.0 += usage.instances;
                entry.1 += usage.memory;
            }
        }
        let mut reported = self.instance_tenants.lock();
        for gone in reported.iter().filter(|t| !tenants.contains_key(*t)) {
            self.telemetry.record_tenant_instances(gone, 0, 0);
        }
        for (tenant, (instances, memory)) in &tenants {
            self.telemetry
                .record_tenant_instances(tenant, *instances, *memory);
        }
        *reported = tenants.into_keys().collect();
        counters
    }

    /// A plugin's config spec as it applies in this engine's environment.
    pub(crate) fn config_spec<'a>(
        &self,
        spec: &'a tenon_manifest::ConfigSpec,
    ) -> std::borrow::Cow<'a, tenon_manifest::ConfigSpec> {
        spec.for_environment(self.environment.as_deref())
    }

    /// The state of `tenant`, created on first use.
    pub(crate) fn tenant(&self, tenant: &TenantId) -> Result<Arc<TenantState>> {
        Ok(self.tenants.get_or_create(tenant, || {
            let state = TenantState::new(
                tenant.clone(),
                &self.specs,
                self.dispatch.clone(),
                self.event_depth,
            )?;
            state.dispatcher.add_observer(self.telemetry.clone());
            state.dispatcher.add_observer(Arc::new(ReceiptLog {
                tenant: tenant.clone(),
                writer: self.writer.clone(),
            }));
            Ok(state)
        })?)
    }
}

/// The facade of Tenon: installs, runs and governs the plugins of one tenant
/// (see [`PluginEngine::for_tenant`] for others).
///
/// Cheap to clone; clones share everything. Build one with
/// [`PluginEngine::builder`].
#[derive(Clone)]
pub struct PluginEngine {
    pub(crate) shared: Arc<Shared>,
    pub(crate) tenant: Arc<TenantState>,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("host", &self.shared.profile.name)
            .field("tenant", &self.tenant.id)
            .field("registry", &self.shared.store.info().location)
            .field("safe_mode", &self.shared.safe_mode)
            .finish_non_exhaustive()
    }
}

impl PluginEngine {
    /// A builder with every default.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    pub(crate) fn new(shared: Arc<Shared>, tenant: &TenantId) -> Result<Self> {
        let tenant = shared.tenant(tenant)?;
        Ok(Self { shared, tenant })
    }

    /// The same engine serving another tenant: its own plugins, config,
    /// grants, KV, events, hooks and bus; compiled code is shared.
    pub async fn for_tenant(&self, tenant: &str) -> Result<Self> {
        let id = TenantId::new(tenant)?;
        let engine = Self::new(self.shared.clone(), &id)?;
        if self.shared.boot && !engine.tenant.booted.load(Ordering::Acquire) {
            engine.boot().await?;
        }
        Ok(engine)
    }

    /// A hook context for this engine's tenant (each dispatch should have
    /// its own: it carries the execution id and the handlers' shared state).
    pub fn context(&self) -> HookContext {
        HookContext::new(self.tenant.id.as_str())
    }

    fn check_tenant(&self, context: &HookContext) -> Result<()> {
        if context.tenant() == self.tenant.id.as_str() {
            return Ok(());
        }
        Err(EngineError::TenantMismatch {
            engine: self.tenant.id.as_str().to_owned(),
            context: context.tenant().to_owned(),
        })
    }

    /// The tenant served.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant.id
    }

    /// The registry, for reading (changes to plugins go through the engine,
    /// whose state machine and events they would otherwise bypass).
    pub fn store(&self) -> &Arc<dyn RegistryStore> {
        &self.shared.store
    }

    /// What the host is.
    pub fn host_profile(&self) -> &HostProfile {
        &self.shared.profile
    }

    /// The services the host offers its plugins
    /// ([`crate::EngineBuilder::service`]).
    pub fn services(&self) -> &HostServices {
        tenon_sandbox::HostApi::services(&*self.shared.host)
    }

    /// The environment whose config overrides apply, if any.
    pub fn environment(&self) -> Option<&str> {
        self.shared.environment.as_deref()
    }

    /// Whether the engine booted in safe mode.
    pub fn safe_mode(&self) -> bool {
        self.shared.safe_mode
    }

    /// The host's extension points.
    pub fn hook_specs(&self) -> &[HookSpec] {
        &self.shared.specs
    }

    /// The handlers registered in this tenant, in dispatch order per hook.
    pub fn handlers(&self) -> Vec<HandlerInfo> {
        self.tenant.hooks.list()
    }

    /// This tenant's event bus (`plugin.installed`, `plugin.activated`, …
    /// and the events plugins emit).
    pub fn bus(&self) -> &EventBus {
        &self.tenant.bus
    }

    /// This tenant's commands (`plugin-id:command`).
    pub fn commands(&self) -> &CommandRegistry {
        &self.tenant.commands
    }

    /// Metrics, statistics, health and the crash guard.
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.shared.telemetry
    }

    /// Dispatches `hook` through this tenant's plugins. Receipts go to the
    /// registry's event log and to the telemetry. The context must be for
    /// this engine's tenant ([`context`](Self::context) makes one).
    pub async fn dispatch(
        &self,
        hook: &str,
        context: &HookContext,
        data: Value,
    ) -> Result<DispatchOutcome> {
        let dispatch = self.tenant.dispatcher.dispatch(hook, context, data);
        self.observed(hook, context, dispatch).await
    }

    /// [`dispatch`](Self::dispatch) with typed data.
    pub async fn dispatch_typed<T>(
        &self,
        hook: &str,
        context: &HookContext,
        data: T,
    ) -> Result<DispatchOutcome<T>>
    where
        T: Serialize + DeserializeOwned + Send,
    {
        let dispatch = self.tenant.dispatcher.dispatch_typed(hook, context, data);
        self.observed(hook, context, dispatch).await
    }

    /// Runs `dispatch` (not yet polled) for this engine's tenant, in a
    /// dispatch span, and records its outcome.
    async fn observed<T>(
        &self,
        hook: &str,
        context: &HookContext,
        dispatch: impl Future<Output = std::result::Result<DispatchOutcome<T>, HookError>>,
    ) -> Result<DispatchOutcome<T>> {
        self.check_tenant(context)?;
        let span = trace::dispatch_span(self.tenant.id.as_str(), hook, &context.execution_id());
        let outcome = dispatch.instrument(span).await?;
        self.shared
            .telemetry
            .record_dispatch(self.tenant.id.as_str(), hook, &outcome);
        Ok(outcome)
    }

    /// Dispatches a hook without waiting for it (for observe-only hooks);
    /// receipts still reach the event log and the telemetry. The returned
    /// handle gives the outcome to a host that wants it.
    pub fn emit(
        &self,
        hook: &str,
        context: HookContext,
        data: Value,
    ) -> Result<JoinHandle<DispatchOutcome>> {
        self.check_tenant(&context)?;
        Ok(self.tenant.dispatcher.emit(hook, context, data)?)
    }

    /// Calls a function a running plugin exports, bytes in and out.
    pub async fn call(&self, id: &PluginId, function: &str, input: &[u8]) -> Result<Vec<u8>> {
        self.call_running(id, function, |plugin| async move {
            plugin.call(function, input, CallOptions::default()).await
        })
        .await
    }

    /// Hands one HTTP request to the running plugin whose `routes` matched
    /// it (the request's `function` names the endpoint), under the plugin's
    /// own limits and timeout; `tenon-http` routes `[[endpoints]]` here.
    /// The version the routes came from serves it, or nothing does: a
    /// plugin swapped since ([`EndpointRoutes`]) is refused as not running.
    ///
    /// Counted in the plugin's statistics and stored as an `error` event
    /// when it fails, but never judged by the crash guard: whoever sends
    /// the request chooses what makes the plugin fail, trap or run out of
    /// time, and must not be able to disable it that way (the containment
    /// still ends the call, and the caller gets the error).
    pub async fn handle_request(
        &self,
        routes: &EndpointRoutes,
        request: &EndpointRequest,
    ) -> Result<EndpointResponse> {
        let function = request.function.as_str();
        let plugin = routes.plugin();
        self.observed_call(
            &routes.id,
            function,
            Caller::Endpoint,
            plugin,
            |plugin| async move { plugin.handle_request(request, CallOptions::default()).await },
        )
        .await
    }

    /// The `[[endpoints]]` of a running plugin with the version that
    /// declares them; `None` when it is not running (a disabled plugin has
    /// no routes). Read from the running state on every call, so routes
    /// follow enable, disable and upgrades without a rebuild.
    pub fn endpoint_routes(&self, id: &PluginId) -> Option<EndpointRoutes> {
        let running = self.tenant.running(id)?;
        Some(EndpointRoutes::new(id.clone(), running))
    }

    /// Runs `work` against a running plugin, recording it for the
    /// telemetry and the crash guard under `function`.
    async fn call_running<T, F, Fut>(&self, id: &PluginId, function: &str, work: F) -> Result<T>
    where
        F: FnOnce(Arc<dyn Plugin>) -> Fut,
        Fut: Future<Output = std::result::Result<T, SandboxError>>,
    {
        let running = match self.tenant.running(id) {
            Some(running) => running,
            None => {
                let record = self.record(id).await?;
                return Err(EngineError::NotRunning {
                    id: id.clone(),
                    state: record.state,
                });
            }
        };
        let plugin = async { running.slot.plugin().await };
        self.observed_call(id, function, Caller::Host, plugin, work)
            .await
    }

    /// Runs `work` against the plugin `plugin` gives, recording it for the
    /// telemetry under `function`, and for the crash guard when the host
    /// made the call.
    async fn observed_call<T, F, Fut>(
        &self,
        id: &PluginId,
        function: &str,
        caller: Caller,
        plugin: impl Future<Output = std::result::Result<Arc<dyn Plugin>, SandboxError>>,
        work: F,
    ) -> Result<T>
    where
        F: FnOnce(Arc<dyn Plugin>) -> Fut,
        Fut: Future<Output = std::result::Result<T, SandboxError>>,
    {
        let span = trace::call_span(self.tenant.id.as_str(), id.as_str(), function);
        let started = tokio::time::Instant::now();
        let result = async { work(plugin.await?).await }.instrument(span).await;
        let error = result.as_ref().err().map(crate::activate::handler_error);
        let (tenant, elapsed) = (self.tenant.id.as_str(), started.elapsed());
        let operation = match caller {
            Caller::Host => {
                let telemetry = &self.shared.telemetry;
                telemetry.record_call(tenant, id.as_str(), function, elapsed, error.as_ref());
                "call"
            }
            Caller::Endpoint => {
                let telemetry = &self.shared.telemetry;
                telemetry.record_endpoint_call(
                    tenant,
                    id.as_str(),
                    function,
                    elapsed,
                    error.as_ref(),
                );
                ENDPOINT_OPERATION
            }
        };
        // A failure is stored, so that processes sharing the registry count
        // it too (the crash guard only a host call's: see `seed_guard`).
        if let Some(error) = error
            && tenon_metrics::FailureKind::of(error.kind()).is_some()
        {
            self.shared.writer.record(
                NewEvent::new(self.tenant.id.clone(), EventKind::Error, EventStatus::Error)
                    .with_plugin(id.clone())
                    .with_detail(serde_json::json!({
                        "operation": operation,
                        "function": function,
                        "error": error.message(),
                        "error_kind": error.kind(),
                    })),
            );
        }
        result.map_err(|source| EngineError::Plugin {
            id: id.clone(),
            source,
        })
    }

    /// The plugin's record, or `NotInstalled` with close ids suggested.
    pub async fn record(&self, id: &PluginId) -> Result<PluginRecord> {
        if let Some(record) = self.shared.store.get_plugin(&self.tenant.id, id).await? {
            return Ok(record);
        }
        Err(self.not_installed(id.as_str()).await)
    }

    pub(crate) async fn not_installed(&self, id: &str) -> EngineError {
        let suggestions = match self.list().await {
            Ok(records) => tenon_types::similar(id, records.iter().map(|r| r.id.as_str())),
            Err(_) => Vec::new(),
        };
        // An uninstall that purges deletes the plugin's events; one that
        // keeps its data keeps them.
        let kept = match PluginId::new(id) {
            Ok(plugin) => self
                .shared
                .store
                .list_events(
                    &self.tenant.id,
                    &EventQuery::default().with_plugin(plugin).with_limit(1),
                )
                .await
                .is_ok_and(|page| !page.events.is_empty()),
            Err(_) => false,
        };
        EngineError::NotInstalled {
            id: id.to_owned(),
            suggestions,
            kept,
        }
    }

    /// Every installed plugin of the tenant, by id.
    pub async fn list(&self) -> Result<Vec<PluginRecord>> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .shared
                .store
                .list_plugins(
                    &self.tenant.id,
                    &PluginQuery::default().with_after(after).with_limit(1000),
                )
                .await?;
            all.extend(page.plugins);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// A page of the tenant's event log.
    pub async fn events(&self, query: &EventQuery) -> Result<EventPage> {
        self.shared.writer.flush().await;
        Ok(self
            .shared
            .store
            .list_events(&self.tenant.id, query)
            .await?)
    }

    /// Plugins' log lines kept in the registry for the tenant, oldest first,
    /// with how many older lines were dropped to keep within the bound
    /// ([`EventWriterConfig::logs_per_plugin`](tenon_registry::EventWriterConfig::logs_per_plugin)).
    pub async fn logs(&self, query: &LogQuery) -> Result<LogPage> {
        self.shared.writer.flush().await;
        Ok(self.shared.store.list_logs(&self.tenant.id, query).await?)
    }

    /// Statistics of a plugin in this engine (since it started).
    pub fn stats(&self, id: &PluginId) -> Option<PluginStats> {
        self.shared
            .telemetry
            .stats(self.tenant.id.as_str(), id.as_str())
    }

    /// The host's own counters since the engine started (shared by every
    /// tenant): what the event writer wrote, dropped and gave up on, and
    /// the compiled artifacts the runtimes refused from their caches. Also
    /// exported as metrics (`tenon_events_dropped_total`,
    /// `tenon_events_write_failed_total`, `tenon_cache_rejections_total`),
    /// every second and whenever this is called.
    pub fn host_counters(&self) -> HostCounters {
        self.shared.host_counters()
    }

    /// Live instances and their memory per tenant, and what the fairness
    /// caps did under pressure, for each runtime that keeps a fairness
    /// ledger (every tenant's: the runtimes are shared).
    pub fn instance_usage(&self) -> Vec<(RuntimeKind, tenon_sandbox::FairnessReport)> {
        self.shared
            .runtimes
            .iter()
            .filter_map(|(kind, runtime)| runtime.fairness().map(|report| (*kind, report)))
            .collect()
    }

    /// Waits until every queued event is in the registry.
    pub async fn flush(&self) {
        self.shared.writer.flush().await;
    }

    /// Stops every running plugin of every tenant (without changing their
    /// recorded state, so the next boot starts them again) and flushes the
    /// event log.
    pub async fn shutdown(&self) {
        // The crash guard's decisions taken so far are acted on first; then
        // no more changes from elsewhere, then each tenant's plugins stop
        // under its lock.
        self.shared
            .decisions
            .settle(std::time::Duration::from_secs(10))
            .await;
        let tasks: Vec<JoinHandle<()>> = self.shared.tasks.lock().drain(..).collect();
        for task in tasks {
            task.abort();
        }
        for tenant in self.shared.tenants.all() {
            let _ops = tenant.ops.lock().await;
            let ids: Vec<PluginId> = tenant.running.read().keys().cloned().collect();
            for id in ids {
                crate::activate::stop_local(&self.shared, &tenant, &id).await;
            }
        }
        // Denials counted in windows not over yet are reported now.
        let host = &self.shared.host;
        let end = std::time::Instant::now() + host.denials.limits().window;
        for suppressed in host.denials.ended(end) {
            host.report_suppressed(suppressed);
        }
        self.shared.writer.flush().await;
    }

    /// Applies `retention` to this tenant's event log now (what a builder's
    /// [`event_retention`](crate::EngineBuilder::event_retention) does in
    /// the background); what it deleted. Events still buffered are written
    /// first.
    pub async fn prune_events(
        &self,
        retention: &crate::EventRetention,
    ) -> Result<crate::PruneReport> {
        self.shared.writer.flush().await;
        crate::background::prune(&self.shared, &self.tenant.id, retention).await
    }

    /// The position of the tenant's newest event (to follow the log from
    /// now with [`events`](Self::events) and `EventQuery::with_after`).
    pub async fn latest_event_cursor(&self) -> Result<Option<tenon_registry::EventCursor>> {
        self.shared.writer.flush().await;
        Ok(self
            .shared
            .store
            .latest_event_cursor(&self.tenant.id)
            .await?)
    }

    pub(crate) fn paths(&self) -> &Paths {
        &self.shared.paths
    }
}
