//! Tenon's host API and hook protocol for Rust plugins written with
//! [`extism_pdk`] (Tenon's Extism runtime, `runtime.kind = "extism"`).
//!
//! - [`host`]: the `tenon` host functions (KV, config and secrets, events,
//!   log, HTTP, the host's own services). Each answers `Ok` or a
//!   [`HostError`] the plugin can handle.
//! - [`HookInput`] / [`HookAnswer`]: what `handle_hook` receives and answers.
//! - [`init`]: call it first in every exported function; it makes a panic's
//!   message reach the host (as the call's error) instead of a bare trap.
//!
//! ```ignore
//! use extism_pdk::*;
//! use extism_tenon::{HookAnswer, HookInput};
//!
//! #[plugin_fn]
//! pub fn handle_hook(Json(input): Json<HookInput>) -> FnResult<Json<HookAnswer>> {
//!     extism_tenon::init();
//!     Ok(Json(HookAnswer::Continue { patch: None }))
//! }
//! ```
//!
//! Plugins in other languages call the same functions; `docs/extism.md`
//! describes their ABI.

use serde::{Deserialize, Serialize};

pub mod host;

pub use host::HostError;

/// What `handle_hook` receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookInput {
    /// The hook's name, such as `response.pre_deliver`.
    pub hook: String,
    /// Where the dispatch comes from.
    pub context: HookContext,
    /// The hook's data as it stands (earlier handlers' patches applied).
    #[serde(default)]
    pub data: serde_json::Value,
}

/// The context of one hook dispatch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HookContext {
    /// Unique per dispatch.
    pub execution_id: String,
    /// The tenant the dispatch runs for.
    pub tenant: String,
    /// The end user, when the host knows one.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The session, when the host knows one.
    #[serde(default)]
    pub session_id: Option<String>,
    /// When the dispatch started, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub timestamp_ms: u64,
    /// State shared by the handlers of the dispatch (a JSON object).
    #[serde(default)]
    pub state: serde_json::Value,
}

/// What `handle_hook` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum HookAnswer {
    /// Go on, optionally changing the data with a JSON merge patch.
    Continue {
        /// The patch (RFC 7396).
        #[serde(skip_serializing_if = "Option::is_none")]
        patch: Option<serde_json::Value>,
    },
    /// Stop the chain (where the hook allows it).
    Block {
        /// Why.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl HookAnswer {
    /// Go on, unchanged.
    pub const CONTINUE: Self = Self::Continue { patch: None };

    /// Go on with `patch`.
    pub fn patch(patch: serde_json::Value) -> Self {
        Self::Continue { patch: Some(patch) }
    }

    /// Stop the chain because of `reason`.
    pub fn block(reason: impl Into<String>) -> Self {
        Self::Block {
            reason: Some(reason.into()),
        }
    }
}

/// A plugin error with a machine-readable code: Tenon reports it as
/// `SandboxError::Plugin { code, message }`.
pub fn error(code: &str, message: impl std::fmt::Display) -> extism_pdk::Error {
    let text = serde_json::json!({"code": code, "message": message.to_string()});
    extism_pdk::Error::msg(text.to_string())
}

/// The signature of a function exported with [`export!`]: bytes in, bytes
/// out.
pub type Export = fn(Vec<u8>) -> Result<Vec<u8>, extism_pdk::Error>;

/// Exports `function` under `name`, which may be any string (`"host-loop"`
/// included, which `#[plugin_fn]` cannot name):
/// `extism_tenon::export!("host-loop" => host_loop);`.
#[macro_export]
macro_rules! export {
    ($name:literal => $function:path) => {
        const _: () = {
            #[allow(unsafe_code)]
            #[unsafe(export_name = $name)]
            extern "C" fn exported() -> i32 {
                $crate::run($function)
            }
        };
    };
}

/// Runs an exported function: [`init`], the input, then the output or the
/// error. Returns the status Extism expects (0 on success).
pub fn run(function: Export) -> i32 {
    init();
    let input = extism_pdk::input_bytes();
    let result = function(input).and_then(extism_pdk::output);
    match result {
        Ok(()) => 0,
        Err(error) => {
            if let Ok(memory) = extism_pdk::Memory::from_bytes(format!("{error:?}")) {
                set_error(&memory);
            }
            1
        }
    }
}

/// Makes a panic's message the call's error (instead of a bare trap): call
/// it first in every exported function. Cheap after the first call.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = info.to_string();
            if let Ok(memory) = extism_pdk::Memory::from_bytes(&message) {
                set_error(&memory);
            }
        }));
    });
}

#[allow(unsafe_code)]
fn set_error(memory: &extism_pdk::Memory) {
    // SAFETY: `error_set` takes the offset of a block the plugin owns, which
    // `memory` is; the host copies the message out before the block is
    // reused.
    unsafe { extism_pdk::extism::error_set(memory.offset()) }
}
