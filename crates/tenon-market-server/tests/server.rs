//! A real marketplace server on loopback: publishing, the signed index,
//! search, curation, and every hostile upload refused with nothing stored.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tenon_manifest::PluginId;
use tenon_market_server::{HttpLimits, Market, MarketConfig, MarketKeys, Scope, encode_upload};
use tenon_marketplace::metadata::{MetaRole, SeenVersions};
use tenon_marketplace::{
    Origin, PackOptions, Role, SignatureFile, SigningKey, TrustPolicy, TrustedMetadata,
    UnpackLimits, pack, parse_index_file, verify,
};
use time::OffsetDateTime;

struct Server {
    url: String,
    http: reqwest::Client,
    admin: String,
    market: Arc<Market>,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
    #[cfg(feature = "postgres")]
    _schema: Option<pg::Schema>,
}

/// The databases every test runs on.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// Every backend this build has: SQLite, and PostgreSQL with the
/// `postgres` feature (at `postgres://postgres@127.0.0.1:5432/test`, or
/// `TENON_TEST_POSTGRES_URL`; skipped with a printed reason when it is
/// unreachable, except under `CI=true`, where the test fails).
const BACKENDS: &[Backend] = &[
    Backend::Sqlite,
    #[cfg(feature = "postgres")]
    Backend::Postgres,
];

/// A marketplace on `backend` (a fresh SQLite file, or a fresh PostgreSQL
/// schema), served on loopback; `None` when PostgreSQL is unreachable
/// outside CI.
async fn start(backend: Backend, config: MarketConfig) -> Option<Server> {
    start_with(backend, config, HttpLimits::default()).await
}

/// [`start`] with the server's HTTP limits.
async fn start_with(backend: Backend, config: MarketConfig, limits: HttpLimits) -> Option<Server> {
    start_with_keys(backend, config, limits, |keys_dir| {
        tenon_market_server::init(keys_dir, 3, 2, OffsetDateTime::now_utc()).unwrap();
    })
    .await
}

/// [`start_with`] on a key directory `make_keys` prepares.
async fn start_with_keys(
    backend: Backend,
    config: MarketConfig,
    limits: HttpLimits,
    make_keys: impl FnOnce(&std::path::Path),
) -> Option<Server> {
    eprintln!("-- on {backend:?}");
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    make_keys(&keys_dir);
    let keys = MarketKeys::load(&keys_dir, OffsetDateTime::now_utc()).unwrap();
    #[cfg(feature = "postgres")]
    let mut schema = None;
    let db = match backend {
        Backend::Sqlite => dir.path().join("market.db").to_str().unwrap().to_owned(),
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let created = pg::Schema::create().await?;
            let url = created.url();
            schema = Some(created);
            url
        }
    };
    let market = Arc::new(Market::open(&db, keys, config).await.unwrap());
    let admin = market.create_token("root", &[Scope::Admin]).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(tenon_market_server::serve(
        market.clone(),
        limits,
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    Some(Server {
        url: format!("http://{addr}"),
        http: reqwest::Client::new(),
        admin,
        market,
        _stop: stop,
        _dir: dir,
        #[cfg(feature = "postgres")]
        _schema: schema,
    })
}

/// A schema of its own per test on the test PostgreSQL server, dropped
/// afterwards (the pattern of tenon-registry's PostgreSQL tests).
#[cfg(feature = "postgres")]
mod pg {
    use std::sync::OnceLock;
    use std::time::Duration;

    use sqlx::Connection as _;
    use sqlx::postgres::PgConnection;

    const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

    fn server_url() -> String {
        std::env::var("TENON_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
    }

    /// Whether the server answers (checked once per test binary); under
    /// `CI=true` an unreachable server fails the test instead.
    fn available() -> bool {
        static REACHABLE: OnceLock<Result<(), String>> = OnceLock::new();
        let reachable = REACHABLE.get_or_init(|| {
            let url = server_url();
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
                if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                    panic!(
                        "PostgreSQL at {DEFAULT_URL} (or TENON_TEST_POSTGRES_URL) is unreachable ({reason}) and CI=true: the PostgreSQL tests must run in CI"
                    );
                }
                eprintln!(
                    "skipping PostgreSQL: the test server is unreachable ({reason}); set TENON_TEST_POSTGRES_URL to run it"
                );
                false
            }
        }
    }

    /// A fresh schema, dropped on drop.
    pub(crate) struct Schema {
        name: String,
    }

    impl Schema {
        pub(crate) async fn create() -> Option<Self> {
            if !available() {
                return None;
            }
            let mut bytes = [0u8; 12];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
            let name = format!("tenon_market_test_{}", hex::encode(bytes));
            let mut connection = PgConnection::connect(&server_url()).await.unwrap();
            sqlx::query(&format!("CREATE SCHEMA \"{name}\""))
                .execute(&mut connection)
                .await
                .unwrap();
            let _ = connection.close().await;
            Some(Self { name })
        }

        /// The server's URL with this schema as the search path.
        pub(crate) fn url(&self) -> String {
            let base = server_url();
            let separator = if base.contains('?') { '&' } else { '?' };
            format!("{base}{separator}options=-c%20search_path%3D{}", self.name)
        }
    }

    impl Drop for Schema {
        fn drop(&mut self) {
            let name = self.name.clone();
            // Not inside the test's runtime: it may be gone (a panic).
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    if let Ok(mut connection) = PgConnection::connect(&server_url()).await {
                        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                            .execute(&mut connection)
                            .await;
                        let _ = connection.close().await;
                    }
                });
            })
            .join();
        }
    }
}

struct Pkg {
    archive: Vec<u8>,
    signatures: SignatureFile,
}

#[derive(Clone, Copy)]
struct Spec<'a> {
    id: &'a str,
    version: &'a str,
    api: &'a str,
    categories: &'a [&'a str],
    keywords: &'a [&'a str],
    license: &'a str,
    description: &'a str,
}

const HELLO: Spec<'static> = Spec {
    id: "acme/hello",
    version: "1.0.0",
    api: "^1",
    categories: &["greeting"],
    keywords: &["hello", "demo"],
    license: "MIT",
    description: "Says hello to everyone.",
};

fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

fn package(spec: Spec<'_>, key: &SigningKey) -> Pkg {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let manifest = format!(
        "manifest_version = 1\n\n[plugin]\nid = \"{}\"\nname = \"{}\"\nversion = \"{}\"\ndescription = \"{}\"\nlicense = \"{}\"\ncategories = {}\nkeywords = {}\n\n[engine]\ntenon = \"{}\"\n\n[runtime]\nkind = \"component\"\nmodule = \"plugin.wasm\"\n",
        spec.id,
        spec.id.split('/').nth(1).unwrap(),
        spec.version,
        spec.description,
        spec.license,
        list(spec.categories),
        list(spec.keywords),
        spec.api,
    );
    std::fs::write(root.join("tenon.toml"), manifest).unwrap();
    std::fs::write(root.join("plugin.wasm"), b"\0asm\x01\0\0\0 bytes").unwrap();
    std::fs::write(root.join("README.md"), format!("# {}\n", spec.id)).unwrap();
    let packed = pack(root, &PackOptions::default()).unwrap();
    let mut signatures = SignatureFile::for_package(&packed.info);
    signatures.sign(Role::Author, key);
    Pkg {
        archive: packed.bytes,
        signatures,
    }
}

/// An archive built entry by entry (for hostile content), signed by `key`
/// as `id` 1.0.0.
fn raw_package(entries: &[(&str, Vec<u8>)], gzip_level: u32, key: &SigningKey, id: &str) -> Pkg {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut header = tar::Header::new_ustar();
        let name = path.as_bytes();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        tar.append(&header, data.as_slice()).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(gzip_level));
    gz.write_all(&tar).unwrap();
    let archive = gz.finish().unwrap();
    let mut signatures = SignatureFile::new(
        tenon_marketplace::Sha256Digest::of(&archive),
        PluginId::new(id).unwrap(),
        "1.0.0".parse().unwrap(),
    );
    signatures.sign(Role::Author, key);
    Pkg {
        archive,
        signatures,
    }
}

fn manifest_text(id: &str) -> Vec<u8> {
    format!(
        "manifest_version = 1\n\n[plugin]\nid = \"{id}\"\nname = \"x\"\nversion = \"1.0.0\"\n\n[engine]\ntenon = \"^1\"\n\n[runtime]\nkind = \"component\"\nmodule = \"plugin.wasm\"\n"
    )
    .into_bytes()
}

impl Server {
    async fn token(&self, account: &str, scopes: Value) -> String {
        let res = self
            .http
            .post(format!("{}/api/v1/admin/tokens", self.url))
            .bearer_auth(&self.admin)
            .json(&json!({"account": account, "scopes": scopes}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Sends `method path` with `token` and an optional JSON body; the status.
    async fn send(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> StatusCode {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap().status()
    }

    async fn publish_raw(&self, token: &str, body: Vec<u8>) -> (StatusCode, Value) {
        // A client of its own: the server may answer a refused upload
        // before reading it and close that connection.
        let res = reqwest::Client::new()
            .put(format!("{}/api/v1/publish", self.url))
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn publish(&self, token: &str, pkg: &Pkg) -> (StatusCode, Value) {
        let body = encode_upload(pkg.signatures.to_json().as_bytes(), &pkg.archive);
        self.publish_raw(token, body).await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let res = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn bytes(&self, path: &str) -> Vec<u8> {
        let res = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.bytes().await.unwrap().to_vec()
    }

    async fn search(&self, query: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/search?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        body
    }

    /// Verifies the whole metadata chain from the JSON alone, as a client
    /// would, and every listed index file against it.
    async fn verified_chain(&self, seen: SeenVersions) -> TrustedMetadata {
        let now = OffsetDateTime::now_utc();
        let root = self.bytes("/meta/root.json").await;
        let mut trusted = TrustedMetadata::new(&root, seen, now).unwrap();
        trusted
            .update_timestamp(&self.bytes("/meta/timestamp.json").await, now)
            .unwrap();
        trusted
            .update_snapshot(&self.bytes("/meta/snapshot.json").await, now)
            .unwrap();
        let targets = trusted
            .update_targets(&self.bytes("/meta/targets.json").await, now)
            .unwrap()
            .clone();
        for path in targets.targets.keys() {
            let file = self.bytes(&format!("/{path}")).await;
            trusted.check_target(path, &file).unwrap();
        }
        trusted
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_index_search_download_and_curation() {
    for &backend in BACKENDS {
        let Some(server) = start(backend, MarketConfig::default()).await else {
            continue;
        };
        let acme_key = SigningKey::from_seed(&[1; 32]);
        let beta_key = SigningKey::from_seed(&[2; 32]);
        let acme = server.token("acme-dev", json!(["publish", "yank"])).await;
        let beta = server.token("beta-dev", json!(["publish"])).await;

        let specs = [
            HELLO,
            Spec {
                version: "1.1.0",
                description: "Says hello, louder.",
                ..HELLO
            },
            Spec {
                version: "2.0.0",
                api: "^2",
                ..HELLO
            },
            Spec {
                id: "acme/logger",
                categories: &["observability"],
                keywords: &["logs"],
                license: "Apache-2.0",
                description: "Writes every event to a log.",
                ..HELLO
            },
        ];
        for spec in specs {
            let (status, body) = server.publish(&acme, &package(spec, &acme_key)).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let beta_spec = Spec {
            id: "beta/greeter",
            keywords: &["hello"],
            description: "Another greeter.",
            ..HELLO
        };
        let (status, body) = server.publish(&beta, &package(beta_spec, &beta_key)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");

        // The index: one line per version, ETag and 304.
        let res = server
            .http
            .get(format!("{}/index/acme/hello", server.url))
            .send()
            .await
            .unwrap();
        let etag = res.headers()["etag"].to_str().unwrap().to_owned();
        let file = res.bytes().await.unwrap();
        let entries = parse_index_file(&PluginId::new("acme/hello").unwrap(), &file).unwrap();
        assert_eq!(entries.len(), 3);
        assert!(
            entries[0]
                .signatures
                .iter()
                .any(|s| s.role == Role::Marketplace)
        );
        let res = server
            .http
            .get(format!("{}/index/acme/hello", server.url))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

        // The metadata chain verifies from the JSON alone.
        let trusted = server.verified_chain(SeenVersions::default()).await;
        assert_eq!(
            trusted.versions().targets,
            6,
            "one version per publish, plus the first"
        );

        // Search: every filter and sort, each a (query, expected ids) row.
        let verified = server.send("PUT", "/api/v1/admin/verified/acme", &server.admin, None);
        assert_eq!(verified.await, StatusCode::OK);
        let cases: &[(&str, &[&str])] = &[
            ("q=hello", &["acme/hello", "beta/greeter"]),
            ("q=hel", &["acme/hello", "beta/greeter"]),
            ("q=log", &["acme/logger"]),
            ("category=observability", &["acme/logger"]),
            ("tag=hello&sort=name", &["acme/hello", "beta/greeter"]),
            ("license=Apache-2.0", &["acme/logger"]),
            (
                "runtime=component&sort=name",
                &["acme/hello", "acme/logger", "beta/greeter"],
            ),
            ("runtime=extism", &[]),
            ("publisher=beta", &["beta/greeter"]),
            ("verified=true&sort=name", &["acme/hello", "acme/logger"]),
            ("sort=name", &["acme/hello", "acme/logger", "beta/greeter"]),
            ("api=3.0.0", &[]),
        ];
        for (query, expected) in cases {
            let page = server.search(query).await;
            let mut got = ids(&page);
            if !query.contains("sort=name") {
                got.sort();
            }
            assert_eq!(got, *expected, "{query}");
            assert_eq!(page["total"], expected.len(), "{query}");
        }
        // Relevance demotes the unverified publisher.
        assert_eq!(
            ids(&server.search("q=hello").await),
            ["acme/hello", "beta/greeter"]
        );
        // Each hit carries the newest version fitting the asking host.
        let page = server.search("q=hello&publisher=acme&api=1.0.0").await;
        assert_eq!(page["hits"][0]["compatible_version"], "1.1.0");
        assert_eq!(page["hits"][0]["latest"], "2.0.0");
        let page = server.search("q=hello&publisher=acme&api=2.0.0").await;
        assert_eq!(page["hits"][0]["compatible_version"], "2.0.0");

        // Download: counted once per client per day; the package verifies
        // under a policy that trusts the marketplace's counter-signature.
        for _ in 0..3 {
            let res = server
                .http
                .get(format!(
                    "{}/api/v1/plugins/acme/hello/1.1.0/download",
                    server.url
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let sig = res.headers()["x-tenon-signatures"]
                .to_str()
                .unwrap()
                .to_owned();
            let bytes = res.bytes().await.unwrap();
            let sig =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, sig).unwrap();
            let sig = SignatureFile::from_json(&sig).unwrap();
            let mut policy =
                TrustPolicy::default().with_marketplace_key(server.market.marketplace_key());
            policy.trust_marketplace_countersigned = true;
            policy.require_marketplace_signature = true;
            verify(&bytes, Some(&sig), &policy, Origin::Remote).unwrap();
        }
        let (_, detail) = server.get("/api/v1/plugins/acme/hello").await;
        assert_eq!(detail["downloads"], 1, "{detail}");
        assert_eq!(detail["versions"].as_array().unwrap().len(), 3);
        assert_eq!(detail["readme"], "# acme/hello\n");
        let (_, popular) = server.get("/api/v1/popular?days=7").await;
        assert_eq!(popular["plugins"][0]["plugin"]["id"], "acme/hello");
        assert_eq!(ids(&server.search("sort=downloads").await)[0], "acme/hello");

        // Categories, featured.
        let (_, cats) = server.get("/api/v1/categories").await;
        assert_eq!(
            cats["categories"][0],
            json!({"name": "greeting", "plugins": 2})
        );
        assert_eq!(
            server
                .send(
                    "PUT",
                    "/api/v1/admin/featured/beta/greeter",
                    &server.admin,
                    Some(json!({"rank": 1}))
                )
                .await,
            StatusCode::OK
        );
        let (_, featured) = server.get("/api/v1/featured").await;
        assert_eq!(featured["plugins"][0]["id"], "beta/greeter");

        // Yank: the line keeps everything but the flag; updates skip it.
        assert_eq!(
            server
                .send("PUT", "/api/v1/plugins/acme/hello/1.1.0/yank", &acme, None)
                .await,
            StatusCode::OK
        );
        let file = server.bytes("/index/acme/hello").await;
        let after = parse_index_file(&PluginId::new("acme/hello").unwrap(), &file).unwrap();
        assert!(after[1].yanked);
        assert_eq!(
            IndexEntryWithoutYank::of(&after[1]),
            IndexEntryWithoutYank::of(&entries[1])
        );
        let updates = server
            .http
            .post(format!("{}/api/v1/updates", server.url))
            .json(&json!({"api": "1.0.0", "installed": [
                {"id": "acme/hello", "version": "0.9.0"},
                {"id": "acme/logger", "version": "1.0.0"},
                {"id": "nobody/else", "version": "1.0.0"}
            ]}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(
            updates["updates"],
            json!([{"id": "acme/hello", "installed": "0.9.0", "available": "1.0.0"}])
        );
        // The chain still verifies, and a client that saw the older metadata
        // accepts the newer.
        let newer = server.verified_chain(trusted.versions()).await;
        assert!(newer.versions().targets > trusted.versions().targets);

        // Deprecate with a replacement: shown, and demoted in relevance.
        assert_eq!(
            server
                .send(
                    "PUT",
                    "/api/v1/plugins/acme/hello/deprecate",
                    &acme,
                    Some(json!({"deprecated": true, "replacement": "beta/greeter"}))
                )
                .await,
            StatusCode::OK
        );
        let (_, detail) = server.get("/api/v1/plugins/acme/hello").await;
        assert_eq!(detail["deprecated"], true);
        assert_eq!(detail["replacement"], "beta/greeter");

        // Owners: beta's account cannot yank acme's versions until added.
        let beta_yank = server.token("beta-dev", json!(["yank"])).await;
        let yank = |token: String| {
            let http = server.http.clone();
            let url = format!("{}/api/v1/plugins/acme/hello/1.0.0/yank", server.url);
            async move {
                http.put(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(yank(beta_yank.clone()).await, StatusCode::FORBIDDEN);
        let owners = server.token("acme-dev", json!(["owners"])).await;
        assert_eq!(
            server
                .send(
                    "PUT",
                    "/api/v1/namespaces/acme/owners/beta-dev",
                    &owners,
                    None
                )
                .await,
            StatusCode::OK
        );
        assert_eq!(yank(beta_yank).await, StatusCode::OK);
        let (_, list) = server.get("/api/v1/namespaces/acme/owners").await;
        assert_eq!(list["owners"], json!(["acme-dev", "beta-dev"]));

        // The OpenAPI document lists the routes.
        let (_, openapi) = server.get("/openapi.json").await;
        assert!(openapi["paths"]["/api/v1/publish"]["put"].is_object());
    }
}

/// An index line with `yanked` cleared, to compare everything else.
#[derive(Debug, PartialEq)]
struct IndexEntryWithoutYank(String);

impl IndexEntryWithoutYank {
    fn of(entry: &tenon_marketplace::IndexEntry) -> Self {
        let mut e = entry.clone();
        e.yanked = false;
        Self(e.to_line())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_uploads_are_refused_and_nothing_is_stored() {
    let config = MarketConfig {
        limits: UnpackLimits {
            max_archive_bytes: 64 * 1024,
            max_total_bytes: 1024 * 1024,
            max_entry_bytes: 1024 * 1024,
            ..UnpackLimits::default()
        },
        ..MarketConfig::default()
    };
    for &backend in BACKENDS {
        let Some(server) = start(backend, config.clone()).await else {
            continue;
        };
        let key = SigningKey::from_seed(&[1; 32]);
        let other_key = SigningKey::from_seed(&[7; 32]);
        let acme = server.token("acme-dev", json!(["publish"])).await;
        let squatter = server.token("squatter", json!(["publish"])).await;
        let reader = server.token("reader", json!(["yank"])).await;
        let (status, body) = server.publish(&acme, &package(HELLO, &key)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let targets_before = server.bytes("/meta/targets.json").await;

        let tampered = {
            let mut p = package(
                Spec {
                    version: "1.0.1",
                    ..HELLO
                },
                &key,
            );
            let last = p.archive.len() - 9;
            p.archive[last] ^= 1;
            p
        };
        let forged = package(
            Spec {
                version: "1.0.2",
                ..HELLO
            },
            &other_key,
        );
        // A signature by the right key, but over another package.
        let mut bad_signature = package(
            Spec {
                version: "1.0.3",
                ..HELLO
            },
            &key,
        );
        bad_signature.signatures.signatures[0].signature =
            tampered.signatures.signatures[0].signature.clone();
        let unsigned = {
            let mut p = package(
                Spec {
                    version: "1.0.4",
                    ..HELLO
                },
                &key,
            );
            p.signatures.signatures.clear();
            p
        };
        let traversal = raw_package(
            &[
                ("tenon.toml", manifest_text("acme/evil")),
                ("plugin.wasm", b"\0asm".to_vec()),
                ("../../etc/passwd", b"root".to_vec()),
            ],
            6,
            &key,
            "acme/evil",
        );
        let bomb = raw_package(
            &[
                ("tenon.toml", manifest_text("acme/bomb")),
                ("plugin.wasm", vec![0; 4 * 1024 * 1024]),
            ],
            9,
            &key,
            "acme/bomb",
        );
        let oversized = raw_package(
            &[
                ("tenon.toml", manifest_text("acme/big")),
                (
                    "plugin.wasm",
                    (0..200_000u32)
                        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
                        .collect(),
                ),
            ],
            0,
            &key,
            "acme/big",
        );
        let identity = {
            // Signed as acme/other, but the manifest says acme/hello 9.0.0.
            let real = package(
                Spec {
                    version: "9.0.0",
                    ..HELLO
                },
                &key,
            );
            let mut signatures = SignatureFile::new(
                real.signatures.package_sha256,
                PluginId::new("acme/other").unwrap(),
                "9.0.0".parse().unwrap(),
            );
            signatures.sign(Role::Author, &key);
            Pkg {
                archive: real.archive,
                signatures,
            }
        };

        let frame = |p: &Pkg| encode_upload(p.signatures.to_json().as_bytes(), &p.archive);
        let cases: Vec<(&str, &str, Vec<u8>, StatusCode, &str)> = vec![
            (
                "tampered byte",
                &acme,
                frame(&tampered),
                StatusCode::UNPROCESSABLE_ENTITY,
                "sha256",
            ),
            (
                "signed by a key the namespace is not bound to",
                &acme,
                frame(&forged),
                StatusCode::FORBIDDEN,
                "bound to",
            ),
            (
                "signature that does not verify",
                &acme,
                frame(&bad_signature),
                StatusCode::UNPROCESSABLE_ENTITY,
                "signature",
            ),
            (
                "unsigned",
                &acme,
                frame(&unsigned),
                StatusCode::UNPROCESSABLE_ENTITY,
                "not signed",
            ),
            (
                "path traversal",
                &acme,
                frame(&traversal),
                StatusCode::UNPROCESSABLE_ENTITY,
                "unsafe path",
            ),
            (
                "gzip bomb",
                &acme,
                frame(&bomb),
                StatusCode::UNPROCESSABLE_ENTITY,
                "limit",
            ),
            (
                "oversized archive",
                &acme,
                frame(&oversized),
                StatusCode::PAYLOAD_TOO_LARGE,
                "limit",
            ),
            (
                "manifest is not what was signed",
                &acme,
                frame(&identity),
                StatusCode::UNPROCESSABLE_ENTITY,
                "acme/other",
            ),
            (
                "republished version",
                &acme,
                frame(&package(HELLO, &key)),
                StatusCode::CONFLICT,
                "immutable",
            ),
            (
                "namespace squatting",
                &squatter,
                frame(&package(
                    Spec {
                        version: "3.0.0",
                        ..HELLO
                    },
                    &key,
                )),
                StatusCode::FORBIDDEN,
                "belongs to other owners",
            ),
            (
                "look-alike namespace",
                &squatter,
                frame(&package(
                    Spec {
                        id: "ac-me/hello",
                        ..HELLO
                    },
                    &other_key,
                )),
                StatusCode::BAD_REQUEST,
                "too close to the existing `acme`",
            ),
            (
                "look-alike plugin name",
                &acme,
                frame(&package(
                    Spec {
                        id: "acme/hel-lo",
                        ..HELLO
                    },
                    &key,
                )),
                StatusCode::BAD_REQUEST,
                "too close to the existing `acme/hello`",
            ),
            (
                "reserved namespace",
                &squatter,
                frame(&package(
                    Spec {
                        id: "tenon/core",
                        ..HELLO
                    },
                    &other_key,
                )),
                StatusCode::BAD_REQUEST,
                "reserved",
            ),
            (
                "token without the publish scope",
                &reader,
                frame(&package(
                    Spec {
                        version: "4.0.0",
                        ..HELLO
                    },
                    &key,
                )),
                StatusCode::FORBIDDEN,
                "scope",
            ),
            (
                "no token",
                "",
                frame(&package(
                    Spec {
                        version: "4.0.0",
                        ..HELLO
                    },
                    &key,
                )),
                StatusCode::UNAUTHORIZED,
                "token",
            ),
            (
                "truncated frame",
                &acme,
                frame(&package(HELLO, &key))[..100].to_vec(),
                StatusCode::BAD_REQUEST,
                "follow",
            ),
            (
                "garbage",
                &acme,
                b"\xff\xff\xff\xffnot an upload".to_vec(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "signature file",
            ),
            (
                "upload over the body limit",
                &acme,
                vec![0; 512 * 1024],
                StatusCode::PAYLOAD_TOO_LARGE,
                "upload",
            ),
        ];
        for (name, token, body, status, mention) in cases {
            let (got, body) = server.publish_raw(token, body).await;
            let detail = body["errors"][0]["detail"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase();
            assert_eq!(got, status, "{name}: {body}");
            assert!(detail.contains(&mention.to_lowercase()), "{name}: {detail}");
        }
        // Nothing was stored: the same metadata, one plugin, one version.
        assert_eq!(server.bytes("/meta/targets.json").await, targets_before);
        let page = server.search("").await;
        assert_eq!(page["total"], 1);
        let (_, versions) = server.get("/api/v1/plugins/acme/hello/versions").await;
        assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_json_errors() {
    for &backend in BACKENDS {
        let Some(server) = start(backend, MarketConfig::default()).await else {
            continue;
        };
        let acme = server.token("acme-dev", json!(["publish"])).await;
        let cases: &[(&str, StatusCode, &str)] = &[
            ("/api/v1/search?sort=stars", StatusCode::BAD_REQUEST, "sort"),
            ("/api/v1/search?api=one", StatusCode::BAD_REQUEST, "api"),
            (
                "/api/v1/search?nonsense=1",
                StatusCode::BAD_REQUEST,
                "nonsense",
            ),
            (
                "/api/v1/search?cursor=xyz",
                StatusCode::BAD_REQUEST,
                "cursor",
            ),
            (
                "/api/v1/plugins/Acme/hello",
                StatusCode::BAD_REQUEST,
                "lowercase",
            ),
            (
                "/api/v1/plugins/acme/missing",
                StatusCode::NOT_FOUND,
                "not found",
            ),
            ("/index/acme/missing", StatusCode::NOT_FOUND, "not found"),
            ("/meta/other.json", StatusCode::NOT_FOUND, "not found"),
            (
                "/api/v1/plugins/acme/hello/x.y/download",
                StatusCode::BAD_REQUEST,
                "not a version",
            ),
            ("/nowhere", StatusCode::NOT_FOUND, "no such route"),
        ];
        for (path, status, mention) in cases {
            let (got, body) = server.get(path).await;
            assert_eq!(got, *status, "{path}: {body}");
            let detail = body["errors"][0]["detail"].as_str().unwrap_or_default();
            assert!(detail.contains(mention), "{path}: {detail}");
        }
        // Bodies: malformed JSON, too large, and admin routes without admin.
        let res = server
            .http
            .post(format!("{}/api/v1/updates", server.url))
            .header("content-type", "application/json")
            .body("{\"api\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        // A client of its own: the server answers an oversized body before
        // reading it and closes that connection, which a pooled client would
        // otherwise reuse for the next request.
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1/updates", server.url))
            .header("content-type", "application/json")
            .body(vec![b' '; 1024 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            server
                .send(
                    "POST",
                    "/api/v1/admin/tokens",
                    &acme,
                    Some(json!({"account": "x", "scopes": ["admin"]}))
                )
                .await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            server
                .send(
                    "POST",
                    "/api/v1/admin/tokens",
                    "tnm_not-a-token",
                    Some(json!({"account": "x", "scopes": ["admin"]}))
                )
                .await,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_stable_under_concurrent_publishes() {
    for &backend in BACKENDS {
        let config = MarketConfig {
            publishes_per_minute: 1000,
            ..MarketConfig::default()
        };
        let Some(server) = start(backend, config).await else {
            continue;
        };
        let key = SigningKey::from_seed(&[1; 32]);
        let acme = server.token("acme-dev", json!(["publish"])).await;
        let names: Vec<String> = (0..25).map(|i| format!("acme/plugin-{i:02}")).collect();
        for id in &names {
            let spec = Spec { id, ..HELLO };
            let (status, body) = server.publish(&acme, &package(spec, &key)).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let mut expected = names.clone();
        for sort in ["relevance", "name", "updated", "published", "downloads"] {
            let mut seen = Vec::new();
            let mut late = Vec::new();
            let mut query = format!("q=plugin&sort={sort}&limit=10");
            let mut extra = 0;
            loop {
                let page = server.search(&query).await;
                assert_eq!(page["total"], expected.len(), "{sort}");
                seen.extend(ids(&page));
                // Someone publishes between pages.
                let id = format!("acme/late-{sort}-{extra}");
                extra += 1;
                let spec = Spec {
                    id: &id,
                    keywords: &["plugin"],
                    ..HELLO
                };
                let (status, _) = server.publish(&acme, &package(spec, &key)).await;
                assert_eq!(status, StatusCode::CREATED);
                late.push(id);
                match page["next"].as_str() {
                    Some(next) => query = format!("q=plugin&sort={sort}&limit=10&cursor={next}"),
                    None => break,
                }
            }
            let mut sorted = seen.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted, expected, "{sort}: every plugin exactly once");
            assert_eq!(seen.len(), expected.len(), "{sort}");
            expected.extend(late);
            expected.sort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_timestamp_is_refused_by_a_client() {
    for &backend in BACKENDS {
        let Some(server) = start(backend, MarketConfig::default()).await else {
            continue;
        };
        let key = SigningKey::from_seed(&[1; 32]);
        let acme = server.token("acme-dev", json!(["publish"])).await;
        let old_timestamp = server.bytes("/meta/timestamp.json").await;
        server.publish(&acme, &package(HELLO, &key)).await;
        let trusted = server.verified_chain(SeenVersions::default()).await;
        let mut client = TrustedMetadata::new(
            &server.bytes("/meta/root.json").await,
            trusted.versions(),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let err = client
            .update_timestamp(&old_timestamp, OffsetDateTime::now_utc())
            .unwrap_err();
        assert!(err.to_string().contains("rollback"), "{err}");
    }
}

/// Two publishers publish at the same time as a reader pages through the
/// results, on every backend: no publish fails, and each pass over the
/// pages sees every plugin of its first page's snapshot exactly once (as
/// many as that page's total), whatever committed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_stable_while_others_publish_at_the_same_time() {
    for &backend in BACKENDS {
        let config = MarketConfig {
            publishes_per_minute: 1000,
            ..MarketConfig::default()
        };
        let Some(server) = start(backend, config).await else {
            continue;
        };
        let key = SigningKey::from_seed(&[1; 32]);
        let acme = server.token("acme-dev", json!(["publish"])).await;
        let before: Vec<String> = (0..12).map(|i| format!("acme/plugin-{i:02}")).collect();
        for id in &before {
            let (status, body) = server
                .publish(&acme, &package(Spec { id, ..HELLO }, &key))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let publishers: Vec<_> = ["racer", "runner"]
            .into_iter()
            .map(|namespace| {
                let market = server.market.clone();
                tokio::spawn(async move {
                    let who = market.account(namespace, &[Scope::Publish]).await.unwrap();
                    let key = SigningKey::from_seed(&[namespace.len() as u8; 32]);
                    for i in 0..15 {
                        let id = format!("{namespace}/plugin-{i:02}");
                        let pkg = package(
                            Spec {
                                id: &id,
                                keywords: &["plugin"],
                                ..HELLO
                            },
                            &key,
                        );
                        let body = encode_upload(pkg.signatures.to_json().as_bytes(), &pkg.archive);
                        market
                            .publish(&who, &body)
                            .await
                            .unwrap_or_else(|e| panic!("publishing {id}: {e}"));
                    }
                })
            })
            .collect();
        let mut passes = 0;
        while publishers.iter().any(|p| !p.is_finished()) || passes < 5 {
            let sort = ["relevance", "name", "updated", "published", "downloads"][passes % 5];
            passes += 1;
            let mut query = format!("q=plugin&sort={sort}&limit=4");
            let first = server.search(&query).await;
            let total = first["total"].as_u64().unwrap() as usize;
            let mut seen = ids(&first);
            let mut page = first;
            while let Some(next) = page["next"].as_str() {
                query = format!("q=plugin&sort={sort}&limit=4&cursor={next}");
                page = server.search(&query).await;
                assert_eq!(page["total"].as_u64().unwrap() as usize, total, "{sort}");
                seen.extend(ids(&page));
            }
            let mut unique = seen.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                unique.len(),
                seen.len(),
                "{sort}: a plugin repeated: {seen:?}"
            );
            assert_eq!(seen.len(), total, "{sort}: {seen:?}");
            for id in &before {
                assert!(seen.contains(id), "{sort}: {id} skipped: {seen:?}");
            }
        }
        for publisher in publishers {
            publisher.await.unwrap();
        }
        let all = server.search("q=plugin&limit=100").await;
        assert_eq!(all["total"], before.len() + 30, "{all}");
    }
}

/// A server that runs for weeks keeps serving metadata a client accepts:
/// snapshot (7 days) and targets (30 days) are re-signed like the
/// timestamp once less than half their lifetime is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_stays_fresh_for_a_long_running_server() {
    for &backend in BACKENDS {
        let Some(server) = start(backend, MarketConfig::default()).await else {
            continue;
        };
        let key = SigningKey::from_seed(&[1; 32]);
        let acme = server.token("acme-dev", json!(["publish"])).await;
        server.publish(&acme, &package(HELLO, &key)).await;
        let root = server.bytes("/meta/root.json").await;
        let start = OffsetDateTime::now_utc();
        let mut seen = SeenVersions::default();
        for days in [1, 4, 8, 16, 31, 62, 100] {
            let at = start + time::Duration::days(days);
            let mut client = TrustedMetadata::new(&root, seen, at).unwrap();
            let timestamp = server
                .market
                .metadata_at(MetaRole::Timestamp, at)
                .await
                .unwrap();
            let snapshot = server
                .market
                .metadata_at(MetaRole::Snapshot, at)
                .await
                .unwrap();
            let targets = server
                .market
                .metadata_at(MetaRole::Targets, at)
                .await
                .unwrap();
            client
                .update_timestamp(&timestamp, at)
                .unwrap_or_else(|e| panic!("day {days}: {e}"));
            client
                .update_snapshot(&snapshot, at)
                .unwrap_or_else(|e| panic!("day {days}: {e}"));
            let targets = client
                .update_targets(&targets, at)
                .unwrap_or_else(|e| panic!("day {days}: {e}"))
                .clone();
            let path = tenon_marketplace::index_path(&PluginId::new("acme/hello").unwrap());
            assert!(
                targets.targets.contains_key(&path),
                "day {days}: {path} still listed"
            );
            seen = client.versions();
        }
    }
}

/// Concurrent readers that all find the metadata due for renewal all get
/// it: one re-signs, none fails on the others' writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_renewals_all_succeed() {
    for &backend in BACKENDS {
        let Some(server) = start(backend, MarketConfig::default()).await else {
            continue;
        };
        let root = server.bytes("/meta/root.json").await;
        let at = OffsetDateTime::now_utc() + time::Duration::days(20);
        let readers: Vec<_> = (0..16)
            .map(|i| {
                let market = server.market.clone();
                let role = [MetaRole::Timestamp, MetaRole::Snapshot, MetaRole::Targets][i % 3];
                tokio::spawn(async move { market.metadata_at(role, at).await })
            })
            .collect();
        for reader in readers {
            reader.await.unwrap().unwrap();
        }
        let mut client = TrustedMetadata::new(&root, SeenVersions::default(), at).unwrap();
        client
            .update_timestamp(
                &server
                    .market
                    .metadata_at(MetaRole::Timestamp, at)
                    .await
                    .unwrap(),
                at,
            )
            .unwrap();
        client
            .update_snapshot(
                &server
                    .market
                    .metadata_at(MetaRole::Snapshot, at)
                    .await
                    .unwrap(),
                at,
            )
            .unwrap();
        client
            .update_targets(
                &server
                    .market
                    .metadata_at(MetaRole::Targets, at)
                    .await
                    .unwrap(),
                at,
            )
            .unwrap();
    }
}

/// Longer than any limit these tests set: reaching it means the server kept
/// open what it should have closed.
const HANG: std::time::Duration = std::time::Duration::from_secs(20);

/// Sends `head` (and `body`) on a fresh connection and returns what the
/// server answers until it closes the connection or sends a whole head;
/// `None` if it sends nothing for [`HANG`].
async fn raw(url: &str, head: &str, body: &[u8]) -> Option<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(HANG, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if got.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    Some(String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_is_refused_before_its_body_and_publishes_are_bounded() {
    for &backend in BACKENDS {
        let Some(server) = start_with(
            backend,
            MarketConfig::default(),
            HttpLimits {
                max_concurrent_publishes: 1,
                // Long enough that, on a loaded machine, the second stalled
                // publish is checked while the first still holds the place.
                request_timeout: std::time::Duration::from_secs(10),
                ..HttpLimits::default()
            },
        )
        .await
        else {
            continue;
        };
        let big = "PUT /api/v1/publish HTTP/1.1\r\nHost: t\r\nContent-Length: 67174400\r\n";
        // Anonymous or with an unknown token: refused at once, before any of
        // the 64 MiB announced is sent.
        for auth in ["", "Authorization: Bearer nope\r\n"] {
            let answer = raw(&server.url, &format!("{big}{auth}\r\n"), b"abc")
                .await
                .unwrap_or_else(|| panic!("{auth:?}: the server waited for the body"));
            assert!(answer.starts_with("HTTP/1.1 401"), "{auth:?}: {answer}");
        }
        // Two valid publishers stall mid-body: whichever is admitted first
        // holds the only place until the request timeout cuts it (408); the
        // other is refused before its body (429). Then the place is free again.
        let acme = server.token("acme-dev", json!(["publish"])).await;
        let auth = format!("Authorization: Bearer {acme}\r\n");
        let stalled: Vec<_> = (0..2)
            .map(|_| {
                let url = server.url.clone();
                let head = format!("{big}{auth}\r\n");
                tokio::spawn(async move { raw(&url, &head, b"abc").await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in stalled {
            let answer = task
                .await
                .unwrap()
                .expect("each stalled publish is answered");
            answers.push(answer.get(..12).unwrap_or(&answer).to_owned());
        }
        answers.sort();
        assert_eq!(answers, ["HTTP/1.1 408", "HTTP/1.1 429"], "{answers:?}");
        let key = SigningKey::from_seed(&[1; 32]);
        let (status, body) = server.publish(&acme, &package(HELLO, &key)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_closed_by_market_serve() {
    for &backend in BACKENDS {
        let Some(server) = start_with(
            backend,
            MarketConfig::default(),
            HttpLimits {
                connections: tenon_market_server::ConnectionLimits {
                    header_read_timeout: std::time::Duration::from_millis(300),
                    ..tenon_market_server::ConnectionLimits::default()
                },
                ..HttpLimits::default()
            },
        )
        .await
        else {
            continue;
        };
        let answer = raw(
            &server.url,
            "GET /api/v1/search HTTP/1.1\r\nHost: t\r\nX-Slow: a",
            b"",
        )
        .await
        .expect("the server closed the half-sent request");
        assert!(!answer.contains("200 OK"), "{answer}");
    }
}

/// The current UTC minute (rate windows are per minute).
fn minute() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp() / 60
}

/// Runs `scenario` (attempt `n` uses fresh clients) until it passes, again
/// only when it failed across a change of `period` (a rate window or a
/// day of download counting starting over mid-scenario is not a failure).
async fn within_one<F, Fut>(period: fn() -> i64, mut scenario: F)
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    for attempt in 0..3 {
        let before = period();
        match scenario(attempt).await {
            Ok(()) => return,
            Err(why) if period() != before => eprintln!("retrying across a window: {why}"),
            Err(why) => panic!("{why}"),
        }
    }
    panic!("three windows changed mid-scenario");
}

impl Server {
    /// `GET path` as sent by a proxy naming `forwarded` in
    /// `X-Forwarded-For`: the status and the error detail, if any.
    async fn get_from(&self, path: &str, forwarded: &str) -> (StatusCode, String) {
        let res = self
            .http
            .get(format!("{}{path}", self.url))
            .header("x-forwarded-for", forwarded)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let detail = body["errors"][0]["detail"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        (status, detail)
    }
}

/// Sends `GET /api/v1/categories` for each `(forwarded, expected status)`
/// and checks that every 429 names `limited`.
async fn expect_statuses(
    server: &Server,
    steps: &[(String, StatusCode)],
    limited: &str,
) -> Result<(), String> {
    for (n, (forwarded, expected)) in steps.iter().enumerate() {
        let (status, detail) = server.get_from("/api/v1/categories", forwarded).await;
        if status != *expected {
            return Err(format!("step {n} from {forwarded}: {status} {detail}"));
        }
        if status == StatusCode::TOO_MANY_REQUESTS && !detail.contains(limited) {
            return Err(format!(
                "step {n}: the refusal should name {limited}: {detail}"
            ));
        }
    }
    Ok(())
}

fn behind_loopback_proxy(per_minute: u32, clients: usize) -> HttpLimits {
    HttpLimits {
        requests_per_minute: per_minute,
        max_tracked_clients: clients,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..HttpLimits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_64_is_one_client_and_only_trusted_proxies_name_clients() {
    const OK: StatusCode = StatusCode::OK;
    const LIMITED: StatusCode = StatusCode::TOO_MANY_REQUESTS;
    for &backend in BACKENDS {
        let Some(server) = start_with(
            backend,
            MarketConfig::default(),
            behind_loopback_proxy(3, 1000),
        )
        .await
        else {
            continue;
        };
        within_one(minute, |a| {
            let server = &server;
            async move {
                // Rotating through one /64 does not make many clients; the
                // next /64 is another client.
                let net = format!("2001:db8:{a}:1");
                let steps: Vec<(String, StatusCode)> = vec![
                    (format!("{net}::1"), OK),
                    (format!("{net}::2"), OK),
                    (format!("{net}:ffff:ffff:ffff:ffff"), OK),
                    (format!("{net}::4"), LIMITED),
                    (format!("2001:db8:{a}:2::1"), OK),
                ];
                expect_statuses(server, &steps, &format!("2001:db8:{a}:1::/64")).await?;
                // What a client wrote itself (left of what its proxy added)
                // is not believed.
                let real = format!("203.0.113.{a}");
                let steps: Vec<(String, StatusCode)> = (0..4)
                    .map(|i| {
                        let status = if i < 3 { OK } else { LIMITED };
                        (format!("10.9.{a}.{i}, {real}"), status)
                    })
                    .collect();
                expect_statuses(server, &steps, &real).await?;
                // An IPv4-mapped address is its IPv4 address.
                let v4 = format!("198.51.100.{a}");
                let steps: Vec<(String, StatusCode)> = vec![
                    (v4.clone(), OK),
                    (format!("::ffff:{v4}"), OK),
                    (v4.clone(), OK),
                    (format!("::ffff:{v4}"), LIMITED),
                ];
                expect_statuses(server, &steps, &v4).await
            }
        })
        .await;
    }
    // A server that trusts no proxy: the header is the client's own words,
    // and rotating it escapes nothing.
    within_one(minute, |_| async {
        let Some(server) = start_with(
            Backend::Sqlite,
            MarketConfig::default(),
            HttpLimits {
                requests_per_minute: 3,
                ..HttpLimits::default()
            },
        )
        .await
        else {
            return Ok(());
        };
        let steps: Vec<(String, StatusCode)> = (0..4)
            .map(|i| {
                let status = if i < 3 {
                    StatusCode::OK
                } else {
                    StatusCode::TOO_MANY_REQUESTS
                };
                (format!("2001:db8:{i}::1"), status)
            })
            .collect();
        expect_statuses(&server, &steps, "address 127.0.0.1").await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_table_is_bounded_and_evicts_the_client_seen_longest_ago() {
    for &backend in BACKENDS {
        let Some(server) = start_with(
            backend,
            MarketConfig::default(),
            behind_loopback_proxy(1, 2),
        )
        .await
        else {
            continue;
        };
        within_one(minute, |attempt| {
            let server = &server;
            async move {
                let [a, b, c] = [1, 2, 3].map(|n| format!("192.0.2.{}", attempt * 10 + n));
                let steps = [
                    (a.clone(), StatusCode::OK),
                    (b.clone(), StatusCode::OK),
                    // a is limited, and now the client seen last.
                    (a.clone(), StatusCode::TOO_MANY_REQUESTS),
                    // A third client evicts b, not a: a keeps its count.
                    (c.clone(), StatusCode::OK),
                    (a.clone(), StatusCode::TOO_MANY_REQUESTS),
                    // b was forgotten and starts over.
                    (b.clone(), StatusCode::OK),
                ];
                expect_statuses(server, &steps, &a).await
            }
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_count_an_ipv6_64_once() {
    let day = || OffsetDateTime::now_utc().unix_timestamp() / 86_400;
    for &backend in BACKENDS {
        within_one(day, |_| async move {
            let Some(server) = start_with(
                backend,
                MarketConfig::default(),
                behind_loopback_proxy(1000, 1000),
            )
            .await
            else {
                return Ok(());
            };
            let token = server.token("acme-dev", json!(["publish"])).await;
            let key = SigningKey::from_seed(&[1; 32]);
            let (status, body) = server.publish(&token, &package(HELLO, &key)).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            for from in [
                "2001:db8:5::1",
                "2001:db8:5::2",
                "2001:db8:5:0:ff::9",
                "2001:db8:6::1",
            ] {
                let res = server
                    .http
                    .get(format!(
                        "{}/api/v1/plugins/acme/hello/1.0.0/download",
                        server.url
                    ))
                    .header("x-forwarded-for", from)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::OK, "{from}");
            }
            let (_, detail) = server.get("/api/v1/plugins/acme/hello").await;
            if detail["downloads"] != 2 {
                return Err(format!("two /64 networks are two downloads: {detail}"));
            }
            Ok(())
        })
        .await;
    }
}

/// The key in a key file.
fn key_file(path: &std::path::Path) -> SigningKey {
    SigningKey::from_base64(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_root_rotation_needs_the_current_threshold_and_a_broken_chain_is_refused_at_load() {
    use tenon_market_server::keys::rotate_root;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let now = OffsetDateTime::now_utc();
    tenon_market_server::init(&keys, 3, 2, now).unwrap();
    let [k1, k2] = ["root-1.key", "root-2.key"].map(|f| key_file(&keys.join(f)));
    let root1 = std::fs::read(keys.join("root.json")).unwrap();
    // One key of a 2-of-3 root, or a stranger's: refused, nothing written.
    for (what, given) in [
        ("one of two", vec![k1.clone()]),
        ("twice the same", vec![k1.clone(), k1.clone()]),
        ("a stranger", vec![SigningKey::from_seed(&[5; 32])]),
    ] {
        let error = rotate_root(&keys, &given, 1, 1, now).unwrap_err();
        assert!(
            error.to_string().contains("cannot sign root 2"),
            "{what}: {error}"
        );
        assert!(!keys.join("2.root.json").exists(), "{what}");
        assert_eq!(
            std::fs::read(keys.join("root.json")).unwrap(),
            root1,
            "{what}"
        );
    }
    let error = rotate_root(&keys, &[k1.clone(), k2.clone()], 1, 2, now).unwrap_err();
    assert!(error.to_string().contains("threshold"), "{error}");
    let report = rotate_root(&keys, &[k1, k2], 2, 1, now).unwrap();
    assert_eq!(report.version, 2);
    assert_eq!(report.root_keys.len(), 2);
    let loaded = MarketKeys::load(&keys, now).unwrap();
    assert_eq!(loaded.roots.keys().copied().collect::<Vec<_>>(), [1, 2]);

    // A missing link, or a forged one, is refused at load naming it.
    let second = std::fs::read(keys.join("2.root.json")).unwrap();
    std::fs::remove_file(keys.join("2.root.json")).unwrap();
    let error = MarketKeys::load(&keys, now).unwrap_err();
    assert!(error.to_string().contains("2.root.json"), "{error}");
    let stranger = SigningKey::from_seed(&[6; 32]);
    let mut body: tenon_marketplace::metadata::Root =
        serde_json::from_value(serde_json::from_slice::<Value>(&second).unwrap()["signed"].clone())
            .unwrap();
    body.expires += time::Duration::days(1);
    let forged = tenon_marketplace::metadata::sign_metadata(&body, &[&stranger]);
    std::fs::write(keys.join("2.root.json"), &forged).unwrap();
    let error = MarketKeys::load(&keys, now).unwrap_err();
    assert!(error.to_string().contains("root 2"), "{error}");
    std::fs::write(keys.join("2.root.json"), &second).unwrap();
    MarketKeys::load(&keys, now).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kept_root_is_served_and_a_client_walks_them_to_the_current_one() {
    use tenon_market_server::keys::rotate_root;
    for &backend in BACKENDS {
        let Some(server) = start_with_keys(
            backend,
            MarketConfig::default(),
            HttpLimits::default(),
            |keys| {
                let now = OffsetDateTime::now_utc();
                tenon_market_server::init(keys, 1, 1, now).unwrap();
                let mut current = vec![key_file(&keys.join("root-1.key"))];
                for _ in 0..2 {
                    let report = rotate_root(keys, &current, 1, 1, now).unwrap();
                    current = vec![key_file(&report.root_keys[0])];
                }
            },
        )
        .await
        else {
            continue;
        };
        let token = server.token("acme-dev", json!(["publish"])).await;
        let key = SigningKey::from_seed(&[1; 32]);
        let (status, body) = server.publish(&token, &package(HELLO, &key)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        // From root 1, as a client that trusted it would.
        let mut trusted = TrustedMetadata::trusting_root(
            &server.bytes("/meta/1.root.json").await,
            SeenVersions::default(),
        )
        .unwrap();
        for version in 2..=3 {
            trusted
                .update_root(&server.bytes(&format!("/meta/{version}.root.json")).await)
                .unwrap();
        }
        assert_eq!(trusted.root().version, 3);
        assert_eq!(
            server.bytes("/meta/3.root.json").await,
            server.bytes("/meta/root.json").await
        );
        for absent in [
            "4.root.json",
            "0.root.json",
            "01.root.json",
            "-1.root.json",
            ".root.json",
            "99999999999999999999999.root.json",
        ] {
            let (status, body) = server.get(&format!("/meta/{absent}")).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{absent}: {body}");
        }
        // The rest of the chain verifies under root 3.
        let chain = server.verified_chain(SeenVersions::default()).await;
        assert_eq!(chain.root().version, 3);
    }
}
