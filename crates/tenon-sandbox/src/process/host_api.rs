//! The host API served back to a process plugin: `tenon.plugin.v1.HostApi`
//! on a Unix socket in the plugin's private socket directory. Every request
//! names the host call it belongs to (`call_id`) and goes through the
//! plugin's permission [`Boundary`] with that call's [`CallScope`], exactly
//! as a WebAssembly plugin's host call does.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tenon_plugin_proto::v1;
use tenon_plugin_proto::v1::host_api_server::HostApi as HostApiService;
use tonic::{Request, Response, Status};

use crate::boundary::{Boundary, CallScope, RequestSizes};
use crate::host::{HostError, HttpRequest, LogLevel};

/// The calls in progress, by id: what a host request may act within.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    next: Mutex<u64>,
    live: Mutex<HashMap<u64, Arc<CallScope>>>,
}

impl Calls {
    /// Registers a call; it ends when the guard drops.
    pub(crate) fn begin(self: &Arc<Self>, scope: CallScope) -> CallGuard {
        let id = {
            let mut next = self.next.lock();
            *next += 1;
            *next
        };
        let scope = Arc::new(scope);
        self.live.lock().insert(id, scope.clone());
        CallGuard {
            calls: self.clone(),
            id,
            scope,
        }
    }

    fn get(&self, id: u64) -> Option<Arc<CallScope>> {
        self.live.lock().get(&id).cloned()
    }
}

/// A call in progress.
#[derive(Debug)]
pub(crate) struct CallGuard {
    calls: Arc<Calls>,
    pub(crate) id: u64,
    pub(crate) scope: Arc<CallScope>,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.calls.live.lock().remove(&self.id);
    }
}

/// The service.
pub(crate) struct HostService {
    pub(crate) boundary: Arc<Boundary>,
    pub(crate) calls: Arc<Calls>,
}

fn error(e: HostError) -> v1::HostError {
    use v1::host_error::Kind;
    let (kind, message) = match e {
        HostError::PermissionDenied(m) => (Kind::PermissionDenied, m),
        HostError::QuotaExceeded(m) => (Kind::QuotaExceeded, m),
        HostError::Timeout(m) => (Kind::Timeout, m),
        HostError::InvalidInput(m) => (Kind::InvalidInput, m),
        HostError::Unavailable(m) => (Kind::Unavailable, m),
    };
    v1::HostError {
        kind: kind as i32,
        message,
    }
}

impl HostService {
    fn scope(&self, call_id: u64) -> Result<Arc<CallScope>, v1::HostError> {
        self.calls.get(call_id).ok_or_else(|| {
            error(HostError::Unavailable(format!(
                "no call of the host is in progress with call_id {call_id}: host calls are made while handling one"
            )))
        })
    }

    async fn config(&self, r: v1::ConfigGetRequest) -> v1::ConfigGetReply {
        let scope = match self.scope(r.call_id) {
            Ok(s) => s,
            Err(e) => return reply_config(Err(e)),
        };
        let result = self.boundary.config_get(&scope, &r.key).await;
        reply_config(result.map_err(error))
    }
}

fn reply_config(r: Result<Option<serde_json::Value>, v1::HostError>) -> v1::ConfigGetReply {
    match r {
        Ok(value) => v1::ConfigGetReply {
            error: None,
            value_json: value.map(|v| v.to_string()),
        },
        Err(e) => v1::ConfigGetReply {
            error: Some(e),
            value_json: None,
        },
    }
}

fn host_reply(r: Result<(), HostError>) -> v1::HostReply {
    v1::HostReply {
        error: r.err().map(error),
    }
}

#[tonic::async_trait]
impl HostApiService for HostService {
    async fn get_config(
        &self,
        request: Request<v1::ConfigGetRequest>,
    ) -> Result<Response<v1::ConfigGetReply>, Status> {
        Ok(Response::new(self.config(request.into_inner()).await))
    }

    async fn get_secret(
        &self,
        request: Request<v1::ConfigGetRequest>,
    ) -> Result<Response<v1::ConfigGetReply>, Status> {
        Ok(Response::new(self.config(request.into_inner()).await))
    }

    async fn log(
        &self,
        request: Request<v1::LogRequest>,
    ) -> Result<Response<v1::LogReply>, Status> {
        let r = request.into_inner();
        let scope = match self.scope(r.call_id) {
            Ok(s) => s,
            Err(e) => return Ok(Response::new(v1::LogReply { error: Some(e) })),
        };
        use v1::log_request::Level;
        let level = match Level::try_from(r.level).unwrap_or(Level::Info) {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        let fields: Vec<(String, String)> =
            r.fields.into_iter().map(|f| (f.key, f.value)).collect();
        self.boundary.log(&scope, level, &r.message, &fields);
        Ok(Response::new(v1::LogReply { error: None }))
    }

    async fn kv_get(
        &self,
        request: Request<v1::KvGetRequest>,
    ) -> Result<Response<v1::KvGetReply>, Status> {
        let r = request.into_inner();
        let result = match self.scope(r.call_id) {
            Ok(scope) => self.boundary.kv_get(&scope, &r.key).await.map_err(error),
            Err(e) => Err(e),
        };
        Ok(Response::new(match result {
            Ok(value) => v1::KvGetReply { error: None, value },
            Err(e) => v1::KvGetReply {
                error: Some(e),
                value: None,
            },
        }))
    }

    async fn kv_set(
        &self,
        request: Request<v1::KvSetRequest>,
    ) -> Result<Response<v1::HostReply>, Status> {
        let r = request.into_inner();
        Ok(Response::new(match self.scope(r.call_id) {
            Ok(scope) => host_reply(self.boundary.kv_set(&scope, &r.key, &r.value).await),
            Err(e) => v1::HostReply { error: Some(e) },
        }))
    }

    async fn kv_delete(
        &self,
        request: Request<v1::KvDeleteRequest>,
    ) -> Result<Response<v1::HostReply>, Status> {
        let r = request.into_inner();
        Ok(Response::new(match self.scope(r.call_id) {
            Ok(scope) => host_reply(self.boundary.kv_delete(&scope, &r.key).await),
            Err(e) => v1::HostReply { error: Some(e) },
        }))
    }

    async fn kv_list(
        &self,
        request: Request<v1::KvListRequest>,
    ) -> Result<Response<v1::KvListReply>, Status> {
        let r = request.into_inner();
        let result = match self.scope(r.call_id) {
            Ok(scope) => self
                .boundary
                .kv_list(&scope, &r.prefix)
                .await
                .map_err(error),
            Err(e) => Err(e),
        };
        Ok(Response::new(match result {
            Ok(keys) => v1::KvListReply { error: None, keys },
            Err(e) => v1::KvListReply {
                error: Some(e),
                keys: Vec::new(),
            },
        }))
    }

    async fn http_request(
        &self,
        request: Request<v1::HttpRequestMessage>,
    ) -> Result<Response<v1::HttpReply>, Status> {
        let r = request.into_inner();
        let result = match self.scope(r.call_id) {
            Ok(scope) => {
                let sizes = RequestSizes {
                    method: r.method.len(),
                    url: r.url.len(),
                    headers: r.headers.len(),
                    header_bytes: r.headers.iter().map(|h| h.name.len() + h.value.len()).sum(),
                    body: r.body.len(),
                };
                if let Err(e) = self.boundary.check_request_sizes(sizes) {
                    return Ok(Response::new(v1::HttpReply {
                        error: Some(error(e)),
                        ..Default::default()
                    }));
                }
                let request = HttpRequest {
                    method: r.method,
                    url: r.url,
                    headers: r.headers.into_iter().map(|h| (h.name, h.value)).collect(),
                    body: r.body,
                };
                self.boundary
                    .http_request(&scope, request)
                    .await
                    .map_err(error)
            }
            Err(e) => Err(e),
        };
        Ok(Response::new(match result {
            Ok(response) => v1::HttpReply {
                error: None,
                status: u32::from(response.status),
                headers: response
                    .headers
                    .into_iter()
                    .map(|(name, value)| v1::HttpHeader { name, value })
                    .collect(),
                body: response.body,
            },
            Err(e) => v1::HttpReply {
                error: Some(e),
                ..Default::default()
            },
        }))
    }

    async fn emit_event(
        &self,
        request: Request<v1::EmitEventRequest>,
    ) -> Result<Response<v1::HostReply>, Status> {
        let r = request.into_inner();
        Ok(Response::new(match self.scope(r.call_id) {
            Ok(scope) => host_reply(
                self.boundary
                    .emit_event_json(&scope, &r.topic, &r.payload_json)
                    .await,
            ),
            Err(e) => v1::HostReply { error: Some(e) },
        }))
    }
}
