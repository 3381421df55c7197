//! JSON pointers (RFC 6901) naming the mutable parts of a hook's data, and
//! JSON merge patches (RFC 7396) checked against them.
//!
//! A patch is checked before it is applied: the check walks the patch against
//! the current data and lists every pointer whose value the patch would
//! *change*, sorted into allowed changes and violations. A patch that restates
//! a read-only value unchanged is not a violation (plugins that echo the whole
//! document back with one field edited work); a patch that would change,
//! create or delete anything outside the mutable pointers is.

use serde_json::{Map, Value};

/// The compiled mutable pointers of one hook spec.
#[derive(Debug, Clone, Default)]
pub(crate) struct MutablePaths {
    /// One token list per pointer; an empty list is the whole document.
    pointers: Vec<Vec<String>>,
}

impl MutablePaths {
    /// Parses each pointer; returns one message per invalid pointer.
    pub(crate) fn compile(pointers: &[String]) -> Result<Self, Vec<String>> {
        let mut compiled = Vec::with_capacity(pointers.len());
        let mut problems = Vec::new();
        for pointer in pointers {
            match parse_pointer(pointer) {
                Ok(tokens) => compiled.push(tokens),
                Err(problem) => problems.push(problem),
            }
        }
        if problems.is_empty() {
            Ok(Self { pointers: compiled })
        } else {
            Err(problems)
        }
    }

    /// Whether the value at `path` may change: some mutable pointer is `path`
    /// itself or one of its ancestors.
    fn allows(&self, path: &[&str]) -> bool {
        self.pointers
            .iter()
            .any(|p| p.len() <= path.len() && p.iter().zip(path).all(|(a, b)| a == b))
    }
}

/// Parses an RFC 6901 pointer into its unescaped reference tokens.
pub(crate) fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!(
            "`{pointer}` is not a JSON pointer: it must start with `/` (for example `/{pointer}`), or be empty for the whole document"
        ));
    };
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => {
                            return Err(format!(
                                "`{pointer}` is not a JSON pointer: `~` must be followed by `0` (for `~`) or `1` (for `/`)"
                            ));
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

/// Formats reference tokens as a pointer, escaping `~` and `/`.
fn format_pointer(path: &[&str]) -> String {
    let mut out = String::new();
    for token in path {
        out.push('/');
        for c in token.chars() {
            match c {
                '~' => out.push_str("~0"),
                '/' => out.push_str("~1"),
                c => out.push(c),
            }
        }
    }
    out
}

/// What a patch would change.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct PatchReport {
    /// Pointers the patch changes and may change, in patch order.
    pub(crate) changed: Vec<String>,
    /// Pointers the patch would change but may not, in patch order.
    pub(crate) violations: Vec<String>,
}

/// Lists what `patch` would change in `target`, checked against `mutable`.
pub(crate) fn analyze(target: &Value, patch: &Value, mutable: &MutablePaths) -> PatchReport {
    let mut report = PatchReport::default();
    let mut path = Vec::new();
    let allowed = mutable.allows(&path);
    walk(
        Some(target),
        patch,
        &mut path,
        allowed,
        mutable,
        &mut report,
    );
    report
}

fn walk<'p>(
    target: Option<&Value>,
    patch: &'p Value,
    path: &mut Vec<&'p str>,
    allowed: bool,
    mutable: &MutablePaths,
    report: &mut PatchReport,
) {
    match (patch, target) {
        (Value::Object(members), Some(Value::Object(current))) => {
            for (key, member) in members {
                path.push(key);
                let child_allowed = allowed || mutable.allows(path);
                let child = current.get(key);
                if member.is_null() {
                    if child.is_some() {
                        record(path, child_allowed, report);
                    }
                } else {
                    walk(child, member, path, child_allowed, mutable, report);
                }
                path.pop();
            }
        }
        // An object patch over a missing or non-object value creates or
        // replaces that value wholesale.
        (Value::Object(_), _) => record(path, allowed, report),
        (value, current) => {
            if current != Some(value) {
                record(path, allowed, report);
            }
        }
    }
}

fn record(path: &[&str], allowed: bool, report: &mut PatchReport) {
    let pointer = format_pointer(path);
    if allowed {
        report.changed.push(pointer);
    } else {
        report.violations.push(pointer);
    }
}

/// Applies an RFC 7396 merge patch to `target` in place (member order is kept).
pub(crate) fn apply(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(current) = target {
        for (key, member) in members {
            if member.is_null() {
                current.shift_remove(key);
            } else {
                apply(current.entry(key.as_str()).or_insert(Value::Null), member);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(pointers: &[&str]) -> MutablePaths {
        MutablePaths::compile(&pointers.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>())
            .expect("valid pointers")
    }

    /// RFC 7396 appendix A, every example.
    #[test]
    fn merge_patch_matches_rfc_7396_examples() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (target, patch, expected) in cases {
            let mut data = target.clone();
            apply(&mut data, &patch);
            assert_eq!(data, expected, "{target} + {patch}");
            // With everything mutable, the analysis finds a change exactly
            // when the patch changes the document.
            let report = analyze(&target, &patch, &paths(&[""]));
            assert!(report.violations.is_empty());
            assert_eq!(
                report.changed.is_empty(),
                target == expected,
                "{target} + {patch}"
            );
        }
    }

    #[test]
    fn analysis_sorts_changes_into_allowed_and_violations() {
        let data = json!({
            "workItem": {"title": "t", "payload": {"x": 1}, "id": 7},
            "pluginType": "webhook",
            "a/b": {"~c": 1}
        });
        let mutable = paths(&["/workItem/title", "/workItem/payload", "/a~1b/~0c"]);
        // (patch, changed, violations)
        let cases: &[(Value, &[&str], &[&str])] = &[
            (
                json!({"workItem": {"title": "new"}}),
                &["/workItem/title"],
                &[],
            ),
            (json!({"workItem": {"title": "t"}}), &[], &[]),
            (
                json!({"workItem": {"payload": {"y": 2}}}),
                &["/workItem/payload/y"],
                &[],
            ),
            (
                json!({"workItem": {"payload": null}}),
                &["/workItem/payload"],
                &[],
            ),
            (json!({"workItem": {"id": 8}}), &[], &["/workItem/id"]),
            (
                json!({"workItem": {"id": 7, "title": "u"}}),
                &["/workItem/title"],
                &[],
            ),
            (json!({"workItem": "gone"}), &[], &["/workItem"]),
            (json!({"workItem": null}), &[], &["/workItem"]),
            (
                json!({"pluginType": "x", "extra": 1}),
                &[],
                &["/pluginType", "/extra"],
            ),
            (json!({"missing": null}), &[], &[]),
            (json!({"a/b": {"~c": 2}}), &["/a~1b/~0c"], &[]),
            (json!("replace all"), &[], &[""]),
            (
                json!({"workItem": {"title": "n", "id": 1}}),
                &["/workItem/title"],
                &["/workItem/id"],
            ),
        ];
        for (patch, changed, violations) in cases {
            let report = analyze(&data, patch, &mutable);
            assert_eq!(report.changed, *changed, "changed for {patch}");
            assert_eq!(report.violations, *violations, "violations for {patch}");
        }
    }

    #[test]
    fn creating_a_parent_of_a_mutable_pointer_is_a_violation() {
        let report = analyze(
            &json!({}),
            &json!({"toolInput": {"a": 1}}),
            &paths(&["/toolInput/a"]),
        );
        assert_eq!(report.violations, ["/toolInput"]);
        let report = analyze(
            &json!({}),
            &json!({"toolInput": {"a": 1}}),
            &paths(&["/toolInput"]),
        );
        assert_eq!(report.changed, ["/toolInput"]);
    }

    #[test]
    fn invalid_pointers_are_reported() {
        let problems = MutablePaths::compile(&["title".into(), "/a~2".into(), "/ok".into()])
            .expect_err("two invalid pointers");
        assert_eq!(problems.len(), 2);
        assert!(
            problems[0].contains("must start with `/`"),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].contains("`~` must be followed"),
            "{}",
            problems[1]
        );
        assert_eq!(
            parse_pointer("/a~1b/~0c/"),
            Ok(vec!["a/b".into(), "~c".into(), String::new()])
        );
    }
}
