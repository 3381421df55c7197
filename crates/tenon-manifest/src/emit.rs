//! Canonical output: the manifest written in each format.

use serde_json::Value;

use crate::format::Format;
use crate::model::Manifest;
use crate::parse::yaml::resolve_plain;
use crate::tree;

impl Manifest {
    /// The manifest in `format`, canonical: fields in the documented order,
    /// defaults left out where the format allows, and parsing the output
    /// gives this manifest back.
    ///
    /// A manifest built in code may hold JSON nulls in config values, which
    /// TOML cannot write and [`Manifest::validate`] reports; they are left out.
    pub fn to_string_in(&self, format: Format) -> String {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        strip_nulls(&mut value);
        match format {
            Format::Json => {
                let mut out = serde_json::to_string_pretty(&value).unwrap_or_default();
                out.push('\n');
                out
            }
            Format::Toml => toml::to_string(&value).unwrap_or_default(),
            Format::Yaml => {
                let mut out = String::new();
                yaml_block(&value, 0, &mut out);
                out
            }
        }
    }
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Array(items) => {
            items.retain(|v| !v.is_null());
            items.iter_mut().for_each(strip_nulls);
        }
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        _ => {}
    }
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Writes a table or a list in block style at `depth` spaces; other values
/// on their own line.
fn yaml_block(value: &Value, depth: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                indent(out, depth);
                yaml_scalar_str(key, out);
                out.push(':');
                yaml_after_key(item, depth, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                indent(out, depth);
                out.push('-');
                if let Value::Object(map) = item
                    && !map.is_empty()
                {
                    // The first entry goes on the dash's line.
                    let mut nested = String::new();
                    yaml_block(item, depth + 2, &mut nested);
                    out.push(' ');
                    out.push_str(&nested[depth + 2..]);
                } else {
                    yaml_after_key(item, depth, out);
                }
            }
        }
        scalar => {
            indent(out, depth);
            yaml_scalar(scalar, out);
            out.push('\n');
        }
    }
}

/// Whether a value is written as an indented block (a table or a list that
/// is not empty).
fn is_block(value: &Value) -> bool {
    match value {
        Value::Object(map) => !map.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    }
}

/// Writes a value after `key:` or `-`: a block on the next lines, or a
/// scalar on the same line.
fn yaml_after_key(item: &Value, depth: usize, out: &mut String) {
    if is_block(item) {
        out.push('\n');
        yaml_block(item, depth + 2, out);
    } else {
        out.push(' ');
        yaml_scalar(item, out);
        out.push('\n');
    }
}

fn yaml_scalar(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => yaml_scalar_str(s, out),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// A string plain when that reads back as the same string (in YAML 1.2 and
/// 1.1 alike), double-quoted otherwise.
fn yaml_scalar_str(s: &str, out: &mut String) {
    if is_plain_safe(s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_yaml_printable(c) => out.push(c),
            c => {
                let code = u32::from(c);
                if code <= 0xFFFF {
                    out.push_str(&format!("\\u{code:04X}"));
                } else {
                    out.push_str(&format!("\\U{code:08X}"));
                }
            }
        }
    }
    out.push('"');
}

fn is_yaml_printable(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7E}' | '\u{85}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        && c != '\u{FEFF}'
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphanumeric() || matches!(first, '_' | '.' | '/' | '^' | '(')) {
        return false;
    }
    if s.ends_with(' ') || s.contains("  ") {
        return false;
    }
    if !s.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                ' ' | '_'
                    | '.'
                    | '/'
                    | '-'
                    | '@'
                    | '<'
                    | '>'
                    | '+'
                    | '^'
                    | '='
                    | '~'
                    | '('
                    | ')'
                    | ','
            )
    }) {
        return false;
    }
    if matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off"
    ) {
        return false;
    }
    matches!(resolve_plain(s), tree::Value::Str(_))
}
