//! Hostile Extism test plugin: never returns. The host must stop it at its
//! deadline (the watchdog for plugin code, the call's deadline for host
//! calls) and keep serving other calls and plugins.
//!
//! - `handle_hook` (any hook) and `loop`: spin in plugin code;
//! - `host-loop`: spin through host calls (KV reads, trace logs);
//! - `ping`: `pong`;
//! - `activate` with config `loop_on_activate = true`: spin.

use std::collections::BTreeMap;
use std::hint::black_box;

use extism_pdk::Error;
use extism_tenon::host;

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn host_spin() -> ! {
    let fields = BTreeMap::new();
    loop {
        let _ = black_box(host::kv_read("looper"));
        host::log_line("trace", "still looping", &fields);
    }
}

fn activate(config: Vec<u8>) -> Result<Vec<u8>, Error> {
    let config: serde_json::Value = serde_json::from_slice(&config)?;
    if config["loop_on_activate"] == serde_json::Value::Bool(true) {
        spin();
    }
    Ok(Vec::new())
}

fn handle_hook(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    spin()
}

fn spin_call(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    spin()
}

fn host_loop(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    host_spin()
}

fn ping(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    Ok(b"pong".to_vec())
}

extism_tenon::export!("activate" => activate);
extism_tenon::export!("handle_hook" => handle_hook);
extism_tenon::export!("loop" => spin_call);
extism_tenon::export!("host-loop" => host_loop);
extism_tenon::export!("ping" => ping);
