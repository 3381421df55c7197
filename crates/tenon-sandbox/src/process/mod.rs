//! The process runtime (feature `process`): plugins that are executables,
//! run as operating-system processes and spoken to over gRPC on Unix domain
//! sockets (`tenon.plugin.v1`, crate `tenon-plugin-proto`), behind the same
//! [`Runtime`]/[`Plugin`] contract and the same permission [`Boundary`] as
//! the other runtimes.
//!
//! One load makes a private directory (owner-only) holding the executable
//! (the stored artifact's bytes), the process's working directory and its
//! socket directory. [`Plugin::start`] checks the executable's sha256
//! against the artifact, starts it with an empty environment except the
//! handshake's variables (`tenon_plugin_proto::handshake`), stdin from
//! `/dev/null` and stdout and stderr piped, in its own process group, killed
//! with the host (`PR_SET_PDEATHSIG`), under resource limits
//! ([`SandboxLayer`]). It reads the handshake line within
//! [`ProcessConfig::start_timeout`], connects, checks `grpc.health.v1`, and
//! serves `tenon.plugin.v1.HostApi` back on a second socket in the same
//! directory. Every host request the plugin makes quotes the id of the call
//! it handles and crosses the [`Boundary`] with that call's scope.
//!
//! A process that times out, breaks the connection or exits is killed with
//! its whole process group and never called again. The next call starts a
//! new process (with the config the plugin last had), after a backoff that
//! doubles with every death in a row ([`ProcessConfig::restart_backoff`]);
//! each death is the failing call's error, which the engine's crash guard
//! counts, so a process that keeps dying is disabled. A stopped plugin is
//! not restarted. Dropping the plugin kills the group. See
//! `docs/process.md`.

mod host_api;
mod spawn;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tenon_manifest::{Isolation, RuntimeKind};
use tenon_plugin_proto::handshake::{self, Handshake};
use tenon_plugin_proto::health::health_client::HealthClient;
use tenon_plugin_proto::health::{HealthCheckRequest, health_check_response::ServingStatus};
use tenon_plugin_proto::v1;
use tenon_plugin_proto::v1::host_api_server::HostApiServer;
use tenon_plugin_proto::v1::runner_client::RunnerClient;
use tokio::io::AsyncReadExt;
use tokio::sync::Semaphore;
use tonic::transport::{Channel, Endpoint};

use self::host_api::{Calls, HostService};
use self::spawn::{Limit, LimitKind, Spawn};
use crate::boundary::{Boundary, CallScope, OutputStream};
use crate::config::SandboxConfig;
use crate::error::{ProcessFailure, SandboxError};
use crate::host::Caller;
use crate::limits::{MAX_ERROR_CODE, answer_limit, check_answer, cut_owned, transfer_limit};
use crate::runtime::{
    CallOptions, Health, HookCall, HookResponse, LoadRequest, Plugin, ResourceStats, Runtime,
};
use crate::stats::HealthState;

/// The plugin API version the process runtime serves.
pub const API_VERSION: &str = "1.0.0";

/// The process runtime's own settings (the host policy is the
/// [`SandboxConfig`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProcessConfig {
    /// Where each load's private directory is made. Its path must leave
    /// room for a socket name within the 107 bytes of a Unix socket path.
    /// Default: the system's temporary directory.
    pub work_root: PathBuf,
    /// How long a plugin has from `exec` to a healthy gRPC server (the
    /// handshake line, the connection and the health check). Default: 10 s.
    pub start_timeout: Duration,
    /// How much of the end of a plugin's stderr is kept to quote in errors,
    /// in bytes. Default: 4 KiB.
    pub stderr_tail: usize,
    /// Added to `limits.memory` to make the address-space limit
    /// (`RLIMIT_AS`): room for the executable's code, thread stacks and the
    /// allocator's reservations, which count as address space without being
    /// memory in use. Default: 256 MiB.
    pub address_space_allowance: u64,
    /// `RLIMIT_CPU`: CPU seconds a plugin process may use in its lifetime
    /// (SIGXCPU, then SIGKILL). Default: none.
    pub cpu_seconds: Option<u64>,
    /// `RLIMIT_NOFILE`: descriptors a plugin process may hold. Default: 256.
    pub open_files: u64,
    /// `RLIMIT_NPROC`: processes and threads of the plugin's *user* (the
    /// kernel counts per user, so with the host's user this includes the
    /// host's own). Default: none.
    pub processes: Option<u64>,
    /// How long after a process died the next call may start a new one;
    /// doubled with every death in a row, up to
    /// [`ProcessConfig::restart_backoff_max`]. A process that lived longer
    /// than that maximum starts the count again. Default: 100 ms.
    pub restart_backoff: Duration,
    /// The longest backoff between restarts. Default: 30 s.
    pub restart_backoff_max: Duration,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        Self {
            work_root: std::env::temp_dir(),
            start_timeout: Duration::from_secs(10),
            stderr_tail: 4 * 1024,
            address_space_allowance: 256 * 1024 * 1024,
            cpu_seconds: None,
            open_files: 256,
            processes: None,
            restart_backoff: Duration::from_millis(100),
            restart_backoff_max: Duration::from_secs(30),
        }
    }
}

/// One layer of a process plugin's OS sandbox, as applied (or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLayer {
    /// The layer (`environment`, `RLIMIT_AS`, `landlock`…).
    pub name: &'static str,
    /// Whether it is in force.
    pub applied: bool,
    /// What it does, or why it is not in force.
    pub detail: String,
}

/// Runs process plugins.
#[derive(Debug, Clone)]
pub struct ProcessRuntime {
    sandbox: Arc<SandboxConfig>,
    config: Arc<ProcessConfig>,
}

impl ProcessRuntime {
    /// A runtime under the host policy `sandbox`.
    pub fn new(sandbox: SandboxConfig, config: ProcessConfig) -> Self {
        Self {
            sandbox: Arc::new(sandbox),
            config: Arc::new(config),
        }
    }
}

#[async_trait]
impl Runtime for ProcessRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Process
    }

    async fn load(&self, request: LoadRequest) -> Result<Arc<dyn Plugin>, SandboxError> {
        Ok(self.load_process(request)?)
    }
}

impl ProcessRuntime {
    /// [`Runtime::load`], keeping the plugin's type (for its
    /// [`ProcessPlugin::sandbox_layers`] and [`ProcessPlugin::pid`]).
    pub fn load_process(&self, request: LoadRequest) -> Result<Arc<ProcessPlugin>, SandboxError> {
        Ok(Arc::new(ProcessPlugin::load(self, request)?))
    }
}

/// A loaded process plugin.
pub struct ProcessPlugin {
    name: String,
    boundary: Arc<Boundary>,
    calls: Arc<Calls>,
    config: Arc<ProcessConfig>,
    sandbox: Arc<SandboxConfig>,
    /// Removed (with everything in it) when the plugin is dropped.
    _dir: tempfile::TempDir,
    executable: PathBuf,
    work: PathBuf,
    sockets: PathBuf,
    digest: [u8; 32],
    args: Vec<String>,
    limits: Vec<Limit>,
    layers: Vec<SandboxLayer>,
    timeout: Duration,
    answer_limit: u64,
    running: Mutex<Option<Arc<Running>>>,
    /// The config the process was last activated or configured with; a
    /// process that died is restarted with it. `None` before the first start
    /// and after a stop: a stopped plugin is not restarted.
    restart_config: Mutex<Option<serde_json::Value>>,
    /// The deaths in a row and when the next process may start.
    backoff: Mutex<Backoff>,
    lifecycle: tokio::sync::Mutex<()>,
    health: HealthState,
    permits: Semaphore,
    max_instances: u32,
    wait_timeout: Duration,
}

impl std::fmt::Debug for ProcessPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPlugin")
            .field("plugin", &self.name)
            .field("executable", &self.executable)
            .finish_non_exhaustive()
    }
}

fn host_failure(plugin: &str, what: &str, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Host {
        plugin: plugin.to_owned(),
        message: format!("{what}: {e}"),
    }
}

impl ProcessPlugin {
    fn load(runtime: &ProcessRuntime, request: LoadRequest) -> Result<Self, SandboxError> {
        let manifest = &request.manifest;
        let name = manifest.plugin.id.to_string();
        let unsupported = |message: String| SandboxError::Unsupported {
            plugin: name.clone(),
            message,
        };
        if manifest.runtime.kind != RuntimeKind::Process {
            return Err(unsupported(format!(
                "the process runtime cannot run a `{}` plugin",
                manifest.runtime.kind
            )));
        }
        let Some(command) = manifest.runtime.command.as_deref() else {
            return Err(unsupported(
                "a process plugin needs runtime.command".to_owned(),
            ));
        };
        if request.module.is_empty() {
            return Err(unsupported(format!("its executable `{command}` is empty")));
        }
        let limits = &manifest.limits;
        if limits.isolation == Isolation::Fresh {
            return Err(unsupported(
                "limits.isolation = \"fresh\" is not supported by the process runtime: one process serves every call".to_owned(),
            ));
        }
        let answer = answer_limit(&runtime.sandbox, limits, &name)?;
        let config = runtime.config.clone();
        let dir = tempfile::Builder::new()
            .prefix("tenon-p-")
            .tempdir_in(&config.work_root)
            .map_err(|e| host_failure(&name, "creating its private directory", e))?;
        let file_name = Path::new(command)
            .file_name()
            .map(|n| n.to_owned())
            .unwrap_or_else(|| "plugin".into());
        let (bin, work, sockets) = (
            dir.path().join("bin"),
            dir.path().join("work"),
            dir.path().join("s"),
        );
        for d in [&bin, &work, &sockets] {
            create_private_dir(d)
                .map_err(|e| host_failure(&name, "creating its directories", e))?;
        }
        if sockets.join("plugin.sock").as_os_str().len() > handshake::MAX_SOCKET_PATH {
            return Err(host_failure(
                &name,
                "its socket directory",
                format!(
                    "`{}` is too long for a Unix socket path; choose a shorter ProcessConfig::work_root",
                    sockets.display()
                ),
            ));
        }
        let executable = bin.join(file_name);
        write_executable(&executable, &request.module)
            .map_err(|e| host_failure(&name, "writing its executable", e))?;
        let digest: [u8; 32] = Sha256::digest(&request.module).into();
        let (rlimits, layers) = plan_layers(&config, limits.memory.bytes());
        let boundary = Arc::new(Boundary::new(&request, runtime.sandbox.clone()));
        Ok(Self {
            boundary,
            calls: Arc::default(),
            sandbox: runtime.sandbox.clone(),
            config,
            _dir: dir,
            executable,
            work,
            sockets,
            digest,
            args: manifest.runtime.args.clone(),
            limits: rlimits,
            layers,
            timeout: limits.timeout.get(),
            answer_limit: answer,
            running: Mutex::new(None),
            restart_config: Mutex::new(None),
            backoff: Mutex::new(Backoff::default()),
            lifecycle: tokio::sync::Mutex::new(()),
            health: HealthState::default(),
            permits: Semaphore::new(limits.max_instances.max(1) as usize),
            max_instances: limits.max_instances.max(1),
            wait_timeout: limits.wait_timeout.get(),
            name,
        })
    }

    /// The OS sandbox layers of this plugin's process: what is in force and
    /// what could not be applied, with why.
    pub fn sandbox_layers(&self) -> &[SandboxLayer] {
        &self.layers
    }

    /// Where its executable was written (the stored artifact's bytes,
    /// checked against their sha256 before every start).
    pub fn executable(&self) -> &Path {
        &self.executable
    }

    /// The process id of the running plugin process, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.running.lock().as_ref().map(|r| r.pgid)
    }

    fn failure(&self, cause: ProcessFailure, message: impl Into<String>) -> SandboxError {
        SandboxError::Process {
            plugin: self.name.clone(),
            cause,
            message: message.into(),
        }
    }

    /// Starts the process and brings it to a healthy, loaded state.
    async fn launch(&self) -> Result<Arc<Running>, SandboxError> {
        let on_disk = tokio::fs::read(&self.executable)
            .await
            .map_err(|e| host_failure(&self.name, "reading its executable", e))?;
        let found: [u8; 32] = Sha256::digest(&on_disk).into();
        if found != self.digest {
            return Err(self.failure(
                ProcessFailure::Tampered,
                format!(
                    "`{}` has sha256 {}, not the stored artifact's {}; it was not started",
                    self.executable.display(),
                    hex::encode(found),
                    hex::encode(self.digest)
                ),
            ));
        }
        drop(on_disk);
        let host_socket = self.sockets.join("host.sock");
        // A previous process's sockets (the host owns the directory).
        let _ = std::fs::remove_file(&host_socket);
        let _ = std::fs::remove_file(self.sockets.join("plugin.sock"));
        let listener = tokio::net::UnixListener::bind(&host_socket)
            .map_err(|e| host_failure(&self.name, "listening for its host calls", e))?;
        let limit = transfer_limit(&self.sandbox, self.answer_limit);
        let service = HostApiServer::new(HostService {
            boundary: self.boundary.clone(),
            calls: self.calls.clone(),
        })
        .max_decoding_message_size(limit);
        let host_server = tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        let env = vec![
            (
                handshake::MAGIC_COOKIE_KEY.to_owned(),
                handshake::MAGIC_COOKIE_VALUE.to_owned(),
            ),
            (
                handshake::PROTOCOL_VERSIONS_ENV.to_owned(),
                handshake::offer(handshake::APP_PROTOCOL_VERSIONS),
            ),
            (
                handshake::SOCKET_DIR_ENV.to_owned(),
                self.sockets.display().to_string(),
            ),
            (
                handshake::HOST_SOCKET_ENV.to_owned(),
                host_socket.display().to_string(),
            ),
        ];
        let spawn = Spawn {
            program: self.executable.clone(),
            args: self.args.clone(),
            cwd: self.work.clone(),
            env,
            limits: self.limits.clone(),
        };
        let mut child = match tokio::task::spawn_blocking(move || spawn::spawn(spawn)).await {
            Ok(Ok(child)) => child,
            Ok(Err(e)) => {
                host_server.abort();
                return Err(self.failure(ProcessFailure::Spawn, e.to_string()));
            }
            Err(e) => {
                host_server.abort();
                return Err(host_failure(&self.name, "starting its process", e));
            }
        };
        let pgid = child.id();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let tail = Arc::new(Tail::new(self.config.stderr_tail));
        let mut running = Running {
            pgid,
            started: Instant::now(),
            child: Mutex::new(Some(child)),
            client: None,
            tail: tail.clone(),
            tasks: vec![host_server],
        };
        if let Some(stderr) = stderr.and_then(|s| tokio::process::ChildStderr::from_std(s).ok()) {
            running.tasks.push(tokio::spawn(forward_output(
                stderr,
                self.boundary.clone(),
                OutputStream::Stderr,
                Some(tail),
            )));
        }
        let Some(mut stdout) = stdout.and_then(|s| tokio::process::ChildStdout::from_std(s).ok())
        else {
            return Err(host_failure(&self.name, "reading its stdout", "no pipe"));
        };
        let deadline = tokio::time::Instant::now() + self.config.start_timeout;
        let line = match tokio::time::timeout_at(deadline, read_line(&mut stdout)).await {
            Err(_) => {
                return Err(self
                    .abandon(
                        running,
                        ProcessFailure::StartTimeout,
                        format!(
                            "printed no handshake line within {:?}",
                            self.config.start_timeout
                        ),
                    )
                    .await);
            }
            Ok(Err(LineError::Closed(partial))) => {
                let said = if partial.is_empty() {
                    String::new()
                } else {
                    format!(" after printing `{}`", lossy(&partial, 200))
                };
                let cause = ProcessFailure::Exited;
                let message = format!("closed its stdout before the handshake{said}");
                return Err(self.abandon(running, cause, message).await);
            }
            Ok(Err(LineError::TooLong)) => {
                let message = format!(
                    "its handshake line is longer than {} bytes",
                    handshake::MAX_LINE
                );
                return Err(self
                    .abandon(running, ProcessFailure::Handshake, message)
                    .await);
            }
            Ok(Ok(line)) => line,
        };
        let hs = match Handshake::parse(&line, handshake::APP_PROTOCOL_VERSIONS) {
            Ok(hs) => hs,
            Err(e) => {
                let message = format!("its handshake line `{}`: {e}", lossy(&line, 200));
                return Err(self
                    .abandon(running, ProcessFailure::Handshake, message)
                    .await);
            }
        };
        if Path::new(&hs.socket).parent() != Some(self.sockets.as_path()) {
            let message = format!(
                "its socket `{}` is not in its socket directory `{}`",
                hs.socket,
                self.sockets.display()
            );
            return Err(self
                .abandon(running, ProcessFailure::Handshake, message)
                .await);
        }
        running.tasks.push(tokio::spawn(forward_output(
            stdout,
            self.boundary.clone(),
            OutputStream::Stdout,
            None,
        )));
        let client = match tokio::time::timeout_at(deadline, connect(&hs.socket)).await {
            Ok(Ok(channel)) => channel,
            Ok(Err(e)) => {
                let message = format!("cannot connect to `{}`: {e}", hs.socket);
                return Err(self
                    .abandon(running, ProcessFailure::Connect, message)
                    .await);
            }
            Err(_) => {
                let message = format!(
                    "its socket `{}` accepted no connection within {:?}",
                    hs.socket, self.config.start_timeout
                );
                return Err(self
                    .abandon(running, ProcessFailure::StartTimeout, message)
                    .await);
            }
        };
        let mut health_client = HealthClient::new(client.clone());
        let health = health_client.check(HealthCheckRequest {
            service: handshake::HEALTH_SERVICE.to_owned(),
        });
        match tokio::time::timeout_at(deadline, health).await {
            Ok(Ok(reply)) if reply.get_ref().status == ServingStatus::Serving as i32 => {}
            Ok(Ok(reply)) => {
                let status = ServingStatus::try_from(reply.get_ref().status)
                    .map(|s| s.as_str_name())
                    .unwrap_or("an unknown status");
                let message = format!("its health service reports {status}");
                return Err(self.abandon(running, ProcessFailure::Health, message).await);
            }
            Ok(Err(status)) => {
                let message = format!("its health check failed: {}", status.message());
                return Err(self.abandon(running, ProcessFailure::Health, message).await);
            }
            Err(_) => {
                let message = "its health check did not answer in time".to_owned();
                return Err(self
                    .abandon(running, ProcessFailure::StartTimeout, message)
                    .await);
            }
        }
        let decode_limit = usize::try_from(self.answer_limit)
            .unwrap_or(usize::MAX)
            .saturating_add(4096);
        running.client = Some(
            RunnerClient::new(client)
                .max_decoding_message_size(decode_limit)
                .max_encoding_message_size(usize::MAX),
        );
        for layer in self.layers.iter().filter(|l| !l.applied) {
            let scope = CallScope::new(Duration::from_secs(1));
            self.boundary.log(
                &scope,
                crate::host::LogLevel::Warn,
                &format!(
                    "sandbox layer `{}` not applied: {}",
                    layer.name, layer.detail
                ),
                &[],
            );
        }
        Ok(Arc::new(running))
    }

    /// Kills a process that failed to start and says why, quoting its stderr.
    async fn abandon(
        &self,
        running: Running,
        cause: ProcessFailure,
        message: String,
    ) -> SandboxError {
        let (status, stderr) = running.finish().await;
        self.failure(cause, describe(message, status, &stderr))
    }

    fn current(&self) -> Result<Arc<Running>, SandboxError> {
        self.running
            .lock()
            .clone()
            .ok_or_else(|| SandboxError::NotRunning {
                plugin: self.name.clone(),
            })
    }

    /// Takes `running` out of service (if it still is) and kills it; the
    /// next call may start another after the backoff.
    async fn retire(&self, running: &Arc<Running>) -> (Option<String>, String) {
        let retired = {
            let mut slot = self.running.lock();
            let current = slot.as_ref().is_some_and(|r| Arc::ptr_eq(r, running));
            if current {
                *slot = None;
            }
            current
        };
        if retired {
            self.backoff.lock().died(
                running.started.elapsed(),
                self.config.restart_backoff,
                self.config.restart_backoff_max,
            );
        }
        self.health.stopped();
        running.kill_and_reap().await
    }

    /// Starts a new process when the last one died (not when the plugin was
    /// never started or was stopped), once its backoff has passed: waiting
    /// for it when it ends within half the call's `timeout`, failing at once
    /// otherwise.
    async fn revive(&self, timeout: Option<Duration>) -> Result<(), SandboxError> {
        if self.running.lock().is_some() {
            return Ok(());
        }
        let Some(config) = self.restart_config.lock().clone() else {
            return Ok(());
        };
        let (wait, deaths) = {
            let backoff = self.backoff.lock();
            (backoff.wait(), backoff.deaths)
        };
        if !wait.is_zero() {
            // Waiting is worth it only with time left to start and call.
            let timeout = timeout.map_or(self.timeout, |t| t.min(self.timeout));
            if wait > timeout / 2 {
                return Err(self.failure(
                    ProcessFailure::Exited,
                    format!(
                        "it died {deaths} time(s) in a row; the next process starts in {wait:?}"
                    ),
                ));
            }
            tokio::time::sleep(wait).await;
        }
        let _lifecycle = self.lifecycle.lock().await;
        if self.running.lock().is_some() || self.restart_config.lock().is_none() {
            // Another call restarted it, or it was stopped meanwhile.
            return Ok(());
        }
        if let Err(e) = self.start_locked(&config).await {
            // A process that cannot start counts as one more death.
            self.backoff.lock().died(
                Duration::ZERO,
                self.config.restart_backoff,
                self.config.restart_backoff_max,
            );
            return Err(e);
        }
        let scope = CallScope::new(Duration::from_secs(1));
        self.boundary.log(
            &scope,
            crate::host::LogLevel::Warn,
            &format!("its process was restarted after {deaths} death(s) in a row"),
            &[],
        );
        Ok(())
    }

    async fn rpc<T, F, Fut>(
        &self,
        what: &str,
        options: CallOptions,
        f: F,
    ) -> Result<T, SandboxError>
    where
        F: FnOnce(RunnerClient<Channel>, v1::CallInfo) -> Fut,
        Fut: Future<Output = Result<(Option<v1::PluginError>, T), tonic::Status>>,
    {
        let started = Instant::now();
        let result = self.rpc_inner(what, options, f).await;
        self.boundary
            .stats()
            .record_call(started.elapsed(), result.is_ok());
        if let Err(e) = &result {
            self.health.failed(e);
        }
        result
    }

    async fn rpc_inner<T, F, Fut>(
        &self,
        what: &str,
        options: CallOptions,
        f: F,
    ) -> Result<T, SandboxError>
    where
        F: FnOnce(RunnerClient<Channel>, v1::CallInfo) -> Fut,
        Fut: Future<Output = Result<(Option<v1::PluginError>, T), tonic::Status>>,
    {
        let plugin = self.name.clone();
        let _permit = match self.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => tokio::time::timeout(self.wait_timeout, self.permits.acquire())
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or_else(|| SandboxError::Busy {
                    plugin: plugin.clone(),
                    waited: self.wait_timeout,
                    max_instances: self.max_instances,
                })?,
        };
        let running = self.current()?;
        let Some(client) = running.client.clone() else {
            return Err(SandboxError::NotRunning { plugin });
        };
        let timeout = options
            .timeout
            .map_or(self.timeout, |t| t.min(self.timeout));
        let mut scope = CallScope::new(timeout);
        scope.reset_caused(scope.deadline(), options.cause);
        let call = self.calls.begin(scope);
        let info = v1::CallInfo {
            call_id: call.id,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        match tokio::time::timeout(timeout, f(client, info)).await {
            Err(_) => {
                self.retire(&running).await;
                Err(SandboxError::Timeout {
                    plugin,
                    after: timeout,
                })
            }
            Ok(Err(status)) if status.code() == tonic::Code::OutOfRange => {
                // tonic refused a reply over the decoding limit before
                // decoding it; the process is not trusted further.
                self.retire(&running).await;
                Err(SandboxError::OutputTooLarge {
                    plugin,
                    what: format!("its answer to {what}"),
                    size: None,
                    limit: self.answer_limit,
                })
            }
            Ok(Err(status)) => {
                let (exit, stderr) = self.retire(&running).await;
                let message = format!(
                    "the connection failed during {what} ({}: {})",
                    status.code(),
                    cut_owned(status.message().to_owned(), 512)
                );
                Err(self.failure(ProcessFailure::Exited, describe(message, exit, &stderr)))
            }
            Ok(Ok((Some(e), _))) => {
                let max = self.sandbox.max_error_message;
                let (code, message) =
                    (cut_owned(e.code, MAX_ERROR_CODE), cut_owned(e.message, max));
                Err(match call.scope.take_denial() {
                    Some(denial) => SandboxError::PermissionDenied {
                        plugin,
                        permission: denial.permission,
                        detail: format!(
                            "{} ({}); the plugin then failed: {code}: {message}",
                            denial.attempted, denial.reason
                        ),
                    },
                    None => SandboxError::Plugin {
                        plugin,
                        code,
                        message,
                    },
                })
            }
            Ok(Ok((None, value))) => Ok(value),
        }
    }

    async fn send_config(
        &self,
        activate: bool,
        config: &serde_json::Value,
    ) -> Result<(), SandboxError> {
        let config_json = config.to_string();
        let what = if activate { "activate" } else { "configure" };
        self.rpc(what, CallOptions::default(), |mut c, call| async move {
            let request = v1::ConfigRequest {
                call: Some(call),
                config_json,
            };
            let reply = if activate {
                c.activate(request).await?
            } else {
                c.configure(request).await?
            };
            Ok((reply.into_inner().error, ()))
        })
        .await
    }
}

impl Drop for ProcessPlugin {
    fn drop(&mut self) {
        if let Some(running) = self.running.get_mut().take() {
            running.kill_now();
        }
    }
}

#[async_trait]
impl Plugin for ProcessPlugin {
    fn caller(&self) -> &Arc<Caller> {
        self.boundary.caller()
    }

    async fn start(&self, config: &serde_json::Value) -> Result<(), SandboxError> {
        let _lifecycle = self.lifecycle.lock().await;
        // Started by its host: the deaths before no longer count.
        *self.backoff.lock() = Backoff::default();
        self.start_locked(config).await
    }

    async fn configure(&self, config: &serde_json::Value) -> Result<(), SandboxError> {
        self.revive(None).await?;
        self.send_config(false, config).await?;
        *self.restart_config.lock() = Some(config.clone());
        Ok(())
    }

    async fn handle_hook(&self, call: HookCall<'_>) -> Result<HookResponse, SandboxError> {
        self.revive(call.options.timeout).await?;
        self.hook(call).await
    }

    async fn call(
        &self,
        function: &str,
        input: &[u8],
        options: CallOptions,
    ) -> Result<Vec<u8>, SandboxError> {
        self.revive(options.timeout).await?;
        self.call_function(function, input, options).await
    }

    async fn snapshot(&self) -> Result<Option<Vec<u8>>, SandboxError> {
        self.revive(None).await?;
        self.take_snapshot().await
    }

    async fn restore(&self, state: &[u8]) -> Result<(), SandboxError> {
        self.revive(None).await?;
        self.give_state(state).await
    }

    async fn stop(&self) -> Result<(), SandboxError> {
        let _lifecycle = self.lifecycle.lock().await;
        *self.restart_config.lock() = None;
        if self.running.lock().is_none() {
            return Ok(());
        }
        let result = self
            .rpc(
                "deactivate",
                CallOptions::default(),
                |mut c, call| async move {
                    let reply = c
                        .deactivate(v1::DeactivateRequest { call: Some(call) })
                        .await?
                        .into_inner();
                    Ok((reply.error, ()))
                },
            )
            .await;
        self.stop_process().await;
        result
    }

    fn health(&self) -> Health {
        self.health.health()
    }

    fn stats(&self) -> ResourceStats {
        self.boundary.stats().snapshot()
    }
}

impl ProcessPlugin {
    /// Starts the process if none runs, then activates it with `config`;
    /// the caller holds the lifecycle lock.
    async fn start_locked(&self, config: &serde_json::Value) -> Result<(), SandboxError> {
        if self.running.lock().is_none() {
            let running = match self.launch().await {
                Ok(r) => r,
                Err(e) => {
                    self.health.failed(&e);
                    return Err(e);
                }
            };
            *self.running.lock() = Some(running);
            let caller = self.boundary.caller().clone();
            let loaded = self
                .rpc("load", CallOptions::default(), |mut c, call| async move {
                    let reply = c
                        .load(v1::LoadRequest {
                            call: Some(call),
                            plugin_id: caller.plugin.to_string(),
                            version: caller.version.to_string(),
                            tenant: caller.tenant.clone(),
                            api_version: API_VERSION.to_owned(),
                        })
                        .await?
                        .into_inner();
                    Ok((reply.error, ()))
                })
                .await;
            if let Err(e) = loaded {
                self.stop_process().await;
                return Err(e);
            }
        }
        match self.send_config(true, config).await {
            Ok(()) => {
                self.health.started();
                *self.restart_config.lock() = Some(config.clone());
                Ok(())
            }
            Err(e) => {
                self.stop_process().await;
                Err(e)
            }
        }
    }

    async fn hook(&self, call: HookCall<'_>) -> Result<HookResponse, SandboxError> {
        let context = call.context;
        let request = v1::HookRequest {
            call: None,
            hook: call.hook.to_owned(),
            context: Some(v1::HookContext {
                execution_id: context.execution_id.clone(),
                tenant: context.tenant.clone(),
                user_id: context.user_id.clone(),
                session_id: context.session_id.clone(),
                timestamp_ms: context.timestamp_ms,
                state_json: context.state.clone(),
            }),
            data_json: call.data.to_owned(),
        };
        let what = format!("handle_hook `{}`", call.hook);
        let outcome = self
            .rpc(&what, call.options, |mut c, info| async move {
                let reply = c
                    .handle_hook(v1::HookRequest {
                        call: Some(info),
                        ..request
                    })
                    .await?
                    .into_inner();
                Ok((reply.error, reply.outcome))
            })
            .await?;
        match outcome {
            Some(v1::hook_reply::Outcome::Continue(c)) => Ok(HookResponse::Continue {
                patch: c.patch_json,
            }),
            Some(v1::hook_reply::Outcome::Block(b)) => Ok(HookResponse::Block { reason: b.reason }),
            None => Err(SandboxError::Protocol {
                plugin: self.name.clone(),
                message: format!("its answer to {what} is neither continue nor block"),
            }),
        }
    }

    async fn call_function(
        &self,
        function: &str,
        input: &[u8],
        options: CallOptions,
    ) -> Result<Vec<u8>, SandboxError> {
        let (function, input) = (function.to_owned(), input.to_vec());
        let what = format!("call `{function}`");
        let output = self
            .rpc(&what, options, |mut c, call| async move {
                let reply = c
                    .call(v1::CallRequest {
                        call: Some(call),
                        function,
                        input,
                    })
                    .await?
                    .into_inner();
                Ok((reply.error, reply.output))
            })
            .await?;
        check_answer(
            &self.name,
            || format!("its answer to {what}"),
            output.len(),
            self.answer_limit,
        )?;
        Ok(output)
    }

    async fn take_snapshot(&self) -> Result<Option<Vec<u8>>, SandboxError> {
        let state = self
            .rpc(
                "snapshot",
                CallOptions::default(),
                |mut c, call| async move {
                    let reply = c
                        .snapshot(v1::SnapshotRequest { call: Some(call) })
                        .await?
                        .into_inner();
                    Ok((reply.error, reply.state))
                },
            )
            .await?;
        let len = state.as_ref().map_or(0, Vec::len);
        check_answer(
            &self.name,
            || "its snapshot".to_owned(),
            len,
            self.answer_limit,
        )?;
        Ok(state)
    }

    async fn give_state(&self, state: &[u8]) -> Result<(), SandboxError> {
        let state = state.to_vec();
        self.rpc(
            "restore",
            CallOptions::default(),
            |mut c, call| async move {
                let reply = c
                    .restore(v1::RestoreRequest {
                        call: Some(call),
                        state,
                    })
                    .await?
                    .into_inner();
                Ok((reply.error, ()))
            },
        )
        .await
    }

    async fn stop_process(&self) {
        let running = self.running.lock().take();
        self.health.stopped();
        if let Some(running) = running {
            running.kill_and_reap().await;
        }
    }
}

/// A started process and what serves it.
struct Running {
    pgid: u32,
    /// When it was spawned.
    started: Instant,
    child: Mutex<Option<Child>>,
    client: Option<RunnerClient<Channel>>,
    tail: Arc<Tail>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Kills the process group now, without waiting (and reaps it on a
    /// thread of its own).
    fn kill_now(&self) {
        spawn::kill_group(self.pgid);
        for task in &self.tasks {
            task.abort();
        }
        if let Some(mut child) = self.child.lock().take() {
            let _ = std::thread::Builder::new()
                .name("tenon-process-reaper".to_owned())
                .spawn(move || child.wait());
        }
    }

    /// Kills the process group, waits for the process and for its stderr
    /// to close (bounded), and returns its exit status and stderr's tail.
    async fn kill_and_reap(&self) -> (Option<String>, String) {
        let exited = self
            .child
            .lock()
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        spawn::kill_group(self.pgid);
        let child = self.child.lock().take();
        let status = match (exited, child) {
            (Some(status), _) => Some(status.to_string()),
            (None, Some(mut child)) => tokio::task::spawn_blocking(move || child.wait())
                .await
                .ok()
                .and_then(Result::ok)
                .map(|s| s.to_string()),
            (None, None) => None,
        };
        // Give the stderr forwarder a moment to read what the process wrote
        // before it died (it ends at end of file; bounded either way).
        let _ = tokio::time::timeout(Duration::from_millis(500), self.tail.closed()).await;
        for task in &self.tasks {
            task.abort();
        }
        (status, self.tail.text())
    }

    async fn finish(self) -> (Option<String>, String) {
        self.kill_and_reap().await
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// Deaths of a plugin's processes in a row, and when the next may start.
#[derive(Debug, Default)]
struct Backoff {
    deaths: u32,
    not_before: Option<Instant>,
}

impl Backoff {
    /// A process died after living `lived`: the next waits `initial`
    /// doubled for every death in a row, at most `max`; a process that
    /// lived longer than `max` starts the count again.
    fn died(&mut self, lived: Duration, initial: Duration, max: Duration) {
        self.deaths = if lived > max { 1 } else { self.deaths + 1 };
        let factor = 1u32 << (self.deaths - 1).min(20);
        let wait = initial.saturating_mul(factor).min(max);
        self.not_before = Some(Instant::now() + wait);
    }

    /// How long until the next process may start.
    fn wait(&self) -> Duration {
        self.not_before.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(Instant::now())
        })
    }
}

/// The end of a process's stderr, kept to quote in errors.
struct Tail {
    cap: usize,
    bytes: Mutex<std::collections::VecDeque<u8>>,
    closed: tokio::sync::Notify,
    is_closed: std::sync::atomic::AtomicBool,
}

impl Tail {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            bytes: Mutex::new(std::collections::VecDeque::new()),
            closed: tokio::sync::Notify::new(),
            is_closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn push(&self, data: &[u8]) {
        let mut bytes = self.bytes.lock();
        bytes.extend(data.iter().rev().take(self.cap).rev());
        let over = bytes.len().saturating_sub(self.cap);
        bytes.drain(..over);
    }

    fn close(&self) {
        self.is_closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.closed.notify_waiters();
    }

    async fn closed(&self) {
        loop {
            let notified = self.closed.notified();
            if self.is_closed.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    fn text(&self) -> String {
        let bytes: Vec<u8> = self.bytes.lock().iter().copied().collect();
        crate::limits::log_text(String::from_utf8_lossy(&bytes).trim_end(), self.cap).into_owned()
    }
}

fn describe(message: String, status: Option<String>, stderr: &str) -> String {
    let status = status
        .map(|s| format!("; it ended with {s}"))
        .unwrap_or_default();
    let stderr = if stderr.is_empty() {
        "; its stderr was empty".to_owned()
    } else {
        format!("; its stderr ended with: {stderr}")
    };
    format!("{message}{status}{stderr}")
}

fn lossy(bytes: &[u8], max: usize) -> String {
    crate::limits::log_text(&String::from_utf8_lossy(bytes), max).into_owned()
}

enum LineError {
    Closed(Vec<u8>),
    TooLong,
}

/// Reads one line of at most [`handshake::MAX_LINE`] bytes, byte by byte
/// (nothing after the newline is consumed).
async fn read_line(stdout: &mut tokio::process::ChildStdout) -> Result<Vec<u8>, LineError> {
    let mut line = Vec::with_capacity(128);
    let mut byte = [0u8; 1];
    loop {
        match stdout.read(&mut byte).await {
            Ok(0) | Err(_) => return Err(LineError::Closed(line)),
            Ok(_) => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    return Ok(line);
                }
                if line.len() >= handshake::MAX_LINE {
                    return Err(LineError::TooLong);
                }
            }
        }
    }
}

/// Forwards a process's output to its log, line by line: each line cut to
/// the host's `max_log_line`, and at most `max_log_lines_per_call` lines
/// and `max_output_per_call` bytes a second (the rest is dropped with one
/// line saying so); stderr's end is also kept in `tail`.
async fn forward_output(
    mut stream: impl tokio::io::AsyncRead + Unpin,
    boundary: Arc<Boundary>,
    which: OutputStream,
    tail: Option<Arc<Tail>>,
) {
    let config = boundary.config().clone();
    let max_line = config.max_log_line.max(16);
    let window = Duration::from_secs(1);
    let mut scope = CallScope::new(window);
    let mut buffer = vec![0u8; 8192];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(tail) = &tail {
            tail.push(&buffer[..n]);
        }
        if scope.remaining().is_zero() {
            scope.reset(tokio::time::Instant::now() + window);
        }
        for &b in &buffer[..n] {
            if b == b'\n' || line.len() >= max_line {
                emit(
                    &boundary,
                    &scope,
                    which,
                    &mut line,
                    config.max_output_per_call,
                );
                if b == b'\n' {
                    continue;
                }
            }
            line.push(b);
        }
    }
    emit(
        &boundary,
        &scope,
        which,
        &mut line,
        config.max_output_per_call,
    );
    if let Some(tail) = tail {
        tail.close();
    }
}

fn emit(
    boundary: &Boundary,
    scope: &CallScope,
    which: OutputStream,
    line: &mut Vec<u8>,
    cap: usize,
) {
    if line.is_empty() {
        return;
    }
    if scope.admit_output(line.len(), cap) == line.len() {
        boundary.log_output(scope, which, &String::from_utf8_lossy(line));
    }
    line.clear();
}

/// Connects to the plugin's socket, retrying while it is not yet listening.
async fn connect(socket: &str) -> Result<Channel, tonic::transport::Error> {
    let mut delay = Duration::from_millis(5);
    loop {
        let path = PathBuf::from(socket);
        let attempt = Endpoint::from_static("http://plugin.invalid")
            .connect_with_connector(tower::service_fn(move |_: tonic::codegen::http::Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }))
            .await;
        match attempt {
            Ok(channel) => return Ok(channel),
            Err(e) if delay > Duration::from_millis(500) => return Err(e),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(path)
}

fn write_executable(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o500)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The resource limits to apply, and the report of every layer.
fn plan_layers(config: &ProcessConfig, memory: u64) -> (Vec<Limit>, Vec<SandboxLayer>) {
    let mut limits = vec![
        Limit {
            resource: LimitKind::AddressSpace,
            value: memory.saturating_add(config.address_space_allowance),
        },
        Limit {
            resource: LimitKind::OpenFiles,
            value: config.open_files,
        },
        Limit {
            resource: LimitKind::CoreDump,
            value: 0,
        },
    ];
    if let Some(seconds) = config.cpu_seconds {
        limits.push(Limit {
            resource: LimitKind::CpuTime,
            value: seconds,
        });
    }
    if let Some(n) = config.processes {
        limits.push(Limit {
            resource: LimitKind::Processes,
            value: n,
        });
    }
    let mut layers = vec![
        SandboxLayer {
            name: "environment",
            applied: true,
            detail: "empty except the handshake's four variables".to_owned(),
        },
        SandboxLayer {
            name: "descriptors",
            applied: true,
            detail: "stdin /dev/null, stdout and stderr pipes to the host; the host opens its other descriptors close-on-exec".to_owned(),
        },
        SandboxLayer {
            name: "directory",
            applied: true,
            detail: "a private working directory (owner-only), removed with the plugin".to_owned(),
        },
        SandboxLayer {
            name: "process group",
            applied: true,
            detail: "its own process group, killed as a whole; PR_SET_PDEATHSIG(SIGKILL) kills it with the host".to_owned(),
        },
    ];
    for limit in &limits {
        layers.push(SandboxLayer {
            name: limit.resource.name(),
            applied: true,
            detail: format!("{}", limit.value),
        });
    }
    if config.cpu_seconds.is_none() {
        layers.push(SandboxLayer {
            name: LimitKind::CpuTime.name(),
            applied: false,
            detail:
                "not configured (ProcessConfig::cpu_seconds); calls are bounded by limits.timeout"
                    .to_owned(),
        });
    }
    if config.processes.is_none() {
        layers.push(SandboxLayer {
            name: LimitKind::Processes.name(),
            applied: false,
            detail: "not configured (ProcessConfig::processes): the kernel counts it per user, host included".to_owned(),
        });
    }
    for (name, detail) in [
        (
            "landlock",
            "filesystem confinement is not implemented in this version",
        ),
        (
            "seccomp",
            "network-socket filtering is not implemented in this version",
        ),
        (
            "cgroup",
            "cgroup v2 limits are not implemented in this version",
        ),
    ] {
        layers.push(SandboxLayer {
            name,
            applied: false,
            detail: detail.to_owned(),
        });
    }
    (limits, layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_maximum_and_starts_over_after_a_long_life() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_secs(1));
        let mut backoff = Backoff::default();
        assert_eq!(backoff.wait(), Duration::ZERO, "nothing died yet");
        // (how long the process lived, deaths in a row after it, wait)
        let table = [
            (Duration::ZERO, 1, 100),
            (Duration::from_millis(10), 2, 200),
            (Duration::ZERO, 3, 400),
            (Duration::ZERO, 4, 800),
            (Duration::ZERO, 5, 1000),
            (Duration::ZERO, 6, 1000),
            (Duration::from_secs(2), 1, 100),
        ];
        for (lived, deaths, wait_ms) in table {
            let wait = Duration::from_millis(wait_ms);
            // Read against the clock on both sides of `died`, so that a
            // thread preempted in between cannot blur the figure.
            let before = Instant::now();
            backoff.died(lived, initial, max);
            let after = Instant::now();
            assert_eq!(backoff.deaths, deaths, "{lived:?}");
            let not_before = backoff.not_before.expect("a death sets a time");
            assert!(
                not_before >= before + wait && not_before <= after + wait,
                "after {deaths} deaths: {:?} from the death, not {wait:?}",
                not_before - before
            );
            assert!(backoff.wait() <= wait, "after {deaths} deaths");
        }
    }
}
