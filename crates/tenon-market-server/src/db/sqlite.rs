//! The SQLite backend (the default): FTS5 for text, WAL, a busy timeout.

use std::path::Path;
use std::time::Duration as StdDuration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

type Db = sqlx::Sqlite;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Replaces a plugin's text row (`$1` its pk; `$2`–`$5` id words, name,
/// description, keywords).
const FTS_INSERT: &str = "INSERT INTO plugin_fts (rowid, id, name, description, keywords)
     VALUES ($1, $2, $3, $4, $5)";

/// Every category with how many plugins list it.
const CATEGORIES: &str = "SELECT j.value AS name, COUNT(*) AS plugins
     FROM plugins p, json_each(p.categories) j GROUP BY j.value ORDER BY plugins DESC, name";

/// The position of a substring (1-based, 0 when absent).
const INSTR: &str = "instr";

/// The FTS5 query for user text: each word as a quoted prefix, all
/// required; `None` when there is no word.
fn fts_query(text: &str) -> Option<String> {
    let words = query_words(text);
    (!words.is_empty()).then(|| {
        words
            .iter()
            .map(|w| format!("\"{w}\"*"))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// The condition on `plugin_fts` rows that match `query` ([`fts_query`]).
fn fts_match<'q>(b: &mut QueryBuilder<'q, Db>, query: &'q str) {
    b.push("plugin_fts MATCH ").push_bind(query);
}

/// Whether the JSON array of strings in column `p.<column>` holds `value`
/// (compared in lowercase when `lower`).
fn json_has<'q>(b: &mut QueryBuilder<'q, Db>, column: &str, lower: bool, value: &'q str) {
    let element = if lower { "lower(value)" } else { "value" };
    b.push(format!(
        "EXISTS (SELECT 1 FROM json_each(p.{column}) WHERE {element} = "
    ))
    .push_bind(value)
    .push(")");
}

include!("common.rs");
include!("shared_market.rs");
include!("shared_search.rs");

impl Store {
    /// Opens (creating if missing) the SQLite database at `path` (`:memory:`
    /// for a private in-memory one) and runs its migrations.
    pub(crate) async fn open(
        path: &str,
        keys: MarketKeys,
        config: MarketConfig,
    ) -> Result<Self, MarketError> {
        let path = path.strip_prefix("sqlite://").unwrap_or(path);
        let (options, max) = if path == ":memory:" {
            (SqliteConnectOptions::new().in_memory(true), 1)
        } else {
            (
                SqliteConnectOptions::new()
                    .filename(Path::new(path))
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal),
                4,
            )
        };
        let options = options
            .busy_timeout(StdDuration::from_secs(10))
            .foreign_keys(true);
        if max > 1 {
            // One connection first creates the file and switches it to WAL,
            // so the pool's connections never race that switch on a new
            // database (it takes an exclusive lock: "database is locked").
            let first = <SqliteConnection as sqlx::Connection>::connect_with(&options).await?;
            sqlx::Connection::close(first).await?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::new(pool, keys, config).await
    }

    /// A transaction for a write that re-signs metadata: `BEGIN IMMEDIATE`
    /// takes SQLite's write lock first (the busy timeout waits for it), so a
    /// transaction that reads the latest metadata and then writes the next
    /// never finds that another writer committed in between.
    async fn begin_write(&self) -> Result<Tx, MarketError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}
