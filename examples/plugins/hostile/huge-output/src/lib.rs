//! Hostile test plugin: produces megabytes. The host must bound what it
//! accepts (return values, log lines, captured stdout/stderr, error messages,
//! KV values, event payloads) and stay responsive.
//!
//! Every function takes N (MiB, as text; default 16):
//! - `handle_hook` (any hook): continues with a patch whose `content` is 16 MiB;
//! - `call("big")`: answers N MiB;
//! - `call("log")`: logs N MiB in 1 KiB lines;
//! - `call("print")`: prints N MiB to stdout and N MiB to stderr;
//! - `call("error")`: fails with an N MiB message;
//! - `call("kv")`: stores N MiB under one key (its quota is 1 MiB);
//! - `call("event")`: emits an N MiB payload;
//! - `call("ping")`: `pong`.

use std::io::Write;

use tenon_pdk::host::{events, kv, log};
use tenon_pdk::serde_json::json;
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

impl Plugin for HugeOutput {
    fn activate(_config: Config) -> Result<Self, Error> {
        Ok(Self)
    }

    fn handle_hook(&mut self, _: &str, _: &HookContext, _: HookData) -> Result<HookAction, Error> {
        Ok(HookAction::patch(json!({ "content": text(16) })))
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            "big" => Ok(text(mib(input)?).into_bytes()),
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
