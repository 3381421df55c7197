//! Hostile test plugin: answers every event it receives with another, so
//! that two copies of it (under two ids) bounce events between them for
//! ever unless the host bounds the chain.
//!
//! - `on-event` (every `bounce.*` event): publishes `bounce.back` with the
//!   round it answers plus one, and ignores a refusal;
//! - `call("ping")`: `pong`.

use tenon_pdk::host::events;
use tenon_pdk::serde_json::{Value, json};
use tenon_pdk::{Config, Error, Plugin};

/// Holds nothing.
pub struct PingPong;

impl Plugin for PingPong {
    fn activate(_config: Config) -> Result<Self, Error> {
        Ok(Self)
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            "on-event" => {
                let event: Value = tenon_pdk::serde_json::from_slice(input)
                    .map_err(|e| Error::new("bad-event", e.to_string()))?;
                let round = event["payload"]["round"].as_u64().unwrap_or(0);
                // A refusal (the host cut the chain) changes nothing here:
                // a hostile plugin keeps trying with the next event.
                let _ = events::emit("bounce.back", &json!({ "round": round + 1 }));
                Ok(Vec::new())
            }
            "ping" => Ok(b"pong".to_vec()),
            other => Err(Error::unknown_function(other)),
        }
    }
}

tenon_pdk::export!(PingPong);
