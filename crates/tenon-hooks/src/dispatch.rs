//! [`HookDispatcher`]: runs a hook's handlers and reports what each did.

use std::convert::identity;
use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::Value;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::handler::HandlerFuture;
use crate::patch::{analyze, apply};
use crate::registry::{HandlerEntry, HookSlot};
use crate::util::{CatchUnwind, Ms, panic_message};
use crate::{
    BlockedBy, DispatchOutcome, ErrorKind, FailPolicy, HandlerError, HookAction, HookCall,
    HookContext, HookError, HookReceipt, HookRegistry, HookSpec, ObserverId, ReceiptObserver,
    ReceiptStatus, SkipReason, StoppedBy,
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
    /// Whether `observers` is non-empty: lets a dispatch skip loading it.
    observed: AtomicBool,
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
///
/// Dropping a dispatch future before it completes (the host's request was
/// cancelled) drops the running handler's future too; that dispatch produces
/// no outcome and no receipts.
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
                observed: AtomicBool::new(false),
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
        self.inner.observed.store(true, Ordering::Release);
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
        self.inner
            .observed
            .store(!observers.is_empty(), Ordering::Release);
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
        mut data: Value,
        check: Option<Check<'_>>,
    ) -> DispatchOutcome {
        let handlers = slot.handlers.load_full();
        let budget = self.inner.config.budget;
        let start = Instant::now();
        let mut chain = Chain {
            slot,
            context,
            check,
            budget,
            deadline: far_deadline(start, budget),
            now: start,
            started: start,
            receipts: Vec::with_capacity(handlers.len()),
            blocked: None,
            stopped: None,
        };
        for entry in handlers.iter() {
            if let Some(reason) = chain.skip_reason() {
                chain.skip(entry, reason);
                continue;
            }
            chain.started = chain.now;
            // A handler that answers when called stays out of the async
            // machinery (no nested futures, no timer); one that answers a plain
            // continue does not even move a result around.
            let step = match call_handler(entry, chain.call(entry, &data, 1)) {
                Ok(future) if future.is_continue() => {
                    chain.now = Instant::now();
                    chain.record_continue(entry);
                    continue;
                }
                Ok(mut future) => match future.take_ready() {
                    Some(result) => Step::Done(result.map_err(|e| Failure::of(&e))),
                    None => Step::Unfinished(Unfinished::Pending(future)),
                },
                Err(failure) => Step::Done(Err(failure)),
            };
            // Matching on a temporary (not on `step` itself) ends the step's
            // borrow of the data before the data is patched below.
            let (result, attempts) = match identity(step) {
                Step::Done(Ok(action)) => {
                    chain.now = Instant::now();
                    (Ok(action), 1)
                }
                // Waiting, timing out and retrying are boxed: they are rare, and
                // inline they would make every dispatch's future several times
                // larger.
                Step::Done(Err(failure)) => {
                    chain.now = Instant::now();
                    Box::pin(chain.finish(entry, &data, Unfinished::Failed(failure))).await
                }
                Step::Unfinished(pending) => Box::pin(chain.finish(entry, &data, pending)).await,
            };
            chain.record(entry, &mut data, result, attempts);
        }
        let outcome = DispatchOutcome {
            elapsed: chain.now.saturating_duration_since(start),
            data,
            blocked: chain.blocked,
            stopped: chain.stopped,
            receipts: chain.receipts,
        };
        self.notify(context, &outcome.receipts);
        outcome
    }

    fn notify(&self, context: &HookContext, receipts: &[HookReceipt]) {
        if receipts.is_empty() || !self.inner.observed.load(Ordering::Acquire) {
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

/// One dispatch in progress (everything but the data, which handler futures
/// borrow while the chain's bookkeeping changes).
struct Chain<'a> {
    slot: &'a HookSlot,
    context: &'a HookContext,
    check: Option<Check<'a>>,
    budget: Duration,
    deadline: Instant,
    /// The last time read: the end of the previous attempt or backoff.
    now: Instant,
    /// When the current handler's first attempt started.
    started: Instant,
    receipts: Vec<HookReceipt>,
    blocked: Option<BlockedBy>,
    stopped: Option<StoppedBy>,
}

/// A failed attempt.
struct Failure {
    status: ReceiptStatus,
    kind: Option<ErrorKind>,
    message: String,
}

impl Failure {
    fn error(message: impl Into<String>) -> Self {
        Self {
            status: ReceiptStatus::Error,
            kind: Some(ErrorKind::Handler),
            message: message.into(),
        }
    }

    /// What a handler's own error says.
    fn of(error: &HandlerError) -> Self {
        Self {
            status: ReceiptStatus::Error,
            kind: Some(error.kind()),
            message: error.message().to_owned(),
        }
    }

    fn rejected(message: String) -> Self {
        Self {
            status: ReceiptStatus::Rejected,
            kind: None,
            message,
        }
    }

    fn panic(message: String) -> Self {
        Self {
            kind: Some(ErrorKind::Trap),
            ..Self::error(format!("the handler {message}"))
        }
    }
}

type AttemptResult = Result<HookAction, Failure>;

/// A receipt's error message and kind.
type ReceiptError = (String, Option<ErrorKind>);

/// How a handler's first call went, when it was not a plain continue.
enum Step<'d> {
    /// A result known at once.
    Done(AttemptResult),
    /// A future to wait for.
    Unfinished(Unfinished<'d>),
}

enum Unfinished<'d> {
    Pending(HandlerFuture<'d>),
    Failed(Failure),
}

/// Calls a handler, catching a panic in the call itself.
#[inline]
fn call_handler<'d>(
    entry: &'d HandlerEntry,
    call: HookCall<'d>,
) -> Result<HandlerFuture<'d>, Failure> {
    // The closure writes its result in place and returns `()`, so the future
    // is not copied through `catch_unwind`'s return value.
    let mut future = None;
    match catch_unwind(AssertUnwindSafe(|| future = Some(entry.handler.call(call)))) {
        Ok(()) => future.ok_or_else(|| Failure::error("the handler returned no future")),
        Err(payload) => Err(Failure::panic(panic_message(&*payload))),
    }
}

impl<'a> Chain<'a> {
    #[inline]
    fn call<'d>(&self, entry: &'d HandlerEntry, data: &'d Value, attempt: u32) -> HookCall<'d>
    where
        'a: 'd,
    {
        let slot: &'a HookSlot = self.slot;
        HookCall::new(&slot.name, &entry.plugin, self.context, data)
            .with_handler(entry.id)
            .with_attempt(attempt)
            .with_time_limit(self.time_limit(entry))
    }

    /// How long an attempt of `entry` that starts now may take: its timeout,
    /// cut to what is left of the budget.
    #[inline]
    fn time_limit(&self, entry: &HandlerEntry) -> Duration {
        entry
            .timeout
            .min(self.deadline.saturating_duration_since(self.now))
    }

    /// Why the next handler cannot run, if it cannot.
    #[inline]
    fn skip_reason(&self) -> Option<SkipReason> {
        if self.blocked.is_some() {
            Some(SkipReason::Blocked)
        } else if self.stopped.is_some() {
            Some(SkipReason::Stopped)
        } else if self.now >= self.deadline {
            Some(SkipReason::Budget)
        } else {
            None
        }
    }

    /// Waits for a pending attempt and makes the retries that are due; leaves
    /// `self.now` at the end.
    async fn finish<'d>(
        &mut self,
        entry: &'d HandlerEntry,
        data: &'d Value,
        first: Unfinished<'d>,
    ) -> (AttemptResult, u32)
    where
        'a: 'd,
    {
        let mut attempt = 1;
        let mut current = first;
        loop {
            let mut failure = match current {
                Unfinished::Failed(failure) => failure,
                Unfinished::Pending(future) => {
                    let limit = self.time_limit(entry);
                    let waited = wait(future, self.now + limit).await;
                    self.now = Instant::now();
                    match waited {
                        Ok(action) => return (Ok(action), attempt),
                        Err(Waited::Failed(failure)) => failure,
                        Err(Waited::TimedOut) => self.timed_out(entry, limit),
                    }
                }
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
            current = match call_handler(entry, self.call(entry, data, attempt)) {
                Ok(mut future) => match future.take_ready() {
                    None => Unfinished::Pending(future),
                    Some(result) => {
                        self.now = Instant::now();
                        match result {
                            Ok(action) => return (Ok(action), attempt),
                            Err(error) => Unfinished::Failed(Failure::of(&error)),
                        }
                    }
                },
                Err(failure) => {
                    self.now = Instant::now();
                    Unfinished::Failed(failure)
                }
            };
        }
    }

    fn timed_out(&self, entry: &HandlerEntry, limit: Duration) -> Failure {
        let message = if limit < entry.timeout {
            format!(
                "timed out after {}: the chain budget of {} had only that much left (handler timeout {})",
                Ms(limit),
                Ms(self.budget),
                Ms(entry.timeout)
            )
        } else {
            format!("timed out after {}", Ms(limit))
        };
        Failure {
            status: ReceiptStatus::Timeout,
            kind: Some(ErrorKind::Timeout),
            message,
        }
    }

    /// Applies what the handler's last attempt returned and writes its receipt.
    #[inline]
    fn record(
        &mut self,
        entry: &HandlerEntry,
        data: &mut Value,
        result: AttemptResult,
        attempts: u32,
    ) {
        let (status, error, changed_fields) = match result {
            Ok(HookAction::Continue { patch: None }) => (ReceiptStatus::Ok, None, Vec::new()),
            other => self.settle(entry, data, other),
        };
        self.push_receipt(entry, status, attempts, error, changed_fields);
    }

    /// The receipt of a plain continue.
    #[inline]
    fn record_continue(&mut self, entry: &HandlerEntry) {
        self.push_receipt(entry, ReceiptStatus::Ok, 1, None, Vec::new());
    }

    /// The receipt of a handler that ran, from its first attempt to `now`.
    // Always inlined: out of line, its arguments go through memory on the
    // hottest path (about 35 more instructions per handler).
    #[inline(always)]
    fn push_receipt(
        &mut self,
        entry: &HandlerEntry,
        status: ReceiptStatus,
        attempts: u32,
        error: Option<ReceiptError>,
        changed_fields: Vec<String>,
    ) {
        let (error, error_kind) = match error {
            Some((message, kind)) => (Some(message), kind),
            None => (None, None),
        };
        self.receipts.push(HookReceipt {
            plugin: Arc::clone(&entry.plugin),
            hook: Arc::clone(&self.slot.name),
            handler: entry.id,
            execution_id: self.context.execution_id(),
            status,
            attempts,
            duration: self.now.saturating_duration_since(self.started),
            error,
            error_kind,
            changed_fields,
            skip_reason: None,
        });
    }

    /// Everything but a plain continue: patches, blocks, failures and the
    /// failure policy.
    #[inline(never)]
    fn settle(
        &mut self,
        entry: &HandlerEntry,
        data: &mut Value,
        result: AttemptResult,
    ) -> (ReceiptStatus, Option<ReceiptError>, Vec<String>) {
        match result.and_then(|action| self.take_action(entry, data, action)) {
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
                (
                    failure.status,
                    Some((failure.message, failure.kind)),
                    Vec::new(),
                )
            }
        }
    }

    #[cold]
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
            error_kind: None,
            changed_fields: Vec::new(),
            skip_reason: Some(reason),
        });
    }

    /// Applies what a handler returned.
    fn take_action(
        &mut self,
        entry: &HandlerEntry,
        data: &mut Value,
        action: HookAction,
    ) -> Result<Taken, Failure> {
        match action {
            HookAction::Continue { patch: None } => Ok(Taken::Continued(Vec::new())),
            HookAction::Continue { patch: Some(patch) } => self
                .apply_patch(data, &patch)
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
    fn apply_patch(&self, data: &mut Value, patch: &Value) -> Result<Vec<String>, String> {
        let report = analyze(data, patch, &self.slot.mutable);
        if !report.violations.is_empty() {
            return Err(describe_violations(&self.slot.spec, &report.violations));
        }
        if report.changed.is_empty() {
            return Ok(report.changed);
        }
        match self.check {
            None => apply(data, patch),
            Some(check) => {
                let mut next = data.clone();
                apply(&mut next, patch);
                check(&next).map_err(|e| {
                    format!(
                        "the patch would leave data the host cannot use: {e}; patch not applied"
                    )
                })?;
                *data = next;
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

enum Waited {
    Failed(Failure),
    TimedOut,
}

/// Waits for a pending handler future: polls it once, and only if that is
/// still pending, arms a timer for `deadline`.
async fn wait(future: HandlerFuture<'_>, deadline: Instant) -> Result<HookAction, Waited> {
    let mut future = CatchUnwind(future);
    let first = poll_fn(|cx| Poll::Ready(Pin::new(&mut future).poll(cx))).await;
    let finished = match first {
        Poll::Ready(finished) => finished,
        Poll::Pending => {
            if Handle::try_current().is_err() {
                return Err(Waited::Failed(Failure::error(
                    "the handler awaits, but no Tokio runtime is running to time it",
                )));
            }
            match tokio::time::timeout_at(deadline, future).await {
                Ok(finished) => finished,
                Err(_) => return Err(Waited::TimedOut),
            }
        }
    };
    match finished {
        Ok(Ok(action)) => Ok(action),
        Ok(Err(error)) => Err(Waited::Failed(Failure::of(&error))),
        Err(message) => Err(Waited::Failed(Failure::panic(message))),
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
