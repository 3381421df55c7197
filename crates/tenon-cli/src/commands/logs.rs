//! Reading plugins' own log lines kept in the registry: `tenon logs` (the
//! newest lines, or a live tail with `--follow`).

use std::time::Duration;

use clap::Args;
use serde::Serialize;
use tenon_engine::{LogLevel, LogPage, LogQuery, LogRecord, PluginEngine};

use super::{short_timestamp, timestamp};
use crate::exit::{CommandResult, Failure};
use crate::output::Output;
use crate::session::{Boot, GlobalArgs, find_plugin};

/// The most lines read per registry page.
const PAGE: usize = 1000;

/// `tenon logs` arguments.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tenon logs tenon-examples/notifier
  tenon logs --level warn -n 50
  tenon logs tenon-examples/notifier --since 1h --follow")]
pub(crate) struct LogsArgs {
    /// Only this plugin's lines (every plugin's without it).
    id: Option<String>,
    /// Keep printing lines as plugins write them, until interrupted (JSON:
    /// one object per line).
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only lines at this level or above: trace, debug, info, warn, error.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    level: Option<LogLevel>,
    /// Only lines written within this long (`90m`, `12h`, `30d`).
    #[arg(long, value_name = "AGE", value_parser = crate::session::parse_duration)]
    since: Option<Duration>,
    /// How many of the most recent lines to show.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 100)]
    limit: usize,
}

fn parse_level(text: &str) -> Result<LogLevel, String> {
    text.trim()
        .parse()
        .map_err(|e: tenon_engine::RegistryError| e.to_string())
}

/// One line in JSON.
#[derive(Serialize)]
struct LogJson<'a> {
    id: i64,
    at: String,
    plugin: &'a str,
    level: &'a str,
    message: &'a str,
    fields: &'a [(String, String)],
}

impl<'a> From<&'a LogRecord> for LogJson<'a> {
    fn from(log: &'a LogRecord) -> Self {
        Self {
            id: log.id,
            at: timestamp(log.at),
            plugin: log.plugin.as_str(),
            level: log.level.as_str(),
            message: &log.message,
            fields: &log.fields,
        }
    }
}

/// Runs `tenon logs`.
pub(crate) async fn logs(args: LogsArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    global
        .with_engine(Boot::No, async |engine| run(engine, &args, &output).await)
        .await
}

async fn run(engine: &PluginEngine, args: &LogsArgs, output: &Output) -> CommandResult {
    if args.limit == 0 && !args.follow {
        return Err(Failure::usage("--limit must be at least 1"));
    }
    let plugin = match &args.id {
        Some(text) => Some(find_plugin(engine, text).await?.id),
        None => None,
    };
    let since = match args.since {
        Some(age) => Some(
            time::OffsetDateTime::now_utc()
                - time::Duration::try_from(age)
                    .map_err(|_| Failure::usage("--since is too long"))?,
        ),
        None => None,
    };
    let query = LogQuery {
        plugin,
        level: args.level,
        since,
        after: None,
        limit: args.limit.clamp(1, PAGE),
    };
    let page = engine.logs(&query).await?;
    let recent = if args.limit == 0 {
        &[][..]
    } else {
        &page.logs[..]
    };
    if !args.follow {
        if output.is_json() {
            let logs: Vec<LogJson<'_>> = recent.iter().map(LogJson::from).collect();
            return output.json(&serde_json::json!({ "logs": logs, "dropped": page.dropped }));
        }
        if recent.is_empty() && page.dropped == 0 {
            return output.text("no log lines");
        }
        dropped_note(&page, output)?;
        for log in recent {
            print_line(log, output)?;
        }
        return Ok(());
    }
    if !output.is_json() {
        dropped_note(&page, output)?;
    }
    for log in recent {
        print_line(log, output)?;
    }
    // Follow from the newest line there is, shown or not.
    let last = match page.logs.last() {
        Some(log) => Some(log.id),
        None => engine
            .logs(&LogQuery {
                limit: 1,
                ..LogQuery::default()
            })
            .await?
            .logs
            .last()
            .map(|l| l.id),
    };
    super::follow(
        last,
        PAGE,
        async |last: Option<i64>| {
            Ok(engine
                .logs(&LogQuery {
                    after: Some(last.unwrap_or(0)),
                    limit: PAGE,
                    ..query.clone()
                })
                .await?
                .logs)
        },
        |log| Some(log.id),
        |log| print_line(log, output),
    )
    .await
}

/// Says how many older lines were dropped to keep within the bound.
fn dropped_note(page: &LogPage, output: &Output) -> CommandResult {
    if page.dropped == 0 {
        return Ok(());
    }
    output.text(&output.dim(&format!(
        "({} older {} dropped to keep within the per-plugin bound)",
        page.dropped,
        if page.dropped == 1 { "line" } else { "lines" }
    )))
}

/// One line: JSON, or `time plugin LEVEL message key="value"…`.
fn print_line(log: &LogRecord, output: &Output) -> CommandResult {
    if output.is_json() {
        return output.json_line(&LogJson::from(log));
    }
    let level = match log.level {
        LogLevel::Error => output.bad("ERROR"),
        LogLevel::Warn => output.bad("WARN"),
        other => other.as_str().to_ascii_uppercase(),
    };
    let mut line = format!(
        "{}  {}  {level:5}  {}",
        output.dim(&short_timestamp(log.at)),
        log.plugin,
        log.message
    );
    for (key, value) in &log.fields {
        line.push_str(&format!(" {key}={value:?}"));
    }
    output.text(&line)
}
