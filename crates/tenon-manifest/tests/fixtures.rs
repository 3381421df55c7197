//! The fixture manifests under `tests/fixtures/`, each checked against the
//! expected diagnostics in the file next to it (`NAME.EXT.expected`).
//!
//! A fixture may have a host context (`NAME.host`, a `ValidationContext` as
//! JSON) shared by its formats. Run with `UPDATE_EXPECT=1` to rewrite the
//! expectations from what the parser says now (then review the diff).
//!
//! Beyond its diagnostics, every fixture is held to these rules:
//! - a valid manifest converts to each format and parses back to itself;
//! - a valid manifest fits the manifest's JSON Schema;
//! - a manifest with a structural error (unknown field, wrong type…) does not.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tenon_manifest::{
    Code, Format, Parsed, ValidationContext, manifest_json_schema, parse, parse_document,
};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn context_for(input: &Path) -> ValidationContext {
    let name = input.file_name().unwrap().to_str().unwrap();
    let stem = name.split('.').next().unwrap();
    let host = input.with_file_name(format!("{stem}.host"));
    match std::fs::read_to_string(&host) {
        Ok(text) => serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not a ValidationContext: {e}", host.display())),
        Err(_) => ValidationContext::default(),
    }
}

fn report(parsed: &Parsed) -> Value {
    json!({ "valid": parsed.is_valid(), "diagnostics": parsed.diagnostics })
}

/// Checks one fixture; `Err` describes every way it fails.
fn check(input: &Path) -> Result<(), String> {
    let format = Format::from_path(input).expect("a fixture has a manifest extension");
    let source = std::fs::read_to_string(input).map_err(|e| e.to_string())?;
    let context = context_for(input);
    let parsed = parse(&source, format, &context);
    let actual = serde_json::to_string_pretty(&report(&parsed)).unwrap() + "\n";
    let expected_path = PathBuf::from(format!("{}.expected", input.display()));
    let mut problems = Vec::new();
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&expected_path, &actual).map_err(|e| e.to_string())?;
    } else {
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            problems.push(format!(
                "diagnostics differ (run with UPDATE_EXPECT=1 to accept):\n{}",
                pretty_assertions::StrComparison::new(&expected, &actual)
            ));
        }
    }

    if let Some(manifest) = &parsed.manifest {
        for to in Format::ALL {
            let text = manifest.to_string_in(to);
            let again = parse(&text, to, &context);
            if again.manifest.as_ref() != Some(manifest) {
                problems.push(format!(
                    "does not round-trip through {to}:\n{text}\n{:#?}",
                    again.diagnostics
                ));
            }
        }
    }

    if let Ok(document) = parse_document(&source, format, &context.input) {
        let schema_errors = support::schema_check::errors(&manifest_json_schema(), &document);
        if parsed.is_valid() && !schema_errors.is_empty() {
            problems.push(format!(
                "valid, but the JSON Schema refuses it: {schema_errors:#?}"
            ));
        }
        let structural = [
            Code::UnknownField,
            Code::WrongType,
            Code::MissingField,
            Code::InvalidId,
            Code::InvalidVersion,
            Code::UnsupportedManifestVersion,
            Code::InvalidSha256,
        ];
        if let Some(d) = parsed.errors().find(|d| structural.contains(&d.code))
            && schema_errors.is_empty()
        {
            problems.push(format!(
                "the JSON Schema accepts it, but the parser reports {d}"
            ));
        }
    }

    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", input.display(), problems.join("\n")))
    }
}

#[test]
fn every_fixture_matches_its_expectations() {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| Format::from_path(p).is_some())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 30, "only {} fixtures found", inputs.len());
    let failures: Vec<String> = inputs.iter().filter_map(|p| check(p).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_format_of_a_fixture_says_the_same() {
    // The same manifest written in several formats parses to the same value.
    for name in ["slack-notifier", "minimal", "pliers-example-plugin"] {
        let mut manifests = Vec::new();
        for ext in ["toml", "json", "yaml", "yml"] {
            let path = fixtures_dir().join(format!("{name}.{ext}"));
            let Ok(source) = std::fs::read_to_string(&path) else {
                continue;
            };
            let parsed = parse(
                &source,
                Format::from_path(&path).unwrap(),
                &context_for(&path),
            );
            manifests.push((
                ext,
                parsed
                    .manifest
                    .unwrap_or_else(|| panic!("{} is invalid", path.display())),
            ));
        }
        assert!(manifests.len() >= 2, "{name} has fewer than two formats");
        for (ext, m) in &manifests[1..] {
            assert_eq!(
                &manifests[0].1, m,
                "{name}.{ext} differs from {name}.{}",
                manifests[0].0
            );
        }
    }
}
