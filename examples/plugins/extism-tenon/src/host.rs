//! The `tenon` host functions, typed.
//!
//! Each function sends one memory block (a string or a JSON request) and
//! reads a JSON envelope back: `{"ok": …}` or
//! `{"error": {"kind": …, "message": …}}`.

use std::collections::BTreeMap;

use base64::Engine as _;
use extism_pdk::host_fn;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[host_fn("tenon")]
extern "ExtismHost" {
    fn config_get(key: &str) -> String;
    fn kv_get(key: &str) -> String;
    fn kv_set(request: String) -> String;
    fn kv_delete(key: &str) -> String;
    fn kv_list(prefix: &str) -> String;
    fn emit_event(request: String) -> String;
    fn log(request: String);
    fn http_request(request: String) -> String;
    fn call_service(request: String) -> String;
}

/// Why the host refused or failed a request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct HostError {
    /// `permission_denied`, `quota_exceeded`, `timeout`, `invalid_input` or
    /// `unavailable`.
    pub kind: String,
    /// What happened.
    pub message: String,
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for HostError {}

impl HostError {
    fn broken(what: &str, detail: impl std::fmt::Display) -> Self {
        Self {
            kind: "invalid_input".to_owned(),
            message: format!("the host's answer to {what} is malformed: {detail}"),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Envelope<T> {
    Ok(T),
    Error(HostError),
}

fn open<T: DeserializeOwned>(
    what: &str,
    answer: Result<String, extism_pdk::Error>,
) -> Result<T, HostError> {
    let text = answer.map_err(|e| HostError::broken(what, e))?;
    match serde_json::from_str::<Envelope<T>>(&text) {
        Ok(Envelope::Ok(value)) => Ok(value),
        Ok(Envelope::Error(error)) => Err(error),
        Err(e) => Err(HostError::broken(what, e)),
    }
}

/// Reads a config value: a declared key, or a secret the plugin was
/// granted.
pub fn config(key: &str) -> Result<Option<Value>, HostError> {
    // SAFETY (all host calls below): the functions are the host's; the
    // PDK passes and reads memory blocks it owns.
    #[allow(unsafe_code)]
    let answer = unsafe { config_get(key) };
    open("config_get", answer)
}

/// Reads a value from the plugin's KV store.
pub fn kv_read(key: &str) -> Result<Option<Vec<u8>>, HostError> {
    #[allow(unsafe_code)]
    let answer = unsafe { kv_get(key) };
    match open::<Option<String>>("kv_get", answer)? {
        Some(text) => B64
            .decode(text)
            .map(Some)
            .map_err(|e| HostError::broken("kv_get", e)),
        None => Ok(None),
    }
}

/// Reads a JSON value from the KV store.
pub fn kv_read_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, HostError> {
    match kv_read(key)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| HostError::broken("kv_get", e)),
        None => Ok(None),
    }
}

/// Writes a value (counted against the plugin's quota).
pub fn kv_write(key: &str, value: &[u8]) -> Result<(), HostError> {
    let request = json!({"key": key, "value": B64.encode(value)}).to_string();
    #[allow(unsafe_code)]
    let answer = unsafe { kv_set(request) };
    open::<Value>("kv_set", answer).map(drop)
}

/// Writes a value as JSON.
pub fn kv_write_json<T: Serialize>(key: &str, value: &T) -> Result<(), HostError> {
    let bytes = serde_json::to_vec(value).map_err(|e| HostError {
        kind: "invalid_input".to_owned(),
        message: e.to_string(),
    })?;
    kv_write(key, &bytes)
}

/// Deletes a value; a missing key is not an error.
pub fn kv_remove(key: &str) -> Result<(), HostError> {
    #[allow(unsafe_code)]
    let answer = unsafe { kv_delete(key) };
    open::<Value>("kv_delete", answer).map(drop)
}

/// The keys starting with `prefix`, in order.
pub fn kv_keys(prefix: &str) -> Result<Vec<String>, HostError> {
    #[allow(unsafe_code)]
    let answer = unsafe { kv_list(prefix) };
    open("kv_list", answer)
}

/// Publishes an event on a topic the plugin may publish to.
pub fn emit(topic: &str, payload: &Value) -> Result<(), HostError> {
    let request = json!({"topic": topic, "payload": payload}).to_string();
    #[allow(unsafe_code)]
    let answer = unsafe { emit_event(request) };
    open::<Value>("emit_event", answer).map(drop)
}

/// Writes a line to the plugin's log (`level`: trace, debug, info, warn,
/// error), with structured fields.
pub fn log_line(level: &str, message: &str, fields: &BTreeMap<String, String>) {
    let request = json!({"level": level, "message": message, "fields": fields}).to_string();
    #[allow(unsafe_code)]
    let _ = unsafe { log(request) };
}

/// An outbound HTTP request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`… (`GET` when empty).
    pub method: String,
    /// An absolute `http` or `https` URL.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
    /// The body (capped by the host).
    pub body: Vec<u8>,
}

#[derive(Deserialize)]
struct WireResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// Sends an HTTP request to an allowlisted host.
pub fn http(request: &HttpRequest) -> Result<HttpResponse, HostError> {
    let method = if request.method.is_empty() {
        "GET"
    } else {
        request.method.as_str()
    };
    let wire = json!({
        "method": method,
        "url": request.url,
        "headers": request.headers,
        "body": B64.encode(&request.body),
    })
    .to_string();
    #[allow(unsafe_code)]
    let answer = unsafe { http_request(wire) };
    let response: WireResponse = open("http_request", answer)?;
    Ok(HttpResponse {
        status: response.status,
        headers: response.headers,
        body: B64
            .decode(response.body)
            .map_err(|e| HostError::broken("http_request", e))?,
    })
}

/// `GET url`.
pub fn get(url: &str) -> Result<HttpResponse, HostError> {
    http(&HttpRequest {
        method: "GET".to_owned(),
        url: url.to_owned(),
        ..HttpRequest::default()
    })
}

/// Calls `method` of the host service `service` (`org`, `get`) with a JSON
/// input; answers the method's JSON output. The host checks the method's
/// permission and input schema first: a missing grant is a
/// `permission_denied` error, input that does not fit an `invalid_input`
/// naming the path, a failure of the service `unavailable`.
pub fn service(service: &str, method: &str, input: &Value) -> Result<Value, HostError> {
    let request = json!({"service": service, "method": method, "input": input}).to_string();
    #[allow(unsafe_code)]
    let answer = unsafe { call_service(request) };
    open("call_service", answer)
}
