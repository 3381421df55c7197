//! Tenon's durable state.
//!
//! This crate owns the registry: the [`RegistryStore`] trait and its
//! backends — [`MemoryStore`] (feature `memory`, for tests and hosts that
//! need nothing durable), [`SqliteStore`] (feature `sqlite`, the embedded
//! default: WAL, busy timeout, created on first use) and [`PostgresStore`]
//! (feature `postgres`, one registry for a fleet of hosts, with a
//! LISTEN/NOTIFY change feed) — with embedded migrations run on open. It
//! keeps, keyed by tenant: plugins with their lifecycle state and a row
//! version for optimistic concurrency, their installed versions (rollback is
//! a pointer flip), content-addressed artifacts checked on every read, the
//! append-only event log with cursor pagination, configuration with secrets
//! encrypted at rest, permission grants, plugin KV with quotas, and
//! plugins' own log lines (bounded per plugin).
//!
//! It does not decide anything: which lifecycle transitions are allowed,
//! whether a new version needs a new grant, when a crashing plugin is
//! disabled — that is `tenon-engine`'s business; the registry stores the
//! outcome, records it as an event in the same transaction, and announces
//! it on the change feed. It knows nothing of WebAssembly or hooks.
//!
//! Depend on it from the engine (which boots from it and serves plugins'
//! KV through [`RegistryStore::kv_get`] and friends) and the CLI (which
//! reads the event log); hosts reach it through the engine.
//!
//! ```no_run
//! # async fn demo() -> tenon_registry::Result<()> {
//! use tenon_registry::{open, PluginQuery, RegistryOptions, TenantId};
//!
//! let store = open(".tenon/registry.db", &RegistryOptions::default()).await?;
//! let page = store.list_plugins(&TenantId::default(), &PluginQuery::default()).await?;
//! for plugin in page.plugins {
//!     println!("{} {} {}", plugin.id, plugin.version, plugin.state);
//! }
//! # Ok(())
//! # }
//! ```

// A build without any backend offers the types and `open` (which then says
// which feature is missing); the backends' helpers go unused.
#![cfg_attr(
    not(any(feature = "memory", feature = "sqlite", feature = "postgres")),
    allow(dead_code)
)]

mod artifact;
mod audit;
mod backend;
mod change;
mod clock;
mod config;
mod error;
mod event;
mod grant;
mod kv;
mod log;
mod open;
mod page;
mod plugin;
mod publisher;
mod schema;
mod secret;
mod store;
mod tenant;
mod token;
mod writer;

#[cfg(all(
    test,
    any(feature = "memory", feature = "sqlite", feature = "postgres")
))]
mod tests;

pub use artifact::{ArtifactInfo, Sha256Digest};
#[cfg(feature = "memory")]
pub use backend::memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use backend::sql::postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use backend::sql::sqlite::SqliteStore;
pub use change::{Change, ChangeFeedError, ChangeKind, ChangeSubscription};
pub use config::{ConfigChange, ConfigInput, ConfigValue, PluginConfig, SecretValue};
pub use error::{BoxError, Record, RegistryError, Result};
pub use event::{
    Event, EventCursor, EventKind, EventOrder, EventPage, EventQuery, EventStatus, NewEvent,
};
pub use grant::{Grant, NewGrant};
pub use kv::{KvList, KvQuota, KvUsage, MAX_KV_KEY_LEN};
pub use log::{LogLevel, LogPage, LogQuery, LogRecord, NewLog};
pub use open::{DEFAULT_SQLITE_PATH, RegistryLocation, RegistryOptions, SqliteDurability, open};
pub use plugin::{
    DeleteOptions, DeleteReport, LastError, NewPlugin, NewVersion, PluginPage, PluginQuery,
    PluginRecord, PluginSource, PluginState, PluginUpdate, Purge, SourceKind, VersionRecord,
};
pub use publisher::{NewPublisherKey, PublisherKey};
pub use schema::LATEST_SCHEMA_VERSION;
pub use secret::{KeyFingerprint, SecretKey};
pub use store::{BackendKind, RegistryStore, StoreInfo};
pub use tenant::TenantId;
pub use token::{ApiToken, NewApiToken};
pub use writer::{EventWriter, EventWriterConfig, EventWriterStats, LogWriterStats};
