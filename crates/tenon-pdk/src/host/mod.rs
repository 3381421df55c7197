//! The host API: what a plugin may ask of its host.
//!
//! Every call is checked by the host against the permissions the operator
//! granted (declared in the manifest's `[permissions]`); a refusal comes back
//! as [`HostError::PermissionDenied`](crate::HostError::PermissionDenied), never
//! as a trap. Each call is bounded by the deadline of the plugin call it is
//! made from.
//!
//! | module | needs |
//! |---|---|
//! | [`log`] | nothing |
//! | [`config`] | keys declared in `[config]`; secrets listed in `permissions.secrets` |
//! | [`kv`] | `permissions.kv` (with a quota) |
//! | [`http`] | `permissions.network.outbound` allowlisting the host |
//! | [`events`] | `permissions.events.publish` matching the topic |

pub mod http;
pub mod log;

/// Config values and secrets, read at any time (not only at activation).
pub mod config {
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    use crate::{HostError, sys};

    /// The value of a declared config key (or of a granted secret), as JSON;
    /// `None` when it is not set.
    pub fn get_value(key: &str) -> Result<Option<Value>, HostError> {
        sys::config_get(key)?
            .map(|text| {
                serde_json::from_str(&text).map_err(|e| {
                    HostError::Decode(format!("config key `{key}` is not valid JSON: {e}"))
                })
            })
            .transpose()
    }

    /// The value of a declared config key decoded as `T`; `None` when it is
    /// not set.
    pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, HostError> {
        match get_value(key)? {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value).map(Some).map_err(|e| {
                HostError::Decode(format!(
                    "config key `{key}` does not have the expected shape: {e}"
                ))
            }),
        }
    }

    /// A secret (a config field with `secret = true`, listed in
    /// `permissions.secrets`). Secrets are never part of the config passed to
    /// `activate`; this is the only way to read them.
    pub fn secret(key: &str) -> Result<Option<String>, HostError> {
        get(key)
    }
}

/// The plugin's own key-value store: per plugin and per tenant, bounded by the
/// quota in `permissions.kv`.
pub mod kv {
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use crate::{HostError, sys};

    /// The value of `key`, or `None`.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
        sys::kv_get(key)
    }

    /// Writes `value` under `key` (counted against the quota).
    pub fn set(key: &str, value: impl AsRef<[u8]>) -> Result<(), HostError> {
        sys::kv_set(key, value.as_ref())
    }

    /// Deletes `key`; deleting a missing key is not an error.
    pub fn delete(key: &str) -> Result<(), HostError> {
        sys::kv_delete(key)
    }

    /// The keys starting with `prefix`, in order.
    pub fn list(prefix: &str) -> Result<Vec<String>, HostError> {
        sys::kv_list(prefix)
    }

    /// The value of `key` decoded from JSON, or `None`.
    pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, HostError> {
        get(key)?
            .map(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| {
                    HostError::Decode(format!(
                        "KV key `{key}` does not hold JSON of the expected shape: {e}"
                    ))
                })
            })
            .transpose()
    }

    /// Writes `value` as JSON under `key`.
    pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), HostError> {
        let bytes = serde_json::to_vec(value).map_err(|e| {
            HostError::InvalidInput(format!("KV key `{key}`: the value does not serialize: {e}"))
        })?;
        set(key, bytes)
    }
}

/// Events published on the host's event bus.
pub mod events {
    use serde::Serialize;
    use serde_json::Value;

    use crate::{HostError, sys};

    /// Publishes `payload` on `topic` (which `permissions.events.publish`
    /// must match).
    pub fn emit(topic: &str, payload: &Value) -> Result<(), HostError> {
        sys::emit_event(topic, &payload.to_string())
    }

    /// Publishes any serializable payload.
    pub fn emit_json<T: Serialize + ?Sized>(topic: &str, payload: &T) -> Result<(), HostError> {
        let text = serde_json::to_string(payload).map_err(|e| {
            HostError::InvalidInput(format!(
                "event `{topic}`: the payload does not serialize: {e}"
            ))
        })?;
        sys::emit_event(topic, &text)
    }
}
