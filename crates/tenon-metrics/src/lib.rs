//! Measurement of plugins: what each one costs, whether it is healthy, and
//! when it must be stopped.
//!
//! This crate owns:
//! - instrumentation through the [`metrics`] facade (counters, histograms and
//!   gauges labelled by tenant, plugin and hook; names in [`names`]) and
//!   [`tracing`] (spans from [`trace`], one event per handler), fed by hook
//!   receipts and by the sandbox's resource figures ([`ResourceSample`]);
//! - per-plugin statistics ([`PluginStats`], the fields of the reference
//!   spec's `PluginMetrics`), kept in memory by [`Telemetry`] and computable
//!   from stored receipts with [`PluginStats::from_receipts`] (for one-shot
//!   tools such as `tenon stats`);
//! - health ([`HealthStatus`]: unknown below a sample threshold, then
//!   healthy, warning or critical) from recent error and timeout rates, with
//!   thresholds in [`HealthThresholds`];
//! - the crash guard ([`CrashGuardConfig`], [`GuardState`], [`CrashGuard`]):
//!   failures in a sliding window (5 in 5 minutes by default), reset by a
//!   success, with a lower threshold for plugins that were disabled before,
//!   and a [`DisableDecision`] with its reason for every trip; it can start
//!   from failures stored by other processes ([`Telemetry::seed_guard`]);
//! - a Prometheus exporter behind the `prometheus` feature.
//!
//! It decides; it never acts: the engine disables a plugin when the guard's
//! [`DecisionSink`] tells it to. It observes hooks through
//! [`tenon_hooks::ReceiptObserver`] and knows nothing of how plugins run or
//! where receipts are stored.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use tenon_hooks::{handler_fn, HandlerOptions, HookAction, HookContext, HookDispatcher, HookRegistry, HookSpec};
//! use tenon_metrics::{HealthStatus, Telemetry, TelemetryConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tenon_hooks::HookError> {
//! let (decisions, mut disable) = tokio::sync::mpsc::unbounded_channel();
//! let telemetry = Arc::new(Telemetry::new(TelemetryConfig::default()).with_sink(Arc::new(decisions)));
//!
//! let registry = HookRegistry::new();
//! registry.declare(HookSpec::new("response.pre_deliver"))?;
//! registry.register(
//!     "acme/flaky",
//!     "response.pre_deliver",
//!     handler_fn(|_| Err("upstream is down".into())),
//!     HandlerOptions::new(),
//! )?;
//! let dispatcher = HookDispatcher::new(registry);
//! dispatcher.add_observer(telemetry.clone());
//!
//! let context = HookContext::new("default");
//! for _ in 0..5 {
//!     dispatcher.dispatch("response.pre_deliver", &context, serde_json::json!({})).await?;
//! }
//! let stats = telemetry.stats("default", "acme/flaky").expect("seen");
//! assert_eq!(stats.execution.error_count, 5);
//! // Five failures in a row within five minutes: the guard wants it disabled.
//! let decision = disable.try_recv().expect("a decision");
//! assert!(decision.reason.starts_with("acme/flaky failed 5 times"));
//! # Ok(())
//! # }
//! ```

mod guard;
mod health;
pub mod names;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod stats;
mod telemetry;
pub mod trace;

pub use guard::{
    CrashGuard, CrashGuardConfig, DecisionSink, DisableDecision, Failure, FailureKind, GuardState,
    GuardStatus, Trip,
};
pub use health::{HealthStatus, HealthThresholds, RecentCounts};
pub use stats::{
    CpuUsage, DiskIo, ExecutionStats, HealthSnapshot, InstanceUsage, MemoryUsage, NetworkIo,
    Outcome, PluginStats, ResourceSample, ResourceUsage, StorageUsage,
};
pub use telemetry::{HostCounters, Telemetry, TelemetryConfig};
