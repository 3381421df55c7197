//! Installing by name from a real marketplace server on loopback (SQLite):
//! dependency trees, conflicts, yanked versions, updates, and every attack
//! on the way from the server to the registry refused with nothing
//! installed. The attacks go through a proxy in front of the server that
//! replays, tampers with, endlessly extends or cuts what the server sends.
//! The catalog (search, categories, curated and popular lists) is read
//! through the engine too.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use tenon_engine::{
    EngineError, GrantRequest, InstallSource, MarketplaceOptions, PluginEngine, PluginId,
    SearchQuery, SecretKey, Sort, SourceKind, TrustPolicy, UninstallOptions,
};
use tenon_market_server::{
    Expiries, HttpLimits, Market, MarketConfig, MarketKeys, Principal, Scope, encode_upload,
};
use tenon_marketplace::client::ClientError;
use tenon_marketplace::{PackOptions, Role, SignatureFile, SigningKey, pack};
use time::OffsetDateTime;

/// What the proxy does to a response, by request path.
#[derive(Clone)]
enum Attack {
    /// Serve these bytes instead.
    Replace(Vec<u8>),
    /// Flip one byte of the body.
    Tamper,
    /// Send bytes forever, without a length.
    Endless,
    /// Send half the body, then drop the connection.
    Vanish,
    /// Answer 404, as if the server had no such file.
    Hide,
}

#[derive(Default)]
struct ProxyState {
    upstream: Mutex<String>,
    attacks: Mutex<HashMap<String, Attack>>,
}

struct Marketplace {
    /// The real server.
    market: Arc<Market>,
    /// Its settings (a restart keeps them).
    config: MarketConfig,
    /// The current root's signing keys (offline in real life).
    root_keys: Vec<SigningKey>,
    /// Its URL.
    direct: String,
    /// The proxy's URL (what clients use).
    url: String,
    proxy: Arc<ProxyState>,
    alice: Principal,
    key: SigningKey,
    _dir: tempfile::TempDir,
}

async fn forward(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or(path.clone(), ToString::to_string);
    let attack = state.attacks.lock().get(&path).cloned();
    match attack {
        Some(Attack::Replace(bytes)) => return bytes.into_response(),
        Some(Attack::Hide) => return axum::http::StatusCode::NOT_FOUND.into_response(),
        _ => {}
    }
    let upstream_url = format!("{}{path_and_query}", state.upstream.lock());
    let mut upstream = reqwest::Client::new().get(upstream_url);
    if let Some(tag) = request.headers().get("if-none-match") {
        upstream = upstream.header("if-none-match", tag.as_bytes());
    }
    let answer = upstream.send().await.expect("the real server answers");
    let status = answer.status().as_u16();
    let etag = answer.headers().get("etag").cloned();
    let mut body = answer.bytes().await.expect("a body").to_vec();
    let body = match attack {
        Some(Attack::Tamper) => {
            let at = body.len() / 2;
            body[at] ^= 0x01;
            Body::from(body)
        }
        Some(Attack::Endless) => Body::from_stream(futures::stream::repeat_with(|| {
            Ok::<_, std::io::Error>(Bytes::from_static(&[b'x'; 64 * 1024]))
        })),
        Some(Attack::Vanish) => {
            let half = Bytes::from(body[..body.len() / 2].to_vec());
            Body::from_stream(futures::stream::iter([
                Ok(half),
                Err(std::io::Error::other("the server went away")),
            ]))
        }
        _ => Body::from(body),
    };
    let mut response = Response::new(body);
    *response.status_mut() = axum::http::StatusCode::from_u16(status).expect("a status");
    if let Some(etag) = etag {
        response.headers_mut().insert("etag", etag);
    }
    response
}

async fn serve_on_loopback(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    format!("http://{addr}")
}

async fn marketplace(expiries: Expiries) -> Marketplace {
    marketplace_with_keys(expiries, |dir| {
        tenon_market_server::init(dir, 1, 1, OffsetDateTime::now_utc()).unwrap();
        vec![read_key(&dir.join("root-1.key"))]
    })
    .await
}

/// A root key file's key.
fn read_key(path: &std::path::Path) -> SigningKey {
    SigningKey::from_base64(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A marketplace whose key directory `make_keys` prepares (returning the
/// current root's keys).
async fn marketplace_with_keys(
    expiries: Expiries,
    make_keys: impl FnOnce(&std::path::Path) -> Vec<SigningKey>,
) -> Marketplace {
    let dir = tempfile::tempdir().unwrap();
    let root_keys = make_keys(&dir.path().join("keys"));
    let config = MarketConfig {
        expiries,
        ..MarketConfig::default()
    };
    let (market, direct) = open_and_serve(dir.path(), &config).await;
    let proxy = Arc::new(ProxyState {
        upstream: Mutex::new(direct.clone()),
        attacks: Mutex::default(),
    });
    let url = serve_on_loopback(
        axum::Router::new()
            .fallback(forward)
            .with_state(proxy.clone()),
    )
    .await;
    let alice = market
        .account("alice", &[Scope::Publish, Scope::Yank])
        .await
        .unwrap();
    Marketplace {
        market,
        config,
        root_keys,
        direct,
        url,
        proxy,
        alice,
        key: SigningKey::from_seed(&[7; 32]),
        _dir: dir,
    }
}

/// The marketplace of `dir` (`keys/`, `market.db`) served on loopback.
async fn open_and_serve(dir: &std::path::Path, config: &MarketConfig) -> (Arc<Market>, String) {
    let keys = MarketKeys::load(&dir.join("keys"), OffsetDateTime::now_utc()).unwrap();
    let market = Arc::new(
        Market::open_sqlite(
            dir.join("market.db").to_str().unwrap(),
            keys,
            config.clone(),
        )
        .await
        .unwrap(),
    );
    let direct = serve_on_loopback(tenon_market_server::router(
        market.clone(),
        HttpLimits::default(),
    ))
    .await;
    (market, direct)
}

/// A package of `id` `version` depending on `deps` (`("acme/base", "^1")`),
/// signed by `key`.
fn package(id: &str, version: &str, deps: &[(&str, &str)], key: &SigningKey) -> Vec<u8> {
    package_with(id, version, deps, key, "")
}

/// [`package`], with `extra` appended to its manifest.
fn package_with(
    id: &str,
    version: &str,
    deps: &[(&str, &str)],
    key: &SigningKey,
    extra: &str,
) -> Vec<u8> {
    package_listed(id, version, deps, key, extra, "", "^1")
}

/// [`package_with`], with `plugin_lines` in its `[plugin]` table (keywords,
/// categories) and `tenon` as its plugin API requirement.
fn package_listed(
    id: &str,
    version: &str,
    deps: &[(&str, &str)],
    key: &SigningKey,
    extra: &str,
    plugin_lines: &str,
    tenon: &str,
) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = format!(
        "manifest_version = 1\n\n[plugin]\nid = \"{id}\"\nname = \"{}\"\nversion = \"{version}\"\ndescription = \"A test plugin.\"\nlicense = \"MIT\"\n{plugin_lines}\n[engine]\ntenon = \"{tenon}\"\n\n[runtime]\nkind = \"component\"\nmodule = \"plugin.wasm\"\n",
        id.split('/').nth(1).unwrap()
    );
    if !deps.is_empty() {
        manifest.push_str("\n[dependencies]\n");
        for (dep, req) in deps {
            manifest.push_str(&format!("\"{dep}\" = \"{req}\"\n"));
        }
    }
    manifest.push_str(extra);
    std::fs::write(dir.path().join("tenon.toml"), manifest).unwrap();
    std::fs::write(
        dir.path().join("plugin.wasm"),
        format!("\0asm\x01\0\0\0 {id} {version}"),
    )
    .unwrap();
    let packed = pack(dir.path(), &PackOptions::default()).unwrap();
    let mut signatures = SignatureFile::for_package(&packed.info);
    signatures.sign(Role::Author, key);
    encode_upload(signatures.to_json().as_bytes(), &packed.bytes)
}

impl Marketplace {
    async fn publish(&self, id: &str, version: &str, deps: &[(&str, &str)]) {
        self.publish_signed(id, version, deps, &self.key).await;
    }

    async fn publish_signed(
        &self,
        id: &str,
        version: &str,
        deps: &[(&str, &str)],
        key: &SigningKey,
    ) {
        self.market
            .publish(&self.alice, &package(id, version, deps, key))
            .await
            .unwrap_or_else(|e| panic!("publishing {id} {version}: {e}"));
    }

    async fn yank(&self, id: &str, version: &str) {
        self.market
            .yank(
                &self.alice,
                &id.parse().unwrap(),
                &version.parse().unwrap(),
                true,
            )
            .await
            .unwrap();
    }

    /// Rotates the root offline (a new root key, signed by the current
    /// one) and restarts the server on the same database to serve it, behind
    /// the same proxy. Returns the retired root key.
    async fn rotate_root(&mut self) -> SigningKey {
        let keys = self._dir.path().join("keys");
        let report = tenon_market_server::keys::rotate_root(
            &keys,
            &self.root_keys,
            1,
            1,
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let retired = std::mem::replace(
            &mut self.root_keys,
            report.root_keys.iter().map(|p| read_key(p)).collect(),
        );
        let (market, direct) = open_and_serve(self._dir.path(), &self.config).await;
        *self.proxy.upstream.lock() = direct.clone();
        self.market = market;
        self.direct = direct;
        retired.into_iter().next().unwrap()
    }

    fn attack(&self, path: &str, attack: Attack) {
        self.proxy.attacks.lock().insert(path.to_owned(), attack);
    }

    fn calm(&self) {
        self.proxy.attacks.lock().clear();
    }

    /// The bytes the real server serves at `path` now.
    async fn fetch(&self, path: &str) -> Vec<u8> {
        reqwest::get(format!("{}{path}", self.direct))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec()
    }

    /// An engine (registry and cache in `dir`) whose trust policy trusts
    /// this marketplace's author key for `acme`.
    async fn engine(&self, dir: &std::path::Path) -> PluginEngine {
        let policy = TrustPolicy::default().with_publisher_key("acme", self.key.public_key());
        PluginEngine::builder()
            .registry(&dir.join("registry.db").to_string_lossy())
            .data_dir(dir)
            .trust_policy(policy)
            .marketplace(MarketplaceOptions::default())
            .build()
            .await
            .unwrap()
    }

    fn source(&self, id: &str, req: &str) -> InstallSource {
        InstallSource::Marketplace {
            url: self.url.clone(),
            id: id.parse().unwrap(),
            req: req.parse().unwrap(),
        }
    }
}

async fn installed(engine: &PluginEngine) -> Vec<String> {
    engine
        .list()
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r.id, r.version))
        .collect()
}

/// Installs `id` and expects the metadata to be refused for `why`, with
/// nothing installed.
async fn refused_metadata(
    m: &Marketplace,
    engine: &PluginEngine,
    id: &str,
    why: fn(&tenon_marketplace::MetadataError) -> bool,
) {
    let error = engine.install(m.source(id, "*")).await.unwrap_err();
    let ClientError::Metadata { source, .. } = client_error(&error) else {
        panic!("{error}");
    };
    assert!(why(source), "{error}");
    assert!(installed(engine).await.is_empty());
}

/// The marketplace client's refusal inside an engine error.
fn client_error(error: &EngineError) -> &ClientError {
    match error {
        EngineError::Marketplace { source } => source,
        other => panic!("expected a marketplace error, got: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_level_tree_installs_in_load_order_with_its_source() {
    let m = marketplace(Expiries::default()).await;
    m.publish("acme/base", "1.0.0", &[]).await;
    m.publish("acme/base", "1.2.0", &[]).await;
    m.publish("acme/base", "2.0.0", &[]).await;
    m.publish("acme/mid", "1.0.0", &[("acme/base", "^1")]).await;
    m.publish("acme/app", "0.9.0", &[("acme/mid", "^1")]).await;
    m.publish("acme/app", "1.0.0", &[("acme/mid", "^1")]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = m.engine(dir.path()).await;

    let plan = engine
        .plan_marketplace_install(&m.url, &"acme/app".parse().unwrap(), &"^1".parse().unwrap())
        .await
        .unwrap();
    let planned: Vec<String> = plan
        .plugins
        .iter()
        .map(|p| format!("{} {} {}", p.id, p.version, p.dependency))
        .collect();
    assert_eq!(
        planned,
        [
            "acme/base 1.2.0 true",
            "acme/mid 1.0.0 true",
            "acme/app 1.0.0 false"
        ]
    );
    assert!(
        installed(&engine).await.is_empty(),
        "planning stores nothing"
    );
    let reports = engine.install_plan(plan).await.unwrap();
    assert_eq!(reports.len(), 3);
    assert_eq!(
        installed(&engine).await,
        ["acme/app 1.0.0", "acme/base 1.2.0", "acme/mid 1.0.0"]
    );
    for record in engine.list().await.unwrap() {
        assert_eq!(record.source.kind, SourceKind::Marketplace);
        assert!(
            record
                .source
                .reference
                .starts_with(&format!("{}#{}@", m.url, record.id)),
            "{}",
            record.source.reference
        );
    }
    // A restart reads the same trusted metadata; installing again is refused.
    let again = engine.install(m.source("acme/app", "*")).await.unwrap_err();
    assert!(
        matches!(again, EngineError::AlreadyInstalled { .. }),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_is_explained_with_the_remote_versions() {
    let m = marketplace(Expiries::default()).await;
    m.publish("acme/base", "1.0.0", &[]).await;
    m.publish("acme/base", "2.0.0", &[]).await;
    m.publish("acme/mid", "1.0.0", &[("acme/base", "^1")]).await;
    m.publish(
        "acme/app",
        "1.0.0",
        &[("acme/mid", "^1"), ("acme/base", "^2")],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let engine = m.engine(dir.path()).await;
    let error = engine
        .install(m.source("acme/app", "^1"))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, EngineError::Dependencies { .. }), "{text}");
    for needle in ["acme/mid", "acme/base", "1.0.0", "^2", &m.url] {
        assert!(text.contains(needle), "`{needle}` missing from: {text}");
    }
    assert!(installed(&engine).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yanked_version_is_skipped_unless_installed() {
    let m = marketplace(Expiries::default()).await;
    m.publish("acme/base", "1.0.0", &[]).await;
    m.publish("acme/base", "1.1.0", &[]).await;
    m.publish("acme/app", "1.0.0", &[("acme/base", "^1")]).await;
    m.yank("acme/base", "1.1.0").await;

    let dir = tempfile::tempdir().unwrap();
    let fresh = m.engine(dir.path()).await;
    fresh.install(m.source("acme/app", "*")).await.unwrap();
    assert_eq!(
        installed(&fresh).await,
        ["acme/app 1.0.0", "acme/base 1.0.0"]
    );

    // Installed before it was yanked: kept, with a note.
    let locked_dir = tempfile::tempdir().unwrap();
    let m2 = marketplace(Expiries::default()).await;
    m2.publish("acme/base", "1.0.0", &[]).await;
    m2.publish("acme/base", "1.1.0", &[]).await;
    m2.publish("acme/app", "1.0.0", &[("acme/base", "^1")])
        .await;
    let locked = m2.engine(locked_dir.path()).await;
    locked
        .install(m2.source("acme/base", "=1.1.0"))
        .await
        .unwrap();
    m2.yank("acme/base", "1.1.0").await;
    let plan = locked
        .plan_marketplace_install(&m2.url, &"acme/app".parse().unwrap(), &"*".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        plan.kept,
        [("acme/base".parse().unwrap(), "1.1.0".parse().unwrap())]
    );
    assert!(
        plan.notes.iter().any(|n| n.contains("yanked")),
        "{:?}",
        plan.notes
    );
    locked.install_plan(plan).await.unwrap();
    assert_eq!(
        installed(&locked).await,
        ["acme/app 1.0.0", "acme/base 1.1.0"]
    );
    // Yanked and not installed: not chosen, even when asked for exactly.
    let other_dir = tempfile::tempdir().unwrap();
    let other = m.engine(other_dir.path()).await;
    let error = other
        .install(m.source("acme/base", "=1.1.0"))
        .await
        .unwrap_err();
    assert!(matches!(error, EngineError::Dependencies { .. }), "{error}");
    assert!(error.to_string().contains("yanked"), "{error}");
    assert!(installed(&other).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_list_a_newer_version_once_published_and_upgrade_to_it() {
    let m = marketplace(Expiries::default()).await;
    m.publish("acme/base", "1.0.0", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = m.engine(dir.path()).await;
    engine.install(m.source("acme/base", "^1")).await.unwrap();
    assert!(
        engine
            .marketplace_updates(&m.url, &[])
            .await
            .unwrap()
            .is_empty()
    );

    m.publish("acme/base", "1.1.0", &[]).await;
    m.publish("acme/base", "1.2.0", &[]).await;
    m.yank("acme/base", "1.2.0").await;
    let updates = engine.marketplace_updates(&m.url, &[]).await.unwrap();
    let listed: Vec<String> = updates
        .iter()
        .map(|u| format!("{} {} -> {}", u.id, u.installed, u.available))
        .collect();
    assert_eq!(listed, ["acme/base 1.0.0 -> 1.1.0"]);

    let report = engine.upgrade(m.source("acme/base", "^1")).await.unwrap();
    assert_eq!(report.to.to_string(), "1.1.0");
    assert!(
        engine
            .marketplace_updates(&m.url, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

/// A marketplace with a two-level tree, and an engine that has refreshed
/// once (so that it trusts the current metadata).
async fn attacked() -> (Marketplace, tempfile::TempDir, PluginEngine) {
    let m = marketplace(Expiries::default()).await;
    m.publish("acme/base", "1.0.0", &[]).await;
    m.publish("acme/app", "1.0.0", &[("acme/base", "^1")]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = m.engine(dir.path()).await;
    assert!(
        engine
            .marketplace_updates(&m.url, &[])
            .await
            .unwrap()
            .is_empty()
    );
    (m, dir, engine)
}

const APP_DOWNLOAD: &str = "/api/v1/plugins/acme/app/1.0.0/download";
const BASE_DOWNLOAD: &str = "/api/v1/plugins/acme/base/1.0.0/download";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_package_is_refused_with_nothing_installed() {
    let (m, _dir, engine) = attacked().await;
    m.attack(APP_DOWNLOAD, Attack::Tamper);
    let error = engine.install(m.source("acme/app", "*")).await.unwrap_err();
    let ClientError::Package { source, .. } = client_error(&error) else {
        panic!("{error}");
    };
    assert!(
        matches!(
            **source,
            tenon_marketplace::PackageError::ChecksumMismatch { .. }
        ),
        "{error}"
    );
    assert!(installed(&engine).await.is_empty());
    // The tampered bytes were not cached: without the attack it installs.
    m.calm();
    engine.install(m.source("acme/app", "*")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_signed_by_another_key_is_refused_with_nothing_installed() {
    let m = marketplace(Expiries::default()).await;
    let other = SigningKey::from_seed(&[9; 32]);
    // The marketplace bound `acme` to another key than the operator trusts.
    m.publish_signed("acme/base", "1.0.0", &[], &other).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = m.engine(dir.path()).await;
    let error = engine
        .install(m.source("acme/base", "*"))
        .await
        .unwrap_err();
    assert!(
        matches!(client_error(&error), ClientError::Package { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("acme/base"), "{error}");
    assert!(installed(&engine).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_timestamp_is_refused_as_a_freeze() {
    let m = marketplace(Expiries {
        timestamp: time::Duration::seconds(2),
        ..Expiries::default()
    })
    .await;
    m.publish("acme/base", "1.0.0", &[]).await;
    // Someone between keeps serving the timestamp of now.
    let frozen = m.fetch("/meta/timestamp.json").await;
    m.attack("/meta/timestamp.json", Attack::Replace(frozen));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = m.engine(dir.path()).await;
    refused_metadata(&m, &engine, "acme/base", |e| {
        matches!(e, tenon_marketplace::MetadataError::Expired { .. })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_older_snapshot_is_refused_after_a_restart() {
    let (m, dir, engine) = attacked().await;
    let old_timestamp = m.fetch("/meta/timestamp.json").await;
    let old_snapshot = m.fetch("/meta/snapshot.json").await;
    m.publish("acme/base", "1.1.0", &[]).await;
    // The engine trusts the newer metadata.
    assert_eq!(engine.marketplace_updates(&m.url, &[]).await.unwrap(), []);
    drop(engine);
    // A restart, and the older (validly signed, unexpired) metadata replayed.
    m.attack("/meta/timestamp.json", Attack::Replace(old_timestamp));
    m.attack("/meta/snapshot.json", Attack::Replace(old_snapshot));
    let engine = m.engine(dir.path()).await;
    refused_metadata(&m, &engine, "acme/app", |e| {
        matches!(e, tenon_marketplace::MetadataError::Rollback { .. })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_targets_from_different_moments_are_refused() {
    let (m, _dir, engine) = attacked().await;
    let old_targets = m.fetch("/meta/targets.json").await;
    m.publish("acme/base", "1.1.0", &[]).await;
    // The new timestamp and snapshot, with the targets of before.
    m.attack("/meta/targets.json", Attack::Replace(old_targets));
    refused_metadata(&m, &engine, "acme/app", |e| {
        matches!(e, tenon_marketplace::MetadataError::Mismatch { .. })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_response_is_cut_at_its_pinned_size() {
    let (m, _dir, engine) = attacked().await;
    for path in [APP_DOWNLOAD, "/meta/timestamp.json"] {
        m.calm();
        m.attack(path, Attack::Endless);
        let error = tokio::time::timeout(
            Duration::from_secs(60),
            engine.install(m.source("acme/app", "*")),
        )
        .await
        .expect("an endless response does not hang the client")
        .unwrap_err();
        assert!(
            matches!(client_error(&error), ClientError::TooLarge { .. }),
            "{path}: {error}"
        );
        assert!(installed(&engine).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_vanishing_half_way_leaves_nothing_half_installed() {
    let (m, _dir, engine) = attacked().await;
    // The dependency downloads; the plugin's own download is cut.
    m.attack(APP_DOWNLOAD, Attack::Vanish);
    let error = engine.install(m.source("acme/app", "*")).await.unwrap_err();
    assert!(
        matches!(client_error(&error), ClientError::Http { .. }),
        "{error}"
    );
    assert!(installed(&engine).await.is_empty());
    // The dependency's package is cached; the plugin's is fetched again.
    m.calm();
    m.attack(BASE_DOWNLOAD, Attack::Vanish);
    engine.install(m.source("acme/app", "*")).await.unwrap();
    assert_eq!(
        installed(&engine).await,
        ["acme/app 1.0.0", "acme/base 1.0.0"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_installs_from_the_cache_only() {
    let (m, dir, engine) = attacked().await;
    engine
        .plan_marketplace_install(&m.url, &"acme/app".parse().unwrap(), &"*".parse().unwrap())
        .await
        .unwrap();
    drop(engine);
    let policy = TrustPolicy::default().with_publisher_key("acme", m.key.public_key());
    let offline = PluginEngine::builder()
        .registry(&dir.path().join("registry.db").to_string_lossy())
        .data_dir(dir.path())
        .trust_policy(policy)
        .marketplace(MarketplaceOptions {
            offline: true,
            ..MarketplaceOptions::default()
        })
        .build()
        .await
        .unwrap();
    // Every request would now fail: the cache is all there is.
    for path in [APP_DOWNLOAD, BASE_DOWNLOAD, "/meta/timestamp.json"] {
        m.attack(path, Attack::Vanish);
    }
    offline.install(m.source("acme/app", "*")).await.unwrap();
    assert_eq!(
        installed(&offline).await,
        ["acme/app 1.0.0", "acme/base 1.0.0"]
    );
    let missing = offline
        .install(m.source("acme/other", "*"))
        .await
        .unwrap_err();
    assert!(
        matches!(client_error(&missing), ClientError::UnknownPlugin { .. }),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_plan_leaves_the_registry_as_it_was() {
    let m = marketplace(Expiries::default()).await;
    // `beta/app` keeps a secret; at 1.0.0 it needs `acme/base` (whose
    // uninstalled version left a grant) and `gamma/mid` (a publisher not
    // bound yet).
    let secret = "\n[permissions]\nsecrets = [\"token\"]\n\n[[config.fields]]\nkey = \"token\"\ntype = \"string\"\nsecret = true\n";
    m.publish("acme/base", "1.0.0", &[]).await;
    m.publish("gamma/mid", "1.0.0", &[]).await;
    for (version, deps) in [
        ("0.9.0", &[("acme/base", "^1")][..]),
        ("1.0.0", &[("acme/base", "^1"), ("gamma/mid", "^1")][..]),
    ] {
        m.market
            .publish(
                &m.alice,
                &package_with("beta/app", version, deps, &m.key, secret),
            )
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = ["acme", "beta", "gamma"]
        .into_iter()
        .fold(TrustPolicy::default(), |p, publisher| {
            p.with_publisher_key(publisher, m.key.public_key())
        });
    let engine_with_key = async |key: &str| {
        PluginEngine::builder()
            .registry(&dir.path().join("registry.db").to_string_lossy())
            .data_dir(dir.path())
            .trust_policy(policy.clone())
            .secret_key(SecretKey::parse(&key.repeat(32)).unwrap())
            .marketplace(MarketplaceOptions::default())
            .build()
            .await
            .unwrap()
    };
    let first = engine_with_key("ab").await;
    let (app, base): (PluginId, PluginId) =
        ("beta/app".parse().unwrap(), "acme/base".parse().unwrap());
    first.install(m.source("beta/app", "=0.9.0")).await.unwrap();
    first
        .set_config(&app, "token", serde_json::json!("hunter2"))
        .await
        .unwrap();
    first.grant(&base, GrantRequest::all("op")).await.unwrap();
    for id in [&app, &base] {
        first
            .uninstall(id, UninstallOptions::default())
            .await
            .unwrap();
    }
    first.shutdown().await;

    // Another key cannot read the secret `beta/app` left: installing it
    // fails after its dependencies were checked.
    let engine = engine_with_key("cd").await;
    let store = engine.store();
    let bindings = async || {
        store
            .list_publisher_keys(engine.tenant())
            .await
            .unwrap()
            .iter()
            .map(|b| b.publisher.clone())
            .collect::<Vec<_>>()
    };
    let bound_before = bindings().await;
    assert_eq!(bound_before, ["acme", "beta"]);
    let base_grants = store.list_grants(engine.tenant(), &base).await.unwrap();
    assert_eq!(base_grants.len(), 1);
    let app_config = store.get_config(engine.tenant(), &app).await.unwrap();
    let error = engine
        .install(m.source("beta/app", "^1"))
        .await
        .unwrap_err();
    assert!(
        installed(&engine).await.is_empty(),
        "{error}: nothing installed"
    );
    assert_eq!(bindings().await, bound_before, "{error}: no new binding");
    assert_eq!(
        store.list_grants(engine.tenant(), &base).await.unwrap(),
        base_grants,
        "{error}: the leftovers that would have passed stay"
    );
    assert_eq!(
        store
            .get_config(engine.tenant(), &app)
            .await
            .unwrap()
            .values,
        app_config.values,
        "{error}: the secret stays"
    );
}

/// A root `version` made from the root file `from`, whose root role is
/// `root_key` alone, signed by `signers` (an attacker's forgery unless the
/// trusted root's keys are among them).
fn forged_root(
    from: &[u8],
    version: u64,
    root_key: &SigningKey,
    signers: &[&SigningKey],
) -> Vec<u8> {
    use tenon_marketplace::metadata::{MetaRole, RoleKeys, Root, sign_metadata};
    let file: serde_json::Value = serde_json::from_slice(from).unwrap();
    let mut root: Root = serde_json::from_value(file["signed"].clone()).unwrap();
    root.version = version;
    root.roles.insert(
        MetaRole::Root,
        RoleKeys {
            keyids: vec![root_key.key_id()],
            threshold: 1,
        },
    );
    root.keys.insert(root_key.key_id(), root_key.public_key());
    let used: Vec<_> = root.roles.values().flat_map(|r| r.keyids.clone()).collect();
    root.keys.retain(|id, _| used.contains(id));
    sign_metadata(&root, signers)
}

/// The metadata refusal inside an install's error.
fn metadata_refusal(error: &EngineError) -> &tenon_marketplace::MetadataError {
    match client_error(error) {
        ClientError::Metadata { source, .. } => source,
        other => panic!("expected a metadata refusal, got: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_root_is_followed_and_roots_the_trusted_one_did_not_sign_are_refused() {
    use tenon_marketplace::MetadataError;
    let (mut m, _dir, engine) = attacked().await;
    let root1 = m.fetch("/meta/root.json").await;
    assert_eq!(m.fetch("/meta/1.root.json").await, root1);

    // An attacker's root 2, signed by its own key only (not by root 1's).
    let intruder = SigningKey::from_seed(&[42; 32]);
    m.attack(
        "/meta/2.root.json",
        Attack::Replace(forged_root(&root1, 2, &intruder, &[&intruder])),
    );
    let error = engine.install(m.source("acme/app", "*")).await.unwrap_err();
    assert!(
        matches!(metadata_refusal(&error), MetadataError::Threshold { .. }),
        "{error}"
    );
    assert!(installed(&engine).await.is_empty(), "{error}");
    m.calm();

    // The real rotation, made offline and served after a restart, is
    // followed by the client that trusts root 1.
    let retired = m.rotate_root().await;
    let root2 = m.fetch("/meta/2.root.json").await;
    assert_eq!(root2, m.fetch("/meta/root.json").await);
    engine.install(m.source("acme/base", "*")).await.unwrap();

    // Root 1 replayed as the next root: a rollback, refused.
    m.attack("/meta/3.root.json", Attack::Replace(root1.clone()));
    let error = engine.install(m.source("acme/app", "*")).await.unwrap_err();
    assert!(
        matches!(
            metadata_refusal(&error),
            MetadataError::RootVersion {
                expected: 3,
                found: 1
            }
        ),
        "{error}"
    );
    // A root 3 signed by the retired root key (and its own new key), not by
    // root 2's: refused.
    let next = SigningKey::from_seed(&[43; 32]);
    m.attack(
        "/meta/3.root.json",
        Attack::Replace(forged_root(&root2, 3, &next, &[&retired, &next])),
    );
    let error = engine.install(m.source("acme/app", "*")).await.unwrap_err();
    assert!(
        matches!(metadata_refusal(&error), MetadataError::Threshold { .. }),
        "{error}"
    );
    assert_eq!(installed(&engine).await, ["acme/base 1.0.0"], "{error}");

    // A restarted client pinned to root 1 again stays at root 2: hiding
    // the rotation does not take it back.
    m.calm();
    m.attack("/meta/2.root.json", Attack::Hide);
    m.attack("/meta/root.json", Attack::Replace(root1.clone()));
    drop(engine);
    let policy = TrustPolicy::default().with_publisher_key("acme", m.key.public_key());
    let restarted = PluginEngine::builder()
        .registry(&_dir.path().join("registry.db").to_string_lossy())
        .data_dir(_dir.path())
        .trust_policy(policy)
        .marketplace(MarketplaceOptions {
            root: Some(root1.clone()),
            ..MarketplaceOptions::default()
        })
        .build()
        .await
        .unwrap();
    m.attack(
        "/meta/3.root.json",
        Attack::Replace(forged_root(&root2, 3, &next, &[&retired, &next])),
    );
    let error = restarted
        .install(m.source("acme/app", "*"))
        .await
        .unwrap_err();
    assert!(
        matches!(metadata_refusal(&error), MetadataError::Threshold { .. }),
        "root 2 is still the trusted one: {error}"
    );
    m.calm();
    restarted.install(m.source("acme/app", "*")).await.unwrap();
    assert_eq!(
        installed(&restarted).await,
        ["acme/app 1.0.0", "acme/base 1.0.0"]
    );
}

/// Hostile: a server holding the root keys offers an endless chain of
/// valid rotations; the client follows `MAX_ROOT_ROTATIONS` of them in one
/// refresh, then refuses, and nothing is installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_chain_of_root_rotations_is_cut_off() {
    use tenon_marketplace::MetadataError;
    use tenon_marketplace::metadata::MAX_ROOT_ROTATIONS;
    let (m, _dir, engine) = attacked().await;
    let mut previous = m.fetch("/meta/root.json").await;
    let mut signer = m.root_keys.clone();
    for version in 2..=u64::from(MAX_ROOT_ROTATIONS) + 2 {
        let mut seed = [7; 32];
        seed[..8].copy_from_slice(&version.to_le_bytes());
        let key = SigningKey::from_seed(&seed);
        let signers: Vec<&SigningKey> = signer.iter().chain([&key]).collect();
        let root = forged_root(&previous, version, &key, &signers);
        m.attack(
            &format!("/meta/{version}.root.json"),
            Attack::Replace(root.clone()),
        );
        previous = root;
        signer = vec![key];
    }
    let error = engine.install(m.source("acme/app", "*")).await.unwrap_err();
    assert!(
        matches!(
            metadata_refusal(&error),
            MetadataError::TooManyRootRotations { limit } if *limit == MAX_ROOT_ROTATIONS
        ),
        "{error}"
    );
    assert!(installed(&engine).await.is_empty(), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_root_expired_while_away_follows_the_rotation() {
    use tenon_marketplace::MetadataError;
    // Root 1 was made 400 days ago (expired); root 2, rotated today, is
    // what the marketplace serves.
    let m = marketplace_with_keys(Expiries::default(), |dir| {
        let long_ago = OffsetDateTime::now_utc() - time::Duration::days(400);
        tenon_market_server::init(dir, 1, 1, long_ago).unwrap();
        let old = read_key(&dir.join("root-1.key"));
        let report =
            tenon_market_server::keys::rotate_root(dir, &[old], 1, 1, OffsetDateTime::now_utc())
                .unwrap();
        vec![read_key(&report.root_keys[0])]
    })
    .await;
    m.publish("acme/base", "1.0.0", &[]).await;
    let root1 = m.fetch("/meta/1.root.json").await;
    let engine_pinned_to_root1 = async |dir: &std::path::Path| {
        PluginEngine::builder()
            .registry(&dir.join("registry.db").to_string_lossy())
            .data_dir(dir)
            .trust_policy(TrustPolicy::default().with_publisher_key("acme", m.key.public_key()))
            .marketplace(MarketplaceOptions {
                root: Some(root1.clone()),
                ..MarketplaceOptions::default()
            })
            .build()
            .await
            .unwrap()
    };
    // With the rotation hidden, the expired root is all there is: refused.
    m.attack("/meta/2.root.json", Attack::Hide);
    let hidden = tempfile::tempdir().unwrap();
    let engine = engine_pinned_to_root1(hidden.path()).await;
    let error = engine
        .install(m.source("acme/base", "*"))
        .await
        .unwrap_err();
    assert!(
        matches!(metadata_refusal(&error), MetadataError::Expired { .. }),
        "{error}"
    );
    assert!(installed(&engine).await.is_empty());
    // Served, the rotation is followed from the expired root.
    m.calm();
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_pinned_to_root1(dir.path()).await;
    engine.install(m.source("acme/base", "*")).await.unwrap();
    assert_eq!(installed(&engine).await, ["acme/base 1.0.0"]);
}

/// The ids of a page of hits.
fn hit_ids(page: &tenon_engine::SearchPage) -> Vec<String> {
    page.hits.iter().map(|h| h.id.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_is_searched_browsed_and_installed_from_through_the_engine() {
    let m = marketplace(Expiries::default()).await;
    let listed = |id, version, deps: &[(&str, &str)], lines, tenon| {
        package_listed(id, version, deps, &m.key, "", lines, tenon)
    };
    for upload in [
        listed(
            "acme/base",
            "1.0.0",
            &[],
            "keywords = [\"core\"]\ncategories = [\"library\"]\n",
            "^1",
        ),
        listed(
            "acme/notify",
            "1.0.0",
            &[("acme/base", "^1")],
            "keywords = [\"slack\"]\ncategories = [\"notification\"]\n",
            "^1",
        ),
        // Only for a plugin API this host does not run.
        listed(
            "acme/future",
            "1.0.0",
            &[],
            "categories = [\"notification\"]\n",
            "^9",
        ),
    ] {
        m.market.publish(&m.alice, &upload).await.unwrap();
    }
    let admin = m.market.account("curator", &[Scope::Admin]).await.unwrap();
    m.market
        .set_featured(&admin, &"acme/notify".parse().unwrap(), Some(1))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = m.engine(dir.path()).await;

    // Search: words, a category, the host's filter, pages by cursor.
    let words = engine
        .search_marketplace(
            &m.url,
            SearchQuery {
                q: Some("slack".to_owned()),
                ..SearchQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(hit_ids(&words), ["acme/notify"]);
    assert_eq!(
        words.hits[0].compatible_version,
        Some("1.0.0".parse().unwrap())
    );
    let category = SearchQuery {
        category: Some("notification".to_owned()),
        ..SearchQuery::default()
    };
    let this_host = engine
        .search_marketplace(&m.url, category.clone())
        .await
        .unwrap();
    assert_eq!(
        hit_ids(&this_host),
        ["acme/notify"],
        "acme/future is left out"
    );
    let any_host = engine
        .search_marketplace(
            &m.url,
            SearchQuery {
                api: Some("9.0.0".parse().unwrap()),
                ..category
            },
        )
        .await
        .unwrap();
    assert_eq!(hit_ids(&any_host), ["acme/future"]);
    let mut query = SearchQuery {
        sort: Sort::Name,
        limit: Some(1),
        ..SearchQuery::default()
    };
    let mut pages = Vec::new();
    loop {
        let page = engine
            .search_marketplace(&m.url, query.clone())
            .await
            .unwrap();
        assert_eq!(page.total, 2);
        pages.push(hit_ids(&page));
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => break,
        }
        assert!(pages.len() < 5, "the cursor never ends: {pages:?}");
    }
    assert_eq!(pages, [["acme/base"], ["acme/notify"]]);

    // Browse: categories, featured.
    let categories: Vec<(String, i64)> = engine
        .marketplace_categories(&m.url)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.plugins))
        .collect();
    assert!(
        categories.contains(&("notification".to_owned(), 2)),
        "{categories:?}"
    );
    assert!(
        categories.contains(&("library".to_owned(), 1)),
        "{categories:?}"
    );
    let featured = engine.marketplace_featured(&m.url).await.unwrap();
    assert_eq!(
        featured
            .iter()
            .map(|l| l.id.to_string())
            .collect::<Vec<_>>(),
        ["acme/notify"]
    );

    // Install from the catalog with its dependency, list, uninstall.
    let reports = engine
        .install_from_marketplace(&m.url, &featured[0].id, &"^1".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        reports.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
        ["acme/base", "acme/notify"]
    );
    assert_eq!(
        installed(&engine).await,
        ["acme/base 1.0.0", "acme/notify 1.0.0"]
    );
    let popular = engine.marketplace_popular(&m.url, 30, 10).await.unwrap();
    let mut downloaded: Vec<String> = popular
        .iter()
        .filter(|p| p.window_downloads > 0)
        .map(|p| p.plugin.id.to_string())
        .collect();
    downloaded.sort();
    assert_eq!(downloaded, ["acme/base", "acme/notify"]);
    engine
        .uninstall(&featured[0].id, UninstallOptions::default())
        .await
        .unwrap();
    assert_eq!(installed(&engine).await, ["acme/base 1.0.0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_answer_that_is_endless_or_not_the_api_is_refused() {
    let m = marketplace(Expiries::default()).await;
    m.publish("acme/base", "1.0.0", &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let engine = m.engine(dir.path()).await;
    m.attack("/api/v1/search", Attack::Endless);
    let error = engine
        .search_marketplace(&m.url, SearchQuery::default())
        .await
        .unwrap_err();
    assert!(
        matches!(client_error(&error), ClientError::TooLarge { .. }),
        "{error}"
    );
    m.attack(
        "/api/v1/categories",
        Attack::Replace(br#"{"categories": [{"name": 7}]}"#.to_vec()),
    );
    let error = engine.marketplace_categories(&m.url).await.unwrap_err();
    assert!(
        matches!(client_error(&error), ClientError::Response { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("/api/v1/categories"), "{error}");
    m.calm();
    assert_eq!(
        hit_ids(
            &engine
                .search_marketplace(&m.url, SearchQuery::default())
                .await
                .unwrap()
        ),
        ["acme/base"]
    );
}
