//! The registry's test suite: one set of checks (`suite.rs`), generic over
//! [`RegistryStore`], run against every backend compiled in, plus the
//! checks only a database has (`sqlite.rs`, `postgres.rs`).
//!
//! PostgreSQL tests connect to `TENON_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and run each in a schema of
//! its own, dropped afterwards. Without a reachable server they are skipped
//! with a message, except under `CI=true`, where they fail.

mod fixture;
mod suite;

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub(crate) use fixture::Fixture;

use serde_json::json;
use tenon_manifest::{Manifest, Permissions, PluginId, Version};

use crate::tenant::TenantId;

pub(crate) fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

pub(crate) fn id(text: &str) -> PluginId {
    PluginId::new(text).unwrap()
}

pub(crate) fn version(text: &str) -> Version {
    Version::parse(text).unwrap()
}

/// A small valid manifest for `id` at `version`.
pub(crate) fn manifest(id: &str, version: &str) -> Manifest {
    serde_json::from_value(json!({
        "manifest_version": 1,
        "plugin": {
            "id": id,
            "name": format!("Test plugin {id}"),
            "version": version,
            "description": "A plugin of the registry's test suite.",
        },
        "runtime": { "kind": "component", "module": "plugin.wasm" },
        "permissions": { "network": { "outbound": ["api.example.com"] }, "secrets": ["token"] },
    }))
    .expect("a valid manifest")
}

pub(crate) fn permissions(value: serde_json::Value) -> Permissions {
    serde_json::from_value(value).expect("valid permissions")
}

/// Runs each named check of `suite.rs` against every backend compiled in.
macro_rules! suite {
    ($($check:ident),* $(,)?) => {
        #[cfg(feature = "memory")]
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let fixture = super::Fixture::memory().await;
                    super::suite::$check(&fixture).await;
                    fixture.finish().await;
                }
            )*
        }

        #[cfg(feature = "sqlite")]
        mod sqlite_suite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let fixture = super::Fixture::sqlite().await;
                    super::suite::$check(&fixture).await;
                    fixture.finish().await;
                }
            )*
        }

        #[cfg(feature = "postgres")]
        mod postgres_suite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some(fixture) = super::Fixture::postgres().await else {
                        return;
                    };
                    super::suite::$check(&fixture).await;
                    fixture.finish().await;
                }
            )*
        }
    };
}

suite!(
    api_tokens,
    verification_and_publisher_keys,
    plugin_crud,
    plugin_listing,
    optimistic_updates,
    concurrent_updates_have_one_winner,
    delete_and_purge,
    leftovers_purged,
    versions_and_rollback,
    artifacts,
    events_pagination_and_filters,
    events_follow_and_prune,
    automatic_events,
    secret_config,
    config_revisions,
    grants,
    kv,
    kv_quota,
    kv_key_quota,
    concurrent_kv_quota,
    tenant_isolation,
    change_feed,
    invalid_input,
    event_writer,
    tenants_are_listed,
    plugin_logs,
);
