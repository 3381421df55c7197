//! The command registry: calls, timeouts, unknown names with suggestions.

use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tenon_hooks::{CommandError, CommandRegistry, HandlerError, command_fn};

fn registry() -> CommandRegistry {
    let commands = CommandRegistry::new();
    commands
        .register(
            "acme.math",
            "double",
            command_fn(|n: Value| async move { Ok(json!(n.as_i64().unwrap_or(0) * 2)) }),
        )
        .expect("registers");
    commands
        .register(
            "acme.math",
            "negate",
            command_fn(|n: Value| async move { Ok(json!(-n.as_i64().unwrap_or(0))) }),
        )
        .expect("registers");
    commands
        .register_with_timeout(
            "acme.slow",
            "sleep",
            command_fn(|ms: Value| async move {
                tokio::time::sleep(Duration::from_millis(ms.as_u64().unwrap_or(0))).await;
                Ok(json!("woke"))
            }),
            Duration::from_millis(500),
        )
        .expect("registers");
    commands
        .register(
            "acme.broken",
            "fail",
            command_fn(|_| async { Err(HandlerError::new("out of cheese")) }),
        )
        .expect("registers");
    commands
        .register(
            "acme.broken",
            "panic",
            command_fn(|_| async { panic!("kaboom") }),
        )
        .expect("registers");
    commands
}

/// (command, input, timeout override in ms, expected answer or error message, ms taken)
type CallCase = (
    &'static str,
    Value,
    Option<u64>,
    Result<Value, &'static str>,
    u64,
);

#[tokio::test(start_paused = true)]
async fn calls_answer_fail_and_time_out() {
    let commands = registry();
    let cases: Vec<CallCase> = vec![
        ("acme.math:double", json!(21), None, Ok(json!(42)), 0),
        ("acme.slow:sleep", json!(400), None, Ok(json!("woke")), 400),
        (
            "acme.slow:sleep",
            json!(10_000),
            None,
            Err("command `acme.slow:sleep` did not answer within 500 ms"),
            500,
        ),
        (
            "acme.slow:sleep",
            json!(400),
            Some(100),
            Err("command `acme.slow:sleep` did not answer within 100 ms"),
            100,
        ),
        (
            "acme.slow:sleep",
            json!(900),
            Some(1000),
            Ok(json!("woke")),
            900,
        ),
        (
            "acme.broken:fail",
            json!(null),
            None,
            Err("command `acme.broken:fail` failed: out of cheese"),
            0,
        ),
        (
            "acme.broken:panic",
            json!(null),
            None,
            Err("command `acme.broken:panic` failed: panicked: kaboom"),
            0,
        ),
        (
            "acme.math:doubel",
            json!(1),
            None,
            Err("unknown command `acme.math:doubel`; did you mean `acme.math:double`?"),
            0,
        ),
        (
            "acme.math:sqrt",
            json!(1),
            None,
            Err(
                "unknown command `acme.math:sqrt`; did you mean `acme.math:double` (or `acme.math:negate`)?",
            ),
            0,
        ),
        (
            "double",
            json!(1),
            None,
            Err("`double` is not a command name: it has no `:`; expected `plugin-id:command`"),
            0,
        ),
    ];
    for (name, input, timeout, expected, ms) in cases {
        let start = tokio::time::Instant::now();
        let result = match timeout {
            None => commands.call(name, input).await,
            Some(t) => {
                commands
                    .call_with_timeout(name, input, Duration::from_millis(t))
                    .await
            }
        };
        let result = result.map_err(|e| e.to_string());
        assert_eq!(result, expected.map_err(str::to_owned), "{name}");
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(ms),
            "{name}: time taken"
        );
    }
    let err = commands
        .call("acme.slow:sleep", json!(10_000))
        .await
        .expect_err("times out");
    assert_eq!(
        err,
        CommandError::Timeout {
            name: "acme.slow:sleep".into(),
            timeout: Duration::from_millis(500)
        }
    );
}

#[tokio::test]
async fn unknown_commands_name_the_closest_ones() {
    let commands = registry();
    let cases: &[(&str, &[&str])] = &[
        ("acme.math:doubel", &["acme.math:double"]),
        ("acme.mat:double", &["acme.math:double"]),
        ("acme.math:sqrt", &["acme.math:double", "acme.math:negate"]),
        ("nobody:nothing", &[]),
    ];
    for (name, suggestions) in cases {
        let err = commands.call(name, json!(null)).await.expect_err(name);
        let CommandError::UnknownCommand {
            suggestions: got,
            registered,
            ..
        } = &err
        else {
            panic!("{name}: {err:?}");
        };
        assert_eq!(got, suggestions, "{name}");
        assert_eq!(*registered, 5);
    }
    let err = CommandRegistry::new()
        .call("a:b", json!(null))
        .await
        .expect_err("empty");
    assert_eq!(
        err.to_string(),
        "unknown command `a:b` (no command is registered)"
    );
}

#[tokio::test]
async fn names_are_checked_and_plugins_unregister_together() {
    let commands = registry();
    for name in ["double", "acme.math:", ":double", "a:b:c", "a b:c"] {
        let err = commands.call(name, json!(null)).await.expect_err(name);
        assert!(
            matches!(err, CommandError::InvalidName { .. }),
            "{name}: {err}"
        );
    }
    let noop = || command_fn(|_| async { Ok(json!(null)) });
    assert_eq!(
        commands.register("acme.math", "double", noop()),
        Err(CommandError::AlreadyRegistered {
            name: "acme.math:double".into()
        })
    );
    assert!(matches!(
        commands.register("a:b", "c", noop()),
        Err(CommandError::InvalidName { .. })
    ));
    assert!(matches!(
        commands.register_with_timeout("a", "c", noop(), Duration::ZERO),
        Err(CommandError::InvalidName { .. })
    ));

    assert_eq!(commands.names().len(), 5);
    let listed = commands.list();
    assert_eq!(
        (
            listed[0].name.as_str(),
            listed[0].plugin.as_str(),
            listed[0].command.as_str()
        ),
        ("acme.broken:fail", "acme.broken", "fail")
    );
    assert_eq!(commands.unregister_plugin("acme.math"), 2);
    assert!(!commands.contains("acme.math:double"));
    assert!(commands.unregister("acme.slow:sleep"));
    assert!(!commands.unregister("acme.slow:sleep"));
    assert_eq!(commands.names(), ["acme.broken:fail", "acme.broken:panic"]);
}

#[test]
fn calling_outside_a_runtime_is_an_error() {
    let commands = registry();
    let future = commands.call("acme.math:double", json!(1));
    // Poll it on a bare executor: no Tokio runtime, so no timer.
    let result = futures_lite_block_on(future);
    assert_eq!(
        result,
        Err(CommandError::NoRuntime {
            name: "acme.math:double".into()
        })
    );
}

/// Polls a future to completion on this thread without any runtime.
fn futures_lite_block_on<F: Future>(future: F) -> F::Output {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}
