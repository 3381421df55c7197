//! Trust: what a plugin's signatures proved, the trust level it reached,
//! what that level allows, and the runtime posture computed from both — in
//! one place, stored with every version.

use serde::{Deserialize, Serialize};
use tenon_manifest::{FailPolicy, Manifest, RuntimeKind};
use tenon_marketplace::{Signer, Trust, TrustLevel, Verification};
use time::OffsetDateTime;

/// How a version's origin was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Checked {
    /// Shipped by the host (native or built in): first-party, no signature.
    Host,
    /// A plugin directory, accepted under the development switch.
    Directory,
    /// A package with no signatures, accepted by the policy.
    Unsigned,
    /// A package with valid signatures the policy does not trust.
    Untrusted,
    /// A package signed as the policy requires.
    Trusted,
}

impl Checked {
    /// The name shown to operators.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Directory => "directory",
            Self::Unsigned => "unsigned",
            Self::Untrusted => "untrusted",
            Self::Trusted => "trusted",
        }
    }
}

/// How a plugin runs, as its trust level and runtime allow: the one answer
/// to "what is this plugin allowed to be", shown by `info`, `list`,
/// `doctor` and the JSON outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimePosture {
    /// The trust level.
    pub level: TrustLevel,
    /// How its code runs: `webassembly` or `native` or `process`.
    pub execution: String,
    /// What separates it from the host.
    pub isolation: String,
    /// What its level keeps it from doing.
    pub limitations: Vec<String>,
    /// A short label: `untrusted · sandboxed`, `internal · native`…
    pub badge: String,
}

impl RuntimePosture {
    /// The posture of `manifest` at `level`.
    pub fn of(level: TrustLevel, manifest: &Manifest) -> Self {
        let kind = manifest.runtime.kind;
        let (execution, isolation, short) = match kind {
            RuntimeKind::Component | RuntimeKind::Extism => (
                "webassembly",
                "WebAssembly sandbox in the host process",
                "sandboxed",
            ),
            RuntimeKind::Process => (
                "process",
                "a separate operating-system process: empty environment, private directory, \
                 own process group and resource limits; no filesystem or network confinement, \
                 and a child that leaves the process group can outlive it",
                "process",
            ),
            RuntimeKind::Native => ("native", "none: runs in the host process", "native"),
        };
        Self {
            level,
            execution: execution.to_owned(),
            isolation: isolation.to_owned(),
            limitations: limitations(level).iter().map(|l| (*l).to_owned()).collect(),
            badge: format!("{level} · {short}"),
        }
    }
}

/// What each level keeps a plugin from doing, in words.
fn limitations(level: TrustLevel) -> &'static [&'static str] {
    match level {
        TrustLevel::Untrusted => &[
            "WebAssembly only",
            "no private or loopback networks",
            "fail-open hooks only",
        ],
        TrustLevel::Partner => &["no native code in the host process"],
        TrustLevel::Internal => &[],
    }
}

/// What a manifest asks for that `level` does not allow, described; empty
/// when it fits.
pub(crate) fn exceeds(level: TrustLevel, manifest: &Manifest) -> Vec<String> {
    let mut refused = Vec::new();
    let kind = manifest.runtime.kind;
    let runtime_ok = match level {
        TrustLevel::Untrusted => kind.is_wasm(),
        TrustLevel::Partner => kind != RuntimeKind::Native,
        TrustLevel::Internal => true,
    };
    if !runtime_ok {
        refused.push(format!("runtime.kind `{kind}`"));
    }
    if level == TrustLevel::Untrusted {
        if manifest
            .permissions
            .network
            .as_ref()
            .is_some_and(|n| n.allow_private)
        {
            refused.push("network.allow_private".to_owned());
        }
        for hook in &manifest.hooks {
            if hook.fail_policy == FailPolicy::Closed {
                refused.push(format!("a fail-closed hook on `{}`", hook.name));
            }
        }
    }
    refused
}

/// What verification found for one stored version, kept with it in the
/// registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustRecord {
    /// How its origin was checked.
    pub checked: Checked,
    /// The trust level reached.
    pub level: TrustLevel,
    /// The signatures that verified (key ids and roles).
    pub signers: Vec<Signer>,
    /// Whether a signature the policy trusts proves the publisher (so that
    /// publisher-wide grant rules may apply).
    pub publisher_proven: bool,
    /// The trusted author key that may bind the publisher (base64), when
    /// there is one: what an uninstall records as the owner of what the
    /// plugin leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_key: Option<String>,
    /// The package's sha256, for archives.
    pub sha256: Option<String>,
    /// When it was checked.
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    /// How it may run.
    pub posture: RuntimePosture,
}

impl TrustRecord {
    /// The record of a package `verification` accepted.
    pub(crate) fn of_package(verification: &Verification, manifest: &Manifest) -> Self {
        let checked = match verification.trust {
            Trust::Unsigned => Checked::Unsigned,
            Trust::Untrusted => Checked::Untrusted,
            Trust::Trusted => Checked::Trusted,
        };
        Self {
            checked,
            level: verification.level,
            signers: verification.signers.clone(),
            publisher_proven: verification.trust == Trust::Trusted,
            author_key: verification
                .author_public_key
                .as_ref()
                .map(tenon_marketplace::PublicKey::to_base64),
            sha256: Some(verification.sha256.to_string()),
            checked_at: OffsetDateTime::now_utc(),
            posture: RuntimePosture::of(verification.level, manifest),
        }
    }

    /// The record of a plugin without signatures: a directory (at the
    /// policy's level for unsigned code) or the host's own (internal).
    pub(crate) fn unsigned(checked: Checked, level: TrustLevel, manifest: &Manifest) -> Self {
        Self {
            checked,
            level,
            signers: Vec::new(),
            publisher_proven: false,
            author_key: None,
            sha256: None,
            checked_at: OffsetDateTime::now_utc(),
            posture: RuntimePosture::of(level, manifest),
        }
    }

    /// The stored form.
    pub(crate) fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a trust record always serializes")
    }

    /// Reads a stored record; `None` for versions stored before records
    /// were kept (or a record this build cannot read).
    pub fn from_stored(value: Option<&serde_json::Value>) -> Option<Self> {
        value.and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(kind: &str, extra: &str) -> Manifest {
        let module = if kind == "native" {
            "entry = \"x\""
        } else if kind == "process" {
            "command = \"bin/x\""
        } else {
            "module = \"x.wasm\""
        };
        let text = format!(
            "manifest_version = 1\n[plugin]\nid = \"acme/x\"\nversion = \"1.0.0\"\nname = \"X\"\ndescription = \"A plugin of the trust tests.\"\n\
             [engine]\ntenon = \"^1.0\"\n[runtime]\nkind = \"{kind}\"\n{module}\n{extra}"
        );
        let parsed =
            tenon_manifest::parse(&text, tenon_manifest::Format::Toml, &Default::default());
        let diagnostics = format!("{:?}", parsed.diagnostics);
        parsed
            .manifest
            .unwrap_or_else(|| panic!("{text}: {diagnostics}"))
    }

    #[test]
    fn levels_cap_runtimes_networks_and_hooks() {
        let closed = "[[hooks]]\nname = \"h\"\nfail_policy = \"closed\"\n";
        let private = "[permissions.network]\noutbound = [\"localhost\"]\nallow_private = true\n";
        use TrustLevel::*;
        let cases: &[(&str, &str, &str, TrustLevel, &[&str])] = &[
            ("wasm, untrusted", "component", "", Untrusted, &[]),
            ("extism, untrusted", "extism", "", Untrusted, &[]),
            (
                "native, untrusted",
                "native",
                "",
                Untrusted,
                &["runtime.kind `native`"],
            ),
            (
                "process, untrusted",
                "process",
                "",
                Untrusted,
                &["runtime.kind `process`"],
            ),
            ("process, partner", "process", "", Partner, &[]),
            (
                "native, partner",
                "native",
                "",
                Partner,
                &["runtime.kind `native`"],
            ),
            ("native, internal", "native", "", Internal, &[]),
            (
                "fail-closed, untrusted",
                "component",
                closed,
                Untrusted,
                &["a fail-closed hook on `h`"],
            ),
            ("fail-closed, partner", "component", closed, Partner, &[]),
            (
                "private network, untrusted",
                "component",
                private,
                Untrusted,
                &["network.allow_private"],
            ),
            (
                "private network, partner",
                "component",
                private,
                Partner,
                &[],
            ),
        ];
        for (name, kind, extra, level, expected) in cases {
            assert_eq!(exceeds(*level, &manifest(kind, extra)), *expected, "{name}");
        }
    }

    #[test]
    fn the_posture_follows_level_and_runtime() {
        let wasm = RuntimePosture::of(TrustLevel::Untrusted, &manifest("component", ""));
        assert_eq!(wasm.badge, "untrusted · sandboxed");
        assert_eq!(wasm.execution, "webassembly");
        assert_eq!(wasm.limitations.len(), 3);
        let native = RuntimePosture::of(TrustLevel::Internal, &manifest("native", ""));
        assert_eq!(native.badge, "internal · native");
        assert!(native.limitations.is_empty());
        let record =
            TrustRecord::unsigned(Checked::Host, TrustLevel::Internal, &manifest("native", ""));
        assert_eq!(
            TrustRecord::from_stored(Some(&record.to_value())),
            Some(record)
        );
        assert_eq!(TrustRecord::from_stored(None), None);
    }
}
