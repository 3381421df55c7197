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
use tenon_manifest::{PluginId, Version};
use tenon_marketplace::IndexEntry;
use time::OffsetDateTime;

use crate::error::MarketError;

/// The most hits per page.
pub const MAX_PAGE: u32 = 100;

/// How hits are ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    /// Text match, downloads and recency, demoted as the module says.
    #[default]
    Relevance,
    /// Most downloaded first.
    Downloads,
    /// Most recently updated first.
    Updated,
    /// Most recently first published first.
    Published,
    /// By id.
    Name,
}

/// A search request (the query string of `GET /api/v1/search`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchQuery {
    /// Words to match.
    pub q: Option<String>,
    /// Only plugins in this category.
    pub category: Option<String>,
    /// Only plugins with this keyword.
    pub tag: Option<String>,
    /// Only plugins under this license expression (exact).
    pub license: Option<String>,
    /// Only plugins of this runtime kind.
    pub runtime: Option<String>,
    /// Only this publisher's plugins.
    pub publisher: Option<String>,
    /// Only verified publishers.
    pub verified: Option<bool>,
    /// The asking host's plugin API version: only plugins with a version
    /// that fits it, and each hit names its newest fitting version.
    pub api: Option<Version>,
    /// The asking host's own version (with `api`).
    pub host_version: Option<Version>,
    /// The order.
    pub sort: Sort,
    /// Hits per page (default 20, at most [`MAX_PAGE`]).
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
}

/// One hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    /// The plugin.
    pub id: PluginId,
    /// Its display name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The newest version (the listing's fields are its).
    pub latest: Version,
    /// The newest version that fits the asking host (or the newest not
    /// yanked when the host did not say), `null` when none does.
    pub compatible_version: Option<Version>,
    /// Its license.
    pub license: Option<String>,
    /// Its categories.
    pub categories: Vec<String>,
    /// Its keywords.
    pub keywords: Vec<String>,
    /// How it runs.
    pub runtime: String,
    /// Unique clients per day, summed.
    pub downloads: i64,
    /// Whether the publisher is verified.
    pub verified: bool,
    /// Whether it is deprecated.
    pub deprecated: bool,
    /// What to use instead.
    pub replacement: Option<String>,
    /// First published (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub published_at: OffsetDateTime,
    /// Last published to (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The relevance score (relevance sort only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// A page of hits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchPage {
    /// How many plugins match in all.
    pub total: u64,
    /// This page.
    pub hits: Vec<Listing>,
    /// The cursor of the next page, `null` on the last.
    pub next: Option<String>,
}

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

/// `GET /api/v1/plugins/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginDetail {
    /// As a search hit.
    #[serde(flatten)]
    pub listing: Listing,
    /// The newest version's README.
    pub readme: Option<String>,
    /// Every version's index line.
    pub versions: Vec<IndexEntry>,
}

/// A category and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Its name.
    pub name: String,
    /// How many plugins list it.
    pub plugins: i64,
}

/// `POST /api/v1/updates`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatesRequest {
    /// The host's plugin API version.
    pub api: Version,
    /// The host's own version.
    #[serde(default)]
    pub host_version: Option<Version>,
    /// What is installed.
    pub installed: Vec<Installed>,
}

/// One installed plugin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Installed {
    /// The plugin.
    pub id: PluginId,
    /// Its installed version.
    pub version: Version,
}

/// An available update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// The plugin.
    pub id: PluginId,
    /// The installed version.
    pub installed: Version,
    /// The newest version that fits the host.
    pub available: Version,
}

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
