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
//! are bounded ([`HttpConfig`]).
//!
//! It does not own the engine's decisions (the engine refuses what it
//! refuses; this crate only translates), does not make tokens' secrets or
//! judge roles itself (`tenon_engine::Role`), and depends on nothing of
//! Tenon but `tenon-engine`'s public API. `tenon-cli` depends on it for
//! `tenon serve`.

mod admin;
mod error;
mod events;
mod routes;
mod uploads;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, RawPathParams, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use tenon_engine::{PluginEngine, PluginId, TokenInfo};

pub use error::{ApiResult, HttpError};
pub use routes::{BodyKind, ROUTES, RouteSpec, by_operation, openapi};

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
    /// How many uploads may wait for an install at once.
    pub max_pending_uploads: usize,
    /// How long an upload waits for an install.
    pub upload_ttl: Duration,
    /// How often the event stream looks for new events.
    pub event_poll: Duration,
    /// The Prometheus renderer for `/metrics`; without one, `/metrics`
    /// answers `no_metrics`.
    pub metrics: Option<MetricsRenderer>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            max_upload_bytes: 64 << 20,
            max_header_bytes: 16 * 1024,
            request_timeout: Duration::from_secs(30),
            max_pending_uploads: 16,
            upload_ttl: Duration::from_secs(600),
            event_poll: Duration::from_millis(250),
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
            .field("request_timeout", &self.request_timeout)
            .field("max_pending_uploads", &self.max_pending_uploads)
            .field("upload_ttl", &self.upload_ttl)
            .field("event_poll", &self.event_poll)
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

/// What every handler shares.
pub(crate) struct ApiState {
    pub(crate) engine: PluginEngine,
    pub(crate) config: HttpConfig,
    pub(crate) uploads: uploads::Uploads,
}

pub(crate) type Shared = State<Arc<ApiState>>;

/// Who is calling: the token's holder and role.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) TokenInfo);

/// The admin API as a router for a host to mount (or [`serve`] to run).
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(engine: PluginEngine, config: HttpConfig) -> Router {
    let state = Arc::new(ApiState {
        uploads: uploads::Uploads::new(config.max_pending_uploads, config.upload_ttl),
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
    router
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(state.clone(), limit_headers))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes.
pub async fn serve(
    engine: PluginEngine,
    config: HttpConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(engine, config).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
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
