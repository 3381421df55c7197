//! JSON helpers: merge patches (RFC 7396) and call payloads.
//!
//! Hook handlers change data by returning a JSON merge patch: an object whose
//! members replace the data's members, recursively, with `null` meaning
//! "remove". These functions build and apply such patches the way the host
//! does, so a plugin (or its tests) can see what a patch will do.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Error;

/// Applies a merge patch to `target` in place, as RFC 7396 defines it: an
/// object patch merges member by member (`null` removes a member), anything
/// else replaces the target.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target) = target else {
        unreachable!("made an object just above")
    };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge(target.entry(key.as_str()).or_insert(Value::Null), value);
        }
    }
}

/// The smallest merge patch that turns `before` into `after`, or `None` when
/// they are equal.
///
/// Merge patches cannot set a member to `null` (that means "remove") nor
/// change one element of an array (arrays are replaced whole): a member that
/// becomes `null` in `after` is removed by the patch.
pub fn diff(before: &Value, after: &Value) -> Option<Value> {
    if before == after {
        return None;
    }
    let (Value::Object(before), Value::Object(after)) = (before, after) else {
        return Some(after.clone());
    };
    let mut patch = Map::new();
    for (key, old) in before {
        match after.get(key) {
            None => {
                patch.insert(key.clone(), Value::Null);
            }
            Some(new) => {
                if let Some(change) = diff(old, new) {
                    patch.insert(key.clone(), change);
                }
            }
        }
    }
    for (key, new) in after {
        if !before.contains_key(key) {
            patch.insert(key.clone(), new.clone());
        }
    }
    Some(Value::Object(patch))
}

/// A merge patch that sets the member at a JSON pointer (RFC 6901) to
/// `value`: `at("/result/output", "x")` is `{"result": {"output": "x"}}`.
///
/// Fails on a pointer that does not start with `/`, is empty (a patch of the
/// whole document would be `value` itself) or has an invalid escape; array
/// indices cannot be addressed by a merge patch and are taken as member names.
pub fn at(pointer: &str, value: impl Into<Value>) -> Result<Value, Error> {
    let bad = |why: &str| Error::new("invalid-patch", format!("`{pointer}`: {why}"));
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(bad(
            "a JSON pointer starts with `/`, as in `/result/output`",
        ));
    };
    let mut patch = value.into();
    for token in rest.rsplit('/') {
        let key = unescape(token).ok_or_else(|| bad("`~` must be followed by 0 or 1"))?;
        let mut object = Map::with_capacity(1);
        object.insert(key, patch);
        patch = Value::Object(object);
    }
    Ok(patch)
}

fn unescape(token: &str) -> Option<String> {
    if !token.contains('~') {
        return Some(token.to_owned());
    }
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Decodes the JSON input of a [`call`](crate::Plugin::call); a malformed
/// input is an `invalid-input` error that says what was expected.
pub fn decode<T: DeserializeOwned>(input: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(input).map_err(|e| {
        Error::invalid_input(format!(
            "the input does not have the expected JSON shape: {e}"
        ))
    })
}

/// Encodes the JSON output of a [`call`](crate::Plugin::call).
pub fn encode<T: Serialize + ?Sized>(output: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(output).map_err(|e| Error::internal(format!("encoding the output: {e}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The examples of RFC 7396, appendix A, plus a few of our own.
    #[test]
    fn merge_follows_rfc_7396() {
        let check = |target: Value, patch: Value, expected: Value| {
            let mut result = target.clone();
            merge(&mut result, &patch);
            assert_eq!(result, expected, "{target} + {patch}");
        };
        check(json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"}));
        check(
            json!({"a": "b"}),
            json!({"b": "c"}),
            json!({"a": "b", "b": "c"}),
        );
        check(json!({"a": "b"}), json!({"a": null}), json!({}));
        check(
            json!({"a": "b", "b": "c"}),
            json!({"a": null}),
            json!({"b": "c"}),
        );
        check(json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"}));
        check(json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]}));
        check(
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            json!({"a": {"b": "d"}}),
        );
        check(
            json!({"a": [{"b": "c"}]}),
            json!({"a": [1]}),
            json!({"a": [1]}),
        );
        check(json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"]));
        check(json!({"a": "b"}), json!(["c"]), json!(["c"]));
        check(json!({"a": "foo"}), json!(null), json!(null));
        check(json!({"a": "foo"}), json!("bar"), json!("bar"));
        check(
            json!({"e": null}),
            json!({"a": 1}),
            json!({"e": null, "a": 1}),
        );
        check(
            json!([1, 2]),
            json!({"a": "b", "c": null}),
            json!({"a": "b"}),
        );
        check(
            json!({}),
            json!({"a": {"bb": {"ccc": null}}}),
            json!({"a": {"bb": {}}}),
        );
    }

    #[test]
    fn diff_produces_the_smallest_patch_that_merges_back() {
        let check = |before: Value, after: Value, expected: Option<Value>| {
            let patch = diff(&before, &after);
            assert_eq!(patch, expected, "{before} -> {after}");
            if let Some(patch) = patch {
                let mut merged = before.clone();
                merge(&mut merged, &patch);
                assert_eq!(merged, after, "{before} + {patch}");
            }
        };
        check(json!({"a": 1}), json!({"a": 1}), None);
        check(
            json!({"a": 1, "b": 2}),
            json!({"a": 1, "b": 3}),
            Some(json!({"b": 3})),
        );
        check(
            json!({"a": 1, "b": 2}),
            json!({"a": 1}),
            Some(json!({"b": null})),
        );
        check(
            json!({"result": {"output": "key=abc", "code": 0}, "turn": 1}),
            json!({"result": {"output": "key=[REDACTED]", "code": 0}, "turn": 1}),
            Some(json!({"result": {"output": "key=[REDACTED]"}})),
        );
        check(
            json!({"a": [1, 2]}),
            json!({"a": [1]}),
            Some(json!({"a": [1]})),
        );
        check(
            json!({}),
            json!({"n": {"m": true}}),
            Some(json!({"n": {"m": true}})),
        );
        check(json!("x"), json!({"a": 1}), Some(json!({"a": 1})));
    }

    #[test]
    fn at_builds_nested_patches_from_pointers() {
        let check = |pointer: &str, expected: Value| {
            assert_eq!(at(pointer, "v").unwrap(), expected, "{pointer}");
        };
        check("/content", json!({"content": "v"}));
        check("/result/output", json!({"result": {"output": "v"}}));
        check("/a~1b/c~0d", json!({"a/b": {"c~d": "v"}}));
        check("/", json!({"": "v"}));
        for bad in ["", "content", "/a~2", "/a~"] {
            let error = at(bad, 1).unwrap_err();
            assert_eq!(error.code(), "invalid-patch", "{bad}");
            assert!(error.message().contains(bad), "{error}");
        }
    }

    #[test]
    fn decode_names_the_expected_type() {
        let value: Vec<u8> = decode(b"[1,2]").unwrap();
        assert_eq!(value, [1, 2]);
        let error = decode::<Vec<u8>>(b"{").unwrap_err();
        assert_eq!(error.code(), "invalid-input");
        assert!(error.message().contains("expected a sequence"), "{error}");
        assert!(
            !error.message().contains("Vec<"),
            "no Rust type name: {error}"
        );
        assert_eq!(encode(&json!({"a": 1})).unwrap(), br#"{"a":1}"#);
    }
}
