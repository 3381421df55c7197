//! The operator's CLI as a new operator meets it: read-only commands create
//! nothing, mistakes are caught before plugins start and get close
//! suggestions only, every refusal names the next command, scripts get
//! JSON errors, values are read by their declared type, install errors
//! are laid out like `manifest validate`, runtime logs are summarised,
//! help separates global options and has examples.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Tenon, bare_command, copy_example, example_arg};

const COUNTER: &str = "tenon-examples/counter";
const MODERATOR: &str = "tenon-examples/moderator";
const NOTIFIER: &str = "tenon-examples/notifier";

/// A mistyped `--registry` makes nothing: every command that only looks
/// (and every one that changes an existing registry) fails with the path,
/// and the directory, the database and the key are not created.
#[test]
fn read_only_commands_create_no_registry() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("nonexistent").join("dir");
    let registry = dir.join("registry.db");
    let commands: &[&[&str]] = &[
        &["list"],
        &["info", MODERATOR],
        &["config", "get", MODERATOR],
        &["hooks", "list"],
        &["events"],
        &["stats"],
        &["doctor"],
        &["enable", MODERATOR],
        &["call", COUNTER, "count"],
    ];
    for args in commands {
        let run = bare_command()
            .arg("--registry")
            .arg(&registry)
            .args(*args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("no registry at {}", registry.display()))
                && stderr.contains("`tenon install PATH` creates one"),
            "{args:?}: {stderr}"
        );
        assert!(
            !work.path().join("nonexistent").exists(),
            "{args:?} created a directory"
        );
    }
    let run = bare_command()
        .arg("--registry")
        .arg(&registry)
        .args(["--format", "json", "list"])
        .output()
        .unwrap();
    let error: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(error["error"]["code"], "no_registry");
    assert_eq!(error["error"]["exit"], 2);
}

/// Looking at an existing registry creates no key for secrets, and an
/// unknown tenant is refused with the known ones (the close one first).
#[test]
fn reading_creates_no_key_and_no_tenant() {
    let t = Tenon::new();
    t.ok(&["--tenant", "acme", "install", &example_arg("counter")]);
    let key = t.dir.path().join("secret.key");
    std::fs::remove_file(&key).unwrap();
    for args in [
        &["--tenant", "acme", "list"][..],
        &["--tenant", "acme", "info", COUNTER],
        &["--tenant", "acme", "events"],
    ] {
        t.ok(args);
        assert!(!key.exists(), "{args:?} created the key");
    }
    let cases: &[(&str, &str)] = &[
        (
            "acm",
            "knows no tenant `acm` (did you mean `acme`?); its tenants: acme",
        ),
        ("zzz", "knows no tenant `zzz`; its tenants: acme"),
    ];
    for (tenant, message) in cases {
        t.fails(&["--tenant", tenant, "list"], 1, message);
        let run = t.run(&["--format", "json", "--tenant", tenant, "list"]);
        assert_eq!(run.json()["error"]["code"], "unknown_tenant");
    }
    assert!(
        t.json(&["--tenant", "acme", "list"])["plugins"][0]["id"] == COUNTER,
        "the known tenant is untouched"
    );
}

/// Under `--format json` every failure is one JSON object on stdout with
/// a stable code and the exit status, whatever failed: clap, the CLI, the
/// engine.
#[test]
fn json_errors_have_a_stable_code() {
    let t = Tenon::new();
    t.ok(&["install", &example_arg("moderator")]);
    t.ok(&["install", &example_arg("counter")]);
    let cases: &[(&[&str], &str, i32)] = &[
        (&["info", "tenon-examples/nope"], "not_installed", 1),
        (&["enable", MODERATOR], "missing_config", 1),
        (&["call", COUNTER, "count"], "not_running", 1),
        (&["hooks", "dispatch", "tool.pre_exce"], "unknown_hook", 1),
        (&["grant", COUNTER, "network"], "unknown_permission", 1),
        (&["list", "--no-such-flag"], "usage", 2),
        (&["instal"], "usage", 2),
        (&["events", "--kind", "hok"], "usage", 2),
        (
            &["hooks", "dispatch", "tool.pre_exec", "--data", "{oops"],
            "usage",
            2,
        ),
    ];
    for (args, code, exit) in cases {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        let run = t.run(&all);
        assert_eq!(run.code, *exit, "{args:?}: {}{}", run.stdout, run.stderr);
        let error = &run.json()["error"];
        assert_eq!(error["code"], *code, "{args:?}: {error}");
        assert_eq!(error["exit"], *exit, "{args:?}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{args:?}: {error}"
        );
    }
}

/// Each refusal says what to run next; suggestions are offered only when
/// close; an id is not printed twice where the message names it once.
#[test]
fn refusals_name_the_next_command() {
    let t = Tenon::new();
    t.ok(&["install", &example_arg("moderator")]);
    t.ok(&["install", &example_arg("counter")]);
    t.ok(&["grant", COUNTER, "--all"]);
    t.ok(&["enable", COUNTER]);
    let cases: &[(&[&str], &str)] = &[
        (
            &["enable", MODERATOR],
            "required config missing: blocked_words; set it with `tenon config set tenon-examples/moderator blocked_words VALUE`",
        ),
        (
            &["uninstall", COUNTER],
            "cannot uninstall a plugin that is active (disable it first: `tenon disable tenon-examples/counter`)",
        ),
        (
            &["call", MODERATOR, "anything"],
            "tenon-examples/moderator has no function `anything`; it declares no functions (`tenon info tenon-examples/moderator`)",
        ),
        (
            &["call", COUNTER, "cout"],
            "tenon-examples/counter has no function `cout` (did you mean `count`?); its functions: count, get, tally, reset",
        ),
        (
            &["hooks", "dispatch", "tool.pre_exce"],
            "the host declares no hook `tool.pre_exce` (did you mean `tool.pre_exec`?)",
        ),
        (
            &["info", "tenon-examples/moderater"],
            "tenon-examples/moderater is not installed (did you mean tenon-examples/moderator?)",
        ),
        (
            &["info", "moderator"],
            "(did you mean tenon-examples/moderator?)",
        ),
    ];
    for (args, message) in cases {
        let stderr = t.fails(args, 1, message);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line\n{stderr}");
    }
    // Far-off names get no suggestion.
    let far = t.fails(&["info", "tenon-examples/nope"], 1, "is not installed");
    assert!(!far.contains("did you mean"), "{far}");
    let mistyped = t.run(&["instal"]);
    assert_eq!(mistyped.code, 2);
    assert!(
        mistyped
            .stderr
            .contains("some similar subcommands exist: 'install', 'uninstall'")
            && !mistyped.stderr.contains("'list'"),
        "{}",
        mistyped.stderr
    );
    // An uninstall that kept the data says so when the plugin is asked for.
    t.ok(&["disable", COUNTER]);
    t.ok(&["uninstall", COUNTER]);
    t.fails(
        &["info", COUNTER],
        1,
        "tenon-examples/counter is not installed (it was uninstalled and its config, KV data, grants and events were kept: `tenon install PATH` installs it again with them)",
    );
    t.ok(&["uninstall", MODERATOR, "--purge-data"]);
    let purged = t.fails(&["info", MODERATOR], 1, "is not installed");
    assert!(!purged.contains("kept"), "{purged}");
}

/// The counter installed, granted and enabled, and a hooks file (its path
/// returned) declaring none of its hooks.
fn counter_on_a_host_without_its_hooks() -> (Tenon, String) {
    let t = Tenon::new();
    t.ok(&["install", &example_arg("counter")]);
    t.ok(&["grant", COUNTER, "--all"]);
    t.ok(&["enable", COUNTER]);
    let hooks = t.dir.path().join("hooks.json");
    std::fs::write(&hooks, r#"[{"name": "only.this"}]"#).unwrap();
    let hooks = hooks.display().to_string();
    (t, hooks)
}

/// Mistakes are refused before any plugin starts: nothing but the error is
/// printed (no start-up warnings), and quickly.
#[test]
fn mistakes_are_caught_before_plugins_start() {
    // A host without the counter's hooks: starting it would warn.
    let (t, hooks) = counter_on_a_host_without_its_hooks();
    let started = t.run(&["--hooks", &hooks, "hooks", "list"]);
    assert!(started.stderr.contains("warning: "), "{}", started.stderr);
    let cases: &[&[&str]] = &[
        &["call", COUNTER, "cout"],
        &["call", "tenon-examples/cuonter", "count"],
        &["hooks", "dispatch", "only.tht"],
    ];
    for args in cases {
        let mut all = vec!["--hooks", hooks.as_str()];
        all.extend_from_slice(args);
        let run = t.run(&all);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with("error: ") && run.stderr.lines().count() == 1,
            "{args:?}: only the error\n{}",
            run.stderr
        );
    }
}

/// `tenon call` names a mistyped function first, whatever state the
/// plugin is in (enabling it would not make that call work); a declared
/// function of a plugin that is not running is refused naming `tenon
/// enable`.
#[test]
fn call_names_a_mistyped_function_before_a_stopped_plugin() {
    let t = Tenon::new();
    t.ok(&["install", &example_arg("counter")]);
    let mistyped = "tenon-examples/counter has no function `cout` (did you mean `count`?); its functions: count, get, tally, reset";
    // Each step, then the state `call … count` finds (None: it runs).
    let steps: &[(&[&str], Option<&str>)] = &[
        (&[], Some("resolved")),
        (&["grant", COUNTER, "--all"], Some("resolved")),
        (&["enable", COUNTER], None),
        (&["disable", COUNTER], Some("disabled")),
    ];
    for (step, state) in steps {
        if !step.is_empty() {
            t.ok(step);
        }
        let stderr = t.fails(&["call", COUNTER, "cout"], 1, mistyped);
        assert_eq!(stderr.lines().count(), 1, "{step:?}: {stderr}");
        match state {
            Some(state) => {
                t.fails(
                    &["call", COUNTER, "count"],
                    1,
                    &format!(
                        "tenon-examples/counter is not running (it is {state}); start it with `tenon enable tenon-examples/counter`"
                    ),
                );
            }
            None => {
                t.ok(&["call", COUNTER, "count"]);
            }
        }
    }
}

/// A plugin handling hooks the host does not declare is warned about once
/// per hook, each warning naming its hook.
#[test]
fn hook_warnings_name_the_hook() {
    let (t, hooks) = counter_on_a_host_without_its_hooks();
    let run = t.run(&["--hooks", &hooks, "hooks", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let counter_hooks = [
        "work_item.pre_create",
        "work_item.post_create",
        "run.pre_prompt",
        "model.pre_call",
        "model.post_call",
        "tool.pre_exec",
        "tool.post_exec",
        "response.pre_deliver",
        "response.post_deliver",
    ];
    for hook in counter_hooks {
        let line = format!(
            "warning: tenon-examples/counter: the plugin handles hook `{hook}`, which this host does not declare; ignored"
        );
        assert_eq!(
            run.stderr.lines().filter(|l| *l == line).count(),
            1,
            "{hook}:\n{}",
            run.stderr
        );
    }
    assert_eq!(
        run.stderr.lines().count(),
        counter_hooks.len(),
        "{}",
        run.stderr
    );
}

/// Every finding of `tenon doctor` says what to do next, naming the
/// command: one plugin waiting for config, one for grants, one in error,
/// one the crash guard disabled.
#[test]
fn doctor_findings_name_the_next_command() {
    const PANICKER: &str = "tenon-hostile/panicker";
    const FUTURE: &str = "tenon-hostile/future-api";
    let t = Tenon::new();
    let work = tempfile::tempdir().unwrap();
    t.ok(&["install", &example_arg("moderator")]);
    t.ok(&["install", &example_arg("counter")]);
    let future = copy_example("hostile-future-api", &work.path().join("future"), |text| {
        text.replace("tenon = \"^3.0\"", "tenon = \"^1.0\"")
    });
    t.ok(&["install", &future.display().to_string()]);
    t.fails(&["enable", FUTURE], 1, "is built for tenon:plugin@3.0.0");
    t.ok(&["install", &example_arg("hostile-panicker")]);
    t.ok(&["enable", PANICKER]);
    for _ in 0..5 {
        t.ok(&[
            "hooks",
            "dispatch",
            "response.pre_deliver",
            "--data",
            r#"{"content": "x"}"#,
        ]);
    }
    let cases: &[(&str, &str)] = &[
        (
            MODERATOR,
            "required config missing: blocked_words; set it with `tenon config set tenon-examples/moderator blocked_words VALUE`",
        ),
        (
            COUNTER,
            "; grant them with `tenon grant tenon-examples/counter` (or `tenon grant tenon-examples/counter --all`)",
        ),
        (
            FUTURE,
            "in error; `tenon info tenon-hostile/future-api` shows its last error: fix the cause, then `tenon disable tenon-hostile/future-api` and `tenon enable tenon-hostile/future-api`",
        ),
        (
            PANICKER,
            "; fix the cause, then `tenon enable tenon-hostile/panicker`",
        ),
    ];
    let run = t.run(&["--format", "json", "doctor"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    let plugins = report["plugins"].as_array().unwrap();
    for (id, finding) in cases {
        let plugin = plugins.iter().find(|p| p["id"] == *id).unwrap();
        assert!(
            plugin["problems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p.as_str().unwrap().contains(finding)),
            "{id}: {plugin}"
        );
    }
    // Not one finding leaves the operator without a command to run.
    for plugin in plugins {
        for problem in plugin["problems"].as_array().unwrap() {
            assert!(
                problem.as_str().unwrap().contains("`tenon "),
                "{}: {problem}",
                plugin["id"]
            );
        }
    }
    let human = t.run(&["doctor"]);
    assert!(
        human.stdout.contains(cases[0].1) && human.stdout.contains("4 plugins need attention"),
        "{}",
        human.stdout
    );
}

/// Config values are read by their declared type; a secret given as an
/// argument is warned about, one piped on stdin is not.
#[test]
fn config_values_follow_their_declared_type() {
    let t = Tenon::new();
    t.ok(&["install", &example_arg("notifier")]);
    let piped = t.run_with_stdin(&["config", "set", NOTIFIER, "token", "-"], b"123456\n");
    let stderr = &piped.stderr;
    assert_eq!(piped.code, 0, "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let cases: &[(&str, &str, Result<serde_json::Value, &str>)] = &[
        ("webhook_url", "8080", Ok(json!("8080"))),
        ("webhook_url", "\"http://h/x\"", Ok(json!("http://h/x"))),
        ("max_excerpt", "120", Ok(json!(120))),
        (
            "max_excerpt",
            "lots",
            Err("`max_excerpt` is declared integer, and `lots` is not an integer (write 42)"),
        ),
    ];
    for (key, value, expected) in cases {
        match expected {
            Ok(stored) => {
                t.ok(&["config", "set", NOTIFIER, key, value]);
                assert_eq!(
                    t.json(&["config", "get", NOTIFIER, key])["value"],
                    *stored,
                    "{key} = {value}"
                );
            }
            Err(message) => {
                t.fails(&["config", "set", NOTIFIER, key, value], 1, message);
            }
        }
    }
    let run = t.run(&["config", "set", NOTIFIER, "token", "hunter2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "warning: `token` is a secret given as an argument: shell history and the process list keep it"
        ),
        "{}",
        run.stderr
    );
}

/// Install errors are laid out like `manifest validate`'s (file, line,
/// column, one a line) and in JSON; warnings name the file; installing the
/// same version again is a successful no-op, another build of it is not.
#[test]
fn install_reports_like_manifest_validate() {
    let t = Tenon::new();
    let work = tempfile::tempdir().unwrap();
    let broken = copy_example("echo", &work.path().join("broken"), |text| {
        text.replacen("version = \"0.1.0\"", "version = \"one\"", 1)
    });
    let file = broken.join("tenon.toml").display().to_string();
    let stderr = t.fails(
        &["install", &broken.display().to_string()],
        1,
        &format!("error: invalid manifest {file}: 1 error (listed above"),
    );
    assert!(
        stderr.contains(&format!(
            "{file}:6:11: error[invalid-version] plugin.version: `one` is not a semver version"
        )),
        "{stderr}"
    );
    let run = t.run(&["--format", "json", "install", &broken.display().to_string()]);
    let error = &run.json()["error"];
    assert_eq!(error["code"], "invalid_manifest");
    assert_eq!(error["diagnostics"][0]["line"], 6);
    assert_eq!(error["diagnostics"][0]["column"], 11);

    // Without its [engine] section, a manifest earns a warning.
    let warned = copy_example("echo", &work.path().join("warned"), |text| {
        let mut skipping = false;
        text.lines()
            .filter(|line| {
                if line.starts_with('[') {
                    skipping = *line == "[engine]";
                }
                !skipping
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    let run = t.run(&["install", &warned.display().to_string()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let file = warned.join("tenon.toml").display().to_string();
    assert!(
        run.stderr.contains(&format!(
            "{file}: warning[missing-engine] engine: no [engine] section"
        )),
        "{}",
        run.stderr
    );

    let again = t.ok(&["install", &warned.display().to_string()]);
    assert!(
        again.contains(
            "tenon-examples/echo 0.1.0 is already installed (the same version, manifest and module): nothing to do"
        ),
        "{again}"
    );
    assert_eq!(
        t.json(&["install", &warned.display().to_string()]),
        json!({"id": "tenon-examples/echo", "version": "0.1.0", "already_installed": true})
    );
    t.fails(
        &["install", &example_arg("echo")],
        1,
        "tenon-examples/echo is already installed at version 0.1.0; install another version with `tenon upgrade PATH`",
    );
}

/// A trapped Extism plugin costs one summarised warning line, its cause
/// kept and Extism's wasm backtrace left out; `-v` shows it whole.
#[test]
fn runtime_logs_are_summarised() {
    const PANICKER: &str = "tenon-hostile/extism-panicker";
    let t = Tenon::new();
    t.ok(&["install", &example_arg("hostile-extism-panicker")]);
    t.ok(&["enable", PANICKER]);
    let dispatch = [
        "hooks",
        "dispatch",
        "response.pre_deliver",
        "--data",
        r#"{"content": "x"}"#,
    ];
    let run = t.run(&dispatch);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warnings: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].starts_with("warning: call to handle_hook encountered an error")
            && warnings[0].contains("wasm trap: wasm `unreachable` instruction executed")
            && warnings[0].contains("-v or TENON_LOG=debug shows its whole log"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("backtrace:"), "{}", run.stderr);
    // A fail-open handler failed: proceeded, but not as if all went well.
    assert!(
        run.stdout.starts_with("proceeded (1 handler failed open)"),
        "{}",
        run.stdout
    );
    let mut verbose = vec!["-v"];
    verbose.extend_from_slice(&dispatch);
    let run = t.run(&verbose);
    assert!(run.stderr.contains("wasm backtrace:"), "{}", run.stderr);
}

/// `--data @FILE` and `--data -` feed hook data; hook data of the wrong
/// shape is reported without Rust type names; `--kind hok` is refused
/// with a suggestion; human event times carry their time zone.
#[test]
fn smaller_points() {
    let t = Tenon::new();
    t.ok(&["install", &example_arg("moderator")]);
    t.ok(&["config", "set", MODERATOR, "blocked_words", r#"["secret"]"#]);
    t.ok(&["grant", MODERATOR, "--all"]);
    t.ok(&["enable", MODERATOR]);
    let file = t.dir.path().join("data.json");
    std::fs::write(&file, r#"{"content": "a secret"}"#).unwrap();
    let from_file = t.json(&[
        "hooks",
        "dispatch",
        "response.pre_deliver",
        "--data",
        &format!("@{}", file.display()),
    ]);
    assert_eq!(from_file["blocked"]["plugin"], MODERATOR, "{from_file}");
    let from_stdin = t
        .run_with_stdin(
            &[
                "--format",
                "json",
                "hooks",
                "dispatch",
                "response.pre_deliver",
                "--data",
                "-",
            ],
            br#"{"content": "a secret"}"#,
        )
        .json();
    assert_eq!(from_stdin["blocked"]["plugin"], MODERATOR);
    t.fails(
        &[
            "hooks",
            "dispatch",
            "response.pre_deliver",
            "--data",
            "@/nonexistent/data.json",
        ],
        2,
        "cannot read --data @/nonexistent/data.json",
    );

    let wrong = t.json(&[
        "hooks",
        "dispatch",
        "response.pre_deliver",
        "--data",
        r#"{"content": 42}"#,
    ]);
    let error = wrong["receipts"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("does not have the expected shape") && !error.contains("::"),
        "{error}"
    );

    let kind = t.run(&["events", "--kind", "hok"]);
    assert_eq!(kind.code, 2);
    assert!(
        kind.stderr
            .contains("`hok` is not an event kind (did you mean `hook`?)"),
        "{}",
        kind.stderr
    );
    let events = t.ok(&["events", "-n", "1"]);
    assert!(
        events
            .lines()
            .nth(1)
            .is_some_and(|line| line.contains(" UTC  ")),
        "{events}"
    );
}

/// Help lists the command's own options apart from the global ones, has
/// examples, and `-h` stays short; `grant --version` is tenon's version.
#[test]
fn help_separates_global_options_and_has_examples() {
    let commands: &[&[&str]] = &[
        &["install"],
        &["list"],
        &["info"],
        &["config", "get"],
        &["config", "set"],
        &["config", "unset"],
        &["grant"],
        &["revoke"],
        &["enable"],
        &["disable"],
        &["upgrade"],
        &["rollback"],
        &["uninstall"],
        &["hooks", "list"],
        &["hooks", "dispatch"],
        &["call"],
        &["events"],
        &["prune-events"],
        &["stats"],
        &["doctor"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let run = bare_command().args(&args).output().unwrap();
        let help = String::from_utf8_lossy(&run.stdout);
        assert_eq!(run.status.code(), Some(0), "{command:?}");
        assert!(
            help.contains("\nExamples:\n  tenon "),
            "{command:?}:\n{help}"
        );
        let global = help
            .find("\nGlobal options:\n")
            .unwrap_or_else(|| panic!("{help}"));
        assert!(
            help[global..].contains("--registry <LOCATION>")
                && !help[..global].contains("--registry <LOCATION>"),
            "{command:?}:\n{help}"
        );
    }
    let short = bare_command().args(["grant", "-h"]).output().unwrap();
    let short = String::from_utf8_lossy(&short.stdout);
    // `-h` keeps to the global options used every day; `--help` has all.
    let global = short.find("\nGlobal options:\n").expect("a global section");
    for rare in [
        "--secret-key-file",
        "--data-dir",
        "--trust-policy",
        "--connect-timeout",
    ] {
        assert!(!short[global..].contains(rare), "{rare}: {short}");
    }
    assert!(short[global..].contains("--registry <LOCATION>"), "{short}");
    assert!(short.contains("--plugin-version <V>"), "{short}");
    let version = bare_command()
        .args(["grant", "--version"])
        .output()
        .unwrap();
    assert_eq!(version.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("tenon-grant ")
            || String::from_utf8_lossy(&version.stdout).starts_with("tenon "),
        "{version:?}"
    );
}

/// A PostgreSQL server that refuses connections is reported at once, not
/// after the connect timeout.
#[test]
fn a_refused_postgres_connection_fails_at_once() {
    let started = Instant::now();
    let run = bare_command()
        .args([
            "--registry",
            "postgres://tenon:pw@127.0.0.1:1/x",
            "--connect-timeout",
            "30s",
            "list",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot open the PostgreSQL registry at postgres://tenon@127.0.0.1:1/x")
            && stderr.contains("is the server running and listening on 127.0.0.1:1?")
            && !stderr.contains("pw"),
        "{stderr}"
    );
    // Well under the 30 s a connect would wait: the refusal is reported,
    // not waited out (a loaded machine may take seconds to start the CLI).
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// On a terminal, a command faster than the spinner's delay never draws
/// one.
#[test]
fn fast_commands_draw_no_spinner() {
    let command = format!("{} --registry memory: list", support::tenon_binary());
    // A run slower than the spinner's delay (400 ms) on a loaded machine
    // may rightly draw it, so the claim is checked on the first run that
    // took less than that, whole process included.
    let mut timings = Vec::new();
    for _ in 0..8 {
        let started = Instant::now();
        // `script` gives the command a terminal, where spinners are drawn.
        let run = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("TERM", "xterm")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .output()
            .expect("script (util-linux) runs");
        let took = started.elapsed();
        let shown = String::from_utf8_lossy(&run.stdout);
        assert!(shown.contains("no plugins installed"), "{shown}");
        if took >= Duration::from_millis(350) {
            timings.push(took);
            continue;
        }
        assert!(
            !shown.contains('⠋') && !shown.contains("opening the registry"),
            "a run of {took:?} drew the spinner: {shown}"
        );
        return;
    }
    panic!("no run was faster than the spinner's delay: {timings:?}");
}

/// On a terminal, a warning printed while a spinner is drawn takes the
/// spinner off its line first: every `warning:` starts a line of its own
/// and no spinner frame is drawn into it. The dispatch waits on a plugin
/// looping until its 2 s timeout (the spinner shows after 0.4 s), then
/// another one traps, whose runtime log is a warning.
#[test]
fn warnings_are_never_drawn_over_the_spinner() {
    const FRAMES: &str = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏";
    let t = Tenon::new();
    let work = tempfile::tempdir().unwrap();
    let looper = copy_example(
        "hostile-extism-looper",
        &work.path().join("looper"),
        |text| {
            text.replace("timeout = \"100ms\"", "timeout = \"2s\"")
                .replace(
                    "name = \"response.pre_deliver\"",
                    "name = \"response.pre_deliver\"\npriority = \"high\"",
                )
        },
    );
    for dir in [
        looper.display().to_string(),
        example_arg("hostile-extism-panicker"),
    ] {
        t.ok(&["install", &dir]);
    }
    t.ok(&["grant", "tenon-hostile/extism-looper", "--all"]);
    t.ok(&["enable", "tenon-hostile/extism-looper"]);
    t.ok(&["enable", "tenon-hostile/extism-panicker"]);
    let command = format!(
        "'{}' --registry '{}' hooks dispatch response.pre_deliver --data '{{\"content\": \"x\"}}'",
        support::tenon_binary(),
        t.registry().display()
    );
    // `script` gives the command a terminal, where spinners are drawn.
    let run = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    let shown = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{shown:?}");
    let first = shown
        .find("warning: ")
        .unwrap_or_else(|| panic!("no warning: {shown:?}"));
    assert!(
        shown[..first].contains("dispatching response.pre_deliver")
            && shown[..first].contains(|c| FRAMES.contains(c)),
        "the spinner was drawn before the warning: {shown:?}"
    );
    for (at, _) in shown.match_indices("warning: ") {
        // What the terminal's line holds before the warning, cursor moves
        // and line clearing aside, is nothing.
        let line_start = shown[..at].rfind(['\n', '\r']).map_or(0, |i| i + 1);
        let before = strip_escapes(&shown[line_start..at]);
        assert!(
            before.is_empty(),
            "a warning drawn after {before:?} on the spinner's line: {shown:?}"
        );
        let line = shown[at..].split(['\n', '\r']).next().unwrap_or_default();
        assert!(
            !line.contains(|c| FRAMES.contains(c)) && !line.contains("dispatching"),
            "a spinner frame drawn into the warning {line:?}: {shown:?}"
        );
    }
}

/// `text` without its ANSI escape sequences (CSI: `ESC [ … final byte`).
fn strip_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// On a terminal, `grant ID` asks about each permission not granted yet
/// and grants those accepted; asked again with nothing left, it succeeds
/// and says so.
#[test]
fn grant_asks_each_permission_on_a_terminal() {
    let t = Tenon::new();
    t.ok(&["install", &example_arg("counter")]);
    let on_terminal = |args: &str, input: &[u8]| {
        use std::io::Write as _;
        let command = format!(
            "'{}' --registry '{}' {args}",
            support::tenon_binary(),
            t.registry().display()
        );
        // `script` gives the command a terminal; the answers are typed on it.
        let mut child = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script (util-linux) runs");
        child.stdin.take().unwrap().write_all(input).unwrap();
        let run = child.wait_with_output().unwrap();
        (
            run.status.code(),
            String::from_utf8_lossy(&run.stdout).into_owned(),
        )
    };
    let (code, shown) = on_terminal(&format!("grant {COUNTER}"), b"y\nn\n");
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains("grant kv (quota 64KiB)? [y/N]")
            && shown.contains("grant events: subscribe notifier.*? [y/N]"),
        "{shown}"
    );
    assert_eq!(
        t.json(&["info", COUNTER])["permissions"]["missing"],
        json!(["events: subscribe notifier.*"])
    );
    let (code, shown) = on_terminal(&format!("grant {COUNTER}"), b"n\n");
    assert_eq!(code, Some(1), "{shown}");
    assert!(
        shown.contains("nothing granted: every permission was declined"),
        "{shown}"
    );
    t.ok(&["grant", COUNTER, "--all"]);
    let (code, shown) = on_terminal(&format!("grant {COUNTER}"), b"");
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains(
            "tenon-examples/counter holds every permission it declares already: nothing to do"
        ),
        "{shown}"
    );
}
