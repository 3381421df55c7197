//! Builds the plugin and runs it under tenon-pdk's mock host.

use tenon_pdk::serde_json::json;
use tenon_pdk::testing::TestHost;

fn host() -> TestHost {
    TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .config(json!({"signature": "-- the test"}))
        .start()
        .expect("the plugin builds and activates")
}

#[test]
fn signs_responses() {
    let outcome = host()
        .hook("response.pre_deliver", json!({"content": "Hello"}))
        .expect("the hook runs");
    assert!(!outcome.is_blocked());
    assert_eq!(outcome.data["content"], "Hello\n\n-- the test");
}

#[test]
fn blocks_empty_responses() {
    let outcome = host()
        .hook("response.pre_deliver", json!({"content": "  "}))
        .expect("the hook runs");
    assert_eq!(outcome.block_reason(), Some("the response is empty"));
}

#[test]
fn greets() {
    assert_eq!(host().call("greet", b"Ada").expect("greet runs"), b"Hello, Ada!");
}
