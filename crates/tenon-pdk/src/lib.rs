//! The Rust SDK for Tenon plugin authors.
//!
//! A Tenon plugin written in Rust is a `cdylib` crate built for
//! `wasm32-wasip2`: a WebAssembly component for the `tenon:plugin@1.0.0` WIT
//! world (`wit/tenon-plugin-1.0.0/plugin.wit` in the Tenon repository). This
//! crate hides the WIT: implement [`Plugin`], export the type with
//! [`export!`], and use typed hook data ([`HookData`], [`hooks`]), typed
//! config ([`Config`]), [`HookAction`] builders and the host API
//! ([`host::log`], [`host::config`], [`host::kv`], [`host::http`],
//! [`host::events`]).
//!
//! This crate owns the guest side of the plugin contract only. Running
//! plugins is `tenon-sandbox`'s job; building them is `tenon-build`'s (and the
//! `tenon build` command's). With the `testing` feature it also offers a
//! mock host that builds a plugin and runs it for the plugin's own tests.
//!
//! # A complete plugin
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "shouter"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib", "rlib"]
//!
//! [dependencies]
//! tenon-pdk = { path = "…/tenon/crates/tenon-pdk" }
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `tenon.toml` (see `docs/manifest.md`):
//!
//! ```toml
//! manifest_version = 1
//!
//! [plugin]
//! id = "acme/shouter"
//! name = "Shouter"
//! version = "0.1.0"
//!
//! [runtime]
//! kind = "component"
//! module = "plugin.wasm"
//!
//! [permissions]
//! kv = { quota = "64KiB" }
//!
//! [[hooks]]
//! name = "response.pre_deliver"
//!
//! [[config.fields]]
//! key = "forbidden"
//! type = "array"
//! ```
//!
//! `src/lib.rs`:
//!
//! ```
//! use tenon_pdk::hooks::{self, ResponsePreDeliver};
//! use tenon_pdk::host::{kv, log};
//! use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, Plugin};
//!
//! struct Shouter {
//!     forbidden: Vec<String>,
//! }
//!
//! impl Plugin for Shouter {
//!     fn activate(config: Config) -> Result<Self, Error> {
//!         Ok(Self { forbidden: config.get_or("forbidden", Vec::new())? })
//!     }
//!
//!     fn handle_hook(
//!         &mut self,
//!         hook: &str,
//!         _context: &HookContext,
//!         data: HookData,
//!     ) -> Result<HookAction, Error> {
//!         if hook != hooks::RESPONSE_PRE_DELIVER {
//!             return Err(Error::unsupported_hook(hook));
//!         }
//!         let response: ResponsePreDeliver = data.parse()?;
//!         if let Some(word) = self.forbidden.iter().find(|w| response.content.contains(w.as_str())) {
//!             log::warn!("blocked a response containing `{word}`");
//!             return Ok(HookAction::block(format!("contains `{word}`")));
//!         }
//!         // State that outlives the instance goes to the host's KV store.
//!         let shouted: u64 = kv::get_json("shouted").unwrap_or_default().unwrap_or(0);
//!         let _ = kv::set_json("shouted", &(shouted + 1));
//!         HookAction::set("/content", response.content.to_uppercase())
//!     }
//!
//!     fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
//!         match function {
//!             "shout" => Ok(String::from_utf8_lossy(input).to_uppercase().into_bytes()),
//!             other => Err(Error::unknown_function(other)),
//!         }
//!     }
//! }
//!
//! tenon_pdk::export!(Shouter);
//! ```
//!
//! Build it with `tenon build` (or `cargo build --release --target
//! wasm32-wasip2` and copy `target/wasm32-wasip2/release/shouter.wasm` to
//! `plugin.wasm` beside `tenon.toml`), then `tenon install` the directory.
//!
//! # Semantics worth knowing
//!
//! - **State.** The SDK keeps one plugin value per WebAssembly instance,
//!   created by `activate`. Hosts pool instances (`limits.isolation =
//!   "reuse"`) or make one per call (`"fresh"`), so in-memory state is a
//!   cache; durable or shared state belongs in [`host::kv`]. To carry
//!   in-memory state across upgrades and hot reloads, implement
//!   [`Plugin::snapshot`] and [`Plugin::restore`].
//! - **Patches** are JSON merge patches (RFC 7396) of the hook data; the host
//!   rejects patches touching members the hook does not let plugins change
//!   ([`hooks::STANDARD`] lists them for the standard hooks).
//! - **Errors** ([`Error`]) are values with a code, shown to the operator;
//!   host refusals ([`HostError`]) are values too, and `?` turns one into the
//!   other. A panic traps the instance: the host discards it, reports the
//!   call as failed and the panic message reaches the plugin's log.
//! - **Native builds.** The crate also compiles for the host target, so the
//!   plugin crate can hold unit tests of its pure logic; there, host calls
//!   answer [`HostError::Unavailable`] and logs go to stderr. Test the built
//!   plugin end to end with the mock host of the `testing` feature.

mod config;
mod error;
mod export;
mod hook;
pub mod hooks;
pub mod host;
pub mod json;
mod plugin;
#[cfg(all(feature = "process", not(target_arch = "wasm32")))]
pub mod process;
mod sys;
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub mod testing;

pub use config::Config;
pub use error::{Error, HostError};
pub use hook::{HookAction, HookContext, HookData};
pub use plugin::Plugin;
pub use serde_json;

/// Exports a [`Plugin`] type as the plugin's component: write it once, at the
/// top level of the plugin crate.
///
/// ```
/// # use tenon_pdk::{Config, Error, Plugin};
/// struct Quiet;
/// impl Plugin for Quiet {
///     fn activate(_: Config) -> Result<Self, Error> {
///         Ok(Quiet)
///     }
/// }
/// tenon_pdk::export!(Quiet);
/// ```
///
/// In native builds it only checks that the type implements [`Plugin`].
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __TenonPdkAdapter = $crate::__private::Adapter<$plugin>;
            $crate::__private::bindings::__export_tenon_plugin!(
                __TenonPdkAdapter with_types_in $crate::__private::bindings
            );
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = $crate::__private::assert_plugin::<$plugin>;
    };
}

#[doc(hidden)]
pub mod __private {
    //! Used by [`export!`](crate::export); not public API.
    #[cfg(target_arch = "wasm32")]
    pub use crate::export::bindings;
    pub use crate::export::{
        Adapter, activate, assert_plugin, call, configure, deactivate, handle_hook, restore,
        snapshot,
    };
}
