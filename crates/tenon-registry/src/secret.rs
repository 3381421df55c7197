//! Encryption of secret config values at rest: XChaCha20-Poly1305 with a
//! random 192-bit nonce per value, bound to where the value lives.

use std::fmt;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::error::RegistryError;

/// The host's key for secret config values: 32 bytes.
///
/// Keep it outside the registry (an environment variable, a file readable
/// only by the host, a KMS). Its [`fingerprint`](Self::fingerprint) is stored
/// beside each secret so that a wrong key is reported as such.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey {
    bytes: [u8; 32],
}

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;

impl SecretKey {
    /// The key length in bytes.
    pub const LEN: usize = 32;

    /// A key from raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self { bytes }
    }

    /// A new random key from the operating system's generator.
    pub fn generate() -> Self {
        Self {
            bytes: XChaCha20Poly1305::generate_key(&mut OsRng).into(),
        }
    }

    /// Reads a key written as 64 hex digits or as standard base64 of 32
    /// bytes (surrounding whitespace is ignored).
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let text = text.trim();
        let mut bytes = [0u8; 32];
        if text.len() == 64 && hex::decode_to_slice(text, &mut bytes).is_ok() {
            return Ok(Self { bytes });
        }
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(decoded) if decoded.len() == Self::LEN => {
                bytes.copy_from_slice(&decoded);
                Ok(Self { bytes })
            }
            _ => Err(RegistryError::InvalidInput {
                what: "secret key",
                // Never echo what may be key material.
                value: format!("<{} characters>", text.chars().count()),
                reason: "expected 32 bytes as 64 hex digits or as base64".to_owned(),
            }),
        }
    }

    /// The key as 64 hex digits, to store it where the host keeps secrets.
    pub fn reveal_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// A short public name of the key, derived from it by a one-way hash:
    /// safe to log and to store.
    pub fn fingerprint(&self) -> KeyFingerprint {
        let mut hash = Sha256::new();
        hash.update(b"tenon-registry secret key fingerprint\0");
        hash.update(self.bytes);
        let mut fingerprint = [0; 8];
        fingerprint.copy_from_slice(&hash.finalize()[..8]);
        KeyFingerprint(fingerprint)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.bytes.into())
    }

    /// Encrypts `plaintext`, binding it to `aad`. Returns the stored form:
    /// a format byte, the nonce and the ciphertext with its tag.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any message shorter than 256 GiB");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Decrypts what [`seal`](Self::seal) produced with the same `aad`;
    /// `None` if it was altered, moved or sealed with another key.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (&format, rest) = sealed.split_first()?;
        if format != FORMAT_V1 || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .ok()
    }
}

/// Which [`SecretKey`] sealed a secret: `k1:` and 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyFingerprint([u8; 8]);

impl KeyFingerprint {
    const PREFIX: &'static str = "k1:";

    /// Reads the text form back.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let mut bytes = [0; 8];
        text.strip_prefix(Self::PREFIX)
            .and_then(|hex| hex::decode_to_slice(hex, &mut bytes).ok())
            .ok_or_else(|| {
                RegistryError::invalid("key fingerprint", text, "expected k1: and 16 hex digits")
            })?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, hex::encode(self.0))
    }
}

impl fmt::Debug for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for KeyFingerprint {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let key = SecretKey::generate();
        let sealed = key.seal(b"where", b"hunter2");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(key.open(b"where", &sealed).unwrap(), b"hunter2");
        assert_ne!(sealed, key.seal(b"where", b"hunter2"), "nonces are random");
        assert!(key.open(b"elsewhere", &sealed).is_none());
        assert!(SecretKey::generate().open(b"where", &sealed).is_none());
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(key.open(b"where", &altered).is_none());
        assert!(key.open(b"where", &[]).is_none());
        assert!(key.open(b"where", &sealed[..10]).is_none());
    }

    #[test]
    fn parsing() {
        let key = SecretKey::from_bytes([7; 32]);
        assert_eq!(SecretKey::parse(&key.reveal_hex()).unwrap(), key);
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(SecretKey::parse(&format!(" {b64}\n")).unwrap(), key);
        let err = SecretKey::parse("not-a-key").unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid secret key `<9 characters>`: expected 32 bytes as 64 hex digits or as base64"
        );
        assert!(!format!("{key:?}").contains(&key.reveal_hex()));
        let fingerprint = key.fingerprint();
        assert!(fingerprint.to_string().starts_with("k1:"));
        assert_eq!(fingerprint.to_string().len(), 19);
        assert_eq!(
            KeyFingerprint::parse(&fingerprint.to_string()).unwrap(),
            fingerprint
        );
        assert!(KeyFingerprint::parse("k2:0011223344556677").is_err());
        assert_ne!(
            key.fingerprint(),
            SecretKey::from_bytes([8; 32]).fingerprint()
        );
    }
}
