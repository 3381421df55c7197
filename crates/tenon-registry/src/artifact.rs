//! Content-addressed artifacts: a plugin version's package or module bytes,
//! named by their sha256.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::RegistryError;

/// A sha256 digest, shown as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits (either case; a `sha256:` prefix is allowed).
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let digits = text.strip_prefix("sha256:").unwrap_or(text);
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| {
            RegistryError::invalid("sha256 digest", text, "expected 64 hexadecimal digits")
        })?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl FromStr for Sha256Digest {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What [`put_artifact`](crate::RegistryStore::put_artifact) stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactInfo {
    /// Its name: the sha256 of its bytes.
    pub sha256: Sha256Digest,
    /// Its length in bytes.
    pub size: u64,
    /// When it was first stored.
    pub created_at: OffsetDateTime,
    /// Whether this call stored it (`false`: the same bytes were already
    /// there, and nothing was written).
    pub newly_stored: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let d = Sha256Digest::of(b"abc");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(d.to_hex(), hex);
        assert_eq!(Sha256Digest::parse(hex).unwrap(), d);
        assert_eq!(
            Sha256Digest::parse(&format!("sha256:{}", hex.to_uppercase())).unwrap(),
            d
        );
        assert_eq!(format!("{d:?}"), format!("sha256:{hex}"));
        for bad in [
            "",
            "abc",
            &hex[1..],
            &format!("{hex}00"),
            &hex.replace('b', "g"),
        ] {
            assert!(Sha256Digest::parse(bad).is_err(), "{bad}");
        }
    }
}
