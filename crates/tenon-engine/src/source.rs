//! Reading a plugin from where the operator points: a plugin directory
//! (`tenon.toml` + its module) or a package archive (checked against the
//! trust policy before anything is unpacked); or from what the host ships
//! ([`HostPlugin`]: native code it registered, a module built into it),
//! recorded as `native` or `builtin` so that the grant policy and safe mode
//! treat it as first-party.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use tenon_manifest::{Diagnostic, Format, Manifest, RuntimeKind};
use tenon_marketplace::{Origin, SIGNATURE_EXTENSION, SignatureFile, UnpackLimits};
use tenon_registry::{PluginSource, SourceKind};

use crate::engine::PluginEngine;
use crate::error::{EngineError, Result};
use crate::publisher::Arrival;
use crate::trust::{self, Checked, TrustRecord};

/// The largest module read from a plugin directory: 256 MiB.
const MAX_MODULE_BYTES: u64 = 256 << 20;
/// The largest manifest read: 1 MiB.
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Where a plugin is installed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallSource {
    /// A plugin directory: a manifest (`tenon.toml`, `tenon.json` or
    /// `tenon.yaml`) and the module it names.
    Directory(PathBuf),
    /// A package archive (`.tenon`), with its signatures in `<archive>.sig`
    /// when present.
    Archive(PathBuf),
    /// A plugin the host ships (recorded as `native` or `builtin`).
    Host(HostPlugin),
    /// A plugin from the marketplace at `url`: the newest version matching
    /// `req` that is not yanked and runs on this host (recorded as
    /// `marketplace`, with the URL, version and sha256). Installing it
    /// installs the dependencies it needs too.
    Marketplace {
        /// The marketplace's URL.
        url: String,
        /// The plugin.
        id: tenon_manifest::PluginId,
        /// Which versions are acceptable.
        req: tenon_manifest::VersionReq,
    },
    /// A package archive received in memory (an upload), checked like one
    /// read from a file except that the trust policy judges it remote.
    Upload(UploadedPackage),
}

/// A package archive received in memory, with the bytes of its signature
/// file (`<archive>.sig`) when it came with one.
#[derive(Clone, PartialEq, Eq)]
pub struct UploadedPackage {
    /// What to call it in messages and in the recorded source (a file
    /// name, an upload id); it is never opened.
    pub name: String,
    /// The `.tenon` archive.
    pub archive: Vec<u8>,
    /// The signature file, when sent.
    pub signatures: Option<Vec<u8>>,
}

impl std::fmt::Debug for UploadedPackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadedPackage")
            .field("name", &self.name)
            .field("archive_bytes", &self.archive.len())
            .field("signed", &self.signatures.is_some())
            .finish()
    }
}

/// A plugin the host application itself provides, with its manifest: native
/// Rust code registered with the native runtime
/// ([`HostPlugin::native`]), or a WebAssembly module built into the host
/// ([`HostPlugin::builtin`]). Installed from here it is recorded with the
/// source kind `native` or `builtin`, which the default [`GrantPolicy`]
/// trusts (its permissions need no operator grant) and safe mode still
/// starts. A manifest that an operator installs from a directory is never
/// first-party, whatever its `runtime.kind`.
///
/// [`GrantPolicy`]: crate::GrantPolicy
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlugin {
    kind: SourceKind,
    manifest: String,
    format: Format,
    module: Option<Vec<u8>>,
}

impl HostPlugin {
    /// A native plugin: `manifest` (TOML) has `runtime.kind = "native"` and
    /// a `runtime.entry` registered with the engine's native runtime.
    pub fn native(manifest: &str) -> Self {
        Self {
            kind: SourceKind::Native,
            manifest: manifest.to_owned(),
            format: Format::Toml,
            module: None,
        }
    }

    /// A WebAssembly plugin built into the host: `manifest` (TOML) and the
    /// bytes of the module it names.
    pub fn builtin(manifest: &str, module: impl Into<Vec<u8>>) -> Self {
        Self {
            kind: SourceKind::Builtin,
            manifest: manifest.to_owned(),
            format: Format::Toml,
            module: Some(module.into()),
        }
    }

    /// The same plugin with its manifest in another format.
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// `native` or `builtin`.
    pub fn kind(&self) -> SourceKind {
        self.kind
    }
}

impl InstallSource {
    /// A directory or an archive, by what is at `path`.
    pub fn path(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().to_path_buf();
        if path.is_dir() {
            Self::Directory(path)
        } else {
            Self::Archive(path)
        }
    }

    /// The path, for a directory or an archive.
    pub fn as_path(&self) -> Option<&Path> {
        match self {
            Self::Directory(path) | Self::Archive(path) => Some(path),
            Self::Host(_) | Self::Marketplace { .. } | Self::Upload(_) => None,
        }
    }
}

impl From<&Path> for InstallSource {
    fn from(path: &Path) -> Self {
        Self::path(path)
    }
}

impl From<PathBuf> for InstallSource {
    fn from(path: PathBuf) -> Self {
        Self::path(path)
    }
}

impl From<HostPlugin> for InstallSource {
    fn from(plugin: HostPlugin) -> Self {
        Self::Host(plugin)
    }
}

impl From<UploadedPackage> for InstallSource {
    fn from(package: UploadedPackage) -> Self {
        Self::Upload(package)
    }
}

impl From<&str> for InstallSource {
    fn from(path: &str) -> Self {
        Self::path(path)
    }
}

/// A plugin read from its source, checked, not yet stored.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) manifest: Manifest,
    pub(crate) module: Option<Vec<u8>>,
    pub(crate) source: PluginSource,
    pub(crate) warnings: Vec<Diagnostic>,
    /// What checking its origin found.
    pub(crate) trust: TrustRecord,
    /// The author key that made it trusted and may bind its publisher
    /// (`Verification::author_public_key`); empty when unsigned, untrusted,
    /// or when which author vouched is ambiguous.
    pub(crate) authors: Vec<tenon_marketplace::PublicKey>,
}

fn source_error(path: &Path, message: impl Into<String>) -> EngineError {
    EngineError::Source {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> EngineError {
    EngineError::InvalidPlugin {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The manifest files a plugin directory may hold, in the order they are
/// looked for.
const MANIFEST_NAMES: [&str; 4] = ["tenon.toml", "tenon.json", "tenon.yaml", "tenon.yml"];

/// Finds a directory's one manifest file.
pub(crate) fn find_manifest(dir: &Path) -> Result<PathBuf> {
    let found: Vec<PathBuf> = MANIFEST_NAMES
        .iter()
        .map(|name| dir.join(name))
        .filter(|path| path.is_file())
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(source_error(
            dir,
            format!(
                "no manifest: a plugin directory holds one of {}",
                MANIFEST_NAMES.join(", ")
            ),
        )),
        many => Err(invalid(
            dir,
            format!(
                "several manifests ({}): keep exactly one",
                many.iter()
                    .filter_map(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

async fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let metadata = tokio::fs::metadata(path)
        .await
        .map_err(|e| source_error(path, e.to_string()))?;
    if metadata.len() > limit {
        return Err(invalid(
            path,
            format!(
                "the {what} is {} bytes, more than the {limit} allowed",
                metadata.len()
            ),
        ));
    }
    tokio::fs::read(path)
        .await
        .map_err(|e| source_error(path, e.to_string()))
}

/// A module path from a manifest, resolved inside `dir`; refuses paths that
/// are absolute or climb out.
fn module_path(dir: &Path, module: &str) -> Result<PathBuf> {
    let relative = Path::new(module);
    let escapes = relative.is_absolute()
        || relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes {
        return Err(invalid(
            dir,
            format!("runtime.module `{module}` must be a path inside the plugin directory"),
        ));
    }
    Ok(dir.join(relative))
}

/// The lowercase hex sha256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    tenon_registry::Sha256Digest::of(bytes).to_string()
}

impl PluginEngine {
    fn check_manifest_here(&self, manifest: &Manifest, path: &Path) -> Result<Vec<Diagnostic>> {
        let context = self.validation_context();
        let diagnostics = manifest.validate(&context);
        if diagnostics.iter().any(Diagnostic::is_error) {
            return Err(EngineError::InvalidManifest {
                path: Some(path.to_path_buf()),
                diagnostics,
            });
        }
        Ok(diagnostics)
    }

    pub(crate) fn validation_context(&self) -> tenon_manifest::ValidationContext {
        let hooks: BTreeSet<String> = self.shared.specs.iter().map(|s| s.name.clone()).collect();
        self.shared
            .profile
            .validation_context((!hooks.is_empty()).then_some(hooks))
    }

    /// Reads and checks a plugin from `source`: its origin against the
    /// trust policy, and what it asks for against the level it reached.
    pub(crate) async fn read_source(&self, source: &InstallSource) -> Result<Candidate> {
        let candidate = match source {
            InstallSource::Directory(dir) => self.read_directory(dir).await?,
            InstallSource::Archive(path) => self.read_archive(path).await?,
            InstallSource::Host(plugin) => self.read_host(plugin)?,
            InstallSource::Marketplace { url, id, req } => {
                self.read_marketplace(url, id, req).await?
            }
            InstallSource::Upload(package) => self.read_upload(package).await?,
        };
        let refused = trust::exceeds(candidate.trust.level, &candidate.manifest);
        if !refused.is_empty() {
            return Err(EngineError::TrustLevel {
                id: candidate.manifest.plugin.id.clone(),
                version: candidate.manifest.plugin.version.clone(),
                level: candidate.trust.level,
                refused,
            });
        }
        Ok(candidate)
    }

    /// Checks a plugin the host ships. Its manifest is validated like any
    /// other; a native plugin carries no module, a built-in one the module
    /// its manifest names.
    fn read_host(&self, plugin: &HostPlugin) -> Result<Candidate> {
        let what = format!("the host's {} plugin", plugin.kind.as_str());
        let place = PathBuf::from(format!("<{what}>"));
        let parsed =
            tenon_manifest::parse(&plugin.manifest, plugin.format, &self.validation_context());
        let warnings: Vec<Diagnostic> = parsed.warnings().cloned().collect();
        let manifest = parsed
            .manifest
            .ok_or_else(|| EngineError::InvalidManifest {
                path: Some(place.clone()),
                diagnostics: parsed.diagnostics.clone(),
            })?;
        let wasm = manifest.runtime.kind.is_wasm();
        let module = match (plugin.kind, &plugin.module) {
            (SourceKind::Native, None) if manifest.runtime.kind == RuntimeKind::Native => None,
            (SourceKind::Native, _) => {
                return Err(invalid(
                    &place,
                    format!(
                        "a native plugin has runtime.kind = \"native\" and no module (its manifest says `{}`)",
                        manifest.runtime.kind
                    ),
                ));
            }
            (_, Some(bytes)) if wasm => {
                check_pin(&manifest, bytes, &place)?;
                Some(bytes.clone())
            }
            (_, _) => {
                return Err(invalid(
                    &place,
                    format!(
                        "a built-in plugin is a WebAssembly module with its manifest (runtime.kind `{}`)",
                        manifest.runtime.kind
                    ),
                ));
            }
        };
        let reference = format!("{} {}", self.shared.profile.name, plugin.kind.as_str());
        Ok(Candidate {
            trust: TrustRecord::unsigned(
                Checked::Host,
                tenon_marketplace::TrustLevel::Internal,
                &manifest,
            ),
            source: PluginSource::new(plugin.kind, &reference),
            manifest,
            module,
            warnings,
            authors: Vec::new(),
        })
    }

    async fn read_directory(&self, dir: &Path) -> Result<Candidate> {
        let manifest_path = find_manifest(dir)?;
        if !self.shared.trust.allow_unsigned_directories {
            return Err(EngineError::UnsignedDirectory {
                path: dir.to_path_buf(),
            });
        }
        let bytes = read_limited(&manifest_path, MAX_MANIFEST_BYTES, "manifest").await?;
        let format = Format::from_path(&manifest_path).unwrap_or(Format::Toml);
        let text = String::from_utf8(bytes)
            .map_err(|_| invalid(&manifest_path, "the manifest is not UTF-8 text"))?;
        let parsed = tenon_manifest::parse(&text, format, &self.validation_context());
        let warnings: Vec<Diagnostic> = parsed.warnings().cloned().collect();
        let manifest = parsed
            .manifest
            .ok_or_else(|| EngineError::InvalidManifest {
                path: Some(manifest_path.clone()),
                diagnostics: parsed.diagnostics.clone(),
            })?;
        let module = match (&manifest.runtime.module, &manifest.runtime.command) {
            (Some(module), _) if manifest.runtime.kind.is_wasm() => {
                let path = module_path(dir, module)?;
                let bytes = read_limited(&path, MAX_MODULE_BYTES, "module").await?;
                check_pin(&manifest, &bytes, &path)?;
                Some(bytes)
            }
            // A process plugin's executable is its module: stored as the
            // artifact, checked before every start.
            (_, Some(command)) if manifest.runtime.kind == RuntimeKind::Process => {
                let path = module_path(dir, command)?;
                let bytes = read_limited(&path, MAX_MODULE_BYTES, "executable").await?;
                check_pin(&manifest, &bytes, &path)?;
                Some(bytes)
            }
            _ => None,
        };
        let reference = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        Ok(Candidate {
            trust: TrustRecord::unsigned(
                Checked::Directory,
                self.shared.trust.unsigned_level,
                &manifest,
            ),
            manifest,
            module,
            source: PluginSource::new(SourceKind::Directory, &reference.to_string_lossy()),
            warnings,
            authors: Vec::new(),
        })
    }

    async fn read_archive(&self, path: &Path) -> Result<Candidate> {
        let limits = UnpackLimits::default();
        let bytes = read_limited(path, limits.max_archive_bytes, "package").await?;
        let signature_path = PathBuf::from(format!("{}.{SIGNATURE_EXTENSION}", path.display()));
        let signatures =
            match tokio::fs::read(&signature_path).await {
                Ok(text) => Some(SignatureFile::from_json(&text).map_err(|source| {
                    EngineError::Package {
                        path: signature_path.clone(),
                        source,
                    }
                })?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(source_error(&signature_path, e.to_string())),
            };
        let source = PluginSource::new(
            SourceKind::Archive,
            &format!(
                "{} (sha256 {})",
                std::fs::canonicalize(path)
                    .unwrap_or_else(|_| path.to_path_buf())
                    .display(),
                sha256_hex(&bytes)
            ),
        );
        self.read_package(path, bytes, signatures, Origin::Local, source)
            .await
    }

    /// An uploaded archive: the same checks as a file's, under the same
    /// size limit, named by the upload's name, but judged as remote by the
    /// trust policy (`allow_unsigned = "local"` does not admit it unsigned).
    async fn read_upload(&self, package: &UploadedPackage) -> Result<Candidate> {
        let limits = UnpackLimits::default();
        let place = PathBuf::from(format!("<upload {}>", package.name.escape_default()));
        let size = package.archive.len() as u64;
        if size > limits.max_archive_bytes {
            return Err(invalid(
                &place,
                format!(
                    "the package is {size} bytes, more than the {} allowed",
                    limits.max_archive_bytes
                ),
            ));
        }
        let signatures = package
            .signatures
            .as_ref()
            .map(|text| {
                SignatureFile::from_json(text).map_err(|source| EngineError::Package {
                    path: PathBuf::from(format!("{}.{SIGNATURE_EXTENSION}", place.display())),
                    source,
                })
            })
            .transpose()?;
        let source = PluginSource::new(
            SourceKind::Archive,
            &format!(
                "upload {} (sha256 {})",
                package.name.escape_default(),
                sha256_hex(&package.archive)
            ),
        );
        // An upload came over the network: it is never a local package,
        // whatever `allow_unsigned = "local"` lets through from disk.
        self.read_package(
            &place,
            package.archive.clone(),
            signatures,
            Origin::Remote,
            source,
        )
        .await
    }

    /// Verifies a package's signatures against the trust policy (from its
    /// sha256 and signature file alone), then unpacks it in memory and checks
    /// its manifest against this host. `path` names it in errors.
    pub(crate) async fn read_package(
        &self,
        path: &Path,
        bytes: Vec<u8>,
        signatures: Option<SignatureFile>,
        origin: Origin,
        source: PluginSource,
    ) -> Result<Candidate> {
        let limits = UnpackLimits::default();
        let package = |source| EngineError::Package {
            path: path.to_path_buf(),
            source,
        };
        let trust = self.shared.trust.clone();
        let (contents, verification) = tokio::task::spawn_blocking(move || {
            let verified = tenon_marketplace::verify(&bytes, signatures.as_ref(), &trust, origin)?;
            let contents = verified.unpack_to_memory(&limits)?;
            Ok::<_, tenon_marketplace::PackageError>((contents, verified.verification().clone()))
        })
        .await
        .map_err(|e| source_error(path, format!("unpacking was interrupted: {e}")))?
        .map_err(package)?;
        let manifest = contents.info.manifest.clone();
        let mut warnings = contents.info.warnings.clone();
        warnings.extend(self.check_manifest_here(&manifest, path)?);
        let module = if manifest.runtime.kind.is_wasm() {
            let module = contents
                .module()
                .ok_or_else(|| invalid(path, "the package holds no module for its manifest"))?;
            check_pin(&manifest, module, path)?;
            Some(module.to_vec())
        } else if manifest.runtime.kind == RuntimeKind::Process {
            let executable = contents
                .info
                .files
                .iter()
                .find(|f| f.kind == tenon_marketplace::FileKind::Command)
                .and_then(|f| contents.get(&f.path))
                .ok_or_else(|| {
                    invalid(
                        path,
                        "the package holds no executable for its manifest's runtime.command",
                    )
                })?;
            check_pin(&manifest, executable, path)?;
            Some(executable.to_vec())
        } else {
            None
        };
        Ok(Candidate {
            trust: TrustRecord::of_package(&verification, &manifest),
            manifest,
            module,
            source,
            warnings,
            authors: verification.author_public_key.into_iter().collect(),
        })
    }
}

fn check_pin(manifest: &Manifest, module: &[u8], path: &Path) -> Result<()> {
    if let Some(pin) = &manifest.runtime.sha256 {
        let actual = sha256_hex(module);
        if !actual.eq_ignore_ascii_case(pin) {
            return Err(invalid(
                path,
                format!("the module's sha256 is {actual}, but runtime.sha256 pins {pin}"),
            ));
        }
    }
    Ok(())
}

/// A plugin found by [`PluginEngine::discover`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Discovered {
    /// Where it is: a plugin directory or a package archive.
    pub source: InstallSource,
    /// Its id.
    pub id: tenon_manifest::PluginId,
    /// Its version.
    pub version: tenon_manifest::Version,
    /// The version installed in this tenant, if any.
    pub installed: Option<tenon_manifest::Version>,
}

impl serde::Serialize for InstallSource {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Directory(path) | Self::Archive(path) => serializer.collect_str(&path.display()),
            Self::Host(plugin) => serializer.collect_str(&format_args!("host:{}", plugin.kind)),
            Self::Marketplace { url, id, req } => {
                serializer.collect_str(&format_args!("{url}#{id}@{req}"))
            }
            Self::Upload(package) => {
                serializer.collect_str(&format_args!("upload:{}", package.name.escape_default()))
            }
        }
    }
}

impl PluginEngine {
    /// Finds the plugins in `dir`: its subdirectories holding a manifest and
    /// its `.tenon` archives (checked as an install would, but not
    /// installed), with the version installed in this tenant. Entries that
    /// are not plugins are skipped; plugins that do not check out are
    /// reported in the second list with why.
    pub async fn discover(&self, dir: &Path) -> Result<(Vec<Discovered>, Vec<(PathBuf, String)>)> {
        let mut entries = tokio::fs::read_dir(dir)
            .await
            .map_err(|e| source_error(dir, e.to_string()))?;
        let mut paths = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| source_error(dir, e.to_string()))?
        {
            paths.push(entry.path());
        }
        paths.sort();
        let mut found = Vec::new();
        let mut refused = Vec::new();
        for path in paths {
            let source = if path.is_dir() && find_manifest(&path).is_ok() {
                InstallSource::Directory(path.clone())
            } else if path
                .extension()
                .is_some_and(|e| e == tenon_marketplace::PACKAGE_EXTENSION)
            {
                InstallSource::Archive(path.clone())
            } else {
                continue;
            };
            let checked = match self.read_source(&source).await {
                Ok(candidate) => {
                    let installed = self
                        .shared
                        .store
                        .get_plugin(&self.tenant.id, &candidate.manifest.plugin.id)
                        .await?;
                    let arrival = if installed.is_some() {
                        Arrival::Upgrade
                    } else {
                        Arrival::Install
                    };
                    self.check_publisher(&candidate, arrival)
                        .await
                        .map(|_| (candidate, installed))
                }
                Err(error) => Err(error),
            };
            match checked {
                Ok((candidate, installed)) => {
                    found.push(Discovered {
                        source,
                        id: candidate.manifest.plugin.id,
                        version: candidate.manifest.plugin.version,
                        installed: installed.map(|record| record.version),
                    });
                }
                Err(error) => refused.push((path, error.to_string())),
            }
        }
        Ok((found, refused))
    }
}
