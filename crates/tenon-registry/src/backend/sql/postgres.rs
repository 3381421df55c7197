//! The PostgreSQL backend: a registry shared by a fleet of hosts. Changes
//! are announced with `NOTIFY` in the transaction that makes them (so they
//! are delivered if and only if it commits), and a dedicated `LISTEN`
//! connection per store feeds them to subscribers, reconnecting when lost.

use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use tokio::sync::{OnceCell, broadcast};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::backend::sql::{db_err, known_versions, migrate_err};
use crate::change::{Change, ChangeHub, ChangeSubscription, FeedItem};
use crate::error::{RegistryError, Result};
use crate::open::{RegistryOptions, redact_url};
use crate::schema::{self, Applied};
use crate::secret::SecretKey;
use crate::store::{BackendKind, StoreInfo};
use crate::tenant::TenantId;

type Db = sqlx::Postgres;
type Store = PostgresStore;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The longest a PostgreSQL identifier (and a NOTIFY channel) may be.
const MAX_IDENTIFIER: usize = 63;

/// A registry in a PostgreSQL database, shared by many hosts.
///
/// Open it with [`PostgresStore::connect`] or [`open`](crate::open). Its
/// change feed carries the changes of every store on the same database and
/// schema, within milliseconds of their commit.
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    connect_options: PgConnectOptions,
    /// The NOTIFY channel of this registry (one per schema).
    channel: String,
    /// The schema the tables live in.
    schema: String,
    hub: ChangeHub,
    info: StoreInfo,
    secret_key: Option<SecretKey>,
    acquire_timeout: Duration,
    feed: OnceCell<()>,
    feed_task: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl PostgresStore {
    /// Connects to the database at `url`, creates
    /// [`RegistryOptions::postgres_schema`] if it is missing, and migrates.
    ///
    /// Fails with [`RegistryError::NewerSchema`] if a newer Tenon migrated
    /// it, before writing anything to it.
    pub async fn connect(url: &str, options: &RegistryOptions) -> Result<Self> {
        let location = redact_url(url);
        let connecting = || format!("connecting to the PostgreSQL registry at {location}");
        let mut connect_options = PgConnectOptions::from_str(url)
            .map_err(|e| RegistryError::invalid("PostgreSQL URL", &location, e.to_string()))?
            .application_name("tenon-registry");
        if let Some(schema) = &options.postgres_schema {
            check_schema_name(schema)?;
            create_schema(&connect_options, schema, &location).await?;
            connect_options = connect_options.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect_options.clone())
            .await
            .map_err(db_err(connecting()))?;
        let schema: Option<String> = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await
            .map_err(db_err(connecting()))?;
        let schema = schema.ok_or_else(|| RegistryError::SchemaMismatch {
            location: location.clone(),
            detail: "no schema of the search_path exists; set RegistryOptions::postgres_schema"
                .to_owned(),
        })?;
        let location = format!("{location} (schema {schema})");
        check_history(&pool, &location).await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| migrate_err(&location, e))?;
        let schema_version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
                .fetch_one(&pool)
                .await
                .map_err(db_err(format!("reading the schema version at {location}")))?;
        Ok(Self {
            pool,
            connect_options,
            channel: channel_name(&schema),
            schema,
            hub: ChangeHub::new(options.change_capacity),
            info: StoreInfo {
                backend: BackendKind::Postgres,
                location,
                schema_version: schema_version.unwrap_or(0),
                instance: Uuid::new_v4(),
            },
            secret_key: options.secret_key.clone(),
            acquire_timeout: options.acquire_timeout,
            feed: OnceCell::new(),
            feed_task: parking_lot::Mutex::new(None),
        })
    }

    /// Closes the connections and stops the change feed.
    pub async fn close(&self) {
        if let Some(task) = self.feed_task.lock().take() {
            task.abort();
        }
        self.pool.close().await;
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Db>> {
        self.pool.begin().await.map_err(db_err(format!(
            "starting a write to the PostgreSQL registry at {}",
            self.info.location
        )))
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn secret_key(&self) -> Option<&SecretKey> {
        self.secret_key.as_ref()
    }

    /// Serializes a tenant's appends until commit, so that event ids commit
    /// in the order they were drawn and followers never skip one.
    async fn lock_event_log(
        &self,
        tx: &mut sqlx::Transaction<'static, Db>,
        tenant: &TenantId,
    ) -> Result<()> {
        let mut hash = Sha256::new();
        hash.update(b"tenon-registry event log\0");
        hash.update(self.schema.as_bytes());
        hash.update([0]);
        hash.update(tenant.as_str().as_bytes());
        let digest = hash.finalize();
        let key = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut **tx)
            .await
            .map_err(db_err(format!(
                "locking the event log of tenant `{tenant}`"
            )))?;
        Ok(())
    }

    async fn commit(
        &self,
        mut tx: sqlx::Transaction<'static, Db>,
        changes: Vec<Change>,
        context: &str,
    ) -> Result<()> {
        let committing = || {
            format!(
                "committing ({context}) to the PostgreSQL registry at {}",
                self.info.location
            )
        };
        // Queued in the transaction: delivered to listeners at commit, and
        // never if it rolls back.
        for change in &changes {
            let payload = serde_json::to_string(change)
                .map_err(|e| RegistryError::invalid("change", context, e.to_string()))?;
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&self.channel)
                .bind(payload)
                .execute(&mut *tx)
                .await
                .map_err(db_err(committing()))?;
        }
        tx.commit().await.map_err(db_err(committing()))
    }

    async fn subscribe(&self) -> Result<ChangeSubscription> {
        // Subscribe before the listener can deliver anything.
        let subscription = self.hub.subscribe();
        self.feed
            .get_or_try_init(|| async {
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(self.acquire_timeout)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_lazy_with(
                        self.connect_options
                            .clone()
                            .application_name(&feed_application_name(self.info.instance)),
                    );
                let listener = listen(&pool, &self.channel).await?;
                let task = tokio::spawn(run_feed(
                    listener,
                    pool,
                    self.channel.clone(),
                    self.hub.sender(),
                ));
                *self.feed_task.lock() = Some(task);
                Ok::<(), RegistryError>(())
            })
            .await?;
        Ok(subscription)
    }

    /// The pool, for tests that look behind the store.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(task) = self.feed_task.get_mut().take() {
            task.abort();
        }
    }
}

/// What the feed connection calls itself, so operators (and tests) can tell
/// it apart in `pg_stat_activity`.
pub(crate) fn feed_application_name(instance: Uuid) -> String {
    format!("tenon-feed-{instance}")
}

async fn listen(pool: &PgPool, channel: &str) -> Result<PgListener> {
    let listening = || format!("listening for registry changes on channel `{channel}`");
    let mut listener = PgListener::connect_with(pool)
        .await
        .map_err(db_err(listening()))?;
    listener.ignore_pool_close_event(true);
    listener
        .listen(channel)
        .await
        .map_err(db_err(listening()))?;
    Ok(listener)
}

/// Forwards notifications to subscribers until the store is dropped. A lost
/// connection is re-established (with backoff) and reported as an
/// interruption, since notifications sent meanwhile are gone.
async fn run_feed(
    mut listener: PgListener,
    pool: PgPool,
    channel: String,
    sender: broadcast::Sender<FeedItem>,
) {
    const MIN_BACKOFF: Duration = Duration::from_millis(50);
    const MAX_BACKOFF: Duration = Duration::from_secs(5);
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                match serde_json::from_str::<Change>(notification.payload()) {
                    Ok(change) => {
                        let _ = sender.send(FeedItem::Change(change));
                    }
                    Err(error) => {
                        tracing::warn!(%channel, %error, "ignoring a malformed registry change notification");
                    }
                }
            }
            Ok(None) => {
                // sqlx reconnected and listens again.
                let _ = sender.send(FeedItem::Interrupted(
                    "the PostgreSQL connection of the change feed was lost and re-established"
                        .to_owned(),
                ));
            }
            Err(error) => {
                tracing::warn!(%channel, %error, "the registry change feed lost its connection; reconnecting");
                drop(listener);
                let mut backoff = MIN_BACKOFF;
                listener = loop {
                    tokio::time::sleep(backoff).await;
                    match listen(&pool, &channel).await {
                        Ok(listener) => break listener,
                        Err(error) => {
                            tracing::warn!(%channel, %error, "reconnecting the registry change feed");
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                };
                let _ = sender.send(FeedItem::Interrupted(format!(
                    "the PostgreSQL connection of the change feed failed ({error}) and was re-established"
                )));
            }
        }
    }
}

/// The NOTIFY channel of the registry in `schema`.
fn channel_name(schema: &str) -> String {
    let channel = format!("tenon_registry.{schema}");
    if channel.len() <= MAX_IDENTIFIER {
        return channel;
    }
    let digest = Sha256::digest(schema.as_bytes());
    format!("tenon_registry.{}", hex::encode(&digest[..16]))
}

fn check_schema_name(schema: &str) -> Result<()> {
    let mut chars = schema.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= MAX_IDENTIFIER;
    if !valid {
        return Err(RegistryError::invalid(
            "PostgreSQL schema",
            schema,
            "a schema name is 1 to 63 of a-z, 0-9 and '_', not starting with a digit",
        ));
    }
    Ok(())
}

async fn create_schema(options: &PgConnectOptions, schema: &str, location: &str) -> Result<()> {
    let creating =
        || format!("creating schema `{schema}` in the PostgreSQL registry at {location}");
    let mut connection = PgConnection::connect_with(options)
        .await
        .map_err(db_err(creating()))?;
    // The name was checked: it needs no quoting beyond this.
    let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .execute(&mut connection)
        .await;
    let _ = connection.close().await;
    match created {
        Ok(_) => Ok(()),
        // Two hosts creating it at once: the other one won.
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("42P06") => {
            Ok(())
        }
        Err(e) if crate::backend::sql::is_unique_violation(&e) => Ok(()),
        Err(e) => Err(db_err(creating())(e)),
    }
}

/// Refuses a database whose migration history this build does not know,
/// reading only.
async fn check_history(pool: &PgPool, location: &str) -> Result<()> {
    let reading = || format!("reading the schema history of the PostgreSQL registry at {location}");
    let has_history: bool =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(pool)
            .await
            .map_err(db_err(reading()))?;
    if !has_history {
        return Ok(());
    }
    let applied: Vec<(i64, bool)> = sqlx::query_as("SELECT version, success FROM _sqlx_migrations")
        .fetch_all(pool)
        .await
        .map_err(db_err(reading()))?;
    let applied: Vec<Applied> = applied
        .into_iter()
        .map(|(version, success)| Applied { version, success })
        .collect();
    schema::check_history(location, &known_versions(&MIGRATOR), &applied)
}

mod store_impl {
    use super::{Db, Store};

    include!("shared_store.rs");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_schemas() {
        assert_eq!(channel_name("public"), "tenon_registry.public");
        let long = "s".repeat(63);
        assert!(channel_name(&long).len() <= MAX_IDENTIFIER);
        assert_ne!(channel_name(&long), channel_name(&"t".repeat(63)));
        for good in ["public", "tenon", "_x", "tenon_test_0af3"] {
            assert!(check_schema_name(good).is_ok(), "{good}");
        }
        for bad in ["", "9x", "Tenon", "a-b", "a;drop", &"s".repeat(64)] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }
}
