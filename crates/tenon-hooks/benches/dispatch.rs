//! Native hook dispatch overhead, measured beside its floor in the same run.
//!
//! For n = 1, 10 and 100 no-op handlers:
//! - `floor/n`: a plain loop calling n boxed closures that do the handlers'
//!   work (look at the data, return `Continue`), on the same runtime, with the
//!   same per-iteration data clone;
//! - `dispatch/n`: `HookDispatcher::dispatch` by name through n registered
//!   handlers (ordering snapshot, budget, one receipt per handler, outcome);
//! - `hook_handle/n`: the same through a pre-resolved `Hook` handle.
//!
//! Per-handler overhead = (dispatch − floor) / n.
//!
//! Every case runs twice: `native_dispatch` measures wall time (criterion's
//! default) and `native_dispatch_cpu` the benchmark thread's CPU time, which
//! leaves out the time the thread spent preempted and so stays meaningful on a
//! busy machine.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use tenon_hooks::{
    HandlerError, HandlerOptions, HookAction, HookContext, HookDispatcher, HookRegistry, HookSpec,
    handler_fn,
};

type Closure = Box<dyn Fn(&Value) -> Result<HookAction, HandlerError>>;

fn dispatch<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let data = json!({"toolName": "read_file", "toolInput": {"path": "/tmp/x"}, "turn": 1});
    let context = HookContext::new("bench");
    let mut group = c.benchmark_group(group);
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

/// The CPU time of the benchmark thread (the runtime is current-thread, so
/// every handler runs on it).
struct ThreadCpuTime;

static WALL: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = ThreadTime;
    type Value = Duration;

    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }

    fn end(&self, start: ThreadTime) -> Duration {
        start.elapsed()
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        // Nanoseconds, formatted like wall time.
        WALL.formatter()
    }
}

fn wall(c: &mut Criterion) {
    dispatch(c, "native_dispatch");
}

fn cpu(c: &mut Criterion<ThreadCpuTime>) {
    dispatch(c, "native_dispatch_cpu");
}

criterion_group!(wall_time, wall);
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = cpu
}
criterion_main!(wall_time, cpu_time);
