//! Search, detail and the curated lists.
//!
//! Text is matched with SQLite FTS5 (every word, as a prefix, over id, name,
//! description and keywords). Relevance is corpus-independent, so a page
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
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row as _, Sqlite};
use tenon_manifest::{PluginId, Version};
use tenon_marketplace::IndexEntry;
use time::OffsetDateTime;

use crate::error::MarketError;
use crate::market::{Compat, Market, from_unix, newest_compatible, unix};

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
struct Cursor {
    /// The last hit's sort key, as the bits of the f64 (JSON numbers do
    /// not round-trip every f64 exactly, and a key one ulp off would repeat
    /// or skip hits that tie).
    key: u64,
    id: String,
    /// The newest plugin row when the first page was served.
    snap: i64,
    /// The time relevance is computed at.
    now: i64,
}

/// The keyset part of a page query: the sort column, the last hit's key
/// and id, and how many rows to fetch.
struct Page<'q> {
    key: &'static str,
    after: Option<&'q (f64, String)>,
    batch: usize,
}

const LISTING_COLUMNS: &str =
    "p.pk, p.id, p.name, p.description, p.latest, p.license, p.categories, p.keywords,
    p.runtime, p.downloads, p.deprecated, p.replacement, p.created_at, p.updated_at, p.compat,
    n.verified";

impl Market {
    /// Searches the catalog.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage, MarketError> {
        let limit = query.limit.unwrap_or(20).clamp(1, MAX_PAGE) as usize;
        let cursor = match &query.cursor {
            Some(text) => Some(decode_cursor(text)?),
            None => None,
        };
        let (snap, now) = match &cursor {
            Some(c) => (c.snap, c.now),
            None => {
                let snap: Option<i64> = sqlx::query_scalar("SELECT MAX(pk) FROM plugins")
                    .fetch_one(&self.pool)
                    .await?;
                (snap.unwrap_or(0), unix(OffsetDateTime::now_utc()))
            }
        };
        let fts = query.q.as_deref().and_then(fts_query);
        let q_lower = query.q.as_deref().map(|q| q.trim().to_lowercase());
        let key_expr = match query.sort {
            Sort::Relevance => "score",
            Sort::Downloads => "downloads",
            Sort::Updated => "updated_at",
            Sort::Published => "created_at",
            Sort::Name => "id",
        };
        let compat_filter = query.api.is_some() || query.host_version.is_some();

        // Totals: without a compatibility filter SQL counts; with one, the
        // candidates' compat columns are checked here.
        let mut total_query = self.filtered(query, &fts, &q_lower, snap, now, "COUNT(*)", None);
        let total = if compat_filter {
            let mut all = self.filtered(query, &fts, &q_lower, snap, now, "p.compat", None);
            let rows = all.build().fetch_all(&self.pool).await?;
            rows.iter()
                .filter(|r| self.fits(query, &r.get::<String, _>(0)))
                .count() as u64
        } else {
            let count: i64 = total_query
                .build_query_scalar()
                .fetch_one(&self.pool)
                .await?;
            count as u64
        };

        let mut hits = Vec::new();
        let mut after = cursor.map(|c| (f64::from_bits(c.key), c.id));
        loop {
            let batch = if compat_filter { 200 } else { limit + 1 };
            let mut select = self.filtered(
                query,
                &fts,
                &q_lower,
                snap,
                now,
                LISTING_COLUMNS,
                Some(Page {
                    key: key_expr,
                    after: after.as_ref(),
                    batch,
                }),
            );
            let rows = select.build().fetch_all(&self.pool).await?;
            let exhausted = rows.len() < batch;
            for row in &rows {
                let listing = self.listing(row, query)?;
                after = Some((sort_key(query.sort, row), listing.id.to_string()));
                if compat_filter && listing.compatible_version.is_none() {
                    continue;
                }
                hits.push(listing);
                if hits.len() > limit {
                    break;
                }
            }
            if exhausted || hits.len() > limit {
                break;
            }
        }
        let next = if hits.len() > limit {
            hits.truncate(limit);
            let last = hits.last().expect("limit is at least 1");
            let key = match query.sort {
                Sort::Relevance => last.score.unwrap_or_default(),
                Sort::Downloads => last.downloads as f64,
                Sort::Updated => unix(last.updated_at) as f64,
                Sort::Published => unix(last.published_at) as f64,
                Sort::Name => 0.0,
            };
            Some(encode_cursor(&Cursor {
                key: key.to_bits(),
                id: last.id.to_string(),
                snap,
                now,
            }))
        } else {
            None
        };
        Ok(SearchPage { total, hits, next })
    }

    fn fits(&self, query: &SearchQuery, compat: &str) -> bool {
        let compat: Vec<Compat> = serde_json::from_str(compat).unwrap_or_default();
        newest_compatible(&compat, query.api.as_ref(), query.host_version.as_ref()).is_some()
    }

    /// The query with every filter; `page` adds the keyset condition, the
    /// order and the limit.
    #[allow(clippy::too_many_arguments)]
    fn filtered<'q>(
        &self,
        query: &'q SearchQuery,
        fts: &'q Option<String>,
        q_lower: &'q Option<String>,
        snap: i64,
        now: i64,
        columns: &str,
        page: Option<Page<'q>>,
    ) -> QueryBuilder<'q, Sqlite> {
        let mut b = QueryBuilder::new("SELECT * FROM (SELECT ");
        b.push(columns);
        b.push(", (");
        // text score
        match q_lower {
            Some(q) if !q.is_empty() => {
                b.push("1.0 + (CASE WHEN instr(lower(p.name), ")
                    .push_bind(q.as_str())
                    .push(") > 0 OR instr(p.id, ")
                    .push_bind(q.as_str())
                    .push(") > 0 THEN 3.0 ELSE 0.0 END) + (CASE WHEN EXISTS (SELECT 1 FROM json_each(p.keywords) WHERE lower(value) = ")
                    .push_bind(q.as_str())
                    .push(") THEN 1.0 ELSE 0.0 END)");
            }
            _ => {
                b.push("1.0");
            }
        }
        b.push(" + 0.5 * p.log_downloads + 2.0 / (1.0 + (")
            .push_bind(now)
            .push(" - p.updated_at) / 2592000.0)) * (CASE WHEN n.verified THEN 1.0 ELSE 0.5 END) * (CASE WHEN p.deprecated THEN 0.5 ELSE 1.0 END) AS score");
        b.push(" FROM plugins p JOIN namespaces n ON n.name = p.namespace WHERE p.pk <= ")
            .push_bind(snap);
        if let Some(fts) = fts {
            b.push(" AND p.pk IN (SELECT rowid FROM plugin_fts WHERE plugin_fts MATCH ")
                .push_bind(fts.as_str())
                .push(")");
        }
        if let Some(category) = &query.category {
            b.push(" AND EXISTS (SELECT 1 FROM json_each(p.categories) WHERE value = ")
                .push_bind(category.as_str())
                .push(")");
        }
        if let Some(tag) = &query.tag {
            b.push(" AND EXISTS (SELECT 1 FROM json_each(p.keywords) WHERE value = ")
                .push_bind(tag.as_str())
                .push(")");
        }
        if let Some(license) = &query.license {
            b.push(" AND p.license = ").push_bind(license.as_str());
        }
        if let Some(runtime) = &query.runtime {
            b.push(" AND p.runtime = ").push_bind(runtime.as_str());
        }
        if let Some(publisher) = &query.publisher {
            b.push(" AND p.namespace = ").push_bind(publisher.as_str());
        }
        if query.verified == Some(true) {
            b.push(" AND n.verified = 1");
        }
        b.push(") AS p");
        let Some(Page { key, after, batch }) = page else {
            return b;
        };
        if let Some((k, id)) = after {
            if query.sort == Sort::Name {
                b.push(" WHERE p.id > ").push_bind(id.as_str());
            } else {
                b.push(format!(" WHERE (p.{key} < "))
                    .push_bind(*k)
                    .push(format!(" OR (p.{key} = "))
                    .push_bind(*k)
                    .push(" AND p.id > ")
                    .push_bind(id.as_str())
                    .push("))");
            }
        }
        let direction = if query.sort == Sort::Name {
            ""
        } else {
            " DESC"
        };
        b.push(format!(" ORDER BY p.{key}{direction}, p.id LIMIT "))
            .push_bind(batch as i64);
        b
    }

    fn listing(&self, row: &SqliteRow, query: &SearchQuery) -> Result<Listing, MarketError> {
        let corrupt = |what: &str| MarketError::Corrupt(format!("a stored plugin row's {what}"));
        let strings = |col: &str| -> Result<Vec<String>, MarketError> {
            serde_json::from_str(&row.get::<String, _>(col)).map_err(|_| corrupt(col))
        };
        let compat: Vec<Compat> =
            serde_json::from_str(&row.get::<String, _>("compat")).map_err(|_| corrupt("compat"))?;
        let compatible_version =
            newest_compatible(&compat, query.api.as_ref(), query.host_version.as_ref()).cloned();
        Ok(Listing {
            id: PluginId::new(&row.get::<String, _>("id")).map_err(|_| corrupt("id"))?,
            name: row.get("name"),
            description: row.get("description"),
            latest: Version::parse(&row.get::<String, _>("latest"))
                .map_err(|_| corrupt("latest"))?,
            compatible_version,
            license: row.get("license"),
            categories: strings("categories")?,
            keywords: strings("keywords")?,
            runtime: row.get("runtime"),
            downloads: row.get("downloads"),
            verified: row.get("verified"),
            deprecated: row.get("deprecated"),
            replacement: row.get("replacement"),
            published_at: from_unix(row.get("created_at")),
            updated_at: from_unix(row.get("updated_at")),
            score: (query.sort == Sort::Relevance).then(|| row.get("score")),
        })
    }

    /// One plugin's listing (as a search hit would show it for `query`'s
    /// host), its README and every version's index line.
    pub async fn plugin(
        &self,
        id: &PluginId,
        query: &SearchQuery,
    ) -> Result<PluginDetail, MarketError> {
        let sql = format!(
            "SELECT {LISTING_COLUMNS}, 0.0 AS score, p.readme FROM plugins p
             JOIN namespaces n ON n.name = p.namespace WHERE p.id = $1"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| MarketError::NotFound(format!("plugin {id}")))?;
        let mut listing = self.listing(&row, query)?;
        listing.score = None;
        let versions = self.versions(id).await?;
        Ok(PluginDetail {
            listing,
            readme: row.get("readme"),
            versions,
        })
    }

    /// Every version's index line, in publishing order.
    pub async fn versions(&self, id: &PluginId) -> Result<Vec<IndexEntry>, MarketError> {
        let lines: Vec<String> =
            sqlx::query_scalar("SELECT entry FROM versions WHERE plugin = $1 ORDER BY seq")
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await?;
        if lines.is_empty() {
            return Err(MarketError::NotFound(format!("plugin {id}")));
        }
        lines
            .iter()
            .map(|l| {
                serde_json::from_str(l)
                    .map_err(|e| MarketError::Corrupt(format!("an index line of {id}: {e}")))
            })
            .collect()
    }

    /// Every category with how many plugins list it.
    pub async fn categories(&self) -> Result<Vec<Category>, MarketError> {
        let rows = sqlx::query(
            "SELECT j.value AS name, COUNT(*) AS plugins FROM plugins p, json_each(p.categories) j
             GROUP BY j.value ORDER BY plugins DESC, name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Category {
                name: r.get("name"),
                plugins: r.get("plugins"),
            })
            .collect())
    }

    /// The featured plugins, by their curated rank.
    pub async fn featured(&self, query: &SearchQuery) -> Result<Vec<Listing>, MarketError> {
        self.listings(
            "p.featured IS NOT NULL ORDER BY p.featured, p.id LIMIT 100",
            query,
        )
        .await
    }

    /// The plugins with the most unique-client downloads over the last
    /// `days` days.
    pub async fn popular(
        &self,
        days: u32,
        limit: u32,
        query: &SearchQuery,
    ) -> Result<Vec<(Listing, i64)>, MarketError> {
        let since = unix(OffsetDateTime::now_utc()) / 86_400 - i64::from(days.clamp(1, 365)) + 1;
        let rows = sqlx::query(
            "SELECT plugin, COUNT(*) AS n FROM downloads WHERE day >= $1 GROUP BY plugin
             ORDER BY n DESC, plugin LIMIT $2",
        )
        .bind(since)
        .bind(i64::from(limit.clamp(1, MAX_PAGE)))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let id: String = row.get("plugin");
            let one = self.listing_of(&id, query).await?;
            out.push((one, row.get("n")));
        }
        Ok(out)
    }

    async fn listing_of(&self, id: &str, query: &SearchQuery) -> Result<Listing, MarketError> {
        let sql = format!(
            "SELECT {LISTING_COLUMNS}, 0.0 AS score FROM plugins p
             JOIN namespaces n ON n.name = p.namespace WHERE p.id = $1"
        );
        let row = sqlx::query(&sql).bind(id).fetch_one(&self.pool).await?;
        let mut listing = self.listing(&row, query)?;
        listing.score = None;
        Ok(listing)
    }

    async fn listings(&self, tail: &str, query: &SearchQuery) -> Result<Vec<Listing>, MarketError> {
        let sql = format!(
            "SELECT {LISTING_COLUMNS}, 0.0 AS score FROM plugins p
             JOIN namespaces n ON n.name = p.namespace WHERE {tail}"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let mut l = self.listing(r, query)?;
                l.score = None;
                Ok(l)
            })
            .collect()
    }

    /// For each installed plugin, the newest version that fits the host and
    /// is newer than the installed one.
    pub async fn updates(&self, request: &UpdatesRequest) -> Result<Vec<Update>, MarketError> {
        if request.installed.len() > 1000 {
            return Err(MarketError::BadRequest(format!(
                "at most 1000 installed plugins per request, not {}",
                request.installed.len()
            )));
        }
        let mut out = Vec::new();
        for installed in &request.installed {
            let compat: Option<String> =
                sqlx::query_scalar("SELECT compat FROM plugins WHERE id = $1")
                    .bind(installed.id.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
            let Some(compat) = compat else { continue };
            let compat: Vec<Compat> = serde_json::from_str(&compat)
                .map_err(|e| MarketError::Corrupt(format!("compat of {}: {e}", installed.id)))?;
            if let Some(newest) =
                newest_compatible(&compat, Some(&request.api), request.host_version.as_ref())
                && newest.cmp_precedence(&installed.version).is_gt()
            {
                out.push(Update {
                    id: installed.id.clone(),
                    installed: installed.version.clone(),
                    available: newest.clone(),
                });
            }
        }
        Ok(out)
    }
}

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

fn sort_key(sort: Sort, row: &SqliteRow) -> f64 {
    match sort {
        Sort::Relevance => row.get("score"),
        Sort::Downloads => row.get::<i64, _>("downloads") as f64,
        Sort::Updated => row.get::<i64, _>("updated_at") as f64,
        Sort::Published => row.get::<i64, _>("created_at") as f64,
        Sort::Name => 0.0,
    }
}

/// The FTS5 query for user text: each word as a quoted prefix, all
/// required; `None` when there is no word.
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{}\"*", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

fn encode_cursor(cursor: &Cursor) -> String {
    B64.encode(serde_json::to_vec(cursor).expect("cursors serialize"))
}

fn decode_cursor(text: &str) -> Result<Cursor, MarketError> {
    let bad = || MarketError::BadRequest(format!("`{text}` is not a cursor this server made"));
    if text.len() > 1024 {
        return Err(bad());
    }
    let bytes = B64.decode(text).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}
