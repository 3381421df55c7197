//! The counter under tenon-pdk's mock host: KV counts and a tally that
//! survives a hot reload.

use tenon_pdk::serde_json::json;
use tenon_pdk::testing::TestHost;

fn host() -> TestHost {
    TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .start()
        .expect("the counter builds and activates")
}

#[test]
fn counts_hooks_in_kv() {
    let host = host();
    for hook in ["tool.pre_exec", "tool.pre_exec", "response.post_deliver"] {
        let outcome = host.hook(hook, json!({})).unwrap();
        assert_eq!(outcome.patch, None);
    }
    assert_eq!(
        host.call_json("count", &json!(null)).unwrap(),
        json!({"response.post_deliver": 1, "tool.pre_exec": 2})
    );
    assert_eq!(host.call("get", "tool.pre_exec").unwrap(), b"2");
    assert_eq!(host.call("get", "model.pre_call").unwrap(), b"0");
    assert_eq!(
        host.kv_get("count/tool.pre_exec").as_deref(),
        Some(&b"2"[..])
    );
}

#[test]
fn counts_continue_from_what_kv_holds() {
    let host = TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .kv("count/run.pre_prompt", "41")
        .start()
        .unwrap();
    host.hook("run.pre_prompt", json!({})).unwrap();
    assert_eq!(host.call("get", "run.pre_prompt").unwrap(), b"42");
}

#[test]
fn the_tally_survives_a_reload() {
    let host = host();
    host.hook("tool.post_exec", json!({"result": {"output": ""}}))
        .unwrap();
    host.hook("tool.post_exec", json!({"result": {"output": ""}}))
        .unwrap();
    let host = host.reload().unwrap();
    host.hook("model.post_call", json!({})).unwrap();
    assert_eq!(
        host.call_json("tally", &json!(null)).unwrap(),
        json!({"model.post_call": 1, "tool.post_exec": 2})
    );
}

#[test]
fn reset_clears_everything() {
    let host = host();
    host.hook("tool.pre_exec", json!({})).unwrap();
    host.call("reset", "").unwrap();
    assert!(host.kv().is_empty());
    assert_eq!(host.call_json("count", &json!(null)).unwrap(), json!({}));
    assert_eq!(host.call_json("tally", &json!(null)).unwrap(), json!({}));
}

#[test]
fn get_needs_a_hook_name() {
    let error = host().call("get", "  ").unwrap_err();
    assert!(error.to_string().contains("invalid-input"), "{error}");
}
