//! Telemetry end to end: the exact metrics a sequence of receipts produces,
//! statistics and health, resources, and the crash guard on a paused clock.

use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use pretty_assertions::assert_eq;
use serde_json::json;
use tenon_hooks::{
    ErrorKind, HandlerError, HandlerId, HandlerOptions, HookAction, HookContext, HookDispatcher,
    HookReceipt, HookRegistry, HookSpec, ReceiptObserver, ReceiptStatus, Uuid, handler_fn,
};
use tenon_metrics::{
    CrashGuard, CrashGuardConfig, DisableDecision, Failure, FailureKind, HealthStatus,
    HostCounters, ResourceSample, Telemetry, TelemetryConfig,
};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

fn receipt(plugin: &str, hook: &str, status: ReceiptStatus, ms: u64, attempts: u32) -> HookReceipt {
    HookReceipt {
        plugin: Arc::from(plugin),
        hook: Arc::from(hook),
        handler: serde_json::from_value::<HandlerId>(json!(1)).expect("an id"),
        execution_id: Uuid::nil(),
        status,
        attempts,
        duration: Duration::from_millis(ms),
        error: status.is_failure().then(|| format!("{status} in {plugin}")),
        error_kind: match status {
            ReceiptStatus::Error => Some(ErrorKind::Handler),
            ReceiptStatus::Timeout => Some(ErrorKind::Timeout),
            _ => None,
        },
        changed_fields: vec![],
        skip_reason: None,
    }
}

/// Renders a snapshot as sorted lines, leaving out counters still at zero
/// (every status is registered up front) and empty histograms.
fn render(recorder: &DebuggingRecorder) -> Vec<String> {
    let mut lines: Vec<String> = recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            match value {
                DebugValue::Counter(0) => None,
                DebugValue::Counter(n) => Some(format!("counter {name} = {n}")),
                DebugValue::Gauge(g) => Some(format!("gauge {name} = {}", g.into_inner())),
                DebugValue::Histogram(v) if v.is_empty() => None,
                DebugValue::Histogram(v) => {
                    let v: Vec<String> = v.iter().map(|x| x.into_inner().to_string()).collect();
                    Some(format!("histogram {name} = [{}]", v.join(", ")))
                }
            }
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn a_sequence_of_receipts_emits_exactly_these_metrics() {
    use ReceiptStatus::*;
    let recorder = DebuggingRecorder::new();
    let telemetry = Telemetry::default();
    let context = HookContext::new("t1");
    metrics::with_local_recorder(&recorder, || {
        telemetry.on_receipts(
            &context,
            &[
                receipt("a/x", "h1", Ok, 10, 1),
                receipt("a/y", "h1", Timeout, 1500, 1),
                receipt("a/z", "h1", Skipped, 0, 0),
            ],
        );
        telemetry.on_receipts(
            &context,
            &[
                receipt("a/x", "h1", Error, 5, 3),
                receipt("a/x", "h2", Rejected, 2, 1),
                receipt("a/y", "h1", Blocked, 4, 1),
            ],
        );
    });
    let expected = [
        "counter tenon_hook_executions_total{hook=h1,plugin=a/x,status=error,tenant=t1} = 1",
        "counter tenon_hook_executions_total{hook=h1,plugin=a/x,status=ok,tenant=t1} = 1",
        "counter tenon_hook_executions_total{hook=h1,plugin=a/y,status=blocked,tenant=t1} = 1",
        "counter tenon_hook_executions_total{hook=h1,plugin=a/y,status=timeout,tenant=t1} = 1",
        "counter tenon_hook_executions_total{hook=h1,plugin=a/z,status=skipped,tenant=t1} = 1",
        "counter tenon_hook_executions_total{hook=h2,plugin=a/x,status=rejected,tenant=t1} = 1",
        "counter tenon_hook_retries_total{hook=h1,plugin=a/x,tenant=t1} = 2",
        "counter tenon_plugin_failures_total{kind=handler_error,plugin=a/x,tenant=t1} = 1",
        "counter tenon_plugin_failures_total{kind=timeout,plugin=a/y,tenant=t1} = 1",
        "gauge tenon_plugin_health{plugin=a/x,tenant=t1} = 0",
        "gauge tenon_plugin_health{plugin=a/y,tenant=t1} = 0",
        "gauge tenon_plugin_health{plugin=a/z,tenant=t1} = 0",
        "histogram tenon_hook_duration_seconds{hook=h1,plugin=a/x,tenant=t1} = [0.01, 0.005]",
        "histogram tenon_hook_duration_seconds{hook=h1,plugin=a/y,tenant=t1} = [1.5, 0.004]",
        "histogram tenon_hook_duration_seconds{hook=h2,plugin=a/x,tenant=t1} = [0.002]",
    ];
    assert_eq!(render(&recorder), expected);

    let x = telemetry.stats("t1", "a/x").expect("seen");
    assert_eq!(
        (
            x.execution.count,
            x.execution.success_count,
            x.execution.error_count
        ),
        (3, 1, 2)
    );
    assert_eq!(x.execution.rejected_count, 1);
    assert_eq!(x.by_hook["h1"].count, 2);
    assert_eq!(x.execution.max_duration_ms, 10.0);
    assert!(
        telemetry.stats("t2", "a/x").is_none(),
        "tenants are separate"
    );
}

#[test]
fn pruned_events_are_counted_per_tenant_and_rule() {
    let recorder = DebuggingRecorder::new();
    let telemetry = Telemetry::default();
    metrics::with_local_recorder(&recorder, || {
        telemetry.record_events_pruned("t1", "age", 10);
        telemetry.record_events_pruned("t1", "age", 2);
        telemetry.record_events_pruned("t1", "count", 3);
        telemetry.record_events_pruned("t2", "count", 0);
    });
    assert_eq!(
        render(&recorder),
        [
            "counter tenon_events_pruned_total{kind=age,tenant=t1} = 12",
            "counter tenon_events_pruned_total{kind=count,tenant=t1} = 3",
        ]
    );
}

#[test]
fn containment_counters_are_exported() {
    let recorder = DebuggingRecorder::new();
    let telemetry = Telemetry::default();
    metrics::with_local_recorder(&recorder, || {
        telemetry.record_chain_cut("t1", "a/x");
        telemetry.record_chain_cut("t1", "a/x");
        telemetry.record_denials_suppressed("t1", "a/y", 1997);
        // Absolute values: the latest wins (a zero is not shown).
        for (dropped, rejected) in [(3, 1), (7, 2)] {
            telemetry.record_host_counters(&HostCounters {
                events_written: 100,
                events_dropped: dropped,
                events_failed: 0,
                cache_rejections: rejected,
                instances_live: 5,
                instance_memory: 5 << 20,
                instances_reclaimed: 2,
                instance_cap_refusals: rejected,
            });
        }
        telemetry.record_tenant_instances("t1", 3, 3 << 20);
    });
    assert_eq!(
        render(&recorder),
        [
            "counter tenon_cache_rejections_total{} = 2",
            "counter tenon_event_chains_cut_total{plugin=a/x,tenant=t1} = 2",
            "counter tenon_events_dropped_total{} = 7",
            "counter tenon_instance_cap_refusals_total{} = 2",
            "counter tenon_instances_reclaimed_total{} = 2",
            "counter tenon_permission_denials_suppressed_total{plugin=a/y,tenant=t1} = 1997",
            "gauge tenon_instance_memory_bytes{tenant=t1} = 3145728",
            "gauge tenon_instance_memory_bytes{} = 5242880",
            "gauge tenon_instances_live{tenant=t1} = 3",
            "gauge tenon_instances_live{} = 5",
        ]
    );
}

#[test]
fn dispatch_and_resource_metrics() {
    let recorder = DebuggingRecorder::new();
    let telemetry = Telemetry::default();
    metrics::with_local_recorder(&recorder, || {
        telemetry.record_resources(
            "t1",
            "a/x",
            &ResourceSample {
                memory_bytes: 2 << 20,
                memory_peak_bytes: 3 << 20,
                instances: 2,
                fuel_consumed: 1000,
                cpu_time: Duration::from_millis(7),
                http_requests: 3,
                http_bytes_in: 300,
                http_bytes_out: 120,
                instances_pooled: 1,
                kv_bytes: 640,
                kv_keys: 4,
                data_bytes: 4096,
                live: true,
                ..ResourceSample::default()
            },
        );
    });
    let expected = [
        "counter tenon_plugin_cpu_microseconds_total{plugin=a/x,tenant=t1} = 7000",
        "counter tenon_plugin_fuel_consumed_total{plugin=a/x,tenant=t1} = 1000",
        "counter tenon_plugin_http_bytes_total{direction=in,plugin=a/x,tenant=t1} = 300",
        "counter tenon_plugin_http_bytes_total{direction=out,plugin=a/x,tenant=t1} = 120",
        "counter tenon_plugin_http_requests_total{plugin=a/x,tenant=t1} = 3",
        "gauge tenon_plugin_data_bytes{plugin=a/x,tenant=t1} = 4096",
        "gauge tenon_plugin_health{plugin=a/x,tenant=t1} = 0",
        "gauge tenon_plugin_instances_pooled{plugin=a/x,tenant=t1} = 1",
        "gauge tenon_plugin_instances{plugin=a/x,tenant=t1} = 2",
        "gauge tenon_plugin_kv_bytes{plugin=a/x,tenant=t1} = 640",
        "gauge tenon_plugin_kv_keys{plugin=a/x,tenant=t1} = 4",
        "gauge tenon_plugin_memory_bytes{plugin=a/x,tenant=t1} = 2097152",
        "gauge tenon_plugin_memory_peak_bytes{plugin=a/x,tenant=t1} = 3145728",
    ];
    assert_eq!(render(&recorder), expected);
    let usage = telemetry.stats("t1", "a/x").expect("seen").resources;
    assert_eq!(usage.memory.peak_bytes, 3 << 20);
    assert_eq!(usage.network_io.requests, 3);
    assert_eq!(usage.cpu.total_ms, 7.0);
    assert_eq!(usage.cpu.fuel_consumed, 1000);
    assert_eq!((usage.instances.live, usage.instances.pooled), (2, 1));
    assert_eq!(
        usage.storage,
        tenon_metrics::StorageUsage {
            kv_bytes: 640,
            kv_keys: 4,
            data_bytes: 4096
        }
    );
    assert!(usage.live);
}

#[tokio::test(start_paused = true)]
async fn cpu_share_uptime_and_restarts() {
    let telemetry = Telemetry::default();
    telemetry.plugin_started("t", "a/x");
    let sample = |cpu_ms| ResourceSample {
        cpu_time: Duration::from_millis(cpu_ms),
        ..ResourceSample::default()
    };
    telemetry.record_resources("t", "a/x", &sample(0));
    tokio::time::advance(Duration::from_secs(2)).await;
    telemetry.record_resources("t", "a/x", &sample(500));
    let stats = telemetry.stats("t", "a/x").expect("seen");
    assert_eq!(stats.resources.cpu.current_percent, 25.0);
    assert_eq!(stats.health.uptime_ms, 2000);
    assert_eq!(stats.health.restarts, 0);

    telemetry.plugin_stopped("t", "a/x");
    telemetry.plugin_started("t", "a/x");
    tokio::time::advance(Duration::from_millis(1500)).await;
    let health = telemetry.health("t", "a/x");
    assert_eq!((health.uptime_ms, health.restarts), (1500, 1));
}

fn guarded(config: CrashGuardConfig) -> (Telemetry, UnboundedReceiver<DisableDecision>) {
    let (tx, rx) = unbounded_channel();
    let telemetry = Telemetry::new(TelemetryConfig {
        guard: config,
        ..TelemetryConfig::default()
    })
    .with_sink(Arc::new(tx));
    (telemetry, rx)
}

fn fail(telemetry: &Telemetry, n: usize) {
    let context = HookContext::new("t");
    for _ in 0..n {
        telemetry.on_receipts(&context, &[receipt("a/x", "h", ReceiptStatus::Error, 1, 1)]);
    }
}

#[tokio::test(start_paused = true)]
async fn five_failures_in_five_minutes_disable_with_a_reason() {
    let (telemetry, mut decisions) = guarded(CrashGuardConfig::default());
    for _ in 0..4 {
        fail(&telemetry, 1);
        tokio::time::advance(Duration::from_secs(60)).await;
    }
    assert!(
        decisions.try_recv().is_err(),
        "four failures are not enough"
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    fail(&telemetry, 1);
    let decision = decisions.try_recv().expect("the fifth trips the guard");
    assert_eq!(
        decision.reason,
        "a/x failed 5 times in 4m 10s (threshold 5 in 5m); last failure: handler_error during h: error in a/x"
    );
    assert_eq!(
        (decision.failures, decision.threshold, decision.strikes),
        (5, 5, 0)
    );
    fail(&telemetry, 3);
    assert!(decisions.try_recv().is_err(), "one decision per trip");
    assert!(telemetry.guard_status("t", "a/x").tripped);
}

#[tokio::test(start_paused = true)]
async fn failures_outside_the_window_or_before_a_success_do_not_count() {
    let (telemetry, mut decisions) = guarded(CrashGuardConfig::default());
    fail(&telemetry, 4);
    telemetry.on_receipts(
        &HookContext::new("t"),
        &[receipt("a/x", "h", ReceiptStatus::Ok, 1, 1)],
    );
    fail(&telemetry, 4);
    assert!(decisions.try_recv().is_err(), "a success resets the count");
    assert_eq!(telemetry.guard_status("t", "a/x").failures_in_window, 4);

    tokio::time::advance(Duration::from_secs(301)).await;
    fail(&telemetry, 1);
    assert_eq!(telemetry.guard_status("t", "a/x").failures_in_window, 1);
    assert!(decisions.try_recv().is_err(), "old failures are forgotten");
}

#[tokio::test(start_paused = true)]
async fn a_reenabled_plugin_is_disabled_faster_until_forgiven() {
    let (telemetry, mut decisions) = guarded(CrashGuardConfig::default());
    fail(&telemetry, 5);
    assert_eq!(decisions.try_recv().expect("first trip").threshold, 5);

    telemetry.reenabled("t", "a/x");
    assert_eq!(telemetry.guard_status("t", "a/x").failures_in_window, 0);
    fail(&telemetry, 3);
    let second = decisions.try_recv().expect("second trip after three");
    assert_eq!((second.threshold, second.strikes), (3, 1));
    assert!(
        second.reason.contains("it was disabled once before"),
        "{}",
        second.reason
    );

    telemetry.reenabled("t", "a/x");
    fail(&telemetry, 2);
    assert_eq!(decisions.try_recv().expect("third trip").threshold, 2);

    // An hour of good behaviour after re-enabling forgives the strikes.
    telemetry.reenabled("t", "a/x");
    tokio::time::advance(Duration::from_secs(3600)).await;
    fail(&telemetry, 4);
    assert!(decisions.try_recv().is_err());
    fail(&telemetry, 1);
    assert_eq!(decisions.try_recv().expect("back to five").threshold, 5);
}

#[tokio::test(start_paused = true)]
async fn load_failures_and_calls_count_too() {
    let (telemetry, mut decisions) = guarded(CrashGuardConfig {
        threshold: 3,
        ..CrashGuardConfig::default()
    });
    telemetry.record_failure(
        "t",
        "a/x",
        Failure::new(FailureKind::Load, "load", "bad module"),
    );
    telemetry.record_call(
        "t",
        "a/x",
        "sync",
        Duration::from_millis(3),
        Some(&HandlerError::new("unreachable").with_kind(ErrorKind::Trap)),
    );
    telemetry.record_call(
        "t",
        "a/x",
        "sync",
        Duration::from_millis(1500),
        Some(&HandlerError::new("timed out").with_kind(ErrorKind::Timeout)),
    );
    let decision = decisions.try_recv().expect("three failures");
    assert_eq!(decision.last_failure.kind, FailureKind::Timeout);
    assert_eq!(decision.last_failure.during, "call:sync");
    let stats = telemetry.stats("t", "a/x").expect("seen");
    assert_eq!(stats.by_hook["call:sync"].count, 2);
    assert_eq!(stats.by_hook["call:sync"].timeout_count, 1);
}

#[test]
fn the_standalone_guard_follows_the_same_rules() {
    let guard = CrashGuard::new(CrashGuardConfig {
        threshold: 2,
        ..CrashGuardConfig::default()
    });
    let failure = || Failure::new(FailureKind::Trap, "h", "boom");
    assert!(guard.record_failure("t", "a/x", failure()).is_none());
    assert!(
        guard.record_failure("t", "a/y", failure()).is_none(),
        "plugins are separate"
    );
    let decision = guard
        .record_failure("t", "a/x", failure())
        .expect("trips at two");
    assert_eq!(decision.plugin, "a/x");
    guard.forget("t", "a/x");
    assert_eq!(guard.status("t", "a/x").failures_in_window, 0);
}

#[tokio::test(start_paused = true)]
async fn health_follows_recent_error_rates_of_real_dispatches() {
    let telemetry = Arc::new(Telemetry::default());
    let registry = HookRegistry::new();
    registry.declare(HookSpec::new("h")).expect("declared");
    let dispatcher = HookDispatcher::new(registry.clone());
    dispatcher.add_observer(telemetry.clone());
    let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = calls.clone();
    registry
        .register(
            "a/x",
            "h",
            handler_fn(move |_| {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n % 10 < 3 {
                    Err("every third of ten fails".into())
                } else {
                    Ok(HookAction::CONTINUE)
                }
            }),
            HandlerOptions::new(),
        )
        .expect("registered");
    let context = HookContext::new("t");
    for _ in 0..20 {
        let outcome = dispatcher
            .dispatch("h", &context, json!({}))
            .await
            .expect("dispatched");
        telemetry.record_dispatch("t", "h", &outcome);
    }
    let health = telemetry.health("t", "a/x");
    assert_eq!(health.status, HealthStatus::Critical, "{}", health.reason);
    assert_eq!(
        health.reason,
        "error rate 30% (6 of 20) over the last 5m is at or over the critical threshold 25%"
    );
    tokio::time::advance(Duration::from_secs(301)).await;
    let idle = telemetry.health("t", "a/x");
    assert_eq!(
        (idle.status, idle.reason.as_str()),
        (HealthStatus::Unknown, "no executions in the last 5m")
    );
    assert_eq!(telemetry.all_stats("t").len(), 1);
}

/// A trap in a hook is recorded as a trap (in the guard's decision and the
/// failure counter); a handler or a call that could not run through no
/// fault of the plugin (busy, not running, an export missing) never feeds
/// the guard, however often it happens, and does not clear its count either.
#[tokio::test(start_paused = true)]
async fn a_trap_is_a_trap_and_busy_is_not_the_plugins_fault() {
    let recorder = DebuggingRecorder::new();
    let snapshot = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let (telemetry, mut decisions) = guarded(CrashGuardConfig {
            threshold: 2,
            ..CrashGuardConfig::default()
        });
        let context = HookContext::new("t");
        let with_kind = |kind: ErrorKind| HookReceipt {
            error_kind: Some(kind),
            ..receipt("a/x", "h", ReceiptStatus::Error, 1, 1)
        };
        telemetry.on_receipts(&context, &[with_kind(ErrorKind::Trap)]);
        for _ in 0..10 {
            telemetry.on_receipts(&context, &[with_kind(ErrorKind::Unavailable)]);
            telemetry.record_call(
                "t",
                "a/x",
                "f",
                Duration::from_millis(1),
                Some(&HandlerError::new("busy").with_kind(ErrorKind::Unavailable)),
            );
        }
        assert!(decisions.try_recv().is_err(), "busy never trips the guard");
        assert_eq!(telemetry.guard_status("t", "a/x").failures_in_window, 1);
        telemetry.on_receipts(&context, &[with_kind(ErrorKind::Trap)]);
        let decision = decisions.try_recv().expect("two traps trip it");
        assert_eq!(decision.last_failure.kind, FailureKind::Trap);
        let stats = telemetry.stats("t", "a/x").expect("seen");
        assert_eq!(
            stats.execution.error_count, 22,
            "they are still failed executions"
        );
    });
    let values: Vec<(String, u64)> = snapshot
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) if n > 0 => {
                let key = key.key();
                let kind = key
                    .labels()
                    .find(|l| l.key() == "kind")
                    .map(|l| format!("{{kind={}}}", l.value()))
                    .unwrap_or_default();
                Some((format!("{}{kind}", key.name()), n))
            }
            _ => None,
        })
        .filter(|(name, _)| name.starts_with("tenon_plugin_"))
        .collect();
    let mut values = values;
    values.sort();
    assert_eq!(
        values,
        [
            ("tenon_plugin_auto_disabled_total".to_owned(), 1),
            ("tenon_plugin_failures_total{kind=trap}".to_owned(), 2),
            ("tenon_plugin_unavailable_total".to_owned(), 20),
        ]
    );
}

/// Failures another process stored are counted: the guard starts from them
/// (once, while its own count is empty), and the next failure here trips it.
#[tokio::test(start_paused = true)]
async fn the_guard_starts_from_failures_stored_elsewhere() {
    let (telemetry, mut decisions) = guarded(CrashGuardConfig::default());
    let ages = [
        Duration::from_secs(100),
        Duration::from_secs(30),
        Duration::from_secs(400),
    ];
    telemetry.seed_guard("t", "a/x", &ages);
    assert_eq!(
        telemetry.guard_status("t", "a/x").failures_in_window,
        2,
        "the failure older than the window is left out"
    );
    telemetry.seed_guard("t", "a/x", &ages);
    assert_eq!(
        telemetry.guard_status("t", "a/x").failures_in_window,
        2,
        "seeded once"
    );
    fail(&telemetry, 2);
    assert!(decisions.try_recv().is_err());
    fail(&telemetry, 1);
    assert_eq!(decisions.try_recv().expect("trips").failures, 5);
    tokio::time::advance(Duration::from_secs(200)).await;
    assert_eq!(
        telemetry.guard_status("t", "a/x").failures_in_window,
        4,
        "the oldest seeded one ages out"
    );
}
