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

/// "Key `from` hands over to key `to`", signed by `from`. An operator adds
/// it to the trust policy; from then on `to` is trusted wherever `from` is
/// (for the same publishers, at the same level), and a publisher bound to
/// `from` accepts packages signed by `to`.
///
/// ```json
/// {"from": "…base64…", "to": "…base64…", "signature": "…base64 of 64 bytes…"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRotation {
    /// The old key (it signs the statement).
    pub from: PublicKey,
    /// The new key.
    pub to: PublicKey,
    /// The old key's ed25519 signature of [`KeyRotation::message`].
    pub signature: String,
}

impl KeyRotation {
    /// `old` hands over to `new`.
    pub fn sign(old: &SigningKey, new: &PublicKey) -> Self {
        let from = old.public_key();
        let signature = old.sign_message(&Self::message_for(&from, new));
        Self {
            from,
            to: *new,
            signature: BASE64.encode(signature),
        }
    }

    fn message_for(from: &PublicKey, to: &PublicKey) -> Vec<u8> {
        format!("{ROTATION_CONTEXT}\n{from}\n{to}").into_bytes()
    }

    /// The bytes the old key signs:
    /// `tenon key rotation v1\n<from base64>\n<to base64>`.
    pub fn message(&self) -> Vec<u8> {
        Self::message_for(&self.from, &self.to)
    }

    /// Checks the old key's signature (strictly).
    pub fn check(&self) -> Result<(), PackageError> {
        let bad = || PackageError::BadRotation {
            from: self.from.key_id(),
            to: self.to.key_id(),
        };
        let raw = BASE64.decode(&self.signature).map_err(|_| bad())?;
        let raw: [u8; SIGNATURE_LENGTH] = raw.try_into().map_err(|_| bad())?;
        if self.from == self.to || !self.from.verifies(&self.message(), &raw) {
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
