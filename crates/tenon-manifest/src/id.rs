//! Plugin identifiers: `publisher/name`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest a publisher or a name may be, in bytes.
pub const MAX_ID_PART_LEN: usize = 64;

/// A plugin's identity: `publisher/name`, each part 1 to 64 lowercase ASCII
/// letters, digits or `-`.
///
/// Ordering is by the whole string, so sorting ids groups them by publisher.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PluginId {
    full: String,
    slash: usize,
}

/// Why a string is not a [`PluginId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginIdError {
    /// There is no `/`, or more than one.
    #[error("`{0}` is not of the form publisher/name")]
    Shape(String),
    /// A part is empty or longer than [`MAX_ID_PART_LEN`].
    #[error("the {part} of `{id}` must be 1 to {MAX_ID_PART_LEN} characters long, not {len}")]
    Length {
        /// The whole id.
        id: String,
        /// `publisher` or `name`.
        part: &'static str,
        /// Its length.
        len: usize,
    },
    /// A part holds a character outside `a-z`, `0-9` and `-`.
    #[error(
        "the {part} of `{id}` may hold only lowercase ascii letters, digits and '-', not {found:?}"
    )]
    Character {
        /// The whole id.
        id: String,
        /// `publisher` or `name`.
        part: &'static str,
        /// The first character that is not allowed.
        found: char,
    },
}

impl PluginId {
    /// A stand-in used while walking a manifest whose id is invalid; never
    /// returned to callers (the manifest is refused).
    pub(crate) fn placeholder() -> Self {
        Self {
            full: "invalid/invalid".to_owned(),
            slash: "invalid".len(),
        }
    }

    /// Parses and checks an id.
    pub fn new(id: &str) -> Result<Self, PluginIdError> {
        let mut parts = id.split('/');
        let (Some(publisher), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(PluginIdError::Shape(id.to_owned()));
        };
        for (part, text) in [("publisher", publisher), ("name", name)] {
            check_part(id, part, text)?;
        }
        Ok(Self {
            full: id.to_owned(),
            slash: publisher.len(),
        })
    }

    /// Checks a publisher name on its own (as a trust policy names one) by
    /// the rules of an id's publisher part.
    pub fn check_publisher(publisher: &str) -> Result<(), PluginIdError> {
        check_part(publisher, "publisher", publisher)
    }

    /// The whole id, `publisher/name`.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The part before the `/`.
    pub fn publisher(&self) -> &str {
        &self.full[..self.slash]
    }

    /// The part after the `/`.
    pub fn name(&self) -> &str {
        &self.full[self.slash + 1..]
    }
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.full, f)
    }
}

/// Checks one part of the id `id`.
fn check_part(id: &str, part: &'static str, text: &str) -> Result<(), PluginIdError> {
    if text.is_empty() || text.len() > MAX_ID_PART_LEN {
        return Err(PluginIdError::Length {
            id: id.to_owned(),
            part,
            len: text.chars().count(),
        });
    }
    if let Some(found) = text
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(PluginIdError::Character {
            id: id.to_owned(),
            part,
            found,
        });
    }
    Ok(())
}

impl FromStr for PluginId {
    type Err = PluginIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for PluginId {
    fn as_ref(&self) -> &str {
        &self.full
    }
}

impl std::borrow::Borrow<str> for PluginId {
    fn borrow(&self) -> &str {
        &self.full
    }
}

impl Serialize for PluginId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.full)
    }
}

impl<'de> Deserialize<'de> for PluginId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::new(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(&str, &str), &str>) {
        let got = PluginId::new(input)
            .map(|id| (id.publisher().to_owned(), id.name().to_owned()))
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|(p, n)| (p.to_owned(), n.to_owned()))
            .map_err(str::to_owned);
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn ids() {
        check("acme/slack-notifier", Ok(("acme", "slack-notifier")));
        check("a/b", Ok(("a", "b")));
        check("0/9-", Ok(("0", "9-")));
        check("acme", Err("`acme` is not of the form publisher/name"));
        check("a/b/c", Err("`a/b/c` is not of the form publisher/name"));
        check(
            "/b",
            Err("the publisher of `/b` must be 1 to 64 characters long, not 0"),
        );
        check(
            "Acme/x",
            Err(
                "the publisher of `Acme/x` may hold only lowercase ascii letters, digits and '-', not 'A'",
            ),
        );
        check(
            "acme/x_y",
            Err(
                "the name of `acme/x_y` may hold only lowercase ascii letters, digits and '-', not '_'",
            ),
        );
        let long = format!("acme/{}", "a".repeat(65));
        check(
            &long,
            Err(&format!(
                "the name of `{long}` must be 1 to 64 characters long, not 65"
            )),
        );
        check(
            &format!("acme/{}", "a".repeat(64)),
            Ok(("acme", &"a".repeat(64))),
        );
    }
}
