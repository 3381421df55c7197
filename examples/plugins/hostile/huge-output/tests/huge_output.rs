//! Megabytes of output are bounded by the host; the plugin answers again
//! afterwards.

use tenon_pdk::serde_json::json;
use tenon_pdk::testing::TestHost;

#[test]
fn output_is_bounded() {
    let host = TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .start()
        .expect("the plugin builds and activates");

    // Logs and captured output are capped per call.
    host.call("log", "2").unwrap();
    host.call("print", "2").unwrap();
    let logged: usize = host.logs().iter().map(|l| l.message.len()).sum();
    assert!(logged < 1 << 20, "{logged} bytes of log kept");

    // KV values and event payloads over the limits are refused as values.
    let error = host.call("kv", "2").unwrap_err();
    assert!(error.to_string().contains("quota"), "{error}");
    assert!(host.kv().is_empty());
    assert!(host.call("event", "1").is_err());
    assert!(host.events().is_empty());

    // Whatever the host does with a 16 MiB answer, it stays up.
    let _ = host.call("big", "16");
    let _ = host.call("error", "16");
    let _ = host.hook("response.pre_deliver", json!({"content": "x"}));
    assert_eq!(host.call("ping", "").unwrap(), b"pong");
}
