//! `tracing` spans for the work Tenon does on a plugin's behalf.
//!
//! The engine opens a [`dispatch_span`] around every hook dispatch and a
//! [`call_span`] around every plugin call, so a host's subscriber sees
//! plugin work nested in its own request spans. Per-handler detail arrives as
//! `tenon::hooks` events recorded by [`crate::Telemetry`].

use tracing::Span;

/// A span for one hook dispatch. The execution id is formatted only when a
/// subscriber records the span.
pub fn dispatch_span(tenant: &str, hook: &str, execution_id: &dyn std::fmt::Display) -> Span {
    tracing::info_span!("tenon.dispatch", tenant, hook, execution_id = %execution_id)
}

/// A span for one call of a plugin (a function, a lifecycle step).
pub fn call_span(tenant: &str, plugin: &str, function: &str) -> Span {
    tracing::info_span!("tenon.call", tenant, plugin, function)
}
