//! A small, independent JSON Schema (2020-12) checker for the keywords the
//! manifest schema uses, to test that schema against the fixtures. It is
//! deliberately separate from the crate's config-schema code.

use serde_json::Value;

/// Every place `instance` breaks `schema` (empty when it fits).
pub(crate) fn errors(root: &Value, instance: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(root, root, instance, "", &mut out);
    out
}

fn resolve<'a>(root: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference.strip_prefix('#').expect("local references only");
    root.pointer(pointer)
        .unwrap_or_else(|| panic!("dangling $ref {reference}"))
}

fn type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        other => panic!("unknown type {other}"),
    }
}

fn check(root: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    let s = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            out.push(format!("{at}: not allowed"));
            return;
        }
        Value::Object(s) => s,
        other => panic!("bad schema {other}"),
    };
    for (keyword, arg) in s {
        match keyword.as_str() {
            "$ref" => check(root, resolve(root, arg.as_str().unwrap()), v, at, out),
            "type" => {
                let ok = match arg {
                    Value::String(t) => type_ok(t, v),
                    Value::Array(ts) => ts.iter().any(|t| type_ok(t.as_str().unwrap(), v)),
                    _ => panic!("bad type"),
                };
                if !ok {
                    out.push(format!("{at}: {v} is not of type {arg}"));
                }
            }
            "enum" => {
                if !arg.as_array().unwrap().contains(v) {
                    out.push(format!("{at}: {v} not in {arg}"));
                }
            }
            "const" => {
                if arg != v {
                    out.push(format!("{at}: {v} is not {arg}"));
                }
            }
            "pattern" => {
                if let Some(text) = v.as_str() {
                    let re =
                        regex_lite::Regex::new(arg.as_str().unwrap()).expect("pattern compiles");
                    if !re.is_match(text) {
                        out.push(format!("{at}: {text:?} does not match {arg}"));
                    }
                }
            }
            "minLength" | "maxLength" => {
                if let Some(text) = v.as_str() {
                    let n = text.chars().count() as u64;
                    let limit = arg.as_u64().unwrap();
                    if (keyword == "minLength" && n < limit)
                        || (keyword == "maxLength" && n > limit)
                    {
                        out.push(format!("{at}: length {n} breaks {keyword} {limit}"));
                    }
                }
            }
            "minItems" => {
                if let Some(items) = v.as_array()
                    && (items.len() as u64) < arg.as_u64().unwrap()
                {
                    out.push(format!("{at}: too few items"));
                }
            }
            "minimum" | "maximum" => {
                if let (Some(x), Some(limit)) = (v.as_f64(), arg.as_f64())
                    && ((keyword == "minimum" && x < limit) || (keyword == "maximum" && x > limit))
                {
                    out.push(format!("{at}: {x} breaks {keyword} {limit}"));
                }
            }
            "required" => {
                if let Some(obj) = v.as_object() {
                    for key in arg.as_array().unwrap() {
                        if !obj.contains_key(key.as_str().unwrap()) {
                            out.push(format!("{at}: missing {key}"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(obj) = v.as_object() {
                    for (key, sub) in arg.as_object().unwrap() {
                        if let Some(item) = obj.get(key) {
                            check(root, sub, item, &format!("{at}/{key}"), out);
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(obj) = v.as_object() {
                    let props = s.get("properties").and_then(Value::as_object);
                    for (key, item) in obj {
                        if !props.is_some_and(|p| p.contains_key(key)) {
                            check(root, arg, item, &format!("{at}/{key}"), out);
                        }
                    }
                }
            }
            "propertyNames" => {
                if let Some(obj) = v.as_object() {
                    for key in obj.keys() {
                        check(
                            root,
                            arg,
                            &Value::String(key.clone()),
                            &format!("{at}/{key}(name)"),
                            out,
                        );
                    }
                }
            }
            "items" => {
                if let Some(items) = v.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        check(root, arg, item, &format!("{at}/{i}"), out);
                    }
                }
            }
            "oneOf" | "anyOf" => {
                let passing = arg
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|sub| {
                        let mut e = Vec::new();
                        check(root, sub, v, at, &mut e);
                        e.is_empty()
                    })
                    .count();
                let ok = if keyword == "oneOf" {
                    passing == 1
                } else {
                    passing >= 1
                };
                if !ok {
                    out.push(format!("{at}: {v} matches {passing} of {keyword}"));
                }
            }
            "not" => {
                let mut e = Vec::new();
                check(root, arg, v, at, &mut e);
                if e.is_empty() {
                    out.push(format!("{at}: {v} matches a `not`"));
                }
            }
            "$schema" | "$id" | "title" | "description" | "$defs" | "default" => {}
            other => panic!("the manifest schema uses `{other}`, which this checker does not know"),
        }
    }
}
