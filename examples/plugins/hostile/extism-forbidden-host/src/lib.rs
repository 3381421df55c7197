//! Hostile Extism test plugin: asks for what it was not granted, through
//! Tenon's `tenon::http_request` (errors come back as values) and through
//! Extism's own `http_request` (`extism_pdk::http`, where Tenon's checks
//! apply too and a refusal ends the call). Every request must be refused
//! before reaching the network and reported to the host's observer.
//!
//! - `handle_hook` (any hook): GETs the cloud metadata address and fails with
//!   the host's error;
//! - `get` (input: a URL): GETs it with `tenon::http_request`, answers
//!   `{"status": N}` or fails with the host's error kind as code;
//! - `extism-get` (input: a URL): the same through `extism_pdk::http`;
//! - `config` (input: a key): reads it with `tenon::config_get` and with
//!   Extism's `config::get`, answers `{"tenon": outcome, "extism": value}`;
//! - `probe`: tries [`FORBIDDEN_URLS`], an undeclared secret, an undeclared
//!   config key and a forbidden topic; answers `{target: outcome}`;
//! - `flood` (input: a count): tries to publish on an undeclared topic that
//!   many times in a row (a denial flood), answers `{"denied": N}`;
//! - `ping`: `pong`.

use std::collections::BTreeMap;

use extism_pdk::Error;
use extism_tenon::{HostError, host};
use serde_json::json;

/// URLs outside the allowlist, or resolving to addresses a plugin may not
/// reach without `allow_private`.
pub const FORBIDDEN_URLS: &[&str] = &[
    "https://evil.example.net/steal",
    "https://allowed.example.com.evil.example.net/",
    "https://allowed.example.com@evil.example.net/",
    "http://127.0.0.1/",
    "http://127.0.0.1:8080/admin",
    "http://localhost/",
    "http://[::1]/",
    "http://0.0.0.0/",
    "http://2130706433/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://[fd00::1]/",
    "file:///etc/passwd",
];

fn outcome<T>(result: Result<T, HostError>, ok: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => ok(value),
        Err(error) => format!("{}: {}", error.kind, error.message),
    }
}

fn failed(error: HostError) -> Error {
    extism_tenon::error(&error.kind, error.message)
}

fn url(input: &[u8]) -> Result<String, Error> {
    Ok(std::str::from_utf8(input)?.trim().to_owned())
}

fn handle_hook(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    host::get("http://169.254.169.254/latest/meta-data/").map_err(failed)?;
    Err(extism_tenon::error(
        "internal",
        "reached the cloud metadata address",
    ))
}

fn get(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let response = host::get(&url(&input)?).map_err(failed)?;
    Ok(serde_json::to_vec(&json!({"status": response.status}))?)
}

fn extism_get(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let request = extism_pdk::HttpRequest::new(url(&input)?);
    let response = extism_pdk::http::request::<()>(&request, None)?;
    Ok(serde_json::to_vec(
        &json!({"status": response.status_code()}),
    )?)
}

fn config(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let key = url(&input)?;
    let tenon = outcome(host::config(&key), |v| format!("ok {v:?}"));
    let extism = extism_pdk::config::get(&key)?;
    Ok(serde_json::to_vec(
        &json!({"tenon": tenon, "extism": extism}),
    )?)
}

fn probe(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let mut outcomes = BTreeMap::new();
    for url in FORBIDDEN_URLS {
        let result = host::get(url);
        outcomes.insert(
            (*url).to_owned(),
            outcome(result, |r| format!("ok {}", r.status)),
        );
    }
    outcomes.insert(
        "secret:ungranted_secret".to_owned(),
        outcome(host::config("ungranted_secret"), |v| format!("ok {v:?}")),
    );
    outcomes.insert(
        "config:undeclared".to_owned(),
        outcome(host::config("undeclared"), |v| format!("ok {v:?}")),
    );
    outcomes.insert(
        "event:forbidden.topic".to_owned(),
        outcome(host::emit("forbidden.topic", &json!({})), |()| {
            "ok".to_owned()
        }),
    );
    Ok(serde_json::to_vec(&outcomes)?)
}

fn flood(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let times: u32 = std::str::from_utf8(&input)
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| extism_tenon::error("invalid-input", "`flood` takes a count"))?;
    let denied = (0..times)
        .filter(|_| host::emit("forbidden.topic", &json!({})).is_err())
        .count();
    Ok(serde_json::to_vec(&json!({ "denied": denied }))?)
}

fn ping(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    Ok(b"pong".to_vec())
}

extism_tenon::export!("handle_hook" => handle_hook);
extism_tenon::export!("get" => get);
extism_tenon::export!("extism-get" => extism_get);
extism_tenon::export!("config" => config);
extism_tenon::export!("probe" => probe);
extism_tenon::export!("flood" => flood);
extism_tenon::export!("ping" => ping);
