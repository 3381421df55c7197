//! Fairness between plugins: KV key quotas and write rates, enforced where
//! the engine serves a plugin's KV host calls.

use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::Value;
use tenon_engine::{KvLimits, NativeContext, NativePlugin, PluginError, PluginId};
use tenon_tests::builder;

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
