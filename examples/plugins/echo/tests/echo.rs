//! The echo plugin under tenon-pdk's mock host.

use tenon_pdk::serde_json::json;
use tenon_pdk::testing::TestHost;

#[test]
fn echoes() {
    let host = TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .start()
        .expect("echo builds and activates");
    let data = json!({"content": "hi", "n": [1, 2, 3]});
    for hook in ["echo.noop", "echo.parse", "any.hook"] {
        let outcome = host.hook(hook, data.clone()).unwrap();
        assert_eq!(
            (outcome.patch, outcome.data),
            (None, data.clone()),
            "{hook}"
        );
    }
    let outcome = host.hook("echo.patch", data.clone()).unwrap();
    assert_eq!(outcome.data["echoed"], true);
    assert_eq!(
        host.call("echo", b"\x00bytes\xff").unwrap(),
        b"\x00bytes\xff"
    );
    assert_eq!(
        host.call("parse", r#"{ "a" : [1] }"#).unwrap(),
        br#"{"a":[1]}"#
    );
    assert!(host.call("parse", "{").is_err());
    assert!(host.hook("echo.parse", json!(null)).is_ok());
}

#[test]
fn scripted_replies() {
    let host = TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .config(json!({"replies": {
            "tool.post_exec": {"patch": {"result": {"output": "scripted"}}},
            "tool.pre_exec": {"block": "not today"},
            "model.pre_call": {"block": null},
            "run.pre_prompt": {"error": "scripted failure"}
        }}))
        .start()
        .unwrap();
    let outcome = host
        .hook(
            "tool.post_exec",
            json!({"result": {"output": "x", "exitCode": 0}}),
        )
        .unwrap();
    assert_eq!(
        outcome.data,
        json!({"result": {"output": "scripted", "exitCode": 0}})
    );
    let outcome = host.hook("tool.pre_exec", json!({})).unwrap();
    assert_eq!(outcome.block_reason(), Some("not today"));
    let outcome = host.hook("model.pre_call", json!({})).unwrap();
    assert!(outcome.is_blocked() && outcome.block_reason().is_none());
    let error = host.hook("run.pre_prompt", json!({})).unwrap_err();
    assert!(error.to_string().contains("scripted failure"), "{error}");
}
