//! Counts hook invocations: one KV key per hook name (`count/<hook>`), read
//! back with `call("count")` (all counts) and `call("get", hook)`.
//!
//! It also keeps an in-memory tally, exported by `snapshot` and imported by
//! `restore`, to show state carried across a hot reload or an upgrade: the
//! tally of the old instance continues in the new one. (KV is durable and
//! shared by all instances; the tally belongs to one instance.)

use std::collections::BTreeMap;

use tenon_pdk::host::kv;
use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, Plugin, json};

const PREFIX: &str = "count/";

/// The counter: an in-memory tally per hook name.
#[derive(Default)]
pub struct Counter {
    tally: BTreeMap<String, u64>,
}

fn key(hook: &str) -> String {
    format!("{PREFIX}{hook}")
}

fn read(hook: &str) -> Result<u64, Error> {
    Ok(kv::get_json::<u64>(&key(hook))?.unwrap_or(0))
}

impl Plugin for Counter {
    fn activate(_config: Config) -> Result<Self, Error> {
        Ok(Self::default())
    }

    fn handle_hook(
        &mut self,
        hook: &str,
        _context: &HookContext,
        _data: HookData,
    ) -> Result<HookAction, Error> {
        let count = read(hook)? + 1;
        kv::set_json(&key(hook), &count)?;
        *self.tally.entry(hook.to_owned()).or_default() += 1;
        Ok(HookAction::CONTINUE)
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            "count" => {
                let mut counts = BTreeMap::new();
                for key in kv::list(PREFIX)? {
                    let hook = &key[PREFIX.len()..];
                    counts.insert(hook.to_owned(), read(hook)?);
                }
                json::encode(&counts)
            }
            "get" => {
                let hook = std::str::from_utf8(input)
                    .map_err(|_| Error::invalid_input("`get` takes a hook name as UTF-8 text"))?
                    .trim();
                if hook.is_empty() {
                    return Err(Error::invalid_input("`get` needs a hook name"));
                }
                json::encode(&read(hook)?)
            }
            "tally" => json::encode(&self.tally),
            // Bus events the host delivers (topics it may subscribe to):
            // counted under `event:<topic>`.
            "on-event" => {
                let event: tenon_pdk::serde_json::Value = json::decode(input)?;
                let topic = event["topic"].as_str().unwrap_or("unknown");
                let name = format!("event:{topic}");
                let count = read(&name)? + 1;
                kv::set_json(&key(&name), &count)?;
                Ok(Vec::new())
            }
            "reset" => {
                for key in kv::list(PREFIX)? {
                    kv::delete(&key)?;
                }
                self.tally.clear();
                Ok(Vec::new())
            }
            other => Err(Error::unknown_function(other)),
        }
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, Error> {
        json::encode(&self.tally).map(Some)
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), Error> {
        self.tally = json::decode(state)?;
        Ok(())
    }
}

tenon_pdk::export!(Counter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_replaces_the_tally() {
        let mut counter = Counter::default();
        counter.tally.insert("a".into(), 2);
        let state = counter.snapshot().unwrap().unwrap();
        assert_eq!(state, br#"{"a":2}"#);
        let mut next = Counter::default();
        next.tally.insert("b".into(), 5);
        next.restore(&state).unwrap();
        assert_eq!(next.call("tally", b"").unwrap(), br#"{"a":2}"#);
        assert_eq!(next.restore(b"[").unwrap_err().code(), "invalid-input");
    }
}
