//! One module per top-level command (or group of related commands).

pub(crate) mod author;
pub(crate) mod catalog;
pub(crate) mod config;
pub(crate) mod dev;
pub(crate) mod events;
pub(crate) mod hooks;
pub(crate) mod lifecycle;
pub(crate) mod logs;
pub(crate) mod manifest;
pub(crate) mod market;
pub(crate) mod plugins;
pub(crate) mod resolve;
pub(crate) mod serve;
pub(crate) mod trust;

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::exit::{CommandResult, Failure};

/// How often `--follow` looks for new records.
const FOLLOW_POLL: Duration = Duration::from_millis(300);

/// The live tail of `--follow`, until interrupted: every [`FOLLOW_POLL`],
/// reads with `read_after` the records after `last` (oldest first, at most
/// `page` at a time, again while pages come back full), prints each and
/// moves `last` to it with `cursor`.
pub(crate) async fn follow<T, C: Copy>(
    mut last: C,
    page: usize,
    mut read_after: impl AsyncFnMut(C) -> Result<Vec<T>, Failure>,
    cursor: impl Fn(&T) -> C,
    mut print: impl FnMut(&T) -> CommandResult,
) -> CommandResult {
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            () = tokio::time::sleep(FOLLOW_POLL) => {}
        }
        loop {
            let records = read_after(last).await?;
            for record in &records {
                print(record)?;
                last = cursor(record);
            }
            if records.len() < page {
                break;
            }
        }
    }
}

/// A timestamp as RFC 3339 text (UTC), as every JSON output shows it.
pub(crate) fn timestamp(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// A shorter timestamp for tables, with its time zone: `2026-11-22
/// 23:35:02 UTC`.
pub(crate) fn short_timestamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Why a plugin last failed, in JSON.
#[derive(Debug, Serialize)]
pub(crate) struct LastErrorJson {
    /// A stable cause (`load_failed`, `crash_loop`, `config` …).
    pub(crate) code: String,
    /// The message.
    pub(crate) message: String,
}

impl From<&tenon_registry::LastError> for LastErrorJson {
    fn from(error: &tenon_registry::LastError) -> Self {
        Self {
            code: error.code.clone(),
            message: error.message.clone(),
        }
    }
}

/// `n thing` or `n things`.
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Items joined with `, `, or `none`.
pub(crate) fn list_or_none<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// ` (did you mean `x`?)`, ` (did you mean one of x, y?)`, or nothing, for
/// the close names [`tenon_types::similar`] found.
pub(crate) fn did_you_mean(close: &[String]) -> String {
    match close {
        [] => String::new(),
        [one] => format!(" (did you mean `{one}`?)"),
        many => format!(" (did you mean one of {}?)", many.join(", ")),
    }
}
