//! `tenon manifest …` end to end: exit codes, human and JSON output,
//! schema and convert, on manifests in every format.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/manifest-fixtures")
        .join(name)
}

/// Runs `tenon` with `args` (fixture names are resolved) from the fixtures
/// directory; returns the exit code, stdout and stderr.
fn tenon(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tenon"))
        .args(args)
        .current_dir(fixture(""))
        .output()
        .expect("tenon runs");
    (
        output.status.code().expect("an exit code"),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// `check(args, code, stdout)`: the exit code and the whole stdout.
fn check(args: &[&str], code: i32, stdout: &str) {
    let (got_code, got_stdout, stderr) = tenon(args);
    pretty_assertions::assert_eq!(got_stdout, stdout, "tenon {args:?}\nstderr: {stderr}");
    assert_eq!(got_code, code, "tenon {args:?}\nstderr: {stderr}");
}

#[test]
fn validate_valid_manifests_in_every_format() {
    check(
        &[
            "manifest",
            "validate",
            "valid.toml",
            "valid.json",
            "valid.yaml",
        ],
        0,
        "3 manifests checked: 3 valid, 0 invalid (0 errors, 0 warnings)\n",
    );
}

#[test]
fn warnings_do_not_fail_validation() {
    check(
        &["manifest", "validate", "warnings.toml"],
        0,
        "warnings.toml:3:1: warning[missing-description] plugin.description: no description: add one or two sentences saying what the plugin does\n\
         warnings.toml:3:1: warning[missing-license] plugin.license: no license: add an SPDX expression such as \"MIT\" or \"Apache-2.0 OR MIT\"\n\
         1 manifest checked: 1 valid, 0 invalid (0 errors, 2 warnings)\n",
    );
}

#[test]
fn validate_reports_every_problem_of_every_file() {
    check(
        &[
            "manifest",
            "validate",
            "invalid.toml",
            "invalid.json",
            "invalid.yaml",
            "valid.toml",
        ],
        1,
        "invalid.toml:4:6: error[invalid-id] plugin.id: the publisher of `Acme/hello` may hold only lowercase ascii letters, digits and '-', not 'A' (an id is publisher/name, each part 1-64 of a-z, 0-9 and '-', such as `acme/slack-notifier`)\n\
         invalid.toml:6:11: error[invalid-version] plugin.version: `1.0` is not a semver version (unexpected end of input while parsing minor version number): write MAJOR.MINOR.PATCH such as `1.2.0`\n\
         invalid.toml:10:1: error[missing-module] runtime.module: the component runtime runs a WebAssembly module: add `module = \"plugin.wasm\"`, relative to the plugin directory\n\
         invalid.toml: warning[missing-engine] engine: no [engine] section: add `[engine] tenon = \"^1.0\"` so hosts can tell whether the plugin fits (`^1` is assumed)\n\
         invalid.json:3:13: warning[missing-description] plugin.description: no description: add one or two sentences saying what the plugin does\n\
         invalid.json:3:13: warning[missing-license] plugin.license: no license: add an SPDX expression such as \"MIT\" or \"Apache-2.0 OR MIT\"\n\
         invalid.json:3:72: error[unknown-field] plugin.descripton: unknown field `descripton` in `plugin` (did you mean `description`?); expected one of: id, name, version, description, authors, license, homepage, repository, keywords, categories, capabilities\n\
         invalid.json:4:44: error[invalid-path] runtime.module: `../escape.wasm` climbs out with `..`: write a path relative to the plugin directory, such as `data`, that stays inside it\n\
         invalid.json: warning[missing-engine] engine: no [engine] section: add `[engine] tenon = \"^1.0\"` so hosts can tell whether the plugin fits (`^1` is assumed)\n\
         invalid.yaml:9:9: error[invalid-value] runtime.kind: `wasm` is not a valid runtime kind: use one of component | extism | native | process\n\
         invalid.yaml:12:13: error[invalid-path] permissions.filesystem[0].path: `/etc` is absolute: write a path relative to the plugin's data directory, such as `data`, that stays inside it\n\
         invalid.yaml: warning[missing-engine] engine: no [engine] section: add `[engine] tenon = \"^1.0\"` so hosts can tell whether the plugin fits (`^1` is assumed)\n\
         4 manifests checked: 1 valid, 3 invalid (7 errors, 5 warnings)\n",
    );
}

#[test]
fn json_output_is_one_object_per_file() {
    let (code, stdout, _) = tenon(&[
        "manifest",
        "validate",
        "--format",
        "json",
        "valid.yaml",
        "invalid.json",
        "warnings.toml",
    ]);
    assert_eq!(code, 1);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3);
    let summary: Vec<(&str, bool, usize)> = lines
        .iter()
        .map(|l| {
            let keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, ["file", "valid", "diagnostics"]);
            (
                l["file"].as_str().unwrap(),
                l["valid"].as_bool().unwrap(),
                l["diagnostics"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("valid.yaml", true, 0),
            ("invalid.json", false, 5),
            ("warnings.toml", true, 2)
        ]
    );
    let d = &lines[1]["diagnostics"][2];
    let keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["severity", "code", "path", "message", "line", "column"]
    );
    assert_eq!(
        (
            d["severity"].as_str(),
            d["code"].as_str(),
            d["path"].as_str()
        ),
        (
            Some("error"),
            Some("unknown-field"),
            Some("plugin.descripton")
        )
    );
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(3), Some(72))
    );
    let no_position = &lines[1]["diagnostics"][4];
    assert!(no_position["line"].is_null() && no_position["column"].is_null());
}

#[test]
fn an_unreadable_file_is_reported_and_the_others_still_checked() {
    let (code, stdout, stderr) = tenon(&[
        "manifest",
        "validate",
        "missing.toml",
        "invalid.toml",
        "valid.json",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot read missing.toml"), "{stderr}");
    assert!(
        stdout.contains("invalid.toml:4:6: error[invalid-id]"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(
            "3 manifests checked: 1 valid, 1 invalid, 1 unreadable (3 errors, 1 warning)\n"
        ),
        "{stdout}"
    );

    let (code, stdout, _) = tenon(&[
        "manifest",
        "validate",
        "--format",
        "json",
        "missing.toml",
        "valid.json",
    ]);
    assert_eq!(code, 2);
    let first: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["valid"], false);
    assert!(first["error"].as_str().unwrap().contains("cannot read"));
}

#[test]
fn the_format_comes_from_the_extension_or_the_flag() {
    let (code, _, stderr) = tenon(&["manifest", "validate", "manifest.txt"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot tell the format of manifest.txt"),
        "{stderr}"
    );
    check(
        &[
            "manifest",
            "validate",
            "--input-format",
            "toml",
            "manifest.txt",
        ],
        0,
        "1 manifest checked: 1 valid, 0 invalid (0 errors, 0 warnings)\n",
    );
    let (code, _, stderr) = tenon(&[
        "manifest",
        "validate",
        "--input-format",
        "xml",
        "valid.toml",
    ]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn host_flags_feed_the_checks() {
    let (code, stdout, _) = tenon(&["manifest", "validate", "org.toml"]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("error[unknown-permission] permissions.org"),
        "{stdout}"
    );
    check(
        &[
            "manifest",
            "validate",
            "--permissions",
            "org,robots",
            "--capabilities",
            "notification,data_source",
            "--host-version",
            "3.1.0",
            "org.toml",
        ],
        0,
        "1 manifest checked: 1 valid, 0 invalid (0 errors, 0 warnings)\n",
    );
    let (code, stdout, _) = tenon(&[
        "manifest",
        "validate",
        "--permissions",
        "org",
        "--capabilities",
        "data_source",
        "--host-version",
        "2.0.0",
        "--api-version",
        "2.0.0,3.0.0",
        "org.toml",
    ]);
    assert_eq!(code, 1);
    for expected in [
        "error[unknown-capability] plugin.capabilities[0]",
        "error[incompatible-engine] engine.tenon: this host cannot run the plugin: it needs plugin API ^1.0 but this host serves 2.0.0, 3.0.0",
        "error[incompatible-engine] engine.host: this host cannot run the plugin: it needs host version >=3.0 but this host is 2.0.0",
    ] {
        assert!(stdout.contains(expected), "{expected} not in:\n{stdout}");
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["manifest", "validate"][..],
        &["manifest", "validate", "--format", "xml", "valid.toml"],
        &["manifest", "validate", "--api-version", "one", "valid.toml"],
    ] {
        let (code, _, _) = tenon(args);
        assert_eq!(code, 2, "tenon {args:?}");
    }
}

#[test]
fn schema_prints_the_manifest_json_schema() {
    let (code, stdout, _) = tenon(&["manifest", "schema"]);
    assert_eq!(code, 0);
    let schema: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(schema, tenon_manifest::manifest_json_schema());
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

#[test]
fn convert_writes_each_format_and_round_trips() {
    let context = tenon_manifest::ValidationContext::default();
    let original = tenon_manifest::parse(
        &std::fs::read_to_string(fixture("valid.toml")).unwrap(),
        tenon_manifest::Format::Toml,
        &context,
    )
    .manifest
    .unwrap();
    for (to, ext) in [("json", "json"), ("yaml", "yaml"), ("toml", "toml")] {
        let (code, stdout, stderr) = tenon(&["manifest", "convert", "valid.yaml", "--to", to]);
        assert_eq!(code, 0, "{stderr}");
        let format = tenon_manifest::Format::from_name(ext).unwrap();
        let converted = tenon_manifest::parse(&stdout, format, &context);
        assert_eq!(
            converted.manifest.as_ref(),
            Some(&original),
            "{to}:\n{stdout}"
        );
    }
    let (_, json, _) = tenon(&["manifest", "convert", "valid.toml", "--to", "json"]);
    assert!(
        json.starts_with("{\n  \"manifest_version\": 1,\n  \"plugin\": {"),
        "{json}"
    );
}

#[test]
fn convert_refuses_an_invalid_manifest() {
    let (code, stdout, stderr) = tenon(&["manifest", "convert", "invalid.yaml", "--to", "toml"]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("invalid.yaml:9:9: error[invalid-value] runtime.kind"),
        "{stderr}"
    );
    assert!(
        stderr.contains("invalid.yaml is not a valid manifest"),
        "{stderr}"
    );
    let (code, _, _) = tenon(&[
        "manifest",
        "convert",
        "org.toml",
        "--to",
        "json",
        "--permissions",
        "org",
    ]);
    assert_eq!(code, 0);
    let (code, _, _) = tenon(&["manifest", "convert", "nope.toml", "--to", "json"]);
    assert_eq!(code, 2);
}
