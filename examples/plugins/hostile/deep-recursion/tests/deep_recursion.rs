//! Unbounded recursion traps; bounded recursion works; the plugin answers
//! again afterwards.

use tenon_pdk::serde_json::json;
use tenon_pdk::testing::{SandboxError, TestError, TestHost};

#[test]
fn recursion_traps_and_the_plugin_recovers() {
    let host = TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .start()
        .expect("the recursion plugin builds and activates");
    let error = host.call("recurse", "").unwrap_err();
    assert!(
        matches!(error, TestError::Sandbox(SandboxError::Trap { .. })),
        "{error}"
    );
    let error = host
        .hook("response.pre_deliver", json!({"content": "x"}))
        .unwrap_err();
    assert!(
        matches!(error, TestError::Sandbox(SandboxError::Trap { .. })),
        "{error}"
    );
    assert_eq!(host.call("depth", "100").unwrap(), b"100");
    assert_eq!(host.call("ping", "").unwrap(), b"pong");
}
