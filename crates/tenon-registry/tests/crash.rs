//! Crash safety of the SQLite registry.
//!
//! This binary is its own writer: run with `TENON_CRASH_WRITER=<db path>`,
//! it writes to the registry in a loop, printing `committed N` after each
//! committed round. Run as a test, it starts itself as that writer, kills it
//! with SIGKILL in the middle of its writing, and checks that the database
//! opens, that its schema is intact, and that every committed round is there
//! and consistent with the rest — several times over on the same file.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection as _;
use tenon_manifest::{Manifest, PluginId};
use tenon_registry::{
    EventKind, EventQuery, EventStatus, KvList, KvQuota, KvUsage, LATEST_SCHEMA_VERSION, NewEvent,
    NewPlugin, PluginSource, PluginState, PluginUpdate, RegistryOptions, RegistryStore, SourceKind,
    SqliteStore, TenantId,
};

const WRITER_ENV: &str = "TENON_CRASH_WRITER";
const ROUNDS_BEFORE_KILL: u64 = 25;
const KILLS: usize = 3;
const BATCH: usize = 20;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match std::env::var(WRITER_ENV) {
        Ok(path) => runtime.block_on(writer(Path::new(&path))),
        Err(_) => {
            runtime.block_on(killed_writers_leave_a_consistent_database());
            println!("test crash::killed_writers_leave_a_consistent_database ... ok");
        }
    }
}

fn plugin() -> PluginId {
    PluginId::new("acme/crash").unwrap()
}

fn manifest() -> Manifest {
    serde_json::from_value(json!({
        "manifest_version": 1,
        "plugin": { "id": "acme/crash", "name": "Crash", "version": "1.0.0" },
        "runtime": { "kind": "component", "module": "plugin.wasm" },
    }))
    .unwrap()
}

/// Writes rounds until killed. A round is three transactions: a batch of
/// events, a KV write, and a plugin update that flips its state.
async fn writer(path: &Path) {
    let store = SqliteStore::open(path, &RegistryOptions::default())
        .await
        .unwrap();
    let t = TenantId::default();
    let p = plugin();
    let mut record = match store.get_plugin(&t, &p).await.unwrap() {
        Some(record) => record,
        None => store
            .insert_plugin(&NewPlugin::new(
                t.clone(),
                manifest(),
                PluginSource::new(SourceKind::Directory, "."),
            ))
            .await
            .unwrap(),
    };
    for round in 1.. {
        let batch: Vec<NewEvent> = (0..BATCH)
            .map(|e| {
                NewEvent::new(t.clone(), EventKind::Hook, EventStatus::Ok)
                    .with_plugin(p.clone())
                    .with_detail(json!({ "row_version": record.row_version, "e": e, "padding": "x".repeat(200) }))
            })
            .collect();
        store.append_events(&batch).await.unwrap();
        let value = vec![round as u8; 100 + (round % 900) as usize];
        store
            .kv_set(
                &t,
                &p,
                &format!("key-{}", round % 37),
                &value,
                KvQuota::UNLIMITED,
            )
            .await
            .unwrap();
        let state = if record.state == PluginState::Active {
            PluginState::Disabled
        } else {
            PluginState::Active
        };
        record = store
            .update_plugin(
                &t,
                &p,
                &PluginUpdate::new(record.row_version).with_state(state),
            )
            .await
            .unwrap();
        println!("committed {}", record.row_version);
    }
}

async fn killed_writers_leave_a_consistent_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let mut last_committed = 0;
    for kill in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(WRITER_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut committed = 0;
        while committed < last_committed + ROUNDS_BEFORE_KILL {
            assert!(
                Instant::now() < deadline,
                "the writer is too slow ({committed} rounds)"
            );
            let line = lines
                .next()
                .expect("the writer stopped before it was killed")
                .unwrap();
            committed = line
                .strip_prefix("committed ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected writer output {line:?}"));
        }
        // SIGKILL, while it is in the middle of its next round.
        child.kill().unwrap();
        child.wait().unwrap();
        check(&path, committed).await;
        println!("kill {kill}: {committed} row versions committed, database consistent");
        last_committed = committed;
    }
}

/// The database opens, and holds every round the killed writer reported,
/// each whole.
async fn check(path: &Path, committed: u64) {
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    let dangling: Vec<String> =
        sqlx::query_scalar("SELECT \"table\" FROM pragma_foreign_key_check")
            .fetch_all(&mut connection)
            .await
            .unwrap();
    assert!(dangling.is_empty(), "{dangling:?}");
    connection.close().await.unwrap();

    let store = SqliteStore::open(path, &RegistryOptions::default())
        .await
        .unwrap();
    assert_eq!(
        store.info().schema_version,
        LATEST_SCHEMA_VERSION,
        "migrations intact"
    );
    let t = TenantId::default();
    let p = plugin();
    let record = store.get_plugin(&t, &p).await.unwrap().unwrap();
    // At most one more round than reported: the kill may land after a
    // commit and before its line was printed.
    assert!(
        (committed..=committed + 1).contains(&record.row_version),
        "reported {committed}, found row version {}",
        record.row_version
    );
    // Each update and its state_changed event committed together.
    let transitions = store
        .list_events(
            &t,
            &EventQuery::default()
                .with_kinds(&[EventKind::StateChanged])
                .with_limit(100_000),
        )
        .await
        .unwrap()
        .events;
    assert_eq!(transitions.len() as u64, record.row_version - 1);
    assert_eq!(
        transitions.first().map(|e| e.detail["to"].clone()),
        Some(json!(record.state.as_str())),
        "the newest transition is to the current state"
    );
    // Batches are whole: never part of one.
    let hooks = store
        .list_events(
            &t,
            &EventQuery::default()
                .with_kinds(&[EventKind::Hook])
                .with_limit(100_000),
        )
        .await
        .unwrap()
        .events;
    assert_eq!(hooks.len() % BATCH, 0, "{} hook events", hooks.len());
    assert!(hooks.len() as u64 >= (record.row_version - 1) * BATCH as u64);
    // The KV usage row agrees with the entries.
    let keys = store
        .kv_list(&t, &p, &KvList::prefix("").with_limit(1000))
        .await
        .unwrap();
    let mut bytes = 0;
    for key in &keys {
        bytes += (key.len() + store.kv_get(&t, &p, key).await.unwrap().unwrap().len()) as u64;
    }
    assert_eq!(
        store.kv_usage(&t, &p).await.unwrap(),
        KvUsage {
            bytes,
            keys: keys.len() as u64
        }
    );
    // And it takes writes again.
    store
        .kv_set(&t, &p, "after-the-crash", b"ok", KvQuota::UNLIMITED)
        .await
        .unwrap();
    store.close().await;
}
