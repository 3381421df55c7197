//! Host services, called by a plugin in every runtime that has the
//! `call-service` host function: one table of cases (granted, denied, bad
//! input, unknown names, a failing service, a service answering outside its
//! output schema, one that never answers, an oversized input), each run
//! against the native runtime and the Extism runtime. The plugin answers
//! what the host said as a value (`{"ok": …}` or `{"error": {"kind",
//! "message"}}`), so every refusal is seen as the plugin sees it.

mod suite;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use suite::Harness;
use suite::fixtures::DEDICATED;
use tenon_manifest::{Format, HostPermission, Manifest, ValidationContext};
use tenon_sandbox::native::{NativeContext, NativePlugin, NativeRuntime, PluginError};
use tenon_sandbox::{
    CallOptions, Caller, HostError, HostServices, LoadRequest, MemoryHost, MethodSpec, Plugin,
    Runtime, SandboxConfig, SandboxError, ServiceError, service_fn,
};

/// The example host's services: `org.get` (needs `read:org`), `org.rename`
/// (needs `write:org`), `org.broken` (answers outside its output schema),
/// `org.stuck` (never answers), `robots.list` (needs `read:robots`).
fn services() -> HostServices {
    let org_input = json!({
        "type": "object",
        "properties": {"id": {"type": "string", "minLength": 1}},
        "required": ["id"],
    });
    let org_output = json!({
        "type": "object",
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
        "required": ["id", "name"],
    });
    let mut services = HostServices::new();
    let mut add = |name: &str, permission: &str, input: &Value, output: &Value, handler| {
        services
            .register(
                name,
                MethodSpec {
                    permission: permission.to_owned(),
                    input: input.clone(),
                    output: output.clone(),
                    description: format!("the example's {name}"),
                    handler,
                },
            )
            .unwrap();
    };
    add(
        "org.get",
        "read:org",
        &org_input,
        &org_output,
        Arc::new(service_fn(|caller: Caller, input: Value| async move {
            let id = input["id"].as_str().unwrap_or_default().to_owned();
            if id == "missing" {
                return Err(ServiceError::new("not_found", format!("no org {id}")));
            }
            Ok(json!({"id": id, "name": format!("Org {id} for {}", caller.plugin)}))
        })),
    );
    add(
        "org.rename",
        "write:org",
        &org_input,
        &org_output,
        Arc::new(service_fn(|_, _| async {
            Ok(json!({"id": "x", "name": "y"}))
        })),
    );
    add(
        "org.broken",
        "read:org",
        &json!({}),
        &org_output,
        Arc::new(service_fn(|_, _| async { Ok(json!({"id": 7})) })),
    );
    add(
        "org.stuck",
        "read:org",
        &json!({}),
        &json!({}),
        Arc::new(service_fn(|_, _| async {
            std::future::pending::<()>().await;
            Ok(Value::Null)
        })),
    );
    add(
        "robots.list",
        "read:robots",
        &json!({}),
        &json!({"type": "array"}),
        Arc::new(service_fn(|_, _| async { Ok(json!([])) })),
    );
    services
}

/// What one case expects the plugin to be told.
enum Expect {
    /// `{"ok": value}`.
    Ok(Value),
    /// `{"error": {"kind": kind, "message": …}}`, the message holding every
    /// one of the texts.
    Error(&'static str, &'static [&'static str]),
    /// The call's deadline: the plugin is told `timeout`, or the runtime
    /// stops the whole call as timed out (the deadline of the host request
    /// is the call's own).
    Timeout,
}

struct Case {
    name: &'static str,
    service: &'static str,
    method: &'static str,
    input: Value,
    /// Whether the refusal is reported as a denial of this kind.
    denied: Option<&'static str>,
    expect: Expect,
}

fn cases() -> Vec<Case> {
    let case = |name, service, method, input, denied, expect| Case {
        name,
        service,
        method,
        input,
        denied,
        expect,
    };
    vec![
        case(
            "granted",
            "org",
            "get",
            json!({"id": "42"}),
            None,
            Expect::Ok(json!({"id": "42", "name": "Org 42 for acme/caller"})),
        ),
        case(
            "another action of a granted kind",
            "org",
            "rename",
            json!({"id": "42"}),
            Some("org"),
            Expect::Error(
                "permission_denied",
                &["org.rename", "write:org", "does not grant `write`"],
            ),
        ),
        case(
            "a kind not granted at all",
            "robots",
            "list",
            json!({}),
            Some("robots"),
            Expect::Error("permission_denied", &["robots.list", "read:robots"]),
        ),
        case(
            "input of the wrong type",
            "org",
            "get",
            json!({"id": 42}),
            None,
            Expect::Error(
                "invalid_input",
                &[
                    "org.get",
                    "does not fit its schema",
                    "`input.id` must be a string",
                ],
            ),
        ),
        case(
            "input missing a required key",
            "org",
            "get",
            json!({}),
            None,
            Expect::Error("invalid_input", &["org.get", "`input.id` is required"]),
        ),
        case(
            "input with a key the schema does not allow",
            "org",
            "get",
            json!({"id": "1", "admin": true}),
            None,
            Expect::Error(
                "invalid_input",
                &["org.get", "`input.admin` is not allowed"],
            ),
        ),
        case(
            "an unknown service",
            "orgs",
            "get",
            json!({"id": "1"}),
            None,
            Expect::Error(
                "invalid_input",
                &["no service `orgs`", "did you mean `org`?", "org, robots"],
            ),
        ),
        case(
            "an unknown method",
            "org",
            "gte",
            json!({"id": "1"}),
            None,
            Expect::Error(
                "invalid_input",
                &["`org` has no method `gte`", "did you mean `get`?"],
            ),
        ),
        case(
            "a service that fails",
            "org",
            "get",
            json!({"id": "missing"}),
            None,
            Expect::Error(
                "unavailable",
                &["`org.get` failed: not_found: no org missing"],
            ),
        ),
        case(
            "a service answering outside its output schema",
            "org",
            "broken",
            json!({}),
            None,
            Expect::Error(
                "unavailable",
                &[
                    "org.broken",
                    "output schema",
                    "`output.id` must be a string",
                ],
            ),
        ),
        case(
            "a service that never answers",
            "org",
            "stuck",
            json!({}),
            None,
            Expect::Timeout,
        ),
        case(
            "an input over the size limit",
            "org",
            "get",
            json!({"id": "x".repeat(300 * 1024)}),
            None,
            // Extism measures the whole request block before reading it,
            // so its refusal names the request, not the method.
            Expect::Error("quota_exceeded", &["bytes; the limit is"]),
        ),
    ]
}

/// The permissions the calling plugin is granted: `org = ["read"]`.
fn grant(manifest: &mut Manifest) {
    manifest.permissions.host.insert(
        "org".to_owned(),
        HostPermission::Actions(vec!["read".to_owned()]),
    );
    manifest.plugin.id = tenon_manifest::PluginId::new("acme/caller").unwrap();
    manifest.limits.timeout = "500ms".parse().unwrap();
}

/// Runs every case against `plugin`, whose `call` function calls the
/// service its JSON input names and answers the envelope.
async fn check_cases(runtime: &str, host: &MemoryHost, plugin: &dyn Plugin) {
    for case in cases() {
        host.clear_records();
        let request = json!({"service": case.service, "method": case.method, "input": case.input});
        let answer = plugin
            .call(
                "call",
                request.to_string().as_bytes(),
                CallOptions::default(),
            )
            .await;
        let answer: Value = match answer {
            Ok(answer) => serde_json::from_slice(&answer).unwrap(),
            Err(SandboxError::Timeout { .. }) if matches!(case.expect, Expect::Timeout) => {
                continue;
            }
            Err(e) => panic!("{runtime}, {}: the call failed: {e}", case.name),
        };
        match &case.expect {
            Expect::Timeout => {
                assert_eq!(answer["error"]["kind"], "timeout", "{runtime}: {answer}");
                let message = answer["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    message.contains("service `org.stuck` did not finish"),
                    "{runtime}: {message}"
                );
            }
            Expect::Ok(value) => {
                assert_eq!(answer, json!({"ok": value}), "{runtime}, {}", case.name)
            }
            Expect::Error(kind, texts) => {
                assert_eq!(
                    answer["error"]["kind"], *kind,
                    "{runtime}, {}: {answer}",
                    case.name
                );
                let message = answer["error"]["message"].as_str().unwrap_or_default();
                for text in *texts {
                    assert!(
                        message.contains(text),
                        "{runtime}, {}: {message:?} lacks {text:?}",
                        case.name
                    );
                }
            }
        }
        let denials = host.denials();
        match case.denied {
            Some(kind) => {
                assert_eq!(denials.len(), 1, "{runtime}, {}: {denials:?}", case.name);
                let denial = &denials[0].denial;
                assert_eq!(denial.permission, kind, "{runtime}, {}", case.name);
                assert!(
                    denial.attempted.starts_with("call service `"),
                    "{runtime}, {}: {denial:?}",
                    case.name
                );
            }
            None => assert!(denials.is_empty(), "{runtime}, {}: {denials:?}", case.name),
        }
    }
}

/// A native plugin whose `call` function calls a host service.
struct NativeCaller;

#[async_trait]
impl NativePlugin for NativeCaller {
    async fn activate(&self, _cx: &NativeContext, _config: &Value) -> Result<(), PluginError> {
        Ok(())
    }

    async fn call(
        &self,
        cx: &NativeContext,
        function: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, PluginError> {
        if function != "call" {
            return Err(PluginError::new("unknown-function", function));
        }
        let request: Value = serde_json::from_slice(input)
            .map_err(|e| PluginError::new("bad-input", e.to_string()))?;
        let answer = match cx
            .call_service(
                request["service"].as_str().unwrap_or_default(),
                request["method"].as_str().unwrap_or_default(),
                request["input"].clone(),
            )
            .await
        {
            Ok(output) => json!({"ok": output}),
            Err(error) => json!({"error": {"kind": kind(&error), "message": error.to_string()}}),
        };
        Ok(answer.to_string().into_bytes())
    }
}

/// The error kinds as Extism's envelope spells them.
fn kind(error: &HostError) -> &'static str {
    match error {
        HostError::PermissionDenied(_) => "permission_denied",
        HostError::QuotaExceeded(_) => "quota_exceeded",
        HostError::Timeout(_) => "timeout",
        HostError::InvalidInput(_) => "invalid_input",
        HostError::Unavailable(_) => "unavailable",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_plugins_call_host_services_through_the_boundary() {
    let runtime = NativeRuntime::new(SandboxConfig::default());
    runtime.register("caller", || NativeCaller);
    let mut manifest = tenon_manifest::parse(
        r#"
manifest_version = 1
[plugin]
id = "acme/caller"
name = "Caller"
version = "1.0.0"
[runtime]
kind = "native"
entry = "caller"
"#,
        Format::Toml,
        &ValidationContext::default(),
    )
    .into_result()
    .unwrap_or_else(|d| panic!("{d:?}"));
    grant(&mut manifest);
    let host = Arc::new(MemoryHost::new().with_services(services()));
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
    plugin.start(&json!({})).await.unwrap();
    check_cases("native", &host, &*plugin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extism_plugins_call_host_services_through_the_boundary() {
    let mut harness = Harness::new(&DEDICATED);
    harness.host = Arc::new(MemoryHost::new().with_services(services()));
    let (mut manifest, module) = suite::fixtures::built("extism-services");
    grant(&mut manifest);
    let plugin = harness
        .runtime
        .load(harness.request(manifest, module, "t"))
        .await
        .unwrap();
    plugin.start(&json!({})).await.unwrap();
    check_cases("extism", &harness.host, &*plugin).await;
}
