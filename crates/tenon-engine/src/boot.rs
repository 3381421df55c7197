//! Boot: bring up the enabled plugins from the registry alone, in
//! dependency order, independent ones in parallel; in safe mode, only the
//! first-party ones.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use serde::Serialize;
use tenon_manifest::{DependencyScope, PluginId};
use tenon_registry::{PluginRecord, PluginState};

use crate::activate::{self, LoadSpec};
use crate::engine::PluginEngine;
use crate::error::Result;
use crate::lifecycle::Action;

/// What a boot did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BootReport {
    /// Plugins started (or registered for first use).
    pub started: Vec<PluginId>,
    /// Third-party plugins left inactive because of safe mode.
    pub skipped_safe_mode: Vec<PluginId>,
    /// Plugins that failed to start, with why.
    pub failed: Vec<(PluginId, String)>,
}

/// Groups plugins into levels: each level depends only on earlier ones.
/// Plugins in a dependency cycle (or depending on one) come back in the
/// second list.
pub(crate) fn levels(records: &[PluginRecord]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let index: BTreeMap<&PluginId, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (&r.id, i))
        .collect();
    let needs: Vec<BTreeSet<usize>> = records
        .iter()
        .map(|r| {
            r.manifest
                .dependencies
                .iter()
                .filter(|(_, d)| d.scope != DependencyScope::Dev)
                .filter_map(|(id, _)| index.get(id).copied())
                .collect()
        })
        .collect();
    let mut level_of: Vec<Option<usize>> = vec![None; records.len()];
    let mut levels: Vec<Vec<usize>> = Vec::new();
    loop {
        let ready: Vec<usize> = (0..records.len())
            .filter(|&i| level_of[i].is_none())
            .filter(|&i| needs[i].iter().all(|&d| level_of[d].is_some()))
            .collect();
        if ready.is_empty() {
            break;
        }
        for &i in &ready {
            level_of[i] = Some(levels.len());
        }
        levels.push(ready);
    }
    let stuck = (0..records.len())
        .filter(|&i| level_of[i].is_none())
        .collect();
    (levels, stuck)
}

impl PluginEngine {
    /// Starts this tenant's enabled plugins (done by `build` unless told
    /// otherwise). Plugins already running are left alone; a stop that was
    /// interrupted is finished.
    pub async fn boot(&self) -> Result<BootReport> {
        let _ops = self.tenant.ops.lock().await;
        let mut report = BootReport::default();
        let mut records = Vec::new();
        for record in self.list().await? {
            if record.state == PluginState::Deactivating && self.shared.boot_records_failures {
                self.transition(&record, Action::Deactivated, "stopped (boot)", |u| u)
                    .await?;
                continue;
            }
            if !record.enabled || self.tenant.running(&record.id).is_some() {
                continue;
            }
            if !matches!(
                record.state,
                PluginState::Active
                    | PluginState::Loading
                    | PluginState::Loaded
                    | PluginState::Activating
            ) {
                continue;
            }
            if !self.may_start(&record) {
                report.skipped_safe_mode.push(record.id.clone());
                continue;
            }
            records.push(record);
        }
        let (levels, stuck) = levels(&records);
        for i in stuck {
            report.failed.push((
                records[i].id.clone(),
                "it is part of (or depends on) a dependency cycle".to_owned(),
            ));
        }
        for level in levels {
            let starts = level.iter().map(|&i| {
                let record = records[i].clone();
                // Every dependency it cannot do without must run here by now.
                let missing = record
                    .manifest
                    .dependencies
                    .iter()
                    .filter(|(_, d)| !d.optional && d.scope != DependencyScope::Dev)
                    .find(|(id, _)| self.tenant.running(id).is_none())
                    .map(|(id, _)| id.clone());
                async move {
                    let id = record.id.clone();
                    if let Some(dependency) = missing {
                        return (
                            id,
                            Err(format!("its dependency {dependency} is not running")),
                        );
                    }
                    (id, self.boot_one(record).await.map_err(|e| e.to_string()))
                }
            });
            for (id, outcome) in futures::future::join_all(starts).await {
                match outcome {
                    Ok(()) => report.started.push(id),
                    Err(why) => report.failed.push((id, why)),
                }
            }
        }
        if !report.skipped_safe_mode.is_empty() {
            tracing::warn!(
                "safe mode: {} third-party plugins left inactive",
                report.skipped_safe_mode.len()
            );
        }
        for (id, why) in &report.failed {
            tracing::error!(plugin = %id, "did not start: {}", crate::host::loggable(why));
        }
        self.tenant.booted.store(true, Ordering::Release);
        Ok(report)
    }

    async fn boot_one(&self, record: PluginRecord) -> Result<()> {
        let id = record.id.clone();
        let started = async {
            let spec = LoadSpec::current(&self.shared, &self.tenant, &record, "start").await?;
            activate::start_local(&self.shared, &self.tenant, spec).await?;
            // A previous run stopped half-way through activation: finish it.
            let mut record = record;
            if self.shared.boot_records_failures {
                for action in [Action::Loaded, Action::Activate, Action::Activated] {
                    if Self::allowed(&record, action).is_ok() {
                        record = self.transition(&record, action, "boot", |u| u).await?;
                    }
                }
            }
            Ok(())
        }
        .await;
        if let Err(error) = &started {
            activate::stop_local(&self.shared, &self.tenant, &id).await;
            if self.shared.boot_records_failures {
                self.fail(&id, error).await;
            }
        }
        started
    }
}

#[cfg(test)]
mod tests {
    use tenon_manifest::{
        Dependency, Manifest, PluginMeta, RuntimeKind, RuntimeSpec, Version, VersionReq,
    };
    use tenon_registry::{PluginSource, SourceKind, TenantId};
    use time::OffsetDateTime;

    use super::*;

    fn record(id: &str, deps: &[&str]) -> PluginRecord {
        let id = PluginId::new(id).unwrap();
        let mut manifest = Manifest::new(
            PluginMeta::new(id.clone(), "x", Version::new(1, 0, 0)),
            RuntimeSpec::new(RuntimeKind::Native),
        );
        for dep in deps {
            manifest.dependencies.insert(
                PluginId::new(dep).unwrap(),
                Dependency::new(VersionReq::STAR),
            );
        }
        PluginRecord {
            tenant: TenantId::default(),
            id,
            version: Version::new(1, 0, 0),
            state: PluginState::Active,
            source: PluginSource::new(SourceKind::Native, "x"),
            enabled: true,
            manifest,
            artifact: None,
            verification: None,
            last_error: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            row_version: 1,
        }
    }

    #[test]
    fn independent_plugins_share_a_level_and_dependencies_come_first() {
        let records = [
            record("a/app", &["a/core", "a/http"]),
            record("a/core", &[]),
            record("a/http", &["a/core"]),
            record("a/other", &[]),
            record("a/x", &["a/y"]),
            record("a/y", &["a/x"]),
        ];
        let (levels, stuck) = levels(&records);
        let names = |ixs: &[usize]| {
            ixs.iter()
                .map(|&i| records[i].id.to_string())
                .collect::<Vec<_>>()
        };
        let shown: Vec<Vec<String>> = levels.iter().map(|l| names(l)).collect();
        assert_eq!(
            shown,
            [vec!["a/core", "a/other"], vec!["a/http"], vec!["a/app"]]
        );
        assert_eq!(names(&stuck), ["a/x", "a/y"]);
    }
}
