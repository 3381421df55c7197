//! What only the PostgreSQL backend has: a fleet sharing one database, its
//! change feed, and migrations on a shared server.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::fixture::pg::Schema;
use super::{id, manifest};
use crate::backend::sql::postgres::feed_application_name;
use crate::*;

async fn connect(schema: &Schema) -> PostgresStore {
    PostgresStore::connect(&schema.url, &schema.options(RegistryOptions::default()))
        .await
        .unwrap()
}

fn plugin(name: &str) -> NewPlugin {
    NewPlugin::new(
        TenantId::default(),
        manifest(name, "1.0.0"),
        PluginSource::new(SourceKind::Marketplace, name),
    )
}

async fn next_change(
    changes: &mut ChangeSubscription,
    within: Duration,
) -> Result<Change, ChangeFeedError> {
    tokio::time::timeout(within, changes.recv())
        .await
        .expect("the change feed delivers in time")
}

/// Two hosts on one database: what one does reaches the other's feed within
/// a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_converges_through_the_change_feed() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let host_a = connect(&schema).await;
    let host_b = connect(&schema).await;
    assert_ne!(host_a.info().instance, host_b.info().instance);
    let mut feed_b = host_b.subscribe_changes().await.unwrap();
    let mut feed_a = host_a.subscribe_changes().await.unwrap();

    let inserted = host_a.insert_plugin(&plugin("acme/fleet")).await.unwrap();
    let change = next_change(&mut feed_b, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(change.kind, ChangeKind::PluginInserted);
    assert_eq!(change.plugin, Some(id("acme/fleet")));
    assert_eq!(
        change.origin,
        host_a.info().instance,
        "B can tell it came from A"
    );
    let seen_by_b = host_b
        .get_plugin(&TenantId::default(), &id("acme/fleet"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen_by_b, inserted);
    // A hears its own changes too (and can skip them by origin).
    assert_eq!(
        next_change(&mut feed_a, Duration::from_secs(10))
            .await
            .unwrap(),
        change
    );

    // And the other way round, for an update B makes.
    host_b
        .update_plugin(
            &TenantId::default(),
            &id("acme/fleet"),
            &PluginUpdate::new(1).with_enabled(true),
        )
        .await
        .unwrap();
    let change = next_change(&mut feed_a, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        (change.kind, change.row_version),
        (ChangeKind::PluginUpdated, Some(2))
    );
    assert_eq!(change.origin, host_b.info().instance);
    // A lost race on one host is a conflict on the other, never an overwrite.
    let stale = host_a
        .update_plugin(
            &TenantId::default(),
            &id("acme/fleet"),
            &PluginUpdate::new(1).with_enabled(false),
        )
        .await
        .unwrap_err();
    assert!(stale.is_conflict(), "{stale}");

    // A rolled-back write announces nothing.
    let duplicate = host_b.insert_plugin(&plugin("acme/fleet")).await;
    assert!(duplicate.is_err());
    host_b.close().await;
    host_a.close().await;
    assert!(feed_a.try_recv().unwrap().is_none());
    schema.drop_now().await;
}

/// The feed's connection is killed: subscribers are told to resync, and
/// changes flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_feed_reconnects() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let host_a = connect(&schema).await;
    let host_b = connect(&schema).await;
    let mut feed_b = host_b.subscribe_changes().await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(feed_application_name(host_b.info().instance))
    .fetch_all(host_a.pool())
    .await
    .unwrap();
    assert_eq!(killed, [true], "exactly one feed connection per store");
    let interrupted = next_change(&mut feed_b, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(interrupted, ChangeFeedError::Interrupted { .. }),
        "{interrupted}"
    );
    assert!(interrupted.needs_resync());
    host_a.insert_plugin(&plugin("acme/after")).await.unwrap();
    let change = next_change(&mut feed_b, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(change.plugin, Some(id("acme/after")));
    host_a.close().await;
    host_b.close().await;
    schema.drop_now().await;
}

/// Many hosts append at once while one follows the log: the follower sees
/// every event exactly once (ids commit in the order they are drawn).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followers_never_skip_events_of_concurrent_writers() {
    const WRITERS: usize = 6;
    const BATCHES: usize = 15;
    const BATCH: usize = 5;
    let Some(schema) = Schema::create().await else {
        return;
    };
    let follower = Arc::new(connect(&schema).await);
    let t = TenantId::default();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = Arc::new(connect(&schema).await);
        let t = t.clone();
        writers.push(tokio::spawn(async move {
            for b in 0..BATCHES {
                let batch: Vec<NewEvent> = (0..BATCH)
                    .map(|e| {
                        NewEvent::new(t.clone(), EventKind::Hook, EventStatus::Ok)
                            .with_detail(json!({ "w": w, "b": b, "e": e }))
                    })
                    .collect();
                store.append_events(&batch).await.unwrap();
            }
            store.close().await;
        }));
    }
    let total = WRITERS * BATCHES * BATCH;
    let mut seen = Vec::new();
    let mut cursor = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < total {
        assert!(
            tokio::time::Instant::now() < deadline,
            "followed {} of {total}",
            seen.len()
        );
        let events = follower.events_after(&t, cursor, 7).await.unwrap();
        if let Some(last) = events.last() {
            cursor = Some(last.cursor);
        } else {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen.extend(events.into_iter().map(|e| e.detail.to_string()));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert!(
        follower
            .events_after(&t, cursor, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(seen.len(), total);
    assert_eq!(
        seen.iter().collect::<BTreeSet<_>>().len(),
        total,
        "no event seen twice"
    );
    follower.close().await;
    schema.drop_now().await;
}

#[tokio::test]
async fn migrations_create_upgrade_refuse_newer() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let store = connect(&schema).await;
    assert_eq!(store.info().schema_version, LATEST_SCHEMA_VERSION);
    assert!(store.info().location.contains(&schema.name));
    let history = async |store: &PostgresStore| -> Vec<(i64, bool)> {
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(store.pool())
            .await
            .unwrap()
    };
    let expected = vec![
        (1, true),
        (2, true),
        (3, true),
        (4, true),
        (5, true),
        (6, true),
    ];
    assert_eq!(history(&store).await, expected);
    store.insert_plugin(&plugin("acme/kept")).await.unwrap();
    store.close().await;

    // Reopening changes nothing.
    let store = connect(&schema).await;
    assert_eq!(history(&store).await, expected);

    // Schema version 1, as an older Tenon left it, is upgraded.
    sqlx::query(
        "DROP TABLE plugin_config, plugin_config_revisions, plugin_grants, plugin_kv, plugin_kv_usage",
    )
    .execute(store.pool())
    .await
    .unwrap();
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
    let store = connect(&schema).await;
    assert_eq!(history(&store).await, expected);
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
            .is_some()
    );

    // A newer Tenon's schema is refused, and left as it is.
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (7, 'from the future', TRUE, '\\x00', 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let err = PostgresStore::connect(&schema.url, &schema.options(RegistryOptions::default()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::NewerSchema {
                found: 7,
                supported: 6,
                ..
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("has schema version 7, written by a newer Tenon"),
        "{message}"
    );
    assert!(
        message.contains("knows schema versions up to 6"),
        "{message}"
    );
    assert!(message.contains(&schema.name), "{message}");
    assert_eq!(
        history(&store).await,
        [
            (1, true),
            (2, true),
            (3, true),
            (4, true),
            (5, true),
            (6, true),
            (7, true)
        ],
        "the refused open changed nothing"
    );
    store.close().await;
    schema.drop_now().await;
}

#[tokio::test]
async fn bad_locations_and_schemas() {
    let Some(schema) = Schema::create().await else {
        return;
    };
    let err = PostgresStore::connect(
        &schema.url,
        &RegistryOptions::default().with_postgres_schema("Bad-Name"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid PostgreSQL schema `Bad-Name`: a schema name is 1 to 63 of a-z, 0-9 and '_', not starting with a digit"
    );
    // `open` reaches the same backend from a URL.
    let store = open(&schema.url, &schema.options(RegistryOptions::default()))
        .await
        .unwrap();
    assert_eq!(store.info().backend, BackendKind::Postgres);
    drop(store);
    schema.drop_now().await;
}
