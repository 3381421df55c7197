//! The checks every backend must pass.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::fixture::test_key;
use super::{Fixture, id, manifest, permissions, tenant, version};
use crate::*;

fn default_tenant() -> TenantId {
    TenantId::default()
}

fn new_plugin(plugin: &str, at: &str) -> NewPlugin {
    NewPlugin::new(
        default_tenant(),
        manifest(plugin, at),
        PluginSource::new(SourceKind::Directory, &format!("/plugins/{plugin}")),
    )
}

async fn insert(store: &dyn RegistryStore, plugin: &str, at: &str) -> PluginRecord {
    store.insert_plugin(&new_plugin(plugin, at)).await.unwrap()
}

fn kinds(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

async fn all_events(store: &dyn RegistryStore, tenant: &TenantId) -> Vec<Event> {
    let query = EventQuery::default()
        .with_order(EventOrder::OldestFirst)
        .with_limit(100_000);
    store.list_events(tenant, &query).await.unwrap().events
}

pub(super) async fn plugin_crud(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    let artifact = store.put_artifact(&t, b"\0asm module bytes").await.unwrap();
    let new = new_plugin("acme/notifier", "1.2.0")
        .with_state(PluginState::PendingConfig)
        .with_enabled(true)
        .with_artifact(artifact.sha256);
    let inserted = store.insert_plugin(&new).await.unwrap();
    assert_eq!(inserted.id, id("acme/notifier"));
    assert_eq!(inserted.version, version("1.2.0"));
    assert_eq!(inserted.state, PluginState::PendingConfig);
    assert!(inserted.enabled);
    assert_eq!(inserted.row_version, 1);
    assert_eq!(inserted.artifact, Some(artifact.sha256));
    assert_eq!(inserted.manifest, new.manifest);
    assert_eq!(inserted.source.kind, SourceKind::Directory);
    assert_eq!(inserted.created_at, inserted.updated_at);

    let read = store
        .get_plugin(&t, &id("acme/notifier"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, inserted, "what is read is what was inserted");
    assert_eq!(
        store.get_plugin(&t, &id("acme/absent")).await.unwrap(),
        None
    );

    let again = store.insert_plugin(&new).await.unwrap_err();
    assert!(
        matches!(
            again,
            RegistryError::AlreadyExists {
                record: Record::Plugin,
                ..
            }
        ),
        "{again}"
    );
    assert_eq!(
        again.to_string(),
        "plugin `acme/notifier` already exists in tenant `default`; add a version to it, or delete it first"
    );

    let missing = store
        .insert_plugin(
            &new_plugin("acme/other", "1.0.0").with_artifact(Sha256Digest::of(b"never stored")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            missing,
            RegistryError::NotFound {
                record: Record::Artifact,
                ..
            }
        ),
        "{missing}"
    );
    assert_eq!(
        store.get_plugin(&t, &id("acme/other")).await.unwrap(),
        None,
        "nothing half-inserted"
    );

    let update = PluginUpdate::new(1)
        .with_state(PluginState::Error)
        .with_enabled(false)
        .with_source(PluginSource::new(
            SourceKind::Marketplace,
            "hub:acme/notifier",
        ))
        .with_last_error(Some(LastError::new(
            "load_failed",
            "the module does not validate",
        )))
        .with_reason("test");
    let updated = store
        .update_plugin(&t, &id("acme/notifier"), &update)
        .await
        .unwrap();
    assert_eq!(updated.row_version, 2);
    assert_eq!(updated.state, PluginState::Error);
    assert!(!updated.enabled);
    assert_eq!(
        updated.source,
        PluginSource::new(SourceKind::Marketplace, "hub:acme/notifier")
    );
    assert_eq!(updated.last_error.as_ref().unwrap().code, "load_failed");
    assert_eq!(updated.created_at, inserted.created_at);
    assert!(updated.updated_at >= inserted.updated_at);
    assert_eq!(
        store
            .get_plugin(&t, &id("acme/notifier"))
            .await
            .unwrap()
            .unwrap(),
        updated
    );

    let cleared = store
        .update_plugin(
            &t,
            &id("acme/notifier"),
            &PluginUpdate::new(2).with_last_error(None),
        )
        .await
        .unwrap();
    assert_eq!(cleared.last_error, None);
    assert_eq!(
        cleared.state,
        PluginState::Error,
        "fields not named are kept"
    );
    assert_eq!(cleared.row_version, 3);

    let absent = store
        .update_plugin(&t, &id("acme/absent"), &PluginUpdate::new(1))
        .await
        .unwrap_err();
    assert!(absent.is_not_found(), "{absent}");

    let report = store
        .delete_plugin(&t, &id("acme/notifier"), &DeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(report, DeleteReport::default(), "purges nothing by default");
    assert_eq!(
        store.get_plugin(&t, &id("acme/notifier")).await.unwrap(),
        None
    );
    let gone = store
        .delete_plugin(&t, &id("acme/notifier"), &DeleteOptions::default())
        .await
        .unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
}

pub(super) async fn plugin_listing(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    for n in 0..25 {
        let state = [
            PluginState::Active,
            PluginState::Disabled,
            PluginState::Error,
        ][n % 3];
        store
            .insert_plugin(
                &new_plugin(&format!("pub-{}/p{n:02}", n % 2), "1.0.0")
                    .with_state(state)
                    .with_enabled(n % 2 == 0),
            )
            .await
            .unwrap();
    }
    // Ordered by id, a page at a time, every plugin once.
    let mut seen = Vec::new();
    let mut query = PluginQuery::default().with_limit(7);
    let mut pages = 0;
    loop {
        let page = store.list_plugins(&t, &query).await.unwrap();
        pages += 1;
        seen.extend(page.plugins.iter().map(|p| p.id.to_string()));
        match page.next {
            Some(next) => query = query.with_after(Some(next)),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 25);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 25);

    let exact = store
        .list_plugins(&t, &PluginQuery::default().with_limit(25))
        .await
        .unwrap();
    assert_eq!(exact.plugins.len(), 25);
    assert_eq!(
        exact.next, None,
        "no next page when the last one is exactly full"
    );

    let active = store
        .list_plugins(
            &t,
            &PluginQuery::default().with_states(&[PluginState::Active]),
        )
        .await
        .unwrap();
    assert_eq!(active.plugins.len(), 9);
    assert!(
        active
            .plugins
            .iter()
            .all(|p| p.state == PluginState::Active)
    );

    let enabled_errors = store
        .list_plugins(
            &t,
            &PluginQuery::default()
                .with_states(&[PluginState::Error, PluginState::Disabled])
                .with_enabled(true),
        )
        .await
        .unwrap();
    let expected: Vec<String> = (0..25)
        .filter(|n| n % 2 == 0 && n % 3 != 0)
        .map(|n| format!("pub-0/p{n:02}"))
        .collect();
    let mut expected = expected;
    expected.sort();
    assert_eq!(
        enabled_errors
            .plugins
            .iter()
            .map(|p| p.id.to_string())
            .collect::<Vec<_>>(),
        expected
    );
    let other_tenant = store
        .list_plugins(&tenant("other"), &PluginQuery::default())
        .await
        .unwrap();
    assert!(other_tenant.plugins.is_empty());
}

pub(super) async fn optimistic_updates(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    let p = id("acme/x");
    insert(store, "acme/x", "1.0.0").await;
    let a = store
        .update_plugin(
            &t,
            &p,
            &PluginUpdate::new(1).with_state(PluginState::Resolved),
        )
        .await
        .unwrap();
    assert_eq!(a.row_version, 2);
    // A second writer that read row version 1 loses and learns the current one.
    let stale = store
        .update_plugin(
            &t,
            &p,
            &PluginUpdate::new(1).with_state(PluginState::Disabled),
        )
        .await
        .unwrap_err();
    match &stale {
        RegistryError::Conflict {
            record,
            expected_row_version,
            current_row_version,
            plugin,
            ..
        } => {
            assert_eq!(*record, Record::Plugin);
            assert_eq!(*expected_row_version, 1);
            assert_eq!(*current_row_version, 2);
            assert_eq!(plugin, &p);
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert!(stale.is_conflict());
    assert_eq!(
        stale.to_string(),
        "the plugin of `acme/x` in tenant `default` was changed concurrently: the write expected row \
         version 1 but the registry holds 2; reload it and retry"
    );
    let current = store.get_plugin(&t, &p).await.unwrap().unwrap();
    assert_eq!(
        current.state,
        PluginState::Resolved,
        "the losing write changed nothing"
    );
    assert_eq!(current.row_version, 2);

    let stale_delete = store
        .delete_plugin(
            &t,
            &p,
            &DeleteOptions {
                expected_row_version: Some(1),
                purge: Purge::ALL,
                leftovers_owner: None,
            },
        )
        .await
        .unwrap_err();
    assert!(stale_delete.is_conflict(), "{stale_delete}");
    assert!(store.get_plugin(&t, &p).await.unwrap().is_some());
}

pub(super) async fn concurrent_updates_have_one_winner(fx: &Fixture) {
    const TASKS: usize = 16;
    let store = fx.store.clone();
    let t = default_tenant();
    let p = id("acme/contended");
    insert(&*store, "acme/contended", "1.0.0").await;
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for n in 0..TASKS {
        let (store, t, p, barrier) = (store.clone(), t.clone(), p.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let update = PluginUpdate::new(1).with_source(PluginSource::new(
                SourceKind::Archive,
                &format!("writer-{n}"),
            ));
            (n, store.update_plugin(&t, &p, &update).await)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (n, result) = task.await.unwrap();
        match result {
            Ok(record) => {
                assert_eq!(record.row_version, 2);
                winners.push(n);
            }
            Err(RegistryError::Conflict {
                expected_row_version: 1,
                current_row_version: 2,
                ..
            }) => {}
            Err(other) => panic!("writer {n} failed with something else than a conflict: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins: {winners:?}");
    let record = store.get_plugin(&t, &p).await.unwrap().unwrap();
    assert_eq!(record.row_version, 2);
    assert_eq!(
        record.source.reference,
        format!("writer-{}", winners[0]),
        "the winner's write is the one kept"
    );

    // Writers that retry on conflict all get through: no update is lost.
    let mut tasks = Vec::new();
    for n in 0..TASKS {
        let (store, t, p) = (store.clone(), t.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let current = store.get_plugin(&t, &p).await.unwrap().unwrap();
                let update = PluginUpdate::new(current.row_version).with_source(PluginSource::new(
                    SourceKind::Archive,
                    &format!("retry-{n}"),
                ));
                match store.update_plugin(&t, &p, &update).await {
                    Ok(_) => return,
                    Err(e) if e.is_conflict() => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let record = store.get_plugin(&t, &p).await.unwrap().unwrap();
    assert_eq!(
        record.row_version,
        2 + TASKS as u64,
        "every retried update landed once"
    );
}

pub(super) async fn delete_and_purge(fx: &Fixture) {
    let store = &*fx.store;
    let t = &default_tenant();
    let setup = |plugin: &'static str| async move {
        let bytes = format!("module of {plugin}");
        let a = store.put_artifact(t, bytes.as_bytes()).await.unwrap();
        let shared = store.put_artifact(t, b"shared module").await.unwrap();
        store
            .insert_plugin(&new_plugin(plugin, "1.0.0").with_artifact(a.sha256))
            .await
            .unwrap();
        store
            .add_version(
                t,
                &id(plugin),
                &NewVersion {
                    manifest: manifest(plugin, "1.1.0"),
                    artifact: Some(shared.sha256),
                    verification: None,
                },
            )
            .await
            .unwrap();
        store
            .update_config(
                t,
                &id(plugin),
                &ConfigChange::new()
                    .set_plain("a", json!(1))
                    .set_plain("b", json!(2)),
            )
            .await
            .unwrap();
        store
            .kv_set(t, &id(plugin), "k", b"v", KvQuota::UNLIMITED)
            .await
            .unwrap();
        store
            .put_grant(&NewGrant {
                tenant: t.clone(),
                plugin: id(plugin),
                version: version("1.0.0"),
                permissions: permissions(json!({})),
                granted_by: "test".into(),
            })
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let lines = [0, 1, 2].map(|n| log_line(t, plugin, LogLevel::Info, n, now));
        assert_eq!(store.append_logs(&lines, 2).await.unwrap(), 1);
        (a.sha256, shared.sha256)
    };
    let logs_of = async |plugin: &str| {
        let query = LogQuery {
            plugin: Some(id(plugin)),
            ..LogQuery::default()
        };
        let page = store.list_logs(t, &query).await.unwrap();
        (page.logs.len(), page.dropped)
    };
    let (kept_artifact, shared) = setup("acme/kept").await;
    let (purged_artifact, _) = setup("acme/purged").await;

    let report = store
        .delete_plugin(t, &id("acme/kept"), &DeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(report, DeleteReport::default());
    assert_eq!(
        store
            .get_config(t, &id("acme/kept"))
            .await
            .unwrap()
            .values
            .len(),
        2
    );
    assert_eq!(
        store.kv_get(t, &id("acme/kept"), "k").await.unwrap(),
        Some(b"v".to_vec())
    );
    assert_eq!(
        store
            .list_versions(t, &id("acme/kept"))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .list_versions(t, &id("acme/kept"))
            .await
            .unwrap()
            .iter()
            .all(|v| !v.current)
    );
    assert_eq!(
        store.list_grants(t, &id("acme/kept")).await.unwrap().len(),
        1
    );
    let events = all_events(store, t).await;
    assert_eq!(
        events.last().map(|e| (e.kind.as_str(), e.plugin.clone())),
        Some(("removed", Some(id("acme/kept"))))
    );
    // A reinstall finds the kept data, and replaces the kept version row.
    let again = store
        .insert_plugin(&new_plugin("acme/kept", "1.0.0").with_artifact(kept_artifact))
        .await
        .unwrap();
    assert_eq!(again.row_version, 1);
    assert_eq!(
        store
            .get_config(t, &id("acme/kept"))
            .await
            .unwrap()
            .revision,
        1
    );

    let report = store
        .delete_plugin(
            t,
            &id("acme/purged"),
            &DeleteOptions {
                expected_row_version: Some(1),
                purge: Purge::ALL,
                leftovers_owner: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        report,
        DeleteReport {
            versions: 2,
            artifacts: 1,
            config_keys: 2,
            kv_entries: 1,
            events: 4,
            grants: 1,
        },
        "the shared artifact is still used by acme/kept"
    );
    let p = id("acme/purged");
    assert_eq!(store.get_config(t, &p).await.unwrap().revision, 0);
    assert_eq!(store.kv_usage(t, &p).await.unwrap(), KvUsage::default());
    assert!(store.list_versions(t, &p).await.unwrap().is_empty());
    assert!(store.list_grants(t, &p).await.unwrap().is_empty());
    assert!(
        all_events(store, t)
            .await
            .iter()
            .all(|e| e.plugin.as_ref() != Some(&p))
    );
    assert_eq!(
        logs_of("acme/purged").await,
        (0, 0),
        "its log lines go with its events"
    );
    assert_eq!(logs_of("acme/kept").await, (2, 1), "kept without a purge");
    assert_eq!(store.get_artifact(t, &purged_artifact).await.unwrap(), None);
    assert_eq!(
        store.get_artifact(t, &shared).await.unwrap(),
        Some(b"shared module".to_vec())
    );
}

pub(super) async fn versions_and_rollback(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    let p = id("acme/versioned");
    let v1 = store.put_artifact(&t, b"v1").await.unwrap().sha256;
    let v2 = store.put_artifact(&t, b"v2").await.unwrap().sha256;
    store
        .insert_plugin(&new_plugin("acme/versioned", "1.0.0").with_artifact(v1))
        .await
        .unwrap();
    let added = store
        .add_version(
            &t,
            &p,
            &NewVersion {
                manifest: manifest("acme/versioned", "1.10.0"),
                artifact: Some(v2),
                verification: None,
            },
        )
        .await
        .unwrap();
    assert!(!added.current);
    assert_eq!(added.version, version("1.10.0"));
    store
        .add_version(
            &t,
            &p,
            &NewVersion {
                manifest: manifest("acme/versioned", "1.9.0"),
                artifact: None,
                verification: None,
            },
        )
        .await
        .unwrap();
    let duplicate = store
        .add_version(
            &t,
            &p,
            &NewVersion {
                manifest: manifest("acme/versioned", "1.9.0"),
                artifact: None,
                verification: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            duplicate,
            RegistryError::AlreadyExists {
                record: Record::Version,
                ..
            }
        ),
        "{duplicate}"
    );
    let foreign = store
        .add_version(
            &t,
            &p,
            &NewVersion {
                manifest: manifest("acme/other", "2.0.0"),
                artifact: None,
                verification: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(foreign, RegistryError::InvalidInput { .. }),
        "{foreign}"
    );
    let orphan = store
        .add_version(
            &t,
            &id("acme/absent"),
            &NewVersion {
                manifest: manifest("acme/absent", "1.0.0"),
                artifact: None,
                verification: None,
            },
        )
        .await
        .unwrap_err();
    assert!(orphan.is_not_found(), "{orphan}");

    let listed: Vec<(String, bool)> = store
        .list_versions(&t, &p)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.version.to_string(), v.current))
        .collect();
    assert_eq!(
        listed,
        [
            ("1.10.0".into(), false),
            ("1.9.0".into(), false),
            ("1.0.0".into(), true)
        ],
        "highest version first, by semver"
    );

    // Upgrade: a pointer flip, with its own row version check.
    let upgraded = store
        .set_current_version(&t, &p, &version("1.10.0"), 1)
        .await
        .unwrap();
    assert_eq!(upgraded.version, version("1.10.0"));
    assert_eq!(upgraded.artifact, Some(v2));
    assert_eq!(upgraded.manifest.plugin.version, version("1.10.0"));
    assert_eq!(upgraded.row_version, 2);
    let stale = store
        .set_current_version(&t, &p, &version("1.0.0"), 1)
        .await
        .unwrap_err();
    assert!(stale.is_conflict(), "{stale}");
    let missing = store
        .set_current_version(&t, &p, &version("3.0.0"), 2)
        .await
        .unwrap_err();
    assert!(
        matches!(
            missing,
            RegistryError::NotFound {
                record: Record::Version,
                ..
            }
        ),
        "{missing}"
    );
    // Rollback.
    let rolled_back = store
        .set_current_version(&t, &p, &version("1.0.0"), 2)
        .await
        .unwrap();
    assert_eq!(rolled_back.artifact, Some(v1));
    assert_eq!(rolled_back.manifest.plugin.version, version("1.0.0"));
    assert!(
        store
            .get_version(&t, &p, &version("1.0.0"))
            .await
            .unwrap()
            .unwrap()
            .current
    );
    assert!(
        !store
            .get_version(&t, &p, &version("1.10.0"))
            .await
            .unwrap()
            .unwrap()
            .current
    );
    assert_eq!(
        store.get_version(&t, &p, &version("9.9.9")).await.unwrap(),
        None
    );

    let current = store
        .remove_version(&t, &p, &version("1.0.0"))
        .await
        .unwrap_err();
    assert!(
        matches!(current, RegistryError::InvalidInput { .. }),
        "{current}"
    );
    store
        .remove_version(&t, &p, &version("1.10.0"))
        .await
        .unwrap();
    let again = store
        .remove_version(&t, &p, &version("1.10.0"))
        .await
        .unwrap_err();
    assert!(again.is_not_found(), "{again}");
    assert_eq!(store.list_versions(&t, &p).await.unwrap().len(), 2);
    // v2 is now unused and can be collected; v1 is not.
    assert_eq!(store.delete_unused_artifacts(&t).await.unwrap(), 1);
    assert_eq!(store.get_artifact(&t, &v2).await.unwrap(), None);
    assert!(store.get_artifact(&t, &v1).await.unwrap().is_some());

    let events = all_events(store, &t).await;
    let version_events: Vec<(&str, serde_json::Value)> = events
        .iter()
        .filter(|e| e.kind.as_str().starts_with("version"))
        .map(|e| (e.kind.as_str(), e.detail.clone()))
        .collect();
    assert_eq!(version_events.len(), 5, "{version_events:?}");
    assert_eq!(version_events[2].0, "version_changed");
    assert_eq!(version_events[2].1["from"], "1.0.0");
    assert_eq!(version_events[2].1["to"], "1.10.0");
    assert_eq!(version_events[4].0, "version_removed");
}

pub(super) async fn artifacts(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    let bytes: Vec<u8> = (0..100_000u32).map(|n| (n % 251) as u8).collect();
    let first = store.put_artifact(&t, &bytes).await.unwrap();
    assert!(first.newly_stored);
    assert_eq!(first.sha256, Sha256Digest::of(&bytes));
    assert_eq!(first.size, 100_000);
    let second = store.put_artifact(&t, &bytes).await.unwrap();
    assert!(!second.newly_stored, "the same bytes are stored once");
    assert_eq!(second.sha256, first.sha256);
    assert_eq!(second.created_at, first.created_at);
    assert_eq!(
        store.get_artifact(&t, &first.sha256).await.unwrap(),
        Some(bytes.clone())
    );
    assert_eq!(
        store
            .get_artifact(&tenant("other"), &first.sha256)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .get_artifact(&t, &Sha256Digest::of(b"absent"))
            .await
            .unwrap(),
        None
    );
    let empty = store.put_artifact(&t, b"").await.unwrap();
    assert_eq!(
        store.get_artifact(&t, &empty.sha256).await.unwrap(),
        Some(Vec::new())
    );

    // Corrupt the stored bytes behind the store's back: the read refuses them.
    fx.corrupt_artifact(&t, &first.sha256).await;
    let corrupt = store.get_artifact(&t, &first.sha256).await.unwrap_err();
    match &corrupt {
        RegistryError::Integrity {
            expected, actual, ..
        } => {
            assert_eq!(*expected, first.sha256);
            assert_ne!(*actual, first.sha256);
        }
        other => panic!("expected an integrity error, got {other}"),
    }
    assert!(corrupt.to_string().contains(&format!(
        "artifact sha256:{} of tenant `default` is corrupt",
        first.sha256
    )));
    // Putting the good bytes again repairs it.
    store.put_artifact(&t, &bytes).await.unwrap();
    assert_eq!(
        store.get_artifact(&t, &first.sha256).await.unwrap(),
        Some(bytes)
    );

    // Unused artifacts are collected; used ones are not.
    let used = store.put_artifact(&t, b"used").await.unwrap();
    insert_with_artifact(store, "acme/user", used.sha256).await;
    assert_eq!(store.delete_unused_artifacts(&t).await.unwrap(), 2);
    assert!(
        store
            .get_artifact(&t, &used.sha256)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.delete_unused_artifacts(&t).await.unwrap(), 0);
}

async fn insert_with_artifact(store: &dyn RegistryStore, plugin: &str, sha256: Sha256Digest) {
    store
        .insert_plugin(&new_plugin(plugin, "1.0.0").with_artifact(sha256))
        .await
        .unwrap();
}

fn hook_event(t: &TenantId, plugin: &str, n: u64, at: OffsetDateTime) -> NewEvent {
    NewEvent::new(
        t.clone(),
        EventKind::Hook,
        if n.is_multiple_of(5) {
            EventStatus::Timeout
        } else {
            EventStatus::Ok
        },
    )
    .with_plugin(id(plugin))
    .with_version(version("1.0.0"))
    .with_detail(json!({ "n": n, "hook": "response.pre_deliver", "duration_us": 12 }))
    .with_at(at)
}

pub(super) async fn events_pagination_and_filters(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    let base = time::macros::datetime!(2026-01-01 00:00 UTC);
    let mut batch = Vec::new();
    for n in 0..250u64 {
        let plugin = if n % 2 == 0 { "acme/even" } else { "acme/odd" };
        batch.push(hook_event(
            &t,
            plugin,
            n,
            base + time::Duration::seconds(n as i64),
        ));
    }
    batch.push(
        NewEvent::new(t.clone(), EventKind::PermissionDenied, EventStatus::Blocked)
            .with_plugin(id("acme/odd"))
            .with_detail(json!({ "permission": "network", "host": "evil.example" }))
            .with_at(base + time::Duration::seconds(1000)),
    );
    batch.push(
        NewEvent::new(
            t.clone(),
            EventKind::parse("host.custom").unwrap(),
            EventStatus::Ok,
        )
        .with_at(base + time::Duration::seconds(1001)),
    );
    store.append_events(&batch).await.unwrap();
    store.append_events(&[]).await.unwrap();

    // Newest first, page by page: every event once, in order.
    let mut query = EventQuery::default().with_limit(40);
    let mut seen = Vec::new();
    loop {
        let page = store.list_events(&t, &query).await.unwrap();
        assert!(page.events.len() <= 40);
        seen.extend(page.events.iter().map(|e| e.cursor));
        match page.next {
            Some(next) => query = query.with_after(Some(next)),
            None => break,
        }
    }
    assert_eq!(seen.len(), 252);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first");

    let oldest = store
        .list_events(
            &t,
            &EventQuery::default()
                .with_order(EventOrder::OldestFirst)
                .with_limit(3),
        )
        .await
        .unwrap();
    assert_eq!(
        oldest
            .events
            .iter()
            .map(|e| e.detail["n"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let first = &oldest.events[0];
    assert_eq!(first.tenant, t);
    assert_eq!(first.plugin, Some(id("acme/even")));
    assert_eq!(first.version, Some(version("1.0.0")));
    assert_eq!(first.kind, EventKind::Hook);
    assert_eq!(first.status, EventStatus::Timeout);
    assert_eq!(first.at, base);
    assert_eq!(first.detail["hook"], "response.pre_deliver");
    // Cursors survive as text.
    let cursor: EventCursor = oldest.next.unwrap().to_string().parse().unwrap();
    let next = store
        .list_events(
            &t,
            &EventQuery::default()
                .with_order(EventOrder::OldestFirst)
                .with_after(Some(cursor))
                .with_limit(2),
        )
        .await
        .unwrap();
    assert_eq!(
        next.events
            .iter()
            .map(|e| e.detail["n"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [3, 4]
    );

    // Filters: plugin, kinds, time range, and together.
    let odd = store
        .list_events(
            &t,
            &EventQuery::default()
                .with_plugin(id("acme/odd"))
                .with_limit(1000),
        )
        .await
        .unwrap();
    assert_eq!(odd.events.len(), 126);
    assert!(odd.events.iter().all(|e| e.plugin == Some(id("acme/odd"))));
    let denied = store
        .list_events(
            &t,
            &EventQuery::default().with_kinds(&[
                EventKind::PermissionDenied,
                EventKind::parse("host.custom").unwrap(),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(kinds(&denied.events), ["host.custom", "permission_denied"]);
    assert_eq!(denied.events[1].status, EventStatus::Blocked);
    let window = store
        .list_events(
            &t,
            &EventQuery::default()
                .with_plugin(id("acme/even"))
                .with_kinds(&[EventKind::Hook])
                .with_range(
                    Some(base + time::Duration::seconds(10)),
                    Some(base + time::Duration::seconds(20)),
                )
                .with_order(EventOrder::OldestFirst),
        )
        .await
        .unwrap();
    assert_eq!(
        window
            .events
            .iter()
            .map(|e| e.detail["n"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [10, 12, 14, 16, 18],
        "since is inclusive, until exclusive"
    );
    let none = store
        .list_events(
            &t,
            &EventQuery::default().with_kinds(&[EventKind::AutoDisable]),
        )
        .await
        .unwrap();
    assert!(none.events.is_empty() && none.next.is_none());
}

pub(super) async fn events_follow_and_prune(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    assert_eq!(store.latest_event_cursor(&t).await.unwrap(), None);
    assert!(store.events_after(&t, None, 10).await.unwrap().is_empty());
    let old = time::macros::datetime!(2020-01-01 00:00 UTC);
    let batch: Vec<NewEvent> = (0..10).map(|n| hook_event(&t, "acme/x", n, old)).collect();
    store.append_events(&batch).await.unwrap();
    let cursor = store.latest_event_cursor(&t).await.unwrap().unwrap();

    // A follower starting now sees only what comes after.
    let recent = OffsetDateTime::now_utc();
    let batch: Vec<NewEvent> = (10..15)
        .map(|n| hook_event(&t, "acme/x", n, recent))
        .collect();
    store.append_events(&batch).await.unwrap();
    let followed = store.events_after(&t, Some(cursor), 3).await.unwrap();
    assert_eq!(
        followed
            .iter()
            .map(|e| e.detail["n"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [10, 11, 12]
    );
    let rest = store
        .events_after(&t, Some(followed.last().unwrap().cursor), 100)
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(
        store.latest_event_cursor(&t).await.unwrap(),
        Some(rest.last().unwrap().cursor)
    );

    // Pruning removes the old ones only, and cursors stay valid.
    let pruned = store
        .prune_events(&t, recent - time::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(pruned, 10);
    assert_eq!(all_events(store, &t).await.len(), 5);
    assert_eq!(
        store
            .events_after(&t, Some(cursor), 100)
            .await
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        store
            .prune_events(&t, recent - time::Duration::days(1))
            .await
            .unwrap(),
        0
    );
    // Retention by count keeps the newest, whatever their age.
    store
        .append_events(&[
            hook_event(&t, "acme/x", 50, recent - time::Duration::days(30)),
            hook_event(&t, "acme/x", 51, recent),
        ])
        .await
        .unwrap();
    let before = all_events(store, &t).await;
    assert_eq!(before.len(), 7);
    assert_eq!(store.prune_events_beyond(&t, 100).await.unwrap(), 0);
    assert_eq!(store.prune_events_beyond(&t, 3).await.unwrap(), 4);
    let kept = all_events(store, &t).await;
    assert_eq!(
        kept.iter().map(|e| e.cursor).collect::<Vec<_>>(),
        before[4..].iter().map(|e| e.cursor).collect::<Vec<_>>(),
        "the newest three, by position"
    );
    assert_eq!(kept.last().unwrap().detail["n"], 51);
    assert_eq!(store.prune_events_beyond(&t, 3).await.unwrap(), 0);
    // New events never reuse a pruned position.
    store
        .append_events(&[hook_event(&t, "acme/x", 99, recent)])
        .await
        .unwrap();
    let newest = store.latest_event_cursor(&t).await.unwrap().unwrap();
    assert!(newest > rest.last().unwrap().cursor);
}

pub(super) async fn automatic_events(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    let p = id("acme/audited");
    insert(store, "acme/audited", "1.0.0").await;
    let mut row_version = 1;
    for state in [
        PluginState::Resolved,
        PluginState::Loading,
        PluginState::Loaded,
        PluginState::Activating,
        PluginState::Active,
    ] {
        row_version = store
            .update_plugin(
                &t,
                &p,
                &PluginUpdate::new(row_version)
                    .with_state(state)
                    .with_reason("boot"),
            )
            .await
            .unwrap()
            .row_version;
    }
    store
        .update_plugin(&t, &p, &PluginUpdate::new(row_version).with_enabled(true))
        .await
        .unwrap();
    store
        .update_config(
            &t,
            &p,
            &ConfigChange::new()
                .set_plain("channel", json!("#ops"))
                .set_secret("token", json!("xoxb-secret")),
        )
        .await
        .unwrap();
    store
        .put_grant(&NewGrant {
            tenant: t.clone(),
            plugin: p.clone(),
            version: version("1.0.0"),
            permissions: permissions(json!({ "secrets": ["token"] })),
            granted_by: "alice".into(),
        })
        .await
        .unwrap();
    let events = all_events(store, &t).await;
    assert_eq!(
        kinds(&events),
        [
            "installed",
            "state_changed",
            "state_changed",
            "state_changed",
            "state_changed",
            "state_changed",
            "enabled_changed",
            "config_changed",
            "granted",
        ]
    );
    let transitions: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.kind == EventKind::StateChanged)
        .map(|e| {
            (
                e.detail["from"].as_str().unwrap().to_owned(),
                e.detail["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        transitions,
        [
            ("installed".to_owned(), "resolved".to_owned()),
            ("resolved".into(), "loading".into()),
            ("loading".into(), "loaded".into()),
            ("loaded".into(), "activating".into()),
            ("activating".into(), "active".into()),
        ],
        "the state history"
    );
    assert!(
        events
            .iter()
            .all(|e| e.plugin.as_ref() == Some(&p) && e.status == EventStatus::Ok)
    );
    assert_eq!(events[1].detail["reason"], "boot");
    assert_eq!(events[1].detail["row_version"], 2);
    assert_eq!(events[7].detail["set"], json!(["channel", "token"]));
    assert_eq!(events[7].detail["secret"], json!(["token"]));
    assert!(!events[7].detail.to_string().contains("xoxb-secret"));
    assert_eq!(events[8].detail["granted_by"], "alice");
}

pub(super) async fn secret_config(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    let p = id("acme/slack");
    const CLEAR: &str = "xoxb-CLEAR-TEXT-SECRET-7f3a";
    const PLAIN: &str = "PLAIN-VALUE-VISIBLE-91c2";
    let empty = store.get_config(&t, &p).await.unwrap();
    assert_eq!(empty.revision, 0);
    assert!(empty.values.is_empty());

    let written = store
        .update_config(
            &t,
            &p,
            &ConfigChange::new()
                .set_plain("channel", json!(PLAIN))
                .set_plain("limits", json!({ "rate": 5, "burst": [1, 2] }))
                .set_secret("token", json!(CLEAR)),
        )
        .await
        .unwrap();
    assert_eq!(written.revision, 1);
    assert_eq!(written.plain("channel"), Some(&json!(PLAIN)));
    assert!(matches!(written.get("token"), Some(ConfigValue::Secret(s)) if s.is_redacted()));

    let redacted = store.get_config(&t, &p).await.unwrap();
    assert_eq!(redacted, written);
    assert_eq!(
        redacted.plain("limits"),
        Some(&json!({ "rate": 5, "burst": [1, 2] }))
    );
    assert_eq!(redacted.secret("token"), None, "a plain read never reveals");
    assert!(!format!("{redacted:?}").contains(CLEAR));

    let revealed = store.get_config_revealed(&t, &p).await.unwrap();
    assert_eq!(revealed.secret("token"), Some(&json!(CLEAR)));
    assert_eq!(revealed.plain("channel"), Some(&json!(PLAIN)));
    assert!(
        !format!("{revealed:?}").contains(CLEAR),
        "Debug never shows a secret"
    );

    // At rest: the plain value is there (so the search works), the secret is not.
    let at_rest = fx.bytes_at_rest().await;
    let contains = |needle: &str| {
        at_rest
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    };
    assert!(contains(PLAIN), "the plain value is stored as is");
    assert!(!contains(CLEAR), "the secret is never stored in clear text");

    // Without a key: a secret can be neither stored nor revealed; plain works.
    if let Some(keyless) = fx.open_another(RegistryOptions::default()).await {
        let err = keyless
            .update_config(
                &t,
                &p,
                &ConfigChange::new()
                    .set_secret("other", json!("x"))
                    .set_plain("p", json!(1)),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, RegistryError::SecretKeyMissing { .. }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "cannot store the secret config value `other`: no secret key is configured; set \
             RegistryOptions::secret_key (secrets are never stored in clear text)"
        );
        assert_eq!(
            keyless.get_config(&t, &p).await.unwrap().revision,
            1,
            "nothing was stored"
        );
        assert!(matches!(
            keyless.get_config_revealed(&t, &p).await.unwrap_err(),
            RegistryError::SecretKeyMissing { .. }
        ));
        assert_eq!(keyless.get_config(&t, &p).await.unwrap(), redacted);

        // With another key: a clean error naming both fingerprints.
        let wrong = SecretKey::from_bytes([7; 32]);
        let other = fx
            .open_another(RegistryOptions::default().with_secret_key(wrong.clone()))
            .await
            .unwrap();
        let err = other.get_config_revealed(&t, &p).await.unwrap_err();
        match &err {
            RegistryError::SecretKeyMismatch {
                key,
                stored_fingerprint,
                configured_fingerprint,
                ..
            } => {
                assert_eq!(key, "token");
                assert_eq!(*stored_fingerprint, test_key().fingerprint());
                assert_eq!(*configured_fingerprint, wrong.fingerprint());
            }
            other => panic!("expected a key mismatch, got {other}"),
        }
        assert!(!err.to_string().contains(CLEAR));
    } else {
        // The memory backend cannot open its data twice: check a keyless one.
        #[cfg(feature = "memory")]
        {
            let keyless = MemoryStore::new(&RegistryOptions::default());
            let err = keyless
                .update_config(&t, &p, &ConfigChange::new().set_secret("other", json!("x")))
                .await
                .unwrap_err();
            assert!(
                matches!(err, RegistryError::SecretKeyMissing { .. }),
                "{err}"
            );
            assert_eq!(keyless.get_config(&t, &p).await.unwrap().revision, 0);
        }
    }

    // Unset, and overwrite a secret with a plain value.
    let changed = store
        .update_config(
            &t,
            &p,
            &ConfigChange::new()
                .unset("limits")
                .set_plain("token", json!("now plain")),
        )
        .await
        .unwrap();
    assert_eq!(changed.revision, 2);
    assert_eq!(changed.get("limits"), None);
    assert_eq!(changed.plain("token"), Some(&json!("now plain")));
    let unset_absent = store
        .update_config(&t, &p, &ConfigChange::new().unset("never-set"))
        .await
        .unwrap();
    assert_eq!(unset_absent.revision, 3);
}

pub(super) async fn config_revisions(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    let p = id("acme/cfg");
    let first = store
        .update_config(
            &t,
            &p,
            &ConfigChange::new().expecting(0).set_plain("a", json!(1)),
        )
        .await
        .unwrap();
    assert_eq!(first.revision, 1);
    let stale = store
        .update_config(
            &t,
            &p,
            &ConfigChange::new().expecting(0).set_plain("a", json!(2)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            stale,
            RegistryError::Conflict {
                record: Record::Config,
                expected_row_version: 0,
                current_row_version: 1,
                ..
            }
        ),
        "{stale}"
    );
    assert_eq!(
        store.get_config(&t, &p).await.unwrap(),
        first,
        "the losing change stored nothing"
    );
    let second = store
        .update_config(
            &t,
            &p,
            &ConfigChange::new().expecting(1).set_plain("a", json!(2)),
        )
        .await
        .unwrap();
    assert_eq!(second.revision, 2);
    assert_eq!(second.plain("a"), Some(&json!(2)));
    let unconditional = store
        .set_config_value(&t, &p, "b", ConfigInput::Plain(json!(true)))
        .await
        .unwrap();
    assert_eq!(unconditional.revision, 3);
    assert_eq!(unconditional.values.len(), 2);
}

pub(super) async fn grants(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    let p = id("acme/granted");
    assert!(store.list_grants(&t, &p).await.unwrap().is_empty());
    let v1_permissions = permissions(json!({ "network": { "outbound": ["api.example.com"] } }));
    let grant = store
        .put_grant(&NewGrant {
            tenant: t.clone(),
            plugin: p.clone(),
            version: version("1.0.0"),
            permissions: v1_permissions.clone(),
            granted_by: "alice".into(),
        })
        .await
        .unwrap();
    assert_eq!(grant.permissions, v1_permissions);
    assert_eq!(
        store.get_grant(&t, &p, &version("1.0.0")).await.unwrap(),
        Some(grant.clone())
    );
    assert_eq!(
        store.get_grant(&t, &p, &version("2.0.0")).await.unwrap(),
        None
    );

    tokio::time::sleep(Duration::from_millis(2)).await;
    let v2_permissions = permissions(json!({
        "network": { "outbound": ["api.example.com", "*.slack.com"] },
        "secrets": ["token"],
    }));
    let grant2 = store
        .put_grant(&NewGrant {
            tenant: t.clone(),
            plugin: p.clone(),
            version: version("2.0.0"),
            permissions: v2_permissions.clone(),
            granted_by: "bob".into(),
        })
        .await
        .unwrap();
    let listed = store.list_grants(&t, &p).await.unwrap();
    assert_eq!(listed, [grant2.clone(), grant.clone()], "most recent first");
    assert_ne!(
        listed[0].permissions, listed[1].permissions,
        "the engine can see v2 asks for more"
    );

    // Granting the same version again replaces the grant.
    let regrant = store
        .put_grant(&NewGrant {
            tenant: t.clone(),
            plugin: p.clone(),
            version: version("1.0.0"),
            permissions: permissions(json!({})),
            granted_by: "carol".into(),
        })
        .await
        .unwrap();
    assert_eq!(store.list_grants(&t, &p).await.unwrap().len(), 2);
    assert_eq!(
        store
            .get_grant(&t, &p, &version("1.0.0"))
            .await
            .unwrap()
            .unwrap(),
        regrant
    );

    assert!(store.revoke_grant(&t, &p, &version("1.0.0")).await.unwrap());
    assert!(!store.revoke_grant(&t, &p, &version("1.0.0")).await.unwrap());
    assert_eq!(store.list_grants(&t, &p).await.unwrap(), [grant2]);
    let events = all_events(store, &t).await;
    assert_eq!(
        kinds(&events),
        ["granted", "granted", "granted", "grant_revoked"]
    );
}

pub(super) async fn kv(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    let p = id("acme/kv");
    let q = KvQuota::UNLIMITED;
    assert_eq!(store.kv_get(&t, &p, "missing").await.unwrap(), None);
    assert_eq!(store.kv_usage(&t, &p).await.unwrap(), KvUsage::default());
    for key in [
        "user/2", "user/10", "user/1", "users", "user0", "team/a", "usex", "user/é",
    ] {
        store.kv_set(&t, &p, key, key.as_bytes(), q).await.unwrap();
    }
    store
        .kv_set(&t, &p, "bin", &[0, 159, 146, 150, 255], q)
        .await
        .unwrap();
    assert_eq!(
        store.kv_get(&t, &p, "bin").await.unwrap(),
        Some(vec![0, 159, 146, 150, 255])
    );
    let usage = store.kv_usage(&t, &p).await.unwrap();
    assert_eq!(usage.keys, 9);
    let expected_bytes: usize = [
        "user/2", "user/10", "user/1", "users", "user0", "team/a", "usex", "user/é",
    ]
    .iter()
    .map(|k| 2 * k.len())
    .sum::<usize>()
        + 3
        + 5;
    assert_eq!(usage.bytes, expected_bytes as u64);

    let (t, p) = (&t, &p);
    let list = |prefix: &str, after: Option<&str>, limit: usize| {
        let list = KvList::prefix(prefix).with_after(after).with_limit(limit);
        async move { store.kv_list(t, p, &list).await.unwrap() }
    };
    assert_eq!(
        list("user/", None, 100).await,
        ["user/1", "user/10", "user/2", "user/é"],
        "byte order, prefix only"
    );
    assert_eq!(list("user/", None, 2).await, ["user/1", "user/10"]);
    assert_eq!(
        list("user/", Some("user/10"), 2).await,
        ["user/2", "user/é"]
    );
    assert_eq!(
        list("user", None, 100).await,
        ["user/1", "user/10", "user/2", "user/é", "user0", "users"]
    );
    assert_eq!(list("", None, 3).await, ["bin", "team/a", "user/1"]);
    assert!(list("nothing", None, 3).await.is_empty());
    assert!(list("user/", Some("user/é"), 3).await.is_empty());

    // Overwrite counts the difference; delete gives the bytes back.
    let before = store.kv_usage(t, p).await.unwrap();
    let after = store
        .kv_set(t, p, "user/1", b"a much longer value", q)
        .await
        .unwrap();
    assert_eq!(after.keys, before.keys);
    assert_eq!(after.bytes, before.bytes - 6 + 19);
    assert_eq!(store.kv_usage(t, p).await.unwrap(), after);
    assert!(store.kv_delete(t, p, "user/1").await.unwrap());
    assert!(!store.kv_delete(t, p, "user/1").await.unwrap());
    let deleted = store.kv_usage(t, p).await.unwrap();
    assert_eq!(deleted.keys, after.keys - 1);
    assert_eq!(deleted.bytes, after.bytes - 6 - 19);
    assert_eq!(store.kv_get(t, p, "user/1").await.unwrap(), None);
    // Other plugins and tenants do not see it.
    assert_eq!(
        store.kv_get(t, &id("acme/other"), "user/2").await.unwrap(),
        None
    );
    assert_eq!(
        store.kv_get(&tenant("t2"), p, "user/2").await.unwrap(),
        None
    );
    assert_eq!(
        store.kv_usage(t, &id("acme/other")).await.unwrap(),
        KvUsage::default()
    );
    // An empty value is a value.
    store.kv_set(t, p, "empty", b"", q).await.unwrap();
    assert_eq!(store.kv_get(t, p, "empty").await.unwrap(), Some(Vec::new()));
}

pub(super) async fn kv_quota(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    let p = id("acme/quota");
    let quota = KvQuota::bytes(100);
    store.kv_set(&t, &p, "a", &[1; 49], quota).await.unwrap(); // 50 bytes
    store.kv_set(&t, &p, "b", &[2; 49], quota).await.unwrap(); // 100: exactly full
    let usage = store.kv_usage(&t, &p).await.unwrap();
    assert_eq!(
        usage,
        KvUsage {
            bytes: 100,
            keys: 2
        }
    );

    let over = store.kv_set(&t, &p, "c", &[3], quota).await.unwrap_err();
    match &over {
        RegistryError::QuotaExceeded {
            quota,
            used,
            needed,
            ..
        } => {
            assert_eq!((*quota, *used, *needed), (100, 100, 102));
        }
        other => panic!("expected a quota error, got {other}"),
    }
    assert_eq!(
        over.to_string(),
        "kv quota exceeded for `acme/quota` in tenant `default`: the write needs 102 bytes (keys and \
         values) but the quota is 100 bytes (100 in use); delete keys or raise the quota"
    );
    // Nothing was stored: not the key, not the usage.
    assert_eq!(store.kv_get(&t, &p, "c").await.unwrap(), None);
    assert_eq!(store.kv_usage(&t, &p).await.unwrap(), usage);
    // Growing an existing value past the quota fails and keeps the old value.
    let grow = store
        .kv_set(&t, &p, "a", &[9; 50], quota)
        .await
        .unwrap_err();
    assert!(
        matches!(grow, RegistryError::QuotaExceeded { needed: 101, .. }),
        "{grow}"
    );
    assert_eq!(store.kv_get(&t, &p, "a").await.unwrap(), Some(vec![1; 49]));
    // Shrinking one makes room for another.
    store.kv_set(&t, &p, "a", &[1; 9], quota).await.unwrap();
    store.kv_set(&t, &p, "c", &[3; 39], quota).await.unwrap();
    assert_eq!(
        store.kv_usage(&t, &p).await.unwrap(),
        KvUsage {
            bytes: 100,
            keys: 3
        }
    );
    // A quota is per plugin and tenant.
    store
        .kv_set(&t, &id("acme/other"), "a", &[1; 99], quota)
        .await
        .unwrap();
    store
        .kv_set(&tenant("t2"), &p, "a", &[1; 99], quota)
        .await
        .unwrap();
    // Under a quota below the usage, a write that leaves the plugin over it fails.
    let small = KvQuota::bytes(10);
    assert!(store.kv_set(&t, &p, "a", &[1; 9], small).await.is_err());
    assert!(store.kv_delete(&t, &p, "a").await.unwrap());
}

pub(super) async fn kv_key_quota(fx: &Fixture) {
    let store = &fx.store;
    let t = default_tenant();
    let p = id("acme/keys");
    let quota = KvQuota::bytes(1 << 20).with_max_keys(2);
    // (key, value, whether it is stored): overwriting and re-adding after a
    // delete stay within the quota; a third key does not.
    let table: &[(&str, &[u8], bool)] = &[
        ("a", b"1", true),
        ("b", b"2", true),
        ("c", b"3", false),
        ("a", b"11", true),
        ("b", b"22", true),
    ];
    for (key, value, stored) in table {
        let result = store.kv_set(&t, &p, key, value, quota).await;
        assert_eq!(result.is_ok(), *stored, "{key}: {result:?}");
        if let Err(error) = result {
            assert!(
                matches!(
                    &error,
                    RegistryError::KeyQuotaExceeded {
                        max_keys: 2,
                        keys: 2,
                        ..
                    }
                ),
                "{error}"
            );
            assert_eq!(
                error.to_string(),
                "kv key quota exceeded for `acme/keys` in tenant `default`: the write adds a key \
                 but the quota is 2 keys (2 in use); delete keys or raise the quota"
            );
        }
    }
    assert_eq!(
        store.kv_get(&t, &p, "c").await.unwrap(),
        None,
        "nothing stored"
    );
    assert_eq!(store.kv_usage(&t, &p).await.unwrap().keys, 2);
    assert!(store.kv_delete(&t, &p, "a").await.unwrap());
    store.kv_set(&t, &p, "c", b"3", quota).await.unwrap();
    assert_eq!(
        store.kv_usage(&t, &p).await.unwrap(),
        KvUsage { bytes: 5, keys: 2 } // "b" = "22" and "c" = "3"
    );
}

pub(super) async fn concurrent_kv_quota(fx: &Fixture) {
    const TASKS: usize = 16;
    let t = default_tenant();
    let p = id("acme/racy-kv");
    let quota = KvQuota::bytes(1000);
    let mut tasks = Vec::new();
    for n in 0..TASKS {
        let (store, t, p) = (fx.store.clone(), t.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            // Keys "k00".."k15": 3 + 97 = 100 bytes each.
            store
                .kv_set(&t, &p, &format!("k{n:02}"), &[n as u8; 97], quota)
                .await
        }));
    }
    let mut stored = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => stored += 1,
            Err(RegistryError::QuotaExceeded { .. }) => {}
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(stored, 10, "exactly as many as fit");
    let usage = fx.store.kv_usage(&t, &p).await.unwrap();
    assert_eq!(
        usage,
        KvUsage {
            bytes: 1000,
            keys: 10
        }
    );
    let keys = fx
        .store
        .kv_list(&t, &p, &KvList::prefix("k").with_limit(100))
        .await
        .unwrap();
    assert_eq!(keys.len(), 10, "usage matches what is stored");
}

pub(super) async fn tenant_isolation(fx: &Fixture) {
    let store = &*fx.store;
    let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
    let p = id("acme/shared-name");
    for (t, state) in [(&a, PluginState::Active), (&b, PluginState::Disabled)] {
        let artifact = store.put_artifact(t, t.as_str().as_bytes()).await.unwrap();
        store
            .insert_plugin(
                &NewPlugin::new(
                    t.clone(),
                    manifest("acme/shared-name", "1.0.0"),
                    PluginSource::new(SourceKind::Builtin, "x"),
                )
                .with_state(state)
                .with_artifact(artifact.sha256),
            )
            .await
            .unwrap();
        store
            .update_config(
                t,
                &p,
                &ConfigChange::new().set_plain("tenant", json!(t.as_str())),
            )
            .await
            .unwrap();
        store
            .kv_set(t, &p, "k", t.as_str().as_bytes(), KvQuota::UNLIMITED)
            .await
            .unwrap();
    }
    let in_a = store.get_plugin(&a, &p).await.unwrap().unwrap();
    let in_b = store.get_plugin(&b, &p).await.unwrap().unwrap();
    assert_eq!(
        (in_a.state, in_b.state),
        (PluginState::Active, PluginState::Disabled)
    );
    assert_ne!(in_a.artifact, in_b.artifact);
    assert_eq!(in_a.tenant, a);

    // Writing in one tenant leaves the other alone.
    store
        .update_plugin(&a, &p, &PluginUpdate::new(1).with_state(PluginState::Error))
        .await
        .unwrap();
    assert_eq!(
        store.get_plugin(&b, &p).await.unwrap().unwrap().row_version,
        1
    );
    assert_eq!(
        store.get_config(&a, &p).await.unwrap().plain("tenant"),
        Some(&json!("tenant-a"))
    );
    assert_eq!(
        store.get_config(&b, &p).await.unwrap().plain("tenant"),
        Some(&json!("tenant-b"))
    );
    assert_eq!(
        store.kv_get(&b, &p, "k").await.unwrap(),
        Some(b"tenant-b".to_vec())
    );
    assert_eq!(
        store
            .get_artifact(&b, &in_a.artifact.unwrap())
            .await
            .unwrap(),
        None,
        "artifacts are per tenant"
    );
    let events_a = all_events(store, &a).await;
    assert!(events_a.iter().all(|e| e.tenant == a));
    assert_eq!(
        kinds(&events_a),
        ["installed", "config_changed", "state_changed"]
    );
    assert_eq!(
        kinds(&all_events(store, &b).await),
        ["installed", "config_changed"]
    );
    store
        .delete_plugin(
            &a,
            &p,
            &DeleteOptions {
                expected_row_version: None,
                purge: Purge::ALL,
                leftovers_owner: None,
            },
        )
        .await
        .unwrap();
    assert!(store.get_plugin(&b, &p).await.unwrap().is_some());
    assert_eq!(store.kv_usage(&b, &p).await.unwrap().keys, 1);
    assert_eq!(all_events(store, &b).await.len(), 2);
    assert_eq!(
        store
            .prune_events(&a, OffsetDateTime::now_utc() + time::Duration::days(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.prune_events_beyond(&a, 0).await.unwrap(), 0);
    assert_eq!(
        all_events(store, &b).await.len(),
        2,
        "pruning one tenant keeps the other's log"
    );
}

pub(super) async fn change_feed(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    let p = id("acme/watched");
    let mut changes = store.subscribe_changes().await.unwrap();
    let next = async |changes: &mut ChangeSubscription| {
        tokio::time::timeout(Duration::from_secs(5), changes.recv())
            .await
            .expect("a change within 5 s")
            .unwrap()
    };
    insert(store, "acme/watched", "1.0.0").await;
    let change = next(&mut changes).await;
    assert_eq!(change.kind, ChangeKind::PluginInserted);
    assert_eq!(change.tenant, t);
    assert_eq!(change.plugin, Some(p.clone()));
    assert_eq!(change.row_version, Some(1));
    assert_eq!(change.origin, store.info().instance);

    store
        .update_plugin(&t, &p, &PluginUpdate::new(1).with_enabled(true))
        .await
        .unwrap();
    let change = next(&mut changes).await;
    assert_eq!(
        (change.kind, change.row_version),
        (ChangeKind::PluginUpdated, Some(2))
    );

    // A failed write announces nothing.
    assert!(
        store
            .update_plugin(&t, &p, &PluginUpdate::new(1))
            .await
            .is_err()
    );
    store
        .update_config(&t, &p, &ConfigChange::new().set_plain("a", json!(1)))
        .await
        .unwrap();
    let change = next(&mut changes).await;
    assert_eq!(
        (change.kind, change.row_version),
        (ChangeKind::ConfigChanged, Some(1))
    );
    store
        .append_events(&[NewEvent::new(
            t.clone(),
            EventKind::Error,
            EventStatus::Error,
        )])
        .await
        .unwrap();
    assert_eq!(next(&mut changes).await.kind, ChangeKind::EventsAppended);
    // KV writes are not announced.
    store
        .kv_set(&t, &p, "k", b"v", KvQuota::UNLIMITED)
        .await
        .unwrap();
    store
        .delete_plugin(&t, &p, &DeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(next(&mut changes).await.kind, ChangeKind::PluginDeleted);
    assert!(changes.try_recv().unwrap().is_none());
}

pub(super) async fn invalid_input(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    let p = id("acme/x");
    let check = |result: Result<(), RegistryError>, expected: &str| match result {
        Err(e @ RegistryError::InvalidInput { .. }) => assert_eq!(e.to_string(), expected),
        other => panic!("expected invalid input `{expected}`, got {other:?}"),
    };
    check(
        store
            .list_plugins(&t, &PluginQuery::default().with_limit(0))
            .await
            .map(drop),
        "invalid plugin page size `0`: ask for at least one plugin",
    );
    check(
        store
            .list_events(&t, &EventQuery::default().with_limit(0))
            .await
            .map(drop),
        "invalid event page size `0`: ask for at least one event",
    );
    check(
        store
            .list_events(
                &t,
                &EventQuery::default().with_kinds(&[EventKind::Custom("Bad Kind".into())]),
            )
            .await
            .map(drop),
        "invalid event kind `Bad Kind`: a kind may hold only a-z, 0-9, '_', '.' and '-', not 'B'",
    );
    check(
        store
            .append_events(&[NewEvent::new(
                t.clone(),
                EventKind::Custom(String::new()),
                EventStatus::Ok,
            )])
            .await,
        "invalid event kind ``: a kind is 1 to 64 characters long",
    );
    check(
        store
            .kv_set(&t, &p, "", b"v", KvQuota::UNLIMITED)
            .await
            .map(drop),
        "invalid kv key ``: a key is 1 to 1024 bytes long, not 0",
    );
    check(
        store.kv_get(&t, &p, &"k".repeat(1025)).await.map(drop),
        &format!(
            "invalid kv key `{}…`: a key is 1 to 1024 bytes long, not 1025",
            "k".repeat(80)
        ),
    );
    check(
        store
            .kv_list(&t, &p, &KvList::prefix("").with_limit(0))
            .await
            .map(drop),
        "invalid kv page size `0`: ask for at least one key",
    );
    check(
        store
            .update_config(
                &t,
                &p,
                &ConfigChange::new().set_plain("a", json!(1)).unset("a"),
            )
            .await
            .map(drop),
        "invalid config change `a`: the key is both set and unset",
    );
    check(
        store
            .update_config(&t, &p, &ConfigChange::new().set_plain("", json!(1)))
            .await
            .map(drop),
        "invalid config key ``: a key is 1 to 256 characters long, without control characters",
    );
    // A rejected batch stores none of its events.
    let batch = [
        NewEvent::new(t.clone(), EventKind::Hook, EventStatus::Ok),
        NewEvent::new(t.clone(), EventKind::Custom("NOPE".into()), EventStatus::Ok),
    ];
    assert!(store.append_events(&batch).await.is_err());
    assert_eq!(store.latest_event_cursor(&t).await.unwrap(), None);
}

pub(super) async fn event_writer(fx: &Fixture) {
    let t = default_tenant();
    let writer = EventWriter::spawn(
        fx.store.clone(),
        EventWriterConfig {
            max_batch: 64,
            max_delay: Duration::from_millis(20),
            ..EventWriterConfig::default()
        },
    );
    let mut changes = fx.store.subscribe_changes().await.unwrap();
    for n in 0..300 {
        assert!(writer.record(hook_event(&t, "acme/hooked", n, OffsetDateTime::now_utc())));
    }
    writer.flush().await;
    let stats = writer.stats();
    assert_eq!((stats.written, stats.dropped, stats.failed), (300, 0, 0));
    let events = all_events(&*fx.store, &t).await;
    assert_eq!(
        events
            .iter()
            .map(|e| e.detail["n"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        (0..300).collect::<Vec<_>>(),
        "in the order recorded"
    );
    // Written in batches, not one transaction per event.
    let stats = writer.stats();
    assert!((5..300).contains(&stats.batches), "{stats:?}");
    let mut appends = 0;
    while let Ok(Some(change)) = changes.try_recv() {
        assert_eq!(change.kind, ChangeKind::EventsAppended);
        appends += 1;
    }
    assert!(
        appends <= stats.batches,
        "one announcement per batch at most"
    );
}

pub(super) async fn api_tokens(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    let new = |name: &str, role: &str, hash: &str| NewApiToken {
        tenant: t.clone(),
        name: name.to_owned(),
        role: role.to_owned(),
        token_sha256: hash.repeat(64),
    };
    assert_eq!(store.list_api_tokens(&t).await.unwrap(), []);
    let ci = store
        .insert_api_token(&new("ci", "operator", "a"))
        .await
        .unwrap();
    assert_eq!((ci.name.as_str(), ci.role.as_str()), ("ci", "operator"));
    store
        .insert_api_token(&new("alice", "admin", "b"))
        .await
        .unwrap();
    // A name or a hash taken is refused, and nothing changes.
    for (name, hash) in [("ci", "c"), ("bob", "a")] {
        let err = store
            .insert_api_token(&new(name, "viewer", hash))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                RegistryError::AlreadyExists {
                    record: Record::ApiToken,
                    ..
                }
            ),
            "{name}: {err}"
        );
    }
    let names: Vec<String> = store
        .list_api_tokens(&t)
        .await
        .unwrap()
        .into_iter()
        .map(|t| format!("{}:{}", t.name, t.role))
        .collect();
    assert_eq!(names, ["alice:admin", "ci:operator"]);
    assert_eq!(
        store.find_api_token(&t, &"a".repeat(64)).await.unwrap(),
        Some(ci.clone())
    );
    assert_eq!(
        store.find_api_token(&t, &"c".repeat(64)).await.unwrap(),
        None
    );
    // Tokens belong to their tenant.
    assert_eq!(
        store
            .find_api_token(&tenant("other"), &"a".repeat(64))
            .await
            .unwrap(),
        None
    );
    assert!(store.delete_api_token(&t, "ci").await.unwrap());
    assert!(!store.delete_api_token(&t, "ci").await.unwrap());
    assert_eq!(
        store.find_api_token(&t, &"a".repeat(64)).await.unwrap(),
        None
    );
}

pub(super) async fn verification_and_publisher_keys(fx: &Fixture) {
    let store = &*fx.store;
    let t = default_tenant();
    let p = id("acme/signed");
    let first = json!({ "level": "partner", "signers": [{ "key_id": "00aa", "role": "author" }] });
    store
        .insert_plugin(&new_plugin("acme/signed", "1.0.0").with_verification(first.clone()))
        .await
        .unwrap();
    let second = json!({ "level": "untrusted", "signers": [] });
    store
        .add_version(
            &t,
            &p,
            &NewVersion {
                manifest: manifest("acme/signed", "2.0.0"),
                artifact: None,
                verification: Some(second.clone()),
            },
        )
        .await
        .unwrap();
    let record = store.get_plugin(&t, &p).await.unwrap().unwrap();
    assert_eq!(record.verification, Some(first.clone()));
    let versions = store.list_versions(&t, &p).await.unwrap();
    let found: Vec<_> = versions
        .iter()
        .map(|v| (v.version.to_string(), v.verification.clone()))
        .collect();
    assert_eq!(
        found,
        [
            ("2.0.0".to_owned(), Some(second)),
            ("1.0.0".to_owned(), Some(first)),
        ]
    );
    let unverified = store
        .insert_plugin(&new_plugin("acme/old", "1.0.0"))
        .await
        .unwrap();
    assert_eq!(unverified.verification, None);

    assert_eq!(store.get_publisher_key(&t, "acme").await.unwrap(), None);
    let bind = |key: &str, by: &str| NewPublisherKey {
        tenant: t.clone(),
        publisher: "acme".to_owned(),
        public_key: key.to_owned(),
        key_id: format!("id-{key}"),
        bound_by: by.to_owned(),
    };
    store
        .put_publisher_key(&bind("k1", "first-signature"))
        .await
        .unwrap();
    store
        .put_publisher_key(&bind("k2", "rotation"))
        .await
        .unwrap();
    let bound = store.get_publisher_key(&t, "acme").await.unwrap().unwrap();
    assert_eq!(
        (bound.public_key.as_str(), bound.bound_by.as_str()),
        ("k2", "rotation")
    );
    assert_eq!(
        store
            .get_publisher_key(&tenant("other"), "acme")
            .await
            .unwrap(),
        None
    );
    // A binding outlives the publisher's plugins.
    store
        .delete_plugin(
            &t,
            &p,
            &DeleteOptions {
                purge: Purge::ALL,
                ..DeleteOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(store.list_publisher_keys(&t).await.unwrap(), [bound]);
}

pub(super) async fn leftovers_purged(fx: &Fixture) {
    let store = &*fx.store;
    let t = &default_tenant();
    let p = id("acme/left");
    store
        .insert_plugin(&new_plugin("acme/left", "1.0.0"))
        .await
        .unwrap();
    store
        .update_config(t, &p, &ConfigChange::new().set_plain("a", json!(1)))
        .await
        .unwrap();
    store
        .kv_set(t, &p, "k", b"v", KvQuota::UNLIMITED)
        .await
        .unwrap();
    store
        .put_grant(&NewGrant {
            tenant: t.clone(),
            plugin: p.clone(),
            version: version("1.0.0"),
            permissions: permissions(json!({})),
            granted_by: "test".into(),
        })
        .await
        .unwrap();
    // Refused while installed: nothing is purged.
    let refused = store.purge_leftovers(t, &p).await.unwrap_err();
    assert!(
        matches!(refused, RegistryError::AlreadyExists { .. }),
        "{refused}"
    );
    assert_eq!(store.get_config(t, &p).await.unwrap().values.len(), 1);
    assert_eq!(store.get_leftovers_owner(t, &p).await.unwrap(), None);
    store
        .delete_plugin(
            t,
            &p,
            &DeleteOptions {
                leftovers_owner: Some(r#"{"source":"builtin"}"#.into()),
                ..DeleteOptions::default()
            },
        )
        .await
        .unwrap();
    // Who left them is recorded with the deletion, per tenant.
    assert_eq!(
        store.get_leftovers_owner(t, &p).await.unwrap().as_deref(),
        Some(r#"{"source":"builtin"}"#)
    );
    assert_eq!(
        store
            .get_leftovers_owner(&tenant("other"), &p)
            .await
            .unwrap(),
        None
    );
    let report = store.purge_leftovers(t, &p).await.unwrap();
    assert_eq!(
        report,
        DeleteReport {
            config_keys: 1,
            kv_entries: 1,
            grants: 1,
            ..DeleteReport::default()
        }
    );
    assert!(store.get_config(t, &p).await.unwrap().values.is_empty());
    assert_eq!(store.kv_usage(t, &p).await.unwrap().keys, 0);
    assert!(store.list_grants(t, &p).await.unwrap().is_empty());
    assert_eq!(
        store.get_leftovers_owner(t, &p).await.unwrap(),
        None,
        "the purge forgets who left them"
    );
    // A deletion without an owner forgets an earlier one.
    for owner in [Some("first"), None] {
        store
            .insert_plugin(&new_plugin("acme/left", "1.0.0"))
            .await
            .unwrap();
        store
            .delete_plugin(
                t,
                &p,
                &DeleteOptions {
                    leftovers_owner: owner.map(str::to_owned),
                    ..DeleteOptions::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            store.get_leftovers_owner(t, &p).await.unwrap().as_deref(),
            owner
        );
    }
    assert!(
        all_events(store, t)
            .await
            .iter()
            .any(|e| e.kind.as_str() == "removed"),
        "the history stays"
    );
    // Purging nothing is no error.
    assert_eq!(
        store.purge_leftovers(t, &p).await.unwrap(),
        DeleteReport::default()
    );
}

/// The tenants a registry knows are those with plugins or events, in order.
pub(super) async fn tenants_are_listed(fx: &Fixture) {
    let store = &*fx.store;
    assert!(store.list_tenants().await.unwrap().is_empty());
    let zeta = TenantId::new("zeta").unwrap();
    store
        .append_events(&[hook_event(&zeta, "acme/x", 1, OffsetDateTime::now_utc())])
        .await
        .unwrap();
    insert(store, "acme/a", "1.0.0").await;
    let tenants = store.list_tenants().await.unwrap();
    assert_eq!(
        tenants.iter().map(TenantId::as_str).collect::<Vec<_>>(),
        ["default", "zeta"]
    );
}

fn log_line(t: &TenantId, plugin: &str, level: LogLevel, n: u64, at: OffsetDateTime) -> NewLog {
    NewLog {
        tenant: t.clone(),
        plugin: id(plugin),
        level,
        message: format!("line {n}"),
        fields: vec![
            ("n".to_owned(), n.to_string()),
            ("a".to_owned(), "\"x\"\n".to_owned()),
        ],
        at,
    }
}

fn messages(page: &LogPage) -> Vec<String> {
    page.logs.iter().map(|l| l.message.clone()).collect()
}

pub(super) async fn plugin_logs(fx: &Fixture) {
    let store = &*fx.store;
    let (t, other) = (default_tenant(), tenant("other"));
    let long_ago = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let now = OffsetDateTime::now_utc();
    let levels = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];
    let mut batch: Vec<NewLog> = (0..8)
        .map(|n| {
            let at = if n < 4 { long_ago } else { now };
            log_line(&t, "acme/chatty", levels[n as usize % 4], n, at)
        })
        .collect();
    batch.push(log_line(&t, "acme/quiet", LogLevel::Info, 0, now));
    batch.push(log_line(&other, "acme/chatty", LogLevel::Info, 99, now));
    assert_eq!(
        store.append_logs(&batch, 5).await.unwrap(),
        3,
        "3 of chatty's 8 go"
    );

    let chatty = LogQuery {
        plugin: Some(id("acme/chatty")),
        ..LogQuery::default()
    };
    let page = store.list_logs(&t, &chatty).await.unwrap();
    assert_eq!(
        messages(&page),
        ["line 3", "line 4", "line 5", "line 6", "line 7"]
    );
    assert_eq!(page.dropped, 3, "the oldest dropped first, and counted");
    let first = &page.logs[0];
    assert_eq!((first.level, &first.tenant), (LogLevel::Error, &t));
    assert_eq!(
        first.fields[1],
        ("a".to_owned(), "\"x\"\n".to_owned()),
        "fields kept as written"
    );
    assert_eq!(
        first.at.unix_timestamp(),
        long_ago.unix_timestamp(),
        "its time kept"
    );
    assert!(
        page.logs.windows(2).all(|w| w[0].id < w[1].id),
        "oldest first"
    );

    // By level, by time, the newest N, after an id.
    let warn = LogQuery {
        level: Some(LogLevel::Warn),
        ..chatty.clone()
    };
    assert_eq!(
        messages(&store.list_logs(&t, &warn).await.unwrap()),
        ["line 3", "line 6", "line 7"]
    );
    let recent = LogQuery {
        since: Some(now - time::Duration::minutes(1)),
        ..chatty.clone()
    };
    assert_eq!(
        messages(&store.list_logs(&t, &recent).await.unwrap()),
        ["line 4", "line 5", "line 6", "line 7"]
    );
    let newest = LogQuery {
        limit: 2,
        ..chatty.clone()
    };
    assert_eq!(
        messages(&store.list_logs(&t, &newest).await.unwrap()),
        ["line 6", "line 7"]
    );
    let after = LogQuery {
        after: Some(page.logs[1].id),
        limit: 2,
        ..chatty.clone()
    };
    assert_eq!(
        messages(&store.list_logs(&t, &after).await.unwrap()),
        ["line 5", "line 6"]
    );

    // Every plugin of the tenant, never another tenant's; drops summed.
    let all = store.list_logs(&t, &LogQuery::default()).await.unwrap();
    assert_eq!(all.logs.len(), 6);
    assert_eq!(all.dropped, 3);
    let theirs = store.list_logs(&other, &LogQuery::default()).await.unwrap();
    assert_eq!(
        (messages(&theirs), theirs.dropped),
        (vec!["line 99".to_owned()], 0)
    );

    // Later appends keep the bound and add to the count.
    let more: Vec<NewLog> = (8..10)
        .map(|n| log_line(&t, "acme/chatty", LogLevel::Info, n, now))
        .collect();
    assert_eq!(store.append_logs(&more, 5).await.unwrap(), 2);
    let page = store.list_logs(&t, &chatty).await.unwrap();
    assert_eq!(
        messages(&page),
        ["line 5", "line 6", "line 7", "line 8", "line 9"]
    );
    assert_eq!(page.dropped, 5);
    assert_eq!(store.append_logs(&[], 5).await.unwrap(), 0);
    let none = LogQuery {
        limit: 0,
        ..LogQuery::default()
    };
    assert!(
        store.list_logs(&t, &none).await.is_err(),
        "a page of nothing is refused"
    );

    // Through the writer, flushed with the events.
    let writer = EventWriter::spawn(
        fx.store.clone(),
        EventWriterConfig {
            logs_per_plugin: 3,
            ..EventWriterConfig::default()
        },
    );
    for n in 0..4 {
        assert!(writer.record_log(log_line(&t, "acme/quiet", LogLevel::Info, n + 1, now)));
    }
    writer.flush().await;
    let stats = writer.log_stats();
    assert_eq!(
        (stats.written, stats.dropped, stats.failed, stats.pruned),
        (4, 0, 0, 2)
    );
    let quiet = LogQuery {
        plugin: Some(id("acme/quiet")),
        ..LogQuery::default()
    };
    let page = store.list_logs(&t, &quiet).await.unwrap();
    assert_eq!(messages(&page), ["line 2", "line 3", "line 4"]);
    assert_eq!(page.dropped, 2);
}
