//! Engine compatibility: a manifest's `[engine]` against what a host offers.
//!
//! Versions are matched with Cargo's semver rules (the `semver` crate): a
//! bare requirement is a caret (`"1.2"` is `^1.2`), `^0.J` allows patch bumps
//! only, and a pre-release version satisfies only a requirement that names a
//! pre-release of the same `MAJOR.MINOR.PATCH` (`*` never matches one). Among
//! the served API versions that fit, the newest by semver precedence (build
//! metadata ignored) is chosen.

use std::collections::BTreeSet;
use std::fmt;

use semver::{Version, VersionReq};

use crate::model::EngineRequirement;

/// What a host offers, as [`check_engine`] needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostInfo<'a> {
    /// The plugin API versions (WIT world versions) the host serves.
    pub api_versions: &'a [Version],
    /// The host application's own version; `None` skips `engine.host`.
    pub host_version: Option<&'a Version>,
    /// The host features offered; `None` skips `engine.features`.
    pub features: Option<&'a BTreeSet<String>>,
}

/// Why a host cannot run a plugin: every reason that applies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", join_reasons(.reasons))]
pub struct Incompatibility {
    /// The reasons, API first.
    pub reasons: Vec<IncompatibilityReason>,
}

fn join_reasons(reasons: &[IncompatibilityReason]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One reason a host cannot run a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncompatibilityReason {
    /// No served plugin API version fits `engine.tenon`.
    Api {
        /// The requirement.
        required: VersionReq,
        /// What the host serves.
        served: Vec<Version>,
    },
    /// The host's version does not fit `engine.host`.
    Host {
        /// The requirement.
        required: VersionReq,
        /// The host's version.
        host: Version,
    },
    /// Features the plugin needs that the host lacks.
    Features {
        /// The missing features.
        missing: Vec<String>,
        /// What the host offers.
        offered: Vec<String>,
    },
}

impl fmt::Display for IncompatibilityReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Api { required, served } => {
                if served.is_empty() {
                    return write!(
                        f,
                        "needs plugin API {required} but this host serves no plugin API version"
                    );
                }
                let list = served
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                write!(f, "needs plugin API {required} but this host serves {list}")?;
                pre_release_note(f, required, served.iter())
            }
            Self::Host { required, host } => {
                write!(f, "needs host version {required} but this host is {host}")?;
                pre_release_note(f, required, std::iter::once(host))
            }
            Self::Features { missing, offered } => {
                let offered = if offered.is_empty() {
                    "none".to_owned()
                } else {
                    offered.join(", ")
                };
                write!(
                    f,
                    "needs host features {} that this host does not offer (it offers: {offered})",
                    missing.join(", ")
                )
            }
        }
    }
}

/// Explains the pre-release rule when it is what refused a version.
fn pre_release_note<'a>(
    f: &mut fmt::Formatter<'_>,
    required: &VersionReq,
    versions: impl Iterator<Item = &'a Version>,
) -> fmt::Result {
    for v in versions {
        if v.pre.is_empty() {
            continue;
        }
        let release = Version::new(v.major, v.minor, v.patch);
        if required.matches(&release) {
            return write!(
                f,
                " ({v} is a pre-release, which only a requirement naming a pre-release of {release} accepts, such as `>={release}-0`)"
            );
        }
    }
    Ok(())
}

/// Checks `req` against `host`: the newest served API version that fits, or
/// every reason it cannot run.
pub fn check_engine(
    req: &EngineRequirement,
    host: &HostInfo<'_>,
) -> Result<Version, Incompatibility> {
    let mut reasons = Vec::new();
    let chosen = host
        .api_versions
        .iter()
        .rev()
        .filter(|v| req.tenon.matches(v))
        // `max_by` keeps the last of equals: reversed, the first the host lists.
        .max_by(|a, b| a.cmp_precedence(b))
        .cloned();
    if chosen.is_none() {
        let mut served = host.api_versions.to_vec();
        served.sort_by(Version::cmp_precedence);
        served.dedup_by(|a, b| a.cmp_precedence(b).is_eq());
        reasons.push(IncompatibilityReason::Api {
            required: req.tenon.clone(),
            served,
        });
    }
    if let (Some(required), Some(version)) = (&req.host, host.host_version)
        && !required.matches(version)
    {
        reasons.push(IncompatibilityReason::Host {
            required: required.clone(),
            host: version.clone(),
        });
    }
    if let Some(offered) = host.features {
        let missing: Vec<String> = req
            .features
            .iter()
            .filter(|f| !offered.contains(*f))
            .cloned()
            .collect();
        if !missing.is_empty() {
            reasons.push(IncompatibilityReason::Features {
                missing,
                offered: offered.iter().cloned().collect(),
            });
        }
    }
    match chosen {
        Some(version) if reasons.is_empty() => Ok(version),
        _ => Err(Incompatibility { reasons }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    fn check(
        tenon: &str,
        host_req: Option<&str>,
        served: &[&str],
        host: Option<&str>,
        expected: Result<&str, &str>,
    ) {
        let req = EngineRequirement {
            tenon: VersionReq::parse(tenon).unwrap(),
            host: host_req.map(|h| VersionReq::parse(h).unwrap()),
            features: Vec::new(),
        };
        let served: Vec<Version> = served.iter().map(|s| v(s)).collect();
        let host_version = host.map(v);
        let info = HostInfo {
            api_versions: &served,
            host_version: host_version.as_ref(),
            features: None,
        };
        let got = check_engine(&req, &info)
            .map(|v| v.to_string())
            .map_err(|e| e.to_string());
        assert_eq!(
            got,
            expected.map(str::to_owned).map_err(str::to_owned),
            "{tenon} against {served:?}"
        );
    }

    #[test]
    fn api_versions() {
        check(
            "^1.0",
            None,
            &["1.0.0", "1.1.0", "2.0.0"],
            None,
            Ok("1.1.0"),
        );
        check(
            "^2.0",
            None,
            &["1.0.0", "1.1.0"],
            None,
            Err("needs plugin API ^2.0 but this host serves 1.0.0, 1.1.0"),
        );
        check("1.0", None, &["1.0.0", "1.4.2"], None, Ok("1.4.2"));
        check("^0.2", None, &["0.2.0", "0.3.0"], None, Ok("0.2.0"));
        check(
            "^1",
            None,
            &[],
            None,
            Err("needs plugin API ^1 but this host serves no plugin API version"),
        );
        // Pre-releases fit only requirements naming a pre-release of the same version.
        check(
            "^2.0",
            None,
            &["1.0.0", "2.0.0-beta.1"],
            None,
            Err(
                "needs plugin API ^2.0 but this host serves 1.0.0, 2.0.0-beta.1 (2.0.0-beta.1 is a pre-release, which only a requirement naming a pre-release of 2.0.0 accepts, such as `>=2.0.0-0`)",
            ),
        );
        check(
            ">=2.0.0-0",
            None,
            &["2.0.0-beta.1"],
            None,
            Ok("2.0.0-beta.1"),
        );
        check(
            "*",
            None,
            &["2.0.0-rc.1"],
            None,
            Err(
                "needs plugin API * but this host serves 2.0.0-rc.1 (2.0.0-rc.1 is a pre-release, which only a requirement naming a pre-release of 2.0.0 accepts, such as `>=2.0.0-0`)",
            ),
        );
        // Build metadata does not count in precedence.
        check("^1", None, &["1.0.0+a", "1.0.0+b"], None, Ok("1.0.0+a"));
    }

    #[test]
    fn host_version() {
        check("^1", Some(">=3.0"), &["1.0.0"], Some("3.2.0"), Ok("1.0.0"));
        check("^1", Some(">=3.0"), &["1.0.0"], None, Ok("1.0.0"));
        check(
            "^1",
            Some(">=3.0"),
            &["1.0.0"],
            Some("2.9.0"),
            Err("needs host version >=3.0 but this host is 2.9.0"),
        );
        check(
            "^2",
            Some(">=3.0"),
            &["1.0.0"],
            Some("3.1.0-beta.1"),
            Err(
                "needs plugin API ^2 but this host serves 1.0.0; needs host version >=3.0 but this host is 3.1.0-beta.1 (3.1.0-beta.1 is a pre-release, which only a requirement naming a pre-release of 3.1.0 accepts, such as `>=3.1.0-0`)",
            ),
        );
    }

    #[test]
    fn features() {
        let req = EngineRequirement {
            features: vec!["events".into(), "storage".into()],
            ..EngineRequirement::default()
        };
        let offered: BTreeSet<String> = ["events".to_owned(), "kv".to_owned()].into();
        let served = [v("1.0.0")];
        let host = HostInfo {
            api_versions: &served,
            host_version: None,
            features: Some(&offered),
        };
        assert_eq!(
            check_engine(&req, &host).unwrap_err().to_string(),
            "needs host features storage that this host does not offer (it offers: events, kv)"
        );
        let host = HostInfo {
            features: None,
            ..host
        };
        assert_eq!(check_engine(&req, &host), Ok(v("1.0.0")));
    }
}
