//! Dispatcher and registry behaviour beyond the single-chain cases of
//! `dispatch_cases.rs`: the reference hooks, snapshots, concurrency,
//! observers, emit, the typed layer, errors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pretty_assertions::assert_eq;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tenon_hooks::{
    DispatchConfig, DispatchOutcome, FailPolicy, HandlerOptions, HookAction, HookContext,
    HookDispatcher, HookError, HookHandler, HookReceipt, HookRegistry, HookSpec, Priority,
    ReceiptStatus, async_handler_fn, handler_fn,
};

fn agent_hooks() -> HookRegistry {
    let specs: Vec<HookSpec> =
        serde_json::from_str(include_str!("fixtures/agent_hooks.json")).expect("fixture parses");
    let registry = HookRegistry::new();
    registry.declare_all(specs).expect("valid specs");
    registry
}

fn statuses(outcome: &DispatchOutcome<impl Sized>) -> Vec<(String, ReceiptStatus)> {
    outcome
        .receipts
        .iter()
        .map(|r| (r.plugin.to_string(), r.status))
        .collect()
}

fn normal() -> HandlerOptions {
    HandlerOptions::new()
}

#[test]
fn the_reference_hooks_load_from_the_cli_json_shape() {
    let registry = agent_hooks();
    let specs = registry.specs();
    let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "model.post_call",
            "model.pre_call",
            "response.post_deliver",
            "response.pre_deliver",
            "run.pre_prompt",
            "tool.post_exec",
            "tool.pre_exec",
            "work_item.post_create",
            "work_item.pre_create",
        ]
    );
    let deliver = registry.spec("response.post_deliver").expect("declared");
    assert_eq!(deliver.default_timeout, Duration::from_millis(1000));
    assert!(!deliver.can_block && deliver.mutable.is_empty());
    assert_eq!(
        registry
            .spec("tool.pre_exec")
            .expect("declared")
            .default_timeout,
        Duration::from_millis(1500)
    );
}

/// The scenarios of the completion design's section 8.2 on its own hooks.
#[tokio::test(start_paused = true)]
async fn section_8_2_on_the_reference_hooks() {
    let registry = agent_hooks();
    let dispatcher = HookDispatcher::new(registry.clone());
    let ctx = HookContext::new("acme");

    // tool.pre_exec: a security policy blocks; the host sees blocked = true.
    registry
        .register(
            "acme.policy",
            "tool.pre_exec",
            handler_fn(|call| {
                if call.data["toolName"] == "shell" {
                    Ok(HookAction::block("shell is disabled for this tenant"))
                } else {
                    Ok(HookAction::CONTINUE)
                }
            }),
            normal().with_priority(Priority::CRITICAL),
        )
        .expect("registers");
    registry
        .register(
            "acme.sanitize",
            "tool.pre_exec",
            handler_fn(|_| Ok(HookAction::patch(json!({"toolInput": {"sanitized": true}})))),
            normal(),
        )
        .expect("registers");
    let blocked = dispatcher
        .dispatch(
            "tool.pre_exec",
            &ctx,
            json!({"toolName": "shell", "toolInput": {"cmd": "rm"}, "turn": 1}),
        )
        .await
        .expect("declared");
    assert!(blocked.is_blocked() && !blocked.proceeded());
    assert_eq!(
        blocked.blocked.as_ref().and_then(|b| b.reason.as_deref()),
        Some("shell is disabled for this tenant")
    );
    assert_eq!(
        statuses(&blocked),
        [
            ("acme.policy".into(), ReceiptStatus::Blocked),
            ("acme.sanitize".into(), ReceiptStatus::Skipped)
        ]
    );
    let allowed = dispatcher
        .dispatch(
            "tool.pre_exec",
            &ctx,
            json!({"toolName": "read", "toolInput": {"path": "a"}, "turn": 1}),
        )
        .await
        .expect("declared");
    assert!(allowed.proceeded());
    assert_eq!(
        allowed.data["toolInput"],
        json!({"path": "a", "sanitized": true})
    );

    // run.pre_prompt: two plugins append to the system prompt in priority order.
    for (plugin, priority, section) in [
        ("acme.tone", Priority::LOW, "Be brief."),
        ("acme.rules", Priority::HIGH, "Obey rules."),
    ] {
        registry
            .register(
                plugin,
                "run.pre_prompt",
                handler_fn(move |call| {
                    let prompt = call.data["systemPrompt"].as_str().unwrap_or_default();
                    Ok(HookAction::patch(
                        json!({"systemPrompt": format!("{prompt}\n{section}")}),
                    ))
                }),
                normal().with_priority(priority),
            )
            .expect("registers");
    }
    let prompt = dispatcher
        .dispatch(
            "run.pre_prompt",
            &ctx,
            json!({"systemPrompt": "You help.", "userMessage": "hi", "agent": {"id": 1}}),
        )
        .await
        .expect("declared");
    assert_eq!(
        prompt.data["systemPrompt"],
        "You help.\nObey rules.\nBe brief."
    );

    // model.pre_call: messages are not mutable; temperature is.
    registry
        .register(
            "acme.cost",
            "model.pre_call",
            handler_fn(|_| {
                Ok(HookAction::patch(
                    json!({"temperature": 0.1, "messages": []}),
                ))
            }),
            normal(),
        )
        .expect("registers");
    registry
        .register(
            "acme.cost2",
            "model.pre_call",
            handler_fn(|_| {
                Ok(HookAction::patch(
                    json!({"temperature": 0.1, "maxTokens": 256}),
                ))
            }),
            normal(),
        )
        .expect("registers");
    let call = json!({"model": "big", "temperature": 0.7, "maxTokens": 4096, "messages": [{"role": "user"}], "tools": [], "turn": 2});
    let model = dispatcher
        .dispatch("model.pre_call", &ctx, call)
        .await
        .expect("declared");
    assert_eq!(model.receipts[0].status, ReceiptStatus::Rejected);
    assert!(
        model.receipts[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("/messages"))
    );
    assert_eq!(
        model.receipts[1].changed_fields,
        ["/temperature", "/maxTokens"]
    );
    assert_eq!(model.data["messages"], json!([{"role": "user"}]));
    assert_eq!(
        (
            model.data["temperature"].as_f64(),
            model.data["maxTokens"].as_u64()
        ),
        (Some(0.1), Some(256))
    );

    // tool.post_exec: output may be redacted, the exit code may not change.
    registry
        .register(
            "acme.redact",
            "tool.post_exec",
            handler_fn(|_| {
                Ok(HookAction::patch(
                    json!({"result": {"output": "[redacted]"}}),
                ))
            }),
            normal(),
        )
        .expect("registers");
    registry
        .register(
            "acme.liar",
            "tool.post_exec",
            handler_fn(|_| Ok(HookAction::patch(json!({"result": {"exitCode": 0}})))),
            normal().with_priority(Priority::LOW),
        )
        .expect("registers");
    let post = dispatcher
        .dispatch(
            "tool.post_exec",
            &ctx,
            json!({"toolName": "env", "result": {"output": "KEY=secret", "exitCode": 1}}),
        )
        .await
        .expect("declared");
    assert_eq!(
        post.data["result"],
        json!({"output": "[redacted]", "exitCode": 1})
    );
    assert_eq!(
        statuses(&post),
        [
            ("acme.redact".into(), ReceiptStatus::Ok),
            ("acme.liar".into(), ReceiptStatus::Rejected)
        ]
    );
}

#[test]
fn registry_lists_and_removes() {
    let registry = agent_hooks();
    let noop = || handler_fn(|_| Ok(HookAction::CONTINUE));
    let a = registry
        .register("p.a", "tool.pre_exec", noop(), normal())
        .expect("registers");
    let b = registry
        .register(
            "p.b",
            "tool.pre_exec",
            noop(),
            normal()
                .with_priority(Priority::HIGH)
                .with_fail_policy(FailPolicy::Closed),
        )
        .expect("registers");
    let c = registry
        .register(
            "p.a",
            "model.pre_call",
            noop(),
            normal().with_timeout(Duration::from_millis(250)),
        )
        .expect("registers");
    let d = registry
        .register("p.c", "model.pre_call", noop(), normal())
        .expect("registers");

    let listed: Vec<_> = registry
        .list()
        .into_iter()
        .map(|h| (h.hook, h.plugin, h.id))
        .collect();
    assert_eq!(
        listed,
        [
            ("model.pre_call".into(), "p.a".into(), c),
            ("model.pre_call".into(), "p.c".into(), d),
            ("tool.pre_exec".into(), "p.b".into(), b),
            ("tool.pre_exec".into(), "p.a".into(), a),
        ]
    );
    let info = &registry.handlers("model.pre_call").expect("declared")[0];
    assert_eq!(info.timeout, Duration::from_millis(250));
    let info = &registry.handlers("tool.pre_exec").expect("declared")[0];
    assert_eq!(
        (info.priority, info.fail_policy, info.timeout),
        (
            Priority::HIGH,
            FailPolicy::Closed,
            Duration::from_millis(1500)
        )
    );
    let json = serde_json::to_value(info).expect("serializes");
    assert_eq!(json["priority"], "high");
    assert_eq!(json["fail_policy"], "closed");
    assert_eq!(json["timeout_ms"], 1500);

    assert_eq!(registry.unregister(b).map(|h| h.plugin), Some("p.b".into()));
    assert_eq!(registry.unregister(b), None);
    assert_eq!(registry.unregister_plugin("p.a"), 2);
    assert_eq!(registry.unregister_plugin("p.a"), 0);
    let left: Vec<_> = registry.list().into_iter().map(|h| h.id).collect();
    assert_eq!(left, [d]);
}

#[tokio::test]
async fn undeclared_hooks_are_errors_that_say_what_exists() {
    let registry = agent_hooks();
    let dispatcher = HookDispatcher::new(registry.clone());
    let ctx = HookContext::new("t");
    let err = dispatcher
        .dispatch("tool.pre_exce", &ctx, json!({}))
        .await
        .expect_err("undeclared");
    let HookError::UndeclaredHook {
        hook,
        suggestions,
        declared,
    } = &err
    else {
        panic!("unexpected error {err:?}");
    };
    assert_eq!(hook, "tool.pre_exce");
    assert_eq!(
        suggestions.first().map(String::as_str),
        Some("tool.pre_exec")
    );
    assert_eq!(declared.len(), 9);
    let message = err.to_string();
    assert!(
        message.starts_with("hook `tool.pre_exce` is not declared; did you mean `tool.pre_exec`"),
        "{message}"
    );
    assert!(
        message.contains("declared hooks: model.post_call, model.pre_call"),
        "{message}"
    );

    let err = registry
        .register(
            "p",
            "tool.preexec",
            handler_fn(|_| Ok(HookAction::CONTINUE)),
            normal(),
        )
        .expect_err("undeclared");
    assert!(
        err.to_string().contains("did you mean `tool.pre_exec`"),
        "{err}"
    );
    assert!(matches!(
        dispatcher.emit("nope", ctx.clone(), json!({})),
        Err(HookError::UndeclaredHook { .. })
    ));
    assert!(matches!(
        dispatcher.typed_hook::<Value>("nope"),
        Err(HookError::UndeclaredHook { .. })
    ));
    assert!(matches!(
        dispatcher.hook("nope"),
        Err(HookError::UndeclaredHook { .. })
    ));

    let empty = HookDispatcher::new(HookRegistry::new());
    let err = empty
        .dispatch("x", &ctx, json!({}))
        .await
        .expect_err("nothing declared");
    assert!(err.to_string().contains("no hooks are declared"), "{err}");
}

#[test]
fn bad_specs_and_registrations_are_refused() {
    let registry = HookRegistry::new();
    registry.declare(HookSpec::new("a")).expect("declares");
    assert_eq!(
        registry.declare(HookSpec::new("a")),
        Err(HookError::DuplicateHook { hook: "a".into() })
    );
    // declare_all is all or nothing.
    let err = registry
        .declare_all([
            HookSpec::new("b"),
            HookSpec::new("c").with_mutable(["nope"]),
        ])
        .expect_err("invalid pointer");
    assert!(
        err.to_string().contains("`nope` is not a JSON pointer"),
        "{err}"
    );
    assert!(!registry.is_declared("b"));

    let noop = || handler_fn(|_| Ok(HookAction::CONTINUE));
    for plugin in ["", "has space"] {
        let err = registry
            .register(plugin, "a", noop(), normal())
            .expect_err("bad plugin id");
        assert!(
            matches!(err, HookError::InvalidRegistration { .. }),
            "{err}"
        );
    }
    let err = registry
        .register("p", "a", noop(), normal().with_timeout(Duration::ZERO))
        .expect_err("zero timeout");
    assert!(err.to_string().contains("timeout is 0"), "{err}");
}

/// Each handler is told how long its attempt may take: its timeout, cut to
/// what the chain budget has left, so that work it runs elsewhere (a
/// sandboxed plugin on another thread) stops when the dispatcher stops
/// waiting.
#[tokio::test(start_paused = true)]
async fn handlers_are_told_their_time_limit_within_the_budget() {
    let registry = HookRegistry::new();
    registry.declare(HookSpec::new("h")).expect("declares");
    let limits = Arc::new(Mutex::new(Vec::new()));
    let record = |label: &'static str| {
        let limits = limits.clone();
        handler_fn(move |call| {
            limits.lock().unwrap().push((label, call.time_limit));
            Ok(HookAction::CONTINUE)
        })
    };
    let slow = async_handler_fn(|_| async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        Ok(HookAction::CONTINUE)
    });
    let cases = [
        // (plugin, priority, timeout): run in this order.
        ("first", 900, 5_000),
        ("slow", 800, 5_000),
        ("budget-cut", 700, 5_000),
        ("own-timeout", 600, 200),
    ];
    for (plugin, priority, timeout) in cases {
        let options = normal()
            .with_priority(Priority(priority))
            .with_timeout(Duration::from_millis(timeout));
        let handler: Arc<dyn HookHandler> = if plugin == "slow" {
            slow.clone()
        } else {
            record(plugin)
        };
        registry
            .register(plugin, "h", handler, options)
            .expect("registers");
    }
    let dispatcher = HookDispatcher::with_config(
        registry,
        DispatchConfig::default().with_budget(Duration::from_millis(1_000)),
    );
    let outcome = dispatcher
        .dispatch("h", &HookContext::new("t"), json!({}))
        .await
        .expect("declared");
    assert!(
        outcome
            .receipts
            .iter()
            .all(|r| r.status == ReceiptStatus::Ok)
    );
    let ms = |ms| Some(Duration::from_millis(ms));
    assert_eq!(
        *limits.lock().unwrap(),
        [
            ("first", ms(1_000)),
            ("budget-cut", ms(400)),
            ("own-timeout", ms(200)),
        ]
    );
}

/// Registering or removing during a dispatch changes the next dispatch only.
#[tokio::test(start_paused = true)]
async fn a_dispatch_keeps_the_snapshot_it_started_with() {
    let registry = HookRegistry::new();
    registry
        .declare(HookSpec::new("h").with_mutable(["/trace"]))
        .expect("declares");
    let push = |label: &'static str| {
        handler_fn(move |call| {
            let mut trace = call.data["trace"].as_array().cloned().unwrap_or_default();
            trace.push(json!(label));
            Ok(HookAction::patch(json!({ "trace": trace })))
        })
    };
    let slow = async_handler_fn(|_| async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(HookAction::CONTINUE)
    });
    registry
        .register("first", "h", slow, normal().with_priority(Priority::HIGH))
        .expect("registers");
    let victim = registry
        .register("victim", "h", push("victim"), normal())
        .expect("registers");
    registry
        .register("doomed", "h", push("doomed"), normal())
        .expect("registers");

    let dispatcher = HookDispatcher::new(registry.clone());
    let running = tokio::spawn({
        let dispatcher = dispatcher.clone();
        async move {
            let ctx = HookContext::new("t");
            dispatcher.dispatch("h", &ctx, json!({"trace": []})).await
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    registry
        .register("newcomer", "h", push("newcomer"), normal())
        .expect("registers");
    assert!(registry.unregister(victim).is_some());
    assert_eq!(registry.unregister_plugin("doomed"), 1);

    let first = running.await.expect("joins").expect("declared");
    assert_eq!(first.data["trace"], json!(["doomed", "victim"]));
    assert_eq!(first.receipts.len(), 3);

    let second = dispatcher
        .dispatch("h", &HookContext::new("t"), json!({"trace": []}))
        .await
        .expect("declared");
    assert_eq!(second.data["trace"], json!(["newcomer"]));
    assert_eq!(second.receipts.len(), 2);
}

/// 100 dispatches at once on a multi-threaded runtime, while registrations
/// change: every result is its own, every context its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_dispatches_are_independent() {
    let registry = HookRegistry::new();
    registry
        .declare(HookSpec::new("calc").with_mutable(["/n"]))
        .expect("declares");
    registry
        .register(
            "double",
            "calc",
            async_handler_fn(|call| async move {
                tokio::task::yield_now().await;
                call.context.state().insert("doubled", json!(true));
                let n = call.data["n"].as_i64().unwrap_or_default();
                Ok(HookAction::patch(json!({"n": n * 2})))
            }),
            normal().with_priority(Priority::HIGH),
        )
        .expect("registers");
    registry
        .register(
            "inc",
            "calc",
            handler_fn(|call| {
                let doubled = call.context.state().get("doubled") == Some(json!(true));
                let n = call.data["n"].as_i64().unwrap_or_default();
                Ok(HookAction::patch(
                    json!({"n": if doubled { n + 1 } else { -1 }}),
                ))
            }),
            normal(),
        )
        .expect("registers");
    let dispatcher = HookDispatcher::new(registry.clone());
    let observed = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&observed);
    dispatcher.add_observer(Arc::new(
        move |_: &HookContext, receipts: &[HookReceipt]| {
            counter.fetch_add(receipts.len(), Ordering::Relaxed);
        },
    ));

    // Churn: a no-op handler at low priority comes and goes meanwhile.
    let churn = tokio::spawn({
        let registry = registry.clone();
        async move {
            for _ in 0..200 {
                let id = registry
                    .register(
                        "churn",
                        "calc",
                        handler_fn(|_| Ok(HookAction::CONTINUE)),
                        normal().with_priority(Priority::LOW),
                    )
                    .expect("registers");
                tokio::task::yield_now().await;
                registry.unregister(id);
            }
        }
    });
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let dispatcher = dispatcher.clone();
            tokio::spawn(async move {
                let ctx = HookContext::new(&format!("tenant-{i}"));
                let outcome = dispatcher
                    .dispatch("calc", &ctx, json!({"n": i}))
                    .await
                    .expect("declared");
                (i, ctx, outcome)
            })
        })
        .collect();
    let mut total_receipts = 0;
    for task in tasks {
        let (i, ctx, outcome) = task.await.expect("joins");
        assert_eq!(outcome.data, json!({"n": i * 2 + 1}), "dispatch {i}");
        assert!(
            outcome
                .receipts
                .iter()
                .all(|r| r.execution_id == ctx.execution_id())
        );
        assert_eq!(ctx.state().get("doubled"), Some(json!(true)));
        assert!(matches!(outcome.receipts.len(), 2 | 3));
        total_receipts += outcome.receipts.len();
    }
    churn.await.expect("joins");
    assert_eq!(observed.load(Ordering::Relaxed), total_receipts);
}

#[tokio::test]
async fn observers_see_every_dispatch_and_a_panicking_one_harms_nothing() {
    let registry = HookRegistry::new();
    registry.declare(HookSpec::new("h")).expect("declares");
    registry
        .register("p", "h", handler_fn(|_| Ok(HookAction::CONTINUE)), normal())
        .expect("registers");
    registry
        .register("q", "h", handler_fn(|_| Err("nope".into())), normal())
        .expect("registers");
    let dispatcher = HookDispatcher::new(registry);
    type Seen = Arc<Mutex<Vec<(String, Vec<ReceiptStatus>)>>>;
    let seen = Seen::default();
    let sink = Arc::clone(&seen);
    dispatcher.add_observer(Arc::new(|_: &HookContext, _: &[HookReceipt]| {
        panic!("broken observer")
    }));
    let id = dispatcher.add_observer(Arc::new(
        move |ctx: &HookContext, receipts: &[HookReceipt]| {
            sink.lock().expect("lock").push((
                ctx.tenant().to_owned(),
                receipts.iter().map(|r| r.status).collect(),
            ));
        },
    ));
    for tenant in ["t1", "t2"] {
        let outcome = dispatcher
            .dispatch("h", &HookContext::new(tenant), json!({}))
            .await
            .expect("declared");
        assert_eq!(outcome.receipts.len(), 2);
    }
    assert!(dispatcher.remove_observer(id));
    assert!(!dispatcher.remove_observer(id));
    dispatcher
        .dispatch("h", &HookContext::new("t3"), json!({}))
        .await
        .expect("declared");
    let want = vec![ReceiptStatus::Ok, ReceiptStatus::Error];
    assert_eq!(
        *seen.lock().expect("lock"),
        [("t1".to_owned(), want.clone()), ("t2".to_owned(), want)]
    );
}

#[tokio::test(start_paused = true)]
async fn emit_returns_at_once_and_observers_still_get_receipts() {
    let registry = HookRegistry::new();
    registry
        .declare(HookSpec::new("response.post_deliver"))
        .expect("declares");
    registry
        .register(
            "audit",
            "response.post_deliver",
            async_handler_fn(|_| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(HookAction::CONTINUE)
            }),
            normal(),
        )
        .expect("registers");
    let dispatcher = HookDispatcher::new(registry);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    dispatcher.add_observer(Arc::new(
        move |_: &HookContext, receipts: &[HookReceipt]| {
            sink.lock()
                .expect("lock")
                .extend(receipts.iter().map(|r| (r.status, r.duration)));
        },
    ));
    let start = tokio::time::Instant::now();
    let handle = dispatcher
        .emit(
            "response.post_deliver",
            HookContext::new("t"),
            json!({"content": "hi"}),
        )
        .expect("declared");
    assert_eq!(start.elapsed(), Duration::ZERO, "emit must not wait");
    assert!(seen.lock().expect("lock").is_empty());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        *seen.lock().expect("lock"),
        [(ReceiptStatus::Ok, Duration::from_millis(300))]
    );
    assert!(handle.await.expect("joins").proceeded());

    // Through a typed handle, too.
    let typed = dispatcher
        .typed_hook::<Value>("response.post_deliver")
        .expect("declared");
    drop(
        typed
            .emit(HookContext::new("t"), &json!({"content": "again"}))
            .expect("declared"),
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(seen.lock().expect("lock").len(), 2);
}

#[test]
fn emit_outside_a_runtime_is_an_error_not_a_panic() {
    let registry = HookRegistry::new();
    registry.declare(HookSpec::new("h")).expect("declares");
    let dispatcher = HookDispatcher::new(registry);
    let err = dispatcher
        .emit("h", HookContext::new("t"), json!({}))
        .expect_err("no runtime");
    assert_eq!(err, HookError::NoRuntime { hook: "h".into() });
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelCall {
    model: String,
    temperature: f64,
    max_tokens: u32,
}

#[tokio::test]
async fn typed_dispatch_round_trips_and_rejects_ill_typed_patches() {
    let registry = agent_hooks();
    let dispatcher = HookDispatcher::new(registry.clone());
    let ctx = HookContext::new("t");
    let call = ModelCall {
        model: "big".into(),
        temperature: 0.7,
        max_tokens: 4096,
    };

    // Nothing registered: the value comes back as it went.
    let outcome = dispatcher
        .dispatch_typed("model.pre_call", &ctx, call.clone())
        .await
        .expect("typed");
    assert_eq!(outcome.data, call);

    registry
        .register(
            "acme.bad",
            "model.pre_call",
            handler_fn(|_| Ok(HookAction::patch(json!({"temperature": "hot"})))),
            normal().with_priority(Priority::HIGH),
        )
        .expect("registers");
    registry
        .register(
            "acme.cap",
            "model.pre_call",
            handler_fn(|call| {
                let max = call.data["maxTokens"]
                    .as_u64()
                    .unwrap_or_default()
                    .min(1024);
                Ok(HookAction::patch(
                    json!({"maxTokens": max, "model": "small"}),
                ))
            }),
            normal(),
        )
        .expect("registers");
    let hook = dispatcher
        .typed_hook::<ModelCall>("model.pre_call")
        .expect("declared");
    assert_eq!(hook.name(), "model.pre_call");
    let outcome = hook.dispatch(&ctx, call).await.expect("typed");
    assert_eq!(
        outcome.data,
        ModelCall {
            model: "small".into(),
            temperature: 0.7,
            max_tokens: 1024
        }
    );
    assert_eq!(outcome.receipts[0].status, ReceiptStatus::Rejected);
    let error = outcome.receipts[0].error.as_deref().unwrap_or_default();
    assert!(
        error.contains(
            "the patch would leave data the host cannot use: invalid type: string \"hot\""
        ),
        "{error}"
    );
    assert_eq!(outcome.receipts[1].changed_fields, ["/maxTokens", "/model"]);
}

#[tokio::test]
async fn typed_data_that_is_not_json_is_an_error() {
    let registry = agent_hooks();
    let dispatcher = HookDispatcher::new(registry);
    let mut bad = std::collections::HashMap::new();
    bad.insert((1, 2), 3);
    let err = dispatcher
        .dispatch_typed("model.pre_call", &HookContext::new("t"), bad)
        .await
        .expect_err("tuple keys are not JSON");
    assert!(matches!(err, HookError::Encode { .. }), "{err}");
    assert!(err.to_string().contains("model.pre_call"), "{err}");
}

#[tokio::test]
async fn handlers_see_the_call_and_share_state_within_one_dispatch() {
    let registry = HookRegistry::new();
    registry
        .declare(HookSpec::new("h").with_mutable(["/tier"]))
        .expect("declares");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let id = registry
        .register(
            "first",
            "h",
            handler_fn(move |call| {
                sink.lock().expect("lock").push((
                    call.hook.to_owned(),
                    call.plugin.to_owned(),
                    call.handler,
                    call.attempt,
                    call.context.tenant().to_owned(),
                    call.context.user_id().map(str::to_owned),
                    call.context.session_id().map(str::to_owned),
                ));
                call.context.state().insert("tier", json!("gold"));
                Ok(HookAction::CONTINUE)
            }),
            normal().with_priority(Priority::HIGH),
        )
        .expect("registers");
    registry
        .register(
            "second",
            "h",
            handler_fn(|call| {
                Ok(HookAction::patch(
                    json!({"tier": call.context.state().get("tier")}),
                ))
            }),
            normal(),
        )
        .expect("registers");
    let dispatcher = HookDispatcher::new(registry);
    let ctx = HookContext::new("acme").with_user("u1").with_session("s1");
    let outcome = dispatcher
        .dispatch("h", &ctx, json!({"tier": null}))
        .await
        .expect("declared");
    assert_eq!(outcome.data, json!({"tier": "gold"}));
    assert_eq!(
        ctx.state().get("tier"),
        Some(json!("gold")),
        "the host reads the state after"
    );
    assert_eq!(
        *seen.lock().expect("lock"),
        [(
            "h".into(),
            "first".into(),
            id,
            1,
            "acme".into(),
            Some("u1".into()),
            Some("s1".into())
        )]
    );
    // Another context starts with empty state.
    let other = HookContext::new("acme");
    dispatcher
        .dispatch("h", &other, json!({"tier": null}))
        .await
        .expect("declared");
    assert_eq!(other.state().len(), 1);
}

#[tokio::test]
async fn a_hook_handle_sees_later_registrations() {
    let registry = HookRegistry::new();
    registry
        .declare(HookSpec::new("h").with_blocking(true))
        .expect("declares");
    let dispatcher = HookDispatcher::new(registry.clone());
    let hook = dispatcher.hook("h").expect("declared");
    assert!(hook.spec().can_block);
    let ctx = HookContext::new("t");
    assert!(hook.dispatch(&ctx, json!({})).await.receipts.is_empty());
    registry
        .register(
            "p",
            "h",
            handler_fn(|_| Ok(HookAction::block("no"))),
            normal(),
        )
        .expect("registers");
    assert!(hook.dispatch(&ctx, json!({})).await.is_blocked());
}

/// Every failing receipt says what kind of failure it was: the handler's
/// own kind, a caught panic as a trap, a timeout as a timeout; a rejected
/// result or a skipped handler carries none.
#[tokio::test(start_paused = true)]
async fn failing_receipts_carry_their_kind() {
    use tenon_hooks::{ErrorKind, HandlerError};
    let registry = HookRegistry::new();
    registry
        .declare(HookSpec::new("h").with_mutable(["/ok"]))
        .unwrap();
    let cases: Vec<(&str, HandlerOptions)> = vec![
        ("a/busy", normal().with_priority(Priority(60))),
        ("b/default", normal().with_priority(Priority(50))),
        ("c/panics", normal().with_priority(Priority(40))),
        (
            "d/slow",
            normal()
                .with_priority(Priority(30))
                .with_timeout(Duration::from_millis(5)),
        ),
        ("e/rejected", normal().with_priority(Priority(20))),
    ];
    for (plugin, options) in cases {
        let handler: Arc<dyn HookHandler> = match plugin {
            "a/busy" => handler_fn(|_| {
                Err(HandlerError::new("every instance busy").with_kind(ErrorKind::Unavailable))
            }),
            "b/default" => handler_fn(|_| Err("no".into())),
            "c/panics" => handler_fn(|_| panic!("boom")),
            "d/slow" => async_handler_fn(|_| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(HookAction::CONTINUE)
            }),
            _ => handler_fn(|_| Ok(HookAction::patch(json!({"other": 1})))),
        };
        registry.register(plugin, "h", handler, options).unwrap();
    }
    let outcome = HookDispatcher::new(registry)
        .dispatch("h", &HookContext::new("t"), json!({}))
        .await
        .unwrap();
    let kinds: Vec<(ReceiptStatus, Option<ErrorKind>)> = outcome
        .receipts
        .iter()
        .map(|r| (r.status, r.error_kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (ReceiptStatus::Error, Some(ErrorKind::Unavailable)),
            (ReceiptStatus::Error, Some(ErrorKind::Handler)),
            (ReceiptStatus::Error, Some(ErrorKind::Trap)),
            (ReceiptStatus::Timeout, Some(ErrorKind::Timeout)),
            (ReceiptStatus::Rejected, None),
        ]
    );
    let stored = serde_json::to_value(&outcome.receipts[0]).unwrap();
    assert_eq!(stored["error_kind"], "unavailable");
    let back: HookReceipt = serde_json::from_value(stored).unwrap();
    assert_eq!(back.error_kind, Some(ErrorKind::Unavailable));
}
