//! Reading the registry's event log: `tenon events` (the timeline, or a
//! live tail with `--follow`), `tenon stats` (statistics computed from
//! the stored hook receipts) and `tenon prune-events` (retention).

use std::time::Duration;

use clap::Args;
use serde::Serialize;
use serde_json::Value;
use tenon_engine::{
    Event, EventKind, EventQuery, HostCounters, Permissions, PluginEngine, PluginId, PluginStats,
};
use tenon_registry::{EventCursor, EventOrder};

use super::{short_timestamp, timestamp};
use crate::exit::{CommandResult, Failure};
use crate::output::Output;
use crate::session::{Boot, GlobalArgs, find_plugin};

/// The most events read per registry page.
const PAGE: usize = 1000;

/// `tenon events` arguments.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tenon events -n 50
  tenon events tenon-examples/moderator --kind hook,error
  tenon --format json events --follow")]
pub(crate) struct EventsArgs {
    /// Only events about this plugin.
    id: Option<String>,
    /// Keep printing events as they are recorded, until interrupted (JSON:
    /// one object per line).
    #[arg(long, short = 'f')]
    follow: bool,
    /// How many of the most recent events to show.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 20)]
    limit: usize,
    /// Only events of these kinds (repeat or separate with commas):
    /// installed, state_changed, enabled_changed, version_added,
    /// version_changed, version_removed, config_changed, granted,
    /// grant_revoked, removed, hook, permission_denied, auto_disable, error,
    /// or a host's own kind.
    #[arg(long = "kind", value_name = "KIND", value_delimiter = ',', value_parser = parse_kind)]
    kinds: Vec<EventKind>,
}

/// A kind to filter by: a built-in one, or a host's own, unless it is so
/// close to a built-in one that it is surely a typo (`hok`).
fn parse_kind(text: &str) -> Result<EventKind, String> {
    let kind = EventKind::parse(text.trim()).map_err(|e| e.to_string())?;
    if let EventKind::Custom(name) = &kind {
        let close = tenon_types::similar(name, EventKind::BUILTIN.iter().map(EventKind::as_str));
        if !close.is_empty() {
            return Err(format!(
                "`{name}` is not an event kind{}; the kinds are {}",
                super::did_you_mean(&close),
                EventKind::BUILTIN
                    .iter()
                    .map(EventKind::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(kind)
}

/// One event in JSON.
#[derive(Serialize)]
struct EventJson {
    cursor: String,
    at: String,
    tenant: String,
    plugin: Option<String>,
    version: Option<String>,
    kind: String,
    status: String,
    detail: Value,
}

impl From<&Event> for EventJson {
    fn from(event: &Event) -> Self {
        Self {
            cursor: event.cursor.to_string(),
            at: timestamp(event.at),
            tenant: event.tenant.to_string(),
            plugin: event.plugin.as_ref().map(ToString::to_string),
            version: event.version.as_ref().map(ToString::to_string),
            kind: event.kind.to_string(),
            status: event.status.to_string(),
            detail: event.detail.clone(),
        }
    }
}

/// The plugin `text` names, for filtering events: an installed plugin, or
/// one that is gone but left events behind. Anything else gets the engine's
/// "not installed" with its did-you-mean.
async fn event_plugin(engine: &PluginEngine, text: &str) -> Result<PluginId, Failure> {
    if let Ok(id) = PluginId::new(text) {
        if engine.record(&id).await.is_ok() {
            return Ok(id);
        }
        let query = EventQuery::default().with_plugin(id.clone()).with_limit(1);
        if !engine.events(&query).await?.events.is_empty() {
            return Ok(id);
        }
    }
    Ok(find_plugin(engine, text).await?.id)
}

/// Runs `tenon events`.
pub(crate) async fn events(args: EventsArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    global
        .with_engine(Boot::No, async |engine| {
            run_events(engine, &args, &output).await
        })
        .await
}

async fn run_events(engine: &PluginEngine, args: &EventsArgs, output: &Output) -> CommandResult {
    if args.limit == 0 && !args.follow {
        return Err(Failure::usage("--limit must be at least 1"));
    }
    let mut query = EventQuery::default().with_kinds(&args.kinds);
    if let Some(text) = &args.id {
        query = query.with_plugin(event_plugin(engine, text).await?);
    }
    let mut recent = if args.limit == 0 {
        Vec::new()
    } else {
        engine
            .events(&query.clone().with_limit(args.limit.min(PAGE)))
            .await?
            .events
    };
    recent.reverse();
    if !args.follow {
        if output.is_json() {
            let events: Vec<EventJson> = recent.iter().map(EventJson::from).collect();
            return output.json(&serde_json::json!({ "events": events }));
        }
        if recent.is_empty() {
            return output.text("no events");
        }
        let mut table = output.table(["AT", "PLUGIN", "KIND", "STATUS", "WHAT"]);
        for event in &recent {
            table.add_row(vec![
                output.cell(short_timestamp(event.at)),
                output.cell(plugin_of(event)),
                output.cell(&event.kind),
                output.verdict_cell(event.status, good_status(event)),
                output.cell(summary(event)),
            ]);
        }
        return output.text(&output.render(&mut table));
    }
    let last: Option<EventCursor> = match recent.last() {
        Some(event) => Some(event.cursor),
        None => engine
            .store()
            .latest_event_cursor(engine.tenant())
            .await
            .map_err(tenon_engine::EngineError::from)?,
    };
    for event in &recent {
        print_line(event, output)?;
    }
    super::follow(
        last,
        PAGE,
        async |last| {
            Ok(engine
                .events(
                    &query
                        .clone()
                        .with_order(EventOrder::OldestFirst)
                        .with_after(last)
                        .with_limit(PAGE),
                )
                .await?
                .events)
        },
        |event| Some(event.cursor),
        |event| print_line(event, output),
    )
    .await
}

/// `tenon prune-events` arguments.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tenon prune-events --older-than 30d
  tenon prune-events --older-than 7d --keep 100000")]
pub(crate) struct PruneArgs {
    /// Delete the events older than this (`90m`, `12h`, `30d`).
    #[arg(long, value_name = "AGE", value_parser = crate::session::parse_duration, required_unless_present = "keep")]
    older_than: Option<Duration>,
    /// Keep at most this many events, the newest.
    #[arg(long, value_name = "N")]
    keep: Option<u64>,
}

/// Runs `tenon prune-events`: applies a retention to the tenant's event
/// log once.
pub(crate) async fn prune(args: PruneArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let retention = tenon_engine::EventRetention {
        max_age: args.older_than,
        max_events: args.keep,
        ..Default::default()
    };
    let report = global
        .with_engine(Boot::No, async |engine| {
            Ok(engine.prune_events(&retention).await?)
        })
        .await?;
    if output.is_json() {
        return output.json(&serde_json::json!({
            "tenant": global.tenant,
            "by_age": report.by_age,
            "by_count": report.by_count,
        }));
    }
    let total = report.by_age + report.by_count;
    output.text(&format!(
        "{} {total} {} of tenant {}: {} by age, {} by count",
        output.good("Deleted"),
        if total == 1 { "event" } else { "events" },
        global.tenant,
        report.by_age,
        report.by_count,
    ))
}

/// One event as a line: JSON, or the table's columns.
fn print_line(event: &Event, output: &Output) -> CommandResult {
    if output.is_json() {
        return output.json_line(&EventJson::from(event));
    }
    let status = if good_status(event) {
        output.good(event.status.as_str())
    } else {
        output.bad(event.status.as_str())
    };
    output.text(&format!(
        "{}  {}  {}  {status}  {}",
        output.dim(&short_timestamp(event.at)),
        plugin_of(event),
        event.kind,
        summary(event)
    ))
}

fn plugin_of(event: &Event) -> String {
    event
        .plugin
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "-".to_owned())
}

fn good_status(event: &Event) -> bool {
    matches!(event.status.as_str(), "ok" | "blocked" | "skipped")
}

fn text_of(detail: &Value, key: &str) -> Option<String> {
    match detail.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// What an event says, in a few words.
fn summary(event: &Event) -> String {
    let d = &event.detail;
    let text = match event.kind {
        EventKind::StateChanged => format!(
            "{} → {}{}",
            text_of(d, "from").unwrap_or_default(),
            text_of(d, "to").unwrap_or_default(),
            text_of(d, "reason")
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        EventKind::Hook => {
            let duration = d
                .get("duration_us")
                .and_then(Value::as_u64)
                .map(|us| format!(" in {:.2} ms", us as f64 / 1000.0))
                .unwrap_or_default();
            let mut text = format!(
                "{} {}{duration}",
                text_of(d, "hook").unwrap_or_default(),
                text_of(d, "status").unwrap_or_default()
            );
            if let Some(fields) = d.get("changed_fields").and_then(Value::as_array) {
                let fields: Vec<String> = fields
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect();
                text.push_str(&format!(", changed {}", fields.join(", ")));
            }
            if let Some(error) = text_of(d, "error") {
                text.push_str(&format!(": {error}"));
            }
            text
        }
        EventKind::EnabledChanged => {
            let enabled = d
                .get("enabled")
                .and_then(Value::as_bool)
                .unwrap_or_default();
            format!(
                "{}{}",
                if enabled { "enabled" } else { "disabled" },
                text_of(d, "reason")
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )
        }
        EventKind::Installed => match d.get("source") {
            Some(source) => format!(
                "from {} {}",
                text_of(source, "kind").unwrap_or_default(),
                text_of(source, "reference").unwrap_or_default()
            ),
            None => String::new(),
        },
        EventKind::ConfigChanged => {
            let keys = |name: &str| -> Vec<String> {
                d.get(name)
                    .and_then(Value::as_array)
                    .map(|keys| {
                        keys.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let secret = keys("secret");
            let mut parts = Vec::new();
            let set: Vec<String> = keys("set")
                .into_iter()
                .map(|k| {
                    if secret.contains(&k) {
                        format!("{k} (secret)")
                    } else {
                        k
                    }
                })
                .collect();
            if !set.is_empty() {
                parts.push(format!("set {}", set.join(", ")));
            }
            let unset = keys("unset");
            if !unset.is_empty() {
                parts.push(format!("unset {}", unset.join(", ")));
            }
            parts.join("; ")
        }
        EventKind::Granted => {
            let described = d
                .get("permissions")
                .cloned()
                .and_then(|p| serde_json::from_value::<Permissions>(p).ok())
                .map(|p| tenon_engine::grants::describe(&p))
                .unwrap_or_default();
            format!(
                "by {}: {}",
                text_of(d, "granted_by").unwrap_or_default(),
                super::list_or_none(&described)
            )
        }
        EventKind::VersionChanged => format!(
            "{} → {}",
            text_of(d, "from").unwrap_or_default(),
            text_of(d, "to").unwrap_or_default()
        ),
        _ => match d {
            Value::Object(map) => map
                .iter()
                .filter(|(key, _)| !matches!(key.as_str(), "row_version" | "plugin" | "tenant"))
                .map(|(key, value)| match value {
                    Value::String(s) => format!("{key}={s}"),
                    other => format!("{key}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
            Value::Null => String::new(),
            other => other.to_string(),
        },
    };
    shorten(&text, 120)
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max - 1).collect();
    short.push('…');
    short
}

/// `tenon stats` arguments.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tenon stats
  tenon stats tenon-examples/moderator")]
pub(crate) struct StatsArgs {
    /// Only this plugin (with a breakdown per hook).
    id: Option<String>,
    /// How many of the most recent stored receipts to count.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    limit: usize,
}

/// What `tenon stats` prints in JSON.
#[derive(Serialize)]
struct StatsJson {
    receipts: usize,
    plugins: Vec<PluginStats>,
    /// This process's own counters (events dropped, cache rejections).
    host: HostCounters,
}

/// Runs `tenon stats`.
pub(crate) async fn stats(args: StatsArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let report = global
        .with_engine(Boot::No, async |engine| compute_stats(engine, &args).await)
        .await?;
    if output.is_json() {
        return output.json(&report);
    }
    let host = host_counters_line(&report.host);
    if report.plugins.is_empty() {
        return output.text(&format!(
            "no hook receipts stored yet: they are recorded when plugins handle hooks (`tenon hooks dispatch`){host}"
        ));
    }
    let mut table = output.table([
        "PLUGIN", "RUNS", "OK", "ERRORS", "TIMEOUTS", "SKIPPED", "AVG ms", "MAX ms", "HEALTH",
    ]);
    for stats in &report.plugins {
        let e = &stats.execution;
        table.add_row(vec![
            output.cell(&stats.plugin),
            output.number(e.count),
            output.number(e.success_count),
            output.number(e.error_count),
            output.number(e.timeout_count),
            output.number(e.skipped_count),
            output.number(format!("{:.2}", e.avg_duration_ms)),
            output.number(format!("{:.2}", e.max_duration_ms)),
            output.health_cell(stats.health.status),
        ]);
    }
    let mut text = format!("from {} stored receipts\n\n", report.receipts);
    text.push_str(&output.render(&mut table));
    if args.id.is_some() {
        for stats in &report.plugins {
            if stats.by_hook.is_empty() {
                continue;
            }
            let mut table = output.table([
                "HOOK", "RUNS", "ERRORS", "TIMEOUTS", "SKIPPED", "AVG ms", "MAX ms",
            ]);
            for (hook, e) in &stats.by_hook {
                table.add_row(vec![
                    output.cell(hook),
                    output.number(e.count),
                    output.number(e.error_count),
                    output.number(e.timeout_count),
                    output.number(e.skipped_count),
                    output.number(format!("{:.2}", e.avg_duration_ms)),
                    output.number(format!("{:.2}", e.max_duration_ms)),
                ]);
            }
            text.push('\n');
            text.push_str(&output.render(&mut table));
            text.push_str(&format!(
                "\nhealth: {} ({})\n",
                stats.health.status, stats.health.reason
            ));
        }
        for stats in &report.plugins {
            text.push_str(&format!(
                "resources of {}: {}\n",
                stats.plugin,
                crate::output::resources(&stats.resources)
            ));
        }
    }
    text.push_str(&host);
    output.text(&text)
}

/// The host counters worth a line (`\nhost: …`): those of things that
/// should not happen, when any is non-zero; nothing otherwise.
fn host_counters_line(counters: &HostCounters) -> String {
    let HostCounters {
        events_dropped,
        events_failed,
        cache_rejections,
        instance_cap_refusals,
        ..
    } = *counters;
    if events_dropped == 0
        && events_failed == 0
        && cache_rejections == 0
        && instance_cap_refusals == 0
    {
        return String::new();
    }
    format!(
        "\nhost: {events_dropped} events dropped, {events_failed} failed to write, \
         {cache_rejections} cached modules refused, {instance_cap_refusals} instances refused \
         at a fairness cap"
    )
}

async fn compute_stats(engine: &PluginEngine, args: &StatsArgs) -> Result<StatsJson, Failure> {
    let plugin = match &args.id {
        Some(text) => Some(event_plugin(engine, text).await?),
        None => None,
    };
    let stored = engine.stored_stats(plugin.as_ref(), args.limit).await?;
    Ok(StatsJson {
        receipts: stored.receipts,
        plugins: stored.plugins,
        host: engine.host_counters(),
    })
}
