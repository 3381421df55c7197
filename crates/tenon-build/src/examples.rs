//! The repository's example and hostile plugins, built once per process for
//! tests and benchmarks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::{BuildError, BuildOptions, BuiltPlugin, Profile, build_workspace};

/// This crate's directory in the checkout it was built from, with symbolic
/// links resolved (a checkout reached through a link still finds its real
/// siblings).
pub(crate) fn crate_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    dir.canonicalize().unwrap_or_else(|_| dir.to_owned())
}

/// The repository this crate lives in.
fn repository() -> PathBuf {
    crate_dir()
        .ancestors()
        .nth(2)
        .expect("tenon-build lives at crates/tenon-build")
        .to_owned()
}

/// The examples workspace: `examples/plugins` of the repository.
pub fn examples_dir() -> PathBuf {
    repository().join("examples").join("plugins")
}

/// Where the examples are built and assembled: `target/plugins` of the
/// repository (its own cargo target directory, so that a build started from
/// a test never waits for the lock of the build running the test).
pub fn plugins_target_dir() -> PathBuf {
    repository().join("target").join("plugins")
}

/// The options [`ensure_examples_built`] and `cargo xtask build-plugins` use:
/// release profile, target and output directory [`plugins_target_dir`], so
/// that `<repo>/target/plugins/<package>/` is an installable plugin.
pub fn examples_build_options() -> BuildOptions {
    BuildOptions {
        profile: Profile::Release,
        target_dir: Some(plugins_target_dir()),
        out_dir: Some(plugins_target_dir()),
        ..BuildOptions::default()
    }
}

/// The built example and hostile plugins.
#[derive(Debug, Clone)]
pub struct ExamplePlugins {
    plugins: BTreeMap<String, BuiltPlugin>,
}

impl ExamplePlugins {
    /// Wraps plugins built by [`build_workspace`].
    pub fn new(plugins: BTreeMap<String, BuiltPlugin>) -> Self {
        Self { plugins }
    }

    /// A plugin by package name (`redactor`, `hostile-looper`) or by plugin
    /// id (`tenon-examples/redactor`, `tenon-hostile/looper`).
    pub fn get(&self, name: &str) -> Option<&BuiltPlugin> {
        self.plugins
            .get(name)
            .or_else(|| self.plugins.values().find(|p| p.id() == name))
    }

    /// Like [`ExamplePlugins::get`], for tests.
    ///
    /// # Panics
    ///
    /// When there is no such plugin; the message lists those there are.
    pub fn expect(&self, name: &str) -> &BuiltPlugin {
        self.get(name).unwrap_or_else(|| {
            panic!(
                "no example plugin `{name}`; there are: {}",
                self.names().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// The package names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.plugins.keys().map(String::as_str)
    }

    /// Every plugin, by package name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &BuiltPlugin)> {
        self.plugins.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The example plugins proper (publisher [`EXAMPLES_PUBLISHER`]), by
    /// package name: what a demo installs or a demo marketplace serves; the
    /// hostile plugins (`tenon-hostile/…`) are left out.
    pub fn showcase(&self) -> impl Iterator<Item = (&str, &BuiltPlugin)> {
        self.iter().filter(|(_, p)| is_showcase(p.id()))
    }
}

/// The publisher of the example plugins proper (the hostile plugins are
/// `tenon-hostile`).
pub const EXAMPLES_PUBLISHER: &str = "tenon-examples";

/// Whether a plugin id is one of the example plugins proper.
pub fn is_showcase(id: &str) -> bool {
    id.split_once('/')
        .is_some_and(|(publisher, _)| publisher == EXAMPLES_PUBLISHER)
}

static EXAMPLES: OnceLock<Result<ExamplePlugins, BuildError>> = OnceLock::new();

/// Builds the examples workspace (once per process; cargo makes it cheap when
/// nothing changed) with [`examples_build_options`], and returns the
/// plugins, or the build's error.
pub fn try_ensure_examples_built() -> Result<&'static ExamplePlugins, &'static BuildError> {
    EXAMPLES
        .get_or_init(|| {
            build_workspace(&examples_dir(), &examples_build_options()).map(ExamplePlugins::new)
        })
        .as_ref()
}

/// [`try_ensure_examples_built`] for tests and benchmarks.
///
/// # Panics
///
/// When the build fails; the message holds cargo's output.
pub fn ensure_examples_built() -> &'static ExamplePlugins {
    match try_ensure_examples_built() {
        Ok(examples) => examples,
        Err(error) => panic!("building the example plugins failed: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::is_showcase;

    #[test]
    fn only_the_examples_publisher_is_showcased() {
        for (id, showcased) in [
            ("tenon-examples/echo", true),
            ("tenon-examples/extism-counter", true),
            ("tenon-hostile/looper", false),
            ("tenon-examples", false),
            ("tenon-examples-x/echo", false),
            ("acme/tenon-examples", false),
        ] {
            assert_eq!(is_showcase(id), showcased, "{id}");
        }
    }
}
