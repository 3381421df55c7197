//! The engine's background work: acting on the crash guard's decisions,
//! following the registry's change feed so that every engine of a fleet
//! converges on what any of them changed, keeping each tenant's event log
//! within its retention, sampling plugin resources (`resources.rs`), and
//! exporting the host's counters as metrics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::json;
use tenon_manifest::PluginId;
use tenon_metrics::{DecisionSink, DisableDecision};
use tenon_registry::{ChangeKind, EventKind, EventStatus, NewEvent, PluginState, TenantId};
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::activate::{self, LoadSpec};
use crate::config::EventRetention;
use crate::engine::{PluginEngine, Shared};
use crate::error::Result;

/// Starts the background tasks; they hold the engine weakly and end with
/// it.
pub(crate) async fn start(
    shared: &Arc<Shared>,
    decisions: UnboundedReceiver<DisableDecision>,
) -> Result<()> {
    let guard = tokio::spawn(act_on_decisions(
        Arc::downgrade(shared),
        shared.decisions.clone(),
        decisions,
    ));
    let mut tasks = vec![guard];
    match shared.store.subscribe_changes().await {
        Ok(feed) => tasks.push(tokio::spawn(follow_changes(Arc::downgrade(shared), feed))),
        Err(error) => tracing::warn!(
            "no registry change feed ({error}); changes made by other hosts are seen at the next boot"
        ),
    }
    tasks.push(tokio::spawn(export_counters(Arc::downgrade(shared))));
    tasks.push(tokio::spawn(report_denials(Arc::downgrade(shared))));
    if shared.retention.prunes() {
        tasks.push(tokio::spawn(retain_events(
            Arc::downgrade(shared),
            shared.retention,
        )));
    }
    if let Some(interval) = shared.sampling {
        tasks.push(tokio::spawn(crate::resources::sample_in_background(
            Arc::downgrade(shared),
            interval,
        )));
    }
    shared.tasks.lock().extend(tasks);
    Ok(())
}

/// What applying an [`EventRetention`] deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneReport {
    /// Events older than the maximum age.
    pub by_age: u64,
    /// The oldest events beyond the maximum count.
    pub by_count: u64,
}

/// Applies `retention` to one tenant's event log, counting what each rule
/// deleted in `tenon_events_pruned_total`.
pub(crate) async fn prune(
    shared: &Shared,
    tenant: &TenantId,
    retention: &EventRetention,
) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    if let Some(age) = retention.max_age {
        let cutoff = time::OffsetDateTime::now_utc() - age;
        report.by_age = shared.store.prune_events(tenant, cutoff).await?;
        shared
            .telemetry
            .record_events_pruned(tenant.as_str(), "age", report.by_age);
    }
    if let Some(count) = retention.max_events {
        report.by_count = shared.store.prune_events_beyond(tenant, count).await?;
        shared
            .telemetry
            .record_events_pruned(tenant.as_str(), "count", report.by_count);
    }
    Ok(report)
}

/// How often the host's counters are exported as metrics.
const COUNTERS_EXPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Exports the host's counters (events dropped, cache rejections…) as
/// metrics every [`COUNTERS_EXPORT_INTERVAL`].
async fn export_counters(shared: Weak<Shared>) {
    every(shared, COUNTERS_EXPORT_INTERVAL, |shared| async move {
        shared.host_counters();
    })
    .await;
}

/// Reports, at the end of each window, the permission denials counted
/// rather than logged (a plugin that stopped hammering gets its last window
/// reported too).
async fn report_denials(shared: Weak<Shared>) {
    let Some(window) = shared.upgrade().map(|s| s.host.denials.limits().window) else {
        return;
    };
    every(shared, window, |shared| async move {
        for suppressed in shared.host.denials.ended(std::time::Instant::now()) {
            shared.host.report_suppressed(suppressed);
        }
    })
    .await;
}

/// Applies the retention to every tenant served, at once and then every
/// `retention.interval`.
async fn retain_events(shared: Weak<Shared>, retention: EventRetention) {
    every(shared, retention.interval, |shared| async move {
        for tenant in shared.tenants.all() {
            if let Err(error) = prune(&shared, &tenant.id, &retention).await {
                tracing::warn!(tenant = %tenant.id, "applying the event retention failed: {error}");
            }
        }
    })
    .await;
}

/// Runs `work` at once and then every `interval` (at least 10 ms; a late
/// run delays the next), while the engine lives.
pub(crate) async fn every<F: Future<Output = ()> + Send>(
    shared: Weak<Shared>,
    interval: Duration,
    mut work: impl FnMut(Arc<Shared>) -> F,
) {
    let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        work(shared).await;
    }
}

/// The crash guard's decisions on their way to the task that acts on them,
/// counted, so that a shutdown first lets the task act on those already
/// taken (an operator's one-shot process ends right after the failure that
/// tripped the guard).
pub(crate) struct Decisions {
    sender: UnboundedSender<DisableDecision>,
    pending: AtomicUsize,
    settled: Notify,
}

impl Decisions {
    pub(crate) fn new() -> (Arc<Self>, UnboundedReceiver<DisableDecision>) {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let decisions = Arc::new(Self {
            sender,
            pending: AtomicUsize::new(0),
            settled: Notify::new(),
        });
        (decisions, receiver)
    }

    fn done(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.settled.notify_waiters();
        }
    }

    /// Waits (up to `limit`) until every decision taken so far was acted on.
    pub(crate) async fn settle(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let settled = self.settled.notified();
                if self.pending.load(Ordering::Acquire) == 0 {
                    return;
                }
                settled.await;
            }
        })
        .await;
    }
}

impl DecisionSink for Decisions {
    fn disable(&self, decision: DisableDecision) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        if self.sender.send(decision).is_err() {
            self.done();
        }
    }
}

async fn act_on_decisions(
    shared: Weak<Shared>,
    queue: Arc<Decisions>,
    mut decisions: UnboundedReceiver<DisableDecision>,
) {
    while let Some(decision) = decisions.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if let Err(error) = auto_disable(&shared, &decision).await {
            tracing::error!(
                plugin = %decision.plugin,
                tenant = %decision.tenant,
                "the crash guard could not disable the plugin: {error}"
            );
        }
        queue.done();
    }
}

async fn auto_disable(shared: &Arc<Shared>, decision: &DisableDecision) -> Result<()> {
    let (Ok(tenant), Ok(id)) = (
        TenantId::new(&decision.tenant),
        PluginId::new(&decision.plugin),
    ) else {
        return Ok(());
    };
    let engine = PluginEngine::new(shared.clone(), &tenant)?;
    engine.auto_disable(&id, &decision.reason).await?;
    shared.writer.record(
        NewEvent::new(tenant, EventKind::AutoDisable, EventStatus::Error)
            .with_plugin(id)
            .with_detail(json!({
                "reason": decision.reason,
                "failures": decision.failures,
                "threshold": decision.threshold,
                "window_ms": decision.window.as_millis() as u64,
                "strikes": decision.strikes,
                "last_failure": decision.last_failure,
            })),
    );
    Ok(())
}

async fn follow_changes(shared: Weak<Shared>, mut feed: tenon_registry::ChangeSubscription) {
    loop {
        let change = feed.recv().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match change {
            Ok(change) => {
                if change.origin == shared.store.info().instance {
                    continue;
                }
                let Some(tenant) = shared.tenants.get(change.tenant.as_str()) else {
                    continue;
                };
                let Some(plugin) = change.plugin.clone() else {
                    continue;
                };
                if matches!(
                    change.kind,
                    ChangeKind::EventsAppended | ChangeKind::ArtifactsChanged
                ) {
                    continue;
                }
                let engine = PluginEngine {
                    shared: shared.clone(),
                    tenant,
                };
                if let Err(error) = engine.reconcile(&plugin, change.kind).await {
                    tracing::warn!(plugin = %plugin, "following a change made elsewhere failed: {error}");
                }
            }
            Err(error) if error.needs_resync() => {
                for tenant in shared.tenants.all() {
                    let engine = PluginEngine {
                        shared: shared.clone(),
                        tenant,
                    };
                    if let Err(error) = engine.reconcile_all().await {
                        tracing::warn!("resynchronising with the registry failed: {error}");
                    }
                }
            }
            Err(tenon_registry::ChangeFeedError::Closed) => return,
            Err(error) => tracing::warn!("registry change feed: {error}"),
        }
    }
}

impl PluginEngine {
    /// Brings this engine in line with the registry for one plugin: starts
    /// it if it is active there and not here, stops it if the reverse,
    /// swaps code when its version changed, delivers changed config.
    pub(crate) async fn reconcile(&self, id: &PluginId, kind: ChangeKind) -> Result<()> {
        let _ops = self.tenant.ops.lock().await;
        let record = self.shared.store.get_plugin(&self.tenant.id, id).await?;
        let running = self.tenant.running(id);
        let Some(record) = record else {
            activate::stop_local(&self.shared, &self.tenant, id).await;
            return Ok(());
        };
        let wanted =
            record.enabled && record.state == PluginState::Active && self.may_start(&record);
        match (wanted, running) {
            (true, None) => {
                let spec = LoadSpec::current(&self.shared, &self.tenant, &record, "start").await?;
                let mut visiting = vec![id.clone()];
                self.enable_dependencies(&record.manifest, &mut visiting)
                    .await?;
                activate::start_local(&self.shared, &self.tenant, spec).await?;
            }
            (false, Some(_)) => activate::stop_local(&self.shared, &self.tenant, id).await,
            (true, Some(running)) => {
                let current = running.slot.current();
                let version_changed = current
                    .as_ref()
                    .is_some_and(|loaded| loaded.version() != &record.version);
                let spec = LoadSpec::current(&self.shared, &self.tenant, &record, "start").await?;
                let permissions_changed = current
                    .as_ref()
                    .is_some_and(|loaded| loaded.permissions != spec.permissions);
                if version_changed || permissions_changed {
                    self.swap_running(id, spec).await?;
                } else if kind == ChangeKind::ConfigChanged {
                    let values = activate::stored_config(&self.shared, &self.tenant, id).await?;
                    self.deliver_config(&record, &values).await?;
                }
            }
            (false, None) => {}
        }
        Ok(())
    }

    async fn reconcile_all(&self) -> Result<()> {
        let mut ids: Vec<PluginId> = self.list().await?.into_iter().map(|r| r.id).collect();
        ids.extend(self.tenant.running.read().keys().cloned());
        ids.sort();
        ids.dedup();
        for id in ids {
            if let Err(error) = self.reconcile(&id, ChangeKind::PluginUpdated).await {
                tracing::warn!(plugin = %id, "resynchronising failed: {error}");
            }
        }
        Ok(())
    }
}
