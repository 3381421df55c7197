//! The `echo` example as an Extism plugin: the same logic, for measuring
//! the Extism runtime beside the component runtime.
//!
//! - `handle_hook` with hook `echo.parse`: parses the data, then continues;
//!   `echo.patch`: parses the data, then continues with the patch
//!   `{"echoed": true}`; any other hook continues without looking at the
//!   data;
//! - `echo` returns its input; `parse` returns its JSON input re-encoded;
//! - `handle_request` serves the `echo` endpoint: it answers 200 with a JSON
//!   object of the method, path, query, header names and body it was given
//!   (any other endpoint function: 404).
//!
//! It imports no `tenon` host function, so a bare Extism host runs it too.

use extism_pdk::{FnResult, Json, plugin_fn};
use extism_tenon::HookAnswer;
use serde::Deserialize;
use serde_json::{Value, json};

/// The part of the hook input read before deciding what to do.
#[derive(Deserialize)]
struct Head {
    hook: String,
}

/// The hook input with its data parsed.
#[derive(Deserialize)]
struct WithData {
    #[serde(default)]
    data: Value,
}

/// Parses the data of a hook input.
fn data(input: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<WithData>(input).map(|with| with.data)
}

#[plugin_fn]
pub fn handle_hook(input: Vec<u8>) -> FnResult<Json<HookAnswer>> {
    extism_tenon::init();
    let head: Head = serde_json::from_slice(&input)?;
    let answer = match head.hook.as_str() {
        "echo.parse" => {
            data(&input)?;
            HookAnswer::CONTINUE
        }
        "echo.patch" => {
            data(&input)?;
            HookAnswer::patch(json!({"echoed": true}))
        }
        _ => HookAnswer::CONTINUE,
    };
    Ok(Json(answer))
}

#[plugin_fn]
pub fn echo(input: Vec<u8>) -> FnResult<Vec<u8>> {
    Ok(input)
}

#[plugin_fn]
pub fn parse(Json(value): Json<Value>) -> FnResult<Json<Value>> {
    extism_tenon::init();
    Ok(Json(value))
}

#[plugin_fn]
pub fn handle_request(Json(request): Json<Value>) -> FnResult<Json<Value>> {
    if request["function"] != "echo" {
        return Ok(Json(json!({"status": 404, "body": "no such endpoint"})));
    }
    let names: Vec<&Value> = request["headers"]
        .as_array()
        .map(|pairs| pairs.iter().map(|pair| &pair[0]).collect())
        .unwrap_or_default();
    let seen = json!({
        "method": request["method"],
        "path": request["path"],
        "query": request["query"],
        "headers": names,
        "body": request["body"],
    });
    Ok(Json(json!({
        "status": 200,
        "headers": [["content-type", "application/json"]],
        "body": seen.to_string(),
    })))
}
