//! Resource sampling: what each plugin of a tenant uses, read from the
//! runtime (memory, CPU time, fuel, instances, HTTP) for the plugins running
//! in this engine and from the host's storage (KV bytes and keys, the bytes
//! of its data directory) for every installed plugin, recorded through
//! [`Telemetry::record_resources`](tenon_metrics::Telemetry::record_resources)
//! (metrics, `stats`). The engine samples in the background every
//! [`EngineBuilder::resource_sampling`](crate::EngineBuilder::resource_sampling)
//! interval, and at once whenever statistics are asked for.

use std::path::Path;
use std::sync::Weak;
use std::time::Duration;

use tenon_manifest::PluginId;
use tenon_metrics::{ResourceSample, ResourceUsage};

use crate::engine::{PluginEngine, Shared};
use crate::error::Result;
use crate::tenant::TenantState;

/// The most directory entries counted for one data directory: beyond it the
/// figure is a lower bound (a plugin cannot make sampling arbitrarily slow).
const MAX_DATA_ENTRIES: usize = 100_000;

impl PluginEngine {
    /// Samples the resources of every plugin installed in this tenant and
    /// records them (metrics and [`PluginEngine::stats`]); returns the
    /// usage, by plugin id. Runtime figures are live only for the plugins
    /// running in this engine (`ResourceUsage::live`).
    pub async fn sample_resources(&self) -> Result<Vec<(PluginId, ResourceUsage)>> {
        let mut out = Vec::new();
        for record in self.list().await? {
            sample_plugin(&self.shared, &self.tenant, &record.id).await?;
            out.push((record.id.clone(), self.usage(&record.id)));
        }
        Ok(out)
    }

    /// Samples one plugin's resources now and returns its usage.
    pub async fn resources(&self, id: &PluginId) -> Result<ResourceUsage> {
        self.record(id).await?;
        sample_plugin(&self.shared, &self.tenant, id).await?;
        Ok(self.usage(id))
    }

    fn usage(&self, id: &PluginId) -> ResourceUsage {
        self.shared
            .telemetry
            .stats(self.tenant.id.as_str(), id.as_str())
            .map(|stats| stats.resources)
            .unwrap_or_default()
    }
}

/// Samples one plugin and records the sample.
pub(crate) async fn sample_plugin(
    shared: &Shared,
    tenant: &TenantState,
    id: &PluginId,
) -> Result<ResourceSample> {
    let mut sample = ResourceSample::default();
    let loaded = tenant
        .running(id)
        .and_then(|running| running.slot.current());
    if let Some(loaded) = loaded {
        let stats = loaded.plugin.stats();
        sample = ResourceSample {
            memory_bytes: stats.memory_bytes,
            memory_peak_bytes: stats.memory_peak_bytes,
            instances: stats.instances,
            instances_pooled: stats.instances_pooled,
            fuel_consumed: stats.fuel_consumed,
            cpu_time: stats.cpu_time,
            http_requests: stats.http_requests,
            http_bytes_out: stats.http_bytes_out,
            http_bytes_in: stats.http_bytes_in,
            live: true,
            ..sample
        };
    }
    let kv = shared.store.kv_usage(&tenant.id, id).await?;
    sample.kv_bytes = kv.bytes;
    sample.kv_keys = kv.keys;
    let dir = shared.paths.plugin_data(tenant.id.as_str(), id)?;
    sample.data_bytes = tokio::task::spawn_blocking(move || directory_bytes(&dir))
        .await
        .unwrap_or_default();
    shared
        .telemetry
        .record_resources(tenant.id.as_str(), id.as_str(), &sample);
    Ok(sample)
}

/// The share of a limit at which a plugin is near it.
const NEAR: f64 = 0.9;

/// What a plugin's usage comes near (at least 90%) of its limits, in
/// words: the memory one instance may have (`limits.memory`, live figures
/// only), its KV byte quota (`quota`, when it may use KV) and the host's KV
/// key quota (`max_keys`).
pub(crate) fn near_limits(
    manifest: &tenon_manifest::Manifest,
    usage: &ResourceUsage,
    quota: Option<u64>,
    max_keys: u64,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |what: &str, used: u64, limit: u64, unit: &str, next: &str| {
        if limit > 0 && used as f64 >= limit as f64 * NEAR {
            out.push(format!(
                "near its limit: {what} {used}{unit} of {limit}{unit} ({}%); {next}",
                used.saturating_mul(100) / limit
            ));
        }
    };
    if usage.live {
        check(
            "memory of one instance",
            usage.memory.peak_bytes,
            manifest.limits.memory.bytes(),
            " bytes",
            "raise `[limits] memory` in its manifest and `tenon upgrade` it",
        );
    }
    if let Some(quota) = quota {
        check(
            "KV",
            usage.storage.kv_bytes,
            quota,
            " bytes",
            "let it delete what it no longer needs, or declare a larger `kv` quota in a new \
             version and grant it",
        );
        check(
            "KV keys",
            usage.storage.kv_keys,
            max_keys,
            "",
            "let it delete keys it no longer needs, or raise the host's KV `max_keys`",
        );
    }
    out
}

/// The bytes of the regular files under `dir`, without following symbolic
/// links, counting at most [`MAX_DATA_ENTRIES`] entries; zero when it does
/// not exist.
pub(crate) fn directory_bytes(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut seen = 0usize;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_DATA_ENTRIES {
                return total;
            }
            // `DirEntry::metadata` does not follow a symbolic link.
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            if metadata.is_dir() {
                pending.push(entry.path());
            } else if metadata.is_file() {
                total = total.saturating_add(metadata.len());
            }
        }
    }
    total
}

/// Samples every tenant served, at once and then every `interval`, and
/// re-judges every plugin's health gauge.
pub(crate) async fn sample_in_background(shared: Weak<Shared>, interval: Duration) {
    crate::background::every(shared, interval, |shared| async move {
        for tenant in shared.tenants.all() {
            let engine = PluginEngine {
                shared: shared.clone(),
                tenant,
            };
            if let Err(error) = engine.sample_resources().await {
                tracing::debug!(tenant = %engine.tenant.id, "sampling plugin resources failed: {error}");
            }
        }
        shared.telemetry.refresh();
    })
    .await;
}

#[cfg(test)]
mod tests {
    use tenon_metrics::ResourceUsage;

    use super::{directory_bytes, near_limits};

    #[test]
    fn near_a_limit_is_named() {
        let text = "manifest_version = 1\n[plugin]\nid = \"a/b\"\nname = \"B\"\nversion = \"1.0.0\"\n\
                    description = \"A plugin of the resource tests.\"\n[engine]\ntenon = \"^1.0\"\n\
                    [runtime]\nkind = \"component\"\nmodule = \"p.wasm\"\n[limits]\nmemory = \"1MiB\"\n";
        let manifest =
            tenon_manifest::parse(text, tenon_manifest::Format::Toml, &Default::default())
                .manifest
                .expect("a manifest");
        let usage = |live: bool, peak: u64, kv_bytes: u64, kv_keys: u64| {
            let mut usage = ResourceUsage {
                live,
                ..ResourceUsage::default()
            };
            usage.memory.peak_bytes = peak;
            usage.storage.kv_bytes = kv_bytes;
            usage.storage.kv_keys = kv_keys;
            usage
        };
        let cases: [(ResourceUsage, Option<u64>, Vec<&str>); 5] = [
            (usage(true, 100, 10, 1), Some(1000), vec![]),
            (
                usage(true, 1 << 20, 0, 0),
                None,
                vec![
                    "near its limit: memory of one instance 1048576 bytes of 1048576 bytes \
                     (100%); raise `[limits] memory` in its manifest and `tenon upgrade` it",
                ],
            ),
            // Not running here: memory is not measured, so not judged.
            (usage(false, 1 << 20, 0, 0), None, vec![]),
            (
                usage(false, 0, 950, 9),
                Some(1000),
                vec![
                    "near its limit: KV 950 bytes of 1000 bytes (95%); let it delete what it \
                     no longer needs, or declare a larger `kv` quota in a new version and grant it",
                    "near its limit: KV keys 9 of 10 (90%); let it delete keys it no longer \
                     needs, or raise the host's KV `max_keys`",
                ],
            ),
            // KV not permitted: its figures are not judged.
            (usage(false, 0, 950, 9), None, vec![]),
        ];
        for (usage, quota, expected) in cases {
            assert_eq!(
                near_limits(&manifest, &usage, quota, 10),
                expected,
                "{usage:?}"
            );
        }
    }

    #[test]
    fn data_bytes_count_files_below_and_never_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big"), vec![0u8; 10_000]).unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("top"), [1u8; 100]).unwrap();
        std::fs::write(dir.path().join("a/b/deep"), [1u8; 23]).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("a/link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("big"), dir.path().join("file-link"))
            .unwrap();
        assert_eq!(directory_bytes(dir.path()), 123);
        assert_eq!(directory_bytes(&dir.path().join("missing")), 0);
    }
}
