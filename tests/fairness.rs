//! Fairness between plugins and tenants: caps on live instances and their
//! memory per tenant (one tenant cannot hold every instance the runtime
//! has), and KV key quotas and write rates, enforced where the engine
//! serves a plugin's KV host calls.

use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::Value;
use tenon_engine::{
    EngineError, FairnessLimits, GrantRequest, KvLimits, NativeContext, NativePlugin, PluginEngine,
    PluginError, PluginId, SandboxError,
};
use tenon_tests::{builder, copy_plugin, set_field};

/// Installs, grants and enables a copy of the looper `package` in `engine`'s
/// tenant, with `max_instances` and a call timeout of `timeout`.
async fn looper(
    engine: &PluginEngine,
    dir: &std::path::Path,
    package: &str,
    max_instances: u32,
    timeout: &str,
) -> PluginId {
    let id = PluginId::new("tenon-hostile/looper-copy").unwrap();
    let dest = dir.join(format!("{package}-{}", engine.tenant()));
    let copy = copy_plugin(package, &dest, |text| {
        set_field(&set_field(&text, "id", id.as_str()), "timeout", timeout).replace(
            "[limits]\n",
            &format!("[limits]\nmax_instances = {max_instances}\n"),
        )
    });
    engine.install(copy.as_path()).await.expect("installs");
    engine
        .grant(&id, GrantRequest::all("op"))
        .await
        .expect("grants");
    engine.enable(&id).await.expect("enables");
    id
}

/// One tenant firing many slow calls at a plugin allowed many instances
/// cannot take every instance of the runtime: it gets its tenant's share
/// (here 1 of 3) and its other calls are refused at once with
/// `instance_cap`, naming the tenant's cap, while another tenant's plugin
/// starts and answers during the flood, in both WebAssembly runtimes.
/// (Without the tenant cap, the flood would hold all 3 and the other
/// tenant's start would be refused at the runtime's cap.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_holding_slow_calls_does_not_starve_another() {
    for package in ["hostile-looper", "hostile-extism-looper"] {
        let dir = tempfile::tempdir().unwrap();
        let limits = FairnessLimits::for_pool(3);
        assert_eq!(limits.tenant_instances, 1, "{package}");
        let engine = builder(dir.path()).fairness(limits).build().await.unwrap();
        let hog = looper(&engine, dir.path(), package, 8, "5s").await;
        let flood: Vec<_> = (0..8)
            .map(|_| {
                let engine = engine.clone();
                let hog = hog.clone();
                tokio::spawn(async move { engine.call(&hog, "loop", b"").await })
            })
            .collect();
        // Seven calls are refused at once; one loops until its deadline.
        let (sender, mut finished) = tokio::sync::mpsc::unbounded_channel();
        for call in flood {
            let sender = sender.clone();
            tokio::spawn(async move {
                let _ = sender.send(call.await.unwrap());
            });
        }
        let mut refused = Vec::new();
        while refused.len() < 7 {
            refused.push(finished.recv().await.unwrap());
        }
        for result in &refused {
            match result {
                Err(EngineError::Plugin {
                    source: SandboxError::InstanceCap { cap, setting, .. },
                    ..
                }) => {
                    assert_eq!(
                        cap, "tenant `default` is at its cap of 1 live instances",
                        "{package}"
                    );
                    assert_eq!(*setting, "tenant_instances", "{package}");
                }
                other => panic!("{package}: expected an instance_cap refusal, got {other:?}"),
            }
        }
        let message = refused[0].as_ref().unwrap_err().to_string();
        assert!(
            message.contains("tenant `default` is at its cap of 1 live instances"),
            "{package}: {message}"
        );
        // While the hog's call still loops, another tenant's plugin starts
        // and answers.
        let other = engine.for_tenant("other").await.unwrap();
        let neighbour = looper(&other, dir.path(), package, 1, "2s").await;
        assert_eq!(
            other.call(&neighbour, "ping", b"").await.unwrap(),
            b"pong",
            "{package}"
        );
        let last = finished.recv().await.unwrap();
        assert!(
            matches!(
                last,
                Err(EngineError::Plugin {
                    source: SandboxError::Timeout { .. },
                    ..
                })
            ),
            "{package}: {last:?}"
        );
        let counters = engine.host_counters();
        assert_eq!(counters.instance_cap_refusals, 7, "{package}");
        let doctor = engine.doctor().await.unwrap();
        assert!(
            doctor
                .host
                .problems
                .iter()
                .any(|p| p.starts_with("7 instance(s) were refused at a fairness cap")),
            "{package}: {:?}",
            doctor.host.problems
        );
        engine.shutdown().await;
    }
}

/// A first-party plugin whose calls write its KV: `set:KEY` or `delete:KEY`,
/// answering `ok` or the host's error.
struct KvWriter;

#[async_trait::async_trait]
impl NativePlugin for KvWriter {
    async fn activate(&self, _cx: &NativeContext, _config: &Value) -> Result<(), PluginError> {
        Ok(())
    }

    async fn call(
        &self,
        cx: &NativeContext,
        function: &str,
        _input: &[u8],
    ) -> Result<Vec<u8>, PluginError> {
        let done = match function.split_once(':') {
            Some(("set", key)) => cx.kv_set(key, b"v").await,
            Some(("delete", key)) => cx.kv_delete(key).await,
            _ => return Err(PluginError::new("unknown-function", function)),
        };
        Ok(done
            .map_or_else(|e| e.to_string(), |()| "ok".to_owned())
            .into_bytes())
    }
}

fn manifest(id: &str) -> String {
    format!(
        r#"
manifest_version = 1
[plugin]
id = "{id}"
name = "KV writer"
version = "1.0.0"
description = "Writes its KV on request."
[engine]
tenon = "^1.0"
[runtime]
kind = "native"
entry = "kv-writer"
[permissions]
kv = {{ quota = "4KiB" }}
"#
    )
}

const RATE_LIMITED: &str =
    "quota exceeded: the KV write rate limit of 3 writes per 3600s is used up; retry later";
const KEY_LIMITED: &str =
    "quota exceeded: the write adds a key beyond the KV key quota of 2 keys (2 in use)";

/// A case: what it shows, the limits, then the calls in order with their
/// answers.
type Case = (
    &'static str,
    KvLimits,
    &'static [(&'static str, &'static str)],
);

#[tokio::test]
async fn kv_writes_are_limited_per_plugin_by_keys_and_rate() {
    let hour = Duration::from_secs(3600);
    let table: &[Case] = &[
        (
            "keys: a third key is refused, overwrites and re-adding after a delete are not",
            KvLimits::default().max_keys(2),
            &[
                ("set:a", "ok"),
                ("set:b", "ok"),
                ("set:c", KEY_LIMITED),
                ("set:a", "ok"),
                ("delete:a", "ok"),
                ("set:c", "ok"),
            ],
        ),
        (
            "rate: sets and deletes share the bucket, the fourth write in an hour is refused",
            KvLimits::default().write_rate(3, hour),
            &[
                ("set:a", "ok"),
                ("delete:a", "ok"),
                ("set:b", "ok"),
                ("set:c", RATE_LIMITED),
                ("delete:b", RATE_LIMITED),
            ],
        ),
        (
            "a zero window leaves writes unlimited",
            KvLimits::default().write_rate(1, Duration::ZERO),
            &[("set:a", "ok"), ("set:b", "ok"), ("set:c", "ok")],
        ),
    ];
    for (case, limits, calls) in table {
        let dir = tempfile::tempdir().unwrap();
        let native = std::sync::Arc::new(tenon_engine::NativeRuntime::new(Default::default()));
        native.register("kv-writer", || KvWriter);
        let engine = builder(dir.path())
            .native_runtime(native)
            .kv_limits(*limits)
            .build()
            .await
            .expect("builds");
        let plugins: Vec<PluginId> = ["host/writer", "host/neighbour"]
            .iter()
            .map(|id| PluginId::new(id).unwrap())
            .collect();
        for plugin in &plugins {
            engine
                .install(tenon_engine::HostPlugin::native(&manifest(plugin.as_str())))
                .await
                .expect("installs");
            engine.enable(plugin).await.expect("enables");
        }
        for (call, expected) in *calls {
            let answer = engine.call(&plugins[0], call, b"").await.expect("calls");
            assert_eq!(
                String::from_utf8(answer).unwrap(),
                *expected,
                "{case}: {call}"
            );
        }
        // The limits are each plugin's own: its neighbour writes freely.
        let answer = engine.call(&plugins[1], "set:a", b"").await.unwrap();
        assert_eq!(answer, b"ok", "{case}: the neighbour");
        engine.shutdown().await;
    }
}
