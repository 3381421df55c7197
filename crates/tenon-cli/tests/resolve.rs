//! `tenon resolve`: exit codes and both output formats, on the fixtures in
//! `tests/resolve/`.

use std::path::PathBuf;
use std::process::Command;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/resolve")
        .join(name)
        .display()
        .to_string()
}

/// What a run printed and how it ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn tenon(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_tenon"))
        .arg("resolve")
        .args(args)
        .output()
        .expect("tenon runs");
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8(output.stdout).expect("utf-8"),
        stderr: String::from_utf8(output.stderr).expect("utf-8"),
    }
}

/// Runs `tenon resolve --index index.json --format json ARGS` and compares
/// the exit code and the whole JSON document.
fn check_json(args: &[&str], code: i32, expected: Value) {
    let index = fixture("index.json");
    let mut all = vec!["--index", index.as_str(), "--format", "json"];
    all.extend_from_slice(args);
    let run = tenon(&all);
    let actual: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        )
    });
    assert_eq!((run.code, actual), (code, expected), "{args:?}");
}

#[test]
fn json_success() {
    let host_note =
        "acme/b 2.0.1 needs host version >=3, which was not checked: no host version was given";
    check_json(
        &["acme/a@^1"],
        0,
        json!({
            "ok": true,
            "order": [
                {"id": "acme/b", "version": "2.0.1"},
                {"id": "acme/a", "version": "1.1.0"},
            ],
            "plan": [
                {"id": "acme/b", "action": "install", "from": null, "to": "2.0.1"},
                {"id": "acme/a", "action": "install", "from": null, "to": "1.1.0"},
            ],
            "notes": [
                "warning: optional dependency acme/opt ^1 of acme/a 1.1.0 was left out: acme/opt is not in the index",
                host_note,
            ],
        }),
    );
    // A peer provided by the request, a dev dependency ignored, the host
    // version given.
    check_json(
        &["acme/ui", "acme/b@^2", "--host-version", "3.2.0"],
        0,
        json!({
            "ok": true,
            "order": [
                {"id": "acme/b", "version": "2.0.1"},
                {"id": "acme/ui", "version": "1.0.0"},
            ],
            "plan": [
                {"id": "acme/b", "action": "install", "from": null, "to": "2.0.1"},
                {"id": "acme/ui", "action": "install", "from": null, "to": "1.0.0"},
            ],
            "notes": [],
        }),
    );
}

#[test]
fn json_plans_against_installed() {
    let installed = fixture("installed.json");
    let order = json!([{"id": "acme/b", "version": "2.0.1"}, {"id": "acme/a", "version": "1.1.0"}]);
    let upgrade = json!({"id": "acme/b", "action": "upgrade", "from": "1.5.2", "to": "2.0.1"});
    let install_a = json!({"id": "acme/a", "action": "install", "from": null, "to": "1.1.0"});
    check_json(
        &[
            "acme/a",
            "--installed",
            &installed,
            "--prune",
            "--host-version",
            "3.0.0",
        ],
        0,
        json!({
            "ok": true,
            "order": order,
            "plan": [
                upgrade,
                install_a,
                {"id": "acme/old", "action": "remove", "from": "0.1.0", "to": null},
            ],
            "notes": ["warning: optional dependency acme/opt ^1 of acme/a 1.1.0 was left out: acme/opt is not in the index"],
        }),
    );
    // Without --prune the plugin the index does not know stays.
    check_json(
        &["acme/c", "--installed", &installed],
        0,
        json!({
            "ok": true,
            "order": [
                {"id": "acme/b", "version": "1.5.2"},
                {"id": "acme/c", "version": "1.4.0"},
                {"id": "acme/old", "version": "0.1.0"},
            ],
            "plan": [
                {"id": "acme/b", "action": "keep", "from": "1.5.2", "to": "1.5.2"},
                {"id": "acme/c", "action": "install", "from": null, "to": "1.4.0"},
                {"id": "acme/old", "action": "keep", "from": "0.1.0", "to": "0.1.0"},
            ],
            "notes": ["warning: acme/old 0.1.0 is installed but not in the index: it is kept as it is and its dependencies are not checked"],
        }),
    );
}

#[test]
fn json_failures() {
    check_json(
        &["acme/a@^1", "acme/c@^1"],
        1,
        json!({
            "ok": false,
            "explanation": "acme/c 1.4.0 needs acme/b ^1.3, but every version of acme/a needs acme/b ^2; no version of acme/b satisfies both (available: 1.3.0, 1.5.2, 2.0.1; yanked: 2.1.0).\nacme/c ^1 is required by your request acme/c@^1, and acme/a ^1 is required by your request acme/a@^1, so your request cannot be satisfied.",
        }),
    );
    check_json(
        &["acme/x"],
        1,
        json!({
            "ok": false,
            "explanation": "acme/x 2.0.0 needs plugin API ^2.0, but this host serves plugin API 1.0.0.\nacme/x is required by your request, so your request cannot be satisfied.",
        }),
    );
    check_json(
        &["acme/x", "--api-version", "1.0.0,2.1.0"],
        0,
        json!({
            "ok": true,
            "order": [{"id": "acme/x", "version": "2.0.0"}],
            "plan": [{"id": "acme/x", "action": "install", "from": null, "to": "2.0.0"}],
            "notes": [],
        }),
    );
    check_json(
        &["acme/b", "--host-version", "2.0.0"],
        0,
        json!({
            "ok": true,
            "order": [{"id": "acme/b", "version": "1.5.2"}],
            "plan": [{"id": "acme/b", "action": "install", "from": null, "to": "1.5.2"}],
            "notes": [],
        }),
    );
    check_json(
        &["acme/ui"],
        1,
        json!({
            "ok": false,
            "explanation": "acme/ui 1.0.0 needs acme/b ^2 as a peer, but nothing in the plan provides acme/b; peers are never installed on a plugin's behalf: add acme/b to your request or install it.\nacme/ui 1.0.0 is in the plan because acme/ui is required by your request.",
        }),
    );
    check_json(
        &["acme/aa@^1"],
        1,
        json!({"ok": false, "explanation": "acme/aa is not in the index (did you mean acme/a?)."}),
    );
}

#[test]
fn prerelease_and_strategies() {
    check_json(
        &["acme/ui@^2.0.0-beta.1"],
        1,
        json!({
            "ok": false,
            "explanation": "acme/ui ^2.0.0-beta.1 is required by your request acme/ui@^2.0.0-beta.1, but acme/ui ^2.0.0-beta.1 cannot be chosen: 2.0.0-beta.1 is a pre-release and pre-releases are not allowed, so your request cannot be satisfied.",
        }),
    );
    check_json(
        &["acme/ui@^2.0.0-beta.1", "--prerelease"],
        0,
        json!({
            "ok": true,
            "order": [{"id": "acme/ui", "version": "2.0.0-beta.1"}],
            "plan": [{"id": "acme/ui", "action": "install", "from": null, "to": "2.0.0-beta.1"}],
            "notes": [],
        }),
    );
    let installed = fixture("installed.json");
    check_json(
        &["acme/a", "--installed", &installed, "--strategy", "manual"],
        1,
        json!({
            "ok": false,
            "explanation": "Every version of acme/a needs acme/b ^2, but acme/b is installed at 1.5.2 and the manual strategy keeps installed versions, so no version of acme/a can be used.\nacme/a is required by your request, so your request cannot be satisfied.",
        }),
    );
    check_json(
        &["acme/c", "--installed", &installed, "--strategy", "strict"],
        1,
        json!({
            "ok": false,
            "explanation": "the strict strategy fails on warnings:\n- acme/old 0.1.0 is installed but not in the index: it is kept as it is and its dependencies are not checked",
        }),
    );
}

#[test]
fn human_output() {
    let index = fixture("index.json");
    let installed = fixture("installed.json");
    let run = tenon(&[
        "--index",
        &index,
        "--installed",
        &installed,
        "--prune",
        "--host-version",
        "3.0.0",
        "acme/a",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "#  plugin    version  action\n\
         1  acme/b    2.0.1    upgrade from 1.5.2\n\
         2  acme/a    1.1.0    install\n\
         -  acme/old           remove 0.1.0\n\
         \n\
         notes:\n  \
         warning: optional dependency acme/opt ^1 of acme/a 1.1.0 was left out: acme/opt is not in the index\n"
    );

    let run = tenon(&["--index", &index, "acme/a@^1", "acme/c@^1"]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.starts_with(
            "error: acme/c 1.4.0 needs acme/b ^1.3, but every version of acme/a needs acme/b ^2;"
        ),
        "{}",
        run.stderr
    );

    let run = tenon(&["--index", &index]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "nothing to install\n"));
}

#[test]
fn usage_and_io_errors() {
    let check = |args: &[&str], stderr: &str| {
        let run = tenon(args);
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.trim_end()),
            (2, "", stderr),
            "{args:?}"
        );
    };
    let missing = fixture("missing.json");
    check(
        &["--index", &missing, "acme/a"],
        &format!(
            "error: cannot read the index file {missing}: No such file or directory (os error 2)"
        ),
    );
    let malformed = fixture("malformed.json");
    check(
        &["--index", &malformed, "acme/a"],
        &format!("error: {malformed}:1:80: invalid index file: trailing comma"),
    );
    let bad_version = fixture("bad-version.json");
    check(
        &["--index", &bad_version, "acme/a"],
        &format!(
            "error: {bad_version}:2:31: invalid index file: unexpected end of input while parsing minor version number"
        ),
    );
    let index = fixture("index.json");
    let bad_installed = fixture("bad-installed.json");
    check(
        &["--index", &index, "--installed", &bad_installed, "acme/a"],
        &format!(
            "error: {bad_installed}:1:19: invalid installed file: unexpected character 'l' while parsing major version number"
        ),
    );

    // Arguments clap refuses.
    for args in [
        vec!["--index", index.as_str(), "acme"],
        vec!["--index", index.as_str(), "acme/a@one"],
        vec!["--index", index.as_str(), "--strategy", "newest", "acme/a"],
        vec!["--index", index.as_str(), "--api-version", "1", "acme/a"],
        vec!["acme/a"],
    ] {
        let run = tenon(&args);
        assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{args:?}");
        assert!(run.stderr.contains("error:"), "{args:?}: {}", run.stderr);
    }
}
