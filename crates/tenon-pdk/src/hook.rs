//! What a hook handler receives ([`HookContext`], [`HookData`]) and returns
//! ([`HookAction`]).

use serde::Serialize;
use serde::de::{Deserialize, DeserializeOwned};
use serde_json::Value;

use crate::{Error, json};

/// Where a hook dispatch comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookContext {
    /// Unique per dispatch; the same for every handler of one dispatch.
    pub execution_id: String,
    /// The tenant the dispatch runs for.
    pub tenant: String,
    /// The end user, when the host knows one.
    pub user_id: Option<String>,
    /// The session, when the host knows one.
    pub session_id: Option<String>,
    /// When the dispatch started, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// State shared by the handlers of this dispatch, a JSON object as text
    /// (read it with [`HookContext::state`]).
    pub state: String,
}

impl HookContext {
    /// The dispatch's shared state decoded as `T` (an empty state reads as
    /// an empty object).
    pub fn state<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let text = if self.state.trim().is_empty() {
            "{}"
        } else {
            &self.state
        };
        serde_json::from_str(text).map_err(|e| {
            Error::invalid_data(format!("the dispatch state is not the expected shape: {e}"))
        })
    }
}

/// A hook's data as it stands when the handler runs: a JSON document, decoded
/// on demand.
///
/// Decode it whole into a type of your own (`data.parse::<MyData>()`, or one
/// of the [`hooks`](crate::hooks) types), read one member
/// (`data.get::<String>("/result/output")`), or take the raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookData {
    json: String,
}

impl HookData {
    /// Wraps JSON text (the host guarantees it is valid JSON).
    pub fn new(json: impl Into<String>) -> Self {
        Self { json: json.into() }
    }

    /// Decodes the whole document as `T`. Borrowing types work too
    /// (`&'a str`, `Cow<'a, str>` fields) and avoid copies.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, Error> {
        serde_json::from_str(&self.json).map_err(|e| {
            Error::invalid_data(format!(
                "the hook data does not have the expected shape: {e}"
            ))
        })
    }

    /// The whole document as a [`Value`].
    pub fn value(&self) -> Result<Value, Error> {
        self.parse()
    }

    /// The member at a JSON pointer (`/result/output`) decoded as `T`, or
    /// `None` when there is no such member.
    pub fn get<T: DeserializeOwned>(&self, pointer: &str) -> Result<Option<T>, Error> {
        let mut value = self.value()?;
        let Some(member) = value.pointer_mut(pointer) else {
            return Ok(None);
        };
        serde_json::from_value(member.take())
            .map(Some)
            .map_err(|e| {
                Error::invalid_data(format!(
                    "`{pointer}` in the hook data does not have the expected shape: {e}"
                ))
            })
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.json
    }

    /// The JSON text, owned.
    pub fn into_string(self) -> String {
        self.json
    }
}

/// What a hook handler decides.
#[derive(Debug, Clone, PartialEq)]
pub enum HookAction {
    /// Let the chain go on, optionally changing the data with a JSON merge
    /// patch (RFC 7396). The host rejects a patch that touches a member the
    /// hook does not let plugins change.
    Continue {
        /// The merge patch, an object.
        patch: Option<Value>,
    },
    /// Stop the chain. Honoured only on hooks the host declares blockable;
    /// elsewhere the host records it and goes on.
    Block {
        /// Why, for the user and the operator.
        reason: Option<String>,
    },
}

impl Default for HookAction {
    fn default() -> Self {
        Self::CONTINUE
    }
}

impl HookAction {
    /// Go on without changing anything.
    pub const CONTINUE: Self = Self::Continue { patch: None };

    /// Go on, changing the data with a merge patch:
    /// `HookAction::patch(json!({"result": {"output": cleaned}}))`.
    pub fn patch(patch: Value) -> Self {
        Self::Continue { patch: Some(patch) }
    }

    /// Go on, merging `value`'s serialization into the data. `value` must
    /// serialize to a JSON object: typically a struct holding only the
    /// members to change (skip the others with
    /// `#[serde(skip_serializing_if = "Option::is_none")]`).
    pub fn patch_from<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        let patch = serde_json::to_value(value)
            .map_err(|e| Error::internal(format!("serializing the patch: {e}")))?;
        if !patch.is_object() {
            return Err(Error::new(
                "invalid-patch",
                format!("a patch must be a JSON object, not {patch}"),
            ));
        }
        Ok(Self::patch(patch))
    }

    /// Go on, setting the member at a JSON pointer:
    /// `HookAction::set("/result/output", cleaned)`.
    pub fn set(pointer: &str, value: impl Into<Value>) -> Result<Self, Error> {
        json::at(pointer, value).map(Self::patch)
    }

    /// Go on with the smallest patch that turns `before` into `after`, or
    /// with no patch when they are equal. Convenient after editing a decoded
    /// copy of the data.
    pub fn diff(before: &Value, after: &Value) -> Self {
        Self::Continue {
            patch: json::diff(before, after),
        }
    }

    /// Stop the chain, saying why.
    pub fn block(reason: impl Into<String>) -> Self {
        Self::Block {
            reason: Some(reason.into()),
        }
    }

    /// Stop the chain without a reason.
    pub fn block_silently() -> Self {
        Self::Block { reason: None }
    }

    /// Whether this stops the chain.
    pub fn is_block(&self) -> bool {
        matches!(self, Self::Block { .. })
    }

    /// The patch, if this continues with one.
    pub fn patch_value(&self) -> Option<&Value> {
        match self {
            Self::Continue { patch } => patch.as_ref(),
            Self::Block { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Deserialize)]
    struct Response<'a> {
        #[serde(borrow)]
        content: Cow<'a, str>,
    }

    #[test]
    fn data_parses_whole_or_by_pointer() {
        let data = HookData::new(r#"{"content":"hi \"you\"","result":{"output":"x","code":3}}"#);
        let response: Response<'_> = data.parse().unwrap();
        assert_eq!(response.content, "hi \"you\"");
        assert_eq!(
            data.get::<String>("/result/output").unwrap().as_deref(),
            Some("x")
        );
        assert_eq!(data.get::<u8>("/result/code").unwrap(), Some(3));
        assert_eq!(data.get::<u8>("/result/missing").unwrap(), None);
        let error = data.get::<u8>("/content").unwrap_err();
        assert_eq!(error.code(), "invalid-data");
        assert!(error.message().contains("/content"), "{error}");
        let error = data.parse::<Vec<u8>>().unwrap_err();
        assert!(error.message().contains("expected a sequence"), "{error}");
        assert!(
            !error.message().contains("Vec<"),
            "no Rust type name: {error}"
        );
    }

    #[test]
    fn actions_build_patches() {
        assert_eq!(HookAction::default(), HookAction::CONTINUE);
        assert_eq!(
            HookAction::set("/result/output", "clean")
                .unwrap()
                .patch_value(),
            Some(&json!({"result": {"output": "clean"}}))
        );
        #[derive(Serialize)]
        struct Change<'a> {
            content: &'a str,
        }
        assert_eq!(
            HookAction::patch_from(&Change { content: "x" }).unwrap(),
            HookAction::patch(json!({"content": "x"}))
        );
        assert_eq!(
            HookAction::patch_from("not an object").unwrap_err().code(),
            "invalid-patch"
        );
        assert_eq!(
            HookAction::diff(&json!({"a": 1}), &json!({"a": 1})),
            HookAction::CONTINUE
        );
        let block = HookAction::block("contains a blocked word");
        assert!(block.is_block());
        assert_eq!(block.patch_value(), None);
        assert!(HookAction::block_silently().is_block());
    }

    #[test]
    fn context_state_defaults_to_an_empty_object() {
        let mut context = HookContext::default();
        let state: serde_json::Map<String, Value> = context.state().unwrap();
        assert!(state.is_empty());
        context.state = r#"{"seen": 2}"#.into();
        assert_eq!(context.state::<Value>().unwrap(), json!({"seen": 2}));
        context.state = "[".into();
        assert_eq!(context.state::<Value>().unwrap_err().code(), "invalid-data");
    }
}
