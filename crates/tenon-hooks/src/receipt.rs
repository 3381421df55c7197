//! What a dispatch reports: one [`HookReceipt`] per handler, the
//! [`DispatchOutcome`], and the [`ReceiptObserver`]s that receive receipts.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::spec::duration_us;
use crate::{HandlerId, HookContext};

/// How one handler's part of a dispatch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptStatus {
    /// It continued (its patch, if any, was applied).
    Ok,
    /// It blocked the chain (the spec allows blocking).
    Blocked,
    /// It returned an error or panicked on its last attempt.
    Error,
    /// Its last attempt ran out of time (its own timeout or the chain budget).
    Timeout,
    /// It did not run (see [`HookReceipt::skip_reason`]).
    Skipped,
    /// It ran but what it returned was refused: a patch touching read-only
    /// data, data no longer of the host's type, or a block of a hook that
    /// cannot be blocked. Nothing it returned was applied.
    Rejected,
}

impl ReceiptStatus {
    /// The status as written in receipts: `ok`, `blocked`, `error`, `timeout`,
    /// `skipped` or `rejected`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Blocked => "blocked",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Skipped => "skipped",
            Self::Rejected => "rejected",
        }
    }

    /// Whether the handler failed (error, timeout or rejected): the statuses
    /// its [`FailPolicy`](crate::FailPolicy) applies to.
    pub const fn is_failure(self) -> bool {
        matches!(self, Self::Error | Self::Timeout | Self::Rejected)
    }
}

impl fmt::Display for ReceiptStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a handler did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SkipReason {
    /// The chain budget was spent before its turn.
    Budget,
    /// An earlier handler blocked the chain.
    Blocked,
    /// An earlier fail-closed handler failed and stopped the chain.
    Stopped,
}

/// The record of one handler's part in one dispatch. Every handler in the
/// dispatch's snapshot gets exactly one, in dispatch order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookReceipt {
    /// The plugin that registered the handler.
    pub plugin: Arc<str>,
    /// The hook.
    pub hook: Arc<str>,
    /// The registration.
    pub handler: HandlerId,
    /// The dispatch's execution id (from its [`HookContext`]).
    pub execution_id: Uuid,
    /// How it ended.
    pub status: ReceiptStatus,
    /// Attempts made (0 when skipped).
    pub attempts: u32,
    /// Time from its first attempt to its end, backoff included (serialized as
    /// whole microseconds, `duration_us`).
    #[serde(rename = "duration_us", with = "duration_us")]
    pub duration: Duration,
    /// What went wrong, or why it was skipped or rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The kind of failure of an `error` or `timeout` receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<crate::ErrorKind>,
    /// JSON pointers of the values its patch changed, in patch order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_fields: Vec<String>,
    /// Why it was skipped (only for `skipped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<SkipReason>,
}

/// Who blocked a dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedBy {
    /// The blocking plugin.
    pub plugin: Arc<str>,
    /// Its registration.
    pub handler: HandlerId,
    /// The reason it gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Which fail-closed handler stopped a dispatch, and how it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoppedBy {
    /// The failing plugin.
    pub plugin: Arc<str>,
    /// Its registration.
    pub handler: HandlerId,
    /// `error`, `timeout` or `rejected`.
    pub status: ReceiptStatus,
    /// What went wrong.
    pub error: String,
}

/// The result of a dispatch.
///
/// `blocked` and `stopped` are never both set. When either is, `data` is the
/// data as it was when the chain ended (earlier patches applied) and the host
/// decides what to do with it; a host should treat a stopped dispatch as a
/// failure of the operation the hook guards.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchOutcome<T = Value> {
    /// The data after every applied patch.
    pub data: T,
    /// Set when a handler blocked the chain.
    pub blocked: Option<BlockedBy>,
    /// Set when a fail-closed handler failed and stopped the chain.
    pub stopped: Option<StoppedBy>,
    /// One receipt per handler of the snapshot, in dispatch order.
    pub receipts: Vec<HookReceipt>,
    /// Time the whole chain took.
    pub elapsed: Duration,
}

impl<T> DispatchOutcome<T> {
    /// Whether a handler blocked the chain.
    pub fn is_blocked(&self) -> bool {
        self.blocked.is_some()
    }

    /// Whether a fail-closed handler stopped the chain.
    pub fn is_stopped(&self) -> bool {
        self.stopped.is_some()
    }

    /// Whether the chain ran to its end (neither blocked nor stopped).
    pub fn proceeded(&self) -> bool {
        self.blocked.is_none() && self.stopped.is_none()
    }

    /// The same outcome with other data.
    pub fn map_data<U>(self, f: impl FnOnce(T) -> U) -> DispatchOutcome<U> {
        DispatchOutcome {
            data: f(self.data),
            blocked: self.blocked,
            stopped: self.stopped,
            receipts: self.receipts,
            elapsed: self.elapsed,
        }
    }
}

/// Receives the receipts of every dispatch (metrics, the registry's event log,
/// a crash guard).
///
/// Called once per dispatch, on the dispatching task, after the chain ended and
/// before the dispatch returns: keep it cheap and non-blocking (count, or push
/// into a channel and batch elsewhere). A panic in an observer is caught and
/// does not affect the dispatch or other observers.
///
/// Closures `Fn(&HookContext, &[HookReceipt])` are observers.
pub trait ReceiptObserver: Send + Sync + 'static {
    /// The receipts of one dispatch, in dispatch order.
    fn on_receipts(&self, context: &HookContext, receipts: &[HookReceipt]);
}

impl<F> ReceiptObserver for F
where
    F: Fn(&HookContext, &[HookReceipt]) + Send + Sync + 'static,
{
    fn on_receipts(&self, context: &HookContext, receipts: &[HookReceipt]) {
        self(context, receipts);
    }
}

/// Identifies an observer added with [`HookDispatcher::add_observer`](crate::HookDispatcher::add_observer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObserverId(pub(crate) u64);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn receipts_serialize_for_event_logs() {
        let receipt = HookReceipt {
            plugin: Arc::from("acme.guard"),
            hook: Arc::from("tool.pre_exec"),
            handler: HandlerId(3),
            execution_id: Uuid::nil(),
            status: ReceiptStatus::Rejected,
            attempts: 1,
            duration: Duration::from_micros(1500),
            error: Some("patch changes read-only field /toolName".into()),
            error_kind: None,
            changed_fields: vec![],
            skip_reason: None,
        };
        let value = serde_json::to_value(&receipt).expect("serializes");
        assert_eq!(
            value,
            json!({
                "plugin": "acme.guard",
                "hook": "tool.pre_exec",
                "handler": 3,
                "execution_id": "00000000-0000-0000-0000-000000000000",
                "status": "rejected",
                "attempts": 1,
                "duration_us": 1500,
                "error": "patch changes read-only field /toolName"
            })
        );
        assert_eq!(
            serde_json::from_value::<HookReceipt>(value).ok(),
            Some(receipt)
        );
    }
}
