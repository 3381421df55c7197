//! Tenon's hooks: how plugins change what a host does.
//!
//! This crate owns the extension points of a host and everything that runs
//! through them:
//!
//! - [`HookSpec`]: an extension point as the host declares it (which parts of
//!   its data handlers may change, whether they may block it, their default
//!   timeout);
//! - [`HookRegistry`]: the declared specs and the handlers plugins register for
//!   them (priority, [`FailPolicy`], timeout, retries with [`Backoff`]), safe to
//!   change while dispatches run;
//! - [`HookDispatcher`]: runs a hook's handlers in order under per-handler
//!   timeouts and a chain budget, applies their JSON merge patches where the
//!   spec allows, honours blocks where the spec allows, applies each handler's
//!   failure policy, and returns a [`DispatchOutcome`] with one [`HookReceipt`]
//!   per handler, also given to every [`ReceiptObserver`];
//! - a typed layer ([`HookDispatcher::dispatch_typed`], [`TypedHook`]) and
//!   fire-and-forget [`HookDispatcher::emit`];
//! - [`EventBus`] (publish/subscribe by topic pattern), [`CommandRegistry`]
//!   (`plugin-id:command` request/response) and [`Pipeline`] (middleware).
//!
//! It does not know how plugins run: a handler is any [`HookHandler`], and
//! the crate never mentions WebAssembly, manifests, storage or metrics. It
//! depends on no other Tenon crate but the floor, `tenon-types` (whose topic
//! patterns the bus uses). Hosts that only want hooks depend on it alone;
//! `tenon-engine` implements [`HookHandler`] for sandboxed and native
//! plugins, and `tenon-metrics` implements [`ReceiptObserver`].
//!
//! # Example
//!
//! ```
//! use serde_json::json;
//! use tenon_hooks::{
//!     handler_fn, FailPolicy, HandlerOptions, HookAction, HookContext, HookDispatcher,
//!     HookRegistry, HookSpec, Priority, ReceiptStatus,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tenon_hooks::HookError> {
//! // The host declares its extension points once.
//! let registry = HookRegistry::new();
//! registry.declare(
//!     HookSpec::new("tool.pre_exec").with_mutable(["/toolInput"]).with_blocking(true),
//! )?;
//!
//! // Plugins register handlers.
//! registry.register(
//!     "acme.sanitize",
//!     "tool.pre_exec",
//!     handler_fn(|call| {
//!         let path = call.data["toolInput"]["path"].as_str().unwrap_or_default();
//!         Ok(HookAction::patch(json!({"toolInput": {"path": path.trim()}})))
//!     }),
//!     HandlerOptions::new().with_priority(Priority::HIGH),
//! )?;
//! registry.register(
//!     "acme.policy",
//!     "tool.pre_exec",
//!     handler_fn(|call| match call.data["toolInput"]["path"].as_str() {
//!         Some(path) if path.starts_with("/etc") => Ok(HookAction::block("no system files")),
//!         _ => Ok(HookAction::CONTINUE),
//!     }),
//!     HandlerOptions::new().with_fail_policy(FailPolicy::Closed),
//! )?;
//!
//! // The host dispatches at the extension point and honours the outcome.
//! let dispatcher = HookDispatcher::new(registry);
//! let context = HookContext::new("tenant-1").with_user("user-7");
//! let outcome = dispatcher
//!     .dispatch(
//!         "tool.pre_exec",
//!         &context,
//!         json!({"toolName": "read_file", "toolInput": {"path": "  /etc/passwd "}}),
//!     )
//!     .await?;
//!
//! assert_eq!(outcome.data["toolInput"]["path"], "/etc/passwd");
//! let blocked = outcome.blocked.as_ref().expect("the policy blocks it");
//! assert_eq!(&*blocked.plugin, "acme.policy");
//! let statuses: Vec<_> = outcome.receipts.iter().map(|r| r.status).collect();
//! assert_eq!(statuses, [ReceiptStatus::Ok, ReceiptStatus::Blocked]);
//! assert_eq!(outcome.receipts[0].changed_fields, ["/toolInput/path"]);
//!
//! // A patch outside the mutable fields is rejected and the data is unchanged.
//! dispatcher.registry().register(
//!     "acme.rename",
//!     "tool.pre_exec",
//!     handler_fn(|_| Ok(HookAction::patch(json!({"toolName": "write_file"})))),
//!     HandlerOptions::new().with_priority(Priority::CRITICAL),
//! )?;
//! let outcome = dispatcher
//!     .dispatch("tool.pre_exec", &context, json!({"toolName": "read_file", "toolInput": {}}))
//!     .await?;
//! assert_eq!(outcome.data["toolName"], "read_file");
//! assert_eq!(outcome.receipts[0].status, ReceiptStatus::Rejected);
//! assert!(outcome.receipts[0].error.as_deref().unwrap_or_default().contains("/toolName"));
//! # Ok(())
//! # }
//! ```
//!
//! # Typed data
//!
//! A Rust host need not touch JSON: [`HookDispatcher::dispatch_typed`] (or a
//! [`TypedHook`] from [`HookDispatcher::typed_hook`]) takes any
//! `T: Serialize + DeserializeOwned` and returns a [`DispatchOutcome<T>`]. Each
//! patch must leave data that still converts to `T`, otherwise it is rejected
//! like a patch touching a read-only field.
//!
//! # Threads and time
//!
//! Dispatch takes no lock: handler lists are immutable snapshots swapped
//! atomically. Timeouts and backoff use Tokio's timer (so tests run under
//! paused time); a handler that completes on its first poll costs no timer and
//! no allocation.

mod bus;
mod command;
mod context;
mod dispatch;
mod error;
mod handler;
mod middleware;
mod patch;
mod policy;
mod receipt;
mod registry;
mod spec;
mod typed;
mod util;

pub use bus::{
    BusError, BusItem, Causation, CauseLink, DEFAULT_MAX_CAUSATION_DEPTH,
    DEFAULT_SUBSCRIBER_CAPACITY, Event, EventBus, MAX_CAUSATION_DEPTH, MAX_TOPIC_LEN, Subscription,
    TopicPattern, validate_topic,
};
pub use command::{
    CommandError, CommandHandler, CommandInfo, CommandRegistry, DEFAULT_COMMAND_TIMEOUT, FnCommand,
    command_fn,
};
pub use context::{HookContext, StateMap};
pub use dispatch::{DEFAULT_BUDGET, DispatchConfig, Hook, HookDispatcher};
pub use error::{ErrorKind, HandlerError, HookError};
pub use handler::{
    AsyncFnHandler, BoxFuture, FnHandler, HandlerFuture, HandlerResult, HookAction, HookCall,
    HookHandler, OwnedHookCall, async_handler_fn, handler_fn,
};
pub use middleware::{
    Endpoint, FnEndpoint, FnMiddleware, LayerId, LayerInfo, Middleware, Next, Pipeline,
    endpoint_fn, middleware_fn,
};
pub use policy::{Backoff, BackoffKind, FailPolicy, HandlerOptions, Priority};
pub use receipt::{
    BlockedBy, DispatchOutcome, HookReceipt, ObserverId, ReceiptObserver, ReceiptStatus,
    SkipReason, StoppedBy,
};
pub use registry::{HandlerId, HandlerInfo, HookRegistry};
pub use spec::{DEFAULT_HANDLER_TIMEOUT, HookSpec};
pub use typed::TypedHook;
pub use uuid::Uuid;
