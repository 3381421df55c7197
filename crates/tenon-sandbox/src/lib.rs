//! Running plugin code.
//!
//! This crate owns everything between a plugin's bytes and a result: the
//! runtime contract ([`Runtime`], [`Plugin`]), the runtimes that implement it
//! (component model on wasmtime, Extism, native Rust, and operating-system
//! processes over gRPC), resource limits,
//! instance pooling, fairness caps between tenants on live instances and
//! their memory, the compiled-module cache, and the host API
//! ([`HostApi`]) with its permission checks at the boundary.
//!
//! It does not own hooks (it answers one hook call at a time; ordering,
//! policies and budgets belong to `tenon-hooks`), storage (the embedder's
//! [`HostApi`] decides where KV and config live) or the plugin lifecycle
//! (`tenon-engine`). It depends on `tenon-manifest` and `tenon-types`, and
//! with the `process` feature on `tenon-plugin-proto` (the gRPC contract).
//!
//! Hosts normally reach it through `tenon-engine`; depend on it directly to
//! run plugins without the rest of Tenon.

pub mod boundary;
#[cfg(feature = "component")]
pub mod component;
mod config;
mod error;
// Only the WebAssembly runtimes lease instances.
#[cfg(feature = "extism")]
pub mod extism;
#[cfg_attr(not(any(feature = "component", feature = "extism")), allow(dead_code))]
mod fairness;
mod host;
mod limits;
mod memory_host;
#[cfg(feature = "native")]
pub mod native;
#[cfg(any(feature = "component", feature = "extism"))]
mod private;
#[cfg(feature = "process")]
pub mod process;
mod runtime;
pub mod services;
mod stats;

#[cfg(feature = "extism")]
pub use self::extism::{CallThreading, ExtismConfig, ExtismRuntime};
pub use boundary::{Boundary, CallScope};
#[cfg(feature = "component")]
pub use component::{ComponentConfig, ComponentPlugin, ComponentRuntime};
pub use config::SandboxConfig;
pub use error::{ProcessFailure, SandboxError, TrapKind};
pub use fairness::{
    DEFAULT_POOL_INSTANCES, Fairness, FairnessLimits, FairnessReport, InstanceUsage,
};
pub use host::{
    Caller, HostApi, HostError, HttpRequest, HttpResponse, LogLevel, PermissionDenial,
    SandboxObserver,
};
pub use limits::log_text;
pub use memory_host::{DenialRecord, EventRecord, LogRecord, MemoryHost};
#[cfg(feature = "native")]
pub use native::{NativeContext, NativePlugin, NativeRuntime, PluginError};
#[cfg(feature = "process")]
pub use process::{ProcessConfig, ProcessPlugin, ProcessRuntime, SandboxLayer};
pub use runtime::{
    CallOptions, EndpointRequest, EndpointResponse, Health, HookCall, HookContextData,
    HookResponse, LoadRequest, Plugin, ResourceStats, Runtime, RuntimeCounters,
};
pub use services::{
    HostServices, MethodSpec, ServiceDefinitionError, ServiceError, ServiceHandler, ServiceMethod,
    ServicePermission, service_fn,
};
pub use stats::{HealthState, PluginStats};
pub use tenon_types::{Causation, CauseLink};
