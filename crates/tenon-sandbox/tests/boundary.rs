//! The permission boundary on its own: HTTP (against a local server), KV,
//! config and secrets, events and logs, with the in-memory host.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use tenon_manifest::{Format, Manifest, ValidationContext};
use tenon_sandbox::boundary::{NameResolver, StaticResolver};
use tenon_sandbox::{
    Boundary, CallScope, Caller, HostError, HttpRequest, LoadRequest, LogLevel, MemoryHost,
    SandboxConfig,
};

const BASE: &str = r#"
manifest_version = 1
[plugin]
id = "acme/probe"
name = "Probe"
version = "1.0.0"
[runtime]
kind = "native"
entry = "probe"
"#;

fn manifest(extra: &str) -> Manifest {
    let source = format!("{BASE}\n{extra}");
    tenon_manifest::parse(&source, Format::Toml, &ValidationContext::default())
        .into_result()
        .unwrap_or_else(|d| panic!("invalid test manifest: {d:?}"))
}

struct Setup {
    host: Arc<MemoryHost>,
    boundary: Boundary,
}

fn setup(extra: &str, sandbox: SandboxConfig) -> Setup {
    let manifest = manifest(extra);
    let host = Arc::new(MemoryHost::new());
    let caller = Arc::new(Caller {
        plugin: manifest.plugin.id.clone(),
        version: manifest.plugin.version.clone(),
        tenant: "t1".to_owned(),
        permissions: Arc::new(manifest.permissions.clone()),
    });
    let request = LoadRequest {
        manifest: Arc::new(manifest),
        module: Arc::from(&[][..]),
        caller,
        host: host.clone(),
        observer: host.clone(),
        data_dir: None,
    };
    let boundary = Boundary::new(&request, Arc::new(sandbox));
    Setup { host, boundary }
}

fn scope() -> CallScope {
    CallScope::new(Duration::from_secs(5))
}

/// A local server: `/ok` answers `hello`, `/big` 64 KiB, `/slow` after 10 s,
/// `/to-evil` redirects to a forbidden host, `/to-ok` to `/ok`, `/echo`
/// answers the names of the headers it received, `/to-echo` redirects there
/// and `/to-other-echo` to the same on another origin (`evil.test`).
async fn server() -> SocketAddr {
    let app = Router::new()
        .route("/ok", get(|| async { "hello" }).post(|| async { "posted" }))
        .route("/big", get(|| async { "x".repeat(64 * 1024) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .route("/to-evil", get(|| async { redirect("http://evil.test/") }))
        .route("/to-ok", get(|| async { redirect("/ok") }))
        .route(
            "/echo",
            get(|headers: HeaderMap| async move {
                let mut names: Vec<&str> = headers.keys().map(|n| n.as_str()).collect();
                names.sort_unstable();
                names.join(",")
            }),
        )
        .route("/to-echo", get(|| async { redirect("/echo") }))
        .route(
            "/to-other-echo",
            get(|request: HeaderMap| async move {
                // Same port, another host name: another origin.
                let host = request[header::HOST].to_str().unwrap();
                let port = host.rsplit_once(':').unwrap().1;
                redirect(&format!("http://evil.test:{port}/echo"))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A `302 Found` to `location`.
fn redirect(location: &str) -> (StatusCode, HeaderMap) {
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, location.parse().unwrap());
    (StatusCode::FOUND, headers)
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn local_names() -> Arc<StaticResolver> {
    Arc::new(
        StaticResolver::new()
            .with("api.test", &[LOOPBACK])
            .with("evil.test", &[LOOPBACK]),
    )
}

fn private_ok() -> SandboxConfig {
    SandboxConfig::default()
        .with_private_networks(true)
        .with_resolver(local_names())
}

fn get_req(url: String) -> HttpRequest {
    HttpRequest {
        method: "GET".to_owned(),
        url,
        headers: vec![],
        body: vec![],
    }
}

fn network(port: u16, allow_private: bool, extra: &str) -> String {
    format!(
        "[permissions.network]\noutbound = [\"api.test:{port}\", \"127.0.0.1:{port}\"]\nallow_private = {allow_private}\n{extra}"
    )
}

fn assert_denied(result: Result<impl std::fmt::Debug, HostError>, host: &MemoryHost, reason: &str) {
    match result {
        Err(HostError::PermissionDenied(message)) => {
            assert!(message.contains(reason), "{message} should say {reason}")
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    let denials = host.denials();
    let last = denials.last().expect("the observer heard of it");
    assert_eq!(last.denial.permission, "network");
    assert!(last.denial.reason.contains(reason), "{:?}", last.denial);
}

#[tokio::test]
async fn http_reaches_a_private_host_only_when_host_and_manifest_allow_it() {
    let addr = server().await;
    let port = addr.port();
    let url = format!("http://api.test:{port}/ok");

    let s = setup(&network(port, true, ""), private_ok());
    let response = s
        .boundary
        .http_request(&scope(), get_req(url.clone()))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello");
    assert_eq!(s.boundary.stats().snapshot().http_requests, 1);

    // The host refuses private networks.
    let s = setup(
        &network(port, true, ""),
        SandboxConfig::default().with_resolver(local_names()),
    );
    let result = s
        .boundary
        .http_request(&scope(), get_req(url.clone()))
        .await;
    assert_denied(result, &s.host, "the host does not allow private networks");

    // The manifest does not ask for private networks.
    let s = setup(&network(port, false, ""), private_ok());
    let result = s.boundary.http_request(&scope(), get_req(url)).await;
    assert_denied(result, &s.host, "network.allow_private");

    // A literal loopback address is checked the same way.
    let s = setup(&network(port, false, ""), private_ok());
    let result = s
        .boundary
        .http_request(&scope(), get_req(format!("http://127.0.0.1:{port}/ok")))
        .await;
    assert_denied(result, &s.host, "loopback");
}

#[tokio::test]
async fn http_allowlist_methods_and_schemes() {
    let addr = server().await;
    let port = addr.port();
    let s = setup(&network(port, true, "methods = [\"GET\"]"), private_ok());
    let check = |url: &str, reason: &str| {
        let url = url.to_owned();
        let reason = reason.to_owned();
        let s = &s;
        async move {
            let result = s.boundary.http_request(&scope(), get_req(url)).await;
            assert_denied(result, &s.host, &reason);
        }
    };
    check(
        &format!("http://evil.test:{port}/ok"),
        "not in permissions.network.outbound",
    )
    .await;
    check(
        &format!("http://api.test:{}/ok", port + 1),
        "not in permissions.network.outbound",
    )
    .await;
    check("ftp://api.test/", "only http and https").await;
    check("file:///etc/passwd", "only http and https").await;
    let post = HttpRequest {
        method: "POST".to_owned(),
        ..get_req(format!("http://api.test:{port}/ok"))
    };
    let result = s.boundary.http_request(&scope(), post).await;
    assert_denied(result, &s.host, "method POST");
    // No network permission at all.
    let none = setup("", private_ok());
    let result = none
        .boundary
        .http_request(&scope(), get_req(format!("http://api.test:{port}/ok")))
        .await;
    assert_denied(result, &none.host, "no permissions.network");
    // Headers that would lie about the destination are refused.
    let mut spoof = get_req(format!("http://api.test:{port}/ok"));
    spoof
        .headers
        .push(("Host".to_owned(), "internal".to_owned()));
    assert!(matches!(
        s.boundary.http_request(&scope(), spoof).await,
        Err(HostError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn http_redirects_are_checked_hop_by_hop() {
    let addr = server().await;
    let port = addr.port();
    let s = setup(&network(port, true, ""), private_ok());
    let ok = s
        .boundary
        .http_request(&scope(), get_req(format!("http://api.test:{port}/to-ok")))
        .await
        .unwrap();
    assert_eq!(ok.body, b"hello");
    let result = s
        .boundary
        .http_request(&scope(), get_req(format!("http://api.test:{port}/to-evil")))
        .await;
    assert_denied(
        result,
        &s.host,
        "evil.test:80 is not in permissions.network.outbound",
    );
    assert!(
        s.host
            .denials()
            .last()
            .unwrap()
            .denial
            .attempted
            .contains("(redirected)")
    );
}

#[tokio::test]
async fn http_host_without_a_port_means_the_default_port_only() {
    let addr = server().await;
    let port = addr.port();
    // `api.test` alone allows port 80 for http, not the server's port.
    let s = setup(
        "[permissions.network]\noutbound = [\"api.test\"]\nallow_private = true",
        private_ok(),
    );
    let result = s
        .boundary
        .http_request(&scope(), get_req(format!("http://api.test:{port}/ok")))
        .await;
    assert_denied(
        result,
        &s.host,
        &format!("api.test:{port} is not in permissions.network.outbound"),
    );
}

#[tokio::test]
async fn http_cross_origin_redirects_carry_only_safe_headers() {
    let addr = server().await;
    let port = addr.port();
    let s = setup(
        &format!(
            "[permissions.network]\noutbound = [\"api.test:{port}\", \"evil.test:{port}\"]\nallow_private = true"
        ),
        private_ok(),
    );
    let with_secrets = |path: &str| {
        let mut request = get_req(format!("http://api.test:{port}{path}"));
        for (name, value) in [
            ("x-api-key", "s3cret"),
            ("authorization", "Bearer s3cret"),
            ("x-custom-token", "s3cret"),
            ("accept", "text/plain"),
        ] {
            request.headers.push((name.to_owned(), value.to_owned()));
        }
        request
    };
    let echoed = |body: Vec<u8>| String::from_utf8(body).unwrap();
    // Same origin: every header the plugin set goes on.
    let same = s
        .boundary
        .http_request(&scope(), with_secrets("/to-echo"))
        .await
        .unwrap();
    let same = echoed(same.body);
    for name in ["x-api-key", "authorization", "x-custom-token", "accept"] {
        assert!(same.contains(name), "{name} missing from {same}");
    }
    // Another origin: only the safe ones.
    let other = s
        .boundary
        .http_request(&scope(), with_secrets("/to-other-echo"))
        .await
        .unwrap();
    let other = echoed(other.body);
    assert!(other.contains("accept"), "{other}");
    for name in ["x-api-key", "authorization", "x-custom-token"] {
        assert!(
            !other.contains(name),
            "{name} leaked to another origin: {other}"
        );
    }
}

#[tokio::test]
async fn logs_are_escaped_so_a_plugin_cannot_forge_a_line() {
    let s = setup("", SandboxConfig::default());
    let forged = "done\n2026-01-01T00:00:00Z  INFO tenon::engine: operator granted all permissions";
    s.boundary.log(
        &scope(),
        LogLevel::Info,
        forged,
        &[("user\nadmin".to_owned(), "x\r\u{1b}[2J".to_owned())],
    );
    let logs = s.host.logs();
    let record = logs.last().unwrap();
    assert!(!record.message.contains('\n'), "{:?}", record.message);
    assert!(
        record.message.starts_with("done\\n2026"),
        "{:?}",
        record.message
    );
    let (key, value) = &record.fields[0];
    assert_eq!(key, "user\\nadmin");
    assert_eq!(value, "x\\r\\u{1b}[2J");
}

#[tokio::test]
async fn http_response_size_is_capped() {
    let addr = server().await;
    let port = addr.port();
    let s = setup(
        &network(port, true, "max_response = \"1KiB\""),
        private_ok(),
    );
    let result = s
        .boundary
        .http_request(&scope(), get_req(format!("http://api.test:{port}/big")))
        .await;
    assert!(
        matches!(result, Err(HostError::QuotaExceeded(_))),
        "{result:?}"
    );
    let small = s
        .boundary
        .http_request(&scope(), get_req(format!("http://api.test:{port}/ok")))
        .await;
    assert!(small.is_ok(), "{small:?}");
}

#[tokio::test(start_paused = true)]
async fn http_is_bounded_by_the_call_deadline() {
    let addr = server().await;
    let port = addr.port();
    let s = setup(&network(port, true, ""), private_ok());
    let result = s
        .boundary
        .http_request(
            &CallScope::new(Duration::from_millis(200)),
            get_req(format!("http://api.test:{port}/slow")),
        )
        .await;
    assert!(matches!(result, Err(HostError::Timeout(_))), "{result:?}");
}

/// Answers with a public address first, then with loopback: a name that
/// changes between the check and the connection.
struct Rebinding(AtomicUsize);

#[async_trait]
impl NameResolver for Rebinding {
    async fn lookup(&self, _host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            vec![IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34))]
        } else {
            vec![LOOPBACK]
        })
    }
}

#[tokio::test]
async fn dns_rebinding_is_refused_when_connecting() {
    let addr = server().await;
    let port = addr.port();
    let sandbox = SandboxConfig::default().with_resolver(Arc::new(Rebinding(AtomicUsize::new(0))));
    let s = setup(&network(port, false, ""), sandbox);
    let result = s
        .boundary
        .http_request(&scope(), get_req(format!("http://api.test:{port}/ok")))
        .await;
    assert_denied(result, &s.host, "when connecting");
}

#[tokio::test]
async fn kv_needs_permission_and_respects_bounds_and_quota() {
    let none = setup("", SandboxConfig::default());
    let result = none.boundary.kv_get(&scope(), "k").await;
    assert!(
        matches!(result, Err(HostError::PermissionDenied(_))),
        "{result:?}"
    );
    assert_eq!(none.host.denials()[0].denial.permission, "kv");

    let mut sandbox = SandboxConfig::default();
    sandbox.max_kv_value = 100;
    let s = setup("[permissions]\nkv = { quota = \"64B\" }", sandbox);
    let cx = scope();
    s.boundary.kv_set(&cx, "a", b"0123456789").await.unwrap();
    assert_eq!(
        s.boundary.kv_get(&cx, "a").await.unwrap().unwrap(),
        b"0123456789"
    );
    assert_eq!(s.boundary.kv_list(&cx, "").await.unwrap(), vec!["a"]);
    let over_quota = s.boundary.kv_set(&cx, "b", &[0; 60]).await;
    assert!(
        matches!(over_quota, Err(HostError::QuotaExceeded(_))),
        "{over_quota:?}"
    );
    let too_big = s.boundary.kv_set(&cx, "c", &[0; 101]).await;
    assert!(
        matches!(too_big, Err(HostError::QuotaExceeded(_))),
        "{too_big:?}"
    );
    let empty_key = s.boundary.kv_set(&cx, "", b"x").await;
    assert!(
        matches!(empty_key, Err(HostError::InvalidInput(_))),
        "{empty_key:?}"
    );
    s.boundary.kv_delete(&cx, "a").await.unwrap();
    assert_eq!(s.boundary.kv_get(&cx, "a").await.unwrap(), None);
    // Overwriting counts the new size only.
    s.boundary.kv_set(&cx, "b", &[0; 60]).await.unwrap();
}

#[tokio::test]
async fn config_gives_declared_keys_and_granted_secrets_only() {
    let extra = r#"
[permissions]
secrets = ["api_token"]

[[config.fields]]
key = "channel"
type = "string"

[[config.fields]]
key = "api_token"
type = "string"
secret = true

[[config.fields]]
key = "other_secret"
type = "string"
secret = true
"#;
    let s = setup(extra, SandboxConfig::default());
    let id = tenon_manifest::PluginId::new("acme/probe").unwrap();
    s.host.set_config(&id, "channel", serde_json::json!("#ops"));
    s.host
        .set_config(&id, "api_token", serde_json::json!("t0k3n"));
    s.host
        .set_config(&id, "other_secret", serde_json::json!("nope"));
    let cx = scope();
    let check = |key: &'static str| {
        let s = &s;
        let cx = &cx;
        async move { s.boundary.config_get(cx, key).await }
    };
    assert_eq!(
        check("channel").await.unwrap(),
        Some(serde_json::json!("#ops"))
    );
    assert_eq!(
        check("api_token").await.unwrap(),
        Some(serde_json::json!("t0k3n"))
    );
    assert!(matches!(
        check("other_secret").await,
        Err(HostError::PermissionDenied(_))
    ));
    assert!(matches!(
        check("undeclared").await,
        Err(HostError::PermissionDenied(_))
    ));
    let permissions: Vec<String> = s
        .host
        .denials()
        .iter()
        .map(|d| d.denial.permission.clone())
        .collect();
    assert_eq!(permissions, ["secrets", "config"]);
}

#[tokio::test]
async fn events_only_on_declared_topics() {
    let s = setup(
        "[permissions]\nevents = { publish = [\"notify.*\", \"audit.login\", \"deep.**\"] }",
        SandboxConfig::default(),
    );
    let cx = scope();
    s.boundary
        .emit_event_json(&cx, "notify.sent", r#"{"ok":true}"#)
        .await
        .unwrap();
    s.boundary
        .emit_event(&cx, "audit.login", &serde_json::json!({"user": 1}))
        .await
        .unwrap();
    s.boundary
        .emit_event_json(&cx, "deep.slack.sent", "{}")
        .await
        .unwrap();
    // `*` is one segment, as on the bus: `notify.*` does not cover
    // `notify.slack.sent`.
    for topic in [
        "notify",
        "notify.slack.sent",
        "deep",
        "audit.logout",
        "plugin.installed",
    ] {
        let result = s.boundary.emit_event_json(&cx, topic, "{}").await;
        assert!(
            matches!(result, Err(HostError::PermissionDenied(_))),
            "{topic}: {result:?}"
        );
    }
    let bad = s
        .boundary
        .emit_event_json(&cx, "notify.x", "not json")
        .await;
    assert!(matches!(bad, Err(HostError::InvalidInput(_))), "{bad:?}");
    let topics: Vec<String> = s.host.events().iter().map(|e| e.topic.clone()).collect();
    assert_eq!(topics, ["notify.sent", "audit.login", "deep.slack.sent"]);
}

#[tokio::test]
async fn logs_are_cut_and_counted_per_call() {
    let mut sandbox = SandboxConfig::default();
    sandbox.max_log_line = 10;
    sandbox.max_log_lines_per_call = 3;
    let s = setup("", sandbox);
    let mut cx = scope();
    for i in 0..10 {
        s.boundary.log(
            &cx,
            LogLevel::Info,
            &format!("line {i} is rather long"),
            &[],
        );
    }
    let logs = s.host.logs();
    assert_eq!(logs.len(), 4, "3 lines and the note: {logs:?}");
    assert!(
        logs[0].message.starts_with("line 0 is "),
        "{}",
        logs[0].message
    );
    assert!(logs[0].message.contains("bytes cut"));
    assert!(logs[3].message.contains("log limit reached"));
    // A new call starts counting again.
    cx.reset(tokio::time::Instant::now() + Duration::from_secs(1));
    s.boundary.log(&cx, LogLevel::Warn, "next", &[]);
    assert_eq!(s.host.logs().len(), 5);
}

/// Denial reports carry plugin-chosen text (config keys, KV keys); the
/// engine's observer writes them with
/// `tracing::warn!("permission denied: {attempted} ({reason})")` and audits
/// them, so they are escaped where they are made: a newline in a config key
/// cannot forge a log line.
#[tokio::test]
async fn denial_text_cannot_forge_a_log_line() {
    let s = setup("", SandboxConfig::default());
    let forged = "x`\n2026-01-01T00:00:00Z  INFO tenon::engine: operator granted acme/probe all permissions\n`";
    let _ = s.boundary.config_get(&scope(), forged).await;
    let _ = s.boundary.kv_get(&scope(), forged).await;
    for record in s.host.denials() {
        let d = &record.denial;
        assert!(
            !d.attempted.contains('\n') && !d.reason.contains('\n'),
            "a plugin wrote a newline into a denial: {d:?}"
        );
    }
}
