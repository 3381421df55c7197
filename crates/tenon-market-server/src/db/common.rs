// The imports and types the shared statement files use. Not a module:
// included first by each backend, after `Db` is defined.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use sqlx::{QueryBuilder, Row as _};
use tenon_manifest::{PluginId, Version};
use tenon_marketplace::metadata::{
    FileMeta, MetaRole, Pinning, SNAPSHOT_FILE, SPEC_VERSION, TARGETS_FILE, Targets, sign_metadata,
};
use tenon_marketplace::{
    IndexEntry, Origin, PackageError, Role, TrustPolicy, index_path, verify,
};
use time::OffsetDateTime;

use crate::error::MarketError;
use crate::keys::MarketKeys;
use crate::limits::{MAX_TRACKED_ACCOUNTS, RateWindows};
use crate::market::{
    Compat, MAX_README_BYTES, MarketConfig, Principal, Scope, body_of, check_account, from_unix,
    hex_random, join, newer_listing, newest_compatible, token_hash, unix,
};
use crate::names::{NameError, check_namespace, normalize};
use crate::search::{
    Category, Cursor, LISTING_COLUMNS, Listing, MAX_PAGE, Page, PluginDetail, SearchPage,
    SearchQuery, Sort, Update, UpdatesRequest, decode_cursor, encode_cursor, query_words,
};
use crate::upload::parse_upload;

type Tx = sqlx::Transaction<'static, Db>;
type DbRow = <Db as sqlx::Database>::Row;

/// A marketplace on one backend: its pool, keys and settings.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) pool: sqlx::Pool<Db>,
    pub(crate) keys: MarketKeys,
    pub(crate) config: MarketConfig,
    publish_window: Mutex<RateWindows<String>>,
}

impl Store {
    /// The store over `pool`, migrated, with metadata signed if it has none.
    async fn new(
        pool: sqlx::Pool<Db>,
        keys: MarketKeys,
        config: MarketConfig,
    ) -> Result<Self, MarketError> {
        MIGRATOR.run(&pool).await?;
        let store = Self {
            pool,
            keys,
            config,
            publish_window: Mutex::new(crate::limits::rate_windows(MAX_TRACKED_ACCOUNTS)),
        };
        store.initialise_metadata().await?;
        Ok(store)
    }
}
