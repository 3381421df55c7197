// The `RegistryStore` implementation shared by the SQL backends.
//
// This file is not a module: `sqlite.rs` and `postgres.rs` each `include!` it
// after defining `Db` (the sqlx database), `Store` (their store type) and the
// dialect hooks `Store::begin_write`, `Store::reader`,
// `Store::lock_event_log`, `Store::commit`, `Store::subscribe` and
// `Store::secret_key`. Every statement below runs unchanged on both.

type Tx = sqlx::Transaction<'static, Db>;
type DbRow = <Db as sqlx::Database>::Row;

use sqlx::{QueryBuilder, Row as _};

use crate::artifact::{ArtifactInfo, Sha256Digest};
use crate::audit;
use crate::backend::sql::{
    db_err, is_unique_violation, parse_enum, parse_json, parse_manifest, parse_plugin_id,
    parse_sha, parse_tenant, parse_version, to_i64, to_json, to_u64,
};
use crate::backend::{self, kv_key, purge_detail, sort_grants, verified};
use crate::change::{Change, ChangeKind, ChangeSubscription};
use crate::clock;
use crate::config::{self, ConfigChange, PluginConfig, StoredValue};
use crate::error::{Record, RegistryError, Result};
use crate::event::{Event, EventCursor, EventKind, EventOrder, EventPage, EventQuery, NewEvent};
use crate::grant::{Grant, NewGrant};
use crate::token::{ApiToken, NewApiToken};
use crate::kv::{self, KvList, KvQuota, KvUsage};
use crate::log::{LogLevel, LogPage, LogQuery, LogRecord, NewLog};
use crate::page;
use crate::plugin::{
    self, DeleteOptions, DeleteReport, LastError, NewPlugin, NewVersion, PluginPage, PluginQuery,
    PluginRecord, PluginSource, PluginUpdate, VersionRecord,
};
use crate::publisher::{NewPublisherKey, PublisherKey};
use crate::secret::{KeyFingerprint, SecretKey};
use crate::store::{RegistryStore, StoreInfo};
use crate::tenant::TenantId;
use tenon_manifest::{PluginId, Version};
use time::OffsetDateTime;

/// Rows per multi-row event insert: 8 parameters each, well under SQLite's
/// 32766 and PostgreSQL's 65535 parameters per statement.
const EVENT_CHUNK: usize = 500;

const PLUGIN_SELECT: &str = "SELECT p.tenant, p.id, p.current_version, p.state, p.source_kind, \
     p.source_ref, p.enabled, p.last_error, p.created_at, p.updated_at, p.row_version, \
     v.manifest, v.artifact_sha256, v.verification \
     FROM plugins p JOIN plugin_versions v \
     ON v.tenant = p.tenant AND v.plugin = p.id AND v.version = p.current_version";

const VERSION_SELECT: &str = "SELECT v.tenant, v.plugin, v.version, v.manifest, \
     v.artifact_sha256, v.verification, v.installed_at, \
     COALESCE(p.current_version = v.version, FALSE) AS current \
     FROM plugin_versions v LEFT JOIN plugins p ON p.tenant = v.tenant AND p.id = v.plugin";

const EVENT_SELECT: &str =
    "SELECT id, tenant, plugin, version, kind, status, detail, at FROM plugin_events";

const LOG_SELECT: &str =
    "SELECT id, tenant, plugin, level, message, fields, at FROM plugin_logs";

/// Rows per multi-row log insert: 6 parameters each.
const LOG_CHUNK: usize = 500;

const GRANT_SELECT: &str =
    "SELECT tenant, plugin, version, permissions, granted_by, granted_at FROM plugin_grants";

fn get<'r, T>(row: &'r DbRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    row.try_get(column)
        .map_err(|e| RegistryError::decode(format!("column `{column}`"), e))
}

fn plugin_from_row(row: &DbRow) -> Result<PluginRecord> {
    let id: String = get(row, "id")?;
    let version: String = get(row, "current_version")?;
    let last_error: Option<String> = get(row, "last_error")?;
    let artifact: Option<String> = get(row, "artifact_sha256")?;
    Ok(PluginRecord {
        tenant: parse_tenant(&get::<String>(row, "tenant")?)?,
        manifest: parse_manifest(&get::<String>(row, "manifest")?, &id, &version)?,
        version: parse_version(&version, &id)?,
        state: parse_enum(&get::<String>(row, "state")?)?,
        source: PluginSource {
            kind: parse_enum(&get::<String>(row, "source_kind")?)?,
            reference: get(row, "source_ref")?,
        },
        enabled: get(row, "enabled")?,
        artifact: artifact.as_deref().map(parse_sha).transpose()?,
        verification: verification_of(row)?,
        last_error: last_error
            .as_deref()
            .map(|text| parse_json::<LastError>(text, "a plugin's last error"))
            .transpose()?,
        created_at: clock::from_micros(get(row, "created_at")?)?,
        updated_at: clock::from_micros(get(row, "updated_at")?)?,
        row_version: to_u64(get(row, "row_version")?, "a row version")?,
        id: parse_plugin_id(&id)?,
    })
}

fn version_from_row(row: &DbRow) -> Result<VersionRecord> {
    let plugin: String = get(row, "plugin")?;
    let version: String = get(row, "version")?;
    let artifact: Option<String> = get(row, "artifact_sha256")?;
    Ok(VersionRecord {
        tenant: parse_tenant(&get::<String>(row, "tenant")?)?,
        manifest: parse_manifest(&get::<String>(row, "manifest")?, &plugin, &version)?,
        version: parse_version(&version, &plugin)?,
        artifact: artifact.as_deref().map(parse_sha).transpose()?,
        verification: verification_of(row)?,
        installed_at: clock::from_micros(get(row, "installed_at")?)?,
        current: get(row, "current")?,
        plugin: parse_plugin_id(&plugin)?,
    })
}

const PUBLISHER_SELECT: &str =
    "SELECT tenant, publisher, public_key, key_id, bound_by, bound_at FROM publisher_keys";

fn publisher_from_row(row: &DbRow) -> Result<PublisherKey> {
    Ok(PublisherKey {
        tenant: parse_tenant(&get::<String>(row, "tenant")?)?,
        publisher: get(row, "publisher")?,
        public_key: get(row, "public_key")?,
        key_id: get(row, "key_id")?,
        bound_by: get(row, "bound_by")?,
        bound_at: clock::from_micros(get(row, "bound_at")?)?,
    })
}

const TOKEN_SELECT: &str =
    "SELECT tenant, name, role, token_sha256, created_at FROM api_tokens";

fn token_from_row(row: &DbRow) -> Result<ApiToken> {
    Ok(ApiToken {
        tenant: parse_tenant(&get::<String>(row, "tenant")?)?,
        name: get(row, "name")?,
        role: get(row, "role")?,
        token_sha256: get(row, "token_sha256")?,
        created_at: clock::from_micros(get(row, "created_at")?)?,
    })
}

fn verification_json(verification: Option<&serde_json::Value>) -> Result<Option<String>> {
    verification
        .map(|v| to_json(v, "a version's verification"))
        .transpose()
}

fn verification_of(row: &DbRow) -> Result<Option<serde_json::Value>> {
    get::<Option<String>>(row, "verification")?
        .as_deref()
        .map(|text| parse_json(text, "a version's verification"))
        .transpose()
}

fn event_from_row(row: &DbRow) -> Result<Event> {
    let plugin: Option<String> = get(row, "plugin")?;
    let version: Option<String> = get(row, "version")?;
    let kind: String = get(row, "kind")?;
    Ok(Event {
        cursor: EventCursor(get(row, "id")?),
        tenant: parse_tenant(&get::<String>(row, "tenant")?)?,
        version: version
            .as_deref()
            .map(|v| parse_version(v, plugin.as_deref().unwrap_or("?")))
            .transpose()?,
        plugin: plugin.as_deref().map(parse_plugin_id).transpose()?,
        kind: EventKind::parse(&kind).map_err(|e| RegistryError::decode("an event kind", e))?,
        status: parse_enum(&get::<String>(row, "status")?)?,
        detail: parse_json(&get::<String>(row, "detail")?, "an event's detail")?,
        at: clock::from_micros(get(row, "at")?)?,
    })
}

fn log_from_row(row: &DbRow) -> Result<LogRecord> {
    Ok(LogRecord {
        id: get(row, "id")?,
        tenant: parse_tenant(&get::<String>(row, "tenant")?)?,
        plugin: parse_plugin_id(&get::<String>(row, "plugin")?)?,
        level: LogLevel::from_rank(get(row, "level")?)?,
        message: get(row, "message")?,
        fields: parse_json(&get::<String>(row, "fields")?, "a log line's fields")?,
        at: clock::from_micros(get(row, "at")?)?,
    })
}

fn grant_from_row(row: &DbRow) -> Result<Grant> {
    let plugin: String = get(row, "plugin")?;
    Ok(Grant {
        tenant: parse_tenant(&get::<String>(row, "tenant")?)?,
        version: parse_version(&get::<String>(row, "version")?, &plugin)?,
        permissions: parse_json(
            &get::<String>(row, "permissions")?,
            &format!("the granted permissions of `{plugin}`"),
        )?,
        granted_by: get(row, "granted_by")?,
        granted_at: clock::from_micros(get(row, "granted_at")?)?,
        plugin: parse_plugin_id(&plugin)?,
    })
}

async fn fetch_plugin<'e, E>(
    executor: E,
    tenant: &TenantId,
    id: &PluginId,
) -> Result<Option<PluginRecord>>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    let sql = format!("{PLUGIN_SELECT} WHERE p.tenant = $1 AND p.id = $2");
    sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(id.as_str())
        .fetch_optional(executor)
        .await
        .map_err(db_err(format!(
            "reading plugin `{id}` of tenant `{tenant}`"
        )))?
        .as_ref()
        .map(plugin_from_row)
        .transpose()
}

async fn require_plugin(tx: &mut Tx, tenant: &TenantId, id: &PluginId) -> Result<PluginRecord> {
    fetch_plugin(&mut **tx, tenant, id)
        .await?
        .ok_or_else(|| RegistryError::not_found(Record::Plugin, tenant, id.to_string()))
}

/// Deletes a plugin's rows from `table` (one of the plugin tables) in
/// `tx`; how many there were.
async fn purge_rows(tx: &mut Tx, table: &str, tenant: &TenantId, id: &PluginId) -> Result<u64> {
    let sql = format!("DELETE FROM {table} WHERE tenant = $1 AND plugin = $2");
    let done = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(id.as_str())
        .execute(&mut **tx)
        .await
        .map_err(db_err(format!("purging {table} of plugin `{id}`")))?;
    Ok(done.rows_affected())
}

/// The current row version of a plugin that an optimistic write missed.
async fn lost_race(
    tx: &mut Tx,
    record: Record,
    tenant: &TenantId,
    id: &PluginId,
    expected: u64,
) -> RegistryError {
    match fetch_plugin(&mut **tx, tenant, id).await {
        Ok(Some(current)) => RegistryError::Conflict {
            record,
            tenant: tenant.clone(),
            plugin: id.clone(),
            expected_row_version: expected,
            current_row_version: current.row_version,
        },
        Ok(None) => RegistryError::not_found(Record::Plugin, tenant, id.to_string()),
        Err(e) => e,
    }
}

async fn require_artifact(
    tx: &mut Tx,
    tenant: &TenantId,
    sha: Option<&Sha256Digest>,
) -> Result<()> {
    let Some(sha) = sha else { return Ok(()) };
    let found = sqlx::query("SELECT 1 FROM plugin_artifacts WHERE tenant = $1 AND sha256 = $2")
        .bind(tenant.as_str())
        .bind(sha.to_hex())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err(format!("looking up artifact sha256:{sha}")))?;
    match found {
        Some(_) => Ok(()),
        None => Err(RegistryError::not_found(
            Record::Artifact,
            tenant,
            format!("sha256:{sha}"),
        )),
    }
}

async fn version_exists(
    tx: &mut Tx,
    tenant: &TenantId,
    id: &PluginId,
    version: &Version,
) -> Result<bool> {
    let found = sqlx::query(
        "SELECT 1 FROM plugin_versions WHERE tenant = $1 AND plugin = $2 AND version = $3",
    )
    .bind(tenant.as_str())
    .bind(id.as_str())
    .bind(version.to_string())
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err(format!("looking up version {id}@{version}")))?;
    Ok(found.is_some())
}

async fn fetch_config<'e, E>(
    executor: E,
    tenant: &TenantId,
    plugin: &PluginId,
    reveal: Option<&SecretKey>,
) -> Result<PluginConfig>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    // One statement, so the revision and the values are of one snapshot.
    let rows = sqlx::query(
        "SELECT r.revision, c.key, c.value, c.secret, c.key_fingerprint \
         FROM plugin_config_revisions r \
         LEFT JOIN plugin_config c ON c.tenant = r.tenant AND c.plugin = r.plugin \
         WHERE r.tenant = $1 AND r.plugin = $2",
    )
    .bind(tenant.as_str())
    .bind(plugin.as_str())
    .fetch_all(executor)
    .await
    .map_err(db_err(format!(
        "reading the config of `{plugin}` in tenant `{tenant}`"
    )))?;
    let mut revision = 0;
    let mut stored = Vec::with_capacity(rows.len());
    for row in &rows {
        revision = to_u64(get(row, "revision")?, "a config revision")?;
        let Some(key) = get::<Option<String>>(row, "key")? else {
            continue;
        };
        let value: Option<String> = get(row, "value")?;
        let secret: Option<Vec<u8>> = get(row, "secret")?;
        let fingerprint: Option<String> = get(row, "key_fingerprint")?;
        let value = match (value, secret, fingerprint) {
            (Some(text), None, _) => StoredValue::Plain(text),
            (None, Some(sealed), Some(fingerprint)) => StoredValue::Secret {
                sealed,
                fingerprint: KeyFingerprint::parse(&fingerprint).map_err(|e| {
                    RegistryError::decode(format!("config key `{key}` of `{plugin}`"), e)
                })?,
            },
            _ => {
                return Err(RegistryError::decode(
                    format!("config key `{key}` of `{plugin}`"),
                    "it holds neither a plain value nor a sealed secret",
                ));
            }
        };
        stored.push((key, value));
    }
    config::decode_values(tenant, plugin, revision, stored, reveal)
}

impl Store {
    /// Runs `sql`, a `DELETE` of a tenant's events with the tenant as `$1`
    /// and `bound` as `$2`, in a write transaction; how many it deleted.
    async fn delete_events(&self, tenant: &TenantId, sql: &'static str, bound: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(bound)
            .execute(&mut *tx)
            .await
            .map_err(db_err(format!("pruning the events of tenant `{tenant}`")))?
            .rows_affected();
        self.commit(tx, Vec::new(), "pruning events").await?;
        Ok(deleted)
    }

    /// Appends events inside `tx`, after serializing the event log of each
    /// tenant concerned. This must be the last lock a transaction takes.
    async fn insert_events(&self, tx: &mut Tx, events: &[NewEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tenants: Vec<&TenantId> = events.iter().map(|e| &e.tenant).collect();
        tenants.sort();
        tenants.dedup();
        for tenant in tenants {
            self.lock_event_log(tx, tenant).await?;
        }
        let now = clock::now();
        for chunk in events.chunks(EVENT_CHUNK) {
            let mut rows = Vec::with_capacity(chunk.len());
            for event in chunk {
                rows.push((
                    event,
                    to_json(&event.detail, "event detail")?,
                    clock::to_micros(event.at.unwrap_or(now)),
                ));
            }
            let mut insert = QueryBuilder::<Db>::new(
                "INSERT INTO plugin_events (tenant, plugin, version, kind, status, detail, at) ",
            );
            insert.push_values(rows, |mut values, (event, detail, at)| {
                values
                    .push_bind(event.tenant.as_str().to_owned())
                    .push_bind(event.plugin.as_ref().map(|p| p.as_str().to_owned()))
                    .push_bind(event.version.as_ref().map(ToString::to_string))
                    .push_bind(event.kind.as_str().to_owned())
                    .push_bind(event.status.as_str())
                    .push_bind(detail)
                    .push_bind(at);
            });
            insert
                .build()
                .execute(&mut **tx)
                .await
                .map_err(db_err(format!("appending {} events", chunk.len())))?;
        }
        Ok(())
    }

    /// The rows `select` finds for a plugin (`$1`, `$2`) and, when given, a
    /// version of it (`$3`).
    async fn fetch_of_plugin<T>(
        &self,
        select: &str,
        tenant: &TenantId,
        plugin: &PluginId,
        version: Option<&Version>,
        decode: fn(&DbRow) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut query = sqlx::query(select)
            .bind(tenant.as_str())
            .bind(plugin.as_str());
        if let Some(version) = version {
            query = query.bind(version.to_string());
        }
        let rows = query
            .fetch_all(self.reader())
            .await
            .map_err(db_err(format!(
                "reading from the registry for `{plugin}` of tenant `{tenant}`"
            )))?;
        rows.iter().map(decode).collect()
    }

    /// Runs an ordered `select` for up to `limit + 1` rows (the extra one
    /// tells whether there is a next page; see [`page::cut`]).
    async fn fetch_page<T>(
        &self,
        mut select: QueryBuilder<'_, Db>,
        limit: usize,
        decode: fn(&DbRow) -> Result<T>,
        context: impl FnOnce() -> String,
    ) -> Result<Vec<T>> {
        select
            .push(" LIMIT ")
            .push_bind(to_i64(limit as u64 + 1, "page size")?);
        let rows = select
            .build()
            .fetch_all(self.reader())
            .await
            .map_err(db_err(context()))?;
        rows.iter().map(decode).collect()
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
}

#[async_trait::async_trait]
impl RegistryStore for Store {
    fn info(&self) -> &StoreInfo {
        &self.info
    }

    async fn insert_plugin(&self, new: &NewPlugin) -> Result<PluginRecord> {
        let tenant = &new.tenant;
        let id = new.id();
        let version = new.version();
        let already_exists = || RegistryError::AlreadyExists {
            record: Record::Plugin,
            tenant: tenant.clone(),
            key: id.to_string(),
            hint: "; add a version to it, or delete it first",
        };
        let manifest = to_json(&new.manifest, "manifest")?;
        let verification = verification_json(new.verification.as_ref())?;
        let mut tx = self.begin_write().await?;
        if fetch_plugin(&mut *tx, tenant, id).await?.is_some() {
            return Err(already_exists());
        }
        require_artifact(&mut tx, tenant, new.artifact.as_ref()).await?;
        let now = clock::now();
        sqlx::query(
            "INSERT INTO plugin_versions \
             (tenant, plugin, version, manifest, artifact_sha256, installed_at, verification) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant, plugin, version) DO UPDATE SET manifest = excluded.manifest, \
             artifact_sha256 = excluded.artifact_sha256, installed_at = excluded.installed_at, \
             verification = excluded.verification",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(version.to_string())
        .bind(&manifest)
        .bind(new.artifact.map(|a| a.to_hex()))
        .bind(clock::to_micros(now))
        .bind(verification.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(db_err(format!("storing version {id}@{version}")))?;
        let inserted = sqlx::query(
            "INSERT INTO plugins (tenant, id, current_version, state, source_kind, source_ref, \
             enabled, last_error, created_at, updated_at, row_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $8, 1)",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(version.to_string())
        .bind(new.state.as_str())
        .bind(new.source.kind.as_str())
        .bind(&new.source.reference)
        .bind(new.enabled)
        .bind(clock::to_micros(now))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(already_exists()),
            other => other.map_err(db_err(format!("inserting plugin `{id}`")))?,
        };
        let record = PluginRecord {
            tenant: tenant.clone(),
            id: id.clone(),
            version: version.clone(),
            state: new.state,
            source: new.source.clone(),
            enabled: new.enabled,
            manifest: new.manifest.clone(),
            artifact: new.artifact,
            verification: new.verification.clone(),
            last_error: None,
            created_at: now,
            updated_at: now,
            row_version: 1,
        };
        self.insert_events(&mut tx, &[audit::installed(&record)])
            .await?;
        let change = self.change(tenant, Some(id), ChangeKind::PluginInserted, Some(1));
        self.commit(tx, vec![change], "inserting a plugin").await?;
        Ok(record)
    }

    async fn get_plugin(&self, tenant: &TenantId, id: &PluginId) -> Result<Option<PluginRecord>> {
        fetch_plugin(self.reader(), tenant, id).await
    }

    async fn list_tenants(&self) -> Result<Vec<TenantId>> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT tenant FROM plugins UNION SELECT tenant FROM plugin_events ORDER BY 1",
        )
        .fetch_all(self.reader())
        .await
        .map_err(db_err("listing the tenants".to_owned()))?;
        names.iter().map(|name| TenantId::new(name)).collect()
    }

    async fn list_plugins(&self, tenant: &TenantId, query: &PluginQuery) -> Result<PluginPage> {
        let limit = query.checked_limit()?;
        let mut select = QueryBuilder::<Db>::new(PLUGIN_SELECT);
        select.push(" WHERE p.tenant = ").push_bind(tenant.as_str());
        if !query.states.is_empty() {
            select.push(" AND p.state IN (");
            let mut states = select.separated(", ");
            for state in &query.states {
                states.push_bind(state.as_str());
            }
            select.push(")");
        }
        if let Some(enabled) = query.enabled {
            select.push(" AND p.enabled = ").push_bind(enabled);
        }
        if let Some(after) = &query.after {
            select.push(" AND p.id > ").push_bind(after.as_str());
        }
        select.push(" ORDER BY p.id");
        let mut plugins = self
            .fetch_page(select, limit, plugin_from_row, || {
                format!("listing the plugins of tenant `{tenant}`")
            })
            .await?;
        let next = page::cut(&mut plugins, limit, |p| p.id.clone());
        Ok(PluginPage { plugins, next })
    }

    async fn update_plugin(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        update: &PluginUpdate,
    ) -> Result<PluginRecord> {
        let expected = update.expected_row_version;
        let mut tx = self.begin_write().await?;
        let before = require_plugin(&mut tx, tenant, id).await?;
        if before.row_version != expected {
            return Err(RegistryError::Conflict {
                record: Record::Plugin,
                tenant: tenant.clone(),
                plugin: id.clone(),
                expected_row_version: expected,
                current_row_version: before.row_version,
            });
        }
        if let Some(version) = &update.current_version
            && !version_exists(&mut tx, tenant, id, version).await?
        {
            return Err(RegistryError::not_found(
                Record::Version,
                tenant,
                format!("{id}@{version}"),
            ));
        }
        let mut after = before.clone();
        update.apply(&mut after, clock::now());
        let last_error = after
            .last_error
            .as_ref()
            .map(|e| to_json(e, "last error"))
            .transpose()?;
        // The row version in the WHERE clause makes the write lose, not
        // overwrite, if another writer got in since `before` was read.
        let updated = sqlx::query(
            "UPDATE plugins SET current_version = $1, state = $2, source_kind = $3, \
             source_ref = $4, enabled = $5, last_error = $6, updated_at = $7, \
             row_version = row_version + 1 \
             WHERE tenant = $8 AND id = $9 AND row_version = $10",
        )
        .bind(after.version.to_string())
        .bind(after.state.as_str())
        .bind(after.source.kind.as_str())
        .bind(&after.source.reference)
        .bind(after.enabled)
        .bind(last_error)
        .bind(clock::to_micros(after.updated_at))
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(to_i64(expected, "row version")?)
        .execute(&mut *tx)
        .await
        .map_err(db_err(format!("updating plugin `{id}`")))?;
        if updated.rows_affected() == 0 {
            return Err(lost_race(&mut tx, Record::Plugin, tenant, id, expected).await);
        }
        // Reload: a new current version brings its manifest and artifact.
        let after = require_plugin(&mut tx, tenant, id).await?;
        self.insert_events(&mut tx, &audit::updated(&before, &after, update))
            .await?;
        let change = self.change(
            tenant,
            Some(id),
            ChangeKind::PluginUpdated,
            Some(after.row_version),
        );
        self.commit(tx, vec![change], "updating a plugin").await?;
        Ok(after)
    }

    async fn delete_plugin(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        options: &DeleteOptions,
    ) -> Result<DeleteReport> {
        let mut tx = self.begin_write().await?;
        let record = require_plugin(&mut tx, tenant, id).await?;
        let expected = options.expected_row_version.unwrap_or(record.row_version);
        if record.row_version != expected {
            return Err(RegistryError::Conflict {
                record: Record::Plugin,
                tenant: tenant.clone(),
                plugin: id.clone(),
                expected_row_version: expected,
                current_row_version: record.row_version,
            });
        }
        let deleted =
            sqlx::query("DELETE FROM plugins WHERE tenant = $1 AND id = $2 AND row_version = $3")
                .bind(tenant.as_str())
                .bind(id.as_str())
                .bind(to_i64(expected, "row version")?)
                .execute(&mut *tx)
                .await
                .map_err(db_err(format!("deleting plugin `{id}`")))?;
        if deleted.rows_affected() == 0 {
            return Err(lost_race(&mut tx, Record::Plugin, tenant, id, expected).await);
        }
        let purge = options.purge;
        let mut report = DeleteReport::default();
        let mut purge_table = async |table: &str, enabled: bool| -> Result<u64> {
            if !enabled {
                return Ok(0);
            }
            purge_rows(&mut tx, table, tenant, id).await
        };
        report.config_keys = purge_table("plugin_config", purge.config).await?;
        purge_table("plugin_config_revisions", purge.config).await?;
        report.kv_entries = purge_table("plugin_kv", purge.kv).await?;
        purge_table("plugin_kv_usage", purge.kv).await?;
        report.grants = purge_table("plugin_grants", purge.grants).await?;
        report.events = purge_table("plugin_events", purge.events).await?;
        purge_table("plugin_logs", purge.events).await?;
        purge_table("plugin_log_drops", purge.events).await?;
        if purge.versions {
            let artifacts: Vec<Option<String>> = sqlx::query_scalar(
                "DELETE FROM plugin_versions WHERE tenant = $1 AND plugin = $2 \
                 RETURNING artifact_sha256",
            )
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err(format!("purging the versions of plugin `{id}`")))?;
            report.versions = artifacts.len() as u64;
            let mut artifacts: Vec<String> = artifacts.into_iter().flatten().collect();
            artifacts.sort();
            artifacts.dedup();
            for sha in artifacts {
                let done = sqlx::query(
                    "DELETE FROM plugin_artifacts WHERE tenant = $1 AND sha256 = $2 \
                     AND NOT EXISTS (SELECT 1 FROM plugin_versions \
                     WHERE tenant = $1 AND artifact_sha256 = $2)",
                )
                .bind(tenant.as_str())
                .bind(&sha)
                .execute(&mut *tx)
                .await
                .map_err(db_err(format!("purging artifact sha256:{sha}")))?;
                report.artifacts += done.rows_affected();
            }
        }
        if !purge.events {
            let event = audit::removed(&record, purge_detail(&purge), clock::now());
            self.insert_events(&mut tx, &[event]).await?;
        }
        purge_rows(&mut tx, "plugin_leftovers", tenant, id).await?;
        if let Some(owner) = &options.leftovers_owner {
            sqlx::query(
                "INSERT INTO plugin_leftovers (tenant, plugin, owner, left_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(tenant.as_str())
            .bind(id.as_str())
            .bind(owner)
            .bind(clock::now().unix_timestamp())
            .execute(&mut *tx)
            .await
            .map_err(db_err(format!("recording who left what plugin `{id}` left")))?;
        }
        let change = self.change(tenant, Some(id), ChangeKind::PluginDeleted, None);
        self.commit(tx, vec![change], "deleting a plugin").await?;
        Ok(report)
    }

    async fn purge_leftovers(&self, tenant: &TenantId, id: &PluginId) -> Result<DeleteReport> {
        let mut tx = self.begin_write().await?;
        if fetch_plugin(&mut *tx, tenant, id).await?.is_some() {
            return Err(backend::still_installed(tenant, id));
        }
        let config_keys = purge_rows(&mut tx, "plugin_config", tenant, id).await?;
        purge_rows(&mut tx, "plugin_config_revisions", tenant, id).await?;
        let kv_entries = purge_rows(&mut tx, "plugin_kv", tenant, id).await?;
        purge_rows(&mut tx, "plugin_kv_usage", tenant, id).await?;
        let report = DeleteReport {
            config_keys,
            kv_entries,
            grants: purge_rows(&mut tx, "plugin_grants", tenant, id).await?,
            ..DeleteReport::default()
        };
        purge_rows(&mut tx, "plugin_leftovers", tenant, id).await?;
        self.commit(tx, Vec::new(), "purging what a plugin left")
            .await?;
        Ok(report)
    }

    async fn get_leftovers_owner(
        &self,
        tenant: &TenantId,
        id: &PluginId,
    ) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT owner FROM plugin_leftovers WHERE tenant = $1 AND plugin = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await
            .map_err(db_err(format!("reading who left what plugin `{id}` left")))
    }

    async fn add_version(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        new: &NewVersion,
    ) -> Result<VersionRecord> {
        plugin::check_manifest_id(id, &new.manifest)?;
        let version = &new.manifest.plugin.version;
        let already_exists = || RegistryError::AlreadyExists {
            record: Record::Version,
            tenant: tenant.clone(),
            key: format!("{id}@{version}"),
            hint: "; remove it first to replace it",
        };
        let manifest = to_json(&new.manifest, "manifest")?;
        let verification = verification_json(new.verification.as_ref())?;
        let mut tx = self.begin_write().await?;
        require_plugin(&mut tx, tenant, id).await?;
        if version_exists(&mut tx, tenant, id, version).await? {
            return Err(already_exists());
        }
        require_artifact(&mut tx, tenant, new.artifact.as_ref()).await?;
        let now = clock::now();
        let inserted = sqlx::query(
            "INSERT INTO plugin_versions \
             (tenant, plugin, version, manifest, artifact_sha256, installed_at, verification) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(version.to_string())
        .bind(&manifest)
        .bind(new.artifact.map(|a| a.to_hex()))
        .bind(clock::to_micros(now))
        .bind(verification.as_deref())
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(already_exists()),
            other => other.map_err(db_err(format!("adding version {id}@{version}")))?,
        };
        let event = audit::version(tenant, id, version, EventKind::VersionAdded, now);
        self.insert_events(&mut tx, &[event]).await?;
        let change = self.change(tenant, Some(id), ChangeKind::VersionsChanged, None);
        self.commit(tx, vec![change], "adding a version").await?;
        Ok(VersionRecord {
            tenant: tenant.clone(),
            plugin: id.clone(),
            version: version.clone(),
            manifest: new.manifest.clone(),
            artifact: new.artifact,
            verification: new.verification.clone(),
            installed_at: now,
            current: false,
        })
    }

    async fn get_version(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        version: &Version,
    ) -> Result<Option<VersionRecord>> {
        let sql =
            format!("{VERSION_SELECT} WHERE v.tenant = $1 AND v.plugin = $2 AND v.version = $3");
        Ok(self
            .fetch_of_plugin(&sql, tenant, id, Some(version), version_from_row)
            .await?
            .pop())
    }

    async fn list_versions(&self, tenant: &TenantId, id: &PluginId) -> Result<Vec<VersionRecord>> {
        let sql = format!("{VERSION_SELECT} WHERE v.tenant = $1 AND v.plugin = $2");
        let mut versions = self
            .fetch_of_plugin(&sql, tenant, id, None, version_from_row)
            .await?;
        versions.sort_by(|a, b| b.version.cmp(&a.version));
        Ok(versions)
    }

    async fn remove_version(
        &self,
        tenant: &TenantId,
        id: &PluginId,
        version: &Version,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if fetch_plugin(&mut *tx, tenant, id)
            .await?
            .is_some_and(|p| p.version == *version)
        {
            return Err(RegistryError::invalid(
                "version to remove",
                &format!("{id}@{version}"),
                "it is the current version; switch to another version first",
            ));
        }
        let deleted = sqlx::query(
            "DELETE FROM plugin_versions WHERE tenant = $1 AND plugin = $2 AND version = $3",
        )
        .bind(tenant.as_str())
        .bind(id.as_str())
        .bind(version.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err(format!("removing version {id}@{version}")))?;
        if deleted.rows_affected() == 0 {
            return Err(RegistryError::not_found(
                Record::Version,
                tenant,
                format!("{id}@{version}"),
            ));
        }
        let event = audit::version(tenant, id, version, EventKind::VersionRemoved, clock::now());
        self.insert_events(&mut tx, &[event]).await?;
        let change = self.change(tenant, Some(id), ChangeKind::VersionsChanged, None);
        self.commit(tx, vec![change], "removing a version").await
    }

    async fn put_artifact(&self, tenant: &TenantId, bytes: &[u8]) -> Result<ArtifactInfo> {
        let sha256 = Sha256Digest::of(bytes);
        let context = || format!("storing artifact sha256:{sha256} of tenant `{tenant}`");
        let mut tx = self.begin_write().await?;
        let now = clock::now();
        let inserted = sqlx::query(
            "INSERT INTO plugin_artifacts (tenant, sha256, size, content, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, sha256) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(sha256.to_hex())
        .bind(to_i64(bytes.len() as u64, "artifact size")?)
        .bind(bytes)
        .bind(clock::to_micros(now))
        .execute(&mut *tx)
        .await
        .map_err(db_err(context()))?;
        let newly_stored = inserted.rows_affected() == 1;
        let mut created_at = now;
        if !newly_stored {
            let row = sqlx::query(
                "SELECT content, created_at FROM plugin_artifacts WHERE tenant = $1 AND sha256 = $2",
            )
            .bind(tenant.as_str())
            .bind(sha256.to_hex())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err(context()))?;
            created_at = clock::from_micros(get(&row, "created_at")?)?;
            let stored: Vec<u8> = get(&row, "content")?;
            if Sha256Digest::of(&stored) != sha256 {
                tracing::warn!(%tenant, %sha256, "repairing a corrupt artifact with good bytes");
                sqlx::query("UPDATE plugin_artifacts SET content = $1, size = $2 WHERE tenant = $3 AND sha256 = $4")
                    .bind(bytes)
                    .bind(to_i64(bytes.len() as u64, "artifact size")?)
                    .bind(tenant.as_str())
                    .bind(sha256.to_hex())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err(context()))?;
            }
        }
        let changes = if newly_stored {
            vec![self.change(tenant, None, ChangeKind::ArtifactsChanged, None)]
        } else {
            Vec::new()
        };
        self.commit(tx, changes, "storing an artifact").await?;
        Ok(ArtifactInfo {
            sha256,
            size: bytes.len() as u64,
            created_at,
            newly_stored,
        })
    }

    async fn get_artifact(
        &self,
        tenant: &TenantId,
        sha256: &Sha256Digest,
    ) -> Result<Option<Vec<u8>>> {
        let content: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT content FROM plugin_artifacts WHERE tenant = $1 AND sha256 = $2",
        )
        .bind(tenant.as_str())
        .bind(sha256.to_hex())
        .fetch_optional(self.reader())
        .await
        .map_err(db_err(format!(
            "reading artifact sha256:{sha256} of tenant `{tenant}`"
        )))?;
        content
            .map(|bytes| verified(tenant, sha256, bytes))
            .transpose()
    }

    async fn delete_unused_artifacts(&self, tenant: &TenantId) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(
            "DELETE FROM plugin_artifacts WHERE tenant = $1 AND NOT EXISTS \
             (SELECT 1 FROM plugin_versions v WHERE v.tenant = plugin_artifacts.tenant \
             AND v.artifact_sha256 = plugin_artifacts.sha256)",
        )
        .bind(tenant.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err(format!(
            "deleting unused artifacts of tenant `{tenant}`"
        )))?
        .rows_affected();
        let changes = if deleted > 0 {
            vec![self.change(tenant, None, ChangeKind::ArtifactsChanged, None)]
        } else {
            Vec::new()
        };
        self.commit(tx, changes, "deleting unused artifacts")
            .await?;
        Ok(deleted)
    }

    async fn append_events(&self, events: &[NewEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        for event in events {
            event.kind.check()?;
        }
        let mut tx = self.begin_write().await?;
        self.insert_events(&mut tx, events).await?;
        let changes = audit::events_appended(self.info.instance, events);
        self.commit(tx, changes, "appending events").await
    }

    async fn list_events(&self, tenant: &TenantId, query: &EventQuery) -> Result<EventPage> {
        let limit = query.checked_limit()?;
        let mut select = QueryBuilder::<Db>::new(EVENT_SELECT);
        select.push(" WHERE tenant = ").push_bind(tenant.as_str());
        if let Some(plugin) = &query.plugin {
            select.push(" AND plugin = ").push_bind(plugin.as_str());
        }
        if !query.kinds.is_empty() {
            select.push(" AND kind IN (");
            let mut kinds = select.separated(", ");
            for kind in &query.kinds {
                kinds.push_bind(kind.as_str().to_owned());
            }
            select.push(")");
        }
        if let Some(since) = query.since {
            select
                .push(" AND at >= ")
                .push_bind(clock::to_micros(since));
        }
        if let Some(until) = query.until {
            select.push(" AND at < ").push_bind(clock::to_micros(until));
        }
        let (comparison, order) = match query.order {
            EventOrder::NewestFirst => (" AND id < ", " ORDER BY id DESC"),
            EventOrder::OldestFirst => (" AND id > ", " ORDER BY id ASC"),
        };
        if let Some(after) = query.after {
            select.push(comparison).push_bind(after.position());
        }
        select.push(order);
        let mut events = self
            .fetch_page(select, limit, event_from_row, || {
                format!("listing the events of tenant `{tenant}`")
            })
            .await?;
        let next = page::cut(&mut events, limit, |e| e.cursor);
        Ok(EventPage { events, next })
    }

    async fn latest_event_cursor(&self, tenant: &TenantId) -> Result<Option<EventCursor>> {
        let latest: Option<i64> =
            sqlx::query_scalar("SELECT MAX(id) FROM plugin_events WHERE tenant = $1")
                .bind(tenant.as_str())
                .fetch_one(self.reader())
                .await
                .map_err(db_err(format!(
                    "reading the event log of tenant `{tenant}`"
                )))?;
        Ok(latest.map(EventCursor))
    }

    async fn prune_events(&self, tenant: &TenantId, older_than: OffsetDateTime) -> Result<u64> {
        self.delete_events(
            tenant,
            "DELETE FROM plugin_events WHERE tenant = $1 AND at < $2",
            clock::to_micros(older_than),
        )
        .await
    }

    async fn prune_events_beyond(&self, tenant: &TenantId, keep: u64) -> Result<u64> {
        // The id of the newest event not kept (none when there are `keep`
        // or fewer): it and everything older go.
        self.delete_events(
            tenant,
            "DELETE FROM plugin_events WHERE tenant = $1 AND id <= \
             (SELECT id FROM plugin_events WHERE tenant = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
            i64::try_from(keep).unwrap_or(i64::MAX),
        )
        .await
    }

    async fn append_logs(&self, logs: &[NewLog], keep: u64) -> Result<u64> {
        if logs.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        // Appends of one tenant are serialized like its events, so a reader
        // following the lines after an id never skips one.
        let mut touched: Vec<(&TenantId, &PluginId)> =
            logs.iter().map(|l| (&l.tenant, &l.plugin)).collect();
        touched.sort();
        touched.dedup();
        let mut tenants: Vec<&TenantId> = touched.iter().map(|(t, _)| *t).collect();
        tenants.dedup();
        for tenant in tenants {
            self.lock_event_log(&mut tx, tenant).await?;
        }
        for chunk in logs.chunks(LOG_CHUNK) {
            let mut rows = Vec::with_capacity(chunk.len());
            for log in chunk {
                rows.push((log, to_json(&log.fields, "log fields")?));
            }
            let mut insert = QueryBuilder::<Db>::new(
                "INSERT INTO plugin_logs (tenant, plugin, level, message, fields, at) ",
            );
            insert.push_values(rows, |mut values, (log, fields)| {
                values
                    .push_bind(log.tenant.as_str().to_owned())
                    .push_bind(log.plugin.as_str().to_owned())
                    .push_bind(log.level.rank())
                    .push_bind(log.message.clone())
                    .push_bind(fields)
                    .push_bind(clock::to_micros(log.at));
            });
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(db_err(format!("keeping {} log lines", chunk.len())))?;
        }
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let mut dropped = 0;
        for (tenant, plugin) in touched {
            // The id of the newest line not kept (none when there are `keep`
            // or fewer): it and every older line of the plugin go.
            let gone = sqlx::query(
                "DELETE FROM plugin_logs WHERE tenant = $1 AND plugin = $2 AND id <= \
                 (SELECT id FROM plugin_logs WHERE tenant = $1 AND plugin = $2 \
                 ORDER BY id DESC LIMIT 1 OFFSET $3)",
            )
            .bind(tenant.as_str())
            .bind(plugin.as_str())
            .bind(keep)
            .execute(&mut *tx)
            .await
            .map_err(db_err(format!("dropping old log lines of `{plugin}`")))?
            .rows_affected();
            if gone > 0 {
                sqlx::query(
                    "INSERT INTO plugin_log_drops (tenant, plugin, dropped) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant, plugin) \
                     DO UPDATE SET dropped = plugin_log_drops.dropped + excluded.dropped",
                )
                .bind(tenant.as_str())
                .bind(plugin.as_str())
                .bind(to_i64(gone, "dropped log lines")?)
                .execute(&mut *tx)
                .await
                .map_err(db_err(format!("counting dropped log lines of `{plugin}`")))?;
                dropped += gone;
            }
        }
        self.commit(tx, Vec::new(), "keeping log lines").await?;
        Ok(dropped)
    }

    async fn list_logs(&self, tenant: &TenantId, query: &LogQuery) -> Result<LogPage> {
        let limit = query.checked_limit()?;
        let mut select = QueryBuilder::<Db>::new(LOG_SELECT);
        select.push(" WHERE tenant = ").push_bind(tenant.as_str());
        if let Some(plugin) = &query.plugin {
            select.push(" AND plugin = ").push_bind(plugin.as_str());
        }
        if let Some(level) = query.level {
            select.push(" AND level >= ").push_bind(level.rank());
        }
        if let Some(since) = query.since {
            select
                .push(" AND at >= ")
                .push_bind(clock::to_micros(since));
        }
        match query.after {
            Some(after) => {
                select.push(" AND id > ").push_bind(after).push(" ORDER BY id ASC");
            }
            None => {
                select.push(" ORDER BY id DESC");
            }
        }
        select
            .push(" LIMIT ")
            .push_bind(to_i64(limit as u64, "page size")?);
        let rows = select
            .build()
            .fetch_all(self.reader())
            .await
            .map_err(db_err(format!("reading the log lines of tenant `{tenant}`")))?;
        let mut logs = rows.iter().map(log_from_row).collect::<Result<Vec<_>>>()?;
        if query.after.is_none() {
            logs.reverse();
        }
        let mut drops = QueryBuilder::<Db>::new(
            "SELECT CAST(COALESCE(SUM(dropped), 0) AS BIGINT) FROM plugin_log_drops WHERE tenant = ",
        );
        drops.push_bind(tenant.as_str());
        if let Some(plugin) = &query.plugin {
            drops.push(" AND plugin = ").push_bind(plugin.as_str());
        }
        let dropped: i64 = drops
            .build_query_scalar()
            .fetch_one(self.reader())
            .await
            .map_err(db_err(format!("reading the log drops of tenant `{tenant}`")))?;
        Ok(LogPage {
            logs,
            dropped: to_u64(dropped, "dropped log lines")?,
        })
    }

    async fn get_config(&self, tenant: &TenantId, plugin: &PluginId) -> Result<PluginConfig> {
        fetch_config(self.reader(), tenant, plugin, None).await
    }

    async fn get_config_revealed(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
    ) -> Result<PluginConfig> {
        let key = self
            .secret_key()
            .ok_or_else(|| RegistryError::SecretKeyMissing {
                action: format!("reveal the secrets of `{plugin}`"),
            })?;
        fetch_config(self.reader(), tenant, plugin, Some(key)).await
    }

    async fn update_config(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        change: &ConfigChange,
    ) -> Result<PluginConfig> {
        change.check(self.secret_key())?;
        let stored = config::encode_values(self.secret_key(), tenant, plugin, change)?;
        let context = || format!("changing the config of `{plugin}` in tenant `{tenant}`");
        let mut tx = self.begin_write().await?;
        // Bumping the revision first locks the plugin's config against other
        // writers until commit.
        let revision: i64 = sqlx::query_scalar(
            "INSERT INTO plugin_config_revisions (tenant, plugin, revision) VALUES ($1, $2, 1) \
             ON CONFLICT (tenant, plugin) \
             DO UPDATE SET revision = plugin_config_revisions.revision + 1 \
             RETURNING revision",
        )
        .bind(tenant.as_str())
        .bind(plugin.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err(context()))?;
        let revision = to_u64(revision, "a config revision")?;
        if let Some(expected) = change.expected_revision
            && expected != revision - 1
        {
            return Err(RegistryError::Conflict {
                record: Record::Config,
                tenant: tenant.clone(),
                plugin: plugin.clone(),
                expected_row_version: expected,
                current_row_version: revision - 1,
            });
        }
        let now = clock::to_micros(clock::now());
        for (key, value) in &stored {
            let (plain, sealed, fingerprint) = match value {
                StoredValue::Plain(text) => (Some(text.as_str()), None, None),
                StoredValue::Secret {
                    sealed,
                    fingerprint,
                } => (None, Some(sealed.as_slice()), Some(fingerprint.to_string())),
            };
            sqlx::query(
                "INSERT INTO plugin_config \
                 (tenant, plugin, key, value, secret, key_fingerprint, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (tenant, plugin, key) DO UPDATE SET value = excluded.value, \
                 secret = excluded.secret, key_fingerprint = excluded.key_fingerprint, \
                 updated_at = excluded.updated_at",
            )
            .bind(tenant.as_str())
            .bind(plugin.as_str())
            .bind(key)
            .bind(plain)
            .bind(sealed)
            .bind(fingerprint)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err(context()))?;
        }
        for key in &change.unset {
            sqlx::query("DELETE FROM plugin_config WHERE tenant = $1 AND plugin = $2 AND key = $3")
                .bind(tenant.as_str())
                .bind(plugin.as_str())
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(db_err(context()))?;
        }
        let event = audit::config_changed(tenant, plugin, change, revision, clock::now());
        self.insert_events(&mut tx, &[event]).await?;
        let config = fetch_config(&mut *tx, tenant, plugin, None).await?;
        let announce = self.change(
            tenant,
            Some(plugin),
            ChangeKind::ConfigChanged,
            Some(revision),
        );
        self.commit(tx, vec![announce], "changing config").await?;
        Ok(config)
    }

    async fn put_grant(&self, new: &NewGrant) -> Result<Grant> {
        let tenant = &new.tenant;
        let plugin = &new.plugin;
        let grant = Grant {
            tenant: tenant.clone(),
            plugin: plugin.clone(),
            version: new.version.clone(),
            permissions: new.permissions.clone(),
            granted_by: new.granted_by.clone(),
            granted_at: clock::now(),
        };
        let permissions = to_json(&grant.permissions, "granted permissions")?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO plugin_grants \
             (tenant, plugin, version, permissions, granted_by, granted_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant, plugin, version) DO UPDATE SET \
             permissions = excluded.permissions, granted_by = excluded.granted_by, \
             granted_at = excluded.granted_at",
        )
        .bind(tenant.as_str())
        .bind(plugin.as_str())
        .bind(grant.version.to_string())
        .bind(permissions)
        .bind(&grant.granted_by)
        .bind(clock::to_micros(grant.granted_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err(format!(
            "recording a grant for {plugin}@{}",
            grant.version
        )))?;
        self.insert_events(&mut tx, &[audit::granted(&grant)])
            .await?;
        let change = self.change(tenant, Some(plugin), ChangeKind::GrantsChanged, None);
        self.commit(tx, vec![change], "recording a grant").await?;
        Ok(grant)
    }

    async fn get_publisher_key(
        &self,
        tenant: &TenantId,
        publisher: &str,
    ) -> Result<Option<PublisherKey>> {
        let row = sqlx::query(&format!(
            "{PUBLISHER_SELECT} WHERE tenant = $1 AND publisher = $2"
        ))
        .bind(tenant.as_str())
        .bind(publisher)
        .fetch_optional(self.reader())
        .await
        .map_err(db_err(format!(
            "reading the key of publisher `{publisher}`"
        )))?;
        row.as_ref().map(publisher_from_row).transpose()
    }

    async fn put_publisher_key(&self, new: &NewPublisherKey) -> Result<PublisherKey> {
        let key = backend::bound(new, clock::now());
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO publisher_keys \
             (tenant, publisher, public_key, key_id, bound_by, bound_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant, publisher) DO UPDATE SET public_key = excluded.public_key, \
             key_id = excluded.key_id, bound_by = excluded.bound_by, bound_at = excluded.bound_at",
        )
        .bind(key.tenant.as_str())
        .bind(&key.publisher)
        .bind(&key.public_key)
        .bind(&key.key_id)
        .bind(&key.bound_by)
        .bind(clock::to_micros(key.bound_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err(format!("binding publisher `{}`", key.publisher)))?;
        self.commit(tx, Vec::new(), "binding a publisher").await?;
        Ok(key)
    }

    async fn list_publisher_keys(&self, tenant: &TenantId) -> Result<Vec<PublisherKey>> {
        let rows = sqlx::query(&format!(
            "{PUBLISHER_SELECT} WHERE tenant = $1 ORDER BY publisher"
        ))
        .bind(tenant.as_str())
        .fetch_all(self.reader())
        .await
        .map_err(db_err("listing publisher keys".to_owned()))?;
        rows.iter().map(publisher_from_row).collect()
    }

    async fn insert_api_token(&self, new: &NewApiToken) -> Result<ApiToken> {
        let token = backend::token_made(new, clock::now());
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO api_tokens (tenant, name, role, token_sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token.tenant.as_str())
        .bind(&token.name)
        .bind(&token.role)
        .bind(&token.token_sha256)
        .bind(clock::to_micros(token.created_at))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(backend::token_exists(new)),
            other => other.map_err(db_err(format!("recording API token `{}`", new.name)))?,
        };
        self.commit(tx, Vec::new(), "recording an API token").await?;
        Ok(token)
    }

    async fn find_api_token(
        &self,
        tenant: &TenantId,
        token_sha256: &str,
    ) -> Result<Option<ApiToken>> {
        let row = sqlx::query(&format!(
            "{TOKEN_SELECT} WHERE tenant = $1 AND token_sha256 = $2"
        ))
        .bind(tenant.as_str())
        .bind(token_sha256)
        .fetch_optional(self.reader())
        .await
        .map_err(db_err("looking up an API token".to_owned()))?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn list_api_tokens(&self, tenant: &TenantId) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(&format!("{TOKEN_SELECT} WHERE tenant = $1 ORDER BY name"))
            .bind(tenant.as_str())
            .fetch_all(self.reader())
            .await
            .map_err(db_err("listing API tokens".to_owned()))?;
        rows.iter().map(token_from_row).collect()
    }

    async fn delete_api_token(&self, tenant: &TenantId, name: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM api_tokens WHERE tenant = $1 AND name = $2")
            .bind(tenant.as_str())
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(db_err(format!("deleting API token `{name}`")))?
            .rows_affected();
        self.commit(tx, Vec::new(), "deleting an API token").await?;
        Ok(deleted > 0)
    }

    async fn get_grant(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        version: &Version,
    ) -> Result<Option<Grant>> {
        let sql = format!("{GRANT_SELECT} WHERE tenant = $1 AND plugin = $2 AND version = $3");
        Ok(self
            .fetch_of_plugin(&sql, tenant, plugin, Some(version), grant_from_row)
            .await?
            .pop())
    }

    async fn list_grants(&self, tenant: &TenantId, plugin: &PluginId) -> Result<Vec<Grant>> {
        let sql = format!("{GRANT_SELECT} WHERE tenant = $1 AND plugin = $2");
        let mut grants = self
            .fetch_of_plugin(&sql, tenant, plugin, None, grant_from_row)
            .await?;
        sort_grants(&mut grants);
        Ok(grants)
    }

    async fn revoke_grant(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        version: &Version,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(
            "DELETE FROM plugin_grants WHERE tenant = $1 AND plugin = $2 AND version = $3",
        )
        .bind(tenant.as_str())
        .bind(plugin.as_str())
        .bind(version.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err(format!("revoking the grant of {plugin}@{version}")))?
        .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        let event = audit::grant_revoked(tenant, plugin, version, clock::now());
        self.insert_events(&mut tx, &[event]).await?;
        let change = self.change(tenant, Some(plugin), ChangeKind::GrantsChanged, None);
        self.commit(tx, vec![change], "revoking a grant").await?;
        Ok(true)
    }

    async fn kv_get(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        key: &str,
    ) -> Result<Option<Vec<u8>>> {
        kv::check_key(key)?;
        sqlx::query_scalar(
            "SELECT value FROM plugin_kv WHERE tenant = $1 AND plugin = $2 AND key = $3",
        )
        .bind(tenant.as_str())
        .bind(plugin.as_str())
        .bind(key.as_bytes())
        .fetch_optional(self.reader())
        .await
        .map_err(db_err(format!("reading kv key `{key}` of `{plugin}`")))
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
        let context = || format!("writing kv key `{key}` of `{plugin}` in tenant `{tenant}`");
        let mut tx = self.begin_write().await?;
        // Touching the usage row first locks the plugin's KV until commit,
        // so concurrent writers cannot both fit under the quota.
        let usage = sqlx::query(
            "INSERT INTO plugin_kv_usage (tenant, plugin, bytes, entries) VALUES ($1, $2, 0, 0) \
             ON CONFLICT (tenant, plugin) DO UPDATE SET bytes = plugin_kv_usage.bytes \
             RETURNING bytes, entries",
        )
        .bind(tenant.as_str())
        .bind(plugin.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err(context()))?;
        let used = to_u64(get(&usage, "bytes")?, "kv usage")?;
        let keys = to_u64(get(&usage, "entries")?, "kv usage")?;
        let old: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(length(key) + length(value) AS BIGINT) FROM plugin_kv \
             WHERE tenant = $1 AND plugin = $2 AND key = $3",
        )
        .bind(tenant.as_str())
        .bind(plugin.as_str())
        .bind(key.as_bytes())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err(context()))?;
        let old = old.map(|size| to_u64(size, "kv entry size")).transpose()?;
        let needed = used.saturating_sub(old.unwrap_or(0)) + kv::entry_size(key, value);
        // Dropping the transaction on an error rolls back: nothing is stored.
        quota.check_new_key(tenant, plugin, keys, old.is_none())?;
        if needed > quota.max_bytes {
            // Dropping the transaction rolls back: nothing is stored.
            return Err(RegistryError::QuotaExceeded {
                tenant: tenant.clone(),
                plugin: plugin.clone(),
                quota: quota.max_bytes,
                used,
                needed,
            });
        }
        sqlx::query(
            "INSERT INTO plugin_kv (tenant, plugin, key, value) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant, plugin, key) DO UPDATE SET value = excluded.value",
        )
        .bind(tenant.as_str())
        .bind(plugin.as_str())
        .bind(key.as_bytes())
        .bind(value)
        .execute(&mut *tx)
        .await
        .map_err(db_err(context()))?;
        let usage = KvUsage {
            bytes: needed,
            keys: keys + u64::from(old.is_none()),
        };
        sqlx::query(
            "UPDATE plugin_kv_usage SET bytes = $1, entries = $2 WHERE tenant = $3 AND plugin = $4",
        )
        .bind(to_i64(usage.bytes, "kv usage")?)
        .bind(to_i64(usage.keys, "kv usage")?)
        .bind(tenant.as_str())
        .bind(plugin.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err(context()))?;
        self.commit(tx, Vec::new(), "writing kv").await?;
        Ok(usage)
    }

    async fn kv_delete(&self, tenant: &TenantId, plugin: &PluginId, key: &str) -> Result<bool> {
        kv::check_key(key)?;
        let context = || format!("deleting kv key `{key}` of `{plugin}` in tenant `{tenant}`");
        let mut tx = self.begin_write().await?;
        let size: Option<i64> = sqlx::query_scalar(
            "DELETE FROM plugin_kv WHERE tenant = $1 AND plugin = $2 AND key = $3 \
             RETURNING CAST(length(key) + length(value) AS BIGINT)",
        )
        .bind(tenant.as_str())
        .bind(plugin.as_str())
        .bind(key.as_bytes())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err(context()))?;
        let Some(size) = size else {
            return Ok(false);
        };
        sqlx::query(
            "UPDATE plugin_kv_usage SET bytes = bytes - $1, entries = entries - 1 \
             WHERE tenant = $2 AND plugin = $3",
        )
        .bind(size)
        .bind(tenant.as_str())
        .bind(plugin.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err(context()))?;
        self.commit(tx, Vec::new(), "deleting kv").await?;
        Ok(true)
    }

    async fn kv_list(
        &self,
        tenant: &TenantId,
        plugin: &PluginId,
        list: &KvList,
    ) -> Result<Vec<String>> {
        let limit = list.checked_limit()?;
        let (lower, exclusive, upper) = list.range();
        let mut select = QueryBuilder::<Db>::new("SELECT key FROM plugin_kv WHERE tenant = ");
        select
            .push_bind(tenant.as_str())
            .push(" AND plugin = ")
            .push_bind(plugin.as_str())
            .push(if exclusive {
                " AND key > "
            } else {
                " AND key >= "
            })
            .push_bind(lower);
        if let Some(upper) = upper {
            select.push(" AND key < ").push_bind(upper);
        }
        select
            .push(" ORDER BY key LIMIT ")
            .push_bind(to_i64(limit as u64, "page size")?);
        let keys: Vec<Vec<u8>> = select
            .build_query_scalar()
            .fetch_all(self.reader())
            .await
            .map_err(db_err(format!("listing the kv keys of `{plugin}`")))?;
        keys.iter().map(|k| kv_key(k)).collect()
    }

    async fn kv_usage(&self, tenant: &TenantId, plugin: &PluginId) -> Result<KvUsage> {
        let row = sqlx::query(
            "SELECT bytes, entries FROM plugin_kv_usage WHERE tenant = $1 AND plugin = $2",
        )
        .bind(tenant.as_str())
        .bind(plugin.as_str())
        .fetch_optional(self.reader())
        .await
        .map_err(db_err(format!("reading the kv usage of `{plugin}`")))?;
        match row {
            None => Ok(KvUsage::default()),
            Some(row) => Ok(KvUsage {
                bytes: to_u64(get(&row, "bytes")?, "kv usage")?,
                keys: to_u64(get(&row, "entries")?, "kv usage")?,
            }),
        }
    }

    async fn subscribe_changes(&self) -> Result<ChangeSubscription> {
        self.subscribe().await
    }
}
