//! [`HookSpec`]: an extension point as the host declares it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::HookError;
use crate::patch::MutablePaths;

/// A handler's timeout when neither the handler nor the spec says otherwise.
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_millis(1500);

/// An extension point, declared by the host: its name, which parts of its data
/// a handler may change, whether a handler may block it, and the default
/// per-handler timeout.
///
/// Deserializes from the JSON shape
/// `{"name": "…", "mutable": ["/pointer", …], "can_block": false, "timeout_ms": 1500,
/// "allow_fail_closed": true, "max_priority": 500}`
/// where everything but `name` is optional and unknown fields are refused.
///
/// ```
/// use tenon_hooks::HookSpec;
///
/// let spec: HookSpec = serde_json::from_str(
///     r#"{"name": "tool.pre_exec", "mutable": ["/toolInput"], "can_block": true}"#,
/// ).unwrap();
/// assert_eq!(spec, HookSpec::new("tool.pre_exec").with_mutable(["/toolInput"]).with_blocking(true));
/// assert_eq!(spec.default_timeout.as_millis(), 1500);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSpec {
    /// The hook's name, such as `tool.pre_exec`.
    pub name: String,
    /// JSON pointers (RFC 6901) to the parts of the data a handler may change;
    /// a pointer allows the value at it and everything below it, `""` allows
    /// the whole document, and an empty list makes the hook observe-only.
    #[serde(default)]
    pub mutable: Vec<String>,
    /// Whether a handler's `Block` stops the chain.
    #[serde(default)]
    pub can_block: bool,
    /// The timeout of a handler registered without one (`timeout_ms` in JSON).
    #[serde(
        rename = "timeout_ms",
        with = "duration_ms",
        default = "default_timeout"
    )]
    pub default_timeout: Duration,
    /// Whether a plugin's handler may fail closed here (an error or timeout
    /// stops the operation). When `false`, the engine registers every
    /// plugin's handler fail-open, whatever it asks and is granted.
    #[serde(default = "yes")]
    pub allow_fail_closed: bool,
    /// The highest priority a plugin's handler runs at here, whatever it
    /// asks and is granted; `None`: no cap beyond the grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_priority: Option<i32>,
}

fn yes() -> bool {
    true
}

fn default_timeout() -> Duration {
    DEFAULT_HANDLER_TIMEOUT
}

impl HookSpec {
    /// An observe-only spec: nothing mutable, cannot be blocked, 1500 ms
    /// default timeout.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            mutable: Vec::new(),
            can_block: false,
            default_timeout: DEFAULT_HANDLER_TIMEOUT,
            allow_fail_closed: true,
            max_priority: None,
        }
    }

    /// Sets the mutable pointers.
    pub fn with_mutable<I, S>(mut self, pointers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.mutable = pointers.into_iter().map(Into::into).collect();
        self
    }

    /// Sets whether handlers may block.
    pub fn with_blocking(mut self, can_block: bool) -> Self {
        self.can_block = can_block;
        self
    }

    /// Sets whether plugins' handlers may fail closed.
    pub fn with_fail_closed(mut self, allowed: bool) -> Self {
        self.allow_fail_closed = allowed;
        self
    }

    /// Caps the priority of plugins' handlers.
    pub fn with_max_priority(mut self, max: i32) -> Self {
        self.max_priority = Some(max);
        self
    }

    /// Sets the default handler timeout.
    pub fn with_default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// Checks the spec, reporting every problem at once.
    pub fn validate(&self) -> Result<(), HookError> {
        self.compile().map(drop)
    }

    pub(crate) fn compile(&self) -> Result<MutablePaths, HookError> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push("the name is empty".to_owned());
        } else if self.name.chars().any(char::is_whitespace) {
            problems.push(format!("the name `{}` contains whitespace", self.name));
        }
        if self.default_timeout.is_zero() {
            problems.push("timeout_ms is 0: give handlers at least 1 ms".to_owned());
        }
        let mutable = MutablePaths::compile(&self.mutable).unwrap_or_else(|errors| {
            problems.extend(errors);
            MutablePaths::default()
        });
        if problems.is_empty() {
            Ok(mutable)
        } else {
            Err(HookError::InvalidSpec {
                hook: self.name.clone(),
                problems,
            })
        }
    }
}

/// Serde for a `Duration` as whole milliseconds.
pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Serde for a `Duration` as whole microseconds.
pub(crate) mod duration_us {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_deserialize_from_the_cli_shape() {
        let cases = [
            (r#"{"name": "a"}"#, HookSpec::new("a")),
            (
                r#"{"name": "b", "mutable": ["/x", "/y/z"], "can_block": true, "timeout_ms": 250}"#,
                HookSpec::new("b")
                    .with_mutable(["/x", "/y/z"])
                    .with_blocking(true)
                    .with_default_timeout(Duration::from_millis(250)),
            ),
        ];
        for (json, expected) in cases {
            let spec: HookSpec = serde_json::from_str(json).expect(json);
            assert_eq!(spec, expected);
            let back: HookSpec =
                serde_json::from_value(serde_json::to_value(&spec).expect("serializes"))
                    .expect("round trip");
            assert_eq!(back, expected);
        }
        let err = serde_json::from_str::<HookSpec>(r#"{"name": "a", "mutable_fields": []}"#)
            .expect_err("unknown field");
        assert!(
            err.to_string().contains("unknown field `mutable_fields`"),
            "{err}"
        );
    }

    #[test]
    fn validation_reports_every_problem() {
        let spec = HookSpec::new(" ")
            .with_mutable(["title", "/ok", "/bad~"])
            .with_default_timeout(Duration::ZERO);
        let Err(HookError::InvalidSpec { problems, .. }) = spec.validate() else {
            panic!("expected InvalidSpec");
        };
        assert_eq!(problems.len(), 4, "{problems:?}");
    }
}
