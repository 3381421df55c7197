//! The Extism runtime: the shared behaviour suite, plus what only it does
//! (Tenon's host functions and Extism's replaced ones, the hook protocol,
//! threading on both kinds of Tokio runtime, instance isolation of
//! timeouts, error classification).

mod suite;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use suite::fixtures::{DEDICATED, Extism, INLINE};
use suite::{Fixture, Harness, Role, call, hook};
use tenon_manifest::{Isolation, Manifest, VersionReq};
use tenon_sandbox::boundary::StaticResolver;
use tenon_sandbox::{
    CallOptions, CallThreading, EndpointRequest, HookResponse, SandboxConfig, SandboxError,
    TrapKind,
};

suite::suite_tests!(
    DEDICATED,
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

/// The other ways of running calls: inline passes the parts of the suite
/// that run plugin code on the calling thread, the other two the parts that
/// exercise host calls, traps, timeouts and the pool.
mod other_threading {
    use super::*;

    mod inline {
        use super::*;
        suite::suite_tests!(
            INLINE,
            [
                echo_roundtrip,
                looper_is_contained,
                memory_bomb_is_contained,
                deep_recursion_is_contained,
                panics_and_traps_are_contained,
                output_is_bounded,
                stop_and_restart,
            ]
        );
    }

    const BLOCK_IN_PLACE: Extism = Extism {
        threading: CallThreading::BlockInPlace,
    };
    const SPAWN_BLOCKING: Extism = Extism {
        threading: CallThreading::SpawnBlocking,
    };

    mod block_in_place {
        use super::*;
        suite::suite_tests!(
            BLOCK_IN_PLACE,
            [
                counter_concurrent_calls,
                looper_is_contained,
                forbidden_host_is_denied,
                busy_after_wait_timeout
            ]
        );
    }

    mod spawn_blocking {
        use super::*;
        suite::suite_tests!(
            SPAWN_BLOCKING,
            [
                counter_concurrent_calls,
                looper_is_contained,
                forbidden_host_is_denied,
                busy_after_wait_timeout
            ]
        );
    }
}

/// A current-thread runtime (`#[tokio::test]`'s default): calls that wait
/// for the host run on the blocking pool, the others inline; both work.
#[tokio::test]
async fn current_thread_runtime_serves_host_calls() {
    let h = Harness::new(&INLINE);
    let counter = h.start(&INLINE, Role::Counter, |_| {}).await;
    for _ in 0..3 {
        hook(&*counter, "run.pre_prompt", "{}").await.unwrap();
    }
    assert_eq!(call(&*counter, "get", "run.pre_prompt").await.unwrap(), "3");
    let looper = h.start(&INLINE, Role::Looper, |_| {}).await;
    let err = call(&*looper, "host-loop", "").await.unwrap_err();
    assert!(matches!(err, SandboxError::Timeout { .. }), "{err:?}");
    let echo = h.start(&INLINE, Role::Echo, |_| {}).await;
    assert_eq!(call(&*echo, "echo", "inline").await.unwrap(), "inline");
}

/// Hostile: as many looping calls as the async runtime has workers. With
/// the default threading they loop on the plugin-call threads, so the
/// runtime's other tasks keep running meanwhile (inline, both workers would
/// be taken until the loops' deadline), and each loop ends at its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looping_calls_do_not_stall_the_async_runtime() {
    let h = Harness::new(&DEDICATED);
    let looper = h
        .start(&DEDICATED, Role::Looper, |m| {
            m.limits.max_instances = 2;
            m.limits.timeout = Duration::from_secs(3).into();
        })
        .await;
    let loops: Vec<_> = (0..2)
        .map(|_| {
            let looper = looper.clone();
            tokio::spawn(async move { looper.call("loop", b"", CallOptions::default()).await })
        })
        .collect();
    // Both loops are under way; an unrelated task needs a worker.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let unrelated = tokio::spawn(async { 42 }).await.unwrap();
    assert_eq!(unrelated, 42);
    assert!(
        loops.iter().all(|l| !l.is_finished()),
        "the unrelated task ran only once the loops had ended"
    );
    for stopped in loops {
        let err = stopped.await.unwrap().unwrap_err();
        assert!(matches!(err, SandboxError::Timeout { .. }), "{err:?}");
    }
    assert_eq!(call(&*looper, "ping", "").await.unwrap(), "pong");
}

/// Hostile: a caller that stops waiting (a dispatcher's timeout drops its
/// future) does not free the instance slot while the plugin still runs on
/// another thread: `max_instances` holds until the call has really
/// stopped, at its deadline.
async fn a_cancelled_call_keeps_its_slot_until_it_stops(f: &Extism) {
    let h = Harness::new(f);
    let looper = suite::single_slot_looper(&h, f).await;
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        looper.call("loop", b"", CallOptions::default()),
    )
    .await;
    assert!(gave_up.is_err(), "the loop answered: {gave_up:?}");
    suite::assert_busy(&*looper).await;
    // The watchdog stops the loop at its deadline; the slot serves again.
    let mut waited = Duration::ZERO;
    loop {
        match call(&*looper, "ping", "").await {
            Ok(pong) => break assert_eq!(pong, "pong"),
            Err(SandboxError::Busy { .. }) if waited < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                waited += Duration::from_millis(50);
            }
            Err(err) => panic!("{err:?}"),
        }
    }
    assert!(looper.stats().instances <= 1, "{:?}", looper.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_keeps_its_slot_on_the_call_threads() {
    a_cancelled_call_keeps_its_slot_until_it_stops(&DEDICATED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_keeps_its_slot_on_the_blocking_pool() {
    a_cancelled_call_keeps_its_slot_until_it_stops(&Extism {
        threading: CallThreading::SpawnBlocking,
    })
    .await;
}

fn with_timeout(timeout: Duration) -> CallOptions {
    CallOptions {
        timeout: Some(timeout),
        ..CallOptions::default()
    }
}

/// Extism stops a call by bumping its engine's epoch, which would stop
/// every call on that engine; Tenon gives each instance an engine of its
/// own, so a call that times out never cuts a neighbour short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_does_not_stop_a_concurrent_call() {
    let h = Harness::new(&INLINE);
    let looper = h
        .start(&INLINE, Role::Looper, |m| {
            m.limits.max_instances = 2;
            m.limits.timeout = Duration::from_secs(5).into();
        })
        .await;
    let long = looper.clone();
    let long = tokio::spawn(async move {
        long.call("loop", b"", with_timeout(Duration::from_millis(700)))
            .await
    });
    let short = looper
        .call("loop", b"", with_timeout(Duration::from_millis(50)))
        .await
        .unwrap_err();
    assert_eq!(
        short,
        SandboxError::Timeout {
            plugin: "tenon-hostile/extism-looper".to_owned(),
            after: Duration::from_millis(50),
        }
    );
    // The long call ran until its own deadline: interrupted early, it would
    // report something else.
    let long = long.await.unwrap().unwrap_err();
    assert_eq!(
        long,
        SandboxError::Timeout {
            plugin: "tenon-hostile/extism-looper".to_owned(),
            after: Duration::from_millis(700),
        }
    );
    assert_eq!(call(&*looper, "ping", "").await.unwrap(), "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shorter_of_the_manifest_and_call_timeouts_applies() {
    let h = Harness::new(&INLINE);
    let looper = h
        .start(&INLINE, Role::Looper, |m| {
            m.limits.timeout = Duration::from_millis(60).into();
        })
        .await;
    let err = looper
        .call("loop", b"", with_timeout(Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SandboxError::Timeout { after, .. } if after == Duration::from_millis(60)),
        "{err:?}"
    );
    let err = looper
        .call("host-loop", b"", with_timeout(Duration::from_millis(30)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SandboxError::Timeout { after, .. } if after == Duration::from_millis(30)),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_classified_with_the_plugins_own_words() {
    let h = Harness::new(&INLINE);
    let panicker = h.start(&INLINE, Role::Panicker, |_| {}).await;
    // A panic: the message the panic hook set, not "error while executing".
    let err = hook(&*panicker, "response.pre_deliver", "{}")
        .await
        .unwrap_err();
    let SandboxError::Trap { kind, message, .. } = &err else {
        panic!("expected a trap, got {err:?}");
    };
    assert_eq!(*kind, TrapKind::Unreachable);
    assert!(
        message.contains("deliberate panic in handle_hook"),
        "{message}"
    );
    assert!(!message.contains("wasm backtrace"), "{message}");
    // A bare trap: where it happened.
    let err = call(&*panicker, "trap", "").await.unwrap_err();
    let SandboxError::Trap { message, .. } = &err else {
        panic!("expected a trap, got {err:?}");
    };
    assert!(message.contains("trap"), "{message}");
    assert!(!message.contains("wasm backtrace"), "{message}");
    // The plugin's own error, with its code.
    let err = call(&*panicker, "error", "").await.unwrap_err();
    assert_eq!(
        err,
        SandboxError::Plugin {
            plugin: "tenon-hostile/extism-panicker".to_owned(),
            code: "deliberate".to_owned(),
            message: "tenon-hostile: a deliberate error".to_owned(),
        }
    );
    // Lifecycle exports are the runtime's to call.
    let err = call(&*panicker, "activate", "{}").await.unwrap_err();
    assert!(matches!(err, SandboxError::Unsupported { .. }), "{err:?}");
    assert_eq!(call(&*panicker, "ping", "").await.unwrap(), "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuel_runs_out_as_a_typed_trap() {
    let h = Harness::new(&INLINE);
    let looper = h
        .start(&INLINE, Role::Looper, |m| m.limits.fuel = Some(2_000_000))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_failures_fail_start() {
    let h = Harness::new(&INLINE);
    let (manifest, module) = INLINE.plugin(Role::Panicker);
    let panicker = h
        .runtime
        .load(h.request(manifest, module, "tenant-a"))
        .await
        .unwrap();
    let err = panicker
        .start(&serde_json::json!({"panic_on_activate": true}))
        .await
        .unwrap_err();
    let SandboxError::Trap { message, .. } = &err else {
        panic!("expected a trap, got {err:?}");
    };
    assert!(
        message.contains("deliberate panic in activate"),
        "{message}"
    );
    assert!(!panicker.health().ready);
    panicker
        .start(&serde_json::json!({"panic_on_activate": false}))
        .await
        .unwrap();
    assert_eq!(call(&*panicker, "ping", "").await.unwrap(), "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_snapshot_and_restore() {
    let h = Harness::new(&INLINE);
    let old = h.start(&INLINE, Role::Counter, |_| {}).await;
    hook(&*old, "tool.pre_exec", "{}").await.unwrap();
    hook(&*old, "tool.pre_exec", "{}").await.unwrap();
    let state = old
        .snapshot()
        .await
        .unwrap()
        .expect("the counter keeps state");
    old.stop().await.unwrap();
    let new = h.start(&INLINE, Role::Counter, |_| {}).await;
    new.restore(&state).await.unwrap();
    hook(&*new, "tool.pre_exec", "{}").await.unwrap();
    assert_eq!(
        call(&*new, "tally", "").await.unwrap(),
        r#"{"tool.pre_exec":3}"#
    );
    // A plugin without snapshot/restore exports keeps no state.
    let echo = h.start(&INLINE, Role::Echo, |_| {}).await;
    assert_eq!(echo.snapshot().await.unwrap(), None);
    echo.restore(&[]).await.unwrap();
    let err = echo.restore(b"state").await.unwrap_err();
    assert!(matches!(err, SandboxError::MissingExport { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_forbidden_request_is_refused_and_reported() {
    let h = Harness::new(&INLINE);
    let plugin = h.start(&INLINE, Role::ForbiddenHost, |_| {}).await;
    let outcomes: HashMap<String, String> =
        serde_json::from_str(&call(&*plugin, "probe", "").await.unwrap()).unwrap();
    for (target, outcome) in &outcomes {
        assert!(
            outcome.starts_with("permission_denied") || outcome.starts_with("invalid_input"),
            "{target}: {outcome}"
        );
    }
    for target in [
        "http://169.254.169.254/latest/meta-data/",
        "secret:ungranted_secret",
        "config:undeclared",
        "event:forbidden.topic",
    ] {
        assert!(
            outcomes[target].starts_with("permission_denied"),
            "{target}: {}",
            outcomes[target]
        );
    }
    let denials = h.host.denials();
    for permission in ["network", "secrets", "config", "events"] {
        assert!(
            denials.iter().any(|d| d.denial.permission == permission),
            "no {permission} denial in {denials:?}"
        );
    }
    // Extism's own `http_request` goes through the same checks; it has no
    // error value, so the refusal ends the call.
    let err = call(&*plugin, "extism-get", "https://evil.example.net/")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SandboxError::PermissionDenied { permission, .. } if permission == "network"),
        "{err:?}"
    );
    assert_eq!(call(&*plugin, "ping", "").await.unwrap(), "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reaches_the_plugin_only_as_granted() {
    let h = Harness::new(&INLINE);
    let (manifest, module) = INLINE.plugin(Role::ForbiddenHost);
    let id = manifest.plugin.id.clone();
    h.host.set_config(&id, "granted_secret", "s3cret".into());
    h.host.set_config(&id, "ungranted_secret", "hidden".into());
    let plugin = h
        .runtime
        .load(h.request(manifest, module, "tenant-a"))
        .await
        .unwrap();
    plugin
        .start(&serde_json::json!({"greeting": "bonjour", "count": 3}))
        .await
        .unwrap();
    let read = |key: &'static str| {
        let plugin = plugin.clone();
        async move {
            let text = call(&*plugin, "config", key).await.unwrap();
            serde_json::from_str::<serde_json::Value>(&text).unwrap()
        }
    };
    // Config given at start: Extism's `config::get` reads it (non-strings as
    // JSON text).
    assert_eq!(read("greeting").await["extism"], "bonjour");
    // A granted secret: through the host, for both.
    let secret = read("granted_secret").await;
    assert_eq!(secret["extism"], "s3cret");
    assert_eq!(secret["tenon"], r#"ok Some(String("s3cret"))"#);
    // An ungranted secret: refused and reported, absent for Extism.
    let hidden = read("ungranted_secret").await;
    assert_eq!(hidden["extism"], serde_json::Value::Null);
    assert!(
        hidden["tenon"]
            .as_str()
            .unwrap()
            .starts_with("permission_denied"),
        "{hidden}"
    );
    assert!(
        h.host
            .denials()
            .iter()
            .any(|d| d.denial.permission == "secrets")
    );
    // Reconfigured without a restart.
    plugin
        .configure(&serde_json::json!({"greeting": "hej"}))
        .await
        .unwrap();
    assert_eq!(read("greeting").await["extism"], "hej");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_quota_and_event_limits_hold() {
    let h = Harness::new(&INLINE);
    let plugin = h.start(&INLINE, Role::HugeOutput, |_| {}).await;
    let err = call(&*plugin, "kv", "4").await.unwrap_err();
    assert!(
        matches!(&err, SandboxError::Plugin { code, .. } if code == "quota_exceeded"),
        "{err:?}"
    );
    call(&*plugin, "event", "0")
        .await
        .expect("a small event is allowed");
    assert_eq!(h.host.events().len(), 1);
    let err = call(&*plugin, "event", "1").await.unwrap_err();
    assert!(
        matches!(&err, SandboxError::Plugin { code, .. } if code == "quota_exceeded"),
        "{err:?}"
    );
    // A huge error message is cut before it reaches logs and receipts.
    let err = call(&*plugin, "error", "1").await.unwrap_err();
    let SandboxError::Plugin { message, .. } = &err else {
        panic!("expected a plugin error, got {err:?}");
    };
    assert!(
        message.len() < 8192 && message.contains("bytes cut"),
        "{} bytes",
        message.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_have_separate_state() {
    let h = Harness::new(&INLINE);
    let (manifest, module) = INLINE.plugin(Role::Counter);
    let a = h
        .runtime
        .load(h.request(manifest.clone(), module.clone(), "tenant-a"))
        .await
        .unwrap();
    let b = h
        .runtime
        .load(h.request(manifest, module, "tenant-b"))
        .await
        .unwrap();
    a.start(&serde_json::json!({})).await.unwrap();
    b.start(&serde_json::json!({})).await.unwrap();
    hook(&*a, "tool.post_exec", "{}").await.unwrap();
    assert_eq!(call(&*a, "get", "tool.post_exec").await.unwrap(), "1");
    assert_eq!(call(&*b, "get", "tool.post_exec").await.unwrap(), "0");
    assert_eq!(call(&*b, "tally", "").await.unwrap(), "{}");
}

/// An allowlisted host that resolves to this machine: reached only when
/// both the host and the manifest allow private networks, and its answer is
/// capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_reaches_allowed_hosts_with_capped_answers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new()
        .route(
            "/hello",
            axum::routing::get(|| async { "hello from the host" }),
        )
        .route(
            "/big",
            axum::routing::get(|| async { "z".repeat(64 * 1024) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut sandbox = SandboxConfig::default();
    sandbox.allow_private_networks = true;
    sandbox.resolver = Arc::new(
        StaticResolver::new().with("allowed.example.com", &[IpAddr::V4(Ipv4Addr::LOCALHOST)]),
    );
    let h = Harness::with_sandbox(&INLINE, sandbox);
    // The manifest allows `allowed.example.com` on the default port only;
    // the test server listens elsewhere.
    let this_port = move |m: &mut Manifest| {
        let network = m.permissions.network.as_mut().unwrap();
        network.outbound = vec![format!("allowed.example.com:{port}").parse().unwrap()];
    };
    let url = format!("http://allowed.example.com:{port}/hello");
    let default_port_only = h.start(&INLINE, Role::ForbiddenHost, |_| {}).await;
    let err = call(&*default_port_only, "get", &url).await.unwrap_err();
    assert!(
        matches!(&err, SandboxError::PermissionDenied { .. } if err.to_string().contains("not in permissions.network.outbound")),
        "{err:?}"
    );
    let private = h.start(&INLINE, Role::ForbiddenHost, this_port).await;
    // The manifest does not allow private networks: refused on the resolved
    // address.
    let err = call(&*private, "get", &url).await.unwrap_err();
    assert!(
        matches!(err, SandboxError::PermissionDenied { .. }),
        "{err:?}"
    );
    let allowed = h
        .start(&INLINE, Role::ForbiddenHost, |m| {
            this_port(m);
            let network = m.permissions.network.as_mut().unwrap();
            network.allow_private = true;
            network.max_response = Some(tenon_manifest::ByteSize(1024));
        })
        .await;
    assert_eq!(
        call(&*allowed, "get", &url).await.unwrap(),
        r#"{"status":200}"#
    );
    assert_eq!(
        call(&*allowed, "extism-get", &url).await.unwrap(),
        r#"{"status":200}"#
    );
    let big = format!("http://allowed.example.com:{port}/big");
    let err = call(&*allowed, "get", &big).await.unwrap_err();
    assert!(
        matches!(&err, SandboxError::Plugin { code, .. } if code == "quota_exceeded"),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_follow_the_protocol() {
    let h = Harness::new(&INLINE);
    let echo = h.start(&INLINE, Role::Echo, |_| {}).await;
    let check = |name: &'static str, expected: HookResponse| {
        let echo = echo.clone();
        async move {
            let response = hook(&*echo, name, r#"{"text":"hi"}"#).await.unwrap();
            assert_eq!(response, expected, "{name}");
        }
    };
    check("echo.noop", HookResponse::Continue { patch: None }).await;
    check("echo.parse", HookResponse::Continue { patch: None }).await;
    check(
        "echo.patch",
        HookResponse::Continue {
            patch: Some(r#"{"echoed":true}"#.to_owned()),
        },
    )
    .await;
    // A plugin in any language: a hand-written module whose `handle_hook`
    // answers something that is not the protocol.
    let (mut manifest, _) = INLINE.plugin(Role::Echo);
    manifest.plugin.id = "tenon-tests/raw".parse().unwrap();
    let raw = h
        .runtime
        .load(h.request(manifest, wat(RAW_PLUGIN), "tenant-a"))
        .await
        .unwrap();
    raw.start(&serde_json::json!({})).await.unwrap();
    let err = hook(&*raw, "any", "{}").await.unwrap_err();
    assert!(
        matches!(&err, SandboxError::Protocol { message, .. } if message.contains("handle_hook must answer")),
        "{err:?}"
    );
    let err = call(&*raw, "boom", "").await.unwrap_err();
    assert!(
        matches!(&err, SandboxError::Trap { kind: TrapKind::Arithmetic, message, .. } if message.contains("boom")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_follow_the_request_protocol() {
    let h = Harness::new(&DEDICATED);
    let echo = h.start(&DEDICATED, Role::Echo, |_| {}).await;
    let mut request = EndpointRequest {
        function: "echo".to_owned(),
        method: "POST".to_owned(),
        path: "/echo".to_owned(),
        query: "a=1".to_owned(),
        headers: vec![("x-request-id".to_owned(), "r1".to_owned())],
        body: b"hello".to_vec(),
    };
    let answer = echo
        .handle_request(&request, CallOptions::default())
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.headers,
        vec![("content-type".to_owned(), "application/json".to_owned())]
    );
    let seen: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        seen,
        serde_json::json!({
            "method": "POST", "path": "/echo", "query": "a=1",
            "headers": ["x-request-id"], "body": "hello"
        })
    );
    request.function = "other".to_owned();
    let answer = echo
        .handle_request(&request, CallOptions::default())
        .await
        .unwrap();
    assert_eq!(answer.status, 404);

    // A module without the export, and one answering off the protocol.
    let (mut manifest, _) = DEDICATED.plugin(Role::Echo);
    manifest.plugin.id = "tenon-tests/raw".parse().unwrap();
    let raw = h
        .runtime
        .load(h.request(manifest, wat(RAW_PLUGIN), "tenant-a"))
        .await
        .unwrap();
    raw.start(&serde_json::json!({})).await.unwrap();
    let err = raw
        .handle_request(&request, CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SandboxError::MissingExport { export, .. } if export == "handle_request"),
        "{err:?}"
    );
    let (mut manifest, _) = DEDICATED.plugin(Role::Echo);
    manifest.plugin.id = "tenon-tests/raw-request".parse().unwrap();
    let raw = h
        .runtime
        .load(h.request(
            manifest,
            wat(&RAW_PLUGIN.replace("\"handle_hook\"", "\"handle_request\"")),
            "tenant-a",
        ))
        .await
        .unwrap();
    raw.start(&serde_json::json!({})).await.unwrap();
    let err = raw
        .handle_request(&request, CallOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SandboxError::Protocol { message, .. } if message.contains("handle_request must answer")),
        "{err:?}"
    );
}

/// An Extism plugin without a PDK: `handle_hook` answers `bad`, `boom`
/// divides by zero.
const RAW_PLUGIN: &str = r#"(module
    (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
    (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
    (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
    (func (export "handle_hook") (result i32)
        (local $p i64)
        (local.set $p (call $alloc (i64.const 3)))
        (call $store_u8 (local.get $p) (i32.const 98))
        (call $store_u8 (i64.add (local.get $p) (i64.const 1)) (i32.const 97))
        (call $store_u8 (i64.add (local.get $p) (i64.const 2)) (i32.const 100))
        (call $output_set (local.get $p) (i64.const 3))
        (i32.const 0))
    (func $boom (export "boom") (result i32)
        (i32.div_u (i32.const 1) (i32.const 0))))"#;

fn wat(text: &str) -> Arc<[u8]> {
    wat::parse_str(text).expect("valid WAT").into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_that_cannot_run_are_refused_at_load() {
    let h = Harness::new(&INLINE);
    let (manifest, module) = INLINE.plugin(Role::Echo);
    let load = |manifest: Manifest, module: Arc<[u8]>| {
        let request = h.request(manifest, module, "tenant-a");
        let runtime = h.runtime.clone();
        async move { runtime.load(request).await.err().expect("refused") }
    };
    let err = load(manifest.clone(), wat("(component)")).await;
    assert!(
        matches!(&err, SandboxError::Compile { message, .. } if message.contains("component")),
        "{err:?}"
    );
    let err = load(
        manifest.clone(),
        wat(r#"(module (import "env" "system" (func)))"#),
    )
    .await;
    assert!(
        matches!(&err, SandboxError::Compile { message, .. } if message.contains("env::system")),
        "{err:?}"
    );
    let mut pinned = manifest.clone();
    pinned.runtime.sha256 = Some("0".repeat(64));
    let err = load(pinned, module.clone()).await;
    assert!(matches!(err, SandboxError::Compile { .. }), "{err:?}");
    let mut future = manifest.clone();
    future.engine.tenon = VersionReq::parse("^2").unwrap();
    let err = load(future, module.clone()).await;
    assert!(
        matches!(&err, SandboxError::Incompatible { supported, .. } if supported == "tenon:extism@1.0.0"),
        "{err:?}"
    );
    let mut component = manifest.clone();
    component.runtime.kind = tenon_manifest::RuntimeKind::Component;
    let err = load(component, module.clone()).await;
    assert!(matches!(err, SandboxError::Unsupported { .. }), "{err:?}");
    let mut none = manifest;
    none.limits.max_instances = 0;
    let err = load(none, module).await;
    assert!(matches!(err, SandboxError::Unsupported { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_isolation_still_activates_every_instance() {
    let h = Harness::new(&INLINE);
    let (manifest, module) = INLINE.plugin(Role::Panicker);
    let mut manifest = manifest;
    manifest.limits.isolation = Isolation::Fresh;
    let plugin = h
        .runtime
        .load(h.request(manifest, module, "tenant-a"))
        .await
        .unwrap();
    plugin.start(&serde_json::json!({})).await.unwrap();
    for _ in 0..3 {
        assert_eq!(call(&*plugin, "ping", "").await.unwrap(), "pong");
    }
    let stats = plugin.stats();
    assert_eq!(stats.calls, 4, "{stats:?}");
    // No instance is kept between calls.
    assert_eq!(stats.instances, 0, "{stats:?}");
    plugin
        .configure(&serde_json::json!({"panic_on_activate": true}))
        .await
        .expect("configure is not exported: nothing to call");
    let err = call(&*plugin, "ping", "").await.unwrap_err();
    assert!(matches!(err, SandboxError::Trap { .. }), "{err:?}");
}

/// The counter counts bus events the host delivers to its `on-event`
/// function, as the component counter does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_counts_delivered_events() {
    let h = Harness::new(&INLINE);
    let counter = h.start(&INLINE, Role::Counter, |_| {}).await;
    let event = r#"{"topic":"notifier.sent","payload":{}}"#;
    call(&*counter, "on-event", event).await.unwrap();
    call(&*counter, "on-event", event).await.unwrap();
    assert_eq!(
        call(&*counter, "get", "event:notifier.sent").await.unwrap(),
        "2"
    );
}

/// Hostile: a WASI Extism module that sleeps in `poll_oneoff` (what
/// `std::thread::sleep` compiles to on wasip1). The watchdog stops calls by
/// bumping the epoch, which wasmtime only sees in wasm code, never inside a
/// host call, and wasmtime-wasi's sync `poll_oneoff` blocks its thread
/// until the clock fires: one such call per plugin-call thread would hold
/// them all long past the 1 s deadline and starve every other plugin.
/// Extism 1.41 cannot hand a replacement `poll_oneoff` the guest's memory,
/// so such modules are refused at load, naming the import, and another
/// tenant's plugin is served as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_sleep_cannot_hold_the_call_threads_past_the_deadline() {
    const SLEEPER: &str = r#"(module
        (import "wasi_snapshot_preview1" "poll_oneoff"
            (func $poll (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "sleep") (result i32)
            ;; one subscription: userdata 0, tag 0 (clock), monotonic,
            ;; relative timeout 20 s
            (i32.store8 (i32.const 8) (i32.const 0))
            (i32.store (i32.const 16) (i32.const 1))
            (i64.store (i32.const 24) (i64.const 20000000000))
            (i64.store (i32.const 32) (i64.const 0))
            (i32.store16 (i32.const 40) (i32.const 0))
            (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
            (i32.const 0))
        (func (export "ping") (result i32) (i32.const 0)))"#;
    const PING: &str = r#"(module (func (export "ping") (result i32) (i32.const 0)))"#;
    let manifest = |id: &str| {
        let source = format!(
            "manifest_version = 1\n[plugin]\nid = \"{id}\"\nname = \"x\"\nversion = \"0.1.0\"\n\
             [engine]\ntenon = \"^1.0\"\n[runtime]\nkind = \"extism\"\nmodule = \"plugin.wasm\"\n\
             [limits]\nmemory = \"16MiB\"\ntimeout = \"1s\"\nmax_instances = 8\n\
             [[commands]]\nname = \"sleep\"\n[[commands]]\nname = \"ping\"\n"
        );
        tenon_manifest::parse(&source, tenon_manifest::Format::Toml, &Default::default())
            .into_result()
            .unwrap_or_else(|d| panic!("invalid test manifest: {d:?}"))
    };
    let h = Harness::new(&DEDICATED);
    let refused = h
        .runtime
        .load(h.request(manifest("evil/sleeper"), wat(SLEEPER), "tenant-a"))
        .await
        .map(drop);
    assert!(
        matches!(&refused, Err(SandboxError::Unsupported { message, .. })
            if message.contains("`wasi_snapshot_preview1::poll_oneoff`")),
        "a module that can sleep in a host call past its deadline was not refused: {refused:?}"
    );
    let other = h
        .runtime
        .load(h.request(manifest("good/other"), wat(PING), "tenant-b"))
        .await
        .unwrap();
    other.start(&serde_json::json!({})).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(3), call(&*other, "ping", "")).await;
    assert!(matches!(&answer, Ok(Ok(_))), "{answer:?}");
}

/// Hostile: code that runs while Extism makes an instance, before the
/// export. Extism 1.41 sends its timer "start" (the only thing a cancel can
/// reach) after the start function and `_initialize` have run, and drops a
/// cancel that comes earlier. A start function that loops would hang the
/// load (Extism runs it while linking); an `_initialize` that loops would
/// hold its plugin-call thread and slot forever; a slow `_initialize`
/// followed by a looping export would lose the watchdog's cancel and loop
/// on unwatched. Instantiation runs on fuel: the loads are refused, naming
/// the fuel; the watchdog cancels again until the call ends: each call
/// ends with a timeout; the slot (there is one) serves the next call, and another
/// tenant's plugin is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_run_while_an_instance_is_made_cannot_outlive_the_deadline() {
    const START: &str = r#"(module
        (func $spin (loop $l (br $l)))
        (start $spin)
        (func (export "loop") (result i32) (i32.const 0)))"#;
    const INITIALIZE: &str = r#"(module
        (func (export "_initialize") (loop $l (br $l)))
        (func (export "loop") (result i32) (i32.const 0)))"#;
    // About 50 million rounds: well past a 20 ms deadline, well within the
    // fuel instantiation gets; then the export loops.
    const SLOW_INITIALIZE: &str = r#"(module
        (func (export "_initialize") (local $n i32)
            (local.set $n (i32.const 50000000))
            (loop $l (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
        (func (export "loop") (result i32) (loop $l (br $l)) (i32.const 0)))"#;
    const PING: &str = r#"(module (func (export "ping") (result i32) (i32.const 0)))"#;
    let manifest = |id: &str, command: &str| {
        let source = format!(
            "manifest_version = 1\n[plugin]\nid = \"{id}\"\nname = \"x\"\nversion = \"0.1.0\"\n\
             [engine]\ntenon = \"^1.0\"\n[runtime]\nkind = \"extism\"\nmodule = \"plugin.wasm\"\n\
             [limits]\nmemory = \"16MiB\"\ntimeout = \"1s\"\nmax_instances = 1\n\
             wait_timeout = \"100ms\"\n[[commands]]\nname = \"{command}\"\n"
        );
        tenon_manifest::parse(&source, tenon_manifest::Format::Toml, &Default::default())
            .into_result()
            .unwrap_or_else(|d| panic!("invalid test manifest: {d:?}"))
    };
    let h = Harness::new(&DEDICATED);
    let other = h
        .runtime
        .load(h.request(manifest("good/other", "ping"), wat(PING), "tenant-b"))
        .await
        .unwrap();
    other.start(&serde_json::json!({})).await.unwrap();
    // Extism runs the start function and `_initialize` while it links,
    // which the runtime does at load: a looping one runs out of fuel
    // there, and the load is refused.
    for (id, module) in [("evil/start", START), ("evil/initialize", INITIALIZE)] {
        let refused = tokio::time::timeout(
            Duration::from_secs(20),
            h.runtime
                .load(h.request(manifest(id, "loop"), wat(module), "tenant-a")),
        )
        .await
        .map(|loaded| loaded.map(drop));
        assert!(
            matches!(&refused, Ok(Err(SandboxError::Compile { message, .. }))
                if message.contains("fuel")),
            "{id}: {refused:?}"
        );
    }
    for (id, module) in [("evil/slow-initialize", SLOW_INITIALIZE)] {
        let evil = h
            .runtime
            .load(h.request(manifest(id, "loop"), wat(module), "tenant-a"))
            .await
            .unwrap();
        evil.start(&serde_json::json!({})).await.unwrap();
        // Several rounds: each call after the first needs the only slot
        // back, and each is a fresh chance for a repeated cancel to reach
        // Extism's timer just as the call starts (upstream Extism lost
        // such a cancel, and the call looped on; see vendor/PATCHES.md).
        for round in 0..6 {
            let ended = tokio::time::timeout(
                Duration::from_secs(20),
                evil.call("loop", b"", with_timeout(Duration::from_millis(20))),
            )
            .await;
            assert!(
                matches!(&ended, Ok(Err(SandboxError::Timeout { .. }))),
                "{id}, call {round}: {ended:?}"
            );
        }
        let answer = tokio::time::timeout(Duration::from_secs(3), call(&*other, "ping", "")).await;
        assert!(matches!(&answer, Ok(Ok(_))), "after {id}: {answer:?}");
    }
}

/// wasmtime loads what it finds in its disk cache without authenticating
/// it, so the runtime keeps that cache owner-only: its directories 0700
/// (an existing one open to others is closed), its configuration 0600; a
/// cache directory that cannot be made owner-only (here, a symbolic link)
/// turns the cache off, and plugins still run, compiled afresh.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compiled_code_cache_is_owner_only_or_off() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cache");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let link = root.path().join("link");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    for (cache, enabled) in [(&dir, true), (&link, false)] {
        let runtime = tenon_sandbox::ExtismRuntime::new(
            tenon_sandbox::ExtismConfig::default().with_cache_dir(cache),
        );
        assert_eq!(runtime.cache_enabled(), enabled, "{}", cache.display());
        let h = Harness {
            host: Arc::new(tenon_sandbox::MemoryHost::new()),
            runtime: Arc::new(runtime),
            data_dir: tempfile::tempdir().unwrap(),
        };
        let echo = h.start(&DEDICATED, Role::Echo, |_| {}).await;
        assert_eq!(call(&*echo, "echo", "hi").await.unwrap(), "hi");
    }
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("extism")), 0o700);
    assert_eq!(mode(&dir.join("extism-cache.toml")), 0o600);
}
