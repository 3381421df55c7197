//! Key rotation: a statement, signed by a publisher's old key, that a new
//! key speaks for it from now on.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::SIGNATURE_LENGTH;
use serde::{Deserialize, Serialize};

use crate::error::PackageError;
use crate::sign::{PublicKey, SigningKey};

/// The domain-separation prefix of a rotation statement's signed message.
pub const ROTATION_CONTEXT: &str = "tenon key rotation v1";

/// The prefix of a statement made for one publisher.
pub const PUBLISHER_ROTATION_CONTEXT: &str = "tenon key rotation v2";

/// "Key `from` hands over to key `to`" (for `publisher`'s plugins only,
/// when named), signed by `from`. An operator adds it to the trust policy;
/// from then on `to` is trusted wherever `from` is — for `publisher` only
/// when the statement names one — and a publisher bound to `from` (that
/// publisher only, when named) accepts packages signed by `to`.
///
/// ```json
/// {"from": "…base64…", "to": "…base64…", "publisher": "acme", "signature": "…base64 of 64 bytes…"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRotation {
    /// The old key (it signs the statement).
    pub from: PublicKey,
    /// The new key.
    pub to: PublicKey,
    /// The one publisher the statement is made for; `None` for every
    /// publisher the old key is trusted for or bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// The old key's ed25519 signature of [`KeyRotation::message`].
    pub signature: String,
}

impl KeyRotation {
    /// `old` hands over to `new`, for every publisher.
    pub fn sign(old: &SigningKey, new: &PublicKey) -> Self {
        Self::sign_scoped(old, new, None)
    }

    /// `old` hands over to `new` for `publisher`'s plugins only.
    pub fn sign_for(old: &SigningKey, new: &PublicKey, publisher: &str) -> Self {
        Self::sign_scoped(old, new, Some(publisher))
    }

    fn sign_scoped(old: &SigningKey, new: &PublicKey, publisher: Option<&str>) -> Self {
        let from = old.public_key();
        let signature = old.sign_message(&Self::message_for(&from, new, publisher));
        Self {
            from,
            to: *new,
            publisher: publisher.map(str::to_owned),
            signature: BASE64.encode(signature),
        }
    }

    fn message_for(from: &PublicKey, to: &PublicKey, publisher: Option<&str>) -> Vec<u8> {
        match publisher {
            None => format!("{ROTATION_CONTEXT}\n{from}\n{to}").into_bytes(),
            Some(publisher) => {
                format!("{PUBLISHER_ROTATION_CONTEXT}\n{publisher}\n{from}\n{to}").into_bytes()
            }
        }
    }

    /// The bytes the old key signs:
    /// `tenon key rotation v1\n<from base64>\n<to base64>`, or for one
    /// publisher `tenon key rotation v2\n<publisher>\n<from>\n<to>`.
    pub fn message(&self) -> Vec<u8> {
        Self::message_for(&self.from, &self.to, self.publisher.as_deref())
    }

    /// Whether the statement speaks for `publisher`.
    pub fn applies_to(&self, publisher: &str) -> bool {
        self.publisher.as_deref().is_none_or(|p| p == publisher)
    }

    /// Whether two statements speak for a publisher in common.
    pub(crate) fn overlaps(&self, other: &Self) -> bool {
        match (&self.publisher, &other.publisher) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }

    /// Checks the old key's signature (strictly).
    pub fn check(&self) -> Result<(), PackageError> {
        let bad = || PackageError::BadRotation {
            from: self.from.key_id(),
            to: self.to.key_id(),
        };
        let raw = BASE64.decode(&self.signature).map_err(|_| bad())?;
        let raw: [u8; SIGNATURE_LENGTH] = raw.try_into().map_err(|_| bad())?;
        if self.from == self.to
            || self
                .publisher
                .as_deref()
                .is_some_and(|p| tenon_manifest::PluginId::check_publisher(p).is_err())
            || !self.from.verifies(&self.message(), &raw)
        {
            return Err(bad());
        }
        Ok(())
    }

    /// Parses a statement (JSON).
    pub fn from_json(bytes: &[u8]) -> Result<Self, PackageError> {
        serde_json::from_slice(bytes).map_err(|e| PackageError::InvalidSignatureFile {
            message: format!("not a key rotation statement: {e}"),
        })
    }

    /// The JSON form, with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("keys and strings serialize");
        text.push('\n');
        text
    }
}
