//! The plugin author's path with the real binary: `tenon new` writes a
//! project that builds and passes its own test as generated; `build`,
//! `pack` and `install` take it from there, and the installed plugin runs.
//!
//! Slow by nature (it compiles plugins): one test, each project built once.
//! The projects start from the examples' Cargo.lock and build into the
//! target directories the examples and tenon-build's tests already fill, so
//! that dependencies are compiled once per machine.

mod support;

use std::path::Path;

use pretty_assertions::assert_eq;
use serde_json::json;
use support::{Tenon, bare_command};

fn arg(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn a_new_plugin_builds_passes_its_own_test_and_runs_installed() {
    let work = tempfile::tempdir().unwrap();
    let examples = tenon_build::examples_dir();
    let lockfile = arg(&examples.join("Cargo.lock"));
    let tenon = |args: &[&str]| {
        let output = bare_command()
            .current_dir(work.path())
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };

    // Scaffolding: human and JSON output, and what it refuses.
    let (code, stdout, stderr) = tenon(&["new", "cli-hello", "--lockfile", &lockfile]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("Created local/cli-hello (component plugin) in cli-hello"),
        "{stdout}"
    );
    assert!(stdout.contains("cargo test"), "{stdout}");
    let hello = work.path().join("cli-hello");
    for file in [
        "Cargo.toml",
        "tenon.toml",
        "src/lib.rs",
        "tests/plugin.rs",
        "Cargo.lock",
    ] {
        assert!(hello.join(file).is_file(), "{file}");
    }
    let (code, _, stderr) = tenon(&["new", "cli-hello"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("already exists and is not empty"),
        "{stderr}"
    );
    let (code, _, stderr) = tenon(&["new", "Hello"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("`Hello` cannot name a plugin"), "{stderr}");
    let (code, stdout, stderr) = tenon(&[
        "--format",
        "json",
        "new",
        "cli-extism",
        "--kind",
        "extism",
        "--publisher",
        "acme",
        "--lockfile",
        &lockfile,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let created: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(created["id"], "acme/cli-extism");
    assert_eq!(created["kind"], "extism");
    assert!(
        created["files"]
            .as_array()
            .unwrap()
            .contains(&json!("src/lib.rs"))
    );

    // The component project's own test passes as generated. It builds the
    // plugin (release, into <target>/plugins) and runs it under the mock
    // host; `tenon build` below reuses that build.
    let test_target = examples.join("target");
    let output = tenon_build::cargo_command(None, &hello)
        .arg("test")
        .arg("--target-dir")
        .arg(&test_target)
        .output()
        .unwrap();
    let test_stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{test_stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        test_stdout.contains("test result: ok. 3 passed"),
        "{test_stdout}"
    );

    let wasm_target = arg(&test_target.join("plugins"));
    let (code, stdout, stderr) = tenon(&[
        "--format",
        "json",
        "build",
        &arg(&hello),
        "--target-dir",
        &wasm_target,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let built: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(built["id"], "local/cli-hello");
    assert_eq!(built["kind"], "component");
    assert_eq!(built["module_sha256"].as_str().unwrap().len(), 64);
    assert!(Path::new(built["module"].as_str().unwrap()).is_file());

    // Packing a project builds it (a no-op now) and packs what was built.
    let archive = work.path().join("hello.tenon");
    let (code, stdout, stderr) = tenon(&[
        "pack",
        &arg(&hello),
        "--target-dir",
        &wasm_target,
        "--out",
        &arg(&archive),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("Packed local/cli-hello 0.1.0 into"),
        "{stdout}"
    );
    assert!(archive.is_file());

    // Installed from the project directory, it runs.
    let t = Tenon::new();
    let installed = t.json(&["install", &arg(&hello), "--target-dir", &wasm_target]);
    assert_eq!(installed["id"], "local/cli-hello");
    assert_eq!(installed["built"], true);
    assert_eq!(installed["state"], "resolved");
    t.ok(&["enable", "local/cli-hello"]);
    assert_eq!(
        t.ok(&["call", "local/cli-hello", "greet", "--input", "Ada"])
            .trim(),
        "Hello, Ada!"
    );
    let signed = t.json(&[
        "hooks",
        "dispatch",
        "response.pre_deliver",
        "--data",
        r#"{"content": "Hi"}"#,
    ]);
    assert_eq!(signed["data"]["content"], "Hi\n\n-- sent by cli-hello");
    let refused = t.json(&[
        "hooks",
        "dispatch",
        "response.pre_deliver",
        "--data",
        r#"{"content": " "}"#,
    ]);
    assert_eq!(refused["blocked"]["reason"], "the response is empty");

    // The Extism project builds when installed, and runs.
    let extism = work.path().join("cli-extism");
    let extism_target = arg(&tenon_build::plugins_target_dir());
    let installed = t.json(&["install", &arg(&extism), "--target-dir", &extism_target]);
    assert_eq!(installed["id"], "acme/cli-extism");
    assert_eq!(installed["built"], true);
    t.ok(&["enable", "acme/cli-extism"]);
    assert_eq!(
        t.json(&["call", "acme/cli-extism", "greet", "--input", "Ada"])["output"],
        "Hello, Ada!"
    );
}

/// `tenon new --kind process` writes a project whose own test passes as
/// generated; `tenon install` builds its executable for this machine and
/// installs it, and it runs as a process; `tenon pack` packs the executable,
/// and the package installs and runs elsewhere.
#[test]
fn a_new_process_plugin_passes_its_test_and_runs_as_a_process() {
    let work = tempfile::tempdir().unwrap();
    let examples = tenon_build::examples_dir();
    let lockfile = arg(&examples.join("Cargo.lock"));
    let run = |args: &[&str]| {
        let output = bare_command()
            .current_dir(work.path())
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(&[
        "new",
        "cli-proc",
        "--kind",
        "process",
        "--lockfile",
        &lockfile,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("Created local/cli-proc (process plugin) in cli-proc"),
        "{stdout}"
    );
    let project = work.path().join("cli-proc");
    for file in [
        "Cargo.toml",
        "tenon.toml",
        "src/lib.rs",
        "src/main.rs",
        "tests/plugin.rs",
    ] {
        assert!(project.join(file).is_file(), "{file}");
    }

    // Its own test passes as generated (with the examples' dev builds).
    let output = tenon_build::cargo_command(None, &project)
        .arg("test")
        .arg("--target-dir")
        .arg(examples.join("target"))
        .output()
        .unwrap();
    let test_stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{test_stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        test_stdout.contains("test result: ok. 3 passed"),
        "{test_stdout}"
    );

    // Installed from the project directory (built with the examples'
    // release builds), it runs as a process.
    let target = arg(&tenon_build::plugins_target_dir());
    let t = Tenon::new();
    let installed = t.json(&["install", &arg(&project), "--target-dir", &target]);
    assert_eq!(installed["id"], "local/cli-proc");
    assert_eq!(installed["built"], true);
    t.ok(&["enable", "local/cli-proc"]);
    assert_eq!(
        t.ok(&["call", "local/cli-proc", "greet", "--input", "Ada"])
            .trim(),
        "Hello, Ada!"
    );
    let signed = t.json(&[
        "hooks",
        "dispatch",
        "response.pre_deliver",
        "--data",
        r#"{"content": "Hi"}"#,
    ]);
    assert_eq!(signed["data"]["content"], "Hi\n\n-- sent by cli-proc");

    // Packed, the executable travels in the package and runs from it.
    let archive = work.path().join("cli-proc.tenon");
    let (code, stdout, stderr) = run(&[
        "pack",
        &arg(&project),
        "--target-dir",
        &target,
        "--out",
        &arg(&archive),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("Packed local/cli-proc 0.1.0 into"),
        "{stdout}"
    );
    let elsewhere = Tenon::new();
    let installed = elsewhere.json(&["install", &arg(&archive)]);
    assert_eq!(installed["id"], "local/cli-proc");
    elsewhere.ok(&["enable", "local/cli-proc"]);
    assert_eq!(
        elsewhere
            .ok(&["call", "local/cli-proc", "greet", "--input", "Bea"])
            .trim(),
        "Hello, Bea!"
    );
}
