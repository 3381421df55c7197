//! What the engine refuses or fails to do.

use std::path::PathBuf;

use tenon_manifest::{Diagnostic, PluginId, Version};
use tenon_registry::PluginState;

use crate::lifecycle::InvalidTransition;

/// Why a package does not fit its publisher's binding
/// ([`EngineError::PublisherKey`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refused {id} {version}: publisher `{publisher}` is bound to key {} ({}), but this package is {}; sign it with that key, or add the bound key's rotation statement to the trust policy (`tenon keygen NEW --rotate-from OLD`, then `tenon trust add --rotation STATEMENT`), or name the new key for the publisher (`tenon trust add KEY --publisher {publisher}`)",
    .bound.join(" or "),
    bound_how(.bound_by),
    describe_signers(.signed_by)
)]
pub struct PublisherMismatch {
    /// The plugin.
    pub id: PluginId,
    /// Its version.
    pub version: Version,
    /// Its publisher.
    pub publisher: String,
    /// The ids of the keys the publisher is bound to.
    pub bound: Vec<String>,
    /// How: `first-signature`, `policy` or `rotation`.
    pub bound_by: String,
    /// The ids of the keys that signed the package as its author.
    pub signed_by: Vec<String>,
}

/// An engine error: what was attempted, on what, and why it failed or was
/// refused, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The manifest is invalid; every problem is listed.
    #[error("invalid manifest{}: {}", at(.path), summarize(.diagnostics))]
    InvalidManifest {
        /// The manifest file, when known.
        path: Option<PathBuf>,
        /// Errors (and warnings).
        diagnostics: Vec<Diagnostic>,
    },
    /// A plugin directory or archive holds something wrong: several
    /// manifests, a module outside the directory or missing from the
    /// archive, a module that does not match its pinned sha256.
    #[error("invalid plugin {}: {message}", .path.display())]
    InvalidPlugin {
        /// The directory or archive.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A plugin source could not be read.
    #[error("cannot read {}: {message}", .path.display())]
    Source {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A package archive was refused or is corrupt.
    #[error("package {}: {source}", .path.display())]
    Package {
        /// The archive.
        path: PathBuf,
        /// Why.
        #[source]
        source: tenon_marketplace::PackageError,
    },
    /// A marketplace could not be used, or what it served was refused
    /// (metadata, index, package), or a network failure.
    #[error("marketplace: {source}")]
    Marketplace {
        /// Why.
        #[source]
        source: Box<tenon_marketplace::client::ClientError>,
    },
    /// No marketplace was named, and the trust policy names none.
    #[error(
        "no marketplace named, and the trust policy names none (`marketplace = \"https://…\"`)"
    )]
    NoMarketplace,
    /// A plugin directory carries no signature, and the trust policy does
    /// not allow unsigned directories.
    #[error(
        "refused {}: a plugin directory carries no signature, and the trust policy allows directories only with the development switch (`allow_unsigned_directories = true` in the policy file, or `tenon --dev`); install a signed package instead",
        .path.display()
    )]
    UnsignedDirectory {
        /// The directory.
        path: PathBuf,
    },
    /// What the plugin asks for exceeds what its trust level allows.
    #[error(
        "refused {id} {version}: it reaches trust level {level}, which does not allow {}; sign it with a key the trust policy trusts at a higher level",
        .refused.join(", ")
    )]
    TrustLevel {
        /// The plugin.
        id: PluginId,
        /// Its version.
        version: Version,
        /// The level reached.
        level: tenon_marketplace::TrustLevel,
        /// What the level does not allow, described.
        refused: Vec<String>,
    },
    /// A package does not fit its publisher's binding: signed by another
    /// key than the one the publisher is bound to (without a rotation
    /// statement), unsigned where the publisher's key is required, or
    /// claiming a publisher the trust policy names other keys for.
    #[error("{0}")]
    PublisherKey(Box<PublisherMismatch>),
    /// A version would receive in clear a config value stored as a secret.
    #[error(
        "refused {id} {version}: config {} stored as a secret, but this version does not declare {} secret; the value stays a secret until the operator re-classifies it (`tenon config unset {id} KEY`, then set it again){}",
        .keys.iter().map(|k| format!("`{k}` is")).collect::<Vec<_>>().join(", "),
        if .keys.len() == 1 { "it" } else { "them" },
        if *.uninstalled { "; it is not installed: reinstall a version that declares it secret to unset it, and nothing it left is lost meanwhile" } else { "" }
    )]
    SecretReclassified {
        /// The plugin.
        id: PluginId,
        /// The version refused.
        version: Version,
        /// The keys stored as secrets that it declares plain.
        keys: Vec<String>,
        /// Whether the secrets were left by an uninstalled plugin (a
        /// reinstall would inherit them).
        uninstalled: bool,
    },
    /// No plugin with this id is installed.
    #[error(
        "{id} is not installed{}{}",
        suggest(.suggestions),
        if *.kept { " (it was uninstalled and its config, KV data, grants and events were kept: `tenon install PATH` installs it again with them)" } else { "" }
    )]
    NotInstalled {
        /// The id asked for.
        id: String,
        /// Installed ids close to it.
        suggestions: Vec<String>,
        /// Whether it was uninstalled with its data kept (events about it
        /// remain).
        kept: bool,
    },
    /// A token name or role that cannot be used.
    #[error("{message}")]
    InvalidToken {
        /// What is wrong.
        message: String,
    },
    /// The plugin is installed already.
    #[error(
        "{id} is already installed at version {version}{}",
        if *.same { " (the same version, manifest and module): nothing to do" } else { "; install another version with `tenon upgrade PATH`" }
    )]
    AlreadyInstalled {
        /// The plugin.
        id: PluginId,
        /// The installed version.
        version: Version,
        /// Whether what was offered is what is installed (the same version,
        /// manifest and module): installing it again changes nothing.
        same: bool,
    },
    /// The plugin's state does not allow the operation.
    #[error("{id}: {}", next_step(.id, .transition))]
    InvalidTransition {
        /// The plugin.
        id: PluginId,
        /// The state and the refused action.
        transition: InvalidTransition,
    },
    /// Activation waits for required config.
    #[error(
        "cannot enable {id}: required config missing: {}; set {} with `tenon config set {id} {} VALUE`",
        .keys.join(", "),
        if .keys.len() == 1 { "it" } else { "each" },
        if .keys.len() == 1 { .keys[0].as_str() } else { "KEY" }
    )]
    MissingConfig {
        /// The plugin.
        id: PluginId,
        /// The required keys without a value.
        keys: Vec<String>,
    },
    /// A change would leave a running plugin without required config.
    #[error("cannot leave {id} without {}: required while it is {state}; disable it first with `tenon disable {id}`", .keys.join(", "))]
    ConfigRequired {
        /// The plugin.
        id: PluginId,
        /// Its state.
        state: PluginState,
        /// The required keys the change would unset.
        keys: Vec<String>,
    },
    /// A config value is invalid.
    #[error("invalid config for {id}: {}", summarize(.diagnostics))]
    InvalidConfig {
        /// The plugin.
        id: PluginId,
        /// What is wrong.
        diagnostics: Vec<Diagnostic>,
    },
    /// Running a version needs the operator's grant of the permissions it
    /// declares.
    #[error(
        "cannot {operation} {id} {version}: the operator has not granted {}; review them with `tenon info {id}` and grant with `tenon grant {id} --all --plugin-version {version}` (or name the permissions instead of --all)",
        .missing.join(", ")
    )]
    NotGranted {
        /// What was attempted (`enable`, `upgrade`, `reload`…).
        operation: &'static str,
        /// The plugin.
        id: PluginId,
        /// The version needing the grant.
        version: Version,
        /// The permissions declared but not granted, described.
        missing: Vec<String>,
    },
    /// An operator named permissions that match none the plugin declares
    /// (a grant) or holds (a revocation).
    #[error(
        "{id} {among} no permission named {}; {}",
        .names.join(", "),
        listed(.among, .known)
    )]
    UnknownPermission {
        /// The plugin.
        id: PluginId,
        /// `declares` or `holds`.
        among: &'static str,
        /// The names that matched nothing.
        names: Vec<String>,
        /// The permissions it declares or holds, described.
        known: Vec<String>,
    },
    /// The host's grant policy trusts the plugin with everything it
    /// declares: there is no grant to take back.
    #[error(
        "{id} is trusted by this host's grant policy (a {origin} plugin or a trusted publisher): it holds what it declares without a grant, so nothing can be revoked; stop it with `tenon disable {id}`"
    )]
    Trusted {
        /// The plugin.
        id: PluginId,
        /// Where it comes from (`native`, `directory`…).
        origin: String,
    },
    /// Dependencies cannot be satisfied.
    #[error("{id}: {explanation}")]
    Dependencies {
        /// The plugin.
        id: PluginId,
        /// The resolver's explanation.
        explanation: String,
    },
    /// Other active plugins depend on this one.
    #[error(
        "cannot disable {id}: {} depend on it; disable them first, or all together with `tenon disable {id} --cascade`",
        .dependents.join(", ")
    )]
    DependentsActive {
        /// The plugin.
        id: PluginId,
        /// The active plugins that need it.
        dependents: Vec<String>,
    },
    /// The host does not serve the plugin's runtime kind.
    #[error("{id} needs the `{kind}` runtime, which this host does not provide{hint}")]
    NoRuntime {
        /// The plugin.
        id: PluginId,
        /// The runtime kind.
        kind: String,
        /// How to get it.
        hint: String,
    },
    /// A version to upgrade or roll back to is not usable.
    #[error("{id}: {message}")]
    Version {
        /// The plugin.
        id: PluginId,
        /// What is wrong.
        message: String,
    },
    /// The plugin failed to load, start or answer.
    #[error("{}", once(.id, .source))]
    Plugin {
        /// The plugin.
        id: PluginId,
        /// The sandbox's error.
        #[source]
        source: tenon_sandbox::SandboxError,
    },
    /// Safe mode keeps third-party plugins inactive.
    #[error(
        "cannot start {id}: safe mode keeps third-party plugins inactive (restart without TENON_SAFE_MODE to run it)"
    )]
    SafeMode {
        /// The plugin.
        id: PluginId,
    },
    /// A dispatch's context names another tenant than the engine serves.
    #[error(
        "this engine serves tenant `{engine}`, but the hook context is for tenant `{context}`; use `engine.for_tenant(\"{context}\")` or `engine.context()`"
    )]
    TenantMismatch {
        /// The engine's tenant.
        engine: String,
        /// The context's tenant.
        context: String,
    },
    /// The plugin is not running in this engine.
    #[error(
        "{id} is not running (it is {state}){}",
        if *.state == PluginState::Active { String::new() } else { format!("; start it with `tenon enable {id}`") }
    )]
    NotRunning {
        /// The plugin.
        id: PluginId,
        /// Its state.
        state: PluginState,
    },
    /// A hook operation failed (an undeclared hook, a bad registration).
    #[error(transparent)]
    Hook(#[from] tenon_hooks::HookError),
    /// The registry failed or refused.
    #[error(transparent)]
    Registry(#[from] tenon_registry::RegistryError),
    /// The engine was set up wrongly.
    #[error("engine configuration: {0}")]
    Config(String),
    /// A host service method the host registered cannot be offered
    /// ([`crate::EngineBuilder::service`]).
    #[error("engine configuration: {0}")]
    ServiceDefinition(#[from] tenon_sandbox::ServiceDefinitionError),
    /// A plugin data directory would be built from a segment that is not
    /// one plain path component (`.`, `..`, empty, or holding a separator).
    #[error("refusing a plugin data directory: the {what} {segment:?} is not a plain path segment")]
    UnsafeDataPath {
        /// Which part of the path (`tenant id`, `plugin publisher`, `plugin name`).
        what: &'static str,
        /// The refused segment.
        segment: String,
    },
}

/// The engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

fn at(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" {}", p.display()))
        .unwrap_or_default()
}

fn summarize(diagnostics: &[Diagnostic]) -> String {
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            if d.path.is_empty() {
                d.message.clone()
            } else {
                format!("{}: {}", d.path, d.message)
            }
        })
        .collect();
    if errors.is_empty() {
        "no errors".to_owned()
    } else {
        errors.join("; ")
    }
}

/// A refused transition, with the command that gets past it when there is
/// one.
fn next_step(id: &PluginId, transition: &InvalidTransition) -> String {
    use crate::lifecycle::Action;
    let command = match (transition.state, transition.action) {
        (PluginState::Active, Action::Uninstall) | (PluginState::Error, Action::Load) => {
            format!("tenon disable {id}")
        }
        (PluginState::PendingConfig, Action::Load) => format!("tenon config set {id} KEY VALUE"),
        _ => return transition.to_string(),
    };
    match transition.hint() {
        Some(hint) => format!(
            "cannot {} a plugin that is {} ({hint}: `{command}`)",
            transition.action, transition.state
        ),
        None => transition.to_string(),
    }
}

/// A plugin's failure, its id said once: the sandbox's messages name the
/// plugin already.
fn once(id: &PluginId, source: &tenon_sandbox::SandboxError) -> String {
    let message = source.to_string();
    if message.contains(id.as_str()) {
        message
    } else {
        format!("{id}: {message}")
    }
}

fn listed(among: &str, known: &[String]) -> String {
    if known.is_empty() {
        format!("it {among} none")
    } else {
        format!("it {among}: {}", known.join(", "))
    }
}

fn suggest(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!(" (did you mean {one}?)"),
        many => format!(" (did you mean one of {}?)", many.join(", ")),
    }
}

impl EngineError {
    /// A stable, machine-readable name of the error's kind (`not_installed`,
    /// `missing_config`, `invalid_manifest` …), as `tenon --format json`
    /// reports it. Codes are never renamed; new kinds get new codes.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidManifest { .. } => "invalid_manifest",
            Self::InvalidPlugin { .. } => "invalid_plugin",
            Self::Source { .. } => "unreadable_source",
            Self::Package { .. } => "package_refused",
            Self::Marketplace { .. } => "marketplace",
            Self::NoMarketplace => "no_marketplace",
            Self::PublisherKey(_) => "publisher_key",
            Self::InvalidToken { .. } => "invalid_token",
            Self::UnsignedDirectory { .. } => "unsigned_directory",
            Self::TrustLevel { .. } => "trust_level",
            Self::SecretReclassified { .. } => "secret_reclassified",
            Self::NotInstalled { .. } => "not_installed",
            Self::AlreadyInstalled { .. } => "already_installed",
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::MissingConfig { .. } => "missing_config",
            Self::ConfigRequired { .. } => "config_required",
            Self::InvalidConfig { .. } => "invalid_config",
            Self::NotGranted { .. } => "not_granted",
            Self::UnknownPermission { .. } => "unknown_permission",
            Self::Trusted { .. } => "trusted",
            Self::Dependencies { .. } => "dependencies",
            Self::DependentsActive { .. } => "dependents_active",
            Self::NoRuntime { .. } => "no_runtime",
            Self::Version { .. } => "version",
            Self::Plugin { .. } => "plugin_failed",
            Self::SafeMode { .. } => "safe_mode",
            Self::TenantMismatch { .. } => "tenant_mismatch",
            Self::NotRunning { .. } => "not_running",
            Self::Hook(_) => "hook",
            Self::Registry(e) => match e {
                tenon_registry::RegistryError::Conflict { .. } => "conflict",
                tenon_registry::RegistryError::NotFound { .. } => "not_found",
                tenon_registry::RegistryError::AlreadyExists { .. } => "already_exists",
                tenon_registry::RegistryError::QuotaExceeded { .. }
                | tenon_registry::RegistryError::KeyQuotaExceeded { .. } => "quota_exceeded",
                tenon_registry::RegistryError::BackendUnavailable { .. } => "backend_unavailable",
                _ => "registry",
            },
            Self::Config(_) => "engine_config",
            Self::ServiceDefinition(_) => "service_definition",
            Self::UnsafeDataPath { .. } => "unsafe_data_path",
        }
    }

    /// Whether the operation was refused or failed on its own terms (an
    /// invalid manifest, a conflict, a refused transition): exit code 1 in the
    /// CLI. `false` for environment failures (IO, the registry, the engine's
    /// setup): exit code 2.
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::Source { .. }
            | Self::Config(_)
            | Self::NoMarketplace
            | Self::ServiceDefinition(_) => false,
            // The network, the cache or the URL: the environment, not a refusal.
            Self::Marketplace { source } => !matches!(
                **source,
                tenon_marketplace::client::ClientError::Http { .. }
                    | tenon_marketplace::client::ClientError::Cache { .. }
                    | tenon_marketplace::client::ClientError::Url { .. }
                    | tenon_marketplace::client::ClientError::NotCached { .. }
            ),
            Self::Registry(e) => matches!(
                e,
                tenon_registry::RegistryError::Conflict { .. }
                    | tenon_registry::RegistryError::NotFound { .. }
                    | tenon_registry::RegistryError::AlreadyExists { .. }
                    | tenon_registry::RegistryError::QuotaExceeded { .. }
            ),
            _ => true,
        }
    }
}

fn bound_how(bound_by: &str) -> String {
    match bound_by {
        "first-signature" => "since the first package it signed was installed here".to_owned(),
        "policy" => "by the trust policy".to_owned(),
        "rotation" => "by a rotation statement".to_owned(),
        other => other.to_owned(),
    }
}

fn describe_signers(keys: &[String]) -> String {
    if keys.is_empty() {
        "not signed".to_owned()
    } else {
        format!("signed by {}", keys.join(", "))
    }
}
