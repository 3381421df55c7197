//! Event causation: which events led to an event.
//!
//! An event published by the host, or by a plugin outside the handling of an
//! event (in a hook handler, a command), starts a chain: its causation is
//! empty and its depth 0. An event a plugin publishes while it handles an
//! event `E` is caused by `E`: its causation is `E`'s causation followed by
//! `E` itself, one deeper. The event bus refuses an event deeper than its
//! limit, so two plugins answering each other's events cannot keep each
//! other busy for ever, and the refused chain names the loop.

use std::fmt;
use std::sync::Arc;

/// One event of a causation chain: its topic and who published it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CauseLink {
    /// The event's topic.
    pub topic: String,
    /// Its publisher: a plugin id, or `None` for the host.
    pub source: Option<String>,
}

impl fmt::Display for CauseLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{} from {source}", self.topic),
            None => write!(f, "{} from the host", self.topic),
        }
    }
}

/// The chain of events that led to an event, oldest first; empty for an
/// event that starts a chain. Cheap to clone (the links are shared).
///
/// ```
/// use tenon_types::Causation;
///
/// let root = Causation::default();
/// assert_eq!(root.depth(), 0);
/// let caused = root.then("a.x", Some("acme/a")).then("b.y", Some("acme/b"));
/// assert_eq!(caused.depth(), 2);
/// assert_eq!(caused.to_string(), "a.x from acme/a → b.y from acme/b");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Causation {
    links: Arc<[CauseLink]>,
}

impl Causation {
    /// How many events led to the event: 0 when it starts a chain.
    pub fn depth(&self) -> usize {
        self.links.len()
    }

    /// The events that led to it, oldest first.
    pub fn links(&self) -> &[CauseLink] {
        &self.links
    }

    /// The causation of an event published while handling the event
    /// `topic` from `source` whose own causation is `self`.
    #[must_use]
    pub fn then(&self, topic: &str, source: Option<&str>) -> Self {
        let mut links = Vec::with_capacity(self.links.len() + 1);
        links.extend_from_slice(&self.links);
        links.push(CauseLink {
            topic: topic.to_owned(),
            source: source.map(str::to_owned),
        });
        Self {
            links: links.into(),
        }
    }
}

impl fmt::Display for Causation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, link) in self.links.iter().enumerate() {
            if n > 0 {
                f.write_str(" → ")?;
            }
            write!(f, "{link}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_grow_one_link_at_a_time_and_share_nothing_mutable() {
        let root = Causation::default();
        let a = root.then("a.x", Some("acme/a"));
        let b = a.then("b.y", None);
        assert_eq!((root.depth(), a.depth(), b.depth()), (0, 1, 2));
        assert_eq!(a.to_string(), "a.x from acme/a");
        assert_eq!(b.to_string(), "a.x from acme/a → b.y from the host");
        assert_eq!(b.links()[0], a.links()[0]);
        assert_eq!(root.to_string(), "");
    }
}
