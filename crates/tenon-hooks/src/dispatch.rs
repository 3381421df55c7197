//! [`HookDispatcher`]: runs a hook's handlers and reports what each did.

use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::Value;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::patch::{analyze, apply};
use crate::registry::{HandlerEntry, HookSlot};
use crate::util::{CatchUnwind, Ms, panic_message};
use crate::{
    BlockedBy, DispatchOutcome, FailPolicy, HookAction, HookCall, HookContext, HookError,
    HookReceipt, HookRegistry, HookSpec, ObserverId, ReceiptObserver, ReceiptStatus, SkipReason,
    StoppedBy,
};

/// The time a whole chain may take when the config says nothing else.
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(8000);

/// How a [`HookDispatcher`] runs chains.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchConfig {
    /// The time a whole chain may take, retries and backoff included
    /// (default 8000 ms). Each handler's timeout is cut to what is left of it;
    /// handlers whose turn comes after it is spent are skipped.
    pub budget: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            budget: DEFAULT_BUDGET,
        }
    }
}

impl DispatchConfig {
    /// Sets the chain budget.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }
}

/// A data check applied to every patched document (the typed layer uses it to
/// keep the data convertible to the host's type).
pub(crate) type Check<'a> = &'a (dyn Fn(&Value) -> Result<(), String> + Send + Sync);

type Observers = Vec<(ObserverId, Arc<dyn ReceiptObserver>)>;

struct Inner {
    registry: HookRegistry,
    config: DispatchConfig,
    observers: ArcSwap<Observers>,
    next_observer: Mutex<u64>,
}

/// Runs hooks. Cheap to clone (clones share registry, config and observers).
///
/// # Semantics
///
/// A dispatch loads the hook's handler snapshot once (registering or
/// removing handlers meanwhile affects the next dispatch) and runs the
/// handlers one after another, in order of priority (descending), then plugin
/// id, then registration. Each handler gets exactly one [`HookReceipt`]:
///
/// - **Time.** An attempt runs under `min(handler timeout, what is left of the
///   chain budget)`. A handler whose turn comes when the budget is spent is not
///   called: `skipped` ([`SkipReason::Budget`]). A handler future that
///   completes when first polled never arms a timer.
/// - **Retries.** An error or timeout is retried up to `retries` times, after
///   the backoff delay. Attempts and delays count against the budget; a retry
///   that could not start before the budget ends is not made.
/// - **Continue.** A patch (RFC 7396 merge patch) is checked against the spec's
///   mutable pointers before it is applied: if it would change anything else it
///   is `rejected` as a whole (the receipt names the offending pointers, the
///   data is unchanged); otherwise it is applied and the receipt lists the
///   pointers it changed. Later handlers see earlier changes.
/// - **Block.** Stops the chain with [`DispatchOutcome::blocked`] where the spec
///   allows blocking. Where it does not, the block is `rejected` and nothing else
///   changes.
/// - **Failures** (`error`, `timeout`, `rejected`): a fail-open handler's failure
///   is recorded and the chain goes on; a fail-closed handler's failure stops the
///   chain with [`DispatchOutcome::stopped`]. A rejected patch or refused block
///   counts as a failure: a fail-closed handler is one the host relies on, and
///   one that misbehaves must not be silently passed over.
/// - Handlers after a block or stop get `skipped` receipts
///   ([`SkipReason::Blocked`], [`SkipReason::Stopped`]).
/// - A panic inside a handler is caught and recorded as its `error`.
///
/// The receipts then go to every [`ReceiptObserver`], and the outcome is
/// returned.
///
/// Handlers that await need a Tokio runtime with time enabled (timeouts and
/// backoff use Tokio's timer, so tests can run under paused time).
#[derive(Clone)]
pub struct HookDispatcher {
    inner: Arc<Inner>,
}

impl fmt::Debug for HookDispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookDispatcher")
            .field("registry", &self.inner.registry)
            .field("config", &self.inner.config)
            .field("observers", &self.inner.observers.load().len())
            .finish()
    }
}

impl HookDispatcher {
    /// A dispatcher over `registry` with the default config.
    pub fn new(registry: HookRegistry) -> Self {
        Self::with_config(registry, DispatchConfig::default())
    }

    /// A dispatcher over `registry` with `config`.
    pub fn with_config(registry: HookRegistry, config: DispatchConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                registry,
                config,
                observers: ArcSwap::from_pointee(Vec::new()),
                next_observer: Mutex::new(0),
            }),
        }
    }

    /// The registry it dispatches from.
    pub fn registry(&self) -> &HookRegistry {
        &self.inner.registry
    }

    /// Its config.
    pub fn config(&self) -> &DispatchConfig {
        &self.inner.config
    }

    /// Adds an observer of every dispatch's receipts.
    pub fn add_observer(&self, observer: Arc<dyn ReceiptObserver>) -> ObserverId {
        let mut next = self
            .inner
            .next_observer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *next += 1;
        let id = ObserverId(*next);
        let mut observers = Observers::clone(&self.inner.observers.load());
        observers.push((id, observer));
        self.inner.observers.store(Arc::new(observers));
        id
    }

    /// Removes an observer; returns whether it was there.
    pub fn remove_observer(&self, id: ObserverId) -> bool {
        let _writer = self
            .inner
            .next_observer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut observers = Observers::clone(&self.inner.observers.load());
        let before = observers.len();
        observers.retain(|(o, _)| *o != id);
        let removed = observers.len() != before;
        self.inner.observers.store(Arc::new(observers));
        removed
    }

    /// A handle on one declared hook, resolved once: dispatching through it
    /// skips the name lookup and cannot fail.
    pub fn hook(&self, hook: &str) -> Result<Hook, HookError> {
        Ok(Hook {
            dispatcher: self.clone(),
            slot: self.inner.registry.slot(hook)?,
        })
    }

    /// Runs `hook`'s handlers over `data` (see the type's documentation).
    /// Fails only if the hook is not declared.
    pub async fn dispatch(
        &self,
        hook: &str,
        context: &HookContext,
        data: Value,
    ) -> Result<DispatchOutcome, HookError> {
        let slot = self.inner.registry.slot(hook)?;
        Ok(self.run(&slot, context, data, None).await)
    }

    /// Runs `hook` without waiting: the chain is spawned on the current Tokio
    /// runtime, its receipts reach the observers as usual, and the returned
    /// handle may be dropped (or awaited for the outcome). For observe-only
    /// hooks such as `*.post_*`.
    ///
    /// Fails if the hook is not declared or no Tokio runtime is running.
    pub fn emit(
        &self,
        hook: &str,
        context: HookContext,
        data: Value,
    ) -> Result<JoinHandle<DispatchOutcome>, HookError> {
        self.hook(hook)?.emit(context, data)
    }

    pub(crate) async fn run(
        &self,
        slot: &HookSlot,
        context: &HookContext,
        data: Value,
        check: Option<Check<'_>>,
    ) -> DispatchOutcome {
        let handlers = slot.handlers.load_full();
        let budget = self.inner.config.budget;
        let start = Instant::now();
        let mut chain = Chain {
            slot,
            context,
            data,
            check,
            budget,
            start,
            deadline: far_deadline(start, budget),
            now: start,
            receipts: Vec::with_capacity(handlers.len()),
            blocked: None,
            stopped: None,
        };
        for entry in handlers.iter() {
            chain.step(entry).await;
        }
        let outcome = DispatchOutcome {
            elapsed: chain.now.saturating_duration_since(chain.start),
            data: chain.data,
            blocked: chain.blocked,
            stopped: chain.stopped,
            receipts: chain.receipts,
        };
        self.notify(context, &outcome.receipts);
        outcome
    }

    fn notify(&self, context: &HookContext, receipts: &[HookReceipt]) {
        if receipts.is_empty() {
            return;
        }
        for (_, observer) in self.inner.observers.load().iter() {
            // A broken observer must not break the dispatch or the others; the
            // panic hook has already reported the panic.
            let _ = catch_unwind(AssertUnwindSafe(|| observer.on_receipts(context, receipts)));
        }
    }
}

/// `start + budget`, or a deadline beyond any real dispatch if that overflows.
fn far_deadline(start: Instant, budget: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    start.checked_add(budget).unwrap_or_else(|| start + CENTURY)
}

/// One dispatch in progress.
struct Chain<'a> {
    slot: &'a HookSlot,
    context: &'a HookContext,
    data: Value,
    check: Option<Check<'a>>,
    budget: Duration,
    start: Instant,
    deadline: Instant,
    /// The last time read: the end of the previous handler.
    now: Instant,
    receipts: Vec<HookReceipt>,
    blocked: Option<BlockedBy>,
    stopped: Option<StoppedBy>,
}

/// A failed attempt.
struct Failure {
    status: ReceiptStatus,
    message: String,
}

impl Failure {
    fn error(message: impl Into<String>) -> Self {
        Self {
            status: ReceiptStatus::Error,
            message: message.into(),
        }
    }

    fn rejected(message: String) -> Self {
        Self {
            status: ReceiptStatus::Rejected,
            message,
        }
    }

    fn panic(message: String) -> Self {
        Self::error(format!("the handler {message}"))
    }
}

impl Chain<'_> {
    async fn step(&mut self, entry: &HandlerEntry) {
        if self.blocked.is_some() {
            return self.skip(entry, SkipReason::Blocked);
        }
        if self.stopped.is_some() {
            return self.skip(entry, SkipReason::Stopped);
        }
        if self.now >= self.deadline {
            return self.skip(entry, SkipReason::Budget);
        }
        let started = self.now;
        let (result, attempts) = self.run_attempts(entry).await;
        let duration = self.now.saturating_duration_since(started);
        let outcome = result.and_then(|action| self.take_action(entry, action));
        let (status, error, changed_fields) = match outcome {
            Ok(Taken::Continued(changed)) => (ReceiptStatus::Ok, None, changed),
            Ok(Taken::Blocked) => (ReceiptStatus::Blocked, None, Vec::new()),
            Err(failure) => {
                if entry.fail_policy == FailPolicy::Closed {
                    self.stopped = Some(StoppedBy {
                        plugin: Arc::clone(&entry.plugin),
                        handler: entry.id,
                        status: failure.status,
                        error: failure.message.clone(),
                    });
                }
                (failure.status, Some(failure.message), Vec::new())
            }
        };
        self.receipts.push(HookReceipt {
            plugin: Arc::clone(&entry.plugin),
            hook: Arc::clone(&self.slot.name),
            handler: entry.id,
            execution_id: self.context.execution_id(),
            status,
            attempts,
            duration,
            error,
            changed_fields,
            skip_reason: None,
        });
    }

    fn skip(&mut self, entry: &HandlerEntry, reason: SkipReason) {
        let why = match (reason, &self.blocked, &self.stopped) {
            (SkipReason::Blocked, Some(by), _) => {
                format!("not run: `{}` blocked the chain", by.plugin)
            }
            (SkipReason::Stopped, _, Some(by)) => {
                format!(
                    "not run: fail-closed `{}` failed ({}) and stopped the chain",
                    by.plugin, by.status
                )
            }
            _ => format!(
                "not run: the chain budget of {} was spent before its turn",
                Ms(self.budget)
            ),
        };
        self.receipts.push(HookReceipt {
            plugin: Arc::clone(&entry.plugin),
            hook: Arc::clone(&self.slot.name),
            handler: entry.id,
            execution_id: self.context.execution_id(),
            status: ReceiptStatus::Skipped,
            attempts: 0,
            duration: Duration::ZERO,
            error: Some(why),
            changed_fields: Vec::new(),
            skip_reason: Some(reason),
        });
    }

    /// Runs the attempts of one handler; leaves `self.now` at their end.
    async fn run_attempts(&mut self, entry: &HandlerEntry) -> (Result<HookAction, Failure>, u32) {
        let mut attempt = 1;
        loop {
            let limit = entry
                .timeout
                .min(self.deadline.saturating_duration_since(self.now));
            let call = HookCall::new(&self.slot.name, &entry.plugin, self.context, &self.data)
                .with_handler(entry.id)
                .with_attempt(attempt);
            let result = attempt_once(entry, call, self.now + limit).await;
            self.now = Instant::now();
            let mut failure = match result {
                Ok(action) => return (Ok(action), attempt),
                Err(Attempt::Failed(failure)) => failure,
                Err(Attempt::TimedOut) => Failure {
                    status: ReceiptStatus::Timeout,
                    message: if limit < entry.timeout {
                        format!(
                            "timed out after {}: the chain budget of {} had only that much left (handler timeout {})",
                            Ms(limit),
                            Ms(self.budget),
                            Ms(entry.timeout)
                        )
                    } else {
                        format!("timed out after {}", Ms(limit))
                    },
                },
            };
            if attempt > entry.retries {
                if entry.retries > 0 {
                    failure.message = format!("{} (last of {attempt} attempts)", failure.message);
                }
                return (Err(failure), attempt);
            }
            let delay = entry
                .backoff
                .map_or(Duration::ZERO, |b| b.delay_before(attempt));
            let resume = self.now.checked_add(delay).unwrap_or(self.deadline);
            if resume >= self.deadline {
                failure.message = format!(
                    "{} (attempt {attempt}; no retry: the chain budget of {} ends before the next attempt could start)",
                    failure.message,
                    Ms(self.budget)
                );
                return (Err(failure), attempt);
            }
            if !delay.is_zero() {
                if Handle::try_current().is_err() {
                    failure.message = format!(
                        "{} (no retry: backoff needs a Tokio runtime)",
                        failure.message
                    );
                    return (Err(failure), attempt);
                }
                tokio::time::sleep_until(resume).await;
                self.now = Instant::now();
            }
            attempt += 1;
        }
    }

    /// Applies what a handler returned.
    fn take_action(&mut self, entry: &HandlerEntry, action: HookAction) -> Result<Taken, Failure> {
        match action {
            HookAction::Continue { patch: None } => Ok(Taken::Continued(Vec::new())),
            HookAction::Continue { patch: Some(patch) } => self
                .apply_patch(&patch)
                .map(Taken::Continued)
                .map_err(Failure::rejected),
            HookAction::Block { reason } if self.slot.spec.can_block => {
                self.blocked = Some(BlockedBy {
                    plugin: Arc::clone(&entry.plugin),
                    handler: entry.id,
                    reason,
                });
                Ok(Taken::Blocked)
            }
            HookAction::Block { reason } => Err(Failure::rejected(format!(
                "hook `{}` cannot be blocked (its spec has can_block = false); the block{} was refused",
                self.slot.name,
                reason
                    .map(|r| format!(" (reason: {r})"))
                    .unwrap_or_default()
            ))),
        }
    }

    /// Checks and applies a patch; returns the changed pointers.
    fn apply_patch(&mut self, patch: &Value) -> Result<Vec<String>, String> {
        let report = analyze(&self.data, patch, &self.slot.mutable);
        if !report.violations.is_empty() {
            return Err(describe_violations(&self.slot.spec, &report.violations));
        }
        if report.changed.is_empty() {
            return Ok(report.changed);
        }
        match self.check {
            None => apply(&mut self.data, patch),
            Some(check) => {
                let mut next = self.data.clone();
                apply(&mut next, patch);
                check(&next).map_err(|e| {
                    format!(
                        "the patch would leave data the host cannot use: {e}; patch not applied"
                    )
                })?;
                self.data = next;
            }
        }
        Ok(report.changed)
    }
}

enum Taken {
    Continued(Vec<String>),
    Blocked,
}

fn describe_violations(spec: &HookSpec, violations: &[String]) -> String {
    let fields = violations.iter().map(|v| {
        if v.is_empty() {
            "\"\" (the whole document)"
        } else {
            v
        }
    });
    let fields = fields.collect::<Vec<_>>().join(", ");
    let plural = if violations.len() == 1 { "" } else { "s" };
    if spec.mutable.is_empty() {
        format!(
            "patch rejected: it changes read-only field{plural} {fields}, and hook `{}` is observe-only (no field may change)",
            spec.name
        )
    } else {
        format!(
            "patch rejected: it changes read-only field{plural} {fields}; hook `{}` allows changes only under {}",
            spec.name,
            spec.mutable.join(", ")
        )
    }
}

enum Attempt {
    Failed(Failure),
    TimedOut,
}

/// One attempt: call, poll once, and only if that is pending, wait under a
/// timer until `deadline`.
async fn attempt_once(
    entry: &HandlerEntry,
    call: HookCall<'_>,
    deadline: Instant,
) -> Result<HookAction, Attempt> {
    let mut future = match catch_unwind(AssertUnwindSafe(|| entry.handler.call(call))) {
        Ok(future) => future,
        Err(payload) => return Err(Attempt::Failed(Failure::panic(panic_message(&*payload)))),
    };
    if let Some(result) = future.take_ready() {
        return result.map_err(|e| Attempt::Failed(Failure::error(e.message())));
    }
    let mut future = CatchUnwind(future);
    let first = poll_fn(|cx| Poll::Ready(Pin::new(&mut future).poll(cx))).await;
    let finished = match first {
        Poll::Ready(finished) => finished,
        Poll::Pending => {
            if Handle::try_current().is_err() {
                return Err(Attempt::Failed(Failure::error(
                    "the handler awaits, but no Tokio runtime is running to time it",
                )));
            }
            match tokio::time::timeout_at(deadline, future).await {
                Ok(finished) => finished,
                Err(_) => return Err(Attempt::TimedOut),
            }
        }
    };
    match finished {
        Ok(Ok(action)) => Ok(action),
        Ok(Err(error)) => Err(Attempt::Failed(Failure::error(error.message()))),
        Err(message) => Err(Attempt::Failed(Failure::panic(message))),
    }
}

/// A declared hook, resolved once (see [`HookDispatcher::hook`]).
#[derive(Clone)]
pub struct Hook {
    pub(crate) dispatcher: HookDispatcher,
    pub(crate) slot: Arc<HookSlot>,
}

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hook")
            .field("spec", &self.slot.spec)
            .finish_non_exhaustive()
    }
}

impl Hook {
    /// The hook's name.
    pub fn name(&self) -> &str {
        &self.slot.name
    }

    /// The hook's spec.
    pub fn spec(&self) -> &HookSpec {
        &self.slot.spec
    }

    /// Runs the hook's handlers over `data` (see [`HookDispatcher`]).
    pub async fn dispatch(&self, context: &HookContext, data: Value) -> DispatchOutcome {
        self.dispatcher.run(&self.slot, context, data, None).await
    }

    /// Runs the hook without waiting (see [`HookDispatcher::emit`]).
    pub fn emit(
        &self,
        context: HookContext,
        data: Value,
    ) -> Result<JoinHandle<DispatchOutcome>, HookError> {
        let runtime = Handle::try_current().map_err(|_| HookError::NoRuntime {
            hook: self.name().to_owned(),
        })?;
        let hook = self.clone();
        Ok(runtime.spawn(async move { hook.dispatch(&context, data).await }))
    }
}
