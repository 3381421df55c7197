//! The events and changes the registry records for its own writes, shared by
//! every backend so that they say the same thing.

use serde_json::json;
use tenon_manifest::{PluginId, Version};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::change::{Change, ChangeKind};
use crate::config::ConfigChange;
use crate::event::{EventKind, EventStatus, NewEvent};
use crate::grant::Grant;
use crate::plugin::{PluginRecord, PluginUpdate};
use crate::tenant::TenantId;

fn event(
    tenant: &TenantId,
    plugin: &PluginId,
    version: Option<&Version>,
    kind: EventKind,
    detail: serde_json::Value,
    at: OffsetDateTime,
) -> NewEvent {
    NewEvent {
        tenant: tenant.clone(),
        plugin: Some(plugin.clone()),
        version: version.cloned(),
        kind,
        status: EventStatus::Ok,
        detail,
        at: Some(at),
    }
}

/// `installed`, for a plugin just inserted.
pub(crate) fn installed(plugin: &PluginRecord) -> NewEvent {
    event(
        &plugin.tenant,
        &plugin.id,
        Some(&plugin.version),
        EventKind::Installed,
        json!({
            "state": plugin.state,
            "enabled": plugin.enabled,
            "source": plugin.source,
            "artifact": plugin.artifact,
        }),
        plugin.created_at,
    )
}

/// The events an update of `before` into `after` records: one per changed
/// state, enabled flag and current version.
pub(crate) fn updated(
    before: &PluginRecord,
    after: &PluginRecord,
    update: &PluginUpdate,
) -> Vec<NewEvent> {
    let changes = [
        (
            before.state != after.state,
            EventKind::StateChanged,
            json!({ "from": before.state, "to": after.state, "error": after.last_error }),
        ),
        (
            before.enabled != after.enabled,
            EventKind::EnabledChanged,
            json!({ "enabled": after.enabled }),
        ),
        (
            before.version != after.version,
            EventKind::VersionChanged,
            json!({ "from": before.version.to_string(), "to": after.version.to_string() }),
        ),
    ];
    changes
        .into_iter()
        .filter(|(changed, _, _)| *changed)
        .map(|(_, kind, mut detail)| {
            detail["reason"] = json!(update.reason);
            detail["row_version"] = json!(after.row_version);
            event(
                &after.tenant,
                &after.id,
                Some(&after.version),
                kind,
                detail,
                after.updated_at,
            )
        })
        .collect()
}

/// `version_added` or `version_removed`.
pub(crate) fn version(
    tenant: &TenantId,
    plugin: &PluginId,
    version: &Version,
    kind: EventKind,
    at: OffsetDateTime,
) -> NewEvent {
    event(
        tenant,
        plugin,
        Some(version),
        kind,
        json!({ "version": version.to_string() }),
        at,
    )
}

/// `removed`, for a deleted plugin.
pub(crate) fn removed(
    plugin: &PluginRecord,
    purged: serde_json::Value,
    at: OffsetDateTime,
) -> NewEvent {
    event(
        &plugin.tenant,
        &plugin.id,
        Some(&plugin.version),
        EventKind::Removed,
        json!({ "state": plugin.state, "row_version": plugin.row_version, "purged": purged }),
        at,
    )
}

/// `config_changed`: the keys, never the values.
pub(crate) fn config_changed(
    tenant: &TenantId,
    plugin: &PluginId,
    change: &ConfigChange,
    revision: u64,
    at: OffsetDateTime,
) -> NewEvent {
    event(
        tenant,
        plugin,
        None,
        EventKind::ConfigChanged,
        change.event_detail(revision),
        at,
    )
}

/// `granted`.
pub(crate) fn granted(grant: &Grant) -> NewEvent {
    event(
        &grant.tenant,
        &grant.plugin,
        Some(&grant.version),
        EventKind::Granted,
        json!({ "granted_by": grant.granted_by, "permissions": grant.permissions }),
        grant.granted_at,
    )
}

/// `grant_revoked`.
pub(crate) fn grant_revoked(
    tenant: &TenantId,
    plugin: &PluginId,
    version: &Version,
    at: OffsetDateTime,
) -> NewEvent {
    event(
        tenant,
        plugin,
        Some(version),
        EventKind::GrantRevoked,
        json!({ "version": version.to_string() }),
        at,
    )
}

/// A change announcement.
pub(crate) fn change(
    origin: Uuid,
    tenant: &TenantId,
    plugin: Option<&PluginId>,
    kind: ChangeKind,
    row_version: Option<u64>,
) -> Change {
    Change {
        tenant: tenant.clone(),
        plugin: plugin.cloned(),
        kind,
        row_version,
        origin,
    }
}

/// One `EventsAppended` change per tenant of `events`.
pub(crate) fn events_appended(origin: Uuid, events: &[NewEvent]) -> Vec<Change> {
    let mut tenants: Vec<&TenantId> = events.iter().map(|e| &e.tenant).collect();
    tenants.sort();
    tenants.dedup();
    tenants
        .into_iter()
        .map(|tenant| change(origin, tenant, None, ChangeKind::EventsAppended, None))
        .collect()
}
