//! Tenants: every record of the registry belongs to one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::RegistryError;

/// A tenant's identity: 1 to 128 ASCII letters, digits, `-`, `_` or `.`,
/// not only dots (the id names a directory, so `.` and `..` would move).
///
/// A host that serves a single organisation uses [`TenantId::default`]
/// (`default`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(String);

impl TenantId {
    /// The longest a tenant id may be, in bytes.
    pub const MAX_LEN: usize = 128;

    /// The tenant used when none is named.
    pub const DEFAULT: &'static str = "default";

    /// Checks and wraps a tenant id.
    pub fn new(id: &str) -> Result<Self, RegistryError> {
        if id.is_empty() || id.len() > Self::MAX_LEN {
            return Err(RegistryError::invalid(
                "tenant id",
                id,
                format!(
                    "a tenant id is 1 to {} characters long, not {}",
                    Self::MAX_LEN,
                    id.len()
                ),
            ));
        }
        if let Some(found) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(RegistryError::invalid(
                "tenant id",
                id,
                format!(
                    "a tenant id may hold only ascii letters, digits, '-', '_' and '.', not {found:?}"
                ),
            ));
        }
        if id.bytes().all(|b| b == b'.') {
            return Err(RegistryError::invalid(
                "tenant id",
                id,
                "a tenant id names a directory and may not be only dots ('.' and '..' are relative path components)",
            ));
        }
        Ok(Self(id.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl FromStr for TenantId {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for TenantId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::new(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(), &str>) {
        let got = TenantId::new(input)
            .map(|t| assert_eq!(t.as_str(), input))
            .map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "input {input:?}");
    }

    #[test]
    fn tenant_ids() {
        check("default", Ok(()));
        check("Acme-Corp_2.eu", Ok(()));
        check(&"a".repeat(128), Ok(()));
        check(
            "",
            Err("invalid tenant id ``: a tenant id is 1 to 128 characters long, not 0"),
        );
        check(
            "acme/x",
            Err(
                "invalid tenant id `acme/x`: a tenant id may hold only ascii letters, digits, '-', '_' and '.', not '/'",
            ),
        );
        check(
            "a b",
            Err(
                "invalid tenant id `a b`: a tenant id may hold only ascii letters, digits, '-', '_' and '.', not ' '",
            ),
        );
        assert!(TenantId::new(&"a".repeat(129)).is_err());
        assert_eq!(TenantId::default().as_str(), "default");
    }

    /// The engine lays out plugin data as
    /// `<engine dir>/data/<tenant>/<publisher>/<name>`, so a tenant id of
    /// `..` would put plugin `cache/extism`'s data directory on wasmtime's
    /// Extism cache, and `.` would make tenant `.`'s plugin `acme/tools`
    /// own the directory holding tenant `acme`'s `tools/*` plugins. A
    /// tenant id is never a path component that moves.
    #[test]
    fn tenant_ids_are_not_relative_path_components() {
        for id in [".", "..", "...", "...."] {
            assert!(
                TenantId::new(id).is_err(),
                "tenant id {id:?} is accepted; <engine dir>/data/{id}/<publisher>/<name> leaves data/<tenant>"
            );
        }
    }
}
