//! Permission grants: which declared permissions an operator acknowledged
//! for which version of a plugin.

use tenon_manifest::{Permissions, PluginId, Version};
use time::OffsetDateTime;

use crate::tenant::TenantId;

/// A grant to record. It replaces any grant for the same version.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGrant {
    /// Its tenant.
    pub tenant: TenantId,
    /// The plugin.
    pub plugin: PluginId,
    /// The version whose declared permissions were reviewed.
    pub version: Version,
    /// What the operator granted: the declared permissions, or a subset.
    pub permissions: Permissions,
    /// Who granted them (an operator name, `cli:alice`, `auto:builtin`…).
    pub granted_by: String,
}

/// A recorded grant.
///
/// The engine compares a new version's declared permissions with the grant
/// of the version it replaces: a version that asks for more needs a grant
/// of its own before it is activated.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// Its tenant.
    pub tenant: TenantId,
    /// The plugin.
    pub plugin: PluginId,
    /// The version it was given for.
    pub version: Version,
    /// What was granted.
    pub permissions: Permissions,
    /// Who granted it.
    pub granted_by: String,
    /// When.
    pub granted_at: OffsetDateTime,
}
