//! Calls the host's own services through the `tenon` namespace's
//! `call_service` host function, and answers what the host said as a value:
//! `{"ok": output}` or `{"error": {"kind": …, "message": …}}`, so that a
//! test (or an operator with `tenon call`) sees every refusal as the plugin
//! sees it.

use extism_pdk::{FnResult, Json, plugin_fn};
use serde::Deserialize;
use serde_json::{Value, json};

/// What `call` is asked to call.
#[derive(Deserialize)]
struct Call {
    service: String,
    method: String,
    #[serde(default)]
    input: Value,
}

#[plugin_fn]
pub fn call(Json(call): Json<Call>) -> FnResult<Json<Value>> {
    extism_tenon::init();
    let answer = match extism_tenon::host::service(&call.service, &call.method, &call.input) {
        Ok(output) => json!({"ok": output}),
        Err(error) => json!({"error": {"kind": error.kind, "message": error.message}}),
    };
    Ok(Json(answer))
}
