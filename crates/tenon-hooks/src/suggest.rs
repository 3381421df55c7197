//! "Did you mean" suggestions for unknown names.

/// At most this many suggestions are made.
const MAX_SUGGESTIONS: usize = 3;

/// The candidates close to `needle`, closest first: within an edit distance of
/// a third of its length (at least 1, counting transpositions as one edit),
/// or containing it.
pub(crate) fn similar<'a>(
    needle: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let limit = (needle.chars().count() / 3).max(1);
    let lowered = needle.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|candidate| {
            let distance = strsim::damerau_levenshtein(&lowered, &candidate.to_lowercase());
            let contains = lowered.len() >= 3 && candidate.to_lowercase().contains(&lowered);
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
        let cases: &[(&str, &[&str])] = &[
            ("tool.pre_exce", &["tool.pre_exec", "tool.post_exec"]),
            ("TOOL.PRE_EXEC", &["tool.pre_exec", "tool.post_exec"]),
            ("pre_call", &["model.pre_call"]),
            ("model.post_cal", &["model.pre_call"]),
            ("webhook", &[]),
            ("", &[]),
        ];
        for (needle, expected) in cases {
            assert_eq!(similar(needle, names), *expected, "{needle}");
        }
    }
}
