//! Set-up shared by Tenon's integration tests: the example plugins (built
//! from source once per test process), engines on throw-away registries, a
//! webhook sink on loopback, and the PostgreSQL server of the test machine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::Value;
use tempfile::TempDir;
use tenon_build::{BuiltPlugin, ExamplePlugins, ensure_examples_built};
use tenon_engine::{
    EngineBuilder, PluginEngine, SandboxConfig, SecretKey, TrustPolicy, agent_runner_hooks,
};

/// The example and hostile plugins, built once per process.
pub fn examples() -> &'static ExamplePlugins {
    ensure_examples_built()
}

/// One built plugin, by package name (`moderator`, `hostile-panicker`).
pub fn plugin(name: &str) -> &'static BuiltPlugin {
    examples().expect(name)
}

/// Copies a built plugin's installable directory to `dest` (a process
/// plugin's `bin/` too, modes kept), letting `edit` rewrite its manifest text
/// (to change its id, version or dependencies).
pub fn copy_plugin(name: &str, dest: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    copy_dir(&plugin(name).dir, dest);
    let manifest = dest.join("tenon.toml");
    let text = std::fs::read_to_string(&manifest).expect("the manifest");
    std::fs::write(&manifest, edit(text)).expect("writing the manifest");
    dest.to_path_buf()
}

/// Copies an example plugin's source directory (`examples/plugins/NAME`,
/// for plugins that need no build) to `dest`, letting `edit` rewrite its
/// manifest.
pub fn copy_source_plugin(name: &str, dest: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    copy_dir(&tenon_build::examples_dir().join(name), dest);
    let manifest = dest.join("tenon.toml");
    let text = std::fs::read_to_string(&manifest).expect("the manifest");
    std::fs::write(&manifest, edit(text)).expect("writing the manifest");
    dest.to_path_buf()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creating the copy");
    for entry in std::fs::read_dir(from).expect("reading the plugin directory") {
        let entry = entry.expect("an entry");
        let kind = entry.file_type().expect("a type");
        if kind.is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copying");
        }
    }
}

/// Replaces the first `key = "…"` line of a manifest's text.
pub fn set_field(text: &str, key: &str, value: &str) -> String {
    let mut done = false;
    text.lines()
        .map(|line| {
            if !done && line.trim_start().starts_with(&format!("{key} =")) {
                done = true;
                format!("{key} = \"{value}\"")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// An engine on a SQLite registry in a fresh directory, with the agent
/// runner's hooks, a secret key, and loopback reachable by plugins that
/// declare it (for the webhook sink).
pub struct TestEngine {
    /// The engine.
    pub engine: PluginEngine,
    /// Its directory (registry, data, cache); deleted on drop.
    pub dir: TempDir,
}

/// A builder set up like [`engine`]'s, on the registry in `dir`.
pub fn builder(dir: &Path) -> EngineBuilder {
    PluginEngine::builder()
        .registry(&dir.join("registry.db").to_string_lossy())
        .data_dir(dir)
        .hooks(agent_runner_hooks())
        .secret_key(test_key())
        .sandbox(SandboxConfig::default().with_private_networks(true))
        // The example plugins are installed from their directories.
        .trust_policy(TrustPolicy::development())
}

/// The secret key of every test engine (so that a second engine on the same
/// registry reads the same secrets).
pub fn test_key() -> SecretKey {
    SecretKey::parse(&"ab".repeat(32)).expect("a valid key")
}

/// A fresh engine.
pub async fn engine() -> TestEngine {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let engine = builder(dir.path())
        .build()
        .await
        .expect("the engine builds");
    TestEngine { engine, dir }
}

/// What a [`WebhookSink`] received: (authorization header, JSON body).
type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A loopback HTTP server recording the JSON bodies (and authorization
/// headers) POSTed to it.
pub struct WebhookSink {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    received: Received,
}

impl WebhookSink {
    /// Starts a sink.
    pub async fn start() -> Self {
        let received: Received = Arc::default();
        let app = Router::new()
            .route("/hook", post(record))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("binding loopback");
        let port = listener.local_addr().expect("an address").port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            received,
        }
    }

    /// What arrived so far: (authorization header, body).
    pub fn received(&self) -> Vec<(Option<String>, Value)> {
        self.received.lock().expect("not poisoned").clone()
    }
}

async fn record(
    State(received): State<Received>,
    headers: HeaderMap,
    body: String,
) -> &'static str {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    received.lock().expect("not poisoned").push((auth, body));
    "ok"
}

/// Polls `check` every 20 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The test machine's PostgreSQL (`TENON_TEST_POSTGRES_URL`, by default
/// `postgres://postgres@127.0.0.1:5432/test`), or `None` with a printed
/// reason when it cannot be reached. Under CI (`CI=true`) an unreachable
/// server fails the test instead.
pub async fn postgres() -> Option<String> {
    let url = std::env::var("TENON_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    match sqlx::postgres::PgPool::connect(&url).await {
        Ok(pool) => {
            pool.close().await;
            Some(url)
        }
        Err(error) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL at {url} is unreachable under CI: {error}");
            }
            eprintln!("skipping: PostgreSQL at {url} is unreachable ({error})");
            None
        }
    }
}

/// Drops a schema made by a test.
pub async fn drop_schema(url: &str, schema: &str) {
    if let Ok(pool) = sqlx::postgres::PgPool::connect(url).await {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&pool)
            .await;
        pool.close().await;
    }
}

/// A schema name no other test uses.
pub fn unique_schema() -> String {
    format!("tenon_it_{}", uuid::Uuid::new_v4().simple())
}
