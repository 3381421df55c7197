//! "Did you mean" suggestions for unknown names: the one rule every Tenon
//! crate and the CLI use, so that a suggestion is offered only when it is
//! close.

/// At most this many suggestions are made.
const MAX_SUGGESTIONS: usize = 3;

/// The candidates close to `needle`, closest first (at most three).
///
/// A candidate is close when it is within an edit distance of a third of
/// the needle's length (at least 1; a transposition counts as one edit), or
/// when it contains the needle (three characters or more). Names that share
/// a leading part up to a separator (`/`, `.`, `:`) with the needle are
/// compared on what follows it, so that `tenon-examples/nope` is not close
/// to `tenon-examples/echo` merely by their shared publisher.
pub fn similar<'a>(needle: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let lowered = needle.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|candidate| {
            let other = candidate.to_lowercase();
            let contains = lowered.chars().count() >= 3 && other.contains(&lowered);
            let (a, b) = after_shared_prefix(&lowered, &other);
            let limit = (a.chars().count() / 3).max(1);
            let distance = strsim::damerau_levenshtein(a, b);
            (distance <= limit || contains).then_some((distance, candidate))
        })
        .collect();
    scored.sort_unstable();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, c)| c.to_owned())
        .collect()
}

/// `a` and `b` without the leading part they share up to and including
/// their last common separator.
fn after_shared_prefix<'s>(a: &'s str, b: &'s str) -> (&'s str, &'s str) {
    let mut cut = 0;
    for ((i, x), y) in a.char_indices().zip(b.chars()) {
        if x != y {
            break;
        }
        if matches!(x, '/' | '.' | ':') {
            cut = i + x.len_utf8();
        }
    }
    (&a[cut..], &b[cut..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let names = [
            "tool.pre_exec",
            "tool.post_exec",
            "model.pre_call",
            "run.pre_prompt",
        ];
        let ids = [
            "tenon-examples/echo",
            "tenon-examples/moderator",
            "tenon-examples/counter",
            "tenon-examples/notifier",
        ];
        let words = [
            "install",
            "uninstall",
            "list",
            "info",
            "disable",
            "count",
            "hook",
        ];
        let cases: &[(&[&str], &str, &[&str])] = &[
            (&names, "tool.pre_exce", &["tool.pre_exec"]),
            (&names, "TOOL.PRE_EXEC", &["tool.pre_exec"]),
            (&names, "pre_call", &["model.pre_call"]),
            (&names, "model.post_cal", &[]),
            (&names, "webhook", &[]),
            (&names, "", &[]),
            (&ids, "tenon-examples/nope", &[]),
            (
                &ids,
                "tenon-examples/moderater",
                &["tenon-examples/moderator"],
            ),
            (&ids, "tenon-example/echo", &["tenon-examples/echo"]),
            (&ids, "counter", &["tenon-examples/counter"]),
            (&words, "instal", &["install", "uninstall"]),
            (&words, "cout", &["count"]),
            (&words, "hok", &["hook"]),
            (&words, "xyz", &[]),
        ];
        for (candidates, needle, expected) in cases {
            assert_eq!(
                similar(needle, candidates.iter().copied()),
                *expected,
                "{needle}"
            );
        }
    }
}
