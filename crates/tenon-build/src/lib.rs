//! Building Tenon plugins from source.
//!
//! This crate owns turning a plugin project (a Cargo package with a
//! `tenon.toml` beside its `Cargo.toml`) into an installable plugin
//! directory: the manifest plus the WebAssembly module at the manifest's
//! `runtime.module` path (or, for a process plugin, the executable at its
//! `runtime.command` path). It picks the Rust target from `runtime.kind`
//! (`component` → `wasm32-wasip2`, `extism` → `wasm32-unknown-unknown`,
//! `process` → the host's own),
//! runs cargo with an environment cleaned of what an outer cargo sets, checks
//! the module is what the runtime loads, and reports failures with cargo's
//! own output. It also writes new plugin projects ([`scaffold`], for
//! `tenon new`) and builds the repository's example plugins once per process
//! for tests ([`ensure_examples_built`]).
//!
//! It does not run plugins (that is `tenon-sandbox`) and depends on no Tenon
//! runtime crate: only `tenon-manifest`, to read and validate manifests. The
//! CLI (`tenon build`, `tenon new`), `cargo xtask build-plugins`, the demo
//! host, `tenon-pdk`'s mock host (feature `testing`), and the tests of
//! `tenon-sandbox`, `tenon-http` and the workspace (`tests/`) depend on it.
//!
//! ```no_run
//! use std::path::Path;
//! use tenon_build::{BuildOptions, build_plugin};
//!
//! let built = build_plugin(Path::new("my-plugin"), &BuildOptions::default())?;
//! println!("{} is ready in {}", built.id(), built.dir.display());
//! # Ok::<(), tenon_build::BuildError>(())
//! ```

mod build;
mod cargo;
mod error;
mod examples;
mod scaffold;

pub use build::{BuildOptions, BuiltPlugin, Profile, build_plugin, build_workspace, target_for};
pub use cargo::cargo_command;
pub use error::BuildError;
pub use examples::{
    EXAMPLES_PUBLISHER, ExamplePlugins, ensure_examples_built, examples_build_options,
    examples_dir, is_showcase, plugins_target_dir, try_ensure_examples_built,
};
pub use scaffold::{PdkSource, ScaffoldOptions, Scaffolded, scaffold};
