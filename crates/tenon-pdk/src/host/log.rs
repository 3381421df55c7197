//! Writing to the plugin's log, which the host keeps with the plugin's other
//! records (and bounds: a plugin cannot flood it).
//!
//! Functions take a plain message; the macros of the same names format one:
//!
//! ```
//! use tenon_pdk::host::log;
//!
//! log::info("activated");
//! let count = 3;
//! log::warn!("{count} secrets redacted");
//! log::with_fields(log::Level::Debug, "hook handled", &[("hook", "tool.post_exec")]);
//! ```

use crate::sys;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very fine detail.
    Trace,
    /// Detail for developers.
    Debug,
    /// Normal operation.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    /// The lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Writes a line.
pub fn log(level: Level, message: &str) {
    sys::log(level, message, &[]);
}

/// Writes a line with structured fields.
pub fn with_fields(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    sys::log(level, message, &fields);
}

/// Writes a `trace` line.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Writes a `debug` line.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Writes an `info` line.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Writes a `warn` line.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Writes an `error` line.
pub fn error(message: &str) {
    log(Level::Error, message);
}

#[doc(hidden)]
#[macro_export]
macro_rules! __tenon_log {
    ($level:ident, $($arg:tt)+) => {
        $crate::host::log::log($crate::host::log::Level::$level, &::std::format!($($arg)+))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __tenon_trace {
    ($($arg:tt)+) => { $crate::__tenon_log!(Trace, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __tenon_debug {
    ($($arg:tt)+) => { $crate::__tenon_log!(Debug, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __tenon_info {
    ($($arg:tt)+) => { $crate::__tenon_log!(Info, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __tenon_warn {
    ($($arg:tt)+) => { $crate::__tenon_log!(Warn, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __tenon_error {
    ($($arg:tt)+) => { $crate::__tenon_log!(Error, $($arg)+) };
}

/// Formats and writes a `debug` line: `log::debug!("x = {x}")`.
pub use crate::__tenon_debug as debug;
/// Formats and writes an `error` line: `log::error!("x = {x}")`.
pub use crate::__tenon_error as error;
/// Formats and writes an `info` line: `log::info!("x = {x}")`.
pub use crate::__tenon_info as info;
/// Formats and writes a `trace` line: `log::trace!("x = {x}")`.
pub use crate::__tenon_trace as trace;
/// Formats and writes a `warn` line: `log::warn!("x = {x}")`.
pub use crate::__tenon_warn as warn;
