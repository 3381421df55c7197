//! The event log: append-only records of what happened to plugins (lifecycle
//! transitions, hook receipts, denials, errors), read a page at a time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tenon_manifest::{PluginId, Version};
use time::OffsetDateTime;

use crate::error::RegistryError;
use crate::tenant::TenantId;

/// What an event records.
///
/// The registry itself appends `installed`, `state_changed`,
/// `enabled_changed`, `version_added`, `version_changed`, `version_removed`,
/// `config_changed`, `granted`, `grant_revoked` and `removed`, each in the
/// transaction of the change it records. The engine appends the rest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A plugin was inserted.
    Installed,
    /// A plugin's lifecycle state changed (detail: `from`, `to`, `reason`).
    StateChanged,
    /// A plugin was enabled or disabled (detail: `enabled`, `reason`).
    EnabledChanged,
    /// A version was added (detail: `version`).
    VersionAdded,
    /// The current version changed: upgrade or rollback (detail: `from`, `to`).
    VersionChanged,
    /// A non-current version was removed (detail: `version`).
    VersionRemoved,
    /// Config keys were set or unset (detail: the keys, never the values).
    ConfigChanged,
    /// The operator granted permissions to a version.
    Granted,
    /// A grant was withdrawn.
    GrantRevoked,
    /// A plugin row was deleted.
    Removed,
    /// A hook handler ran (a dispatch receipt).
    Hook,
    /// The sandbox refused an action at the host boundary.
    PermissionDenied,
    /// The crash guard disabled a plugin.
    AutoDisable,
    /// A plugin failed outside a hook (load, start, stop…).
    Error,
    /// A host-specific kind: 1 to 64 of `a-z`, `0-9`, `_`, `.`, `-`. Build it
    /// with [`EventKind::parse`], which maps built-in names to their variants.
    Custom(String),
}

impl EventKind {
    /// The built-in kinds.
    pub const BUILTIN: [Self; 14] = [
        Self::Installed,
        Self::StateChanged,
        Self::EnabledChanged,
        Self::VersionAdded,
        Self::VersionChanged,
        Self::VersionRemoved,
        Self::ConfigChanged,
        Self::Granted,
        Self::GrantRevoked,
        Self::Removed,
        Self::Hook,
        Self::PermissionDenied,
        Self::AutoDisable,
        Self::Error,
    ];

    /// The longest a kind may be.
    pub const MAX_LEN: usize = 64;

    /// The name stored in the registry.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Installed => "installed",
            Self::StateChanged => "state_changed",
            Self::EnabledChanged => "enabled_changed",
            Self::VersionAdded => "version_added",
            Self::VersionChanged => "version_changed",
            Self::VersionRemoved => "version_removed",
            Self::ConfigChanged => "config_changed",
            Self::Granted => "granted",
            Self::GrantRevoked => "grant_revoked",
            Self::Removed => "removed",
            Self::Hook => "hook",
            Self::PermissionDenied => "permission_denied",
            Self::AutoDisable => "auto_disable",
            Self::Error => "error",
            Self::Custom(name) => name,
        }
    }

    /// A built-in kind by name, or a checked custom one.
    pub fn parse(name: &str) -> Result<Self, RegistryError> {
        if let Some(kind) = Self::BUILTIN.iter().find(|k| k.as_str() == name) {
            return Ok(kind.clone());
        }
        if name.is_empty() || name.len() > Self::MAX_LEN {
            return Err(RegistryError::invalid(
                "event kind",
                name,
                format!("a kind is 1 to {} characters long", Self::MAX_LEN),
            ));
        }
        if let Some(found) = name.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'))
        }) {
            return Err(RegistryError::invalid(
                "event kind",
                name,
                format!("a kind may hold only a-z, 0-9, '_', '.' and '-', not {found:?}"),
            ));
        }
        Ok(Self::Custom(name.to_owned()))
    }

    pub(crate) fn check(&self) -> Result<(), RegistryError> {
        match self {
            Self::Custom(name) => Self::parse(name).map(drop),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// How what an event records ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// It worked.
    Ok,
    /// It failed.
    Error,
    /// A handler blocked, or an action was denied.
    Blocked,
    /// It ran out of time.
    Timeout,
    /// It did not run (budget spent, or not applicable).
    Skipped,
    /// Its result was refused (a patch outside the allowed fields…).
    Rejected,
}

impl EventStatus {
    /// Every status.
    pub const ALL: [Self; 6] = [
        Self::Ok,
        Self::Error,
        Self::Blocked,
        Self::Timeout,
        Self::Skipped,
        Self::Rejected,
    ];

    /// The name stored in the registry.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Blocked => "blocked",
            Self::Timeout => "timeout",
            Self::Skipped => "skipped",
            Self::Rejected => "rejected",
        }
    }
}

impl fmt::Display for EventStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventStatus {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                RegistryError::invalid(
                    "event status",
                    s,
                    "expected ok, error, blocked, timeout, skipped or rejected",
                )
            })
    }
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Its tenant.
    pub tenant: TenantId,
    /// The plugin it concerns, if any.
    pub plugin: Option<PluginId>,
    /// The plugin version it concerns, if any.
    pub version: Option<Version>,
    /// What it records.
    pub kind: EventKind,
    /// How it ended.
    pub status: EventStatus,
    /// Kind-specific detail.
    pub detail: serde_json::Value,
    /// When it happened (now, when absent).
    pub at: Option<OffsetDateTime>,
}

impl NewEvent {
    /// An event of `kind` with `status`, about no plugin, with empty detail.
    pub fn new(tenant: TenantId, kind: EventKind, status: EventStatus) -> Self {
        Self {
            tenant,
            plugin: None,
            version: None,
            kind,
            status,
            detail: serde_json::Value::Object(serde_json::Map::new()),
            at: None,
        }
    }

    /// About `plugin`.
    pub fn with_plugin(mut self, plugin: PluginId) -> Self {
        self.plugin = Some(plugin);
        self
    }

    /// About `version` of the plugin.
    pub fn with_version(mut self, version: Version) -> Self {
        self.version = Some(version);
        self
    }

    /// With `detail`.
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// Happened at `at`.
    pub fn with_at(mut self, at: OffsetDateTime) -> Self {
        self.at = Some(at);
        self
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its position in the log.
    pub cursor: EventCursor,
    /// Its tenant.
    pub tenant: TenantId,
    /// The plugin it concerns.
    pub plugin: Option<PluginId>,
    /// The plugin version it concerns.
    pub version: Option<Version>,
    /// What it records.
    pub kind: EventKind,
    /// How it ended.
    pub status: EventStatus,
    /// Kind-specific detail.
    pub detail: serde_json::Value,
    /// When it happened.
    pub at: OffsetDateTime,
}

/// A stable position in a tenant's event log. Positions grow with every
/// append and are never reused; show it to users as text (`Display`) and
/// read it back with `FromStr`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventCursor(pub(crate) i64);

impl EventCursor {
    const PREFIX: &'static str = "ev_";

    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn position(self) -> i64 {
        self.0
    }
}

impl fmt::Display for EventCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:x}", Self::PREFIX, self.0)
    }
}

impl fmt::Debug for EventCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for EventCursor {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix(Self::PREFIX)
            .filter(|hex| !hex.is_empty() && hex.len() <= 16)
            .and_then(|hex| i64::from_str_radix(hex, 16).ok())
            .filter(|n| *n >= 0)
            .map(Self)
            .ok_or_else(|| {
                RegistryError::invalid(
                    "event cursor",
                    s,
                    "use a cursor returned by the registry (ev_…)",
                )
            })
    }
}

impl Serialize for EventCursor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventCursor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Which way a page of events runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EventOrder {
    /// Most recent first (a timeline).
    #[default]
    NewestFirst,
    /// Oldest first (replay, `--follow`).
    OldestFirst,
}

/// Which events [`list_events`](crate::RegistryStore::list_events) returns.
#[derive(Debug, Clone, PartialEq)]
pub struct EventQuery {
    /// Only events about this plugin.
    pub plugin: Option<PluginId>,
    /// Only these kinds (all when empty).
    pub kinds: Vec<EventKind>,
    /// Only events at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only events before this time.
    pub until: Option<OffsetDateTime>,
    /// Newest or oldest first.
    pub order: EventOrder,
    /// Continue past this cursor, in `order`.
    pub after: Option<EventCursor>,
    /// At most this many (at least 1).
    pub limit: usize,
}

impl EventQuery {
    /// The default page size.
    pub const DEFAULT_LIMIT: usize = 100;

    /// Only about `plugin`.
    pub fn with_plugin(mut self, plugin: PluginId) -> Self {
        self.plugin = Some(plugin);
        self
    }

    /// Only these kinds.
    pub fn with_kinds(mut self, kinds: &[EventKind]) -> Self {
        self.kinds = kinds.to_vec();
        self
    }

    /// Only in `[since, until)`.
    pub fn with_range(
        mut self,
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
    ) -> Self {
        self.since = since;
        self.until = until;
        self
    }

    /// In `order`.
    pub fn with_order(mut self, order: EventOrder) -> Self {
        self.order = order;
        self
    }

    /// After `cursor`.
    pub fn with_after(mut self, cursor: Option<EventCursor>) -> Self {
        self.after = cursor;
        self
    }

    /// At most `limit`.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub(crate) fn checked_limit(&self) -> Result<usize, RegistryError> {
        for kind in &self.kinds {
            kind.check()?;
        }
        crate::page::check_limit(self.limit, "event page size", "event")
    }

    /// Whether the memory backend keeps this record.
    #[cfg_attr(not(feature = "memory"), allow(dead_code))]
    pub(crate) fn matches(&self, event: &Event) -> bool {
        self.plugin
            .as_ref()
            .is_none_or(|p| event.plugin.as_ref() == Some(p))
            && (self.kinds.is_empty() || self.kinds.contains(&event.kind))
            && self.since.is_none_or(|since| event.at >= since)
            && self.until.is_none_or(|until| event.at < until)
            && self.after.is_none_or(|after| match self.order {
                EventOrder::NewestFirst => event.cursor < after,
                EventOrder::OldestFirst => event.cursor > after,
            })
    }
}

impl Default for EventQuery {
    fn default() -> Self {
        Self {
            plugin: None,
            kinds: Vec::new(),
            since: None,
            until: None,
            order: EventOrder::NewestFirst,
            after: None,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

/// A page of events.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// The events, in the query's order.
    pub events: Vec<Event>,
    /// Pass as [`EventQuery::after`] for the next page, if there is one.
    pub next: Option<EventCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        for kind in EventKind::BUILTIN {
            assert_eq!(EventKind::parse(kind.as_str()).unwrap(), kind);
        }
        assert_eq!(
            EventKind::parse("billing.invoice_sent").unwrap(),
            EventKind::Custom("billing.invoice_sent".into())
        );
        for bad in ["", "Hook", "a b", &"x".repeat(65)] {
            assert!(EventKind::parse(bad).is_err(), "{bad:?}");
        }
        for status in EventStatus::ALL {
            assert_eq!(status.as_str().parse::<EventStatus>().unwrap(), status);
        }
    }

    #[test]
    fn cursors() {
        for n in [0, 1, 255, i64::MAX] {
            let cursor = EventCursor(n);
            assert_eq!(cursor.to_string().parse::<EventCursor>().unwrap(), cursor);
        }
        assert_eq!(EventCursor(255).to_string(), "ev_ff");
        for bad in ["", "ev_", "ff", "ev_-1", "ev_zz", "ev_fffffffffffffffff"] {
            assert!(bad.parse::<EventCursor>().is_err(), "{bad:?}");
        }
    }
}
