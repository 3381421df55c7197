//! Why a resolution fails.

use tenon_manifest::PluginId;

use crate::outcome::Note;

/// Why no plan could be made. Every variant's `Display` is the full
/// explanation for an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No set of versions satisfies every requirement: an unknown plugin, a
    /// requirement nothing matches, requirements that collide, an engine the
    /// host does not offer, a peer nothing provides. The explanation names
    /// every requirement involved, as a chain of reasons, one sentence a line.
    #[error("{explanation}")]
    Conflict {
        /// The chain of reasons.
        explanation: String,
    },
    /// The chosen plugins depend on each other in a circle, so they have no
    /// load order.
    #[error(
        "dependency cycle: {}; plugins that need each other cannot be loaded one after the other",
        cycle_text(.cycle)
    )]
    Cycle {
        /// The cycle, starting and ending with the same plugin (`a → b → a`
        /// is `[a, b, a]`).
        cycle: Vec<PluginId>,
    },
    /// The `strict` strategy found a plan, but with warnings.
    #[error(
        "the strict strategy fails on warnings:\n{}",
        .warnings.iter().map(|n| format!("- {}", n.message)).collect::<Vec<_>>().join("\n")
    )]
    Strict {
        /// The warnings of the plan that was found.
        warnings: Vec<Note>,
    },
}

impl ResolveError {
    /// The full explanation (the same as `to_string()`).
    pub fn explanation(&self) -> String {
        self.to_string()
    }
}

fn cycle_text(cycle: &[PluginId]) -> String {
    cycle
        .iter()
        .map(PluginId::as_str)
        .collect::<Vec<_>>()
        .join(" → ")
}
