//! Native hook dispatch overhead, measured beside its floor in the same run.
//!
//! For n = 1, 10 and 100 no-op handlers:
//! - `floor/n`: a plain loop calling n boxed closures that do the handlers'
//!   work (look at the data, return `Continue`), on the same runtime, with the
//!   same per-iteration data clone;
//! - `dispatch/n`: `HookDispatcher::dispatch` by name through n registered
//!   handlers (ordering snapshot, budget, receipts, outcome);
//! - `hook_handle/n`: the same through a pre-resolved `Hook` handle.
//!
//! Per-handler overhead = (dispatch − floor) / n.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use tenon_hooks::{
    HandlerError, HandlerOptions, HookAction, HookContext, HookDispatcher, HookRegistry, HookSpec,
    handler_fn,
};

type Closure = Box<dyn Fn(&Value) -> Result<HookAction, HandlerError>>;

fn dispatch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let data = json!({"toolName": "read_file", "toolInput": {"path": "/tmp/x"}, "turn": 1});
    let context = HookContext::new("bench");
    let mut group = c.benchmark_group("native_dispatch");
    for n in [1usize, 10, 100] {
        let registry = HookRegistry::new();
        registry
            .declare(HookSpec::new("bench.noop"))
            .expect("declares");
        for i in 0..n {
            let handler = handler_fn(|call| {
                black_box(call.data);
                Ok(HookAction::CONTINUE)
            });
            registry
                .register(
                    &format!("plugin-{i:03}"),
                    "bench.noop",
                    handler,
                    HandlerOptions::new(),
                )
                .expect("registers");
        }
        let dispatcher = HookDispatcher::new(registry);
        let hook = dispatcher.hook("bench.noop").expect("declared");
        let closures: Vec<Closure> = (0..n)
            .map(|_| {
                Box::new(|data: &Value| {
                    black_box(data);
                    Ok(HookAction::CONTINUE)
                }) as Closure
            })
            .collect();

        group.bench_with_input(BenchmarkId::new("floor", n), &n, |b, _| {
            b.to_async(&runtime).iter(|| async {
                let data = data.clone();
                for f in &closures {
                    let _ = black_box(f(&data));
                }
                black_box(data)
            });
        });
        group.bench_with_input(BenchmarkId::new("dispatch", n), &n, |b, _| {
            b.to_async(&runtime).iter(|| async {
                let outcome = dispatcher
                    .dispatch("bench.noop", &context, data.clone())
                    .await;
                black_box(outcome.expect("declared"))
            });
        });
        group.bench_with_input(BenchmarkId::new("hook_handle", n), &n, |b, _| {
            b.to_async(&runtime)
                .iter(|| async { black_box(hook.dispatch(&context, data.clone()).await) });
        });
    }
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
