//! How a handler runs: [`Priority`], [`FailPolicy`], [`Backoff`] and the
//! [`HandlerOptions`] that carry them to [`HookRegistry::register`](crate::HookRegistry::register).
//!
//! These mirror the manifest's types of the same names (tenon-hooks depends on
//! no other Tenon crate), so converting is field by field.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A handler priority: higher runs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Priority(pub i32);

impl Priority {
    /// System-critical handlers (1000).
    pub const CRITICAL: Self = Self(1000);
    /// High-priority business logic (500).
    pub const HIGH: Self = Self(500);
    /// Ordinary handlers, the default (100).
    pub const NORMAL: Self = Self(100);
    /// Optional enhancements (50).
    pub const LOW: Self = Self(50);
    /// Cleanup and finalization (10).
    pub const CLEANUP: Self = Self(10);

    /// The named levels, highest first.
    pub const NAMED: [(&'static str, Self); 5] = [
        ("critical", Self::CRITICAL),
        ("high", Self::HIGH),
        ("normal", Self::NORMAL),
        ("low", Self::LOW),
        ("cleanup", Self::CLEANUP),
    ];

    /// Parses a named level (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMED
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, p)| *p)
    }
}

impl Default for Priority {
    fn default() -> Self {
        Self::NORMAL
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Self::NAMED.iter().find(|(_, p)| p == self) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for Priority {
    /// A named level serializes as its name, any other value as an integer.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match Self::NAMED.iter().find(|(_, p)| p == self) {
            Some((name, _)) => serializer.serialize_str(name),
            None => serializer.serialize_i32(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Priority {
    /// Accepts an integer or a level name.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i32),
            Name(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Int(n) => Ok(Self(n)),
            Raw::Name(name) => Self::from_name(&name).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{name}` is not a priority: use critical, high, normal, low, cleanup or an integer"
                ))
            }),
        }
    }
}

/// What a handler's failure (error, timeout, rejected patch, refused block)
/// does to the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailPolicy {
    /// The chain goes on without this handler's contribution (the default).
    #[default]
    Open,
    /// The chain stops; the outcome says which handler stopped it and why.
    Closed,
}

impl fmt::Display for FailPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "fail-open",
            Self::Closed => "fail-closed",
        })
    }
}

/// The shape of a backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackoffKind {
    /// Retry `n` waits `delay × n`.
    #[default]
    Linear,
    /// Retry `n` waits `delay × 2^(n-1)`.
    Exponential,
}

/// The delay before each retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Backoff {
    /// Linear or exponential.
    pub kind: BackoffKind,
    /// The delay before the first retry.
    #[serde(rename = "delay_ms", with = "crate::spec::duration_ms")]
    pub delay: Duration,
}

impl Backoff {
    /// `delay`, `2 × delay`, `3 × delay`, …
    pub const fn linear(delay: Duration) -> Self {
        Self {
            kind: BackoffKind::Linear,
            delay,
        }
    }

    /// `delay`, `2 × delay`, `4 × delay`, …
    pub const fn exponential(delay: Duration) -> Self {
        Self {
            kind: BackoffKind::Exponential,
            delay,
        }
    }

    /// The wait before retry number `retry` (1 for the first retry).
    /// Saturates instead of overflowing.
    pub fn delay_before(&self, retry: u32) -> Duration {
        let retry = retry.max(1);
        let factor = match self.kind {
            BackoffKind::Linear => retry,
            BackoffKind::Exponential => 1u32.checked_shl(retry - 1).unwrap_or(u32::MAX),
        };
        self.delay.saturating_mul(factor)
    }
}

/// How one handler is registered: everything but the plugin, the hook and the
/// handler itself. `HandlerOptions::default()` is normal priority, fail-open,
/// the spec's default timeout, no retries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandlerOptions {
    /// Higher runs first.
    pub priority: Priority,
    /// What a failure does to the chain.
    pub fail_policy: FailPolicy,
    /// Per-attempt timeout; the spec's `default_timeout` when `None`.
    pub timeout: Option<Duration>,
    /// Extra attempts after an error or a timeout (not after a rejected patch
    /// or a refused block: those would fail again).
    pub retries: u32,
    /// Delay between attempts; retries follow each other at once when `None`.
    pub backoff: Option<Backoff>,
}

impl HandlerOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the priority.
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the failure policy.
    pub fn with_fail_policy(mut self, fail_policy: FailPolicy) -> Self {
        self.fail_policy = fail_policy;
        self
    }

    /// Sets the per-attempt timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the retries and their backoff.
    pub fn with_retries(mut self, retries: u32, backoff: Option<Backoff>) -> Self {
        self.retries = retries;
        self.backoff = backoff;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_delays() {
        let ms = Duration::from_millis;
        let cases = [
            (
                Backoff::linear(ms(100)),
                [ms(100), ms(200), ms(300), ms(400)],
            ),
            (
                Backoff::exponential(ms(100)),
                [ms(100), ms(200), ms(400), ms(800)],
            ),
        ];
        for (backoff, expected) in cases {
            let delays: Vec<_> = (1..=4).map(|n| backoff.delay_before(n)).collect();
            assert_eq!(delays, expected, "{backoff:?}");
        }
        assert_eq!(
            Backoff::exponential(ms(1)).delay_before(40),
            ms(1).saturating_mul(u32::MAX)
        );
        assert_eq!(
            Backoff::linear(Duration::MAX).delay_before(3),
            Duration::MAX
        );
    }

    #[test]
    fn priority_names_round_trip() {
        for (name, priority) in Priority::NAMED {
            assert_eq!(Priority::from_name(&name.to_uppercase()), Some(priority));
            assert_eq!(
                serde_json::to_value(priority).ok(),
                Some(serde_json::json!(name))
            );
            assert_eq!(priority.to_string(), name);
        }
        let custom: Priority = serde_json::from_str("42").expect("integer priority");
        assert_eq!(custom, Priority(42));
        let err = serde_json::from_str::<Priority>("\"urgent\"").expect_err("unknown name");
        assert!(err.to_string().contains("not a priority"), "{err}");
    }
}
