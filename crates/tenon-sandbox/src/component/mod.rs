//! The component-model runtime: plugins as WebAssembly components of the
//! `tenon:plugin` WIT world, on wasmtime.
//!
//! One [`ComponentRuntime`] owns one wasmtime engine (and a second, fuel
//! metering one, built only when a plugin sets `limits.fuel`, so that other
//! plugins do not pay for metering), the pooling instance allocator with
//! copy-on-write memory images (or on-demand allocation when the pool's
//! address space cannot be reserved), an epoch ticker thread, a linker per
//! served WIT version, an in-memory cache of compiled components (the same
//! module loaded for several tenants compiles once) and an optional
//! compiled-artifact cache on disk.
//!
//! Each call runs on a wasmtime fiber (`call_async`) under an epoch
//! deadline: every tick the call yields to the async executor, and the first
//! tick after its deadline stops it with [`SandboxError::Timeout`]. A trapped,
//! timed-out or cancelled instance is dropped, never reused.

mod cache;
mod engine;
mod plugin;
mod store;
mod v1;
mod version;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tenon_manifest::{FsMode, RuntimeKind, Version};
use wasmtime::component::{Component, Linker};
use wasmtime_wasi::FsPerms;

pub use self::cache::LoadSource;
pub use self::engine::AllocatorKind;
pub use self::plugin::ComponentPlugin;

use self::engine::{EngineInfo, Engines, Flavor};
use self::store::{Preopen, StoreData};
use self::version::{Api, Detected};
use crate::boundary::Boundary;
use crate::config::SandboxConfig;
use crate::error::SandboxError;
use crate::fairness::{Fairness, FairnessLimits, FairnessReport, Reclaim};
use crate::runtime::{LoadRequest, Plugin, Runtime, RuntimeCounters};

/// The wasmtime major version compiled in (artifact caches are also keyed by
/// wasmtime's own exact version through its compatibility hash).
const WASMTIME_VERSION: &str = "49";

/// Settings of a [`ComponentRuntime`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ComponentConfig {
    /// The host policy for the permission boundary.
    pub sandbox: SandboxConfig,
    /// Where compiled artifacts are kept between runs; `None` compiles every
    /// module once per process.
    pub cache_dir: Option<PathBuf>,
    /// The file holding the key that authenticates cached artifacts
    /// (created `0600` when missing); default `cache.key` in `cache_dir`.
    pub cache_key_file: Option<PathBuf>,
    /// Whether to use the pooling allocator (when its address space can be
    /// reserved). Default: `true`.
    pub pooling: bool,
    /// Concurrent instances the pool holds, across all plugins. Default:
    /// 1000.
    pub pool_instances: u32,
    /// The largest `limits.memory` a plugin may ask for, in bytes; larger
    /// requests are refused at load. Default: 4 GiB.
    pub max_memory_size: u64,
    /// The wasm stack limit of every instance, in bytes (wasmtime sets it
    /// per engine); a plugin whose `limits.stack` asks for more is refused
    /// at load. Default: 1 MiB.
    pub max_wasm_stack: usize,
    /// How often the epoch ticks: a call stops at most one tick after its
    /// deadline, and a long call yields to the executor every tick.
    /// Default: 10 ms.
    pub epoch_tick: Duration,
    /// Bytes of each pooled linear memory kept resident (zeroed in place,
    /// or on Linux 6.7+ reset page by page through `PAGEMAP_SCAN`) when an
    /// instance is dropped, instead of being returned to the kernel. Keeps
    /// the next instance from page-faulting on every page it touches, at
    /// the price of this much resident memory per warm slot. Default: 1 MiB.
    pub keep_resident: usize,
    /// Caps on live instances and their memory per plugin, per tenant and
    /// for the runtime; `None` (the default) derives them from
    /// `pool_instances` ([`FairnessLimits::for_pool`]).
    pub fairness: Option<FairnessLimits>,
}

impl Default for ComponentConfig {
    fn default() -> Self {
        Self {
            sandbox: SandboxConfig::default(),
            cache_dir: None,
            cache_key_file: None,
            pooling: true,
            pool_instances: 1000,
            max_memory_size: 4 << 30,
            max_wasm_stack: 1 << 20,
            epoch_tick: Duration::from_millis(10),
            keep_resident: 1 << 20,
            fairness: None,
        }
    }
}

impl ComponentConfig {
    /// Uses `sandbox` as the host policy.
    pub fn with_sandbox(mut self, sandbox: SandboxConfig) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// Keeps compiled artifacts in `dir`.
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Keeps the key that authenticates cached artifacts in `file`.
    pub fn with_cache_key_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.cache_key_file = Some(file.into());
        self
    }

    /// Turns the pooling allocator on or off.
    pub fn with_pooling(mut self, pooling: bool) -> Self {
        self.pooling = pooling;
        self
    }

    /// Caps live instances and their memory as `limits` says.
    pub fn with_fairness(mut self, limits: FairnessLimits) -> Self {
        self.fairness = Some(limits);
        self
    }

    /// The caps in force: [`ComponentConfig::fairness`], or those derived
    /// from the pool.
    pub fn fairness_limits(&self) -> FairnessLimits {
        self.fairness
            .unwrap_or_else(|| FairnessLimits::for_pool(self.pool_instances))
    }

    /// Keeps `bytes` of each pooled linear memory resident between
    /// instances (see [`ComponentConfig::keep_resident`]); `0` returns every
    /// page to the kernel.
    pub fn with_keep_resident(mut self, bytes: usize) -> Self {
        self.keep_resident = bytes;
        self
    }
}

/// A component compiled for one engine, checked against the served WIT
/// versions and pre-linked.
pub(crate) struct Compiled {
    pub(crate) engine: EngineInfo,
    pub(crate) version: Version,
    pub(crate) pre: VersionedPre,
}

/// The pre-instantiated component, per served API version.
#[derive(Clone)]
pub(crate) enum VersionedPre {
    V1(v1::Pre),
}

type CacheKey = (Flavor, [u8; 32]);
type Linkers = HashMap<(Flavor, Api), Arc<Linker<StoreData>>>;

struct Inner {
    engines: Arc<Engines>,
    sandbox: Arc<SandboxConfig>,
    disk: Arc<cache::DiskCache>,
    /// Weak: an entry lives as long as some plugin uses it. The per-key
    /// async lock makes concurrent loads of one module compile it once.
    compiled: Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<Weak<Compiled>>>>>,
    linkers: Mutex<Linkers>,
    /// Live instances of every plugin and tenant, under their caps.
    fairness: Fairness,
}

/// Runs component plugins (see the [module documentation](self)).
#[derive(Clone)]
pub struct ComponentRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ComponentRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentRuntime")
            .field("allocator", &self.allocator())
            .field("config", self.inner.engines.config())
            .finish_non_exhaustive()
    }
}

fn host_error(plugin: &str, message: impl Into<String>) -> SandboxError {
    SandboxError::Host {
        plugin: plugin.to_owned(),
        message: message.into(),
    }
}

fn unsupported(plugin: &str, message: String) -> SandboxError {
    SandboxError::Unsupported {
        plugin: plugin.to_owned(),
        message,
    }
}

impl ComponentRuntime {
    /// Creates the engine (trying the pooling allocator first), starts the
    /// epoch ticker and opens the artifact cache.
    pub fn new(config: ComponentConfig) -> Result<Self, SandboxError> {
        let sandbox = Arc::new(config.sandbox.clone());
        let disk = Arc::new(cache::DiskCache::new(
            config.cache_dir.clone(),
            config.cache_key_file.clone(),
        ));
        let fairness = Fairness::new(config.fairness_limits());
        let engines = Engines::new(config).map_err(|e| host_error("-", e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                engines: Arc::new(engines),
                sandbox,
                disk,
                compiled: Mutex::default(),
                linkers: Mutex::default(),
                fairness,
            }),
        })
    }

    /// Which allocator the (plain) engine uses.
    pub fn allocator(&self) -> AllocatorKind {
        self.inner.engines.plain().allocator
    }

    /// The WIT worlds this runtime serves, such as `tenon:plugin@1.0.0`.
    pub fn supported_versions() -> Vec<String> {
        version::SUPPORTED
            .iter()
            .map(|v| format!("{}@{v}", version::PACKAGE))
            .collect()
    }

    fn linker(
        &self,
        engine: &EngineInfo,
        flavor: Flavor,
        api: Api,
    ) -> wasmtime::Result<Arc<Linker<StoreData>>> {
        let mut linkers = self.inner.linkers.lock();
        if let Some(linker) = linkers.get(&(flavor, api)) {
            return Ok(linker.clone());
        }
        let mut linker = Linker::new(&engine.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        match api {
            Api::V1 => v1::add_to_linker(&mut linker)?,
        }
        let linker = Arc::new(linker);
        linkers.insert((flavor, api), linker.clone());
        Ok(linker)
    }

    /// Live instances and their memory per tenant, and what the fairness
    /// caps did under pressure.
    pub fn fairness_report(&self) -> FairnessReport {
        self.inner.fairness.report()
    }

    /// Cached artifacts refused since this runtime started (forged,
    /// foreign or corrupt entries, whose MAC did not verify, and entries
    /// wasmtime refused): none was deserialized; each was recompiled.
    pub fn cache_rejections(&self) -> u64 {
        self.inner.disk.rejected()
    }

    /// The compiled form of `module`, from memory, disk or the compiler.
    async fn compiled(
        &self,
        plugin: &str,
        flavor: Flavor,
        module: &Arc<[u8]>,
    ) -> Result<(Arc<Compiled>, LoadSource), SandboxError> {
        let sha256: [u8; 32] = Sha256::digest(module).into();
        let slot = self
            .inner
            .compiled
            .lock()
            .entry((flavor, sha256))
            .or_default()
            .clone();
        let mut slot = slot.lock().await;
        if let Some(compiled) = slot.upgrade() {
            return Ok((compiled, LoadSource::Memory));
        }
        let engine = self
            .inner
            .engines
            .get(flavor)
            .map_err(|e| host_error(plugin, e))?;
        let disk = self.inner.disk.clone();
        let bytes = module.clone();
        let compile_engine = engine.clone();
        let (component, source) =
            tokio::task::spawn_blocking(move || disk.load(&compile_engine, &sha256, &bytes))
                .await
                .map_err(|e| host_error(plugin, format!("the compiler thread failed: {e}")))?
                .map_err(|message| SandboxError::Compile {
                    plugin: plugin.to_owned(),
                    message,
                })?;
        let compiled = Arc::new(self.check_and_link(plugin, &engine, flavor, component)?);
        *slot = Arc::downgrade(&compiled);
        drop(slot);
        self.inner
            .compiled
            .lock()
            .retain(|_, slot| slot.try_lock().map_or(true, |w| w.strong_count() > 0));
        Ok((compiled, source))
    }

    fn check_and_link(
        &self,
        plugin: &str,
        engine: &EngineInfo,
        flavor: Flavor,
        component: Component,
    ) -> Result<Compiled, SandboxError> {
        let (api, version) = match version::detect(&engine.engine, &component) {
            Detected::Served { api, version } => (api, version),
            Detected::Unserved(found) => {
                return Err(SandboxError::Incompatible {
                    plugin: plugin.to_owned(),
                    found,
                    supported: version::supported_list(),
                });
            }
            Detected::NotAPlugin => {
                return Err(SandboxError::MissingExport {
                    plugin: plugin.to_owned(),
                    export: format!("{}/guest", version::PACKAGE),
                });
            }
            Detected::Malformed(message) => {
                return Err(SandboxError::Incompatible {
                    plugin: plugin.to_owned(),
                    found: message,
                    supported: version::supported_list(),
                });
            }
        };
        let linker = self
            .linker(engine, flavor, api)
            .map_err(|e| host_error(plugin, format!("cannot build the linker: {e}")))?;
        let instance_pre =
            linker
                .instantiate_pre(&component)
                .map_err(|e| SandboxError::Incompatible {
                    plugin: plugin.to_owned(),
                    found: format!("a component whose imports this host cannot satisfy ({e:#})"),
                    supported: version::supported_list(),
                })?;
        let pre = match api {
            Api::V1 => VersionedPre::V1(v1::Pre::new(instance_pre).map_err(|e| {
                SandboxError::MissingExport {
                    plugin: plugin.to_owned(),
                    export: format!("{}/guest@{version} ({e:#})", version::PACKAGE),
                }
            })?),
        };
        Ok(Compiled {
            engine: engine.clone(),
            version,
            pre,
        })
    }

    /// Like [`Runtime::load`], with the concrete plugin type (which tells
    /// where its compiled code came from).
    pub async fn load_component(
        &self,
        request: LoadRequest,
    ) -> Result<Arc<ComponentPlugin>, SandboxError> {
        let manifest = request.manifest.clone();
        let plugin = manifest.plugin.id.as_str();
        if manifest.runtime.kind != RuntimeKind::Component {
            return Err(unsupported(
                plugin,
                format!(
                    "its runtime.kind is `{}`; the component runtime runs `component` plugins",
                    manifest.runtime.kind
                ),
            ));
        }
        let config = self.inner.engines.config();
        let limits = &manifest.limits;
        if limits.memory.bytes() > config.max_memory_size {
            return Err(unsupported(
                plugin,
                format!(
                    "limits.memory is {}; this host allows at most {} bytes per instance",
                    limits.memory, config.max_memory_size
                ),
            ));
        }
        if let Some(stack) = limits.stack
            && stack.bytes() > config.max_wasm_stack as u64
        {
            return Err(unsupported(
                plugin,
                format!(
                    "limits.stack is {stack}; this host's wasm stack limit is {} bytes",
                    config.max_wasm_stack
                ),
            ));
        }
        if limits.max_instances == 0 {
            return Err(unsupported(
                plugin,
                "limits.max_instances is 0; at least one instance is needed".to_owned(),
            ));
        }
        self.inner
            .fairness
            .limits()
            .check_instance(plugin, limits.memory.bytes())?;
        let answer = crate::limits::answer_limit(&self.inner.sandbox, limits, plugin)?;
        if let Some(pin) = &manifest.runtime.sha256 {
            let actual = hex::encode(Sha256::digest(&request.module));
            if !pin.eq_ignore_ascii_case(&actual) {
                return Err(SandboxError::Compile {
                    plugin: plugin.to_owned(),
                    message: format!(
                        "the module's sha256 is {actual}, but the manifest pins {pin}"
                    ),
                });
            }
        }
        let preopens = preopens(&request)?;
        let flavor = if limits.fuel.is_some() {
            Flavor::Fuel
        } else {
            Flavor::Plain
        };
        let (compiled, source) = self.compiled(plugin, flavor, &request.module).await?;
        if !manifest.engine.tenon.matches(&compiled.version) {
            return Err(SandboxError::Incompatible {
                plugin: plugin.to_owned(),
                found: format!(
                    "{}@{} (the manifest asks for engine.tenon {})",
                    version::PACKAGE,
                    compiled.version,
                    manifest.engine.tenon
                ),
                supported: version::supported_list(),
            });
        }
        let boundary = Arc::new(Boundary::new(&request, self.inner.sandbox.clone()));
        let fairness = &self.inner.fairness;
        let tenant = request.caller.tenant.as_str();
        Ok(Arc::new_cyclic(|plugin: &Weak<ComponentPlugin>| {
            let reclaim: Weak<dyn Reclaim> = plugin.clone();
            ComponentPlugin::new(
                self.inner.engines.clone(),
                compiled,
                source,
                boundary,
                &manifest.limits,
                answer,
                preopens,
                fairness.register(tenant, reclaim),
            )
        }))
    }
}

/// The directories granted by `permissions.filesystem`, as WASI preopens.
fn preopens(request: &LoadRequest) -> Result<Vec<Preopen>, SandboxError> {
    Ok(crate::boundary::granted_directories(request)?
        .into_iter()
        .map(|dir| Preopen {
            host: dir.host.clone(),
            guest: dir.guest.clone(),
            perms: match dir.mode {
                FsMode::Read => FsPerms::ReadOnly,
                FsMode::ReadWrite => FsPerms::ReadWrite,
            },
            dir,
        })
        .collect())
}

#[async_trait]
impl Runtime for ComponentRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Component
    }

    fn counters(&self) -> RuntimeCounters {
        RuntimeCounters {
            cache_rejections: self.cache_rejections(),
            ..RuntimeCounters::default()
        }
        .with_fairness(&self.fairness_report())
    }

    fn fairness(&self) -> Option<FairnessReport> {
        Some(self.fairness_report())
    }

    async fn load(&self, request: LoadRequest) -> Result<Arc<dyn Plugin>, SandboxError> {
        Ok(self.load_component(request).await?)
    }
}

/// The epoch tick of `engines`.
pub(crate) fn engines_tick(engines: &Engines) -> Duration {
    engines.config().epoch_tick
}
