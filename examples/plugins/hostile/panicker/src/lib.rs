//! Hostile test plugin: panics and traps. The host gets a trap error (the
//! panic message reaches the plugin's log through tenon-pdk's panic hook),
//! discards the instance, and the next call works on a fresh one.
//!
//! - `handle_hook` (any hook): panics with
//!   `tenon-hostile: deliberate panic in handle_hook`;
//! - `call("panic")`: panics with `tenon-hostile: deliberate panic in call`;
//! - `call("trap")`: `unreachable`; `call("abort")`: `std::process::abort`;
//! - `call("error")`: the error `deliberate` (no trap);
//! - `call("ping")`: `pong`;
//! - config `panic_on_activate = true`: panics in `activate`.

use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, Plugin};

/// The message of every panic, for tests to look for.
pub const PANIC_MESSAGE: &str = "tenon-hostile: deliberate panic";

/// Holds nothing.
pub struct Panicker;

#[cfg(target_arch = "wasm32")]
fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(not(target_arch = "wasm32"))]
fn trap() -> ! {
    std::process::abort()
}

impl Plugin for Panicker {
    fn activate(config: Config) -> Result<Self, Error> {
        if config.get_or("panic_on_activate", false)? {
            panic!("{PANIC_MESSAGE} in activate");
        }
        Ok(Self)
    }

    fn handle_hook(&mut self, _: &str, _: &HookContext, _: HookData) -> Result<HookAction, Error> {
        panic!("{PANIC_MESSAGE} in handle_hook")
    }

    fn call(&mut self, function: &str, _input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            "panic" => panic!("{PANIC_MESSAGE} in call"),
            "trap" => trap(),
            "abort" => std::process::abort(),
            "error" => Err(Error::new(
                "deliberate",
                "tenon-hostile: a deliberate error",
            )),
            "ping" => Ok(b"pong".to_vec()),
            // Bus events it subscribes to (when granted) panic too.
            "on-event" => panic!("{PANIC_MESSAGE} in on-event"),
            other => Err(Error::unknown_function(other)),
        }
    }
}

tenon_pdk::export!(Panicker);
