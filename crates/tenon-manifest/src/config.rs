//! Config values against a manifest's `[config]`: defaults, types, required
//! keys, enums, ranges and secrets, in either form (simple fields or a JSON
//! Schema subset).
//!
//! The JSON Schema subset: `type` (a name or a list of names), `properties`,
//! `required`, `additionalProperties` (a boolean or a schema; **absent means
//! false**: unknown keys are refused, as everywhere in Tenon), `items`,
//! `enum`, `const`, `default`, `minimum`, `maximum`, `exclusiveMinimum`,
//! `exclusiveMaximum`, `minLength`, `maxLength`, `minItems`, `maxItems`,
//! `uniqueItems`, and the markers `secret: true` / `writeOnly: true`.
//! Annotations (`title`, `description`, `$schema`, `$id`, `$comment`,
//! `examples`, `format`, `deprecated`, `readOnly`) are accepted and ignored;
//! other keywords are reported as not enforced.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::model::{ConfigField, ConfigSpec, ConfigType};
use crate::path::{index, join};

/// What a secret value is replaced with when shown.
pub const REDACTED: &str = "********";

/// A config after [`ConfigSpec::validate`]: every declared key with a value
/// or a default, and which keys are secret.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedConfig {
    /// The values, declared keys first in declaration order.
    pub values: Map<String, Value>,
    /// The keys whose values are secrets.
    pub secret_keys: BTreeSet<String>,
}

impl ResolvedConfig {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// The values with every secret replaced by [`REDACTED`]: safe to show
    /// or log.
    pub fn redacted(&self) -> Map<String, Value> {
        self.values
            .iter()
            .map(|(k, v)| {
                let v = if self.secret_keys.contains(k) {
                    Value::String(REDACTED.to_owned())
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// The values without the secrets (to store apart from them).
    pub fn without_secrets(&self) -> Map<String, Value> {
        self.values
            .iter()
            .filter(|(k, _)| !self.secret_keys.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The declaration of one top-level key, in either form.
#[derive(Clone, Copy)]
enum KeySpec<'a> {
    Field(&'a ConfigField),
    Schema(&'a Value),
}

impl ConfigSpec {
    /// The declared keys, in declaration order.
    pub fn keys(&self) -> Vec<&str> {
        if !self.fields.is_empty() {
            return self.fields.iter().map(|f| f.key.as_str()).collect();
        }
        self.properties()
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Whether `key`'s value is a secret (`secret = true` on a field;
    /// `secret: true` or `writeOnly: true` on a schema property).
    pub fn is_secret(&self, key: &str) -> bool {
        match self.key_spec(key) {
            Some(KeySpec::Field(f)) => f.secret,
            Some(KeySpec::Schema(s)) => is_true(s, "secret") || is_true(s, "writeOnly"),
            None => false,
        }
    }

    /// Whether `key` must have a value before the plugin is activated.
    pub fn is_required(&self, key: &str) -> bool {
        match self.key_spec(key) {
            Some(KeySpec::Field(f)) => f.required,
            Some(KeySpec::Schema(_)) => self
                .schema
                .as_ref()
                .and_then(|s| s.get("required"))
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|k| k.as_str() == Some(key))),
            None => false,
        }
    }

    /// The value `key` takes when none is set: `config.defaults`, else the
    /// field's or property's `default`.
    pub fn default_value(&self, key: &str) -> Option<&Value> {
        if let Some(v) = self.defaults.get(key) {
            return Some(v);
        }
        match self.key_spec(key)? {
            KeySpec::Field(f) => f.default.as_ref(),
            KeySpec::Schema(s) => s.get("default"),
        }
    }

    /// The required keys that have neither a value in `values` nor a
    /// default: while this is not empty, the plugin waits in
    /// `pending_config`.
    pub fn missing_required(&self, values: &Map<String, Value>) -> Vec<String> {
        self.keys()
            .into_iter()
            .filter(|k| {
                self.is_required(k) && !values.contains_key(*k) && self.default_value(k).is_none()
            })
            .map(str::to_owned)
            .collect()
    }

    /// Checks one value for one key (for setting a single key).
    pub fn check_value(&self, key: &str, value: &Value) -> Result<(), Diagnostic> {
        let mut problems = Vec::new();
        match self.key_spec(key) {
            Some(spec) => check_key(spec, value, key, &mut problems),
            None => match self.additional() {
                Additional::Refused => {
                    return Err(self.unknown_key(key));
                }
                Additional::Any => {}
                Additional::Schema(s) => check_schema(s, value, key, &mut problems),
            },
        }
        match problems.into_iter().next() {
            Some(p) => Err(p.into_diagnostic(Code::InvalidConfigValue)),
            None => Ok(()),
        }
    }

    /// Checks a whole config: unknown keys refused (with a suggestion),
    /// types, enums and ranges checked, required keys present; defaults are
    /// applied. Every problem is reported.
    pub fn validate(&self, values: &Map<String, Value>) -> Result<ResolvedConfig, Vec<Diagnostic>> {
        let mut problems = Vec::new();
        let mut errors = Vec::new();
        let mut resolved = ResolvedConfig::default();
        let keys = self.keys();
        for key in &keys {
            let spec = self.key_spec(key);
            match values.get(*key) {
                Some(value) => {
                    if let Some(spec) = spec {
                        check_key(spec, value, key, &mut problems);
                    }
                    resolved.values.insert((*key).to_owned(), value.clone());
                }
                None => match self.default_value(key) {
                    Some(default) => {
                        resolved.values.insert((*key).to_owned(), default.clone());
                    }
                    None if self.is_required(key) => errors.push(Diagnostic::error(
                        Code::MissingConfig,
                        *key,
                        format!("`{key}` is required: set a value for it"),
                    )),
                    None => {}
                },
            }
            if self.is_secret(key) {
                resolved.secret_keys.insert((*key).to_owned());
            }
        }
        for (key, value) in values {
            if keys.contains(&key.as_str()) {
                continue;
            }
            match self.additional() {
                Additional::Refused => errors.push(self.unknown_key(key)),
                Additional::Any => {
                    resolved.values.insert(key.clone(), value.clone());
                }
                Additional::Schema(s) => {
                    check_schema(s, value, key, &mut problems);
                    resolved.values.insert(key.clone(), value.clone());
                }
            }
        }
        errors.extend(
            problems
                .into_iter()
                .map(|p| p.into_diagnostic(Code::InvalidConfigValue)),
        );
        if errors.is_empty() {
            Ok(resolved)
        } else {
            Err(errors)
        }
    }

    fn properties(&self) -> Option<&Map<String, Value>> {
        self.schema.as_ref()?.get("properties")?.as_object()
    }

    fn key_spec(&self, key: &str) -> Option<KeySpec<'_>> {
        if !self.fields.is_empty() {
            return self
                .fields
                .iter()
                .find(|f| f.key == key)
                .map(KeySpec::Field);
        }
        self.properties()?.get(key).map(KeySpec::Schema)
    }

    fn additional(&self) -> Additional<'_> {
        match self
            .schema
            .as_ref()
            .and_then(|s| s.get("additionalProperties"))
        {
            Some(Value::Bool(true)) => Additional::Any,
            Some(s @ Value::Object(_)) if self.fields.is_empty() => Additional::Schema(s),
            _ => Additional::Refused,
        }
    }

    fn unknown_key(&self, key: &str) -> Diagnostic {
        let keys = self.keys();
        let hint = did_you_mean(key, keys.iter().copied());
        let known = if keys.is_empty() {
            "this plugin declares no config".to_owned()
        } else {
            format!("it declares: {}", keys.join(", "))
        };
        Diagnostic::error(
            Code::UnknownConfigKey,
            key,
            format!("`{key}` is not a config key of this plugin{hint}; {known}"),
        )
    }
}

enum Additional<'a> {
    Refused,
    Any,
    Schema(&'a Value),
}

fn is_true(schema: &Value, keyword: &str) -> bool {
    schema.get(keyword) == Some(&Value::Bool(true))
}

/// A problem with a value, before it becomes a diagnostic.
struct Problem {
    path: String,
    message: String,
}

impl Problem {
    fn into_diagnostic(self, code: Code) -> Diagnostic {
        Diagnostic::error(code, self.path, self.message)
    }
}

fn push(out: &mut Vec<Problem>, path: &str, message: String) {
    out.push(Problem {
        path: path.to_owned(),
        message,
    });
}

/// `a string`, `an integer`… of a JSON value.
pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn show(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 60 {
        format!("{}…", &text[..text.floor_char_boundary(57)])
    } else {
        text
    }
}

fn check_key(spec: KeySpec<'_>, value: &Value, path: &str, out: &mut Vec<Problem>) {
    match spec {
        KeySpec::Field(field) => check_field(field, value, path, out),
        KeySpec::Schema(schema) => check_schema(schema, value, path, out),
    }
}

fn check_field(field: &ConfigField, value: &Value, path: &str, out: &mut Vec<Problem>) {
    if !field.ty.admits(value) {
        push(
            out,
            path,
            format!(
                "`{path}` must be {}, not {}",
                article(field.ty.as_str()),
                describe(value)
            ),
        );
        return;
    }
    if let Some(allowed) = &field.allowed {
        check_enum(allowed, value, path, out);
    }
    check_bounds(
        &Bounds {
            minimum: field.minimum,
            maximum: field.maximum,
            exclusive_minimum: None,
            exclusive_maximum: None,
            min_length: field.min_length,
            max_length: field.max_length,
        },
        value,
        path,
        out,
    );
}

fn article(ty: &str) -> String {
    match ty {
        "integer" | "array" | "object" => format!("an {ty}"),
        _ => format!("a {ty}"),
    }
}

fn check_enum(allowed: &[Value], value: &Value, path: &str, out: &mut Vec<Problem>) {
    if !allowed.contains(value) {
        let list = allowed.iter().map(show).collect::<Vec<_>>().join(", ");
        push(
            out,
            path,
            format!("`{path}` is {} but must be one of {list}", show(value)),
        );
    }
}

struct Bounds {
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: Option<f64>,
    exclusive_maximum: Option<f64>,
    min_length: Option<u64>,
    max_length: Option<u64>,
}

fn check_bounds(b: &Bounds, value: &Value, path: &str, out: &mut Vec<Problem>) {
    if let Some(x) = value.as_f64() {
        if let Some(min) = b.minimum.filter(|min| x < *min) {
            push(
                out,
                path,
                format!("`{path}` is {x} but must be at least {min}"),
            );
        }
        if let Some(max) = b.maximum.filter(|max| x > *max) {
            push(
                out,
                path,
                format!("`{path}` is {x} but must be at most {max}"),
            );
        }
        if let Some(min) = b.exclusive_minimum.filter(|min| x <= *min) {
            push(
                out,
                path,
                format!("`{path}` is {x} but must be more than {min}"),
            );
        }
        if let Some(max) = b.exclusive_maximum.filter(|max| x >= *max) {
            push(
                out,
                path,
                format!("`{path}` is {x} but must be less than {max}"),
            );
        }
    }
    let (len, unit) = match value {
        Value::String(s) => (s.chars().count() as u64, "characters"),
        Value::Array(a) => (a.len() as u64, "items"),
        _ => return,
    };
    if let Some(min) = b.min_length.filter(|min| len < *min) {
        push(
            out,
            path,
            format!("`{path}` has {len} {unit} but needs at least {min}"),
        );
    }
    if let Some(max) = b.max_length.filter(|max| len > *max) {
        push(
            out,
            path,
            format!("`{path}` has {len} {unit} but may have at most {max}"),
        );
    }
}

const SCHEMA_TYPES: [&str; 7] = [
    "string", "integer", "number", "boolean", "array", "object", "null",
];

fn schema_type_admits(ty: &str, value: &Value) -> bool {
    match ty {
        "null" => value.is_null(),
        other => match <ConfigType as crate::model::Keyword>::from_keyword(other) {
            Some(t) => t.admits(value),
            None => false,
        },
    }
}

/// Checks `value` against a schema of the supported subset.
fn check_schema(schema: &Value, value: &Value, path: &str, out: &mut Vec<Problem>) {
    let Some(s) = schema.as_object() else {
        return;
    };
    if let Some(ty) = s.get("type") {
        let types: Vec<&str> = match ty {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        // Unknown type names are reported by the shape check, not here.
        let types: Vec<&str> = types
            .into_iter()
            .filter(|t| SCHEMA_TYPES.contains(t))
            .collect();
        if !types.is_empty() && !types.iter().any(|t| schema_type_admits(t, value)) {
            let expected = types
                .iter()
                .map(|t| article(t))
                .collect::<Vec<_>>()
                .join(" or ");
            push(
                out,
                path,
                format!("`{path}` must be {expected}, not {}", describe(value)),
            );
            return;
        }
    }
    if let Some(Value::Array(allowed)) = s.get("enum") {
        check_enum(allowed, value, path, out);
    }
    if let Some(expected) = s.get("const")
        && expected != value
    {
        push(out, path, format!("`{path}` must be {}", show(expected)));
    }
    let num = |k: &str| s.get(k).and_then(Value::as_f64);
    let len = |k: &str| s.get(k).and_then(Value::as_u64);
    let is_string = value.is_string();
    check_bounds(
        &Bounds {
            minimum: num("minimum"),
            maximum: num("maximum"),
            exclusive_minimum: num("exclusiveMinimum"),
            exclusive_maximum: num("exclusiveMaximum"),
            min_length: if is_string {
                len("minLength")
            } else {
                len("minItems")
            },
            max_length: if is_string {
                len("maxLength")
            } else {
                len("maxItems")
            },
        },
        value,
        path,
        out,
    );
    match value {
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_schema(item_schema, item, &index(path, i), out);
                }
            }
            if is_true(schema, "uniqueItems") {
                for (i, item) in items.iter().enumerate() {
                    if items[..i].contains(item) {
                        push(
                            out,
                            &index(path, i),
                            format!(
                                "{} is listed twice, but the items must be unique",
                                show(item)
                            ),
                        );
                    }
                }
            }
        }
        Value::Object(map) => {
            let props = s.get("properties").and_then(Value::as_object);
            if let Some(Value::Array(required)) = s.get("required") {
                for key in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(key) {
                        push(
                            out,
                            &join(path, key),
                            format!("`{}` is required", join(path, key)),
                        );
                    }
                }
            }
            for (key, item) in map {
                let item_path = join(path, key);
                match props.and_then(|p| p.get(key)) {
                    Some(prop) => check_schema(prop, item, &item_path, out),
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(true)) => {}
                        Some(extra @ Value::Object(_)) => {
                            check_schema(extra, item, &item_path, out)
                        }
                        _ => {
                            let known = props
                                .map(|p| p.keys().map(String::as_str).collect::<Vec<_>>())
                                .unwrap_or_default();
                            let hint = did_you_mean(key, known.iter().copied());
                            push(
                                out,
                                &item_path,
                                format!(
                                    "`{item_path}` is not allowed here{hint}; allowed: {}",
                                    known.join(", ")
                                ),
                            );
                        }
                    },
                }
            }
        }
        _ => {}
    }
}

/// A JSON Schema of the subset config schemas use (see the module's
/// header), checked once and then used to check values: the one validator
/// behind config schemas and the host services' input and output schemas.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueSchema {
    schema: Value,
}

/// One place where a value does not fit a [`ValueSchema`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// Where, from the root the check was given (`input.robot.id`,
    /// `input.tags[2]`).
    pub path: String,
    /// What is wrong, naming the path.
    pub message: String,
}

impl std::fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ValueSchema {
    /// Checks `schema` against the supported subset. Every problem is an
    /// error, a keyword Tenon would not enforce included (a schema that
    /// promises a check Tenon does not make is refused, not half-obeyed);
    /// `path` says where the schema was given, for the diagnostics.
    pub fn new(schema: Value, path: &str) -> Result<Self, Vec<Diagnostic>> {
        let mut problems = Vec::new();
        check_schema_shape(&schema, path, 0, &mut problems);
        if problems.is_empty() {
            Ok(Self { schema })
        } else {
            Err(problems
                .into_iter()
                .map(|d| Diagnostic::error(d.code, d.path, d.message))
                .collect())
        }
    }

    /// The schema, as given.
    pub fn as_value(&self) -> &Value {
        &self.schema
    }

    /// Every place where `value` does not fit, paths starting at `root`.
    pub fn check(&self, value: &Value, root: &str) -> Vec<SchemaViolation> {
        let mut problems = Vec::new();
        check_schema(&self.schema, value, root, &mut problems);
        problems
            .into_iter()
            .map(|p| SchemaViolation {
                path: p.path,
                message: p.message,
            })
            .collect()
    }
}

/// The manifest-level checks of `[config]`, for [`crate::validate`].
pub(crate) fn check_spec(
    spec: &ConfigSpec,
    good: &dyn Fn(&str) -> bool,
    remap: &dyn Fn(&str) -> String,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if !good("config") {
        return out;
    }
    if !spec.fields.is_empty() && spec.schema.is_some() {
        out.push(Diagnostic::error(
            Code::InvalidConfigSchema,
            "config",
            "give either `config.fields` or `config.schema`, not both".to_owned(),
        ));
    }
    check_fields(spec, good, remap, &mut out);
    if let Some(schema) = &spec.schema
        && good("config.schema")
    {
        if let Some(ty) = schema.get("type").filter(|t| t.as_str() != Some("object")) {
            out.push(Diagnostic::error(
                Code::InvalidConfigSchema,
                "config.schema.type",
                format!(
                    "the config schema describes a table of keys: its type must be \"object\", not {}",
                    show(ty)
                ),
            ));
        }
        check_schema_shape(schema, "config.schema", 0, &mut out);
    }
    check_environments(spec, &mut out);
    let keys = spec.keys();
    for (key, value) in &spec.defaults {
        let path = join("config.defaults", key);
        if !keys.contains(&key.as_str()) {
            let hint = did_you_mean(key, keys.iter().copied());
            out.push(Diagnostic::error(
                Code::UnknownConfigKey,
                path,
                format!("`{key}` is not a config key{hint}: a default is for a declared key"),
            ));
        } else if let Some(spec_of_key) = spec.key_spec(key) {
            let mut problems = Vec::new();
            check_key(spec_of_key, value, key, &mut problems);
            for p in problems {
                out.push(Diagnostic::error(
                    Code::InvalidDefault,
                    path.clone(),
                    format!("the default does not fit: {}", p.message),
                ));
            }
        }
    }
    out
}

/// Each environment's name, and each of its overrides as a default is
/// checked (a declared key, a value that fits), and never a secret: a
/// manifest holds no secret values.
fn check_environments(spec: &ConfigSpec, out: &mut Vec<Diagnostic>) {
    let keys = spec.keys();
    for (name, overrides) in &spec.environments {
        let path = join("config.environments", name);
        if !crate::model::is_environment_name(name) {
            out.push(Diagnostic::error(
                Code::InvalidValue,
                path.clone(),
                format!(
                    "`{name}` cannot name an environment: use 1-32 of a-z, 0-9, '_' or '-', such as `production`"
                ),
            ));
        }
        for (key, value) in overrides {
            let path = join(&path, key);
            match spec.key_spec(key) {
                None => {
                    let hint = did_you_mean(key, keys.iter().copied());
                    out.push(Diagnostic::error(
                        Code::UnknownConfigKey,
                        path,
                        format!("`{key}` is not a config key{hint}: an environment overrides declared keys"),
                    ));
                }
                Some(_) if spec.is_secret(key) => out.push(Diagnostic::error(
                    Code::InvalidDefault,
                    path,
                    format!("`{key}` is a secret: its value never belongs in a manifest; set it with `tenon config set`"),
                )),
                Some(key_spec) => {
                    let mut problems = Vec::new();
                    check_key(key_spec, value, key, &mut problems);
                    for p in problems {
                        out.push(Diagnostic::error(
                            Code::InvalidDefault,
                            path.clone(),
                            format!("the `{name}` value does not fit: {}", p.message),
                        ));
                    }
                }
            }
        }
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn check_fields(
    spec: &ConfigSpec,
    good: &dyn Fn(&str) -> bool,
    remap: &dyn Fn(&str) -> String,
    out: &mut Vec<Diagnostic>,
) {
    let mut seen = std::collections::BTreeMap::new();
    for (i, field) in spec.fields.iter().enumerate() {
        let path = index("config.fields", i);
        if !good(&path) {
            continue;
        }
        let key = &field.key;
        let key_good = good(&join(&path, "key"));
        if key_good && (key.is_empty() || key.len() > 128 || !key.chars().all(is_key_char)) {
            out.push(Diagnostic::error(
                Code::InvalidValue,
                join(&path, "key"),
                format!("the config key `{key}` must be 1-128 letters, digits, '_', '-' or '.', such as `channel`"),
            ));
        } else if key_good && let Some(first) = seen.insert(key.as_str(), i) {
            let first = remap(&index("config.fields", first));
            out.push(Diagnostic::error(
                Code::DuplicateConfigKey,
                join(&path, "key"),
                format!(
                    "the config key `{key}` is already declared at {first}: declare each key once"
                ),
            ));
        }
        let type_good = good(&join(&path, "type"));
        if !type_good {
            continue;
        }
        let ty = field.ty;
        let numeric = matches!(ty, ConfigType::Integer | ConfigType::Number);
        let lengthy = matches!(ty, ConfigType::String | ConfigType::Array);
        for (name, set, applies, what) in [
            (
                "minimum",
                field.minimum.is_some(),
                numeric,
                "integer and number",
            ),
            (
                "maximum",
                field.maximum.is_some(),
                numeric,
                "integer and number",
            ),
            (
                "min_length",
                field.min_length.is_some(),
                lengthy,
                "string and array",
            ),
            (
                "max_length",
                field.max_length.is_some(),
                lengthy,
                "string and array",
            ),
        ] {
            if set && !applies {
                out.push(Diagnostic::warning(
                    Code::UnusedField,
                    join(&path, name),
                    format!(
                        "`{name}` applies only to {what} fields, not {}: remove it",
                        ty.as_str()
                    ),
                ));
            }
        }
        if let (Some(min), Some(max)) = (field.minimum, field.maximum)
            && min > max
        {
            out.push(Diagnostic::error(
                Code::InvalidValue,
                join(&path, "minimum"),
                format!("the minimum {min} is above the maximum {max}"),
            ));
        }
        if let (Some(min), Some(max)) = (field.min_length, field.max_length)
            && min > max
        {
            out.push(Diagnostic::error(
                Code::InvalidValue,
                join(&path, "min_length"),
                format!("min_length {min} is above max_length {max}"),
            ));
        }
        if let Some(allowed) = &field.allowed {
            let enum_path = join(&path, "enum");
            if allowed.is_empty() && good(&enum_path) {
                out.push(Diagnostic::error(
                    Code::InvalidValue,
                    enum_path.clone(),
                    "an empty enum allows no value: list the allowed values or remove it"
                        .to_owned(),
                ));
            }
            for (j, v) in allowed.iter().enumerate() {
                if !ty.admits(v) {
                    out.push(Diagnostic::error(
                        Code::InvalidValue,
                        index(&enum_path, j),
                        format!(
                            "{} is {}, but the field is {}",
                            show(v),
                            describe(v),
                            article(ty.as_str())
                        ),
                    ));
                }
            }
        }
        let default_path = join(&path, "default");
        if let Some(default) = field.default.as_ref().filter(|_| good(&default_path)) {
            let mut problems = Vec::new();
            check_field(field, default, key, &mut problems);
            for p in problems {
                let message = if ty.admits(default) {
                    format!("the default does not fit the field: {}", p.message)
                } else {
                    format!(
                        "the default of `{key}` is {} but the field is {}: write a default of that type or remove it",
                        describe(default),
                        article(ty.as_str())
                    )
                };
                out.push(Diagnostic::error(
                    Code::InvalidDefault,
                    default_path.clone(),
                    message,
                ));
            }
        }
    }
}

const ENFORCED: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "default",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "secret",
    "writeOnly",
];
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "$schema",
    "$id",
    "$comment",
    "examples",
    "format",
    "deprecated",
    "readOnly",
];
const MAX_SCHEMA_DEPTH: usize = 16;

/// Checks that a config schema stays inside the supported subset and that
/// its defaults fit.
fn check_schema_shape(schema: &Value, path: &str, depth: usize, out: &mut Vec<Diagnostic>) {
    let bad = |out: &mut Vec<Diagnostic>, p: String, message: String| {
        out.push(Diagnostic::error(Code::InvalidConfigSchema, p, message));
    };
    let Some(s) = schema.as_object() else {
        bad(
            out,
            path.to_owned(),
            format!("a schema must be a table, not {}", describe(schema)),
        );
        return;
    };
    if depth > MAX_SCHEMA_DEPTH {
        bad(
            out,
            path.to_owned(),
            format!("the schema is nested deeper than {MAX_SCHEMA_DEPTH} levels"),
        );
        return;
    }
    for (keyword, value) in s {
        let p = join(path, keyword);
        match keyword.as_str() {
            "type" => {
                let names: Vec<&Value> = match value {
                    Value::Array(items) => items.iter().collect(),
                    other => vec![other],
                };
                for name in names {
                    if !name.as_str().is_some_and(|n| SCHEMA_TYPES.contains(&n)) {
                        bad(
                            out,
                            p.clone(),
                            format!(
                                "{} is not a type: use one of {}",
                                show(name),
                                SCHEMA_TYPES.join(", ")
                            ),
                        );
                    }
                }
            }
            "properties" => match value.as_object() {
                Some(props) => {
                    for (key, prop) in props {
                        check_schema_shape(prop, &join(&p, key), depth + 1, out);
                    }
                }
                None => bad(
                    out,
                    p,
                    "`properties` must be a table of key schemas".to_owned(),
                ),
            },
            "items" => check_schema_shape(value, &p, depth + 1, out),
            "additionalProperties" => {
                if !value.is_boolean() {
                    check_schema_shape(value, &p, depth + 1, out);
                }
            }
            "required" => {
                let props = s.get("properties").and_then(Value::as_object);
                match value.as_array() {
                    Some(keys) => {
                        for (i, key) in keys.iter().enumerate() {
                            match key.as_str() {
                                Some(k) if props.is_some_and(|p| p.contains_key(k)) => {}
                                Some(k) => bad(
                                    out,
                                    index(&p, i),
                                    format!(
                                        "`{k}` is required but not among the `properties`: declare it there"
                                    ),
                                ),
                                None => bad(
                                    out,
                                    index(&p, i),
                                    format!("{} is not a key name", show(key)),
                                ),
                            }
                        }
                    }
                    None => bad(out, p, "`required` must be a list of key names".to_owned()),
                }
            }
            "enum" => {
                if value.as_array().is_none_or(|a| a.is_empty()) {
                    bad(
                        out,
                        p,
                        "`enum` must be a non-empty list of allowed values".to_owned(),
                    );
                }
            }
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                if !value.is_number() {
                    bad(out, p, format!("`{keyword}` must be a number"));
                }
            }
            "minLength" | "maxLength" | "minItems" | "maxItems" => {
                if value.as_u64().is_none() {
                    bad(
                        out,
                        p,
                        format!("`{keyword}` must be a whole number, 0 or more"),
                    );
                }
            }
            "uniqueItems" | "secret" | "writeOnly" | "readOnly" | "deprecated" => {
                if !value.is_boolean() {
                    bad(out, p, format!("`{keyword}` must be `true` or `false`"));
                }
            }
            "default" => {
                let mut problems = Vec::new();
                check_schema(schema, value, "default", &mut problems);
                for problem in problems {
                    out.push(Diagnostic::error(
                        Code::InvalidDefault,
                        p.clone(),
                        format!("the default does not fit its schema: {}", problem.message),
                    ));
                }
            }
            k if ENFORCED.contains(&k) || ANNOTATIONS.contains(&k) || k.starts_with("x-") => {}
            k => {
                let hint = did_you_mean(k, ENFORCED.iter().chain(ANNOTATIONS).copied());
                out.push(Diagnostic::warning(
                    Code::UnsupportedSchemaKeyword,
                    p,
                    format!(
                        "`{k}` is not enforced by Tenon's config validation{hint}; supported: {}",
                        ENFORCED.join(", ")
                    ),
                ));
            }
        }
    }
}
