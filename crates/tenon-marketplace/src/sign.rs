//! Detached ed25519 signatures: keys, the signed message, and the signature
//! file stored beside an archive (`<archive>.sig`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{SIGNATURE_LENGTH, Signer as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tenon_manifest::{PluginId, Version};

use crate::digest::Sha256Digest;
use crate::error::PackageError;
use crate::info::PackageInfo;

/// The domain-separation prefix of every signed message: a signature made
/// for a Tenon package cannot be replayed as anything else, nor the other
/// way round.
pub const SIGNATURE_CONTEXT: &str = "tenon package signature v1";

/// The extension of signature files: `acme.hello-1.0.0.tenon.sig`.
pub const SIGNATURE_EXTENSION: &str = "sig";

/// The largest signature file read, in bytes.
pub const MAX_SIGNATURE_FILE_BYTES: usize = 64 * 1024;

/// The most signatures one file may hold.
pub const MAX_SIGNATURES: usize = 16;

/// Who made a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The plugin's author (publisher).
    Author,
    /// A marketplace, counter-signing a package it accepted.
    Marketplace,
}

impl Role {
    /// `author` or `marketplace`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Author => "author",
            Self::Marketplace => "marketplace",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A short, stable name for a public key: the first 8 bytes of the sha256 of
/// its 32 bytes, as 16 hex digits. Always recomputed from the key, never
/// trusted from a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ed25519 public key; text form: standard base64 of its 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Parses the 32 bytes of a key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, PackageError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| invalid_key("the 32 bytes are not an ed25519 public key"))
    }

    /// Parses the base64 text form.
    pub fn from_base64(text: &str) -> Result<Self, PackageError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|e| invalid_key(format!("a public key is 32 bytes in base64: {e}")))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            invalid_key(format!("a public key is 32 bytes, this is {}", b.len()))
        })?;
        Self::from_bytes(&bytes)
    }

    /// The base64 text form.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.as_bytes())
    }

    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Its short name.
    pub fn key_id(&self) -> KeyId {
        KeyId(hex::encode(
            &Sha256Digest::of(self.as_bytes()).as_bytes()[..8],
        ))
    }

    /// Whether `signature` is this key's signature of `message` (strict
    /// verification: no malleable or weak-key signatures). Callers sign and
    /// verify domain-separated messages only ([`signed_message`], the
    /// marketplace metadata's own context).
    pub fn verifies(&self, message: &[u8], signature: &[u8; SIGNATURE_LENGTH]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.0.verify_strict(message, &signature).is_ok()
    }
}

/// Ordered by the key's bytes (so that policies can key maps by it).
impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

impl FromStr for PublicKey {
    type Err = PackageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_base64(s)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_base64(&text).map_err(serde::de::Error::custom)
    }
}

/// An ed25519 signing (secret) key; text form: standard base64 of its
/// 32-byte seed. Its `Debug` shows only the key id.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Self {
        Self(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// The key for a 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// Parses the base64 text form.
    pub fn from_base64(text: &str) -> Result<Self, PackageError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| invalid_key("a secret key is a 32-byte seed in base64"))?;
        let seed: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            invalid_key(format!(
                "a secret key is a 32-byte seed, this is {} bytes",
                b.len()
            ))
        })?;
        Ok(Self::from_seed(&seed))
    }

    /// The base64 text form. Keep it secret.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The public key's short name.
    pub fn key_id(&self) -> KeyId {
        self.public_key().key_id()
    }

    /// Signs `message`, which must begin with a domain-separation context of
    /// its own (as [`signed_message`] and the marketplace metadata do).
    pub fn sign_message(&self, message: &[u8]) -> [u8; SIGNATURE_LENGTH] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.key_id())
    }
}

/// The bytes a signature covers:
///
/// ```text
/// tenon package signature v1\n
/// <role>\n
/// <publisher/name>\n
/// <version>\n
/// <package sha256, 64 lowercase hex digits>
/// ```
pub fn signed_message(
    role: Role,
    plugin: &PluginId,
    version: &Version,
    sha256: &Sha256Digest,
) -> Vec<u8> {
    format!("{SIGNATURE_CONTEXT}\n{role}\n{plugin}\n{version}\n{sha256}").into_bytes()
}

/// One signature of a signature file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureEntry {
    /// Who signed.
    pub role: Role,
    /// The signing key's id (informational: checked against `public_key`).
    pub key_id: KeyId,
    /// The signing key.
    pub public_key: PublicKey,
    /// The ed25519 signature of [`signed_message`], standard base64 of 64
    /// bytes.
    pub signature: String,
}

/// A signature file: what was signed and the signatures, stored as JSON
/// beside the archive (`<archive>.sig`).
///
/// ```json
/// {
///   "package_sha256": "…64 hex…",
///   "plugin": "acme/hello",
///   "version": "1.2.0",
///   "signatures": [
///     {"role": "author", "key_id": "…16 hex…", "public_key": "…base64…", "signature": "…base64…"}
///   ]
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    /// The sha256 of the archive the signatures are for.
    pub package_sha256: Sha256Digest,
    /// The plugin, as its manifest names it (signed, so that trust in a key
    /// can be limited to a publisher without reading the archive first).
    pub plugin: PluginId,
    /// Its version (signed).
    pub version: Version,
    /// The signatures, in the order they were added.
    pub signatures: Vec<SignatureEntry>,
}

impl SignatureFile {
    /// An empty signature file for a package.
    pub fn new(package_sha256: Sha256Digest, plugin: PluginId, version: Version) -> Self {
        Self {
            package_sha256,
            plugin,
            version,
            signatures: Vec::new(),
        }
    }

    /// An empty signature file for the package `info` describes.
    pub fn for_package(info: &PackageInfo) -> Self {
        Self::new(info.sha256, info.id().clone(), info.version().clone())
    }

    /// The signature file's path for an archive: `<archive>.sig`.
    pub fn path_for(archive: &Path) -> PathBuf {
        let mut name = archive.as_os_str().to_owned();
        name.push(".");
        name.push(SIGNATURE_EXTENSION);
        PathBuf::from(name)
    }

    /// The message a signature in `role` covers.
    pub fn message(&self, role: Role) -> Vec<u8> {
        signed_message(role, &self.plugin, &self.version, &self.package_sha256)
    }

    /// Signs in `role` with `key`, replacing an earlier signature by the same
    /// key in the same role.
    pub fn sign(&mut self, role: Role, key: &SigningKey) {
        let signature = key.0.sign(&self.message(role));
        let public_key = key.public_key();
        self.signatures
            .retain(|s| !(s.role == role && s.public_key == public_key));
        self.signatures.push(SignatureEntry {
            role,
            key_id: public_key.key_id(),
            public_key,
            signature: BASE64.encode(signature.to_bytes()),
        });
    }

    /// Parses a signature file (JSON, at most [`MAX_SIGNATURE_FILE_BYTES`]).
    pub fn from_json(bytes: &[u8]) -> Result<Self, PackageError> {
        if bytes.len() > MAX_SIGNATURE_FILE_BYTES {
            return Err(invalid_file(format!(
                "it is {} bytes, more than the limit of {MAX_SIGNATURE_FILE_BYTES}",
                bytes.len()
            )));
        }
        let file: Self = serde_json::from_slice(bytes).map_err(|e| invalid_file(e.to_string()))?;
        if file.signatures.len() > MAX_SIGNATURES {
            return Err(invalid_file(format!(
                "it holds {} signatures, more than the limit of {MAX_SIGNATURES}",
                file.signatures.len()
            )));
        }
        for entry in &file.signatures {
            let actual = entry.public_key.key_id();
            if entry.key_id != actual {
                return Err(invalid_file(format!(
                    "the {} signature says key_id {}, but its public key's id is {actual}",
                    entry.role, entry.key_id
                )));
            }
        }
        Ok(file)
    }

    /// The JSON form, pretty-printed with a final newline.
    pub fn to_json(&self) -> String {
        let mut text =
            serde_json::to_string_pretty(self).expect("strings and lists always serialize");
        text.push('\n');
        text
    }

    /// Checks every signature against the file's message for its role; the
    /// first that does not verify is an error. Says nothing about whether
    /// the keys are trusted: that is [`verify`](crate::verify)'s job.
    pub fn check_signatures(&self) -> Result<(), PackageError> {
        for entry in &self.signatures {
            let bad = || PackageError::BadSignature {
                role: entry.role,
                key_id: entry.public_key.key_id(),
            };
            let raw = BASE64.decode(&entry.signature).map_err(|_| bad())?;
            let raw: [u8; SIGNATURE_LENGTH] = raw.try_into().map_err(|_| bad())?;
            if !entry.public_key.verifies(&self.message(entry.role), &raw) {
                return Err(bad());
            }
        }
        Ok(())
    }
}

fn invalid_key(message: impl Into<String>) -> PackageError {
    PackageError::InvalidKey {
        message: message.into(),
    }
}

fn invalid_file(message: String) -> PackageError {
    PackageError::InvalidSignatureFile { message }
}
