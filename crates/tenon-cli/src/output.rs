//! How commands print: stable JSON for programs, or tables, colour and
//! progress spinners for people.
//!
//! Colour is used only when the stream is a terminal and `NO_COLOR` is not
//! set; progress spinners only in human mode and only on a terminal's stderr.
//! JSON mode prints exactly one document on stdout (streams print one object
//! per line) and nothing decorative anywhere.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use comfy_table::{
    Attribute, Cell, CellAlignment, Color, ContentArrangement, Table, TableComponent,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use owo_colors::OwoColorize;
use serde::Serialize;
use tenon_engine::{HealthStatus, PluginState};

use crate::exit::{CommandResult, Failure};

/// Output format of commands that print data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Format {
    /// Text for people: tables, colour, progress.
    #[default]
    Human,
    /// Stable JSON for programs (documented in docs/cli.md).
    Json,
}

/// Whether colour suits a stream: a terminal, and `NO_COLOR` unset or
/// empty (<https://no-color.org>), and a terminal that is not `dumb`.
fn colour_for(is_terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
    is_terminal && !no_color && !dumb
}

/// Whether `error:` and `warning:` on stderr may be coloured.
pub(crate) fn stderr_colour() -> bool {
    colour_for(std::io::stderr().is_terminal())
}

/// Prints `warning: …` on stderr (once per command: a warning repeated
/// by the engine or a plugin is shown the first time only).
pub(crate) fn warn(message: &str) {
    notice_line("warning", message);
}

/// Prints `LABEL: message` on stderr, coloured by its label, above the
/// spinner if one is drawn, unless the same line was printed already.
pub(crate) fn notice_line(label: &str, message: &str) {
    let line = format!("{label}: {message}");
    {
        let mut seen = SEEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !seen.insert(line.clone()) {
            return;
        }
    }
    let painted = if stderr_colour() {
        let head = format!("{label}:");
        let head = match label {
            "error" => head.red().bold().to_string(),
            "warning" => head.yellow().bold().to_string(),
            _ => head.dimmed().to_string(),
        };
        format!("{head} {message}")
    } else {
        line
    };
    above_spinner(|| eprintln!("{painted}"));
}

/// The lines [`notice_line`] printed, so that none is printed twice.
static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// The spinner drawn now, if any: lines on stderr are printed above it.
static DRAWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `print` with the spinner (if one is drawn) taken off the screen.
/// The lock on [`DRAWN`] is held while printing, so that no spinner starts
/// drawing in the middle of a line.
fn above_spinner(print: impl FnOnce()) {
    let drawn = DRAWN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match drawn.as_ref() {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

/// How long a step runs before its spinner shows: fast commands never
/// flash one.
const SPINNER_DELAY: Duration = Duration::from_millis(400);

/// Where and how a command prints.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    /// The format asked for.
    pub(crate) format: Format,
    colour: bool,
    progress: bool,
}

impl Output {
    /// An output for `format` on this process's streams.
    pub(crate) fn new(format: Format) -> Self {
        Self {
            format,
            colour: colour_for(std::io::stdout().is_terminal()),
            progress: format == Format::Human && std::io::stderr().is_terminal(),
        }
    }

    /// Whether JSON was asked for.
    pub(crate) fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// Prints `value` as one pretty-printed JSON document.
    pub(crate) fn json<T: Serialize + ?Sized>(&self, value: &T) -> CommandResult {
        let text = serde_json::to_string_pretty(value).map_err(|e| Failure::Usage(e.into()))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")?;
        out.flush()?;
        Ok(())
    }

    /// Prints `value` as one line of JSON (for streams).
    pub(crate) fn json_line<T: Serialize + ?Sized>(&self, value: &T) -> CommandResult {
        let text = serde_json::to_string(value).map_err(|e| Failure::Usage(e.into()))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")?;
        out.flush()?;
        Ok(())
    }

    /// Prints human text (with a final newline added when missing).
    pub(crate) fn text(&self, text: &str) -> CommandResult {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    }

    /// A table with these column headers, styled for this output.
    pub(crate) fn table<const N: usize>(&self, headers: [&str; N]) -> Table {
        let mut table = Table::new();
        table.load_preset(comfy_table::presets::NOTHING);
        for component in [
            TableComponent::LeftBorder,
            TableComponent::RightBorder,
            TableComponent::VerticalLines,
        ] {
            table.remove_style(component);
        }
        table.set_content_arrangement(ContentArrangement::Disabled);
        if self.colour {
            table.enforce_styling();
        } else {
            table.force_no_tty();
        }
        table.set_header(
            headers
                .iter()
                .map(|h| self.cell(h).add_attribute(Attribute::Bold)),
        );
        table
    }

    /// Renders a table without the border spaces and trailing blanks.
    pub(crate) fn render(&self, table: &mut Table) -> String {
        let count = table.column_count();
        for (i, column) in table.column_iter_mut().enumerate() {
            column.set_padding((0, if i + 1 == count { 0 } else { 2 }));
        }
        let mut out = String::new();
        for line in table.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// A plain cell.
    pub(crate) fn cell(&self, text: impl ToString) -> Cell {
        Cell::new(text.to_string())
    }

    /// A right-aligned cell (numbers).
    pub(crate) fn number(&self, text: impl ToString) -> Cell {
        Cell::new(text.to_string()).set_alignment(CellAlignment::Right)
    }

    /// A cell for a lifecycle state, coloured by how well it is going.
    pub(crate) fn state_cell(&self, state: PluginState) -> Cell {
        let cell = Cell::new(state.as_str());
        match state_colour(state) {
            Some(colour) => cell.fg(colour),
            None => cell,
        }
    }

    /// A cell coloured green when `good`, red otherwise.
    pub(crate) fn verdict_cell(&self, text: impl ToString, good: bool) -> Cell {
        Cell::new(text.to_string()).fg(if good { Color::Green } else { Color::Red })
    }

    /// A cell for a health status: green when healthy, yellow for a
    /// warning, red when critical, plain when unknown.
    pub(crate) fn health_cell(&self, status: HealthStatus) -> Cell {
        let cell = Cell::new(status.as_str());
        match status {
            HealthStatus::Healthy => cell.fg(Color::Green),
            HealthStatus::Warning => cell.fg(Color::Yellow),
            HealthStatus::Critical => cell.fg(Color::Red),
            _ => cell,
        }
    }

    /// `text` styled by `style` when colour is on, else as it is.
    fn paint(&self, text: &str, style: impl FnOnce(&str) -> String) -> String {
        if self.colour {
            style(text)
        } else {
            text.to_owned()
        }
    }

    /// `text` in green (success), when colour is on.
    pub(crate) fn good(&self, text: &str) -> String {
        self.paint(text, |t| t.green().to_string())
    }

    /// `text` in red (failure), when colour is on.
    pub(crate) fn bad(&self, text: &str) -> String {
        self.paint(text, |t| t.red().to_string())
    }

    /// `text` in yellow (attention), when colour is on.
    pub(crate) fn notice(&self, text: &str) -> String {
        self.paint(text, |t| t.yellow().to_string())
    }

    /// `text` in bold, when colour is on.
    pub(crate) fn bold(&self, text: &str) -> String {
        self.paint(text, |t| t.bold().to_string())
    }

    /// `text` dimmed, when colour is on.
    pub(crate) fn dim(&self, text: &str) -> String {
        self.paint(text, |t| t.dimmed().to_string())
    }

    /// A state's name, coloured like [`Output::state_cell`].
    pub(crate) fn state(&self, state: PluginState) -> String {
        match state_colour(state) {
            Some(Color::Green) => self.good(state.as_str()),
            Some(Color::Red) => self.bad(state.as_str()),
            Some(_) => self.notice(state.as_str()),
            None => state.as_str().to_owned(),
        }
    }

    /// A spinner on stderr saying what a long step is doing; invisible in
    /// JSON mode and when stderr is not a terminal, and shown only once the
    /// step has taken longer than [`SPINNER_DELAY`]. It clears itself when
    /// dropped.
    pub(crate) fn spinner(&self, message: &str) -> Spinner {
        if !self.progress {
            return Spinner(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}") {
            bar.set_style(style.tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "));
        }
        bar.set_message(message.to_owned());
        let done = Arc::new(Mutex::new(false));
        let (later, flag) = (bar.clone(), done.clone());
        std::thread::spawn(move || {
            std::thread::sleep(SPINNER_DELAY);
            let done = flag
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !*done {
                // Known as drawn before its first frame: a line printed
                // from now on is printed above it.
                let mut drawn = DRAWN
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                later.set_draw_target(ProgressDrawTarget::stderr());
                later.enable_steady_tick(Duration::from_millis(100));
                *drawn = Some(later.clone());
            }
        });
        Spinner(Some((bar, done)))
    }
}

/// Green for running, red for failed, yellow for waiting on the operator.
fn state_colour(state: PluginState) -> Option<Color> {
    match state {
        PluginState::Active => Some(Color::Green),
        PluginState::Error => Some(Color::Red),
        PluginState::PendingConfig | PluginState::Disabled => Some(Color::Yellow),
        _ => None,
    }
}

/// A running spinner (see [`Output::spinner`]).
pub(crate) struct Spinner(Option<(ProgressBar, Arc<Mutex<bool>>)>);

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some((bar, done)) = &self.0 {
            let mut done = done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *done = true;
            DRAWN
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            bar.finish_and_clear();
        }
    }
}

/// A byte count for people: `512 B`, `1.5 KiB`, `3.0 MiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A plugin's resource figures in one line: storage always, the runtime's
/// figures where they were measured (the plugin runs in this process).
pub(crate) fn resources(usage: &tenon_engine::ResourceUsage) -> String {
    let storage = &usage.storage;
    let mut text = format!(
        "KV {} in {} key{}; data directory {}",
        bytes(storage.kv_bytes),
        storage.kv_keys,
        if storage.kv_keys == 1 { "" } else { "s" },
        bytes(storage.data_bytes)
    );
    if !usage.live {
        text.push_str("; memory, CPU and network are measured where the plugin runs (not here)");
        return text;
    }
    let cpu = &usage.cpu;
    let net = &usage.network_io;
    text.push_str(&format!(
        "; memory {} (peak {} per instance); CPU {:.1} ms{}; instances {} ({} pooled); HTTP {} request{}, {} out, {} in",
        bytes(usage.memory.current_bytes),
        bytes(usage.memory.peak_bytes),
        cpu.total_ms,
        if cpu.fuel_consumed > 0 {
            format!(", fuel {}", cpu.fuel_consumed)
        } else {
            String::new()
        },
        usage.instances.live,
        usage.instances.pooled,
        net.requests,
        if net.requests == 1 { "" } else { "s" },
        bytes(net.bytes_out),
        bytes(net.bytes_in)
    ));
    text
}

#[cfg(test)]
mod resource_tests {
    use super::bytes;

    #[test]
    fn byte_counts_read_well() {
        for (n, shown) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (3 << 20, "3.0 MiB"),
            (u64::MAX, "16777216.0 TiB"),
        ] {
            assert_eq!(bytes(n), shown);
        }
    }
}
