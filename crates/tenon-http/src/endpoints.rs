//! Plugins' own endpoints: each running plugin's `[[endpoints]]` served under
//! `/plugins/{publisher}/{name}/…`.
//!
//! Routes are looked up in the engine's running state on every request
//! ([`tenon_engine::PluginEngine::endpoint_routes`]), so they appear when a plugin is
//! enabled and disappear when it is disabled, without rebuilding the router;
//! the version whose routes matched is the one called (a request arriving
//! while the plugin is swapped for another version answers 503).
//! Each plugin's routes live under its own id, so no two plugins can claim
//! the same route. The layer checks, in order: the route, the endpoint's
//! `auth` (any valid API token), its `rate_limit` (per caller: the token's
//! name, or the client's address, an IPv6 one by its /64), the host's
//! ceiling on the plugin's total ([`PluginRate`]), the body's size; then
//! hands the request, with only allowlisted headers, to the plugin and
//! checks its answer before it is sent (status, header count, size, names
//! and values), passing only allowlisted headers. Every answer carries
//! `Content-Security-Policy: sandbox` and `X-Content-Type-Options: nosniff`,
//! and a script's content type is sent as `text/plain`, so a plugin's page
//! or script never runs as the admin page's origin. The engine does not let
//! an endpoint's failures count toward disabling the plugin.

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use tenon_engine::{
    EndpointDecl, EndpointRequest, EndpointResponse, EngineError, PluginId, SandboxError,
};
use tenon_serve::RateWindows;

use crate::error::{ApiResult, HttpError};
use crate::{ApiState, Shared};

/// Request headers never handed to a plugin: the caller's credentials.
/// (Only the headers of [`FORWARDED`] and custom `x-` headers are handed
/// over at all; these are named for the documentation and the tests.)
pub const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// The standard request headers a plugin is handed (besides custom `x-`
/// headers): what a request's content and its caller's preferences are,
/// never its credentials or its connection.
const FORWARDED: [&str; 16] = [
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "content-encoding",
    "content-language",
    "content-length",
    "content-type",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-unmodified-since",
    "origin",
    "range",
    "referer",
    "user-agent",
];

/// The standard answer headers a plugin may send (besides custom `x-`
/// headers, and `Location` inside its own prefix): about the answer's
/// content and caching only. Nothing that acts on the server's origin
/// (`Set-Cookie`, `Clear-Site-Data`, `Strict-Transport-Security`,
/// `Alt-Svc`, reporting, client hints, CORS, `Link`, `Refresh`, …) passes.
const ANSWERED: [&str; 12] = [
    "accept-ranges",
    "allow",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-range",
    "content-type",
    "etag",
    "expires",
    "last-modified",
    "retry-after",
];

/// Custom `x-` headers that are not custom: the server's own, and those a
/// browser acts on.
const RESERVED_X: [&str; 5] = [
    "x-tenon-",
    "x-forwarded-",
    "x-frame-options",
    "x-xss-protection",
    "x-permitted-cross-domain-policies",
];

/// The most headers a plugin may answer with, and their most bytes (names
/// and values); over either the answer is the plugin's failure (502).
const MAX_ANSWER_HEADERS: usize = 64;
/// See [`MAX_ANSWER_HEADERS`].
const MAX_ANSWER_HEADER_BYTES: usize = 16 * 1024;

/// Headers the layer sets on every answer; a plugin's own are replaced.
const FORCED: [(&str, &str); 2] = [
    ("content-security-policy", "sandbox"),
    ("x-content-type-options", "nosniff"),
];

/// JavaScript's media types (WHATWG MIME Sniffing): an answer of one of
/// them could run as a script of the server's origin (`<script src>` from a
/// page of the admin origin satisfies `script-src 'self'`), so it is sent
/// as `text/plain` instead.
const SCRIPT_TYPES: [&str; 16] = [
    "application/ecmascript",
    "application/javascript",
    "application/x-ecmascript",
    "application/x-javascript",
    "text/ecmascript",
    "text/javascript",
    "text/javascript1.0",
    "text/javascript1.1",
    "text/javascript1.2",
    "text/javascript1.3",
    "text/javascript1.4",
    "text/javascript1.5",
    "text/jscript",
    "text/livescript",
    "text/x-ecmascript",
    "text/x-javascript",
];

/// Whether a custom (`x-`) header, not a reserved one.
fn custom(name: &str) -> bool {
    name.starts_with("x-") && !RESERVED_X.iter().any(|reserved| name.starts_with(reserved))
}

/// The most windows the rate limiter remembers, over all its shards; past
/// it, a new caller evicts the one seen longest ago (memory stays bounded,
/// and a flood of new callers never locks the others out).
const MAX_TRACKED_WINDOWS: usize = 100_000;

/// How many independently locked parts the rate limiter's table has.
const SHARDS: usize = 16;

/// A caller as the rate limiter counts it: a token by its name, a client by
/// its address (an IPv6 client by its /64 network, which one subscriber
/// rotates through: [`tenon_serve::client_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Caller {
    /// An authenticated caller.
    Token(String),
    /// An anonymous caller.
    Address(IpAddr),
    /// An anonymous caller whose address is unknown (a host that mounted
    /// the layer without `ConnectInfo`): all such callers are one.
    Unknown,
}

/// Whose calls a window counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum WindowKey {
    /// One caller's calls to one endpoint (its index) of a plugin.
    Caller(PluginId, usize, Caller),
    /// Every call to a plugin's endpoints.
    Plugin(PluginId),
}

/// The most requests every caller together may send a plugin's endpoints
/// in a window (429 with `Retry-After` past it), whatever each endpoint's
/// own `rate_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginRate {
    /// Requests per window (at least 1).
    pub requests: u32,
    /// The window.
    pub window: Duration,
}

/// Fixed windows counted per [`WindowKey`], numbered from the limiter's
/// start by each key's own window length, in a bounded table split into
/// shards (a request locks one).
pub(crate) struct RateLimiter {
    origin: Instant,
    hasher: RandomState,
    shards: [Mutex<RateWindows<WindowKey>>; SHARDS],
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            hasher: RandomState::new(),
            shards: std::array::from_fn(|_| {
                Mutex::new(RateWindows::new(MAX_TRACKED_WINDOWS / SHARDS))
            }),
        }
    }
}

impl RateLimiter {
    /// Counts one call; `Err(seconds)` until the key's window ends when it
    /// is over `requests` in `window`.
    fn admit(&self, key: &WindowKey, requests: u32, window: Duration) -> Result<(), u64> {
        let length = window.as_millis().max(1);
        let elapsed = self.origin.elapsed().as_millis();
        let number = i64::try_from(elapsed / length).unwrap_or(i64::MAX);
        let shard = self.hasher.hash_one(key) as usize % SHARDS;
        if self.shards[shard].lock().admit(key, number, requests) {
            return Ok(());
        }
        let left = length - elapsed % length;
        Err(u64::try_from(left.div_ceil(1000))
            .unwrap_or(u64::MAX)
            .max(1))
    }
}

/// Whether a manifest route matches `path`; literal segments must be equal,
/// `{x}` takes one segment and a last `{*x}` the rest (at least one
/// segment, not empty). Only the one leading `/` is dropped: `//admin` has
/// an empty first segment and matches neither `/admin` nor `/{x}` (else a
/// request could reach a route through a pattern declared with weaker
/// `auth`, while the plugin is handed a path that reads as the other).
fn matches(route: &str, path: &str) -> bool {
    let mut given = path.strip_prefix('/').unwrap_or(path).split('/');
    for segment in route.strip_prefix('/').unwrap_or(route).split('/') {
        if segment.starts_with("{*") && segment.ends_with('}') {
            return given.next().is_some_and(|part| !part.is_empty());
        }
        let Some(part) = given.next() else {
            return false;
        };
        let param = segment.len() > 2 && segment.starts_with('{') && segment.ends_with('}');
        if !(param && !part.is_empty() || segment == part) {
            return false;
        }
    }
    given.next().is_none()
}

/// The endpoint serving `method` `path`: a literal route before a pattern,
/// each in declaration order. `Err` lists the methods the path has.
fn find<'a>(
    endpoints: &'a [EndpointDecl],
    method: &str,
    path: &str,
) -> Result<(usize, &'a EndpointDecl), Vec<&'a str>> {
    let on_path = || {
        endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| matches(&e.path, path))
    };
    let literal = on_path().find(|(_, e)| e.method == method && e.path == path);
    if let Some(found) = literal.or_else(|| on_path().find(|(_, e)| e.method == method)) {
        return Ok(found);
    }
    Err(on_path().map(|(_, e)| e.method.as_str()).collect())
}

/// `/plugins/{publisher}/{name}` (the plugin's root path `/`).
pub(crate) async fn root(
    state: Shared,
    Path((publisher, name)): Path<(String, String)>,
    request: Request,
) -> Response {
    serve(state, publisher, name, "/".to_owned(), request).await
}

/// `/plugins/{publisher}/{name}/{*rest}`.
pub(crate) async fn nested(
    state: Shared,
    Path((publisher, name, rest)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    serve(state, publisher, name, format!("/{rest}"), request).await
}

async fn serve(
    State(state): Shared,
    publisher: String,
    name: String,
    path: String,
    request: Request,
) -> Response {
    match handle(&state, &publisher, &name, path, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn handle(
    state: &Arc<ApiState>,
    publisher: &str,
    name: &str,
    path: String,
    request: Request,
) -> ApiResult<Response> {
    let method = request.method().as_str().to_owned();
    // Owned, so that no borrow of the request (not `Sync`) lives across an
    // await.
    let shown: String = request.uri().path().chars().take(256).collect();
    let no_route = || HttpError::NoRoute {
        method: method.clone(),
        path: shown.clone(),
    };
    let id = PluginId::new(&format!("{publisher}/{name}")).map_err(|_| no_route())?;
    let routes = state.engine.endpoint_routes(&id).ok_or_else(no_route)?;
    let (index, endpoint) = match find(routes.endpoints(), &method, &path) {
        Ok(found) => found,
        Err(allowed) if allowed.is_empty() => return Err(no_route()),
        Err(allowed) => {
            return Err(HttpError::MethodNotAllowed {
                method,
                allowed: allowed.join(", "),
            });
        }
    };
    let caller = if endpoint.auth {
        let secret = crate::bearer(&request)
            .map(str::to_owned)
            .ok_or(HttpError::Unauthenticated)?;
        let token = state
            .engine
            .authenticate(&secret)
            .await?
            .ok_or(HttpError::BadToken)?;
        Caller::Token(token.name)
    } else {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(Caller::Unknown, |c| {
                Caller::Address(tenon_serve::client_key(c.0.ip()))
            })
    };
    if let Some(rate) = &endpoint.rate_limit {
        let key = WindowKey::Caller(id.clone(), index, caller);
        state
            .rates
            .admit(&key, rate.requests, rate.window.0)
            .map_err(|retry_after| HttpError::RateLimited { retry_after })?;
    }
    if let Some(rate) = &state.config.plugin_rate_limit {
        let key = WindowKey::Plugin(id.clone());
        state
            .rates
            .admit(&key, rate.requests, rate.window)
            .map_err(|retry_after| HttpError::RateLimited { retry_after })?;
    }
    let limit = state.config.max_endpoint_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(HttpError::BodyTooLarge { limit });
    }
    let query = request.uri().query().unwrap_or_default().to_owned();
    let headers = forwarded(request.headers());
    // A client trickling its body (or stopping half way) holds its
    // connection only as long as a request may take.
    let backstop = state.config.request_timeout;
    let body = tokio::time::timeout(backstop, axum::body::to_bytes(request.into_body(), limit))
        .await
        .map_err(|_| HttpError::Timeout(backstop.as_millis()))?
        .map_err(|_| HttpError::BodyTooLarge { limit })?;
    let call = EndpointRequest {
        function: endpoint.function.clone(),
        method,
        path,
        query,
        headers,
        body: body.to_vec(),
    };
    let answer = tokio::time::timeout(backstop, state.engine.handle_request(&routes, &call))
        .await
        .map_err(|_| HttpError::PluginTimeout { plugin: id.clone() })?;
    match answer {
        Ok(answer) => answered(&id, &format!("/plugins/{id}"), answer),
        Err(error) => Err(failed(&id, error)),
    }
}

/// The request headers a plugin is given: names lower case, only those of
/// [`FORWARDED`] and custom `x-` headers (never credentials, cookies,
/// hop-by-hop headers or the server's own `x-tenon-`), values that are not
/// text left out.
fn forwarded(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| FORWARDED.contains(&name.as_str()) || custom(name.as_str()))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// Whether `location` points inside the plugin's own prefix (`prefix` with
/// no trailing `/`): a path, no scheme or host, no dot segment or escaped
/// separator that could climb out of it.
fn inside(prefix: &str, location: &str) -> bool {
    let Some(rest) = location.strip_prefix(prefix) else {
        return false;
    };
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    let lower = path.to_ascii_lowercase();
    (rest.is_empty() || rest.starts_with(['/', '?', '#']))
        && !location.contains('\\')
        && !path
            .split('/')
            .any(|segment| segment == "." || segment == "..")
        && !["%2e", "%2f", "%5c"]
            .iter()
            .any(|escaped| lower.contains(escaped))
}

/// Whether `content_type`'s media type is one of JavaScript's.
fn is_script(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    SCRIPT_TYPES
        .iter()
        .any(|script| script.eq_ignore_ascii_case(essence))
}

/// The plugin's answer as a response, once its status and headers are
/// checked; a malformed one is the plugin's failure (502). Only the
/// headers of [`ANSWERED`], custom `x-` headers and a `Location` inside
/// `prefix` (the plugin's own, `/plugins/{publisher}/{name}`) pass; a
/// script's content type is sent as `text/plain`.
fn answered(id: &PluginId, prefix: &str, answer: EndpointResponse) -> ApiResult<Response> {
    let invalid = |detail: String| HttpError::PluginFailed {
        plugin: id.clone(),
        detail,
    };
    let status = StatusCode::from_u16(answer.status)
        .ok()
        .filter(|s| !s.is_informational())
        .ok_or_else(|| invalid(format!("it answered status {}", answer.status)))?;
    if answer.headers.len() > MAX_ANSWER_HEADERS {
        return Err(invalid(format!(
            "it answered {} headers, more than {MAX_ANSWER_HEADERS}",
            answer.headers.len()
        )));
    }
    let size: usize = answer
        .headers
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    if size > MAX_ANSWER_HEADER_BYTES {
        return Err(invalid(format!(
            "it answered {size} bytes of headers, more than {MAX_ANSWER_HEADER_BYTES}"
        )));
    }
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in &answer.headers {
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            invalid(format!(
                "header name `{}` is not valid",
                name.escape_debug()
            ))
        })?;
        let header_value = HeaderValue::from_str(value).map_err(|_| {
            invalid(format!(
                "header `{header_name}` has a value that is not valid"
            ))
        })?;
        let passes = match header_name.as_str() {
            "location" => inside(prefix, value),
            "content-type" if is_script(value) => {
                headers.append(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                false
            }
            name => ANSWERED.contains(&name) || custom(name),
        };
        if passes {
            headers.append(header_name, header_value);
        } else {
            tracing::debug!(plugin = %id, header = %header_name, "a plugin's answer header was dropped");
        }
    }
    for (name, value) in FORCED {
        headers.insert(name, HeaderValue::from_static(value));
    }
    Ok(response)
}

/// What a failed call answers: 504 when the plugin ran out of time, 503
/// when it could not be given the call (busy, at a cap, stopping), 501 when
/// it cannot serve endpoints at all, 502 for anything else it did.
fn failed(id: &PluginId, error: EngineError) -> HttpError {
    match error {
        EngineError::Plugin { source, .. } => match source {
            SandboxError::Timeout { .. } => HttpError::PluginTimeout { plugin: id.clone() },
            SandboxError::MissingExport { .. } => {
                HttpError::EndpointUnserved { plugin: id.clone() }
            }
            SandboxError::Busy { .. }
            | SandboxError::InstanceCap { .. }
            | SandboxError::NotRunning { .. } => HttpError::PluginBusy { plugin: id.clone() },
            other => HttpError::PluginFailed {
                plugin: id.clone(),
                detail: other.to_string(),
            },
        },
        EngineError::NotRunning { .. } => HttpError::PluginBusy { plugin: id.clone() },
        other => HttpError::Engine(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_literals_parameters_and_rests() {
        for (route, path, expected) in [
            ("/", "/", true),
            ("/hello", "/hello", true),
            ("/hello", "/hello/", false),
            ("/hello", "/hell", false),
            ("/items/{id}", "/items/7", true),
            ("/items/{id}", "/items/", false),
            ("/items/{id}", "/items/7/x", false),
            ("/files/{*rest}", "/files/a/b/c", true),
            ("/files/{*rest}", "/files", false),
            ("/files/{*rest}", "/files/", false),
            ("/a/b", "/a", false),
            // Empty segments match nothing (no `//admin` through `/{id}`).
            ("/admin", "//admin", false),
            ("/{id}", "//admin", false),
            ("/{id}", "//", false),
            ("/files/{*rest}", "/files//a", false),
            ("/a/{id}", "/a//", false),
        ] {
            assert_eq!(matches(route, path), expected, "{route} against {path}");
        }
    }

    #[test]
    fn only_allowed_request_headers_are_forwarded() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer tenon_secret"),
            ("proxy-authorization", "Basic c2VjcmV0"),
            ("cookie", "session=secret"),
            ("connection", "keep-alive"),
            ("host", "admin.example"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-tenon-signatures", "c2ln"),
            ("X-Tenon-Filename", "a.tenon"),
            ("x-forwarded-for", "10.0.0.1"),
            ("sec-fetch-site", "same-origin"),
            ("x-kept", "yes"),
            ("accept", "application/json"),
        ] {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static(value),
            );
        }
        assert_eq!(
            forwarded(&headers),
            vec![
                ("x-kept".to_owned(), "yes".to_owned()),
                ("accept".to_owned(), "application/json".to_owned()),
            ]
        );
    }

    #[test]
    fn a_location_must_stay_inside_the_plugins_prefix() {
        let prefix = "/plugins/acme/hello";
        for (location, kept) in [
            ("/plugins/acme/hello", true),
            ("/plugins/acme/hello/", true),
            ("/plugins/acme/hello/done?x=1#top", true),
            ("/plugins/acme/hello?next=/api/v1", true),
            ("/plugins/acme/helloworld", false),
            ("/plugins/acme/other/x", false),
            ("/api/v1/plugins", false),
            ("https://evil.example/", false),
            ("//evil.example/plugins/acme/hello", false),
            ("/plugins/acme/hello/../../../api/v1/tokens", false),
            ("/plugins/acme/hello/%2e%2e/other", false),
            ("/plugins/acme/hello/%2E%2E%2Fother", false),
            ("/plugins/acme/hello/x\\..\\..", false),
            ("relative/path", false),
        ] {
            assert_eq!(inside(prefix, location), kept, "{location}");
        }
    }

    #[test]
    fn script_types_are_recognised_whatever_their_case_and_parameters() {
        for (content_type, script) in [
            ("text/javascript", true),
            ("Text/JavaScript; charset=utf-8", true),
            ("application/x-javascript", true),
            (" application/ecmascript ", true),
            ("text/plain", false),
            ("application/json", false),
            ("text/html", false),
        ] {
            assert_eq!(is_script(content_type), script, "{content_type}");
        }
    }

    #[test]
    fn a_caller_over_its_rate_waits_for_its_window() {
        let limiter = RateLimiter::default();
        let id = PluginId::new("acme/hello").unwrap();
        let key = |caller: &str| WindowKey::Caller(id.clone(), 0, Caller::Token(caller.into()));
        let window = Duration::from_secs(60);
        assert_eq!(limiter.admit(&key("a"), 2, window), Ok(()));
        assert_eq!(limiter.admit(&key("a"), 2, window), Ok(()));
        let retry = limiter.admit(&key("a"), 2, window).unwrap_err();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(limiter.admit(&key("b"), 2, window), Ok(()), "per caller");
    }

    /// Hostile: a flood of new callers (far more than the table holds)
    /// neither locks out a newcomer nor frees a limited caller that keeps
    /// coming, and the table stays bounded.
    #[test]
    fn a_flood_of_new_callers_locks_nobody_out() {
        let limiter = RateLimiter::default();
        let id = PluginId::new("acme/hello").unwrap();
        let window = Duration::from_secs(3600);
        let key = |n: u32| {
            let address = IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
            WindowKey::Caller(id.clone(), 0, Caller::Address(address))
        };
        let limited = WindowKey::Caller(id.clone(), 0, Caller::Token("limited".into()));
        assert_eq!(limiter.admit(&limited, 1, window), Ok(()));
        for n in 0..(MAX_TRACKED_WINDOWS as u32 * 2) {
            assert_eq!(limiter.admit(&key(n), 1, window), Ok(()), "caller {n}");
            if n % 1000 == 0 {
                assert!(limiter.admit(&limited, 1, window).is_err(), "at {n}");
            }
        }
        let held: usize = limiter.shards.iter().map(|s| s.lock().len()).sum();
        assert!(held <= MAX_TRACKED_WINDOWS, "{held}");
        let newcomer = WindowKey::Caller(id.clone(), 0, Caller::Token("new".into()));
        assert_eq!(limiter.admit(&newcomer, 1, window), Ok(()));
    }

    /// Hostile: an IPv6 client rotating through its /64 is one caller.
    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let limiter = RateLimiter::default();
        let id = PluginId::new("acme/hello").unwrap();
        let window = Duration::from_secs(3600);
        let key = |address: &str| {
            let ip = tenon_serve::client_key(address.parse().unwrap());
            WindowKey::Caller(id.clone(), 0, Caller::Address(ip))
        };
        assert_eq!(limiter.admit(&key("2001:db8:1:2::1"), 1, window), Ok(()));
        assert!(
            limiter
                .admit(&key("2001:db8:1:2:ffff::9"), 1, window)
                .is_err()
        );
        assert_eq!(limiter.admit(&key("2001:db8:1:3::1"), 1, window), Ok(()));
    }
}
