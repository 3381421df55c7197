//! A Prometheus exporter (feature `prometheus`): a recorder whose text
//! exposition the host serves on its own `/metrics` route.

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use crate::names::HOOK_DURATION;

/// Buckets for handler durations, in seconds: from 10 µs (a native handler)
/// to the 8 s default chain budget.
pub const DURATION_BUCKETS: &[f64] = &[
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 1.5, 3.0, 8.0,
];

/// Why the exporter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the Prometheus exporter: {0}")]
pub struct ExporterError(#[from] BuildError);

/// Installs a Prometheus recorder as the global `metrics` recorder, with
/// Tenon's duration buckets, and returns the handle that renders the text
/// exposition. Call it once, before the engine is built.
pub fn install() -> Result<PrometheusHandle, ExporterError> {
    Ok(builder()?.install_recorder()?)
}

/// The builder [`install`] uses, for hosts that want to adjust it or keep
/// the recorder local (`build_recorder`).
pub fn builder() -> Result<PrometheusBuilder, ExporterError> {
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HOOK_DURATION.to_owned()), DURATION_BUCKETS)?)
}
