//! Hostile test plugin: produces megabytes. The host must bound what it
//! accepts (return values, log lines, captured stdout/stderr, error messages,
//! KV values, event payloads) and stay responsive.
//!
//! Every function takes N (MiB, as text; default 16):
//! - `handle_hook` (any hook): continues with a patch whose `content` is
//!   `/mib` MiB (default 16) of `x`, or with `/shape = "zeros"` a JSON array
//!   `[0,0,…]` of that size (a parse bomb: a parsed element costs the host
//!   16 times its 2 bytes of text);
//! - `call("big")`: answers N MiB;
//! - `call("zeros")`: answers N MiB of `[0,0,…]`;
//! - `call("log")`: logs N MiB in 1 KiB lines;
//! - `call("log-line")`: logs one line of N MiB;
//! - `call("post")`: POSTs an N MiB body to `allowed.example.com`;
//! - `call("print")`: prints N MiB to stdout and N MiB to stderr;
//! - `call("error")`: fails with an N MiB message;
//! - `call("kv")`: stores N MiB under one key (its quota is 1 MiB);
//! - `call("event")`: emits an N MiB payload;
//! - `call("ping")`: `pong`.

use std::io::Write;

use tenon_pdk::host::{events, http, kv, log};
use tenon_pdk::serde_json::{Value, json};
use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, Plugin};

const MIB: usize = 1 << 20;

/// Holds nothing.
pub struct HugeOutput;

fn mib(input: &[u8]) -> Result<usize, Error> {
    let text = std::str::from_utf8(input).unwrap_or("").trim();
    if text.is_empty() {
        return Ok(16);
    }
    text.parse()
        .map_err(|_| Error::invalid_input(format!("`{text}` is not a number of MiB")))
}

fn text(mib: usize) -> String {
    "x".repeat(mib * MIB)
}

/// `[0,0,…,0]`, `mib` MiB long.
fn zeros(mib: usize) -> String {
    let mut out = String::with_capacity(mib * MIB);
    out.push('[');
    while out.len() + 2 < mib * MIB {
        out.push_str("0,");
    }
    out.push_str("0]");
    out
}

impl Plugin for HugeOutput {
    fn activate(_config: Config) -> Result<Self, Error> {
        Ok(Self)
    }

    fn handle_hook(
        &mut self,
        _: &str,
        _: &HookContext,
        data: HookData,
    ) -> Result<HookAction, Error> {
        let mib = data.get::<usize>("/mib")?.unwrap_or(16);
        let content = if data.get::<String>("/shape")?.as_deref() == Some("zeros") {
            // `[0,0,…]`: two bytes of text per element.
            Value::Array(vec![Value::from(0); mib * MIB / 2])
        } else {
            Value::String(text(mib))
        };
        Ok(HookAction::patch(json!({ "content": content })))
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            "big" => Ok(text(mib(input)?).into_bytes()),
            "zeros" => Ok(zeros(mib(input)?).into_bytes()),
            "log-line" => {
                log::info(&text(mib(input)?));
                Ok(Vec::new())
            }
            "post" => {
                let body = text(mib(input)?).into_bytes();
                match http::post("https://allowed.example.com/upload", body) {
                    Ok(_) => Ok(Vec::new()),
                    Err(e) => Err(Error::new("http", e.to_string())),
                }
            }
            "log" => {
                let line = "y".repeat(1024);
                for _ in 0..mib(input)? * 1024 {
                    log::info(&line);
                }
                Ok(Vec::new())
            }
            "print" => {
                let block = text(1);
                for _ in 0..mib(input)? {
                    // Ignore write errors: a host may close the pipe once full.
                    let _ = std::io::stdout().write_all(block.as_bytes());
                    let _ = std::io::stderr().write_all(block.as_bytes());
                }
                Ok(Vec::new())
            }
            "error" => Err(Error::new("huge", text(mib(input)?))),
            "kv" => {
                kv::set("huge", text(mib(input)?))?;
                Ok(Vec::new())
            }
            "event" => {
                events::emit("huge-output.event", &json!({ "blob": text(mib(input)?) }))?;
                Ok(Vec::new())
            }
            "ping" => Ok(b"pong".to_vec()),
            other => Err(Error::unknown_function(other)),
        }
    }
}

tenon_pdk::export!(HugeOutput);
