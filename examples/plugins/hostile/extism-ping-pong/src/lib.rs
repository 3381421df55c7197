//! Hostile Extism test plugin: answers every event it receives with
//! another, so that two copies of it (under two ids) bounce events between
//! them for ever unless the host bounds the chain.
//!
//! - `on-event` (every `bounce.*` event): publishes `bounce.back` with the
//!   round it answers plus one, and ignores a refusal;
//! - `ping`: `pong`.

use extism_pdk::Error;
use extism_tenon::host;
use serde_json::{Value, json};

fn on_event(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let event: Value = serde_json::from_slice(&input)?;
    let round = event["payload"]["round"].as_u64().unwrap_or(0);
    // A refusal (the host cut the chain) changes nothing here: a hostile
    // plugin keeps trying with the next event.
    let _ = host::emit("bounce.back", &json!({ "round": round + 1 }));
    Ok(Vec::new())
}

fn ping(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    Ok(b"pong".to_vec())
}

extism_tenon::export!("on-event" => on_event);
extism_tenon::export!("ping" => ping);
