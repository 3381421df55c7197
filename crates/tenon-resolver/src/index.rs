//! The index: every plugin version the resolver may choose from, with its
//! dependencies, its engine requirement and whether it is yanked.
//!
//! The serde form is the index file `tenon resolve --index` reads:
//!
//! ```json
//! {"plugins": {"acme/a": {"versions": {"1.0.0": {
//!     "dependencies": {"acme/b": {"version": "^1", "optional": false, "scope": "runtime"},
//!                      "acme/c": "^2"},
//!     "engine": {"tenon": "^1", "host": ">=3"},
//!     "yanked": false}}}}}
//! ```
//!
//! A dependency may be written as a bare requirement string; every field
//! takes a default when absent (`version` `*`, `optional` false, `scope`
//! runtime, `engine` any, `yanked` false). Unknown fields are refused, so a
//! misspelt `"optinal": true` is an error rather than a silent runtime
//! dependency.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tenon_manifest::{DependencyScope, Manifest, PluginId, Version, VersionReq};

/// Every plugin the resolver may choose from, by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// Plugins by id.
    #[serde(default)]
    pub plugins: BTreeMap<PluginId, IndexPlugin>,
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) one version of a plugin; returns the entry it
    /// replaced.
    pub fn insert(
        &mut self,
        id: PluginId,
        version: Version,
        entry: IndexVersion,
    ) -> Option<IndexVersion> {
        self.plugins
            .entry(id)
            .or_default()
            .versions
            .insert(version, entry)
    }

    /// A plugin's versions, if the index has the plugin.
    pub fn plugin(&self, id: &str) -> Option<&IndexPlugin> {
        self.plugins.get(id)
    }

    /// One version of a plugin.
    pub fn version(&self, id: &str, version: &Version) -> Option<&IndexVersion> {
        self.plugins.get(id)?.versions.get(version)
    }

    /// How many plugins the index holds.
    pub fn len(&self) -> usize {
        self.plugins.len()
    }

    /// Whether the index holds no plugin.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// How many versions the index holds, over all plugins.
    pub fn version_count(&self) -> usize {
        self.plugins.values().map(|p| p.versions.len()).sum()
    }
}

/// The versions of one plugin, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexPlugin {
    /// Versions, ordered by semver (the map's order).
    #[serde(default)]
    pub versions: BTreeMap<Version, IndexVersion>,
}

/// One version of a plugin, as far as resolution is concerned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexVersion {
    /// The plugins it depends on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependencies: BTreeMap<PluginId, IndexDependency>,
    /// The plugin API and host versions it works with.
    #[serde(default, skip_serializing_if = "IndexEngine::is_any")]
    pub engine: IndexEngine,
    /// Withdrawn by its publisher: chosen only where it is already installed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub yanked: bool,
}

impl IndexVersion {
    /// A version with no dependency, no engine requirement, not yanked.
    pub const EMPTY: Self = Self {
        dependencies: BTreeMap::new(),
        engine: IndexEngine {
            tenon: None,
            host: None,
        },
        yanked: false,
    };

    /// What a manifest says about resolution: its dependencies and its engine
    /// requirement (a manifest always names a plugin API requirement).
    pub fn from_manifest(manifest: &Manifest) -> Self {
        Self::declared(&manifest.dependencies, &manifest.engine)
    }

    /// What a manifest's dependencies and engine requirement say about
    /// resolution (as a marketplace's index line repeats them), not yanked.
    pub fn declared(
        dependencies: &BTreeMap<PluginId, tenon_manifest::Dependency>,
        engine: &tenon_manifest::EngineRequirement,
    ) -> Self {
        Self {
            dependencies: dependencies
                .iter()
                .map(|(id, dep)| {
                    let dependency = IndexDependency {
                        version: dep.version.clone(),
                        optional: dep.optional,
                        scope: dep.scope,
                    };
                    (id.clone(), dependency)
                })
                .collect(),
            engine: IndexEngine {
                tenon: Some(engine.tenon.clone()),
                host: engine.host.clone(),
            },
            yanked: false,
        }
    }
}

/// A dependency on another plugin.
///
/// Deserializes from a bare requirement string (`"^1"`) or from
/// `{"version": "^1", "optional": false, "scope": "runtime"}` with every
/// field optional.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexDependency {
    /// The versions that fit.
    #[serde(serialize_with = "req_to_str")]
    pub version: VersionReq,
    /// Whether the plugin works without it: an optional dependency that
    /// cannot be resolved is dropped with a note instead of failing.
    pub optional: bool,
    /// How it is needed: `runtime` (installed with the plugin), `peer` (must
    /// be provided by the rest of the plan) or `dev` (ignored).
    pub scope: DependencyScope,
}

impl IndexDependency {
    /// A required runtime dependency.
    pub fn runtime(version: VersionReq) -> Self {
        Self {
            version,
            optional: false,
            scope: DependencyScope::Runtime,
        }
    }

    /// A required peer dependency.
    pub fn peer(version: VersionReq) -> Self {
        Self {
            version,
            optional: false,
            scope: DependencyScope::Peer,
        }
    }

    /// The same dependency, optional.
    pub fn optional(self) -> Self {
        Self {
            optional: true,
            ..self
        }
    }
}

impl<'de> Deserialize<'de> for IndexDependency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            #[serde(default = "star")]
            version: VersionReq,
            #[serde(default)]
            optional: bool,
            #[serde(default)]
            scope: DependencyScope,
        }

        struct DependencyVisitor;

        impl<'de> Visitor<'de> for DependencyVisitor {
            type Value = IndexDependency;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a version requirement such as \"^1.2\", or {\"version\", \"optional\", \"scope\"}",
                )
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                let version = VersionReq::parse(text).map_err(|e| {
                    E::custom(format!("`{text}` is not a version requirement: {e}"))
                })?;
                Ok(IndexDependency::runtime(version))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let full = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(IndexDependency {
                    version: full.version,
                    optional: full.optional,
                    scope: full.scope,
                })
            }
        }

        deserializer.deserialize_any(DependencyVisitor)
    }
}

/// Which plugin API and host versions a plugin version works with; `None`
/// means any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexEngine {
    /// Plugin API versions (the `tenon:plugin` WIT world version).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_req_to_str"
    )]
    pub tenon: Option<VersionReq>,
    /// Host application versions.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_req_to_str"
    )]
    pub host: Option<VersionReq>,
}

impl IndexEngine {
    /// Whether any plugin API and any host will do.
    pub fn is_any(&self) -> bool {
        self.tenon.is_none() && self.host.is_none()
    }
}

fn star() -> VersionReq {
    VersionReq::STAR
}

fn req_to_str<S: Serializer>(req: &VersionReq, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(req)
}

fn opt_req_to_str<S: Serializer>(req: &Option<VersionReq>, s: S) -> Result<S::Ok, S::Error> {
    match req {
        Some(req) => s.collect_str(req),
        None => s.serialize_none(),
    }
}
