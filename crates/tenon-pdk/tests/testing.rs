//! The mock host itself, against the repository's example plugins: hook
//! outcomes, the checks a real host makes on patches and blocks, config
//! handling, records, the fake HTTP server and reloads.
#![cfg(feature = "testing")]

use tenon_pdk::serde_json::{Value, json};
use tenon_pdk::testing::{SandboxError, TestError, TestHost, TestHostBuilder};

fn example(name: &str) -> TestHostBuilder {
    TestHost::for_built(tenon_build::ensure_examples_built().expect(name))
}

/// The echo plugin answering `hook` with `reply`.
fn scripted(hook: &str, reply: Value) -> TestHost {
    example("echo")
        .config(json!({"replies": {hook: reply}}))
        .start()
        .expect("echo starts")
}

#[test]
fn patches_apply_as_merge_patches() {
    let host = scripted(
        "tool.post_exec",
        json!({"patch": {"result": {"output": "new"}}}),
    );
    let outcome = host
        .hook(
            "tool.post_exec",
            json!({"result": {"output": "old", "exitCode": 3}}),
        )
        .unwrap();
    assert_eq!(
        outcome.data,
        json!({"result": {"output": "new", "exitCode": 3}})
    );
    assert_eq!(outcome.patch, Some(json!({"result": {"output": "new"}})));
    assert!(!outcome.is_blocked());
}

#[test]
fn standard_hooks_refuse_what_a_real_host_refuses() {
    let host = scripted(
        "tool.post_exec",
        json!({"patch": {"result": {"exitCode": 0}}}),
    );
    match host.hook("tool.post_exec", json!({"result": {"output": "x"}})) {
        Err(TestError::PatchRejected {
            pointer, allowed, ..
        }) => {
            assert_eq!(
                (pointer.as_str(), allowed.as_str()),
                ("/result/exitCode", "/result/output")
            );
        }
        other => panic!("{other:?}"),
    }
    let host = scripted("tool.post_exec", json!({"block": "no"}));
    let error = host.hook("tool.post_exec", json!({})).unwrap_err();
    assert!(matches!(error, TestError::NotBlockable { .. }), "{error}");
    // Hooks outside the standard set are not checked.
    let host = scripted("custom.hook", json!({"block": null}));
    assert!(host.hook("custom.hook", json!({})).unwrap().is_blocked());
}

#[test]
fn plugin_errors_and_missing_functions_are_sandbox_errors() {
    let host = scripted("run.pre_prompt", json!({"error": "nope"}));
    match host.hook("run.pre_prompt", json!({})) {
        Err(TestError::Sandbox(SandboxError::Plugin { code, message, .. })) => {
            assert_eq!((code.as_str(), message.as_str()), ("scripted", "nope"));
        }
        other => panic!("{other:?}"),
    }
    match host.call("nope", "") {
        Err(TestError::Sandbox(SandboxError::Plugin { code, .. })) => {
            assert_eq!(code, "unknown-function");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn config_is_checked_against_the_manifest() {
    let check = |builder: TestHostBuilder, fragment: &str| {
        let error = builder.start().unwrap_err();
        assert!(error.to_string().contains(fragment), "{error}");
    };
    check(example("moderator"), "blocked_words");
    check(
        example("moderator").config(json!([1])),
        "must be a JSON object",
    );
    check(
        example("moderator").config(json!({"blocked_words": ["x"], "colour": "red"})),
        "colour",
    );
}

#[test]
fn records_kv_and_reloads() {
    let host = example("counter")
        .tenant("acme")
        .kv("count/tool.pre_exec", "9")
        .start()
        .unwrap();
    host.hook("tool.pre_exec", json!({})).unwrap();
    assert_eq!(
        host.kv_get("count/tool.pre_exec").as_deref(),
        Some(&b"10"[..])
    );
    assert_eq!(host.memory_host().kv_entries(host.id(), "acme").len(), 1);
    let host = host.reload().unwrap();
    assert_eq!(
        host.call_json("tally", &Value::Null).unwrap(),
        json!({"tool.pre_exec": 1})
    );
    assert!(host.sandbox_plugin().health().ready);
}

#[test]
fn the_fake_http_server_records_and_answers() {
    let mut host = example("notifier")
        .config(json!({"webhook_url": "http://127.0.0.1/unused"}))
        .http_response("/teapot", 418, "short and stout")
        .start()
        .unwrap();
    host.configure(json!({"webhook_url": format!("{}/teapot?x=1", host.http_url())}))
        .unwrap();
    let error = host
        .hook("response.post_deliver", json!({"content": "hi"}))
        .unwrap_err();
    assert!(error.to_string().contains("418"), "{error}");
    let requests = host.http_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/teapot?x=1");
    assert_eq!(
        requests[0].json()["text"],
        "response delivered via the host: hi"
    );
}
