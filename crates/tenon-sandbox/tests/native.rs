//! The native runtime: trusted Rust plugins behind the same contract and
//! boundary.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tenon_manifest::{Format, Isolation, Manifest, ValidationContext};
use tenon_sandbox::native::{NativeContext, NativePlugin, NativeRuntime, PluginError};
use tenon_sandbox::{
    CallOptions, Caller, HookCall, HookContextData, HookResponse, LoadRequest, MemoryHost, Plugin,
    Runtime, SandboxConfig, SandboxError, TrapKind,
};

/// Counts calls in memory and in KV; `sleep` waits forever, `panic` panics,
/// `kv` writes through the host API.
#[derive(Default)]
struct Counter {
    calls: AtomicU64,
}

#[async_trait]
impl NativePlugin for Counter {
    async fn activate(
        &self,
        _cx: &NativeContext,
        config: &serde_json::Value,
    ) -> Result<(), PluginError> {
        if config.get("fail").is_some() {
            return Err(PluginError::new("invalid-config", "asked to fail"));
        }
        Ok(())
    }

    async fn handle_hook(
        &self,
        cx: &NativeContext,
        hook: &str,
        _context: &HookContextData,
        _data: &str,
    ) -> Result<HookResponse, PluginError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        cx.kv_set(hook, n.to_string().as_bytes()).await?;
        Ok(HookResponse::Continue {
            patch: Some(format!(r#"{{"count":{n}}}"#)),
        })
    }

    async fn call(
        &self,
        cx: &NativeContext,
        function: &str,
        _input: &[u8],
    ) -> Result<Vec<u8>, PluginError> {
        match function {
            "count" => Ok(self.calls.load(Ordering::SeqCst).to_string().into_bytes()),
            "sleep" => {
                std::future::pending::<()>().await;
                Ok(vec![])
            }
            "panic" => panic!("native plugin gave up"),
            "secret" => {
                let value = cx.config_get("token").await?;
                Ok(value
                    .map(|v| v.to_string())
                    .unwrap_or_default()
                    .into_bytes())
            }
            other => Err(PluginError::new("unknown-function", other)),
        }
    }
}

fn manifest(limits: &str) -> Manifest {
    let source = format!(
        r#"
manifest_version = 1
[plugin]
id = "acme/counter"
name = "Counter"
version = "1.0.0"
[runtime]
kind = "native"
entry = "counter"
[permissions]
kv = {{ quota = "1KiB" }}
[[config.fields]]
key = "token"
type = "string"
secret = true
[limits]
{limits}
"#
    );
    tenon_manifest::parse(&source, Format::Toml, &ValidationContext::default())
        .into_result()
        .unwrap_or_else(|d| panic!("{d:?}"))
}

async fn load(
    limits: &str,
    edit: impl FnOnce(&mut Manifest),
) -> (Arc<MemoryHost>, Arc<dyn Plugin>) {
    let runtime = NativeRuntime::new(SandboxConfig::default());
    runtime.register("counter", Counter::default);
    let mut manifest = manifest(limits);
    edit(&mut manifest);
    let host = Arc::new(MemoryHost::new());
    let caller = Arc::new(Caller {
        plugin: manifest.plugin.id.clone(),
        version: manifest.plugin.version.clone(),
        tenant: "t".to_owned(),
        permissions: Arc::new(manifest.permissions.clone()),
    });
    let plugin = runtime
        .load(LoadRequest {
            manifest: Arc::new(manifest),
            module: Arc::from(&[][..]),
            caller,
            host: host.clone(),
            observer: host.clone(),
            data_dir: None,
        })
        .await
        .unwrap();
    plugin.start(&serde_json::json!({})).await.unwrap();
    (host, plugin)
}

async fn hook(plugin: &dyn Plugin) -> Result<HookResponse, SandboxError> {
    let context = HookContextData::default();
    plugin
        .handle_hook(HookCall {
            hook: "h",
            context: &context,
            data: "{}",
            options: CallOptions::default(),
        })
        .await
}

async fn call(plugin: &dyn Plugin, function: &str) -> Result<String, SandboxError> {
    plugin
        .call(function, b"", CallOptions::default())
        .await
        .map(|b| String::from_utf8(b).unwrap())
}

#[tokio::test]
async fn hooks_reach_the_host_through_the_boundary() {
    let (host, plugin) = load("", |_| {}).await;
    let response = hook(&*plugin).await.unwrap();
    assert_eq!(
        response,
        HookResponse::Continue {
            patch: Some(r#"{"count":1}"#.to_owned())
        }
    );
    let id = tenon_manifest::PluginId::new("acme/counter").unwrap();
    assert_eq!(host.kv_entries(&id, "t").get("h").unwrap(), b"1");
    // `token` is a secret that permissions.secrets does not list.
    let err = call(&*plugin, "secret").await.unwrap_err();
    assert!(
        matches!(&err, SandboxError::PermissionDenied { permission, .. } if permission == "secrets"),
        "{err:?}"
    );
    assert_eq!(host.denials().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_are_counted_once_each() {
    let (_, plugin) = load("max_instances = 8", |_| {}).await;
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let plugin = plugin.clone();
            tokio::spawn(async move { hook(&*plugin).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(call(&*plugin, "count").await.unwrap(), "64");
    assert_eq!(plugin.stats().calls, 66, "start, 64 hooks, count");
}

#[tokio::test(start_paused = true)]
async fn a_hanging_call_times_out_and_others_wait_then_get_busy() {
    let (_, plugin) = load(
        "timeout = \"1s\"\nmax_instances = 1\nwait_timeout = \"200ms\"",
        |_| {},
    )
    .await;
    let hanging = plugin.clone();
    let first = tokio::spawn(async move { call(&*hanging, "sleep").await });
    tokio::task::yield_now().await;
    let err = call(&*plugin, "count").await.unwrap_err();
    assert!(
        matches!(err, SandboxError::Busy { waited, .. } if waited == Duration::from_millis(200)),
        "{err:?}"
    );
    let err = first.await.unwrap().unwrap_err();
    assert!(
        matches!(err, SandboxError::Timeout { after, .. } if after == Duration::from_secs(1)),
        "{err:?}"
    );
    assert_eq!(call(&*plugin, "count").await.unwrap(), "0");
}

#[tokio::test]
async fn a_panic_is_a_trap_not_a_crash() {
    let (_, plugin) = load("", |_| {}).await;
    let err = call(&*plugin, "panic").await.unwrap_err();
    assert!(
        matches!(&err, SandboxError::Trap { kind: TrapKind::Unreachable, message, .. } if message.contains("gave up")),
        "{err:?}"
    );
    hook(&*plugin).await.unwrap();
    assert_eq!(
        plugin.health().last_error.as_deref(),
        Some(err.to_string().as_str())
    );
}

#[tokio::test]
async fn fresh_isolation_makes_a_value_per_call() {
    let (_, plugin) = load("", |m| m.limits.isolation = Isolation::Fresh).await;
    hook(&*plugin).await.unwrap();
    hook(&*plugin).await.unwrap();
    assert_eq!(call(&*plugin, "count").await.unwrap(), "0");
}

#[tokio::test]
async fn start_fails_on_the_plugins_error_and_unknown_entries_are_refused() {
    let runtime = NativeRuntime::new(SandboxConfig::default());
    runtime.register("counter", Counter::default);
    let mut manifest = manifest("");
    manifest.runtime.entry = Some("nope".to_owned());
    let host = Arc::new(MemoryHost::new());
    let caller = Arc::new(Caller {
        plugin: manifest.plugin.id.clone(),
        version: manifest.plugin.version.clone(),
        tenant: "t".to_owned(),
        permissions: Arc::new(manifest.permissions.clone()),
    });
    let request = LoadRequest {
        manifest: Arc::new(manifest),
        module: Arc::from(&[][..]),
        caller,
        host: host.clone(),
        observer: host,
        data_dir: None,
    };
    let err = runtime.load(request.clone()).await.err().unwrap();
    assert!(matches!(err, SandboxError::MissingExport { .. }), "{err:?}");
    let mut manifest = (*request.manifest).clone();
    manifest.runtime.entry = Some("counter".to_owned());
    let plugin = runtime
        .load(LoadRequest {
            manifest: Arc::new(manifest),
            ..request
        })
        .await
        .unwrap();
    let err = plugin
        .start(&serde_json::json!({"fail": true}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SandboxError::Plugin { ref code, .. } if code == "invalid-config"),
        "{err:?}"
    );
    assert!(!plugin.health().ready);
    assert!(matches!(
        call(&*plugin, "count").await,
        Err(SandboxError::NotRunning { .. })
    ));
}
