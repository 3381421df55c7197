//! Instance slots of one plugin: at most `max_instances` in use at once;
//! callers beyond that wait (woken in order by a slot's release, never
//! polling) up to `wait_timeout`.

use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::engines::Engine;

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
}

impl Instance {
    pub(super) fn new(plugin: ::extism::Plugin, run: u64) -> Self {
        Self {
            plugin,
            run,
            setup: 0,
            config: 0,
        }
    }
}

pub(super) struct Pool {
    permits: Semaphore,
    idle: Mutex<Vec<Slot>>,
    pub(super) max_instances: u32,
    pub(super) wait_timeout: Duration,
}

/// The right to run one call, and the slot to run it on (taken from the
/// idle list, or `None` when a new one must be built).
pub(super) struct Checkout<'a> {
    _permit: SemaphorePermit<'a>,
    pub(super) slot: Option<Slot>,
}

impl Pool {
    pub(super) fn new(max_instances: u32, wait_timeout: Duration) -> Self {
        let max_instances = max_instances.max(1);
        Self {
            permits: Semaphore::new(max_instances as usize),
            idle: Mutex::new(Vec::new()),
            max_instances,
            wait_timeout,
        }
    }

    /// Waits for a free slot; on timeout, returns how long it waited.
    pub(super) async fn checkout(&self) -> Result<Checkout<'_>, Duration> {
        let permit = match self.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                let started = tokio::time::Instant::now();
                match tokio::time::timeout(self.wait_timeout, self.permits.acquire()).await {
                    Ok(Ok(permit)) => permit,
                    // The semaphore is never closed; treat it as a timeout.
                    Ok(Err(_)) | Err(_) => return Err(started.elapsed()),
                }
            }
        };
        Ok(Checkout {
            _permit: permit,
            slot: self.idle.lock().pop(),
        })
    }

    /// Waits (up to the wait timeout) until no call is in progress, then
    /// takes every idle slot.
    pub(super) async fn drain(&self) -> Vec<Slot> {
        let all = self.max_instances;
        let _quiet = tokio::time::timeout(self.wait_timeout, self.permits.acquire_many(all)).await;
        std::mem::take(&mut *self.idle.lock())
    }

    /// Returns a slot after a call.
    pub(super) fn put_back(&self, slot: Slot) {
        self.idle.lock().push(slot);
    }
}
