//! Plugin configuration: values per key, secrets encrypted at rest and
//! redacted when read unless revealed with the key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use tenon_manifest::PluginId;

use crate::error::RegistryError;
use crate::secret::{KeyFingerprint, SecretKey};
use crate::tenant::TenantId;

/// A value to store under a config key.
#[derive(Clone, PartialEq)]
pub enum ConfigInput {
    /// Stored as is and returned by every read.
    Plain(serde_json::Value),
    /// Stored encrypted with the registry's secret key; needs one.
    Secret(serde_json::Value),
}

impl fmt::Debug for ConfigInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(value) => f.debug_tuple("Plain").field(value).finish(),
            Self::Secret(_) => f.write_str("Secret(<redacted>)"),
        }
    }
}

/// A stored config value, as read.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    /// A plain value.
    Plain(serde_json::Value),
    /// A secret: redacted, or revealed by
    /// [`get_config_revealed`](crate::RegistryStore::get_config_revealed).
    Secret(SecretValue),
}

impl ConfigValue {
    /// Whether the value is a secret.
    pub fn is_secret(&self) -> bool {
        matches!(self, Self::Secret(_))
    }
}

/// A secret config value. Its `Debug` never shows the value.
#[derive(Clone, PartialEq)]
pub struct SecretValue {
    revealed: Option<serde_json::Value>,
}

impl SecretValue {
    pub(crate) const REDACTED: Self = Self { revealed: None };

    pub(crate) fn revealed(value: serde_json::Value) -> Self {
        Self {
            revealed: Some(value),
        }
    }

    /// Whether the clear value is absent (a plain read).
    pub fn is_redacted(&self) -> bool {
        self.revealed.is_none()
    }

    /// The clear value, if it was revealed.
    pub fn expose(&self) -> Option<&serde_json::Value> {
        self.revealed.as_ref()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.revealed {
            None => f.write_str("SecretValue(<redacted>)"),
            Some(_) => f.write_str("SecretValue(<revealed, not shown>)"),
        }
    }
}

/// A plugin's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// Its tenant.
    pub tenant: TenantId,
    /// The plugin.
    pub plugin: PluginId,
    /// Grows by one with every change; 0 before the first. Pass it as
    /// [`ConfigChange::expected_revision`] to change safely.
    pub revision: u64,
    /// The values by key.
    pub values: BTreeMap<String, ConfigValue>,
}

impl PluginConfig {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&ConfigValue> {
        self.values.get(key)
    }

    /// The plain value of `key` (`None` for a secret).
    pub fn plain(&self, key: &str) -> Option<&serde_json::Value> {
        match self.values.get(key)? {
            ConfigValue::Plain(value) => Some(value),
            ConfigValue::Secret(_) => None,
        }
    }

    /// The revealed value of the secret `key`.
    pub fn secret(&self, key: &str) -> Option<&serde_json::Value> {
        match self.values.get(key)? {
            ConfigValue::Secret(secret) => secret.expose(),
            ConfigValue::Plain(_) => None,
        }
    }
}

/// A change to a plugin's configuration, applied in one transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigChange {
    /// Apply only if the configuration's revision is still this one
    /// ([`RegistryError::Conflict`] otherwise); `None` applies regardless.
    pub expected_revision: Option<u64>,
    /// Keys to set.
    pub set: BTreeMap<String, ConfigInput>,
    /// Keys to remove (absent keys are ignored).
    pub unset: BTreeSet<String>,
}

impl ConfigChange {
    /// The longest a config key may be.
    pub const MAX_KEY_LEN: usize = 256;

    /// An empty change, applied regardless of the revision.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies only at `revision`.
    pub fn expecting(mut self, revision: u64) -> Self {
        self.expected_revision = Some(revision);
        self
    }

    /// Sets a plain value.
    pub fn set_plain(mut self, key: &str, value: serde_json::Value) -> Self {
        self.set.insert(key.to_owned(), ConfigInput::Plain(value));
        self
    }

    /// Sets a secret value.
    pub fn set_secret(mut self, key: &str, value: serde_json::Value) -> Self {
        self.set.insert(key.to_owned(), ConfigInput::Secret(value));
        self
    }

    /// Removes a key.
    pub fn unset(mut self, key: &str) -> Self {
        self.unset.insert(key.to_owned());
        self
    }

    /// Checks the keys, and that a secret can be stored.
    pub(crate) fn check(&self, secret_key: Option<&SecretKey>) -> Result<(), RegistryError> {
        for key in self.set.keys().chain(&self.unset) {
            if key.is_empty() || key.len() > Self::MAX_KEY_LEN || key.chars().any(char::is_control)
            {
                return Err(RegistryError::invalid(
                    "config key",
                    key,
                    format!(
                        "a key is 1 to {} characters long, without control characters",
                        Self::MAX_KEY_LEN
                    ),
                ));
            }
            if self.set.contains_key(key) && self.unset.contains(key) {
                return Err(RegistryError::invalid(
                    "config change",
                    key,
                    "the key is both set and unset",
                ));
            }
        }
        if secret_key.is_none()
            && let Some(key) = self
                .set
                .iter()
                .find_map(|(k, v)| matches!(v, ConfigInput::Secret(_)).then_some(k))
        {
            return Err(RegistryError::SecretKeyMissing {
                action: format!("store the secret config value `{key}`"),
            });
        }
        Ok(())
    }

    /// The detail of the `config_changed` event: keys, never values.
    pub(crate) fn event_detail(&self, revision: u64) -> serde_json::Value {
        let secret: Vec<&String> = self
            .set
            .iter()
            .filter(|(_, v)| matches!(v, ConfigInput::Secret(_)))
            .map(|(k, _)| k)
            .collect();
        serde_json::json!({
            "set": self.set.keys().collect::<Vec<_>>(),
            "unset": self.unset,
            "secret": secret,
            "revision": revision,
        })
    }
}

/// How a config value is kept by a backend.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StoredValue {
    /// JSON text.
    Plain(String),
    /// [`SecretKey::seal`]ed JSON text, and the key's fingerprint.
    Secret {
        sealed: Vec<u8>,
        fingerprint: KeyFingerprint,
    },
}

/// Binds a sealed value to its tenant, plugin and key, so it cannot be moved.
fn aad(tenant: &TenantId, plugin: &PluginId, key: &str) -> Vec<u8> {
    let mut aad = b"tenon-registry/config/v1\0".to_vec();
    for part in [tenant.as_str(), plugin.as_str(), key] {
        aad.extend_from_slice(part.as_bytes());
        aad.push(0);
    }
    aad
}

/// Turns a checked change's values into their stored form.
pub(crate) fn encode_values(
    secret_key: Option<&SecretKey>,
    tenant: &TenantId,
    plugin: &PluginId,
    change: &ConfigChange,
) -> Result<Vec<(String, StoredValue)>, RegistryError> {
    change
        .set
        .iter()
        .map(|(key, input)| {
            let stored = match input {
                ConfigInput::Plain(value) => StoredValue::Plain(value.to_string()),
                ConfigInput::Secret(value) => {
                    let secret_key = secret_key.ok_or_else(|| RegistryError::SecretKeyMissing {
                        action: format!("store the secret config value `{key}`"),
                    })?;
                    StoredValue::Secret {
                        sealed: secret_key
                            .seal(&aad(tenant, plugin, key), value.to_string().as_bytes()),
                        fingerprint: secret_key.fingerprint(),
                    }
                }
            };
            Ok((key.clone(), stored))
        })
        .collect()
}

/// Reads stored values back; reveals secrets when `reveal` holds the key.
pub(crate) fn decode_values(
    tenant: &TenantId,
    plugin: &PluginId,
    revision: u64,
    stored: Vec<(String, StoredValue)>,
    reveal: Option<&SecretKey>,
) -> Result<PluginConfig, RegistryError> {
    let mut values = BTreeMap::new();
    for (key, value) in stored {
        let value = match value {
            StoredValue::Plain(text) => {
                ConfigValue::Plain(serde_json::from_str(&text).map_err(|e| {
                    RegistryError::decode(format!("config key `{key}` of `{plugin}`"), e)
                })?)
            }
            StoredValue::Secret {
                sealed,
                fingerprint,
            } => match reveal {
                None => ConfigValue::Secret(SecretValue::REDACTED),
                Some(secret_key) => {
                    if fingerprint != secret_key.fingerprint() {
                        return Err(RegistryError::SecretKeyMismatch {
                            tenant: tenant.clone(),
                            plugin: plugin.clone(),
                            key,
                            stored_fingerprint: fingerprint,
                            configured_fingerprint: secret_key.fingerprint(),
                        });
                    }
                    let clear = secret_key
                        .open(&aad(tenant, plugin, &key), &sealed)
                        .ok_or_else(|| RegistryError::SecretCorrupt {
                            tenant: tenant.clone(),
                            plugin: plugin.clone(),
                            key: key.clone(),
                        })?;
                    let value = serde_json::from_slice(&clear).map_err(|e| {
                        RegistryError::decode(format!("secret `{key}` of `{plugin}`"), e)
                    })?;
                    ConfigValue::Secret(SecretValue::revealed(value))
                }
            },
        };
        values.insert(key, value);
    }
    Ok(PluginConfig {
        tenant: tenant.clone(),
        plugin: plugin.clone(),
        revision,
        values,
    })
}
