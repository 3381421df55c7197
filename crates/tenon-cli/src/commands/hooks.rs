//! The built-in generic host: `tenon hooks list`, `tenon hooks dispatch`
//! and `tenon call` run the enabled plugins in this process, with the hook
//! specs of `--hooks FILE` or the agent runner's nine.

use std::time::Instant;

use base64::Engine as _;
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value;
use tenon_engine::{EngineError, HookContext, HookReceipt, PluginEngine, PluginRecord};

use super::{did_you_mean, list_or_none, plural};
use crate::exit::{CommandResult, Failure};
use crate::output::Output;
use crate::session::{Boot, GlobalArgs, find_plugin, parse_json};

/// `tenon hooks` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum HooksCommand {
    /// List the host's hooks (from --hooks FILE or the agent runner's nine)
    /// and the handlers the enabled plugins register, in dispatch order.
    #[command(after_help = "Examples:
  tenon hooks list
  tenon --hooks my-host-hooks.json hooks list")]
    List,
    /// Run a hook through the enabled plugins and print the final data,
    /// who blocked it, and one receipt per handler.
    Dispatch(DispatchArgs),
}

/// `tenon hooks dispatch` arguments.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tenon hooks dispatch response.pre_deliver --data '{\"content\": \"hello\"}'
  tenon hooks dispatch tool.pre_exec --data @request.json
  generate-request | tenon hooks dispatch tool.pre_exec --data -")]
pub(crate) struct DispatchArgs {
    /// The hook, such as `response.pre_deliver`.
    hook: String,
    /// The hook's data, as JSON; `@FILE` reads it from a file, `-` from
    /// stdin.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    data: String,
    /// The user the dispatch is for (passed to plugins in the context).
    #[arg(long, value_name = "ID")]
    user: Option<String>,
    /// The session the dispatch belongs to.
    #[arg(long, value_name = "ID")]
    session: Option<String>,
}

/// Runs a `tenon hooks` subcommand.
pub(crate) async fn run(command: HooksCommand, global: &GlobalArgs) -> CommandResult {
    match command {
        HooksCommand::List => list(global).await,
        HooksCommand::Dispatch(args) => dispatch(args, global).await,
    }
}

/// One hook in `hooks list`'s JSON.
#[derive(Serialize)]
struct HookJson {
    name: String,
    mutable: Vec<String>,
    can_block: bool,
    timeout_ms: u64,
    handlers: Vec<HandlerJson>,
}

/// One handler, in dispatch order.
#[derive(Serialize)]
struct HandlerJson {
    plugin: String,
    priority: Value,
    fail_policy: Value,
    timeout_ms: u64,
    retries: u32,
}

fn hooks_json(engine: &PluginEngine) -> Vec<HookJson> {
    let handlers = engine.handlers();
    engine
        .hook_specs()
        .iter()
        .map(|spec| HookJson {
            name: spec.name.clone(),
            mutable: spec.mutable.clone(),
            can_block: spec.can_block,
            timeout_ms: spec.default_timeout.as_millis() as u64,
            handlers: handlers
                .iter()
                .filter(|h| h.hook == spec.name)
                .map(|h| HandlerJson {
                    plugin: h.plugin.clone(),
                    priority: serde_json::to_value(h.priority).unwrap_or(Value::Null),
                    fail_policy: serde_json::to_value(h.fail_policy).unwrap_or(Value::Null),
                    timeout_ms: h.timeout.as_millis() as u64,
                    retries: h.retries,
                })
                .collect(),
        })
        .collect()
}

async fn list(global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let hooks = global
        .with_engine(Boot::Plugins, async |engine| Ok(hooks_json(engine)))
        .await?;
    if output.is_json() {
        return output.json(&serde_json::json!({ "hooks": hooks }));
    }
    let mut table = output.table(["HOOK", "BLOCK", "MUTABLE", "HANDLERS (in dispatch order)"]);
    for hook in &hooks {
        let handlers = if hook.handlers.is_empty() {
            "-".to_owned()
        } else {
            hook.handlers
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    format!(
                        "{}. {} ({}, fail {})",
                        i + 1,
                        h.plugin,
                        plain(&h.priority),
                        plain(&h.fail_policy)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        table.add_row(vec![
            output.cell(&hook.name),
            output.cell(if hook.can_block { "yes" } else { "no" }),
            output.cell(if hook.mutable.is_empty() {
                "-".to_owned()
            } else {
                hook.mutable.join("\n")
            }),
            output.cell(handlers),
        ]);
    }
    output.text(&output.render(&mut table))
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What `hooks dispatch` prints in JSON.
#[derive(Serialize)]
struct DispatchJson {
    hook: String,
    execution_id: String,
    data: Value,
    proceeded: bool,
    blocked: Value,
    stopped: Value,
    elapsed_us: u64,
    receipts: Vec<HookReceipt>,
}

/// The text of `--data`: as given, `@FILE` read from the file, `-` read
/// from stdin.
fn read_data(data: &str) -> Result<(String, String), Failure> {
    if data == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Failure::usage(format!("cannot read --data from stdin: {e}")))?;
        return Ok((text, "--data (stdin)".to_owned()));
    }
    if let Some(path) = data.strip_prefix('@') {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("cannot read --data @{path}: {e}")))?;
        return Ok((text, format!("--data @{path}")));
    }
    Ok((data.to_owned(), "--data".to_owned()))
}

/// Refuses a hook the host does not declare, before any plugin starts.
fn check_hook(engine: &PluginEngine, hook: &str, global: &GlobalArgs) -> Result<(), Failure> {
    let specs = engine.hook_specs();
    if specs.iter().any(|spec| spec.name == hook) {
        return Ok(());
    }
    let close = tenon_types::similar(hook, specs.iter().map(|spec| spec.name.as_str()));
    let hint = did_you_mean(&close);
    let names: Vec<&str> = specs.iter().map(|spec| spec.name.as_str()).collect();
    let source = if global.hooks.is_none() {
        format!(
            "the built-in host declares the agent runner's nine hooks ({}); give your host's with --hooks FILE",
            names.join(", ")
        )
    } else {
        format!("--hooks FILE declares {}", list_or_none(&names))
    };
    Err(Failure::refused(
        "unknown_hook",
        format!("the host declares no hook `{hook}`{hint}; {source}"),
    ))
}

async fn dispatch(args: DispatchArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let (text, what) = read_data(&args.data)?;
    let data = parse_json(&text, &what)?;
    let mut context = HookContext::new(&global.tenant);
    if let Some(user) = &args.user {
        context = context.with_user(user);
    }
    if let Some(session) = &args.session {
        context = context.with_session(session);
    }
    let outcome = global
        .with_checked_engine(
            async |engine| check_hook(engine, &args.hook, global),
            async |engine, ()| {
                let _spinner = output.spinner(&format!("dispatching {}", args.hook));
                Ok(engine.dispatch(&args.hook, &context, data).await?)
            },
        )
        .await?;
    let json = DispatchJson {
        hook: args.hook.clone(),
        execution_id: context.execution_id().to_string(),
        proceeded: outcome.proceeded(),
        blocked: serde_json::to_value(&outcome.blocked).unwrap_or(Value::Null),
        stopped: serde_json::to_value(&outcome.stopped).unwrap_or(Value::Null),
        elapsed_us: outcome.elapsed.as_micros() as u64,
        receipts: outcome.receipts.clone(),
        data: outcome.data.clone(),
    };
    if output.is_json() {
        return output.json(&json);
    }
    let mut text = String::new();
    if let Some(blocked) = &outcome.blocked {
        text.push_str(&format!(
            "{} by {}{}\n",
            output.bad("BLOCKED"),
            output.bold(&blocked.plugin),
            blocked
                .reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    } else if let Some(stopped) = &outcome.stopped {
        text.push_str(&format!(
            "{} by {} ({}): {}\n",
            output.bad("STOPPED"),
            output.bold(&stopped.plugin),
            stopped.status,
            stopped.error
        ));
    } else {
        let failed = outcome.receipts.iter().filter(|r| failed(r)).count();
        if failed == 0 {
            text.push_str(&format!("{}\n", output.good("proceeded")));
        } else {
            text.push_str(&format!(
                "{} ({} failed open)\n",
                output.notice("proceeded"),
                plural(failed, "handler")
            ));
        }
    }
    text.push_str(&format!(
        "{} in {:.1} ms, execution {}\n\ndata:\n{}\n\n",
        args.hook,
        outcome.elapsed.as_secs_f64() * 1000.0,
        json.execution_id,
        serde_json::to_string_pretty(&outcome.data).unwrap_or_default()
    ));
    if outcome.receipts.is_empty() {
        text.push_str("no handlers: no enabled plugin handles this hook\n");
    } else {
        text.push_str(&receipt_table(&outcome.receipts, &output));
    }
    output.text(&text)
}

/// Whether a handler failed (an error, a timeout, a rejected patch).
fn failed(receipt: &HookReceipt) -> bool {
    !matches!(receipt.status.as_str(), "ok" | "blocked" | "skipped")
}

/// One row per receipt: plugin, status, attempts, duration, changed fields,
/// error or skip reason.
fn receipt_table(receipts: &[HookReceipt], output: &Output) -> String {
    let mut table = output.table([
        "PLUGIN", "STATUS", "ATTEMPTS", "DURATION", "CHANGED", "NOTE",
    ]);
    for r in receipts {
        let status = r.status.as_str();
        let good = !failed(r) && status != "skipped";
        let note = match (&r.error, &r.skip_reason) {
            (Some(error), _) => error.clone(),
            (None, Some(reason)) => serde_json::to_value(reason)
                .map(|v| plain(&v))
                .unwrap_or_default(),
            (None, None) => String::new(),
        };
        table.add_row(vec![
            output.cell(&r.plugin),
            output.verdict_cell(status, good),
            output.number(r.attempts),
            output.number(format!("{:.2} ms", r.duration.as_secs_f64() * 1000.0)),
            output.cell(if r.changed_fields.is_empty() {
                "-".to_owned()
            } else {
                r.changed_fields.join(", ")
            }),
            output.cell(note),
        ]);
    }
    output.render(&mut table)
}

/// Refuses, before any plugin starts, to call a function the plugin's
/// manifest does not declare, then a plugin that is not enabled: a
/// mistyped function is named first, since enabling the plugin would not
/// make the call work.
fn check_callable(record: &PluginRecord, function: &str) -> Result<(), Failure> {
    let id = &record.id;
    let declared: Vec<&str> = record
        .manifest
        .commands
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    if declared.contains(&function) {
        if !record.enabled {
            return Err(EngineError::NotRunning {
                id: id.clone(),
                state: record.state,
            }
            .into());
        }
        return Ok(());
    }
    let close = tenon_types::similar(function, declared.iter().copied());
    let hint = did_you_mean(&close);
    let known = if declared.is_empty() {
        "it declares no functions".to_owned()
    } else {
        format!("its functions: {}", declared.join(", "))
    };
    Err(Failure::refused(
        "unknown_function",
        format!("{id} has no function `{function}`{hint}; {known} (`tenon info {id}`)"),
    ))
}

/// `tenon call` arguments.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  tenon call tenon-examples/counter count
  tenon call tenon-examples/counter get --input tool.pre_exec
  echo '{\"a\": 1}' | tenon call tenon-examples/echo parse --input -")]
pub(crate) struct CallArgs {
    /// The plugin id (publisher/name).
    id: String,
    /// The function it exports (its manifest's `[[commands]]`).
    function: String,
    /// The input, sent as its bytes (usually JSON; some functions take
    /// text); `-` reads it from stdin.
    #[arg(long, value_name = "JSON", default_value = "")]
    input: String,
}

/// What `tenon call` prints in JSON.
#[derive(Serialize)]
struct CallJson {
    plugin: String,
    function: String,
    output: Value,
    encoding: &'static str,
    bytes: usize,
    elapsed_us: u64,
}

/// How the output bytes read: JSON, else UTF-8 text, else base64.
fn decode_output(bytes: &[u8]) -> (Value, &'static str) {
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        return (value, "json");
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => (Value::String(text.to_owned()), "utf8"),
        Err(_) => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
            "base64",
        ),
    }
}

/// Runs `tenon call`.
pub(crate) async fn call(args: CallArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let input = if args.input == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .map_err(|e| Failure::usage(format!("cannot read the input from stdin: {e}")))?;
        bytes
    } else {
        args.input.clone().into_bytes()
    };
    let (id, bytes, elapsed) = global
        .with_checked_engine(
            async |engine| {
                let record = find_plugin(engine, &args.id).await?;
                check_callable(&record, &args.function)?;
                Ok(record.id)
            },
            async |engine, id| {
                let _spinner = output.spinner(&format!("calling {id} {}", args.function));
                let started = Instant::now();
                let bytes = engine.call(&id, &args.function, &input).await?;
                Ok((id, bytes, started.elapsed()))
            },
        )
        .await?;
    let (value, encoding) = decode_output(&bytes);
    if output.is_json() {
        return output.json(&CallJson {
            plugin: id.to_string(),
            function: args.function,
            output: value,
            encoding,
            bytes: bytes.len(),
            elapsed_us: elapsed.as_micros() as u64,
        });
    }
    match (encoding, &value) {
        ("json", value) => output.text(&serde_json::to_string_pretty(value).unwrap_or_default()),
        (_, Value::String(text)) => {
            if encoding == "base64" {
                crate::output::warn("the output is not text; it is shown in base64");
            }
            output.text(text)
        }
        _ => output.text(&value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_outputs() {
        let check = |bytes: &[u8], value: Value, encoding: &str| {
            assert_eq!(decode_output(bytes), (value, encoding), "{bytes:?}");
        };
        check(br#"{"a": 1}"#, serde_json::json!({"a": 1}), "json");
        check(b"2", serde_json::json!(2), "json");
        check(b"Hello, Ada!", serde_json::json!("Hello, Ada!"), "utf8");
        check(b"", serde_json::json!(""), "utf8");
        check(&[0xff, 0x00, 0x10], serde_json::json!("/wAQ"), "base64");
    }
}
