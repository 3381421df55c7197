//! Tenon's host API as Extism host functions.
//!
//! Two sets of functions are linked into every Extism plugin:
//!
//! - the `tenon` namespace: `config_get`, `kv_get`, `kv_set`, `kv_delete`,
//!   `kv_list`, `emit_event`, `log` and `http_request` (also linked as
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
//!   call). They keep Extism's ownership rules (they free their inputs).
//!
//! Every function answers through the [`Boundary`] with the current call's
//! [`CallScope`], so permissions, quotas, denial reports and the call's
//! deadline are exactly those of the component runtime.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use ::extism::{CurrentPlugin, Error, Function, UserData, Val, ValType};
use base64::Engine as _;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use crate::boundary::{Boundary, CallScope};
use crate::host::{HostError, HttpRequest, LogLevel, PermissionDenial};

use super::module::{EXTISM_ENV, EXTISM_USER, TENON};

/// The functions of the `tenon` namespace.
pub(super) const TENON_FUNCTIONS: [&str; 8] = [
    "config_get",
    "kv_get",
    "kv_set",
    "kv_delete",
    "kv_list",
    "emit_event",
    "log",
    "http_request",
];

/// The `extism:host/env` functions Tenon replaces.
pub(super) const ENV_FUNCTIONS: [&str; 10] = [
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
    /// The config given at start (or the last configure), as Extism's
    /// `config_get` serves it: strings as they are, other values as JSON.
    config: RwLock<Arc<BTreeMap<String, String>>>,
}

impl HostSide {
    pub(super) fn new(boundary: Arc<Boundary>) -> Self {
        Self {
            boundary,
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
}

impl Default for LinkState {
    fn default() -> Self {
        Self {
            scope: CallScope::new(std::time::Duration::ZERO),
            active: None,
            timed_out: Cell::new(false),
            http_status: 0,
            http_headers: BTreeMap::new(),
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
    /// `deadline`.
    pub(super) fn begin(
        &self,
        host: &Arc<HostSide>,
        deadline: tokio::time::Instant,
        bridge: Option<Handle>,
    ) {
        let mut state = self.state.lock();
        state.scope.reset(deadline);
        state.active = Some(Active {
            host: host.clone(),
            bridge,
        });
        state.timed_out.set(false);
        state.http_status = 0;
        state.http_headers.clear();
    }

    /// Ends the call; returns what its host requests ran into.
    pub(super) fn end(&self) -> Ended {
        let mut state = self.state.lock();
        state.active = None;
        Ended {
            denial: state.scope.take_denial(),
            timed_out: state.timed_out.get(),
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
}

/// The host functions linked into a plugin on the engine that `link`
/// belongs to: those of `imports`, as (module, name).
pub(super) fn functions(link: &Arc<Link>, imports: &BTreeSet<(String, String)>) -> Vec<Function> {
    use ValType::{I32, I64};
    let env = |name: &str, params: &[ValType], results: &[ValType], f: HostFn| {
        host_function(link, EXTISM_ENV, name, params, results, f)
    };
    let requests: [(&str, Handler); 7] = [
        ("config_get", config_get),
        ("kv_get", kv_get),
        ("kv_set", kv_set),
        ("kv_delete", kv_delete),
        ("kv_list", kv_list),
        ("emit_event", emit_event),
        ("http_request", http_request),
    ];
    let mut functions = Vec::new();
    for namespace in [TENON, EXTISM_USER] {
        functions.extend(requests.iter().map(|&(name, handler)| {
            host_function(
                link,
                namespace,
                name,
                &[I64],
                &[I64],
                move |p, i, o, ctx| answer_request(p, i, o, ctx, handler),
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
            };
            f(plugin, inputs, outputs, &mut ctx)
        },
    )
    .with_namespace(namespace)
}

// ---------------------------------------------------------------------------
// Reading and writing plugin memory.

/// The bytes of the block at `val` (empty for offset 0 or an unknown block).
fn read_block(plugin: &mut CurrentPlugin, val: &Val) -> Result<Vec<u8>, Error> {
    match plugin.memory_from_val(val) {
        Some(handle) => Ok(plugin.memory_bytes(handle)?.to_vec()),
        None => Ok(Vec::new()),
    }
}

/// Like [`read_block`], then frees the block (Extism's ownership rule for
/// `extism:host/env` functions).
fn take_block(plugin: &mut CurrentPlugin, val: &Val) -> Result<Vec<u8>, Error> {
    match plugin.memory_from_val(val) {
        Some(handle) => {
            let bytes = plugin.memory_bytes(handle)?.to_vec();
            plugin.memory_free(handle)?;
            Ok(bytes)
        }
        None => Ok(Vec::new()),
    }
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

/// Reads the request block, runs `handler`, answers with the envelope.
fn answer_request(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    outputs: &mut [Val],
    ctx: &mut Ctx<'_>,
    handler: Handler,
) -> Result<(), Error> {
    let request = read_block(plugin, &inputs[0])?;
    let result = handler(ctx, request);
    envelope(plugin, outputs, result)
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
    let request = read_block(plugin, &inputs[0])?;
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
    let body = match &request.body {
        Some(body) => decode_base64(body, "the request body")?,
        None => Vec::new(),
    };
    let request = HttpRequest {
        method: request.method.unwrap_or_else(|| "GET".to_owned()),
        url: request.url,
        headers: request.headers.into_vec(),
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
    let key = take_block(plugin, &inputs[0])?;
    let Ok(key) = String::from_utf8(key) else {
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
    let request = take_block(plugin, &inputs[0])?;
    let body = take_block(plugin, &inputs[1])?;
    let result = json::<ExtismHttpRequest>(&request, "the HTTP request").and_then(|request| {
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
    let message = take_block(plugin, &inputs[0])?;
    let message = String::from_utf8_lossy(&message);
    ctx.boundary().log(ctx.scope, level, &message, &[]);
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
