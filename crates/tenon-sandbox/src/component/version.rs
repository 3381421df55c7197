//! Which `tenon:plugin` version a component targets, read from the names of
//! its imports and exports, and whether this host serves it.

use tenon_manifest::Version;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The WIT package every Tenon plugin interface belongs to.
pub(crate) const PACKAGE: &str = "tenon:plugin";

/// The world versions this host serves, newest first. A component built for
/// `MAJOR.MINOR.x` is served by the entry with the same major whose minor is
/// at least as new (minor versions only add).
pub(crate) const SUPPORTED: &[Version] = &[super::v1::VERSION];

/// The served API a component uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Api {
    V1,
}

/// `tenon:plugin@1.0.0, …` for messages.
pub(crate) fn supported_list() -> String {
    SUPPORTED
        .iter()
        .map(|v| format!("{PACKAGE}@{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses `tenon:plugin/<interface>@<version>`.
fn tenon_version(name: &str) -> Option<Result<Version, String>> {
    let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    let Some((_, version)) = rest.split_once('@') else {
        return Some(Err(format!("`{name}` names no version")));
    };
    Some(Version::parse(version).map_err(|e| format!("`{name}`: {e}")))
}

/// What the component's interface names say.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Detected {
    /// Served by this host.
    Served { api: Api, version: Version },
    /// A version this host does not serve.
    Unserved(String),
    /// No `tenon:plugin` interface at all.
    NotAPlugin,
    /// Names that mix versions or cannot be read.
    Malformed(String),
}

/// Reads the version from `component`'s imports and exports.
pub(crate) fn detect(engine: &Engine, component: &Component) -> Detected {
    let ty = component.component_type();
    let names = ty
        .imports(engine)
        .map(|(name, _)| name)
        .chain(ty.exports(engine).map(|(name, _)| name));
    let mut found: Option<Version> = None;
    for name in names {
        match tenon_version(name) {
            None => {}
            Some(Err(e)) => return Detected::Malformed(e),
            Some(Ok(v)) => match &found {
                Some(f) if f.major != v.major => {
                    return Detected::Malformed(format!(
                        "it uses both {PACKAGE}@{f} and {PACKAGE}@{v}"
                    ));
                }
                Some(f) if *f >= v => {}
                _ => found = Some(v),
            },
        }
    }
    let Some(version) = found else {
        return Detected::NotAPlugin;
    };
    classify(version)
}

/// The module serving a major version.
fn api_for(major: u64) -> Option<Api> {
    match major {
        1 => Some(Api::V1),
        _ => None,
    }
}

/// Decides whether `version` is served.
pub(crate) fn classify(version: Version) -> Detected {
    for served in SUPPORTED {
        let Some(api) = api_for(served.major) else {
            continue;
        };
        if served.major == version.major
            && (served.major > 0 || served.minor == version.minor)
            && served.minor >= version.minor
            && version.pre.is_empty()
        {
            return Detected::Served { api, version };
        }
    }
    Detected::Unserved(format!("{PACKAGE}@{version}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let check = |v: &str, served: bool| {
            let detected = classify(Version::parse(v).unwrap());
            assert_eq!(
                matches!(detected, Detected::Served { .. }),
                served,
                "{v}: {detected:?}"
            );
        };
        check("1.0.0", true);
        check("1.0.7", true);
        check("1.1.0", false);
        check("2.0.0", false);
        check("3.0.0", false);
        check("0.9.0", false);
        check("1.0.0-rc.1", false);
        assert_eq!(tenon_version("wasi:cli/stdout@0.2.0"), None);
        assert_eq!(
            tenon_version("tenon:plugin/guest@1.0.0"),
            Some(Ok(Version::new(1, 0, 0)))
        );
        assert!(matches!(tenon_version("tenon:plugin/guest"), Some(Err(_))));
    }
}
