//! A loaded Extism plugin: the [`Plugin`] contract over a pool of Extism
//! instances.

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use tenon_manifest::Isolation;
use tenon_types::Causation;
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::error::SandboxError;
use crate::fairness::{Account, Fairness, Lease, Reclaim};
use crate::host::Caller;
use crate::runtime::{
    CallOptions, EndpointRequest, EndpointResponse, Health, HookCall, HookResponse, Plugin,
    ResourceStats,
};
use crate::stats::{HealthState, PluginStats};

use super::CallThreading;
use super::abi::{Ended, HostSide};
use super::engines::{Engine, EngineSet};
use super::errors::{self, Circumstances};
use super::module::{self, ModuleInfo};
use super::pool::{BoxedSlot, Instance, Pool, Slot};
use super::protocol;
use super::threads::Lane;

/// The limits a plugin runs under, from its manifest.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) timeout: Duration,
    pub(super) memory_limit: u64,
    pub(super) isolation: Isolation,
    /// The largest answer of one call (`limits.max_output`).
    pub(super) answer: u64,
}

/// What a loaded plugin is made of.
pub(super) struct Parts {
    pub(super) name: String,
    pub(super) caller: Arc<Caller>,
    pub(super) host: Arc<HostSide>,
    pub(super) engines: Arc<EngineSet>,
    pub(super) threading: CallThreading,
    /// Its lane on the runtime's plugin-call threads.
    pub(super) calls: Lane,
    pub(super) info: ModuleInfo,
    pub(super) limits: Limits,
    pub(super) pool: Pool,
}

/// A loaded Extism plugin. Cheap to clone; clones share everything.
#[derive(Clone)]
pub(super) struct ExtismPlugin {
    inner: Arc<Inner>,
}

struct Inner {
    parts: Parts,
    stats: Arc<PluginStats>,
    health: HealthState,
    /// Bumped by every stop; see [`Instance::run`].
    run: AtomicU64,
    /// What instances must be set up with; see [`Setup`].
    setup: Mutex<Setup>,
    /// `Setup::generation`, readable without the lock on the hot path.
    generation: AtomicU64,
    /// Its account with the runtime's fairness ledger.
    account: Account,
}

/// The config and restored state every instance gets before its first call,
/// and again after each change.
#[derive(Debug, Clone, Default)]
struct Setup {
    /// Bumped on start, configure and restore; 0 before the first start.
    generation: u64,
    /// The generation that set `config`.
    config_generation: u64,
    config: Arc<serde_json::Value>,
    /// The state last restored, with the generation that restored it.
    restored: Option<(u64, Arc<[u8]>)>,
}

/// Where a call runs (see [`CallThreading`]).
enum Mode {
    /// On the caller's thread (see [`Here`]).
    Here(Here),
    /// Off the caller's thread (see [`Offload`]).
    Off(Offload),
}

/// How a call runs on the caller's thread.
enum Here {
    /// As it is; host functions wait through the handle.
    Inline(Option<Handle>),
    /// Inside `block_in_place`.
    BlockInPlace(Handle),
}

/// Where a call runs when it leaves the caller's thread; host functions
/// wait through the handle.
enum Offload {
    /// On the runtime's plugin-call threads.
    Threads(Option<Handle>),
    /// On Tokio's blocking pool.
    Blocking(Handle),
}

/// A slot on its way to another thread, with the right to run it when the
/// call holds one: that thread gives both back to the pool when the call
/// has really ended, even if the caller stopped waiting long before.
struct Running {
    owner: Arc<Inner>,
    slot: Option<BoxedSlot>,
    /// Whether the right to run goes back to the pool on drop (a call), or
    /// the slot goes back to the caller (a slot drained by `stop`).
    holds_right: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.holds_right {
            self.owner.parts.pool.release(self.slot.take());
        }
    }
}

/// What to run on an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// An export of the plugin, by name ([`Job::function`]).
    Export,
    /// Nothing: bring an instance up to date (activate, configure,
    /// restore), building one when needed.
    Settle,
    /// `deactivate` on the slot's existing instance, if any.
    Deactivate,
}

/// One call of an export on an instance: the job's own, or a setup step
/// (activate, configure, restore, deactivate), whose events start chains.
#[derive(Clone, Copy)]
struct Invocation<'a> {
    function: &'a str,
    input: &'a [u8],
    /// What led to the events it publishes (`None`: they start chains).
    cause: Option<&'a Causation>,
}

impl<'a> Invocation<'a> {
    fn setup(function: &'a str, input: &'a [u8]) -> Self {
        Self {
            function,
            input,
            cause: None,
        }
    }
}

/// One export to call, with its input.
struct Job<'a> {
    target: Target,
    function: Cow<'a, str>,
    input: Cow<'a, [u8]>,
    timeout: Duration,
    /// When the job starts running: its deadline is `timeout` after that.
    started: Instant,
    /// The causation of the events the export publishes.
    cause: Causation,
}

impl<'a> Job<'a> {
    fn export(
        function: impl Into<Cow<'a, str>>,
        input: impl Into<Cow<'a, [u8]>>,
        timeout: Duration,
        started: Instant,
    ) -> Self {
        Self {
            target: Target::Export,
            function: function.into(),
            input: input.into(),
            timeout,
            started,
            cause: Causation::default(),
        }
    }

    /// The same job, its events continuing the chain `cause`.
    fn caused(self, cause: Causation) -> Self {
        Self { cause, ..self }
    }

    fn lifecycle(target: Target, timeout: Duration) -> Self {
        Self {
            target,
            function: Cow::Borrowed(""),
            input: Cow::Borrowed(&[]),
            timeout,
            started: Instant::now(),
            cause: Causation::default(),
        }
    }

    fn into_owned(self) -> Job<'static> {
        Job {
            target: self.target,
            function: Cow::Owned(self.function.into_owned()),
            input: Cow::Owned(self.input.into_owned()),
            timeout: self.timeout,
            started: self.started,
            cause: self.cause,
        }
    }
}

impl ExtismPlugin {
    pub(super) fn new(parts: Parts, fairness: &Fairness) -> Self {
        let stats = parts.host.boundary.stats().clone();
        let tenant = parts.caller.tenant.clone();
        Self {
            inner: Arc::new_cyclic(|inner: &std::sync::Weak<Inner>| {
                let reclaim: std::sync::Weak<dyn Reclaim> = inner.clone();
                Inner {
                    parts,
                    stats,
                    health: HealthState::default(),
                    run: AtomicU64::new(0),
                    setup: Mutex::new(Setup::default()),
                    generation: AtomicU64::new(0),
                    account: fairness.register(&tenant, reclaim),
                }
            }),
        }
    }

    /// A lease for one more instance where the fairness caps leave room now,
    /// without reclaiming any other plugin's.
    pub(super) fn try_lease(&self) -> Option<Lease> {
        self.inner
            .account
            .try_lease(self.inner.parts.limits.memory_limit)
    }

    /// Puts the slot made at load (with the instance that proved the module
    /// links) in the pool.
    pub(super) fn adopt(&self, slot: BoxedSlot) {
        if slot.instance.is_some() {
            self.inner.stats.instance_created();
        }
        self.inner.parts.pool.adopt(slot);
    }

    fn name(&self) -> &str {
        &self.inner.parts.name
    }

    /// The effective timeout of a call with `options`.
    fn timeout(&self, options: &CallOptions) -> Duration {
        let limit = self.inner.parts.limits.timeout;
        options.timeout.map_or(limit, |t| t.min(limit))
    }

    fn not_running(&self) -> SandboxError {
        SandboxError::NotRunning {
            plugin: self.name().to_owned(),
        }
    }

    /// Counts a finished call and remembers its error.
    fn record<T>(
        &self,
        started: Instant,
        result: Result<T, SandboxError>,
    ) -> Result<T, SandboxError> {
        self.inner
            .stats
            .record_call(started.elapsed(), result.is_ok());
        if let Err(error) = &result {
            self.inner.health.failed(error);
        }
        result
    }

    /// Runs a job on a pooled slot.
    async fn execute(&self, mut job: Job<'_>) -> Result<Vec<u8>, SandboxError> {
        let parts = &self.inner.parts;
        let mut checkout = match parts.pool.try_checkout() {
            Some(checkout) => checkout,
            None => {
                // Boxed: the wait's state stays out of the fast path's future.
                let checkout =
                    Box::pin(parts.pool.wait())
                        .await
                        .map_err(|waited| SandboxError::Busy {
                            plugin: parts.name.clone(),
                            waited,
                            max_instances: parts.pool.max_instances,
                        })?;
                // The deadline counts from when the call runs.
                job.started = Instant::now();
                checkout
            }
        };
        match self.inner.mode()? {
            Mode::Off(offload) => {
                let running = Running {
                    owner: self.inner.clone(),
                    slot: checkout.detach(),
                    holds_right: true,
                };
                // Boxed: the hop's state stays out of the inline path's future.
                Box::pin(self.run_off(running, job, offload)).await.1
            }
            Mode::Here(here) => {
                let (slot, result) = self.inner.run_here(here, checkout.slot.take(), &job);
                checkout.finish(slot);
                result
            }
        }
    }

    /// Runs `job` on `slot`, a slot that holds no right to run (drained by
    /// `stop`), where the calling runtime allows blocking; returns the slot
    /// if it may be used again.
    async fn run_drained(
        &self,
        slot: BoxedSlot,
        job: Job<'_>,
    ) -> (Option<BoxedSlot>, Result<Vec<u8>, SandboxError>) {
        match self.inner.mode() {
            Ok(Mode::Off(offload)) => {
                let running = Running {
                    owner: self.inner.clone(),
                    slot: Some(slot),
                    holds_right: false,
                };
                Box::pin(self.run_off(running, job, offload)).await
            }
            Ok(Mode::Here(here)) => self.inner.run_here(here, Some(slot), &job),
            Err(error) => (Some(slot), Err(error)),
        }
    }

    /// Runs `job` on another thread. The call goes on there if this future
    /// is dropped; `running` is dropped (and its right to run given back)
    /// only when it ends.
    async fn run_off(
        &self,
        running: Running,
        job: Job<'_>,
        offload: Offload,
    ) -> (Option<BoxedSlot>, Result<Vec<u8>, SandboxError>) {
        let job = job.into_owned();
        let bridge = match &offload {
            Offload::Threads(bridge) => bridge.clone(),
            Offload::Blocking(handle) => Some(handle.clone()),
        };
        let work = move || {
            let mut running = running;
            // What `spawn_blocking` threads have: the runtime as context
            // (wasmtime's WASI blocks on it).
            let _context = bridge.as_ref().map(Handle::enter);
            let result = running.owner.run(&mut running.slot, &job, bridge.clone());
            let slot = if running.holds_right {
                // Back to the pool, with the right, as `running` drops.
                None
            } else {
                running.slot.take()
            };
            (slot, result)
        };
        let ran = match offload {
            Offload::Threads(_) => self.inner.parts.calls.run(work).await,
            Offload::Blocking(handle) => {
                handle.spawn_blocking(work).await.map_err(|e| e.to_string())
            }
        };
        ran.unwrap_or_else(|message| {
            (
                None,
                Err(SandboxError::Host {
                    plugin: self.inner.parts.name.clone(),
                    message: format!("the call's thread failed: {message}"),
                }),
            )
        })
    }

    /// Brings one instance up to date (`activate`, `configure`, `restore`)
    /// now, so that their errors reach the caller.
    async fn settle(&self) -> Result<(), SandboxError> {
        let started = Instant::now();
        let job = Job::lifecycle(Target::Settle, self.inner.parts.limits.timeout);
        let result = self.execute(job).await.map(drop);
        self.record(started, result)
    }

    /// Changes what instances are set up with.
    fn change_setup(&self, change: impl FnOnce(&mut Setup)) -> Setup {
        let mut setup = self.inner.setup.lock();
        let before = setup.clone();
        setup.generation += 1;
        change(&mut setup);
        self.inner
            .generation
            .store(setup.generation, Ordering::Release);
        before
    }

    fn set_config(&self, config: &Arc<serde_json::Value>) -> Setup {
        self.inner.parts.host.set_config(config);
        let config = config.clone();
        self.change_setup(|setup| {
            setup.config = config;
            setup.config_generation = setup.generation;
        })
    }
}

impl Reclaim for Inner {
    fn reclaim_idle(&self) -> bool {
        match self.parts.pool.reclaim_idle() {
            Some(instance) => {
                drop(instance);
                self.stats.instance_dropped();
                true
            }
            None => false,
        }
    }
}

impl Drop for Inner {
    /// Hands the idle engines back for the next load of the same module.
    fn drop(&mut self) {
        for slot in self.parts.pool.take_idle() {
            self.parts.engines.give_back(slot.engine);
        }
    }
}

impl ExtismPlugin {
    /// Whether `function` may be called through [`Plugin::call`] now.
    fn callable(&self, function: &str) -> Result<(), SandboxError> {
        if !self.inner.health.is_ready() {
            return Err(self.not_running());
        }
        if module::LIFECYCLE.contains(&function) {
            return Err(SandboxError::Unsupported {
                plugin: self.name().to_owned(),
                message: format!(
                    "`{function}` is a lifecycle export; the runtime calls it (start, \
                     configure, stop, snapshot, restore)"
                ),
            });
        }
        if !self.inner.parts.info.exports(function) {
            // What a component plugin's `call` answers for a name it does
            // not know: the same error whatever the runtime.
            return Err(SandboxError::Plugin {
                plugin: self.name().to_owned(),
                code: "unknown-function".to_owned(),
                message: format!("this plugin has no function `{function}`"),
            });
        }
        Ok(())
    }
}

impl Inner {
    /// Decides where this call runs, from the runtime it came from.
    fn mode(&self) -> Result<Mode, SandboxError> {
        let info = &self.parts.info;
        // wasmtime-wasi's synchronous WASI functions block on the ambient
        // Tokio runtime, which is not allowed on a runtime thread.
        let wasi = info.uses_wasi;
        let waits = wasi || info.needs_async_host;
        match self.parts.threading {
            CallThreading::Dedicated => {
                let handle = Handle::try_current().ok();
                if handle.is_none() && waits {
                    return Err(self.outside_tokio());
                }
                return Ok(Mode::Off(Offload::Threads(handle)));
            }
            // Nothing in the call waits for Tokio: run it right here.
            CallThreading::Inline if !waits => return Ok(Mode::Here(Here::Inline(None))),
            _ => {}
        }
        let handle = Handle::try_current().map_err(|_| self.outside_tokio())?;
        Ok(match handle.runtime_flavor() {
            RuntimeFlavor::MultiThread => match self.parts.threading {
                CallThreading::Inline if wasi => Mode::Here(Here::BlockInPlace(handle)),
                CallThreading::Inline | CallThreading::Dedicated => {
                    Mode::Here(Here::Inline(Some(handle)))
                }
                CallThreading::BlockInPlace => Mode::Here(Here::BlockInPlace(handle)),
                CallThreading::SpawnBlocking => Mode::Off(Offload::Blocking(handle)),
            },
            // A current-thread runtime cannot serve the host's async requests
            // while its only thread runs the plugin: plugins that make them
            // (or use WASI) run on the blocking pool, the others inline.
            _ if waits => Mode::Off(Offload::Blocking(handle)),
            _ => Mode::Here(Here::Inline(None)),
        })
    }

    fn outside_tokio(&self) -> SandboxError {
        SandboxError::Host {
            plugin: self.parts.name.clone(),
            message: "Extism plugins must be called from within a Tokio runtime".to_owned(),
        }
    }

    /// Runs `job` on `slot` on this thread; returns the slot if it may be
    /// used again.
    fn run_here(
        &self,
        here: Here,
        mut slot: Option<BoxedSlot>,
        job: &Job<'_>,
    ) -> (Option<BoxedSlot>, Result<Vec<u8>, SandboxError>) {
        let result = match here {
            Here::Inline(bridge) => self.run(&mut slot, job, bridge),
            Here::BlockInPlace(handle) => {
                tokio::task::block_in_place(|| self.run(&mut slot, job, Some(handle)))
            }
        };
        (slot, result)
    }

    /// Runs `job` on `slot` (building the slot's engine or instance when
    /// missing), then decides what to keep of the slot. Blocking.
    fn run(
        &self,
        slot: &mut Option<BoxedSlot>,
        job: &Job<'_>,
        bridge: Option<Handle>,
    ) -> Result<Vec<u8>, SandboxError> {
        let mut current = match slot.take() {
            Some(slot) => slot,
            None if job.target == Target::Deactivate => return Ok(Vec::new()),
            None => Box::new(Slot {
                engine: self
                    .parts
                    .engines
                    .take()
                    .map_err(|message| SandboxError::Host {
                        plugin: self.parts.name.clone(),
                        message: format!("cannot prepare an Extism engine: {message}"),
                    })?,
                instance: None,
            }),
        };
        let deadline = Deadline::new(job.started, job.timeout, self.parts.info.uses_host);
        if job.target != Target::Deactivate && Instant::now() >= deadline.std {
            // Its deadline passed while it queued for a thread: it does not
            // start.
            *slot = Some(current);
            return Err(SandboxError::Timeout {
                plugin: self.parts.name.clone(),
                after: job.timeout,
            });
        }
        let outcome = self.run_on(&mut current, job, &deadline, bridge);
        if outcome.retire_engine {
            // The engine's epoch may still be bumped by the cancellation:
            // neither it nor its instance serves another call.
            if current.instance.is_some() {
                self.stats.instance_dropped();
            }
            return outcome.result;
        }
        let keep = outcome.instance_healthy && self.parts.limits.isolation == Isolation::Reuse;
        if !keep && current.instance.take().is_some() {
            self.stats.instance_dropped();
        }
        *slot = Some(current);
        outcome.result
    }

    fn run_on(
        &self,
        slot: &mut Slot,
        job: &Job<'_>,
        deadline: &Deadline,
        bridge: Option<Handle>,
    ) -> Outcome {
        let Slot { engine, instance } = slot;
        let run = self.run.load(Ordering::Acquire);
        if job.target == Target::Deactivate {
            let Some(instance) = instance.as_mut() else {
                return Outcome::ok(Vec::new());
            };
            if !self.parts.info.exports(module::DEACTIVATE) {
                return Outcome::ok(Vec::new());
            }
            return self.invoke(
                instance,
                engine,
                Invocation::setup(module::DEACTIVATE, &[]),
                deadline,
                &bridge,
            );
        }
        let reusable = instance.as_ref().is_some_and(|i| i.run == run)
            && self.parts.limits.isolation == Isolation::Reuse;
        let instance = if reusable {
            instance
                .as_mut()
                .unwrap_or_else(|| unreachable!("checked above"))
        } else {
            // The stale instance goes first: its lease makes room for the
            // new one's.
            if instance.take().is_some() {
                self.stats.instance_dropped();
            }
            let lease = match self
                .account
                .lease(&self.parts.name, self.parts.limits.memory_limit)
            {
                Ok(lease) => lease,
                Err(refused) => return Outcome::failed(refused),
            };
            match ::extism::Plugin::new_from_compiled(&engine.compiled) {
                Ok(plugin) => {
                    engine.guard.set_instance(plugin.cancel_handle());
                    self.stats.instance_created();
                    instance.insert(Instance::new(plugin, run, lease))
                }
                Err(e) => {
                    return Outcome::failed(SandboxError::Host {
                        plugin: self.parts.name.clone(),
                        message: format!("cannot instantiate the plugin: {e:#}"),
                    });
                }
            }
        };
        if let Err(outcome) = self.bring_up_to_date(instance, engine, deadline, &bridge) {
            return outcome;
        }
        match job.target {
            Target::Export => self.invoke(
                instance,
                engine,
                Invocation {
                    function: &job.function,
                    input: &job.input,
                    cause: Some(&job.cause),
                },
                deadline,
                &bridge,
            ),
            Target::Settle | Target::Deactivate => Outcome::ok(Vec::new()),
        }
    }

    /// Runs `activate` (a new instance) or `configure` (a changed config),
    /// then `restore`, on an instance that has not seen the current setup.
    fn bring_up_to_date(
        &self,
        instance: &mut Instance,
        engine: &Engine,
        deadline: &Deadline,
        bridge: &Option<Handle>,
    ) -> Result<(), Outcome> {
        if instance.setup == self.generation.load(Ordering::Acquire) {
            return Ok(());
        }
        let setup = self.setup.lock().clone();
        if instance.config < setup.config_generation {
            let lifecycle = if instance.config == 0 {
                module::ACTIVATE
            } else {
                module::CONFIGURE
            };
            if self.parts.info.exports(lifecycle) {
                let config = serde_json::to_vec(&*setup.config).unwrap_or_else(|_| b"{}".to_vec());
                let call = Invocation::setup(lifecycle, &config);
                let outcome = self.invoke(instance, engine, call, deadline, bridge);
                self.setup_step(outcome, deadline)?;
            }
            instance.config = setup.config_generation;
        }
        if let Some((generation, state)) = &setup.restored
            && *generation > instance.setup
            && self.parts.info.exports(module::RESTORE)
        {
            let call = Invocation::setup(module::RESTORE, state);
            let outcome = self.invoke(instance, engine, call, deadline, bridge);
            self.setup_step(outcome, deadline)?;
        }
        instance.setup = setup.generation;
        Ok(())
    }

    /// Whether a setup call (activate, configure, restore) lets the job go
    /// on; otherwise the outcome the job ends with.
    fn setup_step(&self, outcome: Outcome, deadline: &Deadline) -> Result<(), Outcome> {
        match outcome.result {
            Ok(_) if !outcome.retire_engine => Ok(()),
            // It finished as the deadline passed: nothing is left for the
            // job itself.
            Ok(_) => Err(Outcome {
                result: Err(SandboxError::Timeout {
                    plugin: self.parts.name.clone(),
                    after: deadline.timeout,
                }),
                ..outcome
            }),
            Err(_) => Err(outcome),
        }
    }

    /// One Extism call, watched by the deadline watchdog.
    fn invoke(
        &self,
        instance: &mut Instance,
        engine: &Engine,
        call: Invocation<'_>,
        deadline: &Deadline,
        bridge: &Option<Handle>,
    ) -> Outcome {
        let Invocation {
            function,
            input,
            cause,
        } = call;
        // The call's context for host functions, when the plugin has any.
        if let Some(tokio_deadline) = deadline.tokio {
            engine.link.begin(
                &self.parts.host,
                tokio_deadline,
                cause.cloned().unwrap_or_default(),
                bridge.clone(),
            );
        }
        engine.guard.arm(deadline.std);
        let answer = self.parts.limits.answer;
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            // The output is read in place and copied only once its length
            // is known to fit.
            instance
                .plugin
                .call::<&[u8], &[u8]>(function, input)
                .map(|output| {
                    crate::limits::check_answer(
                        &self.parts.name,
                        || format!("its output from `{function}`"),
                        output.len(),
                        answer,
                    )
                    .map(|()| output.to_vec())
                })
        }));
        let cancelled = engine.guard.disarm();
        let ended = if deadline.tokio.is_some() {
            engine.link.end()
        } else {
            Ended::default()
        };
        let result = match result {
            Ok(result) => result,
            Err(panic) => {
                // A bug on the host side (Extism, WASI, a host function):
                // the instance and its engine are not trusted again.
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                return Outcome {
                    result: Err(SandboxError::Host {
                        plugin: self.parts.name.clone(),
                        message: format!("the host panicked while running `{function}`: {what}"),
                    }),
                    retire_engine: true,
                    instance_healthy: false,
                };
            }
        };
        if let Some(fuel) = instance.plugin.fuel_consumed()
            && self.parts.engines.metered()
        {
            self.stats.add_fuel(fuel);
        }
        let error = match result {
            Ok(output) => {
                return Outcome {
                    result: output,
                    retire_engine: cancelled,
                    instance_healthy: true,
                };
            }
            Err(error) => error,
        };
        let deadline_passed = cancelled || ended.timed_out || Instant::now() >= deadline.std;
        let classified = errors::classify(
            &error,
            Circumstances {
                plugin: &self.parts.name,
                function,
                deadline_passed,
                timeout: deadline.timeout,
                denial: ended.denial,
                own: ended.error,
                memory_limit: self.parts.limits.memory_limit,
                error_limit: self.parts.host.error_limit,
                max_message: self.parts.host.boundary.config().max_error_message,
            },
        );
        // A plugin's own error leaves the instance as sound as it was;
        // anything else (a trap, a timeout, memory) may have stopped it half
        // way through something.
        let instance_healthy = matches!(
            classified,
            SandboxError::Plugin { .. } | SandboxError::OutputTooLarge { .. }
        );
        Outcome {
            result: Err(classified),
            retire_engine: cancelled,
            instance_healthy,
        }
    }
}

/// A call's deadline on both clocks: the watchdog's (real time) and the
/// boundary's (Tokio's, which tests may pause; only for plugins with host
/// functions).
struct Deadline {
    std: Instant,
    tokio: Option<tokio::time::Instant>,
    timeout: Duration,
}

impl Deadline {
    /// `timeout` after `started`, on both clocks: a call that waited for a
    /// thread has only what is left for its host requests too.
    fn new(started: Instant, timeout: Duration, for_host: bool) -> Self {
        let std = started + timeout;
        Self {
            std,
            tokio: for_host.then(|| {
                tokio::time::Instant::now() + std.saturating_duration_since(Instant::now())
            }),
            timeout,
        }
    }
}

/// The result of one Extism call and what it says about the slot.
struct Outcome {
    result: Result<Vec<u8>, SandboxError>,
    /// The engine is not used again: the watchdog cancelled the call (the
    /// engine's epoch may still be bumped late), or the host panicked.
    retire_engine: bool,
    /// Whether the instance may serve another call.
    instance_healthy: bool,
}

impl Outcome {
    fn ok(output: Vec<u8>) -> Self {
        Self {
            result: Ok(output),
            retire_engine: false,
            instance_healthy: true,
        }
    }

    fn failed(error: SandboxError) -> Self {
        Self {
            result: Err(error),
            retire_engine: false,
            instance_healthy: false,
        }
    }
}

#[async_trait]
impl Plugin for ExtismPlugin {
    fn caller(&self) -> &Arc<Caller> {
        &self.inner.parts.caller
    }

    async fn start(&self, config: &serde_json::Value) -> Result<(), SandboxError> {
        self.set_config(&Arc::new(config.clone()));
        if self.inner.parts.info.exports(module::ACTIVATE) {
            self.settle().await?;
        }
        self.inner.health.started();
        Ok(())
    }

    async fn configure(&self, config: &serde_json::Value) -> Result<(), SandboxError> {
        if !self.inner.health.is_ready() {
            return Err(self.not_running());
        }
        let before = self.set_config(&Arc::new(config.clone()));
        if self.inner.parts.info.exports(module::CONFIGURE)
            && let Err(error) = self.settle().await
        {
            // Refused: every instance goes back to the previous config.
            self.set_config(&before.config);
            return Err(error);
        }
        Ok(())
    }

    async fn handle_hook(&self, call: HookCall<'_>) -> Result<HookResponse, SandboxError> {
        let started = Instant::now();
        let result = async {
            if !self.inner.health.is_ready() {
                return Err(self.not_running());
            }
            if !self.inner.parts.info.exports(module::HANDLE_HOOK) {
                return Err(SandboxError::MissingExport {
                    plugin: self.name().to_owned(),
                    export: module::HANDLE_HOOK.to_owned(),
                });
            }
            let input = protocol::hook_input(&call);
            let timeout = self.timeout(&call.options);
            let job = Job::export(module::HANDLE_HOOK, input, timeout, started);
            let output = self.execute(job).await?;
            protocol::hook_output(&output).map_err(|message| SandboxError::Protocol {
                plugin: self.name().to_owned(),
                message,
            })
        }
        .await;
        self.record(started, result)
    }

    async fn call(
        &self,
        function: &str,
        input: &[u8],
        options: CallOptions,
    ) -> Result<Vec<u8>, SandboxError> {
        let started = Instant::now();
        let result = match self.callable(function) {
            Ok(()) => {
                let timeout = self.timeout(&options);
                let job = Job::export(function, input, timeout, started).caused(options.cause);
                self.execute(job).await
            }
            Err(error) => Err(error),
        };
        self.record(started, result)
    }

    async fn handle_request(
        &self,
        request: &EndpointRequest,
        options: CallOptions,
    ) -> Result<EndpointResponse, SandboxError> {
        let started = Instant::now();
        let result = async {
            if !self.inner.health.is_ready() {
                return Err(self.not_running());
            }
            if !self.inner.parts.info.exports(module::HANDLE_REQUEST) {
                return Err(SandboxError::MissingExport {
                    plugin: self.name().to_owned(),
                    export: module::HANDLE_REQUEST.to_owned(),
                });
            }
            let input = protocol::request_input(request);
            let timeout = self.timeout(&options);
            let job =
                Job::export(module::HANDLE_REQUEST, input, timeout, started).caused(options.cause);
            let output = self.execute(job).await?;
            protocol::request_output(&output).map_err(|message| SandboxError::Protocol {
                plugin: self.name().to_owned(),
                message,
            })
        }
        .await;
        self.record(started, result)
    }

    async fn snapshot(&self) -> Result<Option<Vec<u8>>, SandboxError> {
        if !self.inner.health.is_ready() {
            return Err(self.not_running());
        }
        if !self.inner.parts.info.exports(module::SNAPSHOT) {
            return Ok(None);
        }
        let started = Instant::now();
        let timeout = self.inner.parts.limits.timeout;
        let job = Job::export(module::SNAPSHOT, &[][..], timeout, started);
        let state = self.record(started, self.execute(job).await)?;
        Ok((!state.is_empty()).then_some(state))
    }

    async fn restore(&self, state: &[u8]) -> Result<(), SandboxError> {
        if !self.inner.health.is_ready() {
            return Err(self.not_running());
        }
        if !self.inner.parts.info.exports(module::RESTORE) {
            if state.is_empty() {
                return Ok(());
            }
            return Err(SandboxError::MissingExport {
                plugin: self.name().to_owned(),
                export: module::RESTORE.to_owned(),
            });
        }
        let state: Arc<[u8]> = Arc::from(state);
        let before = self.change_setup(|setup| setup.restored = Some((setup.generation, state)));
        let settled = self.settle().await;
        if settled.is_err() {
            // Refused: no other instance is given the state either.
            self.change_setup(|setup| setup.restored = before.restored);
        }
        settled
    }

    async fn stop(&self) -> Result<(), SandboxError> {
        let was_running = self.inner.health.is_ready();
        self.inner.health.stopped();
        // Instances of this run are not reused after a restart.
        self.inner.run.fetch_add(1, Ordering::AcqRel);
        let slots = self.inner.parts.pool.drain().await;
        let mut first_error = None;
        for slot in slots {
            let (slot, result) = if was_running {
                let job = Job::lifecycle(Target::Deactivate, self.inner.parts.limits.timeout);
                self.run_drained(slot, job).await
            } else {
                (Some(slot), Ok(Vec::new()))
            };
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
            if let Some(slot) = slot {
                if slot.instance.is_some() {
                    self.inner.stats.instance_dropped();
                }
                self.inner.parts.engines.give_back(slot.engine);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn health(&self) -> Health {
        self.inner.health.health()
    }

    fn stats(&self) -> ResourceStats {
        ResourceStats {
            instances_pooled: self.inner.parts.pool.idle_instances(),
            ..self.inner.stats.snapshot()
        }
    }
}
