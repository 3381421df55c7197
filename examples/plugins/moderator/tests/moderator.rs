//! The moderator under tenon-pdk's mock host.

use tenon_pdk::serde_json::json;
use tenon_pdk::testing::{TestError, TestHost};

fn host() -> TestHost {
    TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .config(json!({"blocked_words": ["darn", "top secret"]}))
        .start()
        .expect("the moderator builds and activates")
}

#[test]
fn blocks_responses_with_blocked_words() {
    let host = host();
    let check = |content: &str, blocked_by: Option<&str>| {
        let outcome = host
            .hook(
                "response.pre_deliver",
                json!({"content": content, "workItemId": "wi-1", "responseMode": "final"}),
            )
            .unwrap();
        let expected =
            blocked_by.map(|word| format!("the response contains the blocked word `{word}`"));
        assert_eq!(outcome.block_reason(), expected.as_deref(), "{content}");
        assert_eq!(outcome.patch, None, "{content}");
    };
    check("Well, DARN it.", Some("darn"));
    check("This is Top Secret material", Some("top secret"));
    check("darning socks is fine", None);
    check("all good here", None);
    assert!(
        host.log_messages()
            .iter()
            .any(|m| m == "blocked a response for work item `wi-1`"),
        "{:?}",
        host.log_messages()
    );
}

#[test]
fn the_reason_is_configurable() {
    let host = TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .config(json!({"blocked_words": ["x"], "reason": "no {word} here"}))
        .start()
        .unwrap();
    let outcome = host
        .hook("response.pre_deliver", json!({"content": "x marks"}))
        .unwrap();
    assert_eq!(outcome.block_reason(), Some("no x here"));
    assert_eq!(host.call("check", "an x").unwrap(), b"x");
    assert_eq!(host.call("check", "nothing").unwrap(), b"");
}

#[test]
fn blocked_words_are_required() {
    let error = TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .start()
        .unwrap_err();
    assert!(matches!(error, TestError::Config(_)), "{error}");
    assert!(error.to_string().contains("blocked_words"), "{error}");
}

#[test]
fn other_hooks_are_refused() {
    let error = host()
        .hook("tool.post_exec", json!({"result": {"output": "x"}}))
        .unwrap_err();
    assert!(error.to_string().contains("unsupported-hook"), "{error}");
}
