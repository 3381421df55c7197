//! A loaded component plugin: its instances (a warm pool, or one per call),
//! the per-call deadline, fuel and memory bookkeeping, and the mapping of
//! traps to [`SandboxError`]s.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use tenon_manifest::{Isolation, Limits};
use tokio::sync::{Semaphore, SemaphorePermit};
use wasmtime::{Store, Trap, UpdateDeadline};

use super::cache::LoadSource;
use super::engine::AllocatorKind;
use super::engines_tick;
use super::store::{Preopen, StoreData, flush_output};
use super::v1;
use super::{Compiled, VersionedPre};
use crate::boundary::Boundary;
use crate::error::{SandboxError, TrapKind};
use crate::fairness::{Account, Lease, Reclaim};
use crate::host::Caller;
use crate::runtime::{CallOptions, Health, HookCall, HookResponse, Plugin, ResourceStats};
use crate::stats::HealthState;

use super::engine::Engines;

/// What a plugin's manifest asks of each call.
#[derive(Debug, Clone, Copy)]
struct CallLimits {
    timeout: Duration,
    memory: u64,
    fuel: Option<u64>,
    isolation: Isolation,
    max_instances: u32,
    wait_timeout: Duration,
    /// The largest answer of one call (`limits.max_output`).
    answer: u64,
    /// The most bytes one transfer from the guest may carry (the store's
    /// hostcall fuel).
    transfer: usize,
    /// The longest error message kept.
    max_message: usize,
}

/// The config (and restored state) every instance must have seen before it
/// serves a call. Instances remember the generation they were set up with;
/// a stale instance is brought up to date (activate, or configure, then
/// restore) before its next call.
struct Setup {
    generation: u64,
    config: String,
    restored: Option<(u64, Arc<[u8]>)>,
}

/// One instance and its store.
struct Instance {
    store: Store<StoreData>,
    /// Its place under the fairness caps, given back when it is dropped.
    _lease: Lease,
    bindings: Bindings,
    generation: u64,
    activated: bool,
    restored: u64,
}

enum Bindings {
    V1(v1::Bindings),
}

/// One thing to do in an instance.
#[derive(Clone, Copy)]
enum Op<'a> {
    /// Nothing beyond bringing the instance up to date.
    Sync,
    Deactivate,
    Hook(&'a HookCall<'a>),
    Call {
        function: &'a str,
        input: &'a [u8],
    },
    Snapshot,
}

impl Op<'_> {
    /// Whose answer this is, for errors (`its answer to handle-hook`…).
    fn what(&self) -> String {
        match self {
            Op::Sync => "its `activate`/`configure`".to_owned(),
            Op::Deactivate => "its `deactivate`".to_owned(),
            Op::Hook(call) => format!("its `handle-hook` ({})", call.hook),
            Op::Call { function, .. } => format!("its `call` ({function})"),
            Op::Snapshot => "its `snapshot`".to_owned(),
        }
    }
}

/// Whether `error` is wasmtime refusing to lift more than the store's
/// hostcall fuel allows (its error type is private: known by its text).
fn hostcall_fuel_exhausted(error: &wasmtime::Error) -> bool {
    error.chain().any(|e| {
        e.to_string()
            .contains("fuel allocated for hostcalls has been exhausted")
    })
}

enum Done {
    Unit,
    Hook(HookResponse),
    Bytes(Vec<u8>),
    Snapshot(Option<Vec<u8>>),
}

/// A guest's own error (`plugin-error`), or a trap.
enum Failure {
    Guest { code: String, message: String },
    Trap(wasmtime::Error),
}

impl From<wasmtime::Error> for Failure {
    fn from(e: wasmtime::Error) -> Self {
        Self::Trap(e)
    }
}

fn guest<T>(result: Result<T, v1::PluginError>) -> Result<T, Failure> {
    result.map_err(|e| Failure::Guest {
        code: e.code,
        message: e.message,
    })
}

/// A component plugin loaded by [`super::ComponentRuntime`].
///
/// With `isolation = "reuse"`, calls share a pool of at most
/// `limits.max_instances` warm instances; with `"fresh"`, every call gets a
/// new instance (and at most `max_instances` calls run at once). Either way a
/// call waits at most `limits.wait_timeout` for its turn, then fails with
/// [`SandboxError::Busy`]. Every instance is activated with the current
/// config before its first call — in `fresh` mode, that means once per call
/// — and `deactivate` runs on the warm instances at [`Plugin::stop`] (fresh
/// instances are discarded after their call without it).
pub struct ComponentPlugin {
    engines: Arc<Engines>,
    compiled: Arc<Compiled>,
    source: LoadSource,
    boundary: Arc<Boundary>,
    limits: CallLimits,
    preopens: Arc<[Preopen]>,
    health: HealthState,
    running: AtomicBool,
    permits: Semaphore,
    idle: Mutex<Vec<Instance>>,
    setup: Mutex<Arc<Setup>>,
    generation: AtomicU64,
    /// Its account with the runtime's fairness ledger.
    account: Account,
}

impl std::fmt::Debug for ComponentPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentPlugin")
            .field("plugin", &self.boundary.caller().plugin)
            .field("version", &self.compiled.version)
            .field("source", &self.source)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl ComponentPlugin {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        engines: Arc<Engines>,
        compiled: Arc<Compiled>,
        source: LoadSource,
        boundary: Arc<Boundary>,
        limits: &Limits,
        answer: u64,
        preopens: Vec<Preopen>,
        account: Account,
    ) -> Self {
        let config = boundary.config();
        let limits = CallLimits {
            timeout: limits.timeout.get(),
            memory: limits.memory.bytes(),
            fuel: limits.fuel,
            isolation: limits.isolation,
            max_instances: limits.max_instances.max(1),
            wait_timeout: limits.wait_timeout.get(),
            answer,
            transfer: crate::limits::transfer_limit(config, answer),
            max_message: config.max_error_message,
        };
        Self {
            engines,
            compiled,
            source,
            boundary,
            preopens: preopens.into(),
            health: HealthState::default(),
            running: AtomicBool::new(false),
            permits: Semaphore::new(limits.max_instances as usize),
            idle: Mutex::new(Vec::new()),
            setup: Mutex::new(Arc::new(Setup {
                generation: 1,
                config: "{}".to_owned(),
                restored: None,
            })),
            generation: AtomicU64::new(1),
            limits,
            account,
        }
    }

    /// Where the compiled code came from when this plugin was loaded.
    pub fn load_source(&self) -> LoadSource {
        self.source
    }

    /// The `tenon:plugin` version the component was built for.
    pub fn api_version(&self) -> &tenon_manifest::Version {
        &self.compiled.version
    }

    /// The allocator its instances come from.
    pub fn allocator(&self) -> AllocatorKind {
        self.compiled.engine.allocator
    }

    /// Warm instances waiting in the pool now.
    pub fn idle_instances(&self) -> usize {
        self.idle.lock().len()
    }

    fn name(&self) -> &str {
        self.boundary.caller().plugin.as_str()
    }

    /// Waits up to `wait_timeout` for a permit (after `try_acquire` found
    /// none).
    async fn wait_for_permit(&self) -> Result<SemaphorePermit<'_>, SandboxError> {
        let busy = || SandboxError::Busy {
            plugin: self.name().to_owned(),
            waited: self.limits.wait_timeout,
            max_instances: self.limits.max_instances,
        };
        match tokio::time::timeout(self.limits.wait_timeout, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }

    async fn new_instance(&self) -> Result<Instance, SandboxError> {
        let lease = self.account.lease(self.name(), self.limits.memory)?;
        let data = StoreData::new(self.boundary.clone(), self.limits.memory, &self.preopens)
            .map_err(|message| SandboxError::Host {
                plugin: self.name().to_owned(),
                message,
            })?;
        let mut store = Store::new(&self.compiled.engine.engine, data);
        store.limiter(|data| &mut data.limiter);
        // Every string and list the guest hands over (an answer, a host
        // call's arguments) is refused before it is lifted when larger.
        store.set_hostcall_fuel(self.limits.transfer);
        store.epoch_deadline_callback(|mut cx| {
            let data = cx.data_mut();
            if Instant::now() >= data.deadline {
                data.timed_out = true;
                return Err(Trap::Interrupt.into());
            }
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        // Instantiation runs the component's start functions: bound it too.
        arm(
            &mut store,
            self.limits.fuel,
            Instant::now() + self.limits.timeout,
        );
        let bindings = match &self.compiled.pre {
            VersionedPre::V1(pre) => pre.instantiate(&mut store).await.map(Bindings::V1),
        };
        match bindings {
            Ok(bindings) => Ok(Instance {
                store,
                _lease: lease,
                bindings,
                generation: 0,
                activated: false,
                restored: 0,
            }),
            Err(e) => Err(self.trap_error(&mut store, e, self.limits.timeout, None, "its start")),
        }
    }

    /// Runs `op` in an instance, with the call's deadline.
    async fn run(&self, op: Op<'_>, options: CallOptions) -> Result<Done, SandboxError> {
        if !self.running.load(Ordering::Acquire) {
            return Err(SandboxError::NotRunning {
                plugin: self.name().to_owned(),
            });
        }
        let started = Instant::now();
        let result = self.run_inner(op, options, started).await;
        self.boundary
            .stats()
            .record_call(started.elapsed(), result.is_ok());
        if let Err(e) = &result {
            self.health.failed(e);
        }
        result
    }

    async fn run_inner(
        &self,
        op: Op<'_>,
        options: CallOptions,
        started: Instant,
    ) -> Result<Done, SandboxError> {
        let timeout = options
            .timeout
            .map_or(self.limits.timeout, |t| t.min(self.limits.timeout));
        // The timeout counts from when the call gets its instance: a call
        // that had to wait for a permit reads the clock again.
        let (_permit, start) = match self.permits.try_acquire() {
            Ok(permit) => (permit, started),
            Err(_) => (self.wait_for_permit().await?, Instant::now()),
        };
        let deadline = start + timeout;
        let tokio_deadline = tokio::time::Instant::now() + timeout;
        let label = op;
        let reuse = self.limits.isolation == Isolation::Reuse;
        let pooled = if reuse { self.idle.lock().pop() } else { None };
        let mut instance = match pooled {
            Some(instance) => instance,
            None => self.new_instance().await?,
        };
        instance
            .store
            .data_mut()
            .call
            .reset_caused(tokio_deadline, options.cause);
        instance.store.data_mut().deadline = deadline;
        arm(&mut instance.store, self.limits.fuel, deadline);
        // A backstop for host calls that ignore the deadline: the epoch
        // stops wasm code, this stops everything else.
        let backstop = tokio_deadline + engines_tick(&self.engines) * 2;
        let outcome = {
            let exec = std::pin::pin!(self.exec(&mut instance, op));
            Backstop {
                future: exec,
                deadline: backstop,
                sleep: None,
            }
            .await
        };
        let fuel_left = self
            .limits
            .fuel
            .and_then(|_| instance.store.get_fuel().ok());
        if let (Some(fuel), Some(left)) = (self.limits.fuel, fuel_left) {
            self.boundary.stats().add_fuel(fuel.saturating_sub(left));
        }
        let logged_panic = instance.store.data_mut().panic.take();
        let panic = instance
            .store
            .data()
            .output
            .take()
            .and_then(|out| flush_output(&self.boundary, &instance.store.data().call, out))
            .or(logged_panic);
        match outcome {
            Ok(Ok(done)) => {
                self.release(instance);
                self.check_answer(&done, label)?;
                Ok(done)
            }
            Ok(Err(Failure::Guest { code, message })) => {
                let denial = instance.store.data().call.take_denial();
                self.release(instance);
                let code = crate::limits::cut_owned(code, crate::limits::MAX_ERROR_CODE);
                let message = crate::limits::cut_owned(message, self.limits.max_message);
                Err(match denial {
                    Some(denial) => SandboxError::PermissionDenied {
                        plugin: self.name().to_owned(),
                        permission: denial.permission,
                        detail: format!(
                            "{} ({}); the plugin then failed: {code}: {message}",
                            denial.attempted, denial.reason
                        ),
                    },
                    None => SandboxError::Plugin {
                        plugin: self.name().to_owned(),
                        code,
                        message,
                    },
                })
            }
            Ok(Err(Failure::Trap(e))) => {
                Err(self.trap_error(&mut instance.store, e, timeout, panic, &label.what()))
            }
            Err(_elapsed) => Err(SandboxError::Timeout {
                plugin: self.name().to_owned(),
                after: timeout,
            }),
        }
    }

    /// Refuses an answer larger than `limits.max_output`.
    fn check_answer(&self, done: &Done, op: Op<'_>) -> Result<(), SandboxError> {
        let len = match done {
            Done::Unit | Done::Snapshot(None) => return Ok(()),
            Done::Hook(HookResponse::Continue { patch }) => patch.as_ref().map_or(0, String::len),
            Done::Hook(HookResponse::Block { reason }) => reason.as_ref().map_or(0, String::len),
            Done::Bytes(bytes) | Done::Snapshot(Some(bytes)) => bytes.len(),
        };
        crate::limits::check_answer(
            self.name(),
            || format!("{} answer", op.what()),
            len,
            self.limits.answer,
        )
    }

    /// Returns a healthy instance to the pool (or drops it).
    fn release(&self, instance: Instance) {
        if self.limits.isolation == Isolation::Reuse && self.running.load(Ordering::Acquire) {
            let mut idle = self.idle.lock();
            if idle.len() < self.limits.max_instances as usize {
                idle.push(instance);
            }
        }
    }

    async fn exec(&self, instance: &mut Instance, op: Op<'_>) -> Result<Done, Failure> {
        self.bring_up_to_date(instance).await?;
        let Instance {
            store, bindings, ..
        } = instance;
        let Bindings::V1(b) = bindings;
        match op {
            Op::Sync => Ok(Done::Unit),
            Op::Deactivate => guest(b.deactivate(store).await?).map(|()| Done::Unit),
            Op::Hook(call) => guest(
                b.handle_hook(store, call.hook, call.context, call.data)
                    .await?,
            )
            .map(Done::Hook),
            Op::Call { function, input } => {
                guest(b.call(store, function, input).await?).map(Done::Bytes)
            }
            Op::Snapshot => guest(b.snapshot(store).await?).map(Done::Snapshot),
        }
    }

    async fn bring_up_to_date(&self, instance: &mut Instance) -> Result<(), Failure> {
        if instance.generation == self.generation.load(Ordering::Acquire) {
            return Ok(());
        }
        let setup = self.setup.lock().clone();
        let Instance {
            store,
            bindings: Bindings::V1(b),
            ..
        } = instance;
        if instance.activated {
            guest(b.configure(store, &setup.config).await?)?;
        } else {
            guest(b.activate(store, &setup.config).await?)?;
            instance.activated = true;
        }
        if let Some((id, blob)) = &setup.restored
            && instance.restored != *id
        {
            if let Some(result) = b.restore(store, blob).await? {
                guest(result)?;
            }
            instance.restored = *id;
        }
        instance.generation = setup.generation;
        Ok(())
    }

    /// Maps a wasmtime error (trap, timeout, memory) to a [`SandboxError`].
    fn trap_error(
        &self,
        store: &mut Store<StoreData>,
        error: wasmtime::Error,
        timeout: Duration,
        panic: Option<String>,
        what: &str,
    ) -> SandboxError {
        let plugin = self.name().to_owned();
        if hostcall_fuel_exhausted(&error) {
            // Refused before a byte of it was copied: a backtrace means the
            // guest was calling the host, otherwise it was answering.
            let what = if error.downcast_ref::<wasmtime::WasmBacktrace>().is_some() {
                format!("a host call made during {what}: its arguments are")
            } else {
                format!("{what} answer")
            };
            return SandboxError::OutputTooLarge {
                plugin,
                what,
                size: None,
                limit: self.limits.transfer as u64,
            };
        }
        let data = store.data();
        if data.timed_out {
            return SandboxError::Timeout {
                plugin,
                after: timeout,
            };
        }
        if data.limiter.exceeded {
            return SandboxError::OutOfMemory {
                plugin,
                limit: data.limiter.limit(),
            };
        }
        let trap = error.downcast_ref::<Trap>().copied();
        let kind = match trap {
            Some(Trap::Interrupt) => {
                return SandboxError::Timeout {
                    plugin,
                    after: timeout,
                };
            }
            Some(Trap::StackOverflow) => TrapKind::StackOverflow,
            Some(Trap::OutOfFuel) => TrapKind::OutOfFuel,
            Some(Trap::UnreachableCodeReached) => TrapKind::Unreachable,
            Some(
                Trap::MemoryOutOfBounds
                | Trap::HeapMisaligned
                | Trap::TableOutOfBounds
                | Trap::IndirectCallToNull,
            ) => TrapKind::MemoryOutOfBounds,
            Some(
                Trap::IntegerDivisionByZero | Trap::IntegerOverflow | Trap::BadConversionToInteger,
            ) => TrapKind::Arithmetic,
            _ => TrapKind::Other,
        };
        if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return SandboxError::Trap {
                plugin,
                kind: TrapKind::Other,
                message: format!("the plugin exited with status {}", exit.0),
            };
        }
        let detail = match trap {
            Some(trap) => trap.to_string(),
            None => format!("{error:#}"),
        };
        let message = match panic {
            Some(panic) => format!("{panic}; {detail}"),
            None => detail,
        };
        SandboxError::Trap {
            plugin,
            kind,
            message: crate::limits::cut_owned(message, self.limits.max_message),
        }
    }

    fn set_config(&self, config: &serde_json::Value, restored: Option<Arc<[u8]>>) {
        let mut setup = self.setup.lock();
        let generation = setup.generation + 1;
        let restored = match restored {
            Some(blob) => Some((generation, blob)),
            None => setup.restored.clone(),
        };
        *setup = Arc::new(Setup {
            generation,
            config: config.to_string(),
            restored,
        });
        self.generation.store(generation, Ordering::Release);
    }

    fn current_config(&self) -> serde_json::Value {
        serde_json::from_str(&self.setup.lock().config).unwrap_or_default()
    }
}

impl Reclaim for ComponentPlugin {
    fn reclaim_idle(&self) -> bool {
        // Dropped once the pool's lock is released.
        let instance = self.idle.lock().pop();
        instance.is_some()
    }
}

/// `future`, or `Err(Elapsed)` once `deadline` has passed. Unlike
/// `tokio::time::timeout_at`, it creates its timer only when `future` does
/// not finish on its first poll: most guest calls never wait on the host, so
/// they never touch the timer wheel.
struct Backstop<'a, F> {
    future: Pin<&'a mut F>,
    deadline: tokio::time::Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The backstop's deadline passed before the call ended.
struct Elapsed;

impl<F: Future> Future for Backstop<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(output) = this.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Sets a call's deadline and fuel on `store`.
fn arm(store: &mut Store<StoreData>, fuel: Option<u64>, deadline: Instant) {
    let data = store.data_mut();
    data.deadline = deadline;
    data.timed_out = false;
    data.panic = None;
    // The callback runs at the next tick: it yields, or stops the call once
    // its deadline has passed.
    store.set_epoch_deadline(1);
    if let Some(fuel) = fuel {
        // Fails only when fuel is off, which the engine choice rules out.
        let _ = store.set_fuel(fuel);
    }
}

#[async_trait]
impl Plugin for ComponentPlugin {
    fn caller(&self) -> &Arc<Caller> {
        self.boundary.caller()
    }

    async fn start(&self, config: &serde_json::Value) -> Result<(), SandboxError> {
        self.set_config(config, None);
        self.idle.lock().clear();
        self.running.store(true, Ordering::Release);
        match self.run(Op::Sync, CallOptions::default()).await {
            Ok(_) => {
                self.health.started();
                Ok(())
            }
            Err(e) => {
                self.running.store(false, Ordering::Release);
                self.idle.lock().clear();
                Err(e)
            }
        }
    }

    async fn configure(&self, config: &serde_json::Value) -> Result<(), SandboxError> {
        if !self.running.load(Ordering::Acquire) {
            return Err(SandboxError::NotRunning {
                plugin: self.name().to_owned(),
            });
        }
        self.set_config(config, None);
        self.run(Op::Sync, CallOptions::default()).await.map(|_| ())
    }

    async fn handle_hook(&self, call: HookCall<'_>) -> Result<HookResponse, SandboxError> {
        let options = call.options.clone();
        match self.run(Op::Hook(&call), options).await? {
            Done::Hook(response) => Ok(response),
            _ => unreachable!("a hook op answers with a hook response"),
        }
    }

    async fn call(
        &self,
        function: &str,
        input: &[u8],
        options: CallOptions,
    ) -> Result<Vec<u8>, SandboxError> {
        match self.run(Op::Call { function, input }, options).await? {
            Done::Bytes(bytes) => Ok(bytes),
            _ => unreachable!("a call op answers with bytes"),
        }
    }

    async fn snapshot(&self) -> Result<Option<Vec<u8>>, SandboxError> {
        match self.run(Op::Snapshot, CallOptions::default()).await? {
            Done::Snapshot(state) => Ok(state),
            _ => unreachable!("a snapshot op answers with state"),
        }
    }

    async fn restore(&self, state: &[u8]) -> Result<(), SandboxError> {
        let VersionedPre::V1(pre) = &self.compiled.pre;
        if !pre.has_state() {
            return Err(SandboxError::MissingExport {
                plugin: self.name().to_owned(),
                export: v1::STATE_EXPORT.to_owned(),
            });
        }
        if !self.running.load(Ordering::Acquire) {
            return Err(SandboxError::NotRunning {
                plugin: self.name().to_owned(),
            });
        }
        let config = self.current_config();
        self.set_config(&config, Some(Arc::from(state)));
        self.run(Op::Sync, CallOptions::default()).await.map(|_| ())
    }

    async fn stop(&self) -> Result<(), SandboxError> {
        if !self.running.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        self.health.stopped();
        let instances = std::mem::take(&mut *self.idle.lock());
        let mut first_error = None;
        for mut instance in instances {
            let deadline = Instant::now() + self.limits.timeout;
            instance
                .store
                .data_mut()
                .call
                .reset(tokio::time::Instant::now() + self.limits.timeout);
            arm(&mut instance.store, self.limits.fuel, deadline);
            let result = self.exec(&mut instance, Op::Deactivate).await;
            if let Some(out) = instance.store.data().output.take() {
                flush_output(&self.boundary, &instance.store.data().call, out);
            }
            let error = match result {
                Ok(_) => None,
                Err(Failure::Guest { code, message }) => Some(SandboxError::Plugin {
                    plugin: self.name().to_owned(),
                    code: crate::limits::cut_owned(code, crate::limits::MAX_ERROR_CODE),
                    message: crate::limits::cut_owned(message, self.limits.max_message),
                }),
                Err(Failure::Trap(e)) => Some(self.trap_error(
                    &mut instance.store,
                    e,
                    self.limits.timeout,
                    None,
                    "its `deactivate`",
                )),
            };
            if first_error.is_none() {
                first_error = error;
            }
        }
        match first_error {
            Some(e) => {
                self.health.failed(&e);
                Err(e)
            }
            None => Ok(()),
        }
    }

    fn health(&self) -> Health {
        self.health.health()
    }

    fn stats(&self) -> ResourceStats {
        ResourceStats {
            instances_pooled: self.idle_instances() as u64,
            ..self.boundary.stats().snapshot()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::time::Duration;

    use super::Backstop;

    fn backstop<F: Future>(future: std::pin::Pin<&mut F>, after: Duration) -> Backstop<'_, F> {
        Backstop {
            future,
            deadline: tokio::time::Instant::now() + after,
            sleep: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_ends_is_cut_off_at_the_deadline() {
        let started = tokio::time::Instant::now();
        let future = std::pin::pin!(std::future::pending::<()>());
        let outcome = backstop(future, Duration::from_millis(30)).await;
        assert!(outcome.is_err());
        assert_eq!(started.elapsed(), Duration::from_millis(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_ends_in_time_keeps_its_output() {
        let future = std::pin::pin!(async { 7 });
        let mut first = backstop(future, Duration::from_millis(30));
        let polled = futures::poll!(&mut first);
        assert!(matches!(polled, std::task::Poll::Ready(Ok(7))));
        // Finished on its first poll: no timer was made.
        assert!(first.sleep.is_none());

        let future = std::pin::pin!(async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            8
        });
        let outcome = backstop(future, Duration::from_millis(30)).await;
        assert!(matches!(outcome, Ok(8)));
    }
}
