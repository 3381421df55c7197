//! Doctor: what is wrong with each plugin and with the registry, in one
//! report an operator can act on.

use serde::Serialize;
use tenon_manifest::{HostInfo, PluginId, Version, check_engine};
use tenon_metrics::{
    GuardStatus, HealthSnapshot, HealthStatus, HostCounters, PluginStats, ResourceUsage,
};

/// How many of the newest stored hook receipts doctor judges health by.
const STORED_RECEIPTS: usize = 10_000;
use tenon_registry::{PluginState, RegistryError};

use crate::activate;
use crate::engine::PluginEngine;
use crate::error::Result;
use crate::grants;

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DoctorReport {
    /// The host.
    pub host: HostSection,
    /// The registry.
    pub registry: RegistrySection,
    /// Every installed plugin of the tenant.
    pub plugins: Vec<PluginDiagnosis>,
    /// Whether nothing needs attention.
    pub healthy: bool,
}

/// The host's part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostSection {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: Option<String>,
    /// The plugin API versions served.
    pub api_versions: Vec<String>,
    /// The runtimes available.
    pub runtimes: Vec<String>,
    /// Whether it booted in safe mode.
    pub safe_mode: bool,
    /// The tenant examined.
    pub tenant: String,
    /// Compiled artifacts the runtimes refused from their caches since the
    /// engine started (forged, foreign or corrupt; each was recompiled).
    pub cache_rejections: u64,
    /// What needs attention in the host itself (a cache rejection, dropped
    /// or unwritten events), in words.
    pub problems: Vec<String>,
}

/// The registry's part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegistrySection {
    /// Backend (`sqlite`, `postgres`, `memory`).
    pub backend: String,
    /// Where it is.
    pub location: String,
    /// Its schema version.
    pub schema_version: i64,
    /// Events written by this engine.
    pub events_written: u64,
    /// Events dropped because the queue was full.
    pub events_dropped: u64,
    /// Events that could not be written.
    pub events_failed: u64,
}

/// One plugin's diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginDiagnosis {
    /// The plugin.
    pub id: PluginId,
    /// Its current version.
    pub version: Version,
    /// Its state.
    pub state: PluginState,
    /// Whether it should run.
    pub enabled: bool,
    /// Whether it runs in this engine.
    pub running: bool,
    /// Where it was installed from.
    pub source: String,
    /// Its runtime kind, and whether this host has that runtime.
    pub runtime: String,
    /// Whether the runtime is available.
    pub runtime_available: bool,
    /// Instance isolation (`reuse` or `fresh`) and pool size.
    pub isolation: String,
    /// The last error recorded.
    pub last_error: Option<String>,
    /// Permissions declared.
    pub declared: Vec<String>,
    /// Permissions declared but not granted.
    pub not_granted: Vec<String>,
    /// What verifying its current version found: signers, trust level,
    /// runtime posture (`None` for a version stored before it was kept).
    pub trust: Option<crate::trust::TrustRecord>,
    /// Whether its module reads back intact from the registry.
    pub artifact: String,
    /// Whether it is compatible with this host.
    pub compatibility: String,
    /// Required config without a value.
    pub missing_config: Vec<String>,
    /// Health, judged from the hook receipts stored by every process of the
    /// registry.
    pub health: HealthStatus,
    /// Why.
    pub health_reason: String,
    /// Whether its runtime reports it ready, where it runs here.
    pub ready: Option<bool>,
    /// The last error its runtime saw, where it runs here.
    pub runtime_error: Option<String>,
    /// The crash guard's standing.
    pub guard: GuardStatus,
    /// What it uses: storage always, runtime figures where it runs here.
    pub resources: ResourceUsage,
    /// What needs attention, in words.
    pub problems: Vec<String>,
}

/// The way back for a plugin whose module is gone: install it again
/// (what an uninstall keeps, its config and grants, passes to it).
fn reinstall(id: &PluginId) -> String {
    format!(
        "`tenon disable {id}`, `tenon uninstall {id}`, then `tenon install PATH` from its \
         package (its config and grants are kept)"
    )
}

impl PluginEngine {
    /// Examines every installed plugin of the tenant and the registry.
    pub async fn doctor(&self) -> Result<DoctorReport> {
        self.shared.writer.flush().await;
        let info = self.shared.store.info();
        let counters = self.shared.host_counters();
        let profile = &self.shared.profile;
        let host = HostSection {
            name: profile.name.clone(),
            version: profile.version.as_ref().map(ToString::to_string),
            api_versions: profile
                .api_versions
                .iter()
                .map(ToString::to_string)
                .collect(),
            runtimes: self
                .shared
                .runtimes
                .keys()
                .map(|k| k.as_str().to_owned())
                .collect(),
            safe_mode: self.shared.safe_mode,
            tenant: self.tenant.id.as_str().to_owned(),
            cache_rejections: counters.cache_rejections,
            problems: self.host_problems(&counters),
        };
        let registry = RegistrySection {
            backend: info.backend.as_str().to_owned(),
            location: info.location.clone(),
            schema_version: info.schema_version,
            events_written: counters.events_written,
            events_dropped: counters.events_dropped,
            events_failed: counters.events_failed,
        };
        let stored = self.stored_stats(None, STORED_RECEIPTS).await?;
        let mut plugins = Vec::new();
        for record in self.list().await? {
            let health = stored
                .plugins
                .iter()
                .find(|s| s.plugin == record.id.as_str())
                .map_or_else(
                    || PluginStats::empty(record.id.as_str()).health,
                    |s| s.health.clone(),
                );
            plugins.push(self.diagnose(record, health).await?);
        }
        let healthy = plugins.iter().all(|p| p.problems.is_empty()) && host.problems.is_empty();
        Ok(DoctorReport {
            host,
            registry,
            plugins,
            healthy,
        })
    }

    /// The host's own findings: every non-zero counter of something that
    /// should not happen.
    fn host_problems(&self, counters: &HostCounters) -> Vec<String> {
        let mut problems = Vec::new();
        if counters.cache_rejections > 0 {
            problems.push(format!(
                "{} compiled module(s) in the cache were refused (forged, foreign or corrupt: \
                 each was recompiled, none was loaded); check who can write {}",
                counters.cache_rejections,
                self.shared.paths.cache().display()
            ));
        }
        if counters.events_dropped > 0 {
            problems.push(format!(
                "{} event(s) were dropped before reaching the event log: its writer's queue was \
                 full; raise the host's `EventWriterConfig::capacity` or lower its `max_delay`",
                counters.events_dropped
            ));
        }
        if counters.events_failed > 0 {
            problems.push(format!(
                "{} event(s) could not be written to the registry; check that {} accepts \
                 writes (space, permissions, the server's log)",
                counters.events_failed,
                self.shared.store.info().location
            ));
        }
        if counters.instance_cap_refusals > 0 {
            problems.push(format!(
                "{} instance(s) were refused at a fairness cap (calls or starts failed with \
                 instance_cap; {} idle instance(s) were reclaimed first); {} instance(s) live now, \
                 reserving {}: raise EngineBuilder::fairness or lower the plugins' \
                 limits.max_instances and limits.memory",
                counters.instance_cap_refusals,
                counters.instances_reclaimed,
                counters.instances_live,
                tenon_manifest::ByteSize(counters.instance_memory)
            ));
        }
        problems
    }

    async fn diagnose(
        &self,
        record: tenon_registry::PluginRecord,
        health: HealthSnapshot,
    ) -> Result<PluginDiagnosis> {
        let manifest = &record.manifest;
        let id = record.id.clone();
        let mut problems = Vec::new();
        let running = self.tenant.running(&id).is_some();
        if record.enabled && record.state == PluginState::Active && !running {
            problems.push(if self.shared.safe_mode {
                "enabled but not running (safe mode starts only the host's own plugins); \
                 boot without safe mode to start it"
                    .to_owned()
            } else {
                format!(
                    "enabled but not running in this engine: it did not start here (this \
                     engine's log says why); fix the cause, or `tenon disable {id}`"
                )
            });
        }
        if record.state == PluginState::Error {
            problems.push(format!(
                "in error; `tenon info {id}` shows its last error: fix the cause, then \
                 `tenon disable {id}` and `tenon enable {id}`"
            ));
        }
        let runtime_available = self.shared.runtimes.contains_key(&manifest.runtime.kind);
        if !runtime_available {
            problems.push(format!(
                "this host has no `{}` runtime; run it on a host that has, or `tenon upgrade \
                 {id} PATH` to a version for a runtime this one has",
                manifest.runtime.kind.as_str()
            ));
        }
        let not_granted =
            match activate::granted_for(&self.shared, &self.tenant, manifest, record.source.kind)
                .await
            {
                Ok(granted) => grants::missing_to_run(&manifest.permissions, &granted),
                Err(error) => {
                    problems.push(format!(
                        "its grants cannot be read: {error}; `tenon doctor` again once the \
                         registry answers"
                    ));
                    grants::describe(&manifest.permissions)
                }
            };
        if !not_granted.is_empty() {
            problems.push(format!(
                "permissions not granted: {}; grant them with `tenon grant {id}` (or \
                 `tenon grant {id} --all`)",
                not_granted.join(", ")
            ));
        }
        let artifact = match &record.artifact {
            None => "none (native plugin)".to_owned(),
            Some(sha) => match self.shared.store.get_artifact(&self.tenant.id, sha).await {
                Ok(Some(_)) => format!("ok ({sha})"),
                Ok(None) => {
                    problems.push(format!(
                        "its module is missing from the registry; {}",
                        reinstall(&id)
                    ));
                    format!("missing ({sha})")
                }
                Err(RegistryError::Integrity { .. }) => {
                    problems.push(format!(
                        "its module in the registry is corrupt; {}",
                        reinstall(&id)
                    ));
                    format!("corrupt ({sha})")
                }
                Err(other) => {
                    problems.push(format!(
                        "its module cannot be read: {other}; `tenon doctor` again once the \
                         registry answers"
                    ));
                    format!("unreadable ({sha})")
                }
            },
        };
        let profile = &self.shared.profile;
        let compatibility = match check_engine(
            &manifest.engine,
            &HostInfo {
                api_versions: &profile.api_versions,
                host_version: profile.version.as_ref(),
                features: profile.features.as_ref(),
            },
        ) {
            Ok(api) => format!("ok (plugin API {api})"),
            Err(incompatible) => {
                problems.push(format!(
                    "incompatible: {incompatible}; `tenon upgrade {id} PATH` to a version \
                     built for this host"
                ));
                format!("incompatible: {incompatible}")
            }
        };
        let missing_config = match activate::stored_config(&self.shared, &self.tenant, &id).await {
            Ok(values) => self
                .shared
                .config_spec(&manifest.config)
                .missing_required(&values),
            Err(error) => {
                problems.push(format!(
                    "its config cannot be read: {error}; `tenon doctor` again once the \
                     registry answers"
                ));
                Vec::new()
            }
        };
        if record.state == PluginState::Uninstalling {
            problems.push(format!(
                "its uninstall was interrupted; `tenon uninstall {id}` finishes it"
            ));
        }
        if !missing_config.is_empty() {
            problems.push(format!(
                "required config missing: {}; set {} with `tenon config set {id} {} VALUE`",
                missing_config.join(", "),
                if missing_config.len() == 1 {
                    "it"
                } else {
                    "each"
                },
                if missing_config.len() == 1 {
                    missing_config[0].as_str()
                } else {
                    "KEY"
                }
            ));
        }
        let telemetry = &self.shared.telemetry;
        if health.status.needs_attention() {
            problems.push(format!(
                "{}: {}; `tenon events {id} --kind hook` shows the failures",
                health.status, health.reason
            ));
        }
        // Too few to judge its health, but not one succeeded: an enabled
        // plugin failing every time needs attention all the same.
        let recent = health.recent;
        if record.enabled
            && health.status == HealthStatus::Unknown
            && recent.executions > 0
            && recent.errors + recent.timeouts >= recent.executions
        {
            problems.push(format!(
                "every one of its {} recent executions failed; `tenon events {id} --kind hook` shows why",
                recent.executions
            ));
        }
        if record.state == PluginState::Disabled
            && let Some(error) = record
                .last_error
                .as_ref()
                .filter(|e| e.code == "crash_loop")
        {
            problems.push(format!(
                "disabled by the crash guard: {}; fix the cause, then `tenon enable {id}`",
                error.message
            ));
        }
        crate::resources::sample_plugin(&self.shared, &self.tenant, &id).await?;
        let resources = telemetry
            .stats(self.tenant.id.as_str(), id.as_str())
            .map(|stats| stats.resources)
            .unwrap_or_default();
        let kv_quota = manifest.permissions.kv.as_ref().map(|kv| {
            kv.quota
                .map_or(crate::host::DEFAULT_KV_QUOTA, |q| q.bytes())
        });
        problems.extend(crate::resources::near_limits(
            manifest,
            &resources,
            kv_quota,
            self.shared.host.kv_writes.limits.max_keys,
        ));
        let guard = telemetry.guard_status(self.tenant.id.as_str(), id.as_str());
        Ok(PluginDiagnosis {
            version: record.version.clone(),
            state: record.state,
            enabled: record.enabled,
            running,
            source: format!(
                "{}: {}",
                record.source.kind.as_str(),
                record.source.reference
            ),
            runtime: manifest.runtime.kind.as_str().to_owned(),
            runtime_available,
            isolation: format!(
                "{} (max {} instances, wait {})",
                manifest.limits.isolation.as_str(),
                manifest.limits.max_instances,
                manifest.limits.wait_timeout
            ),
            last_error: record
                .last_error
                .as_ref()
                .map(|e| format!("{}: {}", e.code, e.message)),
            declared: grants::describe(&manifest.permissions),
            not_granted,
            trust: crate::trust::TrustRecord::from_stored(record.verification.as_ref()),
            artifact,
            compatibility,
            missing_config,
            health: health.status,
            health_reason: health.reason,
            ready: health.ready,
            runtime_error: health.last_error,
            guard,
            resources,
            problems,
            id,
        })
    }
}
