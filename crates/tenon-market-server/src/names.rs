//! Name rules for namespaces (the publisher part of an id) and plugin names.
//!
//! Ids are already lowercase ASCII letters, digits and `-`, 1 to 64 bytes a
//! part (`tenon_manifest::PluginId`). On top of that, as crates.io does for
//! `-`/`_`: two names that differ only in their dashes collide (`acme` and
//! `ac-me` are one namespace, `hello-world` and `helloworld` one plugin of
//! it), and a few namespaces are reserved, so nobody can impersonate the
//! project or the marketplace.

/// Namespaces nobody can claim through the API.
pub const RESERVED_NAMESPACES: &[&str] = &[
    "admin",
    "api",
    "core",
    "index",
    "marketplace",
    "official",
    "root",
    "std",
    "system",
    "tenon",
];

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The namespace is reserved.
    #[error("the namespace `{0}` is reserved")]
    Reserved(String),
    /// The name collides with a different spelling already taken.
    #[error(
        "the {kind} `{name}` is too close to the existing `{existing}` (names that differ only in '-' are one name)"
    )]
    Collision {
        /// `namespace` or `plugin`.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The name already taken.
        existing: String,
    },
}

/// The form two names are compared in: without dashes.
pub fn normalize(name: &str) -> String {
    name.chars().filter(|c| *c != '-').collect()
}

/// Refuses a reserved namespace (compared normalized, so `te-non` is
/// reserved too).
pub fn check_namespace(name: &str) -> Result<(), NameError> {
    let normalized = normalize(name);
    if RESERVED_NAMESPACES
        .iter()
        .any(|r| normalize(r) == normalized)
    {
        return Err(NameError::Reserved(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_normalized() {
        for (name, reserved) in [
            ("tenon", true),
            ("te-non", true),
            ("admin", true),
            ("acme", false),
            ("tenon-labs", false),
        ] {
            assert_eq!(check_namespace(name).is_err(), reserved, "{name}");
        }
        assert_eq!(normalize("hello-world"), normalize("helloworld"));
        assert_ne!(normalize("hello"), normalize("hullo"));
    }
}
