//! Instance slots of one plugin: at most `max_instances` in use at once;
//! callers beyond that queue, and each slot released goes straight to the
//! first caller still waiting (no polling, no barging), up to
//! `wait_timeout`.
//!
//! One lock guards the idle slots, the count of slots in use and the queue,
//! so a call takes it once to get a slot and once to give it back.

use std::collections::VecDeque;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};

use super::engines::Engine;
use crate::fairness::Lease;

/// A slot, boxed: it is large (an engine and an instance) and moves on every
/// call, between the pool, the call and back.
pub(super) type BoxedSlot = Box<Slot>;

/// One place to run calls: an engine of its own and, with `reuse`, the warm
/// instance on it.
pub(super) struct Slot {
    pub(super) engine: Engine,
    pub(super) instance: Option<Instance>,
}

/// A live Extism instance and what it has been set up with.
pub(super) struct Instance {
    pub(super) plugin: ::extism::Plugin,
    /// The run (the time between two stops) it belongs to: an instance of
    /// an earlier run is never reused.
    pub(super) run: u64,
    /// The setup generation it is up to date with.
    pub(super) setup: u64,
    /// The generation of the config it was activated or configured with
    /// (0: never activated).
    pub(super) config: u64,
    /// Its place under the fairness caps, given back when it is dropped.
    _lease: Lease,
}

impl Instance {
    pub(super) fn new(plugin: ::extism::Plugin, run: u64, lease: Lease) -> Self {
        Self {
            plugin,
            run,
            setup: 0,
            config: 0,
            _lease: lease,
        }
    }
}

/// What a waiting caller receives: the right to run, with an idle slot when
/// there is one (`None`: build one).
type Grant = Option<BoxedSlot>;

pub(super) struct Pool {
    state: Mutex<State>,
    /// Told when the last slot in use comes back.
    quiet: Notify,
    pub(super) max_instances: u32,
    pub(super) wait_timeout: Duration,
}

struct State {
    idle: Vec<BoxedSlot>,
    /// Slots in use (checked out, or granted to a waiter).
    busy: u32,
    waiters: VecDeque<oneshot::Sender<Grant>>,
    /// Whether [`Pool::drain`] waits for `busy` to reach 0.
    draining: bool,
}

/// The right to run one call, and the slot to run it on (or `None` when a
/// new one must be built). Dropping it gives the right back; give the slot
/// back with [`Checkout::finish`].
pub(super) struct Checkout<'a> {
    pool: &'a Pool,
    pub(super) slot: Option<BoxedSlot>,
}

impl Checkout<'_> {
    /// Gives the right to run back, with `slot` if it may serve again.
    pub(super) fn finish(mut self, slot: Option<BoxedSlot>) {
        self.slot = slot;
    }

    /// Takes the slot and the right to run out of the checkout: the caller
    /// gives them back with [`Pool::release`] once the call has really
    /// ended (a call on another thread outlives a caller that went away).
    pub(super) fn detach(mut self) -> Option<BoxedSlot> {
        let slot = self.slot.take();
        // Nothing is left to drop but the borrow of the pool.
        std::mem::forget(self);
        slot
    }
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        self.pool.release(self.slot.take());
    }
}

/// A caller in the queue. If it goes away (timed out, or its future was
/// dropped) just as a slot is granted to it, the slot goes back to the pool.
struct Waiting<'a> {
    pool: &'a Pool,
    grant: oneshot::Receiver<Grant>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.grant.close();
        if let Ok(grant) = self.grant.try_recv() {
            self.pool.release(grant);
        }
    }
}

impl Pool {
    pub(super) fn new(max_instances: u32, wait_timeout: Duration) -> Self {
        Self {
            state: Mutex::new(State {
                idle: Vec::new(),
                busy: 0,
                waiters: VecDeque::new(),
                draining: false,
            }),
            quiet: Notify::new(),
            max_instances: max_instances.max(1),
            wait_timeout,
        }
    }

    /// A free slot, if there is one now.
    pub(super) fn try_checkout(&self) -> Option<Checkout<'_>> {
        let mut state = self.state.lock();
        if state.busy < self.max_instances {
            state.busy += 1;
            return Some(Checkout {
                pool: self,
                slot: state.idle.pop(),
            });
        }
        None
    }

    /// Waits for a free slot; on timeout, returns how long it waited.
    pub(super) async fn wait(&self) -> Result<Checkout<'_>, Duration> {
        let mut waiting = {
            let mut state = self.state.lock();
            if state.busy < self.max_instances {
                state.busy += 1;
                return Ok(Checkout {
                    pool: self,
                    slot: state.idle.pop(),
                });
            }
            let (grant, receiver) = oneshot::channel();
            state.waiters.push_back(grant);
            Waiting {
                pool: self,
                grant: receiver,
            }
        };
        let started = tokio::time::Instant::now();
        match tokio::time::timeout(self.wait_timeout, &mut waiting.grant).await {
            Ok(Ok(slot)) => Ok(Checkout { pool: self, slot }),
            // Timed out (a grant that races the timeout is taken back by
            // `Waiting`'s drop), or the pool is going away.
            Ok(Err(_)) | Err(_) => Err(started.elapsed()),
        }
    }

    /// [`Pool::try_checkout`], else [`Pool::wait`].
    #[cfg(test)]
    async fn checkout(&self) -> Result<Checkout<'_>, Duration> {
        match self.try_checkout() {
            Some(checkout) => Ok(checkout),
            None => self.wait().await,
        }
    }

    /// Gives a right to run back: to the first caller still waiting, or to
    /// the pool.
    pub(super) fn release(&self, mut grant: Grant) {
        let mut state = self.state.lock();
        while let Some(waiter) = state.waiters.pop_front() {
            match waiter.send(grant) {
                Ok(()) => return,
                // That caller is gone: try the next.
                Err(back) => grant = back,
            }
        }
        state.busy -= 1;
        if let Some(slot) = grant {
            state.idle.push(slot);
        }
        if state.busy == 0 && state.draining {
            self.quiet.notify_waiters();
        }
    }

    /// Warm instances idle in the pool now.
    pub(super) fn idle_instances(&self) -> u64 {
        let state = self.state.lock();
        state
            .idle
            .iter()
            .filter(|slot| slot.instance.is_some())
            .count() as u64
    }

    /// Takes the instance out of one idle slot (the slot, with its engine,
    /// stays), for the caller to drop.
    pub(super) fn reclaim_idle(&self) -> Option<Instance> {
        let mut state = self.state.lock();
        state.idle.iter_mut().find_map(|slot| slot.instance.take())
    }

    /// Puts a slot in the pool without a call (the one made at load).
    pub(super) fn adopt(&self, slot: BoxedSlot) {
        self.state.lock().idle.push(slot);
    }

    /// Waits (up to the wait timeout) until no call is in progress, then
    /// takes every idle slot.
    pub(super) async fn drain(&self) -> Vec<BoxedSlot> {
        let _ = tokio::time::timeout(self.wait_timeout, async {
            loop {
                let quiet = self.quiet.notified();
                tokio::pin!(quiet);
                quiet.as_mut().enable();
                {
                    let mut state = self.state.lock();
                    if state.busy == 0 {
                        return;
                    }
                    state.draining = true;
                }
                quiet.await;
            }
        })
        .await;
        let mut state = self.state.lock();
        state.draining = false;
        std::mem::take(&mut state.idle)
    }

    /// Takes every idle slot at once.
    pub(super) fn take_idle(&self) -> Vec<BoxedSlot> {
        std::mem::take(&mut self.state.lock().idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waiters_get_released_rights_in_order_without_polling() {
        let pool = Pool::new(1, Duration::from_secs(5));
        let first = pool.try_checkout().expect("a free slot");
        assert!(pool.try_checkout().is_none());
        let second = pool.checkout();
        let third = pool.checkout();
        tokio::pin!(second, third);
        // Both queue behind the first.
        assert!(futures::poll!(second.as_mut()).is_pending());
        assert!(futures::poll!(third.as_mut()).is_pending());
        drop(first);
        let second = second.await.unwrap();
        assert!(futures::poll!(third.as_mut()).is_pending());
        drop(second);
        assert!(third.await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_waits_too_long_is_told_how_long() {
        let pool = Pool::new(1, Duration::from_millis(20));
        let held = pool.checkout().await.unwrap();
        let waited = pool.checkout().await.err().expect("busy");
        assert_eq!(waited, Duration::from_millis(20));
        // The timed-out caller left no trace: the next release frees the
        // pool.
        drop(held);
        assert!(pool.try_checkout().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_waiter_does_not_leak_its_grant() {
        let pool = Pool::new(1, Duration::from_secs(5));
        let held = pool.checkout().await.unwrap();
        {
            let waiter = pool.checkout();
            tokio::pin!(waiter);
            assert!(futures::poll!(waiter.as_mut()).is_pending());
            // Granted, then dropped before it ran.
            drop(held);
        }
        assert_eq!(pool.state.lock().busy, 0);
        assert!(pool.try_checkout().is_some());
    }
}
