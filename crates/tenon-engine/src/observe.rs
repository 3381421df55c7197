//! What the registry knows about how plugins behave, across every process
//! that shares it: statistics and health from the stored hook receipts, and
//! the crash guard's count started from the failures stored by others.
//!
//! An engine's own [`Telemetry`](tenon_metrics::Telemetry) sees only what
//! ran in its process; an operator's one-shot command (the CLI) would then
//! judge a plugin that failed in seven earlier commands as healthy. Here the
//! stored receipts decide, and what only the running process knows (whether
//! the runtime reports the plugin ready, its last error, uptime, restarts)
//! is merged in for the plugins running in this engine.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tenon_hooks::{ErrorKind, HookReceipt, ReceiptStatus};
use tenon_manifest::PluginId;
use tenon_metrics::{FailureKind, PluginStats};
use tenon_registry::{Event, EventKind, EventQuery};
use time::OffsetDateTime;

use crate::engine::{PluginEngine, Shared};
use crate::error::Result;
use crate::tenant::TenantState;

/// The most events read per registry page.
const PAGE: usize = 1000;

/// How many of a plugin's newest events the crash guard's count is started
/// from, at most.
const GUARD_LOOKBACK: usize = 200;

/// Statistics computed from the stored hook receipts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredStats {
    /// How many receipts were read.
    pub receipts: usize,
    /// Per plugin, by id.
    pub plugins: Vec<PluginStats>,
}

impl PluginEngine {
    /// Statistics of the tenant's plugins (or of one) from the most recent
    /// `limit` hook receipts stored in the registry, so covering every host
    /// and process of the registry; health is judged over the receipts of
    /// the health window (unknown below its sample threshold). Resources
    /// are sampled now: storage (KV, data directory) for every plugin, the
    /// runtime's figures for plugins running in this engine, whose
    /// readiness, last error and uptime, and the restarts seen here, are
    /// merged in too.
    pub async fn stored_stats(
        &self,
        plugin: Option<&PluginId>,
        limit: usize,
    ) -> Result<StoredStats> {
        let mut query = EventQuery::default().with_kinds(&[EventKind::Hook]);
        if let Some(id) = plugin {
            query = query.with_plugin(id.clone());
        }
        let mut events: Vec<Event> = Vec::new();
        let mut after = None;
        while events.len() < limit {
            let page = self
                .events(
                    &query
                        .clone()
                        .with_after(after)
                        .with_limit((limit - events.len()).min(PAGE)),
                )
                .await?;
            events.extend(page.events);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        events.reverse();
        let thresholds = &self.shared.telemetry.config().health;
        let window_start = OffsetDateTime::now_utc() - thresholds.window;
        let recent = events.iter().filter(|e| e.at >= window_start).count();
        let receipts = crate::receipts::receipts_from_events(&events);
        let mut stats: BTreeMap<String, PluginStats> =
            PluginStats::from_receipts(&receipts, thresholds, Some(recent));
        if let Some(id) = plugin {
            stats
                .entry(id.to_string())
                .or_insert_with(|| PluginStats::empty(id.as_str()));
        }
        let mut plugins: Vec<PluginStats> = stats.into_values().collect();
        for stats in &mut plugins {
            if let Ok(id) = PluginId::new(&stats.plugin) {
                crate::resources::sample_plugin(&self.shared, &self.tenant, &id).await?;
            }
            self.merge_runtime(stats);
        }
        Ok(StoredStats {
            receipts: receipts.len(),
            plugins,
        })
    }

    /// Adds what only this engine knows of a plugin it runs.
    fn merge_runtime(&self, stats: &mut PluginStats) {
        let tenant = self.tenant.id.as_str();
        if let Some(local) = self.shared.telemetry.stats(tenant, &stats.plugin) {
            stats.health.restarts = local.health.restarts;
            stats.resources = local.resources;
        }
        let running = PluginId::new(&stats.plugin)
            .ok()
            .and_then(|id| self.tenant.running(&id));
        let Some(running) = running else { return };
        match running.slot.current() {
            Some(loaded) => {
                let health = loaded.plugin.health();
                stats.health.ready = Some(health.ready);
                stats.health.last_error = health.last_error;
                stats.health.uptime_ms =
                    u64::try_from(health.uptime.as_millis()).unwrap_or(u64::MAX);
            }
            // Registered, waiting for its first use.
            None => stats.health.ready = Some(false),
        }
    }
}

/// Starts the crash guard's count of a plugin from the failures stored in
/// the registry since its last success, enable or automatic disable (by any
/// process), within the guard's window.
pub(crate) async fn seed_guard(shared: &Shared, tenant: &TenantState, id: &PluginId) {
    shared.writer.flush().await;
    let query = EventQuery::default()
        .with_plugin(id.clone())
        .with_kinds(&[
            EventKind::Hook,
            EventKind::Error,
            EventKind::EnabledChanged,
            EventKind::AutoDisable,
        ])
        .with_limit(GUARD_LOOKBACK);
    let events = match shared.store.list_events(&tenant.id, &query).await {
        Ok(page) => page.events,
        Err(error) => {
            tracing::debug!(plugin = %id, "the crash guard starts without stored failures: {error}");
            return;
        }
    };
    let now = OffsetDateTime::now_utc();
    let window = shared.telemetry.config().guard.window;
    let mut ages: Vec<Duration> = Vec::new();
    for event in &events {
        let age = Duration::try_from(now - event.at).unwrap_or_default();
        if age >= window {
            break;
        }
        match stored_failure(event) {
            Stored::Success | Stored::Boundary => break,
            Stored::Failure => ages.push(age),
            Stored::Neutral => {}
        }
    }
    if !ages.is_empty() {
        shared
            .telemetry
            .seed_guard(tenant.id.as_str(), id.as_str(), &ages);
    }
}

/// What a stored event means to the crash guard.
enum Stored {
    /// A success: earlier failures no longer count.
    Success,
    /// An enable or an automatic disable: the count started again there.
    Boundary,
    /// A failure the guard counts.
    Failure,
    /// Nothing.
    Neutral,
}

fn stored_failure(event: &Event) -> Stored {
    match event.kind {
        EventKind::Hook => {
            let Ok(receipt) = serde_json::from_value::<HookReceipt>(event.detail.clone()) else {
                return Stored::Neutral;
            };
            match receipt.status {
                ReceiptStatus::Ok | ReceiptStatus::Blocked => Stored::Success,
                ReceiptStatus::Timeout => Stored::Failure,
                ReceiptStatus::Error
                    if FailureKind::of(receipt.error_kind.unwrap_or_default()).is_some() =>
                {
                    Stored::Failure
                }
                _ => Stored::Neutral,
            }
        }
        // A failed endpoint request: a caller's doing as much as the
        // plugin's, never counted (`PluginEngine::handle_request`).
        EventKind::Error
            if event
                .detail
                .get("operation")
                .and_then(serde_json::Value::as_str)
                == Some(crate::engine::ENDPOINT_OPERATION) =>
        {
            Stored::Neutral
        }
        EventKind::Error => {
            let kind = event
                .detail
                .get("error_kind")
                .cloned()
                .and_then(|kind| serde_json::from_value::<ErrorKind>(kind).ok());
            match kind {
                Some(kind) if FailureKind::of(kind).is_some() => Stored::Failure,
                _ => Stored::Neutral,
            }
        }
        EventKind::EnabledChanged
            if event
                .detail
                .get("enabled")
                .and_then(serde_json::Value::as_bool)
                == Some(true) =>
        {
            Stored::Boundary
        }
        EventKind::AutoDisable => Stored::Boundary,
        _ => Stored::Neutral,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_event(operation: &str, error_kind: &str) -> Event {
        Event {
            cursor: "ev_1".parse().unwrap(),
            tenant: tenon_registry::TenantId::default(),
            plugin: Some(PluginId::new("acme/hello").unwrap()),
            version: None,
            kind: EventKind::Error,
            status: tenon_registry::EventStatus::Error,
            detail: serde_json::json!({
                "operation": operation,
                "function": "f",
                "error": "failed",
                "error_kind": error_kind,
            }),
            at: OffsetDateTime::now_utc(),
        }
    }

    #[test]
    fn a_stored_endpoint_failure_is_never_counted() {
        for (operation, kind, counted) in [
            ("call", "trap", true),
            ("call", "timeout", true),
            ("call", "unavailable", false),
            (crate::engine::ENDPOINT_OPERATION, "trap", false),
            (crate::engine::ENDPOINT_OPERATION, "timeout", false),
            (crate::engine::ENDPOINT_OPERATION, "handler", false),
        ] {
            let stored = stored_failure(&error_event(operation, kind));
            assert_eq!(
                matches!(stored, Stored::Failure),
                counted,
                "{operation} {kind}"
            );
        }
    }
}
