//! The host side of `tenon:plugin/host@1.x`, defined by hand rather than by
//! `bindgen!` so that every argument is read where the plugin wrote it:
//! strings and lists arrive as [`WasmStr`] / [`WasmList`] (their bounds
//! checked, nothing copied), each size is checked against the host's limit,
//! and only then is anything copied or parsed. What a plugin hands over in
//! one host call is also capped as a whole by the store's hostcall fuel
//! (see [`crate::limits::transfer_limit`]).

use std::borrow::Cow;

use wasmtime::StoreContextMut;
use wasmtime::component::{ComponentType, Lift, Linker, WasmList, WasmStr};

use super::tenon::plugin::types::{HostError, HttpResponse, LogLevel};
use crate::boundary::{Boundary, CallScope, RequestSizes};
use crate::component::store::{StoreData, panic_message};
use crate::host::{HostError as BoundaryError, HttpRequest, LogLevel as BoundaryLevel};
use crate::limits;

/// The name of the `host` interface.
const HOST_INTERFACE: &str = "tenon:plugin/host@1.0.0";

type Store<'a> = StoreContextMut<'a, StoreData>;

/// The plugin's boundary and the call in progress, held across a host
/// request (both are `Sync`; the store's data as a whole is not).
fn parts<'a>(store: &'a Store<'_>) -> (&'a Boundary, &'a CallScope) {
    let data = store.data();
    (&data.boundary, &data.call)
}
type Pairs = WasmList<(WasmStr, WasmStr)>;

/// `http-request`, read in place.
#[derive(ComponentType, Lift)]
#[component(record)]
struct HttpRequestIn {
    method: WasmStr,
    url: WasmStr,
    headers: Pairs,
    body: WasmList<u8>,
}

/// Adds the functions of the `host` interface to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    let mut host = linker.instance(HOST_INTERFACE)?;
    host.func_wrap_async(
        "log",
        |store: Store<'_>, (level, message, fields): (LogLevel, WasmStr, Pairs)| {
            Box::new(async move {
                log(store, level, &message, &fields)?;
                Ok(())
            })
        },
    )?;
    host.func_wrap_async("config-get", |store: Store<'_>, (key,): (WasmStr,)| {
        Box::new(async move {
            let key = key.to_str(&store)?;
            let (boundary, call) = parts(&store);
            let value = boundary.config_get(call, &key).await;
            Ok((value.map(|v| v.map(|v| v.to_string())).map_err(host_error),))
        })
    })?;
    host.func_wrap_async("kv-get", |store: Store<'_>, (key,): (WasmStr,)| {
        Box::new(async move {
            let key = key.to_str(&store)?;
            let (boundary, call) = parts(&store);
            let value = boundary.kv_get(call, &key).await;
            Ok((value.map_err(host_error),))
        })
    })?;
    host.func_wrap_async(
        "kv-set",
        |store: Store<'_>, (key, value): (WasmStr, WasmList<u8>)| {
            Box::new(async move {
                let key = key.to_str(&store)?;
                let value = value.as_le_slice(&store);
                let (boundary, call) = parts(&store);
                let done = boundary.kv_set(call, &key, value).await;
                Ok((done.map_err(host_error),))
            })
        },
    )?;
    host.func_wrap_async("kv-delete", |store: Store<'_>, (key,): (WasmStr,)| {
        Box::new(async move {
            let key = key.to_str(&store)?;
            let (boundary, call) = parts(&store);
            let done = boundary.kv_delete(call, &key).await;
            Ok((done.map_err(host_error),))
        })
    })?;
    host.func_wrap_async("kv-list", |store: Store<'_>, (prefix,): (WasmStr,)| {
        Box::new(async move {
            let prefix = prefix.to_str(&store)?;
            let (boundary, call) = parts(&store);
            let keys = boundary.kv_list(call, &prefix).await;
            Ok((keys.map_err(host_error),))
        })
    })?;
    host.func_wrap_async(
        "http-send",
        |mut store: Store<'_>, (request,): (HttpRequestIn,)| {
            Box::new(async move {
                let request = match read_request(&mut store, &request) {
                    Ok(request) => request,
                    Err(refused) => return Ok((Err(refused),)),
                };
                let (boundary, call) = parts(&store);
                let response = boundary.http_request(call, request).await;
                Ok((response
                    .map(|r| HttpResponse {
                        status: r.status,
                        headers: r.headers,
                        body: r.body,
                    })
                    .map_err(host_error),))
            })
        },
    )?;
    host.func_wrap_async(
        "emit-event",
        |store: Store<'_>, (topic, payload): (WasmStr, WasmStr)| {
            Box::new(async move {
                let topic = topic.to_str(&store)?;
                let payload = payload.to_str(&store)?;
                let (boundary, call) = parts(&store);
                let done = boundary.emit_event_json(call, &topic, &payload).await;
                Ok((done.map_err(host_error),))
            })
        },
    )?;
    Ok(())
}

/// `log`: keeps at most `max_log_line` bytes of the message and of each of
/// the first `max_log_fields` fields; the rest is never copied.
fn log(
    mut store: Store<'_>,
    level: LogLevel,
    message: &WasmStr,
    fields: &Pairs,
) -> wasmtime::Result<()> {
    let (max_line, max_fields) = {
        let config = store.data().boundary.config();
        (config.max_log_line, config.max_log_fields)
    };
    let pairs: Vec<_> = fields.iter(&mut store)?.take(max_fields).collect();
    let mut kept = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let (key, value) = pair?;
        kept.push((
            limits::cut(&key.to_str(&store)?, max_line).into_owned(),
            limits::cut(&value.to_str(&store)?, max_line).into_owned(),
        ));
    }
    let panic = {
        let message = message.to_str(&store)?;
        let (boundary, call) = parts(&store);
        boundary.log(
            call,
            level_of(level),
            &limits::cut(&message, max_line),
            &kept,
        );
        kept.iter()
            .any(|(k, v)| k == "panic" && v == "true")
            .then(|| {
                panic_message(&message).unwrap_or_else(|| limits::cut(&message, 1024).into_owned())
            })
    };
    if let Some(panic) = panic {
        store.data_mut().panic = Some(limits::cut_owned(panic, max_line));
    }
    Ok(())
}

/// Reads an `http-request` after checking its sizes.
fn read_request(store: &mut Store<'_>, request: &HttpRequestIn) -> Result<HttpRequest, HostError> {
    let mut sizes = RequestSizes {
        headers: request.headers.len(),
        body: request.body.len(),
        ..RequestSizes::default()
    };
    let (method, url) = {
        let method = text(store, &request.method)?;
        let url = text(store, &request.url)?;
        sizes.method = method.len();
        sizes.url = url.len();
        parts(store)
            .0
            .check_request_sizes(sizes)
            .map_err(host_error)?;
        (method.into_owned(), url.into_owned())
    };
    let malformed =
        |e: wasmtime::Error| HostError::InvalidInput(format!("the request's headers: {e}"));
    let pairs: Vec<_> = request
        .headers
        .iter(&mut *store)
        .map_err(malformed)?
        .collect();
    let mut headers = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let (name, value) = pair.map_err(malformed)?;
        let (name, value) = (text(store, &name)?, text(store, &value)?);
        sizes.header_bytes += name.len() + value.len();
        parts(store)
            .0
            .check_request_sizes(sizes)
            .map_err(host_error)?;
        headers.push((name.into_owned(), value.into_owned()));
    }
    Ok(HttpRequest {
        method,
        url,
        headers,
        body: request.body.as_le_slice(&*store).to_vec(),
    })
}

/// A string argument, read in place.
fn text<'a>(store: &'a Store<'_>, text: &WasmStr) -> Result<Cow<'a, str>, HostError> {
    text.to_str(store)
        .map_err(|e| HostError::InvalidInput(format!("a string that is not UTF-8: {e}")))
}

fn level_of(level: LogLevel) -> BoundaryLevel {
    match level {
        LogLevel::Trace => BoundaryLevel::Trace,
        LogLevel::Debug => BoundaryLevel::Debug,
        LogLevel::Info => BoundaryLevel::Info,
        LogLevel::Warn => BoundaryLevel::Warn,
        LogLevel::Error => BoundaryLevel::Error,
    }
}

pub(super) fn host_error(e: BoundaryError) -> HostError {
    match e {
        BoundaryError::PermissionDenied(m) => HostError::PermissionDenied(m),
        BoundaryError::QuotaExceeded(m) => HostError::QuotaExceeded(m),
        BoundaryError::Timeout(m) => HostError::Timeout(m),
        BoundaryError::InvalidInput(m) => HostError::InvalidInput(m),
        BoundaryError::Unavailable(m) => HostError::Unavailable(m),
    }
}
