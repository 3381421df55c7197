//! The Extism runtime: plugins built with any Extism PDK (Rust, JavaScript,
//! Go, Python, C, Zig, .NET, AssemblyScript, Haskell…), under Tenon's
//! permission, limit, pooling and hook model.
//!
//! What Tenon adds to Extism's own host, and how:
//!
//! - **Host API through Tenon's boundary.** Tenon's host functions live in a
//!   `tenon` import namespace, and Extism's own `http_request`,
//!   `config_get` and `log_*` functions are replaced by Tenon's (see
//!   `abi`): every request a plugin makes is checked, bounded and reported
//!   exactly as for component plugins.
//! - **Deadlines that cover host calls.** Each call's deadline (the
//!   manifest's `limits.timeout`, shortened by `CallOptions::timeout`)
//!   bounds its host requests through the boundary, and a watchdog thread
//!   cancels the wasm when it passes.
//! - **No interference between instances.** Extism interrupts a call by
//!   bumping its engine's epoch, which interrupts every call on the engine;
//!   Tenon gives each instance slot an engine of its own, so one plugin's
//!   timeout never stops another call.
//! - **Pooling without polling.** Up to `limits.max_instances` instances
//!   serve concurrent calls; further callers wait on a semaphore (woken by
//!   the release, in order) up to `limits.wait_timeout`, then get
//!   [`SandboxError::Busy`].
//! - **Errors that say what happened**: timeouts, memory, fuel, traps with
//!   the plugin's own message (see `errors`).
//!
//! The protocol for plugin authors is documented in `docs/extism.md`.

mod abi;
mod engines;
mod errors;
mod module;
mod plugin;
mod pool;
mod protocol;
mod threads;
mod watchdog;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use tenon_manifest::{ByteSize, FsMode, RuntimeKind, Version};

use self::abi::HostSide;
use self::engines::{EngineKey, Engines};
use self::plugin::{ExtismPlugin, Limits, Parts};
use self::pool::{Instance, Pool, Slot};
use self::threads::{CallThreads, Shares};
use self::watchdog::Watchdog;
use crate::boundary::{Boundary, GrantedDirectory, granted_directories};
use crate::config::SandboxConfig;
use crate::error::SandboxError;
use crate::fairness::{Fairness, FairnessLimits, FairnessReport};
use crate::runtime::{LoadRequest, Plugin, Runtime, RuntimeCounters};

/// The version of Tenon's Extism ABI (the `tenon` host functions and the
/// hook protocol) this runtime serves; a manifest's `engine.tenon` must
/// accept it.
pub const EXTISM_ABI_VERSION: Version = Version::new(1, 0, 0);

/// Where a plugin call runs.
///
/// Extism calls are synchronous: while one runs, its thread does nothing
/// else. The default keeps them off the async runtime's workers entirely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CallThreading {
    /// On the runtime's own plugin-call threads: the caller's task waits
    /// without holding its worker, so a looping plugin never stalls the
    /// host's other tasks. The threads are shared fairly: a plugin runs at
    /// most `ExtismConfig::call_threads` calls at once and a tenant's
    /// plugins together leave threads for the other tenants, so plugins
    /// looping until their deadlines never keep another plugin's calls
    /// from starting; when every thread is busy, another is started, up to
    /// `ExtismConfig::max_call_threads`. Threads are kept between calls
    /// and handed each call directly: no thread is created per call.
    #[default]
    Dedicated,
    /// On the calling task's worker thread: no thread hop, so a call costs
    /// what a bare Extism call costs, but the worker is busy for the call's
    /// whole duration (up to its deadline): a plugin that loops until its
    /// deadline on as many calls as there are workers stalls every other
    /// task of the runtime meanwhile. While a host request waits, the
    /// worker's other tasks move to another thread (`block_in_place`).
    /// Calls of plugins that use WASI run as with `BlockInPlace`; on a
    /// current-thread runtime, calls that wait for the host run on the
    /// blocking pool.
    Inline,
    /// On the calling worker inside `tokio::task::block_in_place`: the
    /// worker's other tasks move to another thread for the whole call.
    BlockInPlace,
    /// On the runtime's blocking pool (`spawn_blocking`): one blocking task
    /// per call.
    SpawnBlocking,
}

/// Settings of an [`ExtismRuntime`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExtismConfig {
    /// The host policy for the permission boundary.
    pub sandbox: SandboxConfig,
    /// Where compiled code is kept between engines and runs (wasmtime's
    /// cache, in a directory of the host's choosing, never the user-wide
    /// default); `None` compiles the module for every engine. Strongly
    /// recommended: each instance slot has an engine of its own.
    pub cache_dir: Option<PathBuf>,
    /// Where calls run.
    pub threading: CallThreading,
    /// How many plugin-call threads [`CallThreading::Dedicated`] keeps
    /// ready, and the most calls one plugin runs on them at once (its
    /// further calls wait, their deadlines running). 0 (the default): one
    /// per CPU, at least 2.
    pub call_threads: usize,
    /// The most plugin-call threads at once: when every thread is busy
    /// (with calls that may run until their deadlines) and a call within
    /// its plugin's and tenant's shares comes, another thread is started,
    /// up to this; beyond it calls wait, and a thread that frees goes to
    /// the waiting plugins in turn. The plugins of one tenant run at most
    /// all these threads but `call_threads` (at least half of them) at
    /// once. 0 (the default): eight times `call_threads`, at least 16.
    pub max_call_threads: usize,
    /// Caps on live instances and their memory per plugin, per tenant and
    /// for the runtime; `None` (the default) takes
    /// [`FairnessLimits::default`].
    pub fairness: Option<FairnessLimits>,
    /// The largest wasm stack a plugin may have, in bytes: a plugin whose
    /// `limits.stack` asks for more is refused at load, and one that asks
    /// for nothing gets wasmtime's default (512 KiB) or this, whichever is
    /// smaller. Extism runs wasm on the calling thread's own stack, so the
    /// plugin-call threads are made this much larger than 1 MiB (at least
    /// 2 MiB); with the other [`CallThreading`]s the host's threads (Tokio's
    /// workers and blocking pool, 2 MiB by default) must be too. Default:
    /// 1 MiB, as for components.
    pub max_wasm_stack: usize,
}

impl Default for ExtismConfig {
    fn default() -> Self {
        Self {
            sandbox: SandboxConfig::default(),
            cache_dir: None,
            threading: CallThreading::default(),
            call_threads: 0,
            max_call_threads: 0,
            fairness: None,
            max_wasm_stack: DEFAULT_MAX_WASM_STACK,
        }
    }
}

/// [`ExtismConfig::max_wasm_stack`]'s default.
const DEFAULT_MAX_WASM_STACK: usize = 1 << 20;

/// wasmtime's own wasm stack limit, for plugins that set none.
const WASMTIME_WASM_STACK: usize = 512 << 10;

/// The native stack a plugin-call thread needs under a wasm stack of
/// `max_wasm_stack`: that, and 1 MiB for the host's own frames (Extism,
/// wasmtime, host functions), at least 2 MiB.
fn call_thread_stack(max_wasm_stack: usize) -> usize {
    max_wasm_stack.saturating_add(1 << 20).max(2 << 20)
}

impl ExtismConfig {
    /// Uses `sandbox` as the host policy.
    pub fn with_sandbox(mut self, sandbox: SandboxConfig) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// Keeps compiled code in `dir`.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Runs calls as `threading` says.
    pub fn with_threading(mut self, threading: CallThreading) -> Self {
        self.threading = threading;
        self
    }

    /// Caps live instances and their memory as `limits` says.
    pub fn with_fairness(mut self, limits: FairnessLimits) -> Self {
        self.fairness = Some(limits);
        self
    }

    /// Runs calls on `threads` plugin-call threads (see
    /// [`ExtismConfig::call_threads`]).
    pub fn with_call_threads(mut self, threads: usize) -> Self {
        self.call_threads = threads;
        self
    }

    /// Refuses plugins asking for a wasm stack above `bytes` (see
    /// [`ExtismConfig::max_wasm_stack`]).
    pub fn with_max_wasm_stack(mut self, bytes: usize) -> Self {
        self.max_wasm_stack = bytes;
        self
    }

    /// Starts at most `threads` plugin-call threads (see
    /// [`ExtismConfig::max_call_threads`]).
    pub fn with_max_call_threads(mut self, threads: usize) -> Self {
        self.max_call_threads = threads;
        self
    }
}

/// Runs Extism plugins (see the [module documentation](self)).
#[derive(Clone)]
pub struct ExtismRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    sandbox: Arc<SandboxConfig>,
    cache_dir: Option<PathBuf>,
    /// The wasmtime cache configuration file, written at first use.
    cache_config: OnceLock<Result<PathBuf, String>>,
    threading: CallThreading,
    /// [`ExtismConfig::max_wasm_stack`].
    max_wasm_stack: usize,
    /// The plugin-call threads ([`CallThreading::Dedicated`]).
    calls: CallThreads,
    engines: Engines,
    /// Live instances of every plugin and tenant, under their caps.
    fairness: Fairness,
}

impl std::fmt::Debug for ExtismRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtismRuntime")
            .field("cache_dir", &self.inner.cache_dir)
            .field("threading", &self.inner.threading)
            .field("calls", &self.inner.calls)
            .field("engines", &self.inner.engines)
            .finish_non_exhaustive()
    }
}

fn unsupported(plugin: &str, message: String) -> SandboxError {
    SandboxError::Unsupported {
        plugin: plugin.to_owned(),
        message,
    }
}

fn host_error(plugin: &str, message: String) -> SandboxError {
    SandboxError::Host {
        plugin: plugin.to_owned(),
        message,
    }
}

impl ExtismRuntime {
    /// A runtime with `config`. Nothing is compiled or written until the
    /// first load.
    pub fn new(config: ExtismConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                sandbox: Arc::new(config.sandbox),
                cache_dir: config.cache_dir,
                cache_config: OnceLock::new(),
                threading: config.threading,
                max_wasm_stack: config.max_wasm_stack,
                calls: CallThreads::new(
                    Shares::new(call_threads(config.call_threads), config.max_call_threads),
                    call_thread_stack(config.max_wasm_stack),
                ),
                engines: Engines::new(Watchdog::new()),
                fairness: Fairness::new(config.fairness.unwrap_or_default()),
            }),
        }
    }

    /// Live instances and their memory per tenant, and what the fairness
    /// caps did under pressure.
    pub fn fairness_report(&self) -> FairnessReport {
        self.inner.fairness.report()
    }

    /// The ABI version this runtime serves, as `tenon:extism@1.0.0`.
    pub fn supported_version() -> String {
        format!("tenon:extism@{EXTISM_ABI_VERSION}")
    }

    /// wasmtime's cache configuration, or `None` to compile without a
    /// cache: none was asked for, or its directory cannot be made private
    /// (then a warning says why, once).
    fn cache_config(&self) -> Option<PathBuf> {
        let dir = self.inner.cache_dir.as_ref()?;
        self.inner
            .cache_config
            .get_or_init(|| {
                engines::write_cache_config(dir).map_err(|e| {
                    tracing::warn!(
                        dir = %dir.display(),
                        error = %e,
                        "the Extism compiled-code cache is disabled: its directory cannot be made owner-only"
                    );
                    e.to_string()
                })
            })
            .clone()
            .ok()
    }

    /// Whether compiled code is kept in wasmtime's disk cache (a cache
    /// directory was given and it is owner-only).
    pub fn cache_enabled(&self) -> bool {
        self.cache_config().is_some()
    }

    /// Like [`Runtime::load`], with nothing boxed.
    async fn load_extism(&self, request: LoadRequest) -> Result<ExtismPlugin, SandboxError> {
        let manifest = request.manifest.clone();
        let plugin = manifest.plugin.id.as_str();
        if manifest.runtime.kind != RuntimeKind::Extism {
            return Err(unsupported(
                plugin,
                format!(
                    "its runtime.kind is `{}`; the Extism runtime runs `extism` plugins",
                    manifest.runtime.kind
                ),
            ));
        }
        if !manifest.engine.tenon.matches(&EXTISM_ABI_VERSION) {
            return Err(SandboxError::Incompatible {
                plugin: plugin.to_owned(),
                found: format!("a plugin whose engine.tenon is {}", manifest.engine.tenon),
                supported: Self::supported_version(),
            });
        }
        let limits = &manifest.limits;
        if limits.max_instances == 0 {
            return Err(unsupported(
                plugin,
                "limits.max_instances is 0; at least one instance is needed".to_owned(),
            ));
        }
        let memory_pages = u32::try_from(limits.memory.bytes() / 65_536)
            .ok()
            .filter(|pages| *pages > 0)
            .ok_or_else(|| {
                unsupported(
                    plugin,
                    format!(
                        "limits.memory is {}; Extism needs 64 KiB to 256 TiB",
                        limits.memory
                    ),
                )
            })?;
        self.inner
            .fairness
            .limits()
            .check_instance(plugin, u64::from(memory_pages) * 65_536)?;
        let sha256: [u8; 32] = Sha256::digest(&request.module).into();
        if let Some(pin) = &manifest.runtime.sha256 {
            let actual = hex::encode(sha256);
            if !pin.eq_ignore_ascii_case(&actual) {
                return Err(SandboxError::Compile {
                    plugin: plugin.to_owned(),
                    message: format!(
                        "the module's sha256 is {actual}, but the manifest pins {pin}"
                    ),
                });
            }
        }
        let info = module::inspect(&request.module).map_err(|message| SandboxError::Compile {
            plugin: plugin.to_owned(),
            message,
        })?;
        if let Some(import) = &info.blocking_wasi {
            return Err(SandboxError::Unsupported {
                plugin: plugin.to_owned(),
                message: format!(
                    "the module imports `{}::{import}`, which can block a plugin-call thread \
                     past the call's deadline (the watchdog cannot stop a host call); \
                     modules importing it are refused",
                    module::WASI_P1
                ),
            });
        }
        let (paths, dirs) = if info.uses_wasi {
            allowed_paths(&request)?
        } else {
            (Vec::new(), Vec::new())
        };
        let key = EngineKey {
            module_sha256: sha256,
            memory_pages,
            fuel: limits.fuel,
            runs_at_instantiation: info.runs_at_instantiation,
            stack: self.wasm_stack(plugin, limits.stack)?,
            wasi: info.uses_wasi,
            paths,
        };
        let cache_config = self.cache_config();
        let engines = self.inner.engines.set(
            key,
            &request.module,
            &info.host_imports,
            cache_config.as_deref(),
            dirs,
        );
        let answer = crate::limits::answer_limit(&self.inner.sandbox, limits, plugin)?;
        let boundary = Arc::new(Boundary::new(&request, self.inner.sandbox.clone()));
        let transfer = crate::limits::transfer_limit(&self.inner.sandbox, answer);
        let host = Arc::new(HostSide::new(boundary, transfer as u64));
        let limits = Limits {
            timeout: limits.timeout.get(),
            memory_limit: u64::from(memory_pages) * 65_536,
            isolation: limits.isolation,
            answer,
        };
        let pool = Pool::new(
            manifest.limits.max_instances,
            manifest.limits.wait_timeout.get(),
        );
        let loaded = ExtismPlugin::new(
            Parts {
                name: plugin.to_owned(),
                caller: request.caller.clone(),
                host,
                engines: engines.clone(),
                threading: self.inner.threading,
                calls: self.inner.calls.lane(&request.caller.tenant),
                info,
                limits,
                pool,
            },
            &self.inner.fairness,
        );
        // Compile (or load from the cache) and link now, so that a module
        // that cannot run fails here rather than at its first call.
        let name = plugin.to_owned();
        let owner = loaded.clone();
        let slot = tokio::task::spawn_blocking(move || {
            let engine = engines.take().map_err(|message| SandboxError::Compile {
                plugin: name.clone(),
                message,
            })?;
            let instance = ::extism::Plugin::new_from_compiled(&engine.compiled).map_err(|e| {
                SandboxError::Compile {
                    plugin: name,
                    message: format!("cannot link the module: {e:#}"),
                }
            })?;
            engine.guard.set_instance(instance.cancel_handle());
            // Kept warm only where the fairness caps leave room (never by
            // reclaiming another plugin's); else made again at the first
            // call.
            let instance = owner
                .try_lease()
                .map(|lease| Instance::new(instance, 0, lease));
            Ok::<_, SandboxError>(Box::new(Slot { engine, instance }))
        })
        .await
        .map_err(|e| host_error(plugin, format!("the compiler thread failed: {e}")))??;
        loaded.adopt(slot);
        Ok(loaded)
    }
}

impl ExtismRuntime {
    /// The wasm stack of a plugin whose `limits.stack` is `asked`, within
    /// the host's maximum.
    fn wasm_stack(&self, plugin: &str, asked: Option<ByteSize>) -> Result<usize, SandboxError> {
        let max = self.inner.max_wasm_stack;
        let Some(asked) = asked else {
            return Ok(WASMTIME_WASM_STACK.min(max));
        };
        usize::try_from(asked.bytes())
            .ok()
            .filter(|bytes| *bytes <= max)
            .ok_or_else(|| {
                unsupported(
                    plugin,
                    format!(
                        "limits.stack is {asked}; this host's wasm stack limit is {max} bytes \
                         (ExtismConfig::max_wasm_stack)"
                    ),
                )
            })
    }
}

/// The number of plugin-call threads for `asked` (0: one per CPU, at
/// least 2).
fn call_threads(asked: usize) -> usize {
    if asked > 0 {
        return asked;
    }
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// The directories `permissions.filesystem` grants (see
/// [`granted_directories`]) as Extism's allowed paths: the host path (the
/// name of the opened directory), prefixed `ro:` when the grant is
/// read-only, and the guest path; with the opened directories, which must
/// outlive every instance that opens those paths.
fn allowed_paths(request: &LoadRequest) -> Result<AllowedPaths, SandboxError> {
    let plugin = request.manifest.plugin.id.as_str();
    let dirs = granted_directories(request)?;
    let paths = dirs
        .iter()
        .map(|dir| {
            let host = dir.host.to_str().ok_or_else(|| {
                unsupported(
                    plugin,
                    format!(
                        "the granted directory {} is not valid UTF-8",
                        dir.host.display()
                    ),
                )
            })?;
            let host = match dir.mode {
                FsMode::Read => format!("ro:{host}"),
                FsMode::ReadWrite => host.to_owned(),
            };
            Ok((host, PathBuf::from(&dir.guest)))
        })
        .collect::<Result<_, SandboxError>>()?;
    Ok((paths, dirs))
}

/// Extism's allowed paths and the opened directories they name.
type AllowedPaths = (Vec<(String, PathBuf)>, Vec<GrantedDirectory>);

#[async_trait]
impl Runtime for ExtismRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Extism
    }

    async fn load(&self, request: LoadRequest) -> Result<Arc<dyn Plugin>, SandboxError> {
        Ok(Arc::new(self.load_extism(request).await?))
    }

    fn counters(&self) -> RuntimeCounters {
        RuntimeCounters::default().with_fairness(&self.fairness_report())
    }

    fn fairness(&self) -> Option<FairnessReport> {
        Some(self.fairness_report())
    }
}
