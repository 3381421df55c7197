//! [`EngineBuilder`]: everything a host decides once, at start-up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tenon_hooks::{DispatchConfig, HookSpec};
use tenon_manifest::{LimitMaxima, RuntimeKind, Version};
use tenon_marketplace::TrustPolicy;
use tenon_metrics::{Telemetry, TelemetryConfig};
use tenon_registry::{
    EventWriter, EventWriterConfig, RegistryOptions, RegistryStore, SecretKey, TenantId,
};
use tenon_sandbox::{HostServices, MethodSpec, Runtime, SandboxConfig, ServiceDefinitionError};

use crate::config::{DenialLogLimits, EventRetention, GrantPolicy, HostProfile, KvLimits, Paths};
use crate::denials::DenialLog;
use crate::engine::{PluginEngine, Shared};
use crate::error::{EngineError, Result};
use crate::host::{EngineHost, KvWriteLimiter};
use crate::tenant::Tenants;

/// The environment variable that boots an engine in safe mode when set to
/// `1` or `true`.
pub const SAFE_MODE_ENV: &str = "TENON_SAFE_MODE";

/// The environment variable naming the environment the host runs in
/// (`development`, `staging`, `production`, …), whose config overrides
/// (`[config.environments.NAME]`) apply, unless the builder names one.
pub const ENVIRONMENT_ENV: &str = "TENON_ENV";

/// What a boot does with the plugins that fail to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BootFailures {
    /// Store them (state `error`, with the cause): a host's boot.
    #[default]
    Record,
    /// Only report them: an operator's short-lived process (the CLI) must not
    /// mark plugins failed because it lacks a key or a runtime the hosts
    /// have.
    ReportOnly,
}

/// Where the registry is.
enum RegistrySource {
    Location(String),
    Store(Arc<dyn RegistryStore>),
}

/// How often the background samples plugin resources by default.
const DEFAULT_RESOURCE_SAMPLING: Duration = Duration::from_secs(15);

/// Builds a [`PluginEngine`]. Every setting has a default: `build()` alone
/// gives an engine on `./.tenon/registry.db` serving tenant `default` with
/// the runtimes compiled in.
pub struct EngineBuilder {
    registry: RegistrySource,
    registry_options: RegistryOptions,
    profile: HostProfile,
    api_versions_set: bool,
    specs: Vec<HookSpec>,
    dispatch: DispatchConfig,
    grant_policy: GrantPolicy,
    trust: TrustPolicy,
    marketplace: crate::market::MarketplaceOptions,
    tenant: String,
    data_dir: Option<PathBuf>,
    safe_mode: Option<bool>,
    sandbox: SandboxConfig,
    telemetry: TelemetryConfig,
    runtimes: BTreeMap<RuntimeKind, Arc<dyn Runtime>>,
    #[cfg(feature = "native")]
    native: Option<Arc<tenon_sandbox::NativeRuntime>>,
    #[cfg(feature = "process")]
    process: Option<tenon_sandbox::ProcessConfig>,
    boot: bool,
    boot_failures: BootFailures,
    events: EventWriterConfig,
    retention: EventRetention,
    sampling: Option<Duration>,
    environment: Option<String>,
    kv: KvLimits,
    event_depth: usize,
    denials: DenialLogLimits,
    fairness: Option<tenon_sandbox::FairnessLimits>,
    services: HostServices,
    /// The first registration refused, reported by `build`.
    service_error: Option<ServiceDefinitionError>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("profile", &self.profile)
            .field("tenant", &self.tenant)
            .field("safe_mode", &self.safe_mode)
            .finish_non_exhaustive()
    }
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self {
            registry: RegistrySource::Location(tenon_registry::DEFAULT_SQLITE_PATH.to_owned()),
            registry_options: RegistryOptions::default(),
            profile: HostProfile::default(),
            api_versions_set: false,
            specs: Vec::new(),
            dispatch: DispatchConfig::default(),
            grant_policy: GrantPolicy::default(),
            trust: TrustPolicy::default(),
            marketplace: crate::market::MarketplaceOptions::default(),
            tenant: "default".to_owned(),
            data_dir: None,
            safe_mode: None,
            sandbox: SandboxConfig::default(),
            telemetry: TelemetryConfig::default(),
            runtimes: BTreeMap::new(),
            #[cfg(feature = "native")]
            native: None,
            #[cfg(feature = "process")]
            process: None,
            boot: true,
            boot_failures: BootFailures::Record,
            events: EventWriterConfig::default(),
            retention: EventRetention::default(),
            sampling: Some(DEFAULT_RESOURCE_SAMPLING),
            environment: None,
            kv: KvLimits::default(),
            event_depth: tenon_hooks::DEFAULT_MAX_CAUSATION_DEPTH,
            denials: DenialLogLimits::default(),
            fairness: None,
            services: HostServices::new(),
            service_error: None,
        }
    }
}

impl EngineBuilder {
    /// The registry: a SQLite path, `sqlite://…`, `postgres://…` or
    /// `memory:`.
    pub fn registry(mut self, location: &str) -> Self {
        self.registry = RegistrySource::Location(location.to_owned());
        self
    }

    /// A registry store opened by the host.
    pub fn registry_store(mut self, store: Arc<dyn RegistryStore>) -> Self {
        self.registry = RegistrySource::Store(store);
        self
    }

    /// Options for opening the registry. A secret key given earlier with
    /// [`secret_key`](Self::secret_key) is kept unless `options` has one.
    pub fn registry_options(mut self, mut options: RegistryOptions) -> Self {
        if options.secret_key.is_none() {
            options.secret_key = self.registry_options.secret_key.take();
        }
        self.registry_options = options;
        self
    }

    /// The key secrets are encrypted with at rest.
    pub fn secret_key(mut self, key: SecretKey) -> Self {
        self.registry_options.secret_key = Some(key);
        self
    }

    /// The host's name and version.
    pub fn host(mut self, name: &str, version: Version) -> Self {
        self.profile.name = name.to_owned();
        self.profile.version = Some(version);
        self
    }

    /// The plugin API versions served (default: those of the runtimes).
    pub fn api_versions(mut self, versions: &[Version]) -> Self {
        self.profile.api_versions = versions.to_vec();
        self.api_versions_set = true;
        self
    }

    /// The host's extension points.
    pub fn hooks(mut self, specs: impl IntoIterator<Item = HookSpec>) -> Self {
        self.specs.extend(specs);
        self
    }

    /// The capability vocabulary plugins may claim.
    pub fn capabilities<S: AsRef<str>>(mut self, names: &[S]) -> Self {
        self.profile.capabilities = Some(names.iter().map(|s| s.as_ref().to_owned()).collect());
        self
    }

    /// Permission kinds the host defines (such as `org` or `database`).
    pub fn permission_kinds<S: AsRef<str>>(mut self, kinds: &[S]) -> Self {
        self.profile.permission_kinds = kinds.iter().map(|s| s.as_ref().to_owned()).collect();
        self
    }

    /// Offers plugins the host service method `name` (`service.method`,
    /// such as `org.get`): callable by a plugin whose effective permissions
    /// hold `spec.permission` (`read:org` is granted by `org = ["read"]`),
    /// with input that fits `spec.input`; the handler's answer must fit
    /// `spec.output`. The permission's kind must be one of
    /// [`EngineBuilder::permission_kinds`]. A method that cannot be offered
    /// (a malformed name or permission, a schema outside the subset Tenon
    /// enforces, a name given twice) fails [`EngineBuilder::build`].
    pub fn service(mut self, name: &str, spec: MethodSpec) -> Self {
        if let Err(error) = self.services.register(name, spec) {
            self.service_error.get_or_insert(error);
        }
        self
    }

    /// Host features offered to `engine.features`.
    pub fn features<S: AsRef<str>>(mut self, features: &[S]) -> Self {
        self.profile.features = Some(features.iter().map(|s| s.as_ref().to_owned()).collect());
        self
    }

    /// The largest limits a manifest may ask for.
    pub fn limit_maxima(mut self, maxima: LimitMaxima) -> Self {
        self.profile.maxima = maxima;
        self
    }

    /// Which plugins are granted without an operator.
    pub fn grant_policy(mut self, policy: GrantPolicy) -> Self {
        self.grant_policy = policy;
        self
    }

    /// The operator's trust policy: which signatures are required, whose
    /// keys are trusted at which level, revoked keys, key rotations, and the
    /// development switch for plugin directories. Every install and upgrade,
    /// from any source, is checked against it before anything is stored.
    /// The default trusts no key and refuses unsigned packages and plugin
    /// directories; [`TrustPolicy::development`] accepts everything.
    pub fn trust_policy(mut self, policy: TrustPolicy) -> Self {
        self.trust = policy;
        self
    }

    /// How marketplaces are reached: the cache directory, offline use, the
    /// root metadata to trust.
    pub fn marketplace(mut self, options: crate::market::MarketplaceOptions) -> Self {
        self.marketplace = options;
        self
    }

    /// The tenant the built engine serves (others through
    /// [`PluginEngine::for_tenant`]).
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.tenant = tenant.to_owned();
        self
    }

    /// The engine's directory (plugin data, compiled-module cache); by
    /// default the registry file's directory, or `./.tenon`.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Boot with third-party plugins inactive (also `TENON_SAFE_MODE=1`).
    pub fn safe_mode(mut self, on: bool) -> Self {
        self.safe_mode = Some(on);
        self
    }

    /// Host-level sandbox policy (private networks, log bounds…).
    pub fn sandbox(mut self, config: SandboxConfig) -> Self {
        self.sandbox = config;
        self
    }

    /// Health thresholds and the crash guard.
    pub fn telemetry(mut self, config: TelemetryConfig) -> Self {
        self.telemetry = config;
        self
    }

    /// The dispatch budget.
    pub fn dispatch(mut self, config: DispatchConfig) -> Self {
        self.dispatch = config;
        self
    }

    /// Adds (or replaces) the runtime for its kind.
    pub fn runtime(mut self, runtime: Arc<dyn Runtime>) -> Self {
        self.runtimes.insert(runtime.kind(), runtime);
        self
    }

    /// The process runtime's own settings (start-up timeout, resource
    /// limits, where its private directories go), for the process runtime
    /// the engine makes when none was given with [`EngineBuilder::runtime`].
    /// Default: [`tenon_sandbox::ProcessConfig::default`].
    #[cfg(feature = "process")]
    pub fn process_config(mut self, config: tenon_sandbox::ProcessConfig) -> Self {
        self.process = Some(config);
        self
    }

    /// The native runtime first-party plugins are registered with.
    #[cfg(feature = "native")]
    pub fn native_runtime(mut self, runtime: Arc<tenon_sandbox::NativeRuntime>) -> Self {
        self.native = Some(runtime);
        self
    }

    /// Whether `build` (and the first use of another tenant) starts the
    /// enabled plugins (default `true`).
    pub fn boot(mut self, boot: bool) -> Self {
        self.boot = boot;
        self
    }

    /// What a boot does with plugins that fail to start (default: record
    /// them).
    pub fn boot_failures(mut self, failures: BootFailures) -> Self {
        self.boot_failures = failures;
        self
    }

    /// The environment the host runs in (default: `TENON_ENV`, else none):
    /// plugins' `[config.environments.NAME]` values replace their config
    /// defaults. 1-32 of `a-z`, `0-9`, `_`, `-`.
    pub fn environment(mut self, name: &str) -> Self {
        self.environment = Some(name.to_owned());
        self
    }

    /// How often the background samples the resources of every served
    /// tenant's plugins (default: every 15 s; `None`: only when statistics
    /// are asked for, see [`PluginEngine::sample_resources`]).
    pub fn resource_sampling(mut self, interval: Option<Duration>) -> Self {
        self.sampling = interval;
        self
    }

    /// How much of each tenant's event log to keep, pruned in the
    /// background (default: everything).
    pub fn event_retention(mut self, retention: EventRetention) -> Self {
        self.retention = retention;
        self
    }

    /// Each plugin's KV key quota and write rate (default: 100 000 keys,
    /// 1000 writes per second).
    pub fn kv_limits(mut self, limits: KvLimits) -> Self {
        self.kv = limits;
        self
    }

    /// Caps on live WebAssembly instances and the memory they may reserve,
    /// per plugin, per tenant and per runtime, so that one tenant cannot
    /// exhaust the instances every tenant shares; idle instances of other
    /// plugins are dropped to make room before a call is refused with
    /// [`SandboxError::InstanceCap`]. Each default runtime (component,
    /// Extism) keeps its own ledger under these caps. Default:
    /// [`FairnessLimits::for_pool`] of the runtime's instances (1000): 250
    /// live instances and 15.6 GiB of instance memory per tenant, 62.5 GiB
    /// per runtime, 7.8 GiB per plugin (each instance counts its
    /// `limits.memory`). A runtime added with [`EngineBuilder::runtime`]
    /// keeps its own settings.
    ///
    /// [`FairnessLimits::for_pool`]: tenon_sandbox::FairnessLimits::for_pool
    /// [`SandboxError::InstanceCap`]: tenon_sandbox::SandboxError::InstanceCap
    pub fn fairness(mut self, limits: tenon_sandbox::FairnessLimits) -> Self {
        self.fairness = Some(limits);
        self
    }

    /// How many events may lead to an event on a tenant's bus (default
    /// [`tenon_hooks::DEFAULT_MAX_CAUSATION_DEPTH`], 8; at most
    /// [`tenon_hooks::MAX_CAUSATION_DEPTH`], 64). An event a plugin publishes
    /// while handling an event continues that event's chain; one deeper than
    /// this is not delivered: the plugin's `emit-event` fails with
    /// `quota-exceeded`, and the cut is recorded (an `error` event naming the
    /// chain) and counted (`tenon_event_chains_cut_total`).
    pub fn event_chain_depth(mut self, depth: usize) -> Self {
        self.event_depth = depth.min(tenon_hooks::MAX_CAUSATION_DEPTH);
        self
    }

    /// How many permission denials are logged and audited one by one per
    /// plugin, tenant, permission kind and window (default 5 per 10 s);
    /// the rest are counted and reported together when the window ends.
    pub fn denial_log(mut self, limits: DenialLogLimits) -> Self {
        self.denials = limits;
        self
    }

    /// How hook receipts, other events and plugins' log lines are batched
    /// into the registry, and how many log lines are kept per plugin
    /// ([`EventWriterConfig::logs_per_plugin`], default 1000).
    pub fn event_writer(mut self, config: EventWriterConfig) -> Self {
        self.events = config;
        self
    }

    fn data_dir_for(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        if let RegistrySource::Location(location) = &self.registry
            && let Ok(tenon_registry::RegistryLocation::Sqlite(path)) =
                tenon_registry::RegistryLocation::parse(location)
            && let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            return parent.to_path_buf();
        }
        Path::new(".tenon").to_path_buf()
    }

    /// Opens the registry, sets up the runtimes and, unless told otherwise,
    /// boots the enabled plugins.
    pub async fn build(mut self) -> Result<PluginEngine> {
        self.trust.check().map_err(|source| EngineError::Package {
            path: "the trust policy".into(),
            source,
        })?;
        if let Some(error) = self.service_error.take() {
            return Err(error.into());
        }
        self.check_service_kinds()?;
        let tenant = TenantId::new(&self.tenant)?;
        let paths = Paths {
            root: self.data_dir_for(),
        };
        self.add_default_runtimes(&paths)?;
        let store = match &self.registry {
            RegistrySource::Store(store) => store.clone(),
            RegistrySource::Location(location) => {
                tenon_registry::open(location, &self.registry_options).await?
            }
        };
        if !self.api_versions_set {
            self.profile.api_versions = served_api_versions(&self.runtimes);
        }
        let environment = match self.environment.take() {
            Some(name) => Some(name),
            None => std::env::var(ENVIRONMENT_ENV)
                .ok()
                .filter(|name| !name.is_empty()),
        };
        if let Some(name) = &environment
            && !tenon_manifest::is_environment_name(name)
        {
            return Err(EngineError::Config(format!(
                "the environment {name:?} (builder or {ENVIRONMENT_ENV}) is not a name: use 1-32 of a-z, 0-9, '_' or '-', such as `production`"
            )));
        }
        let safe_mode = self.safe_mode.unwrap_or_else(|| {
            std::env::var(SAFE_MODE_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        });
        let writer = EventWriter::spawn(store.clone(), self.events);
        let tenants = Arc::new(Tenants::default());
        let (decisions, decided) = crate::background::Decisions::new();
        let telemetry = Arc::new(Telemetry::new(self.telemetry).with_sink(decisions.clone()));
        let host = Arc::new(EngineHost {
            store: store.clone(),
            writer: writer.clone(),
            tenants: Arc::downgrade(&tenants),
            kv_writes: KvWriteLimiter::new(self.kv),
            telemetry: telemetry.clone(),
            denials: DenialLog::new(self.denials),
            services: std::mem::take(&mut self.services),
        });
        let shared = Arc::new(Shared {
            profile: self.profile,
            specs: self.specs,
            dispatch: self.dispatch,
            grant_policy: self.grant_policy,
            trust: self.trust,
            marketplace: self.marketplace,
            paths,
            safe_mode,
            store,
            writer,
            runtimes: self.runtimes,
            telemetry,
            tenants,
            host,
            tasks: parking_lot::Mutex::new(Vec::new()),
            decisions,
            boot: self.boot,
            boot_records_failures: self.boot_failures == BootFailures::Record,
            retention: self.retention,
            sampling: self.sampling,
            event_depth: self.event_depth,
            environment,
            instance_tenants: parking_lot::Mutex::default(),
        });
        let engine = PluginEngine::new(shared.clone(), &tenant)?;
        crate::background::start(&shared, decided).await?;
        if self.boot {
            engine.boot().await?;
        }
        Ok(engine)
    }

    /// Refuses a service whose permission kind no manifest could declare.
    fn check_service_kinds(&self) -> Result<()> {
        let kinds = &self.profile.permission_kinds;
        for (name, method) in self.services.methods() {
            let kind = method.permission().kind();
            if !kinds.contains(kind) {
                return Err(EngineError::Config(format!(
                    "the service method `{name}` needs `{}`, but `{kind}` is not one of the host's permission kinds ({}): add it with EngineBuilder::permission_kinds, or no plugin could ever be granted it",
                    method.permission(),
                    if kinds.is_empty() {
                        "it defines none".to_owned()
                    } else {
                        kinds.iter().cloned().collect::<Vec<_>>().join(", ")
                    }
                )));
            }
        }
        Ok(())
    }

    #[allow(unused_variables)]
    fn add_default_runtimes(&mut self, paths: &Paths) -> Result<()> {
        #[cfg(feature = "component")]
        if !self.runtimes.contains_key(&RuntimeKind::Component) {
            let config = tenon_sandbox::ComponentConfig::default()
                .with_sandbox(self.sandbox.clone())
                .with_cache_dir(paths.cache().join("component"))
                .with_cache_key_file(paths.cache_key());
            let config = match self.fairness {
                Some(limits) => config.with_fairness(limits),
                None => config,
            };
            let runtime = tenon_sandbox::ComponentRuntime::new(config)
                .map_err(|e| EngineError::Config(format!("component runtime: {e}")))?;
            self.runtimes
                .insert(RuntimeKind::Component, Arc::new(runtime));
        }
        #[cfg(feature = "extism")]
        if !self.runtimes.contains_key(&RuntimeKind::Extism) {
            let config = tenon_sandbox::ExtismConfig::default()
                .with_sandbox(self.sandbox.clone())
                .with_cache_dir(paths.cache().join("extism"));
            let config = match self.fairness {
                Some(limits) => config.with_fairness(limits),
                None => config,
            };
            self.runtimes.insert(
                RuntimeKind::Extism,
                Arc::new(tenon_sandbox::ExtismRuntime::new(config)),
            );
        }
        #[cfg(feature = "process")]
        if !self.runtimes.contains_key(&RuntimeKind::Process) {
            self.runtimes.insert(
                RuntimeKind::Process,
                Arc::new(tenon_sandbox::ProcessRuntime::new(
                    self.sandbox.clone(),
                    self.process.clone().unwrap_or_default(),
                )),
            );
        }
        #[cfg(feature = "native")]
        if !self.runtimes.contains_key(&RuntimeKind::Native) {
            let native = self.native.take().unwrap_or_else(|| {
                Arc::new(tenon_sandbox::NativeRuntime::new(self.sandbox.clone()))
            });
            self.runtimes.insert(RuntimeKind::Native, native);
        }
        Ok(())
    }
}

/// The plugin API versions the runtimes serve.
fn served_api_versions(runtimes: &BTreeMap<RuntimeKind, Arc<dyn Runtime>>) -> Vec<Version> {
    let mut versions: BTreeSet<Version> = BTreeSet::new();
    #[cfg(feature = "component")]
    if runtimes.contains_key(&RuntimeKind::Component) {
        for text in tenon_sandbox::ComponentRuntime::supported_versions() {
            let version = text.rsplit('@').next().unwrap_or(&text);
            if let Ok(version) = Version::parse(version) {
                versions.insert(version);
            }
        }
    }
    let _ = runtimes;
    if versions.is_empty() {
        versions.insert(Version::new(1, 0, 0));
    }
    versions.into_iter().collect()
}
