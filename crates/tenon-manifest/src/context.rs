//! What a host tells validation: the API versions it serves, its vocabulary
//! of capabilities, permission kinds and hooks, and its maxima.

use std::collections::BTreeSet;

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::engine::HostInfo;
use crate::tree::InputLimits;
use crate::units::{ByteSize, DurationSpec};

/// The default of [`ValidationContext::hook_priority_threshold`]: `high`.
pub const DEFAULT_HOOK_PRIORITY_THRESHOLD: i32 = 500;

/// The host's side of validation. `Default` is a host serving plugin API
/// 1.0.0 that checks no vocabulary beyond the built-in permission kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationContext {
    /// The plugin API versions the host serves (default `[1.0.0]`); empty
    /// means `engine.tenon` is not checked.
    pub api_versions: Vec<Version>,
    /// The host application's version; `None` means `engine.host` is not
    /// checked.
    pub host_version: Option<Version>,
    /// The host's capability vocabulary; `None` means capabilities are not
    /// checked.
    pub capabilities: Option<BTreeSet<String>>,
    /// Permission kinds the host defines on top of the built-in `network`,
    /// `filesystem`, `kv`, `secrets` and `events` (such as `org` or
    /// `database`).
    pub permission_kinds: BTreeSet<String>,
    /// The host's hook names; `None` means hooks are not checked. A hook the
    /// host does not know is a warning (it may come from a newer host).
    pub hooks: Option<BTreeSet<String>>,
    /// The host features offered; `None` means `engine.features` is not
    /// checked.
    pub features: Option<BTreeSet<String>>,
    /// The highest hook priority a plugin runs at without a grant
    /// (default 500, `high`); a `[[hooks]]` priority above it is asked for
    /// in `permissions.hooks`.
    pub hook_priority_threshold: i32,
    /// The largest limits a manifest may ask for.
    pub maxima: LimitMaxima,
    /// Bounds on the input document.
    pub input: InputLimits,
}

impl Default for ValidationContext {
    fn default() -> Self {
        Self {
            api_versions: vec![Version::new(1, 0, 0)],
            host_version: None,
            capabilities: None,
            permission_kinds: BTreeSet::new(),
            hooks: None,
            features: None,
            hook_priority_threshold: DEFAULT_HOOK_PRIORITY_THRESHOLD,
            maxima: LimitMaxima::default(),
            input: InputLimits::default(),
        }
    }
}

impl ValidationContext {
    /// The host as [`check_engine`](crate::check_engine) sees it.
    pub fn host(&self) -> HostInfo<'_> {
        HostInfo {
            api_versions: &self.api_versions,
            host_version: self.host_version.as_ref(),
            features: self.features.as_ref(),
        }
    }
}

/// The largest limits a host grants; a manifest asking for more is refused
/// with `limit-exceeds-maximum`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitMaxima {
    /// `limits.memory` (default 4GiB, all a 32-bit WebAssembly memory can hold).
    pub memory: ByteSize,
    /// `limits.timeout` and each hook's `timeout` (default 5m).
    pub timeout: DurationSpec,
    /// `limits.fuel`; `None` (the default) means no maximum.
    pub fuel: Option<u64>,
    /// `limits.max_instances` (default 256).
    pub max_instances: u32,
    /// `limits.wait_timeout` (default 5m).
    pub wait_timeout: DurationSpec,
    /// `limits.stack` (default 64MiB).
    pub stack: ByteSize,
    /// Each hook's `retries` (default 10).
    pub retries: u32,
    /// `permissions.kv.quota` (default 1GiB).
    pub kv_quota: ByteSize,
    /// `permissions.network.max_response` (default 256MiB).
    pub max_response: ByteSize,
    /// `limits.max_output` (default 64MiB).
    pub max_output: ByteSize,
}

impl Default for LimitMaxima {
    fn default() -> Self {
        Self {
            memory: ByteSize(4 << 30),
            timeout: DurationSpec::millis(5 * 60 * 1000),
            fuel: None,
            max_instances: 256,
            wait_timeout: DurationSpec::millis(5 * 60 * 1000),
            stack: ByteSize::mib(64),
            retries: 10,
            kv_quota: ByteSize(1 << 30),
            max_response: ByteSize::mib(256),
            max_output: ByteSize::mib(64),
        }
    }
}
