//! The in-process backend: every table in maps behind one lock, with the
//! same semantics as the databases (optimistic versions, quotas, encrypted
//! secrets, checked artifacts), and nothing durable.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use parking_lot::Mutex;
use tenon_manifest::{PluginId, Version};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::artifact::{ArtifactInfo, Sha256Digest};
use crate::audit;
use crate::backend::{self, bound, kv_key, purge_detail, sort_grants, verified};
use crate::change::{Change, ChangeHub, ChangeKind, ChangeSubscription};
use crate::clock;
use crate::config::{self, ConfigChange, PluginConfig, StoredValue};
use crate::error::{Record, RegistryError, Result};
use crate::event::{Event, EventCursor, EventKind, EventOrder, EventPage, EventQuery, NewEvent};
use crate::grant::{Grant, NewGrant};
use crate::kv::{self, KvList, KvQuota, KvUsage};
use crate::log::{LogPage, LogQuery, LogRecord, NewLog};
use crate::open::RegistryOptions;
use crate::page;
use crate::plugin::{
    self, DeleteOptions, DeleteReport, LastError, NewPlugin, NewVersion, PluginPage, PluginQuery,
    PluginRecord, PluginSource, PluginState, PluginUpdate, VersionRecord,
};
use crate::publisher::{NewPublisherKey, PublisherKey};
use crate::schema::LATEST_SCHEMA_VERSION;
use crate::secret::SecretKey;
use crate::store::{BackendKind, RegistryStore, StoreInfo};
use crate::tenant::TenantId;
use crate::token::{ApiToken, NewApiToken};

/// A registry kept in this process only: for tests, and for hosts that
/// rebuild their plugin set at every start.
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    hub: ChangeHub,
    info: StoreInfo,
    secret_key: Option<SecretKey>,
}

#[derive(Debug, Default)]
struct State {
    tenants: HashMap<TenantId, Tenant>,
    last_event: i64,
    last_log: i64,
}

#[derive(Debug, Default)]
struct Tenant {
    plugins: BTreeMap<PluginId, PluginRow>,
    versions: BTreeMap<(PluginId, Version), VersionRow>,
    artifacts: HashMap<Sha256Digest, ArtifactRow>,
    events: BTreeMap<i64, Event>,
    config: HashMap<PluginId, ConfigRow>,
    grants: BTreeMap<(PluginId, Version), Grant>,
    kv: HashMap<PluginId, BTreeMap<Vec<u8>, Vec<u8>>>,
    publishers: BTreeMap<String, PublisherKey>,
    leftovers_owners: BTreeMap<PluginId, String>,
    tokens: BTreeMap<String, ApiToken>,
    logs: BTreeMap<i64, LogRecord>,
    log_drops: HashMap<PluginId, u64>,
}

#[derive(Debug, Clone)]
struct PluginRow {
    version: Version,
    state: PluginState,
    source: PluginSource,
    enabled: bool,
    last_error: Option<LastError>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    row_version: u64,
}

impl From<&PluginRecord> for PluginRow {
    fn from(record: &PluginRecord) -> Self {
        Self {
            version: record.version.clone(),
            state: record.state,
            source: record.source.clone(),
            enabled: record.enabled,
            last_error: record.last_error.clone(),
            created_at: record.created_at,
            updated_at: record.updated_at,
            row_version: record.row_version,
        }
    }
}

#[derive(Debug, Clone)]
struct VersionRow {
    manifest: tenon_manifest::Manifest,
    artifact: Option<Sha256Digest>,
    verification: Option<serde_json::Value>,
    installed_at: OffsetDateTime,
}

#[derive(Debug)]
struct ArtifactRow {
    bytes: Vec<u8>,
    created_at: OffsetDateTime,
}

#[derive(Debug, Default)]
struct ConfigRow {
    revision: u64,
    values: BTreeMap<String, StoredValue>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new(options: &RegistryOptions) -> Self {
        Self {
            state: Mutex::new(State::default()),
            hub: ChangeHub::new(options.change_capacity),
            info: StoreInfo {
                backend: BackendKind::Memory,
                location: "memory:".to_owned(),
                schema_version: LATEST_SCHEMA_VERSION,
                instance: Uuid::new_v4(),
            },
            secret_key: options.secret_key.clone(),
        }
    }

    fn change(
        &self,
        tenant: &TenantId,
        plugin: Option<&PluginId>,
        kind: ChangeKind,
        row_version: Option<u64>,
    ) -> Change {
        audit::change(self.info.instance, tenant, plugin, kind, row_version)
    }

    /// Runs `f` on the tenant's tables (created empty if needed) and the
    /// event counter, then announces the changes it returns.
    fn write<T>(
        &self,
        tenant: &TenantId,
        f: impl FnOnce(&mut Tenant, &mut EventLog<'_>) -> Result<(T, Vec<Change>)>,
    ) -> Result<T> {
        let (value, changes) = {
            let mut state = self.state.lock();
            let State {
                tenants,
                last_event,
                ..
            } = &mut *state;
            let data = tenants.entry(tenant.clone()).or_default();
            let mut log = EventLog {
                last_event,
                pending: Vec::new(),
            };
            let (value, changes) = f(data, &mut log)?;
            let pending = std::mem::take(&mut log.pending);
            for event in pending {
                let id = log.next_id();
                data.events.insert(id, stored_event(id, event));
            }
            (value, changes)
        };
        self.hub.publish(changes);
        Ok(value)
    }

    fn read<T>(&self, tenant: &TenantId, f: impl FnOnce(&Tenant) -> Result<T>) -> Result<T> {
        let state = self.state.lock();
        match state.tenants.get(tenant) {
            Some(data) => f(data),
            None => f(&Tenant::default()),
        }
    }

    #[cfg(test)]
    pub(crate) fn corrupt_artifact(&self, tenant: &TenantId, sha256: &Sha256Digest) {
        let mut state = self.state.lock();
        let row = state
            .tenants
            .get_mut(tenant)
            .and_then(|t| t.artifacts.get_mut(sha256))
            .expect("the artifact to corrupt is stored");
        row.bytes[0] ^= 0xff;
    }

    /// Every byte the store holds for secrets and plain config, for tests
    /// that look for clear text at rest.
    #[cfg(test)]
    pub(crate) fn config_bytes_at_rest(&self) -> Vec<u8> {
        let state = self.state.lock();
        let mut bytes = Vec::new();
        for tenant in state.tenants.values() {
            for row in tenant.config.values() {
                for value in row.values.values() {
                    match value {
                        StoredValue::Plain(text) => bytes.extend_from_slice(text.as_bytes()),
                        StoredValue::Secret { sealed, .. } => bytes.extend_from_slice(sealed),
                    }
                }
            }
        }
        bytes
    }
}

/// Events recorded by a write, stored once it succeeds.
struct EventLog<'a> {
    last_event: &'a mut i64,
    pending: Vec<NewEvent>,
}

impl EventLog<'_> {
    fn push(&mut self, event: NewEvent) {
        self.pending.push(event);
    }

    fn next_id(&mut self) -> i64 {
        *self.last_event += 1;
        *self.last_event
    }
}

fn stored_event(id: i64, event: NewEvent) -> Event {
    Event {
        cursor: EventCursor(id),
        tenant: event.tenant,
        plugin: event.plugin,
        version: event.version,
        kind: event.kind,
        status: event.status,
        detail: event.detail,
        at: event.at.map_or_else(clock::now, clock::truncate),
    }
}

impl Tenant {
    fn record(&self, tenant: &TenantId, id: &PluginId, row: &PluginRow) -> Result<PluginRecord> {
        let version = self
            .versions
            .get(&(id.clone(), row.version.clone()))
            .ok_or_else(|| {
                RegistryError::decode(
                    format!("plugin `{id}`"),
                    format!("its current version {} is not installed", row.version),
                )
            })?;
        Ok(PluginRecord {
            tenant: tenant.clone(),
            id: id.clone(),
            version: row.version.clone(),
            state: row.state,
            source: row.source.clone(),
            enabled: row.enabled,
            manifest: version.manifest.clone(),
            artifact: version.artifact,
            verification: version.verification.clone(),
            last_error: row.last_error.clone(),
            created_at: row.created_at,
            updated_at: row.updated_at,
            row_version: row.row_version,
        })
    }

    fn version_record(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        version: &Version,
        row: &VersionRow,
    ) -> VersionRecord {
        VersionRecord {
            tenant: tenant.clone(),
            plugin: id.clone(),
            version: version.clone(),
            manifest: row.manifest.clone(),
            artifact: row.artifact,
            verification: row.verification.clone(),
            installed_at: row.installed_at,
            current: self.plugins.get(id).is_some_and(|p| p.version == *version),
        }
    }

    fn require_artifact(&self, tenant: &TenantId, artifact: Option<&Sha256Digest>) -> Result<()> {
        match artifact {
            Some(sha) if !self.artifacts.contains_key(sha) => Err(RegistryError::not_found(
                Record::Artifact,
                tenant,
                format!("sha256:{sha}"),
            )),
            _ => Ok(()),
        }
    }

    fn kv_usage(&self, plugin: &PluginId) -> KvUsage {
        self.kv
            .get(plugin)
            .map_or_else(KvUsage::default, |entries| KvUsage {
                bytes: entries
                    .iter()
                    .map(|(k, v)| (k.len() + v.len()) as u64)
                    .sum(),
                keys: entries.len() as u64,
            })
    }

    fn unused_artifacts(&self) -> Vec<Sha256Digest> {
        self.artifacts
            .keys()
            .filter(|sha| !self.versions.values().any(|v| v.artifact == Some(**sha)))
            .copied()
            .collect()
    }
}

fn conflict(
    record: Record,
    tenant: &TenantId,
    plugin: &PluginId,
    expected: u64,
    current: u64,
) -> RegistryError {
    RegistryError::Conflict {
        record,
        tenant: tenant.clone(),
        plugin: plugin.clone(),
        expected_row_version: expected,
        current_row_version: current,
    }
}

#[async_trait]
impl RegistryStore for MemoryStore {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    async fn insert_plugin(&self, new: &NewPlugin) -> Result<PluginRecord> {
        let tenant = &new.tenant;
        let id = new.id();
        self.write(tenant, |data, log| {
            if data.plugins.contains_key(id) {
                return Err(RegistryError::AlreadyExists {
                    record: Record::Plugin,
                    tenant: tenant.clone(),
                    key: id.to_string(),
                    hint: "; add a version to it, or delete it first",
                });
            }
            data.require_artifact(tenant, new.artifact.as_ref())?;
            let now = clock::now();
            data.versions.insert(
                (id.clone(), new.version().clone()),
                VersionRow {
                    manifest: new.manifest.clone(),
                    artifact: new.artifact,
                    verification: new.verification.clone(),
                    installed_at: now,
                },
            );
            let row = PluginRow {
                version: new.version().clone(),
                state: new.state,
                source: new.source.clone(),
                enabled: new.enabled,
                last_error: None,
                created_at: now,
                updated_at: now,
                row_version: 1,
            };
            let record = data.record(tenant, id, &row)?;
            data.plugins.insert(id.clone(), row);
            log.push(audit::installed(&record));
            let change = self.change(tenant, Some(id), ChangeKind::PluginInserted, Some(1));
            Ok((record, vec![change]))
        })
    }

    async fn get_plugin(&self, tenant: &TenantId, id: &PluginId) -> Result<Option<PluginRecord>> {
        self.read(tenant, |data| {
            data.plugins
                .get(id)
                .map(|row| data.record(tenant, id, row))
                .transpose()
        })
    }

    async fn list_tenants(&self) -> Result<Vec<TenantId>> {
        let state = self.state.lock();
        let mut tenants: Vec<TenantId> = state
            .tenants
            .iter()
            .filter(|(_, data)| !data.plugins.is_empty() || !data.events.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        tenants.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(tenants)
    }

    async fn list_plugins(&self, tenant: &TenantId, query: &PluginQuery) -> Result<PluginPage> {
        let limit = query.checked_limit()?;
        self.read(tenant, |data| {
            let mut plugins = Vec::new();
            for (id, row) in &data.plugins {
                let record = data.record(tenant, id, row)?;
                if query.matches(&record) {
                    plugins.push(record);
                    if plugins.len() > limit {
                        break;
                    }
                }
            }
            let next = page::cut(&mut plugins, limit, |p| p.id.clone());
            Ok(PluginPage { plugins, next })
        })
    }

    async fn update_plugin(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        update: &PluginUpdate,
    ) -> Result<PluginRecord> {
        self.write(tenant, |data, log| {
            let row = data
                .plugins
                .get(id)
                .ok_or_else(|| RegistryError::not_found(Record::Plugin, tenant, id.to_string()))?;
            if row.row_version != update.expected_row_version {
                return Err(conflict(
                    Record::Plugin,
                    tenant,
                    id,
                    update.expected_row_version,
                    row.row_version,
                ));
            }
            if let Some(version) = &update.current_version
                && !data.versions.contains_key(&(id.clone(), version.clone()))
            {
                return Err(RegistryError::not_found(
                    Record::Version,
                    tenant,
                    format!("{id}@{version}"),
                ));
            }
            let before = data.record(tenant, id, row)?;
            let mut after = before.clone();
            update.apply(&mut after, clock::now());
            let row = PluginRow::from(&after);
            // Reload the manifest and artifact of a new current version.
            let after = data.record(tenant, id, &row)?;
            data.plugins.insert(id.clone(), row);
            for event in audit::updated(&before, &after, update) {
                log.push(event);
            }
            let change = self.change(
                tenant,
                Some(id),
                ChangeKind::PluginUpdated,
                Some(after.row_version),
            );
            Ok((after, vec![change]))
        })
    }

    async fn delete_plugin(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        options: &DeleteOptions,
    ) -> Result<DeleteReport> {
        self.write(tenant, |data, log| {
            let row = data
                .plugins
                .get(id)
                .ok_or_else(|| RegistryError::not_found(Record::Plugin, tenant, id.to_string()))?;
            if let Some(expected) = options.expected_row_version
                && expected != row.row_version
            {
                return Err(conflict(
                    Record::Plugin,
                    tenant,
                    id,
                    expected,
                    row.row_version,
                ));
            }
            let record = data.record(tenant, id, row)?;
            data.plugins.remove(id);
            let purge = options.purge;
            let mut report = DeleteReport::default();
            if purge.config
                && let Some(config) = data.config.remove(id)
            {
                report.config_keys = config.values.len() as u64;
            }
            if purge.kv
                && let Some(entries) = data.kv.remove(id)
            {
                report.kv_entries = entries.len() as u64;
            }
            if purge.grants {
                let before = data.grants.len();
                data.grants.retain(|(plugin, _), _| plugin != id);
                report.grants = (before - data.grants.len()) as u64;
            }
            if purge.versions {
                let removed: Vec<Option<Sha256Digest>> = data
                    .versions
                    .extract_if(.., |(plugin, _), _| plugin == id)
                    .map(|(_, row)| row.artifact)
                    .collect();
                report.versions = removed.len() as u64;
                let unused = data.unused_artifacts();
                for sha in removed.into_iter().flatten() {
                    if unused.contains(&sha) && data.artifacts.remove(&sha).is_some() {
                        report.artifacts += 1;
                    }
                }
            }
            if purge.events {
                let before = data.events.len();
                data.events.retain(|_, e| e.plugin.as_ref() != Some(id));
                report.events = (before - data.events.len()) as u64;
                data.logs.retain(|_, l| &l.plugin != id);
                data.log_drops.remove(id);
            } else {
                log.push(audit::removed(
                    &record,
                    purge_detail(&options.purge),
                    clock::now(),
                ));
            }
            match &options.leftovers_owner {
                Some(owner) => data.leftovers_owners.insert(id.clone(), owner.clone()),
                None => data.leftovers_owners.remove(id),
            };
            let change = self.change(tenant, Some(id), ChangeKind::PluginDeleted, None);
            Ok((report, vec![change]))
        })
    }

    async fn purge_leftovers(&self, tenant: &TenantId, id: &PluginId) -> Result<DeleteReport> {
        self.write(tenant, |data, _log| {
            if data.plugins.contains_key(id) {
                return Err(super::still_installed(tenant, id));
            }
            let mut report = DeleteReport::default();
            if let Some(config) = data.config.remove(id) {
                report.config_keys = config.values.len() as u64;
            }
            if let Some(entries) = data.kv.remove(id) {
                report.kv_entries = entries.len() as u64;
            }
            let before = data.grants.len();
            data.grants.retain(|(plugin, _), _| plugin != id);
            report.grants = (before - data.grants.len()) as u64;
            data.leftovers_owners.remove(id);
            Ok((report, Vec::new()))
        })
    }

    async fn get_leftovers_owner(
        &self,
        tenant: &TenantId,
        id: &PluginId,
    ) -> Result<Option<String>> {
        self.read(tenant, |data| Ok(data.leftovers_owners.get(id).cloned()))
    }

    async fn add_version(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        new: &NewVersion,
    ) -> Result<VersionRecord> {
        plugin::check_manifest_id(id, &new.manifest)?;
        let version = &new.manifest.plugin.version;
        self.write(tenant, |data, log| {
            if !data.plugins.contains_key(id) {
                return Err(RegistryError::not_found(
                    Record::Plugin,
                    tenant,
                    id.to_string(),
                ));
            }
            let key = (id.clone(), version.clone());
            if data.versions.contains_key(&key) {
                return Err(RegistryError::AlreadyExists {
                    record: Record::Version,
                    tenant: tenant.clone(),
                    key: format!("{id}@{version}"),
                    hint: "; remove it first to replace it",
                });
            }
            data.require_artifact(tenant, new.artifact.as_ref())?;
            let now = clock::now();
            let row = VersionRow {
                manifest: new.manifest.clone(),
                artifact: new.artifact,
                verification: new.verification.clone(),
                installed_at: now,
            };
            let record = data.version_record(tenant, id, version, &row);
            data.versions.insert(key, row);
            log.push(audit::version(
                tenant,
                id,
                version,
                EventKind::VersionAdded,
                now,
            ));
            let change = self.change(tenant, Some(id), ChangeKind::VersionsChanged, None);
            Ok((record, vec![change]))
        })
    }

    async fn get_version(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        version: &Version,
    ) -> Result<Option<VersionRecord>> {
        self.read(tenant, |data| {
            Ok(data
                .versions
                .get(&(id.clone(), version.clone()))
                .map(|row| data.version_record(tenant, id, version, row)))
        })
    }

    async fn list_versions(&self, tenant: &TenantId, id: &PluginId) -> Result<Vec<VersionRecord>> {
        self.read(tenant, |data| {
            Ok(data
                .versions
                .iter()
                .rev()
                .filter(|((plugin, _), _)| plugin == id)
                .map(|((_, version), row)| data.version_record(tenant, id, version, row))
                .collect())
        })
    }

    async fn remove_version(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        version: &Version,
    ) -> Result<()> {
        self.write(tenant, |data, log| {
            if data.plugins.get(id).is_some_and(|p| p.version == *version) {
                return Err(RegistryError::invalid(
                    "version to remove",
                    &format!("{id}@{version}"),
                    "it is the current version; switch to another version first",
                ));
            }
            if data
                .versions
                .remove(&(id.clone(), version.clone()))
                .is_none()
            {
                return Err(RegistryError::not_found(
                    Record::Version,
                    tenant,
                    format!("{id}@{version}"),
                ));
            }
            log.push(audit::version(
                tenant,
                id,
                version,
                EventKind::VersionRemoved,
                clock::now(),
            ));
            let change = self.change(tenant, Some(id), ChangeKind::VersionsChanged, None);
            Ok(((), vec![change]))
        })
    }

    async fn put_artifact(&self, tenant: &TenantId, bytes: &[u8]) -> Result<ArtifactInfo> {
        let sha256 = Sha256Digest::of(bytes);
        self.write(tenant, |data, _| {
            let now = clock::now();
            let mut newly_stored = false;
            let row = data.artifacts.entry(sha256).or_insert_with(|| {
                newly_stored = true;
                ArtifactRow {
                    bytes: bytes.to_vec(),
                    created_at: now,
                }
            });
            if !newly_stored && Sha256Digest::of(&row.bytes) != sha256 {
                tracing::warn!(%tenant, %sha256, "repairing a corrupt artifact with good bytes");
                row.bytes = bytes.to_vec();
            }
            let info = ArtifactInfo {
                sha256,
                size: bytes.len() as u64,
                created_at: row.created_at,
                newly_stored,
            };
            let changes = if newly_stored {
                vec![self.change(tenant, None, ChangeKind::ArtifactsChanged, None)]
            } else {
                Vec::new()
            };
            Ok((info, changes))
        })
    }

    async fn get_artifact(
        &self,
        tenant: &TenantId,
        sha256: &Sha256Digest,
    ) -> Result<Option<Vec<u8>>> {
        self.read(tenant, |data| {
            data.artifacts
                .get(sha256)
                .map(|row| verified(tenant, sha256, row.bytes.clone()))
                .transpose()
        })
    }

    async fn delete_unused_artifacts(&self, tenant: &TenantId) -> Result<u64> {
        self.write(tenant, |data, _| {
            let unused = data.unused_artifacts();
            for sha in &unused {
                data.artifacts.remove(sha);
            }
            let changes = if unused.is_empty() {
                Vec::new()
            } else {
                vec![self.change(tenant, None, ChangeKind::ArtifactsChanged, None)]
            };
            Ok((unused.len() as u64, changes))
        })
    }

    async fn append_events(&self, events: &[NewEvent]) -> Result<()> {
        for event in events {
            event.kind.check()?;
        }
        let changes = audit::events_appended(self.info.instance, events);
        {
            let mut state = self.state.lock();
            for event in events {
                state.last_event += 1;
                let id = state.last_event;
                state
                    .tenants
                    .entry(event.tenant.clone())
                    .or_default()
                    .events
                    .insert(id, stored_event(id, event.clone()));
            }
        }
        self.hub.publish(changes);
        Ok(())
    }

    async fn list_events(&self, tenant: &TenantId, query: &EventQuery) -> Result<EventPage> {
        let limit = query.checked_limit()?;
        self.read(tenant, |data| {
            let matching = data.events.values().filter(|e| query.matches(e));
            let mut events: Vec<Event> = match query.order {
                EventOrder::NewestFirst => matching.rev().take(limit + 1).cloned().collect(),
                EventOrder::OldestFirst => matching.take(limit + 1).cloned().collect(),
            };
            let next = page::cut(&mut events, limit, |e| e.cursor);
            Ok(EventPage { events, next })
        })
    }

    async fn latest_event_cursor(&self, tenant: &TenantId) -> Result<Option<EventCursor>> {
        self.read(tenant, |data| {
            Ok(data.events.keys().next_back().map(|id| EventCursor(*id)))
        })
    }

    async fn append_logs(&self, logs: &[NewLog], keep: u64) -> Result<u64> {
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        let mut state = self.state.lock();
        let mut touched: Vec<(TenantId, PluginId)> = Vec::new();
        for log in logs {
            state.last_log += 1;
            let id = state.last_log;
            let data = state.tenants.entry(log.tenant.clone()).or_default();
            data.logs.insert(
                id,
                LogRecord {
                    id,
                    tenant: log.tenant.clone(),
                    plugin: log.plugin.clone(),
                    level: log.level,
                    message: log.message.clone(),
                    fields: log.fields.clone(),
                    at: log.at,
                },
            );
            let key = (log.tenant.clone(), log.plugin.clone());
            if !touched.contains(&key) {
                touched.push(key);
            }
        }
        let mut dropped = 0;
        for (tenant, plugin) in touched {
            let Some(data) = state.tenants.get_mut(&tenant) else {
                continue;
            };
            let ids: Vec<i64> = data
                .logs
                .values()
                .filter(|l| l.plugin == plugin)
                .map(|l| l.id)
                .collect();
            let excess = ids.len().saturating_sub(keep);
            for id in &ids[..excess] {
                data.logs.remove(id);
            }
            if excess > 0 {
                *data.log_drops.entry(plugin).or_default() += excess as u64;
                dropped += excess as u64;
            }
        }
        Ok(dropped)
    }

    async fn list_logs(&self, tenant: &TenantId, query: &LogQuery) -> Result<LogPage> {
        let limit = query.checked_limit()?;
        self.read(tenant, |data| {
            let matching = data.logs.values().filter(|l| query.matches(l));
            let logs: Vec<LogRecord> = if query.after.is_some() {
                matching.take(limit).cloned().collect()
            } else {
                let mut newest: Vec<LogRecord> = matching.rev().take(limit).cloned().collect();
                newest.reverse();
                newest
            };
            let dropped = match &query.plugin {
                Some(plugin) => data.log_drops.get(plugin).copied().unwrap_or(0),
                None => data.log_drops.values().sum(),
            };
            Ok(LogPage { logs, dropped })
        })
    }

    async fn prune_events(&self, tenant: &TenantId, older_than: OffsetDateTime) -> Result<u64> {
        self.write(tenant, |data, _| {
            let before = data.events.len();
            data.events.retain(|_, e| e.at >= older_than);
            Ok(((before - data.events.len()) as u64, Vec::new()))
        })
    }

    async fn prune_events_beyond(&self, tenant: &TenantId, keep: u64) -> Result<u64> {
        self.write(tenant, |data, _| {
            let keep = usize::try_from(keep).unwrap_or(usize::MAX);
            let excess = data.events.len().saturating_sub(keep);
            let newest_kept = data.events.keys().nth(excess).copied();
            data.events = match newest_kept {
                Some(id) => data.events.split_off(&id),
                None => std::mem::take(&mut data.events),
            };
            Ok((excess as u64, Vec::new()))
        })
    }

    async fn get_config(&self, tenant: &TenantId, plugin: &PluginId) -> Result<PluginConfig> {
        self.read_config(tenant, plugin, None)
    }

    async fn get_config_revealed(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
    ) -> Result<PluginConfig> {
        let key = self
            .secret_key
            .as_ref()
            .ok_or_else(|| RegistryError::SecretKeyMissing {
                action: format!("reveal the secrets of `{plugin}`"),
            })?;
        self.read_config(tenant, plugin, Some(key))
    }

    async fn update_config(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        change: &ConfigChange,
    ) -> Result<PluginConfig> {
        change.check(self.secret_key.as_ref())?;
        let stored = config::encode_values(self.secret_key.as_ref(), tenant, plugin, change)?;
        let revision = self.write(tenant, |data, log| {
            let row = data.config.entry(plugin.clone()).or_default();
            if let Some(expected) = change.expected_revision
                && expected != row.revision
            {
                return Err(conflict(
                    Record::Config,
                    tenant,
                    plugin,
                    expected,
                    row.revision,
                ));
            }
            row.revision += 1;
            for (key, value) in stored {
                row.values.insert(key, value);
            }
            for key in &change.unset {
                row.values.remove(key);
            }
            let revision = row.revision;
            log.push(audit::config_changed(
                tenant,
                plugin,
                change,
                revision,
                clock::now(),
            ));
            let announce = self.change(
                tenant,
                Some(plugin),
                ChangeKind::ConfigChanged,
                Some(revision),
            );
            Ok((revision, vec![announce]))
        })?;
        let config = self.read_config(tenant, plugin, None)?;
        debug_assert!(config.revision >= revision);
        Ok(config)
    }

    async fn put_grant(&self, new: &NewGrant) -> Result<Grant> {
        let tenant = &new.tenant;
        self.write(tenant, |data, log| {
            let grant = Grant {
                tenant: tenant.clone(),
                plugin: new.plugin.clone(),
                version: new.version.clone(),
                permissions: new.permissions.clone(),
                granted_by: new.granted_by.clone(),
                granted_at: clock::now(),
            };
            data.grants
                .insert((new.plugin.clone(), new.version.clone()), grant.clone());
            log.push(audit::granted(&grant));
            let change = self.change(tenant, Some(&new.plugin), ChangeKind::GrantsChanged, None);
            Ok((grant, vec![change]))
        })
    }

    async fn get_publisher_key(
        &self,
        tenant: &TenantId,
        publisher: &str,
    ) -> Result<Option<PublisherKey>> {
        self.read(tenant, |data| Ok(data.publishers.get(publisher).cloned()))
    }

    async fn put_publisher_key(&self, new: &NewPublisherKey) -> Result<PublisherKey> {
        self.write(&new.tenant, |data, _log| {
            let key = bound(new, clock::now());
            data.publishers.insert(new.publisher.clone(), key.clone());
            Ok((key, Vec::new()))
        })
    }

    async fn list_publisher_keys(&self, tenant: &TenantId) -> Result<Vec<PublisherKey>> {
        self.read(tenant, |data| {
            Ok(data.publishers.values().cloned().collect())
        })
    }

    async fn insert_api_token(&self, new: &NewApiToken) -> Result<ApiToken> {
        self.write(&new.tenant, |data, _log| {
            let taken = data.tokens.contains_key(&new.name)
                || data
                    .tokens
                    .values()
                    .any(|t| t.token_sha256 == new.token_sha256);
            if taken {
                return Err(backend::token_exists(new));
            }
            let token = backend::token_made(new, clock::now());
            data.tokens.insert(new.name.clone(), token.clone());
            Ok((token, Vec::new()))
        })
    }

    async fn find_api_token(
        &self,
        tenant: &TenantId,
        token_sha256: &str,
    ) -> Result<Option<ApiToken>> {
        self.read(tenant, |data| {
            Ok(data
                .tokens
                .values()
                .find(|t| t.token_sha256 == token_sha256)
                .cloned())
        })
    }

    async fn list_api_tokens(&self, tenant: &TenantId) -> Result<Vec<ApiToken>> {
        self.read(tenant, |data| Ok(data.tokens.values().cloned().collect()))
    }

    async fn delete_api_token(&self, tenant: &TenantId, name: &str) -> Result<bool> {
        self.write(tenant, |data, _log| {
            Ok((data.tokens.remove(name).is_some(), Vec::new()))
        })
    }

    async fn get_grant(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        version: &Version,
    ) -> Result<Option<Grant>> {
        self.read(tenant, |data| {
            Ok(data.grants.get(&(plugin.clone(), version.clone())).cloned())
        })
    }

    async fn list_grants(&self, tenant: &TenantId, plugin: &PluginId) -> Result<Vec<Grant>> {
        self.read(tenant, |data| {
            let mut grants: Vec<Grant> = data
                .grants
                .iter()
                .filter(|((p, _), _)| p == plugin)
                .map(|(_, g)| g.clone())
                .collect();
            sort_grants(&mut grants);
            Ok(grants)
        })
    }

    async fn revoke_grant(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        version: &Version,
    ) -> Result<bool> {
        self.write(tenant, |data, log| {
            if data
                .grants
                .remove(&(plugin.clone(), version.clone()))
                .is_none()
            {
                return Ok((false, Vec::new()));
            }
            log.push(audit::grant_revoked(tenant, plugin, version, clock::now()));
            let change = self.change(tenant, Some(plugin), ChangeKind::GrantsChanged, None);
            Ok((true, vec![change]))
        })
    }

    async fn kv_get(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        key: &str,
    ) -> Result<Option<Vec<u8>>> {
        kv::check_key(key)?;
        self.read(tenant, |data| {
            Ok(data
                .kv
                .get(plugin)
                .and_then(|entries| entries.get(key.as_bytes()))
                .cloned())
        })
    }

    async fn kv_set(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        key: &str,
        value: &[u8],
        quota: KvQuota,
    ) -> Result<KvUsage> {
        kv::check_key(key)?;
        self.write(tenant, |data, _| {
            let usage = data.kv_usage(plugin);
            let old = data
                .kv
                .get(plugin)
                .and_then(|entries| entries.get(key.as_bytes()))
                .map(|v| kv::entry_size(key, v));
            let needed = usage.bytes - old.unwrap_or(0) + kv::entry_size(key, value);
            quota.check_new_key(tenant, plugin, usage.keys, old.is_none())?;
            if needed > quota.max_bytes {
                return Err(RegistryError::QuotaExceeded {
                    tenant: tenant.clone(),
                    plugin: plugin.clone(),
                    quota: quota.max_bytes,
                    used: usage.bytes,
                    needed,
                });
            }
            data.kv
                .entry(plugin.clone())
                .or_default()
                .insert(key.as_bytes().to_vec(), value.to_vec());
            let usage = KvUsage {
                bytes: needed,
                keys: usage.keys + u64::from(old.is_none()),
            };
            Ok((usage, Vec::new()))
        })
    }

    async fn kv_delete(&self, tenant: &TenantId, plugin: &PluginId, key: &str) -> Result<bool> {
        kv::check_key(key)?;
        self.write(tenant, |data, _| {
            let removed = data
                .kv
                .get_mut(plugin)
                .and_then(|entries| entries.remove(key.as_bytes()))
                .is_some();
            Ok((removed, Vec::new()))
        })
    }

    async fn kv_list(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        list: &KvList,
    ) -> Result<Vec<String>> {
        let limit = list.checked_limit()?;
        self.read(tenant, |data| {
            let Some(entries) = data.kv.get(plugin) else {
                return Ok(Vec::new());
            };
            let (lower, _, _) = list.range();
            entries
                .range(lower..)
                .map(|(k, _)| k)
                .take_while(|k| k.starts_with(list.prefix.as_bytes()))
                .filter(|k| list.matches(k))
                .take(limit)
                .map(|k| kv_key(k))
                .collect()
        })
    }

    async fn kv_usage(&self, tenant: &TenantId, plugin: &PluginId) -> Result<KvUsage> {
        self.read(tenant, |data| Ok(data.kv_usage(plugin)))
    }

    async fn subscribe_changes(&self) -> Result<ChangeSubscription> {
        Ok(self.hub.subscribe())
    }
}

impl MemoryStore {
    fn read_config(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        reveal: Option<&SecretKey>,
    ) -> Result<PluginConfig> {
        let (revision, stored) = self.read(tenant, |data| {
            Ok(data.config.get(plugin).map_or((0, Vec::new()), |row| {
                (
                    row.revision,
                    row.values
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                )
            }))
        })?;
        config::decode_values(tenant, plugin, revision, stored, reveal)
    }
}
