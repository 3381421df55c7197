//! Moving plugins through their lifecycle: `grant`, `enable`, `disable`,
//! `rollback`, `uninstall`.

use clap::Args;
use serde::Serialize;
use tenon_engine::{DisableOptions, GrantRequest, UninstallOptions, Version};

use super::plugins::print_switch;
use super::timestamp;
use crate::exit::CommandResult;
use crate::session::{Boot, GlobalArgs, plugin_id};

/// `tenon grant` arguments.
#[derive(Debug, Args)]
pub(crate) struct GrantArgs {
    /// The plugin id (publisher/name).
    id: String,
    /// Grant what this installed version declares (default: the current
    /// version).
    #[arg(long, value_name = "V")]
    version: Option<Version>,
    /// Who grants, as recorded with the grant.
    #[arg(long, value_name = "NAME", default_value = "operator")]
    granted_by: String,
}

/// What `tenon grant` prints in JSON.
#[derive(Serialize)]
struct GrantJson {
    id: String,
    version: String,
    permissions: Vec<String>,
    granted_by: String,
    granted_at: String,
}

/// Runs `tenon grant`: grants everything the version declares.
pub(crate) async fn grant(args: GrantArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let grant = global
        .with_engine(Boot::No, async |engine| {
            let id = plugin_id(engine, &args.id).await?;
            let request = GrantRequest {
                version: args.version.clone(),
                permissions: None,
                granted_by: args.granted_by.clone(),
            };
            Ok(engine.grant(&id, request).await?)
        })
        .await?;
    let json = GrantJson {
        id: grant.plugin.to_string(),
        version: grant.version.to_string(),
        permissions: tenon_engine::grants::describe(&grant.permissions),
        granted_by: grant.granted_by.clone(),
        granted_at: timestamp(grant.granted_at),
    };
    if output.is_json() {
        return output.json(&json);
    }
    let mut text = format!(
        "{} {} {}\n",
        output.good("Granted"),
        output.bold(&json.id),
        json.version
    );
    if json.permissions.is_empty() {
        text.push_str("  it declares no permissions\n");
    }
    for permission in &json.permissions {
        text.push_str(&format!("  {permission}\n"));
    }
    output.text(&text)
}

/// `tenon enable` arguments.
#[derive(Debug, Args)]
pub(crate) struct EnableArgs {
    /// The plugin id (publisher/name).
    id: String,
}

/// What `tenon enable` prints in JSON.
#[derive(Serialize)]
struct EnableJson {
    id: String,
    version: String,
    state: &'static str,
    enabled: bool,
}

/// Runs `tenon enable`: starts the plugin (its dependencies first) to
/// check it comes up, and records it enabled.
pub(crate) async fn enable(args: EnableArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let record = global
        .with_engine(Boot::No, async |engine| {
            let id = plugin_id(engine, &args.id).await?;
            let _spinner = output.spinner(&format!("starting {id}"));
            Ok(engine.enable(&id).await?)
        })
        .await?;
    if output.is_json() {
        return output.json(&EnableJson {
            id: record.id.to_string(),
            version: record.version.to_string(),
            state: record.state.as_str(),
            enabled: record.enabled,
        });
    }
    output.text(&format!(
        "{} {} {} ({})",
        output.good("Enabled"),
        output.bold(record.id.as_str()),
        record.version,
        output.state(record.state)
    ))
}

/// `tenon disable` arguments.
#[derive(Debug, Args)]
pub(crate) struct DisableArgs {
    /// The plugin id (publisher/name).
    id: String,
    /// Also disable the active plugins that depend on it (otherwise they
    /// make the disable fail).
    #[arg(long)]
    cascade: bool,
}

/// Runs `tenon disable`.
pub(crate) async fn disable(args: DisableArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let disabled = global
        .with_engine(Boot::No, async |engine| {
            let id = plugin_id(engine, &args.id).await?;
            let options = DisableOptions {
                cascade: args.cascade,
            };
            Ok(engine.disable(&id, options).await?)
        })
        .await?;
    let disabled: Vec<String> = disabled.iter().map(ToString::to_string).collect();
    if output.is_json() {
        return output.json(&serde_json::json!({ "disabled": disabled }));
    }
    output.text(&format!(
        "{} {}",
        output.good("Disabled"),
        output.bold(&disabled.join(", "))
    ))
}

/// `tenon rollback` arguments.
#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// The plugin id (publisher/name).
    id: String,
    /// The installed version to go back to (default: the newest below the
    /// current one).
    #[arg(long, value_name = "V")]
    to: Option<Version>,
}

/// Runs `tenon rollback`.
pub(crate) async fn rollback(args: RollbackArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let report = global
        .with_engine(Boot::No, async |engine| {
            let id = plugin_id(engine, &args.id).await?;
            let _spinner = output.spinner(&format!("rolling back {id}"));
            Ok(engine.rollback(&id, args.to.as_ref()).await?)
        })
        .await?;
    print_switch(&report, "Rolled back", &output)
}

/// `tenon uninstall` arguments.
#[derive(Debug, Args)]
pub(crate) struct UninstallArgs {
    /// The plugin id (publisher/name).
    id: String,
    /// Also delete its config, KV data, grants, events and data files
    /// (otherwise they are kept, and reinstalling finds them).
    #[arg(long)]
    purge_data: bool,
}

/// What `tenon uninstall` prints in JSON.
#[derive(Serialize)]
struct UninstallJson {
    id: String,
    purged: bool,
    deleted: DeletedJson,
}

#[derive(Serialize)]
struct DeletedJson {
    versions: u64,
    artifacts: u64,
    config_keys: u64,
    kv_entries: u64,
    events: u64,
    grants: u64,
}

/// Runs `tenon uninstall`.
pub(crate) async fn uninstall(args: UninstallArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let (id, report) = global
        .with_engine(Boot::No, async |engine| {
            let id = plugin_id(engine, &args.id).await?;
            let options = UninstallOptions {
                purge_data: args.purge_data,
                ..UninstallOptions::default()
            };
            let report = engine.uninstall(&id, options).await?;
            Ok((id, report))
        })
        .await?;
    let json = UninstallJson {
        id: id.to_string(),
        purged: args.purge_data,
        deleted: DeletedJson {
            versions: report.versions,
            artifacts: report.artifacts,
            config_keys: report.config_keys,
            kv_entries: report.kv_entries,
            events: report.events,
            grants: report.grants,
        },
    };
    if output.is_json() {
        return output.json(&json);
    }
    let d = &json.deleted;
    let detail = if json.purged {
        format!(
            "deleted {} versions, {} config keys, {} KV entries, {} grants and {} events",
            d.versions, d.config_keys, d.kv_entries, d.grants, d.events
        )
    } else {
        "its config, KV data, grants and events are kept for a reinstall (--purge-data deletes them)"
            .to_owned()
    };
    output.text(&format!(
        "{} {}: {detail}",
        output.good("Uninstalled"),
        output.bold(&json.id)
    ))
}
