//! Hostile test plugin: never returns. The host must stop it at its deadline
//! (epoch interruption for plugin code, the call's deadline for host calls)
//! and keep serving other plugins.
//!
//! - `handle_hook` (any hook) and `call("loop")`: spin in plugin code;
//! - `call("host-loop")`: spin through host calls (KV reads, trace logs);
//! - `call("ping")`: `pong`;
//! - config `loop_on_activate = true`: spin in `activate`.

use std::hint::black_box;

use tenon_pdk::host::{kv, log};
use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, Plugin};

/// Holds nothing.
pub struct Looper;

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn host_spin() -> ! {
    loop {
        let _ = black_box(kv::get("looper"));
        log::trace("still looping");
    }
}

impl Plugin for Looper {
    fn activate(config: Config) -> Result<Self, Error> {
        if config.get_or("loop_on_activate", false)? {
            spin();
        }
        Ok(Self)
    }

    fn handle_hook(&mut self, _: &str, _: &HookContext, _: HookData) -> Result<HookAction, Error> {
        spin()
    }

    fn call(&mut self, function: &str, _input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            "loop" => spin(),
            "host-loop" => host_spin(),
            "ping" => Ok(b"pong".to_vec()),
            other => Err(Error::unknown_function(other)),
        }
    }
}

tenon_pdk::export!(Looper);
