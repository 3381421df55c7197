//! Building plugin projects and assembling installable plugin directories.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use tenon_manifest::{Format, Manifest, RuntimeKind, ValidationContext};

use crate::BuildError;
use crate::cargo::{BuildRequest, Cargo, Metadata, Package};

/// The Rust target a runtime kind is built for: `wasm32-wasip2` for
/// components, `wasm32-unknown-unknown` for Extism modules, `None` for kinds
/// that are not WebAssembly (a process plugin is built for the host, a
/// native plugin is not built by this crate at all).
pub fn target_for(kind: RuntimeKind) -> Option<&'static str> {
    match kind {
        RuntimeKind::Component => Some("wasm32-wasip2"),
        RuntimeKind::Extism => Some("wasm32-unknown-unknown"),
        RuntimeKind::Native | RuntimeKind::Process => None,
    }
}

/// The cargo profile to build with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// `--release`: what hosts should run (and what tests use, because
    /// optimised modules also compile faster in the host).
    #[default]
    Release,
    /// The dev profile: faster to build, larger and slower to run.
    Debug,
}

impl Profile {
    /// `release` or `debug`, the directory cargo writes to.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Debug => "debug",
        }
    }
}

/// How to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The profile (release by default).
    pub profile: Profile,
    /// Cargo's target directory; the workspace's own (`cargo metadata`'s
    /// `target_directory`) when `None`. Give builds started from inside
    /// another cargo command (tests, xtask) their own directory, so that they
    /// never wait on the outer build's lock.
    pub target_dir: Option<PathBuf>,
    /// Where assembled plugin directories go (one subdirectory per package,
    /// named after it); `<target_dir>/tenon` when `None`.
    pub out_dir: Option<PathBuf>,
    /// The cargo to run; `$CARGO`, else `cargo` on the PATH, when `None`.
    pub cargo: Option<PathBuf>,
    /// Pass `--locked`: fail rather than update `Cargo.lock` (CI).
    pub locked: bool,
    /// Pass `--offline`.
    pub offline: bool,
}

/// A built plugin, assembled into an installable directory.
#[derive(Debug, Clone)]
pub struct BuiltPlugin {
    /// The Cargo package name.
    pub package: String,
    /// The parsed, valid manifest.
    pub manifest: Manifest,
    /// The project directory it was built from.
    pub source_dir: PathBuf,
    /// The installable directory: the manifest, the module at the manifest's
    /// `runtime.module` path (a process plugin's executable at its
    /// `runtime.command` path), and the project's README.md and CHANGELOG.md
    /// when it has them.
    pub dir: PathBuf,
    /// The manifest file inside [`BuiltPlugin::dir`].
    pub manifest_path: PathBuf,
    /// The module (or a process plugin's executable) inside
    /// [`BuiltPlugin::dir`].
    pub module_path: PathBuf,
}

impl BuiltPlugin {
    /// The plugin's id, as in its manifest.
    pub fn id(&self) -> &str {
        self.manifest.plugin.id.as_str()
    }

    /// The module's bytes.
    pub fn module_bytes(&self) -> Result<Vec<u8>, BuildError> {
        fs::read(&self.module_path).map_err(BuildError::io(&self.module_path))
    }

    /// The manifest's text, as it is in the plugin directory.
    pub fn manifest_text(&self) -> Result<String, BuildError> {
        fs::read_to_string(&self.manifest_path).map_err(BuildError::io(&self.manifest_path))
    }
}

/// Files copied into the plugin directory beside the manifest and module,
/// when the project has them.
const EXTRA_FILES: &[&str] = &["README.md", "CHANGELOG.md"];

/// A plugin project found on disk, before building.
#[derive(Debug)]
struct Project {
    package: String,
    dir: PathBuf,
    manifest: Manifest,
    manifest_path: PathBuf,
    /// The Rust target; `None` for the host's (process plugins).
    target: Option<&'static str>,
}

/// Finds and validates a project's manifest.
fn read_manifest(dir: &Path) -> Result<(Manifest, PathBuf), BuildError> {
    let Some((format, path)) = Format::ALL
        .iter()
        .map(|f| (*f, dir.join(f.file_name())))
        .find(|(_, path)| path.is_file())
    else {
        return Err(BuildError::NoManifest {
            dir: dir.to_owned(),
        });
    };
    let source = fs::read(&path).map_err(BuildError::io(&path))?;
    // Building does not judge whether some host can run the plugin: no
    // plugin API versions to check `engine.tenon` against.
    let context = ValidationContext {
        api_versions: Vec::new(),
        ..ValidationContext::default()
    };
    let parsed = tenon_manifest::parse_bytes(&source, format, &context);
    let manifest = parsed
        .into_result()
        .map_err(|diagnostics| BuildError::InvalidManifest {
            path: path.clone(),
            diagnostics: diagnostics.into_iter().filter(|d| d.is_error()).collect(),
        })?;
    Ok((manifest, path))
}

fn project(package: &Package) -> Result<Project, BuildError> {
    let dir = package
        .manifest_path
        .parent()
        .unwrap_or(Path::new("."))
        .to_owned();
    let (manifest, manifest_path) = read_manifest(&dir)?;
    let kind = manifest.runtime.kind;
    // A process plugin is an executable for the host; a native plugin is
    // compiled into the host itself.
    if kind == RuntimeKind::Native {
        return Err(BuildError::UnsupportedKind {
            path: manifest_path.clone(),
            kind,
        });
    }
    let target = target_for(kind);
    Ok(Project {
        package: package.name.clone(),
        dir,
        manifest,
        manifest_path,
        target,
    })
}

fn canonical(path: &Path) -> Result<PathBuf, BuildError> {
    fs::canonicalize(path).map_err(BuildError::io(path))
}

/// The cargo to run, the project's `Cargo.toml` (canonical, as cargo
/// reports paths) and its workspace's metadata.
fn load(dir: &Path, options: &BuildOptions) -> Result<(Cargo, PathBuf, Metadata), BuildError> {
    let cargo_toml = dir.join("Cargo.toml");
    if !cargo_toml.is_file() {
        return Err(BuildError::NoCargoToml {
            dir: dir.to_owned(),
        });
    }
    let cargo = Cargo::new(options.cargo.as_deref());
    let cargo_toml = canonical(&cargo_toml)?;
    let metadata = cargo.metadata(&cargo_toml)?;
    Ok((cargo, cargo_toml, metadata))
}

/// Builds the plugin project in `dir` (a `Cargo.toml` and a `tenon.toml`)
/// for its runtime's target and assembles it under the output directory.
///
/// The manifest is validated first; the module is checked to be what the
/// runtime loads (a component for `component`, a core module for `extism`,
/// the package's executable, built for the host, for `process`).
pub fn build_plugin(dir: &Path, options: &BuildOptions) -> Result<BuiltPlugin, BuildError> {
    let (cargo, cargo_toml, metadata) = load(dir, options)?;
    let package = metadata
        .packages
        .iter()
        .find(|p| p.manifest_path == cargo_toml)
        .ok_or_else(|| BuildError::CargoOutput {
            command: "cargo metadata".to_owned(),
            message: format!("it does not list the package of {}", cargo_toml.display()),
        })?;
    let project = project(package)?;
    let mut built = build_projects(&cargo, &metadata, &cargo_toml, vec![project], options)?;
    Ok(built
        .remove(&package.name)
        .expect("build_projects returns every project"))
}

/// Builds every plugin of a Cargo workspace (each member building a `cdylib`
/// or a binary, with a manifest beside its `Cargo.toml`) with one cargo
/// invocation per target, and
/// assembles each under the output directory. Returns them by package name.
pub fn build_workspace(
    dir: &Path,
    options: &BuildOptions,
) -> Result<BTreeMap<String, BuiltPlugin>, BuildError> {
    let (cargo, cargo_toml, metadata) = load(dir, options)?;
    let mut projects = Vec::new();
    for package in metadata
        .packages
        .iter()
        .filter(|p| metadata.workspace_members.contains(&p.id) && (p.is_cdylib() || p.is_bin()))
    {
        let dir = package.manifest_path.parent().unwrap_or(Path::new("."));
        if Format::ALL
            .iter()
            .any(|f| dir.join(f.file_name()).is_file())
        {
            projects.push(project(package)?);
        }
    }
    if projects.is_empty() {
        return Err(BuildError::NoPlugins {
            dir: metadata.workspace_root.clone(),
        });
    }
    build_projects(&cargo, &metadata, &cargo_toml, projects, options)
}

fn build_projects(
    cargo: &Cargo,
    metadata: &Metadata,
    cargo_toml: &Path,
    projects: Vec<Project>,
    options: &BuildOptions,
) -> Result<BTreeMap<String, BuiltPlugin>, BuildError> {
    let target_dir = options
        .target_dir
        .clone()
        .unwrap_or_else(|| metadata.target_directory.clone());
    let out_dir = options
        .out_dir
        .clone()
        .unwrap_or_else(|| target_dir.join("tenon"));
    let mut by_target: BTreeMap<Option<&'static str>, Vec<&Project>> = BTreeMap::new();
    for project in &projects {
        by_target.entry(project.target).or_default().push(project);
    }
    let mut modules = std::collections::HashMap::new();
    for (target, group) in &by_target {
        let packages: Vec<String> = group.iter().map(|p| p.package.clone()).collect();
        modules.extend(cargo.build(&BuildRequest {
            manifest: cargo_toml,
            packages: &packages,
            target: *target,
            profile: options.profile,
            target_dir: &target_dir,
            locked: options.locked,
            offline: options.offline,
        })?);
    }
    let mut built = BTreeMap::new();
    for project in projects {
        let cargo_toml = canonical(&project.dir.join("Cargo.toml"))?;
        let module = modules
            .get(&cargo_toml)
            .ok_or_else(|| BuildError::MissingModule {
                package: project.package.clone(),
            })?;
        let plugin = assemble(project, module, &out_dir)?;
        built.insert(plugin.package.clone(), plugin);
    }
    Ok(built)
}

/// Writes the installable directory `<out_dir>/<package>`.
fn assemble(project: Project, module: &Path, out_dir: &Path) -> Result<BuiltPlugin, BuildError> {
    let bytes = fs::read(module).map_err(BuildError::io(module))?;
    check_module(&bytes, project.manifest.runtime.kind, module)?;
    let dir = out_dir.join(&project.package);
    let runtime = &project.manifest.runtime;
    let module_rel = match runtime.kind {
        RuntimeKind::Process => runtime.command.clone(),
        _ => runtime.module.clone(),
    }
    .unwrap_or_else(|| "plugin.wasm".to_owned());
    let module_path = dir.join(&module_rel);
    write_if_changed(&module_path, &bytes)?;
    if runtime.kind == RuntimeKind::Process {
        make_executable(&module_path)?;
    }
    let manifest_name = project
        .manifest_path
        .file_name()
        .expect("a manifest path names a file");
    let manifest_path = dir.join(manifest_name);
    let manifest_bytes =
        fs::read(&project.manifest_path).map_err(BuildError::io(&project.manifest_path))?;
    write_if_changed(&manifest_path, &manifest_bytes)?;
    for extra in EXTRA_FILES {
        let source = project.dir.join(extra);
        if source.is_file() {
            let content = fs::read(&source).map_err(BuildError::io(&source))?;
            write_if_changed(&dir.join(extra), &content)?;
        }
    }
    Ok(BuiltPlugin {
        package: project.package,
        manifest: project.manifest,
        source_dir: project.dir,
        dir,
        manifest_path,
        module_path,
    })
}

/// Writes `bytes` to `path` unless it already holds them, through a temporary
/// file and a rename, so that a reader never sees half a file.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    if fs::read(path).is_ok_and(|existing| existing == bytes) {
        return Ok(());
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(BuildError::io(parent))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    fs::write(&temp, bytes).map_err(BuildError::io(&temp))?;
    fs::rename(&temp, path).map_err(BuildError::io(path))
}

/// Makes a process plugin's executable runnable by its owner and readable by
/// others (`0755`), as `cargo build` left it.
#[cfg(unix)]
fn make_executable(path: &Path) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).map_err(BuildError::io(path))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> Result<(), BuildError> {
    Ok(())
}

/// Checks that `bytes` is the kind of WebAssembly `kind` loads, from its
/// preamble: a component for `component`, a core module for `extism`; a
/// process plugin's executable must not be WebAssembly.
pub(crate) fn check_module(bytes: &[u8], kind: RuntimeKind, path: &Path) -> Result<(), BuildError> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE: [u8; 4] = [1, 0, 0, 0];
    let wrong = |problem: &str| BuildError::WrongModule {
        path: path.to_owned(),
        problem: problem.to_owned(),
    };
    let is_wasm = bytes.len() >= 8 && &bytes[..4] == MAGIC;
    if kind == RuntimeKind::Process {
        return if is_wasm {
            Err(wrong(
                "a WebAssembly binary, but runtime.kind = \"process\" runs an executable for the host",
            ))
        } else {
            Ok(())
        };
    }
    if !is_wasm {
        return Err(wrong("not a WebAssembly binary"));
    }
    let is_core = bytes[4..8] == CORE;
    match kind {
        RuntimeKind::Component if is_core => Err(wrong(
            "a core WebAssembly module, but runtime.kind = \"component\" needs a component: \
             build for wasm32-wasip2 and export the plugin with tenon_pdk::export!",
        )),
        RuntimeKind::Extism if !is_core => Err(wrong(
            "a component, but runtime.kind = \"extism\" needs a core module: \
             build for wasm32-unknown-unknown with extism-pdk",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_preambles() {
        let component = b"\0asm\x0d\x00\x01\x00rest";
        let core = b"\0asm\x01\x00\x00\x00rest";
        let path = Path::new("m.wasm");
        let check = |bytes: &[u8], kind, ok: bool| {
            assert_eq!(
                check_module(bytes, kind, path).is_ok(),
                ok,
                "{kind} {bytes:?}"
            );
        };
        check(component, RuntimeKind::Component, true);
        check(core, RuntimeKind::Component, false);
        check(core, RuntimeKind::Extism, true);
        check(component, RuntimeKind::Extism, false);
        check(b"\0asm", RuntimeKind::Component, false);
        check(b"ELF\x02\x01\x01\x00\x00\x00", RuntimeKind::Extism, false);
        check(
            b"\x7fELF\x02\x01\x01\x00\x00\x00",
            RuntimeKind::Process,
            true,
        );
        check(core, RuntimeKind::Process, false);
        let error = check_module(core, RuntimeKind::Component, path).unwrap_err();
        assert!(error.to_string().contains("wasm32-wasip2"), "{error}");
    }

    #[test]
    fn targets() {
        assert_eq!(target_for(RuntimeKind::Component), Some("wasm32-wasip2"));
        assert_eq!(
            target_for(RuntimeKind::Extism),
            Some("wasm32-unknown-unknown")
        );
        assert_eq!(target_for(RuntimeKind::Native), None);
        assert_eq!(target_for(RuntimeKind::Process), None, "built for the host");
    }

    #[test]
    fn writes_only_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/plugin.wasm");
        write_if_changed(&path, b"one").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        write_if_changed(&path, b"one").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), modified);
        write_if_changed(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["plugin.wasm"], "no temporary file left behind");
    }
}
