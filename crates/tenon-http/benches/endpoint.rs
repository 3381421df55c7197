//! A plugin's endpoint beside a plain axum handler, over loopback HTTP/1.1
//! with keep-alive, both served by the same accept loop (`tenon-serve`).
//!
//! - `endpoint/axum_handler`: `GET /hello` answered by an axum handler
//!   returning a fixed 13-byte body (the anchor);
//! - `endpoint/plugin_native`: `GET /plugins/bench/hello/hello` answered by
//!   a native plugin returning the same body, through route lookup, header
//!   filtering, the engine's call path (telemetry, crash guard) and the
//!   answer checks;
//! - `endpoint/plugin_native_x16`: 16 such requests at once on 16
//!   connections, per batch (throughput under concurrency), beside
//!   `endpoint/axum_handler_x16`.
//!
//! Each figure is the time of one request (or one batch of 16) made from a
//! reqwest client in the same process; requests per second is its inverse.
//! Run: `cargo bench -p tenon-http --bench endpoint`.

// criterion's macros define undocumented public functions.
#![allow(missing_docs)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tenon_engine::{
    EndpointRequest, EndpointResponse, HostPlugin, NativeContext, NativePlugin, NativeRuntime,
    PluginEngine, PluginError, PluginId,
};
use tenon_http::{ConnectionLimits, HttpConfig};

const BODY: &[u8] = b"hello, world!";

struct Hello;

#[async_trait::async_trait]
impl NativePlugin for Hello {
    async fn activate(
        &self,
        _cx: &NativeContext,
        _config: &serde_json::Value,
    ) -> Result<(), PluginError> {
        Ok(())
    }

    async fn handle_request(
        &self,
        _cx: &NativeContext,
        _request: &EndpointRequest,
    ) -> Result<EndpointResponse, PluginError> {
        Ok(EndpointResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: BODY.to_vec(),
        })
    }
}

const MANIFEST: &str = r#"
manifest_version = 1
[plugin]
id = "bench/hello"
name = "Hello"
version = "1.0.0"
description = "Answers one endpoint."
[engine]
tenon = "^1.0"
[runtime]
kind = "native"
entry = "hello"
[limits]
max_instances = 64
[[endpoints]]
path = "/hello"
method = "GET"
function = "hello"
"#;

async fn plain_server() -> String {
    let app = axum::Router::new().route(
        "/hello",
        axum::routing::get(|| async { ([("content-type", "text/plain")], BODY) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tenon_serve::serve(
        app,
        listener,
        ConnectionLimits::default(),
        std::future::pending(),
    ));
    format!("http://{addr}/hello")
}

async fn plugin_server(dir: &std::path::Path) -> String {
    let native = Arc::new(NativeRuntime::new(Default::default()));
    native.register("hello", || Hello);
    let engine = PluginEngine::builder()
        .registry("memory:")
        .data_dir(dir)
        .native_runtime(native)
        .build()
        .await
        .unwrap();
    engine.install(HostPlugin::native(MANIFEST)).await.unwrap();
    engine
        .enable(&PluginId::new("bench/hello").unwrap())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tenon_http::serve(
        engine,
        HttpConfig::default(),
        listener,
        std::future::pending(),
    ));
    format!("http://{addr}/plugins/bench/hello/hello")
}

async fn get(http: &reqwest::Client, url: &str) {
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(&response.bytes().await.unwrap()[..], BODY);
}

fn benches(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (plain, plugin) =
        tokio.block_on(async { (plain_server().await, plugin_server(dir.path()).await) });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(32)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("endpoint");
    group.bench_function("axum_handler", |b| {
        b.to_async(&tokio).iter(|| get(&http, &plain));
    });
    group.bench_function("plugin_native", |b| {
        b.to_async(&tokio).iter(|| get(&http, &plugin));
    });
    group.bench_function("axum_handler_x16", |b| {
        b.to_async(&tokio)
            .iter(|| futures::future::join_all((0..16).map(|_| get(&http, &plain))));
    });
    group.bench_function("plugin_native_x16", |b| {
        b.to_async(&tokio)
            .iter(|| futures::future::join_all((0..16).map(|_| get(&http, &plugin))));
    });
    group.finish();
}

criterion_group!(endpoint, benches);
criterion_main!(endpoint);
