//! What the caller asks for: requirements, what is installed, what the host
//! offers, and how to choose.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tenon_manifest::{PluginId, PluginIdError, Version, VersionReq};

/// The plugin API version this Tenon serves (the `tenon:plugin` WIT world).
pub const PLUGIN_API_VERSION: Version = Version::new(1, 0, 0);

/// One requirement of the request: a plugin and the versions that will do.
///
/// Written `publisher/name@REQ` (`acme/a@^1.2`, `acme/a@=1.0.0`); without
/// `@REQ` any version will do (`*`, which never admits a pre-release).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// The plugin.
    pub id: PluginId,
    /// The versions that will do.
    pub version: VersionReq,
}

impl Requirement {
    /// A requirement on `id`.
    pub fn new(id: PluginId, version: VersionReq) -> Self {
        Self { id, version }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.version)
    }
}

/// Why a string is not a [`Requirement`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequirementError {
    /// The part before `@` is not a plugin id.
    #[error("`{input}`: {source}")]
    Id {
        /// The whole input.
        input: String,
        /// What is wrong with the id.
        #[source]
        source: PluginIdError,
    },
    /// The part after `@` is not a semver requirement.
    #[error(
        "`{input}`: `{requirement}` is not a version requirement ({reason}); write for example acme/a@^1.2"
    )]
    Version {
        /// The whole input.
        input: String,
        /// The requirement part.
        requirement: String,
        /// What semver says.
        reason: String,
    },
}

impl FromStr for Requirement {
    type Err = RequirementError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (id, req) = match input.split_once('@') {
            Some((id, req)) => (id, Some(req)),
            None => (input, None),
        };
        let id = PluginId::new(id).map_err(|source| RequirementError::Id {
            input: input.to_owned(),
            source,
        })?;
        let version = match req {
            None => VersionReq::STAR,
            Some(req) => VersionReq::parse(req).map_err(|e| RequirementError::Version {
                input: input.to_owned(),
                requirement: req.to_owned(),
                reason: e.to_string(),
            })?,
        };
        Ok(Self { id, version })
    }
}

/// What the host offers to plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostVersions {
    /// The plugin API versions the host serves (several at once when it
    /// supports several WIT worlds). A plugin version fits when its `tenon`
    /// requirement matches any of them.
    pub api: Vec<Version>,
    /// The host application's version. `None` means host requirements are
    /// not checked (and a note says so when a chosen plugin has one).
    pub host: Option<Version>,
}

impl Default for HostVersions {
    /// [`PLUGIN_API_VERSION`] and no host version.
    fn default() -> Self {
        Self {
            api: vec![PLUGIN_API_VERSION],
            host: None,
        }
    }
}

/// How versions are chosen.
///
/// | | installed plugins | other plugins | warnings |
/// |---|---|---|---|
/// | `latest` | newest version that fits (may upgrade or downgrade) | newest that fits | notes |
/// | `manual` | kept at the installed version; a conflict if it does not fit | newest that fits | notes |
/// | `strict` | kept at the installed version; a conflict if it does not fit | newest that fits | errors |
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Keep installed versions and fail on any conflict or warning (a dropped
    /// optional dependency, a yanked version kept, an installed plugin missing
    /// from the index).
    Strict,
    /// The newest compatible version of every plugin.
    #[default]
    Latest,
    /// Keep installed versions; fail, explaining, if they do not fit.
    Manual,
}

impl Strategy {
    /// The name used on the command line and in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "strict",
            Self::Latest => "latest",
            Self::Manual => "manual",
        }
    }

    /// All strategies.
    pub const ALL: [Self; 3] = [Self::Strict, Self::Latest, Self::Manual];

    /// Whether installed plugins are kept at their installed version.
    pub const fn pins_installed(self) -> bool {
        matches!(self, Self::Strict | Self::Manual)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A strategy name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a strategy: use strict, latest or manual")]
pub struct StrategyError(pub String);

impl FromStr for Strategy {
    type Err = StrategyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| StrategyError(s.to_owned()))
    }
}

/// How to resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// How versions are chosen.
    pub strategy: Strategy,
    /// Whether pre-release versions may be chosen. Even then, a pre-release
    /// is chosen only when every requirement on it admits it under semver's
    /// rules: a comparator must name a pre-release of the same
    /// `major.minor.patch` (`^2.0.0-beta.1` admits `2.0.0-rc.1`; `^2`, `>=1`
    /// and `*` never admit a pre-release). Off by default.
    pub prerelease: bool,
    /// The request names everything that should stay: installed plugins that
    /// neither the request nor its dependencies need are removed. When off
    /// (the default), every installed plugin stays, and is resolved along
    /// with the request so that its own dependencies stay satisfied.
    pub prune: bool,
}

/// One resolution's input, besides the index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// What the caller asks for. Several requirements on one plugin must all
    /// hold.
    pub requirements: Vec<Requirement>,
    /// What is installed (or locked): plugin → version.
    pub installed: BTreeMap<PluginId, Version>,
    /// What the host offers.
    pub host: HostVersions,
    /// How to resolve.
    pub options: Options,
}

impl Request {
    /// A request for `requirements` with nothing installed, the default host
    /// and default options.
    pub fn new(requirements: Vec<Requirement>) -> Self {
        Self {
            requirements,
            ..Self::default()
        }
    }
}
