//! Fleets: two engines (with their own registry connections, as two
//! processes would have) on one PostgreSQL registry converge through its
//! change feed.

use std::time::Duration;

use serde_json::json;
use tenon_engine::{DisableOptions, HookContext, PluginEngine, PluginId, RegistryOptions};
use tenon_tests::{drop_schema, eventually, plugin, postgres, test_key, unique_schema};

async fn engine_on(url: &str, schema: &str, dir: &std::path::Path) -> PluginEngine {
    PluginEngine::builder()
        .registry(url)
        .registry_options(
            RegistryOptions::default()
                .with_postgres_schema(schema)
                .with_secret_key(test_key()),
        )
        .data_dir(dir)
        .hooks(tenon_engine::agent_runner_hooks())
        .build()
        .await
        .expect("an engine on PostgreSQL")
}

fn blocks(outcome: &tenon_engine::DispatchOutcome) -> bool {
    outcome.is_blocked()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_one_postgres_registry_converge() {
    let Some(url) = postgres().await else {
        return;
    };
    let schema = unique_schema();
    let dir = tempfile::tempdir().unwrap();
    let a = engine_on(&url, &schema, &dir.path().join("a")).await;
    let b = engine_on(&url, &schema, &dir.path().join("b")).await;
    let moderator = PluginId::new("tenon-examples/moderator").unwrap();

    a.install(plugin("moderator").dir.as_path())
        .await
        .expect("installs");
    a.configure(
        &moderator,
        json!({"blocked_words": ["forbidden"]})
            .as_object()
            .unwrap()
            .clone(),
        &[],
    )
    .await
    .expect("configures");
    a.enable(&moderator).await.expect("enables");

    let data = || json!({"content": "a forbidden word"});
    let context = HookContext::new("default");
    let converged = eventually(Duration::from_secs(2), async || {
        b.dispatch("response.pre_deliver", &context, data())
            .await
            .is_ok_and(|outcome| blocks(&outcome))
    })
    .await;
    assert!(
        converged,
        "enabling through one engine activates the plugin in the other within 2 s"
    );

    a.disable(&moderator, DisableOptions::default())
        .await
        .expect("disables");
    let stopped = eventually(Duration::from_secs(2), async || {
        b.dispatch("response.pre_deliver", &context, data())
            .await
            .is_ok_and(|outcome| !blocks(&outcome))
    })
    .await;
    assert!(
        stopped,
        "disabling through one engine stops it in the other"
    );

    a.shutdown().await;
    b.shutdown().await;
    drop_schema(&url, &schema).await;
}
