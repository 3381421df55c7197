//! The standard hook points of an agent host (the nine hooks of the plugin
//! system completion design), with their data as Rust types.
//!
//! A host may declare other hooks; these are the ones Tenon's generic host
//! (`tenon hooks dispatch`) and the demo know. Each data type decodes the
//! hook's JSON (camelCase members, as the host sends them) and tolerates
//! missing members, so a plugin keeps working when a host sends less:
//!
//! ```
//! use tenon_pdk::hooks::{self, ToolPostExec};
//! use tenon_pdk::HookData;
//!
//! let data = HookData::new(r#"{"toolName": "shell", "result": {"output": "ok", "exitCode": 0}}"#);
//! let call: ToolPostExec = data.parse()?;
//! assert_eq!(call.tool_name, "shell");
//! assert_eq!(call.result.output, "ok");
//! assert_eq!(hooks::spec(hooks::TOOL_POST_EXEC).unwrap().mutable, ["/result/output"]);
//! # Ok::<(), tenon_pdk::Error>(())
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Before a work item is created from an incoming webhook; blockable.
pub const WORK_ITEM_PRE_CREATE: &str = "work_item.pre_create";
/// After a work item is created; observation only.
pub const WORK_ITEM_POST_CREATE: &str = "work_item.post_create";
/// Before the prompt is assembled; may change the system prompt and the user
/// message.
pub const RUN_PRE_PROMPT: &str = "run.pre_prompt";
/// Before a model call; may change model, temperature and token limit;
/// blockable.
pub const MODEL_PRE_CALL: &str = "model.pre_call";
/// After a model call; observation only.
pub const MODEL_POST_CALL: &str = "model.post_call";
/// Before a tool runs; may change its input; blockable.
pub const TOOL_PRE_EXEC: &str = "tool.pre_exec";
/// After a tool ran; may change its output.
pub const TOOL_POST_EXEC: &str = "tool.post_exec";
/// Before a response is delivered; may change its content; blockable.
pub const RESPONSE_PRE_DELIVER: &str = "response.pre_deliver";
/// After a response was delivered; observation only.
pub const RESPONSE_POST_DELIVER: &str = "response.post_deliver";

/// What a host lets plugins do with one standard hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookSpec {
    /// The hook's name.
    pub name: &'static str,
    /// The members a patch may change, as JSON pointers (a patch may change
    /// anything below them).
    pub mutable: &'static [&'static str],
    /// Whether a plugin may block it.
    pub can_block: bool,
}

/// The nine standard hooks, in the order an agent run meets them.
pub const STANDARD: [HookSpec; 9] = [
    HookSpec {
        name: WORK_ITEM_PRE_CREATE,
        mutable: &[
            "/workItem/title",
            "/workItem/payload",
            "/workItem/session_key",
        ],
        can_block: true,
    },
    HookSpec {
        name: WORK_ITEM_POST_CREATE,
        mutable: &[],
        can_block: false,
    },
    HookSpec {
        name: RUN_PRE_PROMPT,
        mutable: &["/systemPrompt", "/userMessage"],
        can_block: false,
    },
    HookSpec {
        name: MODEL_PRE_CALL,
        mutable: &["/temperature", "/maxTokens", "/model"],
        can_block: true,
    },
    HookSpec {
        name: MODEL_POST_CALL,
        mutable: &[],
        can_block: false,
    },
    HookSpec {
        name: TOOL_PRE_EXEC,
        mutable: &["/toolInput"],
        can_block: true,
    },
    HookSpec {
        name: TOOL_POST_EXEC,
        mutable: &["/result/output"],
        can_block: false,
    },
    HookSpec {
        name: RESPONSE_PRE_DELIVER,
        mutable: &["/content"],
        can_block: true,
    },
    HookSpec {
        name: RESPONSE_POST_DELIVER,
        mutable: &[],
        can_block: false,
    },
];

/// The standard hook of that name.
pub fn spec(name: &str) -> Option<&'static HookSpec> {
    STANDARD.iter().find(|spec| spec.name == name)
}

/// Data of `work_item.pre_create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkItemPreCreate {
    /// The work item about to be created (`title`, `payload`, `session_key`…).
    pub work_item: Value,
    /// What the integration parsed from the webhook.
    pub parse_result: Value,
    /// The integration's type.
    pub plugin_type: String,
    /// The integration instance.
    pub plugin_instance_id: String,
}

/// Data of `work_item.post_create`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkItemPostCreate {
    /// The created work item (with its `id`).
    pub work_item: Value,
    /// The integration's type.
    pub plugin_type: String,
    /// The integration instance.
    pub plugin_instance_id: String,
    /// What the integration parsed from the webhook.
    pub parse_result: Value,
}

/// Data of `run.pre_prompt`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RunPrePrompt {
    /// The system prompt.
    pub system_prompt: String,
    /// The user's message.
    pub user_message: String,
    /// The agent.
    pub agent: Value,
    /// The work item.
    pub work_item: Value,
    /// The session.
    pub session_context: Value,
}

/// Data of `model.pre_call`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ModelPreCall {
    /// The model to call.
    pub model: String,
    /// Sampling temperature.
    pub temperature: f64,
    /// Token limit of the answer.
    pub max_tokens: u64,
    /// The conversation so far.
    pub messages: Vec<Value>,
    /// The tools offered to the model.
    pub tools: Vec<Value>,
    /// The turn, from 0.
    pub turn: u32,
}

/// Token use and cost of a model call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Cost in US dollars.
    pub cost_usd: f64,
}

/// Data of `model.post_call`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ModelPostCall {
    /// The model's response.
    pub response: Value,
    /// The model called.
    pub model: String,
    /// The turn.
    pub turn: u32,
    /// How long the call took.
    pub duration_ms: u64,
    /// Token use and cost.
    pub usage: Usage,
}

/// Data of `tool.pre_exec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ToolPreExec {
    /// The tool.
    pub tool_name: String,
    /// Its arguments.
    pub tool_input: Map<String, Value>,
    /// The model's id for the call.
    pub tool_call_id: String,
    /// The turn.
    pub turn: u32,
}

/// A tool's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolResult {
    /// The output text (what `tool.post_exec` handlers may change).
    pub output: String,
    /// Whatever else the host reports (exit code, error flag…).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Data of `tool.post_exec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ToolPostExec {
    /// The tool.
    pub tool_name: String,
    /// Its arguments.
    pub tool_input: Map<String, Value>,
    /// Its result.
    pub result: ToolResult,
    /// How long it ran.
    pub duration_ms: u64,
    /// The turn.
    pub turn: u32,
}

/// Data of `response.pre_deliver`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResponsePreDeliver {
    /// The text about to be delivered.
    pub content: String,
    /// The integration's type.
    pub plugin_type: String,
    /// The integration instance.
    pub plugin_instance_id: String,
    /// The work item answered.
    pub work_item_id: String,
    /// `streaming` or `final`.
    pub response_mode: String,
    /// Whether the run stopped at a limit.
    pub hit_limit: bool,
}

/// Data of `response.post_deliver`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResponsePostDeliver {
    /// The text delivered.
    pub content: String,
    /// What the integration reported about the delivery.
    pub result: Value,
    /// The integration's type.
    pub plugin_type: String,
    /// The integration instance.
    pub plugin_instance_id: String,
    /// The work item answered.
    pub work_item_id: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::HookData;

    #[test]
    fn every_standard_hook_is_listed_once() {
        let names: Vec<_> = STANDARD.iter().map(|s| s.name).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 9);
        assert!(spec(RESPONSE_PRE_DELIVER).unwrap().can_block);
        assert!(!spec(TOOL_POST_EXEC).unwrap().can_block);
        assert!(spec("no.such_hook").is_none());
        for spec in STANDARD {
            for pointer in spec.mutable {
                assert!(crate::json::at(pointer, 1).is_ok(), "{pointer}");
            }
        }
    }

    #[test]
    fn data_types_read_camel_case_and_tolerate_missing_members() {
        let data = HookData::new(
            json!({
                "content": "hello",
                "workItemId": "wi-1",
                "responseMode": "final",
                "hitLimit": true,
                "extra": 1
            })
            .to_string(),
        );
        let response: ResponsePreDeliver = data.parse().unwrap();
        assert_eq!(response.work_item_id, "wi-1");
        assert!(response.hit_limit);
        assert_eq!(response.plugin_type, "");

        let data = HookData::new(
            json!({"usage": {"promptTokens": 3, "costUsd": 0.5}, "durationMs": 9}).to_string(),
        );
        let call: ModelPostCall = data.parse().unwrap();
        assert_eq!(call.usage.prompt_tokens, 3);
        assert_eq!(call.duration_ms, 9);

        let result = ToolResult {
            output: "x".into(),
            extra: Map::from_iter([("exitCode".to_owned(), json!(0))]),
        };
        assert_eq!(
            serde_json::to_value(&result).unwrap(),
            json!({"output": "x", "exitCode": 0})
        );
    }
}
