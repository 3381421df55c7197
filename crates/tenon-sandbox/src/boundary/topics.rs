//! Event topics and the patterns in `permissions.events`: the one matcher
//! of `tenon-types`, the same the event bus delivers by.

pub use tenon_types::topic_matches;

/// Why a topic cannot be published to, or `None` when it is well formed
/// (see [`tenon_types::topic`]) and printable ASCII.
pub(crate) fn topic_problem(topic: &str, max_len: usize) -> Option<String> {
    if topic.len() > max_len {
        return Some(format!(
            "the topic is {} bytes long; the limit is {max_len}",
            topic.len()
        ));
    }
    if let Err(problem) = tenon_types::check_topic(topic) {
        return Some(format!("`{topic}` is not a valid topic: {problem}"));
    }
    if !topic.bytes().all(|b| b.is_ascii_graphic()) {
        return Some(format!("`{topic}` may hold only printable ASCII"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_validation() {
        assert_eq!(topic_problem("notify.sent", 255), None);
        for bad in ["", "a..b", ".a", "a.", "a b", "a.*", "é"] {
            assert!(topic_problem(bad, 255).is_some(), "{bad:?}");
        }
        assert!(topic_problem("abcdef", 5).is_some());
    }
}
