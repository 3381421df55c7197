//! Registry throughput, backend beside backend in one run:
//!
//! - `event_append/<backend>`: batched event appends (100 events per
//!   transaction, as the `EventWriter` writes hook receipts);
//! - `list_plugins_10k/<backend>`: listing 10,000 plugins with their
//!   manifests in one page (what the engine does at boot).
//!
//! The memory backend is the anchor (no storage at all). PostgreSQL runs
//! against `TENON_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) in a schema of its own,
//! dropped afterwards; when it is unreachable its benchmarks are skipped with
//! a message.
//!
//! `cargo bench -p tenon-registry --bench registry -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use tenon_manifest::Manifest;
use tenon_registry::{
    EventKind, EventStatus, NewEvent, NewPlugin, PluginQuery, PluginSource, RegistryOptions,
    RegistryStore, SourceKind, SqliteStore, TenantId,
};
use tokio::runtime::Runtime;

const PLUGINS: usize = 10_000;
const BATCH: usize = 100;

struct Backend {
    name: &'static str,
    store: Arc<dyn RegistryStore>,
}

fn manifest(n: usize) -> Manifest {
    serde_json::from_value(json!({
        "manifest_version": 1,
        "plugin": {
            "id": format!("bench/plugin-{n:05}"),
            "name": format!("Benchmark plugin {n}"),
            "version": "1.4.2",
            "description": "A plugin with a manifest of ordinary size.",
            "keywords": ["bench", "registry"],
        },
        "runtime": { "kind": "component", "module": "plugin.wasm" },
        "permissions": {
            "network": { "outbound": ["api.example.com", "*.hooks.example.com:443"] },
            "secrets": ["token"],
        },
        "hooks": [
            { "name": "response.pre_deliver", "priority": "high" },
            { "name": "tool.pre_exec", "fail_policy": "closed", "timeout": "500ms" },
        ],
    }))
    .expect("a valid manifest")
}

fn hook_batch(tenant: &TenantId) -> Vec<NewEvent> {
    (0..BATCH)
        .map(|n| {
            NewEvent::new(tenant.clone(), EventKind::Hook, EventStatus::Ok)
                .with_plugin("bench/plugin-00001".parse().unwrap())
                .with_detail(json!({
                    "hook": "response.pre_deliver",
                    "execution": n,
                    "duration_us": 42,
                    "changed": ["/text"],
                }))
        })
        .collect()
}

/// Fills a tenant with [`PLUGINS`] plugins, a few writers at a time.
async fn fill(store: &Arc<dyn RegistryStore>, tenant: &TenantId) {
    let writers = 8;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (store, tenant) = (store.clone(), tenant.clone());
        tasks.push(tokio::spawn(async move {
            for n in (w..PLUGINS).step_by(writers) {
                let plugin = NewPlugin::new(
                    tenant.clone(),
                    manifest(n),
                    PluginSource::new(SourceKind::Marketplace, "hub"),
                );
                store.insert_plugin(&plugin).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

fn postgres_url() -> String {
    std::env::var("TENON_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn backends(dir: &tempfile::TempDir, pg_schema: &str) -> Vec<Backend> {
    let mut backends = Vec::new();
    match tenon_registry::open("memory:", &RegistryOptions::default()).await {
        Ok(store) => backends.push(Backend {
            name: "memory",
            store,
        }),
        Err(e) => eprintln!("skipping the memory anchor: {e}"),
    }
    backends.push(Backend {
        name: "sqlite",
        store: Arc::new(
            SqliteStore::open(&dir.path().join("bench.db"), &RegistryOptions::default())
                .await
                .unwrap(),
        ),
    });
    let options = RegistryOptions::default().with_postgres_schema(pg_schema);
    match tokio::time::timeout(
        Duration::from_secs(5),
        tenon_registry::open(&postgres_url(), &options),
    )
    .await
    {
        Ok(Ok(store)) => backends.push(Backend {
            name: "postgres",
            store,
        }),
        Ok(Err(e)) => eprintln!("skipping the PostgreSQL benchmarks: {e}"),
        Err(_) => eprintln!("skipping the PostgreSQL benchmarks: no answer within 5 s"),
    }
    backends
}

#[cfg(feature = "postgres")]
async fn drop_schema(schema: &str) {
    use sqlx::Connection as _;
    if let Ok(mut connection) = sqlx::PgConnection::connect(&postgres_url()).await {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&mut connection)
            .await;
        let _ = connection.close().await;
    }
}

fn registry(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pg_schema = format!("tenon_bench_{}", uuid::Uuid::new_v4().simple());
    let backends = runtime.block_on(backends(&dir, &pg_schema));
    let events_tenant = TenantId::new("bench-events").unwrap();
    let plugins_tenant = TenantId::new("bench-plugins").unwrap();

    let mut group = c.benchmark_group("event_append");
    group.throughput(Throughput::Elements(BATCH as u64));
    for backend in &backends {
        let batch = hook_batch(&events_tenant);
        group.bench_function(
            BenchmarkId::new(backend.name, format!("batch_{BATCH}")),
            |b| {
                b.to_async(&runtime)
                    .iter(|| async { backend.store.append_events(&batch).await.unwrap() });
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("list_plugins_10k");
    group.throughput(Throughput::Elements(PLUGINS as u64));
    group.sample_size(10);
    for backend in &backends {
        runtime.block_on(fill(&backend.store, &plugins_tenant));
        let query = PluginQuery::default().with_limit(PLUGINS);
        group.bench_function(BenchmarkId::new(backend.name, "one_page"), |b| {
            b.to_async(&runtime).iter(|| async {
                let page = backend
                    .store
                    .list_plugins(&plugins_tenant, &query)
                    .await
                    .unwrap();
                assert_eq!(page.plugins.len(), PLUGINS);
                page
            });
        });
    }
    group.finish();

    drop(backends);
    runtime.block_on(drop_schema(&pg_schema));
}

#[cfg(not(feature = "postgres"))]
async fn drop_schema(_: &str) {}

criterion_group!(benches, registry);
criterion_main!(benches);
