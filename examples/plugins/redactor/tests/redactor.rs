//! The redactor under tenon-pdk's mock host.

use tenon_pdk::serde_json::json;
use tenon_pdk::testing::TestHost;

fn host() -> TestHost {
    TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .config(json!({"words": ["Project Falcon"]}))
        .start()
        .expect("the redactor builds and activates")
}

#[test]
fn redacts_tool_output() {
    let host = host();
    let data = json!({
        "toolName": "shell",
        "toolInput": {"command": "env"},
        "result": {"output": "OPENAI_API_KEY=sk-proj-abcdefghijklmnop1234\nproject falcon launches", "exitCode": 0},
        "durationMs": 12,
        "turn": 1
    });
    let outcome = host.hook("tool.post_exec", data.clone()).unwrap();
    assert!(!outcome.is_blocked());
    // Only result.output changes (the mock host rejects anything else).
    assert_eq!(
        outcome.patch,
        Some(json!({"result": {"output": "OPENAI_API_KEY=[REDACTED]\n[REDACTED] launches"}}))
    );
    assert_eq!(outcome.data["result"]["exitCode"], 0);
    assert_eq!(outcome.data["toolInput"], data["toolInput"]);
    assert!(
        host.log_messages()
            .contains(&"tool.post_exec: redacted 2 secret(s) in /result/output".to_owned()),
        "{:?}",
        host.log_messages()
    );
}

#[test]
fn clean_output_is_left_alone() {
    let outcome = host()
        .hook("tool.post_exec", json!({"result": {"output": "hello"}}))
        .unwrap();
    assert_eq!(outcome.patch, None);
}

#[test]
fn redacts_outgoing_responses() {
    let outcome = host()
        .hook(
            "response.pre_deliver",
            json!({"content": "use Bearer abcdefgh12345678 to log in"}),
        )
        .unwrap();
    assert_eq!(outcome.data["content"], "use Bearer [REDACTED] to log in");
}

#[test]
fn the_replacement_is_configurable() {
    let host = TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .config(json!({"replacement": "***", "builtin_patterns": false, "words": ["hunter2"]}))
        .start()
        .unwrap();
    assert_eq!(
        host.call("redact", "pw hunter2, key sk-abcdefghijklmnopqrstuv")
            .unwrap(),
        b"pw ***, key sk-abcdefghijklmnopqrstuv"
    );
}
