//! Sizes: how much a plugin may hand its host in one piece, and how much of
//! its own words (error and panic messages, log lines) the host keeps.
//!
//! Every runtime checks a size before it copies, decodes or parses what a
//! plugin handed over: the component runtime caps each transfer with
//! wasmtime's hostcall fuel (checked before a string or list is lifted) and
//! reads host-call arguments in place; the Extism runtime reads lengths from
//! the Extism kernel before reading the bytes.

use std::borrow::Cow;

use tenon_manifest::Limits;

use crate::config::SandboxConfig;
use crate::error::SandboxError;

/// Longest error code kept from a plugin, in bytes.
pub(crate) const MAX_ERROR_CODE: usize = 128;

/// The most elements a table of a plugin may have or grow to, in every
/// runtime (Rust guests use a few hundred): the component runtime's
/// resource limiter refuses growth beyond it, the Extism runtime refuses at
/// load a module whose tables could (Extism's own limiter lets a table
/// without a declared maximum grow without bound, in host memory).
#[cfg(any(feature = "component", feature = "extism"))]
pub(crate) const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Room for what travels with the largest value a host call takes (a KV
/// key, an event topic, an HTTP request's method, URL and headers).
const ARGUMENT_OVERHEAD: usize = 64 * 1024;

/// The largest answer a plugin with `limits` may give under `config`:
/// `limits.max_output`, or the host's default. A manifest asking for more
/// than the host's cap is refused (at load).
pub(crate) fn answer_limit(
    config: &SandboxConfig,
    limits: &Limits,
    plugin: &str,
) -> Result<u64, SandboxError> {
    match limits.max_output {
        Some(asked) if asked.bytes() > config.max_output => Err(SandboxError::Unsupported {
            plugin: plugin.to_owned(),
            message: format!(
                "limits.max_output is {asked}; this host allows at most {} bytes",
                config.max_output
            ),
        }),
        Some(asked) => Ok(asked.bytes()),
        None => Ok(config.default_output.min(config.max_output)),
    }
}

/// The most bytes any one transfer from a plugin to the host may carry:
/// its answer limit, or the largest arguments of a host call the boundary
/// accepts (an HTTP body, a KV value, an event payload, each with its key,
/// URL or topic), whichever is larger. The component runtime refuses a
/// larger string or list before lifting it.
pub(crate) fn transfer_limit(config: &SandboxConfig, answer: u64) -> usize {
    let arguments = config
        .max_http_request_body
        .max(config.max_kv_value)
        .max(config.max_event_payload)
        .saturating_add(ARGUMENT_OVERHEAD);
    usize::try_from(answer).unwrap_or(usize::MAX).max(arguments)
}

/// Refuses an answer of `len` bytes over `limit`, saying what it was.
pub(crate) fn check_answer(
    plugin: &str,
    what: impl FnOnce() -> String,
    len: usize,
    limit: u64,
) -> Result<(), SandboxError> {
    if len as u64 <= limit {
        return Ok(());
    }
    Err(SandboxError::OutputTooLarge {
        plugin: plugin.to_owned(),
        what: what(),
        size: Some(len as u64),
        limit,
    })
}

/// `text` cut to at most `max` bytes on a character boundary, marked when
/// cut.
pub(crate) fn cut(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let end = floor_char_boundary(text, max);
    Cow::Owned(format!(
        "{}… [{} bytes cut]",
        &text[..end],
        text.len() - end
    ))
}

/// Whether a character of a plugin's log text is written escaped: control
/// characters (a newline would start a forged log line, an escape sequence
/// would drive the operator's terminal), Unicode line and paragraph
/// separators, bidirectional overrides (which reorder what a reader sees),
/// and the backslash that introduces an escape.
fn escaped_in_logs(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// A plugin's log text as the host writes it: at most `max` bytes (marked
/// when cut, like [`cut`]), every character [`escaped_in_logs`] written as
/// `\n`, `\r`, `\t`, `\\` or `\u{..}`, so one call to log is one line
/// that says only what the plugin wrote. Reads at most about `max` bytes of
/// `text`. The one escaping the host applies to any text a plugin chose
/// before it is logged or audited (log lines, permission-denial reports,
/// plugin error and panic messages).
pub fn log_text(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max && !text.chars().any(escaped_in_logs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max));
    for (at, c) in text.char_indices() {
        let before = out.len();
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if escaped_in_logs(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
        if out.len() > max {
            out.truncate(before);
            out.push_str(&format!("… [{} bytes cut]", text.len() - at));
            break;
        }
    }
    Cow::Owned(out)
}

/// Like [`cut`], for an owned string (no copy when it fits).
pub(crate) fn cut_owned(text: String, max: usize) -> String {
    match cut(&text, max) {
        Cow::Borrowed(_) => text,
        Cow::Owned(cut) => cut,
    }
}

/// The text of at most `max` bytes of `bytes` (a prefix of something the
/// plugin wrote, read in place), invalid UTF-8 replaced, marked with how
/// much was left out of `total` bytes.
#[cfg_attr(not(feature = "extism"), allow(dead_code))]
pub(crate) fn prefix_text(bytes: &[u8], total: usize, max: usize) -> String {
    let kept = &bytes[..bytes.len().min(max)];
    let text = String::from_utf8_lossy(kept);
    if total <= kept.len() {
        return text.into_owned();
    }
    // The cut may fall inside a character: drop the replacement it left.
    let text = text.trim_end_matches('\u{FFFD}');
    format!("{text}… [{} bytes cut]", total - kept.len())
}

fn floor_char_boundary(text: &str, max: usize) -> usize {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenon_manifest::ByteSize;

    #[test]
    fn cutting_respects_characters() {
        assert_eq!(cut("hello", 10), "hello");
        assert_eq!(cut("hello", 3), "hel… [2 bytes cut]");
        // 'é' is two bytes: cutting at 2 would split it.
        assert_eq!(cut("aé", 2), "a… [2 bytes cut]");
        assert_eq!(cut_owned("aé".to_owned(), 8), "aé");
    }

    #[test]
    fn log_text_cannot_forge_lines() {
        for (text, max, expected) in [
            ("plain", 100, "plain"),
            (
                "ok\n2026-01-01T00:00:00Z  INFO tenon: admin logged in",
                100,
                "ok\\n2026-01-01T00:00:00Z  INFO tenon: admin logged in",
            ),
            ("a\r\nb\tc", 100, "a\\r\\nb\\tc"),
            ("\u{1b}[2Jcleared", 100, "\\u{1b}[2Jcleared"),
            ("x\u{85}y\u{2028}z", 100, "x\\u{85}y\\u{2028}z"),
            ("admin\u{202e}nimda", 100, "admin\\u{202e}nimda"),
            ("C:\\dir\\n", 100, "C:\\\\dir\\\\n"),
            ("hello", 3, "hel… [2 bytes cut]"),
            // An escape that would cross the limit is cut whole.
            ("ab\ncd", 3, "ab… [3 bytes cut]"),
            ("aé", 2, "a… [2 bytes cut]"),
        ] {
            assert_eq!(log_text(text, max), expected, "{text:?}");
        }
    }

    #[test]
    fn prefixes_say_what_was_left_out() {
        assert_eq!(prefix_text(b"hello", 5, 10), "hello");
        assert_eq!(
            prefix_text(b"hello world", 1 << 20, 5),
            "hello… [1048571 bytes cut]"
        );
        // A prefix ending inside 'é' keeps only the whole characters.
        assert_eq!(prefix_text("aé".as_bytes(), 3, 2), "a… [1 bytes cut]");
    }

    #[test]
    fn answer_limits_come_from_the_manifest_within_the_host_cap() {
        let config = SandboxConfig::default();
        let mut limits = Limits::default();
        assert_eq!(answer_limit(&config, &limits, "p").unwrap(), 1 << 20);
        limits.max_output = Some(ByteSize::mib(2));
        assert_eq!(answer_limit(&config, &limits, "p").unwrap(), 2 << 20);
        limits.max_output = Some(ByteSize::mib(65));
        let err = answer_limit(&config, &limits, "p").unwrap_err();
        assert!(err.to_string().contains("limits.max_output"), "{err}");
        // A transfer may always carry the largest host-call arguments.
        assert!(transfer_limit(&config, 1) > config.max_http_request_body);
        assert_eq!(transfer_limit(&config, 64 << 20), 64 << 20);
    }

    #[test]
    fn over_limit_answers_name_the_limit() {
        assert!(check_answer("p", || "x".to_owned(), 10, 10).is_ok());
        let err = check_answer("p", || "its answer".to_owned(), 11, 10).unwrap_err();
        assert_eq!(err.code(), "output_too_large");
        assert_eq!(
            err.to_string(),
            "plugin p: its answer is 11 bytes, over the limit of 10 bytes"
        );
    }
}
