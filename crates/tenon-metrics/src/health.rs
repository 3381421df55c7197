//! Health: unknown, healthy, warning or critical, from a plugin's recent
//! error and timeout rates.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::guard::HumanDuration;

/// A plugin's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Too few executions in the window to judge (fewer than
    /// [`HealthThresholds::min_samples`]).
    Unknown,
    /// Error and timeout rates under the warning thresholds.
    Healthy,
    /// A rate at or over its warning threshold.
    Warning,
    /// A rate at or over its critical threshold.
    Critical,
}

impl HealthStatus {
    /// The status as written: `unknown`, `healthy`, `warning`, `critical`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    /// The value of the health gauge: -1 unknown, 0 healthy, 1 warning, 2
    /// critical.
    pub const fn gauge(self) -> f64 {
        match self {
            Self::Unknown => -1.0,
            Self::Healthy => 0.0,
            Self::Warning => 1.0,
            Self::Critical => 2.0,
        }
    }
}

impl HealthStatus {
    /// Whether an operator should look: warning or critical.
    pub const fn needs_attention(self) -> bool {
        matches!(self, Self::Warning | Self::Critical)
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a plugin stops being healthy.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthThresholds {
    /// How far back executions count.
    pub window: Duration,
    /// Fewer executions than this in the window are not judged (unknown).
    pub min_samples: u64,
    /// Error rate (errors and rejections over executions) for a warning.
    pub warning_error_rate: f64,
    /// Error rate for critical.
    pub critical_error_rate: f64,
    /// Timeout rate for a warning.
    pub warning_timeout_rate: f64,
    /// Timeout rate for critical.
    pub critical_timeout_rate: f64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(5 * 60),
            min_samples: 10,
            warning_error_rate: 0.05,
            critical_error_rate: 0.25,
            warning_timeout_rate: 0.05,
            critical_timeout_rate: 0.20,
        }
    }
}

/// Counts of recent executions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentCounts {
    /// Executions (successes, errors and timeouts).
    pub executions: u64,
    /// Errors and rejections.
    pub errors: u64,
    /// Timeouts.
    pub timeouts: u64,
}

impl RecentCounts {
    /// The status these counts earn, with the reason.
    pub fn judge(&self, thresholds: &HealthThresholds) -> (HealthStatus, String) {
        let window = HumanDuration(thresholds.window);
        if self.executions == 0 {
            return (
                HealthStatus::Unknown,
                format!("no executions in the last {window}"),
            );
        }
        if self.executions < thresholds.min_samples {
            let failed = self.errors + self.timeouts;
            return (
                HealthStatus::Unknown,
                format!(
                    "{} in the last {window} ({failed} failed): too few to judge ({} needed)",
                    if self.executions == 1 {
                        "1 execution".to_owned()
                    } else {
                        format!("{} executions", self.executions)
                    },
                    thresholds.min_samples
                ),
            );
        }
        let n = self.executions as f64;
        let error_rate = self.errors as f64 / n;
        let timeout_rate = self.timeouts as f64 / n;
        let checks = [
            (
                "error",
                error_rate,
                self.errors,
                thresholds.critical_error_rate,
                thresholds.warning_error_rate,
            ),
            (
                "timeout",
                timeout_rate,
                self.timeouts,
                thresholds.critical_timeout_rate,
                thresholds.warning_timeout_rate,
            ),
        ];
        let mut worst = (HealthStatus::Healthy, String::new());
        for (what, rate, count, critical, warning) in checks {
            let (status, limit) = if rate >= critical {
                (HealthStatus::Critical, critical)
            } else if rate >= warning {
                (HealthStatus::Warning, warning)
            } else {
                continue;
            };
            if status > worst.0 {
                worst = (
                    status,
                    format!(
                        "{what} rate {:.0}% ({count} of {}) over the last {window} is at or over the {status} threshold {:.0}%",
                        rate * 100.0,
                        self.executions,
                        limit * 100.0
                    ),
                );
            }
        }
        if worst.0 == HealthStatus::Healthy {
            worst.1 = format!(
                "error rate {:.0}% and timeout rate {:.0}% over the last {window}",
                error_rate * 100.0,
                timeout_rate * 100.0
            );
        }
        worst
    }
}

const BUCKETS: u32 = 30;

/// Executions in a sliding window, in time buckets (30 per window), so that
/// recording is O(1) and memory is bounded whatever the call rate.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    width: Duration,
    buckets: VecDeque<(Instant, RecentCounts)>,
}

impl Window {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            width: (window / BUCKETS).max(Duration::from_millis(1)),
            buckets: VecDeque::with_capacity(BUCKETS as usize + 1),
        }
    }

    fn prune(&mut self, now: Instant) {
        let span = self.width * BUCKETS;
        while let Some((start, _)) = self.buckets.front() {
            if now.saturating_duration_since(*start) >= span {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    pub(crate) fn record(&mut self, now: Instant, errors: u64, timeouts: u64) {
        let needs_bucket = self
            .buckets
            .back()
            .is_none_or(|(start, _)| now.saturating_duration_since(*start) >= self.width);
        if needs_bucket {
            // Pruning when a bucket is added keeps the queue bounded;
            // `counts` prunes before it reads.
            self.prune(now);
            self.buckets.push_back((now, RecentCounts::default()));
        }
        let (_, counts) = self.buckets.back_mut().expect("a bucket exists");
        counts.executions += 1;
        counts.errors += errors;
        counts.timeouts += timeouts;
    }

    pub(crate) fn counts(&mut self, now: Instant) -> RecentCounts {
        self.prune(now);
        self.buckets
            .iter()
            .fold(RecentCounts::default(), |mut sum, (_, c)| {
                sum.executions += c.executions;
                sum.errors += c.errors;
                sum.timeouts += c.timeouts;
                sum
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(executions: u64, errors: u64, timeouts: u64, expected: HealthStatus, reason: &str) {
        let counts = RecentCounts {
            executions,
            errors,
            timeouts,
        };
        let (status, why) = counts.judge(&HealthThresholds::default());
        assert_eq!((status, why.as_str()), (expected, reason), "{counts:?}");
    }

    #[test]
    fn judging() {
        check(
            0,
            0,
            0,
            HealthStatus::Unknown,
            "no executions in the last 5m",
        );
        check(
            9,
            7,
            0,
            HealthStatus::Unknown,
            "9 executions in the last 5m (7 failed): too few to judge (10 needed)",
        );
        check(
            10,
            10,
            0,
            HealthStatus::Critical,
            "error rate 100% (10 of 10) over the last 5m is at or over the critical threshold 25%",
        );
        check(
            100,
            1,
            1,
            HealthStatus::Healthy,
            "error rate 1% and timeout rate 1% over the last 5m",
        );
        check(
            100,
            5,
            0,
            HealthStatus::Warning,
            "error rate 5% (5 of 100) over the last 5m is at or over the warning threshold 5%",
        );
        check(
            100,
            30,
            10,
            HealthStatus::Critical,
            "error rate 30% (30 of 100) over the last 5m is at or over the critical threshold 25%",
        );
        check(
            100,
            6,
            20,
            HealthStatus::Critical,
            "timeout rate 20% (20 of 100) over the last 5m is at or over the critical threshold 20%",
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_slides() {
        let mut window = Window::new(Duration::from_secs(300));
        let start = Instant::now();
        window.record(start, 1, 0);
        tokio::time::advance(Duration::from_secs(200)).await;
        window.record(Instant::now(), 0, 1);
        assert_eq!(
            window.counts(Instant::now()),
            RecentCounts {
                executions: 2,
                errors: 1,
                timeouts: 1
            }
        );
        tokio::time::advance(Duration::from_secs(150)).await;
        assert_eq!(
            window.counts(Instant::now()),
            RecentCounts {
                executions: 1,
                errors: 0,
                timeouts: 1
            }
        );
        tokio::time::advance(Duration::from_secs(300)).await;
        assert_eq!(window.counts(Instant::now()), RecentCounts::default());
    }
}
