//! Health and resource counters shared by the runtimes, kept with atomics so
//! the hot path pays a few relaxed increments.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::runtime::{Health, ResourceStats};

/// One plugin's cumulative resource figures (see [`ResourceStats`]).
#[derive(Debug, Default)]
pub struct PluginStats {
    calls: AtomicU64,
    failures: AtomicU64,
    memory_bytes: AtomicU64,
    memory_peak_bytes: AtomicU64,
    fuel_consumed: AtomicU64,
    cpu_nanos: AtomicU64,
    http_requests: AtomicU64,
    http_bytes_out: AtomicU64,
    http_bytes_in: AtomicU64,
    instances: AtomicU64,
}

impl PluginStats {
    /// Counts one finished call that took `elapsed`.
    pub fn record_call(&self, elapsed: Duration, ok: bool) {
        self.calls.fetch_add(1, Relaxed);
        if !ok {
            self.failures.fetch_add(1, Relaxed);
        }
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.cpu_nanos.fetch_add(nanos, Relaxed);
    }

    /// Counts fuel consumed by a call.
    pub fn add_fuel(&self, fuel: u64) {
        self.fuel_consumed.fetch_add(fuel, Relaxed);
    }

    /// Linear memory of a live instance grew by `bytes` to `instance_total`.
    pub fn memory_grew(&self, bytes: u64, instance_total: u64) {
        self.memory_bytes.fetch_add(bytes, Relaxed);
        self.memory_peak_bytes.fetch_max(instance_total, Relaxed);
    }

    /// An instance holding `bytes` of linear memory went away.
    pub fn memory_released(&self, bytes: u64) {
        // Saturating: a concurrent snapshot must never see a wrapped value.
        let _ = self
            .memory_bytes
            .fetch_update(Relaxed, Relaxed, |m| Some(m.saturating_sub(bytes)));
    }

    /// An instance was created.
    pub fn instance_created(&self) {
        self.instances.fetch_add(1, Relaxed);
    }

    /// An instance was dropped.
    pub fn instance_dropped(&self) {
        let _ = self
            .instances
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
    }

    /// Counts an outbound HTTP request (one per hop) and its body.
    pub fn add_http_request(&self, bytes_out: u64) {
        self.http_requests.fetch_add(1, Relaxed);
        self.http_bytes_out.fetch_add(bytes_out, Relaxed);
    }

    /// Counts received HTTP body bytes.
    pub fn add_http_bytes_in(&self, bytes: u64) {
        self.http_bytes_in.fetch_add(bytes, Relaxed);
    }

    /// The figures now (the runtime fills in `instances_pooled`, which it
    /// keeps itself).
    pub fn snapshot(&self) -> ResourceStats {
        ResourceStats {
            calls: self.calls.load(Relaxed),
            failures: self.failures.load(Relaxed),
            memory_bytes: self.memory_bytes.load(Relaxed),
            memory_peak_bytes: self.memory_peak_bytes.load(Relaxed),
            fuel_consumed: self.fuel_consumed.load(Relaxed),
            cpu_time: Duration::from_nanos(self.cpu_nanos.load(Relaxed)),
            http_requests: self.http_requests.load(Relaxed),
            http_bytes_out: self.http_bytes_out.load(Relaxed),
            http_bytes_in: self.http_bytes_in.load(Relaxed),
            instances: self.instances.load(Relaxed),
            instances_pooled: 0,
        }
    }
}

/// Readiness, last error and start time of one plugin.
#[derive(Debug, Default)]
pub struct HealthState {
    ready: AtomicBool,
    started: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
}

impl HealthState {
    /// The plugin started now.
    pub fn started(&self) {
        *self.started.lock() = Some(Instant::now());
        self.ready.store(true, Relaxed);
    }

    /// The plugin stopped.
    pub fn stopped(&self) {
        self.ready.store(false, Relaxed);
        *self.started.lock() = None;
    }

    /// Whether it is started and not stopped.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Relaxed)
    }

    /// Remembers an error a call returned.
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        *self.last_error.lock() = Some(error.to_string());
    }

    /// The report.
    pub fn health(&self) -> Health {
        Health {
            ready: self.is_ready(),
            last_error: self.last_error.lock().clone(),
            uptime: self.started.lock().map(|s| s.elapsed()).unwrap_or_default(),
        }
    }
}
