//! The admin page (feature `ui`): hand-written HTML, CSS and JavaScript
//! modules embedded in the binary, served at `/` and `/ui/{file}`. The page
//! talks to the admin API only, with the bearer token the operator types
//! in; these routes are public because they hold nothing but the page.
//!
//! Every answer carries a strict Content-Security-Policy (scripts and
//! styles from this origin only, nothing inline, no frames, no forms
//! posted elsewhere), `X-Content-Type-Options: nosniff`, `Referrer-Policy:
//! no-referrer`, and `Cache-Control: no-cache` with an `ETag`: a browser
//! revalidates and gets `304 Not Modified` until the binary changes.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::ApiState;
use crate::error::HttpError;

/// The Content-Security-Policy of every file of the page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its name under `/ui/`, its content type, its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../ui/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the page; `index.html` is also `/`.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("plugins.js", JS),
    asset!("detail.js", JS),
    asset!("install.js", JS),
    asset!("words.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
];

/// The names of the page's files, as served under `/ui/`.
pub fn asset_names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.name)
}

fn etag(asset: &Asset) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let mut hasher = DefaultHasher::new();
                a.bytes.hash(&mut hasher);
                format!("\"{:016x}\"", hasher.finish())
            })
            .collect()
    });
    let index = ASSETS
        .iter()
        .position(|a| a.name == asset.name)
        .expect("an asset of the table");
    &tags[index]
}

fn answer(asset: &'static Asset, request: &HeaderMap) -> Response {
    let tag = etag(asset);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // A page of another site that opened this one keeps no handle on it
    // (it could otherwise steer the page's route under the operator's
    // next click), and no other site may embed its files.
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::ETAG, HeaderValue::from_static(tag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, asset.bytes).into_response()
}

async fn index(request: HeaderMap) -> Response {
    answer(&ASSETS[0], &request)
}

async fn file(Path(name): Path<String>, request: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => answer(asset, &request),
        None => HttpError::NoRoute {
            method: "GET".to_owned(),
            path: format!("/ui/{}", name.chars().take(200).collect::<String>()),
        }
        .into_response(),
    }
}

/// The page's routes, added to the admin API's router.
pub(crate) fn mount(router: Router<Arc<ApiState>>) -> Router<Arc<ApiState>> {
    router
        .route("/", get(index))
        .route("/ui/{*file}", get(file))
}
