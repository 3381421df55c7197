//! Moving plugins through their lifecycle: `grant`, `revoke`, `enable`, `disable`,
//! `rollback`, `uninstall`.

use std::io::IsTerminal;

use clap::Args;
use serde::Serialize;
use tenon_engine::{DisableOptions, GrantRequest, PluginState, UninstallOptions, Version};

use super::plugins::print_switch;
use super::timestamp;
use crate::exit::{CommandResult, Failure};
use crate::session::{Boot, GlobalArgs, plugin_id};

/// `tenon grant` arguments.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tenon grant tenon-examples/notifier --all
  tenon grant tenon-examples/notifier secrets 'network: outbound *.example.com'
  tenon grant tenon-examples/counter kv --plugin-version 0.2.0")]
pub(crate) struct GrantArgs {
    /// The plugin id (publisher/name).
    id: String,
    /// The permissions to grant, as `tenon info` lists them: a whole line
    /// (`network: outbound *.example.com`) or its leading words (`secrets`,
    /// `network`, `kv`). Added to what the version holds already. Without
    /// any (and without `--plugin-version`), a terminal asks for each one not
    /// granted yet.
    #[arg(value_name = "PERMISSION", conflicts_with = "all")]
    permissions: Vec<String>,
    /// Grant everything the version declares (for scripts).
    #[arg(long)]
    all: bool,
    /// Grant what this installed version declares (default: the current
    /// version).
    #[arg(long, value_name = "V")]
    plugin_version: Option<Version>,
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

/// Runs `tenon grant`: grants the permissions named, everything declared
/// (`--all`), or those an operator at a terminal accepts one by one.
pub(crate) async fn grant(args: GrantArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !args.all && args.permissions.is_empty() && (!interactive || args.plugin_version.is_some()) {
        return Err(Failure::usage(format!(
            "name the permissions to grant (`tenon info {id}` lists them), for example `tenon grant {id} secrets`, or grant everything with `tenon grant {id} --all`",
            id = args.id
        )));
    }
    let grant = global
        .with_engine(Boot::No, async |engine| {
            let id = plugin_id(engine, &args.id).await?;
            if args.all {
                let request = GrantRequest {
                    version: args.plugin_version.clone(),
                    permissions: None,
                    granted_by: args.granted_by.clone(),
                };
                return Ok(Ok(engine.grant(&id, request).await?));
            }
            let names = if args.permissions.is_empty() {
                let report = engine.permissions(&id).await?;
                if report.missing.is_empty() {
                    return Ok(Err((id, report.declared)));
                }
                ask_each(&report.missing)?
            } else {
                args.permissions.clone()
            };
            Ok(Ok(engine
                .grant_named(&id, args.plugin_version.as_ref(), &names, &args.granted_by)
                .await?))
        })
        .await?;
    let grant = match grant {
        Ok(grant) => grant,
        // Asked with nothing left to grant: succeeds and changes nothing.
        Err((id, declared)) if output.is_json() => {
            return output.json(&serde_json::json!({
                "id": id.as_str(),
                "permissions": declared,
                "already_granted": true,
            }));
        }
        Err((id, _)) => {
            return output.text(&format!(
                "{} holds every permission it declares already: nothing to do",
                output.bold(id.as_str())
            ));
        }
    };
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
        text.push_str("  it holds no permissions\n");
    }
    for permission in &json.permissions {
        text.push_str(&format!("  {permission}\n"));
    }
    output.text(&text)
}

/// Asks, on the terminal, about each permission not granted yet; the ones
/// accepted.
fn ask_each(missing: &[String]) -> Result<Vec<String>, Failure> {
    let mut accepted = Vec::new();
    for permission in missing {
        eprint!("grant {permission}? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if matches!(answer.trim(), "y" | "Y" | "yes") {
            accepted.push(permission.clone());
        }
    }
    if accepted.is_empty() {
        return Err(Failure::Operation(
            "nothing granted: every permission was declined".to_owned(),
        ));
    }
    Ok(accepted)
}

/// `tenon revoke` arguments.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tenon revoke tenon-examples/notifier 'network: private addresses'
  tenon revoke tenon-examples/notifier --all")]
pub(crate) struct RevokeArgs {
    /// The plugin id (publisher/name).
    id: String,
    /// The permissions to take back, named as for `tenon grant`.
    #[arg(
        value_name = "PERMISSION",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    permissions: Vec<String>,
    /// Take back every permission it was granted.
    #[arg(long)]
    all: bool,
}

/// What `tenon revoke` prints in JSON.
#[derive(Serialize)]
struct RevokeJson {
    id: String,
    revoked: Vec<String>,
    remaining: Vec<String>,
    stopped: bool,
}

/// Runs `tenon revoke`: the permissions go from every version's grant; a
/// running plugin that declares one of them is stopped and disabled.
pub(crate) async fn revoke(args: RevokeArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let report = global
        .with_engine(Boot::No, async |engine| {
            let id = plugin_id(engine, &args.id).await?;
            Ok(engine.revoke(&id, &args.permissions).await?)
        })
        .await?;
    let json = RevokeJson {
        id: report.id.to_string(),
        revoked: report.revoked,
        remaining: report.remaining,
        stopped: report.stopped,
    };
    if output.is_json() {
        return output.json(&json);
    }
    if json.revoked.is_empty() {
        return output.text(&format!(
            "{} holds no grant: nothing to revoke",
            output.bold(&json.id)
        ));
    }
    let mut text = format!("{} {}\n", output.good("Revoked"), output.bold(&json.id));
    for permission in &json.revoked {
        text.push_str(&format!("  {permission}\n"));
    }
    if json.stopped {
        text.push_str(&format!(
            "  {} it declares what it no longer holds; grant it again with `tenon grant {}`, then `tenon enable {}`\n",
            output.notice("stopped and disabled:"),
            json.id,
            json.id
        ));
    }
    output.text(&text)
}

/// `tenon enable` arguments.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tenon enable tenon-examples/moderator")]
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
    already_enabled: bool,
}

/// Runs `tenon enable`: starts the plugin (its dependencies first) to
/// check it comes up, and records it enabled. Enabling an active plugin
/// succeeds and changes nothing.
pub(crate) async fn enable(args: EnableArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let (record, already) = global
        .with_engine(Boot::No, async |engine| {
            let id = plugin_id(engine, &args.id).await?;
            let record = engine.record(&id).await?;
            if record.state == PluginState::Active && record.enabled {
                return Ok((record, true));
            }
            let _spinner = output.spinner(&format!("starting {id}"));
            Ok((engine.enable(&id).await?, false))
        })
        .await?;
    if output.is_json() {
        return output.json(&EnableJson {
            id: record.id.to_string(),
            version: record.version.to_string(),
            state: record.state.as_str(),
            enabled: record.enabled,
            already_enabled: already,
        });
    }
    if already {
        return output.text(&format!(
            "{} {} is already active: nothing to do",
            output.bold(record.id.as_str()),
            record.version
        ));
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
#[command(after_help = "Examples:
  tenon disable tenon-examples/moderator
  tenon disable tenon-examples/core --cascade     # and the active plugins needing it")]
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
            let record = engine.record(&id).await?;
            // Not enabled and not running: there is nothing to stop.
            if !record.enabled
                && matches!(
                    record.state,
                    PluginState::Disabled
                        | PluginState::Installed
                        | PluginState::PendingConfig
                        | PluginState::Resolved
                )
            {
                return Ok(Err((id, record.state)));
            }
            let options = DisableOptions {
                cascade: args.cascade,
            };
            Ok(Ok(engine.disable(&id, options).await?))
        })
        .await?;
    let disabled: Vec<String> = match disabled {
        Ok(disabled) => disabled.iter().map(ToString::to_string).collect(),
        // Disabling a plugin that is not enabled succeeds and changes
        // nothing.
        Err((id, _)) if output.is_json() => {
            return output
                .json(&serde_json::json!({ "disabled": [], "already_disabled": [id.as_str()] }));
        }
        Err((id, PluginState::Disabled)) => {
            return output.text(&format!(
                "{} is already disabled: nothing to do",
                output.bold(id.as_str())
            ));
        }
        Err((id, state)) => {
            return output.text(&format!(
                "{} is not enabled (it is {}): nothing to do",
                output.bold(id.as_str()),
                output.state(state)
            ));
        }
    };
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
#[command(after_help = "Examples:
  tenon rollback tenon-examples/counter
  tenon rollback tenon-examples/counter --to 0.1.0")]
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
#[command(after_help = "Examples:
  tenon disable tenon-examples/moderator && tenon uninstall tenon-examples/moderator
  tenon uninstall tenon-examples/moderator --purge-data")]
pub(crate) struct UninstallArgs {
    /// The plugin id (publisher/name).
    id: String,
    /// Also delete its config, KV data, grants, events and data files
    /// (otherwise they are kept, and a reinstall signed by its publisher's
    /// key finds them).
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
        "its config, KV data, grants and events are kept for a reinstall signed by its publisher's key (--purge-data deletes them)"
            .to_owned()
    };
    output.text(&format!(
        "{} {}: {detail}",
        output.good("Uninstalled"),
        output.bold(&json.id)
    ))
}
