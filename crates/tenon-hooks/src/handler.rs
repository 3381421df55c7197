//! The handler side: [`HookHandler`], what it receives ([`HookCall`]) and what
//! it returns ([`HookAction`] through a [`HandlerFuture`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{HandlerError, HandlerId, HookContext};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a handler produces: an action or an error.
pub type HandlerResult = Result<HookAction, HandlerError>;

/// What a handler tells the dispatcher to do.
///
/// Serializes as `{"action": "continue", "patch": {…}}` or
/// `{"action": "block", "reason": "…"}` (both optional members may be absent),
/// the shape a runtime can ask a sandboxed plugin to answer in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum HookAction {
    /// Go on, optionally changing the data.
    Continue {
        /// An RFC 7396 JSON merge patch of the data. It may change only the
        /// spec's mutable pointers; otherwise it is rejected as a whole.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        patch: Option<Value>,
    },
    /// Stop the chain (only where the spec allows it).
    Block {
        /// Why, for the host and the operator.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

impl HookAction {
    /// Go on, changing nothing.
    pub const CONTINUE: Self = Self::Continue { patch: None };

    /// Go on after applying `patch` (an RFC 7396 JSON merge patch).
    pub fn patch(patch: Value) -> Self {
        Self::Continue { patch: Some(patch) }
    }

    /// Stop the chain, saying why.
    pub fn block(reason: impl Into<String>) -> Self {
        Self::Block {
            reason: Some(reason.into()),
        }
    }
}

/// One call of a handler: which hook, on whose behalf, with what data.
///
/// The data is borrowed: a handler that needs it after its future completes
/// clones what it needs.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct HookCall<'a> {
    /// The hook being dispatched.
    pub hook: &'a str,
    /// The plugin that registered the handler.
    pub plugin: &'a str,
    /// The registration being called.
    pub handler: HandlerId,
    /// The dispatch's context (execution id, tenant, shared state, …).
    pub context: &'a HookContext,
    /// The data as earlier handlers left it.
    pub data: &'a Value,
    /// 1 for the first attempt, 2 for the first retry, …
    pub attempt: u32,
    /// How long this attempt may take from when it is called: the
    /// handler's timeout, cut to what is left of the chain budget. The
    /// dispatcher stops waiting then; a handler that runs work elsewhere
    /// (another thread, a sandbox) passes it on so that the work stops too.
    /// `None` outside a dispatcher.
    pub time_limit: Option<Duration>,
}

impl<'a> HookCall<'a> {
    /// A call as the dispatcher makes it (first attempt); for testing handlers
    /// without a dispatcher.
    pub fn new(hook: &'a str, plugin: &'a str, context: &'a HookContext, data: &'a Value) -> Self {
        Self {
            hook,
            plugin,
            handler: HandlerId(0),
            context,
            data,
            attempt: 1,
            time_limit: None,
        }
    }

    /// The same call with another attempt number.
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// The same call with `limit` as its [`HookCall::time_limit`].
    pub fn with_time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    pub(crate) fn with_handler(mut self, handler: HandlerId) -> Self {
        self.handler = handler;
        self
    }
}

/// The future a handler returns: either an already known result (no
/// allocation, and the dispatcher arms no timer for it) or a boxed future.
#[must_use = "a handler future does nothing unless awaited"]
pub struct HandlerFuture<'a> {
    inner: Inner<'a>,
}

enum Inner<'a> {
    /// `Ok(HookAction::CONTINUE)`, kept as a bare tag: the dispatcher's
    /// fastest path (nothing to move, nothing to drop).
    Continue,
    /// Any other known result, boxed so the future stays small (a patch or a
    /// block allocates anyway); `None` once taken.
    Ready(Option<Box<HandlerResult>>),
    Pending(BoxFuture<'a, HandlerResult>),
}

impl<'a> HandlerFuture<'a> {
    /// A future already resolved to `Ok(HookAction::CONTINUE)`.
    pub const CONTINUE: Self = Self {
        inner: Inner::Continue,
    };

    /// A result known now: the fast path for handlers that do not await.
    #[inline]
    pub fn ready(result: HandlerResult) -> Self {
        match result {
            Ok(HookAction::Continue { patch: None }) => Self::CONTINUE,
            result => Self {
                inner: Inner::Ready(Some(Box::new(result))),
            },
        }
    }

    /// Boxes `future`.
    pub fn new(future: impl Future<Output = HandlerResult> + Send + 'a) -> Self {
        Self {
            inner: Inner::Pending(Box::pin(future)),
        }
    }

    /// Wraps an already boxed future.
    pub fn boxed(future: BoxFuture<'a, HandlerResult>) -> Self {
        Self {
            inner: Inner::Pending(future),
        }
    }

    /// Whether this is a plain `Ok(HookAction::CONTINUE)` known now.
    #[inline]
    pub(crate) fn is_continue(&self) -> bool {
        matches!(self.inner, Inner::Continue)
    }

    /// Takes the result if it was known when the future was made.
    pub(crate) fn take_ready(&mut self) -> Option<HandlerResult> {
        match &mut self.inner {
            Inner::Continue => Some(Ok(HookAction::CONTINUE)),
            Inner::Ready(result) => result.take().map(|r| *r),
            Inner::Pending(_) => None,
        }
    }
}

impl Future for HandlerFuture<'_> {
    type Output = HandlerResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<HandlerResult> {
        match &mut self.inner {
            Inner::Continue => {
                self.inner = Inner::Ready(None);
                Poll::Ready(Ok(HookAction::CONTINUE))
            }
            Inner::Ready(result) => Poll::Ready(result.take().map_or_else(
                || {
                    Err(HandlerError::new(
                        "handler future polled after it completed",
                    ))
                },
                |result| *result,
            )),
            Inner::Pending(future) => future.as_mut().poll(cx),
        }
    }
}

impl From<HandlerResult> for HandlerFuture<'_> {
    fn from(result: HandlerResult) -> Self {
        Self::ready(result)
    }
}

impl fmt::Debug for HandlerFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.inner {
            Inner::Continue | Inner::Ready(_) => "HandlerFuture::Ready",
            Inner::Pending(_) => "HandlerFuture::Pending",
        })
    }
}

/// A hook handler: a plugin's code behind one registration.
///
/// Implement it directly for full control (borrow the data, answer
/// synchronously with [`HandlerFuture::ready`]), or build one from a closure
/// with [`handler_fn`] (synchronous) or [`async_handler_fn`] (asynchronous).
///
/// A handler must not block its thread for long: timeouts can only interrupt
/// it where it awaits. A panic inside a handler is caught and recorded as an
/// error of that handler.
///
/// ```
/// use tenon_hooks::{HandlerFuture, HookAction, HookCall, HookHandler};
/// use serde_json::json;
///
/// struct Redact;
///
/// impl HookHandler for Redact {
///     fn call<'a>(&'a self, call: HookCall<'a>) -> HandlerFuture<'a> {
///         let output = call.data["result"]["output"].as_str().unwrap_or_default();
///         if output.contains("secret") {
///             HandlerFuture::ready(Ok(HookAction::patch(json!({"result": {"output": "[redacted]"}}))))
///         } else {
///             HandlerFuture::ready(Ok(HookAction::CONTINUE))
///         }
///     }
/// }
/// ```
pub trait HookHandler: Send + Sync + 'static {
    /// Handles one call.
    fn call<'a>(&'a self, call: HookCall<'a>) -> HandlerFuture<'a>;
}

/// A synchronous handler from a closure (see [`handler_fn`]).
#[derive(Clone)]
pub struct FnHandler<F> {
    f: F,
}

/// A handler from a synchronous closure: the cheapest kind (no allocation, no
/// timer).
///
/// ```
/// use tenon_hooks::{handler_fn, HookAction};
///
/// let handler = handler_fn(|call| {
///     call.context.state().insert("seen", call.data.clone());
///     Ok(HookAction::CONTINUE)
/// });
/// # let _ = handler;
/// ```
pub fn handler_fn<F>(f: F) -> Arc<FnHandler<F>>
where
    F: Fn(HookCall<'_>) -> HandlerResult + Send + Sync + 'static,
{
    Arc::new(FnHandler { f })
}

impl<F> HookHandler for FnHandler<F>
where
    F: Fn(HookCall<'_>) -> HandlerResult + Send + Sync + 'static,
{
    #[inline]
    fn call<'a>(&'a self, call: HookCall<'a>) -> HandlerFuture<'a> {
        HandlerFuture::ready((self.f)(call))
    }
}

/// An owned copy of a [`HookCall`], for closures that return `'static` futures.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OwnedHookCall {
    /// The hook being dispatched.
    pub hook: String,
    /// The plugin that registered the handler.
    pub plugin: String,
    /// The registration being called.
    pub handler: HandlerId,
    /// The dispatch's context (a clone: it shares the state map).
    pub context: HookContext,
    /// A copy of the data as earlier handlers left it.
    pub data: Value,
    /// 1 for the first attempt, 2 for the first retry, …
    pub attempt: u32,
    /// How long this attempt may take from when it is called: the
    /// handler's timeout, cut to what is left of the chain budget. The
    /// dispatcher stops waiting then; a handler that runs work elsewhere
    /// (another thread, a sandbox) passes it on so that the work stops too.
    /// `None` outside a dispatcher.
    pub time_limit: Option<Duration>,
}

impl From<HookCall<'_>> for OwnedHookCall {
    fn from(call: HookCall<'_>) -> Self {
        Self {
            hook: call.hook.to_owned(),
            plugin: call.plugin.to_owned(),
            handler: call.handler,
            context: call.context.clone(),
            data: call.data.clone(),
            attempt: call.attempt,
            time_limit: call.time_limit,
        }
    }
}

/// An asynchronous handler from a closure (see [`async_handler_fn`]).
#[derive(Clone)]
pub struct AsyncFnHandler<F> {
    f: F,
}

/// A handler from a closure returning a future. The closure gets an
/// [`OwnedHookCall`] (the data is copied for it); implement [`HookHandler`]
/// directly to borrow the data instead.
///
/// ```
/// use std::time::Duration;
/// use tenon_hooks::{async_handler_fn, HookAction};
///
/// let handler = async_handler_fn(|call| async move {
///     tokio::time::sleep(Duration::from_millis(5)).await;
///     Ok(HookAction::block(format!("{} said no", call.plugin)))
/// });
/// # let _ = handler;
/// ```
pub fn async_handler_fn<F, Fut>(f: F) -> Arc<AsyncFnHandler<F>>
where
    F: Fn(OwnedHookCall) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    Arc::new(AsyncFnHandler { f })
}

impl<F, Fut> HookHandler for AsyncFnHandler<F>
where
    F: Fn(OwnedHookCall) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn call<'a>(&'a self, call: HookCall<'a>) -> HandlerFuture<'a> {
        HandlerFuture::new((self.f)(call.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_have_a_json_shape() {
        let cases = [
            (HookAction::CONTINUE, json!({"action": "continue"})),
            (
                HookAction::patch(json!({"a": 1})),
                json!({"action": "continue", "patch": {"a": 1}}),
            ),
            (
                HookAction::Block { reason: None },
                json!({"action": "block"}),
            ),
            (
                HookAction::block("no"),
                json!({"action": "block", "reason": "no"}),
            ),
        ];
        for (action, value) in cases {
            assert_eq!(serde_json::to_value(&action).ok(), Some(value.clone()));
            assert_eq!(
                serde_json::from_value::<HookAction>(value).ok(),
                Some(action)
            );
        }
        assert!(serde_json::from_value::<HookAction>(json!({"action": "stop"})).is_err());
    }
}
