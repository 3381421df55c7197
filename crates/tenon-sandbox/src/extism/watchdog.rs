//! Stops Extism calls that outlive their deadline.
//!
//! Extism interrupts a running call by bumping the epoch of the plugin's
//! wasmtime engine (through its [`extism::CancelHandle`]). Tenon does not use
//! Extism's own per-manifest timeout: a call's deadline comes from the
//! manifest *and* the caller (`CallOptions::timeout`). One thread per runtime
//! watches every engine's [`Guard`] and cancels the calls whose deadline
//! passed.
//!
//! A call arms its engine's guard (one atomic store, one atomic load) and
//! disarms it (one atomic swap): no lock, no allocation. The thread sleeps
//! until the earliest armed deadline (at most a second); arming a deadline
//! earlier than that wakes it, which a steady stream of calls with similar
//! timeouts does about once per timeout, not once per call.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use ::extism::CancelHandle;

/// How long the thread sleeps when nothing is due sooner.
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// How often a cancelled call that has not ended is cancelled again.
const RESEND: Duration = Duration::from_millis(10);

/// A guard's deadline when no call is armed.
const IDLE: u64 = 0;
/// A guard's deadline once the thread cancelled its call.
const FIRED: u64 = u64::MAX;

/// The watchdog of one runtime; its thread ends when the last handle (and
/// every guard) is dropped.
#[derive(Clone)]
pub(super) struct Watchdog {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog")
            .field("guards", &self.shared.lock().guards.len())
            .finish()
    }
}

struct Shared {
    /// Deadlines are nanoseconds since this instant.
    base: Instant,
    /// When the thread looks next, in the same nanoseconds.
    planned: AtomicU64,
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    guards: Vec<Weak<GuardInner>>,
    running: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing done under this lock can leave the state inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn nanos(&self, at: Instant) -> u64 {
        // 1 ns past the base at least, so that no deadline reads as IDLE.
        u64::try_from(at.saturating_duration_since(self.base).as_nanos())
            .unwrap_or(FIRED - 1)
            .clamp(1, FIRED - 1)
    }
}

/// What an engine's calls are watched through: its current deadline and the
/// cancel handle of its current instance.
pub(super) struct Guard {
    inner: Arc<GuardInner>,
    shared: Arc<Shared>,
}

struct GuardInner {
    deadline: AtomicU64,
    cancel: Mutex<Option<CancelHandle>>,
}

impl Guard {
    /// The instance whose calls this guard stops from now on.
    pub(super) fn set_instance(&self, cancel: CancelHandle) {
        *self.inner.cancel.lock().unwrap_or_else(|e| e.into_inner()) = Some(cancel);
    }

    /// A call must end by `deadline`.
    pub(super) fn arm(&self, deadline: Instant) {
        let at = self.shared.nanos(deadline);
        self.inner.deadline.store(at, SeqCst);
        if at < self.shared.planned.load(SeqCst) {
            // Taking the lock orders this with the thread's planning: it is
            // either still planning (and will see the deadline) or waiting.
            let _state = self.shared.lock();
            self.shared.wake.notify_one();
        }
    }

    /// The call ended; returns whether the watchdog cancelled it.
    pub(super) fn disarm(&self) -> bool {
        self.inner.deadline.swap(IDLE, SeqCst) == FIRED
    }
}

impl Watchdog {
    pub(super) fn new() -> Self {
        let base = Instant::now();
        Self {
            shared: Arc::new(Shared {
                base,
                planned: AtomicU64::new(0),
                state: Mutex::new(State {
                    guards: Vec::new(),
                    running: false,
                }),
                wake: Condvar::new(),
            }),
        }
    }

    /// A guard for a new engine.
    pub(super) fn guard(&self) -> Guard {
        let inner = Arc::new(GuardInner {
            deadline: AtomicU64::new(IDLE),
            cancel: Mutex::new(None),
        });
        let mut state = self.shared.lock();
        state.guards.push(Arc::downgrade(&inner));
        if !state.running {
            state.running = true;
            spawn_thread(Arc::downgrade(&self.shared));
        }
        Guard {
            inner,
            shared: self.shared.clone(),
        }
    }
}

fn spawn_thread(shared: Weak<Shared>) {
    let spawned = std::thread::Builder::new()
        .name("tenon-extism-watchdog".to_owned())
        .spawn(move || run(&shared));
    if let Err(e) = spawned {
        // Without the thread, deadlines still bound host requests (the
        // boundary enforces them) but not computation.
        tracing::error!(error = %e, "cannot start the Extism watchdog thread");
    }
}

/// Cancels the expired calls, and cancels again the calls cancelled before
/// that have not ended; returns when to look next.
///
/// Extism 1.41 drops a cancel that reaches its timer before the call's
/// timer "start", which it sends only once the instance is made and
/// initialised (start function, `_initialize`): such a call would run on,
/// unwatched. So a cancelled call is cancelled again every [`RESEND`] until
/// it ends (its guard is disarmed); the first cancel after the timer start
/// stops it.
fn sweep(state: &mut State, now: u64) -> u64 {
    let mut earliest = FIRED;
    let resend = now.saturating_add(RESEND.as_nanos() as u64).min(FIRED - 1);
    state.guards.retain(|guard| {
        let Some(guard) = guard.upgrade() else {
            return false;
        };
        let deadline = guard.deadline.load(SeqCst);
        if deadline == IDLE {
            return true;
        }
        if deadline != FIRED && deadline > now {
            earliest = earliest.min(deadline);
            return true;
        }
        if deadline == FIRED
            || guard
                .deadline
                .compare_exchange(deadline, FIRED, SeqCst, SeqCst)
                .is_ok()
        {
            earliest = earliest.min(resend);
            let cancel = guard.cancel.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(cancel) = cancel.as_ref()
                && let Err(e) = cancel.cancel()
            {
                tracing::error!(error = %e, "cannot cancel an Extism call past its deadline");
            }
        }
        true
    });
    earliest
}

fn run(shared: &Weak<Shared>) {
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut state = shared.lock();
        let now = Instant::now();
        let now_nanos = shared.nanos(now);
        let longest = shared.nanos(now + IDLE_WAKE);
        let mut planned = sweep(&mut state, now_nanos).min(longest);
        loop {
            // Publish the plan, then look again: a call armed meanwhile
            // either sees the plan (and wakes us if it is earlier) or is seen
            // here.
            shared.planned.store(planned, SeqCst);
            let again = sweep(&mut state, now_nanos).min(longest);
            if again >= planned {
                break;
            }
            planned = again;
        }
        let wait = Duration::from_nanos(planned.saturating_sub(now_nanos));
        let (state, _) = shared
            .wake
            .wait_timeout(state, wait)
            .unwrap_or_else(|e| e.into_inner());
        drop(state);
        // Only this thread holds the watchdog: the runtime and every guard
        // are gone.
        if Arc::strong_count(&shared) == 1 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_never_idle_or_fired() {
        let watchdog = Watchdog::new();
        let shared = &watchdog.shared;
        assert_eq!(shared.nanos(shared.base), 1);
        assert_eq!(shared.nanos(shared.base - Duration::from_secs(1)), 1);
        assert!(shared.nanos(shared.base + Duration::from_secs(3_000_000_000)) < FIRED);
    }

    #[test]
    fn a_disarmed_guard_was_not_fired() {
        let watchdog = Watchdog::new();
        let guard = watchdog.guard();
        guard.arm(Instant::now() + Duration::from_secs(60));
        assert!(!guard.disarm());
        assert_eq!(guard.inner.deadline.load(SeqCst), IDLE);
    }
}
