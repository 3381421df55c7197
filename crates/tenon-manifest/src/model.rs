//! The manifest's types: what a parsed, valid `tenon.toml` holds.
//!
//! These types are the contract between the layers: the resolver reads
//! [`Manifest::dependencies`] and [`Manifest::engine`], the sandbox reads
//! [`Manifest::runtime`], [`Manifest::limits`] and [`Manifest::permissions`],
//! the engine reads the rest. They serialize to the canonical form of the
//! manifest (the one `tenon manifest convert` writes).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use semver::{Version, VersionReq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::PluginId;
use crate::units::{ByteSize, DurationSpec};

/// The manifest format version this crate reads and writes.
pub const MANIFEST_VERSION: u32 = 1;

/// A plugin manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The version of the manifest format itself; always [`MANIFEST_VERSION`].
    pub manifest_version: u32,
    /// What the plugin is.
    pub plugin: PluginMeta,
    /// Which plugin API and host versions it works with.
    #[serde(default)]
    pub engine: EngineRequirement,
    /// How it runs.
    pub runtime: RuntimeSpec,
    /// What it may consume.
    #[serde(default)]
    pub limits: Limits,
    /// What it may reach.
    #[serde(default, skip_serializing_if = "Permissions::is_empty")]
    pub permissions: Permissions,
    /// The host hooks it handles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookDecl>,
    /// The commands it answers (`plugin-id:command`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandDecl>,
    /// HTTP endpoints it asks the host to route to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointDecl>,
    /// When it is started.
    #[serde(default)]
    pub activation: Activation,
    /// Other plugins it needs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependencies: BTreeMap<PluginId, Dependency>,
    /// What it provides to the host beyond hooks (abilities, a provider).
    #[serde(default, skip_serializing_if = "Provides::is_empty")]
    pub provides: Provides,
    /// Its configuration: fields or a JSON Schema, and defaults.
    #[serde(default, skip_serializing_if = "ConfigSpec::is_empty")]
    pub config: ConfigSpec,
}

impl Manifest {
    /// A manifest with the given identity and runtime and every other field
    /// at its default, for building manifests in code.
    pub fn new(plugin: PluginMeta, runtime: RuntimeSpec) -> Self {
        Self {
            manifest_version: MANIFEST_VERSION,
            plugin,
            engine: EngineRequirement::default(),
            runtime,
            limits: Limits::default(),
            permissions: Permissions::default(),
            hooks: Vec::new(),
            commands: Vec::new(),
            endpoints: Vec::new(),
            activation: Activation::default(),
            dependencies: BTreeMap::new(),
            provides: Provides::default(),
            config: ConfigSpec::default(),
        }
    }
}

impl PluginMeta {
    /// The required identity; every other field empty.
    pub fn new(id: PluginId, name: impl Into<String>, version: Version) -> Self {
        Self {
            id,
            name: name.into(),
            version,
            description: String::new(),
            authors: Vec::new(),
            license: None,
            homepage: None,
            repository: None,
            keywords: Vec::new(),
            categories: Vec::new(),
            capabilities: Vec::new(),
        }
    }
}

impl RuntimeSpec {
    /// A runtime of `kind` with nothing else set (add `module` for
    /// WebAssembly kinds, `command` for processes).
    pub fn new(kind: RuntimeKind) -> Self {
        Self {
            kind,
            module: None,
            sha256: None,
            entry: None,
            command: None,
            args: Vec::new(),
        }
    }
}

impl HookDecl {
    /// A handler of `name` with the default priority, policy and retries.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            priority: Priority::default(),
            fail_policy: FailPolicy::default(),
            timeout: None,
            retries: 0,
            backoff: None,
        }
    }
}

/// `[plugin]`: identity and description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginMeta {
    /// `publisher/name`.
    pub id: PluginId,
    /// A human name.
    pub name: String,
    /// Strict semver.
    pub version: Version,
    /// One or two sentences.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `Name <email>` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    /// An SPDX expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// A web page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// The source repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Search words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// Catalog categories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// What it offers, from the host's capability vocabulary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
}

/// `[engine]`: compatibility with the plugin API and the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineRequirement {
    /// The plugin API versions it was built for (the WIT world version for
    /// component plugins).
    #[serde(with = "req_serde")]
    pub tenon: VersionReq,
    /// The host application's versions it works with, if it cares.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_req_serde"
    )]
    pub host: Option<VersionReq>,
    /// Host features it needs (`events`, `storage`…), checked against what
    /// the host offers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

impl Default for EngineRequirement {
    fn default() -> Self {
        Self {
            tenon: VersionReq::parse("^1").expect("a valid requirement"),
            host: None,
            features: Vec::new(),
        }
    }
}

/// `[runtime]`: how the plugin's code runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSpec {
    /// Which runtime.
    pub kind: RuntimeKind,
    /// The module, relative to the plugin directory (component and extism).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// A pin of the module's sha256, 64 lowercase hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The entry point a native plugin is registered under in the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// The executable of a process plugin, relative to the plugin directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// The runtimes a manifest can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// A WebAssembly component for the `tenon:plugin` WIT world.
    Component,
    /// A WebAssembly module built with an Extism PDK.
    Extism,
    /// Trusted Rust code linked into the host.
    Native,
    /// An executable talking to the host over a pipe (out-of-process).
    Process,
}

impl RuntimeKind {
    /// The name used in manifests.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Component => "component",
            Self::Extism => "extism",
            Self::Native => "native",
            Self::Process => "process",
        }
    }

    /// Whether the kind runs a WebAssembly module (and so needs `module`).
    pub const fn is_wasm(self) -> bool {
        matches!(self, Self::Component | Self::Extism)
    }

    /// All kinds, in manifest order.
    pub const ALL: [Self; 4] = [Self::Component, Self::Extism, Self::Native, Self::Process];
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[limits]`: what one plugin may consume. Every field is optional in a
/// manifest; absent ones take the values of [`Limits::default`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Linear memory cap per instance.
    pub memory: ByteSize,
    /// Time per call (a hook's own timeout may be shorter).
    pub timeout: DurationSpec,
    /// Optional fuel per call (deterministic instruction budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Instance reuse across calls.
    pub isolation: Isolation,
    /// Warm instances at most (with `reuse`), or concurrent calls at most
    /// (with `fresh`).
    pub max_instances: u32,
    /// How long a call waits for an instance before failing.
    pub wait_timeout: DurationSpec,
    /// Guest stack cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<ByteSize>,
    /// The largest answer the plugin may give in one call (a hook's answer
    /// with its patch, a function's output, a snapshot); `None` takes the
    /// host's default. The host refuses a larger answer before copying or
    /// parsing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output: Option<ByteSize>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory: ByteSize::mib(64),
            timeout: DurationSpec::millis(1500),
            fuel: None,
            isolation: Isolation::Reuse,
            max_instances: 4,
            wait_timeout: DurationSpec::millis(5000),
            stack: None,
            max_output: None,
        }
    }
}

/// Whether calls share warm instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// A pool of warm instances, reused across calls.
    #[default]
    Reuse,
    /// A new instance for every call.
    Fresh,
}

impl Isolation {
    /// The name used in manifests.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Reuse => "reuse",
            Self::Fresh => "fresh",
        }
    }
}

/// `[permissions]`: what the plugin asks to reach. The operator grants some
/// or all of it; the sandbox enforces the intersection.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Permissions {
    /// Outbound HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkPermission>,
    /// Directories preopened for the plugin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filesystem: Vec<FsPermission>,
    /// A key-value store of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv: Option<KvPermission>,
    /// Config keys holding secrets the plugin may read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Event topics it may publish and subscribe to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<EventsPermission>,
    /// Power over hooks: failing closed, and priorities above the host's
    /// threshold. Never written in a manifest: derived from its
    /// `[[hooks]]` when it is parsed, so that an operator grants it like any
    /// other permission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<HooksPermission>,
    /// Permissions from the host's own vocabulary (`org = ["read"]`,
    /// `database = { read = ["forms"] }`): kind → actions or scopes. The
    /// host decides what they mean.
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub host: BTreeMap<String, HostPermission>,
}

impl Permissions {
    /// Whether nothing at all is asked for.
    pub fn is_empty(&self) -> bool {
        self.network.is_none()
            && self.filesystem.is_empty()
            && self.kv.is_none()
            && self.secrets.is_empty()
            && self.events.is_none()
            && self.hooks.is_none()
            && self.host.is_empty()
    }

    /// The built-in permission kinds, as they are spelled in manifests.
    pub const BUILTIN_KINDS: [&'static str; 5] =
        ["network", "filesystem", "kv", "secrets", "events"];
}

/// `permissions.network`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkPermission {
    /// Hosts it may call: `api.example.com`, `*.example.com`,
    /// `example.com:8443`, `*.example.com:443`.
    #[serde(default)]
    pub outbound: Vec<HostPattern>,
    /// HTTP methods; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Whether loopback and private addresses may be reached (the host must
    /// also allow it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_private: bool,
    /// Largest response body it may receive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response: Option<ByteSize>,
}

/// A host allowlist entry: a host name or a `*.` wildcard, and a port: none
/// (the scheme's default port only), a number, or `*` (any port, said
/// out loud so that the operator sees it when granting).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPattern {
    /// Lowercase host, possibly starting with `*.`.
    pub host: String,
    /// Which ports.
    pub port: HostPort,
}

/// The ports a [`HostPattern`] allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum HostPort {
    /// No port written: the URL scheme's default port only (80 for
    /// `http`, 443 for `https`).
    #[default]
    SchemeDefault,
    /// `:8443`: this port only.
    Exact(u16),
    /// `:*`: any port.
    Any,
}

/// Why a host pattern is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{pattern}` is not a host pattern: {reason}")]
pub struct HostPatternError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong.
    pub reason: String,
}

impl HostPattern {
    /// Whether a URL with `scheme`, `host` (already lowercased, no trailing
    /// dot) and `port` matches.
    ///
    /// `*.example.com` matches any subdomain of `example.com`, at any depth,
    /// but not `example.com` itself. A pattern without a port matches only
    /// the scheme's default port (80 for `http`, 443 for `https`; a scheme
    /// without one matches no portless pattern): `example.com` allows
    /// `https://example.com` but not `https://example.com:6379`, which needs
    /// `example.com:6379` or `example.com:*`.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let port_allowed = match self.port {
            HostPort::SchemeDefault => default_port(scheme) == Some(port),
            HostPort::Exact(allowed) => allowed == port,
            HostPort::Any => true,
        };
        if !port_allowed {
            return false;
        }
        match self.host.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
            None => self.host == host,
        }
    }
}

/// The port a URL of `scheme` uses when it names none.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl FromStr for HostPattern {
    type Err = HostPatternError;
    fn from_str(pattern: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| HostPatternError {
            pattern: pattern.to_owned(),
            reason: reason.to_owned(),
        };
        if pattern.contains("://") {
            return Err(fail("write the host alone, without a scheme"));
        }
        if pattern.contains('/') {
            return Err(fail("write the host alone, without a path"));
        }
        let (host, port) = match pattern.rsplit_once(':') {
            Some((host, "*")) => (host, HostPort::Any),
            Some((host, port)) => {
                let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                    fail("the port must be a number from 1 to 65535, or `*` for any port")
                })?;
                (host, HostPort::Exact(port))
            }
            None => (pattern, HostPort::SchemeDefault),
        };
        if host.is_empty() {
            return Err(fail("the host is empty"));
        }
        if host.len() > 253 {
            return Err(fail("the host is longer than 253 characters"));
        }
        let labels = host.strip_prefix("*.").unwrap_or(host);
        if labels.contains('*') {
            return Err(fail(
                "a wildcard may only be the whole first label, as in `*.example.com`",
            ));
        }
        for label in labels.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(fail("each dot-separated label must be 1 to 63 characters"));
            }
            if !label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(fail(
                    "a host may hold only lowercase ascii letters, digits, '-' and '.'",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(fail("a label may not start or end with '-'"));
            }
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            HostPort::SchemeDefault => f.write_str(&self.host),
            HostPort::Exact(port) => write!(f, "{}:{port}", self.host),
            HostPort::Any => write!(f, "{}:*", self.host),
        }
    }
}

/// `permissions.filesystem[]`: a directory, relative to the plugin's data
/// root, preopened for the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsPermission {
    /// A relative path that does not climb out (`..`).
    pub path: String,
    /// Read only, or read and write.
    #[serde(default)]
    pub mode: FsMode,
}

/// Filesystem access mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsMode {
    /// Read only.
    #[default]
    Read,
    /// Read and write.
    ReadWrite,
}

impl FsMode {
    /// The name used in manifests.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::ReadWrite => "readwrite",
        }
    }
}

/// `permissions.kv`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvPermission {
    /// Total bytes of keys and values the plugin may keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<ByteSize>,
}

/// `permissions.events`: topic patterns (`notify.*`, `*`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsPermission {
    /// Topics it may emit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
    /// Topics it may receive.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribe: Vec<String>,
}

/// `permissions.hooks`: what a plugin may do to the hooks it handles, beyond
/// observing and patching them at an ordinary priority.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksPermission {
    /// Hooks on which its handler may fail closed (an error or timeout
    /// stops the host's operation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fail_closed: Vec<String>,
    /// Hooks on which it runs above the host's priority threshold, with the
    /// priority it asks for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub priority: BTreeMap<String, i32>,
}

impl HooksPermission {
    /// The power `hooks` ask for: every hook declared `fail_policy =
    /// "closed"`, and every hook whose priority is above `threshold`;
    /// `None` when they ask for none.
    pub fn derive(hooks: &[HookDecl], threshold: i32) -> Option<Self> {
        let mut power = Self::default();
        for hook in hooks {
            if hook.fail_policy == FailPolicy::Closed && !power.fail_closed.contains(&hook.name) {
                power.fail_closed.push(hook.name.clone());
            }
            if hook.priority.0 > threshold {
                let asked = power.priority.entry(hook.name.clone()).or_insert(i32::MIN);
                *asked = (*asked).max(hook.priority.0);
            }
        }
        (!power.fail_closed.is_empty() || !power.priority.is_empty()).then_some(power)
    }
}

/// A permission from the host's vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HostPermission {
    /// `kind = true`: the whole kind.
    Flag(bool),
    /// `kind = ["read", "write"]`: actions.
    Actions(Vec<String>),
    /// `kind = { read = ["forms"], write = [] }`: actions with scopes.
    Scoped(BTreeMap<String, Vec<String>>),
}

/// `[[hooks]]`: a hook the plugin handles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookDecl {
    /// The host's hook name, such as `response.pre_deliver`.
    pub name: String,
    /// Higher runs first.
    #[serde(default)]
    pub priority: Priority,
    /// What an error or a timeout does to the chain.
    #[serde(default)]
    pub fail_policy: FailPolicy,
    /// Per-handler timeout; the host's default for the hook when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// Extra attempts after a failure.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// Delay between attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A handler priority: higher runs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Priority(pub i32);

impl Priority {
    /// System-critical handlers.
    pub const CRITICAL: Self = Self(1000);
    /// High-priority business logic.
    pub const HIGH: Self = Self(500);
    /// Ordinary handlers (the default).
    pub const NORMAL: Self = Self(100);
    /// Optional enhancements.
    pub const LOW: Self = Self(50);
    /// Cleanup and finalization.
    pub const CLEANUP: Self = Self(10);

    /// The named levels, highest first.
    pub const NAMED: [(&'static str, Self); 5] = [
        ("critical", Self::CRITICAL),
        ("high", Self::HIGH),
        ("normal", Self::NORMAL),
        ("low", Self::LOW),
        ("cleanup", Self::CLEANUP),
    ];

    /// Parses a named level (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMED
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, p)| *p)
    }
}

impl Default for Priority {
    fn default() -> Self {
        Self::NORMAL
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Self::NAMED.iter().find(|(_, p)| p == self) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for Priority {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match Self::NAMED.iter().find(|(_, p)| p == self) {
            Some((name, _)) => serializer.serialize_str(name),
            None => serializer.serialize_i32(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i32),
            Name(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Int(n) => Ok(Self(n)),
            Raw::Name(name) => Self::from_name(&name).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{name}` is not a priority: use critical, high, normal, low, cleanup or an integer"
                ))
            }),
        }
    }
}

/// What an error or timeout of one handler does to the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailPolicy {
    /// The chain goes on.
    #[default]
    Open,
    /// The chain stops.
    Closed,
}

/// Delay between retry attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// Linear (`delay × attempt`) or exponential (`delay × 2^(attempt-1)`).
    #[serde(default)]
    pub kind: BackoffKind,
    /// The first delay.
    pub delay: DurationSpec,
}

/// The shape of a backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackoffKind {
    /// `delay × attempt`.
    #[default]
    Linear,
    /// `delay × 2^(attempt-1)`.
    Exponential,
}

/// `[[commands]]`: a command other plugins and the host can call as
/// `plugin-id:name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandDecl {
    /// The command's name within the plugin.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The exported function that serves it; the command's name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
}

/// `[[endpoints]]`: an HTTP route the host may forward to the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointDecl {
    /// The route, starting with `/`.
    pub path: String,
    /// The HTTP method.
    pub method: String,
    /// The exported function that serves it.
    pub function: String,
    /// Whether the caller must be authenticated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auth: bool,
    /// What it is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// At most `requests` calls per `window`, per caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// `endpoints[].rate_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Calls allowed per window (at least 1).
    pub requests: u32,
    /// The window.
    pub window: DurationSpec,
}

impl EndpointDecl {
    /// The HTTP methods an endpoint may name, as written in manifests.
    pub const METHODS: [&'static str; 7] =
        ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
}

/// `[activation]`: when the plugin is started.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activation {
    /// Start when the host boots.
    #[serde(default)]
    pub on_startup: bool,
    /// Start on the first dispatch of any of these hooks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_hooks: Vec<String>,
    /// Start on the first call of any of these commands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_commands: Vec<String>,
    /// Start on the first of these events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_events: Vec<String>,
}

impl Activation {
    /// Whether the plugin is started only on first use.
    pub fn is_lazy(&self) -> bool {
        !self.on_startup
            && (!self.on_hooks.is_empty()
                || !self.on_commands.is_empty()
                || !self.on_events.is_empty())
    }
}

/// A dependency on another plugin: `"acme/x" = "^1.0"` or `"acme/x" = {
/// version = "^1.0", optional = true, scope = "peer" }`. It serializes to the
/// short form when only `version` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    /// The versions that fit.
    pub version: VersionReq,
    /// Whether the plugin works without it.
    pub optional: bool,
    /// How it is needed.
    pub scope: DependencyScope,
}

impl Dependency {
    /// A required runtime dependency on `version`.
    pub fn new(version: VersionReq) -> Self {
        Self {
            version,
            optional: false,
            scope: DependencyScope::Runtime,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DependencyTable {
    #[serde(with = "req_serde")]
    version: VersionReq,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    optional: bool,
    #[serde(default, skip_serializing_if = "DependencyScope::is_runtime")]
    scope: DependencyScope,
}

impl Serialize for Dependency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !self.optional && self.scope.is_runtime() {
            return serializer.collect_str(&self.version);
        }
        DependencyTable {
            version: self.version.clone(),
            optional: self.optional,
            scope: self.scope,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Dependency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Short(String),
            Table(DependencyTable),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Short(text) => VersionReq::parse(&text)
                .map(Self::new)
                .map_err(serde::de::Error::custom),
            Raw::Table(t) => Ok(Self {
                version: t.version,
                optional: t.optional,
                scope: t.scope,
            }),
        }
    }
}

/// How a dependency is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DependencyScope {
    /// Installed with the plugin and activated before it.
    #[default]
    Runtime,
    /// Must be present, but is not installed on the plugin's behalf.
    Peer,
    /// Needed only to develop the plugin; ignored by hosts.
    Dev,
}

impl DependencyScope {
    fn is_runtime(&self) -> bool {
        *self == Self::Runtime
    }

    /// The name used in manifests.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Runtime => "runtime",
            Self::Peer => "peer",
            Self::Dev => "dev",
        }
    }
}

/// `[provides]`: what the plugin offers beyond hooks (the Go runner's
/// abilities and providers).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provides {
    /// Ability backends: a capability and the operations served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abilities: Vec<Ability>,
    /// A named provider (for example an OAuth integration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Integration types it contributes (names the host interprets, such as
    /// `telegram`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub integrations: Vec<String>,
    /// Skills it contributes (names the host interprets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<String>,
}

impl Provides {
    /// Whether nothing is provided.
    pub fn is_empty(&self) -> bool {
        self.abilities.is_empty()
            && self.provider.is_none()
            && self.integrations.is_empty()
            && self.skills.is_empty()
    }
}

/// An ability backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ability {
    /// The capability, from the host's vocabulary.
    pub capability: String,
    /// The operations served.
    #[serde(default)]
    pub operations: Vec<String>,
}

/// A provider declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// Its name.
    pub name: String,
    /// Whether it authenticates with OAuth.
    #[serde(default)]
    pub oauth: bool,
}

/// `[config]`: the plugin's configuration, as simple fields or as a JSON
/// Schema, with defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSpec {
    /// The simple form.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<ConfigField>,
    /// The JSON Schema form (draft 2020-12 subset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
    /// Defaults for keys of the schema form.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub defaults: serde_json::Map<String, serde_json::Value>,
    /// Per environment (`development`, `staging`, `production`, or any
    /// name of 1-32 `a-z`, `0-9`, `_`, `-`), values that replace the
    /// defaults when the host runs in it (`TENON_ENV`); values an operator
    /// set still win. Never secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environments: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

impl ConfigSpec {
    /// Whether no configuration is declared.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
            && self.schema.is_none()
            && self.defaults.is_empty()
            && self.environments.is_empty()
    }

    /// The spec as it applies in `environment`: its overrides become the
    /// defaults of their keys. Borrowed unchanged when there is no
    /// environment or it declares no overrides for it.
    pub fn for_environment(&self, environment: Option<&str>) -> std::borrow::Cow<'_, Self> {
        match environment.and_then(|name| self.environments.get(name)) {
            Some(overrides) if !overrides.is_empty() => {
                let mut spec = self.clone();
                spec.defaults
                    .extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
                std::borrow::Cow::Owned(spec)
            }
            _ => std::borrow::Cow::Borrowed(self),
        }
    }
}

/// Whether `name` can name an environment: 1-32 of `a-z`, `0-9`, `_`, `-`.
pub fn is_environment_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A configuration field of the simple form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigField {
    /// The key.
    pub key: String,
    /// The JSON type of its value.
    #[serde(rename = "type")]
    pub ty: ConfigType,
    /// A human label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether activation waits for a value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// Whether the value is a secret: stored encrypted, never shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    /// The value used when none is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// The only values allowed, if set.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<serde_json::Value>>,
    /// The smallest number allowed (integer and number fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// The largest number allowed (integer and number fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// The fewest characters (strings) or items (arrays) allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// The most characters (strings) or items (arrays) allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
}

/// The JSON type of a config value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigType {
    /// A string.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A list.
    Array,
    /// A map.
    Object,
}

impl ConfigType {
    /// The name used in manifests.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Array => "array",
            Self::Object => "object",
        }
    }

    /// Whether `value` has this type.
    pub fn admits(self, value: &serde_json::Value) -> bool {
        use serde_json::Value;
        match self {
            Self::String => value.is_string(),
            Self::Integer => value.is_i64() || value.is_u64(),
            Self::Number => value.is_number(),
            Self::Boolean => value.is_boolean(),
            Self::Array => value.is_array(),
            Self::Object => matches!(value, Value::Object(_)),
        }
    }
}

/// The enums written as keywords in manifests: their spellings, for parsing
/// and for messages that list the allowed values.
pub(crate) trait Keyword: Copy + 'static {
    /// Every value with its spelling, in documentation order.
    const VARIANTS: &'static [(&'static str, Self)];

    /// The value spelled `name` (exactly).
    fn from_keyword(name: &str) -> Option<Self> {
        Self::VARIANTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// `a | b | c`.
    fn allowed() -> String {
        Self::VARIANTS
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

macro_rules! keywords {
    ($ty:ty { $($name:literal => $variant:ident),* $(,)? }) => {
        impl Keyword for $ty {
            const VARIANTS: &'static [(&'static str, Self)] = &[$(($name, <$ty>::$variant)),*];
        }
    };
}

keywords!(RuntimeKind { "component" => Component, "extism" => Extism, "native" => Native, "process" => Process });
keywords!(Isolation { "reuse" => Reuse, "fresh" => Fresh });
keywords!(FsMode { "read" => Read, "readwrite" => ReadWrite });
keywords!(FailPolicy { "open" => Open, "closed" => Closed });
keywords!(BackoffKind { "linear" => Linear, "exponential" => Exponential });
keywords!(DependencyScope { "runtime" => Runtime, "peer" => Peer, "dev" => Dev });
keywords!(ConfigType {
    "string" => String,
    "integer" => Integer,
    "number" => Number,
    "boolean" => Boolean,
    "array" => Array,
    "object" => Object,
});

impl FailPolicy {
    /// The name used in manifests.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

impl BackoffKind {
    /// The name used in manifests.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Exponential => "exponential",
        }
    }
}

/// Serializes a `VersionReq` as its text (semver's own impl is the same, but
/// this keeps the format explicit and stable).
mod req_serde {
    use semver::VersionReq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(req: &VersionReq, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(req)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<VersionReq, D::Error> {
        let text = String::deserialize(d)?;
        VersionReq::parse(&text).map_err(serde::de::Error::custom)
    }
}

mod opt_req_serde {
    use semver::VersionReq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        req: &Option<VersionReq>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match req {
            Some(req) => s.collect_str(req),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<VersionReq>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| VersionReq::parse(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_over_hooks_is_derived_from_hooks() {
        let hook = |name: &str, priority: i32, fail_policy: FailPolicy| HookDecl {
            name: name.to_owned(),
            priority: Priority(priority),
            fail_policy,
            timeout: None,
            retries: 0,
            backoff: None,
        };
        let hooks = [
            hook("a", 1000, FailPolicy::Closed),
            hook("b", 500, FailPolicy::Closed),
            hook("c", 501, FailPolicy::Open),
            hook("d", 100, FailPolicy::Open),
        ];
        let power = HooksPermission::derive(&hooks, 500).unwrap();
        assert_eq!(power.fail_closed, ["a", "b"]);
        assert_eq!(
            power.priority,
            [("a".to_owned(), 1000), ("c".to_owned(), 501)].into()
        );
        assert_eq!(HooksPermission::derive(&hooks[3..], 500), None);
    }

    #[test]
    fn host_patterns() {
        for (pattern, scheme, host, port, expected) in [
            ("hooks.slack.com", "https", "hooks.slack.com", 443, true),
            ("hooks.slack.com", "http", "hooks.slack.com", 80, true),
            ("hooks.slack.com", "https", "evil.com", 443, false),
            // No port in the pattern: the scheme's default port only.
            ("hooks.slack.com", "https", "hooks.slack.com", 8443, false),
            ("hooks.slack.com", "http", "hooks.slack.com", 6379, false),
            ("hooks.slack.com", "http", "hooks.slack.com", 443, false),
            ("hooks.slack.com", "https", "hooks.slack.com", 80, false),
            ("hooks.slack.com", "ftp", "hooks.slack.com", 21, false),
            ("*.acme.example:443", "https", "api.acme.example", 443, true),
            ("*.acme.example:443", "http", "api.acme.example", 443, true),
            ("*.acme.example:443", "https", "a.b.acme.example", 443, true),
            ("*.acme.example:443", "http", "api.acme.example", 80, false),
            ("*.acme.example", "https", "api.acme.example", 443, true),
            ("*.acme.example", "https", "api.acme.example", 22, false),
            ("*.acme.example", "https", "acme.example", 443, false),
            ("*.acme.example", "https", "xacme.example", 443, false),
            // `:*` says "any port" out loud.
            ("localhost:*", "http", "localhost", 6379, true),
            ("localhost:*", "https", "localhost", 443, true),
            ("localhost:*", "http", "other", 80, false),
        ] {
            let p: HostPattern = pattern.parse().unwrap();
            assert_eq!(
                p.matches(scheme, host, port),
                expected,
                "{pattern} vs {scheme}://{host}:{port}"
            );
            assert_eq!(p.to_string(), pattern, "it prints as written");
        }
        for bad in [
            "https://x.com",
            "x.com/a",
            "*x.com",
            "a.*.com",
            "x.com:0",
            "x.com:99999",
            "x.com:**",
            "x.com:8*",
            "",
            "X.com",
            "a..b",
            "-a.com",
        ] {
            assert!(
                bad.parse::<HostPattern>().is_err(),
                "{bad} should be refused"
            );
        }
    }
}
