//! Log lines on the operator's terminal: the engine's warnings, plugin logs
//! and the runtimes' own logs, in the CLI's one format (`warning: …`),
//! each line once per command, above the spinner.
//!
//! A third-party runtime's log (Extism reports a trapped plugin with a
//! wasm backtrace of over a hundred lines) is summarised to its cause;
//! `-v` or `TENON_LOG=debug` shows it whole.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::output::notice_line;

/// The fields of Tenon's own log lines that say what a line is about,
/// named on the line when its message does not name them.
const NAMING: [&str; 4] = ["hook", "topic", "permission", "function"];

/// The layer printing log events (see the module's documentation).
pub(crate) struct Console {
    /// Whether logs are shown whole (`-v`, `TENON_LOG=debug`).
    pub(crate) verbose: bool,
}

/// An event's message and the fields worth showing.
#[derive(Default)]
struct Fields {
    message: String,
    plugin: Option<String>,
    rest: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.keep(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.keep(field, format!("{value:?}"));
    }
}

impl Fields {
    fn keep(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            "plugin" => self.plugin = Some(value),
            name => self.rest.push((name, value)),
        }
    }
}

impl<S: Subscriber> Layer<S> for Console {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let label = match *metadata.level() {
            Level::ERROR | Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        let target = metadata.target();
        let own = target.starts_with("tenon");
        let mut text = if own || self.verbose {
            fields.message.clone()
        } else {
            format!(
                "{} ({target}; -v or TENON_LOG=debug shows its whole log)",
                summarize(&fields.message)
            )
        };
        // A runtime's own `plugin` field is its instance id, not the
        // plugin's: only Tenon's own name the plugin.
        if let Some(plugin) = fields.plugin.as_ref().filter(|_| own)
            && !text.contains(plugin.as_str())
        {
            text = format!("{plugin}: {text}");
        }
        // What a line is about is named even when its message leaves it to
        // a field: the hook, topic, permission or function.
        if own {
            for (name, value) in &fields.rest {
                if NAMING.contains(name) && !text.contains(value.as_str()) {
                    text = format!("{text} ({name} `{value}`)");
                }
            }
        }
        if self.verbose && !fields.rest.is_empty() {
            let mut extra = String::new();
            for (name, value) in &fields.rest {
                let _ = write!(
                    extra,
                    "{}{name}={value}",
                    if extra.is_empty() { "" } else { " " }
                );
            }
            text = format!("{text} [{extra}]");
        }
        notice_line(label, &text);
    }
}

/// A runtime's message cut down to what happened and why: its first line
/// without the backtrace, and the "Caused by" lines, numbering removed.
pub(crate) fn summarize(message: &str) -> String {
    let head = message.lines().next().unwrap_or_default();
    let head = head
        .split(" wasm backtrace")
        .next()
        .unwrap_or(head)
        .trim_end_matches([':', ' '])
        .trim_end_matches(" at")
        .trim();
    let causes: Vec<&str> = message
        .split_once("Caused by:")
        .map(|(_, after)| {
            after
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(|line| {
                    line.split_once(": ")
                        .filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
                        .map_or(line, |(_, rest)| rest)
                })
                .take_while(|line| !line.starts_with("Stack backtrace"))
                .collect()
        })
        .unwrap_or_default();
    match causes.as_slice() {
        [] => head.to_owned(),
        causes => format!("{head}: {}", causes.join(": ")),
    }
}

#[cfg(test)]
mod tests {
    use super::summarize;

    #[test]
    fn runtime_logs_are_summarised_to_their_cause() {
        let trap = "call to \"handle\" encountered an error: error while executing at wasm backtrace:\n    0:  0x1234 - panicker.wasm!rust_panic\n    1:  0x5678 - panicker.wasm!handle\n  ... 120 more frames\n   99: __libc_start_main\n\nCaused by:\n    wasm trap: wasm `unreachable` instruction executed\n";
        let cases: &[(&str, &str)] = &[
            (
                trap,
                "call to \"handle\" encountered an error: error while executing: wasm trap: wasm `unreachable` instruction executed",
            ),
            ("one line", "one line"),
            (
                "failed\n\nCaused by:\n    0: outer\n    1: inner",
                "failed: outer: inner",
            ),
            ("", ""),
        ];
        for (message, expected) in cases {
            assert_eq!(summarize(message), *expected, "{message}");
        }
    }
}
