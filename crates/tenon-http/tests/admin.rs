//! A real server on loopback: every admin route refused without the role it
//! needs and answered with it, hostile requests first; upload preview then
//! install; the event stream; every change recorded with the token's name.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenon_engine::{HookSpec, PluginEngine, Role, SecretKey, TrustPolicy, agent_runner_hooks};
use tenon_http::{HttpConfig, ROUTES};

struct Server {
    url: String,
    http: reqwest::Client,
    admin: String,
    operator: String,
    viewer: String,
    engine: PluginEngine,
    dir: tempfile::TempDir,
}

/// The example plugins' directories, built once per process.
fn example(name: &str) -> PathBuf {
    tenon_build::ensure_examples_built()
        .expect(name)
        .dir
        .clone()
}

/// One Prometheus recorder per process (it is global).
fn metrics() -> tenon_http::MetricsRenderer {
    static HANDLE: OnceLock<tenon_http::MetricsRenderer> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = tenon_engine::prometheus::install().expect("one recorder");
            Arc::new(move || handle.render())
        })
        .clone()
}

fn config() -> HttpConfig {
    HttpConfig {
        max_body_bytes: 4096,
        max_upload_bytes: 4 << 20,
        max_header_bytes: 8192,
        event_poll: Duration::from_millis(50),
        metrics: Some(metrics()),
        ..HttpConfig::default()
    }
}

async fn start() -> Server {
    start_with(config(), TrustPolicy::development()).await
}

async fn start_with(config: HttpConfig, policy: TrustPolicy) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut hooks = agent_runner_hooks();
    hooks.extend([
        HookSpec::new("echo.noop"),
        HookSpec::new("echo.parse"),
        HookSpec::new("echo.patch").with_mutable(["/echoed"]),
    ]);
    let engine = PluginEngine::builder()
        .registry("memory:")
        .data_dir(dir.path())
        .hooks(hooks)
        .secret_key(SecretKey::parse(&"ab".repeat(32)).unwrap())
        .trust_policy(policy)
        .build()
        .await
        .unwrap();
    let mut tokens = Vec::new();
    for (name, role) in [
        ("alice", Role::Admin),
        ("oscar", Role::Operator),
        ("vera", Role::Viewer),
    ] {
        tokens.push(engine.create_token(name, role).await.unwrap().secret);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tenon_http::serve(
        engine.clone(),
        config,
        listener,
        std::future::pending(),
    ));
    let [admin, operator, viewer] = <[String; 3]>::try_from(tokens).unwrap();
    Server {
        url: format!("http://{addr}"),
        http: reqwest::Client::new(),
        admin,
        operator,
        viewer,
        engine,
        dir,
    }
}

enum Body {
    None,
    Json(Value),
    Raw(Vec<u8>),
}

impl Server {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> (StatusCode, Value) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(&value),
            Body::Raw(bytes) => request.body(bytes),
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn ok(&self, method: &str, path: &str, token: &str, body: Body) -> Value {
        let (status, value) = self.call(method, path, Some(token), body).await;
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value
    }

    /// The `api.request` events, as (actor, action, status), newest first.
    async fn audit(&self) -> Vec<(String, String, String)> {
        let page = self
            .ok(
                "GET",
                "/api/v1/events?kind=api.request&limit=1000",
                &self.viewer,
                Body::None,
            )
            .await;
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["detail"]["actor"].as_str().unwrap().to_owned(),
                    e["detail"]["action"].as_str().unwrap().to_owned(),
                    e["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

fn concrete(path: &str) -> String {
    path.replace("{publisher}", "acme")
        .replace("{name}", "absent")
        .replace("{hook}", "response.pre_deliver")
}

fn error_code(value: &Value) -> &str {
    value["error"]["code"].as_str().unwrap_or("<none>")
}

/// Every error body has the same shape, with the CLI's exit code.
fn assert_error(value: &Value, code: &str, exit_code: u64) {
    assert_eq!(error_code(value), code, "{value}");
    assert_eq!(value["error"]["exit_code"], json!(exit_code), "{value}");
    let category = value["error"]["category"].as_str().unwrap();
    assert!(
        ["refused", "usage", "environment"].contains(&category),
        "{value}"
    );
    assert!(!value["error"]["message"].as_str().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_callers_without_its_role() {
    let server = start().await;
    let junk = format!("tenon_{}", "0".repeat(64));
    for route in ROUTES {
        let path = concrete(route.path);
        let Some(needed) = route.role else {
            let (status, _) = server.call(route.method, &path, None, Body::None).await;
            assert_eq!(status, StatusCode::OK, "{} is public", route.operation);
            continue;
        };
        // No token, a token of another scheme, an unknown token, an
        // oversized one: refused before the handler, with a challenge.
        let (status, body) = server.call(route.method, &path, None, Body::None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", route.operation);
        assert_error(&body, "unauthenticated", 1);
        for token in [junk.as_str(), "not-a-tenon-token", &"x".repeat(4000)] {
            let (status, body) = server
                .call(route.method, &path, Some(token), Body::None)
                .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} {token:.20}",
                route.operation
            );
            assert_error(&body, "bad_token", 1);
        }
        let basic = server
            .http
            .request(
                Method::from_bytes(route.method.as_bytes()).unwrap(),
                format!("{}{path}", server.url),
            )
            .header("authorization", format!("Basic {}", server.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(
            basic.status(),
            StatusCode::UNAUTHORIZED,
            "{}",
            route.operation
        );
        // Each role below the one needed: forbidden, naming both.
        for (role, token) in [
            (Role::Viewer, &server.viewer),
            (Role::Operator, &server.operator),
        ] {
            if role.allows(needed) {
                continue;
            }
            let (status, body) = server
                .call(route.method, &path, Some(token), Body::None)
                .await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{} as {role}",
                route.operation
            );
            assert_error(&body, "forbidden", 1);
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(needed.as_str()) && message.contains(role.as_str()),
                "{message}"
            );
        }
    }
    // Refusals change nothing and are not recorded as changes.
    assert_eq!(server.engine.list().await.unwrap(), []);
    assert_eq!(server.audit().await, []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_clear_errors_and_change_nothing() {
    let server = start().await;
    let admin = server.admin.as_str();
    let cases: Vec<(&str, String, Body, StatusCode, &str)> = vec![
        (
            "POST",
            "/api/v1/plugins".into(),
            Body::Raw(b"{not json".to_vec()),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/plugins".into(),
            Body::Json(json!({"path": "/x", "upload": "y"})),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/plugins".into(),
            Body::Json(json!({"paht": "/x"})),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/plugins".into(),
            Body::Json(json!({"path": "x".repeat(5000)})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "POST",
            "/api/v1/plugins".into(),
            Body::Json(json!({"path": "/nonexistent/plugin"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "source",
        ),
        (
            "POST",
            "/api/v1/plugins".into(),
            Body::Json(json!({"upload": "0123"})),
            StatusCode::NOT_FOUND,
            "unknown_upload",
        ),
        (
            "POST",
            "/api/v1/uploads".into(),
            Body::Raw(Vec::new()),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/uploads".into(),
            Body::Raw(b"garbage, not a gzip'd tar".to_vec()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_package",
        ),
        (
            "POST",
            "/api/v1/uploads".into(),
            Body::Raw(vec![0x1f; (4 << 20) + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "GET",
            "/api/v1/plugins/acme/absent".into(),
            Body::None,
            StatusCode::NOT_FOUND,
            "not_installed",
        ),
        (
            "GET",
            "/api/v1/plugins/ACME!/x".into(),
            Body::None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/plugins/acme%2F..%2Fx/y".into(),
            Body::None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "DELETE",
            "/api/v1/plugins/acme/absent?purge=everything".into(),
            Body::None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/plugins?state=sleeping".into(),
            Body::None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/plugins?colour=red".into(),
            Body::None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/events?after=not-a-cursor".into(),
            Body::None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "GET",
            "/api/v1/events?kind=Bad%20Kind".into(),
            Body::None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "PUT",
            "/api/v1/plugins/acme/absent/config".into(),
            Body::Json(json!({})),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "PUT",
            "/api/v1/plugins/acme/absent/config".into(),
            Body::Json(json!({"set": {"k": 1}})),
            StatusCode::NOT_FOUND,
            "not_installed",
        ),
        (
            "POST",
            "/api/v1/plugins/acme/absent/grant".into(),
            Body::Json(json!({})),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/plugins/acme/absent/rollback".into(),
            Body::Json(json!({"to": "one"})),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "POST",
            "/api/v1/hooks/no.such.hook/dispatch".into(),
            Body::Json(json!({"data": {}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "refused",
        ),
        (
            "GET",
            "/api/v1/nothing-here".into(),
            Body::None,
            StatusCode::NOT_FOUND,
            "no_route",
        ),
        (
            "PATCH",
            "/api/v1/plugins".into(),
            Body::None,
            StatusCode::METHOD_NOT_ALLOWED,
            "",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (got, value) = server.call(method, &path, Some(admin), body).await;
        assert_eq!(got, status, "{method} {path}: {value}");
        if !code.is_empty() {
            let exit = if matches!(
                code,
                "not_installed" | "unknown_upload" | "refused" | "invalid_package"
            ) {
                1
            } else {
                2
            };
            assert_error(&value, code, exit);
        }
    }
    // Headers beyond the limit are refused before authentication.
    let response = server
        .http
        .get(format!("{}/api/v1/plugins", server.url))
        .bearer_auth(admin)
        .header("x-padding", "p".repeat(9000))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    // An upload whose signature header is not base64.
    let response = server
        .http
        .post(format!("{}/api/v1/uploads", server.url))
        .bearer_auth(admin)
        .header("x-tenon-signatures", "%%%")
        .body(b"x".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(server.engine.list().await.unwrap(), []);
    // The failed changes are recorded, with the token's name and why.
    let audit = server.audit().await;
    assert!(!audit.is_empty());
    assert!(
        audit
            .iter()
            .all(|(actor, _, status)| actor == "alice" && status == "error"),
        "{audit:?}"
    );
}

fn pack(dir: &Path) -> Vec<u8> {
    tenon_marketplace::pack(dir, &tenon_marketplace::PackOptions::default())
        .unwrap()
        .bytes
}

/// A copy of a built example with another version.
fn versioned(name: &str, version: &str, into: &Path) -> PathBuf {
    let dest = into.join(format!("{name}-{version}"));
    std::fs::create_dir_all(&dest).unwrap();
    for entry in std::fs::read_dir(example(name)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dest.join(entry.file_name())).unwrap();
        }
    }
    let manifest = dest.join("tenon.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replacen(
            "version = \"0.1.0\"",
            &format!("version = \"{version}\""),
            1,
        ),
    )
    .unwrap();
    dest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_its_role_through_a_plugin_lifecycle() {
    let server = start().await;
    let (admin, operator, viewer) = (&server.admin, &server.operator, &server.viewer);
    let mut exercised = BTreeSet::new();
    let mut did = |op: &str| {
        exercised.insert(op.to_owned());
    };

    let doc = server
        .ok("GET", "/api/v1/openapi.json", viewer, Body::None)
        .await;
    assert_eq!(doc["openapi"], json!("3.1.0"));
    assert_eq!(
        doc["paths"].as_object().unwrap().len(),
        ROUTES.iter().map(|r| r.path).collect::<BTreeSet<_>>().len()
    );
    did("openapi");

    // Each token learns its own name and role (the page shows them).
    for (token, name, role) in [
        (admin, "alice", "admin"),
        (operator, "oscar", "operator"),
        (viewer, "vera", "viewer"),
    ] {
        let session = server.ok("GET", "/api/v1/session", token, Body::None).await;
        assert_eq!(session["name"], json!(name));
        assert_eq!(session["role"], json!(role));
        assert_eq!(session["tenant"], json!("default"));
    }
    did("getSession");

    // Upload: the preview says what it asks for, and nothing is stored.
    let archive = pack(&example("notifier"));
    let preview = server
        .http
        .post(format!("{}/api/v1/uploads", server.url))
        .bearer_auth(admin)
        .header("x-tenon-filename", "notifier.tenon")
        .body(archive)
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status(), StatusCode::OK);
    let preview: Value = preview.json().await.unwrap();
    did("uploadPackage");
    assert_eq!(preview["preview"]["id"], json!("tenon-examples/notifier"));
    assert_eq!(preview["preview"]["installed"], Value::Null);
    let asks = preview["preview"]["permissions"].as_array().unwrap();
    assert!(
        asks.iter().any(|p| p.as_str().unwrap().contains("secret")),
        "{asks:?}"
    );
    assert!(preview["preview"]["config"]["fields"].is_array());
    assert_eq!(server.engine.list().await.unwrap(), []);
    let upload = preview["upload"].as_str().unwrap().to_owned();

    let installed = server
        .ok(
            "POST",
            "/api/v1/plugins",
            admin,
            Body::Json(json!({"upload": upload})),
        )
        .await;
    did("installPlugin");
    assert_eq!(installed["id"], json!("tenon-examples/notifier"));
    assert_eq!(installed["state"], json!("pending_config"));
    // An upload installs once.
    let (status, body) = server
        .call(
            "POST",
            "/api/v1/plugins",
            Some(admin),
            Body::Json(json!({"upload": upload})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // From a path on the server.
    let echo = example("echo");
    let installed = server
        .ok(
            "POST",
            "/api/v1/plugins",
            admin,
            Body::Json(json!({"path": echo})),
        )
        .await;
    assert_eq!(installed["id"], json!("tenon-examples/echo"));

    let list = server
        .ok(
            "GET",
            "/api/v1/plugins?state=pending_config",
            viewer,
            Body::None,
        )
        .await;
    did("listPlugins");
    let ids: Vec<&str> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["tenon-examples/notifier"]);
    let list = server
        .ok("GET", "/api/v1/plugins?q=ECHO", viewer, Body::None)
        .await;
    assert_eq!(list["plugins"].as_array().unwrap().len(), 1);

    // Secrets are written, never read back.
    let config = server
        .ok(
            "PUT",
            "/api/v1/plugins/tenon-examples/notifier/config",
            operator,
            Body::Json(json!({"set": {"webhook_url": "https://hooks.example.com/x", "token": "s3cr3t-value"}})),
        )
        .await;
    did("configurePlugin");
    assert!(!config.to_string().contains("s3cr3t-value"), "{config}");
    let detail = server
        .ok(
            "GET",
            "/api/v1/plugins/tenon-examples/notifier",
            viewer,
            Body::None,
        )
        .await;
    did("getPlugin");
    assert!(!detail.to_string().contains("s3cr3t-value"), "{detail}");
    assert_eq!(detail["config"]["values"]["token"], json!("********"));
    for key in [
        "manifest",
        "versions",
        "config",
        "permissions",
        "posture",
        "stats",
        "state",
    ] {
        assert!(detail.get(key).is_some(), "detail has no {key}: {detail}");
    }
    assert!(
        !detail["permissions"]["missing"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let granted = server
        .ok(
            "POST",
            "/api/v1/plugins/tenon-examples/echo/grant",
            admin,
            Body::Json(json!({"all": true})),
        )
        .await;
    did("grantPermissions");
    assert_eq!(granted["missing"], json!([]));
    server
        .ok(
            "POST",
            "/api/v1/plugins/tenon-examples/notifier/grant",
            admin,
            Body::Json(json!({"all": true})),
        )
        .await;
    let revoked = server
        .ok(
            "POST",
            "/api/v1/plugins/tenon-examples/notifier/revoke",
            admin,
            Body::Json(json!({"permissions": ["secrets"]})),
        )
        .await;
    did("revokePermissions");
    assert!(
        !revoked["revoked"].as_array().unwrap().is_empty(),
        "{revoked}"
    );

    let enabled = server
        .ok(
            "POST",
            "/api/v1/plugins/tenon-examples/echo/enable",
            operator,
            Body::None,
        )
        .await;
    did("enablePlugin");
    assert_eq!(enabled["state"], json!("active"));

    let hooks = server.ok("GET", "/api/v1/hooks", viewer, Body::None).await;
    did("listHooks");
    let noop = hooks["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == json!("echo.noop"))
        .unwrap();
    assert_eq!(noop["handlers"].as_array().unwrap().len(), 1, "{noop}");
    let outcome = server
        .ok(
            "POST",
            "/api/v1/hooks/echo.patch/dispatch",
            operator,
            Body::Json(json!({"data": {"n": 1}})),
        )
        .await;
    did("dispatchHook");
    assert_eq!(outcome["data"]["echoed"], json!(true), "{outcome}");
    assert_eq!(outcome["receipts"].as_array().unwrap().len(), 1);

    let events = server
        .ok(
            "GET",
            "/api/v1/events?plugin=tenon-examples/echo&limit=2",
            viewer,
            Body::None,
        )
        .await;
    did("listEvents");
    assert_eq!(events["events"].as_array().unwrap().len(), 2);
    let next = events["next"].as_str().unwrap();
    let older = server
        .ok(
            "GET",
            &format!("/api/v1/events?plugin=tenon-examples/echo&after={next}"),
            viewer,
            Body::None,
        )
        .await;
    assert!(!older["events"].as_array().unwrap().is_empty());

    server.engine.flush().await;
    let stats = server.ok("GET", "/api/v1/stats", viewer, Body::None).await;
    did("getStats");
    assert!(stats["receipts"].as_u64().unwrap() >= 1, "{stats}");
    let doctor = server.ok("GET", "/api/v1/doctor", viewer, Body::None).await;
    did("doctor");
    assert!(doctor.is_object());
    let metrics = server.ok("GET", "/metrics", viewer, Body::None).await;
    did("metrics");
    assert!(metrics.as_str().unwrap().contains("tenon_"), "{metrics}");

    // Upgrade (from a path) and roll back.
    let newer = versioned("echo", "0.2.0", server.dir.path());
    let upgraded = server
        .ok(
            "POST",
            "/api/v1/plugins/tenon-examples/echo/upgrade",
            admin,
            Body::Json(json!({"path": newer})),
        )
        .await;
    did("upgradePlugin");
    assert_eq!(
        (upgraded["from"].as_str(), upgraded["to"].as_str()),
        (Some("0.1.0"), Some("0.2.0"))
    );
    let (status, body) = server
        .call(
            "POST",
            "/api/v1/plugins/tenon-examples/notifier/upgrade",
            Some(admin),
            Body::Json(json!({"path": newer})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a package of another plugin: {body}"
    );
    let rolled = server
        .ok(
            "POST",
            "/api/v1/plugins/tenon-examples/echo/rollback",
            admin,
            Body::Json(json!({})),
        )
        .await;
    did("rollbackPlugin");
    assert_eq!(rolled["to"], json!("0.1.0"));

    // Uninstalling an active plugin is refused (a transition, exit 1).
    let (status, body) = server
        .call(
            "DELETE",
            "/api/v1/plugins/tenon-examples/echo",
            Some(admin),
            Body::None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_error(&body, "invalid_transition", 1);
    let disabled = server
        .ok(
            "POST",
            "/api/v1/plugins/tenon-examples/echo/disable",
            operator,
            Body::None,
        )
        .await;
    did("disablePlugin");
    assert_eq!(disabled["disabled"], json!(["tenon-examples/echo"]));
    let removed = server
        .ok(
            "DELETE",
            "/api/v1/plugins/tenon-examples/echo?purge=all",
            admin,
            Body::None,
        )
        .await;
    did("uninstallPlugin");
    assert!(removed["removed"]["versions"].as_u64().unwrap() >= 1);

    // The stream has its own test.
    did("streamEvents");
    let all: BTreeSet<String> = ROUTES.iter().map(|r| r.operation.to_owned()).collect();
    assert_eq!(exercised, all, "a route without a test");

    // Every change is in the event log with the token's name.
    let audit = server.audit().await;
    for (actor, action) in [
        ("alice", "uploadPackage"),
        ("alice", "revokePermissions"),
        ("alice", "rollbackPlugin"),
        ("alice", "installPlugin"),
        ("oscar", "configurePlugin"),
        ("alice", "grantPermissions"),
        ("oscar", "enablePlugin"),
        ("oscar", "dispatchHook"),
        ("alice", "upgradePlugin"),
        ("oscar", "disablePlugin"),
        ("alice", "uninstallPlugin"),
    ] {
        assert!(
            audit
                .iter()
                .any(|(a, b, s)| a == actor && b == action && s == "ok"),
            "{actor} {action} not recorded: {audit:?}"
        );
    }
    // Purging the plugin's events kept the record of who changed it.
    assert!(
        audit
            .iter()
            .any(|(a, b, s)| a == "alice" && b == "uninstallPlugin" && s == "error")
    );
    let (_, events) = server
        .call(
            "GET",
            "/api/v1/events?kind=api.request&limit=1000",
            Some(viewer),
            Body::None,
        )
        .await;
    let uninstall = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["detail"]["action"] == json!("uninstallPlugin") && e["status"] == json!("error")
        })
        .unwrap();
    assert_eq!(uninstall["detail"]["plugin"], json!("tenon-examples/echo"));
    assert!(
        uninstall["detail"]["error"]
            .as_str()
            .unwrap()
            .contains("tenon-examples/echo")
    );
    let grant = server
        .engine
        .events(
            &tenon_engine::EventQuery::default().with_kinds(&[tenon_engine::EventKind::Granted]),
        )
        .await
        .unwrap();
    assert!(
        grant
            .events
            .iter()
            .any(|e| e.detail.to_string().contains("token:alice")),
        "{:?}",
        grant.events
    );
}

/// Reads the stream until `want` returns true for an event's data, or fails
/// after ten seconds.
async fn read_until(
    response: &mut reqwest::Response,
    want: impl Fn(&str, &Value) -> bool,
) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    let mut buffer = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("the stream sends within ten seconds")
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut kind = String::new();
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(k) = line
                    .strip_prefix("event: ")
                    .or_else(|| line.strip_prefix("event:"))
                {
                    kind = k.trim().to_owned();
                }
                if let Some(d) = line
                    .strip_prefix("data: ")
                    .or_else(|| line.strip_prefix("data:"))
                {
                    data.push_str(d);
                }
            }
            if data.is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(&data).unwrap();
            let done = want(&kind, &value);
            seen.push((kind, value));
            if done {
                return seen;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_follows_changes_live_and_resumes() {
    let server = start().await;
    let mut stream = server
        .http
        .get(format!("{}/api/v1/events/stream", server.url))
        .bearer_auth(&server.viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    server
        .ok(
            "POST",
            "/api/v1/plugins",
            &server.admin,
            Body::Json(json!({"path": example("echo")})),
        )
        .await;
    let seen = read_until(&mut stream, |kind, _| kind == "api.request").await;
    let kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"installed"), "{kinds:?}");
    let installed_cursor = seen[0].1["cursor"].as_str().unwrap().to_owned();
    let (_, last) = seen.last().unwrap();
    assert_eq!(last["detail"]["actor"], json!("alice"));
    drop(stream);

    // Resuming after the install's event sends what followed it, no more.
    let mut resumed = server
        .http
        .get(format!(
            "{}/api/v1/events/stream?plugin=tenon-examples/echo",
            server.url
        ))
        .bearer_auth(&server.viewer)
        .header("last-event-id", &installed_cursor)
        .send()
        .await
        .unwrap();
    server
        .ok(
            "POST",
            "/api/v1/plugins/tenon-examples/echo/grant",
            &server.admin,
            Body::Json(json!({"all": true})),
        )
        .await;
    let seen = read_until(&mut resumed, |kind, _| kind == "granted").await;
    assert!(
        seen.iter()
            .all(|(_, e)| e["cursor"].as_str().unwrap() != installed_cursor)
    );
    assert!(
        seen.iter()
            .all(|(_, e)| e["plugin"] == json!("tenon-examples/echo")),
        "{seen:?}"
    );
}

/// Longer than any limit these tests set: reaching it means the server kept
/// open what it should have closed.
const HANG: Duration = Duration::from_secs(20);

/// Reads a stream until the server ends it; false if it is still open
/// after [`HANG`].
async fn ends(response: &mut reqwest::Response) -> bool {
    loop {
        match tokio::time::timeout(HANG, response.chunk()).await {
            Err(_) => return false,
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None) | Err(_)) => return true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_closed_and_connections_capped() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = start_with(
        HttpConfig {
            connections: tenon_http::ConnectionLimits {
                header_read_timeout: Duration::from_secs(2),
                max_connections_per_address: 3,
                ..tenon_http::ConnectionLimits::default()
            },
            ..config()
        },
        TrustPolicy::development(),
    )
    .await;
    let addr = server.url.strip_prefix("http://").unwrap().to_owned();
    // A slowloris connection: part of a header, then nothing.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /api/v1/plugins HTTP/1.1\r\nHost: t\r\nAuthorization: Bea")
        .await
        .unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(HANG, slow.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server kept a half-sent request open");
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"));
    // Three idle connections fill the address's places; a fourth is closed
    // before anything is read.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let mut last = held.pop().unwrap();
    last.write_all(b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    last.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let mut over = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(HANG, over.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "a connection over the cap was kept");
    assert!(got.is_empty(), "served over the cap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_capped_and_end_with_their_token_or_lifetime() {
    let server = start_with(
        HttpConfig {
            max_event_streams: 2,
            event_recheck: Duration::from_millis(100),
            ..config()
        },
        TrustPolicy::development(),
    )
    .await;
    let open = |token: String| {
        let request = server
            .http
            .get(format!("{}/api/v1/events/stream", server.url))
            .bearer_auth(token);
        async move { request.send().await.unwrap() }
    };
    let doomed = server
        .engine
        .create_token("dora", Role::Viewer)
        .await
        .unwrap()
        .secret;
    let mut first = open(doomed.clone()).await;
    let second = open(server.viewer.clone()).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);
    let third = open(server.admin.clone()).await;
    assert_eq!(third.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = third.json().await.unwrap();
    assert_error(&body, "too_many_streams", 2);
    // Revoking the token ends its stream, and frees its place.
    assert!(server.engine.revoke_token("dora").await.unwrap());
    assert!(ends(&mut first).await, "a revoked token's stream went on");
    let mut again = None;
    for _ in 0..100 {
        let response = open(server.admin.clone()).await;
        if response.status() == StatusCode::OK {
            again = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "the ended stream's place was not freed");
    drop(second);

    // A stream ends when its lifetime is over (the client resumes).
    let short = start_with(
        HttpConfig {
            event_stream_lifetime: Duration::from_millis(300),
            ..config()
        },
        TrustPolicy::development(),
    )
    .await;
    let mut stream = short
        .http
        .get(format!("{}/api/v1/events/stream", short.url))
        .bearer_auth(&short.viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(ends(&mut stream).await, "a stream outlived its lifetime");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_remote_to_the_trust_policy() {
    let policy = TrustPolicy {
        allow_unsigned: tenon_marketplace::AllowUnsigned::Local,
        allow_unsigned_directories: true,
        unsigned_level: tenon_engine::TrustLevel::Internal,
        ..TrustPolicy::default()
    };
    let server = start_with(config(), policy).await;
    let archive = pack(&example("echo"));
    let response = server
        .http
        .post(format!("{}/api/v1/uploads", server.url))
        .bearer_auth(&server.admin)
        .header("x-tenon-filename", "echo.tenon")
        .body(archive.clone())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_error(&body, "invalid_package", 1);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("unsigned packages from remote"),
        "{message}"
    );
    assert_eq!(server.engine.list().await.unwrap(), []);
    // The same archive on the server's disk is local, and installs.
    let path = server.dir.path().join("echo.tenon");
    std::fs::write(&path, archive).unwrap();
    server
        .ok(
            "POST",
            "/api/v1/plugins",
            &server.admin,
            Body::Json(json!({"path": path})),
        )
        .await;
}
