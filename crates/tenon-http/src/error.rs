//! What the API answers when a request fails: a JSON body with a stable
//! code and the CLI's exit category, and the status that goes with it.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tenon_engine::EngineError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The engine refused or failed; its error keeps its kind.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The route needs a bearer token and the request carried none.
    #[error(
        "this route needs a bearer token: send `Authorization: Bearer tenon_…` (make one with `tenon token create NAME --role ROLE`)"
    )]
    Unauthenticated,
    /// The bearer token is not one of the tenant's.
    #[error("the bearer token is unknown or revoked")]
    BadToken,
    /// The token's role does not allow the route.
    #[error("{operation} needs the {needed} role; token `{name}` has the {has} role")]
    Forbidden {
        /// The route's operation.
        operation: &'static str,
        /// The role it needs.
        needed: tenon_engine::Role,
        /// The token's name.
        name: String,
        /// The token's role.
        has: tenon_engine::Role,
    },
    /// The request is malformed: what and where.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the route allows.
    #[error("the request body is larger than the {limit} bytes this route accepts")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The headers are larger than the server accepts.
    #[error("the request headers take {size} bytes, more than the {limit} allowed")]
    HeadersTooLarge {
        /// Their size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// No route has this path and method.
    #[error("no route {method} {path}; the routes are listed in /api/v1/openapi.json")]
    NoRoute {
        /// The method.
        method: String,
        /// The path.
        path: String,
    },
    /// An upload id that is unknown or has expired.
    #[error("upload `{0}` is unknown or expired; upload the package again")]
    UnknownUpload(String),
    /// Too many uploads wait for an install.
    #[error("{0} uploads already wait for an install; install or let them expire first")]
    TooManyUploads(usize),
    /// Too many event streams are open.
    #[error("{0} event streams are already open; close one or page /api/v1/events instead")]
    TooManyStreams(usize),
    /// The request took longer than the server allows.
    #[error("the request took longer than {0} ms and was abandoned")]
    Timeout(u128),
    /// The host serves no metrics.
    #[error("this server exports no Prometheus metrics (the host set no metrics renderer)")]
    NoMetrics,
    /// A plugin's endpoint exists on this path, with other methods.
    #[error("{method} is not served here; this path answers {allowed}")]
    MethodNotAllowed {
        /// The method asked for.
        method: String,
        /// The methods the path has, comma-separated.
        allowed: String,
    },
    /// The caller went over a plugin endpoint's `rate_limit`.
    #[error("too many requests to this endpoint; try again in {retry_after} s")]
    RateLimited {
        /// Seconds until the caller's window ends (`Retry-After`).
        retry_after: u64,
    },
    /// A plugin did not answer its endpoint in time.
    #[error("plugin {plugin} did not answer in time")]
    PluginTimeout {
        /// The plugin.
        plugin: tenon_engine::PluginId,
    },
    /// A plugin could not take the request now (every instance busy, a
    /// fairness cap, stopping).
    #[error("plugin {plugin} cannot take this request now; try again")]
    PluginBusy {
        /// The plugin.
        plugin: tenon_engine::PluginId,
    },
    /// A plugin declares endpoints but has no way to serve them (no
    /// `handle_request` export; component and process plugins have none).
    #[error(
        "plugin {plugin} declares this endpoint but does not serve endpoints: it has no `handle_request` export (component plugins of tenon:plugin@1.0.0 and process plugins cannot have one)"
    )]
    EndpointUnserved {
        /// The plugin.
        plugin: tenon_engine::PluginId,
    },
    /// A plugin failed to answer its endpoint, or answered something that
    /// is not a valid HTTP answer. The detail goes to the server's log.
    #[error("plugin {plugin} failed to answer this request")]
    PluginFailed {
        /// The plugin.
        plugin: tenon_engine::PluginId,
        /// What went wrong (logged, not sent).
        detail: String,
    },
}

/// The CLI's exit categories: `refused` (exit 1) and `usage` or
/// `environment` (exit 2).
fn category(exit_code: u8, environment: bool) -> &'static str {
    match (exit_code, environment) {
        (1, _) => "refused",
        (_, true) => "environment",
        _ => "usage",
    }
}

impl HttpError {
    /// The status, the stable code, and the CLI exit code it matches.
    pub fn parts(&self) -> (StatusCode, &'static str, u8) {
        match self {
            Self::Engine(error) => engine_parts(error),
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated", 1),
            Self::BadToken => (StatusCode::UNAUTHORIZED, "bad_token", 1),
            Self::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden", 1),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request", 2),
            Self::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", 2),
            Self::HeadersTooLarge { .. } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                2,
            ),
            Self::NoRoute { .. } => (StatusCode::NOT_FOUND, "no_route", 2),
            Self::UnknownUpload(_) => (StatusCode::NOT_FOUND, "unknown_upload", 1),
            Self::TooManyUploads(_) => (StatusCode::SERVICE_UNAVAILABLE, "too_many_uploads", 2),
            Self::TooManyStreams(_) => (StatusCode::SERVICE_UNAVAILABLE, "too_many_streams", 2),
            Self::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout", 2),
            Self::NoMetrics => (StatusCode::NOT_FOUND, "no_metrics", 2),
            Self::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", 2)
            }
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", 2),
            Self::PluginTimeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "plugin_timeout", 2),
            Self::PluginBusy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "plugin_busy", 2),
            Self::PluginFailed { .. } => (StatusCode::BAD_GATEWAY, "plugin_failed", 2),
            Self::EndpointUnserved { .. } => (StatusCode::NOT_IMPLEMENTED, "endpoint_unserved", 2),
        }
    }
}

fn engine_parts(error: &EngineError) -> (StatusCode, &'static str, u8) {
    use tenon_engine::EngineError as E;
    let refusal = if error.is_refusal() { 1 } else { 2 };
    let (status, code) = match error {
        E::NotInstalled { .. } => (StatusCode::NOT_FOUND, "not_installed"),
        E::AlreadyInstalled { .. } => (StatusCode::CONFLICT, "already_installed"),
        E::InvalidTransition { .. } => (StatusCode::CONFLICT, "invalid_transition"),
        E::DependentsActive { .. } => (StatusCode::CONFLICT, "dependents_active"),
        E::InvalidManifest { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_manifest"),
        E::InvalidPlugin { .. } | E::Package { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_package")
        }
        E::UnsignedDirectory { .. } | E::TrustLevel { .. } | E::Trusted { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "untrusted")
        }
        E::MissingConfig { .. } | E::ConfigRequired { .. } | E::InvalidConfig { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "config")
        }
        E::NotGranted { .. } | E::UnknownPermission { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "permissions")
        }
        E::Dependencies { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "dependencies"),
        E::InvalidToken { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
        E::Registry(e) if error.is_refusal() => match e {
            tenon_engine::RegistryError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            _ => (StatusCode::CONFLICT, "conflict"),
        },
        E::Source { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "source"),
        _ if error.is_refusal() => (StatusCode::UNPROCESSABLE_ENTITY, "refused"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "environment"),
    };
    (status, code, refusal)
}

/// The message of a failed request, kept in the response's extensions so
/// that the audit record can name it.
#[derive(Debug, Clone)]
pub(crate) struct FailureNote(pub(crate) String);

/// What a client is told of a server error; the detail (a registry path,
/// a backend's message) goes to the server's log only.
pub(crate) const SERVER_ERROR_MESSAGE: &str =
    "the server failed to carry out this request; its log has the detail";

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let (status, code, exit_code) = self.parts();
        let environment = status.is_server_error()
            && !matches!(self, Self::TooManyUploads(_) | Self::TooManyStreams(_));
        let mut message = self.to_string();
        if let Self::PluginFailed { detail, .. } = &self {
            tracing::warn!(code, "request failed: {message}: {detail}");
        } else if status.is_server_error() {
            tracing::warn!(code, "request failed: {message}");
        }
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            message = SERVER_ERROR_MESSAGE.to_owned();
        }
        let mut response = (
            status,
            Json(json!({
                "error": {
                    "code": code,
                    "category": category(exit_code, environment),
                    "exit_code": exit_code,
                    "message": message,
                }
            })),
        )
            .into_response();
        match &self {
            Self::RateLimited { retry_after } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            Self::PluginBusy { .. } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::MethodNotAllowed { allowed, .. } => {
                if let Ok(value) = HeaderValue::from_str(allowed) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
            }
            _ => {}
        }
        if matches!(self, Self::Unauthenticated | Self::BadToken) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tenon\""),
            );
        }
        response.extensions_mut().insert(FailureNote(message));
        response
    }
}

/// A handler's result.
pub type ApiResult<T> = Result<T, HttpError>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A server error tells the client nothing of the server's insides (a
    /// path, a backend's message); a refusal keeps its whole message.
    #[tokio::test]
    async fn server_errors_answer_a_generic_message() {
        let cases: Vec<(HttpError, u16, Option<&str>)> = vec![
            (
                HttpError::Engine(EngineError::Config(
                    "cannot open /srv/secret/registry.db: disk I/O error".to_owned(),
                )),
                500,
                None,
            ),
            (
                HttpError::BadRequest("`x` is not a plugin id".to_owned()),
                400,
                Some("`x` is not a plugin id"),
            ),
            (HttpError::Timeout(30_000), 504, Some("30000 ms")),
        ];
        for (error, status, shown) in cases {
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), status);
            let note = response.extensions().get::<FailureNote>().cloned();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let message = body["error"]["message"].as_str().unwrap();
            match shown {
                Some(text) => assert!(message.contains(text), "{message}"),
                None => {
                    assert_eq!(message, SERVER_ERROR_MESSAGE);
                    assert!(!note.unwrap().0.contains("/srv/secret"));
                }
            }
        }
    }
}
