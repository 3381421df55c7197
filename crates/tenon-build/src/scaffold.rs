//! `tenon new`: writing a new plugin project that builds and passes its own
//! test as generated.

use std::fs;
use std::path::{Path, PathBuf};

use tenon_manifest::{PluginId, RuntimeKind};

use crate::BuildError;

/// Where a scaffolded component plugin gets `tenon-pdk` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PdkSource {
    /// A path to the `tenon-pdk` crate (by default, the one in the Tenon
    /// checkout this tool was built from).
    Path(PathBuf),
    /// A version requirement, from the registry.
    Version(String),
}

impl Default for PdkSource {
    fn default() -> Self {
        Self::Path(
            crate::examples::crate_dir()
                .parent()
                .expect("tenon-build lives in crates/")
                .join("tenon-pdk"),
        )
    }
}

/// How to scaffold.
#[derive(Debug, Clone)]
pub struct ScaffoldOptions {
    /// The publisher part of the plugin id (`publisher/name`); `local` by
    /// default.
    pub publisher: String,
    /// Where `tenon-pdk` comes from (component plugins).
    pub pdk: PdkSource,
    /// The `extism-pdk` requirement (Extism plugins).
    pub extism_pdk: String,
    /// Write a `rust-toolchain.toml` pinning the toolchain Tenon is built
    /// with and its WebAssembly targets, so that rustup installs them.
    pub toolchain_file: bool,
    /// A `Cargo.lock` to start from (its versions are kept where they fit),
    /// so that a project shares compiled dependencies with another build.
    pub lockfile: Option<PathBuf>,
}

impl Default for ScaffoldOptions {
    fn default() -> Self {
        Self {
            publisher: "local".to_owned(),
            pdk: PdkSource::default(),
            extism_pdk: "1.4".to_owned(),
            toolchain_file: true,
            lockfile: None,
        }
    }
}

/// A scaffolded project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaffolded {
    /// The project directory.
    pub dir: PathBuf,
    /// The plugin id written in its manifest.
    pub id: String,
    /// The files written, relative to [`Scaffolded::dir`].
    pub files: Vec<PathBuf>,
}

/// The toolchain Tenon is built with, for scaffolded projects.
const TOOLCHAIN: &str = include_str!("../../../rust-toolchain.toml");

const COMPONENT: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../templates/component/Cargo.toml"),
    ),
    (
        "tenon.toml",
        include_str!("../templates/component/tenon.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../templates/component/src/lib.rs"),
    ),
    (
        "tests/plugin.rs",
        include_str!("../templates/component/tests/plugin.rs"),
    ),
    (
        "README.md",
        include_str!("../templates/component/README.md"),
    ),
    (".gitignore", "/target\n"),
];

const PROCESS: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../templates/process/Cargo.toml"),
    ),
    (
        "tenon.toml",
        include_str!("../templates/process/tenon.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../templates/process/src/lib.rs"),
    ),
    (
        "src/main.rs",
        include_str!("../templates/process/src/main.rs"),
    ),
    (
        "tests/plugin.rs",
        include_str!("../templates/process/tests/plugin.rs"),
    ),
    ("README.md", include_str!("../templates/process/README.md")),
    (".gitignore", "/target\n"),
];

const EXTISM: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../templates/extism/Cargo.toml")),
    ("tenon.toml", include_str!("../templates/extism/tenon.toml")),
    ("src/lib.rs", include_str!("../templates/extism/src/lib.rs")),
    ("README.md", include_str!("../templates/extism/README.md")),
    (".gitignore", "/target\n"),
];

/// Rust keywords and the crates of the standard distribution: cargo refuses
/// them as package names.
const RESERVED: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc-macro",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// Checks `name` as both a Cargo package name and the name part of a plugin
/// id: lowercase ascii letters, digits and `-`, starting with a letter.
fn check_name(name: &str, publisher: &str) -> Result<PluginId, BuildError> {
    let invalid = |reason: &str| BuildError::InvalidName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(invalid("start it with a lowercase ascii letter"));
    }
    if RESERVED.contains(&name) {
        return Err(invalid("it is reserved by Rust; choose another"));
    }
    PluginId::new(&format!("{publisher}/{name}")).map_err(|e| invalid(&e.to_string()))
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `My Plugin` from `my-plugin`.
fn title(name: &str) -> String {
    name.split('-')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn dependency(pdk: &PdkSource, features: &str) -> String {
    match pdk {
        PdkSource::Path(path) => format!(
            "{{ path = {}{features} }}",
            toml_string(&path.to_string_lossy())
        ),
        PdkSource::Version(version) => {
            format!("{{ version = {}{features} }}", toml_string(version))
        }
    }
}

/// Writes a new plugin project named `name` of `kind` (component, extism or
/// process) into `dir`, which must not exist or be empty.
///
/// A component project holds `Cargo.toml` (depending on `tenon-pdk`),
/// `tenon.toml`, `src/lib.rs` (a plugin that signs responses and answers a
/// `greet` function), `tests/plugin.rs` (which builds the plugin and runs it
/// under tenon-pdk's mock host), a README and a `.gitignore`. An Extism
/// project uses `extism-pdk` and exports `handle_hook` with the JSON hook
/// protocol of Tenon's Extism runtime. A process project holds the
/// component's plugin as its library, a `src/main.rs` serving it
/// (`tenon_pdk::process::serve`, feature `process`), and a test that runs the
/// plugin's code directly.
pub fn scaffold(
    name: &str,
    kind: RuntimeKind,
    dir: &Path,
    options: &ScaffoldOptions,
) -> Result<Scaffolded, BuildError> {
    let id = check_name(name, &options.publisher)?;
    let templates = match kind {
        RuntimeKind::Component => COMPONENT,
        RuntimeKind::Extism => EXTISM,
        RuntimeKind::Process => PROCESS,
        RuntimeKind::Native => {
            return Err(BuildError::UnsupportedKind {
                path: dir.join("tenon.toml"),
                kind,
            });
        }
    };
    if let Ok(mut entries) = fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err(BuildError::DirectoryNotEmpty {
            dir: dir.to_owned(),
        });
    }
    let substitutions = [
        ("{{name}}", name.to_owned()),
        ("{{crate}}", name.replace('-', "_")),
        ("{{id}}", id.as_str().to_owned()),
        ("{{title}}", title(name)),
        ("{{pdk}}", dependency(&options.pdk, "")),
        (
            "{{pdk_testing}}",
            dependency(&options.pdk, ", features = [\"testing\"]"),
        ),
        (
            "{{pdk_process}}",
            dependency(&options.pdk, ", features = [\"process\"]"),
        ),
        ("{{extism_pdk}}", toml_string(&options.extism_pdk)),
    ];
    let mut files = Vec::new();
    let mut write = |relative: &str, content: &str| -> Result<(), BuildError> {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(BuildError::io(parent))?;
        }
        fs::write(&path, content).map_err(BuildError::io(&path))?;
        files.push(PathBuf::from(relative));
        Ok(())
    };
    for (relative, template) in templates {
        let mut content = (*template).to_owned();
        for (key, value) in &substitutions {
            content = content.replace(key, value);
        }
        write(relative, &content)?;
    }
    if options.toolchain_file {
        write("rust-toolchain.toml", TOOLCHAIN)?;
    }
    if let Some(lockfile) = &options.lockfile {
        let content = fs::read_to_string(lockfile).map_err(BuildError::io(lockfile))?;
        write("Cargo.lock", &content)?;
    }
    Ok(Scaffolded {
        dir: dir.to_owned(),
        id: id.as_str().to_owned(),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let check = |name: &str, ok: bool| {
            assert_eq!(check_name(name, "local").is_ok(), ok, "{name}");
        };
        check("hello", true);
        check("my-plugin2", true);
        check("Hello", false);
        check("2fast", false);
        check("-x", false);
        check("a_b", false);
        check("a/b", false);
        check("", false);
        check("test", false);
        check("fn", false);
        check(&"a".repeat(65), false);
        let error = check_name("Hello", "local").unwrap_err();
        assert!(error.to_string().contains("lowercase"), "{error}");
    }

    #[test]
    fn toml_strings_and_titles() {
        assert_eq!(toml_string(r#"C:\a "b""#), r#""C:\\a \"b\"""#);
        assert_eq!(toml_string("a\nb\u{1}"), r#""a\nb\u0001""#);
        assert_eq!(title("my-first-plugin"), "My First Plugin");
        assert_eq!(
            dependency(
                &PdkSource::Version("0.1".into()),
                ", features = [\"testing\"]"
            ),
            r#"{ version = "0.1", features = ["testing"] }"#
        );
    }
}
