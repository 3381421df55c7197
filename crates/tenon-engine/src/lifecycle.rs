//! The plugin lifecycle: one state machine, enforced here and nowhere else.
//!
//! ```text
//! installed ──(required config missing)──▶ pending_config ──(config complete)──┐
//!     │                                                                         ▼
//!     └──────────────────────────────────────────────────────────────────▶ resolved
//! resolved ▶ loading ▶ loaded ▶ activating ▶ active ◀──▶ (config change: reconfigure)
//! active ▶ deactivating ▶ disabled ▶ (activate again) … ; disabled ▶ uninstalling ▶ removed
//! any ▶ error (with typed cause) ; error ▶ disabled (operator) ; crash loop ▶ disabled (automatic)
//! ```
//!
//! Operators act with [`Action`]s; [`next`] says where an action leads from a
//! state, or why it cannot be taken there.

use std::fmt;

pub use tenon_registry::PluginState;

/// Something that moves a plugin from one state to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Required config is missing (after install, or when config is checked).
    ConfigMissing,
    /// Required config is complete.
    ConfigComplete,
    /// Start loading the plugin's code (operator: enable).
    Load,
    /// The code loaded.
    Loaded,
    /// Start the plugin.
    Activate,
    /// The plugin started.
    Activated,
    /// Deliver a config change to a running plugin.
    Reconfigure,
    /// Stop the plugin (operator: disable).
    Deactivate,
    /// The plugin stopped.
    Deactivated,
    /// The operator acknowledges an error and parks the plugin.
    Acknowledge,
    /// The crash guard stops a failing plugin.
    AutoDisable,
    /// Start removing the plugin (operator: uninstall); from
    /// `uninstalling`, resume an interrupted removal.
    Uninstall,
    /// Switch to another installed version (operator: upgrade, rollback);
    /// the state stays.
    Upgrade,
    /// The plugin is gone.
    Remove,
    /// Something failed.
    Fail,
}

impl Action {
    /// What an operator would call this action.
    pub const fn verb(self) -> &'static str {
        match self {
            Self::ConfigMissing | Self::ConfigComplete | Self::Reconfigure => "configure",
            Self::Load | Self::Loaded | Self::Activate | Self::Activated => "enable",
            Self::Deactivate | Self::Deactivated | Self::Acknowledge => "disable",
            Self::AutoDisable => "auto-disable",
            Self::Uninstall | Self::Remove => "uninstall",
            Self::Upgrade => "upgrade",
            Self::Fail => "fail",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.verb())
    }
}

/// An action that the state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTransition {
    /// The state the plugin is in.
    pub state: PluginState,
    /// What was attempted.
    pub action: Action,
}

impl InvalidTransition {
    /// What the operator can do instead, if anything useful can be said.
    pub fn hint(&self) -> Option<&'static str> {
        use PluginState as S;
        Some(match (self.state, self.action) {
            (S::PendingConfig, Action::Load) => "set its required config first",
            (S::Active, Action::Uninstall) => "disable it first",
            (S::Active, Action::Load) => "it is already active",
            (S::Disabled | S::Resolved | S::PendingConfig | S::Installed, Action::Deactivate) => {
                "it is not active"
            }
            (S::Error, Action::Load) => "disable it to acknowledge the error, then enable it",
            (S::Removed, _) => "it was uninstalled",
            (S::Loading | S::Loaded | S::Activating | S::Deactivating | S::Uninstalling, _) => {
                "another operation is in progress; try again when it ends"
            }
            _ => return None,
        })
    }
}

impl fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {} a plugin that is {}", self.action, self.state)?;
        if let Some(hint) = self.hint() {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// Where `action` leads from `state`.
pub fn next(state: PluginState, action: Action) -> Result<PluginState, InvalidTransition> {
    use Action as A;
    use PluginState as S;
    let to = match (state, action) {
        // Failing is possible from anywhere but the end.
        (S::Removed, A::Fail) => None,
        (_, A::Fail) => Some(S::Error),

        (S::Installed | S::PendingConfig | S::Resolved, A::ConfigMissing) => Some(S::PendingConfig),
        (S::Installed | S::PendingConfig | S::Resolved, A::ConfigComplete) => Some(S::Resolved),
        (S::Disabled, A::ConfigMissing | A::ConfigComplete) => Some(S::Disabled),
        (S::Active, A::Reconfigure) => Some(S::Active),

        (S::Resolved | S::Disabled, A::Load) => Some(S::Loading),
        (S::Loading, A::Loaded) => Some(S::Loaded),
        (S::Loaded, A::Activate) => Some(S::Activating),
        (S::Activating, A::Activated) => Some(S::Active),

        // Operators can stop a start that never finished, and finish a stop.
        (S::Active | S::Loading | S::Loaded | S::Activating | S::Deactivating, A::Deactivate) => {
            Some(S::Deactivating)
        }
        (S::Deactivating, A::Deactivated) => Some(S::Disabled),
        (S::Error, A::Acknowledge) => Some(S::Disabled),
        (
            S::Active | S::Loading | S::Loaded | S::Activating | S::Deactivating | S::Error,
            A::AutoDisable,
        ) => Some(S::Disabled),

        (
            S::Installed
            | S::PendingConfig
            | S::Resolved
            | S::Disabled
            | S::Error
            | S::Uninstalling,
            A::Uninstall,
        ) => Some(S::Uninstalling),
        (S::Installed | S::PendingConfig | S::Resolved | S::Active | S::Disabled, A::Upgrade) => {
            Some(state)
        }
        (S::Uninstalling, A::Remove) => Some(S::Removed),
        _ => None,
    };
    to.ok_or(InvalidTransition { state, action })
}

/// Whether the plugin's code runs (or is being brought up) in this state.
pub fn is_running(state: PluginState) -> bool {
    matches!(
        state,
        PluginState::Loading | PluginState::Loaded | PluginState::Activating | PluginState::Active
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use PluginState as S;

    /// Every (state, action) pair with its expected result, as a table.
    #[test]
    fn the_whole_table() {
        let allowed: &[(S, Action, S)] = &[
            (S::Installed, Action::ConfigMissing, S::PendingConfig),
            (S::Installed, Action::ConfigComplete, S::Resolved),
            (S::PendingConfig, Action::ConfigComplete, S::Resolved),
            (S::PendingConfig, Action::ConfigMissing, S::PendingConfig),
            (S::Resolved, Action::ConfigMissing, S::PendingConfig),
            (S::Resolved, Action::ConfigComplete, S::Resolved),
            (S::Disabled, Action::ConfigMissing, S::Disabled),
            (S::Disabled, Action::ConfigComplete, S::Disabled),
            (S::Active, Action::Reconfigure, S::Active),
            (S::Resolved, Action::Load, S::Loading),
            (S::Disabled, Action::Load, S::Loading),
            (S::Loading, Action::Loaded, S::Loaded),
            (S::Loaded, Action::Activate, S::Activating),
            (S::Activating, Action::Activated, S::Active),
            (S::Active, Action::Deactivate, S::Deactivating),
            (S::Loading, Action::Deactivate, S::Deactivating),
            (S::Loaded, Action::Deactivate, S::Deactivating),
            (S::Activating, Action::Deactivate, S::Deactivating),
            (S::Deactivating, Action::Deactivate, S::Deactivating),
            (S::Deactivating, Action::Deactivated, S::Disabled),
            (S::Error, Action::Acknowledge, S::Disabled),
            (S::Active, Action::AutoDisable, S::Disabled),
            (S::Loading, Action::AutoDisable, S::Disabled),
            (S::Loaded, Action::AutoDisable, S::Disabled),
            (S::Activating, Action::AutoDisable, S::Disabled),
            (S::Deactivating, Action::AutoDisable, S::Disabled),
            (S::Error, Action::AutoDisable, S::Disabled),
            (S::Installed, Action::Uninstall, S::Uninstalling),
            (S::PendingConfig, Action::Uninstall, S::Uninstalling),
            (S::Resolved, Action::Uninstall, S::Uninstalling),
            (S::Disabled, Action::Uninstall, S::Uninstalling),
            (S::Error, Action::Uninstall, S::Uninstalling),
            (S::Uninstalling, Action::Uninstall, S::Uninstalling),
            (S::Installed, Action::Upgrade, S::Installed),
            (S::PendingConfig, Action::Upgrade, S::PendingConfig),
            (S::Resolved, Action::Upgrade, S::Resolved),
            (S::Active, Action::Upgrade, S::Active),
            (S::Disabled, Action::Upgrade, S::Disabled),
            (S::Uninstalling, Action::Remove, S::Removed),
        ];
        let actions = [
            Action::ConfigMissing,
            Action::ConfigComplete,
            Action::Load,
            Action::Loaded,
            Action::Activate,
            Action::Activated,
            Action::Reconfigure,
            Action::Deactivate,
            Action::Deactivated,
            Action::Acknowledge,
            Action::AutoDisable,
            Action::Uninstall,
            Action::Upgrade,
            Action::Remove,
            Action::Fail,
        ];
        for state in S::ALL {
            for action in actions {
                let expected = if action == Action::Fail {
                    (state != S::Removed).then_some(S::Error)
                } else {
                    allowed
                        .iter()
                        .find(|(s, a, _)| *s == state && *a == action)
                        .map(|(_, _, to)| *to)
                };
                assert_eq!(next(state, action).ok(), expected, "{state} + {action:?}");
            }
        }
    }

    #[test]
    fn refusals_name_the_state_and_say_what_to_do() {
        let check = |state, action, message: &str| {
            assert_eq!(next(state, action).unwrap_err().to_string(), message);
        };
        check(
            S::PendingConfig,
            Action::Load,
            "cannot enable a plugin that is pending_config (set its required config first)",
        );
        check(
            S::Active,
            Action::Uninstall,
            "cannot uninstall a plugin that is active (disable it first)",
        );
        check(
            S::Disabled,
            Action::Deactivate,
            "cannot disable a plugin that is disabled (it is not active)",
        );
        check(
            S::Removed,
            Action::Fail,
            "cannot fail a plugin that is removed (it was uninstalled)",
        );
    }
}
