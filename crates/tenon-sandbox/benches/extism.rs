//! Tenon's Extism runtime beside bare Extism and the component runtime, on
//! the same logic: the echo plugin (`examples/plugins/extism-echo` and
//! `examples/plugins/echo`) with a ~100-byte payload.
//!
//! - `extism_call`: `echo`, bytes in and out, into a warm instance: bare
//!   `extism::Plugin::call` (the anchor: Tenon's path must cost at most 10%
//!   more), Tenon's Extism runtime with each [`CallThreading`], bare Extism
//!   behind a dedicated thread (the thread-hop design, for comparison), and
//!   the component runtime;
//! - `extism_hook`: a hook call (`echo.noop`), Tenon building the JSON input
//!   and reading the JSON answer, beside bare Extism calling `handle_hook`
//!   with ready-made input;
//! - `extism_fresh`: a new instance for every call;
//! - `extism_load`: loading the plugin in a new runtime, its compiled code
//!   read from the disk cache, beside compiling it;
//! - `extism_paired` (printed, not a criterion group): bare and Tenon calls
//!   interleaved, the medians of each; then Tenon's inline calls and its
//!   calls on the plugin-call threads (the default), interleaved the same
//!   way.
//!
//! Tenon's calls are made from a Tokio worker thread, as a host would make
//! them. Run: `cargo bench -p tenon-sandbox --features extism --bench extism`.

// criterion's macros define undocumented public functions.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Bencher, Criterion, criterion_group, criterion_main};
use tenon_manifest::{Isolation, Manifest};
use tenon_sandbox::{
    CallOptions, CallThreading, ComponentConfig, ComponentRuntime, ExtismConfig, ExtismRuntime,
    HookCall, HookContextData, Plugin, Runtime,
};
use tokio::runtime::Runtime as Tokio;

use common::{context, request};

mod common;

/// ~100 bytes of JSON.
const PAYLOAD: &str = r#"{"message":{"id":"m-1024","text":"hello from the benchmark","tags":["a","b"]},"user":"u-7"}"#;

fn built(package: &str) -> (Manifest, Arc<[u8]>) {
    let plugin = tenon_build::ensure_examples_built().expect(package);
    let module = plugin.module_bytes().expect("the built module");
    (plugin.manifest.clone(), module.into())
}

/// Loads and starts a plugin.
fn start(
    tokio: &Tokio,
    runtime: &dyn Runtime,
    manifest: &Manifest,
    module: &Arc<[u8]>,
) -> Arc<dyn Plugin> {
    tokio.block_on(async {
        let plugin = runtime.load(request(manifest, module)).await.unwrap();
        plugin.start(&serde_json::json!({})).await.unwrap();
        plugin
    })
}

/// Times `iters` calls made one after the other by a task on a worker
/// thread of `tokio`.
fn on_worker<F, Fut>(b: &mut Bencher<'_>, tokio: &Tokio, call: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future + Send,
{
    b.iter_custom(|iters| {
        let call = call.clone();
        tokio.block_on(async move {
            tokio::spawn(async move {
                let started = Instant::now();
                for _ in 0..iters {
                    black_box(call().await);
                }
                started.elapsed()
            })
            .await
            .unwrap()
        })
    });
}

/// Times `iters` bare Extism calls of `function`, on a worker thread of
/// `tokio` like Tenon's calls (the plugin moves to the worker and back).
fn bare_on_worker(
    b: &mut Bencher<'_>,
    tokio: &Tokio,
    plugin: &mut Option<extism::Plugin>,
    function: &'static str,
    input: &[u8],
) {
    b.iter_custom(|iters| {
        let mut bare = plugin.take().expect("the bare plugin is back");
        let input = input.to_vec();
        let (elapsed, bare) = tokio.block_on(async move {
            tokio::spawn(async move {
                let started = Instant::now();
                for _ in 0..iters {
                    black_box(
                        bare.call::<&[u8], Vec<u8>>(function, black_box(&input))
                            .unwrap(),
                    );
                }
                (started.elapsed(), bare)
            })
            .await
            .unwrap()
        });
        *plugin = Some(bare);
        elapsed
    });
}

/// Times `iters` calls of `echo` into `plugin`, made one after the other by a
/// task on a worker thread of `tokio` (as a host holding the plugin makes
/// them: no clone per call).
fn echo_on_worker(b: &mut Bencher<'_>, tokio: &Tokio, plugin: &Arc<dyn Plugin>) {
    b.iter_custom(|iters| {
        let plugin = plugin.clone();
        tokio.block_on(async move {
            tokio::spawn(async move {
                let started = Instant::now();
                for _ in 0..iters {
                    let output = plugin.call(
                        "echo",
                        black_box(PAYLOAD.as_bytes()),
                        CallOptions::default(),
                    );
                    black_box(output.await.unwrap());
                }
                started.elapsed()
            })
            .await
            .unwrap()
        })
    });
}

/// Times `iters` `echo.noop` hook calls into `plugin`, like
/// [`echo_on_worker`].
fn hook_on_worker(b: &mut Bencher<'_>, tokio: &Tokio, plugin: &Arc<dyn Plugin>) {
    b.iter_custom(|iters| {
        let plugin = plugin.clone();
        tokio.block_on(async move {
            tokio::spawn(async move {
                let context = context();
                let started = Instant::now();
                for _ in 0..iters {
                    let response = plugin.handle_hook(HookCall {
                        hook: "echo.noop",
                        context: &context,
                        data: black_box(PAYLOAD),
                        options: CallOptions::default(),
                    });
                    black_box(response.await.unwrap());
                }
                started.elapsed()
            })
            .await
            .unwrap()
        })
    });
}

/// Bare Extism behind a thread of its own: each call is a message to the
/// thread and a reply.
type Request = (Vec<u8>, tokio::sync::oneshot::Sender<Vec<u8>>);

async fn thread_once(thread: std::sync::mpsc::Sender<Request>) -> Vec<u8> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    thread.send((PAYLOAD.as_bytes().to_vec(), reply)).unwrap();
    answer.await.unwrap()
}

fn bare_plugin(module: &[u8]) -> extism::Plugin {
    extism::PluginBuilder::new(module)
        .with_wasi(false)
        .with_cache_disabled()
        .build()
        .expect("bare Extism loads the echo plugin")
}

fn dedicated_thread(module: &[u8]) -> std::sync::mpsc::Sender<Request> {
    let (tx, rx) = std::sync::mpsc::channel::<Request>();
    let mut plugin = bare_plugin(module);
    std::thread::spawn(move || {
        for (input, reply) in rx {
            let output = plugin.call::<&[u8], Vec<u8>>("echo", &input).unwrap();
            let _ = reply.send(output);
        }
    });
    tx
}

fn extism_runtime(threading: CallThreading, cache: &std::path::Path) -> ExtismRuntime {
    ExtismRuntime::new(
        ExtismConfig::default()
            .with_cache_dir(cache)
            .with_threading(threading),
    )
}

fn benches(c: &mut Criterion) {
    let (extism_manifest, extism_module) = built("extism-echo");
    let (component_manifest, component_module) = built("echo");
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let component = ComponentRuntime::new(
        ComponentConfig::default().with_cache_dir(cache.path().join("component")),
    )
    .expect("a component runtime");
    let threadings = [
        ("inline", CallThreading::Inline),
        ("dedicated", CallThreading::Dedicated),
        ("block_in_place", CallThreading::BlockInPlace),
        ("spawn_blocking", CallThreading::SpawnBlocking),
    ];
    let plugins: Vec<(&str, Arc<dyn Plugin>)> = threadings
        .iter()
        .map(|(name, threading)| {
            let runtime = extism_runtime(*threading, cache.path());
            (
                *name,
                start(&tokio, &runtime, &extism_manifest, &extism_module),
            )
        })
        .collect();
    let component_echo = start(&tokio, &component, &component_manifest, &component_module);

    let mut group = c.benchmark_group("extism_call");
    let mut bare = Some(bare_plugin(&extism_module));
    group.bench_function("anchor: bare extism::Plugin::call", |b| {
        bare_on_worker(b, &tokio, &mut bare, "echo", PAYLOAD.as_bytes())
    });
    for (name, plugin) in &plugins {
        group.bench_function(format!("tenon extism: Plugin::call ({name})"), |b| {
            echo_on_worker(b, &tokio, plugin)
        });
    }
    let thread = dedicated_thread(&extism_module);
    group.bench_function("bare extism on a dedicated thread", |b| {
        let thread = thread.clone();
        on_worker(b, &tokio, move || thread_once(thread.clone()))
    });
    group.bench_function("tenon component: Plugin::call", |b| {
        echo_on_worker(b, &tokio, &component_echo)
    });
    group.finish();

    let mut group = c.benchmark_group("extism_hook");
    let context = context();
    let hook_input = hook_input(&context);
    group.bench_function("anchor: bare extism handle_hook, ready-made input", |b| {
        bare_on_worker(b, &tokio, &mut bare, "handle_hook", hook_input.as_bytes())
    });
    group.bench_function("tenon extism: Plugin::handle_hook (inline)", |b| {
        hook_on_worker(b, &tokio, &plugins[0].1)
    });
    group.bench_function("tenon component: Plugin::handle_hook", |b| {
        hook_on_worker(b, &tokio, &component_echo)
    });
    group.finish();

    paired(
        &tokio,
        bare_plugin(&extism_module),
        plugins[0].1.clone(),
        plugins[1].1.clone(),
    );

    let mut group = c.benchmark_group("extism_fresh");
    group.measurement_time(Duration::from_secs(3));
    let compiled = extism::PluginBuilder::new(&*extism_module)
        .with_wasi(false)
        .with_cache_disabled()
        .compile()
        .unwrap();
    group.bench_function("anchor: bare Plugin::new_from_compiled + call", |b| {
        b.iter(|| {
            let mut plugin = extism::Plugin::new_from_compiled(&compiled).unwrap();
            plugin
                .call::<&[u8], Vec<u8>>("echo", PAYLOAD.as_bytes())
                .unwrap()
        })
    });
    let mut fresh_manifest = extism_manifest.clone();
    fresh_manifest.limits.isolation = Isolation::Fresh;
    let fresh_runtime = extism_runtime(CallThreading::Inline, cache.path());
    let fresh = start(&tokio, &fresh_runtime, &fresh_manifest, &extism_module);
    group.bench_function("tenon extism: Plugin::call (fresh)", |b| {
        echo_on_worker(b, &tokio, &fresh)
    });
    let mut fresh_component = component_manifest.clone();
    fresh_component.limits.isolation = Isolation::Fresh;
    let fresh_component = start(&tokio, &component, &fresh_component, &component_module);
    group.bench_function("tenon component: Plugin::call (fresh)", |b| {
        echo_on_worker(b, &tokio, &fresh_component)
    });
    group.finish();

    let mut group = c.benchmark_group("extism_load");
    group.sample_size(10);
    group.bench_function("anchor: compile the module (bare Extism, no cache)", |b| {
        b.iter(|| {
            extism::PluginBuilder::new(&*extism_module)
                .with_wasi(false)
                .with_cache_disabled()
                .compile()
                .unwrap()
        })
    });
    group.bench_function("tenon extism: load, engine from the disk cache", |b| {
        b.iter(|| {
            // A new runtime: no engine in memory, the artifact on disk.
            let runtime = extism_runtime(CallThreading::Inline, cache.path());
            tokio
                .block_on(runtime.load(request(&extism_manifest, &extism_module)))
                .unwrap()
        })
    });
    group.finish();
}

/// Bare Extism and Tenon's Extism runtime, call for call, then Tenon's
/// inline calls and its calls on the plugin-call threads: pairs of one call
/// of each (each first in every other pair), on the same worker thread, many
/// times; the medians of the two, which a busy machine disturbs much less
/// than it disturbs two benchmarks run one after the other.
fn paired(
    tokio: &Tokio,
    mut bare: extism::Plugin,
    inline: Arc<dyn Plugin>,
    dedicated: Arc<dyn Plugin>,
) {
    let (bare, tenon) = tokio.block_on(async {
        let inline = inline.clone();
        tokio::spawn(async move {
            alternate(
                || {
                    let output = bare.call::<&[u8], &[u8]>("echo", black_box(PAYLOAD.as_bytes()));
                    black_box(output.unwrap());
                    std::future::ready(())
                },
                || echo_once(&inline),
            )
            .await
        })
        .await
        .unwrap()
    });
    let overhead = (tenon.as_secs_f64() / bare.as_secs_f64() - 1.0) * 100.0;
    println!(
        "extism_paired: {ROUNDS} alternating echo calls, medians: bare extism {bare:?}, \
         tenon extism (inline) {tenon:?}, overhead {overhead:+.1}%"
    );
    let (here, off) = tokio.block_on(async move {
        tokio::spawn(
            async move { alternate(|| echo_once(&inline), || echo_once(&dedicated)).await },
        )
        .await
        .unwrap()
    });
    let ratio = off.as_secs_f64() / here.as_secs_f64();
    println!(
        "extism_paired_threading: {ROUNDS} alternating echo calls, medians: tenon extism \
         inline {here:?}, dedicated (plugin-call threads) {off:?}, {ratio:.2}x inline"
    );
}

/// Rounds of [`alternate`].
const ROUNDS: usize = 100_000;

/// One `echo` call into `plugin`.
async fn echo_once(plugin: &Arc<dyn Plugin>) {
    let output = plugin.call(
        "echo",
        black_box(PAYLOAD.as_bytes()),
        CallOptions::default(),
    );
    black_box(output.await.unwrap());
}

/// The median times of `a` and `b`, called in alternation, each first in
/// every other round: whatever the first call of a pair leaves behind (a
/// woken thread, warm caches) falls on both alike.
async fn alternate<A, FA, B, FB>(mut a: A, mut b: B) -> (Duration, Duration)
where
    A: FnMut() -> FA,
    FA: Future<Output = ()>,
    B: FnMut() -> FB,
    FB: Future<Output = ()>,
{
    let mut a_times = Vec::with_capacity(ROUNDS);
    let mut b_times = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        for b_turn in [round % 2 == 1, round % 2 == 0] {
            let started = Instant::now();
            if b_turn {
                b().await;
                b_times.push(started.elapsed());
            } else {
                a().await;
                a_times.push(started.elapsed());
            }
        }
    }
    let median = |times: &mut Vec<Duration>| {
        times.sort_unstable();
        times[times.len() / 2]
    };
    (median(&mut a_times), median(&mut b_times))
}

/// What Tenon sends to `handle_hook` for `echo.noop` with [`PAYLOAD`].
fn hook_input(context: &HookContextData) -> String {
    serde_json::json!({
        "hook": "echo.noop",
        "context": {
            "execution_id": context.execution_id,
            "tenant": context.tenant,
            "user_id": context.user_id,
            "session_id": context.session_id,
            "timestamp_ms": context.timestamp_ms,
            "state": {},
        },
        "data": serde_json::from_str::<serde_json::Value>(PAYLOAD).unwrap(),
    })
    .to_string()
}

criterion_group!(extism, benches);
criterion_main!(extism);
