//! The SQLite backend: one database file in WAL mode, one writer
//! connection (write transactions begin `IMMEDIATE`, so they queue on the
//! busy timeout instead of failing with "database is locked") and a pool of
//! readers that never wait for the writer.
//!
//! SQLite has no NOTIFY: each write records the changes it announces in the
//! `registry_changes` table, in its own transaction, and a subscribed store
//! polls that table for the changes of other processes on the same file.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{OnceCell, broadcast};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::backend::sql::{db_err, known_versions, migrate_err, to_json};
use crate::change::{Change, ChangeHub, ChangeSubscription, FeedItem};
use crate::clock;
use crate::error::{RegistryError, Result};
use crate::open::{RegistryLocation, RegistryOptions, SqliteDurability};
use crate::schema::{self, Applied};
use crate::secret::SecretKey;
use crate::store::{BackendKind, StoreInfo};
use crate::tenant::TenantId;

type Db = sqlx::Sqlite;
type Store = SqliteStore;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// A registry in an SQLite database file: the embedded default.
///
/// Open it with [`SqliteStore::open`] or [`open`](crate::open). The file
/// (and its directory) is created on first use and migrated on every open.
/// Several processes may open the same file: their writes queue on
/// [`RegistryOptions::busy_timeout`]. The change feed carries the changes
/// made through this store at once, and those of other processes on the
/// same file within [`RegistryOptions::change_poll_interval`].
#[derive(Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    hub: ChangeHub,
    info: StoreInfo,
    secret_key: Option<SecretKey>,
    poll_interval: Duration,
    /// Commits that announced changes, to prune `registry_changes` now and
    /// then.
    announcing_commits: AtomicU64,
    feed: OnceCell<()>,
    feed_task: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

/// How long announced changes are kept for other processes to read.
const CHANGE_RETENTION: time::Duration = time::Duration::minutes(10);

/// Prune announced changes once every this many announcing commits.
const PRUNE_EVERY: u64 = 256;

/// Creates the registry's directory (0700) and file (0600) when missing,
/// before SQLite does with the process umask: the file holds encrypted
/// secrets, grants and plugin state. SQLite gives its `-wal` and `-shm`
/// files the database file's mode. An existing directory or file keeps the
/// mode its operator gave it.
fn create_owner_only(path: &Path) -> Result<()> {
    let io = |action, at: &Path| {
        let at = at.display().to_string();
        move |source| RegistryError::Io {
            action,
            path: at,
            source,
        }
    };
    let mut dir = std::fs::DirBuilder::new();
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        dir.mode(0o700);
        file.mode(0o600);
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        dir.recursive(true)
            .create(parent)
            .map_err(io("creating the registry directory", parent))?;
    }
    if !path.exists() {
        file.open(path)
            .map_err(io("creating the registry file", path))?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`
    /// (`:memory:` for a private in-memory database).
    ///
    /// Fails with [`RegistryError::NewerSchema`] if a newer Tenon migrated
    /// it, before writing anything to it.
    pub async fn open(path: &Path, options: &RegistryOptions) -> Result<Self> {
        let location = path.display().to_string();
        let in_memory = path == Path::new(RegistryLocation::SQLITE_MEMORY);
        let base = if in_memory {
            SqliteConnectOptions::new().in_memory(true)
        } else {
            create_owner_only(path)?;
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
        };
        let base = base
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true)
            .synchronous(match options.sqlite_durability {
                SqliteDurability::Normal => SqliteSynchronous::Normal,
                SqliteDurability::Full => SqliteSynchronous::Full,
            });
        let opening = || format!("opening the SQLite registry at {location}");
        // One writer: writes of this process queue here rather than in
        // SQLite's lock. It is kept open, which keeps the WAL in place.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(false)
            .connect_with(base.clone())
            .await
            .map_err(db_err(opening()))?;
        check_history(&writer, &location).await?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| migrate_err(&location, e))?;
        let schema_version = schema_version(&writer, &location).await?;
        // An in-memory database lives in its one connection.
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(options.acquire_timeout)
                .test_before_acquire(false)
                .connect_with(base)
                .await
                .map_err(db_err(opening()))?
        };
        Ok(Self {
            writer,
            reader,
            hub: ChangeHub::new(options.change_capacity),
            info: StoreInfo {
                backend: BackendKind::Sqlite,
                location,
                schema_version,
                instance: Uuid::new_v4(),
            },
            secret_key: options.secret_key.clone(),
            poll_interval: options.change_poll_interval,
            announcing_commits: AtomicU64::new(0),
            feed: OnceCell::new(),
            feed_task: parking_lot::Mutex::new(None),
        })
    }

    /// Stops the change feed and closes the connections, waiting for
    /// operations in progress.
    pub async fn close(&self) {
        if let Some(task) = self.feed_task.lock().take() {
            task.abort();
        }
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Db>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err(format!(
                "starting a write to the SQLite registry at {}",
                self.info.location
            )))
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    fn secret_key(&self) -> Option<&SecretKey> {
        self.secret_key.as_ref()
    }

    /// Writes are serialized by SQLite's write lock, so ids commit in order:
    /// nothing to do.
    async fn lock_event_log(
        &self,
        _tx: &mut sqlx::Transaction<'static, Db>,
        _tenant: &TenantId,
    ) -> Result<()> {
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
                "committing ({context}) to the SQLite registry at {}",
                self.info.location
            )
        };
        if !changes.is_empty() {
            let now = clock::now();
            for change in &changes {
                sqlx::query(
                    "INSERT INTO registry_changes (origin, payload, at) VALUES ($1, $2, $3)",
                )
                .bind(change.origin.to_string())
                .bind(to_json(change, "change")?)
                .bind(clock::to_micros(now))
                .execute(&mut *tx)
                .await
                .map_err(db_err(committing()))?;
            }
            if self
                .announcing_commits
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(PRUNE_EVERY)
            {
                sqlx::query("DELETE FROM registry_changes WHERE at < $1")
                    .bind(clock::to_micros(now - CHANGE_RETENTION))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err(committing()))?;
            }
        }
        tx.commit().await.map_err(db_err(committing()))?;
        self.hub.publish(changes);
        Ok(())
    }

    async fn subscribe(&self) -> Result<ChangeSubscription> {
        let subscription = self.hub.subscribe();
        self.feed
            .get_or_try_init(|| async {
                // Start after what is there now: those changes are history.
                let last: i64 =
                    sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM registry_changes")
                        .fetch_one(&self.reader)
                        .await
                        .map_err(db_err(format!(
                            "subscribing to the changes of the SQLite registry at {}",
                            self.info.location
                        )))?;
                let task = tokio::spawn(poll_changes(
                    self.reader.clone(),
                    self.info.instance,
                    last,
                    self.poll_interval,
                    self.hub.sender(),
                ));
                *self.feed_task.lock() = Some(task);
                Ok::<(), RegistryError>(())
            })
            .await?;
        Ok(subscription)
    }

    /// The reader and writer pools, for tests that look behind the store.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.writer
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Some(task) = self.feed_task.get_mut().take() {
            task.abort();
        }
    }
}

/// Forwards the changes other processes announced in `registry_changes`
/// (after `last`), until the store is dropped.
async fn poll_changes(
    pool: SqlitePool,
    instance: Uuid,
    mut last: i64,
    interval: Duration,
    sender: broadcast::Sender<FeedItem>,
) {
    let instance = instance.to_string();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let rows: Vec<(i64, String, String)> = match sqlx::query_as(
            "SELECT seq, origin, payload FROM registry_changes WHERE seq > $1 ORDER BY seq LIMIT 1000",
        )
        .bind(last)
        .fetch_all(&pool)
        .await
        {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, "polling the SQLite registry for changes failed; retrying");
                continue;
            }
        };
        // Sequence numbers have no holes; a hole means pruning outran us.
        if rows.first().is_some_and(|(seq, _, _)| *seq > last + 1) && last > 0 {
            let _ = sender.send(FeedItem::Interrupted(
                "changes of other processes were pruned before this store read them".to_owned(),
            ));
        }
        for (seq, origin, payload) in rows {
            last = seq;
            if origin == instance {
                continue; // Published when it committed.
            }
            match serde_json::from_str::<Change>(&payload) {
                Ok(change) => {
                    let _ = sender.send(FeedItem::Change(change));
                }
                Err(error) => {
                    tracing::warn!(%error, seq, "ignoring a malformed registry change");
                }
            }
        }
    }
}

/// Refuses a database whose migration history this build does not know,
/// reading only.
async fn check_history(pool: &SqlitePool, location: &str) -> Result<()> {
    let reading = || format!("reading the schema history of the SQLite registry at {location}");
    let has_history: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(pool)
    .await
    .map_err(db_err(reading()))?;
    if has_history.is_none() {
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

async fn schema_version(pool: &SqlitePool, location: &str) -> Result<i64> {
    let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(pool)
        .await
        .map_err(db_err(format!(
            "reading the schema version of the SQLite registry at {location}"
        )))?;
    Ok(version.unwrap_or(0))
}

/// The embedded migrations' versions, for tests.
#[cfg(test)]
pub(crate) fn migration_versions() -> Vec<i64> {
    known_versions(&MIGRATOR)
}

mod store_impl {
    use super::{Db, Store};

    include!("shared_store.rs");
}
