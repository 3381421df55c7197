//! Installing from a marketplace by name: the plugin and the runtime
//! dependencies it needs, resolved against the marketplace's index, the
//! host and what is installed; every package downloaded and checked (the
//! metadata chain, size, sha256, signatures under the trust policy, the
//! whole archive) before the first one is stored, and none kept when any
//! step fails. Updates: the installed plugins the marketplace has a newer
//! version of that this host can run. The catalog: search, categories and
//! the curated and popular lists, for choosing what to install.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;

use serde::Serialize;
use tenon_manifest::{DependencyScope, PluginId, Version, VersionReq};
use tenon_marketplace::catalog::{Category, Listing, Popular, SearchPage, SearchQuery};
use tenon_marketplace::client::{ClientError, ClientOptions, MarketClient};
use tenon_marketplace::{IndexEntry, Origin};
use tenon_registry::{DeleteOptions, PluginSource, Purge, SourceKind};
use tenon_resolver::{
    Action as PlanAction, HostVersions, IndexVersion, Options, Request, Requirement, Strategy,
};

use crate::engine::PluginEngine;
use crate::error::{EngineError, Result};
use crate::grants;
use crate::ops::InstallReport;
use crate::source::Candidate;
use crate::trust::{self, TrustRecord};

/// How the engine talks to marketplaces.
#[derive(Debug, Clone, Default)]
pub struct MarketplaceOptions {
    /// Where metadata, index files and packages are cached (default:
    /// `marketplace/` in the engine's directory).
    pub cache_dir: Option<PathBuf>,
    /// Use only the cache; never touch the network.
    pub offline: bool,
    /// The root metadata to trust; without it the one cached, or, the first
    /// time, the one the marketplace serves.
    pub root: Option<Vec<u8>>,
}

/// One plugin a marketplace install will add.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedPlugin {
    /// The plugin.
    pub id: PluginId,
    /// The version chosen.
    pub version: Version,
    /// Whether it is installed as a dependency (not asked for).
    pub dependency: bool,
    /// The permissions it asks for, described.
    pub permissions: Vec<String>,
    /// What verifying its package found (trust level, signers).
    pub trust: TrustRecord,
    /// The archive's size in bytes.
    pub size: u64,
}

/// What installing from a marketplace will do, every package downloaded and
/// checked, nothing stored yet: show it, then pass it to
/// [`PluginEngine::install_plan`].
#[derive(Debug)]
pub struct MarketPlan {
    /// The marketplace.
    pub url: String,
    /// What will be installed, in load order (dependencies first).
    pub plugins: Vec<PlannedPlugin>,
    /// Installed plugins the plan uses as they are.
    pub kept: Vec<(PluginId, Version)>,
    /// What the resolver noticed (optional dependencies left out, yanked
    /// versions kept).
    pub notes: Vec<String>,
    candidates: Vec<Candidate>,
}

/// A newer version of an installed plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AvailableUpdate {
    /// The plugin.
    pub id: PluginId,
    /// The version installed.
    pub installed: Version,
    /// The newest version this host can run.
    pub available: Version,
}

fn market_error(source: ClientError) -> EngineError {
    EngineError::Marketplace {
        source: Box::new(source),
    }
}

/// What the resolver needs of an index line.
fn index_version(entry: &IndexEntry) -> IndexVersion {
    IndexVersion {
        yanked: entry.yanked,
        ..IndexVersion::declared(&entry.dependencies, &entry.engine)
    }
}

impl PluginEngine {
    /// A client of the marketplace at `url`, its metadata refreshed (or,
    /// offline, loaded from the cache).
    pub(crate) async fn market_client(&self, url: &str) -> Result<MarketClient> {
        let mut client = MarketClient::new(url, self.client_options()).map_err(market_error)?;
        client.refresh().await.map_err(market_error)?;
        Ok(client)
    }

    /// The client options the engine's marketplace settings make.
    fn client_options(&self) -> ClientOptions {
        let settings = &self.shared.marketplace;
        let mut options = ClientOptions::new(
            settings
                .cache_dir
                .clone()
                .unwrap_or_else(|| self.shared.paths.root.join("marketplace")),
        );
        options.offline = settings.offline;
        options.root.clone_from(&settings.root);
        options
    }

    /// The marketplace to use: `given` (what the caller was told, such as a
    /// command-line flag or the environment), else the trust policy's
    /// `marketplace`. [`EngineError::NoMarketplace`] when neither names one.
    pub fn marketplace_url(&self, given: Option<&str>) -> Result<String> {
        given
            .or(self.shared.trust.marketplace.as_deref())
            .map(str::to_owned)
            .ok_or(EngineError::NoMarketplace)
    }

    /// A client of the marketplace at `url` for its catalog (search,
    /// categories, curated lists): unsigned answers, so no metadata is
    /// fetched.
    fn catalog_client(&self, url: &str) -> Result<MarketClient> {
        MarketClient::new(url, self.client_options()).map_err(market_error)
    }

    /// `query` for this host: unless the caller named a plugin API version,
    /// the newest one this host runs (and its own version), so that only
    /// plugins with a version this host can run are listed and each names
    /// the newest such version (`compatible_version`).
    fn for_this_host(&self, mut query: SearchQuery) -> SearchQuery {
        if query.api.is_none() {
            query.api = self.shared.profile.api_versions.iter().max().cloned();
            query.host_version.clone_from(&self.shared.profile.version);
        }
        query
    }

    /// A page of the catalog of the marketplace at `url`: what `query`
    /// matches (words, category, tag, sort, page size; the previous page's
    /// `next` as `cursor` for the following page). Unless `query.api` is
    /// set, only plugins with a version this host can run are listed, each
    /// with the newest such version as `compatible_version`. Listings are the
    /// marketplace's unsigned description: installing
    /// ([`Self::install_from_marketplace`]) checks the signed index and the
    /// package itself.
    pub async fn search_marketplace(&self, url: &str, query: SearchQuery) -> Result<SearchPage> {
        let query = self.for_this_host(query);
        self.catalog_client(url)?
            .search(&query)
            .await
            .map_err(market_error)
    }

    /// The categories of the marketplace at `url`, with how many plugins
    /// list each.
    pub async fn marketplace_categories(&self, url: &str) -> Result<Vec<Category>> {
        self.catalog_client(url)?
            .categories()
            .await
            .map_err(market_error)
    }

    /// The plugins the marketplace at `url` features, in its order, that
    /// this host can run.
    pub async fn marketplace_featured(&self, url: &str) -> Result<Vec<Listing>> {
        let host = self.for_this_host(SearchQuery::default());
        self.catalog_client(url)?
            .featured(&host)
            .await
            .map_err(market_error)
    }

    /// The plugins most downloaded from the marketplace at `url` over the
    /// last `days` days (at most `limit`), that this host can run.
    pub async fn marketplace_popular(
        &self,
        url: &str,
        days: u32,
        limit: u32,
    ) -> Result<Vec<Popular>> {
        let host = self.for_this_host(SearchQuery::default());
        self.catalog_client(url)?
            .popular(days, limit, &host)
            .await
            .map_err(market_error)
    }

    fn host_versions(&self) -> HostVersions {
        HostVersions {
            api: self.shared.profile.api_versions.clone(),
            host: self.shared.profile.version.clone(),
        }
    }

    /// Whether this host can run `entry` by its engine requirement.
    fn runs_here(&self, entry: &IndexEntry) -> bool {
        let profile = &self.shared.profile;
        let api = profile
            .api_versions
            .iter()
            .any(|v| entry.engine.tenon.matches(v));
        let host = match (&entry.engine.host, &profile.version) {
            (Some(req), Some(version)) => req.matches(version),
            _ => true,
        };
        api && host
    }

    /// Plans installing `id` (a version matching `req`) from the marketplace
    /// at `url`, with every runtime dependency not installed yet: resolved
    /// against the marketplace's index, this host and the installed plugins
    /// (kept at their versions), each package downloaded and checked. Nothing
    /// is stored.
    pub async fn plan_marketplace_install(
        &self,
        url: &str,
        id: &PluginId,
        req: &VersionReq,
    ) -> Result<MarketPlan> {
        if let Some(existing) = self.shared.store.get_plugin(&self.tenant.id, id).await? {
            return Err(EngineError::AlreadyInstalled {
                id: id.clone(),
                version: existing.version,
                same: false,
            });
        }
        let client = self.market_client(url).await?;
        let (mut index, installed) = self.installed_index().await?;
        // The requested plugin and everything its versions may need.
        let mut entries: BTreeMap<PluginId, Vec<IndexEntry>> = BTreeMap::new();
        let mut queue = VecDeque::from([id.clone()]);
        let mut seen = BTreeSet::new();
        while let Some(next) = queue.pop_front() {
            if !seen.insert(next.clone()) {
                continue;
            }
            let listed = match client.index(&next).await {
                Ok(listed) => listed,
                // A dependency the marketplace does not have: the resolver
                // explains it (or uses the installed one).
                Err(ClientError::UnknownPlugin { .. }) if next != *id => continue,
                Err(e) => return Err(market_error(e)),
            };
            for entry in &listed {
                if installed.get(&next) == Some(&entry.version) {
                    // The installed version resolves as it is recorded, yanked
                    // or not as the marketplace says now.
                    if let Some(plugin) = index.plugins.get_mut(&next)
                        && let Some(version) = plugin.versions.get_mut(&entry.version)
                    {
                        version.yanked = entry.yanked;
                    }
                } else {
                    index.insert(next.clone(), entry.version.clone(), index_version(entry));
                }
                for (dep, spec) in &entry.dependencies {
                    if spec.scope != DependencyScope::Dev && !seen.contains(dep) {
                        queue.push_back(dep.clone());
                    }
                }
            }
            entries.insert(next, listed);
        }
        let request = Request {
            requirements: vec![Requirement::new(id.clone(), req.clone())],
            installed,
            host: self.host_versions(),
            options: Options {
                strategy: Strategy::Manual,
                prerelease: false,
                prune: false,
            },
        };
        let resolution =
            tenon_resolver::resolve(&index, &request).map_err(|e| EngineError::Dependencies {
                id: id.clone(),
                explanation: format!("cannot install from {}: {e}", client.url()),
            })?;
        let mut plugins = Vec::new();
        let mut candidates = Vec::new();
        let mut kept = Vec::new();
        for step in &resolution.plan {
            let to = step.to.clone().unwrap_or_else(|| Version::new(0, 0, 0));
            match step.action {
                PlanAction::Keep => {
                    kept.push((step.id.clone(), to));
                    continue;
                }
                PlanAction::Install => {}
                other => {
                    return Err(EngineError::Dependencies {
                        id: id.clone(),
                        explanation: format!(
                            "installing would {other} {} to {to}; change it on its own first",
                            step.id
                        ),
                    });
                }
            }
            let entry = entries
                .get(&step.id)
                .and_then(|list| list.iter().find(|e| e.version == to))
                .ok_or_else(|| EngineError::Dependencies {
                    id: id.clone(),
                    explanation: format!("{} {to} is not in {}", step.id, client.url()),
                })?;
            let candidate = self.fetch_candidate(&client, entry).await?;
            plugins.push(PlannedPlugin {
                id: step.id.clone(),
                version: to,
                dependency: step.id != *id,
                permissions: grants::describe(&candidate.manifest.permissions),
                trust: candidate.trust.clone(),
                size: entry.size,
            });
            candidates.push(candidate);
        }
        Ok(MarketPlan {
            url: client.url().to_owned(),
            plugins,
            kept,
            notes: resolution.notes.into_iter().map(|n| n.message).collect(),
            candidates,
        })
    }

    /// Downloads and checks one package the trusted index lists, and reads
    /// it as an install would (its manifest must say what the index said).
    async fn fetch_candidate(
        &self,
        client: &MarketClient,
        entry: &IndexEntry,
    ) -> Result<Candidate> {
        let downloaded = client
            .download(entry, &self.shared.trust)
            .await
            .map_err(market_error)?;
        let source = PluginSource::new(
            SourceKind::Marketplace,
            &format!(
                "{}#{}@{} (sha256 {})",
                client.url(),
                entry.id,
                entry.version,
                entry.sha256
            ),
        );
        let candidate = self
            .read_package(
                &downloaded.path,
                downloaded.bytes,
                Some(downloaded.signatures),
                Origin::Remote,
                source,
            )
            .await?;
        let manifest = &candidate.manifest;
        if manifest.dependencies != entry.dependencies || manifest.engine != entry.engine {
            return Err(EngineError::InvalidPlugin {
                path: downloaded.path,
                message: format!(
                    "the package of {} {} declares other dependencies or engine requirements than the marketplace's index",
                    entry.id, entry.version
                ),
            });
        }
        let refused = trust::exceeds(candidate.trust.level, manifest);
        if !refused.is_empty() {
            return Err(EngineError::TrustLevel {
                id: manifest.plugin.id.clone(),
                version: manifest.plugin.version.clone(),
                level: candidate.trust.level,
                refused,
            });
        }
        self.check_runtime(manifest)?;
        Ok(candidate)
    }

    /// Installs what [`Self::plan_marketplace_install`] planned, in load
    /// order, after checking all of it against what is installed now
    /// (bindings, leftovers and what they would pass on, dependencies)
    /// before anything is stored. When a plugin still cannot be stored,
    /// those stored before it (and it, if stored half-way) are removed
    /// again, leftovers they inherited handed back as they were, and no
    /// publisher is bound: all of the plan is installed, or none of it.
    pub async fn install_plan(&self, plan: MarketPlan) -> Result<Vec<InstallReport>> {
        let _ops = self.tenant.ops.lock().await;
        let vetted = match self.check_set(&plan.candidates).await? {
            Some((_, vetted)) => vetted,
            None => Vec::new(),
        };
        let mut reports = Vec::new();
        // For each plugin stored: whether it inherited leftovers, and who
        // had left them.
        let mut stored: Vec<(PluginId, bool, Option<String>)> = Vec::new();
        let mut standings = Vec::new();
        for (candidate, vetted) in plan.candidates.into_iter().zip(vetted) {
            let id = candidate.manifest.plugin.id.clone();
            let inherited = vetted.leftovers.as_ref().is_some_and(|l| l.passed);
            let owner = self
                .shared
                .store
                .get_leftovers_owner(&self.tenant.id, &id)
                .await?;
            stored.push((id, inherited, owner));
            match self
                .store_candidate(candidate, vetted.leftovers, Vec::new())
                .await
            {
                Ok(report) => reports.push(report),
                Err(error) => {
                    for (id, inherited, owner) in stored.into_iter().rev() {
                        self.forget(&id, inherited, owner).await;
                    }
                    return Err(error);
                }
            }
            standings.push(vetted.standing);
        }
        for standing in &standings {
            self.record_publisher(standing.as_ref()).await?;
        }
        Ok(reports)
    }

    /// Removes a plugin stored moments ago by a plan that failed later (if
    /// it was stored): when it had inherited an uninstalled plugin's
    /// leftovers, only what the install added goes, and the leftovers stay
    /// with their owner as before.
    async fn forget(&self, id: &PluginId, inherited: bool, owner: Option<String>) {
        match self.shared.store.get_plugin(&self.tenant.id, id).await {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(error) => {
                tracing::error!(plugin = %id, "cannot undo a partial marketplace install: {error}");
                return;
            }
        }
        let purge = Purge {
            config: !inherited,
            kv: !inherited,
            events: !inherited,
            versions: true,
            grants: !inherited,
        };
        let options = DeleteOptions {
            expected_row_version: None,
            purge,
            leftovers_owner: owner.filter(|_| inherited),
        };
        if let Err(error) = self
            .shared
            .store
            .delete_plugin(&self.tenant.id, id, &options)
            .await
        {
            tracing::error!(plugin = %id, "cannot undo a partial marketplace install: {error}");
        }
    }

    /// Installs `id` (a version matching `req`) from the marketplace at
    /// `url` with the dependencies it needs: [`Self::plan_marketplace_install`]
    /// then [`Self::install_plan`].
    pub async fn install_from_marketplace(
        &self,
        url: &str,
        id: &PluginId,
        req: &VersionReq,
    ) -> Result<Vec<InstallReport>> {
        let plan = self.plan_marketplace_install(url, id, req).await?;
        self.install_plan(plan).await
    }

    /// Reads one plugin from a marketplace (for an upgrade): the newest
    /// version matching `req` that is not yanked and runs on this host.
    pub(crate) async fn read_marketplace(
        &self,
        url: &str,
        id: &PluginId,
        req: &VersionReq,
    ) -> Result<Candidate> {
        let client = self.market_client(url).await?;
        let listed = client.index(id).await.map_err(market_error)?;
        let entry = listed
            .iter()
            .filter(|e| !e.yanked && req.matches(&e.version) && self.runs_here(e))
            .max_by(|a, b| a.version.cmp(&b.version))
            .ok_or_else(|| EngineError::Dependencies {
                id: id.clone(),
                explanation: format!(
                    "{} has no version of {id} matching {req} that is not yanked and runs on this host (it lists {})",
                    client.url(),
                    listed
                        .iter()
                        .map(|e| e.version.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        self.fetch_candidate(&client, entry).await
    }

    /// The installed plugins (or those of `only`) that the marketplace at
    /// `url` has a newer version of that is not yanked and runs on this
    /// host, with the newest such version. Plugins it does not list are
    /// left out.
    pub async fn marketplace_updates(
        &self,
        url: &str,
        only: &[PluginId],
    ) -> Result<Vec<AvailableUpdate>> {
        let client = self.market_client(url).await?;
        let mut updates = Vec::new();
        for record in self.list().await? {
            if !only.is_empty() && !only.contains(&record.id) {
                continue;
            }
            // The host's own plugins never take a package's place, and a
            // plugin installed from elsewhere is offered only when named.
            if record.source.kind.is_host()
                || (record.source.kind != SourceKind::Marketplace && !only.contains(&record.id))
            {
                continue;
            }
            let listed = match client.index(&record.id).await {
                Ok(listed) => listed,
                Err(ClientError::UnknownPlugin { .. }) => continue,
                Err(e) => return Err(market_error(e)),
            };
            let newest = listed
                .iter()
                .filter(|e| !e.yanked && e.version > record.version && self.runs_here(e))
                .map(|e| &e.version)
                .max();
            if let Some(available) = newest {
                updates.push(AvailableUpdate {
                    id: record.id.clone(),
                    installed: record.version.clone(),
                    available: available.clone(),
                });
            }
        }
        Ok(updates)
    }
}
