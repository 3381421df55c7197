//! Opening a registry from a location string (`--registry`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{RegistryError, Result};
use crate::secret::SecretKey;
use crate::store::RegistryStore;

/// Where `tenon` keeps its registry when `--registry` is not given.
pub const DEFAULT_SQLITE_PATH: &str = ".tenon/registry.db";

/// How much SQLite waits for the disk before a commit returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SqliteDurability {
    /// `synchronous = NORMAL` in WAL mode: a crash of the process or of the
    /// host application never loses or corrupts a commit; a power loss may
    /// lose the last commits (never corrupts).
    #[default]
    Normal,
    /// `synchronous = FULL`: every commit survives a power loss too, at the
    /// cost of one fsync per commit.
    Full,
}

/// How to open a registry.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// The key that encrypts secret config values. Without one, secrets can
    /// be neither stored nor revealed (plain values work).
    pub secret_key: Option<SecretKey>,
    /// SQLite: how long a write waits for another process's write to finish
    /// before failing.
    pub busy_timeout: Duration,
    /// The most connections the store opens (SQLite: readers; the writer is
    /// one more connection).
    pub max_connections: u32,
    /// How long an operation waits for a free connection (and PostgreSQL
    /// for a connection to be made).
    pub acquire_timeout: Duration,
    /// PostgreSQL: the schema holding the registry's tables (created if
    /// missing). Without one, the connection's `search_path` decides
    /// (usually `public`). Several registries can share a database in
    /// different schemas; their change feeds stay apart.
    pub postgres_schema: Option<String>,
    /// SQLite: commit durability.
    pub sqlite_durability: SqliteDurability,
    /// How many announced changes a slow subscriber may fall behind before
    /// it is told it lagged.
    pub change_capacity: usize,
    /// SQLite: how often a subscribed store looks for the changes other
    /// processes made to the same file (its own arrive at once).
    pub change_poll_interval: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            secret_key: None,
            busy_timeout: Duration::from_secs(5),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            postgres_schema: None,
            sqlite_durability: SqliteDurability::Normal,
            change_capacity: 1024,
            change_poll_interval: Duration::from_millis(250),
        }
    }
}

impl RegistryOptions {
    /// With `key` for secret config values.
    pub fn with_secret_key(mut self, key: SecretKey) -> Self {
        self.secret_key = Some(key);
        self
    }

    /// With the PostgreSQL schema `schema`.
    pub fn with_postgres_schema(mut self, schema: &str) -> Self {
        self.postgres_schema = Some(schema.to_owned());
        self
    }
}

/// A parsed registry location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryLocation {
    /// `memory:`: a [`MemoryStore`](crate::MemoryStore), gone with the process.
    Memory,
    /// A path, or `sqlite://path` / `sqlite:path`; `sqlite::memory:` is a
    /// private in-memory SQLite database.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
}

impl RegistryLocation {
    /// The SQLite path that means an in-memory database.
    pub const SQLITE_MEMORY: &'static str = ":memory:";

    /// Reads a location as `tenon --registry` takes it.
    pub fn parse(location: &str) -> Result<Self> {
        let location = location.trim();
        if location.is_empty() {
            return Err(RegistryError::invalid(
                "registry location",
                location,
                "give a path, `memory:`, `sqlite://path` or `postgres://…`",
            ));
        }
        if location == "memory:" || location == "memory://" {
            return Ok(Self::Memory);
        }
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            return Ok(Self::Postgres(location.to_owned()));
        }
        if let Some(rest) = location.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.contains('?') {
                return Err(RegistryError::invalid(
                    "registry location",
                    location,
                    "SQLite URL parameters are not supported; set RegistryOptions instead",
                ));
            }
            if path.is_empty() {
                return Err(RegistryError::invalid(
                    "registry location",
                    location,
                    "the SQLite URL names no file",
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = location.split_once("://") {
            return Err(RegistryError::invalid(
                "registry location",
                location,
                format!(
                    "`{scheme}` is not a registry backend; use a path, `memory:`, `sqlite://path` or `postgres://…`"
                ),
            ));
        }
        Ok(Self::Sqlite(PathBuf::from(location)))
    }

    /// The location for messages, with any password removed.
    pub fn display(&self) -> String {
        match self {
            Self::Memory => "memory:".to_owned(),
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url) => redact_url(url),
        }
    }
}

/// `scheme://user:password@host…?password=…` without the passwords.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Opens the registry at `location` (see [`RegistryLocation::parse`]) with the
/// backend it names, creating and migrating it as needed.
///
/// Refuses ([`RegistryError::NewerSchema`]) a database migrated by a newer
/// Tenon, before changing anything in it.
pub async fn open(location: &str, options: &RegistryOptions) -> Result<Arc<dyn RegistryStore>> {
    match RegistryLocation::parse(location)? {
        RegistryLocation::Memory => open_memory(options),
        RegistryLocation::Sqlite(path) => open_sqlite(&path, options).await,
        RegistryLocation::Postgres(url) => open_postgres(&url, options).await,
    }
}

#[cfg(feature = "memory")]
fn open_memory(options: &RegistryOptions) -> Result<Arc<dyn RegistryStore>> {
    Ok(Arc::new(crate::MemoryStore::new(options)))
}

#[cfg(not(feature = "memory"))]
fn open_memory(_: &RegistryOptions) -> Result<Arc<dyn RegistryStore>> {
    Err(RegistryError::BackendUnavailable {
        location: "memory:".to_owned(),
        feature: "memory",
    })
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(path: &Path, options: &RegistryOptions) -> Result<Arc<dyn RegistryStore>> {
    Ok(Arc::new(crate::SqliteStore::open(path, options).await?))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(path: &Path, _: &RegistryOptions) -> Result<Arc<dyn RegistryStore>> {
    Err(RegistryError::BackendUnavailable {
        location: path.display().to_string(),
        feature: "sqlite",
    })
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str, options: &RegistryOptions) -> Result<Arc<dyn RegistryStore>> {
    Ok(Arc::new(crate::PostgresStore::connect(url, options).await?))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(url: &str, _: &RegistryOptions) -> Result<Arc<dyn RegistryStore>> {
    Err(RegistryError::BackendUnavailable {
        location: redact_url(url),
        feature: "postgres",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<RegistryLocation, &str>) {
        let got = RegistryLocation::parse(input).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "input {input:?}");
    }

    #[test]
    fn locations() {
        use RegistryLocation::*;
        check("memory:", Ok(Memory));
        check(
            "./.tenon/registry.db",
            Ok(Sqlite("./.tenon/registry.db".into())),
        );
        check(
            "/var/lib/tenon/r.db",
            Ok(Sqlite("/var/lib/tenon/r.db".into())),
        );
        check("sqlite:///var/r.db", Ok(Sqlite("/var/r.db".into())));
        check("sqlite://r.db", Ok(Sqlite("r.db".into())));
        check("sqlite:r.db", Ok(Sqlite("r.db".into())));
        check("sqlite::memory:", Ok(Sqlite(":memory:".into())));
        check(
            "postgres://u:p@db/tenon",
            Ok(Postgres("postgres://u:p@db/tenon".into())),
        );
        check(
            "postgresql://db/tenon",
            Ok(Postgres("postgresql://db/tenon".into())),
        );
        check(
            "mysql://db/x",
            Err(
                "invalid registry location `mysql://db/x`: `mysql` is not a registry backend; use a path, `memory:`, `sqlite://path` or `postgres://…`",
            ),
        );
        check(
            "sqlite://r.db?mode=ro",
            Err(
                "invalid registry location `sqlite://r.db?mode=ro`: SQLite URL parameters are not supported; set RegistryOptions instead",
            ),
        );
        check(
            "",
            Err(
                "invalid registry location ``: give a path, `memory:`, `sqlite://path` or `postgres://…`",
            ),
        );
    }

    #[test]
    fn redaction() {
        let check = |url: &str, expected: &str| assert_eq!(redact_url(url), expected);
        check(
            "postgres://u:secret@db:5432/x",
            "postgres://u:***@db:5432/x",
        );
        check("postgres://u@db/x", "postgres://u@db/x");
        check(
            "postgres://db/x?sslmode=require&password=no",
            "postgres://db/x?sslmode=require&password=***",
        );
        check("postgres://u:p@ss@db/x", "postgres://u:***@db/x");
    }
}
