//! What operators run to see and change which plugins exist: `install`,
//! `upgrade`, `list`, `info`, `doctor`.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;
use serde_json::Value;
use tenon_engine::{
    EngineError, PluginEngine, PluginRecord, PluginState, TrustRecord, UpgradeReport,
};
use tenon_manifest::Diagnostic;

use super::author::{BuildFlags, prepare};
use super::{LastErrorJson, list_or_none, plural, timestamp};
use crate::exit::{CommandResult, Failure};
use crate::output::Output;
use crate::session::{Boot, GlobalArgs, find_plugin};

/// `tenon install` arguments.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tenon install examples/plugins/moderator        # a project: built first when needed
  tenon install target/tenon/my-plugin            # a plugin directory
  tenon install acme-notifier-1.2.0.tenon         # a package (signatures in .tenon.sig)")]
pub(crate) struct InstallArgs {
    /// A plugin directory (manifest and module), a plugin project (built
    /// first when its module is missing), a package archive (.tenon, with
    /// its signatures in <archive>.sig when present), or, when no such path
    /// exists, ID[@REQ] from a marketplace (with the dependencies it needs).
    path: PathBuf,
    #[command(flatten)]
    flags: BuildFlags,
    #[command(flatten)]
    from: super::catalog::FromArgs,
    /// Install from a marketplace without asking (the plan is still shown).
    #[arg(long, short = 'y')]
    yes: bool,
}

/// What `tenon install` prints in JSON.
#[derive(Serialize)]
struct InstallJson {
    id: String,
    version: String,
    state: &'static str,
    missing_config: Vec<String>,
    permissions: Vec<String>,
    granted: bool,
    warnings: Vec<Diagnostic>,
    notes: Vec<String>,
    built: bool,
    trust: TrustRecord,
    /// What became of an uninstalled plugin's leftovers, when there were
    /// any.
    leftovers: Option<tenon_engine::Leftovers>,
}

/// Runs `tenon install`.
pub(crate) async fn install(args: InstallArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    if !args.path.exists()
        && let Some(wanted) = args.path.to_str().and_then(super::catalog::parse_wanted)
    {
        return super::catalog::install(wanted?, &args.from, args.yes, global).await;
    }
    let prepared = prepare(&args.path, &args.flags, &output)?;
    let installed = global
        .with_engine(Boot::No, async |engine| {
            let _spinner = output.spinner(&format!("installing {}", prepared.path().display()));
            match engine.install(prepared.path()).await {
                Ok(report) => Ok(Ok(report)),
                // Installing again what is installed changes nothing.
                Err(EngineError::AlreadyInstalled {
                    id,
                    version,
                    same: true,
                }) => Ok(Err((id, version))),
                Err(error) => Err(error.into()),
            }
        })
        .await?;
    let report = match installed {
        Ok(report) => report,
        Err((id, version)) if output.is_json() => {
            return output.json(&serde_json::json!({
                "id": id.as_str(),
                "version": version.to_string(),
                "already_installed": true,
            }));
        }
        Err((id, version)) => {
            return output.text(&format!(
                "{} {version} is already installed (the same version, manifest and module): nothing to do",
                output.bold(id.as_str())
            ));
        }
    };
    let json = InstallJson {
        id: report.id.to_string(),
        version: report.version.to_string(),
        state: report.state.as_str(),
        missing_config: report.missing_config,
        permissions: report.permissions,
        granted: report.granted,
        warnings: report.warnings,
        notes: report.notes,
        built: prepared.built(),
        trust: report.trust,
        leftovers: report.leftovers,
    };
    if output.is_json() {
        return output.json(&json);
    }
    let file = manifest_file(prepared.path());
    for d in &json.warnings {
        eprintln!("{}", super::manifest::human_line(&file, d));
    }
    let mut text = format!(
        "{} {} {} ({})\n",
        output.good("Installed"),
        output.bold(&json.id),
        json.version,
        output.state(report.state)
    );
    for note in &json.notes {
        text.push_str(&format!("  note: {note}\n"));
    }
    if let Some(left) = &json.leftovers {
        let what = format!(
            "what an earlier install left ({} config keys, {} grants, {} KV entries{})",
            left.config_keys,
            left.grants,
            left.kv_entries,
            if left.files { ", data files" } else { "" }
        );
        if left.passed {
            text.push_str(&format!("  kept {what}: {}\n", left.reason));
        } else {
            text.push_str(&format!(
                "  {} {what}: {}\n",
                output.notice("purged"),
                left.reason
            ));
        }
    }
    text.push_str(&format!(
        "  permissions: {}\n",
        list_or_none(&json.permissions)
    ));
    let id = &json.id;
    if !json.missing_config.is_empty() {
        let key = match json.missing_config.as_slice() {
            [one] => one.as_str(),
            _ => "KEY",
        };
        text.push_str(&format!(
            "  {} {}: set with `tenon config set {id} {key} VALUE`\n",
            output.notice("required config missing:"),
            json.missing_config.join(", ")
        ));
    }
    if !json.granted {
        text.push_str(&format!(
            "  {} review them with `tenon info {id}`, then `tenon grant {id}`\n",
            output.notice("permissions not granted:")
        ));
    }
    text.push_str(&format!("  enable it with `tenon enable {id}`\n"));
    output.text(&text)
}

/// The manifest file of what is installed, for naming it in warnings: the
/// directory's `tenon.toml` (or `.json`, `.yaml`, `.yml`), or the archive.
fn manifest_file(path: &Path) -> String {
    if path.is_dir()
        && let Some(file) = tenon_marketplace::MANIFEST_FILES
            .iter()
            .map(|name| path.join(name))
            .find(|file| file.is_file())
    {
        return file.display().to_string();
    }
    path.display().to_string()
}

/// `tenon upgrade` arguments.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tenon upgrade acme-notifier-1.3.0.tenon
  tenon upgrade examples/plugins/counter")]
pub(crate) struct UpgradeArgs {
    /// The new version: a plugin directory, a plugin project, or a package
    /// archive.
    path: PathBuf,
    #[command(flatten)]
    flags: BuildFlags,
}

/// What `upgrade` and `rollback` print in JSON.
#[derive(Serialize)]
pub(crate) struct VersionSwitchJson {
    id: String,
    from: String,
    to: String,
    state: &'static str,
    swapped: bool,
    state_carried: bool,
    trust: Option<TrustRecord>,
}

/// Prints what an upgrade or a rollback did.
pub(crate) fn print_switch(report: &UpgradeReport, verb: &str, output: &Output) -> CommandResult {
    let json = VersionSwitchJson {
        id: report.id.to_string(),
        from: report.from.to_string(),
        to: report.to.to_string(),
        state: report.state.as_str(),
        swapped: report.swapped,
        state_carried: report.state_carried,
        trust: report.trust.clone(),
    };
    if output.is_json() {
        return output.json(&json);
    }
    let mut text = format!(
        "{} {} from {} to {} ({})\n",
        output.good(verb),
        output.bold(&json.id),
        json.from,
        json.to,
        output.state(report.state)
    );
    if report.swapped {
        text.push_str(&format!(
            "  the running code was swapped{}\n",
            if report.state_carried {
                ", its in-memory state carried over"
            } else {
                ""
            }
        ));
    }
    output.text(&text)
}

/// Runs `tenon upgrade`.
pub(crate) async fn upgrade(args: UpgradeArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let prepared = prepare(&args.path, &args.flags, &output)?;
    let report = global
        .with_engine(Boot::No, async |engine| {
            let _spinner = output.spinner(&format!("upgrading from {}", prepared.path().display()));
            Ok(engine.upgrade(prepared.path()).await?)
        })
        .await?;
    print_switch(&report, "Upgraded", &output)
}

/// The short trust label of a version (`partner · sandboxed`), `-` when
/// none was recorded.
pub(crate) fn trust_badge(trust: Option<&TrustRecord>) -> &str {
    trust.map_or("-", |t| t.posture.badge.as_str())
}

/// What `info` and `doctor` say about a version's verification.
pub(crate) fn trust_line(trust: Option<&TrustRecord>) -> String {
    let Some(trust) = trust else {
        return "not recorded (installed before verification was kept)".to_owned();
    };
    let signers = if trust.signers.is_empty() {
        "no signatures".to_owned()
    } else {
        format!(
            "signed by {}",
            trust
                .signers
                .iter()
                .map(|s| format!("{} ({})", s.key_id, s.role))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "{} ({}, {signers}; checked {})",
        trust.posture.badge,
        trust.checked.as_str(),
        timestamp(trust.checked_at)
    )
}

/// One plugin in `tenon list`'s JSON.
#[derive(Serialize)]
struct ListEntry {
    id: String,
    name: String,
    version: String,
    state: &'static str,
    enabled: bool,
    runtime: &'static str,
    source: SourceJson,
    trust: Option<TrustRecord>,
    last_error: Option<LastErrorJson>,
    updated_at: String,
}

#[derive(Serialize)]
struct SourceJson {
    kind: &'static str,
    reference: String,
}

fn source_json(record: &PluginRecord) -> SourceJson {
    SourceJson {
        kind: record.source.kind.as_str(),
        reference: record.source.reference.clone(),
    }
}

/// Runs `tenon list`.
pub(crate) async fn list(global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let records = global
        .with_engine(Boot::No, async |engine| Ok(engine.list().await?))
        .await?;
    if output.is_json() {
        let plugins: Vec<ListEntry> = records
            .iter()
            .map(|r| ListEntry {
                id: r.id.to_string(),
                name: r.manifest.plugin.name.clone(),
                version: r.version.to_string(),
                state: r.state.as_str(),
                enabled: r.enabled,
                runtime: r.manifest.runtime.kind.as_str(),
                source: source_json(r),
                trust: TrustRecord::from_stored(r.verification.as_ref()),
                last_error: r.last_error.as_ref().map(LastErrorJson::from),
                updated_at: timestamp(r.updated_at),
            })
            .collect();
        return output.json(&serde_json::json!({ "plugins": plugins }));
    }
    if records.is_empty() {
        return output.text(&format!(
            "no plugins installed in tenant {} (install one with `tenon install PATH`)",
            global.tenant
        ));
    }
    let mut table = output.table([
        "ID", "VERSION", "STATE", "ENABLED", "RUNTIME", "TRUST", "NAME",
    ]);
    for r in &records {
        table.add_row(vec![
            output.cell(&r.id),
            output.cell(&r.version),
            output.state_cell(r.state),
            output.cell(if r.enabled { "yes" } else { "no" }),
            output.cell(r.manifest.runtime.kind.as_str()),
            output.cell(trust_badge(
                TrustRecord::from_stored(r.verification.as_ref()).as_ref(),
            )),
            output.cell(&r.manifest.plugin.name),
        ]);
    }
    output.text(&output.render(&mut table))
}

/// `tenon info` arguments.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tenon info tenon-examples/moderator
  tenon --format json info tenon-examples/moderator")]
pub(crate) struct InfoArgs {
    /// The plugin id (publisher/name).
    id: String,
}

/// What `tenon info` prints in JSON.
#[derive(Serialize)]
struct InfoJson {
    id: String,
    name: String,
    version: String,
    description: String,
    authors: Vec<String>,
    license: Option<String>,
    homepage: Option<String>,
    repository: Option<String>,
    state: &'static str,
    #[serde(skip)]
    plugin_state: PluginState,
    enabled: bool,
    runtime: RuntimeJson,
    source: SourceJson,
    artifact: Option<String>,
    trust: Option<TrustRecord>,
    versions: Vec<VersionJson>,
    hooks: Vec<HookJson>,
    commands: Vec<CommandJson>,
    endpoints: Vec<EndpointJson>,
    services: ServicesJson,
    dependencies: Vec<DependencyJson>,
    permissions: PermissionsJson,
    config: Vec<ConfigKeyJson>,
    missing_config: Vec<String>,
    last_error: Option<LastErrorJson>,
    resources: tenon_engine::ResourceUsage,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
struct RuntimeJson {
    kind: &'static str,
    module: Option<String>,
    isolation: Value,
    memory: String,
    timeout: String,
}

#[derive(Serialize)]
struct VersionJson {
    version: String,
    current: bool,
    installed_at: String,
    trust: Option<TrustRecord>,
}

#[derive(Serialize)]
struct HookJson {
    name: String,
    priority: Value,
    fail_policy: Value,
    timeout: Option<String>,
    retries: u32,
}

#[derive(Serialize)]
struct CommandJson {
    name: String,
    description: String,
}

/// One of `[[endpoints]]`, with the path `tenon serve` answers it on.
#[derive(Serialize)]
struct EndpointJson {
    method: String,
    path: String,
    url_path: String,
    function: String,
    auth: bool,
    rate_limit: Option<String>,
    description: String,
}

/// The host's services as this plugin sees them.
#[derive(Serialize)]
struct ServicesJson {
    /// The methods it may call: its permissions in force hold theirs.
    callable: Vec<ServiceJson>,
    /// The methods it may not call, each with the permission it lacks.
    not_callable: Vec<ServiceJson>,
    /// Its host permissions in force: what a host's services check.
    host_permissions: Vec<String>,
}

#[derive(Serialize)]
struct ServiceJson {
    name: String,
    permission: String,
    description: String,
}

#[derive(Serialize)]
struct DependencyJson {
    id: String,
    version: String,
    optional: bool,
    scope: Value,
}

#[derive(Serialize)]
struct PermissionsJson {
    declared: Vec<String>,
    granted: Vec<String>,
    missing: Vec<String>,
}

#[derive(Serialize)]
struct ConfigKeyJson {
    key: String,
    #[serde(rename = "type")]
    ty: Option<String>,
    required: bool,
    secret: bool,
    set: bool,
    missing: bool,
    default: Option<Value>,
    description: Option<String>,
}

/// The JSON type a config key takes, from either form of the spec.
pub(crate) fn config_type(spec: &tenon_manifest::ConfigSpec, key: &str) -> Option<String> {
    if let Some(field) = spec.fields.iter().find(|f| f.key == key) {
        return Some(field.ty.as_str().to_owned());
    }
    let property = spec.schema.as_ref()?.get("properties")?.get(key)?;
    match property.get("type")? {
        Value::String(ty) => Some(ty.clone()),
        other => Some(other.to_string()),
    }
}

fn config_description(spec: &tenon_manifest::ConfigSpec, key: &str) -> Option<String> {
    if let Some(field) = spec.fields.iter().find(|f| f.key == key) {
        return field.description.clone().or_else(|| field.label.clone());
    }
    let property = spec.schema.as_ref()?.get("properties")?.get(key)?;
    property
        .get("description")
        .or_else(|| property.get("title"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn to_value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

async fn info_json(engine: &PluginEngine, record: &PluginRecord) -> Result<InfoJson, Failure> {
    let manifest = &record.manifest;
    let mut versions = engine
        .store()
        .list_versions(engine.tenant(), &record.id)
        .await
        .map_err(EngineError::from)?;
    versions.sort_by(|a, b| a.version.cmp_precedence(&b.version));
    let permissions = engine.permissions(&record.id).await?;
    let values = engine.config(&record.id).await?;
    let resources = engine.resources(&record.id).await?;
    let spec = &manifest.config;
    let missing_config = {
        let set: serde_json::Map<String, Value> = values.clone().into_iter().collect();
        spec.missing_required(&set)
    };
    let config = spec
        .keys()
        .into_iter()
        .map(|key| ConfigKeyJson {
            key: key.to_owned(),
            ty: config_type(spec, key),
            required: spec.is_required(key),
            secret: spec.is_secret(key),
            set: values.contains_key(key),
            missing: missing_config.iter().any(|k| k == key),
            default: spec.default_value(key).cloned(),
            description: config_description(spec, key),
        })
        .collect();
    Ok(InfoJson {
        id: record.id.to_string(),
        name: manifest.plugin.name.clone(),
        version: record.version.to_string(),
        description: manifest.plugin.description.clone(),
        authors: manifest.plugin.authors.clone(),
        license: manifest.plugin.license.clone(),
        homepage: manifest.plugin.homepage.clone(),
        repository: manifest.plugin.repository.clone(),
        state: record.state.as_str(),
        plugin_state: record.state,
        enabled: record.enabled,
        runtime: RuntimeJson {
            kind: manifest.runtime.kind.as_str(),
            module: manifest.runtime.module.clone(),
            isolation: to_value(&manifest.limits.isolation),
            memory: manifest.limits.memory.to_string(),
            timeout: manifest.limits.timeout.to_string(),
        },
        source: source_json(record),
        resources,
        artifact: record.artifact.as_ref().map(ToString::to_string),
        trust: TrustRecord::from_stored(record.verification.as_ref()),
        versions: versions
            .iter()
            .map(|v| VersionJson {
                version: v.version.to_string(),
                current: v.current,
                installed_at: timestamp(v.installed_at),
                trust: TrustRecord::from_stored(v.verification.as_ref()),
            })
            .collect(),
        hooks: manifest
            .hooks
            .iter()
            .map(|h| HookJson {
                name: h.name.clone(),
                priority: to_value(&h.priority),
                fail_policy: to_value(&h.fail_policy),
                timeout: h.timeout.map(|t| t.to_string()),
                retries: h.retries,
            })
            .collect(),
        commands: manifest
            .commands
            .iter()
            .map(|c| CommandJson {
                name: c.name.clone(),
                description: c.description.clone(),
            })
            .collect(),
        endpoints: manifest
            .endpoints
            .iter()
            .map(|e| EndpointJson {
                method: e.method.clone(),
                path: e.path.clone(),
                url_path: format!("/plugins/{}{}", record.id, e.path),
                function: e.function.clone(),
                auth: e.auth,
                rate_limit: e
                    .rate_limit
                    .map(|r| format!("{} per {} per caller", r.requests, r.window)),
                description: e.description.clone(),
            })
            .collect(),
        services: services_json(engine, &permissions.effective),
        dependencies: manifest
            .dependencies
            .iter()
            .map(|(id, d)| DependencyJson {
                id: id.to_string(),
                version: d.version.to_string(),
                optional: d.optional,
                scope: to_value(&d.scope),
            })
            .collect(),
        permissions: PermissionsJson {
            granted: tenon_engine::grants::describe(&permissions.effective),
            declared: permissions.declared,
            missing: permissions.missing,
        },
        config,
        missing_config,
        last_error: record.last_error.as_ref().map(LastErrorJson::from),
        created_at: timestamp(record.created_at),
        updated_at: timestamp(record.updated_at),
    })
}

/// The host's service methods split by whether `effective` holds their
/// permissions, and the host permissions `effective` holds.
fn services_json(engine: &PluginEngine, effective: &tenon_engine::Permissions) -> ServicesJson {
    let (callable, not_callable) = engine
        .services()
        .methods()
        .map(|(name, method)| {
            let json = ServiceJson {
                name,
                permission: method.permission().to_string(),
                description: method.description().to_owned(),
            };
            (method.permission().held_by(effective), json)
        })
        .partition::<Vec<_>, _>(|(held, _)| *held);
    let host_only = tenon_engine::Permissions {
        host: effective.host.clone(),
        ..tenon_engine::Permissions::default()
    };
    ServicesJson {
        callable: callable.into_iter().map(|(_, s)| s).collect(),
        not_callable: not_callable.into_iter().map(|(_, s)| s).collect(),
        host_permissions: tenon_engine::grants::describe(&host_only),
    }
}

/// `tenon info`'s services line: what the plugin may call, or, when the host
/// offers it nothing, the host permissions that a host's services would
/// check.
fn services_line(services: &ServicesJson) -> String {
    let mut shown: Vec<String> = services
        .callable
        .iter()
        .map(|s| format!("{} ({})", s.name, s.permission))
        .collect();
    if !services.not_callable.is_empty() {
        shown.push(format!(
            "not callable: {}",
            services
                .not_callable
                .iter()
                .map(|s| format!("{} (needs {})", s.name, s.permission))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if services.callable.is_empty() && services.not_callable.is_empty() {
        shown.push("this host offers no services".to_owned());
    }
    if services.callable.is_empty() {
        shown.push(if services.host_permissions.is_empty() {
            "no host permission in force".to_owned()
        } else {
            format!(
                "host permissions in force: {}",
                services.host_permissions.join(", ")
            )
        });
    }
    shown.join("; ")
}

/// Runs `tenon info`.
pub(crate) async fn info(args: InfoArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let info = global
        .with_engine(Boot::No, async |engine| {
            let record = find_plugin(engine, &args.id).await?;
            info_json(engine, &record).await
        })
        .await?;
    if output.is_json() {
        return output.json(&info);
    }
    output.text(&info_text(&info, &output))
}

fn info_text(info: &InfoJson, output: &Output) -> String {
    let state = output.state(info.plugin_state);
    let mut text = format!(
        "{} {} — {}\n{}\n\n",
        output.bold(&info.id),
        info.version,
        info.name,
        info.description
    );
    let mut line = |label: &str, value: String| {
        text.push_str(&format!("{:<14}{value}\n", format!("{label}:")));
    };
    line(
        "state",
        format!(
            "{state} ({})",
            if info.enabled {
                "enabled"
            } else {
                "not enabled"
            }
        ),
    );
    line(
        "runtime",
        format!(
            "{}{} (memory {}, timeout {})",
            info.runtime.kind,
            info.runtime
                .module
                .as_ref()
                .map(|m| format!(", module {m}"))
                .unwrap_or_default(),
            info.runtime.memory,
            info.runtime.timeout
        ),
    );
    line(
        "source",
        format!("{}: {}", info.source.kind, info.source.reference),
    );
    line("resources", crate::output::resources(&info.resources));
    line("trust", trust_line(info.trust.as_ref()));
    if let Some(trust) = &info.trust {
        line(
            "posture",
            format!(
                "{}; isolation: {}{}",
                trust.posture.execution,
                trust.posture.isolation,
                if trust.posture.limitations.is_empty() {
                    String::new()
                } else {
                    format!("; {}", trust.posture.limitations.join(", "))
                }
            ),
        );
    }
    if let Some(license) = &info.license {
        line("license", license.clone());
    }
    if !info.authors.is_empty() {
        line("authors", info.authors.join(", "));
    }
    line(
        "versions",
        info.versions
            .iter()
            .map(|v| {
                if v.current {
                    format!("{} (current)", v.version)
                } else {
                    v.version.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    line(
        "hooks",
        list_or_none(
            &info
                .hooks
                .iter()
                .map(|h| {
                    format!(
                        "{} ({}, fail {})",
                        h.name,
                        plain(&h.priority),
                        plain(&h.fail_policy)
                    )
                })
                .collect::<Vec<_>>(),
        ),
    );
    line(
        "commands",
        list_or_none(
            &info
                .commands
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
        ),
    );
    line(
        "endpoints",
        list_or_none(
            &info
                .endpoints
                .iter()
                .map(|e| {
                    let mut shown = format!("{} {}", e.method, e.url_path);
                    if e.auth {
                        shown.push_str(" (token)");
                    }
                    if let Some(rate) = &e.rate_limit {
                        shown.push_str(&format!(" ({rate})"));
                    }
                    shown
                })
                .collect::<Vec<_>>(),
        ),
    );
    line("services", services_line(&info.services));
    line(
        "dependencies",
        list_or_none(
            &info
                .dependencies
                .iter()
                .map(|d| format!("{} {}", d.id, d.version))
                .collect::<Vec<_>>(),
        ),
    );
    line(
        "last error",
        match &info.last_error {
            Some(error) => output.bad(&format!("{} ({})", error.message, error.code)),
            None => "none".to_owned(),
        },
    );
    text.push_str("\npermissions:\n");
    if info.permissions.declared.is_empty() {
        text.push_str("  none declared\n");
    }
    for permission in &info.permissions.declared {
        let granted = !info.permissions.missing.contains(permission);
        let mark = if granted {
            output.good("granted")
        } else {
            output.notice("not granted")
        };
        text.push_str(&format!("  {permission}  [{mark}]\n"));
    }
    text.push_str("\nconfig:\n");
    if info.config.is_empty() {
        text.push_str("  none declared\n");
    } else {
        let mut table = output.table(["KEY", "TYPE", "REQUIRED", "SECRET", "VALUE", "DEFAULT"]);
        for key in &info.config {
            let value = if key.set {
                output.cell("set")
            } else if key.missing {
                output.verdict_cell("missing", false)
            } else {
                output.cell("-")
            };
            table.add_row(vec![
                output.cell(&key.key),
                output.cell(key.ty.as_deref().unwrap_or("any")),
                output.cell(if key.required { "yes" } else { "no" }),
                output.cell(if key.secret { "yes" } else { "no" }),
                value,
                output.cell(
                    key.default
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| "-".to_owned()),
                ),
            ]);
        }
        for line in output.render(&mut table).lines() {
            text.push_str(&format!("  {line}\n"));
        }
    }
    if !info.missing_config.is_empty() {
        text.push_str(&format!(
            "\n{} set {} with `tenon config set {} KEY VALUE`\n",
            output.notice("required config missing:"),
            info.missing_config.join(", "),
            info.id
        ));
    }
    if !info.permissions.missing.is_empty() {
        text.push_str(&format!(
            "\n{} grant them with `tenon grant {}`\n",
            output.notice("permissions not granted:"),
            info.id
        ));
    }
    text
}

/// A JSON string without its quotes; other values as JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs `tenon doctor`: exit 0 when nothing needs attention, 1 otherwise.
pub(crate) async fn doctor(global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let report = global
        .with_engine(Boot::Plugins, async |engine| Ok(engine.doctor().await?))
        .await?;
    if output.is_json() {
        output.json(&report)?;
    } else {
        let host = &report.host;
        let registry = &report.registry;
        let mut text = format!(
            "host:      {} (plugin API {}; runtimes {}{}), tenant {}\n",
            host.name,
            host.api_versions.join(", "),
            host.runtimes.join(", "),
            if host.safe_mode { "; SAFE MODE" } else { "" },
            host.tenant
        );
        text.push_str(&format!(
            "registry:  {} at {} (schema {})\n\n",
            registry.backend, registry.location, registry.schema_version
        ));
        if report.plugins.is_empty() {
            text.push_str("no plugins installed\n");
        } else {
            let mut table = output.table([
                "ID", "VERSION", "STATE", "RUNNING", "HEALTH", "TRUST", "ARTIFACT",
            ]);
            for p in &report.plugins {
                table.add_row(vec![
                    output.cell(&p.id),
                    output.cell(&p.version),
                    output.state_cell(p.state),
                    output.cell(if p.running { "yes" } else { "no" }),
                    output.health_cell(p.health),
                    output.cell(trust_badge(p.trust.as_ref())),
                    output.cell(p.artifact.split(' ').next().unwrap_or_default()),
                ]);
            }
            text.push_str(&output.render(&mut table));
            for p in report.plugins.iter().filter(|p| p.running) {
                text.push_str(&format!(
                    "\n{}: {}",
                    p.id,
                    crate::output::resources(&p.resources)
                ));
            }
            text.push('\n');
            for p in report.plugins.iter().filter(|p| !p.problems.is_empty()) {
                text.push_str(&format!("\n{}:\n", output.bold(p.id.as_str())));
                for problem in &p.problems {
                    text.push_str(&format!("  - {problem}\n"));
                }
            }
        }
        if !host.problems.is_empty() {
            text.push_str(&format!("\n{}:\n", output.bold("host")));
            for problem in &host.problems {
                text.push_str(&format!("  - {problem}\n"));
            }
        }
        let count = report
            .plugins
            .iter()
            .filter(|p| !p.problems.is_empty())
            .count();
        text.push('\n');
        text.push_str(&if report.healthy {
            output.good("healthy: nothing needs attention")
        } else if count == 0 {
            output.bad("the host needs attention")
        } else {
            output.bad(&format!(
                "{}{} need{} attention",
                plural(count, "plugin"),
                if host.problems.is_empty() {
                    ""
                } else {
                    " and the host"
                },
                if count == 1 && host.problems.is_empty() {
                    "s"
                } else {
                    ""
                }
            ))
        });
        output.text(&text)?;
    }
    if report.healthy {
        Ok(())
    } else {
        Err(Failure::Operation(String::new()))
    }
}
