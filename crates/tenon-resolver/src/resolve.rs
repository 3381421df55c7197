//! The resolution pipeline: select versions, check peers, order, plan.

use std::collections::{BTreeMap, HashMap, VecDeque};

use pubgrub::PubGrubError;
use tenon_manifest::{DependencyScope, PluginId};

use crate::error::ResolveError;
use crate::explain::{self, did_you_mean, requirement_text};
use crate::index::Index;
use crate::order::load_order;
use crate::outcome::{Action, Note, NoteKind, PlanEntry, Resolution, Selected, Severity};
use crate::provider::{NONE, Pkg, Provider};
use crate::request::{Request, Strategy};

/// Chooses a version of every plugin the request needs, orders them for
/// loading and plans the change against what is installed.
///
/// Versions are selected with PubGrub; when no selection exists the error
/// explains why, naming every requirement involved. See the crate
/// documentation for the rules (strategies, pre-releases, optional, peer and
/// dev dependencies, yanked versions).
pub fn resolve(index: &Index, request: &Request) -> Result<Resolution, ResolveError> {
    unknown_requests(index, request)?;
    let mut provider = Provider::new(index, request);
    let mut drop_reasons: HashMap<(u32, u32, u32), String> = HashMap::new();
    let solution = loop {
        match pubgrub::resolve(&provider, Pkg::Root, 0u32) {
            Ok(solution) => break solution,
            Err(PubGrubError::NoSolution(tree)) => {
                let edges = explain::optional_edges(&provider, &tree);
                let explanation = explain::explain(&provider, &tree);
                if edges.is_empty() {
                    return Err(ResolveError::Conflict { explanation });
                }
                for edge in edges {
                    provider.dropped.insert(edge);
                    let reason = format!(", because with it no plan exists: {explanation}");
                    drop_reasons.insert(edge, reason);
                }
            }
            Err(PubGrubError::ErrorRetrievingDependencies { source, .. })
            | Err(PubGrubError::ErrorChoosingVersion { source, .. })
            | Err(PubGrubError::ErrorInShouldCancel(source)) => match source {},
        }
    };
    for (edge, reason) in provider.unavailable.borrow().iter() {
        drop_reasons.insert(*edge, format!(": {reason}"));
    }
    let mut chosen: Vec<(u32, u32)> = solution
        .into_iter()
        .filter_map(|(pkg, v)| match pkg {
            Pkg::Plugin(p) if v != NONE => Some((p, v)),
            _ => None,
        })
        .collect();
    chosen.sort_by_key(|&(p, _)| provider.id(p));
    Planner::new(&provider, chosen, &drop_reasons).plan()
}

/// Requested plugins the index does not have (and that are not installed):
/// one clear error listing them all, with close ids.
fn unknown_requests(index: &Index, request: &Request) -> Result<(), ResolveError> {
    let mut lines: Vec<String> = Vec::new();
    for requirement in &request.requirements {
        let id = requirement.id.as_str();
        if index.plugin(id).is_some() || request.installed.contains_key(id) {
            continue;
        }
        let line = format!("{id} is not in the index{}.", did_you_mean(index, id));
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    if lines.is_empty() {
        Ok(())
    } else {
        Err(ResolveError::Conflict {
            explanation: lines.join("\n"),
        })
    }
}

/// A dependency edge between two chosen plugins, by position in `chosen`.
struct Edge {
    dependent: usize,
    dependency: usize,
    brings_in: bool,
}

struct Planner<'p, 'a> {
    provider: &'p Provider<'a>,
    /// (plugin, version index), by id.
    chosen: Vec<(u32, u32)>,
    position: HashMap<u32, usize>,
    drop_reasons: &'p HashMap<(u32, u32, u32), String>,
}

impl<'p, 'a> Planner<'p, 'a> {
    fn new(
        provider: &'p Provider<'a>,
        chosen: Vec<(u32, u32)>,
        drop_reasons: &'p HashMap<(u32, u32, u32), String>,
    ) -> Self {
        let position = chosen
            .iter()
            .enumerate()
            .map(|(i, &(p, _))| (p, i))
            .collect();
        Self {
            provider,
            chosen,
            position,
            drop_reasons,
        }
    }

    fn selected(&self, i: usize) -> String {
        let (p, v) = self.chosen[i];
        format!("{} {}", self.provider.id(p), self.provider.version(p, v))
    }

    fn plan(self) -> Result<Resolution, ResolveError> {
        let mut notes = Vec::new();
        let mut edges = Vec::new();
        let mut missing_peers = Vec::new();
        for (i, &(p, v)) in self.chosen.iter().enumerate() {
            let entry = self.provider.entry(p, v);
            for (dep_id, dep) in &entry.dependencies {
                if dep.scope == DependencyScope::Dev {
                    continue;
                }
                let d = self.provider.lookup(dep_id.as_str());
                let at = d.and_then(|d| self.position.get(&d).copied());
                let dropped = d.and_then(|d| self.drop_reasons.get(&(p, v, d)));
                let fits = at.is_some_and(|j| {
                    let (q, w) = self.chosen[j];
                    dep.version.matches(self.provider.version(q, w))
                });
                if let Some(reason) = dropped
                    && !fits
                {
                    let present = at
                        .map(|j| {
                            format!(
                                " (the plan has {}, which does not match {})",
                                self.selected(j),
                                dep.version
                            )
                        })
                        .unwrap_or_default();
                    notes.push(Note {
                        severity: Severity::Warning,
                        kind: NoteKind::OptionalDropped,
                        plugin: Some(self.provider.id(p).clone()),
                        message: format!(
                            "optional dependency {} of {} was left out{present}{}",
                            requirement_text(dep_id.as_str(), &dep.version),
                            self.selected(i),
                            reason.replace('\n', " ")
                        ),
                    });
                    continue;
                }
                match at {
                    Some(j) => edges.push(Edge {
                        dependent: i,
                        dependency: j,
                        brings_in: dep.scope == DependencyScope::Runtime,
                    }),
                    None if dep.scope == DependencyScope::Peer && !dep.optional => {
                        missing_peers.push((i, dep_id, &dep.version));
                    }
                    None => {}
                }
            }
        }
        if !missing_peers.is_empty() {
            return Err(self.missing_peers(&missing_peers, &edges));
        }
        self.notes(&mut notes);

        let needs: Vec<(usize, usize)> =
            edges.iter().map(|e| (e.dependent, e.dependency)).collect();
        let order = load_order(self.chosen.len(), &needs).map_err(|cycle| ResolveError::Cycle {
            cycle: cycle
                .into_iter()
                .map(|i| self.provider.id(self.chosen[i].0).clone())
                .collect(),
        })?;

        if self.provider.request.options.strategy == Strategy::Strict {
            let warnings: Vec<Note> = notes
                .iter()
                .filter(|n| n.severity == Severity::Warning)
                .cloned()
                .collect();
            if !warnings.is_empty() {
                return Err(ResolveError::Strict { warnings });
            }
        }

        let order: Vec<Selected> = order
            .into_iter()
            .map(|i| {
                let (p, v) = self.chosen[i];
                Selected {
                    id: self.provider.id(p).clone(),
                    version: self.provider.version(p, v).clone(),
                }
            })
            .collect();
        let plan = self.plan_entries(&order);
        Ok(Resolution { order, plan, notes })
    }

    fn plan_entries(&self, order: &[Selected]) -> Vec<PlanEntry> {
        let installed = &self.provider.request.installed;
        let mut plan: Vec<PlanEntry> = order
            .iter()
            .map(|s| {
                let from = installed.get(&s.id).cloned();
                let action = match &from {
                    None => Action::Install,
                    Some(from) if *from == s.version => Action::Keep,
                    Some(from) => match s.version.cmp_precedence(from).then(s.version.cmp(from)) {
                        std::cmp::Ordering::Less => Action::Downgrade,
                        _ => Action::Upgrade,
                    },
                };
                PlanEntry {
                    id: s.id.clone(),
                    action,
                    from,
                    to: Some(s.version.clone()),
                }
            })
            .collect();
        for (id, version) in installed {
            if self
                .provider
                .lookup(id.as_str())
                .is_some_and(|p| self.position.contains_key(&p))
            {
                continue;
            }
            plan.push(PlanEntry {
                id: id.clone(),
                action: Action::Remove,
                from: Some(version.clone()),
                to: None,
            });
        }
        plan
    }

    /// Yanked versions kept, plugins outside the index, host requirements
    /// not checked.
    fn notes(&self, notes: &mut Vec<Note>) {
        let host_known = self.provider.request.host.host.is_some();
        for (i, &(p, v)) in self.chosen.iter().enumerate() {
            let (indexed, id) = self.provider.with(p, |data| (data.indexed, data.id));
            let entry = self.provider.entry(p, v);
            let mut note = |severity, kind, message: String| {
                notes.push(Note {
                    severity,
                    kind,
                    plugin: Some(id.clone()),
                    message,
                });
            };
            if !indexed {
                note(
                    Severity::Warning,
                    NoteKind::NotInIndex,
                    format!(
                        "{} is installed but not in the index: it is kept as it is and its dependencies are not checked",
                        self.selected(i)
                    ),
                );
            }
            if entry.yanked {
                note(
                    Severity::Warning,
                    NoteKind::YankedKept,
                    format!(
                        "{} is yanked; it is kept only because it is installed",
                        self.selected(i)
                    ),
                );
            }
            if let Some(req) = &entry.engine.host
                && !host_known
            {
                note(
                    Severity::Info,
                    NoteKind::HostNotChecked,
                    format!(
                        "{} needs host version {req}, which was not checked: no host version was given",
                        self.selected(i)
                    ),
                );
            }
        }
    }

    fn missing_peers(
        &self,
        missing: &[(usize, &PluginId, &tenon_manifest::VersionReq)],
        edges: &[Edge],
    ) -> ResolveError {
        // Who brought each chosen plugin in, breadth-first from the request.
        let mut parent: Vec<Option<usize>> = vec![None; self.chosen.len()];
        let mut seen = vec![false; self.chosen.len()];
        let mut queue: VecDeque<usize> = VecDeque::new();
        for (i, &(p, _)) in self.chosen.iter().enumerate() {
            if self.provider.roots.contains_key(&p) {
                seen[i] = true;
                queue.push_back(i);
            }
        }
        let mut brought: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for edge in edges.iter().filter(|e| e.brings_in) {
            brought
                .entry(edge.dependent)
                .or_default()
                .push(edge.dependency);
        }
        while let Some(i) = queue.pop_front() {
            for &j in brought.get(&i).into_iter().flatten() {
                if !seen[j] {
                    seen[j] = true;
                    parent[j] = Some(i);
                    queue.push_back(j);
                }
            }
        }

        let mut lines = Vec::new();
        for &(i, peer, req) in missing {
            lines.push(format!(
                "{} needs {peer} {req} as a peer, but nothing in the plan provides {peer}; peers are never installed on a plugin's behalf: add {peer} to your request or install it.",
                self.selected(i)
            ));
            let mut chain = vec![i];
            while let Some(up) = parent[*chain.last().unwrap_or(&i)] {
                chain.push(up);
            }
            let mut why = format!("{} is in the plan because ", self.selected(i));
            for pair in chain.windows(2) {
                let needed = self.provider.id(self.chosen[pair[0]].0);
                why.push_str(&format!("{} needs {needed}, ", self.selected(pair[1])));
            }
            if chain.len() > 1 {
                why.push_str("and ");
            }
            why.push_str(&self.root_reason(*chain.last().unwrap_or(&i)));
            why.push('.');
            if !lines.contains(&why) {
                lines.push(why);
            }
        }
        ResolveError::Conflict {
            explanation: lines.join("\n"),
        }
    }

    fn root_reason(&self, i: usize) -> String {
        let (p, _) = self.chosen[i];
        let id = self.provider.id(p);
        match self.provider.roots.get(&p) {
            Some(reason) if !reason.requirements.is_empty() => {
                let asked: Vec<String> = reason
                    .requirements
                    .iter()
                    .filter(|r| r.version != tenon_manifest::VersionReq::STAR)
                    .map(ToString::to_string)
                    .collect();
                if asked.is_empty() {
                    format!("{id} is required by your request")
                } else {
                    format!("{id} is required by your request {}", asked.join(" and "))
                }
            }
            _ => format!("{id} is installed and stays in the plan"),
        }
    }
}
