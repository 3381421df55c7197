//! The public API around parsing: manifests built in code, engine checks,
//! formats, bounds.

use std::collections::BTreeSet;

use tenon_manifest::{
    Code, Dependency, Diagnostic, Format, HookDecl, HostInfo, InputLimits, Manifest, PluginId,
    PluginMeta, RuntimeKind, RuntimeSpec, Severity, ValidationContext, Version, VersionReq, parse,
    parse_bytes,
};

fn built() -> Manifest {
    let mut plugin = PluginMeta::new(
        PluginId::new("acme/built").unwrap(),
        "Built",
        Version::new(1, 0, 0),
    );
    plugin.description = "Built in code.".into();
    plugin.license = Some("MIT".into());
    let mut runtime = RuntimeSpec::new(RuntimeKind::Component);
    runtime.module = Some("built.wasm".into());
    Manifest::new(plugin, runtime)
}

fn codes(diagnostics: &[Diagnostic]) -> Vec<(&str, &str)> {
    diagnostics
        .iter()
        .map(|d| (d.code.as_str(), d.path.as_str()))
        .collect()
}

#[test]
fn a_manifest_built_in_code_is_validated_like_a_parsed_one() {
    let mut m = built();
    assert_eq!(m.validate(&ValidationContext::default()), vec![]);
    m.runtime.module = None;
    m.permissions.filesystem.push(tenon_manifest::FsPermission {
        path: "../up".into(),
        mode: Default::default(),
    });
    let hook = HookDecl::new("a.b");
    m.hooks = vec![hook.clone(), hook];
    m.dependencies
        .insert(m.plugin.id.clone(), Dependency::new(VersionReq::STAR));
    let diagnostics = m.validate(&ValidationContext::default());
    assert_eq!(
        codes(&diagnostics),
        [
            ("missing-module", "runtime.module"),
            ("invalid-path", "permissions.filesystem[0].path"),
            ("duplicate-hook", "hooks[1].name"),
            ("self-dependency", "dependencies.\"acme/built\""),
        ]
    );
    assert!(
        diagnostics
            .iter()
            .all(|d| d.line.is_none() && d.severity == Severity::Error)
    );
}

#[test]
fn canonical_output_round_trips_in_every_format() {
    let m = built();
    for format in Format::ALL {
        let text = m.to_string_in(format);
        let parsed = parse(&text, format, &ValidationContext::default());
        assert_eq!(
            parsed.manifest.as_ref(),
            Some(&m),
            "{format}:\n{text}\n{:#?}",
            parsed.diagnostics
        );
    }
}

#[test]
fn diagnostics_serialize_to_the_documented_shape() {
    let parsed = parse(
        "manifest_version = 1\n[plugin]\nid = 1\n",
        Format::Toml,
        &ValidationContext::default(),
    );
    let json = serde_json::to_value(&parsed.diagnostics[0]).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["severity", "code", "path", "message", "line", "column"]
    );
    assert_eq!(json["severity"], "error");
    let missing = parsed
        .diagnostics
        .iter()
        .find(|d| d.line.is_none())
        .unwrap();
    let json = serde_json::to_value(missing).unwrap();
    assert!(json["line"].is_null() && json["column"].is_null());
    for code in Code::ALL {
        assert_eq!(Code::from_name(code.as_str()), Some(*code));
        assert!(
            code.as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
    }
}

#[test]
fn check_engine_picks_the_newest_fitting_api() {
    let m = built();
    let served = [
        Version::new(0, 9, 0),
        Version::new(1, 0, 0),
        Version::new(1, 3, 0),
    ];
    let host = HostInfo {
        api_versions: &served,
        ..HostInfo::default()
    };
    assert_eq!(m.check_engine(&host), Ok(Version::new(1, 3, 0)));
    let context = ValidationContext {
        api_versions: vec![Version::new(2, 0, 0)],
        features: Some(BTreeSet::new()),
        ..ValidationContext::default()
    };
    let error = m.check_engine(&context.host()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "needs plugin API ^1 but this host serves 2.0.0"
    );
}

#[test]
fn input_bounds_are_enforced() {
    let context = ValidationContext {
        input: InputLimits {
            max_bytes: 64,
            ..InputLimits::default()
        },
        ..ValidationContext::default()
    };
    let big = format!("# {}\nmanifest_version = 1\n", "x".repeat(100));
    let parsed = parse(&big, Format::Toml, &context);
    assert_eq!(codes(&parsed.diagnostics), [("too-large", "")]);

    let long = format!(
        "{{\"manifest_version\": 1, \"plugin\": {{\"name\": \"{}\"}}}}",
        "y".repeat(70_000)
    );
    let parsed = parse(&long, Format::Json, &ValidationContext::default());
    assert_eq!(codes(&parsed.diagnostics), [("too-large", "")]);

    let many = format!("keywords: [{}]", vec!["a"; 5000].join(","));
    let parsed = parse(&many, Format::Yaml, &ValidationContext::default());
    assert_eq!(codes(&parsed.diagnostics), [("too-large", "")]);

    let deep = format!("x = {}1{}", "[".repeat(60), "]".repeat(60));
    let parsed = parse(&deep, Format::Toml, &ValidationContext::default());
    assert!(!parsed.is_valid());
    assert!(
        matches!(parsed.diagnostics[0].code, Code::TooDeep | Code::Syntax),
        "{:?}",
        parsed.diagnostics
    );
}

#[test]
fn bytes_must_be_utf8() {
    let parsed = parse_bytes(
        b"manifest_version = 1\n\xff",
        Format::Toml,
        &ValidationContext::default(),
    );
    assert_eq!(codes(&parsed.diagnostics), [("syntax", "")]);
    assert_eq!(
        (parsed.diagnostics[0].line, parsed.diagnostics[0].column),
        (Some(2), Some(1))
    );
}

#[test]
fn into_result_gives_the_manifest_or_every_diagnostic() {
    let source = built().to_string_in(Format::Toml);
    assert!(
        parse(&source, Format::Toml, &ValidationContext::default())
            .into_result()
            .is_ok()
    );
    let err = parse("", Format::Json, &ValidationContext::default())
        .into_result()
        .unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(
        err[0].to_string(),
        "1:1: error[syntax] invalid JSON: expected a value (found the end of the input)"
    );
}

#[test]
fn serde_round_trips_for_storage() {
    // Other layers store manifests with serde (JSON); reading them back must
    // give the same manifest.
    let source = include_str!("fixtures/slack-notifier.toml");
    let m = parse(source, Format::Toml, &ValidationContext::default())
        .manifest
        .unwrap();
    let json = serde_json::to_string(&m).unwrap();
    let back: Manifest = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);
}
