//! The options every command shares, and opening the engine they name: the
//! registry, the tenant, the host's hook specs and the key for secrets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use tenon_engine::{
    BootFailures, EngineError, HookSpec, PluginEngine, PluginId, PluginRecord, RegistryOptions,
    SandboxConfig, SecretKey, TrustPolicy, agent_runner_hooks,
};
use tenon_registry::RegistryLocation;

use crate::exit::Failure;
use crate::output::{Format, Output, warn};

/// The environment variable holding the key for secret config values (64
/// hex digits, or base64 of 32 bytes).
pub(crate) const SECRET_KEY_ENV: &str = "TENON_SECRET_KEY";

/// The key file kept beside a SQLite registry.
pub(crate) const SECRET_KEY_FILE: &str = "secret.key";

/// The trust policy file read beside a SQLite registry.
pub(crate) const TRUST_POLICY_FILE: &str = "trust.toml";

/// Options shared by every command (`tenon --help` lists them; each
/// command's help lists them under their own heading).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct GlobalArgs {
    /// The registry: a SQLite file (created by `install`), `sqlite://PATH`,
    /// a `postgres://` URL, or `memory:` (gone when the command ends).
    #[arg(
        long,
        global = true,
        env = "TENON_REGISTRY",
        value_name = "LOCATION",
        default_value = "./.tenon/registry.db"
    )]
    pub(crate) registry: String,
    /// The tenant whose plugins, config, grants and events are used.
    #[arg(
        long,
        global = true,
        env = "TENON_TENANT",
        value_name = "TENANT",
        default_value = "default"
    )]
    pub(crate) tenant: String,
    /// Output format of commands that print data: `human` (tables, colour)
    /// or `json` (stable, documented in docs/cli.md).
    #[arg(long, global = true, value_enum, default_value_t)]
    pub(crate) format: Format,
    /// The host's hook specs, as JSON: [{"name", "mutable": ["/ptr"…],
    /// "can_block", "timeout_ms"}…]. Without it, the nine hooks of an agent
    /// runner (work_item.*, run.pre_prompt, model.*, tool.*, response.*).
    #[arg(
        long,
        global = true,
        hide_short_help = true,
        env = "TENON_HOOKS",
        value_name = "FILE"
    )]
    pub(crate) hooks: Option<PathBuf>,
    /// A file holding the key for secret config values (64 hex digits).
    /// Default: $TENON_SECRET_KEY, else `secret.key` beside a SQLite
    /// registry (created, mode 0600, by the first command that changes it). A PostgreSQL registry
    /// needs the environment variable or this option.
    #[arg(long, global = true, hide_short_help = true, value_name = "FILE")]
    pub(crate) secret_key_file: Option<PathBuf>,
    /// Where plugin data and the compiled-module cache live (default: the
    /// SQLite registry's directory, else ./.tenon).
    #[arg(
        long,
        global = true,
        hide_short_help = true,
        env = "TENON_DATA_DIR",
        value_name = "DIR"
    )]
    pub(crate) data_dir: Option<PathBuf>,
    /// Let plugins reach private and loopback addresses their grant allows
    /// (a local webhook sink, a service on this machine).
    #[arg(long, global = true, hide_short_help = true)]
    pub(crate) allow_private_networks: bool,
    /// The operator's trust policy (TOML: trusted and revoked keys, levels,
    /// rotations, the development switch; see docs/package-format.md).
    /// Default: `trust.toml` beside a SQLite registry when it exists, else a
    /// policy that trusts no key and refuses unsigned packages and plugin
    /// directories.
    #[arg(
        long,
        global = true,
        hide_short_help = true,
        env = "TENON_TRUST_POLICY",
        value_name = "FILE"
    )]
    pub(crate) trust_policy: Option<PathBuf>,
    /// Use only the marketplace cache (metadata, index files, packages);
    /// never touch the network.
    #[arg(long, global = true, env = "TENON_OFFLINE")]
    pub(crate) offline: bool,
    /// The development switch: install plugin directories and unsigned
    /// packages, at trust level `internal` (keys in the policy still count;
    /// bad and revoked signatures are still refused).
    #[arg(long, global = true, hide_short_help = true, env = "TENON_DEV")]
    pub(crate) dev: bool,
    /// PostgreSQL: the schema holding the registry's tables (created if
    /// missing), so that several registries can share a database.
    #[arg(
        long,
        global = true,
        hide_short_help = true,
        env = "TENON_REGISTRY_SCHEMA",
        value_name = "SCHEMA"
    )]
    pub(crate) registry_schema: Option<String>,
    /// How long to wait for a PostgreSQL registry to accept a connection.
    #[arg(
        long,
        global = true, hide_short_help = true,
        value_name = "DURATION",
        default_value = "3s",
        value_parser = parse_duration
    )]
    pub(crate) connect_timeout: Duration,
    /// Show more: informational log lines, and the runtimes' own logs
    /// whole (a trapped plugin's backtrace) rather than summarised.
    #[arg(long, short = 'v', global = true)]
    pub(crate) verbose: bool,
    /// What the command may do to the registry (set by the command, not an
    /// option).
    #[arg(skip)]
    pub(crate) access: Access,
}

/// What a command may do to the registry it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Access {
    /// Create it, and the key for secrets, when missing (`install`).
    #[default]
    Create,
    /// Change an existing registry (creating the key for secrets when
    /// missing); a missing registry is an error naming its path.
    Write,
    /// Read an existing registry only: nothing is created, not even the
    /// key for secrets.
    Read,
}

/// `250ms`, `3s`, `1m`, `2h`, `30d`, or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: write 250ms, 3s, 1m, 2h or 30d"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        _ => return Err(format!("`{text}`: the unit is one of ms, s, m, h, d")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

/// Refuses at once a PostgreSQL registry whose server refuses connections
/// (rather than waiting out the connect timeout).
fn refuse_unreachable(url: &str, timeout: Duration) -> Result<(), Failure> {
    let Some((host, port)) = postgres_host_port(url) else {
        return Ok(());
    };
    let Ok(addresses) = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port)) else {
        return Ok(());
    };
    let addresses: Vec<_> = addresses.collect();
    let mut refused = None;
    for address in &addresses {
        match std::net::TcpStream::connect_timeout(address, timeout) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused = Some(e),
            // Anything else (a slow network) is left to the driver.
            Err(_) => return Ok(()),
        }
    }
    match refused {
        Some(error) => Err(Failure::environment(
            "registry_unreachable",
            format!(
                "cannot open the PostgreSQL registry at {}: {error} (is the server running and listening on {host}:{port}?)",
                without_password(url)
            ),
        )),
        None => Ok(()),
    }
}

/// The host and port of a `postgres://` URL with a TCP host (not a Unix
/// socket directory, not several hosts).
fn postgres_host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.is_empty() || host_port.contains(',') || host_port.starts_with('%') {
        return None;
    }
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let port = match port {
        Some(port) => port.parse().ok()?,
        None => 5432,
    };
    Some((host.to_owned(), port))
}

/// A URL without the password in its user info.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(name, _)| name);
            format!("{scheme}://{user}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Whether the engine starts the enabled plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Boot {
    /// Records only: nothing is loaded (list, info, config, grant …).
    No,
    /// The enabled plugins run (hooks, call, doctor).
    Plugins,
}

impl GlobalArgs {
    /// The output these options ask for.
    pub(crate) fn output(&self) -> Output {
        Output::new(self.format)
    }

    /// The registry location, parsed.
    pub(crate) fn location(&self) -> Result<RegistryLocation, Failure> {
        RegistryLocation::parse(&self.registry).map_err(|e| Failure::usage(e.to_string()))
    }

    /// The hook specs of the built-in host: `--hooks FILE`, or the agent
    /// runner's nine.
    pub(crate) fn hook_specs(&self) -> Result<Vec<HookSpec>, Failure> {
        match &self.hooks {
            Some(path) => read_hook_specs(path),
            None => Ok(agent_runner_hooks()),
        }
    }

    /// Opens the engine on the registry, serving the tenant; with
    /// [`Boot::Plugins`] the enabled plugins are started and those that
    /// cannot start are reported as warnings.
    pub(crate) async fn engine(&self, boot: Boot) -> Result<PluginEngine, Failure> {
        let location = self.location()?;
        let specs = self.hook_specs()?;
        tenon_registry::TenantId::new(&self.tenant).map_err(|e| Failure::usage(e.to_string()))?;
        let mut options = RegistryOptions::default();
        match (&location, &self.registry_schema) {
            (RegistryLocation::Postgres(url), schema) => {
                options.acquire_timeout = self.connect_timeout;
                options.postgres_schema = schema.clone();
                refuse_unreachable(url, self.connect_timeout)?;
            }
            (_, Some(_)) => {
                return Err(Failure::usage(
                    "--registry-schema applies to PostgreSQL registries only",
                ));
            }
            (_, None) => {}
        }
        self.check_exists(&location)?;
        options.secret_key = self.secret_key(&location)?;
        let trust = self.trust()?;
        let mut builder = PluginEngine::builder()
            .trust_policy(trust)
            .registry(&self.registry)
            .registry_options(options)
            .tenant(&self.tenant)
            .hooks(specs)
            .sandbox(SandboxConfig::default().with_private_networks(self.allow_private_networks))
            // A one-shot operator process reports what cannot start here; it
            // never marks plugins failed for the whole fleet.
            .boot_failures(BootFailures::ReportOnly)
            .boot(false);
        if let Some(dir) = &self.data_dir {
            builder = builder.data_dir(dir);
        }
        builder = builder.marketplace(tenon_engine::MarketplaceOptions {
            offline: self.offline,
            ..tenon_engine::MarketplaceOptions::default()
        });
        let output = self.output();
        let spinner = output.spinner("opening the registry");
        let engine = builder.build().await?;
        drop(spinner);
        if let Err(error) = self.check_tenant(&engine).await {
            engine.shutdown().await;
            return Err(error);
        }
        if boot == Boot::Plugins
            && let Err(error) = self.start_plugins(&engine).await
        {
            engine.shutdown().await;
            return Err(error);
        }
        Ok(engine)
    }

    /// Starts the enabled plugins; those that cannot start are reported as
    /// warnings.
    pub(crate) async fn start_plugins(&self, engine: &PluginEngine) -> Result<(), Failure> {
        let spinner = self.output().spinner("starting the enabled plugins");
        let report = engine.boot().await?;
        drop(spinner);
        for (id, why) in &report.failed {
            warn(&format!("{id} could not start: {why}"));
        }
        if !report.skipped_safe_mode.is_empty() {
            warn(&format!(
                "safe mode: left inactive {}",
                report
                    .skipped_safe_mode
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(())
    }

    /// Opens the engine, runs `work` with it, and shuts it down (stopping
    /// the plugins it started and flushing the event log) whatever `work`
    /// returned.
    pub(crate) async fn with_engine<T>(
        &self,
        boot: Boot,
        work: impl AsyncFnOnce(&PluginEngine) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let engine = self.engine(boot).await?;
        let result = work(&engine).await;
        engine.shutdown().await;
        result
    }

    /// Like [`Self::with_engine`] with the plugins started, but `check`
    /// runs first, on the records alone: a mistyped id, hook or function
    /// is refused before any plugin starts.
    pub(crate) async fn with_checked_engine<C, T>(
        &self,
        check: impl AsyncFnOnce(&PluginEngine) -> Result<C, Failure>,
        work: impl AsyncFnOnce(&PluginEngine, C) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let engine = self.engine(Boot::No).await?;
        let result = async {
            let checked = check(&engine).await?;
            self.start_plugins(&engine).await?;
            work(&engine, checked).await
        }
        .await;
        engine.shutdown().await;
        result
    }

    /// Refuses a tenant the registry does not know (one without plugins or
    /// events), unless the command may create it (`install`) or it is the
    /// default tenant; close known tenants are suggested.
    async fn check_tenant(&self, engine: &PluginEngine) -> Result<(), Failure> {
        if self.access == Access::Create || self.tenant == tenon_registry::TenantId::DEFAULT {
            return Ok(());
        }
        let known = engine
            .store()
            .list_tenants()
            .await
            .map_err(EngineError::from)?;
        if known.iter().any(|t| t.as_str() == self.tenant) {
            return Ok(());
        }
        let names: Vec<&str> = known.iter().map(tenon_registry::TenantId::as_str).collect();
        let close = tenon_types::similar(&self.tenant, names.iter().copied());
        Err(Failure::refused(
            "unknown_tenant",
            format!(
                "the registry {} knows no tenant `{}`{}; {}",
                without_password(&self.registry),
                self.tenant,
                crate::commands::did_you_mean(&close),
                if names.is_empty() {
                    "it holds no tenant yet (`tenon install` makes one)".to_owned()
                } else {
                    format!("its tenants: {}", names.join(", "))
                }
            ),
        ))
    }

    /// Refuses a command that does not create registries a SQLite registry
    /// file that does not exist (a mistyped `--registry` must not make a
    /// new, empty registry).
    fn check_exists(&self, location: &RegistryLocation) -> Result<(), Failure> {
        if self.access == Access::Create {
            return Ok(());
        }
        match location {
            RegistryLocation::Sqlite(path)
                if path.as_os_str() != RegistryLocation::SQLITE_MEMORY && !path.exists() =>
            {
                Err(Failure::environment(
                    "no_registry",
                    format!(
                        "no registry at {}: check --registry (or TENON_REGISTRY); `tenon install PATH` creates one",
                        path.display()
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The key for secret config values: `$TENON_SECRET_KEY`, else
    /// `--secret-key-file`, else the `secret.key` beside a SQLite registry
    /// (created on first use). In-memory registries get a throw-away key;
    /// PostgreSQL without one of the first two gets none.
    fn secret_key(&self, location: &RegistryLocation) -> Result<Option<SecretKey>, Failure> {
        if let Some(text) = std::env::var_os(SECRET_KEY_ENV) {
            let text = text.to_string_lossy();
            if !text.trim().is_empty() {
                return SecretKey::parse(&text)
                    .map(Some)
                    .map_err(|e| Failure::usage(format!("{SECRET_KEY_ENV} is not usable: {e}")));
            }
        }
        if let Some(path) = &self.secret_key_file {
            return read_key(path).map(Some);
        }
        match location {
            RegistryLocation::Sqlite(path)
                if path.as_os_str() != RegistryLocation::SQLITE_MEMORY =>
            {
                let file = registry_dir(path).join(SECRET_KEY_FILE);
                if self.access == Access::Read && !file.exists() {
                    // Reading creates nothing; without the key no secret
                    // can be read, and none was stored with it.
                    return Ok(None);
                }
                key_beside(&file).map(Some)
            }
            RegistryLocation::Sqlite(_) | RegistryLocation::Memory => {
                Ok(Some(SecretKey::generate()))
            }
            RegistryLocation::Postgres(_) => Ok(None),
        }
    }

    /// The trust policy file in force: `--trust-policy`, else `trust.toml`
    /// beside a SQLite registry when it exists.
    pub(crate) fn trust_policy_path(&self) -> Result<Option<PathBuf>, Failure> {
        if let Some(path) = &self.trust_policy {
            return Ok(Some(path.clone()));
        }
        Ok(match self.location()? {
            RegistryLocation::Sqlite(path)
                if path.as_os_str() != RegistryLocation::SQLITE_MEMORY =>
            {
                let beside = registry_dir(&path).join(TRUST_POLICY_FILE);
                beside.is_file().then_some(beside)
            }
            _ => None,
        })
    }

    /// The trust policy file `tenon trust add|remove` edit:
    /// `--trust-policy`, else `trust.toml` beside a SQLite registry (which
    /// need not exist yet).
    pub(crate) fn trust_policy_file(&self) -> Result<PathBuf, Failure> {
        if let Some(path) = &self.trust_policy {
            return Ok(path.clone());
        }
        match self.location()? {
            RegistryLocation::Sqlite(path)
                if path.as_os_str() != RegistryLocation::SQLITE_MEMORY =>
            {
                Ok(registry_dir(&path).join(TRUST_POLICY_FILE))
            }
            _ => Err(Failure::usage(
                "this registry keeps no trust policy file beside it: name the file with --trust-policy FILE (or TENON_TRUST_POLICY)",
            )),
        }
    }

    /// The trust policy: the file's (see [`Self::trust_policy_path`]), with
    /// the development switch applied when `--dev` is given.
    pub(crate) fn trust(&self) -> Result<TrustPolicy, Failure> {
        let mut policy = match self.trust_policy_path()? {
            Some(path) => read_trust_policy(&path)?,
            None => TrustPolicy::default(),
        };
        if self.dev {
            let development = TrustPolicy::development();
            policy.allow_unsigned = development.allow_unsigned;
            policy.allow_unsigned_directories = development.allow_unsigned_directories;
            policy.unsigned_level = development.unsigned_level;
        }
        Ok(policy)
    }

    /// Whether a key for secrets was found or made (see
    /// [`GlobalArgs::secret_key`]); for the message when there is none.
    pub(crate) fn has_secret_key(&self) -> bool {
        std::env::var_os(SECRET_KEY_ENV).is_some_and(|v| !v.is_empty())
            || self.secret_key_file.is_some()
            || !matches!(self.location(), Ok(RegistryLocation::Postgres(_)))
    }
}

/// Reads and checks a trust policy file.
pub(crate) fn read_trust_policy(path: &Path) -> Result<TrustPolicy, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(format!(
            "cannot read the trust policy {}: {e}",
            path.display()
        ))
    })?;
    TrustPolicy::from_toml(&text).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
}

/// The directory of a SQLite registry file.
fn registry_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Reads a key file.
fn read_key(path: &Path) -> Result<SecretKey, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(format!(
            "cannot read the secret key file {}: {e}",
            path.display()
        ))
    })?;
    SecretKey::parse(&text).map_err(|e| {
        Failure::usage(format!(
            "the secret key file {} is not usable: {e}",
            path.display()
        ))
    })
}

/// The key in `path`, created (mode 0600, atomically, so that concurrent
/// commands agree on one key) when there is none.
fn key_beside(path: &Path) -> Result<SecretKey, Failure> {
    if path.exists() {
        warn_if_readable_by_others(path);
        return read_key(path);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
    let key = SecretKey::generate();
    let temp = dir.join(format!(".{SECRET_KEY_FILE}.{}.tmp", std::process::id()));
    write_private(&temp, format!("{}\n", key.reveal_hex()).as_bytes())
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", temp.display())))?;
    // A hard link fails if another command created the key meanwhile: then
    // that key is the one.
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(path),
        Err(e) => Err(Failure::usage(format!(
            "cannot create the secret key file {}: {e}",
            path.display()
        ))),
    }
}

/// Creates `path`, which must not exist, readable and writable by its
/// owner only, holding `bytes`.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warn(&format!(
                "{} is readable by others (mode {mode:o}); restrict it with `chmod 600 {}`",
                path.display(),
                path.display()
            ));
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

/// Reads and checks a hook spec file.
pub(crate) fn read_hook_specs(path: &Path) -> Result<Vec<HookSpec>, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(format!(
            "cannot read the hooks file {}: {e}",
            path.display()
        ))
    })?;
    let specs: Vec<HookSpec> = serde_json::from_str(&text).map_err(|e| {
        Failure::usage(format!(
            "{}:{}:{}: invalid hooks file: {} (expected [{{\"name\": …, \"mutable\": [\"/ptr\"], \"can_block\": false, \"timeout_ms\": 1500}}])",
            path.display(),
            e.line(),
            e.column(),
            strip_position(&e)
        ))
    })?;
    let registry = tenon_hooks::HookRegistry::new();
    registry
        .declare_all(specs.clone())
        .map_err(|e| Failure::usage(format!("invalid hooks file {}: {e}", path.display())))?;
    Ok(specs)
}

/// A serde_json error's message without its trailing "at line L column C".
pub(crate) fn strip_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    message
        .strip_suffix(&position)
        .unwrap_or(&message)
        .to_owned()
}

/// The installed plugin `text` names. An id that is not even well-formed
/// gets the engine's "not installed" error, with installed plugins of the
/// same name suggested (`moderator` → `tenon-examples/moderator`).
pub(crate) async fn find_plugin(
    engine: &PluginEngine,
    text: &str,
) -> Result<PluginRecord, Failure> {
    match PluginId::new(text) {
        Ok(id) => Ok(engine.record(&id).await?),
        Err(_) => {
            let wanted = text.trim().to_ascii_lowercase();
            let installed: Vec<String> = engine
                .list()
                .await?
                .into_iter()
                .map(|r| r.id.to_string())
                .collect();
            let suggestions = tenon_types::similar(&wanted, installed.iter().map(String::as_str));
            Err(EngineError::NotInstalled {
                id: text.to_owned(),
                suggestions,
                kept: false,
            }
            .into())
        }
    }
}

/// The id of the installed plugin `text` names.
pub(crate) async fn plugin_id(engine: &PluginEngine, text: &str) -> Result<PluginId, Failure> {
    Ok(find_plugin(engine, text).await?.id)
}

/// A JSON value from the command line: JSON when it parses, else the text
/// as a string.
pub(crate) fn json_or_string(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}

/// Parses `text` as JSON for `what`, as a usage error when it does not.
pub(crate) fn parse_json(text: &str, what: &str) -> Result<serde_json::Value, Failure> {
    serde_json::from_str(text).map_err(|e| {
        Failure::Usage(anyhow!(
            "{what} is not valid JSON: {} (line {} column {})",
            strip_position(&e),
            e.line(),
            e.column()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let check = |text: &str, expected: Result<Duration, &str>| {
            let got = parse_duration(text);
            match expected {
                Ok(duration) => assert_eq!(got, Ok(duration), "{text}"),
                Err(part) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(part)),
                    "{text}: {got:?}"
                ),
            }
        };
        check("250ms", Ok(Duration::from_millis(250)));
        check("3s", Ok(Duration::from_secs(3)));
        check("1.5s", Ok(Duration::from_millis(1500)));
        check("2m", Ok(Duration::from_secs(120)));
        check("4", Ok(Duration::from_secs(4)));
        check("3h", Ok(Duration::from_secs(3 * 3600)));
        check("2d", Ok(Duration::from_secs(2 * 86400)));
        check("3w", Err("the unit is one of ms, s, m, h, d"));
        check("soon", Err("is not a duration"));
        check("", Err("is not a duration"));
    }

    #[test]
    fn values_from_the_command_line() {
        let check = |text: &str, expected: serde_json::Value| {
            assert_eq!(json_or_string(text), expected, "{text}");
        };
        check("42", serde_json::json!(42));
        check("true", serde_json::json!(true));
        check(r#"["a", "b"]"#, serde_json::json!(["a", "b"]));
        check(r#""quoted""#, serde_json::json!("quoted"));
        check("plain words", serde_json::json!("plain words"));
        check("http://x/y", serde_json::json!("http://x/y"));
        check("{oops", serde_json::json!("{oops"));
    }

    /// A URL, the TCP host and port it names, and how it is shown.
    type AddressCase = (&'static str, Option<(&'static str, u16)>, &'static str);

    #[test]
    fn postgres_addresses() {
        let cases: &[AddressCase] = &[
            (
                "postgres://tenon@127.0.0.1:1/x",
                Some(("127.0.0.1", 1)),
                "postgres://tenon@127.0.0.1:1/x",
            ),
            (
                "postgres://u:secret@db.example/x?sslmode=require",
                Some(("db.example", 5432)),
                "postgres://u@db.example/x?sslmode=require",
            ),
            (
                "postgresql://[::1]:6543/db",
                Some(("::1", 6543)),
                "postgresql://[::1]:6543/db",
            ),
            (
                "postgres://h1:5432,h2:5432/db",
                None,
                "postgres://h1:5432,h2:5432/db",
            ),
            (
                "postgres:///db?host=/run/postgresql",
                None,
                "postgres:///db?host=/run/postgresql",
            ),
            (
                "postgres://host:notaport/db",
                None,
                "postgres://host:notaport/db",
            ),
        ];
        for (url, expected, shown) in cases {
            assert_eq!(
                postgres_host_port(url),
                expected.map(|(h, p)| (h.to_owned(), p)),
                "{url}"
            );
            assert_eq!(without_password(url), *shown, "{url}");
        }
    }

    #[test]
    fn secret_keys_are_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join(SECRET_KEY_FILE);
        let first = key_beside(&path).unwrap();
        let again = key_beside(&path).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        let error = key_beside(&path).unwrap_err();
        assert!(format!("{error:?}").contains("is not usable"), "{error:?}");
    }
}
