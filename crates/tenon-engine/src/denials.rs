//! Permission denials, logged and audited within limits
//! ([`DenialLogLimits`]): a plugin hammering a permission it was not
//! granted gets the first few of each window logged one by one and the
//! rest counted, then reported in one line and one event when the window
//! ends. Memory stays bounded: one window per plugin, tenant and
//! permission kind that was denied recently, forgotten once it ended.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tenon_manifest::{PluginId, Version};
use tenon_sandbox::{Caller, PermissionDenial};

use crate::config::DenialLogLimits;

/// Tenant, plugin, permission kind.
type Key = (String, PluginId, String);

struct Window {
    started: Instant,
    logged: u32,
    suppressed: u64,
    version: Version,
    last: PermissionDenial,
}

/// Denials of one window that were counted, not logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Suppressed {
    pub(crate) tenant: String,
    pub(crate) plugin: PluginId,
    pub(crate) version: Version,
    /// The last denial counted (its permission kind is the window's).
    pub(crate) last: PermissionDenial,
    pub(crate) count: u64,
    pub(crate) window: Duration,
}

/// What to do with one denial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Admission {
    /// Log and audit it on its own.
    pub(crate) log: bool,
    /// The previous window of its key ended with denials to report.
    pub(crate) ended: Option<Suppressed>,
}

/// The denial windows of every plugin.
pub(crate) struct DenialLog {
    limits: DenialLogLimits,
    windows: Mutex<HashMap<Key, Window>>,
}

impl DenialLog {
    pub(crate) fn new(limits: DenialLogLimits) -> Self {
        Self {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn limits(&self) -> DenialLogLimits {
        self.limits
    }

    /// Counts one denial at `now`.
    pub(crate) fn admit(
        &self,
        caller: &Caller,
        denial: &PermissionDenial,
        now: Instant,
    ) -> Admission {
        let key = (
            caller.tenant.clone(),
            caller.plugin.clone(),
            denial.permission.clone(),
        );
        let mut windows = self.windows.lock();
        let mut ended = None;
        let window = windows.entry(key).or_insert_with(|| Window {
            started: now,
            logged: 0,
            suppressed: 0,
            version: caller.version.clone(),
            last: denial.clone(),
        });
        if now.duration_since(window.started) >= self.limits.window {
            ended = self.report(caller.tenant.clone(), caller.plugin.clone(), window);
            *window = Window {
                started: now,
                logged: 0,
                suppressed: 0,
                version: caller.version.clone(),
                last: denial.clone(),
            };
        }
        let log = window.logged < self.limits.per_window;
        if log {
            window.logged += 1;
        } else {
            window.suppressed += 1;
            window.version = caller.version.clone();
            window.last = denial.clone();
        }
        Admission { log, ended }
    }

    /// The windows over at `now` with denials to report; forgets every
    /// window that is over.
    pub(crate) fn ended(&self, now: Instant) -> Vec<Suppressed> {
        let mut reports = Vec::new();
        self.windows.lock().retain(|(tenant, plugin, _), window| {
            if now.duration_since(window.started) < self.limits.window {
                return true;
            }
            reports.extend(self.report(tenant.clone(), plugin.clone(), window));
            false
        });
        reports
    }

    fn report(&self, tenant: String, plugin: PluginId, window: &Window) -> Option<Suppressed> {
        (window.suppressed > 0).then(|| Suppressed {
            tenant,
            plugin,
            version: window.version.clone(),
            last: window.last.clone(),
            count: window.suppressed,
            window: self.limits.window,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn caller(plugin: &str) -> Caller {
        Caller {
            plugin: PluginId::new(plugin).unwrap(),
            version: Version::parse("1.0.0").unwrap(),
            tenant: "t".to_owned(),
            permissions: Arc::default(),
        }
    }

    fn denial(permission: &str, attempted: &str) -> PermissionDenial {
        PermissionDenial {
            permission: permission.to_owned(),
            attempted: attempted.to_owned(),
            reason: "not granted".to_owned(),
        }
    }

    #[test]
    fn the_first_denials_of_a_window_are_logged_the_rest_counted_and_reported_once() {
        let log = DenialLog::new(DenialLogLimits::new(2, Duration::from_secs(10)));
        let (a, b) = (caller("acme/a"), caller("acme/b"));
        let t0 = Instant::now();
        let logged: Vec<bool> = (0..5)
            .map(|n| {
                let admission = log.admit(&a, &denial("events", &format!("publish x.{n}")), t0);
                assert_eq!(admission.ended, None);
                admission.log
            })
            .collect();
        assert_eq!(logged, [true, true, false, false, false]);
        // Another plugin, and another permission of the same plugin, have
        // windows of their own.
        assert!(log.admit(&b, &denial("events", "publish y"), t0).log);
        assert!(log.admit(&a, &denial("kv", "kv"), t0).log);
        // Nothing is over before the window ends.
        assert_eq!(log.ended(t0 + Duration::from_secs(9)), vec![]);
        // The next denial after the window reports the one before.
        let later = t0 + Duration::from_secs(10);
        let admission = log.admit(&a, &denial("events", "publish z"), later);
        assert!(admission.log);
        let ended = admission.ended.expect("the suppressed denials");
        assert_eq!(
            (ended.count, ended.last.attempted.as_str()),
            (3, "publish x.4")
        );
        // The background finds the other windows over: nothing was
        // suppressed there, so nothing to report, and they are forgotten.
        assert_eq!(log.ended(later + Duration::from_secs(1)), vec![]);
        assert_eq!(log.windows.lock().len(), 1);
        for _ in 0..4 {
            log.admit(&a, &denial("events", "publish w"), later);
        }
        let reports = log.ended(later + Duration::from_secs(10));
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].count, 3);
        assert!(log.windows.lock().is_empty(), "windows over are forgotten");
    }
}
