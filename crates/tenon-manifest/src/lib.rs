//! The Tenon plugin manifest.
//!
//! This crate owns the manifest format (`tenon.toml`, or the same document as
//! `tenon.json` / `tenon.yaml`): its types, its parsing, its validation, the
//! vocabulary of permissions and capabilities, engine compatibility and the
//! validation of config values against a manifest.
//!
//! It is pure: it takes `&str` / `&[u8]` and returns values; it never touches
//! files, the network or a clock. It knows nothing of how plugins run, where
//! they are stored or how hooks are dispatched.
//!
//! Every other Tenon crate depends on it; plugin tooling (linters, editors,
//! packagers) can depend on it alone.
//!
//! ```
//! use tenon_manifest::{Format, ValidationContext, parse};
//!
//! let source = r#"
//! manifest_version = 1
//! [plugin]
//! id = "acme/hello"
//! name = "Hello"
//! version = "1.0.0"
//! description = "Says hello."
//! license = "MIT"
//! [engine]
//! tenon = "^1.0"
//! [runtime]
//! kind = "component"
//! module = "hello.wasm"
//! "#;
//! let parsed = parse(source, Format::Toml, &ValidationContext::default());
//! let manifest = parsed.into_result().expect("valid");
//! assert_eq!(manifest.plugin.id.as_str(), "acme/hello");
//! ```
//!
//! Parsing goes in three steps: the format's parser builds one positioned
//! tree (bounded by [`InputLimits`]), a validating walk turns the tree into a
//! [`Manifest`] reporting every shape and type problem, and semantic checks
//! (the same ones [`Manifest::validate`] runs) report the rest. Each problem
//! is a [`Diagnostic`] with a stable [`Code`].

// The manifest's JSON Schema is one large `json!` literal.
#![recursion_limit = "512"]

mod config;
mod context;
mod diagnostic;
mod emit;
mod engine;
mod format;
mod id;
mod model;
mod parse;
mod path;
mod schema;
mod tree;
mod units;
mod validate;
mod walk;

use std::collections::HashMap;

pub use config::{REDACTED, ResolvedConfig, SchemaViolation, ValueSchema};
pub use context::{DEFAULT_HOOK_PRIORITY_THRESHOLD, LimitMaxima, ValidationContext};
pub use diagnostic::{Code, Diagnostic, Pos, Severity};
pub use engine::{HostInfo, Incompatibility, IncompatibilityReason, check_engine};
pub use format::{Format, UnknownFormat};
pub use id::{MAX_ID_PART_LEN, PluginId, PluginIdError};
pub use model::*;
pub use schema::manifest_json_schema;
pub use semver::{Version, VersionReq};
pub use tree::InputLimits;
pub use units::{ByteSize, DurationSpec, UnitError};

/// The result of [`parse`]: the manifest when it is valid, and every
/// diagnostic (errors and warnings) in source order.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// `Some` exactly when no diagnostic is an error.
    pub manifest: Option<Manifest>,
    /// Errors and warnings, ordered by position (those without one last).
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// Whether the manifest is valid (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.manifest.is_some()
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    /// The warnings only.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    /// The manifest, or every diagnostic (warnings included) when invalid.
    pub fn into_result(self) -> Result<Manifest, Vec<Diagnostic>> {
        self.manifest.ok_or(self.diagnostics)
    }
}

impl Manifest {
    /// The semantic checks of [`parse`], for a manifest built in code: every
    /// problem, without positions.
    pub fn validate(&self, context: &ValidationContext) -> Vec<Diagnostic> {
        validate::check(self, context, &|_| true, &str::to_owned)
    }

    /// Checks this manifest's `[engine]` against a host: the plugin API
    /// version to use, or why it cannot run.
    pub fn check_engine(&self, host: &HostInfo<'_>) -> Result<Version, Incompatibility> {
        check_engine(&self.engine, host)
    }
}

/// Parses and validates a manifest written in `format`, reporting every
/// problem at once. Never panics; bounded by `context.input` on any input.
pub fn parse(source: &str, format: Format, context: &ValidationContext) -> Parsed {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let limits = context.input;
    if source.len() > limits.max_bytes {
        return Parsed {
            manifest: None,
            diagnostics: vec![Diagnostic::error(
                Code::TooLarge,
                "",
                format!(
                    "the manifest is {} bytes, more than the limit of {} bytes",
                    source.len(),
                    limits.max_bytes
                ),
            )],
        };
    }
    let mut builder = tree::Builder::new(limits);
    let root = match format {
        Format::Toml => parse::toml::parse(source, &mut builder),
        Format::Json => parse::json::parse(source, &mut builder),
        Format::Yaml => parse::yaml::parse(source, &mut builder),
    };
    let mut diagnostics = builder.diagnostics;
    let mut manifest = None;
    if let Some(root) = root {
        let walked = walk::walk(&root);
        diagnostics.extend(walked.diagnostics);
        if let Some(mut m) = walked.manifest {
            let remap = |path: &str| remap_indices(path, &walked.index_maps);
            let good = |path: &str| {
                let source_path = remap(path);
                !walked
                    .poisoned
                    .iter()
                    .any(|p| path::within(&source_path, p))
            };
            for mut d in validate::check(&m, context, &good, &remap) {
                d.path = remap(&d.path);
                let pos = position_of(&d.path, &walked.positions);
                diagnostics.push(d.at(pos));
            }
            m.permissions.hooks =
                HooksPermission::derive(&m.hooks, context.hook_priority_threshold);
            manifest = Some(m);
        }
    }
    diagnostics.sort_by_key(|d| (d.line.is_none(), d.line, d.column));
    if diagnostics.iter().any(Diagnostic::is_error) {
        manifest = None;
    }
    Parsed {
        manifest,
        diagnostics,
    }
}

/// The document as plain data, without validating it as a manifest: for
/// tools (editors checking it against [`manifest_json_schema`], converters of
/// documents that are not yet valid). Bounded like [`parse`]; TOML dates
/// become strings, NaN and infinities become nulls.
pub fn parse_document(
    source: &str,
    format: Format,
    limits: &InputLimits,
) -> Result<serde_json::Value, Vec<Diagnostic>> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    if source.len() > limits.max_bytes {
        return Err(vec![Diagnostic::error(
            Code::TooLarge,
            "",
            format!(
                "the document is {} bytes, more than the limit of {} bytes",
                source.len(),
                limits.max_bytes
            ),
        )]);
    }
    let mut builder = tree::Builder::new(*limits);
    let root = match format {
        Format::Toml => parse::toml::parse(source, &mut builder),
        Format::Json => parse::json::parse(source, &mut builder),
        Format::Yaml => parse::yaml::parse(source, &mut builder),
    };
    match root {
        Some(root) if !builder.failed() => Ok(root.to_json()),
        _ => Err(builder.diagnostics),
    }
}

/// [`parse`] of bytes, which must be UTF-8.
pub fn parse_bytes(source: &[u8], format: Format, context: &ValidationContext) -> Parsed {
    match std::str::from_utf8(source) {
        Ok(text) => parse(text, format, context),
        Err(e) => {
            let valid = &source[..e.valid_up_to()];
            // The prefix is valid UTF-8, so this is lossless.
            let prefix = String::from_utf8_lossy(valid);
            let pos = tree::LineIndex::new(&prefix).pos(prefix.len());
            Parsed {
                manifest: None,
                diagnostics: vec![
                    Diagnostic::error(
                        Code::Syntax,
                        "",
                        format!(
                            "the manifest is not UTF-8 (invalid byte at offset {}): save it as UTF-8",
                            e.valid_up_to()
                        ),
                    )
                    .at(Some(pos)),
                ],
            }
        }
    }
}

/// The position of `path`, or of its nearest ancestor that has one.
fn position_of(path: &str, positions: &HashMap<String, Pos>) -> Option<Pos> {
    let mut current = path;
    loop {
        if let Some(pos) = positions.get(current) {
            return Some(*pos);
        }
        let cut = current.rfind(['.', '['])?;
        current = &current[..cut];
        // A quoted key may hold '.' or '[': skip to a cut outside quotes.
        while current.matches('"').count() % 2 == 1 {
            let cut = current.rfind(['.', '['])?;
            current = &current[..cut];
        }
    }
}

/// Turns a path with the manifest's list indices into one with the source's
/// (they differ when the walk left out items it refused).
fn remap_indices(path: &str, maps: &HashMap<String, Vec<usize>>) -> String {
    if maps.is_empty() || !path.contains('[') {
        return path.to_owned();
    }
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        out.push_str(&rest[..open]);
        let i: Option<usize> = rest[open + 1..close].parse().ok();
        let source = match (i, maps.get(out.as_str())) {
            (Some(i), Some(map)) => map.get(i).copied().unwrap_or(i),
            (Some(i), None) => i,
            (None, _) => {
                out.push_str(&rest[open..=close]);
                rest = &rest[close + 1..];
                continue;
            }
        };
        out.push_str(&format!("[{source}]"));
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}
