//! The input formats: the index file, `ID@REQ` requirements, strategies.

use tenon_manifest::{DependencyScope, VersionReq};
use tenon_resolver::{Index, IndexDependency, Requirement, Strategy};

/// Parses `json` as an index; `Ok` holds the dependencies of `acme/a
/// 1.0.0` as `(id, req, optional, scope)` plus its engine, `Err` the error.
fn check_index(json: &str, expected: Result<&str, &str>) {
    let actual = serde_json::from_str::<Index>(json)
        .map(|index| {
            let entry = index
                .version("acme/a", &"1.0.0".parse().expect("version"))
                .expect("acme/a 1.0.0");
            let mut text: Vec<String> = entry
                .dependencies
                .iter()
                .map(|(id, d)| {
                    format!(
                        "{id} {} optional={} {}",
                        d.version,
                        d.optional,
                        d.scope.as_str()
                    )
                })
                .collect();
            text.push(format!(
                "tenon={:?} host={:?} yanked={}",
                entry.engine.tenon.as_ref().map(ToString::to_string),
                entry.engine.host.as_ref().map(ToString::to_string),
                entry.yanked
            ));
            text.join("; ")
        })
        .map_err(|e| e.to_string());
    assert_eq!(
        actual,
        expected.map(str::to_owned).map_err(str::to_owned),
        "{json}"
    );
}

#[test]
fn index_files() {
    check_index(
        r#"{"plugins": {"acme/a": {"versions": {"1.0.0": {
            "dependencies": {"acme/b": {"version": "^1", "optional": false, "scope": "runtime"}},
            "engine": {"tenon": "^1", "host": ">=3"}, "yanked": false}}}}}"#,
        Ok("acme/b ^1 optional=false runtime; tenon=Some(\"^1\") host=Some(\">=3\") yanked=false"),
    );
    check_index(
        r#"{"plugins": {"acme/a": {"versions": {"1.0.0": {
            "dependencies": {"acme/b": "1.2", "acme/c": {}, "acme/d": {"scope": "peer", "optional": true}},
            "yanked": true}}}}}"#,
        Ok(
            "acme/b ^1.2 optional=false runtime; acme/c * optional=false runtime; acme/d * optional=true peer; tenon=None host=None yanked=true",
        ),
    );
    check_index(
        r#"{"plugins": {"acme/a": {"versions": {"1.0.0": {"engine": {"host": "^2"}}}}}}"#,
        Ok("tenon=None host=Some(\"^2\") yanked=false"),
    );
    check_index(
        r#"{"plugins": {"acme/a": {"versions": {"1.0.0": {"dependencies": {"acme/b": {"optinal": true}}}}}}}"#,
        Err(
            "unknown field `optinal`, expected one of `version`, `optional`, `scope` at line 1 column 84",
        ),
    );
    check_index(
        r#"{"plugins": {"acme/a": {"versions": {"1.0.0": {"dependencies": {"acme/b": "one"}}}}}}"#,
        Err(
            "`one` is not a version requirement: unexpected character 'o' while parsing major version number at line 1 column 79",
        ),
    );
    check_index(
        r#"{"plugins": {"acme/a": {"versions": {"1.0.0": {"dependencies": {"acme/b": {"scope": "build"}}}}}}}"#,
        Err(
            "unknown variant `build`, expected one of `runtime`, `peer`, `dev` at line 1 column 91",
        ),
    );
    check_index(
        r#"{"plugins": {"acme/a": {"versions": {"1.0": {}}}}}"#,
        Err("unexpected end of input while parsing minor version number at line 1 column 42"),
    );
    check_index(
        r#"{"plugins": {"Acme/a": {"versions": {}}}}"#,
        Err(
            "the publisher of `Acme/a` may hold only lowercase ascii letters, digits and '-', not 'A' at line 1 column 21",
        ),
    );
    check_index(
        r#"{"plugin": {}}"#,
        Err("unknown field `plugin`, expected `plugins` at line 1 column 9"),
    );
}

#[test]
fn index_round_trips() {
    let json = r#"{"plugins":{"acme/a":{"versions":{"1.0.0":{"dependencies":{"acme/b":{"version":"^1","optional":true,"scope":"peer"}},"engine":{"tenon":"^1"},"yanked":true},"1.1.0":{}}}}}"#;
    let index: Index = serde_json::from_str(json).expect("valid");
    assert_eq!(serde_json::to_string(&index).expect("serializes"), json);
    let mut built = Index::new();
    let mut entry = tenon_resolver::IndexVersion::default();
    entry.dependencies.insert(
        "acme/b".parse().expect("id"),
        IndexDependency::peer("^1".parse().expect("req")).optional(),
    );
    entry.engine.tenon = Some("^1".parse().expect("req"));
    entry.yanked = true;
    built.insert(
        "acme/a".parse().expect("id"),
        "1.0.0".parse().expect("v"),
        entry,
    );
    built.insert(
        "acme/a".parse().expect("id"),
        "1.1.0".parse().expect("v"),
        Default::default(),
    );
    assert_eq!(built, index);
    assert_eq!((built.len(), built.version_count()), (1, 2));
}

#[test]
fn requirements() {
    let check = |input: &str, expected: Result<(&str, &str), &str>| {
        let actual = input
            .parse::<Requirement>()
            .map(|r| (r.id.to_string(), r.version.to_string()))
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|(id, req)| (id.to_owned(), req.to_owned()))
            .map_err(str::to_owned);
        assert_eq!(actual, expected, "{input}");
    };
    check("acme/a", Ok(("acme/a", "*")));
    check("acme/a@^1.2", Ok(("acme/a", "^1.2")));
    check("acme/a@1.2.3", Ok(("acme/a", "^1.2.3")));
    check("acme/a@>=1, <2", Ok(("acme/a", ">=1, <2")));
    check("acme/a@=2.0.0-rc.1", Ok(("acme/a", "=2.0.0-rc.1")));
    check(
        "acme",
        Err("`acme`: `acme` is not of the form publisher/name"),
    );
    check(
        "acme/a@one",
        Err(
            "`acme/a@one`: `one` is not a version requirement (unexpected character 'o' while parsing major version number); write for example acme/a@^1.2",
        ),
    );
    assert_eq!(
        Requirement::new("acme/a".parse().expect("id"), VersionReq::STAR).to_string(),
        "acme/a@*"
    );
}

#[test]
fn strategies() {
    for strategy in Strategy::ALL {
        assert_eq!(strategy.as_str().parse::<Strategy>(), Ok(strategy));
    }
    assert_eq!(
        "newest".parse::<Strategy>().map_err(|e| e.to_string()),
        Err("`newest` is not a strategy: use strict, latest or manual".to_owned())
    );
    assert_eq!(Strategy::default(), Strategy::Latest);
    assert_eq!(DependencyScope::default(), DependencyScope::Runtime);
}
