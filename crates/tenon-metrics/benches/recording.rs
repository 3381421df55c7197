//! What recording costs a dispatch: the same dispatch with and without
//! [`Telemetry`] observing it (with a Prometheus recorder installed), for
//! no-op handlers (the worst case: nothing to hide the cost behind) and for
//! handlers that work about two microseconds each (a WebAssembly hook call).

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::json;
use tenon_hooks::{
    HandlerOptions, HookAction, HookContext, HookDispatcher, HookRegistry, HookSpec, handler_fn,
};
use tenon_metrics::{Telemetry, TelemetryConfig};

const HOOK: &str = "tool.pre_exec";

fn spin(work: Duration) {
    if work.is_zero() {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < work {
        black_box(());
    }
}

fn dispatcher(handlers: usize, work: Duration, telemetry: bool) -> HookDispatcher {
    let registry = HookRegistry::new();
    registry.declare(HookSpec::new(HOOK)).expect("declared");
    for i in 0..handlers {
        registry
            .register(
                &format!("bench/plugin-{i}"),
                HOOK,
                handler_fn(move |_| {
                    spin(work);
                    Ok(HookAction::CONTINUE)
                }),
                HandlerOptions::new(),
            )
            .expect("registered");
    }
    let dispatcher = HookDispatcher::new(registry);
    if telemetry {
        dispatcher.add_observer(Arc::new(Telemetry::new(TelemetryConfig::default())));
    }
    dispatcher
}

fn recording(c: &mut Criterion) {
    // The recorder Tenon ships for hosts: Prometheus, with histogram buckets.
    let handle = tenon_metrics::prometheus::install().expect("the only recorder");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let context = HookContext::new("default");
    let data = json!({"toolName": "read_file", "toolInput": {"path": "/tmp/x"}, "turn": 3});

    // No-op handlers (nothing to hide the cost behind) and handlers working
    // about as long as a WebAssembly hook call (~2 µs).
    for (label, work) in [("noop", Duration::ZERO), ("2us", Duration::from_micros(2))] {
        let mut group = c.benchmark_group(format!("dispatch_10_handlers_{label}"));
        for telemetry in [false, true] {
            let dispatcher = dispatcher(10, work, telemetry);
            let name = if telemetry {
                "with_telemetry"
            } else {
                "without"
            };
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| {
                    runtime
                        .block_on(dispatcher.dispatch(HOOK, &context, data.clone()))
                        .expect("dispatched")
                })
            });
        }
        group.finish();
    }
    // Keep the recorder's state bounded while measuring.
    handle.run_upkeep();
}

criterion_group!(benches, recording);
criterion_main!(benches);
