//! The `counter` example as an Extism plugin: counts hook invocations, one
//! KV key per hook name (`count/<hook>`, the count as JSON text, exactly as
//! the component counter stores it), through Tenon's `tenon` host functions.
//!
//! - `handle_hook`: adds one to the hook's count, continues;
//! - `count`: all counts, `{hook: count}`; `get` (input: a hook name): one
//!   count; `tally`: this instance's in-memory tally; `reset`: deletes every
//!   count and clears the tally;
//! - `on-event` (input: a bus event, `{"topic": …, …}`): counts it under
//!   `event:<topic>`;
//! - `snapshot` / `restore`: the in-memory tally, carried across reloads.

use std::cell::RefCell;
use std::collections::BTreeMap;

use extism_pdk::{FnResult, Json, plugin_fn};
use extism_tenon::{HookAnswer, HookInput, host};

const PREFIX: &str = "count/";

thread_local! {
    /// The in-memory tally of this instance, per hook name.
    static TALLY: RefCell<BTreeMap<String, u64>> = const { RefCell::new(BTreeMap::new()) };
}

fn key(hook: &str) -> String {
    format!("{PREFIX}{hook}")
}

fn read(hook: &str) -> Result<u64, extism_pdk::Error> {
    Ok(host::kv_read_json::<u64>(&key(hook))?.unwrap_or(0))
}

#[plugin_fn]
pub fn handle_hook(Json(input): Json<HookInput>) -> FnResult<Json<HookAnswer>> {
    extism_tenon::init();
    let count = read(&input.hook)? + 1;
    host::kv_write_json(&key(&input.hook), &count)?;
    TALLY.with_borrow_mut(|tally| *tally.entry(input.hook).or_default() += 1);
    Ok(Json(HookAnswer::CONTINUE))
}

#[plugin_fn]
pub fn count() -> FnResult<Json<BTreeMap<String, u64>>> {
    extism_tenon::init();
    let mut counts = BTreeMap::new();
    for key in host::kv_keys(PREFIX)? {
        let hook = &key[PREFIX.len()..];
        counts.insert(hook.to_owned(), read(hook)?);
    }
    Ok(Json(counts))
}

#[plugin_fn]
pub fn get(hook: String) -> FnResult<Json<u64>> {
    extism_tenon::init();
    let hook = hook.trim();
    if hook.is_empty() {
        return Err(extism_tenon::error("invalid-input", "`get` needs a hook name").into());
    }
    Ok(Json(read(hook)?))
}

#[plugin_fn]
pub fn tally() -> FnResult<Json<BTreeMap<String, u64>>> {
    extism_tenon::init();
    Ok(Json(TALLY.with_borrow(Clone::clone)))
}

fn on_event(input: Vec<u8>) -> Result<Vec<u8>, extism_pdk::Error> {
    let event: serde_json::Value = serde_json::from_slice(&input)?;
    let name = format!("event:{}", event["topic"].as_str().unwrap_or("unknown"));
    let count = read(&name)? + 1;
    host::kv_write_json(&key(&name), &count)?;
    Ok(Vec::new())
}

extism_tenon::export!("on-event" => on_event);

#[plugin_fn]
pub fn reset() -> FnResult<()> {
    extism_tenon::init();
    for key in host::kv_keys(PREFIX)? {
        host::kv_remove(&key)?;
    }
    TALLY.with_borrow_mut(BTreeMap::clear);
    Ok(())
}

#[plugin_fn]
pub fn snapshot() -> FnResult<Json<BTreeMap<String, u64>>> {
    extism_tenon::init();
    Ok(Json(TALLY.with_borrow(Clone::clone)))
}

#[plugin_fn]
pub fn restore(Json(restored): Json<BTreeMap<String, u64>>) -> FnResult<()> {
    extism_tenon::init();
    TALLY.with_borrow_mut(|tally| {
        for (hook, n) in restored {
            *tally.entry(hook).or_default() += n;
        }
    });
    Ok(())
}
