//! The PubGrub dependency provider over an [`Index`].
//!
//! Versions are indices into each plugin's sorted version list, so a version
//! set is a `Ranges<u32>` of indices: a semver requirement becomes the
//! indices it matches (computed once per dependency with semver's own
//! `matches`, so pre-release rules are semver's). Index [`NONE`] stands for
//! "not installed": peer dependencies admit it, so a peer constrains a plugin
//! when something else brings it in without bringing it in itself.
//!
//! Plugins are interned lazily, when a requirement first names them: a
//! resolution touches only the part of the index it reaches.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::fmt;

use pubgrub::{
    Dependencies, DependencyConstraints, DependencyProvider, PackageResolutionStatistics, Ranges,
};
use tenon_manifest::{DependencyScope, PluginId, Version, VersionReq};

use crate::index::{Index, IndexVersion};
use crate::request::{Request, Requirement};

/// A set of version indices of one package.
pub(crate) type Set = Ranges<u32>;

/// The version index that means "not installed" (admitted by peers only).
pub(crate) const NONE: u32 = u32::MAX;

/// The entry of installed plugins the index does not know.
static NOT_IN_INDEX: IndexVersion = IndexVersion::EMPTY;

/// A package of the resolution: the request itself, the two virtual packages
/// standing for the host, or a plugin (interned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Pkg {
    /// The request; its dependencies are the requirements.
    Root,
    /// The plugin API the host serves. Never chosen: a plugin version that
    /// needs an API the host does not serve depends on an empty set of it.
    Api,
    /// The host application, likewise.
    Host,
    /// A plugin, by interned number.
    Plugin(u32),
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => f.write_str("request"),
            Pkg::Api => f.write_str("plugin-api"),
            Pkg::Host => f.write_str("host"),
            Pkg::Plugin(n) => write!(f, "plugin#{n}"),
        }
    }
}

/// Why a version cannot be used, found while reading its dependencies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// It depends on its own plugin at versions that exclude itself.
    SelfConflict(VersionReq),
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::SelfConflict(req) => write!(f, "it needs its own plugin at {req}"),
        }
    }
}

/// What the resolver knows of one plugin.
#[derive(Debug)]
pub(crate) struct PluginData<'a> {
    pub(crate) id: &'a PluginId,
    /// Whether the index has it (otherwise it is an installed plugin the
    /// index does not know, with its installed version as the only one).
    pub(crate) indexed: bool,
    /// Versions, oldest first.
    pub(crate) versions: Vec<&'a Version>,
    /// Their entries, in the same order.
    pub(crate) entries: Vec<&'a IndexVersion>,
    /// Whether each version may be chosen (yanked and pre-release versions
    /// only where installed).
    pub(crate) usable: Vec<bool>,
    /// The installed version, in the index or not.
    pub(crate) installed: Option<&'a Version>,
    /// Its index, when the index has it.
    pub(crate) installed_idx: Option<u32>,
    /// Whether the strategy keeps it at the installed version.
    pub(crate) pinned: bool,
}

impl PluginData<'_> {
    pub(crate) fn len(&self) -> u32 {
        self.versions.len() as u32
    }

    /// Whether `idx` may be chosen under the strategy.
    pub(crate) fn candidate(&self, idx: u32) -> bool {
        if self.pinned {
            self.installed_idx == Some(idx)
        } else {
            self.usable[idx as usize]
        }
    }
}

/// Why a plugin is a dependency of the request.
#[derive(Debug, Default)]
pub(crate) struct RootReason<'a> {
    /// The requirements naming it.
    pub(crate) requirements: Vec<&'a Requirement>,
    /// Whether it is installed and stays (not pruned).
    pub(crate) installed: bool,
}

/// The dependency provider.
pub(crate) struct Provider<'a> {
    pub(crate) request: &'a Request,
    index: &'a Index,
    plugins: RefCell<Vec<PluginData<'a>>>,
    ids: RefCell<HashMap<&'a str, u32>>,
    /// Optional dependency edges left out after a failed attempt:
    /// (plugin, version, dependency).
    pub(crate) dropped: HashSet<(u32, u32, u32)>,
    /// Optional runtime dependencies left out because no version of them can
    /// ever be chosen, with the reason.
    pub(crate) unavailable: RefCell<HashMap<(u32, u32, u32), String>>,
    /// The request's own dependencies.
    root: DependencyConstraints<Pkg, Set>,
    /// Why each of them is one.
    pub(crate) roots: BTreeMap<u32, RootReason<'a>>,
}

impl<'a> Provider<'a> {
    pub(crate) fn new(index: &'a Index, request: &'a Request) -> Self {
        let mut provider = Self {
            request,
            index,
            plugins: RefCell::new(Vec::new()),
            ids: RefCell::new(HashMap::new()),
            dropped: HashSet::new(),
            unavailable: RefCell::new(HashMap::new()),
            root: DependencyConstraints::default(),
            roots: BTreeMap::new(),
        };
        for requirement in &request.requirements {
            let p = provider.intern(&requirement.id);
            provider
                .roots
                .entry(p)
                .or_default()
                .requirements
                .push(requirement);
        }
        if !request.options.prune {
            for id in request.installed.keys() {
                let p = provider.intern(id);
                provider.roots.entry(p).or_default().installed = true;
            }
        }
        let mut root = DependencyConstraints::default();
        for (&p, reason) in &provider.roots {
            let mut set = provider.all_versions(p);
            for requirement in &reason.requirements {
                set = set.intersection(&provider.matching(p, &requirement.version));
            }
            root.insert(Pkg::Plugin(p), set);
        }
        provider.root = root;
        provider
    }

    /// The number of `id`, interning it on first use.
    pub(crate) fn intern(&self, id: &'a PluginId) -> u32 {
        if let Some(&n) = self.ids.borrow().get(id.as_str()) {
            return n;
        }
        let data = self.load(id);
        let mut plugins = self.plugins.borrow_mut();
        let n = plugins.len() as u32;
        plugins.push(data);
        self.ids.borrow_mut().insert(id.as_str(), n);
        n
    }

    /// The number of `id`, if it was interned.
    pub(crate) fn lookup(&self, id: &str) -> Option<u32> {
        self.ids.borrow().get(id).copied()
    }

    fn load(&self, id: &'a PluginId) -> PluginData<'a> {
        let options = self.request.options;
        let installed = self.request.installed.get(id.as_str());
        let pinned = installed.is_some() && options.strategy.pins_installed();
        let (indexed, versions, entries): (bool, Vec<&'a Version>, Vec<&'a IndexVersion>) =
            match (self.index.plugin(id.as_str()), installed) {
                (Some(plugin), _) => (
                    true,
                    plugin.versions.keys().collect(),
                    plugin.versions.values().collect(),
                ),
                (None, Some(version)) => (false, vec![version], vec![&NOT_IN_INDEX]),
                (None, None) => (false, Vec::new(), Vec::new()),
            };
        let installed_idx = installed
            .and_then(|i| versions.iter().position(|v| *v == i))
            .map(|i| i as u32);
        let usable = versions
            .iter()
            .zip(&entries)
            .map(|(v, entry)| {
                Some(*v) == installed || (!entry.yanked && (options.prerelease || v.pre.is_empty()))
            })
            .collect();
        PluginData {
            id,
            indexed,
            versions,
            entries,
            usable,
            installed,
            installed_idx,
            pinned,
        }
    }

    /// Reads one plugin's data.
    pub(crate) fn with<R>(&self, p: u32, f: impl FnOnce(&PluginData<'a>) -> R) -> R {
        f(&self.plugins.borrow()[p as usize])
    }

    /// Every real version of `p`.
    pub(crate) fn all_versions(&self, p: u32) -> Set {
        match self.with(p, PluginData::len) {
            0 => Set::empty(),
            n => Set::between(0u32, n),
        }
    }

    /// The versions of `p` that `req` matches (semver's rules).
    pub(crate) fn matching(&self, p: u32, req: &VersionReq) -> Set {
        self.with(p, |data| {
            set_where(data.versions.len(), |i| req.matches(data.versions[i]))
        })
    }

    /// The versions of `p` in `set`, oldest first.
    pub(crate) fn members(&self, p: u32, set: &Set) -> Vec<u32> {
        let n = self.with(p, PluginData::len);
        (0..n).filter(|i| set.contains(i)).collect()
    }

    /// The entry of one version.
    pub(crate) fn entry(&self, p: u32, v: u32) -> &'a IndexVersion {
        self.with(p, |data| data.entries[v as usize])
    }

    /// One version's number.
    pub(crate) fn version(&self, p: u32, v: u32) -> &'a Version {
        self.with(p, |data| data.versions[v as usize])
    }

    /// The id of a plugin.
    pub(crate) fn id(&self, p: u32) -> &'a PluginId {
        self.with(p, |data| data.id)
    }

    /// Every id the index knows (for suggestions).
    pub(crate) fn index(&self) -> &'a Index {
        self.index
    }

    /// Whether the plugin API offered matches `req`.
    pub(crate) fn api_fits(&self, req: &VersionReq) -> bool {
        self.request.host.api.iter().any(|v| req.matches(v))
    }

    /// Whether the host version matches `req`; true when no host version is
    /// known (host requirements are then not checked).
    pub(crate) fn host_fits(&self, req: &VersionReq) -> bool {
        self.request
            .host
            .host
            .as_ref()
            .is_none_or(|v| req.matches(v))
    }

    fn plugin_dependencies(&self, p: u32, v: u32) -> Dependencies<Pkg, Set, Unusable> {
        let entry = self.entry(p, v);
        let mut deps = DependencyConstraints::default();
        for (dep_id, dep) in &entry.dependencies {
            if dep.scope == DependencyScope::Dev {
                continue;
            }
            let d = self.intern(dep_id);
            if d == p {
                if dep.version.matches(self.version(p, v)) {
                    continue;
                }
                return Dependencies::Unavailable(Unusable::SelfConflict(dep.version.clone()));
            }
            if self.dropped.contains(&(p, v, d)) {
                continue;
            }
            let mut set = self.matching(d, &dep.version);
            if dep.optional && dep.scope == DependencyScope::Runtime && !self.possible(d, &set) {
                let reason = crate::explain::unavailable(self, d, &dep.version);
                self.unavailable.borrow_mut().insert((p, v, d), reason);
                continue;
            }
            if dep.scope == DependencyScope::Peer {
                set = set.union(&Set::singleton(NONE));
            }
            deps.insert(Pkg::Plugin(d), set);
        }
        if let Some(req) = &entry.engine.tenon
            && !self.api_fits(req)
        {
            deps.insert(Pkg::Api, Set::empty());
        }
        if let Some(req) = &entry.engine.host
            && !self.host_fits(req)
        {
            deps.insert(Pkg::Host, Set::empty());
        }
        Dependencies::Available(deps)
    }
}

impl Provider<'_> {
    /// Whether some version of `d` in `set` could be chosen, judging by the
    /// version alone (not by its own dependencies).
    fn possible(&self, d: u32, set: &Set) -> bool {
        self.with(d, |data| {
            (0..data.len()).any(|i| {
                let engine = &data.entries[i as usize].engine;
                set.contains(&i)
                    && data.candidate(i)
                    && engine.tenon.as_ref().is_none_or(|r| self.api_fits(r))
                    && engine.host.as_ref().is_none_or(|r| self.host_fits(r))
            })
        })
    }
}

/// The indices below `n` for which `pred` holds, as half-open runs.
pub(crate) fn set_where(n: usize, mut pred: impl FnMut(usize) -> bool) -> Set {
    let mut set = Set::empty();
    let mut start = None;
    for i in 0..=n {
        let inside = i < n && pred(i);
        match (inside, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                set = set.union(&Set::between(s as u32, i as u32));
                start = None;
            }
            _ => {}
        }
    }
    set
}

impl DependencyProvider for Provider<'_> {
    type P = Pkg;
    type V = u32;
    type VS = Set;
    type M = Unusable;
    type Err = Infallible;
    /// Single-version packages first, then plugins with no candidate left (to
    /// fail fast), then by conflicts and fewest candidates; plugins only peers
    /// mention come last, so they are decided once nothing else can bring
    /// them in.
    type Priority = (u8, u32, Reverse<u32>);

    fn prioritize(
        &self,
        package: &Pkg,
        range: &Set,
        stats: &PackageResolutionStatistics,
    ) -> Self::Priority {
        let Pkg::Plugin(p) = *package else {
            return (4, 0, Reverse(0));
        };
        if range.contains(&NONE) {
            return (0, 0, Reverse(0));
        }
        let count = self.with(p, |data| {
            (0..data.len())
                .filter(|&i| data.candidate(i) && range.contains(&i))
                .count() as u32
        });
        match count {
            0 => (3, 0, Reverse(0)),
            1 => (2, stats.conflict_count(), Reverse(1)),
            n => (1, stats.conflict_count(), Reverse(n)),
        }
    }

    fn choose_version(&self, package: &Pkg, range: &Set) -> Result<Option<u32>, Infallible> {
        let Pkg::Plugin(p) = *package else {
            return Ok(range.contains(&0).then_some(0));
        };
        if range.contains(&NONE) {
            return Ok(Some(NONE));
        }
        Ok(self.with(p, |data| {
            (0..data.len())
                .rev()
                .find(|&i| data.candidate(i) && range.contains(&i))
        }))
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &u32,
    ) -> Result<Dependencies<Pkg, Set, Unusable>, Infallible> {
        Ok(match *package {
            Pkg::Root => Dependencies::Available(self.root.clone()),
            Pkg::Plugin(_) if *version == NONE => {
                Dependencies::Available(DependencyConstraints::default())
            }
            Pkg::Plugin(p) => self.plugin_dependencies(p, *version),
            Pkg::Api | Pkg::Host => Dependencies::Available(DependencyConstraints::default()),
        })
    }
}
