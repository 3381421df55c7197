//! The smallest useful plugin, for benchmarks and for testing hosts.
//!
//! - hook `echo.parse`: parses the data as JSON, then continues;
//! - hook `echo.patch`: parses the data, then continues with the patch
//!   `{"echoed": true}`;
//! - any other hook (`echo.noop`, or any name a benchmark uses): continues at
//!   once without reading the data;
//! - `call("echo", x)` returns `x`; `call("parse", json)` returns the JSON
//!   re-encoded.
//!
//! For testing hosts, the config key `replies` scripts answers per hook name,
//! taking precedence over the above: `{"tool.post_exec": {"patch": {...}}}`,
//! `{"x": {"block": "why"}}` (or `{"block": null}`), `{"x": {"error": "text"}}`.

use std::collections::BTreeMap;

use serde::Deserialize;
use tenon_pdk::serde_json::{Value, json};
use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, Plugin};

/// A scripted answer to one hook.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum Reply {
    /// Continue with this merge patch.
    Patch(Value),
    /// Block, with this reason (or none).
    Block(Option<String>),
    /// Fail with the error `scripted` and this message.
    Error(String),
}

/// The scripted replies, if any.
pub struct Echo {
    replies: BTreeMap<String, Reply>,
}

impl Plugin for Echo {
    fn activate(config: Config) -> Result<Self, Error> {
        Ok(Self {
            replies: config.get_or("replies", BTreeMap::new())?,
        })
    }

    fn handle_hook(
        &mut self,
        hook: &str,
        _context: &HookContext,
        data: HookData,
    ) -> Result<HookAction, Error> {
        if let Some(reply) = self.replies.get(hook) {
            return match reply {
                Reply::Patch(patch) => Ok(HookAction::patch(patch.clone())),
                Reply::Block(reason) => Ok(HookAction::Block {
                    reason: reason.clone(),
                }),
                Reply::Error(message) => Err(Error::new("scripted", message.clone())),
            };
        }
        match hook {
            "echo.parse" => {
                data.value()?;
                Ok(HookAction::CONTINUE)
            }
            "echo.patch" => {
                data.value()?;
                Ok(HookAction::patch(json!({"echoed": true})))
            }
            _ => Ok(HookAction::CONTINUE),
        }
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            "echo" => Ok(input.to_vec()),
            "parse" => {
                let value: Value = tenon_pdk::json::decode(input)?;
                tenon_pdk::json::encode(&value)
            }
            other => Err(Error::unknown_function(other)),
        }
    }
}

tenon_pdk::export!(Echo);
