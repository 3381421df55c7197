//! Runs the plugin's code directly: a process plugin is plain Rust, so code
//! that does not call the host needs no host to test.

use tenon_pdk::{Config, HookContext, HookData, Plugin};
use {{crate}}::Signer;

fn signer() -> Signer {
    let config = Config::from_json(r#"{"signature": "-- the test"}"#).expect("JSON");
    Signer::activate(config).expect("it activates")
}

fn pre_deliver(content: &str) -> tenon_pdk::HookAction {
    let data = tenon_pdk::serde_json::json!({ "content": content }).to_string();
    signer()
        .handle_hook(
            "response.pre_deliver",
            &HookContext::default(),
            HookData::new(data),
        )
        .expect("the hook runs")
}

#[test]
fn signs_responses() {
    let action = pre_deliver("Hello");
    assert!(!action.is_block());
    let patch = action.patch_value().expect("a patch").to_string();
    assert!(patch.contains(r"Hello\n\n-- the test"), "{patch}");
}

#[test]
fn blocks_empty_responses() {
    assert!(pre_deliver("  ").is_block());
}

#[test]
fn greets() {
    assert_eq!(signer().call("greet", b"Ada").expect("greet runs"), b"Hello, Ada!");
}
