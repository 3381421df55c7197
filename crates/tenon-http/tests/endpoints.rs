//! Plugins' endpoints on a real server on loopback, hostile requests first:
//! an oversized body is refused before the plugin sees it, a hanging plugin
//! answers 504 while other requests are served, credentials never reach the
//! plugin; then routes following enable and disable, `auth`, `rate_limit`
//! with `Retry-After`, a plugin's malformed answers, and a component plugin
//! declaring endpoints it cannot serve.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tenon_engine::{
    EndpointRequest, EndpointResponse, HostPlugin, NativeContext, NativePlugin, NativeRuntime,
    PluginEngine, PluginError, PluginId, Role, SecretKey, TrustPolicy,
};
use tenon_http::HttpConfig;

/// A native plugin serving the endpoints of [`HELLO`]; `calls` counts the
/// requests that reached it (one counter per server), `hanging` is told
/// when a call to `hang` has started.
struct Hello {
    calls: Arc<AtomicUsize>,
    hanging: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl NativePlugin for Hello {
    async fn activate(&self, _cx: &NativeContext, _config: &Value) -> Result<(), PluginError> {
        Ok(())
    }

    async fn handle_request(
        &self,
        _cx: &NativeContext,
        request: &EndpointRequest,
    ) -> Result<EndpointResponse, PluginError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let text = |status: u16, headers: Vec<(String, String)>, body: Vec<u8>| {
            Ok(EndpointResponse {
                status,
                headers,
                body,
            })
        };
        match request.function.as_str() {
            "echo" => {
                let seen = json!({
                    "method": request.method,
                    "path": request.path,
                    "query": request.query,
                    "headers": request.headers,
                    "body": String::from_utf8_lossy(&request.body),
                });
                text(
                    200,
                    vec![
                        ("content-type".into(), "application/json".into()),
                        ("content-security-policy".into(), "default-src *".into()),
                    ],
                    seen.to_string().into_bytes(),
                )
            }
            "hang" => {
                self.hanging.notify_one();
                tokio::time::sleep(Duration::from_secs(3600)).await;
                text(200, Vec::new(), Vec::new())
            }
            "bad_header" => text(200, vec![("bad header".into(), "x".into())], Vec::new()),
            // Answers the headers the request's body lists.
            "answer" => {
                let headers: Vec<(String, String)> =
                    serde_json::from_slice(&request.body).unwrap_or_default();
                text(200, headers, b"alert(document.domain)".to_vec())
            }
            "many_headers" => {
                let headers = (0..24_000)
                    .map(|n| (format!("x-h{n}"), "v".to_owned()))
                    .collect();
                text(200, headers, Vec::new())
            }
            "fail" => Err(PluginError::new("broken", "/srv/plugin/state is gone")),
            other => Err(PluginError::new("unknown-function", other)),
        }
    }
}

const HELLO: &str = r#"
manifest_version = 1
[plugin]
id = "acme/hello"
name = "Hello"
version = "1.0.0"
description = "Answers HTTP endpoints."
[engine]
tenon = "^1.0"
[runtime]
kind = "native"
entry = "hello"
[limits]
timeout = "10s"
max_instances = 8
[[endpoints]]
path = "/echo"
method = "GET"
function = "echo"
[[endpoints]]
path = "/echo/{*rest}"
method = "POST"
function = "echo"
[[endpoints]]
path = "/private"
method = "GET"
function = "echo"
auth = true
[[endpoints]]
path = "/limited"
method = "GET"
function = "echo"
rate_limit = { requests = 2, window = "1h" }
[[endpoints]]
path = "/hang"
method = "GET"
function = "hang"
[[endpoints]]
path = "/bad-header"
method = "GET"
function = "bad_header"
[[endpoints]]
path = "/fail"
method = "GET"
function = "fail"
[[endpoints]]
path = "/answer"
method = "POST"
function = "answer"
[[endpoints]]
path = "/many-headers"
method = "GET"
function = "many_headers"
"#;

const LIMIT: usize = 1024;

struct Server {
    url: String,
    http: reqwest::Client,
    engine: PluginEngine,
    viewer: String,
    calls: Arc<AtomicUsize>,
    hanging: Arc<tokio::sync::Notify>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}/plugins/acme/hello{path}", self.url)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }
}

fn hello() -> PluginId {
    PluginId::new("acme/hello").unwrap()
}

async fn start() -> Server {
    start_with(HttpConfig {
        max_endpoint_body_bytes: LIMIT,
        ..HttpConfig::default()
    })
    .await
}

async fn start_with(config: HttpConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let hanging = Arc::new(tokio::sync::Notify::new());
    let native = Arc::new(NativeRuntime::new(Default::default()));
    {
        let (calls, hanging) = (calls.clone(), hanging.clone());
        native.register("hello", move || Hello {
            calls: calls.clone(),
            hanging: hanging.clone(),
        });
    }
    let engine = PluginEngine::builder()
        .registry("memory:")
        .data_dir(dir.path())
        .secret_key(SecretKey::parse(&"ab".repeat(32)).unwrap())
        .native_runtime(native)
        .trust_policy(TrustPolicy::development())
        .build()
        .await
        .unwrap();
    engine.install(HostPlugin::native(HELLO)).await.unwrap();
    engine.enable(&hello()).await.unwrap();
    let viewer = engine
        .create_token("vera", Role::Viewer)
        .await
        .unwrap()
        .secret;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tenon_http::serve(
        engine.clone(),
        config,
        listener,
        std::future::pending(),
    ));
    Server {
        url: format!("http://{addr}"),
        http: reqwest::Client::new(),
        engine,
        viewer,
        calls,
        hanging,
        _dir: dir,
    }
}

/// Posts `size` bytes in one chunk without a length, returning the status
/// line.
async fn chunked_post(server: &Server, path: &str, size: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = server.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST /plugins/acme/hello{path} HTTP/1.1\r\nhost: {host}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n{size:x}\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![b'z'; size]).await.unwrap();
    stream.write_all(b"\r\n0\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or("<none>")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_refused_before_the_plugin_sees_it() {
    let server = start().await;
    let before = server.calls.load(Ordering::SeqCst);
    let response = server
        .http
        .post(server.url("/echo/big"))
        .body(vec![b'x'; LIMIT + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(response).await, "body_too_large");
    assert_eq!(server.calls.load(Ordering::SeqCst), before, "never called");

    // Chunked, with no length announced: cut at the limit all the same.
    let status = chunked_post(&server, "/echo/chunked", LIMIT + 1).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert_eq!(server.calls.load(Ordering::SeqCst), before, "never called");

    // The limit itself is accepted, and reaches the plugin whole.
    let response = server
        .http
        .post(server.url("/echo/exact"))
        .body(vec![b'y'; LIMIT])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["body"].as_str().unwrap().len(), LIMIT);
    assert_eq!(seen["path"], "/echo/exact");

    // Headers over the server's limit: 431, before any plugin.
    let response = server
        .http
        .get(server.url("/echo"))
        .header("x-padding", "p".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_plugin_answers_504_while_other_requests_are_served() {
    // The plugin's own timeout (10 s) ends the call, not the server's.
    assert!(HttpConfig::default().request_timeout > Duration::from_secs(10));
    let server = start().await;
    let hanging = server.hanging.notified();
    let slow = tokio::spawn({
        let (http, url) = (server.http.clone(), server.url("/hang"));
        async move { http.get(url).send().await.unwrap() }
    });
    // Wait until the plugin is really inside the hanging call.
    tokio::time::timeout(Duration::from_secs(120), hanging)
        .await
        .expect("the hanging call started");
    let response = server.get("/echo").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !slow.is_finished(),
        "the echo was served while the plugin hung (its timeout is 10 s)"
    );
    let slow = slow.await.unwrap();
    assert_eq!(slow.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(error_code(slow).await, "plugin_timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_reach_the_plugin() {
    let server = start().await;
    let response = server
        .http
        .get(server.url("/echo?q=1"))
        .header("authorization", format!("Bearer {}", server.viewer))
        .header("proxy-authorization", "Basic cHJveHktc2VjcmV0")
        .header("cookie", "session=cookie-secret")
        .header("x-request-id", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    for secret in [server.viewer.as_str(), "cHJveHktc2VjcmV0", "cookie-secret"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let seen: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(seen["query"], "q=1");
    assert_eq!(seen["method"], "GET");
    let names: Vec<&str> = seen["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[0].as_str().unwrap())
        .collect();
    assert!(names.contains(&"x-request-id"), "{names:?}");
    for name in ["authorization", "proxy-authorization", "cookie", "host"] {
        assert!(!names.contains(&name), "{name} forwarded: {names:?}");
    }
    // The plugin's page never runs as the admin page's origin, whatever
    // policy it asked for.
    assert_eq!(headers["content-security-policy"], "sandbox");
    assert_eq!(headers["x-content-type-options"], "nosniff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_follow_enable_and_disable_without_a_restart() {
    let server = start().await;
    assert_eq!(server.get("/echo").await.status(), StatusCode::OK);
    server
        .engine
        .disable(&hello(), Default::default())
        .await
        .unwrap();
    let response = server.get("/echo").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(response).await, "no_route");
    server.engine.enable(&hello()).await.unwrap();
    assert_eq!(server.get("/echo").await.status(), StatusCode::OK);

    // Unknown plugins, paths and methods.
    let response = server
        .http
        .get(format!("{}/plugins/acme/absent/echo", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(server.get("/nowhere").await.status(), StatusCode::NOT_FOUND);
    let response = server
        .http
        .delete(server.url("/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_rate_limits_are_enforced_by_the_layer() {
    let server = start().await;
    let before = server.calls.load(Ordering::SeqCst);
    let response = server.get("/private").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = server
        .http
        .get(server.url("/private"))
        .bearer_auth(format!("tenon_{}", "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.calls.load(Ordering::SeqCst), before, "never called");
    let response = server
        .http
        .get(server.url("/private"))
        .bearer_auth(&server.viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    for _ in 0..2 {
        assert_eq!(server.get("/limited").await.status(), StatusCode::OK);
    }
    let before = server.calls.load(Ordering::SeqCst);
    let response = server.get("/limited").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(error_code(response).await, "rate_limited");
    assert_eq!(server.calls.load(Ordering::SeqCst), before, "never called");
    // Another endpoint of the plugin is not limited by it.
    assert_eq!(server.get("/echo").await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_failures_answer_502_without_its_detail() {
    let server = start().await;
    let response = server.get("/bad-header").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(error_code(response).await, "plugin_failed");
    let response = server.get("/fail").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let text = response.text().await.unwrap();
    assert!(!text.contains("/srv/plugin"), "{text}");
    assert!(text.contains("acme/hello"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_plugin_declaring_endpoints_says_it_cannot_serve_them() {
    let server = start().await;
    let built = tenon_build::ensure_examples_built()
        .expect("echo")
        .dir
        .clone();
    let copy = server._dir.path().join("echo-with-endpoint");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&built).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
    }
    let manifest = copy.join("tenon.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str("\n[[endpoints]]\npath = \"/echo\"\nmethod = \"GET\"\nfunction = \"echo\"\n");
    std::fs::write(&manifest, text).unwrap();
    let report = server.engine.install(copy.as_path()).await.unwrap();
    let id = report.id.clone();
    server.engine.enable(&id).await.unwrap();
    let response = server
        .http
        .get(format!("{}/plugins/{id}/echo", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_IMPLEMENTED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "endpoint_unserved", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("handle_request"),
        "{body}"
    );
}

/// Hostile: a client that sends its headers and then trickles (or stops)
/// its body holds the connection only until the request timeout, and the
/// plugin never sees the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_at_the_request_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start_with(HttpConfig {
        max_endpoint_body_bytes: LIMIT,
        request_timeout: Duration::from_secs(2),
        ..HttpConfig::default()
    })
    .await;
    let host = server.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST /plugins/acme/hello/echo/x HTTP/1.1\r\nhost: {host}\r\n\
         content-length: 100\r\nconnection: close\r\n\r\n0123456789"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the server waited for the body past its request timeout"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
    assert_eq!(
        server.calls.load(Ordering::SeqCst),
        0,
        "the plugin was called"
    );
}

/// Hostile: a path with an empty segment reaches no route (`//echo` is not
/// `/echo`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_with_an_empty_segment_reaches_no_route() {
    let server = start().await;
    for path in ["//echo", "/echo//", "//private"] {
        let response = server.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    assert_eq!(
        server.calls.load(Ordering::SeqCst),
        0,
        "the plugin was called"
    );
}

/// Hostile: anonymous requests that make a public endpoint's handler fail,
/// many more than the crash guard's threshold, never disable the plugin:
/// each is answered 502 and counted in its statistics, not by the guard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_requests_from_strangers_never_disable_the_plugin() {
    let server = start().await;
    let threshold = server.engine.telemetry().config().guard.threshold;
    let sent = threshold * 3;
    for _ in 0..sent {
        assert_eq!(server.get("/fail").await.status(), StatusCode::BAD_GATEWAY);
    }
    let guard = server
        .engine
        .telemetry()
        .guard_status(server.engine.tenant().as_str(), "acme/hello");
    assert_eq!(guard.failures_in_window, 0, "{guard:?}");
    assert!(!guard.tripped, "{guard:?}");
    let stats = server.engine.stats(&hello()).expect("stats");
    assert_eq!(stats.by_hook["endpoint:fail"].count, u64::from(sent));
    assert_eq!(server.get("/echo").await.status(), StatusCode::OK);
    assert!(server.engine.endpoint_routes(&hello()).is_some());
    let record = server.engine.record(&hello()).await.unwrap();
    assert!(record.enabled, "{record:?}");
}

/// The host's ceiling on one plugin's endpoints counts every caller and
/// every endpoint together, and says when to come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_over_its_total_rate_answers_429_with_retry_after() {
    let server = start_with(HttpConfig {
        max_endpoint_body_bytes: LIMIT,
        plugin_rate_limit: Some(tenon_http::PluginRate {
            requests: 3,
            window: Duration::from_secs(3600),
        }),
        ..HttpConfig::default()
    })
    .await;
    assert_eq!(server.get("/echo").await.status(), StatusCode::OK);
    let response = server
        .http
        .get(server.url("/private"))
        .bearer_auth(&server.viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.get("/limited").await.status(), StatusCode::OK);
    let before = server.calls.load(Ordering::SeqCst);
    for path in ["/echo", "/limited"] {
        let response = server.get(path).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        let retry: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=3600).contains(&retry), "{retry}");
    }
    assert_eq!(server.calls.load(Ordering::SeqCst), before, "never called");
}

/// Hostile: a plugin's answer headers never act on the server's origin
/// (cookies, site data, HSTS, redirects elsewhere, CORS, reporting), and
/// a script it serves cannot run as one of the admin page's
/// (`<script src=/plugins/…>` under `script-src 'self'`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_answer_headers_cannot_act_on_the_servers_origin() {
    let server = start().await;
    let answer = |headers: Value| {
        let (http, url) = (server.http.clone(), server.url("/answer"));
        async move {
            http.post(url)
                .body(headers.to_string())
                .send()
                .await
                .unwrap()
        }
    };
    let response = answer(json!([
        ["set-cookie", "tenon_session=attacker; Path=/"],
        ["clear-site-data", "\"*\""],
        [
            "strict-transport-security",
            "max-age=31536000; includeSubDomains"
        ],
        ["alt-svc", "h2=\"evil.example:443\""],
        ["access-control-allow-origin", "*"],
        ["link", "</api/v1/plugins>; rel=preload"],
        ["refresh", "0; url=https://evil.example/"],
        ["nel", "{\"report_to\":\"x\"}"],
        ["www-authenticate", "Basic realm=\"admin\""],
        ["x-tenon-role", "admin"],
        ["location", "https://evil.example/"],
        ["content-type", "text/javascript; charset=utf-8"],
        ["cache-control", "no-store"],
        ["x-total-count", "3"],
    ]))
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    for dropped in [
        "set-cookie",
        "clear-site-data",
        "strict-transport-security",
        "alt-svc",
        "access-control-allow-origin",
        "link",
        "refresh",
        "nel",
        "www-authenticate",
        "x-tenon-role",
        "location",
    ] {
        assert!(!headers.contains_key(dropped), "{dropped}: {headers:?}");
    }
    assert_eq!(headers["content-type"], "text/plain", "{headers:?}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-total-count"], "3");
    assert_eq!(headers["content-security-policy"], "sandbox");
    assert_eq!(headers["x-content-type-options"], "nosniff");

    // A redirect inside the plugin's own prefix passes; one climbing out
    // of it does not.
    let response = answer(json!([["location", "/plugins/acme/hello/done"]])).await;
    assert_eq!(response.headers()["location"], "/plugins/acme/hello/done");
    let response = answer(json!([["location", "/plugins/acme/hello/../../../api/v1"]])).await;
    assert!(!response.headers().contains_key("location"));
}

/// Hostile: a plugin answering tens of thousands of headers gets a 502
/// saying so, and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_answer_headers_is_the_plugins_failure() {
    let server = start().await;
    let response = server.get("/many-headers").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(error_code(response).await, "plugin_failed");
    assert_eq!(server.get("/echo").await.status(), StatusCode::OK);
}

/// Hostile: routes read before an upgrade are never served by the new
/// version (whose endpoints, and their `auth`, may differ): the call is
/// refused as not running, and the new version's routes are the ones read
/// next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_and_the_call_come_from_the_same_version() {
    let server = start().await;
    let before = server.engine.endpoint_routes(&hello()).expect("running");
    let public = before
        .endpoints()
        .iter()
        .find(|e| e.path == "/echo")
        .expect("declared");
    assert!(!public.auth);
    // Version 2 puts `/echo` behind a token.
    let upgraded = HELLO
        .replace("version = \"1.0.0\"", "version = \"2.0.0\"")
        .replace(
            "path = \"/echo\"\nmethod = \"GET\"\nfunction = \"echo\"\n",
            "path = \"/echo\"\nmethod = \"GET\"\nfunction = \"echo\"\nauth = true\n",
        );
    assert_ne!(upgraded, HELLO);
    server
        .engine
        .upgrade(HostPlugin::native(&upgraded))
        .await
        .unwrap();
    let call = EndpointRequest {
        function: "echo".into(),
        method: "GET".into(),
        path: "/echo".into(),
        query: String::new(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let error = server
        .engine
        .handle_request(&before, &call)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            tenon_engine::EngineError::Plugin {
                source: tenon_engine::SandboxError::NotRunning { .. },
                ..
            }
        ),
        "{error}"
    );
    let after = server.engine.endpoint_routes(&hello()).expect("running");
    let guarded = after
        .endpoints()
        .iter()
        .find(|e| e.path == "/echo")
        .expect("declared");
    assert!(guarded.auth, "the new version's routes");
    assert_eq!(server.get("/echo").await.status(), StatusCode::UNAUTHORIZED);
    server.engine.handle_request(&after, &call).await.unwrap();
}
