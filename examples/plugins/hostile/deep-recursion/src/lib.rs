//! Hostile test plugin: recursion without bound. Each frame keeps a buffer
//! on the stack, so both the WebAssembly call stack (the host's stack limit)
//! and Rust's shadow stack in linear memory run out; either way the instance
//! traps and the host stays up.
//!
//! - `handle_hook` (any hook) and `call("recurse")`: recurse forever;
//! - `call("depth", "N")`: recurse N levels, answer N;
//! - `call("ping")`: `pong`.

use std::hint::black_box;

use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, Plugin, json};

/// Holds nothing.
pub struct DeepRecursion;

/// Recurses `remaining` levels (`u64::MAX`: forever, in practice), keeping
/// 256 bytes live in every frame.
#[inline(never)]
fn recurse(remaining: u64) -> u64 {
    let mut frame = [0u8; 256];
    frame[0] = remaining as u8;
    black_box(&mut frame);
    if black_box(remaining) == 0 {
        return 0;
    }
    1 + recurse(remaining - 1) + u64::from(black_box(frame)[1])
}

impl Plugin for DeepRecursion {
    fn activate(_config: Config) -> Result<Self, Error> {
        Ok(Self)
    }

    fn handle_hook(&mut self, _: &str, _: &HookContext, _: HookData) -> Result<HookAction, Error> {
        black_box(recurse(u64::MAX));
        Err(Error::internal("recursed u64::MAX levels: impossible"))
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            "recurse" => json::encode(&recurse(u64::MAX)),
            "depth" => json::encode(&recurse(json::decode(input)?)),
            "ping" => Ok(b"pong".to_vec()),
            other => Err(Error::unknown_function(other)),
        }
    }
}

tenon_pdk::export!(DeepRecursion);
