//! Tenon's marketplace server: a catalog of signed plugin packages that
//! hosts install from by name.
//!
//! It owns its own database, SQLite by default or PostgreSQL with the
//! `postgres` feature, both through sqlx with embedded migrations (accounts, hashed tokens, namespaces and
//! their owners and bound author keys, plugins, versions, packages, unique
//! daily downloads, signed metadata), and serves over HTTP (axum):
//!
//! - the **sparse index** (`index/<publisher>/<name>`, one
//!   [`tenon_marketplace::IndexEntry`] line per version, with ETags and 304s)
//!   and the **TUF-lite metadata** over it ([`tenon_marketplace::metadata`]):
//!   the root comes from the offline keys [`keys::init`] makes; the online
//!   key re-signs targets, snapshot and timestamp in the same transaction as
//!   every publish and yank, and re-signs each of them when a read finds
//!   less than half of its lifetime left;
//! - **search** (FTS5 or PostgreSQL full-text, filters, sorts, cursor pages
//!   with a total; see
//!   [`search`]), detail, versions, README, counted downloads, categories,
//!   featured, popular, updates;
//! - **publishing** behind scoped tokens: a namespace is claimed by its
//!   first publisher and bound to the author key that signed; every upload
//!   is verified with `tenon-marketplace` (signatures, then the whole
//!   archive) before anything is stored, and stored in one transaction.
//!
//! Not here: the package format and its checks (`tenon-marketplace`), the
//! client that installs from a marketplace, and the host registry
//! (`tenon-registry`). Nothing in
//! `tenon-engine` depends on this crate; the CLI's `tenon market` commands
//! do.

mod db;
pub mod error;
pub mod http;
pub mod keys;
pub mod limits;
mod market;
pub mod names;
pub mod search;
pub mod upload;

pub use error::MarketError;
pub use http::{HttpLimits, openapi, router};
pub use keys::{InitReport, MarketKeys, RotateReport, init, rotate_root};
pub use limits::TrustedProxy;
pub use market::{Expiries, Market, MarketConfig, Principal, Scope};
pub use search::{SearchPage, SearchQuery, Sort};
pub use tenon_serve::ConnectionLimits;
pub use upload::{encode_upload, parse_upload};

use std::future::Future;
use std::sync::Arc;

/// Serves `market` on `listener` until `shutdown` resolves, holding
/// connections within [`HttpLimits::connections`] (header-read and idle
/// timeouts, a write-stall timeout, caps in total and per address, a
/// bounded graceful shutdown; see `tenon-serve`).
pub async fn serve(
    market: Arc<Market>,
    limits: HttpLimits,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let connections = limits.connections;
    tenon_serve::serve(router(market, limits), listener, connections, shutdown).await;
    Ok(())
}
