//! [`Telemetry`]: one observer that turns receipts, calls and resource
//! samples into metrics, statistics, health and crash-guard decisions.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use metrics::{Counter, Gauge, Histogram};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use tenon_hooks::{
    DispatchOutcome, ErrorKind, HandlerError, HookContext, HookReceipt, ReceiptObserver,
    ReceiptStatus,
};
use tokio::time::Instant;

use crate::guard::{CrashGuardConfig, DecisionSink, Failure, FailureKind, GuardState, GuardStatus};
use crate::health::{HealthThresholds, Window};
use crate::names::*;
use crate::stats::{
    ExecutionStats, HealthSnapshot, Outcome, PluginStats, ResourceSample, ResourceUsage,
};

/// The host's own counters since it started, exported by
/// [`Telemetry::record_host_counters`] and shown by the doctor and stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HostCounters {
    /// Events written to the event log.
    pub events_written: u64,
    /// Events dropped because the event writer's queue was full.
    pub events_dropped: u64,
    /// Events given up after the registry kept failing.
    pub events_failed: u64,
    /// Compiled artifacts refused from the runtimes' caches.
    pub cache_rejections: u64,
    /// Live WebAssembly instances now, every tenant's.
    pub instances_live: u64,
    /// The memory they may reach together, in bytes.
    pub instance_memory: u64,
    /// Idle instances dropped to make room under a fairness cap.
    pub instances_reclaimed: u64,
    /// Instances refused at a fairness cap.
    pub instance_cap_refusals: u64,
}

/// What [`Telemetry`] judges by.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TelemetryConfig {
    /// When a plugin stops being healthy.
    pub health: HealthThresholds,
    /// When a plugin must be disabled.
    pub guard: CrashGuardConfig,
}

/// Metrics, statistics, health and the crash guard for every plugin of every
/// tenant.
///
/// Add it to a `HookDispatcher` as a [`ReceiptObserver`]; report calls,
/// load failures and resource samples with the `record_*` methods; read
/// [`Telemetry::stats`] and [`Telemetry::health`]; act on the crash guard's
/// decisions in the [`DecisionSink`] given to [`Telemetry::with_sink`].
///
/// Metric handles are registered with the `metrics` recorder installed when a
/// plugin is first seen: install the recorder before the first dispatch.
pub struct Telemetry {
    config: TelemetryConfig,
    cells: Interned<PluginCell>,
    dispatches: Interned<DispatchHandles>,
    sink: Option<Arc<dyn DecisionSink>>,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry")
            .field("config", &self.config)
            .field("has_sink", &self.sink.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new(TelemetryConfig::default())
    }
}

impl Telemetry {
    /// Telemetry with these thresholds and no decision sink (decisions are
    /// only logged).
    pub fn new(config: TelemetryConfig) -> Self {
        Self {
            config,
            cells: Interned::default(),
            dispatches: Interned::default(),
            sink: None,
        }
    }

    /// Sends the crash guard's decisions to `sink`.
    pub fn with_sink(mut self, sink: Arc<dyn DecisionSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// The thresholds.
    pub fn config(&self) -> &TelemetryConfig {
        &self.config
    }

    fn cell(&self, tenant: &str, plugin: &str) -> Arc<PluginCell> {
        let window = self.config.health.window;
        self.cells.get_or_insert(tenant, plugin, |tenant, plugin| {
            PluginCell::new(tenant, plugin, window)
        })
    }

    fn decide(&self, cell: &PluginCell, failure: Failure, tripped: Option<crate::guard::Trip>) {
        cell.failures(failure.kind).increment(1);
        let Some(trip) = tripped else { return };
        let decision = trip.decide(&self.config.guard, &cell.tenant, &cell.plugin, failure);
        metrics::counter!(
            PLUGIN_AUTO_DISABLED,
            LABEL_TENANT => cell.tenant.clone(),
            LABEL_PLUGIN => cell.plugin.clone()
        )
        .increment(1);
        tracing::warn!(
            tenant = %cell.tenant,
            plugin = %cell.plugin,
            failures = decision.failures,
            strikes = decision.strikes,
            "crash guard: {}",
            decision.reason
        );
        if let Some(sink) = &self.sink {
            sink.disable(decision);
        }
    }

    /// Records one function call of a plugin (hooks are recorded from their
    /// receipts). `error` says how it failed, if it did; its kind decides
    /// what the crash guard makes of it, as for a hook.
    pub fn record_call(
        &self,
        tenant: &str,
        plugin: &str,
        function: &str,
        duration: Duration,
        error: Option<&HandlerError>,
    ) {
        let key: Arc<str> = Arc::from(format!("call:{function}"));
        let input = self.record_execution(tenant, plugin, &key, duration, error, true);
        if input == GuardInput::Neutral && error.is_some() {
            self.cell(tenant, plugin).unavailable.increment(1);
        }
    }

    /// Records one HTTP request a plugin's endpoint `function` served, in
    /// its statistics and health (under `endpoint:{function}`), never in
    /// the crash guard's count: a caller chooses what an endpoint is sent,
    /// so a request that makes the plugin fail, trap or run out of time
    /// says as much about the caller as about the plugin, and counting it
    /// would let any caller disable the plugin. Its successes do not clear
    /// the count either (they say nothing of the plugin's hooks).
    pub fn record_endpoint_call(
        &self,
        tenant: &str,
        plugin: &str,
        function: &str,
        duration: Duration,
        error: Option<&HandlerError>,
    ) {
        let key: Arc<str> = Arc::from(format!("endpoint:{function}"));
        self.record_execution(tenant, plugin, &key, duration, error, false);
    }

    /// Records one execution under `key`; when `guarded`, the crash guard
    /// judges it (and may decide to disable the plugin). Returns what it
    /// means to the guard.
    fn record_execution(
        &self,
        tenant: &str,
        plugin: &str,
        key: &Arc<str>,
        duration: Duration,
        error: Option<&HandlerError>,
        guarded: bool,
    ) -> GuardInput {
        let cell = self.cell(tenant, plugin);
        let (outcome, input) = match error {
            None => (Outcome::Success, GuardInput::Success),
            Some(error) => {
                let outcome = if error.kind() == ErrorKind::Timeout {
                    Outcome::Timeout
                } else {
                    Outcome::Error
                };
                (outcome, GuardInput::of(error.kind()))
            }
        };
        let now = Instant::now();
        let tripped = {
            let mut state = cell.state.lock();
            state.record(key, outcome, duration, now);
            if guarded {
                state.guard_input(&self.config.guard, input, now)
            } else {
                None
            }
        };
        if guarded && let (Some(error), GuardInput::Failure(kind)) = (error, input) {
            let failure = Failure::new(kind, key.to_string(), error.message());
            self.decide(&cell, failure, tripped);
        }
        input
    }

    /// Records events deleted from a tenant's log by its retention rule
    /// `rule` (`age` or `count`).
    pub fn record_events_pruned(&self, tenant: &str, rule: &'static str, count: u64) {
        metrics::counter!(
            EVENTS_PRUNED,
            LABEL_TENANT => tenant.to_owned(),
            LABEL_KIND => rule
        )
        .increment(count);
    }

    /// Records an event of `plugin` that the bus refused for a causation
    /// chain deeper than its limit.
    pub fn record_chain_cut(&self, tenant: &str, plugin: &str) {
        metrics::counter!(
            EVENT_CHAINS_CUT,
            LABEL_TENANT => tenant.to_owned(),
            LABEL_PLUGIN => plugin.to_owned()
        )
        .increment(1);
    }

    /// Exports the host's own counters (they are counted where they happen:
    /// the event writer, the runtimes) as metrics, at their current values.
    pub fn record_host_counters(&self, counters: &HostCounters) {
        metrics::counter!(EVENTS_DROPPED).absolute(counters.events_dropped);
        metrics::counter!(EVENTS_WRITE_FAILED).absolute(counters.events_failed);
        metrics::counter!(CACHE_REJECTIONS).absolute(counters.cache_rejections);
        metrics::gauge!(INSTANCES_LIVE).set(counters.instances_live as f64);
        metrics::gauge!(INSTANCE_MEMORY).set(counters.instance_memory as f64);
        metrics::counter!(INSTANCES_RECLAIMED).absolute(counters.instances_reclaimed);
        metrics::counter!(INSTANCE_CAP_REFUSALS).absolute(counters.instance_cap_refusals);
    }

    /// Exports one tenant's live instances and their memory now.
    pub fn record_tenant_instances(&self, tenant: &str, instances: u64, memory: u64) {
        metrics::gauge!(INSTANCES_LIVE, LABEL_TENANT => tenant.to_owned()).set(instances as f64);
        metrics::gauge!(INSTANCE_MEMORY, LABEL_TENANT => tenant.to_owned()).set(memory as f64);
    }

    /// Records `count` permission denials of `plugin` that were counted
    /// rather than logged one by one.
    pub fn record_denials_suppressed(&self, tenant: &str, plugin: &str, count: u64) {
        metrics::counter!(
            PERMISSION_DENIALS_SUPPRESSED,
            LABEL_TENANT => tenant.to_owned(),
            LABEL_PLUGIN => plugin.to_owned()
        )
        .increment(count);
    }

    /// Records a failure outside any call (a load or start failure).
    pub fn record_failure(&self, tenant: &str, plugin: &str, failure: Failure) {
        let cell = self.cell(tenant, plugin);
        let tripped = cell
            .state
            .lock()
            .guard
            .record_failure(&self.config.guard, Instant::now());
        self.decide(&cell, failure, tripped);
    }

    /// Records a dispatch as a whole: one count by how the chain ended.
    pub fn record_dispatch<T>(&self, tenant: &str, hook: &str, outcome: &DispatchOutcome<T>) {
        let handles = self
            .dispatches
            .get_or_insert(tenant, hook, DispatchHandles::new);
        let index = if outcome.is_blocked() {
            1
        } else if outcome.is_stopped() {
            2
        } else {
            0
        };
        handles.by_result[index].increment(1);
    }

    /// Records a sample of a plugin's resource figures (cumulative since
    /// load, as the sandbox reports them).
    pub fn record_resources(&self, tenant: &str, plugin: &str, sample: &ResourceSample) {
        let cell = self.cell(tenant, plugin);
        let now = Instant::now();
        cell.state.lock().resources.record(sample, now);
        let labels = [
            (LABEL_TENANT, cell.tenant.clone()),
            (LABEL_PLUGIN, cell.plugin.clone()),
        ];
        let gauge = |name: &'static str| metrics::gauge!(name, labels_of(&labels));
        let counter = |name: &'static str| metrics::counter!(name, labels_of(&labels));
        gauge(PLUGIN_MEMORY).set(sample.memory_bytes as f64);
        gauge(PLUGIN_MEMORY_PEAK).set(sample.memory_peak_bytes as f64);
        gauge(PLUGIN_INSTANCES).set(sample.instances as f64);
        gauge(PLUGIN_INSTANCES_POOLED).set(sample.instances_pooled as f64);
        gauge(PLUGIN_KV_BYTES).set(sample.kv_bytes as f64);
        gauge(PLUGIN_KV_KEYS).set(sample.kv_keys as f64);
        gauge(PLUGIN_DATA_BYTES).set(sample.data_bytes as f64);
        counter(PLUGIN_FUEL).absolute(sample.fuel_consumed);
        counter(PLUGIN_CPU)
            .absolute(u64::try_from(sample.cpu_time.as_micros()).unwrap_or(u64::MAX));
        counter(PLUGIN_HTTP_REQUESTS).absolute(sample.http_requests);
        let bytes = |direction: &'static str| {
            let mut labels = labels_of(&labels);
            labels.push(metrics::Label::new(LABEL_DIRECTION, direction));
            metrics::counter!(PLUGIN_HTTP_BYTES, labels)
        };
        bytes("in").absolute(sample.http_bytes_in);
        bytes("out").absolute(sample.http_bytes_out);
    }

    /// The plugin was started (activated); a start after the first counts as
    /// a restart.
    pub fn plugin_started(&self, tenant: &str, plugin: &str) {
        let cell = self.cell(tenant, plugin);
        let mut state = cell.state.lock();
        if state.ever_started {
            state.restarts += 1;
        }
        state.ever_started = true;
        state.started_at = Some(Instant::now());
    }

    /// The plugin was stopped.
    pub fn plugin_stopped(&self, tenant: &str, plugin: &str) {
        self.cell(tenant, plugin).state.lock().started_at = None;
    }

    /// An operator re-enabled the plugin: the crash guard clears its count
    /// (keeping its strikes).
    pub fn reenabled(&self, tenant: &str, plugin: &str) {
        self.cell(tenant, plugin)
            .state
            .lock()
            .guard
            .reenabled(Instant::now());
    }

    /// Starts the crash guard's count of a plugin from failures stored by
    /// other processes, `ages` ago (see [`GuardState::seed`]): so that a
    /// plugin failing in short-lived processes (the CLI) is judged on all of
    /// its failures.
    pub fn seed_guard(&self, tenant: &str, plugin: &str, ages: &[Duration]) {
        let now = Instant::now();
        let at = ages.iter().filter_map(|age| now.checked_sub(*age));
        self.cell(tenant, plugin)
            .state
            .lock()
            .guard
            .seed(&self.config.guard, at, now);
    }

    /// Forgets a plugin (it was uninstalled).
    pub fn forget(&self, tenant: &str, plugin: &str) {
        self.cells.remove(tenant, plugin);
    }

    /// The crash guard's standing of a plugin.
    pub fn guard_status(&self, tenant: &str, plugin: &str) -> GuardStatus {
        self.cell(tenant, plugin)
            .state
            .lock()
            .guard
            .status(&self.config.guard, Instant::now())
    }

    /// A plugin's health now (also updates its health gauge).
    pub fn health(&self, tenant: &str, plugin: &str) -> HealthSnapshot {
        let cell = self.cell(tenant, plugin);
        let snapshot = cell
            .state
            .lock()
            .health(&self.config.health, Instant::now());
        cell.health_gauge.set(snapshot.status.gauge());
        snapshot
    }

    /// A plugin's statistics, if it was ever seen.
    pub fn stats(&self, tenant: &str, plugin: &str) -> Option<PluginStats> {
        let cell = self.cells.get(tenant, plugin)?;
        Some(self.snapshot(&cell))
    }

    /// Statistics of every plugin of a tenant, by plugin id.
    pub fn all_stats(&self, tenant: &str) -> Vec<PluginStats> {
        let mut all: Vec<PluginStats> = self
            .cells
            .values(tenant)
            .iter()
            .map(|cell| self.snapshot(cell))
            .collect();
        all.sort_by(|a, b| a.plugin.cmp(&b.plugin));
        all
    }

    /// Re-judges the health of every plugin, updating the health gauges;
    /// call it periodically (the engine does, with its resource sampling).
    pub fn refresh(&self) {
        let now = Instant::now();
        for cell in self.cells.all() {
            let status = cell.state.lock().health(&self.config.health, now).status;
            cell.health_gauge.set(status.gauge());
        }
    }

    fn snapshot(&self, cell: &PluginCell) -> PluginStats {
        let now = Instant::now();
        let state = &mut *cell.state.lock();
        let health = state.health(&self.config.health, now);
        cell.health_gauge.set(health.status.gauge());
        let mut by_hook: Vec<(String, ExecutionStats)> = state
            .hooks
            .iter()
            .map(|(hook, entry)| (hook.to_string(), entry.stats))
            .collect();
        by_hook.sort_by(|a, b| a.0.cmp(&b.0));
        PluginStats {
            plugin: cell.plugin.to_string(),
            execution: state.total,
            by_hook: by_hook.into_iter().collect(),
            resources: state.resources.usage,
            health,
        }
    }
}

impl ReceiptObserver for Telemetry {
    fn on_receipts(&self, context: &HookContext, receipts: &[HookReceipt]) {
        let tenant = context.tenant();
        let now = Instant::now();
        // One snapshot and one tenant lookup per dispatch; a plugin seen for
        // the first time takes the slow path.
        let snapshot = self.cells.map.load();
        let cells = snapshot.get(tenant);
        for receipt in receipts {
            let inserted;
            let cell: &PluginCell = match cells.and_then(|cells| cells.get(&*receipt.plugin)) {
                Some(cell) => cell,
                None => {
                    inserted = self.cell(tenant, &receipt.plugin);
                    &inserted
                }
            };
            let outcome = Outcome::of(receipt.status);
            let input = GuardInput::of_receipt(receipt);
            let tripped = {
                let mut state = cell.state.lock();
                let entry = state.record(&receipt.hook, outcome, receipt.duration, now);
                entry.handles(cell, &receipt.hook).record(
                    receipt.status,
                    receipt.duration,
                    receipt.attempts,
                );
                state.guard_input(&self.config.guard, input, now)
            };
            tracing::debug!(
                target: "tenon::hooks",
                tenant,
                plugin = %receipt.plugin,
                hook = %receipt.hook,
                execution_id = %receipt.execution_id,
                status = receipt.status.as_str(),
                attempts = receipt.attempts,
                duration_us = receipt.duration.as_micros() as u64,
                error = receipt.error.as_deref(),
                "handler finished"
            );
            let kind = match input {
                GuardInput::Failure(kind) => kind,
                GuardInput::Neutral if receipt.status == ReceiptStatus::Error => {
                    cell.unavailable.increment(1);
                    continue;
                }
                _ => continue,
            };
            let failure = Failure::new(
                kind,
                receipt.hook.to_string(),
                receipt.error.clone().unwrap_or_default(),
            );
            self.decide(cell, failure, tripped);
        }
    }
}

fn labels_of(labels: &[(&'static str, Arc<str>)]) -> Vec<metrics::Label> {
    labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, v.clone()))
        .collect()
}

/// What one finished execution means to the crash guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GuardInput {
    /// It succeeded: the count clears.
    Success,
    /// It failed, the plugin's own doing.
    Failure(FailureKind),
    /// Neither: skipped, rejected, or not the plugin's fault (busy, not
    /// running, an export missing).
    Neutral,
}

impl GuardInput {
    fn of(kind: ErrorKind) -> Self {
        FailureKind::of(kind).map_or(Self::Neutral, Self::Failure)
    }

    /// The same classification for a hook receipt as for a call.
    fn of_receipt(receipt: &HookReceipt) -> Self {
        match receipt.status {
            ReceiptStatus::Ok | ReceiptStatus::Blocked => Self::Success,
            ReceiptStatus::Error => Self::of(receipt.error_kind.unwrap_or_default()),
            ReceiptStatus::Timeout => Self::Failure(FailureKind::Timeout),
            ReceiptStatus::Rejected | ReceiptStatus::Skipped => Self::Neutral,
        }
    }
}

/// One plugin of one tenant.
struct PluginCell {
    tenant: Arc<str>,
    plugin: Arc<str>,
    health_gauge: Gauge,
    failure_counters: [Counter; 4],
    /// Calls and handlers that could not run, not the plugin's fault.
    unavailable: Counter,
    state: Mutex<CellState>,
}

impl PluginCell {
    fn new(tenant: Arc<str>, plugin: Arc<str>, window: Duration) -> Self {
        let labels = [
            (LABEL_TENANT, tenant.clone()),
            (LABEL_PLUGIN, plugin.clone()),
        ];
        let failure = |kind: FailureKind| {
            let mut labels = labels_of(&labels);
            labels.push(metrics::Label::new(LABEL_KIND, kind.as_str()));
            metrics::counter!(PLUGIN_FAILURES, labels)
        };
        Self {
            health_gauge: metrics::gauge!(PLUGIN_HEALTH, labels_of(&labels)),
            failure_counters: [
                failure(FailureKind::Load),
                failure(FailureKind::Trap),
                failure(FailureKind::Timeout),
                failure(FailureKind::HandlerError),
            ],
            unavailable: metrics::counter!(PLUGIN_UNAVAILABLE, labels_of(&labels)),
            state: Mutex::new(CellState::new(window)),
            tenant,
            plugin,
        }
    }

    fn failures(&self, kind: FailureKind) -> &Counter {
        &self.failure_counters[match kind {
            FailureKind::Load => 0,
            FailureKind::Trap => 1,
            FailureKind::Timeout => 2,
            FailureKind::HandlerError => 3,
        }]
    }
}

struct CellState {
    total: ExecutionStats,
    /// Per hook, in first-seen order. A plugin handles a handful of hooks,
    /// and receipts carry the dispatcher's own `Arc` of the hook's name: a
    /// pointer comparison finds the entry without hashing the name.
    hooks: Vec<(Arc<str>, HookEntry)>,
    window: Window,
    guard: GuardState,
    resources: ResourceTracker,
    started_at: Option<Instant>,
    ever_started: bool,
    restarts: u64,
}

impl CellState {
    fn new(window: Duration) -> Self {
        Self {
            total: ExecutionStats::default(),
            hooks: Vec::new(),
            window: Window::new(window),
            guard: GuardState::new(),
            resources: ResourceTracker::default(),
            started_at: None,
            ever_started: false,
            restarts: 0,
        }
    }

    fn record(
        &mut self,
        hook: &Arc<str>,
        outcome: Outcome,
        duration: Duration,
        now: Instant,
    ) -> &mut HookEntry {
        self.total.add(outcome, duration);
        if outcome != Outcome::Skipped {
            self.window.record(
                now,
                u64::from(matches!(outcome, Outcome::Error | Outcome::Rejected)),
                u64::from(outcome == Outcome::Timeout),
            );
        }
        let index = match self
            .hooks
            .iter()
            .position(|(name, _)| Arc::ptr_eq(name, hook))
            .or_else(|| self.hooks.iter().position(|(name, _)| name == hook))
        {
            Some(index) => index,
            None => {
                self.hooks.push((hook.clone(), HookEntry::default()));
                self.hooks.len() - 1
            }
        };
        let entry = &mut self.hooks[index].1;
        entry.stats.add(outcome, duration);
        entry
    }

    /// Feeds the guard: failures count, successes clear, the rest is
    /// neutral.
    fn guard_input(
        &mut self,
        config: &CrashGuardConfig,
        input: GuardInput,
        now: Instant,
    ) -> Option<crate::guard::Trip> {
        match input {
            GuardInput::Success => {
                self.guard.record_success(config, now);
                None
            }
            GuardInput::Failure(_) => self.guard.record_failure(config, now),
            GuardInput::Neutral => None,
        }
    }

    fn health(&mut self, thresholds: &HealthThresholds, now: Instant) -> HealthSnapshot {
        let counts = self.window.counts(now);
        let (status, reason) = counts.judge(thresholds);
        HealthSnapshot {
            status,
            reason,
            recent: counts,
            last_check_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()
                .and_then(|d| u64::try_from(d.as_millis()).ok()),
            ready: None,
            last_error: None,
            uptime_ms: self.started_at.map_or(0, |t| {
                u64::try_from(now.saturating_duration_since(t).as_millis()).unwrap_or(u64::MAX)
            }),
            restarts: self.restarts,
        }
    }
}

#[derive(Default)]
struct HookEntry {
    stats: ExecutionStats,
    handles: Option<HookHandles>,
}

impl HookEntry {
    fn handles(&mut self, cell: &PluginCell, hook: &str) -> &HookHandles {
        self.handles
            .get_or_insert_with(|| HookHandles::new(&cell.tenant, &cell.plugin, hook))
    }
}

/// Metric handles of one (tenant, plugin, hook), registered once.
struct HookHandles {
    by_status: [Counter; 6],
    duration: Histogram,
    retries: Counter,
}

const STATUSES: [ReceiptStatus; 6] = [
    ReceiptStatus::Ok,
    ReceiptStatus::Blocked,
    ReceiptStatus::Error,
    ReceiptStatus::Timeout,
    ReceiptStatus::Skipped,
    ReceiptStatus::Rejected,
];

impl HookHandles {
    fn new(tenant: &Arc<str>, plugin: &Arc<str>, hook: &str) -> Self {
        let hook: Arc<str> = Arc::from(hook);
        let base = [
            (LABEL_TENANT, tenant.clone()),
            (LABEL_PLUGIN, plugin.clone()),
            (LABEL_HOOK, hook),
        ];
        let by_status = STATUSES.map(|status| {
            let mut labels = labels_of(&base);
            labels.push(metrics::Label::new(LABEL_STATUS, status.as_str()));
            metrics::counter!(HOOK_EXECUTIONS, labels)
        });
        Self {
            by_status,
            duration: metrics::histogram!(HOOK_DURATION, labels_of(&base)),
            retries: metrics::counter!(HOOK_RETRIES, labels_of(&base)),
        }
    }

    fn record(&self, status: ReceiptStatus, duration: Duration, attempts: u32) {
        let index = match status {
            ReceiptStatus::Ok => 0,
            ReceiptStatus::Blocked => 1,
            ReceiptStatus::Error => 2,
            ReceiptStatus::Timeout => 3,
            ReceiptStatus::Skipped => 4,
            ReceiptStatus::Rejected => 5,
        };
        self.by_status[index].increment(1);
        if status != ReceiptStatus::Skipped {
            self.duration.record(duration.as_secs_f64());
        }
        if attempts > 1 {
            self.retries.increment(u64::from(attempts - 1));
        }
    }
}

/// Dispatch counters of one (tenant, hook): ok, blocked, stopped.
struct DispatchHandles {
    by_result: [Counter; 3],
}

impl DispatchHandles {
    fn new(tenant: Arc<str>, hook: Arc<str>) -> Self {
        let counter = |result: &'static str| {
            metrics::counter!(
                DISPATCHES,
                LABEL_TENANT => tenant.clone(),
                LABEL_HOOK => hook.clone(),
                LABEL_STATUS => result
            )
        };
        Self {
            by_result: [counter("ok"), counter("blocked"), counter("stopped")],
        }
    }
}

/// Turns cumulative samples into the statistics' resource figures.
#[derive(Default)]
struct ResourceTracker {
    usage: ResourceUsage,
    samples: u64,
    last: Option<(Instant, Duration)>,
}

impl ResourceTracker {
    fn record(&mut self, sample: &ResourceSample, now: Instant) {
        self.samples += 1;
        let memory = &mut self.usage.memory;
        memory.current_bytes = sample.memory_bytes;
        memory.peak_bytes = memory.peak_bytes.max(sample.memory_peak_bytes);
        memory.average_bytes +=
            (sample.memory_bytes as f64 - memory.average_bytes) / self.samples as f64;
        let cpu = &mut self.usage.cpu;
        if let Some((at, cpu_before)) = self.last {
            let wall = now.saturating_duration_since(at).as_secs_f64();
            if wall > 0.0 {
                let used = sample.cpu_time.saturating_sub(cpu_before).as_secs_f64();
                cpu.current_percent = used / wall * 100.0;
                cpu.peak_percent = cpu.peak_percent.max(cpu.current_percent);
            }
        }
        cpu.total_ms = sample.cpu_time.as_secs_f64() * 1000.0;
        self.last = Some((now, sample.cpu_time));
        self.usage.disk_io.read_bytes = sample.disk_read_bytes;
        self.usage.disk_io.write_bytes = sample.disk_write_bytes;
        self.usage.network_io.bytes_in = sample.http_bytes_in;
        self.usage.network_io.bytes_out = sample.http_bytes_out;
        self.usage.network_io.requests = sample.http_requests;
        cpu.fuel_consumed = sample.fuel_consumed;
        self.usage.instances.live = sample.instances;
        self.usage.instances.pooled = sample.instances_pooled;
        self.usage.storage.kv_bytes = sample.kv_bytes;
        self.usage.storage.kv_keys = sample.kv_keys;
        self.usage.storage.data_bytes = sample.data_bytes;
        self.usage.live = sample.live;
    }
}

type Nested<V> = FxHashMap<Arc<str>, FxHashMap<Arc<str>, Arc<V>>>;

/// A two-level map of shared values read without locks: lookups load an
/// immutable snapshot; inserts (rare: once per key) copy it under a lock.
struct Interned<V> {
    map: ArcSwap<Nested<V>>,
    write: Mutex<()>,
}

impl<V> Default for Interned<V> {
    fn default() -> Self {
        Self {
            map: ArcSwap::from_pointee(FxHashMap::default()),
            write: Mutex::new(()),
        }
    }
}

impl<V> Interned<V> {
    fn get(&self, a: &str, b: &str) -> Option<Arc<V>> {
        self.map
            .load()
            .get(a)
            .and_then(|inner| inner.get(b))
            .cloned()
    }

    fn get_or_insert(
        &self,
        a: &str,
        b: &str,
        make: impl FnOnce(Arc<str>, Arc<str>) -> V,
    ) -> Arc<V> {
        if let Some(value) = self.get(a, b) {
            return value;
        }
        let _write = self.write.lock();
        if let Some(value) = self.get(a, b) {
            return value;
        }
        let mut map = FxHashMap::clone(&self.map.load());
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from(a), Arc::from(b));
        let value = Arc::new(make(a.clone(), b.clone()));
        map.entry(a).or_default().insert(b, value.clone());
        self.map.store(Arc::new(map));
        value
    }

    fn remove(&self, a: &str, b: &str) {
        let _write = self.write.lock();
        let mut map = FxHashMap::clone(&self.map.load());
        if let Some(inner) = map.get_mut(a) {
            inner.remove(b);
        }
        self.map.store(Arc::new(map));
    }

    fn values(&self, a: &str) -> Vec<Arc<V>> {
        self.map
            .load()
            .get(a)
            .map(|inner| inner.values().cloned().collect())
            .unwrap_or_default()
    }

    fn all(&self) -> Vec<Arc<V>> {
        self.map
            .load()
            .values()
            .flat_map(|inner| inner.values().cloned())
            .collect()
    }
}
