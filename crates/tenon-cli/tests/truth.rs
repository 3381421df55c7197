//! What the CLI tells an operator is true: health and the crash guard judge
//! from what every process stored, read-only commands change nothing,
//! failures are reported before plugins start, refusals name the next
//! command, scripts get JSON errors, repeated operations are no-ops.

mod support;

use serde_json::{Value, json};
use support::{Tenon, example_arg};

const PANICKER: &str = "tenon-hostile/panicker";
const MODERATOR: &str = "tenon-examples/moderator";

fn state_of(t: &Tenon, id: &str) -> String {
    t.json(&["info", id])["state"].as_str().unwrap().to_owned()
}

/// Seven dispatches, each its own process, to a plugin that traps: the
/// crash guard counts the stored failures of the earlier processes and
/// disables it at the fifth; stats and doctor judge from the stored
/// receipts.
#[test]
fn the_crash_guard_and_health_count_every_process() {
    let t = Tenon::new();
    t.ok(&["install", &example_arg("hostile-panicker")]);
    t.ok(&["enable", PANICKER]);
    for n in 1..=7 {
        let run = t.run(&[
            "--format",
            "json",
            "hooks",
            "dispatch",
            "response.pre_deliver",
            "--data",
            r#"{"content": "x"}"#,
        ]);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        let receipts = run.json()["receipts"].as_array().unwrap().len();
        if n <= 5 {
            assert_eq!(receipts, 1, "dispatch {n}");
        } else {
            assert_eq!(receipts, 0, "dispatch {n}: disabled after the fifth");
        }
        if n == 4 {
            assert_eq!(state_of(&t, PANICKER), "active");
            // Too few to judge its health, yet doctor is not content.
            let doctor = t.run(&["doctor"]);
            assert_eq!(doctor.code, 1, "{}", doctor.stdout);
            assert!(
                doctor.stdout.contains(
                    "every one of its 4 recent executions failed; `tenon events tenon-hostile/panicker --kind hook` shows why"
                ) && !doctor.stdout.contains("healthy: nothing needs attention"),
                "{}",
                doctor.stdout
            );
        }
    }
    let info = t.json(&["info", PANICKER]);
    assert_eq!(info["state"], "disabled");
    assert_eq!(info["last_error"]["code"], "crash_loop");

    let stats = t.json(&["stats", PANICKER]);
    let health = &stats["plugins"][0]["health"];
    assert_eq!(health["status"], "unknown", "{stats}");
    assert_eq!(
        health["reason"],
        "5 executions in the last 5m (5 failed): too few to judge (10 needed)"
    );
    let text = t.ok(&["stats"]);
    assert!(text.contains("unknown"), "{text}");
    assert!(!text.contains("healthy"), "{text}");

    let doctor = t.run(&["doctor"]);
    assert_eq!(doctor.code, 1, "{}", doctor.stdout);
    assert!(
        doctor.stdout.contains("disabled by the crash guard")
            && doctor
                .stdout
                .contains("then `tenon enable tenon-hostile/panicker`"),
        "{}",
        doctor.stdout
    );
}

/// Enough stored receipts to judge, half of them failures: critical in
/// `stats` and a finding of `doctor`, although the process running doctor
/// never saw them.
#[test]
fn a_high_error_rate_is_unhealthy() {
    let t = Tenon::new();
    t.ok(&["install", &example_arg("moderator")]);
    t.ok(&["config", "set", MODERATOR, "blocked_words", r#"["secret"]"#]);
    t.ok(&["enable", MODERATOR]);
    for n in 0..10 {
        // Data the moderator cannot read fails its handler; the successes
        // in between keep the crash guard's count low.
        let data = if n % 2 == 0 {
            r#"{"content": 42}"#
        } else {
            r#"{"content": "fine"}"#
        };
        t.ok(&["hooks", "dispatch", "response.pre_deliver", "--data", data]);
    }
    let stats = t.json(&["stats"]);
    let moderator = stats["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plugin"] == MODERATOR)
        .unwrap();
    assert_eq!(moderator["health"]["status"], "critical", "{stats}");
    assert_eq!(moderator["execution"]["error_count"], 5);
    let doctor = t.run(&["--format", "json", "doctor"]);
    assert_eq!(doctor.code, 1);
    let report = doctor.json();
    let plugin = &report["plugins"][0];
    assert_eq!(plugin["health"], "critical");
    // Started on first use: registered here, not started yet.
    assert_eq!(plugin["running"], Value::Bool(true));
    assert_eq!(plugin["ready"], Value::Bool(false));
    assert!(
        plugin["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().starts_with("critical: error rate 50%")),
        "{report}"
    );
    assert_eq!(report["healthy"], json!(false));
}

/// `grant` grants what it is told (names, or `--all`; a script naming
/// nothing is refused), `revoke` takes it back and stops the plugin that
/// needed it, and both are in the event log.
#[test]
fn grants_are_granted_by_name_and_revoked() {
    const COUNTER: &str = "tenon-examples/counter";
    let t = Tenon::new();
    t.ok(&["install", &example_arg("counter")]);
    let refused = t.run(&["grant", COUNTER]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "name the permissions to grant (`tenon info {COUNTER}` lists them)"
        )) && refused
            .stderr
            .contains(&format!("`tenon grant {COUNTER} --all`")),
        "{}",
        refused.stderr
    );
    t.fails(
        &["grant", COUNTER, "secrets"],
        1,
        "tenon-examples/counter declares no permission named secrets; it declares: kv (quota 64KiB), events: subscribe notifier.*",
    );
    let kv = t.json(&["grant", COUNTER, "kv"]);
    assert_eq!(kv["permissions"], json!(["kv (quota 64KiB)"]));
    assert_eq!(
        t.json(&["info", COUNTER])["permissions"]["missing"],
        json!(["events: subscribe notifier.*"])
    );
    let both = t.json(&["grant", COUNTER, "events: subscribe"]);
    assert_eq!(
        both["permissions"],
        json!(["kv (quota 64KiB)", "events: subscribe notifier.*"])
    );
    t.ok(&["enable", COUNTER]);

    let revoked = t.json(&["revoke", COUNTER, "events"]);
    assert_eq!(
        revoked,
        json!({
            "id": COUNTER,
            "revoked": ["events: subscribe notifier.*"],
            "remaining": ["kv (quota 64KiB)"],
            "stopped": true
        })
    );
    let info = t.json(&["info", COUNTER]);
    assert_eq!(info["state"], "disabled");
    assert_eq!(info["last_error"]["code"], "permission_revoked");
    t.fails(
        &["revoke", COUNTER, "network"],
        1,
        "tenon-examples/counter holds no permission named network; it holds: kv (quota 64KiB)",
    );
    let text = t.ok(&["revoke", COUNTER, "--all"]);
    assert!(
        text.contains("Revoked") && text.contains("kv (quota 64KiB)"),
        "{text}"
    );
    let again = t.ok(&["revoke", COUNTER, "--all"]);
    assert!(again.contains("nothing to revoke"), "{again}");
    let usage = t.run(&["revoke", COUNTER]);
    assert_eq!(usage.code, 2, "names or --all: {}", usage.stderr);
    let events = t.json(&["events", "--kind", "grant_revoked", COUNTER]);
    assert_eq!(
        events["events"].as_array().map(Vec::len),
        Some(2),
        "{events}"
    );
}

/// `prune-events` applies a retention once: by count keeps the newest, by
/// age deletes what is older; naming neither is a usage error.
#[test]
fn old_events_are_pruned_by_count_and_age() {
    let t = Tenon::new();
    t.ok(&["install", &example_arg("counter")]);
    let events = |t: &Tenon| {
        t.json(&["events", "-n", "1000"])["events"]
            .as_array()
            .unwrap()
            .clone()
    };
    let before = events(&t);
    assert!(before.len() >= 2, "{before:?}");
    let by_count = t.json(&["prune-events", "--keep", "1"]);
    assert_eq!(
        by_count,
        json!({"tenant": "default", "by_age": 0, "by_count": before.len() - 1})
    );
    let after = events(&t);
    assert_eq!(after, before[before.len() - 1..], "the newest is kept");
    let text = t.ok(&["prune-events", "--older-than", "0s"]);
    assert!(
        text.contains("Deleted 1 event of tenant default: 1 by age, 0 by count"),
        "{text}"
    );
    assert!(events(&t).is_empty());
    let usage = t.run(&["prune-events"]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    let bad = t.run(&["prune-events", "--older-than", "3w"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("the unit is one of ms, s, m, h, d"),
        "{}",
        bad.stderr
    );
}

/// Enabling an active plugin and disabling one that is not enabled (never
/// enabled, or disabled already) are successful no-ops that say so.
#[test]
fn repeated_enables_and_disables_are_no_ops() {
    const ECHO: &str = "tenon-examples/echo";
    let t = Tenon::new();
    t.ok(&["install", &example_arg("echo")]);
    let never = t.ok(&["disable", ECHO]);
    assert!(
        never.contains("tenon-examples/echo is not enabled (it is resolved): nothing to do"),
        "{never}"
    );
    t.ok(&["enable", ECHO]);
    let again = t.ok(&["enable", ECHO]);
    assert!(
        again.contains("tenon-examples/echo 0.1.0 is already active: nothing to do"),
        "{again}"
    );
    let enabled = t.json(&["enable", ECHO]);
    assert_eq!(enabled["already_enabled"], json!(true), "{enabled}");
    assert_eq!(enabled["state"], "active");
    t.ok(&["disable", ECHO]);
    let again = t.ok(&["disable", ECHO]);
    assert!(
        again.contains("tenon-examples/echo is already disabled: nothing to do"),
        "{again}"
    );
    assert_eq!(
        t.json(&["disable", ECHO]),
        json!({"disabled": [], "already_disabled": [ECHO]})
    );
    let enabled = t.json(&["enable", ECHO]);
    assert_eq!(enabled["already_enabled"], json!(false), "{enabled}");
    assert_eq!(enabled["state"], "active");
}
