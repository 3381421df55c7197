//! The SQLite backend: one database file in WAL mode, one writer
//! connection (write transactions begin `IMMEDIATE`, so they queue on the
//! busy timeout instead of failing with "database is locked") and a pool of
//! readers that never wait for the writer.

use std::path::Path;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use uuid::Uuid;

use crate::backend::sql::{db_err, known_versions, migrate_err};
use crate::change::{Change, ChangeHub, ChangeSubscription};
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
/// made through this store.
#[derive(Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    hub: ChangeHub,
    info: StoreInfo,
    secret_key: Option<SecretKey>,
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
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|source| RegistryError::Io {
                    action: "creating the registry directory",
                    path: parent.display().to_string(),
                    source,
                })?;
            }
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
        })
    }

    /// Closes the connections, waiting for operations in progress.
    pub async fn close(&self) {
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
        tx: sqlx::Transaction<'static, Db>,
        changes: Vec<Change>,
        context: &str,
    ) -> Result<()> {
        tx.commit().await.map_err(db_err(format!(
            "committing ({context}) to the SQLite registry at {}",
            self.info.location
        )))?;
        self.hub.publish(changes);
        Ok(())
    }

    async fn subscribe(&self) -> Result<ChangeSubscription> {
        Ok(self.hub.subscribe())
    }

    /// The reader and writer pools, for tests that look behind the store.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.writer
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
