//! The one place that talks to the host: the WIT imports in the WebAssembly
//! build, and a stand-in on other targets (so the crate, and plugin crates,
//! compile and unit-test natively), where every request answers
//! [`HostError::Unavailable`] and logs go to stderr.

use crate::HostError;
use crate::host::http::{Request, Response};
use crate::host::log::Level;

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::export::bindings::tenon::plugin::{host, types};

    fn error(e: types::HostError) -> HostError {
        match e {
            types::HostError::PermissionDenied(s) => HostError::PermissionDenied(s),
            types::HostError::QuotaExceeded(s) => HostError::QuotaExceeded(s),
            types::HostError::Timeout(s) => HostError::Timeout(s),
            types::HostError::InvalidInput(s) => HostError::InvalidInput(s),
            types::HostError::Unavailable(s) => HostError::Unavailable(s),
        }
    }

    pub(crate) fn log(level: Level, message: &str, fields: &[(String, String)]) {
        let level = match level {
            Level::Trace => types::LogLevel::Trace,
            Level::Debug => types::LogLevel::Debug,
            Level::Info => types::LogLevel::Info,
            Level::Warn => types::LogLevel::Warn,
            Level::Error => types::LogLevel::Error,
        };
        host::log(level, message, fields);
    }

    pub(crate) fn config_get(key: &str) -> Result<Option<String>, HostError> {
        host::config_get(key).map_err(error)
    }

    pub(crate) fn kv_get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
        host::kv_get(key).map_err(error)
    }

    pub(crate) fn kv_set(key: &str, value: &[u8]) -> Result<(), HostError> {
        host::kv_set(key, value).map_err(error)
    }

    pub(crate) fn kv_delete(key: &str) -> Result<(), HostError> {
        host::kv_delete(key).map_err(error)
    }

    pub(crate) fn kv_list(prefix: &str) -> Result<Vec<String>, HostError> {
        host::kv_list(prefix).map_err(error)
    }

    pub(crate) fn http_request(request: Request) -> Result<Response, HostError> {
        let request = types::HttpRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
        };
        host::http_send(&request)
            .map(|r| Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
            })
            .map_err(error)
    }

    pub(crate) fn emit_event(topic: &str, payload: &str) -> Result<(), HostError> {
        host::emit_event(topic, payload).map_err(error)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;

    /// Inside a process plugin's call, the host is reached over its socket.
    #[cfg(feature = "process")]
    macro_rules! via_process {
        ($f:ident($($arg:expr),*)) => {
            if crate::process::in_call() {
                return crate::process::$f($($arg),*);
            }
        };
    }
    #[cfg(not(feature = "process"))]
    macro_rules! via_process {
        // Without the process feature there is no host to forward to; the
        // arguments are only read so the fallbacks below compile cleanly.
        ($f:ident($($arg:expr),*)) => {
            $(let _ = &$arg;)*
        };
    }

    fn unavailable<T>() -> Result<T, HostError> {
        Err(HostError::Unavailable(
            "not running inside a Tenon host: host calls work only in the WebAssembly build \
             (test plugins under the mock host of the `testing` feature) or in a process \
             plugin's call (feature `process`)"
                .to_owned(),
        ))
    }

    #[allow(clippy::print_stderr)]
    pub(crate) fn log(level: Level, message: &str, fields: &[(String, String)]) {
        via_process!(log(level, message, fields));
        let mut line = format!("[{}] {message}", level.as_str());
        for (key, value) in fields {
            line.push_str(&format!(" {key}={value}"));
        }
        eprintln!("{line}");
    }

    pub(crate) fn config_get(key: &str) -> Result<Option<String>, HostError> {
        via_process!(config_get(key));
        unavailable()
    }

    pub(crate) fn kv_get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
        via_process!(kv_get(key));
        unavailable()
    }

    pub(crate) fn kv_set(key: &str, value: &[u8]) -> Result<(), HostError> {
        via_process!(kv_set(key, value));
        unavailable()
    }

    pub(crate) fn kv_delete(key: &str) -> Result<(), HostError> {
        via_process!(kv_delete(key));
        unavailable()
    }

    pub(crate) fn kv_list(prefix: &str) -> Result<Vec<String>, HostError> {
        via_process!(kv_list(prefix));
        unavailable()
    }

    pub(crate) fn http_request(request: Request) -> Result<Response, HostError> {
        #[cfg(feature = "process")]
        if crate::process::in_call() {
            return crate::process::http_request(request);
        }
        let _ = request;
        unavailable()
    }

    pub(crate) fn emit_event(topic: &str, payload: &str) -> Result<(), HostError> {
        via_process!(emit_event(topic, payload));
        unavailable()
    }
}

pub(crate) use imp::*;
