//! The PostgreSQL backend (the `postgres` feature): full-text search with a
//! `tsvector` per plugin, writes that re-sign metadata serialised by an
//! advisory lock.

use std::str::FromStr as _;
use std::time::Duration as StdDuration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

type Db = sqlx::Postgres;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Replaces a plugin's text row (`$1` its pk; `$2`–`$5` id words, name,
/// description, keywords), weighted: id and name first, then keywords.
const FTS_INSERT: &str = "INSERT INTO plugin_fts (rowid, document) VALUES ($1,
     setweight(to_tsvector('simple', $2), 'A') || setweight(to_tsvector('simple', $3), 'A')
     || setweight(to_tsvector('simple', $5), 'B') || setweight(to_tsvector('simple', $4), 'C'))";

/// Every category with how many plugins list it.
const CATEGORIES: &str = "SELECT j.value AS name, COUNT(*) AS plugins
     FROM plugins p, json_array_elements_text(p.categories::json) AS j(value)
     GROUP BY j.value ORDER BY plugins DESC, j.value COLLATE \"C\"";

/// The position of a substring (1-based, 0 when absent).
const INSTR: &str = "strpos";

/// The `tsquery` for user text: each word as a prefix (`word:*`), all
/// required; `None` when there is no word. Words are letters and digits
/// only, so nothing in them is `tsquery` syntax.
fn fts_query(text: &str) -> Option<String> {
    let words = query_words(text);
    (!words.is_empty()).then(|| {
        words
            .iter()
            .map(|w| format!("{w}:*"))
            .collect::<Vec<_>>()
            .join(" & ")
    })
}

/// The condition on `plugin_fts` rows that match `query` ([`fts_query`]).
fn fts_match<'q>(b: &mut QueryBuilder<'q, Db>, query: &'q str) {
    b.push("document @@ to_tsquery('simple', ")
        .push_bind(query)
        .push(")");
}

/// Whether the JSON array of strings in column `p.<column>` holds `value`
/// (compared in lowercase when `lower`).
fn json_has<'q>(b: &mut QueryBuilder<'q, Db>, column: &str, lower: bool, value: &'q str) {
    let element = if lower { "lower(j.value)" } else { "j.value" };
    b.push(format!(
        "EXISTS (SELECT 1 FROM json_array_elements_text(p.{column}::json) AS j(value) WHERE {element} = "
    ))
    .push_bind(value)
    .push(")");
}

/// The advisory lock key every write that re-signs metadata takes ("tenon
/// market" in ASCII, truncated to 64 bits).
const WRITE_LOCK: i64 = 0x7465_6e6f_6e6d_6b74;

include!("common.rs");
include!("shared_market.rs");
include!("shared_search.rs");

impl Store {
    /// Connects to `url` (its `options=-c search_path=…` picks a schema,
    /// which must exist) and runs the migrations.
    pub(crate) async fn open(
        url: &str,
        keys: MarketKeys,
        config: MarketConfig,
    ) -> Result<Self, MarketError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(StdDuration::from_secs(10))
            .connect_with(options)
            .await?;
        Self::new(pool, keys, config).await
    }

    /// A transaction for a write that re-signs metadata, holding the
    /// advisory lock until it ends: the versions of targets, snapshot and
    /// timestamp, the namespace claims and the plugin rows' order (the
    /// search snapshot) then follow commit order, as on SQLite.
    async fn begin_write(&self) -> Result<Tx, MarketError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}
