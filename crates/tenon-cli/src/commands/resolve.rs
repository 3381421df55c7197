//! `tenon resolve`: choose plugin versions and a load order from an index
//! file, or explain why none exist.
//!
//! Exit status: 0 with a plan; 1 when no plan exists (a conflict, a cycle,
//! a strict-strategy warning), with the explanation; 2 on a usage error or
//! an unreadable or malformed file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use serde::de::DeserializeOwned;
use serde_json::json;
use tenon_manifest::{PluginId, Version};
use tenon_resolver::{
    Action, HostVersions, Index, Options, Request, Requirement, Resolution, Strategy, resolve,
};

use crate::Format;
use crate::exit::{CommandResult, Failure};
use crate::output::Output;

/// `tenon resolve` arguments.
#[derive(Debug, Args)]
pub(crate) struct ResolveArgs {
    /// The index of available plugins (JSON):
    /// {"plugins": {"acme/a": {"versions": {"1.0.0": {"dependencies": {…}, "engine": {…}, "yanked": false}}}}}.
    #[arg(long, value_name = "FILE")]
    index: PathBuf,
    /// What is installed (JSON): {"acme/a": "1.0.0", …}.
    #[arg(long, value_name = "FILE")]
    installed: Option<PathBuf>,
    /// A plugin API version the host serves; repeat (or separate with
    /// commas) when it serves several.
    #[arg(
        long = "api-version",
        value_name = "V",
        value_delimiter = ',',
        default_value = "1.0.0"
    )]
    api_versions: Vec<Version>,
    /// The host's version. Without it, host requirements are not checked
    /// (a note says so).
    #[arg(long, value_name = "V")]
    host_version: Option<Version>,
    /// How versions are chosen: `latest` (newest that fits), `manual` (keep
    /// installed versions, fail if they do not fit), `strict` (like manual,
    /// and fail on any warning).
    #[arg(long, value_name = "STRATEGY", default_value_t = Strategy::Latest)]
    strategy: Strategy,
    /// Allow pre-release versions where a requirement names a pre-release
    /// of the same major.minor.patch (semver's rule; `*` and `^2` never
    /// admit one).
    #[arg(long)]
    prerelease: bool,
    /// The request is everything that should stay: installed plugins nothing
    /// needs are removed (without it they stay).
    #[arg(long)]
    prune: bool,
    /// What to resolve: publisher/name@REQ (`acme/a@^1.2`); without @REQ
    /// any version.
    #[arg(value_name = "ID@REQ")]
    requirements: Vec<Requirement>,
}

/// Runs `tenon resolve`, printing the plan as a table or (`format` JSON)
/// as JSON.
pub(crate) fn run(args: ResolveArgs, format: Format) -> CommandResult {
    let index: Index = read_json(&args.index, "index")?;
    let installed: BTreeMap<PluginId, Version> = match &args.installed {
        Some(path) => read_json(path, "installed")?,
        None => BTreeMap::new(),
    };
    let request = Request {
        requirements: args.requirements,
        installed,
        host: HostVersions {
            api: args.api_versions,
            host: args.host_version,
        },
        options: Options {
            strategy: args.strategy,
            prerelease: args.prerelease,
            prune: args.prune,
        },
    };
    let output = Output::new(format);
    match (resolve(&index, &request), format) {
        (Ok(resolution), Format::Json) => output.json(&json!({
            "ok": true,
            "order": resolution.order,
            "plan": resolution.plan,
            "notes": resolution.notes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })),
        (Ok(resolution), Format::Human) => output.text(&table(&resolution)),
        (Err(error), Format::Json) => {
            output.json(&json!({"ok": false, "explanation": error.to_string()}))?;
            Err(Failure::Operation(String::new()))
        }
        (Err(error), Format::Human) => Err(Failure::Operation(error.to_string())),
    }
}

/// Reads and parses a JSON file; every failure names the file, and where
/// in it the problem is.
fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::Usage(anyhow!(
            "cannot read the {what} file {}: {e}",
            path.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        let message = e.to_string();
        let position = format!(" at line {} column {}", e.line(), e.column());
        let message = message.strip_suffix(&position).unwrap_or(&message);
        Failure::Usage(anyhow!(
            "{}:{}:{}: invalid {what} file: {message}",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

/// The plan as a table, then the notes.
fn table(resolution: &Resolution) -> String {
    let mut rows: Vec<[String; 4]> = vec![[
        "#".into(),
        "plugin".into(),
        "version".into(),
        "action".into(),
    ]];
    let mut number = 0;
    for entry in &resolution.plan {
        let position = if entry.action == Action::Remove {
            "-".to_owned()
        } else {
            number += 1;
            number.to_string()
        };
        let version = entry
            .to
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let action = match (&entry.action, &entry.from) {
            (Action::Upgrade | Action::Downgrade, Some(from)) => {
                format!("{} from {from}", entry.action)
            }
            (Action::Remove, Some(from)) => format!("remove {from}"),
            (action, _) => action.to_string(),
        };
        rows.push([position, entry.id.to_string(), version, action]);
    }
    let mut widths = [0; 4];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    if resolution.plan.is_empty() {
        out.push_str("nothing to install\n");
    } else {
        for row in &rows {
            let line = format!(
                "{:>w0$}  {:w1$}  {:w2$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    if !resolution.notes.is_empty() {
        out.push_str("\nnotes:\n");
        for note in &resolution.notes {
            out.push_str(&format!("  {note}\n"));
        }
    }
    out
}
