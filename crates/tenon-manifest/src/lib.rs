//! The Tenon plugin manifest.
//!
//! This crate owns the manifest format (`tenon.toml`, or the same document as
//! `tenon.json` / `tenon.yaml`): its types, its parsing, its validation, the
//! vocabulary of permissions and capabilities, engine compatibility and the
//! validation of config values against a manifest.
//!
//! It is pure: it takes `&str` / `&[u8]` and returns values; it never touches
//! files, the network or a clock. It knows nothing of how plugins run, where
//! they are stored or how hooks are dispatched.
//!
//! Every other Tenon crate depends on it; plugin tooling (linters, editors,
//! packagers) can depend on it alone.

mod id;
mod model;
mod units;

pub use id::{MAX_ID_PART_LEN, PluginId, PluginIdError};
pub use model::*;
pub use semver::{Version, VersionReq};
pub use units::{ByteSize, DurationSpec, UnitError};
