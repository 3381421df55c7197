//! The looper is stopped at its deadline, in plugin code and in host calls,
//! and the plugin answers again afterwards.

use std::time::Duration;

use tenon_pdk::serde_json::json;
use tenon_pdk::testing::{SandboxError, TestError, TestHost};

fn is_timeout(result: Result<impl std::fmt::Debug, TestError>) -> bool {
    matches!(
        result,
        Err(TestError::Sandbox(SandboxError::Timeout { .. }))
    )
}

#[test]
fn loops_are_stopped_and_the_plugin_recovers() {
    let host = TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .start()
        .expect("the looper builds and activates");
    let short = TestHost::timeout(Duration::from_millis(50));
    assert!(is_timeout(host.call_with("loop", "", short.clone())));
    assert!(is_timeout(host.call_with("host-loop", "", short)));
    assert!(is_timeout(
        host.hook("response.pre_deliver", json!({"content": "x"}))
    ));
    assert_eq!(host.call("ping", "").unwrap(), b"pong");
}

#[test]
fn a_loop_in_activate_fails_the_start() {
    let error = TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .config(json!({"loop_on_activate": true}))
        .start()
        .unwrap_err();
    assert!(
        matches!(error, TestError::Sandbox(SandboxError::Timeout { .. })),
        "{error}"
    );
}
