//! The facade of Tenon and the one API boundary for hosts.
//!
//! [`PluginEngine`] ties the layers together: it reads manifests
//! (`tenon-manifest`), resolves dependencies (`tenon-resolver`), keeps
//! everything durable in a registry (`tenon-registry`), runs plugin code in
//! the sandbox (`tenon-sandbox`), wires plugins into the host's extension
//! points (`tenon-hooks`), measures them (`tenon-metrics`) and installs
//! package archives (`tenon-marketplace`).
//!
//! It owns the plugin lifecycle ([`lifecycle`]: one state machine, enforced
//! here and nowhere else, every transition stored as an event and announced
//! on the bus), config gating, permission grants, activation in dependency
//! order (lazily on first use when the manifest asks), upgrade and rollback
//! with state carried over, boot from the registry, safe mode, hot reload,
//! tenants, fleets (engines sharing a PostgreSQL registry converge through
//! its change feed), the crash guard's decisions, and doctor reports.
//!
//! Hosts depend on this crate alone and find everything they need in its
//! re-exports; features pass through to the layers: `sqlite` (default),
//! `postgres` and `memory` registries; `component` (default), `extism` and
//! `native` (default) runtimes; `prometheus`.
//!
//! # Example
//!
//! ```no_run
//! use serde_json::json;
//! use tenon_engine::{GrantRequest, PluginEngine, PluginId, agent_runner_hooks};
//!
//! # async fn demo() -> tenon_engine::Result<()> {
//! let engine = PluginEngine::builder()
//!     .registry(".tenon/registry.db")
//!     .hooks(agent_runner_hooks())
//!     .build()
//!     .await?;
//! let report = engine.install("plugins/moderator").await?;
//! let id: PluginId = report.id.clone();
//! engine.set_config(&id, "blocked_words", json!(["secret"])).await?;
//! engine.grant(&id, GrantRequest::all("operator")).await?;
//! engine.enable(&id).await?;
//! let outcome = engine
//!     .dispatch("response.pre_deliver", &engine.context(), json!({ "content": "a secret" }))
//!     .await?;
//! assert!(outcome.is_blocked());
//! # Ok(())
//! # }
//! ```

mod activate;
mod background;
mod boot;
mod builder;
mod config;
mod denials;
mod doctor;
mod engine;
mod error;
pub mod grants;
mod host;
pub mod lifecycle;
mod market;
mod observe;
mod ops;
mod publisher;
mod receipts;
mod reload;
mod resources;
mod routes;
mod slot;
mod source;
mod specs;
mod tenant;
mod tokens;
mod trust;

pub use activate::EVENT_FUNCTION;
pub use background::PruneReport;
pub use boot::BootReport;
pub use builder::{BootFailures, ENVIRONMENT_ENV, EngineBuilder, SAFE_MODE_ENV};
pub use config::{DenialLogLimits, EventRetention, GrantPolicy, HostProfile, KvLimits, Paths};
pub use doctor::{DoctorReport, HostSection, PluginDiagnosis, RegistrySection};
pub use engine::PluginEngine;
pub use error::{EngineError, PublisherMismatch, Result};
pub use host::DEFAULT_KV_QUOTA;
pub use market::{AvailableUpdate, MarketPlan, MarketplaceOptions, PlannedPlugin};
pub use observe::StoredStats;
pub use ops::{
    ConfigReport, DisableOptions, GrantRequest, InstallReport, PermissionReport, Preview,
    RevokeReport, UninstallOptions, UpgradeReport,
};
pub use publisher::{
    BOUND_BY_FIRST_SIGNATURE, BOUND_BY_POLICY, BOUND_BY_ROTATION, LEFTOVERS_PURGED, Leftovers,
    PackageCheck, PublisherBinding,
};
pub use receipts::receipts_from_events;
pub use reload::{ReloadReport, WatchHandle};
pub use routes::EndpointRoutes;
pub use source::{Discovered, HostPlugin, InstallSource, UploadedPackage};
pub use specs::agent_runner_hooks;
pub use tokens::{API_EVENT_KIND, CreatedToken, Role, TokenInfo};
pub use trust::{Checked, RuntimePosture, TrustRecord};

// What hosts need from the layers, re-exported so that they depend on this
// crate alone.
pub use tenon_hooks::{
    BusItem, Causation, DEFAULT_MAX_CAUSATION_DEPTH, DispatchConfig, DispatchOutcome, ErrorKind,
    Event as BusEvent, EventBus, FailPolicy, HandlerError, HandlerInfo, HookAction, HookContext,
    HookReceipt, HookSpec, MAX_CAUSATION_DEPTH, ReceiptStatus, Subscription,
};
pub use tenon_manifest::{
    EndpointDecl, Manifest, Permissions, PluginId, RateLimit, Version, VersionReq,
};
pub use tenon_marketplace::catalog::{Category, Listing, Popular, SearchPage, SearchQuery, Sort};
pub use tenon_marketplace::{KeyRotation, TrustLevel, TrustPolicy};
#[cfg(feature = "prometheus")]
pub use tenon_metrics::prometheus;
pub use tenon_metrics::{HealthStatus, HostCounters, PluginStats, ResourceUsage, TelemetryConfig};
pub use tenon_registry::{
    DeleteReport, Event, EventCursor, EventKind, EventOrder, EventPage, EventQuery, EventStatus,
    LastError, LogLevel, LogPage, LogQuery, LogRecord, PluginRecord, PluginState, RegistryError,
    RegistryOptions, SecretKey, SourceKind, TenantId, VersionRecord,
};
pub use tenon_sandbox::{
    Caller, EndpointRequest, EndpointResponse, FairnessLimits, FairnessReport, HostServices,
    InstanceUsage, MethodSpec, SandboxConfig, SandboxError, ServiceDefinitionError, ServiceError,
    ServiceHandler, ServiceMethod, ServicePermission, service_fn,
};
#[cfg(feature = "native")]
pub use tenon_sandbox::{
    HookContextData, HookResponse, NativeContext, NativePlugin, NativeRuntime, PluginError,
};
#[cfg(feature = "process")]
pub use tenon_sandbox::{ProcessConfig, ProcessFailure, ProcessRuntime};
