//! Serving a [`Plugin`] as a process plugin (`runtime.kind = "process"`):
//! the same trait as a component plugin, run as a native executable that
//! speaks `tenon.plugin.v1` over gRPC on a Unix socket (feature `process`,
//! native targets only). See `docs/process.md` in the Tenon repository.
//!
//! ```no_run
//! use tenon_pdk::{Config, Error, Plugin};
//!
//! struct Quiet;
//! impl Plugin for Quiet {
//!     fn activate(_: Config) -> Result<Self, Error> {
//!         Ok(Quiet)
//!     }
//! }
//!
//! fn main() {
//!     std::process::exit(tenon_pdk::process::serve::<Quiet>());
//! }
//! ```
//!
//! The plugin value lives on one thread of its own, so a [`Plugin`] need not
//! be `Send`, and calls reach it one at a time, as in a component instance.
//! The host API ([`crate::host`]) works during a call exactly as in a
//! component: each request goes back to the host over its socket, quoting
//! the call it belongs to.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::mpsc;

use tenon_plugin_proto::handshake::{self, Handshake};
use tenon_plugin_proto::health::health_check_response::ServingStatus;
use tenon_plugin_proto::health::health_server::{Health, HealthServer};
use tenon_plugin_proto::health::{HealthCheckRequest, HealthCheckResponse};
use tenon_plugin_proto::v1;
use tenon_plugin_proto::v1::host_api_client::HostApiClient;
use tenon_plugin_proto::v1::runner_server::{Runner, RunnerServer};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::export;
use crate::host::http::{Request as HttpRequest, Response as HttpResponse};
use crate::host::log::Level;
use crate::{Error, HookAction, HookContext, HostError, Plugin};

/// Serves `P` until the host ends the process. Returns an exit code only
/// when it cannot serve (started by hand, no common protocol version, no
/// socket); the reason is on stderr.
pub fn serve<P: Plugin>() -> i32 {
    match try_serve::<P>() {
        Ok(()) => 0,
        Err(message) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("{message}");
            }
            1
        }
    }
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| {
        format!(
            "this program is a Tenon process plugin: a Tenon host starts it (`{name}` is not set)"
        )
    })
}

fn try_serve<P: Plugin>() -> Result<(), String> {
    if env(handshake::MAGIC_COOKIE_KEY)? != handshake::MAGIC_COOKIE_VALUE {
        return Err(
            "this program is a Tenon process plugin: a Tenon host starts it (wrong magic cookie)"
                .to_owned(),
        );
    }
    let offered = env(handshake::PROTOCOL_VERSIONS_ENV)?;
    let Some(app) = handshake::negotiate(&offered, handshake::APP_PROTOCOL_VERSIONS) else {
        return Err(format!(
            "the host offers protocol versions {offered}; this plugin speaks {}",
            handshake::offer(handshake::APP_PROTOCOL_VERSIONS)
        ));
    };
    let socket_dir = env(handshake::SOCKET_DIR_ENV)?;
    let host_socket = env(handshake::HOST_SOCKET_ENV)?;
    let socket = format!("{socket_dir}/plugin.sock");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let handle = runtime.handle().clone();
    runtime.block_on(async move {
        let listener = tokio::net::UnixListener::bind(&socket)
            .map_err(|e| format!("cannot listen on `{socket}`: {e}"))?;
        let host = connect_host(host_socket);
        let _ = HOST.set((handle, host));
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tenon-plugin".to_owned())
            .spawn(move || plugin_thread::<P>(queue))
            .map_err(|e| format!("cannot start the plugin thread: {e}"))?;
        let handshake = Handshake {
            core: handshake::CORE_PROTOCOL_VERSION,
            app,
            socket: socket.clone(),
        };
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{handshake}")
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot print the handshake: {e}"))?;
        }
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        tonic::transport::Server::builder()
            .add_service(HealthServer::new(Serving))
            .add_service(
                RunnerServer::new(Service { jobs })
                    .max_decoding_message_size(usize::MAX)
                    .max_encoding_message_size(usize::MAX),
            )
            .serve_with_incoming(incoming)
            .await
            .map_err(|e| format!("the gRPC server failed: {e}"))
    })
}

fn connect_host(path: String) -> HostApiClient<Channel> {
    let channel = tonic::transport::Endpoint::from_static("http://host.invalid")
        .connect_with_connector_lazy(tower::service_fn(move |_: tonic::codegen::http::Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }));
    HostApiClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX)
}

static HOST: OnceLock<(tokio::runtime::Handle, HostApiClient<Channel>)> = OnceLock::new();

thread_local! {
    /// The host call being handled on this (the plugin's) thread.
    static CALL: Cell<Option<u64>> = const { Cell::new(None) };
}

struct Serving;

#[tonic::async_trait]
impl Health for Serving {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        let status = if service.is_empty() || service == handshake::HEALTH_SERVICE {
            ServingStatus::Serving
        } else {
            ServingStatus::ServiceUnknown
        };
        Ok(Response::new(HealthCheckResponse {
            status: status as i32,
        }))
    }
}

enum Work {
    Activate(String),
    Configure(String),
    Deactivate,
    Hook(String, HookContext, String),
    Call(String, Vec<u8>),
    Snapshot,
    Restore(Vec<u8>),
}

enum Done {
    Unit(Result<(), Error>),
    Hook(Result<HookAction, Error>),
    Bytes(Result<Vec<u8>, Error>),
    Snapshot(Result<Option<Vec<u8>>, Error>),
}

type Job = (u64, Work, oneshot::Sender<Done>);

fn plugin_thread<P: Plugin>(queue: mpsc::Receiver<Job>) {
    for (call, work, reply) in queue {
        CALL.set(Some(call));
        let done = match work {
            Work::Activate(config) => Done::Unit(export::activate::<P>(&config)),
            Work::Configure(config) => Done::Unit(export::configure::<P>(&config)),
            Work::Deactivate => Done::Unit(export::deactivate::<P>()),
            Work::Hook(hook, context, data) => {
                Done::Hook(export::handle_hook::<P>(&hook, &context, data))
            }
            Work::Call(function, input) => Done::Bytes(export::call::<P>(&function, &input)),
            Work::Snapshot => Done::Snapshot(export::snapshot::<P>()),
            Work::Restore(state) => Done::Unit(export::restore::<P>(state)),
        };
        CALL.set(None);
        let _ = reply.send(done);
    }
}

struct Service {
    jobs: mpsc::Sender<Job>,
}

fn plugin_error(e: Error) -> v1::PluginError {
    v1::PluginError {
        code: e.code().to_owned(),
        message: e.message().to_owned(),
    }
}

impl Service {
    async fn run(&self, call: Option<v1::CallInfo>, work: Work) -> Result<Done, Status> {
        let id = call.map_or(0, |c| c.call_id);
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send((id, work, tx))
            .map_err(|_| Status::unavailable("the plugin thread has stopped"))?;
        rx.await
            .map_err(|_| Status::internal("the plugin thread panicked"))
    }

    async fn unit(
        &self,
        call: Option<v1::CallInfo>,
        work: Work,
    ) -> Result<Response<v1::Reply>, Status> {
        match self.run(call, work).await? {
            Done::Unit(r) => Ok(Response::new(v1::Reply {
                error: r.err().map(plugin_error),
            })),
            _ => Err(Status::internal("mismatched reply")),
        }
    }
}

#[tonic::async_trait]
impl Runner for Service {
    async fn load(
        &self,
        _request: Request<v1::LoadRequest>,
    ) -> Result<Response<v1::LoadReply>, Status> {
        Ok(Response::new(v1::LoadReply {
            error: None,
            sdk: concat!("tenon-pdk ", env!("CARGO_PKG_VERSION")).to_owned(),
        }))
    }

    async fn activate(
        &self,
        request: Request<v1::ConfigRequest>,
    ) -> Result<Response<v1::Reply>, Status> {
        let r = request.into_inner();
        self.unit(r.call, Work::Activate(r.config_json)).await
    }

    async fn configure(
        &self,
        request: Request<v1::ConfigRequest>,
    ) -> Result<Response<v1::Reply>, Status> {
        let r = request.into_inner();
        self.unit(r.call, Work::Configure(r.config_json)).await
    }

    async fn deactivate(
        &self,
        request: Request<v1::DeactivateRequest>,
    ) -> Result<Response<v1::Reply>, Status> {
        self.unit(request.into_inner().call, Work::Deactivate).await
    }

    async fn handle_hook(
        &self,
        request: Request<v1::HookRequest>,
    ) -> Result<Response<v1::HookReply>, Status> {
        let r = request.into_inner();
        let c = r.context.unwrap_or_default();
        let context = HookContext {
            execution_id: c.execution_id,
            tenant: c.tenant,
            user_id: c.user_id,
            session_id: c.session_id,
            timestamp_ms: c.timestamp_ms,
            state: c.state_json,
        };
        let Done::Hook(result) = self
            .run(r.call, Work::Hook(r.hook, context, r.data_json))
            .await?
        else {
            return Err(Status::internal("mismatched reply"));
        };
        use v1::hook_reply::Outcome;
        Ok(Response::new(match result {
            Ok(HookAction::Continue { patch }) => v1::HookReply {
                error: None,
                outcome: Some(Outcome::Continue(v1::Continue {
                    patch_json: patch.map(|p| p.to_string()),
                })),
            },
            Ok(HookAction::Block { reason }) => v1::HookReply {
                error: None,
                outcome: Some(Outcome::Block(v1::Block { reason })),
            },
            Err(e) => v1::HookReply {
                error: Some(plugin_error(e)),
                outcome: None,
            },
        }))
    }

    async fn call(
        &self,
        request: Request<v1::CallRequest>,
    ) -> Result<Response<v1::CallReply>, Status> {
        let r = request.into_inner();
        let Done::Bytes(result) = self.run(r.call, Work::Call(r.function, r.input)).await? else {
            return Err(Status::internal("mismatched reply"));
        };
        Ok(Response::new(match result {
            Ok(output) => v1::CallReply {
                error: None,
                output,
            },
            Err(e) => v1::CallReply {
                error: Some(plugin_error(e)),
                output: Vec::new(),
            },
        }))
    }

    async fn snapshot(
        &self,
        request: Request<v1::SnapshotRequest>,
    ) -> Result<Response<v1::SnapshotReply>, Status> {
        let Done::Snapshot(result) = self.run(request.into_inner().call, Work::Snapshot).await?
        else {
            return Err(Status::internal("mismatched reply"));
        };
        Ok(Response::new(match result {
            Ok(state) => v1::SnapshotReply { error: None, state },
            Err(e) => v1::SnapshotReply {
                error: Some(plugin_error(e)),
                state: None,
            },
        }))
    }

    async fn restore(
        &self,
        request: Request<v1::RestoreRequest>,
    ) -> Result<Response<v1::Reply>, Status> {
        let r = request.into_inner();
        self.unit(r.call, Work::Restore(r.state)).await
    }
}

// ---- the host API, as `sys` reaches it in a process plugin ----

/// Whether this thread is handling a host call of a process plugin.
pub(crate) fn in_call() -> bool {
    HOST.get().is_some() && CALL.get().is_some()
}

fn host_error(e: Option<v1::HostError>) -> Result<(), HostError> {
    let Some(e) = e else { return Ok(()) };
    use v1::host_error::Kind;
    let message = e.message;
    Err(match Kind::try_from(e.kind).unwrap_or(Kind::Unavailable) {
        Kind::PermissionDenied => HostError::PermissionDenied(message),
        Kind::QuotaExceeded => HostError::QuotaExceeded(message),
        Kind::Timeout => HostError::Timeout(message),
        Kind::InvalidInput => HostError::InvalidInput(message),
        Kind::Unavailable | Kind::Unspecified => HostError::Unavailable(message),
    })
}

fn with_host<T, Fut>(f: impl FnOnce(HostApiClient<Channel>, u64) -> Fut) -> Result<T, HostError>
where
    Fut: Future<Output = Result<T, Status>>,
{
    let (Some((handle, client)), Some(call)) = (HOST.get(), CALL.get()) else {
        return Err(HostError::Unavailable(
            "no call of the host is in progress".to_owned(),
        ));
    };
    handle
        .block_on(f(client.clone(), call))
        .map_err(|s| HostError::Unavailable(format!("the host connection failed: {}", s.message())))
}

pub(crate) fn log(level: Level, message: &str, fields: &[(String, String)]) {
    use v1::log_request::Level as L;
    let level = match level {
        Level::Trace => L::Trace,
        Level::Debug => L::Debug,
        Level::Info => L::Info,
        Level::Warn => L::Warn,
        Level::Error => L::Error,
    };
    let request = |call_id| v1::LogRequest {
        call_id,
        level: level as i32,
        message: message.to_owned(),
        fields: fields
            .iter()
            .map(|(key, value)| v1::LogField {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
    };
    let _ = with_host(|mut c, id| async move { c.log(request(id)).await.map(|_| ()) });
}

pub(crate) fn config_get(key: &str) -> Result<Option<String>, HostError> {
    let key = key.to_owned();
    let reply = with_host(|mut c, call_id| async move {
        c.get_config(v1::ConfigGetRequest { call_id, key })
            .await
            .map(Response::into_inner)
    })?;
    host_error(reply.error)?;
    Ok(reply.value_json)
}

pub(crate) fn kv_get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
    let key = key.to_owned();
    let reply = with_host(|mut c, call_id| async move {
        c.kv_get(v1::KvGetRequest { call_id, key })
            .await
            .map(Response::into_inner)
    })?;
    host_error(reply.error)?;
    Ok(reply.value)
}

pub(crate) fn kv_set(key: &str, value: &[u8]) -> Result<(), HostError> {
    let (key, value) = (key.to_owned(), value.to_vec());
    let reply = with_host(|mut c, call_id| async move {
        c.kv_set(v1::KvSetRequest {
            call_id,
            key,
            value,
        })
        .await
        .map(Response::into_inner)
    })?;
    host_error(reply.error)
}

pub(crate) fn kv_delete(key: &str) -> Result<(), HostError> {
    let key = key.to_owned();
    let reply = with_host(|mut c, call_id| async move {
        c.kv_delete(v1::KvDeleteRequest { call_id, key })
            .await
            .map(Response::into_inner)
    })?;
    host_error(reply.error)
}

pub(crate) fn kv_list(prefix: &str) -> Result<Vec<String>, HostError> {
    let prefix = prefix.to_owned();
    let reply = with_host(|mut c, call_id| async move {
        c.kv_list(v1::KvListRequest { call_id, prefix })
            .await
            .map(Response::into_inner)
    })?;
    host_error(reply.error)?;
    Ok(reply.keys)
}

pub(crate) fn http_request(request: HttpRequest) -> Result<HttpResponse, HostError> {
    let reply = with_host(|mut c, call_id| async move {
        c.http_request(v1::HttpRequestMessage {
            call_id,
            method: request.method,
            url: request.url,
            headers: request
                .headers
                .into_iter()
                .map(|(name, value)| v1::HttpHeader { name, value })
                .collect(),
            body: request.body,
        })
        .await
        .map(Response::into_inner)
    })?;
    host_error(reply.error)?;
    Ok(HttpResponse {
        status: u16::try_from(reply.status).unwrap_or(u16::MAX),
        headers: reply
            .headers
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect(),
        body: reply.body,
    })
}

pub(crate) fn emit_event(topic: &str, payload: &str) -> Result<(), HostError> {
    let (topic, payload_json) = (topic.to_owned(), payload.to_owned());
    let reply = with_host(|mut c, call_id| async move {
        c.emit_event(v1::EmitEventRequest {
            call_id,
            topic,
            payload_json,
        })
        .await
        .map(Response::into_inner)
    })?;
    host_error(reply.error)
}
