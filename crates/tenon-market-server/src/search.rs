//! Search, detail and the curated lists.
//!
//! Text is matched with SQLite FTS5, or PostgreSQL full-text search (a
//! `tsvector` per plugin, `simple` configuration), alike: every word, as a
//! prefix, over id, name, description and keywords. Relevance is corpus-independent, so a page
//! boundary does not move when others publish:
//!
//! ```text
//! (text + 0.5 · ln(1 + downloads) + 2 / (1 + days since update / 30))
//!   × (0.5 if the publisher is not verified) × (0.5 if deprecated)
//! ```
//!
//! where `text` is 1, plus 3 when the name or id contains the query, plus 1
//! when a keyword equals it. Downloads count unique clients per plugin per
//! day, so a bot re-downloading does not inflate them.
//!
//! Pagination is by cursor: the cursor holds the last hit's sort key, its
//! id, the newest plugin row at the first page and the time relevance was
//! computed at, so pages never repeat or skip a plugin whose sort key did
//! not change, and plugins published meanwhile do not shift them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};

use crate::error::MarketError;

pub use tenon_marketplace::catalog::{
    Category, Installed, Listing, MAX_PAGE, PluginDetail, SearchPage, SearchQuery, Sort, Update,
    UpdatesRequest,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// The last hit's sort key, as the bits of the f64 (JSON numbers do
    /// not round-trip every f64 exactly, and a key one ulp off would repeat
    /// or skip hits that tie).
    pub(crate) key: u64,
    pub(crate) id: String,
    /// The newest plugin row when the first page was served.
    pub(crate) snap: i64,
    /// The time relevance is computed at.
    pub(crate) now: i64,
}

/// The keyset part of a page query: the sort column, the last hit's key
/// and id, and how many rows to fetch.
pub(crate) struct Page<'q> {
    pub(crate) key: &'static str,
    pub(crate) after: Option<&'q (f64, String)>,
    pub(crate) batch: usize,
}

pub(crate) const LISTING_COLUMNS: &str =
    "p.pk, p.id, p.name, p.description, p.latest, p.license, p.categories, p.keywords,
    p.runtime, p.downloads, p.deprecated, p.replacement, p.created_at, p.updated_at, p.compat,
    n.verified";

pub(crate) fn encode_cursor(cursor: &Cursor) -> String {
    B64.encode(serde_json::to_vec(cursor).expect("cursors serialize"))
}

pub(crate) fn decode_cursor(text: &str) -> Result<Cursor, MarketError> {
    let bad = || MarketError::BadRequest(format!("`{text}` is not a cursor this server made"));
    if text.len() > 1024 {
        return Err(bad());
    }
    let bytes = B64.decode(text).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// The words of a text query, lowercased (at most 16): what both
/// backends' full-text queries are built from, each word as a prefix.
pub(crate) fn query_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(str::to_lowercase)
        .collect()
}
