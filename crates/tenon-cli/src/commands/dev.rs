//! Developing a plugin against a running host: `tenon dev DIR` installs the
//! plugin directory (under the development switch), runs it, and reloads it
//! each time its files change, showing every reload and every failure; the
//! old code keeps running when the new one fails.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{Value, json};
use tenon_engine::{
    BusItem, EngineError, InstallSource, PluginEngine, PluginId, PluginState, SourceKind,
};

use crate::exit::{CommandResult, Failure};
use crate::output::Output;
use crate::session::{Boot, GlobalArgs};

/// `tenon dev` arguments.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tenon dev ./my-plugin
  tenon --format json dev ./my-plugin")]
pub(crate) struct DevArgs {
    /// The plugin's directory (its `tenon.toml` and built module).
    dir: PathBuf,
}

/// Runs `tenon dev` until interrupted.
pub(crate) async fn dev(args: DevArgs, global: &GlobalArgs) -> CommandResult {
    // A plugin under development is a directory: the development switch
    // lets it in, as `--dev` does.
    let mut global = global.clone();
    global.dev = true;
    let output = global.output();
    let dir = std::fs::canonicalize(&args.dir)
        .map_err(|e| Failure::usage(format!("cannot open {}: {e}", args.dir.display())))?;
    global
        .with_engine(Boot::No, async |engine| {
            run(engine, &dir, &global, &output).await
        })
        .await
}

async fn run(
    engine: &PluginEngine,
    dir: &Path,
    global: &GlobalArgs,
    output: &Output,
) -> CommandResult {
    let preview = engine
        .preview(InstallSource::Directory(dir.to_path_buf()))
        .await?;
    let id = preview.id;
    let installed = match engine.record(&id).await {
        Ok(record) => {
            if record.source.kind != SourceKind::Directory
                || Path::new(&record.source.reference) != dir
            {
                return Err(Failure::refused(
                    "dev_source",
                    format!(
                        "{id} is installed from {} {}, not from {}; `tenon uninstall {id}` first to develop it here",
                        record.source.kind.as_str(),
                        record.source.reference,
                        dir.display()
                    ),
                ));
            }
            true
        }
        Err(EngineError::NotInstalled { .. }) => {
            let report = engine.install(dir).await?;
            say(
                output,
                json!({"event": "installed", "plugin": id.as_str(), "version": report.version.to_string()}),
                &format!(
                    "{} {id} {} from {}",
                    output.good("Installed"),
                    report.version,
                    dir.display()
                ),
            )?;
            false
        }
        Err(error) => return Err(error.into()),
    };
    // Watch first: a change made while the plugin starts is not missed.
    let mut bus = engine
        .bus()
        .subscribe("plugin.*")
        .map_err(|e| Failure::environment("bus", e.to_string()))?;
    let _watch = engine.watch(dir).await?;
    global.start_plugins(engine).await?;
    let record = engine.record(&id).await?;
    if !record.enabled {
        engine.enable(&id).await?;
    } else if record.state != PluginState::Active {
        return Err(Failure::refused(
            "not_running",
            format!(
                "{id} is enabled but {} (see `tenon info {id}`); fix it, or `tenon disable {id}` and run `tenon dev` again",
                record.state
            ),
        ));
    }
    if installed {
        // What runs is what was installed; the directory may hold newer code.
        report_reload(engine, &id, output).await?;
    }
    let record = engine.record(&id).await?;
    say(
        output,
        json!({"event": "watching", "plugin": id.as_str(), "version": record.version.to_string(), "dir": dir.display().to_string()}),
        &format!(
            "{} {id} {} from {}: watching for changes (Ctrl-C to stop)",
            output.good("Running"),
            record.version,
            dir.display()
        ),
    )?;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let item = tokio::select! {
            _ = &mut interrupted => return Ok(()),
            item = bus.recv() => item,
        };
        let Some(BusItem::Event(event)) = item else {
            continue;
        };
        if event.payload["plugin"].as_str() != Some(id.as_str()) {
            continue;
        }
        match event.topic.as_str() {
            "plugin.reloaded" => reloaded(output, &id, &event.payload, false)?,
            "plugin.upgraded" => reloaded(output, &id, &event.payload, true)?,
            "plugin.reload_failed" => failed(output, &id, &event.payload)?,
            _ => {}
        }
    }
}

/// Reloads the plugin from its directory now, saying how it went.
async fn report_reload(engine: &PluginEngine, id: &PluginId, output: &Output) -> CommandResult {
    match engine.reload(id).await {
        Ok(report) => reloaded(
            output,
            id,
            &json!({"version": report.version.to_string(), "to": report.version.to_string()}),
            report.upgraded,
        ),
        Err(error) => failed(output, id, &json!({"error": error.to_string()})),
    }
}

fn reloaded(output: &Output, id: &PluginId, payload: &Value, upgraded: bool) -> CommandResult {
    let version = payload["to"]
        .as_str()
        .or_else(|| payload["version"].as_str())
        .unwrap_or_default();
    say(
        output,
        json!({"event": "reloaded", "plugin": id.as_str(), "version": version, "upgraded": upgraded}),
        &format!(
            "{} {id} {version}{}",
            output.good("Reloaded"),
            if upgraded { " (a new version)" } else { "" }
        ),
    )
}

fn failed(output: &Output, id: &PluginId, payload: &Value) -> CommandResult {
    let error = payload["error"].as_str().unwrap_or_default();
    say(
        output,
        json!({"event": "reload_failed", "plugin": id.as_str(), "error": error}),
        &format!(
            "{} {id}: {error}; the previous code keeps running",
            output.bad("Reload failed")
        ),
    )
}

/// One line: JSON, or text.
fn say(output: &Output, json: Value, text: &str) -> CommandResult {
    if output.is_json() {
        output.json_line(&json)
    } else {
        output.text(text)
    }
}
