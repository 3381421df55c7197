//! The component runtime against its floor: a raw wasmtime call of the same
//! module (typed `bindgen!` call on a plain instance: no pool of ours, no
//! epoch deadline, no permission boundary, no stats).
//!
//! - `hook_call`: a hook call with a ~100-byte JSON payload into a warm
//!   instance (target: under 1 µs);
//! - `fresh_instance`: a new instance per call, activated, then the hook
//!   call (target: under 10 µs);
//! - `load`: a cold load from the artifact cache, beside compiling the
//!   module (target: under 5 ms).

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tenon_manifest::{Isolation, Manifest};
use tenon_sandbox::component::LoadSource;
use tenon_sandbox::{
    CallOptions, Caller, ComponentConfig, ComponentRuntime, HookCall, HookContextData, LoadRequest,
    MemoryHost, Runtime,
};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

mod floor {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../../wit/tenon-plugin-1.0.0",
    });
}

use floor::tenon::plugin::types::{HookContext, HostError, HttpRequest, HttpResponse, LogLevel};

/// ~100 bytes of JSON.
const PAYLOAD: &str = r#"{"message":{"id":"m-1024","text":"hello from the benchmark","tags":["a","b"]},"user":"u-7"}"#;

/// The floor's host: WASI and stub host functions.
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

fn raw_store(engine: &Engine) -> Store<Raw> {
    Store::new(
        engine,
        Raw {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
        },
    )
}

fn echo() -> (Manifest, Vec<u8>) {
    let dir = tenon_build::examples_dir().join("echo");
    let built = tenon_build::build_plugin(&dir, &tenon_build::examples_build_options())
        .expect("the echo plugin builds");
    let module = built.module_bytes().expect("its module");
    (built.manifest, module)
}

fn request(manifest: &Manifest, module: &Arc<[u8]>) -> LoadRequest {
    let host = Arc::new(MemoryHost::new());
    LoadRequest {
        caller: Arc::new(Caller {
            plugin: manifest.plugin.id.clone(),
            version: manifest.plugin.version.clone(),
            tenant: "bench".to_owned(),
            permissions: Arc::new(manifest.permissions.clone()),
        }),
        manifest: Arc::new(manifest.clone()),
        module: module.clone(),
        host: host.clone(),
        observer: host,
        data_dir: None,
    }
}

fn context() -> HookContextData {
    HookContextData {
        execution_id: "exec-1".to_owned(),
        tenant: "bench".to_owned(),
        user_id: Some("u-7".to_owned()),
        session_id: None,
        timestamp_ms: 1,
        state: "{}".to_owned(),
    }
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
    println!("allocator: {:?}", runtime.allocator());

    // The floor: a plain engine (same allocator kind, no epochs).
    let mut config = Config::new();
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(
        PoolingAllocationConfig::new(),
    ));
    let engine = Engine::new(&config).unwrap();
    let component = Component::new(&engine, &module).unwrap();
    let mut linker: Linker<Raw> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    floor::Plugin::add_to_linker::<Raw, HasSelf<Raw>>(&mut linker, |r| r).unwrap();
    let pre = floor::PluginPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    let config_json = "{}".to_owned();
    let payload = PAYLOAD.to_owned();
    let raw_ctx = raw_context();
    let ctx = context();

    let mut group = c.benchmark_group("hook_call");
    {
        let mut store = raw_store(&engine);
        let plugin = pre.instantiate(&mut store).unwrap();
        let guest = plugin.tenon_plugin_guest();
        guest
            .call_activate(&mut store, &config_json)
            .unwrap()
            .unwrap();
        group.bench_function("floor: raw wasmtime typed call", |b| {
            b.iter(|| {
                guest
                    .call_handle_hook(&mut store, "echo.noop", &raw_ctx, &payload)
                    .unwrap()
                    .unwrap()
            })
        });
    }
    let warm = rt.block_on(async {
        let plugin = runtime.load(request(&manifest, &module)).await.unwrap();
        plugin.start(&serde_json::json!({})).await.unwrap();
        plugin
    });
    group.bench_function("tenon: Plugin::handle_hook (reuse)", |b| {
        b.to_async(&rt).iter(|| async {
            warm.handle_hook(HookCall {
                hook: "echo.noop",
                context: &ctx,
                data: PAYLOAD,
                options: CallOptions::default(),
            })
            .await
            .unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("fresh_instance");
    group.bench_function("floor: raw instantiate + activate + call", |b| {
        b.iter(|| {
            let mut store = raw_store(&engine);
            let plugin = pre.instantiate(&mut store).unwrap();
            let guest = plugin.tenon_plugin_guest();
            guest
                .call_activate(&mut store, &config_json)
                .unwrap()
                .unwrap();
            guest
                .call_handle_hook(&mut store, "echo.noop", &raw_ctx, &payload)
                .unwrap()
                .unwrap()
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
        b.to_async(&rt).iter(|| async {
            fresh
                .handle_hook(HookCall {
                    hook: "echo.noop",
                    context: &ctx,
                    data: PAYLOAD,
                    options: CallOptions::default(),
                })
                .await
                .unwrap()
        })
    });
    group.finish();
    drop((warm, fresh));

    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("floor: compile the module", |b| {
        b.iter(|| Component::new(&engine, &module).unwrap())
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
