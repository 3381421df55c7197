//! Hostile Extism test plugin: recursion without bound. Each frame keeps a
//! buffer on the stack, so both the WebAssembly call stack and Rust's shadow
//! stack in linear memory run out; either way the instance traps and the
//! host stays up.
//!
//! - `handle_hook` (any hook) and `recurse`: recurse forever;
//! - `depth` (input: N as JSON): recurse N levels, answer N;
//! - `ping`: `pong`.

use std::hint::black_box;

use extism_pdk::Error;

/// Recurses `remaining` levels (`u64::MAX`: forever, in practice), keeping
/// 256 bytes live in every frame.
#[inline(never)]
fn descend(remaining: u64) -> u64 {
    let mut frame = [0u8; 256];
    frame[0] = remaining as u8;
    black_box(&mut frame);
    if black_box(remaining) == 0 {
        return 0;
    }
    1 + descend(remaining - 1) + u64::from(black_box(frame)[1])
}

fn handle_hook(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    black_box(descend(u64::MAX));
    Err(extism_tenon::error(
        "internal",
        "recursed u64::MAX levels: impossible",
    ))
}

fn recurse(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    Ok(serde_json::to_vec(&descend(u64::MAX))?)
}

fn depth(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let levels: u64 = serde_json::from_slice(&input)?;
    Ok(serde_json::to_vec(&descend(levels))?)
}

fn ping(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    Ok(b"pong".to_vec())
}

extism_tenon::export!("handle_hook" => handle_hook);
extism_tenon::export!("recurse" => recurse);
extism_tenon::export!("depth" => depth);
extism_tenon::export!("ping" => ping);
