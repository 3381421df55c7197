//! Plugins' own endpoints: each running plugin's `[[endpoints]]` served under
//! `/plugins/{publisher}/{name}/…`.
//!
//! Routes are looked up in the engine's running state on every request
//! ([`PluginEngine::running_endpoints`]), so they appear when a plugin is
//! enabled and disappear when it is disabled, without rebuilding the router.
//! Each plugin's routes live under its own id, so no two plugins can claim
//! the same route. The layer checks, in order: the route, the endpoint's
//! `auth` (any valid API token), its `rate_limit` (per caller: the token's
//! name, or the client's address), the body's size; then hands the request,
//! without credentials, to the plugin and checks its answer before it is
//! sent (status, header names and values). Every answer carries
//! `Content-Security-Policy: sandbox` and `X-Content-Type-Options: nosniff`,
//! so a plugin's page never runs as the admin page's origin.

use std::collections::HashMap;
use std::net::SocketAddr;
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

use crate::error::{ApiResult, HttpError};
use crate::{ApiState, Shared};

/// Request headers never handed to a plugin: the caller's credentials.
pub const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// Hop-by-hop headers: about the connection, not the request or answer.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// Headers the layer sets on every answer; a plugin's own are replaced.
const FORCED: [(&str, &str); 2] = [
    ("content-security-policy", "sandbox"),
    ("x-content-type-options", "nosniff"),
];

/// The most callers the rate limiter remembers before it refuses new ones.
const MAX_TRACKED_CALLERS: usize = 100_000;

/// Whose calls a window counts: the plugin, the endpoint's index, the caller.
type WindowKey = (PluginId, usize, String);

/// Fixed-window counters per (plugin, endpoint, caller): when the window
/// started, and the calls counted in it.
#[derive(Default)]
pub(crate) struct RateLimiter {
    windows: Mutex<HashMap<WindowKey, (Instant, u32)>>,
}

impl RateLimiter {
    /// Counts one call; `Err(seconds)` until the caller's window ends when
    /// it is over `requests` in `window`.
    fn admit(&self, key: WindowKey, requests: u32, window: Duration) -> Result<(), u64> {
        let now = Instant::now();
        let mut windows = self.windows.lock();
        if windows.len() >= MAX_TRACKED_CALLERS {
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        if windows.len() >= MAX_TRACKED_CALLERS && !windows.contains_key(&key) {
            return Err(window.as_secs().max(1));
        }
        let entry = windows.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        if entry.1 >= requests {
            let left = window.saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs_f64().ceil().max(1.0) as u64);
        }
        entry.1 += 1;
        Ok(())
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
    let endpoints = state.engine.running_endpoints(&id).ok_or_else(no_route)?;
    let (index, endpoint) = match find(&endpoints, &method, &path) {
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
        format!("token:{}", token.name)
    } else {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(
                || "address:unknown".to_owned(),
                |c| format!("address:{}", c.0.ip()),
            )
    };
    if let Some(rate) = &endpoint.rate_limit {
        let window = rate.window.0;
        state
            .rates
            .admit((id.clone(), index, caller), rate.requests, window)
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
    let answer = tokio::time::timeout(backstop, state.engine.handle_request(&id, &call))
        .await
        .map_err(|_| HttpError::PluginTimeout { plugin: id.clone() })?;
    match answer {
        Ok(answer) => answered(&id, answer),
        Err(error) => Err(failed(&id, error)),
    }
}

/// The request headers a plugin is given: names lower case, without
/// credentials or hop-by-hop headers, values that are not text left out.
fn forwarded(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            !CREDENTIAL_HEADERS.contains(&name) && !HOP_BY_HOP.contains(&name)
        })
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// The plugin's answer as a response, once its status and headers are
/// checked; a malformed one is the plugin's failure (502).
fn answered(id: &PluginId, answer: EndpointResponse) -> ApiResult<Response> {
    let invalid = |detail: String| HttpError::PluginFailed {
        plugin: id.clone(),
        detail,
    };
    let status = StatusCode::from_u16(answer.status)
        .ok()
        .filter(|s| !s.is_informational())
        .ok_or_else(|| invalid(format!("it answered status {}", answer.status)))?;
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
        if HOP_BY_HOP.contains(&header_name.as_str()) || header_name == header::CONTENT_LENGTH {
            continue;
        }
        let header_value = HeaderValue::from_str(value).map_err(|_| {
            invalid(format!(
                "header `{header_name}` has a value that is not valid"
            ))
        })?;
        headers.append(header_name, header_value);
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
    fn credentials_and_connection_headers_are_not_forwarded() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer tenon_secret"),
            ("proxy-authorization", "Basic c2VjcmV0"),
            ("cookie", "session=secret"),
            ("connection", "keep-alive"),
            ("x-kept", "yes"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        assert_eq!(
            forwarded(&headers),
            vec![("x-kept".to_owned(), "yes".to_owned())]
        );
    }

    #[test]
    fn a_caller_over_its_rate_waits_for_its_window() {
        let limiter = RateLimiter::default();
        let id = PluginId::new("acme/hello").unwrap();
        let key = |caller: &str| (id.clone(), 0, caller.to_owned());
        let window = Duration::from_secs(60);
        assert_eq!(limiter.admit(key("a"), 2, window), Ok(()));
        assert_eq!(limiter.admit(key("a"), 2, window), Ok(()));
        let retry = limiter.admit(key("a"), 2, window).unwrap_err();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(limiter.admit(key("b"), 2, window), Ok(()), "per caller");
    }
}
