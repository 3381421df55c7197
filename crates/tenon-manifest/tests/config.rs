//! Config values against a manifest's `[config]`, in both forms.

use serde_json::{Map, Value, json};
use tenon_manifest::{Code, ConfigSpec, Format, REDACTED, ValidationContext, parse};

fn spec(toml: &str) -> ConfigSpec {
    let source = format!(
        "manifest_version = 1\n[plugin]\nid = \"acme/c\"\nname = \"C\"\nversion = \"1.0.0\"\ndescription = \"d\"\nlicense = \"MIT\"\n[engine]\ntenon = \"^1\"\n[runtime]\nkind = \"native\"\n{toml}"
    );
    let parsed = parse(&source, Format::Toml, &ValidationContext::default());
    let errors: Vec<_> = parsed.errors().collect();
    assert!(errors.is_empty(), "{errors:#?}");
    parsed.manifest.unwrap().config
}

const FIELDS: &str = r#"
[permissions]
secrets = ["token"]
[[config.fields]]
key = "channel"
type = "string"
required = true
min_length = 2
[[config.fields]]
key = "token"
type = "string"
required = true
secret = true
[[config.fields]]
key = "retries"
type = "integer"
default = 3
minimum = 0
maximum = 10
[[config.fields]]
key = "mode"
type = "string"
enum = ["fast", "safe"]
default = "safe"
"#;

const SCHEMA: &str = r#"
[permissions]
secrets = ["token"]
[config.schema]
type = "object"
required = ["channel", "token"]
[config.schema.properties.channel]
type = "string"
minLength = 2
[config.schema.properties.token]
type = "string"
writeOnly = true
[config.schema.properties.retries]
type = "integer"
minimum = 0
maximum = 10
default = 3
[config.schema.properties.mode]
type = "string"
enum = ["fast", "safe"]
default = "safe"
[config.schema.properties.servers]
type = "array"
items = { type = "object", properties = { host = { type = "string" } }, required = ["host"] }
"#;

fn values(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// `check(form, input, expected)`: the resolved values, or the diagnostics
/// as `code path: message` lines.
fn check(spec: &ConfigSpec, input: Value, expected: Result<Value, &[&str]>) {
    let got = spec
        .validate(&values(input.clone()))
        .map(|r| Value::Object(r.values))
        .map_err(|ds| {
            ds.iter()
                .map(|d| format!("{} {}: {}", d.code, d.path, d.message))
                .collect::<Vec<_>>()
        });
    let expected =
        expected.map_err(|lines| lines.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>());
    pretty_assertions::assert_eq!(got, expected, "input {input}");
}

#[test]
fn both_forms_resolve_the_same() {
    for form in [FIELDS, SCHEMA] {
        let spec = spec(form);
        check(
            &spec,
            json!({"channel": "#alerts", "token": "xoxb-1"}),
            Ok(json!({"channel": "#alerts", "token": "xoxb-1", "retries": 3, "mode": "safe"})),
        );
        check(
            &spec,
            json!({"token": "t", "mode": "slow", "retries": "3", "chanel": "#a"}),
            Err(&[
                "missing-config channel: `channel` is required: set a value for it",
                "unknown-config-key chanel: `chanel` is not a config key of this plugin (did you mean `channel`?); it declares: channel, token, retries, mode"
                    .trim_end(),
                "invalid-config-value retries: `retries` must be an integer, not a string",
                "invalid-config-value mode: `mode` is \"slow\" but must be one of \"fast\", \"safe\"",
            ][..]
                .iter()
                .map(|s| if form == SCHEMA && s.starts_with("unknown") { "unknown-config-key chanel: `chanel` is not a config key of this plugin (did you mean `channel`?); it declares: channel, token, retries, mode, servers" } else { s })
                .collect::<Vec<_>>()),
        );
        check(
            &spec,
            json!({"channel": "#", "token": "t", "retries": 11}),
            Err(&[
                "invalid-config-value channel: `channel` has 1 characters but needs at least 2",
                "invalid-config-value retries: `retries` is 11 but must be at most 10",
            ]),
        );
    }
}

#[test]
fn schema_form_checks_nested_values() {
    let spec = spec(SCHEMA);
    check(
        &spec,
        json!({"channel": "#a", "token": "t", "servers": [{"host": "a"}, {"hots": "b"}]}),
        Err(&[
            "invalid-config-value servers[1].host: `servers[1].host` is required",
            "invalid-config-value servers[1].hots: `servers[1].hots` is not allowed here (did you mean `host`?); allowed: host",
        ]),
    );
}

#[test]
fn required_keys_gate_activation() {
    for form in [FIELDS, SCHEMA] {
        let spec = spec(form);
        assert_eq!(spec.missing_required(&Map::new()), ["channel", "token"]);
        assert_eq!(
            spec.missing_required(&values(json!({"channel": "#a"}))),
            ["token"]
        );
        assert!(
            spec.missing_required(&values(json!({"channel": "#a", "token": "t"})))
                .is_empty()
        );
    }
}

#[test]
fn secrets_are_marked_and_redacted() {
    for form in [FIELDS, SCHEMA] {
        let spec = spec(form);
        assert!(spec.is_secret("token"));
        assert!(!spec.is_secret("channel"));
        assert!(!spec.is_secret("nope"));
        let resolved = spec
            .validate(&values(json!({"channel": "#a", "token": "xoxb-1"})))
            .unwrap();
        assert_eq!(resolved.secret_keys.iter().collect::<Vec<_>>(), ["token"]);
        assert_eq!(resolved.redacted()["token"], json!(REDACTED));
        assert_eq!(resolved.redacted()["channel"], json!("#a"));
        assert!(!resolved.without_secrets().contains_key("token"));
        assert_eq!(resolved.without_secrets()["retries"], json!(3));
    }
}

#[test]
fn one_key_at_a_time() {
    for form in [FIELDS, SCHEMA] {
        let spec = spec(form);
        assert_eq!(spec.check_value("retries", &json!(4)), Ok(()));
        let d = spec.check_value("retries", &json!(-1)).unwrap_err();
        assert_eq!(
            (d.code, d.path.as_str()),
            (Code::InvalidConfigValue, "retries")
        );
        assert_eq!(d.message, "`retries` is -1 but must be at least 0");
        let d = spec.check_value("retris", &json!(1)).unwrap_err();
        assert_eq!(d.code, Code::UnknownConfigKey);
        assert!(
            d.message.contains("did you mean `retries`?"),
            "{}",
            d.message
        );
        assert_eq!(spec.keys()[..4], ["channel", "token", "retries", "mode"]);
    }
}

#[test]
fn additional_properties_when_the_schema_allows_them() {
    let spec = spec(
        r#"
[config.schema]
type = "object"
properties = { a = { type = "string" } }
additionalProperties = { type = "integer" }
"#,
    );
    check(
        &spec,
        json!({"a": "x", "b": 2}),
        Ok(json!({"a": "x", "b": 2})),
    );
    check(
        &spec,
        json!({"b": "two"}),
        Err(&["invalid-config-value b: `b` must be an integer, not a string"]),
    );
}

#[test]
fn config_defaults_table_overrides_property_defaults() {
    let spec = spec(
        r#"
[config.schema]
type = "object"
properties = { level = { type = "string", default = "info" } }
[config.defaults]
level = "warn"
"#,
    );
    check(&spec, json!({}), Ok(json!({"level": "warn"})));
    assert_eq!(spec.default_value("level"), Some(&json!("warn")));
}

#[test]
fn no_config_refuses_every_key() {
    let spec = ConfigSpec::default();
    check(
        &spec,
        json!({"x": 1}),
        Err(&[
            "unknown-config-key x: `x` is not a config key of this plugin; this plugin declares no config",
        ]),
    );
    assert!(spec.validate(&Map::new()).unwrap().values.is_empty());
}

/// `[config.environments.NAME]`: in that environment its values replace the
/// defaults (and satisfy required keys); outside it, or without one, the
/// base applies; a value the operator set always wins. Both forms.
#[test]
fn environments_override_the_defaults_where_selected() {
    for (form, environments) in [
        (
            FIELDS,
            "[config.environments.production]\nretries = 9\nchannel = \"#prod\"\n[config.environments.development]\nmode = \"fast\"\n",
        ),
        (
            SCHEMA,
            "[config.environments.production]\nretries = 9\nchannel = \"#prod\"\n[config.environments.development]\nmode = \"fast\"\n",
        ),
    ] {
        let spec = spec(&format!("{form}{environments}"));
        let cases: [(Option<&str>, Value, Value); 5] = [
            (
                None,
                json!({"channel": "#a", "token": "t"}),
                json!({"channel": "#a", "token": "t", "retries": 3, "mode": "safe"}),
            ),
            (
                Some("production"),
                json!({"token": "t"}),
                json!({"channel": "#prod", "token": "t", "retries": 9, "mode": "safe"}),
            ),
            (
                Some("production"),
                json!({"token": "t", "retries": 1}),
                json!({"channel": "#prod", "token": "t", "retries": 1, "mode": "safe"}),
            ),
            (
                Some("development"),
                json!({"channel": "#a", "token": "t"}),
                json!({"channel": "#a", "token": "t", "retries": 3, "mode": "fast"}),
            ),
            // An environment the manifest does not name: the base.
            (
                Some("staging"),
                json!({"channel": "#a", "token": "t"}),
                json!({"channel": "#a", "token": "t", "retries": 3, "mode": "safe"}),
            ),
        ];
        for (environment, input, expected) in cases {
            check(&spec.for_environment(environment), input, Ok(expected));
        }
        assert_eq!(
            spec.for_environment(Some("production"))
                .missing_required(&values(json!({}))),
            ["token"],
            "the production channel satisfies the required key"
        );
        assert_eq!(
            spec.missing_required(&values(json!({}))),
            ["channel", "token"]
        );
    }
}

/// Environments are validated like defaults: declared keys, values that
/// fit, names that can be selected, and never a secret's value.
#[test]
fn bad_environments_are_refused_with_their_place() {
    let cases: [(&str, &[&str]); 5] = [
        (
            "[config.environments.production]\nretries = 11\n",
            &[
                "invalid-default config.environments.production.retries:37: the `production` value does not fit: `retries` is 11 but must be at most 10",
            ],
        ),
        (
            "[config.environments.production]\nretry = 1\n",
            &[
                "unknown-config-key config.environments.production.retry:37: `retry` is not a config key (did you mean `retries`?): an environment overrides declared keys",
            ],
        ),
        (
            "[config.environments.production]\ntoken = \"xoxb-1\"\n",
            &[
                "invalid-default config.environments.production.token:37: `token` is a secret: its value never belongs in a manifest; set it with `tenon config set`",
            ],
        ),
        (
            "[config.environments.Prod]\nretries = 1\n",
            &[
                "invalid-value config.environments.Prod:36: `Prod` cannot name an environment: use 1-32 of a-z, 0-9, '_' or '-', such as `production`",
            ],
        ),
        (
            "[config]\nenvironments = { production = 3 }\n",
            &[
                "wrong-type config.environments.production:13: expected a table of config keys to values, found an integer",
            ],
        ),
    ];
    for (environments, expected) in cases {
        let form = if environments.starts_with("[config]") {
            "[[config.fields]]\nkey = \"retries\"\ntype = \"integer\"\n".to_owned()
        } else {
            FIELDS.to_owned()
        };
        let text = if environments.starts_with("[config]") {
            format!("{environments}{form}")
        } else {
            format!("{form}{environments}")
        };
        let source = format!(
            "manifest_version = 1\n[plugin]\nid = \"acme/c\"\nname = \"C\"\nversion = \"1.0.0\"\ndescription = \"d\"\nlicense = \"MIT\"\n[engine]\ntenon = \"^1\"\n[runtime]\nkind = \"native\"\n{text}"
        );
        let parsed = parse(&source, Format::Toml, &ValidationContext::default());
        let got: Vec<String> = parsed
            .errors()
            .map(|d| {
                format!(
                    "{} {}:{}: {}",
                    d.code,
                    d.path,
                    d.line.unwrap_or(0),
                    d.message
                )
            })
            .collect();
        pretty_assertions::assert_eq!(got, expected, "{text}");
    }
}
