//! Compiled Extism plugins, and the wasmtime engines that hold them.
//!
//! Extism ties each compiled plugin ([`::extism::CompiledPlugin`]) to a
//! wasmtime engine of its own, and interrupts a call by bumping that
//! engine's epoch, which interrupts *every* call running on the engine. So
//! Tenon never lets two calls run on one engine at the same time: each
//! instance slot of a pool owns an [`Engine`], and instances come and go on
//! it one after the other (warm reuse, or a fresh instance per call).
//!
//! The compiled code is shared through wasmtime's on-disk cache in a
//! directory the host chooses ([`super::ExtismConfig::cache_dir`]): the
//! first engine for a module compiles it, every later engine (another slot,
//! another tenant, the next process) loads the cached artifact. Idle engines
//! of the same module and settings are also kept in memory ([`EngineSet`])
//! and handed to the next load that needs one.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use ::extism::{CompiledPlugin, DebugOptions, Manifest as ExtismManifest, PluginBuilder, Wasm};
use parking_lot::Mutex;

use super::abi::{self, Link};
use super::watchdog::{Guard, Watchdog};
use crate::boundary::GrantedDirectory;

/// Everything that is compiled into an engine: two loads with equal keys
/// can share engines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct EngineKey {
    /// The module's sha256.
    pub(super) module_sha256: [u8; 32],
    /// Linear memory cap, in 64 KiB pages (the Extism kernel's memory
    /// included).
    pub(super) memory_pages: u32,
    /// Fuel per call.
    pub(super) fuel: Option<u64>,
    /// Whether the module runs code while an instance is made (see
    /// [`super::module::ModuleInfo::runs_at_instantiation`]).
    pub(super) runs_at_instantiation: bool,
    /// Guest stack cap, in bytes.
    pub(super) stack: usize,
    /// Whether WASI preview 1 is linked.
    pub(super) wasi: bool,
    /// Preopened directories: host path (prefixed `ro:` when read-only) and
    /// guest path.
    pub(super) paths: Vec<(String, PathBuf)>,
}

/// A compiled plugin on an engine of its own, with the link its host
/// functions read the current call from and the guard that stops its calls
/// at their deadline.
pub(super) struct Engine {
    pub(super) compiled: CompiledPlugin,
    pub(super) link: Arc<Link>,
    pub(super) guard: Guard,
}

/// The engines of one [`EngineKey`]: how to build one, and the idle ones.
pub(super) struct EngineSet {
    watchdog: Watchdog,
    module: Arc<[u8]>,
    /// The host functions the module imports (the same for every engine of
    /// the key: the module's sha256 is in it).
    imports: Arc<BTreeSet<(String, String)>>,
    key: EngineKey,
    cache_config: Option<PathBuf>,
    idle: Mutex<Vec<Engine>>,
    /// The opened directories the key's paths name: they live as long as
    /// an engine of the set may open an instance.
    _dirs: Vec<GrantedDirectory>,
}

/// The fuel a module's start function and guest-runtime initialisation
/// (`_initialize`, `__wasm_call_ctors`, `hs_init`) may use when the manifest
/// sets no `limits.fuel`: about a second of computation, far more than any
/// PDK's runtime needs, and a bound on one that loops.
pub(super) const INSTANTIATION_FUEL: u64 = 1 << 30;

/// The call fuel of a module that runs on fuel only for its instantiation:
/// more than a call can use before its deadline.
const UNMETERED_FUEL: u64 = u64::MAX / 2;

/// Idle engines kept per key for the next load.
const MAX_IDLE_ENGINES: usize = 8;

impl std::fmt::Debug for EngineSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineSet")
            .field("key", &self.key)
            .field("idle", &self.idle.lock().len())
            .finish_non_exhaustive()
    }
}

impl EngineSet {
    /// An idle engine, or a new one (compiled, or loaded from the disk
    /// cache). Blocking: call it where blocking is allowed.
    pub(super) fn take(&self) -> Result<Engine, String> {
        if let Some(engine) = self.idle.lock().pop() {
            return Ok(engine);
        }
        self.build()
    }

    /// Keeps an engine for later use. Engines that a cancellation may still
    /// reach must not come back here (their epoch may be bumped late).
    pub(super) fn give_back(&self, engine: Engine) {
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE_ENGINES {
            idle.push(engine);
        }
    }

    /// Whether the manifest's `limits.fuel` meters calls (and so whether the
    /// fuel Extism reports is the plugin's).
    pub(super) fn metered(&self) -> bool {
        self.key.fuel.is_some()
    }

    fn build(&self) -> Result<Engine, String> {
        let link = Arc::new(Link::default());
        let mut manifest = ExtismManifest::new([Wasm::data(self.module.to_vec())])
            .with_memory_max(self.key.memory_pages)
            // Plugin HTTP goes through Tenon's boundary (`abi`); if Extism's
            // own client were ever reached, it would refuse every host.
            .disallow_all_hosts();
        if !self.key.paths.is_empty() {
            manifest = manifest.with_allowed_paths(self.key.paths.iter().cloned());
        }
        let mut wasmtime_config = wasmtime::Config::new();
        wasmtime_config.max_wasm_stack(self.key.stack);
        let mut builder = PluginBuilder::new(manifest)
            .with_wasmtime_config(wasmtime_config)
            .with_wasi(self.key.wasi)
            // Ignore EXTISM_DEBUG, EXTISM_COREDUMP, EXTISM_MEMDUMP and
            // EXTISM_PROFILE: a plugin's memory is its tenant's data and is
            // never written to files behind the operator's back.
            .with_debug_options(DebugOptions {
                profiling_strategy: wasmtime::ProfilingStrategy::None,
                coredump: None,
                memdump: None,
                debug_info: false,
            })
            .with_functions(abi::functions(&link, &self.imports));
        builder = match &self.cache_config {
            Some(path) => builder.with_cache_config(path),
            None => builder.with_cache_disabled(),
        };
        match (self.key.fuel, self.key.runs_at_instantiation) {
            (Some(fuel), _) => builder = builder.with_fuel_limit(fuel),
            // Extism's timer starts only once the instance is made, so
            // nothing but fuel stops a start function or `_initialize` that
            // loops: they get INSTANTIATION_FUEL, the call itself fuel it
            // cannot use up (its deadline stops it).
            (None, true) => {
                builder = builder
                    .with_fuel_limit(UNMETERED_FUEL)
                    .with_initialization_fuel_limit(INSTANTIATION_FUEL);
            }
            (None, false) => {}
        }
        let compiled = builder.compile().map_err(|e| format!("{e:#}"))?;
        Ok(Engine {
            compiled,
            link,
            guard: self.watchdog.guard(),
        })
    }
}

/// The engine sets of one runtime, by key; a set lives as long as a plugin
/// loaded with its key.
#[derive(Debug)]
pub(super) struct Engines {
    watchdog: Watchdog,
    sets: Mutex<HashMap<EngineKey, Weak<EngineSet>>>,
}

impl Engines {
    /// No engines yet; their calls will be watched by `watchdog`.
    pub(super) fn new(watchdog: Watchdog) -> Self {
        Self {
            watchdog,
            sets: Mutex::default(),
        }
    }

    /// The set for `key`, shared with every live load of the same key.
    pub(super) fn set(
        &self,
        key: EngineKey,
        module: &Arc<[u8]>,
        imports: &BTreeSet<(String, String)>,
        cache_config: Option<&Path>,
        dirs: Vec<GrantedDirectory>,
    ) -> Arc<EngineSet> {
        let mut sets = self.sets.lock();
        if let Some(set) = sets.get(&key).and_then(Weak::upgrade) {
            return set;
        }
        sets.retain(|_, set| set.strong_count() > 0);
        let set = Arc::new(EngineSet {
            watchdog: self.watchdog.clone(),
            module: module.clone(),
            imports: Arc::new(imports.clone()),
            key: key.clone(),
            cache_config: cache_config.map(Path::to_path_buf),
            idle: Mutex::new(Vec::new()),
            _dirs: dirs,
        });
        sets.insert(key, Arc::downgrade(&set));
        set
    }
}

/// Writes the wasmtime cache configuration that keeps compiled code in
/// `dir/extism/`, and returns its path (`dir/extism-cache.toml`, outside
/// the directory wasmtime's cache worker cleans up). wasmtime loads what it
/// finds there without authenticating it, so both directories are made
/// owner-only (0700) and the configuration file 0600; when a directory
/// cannot be made owner-only this fails, and the runtime runs without the
/// cache.
pub(super) fn write_cache_config(dir: &Path) -> std::io::Result<PathBuf> {
    let artifacts = dir.join("extism");
    crate::private::private_dir(dir)?;
    crate::private::private_dir(&artifacts)?;
    let artifacts = std::fs::canonicalize(&artifacts)?;
    let text = artifacts.to_str().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "the cache directory {} is not valid UTF-8",
                artifacts.display()
            ),
        )
    })?;
    // A JSON string is a valid TOML basic string.
    let quoted = serde_json::to_string(text).map_err(std::io::Error::other)?;
    let body = format!("[cache]\ndirectory = {quoted}\n");
    let path = dir.join("extism-cache.toml");
    if std::fs::read_to_string(&path).is_ok_and(|existing| existing == body) {
        return Ok(path);
    }
    // Written aside then renamed, so that a concurrent reader (another
    // runtime, another process) never sees half a file.
    crate::private::write_private_file(&path, body.as_bytes())?;
    Ok(path)
}
