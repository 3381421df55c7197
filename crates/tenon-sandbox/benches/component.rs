//! The component runtime against its floors: raw wasmtime calls of the same
//! module through `bindgen!` bindings, with none of Tenon (no instance pool
//! or permits of ours, no permission boundary, no output capture, no stats,
//! no deadline bookkeeping).
//!
//! Two floors, both on an engine with the pooling settings Tenon uses
//! (copy-on-write memory images; on Linux 6.7+ memories reset through
//! `PAGEMAP_SCAN` with up to 1 MiB kept resident; tables kept resident; no
//! component-model concurrency support):
//! - `sync`: a synchronous typed call, no epochs: the least raw wasmtime can
//!   do;
//! - `async`: `call_async` on a fiber under an epoch deadline: what any
//!   embedding pays that offers async host functions (HTTP, KV) and stops
//!   runaway guests with epochs, as Tenon does.
//!
//! Groups:
//! - `hook_call`: a hook call with a ~100-byte JSON payload into a warm
//!   instance (target: under 1 µs);
//! - `fresh_instance`: a new instance per call, activated, then the hook
//!   call, then dropped (target: under 10 µs). Also: wasmtime's default
//!   pooling settings (each dropped memory is `madvise`d away, so the next
//!   instance page-faults on every page it touches), and a bare pooled
//!   instantiation without any call (the anchor's "2-7 µs");
//! - `load`: a cold load from the artifact cache, beside compiling the
//!   module (target: under 5 ms).

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use tenon_manifest::{Isolation, Manifest};
use tenon_sandbox::component::LoadSource;
use tenon_sandbox::{
    CallOptions, ComponentConfig, ComponentRuntime, HookCall, HookContextData, HookResponse,
    Plugin, Runtime,
};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use common::{context, request};

mod common;

/// Synchronous bindings (the `sync` floor).
mod floor {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../../wit/tenon-plugin-1.0.0",
    });
}

/// Async bindings (the `async` floor), as Tenon's, sharing the types.
mod floor_async {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../../wit/tenon-plugin-1.0.0",
        imports: { default: async },
        exports: { default: async },
        with: { "tenon:plugin/types": crate::floor::tenon::plugin::types },
    });
}

use floor::tenon::plugin::types::{HookContext, HostError, HttpRequest, HttpResponse, LogLevel};

/// ~100 bytes of JSON.
const PAYLOAD: &str = r#"{"message":{"id":"m-1024","text":"hello from the benchmark","tags":["a","b"]},"user":"u-7"}"#;

/// The floors' host: WASI and stub host functions.
struct Raw {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Raw {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl floor::tenon::plugin::types::Host for Raw {}

impl floor::tenon::plugin::host::Host for Raw {
    fn log(&mut self, _: LogLevel, _: String, _: Vec<(String, String)>) {}
    fn config_get(&mut self, _: String) -> Result<Option<String>, HostError> {
        Ok(None)
    }
    fn kv_get(&mut self, _: String) -> Result<Option<Vec<u8>>, HostError> {
        Ok(None)
    }
    fn kv_set(&mut self, _: String, _: Vec<u8>) -> Result<(), HostError> {
        Ok(())
    }
    fn kv_delete(&mut self, _: String) -> Result<(), HostError> {
        Ok(())
    }
    fn kv_list(&mut self, _: String) -> Result<Vec<String>, HostError> {
        Ok(vec![])
    }
    fn http_send(&mut self, _: HttpRequest) -> Result<HttpResponse, HostError> {
        Err(HostError::PermissionDenied("no".to_owned()))
    }
    fn emit_event(&mut self, _: String, _: String) -> Result<(), HostError> {
        Ok(())
    }
}

mod async_host {
    use super::{HostError, HttpRequest, HttpResponse, LogLevel, Raw};

    impl super::floor_async::tenon::plugin::host::Host for Raw {
        async fn log(&mut self, _: LogLevel, _: String, _: Vec<(String, String)>) {}
        async fn config_get(&mut self, _: String) -> Result<Option<String>, HostError> {
            Ok(None)
        }
        async fn kv_get(&mut self, _: String) -> Result<Option<Vec<u8>>, HostError> {
            Ok(None)
        }
        async fn kv_set(&mut self, _: String, _: Vec<u8>) -> Result<(), HostError> {
            Ok(())
        }
        async fn kv_delete(&mut self, _: String) -> Result<(), HostError> {
            Ok(())
        }
        async fn kv_list(&mut self, _: String) -> Result<Vec<String>, HostError> {
            Ok(vec![])
        }
        async fn http_send(&mut self, _: HttpRequest) -> Result<HttpResponse, HostError> {
            Err(HostError::PermissionDenied("no".to_owned()))
        }
        async fn emit_event(&mut self, _: String, _: String) -> Result<(), HostError> {
            Ok(())
        }
    }
}

/// A far-away epoch deadline for the `async` floor: its engine has no
/// ticker, so the check in every function prologue never fires.
const FAR_DEADLINE: u64 = 1 << 40;

fn raw_store(engine: &Engine) -> Store<Raw> {
    let mut store = Store::new(
        engine,
        Raw {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
        },
    );
    store.set_epoch_deadline(FAR_DEADLINE);
    store
}

/// The pooling settings of Tenon's engine (`src/component/engine.rs` and
/// `ComponentConfig::keep_resident`'s default).
fn tenon_pool() -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.table_keep_resident(64 << 10);
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(1 << 20);
    }
    pool
}

/// A pooling engine; `tuned` as Tenon's (plus `epochs`), otherwise with
/// wasmtime's defaults.
fn engine(tuned: bool, epochs: bool) -> Engine {
    let mut config = Config::new();
    if tuned {
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(tenon_pool()))
            .concurrency_support(false)
            .epoch_interruption(epochs);
    } else {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(
            PoolingAllocationConfig::new(),
        ));
    }
    Engine::new(&config).expect("a pooling engine")
}

fn sync_pre(engine: &Engine, module: &[u8]) -> floor::PluginPre<Raw> {
    let component = Component::new(engine, module).expect("the module compiles");
    let mut linker: Linker<Raw> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("WASI links");
    floor::Plugin::add_to_linker::<Raw, HasSelf<Raw>>(&mut linker, |r| r).expect("the host links");
    floor::PluginPre::new(linker.instantiate_pre(&component).expect("it links"))
        .expect("it is a plugin")
}

fn async_pre(engine: &Engine, module: &[u8]) -> floor_async::PluginPre<Raw> {
    let component = Component::new(engine, module).expect("the module compiles");
    let mut linker: Linker<Raw> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("WASI links");
    floor_async::Plugin::add_to_linker::<Raw, HasSelf<Raw>>(&mut linker, |r| r)
        .expect("the host links");
    floor_async::PluginPre::new(linker.instantiate_pre(&component).expect("it links"))
        .expect("it is a plugin")
}

fn echo() -> (Manifest, Vec<u8>) {
    let dir = tenon_build::examples_dir().join("echo");
    let built = tenon_build::build_plugin(&dir, &tenon_build::examples_build_options())
        .expect("the echo plugin builds");
    let module = built.module_bytes().expect("its module");
    (built.manifest, module)
}

fn raw_context() -> HookContext {
    let c = context();
    HookContext {
        execution_id: c.execution_id,
        tenant: c.tenant,
        user_id: c.user_id,
        session_id: c.session_id,
        timestamp_ms: c.timestamp_ms,
        state: c.state,
    }
}

/// A new instance of `pre` in `store`, activated with `{}`.
fn sync_activated(pre: &floor::PluginPre<Raw>, store: &mut Store<Raw>) -> floor::Plugin {
    let plugin = pre.instantiate(&mut *store).unwrap();
    plugin
        .tenon_plugin_guest()
        .call_activate(&mut *store, &"{}".to_owned())
        .unwrap()
        .unwrap();
    plugin
}

/// [`sync_activated`] for the `async` floor.
async fn async_activated(
    pre: &floor_async::PluginPre<Raw>,
    store: &mut Store<Raw>,
) -> floor_async::Plugin {
    let plugin = pre.instantiate_async(&mut *store).await.unwrap();
    plugin
        .tenon_plugin_guest()
        .call_activate(&mut *store, &"{}".to_owned())
        .await
        .unwrap()
        .unwrap();
    plugin
}

/// The hook call every benchmark makes, through Tenon.
async fn tenon_hook(plugin: &dyn Plugin, context: &HookContextData) -> HookResponse {
    plugin
        .handle_hook(HookCall {
            hook: "echo.noop",
            context,
            data: PAYLOAD,
            options: CallOptions::default(),
        })
        .await
        .unwrap()
}

fn benches(c: &mut Criterion) {
    let (manifest, module) = echo();
    let module: Arc<[u8]> = module.into();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let runtime = ComponentRuntime::new(ComponentConfig::default().with_cache_dir(cache.path()))
        .expect("a component runtime");
    println!(
        "allocator: {:?}; PAGEMAP_SCAN available: {}",
        runtime.allocator(),
        PoolingAllocationConfig::is_pagemap_scan_available()
    );

    let sync_engine = engine(true, false);
    let sync = sync_pre(&sync_engine, &module);
    let async_engine = engine(true, true);
    let asynchronous = async_pre(&async_engine, &module);
    let payload = PAYLOAD.to_owned();
    let hook = "echo.noop".to_owned();
    let raw_ctx = raw_context();
    let ctx = context();

    let mut group = c.benchmark_group("hook_call");
    {
        let mut store = raw_store(&sync_engine);
        let plugin = sync_activated(&sync, &mut store);
        let guest = plugin.tenon_plugin_guest();
        group.bench_function("floor: raw wasmtime, sync", |b| {
            b.iter(|| {
                guest
                    .call_handle_hook(&mut store, &hook, &raw_ctx, &payload)
                    .unwrap()
                    .unwrap()
            })
        });
    }
    {
        let mut store = raw_store(&async_engine);
        let plugin = rt.block_on(async_activated(&asynchronous, &mut store));
        let guest = plugin.tenon_plugin_guest();
        group.bench_function("floor: raw wasmtime, async + epoch", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        guest
                            .call_handle_hook(&mut store, &hook, &raw_ctx, &payload)
                            .await
                            .unwrap()
                            .unwrap();
                    }
                    start.elapsed()
                })
            })
        });
    }
    let warm = rt.block_on(async {
        let plugin = runtime.load(request(&manifest, &module)).await.unwrap();
        plugin.start(&serde_json::json!({})).await.unwrap();
        plugin
    });
    group.bench_function("tenon: Plugin::handle_hook (reuse)", |b| {
        b.to_async(&rt).iter(|| tenon_hook(&*warm, &ctx))
    });
    group.finish();

    let mut group = c.benchmark_group("fresh_instance");
    let default_engine = engine(false, false);
    let default_pre = sync_pre(&default_engine, &module);
    for (name, engine, pre) in [
        (
            "floor: raw wasmtime, sync, wasmtime's default pool",
            &default_engine,
            &default_pre,
        ),
        ("floor: raw wasmtime, sync", &sync_engine, &sync),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut store = raw_store(engine);
                sync_activated(pre, &mut store)
                    .tenon_plugin_guest()
                    .call_handle_hook(&mut store, &hook, &raw_ctx, &payload)
                    .unwrap()
                    .unwrap()
            })
        });
    }
    group.bench_function("floor: raw wasmtime, async + epoch", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut store = raw_store(&async_engine);
                    async_activated(&asynchronous, &mut store)
                        .await
                        .tenon_plugin_guest()
                        .call_handle_hook(&mut store, &hook, &raw_ctx, &payload)
                        .await
                        .unwrap()
                        .unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("floor: pooled instantiation and drop alone, sync", |b| {
        b.iter(|| {
            let mut store = raw_store(&sync_engine);
            sync.instantiate(&mut store).unwrap();
        })
    });
    let fresh = rt.block_on(async {
        let mut fresh_manifest = manifest.clone();
        fresh_manifest.limits.isolation = Isolation::Fresh;
        let plugin = runtime
            .load(request(&fresh_manifest, &module))
            .await
            .unwrap();
        plugin.start(&serde_json::json!({})).await.unwrap();
        plugin
    });
    group.bench_function("tenon: Plugin::handle_hook (fresh)", |b| {
        b.to_async(&rt).iter(|| tenon_hook(&*fresh, &ctx))
    });
    group.finish();
    drop((warm, fresh));

    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("floor: compile the module", |b| {
        b.iter(|| Component::new(&sync_engine, &module).unwrap())
    });
    group.bench_function("tenon: cold load from the artifact cache", |b| {
        b.to_async(&rt).iter(|| async {
            let plugin = runtime
                .load_component(request(&manifest, &module))
                .await
                .unwrap();
            assert_eq!(plugin.load_source(), LoadSource::Disk);
            // Dropping the plugin drops the in-memory entry: the next load
            // reads the disk cache again.
            drop(plugin);
        })
    });
    group.finish();
}

criterion_group!(component, benches);
criterion_main!(component);
