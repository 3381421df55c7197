//! Building real projects: scaffolded ones, the repository's examples, and
//! broken ones for every error a plugin author can meet.

use std::fs;
use std::path::Path;

use tenon_build::{
    BuildError, BuildOptions, PdkSource, ScaffoldOptions, build_plugin, build_workspace,
    cargo_command, ensure_examples_built, examples_dir, plugins_target_dir, scaffold,
};
use tenon_manifest::RuntimeKind;

/// A project in a temporary directory, from `(path, content)` pairs.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    dir
}

const CARGO_TOML: &str = r#"
[package]
name = "tiny"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[workspace]
"#;

fn manifest(kind: &str) -> String {
    format!(
        r#"
manifest_version = 1

[plugin]
id = "test/tiny"
name = "Tiny"
version = "0.1.0"
description = "A test plugin."
license = "MIT"

[engine]
tenon = "^1.0"

[runtime]
kind = "{kind}"
module = "out/tiny.wasm"
"#
    )
}

/// Options that keep a dependency-free project's build inside its own
/// temporary directory.
fn local(dir: &Path) -> BuildOptions {
    BuildOptions {
        target_dir: Some(dir.join("target")),
        ..BuildOptions::default()
    }
}

#[test]
fn builds_and_assembles_a_project() {
    let dir = project(&[
        ("Cargo.toml", CARGO_TOML),
        ("tenon.toml", &manifest("extism")),
        ("README.md", "# Tiny\n"),
        (
            "src/lib.rs",
            "#[unsafe(no_mangle)]\npub extern \"C\" fn run() -> i32 { 7 }\n",
        ),
    ]);
    let built = build_plugin(dir.path(), &local(dir.path())).unwrap();
    assert_eq!(built.package, "tiny");
    assert_eq!(built.id(), "test/tiny");
    assert_eq!(built.dir, dir.path().join("target/tenon/tiny"));
    // The module goes where the manifest says, beside a copy of the manifest
    // and the README.
    assert_eq!(built.module_path, built.dir.join("out/tiny.wasm"));
    assert_eq!(
        &built.module_bytes().unwrap()[..8],
        b"\0asm\x01\x00\x00\x00"
    );
    assert_eq!(built.manifest_text().unwrap(), manifest("extism"));
    assert!(built.dir.join("README.md").is_file());

    // An explicit output directory, and a second build that is up to date.
    let out = dir.path().join("dist");
    let options = BuildOptions {
        out_dir: Some(out.clone()),
        ..local(dir.path())
    };
    let again = build_plugin(dir.path(), &options).unwrap();
    assert_eq!(again.dir, out.join("tiny"));
    assert_eq!(again.module_bytes().unwrap(), built.module_bytes().unwrap());
}

/// Builds `files` and returns the error, which must exist.
fn failure(files: &[(&str, &str)]) -> BuildError {
    let dir = project(files);
    build_plugin(dir.path(), &local(dir.path())).expect_err("the build must fail")
}

#[test]
fn explains_every_failure() {
    let check = |error: BuildError, fragments: &[&str]| {
        let text = error.to_string();
        for fragment in fragments {
            assert!(text.contains(fragment), "`{fragment}` not in:\n{text}");
        }
    };
    check(
        failure(&[("tenon.toml", "")]),
        &["has no Cargo.toml", "tenon new"],
    );
    check(
        failure(&[("Cargo.toml", CARGO_TOML), ("src/lib.rs", "")]),
        &["has no plugin manifest", "tenon.toml"],
    );
    check(
        failure(&[
            ("Cargo.toml", CARGO_TOML),
            (
                "tenon.toml",
                &manifest("component").replace("test/tiny", "Not An Id"),
            ),
            ("src/lib.rs", ""),
        ]),
        &["is not a valid manifest", "plugin.id"],
    );
    check(
        failure(&[
            ("Cargo.toml", CARGO_TOML),
            (
                "tenon.toml",
                &manifest("native").replace("module = \"out/tiny.wasm\"", "entry = \"tiny\""),
            ),
            ("src/lib.rs", ""),
        ]),
        &["runtime.kind = \"native\"", "compiled into its host"],
    );
    check(
        failure(&[
            ("Cargo.toml", CARGO_TOML),
            ("tenon.toml", &manifest("extism")),
            (
                "src/lib.rs",
                "pub fn broken() -> u32 { \"not a number\" }\n",
            ),
        ]),
        &["cargo", "failed", "mismatched types", "src/lib.rs"],
    );
    check(
        failure(&[
            ("Cargo.toml", &CARGO_TOML.replace("cdylib", "rlib")),
            ("tenon.toml", &manifest("extism")),
            ("src/lib.rs", "pub fn f() {}\n"),
        ]),
        &["produced no .wasm", "crate-type = [\"cdylib\"]"],
    );
}

#[test]
fn a_workspace_without_plugins_is_refused() {
    let dir = project(&[
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"lib\"]\nresolver = \"3\"\n",
        ),
        ("lib/Cargo.toml", &CARGO_TOML.replace("[workspace]", "")),
        ("lib/src/lib.rs", ""),
    ]);
    let error = build_workspace(dir.path(), &local(dir.path())).unwrap_err();
    assert!(matches!(error, BuildError::NoPlugins { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("no workspace member has a tenon.toml")
    );
}

/// The scaffolded projects share compiled dependencies with the examples:
/// same lockfile, same target directory, same release profile.
fn scaffold_options() -> ScaffoldOptions {
    ScaffoldOptions {
        lockfile: Some(examples_dir().join("Cargo.lock")),
        ..ScaffoldOptions::default()
    }
}

#[test]
fn a_scaffolded_component_builds_and_passes_its_own_tests() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("hello-world");
    let scaffolded = scaffold(
        "hello-world",
        RuntimeKind::Component,
        &dir,
        &scaffold_options(),
    )
    .unwrap();
    assert_eq!(scaffolded.id, "local/hello-world");
    for file in [
        "Cargo.toml",
        "tenon.toml",
        "src/lib.rs",
        "tests/plugin.rs",
        "rust-toolchain.toml",
    ] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    let cargo_toml = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let PdkSource::Path(pdk) = PdkSource::default() else {
        unreachable!()
    };
    assert!(cargo_toml.contains(&*pdk.to_string_lossy()), "{cargo_toml}");

    let options = BuildOptions {
        target_dir: Some(plugins_target_dir()),
        out_dir: Some(parent.path().join("out")),
        ..BuildOptions::default()
    };
    let built = build_plugin(&dir, &options).unwrap();
    assert_eq!(built.id(), "local/hello-world");
    assert_eq!(
        built.module_path,
        parent.path().join("out/hello-world/plugin.wasm")
    );
    assert_eq!(&built.module_bytes().unwrap()[..4], b"\0asm");

    // Its own tests build it again and run it under tenon-pdk's mock host.
    // They share the examples' target directory: same lockfile, same
    // profiles, so the host-side dependencies are compiled once.
    let output = cargo_command(None, &dir)
        .args(["test", "--target-dir"])
        .arg(examples_dir().join("target"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("test result: ok. 3 passed"), "{stdout}");

    // The directory is now in use.
    let error = scaffold(
        "hello-world",
        RuntimeKind::Component,
        &dir,
        &scaffold_options(),
    )
    .unwrap_err();
    assert!(
        matches!(error, BuildError::DirectoryNotEmpty { .. }),
        "{error}"
    );
}

#[test]
fn a_scaffolded_extism_plugin_builds() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("hello-extism");
    scaffold(
        "hello-extism",
        RuntimeKind::Extism,
        &dir,
        &scaffold_options(),
    )
    .unwrap();
    let options = BuildOptions {
        target_dir: Some(plugins_target_dir()),
        out_dir: Some(parent.path().join("out")),
        ..BuildOptions::default()
    };
    let built = build_plugin(&dir, &options).unwrap();
    assert_eq!(built.manifest.runtime.kind, RuntimeKind::Extism);
    assert_eq!(
        &built.module_bytes().unwrap()[..8],
        b"\0asm\x01\x00\x00\x00"
    );
}

#[test]
fn scaffolding_refuses_bad_requests() {
    let parent = tempfile::tempdir().unwrap();
    let check = |name: &str, kind: RuntimeKind, fragment: &str| {
        let error = scaffold(
            name,
            kind,
            &parent.path().join("x"),
            &ScaffoldOptions::default(),
        )
        .unwrap_err();
        assert!(error.to_string().contains(fragment), "{name}: {error}");
    };
    check("Bad Name", RuntimeKind::Component, "cannot name a plugin");
    check("fn", RuntimeKind::Component, "reserved");
    check("fine", RuntimeKind::Native, "not built by `tenon build`");
    assert!(
        !parent.path().join("x").exists(),
        "nothing written on refusal"
    );
}

#[test]
fn the_examples_build_into_installable_directories() {
    let examples = ensure_examples_built();
    let names: Vec<_> = examples.names().collect();
    for expected in [
        "counter",
        "echo",
        "moderator",
        "notifier",
        "redactor",
        "hostile-deep-recursion",
        "hostile-forbidden-host",
        "hostile-future-api",
        "hostile-huge-output",
        "hostile-looper",
        "hostile-memory-bomb",
        "hostile-panicker",
        "hostile-path-escape",
        "process-counter",
        "hostile-process",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for (name, plugin) in examples.iter() {
        assert_eq!(plugin.dir, plugins_target_dir().join(name));
        assert!(plugin.manifest_path.is_file(), "{name}");
        let module = plugin.module_bytes().unwrap();
        let preamble: &[u8] = match plugin.manifest.runtime.kind {
            RuntimeKind::Component => b"\0asm\x0d\x00\x01\x00",
            // An executable for the host (the tests run on Linux).
            RuntimeKind::Process => b"\x7fELF",
            _ => b"\0asm\x01\x00\x00\x00",
        };
        assert_eq!(&module[..preamble.len()], preamble, "{name}");
        if plugin.manifest.runtime.kind == RuntimeKind::Process {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&plugin.module_path)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o755, "{name}: runnable");
            assert_eq!(
                plugin.module_path,
                plugin
                    .dir
                    .join(plugin.manifest.runtime.command.as_deref().unwrap()),
                "{name}"
            );
        }
    }
    assert_eq!(
        examples.expect("tenon-examples/redactor").package,
        "redactor"
    );
    assert!(examples.get("nope").is_none());
}
