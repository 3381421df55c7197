//! The gRPC contract of Tenon's out-of-process plugins.
//!
//! Owns the Rust code generated from `proto/tenon/plugin/v1/plugin.proto`
//! ([`v1`]: the `Runner` service a plugin serves and the `HostApi` service
//! its host serves back) and `proto/grpc/health/v1/health.proto`
//! ([`health`]), and the start-up [`handshake`]: the environment a host
//! gives a plugin process and the one stdout line the plugin answers with.
//!
//! It owns no process, socket or permission: the host side lives in
//! `tenon-sandbox` (feature `process`), the guest side in `tenon-pdk`
//! (feature `process`). Both depend on it; it depends on no Tenon crate.
//!
//! The generated files are committed (`src/gen/`) so that building needs no
//! protobuf compiler; `cargo xtask proto` regenerates them with `protox`
//! and xtask's tests fail when they are stale.

pub mod handshake;

/// `tenon.plugin.v1`: the `Runner` and `HostApi` services and their messages.
#[allow(
    missing_docs,
    unreachable_pub,
    unused_qualifications,
    rust_2018_idioms,
    clippy::all
)]
pub mod v1 {
    include!("gen/tenon.plugin.v1.rs");
}

/// `grpc.health.v1`: the standard health checking service.
#[allow(
    missing_docs,
    unreachable_pub,
    unused_qualifications,
    rust_2018_idioms,
    clippy::all
)]
pub mod health {
    include!("gen/grpc.health.v1.rs");
}

pub use prost;
pub use tonic;
