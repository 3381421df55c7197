//! {{title}}: a Tenon plugin built with the Extism PDK.
//!
//! Tenon calls the export `handle_hook` with the JSON
//! `{"hook": name, "context": {...}, "data": {...}}` and reads back
//! `{"action": "continue" | "block", "patch"?: {...}, "reason"?: "..."}`,
//! where `patch` is a JSON merge patch of the data. Other exports are
//! functions the host calls by name (`greet` here). Config values are read
//! with `extism_pdk::config::get`.

use extism_pdk::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What Tenon sends to `handle_hook`.
#[derive(Deserialize)]
struct HookInput {
    hook: String,
    #[serde(default)]
    data: Value,
}

/// What `handle_hook` answers.
#[derive(Serialize)]
struct HookOutput {
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[plugin_fn]
pub fn handle_hook(Json(input): Json<HookInput>) -> FnResult<Json<HookOutput>> {
    if input.hook != "response.pre_deliver" {
        return Err(WithReturnCode::new(
            Error::msg(format!("this plugin does not handle the hook `{}`", input.hook)),
            1,
        ));
    }
    let content = input.data["content"].as_str().unwrap_or_default();
    if content.trim().is_empty() {
        return Ok(Json(HookOutput {
            action: "block",
            patch: None,
            reason: Some("the response is empty".to_owned()),
        }));
    }
    let signature =
        config::get("signature")?.unwrap_or_else(|| "-- sent by {{name}}".to_owned());
    Ok(Json(HookOutput {
        action: "continue",
        patch: Some(json!({ "content": format!("{content}\n\n{signature}") })),
        reason: None,
    }))
}

#[plugin_fn]
pub fn greet(name: String) -> FnResult<String> {
    Ok(format!("Hello, {name}!"))
}
