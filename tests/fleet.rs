//! Fleets: two engines in two processes on one PostgreSQL registry converge
//! through its change feed. The test runs itself a second time as the
//! follower process.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tenon_engine::{DisableOptions, PluginEngine, PluginId, RegistryOptions};
use tenon_tests::{drop_schema, plugin, postgres, test_key, unique_schema};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

const ROLE: &str = "TENON_FLEET_FOLLOWER";
const URL: &str = "TENON_FLEET_URL";
const SCHEMA: &str = "TENON_FLEET_SCHEMA";
const TEST: &str = "two_processes_on_one_postgres_registry_converge";

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
        .trust_policy(tenon_engine::TrustPolicy::development())
        .build()
        .await
        .expect("an engine on PostgreSQL")
}

/// Whether the moderator (configured to block "forbidden") runs in `engine`.
async fn blocks(engine: &PluginEngine) -> bool {
    engine
        .dispatch(
            "response.pre_deliver",
            &engine.context(),
            json!({"content": "a forbidden word"}),
        )
        .await
        .is_ok_and(|outcome| outcome.is_blocked())
}

/// The follower: says when its engine is up, then when the moderator runs,
/// then when it stopped.
async fn follow(url: &str, schema: &str) {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_on(url, schema, dir.path()).await;
    println!("fleet: ready");
    for (want, say) in [(true, "converged"), (false, "stopped")] {
        let deadline = Instant::now() + Duration::from_secs(30);
        while blocks(&engine).await != want {
            assert!(Instant::now() < deadline, "the follower never saw `{say}`");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!("fleet: {say}");
    }
    engine.shutdown().await;
}

async fn expect_line(lines: &mut Lines<BufReader<ChildStdout>>, marker: &str) -> Duration {
    let started = Instant::now();
    let wanted = format!("fleet: {marker}");
    loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no `{wanted}` from the follower within a minute"))
            .expect("reading the follower")
            .unwrap_or_else(|| panic!("the follower exited before `{wanted}`"));
        if line.contains(&wanted) {
            return started.elapsed();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_registry_converge() {
    if std::env::var_os(ROLE).is_some() {
        let (url, schema) = (std::env::var(URL).unwrap(), std::env::var(SCHEMA).unwrap());
        return follow(&url, &schema).await;
    }
    let Some(url) = postgres().await else {
        return;
    };
    let schema = unique_schema();
    let dir = tempfile::tempdir().unwrap();
    let leader = engine_on(&url, &schema, dir.path()).await;
    let mut follower = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads", "1"])
        .env(ROLE, "1")
        .env(URL, &url)
        .env(SCHEMA, &schema)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the follower process starts");
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    expect_line(&mut lines, "ready").await;

    let moderator = PluginId::new("tenon-examples/moderator").unwrap();
    leader
        .install(plugin("moderator").dir.as_path())
        .await
        .expect("installs");
    leader
        .set_config(&moderator, "blocked_words", json!(["forbidden"]))
        .await
        .expect("configures");
    leader.enable(&moderator).await.expect("enables");
    // The convergence target (under 2 s) is a figure for a benchmark, not
    // for a test on a loaded machine: here the follower must converge at
    // all, well before anyone would call it stuck.
    let converged = expect_line(&mut lines, "converged").await;
    eprintln!("the follower converged {converged:?} after the enable");
    assert!(
        converged < Duration::from_secs(30),
        "the follower activated the plugin {converged:?} after it was enabled"
    );

    leader
        .disable(&moderator, DisableOptions::default())
        .await
        .expect("disables");
    let stopped = expect_line(&mut lines, "stopped").await;
    eprintln!("the follower stopped the plugin {stopped:?} after the disable");
    assert!(
        stopped < Duration::from_secs(30),
        "stopped after {stopped:?}"
    );
    let status = follower.wait().await.expect("the follower ends");
    assert!(status.success(), "the follower failed: {status}");
    leader.shutdown().await;
    drop_schema(&url, &schema).await;
}
