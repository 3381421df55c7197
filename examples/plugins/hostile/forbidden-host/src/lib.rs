//! Hostile test plugin: asks for what it was not granted. Every request must
//! come back as a `permission-denied` host error (never reach the network),
//! and be reported to the host's observer.
//!
//! - `handle_hook` (any hook): GETs the cloud metadata address and fails with
//!   the host's error (`permission-denied`);
//! - `call("get", url)`: GETs `url`, answers `{"status": N}` or fails with the
//!   host's error code;
//! - `call("probe")`: tries [`FORBIDDEN_URLS`], an undeclared secret and an
//!   undeclared topic; answers `{target: outcome}`;
//! - `call("flood", n)`: tries to publish on an undeclared topic `n` times
//!   in a row (a denial flood), answers how many were refused;
//! - `call("ping")`: `pong`.

use std::collections::BTreeMap;

use tenon_pdk::host::{config, events, http};
use tenon_pdk::serde_json::json;
use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, HostError, Plugin};

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

/// Holds nothing.
pub struct ForbiddenHost;

fn outcome<T>(result: Result<T, HostError>, ok: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => ok(value),
        Err(error) => format!("{}: {}", error.code(), error.detail()),
    }
}

impl Plugin for ForbiddenHost {
    fn activate(_config: Config) -> Result<Self, Error> {
        Ok(Self)
    }

    fn handle_hook(&mut self, _: &str, _: &HookContext, _: HookData) -> Result<HookAction, Error> {
        http::get("http://169.254.169.254/latest/meta-data/")?;
        Err(Error::internal("reached the cloud metadata address"))
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            "get" => {
                let url = std::str::from_utf8(input)
                    .map_err(|_| Error::invalid_input("`get` takes a URL"))?;
                let response = http::get(url.trim())?;
                tenon_pdk::json::encode(&json!({"status": response.status}))
            }
            "probe" => {
                let mut outcomes = BTreeMap::new();
                for url in FORBIDDEN_URLS {
                    let result = http::get(url);
                    outcomes.insert(
                        url.to_string(),
                        outcome(result, |r| format!("ok {}", r.status)),
                    );
                }
                outcomes.insert(
                    "secret:ungranted_secret".to_owned(),
                    outcome(config::secret("ungranted_secret"), |v| format!("ok {v:?}")),
                );
                outcomes.insert(
                    "config:undeclared".to_owned(),
                    outcome(config::get_value("undeclared"), |v| format!("ok {v:?}")),
                );
                outcomes.insert(
                    "event:forbidden.topic".to_owned(),
                    outcome(events::emit("forbidden.topic", &json!({})), |()| {
                        "ok".to_owned()
                    }),
                );
                tenon_pdk::json::encode(&outcomes)
            }
            "flood" => {
                let times: u32 = std::str::from_utf8(input)
                    .ok()
                    .and_then(|n| n.trim().parse().ok())
                    .ok_or_else(|| Error::invalid_input("`flood` takes a count"))?;
                let denied = (0..times)
                    .filter(|_| events::emit("forbidden.topic", &json!({})).is_err())
                    .count();
                tenon_pdk::json::encode(&json!({ "denied": denied }))
            }
            "ping" => Ok(b"pong".to_vec()),
            other => Err(Error::unknown_function(other)),
        }
    }
}

tenon_pdk::export!(ForbiddenHost);
