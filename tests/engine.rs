//! The engine end to end, with the real example plugins: lifecycle, config
//! gating, grants, dependencies, upgrade and rollback, the crash guard, safe
//! mode, hot reload, tenants, archives and boot from the registry.

use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::{Map, Value, json};
use tenon_engine::{
    BusItem, DisableOptions, EngineError, EventKind, EventQuery, FailPolicy, GrantRequest,
    HookContext, InstallSource, LogLevel, LogQuery, PluginId, PluginState, Subscription,
    UninstallOptions,
};
use tenon_tests::{
    WebhookSink, builder, copy_plugin, engine, eventually, plugin, set_field, test_key,
};

fn id(text: &str) -> PluginId {
    PluginId::new(text).expect("a valid id")
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().expect("an object").clone()
}

fn context() -> HookContext {
    HookContext::new("default")
}

/// Whether the plugin is recorded disabled within `limit` (the crash guard
/// acts in the background).
async fn is_disabled_within(
    engine: &tenon_engine::PluginEngine,
    plugin: &PluginId,
    limit: Duration,
) -> bool {
    eventually(limit, async || {
        engine
            .record(plugin)
            .await
            .is_ok_and(|r| r.state == PluginState::Disabled)
    })
    .await
}

#[tokio::test]
async fn the_full_lifecycle_with_config_gating() {
    let t = engine().await;
    let engine = &t.engine;
    let moderator = id("tenon-examples/moderator");

    let report = engine
        .install(plugin("moderator").dir.as_path())
        .await
        .expect("installs");
    assert_eq!(report.state, PluginState::PendingConfig);
    assert_eq!(report.missing_config, ["blocked_words"]);
    assert!(report.granted, "the moderator asks for no permissions");

    let refused = engine
        .enable(&moderator)
        .await
        .expect_err("config is missing");
    assert!(
        matches!(refused, EngineError::MissingConfig { .. }),
        "{refused}"
    );
    assert_eq!(
        refused.to_string(),
        "cannot enable tenon-examples/moderator: required config missing: blocked_words; set it with `tenon config set tenon-examples/moderator blocked_words VALUE`"
    );

    let bad = engine
        .configure(&moderator, object(json!({"blocked_words": "secret"})), &[])
        .await
        .expect_err("a string is not an array");
    assert!(matches!(bad, EngineError::InvalidConfig { .. }), "{bad}");

    let configured = engine
        .configure(
            &moderator,
            object(json!({"blocked_words": ["secret"]})),
            &[],
        )
        .await
        .expect("configures");
    assert_eq!(configured.state, PluginState::Resolved);

    let active = engine.enable(&moderator).await.expect("enables");
    assert_eq!(active.state, PluginState::Active);
    let again = engine.enable(&moderator).await.expect_err("already active");
    assert_eq!(
        again.to_string(),
        "tenon-examples/moderator: cannot enable a plugin that is active (it is already active)"
    );

    let blocked = engine
        .dispatch(
            "response.pre_deliver",
            &context(),
            json!({"content": "the secret plan"}),
        )
        .await
        .expect("dispatches");
    assert!(blocked.is_blocked(), "{blocked:?}");
    assert_eq!(
        &*blocked.blocked.as_ref().unwrap().plugin,
        "tenon-examples/moderator"
    );
    let clean = engine
        .dispatch(
            "response.pre_deliver",
            &context(),
            json!({"content": "all good"}),
        )
        .await
        .expect("dispatches");
    assert!(!clean.is_blocked());

    // A config change reaches the running plugin without a restart.
    let changed = engine
        .configure(&moderator, object(json!({"blocked_words": ["good"]})), &[])
        .await
        .expect("reconfigures");
    assert!(changed.delivered);
    let now_blocked = engine
        .dispatch(
            "response.pre_deliver",
            &context(),
            json!({"content": "all good"}),
        )
        .await
        .expect("dispatches");
    assert!(now_blocked.is_blocked());
    let unset = engine
        .configure(&moderator, Map::new(), &["blocked_words".to_owned()])
        .await
        .expect_err("a required key cannot go while active");
    assert!(
        matches!(unset, EngineError::ConfigRequired { .. }),
        "{unset}"
    );

    let refused = engine
        .uninstall(&moderator, UninstallOptions::default())
        .await
        .expect_err("active plugins are disabled first");
    assert_eq!(
        refused.to_string(),
        "tenon-examples/moderator: cannot uninstall a plugin that is active (disable it first: `tenon disable tenon-examples/moderator`)"
    );
    engine
        .disable(&moderator, DisableOptions::default())
        .await
        .expect("disables");
    assert_eq!(
        engine.record(&moderator).await.unwrap().state,
        PluginState::Disabled
    );
    let after = engine
        .dispatch(
            "response.pre_deliver",
            &context(),
            json!({"content": "all good"}),
        )
        .await
        .expect("dispatches");
    assert!(!after.is_blocked(), "a disabled plugin's hooks are gone");

    engine
        .uninstall(&moderator, UninstallOptions::default())
        .await
        .expect("uninstalls");
    let missing = engine.record(&moderator).await.expect_err("gone");
    assert!(matches!(missing, EngineError::NotInstalled { .. }));

    // Every transition was recorded, in order.
    let events = engine
        .events(
            &EventQuery::default()
                .with_order(tenon_registry::EventOrder::OldestFirst)
                .with_limit(500),
        )
        .await
        .expect("events");
    let states: Vec<String> = events
        .events
        .iter()
        .filter(|e| e.kind == EventKind::StateChanged)
        .filter_map(|e| {
            e.detail
                .get("to")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        states,
        [
            "pending_config",
            "resolved",
            "loading",
            "loaded",
            "activating",
            "active",
            "deactivating",
            "disabled",
            "uninstalling",
        ]
    );
    let hook_events = events
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Hook)
        .count();
    assert_eq!(hook_events, 3, "one receipt per handler run");
}

#[tokio::test]
async fn grants_gate_activation_and_permissions_are_enforced() {
    let t = engine().await;
    let engine = &t.engine;
    let sink = WebhookSink::start().await;
    let notifier = id("tenon-examples/notifier");
    let report = engine
        .install(plugin("notifier").dir.as_path())
        .await
        .expect("installs");
    assert!(!report.granted);
    assert!(
        report.permissions.contains(&"secrets: token".to_owned()),
        "{:?}",
        report.permissions
    );
    engine
        .configure(
            &notifier,
            object(json!({"webhook_url": sink.url, "token": "s3cret-token"})),
            &[],
        )
        .await
        .expect("configures");
    let shown = engine.config(&notifier).await.expect("config");
    assert_eq!(shown["token"], "********", "secrets are never shown");

    let refused = engine.enable(&notifier).await.expect_err("not granted");
    match &refused {
        EngineError::NotGranted { missing, .. } => {
            assert!(
                missing.iter().any(|m| m.starts_with("network: outbound")),
                "{missing:?}"
            );
        }
        other => panic!("expected NotGranted, got {other}"),
    }
    engine
        .grant(&notifier, GrantRequest::all("test operator"))
        .await
        .expect("grants");
    engine
        .enable(&notifier)
        .await
        .expect("enables once granted");

    engine
        .dispatch(
            "response.post_deliver",
            &context(),
            json!({"content": "hello from the agent", "pluginType": "demo", "pluginInstanceId": "1", "workItemId": "w1", "result": {}}),
        )
        .await
        .expect("dispatches");
    assert!(
        eventually(Duration::from_secs(30), async || !sink
            .received()
            .is_empty())
        .await,
        "the webhook was called"
    );
    let (auth, _body) = sink.received().remove(0);
    assert_eq!(auth.as_deref(), Some("Bearer s3cret-token"));
}

/// Installs, grants and enables the notifier (posting to `sink`) and the
/// counter (counting the notifier's events).
async fn notifier_and_counter(
    engine: &tenon_engine::PluginEngine,
    sink: &WebhookSink,
) -> (PluginId, PluginId) {
    let (notifier, counter) = (id("tenon-examples/notifier"), id("tenon-examples/counter"));
    for name in ["notifier", "counter"] {
        engine
            .install(plugin(name).dir.as_path())
            .await
            .expect("installs");
    }
    engine
        .configure(&notifier, object(json!({"webhook_url": sink.url})), &[])
        .await
        .unwrap();
    for plugin in [&notifier, &counter] {
        engine.grant(plugin, GrantRequest::all("op")).await.unwrap();
        engine.enable(plugin).await.unwrap();
    }
    (notifier, counter)
}

/// Whether the counter counts `n` `notifier.sent` events within 30 s.
async fn counter_counts_sent(
    engine: &tenon_engine::PluginEngine,
    counter: &PluginId,
    n: u64,
) -> bool {
    eventually(Duration::from_secs(30), async || {
        let counts = engine.call(counter, "count", b"").await.unwrap();
        serde_json::from_slice::<Value>(&counts).unwrap()["event:notifier.sent"] == n
    })
    .await
}

#[tokio::test]
async fn plugins_receive_the_events_they_may_subscribe_to() {
    let t = engine().await;
    let engine = &t.engine;
    let sink = WebhookSink::start().await;
    let (_, counter) = notifier_and_counter(engine, &sink).await;
    engine
        .dispatch(
            "response.post_deliver",
            &context(),
            json!({"content": "hi", "result": {}}),
        )
        .await
        .unwrap();
    // The notifier publishes `notifier.sent`; the counter subscribes to
    // `notifier.*` and counts it in its `on-event` export.
    assert!(
        counter_counts_sent(engine, &counter, 1).await,
        "the event reached the counter"
    );
}

#[tokio::test]
async fn an_upgrade_asking_for_more_needs_a_new_grant() {
    let t = engine().await;
    let engine = &t.engine;
    let counter = id("tenon-examples/counter");
    engine
        .install(plugin("counter").dir.as_path())
        .await
        .unwrap();
    engine
        .grant(&counter, GrantRequest::all("op"))
        .await
        .unwrap();
    engine.enable(&counter).await.unwrap();
    let greedy = copy_plugin("counter", &t.dir.path().join("greedy"), |text| {
        set_field(&text, "version", "0.2.0")
            .replace("kv = { quota = \"64KiB\" }", "kv = { quota = \"4MiB\" }")
    });
    let refused = engine
        .upgrade(greedy.as_path())
        .await
        .expect_err("asks for more");
    assert_eq!(
        refused.to_string(),
        "cannot upgrade to tenon-examples/counter 0.2.0: the operator has not granted kv: quota 4MiB (granted 64KiB); review them with `tenon info tenon-examples/counter` and grant with `tenon grant tenon-examples/counter --all --plugin-version 0.2.0` (or name the permissions instead of --all)"
    );
    assert_eq!(
        engine.record(&counter).await.unwrap().version.to_string(),
        "0.1.0"
    );
    let grant = GrantRequest {
        version: Some(tenon_engine::Version::new(0, 2, 0)),
        ..GrantRequest::all("op")
    };
    engine
        .grant(&counter, grant)
        .await
        .expect("grants the new version");
    let upgraded = engine
        .upgrade(greedy.as_path())
        .await
        .expect("upgrades once granted");
    assert!(upgraded.swapped);
}

#[tokio::test]
async fn permissions_are_granted_by_name_and_revoked_from_a_running_plugin() {
    let t = engine().await;
    let engine = &t.engine;
    let counter = id("tenon-examples/counter");
    engine
        .install(plugin("counter").dir.as_path())
        .await
        .unwrap();
    let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();

    let unknown = engine
        .grant_named(&counter, None, &names(&["secrets"]), "op")
        .await
        .expect_err("it declares no secrets");
    assert_eq!(
        unknown.to_string(),
        "tenon-examples/counter declares no permission named secrets; it declares: kv (quota 64KiB), events: subscribe notifier.*"
    );
    let kv = engine
        .grant_named(&counter, None, &names(&["kv"]), "op")
        .await
        .expect("grants the KV store alone");
    assert_eq!(
        tenon_engine::grants::describe(&kv.permissions),
        ["kv (quota 64KiB)"]
    );
    let not_granted = async || {
        let refused = engine.enable(&counter).await.expect_err("not all granted");
        assert!(
            matches!(refused, EngineError::NotGranted { .. }),
            "{refused}"
        );
    };
    not_granted().await;
    let both = engine
        .grant_named(&counter, None, &names(&["events"]), "op")
        .await
        .expect("adds the events");
    assert_eq!(
        tenon_engine::grants::describe(&both.permissions),
        ["kv (quota 64KiB)", "events: subscribe notifier.*"],
        "a grant by name adds to what was granted"
    );
    engine.enable(&counter).await.expect("enables");
    engine.call(&counter, "count", b"").await.expect("runs");

    let not_held = engine
        .revoke(&counter, &names(&["network"]))
        .await
        .expect_err("it holds no network permission");
    assert!(
        matches!(
            not_held,
            EngineError::UnknownPermission { among: "holds", .. }
        ),
        "{not_held}"
    );
    let report = engine
        .revoke(&counter, &names(&["events: subscribe notifier.*"]))
        .await
        .expect("revokes");
    assert_eq!(report.revoked, ["events: subscribe notifier.*"]);
    assert_eq!(report.remaining, ["kv (quota 64KiB)"]);
    assert!(report.stopped, "it declares what it no longer holds");

    let record = engine.record(&counter).await.unwrap();
    assert_eq!(record.state, PluginState::Disabled);
    let last = record.last_error.expect("the reason is recorded");
    assert_eq!(last.code, "permission_revoked");
    assert_eq!(
        last.message,
        "permission revoked: events: subscribe notifier.*"
    );
    let call = engine
        .call(&counter, "count", b"")
        .await
        .expect_err("stopped at once");
    assert!(matches!(call, EngineError::NotRunning { .. }), "{call}");
    not_granted().await;

    let all = engine
        .revoke(&counter, &[])
        .await
        .expect("revokes the rest");
    assert_eq!(all.revoked, ["kv (quota 64KiB)"]);
    assert!(all.remaining.is_empty() && !all.stopped);
    let again = engine.revoke(&counter, &[]).await.expect("nothing left");
    assert!(again.revoked.is_empty(), "revoking nothing is a no-op");
    engine.flush().await;
    let revocations = engine
        .events(
            &EventQuery::default()
                .with_plugin(counter.clone())
                .with_kinds(&[EventKind::GrantRevoked]),
        )
        .await
        .unwrap();
    assert_eq!(revocations.events.len(), 2, "each withdrawal is an event");
}

#[tokio::test]
async fn revoking_power_over_hooks_takes_it_from_a_running_plugins_handlers() {
    let t = engine().await;
    let engine = &t.engine;
    let moderator = id("tenon-examples/moderator");
    engine
        .install(plugin("moderator").dir.as_path())
        .await
        .unwrap();
    engine
        .configure(&moderator, object(json!({"blocked_words": ["nope"]})), &[])
        .await
        .unwrap();
    engine
        .grant(&moderator, GrantRequest::all("op"))
        .await
        .unwrap();
    engine.enable(&moderator).await.unwrap();
    let blocks = async || {
        engine
            .dispatch(
                "response.pre_deliver",
                &context(),
                json!({"content": "nope"}),
            )
            .await
            .unwrap()
            .is_blocked()
    };
    assert!(blocks().await, "started on first use");
    let policy = || {
        engine
            .handlers()
            .iter()
            .find(|h| h.plugin == moderator.as_str())
            .map(|h| h.fail_policy)
    };
    assert_eq!(policy(), Some(FailPolicy::Closed));
    let report = engine
        .revoke(
            &moderator,
            &["hooks: fail closed on response.pre_deliver".to_owned()],
        )
        .await
        .unwrap();
    assert_eq!(
        report.revoked,
        ["hooks: fail closed on response.pre_deliver"]
    );
    assert!(!report.stopped, "it runs without power over hooks");
    assert_eq!(
        policy(),
        Some(FailPolicy::Open),
        "its running handler fails open at once"
    );
    assert!(blocks().await, "and still does its work");
    assert_eq!(
        engine.record(&moderator).await.unwrap().state,
        PluginState::Active
    );
}

#[tokio::test]
async fn a_trusted_plugin_has_nothing_to_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let engine = builder(dir.path())
        // A trusted source: a publisher's name alone proves nothing (an
        // unsigned directory gets no publisher-wide grant).
        .grant_policy(
            tenon_engine::GrantPolicy::none().trust_source(tenon_engine::SourceKind::Directory),
        )
        .build()
        .await
        .unwrap();
    let counter = id("tenon-examples/counter");
    engine
        .install(plugin("counter").dir.as_path())
        .await
        .unwrap();
    let refused = engine
        .revoke(&counter, &[])
        .await
        .expect_err("the policy grants it");
    assert!(matches!(refused, EngineError::Trusted { .. }), "{refused}");
}

#[tokio::test]
async fn event_retention_prunes_by_count_in_the_background_and_by_age_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = builder(dir.path())
        .event_retention(
            tenon_engine::EventRetention::default()
                .max_events(3)
                .every(Duration::from_millis(20)),
        )
        .build()
        .await
        .unwrap();
    let moderator = id("tenon-examples/moderator");
    engine
        .install(plugin("moderator").dir.as_path())
        .await
        .unwrap();
    engine
        .set_config(&moderator, "blocked_words", json!(["x"]))
        .await
        .unwrap();
    engine.flush().await;
    let all = async || {
        engine
            .events(&EventQuery::default().with_limit(1000))
            .await
            .unwrap()
            .events
    };
    assert!(
        eventually(Duration::from_secs(10), async || all().await.len() == 3).await,
        "the background keeps the newest three"
    );
    assert!(
        all()
            .await
            .iter()
            .any(|e| e.kind == EventKind::ConfigChanged),
        "the newest are kept"
    );
    let report = engine
        .prune_events(&tenon_engine::EventRetention::default().max_age(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(
        report,
        tenon_engine::PruneReport {
            by_age: 3,
            by_count: 0
        }
    );
    assert!(all().await.is_empty());
}

#[tokio::test]
async fn a_config_change_before_first_use_is_not_lost() {
    let t = engine().await;
    let engine = &t.engine;
    let moderator = id("tenon-examples/moderator");
    engine
        .install(plugin("moderator").dir.as_path())
        .await
        .unwrap();
    engine
        .set_config(&moderator, "blocked_words", json!(["first"]))
        .await
        .unwrap();
    engine.enable(&moderator).await.unwrap();
    // Activated on first use: it has not started yet.
    engine
        .set_config(&moderator, "blocked_words", json!(["second"]))
        .await
        .unwrap();
    let outcome = engine
        .dispatch(
            "response.pre_deliver",
            &context(),
            json!({"content": "the second"}),
        )
        .await
        .unwrap();
    assert!(
        outcome.is_blocked(),
        "it started with the config current at its first use"
    );
}

#[tokio::test]
async fn the_redactor_patches_tool_output() {
    let t = engine().await;
    let engine = &t.engine;
    let redactor = id("tenon-examples/redactor");
    let report = engine
        .install(plugin("redactor").dir.as_path())
        .await
        .expect("installs");
    assert_eq!(
        report.state,
        PluginState::Resolved,
        "every config key has a default"
    );
    engine.enable(&redactor).await.expect("enables");
    let outcome = engine
        .dispatch(
            "tool.post_exec",
            &context(),
            json!({
                "toolName": "shell",
                "toolInput": {"cmd": "env"},
                "result": {"output": "OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz012345"},
                "durationMs": 3,
                "turn": 1
            }),
        )
        .await
        .expect("dispatches");
    let output = outcome.data["result"]["output"].as_str().expect("a string");
    assert!(!output.contains("sk-proj-abcdefghij"), "{output}");
    assert!(output.contains("[REDACTED]"), "{output}");
    assert_eq!(outcome.receipts[0].changed_fields, ["/result/output"]);
}

/// What a redactor dispatch on `tool.post_exec` with `n` secrets logs.
fn secrets(n: usize) -> Value {
    let output = vec!["OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz012345"; n].join(" ");
    json!({
        "toolName": "shell",
        "toolInput": {"cmd": "env"},
        "result": {"output": output},
        "durationMs": 3,
        "turn": 1
    })
}

#[tokio::test]
async fn a_plugins_log_lines_are_kept_bounded_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let engine = builder(dir.path())
        .event_writer(tenon_registry::EventWriterConfig {
            logs_per_plugin: 2,
            ..Default::default()
        })
        .build()
        .await
        .unwrap();
    let redactor = id("tenon-examples/redactor");
    engine
        .install(plugin("redactor").dir.as_path())
        .await
        .unwrap();
    engine.enable(&redactor).await.unwrap();
    for n in 1..=3 {
        engine
            .dispatch("tool.post_exec", &context(), secrets(n))
            .await
            .unwrap();
    }
    let mine = LogQuery {
        plugin: Some(redactor.clone()),
        ..LogQuery::default()
    };
    let page = engine.logs(&mine).await.unwrap();
    let lines: Vec<(LogLevel, &str)> = page
        .logs
        .iter()
        .map(|l| (l.level, l.message.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (
                LogLevel::Info,
                "tool.post_exec: redacted 2 secret(s) in /result/output"
            ),
            (
                LogLevel::Info,
                "tool.post_exec: redacted 3 secret(s) in /result/output"
            ),
        ],
        "the newest two kept"
    );
    assert_eq!(page.dropped, 1, "the oldest dropped, and counted");
    assert!(page.logs.iter().all(|l| l.plugin == redactor));
    let warnings = LogQuery {
        level: Some(LogLevel::Warn),
        ..mine.clone()
    };
    assert!(engine.logs(&warnings).await.unwrap().logs.is_empty());

    // Another engine on the same registry reads them back.
    drop(engine);
    let later = builder(dir.path()).build().await.unwrap();
    assert_eq!(later.logs(&mine).await.unwrap(), page);
}

#[tokio::test]
async fn upgrade_and_rollback_keep_state() {
    let t = engine().await;
    let engine = &t.engine;
    let counter = id("tenon-examples/counter");
    engine
        .install(plugin("counter").dir.as_path())
        .await
        .expect("installs");
    engine
        .grant(&counter, GrantRequest::all("op"))
        .await
        .expect("grants");
    engine.enable(&counter).await.expect("enables");
    for _ in 0..3 {
        engine
            .dispatch(
                "model.post_call",
                &context(),
                json!({"model": "m", "turn": 1}),
            )
            .await
            .expect("dispatches");
    }
    let counts = engine.call(&counter, "count", b"").await.expect("calls");
    assert_eq!(
        serde_json::from_slice::<Value>(&counts).unwrap(),
        json!({"model.post_call": 3})
    );
    let via_command = engine
        .commands()
        .call("tenon-examples/counter:count", Value::Null)
        .await
        .expect("the manifest's command is registered");
    assert_eq!(via_command, json!({"model.post_call": 3}));

    let next = copy_plugin("counter", &t.dir.path().join("counter-0.2.0"), |text| {
        set_field(&text, "version", "0.2.0")
    });
    let upgraded = engine.upgrade(next.as_path()).await.expect("upgrades");
    assert_eq!(
        (upgraded.from.to_string(), upgraded.to.to_string()),
        ("0.1.0".into(), "0.2.0".into())
    );
    assert!(upgraded.swapped && upgraded.state_carried, "{upgraded:?}");
    let tally = engine.call(&counter, "tally", b"").await.expect("calls");
    assert_eq!(
        serde_json::from_slice::<Value>(&tally).unwrap(),
        json!({"model.post_call": 3})
    );
    engine
        .dispatch(
            "model.post_call",
            &context(),
            json!({"model": "m", "turn": 2}),
        )
        .await
        .expect("dispatches");

    let back = engine.rollback(&counter, None).await.expect("rolls back");
    assert_eq!(back.to.to_string(), "0.1.0");
    assert_eq!(
        engine.record(&counter).await.unwrap().version.to_string(),
        "0.1.0"
    );
    let counts = engine.call(&counter, "count", b"").await.expect("calls");
    assert_eq!(
        serde_json::from_slice::<Value>(&counts).unwrap(),
        json!({"model.post_call": 4}),
        "KV survives upgrade and rollback"
    );
    let none = engine
        .rollback(&counter, None)
        .await
        .expect_err("nothing older");
    assert!(
        none.to_string().contains("no version below 0.1.0"),
        "{none}"
    );
}

#[tokio::test]
async fn dependencies_activate_first_and_guard_deactivation() {
    let t = engine().await;
    let engine = &t.engine;
    let core = copy_plugin("echo", &t.dir.path().join("core"), |text| {
        set_field(&text, "id", "acme/core").replace("version = \"0.1.0\"", "version = \"1.2.0\"")
    });
    let app = copy_plugin("echo", &t.dir.path().join("app"), |text| {
        let text = set_field(&text, "id", "acme/app");
        format!("{text}\n[dependencies]\n\"acme/core\" = \"^1.0\"\n")
    });
    let missing = engine
        .install(app.as_path())
        .await
        .expect_err("core is not installed");
    assert!(
        matches!(missing, EngineError::Dependencies { .. }),
        "{missing}"
    );
    assert!(missing.to_string().contains("acme/core"), "{missing}");

    // Offered together, they resolve against each other and install in order.
    let together = engine.for_tenant("together").await.expect("a tenant");
    let reports = together
        .install_all(&[InstallSource::path(&app), InstallSource::path(&core)])
        .await
        .expect("installs both");
    let order: Vec<&str> = reports.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(order, ["acme/core", "acme/app"]);

    engine.install(core.as_path()).await.expect("installs core");
    engine.install(app.as_path()).await.expect("installs app");
    engine
        .enable(&id("acme/app"))
        .await
        .expect("enables app and, first, core");
    assert_eq!(
        engine.record(&id("acme/core")).await.unwrap().state,
        PluginState::Active
    );

    let refused = engine
        .disable(&id("acme/core"), DisableOptions::default())
        .await
        .expect_err("app needs core");
    assert_eq!(
        refused.to_string(),
        "cannot disable acme/core: acme/app depend on it; disable them first, or all together with `tenon disable acme/core --cascade`"
    );
    let disabled = engine
        .disable(&id("acme/core"), DisableOptions { cascade: true })
        .await
        .expect("cascades");
    assert_eq!(disabled, [id("acme/app"), id("acme/core")]);
    let blocked = engine
        .uninstall(&id("acme/core"), UninstallOptions::default())
        .await
        .expect_err("app still depends on core");
    assert!(
        blocked.to_string().contains("acme/app depend on it"),
        "{blocked}"
    );
}

#[tokio::test]
async fn a_crash_looping_plugin_is_disabled_with_its_reason() {
    let t = engine().await;
    let engine = &t.engine;
    let panicker = id("tenon-hostile/panicker");
    engine
        .install(plugin("hostile-panicker").dir.as_path())
        .await
        .expect("installs");
    engine
        .grant(&panicker, GrantRequest::all("op"))
        .await
        .expect("grants");
    engine.enable(&panicker).await.expect("enables");
    for _ in 0..5 {
        let outcome = engine
            .dispatch("response.pre_deliver", &context(), json!({"content": "x"}))
            .await
            .expect("the host survives");
        assert_eq!(
            outcome.receipts[0].status,
            tenon_engine::ReceiptStatus::Error
        );
        assert_eq!(
            outcome.receipts[0].error_kind,
            Some(tenon_engine::ErrorKind::Trap),
            "a trap in a hook is recorded as a trap"
        );
    }
    assert!(
        is_disabled_within(engine, &panicker, Duration::from_secs(30)).await,
        "the crash guard disabled it"
    );
    let record = engine.record(&panicker).await.unwrap();
    let error = record.last_error.expect("a reason");
    assert_eq!(error.code, "crash_loop");
    assert!(
        error
            .message
            .starts_with("tenon-hostile/panicker failed 5 times"),
        "{}",
        error.message
    );
    assert!(
        error
            .message
            .contains("last failure: trap during response.pre_deliver"),
        "{}",
        error.message
    );
    engine.flush().await;
    let auto = engine
        .events(&EventQuery::default().with_kinds(&[EventKind::AutoDisable]))
        .await
        .expect("events");
    assert_eq!(auto.events.len(), 1);
    assert!(engine.handlers().is_empty(), "its handlers are gone");
}

#[tokio::test]
async fn boot_needs_only_the_registry_and_safe_mode_skips_third_party_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let copy = copy_plugin("moderator", &dir.path().join("moderator-src"), |t| t);
    {
        let engine = builder(dir.path()).build().await.expect("builds");
        engine.install(copy.as_path()).await.expect("installs");
        let moderator = id("tenon-examples/moderator");
        engine
            .configure(&moderator, object(json!({"blocked_words": ["nope"]})), &[])
            .await
            .unwrap();
        engine.enable(&moderator).await.expect("enables");
        engine.shutdown().await;
    }
    std::fs::remove_dir_all(&copy).expect("the source is gone");

    let engine = builder(dir.path())
        .build()
        .await
        .expect("boots from the registry");
    let outcome = engine
        .dispatch(
            "response.pre_deliver",
            &context(),
            json!({"content": "nope"}),
        )
        .await
        .unwrap();
    assert!(
        outcome.is_blocked(),
        "the moderator came back from the registry alone"
    );
    engine.shutdown().await;
    drop(engine);

    let safe = builder(dir.path())
        .safe_mode(true)
        .build()
        .await
        .expect("boots in safe mode");
    assert!(safe.safe_mode());
    let outcome = safe
        .dispatch(
            "response.pre_deliver",
            &context(),
            json!({"content": "nope"}),
        )
        .await
        .unwrap();
    assert!(!outcome.is_blocked(), "third-party plugins stay inactive");
    let doctor = safe.doctor().await.expect("doctor");
    assert!(
        doctor.plugins[0]
            .problems
            .iter()
            .any(|p| p.contains("safe mode")),
        "{doctor:?}"
    );
}

#[tokio::test]
async fn hot_reload_swaps_code_and_survives_a_broken_build() {
    let t = engine().await;
    let engine = &t.engine;
    let dir = copy_plugin("counter", &t.dir.path().join("dev/counter"), |t| t);
    let counter = id("tenon-examples/counter");
    engine.install(dir.as_path()).await.expect("installs");
    engine
        .grant(&counter, GrantRequest::all("op"))
        .await
        .unwrap();
    engine.enable(&counter).await.unwrap();
    engine
        .dispatch(
            "tool.pre_exec",
            &context(),
            json!({"toolName": "x", "toolInput": {}}),
        )
        .await
        .unwrap();
    let mut bus = engine.bus().subscribe("plugin.*").expect("subscribes");
    let _watch = engine
        .watch(&t.dir.path().join("dev"))
        .await
        .expect("watches");

    std::fs::write(dir.join("plugin.wasm"), b"not a module").unwrap();
    let failed = wait_for(&mut bus, "plugin.reload_failed").await;
    assert!(failed.is_some(), "the broken build is reported");
    let tally = engine
        .call(&counter, "tally", b"")
        .await
        .expect("the old code still runs");
    assert_eq!(
        serde_json::from_slice::<Value>(&tally).unwrap(),
        json!({"tool.pre_exec": 1})
    );

    std::fs::copy(&plugin("counter").module_path, dir.join("plugin.wasm")).unwrap();
    let reloaded = wait_for(&mut bus, "plugin.reloaded").await;
    assert!(reloaded.is_some(), "the fixed build is swapped in");
    let tally = engine
        .call(&counter, "tally", b"")
        .await
        .expect("the new code runs");
    assert_eq!(
        serde_json::from_slice::<Value>(&tally).unwrap(),
        json!({"tool.pre_exec": 1}),
        "in-memory state carried over"
    );
}

async fn wait_for(bus: &mut Subscription, topic: &str) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let item = tokio::time::timeout_at(deadline, bus.recv()).await.ok()??;
        if let BusItem::Event(event) = item
            && event.topic == topic
        {
            return Some(event.payload.clone());
        }
    }
}

#[tokio::test]
async fn tenants_are_separate() {
    let t = engine().await;
    let a = &t.engine;
    let b = a.for_tenant("acme").await.expect("a second tenant");
    let counter = id("tenon-examples/counter");
    for engine in [a, &b] {
        engine
            .install(plugin("counter").dir.as_path())
            .await
            .expect("installs");
        engine
            .grant(&counter, GrantRequest::all("op"))
            .await
            .unwrap();
        engine.enable(&counter).await.unwrap();
    }
    a.dispatch(
        "run.pre_prompt",
        &context(),
        json!({"systemPrompt": "", "userMessage": ""}),
    )
    .await
    .unwrap();
    let count = |engine: &tenon_engine::PluginEngine| {
        let engine = engine.clone();
        let counter = counter.clone();
        async move {
            serde_json::from_slice::<Value>(&engine.call(&counter, "count", b"").await.unwrap())
                .unwrap()
        }
    };
    assert_eq!(count(a).await, json!({"run.pre_prompt": 1}));
    assert_eq!(count(&b).await, json!({}), "tenant acme's KV is its own");
    b.disable(&counter, DisableOptions::default())
        .await
        .unwrap();
    assert_eq!(a.record(&counter).await.unwrap().state, PluginState::Active);
}

#[tokio::test]
async fn archives_install_and_bad_ones_are_refused() {
    let t = engine().await;
    let engine = &t.engine;
    let packed =
        tenon_marketplace::pack(&plugin("redactor").dir, &Default::default()).expect("packs");
    let archive = t.dir.path().join("redactor.tenon");
    std::fs::write(&archive, &packed.bytes).unwrap();
    let report = engine
        .install(InstallSource::Archive(archive))
        .await
        .expect("installs the archive");
    assert_eq!(report.id.as_str(), "tenon-examples/redactor");

    let corrupt = t.dir.path().join("corrupt.tenon");
    let mut bytes = packed.bytes.clone();
    let middle = bytes.len() / 2;
    bytes.truncate(middle);
    std::fs::write(&corrupt, &bytes).unwrap();
    let refused = engine
        .install(InstallSource::Archive(corrupt))
        .await
        .expect_err("corrupt");
    assert!(matches!(refused, EngineError::Package { .. }), "{refused}");

    let garbage = t.dir.path().join("garbage.tenon");
    std::fs::write(&garbage, b"this is not an archive").unwrap();
    let refused = engine
        .install(InstallSource::Archive(garbage))
        .await
        .expect_err("garbage");
    assert!(matches!(refused, EngineError::Package { .. }), "{refused}");
    assert_eq!(
        engine.list().await.unwrap().len(),
        1,
        "nothing else was stored"
    );
}

#[tokio::test]
async fn uninstall_keeps_data_for_a_reinstall_unless_purged() {
    let t = engine().await;
    let engine = &t.engine;
    let counter = id("tenon-examples/counter");
    let install_and_count = async || {
        engine
            .install(plugin("counter").dir.as_path())
            .await
            .expect("installs");
        engine
            .grant(&counter, GrantRequest::all("op"))
            .await
            .unwrap();
        engine.enable(&counter).await.unwrap();
        let counts = engine.call(&counter, "count", b"").await.unwrap();
        engine
            .disable(&counter, DisableOptions::default())
            .await
            .unwrap();
        serde_json::from_slice::<Value>(&counts).unwrap()
    };
    assert_eq!(install_and_count().await, json!({}));
    engine.enable(&counter).await.unwrap();
    engine
        .dispatch("model.pre_call", &context(), json!({"model": "m"}))
        .await
        .unwrap();
    engine
        .disable(&counter, DisableOptions::default())
        .await
        .unwrap();
    engine
        .uninstall(&counter, UninstallOptions::default())
        .await
        .unwrap();
    assert_eq!(
        install_and_count().await,
        json!({"model.pre_call": 1}),
        "KV was kept"
    );
    engine
        .uninstall(&counter, UninstallOptions::purge_all())
        .await
        .unwrap();
    assert_eq!(install_and_count().await, json!({}), "KV was purged");
}

#[tokio::test]
async fn plugins_are_discovered_in_a_directory() {
    let t = engine().await;
    let engine = &t.engine;
    let dir = t.dir.path().join("plugins");
    copy_plugin("moderator", &dir.join("moderator"), |t| t);
    copy_plugin("redactor", &dir.join("redactor"), |t| t);
    copy_plugin("echo", &dir.join("broken"), |t| {
        t.replace("manifest_version = 1", "manifest_version = 7")
    });
    std::fs::write(dir.join("notes.txt"), "not a plugin").unwrap();
    engine
        .install(dir.join("redactor").as_path())
        .await
        .unwrap();

    let (found, refused) = engine.discover(&dir).await.expect("discovers");
    let seen: Vec<(&str, Option<String>)> = found
        .iter()
        .map(|d| (d.id.as_str(), d.installed.as_ref().map(ToString::to_string)))
        .collect();
    assert_eq!(
        seen,
        [
            ("tenon-examples/moderator", None),
            ("tenon-examples/redactor", Some("0.1.0".to_owned()))
        ]
    );
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].0.ends_with("broken"), "{refused:?}");
    let new: Vec<InstallSource> = found
        .into_iter()
        .filter(|d| d.installed.is_none())
        .map(|d| d.source)
        .collect();
    let reports = engine
        .install_all(&new)
        .await
        .expect("installs what is new");
    assert_eq!(reports.len(), 1);
}

/// A first-party plugin: native code the host registers, blocking a word.
struct Gatekeeper;

#[async_trait::async_trait]
impl tenon_engine::NativePlugin for Gatekeeper {
    async fn activate(
        &self,
        _cx: &tenon_engine::NativeContext,
        _config: &Value,
    ) -> Result<(), tenon_engine::PluginError> {
        Ok(())
    }

    async fn handle_hook(
        &self,
        cx: &tenon_engine::NativeContext,
        _hook: &str,
        _context: &tenon_engine::HookContextData,
        data: &str,
    ) -> Result<tenon_engine::HookResponse, tenon_engine::PluginError> {
        cx.kv_set("seen", data.as_bytes()).await?;
        Ok(if data.contains("forbidden") {
            tenon_engine::HookResponse::Block {
                reason: Some("first-party gatekeeper".into()),
            }
        } else {
            tenon_engine::HookResponse::Continue { patch: None }
        })
    }
}

const GATEKEEPER: &str = r#"
manifest_version = 1
[plugin]
id = "host/gatekeeper"
name = "Gatekeeper"
version = "1.0.0"
description = "Blocks forbidden responses."
[engine]
tenon = "^1.0"
[runtime]
kind = "native"
entry = "gatekeeper"
[permissions]
kv = { quota = "4KiB" }
[[hooks]]
name = "response.pre_deliver"
priority = "high"
"#;

fn native_builder(dir: &std::path::Path) -> tenon_engine::EngineBuilder {
    let native = std::sync::Arc::new(tenon_engine::NativeRuntime::new(Default::default()));
    native.register("gatekeeper", || Gatekeeper);
    builder(dir).native_runtime(native)
}

#[tokio::test]
async fn host_plugins_are_recorded_first_party_and_run_in_safe_mode() {
    let dir = tempfile::tempdir().unwrap();
    let gatekeeper = id("host/gatekeeper");
    {
        let engine = native_builder(dir.path()).build().await.expect("builds");
        let report = engine
            .install(tenon_engine::HostPlugin::native(GATEKEEPER))
            .await
            .expect("installs");
        assert!(
            report.granted,
            "a host's own plugin needs no operator grant"
        );
        let record = engine.record(&gatekeeper).await.unwrap();
        assert_eq!(record.source.kind, tenon_engine::SourceKind::Native);
        engine
            .enable(&gatekeeper)
            .await
            .expect("enables without a grant");
        engine
            .install(plugin("redactor").dir.as_path())
            .await
            .expect("installs a third-party plugin");
        engine.shutdown().await;
    }
    let safe = native_builder(dir.path())
        .safe_mode(true)
        .build()
        .await
        .expect("boots in safe mode");
    let outcome = safe
        .dispatch(
            "response.pre_deliver",
            &context(),
            json!({"content": "forbidden"}),
        )
        .await
        .unwrap();
    assert_eq!(
        outcome.blocked.map(|b| b.plugin.to_string()),
        Some("host/gatekeeper".to_owned()),
        "safe mode starts first-party plugins"
    );
    safe.shutdown().await;

    // A manifest claiming `native` from a directory is the operator's, not
    // the host's: it is recorded as a directory and needs a grant.
    let engine = native_builder(dir.path()).build().await.unwrap();
    let copy = dir.path().join("claims-native");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::write(
        copy.join("tenon.toml"),
        GATEKEEPER.replace("host/gatekeeper", "someone/impostor"),
    )
    .unwrap();
    let report = engine.install(copy.as_path()).await.expect("installs");
    assert!(!report.granted, "{report:?}");
    let refused = engine.enable(&id("someone/impostor")).await.unwrap_err();
    assert!(
        matches!(refused, EngineError::NotGranted { .. }),
        "{refused}"
    );

    // A package never takes the place of the host's own plugin: an upgrade
    // of host/gatekeeper from a directory is refused and changes nothing.
    let newer = dir.path().join("newer-gatekeeper");
    std::fs::create_dir_all(&newer).unwrap();
    std::fs::write(
        newer.join("tenon.toml"),
        GATEKEEPER.replace("version = \"1.0.0\"", "version = \"9.0.0\""),
    )
    .unwrap();
    let refused = engine.upgrade(newer.as_path()).await.unwrap_err();
    assert!(
        matches!(refused, EngineError::Version { .. }) && refused.to_string().contains("native"),
        "{refused}"
    );
    let record = engine.record(&gatekeeper).await.unwrap();
    assert_eq!(record.version.to_string(), "1.0.0");
    assert_eq!(record.source.kind, tenon_engine::SourceKind::Native);

    // A host plugin that is not what it claims is refused.
    let wrong = engine
        .install(tenon_engine::HostPlugin::native(
            &GATEKEEPER
                .replace(
                    "kind = \"native\"",
                    "kind = \"component\"\nmodule = \"x.wasm\"",
                )
                .replace("entry = \"gatekeeper\"\n", "")
                .replace("host/gatekeeper", "host/wrong"),
        ))
        .await
        .unwrap_err();
    assert!(
        wrong
            .to_string()
            .contains("a native plugin has runtime.kind = \"native\""),
        "{wrong}"
    );
    engine.shutdown().await;
}

/// Calls the plugin cannot serve through no fault of its own (a function it
/// does not export) fail, but never feed the crash guard; its own faults
/// in direct calls do, classified like hook failures.
#[tokio::test]
async fn callers_mistakes_never_feed_the_crash_guard() {
    let t = engine().await;
    let engine = &t.engine;
    let panicker = id("tenon-hostile/panicker");
    engine
        .install(plugin("hostile-panicker").dir.as_path())
        .await
        .unwrap();
    engine.enable(&panicker).await.expect("enables");
    for _ in 0..12 {
        let error = engine.call(&panicker, "no-such-function", b"").await;
        assert!(error.is_err());
    }
    let guard = engine
        .telemetry()
        .guard_status("default", panicker.as_str());
    assert_eq!(guard.failures_in_window, 0, "{guard:?}");
    assert!(!guard.tripped);
    assert_eq!(
        engine.record(&panicker).await.unwrap().state,
        PluginState::Active
    );
    let stats = engine.stats(&panicker).expect("calls were counted");
    assert_eq!(stats.by_hook["call:no-such-function"].error_count, 12);
    for _ in 0..5 {
        engine.call(&panicker, "trap", b"").await.unwrap_err();
    }
    assert!(
        is_disabled_within(engine, &panicker, Duration::from_secs(30)).await,
        "traps in calls trip it"
    );
    let reason = engine.record(&panicker).await.unwrap().last_error.unwrap();
    assert!(
        reason
            .message
            .contains("last failure: trap during call:trap"),
        "{}",
        reason.message
    );
}

/// A bus event a plugin fails to handle is recorded (an `error` event naming
/// the topic) and counted by the crash guard like any failure of its own.
#[tokio::test]
async fn failed_event_deliveries_are_recorded_and_counted() {
    let t = engine().await;
    let engine = &t.engine;
    let dir = copy_plugin("hostile-panicker", &t.dir.path().join("panicker"), |text| {
        text.replace(
            "[[hooks]]",
            "[permissions]\nevents = { subscribe = [\"test.*\"] }\n\n[[hooks]]",
        )
    });
    let panicker = id("tenon-hostile/panicker");
    engine.install(dir.as_path()).await.unwrap();
    engine
        .grant(&panicker, GrantRequest::all("op"))
        .await
        .unwrap();
    engine.enable(&panicker).await.expect("enables");
    for n in 0..5 {
        engine
            .bus()
            .publish("test.ping", json!({ "n": n }))
            .unwrap();
    }
    assert!(
        is_disabled_within(engine, &panicker, Duration::from_secs(10)).await,
        "the crash guard counted the failed deliveries"
    );
    engine.flush().await;
    let errors = engine
        .events(
            &EventQuery::default()
                .with_kinds(&[EventKind::Error])
                .with_plugin(panicker.clone()),
        )
        .await
        .unwrap();
    assert!(errors.events.len() >= 5, "{:?}", errors.events);
    let detail = &errors.events[0].detail;
    assert_eq!(detail["operation"], "deliver");
    assert_eq!(detail["topic"], "test.ping");
    assert_eq!(detail["error_kind"], "trap");
    let reason = engine.record(&panicker).await.unwrap().last_error.unwrap();
    assert!(
        reason.message.contains("during call:on-event"),
        "{}",
        reason.message
    );
}

/// Health and the crash guard judge from the receipts every process stored:
/// an engine that starts after another saw a plugin fail counts those
/// failures, and its statistics show them (unknown below the sample
/// threshold, critical on a high error rate).
#[tokio::test]
async fn health_and_the_crash_guard_count_what_other_processes_stored() {
    let dir = tempfile::tempdir().unwrap();
    let panicker = id("tenon-hostile/panicker");
    let fail = async |engine: &tenon_engine::PluginEngine, n: usize| {
        for _ in 0..n {
            engine
                .dispatch("response.pre_deliver", &context(), json!({"content": "x"}))
                .await
                .unwrap();
        }
    };
    {
        let engine = builder(dir.path()).build().await.unwrap();
        engine
            .install(plugin("hostile-panicker").dir.as_path())
            .await
            .unwrap();
        engine.enable(&panicker).await.unwrap();
        fail(&engine, 3).await;
        engine.shutdown().await;
    }
    let engine = builder(dir.path()).build().await.unwrap();
    let guard = engine
        .telemetry()
        .guard_status("default", panicker.as_str());
    assert_eq!(guard.failures_in_window, 3, "{guard:?}");
    let stats = engine.stored_stats(Some(&panicker), 1000).await.unwrap();
    let health = &stats.plugins[0].health;
    assert_eq!(health.status, tenon_engine::HealthStatus::Unknown);
    assert_eq!(
        health.reason,
        "3 executions in the last 5m (3 failed): too few to judge (10 needed)"
    );
    assert_eq!(health.ready, Some(true), "it runs here");
    let doctor = engine.doctor().await.unwrap();
    assert_eq!(
        doctor.plugins[0].health,
        tenon_engine::HealthStatus::Unknown
    );
    assert_eq!(doctor.plugins[0].guard.failures_in_window, 3);
    fail(&engine, 2).await;
    engine.shutdown().await;
    let record = engine.record(&panicker).await.unwrap();
    assert_eq!(
        record.state,
        PluginState::Disabled,
        "acted on before shutdown ended"
    );
    assert!(
        record
            .last_error
            .unwrap()
            .message
            .starts_with("tenon-hostile/panicker failed 5 times"),
    );
    let doctor = engine.doctor().await.unwrap();
    assert!(
        doctor.plugins[0]
            .problems
            .iter()
            .any(|p| p.starts_with("disabled by the crash guard")),
        "{:?}",
        doctor.plugins[0].problems
    );
    engine.enable(&panicker).await.unwrap();
    assert_eq!(
        engine
            .telemetry()
            .guard_status("default", panicker.as_str())
            .failures_in_window,
        0,
        "an enable starts the count again"
    );
    engine.shutdown().await;
}

/// Power over a hook is a permission, in both runtimes: a handler that asks
/// to fail closed and to run above the host's threshold (500) runs fail-open
/// at the threshold until the operator grants both, as asked once granted,
/// and a host whose `HookSpec` forbids failing closed and caps the priority
/// has the last word.
#[tokio::test]
async fn power_over_hooks_is_granted_and_capped_by_the_host() {
    for name in ["counter", "extism-counter"] {
        let powerful = |dir: &std::path::Path| {
            copy_plugin(name, dir, |text| {
                text.replacen(
                    "name = \"work_item.pre_create\"\npriority = \"cleanup\"",
                    "name = \"work_item.pre_create\"\npriority = 900\nfail_policy = \"closed\"",
                    1,
                )
            })
        };
        let hook = "work_item.pre_create";
        let asked = [
            format!("hooks: fail closed on {hook}"),
            format!("hooks: priority 900 on {hook}"),
        ];
        let registered = |engine: &tenon_engine::PluginEngine| {
            let handler = engine
                .handlers()
                .into_iter()
                .find(|h| h.hook == hook)
                .expect("registered");
            (handler.priority.0, handler.fail_policy)
        };

        // Everything but the power granted: it runs, without the power.
        let t = engine().await;
        let report = t
            .engine
            .install(powerful(&t.dir.path().join("powerful")).as_path())
            .await
            .expect("installs");
        let id = report.id.clone();
        for power in &asked {
            assert!(report.permissions.contains(power), "{name}: {report:?}");
        }
        let others: Vec<String> = report
            .permissions
            .iter()
            .filter(|p| !p.starts_with("hooks:"))
            .cloned()
            .collect();
        t.engine
            .grant_named(&id, None, &others, "op")
            .await
            .expect("grants the rest");
        let shown = t.engine.permissions(&id).await.unwrap();
        assert_eq!(shown.missing, asked, "{name}: shown as not granted");
        t.engine
            .enable(&id)
            .await
            .expect("enables without the power");
        assert_eq!(registered(&t.engine), (500, FailPolicy::Open), "{name}");

        // Granted: as asked.
        let t = engine().await;
        let engine = &t.engine;
        let id = engine
            .install(powerful(&t.dir.path().join("powerful")).as_path())
            .await
            .unwrap()
            .id;
        engine.grant(&id, GrantRequest::all("op")).await.unwrap();
        engine.enable(&id).await.expect("enables once granted");
        assert_eq!(registered(engine), (900, FailPolicy::Closed), "{name}");

        // A host that lets no plugin fail closed here, nor run above 100.
        let dir = tempfile::tempdir().unwrap();
        let specs = tenon_engine::agent_runner_hooks()
            .into_iter()
            .map(|spec| {
                if spec.name == hook {
                    spec.with_fail_closed(false).with_max_priority(100)
                } else {
                    spec
                }
            })
            .collect::<Vec<_>>();
        let capped = tenon_engine::PluginEngine::builder()
            .registry(&dir.path().join("registry.db").to_string_lossy())
            .data_dir(dir.path())
            .hooks(specs)
            .secret_key(test_key())
            .trust_policy(tenon_engine::TrustPolicy::development())
            .build()
            .await
            .unwrap();
        let id = capped
            .install(powerful(&dir.path().join("powerful")).as_path())
            .await
            .unwrap()
            .id;
        capped.grant(&id, GrantRequest::all("op")).await.unwrap();
        capped.enable(&id).await.unwrap();
        assert_eq!(registered(&capped), (100, FailPolicy::Open), "{name}");
    }
}

/// Resource sampling: a plugin that allocates and posts to a loopback
/// webhook, and one that keeps counts in KV, get non-zero, plausible
/// figures: memory within the manifest's limit, CPU time within the wall
/// time, one HTTP request per delivery with the bytes the sink saw, KV
/// bytes and keys, and the bytes of a data directory; `doctor` carries
/// them, and near a limit is a finding.
#[tokio::test]
async fn resources_are_sampled_per_plugin() {
    let started = std::time::Instant::now();
    let t = engine().await;
    let engine = &t.engine;
    let sink = WebhookSink::start().await;
    let (notifier, counter) = notifier_and_counter(engine, &sink).await;
    // Nothing has run yet: no runtime figures for the lazily started
    // notifier, zero storage.
    let before = engine.resources(&notifier).await.unwrap();
    assert!(!before.live, "{before:?}");
    assert_eq!(before.network_io.requests, 0);

    let content = "x".repeat(150);
    for _ in 0..2 {
        engine
            .dispatch(
                "response.post_deliver",
                &context(),
                json!({"content": content, "pluginType": "demo", "workItemId": "w1", "result": {}}),
            )
            .await
            .unwrap();
    }
    assert!(
        counter_counts_sent(engine, &counter, 2).await,
        "both deliveries reached the counter"
    );
    assert_eq!(sink.received().len(), 2);
    let data = t.dir.path().join("data/default/tenon-examples/counter");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("sub/file"), [7u8; 1234]).unwrap();

    let sampled = engine.sample_resources().await.unwrap();
    let usage = |id: &PluginId| {
        sampled
            .iter()
            .find(|(plugin, _)| plugin == id)
            .map(|(_, usage)| *usage)
            .expect("sampled")
    };
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let sent = usage(&notifier);
    assert!(sent.live, "{sent:?}");
    let limit = 16u64 << 20; // the notifier's `limits.memory`
    assert!(
        sent.memory.current_bytes >= 64 << 10 && sent.memory.current_bytes <= limit * 4,
        "at least one wasm page per live instance, within the limit: {sent:?}"
    );
    assert!(
        sent.memory.peak_bytes >= 64 << 10 && sent.memory.peak_bytes <= limit,
        "{sent:?}"
    );
    assert!(sent.instances.live >= 1 && sent.instances.pooled <= sent.instances.live);
    assert!(
        sent.cpu.total_ms > 0.0 && sent.cpu.total_ms < wall_ms,
        "{} ms of {wall_ms} ms",
        sent.cpu.total_ms
    );
    assert_eq!(sent.network_io.requests, 2, "one request per delivery");
    assert_eq!(sent.network_io.bytes_in, 4, "the sink answers `ok` twice");
    assert!(
        sent.network_io.bytes_out > 2 * 150 && sent.network_io.bytes_out < 2 * 4096,
        "two summaries quoting 150 characters: {sent:?}"
    );
    let counted = usage(&counter);
    assert!(counted.live);
    assert!(
        counted.storage.kv_keys >= 1 && counted.storage.kv_bytes > 0,
        "the counter keeps its counts in KV: {counted:?}"
    );
    assert!(counted.storage.kv_bytes < 64 << 10, "within its quota");
    assert_eq!(counted.storage.data_bytes, 1234);
    assert_eq!(counted.network_io.requests, 0);

    // The figures are the engine's statistics and the doctor's.
    let stats = engine.stats(&notifier).expect("seen");
    assert_eq!(stats.resources.network_io.requests, 2);
    let counter_problems = async || {
        let doctor = engine.doctor().await.unwrap();
        let diagnosis = doctor.plugins.into_iter().find(|p| p.id == counter);
        let diagnosis = diagnosis.expect("diagnosed");
        (diagnosis.resources, diagnosis.problems)
    };
    let (resources, problems) = counter_problems().await;
    assert_eq!(resources.storage.data_bytes, 1234);
    assert!(
        !problems.iter().any(|p| p.contains("near its limit")),
        "{problems:?}"
    );
    // Fill the counter's KV to its 64 KiB quota: doctor names it.
    let store = engine.store();
    store
        .kv_set(
            engine.tenant(),
            &counter,
            "filler",
            &vec![0u8; 60 << 10],
            tenon_registry::KvQuota::bytes(64 << 10),
        )
        .await
        .unwrap();
    let (_, problems) = counter_problems().await;
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("near its limit: KV ") && p.contains(" of 65536 bytes (9")),
        "{problems:?}"
    );
    assert!(!engine.doctor().await.unwrap().healthy);
}

/// `[config.environments.NAME]` values replace a plugin's defaults in the
/// environment the host names (here on the builder; `TENON_ENV` otherwise),
/// a required key included, and only there; an operator's value wins; an
/// environment override is validated like the base config at install.
#[tokio::test]
async fn environment_overrides_apply_where_the_host_runs() {
    let sink = WebhookSink::start().await;
    let source = tempfile::tempdir().unwrap();
    let overrides = format!(
        "\n[config.environments.production]\nwebhook_url = \"{}\"\nmax_excerpt = 5\n",
        sink.url
    );
    let dir = copy_plugin("notifier", &source.path().join("notifier"), |text| {
        text + &overrides
    });
    let notifier = id("tenon-examples/notifier");

    let t = engine().await;
    t.engine.install(dir.as_path()).await.unwrap();
    assert_eq!(
        t.engine.record(&notifier).await.unwrap().state,
        PluginState::PendingConfig,
        "without an environment the webhook URL is missing"
    );

    let home = tempfile::tempdir().unwrap();
    let engine = builder(home.path())
        .environment("production")
        .build()
        .await
        .unwrap();
    assert_eq!(engine.environment(), Some("production"));
    engine.install(dir.as_path()).await.unwrap();
    assert_eq!(
        engine.record(&notifier).await.unwrap().state,
        PluginState::Resolved,
        "production supplies the webhook URL"
    );
    engine
        .grant(&notifier, GrantRequest::all("op"))
        .await
        .unwrap();
    engine.enable(&notifier).await.unwrap();
    let deliver = async |content: &str| {
        engine
            .dispatch(
                "response.post_deliver",
                &context(),
                json!({"content": content, "pluginType": "demo", "result": {}}),
            )
            .await
            .unwrap();
    };
    deliver("abcdefghij").await;
    assert!(eventually(Duration::from_secs(30), async || sink.received().len() == 1).await);
    assert_eq!(
        sink.received()[0].1["text"],
        "response delivered via demo: abcde…",
        "production's excerpt length"
    );
    // The operator's value wins over the environment's.
    engine
        .set_config(&notifier, "max_excerpt", json!(3))
        .await
        .unwrap();
    deliver("abcdefghij").await;
    assert!(eventually(Duration::from_secs(30), async || sink.received().len() == 2).await);
    assert_eq!(
        sink.received()[1].1["text"],
        "response delivered via demo: abc…"
    );
    engine.shutdown().await;

    // Validated like the base config: a secret's value is refused, and
    // nothing is installed.
    let bad = copy_plugin("notifier", &source.path().join("bad"), |text| {
        text + "\n[config.environments.staging]\ntoken = \"s3cret\"\n"
    });
    let refused = t.engine.install(bad.as_path()).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("`token` is a secret: its value never belongs in a manifest"),
        "{refused}"
    );
    // A host naming an environment that cannot be one does not start.
    let refused = builder(home.path())
        .environment("Prod uction")
        .build()
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("is not a name"), "{refused}");
}
