//! The host API: what a plugin can ask of its host, and who is asking.

use std::sync::Arc;

use async_trait::async_trait;
use tenon_manifest::{Permissions, PluginId, Version};
use tenon_types::Causation;

/// Who is calling the host: one plugin, for one tenant, with the permissions
/// in force for it (declared ∩ granted, computed by the embedder).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The plugin.
    pub plugin: PluginId,
    /// Its version.
    pub version: Version,
    /// The tenant it runs for.
    pub tenant: String,
    /// The effective permissions.
    pub permissions: Arc<Permissions>,
}

/// Severity of a plugin's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Very fine detail.
    Trace,
    /// Detail for developers.
    Debug,
    /// Normal operation.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

/// An outbound HTTP request from a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`…
    pub method: String,
    /// An absolute `http` or `https` URL.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The response to an [`HttpRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body (capped at the plugin's response size limit).
    pub body: Vec<u8>,
}

/// Why the host refused or failed a plugin's request. The plugin receives it
/// as an error value; it never traps the plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The plugin lacks the permission; the text says which.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A quota or size limit would be exceeded.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The call's deadline passed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The request is malformed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The host could not serve it.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// A refused host call, reported to the [`SandboxObserver`] (the engine
/// records it as a `permission_denied` event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionDenial {
    /// The permission kind, as in the manifest: `network`, `filesystem`,
    /// `kv`, `secrets`, `config`, `events`, or a host kind (`org`) for a
    /// host service.
    pub permission: String,
    /// What was attempted (`POST https://evil.example/`, `config key token`…).
    pub attempted: String,
    /// Why it was refused.
    pub reason: String,
}

/// The services a host offers its plugins, implemented by the embedder (the
/// engine stores KV and config in its registry; [`crate::MemoryHost`]-style
/// in-memory implementations serve tests and small hosts).
///
/// The sandbox checks permissions before calling any of these methods:
/// an implementation only sees requests the caller is allowed to make. KV
/// implementations enforce `caller.permissions.kv.quota`.
#[async_trait]
pub trait HostApi: Send + Sync + 'static {
    /// Writes a plugin's log line (also its captured stdout and stderr).
    fn log(&self, caller: &Caller, level: LogLevel, message: &str, fields: &[(String, String)]);

    /// Reads a config value of the plugin; `None` when it is not set.
    async fn config_get(
        &self,
        caller: &Caller,
        key: &str,
    ) -> Result<Option<serde_json::Value>, HostError>;

    /// Reads a KV value.
    async fn kv_get(&self, caller: &Caller, key: &str) -> Result<Option<Vec<u8>>, HostError>;

    /// Writes a KV value, within the caller's quota.
    async fn kv_set(&self, caller: &Caller, key: &str, value: &[u8]) -> Result<(), HostError>;

    /// Deletes a KV value; a missing key is not an error.
    async fn kv_delete(&self, caller: &Caller, key: &str) -> Result<(), HostError>;

    /// Lists KV keys starting with `prefix`, in order.
    async fn kv_list(&self, caller: &Caller, prefix: &str) -> Result<Vec<String>, HostError>;

    /// Publishes an event. `cause` is the chain of events that led to it:
    /// the event the plugin is handling and what led to that, or nothing
    /// when the plugin publishes outside the handling of an event (see
    /// [`crate::CallOptions::cause`]). A host bounds the chain's depth, so
    /// that plugins answering each other's events cannot loop for ever.
    async fn emit_event(
        &self,
        caller: &Caller,
        topic: &str,
        payload: &serde_json::Value,
        cause: &Causation,
    ) -> Result<(), HostError>;

    /// The services this host offers its plugins beyond this API
    /// ([`crate::HostServices`]); none by default. The sandbox looks a
    /// plugin's `call-service` up here, checks the method's permission and
    /// schemas, and only then calls the method's handler.
    fn services(&self) -> &crate::HostServices {
        crate::HostServices::none()
    }
}

/// Receives what the sandbox notices about plugins at the boundary.
pub trait SandboxObserver: Send + Sync + 'static {
    /// A host call was refused for lack of permission.
    fn permission_denied(&self, caller: &Caller, denial: &PermissionDenial);
}
