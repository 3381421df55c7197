//! Errors: what the host gets wrong ([`HookError`]) and what a handler reports
//! ([`HandlerError`]).

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// An error of the hook system itself: an undeclared hook, an invalid spec or
/// registration, typed data that does not convert. A handler's own failure is
/// never a `HookError`: it is recorded in that handler's receipt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HookError {
    /// The hook was never declared with [`HookRegistry::declare`](crate::HookRegistry::declare).
    #[error(
        "hook `{hook}` is not declared{}",
        describe_known(suggestions, declared)
    )]
    UndeclaredHook {
        /// The name asked for.
        hook: String,
        /// Declared hooks whose names are close to `hook`, closest first.
        suggestions: Vec<String>,
        /// Every declared hook, sorted.
        declared: Vec<String>,
    },
    /// A spec with this name is already declared.
    #[error(
        "hook `{hook}` is already declared; declare each hook once (at host start-up) and reuse the registry"
    )]
    DuplicateHook {
        /// The hook's name.
        hook: String,
    },
    /// A spec is invalid; every problem is listed.
    #[error("hook spec `{hook}` is invalid: {}", problems.join("; "))]
    InvalidSpec {
        /// The hook's name (possibly empty: that is one of the problems).
        hook: String,
        /// One message per problem.
        problems: Vec<String>,
    },
    /// A handler registration is invalid.
    #[error("cannot register a handler of plugin `{plugin}` for hook `{hook}`: {reason}")]
    InvalidRegistration {
        /// The plugin that asked.
        plugin: String,
        /// The hook it asked for.
        hook: String,
        /// What is wrong and what would be right.
        reason: String,
    },
    /// [`HookDispatcher::emit`](crate::HookDispatcher::emit) was called outside a Tokio runtime.
    #[error(
        "cannot emit hook `{hook}`: no Tokio runtime is running on this thread; call emit from within a runtime (with time enabled)"
    )]
    NoRuntime {
        /// The hook being emitted.
        hook: String,
    },
    /// Typed data could not be turned into JSON.
    #[error("cannot encode the data of hook `{hook}` (type `{type_name}`) as JSON: {message}")]
    Encode {
        /// The hook.
        hook: String,
        /// The Rust type of the data.
        type_name: &'static str,
        /// What serde said.
        message: String,
    },
    /// The final JSON of a typed dispatch could not be turned back into the type.
    #[error(
        "cannot decode the data of hook `{hook}` back into `{type_name}`: {message} (does the type's Serialize round-trip through Deserialize?)"
    )]
    Decode {
        /// The hook.
        hook: String,
        /// The Rust type of the data.
        type_name: &'static str,
        /// What serde said.
        message: String,
    },
}

fn describe_known(suggestions: &[String], declared: &[String]) -> String {
    let mut out = String::new();
    if let Some((first, rest)) = suggestions.split_first() {
        out.push_str("; did you mean `");
        out.push_str(first);
        out.push('`');
        for s in rest {
            out.push_str(" or `");
            out.push_str(s);
            out.push('`');
        }
        out.push('?');
    }
    if declared.is_empty() {
        out.push_str(" (no hooks are declared: the host declares them with HookRegistry::declare)");
    } else {
        const SHOWN: usize = 20;
        out.push_str(" (declared hooks: ");
        out.push_str(
            &declared
                .iter()
                .take(SHOWN)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        );
        if declared.len() > SHOWN {
            out.push_str(&format!(", and {} more", declared.len() - SHOWN));
        }
        out.push(')');
    }
    out
}

/// What kind of failure a handler reports, carried on its receipt
/// ([`HookReceipt::error_kind`](crate::HookReceipt::error_kind)) so that
/// observers (metrics, a crash guard) tell a plugin's own faults from calls
/// that could not be made through no fault of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The handler returned an error of its own (the default).
    #[default]
    Handler,
    /// The handler crashed: a panic, a trap, memory exhausted.
    Trap,
    /// The handler ran out of time (the dispatcher's timeout, or its
    /// runtime's own deadline).
    Timeout,
    /// The handler's code could not be loaded or started.
    Load,
    /// The handler answered with something unusable (malformed output, a
    /// broken protocol, an answer over a size limit).
    InvalidOutput,
    /// The handler could not be called, through no fault of its own: every
    /// instance busy, the plugin not running, an export missing. Never
    /// counted against the plugin's health by Tenon's crash guard.
    Unavailable,
}

impl ErrorKind {
    /// The kind as written in receipts and labels: `handler`, `trap`,
    /// `timeout`, `load`, `invalid_output`, `unavailable`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Handler => "handler",
            Self::Trap => "trap",
            Self::Timeout => "timeout",
            Self::Load => "load",
            Self::InvalidOutput => "invalid_output",
            Self::Unavailable => "unavailable",
        }
    }

    /// Whether the failure is the handler's own doing (everything but
    /// [`Unavailable`](Self::Unavailable)).
    pub const fn is_fault(self) -> bool {
        !matches!(self, Self::Unavailable)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a handler returns when it fails. The dispatcher records the message
/// and the [`ErrorKind`] in the handler's receipt and applies the handler's
/// [`FailPolicy`](crate::FailPolicy).
#[derive(Clone, PartialEq, Eq)]
pub struct HandlerError {
    message: Cow<'static, str>,
    kind: ErrorKind,
}

impl HandlerError {
    /// An error with this message, of kind [`ErrorKind::Handler`].
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
            kind: ErrorKind::Handler,
        }
    }

    /// The same error, of `kind`.
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// An error carrying `error`'s message and those of its sources, joined by `: `.
    pub fn from_error(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::new(message)
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HandlerError")
            .field(&self.kind)
            .field(&self.message)
            .finish()
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HandlerError {}

impl From<String> for HandlerError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&'static str> for HandlerError {
    fn from(message: &'static str) -> Self {
        Self::new(message)
    }
}

impl From<serde_json::Error> for HandlerError {
    fn from(error: serde_json::Error) -> Self {
        Self::new(format!("invalid JSON: {error}"))
    }
}
