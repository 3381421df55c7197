//! What only the SQLite backend has: a file, its migrations, other
//! connections and processes writing to it.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::{id, manifest};
use crate::backend::sql::sqlite::migration_versions;
use crate::*;

async fn open_at(path: &Path) -> Result<SqliteStore> {
    SqliteStore::open(path, &RegistryOptions::default()).await
}

async fn history(store: &SqliteStore) -> Vec<(i64, bool)> {
    sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

async fn tables(store: &SqliteStore) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'plugin%' ORDER BY name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn migrations_create_upgrade_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a").join("b").join("registry.db");
    let store = open_at(&path).await.unwrap();
    assert!(path.exists(), "the file and its directories are created");
    assert_eq!(store.info().schema_version, LATEST_SCHEMA_VERSION);
    assert_eq!(
        migration_versions().into_iter().max(),
        Some(LATEST_SCHEMA_VERSION),
        "LATEST_SCHEMA_VERSION names the newest migration"
    );
    let expected: Vec<(i64, bool)> = migration_versions()
        .into_iter()
        .map(|v| (v, true))
        .collect();
    assert_eq!(history(&store).await, expected);
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    let all_tables = tables(&store).await;
    store
        .insert_plugin(&NewPlugin::new(
            TenantId::default(),
            manifest("acme/kept", "1.0.0"),
            PluginSource::new(SourceKind::Directory, "."),
        ))
        .await
        .unwrap();
    store.close().await;

    // Reopening an up-to-date database changes nothing.
    let store = open_at(&path).await.unwrap();
    assert_eq!(history(&store).await, expected);
    assert!(
        store
            .get_plugin(&TenantId::default(), &id("acme/kept"))
            .await
            .unwrap()
            .is_some()
    );

    // A database of schema version 1 (as an older Tenon left it) is upgraded.
    for table in [
        "plugin_config",
        "plugin_config_revisions",
        "plugin_grants",
        "plugin_kv",
        "plugin_kv_usage",
    ] {
        sqlx::query(&format!("DROP TABLE {table}"))
            .execute(store.pool())
            .await
            .unwrap();
    }
    for undo in [
        "DROP TABLE plugin_log_drops",
        "DROP TABLE plugin_logs",
        "DROP TABLE plugin_leftovers",
        "DROP TABLE api_tokens",
        "DROP TABLE publisher_keys",
        "ALTER TABLE plugin_versions DROP COLUMN verification",
    ] {
        sqlx::query(undo).execute(store.pool()).await.unwrap();
    }
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version >= 2")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let store = open_at(&path).await.unwrap();
    assert_eq!(store.info().schema_version, LATEST_SCHEMA_VERSION);
    assert_eq!(history(&store).await, expected);
    assert_eq!(tables(&store).await, all_tables);
    let t = TenantId::default();
    store
        .kv_set(&t, &id("acme/kept"), "k", b"v", KvQuota::UNLIMITED)
        .await
        .unwrap();
    assert!(
        store
            .get_plugin(&t, &id("acme/kept"))
            .await
            .unwrap()
            .is_some(),
        "data survives"
    );
    store.close().await;
}

/// The registry holds encrypted secrets, grants and plugin state: its
/// directory and files are created owner-only, whatever the umask.
#[cfg(unix)]
#[tokio::test]
async fn the_registry_is_created_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new").join("registry.db");
    let _store = open_at(&path).await.unwrap();
    let mut table = vec![
        (path.parent().unwrap().to_owned(), 0o700),
        (path.clone(), 0o600),
    ];
    for suffix in ["-wal", "-shm"] {
        let side = path.with_file_name(format!("registry.db{suffix}"));
        if side.exists() {
            table.push((side, 0o600));
        }
    }
    assert!(table.len() >= 3, "WAL mode leaves a -wal file while open");
    for (at, expected) in table {
        assert_eq!(mode(&at), expected, "{}", at.display());
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let store = open_at(&path).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (7, 'from the future', TRUE, x'00', 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store.close().await;
    let before = std::fs::read(&path).unwrap();

    let err = open_at(&path).await.unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::NewerSchema {
                found: 7,
                supported: LATEST_SCHEMA_VERSION,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the registry at {} has schema version 7, written by a newer Tenon; this Tenon knows \
             schema versions up to {LATEST_SCHEMA_VERSION}. Upgrade Tenon, or point it at another registry; nothing was changed",
            path.display()
        )
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file is untouched"
    );
    let err = open(path.to_str().unwrap(), &RegistryOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NewerSchema { .. }), "{err}");
}

#[tokio::test]
async fn not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "these are not the tables you are looking for".repeat(100),
    )
    .unwrap();
    let err = open_at(&path).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, RegistryError::Backend { .. }), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[tokio::test]
async fn locations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x").join("r.db");
    let by_url = open(
        &format!("sqlite://{}", path.display()),
        &RegistryOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(by_url.info().backend, BackendKind::Sqlite);
    assert!(path.exists());
    let in_memory = open("sqlite::memory:", &RegistryOptions::default())
        .await
        .unwrap();
    assert_eq!(in_memory.info().schema_version, LATEST_SCHEMA_VERSION);
    in_memory
        .insert_plugin(&NewPlugin::new(
            TenantId::default(),
            manifest("acme/m", "1.0.0"),
            PluginSource::new(SourceKind::Native, "m"),
        ))
        .await
        .unwrap();
    let page = in_memory
        .list_plugins(&TenantId::default(), &PluginQuery::default())
        .await
        .unwrap();
    assert_eq!(
        page.plugins.len(),
        1,
        "reads see writes in an in-memory database"
    );
}

/// Several stores (separate connection pools, as separate processes would
/// have) and many tasks writing at once: writes queue on the busy timeout,
/// and none fails with "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_see_a_locked_database() {
    const STORES: usize = 3;
    const TASKS_PER_STORE: usize = 4;
    const ROUNDS: usize = 15;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let mut stores = Vec::new();
    for _ in 0..STORES {
        stores.push(Arc::new(open_at(&path).await.unwrap()));
    }
    let t = TenantId::default();
    let p = id("acme/busy");
    stores[0]
        .insert_plugin(&NewPlugin::new(
            t.clone(),
            manifest("acme/busy", "1.0.0"),
            PluginSource::new(SourceKind::Directory, "."),
        ))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for n in 0..TASKS_PER_STORE {
            let (store, t, p) = (store.clone(), t.clone(), p.clone());
            tasks.push(tokio::spawn(async move {
                let mut conflicts = 0;
                for round in 0..ROUNDS {
                    let batch: Vec<NewEvent> = (0..10)
                        .map(|e| {
                            NewEvent::new(t.clone(), EventKind::Hook, EventStatus::Ok)
                                .with_plugin(p.clone())
                                .with_detail(
                                    json!({ "store": s, "task": n, "round": round, "e": e }),
                                )
                        })
                        .collect();
                    store.append_events(&batch).await.unwrap();
                    store
                        .kv_set(
                            &t,
                            &p,
                            &format!("{s}/{n}"),
                            &[round as u8; 16],
                            KvQuota::UNLIMITED,
                        )
                        .await
                        .unwrap();
                    loop {
                        let current = store.get_plugin(&t, &p).await.unwrap().unwrap();
                        let update = PluginUpdate::new(current.row_version).with_source(
                            PluginSource::new(SourceKind::Directory, &format!("{s}/{n}/{round}")),
                        );
                        match store.update_plugin(&t, &p, &update).await {
                            Ok(_) => break,
                            Err(e) if e.is_conflict() => conflicts += 1,
                            Err(e) => panic!("store {s} task {n}: {e}"),
                        }
                    }
                }
                conflicts
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let writers = (STORES * TASKS_PER_STORE * ROUNDS) as u64;
    let plugin = stores[1].get_plugin(&t, &p).await.unwrap().unwrap();
    assert_eq!(plugin.row_version, 1 + writers, "no update was lost");
    let hooks = stores[2]
        .list_events(
            &t,
            &EventQuery::default()
                .with_kinds(&[EventKind::Hook])
                .with_limit(10_000),
        )
        .await
        .unwrap();
    assert_eq!(hooks.events.len() as u64, writers * 10);
    assert_eq!(
        stores[0].kv_usage(&t, &p).await.unwrap(),
        KvUsage {
            keys: (STORES * TASKS_PER_STORE) as u64,
            bytes: (STORES * TASKS_PER_STORE * (3 + 16)) as u64,
        }
    );
    for store in stores {
        store.close().await;
    }
}

/// Two stores on one file stand for two processes (the CLI and a host):
/// each one's changes reach the other's feed through the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_processes_changes_reach_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let options = RegistryOptions {
        change_poll_interval: std::time::Duration::from_millis(20),
        ..RegistryOptions::default()
    };
    let host = SqliteStore::open(&path, &options).await.unwrap();
    let cli = SqliteStore::open(&path, &options).await.unwrap();
    let mut feed = host.subscribe_changes().await.unwrap();
    let next = async |feed: &mut ChangeSubscription| {
        tokio::time::timeout(std::time::Duration::from_secs(5), feed.recv())
            .await
            .expect("a change within 5 s")
            .unwrap()
    };
    let t = TenantId::default();
    let new = |name: &str| {
        NewPlugin::new(
            t.clone(),
            manifest(name, "1.0.0"),
            PluginSource::new(SourceKind::Archive, name),
        )
    };
    host.insert_plugin(&new("acme/by-host")).await.unwrap();
    cli.insert_plugin(&new("acme/by-cli")).await.unwrap();
    cli.update_plugin(
        &t,
        &id("acme/by-cli"),
        &PluginUpdate::new(1).with_enabled(true),
    )
    .await
    .unwrap();
    // The host's own change first, once; then the CLI's, in commit order.
    let own = next(&mut feed).await;
    assert_eq!(
        (own.plugin, own.origin),
        (Some(id("acme/by-host")), host.info().instance)
    );
    let inserted = next(&mut feed).await;
    assert_eq!(inserted.kind, ChangeKind::PluginInserted);
    assert_eq!(
        (inserted.plugin, inserted.origin),
        (Some(id("acme/by-cli")), cli.info().instance)
    );
    let updated = next(&mut feed).await;
    assert_eq!(
        (updated.kind, updated.row_version),
        (ChangeKind::PluginUpdated, Some(2))
    );
    host.close().await;
    cli.close().await;
}
