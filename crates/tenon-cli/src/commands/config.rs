//! `tenon config get|set|unset`: a plugin's configuration. Secrets are
//! never shown: they read back as `********` and setting one prints no
//! value.

use std::collections::BTreeMap;
use std::io::Read;

use clap::Subcommand;
use serde::Serialize;
use serde_json::{Map, Value};
use tenon_engine::{ConfigReport, PluginEngine, PluginRecord};
use tenon_manifest::Code;

use crate::exit::{CommandResult, Failure};
use crate::output::{Output, warn};
use crate::session::{Boot, GlobalArgs, SECRET_KEY_ENV, find_plugin, json_or_string};

/// `tenon config` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Show a plugin's config (secrets as ********), or one key's value.
    #[command(after_help = "Examples:
  tenon config get tenon-examples/moderator
  tenon config get tenon-examples/moderator blocked_words")]
    Get {
        /// The plugin id (publisher/name).
        id: String,
        /// Only this key.
        key: Option<String>,
    },
    /// Set one key. VALUE is read by the key's declared type: a string
    /// key takes the text as it is (`123456` is the string "123456"); a
    /// number, boolean, array or object key reads it as JSON (`42`,
    /// `true`, `["a","b"]`, `{"k":1}`); an untyped key takes JSON when it
    /// parses, else the text. `-` reads it from stdin (keeps secrets out of
    /// shell history).
    #[command(after_help = "Examples:
  tenon config set tenon-examples/moderator blocked_words '[\"secret\"]'
  tenon config set tenon-examples/notifier webhook_url https://hooks.example.com/x
  printf %s \"$TOKEN\" | tenon config set tenon-examples/notifier token -")]
    Set {
        /// The plugin id (publisher/name).
        id: String,
        /// The key, as the manifest declares it.
        key: String,
        /// The value.
        value: String,
    },
    /// Remove keys, so that their defaults apply again.
    #[command(after_help = "Examples:
  tenon config unset tenon-examples/notifier webhook_url token")]
    Unset {
        /// The plugin id (publisher/name).
        id: String,
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

/// Runs a `tenon config` subcommand.
pub(crate) async fn run(command: ConfigCommand, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    global
        .with_engine(Boot::No, async |engine| match command {
            ConfigCommand::Get { id, key } => get(engine, &id, key.as_deref(), &output).await,
            ConfigCommand::Set { id, key, value } => {
                set(engine, global, &id, &key, &value, &output).await
            }
            ConfigCommand::Unset { id, keys } => unset(engine, &id, &keys, &output).await,
        })
        .await
}

/// Where a key's effective value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum ValueSource {
    /// The operator set it.
    Set,
    /// The manifest's default.
    Default,
    /// Nothing: the key has no value.
    Unset,
}

/// `config get ID` in JSON.
#[derive(Serialize)]
struct ConfigJson {
    id: String,
    values: BTreeMap<String, Value>,
    defaults: BTreeMap<String, Value>,
    missing: Vec<String>,
}

/// `config get ID KEY` in JSON.
#[derive(Serialize)]
struct KeyJson {
    id: String,
    key: String,
    value: Value,
    source: ValueSource,
    secret: bool,
}

/// Refuses a key the plugin does not declare (unless its schema admits
/// any), with the manifest's did-you-mean.
fn check_declared(record: &PluginRecord, key: &str) -> Result<(), Failure> {
    let spec = &record.manifest.config;
    if spec.keys().contains(&key) {
        return Ok(());
    }
    match spec.check_value(key, &Value::Null) {
        Err(diagnostic) if diagnostic.code == Code::UnknownConfigKey => Err(Failure::Operation(
            format!("{}: {}", record.id, diagnostic.message),
        )),
        _ => Ok(()),
    }
}

async fn get(engine: &PluginEngine, id: &str, key: Option<&str>, output: &Output) -> CommandResult {
    let record = find_plugin(engine, id).await?;
    let values = engine.config(&record.id).await?;
    let spec = &record.manifest.config;
    if let Some(key) = key {
        if !values.contains_key(key) {
            check_declared(&record, key)?;
        }
        let (value, source) = match (values.get(key), spec.default_value(key)) {
            (Some(value), _) => (value.clone(), ValueSource::Set),
            (None, Some(default)) => (default.clone(), ValueSource::Default),
            (None, None) => (Value::Null, ValueSource::Unset),
        };
        let json = KeyJson {
            id: record.id.to_string(),
            key: key.to_owned(),
            value,
            source,
            secret: spec.is_secret(key),
        };
        if output.is_json() {
            return output.json(&json);
        }
        return output.text(&match json.source {
            ValueSource::Unset => output.dim("(not set)"),
            _ => display(&json.value),
        });
    }
    let stored: Map<String, Value> = values.clone().into_iter().collect();
    let missing = spec.missing_required(&stored);
    let defaults: BTreeMap<String, Value> = spec
        .keys()
        .into_iter()
        .filter(|k| !values.contains_key(*k))
        .filter_map(|k| spec.default_value(k).map(|v| (k.to_owned(), v.clone())))
        .collect();
    let json = ConfigJson {
        id: record.id.to_string(),
        values,
        defaults,
        missing,
    };
    if output.is_json() {
        return output.json(&json);
    }
    let mut keys: Vec<String> = spec.keys().into_iter().map(str::to_owned).collect();
    keys.extend(
        json.values
            .keys()
            .filter(|k| !keys.contains(k))
            .cloned()
            .collect::<Vec<_>>(),
    );
    if keys.is_empty() {
        return output.text(&format!("{} declares no config", json.id));
    }
    let mut table = output.table(["KEY", "VALUE", "SOURCE"]);
    for key in &keys {
        let (value, source) = match (json.values.get(key), json.defaults.get(key)) {
            (Some(value), _) => (output.cell(display(value)), output.cell("set")),
            (None, Some(default)) => (output.cell(display(default)), output.cell("default")),
            (None, None) if json.missing.contains(key) => (
                output.cell("-"),
                output.verdict_cell("missing (required)", false),
            ),
            (None, None) => (output.cell("-"), output.cell("unset")),
        };
        table.add_row(vec![output.cell(key), value, source]);
    }
    output.text(&output.render(&mut table))
}

/// A value for people: strings bare, everything else as JSON.
fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn set(
    engine: &PluginEngine,
    global: &GlobalArgs,
    id: &str,
    key: &str,
    value: &str,
    output: &Output,
) -> CommandResult {
    let record = find_plugin(engine, id).await?;
    check_declared(&record, key)?;
    let secret = record.manifest.config.is_secret(key);
    if secret && !global.has_secret_key() {
        return Err(Failure::usage(format!(
            "cannot set the secret `{key}` of {}: a PostgreSQL registry keeps no key file, so give \
             the key secrets are encrypted with in {SECRET_KEY_ENV} (64 hex digits) or with \
             --secret-key-file FILE; every host sharing the registry needs the same key",
            record.id
        )));
    }
    let text = if value == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::usage(format!("cannot read the value from stdin: {e}")))?;
        text.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        if secret {
            warn(&format!(
                "`{key}` is a secret given as an argument: shell history and the process list keep it; give `-` and pipe it on stdin instead"
            ));
        }
        value.to_owned()
    };
    let ty = super::plugins::config_type(&record.manifest.config, key);
    let parsed = typed_value(&text, ty.as_deref()).map_err(|why| {
        Failure::refused(
            "invalid_config",
            format!("invalid config for {}: `{key}` {why}", record.id),
        )
    })?;
    let mut set = Map::new();
    set.insert(key.to_owned(), parsed.clone());
    let report = engine.configure(&record.id, set, &[]).await?;
    let what = if secret {
        format!("{key} (secret, not shown)")
    } else {
        format!("{key} = {}", display(&parsed))
    };
    print_report(&report, &format!("Set {what}"), output)
}

/// A value from the command line, read by the key's declared JSON type: a
/// string key takes the text itself (or the string a JSON string literal
/// holds); other typed keys read JSON; untyped keys read JSON when it
/// parses, else take the text.
fn typed_value(text: &str, ty: Option<&str>) -> Result<Value, String> {
    match ty {
        Some("string") => Ok(match serde_json::from_str::<Value>(text) {
            Ok(Value::String(inner)) if text.trim_start().starts_with('"') => Value::String(inner),
            _ => Value::String(text.to_owned()),
        }),
        Some(ty @ ("integer" | "number" | "boolean" | "array" | "object")) => {
            serde_json::from_str(text).map_err(|e| {
                format!(
                    "is declared {ty}, and `{text}` is not {}: {}",
                    match ty {
                        "integer" => "an integer (write 42)",
                        "number" => "a number (write 4.2)",
                        "boolean" => "a boolean (write true or false)",
                        "array" => "a JSON array (write [\"a\", \"b\"])",
                        _ => "a JSON object (write {\"k\": 1})",
                    },
                    crate::session::strip_position(&e)
                )
            })
        }
        _ => Ok(json_or_string(text)),
    }
}

async fn unset(engine: &PluginEngine, id: &str, keys: &[String], output: &Output) -> CommandResult {
    let record = find_plugin(engine, id).await?;
    for key in keys {
        check_declared(&record, key)?;
    }
    let report = engine.configure(&record.id, Map::new(), keys).await?;
    print_report(&report, &format!("Unset {}", keys.join(", ")), output)
}

/// `config set` and `config unset` in JSON.
#[derive(Serialize)]
struct ChangeJson<'a> {
    id: String,
    state: &'static str,
    values: &'a BTreeMap<String, Value>,
    missing: &'a [String],
    delivered: bool,
}

fn print_report(report: &ConfigReport, done: &str, output: &Output) -> CommandResult {
    if output.is_json() {
        return output.json(&ChangeJson {
            id: report.id.to_string(),
            state: report.state.as_str(),
            values: &report.values,
            missing: &report.missing,
            delivered: report.delivered,
        });
    }
    let mut text = format!(
        "{} on {} ({})\n",
        output.good(done),
        output.bold(report.id.as_str()),
        output.state(report.state)
    );
    if !report.missing.is_empty() {
        text.push_str(&format!(
            "  {} {}\n",
            output.notice("required config still missing:"),
            report.missing.join(", ")
        ));
    }
    if report.delivered {
        text.push_str("  delivered to the running plugin\n");
    }
    output.text(&text)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::typed_value;

    #[test]
    fn values_by_declared_type() {
        let cases: &[(&str, Option<&str>, Result<Value, &str>)] = &[
            ("123456", Some("string"), Ok(json!("123456"))),
            ("true", Some("string"), Ok(json!("true"))),
            ("\"quoted\"", Some("string"), Ok(json!("quoted"))),
            ("[1]", Some("string"), Ok(json!("[1]"))),
            ("plain words", Some("string"), Ok(json!("plain words"))),
            ("42", Some("integer"), Ok(json!(42))),
            ("4.5", Some("number"), Ok(json!(4.5))),
            (
                "forty",
                Some("integer"),
                Err("is declared integer, and `forty` is not an integer"),
            ),
            (
                "yes",
                Some("boolean"),
                Err("is not a boolean (write true or false)"),
            ),
            ("[\"a\"]", Some("array"), Ok(json!(["a"]))),
            ("a,b", Some("array"), Err("is not a JSON array")),
            ("42", None, Ok(json!(42))),
            ("words", None, Ok(json!("words"))),
        ];
        for (text, ty, expected) in cases {
            let got = typed_value(text, *ty);
            match expected {
                Ok(value) => assert_eq!(got.as_ref(), Ok(value), "{text} as {ty:?}"),
                Err(part) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(part)),
                    "{text} as {ty:?}: {got:?}"
                ),
            }
        }
    }
}
