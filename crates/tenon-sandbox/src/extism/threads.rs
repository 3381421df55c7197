//! The plugin-call threads of one Extism runtime: the threads that run
//! Extism calls off the async runtime's workers, shared fairly between
//! plugins and tenants.
//!
//! Extism calls are synchronous and cannot be paused: a call holds its
//! thread until it returns or the watchdog stops it at its deadline. So that
//! plugins running long calls cannot keep the others waiting, the threads
//! are shared by **lanes**, one per loaded plugin (with its tenant):
//!
//! - a lane runs at most [`Shares::plugin`] calls at once, and the lanes of
//!   one tenant together at most [`Shares::tenant`];
//! - a call within those shares starts at once: on an idle thread, or on a
//!   new one when every thread is busy, up to [`Shares::max_threads`];
//! - a call beyond its shares, or beyond the most threads, waits in its
//!   lane; a thread that finishes a call takes the first waiting call, lane
//!   by lane in turn, whose lane and tenant are within their shares.
//!
//! So a plugin (or a tenant) looping until its deadline on every instance
//! it has holds its share of threads, never all of them: the other plugins'
//! calls still start at once.
//!
//! The hand-off is cheap: each thread has a slot of its own and is handed a
//! call directly (one lock, one unpark), with no thread created per call.
//! A thread that just finished a call watches its slot for a short while
//! (`THREAD_SPIN`) before it sleeps, and the caller watches for the answer
//! for a short while (`CALLER_SPIN`) before it yields its worker, so a short
//! call is handed over and answered without putting a thread to sleep and
//! waking it. Both windows are bounded: a long call costs its caller's
//! worker at most `CALLER_SPIN`, never the call's duration.
//!
//! The first [`Shares::threads`] threads start at the first call and end
//! when the last handle (the runtime and every plugin it loaded) is
//! dropped; threads started beyond them end after `LINGER` without a call.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// How long a thread that finished a call watches its slot before it
/// sleeps.
const THREAD_SPIN: Duration = Duration::from_micros(50);

/// How long a caller watches for its answer before it yields its worker.
const CALLER_SPIN: Duration = Duration::from_micros(30);

/// How long a thread beyond the first [`Shares::threads`] waits for a call
/// before it ends.
const LINGER: Duration = Duration::from_secs(5);

type Task = Box<dyn FnOnce() + Send>;

/// How the threads are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Shares {
    /// Threads kept ready (started at the first call, kept until the end).
    pub(super) threads: usize,
    /// The most threads at once.
    pub(super) max_threads: usize,
    /// The most calls one plugin runs at once.
    pub(super) plugin: usize,
    /// The most calls the plugins of one tenant run at once.
    pub(super) tenant: usize,
}

impl Shares {
    /// `threads` kept ready (at least one) and at most `max_threads` (0:
    /// eight times `threads`, at least 16). A plugin runs at most `threads`
    /// calls at once; a tenant at most all the threads but `threads` (at
    /// least half of them), so one tenant never holds every thread.
    pub(super) fn new(threads: usize, max_threads: usize) -> Self {
        let threads = threads.max(1);
        let max_threads = match max_threads {
            0 => (threads * 8).max(16),
            asked => asked,
        }
        .max(threads)
        .max(2);
        let tenant = (max_threads - threads).max(max_threads / 2);
        Self {
            threads,
            max_threads,
            plugin: threads.min(tenant),
            tenant,
        }
    }
}

/// A handle on the threads; clones share them.
#[derive(Clone)]
pub(super) struct CallThreads {
    handle: Arc<Handle>,
}

/// Closes the threads when the last [`CallThreads`] (or [`Lane`]) goes.
struct Handle {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    shares: Shares,
    /// Each thread's stack, in bytes (Extism runs wasm on it).
    stack: usize,
    linger: Duration,
    /// Set once the first threads started (at the first call). A failure
    /// to start any is not kept: the next call tries again.
    started: OnceLock<()>,
    /// Held while the first threads start, so only one call starts them.
    starting: Mutex<()>,
    /// Tests: asked before each thread is started; `true` fails the start
    /// as the OS would (say at its thread limit).
    #[cfg(test)]
    refuse_spawn: Mutex<Option<Box<dyn FnMut() -> bool + Send>>>,
}

#[derive(Default)]
struct State {
    lanes: HashMap<u64, LaneState>,
    tenants: HashMap<Arc<str>, TenantState>,
    /// Lanes with waiting calls, in turn order.
    turns: VecDeque<u64>,
    /// Threads waiting for a call.
    idle: Vec<Arc<Worker>>,
    /// Threads alive (or being started).
    threads: usize,
    next_lane: u64,
    closed: bool,
}

struct LaneState {
    tenant: Arc<str>,
    waiting: VecDeque<Task>,
    running: usize,
    /// Whether it is in `State::turns`.
    queued: bool,
    /// Whether its [`Lane`] was dropped: it goes once nothing of it is left.
    dropped: bool,
}

#[derive(Default)]
struct TenantState {
    running: usize,
    lanes: usize,
}

/// One thread's slot: the call handed to it.
struct Worker {
    slot: Mutex<Option<Assigned>>,
    assigned: AtomicBool,
    thread: OnceLock<Thread>,
}

/// A call handed to a thread, with the lane it counts against.
struct Assigned {
    lane: u64,
    task: Task,
}

impl std::fmt::Debug for CallThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.handle.shared.state.lock();
        f.debug_struct("CallThreads")
            .field("shares", &self.handle.shared.shares)
            .field("threads", &state.threads)
            .field("idle", &state.idle.len())
            .field("lanes", &state.lanes.len())
            .finish()
    }
}

impl CallThreads {
    /// Threads of `stack` bytes of stack, shared as `shares` says, the
    /// first started at the first call.
    pub(super) fn new(shares: Shares, stack: usize) -> Self {
        Self::with_linger(shares, stack, LINGER)
    }

    fn with_linger(shares: Shares, stack: usize, linger: Duration) -> Self {
        Self {
            handle: Arc::new(Handle {
                shared: Arc::new(Shared {
                    state: Mutex::new(State::default()),
                    shares,
                    stack,
                    linger,
                    started: OnceLock::new(),
                    starting: Mutex::new(()),
                    #[cfg(test)]
                    refuse_spawn: Mutex::new(None),
                }),
            }),
        }
    }

    /// A lane for one plugin of `tenant`.
    pub(super) fn lane(&self, tenant: &str) -> Lane {
        let mut state = self.handle.shared.state.lock();
        let id = state.next_lane;
        state.next_lane += 1;
        let tenant: Arc<str> = match state.tenants.get_key_value(tenant) {
            Some((name, _)) => name.clone(),
            None => Arc::from(tenant),
        };
        state.tenants.entry(tenant.clone()).or_default().lanes += 1;
        state.lanes.insert(
            id,
            LaneState {
                tenant,
                waiting: VecDeque::new(),
                running: 0,
                queued: false,
                dropped: false,
            },
        );
        Lane {
            threads: self.clone(),
            id,
        }
    }

    /// How many threads are alive.
    #[cfg(test)]
    fn threads(&self) -> usize {
        self.handle.shared.state.lock().threads
    }

    /// How many calls wait for a thread.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        let state = self.handle.shared.state.lock();
        state.lanes.values().map(|lane| lane.waiting.len()).sum()
    }

    /// Starts the first threads, once they have started; until then each
    /// call tries (a failure, say a passing `EAGAIN`, is not kept).
    fn start_threads(&self) -> Result<(), String> {
        let shared = &self.handle.shared;
        // After the first call: one atomic load.
        if shared.started.get().is_some() {
            return Ok(());
        }
        let _starting = shared.starting.lock();
        if shared.started.get().is_some() {
            return Ok(());
        }
        {
            let mut started = 0;
            while started < shared.shares.threads {
                let worker = Arc::new(Worker {
                    slot: Mutex::new(None),
                    assigned: AtomicBool::new(false),
                    thread: OnceLock::new(),
                });
                shared.state.lock().threads += 1;
                match spawn(shared.clone(), worker.clone(), false) {
                    Ok(thread) => {
                        let _ = worker.thread.set(thread);
                        shared.state.lock().idle.push(worker);
                        started += 1;
                    }
                    Err(e) => {
                        shared.state.lock().threads -= 1;
                        if started == 0 {
                            return Err(format!("cannot start a plugin-call thread: {e}"));
                        }
                        // Fewer threads than asked: calls still run, on
                        // those (and on threads started when they are
                        // busy).
                        tracing::error!(error = %e, started, "cannot start every plugin-call thread");
                        break;
                    }
                }
            }
        }
        let _ = shared.started.set(());
        Ok(())
    }
}

/// One plugin's place on the threads: its calls count against its share and
/// its tenant's.
pub(super) struct Lane {
    threads: CallThreads,
    id: u64,
}

impl Lane {
    /// Runs `work` on one of the threads and waits for its answer without
    /// blocking the caller's thread (beyond `CALLER_SPIN`).
    ///
    /// If the caller's future is dropped, `work` still runs to its end: what
    /// it holds (an instance slot) is released only then. `Err` when no
    /// thread can be started, or when `work` panicked.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.threads.start_threads()?;
        let (answer, mut answered) = oneshot::channel();
        self.push(Box::new(move || {
            let _ = answer.send(work());
        }))?;
        let mut early = None;
        spin(CALLER_SPIN, || match answered.try_recv() {
            Ok(value) => {
                early = Some(Ok(value));
                true
            }
            Err(oneshot::error::TryRecvError::Closed) => {
                early = Some(Err(PANICKED.to_owned()));
                true
            }
            Err(oneshot::error::TryRecvError::Empty) => false,
        });
        match early {
            Some(answer) => answer,
            None => answered.await.map_err(|_| PANICKED.to_owned()),
        }
    }

    /// Hands `task` to an idle thread, or to a new one, when the lane and
    /// its tenant are within their shares; else it waits its turn.
    fn push(&self, task: Task) -> Result<(), String> {
        let shared = &self.threads.handle.shared;
        let shares = shared.shares;
        let mut state = shared.state.lock();
        if state.may_start(self.id, shares) {
            if let Some(worker) = state.idle.pop() {
                state.started(self.id);
                drop(state);
                worker.hand(Assigned {
                    lane: self.id,
                    task,
                });
                return Ok(());
            }
            if state.threads < shares.max_threads {
                state.started(self.id);
                state.threads += 1;
                drop(state);
                let worker = Arc::new(Worker {
                    slot: Mutex::new(Some(Assigned {
                        lane: self.id,
                        task,
                    })),
                    assigned: AtomicBool::new(true),
                    thread: OnceLock::new(),
                });
                let Err(e) = spawn(shared.clone(), worker.clone(), true) else {
                    return Ok(());
                };
                // Taken back, and queued for the threads there are.
                let task = worker
                    .slot
                    .lock()
                    .take()
                    .map(|assigned| assigned.task)
                    .unwrap_or_else(|| unreachable!("a thread that never started took its call"));
                let mut state = shared.state.lock();
                state.threads -= 1;
                state.finished(self.id);
                if state.threads == 0 {
                    drop(state);
                    return Err(format!("cannot start a plugin-call thread: {e}"));
                }
                tracing::warn!(error = %e, "cannot start another plugin-call thread; the call waits");
                state.queue(self.id, task);
                // Threads may have gone idle while the lock was dropped for
                // the spawn: they get the waiting calls now, or the call
                // would wait for some other call to end.
                let handed = state.dispatch(shares);
                drop(state);
                for (worker, assigned) in handed {
                    worker.hand(assigned);
                }
                return Ok(());
            }
        }
        state.queue(self.id, task);
        Ok(())
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        let mut state = self.threads.handle.shared.state.lock();
        if let Some(lane) = state.lanes.get_mut(&self.id) {
            lane.dropped = true;
        }
        state.forget_if_done(self.id);
    }
}

const PANICKED: &str = "the plugin-call thread failed while running the call";

impl Drop for Handle {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        state.closed = true;
        // Each ends once it sees the close (and leaves the idle list).
        for worker in &state.idle {
            worker.wake();
        }
    }
}

impl State {
    /// Whether a call of `lane` may start now (threads permitting).
    fn may_start(&self, lane: u64, shares: Shares) -> bool {
        let Some(lane) = self.lanes.get(&lane) else {
            return false;
        };
        let tenant = self.tenants.get(&lane.tenant).map_or(0, |t| t.running);
        lane.waiting.is_empty() && lane.running < shares.plugin && tenant < shares.tenant
    }

    /// Counts a call of `lane` as running.
    fn started(&mut self, lane: u64) {
        if let Some(lane) = self.lanes.get_mut(&lane) {
            lane.running += 1;
            if let Some(tenant) = self.tenants.get_mut(&lane.tenant) {
                tenant.running += 1;
            }
        }
    }

    /// Counts a call of `lane` as ended.
    fn finished(&mut self, lane: u64) {
        if let Some(state) = self.lanes.get_mut(&lane) {
            state.running -= 1;
            if let Some(tenant) = self.tenants.get_mut(&state.tenant) {
                tenant.running -= 1;
            }
        }
        self.forget_if_done(lane);
    }

    fn queue(&mut self, lane: u64, task: Task) {
        let Some(state) = self.lanes.get_mut(&lane) else {
            unreachable!("a call on a lane that is gone: its handle made the call");
        };
        state.waiting.push_back(task);
        if !state.queued {
            state.queued = true;
            self.turns.push_back(lane);
        }
    }

    /// Pairs idle threads with waiting calls that may start, counted as
    /// running; the caller hands each its call once the lock is dropped.
    fn dispatch(&mut self, shares: Shares) -> Vec<(Arc<Worker>, Assigned)> {
        let mut handed = Vec::new();
        while !self.idle.is_empty() {
            let Some(assigned) = self.next(shares) else {
                break;
            };
            let worker = self.idle.pop().expect("an idle thread, checked above");
            handed.push((worker, assigned));
        }
        handed
    }

    /// The first waiting call, lane by lane in turn, that may start now
    /// (any, once the threads are closing), counted as running.
    fn next(&mut self, shares: Shares) -> Option<Assigned> {
        for _ in 0..self.turns.len() {
            let id = self.turns.pop_front()?;
            let lane = self.lanes.get_mut(&id)?;
            let tenant = self.tenants.get(&lane.tenant).map_or(0, |t| t.running);
            let within = lane.running < shares.plugin && tenant < shares.tenant;
            if !(within || self.closed) {
                self.turns.push_back(id);
                continue;
            }
            let task = lane.waiting.pop_front()?;
            if lane.waiting.is_empty() {
                lane.queued = false;
            } else {
                self.turns.push_back(id);
            }
            self.started(id);
            return Some(Assigned { lane: id, task });
        }
        None
    }

    /// Forgets a dropped lane once it runs and waits for nothing.
    fn forget_if_done(&mut self, lane: u64) {
        let done = self
            .lanes
            .get(&lane)
            .is_some_and(|l| l.dropped && l.running == 0 && l.waiting.is_empty());
        if !done {
            return;
        }
        if let Some(gone) = self.lanes.remove(&lane)
            && let Some(tenant) = self.tenants.get_mut(&gone.tenant)
        {
            tenant.lanes -= 1;
            if tenant.lanes == 0 {
                self.tenants.remove(&gone.tenant);
            }
        }
    }
}

impl Worker {
    /// Gives the thread its call and wakes it.
    fn hand(&self, assigned: Assigned) {
        *self.slot.lock() = Some(assigned);
        self.assigned.store(true, Ordering::Release);
        self.wake();
    }

    fn wake(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    fn take(&self) -> Option<Assigned> {
        if !self.assigned.swap(false, Ordering::Acquire) {
            return None;
        }
        self.slot.lock().take()
    }
}

fn spawn(shared: Arc<Shared>, worker: Arc<Worker>, extra: bool) -> std::io::Result<Thread> {
    #[cfg(test)]
    if shared
        .refuse_spawn
        .lock()
        .as_mut()
        .is_some_and(|refuse| refuse())
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            "Resource temporarily unavailable (refused by the test)",
        ));
    }
    let stack = shared.stack;
    let handle = std::thread::Builder::new()
        .name("tenon-extism-call".to_owned())
        .stack_size(stack)
        .spawn(move || {
            let _ = worker.thread.set(std::thread::current());
            work(&shared, &worker, extra);
        })?;
    Ok(handle.thread().clone())
}

/// One thread's life: run the call handed over, then the next waiting one,
/// or wait to be handed one.
fn work(shared: &Shared, me: &Arc<Worker>, extra: bool) {
    let mut next = me.take();
    loop {
        let Some(Assigned { lane, task }) = next.take().or_else(|| wait(shared, me, extra)) else {
            return;
        };
        // A panicking call must not take the thread with it (the caller
        // sees its oneshot closed). The task is dropped here, never under
        // the lock: dropping it may drop a plugin and its lane.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(task));
        let mut state = shared.state.lock();
        state.finished(lane);
        next = state.next(shared.shares);
        if next.is_none() {
            state.idle.push(me.clone());
        }
    }
}

/// Waits (after a short watch of the slot) until a call is handed over;
/// `None` once the threads close, or, for a thread beyond the first ones,
/// after `linger` without a call.
fn wait(shared: &Shared, me: &Arc<Worker>, extra: bool) -> Option<Assigned> {
    spin(THREAD_SPIN, || me.assigned.load(Ordering::Acquire));
    let until = Instant::now() + shared.linger;
    loop {
        if let Some(assigned) = me.take() {
            return Some(assigned);
        }
        let timeout = {
            let mut state = shared.state.lock();
            // Handed a call meanwhile: it is in the slot.
            if me.assigned.load(Ordering::Acquire) {
                continue;
            }
            let now = Instant::now();
            match state.idle.iter().position(|w| Arc::ptr_eq(w, me)) {
                // Taken off the idle list: a call is on its way (or the
                // thread is not listed yet); it comes with a wake-up.
                None => None,
                Some(at) if state.closed || (extra && now >= until) => {
                    state.idle.swap_remove(at);
                    state.threads -= 1;
                    return None;
                }
                Some(_) => extra.then(|| until.saturating_duration_since(now)),
            }
        };
        match timeout {
            Some(timeout) => std::thread::park_timeout(timeout),
            None => std::thread::park(),
        }
    }
}

/// Checks `done` until it says so or `limit` has passed.
fn spin(limit: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    let mut checks = 0u32;
    while !done() {
        checks = checks.wrapping_add(1);
        // The clock is read once every few checks.
        if checks.is_multiple_of(16) && Instant::now() >= until {
            return;
        }
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    const STACK: usize = 2 << 20;

    /// Runs calls that each hold their thread until `open` is set, counting
    /// the most that ran at once.
    struct Held {
        open: Arc<AtomicBool>,
        running: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }

    impl Held {
        fn new() -> Self {
            Self {
                open: Arc::new(AtomicBool::new(false)),
                running: Arc::new(AtomicUsize::new(0)),
                most: Arc::new(AtomicUsize::new(0)),
            }
        }

        fn call(&self, lane: &Arc<Lane>) -> tokio::task::JoinHandle<Result<(), String>> {
            let (open, running, most) =
                (self.open.clone(), self.running.clone(), self.most.clone());
            let lane = lane.clone();
            tokio::spawn(async move {
                lane.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    while !open.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            })
        }

        /// Waits until `n` calls run at once.
        async fn running(&self, n: usize) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.running.load(Ordering::SeqCst) < n {
                assert!(Instant::now() < deadline, "{n} calls never ran at once");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }

    /// A call of another lane answers (within 5 s) while `held` holds its
    /// calls.
    async fn answers(lane: &Lane) {
        let answer = tokio::time::timeout(Duration::from_secs(5), lane.run(|| 7)).await;
        assert_eq!(answer, Ok(Ok(7)), "another plugin's call did not run");
    }

    #[test]
    fn shares_leave_room_for_other_plugins_and_tenants() {
        // (threads, max_threads) → (threads, max, plugin, tenant)
        let table = [
            ((2, 0), (2, 16, 2, 14)),
            ((4, 0), (4, 32, 4, 28)),
            ((1, 0), (1, 16, 1, 15)),
            ((2, 2), (2, 2, 1, 1)),
            ((2, 1), (2, 2, 1, 1)),
            ((3, 4), (3, 4, 2, 2)),
            ((0, 0), (1, 16, 1, 15)),
        ];
        for ((threads, max), (t, m, p, n)) in table {
            let shares = Shares::new(threads, max);
            assert_eq!(
                (
                    shares.threads,
                    shares.max_threads,
                    shares.plugin,
                    shares.tenant
                ),
                (t, m, p, n),
                "Shares::new({threads}, {max})"
            );
            assert!(shares.tenant < shares.max_threads, "{shares:?}");
            assert!(shares.plugin <= shares.tenant, "{shares:?}");
        }
    }

    #[tokio::test]
    async fn calls_run_on_the_threads_and_answer() {
        let threads = CallThreads::new(Shares::new(2, 0), STACK);
        let lane = threads.lane("t");
        let here = std::thread::current().id();
        let there = lane.run(move || std::thread::current().id()).await;
        assert_ne!(there.unwrap(), here);
        assert_eq!(lane.run(|| 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_panicking_call_is_an_error_and_the_thread_lives_on() {
        let threads = CallThreads::new(Shares::new(1, 0), STACK);
        let lane = threads.lane("t");
        let err = lane.run(|| panic!("boom")).await.unwrap_err();
        assert!(err.contains("failed"), "{err}");
        assert_eq!(lane.run(|| 1).await.unwrap(), 1);
    }

    /// Hostile: one plugin holding calls on as many instances as it likes
    /// runs its share of threads at once; another plugin of the same
    /// tenant still runs at once, and the held calls all run in the end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_plugin_runs_at_most_its_share() {
        let threads = CallThreads::new(Shares::new(2, 0), STACK);
        let hostile = Arc::new(threads.lane("t"));
        let held = Held::new();
        let calls: Vec<_> = (0..8).map(|_| held.call(&hostile)).collect();
        held.running(2).await;
        answers(&threads.lane("t")).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(held.most.load(Ordering::SeqCst), 2);
        held.open.store(true, Ordering::SeqCst);
        for call in calls {
            call.await.unwrap().unwrap();
        }
    }

    /// Hostile: one tenant's plugins together hold at most the tenant's
    /// share; another tenant still runs at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_tenant_runs_at_most_its_share() {
        let shares = Shares::new(2, 6);
        assert_eq!(shares.tenant, 4);
        let threads = CallThreads::new(shares, STACK);
        let held = Held::new();
        let lanes: Vec<_> = (0..4).map(|_| Arc::new(threads.lane("hostile"))).collect();
        let calls: Vec<_> = lanes
            .iter()
            .flat_map(|lane| [held.call(lane), held.call(lane)])
            .collect();
        held.running(4).await;
        answers(&threads.lane("other")).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(held.most.load(Ordering::SeqCst), 4);
        assert!(threads.threads() <= 6);
        held.open.store(true, Ordering::SeqCst);
        for call in calls {
            call.await.unwrap().unwrap();
        }
    }

    /// At the most threads, a freed thread goes to the lanes in turn: a
    /// plugin with many waiting calls does not go before one that came
    /// later with one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_the_most_threads_lanes_take_turns() {
        // Two threads at most; each plugin one call at once.
        let threads = CallThreads::new(Shares::new(2, 2), STACK);
        let order = Arc::new(Mutex::new(Vec::new()));
        let gate = Held::new();
        let (a, b, c) = (
            Arc::new(threads.lane("a")),
            Arc::new(threads.lane("b")),
            Arc::new(threads.lane("c")),
        );
        // `a` and `b` hold both threads.
        let holds = [gate.call(&a), gate.call(&b)];
        gate.running(2).await;
        let record = |lane: &Arc<Lane>, name: &'static str| {
            let (lane, order) = (lane.clone(), order.clone());
            tokio::spawn(async move { lane.run(move || order.lock().push(name)).await })
        };
        // Each call is queued before the next is made: `a`'s three, then
        // `c`'s one.
        let queued = |n: usize| {
            let threads = &threads;
            async move {
                let deadline = Instant::now() + Duration::from_secs(20);
                while threads.waiting() < n {
                    assert!(Instant::now() < deadline, "call {n} was never queued");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        };
        let mut waiting = Vec::new();
        for n in 1..=3 {
            waiting.push(record(&a, "a"));
            queued(n).await;
        }
        waiting.push(record(&c, "c"));
        queued(4).await;
        gate.open.store(true, Ordering::SeqCst);
        for call in holds.into_iter().chain(waiting) {
            call.await.unwrap().unwrap();
        }
        let order = order.lock().clone();
        let c_at = order.iter().position(|n| *n == "c").unwrap();
        assert!(
            c_at <= 1,
            "the later plugin waited behind the busy one: {order:?}"
        );
    }

    impl CallThreads {
        /// Makes every later thread start ask `refuse` first.
        fn refuse_spawn(&self, refuse: impl FnMut() -> bool + Send + 'static) {
            *self.handle.shared.refuse_spawn.lock() = Some(Box::new(refuse));
        }

        fn allow_spawn(&self) {
            *self.handle.shared.refuse_spawn.lock() = None;
        }
    }

    /// Hostile (the OS at its thread limit): when not one of the first
    /// threads starts, the call fails naming why, and the failure is not
    /// kept: once threads can start again, calls run. When only some
    /// start, calls run on those.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_to_start_the_first_threads_is_not_kept() {
        let threads = CallThreads::new(Shares::new(2, 0), STACK);
        let lane = threads.lane("t");
        threads.refuse_spawn(|| true);
        let err = lane.run(|| 7).await.unwrap_err();
        assert!(
            err.contains("cannot start a plugin-call thread")
                && err.contains("Resource temporarily unavailable"),
            "{err}"
        );
        assert_eq!(threads.threads(), 0);
        threads.allow_spawn();
        assert_eq!(lane.run(|| 7).await, Ok(7));
        assert_eq!(threads.threads(), 2);

        // One of two starts: calls run on it.
        let threads = CallThreads::new(Shares::new(2, 0), STACK);
        let lane = threads.lane("t");
        let mut starts = 0;
        threads.refuse_spawn(move || {
            starts += 1;
            starts > 1
        });
        assert_eq!(lane.run(|| 7).await, Ok(7));
        assert_eq!(threads.threads(), 1);
        assert_eq!(lane.run(|| 8).await, Ok(8));
    }

    /// One thread kept (four at most), held by a call of plugin `a`; plugin
    /// `b` of another tenant has none running.
    async fn one_thread_held() -> (
        CallThreads,
        Arc<Lane>,
        Arc<Lane>,
        Held,
        tokio::task::JoinHandle<Result<(), String>>,
    ) {
        let threads = CallThreads::new(Shares::new(1, 4), STACK);
        let (hostile, other) = (Arc::new(threads.lane("a")), Arc::new(threads.lane("b")));
        let held = Held::new();
        let hold = held.call(&hostile);
        held.running(1).await;
        (threads, hostile, other, held, hold)
    }

    /// Hostile: one plugin holds the only thread and no further thread can
    /// start. Another plugin's call waits (it is not lost, and the thread
    /// count stays true), runs as soon as the thread frees, and once
    /// threads can start again calls beside a held one get a thread of
    /// their own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_that_cannot_get_a_new_thread_waits_for_one() {
        let (threads, hostile, other, held, hold) = one_thread_held().await;
        threads.refuse_spawn(|| true);
        let waiting = {
            let other = other.clone();
            tokio::spawn(async move { other.run(|| 7).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the call ran with no thread free");
        assert_eq!(
            threads.threads(),
            1,
            "a thread that never started is counted"
        );
        held.open.store(true, Ordering::SeqCst);
        hold.await.unwrap().unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), waiting).await;
        assert_eq!(answer.expect("the waiting call ran").unwrap(), Ok(7));

        threads.allow_spawn();
        let held = Held::new();
        let hold = held.call(&hostile);
        held.running(1).await;
        answers(&other).await;
        assert_eq!(threads.threads(), 2);
        held.open.store(true, Ordering::SeqCst);
        hold.await.unwrap().unwrap();
    }

    /// Hostile: the only busy thread goes idle while a call's new thread
    /// fails to start. The call is handed to that idle thread at once; it
    /// does not wait for some other call to end (none comes).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_queued_after_a_failed_start_goes_to_a_thread_that_went_idle() {
        let (threads, _hostile, other, held, hold) = one_thread_held().await;
        // While the new thread "starts", the held call ends and its thread
        // goes idle.
        let (open, shared) = (held.open.clone(), Arc::downgrade(&threads.handle.shared));
        let idle = move || shared.upgrade().map_or(0, |s| s.state.lock().idle.len());
        threads.refuse_spawn(move || {
            open.store(true, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(10);
            while idle() == 0 {
                assert!(Instant::now() < deadline, "the held thread never went idle");
                std::thread::sleep(Duration::from_millis(1));
            }
            true
        });
        let answer = tokio::time::timeout(Duration::from_secs(10), other.run(|| 7)).await;
        assert_eq!(
            answer,
            Ok(Ok(7)),
            "the call waited for a call that never came"
        );
        hold.await.unwrap().unwrap();
        assert_eq!(threads.threads(), 1);
        threads.allow_spawn();
    }

    #[test]
    fn the_threads_end_with_the_last_handle_and_extra_ones_after_a_while() {
        let threads = CallThreads::with_linger(Shares::new(1, 4), STACK, Duration::from_millis(20));
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let held = Held::new();
        tokio.block_on(async {
            let lane = Arc::new(threads.lane("t"));
            let other = Arc::new(threads.lane("u"));
            let calls = [held.call(&lane), held.call(&other)];
            held.running(2).await;
            assert_eq!(threads.threads(), 2);
            held.open.store(true, Ordering::SeqCst);
            for call in calls {
                call.await.unwrap().unwrap();
            }
        });
        // The extra thread ends once it waited `linger` for a call.
        let deadline = Instant::now() + Duration::from_secs(5);
        while threads.threads() > 1 {
            assert!(Instant::now() < deadline, "the extra thread did not end");
            std::thread::sleep(Duration::from_millis(5));
        }
        let shared = Arc::downgrade(&threads.handle.shared);
        drop(threads);
        while shared.strong_count() > 0 {
            assert!(Instant::now() < deadline, "the thread did not end");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
