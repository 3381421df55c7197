//! Event topics and topic patterns.
//!
//! A **topic** is one or more non-empty segments separated by `.`
//! (`plugin.installed`, `notify.slack.sent`), at most [`MAX_TOPIC_LEN`]
//! bytes, without whitespace, control characters or `*`. Matching is
//! case-sensitive.
//!
//! A **pattern** is a topic in which a whole segment may be a wildcard:
//!
//! | segment | matches |
//! |---|---|
//! | `*` | exactly one segment |
//! | `**` | one or more segments |
//! | anything else | itself |
//!
//! So `plugin.*` matches `plugin.installed` but neither `plugin` nor
//! `plugin.config.changed`; `plugin.**` matches both of the latter's
//! longer forms but not `plugin`; `a.*.c` matches `a.b.c` and never
//! `a.b.x.c`; `*` matches every one-segment topic and `**` every topic. A
//! `*` inside a segment (`plug*`, `***`) is refused; `#` is an ordinary
//! character (no MQTT meaning). Matching never allocates, and its work is
//! at most the product of the pattern's and the topic's segment counts.

use std::fmt;

/// The longest topic or pattern, in bytes.
pub const MAX_TOPIC_LEN: usize = 255;

/// Why a topic or pattern is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// Nothing at all.
    #[error("it is empty")]
    Empty,
    /// Longer than [`MAX_TOPIC_LEN`].
    #[error("it is {len} bytes long; the limit is {MAX_TOPIC_LEN}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Whitespace or a control character somewhere.
    #[error("it contains whitespace or control characters")]
    Whitespace,
    /// A leading, trailing or doubled `.`.
    #[error("it has an empty segment (a leading, trailing or doubled `.`)")]
    EmptySegment,
    /// A `*` in a topic (only patterns have wildcards).
    #[error("`*` belongs in subscription patterns, not in published topics")]
    WildcardInTopic,
    /// A `*` that is not a whole `*` or `**` segment.
    #[error(
        "the segment `{segment}` mixes `*` with other characters: a wildcard is a whole segment, `*` (one segment) or `**` (one or more)"
    )]
    PartialWildcard {
        /// The segment.
        segment: String,
    },
}

/// The checks topics and patterns share.
fn check_shape(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong { len: name.len() });
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TopicError::Whitespace);
    }
    if name.split('.').any(str::is_empty) {
        return Err(TopicError::EmptySegment);
    }
    Ok(())
}

/// Checks a topic for publication.
pub fn check_topic(topic: &str) -> Result<(), TopicError> {
    check_shape(topic)?;
    if topic.contains('*') {
        return Err(TopicError::WildcardInTopic);
    }
    Ok(())
}

/// Checks a pattern.
fn check_pattern(pattern: &str) -> Result<(), TopicError> {
    check_shape(pattern)?;
    match pattern
        .split('.')
        .find(|s| s.contains('*') && !matches!(*s, "*" | "**"))
    {
        Some(segment) => Err(TopicError::PartialWildcard {
            segment: segment.to_owned(),
        }),
        None => Ok(()),
    }
}

/// Whether `topic` matches `pattern`; `false` when either is malformed.
/// For a pattern checked once and matched often, use [`TopicPattern`].
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    check_pattern(pattern).is_ok() && check_topic(topic).is_ok() && segments_match(pattern, topic)
}

/// A checked topic pattern (see the [module](self) for its meaning).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicPattern {
    pattern: String,
}

impl TopicPattern {
    /// Checks `pattern`.
    pub fn new(pattern: &str) -> Result<Self, TopicError> {
        check_pattern(pattern)?;
        Ok(Self {
            pattern: pattern.to_owned(),
        })
    }

    /// Checks `pattern` without keeping it.
    pub fn check(pattern: &str) -> Result<(), TopicError> {
        check_pattern(pattern)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `topic` matches; `false` when `topic` is malformed.
    pub fn matches(&self, topic: &str) -> bool {
        check_topic(topic).is_ok() && segments_match(&self.pattern, topic)
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

/// The segment of `s` starting at byte `at`, and where the next one
/// starts; `None` past the end.
fn segment(s: &str, at: usize) -> Option<(&str, usize)> {
    let rest = s.get(at..)?;
    Some(match rest.find('.') {
        Some(dot) => (&rest[..dot], at + dot + 1),
        None => (rest, s.len() + 1),
    })
}

/// Matches a well-formed pattern against a well-formed topic, segment by
/// segment. `**` takes one segment and then, when the rest fails, one more
/// at a time (backtracking only to the last `**`, so never exponential).
fn segments_match(pattern: &str, topic: &str) -> bool {
    let (mut p, mut t) = (0, 0);
    // After the last `**`: where the pattern resumes, and where in the
    // topic the `**`'s segments end.
    let mut resume: Option<(usize, usize)> = None;
    loop {
        match (segment(pattern, p), segment(topic, t)) {
            (None, None) => return true,
            (Some(("**", p_next)), Some((_, t_next))) => {
                resume = Some((p_next, t_next));
                (p, t) = (p_next, t_next);
            }
            (Some((wanted, p_next)), Some((got, t_next))) if wanted == "*" || wanted == got => {
                (p, t) = (p_next, t_next);
            }
            _ => {
                let Some((p_after, t_end)) = resume else {
                    return false;
                };
                let Some((_, t_next)) = segment(topic, t_end) else {
                    return false;
                };
                resume = Some((p_after, t_next));
                (p, t) = (p_after, t_next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one table every user of topic patterns agrees with.
    #[test]
    fn pattern_table() {
        for (pattern, topic, expected) in [
            // Literal segments.
            ("plugin.installed", "plugin.installed", true),
            ("plugin.installed", "plugin.Installed", false),
            ("notify.sent", "notify.sent.x", false),
            ("notify.sent", "notify", false),
            // `*` is exactly one segment, wherever it stands.
            ("plugin.*", "plugin.installed", true),
            ("plugin.*", "plugin.config.changed", false),
            ("plugin.*", "plugin", false),
            ("plugin.*", "plugins.installed", false),
            ("*", "x", true),
            ("*", "any.thing", false),
            ("*.failed", "plugin.failed", true),
            ("*.failed", "plugin.activation.failed", false),
            ("*.failed", "failed", false),
            ("a.*.c", "a.b.c", true),
            ("a.*.c", "a.b.x.c", false),
            ("a.*.c", "a.b.c.d", false),
            ("a.*.c", "a.b.d", false),
            ("*.*", "a.b", true),
            ("*.*", "a.b.c", false),
            // `**` is one or more segments.
            ("plugin.**", "plugin.installed", true),
            ("plugin.**", "plugin.config.changed", true),
            ("plugin.**", "plugin", false),
            ("**", "x", true),
            ("**", "any.thing.at.all", true),
            ("**.failed", "plugin.activation.failed", true),
            ("**.failed", "failed", false),
            ("a.**.c", "a.b.c", true),
            ("a.**.c", "a.b.x.c", true),
            ("a.**.c", "a.c", false),
            ("a.**.c.**", "a.x.c.y.c.z", true),
            ("a.**.c.**", "a.x.c", false),
            ("**.*", "a", false),
            ("**.*", "a.b", true),
            // `#` is an ordinary character.
            ("a.#", "a.b", false),
            ("a.#", "a.#", true),
            // Malformed topics and patterns match nothing.
            ("a.*", "a..b", false),
            ("a.**", "a..b", false),
            ("*", "", false),
            ("", "x", false),
            ("a*", "ab", false),
            ("a.***", "a.b", false),
            ("a..*", "a.b", false),
        ] {
            assert_eq!(
                topic_matches(pattern, topic),
                expected,
                "{pattern} ~ {topic}"
            );
            if let Ok(checked) = TopicPattern::new(pattern) {
                assert_eq!(checked.matches(topic), expected, "{pattern} ~ {topic}");
            }
        }
    }

    #[test]
    fn malformed_names_say_why() {
        for (pattern, expected) in [
            ("", TopicError::Empty),
            ("a..*", TopicError::EmptySegment),
            (".a", TopicError::EmptySegment),
            ("* ", TopicError::Whitespace),
            ("a\nb", TopicError::Whitespace),
            (
                "plug*.x",
                TopicError::PartialWildcard {
                    segment: "plug*".to_owned(),
                },
            ),
            (
                "a.***",
                TopicError::PartialWildcard {
                    segment: "***".to_owned(),
                },
            ),
        ] {
            assert_eq!(TopicPattern::new(pattern), Err(expected), "{pattern:?}");
        }
        assert_eq!(check_topic("plugin.*"), Err(TopicError::WildcardInTopic));
        assert_eq!(
            check_topic(&"a".repeat(MAX_TOPIC_LEN + 1)),
            Err(TopicError::TooLong {
                len: MAX_TOPIC_LEN + 1
            })
        );
        assert_eq!(check_topic("plugin.installed"), Ok(()));
    }

    #[test]
    fn long_patterns_stay_linear() {
        // Backtracking goes only to the last `**`: a pattern of many `**`
        // against a long topic that almost matches finishes at once.
        let pattern = vec!["**"; 60].join(".") + ".end";
        let topic = vec!["x"; 120].join(".");
        assert!(!topic_matches(&pattern, &topic));
        assert!(topic_matches(&pattern, &(topic + ".end")));
    }
}
