//! What an engine is set up with: the host's profile and its policies.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use tenon_manifest::{
    DEFAULT_HOOK_PRIORITY_THRESHOLD, LimitMaxima, Manifest, ValidationContext, Version,
};
use tenon_registry::SourceKind;

use crate::error::EngineError;

/// What the host is and offers, as manifests are checked against it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostProfile {
    /// The host application's name (shown in doctor reports).
    pub name: String,
    /// The host application's version; `engine.host` requirements are checked
    /// against it when set.
    pub version: Option<Version>,
    /// The plugin API versions served (`engine.tenon` requirements are
    /// checked against them): by default, those of the runtimes.
    pub api_versions: Vec<Version>,
    /// The capability vocabulary; `None` accepts any capability.
    pub capabilities: Option<BTreeSet<String>>,
    /// Permission kinds the host defines beyond the built-in ones.
    pub permission_kinds: BTreeSet<String>,
    /// Host features offered (`engine.features`); `None` does not check.
    pub features: Option<BTreeSet<String>>,
    /// The largest limits a manifest may ask for.
    pub maxima: LimitMaxima,
    /// The highest hook priority a plugin's handler runs at without a grant
    /// (`hooks: priority N on HOOK`); above it, the operator decides.
    /// Default 500 (`high`).
    pub hook_priority_threshold: i32,
}

impl Default for HostProfile {
    fn default() -> Self {
        Self {
            name: "tenon".to_owned(),
            version: None,
            api_versions: vec![Version::new(1, 0, 0)],
            capabilities: None,
            permission_kinds: BTreeSet::new(),
            features: None,
            maxima: LimitMaxima::default(),
            hook_priority_threshold: DEFAULT_HOOK_PRIORITY_THRESHOLD,
        }
    }
}

impl HostProfile {
    /// The validation context manifests are parsed with.
    pub fn validation_context(&self, hooks: Option<BTreeSet<String>>) -> ValidationContext {
        ValidationContext {
            api_versions: self.api_versions.clone(),
            host_version: self.version.clone(),
            capabilities: self.capabilities.clone(),
            permission_kinds: self.permission_kinds.clone(),
            hooks,
            features: self.features.clone(),
            maxima: self.maxima.clone(),
            hook_priority_threshold: self.hook_priority_threshold,
            ..ValidationContext::default()
        }
    }
}

/// Which plugins are granted their declared permissions without an
/// operator, and which count as first-party (still started in safe mode).
///
/// A trusted publisher counts only when a signature the trust policy
/// trusts proves it: a manifest merely claiming the publisher's name gets
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantPolicy {
    /// Sources trusted outright (default: builtin and native).
    pub trusted_sources: BTreeSet<SourceKind>,
    /// Publishers trusted outright (the part of the id before `/`).
    pub trusted_publishers: BTreeSet<String>,
}

impl Default for GrantPolicy {
    fn default() -> Self {
        Self {
            trusted_sources: [SourceKind::Builtin, SourceKind::Native].into(),
            trusted_publishers: BTreeSet::new(),
        }
    }
}

impl GrantPolicy {
    /// Trusts nothing: every plugin needs an operator's grant.
    pub fn none() -> Self {
        Self {
            trusted_sources: BTreeSet::new(),
            trusted_publishers: BTreeSet::new(),
        }
    }

    /// Also trusts `publisher`.
    pub fn trust_publisher(mut self, publisher: &str) -> Self {
        self.trusted_publishers.insert(publisher.to_owned());
        self
    }

    /// Also trusts plugins from `source`.
    pub fn trust_source(mut self, source: SourceKind) -> Self {
        self.trusted_sources.insert(source);
        self
    }

    /// Whether a plugin from `source` is trusted; `publisher_proven` says
    /// whether a trusted signature proves its publisher.
    pub fn trusts(&self, manifest: &Manifest, source: SourceKind, publisher_proven: bool) -> bool {
        self.trusted_sources.contains(&source)
            || (publisher_proven
                && self
                    .trusted_publishers
                    .contains(manifest.plugin.id.publisher()))
    }
}

/// Where the engine keeps files: plugin data directories (the roots of
/// `permissions.filesystem`) and the compiled-module cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The engine's directory.
    pub root: PathBuf,
}

impl Paths {
    /// The compiled-module cache.
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// The key that authenticates the compiled-module cache (beside the
    /// registry's own files, outside every plugin's data directory).
    pub fn cache_key(&self) -> PathBuf {
        self.root.join("cache.key")
    }

    /// A plugin's data directory for a tenant:
    /// `<root>/data/<tenant>/<publisher>/<name>`. Every joined segment must
    /// be one plain path component (not empty, not only dots, no
    /// separator), so the directory never leaves `<root>/data/<tenant>`.
    pub fn plugin_data(
        &self,
        tenant: &str,
        plugin: &tenon_manifest::PluginId,
    ) -> Result<PathBuf, EngineError> {
        let mut dir = self.root.join("data");
        for (what, segment) in [
            ("tenant id", tenant),
            ("plugin publisher", plugin.publisher()),
            ("plugin name", plugin.name()),
        ] {
            if !is_plain_segment(segment) {
                return Err(EngineError::UnsafeDataPath {
                    what,
                    segment: segment.to_owned(),
                });
            }
            dir.push(segment);
        }
        Ok(dir)
    }
}

/// Whether `segment` is exactly one normal path component: not empty, not
/// only dots, no separator, no root or prefix.
fn is_plain_segment(segment: &str) -> bool {
    let mut components = std::path::Path::new(segment).components();
    !segment.bytes().all(|b| b == b'.')
        && !segment.contains(['/', '\\', '\0'])
        && matches!(components.next(), Some(std::path::Component::Normal(c)) if c == segment)
        && components.next().is_none()
}

/// How much of each tenant's event log is kept: events older than
/// `max_age`, and the oldest beyond the newest `max_events`, are deleted —
/// by the engine in the background every `interval` for the tenants it
/// serves (set on the builder), or at once with
/// [`PluginEngine::prune_events`](crate::PluginEngine::prune_events).
/// The default keeps everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRetention {
    /// Events older than this go.
    pub max_age: Option<Duration>,
    /// At most this many events are kept per tenant, the newest.
    pub max_events: Option<u64>,
    /// How often the background task applies the rules.
    pub interval: Duration,
}

impl Default for EventRetention {
    fn default() -> Self {
        Self {
            max_age: None,
            max_events: None,
            interval: Duration::from_secs(3600),
        }
    }
}

impl EventRetention {
    /// Keeps events no longer than `age`.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Keeps at most the newest `count` events per tenant.
    pub fn max_events(mut self, count: u64) -> Self {
        self.max_events = Some(count);
        self
    }

    /// Applies the rules every `interval` (default: hourly).
    pub fn every(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Whether any rule deletes anything.
    pub fn prunes(&self) -> bool {
        self.max_age.is_some() || self.max_events.is_some()
    }
}

/// What each plugin may do with its KV store, per tenant, beyond the byte
/// quota its manifest declares (within [`LimitMaxima::kv_quota`]): how many
/// keys it may hold and how fast it may write. Writes are `kv-set` and
/// `kv-delete`; the rate is a token bucket holding `writes` that refills
/// `writes` every `per` (a zero `per` leaves writes unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLimits {
    /// Keys a plugin may hold (default 100 000).
    pub max_keys: u64,
    /// Writes a plugin may make in a burst, and per `per` (default 1000).
    pub writes: u32,
    /// The window `writes` refill over (default one second).
    pub per: Duration,
}

impl Default for KvLimits {
    fn default() -> Self {
        Self {
            max_keys: 100_000,
            writes: 1000,
            per: Duration::from_secs(1),
        }
    }
}

impl KvLimits {
    /// At most `keys` keys per plugin.
    pub fn max_keys(mut self, keys: u64) -> Self {
        self.max_keys = keys;
        self
    }

    /// At most `writes` writes per `per`, in bursts of up to `writes`.
    pub fn write_rate(mut self, writes: u32, per: Duration) -> Self {
        self.writes = writes;
        self.per = per;
        self
    }
}

/// How many permission denials are logged and audited one by one. A
/// plugin hammering a permission it was not granted cannot flood the log or
/// the event log: per plugin, tenant and permission kind, the first
/// `per_window` denials of each `window` are logged (a `warn` line) and
/// audited (a `permission_denied` event) one by one; the rest are counted
/// and reported together when the window ends: one line and one
/// `permission_denied` event whose detail holds `suppressed` (how many)
/// and the last attempt, and `tenon_permission_denials_suppressed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenialLogLimits {
    /// Denials logged one by one per window (default 5).
    pub per_window: u32,
    /// The window (default 10 seconds).
    pub window: Duration,
}

impl Default for DenialLogLimits {
    fn default() -> Self {
        Self {
            per_window: 5,
            window: Duration::from_secs(10),
        }
    }
}

impl DenialLogLimits {
    /// At most `denials` logged one by one per `window`.
    pub fn new(denials: u32, window: Duration) -> Self {
        Self {
            per_window: denials,
            window: window.max(Duration::from_millis(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_segments_make_a_data_directory() {
        for (segment, plain) in [
            ("acme", true),
            ("a.b", true),
            ("...x", true),
            ("", false),
            (".", false),
            ("..", false),
            ("...", false),
            ("a/b", false),
            ("../x", false),
            ("/abs", false),
            ("a\\b", false),
            ("a\0b", false),
        ] {
            assert_eq!(is_plain_segment(segment), plain, "{segment:?}");
        }
        let paths = Paths {
            root: PathBuf::from("/engine"),
        };
        let id = tenon_manifest::PluginId::new("acme/tools").unwrap();
        assert_eq!(
            paths.plugin_data("t1", &id).unwrap(),
            PathBuf::from("/engine/data/t1/acme/tools")
        );
        for tenant in [".", "..", "a/..", ""] {
            assert!(
                matches!(
                    paths.plugin_data(tenant, &id),
                    Err(EngineError::UnsafeDataPath {
                        what: "tenant id",
                        ..
                    })
                ),
                "{tenant:?}"
            );
        }
    }
}
