//! Every route of the admin API in one table: its method, path, the role
//! it needs, and what it does. The router is built from it, the OpenAPI
//! document is generated from it, and the tests walk it, so a route cannot
//! exist without its role and its documentation.

use serde_json::{Map, Value, json};
use tenon_engine::Role;

/// What a route reads from its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// Nothing.
    None,
    /// A JSON object.
    Json,
    /// A `.tenon` archive (`application/octet-stream`), with its signature
    /// file base64-encoded in the `X-Tenon-Signatures` header.
    Archive,
}

/// One route of the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// The HTTP method.
    pub method: &'static str,
    /// The path, with `{parameters}`.
    pub path: &'static str,
    /// Its operation id, also the `action` recorded for a change.
    pub operation: &'static str,
    /// The least role that may call it; `None` for a public route.
    pub role: Option<Role>,
    /// What it does.
    pub summary: &'static str,
    /// What it reads from its body.
    pub body: BodyKind,
}

impl RouteSpec {
    /// Whether calling it changes something (and is recorded as an event).
    pub fn mutates(&self) -> bool {
        self.method != "GET"
    }

    /// Whether it answers with a stream that lasts (no request timeout).
    pub fn streams(&self) -> bool {
        self.operation == "streamEvents"
    }
}

const fn route(
    method: &'static str,
    path: &'static str,
    operation: &'static str,
    role: Option<Role>,
    summary: &'static str,
    body: BodyKind,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        operation,
        role,
        summary,
        body,
    }
}

const V: Option<Role> = Some(Role::Viewer);
const O: Option<Role> = Some(Role::Operator);
const A: Option<Role> = Some(Role::Admin);
const PLUGIN: &str = "/api/v1/plugins/{publisher}/{name}";

/// Every route, in the order the OpenAPI document lists them.
pub const ROUTES: &[RouteSpec] = &[
    route(
        "GET",
        "/api/v1/openapi.json",
        "openapi",
        None,
        "This document.",
        BodyKind::None,
    ),
    route(
        "GET",
        "/api/v1/session",
        "getSession",
        V,
        "Who is calling: the token's name, its role and its tenant (the admin page shows what the role may do).",
        BodyKind::None,
    ),
    route(
        "GET",
        "/api/v1/plugins",
        "listPlugins",
        V,
        "The installed plugins; filters: state, enabled, runtime, q (text in id, name, description).",
        BodyKind::None,
    ),
    route(
        "POST",
        "/api/v1/plugins",
        "installPlugin",
        A,
        "Install a plugin: {\"path\": a directory or archive on the server} or {\"upload\": an upload id from POST /api/v1/uploads}.",
        BodyKind::Json,
    ),
    route(
        "POST",
        "/api/v1/uploads",
        "uploadPackage",
        A,
        "Upload a .tenon archive and preview it: what it is, what it asks for, whether it would be an upgrade. Nothing is stored in the registry; the upload id installs it for a while.",
        BodyKind::Archive,
    ),
    route(
        "GET",
        PLUGIN,
        "getPlugin",
        V,
        "A plugin: manifest, versions, config schema and values (secrets redacted), permissions declared, granted and missing, trust posture, health and statistics.",
        BodyKind::None,
    ),
    route(
        "DELETE",
        PLUGIN,
        "uninstallPlugin",
        A,
        "Uninstall a plugin that is not active; purge=all or a comma list of config, kv, events, files.",
        BodyKind::None,
    ),
    route(
        "PUT",
        "/api/v1/plugins/{publisher}/{name}/config",
        "configurePlugin",
        O,
        "Set and unset config keys: {\"set\": {key: value}, \"unset\": [key]}. Secret values are accepted and never returned.",
        BodyKind::Json,
    ),
    route(
        "POST",
        "/api/v1/plugins/{publisher}/{name}/grant",
        "grantPermissions",
        A,
        "Grant the current version's permissions: {\"all\": true} or {\"permissions\": [names as `tenon grant` reads them]}.",
        BodyKind::Json,
    ),
    route(
        "POST",
        "/api/v1/plugins/{publisher}/{name}/revoke",
        "revokePermissions",
        A,
        "Take permissions back: {\"permissions\": [names]}, every one when empty; a running plugin that needs them stops.",
        BodyKind::Json,
    ),
    route(
        "POST",
        "/api/v1/plugins/{publisher}/{name}/enable",
        "enablePlugin",
        O,
        "Enable (activate) a plugin, its dependencies first.",
        BodyKind::None,
    ),
    route(
        "POST",
        "/api/v1/plugins/{publisher}/{name}/disable",
        "disablePlugin",
        O,
        "Disable a plugin; {\"cascade\": true} also disables its active dependents.",
        BodyKind::Json,
    ),
    route(
        "POST",
        "/api/v1/plugins/{publisher}/{name}/upgrade",
        "upgradePlugin",
        A,
        "Install a new version and make it current: {\"path\"} or {\"upload\"}.",
        BodyKind::Json,
    ),
    route(
        "POST",
        "/api/v1/plugins/{publisher}/{name}/rollback",
        "rollbackPlugin",
        A,
        "Go back to an earlier installed version: {\"to\": version}, the previous one when absent.",
        BodyKind::Json,
    ),
    route(
        "GET",
        "/api/v1/hooks",
        "listHooks",
        V,
        "The host's hooks and the handlers registered on each.",
        BodyKind::None,
    ),
    route(
        "POST",
        "/api/v1/hooks/{hook}/dispatch",
        "dispatchHook",
        O,
        "Dispatch a hook for testing: {\"data\": JSON}; answers the final data, who blocked it and a receipt per handler.",
        BodyKind::Json,
    ),
    route(
        "GET",
        "/api/v1/events",
        "listEvents",
        V,
        "A page of the event log, newest first; filters: plugin, kind (comma list), after (cursor), limit.",
        BodyKind::None,
    ),
    route(
        "GET",
        "/api/v1/events/stream",
        "streamEvents",
        V,
        "The event log live, as server-sent events (id = cursor; resumes after Last-Event-ID or `after`).",
        BodyKind::None,
    ),
    route(
        "GET",
        "/api/v1/stats",
        "getStats",
        V,
        "Statistics per plugin from the stored hook receipts; filters: plugin, limit.",
        BodyKind::None,
    ),
    route(
        "GET",
        "/api/v1/doctor",
        "doctor",
        V,
        "What needs attention: every plugin and the registry.",
        BodyKind::None,
    ),
    route(
        "GET",
        "/metrics",
        "metrics",
        V,
        "Prometheus metrics (text exposition).",
        BodyKind::None,
    ),
];

/// The route with this operation id.
pub fn by_operation(operation: &str) -> Option<&'static RouteSpec> {
    ROUTES.iter().find(|r| r.operation == operation)
}

fn parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// The OpenAPI 3.1 document of [`ROUTES`].
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let mut operation = json!({
            "operationId": route.operation,
            "summary": route.summary,
            "parameters": parameters(route.path),
            "responses": {
                "200": {"description": "Success (JSON, or text for /metrics, or an event stream)."},
                "default": {
                    "description": "Failure",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                }
            },
            "x-tenon-role": route.role.map(Role::as_str),
        });
        if route.role.is_none() {
            operation["security"] = json!([]);
        }
        match route.body {
            BodyKind::None => {}
            BodyKind::Json => {
                operation["requestBody"] = json!({
                    "required": false,
                    "content": {"application/json": {"schema": {"type": "object"}}}
                });
            }
            BodyKind::Archive => {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
                });
            }
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[route.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tenon admin API",
            "version": "1",
            "description": "The plugin engine over HTTP. Bearer tokens carry a role (viewer < operator < admin; `tenon token create NAME --role ROLE`). Every change is recorded in the event log with the token's name. Errors are {\"error\": {code, category, exit_code, message}}, exit_code matching the tenon CLI's (1 refused, 2 usage or environment)."
        },
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "category", "exit_code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "category": {"enum": ["refused", "usage", "environment"]},
                                "exit_code": {"enum": [1, 2]},
                                "message": {"type": "string"}
                            }
                        }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_consistent() {
        let mut seen = std::collections::BTreeSet::new();
        for route in ROUTES {
            assert!(seen.insert(route.operation), "{} twice", route.operation);
            assert!(
                route.role.is_some() || route.operation == "openapi",
                "{} has no role",
                route.operation
            );
            assert_eq!(by_operation(route.operation), Some(route));
        }
        let doc = openapi();
        assert_eq!(
            doc["paths"][PLUGIN]["delete"]["x-tenon-role"],
            json!("admin")
        );
        assert_eq!(
            doc["paths"]["/api/v1/hooks/{hook}/dispatch"]["post"]["parameters"][0]["name"],
            json!("hook")
        );
    }
}
