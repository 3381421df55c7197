//! Host-level policy that applies to every plugin, whatever its manifest says.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::boundary::{NameResolver, SystemResolver};

/// The host's own rules for the permission boundary: what no manifest can
/// raise. Every runtime takes one (shared by all the plugins it loads).
///
/// The defaults are conservative and fit a multi-tenant host; a host that
/// runs only its own plugins may loosen them.
#[derive(Clone)]
#[non_exhaustive]
pub struct SandboxConfig {
    /// Whether a plugin may ever reach loopback, private (RFC 1918),
    /// link-local, unique-local and CGNAT addresses. A plugin reaches them
    /// only when this AND its manifest's `network.allow_private` are true.
    /// Unspecified, multicast, broadcast, documentation and reserved
    /// addresses are refused whatever the settings. Default: `false`.
    pub allow_private_networks: bool,
    /// Longest log line a plugin may write, in bytes; longer lines are cut
    /// (on a character boundary) and marked. Default: 4 KiB.
    pub max_log_line: usize,
    /// Log lines one call may write; later lines of the call are dropped
    /// after one line saying so. Default: 100.
    pub max_log_lines_per_call: u32,
    /// Structured fields one log line may carry; the rest are dropped.
    /// Default: 32.
    pub max_log_fields: usize,
    /// Captured stdout plus stderr per call, in bytes; the rest is discarded
    /// (the guest's writes still succeed). Default: 64 KiB.
    pub max_output_per_call: usize,
    /// Longest config key, in bytes. Default: 256.
    pub max_config_key: usize,
    /// Longest KV key, in bytes. Default: 512.
    pub max_kv_key: usize,
    /// Largest KV value, in bytes. Default: 1 MiB.
    pub max_kv_value: usize,
    /// Longest event topic, in bytes. Default: 255.
    pub max_event_topic: usize,
    /// Largest event payload (JSON text), in bytes. Default: 256 KiB.
    pub max_event_payload: usize,
    /// Largest HTTP request body, in bytes. Default: 8 MiB.
    pub max_http_request_body: usize,
    /// Largest input of a host service call and largest answer a service
    /// may hand back (JSON text), in bytes. Default: 256 KiB.
    pub max_service_payload: usize,
    /// The largest answer of one call (a hook's answer with its patch, a
    /// function's output, a snapshot) when the manifest sets no
    /// `limits.max_output`. Parsing a JSON answer can take up to about 32
    /// times its size in memory, so keep this modest. Default: 1 MiB.
    pub default_output: u64,
    /// The largest answer no manifest can raise; a plugin asking for more
    /// is refused at load. Default: 64 MiB.
    pub max_output: u64,
    /// Longest error or panic message kept from a plugin, in bytes; longer
    /// ones are cut (on a character boundary) and marked. Default: 4 KiB.
    pub max_error_message: usize,
    /// Response body cap when the manifest sets no `network.max_response`.
    /// Default: 4 MiB.
    pub default_http_response: u64,
    /// Response body cap no manifest can raise. Default: 64 MiB.
    pub max_http_response: u64,
    /// Redirects followed per request, each hop checked like the first
    /// request; `0` hands 3xx responses to the plugin as they are.
    /// Default: 5.
    pub max_redirects: u32,
    /// Longest any one HTTP request may take, even when the call's deadline
    /// is further away. Default: 30 s.
    pub max_http_time: Duration,
    /// How host names are turned into addresses for plugin HTTP requests
    /// (every answer is vetted before a connection is made).
    /// Default: the operating system's resolver.
    pub resolver: Arc<dyn NameResolver>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            allow_private_networks: false,
            max_log_line: 4 * 1024,
            max_log_lines_per_call: 100,
            max_log_fields: 32,
            max_output_per_call: 64 * 1024,
            max_config_key: 256,
            max_kv_key: 512,
            max_kv_value: 1 << 20,
            max_event_topic: 255,
            max_event_payload: 256 * 1024,
            max_http_request_body: 8 << 20,
            max_service_payload: 256 * 1024,
            default_output: 1 << 20,
            max_output: 64 << 20,
            max_error_message: 4 * 1024,
            default_http_response: 4 << 20,
            max_http_response: 64 << 20,
            max_redirects: 5,
            max_http_time: Duration::from_secs(30),
            resolver: Arc::new(SystemResolver),
        }
    }
}

impl SandboxConfig {
    /// Allows or refuses private networks (see
    /// [`SandboxConfig::allow_private_networks`]).
    pub fn with_private_networks(mut self, allow: bool) -> Self {
        self.allow_private_networks = allow;
        self
    }

    /// Uses `resolver` for plugin HTTP requests.
    pub fn with_resolver(mut self, resolver: Arc<dyn NameResolver>) -> Self {
        self.resolver = resolver;
        self
    }
}

impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("allow_private_networks", &self.allow_private_networks)
            .field("max_log_line", &self.max_log_line)
            .field("max_log_lines_per_call", &self.max_log_lines_per_call)
            .field("max_log_fields", &self.max_log_fields)
            .field("max_output_per_call", &self.max_output_per_call)
            .field("max_config_key", &self.max_config_key)
            .field("max_kv_key", &self.max_kv_key)
            .field("max_kv_value", &self.max_kv_value)
            .field("max_event_topic", &self.max_event_topic)
            .field("max_event_payload", &self.max_event_payload)
            .field("max_http_request_body", &self.max_http_request_body)
            .field("max_service_payload", &self.max_service_payload)
            .field("default_output", &self.default_output)
            .field("max_output", &self.max_output)
            .field("max_error_message", &self.max_error_message)
            .field("default_http_response", &self.default_http_response)
            .field("max_http_response", &self.max_http_response)
            .field("max_redirects", &self.max_redirects)
            .field("max_http_time", &self.max_http_time)
            .finish_non_exhaustive()
    }
}
