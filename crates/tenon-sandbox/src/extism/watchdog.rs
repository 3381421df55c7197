//! Stops Extism calls that outlive their deadline.
//!
//! Extism interrupts a running call by bumping the epoch of the plugin's
//! wasmtime engine (through its [`::extism::CancelHandle`]). Tenon does not use
//! Extism's own per-manifest timeout: a call's deadline comes from the
//! manifest *and* the caller (`CallOptions::timeout`), so one thread per
//! runtime watches every running call and cancels the ones whose deadline
//! passed.
//!
//! The thread sleeps until the earliest deadline it knows of. Registering a
//! call wakes it only when that call's deadline is earlier than the one it
//! sleeps towards, so a steady stream of calls with the same timeout costs
//! one uncontended lock per call and no wake-ups.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Instant;

use ::extism::CancelHandle;

/// The watchdog of one runtime; its thread ends when the last handle is
/// dropped.
#[derive(Clone)]
pub(super) struct Watchdog {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog")
            .field("watched", &self.shared.lock().calls.len())
            .finish()
    }
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    /// Watched calls by (deadline, ticket).
    calls: BTreeMap<(Instant, u64), Watched>,
    next_ticket: u64,
    /// When the thread will look again (`None`: it waits to be woken).
    sleeping_until: Option<Instant>,
    /// Whether the thread was started.
    running: bool,
}

struct Watched {
    cancel: CancelHandle,
    fired: Arc<AtomicBool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves the map consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A call being watched. Dropping it without [`Watch::finish`] also stops
/// the watch.
pub(super) struct Watch {
    shared: Arc<Shared>,
    key: Option<(Instant, u64)>,
    fired: Arc<AtomicBool>,
}

impl Watch {
    /// Stops watching; returns whether the call was cancelled because its
    /// deadline passed.
    pub(super) fn finish(mut self) -> bool {
        self.unwatch();
        self.fired.load(Ordering::Acquire)
    }

    fn unwatch(&mut self) {
        if let Some(key) = self.key.take() {
            self.shared.lock().calls.remove(&key);
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.unwatch();
    }
}

impl Watchdog {
    pub(super) fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    calls: BTreeMap::new(),
                    next_ticket: 0,
                    sleeping_until: None,
                    running: false,
                }),
                wake: Condvar::new(),
            }),
        }
    }

    /// Watches a call that must end by `deadline`; past it, `cancel` is
    /// used once.
    pub(super) fn watch(&self, deadline: Instant, cancel: CancelHandle) -> Watch {
        let fired = Arc::new(AtomicBool::new(false));
        let mut state = self.shared.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.calls.insert(
            (deadline, ticket),
            Watched {
                cancel,
                fired: fired.clone(),
            },
        );
        if !state.running {
            state.running = true;
            spawn_thread(Arc::downgrade(&self.shared));
        }
        let earlier = state.sleeping_until.is_none_or(|t| deadline < t);
        drop(state);
        if earlier {
            self.shared.wake.notify_one();
        }
        Watch {
            shared: self.shared.clone(),
            key: Some((deadline, ticket)),
            fired,
        }
    }
}

fn spawn_thread(shared: Weak<Shared>) {
    let spawned = std::thread::Builder::new()
        .name("tenon-extism-watchdog".to_owned())
        .spawn(move || run(&shared));
    if let Err(e) = spawned {
        // Without the thread, deadlines are still enforced for host calls
        // (the boundary bounds them) but not for pure computation.
        tracing::error!(error = %e, "cannot start the Extism watchdog thread");
    }
}

fn run(shared: &Weak<Shared>) {
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut state = shared.lock();
        let now = Instant::now();
        while let Some(entry) = state.calls.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let watched = entry.remove();
            watched.fired.store(true, Ordering::Release);
            if let Err(e) = watched.cancel.cancel() {
                tracing::error!(error = %e, "cannot cancel an Extism call past its deadline");
            }
        }
        let next = state.calls.first_key_value().map(|(k, _)| k.0);
        state.sleeping_until = next;
        // Wake at least once a second to notice that the runtime is gone.
        let wait = next.map_or(std::time::Duration::from_secs(1), |t| {
            t.saturating_duration_since(now)
                .min(std::time::Duration::from_secs(1))
        });
        let (state, _) = shared
            .wake
            .wait_timeout(state, wait)
            .unwrap_or_else(|e| e.into_inner());
        drop(state);
        if Arc::strong_count(&shared) == 1 {
            return;
        }
    }
}
