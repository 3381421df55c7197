//! Every forbidden host, address, secret and topic is refused as a value,
//! reported to the host, and never reached.

use tenon_pdk::serde_json::{Value, json};
use tenon_pdk::testing::TestHost;

#[test]
fn everything_forbidden_is_refused() {
    let host = TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .config(json!({"granted_secret": "g", "ungranted_secret": "u"}))
        .start()
        .expect("the plugin builds and activates");
    let outcomes = host.call_json("probe", &Value::Null).unwrap();
    let outcomes = outcomes.as_object().unwrap();
    assert!(outcomes.len() >= 15, "{outcomes:?}");
    for (target, outcome) in outcomes {
        let outcome = outcome.as_str().unwrap();
        assert!(
            !outcome.starts_with("ok"),
            "{target} was reached: {outcome}"
        );
        assert!(
            outcome.starts_with("permission-denied") || outcome.starts_with("invalid-input"),
            "{target}: {outcome}"
        );
    }
    assert!(host.denials().len() >= 14, "{:?}", host.denials());
    assert!(host.http_requests().is_empty());

    let error = host
        .hook("response.pre_deliver", json!({"content": "x"}))
        .unwrap_err();
    assert!(error.to_string().contains("permission"), "{error}");
    assert_eq!(host.call("ping", "").unwrap(), b"pong");
}
