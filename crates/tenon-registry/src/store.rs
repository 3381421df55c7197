//! The `RegistryStore` trait: everything the engine, the CLI and the sandbox
//! keep durably, whichever backend holds it.

use std::fmt;

use async_trait::async_trait;
use tenon_manifest::{PluginId, Version};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::artifact::{ArtifactInfo, Sha256Digest};
use crate::change::ChangeSubscription;
use crate::config::{ConfigChange, ConfigInput, PluginConfig};
use crate::error::Result;
use crate::event::{Event, EventCursor, EventOrder, EventPage, EventQuery, NewEvent};
use crate::grant::{Grant, NewGrant};
use crate::kv::{KvList, KvQuota, KvUsage};
use crate::log::{LogPage, LogQuery, NewLog};
use crate::plugin::{
    DeleteOptions, DeleteReport, NewPlugin, NewVersion, PluginPage, PluginQuery, PluginRecord,
    PluginUpdate, VersionRecord,
};
use crate::publisher::{NewPublisherKey, PublisherKey};
use crate::tenant::TenantId;
use crate::token::{ApiToken, NewApiToken};

/// Which backend holds a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// In this process only ([`MemoryStore`](crate::MemoryStore)).
    Memory,
    /// An SQLite database file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
}

impl BackendKind {
    /// Its name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a store is, for diagnostics (`tenon doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    /// The backend.
    pub backend: BackendKind,
    /// Where it is, with any password removed.
    pub location: String,
    /// The schema version of its database after opening.
    pub schema_version: i64,
    /// This store instance: the origin of the changes it announces.
    pub instance: Uuid,
}

/// Durable registry state, keyed by tenant.
///
/// Backends: [`MemoryStore`](crate::MemoryStore) (feature `memory`),
/// [`SqliteStore`](crate::SqliteStore) (feature `sqlite`, the default) and
/// [`PostgresStore`](crate::PostgresStore) (feature `postgres`); pick one
/// from a location with [`open`](crate::open).
///
/// Every write is one transaction. Writes that change a plugin's row are
/// optimistic: they name the row version they are based on, and a write
/// that lost a race fails with
/// [`RegistryError::Conflict`](crate::RegistryError::Conflict) instead of
/// overwriting. Each durable change of a plugin is also appended to the
/// tenant's event log in its own transaction (see [`EventKind`](crate::EventKind)),
/// and announced on the change feed once committed.
#[async_trait]
pub trait RegistryStore: Send + Sync + fmt::Debug {
    /// What this store is.
    fn info(&self) -> &StoreInfo;

    // ----- plugins -----

    /// Inserts a plugin and its first version (the manifest's), current,
    /// with row version 1, and records an `installed` event.
    ///
    /// Fails with `AlreadyExists` if the plugin is there, `NotFound` if the
    /// named artifact is not stored. A version row left by a delete that
    /// kept versions is replaced.
    async fn insert_plugin(&self, plugin: &NewPlugin) -> Result<PluginRecord>;

    /// A plugin, with its current version's manifest.
    async fn get_plugin(&self, tenant: &TenantId, id: &PluginId) -> Result<Option<PluginRecord>>;

    /// A page of plugins ordered by id.
    async fn list_plugins(&self, tenant: &TenantId, query: &PluginQuery) -> Result<PluginPage>;

    /// The tenants that have plugins or events, ordered by id: the tenants
    /// this registry knows (a tenant exists only through what is stored for
    /// it).
    async fn list_tenants(&self) -> Result<Vec<TenantId>>;

    /// Applies `update` if the plugin's row version is still
    /// `update.expected_row_version`, and returns the new record (row
    /// version + 1). Records `state_changed`, `enabled_changed` and
    /// `version_changed` events for what changed.
    ///
    /// Fails with `Conflict` (carrying the current row version) when the
    /// plugin changed meanwhile, `NotFound` when it (or the new current
    /// version) does not exist.
    async fn update_plugin(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        update: &PluginUpdate,
    ) -> Result<PluginRecord>;

    /// Points the plugin at another installed version: an upgrade, or a
    /// rollback. Same as [`update_plugin`](Self::update_plugin) with only
    /// [`PluginUpdate::current_version`] set.
    async fn set_current_version(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        version: &Version,
        expected_row_version: u64,
    ) -> Result<PluginRecord> {
        let update = PluginUpdate::new(expected_row_version).with_current_version(version.clone());
        self.update_plugin(tenant, id, &update).await
    }

    /// Deletes a plugin and what `options.purge` names, in one
    /// transaction. Unless its events are purged, records a `removed` event.
    async fn delete_plugin(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        options: &DeleteOptions,
    ) -> Result<DeleteReport>;

    /// Purges what an uninstalled plugin left behind (its config and
    /// secrets, grants and KV entries) in one transaction, so that a
    /// reinstall by someone else finds none of it. Refused (`AlreadyExists`)
    /// while the plugin is installed; its events stay (they are history).
    async fn purge_leftovers(&self, tenant: &TenantId, id: &PluginId) -> Result<DeleteReport>;

    /// Who left what an uninstalled plugin left: the record its
    /// [`delete_plugin`](Self::delete_plugin) was given
    /// ([`DeleteOptions::leftovers_owner`]), until
    /// [`purge_leftovers`](Self::purge_leftovers) or the next deletion
    /// replaces it. `None` when no record was given.
    async fn get_leftovers_owner(&self, tenant: &TenantId, id: &PluginId)
    -> Result<Option<String>>;

    // ----- versions -----

    /// Adds an installed version (not current: switch with
    /// [`set_current_version`](Self::set_current_version)). Fails with
    /// `AlreadyExists` if the version is installed.
    async fn add_version(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        version: &NewVersion,
    ) -> Result<VersionRecord>;

    /// One installed version.
    async fn get_version(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        version: &Version,
    ) -> Result<Option<VersionRecord>>;

    /// Every installed version, highest first.
    async fn list_versions(&self, tenant: &TenantId, id: &PluginId) -> Result<Vec<VersionRecord>>;

    /// Removes an installed version that is not current. Its artifact stays
    /// until [`delete_unused_artifacts`](Self::delete_unused_artifacts).
    async fn remove_version(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        version: &Version,
    ) -> Result<()>;

    // ----- artifacts -----

    /// Stores bytes under their sha256. Storing the same bytes again writes
    /// nothing (and repairs a stored copy that was found corrupt).
    async fn put_artifact(&self, tenant: &TenantId, bytes: &[u8]) -> Result<ArtifactInfo>;

    /// The bytes stored under `sha256`, checked: bytes that no longer hash to
    /// their name fail with `Integrity` and are never returned.
    async fn get_artifact(
        &self,
        tenant: &TenantId,
        sha256: &Sha256Digest,
    ) -> Result<Option<Vec<u8>>>;

    /// Deletes the tenant's artifacts that no installed version uses;
    /// returns how many. An artifact stored for a version not yet added is
    /// unused too: do not collect while installing.
    async fn delete_unused_artifacts(&self, tenant: &TenantId) -> Result<u64>;

    // ----- events -----

    /// Appends events (of any tenants) in one transaction: all or none.
    async fn append_events(&self, events: &[NewEvent]) -> Result<()>;

    /// A page of a tenant's events.
    async fn list_events(&self, tenant: &TenantId, query: &EventQuery) -> Result<EventPage>;

    /// The position of the tenant's newest event, to follow the log from now.
    async fn latest_event_cursor(&self, tenant: &TenantId) -> Result<Option<EventCursor>>;

    /// Up to `limit` events after `cursor` (from the start when `None`),
    /// oldest first: what `tenon events --follow` polls, or reads when the
    /// change feed announces `EventsAppended`.
    async fn events_after(
        &self,
        tenant: &TenantId,
        cursor: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<Event>> {
        let query = EventQuery::default()
            .with_order(EventOrder::OldestFirst)
            .with_after(cursor)
            .with_limit(limit);
        Ok(self.list_events(tenant, &query).await?.events)
    }

    /// Deletes the tenant's events older than `older_than`; returns how
    /// many.
    async fn prune_events(&self, tenant: &TenantId, older_than: OffsetDateTime) -> Result<u64>;

    /// Deletes the tenant's oldest events beyond its newest `keep`; returns
    /// how many. Cursors of the events kept stay valid.
    async fn prune_events_beyond(&self, tenant: &TenantId, keep: u64) -> Result<u64>;

    // ----- plugin logs -----

    /// Keeps plugins' log lines (of any tenants) in one transaction, then
    /// drops the oldest lines of each plugin concerned beyond its newest
    /// `keep`, counting them for [`list_logs`](Self::list_logs); returns
    /// how many were dropped.
    async fn append_logs(&self, logs: &[NewLog], keep: u64) -> Result<u64>;

    /// A tenant's log lines, oldest first, with how many were dropped.
    async fn list_logs(&self, tenant: &TenantId, query: &LogQuery) -> Result<LogPage>;

    // ----- config -----

    /// A plugin's configuration, secrets redacted. A plugin never configured
    /// has revision 0 and no values.
    async fn get_config(&self, tenant: &TenantId, plugin: &PluginId) -> Result<PluginConfig>;

    /// A plugin's configuration with secrets decrypted. Needs the secret key
    /// (`SecretKeyMissing`); a secret written with another key fails with
    /// `SecretKeyMismatch`, an altered one with `SecretCorrupt`.
    async fn get_config_revealed(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
    ) -> Result<PluginConfig>;

    /// Sets and unsets keys in one transaction, revision + 1, and records a
    /// `config_changed` event (keys only). Secrets need the secret key
    /// (`SecretKeyMissing`, nothing stored). With
    /// [`ConfigChange::expected_revision`], fails with `Conflict` if the
    /// configuration changed meanwhile. Returns the new configuration,
    /// secrets redacted.
    async fn update_config(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        change: &ConfigChange,
    ) -> Result<PluginConfig>;

    /// Sets one key, whatever the revision.
    async fn set_config_value(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        key: &str,
        value: ConfigInput,
    ) -> Result<PluginConfig> {
        let mut change = ConfigChange::new();
        change.set.insert(key.to_owned(), value);
        self.update_config(tenant, plugin, &change).await
    }

    // ----- grants -----

    /// Records what the operator granted to a version (replacing an earlier
    /// grant for it) and a `granted` event.
    async fn put_grant(&self, grant: &NewGrant) -> Result<Grant>;

    /// The grant for one version.
    async fn get_grant(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        version: &Version,
    ) -> Result<Option<Grant>>;

    /// Every grant of a plugin, most recent first.
    async fn list_grants(&self, tenant: &TenantId, plugin: &PluginId) -> Result<Vec<Grant>>;

    /// Withdraws the grant for one version; whether there was one. Records a
    /// `grant_revoked` event when there was.
    async fn revoke_grant(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        version: &Version,
    ) -> Result<bool>;

    // ----- publishers -----

    /// The key a publisher is bound to, if any.
    async fn get_publisher_key(
        &self,
        tenant: &TenantId,
        publisher: &str,
    ) -> Result<Option<PublisherKey>>;

    /// Binds a publisher to a key, replacing its earlier binding.
    async fn put_publisher_key(&self, key: &NewPublisherKey) -> Result<PublisherKey>;

    /// Every binding of a tenant, by publisher.
    async fn list_publisher_keys(&self, tenant: &TenantId) -> Result<Vec<PublisherKey>>;

    // ----- API tokens -----

    /// Records a token. Fails with `AlreadyExists` when the tenant has a
    /// token of that name (or, vanishingly unlikely, of that hash); nothing
    /// is stored then.
    async fn insert_api_token(&self, token: &NewApiToken) -> Result<ApiToken>;

    /// The tenant's token whose secret hashes to `token_sha256`.
    async fn find_api_token(
        &self,
        tenant: &TenantId,
        token_sha256: &str,
    ) -> Result<Option<ApiToken>>;

    /// Every token of a tenant, by name.
    async fn list_api_tokens(&self, tenant: &TenantId) -> Result<Vec<ApiToken>>;

    /// Deletes a token by name; whether there was one.
    async fn delete_api_token(&self, tenant: &TenantId, name: &str) -> Result<bool>;

    // ----- plugin KV -----

    /// A value.
    async fn kv_get(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        key: &str,
    ) -> Result<Option<Vec<u8>>>;

    /// Sets a value if the plugin's keys and values then fit in `quota`
    /// bytes (otherwise fails with `QuotaExceeded`) and a new key fits in
    /// its key count (otherwise `KeyQuotaExceeded`); a refused write stores
    /// nothing.
    /// Returns the usage after the write.
    async fn kv_set(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        key: &str,
        value: &[u8],
        quota: KvQuota,
    ) -> Result<KvUsage>;

    /// Deletes a key; whether it was there.
    async fn kv_delete(&self, tenant: &TenantId, plugin: &PluginId, key: &str) -> Result<bool>;

    /// Keys in byte order, by prefix, a page at a time.
    async fn kv_list(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        list: &KvList,
    ) -> Result<Vec<String>>;

    /// What the plugin's entries take.
    async fn kv_usage(&self, tenant: &TenantId, plugin: &PluginId) -> Result<KvUsage>;

    // ----- changes -----

    /// Subscribes to committed changes: those made through this store, at
    /// once, and those of other hosts and processes — on PostgreSQL every
    /// store on the database (LISTEN/NOTIFY; listening when this returns),
    /// on SQLite every process on the file (polled every
    /// [`RegistryOptions::change_poll_interval`](crate::RegistryOptions::change_poll_interval)).
    /// The memory backend has only its own.
    async fn subscribe_changes(&self) -> Result<ChangeSubscription>;
}
