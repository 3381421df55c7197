//! The two error types a plugin meets: [`Error`], which it returns to the
//! host, and [`HostError`], which the host returns to it.

use std::fmt;

/// An error a plugin returns to the host: a short machine-readable code and a
/// message for the operator.
///
/// The host records it (the hook receipt, the plugin's last error) and applies
/// the hook's failure policy; it never takes the host down. Codes are
/// lowercase words joined by `-`, such as `invalid-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: String,
    message: String,
}

impl Error {
    /// An error with any code. Prefer the named constructors for the common
    /// cases, so that operators see the same codes from every plugin.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    /// `invalid-config`: the plugin's configuration is missing a key or has a
    /// value of the wrong type or range.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new("invalid-config", message)
    }

    /// `invalid-input`: the input of a [`call`](crate::Plugin::call) is
    /// malformed.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new("invalid-input", message)
    }

    /// `invalid-data`: a hook's data does not have the shape the plugin needs.
    pub fn invalid_data(message: impl Into<String>) -> Self {
        Self::new("invalid-data", message)
    }

    /// `unsupported-hook`: the plugin was called for a hook it does not
    /// handle (its manifest and its code disagree).
    pub fn unsupported_hook(hook: &str) -> Self {
        Self::new(
            "unsupported-hook",
            format!("this plugin does not handle the hook `{hook}`"),
        )
    }

    /// `unknown-function`: [`call`](crate::Plugin::call) named a function the
    /// plugin does not have.
    pub fn unknown_function(function: &str) -> Self {
        Self::new(
            "unknown-function",
            format!("this plugin has no function `{function}`"),
        )
    }

    /// `not-activated`: the host called the plugin before `activate` or after
    /// `deactivate`.
    pub fn not_activated() -> Self {
        Self::new(
            "not-activated",
            "the plugin is not active: the host must call `activate` first",
        )
    }

    /// `internal`: anything else that went wrong inside the plugin.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("internal", message)
    }

    /// The machine-readable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The message for the operator.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<HostError> for Error {
    /// A host refusal passed on to the host: the code says which kind
    /// (`permission-denied`, `quota-exceeded`…).
    fn from(error: HostError) -> Self {
        Self::new(error.code(), error.detail())
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Self::new("invalid-json", error.to_string())
    }
}

/// Why the host refused or failed a plugin's request (a host API call).
///
/// A refusal is a value, never a trap: the plugin may recover (skip the
/// notification, fall back to a default) or pass it on with `?`, which turns
/// it into an [`Error`] with the same code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The plugin was not granted what the request needs; the text says which
    /// permission.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A quota or size limit would be exceeded.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The call's deadline passed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The request is malformed (a bad URL, an invalid key).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The host could not serve it (network or storage failure), or the code
    /// is not running inside a Tenon host at all (a native build).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The host answered, but the value could not be decoded as the type the
    /// plugin asked for.
    #[error("could not decode the host's answer: {0}")]
    Decode(String),
}

impl HostError {
    /// The kind as a code: `permission-denied`, `quota-exceeded`, `timeout`,
    /// `invalid-input`, `unavailable` or `decode`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PermissionDenied(_) => "permission-denied",
            Self::QuotaExceeded(_) => "quota-exceeded",
            Self::Timeout(_) => "timeout",
            Self::InvalidInput(_) => "invalid-input",
            Self::Unavailable(_) => "unavailable",
            Self::Decode(_) => "decode",
        }
    }

    /// The text the host gave.
    pub fn detail(&self) -> &str {
        match self {
            Self::PermissionDenied(s)
            | Self::QuotaExceeded(s)
            | Self::Timeout(s)
            | Self::InvalidInput(s)
            | Self::Unavailable(s)
            | Self::Decode(s) => s,
        }
    }

    /// Whether the host refused for lack of permission.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::PermissionDenied(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_errors_keep_their_kind_as_plugin_errors() {
        let check = |host: HostError, code: &str| {
            let error = Error::from(host.clone());
            assert_eq!(error.code(), code);
            assert_eq!(error.message(), host.detail());
        };
        check(
            HostError::PermissionDenied("network".into()),
            "permission-denied",
        );
        check(HostError::QuotaExceeded("kv".into()), "quota-exceeded");
        check(HostError::Timeout("http".into()), "timeout");
        check(HostError::InvalidInput("url".into()), "invalid-input");
        check(HostError::Unavailable("down".into()), "unavailable");
        check(HostError::Decode("not a number".into()), "decode");
    }

    #[test]
    fn display_shows_code_and_message() {
        assert_eq!(
            Error::unknown_function("frob").to_string(),
            "unknown-function: this plugin has no function `frob`"
        );
        let json: Error = serde_json::from_str::<u8>("x").unwrap_err().into();
        assert_eq!(json.code(), "invalid-json");
    }
}
