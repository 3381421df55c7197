//! Conflict explanations: pubgrub's derivation tree told in an operator's
//! words.
//!
//! The tree is a proof that the request cannot be satisfied: its leaves are
//! facts (a requirement of the request, a dependency of a plugin version, a
//! plugin API the host does not serve, a version that cannot be chosen), its
//! inner nodes conclusions drawn from two premises. It is told as a chain of
//! sentences, premises first, each sentence ending with what follows from it;
//! a conclusion used twice gets a label (`[1]`) and is referred to later.
//!
//! Version sets are told the way they were written where possible (the
//! requirement that produced them), otherwise as versions (`1.0.0 or 1.4.0`,
//! `>=1.2.0, <=1.4.0`); never in a range notation.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use pubgrub::{DerivationTree, Derived, External, Map, Term};
use tenon_manifest::{DependencyScope, VersionReq};

use crate::index::Index;
use crate::provider::{NONE, Pkg, PluginData, Provider, Set, Unusable};

type Tree = DerivationTree<Pkg, Set, Unusable>;
type Ext = External<Pkg, Set, Unusable>;
type Der = Derived<Pkg, Set, Unusable>;
type Terms = Map<Pkg, Term<Set>>;

/// Explains why `tree` proves the request unsatisfiable.
pub(crate) fn explain(provider: &Provider<'_>, tree: &Tree) -> String {
    let tree = &simplify(provider, tree, &mut HashMap::new());
    let mut explainer = Explainer::new(provider);
    explainer.collect_known(tree);
    match tree {
        DerivationTree::External(external) => {
            let line = explainer.external(external);
            explainer.lines.push(line);
        }
        DerivationTree::Derived(derived) => explainer.build_recursive(derived),
    }
    explainer.finish()
}

/// Drops the steps that only say "no version exists" of versions that do
/// not exist: version sets are sets of indices, and pubgrub also proves that
/// indices past the last version have no version, which is true and useless.
fn simplify(provider: &Provider<'_>, tree: &Tree, done: &mut HashMap<usize, Tree>) -> Tree {
    let DerivationTree::Derived(derived) = tree else {
        return tree.clone();
    };
    if let Some(simple) = derived.shared_id.and_then(|id| done.get(&id)) {
        return simple.clone();
    }
    let cause1 = simplify(provider, &derived.cause1, done);
    let cause2 = simplify(provider, &derived.cause2, done);
    let phantom = |cause: &Tree| match cause {
        DerivationTree::External(External::NoVersions(Pkg::Plugin(p), set)) => {
            provider.members(*p, set).is_empty()
        }
        _ => false,
    };
    let simple = if phantom(&cause1) {
        cause2
    } else if phantom(&cause2) {
        cause1
    } else {
        DerivationTree::Derived(Derived {
            terms: derived.terms.clone(),
            shared_id: derived.shared_id,
            cause1: Arc::new(cause1),
            cause2: Arc::new(cause2),
        })
    };
    if let Some(id) = derived.shared_id {
        done.insert(id, simple.clone());
    }
    simple
}

/// Calls `f(plugin, versions, dependency)` for every plugin-to-plugin
/// dependency the proof relies on, visiting each shared step once.
fn for_each_dependency(tree: &Tree, mut f: impl FnMut(u32, &Set, u32)) {
    let mut stack = vec![tree];
    let mut seen = HashSet::new();
    while let Some(node) = stack.pop() {
        match node {
            DerivationTree::Derived(derived) => {
                if derived.shared_id.is_none_or(|id| seen.insert(id)) {
                    stack.push(&derived.cause1);
                    stack.push(&derived.cause2);
                }
            }
            DerivationTree::External(External::FromDependencyOf(
                Pkg::Plugin(p),
                versions,
                Pkg::Plugin(d),
                _,
            )) => f(*p, versions, *d),
            DerivationTree::External(_) => {}
        }
    }
}

/// The optional dependency edges `(plugin, version, dependency)` that the
/// proof relies on: leaving them out may make the request satisfiable.
pub(crate) fn optional_edges(provider: &Provider<'_>, tree: &Tree) -> Vec<(u32, u32, u32)> {
    let mut edges = Vec::new();
    for_each_dependency(tree, |p, versions, d| {
        let dep_id = provider.id(d);
        for v in provider.members(p, versions) {
            let optional = provider
                .entry(p, v)
                .dependencies
                .get(dep_id)
                .is_some_and(|dep| dep.optional);
            if optional && !edges.contains(&(p, v, d)) {
                edges.push((p, v, d));
            }
        }
    });
    edges.sort_unstable();
    edges
}

/// Why an optional runtime dependency can never be met, whatever else is
/// chosen: every version of `d` that `req` matches is missing, cannot be
/// chosen, or needs a plugin API or host this host does not offer.
pub(crate) fn unavailable(provider: &Provider<'_>, d: u32, req: &VersionReq) -> String {
    let explainer = Explainer::new(provider);
    let id = provider.id(d);
    if provider.with(d, |data| !data.indexed && data.versions.is_empty()) {
        return format!(
            "{id} is not in the index{}",
            did_you_mean(provider.index(), id.as_str())
        );
    }
    let members = provider.members(d, &provider.matching(d, req));
    if members.is_empty() {
        return format!(
            "no version of {} matches (available: {})",
            requirement_text(id.as_str(), req),
            explainer.available(d)
        );
    }
    let (mut api, mut host, mut unusable) = (Set::empty(), Set::empty(), Set::empty());
    for v in members {
        let one = Set::singleton(v);
        let engine = &provider.entry(d, v).engine;
        if !provider.with(d, |data| data.candidate(v)) {
            unusable = unusable.union(&one);
        } else if engine.tenon.as_ref().is_some_and(|r| !provider.api_fits(r)) {
            api = api.union(&one);
        } else if engine.host.as_ref().is_some_and(|r| !provider.host_fits(r)) {
            host = host.union(&one);
        }
    }
    let mut reasons = Vec::new();
    if !unusable.is_empty() {
        reasons.push(explainer.no_versions(d, &unusable));
    }
    if !api.is_empty() {
        reasons.push(explainer.engine_dependency(Pkg::Plugin(d), &api, Pkg::Api));
    }
    if !host.is_empty() {
        reasons.push(explainer.engine_dependency(Pkg::Plugin(d), &host, Pkg::Host));
    }
    reasons.join("; ")
}

/// Lists versions for a message: all of them when few, otherwise the oldest
/// two and the newest six.
pub(crate) fn version_list<T: std::fmt::Display>(versions: &[T]) -> String {
    const ALL_UP_TO: usize = 10;
    if versions.is_empty() {
        return "none".to_owned();
    }
    if versions.len() <= ALL_UP_TO {
        return join(versions.iter().map(ToString::to_string), ", ");
    }
    let head = versions[..2].iter().map(ToString::to_string);
    let tail = versions[versions.len() - 6..]
        .iter()
        .map(ToString::to_string);
    format!(
        "{}, …, {} ({} versions)",
        join(head, ", "),
        join(tail, ", "),
        versions.len()
    )
}

fn join(items: impl IntoIterator<Item = String>, sep: &str) -> String {
    items.into_iter().collect::<Vec<_>>().join(sep)
}

/// Joins with commas and a final "and"/"or".
fn join_last(items: &[String], last: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., end] => format!("{} {last} {end}", init.join(", ")),
    }
}

/// Close ids from the index, for "did you mean": the closest ones, if they
/// are within a quarter of the id's length (at least one edit).
pub(crate) fn suggestions(index: &Index, id: &str) -> Vec<String> {
    let limit = (id.len() / 4).max(1);
    let scored: Vec<(usize, &str)> = index
        .plugins
        .keys()
        .map(|known| known.as_str())
        .filter(|known| known.len().abs_diff(id.len()) <= limit)
        .map(|known| (edit_distance(id, known), known))
        .filter(|(d, _)| *d <= limit)
        .collect();
    let Some(best) = scored.iter().map(|(d, _)| *d).min() else {
        return Vec::new();
    };
    scored
        .into_iter()
        .filter(|(d, _)| *d == best)
        .take(3)
        .map(|(_, known)| known.to_owned())
        .collect()
}

/// " (did you mean acme/a?)", or nothing.
pub(crate) fn did_you_mean(index: &Index, id: &str) -> String {
    let close = suggestions(index, id);
    if close.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", join_last(&close, "or"))
    }
}

/// Levenshtein distance over bytes (ids are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

struct Explainer<'p, 'a> {
    provider: &'p Provider<'a>,
    lines: Vec<String>,
    /// Shared derivation id → label.
    labels: HashMap<usize, usize>,
    label_count: usize,
    /// Requirements seen in the proof, by plugin: used to tell a version set
    /// the way it was written.
    known: HashMap<u32, Vec<VersionReq>>,
}

impl<'p, 'a> Explainer<'p, 'a> {
    fn new(provider: &'p Provider<'a>) -> Self {
        Self {
            provider,
            lines: Vec::new(),
            labels: HashMap::new(),
            label_count: 0,
            known: HashMap::new(),
        }
    }

    fn collect_known(&mut self, tree: &Tree) {
        for (&p, reason) in &self.provider.roots {
            for requirement in &reason.requirements {
                self.remember(p, &requirement.version);
            }
        }
        let provider = self.provider;
        for_each_dependency(tree, |p, versions, d| {
            let dep_id = provider.id(d);
            for v in provider.members(p, versions) {
                if let Some(dep) = provider.entry(p, v).dependencies.get(dep_id) {
                    self.remember(d, &dep.version);
                }
            }
        });
    }

    fn remember(&mut self, p: u32, req: &VersionReq) {
        if *req == VersionReq::STAR {
            return;
        }
        let known = self.known.entry(p).or_default();
        if !known.contains(req) {
            known.push(req.clone());
        }
    }

    fn finish(self) -> String {
        let sentences: Vec<String> = self
            .lines
            .into_iter()
            .filter(|line| !line.is_empty())
            .map(|line| {
                let mut sentence = capitalize(&line);
                sentence.push('.');
                sentence
            })
            .collect();
        sentences.join("\n")
    }

    // ----- walking the proof (after pubgrub's own reporter) -----

    fn label_of(&self, derived: &Der) -> Option<usize> {
        derived
            .shared_id
            .and_then(|id| self.labels.get(&id).copied())
    }

    fn add_label(&mut self) -> usize {
        self.label_count += 1;
        let label = self.label_count;
        if let Some(last) = self.lines.last_mut() {
            last.push_str(&format!(" [{label}]"));
        }
        label
    }

    fn build_recursive(&mut self, derived: &Der) {
        self.build_step(derived);
        if let Some(id) = derived.shared_id
            && !self.labels.contains_key(&id)
        {
            let label = self.add_label();
            self.labels.insert(id, label);
        }
    }

    fn build_step(&mut self, current: &Der) {
        match (&*current.cause1, &*current.cause2) {
            (DerivationTree::External(e1), DerivationTree::External(e2)) => {
                let line = self.pair(e1, e2, &current.terms);
                self.lines.push(line);
            }
            (DerivationTree::Derived(derived), DerivationTree::External(external))
            | (DerivationTree::External(external), DerivationTree::Derived(derived)) => {
                self.one_each(derived, external, &current.terms);
            }
            (DerivationTree::Derived(d1), DerivationTree::Derived(d2)) => {
                match (self.label_of(d1), self.label_of(d2)) {
                    (Some(l1), Some(l2)) => {
                        let line = format!(
                            "{} (see [{l1}]), and {} (see [{l2}]), {}",
                            self.terms(&d1.terms),
                            self.terms(&d2.terms),
                            self.so(&current.terms)
                        );
                        self.lines.push(line);
                    }
                    (Some(l1), None) => {
                        self.build_recursive(d2);
                        let line = self.and_labelled(l1, d1, &current.terms);
                        self.lines.push(line);
                    }
                    (None, Some(l2)) => {
                        self.build_recursive(d1);
                        let line = self.and_labelled(l2, d2, &current.terms);
                        self.lines.push(line);
                    }
                    (None, None) => {
                        self.build_recursive(d1);
                        if d1.shared_id.is_some() {
                            self.build_recursive(current);
                        } else {
                            let l1 = self.add_label();
                            self.build_recursive(d2);
                            let line = self.and_labelled(l1, d1, &current.terms);
                            self.lines.push(line);
                        }
                    }
                }
            }
        }
    }

    fn one_each(&mut self, derived: &Der, external: &Ext, terms: &Terms) {
        if let Some(label) = self.label_of(derived) {
            let line = format!(
                "{} (see [{label}]), and {}, {}",
                self.terms(&derived.terms),
                self.external(external),
                self.so(terms)
            );
            self.lines.push(line);
            return;
        }
        match (&*derived.cause1, &*derived.cause2) {
            (DerivationTree::Derived(prior), DerivationTree::External(prior_external))
            | (DerivationTree::External(prior_external), DerivationTree::Derived(prior)) => {
                self.build_recursive(prior);
                let line = self.pair(prior_external, external, terms);
                self.lines.push(line);
            }
            _ => {
                self.build_recursive(derived);
                let line = format!("{}, {}", self.external(external), self.so(terms));
                self.lines.push(line);
            }
        }
    }

    fn and_labelled(&self, label: usize, derived: &Der, terms: &Terms) -> String {
        format!(
            "{} (see [{label}]), {}",
            self.terms(&derived.terms),
            self.so(terms)
        )
    }

    /// Two facts and what follows from them, with the common shapes told
    /// naturally.
    fn pair(&self, e1: &Ext, e2: &Ext, terms: &Terms) -> String {
        use External::{FromDependencyOf, NoVersions};
        match (e1, e2) {
            // Two requirements on one plugin that no version meets together.
            (
                FromDependencyOf(_, _, Pkg::Plugin(b1), s1),
                FromDependencyOf(_, _, Pkg::Plugin(b2), s2),
            ) if b1 == b2
                && !terms.contains_key(&Pkg::Plugin(*b1))
                && self.has_real(*b1, s1)
                && self.has_real(*b1, s2) =>
            {
                let mut line = format!(
                    "{}, but {}; no version of {} satisfies both (available: {})",
                    self.external(e1),
                    self.external(e2),
                    self.provider.id(*b1),
                    self.available(*b1)
                );
                if is_root_only(terms) {
                    line.push_str(", so your request cannot be satisfied");
                }
                line
            }
            // A requirement and why nothing it admits can be chosen.
            (FromDependencyOf(_, _, Pkg::Plugin(b1), _), NoVersions(Pkg::Plugin(b2), set))
            | (NoVersions(Pkg::Plugin(b2), set), FromDependencyOf(_, _, Pkg::Plugin(b1), _))
                if b1 == b2 =>
            {
                let dependency = if matches!(e1, NoVersions(..)) { e2 } else { e1 };
                format!(
                    "{}, but {}, {}",
                    self.external(dependency),
                    self.no_versions(*b2, set),
                    self.so(terms)
                )
            }
            _ => {
                let (f1, f2) = (self.external(e1), self.external(e2));
                let says_but = |fact: &str| fact.contains(", but ");
                let (first, second) = if says_but(&f2) && !says_but(&f1) {
                    (f2, f1)
                } else {
                    (f1, f2)
                };
                if says_but(&first) {
                    // A fact that already says "but" stands as its own sentence.
                    let rest = format!("{second}, {}", self.so(terms));
                    format!("{first}.\n{}", capitalize(&rest))
                } else {
                    format!("{first}, and {second}, {}", self.so(terms))
                }
            }
        }
    }

    // ----- facts -----

    fn external(&self, external: &Ext) -> String {
        match external {
            External::NotRoot(..) => "the request is being resolved".to_owned(),
            External::NoVersions(Pkg::Plugin(p), set) if self.provider.with(*p, |d| d.pinned) => {
                format!(
                    "{} cannot be chosen: {}",
                    self.object(Pkg::Plugin(*p), set),
                    self.provider.with(*p, |data| self.pinned(data, "it"))
                )
            }
            External::NoVersions(Pkg::Plugin(p), set) => self.no_versions(*p, set),
            External::NoVersions(pkg, _) => format!("{} cannot be satisfied", self.name(*pkg)),
            External::Custom(pkg, set, reason) => {
                format!("{} cannot be used: {reason}", self.subject(*pkg, set))
            }
            External::FromDependencyOf(x, sx, y, sy) => self.dependency(*x, sx, *y, sy),
        }
    }

    fn dependency(&self, x: Pkg, sx: &Set, y: Pkg, sy: &Set) -> String {
        let ((Pkg::Root, Pkg::Plugin(q)) | (Pkg::Plugin(_), Pkg::Plugin(q))) = (x, y) else {
            return self.engine_dependency(x, sx, y);
        };
        let mut line = match x {
            Pkg::Plugin(p) => self.plugin_dependency(p, sx, q),
            _ => self.root_dependency(q),
        };
        if !self.has_real(q, sy) {
            line.push_str(&self.nothing_matches(q));
        }
        line
    }

    /// "acme/a 1.0.0 needs acme/b ^2", grouped by what each version asks.
    fn plugin_dependency(&self, p: u32, sx: &Set, q: u32) -> String {
        let dep_id = self.provider.id(q);
        let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
        for v in self.provider.members(p, sx) {
            let Some(dep) = self.provider.entry(p, v).dependencies.get(dep_id) else {
                continue;
            };
            let mut what = requirement_text(dep_id.as_str(), &dep.version);
            if dep.scope == DependencyScope::Peer {
                what.push_str(" as a peer");
            }
            if dep.optional {
                what.push_str(" (optional)");
            }
            match groups.iter_mut().find(|(w, _)| *w == what) {
                Some((_, versions)) => versions.push(v),
                None => groups.push((what, vec![v])),
            }
        }
        self.grouped_needs(p, sx, groups)
    }

    fn grouped_needs(&self, p: u32, sx: &Set, groups: Vec<(String, Vec<u32>)>) -> String {
        if let [(what, _)] = groups.as_slice() {
            return format!("{} needs {what}", self.subject(Pkg::Plugin(p), sx));
        }
        let parts: Vec<String> = groups
            .iter()
            .map(|(what, versions)| {
                let set = versions
                    .iter()
                    .fold(Set::empty(), |s, v| s.union(&Set::singleton(*v)));
                format!("{} needs {what}", self.subject(Pkg::Plugin(p), &set))
            })
            .collect();
        join_last(&parts, "and")
    }

    /// "acme/x 2.0.0 needs plugin API ^2, but this host serves plugin API 1.0.0".
    fn engine_dependency(&self, x: Pkg, sx: &Set, y: Pkg) -> String {
        let Pkg::Plugin(p) = x else {
            return format!("{} needs {}", self.name(x), self.name(y));
        };
        let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
        for v in self.provider.members(p, sx) {
            let engine = &self.provider.entry(p, v).engine;
            let what = match (y, &engine.tenon, &engine.host) {
                (Pkg::Api, Some(req), _) => format!("plugin API {req}"),
                (Pkg::Host, _, Some(req)) => format!("host version {req}"),
                _ => continue,
            };
            match groups.iter_mut().find(|(w, _)| *w == what) {
                Some((_, versions)) => versions.push(v),
                None => groups.push((what, vec![v])),
            }
        }
        let needs = self.grouped_needs(p, sx, groups);
        let host = &self.provider.request.host;
        match y {
            Pkg::Api if host.api.is_empty() => {
                format!("{needs}, but this host serves no plugin API")
            }
            Pkg::Api => {
                let api: Vec<String> = host.api.iter().map(ToString::to_string).collect();
                format!(
                    "{needs}, but this host serves plugin API {}",
                    join_last(&api, "and")
                )
            }
            _ => match &host.host {
                Some(version) => format!("{needs}, but this host is version {version}"),
                None => needs,
            },
        }
    }

    /// Why the request names a plugin.
    fn root_dependency(&self, q: u32) -> String {
        let id = self.provider.id(q);
        let Some(reason) = self.provider.roots.get(&q) else {
            return format!("your request needs {id}");
        };
        match reason.requirements.as_slice() {
            [] => {
                let installed = self.provider.with(q, |data| data.installed);
                match installed {
                    Some(version) => {
                        format!("{id} is installed ({version}) and stays in the plan")
                    }
                    None => format!("{id} stays in the plan"),
                }
            }
            [one] if one.version == VersionReq::STAR => {
                format!("{id} is required by your request")
            }
            requirements => {
                let what: Vec<String> =
                    requirements.iter().map(|r| r.version.to_string()).collect();
                let asked: Vec<String> = requirements.iter().map(|r| r.to_string()).collect();
                format!(
                    "{id} {} is required by your request {}",
                    what.join(", "),
                    join_last(&asked, "and")
                )
            }
        }
    }

    /// The tail of a requirement no version of `q` matches.
    fn nothing_matches(&self, q: u32) -> String {
        let (indexed, id) = self.provider.with(q, |data| (data.indexed, data.id));
        if indexed {
            format!(
                ", but no version of {id} matches (available: {})",
                self.available(q)
            )
        } else {
            format!(
                ", but {id} is not in the index{}",
                did_you_mean(self.provider.index(), id.as_str())
            )
        }
    }

    /// Why no version of `set` can be chosen.
    fn no_versions(&self, p: u32, set: &Set) -> String {
        self.provider.with(p, |data| {
            let id = data.id;
            if data.pinned {
                return self.pinned(data, id.as_str());
            }
            let members = self.provider.members(p, set);
            if members.is_empty() {
                return format!(
                    "no other version of {id} exists (available: {})",
                    self.available(p)
                );
            }
            let prerelease = self.provider.request.options.prerelease;
            let (mut yanked, mut pre) = (Vec::new(), Vec::new());
            for &v in &members {
                if data.usable[v as usize] {
                    continue;
                }
                let entry = data.entries[v as usize];
                let version = data.versions[v as usize].to_string();
                if entry.yanked {
                    yanked.push(version);
                } else if !prerelease {
                    pre.push(version);
                }
            }
            let mut reasons = Vec::new();
            if !yanked.is_empty() {
                let verb = if yanked.len() == 1 { "is" } else { "are" };
                reasons.push(format!("{} {verb} yanked", join_last(&yanked, "and")));
            }
            if !pre.is_empty() {
                let what = if pre.len() == 1 {
                    "is a pre-release"
                } else {
                    "are pre-releases"
                };
                reasons.push(format!(
                    "{} {what} and pre-releases are not allowed",
                    join_last(&pre, "and")
                ));
            }
            format!(
                "{} cannot be chosen: {}",
                self.object(Pkg::Plugin(p), set),
                reasons.join("; ")
            )
        })
    }

    /// "acme/b is installed at 1.0.0 and the manual strategy keeps installed
    /// versions", with `who` naming the plugin.
    fn pinned(&self, data: &PluginData<'_>, who: &str) -> String {
        let strategy = self.provider.request.options.strategy;
        let installed = data.installed.map(ToString::to_string).unwrap_or_default();
        let mut line = format!(
            "{who} is installed at {installed} and the {strategy} strategy keeps installed versions"
        );
        if data.installed_idx.is_none() {
            line.push_str(&format!(", but {installed} is not in the index"));
        }
        line
    }

    /// The versions of `p` that may be chosen, plus the yanked ones.
    fn available(&self, p: u32) -> String {
        self.provider.with(p, |data| {
            let usable: Vec<_> = (0..data.versions.len())
                .filter(|&i| data.usable[i])
                .map(|i| data.versions[i])
                .collect();
            let yanked: Vec<_> = (0..data.versions.len())
                .filter(|&i| !data.usable[i] && data.entries[i].yanked)
                .map(|i| data.versions[i])
                .collect();
            let mut text = version_list(&usable);
            if !yanked.is_empty() {
                text.push_str(&format!("; yanked: {}", version_list(&yanked)));
            }
            text
        })
    }

    // ----- conclusions -----

    fn so(&self, terms: &Terms) -> String {
        format!("so {}", self.terms(terms))
    }

    /// An incompatibility in words.
    fn terms(&self, terms: &Terms) -> String {
        let mut root = false;
        let mut positive = Vec::new();
        let mut negative = Vec::new();
        let single_any = match terms.iter().next() {
            Some((Pkg::Plugin(p), Term::Positive(set)))
                if terms.len() == 1 && self.versions(*p, set, false).is_none() =>
            {
                Some(self.provider.id(*p).to_string())
            }
            _ => None,
        };
        let mut sorted: Vec<(&Pkg, &Term<Set>)> = terms.iter().collect();
        sorted.sort_by_key(|(pkg, _)| **pkg);
        for (pkg, term) in sorted {
            match (pkg, term) {
                (Pkg::Root, Term::Positive(_)) => root = true,
                (_, Term::Positive(set)) => positive.push(self.subject(*pkg, set)),
                (_, Term::Negative(set)) => negative.push(self.object(*pkg, set)),
            }
        }
        match (root, positive.as_slice(), negative.as_slice()) {
            (true, [], []) => "your request cannot be satisfied".to_owned(),
            (true, [], needs) => format!("your request needs {}", join_last(needs, "and")),
            (false, [_], []) if single_any.is_some() => {
                format!(
                    "no version of {} can be used",
                    single_any.unwrap_or_default()
                )
            }
            (false, [one], []) => format!("{one} cannot be used"),
            (false, [one], needs) => format!("{one} needs {}", join_last(needs, "and")),
            (false, subjects, []) => {
                format!("{} cannot be used together", join_last(subjects, "and"))
            }
            (true, subjects, []) => format!(
                "your request cannot be satisfied with {}",
                join_last(subjects, "or")
            ),
            (root, subjects, needs) => {
                let mut subjects = subjects.to_vec();
                if root {
                    subjects.insert(0, "your request".to_owned());
                }
                format!(
                    "{} together need {}",
                    join_last(&subjects, "and"),
                    join_last(needs, "and")
                )
            }
        }
    }

    fn name(&self, pkg: Pkg) -> String {
        match pkg {
            Pkg::Root => "your request".to_owned(),
            Pkg::Api => "the plugin API".to_owned(),
            Pkg::Host => "the host".to_owned(),
            Pkg::Plugin(p) => self.provider.id(p).to_string(),
        }
    }

    /// A set of versions as the subject of a sentence: "acme/a 1.0.0",
    /// "every version of acme/a".
    fn subject(&self, pkg: Pkg, set: &Set) -> String {
        let Pkg::Plugin(p) = pkg else {
            return self.name(pkg);
        };
        match self.versions(p, set, false) {
            Some(versions) => format!("{} {versions}{}", self.name(pkg), self.or_none(p, set)),
            None => format!("every version of {}", self.name(pkg)),
        }
    }

    /// A set of versions as an object: "acme/b ^2", "acme/b".
    fn object(&self, pkg: Pkg, set: &Set) -> String {
        let Pkg::Plugin(p) = pkg else {
            return self.name(pkg);
        };
        match self.versions(p, set, true) {
            Some(versions) => format!("{} {versions}{}", self.name(pkg), self.or_none(p, set)),
            None => self.name(pkg),
        }
    }

    fn or_none(&self, p: u32, set: &Set) -> String {
        if set.contains(&NONE) {
            format!(" (or no {} at all)", self.provider.id(p))
        } else {
            String::new()
        }
    }

    fn has_real(&self, p: u32, set: &Set) -> bool {
        !self.provider.members(p, set).is_empty()
    }

    /// The versions of `set` in words; `None` when it is every version. A
    /// single version is told as itself, unless `as_written` prefers the
    /// requirement that produced the set.
    fn versions(&self, p: u32, set: &Set, as_written: bool) -> Option<String> {
        let members = self.provider.members(p, set);
        self.provider.with(p, |data| {
            let n = data.versions.len();
            if members.is_empty() {
                return Some("(no version)".to_owned());
            }
            let written = || {
                let known = self.known.get(&p)?;
                known.iter().find(|req| {
                    members
                        .iter()
                        .copied()
                        .eq((0..n as u32).filter(|&i| req.matches(data.versions[i as usize])))
                })
            };
            if as_written && let Some(req) = written() {
                return Some(req.to_string());
            }
            if let [one] = members.as_slice() {
                return Some(data.versions[*one as usize].to_string());
            }
            if members.len() == n {
                return None;
            }
            if let Some(req) = written() {
                return Some(req.to_string());
            }
            Some(runs(data, &members))
        })
    }
}

/// Consecutive runs of versions: "1.0.0, 1.1.0 or >=2.0.0".
fn runs(data: &PluginData<'_>, members: &[u32]) -> String {
    let last = data.versions.len() as u32 - 1;
    let mut parts = Vec::new();
    let mut i = 0;
    while i < members.len() {
        let mut j = i;
        while j + 1 < members.len() && members[j + 1] == members[j] + 1 {
            j += 1;
        }
        let (start, end) = (members[i], members[j]);
        let version = |k: u32| data.versions[k as usize].to_string();
        match end - start {
            0 => parts.push(version(start)),
            1 => {
                parts.push(version(start));
                parts.push(version(end));
            }
            _ if start == 0 => parts.push(format!("<={}", version(end))),
            _ if end == last => parts.push(format!(">={}", version(start))),
            _ => parts.push(format!(">={}, <={}", version(start), version(end))),
        }
        i = j + 1;
    }
    join_last(&parts, "or")
}

/// "acme/b ^2", or "acme/b" for any version.
pub(crate) fn requirement_text(id: &str, req: &VersionReq) -> String {
    if *req == VersionReq::STAR {
        id.to_owned()
    } else {
        format!("{id} {req}")
    }
}

fn is_root_only(terms: &Terms) -> bool {
    terms.len() == 1 && matches!(terms.get(&Pkg::Root), Some(Term::Positive(_)))
}

/// Capitalizes a sentence unless it starts with a plugin id.
fn capitalize(line: &str) -> String {
    let first_word = line.split(' ').next().unwrap_or_default();
    if first_word.contains('/') {
        return line.to_owned();
    }
    let mut chars = line.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lists() {
        let check = |count: usize, expected: &str| {
            let versions: Vec<String> = (0..count).map(|i| format!("1.{i}.0")).collect();
            assert_eq!(version_list(&versions), expected, "{count} versions");
        };
        check(0, "none");
        check(1, "1.0.0");
        check(3, "1.0.0, 1.1.0, 1.2.0");
        check(
            10,
            "1.0.0, 1.1.0, 1.2.0, 1.3.0, 1.4.0, 1.5.0, 1.6.0, 1.7.0, 1.8.0, 1.9.0",
        );
        check(
            11,
            "1.0.0, 1.1.0, …, 1.5.0, 1.6.0, 1.7.0, 1.8.0, 1.9.0, 1.10.0 (11 versions)",
        );
    }

    #[test]
    fn edit_distances() {
        for (a, b, d) in [
            ("", "", 0),
            ("acme/a", "acme/a", 0),
            ("acme/a", "acme/b", 1),
            ("acme/logr", "acme/logger", 2),
            ("acme/x", "acme/xy", 1),
            ("abc", "", 3),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} / {b}");
            assert_eq!(edit_distance(b, a), d, "{b} / {a}");
        }
    }

    #[test]
    fn sentences_are_capitalized_unless_they_start_with_an_id() {
        assert_eq!(capitalize("no version of acme/a"), "No version of acme/a");
        assert_eq!(capitalize("acme/a 1.0.0 needs"), "acme/a 1.0.0 needs");
        assert_eq!(capitalize(""), "");
    }
}
