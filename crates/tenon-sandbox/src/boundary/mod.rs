//! The permission boundary: the one place where a plugin's requests to its
//! host are checked, bounded and forwarded.
//!
//! Every runtime (component, Extism, native) answers a plugin's host call by
//! calling the matching [`Boundary`] method with the call's [`CallScope`].
//! The boundary checks the caller's effective permissions and the host's
//! [`SandboxConfig`], bounds sizes and time (every request ends by the call's
//! deadline), reports each refusal to the [`SandboxObserver`] and only then
//! reaches the embedder's [`HostApi`] or the network. A runtime never calls
//! the [`HostApi`] itself.

mod dirs;
mod http;
mod net;
mod services;
mod topics;

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tenon_manifest::Manifest;
use tenon_types::Causation;
use tokio::time::Instant;

pub use self::dirs::{GrantedDirectory, granted_directories};
pub use self::net::{AddressClass, NameResolver, StaticResolver, SystemResolver};
pub use self::topics::topic_matches;

use crate::config::SandboxConfig;
use crate::host::{Caller, HostApi, HostError, LogLevel, PermissionDenial, SandboxObserver};
use crate::limits::{cut, log_text};
use crate::runtime::LoadRequest;
use crate::stats::PluginStats;

/// One plugin's gate to its host: its identity and effective permissions,
/// the embedder's services, the host policy and the plugin's resource
/// counters. Cheap to share (`Arc`) between all the instances of a plugin.
pub struct Boundary {
    caller: Arc<Caller>,
    host: Arc<dyn HostApi>,
    observer: Arc<dyn SandboxObserver>,
    config: Arc<SandboxConfig>,
    /// Declared config keys → whether the key holds a secret.
    config_keys: HashMap<String, bool>,
    stats: Arc<PluginStats>,
    http: http::HttpClient,
}

impl std::fmt::Debug for Boundary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Boundary")
            .field("caller", &self.caller)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The state of one call into a plugin that its host requests share: the
/// deadline every request must end by, the causation of the events it
/// publishes, how many log lines it wrote, and the last permission it was
/// refused (a runtime reports a call that fails after
/// a refusal as [`crate::SandboxError::PermissionDenied`]).
///
/// Runtimes keep one per instance and [`CallScope::reset`] it per call.
#[derive(Debug)]
pub struct CallScope {
    deadline: Instant,
    cause: Causation,
    log_lines: AtomicU32,
    output_bytes: AtomicU32,
    denial: Mutex<Option<PermissionDenial>>,
}

impl CallScope {
    /// A scope whose requests must end within `timeout` from now.
    pub fn new(timeout: Duration) -> Self {
        Self::with_deadline(Instant::now() + timeout)
    }

    /// A scope whose requests must end by `deadline`.
    pub fn with_deadline(deadline: Instant) -> Self {
        Self {
            deadline,
            cause: Causation::default(),
            log_lines: AtomicU32::new(0),
            output_bytes: AtomicU32::new(0),
            denial: Mutex::new(None),
        }
    }

    /// Starts a new call in this scope: a new deadline, no causation,
    /// counters at zero, no refusal.
    pub fn reset(&mut self, deadline: Instant) {
        self.reset_caused(deadline, Causation::default());
    }

    /// Starts a new call in this scope whose events continue the chain
    /// `cause` ([`crate::CallOptions::cause`]).
    pub fn reset_caused(&mut self, deadline: Instant, cause: Causation) {
        self.deadline = deadline;
        self.cause = cause;
        *self.log_lines.get_mut() = 0;
        *self.output_bytes.get_mut() = 0;
        *self.denial.get_mut() = None;
    }

    /// The causation of the events this call publishes.
    pub fn cause(&self) -> &Causation {
        &self.cause
    }

    /// When the call's requests must have ended.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Time left before the deadline (zero once it passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The last refusal of this call, if any (and forgets it).
    pub fn take_denial(&self) -> Option<PermissionDenial> {
        self.denial.lock().take()
    }

    /// Counts `len` more bytes of captured output and returns how many of
    /// them fit under `cap` for this call.
    pub fn admit_output(&self, len: usize, cap: usize) -> usize {
        let len32 = u32::try_from(len).unwrap_or(u32::MAX);
        let before = self.output_bytes.fetch_add(len32, Ordering::Relaxed) as usize;
        cap.saturating_sub(before).min(len)
    }
}

/// Which captured stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// Standard output (logged at `info`).
    Stdout,
    /// Standard error (logged at `warn`).
    Stderr,
}

impl OutputStream {
    /// `stdout` or `stderr`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

impl Boundary {
    /// The boundary of the plugin described by `request`, under the host
    /// policy `config`.
    pub fn new(request: &LoadRequest, config: Arc<SandboxConfig>) -> Self {
        let caller = request.caller.clone();
        let allow_private = config.allow_private_networks
            && caller
                .permissions
                .network
                .as_ref()
                .is_some_and(|n| n.allow_private);
        Self {
            http: http::HttpClient::new(config.resolver.clone(), allow_private),
            config_keys: declared_config_keys(&request.manifest),
            host: request.host.clone(),
            observer: request.observer.clone(),
            stats: Arc::new(PluginStats::default()),
            caller,
            config,
        }
    }

    /// Who is calling.
    pub fn caller(&self) -> &Arc<Caller> {
        &self.caller
    }

    /// The host policy in force.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The plugin's resource counters (HTTP figures are kept here; runtimes
    /// add calls, memory and time).
    pub fn stats(&self) -> &Arc<PluginStats> {
        &self.stats
    }

    /// Refuses a request: tells the observer, remembers the refusal in the
    /// call's scope, and returns the error the plugin receives.
    pub fn deny(
        &self,
        call: &CallScope,
        permission: &str,
        attempted: String,
        reason: String,
    ) -> HostError {
        // Both texts can hold what the plugin chose (a config or KV key, a
        // URL): escaped here, once, so no log line or audit event that
        // carries them can be forged.
        let max = self.config.max_log_line;
        let attempted = log_text(&attempted, max).into_owned();
        let reason = log_text(&reason, max).into_owned();
        let message = format!("{permission}: {reason}");
        let denial = PermissionDenial {
            permission: permission.to_owned(),
            attempted,
            reason,
        };
        tracing::debug!(
            plugin = %self.caller.plugin,
            tenant = %self.caller.tenant,
            permission = %denial.permission,
            attempted = %denial.attempted,
            reason = %denial.reason,
            "permission denied"
        );
        self.observer.permission_denied(&self.caller, &denial);
        *call.denial.lock() = Some(denial);
        HostError::PermissionDenied(message)
    }

    /// Writes a plugin's log line: message, field names and values escaped
    /// (newlines, control characters, bidirectional overrides: a plugin
    /// cannot forge a log line) and cut to [`SandboxConfig::max_log_line`]
    /// bytes, at most [`SandboxConfig::max_log_fields`] fields, at most
    /// [`SandboxConfig::max_log_lines_per_call`] lines per call (one more line
    /// says that the rest were dropped).
    pub fn log(
        &self,
        call: &CallScope,
        level: LogLevel,
        message: &str,
        original: &[(String, String)],
    ) {
        let max_lines = self.config.max_log_lines_per_call;
        let n = call.log_lines.fetch_add(1, Ordering::Relaxed);
        if n > max_lines {
            return;
        }
        if n == max_lines {
            let note = format!(
                "log limit reached: more than {max_lines} lines in one call; the rest of this call's lines are dropped"
            );
            self.host.log(&self.caller, LogLevel::Warn, &note, &[]);
            return;
        }
        let max_line = self.config.max_log_line;
        let message = log_text(message, max_line);
        let max_fields = self.config.max_log_fields;
        let fields: Vec<(Cow<'_, str>, Cow<'_, str>)> = original
            .iter()
            .take(max_fields)
            .map(|(k, v)| (log_text(k, max_line), log_text(v, max_line)))
            .collect();
        let unchanged = fields.len() == original.len()
            && fields
                .iter()
                .all(|(k, v)| matches!((k, v), (Cow::Borrowed(_), Cow::Borrowed(_))));
        if unchanged {
            self.host.log(&self.caller, level, &message, original);
        } else {
            let owned: Vec<(String, String)> = fields
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            self.host.log(&self.caller, level, &message, &owned);
        }
    }

    /// Logs one line of captured stdout or stderr (tagged `stream`), under
    /// the same limits as [`Boundary::log`].
    pub fn log_output(&self, call: &CallScope, stream: OutputStream, line: &str) {
        let level = match stream {
            OutputStream::Stdout => LogLevel::Info,
            OutputStream::Stderr => LogLevel::Warn,
        };
        let fields = [("stream".to_owned(), stream.as_str().to_owned())];
        self.log(call, level, line, &fields);
    }

    /// Reads a config value: declared non-secret keys, and secret keys only
    /// when `permissions.secrets` lists them.
    pub async fn config_get(
        &self,
        call: &CallScope,
        key: &str,
    ) -> Result<Option<serde_json::Value>, HostError> {
        if key.is_empty() || key.len() > self.config.max_config_key {
            return Err(HostError::InvalidInput(format!(
                "a config key must be 1 to {} bytes long",
                self.config.max_config_key
            )));
        }
        let granted_secret = self.caller.permissions.secrets.iter().any(|s| s == key);
        if !granted_secret {
            match self.config_keys.get(key) {
                Some(false) => {}
                Some(true) => {
                    return Err(self.deny(
                        call,
                        "secrets",
                        format!("config key `{key}`"),
                        format!("`{key}` is a secret and permissions.secrets does not list it"),
                    ));
                }
                None => {
                    return Err(self.deny(
                        call,
                        "config",
                        format!("config key `{key}`"),
                        format!("`{key}` is not declared in the manifest's [config]"),
                    ));
                }
            }
        }
        bounded(call, "config-get", self.host.config_get(&self.caller, key)).await
    }

    fn check_kv(&self, call: &CallScope, op: &str, key: &str) -> Result<(), HostError> {
        if self.caller.permissions.kv.is_none() {
            return Err(self.deny(
                call,
                "kv",
                format!("{op} `{}`", cut(key, 128)),
                "the plugin has no permissions.kv".to_owned(),
            ));
        }
        if key.len() > self.config.max_kv_key {
            return Err(HostError::InvalidInput(format!(
                "a KV key may be at most {} bytes long; this one is {}",
                self.config.max_kv_key,
                key.len()
            )));
        }
        Ok(())
    }

    fn check_kv_key(&self, call: &CallScope, op: &str, key: &str) -> Result<(), HostError> {
        self.check_kv(call, op, key)?;
        if key.is_empty() {
            return Err(HostError::InvalidInput(
                "a KV key may not be empty".to_owned(),
            ));
        }
        Ok(())
    }

    /// Reads a value from the plugin's KV store (for its tenant).
    pub async fn kv_get(&self, call: &CallScope, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.check_kv_key(call, "kv-get", key)?;
        bounded(call, "kv-get", self.host.kv_get(&self.caller, key)).await
    }

    /// Writes a value; the embedder's [`HostApi`] enforces the quota.
    pub async fn kv_set(&self, call: &CallScope, key: &str, value: &[u8]) -> Result<(), HostError> {
        self.check_kv_key(call, "kv-set", key)?;
        if value.len() > self.config.max_kv_value {
            return Err(HostError::QuotaExceeded(format!(
                "a KV value may be at most {} bytes; this one is {}",
                self.config.max_kv_value,
                value.len()
            )));
        }
        bounded(call, "kv-set", self.host.kv_set(&self.caller, key, value)).await
    }

    /// Deletes a value; a missing key is not an error.
    pub async fn kv_delete(&self, call: &CallScope, key: &str) -> Result<(), HostError> {
        self.check_kv_key(call, "kv-delete", key)?;
        bounded(call, "kv-delete", self.host.kv_delete(&self.caller, key)).await
    }

    /// Lists the keys starting with `prefix`, in order.
    pub async fn kv_list(&self, call: &CallScope, prefix: &str) -> Result<Vec<String>, HostError> {
        self.check_kv(call, "kv-list", prefix)?;
        bounded(call, "kv-list", self.host.kv_list(&self.caller, prefix)).await
    }

    /// Publishes an event whose payload is JSON text (as plugins send it).
    pub async fn emit_event_json(
        &self,
        call: &CallScope,
        topic: &str,
        payload: &str,
    ) -> Result<(), HostError> {
        self.check_event(call, topic, payload.len())?;
        let payload: serde_json::Value = serde_json::from_str(payload)
            .map_err(|e| HostError::InvalidInput(format!("the event payload is not JSON: {e}")))?;
        bounded(
            call,
            "emit-event",
            self.host
                .emit_event(&self.caller, topic, &payload, call.cause()),
        )
        .await
    }

    /// Publishes an event (for runtimes that hold the payload as a value).
    pub async fn emit_event(
        &self,
        call: &CallScope,
        topic: &str,
        payload: &serde_json::Value,
    ) -> Result<(), HostError> {
        let len = serde_json::to_vec(payload).map(|v| v.len()).unwrap_or(0);
        self.check_event(call, topic, len)?;
        bounded(
            call,
            "emit-event",
            self.host
                .emit_event(&self.caller, topic, payload, call.cause()),
        )
        .await
    }

    fn check_event(
        &self,
        call: &CallScope,
        topic: &str,
        payload_len: usize,
    ) -> Result<(), HostError> {
        if let Some(problem) = topics::topic_problem(topic, self.config.max_event_topic) {
            return Err(HostError::InvalidInput(problem));
        }
        let allowed = self
            .caller
            .permissions
            .events
            .as_ref()
            .is_some_and(|e| e.publish.iter().any(|p| topic_matches(p, topic)));
        if !allowed {
            return Err(self.deny(
                call,
                "events",
                format!("publish `{topic}`"),
                format!("no pattern in permissions.events.publish matches `{topic}`"),
            ));
        }
        if payload_len > self.config.max_event_payload {
            return Err(HostError::QuotaExceeded(format!(
                "an event payload may be at most {} bytes; this one is {payload_len}",
                self.config.max_event_payload
            )));
        }
        Ok(())
    }
}

/// The longest URL a plugin may request, in bytes.
pub(crate) const MAX_URL: usize = 8 * 1024;
/// The most headers one plugin HTTP request may carry.
pub(crate) const MAX_HEADERS: usize = 100;
/// The most bytes of header names and values one request may carry.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The sizes of an HTTP request a plugin is handing over, read where the
/// plugin wrote them, before anything is copied.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RequestSizes {
    pub(crate) method: usize,
    pub(crate) url: usize,
    pub(crate) headers: usize,
    pub(crate) header_bytes: usize,
    pub(crate) body: usize,
}

impl Boundary {
    /// Refuses a request whose parts are larger than the host takes, before
    /// the runtime copies them.
    pub(crate) fn check_request_sizes(&self, sizes: RequestSizes) -> Result<(), HostError> {
        let too_big = |what: &str, size: usize, limit: usize| {
            Err(HostError::QuotaExceeded(format!(
                "the request's {what} is {size} bytes; the limit is {limit}"
            )))
        };
        if sizes.method > 16 {
            return Err(HostError::InvalidInput(
                "the request's method is not an HTTP method".to_owned(),
            ));
        }
        if sizes.url > MAX_URL {
            return too_big("URL", sizes.url, MAX_URL);
        }
        if sizes.headers > MAX_HEADERS {
            return Err(HostError::QuotaExceeded(format!(
                "the request has {} headers; the limit is {MAX_HEADERS}",
                sizes.headers
            )));
        }
        if sizes.header_bytes > MAX_HEADER_BYTES {
            return too_big("header list", sizes.header_bytes, MAX_HEADER_BYTES);
        }
        if sizes.body > self.config.max_http_request_body {
            return too_big("body", sizes.body, self.config.max_http_request_body);
        }
        Ok(())
    }
}

/// Runs a host request under the call's deadline.
async fn bounded<T>(
    call: &CallScope,
    what: &str,
    request: impl Future<Output = Result<T, HostError>>,
) -> Result<T, HostError> {
    match tokio::time::timeout_at(call.deadline, request).await {
        Ok(result) => result,
        Err(_) => Err(HostError::Timeout(format!(
            "{what} did not finish before the call's deadline"
        ))),
    }
}

/// The manifest's config keys, each with whether it holds a secret: simple
/// fields (`secret = true`), the top-level properties of a schema (a
/// property with `"secret": true` or `"writeOnly": true` is a secret), and
/// keys with defaults.
fn declared_config_keys(manifest: &Manifest) -> HashMap<String, bool> {
    let spec = &manifest.config;
    let mut keys: HashMap<String, bool> = spec
        .fields
        .iter()
        .map(|f| (f.key.clone(), f.secret))
        .collect();
    if let Some(props) = spec
        .schema
        .as_ref()
        .and_then(|s| s.get("properties"))
        .and_then(|p| p.as_object())
    {
        for (key, schema) in props {
            let flag = |name: &str| schema.get(name).and_then(|v| v.as_bool()) == Some(true);
            let secret = flag("secret") || flag("writeOnly");
            keys.entry(key.clone()).or_insert(secret);
        }
    }
    for key in spec.defaults.keys() {
        keys.entry(key.clone()).or_insert(false);
    }
    keys
}
