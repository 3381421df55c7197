//! Panics and traps reach the host as traps with the panic message; the
//! plugin's own errors stay errors; the plugin answers again afterwards.

use tenon_pdk::serde_json::json;
use tenon_pdk::testing::{SandboxError, TestError, TestHost, TrapKind};

fn host() -> TestHost {
    TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .start()
        .expect("the panicker builds and activates")
}

#[test]
fn panics_are_traps_with_their_message() {
    let host = host();
    match host.call("panic", "") {
        Err(TestError::Sandbox(SandboxError::Trap { message, .. })) => {
            assert!(
                message.contains("tenon-hostile: deliberate panic in call"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        host.log_messages()
            .iter()
            .any(|m| m.contains("deliberate panic in call")),
        "the panic is logged: {:?}",
        host.log_messages()
    );
    let error = host
        .hook("response.pre_deliver", json!({"content": "x"}))
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("deliberate panic in handle_hook"),
        "{error}"
    );
    assert_eq!(host.call("ping", "").unwrap(), b"pong");
}

#[test]
fn traps_and_aborts() {
    let host = host();
    for function in ["trap", "abort"] {
        match host.call(function, "") {
            Err(TestError::Sandbox(SandboxError::Trap { kind, .. })) => {
                assert_eq!(kind, TrapKind::Unreachable, "{function}");
            }
            other => panic!("{function}: {other:?}"),
        }
        assert_eq!(host.call("ping", "").unwrap(), b"pong");
    }
}

#[test]
fn errors_are_not_traps() {
    match host().call("error", "") {
        Err(TestError::Sandbox(SandboxError::Plugin { code, .. })) => {
            assert_eq!(code, "deliberate");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_panic_in_activate_fails_the_start() {
    let error = TestHost::builder(env!("CARGO_MANIFEST_DIR"))
        .config(json!({"panic_on_activate": true}))
        .start()
        .unwrap_err();
    assert!(
        error.to_string().contains("deliberate panic in activate"),
        "{error}"
    );
}
