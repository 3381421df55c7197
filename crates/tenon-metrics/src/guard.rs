//! The crash guard: counts a plugin's failures in a sliding window and decides
//! when it must be disabled.
//!
//! The rules, with the defaults of [`CrashGuardConfig`]:
//! - a failure (a load error, a trap, a timeout, a handler error) is counted
//!   with its time; failures older than the window (5 minutes) are forgotten;
//! - a success clears the count: only an unbroken run of failures trips the
//!   guard;
//! - when the count reaches the threshold (5), the guard decides to disable
//!   the plugin, once, with a reason; the engine acts on the decision;
//! - re-enabling the plugin clears the count but remembers the trip as a
//!   *strike*: each strike halves the threshold (5 → 3 → 2 → 1), so a plugin
//!   that was disabled, re-enabled and fails again is disabled faster;
//! - strikes are forgiven after a quiet period without a trip (1 hour).
//!
//! Time is tokio's [`Instant`], so tests run on a paused clock.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tenon_hooks::ErrorKind;
use tokio::time::Instant;

/// The crash guard's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashGuardConfig {
    /// Failures in the window that disable a plugin with no strikes.
    pub threshold: u32,
    /// How far back failures count.
    pub window: Duration,
    /// How long a re-enabled plugin must go without a trip for its strikes to
    /// be forgiven.
    pub strike_decay: Duration,
}

impl Default for CrashGuardConfig {
    fn default() -> Self {
        Self {
            threshold: 5,
            window: Duration::from_secs(5 * 60),
            strike_decay: Duration::from_secs(60 * 60),
        }
    }
}

impl CrashGuardConfig {
    /// The threshold in force after `strikes` trips: halved (rounding up) per
    /// strike, never below one.
    pub fn threshold_after(&self, strikes: u32) -> u32 {
        let mut threshold = self.threshold.max(1);
        for _ in 0..strikes {
            if threshold == 1 {
                break;
            }
            threshold = threshold.div_ceil(2);
        }
        threshold
    }
}

/// What kind of failure the guard counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The plugin failed to load or to start.
    Load,
    /// The plugin trapped (panic, unreachable, out of memory, stack overflow).
    Trap,
    /// A call ran past its deadline.
    Timeout,
    /// A handler or function returned an error.
    HandlerError,
}

impl FailureKind {
    /// The guard's kind of a handler's or a call's [`ErrorKind`]; `None` for
    /// failures that are not the plugin's doing
    /// ([`ErrorKind::Unavailable`]: busy, not running, an export missing),
    /// which never count against it.
    pub const fn of(kind: ErrorKind) -> Option<Self> {
        Some(match kind {
            ErrorKind::Trap => Self::Trap,
            ErrorKind::Timeout => Self::Timeout,
            ErrorKind::Load => Self::Load,
            ErrorKind::Unavailable => return None,
            _ => Self::HandlerError,
        })
    }

    /// The kind as written in labels and events.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Load => "load",
            Self::Trap => "trap",
            Self::Timeout => "timeout",
            Self::HandlerError => "handler_error",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failure, as reported to the guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Its kind.
    pub kind: FailureKind,
    /// Where it happened: a hook name, a function, `load`…
    pub during: String,
    /// The error message.
    pub message: String,
}

impl Failure {
    /// A failure of `kind` during `during`.
    pub fn new(kind: FailureKind, during: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            during: during.into(),
            message: message.into(),
        }
    }
}

/// The guard's decision that a plugin must be disabled, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisableDecision {
    /// The tenant.
    pub tenant: String,
    /// The plugin.
    pub plugin: String,
    /// Failures counted in the window when the guard tripped.
    pub failures: u32,
    /// The threshold in force (lowered by strikes).
    pub threshold: u32,
    /// The window.
    #[serde(with = "duration_ms")]
    pub window: Duration,
    /// Earlier trips not yet forgiven (0 the first time).
    pub strikes: u32,
    /// The failure that tripped the guard.
    pub last_failure: Failure,
    /// A sentence for the operator.
    pub reason: String,
}

/// A plugin's standing with the guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardStatus {
    /// Failures in the window now.
    pub failures_in_window: u32,
    /// The threshold in force.
    pub threshold: u32,
    /// Trips not yet forgiven.
    pub strikes: u32,
    /// Whether the guard tripped and the plugin was not re-enabled since.
    pub tripped: bool,
}

/// The guard's memory of one plugin: a pure state machine over time.
#[derive(Debug, Clone)]
pub struct GuardState {
    failures: VecDeque<Instant>,
    strikes: u32,
    tripped: bool,
    /// When the plugin was last re-enabled after a trip (strike decay runs
    /// from here).
    reenabled_at: Option<Instant>,
}

impl Default for GuardState {
    fn default() -> Self {
        Self::new()
    }
}

impl GuardState {
    /// A plugin with a clean record.
    pub fn new() -> Self {
        Self {
            failures: VecDeque::new(),
            strikes: 0,
            tripped: false,
            reenabled_at: None,
        }
    }

    fn forget_old(&mut self, config: &CrashGuardConfig, now: Instant) {
        while let Some(first) = self.failures.front() {
            if now.saturating_duration_since(*first) >= config.window {
                self.failures.pop_front();
            } else {
                break;
            }
        }
        if let Some(since) = self.reenabled_at
            && !self.tripped
            && now.saturating_duration_since(since) >= config.strike_decay
        {
            self.strikes = 0;
            self.reenabled_at = None;
        }
    }

    /// Counts a failure at `now`; returns the numbers of a trip when this
    /// failure reaches the threshold (only once until re-enabled).
    pub fn record_failure(&mut self, config: &CrashGuardConfig, now: Instant) -> Option<Trip> {
        self.forget_old(config, now);
        if self.tripped {
            return None;
        }
        self.failures.push_back(now);
        let threshold = config.threshold_after(self.strikes);
        let failures = u32::try_from(self.failures.len()).unwrap_or(u32::MAX);
        if failures < threshold {
            return None;
        }
        let first = *self.failures.front().expect("just pushed");
        let trip = Trip {
            failures,
            threshold,
            strikes: self.strikes,
            span: now.saturating_duration_since(first),
        };
        self.tripped = true;
        self.strikes = self.strikes.saturating_add(1);
        Some(trip)
    }

    /// Starts the count from failures recorded elsewhere (another process
    /// sharing the registry), at the instants they happened; those outside
    /// the window are left out. Only a clean count takes them, so failures
    /// this process already counted are not counted twice. Never trips.
    pub fn seed(
        &mut self,
        config: &CrashGuardConfig,
        failures: impl IntoIterator<Item = Instant>,
        now: Instant,
    ) {
        if self.tripped || !self.failures.is_empty() {
            return;
        }
        let mut failures: Vec<Instant> = failures
            .into_iter()
            .filter(|at| now.saturating_duration_since(*at) < config.window)
            .collect();
        failures.sort();
        self.failures.extend(failures);
    }

    /// A success clears the count.
    pub fn record_success(&mut self, config: &CrashGuardConfig, now: Instant) {
        self.forget_old(config, now);
        self.failures.clear();
    }

    /// The operator re-enabled the plugin: the count is cleared, strikes kept.
    pub fn reenabled(&mut self, now: Instant) {
        self.failures.clear();
        if self.tripped {
            self.tripped = false;
            self.reenabled_at = Some(now);
        }
    }

    /// The standing at `now`.
    pub fn status(&mut self, config: &CrashGuardConfig, now: Instant) -> GuardStatus {
        self.forget_old(config, now);
        GuardStatus {
            failures_in_window: u32::try_from(self.failures.len()).unwrap_or(u32::MAX),
            threshold: config.threshold_after(self.strikes),
            strikes: self.strikes,
            tripped: self.tripped,
        }
    }
}

/// The figures of one trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trip {
    /// Failures counted.
    pub failures: u32,
    /// The threshold in force.
    pub threshold: u32,
    /// Strikes before this trip.
    pub strikes: u32,
    /// Time from the first counted failure to the last.
    pub span: Duration,
}

impl Trip {
    /// The decision, with a reason an operator can act on.
    pub fn decide(
        self,
        config: &CrashGuardConfig,
        tenant: &str,
        plugin: &str,
        failure: Failure,
    ) -> DisableDecision {
        let strikes = match self.strikes {
            0 => String::new(),
            1 => " (it was disabled once before, so its threshold is lowered)".to_owned(),
            n => format!(" (it was disabled {n} times before, so its threshold is lowered)"),
        };
        let reason = format!(
            "{plugin} failed {} times in {} (threshold {} in {}){strikes}; last failure: {} during {}: {}",
            self.failures,
            HumanDuration(self.span),
            self.threshold,
            HumanDuration(config.window),
            failure.kind,
            failure.during,
            failure.message,
        );
        DisableDecision {
            tenant: tenant.to_owned(),
            plugin: plugin.to_owned(),
            failures: self.failures,
            threshold: self.threshold,
            window: config.window,
            strikes: self.strikes,
            last_failure: failure,
            reason,
        }
    }
}

/// Receives the guard's decisions; the engine disables the plugin.
pub trait DecisionSink: Send + Sync + 'static {
    /// The guard decided `decision.plugin` must be disabled.
    fn disable(&self, decision: DisableDecision);
}

impl<F> DecisionSink for F
where
    F: Fn(DisableDecision) + Send + Sync + 'static,
{
    fn disable(&self, decision: DisableDecision) {
        self(decision);
    }
}

impl DecisionSink for tokio::sync::mpsc::UnboundedSender<DisableDecision> {
    fn disable(&self, decision: DisableDecision) {
        // A closed receiver means nobody acts on decisions any more: nothing
        // useful can be done with this one.
        let _ = self.send(decision);
    }
}

/// A stand-alone crash guard for many plugins, for hosts that want only this
/// part of Tenon's measurement. [`crate::Telemetry`] embeds the same logic.
pub struct CrashGuard {
    config: CrashGuardConfig,
    plugins: Mutex<HashMap<TenantPlugin, GuardState>>,
}

/// A (tenant, plugin) key.
type TenantPlugin = (Arc<str>, Arc<str>);

impl fmt::Debug for CrashGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrashGuard")
            .field("config", &self.config)
            .field("plugins", &self.plugins.lock().len())
            .finish()
    }
}

impl CrashGuard {
    /// A guard with these parameters.
    pub fn new(config: CrashGuardConfig) -> Self {
        Self {
            config,
            plugins: Mutex::new(HashMap::new()),
        }
    }

    /// The parameters.
    pub fn config(&self) -> &CrashGuardConfig {
        &self.config
    }

    fn with<R>(&self, tenant: &str, plugin: &str, f: impl FnOnce(&mut GuardState) -> R) -> R {
        let mut plugins = self.plugins.lock();
        let key = (Arc::from(tenant), Arc::from(plugin));
        f(plugins.entry(key).or_default())
    }

    /// Counts a failure; `Some` when the plugin must now be disabled.
    pub fn record_failure(
        &self,
        tenant: &str,
        plugin: &str,
        failure: Failure,
    ) -> Option<DisableDecision> {
        let now = Instant::now();
        let trip = self.with(tenant, plugin, |state| {
            state.record_failure(&self.config, now)
        })?;
        Some(trip.decide(&self.config, tenant, plugin, failure))
    }

    /// Clears the plugin's failure count.
    pub fn record_success(&self, tenant: &str, plugin: &str) {
        let now = Instant::now();
        self.with(tenant, plugin, |state| {
            state.record_success(&self.config, now)
        });
    }

    /// The plugin was re-enabled by an operator.
    pub fn reenabled(&self, tenant: &str, plugin: &str) {
        let now = Instant::now();
        self.with(tenant, plugin, |state| state.reenabled(now));
    }

    /// Forgets the plugin entirely (it was uninstalled).
    pub fn forget(&self, tenant: &str, plugin: &str) {
        self.plugins
            .lock()
            .retain(|(t, p), _| !(&**t == tenant && &**p == plugin));
    }

    /// The plugin's standing.
    pub fn status(&self, tenant: &str, plugin: &str) -> GuardStatus {
        let now = Instant::now();
        self.with(tenant, plugin, |state| state.status(&self.config, now))
    }
}

/// Shows a duration the way people write it: `4m 10s`, `1.5s`, `250ms`.
pub(crate) struct HumanDuration(pub(crate) Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let secs = d.as_secs();
        if secs >= 3600 {
            let (h, m) = (secs / 3600, (secs % 3600) / 60);
            if m == 0 {
                write!(f, "{h}h")
            } else {
                write!(f, "{h}h {m}m")
            }
        } else if secs >= 60 {
            let (m, s) = (secs / 60, secs % 60);
            if s == 0 {
                write!(f, "{m}m")
            } else {
                write!(f, "{m}m {s}s")
            }
        } else if secs >= 1 {
            let ms = d.subsec_millis();
            if ms == 0 {
                write!(f, "{secs}s")
            } else {
                write!(f, "{:.1}s", d.as_secs_f64())
            }
        } else {
            write!(f, "{}ms", d.as_millis())
        }
    }
}

pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_halve_per_strike() {
        let config = CrashGuardConfig::default();
        let got: Vec<u32> = (0..5).map(|s| config.threshold_after(s)).collect();
        assert_eq!(got, [5, 3, 2, 1, 1]);
    }

    #[test]
    fn human_durations() {
        for (d, shown) in [
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(5), "5s"),
            (Duration::from_secs(250), "4m 10s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(3600), "1h"),
        ] {
            assert_eq!(HumanDuration(d).to_string(), shown);
        }
    }
}
