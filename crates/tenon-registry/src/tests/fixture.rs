//! A store under test, and what the suite needs to look behind it.

use std::sync::Arc;

#[cfg(feature = "memory")]
use crate::MemoryStore;
use crate::artifact::Sha256Digest;
use crate::open::RegistryOptions;
use crate::secret::SecretKey;
use crate::store::RegistryStore;
use crate::tenant::TenantId;

/// The secret key every fixture is opened with.
pub(crate) fn test_key() -> SecretKey {
    SecretKey::from_bytes([42; 32])
}

/// A store of one backend, opened on fresh storage.
pub(crate) struct Fixture {
    pub(crate) store: Arc<dyn RegistryStore>,
    backend: Backend,
}

enum Backend {
    #[cfg(feature = "memory")]
    Memory(Arc<MemoryStore>),
    #[cfg(feature = "sqlite")]
    Sqlite {
        store: Arc<crate::SqliteStore>,
        path: std::path::PathBuf,
        _dir: tempfile::TempDir,
    },
    #[cfg(feature = "postgres")]
    Postgres {
        store: Arc<crate::PostgresStore>,
        schema: pg::Schema,
    },
}

impl Fixture {
    pub(crate) fn options() -> RegistryOptions {
        RegistryOptions::default().with_secret_key(test_key())
    }

    #[cfg(feature = "memory")]
    pub(crate) async fn memory() -> Self {
        let store = Arc::new(MemoryStore::new(&Self::options()));
        Self {
            store: store.clone(),
            backend: Backend::Memory(store),
        }
    }

    #[cfg(feature = "sqlite")]
    pub(crate) async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // A directory that does not exist yet: opening creates it.
        let path = dir.path().join("state").join("registry.db");
        let store = Arc::new(
            crate::SqliteStore::open(&path, &Self::options())
                .await
                .unwrap(),
        );
        Self {
            store: store.clone(),
            backend: Backend::Sqlite {
                store,
                path,
                _dir: dir,
            },
        }
    }

    /// A store in a fresh schema, or `None` (with a message) when no server
    /// is reachable outside CI.
    #[cfg(feature = "postgres")]
    pub(crate) async fn postgres() -> Option<Self> {
        let schema = pg::Schema::create().await?;
        let store = Arc::new(
            crate::PostgresStore::connect(&schema.url, &schema.options(Self::options()))
                .await
                .unwrap(),
        );
        Some(Self {
            store: store.clone(),
            backend: Backend::Postgres { store, schema },
        })
    }

    /// Another store on the same database, opened with `options`; `None`
    /// for the memory backend, whose data lives in its one store.
    pub(crate) async fn open_another(
        &self,
        options: RegistryOptions,
    ) -> Option<Arc<dyn RegistryStore>> {
        match &self.backend {
            #[cfg(feature = "memory")]
            Backend::Memory(_) => {
                drop(options);
                None
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { path, .. } => Some(Arc::new(
                crate::SqliteStore::open(path, &options).await.unwrap(),
            )),
            #[cfg(feature = "postgres")]
            Backend::Postgres { schema, .. } => Some(Arc::new(
                crate::PostgresStore::connect(&schema.url, &schema.options(options))
                    .await
                    .unwrap(),
            )),
        }
    }

    /// Flips a byte of a stored artifact behind the store's back.
    pub(crate) async fn corrupt_artifact(&self, tenant: &TenantId, sha256: &Sha256Digest) {
        match &self.backend {
            #[cfg(feature = "memory")]
            Backend::Memory(store) => store.corrupt_artifact(tenant, sha256),
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { store, .. } => {
                let done = sqlx::query(
                    "UPDATE plugin_artifacts SET content = zeroblob(size) \
                     WHERE tenant = $1 AND sha256 = $2",
                )
                .bind(tenant.as_str())
                .bind(sha256.to_hex())
                .execute(store.pool())
                .await
                .unwrap();
                assert_eq!(done.rows_affected(), 1);
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres { store, .. } => {
                let done = sqlx::query(
                    "UPDATE plugin_artifacts SET content = set_byte(content, 0, 255 - get_byte(content, 0)) \
                     WHERE tenant = $1 AND sha256 = $2",
                )
                .bind(tenant.as_str())
                .bind(sha256.to_hex())
                .execute(store.pool())
                .await
                .unwrap();
                assert_eq!(done.rows_affected(), 1);
            }
        }
    }

    /// Every byte the backend keeps at rest for config and events: the
    /// whole database file (and its WAL) for SQLite, the rows of the tables
    /// for PostgreSQL, the stored form for memory.
    pub(crate) async fn bytes_at_rest(&self) -> Vec<u8> {
        match &self.backend {
            #[cfg(feature = "memory")]
            Backend::Memory(store) => {
                let mut bytes = store.config_bytes_at_rest();
                let events = self
                    .store
                    .list_events(
                        &TenantId::default(),
                        &crate::EventQuery::default().with_limit(10_000),
                    )
                    .await
                    .unwrap();
                for event in events.events {
                    bytes.extend_from_slice(event.detail.to_string().as_bytes());
                }
                bytes
            }
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { path, .. } => {
                let mut bytes = std::fs::read(path).unwrap();
                let wal = path.with_extension("db-wal");
                if wal.exists() {
                    bytes.extend(std::fs::read(wal).unwrap());
                }
                bytes
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres { store, .. } => {
                let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
                    "SELECT 'config', convert_to(coalesce(value, ''), 'UTF8') || coalesce(secret, ''::bytea) \
                     FROM plugin_config \
                     UNION ALL SELECT 'event', convert_to(detail, 'UTF8') FROM plugin_events",
                )
                .fetch_all(store.pool())
                .await
                .unwrap();
                rows.into_iter().flat_map(|(_, bytes)| bytes).collect()
            }
        }
    }

    /// Releases the storage (drops the PostgreSQL schema).
    pub(crate) async fn finish(self) {
        match self.backend {
            #[cfg(feature = "memory")]
            Backend::Memory(_) => {}
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { store, .. } => store.close().await,
            #[cfg(feature = "postgres")]
            Backend::Postgres { store, schema } => {
                store.close().await;
                schema.drop_now().await;
            }
        }
    }
}

#[cfg(feature = "postgres")]
pub(crate) mod pg {
    //! Throwaway PostgreSQL schemas.

    use std::sync::OnceLock;
    use std::time::Duration;

    use sqlx::Connection as _;
    use sqlx::postgres::PgConnection;

    use crate::open::RegistryOptions;

    const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

    /// The server the tests use.
    pub(crate) fn url() -> String {
        std::env::var("TENON_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
    }

    /// Whether the server answers; checked once per test binary. Under
    /// `CI=true`, an unreachable server fails the test instead.
    pub(crate) fn available() -> bool {
        static REACHABLE: OnceLock<Result<(), String>> = OnceLock::new();
        let reachable = REACHABLE.get_or_init(|| {
            let url = url();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&url))
                        .await
                    {
                        Ok(Ok(connection)) => {
                            let _ = connection.close().await;
                            Ok(())
                        }
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("no answer within 5 s".to_owned()),
                    }
                })
            })
            .join()
            .unwrap()
        });
        match reachable {
            Ok(()) => true,
            Err(reason) => {
                let url = crate::open::redact_url(&url());
                if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                    panic!(
                        "PostgreSQL at {url} is unreachable ({reason}) and CI=true: the PostgreSQL tests must run in CI"
                    );
                }
                eprintln!(
                    "skipping a PostgreSQL test: {url} is unreachable ({reason}); set TENON_TEST_POSTGRES_URL to run it"
                );
                false
            }
        }
    }

    /// A schema of its own for one test, dropped by
    /// [`drop_now`](Self::drop_now), or on drop if the test panicked.
    pub(crate) struct Schema {
        pub(crate) url: String,
        pub(crate) name: String,
        dropped: bool,
    }

    impl Schema {
        pub(crate) async fn create() -> Option<Self> {
            if !available() {
                return None;
            }
            let name = format!("tenon_test_{}", uuid::Uuid::new_v4().simple());
            Some(Self {
                url: url(),
                name,
                dropped: false,
            })
        }

        /// `options` with this schema.
        pub(crate) fn options(&self, options: RegistryOptions) -> RegistryOptions {
            options.with_postgres_schema(&self.name)
        }

        pub(crate) async fn drop_now(mut self) {
            drop_schema(&self.url, &self.name).await;
            self.dropped = true;
        }
    }

    impl Drop for Schema {
        fn drop(&mut self) {
            if self.dropped {
                return;
            }
            let (url, name) = (self.url.clone(), self.name.clone());
            // Not inside the test's runtime: it may be gone (a panic).
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(drop_schema(&url, &name));
            })
            .join();
        }
    }

    async fn drop_schema(url: &str, name: &str) {
        let mut connection = PgConnection::connect(url).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
            .execute(&mut connection)
            .await
            .unwrap();
        let _ = connection.close().await;
    }
}
