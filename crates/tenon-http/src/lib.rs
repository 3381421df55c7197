//! The engine over HTTP.
//!
//! This crate owns Tenon's HTTP surface for operators: [`router`] turns a
//! [`PluginEngine`] into an axum [`Router`] that a host mounts on its own
//! server (or [`serve`] runs alone, as `tenon serve` does). It serves the
//! JSON admin API under `/api/v1` ([`ROUTES`], described by the OpenAPI
//! document at `/api/v1/openapi.json`): plugins listed and shown, installed
//! from a server path or an uploaded `.tenon` archive after a preview that
//! stores nothing, configured (secrets write-only), granted and revoked,
//! enabled and disabled, upgraded, rolled back and uninstalled; hooks
//! listed and dispatched; the event log as pages and as server-sent events;
//! statistics, doctor, and Prometheus metrics at `/metrics`.
//!
//! Callers authenticate with bearer tokens the engine makes
//! ([`PluginEngine::create_token`]; the registry keeps only their hash)
//! carrying a role (viewer < operator < admin); each route needs one role,
//! checked before its handler runs. Every change is recorded in the event
//! log with the token's name. Errors are JSON with a stable code and the
//! exit code the `tenon` CLI would use. Bodies, headers and request time
//! are bounded ([`HttpConfig`]); so are event streams (how many at once,
//! how long each, and each ends within [`HttpConfig::event_recheck`] of
//! its token's revocation). Server errors (5xx) answer a generic message;
//! the detail goes to the server's log.
//!
//! With the `ui` feature it also serves the admin page at `/` (its files
//! embedded in the binary, under `/ui/`): a browser client of the same
//! API, holding nothing the API does not answer ([`ui`]).
//!
//! [`serve`] holds connections with `tenon-serve` ([`ConnectionLimits`]:
//! header-read and idle timeouts, a write-stall timeout, connection caps in
//! total and per address, a bounded graceful shutdown). A host that mounts
//! [`router`] on a server of its own must set such limits itself: axum's
//! `serve` sets none of them.
//!
//! It does not own the engine's decisions (the engine refuses what it
//! refuses; this crate only translates), does not make tokens' secrets or
//! judge roles itself (`tenon_engine::Role`), and depends on nothing of
//! Tenon but `tenon-engine`'s public API. `tenon-cli` depends on it for
//! `tenon serve`.

mod admin;
mod endpoints;
mod error;
mod events;
mod routes;
#[cfg(feature = "ui")]
pub mod ui;
mod uploads;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, RawPathParams, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use tenon_engine::{PluginEngine, PluginId, TokenInfo};

pub use endpoints::{CREDENTIAL_HEADERS, PluginRate};
pub use error::{ApiResult, HttpError};
pub use routes::{BodyKind, ROUTES, RouteSpec, by_operation, openapi};
pub use tenon_serve::ConnectionLimits;

/// Renders the Prometheus text exposition (a host passes its recorder's
/// handle: `move || handle.render()`).
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// Limits and options of the HTTP layer.
#[derive(Clone)]
pub struct HttpConfig {
    /// The largest JSON body, in bytes.
    pub max_body_bytes: usize,
    /// The largest uploaded archive, in bytes.
    pub max_upload_bytes: usize,
    /// The most bytes of request headers (names and values).
    pub max_header_bytes: usize,
    /// How long a request may take (not the event stream).
    pub request_timeout: Duration,
    /// The largest body a plugin's endpoint is handed, in bytes (413 over
    /// it, before the plugin is called).
    pub max_endpoint_body_bytes: usize,
    /// The most requests every caller together may send one plugin's
    /// endpoints (on top of each endpoint's own per-caller `rate_limit`);
    /// `None` for no such ceiling.
    pub plugin_rate_limit: Option<PluginRate>,
    /// How many uploads may wait for an install at once.
    pub max_pending_uploads: usize,
    /// How long an upload waits for an install.
    pub upload_ttl: Duration,
    /// How often the event stream looks for new events.
    pub event_poll: Duration,
    /// How many event streams may be open at once (more are refused with
    /// `too_many_streams`).
    pub max_event_streams: usize,
    /// How long one event stream lasts before the server ends it (clients
    /// resume with `Last-Event-ID`).
    pub event_stream_lifetime: Duration,
    /// How often an open event stream checks its token again (a revoked
    /// token's stream ends).
    pub event_recheck: Duration,
    /// How [`serve`] holds connections.
    pub connections: ConnectionLimits,
    /// The Prometheus renderer for `/metrics`; without one, `/metrics`
    /// answers `no_metrics`.
    pub metrics: Option<MetricsRenderer>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            max_upload_bytes: 64 << 20,
            max_endpoint_body_bytes: 1 << 20,
            max_header_bytes: 16 * 1024,
            plugin_rate_limit: Some(PluginRate {
                requests: 10_000,
                window: Duration::from_secs(1),
            }),
            request_timeout: Duration::from_secs(30),
            max_pending_uploads: 16,
            upload_ttl: Duration::from_secs(600),
            event_poll: Duration::from_millis(250),
            max_event_streams: 32,
            event_stream_lifetime: Duration::from_secs(3600),
            event_recheck: Duration::from_secs(5),
            connections: ConnectionLimits::default(),
            metrics: None,
        }
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("max_endpoint_body_bytes", &self.max_endpoint_body_bytes)
            .field("plugin_rate_limit", &self.plugin_rate_limit)
            .field("request_timeout", &self.request_timeout)
            .field("max_pending_uploads", &self.max_pending_uploads)
            .field("upload_ttl", &self.upload_ttl)
            .field("event_poll", &self.event_poll)
            .field("max_event_streams", &self.max_event_streams)
            .field("event_stream_lifetime", &self.event_stream_lifetime)
            .field("event_recheck", &self.event_recheck)
            .field("connections", &self.connections)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

/// What every handler shares.
pub(crate) struct ApiState {
    pub(crate) engine: PluginEngine,
    pub(crate) config: HttpConfig,
    pub(crate) uploads: uploads::Uploads,
    pub(crate) streams: Arc<tokio::sync::Semaphore>,
    /// The plugin endpoints' rate-limit windows.
    pub(crate) rates: endpoints::RateLimiter,
}

pub(crate) type Shared = State<Arc<ApiState>>;

/// Who is calling: the token's holder and role.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) TokenInfo);

/// The caller's bearer secret, kept for a stream to check it again.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) String);

/// The admin API as a router for a host to mount (or [`serve`] to run).
///
/// It bounds bodies, headers, request time and event streams itself, but
/// not connections: a host serving it on its own server must add a
/// header-read timeout, an idle keep-alive timeout, a write timeout and
/// connection caps there (as [`serve`] does with [`ConnectionLimits`]),
/// or one slow client can hold a connection, and its file descriptor,
/// forever.
pub fn router(engine: PluginEngine, config: HttpConfig) -> Router {
    let state = Arc::new(ApiState {
        uploads: uploads::Uploads::new(config.max_pending_uploads, config.upload_ttl),
        streams: Arc::new(tokio::sync::Semaphore::new(config.max_event_streams)),
        rates: endpoints::RateLimiter::default(),
        engine,
        config,
    });
    let mut router = Router::new();
    for spec in ROUTES {
        let filter = match spec.method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "DELETE" => MethodFilter::DELETE,
            other => unreachable!("the route table uses no {other}"),
        };
        let limit = match spec.body {
            BodyKind::Archive => state.config.max_upload_bytes,
            BodyKind::Json | BodyKind::None => state.config.max_body_bytes,
        };
        let method: MethodRouter<Arc<ApiState>> = admin::method_router(spec.operation, filter)
            .layer(DefaultBodyLimit::max(limit))
            .route_layer(middleware::from_fn_with_state(
                (state.clone(), spec),
                authorize,
            ));
        router = router.route(spec.path, method);
    }
    // Plugins' endpoints: their bodies are bounded by the endpoint layer
    // itself (max_endpoint_body_bytes), so axum's default limit is off.
    let router = router
        .route(
            "/plugins/{publisher}/{name}",
            axum::routing::any(endpoints::root).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/plugins/{publisher}/{name}/{*rest}",
            axum::routing::any(endpoints::nested).layer(DefaultBodyLimit::disable()),
        );
    #[cfg(feature = "ui")]
    let router = ui::mount(router);
    router
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(state.clone(), limit_headers))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes, holding
/// connections within [`HttpConfig::connections`]; requests in flight (open
/// event streams too) get its `shutdown_grace` to finish.
pub async fn serve(
    engine: PluginEngine,
    config: HttpConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = config.connections;
    tenon_serve::serve(router(engine, config), listener, limits, shutdown).await;
    Ok(())
}

async fn no_route(method: Method, uri: axum::http::Uri) -> HttpError {
    HttpError::NoRoute {
        method: method.to_string(),
        path: uri.path().chars().take(256).collect(),
    }
}

/// Refuses requests whose headers exceed the limit, before any handler.
async fn limit_headers(State(state): Shared, request: Request, next: Next) -> Response {
    let limit = state.config.max_header_bytes;
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > limit {
        return HttpError::HeadersTooLarge { size, limit }.into_response();
    }
    next.run(request).await
}

fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Checks the caller's token against the route's role, runs the handler
/// under the request timeout, and records a change with the token's name.
async fn authorize(
    State((state, spec)): State<(Arc<ApiState>, &'static RouteSpec)>,
    params: RawPathParams,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match spec.role {
        None => None,
        Some(needed) => {
            match authenticate(&state, bearer(&request).map(str::to_owned), spec, needed).await {
                Ok(token) => Some(token),
                Err(error) => return error.into_response(),
            }
        }
    };
    if let Some(token) = &caller {
        request.extensions_mut().insert(Caller(token.clone()));
        if spec.streams()
            && let Some(secret) = bearer(&request).map(str::to_owned)
        {
            request.extensions_mut().insert(Secret(secret));
        }
    }
    let response = if spec.streams() {
        next.run(request).await
    } else {
        let limit = state.config.request_timeout;
        match tokio::time::timeout(limit, next.run(request)).await {
            Ok(response) => response,
            Err(_) => HttpError::Timeout(limit.as_millis()).into_response(),
        }
    };
    if spec.mutates()
        && let Some(token) = &caller
    {
        let plugin = plugin_of(&params);
        let failure = response
            .extensions()
            .get::<error::FailureNote>()
            .map(|n| n.0.clone());
        let outcome = match &failure {
            None => Ok(()),
            Some(message) => Err(message.as_str()),
        };
        if let Err(error) = state
            .engine
            .record_api_request(&token.name, spec.operation, plugin.as_ref(), outcome)
            .await
        {
            tracing::warn!(
                "cannot record {} by {}: {error}",
                spec.operation,
                token.name
            );
        }
    }
    response
}

async fn authenticate(
    state: &ApiState,
    secret: Option<String>,
    spec: &'static RouteSpec,
    needed: tenon_engine::Role,
) -> ApiResult<TokenInfo> {
    let secret = secret.ok_or(HttpError::Unauthenticated)?;
    let token = state
        .engine
        .authenticate(&secret)
        .await?
        .ok_or(HttpError::BadToken)?;
    if !token.role.allows(needed) {
        return Err(HttpError::Forbidden {
            operation: spec.operation,
            needed,
            name: token.name,
            has: token.role,
        });
    }
    Ok(token)
}

/// The plugin a route's `{publisher}/{name}` names, if it is an id.
fn plugin_of(params: &RawPathParams) -> Option<PluginId> {
    let mut publisher = None;
    let mut name = None;
    for (key, value) in params {
        match key {
            "publisher" => publisher = Some(value),
            "name" => name = Some(value),
            _ => {}
        }
    }
    PluginId::new(&format!("{}/{}", publisher?, name?)).ok()
}
