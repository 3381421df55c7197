//! Plugins' own log lines, kept per plugin: at most a bound of them for
//! each plugin, the oldest dropped first and the drop counted, read back by
//! plugin, level and time.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use tenon_manifest::PluginId;
use time::OffsetDateTime;

use crate::error::RegistryError;
use crate::tenant::TenantId;

/// How much a log line matters, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Finest detail.
    Trace,
    /// Detail for debugging.
    Debug,
    /// What happened.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

impl LogLevel {
    /// Every level, least first.
    pub const ALL: [Self; 5] = [
        Self::Trace,
        Self::Debug,
        Self::Info,
        Self::Warn,
        Self::Error,
    ];

    /// Its name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }

    /// Its rank as stored (0 for trace … 4 for error).
    pub(crate) const fn rank(self) -> i64 {
        self as i64
    }

    /// The level of a stored rank.
    pub(crate) fn from_rank(rank: i64) -> Result<Self, RegistryError> {
        usize::try_from(rank)
            .ok()
            .and_then(|r| Self::ALL.get(r).copied())
            .ok_or_else(|| RegistryError::decode("a log level", format!("unknown rank {rank}")))
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogLevel {
    type Err = RegistryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                RegistryError::invalid(
                    "log level",
                    text,
                    "the levels are trace, debug, info, warn and error",
                )
            })
    }
}

/// A log line to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLog {
    /// The tenant of the plugin that wrote it.
    pub tenant: TenantId,
    /// The plugin that wrote it.
    pub plugin: PluginId,
    /// Its level.
    pub level: LogLevel,
    /// Its message.
    pub message: String,
    /// Its fields, in the plugin's order.
    pub fields: Vec<(String, String)>,
    /// When it was written.
    pub at: OffsetDateTime,
}

/// A kept log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Its position: later lines have larger ids, across the tenant's
    /// plugins (what `--follow` reads after).
    pub id: i64,
    /// The tenant of the plugin that wrote it.
    pub tenant: TenantId,
    /// The plugin that wrote it.
    pub plugin: PluginId,
    /// Its level.
    pub level: LogLevel,
    /// Its message.
    pub message: String,
    /// Its fields, in the plugin's order.
    pub fields: Vec<(String, String)>,
    /// When it was written.
    pub at: OffsetDateTime,
}

/// Which log lines to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// Only this plugin's.
    pub plugin: Option<PluginId>,
    /// Only lines at this level or above.
    pub level: Option<LogLevel>,
    /// Only lines written at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only lines after this id, the oldest first; without it, the newest
    /// `limit` lines (still returned oldest first).
    pub after: Option<i64>,
    /// The most lines returned.
    pub limit: usize,
}

impl Default for LogQuery {
    fn default() -> Self {
        Self {
            plugin: None,
            level: None,
            since: None,
            after: None,
            limit: 100,
        }
    }
}

impl LogQuery {
    pub(crate) fn checked_limit(&self) -> Result<usize, RegistryError> {
        crate::page::check_limit(self.limit, "log page size", "log line")
    }

    /// Whether the memory backend returns this line.
    #[cfg_attr(not(feature = "memory"), allow(dead_code))]
    pub(crate) fn matches(&self, log: &LogRecord) -> bool {
        self.plugin.as_ref().is_none_or(|p| &log.plugin == p)
            && self.level.is_none_or(|level| log.level >= level)
            && self.since.is_none_or(|since| log.at >= since)
            && self.after.is_none_or(|after| log.id > after)
    }
}

/// Log lines read, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    /// The lines.
    pub logs: Vec<LogRecord>,
    /// How many lines of the plugin asked for (or of every plugin of the
    /// tenant) were dropped, the oldest first, to keep within the bound.
    pub dropped: u64,
}
