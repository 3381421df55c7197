//! Per-plugin statistics: the reference spec's `PluginMetrics` (executions,
//! durations, memory, CPU, I/O, network, health, uptime, restarts).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tenon_hooks::{HookReceipt, ReceiptStatus};

use crate::health::{HealthStatus, HealthThresholds, RecentCounts};

/// Execution figures of a plugin (or of one of its hooks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutionStats {
    /// Executions: handler runs and function calls (skipped handlers are not
    /// executions).
    pub count: u64,
    /// Executions that succeeded (continued or blocked).
    pub success_count: u64,
    /// Executions that failed: errors, timeouts and rejected results.
    pub error_count: u64,
    /// Of the failures, timeouts.
    pub timeout_count: u64,
    /// Of the failures, results the host rejected.
    pub rejected_count: u64,
    /// Handlers that did not run (budget spent, chain blocked or stopped).
    pub skipped_count: u64,
    /// Mean duration, milliseconds.
    pub avg_duration_ms: f64,
    /// Longest duration, milliseconds.
    pub max_duration_ms: f64,
    /// Total duration, milliseconds.
    pub total_duration_ms: f64,
}

/// How an execution ended, as the statistics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Success,
    /// It returned an error.
    Error,
    /// It ran out of time.
    Timeout,
    /// Its result was rejected by the host.
    Rejected,
    /// It did not run.
    Skipped,
}

impl Outcome {
    /// The outcome a receipt records.
    pub const fn of(status: ReceiptStatus) -> Self {
        match status {
            ReceiptStatus::Ok | ReceiptStatus::Blocked => Self::Success,
            ReceiptStatus::Error => Self::Error,
            ReceiptStatus::Timeout => Self::Timeout,
            ReceiptStatus::Rejected => Self::Rejected,
            ReceiptStatus::Skipped => Self::Skipped,
        }
    }

    /// Whether it counts as a failure.
    pub const fn is_failure(self) -> bool {
        matches!(self, Self::Error | Self::Timeout | Self::Rejected)
    }
}

impl ExecutionStats {
    /// Adds one execution.
    pub fn add(&mut self, outcome: Outcome, duration: Duration) {
        if outcome == Outcome::Skipped {
            self.skipped_count += 1;
            return;
        }
        self.count += 1;
        match outcome {
            Outcome::Success => self.success_count += 1,
            Outcome::Error => self.error_count += 1,
            Outcome::Timeout => {
                self.error_count += 1;
                self.timeout_count += 1;
            }
            Outcome::Rejected => {
                self.error_count += 1;
                self.rejected_count += 1;
            }
            Outcome::Skipped => unreachable!("handled above"),
        }
        let ms = duration.as_secs_f64() * 1000.0;
        self.total_duration_ms += ms;
        self.max_duration_ms = self.max_duration_ms.max(ms);
        self.avg_duration_ms = self.total_duration_ms / self.count as f64;
    }
}

/// Memory figures, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryUsage {
    /// In use at the last sample.
    pub current_bytes: u64,
    /// The most any instance reached.
    pub peak_bytes: u64,
    /// Mean over the samples taken.
    pub average_bytes: f64,
}

/// CPU figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Share of one core between the last two samples, percent.
    pub current_percent: f64,
    /// The highest such share seen.
    pub peak_percent: f64,
    /// Total time executing plugin code, milliseconds.
    pub total_ms: f64,
    /// Fuel consumed, when the plugin runs with fuel metering.
    #[serde(default)]
    pub fuel_consumed: u64,
}

/// Instance figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceUsage {
    /// Live instances (busy or pooled).
    pub live: u64,
    /// Of those, idle in the warm pool.
    pub pooled: u64,
}

/// What a plugin keeps on the host, bytes and rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageUsage {
    /// Bytes of its KV keys and values.
    pub kv_bytes: u64,
    /// Its KV keys (rows).
    pub kv_keys: u64,
    /// Bytes of the files in its data directory.
    pub data_bytes: u64,
}

/// Disk figures, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskIo {
    /// Read.
    pub read_bytes: u64,
    /// Written.
    pub write_bytes: u64,
}

/// Network figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkIo {
    /// Received.
    pub bytes_in: u64,
    /// Sent.
    pub bytes_out: u64,
    /// Requests made.
    pub requests: u64,
}

/// Resource figures of a plugin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceUsage {
    /// Memory.
    pub memory: MemoryUsage,
    /// CPU.
    pub cpu: CpuUsage,
    /// Disk.
    pub disk_io: DiskIo,
    /// Network.
    pub network_io: NetworkIo,
    /// Instances.
    #[serde(default)]
    pub instances: InstanceUsage,
    /// KV and data directory.
    #[serde(default)]
    pub storage: StorageUsage,
    /// Whether the runtime figures (memory, CPU, instances, network) were
    /// sampled from the plugin running where these statistics were
    /// computed; when false they are zero and only `storage` is measured.
    #[serde(default)]
    pub live: bool,
}

/// Health figures of a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSnapshot {
    /// The status.
    pub status: HealthStatus,
    /// Why.
    pub reason: String,
    /// Executions, errors and timeouts in the health window.
    pub recent: RecentCounts,
    /// When the status was computed, milliseconds since the Unix epoch (absent
    /// when computed from stored receipts).
    pub last_check_ms: Option<u64>,
    /// Whether its runtime reports it started and ready; `None` when it does
    /// not run where this was computed.
    #[serde(default)]
    pub ready: Option<bool>,
    /// The last error its runtime saw, where it runs.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Time since the plugin was last started, milliseconds.
    pub uptime_ms: u64,
    /// Times the plugin was started again after its first start.
    pub restarts: u64,
}

/// A plugin's statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginStats {
    /// The plugin.
    pub plugin: String,
    /// Executions over all hooks and functions.
    pub execution: ExecutionStats,
    /// Per hook (and per function, as `call:NAME`, and per endpoint
    /// function, as `endpoint:NAME`).
    pub by_hook: BTreeMap<String, ExecutionStats>,
    /// Resources.
    pub resources: ResourceUsage,
    /// Health.
    pub health: HealthSnapshot,
}

impl PluginStats {
    /// Statistics of every plugin named in `receipts` (for example the
    /// receipts a registry stored), with health judged over the last
    /// `thresholds.window` of them by their position: receipts must be in the
    /// order they were produced, and `recent` says how many of the newest
    /// receipts fall in the health window (all, when unknown).
    pub fn from_receipts<'a>(
        receipts: impl IntoIterator<Item = &'a HookReceipt>,
        thresholds: &HealthThresholds,
        recent: Option<usize>,
    ) -> BTreeMap<String, PluginStats> {
        let receipts: Vec<&HookReceipt> = receipts.into_iter().collect();
        let recent_from = recent.map_or(0, |n| receipts.len().saturating_sub(n));
        let mut out: BTreeMap<String, (PluginStats, RecentCounts)> = BTreeMap::new();
        for (i, receipt) in receipts.iter().enumerate() {
            let (stats, counts) = out
                .entry(receipt.plugin.to_string())
                .or_insert_with(|| (PluginStats::empty(&receipt.plugin), RecentCounts::default()));
            let outcome = Outcome::of(receipt.status);
            stats.execution.add(outcome, receipt.duration);
            stats
                .by_hook
                .entry(receipt.hook.to_string())
                .or_default()
                .add(outcome, receipt.duration);
            if i >= recent_from && outcome != Outcome::Skipped {
                counts.executions += 1;
                counts.errors += u64::from(matches!(outcome, Outcome::Error | Outcome::Rejected));
                counts.timeouts += u64::from(outcome == Outcome::Timeout);
            }
        }
        out.into_iter()
            .map(|(plugin, (mut stats, counts))| {
                let (status, reason) = counts.judge(thresholds);
                stats.health.status = status;
                stats.health.reason = reason;
                stats.health.recent = counts;
                (plugin, stats)
            })
            .collect()
    }

    /// No executions yet.
    pub fn empty(plugin: &str) -> Self {
        Self {
            plugin: plugin.to_owned(),
            execution: ExecutionStats::default(),
            by_hook: BTreeMap::new(),
            resources: ResourceUsage::default(),
            health: HealthSnapshot {
                status: HealthStatus::Unknown,
                reason: "no executions yet".to_owned(),
                recent: RecentCounts::default(),
                last_check_ms: None,
                ready: None,
                last_error: None,
                uptime_ms: 0,
                restarts: 0,
            },
        }
    }
}

/// A sample of a plugin's resource figures, cumulative since it was loaded
/// (as the sandbox reports them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceSample {
    /// Linear memory in use now, bytes.
    pub memory_bytes: u64,
    /// The most one instance reached, bytes.
    pub memory_peak_bytes: u64,
    /// Live instances.
    pub instances: u64,
    /// Fuel consumed.
    pub fuel_consumed: u64,
    /// Time executing plugin code.
    pub cpu_time: Duration,
    /// Bytes read from disk.
    pub disk_read_bytes: u64,
    /// Bytes written to disk.
    pub disk_write_bytes: u64,
    /// HTTP requests.
    pub http_requests: u64,
    /// HTTP bytes sent.
    pub http_bytes_out: u64,
    /// HTTP bytes received.
    pub http_bytes_in: u64,
    /// Of the live instances, those idle in the warm pool.
    pub instances_pooled: u64,
    /// Bytes of its KV keys and values.
    pub kv_bytes: u64,
    /// Its KV keys.
    pub kv_keys: u64,
    /// Bytes of the files in its data directory.
    pub data_bytes: u64,
    /// Whether the runtime figures come from a running plugin (else only
    /// the storage figures are measured).
    pub live: bool,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tenon_hooks::{HandlerId, Uuid};

    use super::*;

    fn receipt(plugin: &str, hook: &str, status: ReceiptStatus, ms: u64) -> HookReceipt {
        HookReceipt {
            plugin: Arc::from(plugin),
            hook: Arc::from(hook),
            handler: serde_json::from_value::<HandlerId>(serde_json::json!(1)).expect("an id"),
            execution_id: Uuid::nil(),
            status,
            attempts: 1,
            duration: Duration::from_millis(ms),
            error: None,
            error_kind: None,
            changed_fields: vec![],
            skip_reason: None,
        }
    }

    #[test]
    fn stats_from_stored_receipts() {
        use ReceiptStatus::*;
        let receipts = [
            receipt("a/x", "h1", Ok, 10),
            receipt("a/x", "h1", Error, 30),
            receipt("a/x", "h2", Timeout, 1500),
            receipt("a/x", "h2", Skipped, 0),
            receipt("a/y", "h1", Blocked, 2),
        ];
        let stats = PluginStats::from_receipts(&receipts, &HealthThresholds::default(), None);
        let x = &stats["a/x"];
        assert_eq!(
            x.execution,
            ExecutionStats {
                count: 3,
                success_count: 1,
                error_count: 2,
                timeout_count: 1,
                rejected_count: 0,
                skipped_count: 1,
                avg_duration_ms: 1540.0 / 3.0,
                max_duration_ms: 1500.0,
                total_duration_ms: 1540.0,
            }
        );
        assert_eq!(x.by_hook["h2"].count, 1);
        assert_eq!(
            x.health.recent,
            RecentCounts {
                executions: 3,
                errors: 1,
                timeouts: 1
            }
        );
        assert_eq!(stats["a/y"].execution.success_count, 1);
    }
}
