//! Containment through the engine, in both WebAssembly runtimes: what
//! hostile plugins cannot do to the host, to each other or to other tenants.

use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tenon_engine::{
    BusItem, DenialLogLimits, EventKind, EventQuery, GrantRequest, PluginEngine, PluginId,
};
use tenon_tests::{builder, copy_plugin, eventually, set_field};

fn id(text: &str) -> PluginId {
    PluginId::new(text).expect("a valid plugin id")
}

/// Two copies of the hostile ping-pong plugin answer each other's
/// `bounce.*` events for ever unless the host cuts the chain. The bus cuts
/// each chain after the configured depth: every event a chain may hold is
/// delivered, the next is refused, recorded as an `error` event naming the
/// loop, and counted; afterwards nothing more moves and both plugins still
/// answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_bouncing_events_are_cut_at_the_chain_depth() {
    // (hostile package, the engine's depth limit: None for the default, 8)
    let table = [
        ("hostile-ping-pong", None),
        ("hostile-ping-pong", Some(3)),
        ("hostile-extism-ping-pong", None),
        ("hostile-extism-ping-pong", Some(3)),
    ];
    for (package, depth) in table {
        let case = format!("{package} with depth {depth:?}");
        let limit = depth.unwrap_or(tenon_engine::DEFAULT_MAX_CAUSATION_DEPTH);
        let dir = tempfile::tempdir().unwrap();
        let mut engine = builder(dir.path());
        if let Some(depth) = depth {
            engine = engine.event_chain_depth(depth);
        }
        let engine = engine.build().await.unwrap();
        let players = [id("tenon-hostile/ping"), id("tenon-hostile/pong")];
        for player in &players {
            let copy = copy_plugin(package, &dir.path().join(player.name()), |text| {
                set_field(&text, "id", player.as_str())
            });
            engine.install(copy.as_path()).await.unwrap();
            engine.grant(player, GrantRequest::all("op")).await.unwrap();
            engine.enable(player).await.unwrap();
        }
        let mut watcher = engine.bus().subscribe("bounce.*").unwrap();
        engine
            .bus()
            .publish("bounce.start", json!({ "round": 0 }))
            .unwrap();
        let cut = || async {
            engine.flush().await;
            engine
                .events(&EventQuery::default().with_kinds(&[EventKind::Error]))
                .await
                .unwrap()
                .events
                .into_iter()
                .filter(|e| e.detail["error"] == "event_chain_too_deep")
                .collect::<Vec<_>>()
        };
        // Each player answers the host's event: two chains, each cut once.
        assert!(
            eventually(Duration::from_secs(20), async || cut().await.len() >= 2).await,
            "{case}: the chains were not cut"
        );
        // Nothing moves any more.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut rounds = Vec::new();
        while let Some(item) = watcher.try_recv() {
            let BusItem::Event(event) = item else {
                panic!("{case}: the watcher lagged")
            };
            rounds.push(event.payload["round"].as_u64().unwrap());
        }
        rounds.sort_unstable();
        let expected: Vec<u64> = std::iter::once(0)
            .chain((1..=limit as u64).flat_map(|round| [round, round]))
            .collect();
        assert_eq!(
            rounds, expected,
            "{case}: one event per allowed depth and chain"
        );
        assert_eq!(engine.bus().cut_chains(), 2, "{case}");
        let cut = cut().await;
        assert_eq!(cut.len(), 2, "{case}");
        for event in &cut {
            let detail = &event.detail;
            assert_eq!(detail["operation"], "emit", "{case}");
            assert_eq!(detail["topic"], "bounce.back", "{case}");
            assert_eq!(detail["depth"], json!(limit + 1), "{case}");
            assert_eq!(detail["limit"], json!(limit), "{case}");
            let chain = detail["chain"].as_str().unwrap();
            assert!(
                chain.starts_with("bounce.start from the host → bounce.back from tenon-hostile/p"),
                "{case}: {chain}"
            );
            assert_eq!(chain.matches(" → ").count(), limit, "{case}: {chain}");
            assert!(
                players.iter().any(|p| event.plugin.as_ref() == Some(p)),
                "{case}: {event:?}"
            );
        }
        for player in &players {
            assert_eq!(
                engine.call(player, "ping", b"").await.unwrap(),
                b"pong",
                "{case}: {player} still answers"
            );
        }
        let state = serde_json::to_value(engine.record(&players[0]).await.unwrap().state).unwrap();
        assert_eq!(state, Value::from("active"), "{case}");
    }
}

/// The `permission_denied` events of `id`: (one by one, the suppressed
/// counts of the aggregated ones).
async fn denial_events(engine: &PluginEngine, id: &PluginId) -> (u64, Vec<u64>) {
    engine.flush().await;
    let events = engine
        .events(
            &EventQuery::default()
                .with_kinds(&[EventKind::PermissionDenied])
                .with_plugin(id.clone())
                .with_limit(1000),
        )
        .await
        .unwrap()
        .events;
    let mut single = 0;
    let mut aggregated = Vec::new();
    for event in events {
        assert_eq!(event.detail["permission"], "events", "{event:?}");
        assert_eq!(event.detail["attempted"], "publish `forbidden.topic`");
        match event.detail["suppressed"].as_u64() {
            Some(count) => aggregated.push(count),
            None => single += 1,
        }
    }
    (single, aggregated)
}

/// An engine auditing denials within `limits`, running the hostile
/// `package` (granted what it declares).
async fn flooder(
    package: &str,
    limits: DenialLogLimits,
) -> (tempfile::TempDir, PluginEngine, PluginId) {
    let dir = tempfile::tempdir().unwrap();
    let engine = builder(dir.path())
        .denial_log(limits)
        .build()
        .await
        .unwrap();
    let built = tenon_tests::plugin(package);
    let id = built.manifest.plugin.id.clone();
    engine.install(built.dir.as_path()).await.unwrap();
    engine.grant(&id, GrantRequest::all("op")).await.unwrap();
    engine.enable(&id).await.unwrap();
    (dir, engine, id)
}

/// A plugin hammering a permission it was not granted cannot flood the log
/// or the event log: the first denials of each window are audited one by
/// one, the rest are counted and reported in one event per window (at the
/// window's end by the background, or at shutdown), and every denial is
/// accounted for; the event writer drops nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_flood_is_audited_within_limits_and_counted() {
    const FLOOD: u64 = 2000;
    for package in ["hostile-forbidden-host", "hostile-extism-forbidden-host"] {
        // A window longer than the test: reported at shutdown.
        let (_dir, engine, id) =
            flooder(package, DenialLogLimits::new(3, Duration::from_secs(600))).await;
        let answer = engine
            .call(&id, "flood", FLOOD.to_string().as_bytes())
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&answer).unwrap(),
            json!({ "denied": FLOOD }),
            "{package}"
        );
        assert_eq!(denial_events(&engine, &id).await, (3, vec![]), "{package}");
        engine.shutdown().await;
        assert_eq!(
            denial_events(&engine, &id).await,
            (3, vec![FLOOD - 3]),
            "{package}: one event for the rest"
        );
        assert_eq!(engine.host_counters().events_dropped, 0, "{package}");

        // A short window: the background reports each window after it
        // ends, without a shutdown.
        let (_dir, engine, id) =
            flooder(package, DenialLogLimits::new(3, Duration::from_millis(200))).await;
        engine
            .call(&id, "flood", FLOOD.to_string().as_bytes())
            .await
            .unwrap();
        assert!(
            eventually(Duration::from_secs(10), async || {
                let (single, aggregated) = denial_events(&engine, &id).await;
                single + aggregated.iter().sum::<u64>() == FLOOD
            })
            .await,
            "{package}: {:?}",
            denial_events(&engine, &id).await
        );
        let (single, aggregated) = denial_events(&engine, &id).await;
        // At most 3 one by one per window, and one aggregate per window.
        assert!(
            !aggregated.is_empty() && single <= 3 * (aggregated.len() as u64 + 1),
            "{package}: {single} one by one, {aggregated:?}"
        );
    }
}

/// Every `.cwasm` file beneath `dir`.
fn cached_components(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(cached_components(&path));
        } else if path.extension().is_some_and(|e| e == "cwasm") {
            found.push(path);
        }
    }
    found
}

/// What must not happen, but did, is shown: a forged entry in the compiled
/// component cache (refused, recompiled) and events the event writer had
/// to drop are counted in the host's counters and are host findings of the
/// doctor, which then does not call the host healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_rejections_and_dropped_events_are_doctor_findings() {
    let dir = tempfile::tempdir().unwrap();
    let echo = tenon_tests::plugin("echo");
    let id = echo.manifest.plugin.id.clone();
    {
        let engine = builder(dir.path()).build().await.unwrap();
        engine.install(echo.dir.as_path()).await.unwrap();
        engine.grant(&id, GrantRequest::all("op")).await.unwrap();
        engine.enable(&id).await.unwrap();
        let report = engine.doctor().await.unwrap();
        assert_eq!(report.host.cache_rejections, 0);
        assert_eq!(report.host.problems, Vec::<String>::new());
        engine.shutdown().await;
    }
    // Someone with access to the cache swaps the compiled code.
    let cached = cached_components(&dir.path().join("cache"));
    assert!(!cached.is_empty(), "the component was cached");
    for path in &cached {
        let mut bytes = std::fs::read(path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(path, bytes).unwrap();
    }
    // The next host refuses it (and still runs the plugin, recompiled);
    // its event writer holds one event at a time, and a plugin floods it
    // with denials it audits one by one.
    let engine = builder(dir.path())
        .event_writer(tenon_registry::EventWriterConfig {
            capacity: 1,
            max_delay: Duration::from_secs(1),
            ..Default::default()
        })
        .denial_log(DenialLogLimits::new(u32::MAX, Duration::from_secs(600)))
        .build()
        .await
        .unwrap();
    assert_eq!(engine.call(&id, "echo", b"hi").await.unwrap(), b"hi");
    let flood = tenon_tests::plugin("hostile-forbidden-host");
    let flooder = flood.manifest.plugin.id.clone();
    engine.install(flood.dir.as_path()).await.unwrap();
    engine
        .grant(&flooder, GrantRequest::all("op"))
        .await
        .unwrap();
    engine.enable(&flooder).await.unwrap();
    engine.call(&flooder, "flood", b"500").await.unwrap();
    let counters = engine.host_counters();
    assert_eq!(
        counters.cache_rejections,
        cached.len() as u64,
        "{counters:?}"
    );
    assert!(counters.events_dropped > 0, "{counters:?}");
    let report = engine.doctor().await.unwrap();
    assert!(!report.healthy);
    assert_eq!(report.host.cache_rejections, cached.len() as u64);
    let problems = report.host.problems.join("\n");
    assert!(problems.contains("in the cache were refused"), "{problems}");
    assert!(
        problems.contains("dropped before reaching the event log"),
        "{problems}"
    );
}
