//! A mock host for a plugin's own tests (feature `testing`, host targets
//! only).
//!
//! [`TestHost`] builds the plugin project (with `tenon-build`, for
//! `wasm32-wasip2`, once per test process), loads it in `tenon-sandbox`'s
//! component runtime — the runtime real hosts use, with the same limits and
//! permission checks — over an in-memory host ([`MemoryHost`]), activates it
//! with the config the test gives, and lets the test dispatch hooks, call
//! functions and inspect what the plugin did: log lines, KV entries, events,
//! refused host calls and the HTTP requests it sent to a local fake server.
//!
//! ```no_run
//! use tenon_pdk::serde_json::json;
//! use tenon_pdk::testing::TestHost;
//!
//! let host = TestHost::builder(env!("CARGO_MANIFEST_DIR"))
//!     .config(json!({"blocked_words": ["darn"]}))
//!     .start()
//!     .expect("the plugin builds and activates");
//! let outcome = host
//!     .hook("response.pre_deliver", json!({"content": "well, darn"}))
//!     .expect("the hook runs");
//! assert!(outcome.is_blocked());
//! ```
//!
//! The API is synchronous (each host owns a small tokio runtime): call it
//! from plain `#[test]` functions, not from inside an async runtime.
//!
//! Hooks of the standard set ([`crate::hooks::STANDARD`]) are checked as a
//! real host would: a patch touching a member the hook does not let plugins
//! change, or a block of a hook that cannot be blocked, is an error
//! ([`TestError::PatchRejected`], [`TestError::NotBlockable`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tenon_manifest::{Diagnostic, Manifest, Permissions, PluginId};
use tenon_sandbox::{
    CallOptions, Caller, ComponentConfig, ComponentRuntime, HookCall, HookResponse, LoadRequest,
    Plugin, Runtime, SandboxConfig,
};

pub use tenon_build::{BuildError, BuildOptions, BuiltPlugin};
pub use tenon_sandbox::{
    DenialRecord, EventRecord, HookContextData, LogLevel, LogRecord, MemoryHost, SandboxError,
    TrapKind,
};

use crate::hooks;

/// Why a [`TestHost`] could not start or a call could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestError {
    /// The plugin did not build.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The config given to the builder does not fit the manifest's
    /// `[config]` (a missing required key, a wrong type, an unknown key).
    #[error("the config does not fit the manifest:\n{}", list(.0))]
    Config(Vec<Diagnostic>),
    /// The config given to the builder is not a JSON object.
    #[error("the config must be a JSON object, not {0}")]
    ConfigNotObject(Value),
    /// The sandbox refused or failed the call: a load error, a trap, a
    /// timeout, the plugin's own error…
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The plugin's patch changes a member the hook does not let plugins
    /// change.
    #[error(
        "{hook}: the patch changes `{pointer}`, which plugins may not change (the hook allows {allowed})"
    )]
    PatchRejected {
        /// The hook.
        hook: String,
        /// The member, as a JSON pointer.
        pointer: String,
        /// What the hook allows.
        allowed: String,
    },
    /// The plugin blocked a hook that cannot be blocked.
    #[error("{hook}: the plugin blocked a hook that cannot be blocked")]
    NotBlockable {
        /// The hook.
        hook: String,
    },
    /// The plugin's patch is not JSON.
    #[error("{hook}: the plugin's patch is not JSON: {message}")]
    BadPatch {
        /// The hook.
        hook: String,
        /// The parser's complaint.
        message: String,
    },
    /// The test host itself could not be set up.
    #[error("the test host could not start: {0}")]
    Setup(String),
}

fn list(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One request the plugin sent to the fake HTTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`…
    pub method: String,
    /// The path and query, such as `/hook?x=1`.
    pub path: String,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of a header (names compared without regard to case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or `Value::Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A canned answer of the fake HTTP server.
#[derive(Debug, Clone)]
struct Canned {
    prefix: String,
    status: u16,
    body: Vec<u8>,
}

#[derive(Debug, Default)]
struct FakeHttpState {
    requests: Mutex<Vec<RecordedRequest>>,
    canned: Mutex<Vec<Canned>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeHttpState {
    /// The answer for `path`: the canned one with the longest matching
    /// prefix, else `200 ok`.
    fn answer(&self, path: &str) -> (u16, Vec<u8>) {
        lock(&self.canned)
            .iter()
            .filter(|c| path.starts_with(&c.prefix))
            .max_by_key(|c| c.prefix.len())
            .map(|c| (c.status, c.body.clone()))
            .unwrap_or((200, b"ok".to_vec()))
    }
}

async fn fake_http(
    axum::extract::State(state): axum::extract::State<Arc<FakeHttpState>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;

    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let (status, answer) = state.answer(&path);
    lock(&state.requests).push(RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path,
        headers,
        body,
    });
    let status = axum::http::StatusCode::from_u16(status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    (status, answer).into_response()
}

/// The component runtime all test hosts of a process share, so that each
/// module compiles once. Private networks are allowed at the host level so
/// that plugins whose manifests allow them (`allow_private = true` and
/// `127.0.0.1:*` in `network.outbound`) reach the fake HTTP server; the
/// manifest's own permissions still apply.
fn runtime() -> Result<ComponentRuntime, TestError> {
    static RUNTIME: OnceLock<Result<ComponentRuntime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let config = ComponentConfig::default()
                .with_sandbox(SandboxConfig::default().with_private_networks(true))
                .with_pooling(false)
                .with_cache_dir(std::env::temp_dir().join("tenon-pdk-testing-cache"));
            ComponentRuntime::new(config).map_err(|e| e.to_string())
        })
        .clone()
        .map_err(TestError::Setup)
}

/// Builds `dir` once per process (per directory and options).
fn build_once(dir: &Path, options: &BuildOptions) -> Result<BuiltPlugin, TestError> {
    type Key = (PathBuf, Option<PathBuf>, Option<PathBuf>, &'static str);
    static BUILT: OnceLock<Mutex<HashMap<Key, BuiltPlugin>>> = OnceLock::new();
    let key: Key = (
        dir.to_owned(),
        options.target_dir.clone(),
        options.out_dir.clone(),
        options.profile.as_str(),
    );
    let built = BUILT.get_or_init(Mutex::default);
    // Held across the build: concurrent tests of one process wait for the
    // first build instead of starting their own.
    let mut built = lock(built);
    if let Some(plugin) = built.get(&key) {
        return Ok(plugin.clone());
    }
    let plugin = tenon_build::build_plugin(dir, options)?;
    built.insert(key, plugin.clone());
    Ok(plugin)
}

/// The target directory of the `cargo test` running us (the directory
/// holding cargo's `CACHEDIR.TAG` above the test executable), so that plugin
/// builds go to `<it>/plugins` and are shared by every test binary.
fn outer_target_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(Path::to_owned)
}

enum Source {
    Project(PathBuf),
    Built(Box<BuiltPlugin>),
}

/// Sets up a [`TestHost`]; made by [`TestHost::builder`] or
/// [`TestHost::for_built`].
pub struct TestHostBuilder {
    source: Source,
    options: BuildOptions,
    config: Value,
    kv: Vec<(String, Vec<u8>)>,
    permissions: Option<Permissions>,
    tenant: String,
    data_dir: Option<PathBuf>,
    canned: Vec<Canned>,
}

impl TestHostBuilder {
    fn new(source: Source) -> Self {
        Self {
            source,
            options: BuildOptions {
                target_dir: outer_target_dir().map(|t| t.join("plugins")),
                ..BuildOptions::default()
            },
            config: Value::Object(Map::new()),
            kv: Vec::new(),
            permissions: None,
            tenant: "test".to_owned(),
            data_dir: None,
            canned: Vec::new(),
        }
    }

    /// The plugin's config (a JSON object), secrets included: they are
    /// checked against the manifest's `[config]` and defaults are applied as
    /// a host would; secret keys are then kept out of the config `activate`
    /// receives and served only through the host API.
    pub fn config(mut self, config: Value) -> Self {
        self.config = config;
        self
    }

    /// A KV entry present before the plugin starts.
    pub fn kv(mut self, key: &str, value: impl Into<Vec<u8>>) -> Self {
        self.kv.push((key.to_owned(), value.into()));
        self
    }

    /// The permissions in force (what an operator granted, intersected with
    /// the manifest); by default, everything the manifest declares.
    pub fn permissions(mut self, permissions: Permissions) -> Self {
        self.permissions = Some(permissions);
        self
    }

    /// The tenant the plugin runs for (`test` by default).
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.tenant = tenant.to_owned();
        self
    }

    /// The directory `permissions.filesystem` paths are relative to; by
    /// default a fresh temporary directory (removed with the host) when the
    /// manifest asks for filesystem access.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// How the plugin is built. By default: release, into `plugins/` under
    /// the target directory of the running `cargo test`.
    pub fn build_options(mut self, options: BuildOptions) -> Self {
        self.options = options;
        self
    }

    /// Makes the fake HTTP server answer requests whose path starts with
    /// `prefix` with `status` and `body` (the longest matching prefix wins;
    /// unmatched requests get `200 ok`).
    pub fn http_response(mut self, prefix: &str, status: u16, body: impl Into<Vec<u8>>) -> Self {
        self.canned.push(Canned {
            prefix: prefix.to_owned(),
            status,
            body: body.into(),
        });
        self
    }

    /// Builds (or reuses) the plugin, loads it, and activates it.
    pub fn start(self) -> Result<TestHost, TestError> {
        let plugin = match self.source {
            Source::Project(dir) => build_once(&dir, &self.options)?,
            Source::Built(plugin) => *plugin,
        };
        let manifest = Arc::new(plugin.manifest.clone());
        let values = match self.config {
            Value::Object(values) => values,
            other => return Err(TestError::ConfigNotObject(other)),
        };
        let resolved = manifest
            .config
            .validate(&values)
            .map_err(TestError::Config)?;
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| TestError::Setup(format!("a tokio runtime: {e}")))?;
        let http = Arc::new(FakeHttpState::default());
        *lock(&http.canned) = self.canned;
        let listener = tokio
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", 0)))
            .map_err(|e| TestError::Setup(format!("the fake HTTP server: {e}")))?;
        let http_addr = listener
            .local_addr()
            .map_err(|e| TestError::Setup(format!("the fake HTTP server: {e}")))?;
        let router = axum::Router::new()
            .fallback(fake_http)
            .with_state(http.clone());
        tokio.spawn(async move {
            // Runs until the runtime is dropped with the host.
            let _ = axum::serve(listener, router).await;
        });

        let (data_dir, temp_dir) = match self.data_dir {
            Some(dir) => (Some(dir), None),
            None if !manifest.permissions.filesystem.is_empty() => {
                let temp = tempfile::tempdir()
                    .map_err(|e| TestError::Setup(format!("a data directory: {e}")))?;
                (Some(temp.path().to_owned()), Some(temp))
            }
            None => (None, None),
        };
        let memory = Arc::new(MemoryHost::new());
        let id = manifest.plugin.id.clone();
        for (key, value) in &resolved.values {
            memory.set_config(&id, key, value.clone());
        }
        let caller = Arc::new(Caller {
            plugin: id.clone(),
            version: manifest.plugin.version.clone(),
            tenant: self.tenant.clone(),
            permissions: Arc::new(
                self.permissions
                    .unwrap_or_else(|| manifest.permissions.clone()),
            ),
        });
        let host = TestHost {
            tokio,
            runtime: runtime()?,
            module: plugin.module_bytes()?.into(),
            plugin: None,
            built: plugin,
            manifest,
            caller,
            memory,
            config: Value::Object(resolved.without_secrets()),
            data_dir,
            _temp_dir: temp_dir,
            http,
            http_url: format!("http://{http_addr}"),
            executions: AtomicU64::new(0),
        };
        host.seed_kv(&self.kv)?;
        host.launch(None)
    }
}

/// What a plugin answered to one hook.
#[derive(Debug, Clone, PartialEq)]
pub struct HookOutcome {
    /// The hook's data after the plugin's patch (unchanged when it blocked
    /// or sent no patch).
    pub data: Value,
    /// The merge patch the plugin returned, if any.
    pub patch: Option<Value>,
    /// Whether the plugin blocked.
    pub blocked: bool,
    /// Why, when it blocked and said.
    pub reason: Option<String>,
}

impl HookOutcome {
    /// Whether the plugin blocked.
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// The block's reason.
    pub fn block_reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
}

/// A plugin running under a mock host; see the [module docs](self).
pub struct TestHost {
    tokio: tokio::runtime::Runtime,
    runtime: ComponentRuntime,
    built: BuiltPlugin,
    manifest: Arc<Manifest>,
    module: Arc<[u8]>,
    caller: Arc<Caller>,
    memory: Arc<MemoryHost>,
    config: Value,
    data_dir: Option<PathBuf>,
    _temp_dir: Option<tempfile::TempDir>,
    plugin: Option<Arc<dyn Plugin>>,
    http: Arc<FakeHttpState>,
    http_url: String,
    executions: AtomicU64,
}

impl std::fmt::Debug for TestHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHost")
            .field("plugin", &self.manifest.plugin.id)
            .field("tenant", &self.caller.tenant)
            .field("http_url", &self.http_url)
            .finish_non_exhaustive()
    }
}

impl TestHost {
    /// A host for the plugin project in `dir` (usually
    /// `env!("CARGO_MANIFEST_DIR")`).
    pub fn builder(dir: impl AsRef<Path>) -> TestHostBuilder {
        TestHostBuilder::new(Source::Project(dir.as_ref().to_owned()))
    }

    /// A host for a plugin built already (by `tenon_build`).
    pub fn for_built(plugin: &BuiltPlugin) -> TestHostBuilder {
        TestHostBuilder::new(Source::Built(Box::new(plugin.clone())))
    }

    fn seed_kv(&self, entries: &[(String, Vec<u8>)]) -> Result<(), TestError> {
        use tenon_sandbox::HostApi;
        for (key, value) in entries {
            self.tokio
                .block_on(self.memory.kv_set(&self.caller, key, value))
                .map_err(|e| TestError::Setup(format!("KV entry `{key}`: {e}")))?;
        }
        Ok(())
    }

    /// Loads the module, starts it with the config, and restores `state`.
    fn launch(mut self, state: Option<Vec<u8>>) -> Result<Self, TestError> {
        let request = LoadRequest {
            manifest: self.manifest.clone(),
            module: self.module.clone(),
            caller: self.caller.clone(),
            host: self.memory.clone(),
            observer: self.memory.clone(),
            data_dir: self.data_dir.clone(),
        };
        let plugin = self.tokio.block_on(self.runtime.load(request))?;
        self.tokio.block_on(plugin.start(&self.config))?;
        if let Some(state) = state {
            self.tokio.block_on(plugin.restore(&state))?;
        }
        self.plugin = Some(plugin);
        Ok(self)
    }

    fn plugin(&self) -> &Arc<dyn Plugin> {
        self.plugin
            .as_ref()
            .expect("a TestHost always holds a started plugin")
    }

    /// Dispatches one hook with a fresh context (the host's tenant, a new
    /// execution id, the current time, an empty state).
    pub fn hook(&self, hook: &str, data: Value) -> Result<HookOutcome, TestError> {
        let execution = self.executions.fetch_add(1, Ordering::Relaxed) + 1;
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let context = HookContextData {
            execution_id: format!("test-{execution}"),
            tenant: self.caller.tenant.clone(),
            user_id: None,
            session_id: None,
            timestamp_ms,
            state: "{}".to_owned(),
        };
        self.hook_with(hook, data, &context, CallOptions::default())
    }

    /// Dispatches one hook with the given context and options.
    pub fn hook_with(
        &self,
        hook: &str,
        data: Value,
        context: &HookContextData,
        options: CallOptions,
    ) -> Result<HookOutcome, TestError> {
        let text = data.to_string();
        let response = self.tokio.block_on(self.plugin().handle_hook(HookCall {
            hook,
            context,
            data: &text,
            options,
        }))?;
        let spec = hooks::spec(hook);
        match response {
            HookResponse::Block { reason } => {
                if spec.is_some_and(|s| !s.can_block) {
                    return Err(TestError::NotBlockable {
                        hook: hook.to_owned(),
                    });
                }
                Ok(HookOutcome {
                    data,
                    patch: None,
                    blocked: true,
                    reason,
                })
            }
            HookResponse::Continue { patch: None } => Ok(HookOutcome {
                data,
                patch: None,
                blocked: false,
                reason: None,
            }),
            HookResponse::Continue { patch: Some(text) } => {
                let patch: Value =
                    serde_json::from_str(&text).map_err(|e| TestError::BadPatch {
                        hook: hook.to_owned(),
                        message: e.to_string(),
                    })?;
                if let Some(spec) = spec {
                    check_patch(hook, spec.mutable, &patch, &mut Vec::new())?;
                }
                let mut data = data;
                crate::json::merge(&mut data, &patch);
                Ok(HookOutcome {
                    data,
                    patch: Some(patch),
                    blocked: false,
                    reason: None,
                })
            }
        }
    }

    /// Calls a function.
    pub fn call(&self, function: &str, input: impl AsRef<[u8]>) -> Result<Vec<u8>, TestError> {
        self.call_with(function, input, CallOptions::default())
    }

    /// Calls a function with options (such as a shorter timeout).
    pub fn call_with(
        &self,
        function: &str,
        input: impl AsRef<[u8]>,
        options: CallOptions,
    ) -> Result<Vec<u8>, TestError> {
        Ok(self
            .tokio
            .block_on(self.plugin().call(function, input.as_ref(), options))?)
    }

    /// Calls a function with JSON in and out (`Value::Null` for an empty
    /// answer).
    pub fn call_json(&self, function: &str, input: &Value) -> Result<Value, TestError> {
        let output = self.call(function, input.to_string())?;
        if output.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&output).map_err(|e| {
            TestError::Sandbox(SandboxError::Protocol {
                plugin: self.manifest.plugin.id.to_string(),
                message: format!("`{function}` did not answer JSON: {e}"),
            })
        })
    }

    /// Delivers a new config (checked against the manifest like the first).
    pub fn configure(&mut self, config: Value) -> Result<(), TestError> {
        let values = match config {
            Value::Object(values) => values,
            other => return Err(TestError::ConfigNotObject(other)),
        };
        let resolved = self
            .manifest
            .config
            .validate(&values)
            .map_err(TestError::Config)?;
        for (key, value) in &resolved.values {
            self.memory
                .set_config(&self.manifest.plugin.id, key, value.clone());
        }
        self.config = Value::Object(resolved.without_secrets());
        Ok(self.tokio.block_on(self.plugin().configure(&self.config))?)
    }

    /// The plugin's in-memory state, as `snapshot` exports it.
    pub fn snapshot(&self) -> Result<Option<Vec<u8>>, TestError> {
        Ok(self.tokio.block_on(self.plugin().snapshot())?)
    }

    /// A hot reload, as a host does one: snapshot, stop, load the module
    /// anew, start it, restore the snapshot. KV and config stay.
    pub fn reload(mut self) -> Result<Self, TestError> {
        let state = self.snapshot()?;
        let old = self.plugin.take().expect("a started plugin");
        self.tokio.block_on(old.stop())?;
        self.launch(state)
    }

    /// The plugin as the sandbox runs it (health, stats, raw calls).
    pub fn sandbox_plugin(&self) -> &Arc<dyn Plugin> {
        self.plugin()
    }

    /// The in-memory host (config, KV, records).
    pub fn memory_host(&self) -> &Arc<MemoryHost> {
        &self.memory
    }

    /// The built plugin under test.
    pub fn built(&self) -> &BuiltPlugin {
        &self.built
    }

    /// The plugin's id.
    pub fn id(&self) -> &PluginId {
        &self.manifest.plugin.id
    }

    /// Every log line the plugin wrote (its stdout and stderr included).
    pub fn logs(&self) -> Vec<LogRecord> {
        self.memory.logs()
    }

    /// The messages of the log lines, in order.
    pub fn log_messages(&self) -> Vec<String> {
        self.logs().into_iter().map(|l| l.message).collect()
    }

    /// The plugin's KV entries for the host's tenant.
    pub fn kv(&self) -> BTreeMap<String, Vec<u8>> {
        self.memory
            .kv_entries(&self.manifest.plugin.id, &self.caller.tenant)
    }

    /// One KV value.
    pub fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.kv().remove(key)
    }

    /// Every event the plugin published.
    pub fn events(&self) -> Vec<EventRecord> {
        self.memory.events()
    }

    /// Every host call the boundary refused.
    pub fn denials(&self) -> Vec<DenialRecord> {
        self.memory.denials()
    }

    /// The base URL of the fake HTTP server (`http://127.0.0.1:PORT`): give
    /// it to the plugin in its config. The plugin's manifest must allow
    /// `127.0.0.1:*` (the server listens on a free port) with
    /// `allow_private = true` to reach it.
    pub fn http_url(&self) -> &str {
        &self.http_url
    }

    /// Every request the fake HTTP server received, in order.
    pub fn http_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.http.requests).clone()
    }

    /// The options for a call with a timeout shorter than the manifest's.
    pub fn timeout(timeout: Duration) -> CallOptions {
        CallOptions {
            timeout: Some(timeout),
            ..CallOptions::default()
        }
    }
}

/// Checks that every member `patch` sets lies at or below one of `mutable`
/// (JSON pointers); `path` is where `patch` sits in the data.
fn check_patch(
    hook: &str,
    mutable: &[&str],
    patch: &Value,
    path: &mut Vec<String>,
) -> Result<(), TestError> {
    let pointer: String = path
        .iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect();
    let covered = mutable
        .iter()
        .any(|m| pointer == *m || pointer.starts_with(&format!("{m}/")));
    if covered {
        return Ok(());
    }
    match patch {
        Value::Object(members) if !path.is_empty() || !members.is_empty() => {
            for (key, value) in members {
                path.push(key.clone());
                let result = check_patch(hook, mutable, value, path);
                path.pop();
                result?;
            }
            Ok(())
        }
        Value::Object(_) => Ok(()),
        _ => Err(TestError::PatchRejected {
            hook: hook.to_owned(),
            pointer: if pointer.is_empty() {
                "/".to_owned()
            } else {
                pointer
            },
            allowed: if mutable.is_empty() {
                "no changes".to_owned()
            } else {
                mutable.join(", ")
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn patches_are_checked_against_mutable_members() {
        let check = |mutable: &[&str], patch: Value, rejected: Option<&str>| {
            let result = check_patch("h", mutable, &patch, &mut Vec::new());
            match (result, rejected) {
                (Ok(()), None) => {}
                (Err(TestError::PatchRejected { pointer, .. }), Some(expected)) => {
                    assert_eq!(pointer, expected, "{patch}");
                }
                (other, _) => panic!("{patch}: {other:?}"),
            }
        };
        let output = &["/result/output"][..];
        check(output, json!({"result": {"output": "x"}}), None);
        check(output, json!({"result": {"output": {"nested": 1}}}), None);
        check(output, json!({"result": {"code": 1}}), Some("/result/code"));
        check(output, json!({"result": "flat"}), Some("/result"));
        check(output, json!({"result": {}}), None);
        check(output, json!({}), None);
        check(&[], json!({"content": "x"}), Some("/content"));
        check(&["/a~1b"], json!({"a/b": 1}), None);
        check(&["/toolInput"], json!("replace everything"), Some("/"));
    }
}
