//! Installing: read and check a plugin, resolve it against what is
//! installed, store it.

use std::collections::BTreeMap;

use serde_json::json;
use tenon_manifest::{Manifest, PluginId, Version, VersionReq};
use tenon_marketplace::PublicKey;
use tenon_registry::{NewPlugin, PluginState, Sha256Digest};
use tenon_resolver::{
    HostVersions, Index, IndexVersion, Options, Request, Requirement, Resolution, Strategy,
};

use super::{InstallReport, Preview, topic};
use crate::activate;
use crate::engine::PluginEngine;
use crate::error::{EngineError, Result};
use crate::grants;
use crate::lifecycle::Action;
use crate::publisher::{self, Arrival, Leftovers, Standing};

/// What checking one plugin of a set found: its standing towards its
/// publisher, and what it would inherit.
pub(crate) struct Vetted {
    pub(crate) standing: Option<Standing>,
    pub(crate) leftovers: Option<Leftovers>,
}
use crate::source::{Candidate, InstallSource};

impl PluginEngine {
    /// Installs a plugin from a directory, a package archive or a
    /// marketplace.
    ///
    /// The manifest is validated against the host, the engine requirement
    /// checked, dependencies resolved against what is installed, and the
    /// module stored in the registry (boot needs nothing else). The plugin
    /// ends `pending_config` (required config missing) or `resolved`.
    ///
    /// From a marketplace, the runtime dependencies it needs that are not
    /// installed are installed first
    /// ([`install_from_marketplace`](Self::install_from_marketplace)); the
    /// report is the requested plugin's, its notes naming each dependency
    /// installed with it.
    pub async fn install(&self, source: impl Into<InstallSource>) -> Result<InstallReport> {
        let source = source.into();
        if let InstallSource::Marketplace { url, id, req } = &source {
            let mut reports = self.install_from_marketplace(url, id, req).await?;
            let mut report = reports
                .pop()
                .expect("a marketplace plan installs at least the requested plugin");
            report.notes.extend(
                reports
                    .iter()
                    .map(|r| format!("installed dependency {} {}", r.id, r.version)),
            );
            return Ok(report);
        }
        let candidate = self.read_source(&source).await?;
        let _ops = self.tenant.ops.lock().await;
        self.check_new(&candidate).await?;
        let standing = self.check_publisher(&candidate, Arrival::Install).await?;
        let leftovers = self.check_leftovers(&candidate, standing.as_ref()).await?;
        let notes = self.check_dependencies(&candidate.manifest).await?;
        let report = self.store_candidate(candidate, leftovers, notes).await?;
        self.record_publisher(standing.as_ref()).await?;
        Ok(report)
    }

    /// What installing (or, for an installed plugin, upgrading to) the
    /// plugin at `source` would ask for, checked like an install — trust,
    /// manifest, runtime, dependencies — with nothing stored.
    pub async fn preview(&self, source: impl Into<InstallSource>) -> Result<Preview> {
        let candidate = self.read_source(&source.into()).await?;
        let manifest = &candidate.manifest;
        self.check_runtime(manifest)?;
        let installed = self
            .shared
            .store
            .get_plugin(&self.tenant.id, &manifest.plugin.id)
            .await?
            .map(|record| record.version);
        let notes = match installed {
            None => self.check_dependencies(manifest).await?,
            Some(_) => Vec::new(),
        };
        let trusted = self.shared.grant_policy.trusts(
            manifest,
            candidate.source.kind,
            candidate.trust.publisher_proven,
        );
        Ok(Preview {
            id: manifest.plugin.id.clone(),
            version: manifest.plugin.version.clone(),
            installed,
            permissions: grants::describe(&manifest.permissions),
            granted_by_policy: trusted,
            config: manifest.config.clone(),
            hooks: manifest.hooks.iter().map(|h| h.name.clone()).collect(),
            sha256: candidate.module.as_deref().map(Sha256Digest::of),
            manifest: manifest.clone(),
            trust: candidate.trust.clone(),
            warnings: candidate.warnings.clone(),
            notes,
        })
    }

    /// Installs several plugins that may depend on each other: they are
    /// resolved together with what is installed (each is offered to the
    /// others) and installed in dependency order. Nothing is installed when
    /// any of them is refused.
    pub async fn install_all(&self, sources: &[InstallSource]) -> Result<Vec<InstallReport>> {
        let mut candidates = Vec::new();
        for source in sources {
            candidates.push(self.read_source(source).await?);
        }
        let _ops = self.tenant.ops.lock().await;
        let Some((resolution, checked)) = self.check_set(&candidates).await? else {
            return Ok(Vec::new());
        };
        let mut candidates: Vec<(Candidate, Vetted)> =
            candidates.into_iter().zip(checked).collect();
        let mut reports = Vec::new();
        let mut standings = Vec::new();
        for selected in &resolution.order {
            if let Some(at) = candidates
                .iter()
                .position(|(c, _)| c.manifest.plugin.id == selected.id)
            {
                let (candidate, checked) = candidates.remove(at);
                reports.push(
                    self.store_candidate(candidate, checked.leftovers, Vec::new())
                        .await?,
                );
                standings.push(checked.standing);
            }
        }
        for standing in &standings {
            self.record_publisher(standing.as_ref()).await?;
        }
        Ok(reports)
    }

    /// Checks plugins to install together: none installed yet, each runnable
    /// here, each fitting its publisher's binding and able to inherit what
    /// it would inherit, and all of them resolving with the installed
    /// plugins. `None` for no plugin at all.
    pub(crate) async fn check_set(
        &self,
        candidates: &[Candidate],
    ) -> Result<Option<(Resolution, Vec<Vetted>)>> {
        let mut standings = Vec::new();
        let mut binding: BTreeMap<String, PublicKey> = BTreeMap::new();
        for candidate in candidates {
            self.check_new(candidate).await?;
            let standing = self.check_publisher(candidate, Arrival::Install).await?;
            // Two packages of one publisher in one set must agree on its
            // key, as they would one after the other.
            if let Some((key, bound_by)) = standing.as_ref().and_then(Standing::binds) {
                let name = candidate.manifest.plugin.id.publisher().to_owned();
                match binding.get(&name) {
                    Some(first) if first != key && !candidate.authors.contains(first) => {
                        return Err(publisher::refusal(
                            candidate,
                            vec![first.key_id().to_string()],
                            bound_by,
                        ));
                    }
                    Some(_) => {}
                    None => {
                        binding.insert(name, *key);
                    }
                }
            }
            let leftovers = self.check_leftovers(candidate, standing.as_ref()).await?;
            standings.push(Vetted {
                standing,
                leftovers,
            });
        }
        let Some(first) = candidates.first() else {
            return Ok(None);
        };
        let manifests: Vec<&Manifest> = candidates.iter().map(|c| &c.manifest).collect();
        let resolution = self
            .resolve_with(&manifests)
            .await?
            .map_err(|explanation| EngineError::Dependencies {
                id: first.manifest.plugin.id.clone(),
                explanation,
            })?;
        Ok(Some((resolution, standings)))
    }

    /// Refuses a plugin this host cannot run, or one already installed
    /// (saying whether it is installed as offered: the same version, with
    /// the same manifest and module).
    async fn check_new(&self, candidate: &Candidate) -> Result<()> {
        let manifest = &candidate.manifest;
        self.check_runtime(manifest)?;
        let id = &manifest.plugin.id;
        if let Some(existing) = self.shared.store.get_plugin(&self.tenant.id, id).await? {
            let same = existing.version == manifest.plugin.version
                && existing.manifest == *manifest
                && existing.artifact == candidate.module.as_deref().map(Sha256Digest::of);
            return Err(EngineError::AlreadyInstalled {
                id: id.clone(),
                version: existing.version,
                same,
            });
        }
        Ok(())
    }

    pub(crate) fn check_runtime(&self, manifest: &Manifest) -> Result<()> {
        if self.shared.runtimes.contains_key(&manifest.runtime.kind) {
            return Ok(());
        }
        let kind = manifest.runtime.kind.as_str();
        let hint = match kind {
            "component" | "extism" | "native" | "process" => {
                format!(" (build Tenon with the `{kind}` feature)")
            }
            _ => String::new(),
        };
        Err(EngineError::NoRuntime {
            id: manifest.plugin.id.clone(),
            kind: kind.to_owned(),
            hint,
        })
    }

    /// The installed plugins as a resolver index and installed set.
    pub(crate) async fn installed_index(&self) -> Result<(Index, BTreeMap<PluginId, Version>)> {
        let mut index = Index::new();
        let mut installed = BTreeMap::new();
        for record in self.list().await? {
            index.insert(
                record.id.clone(),
                record.version.clone(),
                IndexVersion::from_manifest(&record.manifest),
            );
            installed.insert(record.id.clone(), record.version.clone());
        }
        Ok((index, installed))
    }

    /// Resolves `manifests` (each at its exact version) together with the
    /// installed plugins, keeping those at their versions. The inner error
    /// is the resolver's explanation of a conflict.
    pub(crate) async fn resolve_with(
        &self,
        manifests: &[&Manifest],
    ) -> Result<std::result::Result<Resolution, String>> {
        let (mut index, mut installed) = self.installed_index().await?;
        let mut requirements = Vec::new();
        for manifest in manifests {
            let id = &manifest.plugin.id;
            installed.remove(id);
            if let Some(plugin) = index.plugins.get_mut(id) {
                plugin.versions.clear();
            }
            index.insert(
                id.clone(),
                manifest.plugin.version.clone(),
                IndexVersion::from_manifest(manifest),
            );
            let exact = VersionReq::parse(&format!("={}", manifest.plugin.version))
                .expect("an exact requirement parses");
            requirements.push(Requirement::new(id.clone(), exact));
        }
        let request = Request {
            requirements,
            installed,
            host: HostVersions {
                api: self.shared.profile.api_versions.clone(),
                host: self.shared.profile.version.clone(),
            },
            options: Options {
                strategy: Strategy::Manual,
                prerelease: true,
                prune: false,
            },
        };
        Ok(tenon_resolver::resolve(&index, &request).map_err(|error| error.to_string()))
    }

    /// Checks that `manifest` can join the installed plugins (replacing its
    /// own installed version, if any): its engine requirement and its
    /// dependencies. Returns the resolver's notes (optional dependencies
    /// left out…).
    pub(crate) async fn check_dependencies(&self, manifest: &Manifest) -> Result<Vec<String>> {
        let resolution = self
            .resolve_with(&[manifest])
            .await?
            .map_err(|explanation| EngineError::Dependencies {
                id: manifest.plugin.id.clone(),
                explanation,
            })?;
        Ok(resolution.notes.into_iter().map(|n| n.message).collect())
    }

    /// Stores a module in the registry (content-addressed, deduplicated).
    pub(crate) async fn store_module(&self, module: Option<&[u8]>) -> Result<Option<Sha256Digest>> {
        Ok(match module {
            Some(bytes) => Some(
                self.shared
                    .store
                    .put_artifact(&self.tenant.id, bytes)
                    .await?
                    .sha256,
            ),
            None => None,
        })
    }

    /// Stores a checked candidate: what it does not inherit of an
    /// uninstalled plugin's leftovers purged (as `leftovers` decided), its
    /// module, its record, its first transition, and a grant when the
    /// policy trusts it. The binding its signature makes is the caller's
    /// to record ([`record_publisher`](Self::record_publisher)), once all
    /// it stores is stored.
    pub(crate) async fn store_candidate(
        &self,
        candidate: Candidate,
        leftovers: Option<Leftovers>,
        notes: Vec<String>,
    ) -> Result<InstallReport> {
        let Candidate {
            manifest,
            module,
            source,
            warnings,
            trust,
            authors: _,
        } = candidate;
        let id = manifest.plugin.id.clone();
        self.apply_leftovers(&id, leftovers.as_ref()).await?;
        let artifact = self.store_module(module.as_deref()).await?;
        let trusted =
            self.shared
                .grant_policy
                .trusts(&manifest, source.kind, trust.publisher_proven);
        let mut new = NewPlugin::new(self.tenant.id.clone(), manifest.clone(), source)
            .with_verification(trust.to_value());
        if let Some(artifact) = artifact {
            new = new.with_artifact(artifact);
        }
        let record = self.shared.store.insert_plugin(&new).await?;
        self.announce(
            topic(PluginState::Installed),
            &id,
            json!({ "version": record.version.to_string() }),
        );
        let values = activate::stored_config(&self.shared, &self.tenant, &id).await?;
        let missing = self
            .shared
            .config_spec(&manifest.config)
            .missing_required(&values);
        let (action, reason) = if missing.is_empty() {
            (
                Action::ConfigComplete,
                "installed; config complete".to_owned(),
            )
        } else {
            (
                Action::ConfigMissing,
                format!("installed; required config missing: {}", missing.join(", ")),
            )
        };
        let record = self.transition(&record, action, &reason, |u| u).await?;
        if trusted && !manifest.permissions.is_empty() {
            self.put_grant(&manifest, &manifest.permissions, "policy")
                .await?;
        }
        let granted =
            activate::granted_for(&self.shared, &self.tenant, &manifest, record.source.kind)
                .await?;
        Ok(InstallReport {
            id,
            version: record.version.clone(),
            state: record.state,
            missing_config: missing,
            permissions: grants::describe(&manifest.permissions),
            granted: grants::missing_to_run(&manifest.permissions, &granted).is_empty(),
            warnings,
            notes,
            trust,
            leftovers,
        })
    }
}
