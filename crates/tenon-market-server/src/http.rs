//! The HTTP API (axum): the sparse index and metadata for clients, the JSON
//! API for people and tools, publishing and curation behind tokens.
//! Every route is listed in [`openapi`] and `docs/marketplace.md`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;
use tenon_manifest::{PluginId, Version};
use tenon_marketplace::catalog::Popular;
use tenon_marketplace::metadata::MetaRole;
use tenon_marketplace::{Sha256Digest, index_path};
use tenon_serve::ConnectionLimits;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::error::MarketError;
use crate::limits::{ClientKey, RateWindows, TrustedProxy, client_address};
use crate::market::{Market, Principal, Scope};
use crate::search::{SearchQuery, UpdatesRequest};

/// The largest request body outside publishing, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Request limits of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Requests allowed per client per minute (an IPv4 address, or an IPv6
    /// /64 network).
    pub requests_per_minute: u32,
    /// How many clients' windows are kept at most; a new client beyond it
    /// evicts the one seen longest ago.
    pub max_tracked_clients: usize,
    /// The proxies whose `X-Forwarded-For` is believed (none by default:
    /// the client is the connection's peer, whatever the header says).
    pub trusted_proxies: Vec<TrustedProxy>,
    /// How long a request may take, reading its body included.
    pub request_timeout: Duration,
    /// How many publishes may be read and checked at once (more are
    /// refused with 429 before their body is read).
    pub max_concurrent_publishes: usize,
    /// How [`crate::serve`] holds connections.
    pub connections: ConnectionLimits,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            requests_per_minute: 1200,
            max_tracked_clients: 100_000,
            trusted_proxies: Vec::new(),
            request_timeout: Duration::from_secs(120),
            max_concurrent_publishes: 4,
            connections: ConnectionLimits::default(),
        }
    }
}

#[derive(Debug)]
struct AppState {
    market: Arc<Market>,
    limits: HttpLimits,
    windows: Mutex<RateWindows<ClientKey>>,
    publishes: Arc<Semaphore>,
}

type Shared = State<Arc<AppState>>;

impl IntoResponse for MarketError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response =
            (status, Json(json!({"errors": [{"detail": self.detail()}]}))).into_response();
        if let Self::RateLimited {
            retry_after_secs, ..
        } = &self
            && let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// The API as a router a host (or `tenon market serve`) mounts. Serve it
/// with `into_make_service_with_connect_info::<SocketAddr>()` so that
/// per-address limits and download counting see the client's address.
///
/// It bounds bodies, request time and concurrent publishes itself, and
/// authenticates a publish before reading its body, but does not hold
/// connections: a host serving it on its own server must add a header-read
/// timeout, an idle keep-alive timeout, a write timeout and connection caps
/// there, as [`crate::serve`] does with [`HttpLimits::connections`].
pub fn router(market: Arc<Market>, limits: HttpLimits) -> Router {
    let max_upload = usize::try_from(market.config.limits.max_archive_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(tenon_marketplace::MAX_SIGNATURE_FILE_BYTES + 8);
    let state = Arc::new(AppState {
        market,
        windows: Mutex::new(crate::limits::rate_windows(limits.max_tracked_clients)),
        publishes: Arc::new(Semaphore::new(limits.max_concurrent_publishes)),
        limits,
    });
    let publish = Router::new()
        .route("/api/v1/publish", put(publish))
        .layer(DefaultBodyLimit::max(max_upload))
        .route_layer(middleware::from_fn_with_state(state.clone(), admit_publish));
    Router::new()
        .route("/config.json", get(config))
        .route("/openapi.json", get(openapi_json))
        .route("/meta/{file}", get(metadata))
        .route("/index/{publisher}/{name}", get(index_file))
        .route("/api/v1/search", get(search))
        .route("/api/v1/categories", get(categories))
        .route("/api/v1/featured", get(featured))
        .route("/api/v1/popular", get(popular))
        .route("/api/v1/updates", post(updates))
        .route("/api/v1/plugins/{publisher}/{name}", get(plugin))
        .route("/api/v1/plugins/{publisher}/{name}/versions", get(versions))
        .route("/api/v1/plugins/{publisher}/{name}/readme", get(readme))
        .route(
            "/api/v1/plugins/{publisher}/{name}/deprecate",
            put(deprecate),
        )
        .route(
            "/api/v1/plugins/{publisher}/{name}/{version}/download",
            get(download),
        )
        .route(
            "/api/v1/plugins/{publisher}/{name}/{version}/yank",
            put(yank).delete(yank),
        )
        .route("/api/v1/namespaces/{namespace}/owners", get(owners))
        .route(
            "/api/v1/namespaces/{namespace}/owners/{account}",
            put(set_owner).delete(set_owner),
        )
        .route(
            "/api/v1/admin/featured/{publisher}/{name}",
            put(feature).delete(feature),
        )
        .route(
            "/api/v1/admin/verified/{namespace}",
            put(verify_ns).delete(verify_ns),
        )
        .route("/api/v1/admin/tokens", post(create_token))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(publish)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found() -> MarketError {
    MarketError::NotFound("no such route".to_owned())
}

/// Logs and measures every request, finds its client (through trusted
/// proxies only) and applies the per-client limit.
async fn observe(State(state): Shared, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let client = ClientKey::of(client_address(
            peer,
            request.headers(),
            &state.limits.trusted_proxies,
        ));
        if let Err(e) = state.rate_check(client) {
            return e.into_response();
        }
        request.extensions_mut().insert(client);
    }
    let limit = state.limits.request_timeout;
    let response = match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => MarketError::Timeout {
            millis: limit.as_millis(),
        }
        .into_response(),
    };
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    tracing::info!(%method, %path, status, micros = elapsed.as_micros() as u64, "request");
    metrics::counter!("tenon_market_requests_total", "status" => status.to_string()).increment(1);
    metrics::histogram!("tenon_market_request_seconds").record(elapsed.as_secs_f64());
    response
}

/// Admits a publish before its body is read: the token must be valid
/// (an anonymous upload is refused without reading a byte of it) and a
/// place must be free among the publishes read at once.
async fn admit_publish(State(state): Shared, mut request: Request, next: Next) -> Response {
    let who = match state.principal(request.headers()).await {
        Ok(who) => who,
        Err(error) => return error.into_response(),
    };
    let Ok(_place) = state.publishes.clone().try_acquire_owned() else {
        return MarketError::RateLimited {
            who: format!(
                "publishers ({} uploads are being checked already)",
                state.limits.max_concurrent_publishes
            ),
            retry_after_secs: 5,
        }
        .into_response();
    };
    request.extensions_mut().insert(who);
    next.run(request).await
}

impl AppState {
    fn rate_check(&self, client: ClientKey) -> Result<(), MarketError> {
        let minute = OffsetDateTime::now_utc().unix_timestamp() / 60;
        if self
            .windows
            .lock()
            .admit(&client, minute, self.limits.requests_per_minute)
        {
            return Ok(());
        }
        Err(MarketError::RateLimited {
            who: format!("address {client}"),
            retry_after_secs: 60,
        })
    }

    async fn principal(&self, headers: &HeaderMap) -> Result<Principal, MarketError> {
        let token = bearer(headers).ok_or(MarketError::Unauthorized)?;
        self.market.authenticate(token).await
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn plugin_id(publisher: &str, name: &str) -> Result<PluginId, MarketError> {
    PluginId::new(&format!("{publisher}/{name}"))
        .map_err(|e| MarketError::BadRequest(e.to_string()))
}

fn version(text: &str) -> Result<Version, MarketError> {
    Version::parse(text)
        .map_err(|e| MarketError::BadRequest(format!("`{text}` is not a version: {e}")))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, MarketError> {
    q.map(|Query(q)| q)
        .map_err(|e| MarketError::BadRequest(e.body_text()))
}

fn body_json<T>(j: Result<Json<T>, JsonRejection>) -> Result<T, MarketError> {
    j.map(|Json(j)| j).map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            MarketError::TooLarge {
                what: "request body",
                size: MAX_BODY_BYTES as u64 + 1,
                limit: MAX_BODY_BYTES as u64,
            }
        } else {
            MarketError::BadRequest(e.body_text())
        }
    })
}

async fn config(State(state): Shared) -> Json<serde_json::Value> {
    Json(json!({
        "api": "/api/v1",
        "index": "/index/{publisher}/{name}",
        "dl": "/api/v1/plugins/{publisher}/{name}/{version}/download",
        "metadata": "/meta/{role}.json",
        "marketplace_key": state.market.marketplace_key().to_base64(),
    }))
}

async fn metadata(State(state): Shared, Path(file): Path<String>) -> Result<Response, MarketError> {
    let role = match file.as_str() {
        "root.json" => MetaRole::Root,
        "timestamp.json" => MetaRole::Timestamp,
        "snapshot.json" => MetaRole::Snapshot,
        "targets.json" => MetaRole::Targets,
        _ => {
            // `<N>.root.json`: an earlier (or the current) root, for
            // clients walking rotations.
            let root = file
                .strip_suffix(".root.json")
                .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u64>().ok())
                .and_then(|n| state.market.root_version(n));
            return match root {
                Some(bytes) => Ok(
                    ([(header::CONTENT_TYPE, "application/json")], bytes.to_vec()).into_response(),
                ),
                None => Err(MarketError::NotFound(format!("metadata `{file}`"))),
            };
        }
    };
    let bytes = state.market.metadata(role).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

async fn index_file(
    State(state): Shared,
    Path((publisher, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, MarketError> {
    let id = plugin_id(&publisher, &name)?;
    let bytes = state.market.index_file(&id).await?;
    let etag = format!("\"{}\"", Sha256Digest::of(&bytes));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let etag_header = HeaderValue::from_str(&etag).expect("hex in quotes is a header value");
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response());
    }
    tracing::debug!(path = %index_path(&id), "index file");
    Ok((
        [
            (header::ETAG, etag_header),
            (header::CONTENT_TYPE, HeaderValue::from_static("text/plain")),
        ],
        bytes,
    )
        .into_response())
}

async fn search(
    State(state): Shared,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Response, MarketError> {
    let q = query(q)?;
    Ok(Json(state.market.search(&q).await?).into_response())
}

/// Host compatibility parameters for the list endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct HostParams {
    api: Option<Version>,
    host_version: Option<Version>,
    days: Option<u32>,
    limit: Option<u32>,
}

impl HostParams {
    fn search(&self) -> SearchQuery {
        SearchQuery {
            api: self.api.clone(),
            host_version: self.host_version.clone(),
            ..SearchQuery::default()
        }
    }
}

async fn categories(State(state): Shared) -> Result<Response, MarketError> {
    Ok(Json(json!({"categories": state.market.categories().await?})).into_response())
}

async fn featured(
    State(state): Shared,
    q: Result<Query<HostParams>, QueryRejection>,
) -> Result<Response, MarketError> {
    let q = query(q)?;
    Ok(Json(json!({"plugins": state.market.featured(&q.search()).await?})).into_response())
}

async fn popular(
    State(state): Shared,
    q: Result<Query<HostParams>, QueryRejection>,
) -> Result<Response, MarketError> {
    let q = query(q)?;
    let list = state
        .market
        .popular(q.days.unwrap_or(30), q.limit.unwrap_or(20), &q.search())
        .await?;
    let plugins: Vec<Popular> = list
        .into_iter()
        .map(|(plugin, window_downloads)| Popular {
            plugin,
            window_downloads,
        })
        .collect();
    Ok(Json(json!({"plugins": plugins})).into_response())
}

async fn updates(
    State(state): Shared,
    body: Result<Json<UpdatesRequest>, JsonRejection>,
) -> Result<Response, MarketError> {
    let request = body_json(body)?;
    Ok(Json(json!({"updates": state.market.updates(&request).await?})).into_response())
}

async fn plugin(
    State(state): Shared,
    Path((publisher, name)): Path<(String, String)>,
    q: Result<Query<HostParams>, QueryRejection>,
) -> Result<Response, MarketError> {
    let id = plugin_id(&publisher, &name)?;
    let q = query(q)?;
    Ok(Json(state.market.plugin(&id, &q.search()).await?).into_response())
}

async fn versions(
    State(state): Shared,
    Path((publisher, name)): Path<(String, String)>,
) -> Result<Response, MarketError> {
    let id = plugin_id(&publisher, &name)?;
    Ok(Json(json!({"versions": state.market.versions(&id).await?})).into_response())
}

async fn readme(
    State(state): Shared,
    Path((publisher, name)): Path<(String, String)>,
) -> Result<Response, MarketError> {
    let id = plugin_id(&publisher, &name)?;
    let detail = state.market.plugin(&id, &SearchQuery::default()).await?;
    let text = detail
        .readme
        .ok_or_else(|| MarketError::NotFound(format!("a README for {id}")))?;
    Ok((
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        text,
    )
        .into_response())
}

async fn download(
    State(state): Shared,
    Path((publisher, name, ver)): Path<(String, String, String)>,
    headers: HeaderMap,
    client: Option<Extension<ClientKey>>,
) -> Result<Response, MarketError> {
    let id = plugin_id(&publisher, &name)?;
    let version = version(&ver)?;
    // A client is its account when it sends a valid token, else its address
    // (an IPv6 /64 as one), as `observe` found it.
    let client = match state.principal(&headers).await {
        Ok(p) => format!("account:{}", p.account),
        Err(_) => format!(
            "addr:{}",
            client.map_or_else(|| "unknown".to_owned(), |c| c.0.to_string())
        ),
    };
    let (bytes, signatures) = state.market.download(&id, &version, &client).await?;
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    // The signature file travels with the archive (it is small and bounded).
    let compact: serde_json::Value = serde_json::from_str(&signatures)
        .map_err(|e| MarketError::Corrupt(format!("stored signature file: {e}")))?;
    let encoded = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        compact.to_string(),
    );
    headers.insert(
        "x-tenon-signatures",
        HeaderValue::from_str(&encoded).expect("base64 is a header value"),
    );
    Ok(response)
}

async fn publish(
    State(state): Shared,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, MarketError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            MarketError::TooLarge {
                what: "upload",
                size: headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(0),
                limit: state.market.config.limits.max_archive_bytes,
            }
        } else {
            MarketError::BadRequest(e.body_text())
        }
    })?;
    let entry = state.market.publish(&who, &body).await?;
    Ok((StatusCode::CREATED, Json(json!({"published": entry}))).into_response())
}

async fn yank(
    State(state): Shared,
    method: Method,
    Path((publisher, name, ver)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, MarketError> {
    let yanked = method == Method::PUT;
    let who = state.principal(&headers).await?;
    let id = plugin_id(&publisher, &name)?;
    let version = version(&ver)?;
    state.market.yank(&who, &id, &version, yanked).await?;
    Ok(Json(json!({"ok": true, "yanked": yanked})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeprecateBody {
    deprecated: bool,
    #[serde(default)]
    replacement: Option<PluginId>,
}

async fn deprecate(
    State(state): Shared,
    Path((publisher, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<DeprecateBody>, JsonRejection>,
) -> Result<Response, MarketError> {
    let who = state.principal(&headers).await?;
    let id = plugin_id(&publisher, &name)?;
    let body = body_json(body)?;
    state
        .market
        .deprecate(&who, &id, body.deprecated, body.replacement.as_ref())
        .await?;
    Ok(Json(json!({"ok": true})).into_response())
}

async fn owners(
    State(state): Shared,
    Path(namespace): Path<String>,
) -> Result<Response, MarketError> {
    Ok(Json(json!({"owners": state.market.owners(&namespace).await?})).into_response())
}

async fn set_owner(
    State(state): Shared,
    method: Method,
    Path((namespace, account)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, MarketError> {
    let who = state.principal(&headers).await?;
    let owner = method == Method::PUT;
    state
        .market
        .set_owner(&who, &namespace, &account, owner)
        .await?;
    Ok(Json(json!({"ok": true})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeatureBody {
    rank: i64,
}

async fn feature(
    State(state): Shared,
    method: Method,
    Path((publisher, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, MarketError> {
    let who = state.principal(&headers).await?;
    let id = plugin_id(&publisher, &name)?;
    let rank = if method == Method::PUT {
        let body: FeatureBody = serde_json::from_slice(&body).map_err(|e| {
            MarketError::BadRequest(format!("the body must be {{\"rank\": N}}: {e}"))
        })?;
        Some(body.rank)
    } else {
        None
    };
    state.market.set_featured(&who, &id, rank).await?;
    Ok(Json(json!({"ok": true})).into_response())
}

async fn verify_ns(
    State(state): Shared,
    method: Method,
    Path(namespace): Path<String>,
    headers: HeaderMap,
) -> Result<Response, MarketError> {
    let who = state.principal(&headers).await?;
    let verified = method == Method::PUT;
    state
        .market
        .set_verified(&who, &namespace, verified)
        .await?;
    Ok(Json(json!({"ok": true})).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    account: String,
    scopes: Vec<Scope>,
}

async fn create_token(
    State(state): Shared,
    headers: HeaderMap,
    body: Result<Json<TokenBody>, JsonRejection>,
) -> Result<Response, MarketError> {
    let who = state.principal(&headers).await?;
    who.require(Scope::Admin)?;
    let body = body_json(body)?;
    let token = state
        .market
        .create_token(&body.account, &body.scopes)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"token": token}))).into_response())
}

async fn openapi_json() -> Json<serde_json::Value> {
    Json(openapi())
}

/// The OpenAPI 3.1 document served at `/openapi.json`.
pub fn openapi() -> serde_json::Value {
    let op = |summary: &str, auth: bool| {
        let mut op = json!({
            "summary": summary,
            "responses": {
                "200": {"description": "success"},
                "default": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}}}
            }
        });
        if auth {
            op["security"] = json!([{"token": []}]);
        }
        op
    };
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Tenon marketplace", "version": env!("CARGO_PKG_VERSION")},
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Errors": {"type": "object", "properties": {"errors": {"type": "array", "items": {"type": "object", "properties": {"detail": {"type": "string"}}}}}}}
        },
        "paths": {
            "/config.json": {"get": op("Where the index, metadata and downloads are", false)},
            "/meta/{file}": {"get": op("TUF-lite metadata: root.json, timestamp.json, snapshot.json, targets.json, and <N>.root.json for each root version kept", false)},
            "/index/{publisher}/{name}": {"get": op("A plugin's index file (ETag, If-None-Match → 304)", false)},
            "/api/v1/search": {"get": op("Search: q, category, tag, license, runtime, publisher, verified, api, host_version, sort, limit, cursor", false)},
            "/api/v1/categories": {"get": op("Categories with their plugin counts", false)},
            "/api/v1/featured": {"get": op("Curated plugins", false)},
            "/api/v1/popular": {"get": op("Most downloaded over `days`", false)},
            "/api/v1/updates": {"post": op("Newest compatible version of each installed plugin", false)},
            "/api/v1/plugins/{publisher}/{name}": {"get": op("Detail: listing, README, versions", false)},
            "/api/v1/plugins/{publisher}/{name}/versions": {"get": op("Every version's index line", false)},
            "/api/v1/plugins/{publisher}/{name}/readme": {"get": op("The newest version's README", false)},
            "/api/v1/plugins/{publisher}/{name}/deprecate": {"put": op("Deprecate (with a replacement) or undeprecate", true)},
            "/api/v1/plugins/{publisher}/{name}/{version}/download": {"get": op("The archive; its signature file in X-Tenon-Signatures", false)},
            "/api/v1/plugins/{publisher}/{name}/{version}/yank": {"put": op("Yank", true), "delete": op("Unyank", true)},
            "/api/v1/publish": {"put": op("Publish a framed upload (signature file + archive)", true)},
            "/api/v1/namespaces/{namespace}/owners": {"get": op("A namespace's owners", false)},
            "/api/v1/namespaces/{namespace}/owners/{account}": {"put": op("Add an owner", true), "delete": op("Remove an owner", true)},
            "/api/v1/admin/featured/{publisher}/{name}": {"put": op("Feature at a rank", true), "delete": op("Unfeature", true)},
            "/api/v1/admin/verified/{namespace}": {"put": op("Mark a publisher verified", true), "delete": op("Unmark", true)},
            "/api/v1/admin/tokens": {"post": op("Create an account token with scopes", true)}
        }
    })
}
