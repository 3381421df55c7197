//! The marketplace's catalog as its JSON API serves it: search requests
//! and pages of listings, a plugin's detail, categories, the curated and
//! popular lists, and the updates request. The server (`tenon-market-server`)
//! answers with these types and the client ([`crate::client`]) reads them,
//! so both sides share one definition.
//!
//! Nothing here is signed: listings describe plugins for people choosing
//! one. What gets installed is decided by the signed index
//! ([`crate::index`]) alone.

use serde::{Deserialize, Serialize};
use tenon_manifest::{PluginId, Version};
use time::OffsetDateTime;

use crate::index::IndexEntry;

/// `text` as a marketplace URL (without a final `/`), or `None` when it is
/// not an `http://` or `https://` URL with a host and no white space.
pub fn marketplace_url(text: &str) -> Option<String> {
    let url = text.trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    (!rest.is_empty() && !rest.starts_with('/') && !url.contains(char::is_whitespace))
        .then(|| url.to_owned())
}

/// The most hits per page.
pub const MAX_PAGE: u32 = 100;

/// How hits are ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    /// Text match, downloads and recency, demoted as `docs/marketplace.md`
    /// says.
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

impl Sort {
    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Relevance => "relevance",
            Self::Downloads => "downloads",
            Self::Updated => "updated",
            Self::Published => "published",
            Self::Name => "name",
        }
    }
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

/// One entry of `GET /api/v1/popular`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Popular {
    /// The plugin.
    pub plugin: Listing,
    /// Its unique-client downloads over the window asked for.
    pub window_downloads: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marketplace_urls_are_http_with_a_host() {
        let cases = [
            ("https://market.example", Some("https://market.example")),
            ("http://127.0.0.1:8470/", Some("http://127.0.0.1:8470")),
            (
                "https://market.example/tenon//",
                Some("https://market.example/tenon"),
            ),
            ("https://", None),
            ("https:///path", None),
            ("ftp://market.example", None),
            ("market.example", None),
            ("https://market example", None),
            ("https://market.example\n", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(marketplace_url(text).as_deref(), expected, "{text:?}");
        }
    }

    #[test]
    fn every_sort_is_named_as_its_json() {
        for sort in [
            Sort::Relevance,
            Sort::Downloads,
            Sort::Updated,
            Sort::Published,
            Sort::Name,
        ] {
            assert_eq!(
                serde_json::to_value(sort).unwrap(),
                serde_json::Value::String(sort.as_str().to_owned())
            );
        }
    }
}
