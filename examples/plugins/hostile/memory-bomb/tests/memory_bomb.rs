//! The memory bomb hits its 32 MiB limit, and the plugin answers again
//! afterwards.

use tenon_pdk::serde_json::json;
use tenon_pdk::testing::{SandboxError, TestError, TestHost};

const LIMIT_PAGES: u64 = 32 * 1024 * 1024 / 65536;

#[test]
fn memory_is_capped_and_the_plugin_recovers() {
    let host = TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .start()
        .expect("the memory bomb builds and activates");
    let error = host.call("grow", "").unwrap_err();
    assert!(
        matches!(
            error,
            TestError::Sandbox(SandboxError::OutOfMemory { .. } | SandboxError::Trap { .. })
        ),
        "{error}"
    );
    let error = host
        .hook("response.pre_deliver", json!({"content": "x"}))
        .unwrap_err();
    assert!(matches!(error, TestError::Sandbox(_)), "{error}");

    // Allocation within the limit works on the fresh instance.
    assert_eq!(host.call("alloc", "4").unwrap(), b"4");

    // Raw memory.grow is refused (-1) at the limit, without a trap...
    let grown = host.call_json("grow-raw", &json!(null)).unwrap();
    let pages = grown["pages"].as_u64().unwrap();
    assert!(pages > 0 && pages < LIMIT_PAGES, "grew {pages} pages");
    // ...and the instance it filled fails its next large allocation (only
    // the 4 MiB freed above is left to its allocator), is dropped, and the
    // next call gets a fresh instance.
    let error = host.call("alloc", "16").unwrap_err();
    assert!(
        matches!(error, TestError::Sandbox(SandboxError::OutOfMemory { .. })),
        "{error}"
    );
    assert!(
        host.log_messages()
            .iter()
            .any(|m| m.contains("memory allocation of")),
        "{:?}",
        host.log_messages()
    );
    assert_eq!(host.call("alloc", "16").unwrap(), b"16");
    assert_eq!(host.call("ping", "").unwrap(), b"pong");
}
