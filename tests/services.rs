//! Host services through the engine: a host registers `org.get` on its
//! builder; an Extism plugin granted `org = ["read"]` calls it, one that
//! declares nothing is refused and the refusal is in the event log like
//! every other denial; a service the host's permission kinds cannot name,
//! or with a schema Tenon would not enforce, fails the build.

use std::sync::Arc;

use serde_json::{Value, json};
use tenon_engine::{
    Caller, EngineError, EventKind, EventQuery, GrantRequest, MethodSpec, PluginEngine, PluginId,
    ServiceError, service_fn,
};
use tenon_tests::{builder, copy_plugin};

fn org_get() -> MethodSpec {
    MethodSpec {
        permission: "read:org".to_owned(),
        input: json!({
            "type": "object",
            "properties": {"id": {"type": "string"}},
            "required": ["id"],
        }),
        output: json!({
            "type": "object",
            "properties": {"id": {"type": "string"}, "plugin": {"type": "string"}},
            "required": ["id", "plugin"],
        }),
        description: "One organisation, by id.".to_owned(),
        handler: Arc::new(service_fn(|caller: Caller, input: Value| async move {
            match input["id"].as_str() {
                Some("gone") => Err(ServiceError::new("not_found", "no org `gone`")),
                id => Ok(json!({"id": id, "plugin": caller.plugin.to_string()})),
            }
        })),
    }
}

/// Installs the Extism service caller as `id`, its manifest declaring
/// `permissions` (TOML lines), granted and enabled.
async fn caller(engine: &PluginEngine, dir: &std::path::Path, id: &str, permissions: &str) {
    let path = copy_plugin("extism-services", &dir.join(id.replace('/', "-")), |text| {
        format!(
            "{}\n[permissions]\n{permissions}\n",
            text.replace("tenon-examples/extism-services", id)
        )
    });
    engine.install(path.as_path()).await.expect("installs");
    let id = PluginId::new(id).unwrap();
    engine
        .grant(&id, GrantRequest::all("test operator"))
        .await
        .unwrap();
    engine.enable(&id).await.expect("enables");
}

async fn call(engine: &PluginEngine, id: &str, input: Value) -> Value {
    let request = json!({"service": "org", "method": "get", "input": input});
    let answer = engine
        .call(
            &PluginId::new(id).unwrap(),
            "call",
            request.to_string().as_bytes(),
        )
        .await
        .expect("the call answers");
    serde_json::from_slice(&answer).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_call_the_hosts_services_as_granted() {
    let dir = tempfile::tempdir().unwrap();
    let engine = builder(dir.path())
        .permission_kinds(&["org"])
        .service("org.get", org_get())
        .build()
        .await
        .expect("builds");
    let names: Vec<String> = engine.services().methods().map(|(n, _)| n).collect();
    assert_eq!(names, ["org.get"]);

    caller(&engine, dir.path(), "acme/reader", "org = [\"read\"]").await;
    caller(&engine, dir.path(), "acme/stranger", "").await;

    assert_eq!(
        call(&engine, "acme/reader", json!({"id": "7"})).await,
        json!({"ok": {"id": "7", "plugin": "acme/reader"}})
    );
    let failed = call(&engine, "acme/reader", json!({"id": "gone"})).await;
    assert_eq!(failed["error"]["kind"], "unavailable", "{failed}");
    let bad = call(&engine, "acme/reader", json!({"id": 7})).await;
    assert_eq!(bad["error"]["kind"], "invalid_input", "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`input.id` must be a string"),
        "{bad}"
    );

    let denied = call(&engine, "acme/stranger", json!({"id": "7"})).await;
    assert_eq!(denied["error"]["kind"], "permission_denied", "{denied}");
    engine.flush().await;
    let events = engine
        .events(
            &EventQuery::default()
                .with_kinds(&[EventKind::PermissionDenied])
                .with_limit(100),
        )
        .await
        .unwrap()
        .events;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.plugin, Some(PluginId::new("acme/stranger").unwrap()));
    assert_eq!(event.detail["permission"], "org");
    assert_eq!(event.detail["attempted"], "call service `org.get`");
    assert_eq!(event.detail["enforcement"], "host_boundary");
    engine.shutdown().await;
}

#[tokio::test]
async fn a_service_no_plugin_could_be_granted_fails_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let refused = builder(dir.path())
        .service("org.get", org_get())
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, EngineError::Config(m) if m.contains("`org` is not one of the host's permission kinds")),
        "{refused}"
    );
    let mut bad_schema = org_get();
    bad_schema.input = json!({"type": "object", "patternProperties": {}});
    let refused = builder(dir.path())
        .permission_kinds(&["org"])
        .service("org.get", bad_schema)
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, EngineError::ServiceDefinition(_))
            && refused.to_string().contains("input.patternProperties"),
        "{refused}"
    );
    let refused = builder(dir.path())
        .permission_kinds(&["org"])
        .service("org.get", org_get())
        .service("org.get", org_get())
        .build()
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("registered twice"),
        "{refused}"
    );
}
