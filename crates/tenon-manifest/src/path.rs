//! Field paths as diagnostics spell them: `permissions.filesystem[0].path`,
//! `dependencies."acme/core".version`.

/// `parent.key`, quoting `key` when it is not a bare word.
pub(crate) fn join(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let mut out = String::with_capacity(parent.len() + key.len() + 3);
    out.push_str(parent);
    if !parent.is_empty() {
        out.push('.');
    }
    if bare {
        out.push_str(key);
    } else {
        out.push('"');
        for c in key.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out
}

/// `parent[i]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// Whether `path` is `ancestor` or lies under it.
pub(crate) fn within(path: &str, ancestor: &str) -> bool {
    match path.strip_prefix(ancestor) {
        Some(rest) => ancestor.is_empty() || rest.is_empty() || rest.starts_with(['.', '[']),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(join("", "plugin"), "plugin");
        assert_eq!(join("plugin", "id"), "plugin.id");
        assert_eq!(
            join("dependencies", "acme/core"),
            "dependencies.\"acme/core\""
        );
        assert_eq!(join("a", "x\"y"), "a.\"x\\\"y\"");
        assert_eq!(join("a", ""), "a.\"\"");
        assert_eq!(index("hooks", 1), "hooks[1]");
        assert!(within("hooks[1].name", "hooks[1]"));
        assert!(within("hooks[1]", "hooks[1]"));
        assert!(!within("hooks[10]", "hooks[1]"));
        assert!(within("runtime.kind", "runtime"));
        assert!(!within("runtimes", "runtime"));
    }
}
