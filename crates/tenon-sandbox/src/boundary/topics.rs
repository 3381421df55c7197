//! Event topics and the patterns in `permissions.events`.

/// Whether `topic` matches `pattern`.
///
/// Topics are dot-separated segments (`plugin.installed`,
/// `notify.slack.sent`). In a pattern, a segment `*` matches exactly one
/// segment, except as the last segment, where it matches one or more:
/// `notify.*` matches `notify.sent` and `notify.slack.sent` but not `notify`;
/// `*` alone matches every topic; `a.*.c` matches `a.b.c` only. Other
/// segments match literally (case-sensitive). An empty pattern matches
/// nothing.
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    if pattern.is_empty() || topic.is_empty() {
        return false;
    }
    let mut pattern_segments = pattern.split('.').peekable();
    let mut topic_segments = topic.split('.');
    while let Some(p) = pattern_segments.next() {
        let last = pattern_segments.peek().is_none();
        match topic_segments.next() {
            None => return false,
            Some("") => return false,
            Some(_) if p == "*" && last => return true,
            Some(_) if p == "*" => {}
            Some(t) if p == t => {}
            Some(_) => return false,
        }
    }
    topic_segments.next().is_none()
}

/// Why a topic cannot be published to, or `None` when it is well formed:
/// non-empty segments of printable ASCII without spaces or `*`.
pub(crate) fn topic_problem(topic: &str, max_len: usize) -> Option<String> {
    if topic.is_empty() {
        return Some("the topic is empty".to_owned());
    }
    if topic.len() > max_len {
        return Some(format!(
            "the topic is {} bytes long; the limit is {max_len}",
            topic.len()
        ));
    }
    if topic.split('.').any(str::is_empty) {
        return Some(format!("`{topic}` has an empty segment"));
    }
    if !topic.bytes().all(|b| b.is_ascii_graphic() && b != b'*') {
        return Some(format!(
            "`{topic}` may hold only printable ASCII without spaces or `*`"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        for (pattern, topic, expected) in [
            ("plugin.*", "plugin.installed", true),
            ("plugin.*", "plugin.a.b", true),
            ("plugin.*", "plugin", false),
            ("plugin.*", "plugins.installed", false),
            ("plugin.*", "other.installed", false),
            ("*", "anything", true),
            ("*", "any.thing.at.all", true),
            ("a.*.c", "a.b.c", true),
            ("a.*.c", "a.b.d", false),
            ("a.*.c", "a.b.x.c", false),
            ("a.*.c", "a.b.c.d", false),
            ("notify.sent", "notify.sent", true),
            ("notify.sent", "notify.sent.x", false),
            ("notify.sent", "notify", false),
            ("Notify.sent", "notify.sent", false),
            ("", "x", false),
            ("x", "", false),
            ("a.*", "a..b", false),
        ] {
            assert_eq!(
                topic_matches(pattern, topic),
                expected,
                "{pattern} vs {topic}"
            );
        }
    }

    #[test]
    fn topic_validation() {
        assert_eq!(topic_problem("notify.sent", 255), None);
        for bad in ["", "a..b", ".a", "a.", "a b", "a.*", "é"] {
            assert!(topic_problem(bad, 255).is_some(), "{bad:?}");
        }
        assert!(topic_problem("abcdef", 5).is_some());
    }
}
