//! The operator's commands end to end, with the real binary, a throw-away
//! SQLite registry and the real example plugins: human and JSON output, and
//! what bad input does (exit codes and messages).

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use support::{Tenon, bare_command, copy_example, example, example_arg, with_version};

const MODERATOR: &str = "tenon-examples/moderator";
const COUNTER: &str = "tenon-examples/counter";
const NOTIFIER: &str = "tenon-examples/notifier";

/// The ids in a `list --format json`, with their states.
fn states(tenon: &Tenon) -> Vec<(String, String)> {
    tenon.json(&["list"])["plugins"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_plugin_from_install_to_uninstall() {
    let t = Tenon::new();
    let moderator = example_arg("moderator");

    let installed = t.ok(&["install", &moderator]);
    assert!(
        installed.contains("Installed tenon-examples/moderator 0.1.0 (pending_config)"),
        "{installed}"
    );
    assert!(
        installed.contains("tenon config set tenon-examples/moderator blocked_words VALUE"),
        "{installed}"
    );
    // Installing it again changes nothing, and says so.
    assert!(t.ok(&["install", &moderator]).contains(
        "tenon-examples/moderator 0.1.0 is already installed (the same version, manifest and module): nothing to do"
    ));

    let info = t.json(&["info", MODERATOR]);
    assert_eq!(info["state"], "pending_config");
    assert_eq!(info["missing_config"], json!(["blocked_words"]));
    assert_eq!(info["versions"][0]["version"], "0.1.0");
    assert_eq!(info["versions"][0]["current"], true);
    assert_eq!(
        info["hooks"],
        json!([{"name": "response.pre_deliver", "priority": "high", "fail_policy": "closed", "timeout": null, "retries": 0}])
    );
    assert_eq!(info["config"][0]["key"], "blocked_words");
    assert_eq!(info["config"][0]["required"], true);
    assert_eq!(info["config"][0]["missing"], true);
    // Failing closed is power over the host's hook: a permission.
    assert_eq!(
        info["permissions"],
        json!({
            "declared": ["hooks: fail closed on response.pre_deliver"],
            "granted": [],
            "missing": ["hooks: fail closed on response.pre_deliver"]
        })
    );
    // The CLI's built-in host offers no services, and says so.
    assert_eq!(
        info["services"],
        json!({"callable": [], "not_callable": [], "host_permissions": []})
    );
    let text = t.ok(&["info", MODERATOR]);
    assert!(
        text.contains("state:        pending_config (not enabled)"),
        "{text}"
    );
    assert!(
        text.contains("services:     this host offers no services; no host permission in force"),
        "{text}"
    );
    assert!(
        text.contains("required config missing: set blocked_words"),
        "{text}"
    );

    // Refused: enabling without the required config.
    t.fails(
        &["enable", MODERATOR],
        1,
        "cannot enable tenon-examples/moderator: required config missing: blocked_words",
    );
    // Refused: a value of the wrong type.
    t.fails(
        &["config", "set", MODERATOR, "blocked_words", "secret"],
        1,
        "invalid config for tenon-examples/moderator",
    );
    // Refused: a key the plugin does not declare, with a suggestion.
    t.fails(
        &["config", "set", MODERATOR, "blocked_word", "[]"],
        1,
        "did you mean `blocked_words`",
    );

    let set = t.json(&["config", "set", MODERATOR, "blocked_words", r#"["secret"]"#]);
    assert_eq!(
        set,
        json!({"id": MODERATOR, "state": "resolved", "values": {"blocked_words": ["secret"]}, "missing": [], "delivered": false})
    );
    let text = t.ok(&["config", "set", MODERATOR, "reason", "no {word} here"]);
    assert!(
        text.contains("Set reason = no {word} here on tenon-examples/moderator (resolved)"),
        "{text}"
    );
    let got = t.json(&["config", "get", MODERATOR]);
    assert_eq!(
        got,
        json!({
            "id": MODERATOR,
            "values": {"blocked_words": ["secret"], "reason": "no {word} here"},
            "defaults": {},
            "missing": []
        })
    );
    assert_eq!(
        t.json(&["config", "get", MODERATOR, "blocked_words"]),
        json!({"id": MODERATOR, "key": "blocked_words", "value": ["secret"], "source": "set", "secret": false})
    );
    t.json(&["config", "unset", MODERATOR, "reason"]);
    assert_eq!(
        t.json(&["config", "get", MODERATOR, "reason"])["source"],
        "default"
    );
    let table = t.ok(&["config", "get", MODERATOR]);
    assert!(table.starts_with("KEY            VALUE"), "{table}");
    assert!(table.contains("blocked_words  [\"secret\"]"), "{table}");

    t.ok(&["grant", MODERATOR, "hooks"]);
    let enabled = t.json(&["enable", MODERATOR]);
    assert_eq!(
        enabled,
        json!({"id": MODERATOR, "version": "0.1.0", "state": "active", "enabled": true, "already_enabled": false})
    );
    // Refused transitions name the state.
    t.fails(
        &["uninstall", MODERATOR],
        1,
        "tenon-examples/moderator: cannot uninstall a plugin that is active (disable it first: `tenon disable tenon-examples/moderator`)",
    );
    t.fails(
        &["config", "unset", MODERATOR, "blocked_words"],
        1,
        "cannot leave tenon-examples/moderator without blocked_words",
    );

    let hooks = t.json(&["hooks", "list"]);
    let pre_deliver = hooks["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "response.pre_deliver")
        .expect("the hook is listed");
    assert_eq!(pre_deliver["can_block"], true);
    assert_eq!(pre_deliver["mutable"], json!(["/content"]));
    assert_eq!(
        pre_deliver["handlers"],
        json!([{"plugin": MODERATOR, "priority": "high", "fail_policy": "closed", "timeout_ms": 1500, "retries": 0}])
    );
    assert_eq!(hooks["hooks"].as_array().unwrap().len(), 9);

    let blocked = t.json(&[
        "hooks",
        "dispatch",
        "response.pre_deliver",
        "--data",
        r#"{"content": "the secret plan"}"#,
    ]);
    assert_eq!(blocked["proceeded"], false);
    assert_eq!(blocked["blocked"]["plugin"], MODERATOR);
    assert_eq!(
        blocked["blocked"]["reason"],
        "the response contains the blocked word `secret`"
    );
    assert_eq!(blocked["data"], json!({"content": "the secret plan"}));
    assert_eq!(blocked["receipts"][0]["status"], "blocked");
    assert_eq!(blocked["receipts"][0]["plugin"], MODERATOR);
    let text = t.ok(&[
        "hooks",
        "dispatch",
        "response.pre_deliver",
        "--data",
        r#"{"content": "all good"}"#,
    ]);
    assert!(text.starts_with("proceeded\n"), "{text}");
    assert!(text.contains("PLUGIN                    STATUS"), "{text}");
    assert!(text.contains("tenon-examples/moderator  ok"), "{text}");

    let disabled = t.json(&["disable", MODERATOR]);
    assert_eq!(disabled, json!({"disabled": [MODERATOR]}));
    let after = t.ok(&[
        "hooks",
        "dispatch",
        "response.pre_deliver",
        "--data",
        r#"{"content": "the secret plan"}"#,
    ]);
    assert!(after.contains("no handlers"), "{after}");

    // The log holds every transition and one receipt per handler run.
    let events = t.json(&["events", MODERATOR, "--limit", "100"]);
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "hook").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(kinds.first(), Some(&"installed"));
    let to: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "state_changed")
        .map(|e| e["detail"]["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        to,
        [
            "pending_config",
            "resolved",
            "loading",
            "loaded",
            "activating",
            "active",
            "deactivating",
            "disabled"
        ]
    );

    let removed = t.json(&["uninstall", MODERATOR, "--purge-data"]);
    assert_eq!(removed["id"], MODERATOR);
    assert_eq!(removed["purged"], true);
    assert_eq!(removed["deleted"]["versions"], 1);
    assert_eq!(removed["deleted"]["config_keys"], 1);
    assert_eq!(t.json(&["list"]), json!({"plugins": []}));
    assert!(t.ok(&["list"]).starts_with("no plugins installed"));
    t.fails(
        &["info", MODERATOR],
        1,
        "tenon-examples/moderator is not installed",
    );
}

#[test]
fn secrets_grants_calls_statistics_and_doctor() {
    let t = Tenon::new();
    t.ok(&["install", &example_arg("notifier")]);
    t.ok(&["install", &example_arg("counter")]);
    assert_eq!(
        states(&t),
        [
            (COUNTER.to_owned(), "resolved".to_owned()),
            (NOTIFIER.to_owned(), "pending_config".to_owned())
        ]
    );

    let table = t.ok(&["list"]);
    assert!(table.starts_with("ID  "), "{table}");
    assert!(
        table.contains(
            "tenon-examples/counter   0.1.0    resolved        no       component  internal · sandboxed  Hook Counter"
        ),
        "{table}"
    );

    // A secret is never echoed, and never stored in the clear.
    let secret = "hunter2-do-not-print";
    let set = t.run(&["config", "set", NOTIFIER, "token", secret]);
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert!(
        set.stdout.contains("Set token (secret, not shown)"),
        "{}",
        set.stdout
    );
    assert!(!set.stdout.contains(secret) && !set.stderr.contains(secret));
    let json_set = t.run(&[
        "--format", "json", "config", "set", NOTIFIER, "token", secret,
    ]);
    assert!(!json_set.stdout.contains(secret));
    assert_eq!(json_set.json()["values"]["token"], "********");
    assert_eq!(
        t.json(&["config", "get", NOTIFIER, "token"]),
        json!({"id": NOTIFIER, "key": "token", "value": "********", "source": "set", "secret": true})
    );
    assert!(!t.ok(&["config", "get", NOTIFIER]).contains(secret));
    let key_file = t.dir.path().join("secret.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is private");
    }
    for file in ["registry.db", "registry.db-wal"] {
        if let Ok(bytes) = std::fs::read(t.dir.path().join(file)) {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{file} holds the secret in the clear"
            );
        }
    }
    t.ok(&[
        "config",
        "set",
        NOTIFIER,
        "webhook_url",
        "http://127.0.0.1:9/hook",
    ]);
    let mut bad_key = t.command(&["list"]);
    bad_key.env("TENON_SECRET_KEY", "not-a-key");
    let output = bad_key.output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("TENON_SECRET_KEY is not usable: invalid secret key `<9 characters>`")
    );

    // Permissions: declared, not granted, refused, then granted.
    let info = t.json(&["info", COUNTER]);
    assert_eq!(
        info["permissions"],
        json!({
            "declared": ["kv (quota 64KiB)", "events: subscribe notifier.*"],
            "granted": [],
            "missing": ["kv (quota 64KiB)", "events: subscribe notifier.*"]
        })
    );
    t.fails(
        &["enable", COUNTER],
        1,
        "cannot enable tenon-examples/counter 0.1.0: the operator has not granted kv (quota 64KiB), events: subscribe notifier.*",
    );
    let granted = t.json(&["grant", COUNTER, "--all"]);
    assert_eq!(granted["id"], COUNTER);
    assert_eq!(granted["version"], "0.1.0");
    assert_eq!(
        granted["permissions"],
        json!(["kv (quota 64KiB)", "events: subscribe notifier.*"])
    );
    assert_eq!(granted["granted_by"], "operator");
    t.fails(
        &["grant", COUNTER, "--all", "--plugin-version", "9.9.9"],
        1,
        "version 9.9.9 is not installed",
    );
    assert_eq!(
        t.json(&["info", COUNTER])["permissions"]["granted"],
        json!(["kv (quota 64KiB)", "events: subscribe notifier.*"])
    );
    assert!(
        t.ok(&["enable", COUNTER])
            .contains("Enabled tenon-examples/counter 0.1.0 (active)")
    );

    // The counter counts hooks in KV; `call` reads the counts back.
    for _ in 0..2 {
        t.json(&[
            "hooks",
            "dispatch",
            "tool.post_exec",
            "--data",
            r#"{"result": {"output": "x"}}"#,
        ]);
    }
    t.json(&["hooks", "dispatch", "model.pre_call", "--data", "{}"]);
    let counts = t.json(&["call", COUNTER, "count"]);
    assert_eq!(counts["plugin"], COUNTER);
    assert_eq!(counts["encoding"], "json");
    assert_eq!(
        counts["output"],
        json!({"tool.post_exec": 2, "model.pre_call": 1})
    );
    assert_eq!(
        t.json(&["call", COUNTER, "get", "--input", "tool.post_exec"])["output"],
        2
    );
    assert_eq!(
        t.ok(&["call", COUNTER, "get", "--input", "model.pre_call"])
            .trim(),
        "1"
    );
    t.fails(&["call", COUNTER, "nope"], 1, "tenon-examples/counter");
    t.fails(
        &["call", NOTIFIER, "anything"],
        1,
        "tenon-examples/notifier has no function `anything`; it declares no functions",
    );

    let stats = t.json(&["stats"]);
    assert_eq!(stats["receipts"], 3);
    assert_eq!(stats["plugins"][0]["plugin"], COUNTER);
    assert_eq!(stats["plugins"][0]["execution"]["count"], 3);
    assert_eq!(stats["plugins"][0]["execution"]["success_count"], 3);
    assert_eq!(stats["plugins"][0]["by_hook"]["tool.post_exec"]["count"], 2);
    assert_eq!(
        stats["plugins"][0]["health"]["status"], "unknown",
        "three receipts are too few to judge"
    );
    let text = t.ok(&["stats", COUNTER]);
    assert!(text.contains("from 3 stored receipts"), "{text}");
    assert!(text.contains("tool.post_exec"), "{text}");
    let empty = t.json(&["stats", NOTIFIER]);
    assert_eq!(empty["plugins"][0]["plugin"], NOTIFIER);
    assert_eq!(empty["plugins"][0]["execution"]["count"], 0);

    let hooks = t.json(&["events", "--kind", "hook", "--limit", "2"]);
    let events = hooks["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1]["detail"]["hook"], "model.pre_call",
        "oldest first, newest last"
    );
    for event in events {
        assert_eq!(event["plugin"], COUNTER);
        assert!(event["cursor"].as_str().unwrap().starts_with("ev_"));
        assert!(event["at"].as_str().unwrap().ends_with('Z'));
    }
    let text = t.ok(&["events", "--limit", "3"]);
    assert!(text.starts_with("AT "), "{text}");
    assert!(text.contains("model.pre_call ok in"), "{text}");
    t.fails(
        &["events", "--kind", "Bad Kind"],
        2,
        "invalid value 'Bad Kind'",
    );

    // Doctor: the notifier needs config; exit 1 until then.
    let run = t.run(&["--format", "json", "doctor"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["healthy"], false);
    let notifier = report["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == NOTIFIER)
        .unwrap();
    assert_eq!(notifier["missing_config"], json!([]), "webhook_url was set");
    assert!(
        notifier["not_granted"].as_array().unwrap().len() > 1,
        "{notifier}"
    );
    let human = t.run(&["doctor"]);
    assert_eq!(human.code, 1);
    assert!(
        human.stdout.contains("permissions not granted"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("1 plugin needs attention"),
        "{}",
        human.stdout
    );
    t.ok(&["grant", NOTIFIER, "--all"]);
    let healthy = t.json(&["doctor"]);
    assert_eq!(healthy["healthy"], true, "{healthy}");
    assert_eq!(healthy["registry"]["backend"], "sqlite");
    assert!(
        t.ok(&["doctor"])
            .contains("healthy: nothing needs attention")
    );

    // Another key cannot read the secret: starting the plugin says so.
    let mut wrong = t.command(&["enable", NOTIFIER]);
    wrong.env("TENON_SECRET_KEY", "cd".repeat(32));
    let output = wrong.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("was encrypted with key"), "{stderr}");
    t.ok(&["enable", NOTIFIER]);
}

#[test]
fn archives_upgrades_and_rollbacks() {
    let t = Tenon::new();
    let work = tempfile::tempdir().unwrap();
    let counter_v2 = copy_example("counter", &work.path().join("counter-v2"), |text| {
        with_version(&text, "0.2.0")
    });

    // A signing key, a signed package, and its installation.
    let key = work.path().join("author.key");
    let keygen = t.json(&["keygen", &key.display().to_string()]);
    assert_eq!(keygen["key_id"].as_str().unwrap().len(), 16);
    t.fails(&["keygen", &key.display().to_string()], 2, "cannot create");
    let archive = work.path().join("counter.tenon");
    let packed = t.json(&[
        "pack",
        &example_arg("counter"),
        "--out",
        &archive.display().to_string(),
        "--sign",
        &key.display().to_string(),
    ]);
    assert_eq!(packed["id"], COUNTER);
    assert_eq!(packed["version"], "0.1.0");
    assert_eq!(packed["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(packed["built"], false);
    assert_eq!(packed["signature"]["key_id"], keygen["key_id"]);
    assert!(
        packed["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "module")
    );
    assert!(archive.is_file());
    assert!(work.path().join("counter.tenon.sig").is_file());
    let text = t.ok(&[
        "pack",
        &example_arg("counter"),
        "--out",
        &archive.display().to_string(),
    ]);
    assert!(
        text.contains(&format!("sha256 {}", packed["sha256"].as_str().unwrap())),
        "{text}"
    );
    assert!(
        !work.path().join("counter.tenon.sig").exists(),
        "a stale signature is removed"
    );

    let installed = t.json(&["install", &archive.display().to_string()]);
    assert_eq!(installed["id"], COUNTER);
    assert_eq!(installed["state"], "resolved");
    assert_eq!(installed["granted"], false);
    assert_eq!(
        installed["permissions"],
        json!(["kv (quota 64KiB)", "events: subscribe notifier.*"])
    );
    assert_eq!(t.json(&["info", COUNTER])["source"]["kind"], "archive");
    t.ok(&["grant", COUNTER, "--all"]);
    t.ok(&["enable", COUNTER]);

    // Upgrade keeps the previous version; rollback flips back to it.
    let mut upgraded = t.json(&["upgrade", &counter_v2.display().to_string()]);
    let trust = upgraded.as_object_mut().unwrap().remove("trust").unwrap();
    assert_eq!(trust["checked"], "directory");
    assert_eq!(
        upgraded,
        // The CLI records the switch; running hosts swap their code.
        json!({"id": COUNTER, "from": "0.1.0", "to": "0.2.0", "state": "active", "swapped": false, "state_carried": false})
    );
    let versions: Vec<(String, bool)> = t.json(&["info", COUNTER])["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap().to_owned(),
                v["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [("0.1.0".to_owned(), false), ("0.2.0".to_owned(), true)]
    );
    t.fails(
        &["upgrade", &counter_v2.display().to_string()],
        1,
        "version 0.2.0 is already current",
    );
    t.fails(
        &["rollback", COUNTER, "--to", "9.9.9"],
        1,
        "version 9.9.9 is not installed",
    );
    let text = t.ok(&["rollback", COUNTER]);
    assert!(
        text.contains("Rolled back tenon-examples/counter from 0.2.0 to 0.1.0 (active)"),
        "{text}"
    );
    let forward = t.json(&["rollback", COUNTER, "--to", "0.2.0"]);
    assert_eq!(forward["to"], "0.2.0");
    t.fails(
        &["rollback", COUNTER, "--to", "0.2.0"],
        1,
        "version 0.2.0 is already current",
    );

    // Corrupt and missing archives, bad manifests.
    let corrupt = work.path().join("corrupt.tenon");
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&corrupt, &bytes).unwrap();
    t.fails(&["install", &corrupt.display().to_string()], 1, "package");
    std::fs::write(&corrupt, b"not an archive at all").unwrap();
    t.fails(&["install", &corrupt.display().to_string()], 1, "package");
    t.fails(
        &[
            "install",
            &work.path().join("missing.tenon").display().to_string(),
        ],
        2,
        "cannot read",
    );
    let bad = copy_example("redactor", &work.path().join("bad"), |text| {
        text.replace("version = \"0.1.0\"", "version = \"one\"")
    });
    t.fails(
        &["install", &bad.display().to_string()],
        1,
        "invalid manifest",
    );
    t.fails(&["pack", &bad.display().to_string()], 1, "");
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    t.fails(&["install", &empty.display().to_string()], 2, "no manifest");
}

#[test]
fn dependents_cascade_and_custom_hooks() {
    let t = Tenon::new();
    let work = tempfile::tempdir().unwrap();
    let hooks = work.path().join("hooks.json");
    std::fs::write(
        &hooks,
        r#"[{"name": "echo.patch", "mutable": ["/echoed"], "can_block": false, "timeout_ms": 1000},
            {"name": "echo.noop"}]"#,
    )
    .unwrap();
    let hooks_arg = hooks.display().to_string();
    // A plugin that depends on the echo plugin.
    let dependent = copy_example("counter", &work.path().join("dependent"), |text| {
        text.replace("tenon-examples/counter", "tenon-examples/dependent")
            .replace(
                "[activation]",
                "[dependencies]\n\"tenon-examples/echo\" = \"^0.1\"\n\n[activation]",
            )
    });
    t.fails(
        &[
            "--hooks",
            &hooks_arg,
            "install",
            &dependent.display().to_string(),
        ],
        1,
        "tenon-examples/echo",
    );
    t.ok(&["--hooks", &hooks_arg, "install", &example_arg("echo")]);
    t.ok(&[
        "--hooks",
        &hooks_arg,
        "install",
        &dependent.display().to_string(),
    ]);
    t.ok(&["grant", "tenon-examples/dependent", "--all"]);
    // Enabling the dependent enables its dependency first.
    t.ok(&["--hooks", &hooks_arg, "enable", "tenon-examples/dependent"]);
    assert_eq!(
        states(&t),
        [
            ("tenon-examples/dependent".to_owned(), "active".to_owned()),
            ("tenon-examples/echo".to_owned(), "active".to_owned())
        ]
    );

    // The host's own hooks come from --hooks.
    let listed = t.json(&["--hooks", &hooks_arg, "hooks", "list"]);
    assert_eq!(
        listed["hooks"][0],
        json!({"name": "echo.patch", "mutable": ["/echoed"], "can_block": false, "timeout_ms": 1000,
               "handlers": [{"plugin": "tenon-examples/echo", "priority": "normal", "fail_policy": "open", "timeout_ms": 1000, "retries": 0}]})
    );
    assert_eq!(listed["hooks"][1]["timeout_ms"], 1500);
    let patched = t.json(&[
        "--hooks",
        &hooks_arg,
        "hooks",
        "dispatch",
        "echo.patch",
        "--data",
        r#"{"n": 1}"#,
    ]);
    assert_eq!(patched["data"], json!({"n": 1, "echoed": true}));
    assert_eq!(patched["receipts"][0]["changed_fields"], json!(["/echoed"]));
    let stderr = t.fails(
        &["hooks", "dispatch", "echo.patch", "--data", "{}"],
        1,
        "the host declares no hook `echo.patch`",
    );
    assert!(stderr.contains("--hooks FILE"), "{stderr}");
    assert!(stderr.contains("response.pre_deliver"), "{stderr}");
    t.fails(
        &[
            "--hooks",
            &hooks_arg,
            "hooks",
            "dispatch",
            "echo.patch",
            "--data",
            "{oops",
        ],
        2,
        "--data is not valid JSON",
    );
    let echoed = t.json(&[
        "--hooks",
        &hooks_arg,
        "call",
        "tenon-examples/echo",
        "echo",
        "--input",
        "plain words",
    ]);
    assert_eq!(echoed["output"], "plain words");
    assert_eq!(echoed["encoding"], "utf8");

    // Bad hook files are usage errors.
    let broken = work.path().join("broken.json");
    std::fs::write(&broken, r#"[{"name": "x", "mutable": "/not-a-list"}]"#).unwrap();
    t.fails(
        &["--hooks", &broken.display().to_string(), "hooks", "list"],
        2,
        "invalid hooks file",
    );
    t.fails(
        &[
            "--hooks",
            &work.path().join("none.json").display().to_string(),
            "hooks",
            "list",
        ],
        2,
        "cannot read the hooks file",
    );

    // Disabling a plugin others need is refused unless cascaded.
    t.fails(
        &["disable", "tenon-examples/echo"],
        1,
        "cannot disable tenon-examples/echo: tenon-examples/dependent depend on it",
    );
    let cascaded = t.json(&["disable", "tenon-examples/echo", "--cascade"]);
    assert_eq!(
        cascaded,
        json!({"disabled": ["tenon-examples/dependent", "tenon-examples/echo"]})
    );
}

#[test]
fn usage_and_environment_errors() {
    let t = Tenon::new();
    // An unreachable registry fails fast with exit 2.
    let started = Instant::now();
    let run = bare_command()
        .args(["--registry", "postgres://tenon@127.0.0.1:1/x", "list"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.starts_with("error: ")
            && stderr.contains("PostgreSQL registry at postgres://tenon@127.0.0.1:1/x"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let run = bare_command()
        .args(["--registry", "mysql://db/x", "list"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("`mysql` is not a registry backend"),
        "{run:?}"
    );
    t.fails(&["--tenant", "Not A Tenant", "list"], 2, "tenant");
    t.fails(
        &["--registry-schema", "s", "list"],
        2,
        "PostgreSQL registries only",
    );
    // Only install creates the registry and its key; looking creates nothing.
    t.fails(&["list"], 2, "no registry at");
    assert!(!t.registry().exists());
    assert!(!t.dir.path().join("secret.key").exists());
    t.ok(&["install", &example_arg("echo")]);
    assert!(t.registry().is_file());
    assert!(t.dir.path().join("secret.key").is_file());
    t.fails(&["info", "moderator"], 1, "moderator is not installed");
    t.fails(
        &["enable", "acme/nothing"],
        1,
        "acme/nothing is not installed",
    );
    t.fails(
        &["config", "get", "acme/nothing"],
        1,
        "acme/nothing is not installed",
    );
    // clap's usage errors.
    let run = t.run(&["--format", "yaml", "list"]);
    assert_eq!(run.code, 2);
    let run = t.run(&["frobnicate"]);
    assert_eq!(run.code, 2);
    let run = t.run(&["install"]);
    assert_eq!(run.code, 2);
    // Every command explains itself.
    for command in [
        "new",
        "build",
        "pack",
        "keygen",
        "install",
        "list",
        "info",
        "config",
        "grant",
        "revoke",
        "enable",
        "disable",
        "upgrade",
        "rollback",
        "uninstall",
        "hooks",
        "call",
        "events",
        "stats",
        "doctor",
        "manifest",
        "resolve",
    ] {
        let help = t.run(&[command, "--help"]);
        assert_eq!(help.code, 0, "{command} --help");
        assert!(
            help.stdout.contains("Usage: tenon"),
            "{command}: {}",
            help.stdout
        );
    }
}

#[test]
fn events_follow_streams_one_object_per_line() {
    let t = Tenon::new();
    t.ok(&["install", &example_arg("moderator")]);
    let mut child = t
        .command(&["--format", "json", "events", "--follow", "--limit", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["kind"], "state_changed", "the newest event first");
    t.ok(&["config", "set", MODERATOR, "blocked_words", "[\"x\"]"]);
    let mut kinds = Vec::new();
    for line in lines.by_ref() {
        let event: Value = serde_json::from_str(&line.unwrap()).expect("one JSON object per line");
        kinds.push(event["kind"].as_str().unwrap().to_owned());
        if event["kind"] == "state_changed" {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(kinds, ["config_changed", "state_changed"]);
}

/// A throw-away schema of the test machine's PostgreSQL, dropped on drop.
struct PostgresSchema {
    url: String,
    schema: String,
}

impl PostgresSchema {
    /// `TENON_TEST_POSTGRES_URL` (default the test machine's server) and a
    /// fresh schema name.
    fn new() -> Self {
        let url = std::env::var("TENON_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Self {
            url,
            schema: format!("tenon_cli_{}_{nanos}", std::process::id()),
        }
    }
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            if let Ok(pool) = sqlx::PgPool::connect(&self.url).await {
                let drop = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
                let _ = sqlx::query(&drop).execute(&pool).await;
                pool.close().await;
            }
        });
    }
}

#[test]
fn a_postgres_registry_needs_the_key_for_secrets() {
    let pg = PostgresSchema::new();
    let cwd = tempfile::tempdir().unwrap();
    let tenon = |key: Option<&str>, args: &[&str]| {
        let mut command = bare_command();
        command
            .current_dir(cwd.path())
            .args([
                "--registry",
                &pg.url,
                "--registry-schema",
                &pg.schema,
                "--dev",
            ])
            .args(args);
        if let Some(key) = key {
            command.env("TENON_SECRET_KEY", key);
        }
        let output = command.output().unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, _, stderr) = tenon(None, &["list"]);
    if code != 0 {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "PostgreSQL at {} is unreachable under CI: {stderr}",
            pg.url
        );
        eprintln!(
            "skipping: PostgreSQL at {} is unreachable ({stderr})",
            pg.url
        );
        return;
    }
    let (code, _, stderr) = tenon(None, &["install", &example_arg("notifier")]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = tenon(
        None,
        &[
            "config",
            "set",
            NOTIFIER,
            "webhook_url",
            "http://127.0.0.1:9/",
        ],
    );
    assert_eq!(code, 0, "plain values need no key: {stderr}");
    let (code, _, stderr) = tenon(None, &["config", "set", NOTIFIER, "token", "hunter2"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot set the secret `token` of tenon-examples/notifier: a PostgreSQL registry keeps no key file"), "{stderr}");
    assert!(
        stderr.contains("TENON_SECRET_KEY") && stderr.contains("--secret-key-file"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"));

    let key = "ab".repeat(32);
    let (code, stdout, stderr) =
        tenon(Some(&key), &["config", "set", NOTIFIER, "token", "hunter2"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("hunter2"));
    let (code, stdout, _) = tenon(None, &["config", "get", NOTIFIER, "token"]);
    assert_eq!((code, stdout.trim()), (0, "********"));
    // The same key from a file starts the plugin (it reads the secret).
    let key_file = cwd.path().join("fleet.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let key_arg = key_file.display().to_string();
    let (code, _, stderr) = tenon(None, &["grant", NOTIFIER, "--all"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = tenon(None, &["--secret-key-file", &key_arg, "enable", NOTIFIER]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("(active)"), "{stdout}");
}

#[test]
fn a_plugin_that_cannot_start_is_in_error_until_acknowledged() {
    let t = Tenon::new();
    let work = tempfile::tempdir().unwrap();
    // Built for a plugin API this host does not serve: refused at install.
    t.fails(
        &["install", &example_arg("hostile-future-api")],
        1,
        "it needs plugin API ^3.0 but this host serves 1.0.0",
    );
    // Claiming a served API gets it installed; its code is still refused.
    let lying = copy_example("hostile-future-api", &work.path().join("future"), |text| {
        text.replace("tenon = \"^3.0\"", "tenon = \"^1.0\"")
    });
    t.ok(&["install", &lying.display().to_string()]);
    t.fails(
        &["enable", "tenon-hostile/future-api"],
        1,
        "is built for tenon:plugin@3.0.0; this host supports tenon:plugin@1.0.0",
    );
    let info = t.json(&["info", "tenon-hostile/future-api"]);
    assert_eq!(info["state"], "error");
    assert!(
        info["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("tenon:plugin@3.0.0"),
        "{info}"
    );
    assert!(
        t.ok(&["info", "tenon-hostile/future-api"])
            .contains("last error:   plugin tenon-hostile/future-api is built for")
    );
    let doctor = t.run(&["doctor"]);
    assert_eq!(doctor.code, 1);
    assert!(
        doctor
            .stdout
            .contains("in error; `tenon info tenon-hostile/future-api` shows its last error"),
        "{}",
        doctor.stdout
    );
    assert_eq!(
        t.json(&["disable", "tenon-hostile/future-api"]),
        json!({"disabled": ["tenon-hostile/future-api"]})
    );
    assert_eq!(
        states(&t),
        [("tenon-hostile/future-api".to_owned(), "disabled".to_owned())]
    );
    t.json(&["uninstall", "tenon-hostile/future-api"]);
}

/// `tenon logs` reads back what a plugin logged in another process, by
/// plugin and level, and `--follow` prints lines as they are written.
#[test]
fn logs_are_read_back_and_followed() {
    let t = Tenon::new();
    t.ok(&["install", &example_arg("moderator")]);
    t.ok(&["config", "set", MODERATOR, "blocked_words", "[\"secret\"]"]);
    t.ok(&["enable", MODERATOR]);
    assert_eq!(t.ok(&["logs", MODERATOR]).trim(), "no log lines");
    let mut child = t
        .command(&["--format", "json", "logs", MODERATOR, "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    t.ok(&[
        "hooks",
        "dispatch",
        "response.pre_deliver",
        "--data",
        r#"{"content": "the secret plan", "workItemId": "w-7"}"#,
    ]);
    let followed: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(followed["plugin"], MODERATOR);
    assert_eq!(followed["level"], "info");
    assert_eq!(
        followed["message"],
        "blocked a response for work item `w-7`"
    );

    let all = t.json(&["logs", MODERATOR]);
    assert_eq!(all["dropped"], 0);
    assert_eq!(all["logs"].as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all["logs"][0], followed);
    let text = t.ok(&["logs"]);
    assert!(
        text.contains("tenon-examples/moderator  INFO   blocked a response for work item `w-7`"),
        "{text}"
    );
    assert_eq!(t.ok(&["logs", "--level", "warn"]).trim(), "no log lines");
    let bad = t.run(&["logs", "--level", "loud"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr
            .contains("the levels are trace, debug, info, warn and error"),
        "{}",
        bad.stderr
    );
}

/// `tenon dev DIR` installs a plugin directory (without `--dev`), runs it,
/// and shows each reload: a broken build fails and leaves the old code
/// running, a fixed one is swapped in, a new version is an upgrade.
#[test]
fn dev_reloads_a_plugin_directory_and_survives_a_broken_build() {
    let t = Tenon::strict();
    let work = tempfile::tempdir().unwrap();
    let dir = copy_example("echo", &work.path().join("echo"), |text| text);
    let mut child = t
        .command(&["--format", "json", "dev", dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (send, lines) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if send.send(line).is_err() {
                return;
            }
        }
    });
    let next = || -> Value {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("tenon dev says what happened");
        serde_json::from_str(&line).expect("one JSON object per line")
    };
    // The next line of `event`, skipping reload failures of a file caught
    // half-written.
    let until = |event: &str| -> Value {
        loop {
            let line = next();
            if line["event"] == event {
                return line;
            }
            assert_eq!(line["event"], "reload_failed", "{line}");
        }
    };
    let installed = next();
    assert_eq!(
        installed,
        json!({"event": "installed", "plugin": "tenon-examples/echo", "version": "0.1.0"})
    );
    let watching = next();
    assert_eq!(watching["event"], "watching", "{watching}");

    std::fs::write(dir.join("plugin.wasm"), b"not a module").unwrap();
    let failed = next();
    assert_eq!(failed["event"], "reload_failed", "{failed}");
    assert!(!failed["error"].as_str().unwrap().is_empty(), "{failed}");

    std::fs::copy(example("echo").join("plugin.wasm"), dir.join("plugin.wasm")).unwrap();
    let reloaded = until("reloaded");
    assert_eq!(
        reloaded,
        json!({"event": "reloaded", "plugin": "tenon-examples/echo", "version": "0.1.0", "upgraded": false})
    );

    let manifest = std::fs::read_to_string(dir.join("tenon.toml")).unwrap();
    std::fs::write(dir.join("tenon.toml"), with_version(&manifest, "0.2.0")).unwrap();
    let upgraded = until("reloaded");
    assert_eq!(
        upgraded,
        json!({"event": "reloaded", "plugin": "tenon-examples/echo", "version": "0.2.0", "upgraded": true})
    );
    assert!(child.try_wait().unwrap().is_none(), "still running");
    let _ = child.kill();
    let _ = child.wait();
    let info = t.json(&["info", "tenon-examples/echo"]);
    assert_eq!(info["version"], "0.2.0", "the upgrade is recorded");
}
