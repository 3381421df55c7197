//! The demo host: what embedding Tenon looks like in a real (if small)
//! application.
//!
//! It builds the example plugins from source, installs them into a fresh
//! SQLite registry, configures and grants them, and drives a scripted "agent
//! run" through the nine hook points of an agent runner, printing what each
//! plugin did: the moderator blocks a response, the redactor patches tool
//! output, the notifier posts to a webhook sink the demo serves on loopback,
//! the counter counts in KV. Then it disables the moderator and shows the
//! difference, and ends with statistics and the event log.
//!
//! An application, not a library: the library target exists so that the
//! integration tests run the same demo (`tests/demo.rs`); errors are
//! `anyhow`'s.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::routing::post;
use serde_json::{Map, Value, json};
use tenon_engine::{
    DisableOptions, DispatchOutcome, EventQuery, GrantRequest, HookContext, PluginEngine, PluginId,
    ReceiptStatus, SandboxConfig, SecretKey, agent_runner_hooks,
};

/// What the demo saw, for tests to check.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// The moderator blocked the response with the forbidden word.
    pub moderator_blocked: bool,
    /// The redactor replaced the API key in tool output.
    pub redacted: bool,
    /// Bodies the webhook sink received.
    pub webhooks: Vec<Value>,
    /// The counter's KV counts at the end.
    pub counts: Value,
    /// With the moderator disabled, the same response went through.
    pub delivered_after_disable: bool,
    /// Events in the log at the end.
    pub events: usize,
}

const PLUGINS: [&str; 4] = ["redactor", "moderator", "notifier", "counter"];

/// Runs the demo in `dir` (a fresh registry is created there), writing the
/// story to `out`.
pub async fn run(dir: &Path, out: &mut dyn Write) -> Result<Summary> {
    let mut summary = Summary::default();
    writeln!(out, "Tenon demo host\n===============\n")?;

    writeln!(
        out,
        "Building the example plugins from source (cargo, wasm32-wasip2)…"
    )?;
    let examples = tokio::task::spawn_blocking(tenon_build::try_ensure_examples_built)
        .await?
        .map_err(|e| anyhow::anyhow!("building the example plugins: {e}"))?;

    let sink = WebhookSink::start().await?;
    writeln!(out, "Webhook sink listening on {}\n", sink.url)?;

    std::fs::create_dir_all(dir)?;
    let registry = dir.join("registry.db");
    for stale in [
        "registry.db",
        "registry.db-wal",
        "registry.db-shm",
        "secret.key",
    ] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    // The key that encrypts secrets at rest, kept where the `tenon` CLI
    // looks for it, so that the CLI can operate this registry afterwards.
    let key = SecretKey::generate();
    write_private(
        &dir.join("secret.key"),
        format!("{}\n", key.reveal_hex()).as_bytes(),
    )?;
    let engine = PluginEngine::builder()
        .registry(&registry.to_string_lossy())
        .data_dir(dir)
        .host("tenon-demo", tenon_engine::Version::new(1, 0, 0))
        .hooks(agent_runner_hooks())
        .secret_key(key)
        // The webhook sink is on loopback; plugins still reach it only if
        // their manifest asks for private addresses and the operator grants
        // it.
        .sandbox(SandboxConfig::default().with_private_networks(true))
        // The demo installs the example plugins from their directories,
        // which only the development switch allows.
        .trust_policy(tenon_engine::TrustPolicy::development())
        .build()
        .await
        .context("starting the engine")?;
    writeln!(out, "Registry: {} (SQLite)\n", registry.display())?;

    writeln!(out, "1. Install, configure, grant, enable")?;
    for name in PLUGINS {
        let built = examples
            .get(name)
            .with_context(|| format!("the example plugin {name} was not built"))?;
        let report = engine.install(built.dir.as_path()).await?;
        writeln!(
            out,
            "   installed {} {} → {}{}",
            report.id,
            report.version,
            report.state,
            if report.missing_config.is_empty() {
                String::new()
            } else {
                format!(" (needs config: {})", report.missing_config.join(", "))
            }
        )?;
        if !report.permissions.is_empty() {
            writeln!(out, "      asks for: {}", report.permissions.join("; "))?;
        }
    }
    let id = |name: &str| PluginId::new(&format!("tenon-examples/{name}")).expect("a valid id");
    configure(
        &engine,
        &id("moderator"),
        json!({"blocked_words": ["forbidden"]}),
    )
    .await?;
    configure(
        &engine,
        &id("notifier"),
        json!({"webhook_url": sink.url, "token": "demo-token-1234"}),
    )
    .await?;
    writeln!(
        out,
        "   configured the moderator (blocked word: forbidden) and the notifier (webhook, secret token)"
    )?;
    for name in PLUGINS {
        engine
            .grant(&id(name), GrantRequest::all("demo operator"))
            .await?;
        let record = engine.enable(&id(name)).await?;
        writeln!(
            out,
            "   granted and enabled {} → {}",
            record.id, record.state
        )?;
    }

    writeln!(
        out,
        "\n2. A scripted agent run through the nine hook points"
    )?;
    // One dispatch context per hook point (each has its own execution id),
    // all for the same user and session.
    let context = || {
        HookContext::new("default")
            .with_user("user-7")
            .with_session("session-42")
    };
    let steps: Vec<(&str, Value)> = vec![
        (
            "work_item.pre_create",
            json!({"workItem": {"title": "  Summarize the deploy logs ", "payload": {"channel": "#ops"}, "session_key": "s-42"}, "pluginType": "chat", "pluginInstanceId": "chat-1"}),
        ),
        (
            "work_item.post_create",
            json!({"workItem": {"id": "w-1", "title": "Summarize the deploy logs"}, "pluginType": "chat", "pluginInstanceId": "chat-1"}),
        ),
        (
            "run.pre_prompt",
            json!({"systemPrompt": "You are a careful ops assistant.", "userMessage": "Summarize the deploy logs", "agent": {"id": "a-1"}}),
        ),
        (
            "model.pre_call",
            json!({"model": "demo-model", "temperature": 0.2, "maxTokens": 800, "messages": [], "tools": [], "turn": 1}),
        ),
        (
            "model.post_call",
            json!({"model": "demo-model", "turn": 1, "durationMs": 420, "usage": {"promptTokens": 812, "completionTokens": 64, "costUsd": 0.002}}),
        ),
        (
            "tool.pre_exec",
            json!({"toolName": "read_logs", "toolInput": {"service": "deployer", "lines": 50}, "toolCallId": "t-1", "turn": 1}),
        ),
        (
            "tool.post_exec",
            json!({"toolName": "read_logs", "toolInput": {"service": "deployer"}, "result": {"output": "deploy ok; STRIPE_KEY=sk_live_51HxyzABCDEFghijklmnopQRSTuv used for billing"}, "durationMs": 12, "turn": 1}),
        ),
        (
            "response.pre_deliver",
            json!({"content": "The deploy used the forbidden shortcut again.", "pluginType": "chat", "pluginInstanceId": "chat-1", "workItemId": "w-1", "responseMode": "final", "hitLimit": false}),
        ),
        (
            "response.pre_deliver",
            json!({"content": "The deploy finished in 3 minutes; all checks passed.", "pluginType": "chat", "pluginInstanceId": "chat-1", "workItemId": "w-1", "responseMode": "final", "hitLimit": false}),
        ),
        (
            "response.post_deliver",
            json!({"content": "The deploy finished in 3 minutes; all checks passed.", "result": {"ok": true}, "pluginType": "chat", "pluginInstanceId": "chat-1", "workItemId": "w-1"}),
        ),
    ];
    for (hook, data) in steps {
        let outcome = engine.dispatch(hook, &context(), data.clone()).await?;
        show(out, hook, &data, &outcome)?;
        if hook == "tool.post_exec" {
            let output = outcome.data["result"]["output"]
                .as_str()
                .unwrap_or_default();
            summary.redacted = !output.contains("sk_live_") && output.contains("[REDACTED]");
        }
        if hook == "response.pre_deliver"
            && data["content"]
                .as_str()
                .is_some_and(|c| c.contains("forbidden"))
        {
            summary.moderator_blocked = outcome.is_blocked();
        }
    }
    summary.webhooks = sink.wait_for(2, Duration::from_secs(5)).await;
    writeln!(
        out,
        "\n   the webhook sink received {} notification(s):",
        summary.webhooks.len()
    )?;
    for body in &summary.webhooks {
        writeln!(out, "      {body}")?;
    }
    let counts = engine.call(&id("counter"), "count", b"").await?;
    summary.counts = serde_json::from_slice(&counts)?;
    writeln!(out, "   the counter's KV: {}", summary.counts)?;

    writeln!(
        out,
        "\n3. Disable the moderator and send the same response again"
    )?;
    engine
        .disable(&id("moderator"), DisableOptions::default())
        .await?;
    let again = engine
        .dispatch(
            "response.pre_deliver",
            &context(),
            json!({"content": "The deploy used the forbidden shortcut again.", "pluginType": "chat", "workItemId": "w-1"}),
        )
        .await?;
    summary.delivered_after_disable = !again.is_blocked();
    writeln!(
        out,
        "   {}",
        if again.is_blocked() {
            "still blocked".to_owned()
        } else {
            format!("delivered: {}", again.data["content"])
        }
    )?;

    writeln!(out, "\n4. Statistics (this run)")?;
    writeln!(
        out,
        "   {:<28} {:>6} {:>6} {:>7} {:>10} {:>9}",
        "plugin", "runs", "ok", "errors", "avg ms", "health"
    )?;
    for name in PLUGINS {
        if let Some(stats) = engine.stats(&id(name)) {
            writeln!(
                out,
                "   {:<28} {:>6} {:>6} {:>7} {:>10.3} {:>9}",
                stats.plugin,
                stats.execution.count,
                stats.execution.success_count,
                stats.execution.error_count,
                stats.execution.avg_duration_ms,
                stats.health.status.as_str()
            )?;
        }
    }

    writeln!(out, "\n5. The event log (newest 15 of the registry's)")?;
    engine.flush().await;
    let page = engine
        .events(&EventQuery::default().with_limit(1000))
        .await?;
    summary.events = page.events.len();
    for event in page.events.iter().take(15) {
        writeln!(
            out,
            "   {:02}:{:02}:{:02}.{:03} {:<16} {:<8} {:<28} {}",
            event.at.hour(),
            event.at.minute(),
            event.at.second(),
            event.at.millisecond(),
            event.kind.as_str(),
            event.status.as_str(),
            event
                .plugin
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            brief(&event.detail)
        )?;
    }
    writeln!(out, "   ({} events in all)", summary.events)?;
    engine.shutdown().await;
    writeln!(
        out,
        "\nDone. The registry is kept at {} (its secret key beside it); inspect it with\n  cargo run -p tenon-cli -- --registry {} list",
        registry.display(),
        registry.display()
    )?;
    check(&summary)?;
    Ok(summary)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

async fn configure(engine: &PluginEngine, id: &PluginId, values: Value) -> Result<()> {
    let values: Map<String, Value> = values.as_object().cloned().unwrap_or_default();
    engine.configure(id, values, &[]).await?;
    Ok(())
}

/// One line per hook: what each plugin did.
fn show(out: &mut dyn Write, hook: &str, before: &Value, outcome: &DispatchOutcome) -> Result<()> {
    writeln!(out, "   {hook}")?;
    for receipt in &outcome.receipts {
        let what = match receipt.status {
            ReceiptStatus::Ok if receipt.changed_fields.is_empty() => "continued".to_owned(),
            ReceiptStatus::Ok => format!("changed {}", receipt.changed_fields.join(", ")),
            ReceiptStatus::Blocked => "BLOCKED".to_owned(),
            status => format!(
                "{status}{}",
                receipt
                    .error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        };
        writeln!(
            out,
            "      {:<28} {:<40} {:>8.3} ms",
            receipt.plugin,
            what,
            receipt.duration.as_secs_f64() * 1000.0
        )?;
    }
    if let Some(blocked) = &outcome.blocked {
        writeln!(
            out,
            "      → blocked by {}: {}",
            blocked.plugin,
            blocked.reason.as_deref().unwrap_or("no reason given")
        )?;
    }
    for pointer in outcome.receipts.iter().flat_map(|r| &r.changed_fields) {
        writeln!(
            out,
            "      → {pointer}: {} ⇒ {}",
            before.pointer(pointer).unwrap_or(&Value::Null),
            outcome.data.pointer(pointer).unwrap_or(&Value::Null)
        )?;
    }
    Ok(())
}

fn brief(detail: &Value) -> String {
    let mut text = detail.to_string();
    if text.len() > 90 {
        let mut cut = 90;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Fails the demo when a plugin did not do its part.
fn check(summary: &Summary) -> Result<()> {
    if !summary.moderator_blocked {
        bail!("the moderator did not block the forbidden response");
    }
    if !summary.redacted {
        bail!("the redactor did not redact the key in the tool output");
    }
    if summary.webhooks.is_empty() {
        bail!("the notifier did not reach the webhook sink");
    }
    if !summary.delivered_after_disable {
        bail!("the response was still blocked after disabling the moderator");
    }
    Ok(())
}

/// The default directory of the demo's registry.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/demo")
        .components()
        .collect()
}

type Received = Arc<Mutex<Vec<Value>>>;

/// A loopback HTTP server standing in for a chat service's webhook.
struct WebhookSink {
    url: String,
    received: Received,
}

impl WebhookSink {
    async fn start() -> Result<Self> {
        let received = Received::default();
        let store = received.clone();
        let app = Router::new().route(
            "/webhook",
            post(move |body: String| {
                let store = store.clone();
                async move {
                    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
                    store.lock().expect("not poisoned").push(value);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: format!("http://127.0.0.1:{port}/webhook"),
            received,
        })
    }

    /// Waits until `n` bodies arrived (or `within` passed) and returns them.
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let received = self.received.lock().expect("not poisoned").clone();
            if received.len() >= n || tokio::time::Instant::now() >= deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
