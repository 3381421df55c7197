//! The component runtime: the shared behaviour suite, plus what only it
//! does (versions, the artifact cache, fuel, allocators, state).

mod suite;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use suite::fixtures::{self, Components, runtime_config, shared_cache};
use suite::{Harness, Role, call, hook};
use tenon_manifest::Manifest;
use tenon_sandbox::component::{AllocatorKind, LoadSource};
use tenon_sandbox::{
    ComponentConfig, ComponentRuntime, Plugin, Runtime, SandboxConfig, SandboxError, TrapKind,
};

/// `examples/plugins/<dir>` (`hostile/looper`…), built.
fn built(dir: &str) -> (Manifest, Arc<[u8]>) {
    fixtures::built(&dir.replace("hostile/", "hostile-"))
}

suite::suite_tests!(
    Components,
    [
        echo_roundtrip,
        counter_concurrent_calls,
        looper_is_contained,
        a_plugin_looping_on_every_slot_does_not_starve_others,
        memory_bomb_is_contained,
        deep_recursion_is_contained,
        panics_and_traps_are_contained,
        forbidden_host_is_denied,
        filesystem_is_confined,
        output_is_bounded,
        fresh_instances_keep_no_state,
        busy_after_wait_timeout,
        stop_and_restart,
        events_carry_their_causation,
    ]
);

fn runtime_with_cache(dir: &Path) -> ComponentRuntime {
    let mut config = ComponentConfig::default().with_cache_dir(dir);
    config.pool_instances = 16;
    ComponentRuntime::new(config).expect("a component runtime")
}

async fn load_source(
    runtime: &ComponentRuntime,
    h: &Harness,
    dir: &str,
) -> (LoadSource, Arc<tenon_sandbox::ComponentPlugin>) {
    let (manifest, module) = built(dir);
    let plugin = runtime
        .load_component(h.request(manifest, module, "tenant-a"))
        .await
        .expect("loads");
    (plugin.load_source(), plugin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_cache_serves_reloads_and_replaces_corrupt_entries() {
    let cache = tempfile::tempdir().unwrap();
    let h = Harness::new(&Components);
    let first = runtime_with_cache(cache.path());
    let (source, _kept) = load_source(&first, &h, "echo").await;
    assert_eq!(source, LoadSource::Compiled);
    // The same module again in the same process (another tenant): memory.
    let (source, _) = load_source(&first, &h, "echo").await;
    assert_eq!(source, LoadSource::Memory);
    // A new runtime (a restarted host): disk.
    let (source, plugin) = load_source(&runtime_with_cache(cache.path()), &h, "echo").await;
    assert_eq!(source, LoadSource::Disk);
    plugin.start(&serde_json::json!({})).await.unwrap();
    assert_eq!(call(&*plugin, "echo", "cached").await.unwrap(), "cached");
    // Corrupt every cached file: detected, recompiled, replaced.
    let files: Vec<PathBuf> = walk(cache.path());
    assert!(!files.is_empty());
    for file in &files {
        let mut bytes = std::fs::read(file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(file, bytes).unwrap();
    }
    let (source, _) = load_source(&runtime_with_cache(cache.path()), &h, "echo").await;
    assert_eq!(source, LoadSource::Recompiled);
    let (source, _) = load_source(&runtime_with_cache(cache.path()), &h, "echo").await;
    assert_eq!(source, LoadSource::Disk);
    // A file that is not an artifact at all.
    for file in &files {
        std::fs::write(file, b"not an artifact").unwrap();
    }
    let (source, _) = load_source(&runtime_with_cache(cache.path()), &h, "echo").await;
    assert_eq!(source, LoadSource::Recompiled);
}

/// Hostile: someone who can write the cache directory (but does not hold
/// the host's cache key) plants entries. None is deserialized: each is
/// counted, recompiled and replaced, and the plugin runs its own code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_cache_entries_are_never_deserialized() {
    use sha2::{Digest, Sha256};
    let cache = tempfile::tempdir().unwrap();
    let h = Harness::new(&Components);
    // Genuine entries for echo and counter, written by this host.
    let first = runtime_with_cache(cache.path());
    load_source(&first, &h, "echo").await;
    load_source(&first, &h, "counter").await;
    let (echo_sha, counter_sha) = (module_sha("echo"), module_sha("counter"));
    let entry = |sha: &str| {
        walk(cache.path())
            .into_iter()
            .find(|p| p.file_stem().is_some_and(|s| s == sha))
            .expect("a cached entry")
    };
    let (echo_entry, counter_entry) = (entry(&echo_sha), entry(&counter_sha));
    let genuine_echo = std::fs::read(&echo_entry).unwrap();
    let payload = genuine_echo[40..].to_vec();
    let forgeries: Vec<(&str, Vec<u8>)> = vec![
        // Counter's genuine entry under echo's name: compiled code that
        // wasmtime would accept, with a valid MAC for another module.
        (
            "another module's entry",
            std::fs::read(&counter_entry).unwrap(),
        ),
        // The format before MACs: a plain SHA-256 that matches.
        ("an unkeyed checksum", {
            let mut v1 = b"TENONCW1".to_vec();
            v1.extend_from_slice(&Sha256::digest(&payload));
            v1.extend_from_slice(&payload);
            v1
        }),
        // The current format with a MAC made up by the forger.
        ("a made-up MAC", {
            let mut v2 = b"TENONCW2".to_vec();
            v2.extend_from_slice(&Sha256::digest(&payload));
            v2.extend_from_slice(&payload);
            v2
        }),
    ];
    for (what, forged) in forgeries {
        std::fs::write(&echo_entry, &forged).unwrap();
        let runtime = runtime_with_cache(cache.path());
        let (source, plugin) = load_source(&runtime, &h, "echo").await;
        assert_eq!(source, LoadSource::Recompiled, "{what}");
        assert_eq!(runtime.cache_rejections(), 1, "{what}");
        plugin.start(&serde_json::json!({})).await.unwrap();
        assert_eq!(
            call(&*plugin, "echo", "own code").await.unwrap(),
            "own code",
            "{what}"
        );
        // Replaced by a genuine entry: the next host loads it from disk.
        assert_ne!(std::fs::read(&echo_entry).unwrap(), forged, "{what}");
        let runtime = runtime_with_cache(cache.path());
        assert_eq!(
            load_source(&runtime, &h, "echo").await.0,
            LoadSource::Disk,
            "{what}"
        );
        assert_eq!(runtime.cache_rejections(), 0, "{what}");
    }
    // The key is the host's own.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = std::fs::metadata(cache.path().join("cache.key")).unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
    }
}

fn module_sha(package: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(&*built(package).1))
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "cwasm") {
            out.push(path);
        }
    }
    out
}

/// A component that exports `tenon:plugin/guest@<version>` (with a `ping`
/// function): what a plugin built against another world version looks like
/// to the host.
fn component_for(version: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
            (core module $m (func (export "ping")))
            (core instance $i (instantiate $m))
            (func $ping (canon lift (core func $i "ping")))
            (instance $guest (export "ping" (func $ping)))
            (export "tenon:plugin/guest@{version}" (instance $guest))
        )"#
    ))
    .expect("valid component text")
}

#[tokio::test]
async fn a_component_for_another_api_version_is_refused() {
    let h = Harness::new(&Components);
    let (manifest, _) = built("echo");
    for version in ["3.0.0", "0.9.0", "1.1.0"] {
        let module = component_for(version);
        let err = h
            .runtime
            .load(h.request(manifest.clone(), module.into(), "tenant-a"))
            .await
            .err()
            .expect("refused");
        let SandboxError::Incompatible {
            found, supported, ..
        } = &err
        else {
            panic!("{version}: expected Incompatible, got {err:?}");
        };
        assert_eq!(found, &format!("tenon:plugin@{version}"));
        assert_eq!(supported, "tenon:plugin@1.0.0");
        let message = err.to_string();
        assert!(
            message.contains(version) && message.contains("1.0.0"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_module_that_is_not_a_component_is_refused() {
    let h = Harness::new(&Components);
    let (manifest, _) = built("echo");
    let core = wat::parse_str("(module (func (export \"f\")))").unwrap();
    let err = h
        .runtime
        .load(h.request(manifest, core.into(), "tenant-a"))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, SandboxError::Compile { .. }), "{err:?}");
}

#[tokio::test]
async fn a_wrong_sha256_pin_is_refused() {
    let h = Harness::new(&Components);
    let (mut manifest, module) = built("echo");
    manifest.runtime.sha256 = Some("0".repeat(64));
    let err = h.refused(manifest, module).await;
    assert!(matches!(err, SandboxError::Compile { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuel_stops_a_loop() {
    let h = Harness::new(&Components);
    let looper = h
        .start(&Components, Role::Looper, |m| {
            m.limits.fuel = Some(5_000_000);
            m.limits.timeout = std::time::Duration::from_secs(10).into();
        })
        .await;
    let err = call(&*looper, "loop", "").await.unwrap_err();
    assert!(
        matches!(
            err,
            SandboxError::Trap {
                kind: TrapKind::OutOfFuel,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(call(&*looper, "ping", "").await.unwrap(), "pong");
    assert!(looper.stats().fuel_consumed > 0);
}

#[tokio::test]
async fn on_demand_allocation_works_too() {
    let mut config = runtime_config(SandboxConfig::default()).with_pooling(false);
    config.cache_dir = Some(shared_cache());
    let runtime = ComponentRuntime::new(config).unwrap();
    assert_eq!(runtime.allocator(), AllocatorKind::OnDemand);
    let h = Harness::new(&Components);
    let (manifest, module) = built("echo");
    let plugin = runtime
        .load(h.request(manifest, module, "t"))
        .await
        .unwrap();
    plugin.start(&serde_json::json!({})).await.unwrap();
    assert_eq!(call(&*plugin, "echo", "x").await.unwrap(), "x");
}

#[tokio::test]
async fn pooling_is_used_when_it_can_be() {
    let runtime = ComponentRuntime::new(runtime_config(SandboxConfig::default())).unwrap();
    // This machine has the address space; a host without it falls back.
    assert_eq!(runtime.allocator(), AllocatorKind::Pooling);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_reload_through_snapshot_and_restore() {
    let h = Harness::new(&Components);
    let old = h.start(&Components, Role::Counter, |_| {}).await;
    for _ in 0..2 {
        hook(&*old, "run.pre_prompt", "{}").await.unwrap();
    }
    let state = old
        .snapshot()
        .await
        .unwrap()
        .expect("the counter keeps state");
    old.stop().await.unwrap();
    let new = h.start(&Components, Role::Counter, |_| {}).await;
    new.restore(&state).await.unwrap();
    let tally: serde_json::Value =
        serde_json::from_str(&call(&*new, "tally", "").await.unwrap()).unwrap();
    assert_eq!(tally["run.pre_prompt"], 2, "{tally}");
    // The echo plugin keeps no state: its snapshot is empty.
    let echo = h.start(&Components, Role::Echo, |_| {}).await;
    assert_eq!(echo.snapshot().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_timeout_shorter_than_the_manifest_wins() {
    let h = Harness::new(&Components);
    let looper = h
        .start(&Components, Role::Looper, |m| {
            m.limits.timeout = std::time::Duration::from_secs(30).into();
        })
        .await;
    let options = tenon_sandbox::CallOptions {
        timeout: Some(std::time::Duration::from_millis(50)),
        ..tenon_sandbox::CallOptions::default()
    };
    let err = looper.call("loop", b"", options).await.unwrap_err();
    let SandboxError::Timeout { after, .. } = err else {
        panic!("expected a timeout, got {err:?}");
    };
    assert_eq!(after, std::time::Duration::from_millis(50));
}

/// Hostile: a caller that stops waiting (a dispatcher's timeout drops its
/// future) stops the component's code with it, since the call runs in the
/// caller's future: the instance it ran in is dropped, never pooled again,
/// and the only slot is free at once (a call finds it within its 20 ms
/// wait, long before the loop's 800 ms deadline). The Extism runtime,
/// whose calls run on other threads, keeps the slot until the call has
/// stopped instead (`a_cancelled_call_keeps_its_slot_*`, tests/extism.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_stops_with_its_caller() {
    let h = Harness::new(&Components);
    let looper = suite::single_slot_looper(&h, &Components).await;
    assert_eq!(looper.stats().instances_pooled, 1, "one warm instance");
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        looper.call("loop", b"", tenon_sandbox::CallOptions::default()),
    )
    .await;
    assert!(gave_up.is_err(), "the loop answered: {gave_up:?}");
    assert_eq!(
        looper.stats().instances_pooled,
        0,
        "the cancelled instance went back to the pool"
    );
    assert_eq!(call(&*looper, "ping", "").await.unwrap(), "pong");
    assert_eq!(looper.stats().instances_pooled, 1);
    let echo = h.start(&Components, Role::Echo, |_| {}).await;
    assert_eq!(call(&*echo, "echo", "after").await.unwrap(), "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_share_code_not_state() {
    let h = Harness::new(&Components);
    let (manifest, module) = built("counter");
    let a = h
        .runtime
        .load(h.request(manifest.clone(), module.clone(), "a"))
        .await
        .unwrap();
    let b = h
        .runtime
        .load(h.request(manifest, module, "b"))
        .await
        .unwrap();
    a.start(&serde_json::json!({})).await.unwrap();
    b.start(&serde_json::json!({})).await.unwrap();
    hook(&*a, "tool.post_exec", "{}").await.unwrap();
    assert_eq!(call(&*a, "get", "tool.post_exec").await.unwrap(), "1");
    assert_eq!(call(&*b, "get", "tool.post_exec").await.unwrap(), "0");
}

#[allow(dead_code)]
fn assert_plugin_object_safe(_: &dyn Plugin) {}
