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

/// Options shared by every command (`tenon --help` lists them).
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// The registry: a SQLite file (created on first use), `sqlite://PATH`,
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
    #[arg(long, global = true, env = "TENON_HOOKS", value_name = "FILE")]
    pub(crate) hooks: Option<PathBuf>,
    /// A file holding the key for secret config values (64 hex digits).
    /// Default: $TENON_SECRET_KEY, else `secret.key` beside a SQLite
    /// registry (created, mode 0600, on first use). A PostgreSQL registry
    /// needs the environment variable or this option.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) secret_key_file: Option<PathBuf>,
    /// Where plugin data and the compiled-module cache live (default: the
    /// SQLite registry's directory, else ./.tenon).
    #[arg(long, global = true, env = "TENON_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Let plugins reach private and loopback addresses their grant allows
    /// (a local webhook sink, a service on this machine).
    #[arg(long, global = true)]
    pub(crate) allow_private_networks: bool,
    /// The operator's trust policy (TOML: trusted and revoked keys, levels,
    /// rotations, the development switch; see docs/package-format.md).
    /// Default: `trust.toml` beside a SQLite registry when it exists, else a
    /// policy that trusts no key and refuses unsigned packages and plugin
    /// directories.
    #[arg(long, global = true, env = "TENON_TRUST_POLICY", value_name = "FILE")]
    pub(crate) trust_policy: Option<PathBuf>,
    /// Use only the marketplace cache (metadata, index files, packages);
    /// never touch the network.
    #[arg(long, global = true, env = "TENON_OFFLINE")]
    pub(crate) offline: bool,
    /// The development switch: install plugin directories and unsigned
    /// packages, at trust level `internal` (keys in the policy still count;
    /// bad and revoked signatures are still refused).
    #[arg(long, global = true, env = "TENON_DEV")]
    pub(crate) dev: bool,
    /// PostgreSQL: the schema holding the registry's tables (created if
    /// missing), so that several registries can share a database.
    #[arg(
        long,
        global = true,
        env = "TENON_REGISTRY_SCHEMA",
        value_name = "SCHEMA"
    )]
    pub(crate) registry_schema: Option<String>,
    /// How long to wait for a PostgreSQL registry to accept a connection.
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        default_value = "3s",
        value_parser = parse_duration
    )]
    pub(crate) connect_timeout: Duration,
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
        let key = self.secret_key(&location)?;
        let mut options = RegistryOptions {
            secret_key: key,
            ..RegistryOptions::default()
        };
        match (&location, &self.registry_schema) {
            (RegistryLocation::Postgres(_), schema) => {
                options.acquire_timeout = self.connect_timeout;
                options.postgres_schema = schema.clone();
            }
            (_, Some(_)) => {
                return Err(Failure::usage(
                    "--registry-schema applies to PostgreSQL registries only",
                ));
            }
            (_, None) => {}
        }
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
        if boot == Boot::Plugins {
            spinner.set_message("starting the enabled plugins");
            let report = match engine.boot().await {
                Ok(report) => report,
                Err(error) => {
                    engine.shutdown().await;
                    return Err(error.into());
                }
            };
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
        }
        Ok(engine)
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
                key_beside(&registry_dir(path).join(SECRET_KEY_FILE)).map(Some)
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
            let suggestions = engine
                .list()
                .await?
                .into_iter()
                .map(|r| r.id)
                .filter(|id| {
                    id.name() == wanted || (!wanted.is_empty() && id.as_str().contains(&wanted))
                })
                .take(3)
                .map(|id| id.to_string())
                .collect();
            Err(EngineError::NotInstalled {
                id: text.to_owned(),
                suggestions,
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
