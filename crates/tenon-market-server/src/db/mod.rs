//! The marketplace's statements, one implementation per backend.
//!
//! `shared_market.rs` (publishing, metadata, curation, downloads, tokens)
//! and `shared_search.rs` (search and the lists) are not modules: `sqlite.rs`
//! and `postgres.rs` each `include!` them after defining `Db` (the sqlx
//! database), `Store` (the pool, keys and settings) and the dialect hooks:
//! `MIGRATOR`, `FTS_INSERT`, `CATEGORIES`, `INSTR`, `fts_query`, `fts_match`,
//! `json_has` and `Store::begin_write`. Every other statement runs unchanged
//! on both (`$n` placeholders, `ON CONFLICT DO NOTHING`, flags that are
//! INTEGER in SQLite and BOOLEAN in PostgreSQL).

pub(crate) mod sqlite;

#[cfg(feature = "postgres")]
pub(crate) mod postgres;

/// The database a [`crate::Market`] runs on.
#[derive(Debug)]
pub(crate) enum Backend {
    Sqlite(sqlite::Store),
    #[cfg(feature = "postgres")]
    Postgres(postgres::Store),
}
