//! `tenon manifest …`: validate, convert and describe manifests.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{Args, Subcommand};
use serde::Serialize;
use tenon_manifest::{Diagnostic, Format as ManifestFormat, Parsed, ValidationContext, Version};

use crate::Format;
use crate::exit::{CommandResult, Failure};

/// `tenon manifest` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ManifestCommand {
    /// Check manifests and report every problem (`--format json`: one JSON
    /// object per file, one per line).
    ///
    /// Exit status: 0 when every file is valid (warnings allowed), 1 when any
    /// is invalid, 2 on a usage or IO error (the other files are still
    /// checked).
    Validate {
        /// Manifest files (`tenon.toml`, `tenon.json`, `tenon.yaml`).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Print the manifest's JSON Schema (draft 2020-12), for editors.
    Schema,
    /// Print a manifest in another format (refused when it is invalid).
    Convert {
        /// The manifest file.
        path: PathBuf,
        /// The format to write.
        #[arg(long, value_parser = parse_format)]
        to: ManifestFormat,
        #[command(flatten)]
        input: InputArgs,
        #[command(flatten)]
        host: HostArgs,
    },
}

/// How to read the input.
#[derive(Debug, Args)]
pub(crate) struct InputArgs {
    /// Read the files as this format instead of guessing from the extension.
    #[arg(long, value_parser = parse_format)]
    input_format: Option<ManifestFormat>,
}

/// What the host offers, for the checks that depend on it.
#[derive(Debug, Args)]
pub(crate) struct HostArgs {
    /// The host application's version (checks `engine.host`).
    #[arg(long, value_parser = parse_version)]
    host_version: Option<Version>,
    /// Plugin API versions the host serves (default 1.0.0); repeat or
    /// separate with commas.
    #[arg(long = "api-version", value_parser = parse_version, value_delimiter = ',')]
    api_versions: Vec<Version>,
    /// The host's capability vocabulary (checks `plugin.capabilities`).
    #[arg(long, value_delimiter = ',')]
    capabilities: Option<Vec<String>>,
    /// Permission kinds the host defines beyond the built-in ones.
    #[arg(long, value_delimiter = ',')]
    permissions: Vec<String>,
    /// The host's hook names (unknown hooks become warnings).
    #[arg(long, value_delimiter = ',')]
    hooks: Option<Vec<String>>,
    /// The host features offered (checks `engine.features`).
    #[arg(long, value_delimiter = ',')]
    features: Option<Vec<String>>,
}

impl HostArgs {
    fn context(&self) -> ValidationContext {
        let set = |list: &Option<Vec<String>>| -> Option<BTreeSet<String>> {
            list.as_ref().map(|l| {
                l.iter()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
        };
        let mut context = ValidationContext {
            host_version: self.host_version.clone(),
            capabilities: set(&self.capabilities),
            permission_kinds: self
                .permissions
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            hooks: set(&self.hooks),
            features: set(&self.features),
            ..ValidationContext::default()
        };
        if !self.api_versions.is_empty() {
            context.api_versions = self.api_versions.clone();
        }
        context
    }
}

fn parse_format(text: &str) -> Result<ManifestFormat, String> {
    ManifestFormat::from_name(text).map_err(|e| e.to_string())
}

fn parse_version(text: &str) -> Result<Version, String> {
    Version::parse(text.trim()).map_err(|e| format!("`{text}` is not a semver version: {e}"))
}

/// Runs a `tenon manifest` subcommand.
pub(crate) fn run(command: ManifestCommand, format: Format) -> CommandResult {
    match command {
        ManifestCommand::Validate { paths, input, host } => {
            validate(&paths, format, input.input_format, &host.context())
        }
        ManifestCommand::Schema => {
            let schema = tenon_manifest::manifest_json_schema();
            let text =
                serde_json::to_string_pretty(&schema).map_err(|e| Failure::Usage(e.into()))?;
            writeln!(std::io::stdout().lock(), "{text}")?;
            Ok(())
        }
        ManifestCommand::Convert {
            path,
            to,
            input,
            host,
        } => convert(&path, to, input.input_format, &host.context()),
    }
}

/// Reads and parses one file; `Err` is a usage or IO problem.
fn load(
    path: &Path,
    forced: Option<ManifestFormat>,
    context: &ValidationContext,
) -> Result<Parsed, anyhow::Error> {
    let format = forced.or_else(|| ManifestFormat::from_path(path)).ok_or_else(|| {
        anyhow!(
            "cannot tell the format of {}: name it .toml, .json, .yaml or .yml, or pass --input-format",
            path.display()
        )
    })?;
    let bytes = std::fs::read(path).map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(tenon_manifest::parse_bytes(&bytes, format, context))
}

/// One line of `--format json` output.
#[derive(Serialize)]
struct FileReport<'a> {
    file: String,
    valid: bool,
    diagnostics: &'a [Diagnostic],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A diagnostic as `manifest validate` prints it:
/// `FILE:LINE:COLUMN: SEVERITY[CODE] PATH: MESSAGE`.
pub(crate) fn human_line(file: &str, d: &Diagnostic) -> String {
    let place = match (d.line, d.column) {
        (Some(line), Some(column)) => format!("{file}:{line}:{column}"),
        (Some(line), None) => format!("{file}:{line}"),
        _ => file.to_owned(),
    };
    let path = if d.path.is_empty() {
        String::new()
    } else {
        format!(" {}:", d.path)
    };
    format!("{place}: {}[{}]{path} {}", d.severity, d.code, d.message)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn validate(
    paths: &[PathBuf],
    format: Format,
    forced: Option<ManifestFormat>,
    context: &ValidationContext,
) -> CommandResult {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut valid, mut invalid, mut unreadable, mut errors, mut warnings) = (0, 0, 0, 0, 0);
    for path in paths {
        let file = path.display().to_string();
        match load(path, forced, context) {
            Ok(parsed) => {
                let is_valid = parsed.is_valid();
                if is_valid {
                    valid += 1;
                } else {
                    invalid += 1;
                }
                errors += parsed.errors().count();
                warnings += parsed.warnings().count();
                match format {
                    Format::Json => {
                        let report = FileReport {
                            file,
                            valid: is_valid,
                            diagnostics: &parsed.diagnostics,
                            error: None,
                        };
                        writeln!(
                            out,
                            "{}",
                            serde_json::to_string(&report).map_err(|e| Failure::Usage(e.into()))?
                        )?;
                    }
                    Format::Human => {
                        for d in &parsed.diagnostics {
                            writeln!(out, "{}", human_line(&file, d))?;
                        }
                    }
                }
            }
            Err(error) => {
                unreadable += 1;
                eprintln!("error: {error:#}");
                if format == Format::Json {
                    let report = FileReport {
                        file,
                        valid: false,
                        diagnostics: &[],
                        error: Some(format!("{error:#}")),
                    };
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string(&report).map_err(|e| Failure::Usage(e.into()))?
                    )?;
                }
            }
        }
    }
    if format == Format::Human {
        let mut summary = format!(
            "{} checked: {valid} valid, {invalid} invalid",
            plural(paths.len(), "manifest")
        );
        if unreadable > 0 {
            summary.push_str(&format!(", {unreadable} unreadable"));
        }
        summary.push_str(&format!(
            " ({}, {})",
            plural(errors, "error"),
            plural(warnings, "warning")
        ));
        writeln!(out, "{summary}")?;
    }
    out.flush()?;
    if unreadable > 0 {
        Err(Failure::Usage(anyhow!(
            "{} could not be read",
            plural(unreadable, "file")
        )))
    } else if invalid > 0 {
        Err(Failure::Operation(String::new()))
    } else {
        Ok(())
    }
}

fn convert(
    path: &Path,
    to: ManifestFormat,
    forced: Option<ManifestFormat>,
    context: &ValidationContext,
) -> CommandResult {
    let parsed = load(path, forced, context)?;
    let file = path.display().to_string();
    for d in &parsed.diagnostics {
        eprintln!("{}", human_line(&file, d));
    }
    match parsed.manifest {
        Some(manifest) => {
            write!(std::io::stdout().lock(), "{}", manifest.to_string_in(to))?;
            Ok(())
        }
        None => Err(Failure::Operation(format!(
            "{file} is not a valid manifest: fix the errors above to convert it"
        ))),
    }
}
