//! Tenon's dependency resolver: which version of every plugin to install,
//! in which order to load them, and, when no answer exists, why.
//!
//! This crate owns version selection and load order. It is pure: it reads an
//! [`Index`] and a [`Request`] and returns a [`Resolution`] or a
//! [`ResolveError`] whose text explains the failure; it never touches files,
//! the network or a clock. It does not fetch, store or install plugins (the
//! registry, the marketplace and the engine do). The engine calls it at
//! install and upgrade time; the `tenon resolve` command calls it for
//! operators. Depend on it to plan plugin sets without the rest of Tenon.
//!
//! # Rules
//!
//! - **Selection** is [PubGrub](https://nex3.medium.com/pubgrub-2fb6470504f)
//!   (the `pubgrub` crate with a provider over the index). Plugin API and host
//!   compatibility are dependencies on two virtual packages, so an engine
//!   mismatch is explained like any other conflict.
//! - **Strategies** ([`Strategy`]): `latest` chooses the newest version that
//!   fits for every plugin, installed or not; `manual` keeps every installed
//!   plugin at its installed version (a conflict, explained, when that does
//!   not fit) and chooses the newest for the others; `strict` chooses like
//!   `manual` and also fails on any warning.
//! - **Pre-releases** are never chosen unless [`Options::prerelease`] is set,
//!   and even then only where every requirement admits them under semver's
//!   rules (a comparator naming a pre-release of the same
//!   `major.minor.patch`: `>=2.0.0-beta.1` admits `2.0.0-rc.1`, `*` and `^2`
//!   admit none). An installed pre-release stays choosable.
//! - **Yanked** versions are chosen only where they are installed (with a
//!   warning).
//! - **Optional** dependencies are resolved like the others; when a
//!   resolution fails because of some, it is retried without them, and each
//!   one left out is a warning note. Keeping an optional dependency can make
//!   the resolver pick an older version of its dependent.
//! - **Peer** dependencies are never installed on a plugin's behalf, but
//!   whatever else brings the peer in (the request, another plugin, an
//!   installed plugin that stays) must match; a required peer that nothing
//!   brings in is a conflict. An optional peer only constrains.
//! - **Dev** dependencies are ignored.
//! - **Installed** plugins stay in the plan and are resolved with the request,
//!   unless [`Options::prune`] says the request is everything that should
//!   stay, in which case the ones nothing needs are removed. An installed
//!   plugin the index does not know is kept as it is, with a warning.
//! - **Load order** puts dependencies (runtime and peer) before dependents,
//!   ties broken by id; a cycle is an error naming it (`a → b → c → a`).
//!
//! ```
//! use tenon_resolver::{Index, IndexDependency, IndexVersion, Request, resolve};
//!
//! let mut index = Index::new();
//! let mut a = IndexVersion::default();
//! a.dependencies.insert("acme/b".parse()?, IndexDependency::runtime("^1".parse()?));
//! index.insert("acme/a".parse()?, "1.0.0".parse()?, a);
//! index.insert("acme/b".parse()?, "1.2.0".parse()?, IndexVersion::default());
//!
//! let resolution = resolve(&index, &Request::new(vec!["acme/a@^1".parse()?]))?;
//! let order: Vec<String> = resolution.order.iter().map(|s| s.to_string()).collect();
//! assert_eq!(order, ["acme/b 1.2.0", "acme/a 1.0.0"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod explain;
mod index;
mod order;
mod outcome;
mod provider;
mod request;
mod resolve;

pub use error::ResolveError;
pub use index::{Index, IndexDependency, IndexEngine, IndexPlugin, IndexVersion};
pub use outcome::{Action, Note, NoteKind, PlanEntry, Resolution, Selected, Severity};
pub use request::{
    HostVersions, Options, PLUGIN_API_VERSION, Request, Requirement, RequirementError, Strategy,
    StrategyError,
};
pub use resolve::resolve;
