//! Tenon's host API as Extism host functions.
//!
//! Two sets of functions are linked into every Extism plugin:
//!
//! - the `tenon` namespace: `config_get`, `kv_get`, `kv_set`, `kv_delete`,
//!   `kv_list`, `emit_event`, `log`, `http_request` and `call_service` (also linked as
//!   `extism:host/user`, for PDKs that import host functions only from
//!   there, such as JavaScript's). Each takes one memory
//!   block (a string or a JSON request) and answers with a JSON envelope,
//!   `{"ok": …}` or `{"error": {"kind": …, "message": …}}`: a refusal is a
//!   value the plugin can handle, never a trap. The plugin keeps ownership of
//!   the blocks it passes (the PDKs free them) and owns the answer.
//! - replacements for Extism's own `extism:host/env` functions that reach
//!   outside the instance: `http_request` / `http_status_code` /
//!   `http_headers` (sent through Tenon's boundary instead of Extism's HTTP
//!   client, so `extism_pdk::http::request` works under Tenon's rules),
//!   `config_get` (the config given at start, then the boundary for
//!   secrets), and the `log_*` functions (the plugin's log, bounded per
//!   call), and `error_set` (the plugin's error, kept by Tenon with its
//!   size checked first, so that neither Extism nor its log copies a huge
//!   one). They keep Extism's ownership rules (they free their inputs).
//!
//! Every block a plugin hands over is measured (its length is the Extism
//! kernel's) before it is read: a request larger than its host function
//! takes is refused without a byte of it being copied.
//!
//! Every function answers through the [`Boundary`] with the current call's
//! [`CallScope`], so permissions, quotas, denial reports and the call's
//! deadline are exactly those of the component runtime.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use ::extism::convert::MemoryHandle;
use ::extism::{CurrentPlugin, Error, Function, UserData, Val, ValType};
use base64::Engine as _;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tenon_types::Causation;
use tokio::runtime::Handle;

use crate::boundary::{Boundary, CallScope};
use crate::boundary::{MAX_HEADER_BYTES, MAX_URL, RequestSizes};
use crate::config::SandboxConfig;
use crate::host::{HostError, HttpRequest, LogLevel, PermissionDenial};
use crate::limits;

use super::module::{EXTISM_ENV, EXTISM_USER, TENON};

/// The functions of the `tenon` namespace.
pub(super) const TENON_FUNCTIONS: [&str; 9] = [
    "config_get",
    "kv_get",
    "kv_set",
    "kv_delete",
    "kv_list",
    "emit_event",
    "log",
    "http_request",
    "call_service",
];

/// The `extism:host/env` functions Tenon replaces.
pub(super) const ENV_FUNCTIONS: [&str; 11] = [
    "error_set",
    "config_get",
    "http_request",
    "http_status_code",
    "http_headers",
    "log_trace",
    "log_debug",
    "log_info",
    "log_warn",
    "log_error",
    "get_log_level",
];

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The host side of one loaded plugin, shared by all its instances: its
/// boundary and the config it was started with.
#[derive(Debug)]
pub(super) struct HostSide {
    pub(super) boundary: Arc<Boundary>,
    /// The largest error message the plugin may hand over (the most one
    /// transfer may carry, as in the component runtime).
    pub(super) error_limit: u64,
    /// The config given at start (or the last configure), as Extism's
    /// `config_get` serves it: strings as they are, other values as JSON.
    config: RwLock<Arc<BTreeMap<String, String>>>,
}

impl HostSide {
    pub(super) fn new(boundary: Arc<Boundary>, error_limit: u64) -> Self {
        Self {
            boundary,
            error_limit,
            config: RwLock::new(Arc::default()),
        }
    }

    /// Replaces the config Extism's `config_get` serves.
    pub(super) fn set_config(&self, config: &serde_json::Value) {
        let map = config
            .as_object()
            .map(|object| {
                object
                    .iter()
                    .map(|(key, value)| {
                        let text = match value {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (key.clone(), text)
                    })
                    .collect()
            })
            .unwrap_or_default();
        *self.config.write() = Arc::new(map);
    }

    fn config_value(&self, key: &str) -> Option<String> {
        self.config.read().get(key).cloned()
    }
}

/// Where an engine's host functions find the call that runs on it. An
/// engine runs one call at a time, so the lock is never contended.
#[derive(Debug, Default)]
pub(super) struct Link {
    state: Mutex<LinkState>,
}

#[derive(Debug)]
struct LinkState {
    scope: CallScope,
    active: Option<Active>,
    /// Whether a host request of the call ran out of time.
    timed_out: Cell<bool>,
    http_status: u16,
    http_headers: BTreeMap<String, String>,
    /// The error the plugin set (`error_set`).
    error: Option<OwnError>,
}

/// An error a plugin set for its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OwnError {
    /// Its text (no larger than the plugin's error limit).
    Text(String),
    /// One of this many bytes, over the error limit: not read.
    TooLarge(u64),
}

impl Default for LinkState {
    fn default() -> Self {
        Self {
            scope: CallScope::new(std::time::Duration::ZERO),
            active: None,
            timed_out: Cell::new(false),
            http_status: 0,
            http_headers: BTreeMap::new(),
            error: None,
        }
    }
}

#[derive(Debug)]
struct Active {
    host: Arc<HostSide>,
    /// How host functions wait for the async boundary: `None` when the call
    /// runs where it may not block (the plugin then imports nothing that
    /// needs it).
    bridge: Option<Handle>,
}

impl Link {
    /// Starts a call of the plugin whose host side is `host`, ending by
    /// `deadline`, its events continuing the chain `cause`.
    pub(super) fn begin(
        &self,
        host: &Arc<HostSide>,
        deadline: tokio::time::Instant,
        cause: Causation,
        bridge: Option<Handle>,
    ) {
        let mut state = self.state.lock();
        state.scope.reset_caused(deadline, cause);
        state.active = Some(Active {
            host: host.clone(),
            bridge,
        });
        state.timed_out.set(false);
        state.http_status = 0;
        state.http_headers.clear();
        state.error = None;
    }

    /// Ends the call; returns what its host requests ran into.
    pub(super) fn end(&self) -> Ended {
        let mut state = self.state.lock();
        state.active = None;
        Ended {
            denial: state.scope.take_denial(),
            timed_out: state.timed_out.get(),
            error: state.error.take(),
        }
    }
}

/// What a call's host requests ran into.
#[derive(Debug, Default)]
pub(super) struct Ended {
    /// The last permission the call was refused.
    pub(super) denial: Option<PermissionDenial>,
    /// Whether a host request ran out of the call's time.
    pub(super) timed_out: bool,
    /// The error the plugin set.
    pub(super) error: Option<OwnError>,
}

/// The host functions linked into a plugin on the engine that `link`
/// belongs to: those of `imports`, as (module, name).
pub(super) fn functions(link: &Arc<Link>, imports: &BTreeSet<(String, String)>) -> Vec<Function> {
    use ValType::{I32, I64};
    let env = |name: &str, params: &[ValType], results: &[ValType], f: HostFn| {
        host_function(link, EXTISM_ENV, name, params, results, f)
    };
    let requests: [(&'static str, Handler, RequestLimit); 8] = [
        ("config_get", config_get, key_limit),
        ("kv_get", kv_get, key_limit),
        ("kv_set", kv_set, kv_set_limit),
        ("kv_delete", kv_delete, key_limit),
        ("kv_list", kv_list, key_limit),
        ("emit_event", emit_event, event_limit),
        ("http_request", http_request, http_limit),
        ("call_service", call_service, service_limit),
    ];
    let mut functions = Vec::new();
    for namespace in [TENON, EXTISM_USER] {
        functions.extend(requests.iter().map(|&request| {
            host_function(
                link,
                namespace,
                request.0,
                &[I64],
                &[I64],
                move |p, i, o, ctx| answer_request(p, i, o, ctx, request),
            )
        }));
        functions.push(host_function(
            link,
            namespace,
            "log",
            &[I64],
            &[],
            tenon_log,
        ));
    }
    functions.extend([
        env("error_set", &[I64], &[], env_error_set),
        env("config_get", &[I64], &[I64], env_config_get),
        env("http_request", &[I64, I64], &[I64], env_http_request),
        env("http_status_code", &[], &[I32], env_http_status_code),
        env("http_headers", &[], &[I64], env_http_headers),
        env("log_trace", &[I64], &[], |p, i, o, s| {
            env_log(LogLevel::Trace, p, i, o, s)
        }),
        env("log_debug", &[I64], &[], |p, i, o, s| {
            env_log(LogLevel::Debug, p, i, o, s)
        }),
        env("log_info", &[I64], &[], |p, i, o, s| {
            env_log(LogLevel::Info, p, i, o, s)
        }),
        env("log_warn", &[I64], &[], |p, i, o, s| {
            env_log(LogLevel::Warn, p, i, o, s)
        }),
        env("log_error", &[I64], &[], |p, i, o, s| {
            env_log(LogLevel::Error, p, i, o, s)
        }),
        env("get_log_level", &[], &[I32], env_get_log_level),
    ]);
    functions.retain(|f| {
        let key = (
            f.namespace().unwrap_or_default().to_owned(),
            f.name().to_owned(),
        );
        imports.contains(&key)
    });
    functions
}

/// What a host function sees of the current call.
struct Ctx<'a> {
    scope: &'a CallScope,
    timed_out: &'a Cell<bool>,
    host: &'a HostSide,
    bridge: Option<&'a Handle>,
    http_status: &'a mut u16,
    http_headers: &'a mut BTreeMap<String, String>,
    error: &'a mut Option<OwnError>,
}

impl Ctx<'_> {
    fn boundary(&self) -> &Boundary {
        &self.host.boundary
    }

    /// Waits for a boundary request from this synchronous host function.
    ///
    /// `block_in_place` lets a multi-threaded runtime move the worker's other
    /// tasks elsewhere while this thread waits (outside a worker, on a
    /// blocking-pool thread, it just runs the closure); `block_on` then
    /// drives the request on the runtime the call came from, whose timers
    /// and IO keep running on its other threads.
    fn wait<T>(&self, request: impl Future<Output = Result<T, HostError>>) -> Result<T, HostError> {
        let result = match self.bridge {
            Some(handle) => tokio::task::block_in_place(|| handle.block_on(request)),
            None => Err(HostError::Unavailable(
                "this call runs where it cannot wait for the host".to_owned(),
            )),
        };
        if matches!(result, Err(HostError::Timeout(_))) {
            self.timed_out.set(true);
        }
        result
    }
}

type HostFn = fn(&mut CurrentPlugin, &[Val], &mut [Val], &mut Ctx<'_>) -> Result<(), Error>;

fn host_function(
    link: &Arc<Link>,
    namespace: &str,
    name: &str,
    params: &[ValType],
    results: &[ValType],
    f: impl Fn(&mut CurrentPlugin, &[Val], &mut [Val], &mut Ctx<'_>) -> Result<(), Error>
    + Send
    + Sync
    + 'static,
) -> Function {
    let link = link.clone();
    let fn_name = name.to_owned();
    Function::new(
        name,
        params.iter().cloned(),
        results.iter().cloned(),
        UserData::new(()),
        move |plugin, inputs, outputs, _| {
            let mut state = link.state.lock();
            let LinkState {
                scope,
                active,
                timed_out,
                http_status,
                http_headers,
                error,
            } = &mut *state;
            let Some(active) = active.as_ref() else {
                return Err(Error::msg(format!(
                    "tenon: host function `{fn_name}` called outside a plugin call"
                )));
            };
            let mut ctx = Ctx {
                scope,
                timed_out,
                host: &active.host,
                bridge: active.bridge.as_ref(),
                http_status,
                http_headers,
                error,
            };
            f(plugin, inputs, outputs, &mut ctx)
        },
    )
    .with_namespace(namespace)
}

// ---------------------------------------------------------------------------
// Reading and writing plugin memory.

/// The block at `val` (`None` for offset 0 or an unknown block), not read.
fn block(plugin: &mut CurrentPlugin, val: &Val) -> Option<MemoryHandle> {
    plugin
        .memory_from_val(val)
        .filter(|handle| !handle.is_empty())
}

/// Refuses a block of `len` bytes over `limit`, unread.
fn fits(len: usize, limit: usize, what: impl FnOnce() -> String) -> Result<(), HostError> {
    if len > limit {
        return Err(HostError::QuotaExceeded(format!(
            "{} is {len} bytes; the limit is {limit}",
            what()
        )));
    }
    Ok(())
}

/// The bytes of the block at `val` (empty for offset 0 or an unknown
/// block), once its length is known to be at most `limit`.
fn read_block(
    plugin: &mut CurrentPlugin,
    val: &Val,
    limit: usize,
    what: impl FnOnce() -> String,
) -> Result<Result<Vec<u8>, HostError>, Error> {
    match block(plugin, val) {
        Some(handle) => read_handle(plugin, handle, limit, what),
        None => Ok(Ok(Vec::new())),
    }
}

/// Like [`read_block`], then frees the block (Extism's ownership rule for
/// `extism:host/env` functions), read or not.
fn take_block(
    plugin: &mut CurrentPlugin,
    val: &Val,
    limit: usize,
    what: impl FnOnce() -> String,
) -> Result<Result<Vec<u8>, HostError>, Error> {
    let Some(handle) = block(plugin, val) else {
        return Ok(Ok(Vec::new()));
    };
    let bytes = read_handle(plugin, handle, limit, what)?;
    plugin.memory_free(handle)?;
    Ok(bytes)
}

fn read_handle(
    plugin: &mut CurrentPlugin,
    handle: MemoryHandle,
    limit: usize,
    what: impl FnOnce() -> String,
) -> Result<Result<Vec<u8>, HostError>, Error> {
    if let Err(refused) = fits(handle.len(), limit, what) {
        return Ok(Err(refused));
    }
    Ok(Ok(plugin.memory_bytes(handle)?.to_vec()))
}

fn utf8(bytes: Vec<u8>, what: &str) -> Result<String, HostError> {
    String::from_utf8(bytes).map_err(|_| HostError::InvalidInput(format!("{what} is not UTF-8")))
}

fn json<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, HostError> {
    serde_json::from_slice(bytes)
        .map_err(|e| HostError::InvalidInput(format!("{what} is not valid JSON for it: {e}")))
}

/// Writes `bytes` into a new block owned by the plugin and returns its
/// offset in `outputs[0]` (0 when empty).
fn answer(plugin: &mut CurrentPlugin, outputs: &mut [Val], bytes: &[u8]) -> Result<(), Error> {
    let handle = plugin.memory_new(bytes)?;
    outputs[0] = plugin.memory_to_val(handle);
    Ok(())
}

/// The JSON envelope every `tenon` function answers with.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Envelope<T> {
    Ok(T),
    Error { kind: &'static str, message: String },
}

fn envelope<T: Serialize>(
    plugin: &mut CurrentPlugin,
    outputs: &mut [Val],
    result: Result<T, HostError>,
) -> Result<(), Error> {
    let envelope = match result {
        Ok(value) => Envelope::Ok(value),
        Err(error) => Envelope::Error {
            kind: error_kind(&error),
            message: error.to_string(),
        },
    };
    let bytes = serde_json::to_vec(&envelope)?;
    answer(plugin, outputs, &bytes)
}

/// The `kind` of an error envelope (the WIT `host-error` cases).
pub(super) fn error_kind(error: &HostError) -> &'static str {
    match error {
        HostError::PermissionDenied(_) => "permission_denied",
        HostError::QuotaExceeded(_) => "quota_exceeded",
        HostError::Timeout(_) => "timeout",
        HostError::InvalidInput(_) => "invalid_input",
        HostError::Unavailable(_) => "unavailable",
    }
}

fn decode_base64(text: &str, what: &str) -> Result<Vec<u8>, HostError> {
    B64.decode(text)
        .map_err(|e| HostError::InvalidInput(format!("{what} is not base64: {e}")))
}

// ---------------------------------------------------------------------------
// The `tenon` namespace.

/// Answers one `tenon` request: its input block in, a JSON value out.
type Handler = fn(&Ctx<'_>, Vec<u8>) -> Result<serde_json::Value, HostError>;

/// The largest request block a `tenon` function reads.
type RequestLimit = fn(&SandboxConfig) -> usize;

/// Reads the request block (when it is no larger than `limit` allows), runs
/// `handler`, answers with the envelope.
fn answer_request(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    outputs: &mut [Val],
    ctx: &mut Ctx<'_>,
    (name, handler, limit): (&str, Handler, RequestLimit),
) -> Result<(), Error> {
    let limit = limit(ctx.boundary().config());
    let result = read_block(plugin, &inputs[0], limit, || format!("the {name} request"))?
        .and_then(|request| handler(ctx, request));
    envelope(plugin, outputs, result)
}

/// Base64 text of `n` bytes, at most.
const fn base64_len(n: usize) -> usize {
    n.div_ceil(3).saturating_mul(4)
}

/// Room for the JSON around a request's values.
const JSON_ROOM: usize = 1024;

fn key_limit(config: &SandboxConfig) -> usize {
    config.max_kv_key.max(config.max_config_key)
}

fn kv_set_limit(config: &SandboxConfig) -> usize {
    config.max_kv_key + base64_len(config.max_kv_value) + JSON_ROOM
}

fn event_limit(config: &SandboxConfig) -> usize {
    config.max_event_topic + config.max_event_payload + JSON_ROOM
}

fn http_limit(config: &SandboxConfig) -> usize {
    MAX_URL + MAX_HEADER_BYTES + base64_len(config.max_http_request_body) + JSON_ROOM
}

fn service_limit(config: &SandboxConfig) -> usize {
    config.max_service_payload + JSON_ROOM
}

fn log_limit(config: &SandboxConfig) -> usize {
    config.max_log_line * (1 + 2 * config.max_log_fields) + JSON_ROOM
}

fn to_value<T: Serialize>(value: T) -> Result<serde_json::Value, HostError> {
    serde_json::to_value(value)
        .map_err(|e| HostError::Unavailable(format!("cannot encode the answer: {e}")))
}

fn config_get(ctx: &Ctx<'_>, key: Vec<u8>) -> Result<serde_json::Value, HostError> {
    let key = utf8(key, "the config key")?;
    to_value(ctx.wait(ctx.boundary().config_get(ctx.scope, &key))?)
}

fn kv_get(ctx: &Ctx<'_>, key: Vec<u8>) -> Result<serde_json::Value, HostError> {
    let key = utf8(key, "the KV key")?;
    let value = ctx.wait(ctx.boundary().kv_get(ctx.scope, &key))?;
    to_value(value.map(|v| B64.encode(v)))
}

#[derive(Deserialize)]
struct KvSet {
    key: String,
    /// Base64.
    value: String,
}

fn kv_set(ctx: &Ctx<'_>, request: Vec<u8>) -> Result<serde_json::Value, HostError> {
    let request: KvSet = json(&request, "the kv_set request")?;
    let value = decode_base64(&request.value, "the KV value")?;
    to_value(ctx.wait(ctx.boundary().kv_set(ctx.scope, &request.key, &value))?)
}

fn kv_delete(ctx: &Ctx<'_>, key: Vec<u8>) -> Result<serde_json::Value, HostError> {
    let key = utf8(key, "the KV key")?;
    to_value(ctx.wait(ctx.boundary().kv_delete(ctx.scope, &key))?)
}

fn kv_list(ctx: &Ctx<'_>, prefix: Vec<u8>) -> Result<serde_json::Value, HostError> {
    let prefix = utf8(prefix, "the KV prefix")?;
    to_value(ctx.wait(ctx.boundary().kv_list(ctx.scope, &prefix))?)
}

#[derive(Deserialize)]
struct EmitEvent {
    topic: String,
    #[serde(default)]
    payload: serde_json::Value,
}

fn emit_event(ctx: &Ctx<'_>, request: Vec<u8>) -> Result<serde_json::Value, HostError> {
    let request: EmitEvent = json(&request, "the emit_event request")?;
    let emitted = ctx
        .boundary()
        .emit_event(ctx.scope, &request.topic, &request.payload);
    to_value(ctx.wait(emitted)?)
}

/// A `call_service` request: `{"service": "org", "method": "get",
/// "input": {…}}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallService {
    service: String,
    method: String,
    #[serde(default)]
    input: serde_json::Value,
}

fn call_service(ctx: &Ctx<'_>, request: Vec<u8>) -> Result<serde_json::Value, HostError> {
    let request: CallService = json(&request, "the call_service request")?;
    ctx.wait(ctx.boundary().call_service(
        ctx.scope,
        &request.service,
        &request.method,
        request.input,
    ))
}

#[derive(Deserialize)]
struct LogLine {
    #[serde(default = "default_level")]
    level: String,
    message: String,
    #[serde(default)]
    fields: BTreeMap<String, String>,
}

fn default_level() -> String {
    "info".to_owned()
}

fn parse_level(level: &str) -> Option<LogLevel> {
    Some(match level.to_ascii_lowercase().as_str() {
        "trace" => LogLevel::Trace,
        "debug" => LogLevel::Debug,
        "info" => LogLevel::Info,
        "warn" | "warning" => LogLevel::Warn,
        "error" => LogLevel::Error,
        _ => return None,
    })
}

fn tenon_log(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    _outputs: &mut [Val],
    ctx: &mut Ctx<'_>,
) -> Result<(), Error> {
    let limit = log_limit(ctx.boundary().config());
    let request = match read_block(plugin, &inputs[0], limit, || "the log request".to_owned())? {
        Ok(request) => request,
        Err(refused) => {
            // Logging never fails the plugin; the oversized line is noted.
            let fields = [("problem".to_owned(), refused.to_string())];
            ctx.boundary()
                .log(ctx.scope, LogLevel::Warn, "a log line was dropped", &fields);
            return Ok(());
        }
    };
    match json::<LogLine>(&request, "the log request") {
        Ok(line) => {
            let level = parse_level(&line.level).unwrap_or(LogLevel::Info);
            let fields: Vec<(String, String)> = line.fields.into_iter().collect();
            ctx.boundary().log(ctx.scope, level, &line.message, &fields);
        }
        Err(error) => {
            // Logging never fails the plugin; the malformed line is noted.
            let text = String::from_utf8_lossy(&request);
            let fields = [("problem".to_owned(), error.to_string())];
            ctx.boundary()
                .log(ctx.scope, LogLevel::Warn, &text, &fields);
        }
    }
    Ok(())
}

/// Header lists arrive as `[[name, value], …]` or `{name: value}`.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Headers {
    #[default]
    None,
    List(Vec<(String, String)>),
    Map(BTreeMap<String, String>),
}

impl Headers {
    fn into_vec(self) -> Vec<(String, String)> {
        match self {
            Self::None => Vec::new(),
            Self::List(list) => list,
            Self::Map(map) => map.into_iter().collect(),
        }
    }
}

#[derive(Deserialize)]
struct TenonHttpRequest {
    #[serde(default)]
    method: Option<String>,
    url: String,
    #[serde(default)]
    headers: Headers,
    /// Base64.
    #[serde(default)]
    body: Option<String>,
}

#[derive(Serialize)]
struct TenonHttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    /// Base64.
    body: String,
}

fn http_request(ctx: &Ctx<'_>, request: Vec<u8>) -> Result<serde_json::Value, HostError> {
    let request: TenonHttpRequest = json(&request, "the http_request request")?;
    let headers = request.headers.into_vec();
    ctx.boundary().check_request_sizes(RequestSizes {
        method: request.method.as_ref().map_or(0, String::len),
        url: request.url.len(),
        headers: headers.len(),
        header_bytes: headers.iter().map(|(n, v)| n.len() + v.len()).sum(),
        body: request.body.as_ref().map_or(0, |b| b.len() / 4 * 3),
    })?;
    let body = match &request.body {
        Some(body) => decode_base64(body, "the request body")?,
        None => Vec::new(),
    };
    let request = HttpRequest {
        method: request.method.unwrap_or_else(|| "GET".to_owned()),
        url: request.url,
        headers,
        body,
    };
    let response = ctx.wait(ctx.boundary().http_request(ctx.scope, request))?;
    to_value(TenonHttpResponse {
        status: response.status,
        headers: response.headers,
        body: B64.encode(response.body),
    })
}

// ---------------------------------------------------------------------------
// Replacements for Extism's own `extism:host/env` functions.

fn env_config_get(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    outputs: &mut [Val],
    ctx: &mut Ctx<'_>,
) -> Result<(), Error> {
    let limit = ctx.boundary().config().max_config_key;
    let key = take_block(plugin, &inputs[0], limit, || "the config key".to_owned())?;
    let Some(key) = key.ok().and_then(|key| String::from_utf8(key).ok()) else {
        outputs[0] = Val::I64(0);
        return Ok(());
    };
    let value = match ctx.host.config_value(&key) {
        Some(value) => Some(value),
        // Not in the config given at start: a secret the plugin may be
        // granted, or a key it may not read (refused and reported by the
        // boundary; Extism's `config_get` has no error, so it reads as
        // absent).
        None => match ctx.wait(ctx.boundary().config_get(ctx.scope, &key)) {
            Ok(Some(serde_json::Value::String(s))) => Some(s),
            Ok(Some(other)) => Some(other.to_string()),
            Ok(None) | Err(_) => None,
        },
    };
    match value {
        Some(value) => answer(plugin, outputs, value.as_bytes()),
        None => {
            outputs[0] = Val::I64(0);
            Ok(())
        }
    }
}

/// Extism's HTTP request: `{"url", "method"?, "headers"?: {name: value}}`.
#[derive(Deserialize)]
struct ExtismHttpRequest {
    url: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

fn env_http_request(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    outputs: &mut [Val],
    ctx: &mut Ctx<'_>,
) -> Result<(), Error> {
    *ctx.http_status = 0;
    ctx.http_headers.clear();
    let config = ctx.boundary().config();
    let request = take_block(plugin, &inputs[0], http_limit(config), || {
        "the HTTP request".to_owned()
    })?;
    let body = take_block(plugin, &inputs[1], config.max_http_request_body, || {
        "the request body".to_owned()
    })?;
    let result = request.and_then(|request| {
        let request = json::<ExtismHttpRequest>(&request, "the HTTP request")?;
        let body = body?;
        ctx.boundary().check_request_sizes(RequestSizes {
            method: request.method.as_ref().map_or(0, String::len),
            url: request.url.len(),
            headers: request.headers.len(),
            header_bytes: request.headers.iter().map(|(n, v)| n.len() + v.len()).sum(),
            body: body.len(),
        })?;
        let request = HttpRequest {
            method: request
                .method
                .unwrap_or_else(|| "GET".to_owned())
                .to_ascii_uppercase(),
            url: request.url,
            headers: request.headers.into_iter().collect(),
            body,
        };
        ctx.wait(ctx.boundary().http_request(ctx.scope, request))
    });
    match result {
        Ok(response) => {
            *ctx.http_status = response.status;
            ctx.http_headers.extend(response.headers);
            answer(plugin, outputs, &response.body)
        }
        // Extism's `http_request` has no error value: like Extism's own
        // client, a refused or failed request ends the call (the runtime
        // reports a refusal as `PermissionDenied`). `tenon::http_request`
        // returns the error to the plugin instead.
        Err(error) => Err(Error::msg(format!("tenon: HTTP request failed: {error}"))),
    }
}

fn env_http_status_code(
    _plugin: &mut CurrentPlugin,
    _inputs: &[Val],
    outputs: &mut [Val],
    ctx: &mut Ctx<'_>,
) -> Result<(), Error> {
    outputs[0] = Val::I32(i32::from(*ctx.http_status));
    Ok(())
}

fn env_http_headers(
    plugin: &mut CurrentPlugin,
    _inputs: &[Val],
    outputs: &mut [Val],
    ctx: &mut Ctx<'_>,
) -> Result<(), Error> {
    if ctx.http_headers.is_empty() {
        outputs[0] = Val::I64(0);
        return Ok(());
    }
    let text = serde_json::to_vec(&*ctx.http_headers)?;
    answer(plugin, outputs, &text)
}

fn env_log(
    level: LogLevel,
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    _outputs: &mut [Val],
    ctx: &mut Ctx<'_>,
) -> Result<(), Error> {
    let Some(handle) = block(plugin, &inputs[0]) else {
        return Ok(());
    };
    // Only what the log keeps is read.
    let max = ctx.boundary().config().max_log_line;
    let message = {
        let bytes = plugin.memory_bytes(handle)?;
        limits::prefix_text(&bytes[..bytes.len().min(max)], bytes.len(), max)
    };
    plugin.memory_free(handle)?;
    ctx.boundary().log(ctx.scope, level, &message, &[]);
    Ok(())
}

/// `error_set`: the plugin's error for this call, kept by Tenon (Extism's
/// kernel never sees it, so Extism neither copies nor logs it). An error
/// larger than the plugin's error limit is not read at all. Offset 0
/// clears it.
fn env_error_set(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    _outputs: &mut [Val],
    ctx: &mut Ctx<'_>,
) -> Result<(), Error> {
    // Extism clears the error (offset 0) before a call, before it points
    // `plugin` at the instance's store: touch nothing of `plugin` then.
    if inputs[0].i64() == Some(0) {
        *ctx.error = None;
        return Ok(());
    }
    let Some(handle) = block(plugin, &inputs[0]) else {
        *ctx.error = None;
        return Ok(());
    };
    let len = handle.len() as u64;
    *ctx.error = Some(if len > ctx.host.error_limit {
        OwnError::TooLarge(len)
    } else {
        OwnError::Text(String::from_utf8_lossy(plugin.memory_bytes(handle)?).into_owned())
    });
    Ok(())
}

/// Every level reaches the boundary (which bounds lines per call); the
/// embedder's log decides what to keep.
fn env_get_log_level(
    _plugin: &mut CurrentPlugin,
    _inputs: &[Val],
    outputs: &mut [Val],
    _ctx: &mut Ctx<'_>,
) -> Result<(), Error> {
    outputs[0] = Val::I32(0);
    Ok(())
}
