//! The preopened directories confine the plugin: no escape reads or writes
//! anything, the read-only directory stays read-only, the read-write one
//! works.

use tenon_pdk::serde_json::{Value, json};
use tenon_pdk::testing::TestHost;

#[test]
fn no_escape() {
    let data = tempfile_dir();
    std::fs::create_dir_all(data.join("assets")).unwrap();
    std::fs::write(data.join("assets/readme.txt"), "asset").unwrap();
    let host = TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .data_dir(&data)
        .start()
        .expect("the plugin builds and activates");

    let outcomes = host.call_json("escape", &Value::Null).unwrap();
    for (attempt, outcome) in outcomes.as_object().unwrap() {
        let outcome = outcome.as_str().unwrap();
        assert!(outcome.starts_with("denied"), "{attempt}: {outcome}");
    }
    assert!(!data.parent().unwrap().join("escaped.txt").exists());
    assert!(!data.join("assets/written.txt").exists());

    // What is granted works.
    host.call("write", "/data/note.txt").unwrap();
    assert_eq!(std::fs::read(data.join("data/note.txt")).unwrap(), b"tenon");
    assert_eq!(host.call("read", "/assets/readme.txt").unwrap(), b"asset");
    let error = host
        .hook("response.pre_deliver", json!({"content": "x"}))
        .unwrap_err();
    assert!(error.to_string().contains("io"), "{error}");
    assert_eq!(host.call("ping", "").unwrap(), b"pong");
    std::fs::remove_dir_all(&data).unwrap();
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tenon-path-escape-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
