//! The wasmtime engines (one plain, one with fuel metering made on demand),
//! the pooling-allocator decision and the epoch ticker.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Enabled, Engine, EngineWeak, InstanceAllocationStrategy, MemoryType,
    PoolingAllocationConfig, Store,
};

use super::ComponentConfig;

/// How instances get their memory, tables and stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllocatorKind {
    /// wasmtime's pooling allocator: slots reserved up front, reused with
    /// copy-on-write memory images (microsecond instantiation).
    Pooling,
    /// Fresh mappings per instance (the fallback when the pooling
    /// reservation fails, or when asked for).
    OnDemand,
}

impl AllocatorKind {
    /// `pooling` or `on-demand`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pooling => "pooling",
            Self::OnDemand => "on-demand",
        }
    }
}

/// Whether the engine meters fuel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Flavor {
    Plain,
    Fuel,
}

/// An engine and what it was built with.
#[derive(Clone)]
pub(crate) struct EngineInfo {
    pub(crate) engine: Engine,
    pub(crate) allocator: AllocatorKind,
    /// Hex digest of wasmtime's precompile compatibility hash, the wasmtime
    /// version and Tenon's cache format: the artifact cache's namespace.
    pub(crate) fingerprint: String,
}

/// The engines of one runtime, the ticker that advances their epochs, and
/// the settings they share. Plugins hold it (`Arc`) so that deadlines keep
/// working for plugins that outlive their runtime.
pub(crate) struct Engines {
    config: ComponentConfig,
    plain: EngineInfo,
    fuel: Mutex<Option<EngineInfo>>,
    ticker: Ticker,
}

impl Engines {
    pub(crate) fn new(config: ComponentConfig) -> Result<Self, String> {
        let plain = build_engine(&config, Flavor::Plain)?;
        let ticker = Ticker::start(config.epoch_tick)?;
        ticker.add(&plain.engine);
        Ok(Self {
            config,
            plain,
            fuel: Mutex::new(None),
            ticker,
        })
    }

    pub(crate) fn config(&self) -> &ComponentConfig {
        &self.config
    }

    pub(crate) fn plain(&self) -> &EngineInfo {
        &self.plain
    }

    /// The engine for `flavor`, building the fuel engine on first use.
    pub(crate) fn get(&self, flavor: Flavor) -> Result<EngineInfo, String> {
        match flavor {
            Flavor::Plain => Ok(self.plain.clone()),
            Flavor::Fuel => {
                let mut fuel = self.fuel.lock();
                if let Some(info) = &*fuel {
                    return Ok(info.clone());
                }
                let info = build_engine(&self.config, Flavor::Fuel)?;
                self.ticker.add(&info.engine);
                *fuel = Some(info.clone());
                Ok(info)
            }
        }
    }
}

fn base_config(config: &ComponentConfig, flavor: Flavor) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(flavor == Flavor::Fuel)
        .max_wasm_stack(config.max_wasm_stack)
        // The async stack must hold the wasm stack plus host frames.
        .async_stack_size(config.max_wasm_stack + (1 << 20))
        .memory_init_cow(true)
        .parallel_compilation(true)
        // Tenon calls components with `call_async`, not the component-model
        // async ABI: skip the concurrent machinery on every call.
        .concurrency_support(false);
    c
}

fn pooling_config(config: &ComponentConfig) -> PoolingAllocationConfig {
    let n = config.pool_instances;
    let mut p = PoolingAllocationConfig::new();
    p.total_component_instances(n)
        .total_core_instances(n.saturating_mul(4))
        .total_memories(n)
        .total_tables(n.saturating_mul(4))
        .total_stacks(n)
        .max_memory_size(usize::try_from(config.max_memory_size).unwrap_or(usize::MAX))
        .max_unused_warm_slots(n.min(100))
        // Rust guests' tables are small: keep them rather than unmap them.
        .table_keep_resident(64 << 10);
    if config.keep_resident > 0 {
        p.linear_memory_keep_resident(config.keep_resident);
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            // Reset only the pages the instance dirtied.
            p.pagemap_scan(Enabled::Auto);
        }
    }
    p
}

/// Tries to reserve the address space the pool would need, the way Spin
/// decides: some machines (small `ulimit -v`, 39-bit address spaces) cannot.
fn can_reserve(bytes: u64) -> bool {
    let mut c = Config::new();
    c.wasm_memory64(true).memory_reservation(bytes);
    let Ok(engine) = Engine::new(&c) else {
        return false;
    };
    let mut store = Store::new(&engine, ());
    wasmtime::Memory::new(&mut store, MemoryType::new64(0, None)).is_ok()
}

fn build_engine(config: &ComponentConfig, flavor: Flavor) -> Result<EngineInfo, String> {
    if config.pooling {
        // Each memory slot: the default 4 GiB reservation plus guard.
        let needed = u64::from(config.pool_instances).saturating_mul((4 << 30) + (32 << 20));
        if can_reserve(needed) {
            let mut c = base_config(config, flavor);
            c.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(config)));
            match Engine::new(&c) {
                Ok(engine) => {
                    tracing::info!(
                        allocator = "pooling",
                        instances = config.pool_instances,
                        fuel = flavor == Flavor::Fuel,
                        "wasmtime engine ready"
                    );
                    return Ok(info(engine, AllocatorKind::Pooling));
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "the pooling allocator could not be set up; falling back to on-demand allocation"
                ),
            }
        } else {
            tracing::warn!(
                bytes = needed,
                "cannot reserve the pooling allocator's address space; falling back to on-demand allocation"
            );
        }
    }
    let c = base_config(config, flavor);
    let engine = Engine::new(&c).map_err(|e| format!("cannot create the wasmtime engine: {e}"))?;
    tracing::info!(
        allocator = "on-demand",
        fuel = flavor == Flavor::Fuel,
        "wasmtime engine ready"
    );
    Ok(info(engine, AllocatorKind::OnDemand))
}

/// The artifact cache format; bump it when the file layout changes.
const CACHE_FORMAT: &str = "tenon-artifact-1";

/// Feeds `Hash` output into SHA-256, so the digest is stable across
/// processes (unlike `DefaultHasher`).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn info(engine: Engine, allocator: AllocatorKind) -> EngineInfo {
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update(CACHE_FORMAT.as_bytes());
    hasher.0.update(super::WASMTIME_VERSION.as_bytes());
    let fingerprint = hex::encode(&hasher.0.finalize()[..16]);
    EngineInfo {
        engine,
        allocator,
        fingerprint,
    }
}

/// One thread that advances every engine's epoch each tick; it ends when
/// the last [`Engines`] holding it is dropped.
struct Ticker {
    engines: Arc<Mutex<Vec<EngineWeak>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(tick: Duration) -> Result<Self, String> {
        let engines: Arc<Mutex<Vec<EngineWeak>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let engines = engines.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("tenon-epoch".to_owned())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::park_timeout(tick);
                        for engine in engines.lock().iter().filter_map(EngineWeak::upgrade) {
                            engine.increment_epoch();
                        }
                    }
                })
                .map_err(|e| format!("cannot start the epoch ticker thread: {e}"))?
        };
        Ok(Self {
            engines,
            stop,
            thread: Some(thread),
        })
    }

    fn add(&self, engine: &Engine) {
        self.engines.lock().push(engine.weak());
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
