//! Hot reload for development: a plugin installed from a directory is
//! reloaded when its files change. The new code is loaded and started beside
//! the old; only when that succeeds is it swapped in, atomically for the
//! hooks that call it. A broken new version leaves the old one running.
//!
//! A reload of the same version is live only (the registry keeps the module
//! it was installed with, so a restart boots that one); a reload that
//! changes the version is an upgrade and is recorded as one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use serde_json::json;
use tenon_manifest::{PluginId, Version};
use tenon_registry::{EventKind, EventStatus, NewEvent, SourceKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::activate::{LoadSpec, Module};
use crate::engine::PluginEngine;
use crate::error::{EngineError, Result};
use crate::source::InstallSource;

/// How long files must stay quiet before a reload.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReloadReport {
    /// The plugin.
    pub id: PluginId,
    /// The version now running.
    pub version: Version,
    /// Whether the version changed (then the reload was an upgrade).
    pub upgraded: bool,
    /// Whether in-memory state was carried over.
    pub state_carried: bool,
}

/// Watches plugin directories; dropping it stops watching.
pub struct WatchHandle {
    _watcher: notify::RecommendedWatcher,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle").finish_non_exhaustive()
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PluginEngine {
    /// Reloads a plugin installed from a directory from that directory.
    pub async fn reload(&self, id: &PluginId) -> Result<ReloadReport> {
        let record = self.record(id).await?;
        if record.source.kind != SourceKind::Directory {
            return Err(EngineError::Version {
                id: id.clone(),
                message: format!(
                    "only plugins installed from a directory reload (this one came from {})",
                    record.source.kind.as_str()
                ),
            });
        }
        let dir = PathBuf::from(&record.source.reference);
        let candidate = self
            .read_source(&InstallSource::Directory(dir.clone()))
            .await?;
        if candidate.manifest.plugin.id != *id {
            return Err(EngineError::Version {
                id: id.clone(),
                message: format!(
                    "{} now holds {}, not {id}",
                    dir.display(),
                    candidate.manifest.plugin.id
                ),
            });
        }
        if candidate.manifest.plugin.version != record.version {
            let report = self.upgrade(InstallSource::Directory(dir)).await?;
            return Ok(ReloadReport {
                id: id.clone(),
                version: report.to,
                upgraded: true,
                state_carried: report.state_carried,
            });
        }
        let _ops = self.tenant.ops.lock().await;
        // Read again under the lock: an upgrade may have happened meanwhile.
        let record = self.record(id).await?;
        if candidate.manifest.plugin.version != record.version {
            return Err(EngineError::Version {
                id: id.clone(),
                message: format!(
                    "{} changed to version {} while reloading; reload again",
                    id, record.version
                ),
            });
        }
        if self.tenant.running(id).is_none() {
            return Err(EngineError::NotRunning {
                id: id.clone(),
                state: record.state,
            });
        }
        // The reloaded manifest receives the stored config: a secret stays
        // one, as across versions.
        self.check_secrets_kept(&candidate.manifest, false).await?;
        // Same version: the registry keeps the module it was installed with;
        // the new bytes only run here.
        let module = match candidate.module {
            Some(bytes) => Module::Bytes(Arc::from(bytes)),
            None => Module::Stored(record.artifact),
        };
        let spec = LoadSpec::build(
            &self.shared,
            &self.tenant,
            &candidate.manifest,
            record.source.kind,
            module,
            "reload",
        )
        .await?;
        let state_carried = self.swap_running(id, spec).await?;
        self.announce(
            "plugin.reloaded",
            id,
            json!({ "version": record.version.to_string() }),
        );
        Ok(ReloadReport {
            id: id.clone(),
            version: record.version,
            upgraded: false,
            state_carried,
        })
    }

    /// Watches `dir` (a plugin directory, or a directory of them) and
    /// reloads every installed, running plugin whose source directory
    /// changes. Failed reloads are logged and recorded as `error` events;
    /// the old code keeps running.
    pub async fn watch(&self, dir: &Path) -> Result<WatchHandle> {
        let root = std::fs::canonicalize(dir).map_err(|e| EngineError::Source {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })?;
        let (changes, mut changed) = mpsc::unbounded_channel::<PathBuf>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event
                    && (event.kind.is_modify() || event.kind.is_create() || event.kind.is_remove())
                {
                    for path in event.paths {
                        let _ = changes.send(path);
                    }
                }
            })
            .map_err(|e| EngineError::Source {
                path: root.clone(),
                message: format!("cannot watch: {e}"),
            })?;
        watcher
            .watch(&root, RecursiveMode::Recursive)
            .map_err(|e| EngineError::Source {
                path: root.clone(),
                message: format!("cannot watch: {e}"),
            })?;
        let engine = self.clone();
        let task = tokio::spawn(async move {
            while let Some(first) = changed.recv().await {
                let mut paths = vec![first];
                loop {
                    match tokio::time::timeout(DEBOUNCE, changed.recv()).await {
                        Ok(Some(path)) => paths.push(path),
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                engine.reload_changed(&paths).await;
            }
        });
        Ok(WatchHandle {
            _watcher: watcher,
            task,
        })
    }

    async fn reload_changed(&self, paths: &[PathBuf]) {
        let Ok(records) = self.list().await else {
            return;
        };
        let mut due: BTreeSet<PluginId> = BTreeSet::new();
        for record in records {
            if record.source.kind != SourceKind::Directory
                || self.tenant.running(&record.id).is_none()
            {
                continue;
            }
            let dir = Path::new(&record.source.reference);
            if paths
                .iter()
                .any(|p| p.starts_with(dir) && !is_build_output(p, dir))
            {
                due.insert(record.id);
            }
        }
        for id in due {
            match self.reload(&id).await {
                Ok(report) => tracing::info!(plugin = %id, version = %report.version, "reloaded"),
                Err(error) => {
                    tracing::warn!(plugin = %id, "reload failed, the previous code keeps running: {error}");
                    self.shared.writer.record(
                        NewEvent::new(self.tenant.id.clone(), EventKind::Error, EventStatus::Error)
                            .with_plugin(id.clone())
                            .with_detail(
                                json!({ "operation": "reload", "error": error.to_string() }),
                            ),
                    );
                    self.announce(
                        "plugin.reload_failed",
                        &id,
                        json!({ "error": error.to_string() }),
                    );
                }
            }
        }
    }
}

/// Whether a changed path is a build directory's churn rather than the
/// plugin's files.
fn is_build_output(path: &Path, dir: &Path) -> bool {
    path.strip_prefix(dir)
        .ok()
        .and_then(|rest| rest.components().next())
        .is_some_and(|first| matches!(first.as_os_str().to_str(), Some("target" | ".git")))
}
