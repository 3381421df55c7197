//! The admin API's handlers, one per row of [`ROUTES`](crate::ROUTES).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Extension, Json};
use base64::Engine as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tenon_engine::{
    DisableOptions, GrantRequest, InstallSource, PluginEngine, PluginId, PluginRecord, TrustRecord,
    UninstallOptions, UploadedPackage, Version,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{ApiResult, HttpError};
use crate::{ApiState, Caller, Shared};

/// The header carrying an upload's signature file, base64-encoded.
pub(crate) const SIGNATURES_HEADER: &str = "x-tenon-signatures";
/// The header naming an upload (a file name), for messages and records.
pub(crate) const FILENAME_HEADER: &str = "x-tenon-filename";

/// The handler of `operation`, for `filter`.
pub(crate) fn method_router(operation: &str, filter: MethodFilter) -> MethodRouter<Arc<ApiState>> {
    match operation {
        "openapi" => on(filter, openapi),
        "getSession" => on(filter, session),
        "listPlugins" => on(filter, list_plugins),
        "installPlugin" => on(filter, install),
        "uploadPackage" => on(filter, upload),
        "getPlugin" => on(filter, get_plugin),
        "uninstallPlugin" => on(filter, uninstall),
        "configurePlugin" => on(filter, configure),
        "grantPermissions" => on(filter, grant),
        "revokePermissions" => on(filter, revoke),
        "enablePlugin" => on(filter, enable),
        "disablePlugin" => on(filter, disable),
        "upgradePlugin" => on(filter, upgrade),
        "rollbackPlugin" => on(filter, rollback),
        "listHooks" => on(filter, list_hooks),
        "dispatchHook" => on(filter, dispatch),
        "listEvents" => on(filter, crate::events::list),
        "streamEvents" => on(filter, crate::events::stream),
        "getStats" => on(filter, stats),
        "doctor" => on(filter, doctor),
        "metrics" => on(filter, metrics),
        other => unreachable!("no handler for the route table's `{other}`"),
    }
}

pub(crate) fn timestamp(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// A JSON body; an empty body reads as the type's default.
pub(crate) fn body<T: DeserializeOwned + Default>(
    bytes: Result<Bytes, BytesRejection>,
    limit: usize,
) -> ApiResult<T> {
    let bytes = bytes.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            HttpError::BodyTooLarge { limit }
        } else {
            HttpError::BadRequest(format!("cannot read the request body: {}", e.body_text()))
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        HttpError::BadRequest(format!(
            "the request body is not the JSON this route reads: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    q.map(|Query(q)| q)
        .map_err(|e| HttpError::BadRequest(format!("bad query: {}", e.body_text())))
}

pub(crate) fn plugin_id(publisher: &str, name: &str) -> ApiResult<PluginId> {
    let text = format!("{publisher}/{name}");
    PluginId::new(&text).map_err(|e| {
        HttpError::BadRequest(format!(
            "`{}` is not a plugin id: {e}",
            text.escape_default()
        ))
    })
}

/// A plugin id given as a query parameter (`?plugin=`).
pub(crate) fn plugin_param(text: &str) -> ApiResult<PluginId> {
    PluginId::new(text)
        .map_err(|e| HttpError::BadRequest(format!("plugin: `{}`: {e}", text.escape_default())))
}

fn summary(record: &PluginRecord) -> Value {
    let manifest = &record.manifest;
    json!({
        "id": record.id.as_str(),
        "name": manifest.plugin.name,
        "version": record.version.to_string(),
        "description": manifest.plugin.description,
        "state": record.state.as_str(),
        "enabled": record.enabled,
        "runtime": manifest.runtime.kind.as_str(),
        "source": {"kind": record.source.kind.as_str(), "reference": record.source.reference},
        "trust": TrustRecord::from_stored(record.verification.as_ref()),
        "last_error": record.last_error.as_ref().map(|e| json!({"code": e.code, "message": e.message})),
        "updated_at": timestamp(record.updated_at),
    })
}

async fn openapi() -> Json<Value> {
    Json(crate::routes::openapi())
}

async fn session(
    State(state): Shared,
    Extension(Caller(caller)): Extension<Caller>,
) -> Json<Value> {
    Json(json!({
        "name": caller.name,
        "role": caller.role.as_str(),
        "tenant": state.engine.tenant().as_str(),
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    enabled: Option<bool>,
    runtime: Option<String>,
    q: Option<String>,
}

async fn list_plugins(
    State(state): Shared,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let q = query(q)?;
    let wanted_state = q
        .state
        .as_deref()
        .map(|s| {
            s.parse::<tenon_engine::PluginState>()
                .map_err(|e| HttpError::BadRequest(format!("state: {e}")))
        })
        .transpose()?;
    let text = q.q.as_deref().map(str::to_lowercase);
    let plugins: Vec<Value> = state
        .engine
        .list()
        .await?
        .iter()
        .filter(|r| wanted_state.is_none_or(|s| r.state == s))
        .filter(|r| q.enabled.is_none_or(|e| r.enabled == e))
        .filter(|r| {
            q.runtime
                .as_deref()
                .is_none_or(|k| r.manifest.runtime.kind.as_str() == k)
        })
        .filter(|r| {
            text.as_deref().is_none_or(|t| {
                let p = &r.manifest.plugin;
                r.id.as_str().to_lowercase().contains(t)
                    || p.name.to_lowercase().contains(t)
                    || p.description.to_lowercase().contains(t)
            })
        })
        .map(summary)
        .collect();
    Ok(Json(json!({ "plugins": plugins })))
}

async fn detail(engine: &PluginEngine, id: &PluginId) -> ApiResult<Value> {
    let record = engine.record(id).await?;
    let versions: Vec<Value> = engine
        .versions(id)
        .await?
        .iter()
        .map(|v| {
            json!({
                "version": v.version.to_string(),
                "current": v.current,
                "installed_at": timestamp(v.installed_at),
                "trust": TrustRecord::from_stored(v.verification.as_ref()),
                "permissions": tenon_engine::grants::describe(&v.manifest.permissions),
                "config_keys": v.manifest.config.fields.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(),
                "hooks": v.manifest.hooks.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let values = engine.config(id).await?;
    let set: Map<String, Value> = values.clone().into_iter().collect();
    let spec = &record.manifest.config;
    let stored = engine.stored_stats(Some(id), 1000).await?;
    let mut out = summary(&record);
    out["manifest"] = serde_json::to_value(&record.manifest).unwrap_or(Value::Null);
    out["versions"] = json!(versions);
    out["config"] = json!({
        "schema": spec,
        "values": values,
        "missing": spec.missing_required(&set),
    });
    out["permissions"] = json!(engine.permissions(id).await?);
    out["posture"] =
        json!(TrustRecord::from_stored(record.verification.as_ref()).map(|t| t.posture));
    out["stats"] = json!(stored.plugins.into_iter().find(|s| s.plugin == id.as_str()));
    out["live_stats"] = json!(engine.stats(id));
    Ok(out)
}

async fn get_plugin(
    State(state): Shared,
    Path((publisher, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let id = plugin_id(&publisher, &name)?;
    Ok(Json(detail(&state.engine, &id).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceBody {
    path: Option<String>,
    upload: Option<String>,
}

impl SourceBody {
    fn source(&self, state: &ApiState) -> ApiResult<InstallSource> {
        match (&self.path, &self.upload) {
            (Some(path), None) => Ok(InstallSource::path(path)),
            (None, Some(upload)) => Ok(InstallSource::Upload(state.uploads.get(upload)?)),
            _ => Err(HttpError::BadRequest(
                "name the package with exactly one of \"path\" (on the server) and \"upload\" (an id from POST /api/v1/uploads)".to_owned(),
            )),
        }
    }

    fn done(&self, state: &ApiState) {
        if let Some(upload) = &self.upload {
            state.uploads.remove(upload);
        }
    }
}

async fn install(
    State(state): Shared,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body: SourceBody = body(bytes, state.config.max_body_bytes)?;
    let report = state.engine.install(body.source(&state)?).await?;
    body.done(&state);
    Ok((StatusCode::CREATED, Json(json!(report))).into_response())
}

async fn upload(
    State(state): Shared,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let limit = state.config.max_upload_bytes;
    let archive = bytes.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            HttpError::BodyTooLarge { limit }
        } else {
            HttpError::BadRequest(format!("cannot read the upload: {}", e.body_text()))
        }
    })?;
    if archive.is_empty() {
        return Err(HttpError::BadRequest(
            "the upload is empty: send the .tenon archive as the body".to_owned(),
        ));
    }
    let signatures = match headers.get(SIGNATURES_HEADER) {
        None => None,
        Some(value) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(value.as_bytes())
                .map_err(|e| {
                    HttpError::BadRequest(format!(
                        "the {SIGNATURES_HEADER} header is not base64 of a signature file: {e}"
                    ))
                })?,
        ),
    };
    let name = headers
        .get(FILENAME_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().filter(|c| !c.is_control()).take(128).collect())
        .unwrap_or_else(|| "package.tenon".to_owned());
    let package = UploadedPackage {
        name,
        archive: archive.to_vec(),
        signatures,
    };
    let preview = state.engine.preview(package.clone()).await?;
    let id = state.uploads.put(package)?;
    Ok(Json(json!({
        "upload": id,
        "expires_in_secs": state.config.upload_ttl.as_secs(),
        "preview": preview,
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UninstallQuery {
    purge: Option<String>,
}

fn purge_options(text: Option<&str>) -> ApiResult<UninstallOptions> {
    let mut options = UninstallOptions::default();
    for part in text
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match part {
            "all" => options.purge_data = true,
            "config" => options.purge_config = true,
            "kv" => options.purge_kv = true,
            "events" => options.purge_events = true,
            "files" => options.purge_files = true,
            other => {
                return Err(HttpError::BadRequest(format!(
                    "purge: `{}` is not one of all, config, kv, events, files",
                    other.escape_default()
                )));
            }
        }
    }
    Ok(options)
}

async fn uninstall(
    State(state): Shared,
    Path((publisher, name)): Path<(String, String)>,
    q: Result<Query<UninstallQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let id = plugin_id(&publisher, &name)?;
    let options = purge_options(query(q)?.purge.as_deref())?;
    let report = state.engine.uninstall(&id, options).await?;
    Ok(Json(json!({
        "id": id.as_str(),
        "removed": {
            "versions": report.versions,
            "artifacts": report.artifacts,
            "config_keys": report.config_keys,
            "kv_entries": report.kv_entries,
            "events": report.events,
            "grants": report.grants,
        }
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    #[serde(default)]
    set: Map<String, Value>,
    #[serde(default)]
    unset: Vec<String>,
}

async fn configure(
    State(state): Shared,
    Path((publisher, name)): Path<(String, String)>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let id = plugin_id(&publisher, &name)?;
    let body: ConfigBody = body(bytes, state.config.max_body_bytes)?;
    if body.set.is_empty() && body.unset.is_empty() {
        return Err(HttpError::BadRequest(
            "nothing to change: send {\"set\": {key: value}} and/or {\"unset\": [key]}".to_owned(),
        ));
    }
    let report = state.engine.configure(&id, body.set, &body.unset).await?;
    Ok(Json(json!(report)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    #[serde(default)]
    all: bool,
    #[serde(default)]
    permissions: Vec<String>,
    version: Option<String>,
}

fn version(text: Option<&str>) -> ApiResult<Option<Version>> {
    text.map(|t| {
        Version::parse(t).map_err(|e| {
            HttpError::BadRequest(format!("`{}` is not a version: {e}", t.escape_default()))
        })
    })
    .transpose()
}

async fn grant(
    State(state): Shared,
    Extension(Caller(caller)): Extension<Caller>,
    Path((publisher, name)): Path<(String, String)>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let id = plugin_id(&publisher, &name)?;
    let body: GrantBody = body(bytes, state.config.max_body_bytes)?;
    let version = version(body.version.as_deref())?;
    let by = format!("token:{}", caller.name);
    match (body.all, body.permissions.is_empty()) {
        (true, true) => {
            state
                .engine
                .grant(
                    &id,
                    GrantRequest {
                        version,
                        permissions: None,
                        granted_by: by,
                    },
                )
                .await?;
        }
        (false, false) => {
            state
                .engine
                .grant_named(&id, version.as_ref(), &body.permissions, &by)
                .await?;
        }
        _ => {
            return Err(HttpError::BadRequest(
                "grant either {\"all\": true} or {\"permissions\": [names]}".to_owned(),
            ));
        }
    }
    Ok(Json(json!(state.engine.permissions(&id).await?)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default)]
    permissions: Vec<String>,
}

async fn revoke(
    State(state): Shared,
    Path((publisher, name)): Path<(String, String)>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let id = plugin_id(&publisher, &name)?;
    let body: RevokeBody = body(bytes, state.config.max_body_bytes)?;
    let report = state.engine.revoke(&id, &body.permissions).await?;
    Ok(Json(json!({
        "id": report.id.as_str(),
        "revoked": report.revoked,
        "remaining": report.remaining,
        "stopped": report.stopped,
    })))
}

async fn enable(
    State(state): Shared,
    Path((publisher, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let id = plugin_id(&publisher, &name)?;
    let record = state.engine.enable(&id).await?;
    Ok(Json(summary(&record)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DisableBody {
    #[serde(default)]
    cascade: bool,
}

async fn disable(
    State(state): Shared,
    Path((publisher, name)): Path<(String, String)>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let id = plugin_id(&publisher, &name)?;
    let body: DisableBody = body(bytes, state.config.max_body_bytes)?;
    let disabled = state
        .engine
        .disable(
            &id,
            DisableOptions {
                cascade: body.cascade,
            },
        )
        .await?;
    let disabled: Vec<&str> = disabled.iter().map(PluginId::as_str).collect();
    Ok(Json(json!({ "disabled": disabled })))
}

async fn upgrade(
    State(state): Shared,
    Path((publisher, name)): Path<(String, String)>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let id = plugin_id(&publisher, &name)?;
    let body: SourceBody = body(bytes, state.config.max_body_bytes)?;
    let source = body.source(&state)?;
    let offered = state.engine.preview(source.clone()).await?;
    if offered.id != id {
        return Err(HttpError::BadRequest(format!(
            "the package is {}, not {id}",
            offered.id
        )));
    }
    let report = state.engine.upgrade(source).await?;
    body.done(&state);
    Ok(Json(json!(report)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    to: Option<String>,
}

async fn rollback(
    State(state): Shared,
    Path((publisher, name)): Path<(String, String)>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let id = plugin_id(&publisher, &name)?;
    let body: RollbackBody = body(bytes, state.config.max_body_bytes)?;
    let to = version(body.to.as_deref())?;
    let report = state.engine.rollback(&id, to.as_ref()).await?;
    Ok(Json(json!(report)))
}

async fn list_hooks(State(state): Shared) -> Json<Value> {
    let mut handlers: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for handler in state.engine.handlers() {
        handlers
            .entry(handler.hook.clone())
            .or_default()
            .push(json!(handler));
    }
    let hooks: Vec<Value> = state
        .engine
        .hook_specs()
        .iter()
        .map(|spec| {
            json!({
                "name": spec.name,
                "mutable": spec.mutable,
                "can_block": spec.can_block,
                "default_timeout_ms": spec.default_timeout.as_millis() as u64,
                "handlers": handlers.remove(&spec.name).unwrap_or_default(),
            })
        })
        .collect();
    Json(json!({ "hooks": hooks }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DispatchBody {
    #[serde(default)]
    data: Value,
}

async fn dispatch(
    State(state): Shared,
    Path(hook): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body: DispatchBody = body(bytes, state.config.max_body_bytes)?;
    let engine = &state.engine;
    let outcome = engine.dispatch(&hook, &engine.context(), body.data).await?;
    Ok(Json(json!({
        "hook": hook,
        "data": outcome.data,
        "blocked": outcome.blocked,
        "stopped": outcome.stopped,
        "receipts": outcome.receipts,
        "elapsed_ms": outcome.elapsed.as_secs_f64() * 1000.0,
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    plugin: Option<String>,
    limit: Option<usize>,
}

async fn stats(
    State(state): Shared,
    q: Result<Query<StatsQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let q = query(q)?;
    let plugin = q.plugin.as_deref().map(plugin_param).transpose()?;
    let limit = q.limit.unwrap_or(10_000).clamp(1, 100_000);
    let stats = state.engine.stored_stats(plugin.as_ref(), limit).await?;
    Ok(Json(json!(stats)))
}

async fn doctor(State(state): Shared) -> ApiResult<Json<Value>> {
    Ok(Json(json!(state.engine.doctor().await?)))
}

async fn metrics(State(state): Shared) -> ApiResult<Response> {
    let render = state.config.metrics.as_ref().ok_or(HttpError::NoMetrics)?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(),
    )
        .into_response())
}
