//! Hostile Extism test plugin: panics and traps. The host gets a trap error
//! carrying the panic message (set as the call's error by
//! `extism_tenon::init`'s panic hook), discards the instance, and the next
//! call works on a fresh one.
//!
//! - `handle_hook` (any hook): panics with
//!   `tenon-hostile: deliberate panic in handle_hook`;
//! - `panic`: panics with `tenon-hostile: deliberate panic in call`;
//! - `trap`: `unreachable`, with no message; `abort`: `std::process::abort`;
//! - `error`: the plugin error `{"code": "deliberate", …}` (no trap);
//! - `ping`: `pong`;
//! - `activate` with config `panic_on_activate = true`: panics.

use extism_pdk::Error;

/// The message of every panic, for tests to look for.
pub const PANIC_MESSAGE: &str = "tenon-hostile: deliberate panic";

#[cfg(target_arch = "wasm32")]
fn unreachable_trap() -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(not(target_arch = "wasm32"))]
fn unreachable_trap() -> ! {
    std::process::abort()
}

fn activate(config: Vec<u8>) -> Result<Vec<u8>, Error> {
    let config: serde_json::Value = serde_json::from_slice(&config)?;
    if config["panic_on_activate"] == serde_json::Value::Bool(true) {
        panic!("{PANIC_MESSAGE} in activate");
    }
    Ok(Vec::new())
}

fn handle_hook(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    panic!("{PANIC_MESSAGE} in handle_hook")
}

fn panic_call(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    panic!("{PANIC_MESSAGE} in call")
}

/// Not through `export!`: no panic hook, no message, a bare trap.
#[allow(unsafe_code)]
#[unsafe(export_name = "trap")]
extern "C" fn trap() -> i32 {
    unreachable_trap()
}

fn abort(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    std::process::abort()
}

fn error(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    Err(extism_tenon::error(
        "deliberate",
        "tenon-hostile: a deliberate error",
    ))
}

fn ping(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    Ok(b"pong".to_vec())
}

extism_tenon::export!("activate" => activate);
extism_tenon::export!("handle_hook" => handle_hook);
extism_tenon::export!("panic" => panic_call);
extism_tenon::export!("abort" => abort);
extism_tenon::export!("error" => error);
extism_tenon::export!("ping" => ping);
