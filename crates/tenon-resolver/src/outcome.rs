//! What a successful resolution returns.

use std::fmt;

use serde::Serialize;
use tenon_manifest::{PluginId, Version};

/// A successful resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolution {
    /// Every plugin that should be installed, dependencies before their
    /// dependents, ties broken by id.
    pub order: Vec<Selected>,
    /// What to do against what is installed: one entry per plugin of
    /// `order`, in the same order, then the removals by id.
    pub plan: Vec<PlanEntry>,
    /// Things the caller should know: dropped optional dependencies, yanked
    /// versions kept, requirements that were not checked.
    pub notes: Vec<Note>,
}

impl Resolution {
    /// The version chosen for `id`, if it is in the plan.
    pub fn version_of(&self, id: &str) -> Option<&Version> {
        self.order
            .iter()
            .find(|s| s.id.as_str() == id)
            .map(|s| &s.version)
    }

    /// The notes that are warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Note> {
        self.notes
            .iter()
            .filter(|n| n.severity == Severity::Warning)
    }
}

/// A plugin at the version chosen for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Selected {
    /// The plugin.
    pub id: PluginId,
    /// Its version.
    pub version: Version,
}

impl fmt::Display for Selected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.id, self.version)
    }
}

/// What happens to one plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanEntry {
    /// The plugin.
    pub id: PluginId,
    /// What happens to it.
    pub action: Action,
    /// The installed version, if any.
    pub from: Option<Version>,
    /// The version it will be at, unless it is removed.
    pub to: Option<Version>,
}

/// What happens to one plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Not installed; will be.
    Install,
    /// Installed at an older version (by semver precedence, then build
    /// metadata).
    Upgrade,
    /// Installed at a newer version.
    Downgrade,
    /// Installed at exactly this version.
    Keep,
    /// Installed but no longer needed (only with
    /// [`Options::prune`](crate::Options::prune)).
    Remove,
}

impl Action {
    /// The name used in JSON and tables.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Install => "install",
            Self::Upgrade => "upgrade",
            Self::Downgrade => "downgrade",
            Self::Keep => "keep",
            Self::Remove => "remove",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much a note matters. The `strict` strategy fails on warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Something is not as asked: the plan works but is degraded.
    Warning,
}

/// What a note is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// An optional dependency could not be resolved and was left out
    /// (warning).
    OptionalDropped,
    /// A yanked version stays because it is installed (warning).
    YankedKept,
    /// An installed plugin is not in the index: it is kept as it is and its
    /// dependencies are not checked (warning).
    NotInIndex,
    /// No host version was given, so host requirements were not checked
    /// (info).
    HostNotChecked,
}

/// Something the caller should know about a resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// How much it matters.
    pub severity: Severity,
    /// What it is about.
    pub kind: NoteKind,
    /// The plugin concerned, if one is.
    pub plugin: Option<PluginId>,
    /// A sentence for the operator.
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Info => f.write_str(&self.message),
            Severity::Warning => write!(f, "warning: {}", self.message),
        }
    }
}
