//! What plugin authors run: `tenon new`, `tenon build`, `tenon pack`,
//! `tenon keygen`; and turning a path into an installable plugin for
//! `install` and `upgrade` (building a project whose module is missing).

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Serialize;
use tenon_build::{BuildOptions, BuiltPlugin, PdkSource, Profile, ScaffoldOptions};
use tenon_manifest::{Format as ManifestFormat, RuntimeKind, ValidationContext};
use tenon_marketplace::{FileInfo, KeyRotation, PackOptions, Role, SignatureFile, SigningKey};

use crate::exit::{CommandResult, Failure};
use crate::output::Output;
use crate::session::TRUST_POLICY_FILE;

/// The kind of plugin `tenon new` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Kind {
    /// A WebAssembly component in Rust with tenon-pdk: Tenon's fast path.
    Component,
    /// A core module with an Extism PDK (Rust here; any Extism language
    /// works).
    Extism,
    /// An executable in Rust with tenon-pdk's `process` feature, run as an
    /// operating-system process over gRPC (the same `Plugin` trait).
    Process,
}

impl Kind {
    fn runtime(self) -> RuntimeKind {
        match self {
            Self::Component => RuntimeKind::Component,
            Self::Extism => RuntimeKind::Extism,
            Self::Process => RuntimeKind::Process,
        }
    }
}

/// `tenon new` arguments.
#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// The plugin's name: lowercase ascii letters, digits and `-`, starting
    /// with a letter. It names the directory, the Cargo package and the
    /// second half of the plugin id.
    name: String,
    /// The kind of plugin.
    #[arg(long, value_enum, default_value_t = Kind::Component)]
    kind: Kind,
    /// The directory to create (default: ./NAME); it must not exist or be
    /// empty.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The publisher half of the plugin id (`publisher/name`).
    #[arg(long, default_value = "local")]
    publisher: String,
    /// Use tenon-pdk from this path (default: the Tenon checkout this
    /// `tenon` was built from).
    #[arg(long, value_name = "DIR", conflicts_with = "pdk_version")]
    pdk_path: Option<PathBuf>,
    /// Use tenon-pdk from the registry at this version requirement.
    #[arg(long, value_name = "REQ")]
    pdk_version: Option<String>,
    /// Start the project's Cargo.lock from this file (to share compiled
    /// dependencies with another project, such as Tenon's examples).
    #[arg(long, value_name = "FILE")]
    lockfile: Option<PathBuf>,
    /// Do not write a rust-toolchain.toml pinning Tenon's toolchain and
    /// WebAssembly targets.
    #[arg(long)]
    no_toolchain_file: bool,
}

/// How to build a plugin project (`build`, and `pack`, `install`, `upgrade`
/// when they build one).
#[derive(Debug, Clone, Args)]
pub(crate) struct BuildFlags {
    /// Build with the dev profile instead of release (faster to build,
    /// slower to run).
    #[arg(long)]
    debug: bool,
    /// Cargo's target directory (default: the project's).
    #[arg(long, value_name = "DIR")]
    target_dir: Option<PathBuf>,
}

impl BuildFlags {
    fn options(&self) -> BuildOptions {
        BuildOptions {
            profile: if self.debug {
                Profile::Debug
            } else {
                Profile::Release
            },
            target_dir: self.target_dir.clone(),
            ..BuildOptions::default()
        }
    }
}

/// `tenon build` arguments.
#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// The plugin project: a Cargo package with a tenon.toml beside its
    /// Cargo.toml.
    #[arg(default_value = ".")]
    dir: PathBuf,
    #[command(flatten)]
    flags: BuildFlags,
    /// Where the installable plugin directory goes (default:
    /// <target-dir>/tenon/<package>).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// `tenon pack` arguments.
#[derive(Debug, Args)]
pub(crate) struct PackArgs {
    /// A plugin directory (manifest and module), or a plugin project (built
    /// first when its module is not there).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The archive to write (default: ./publisher.name-version.tenon).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Sign the package as its author with this key (made by `tenon
    /// keygen`); the signature goes to <archive>.sig.
    #[arg(long, value_name = "KEYFILE")]
    sign: Option<PathBuf>,
    #[command(flatten)]
    flags: BuildFlags,
}

/// `tenon keygen` arguments.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the new secret key (mode 0600; it must not exist).
    file: PathBuf,
    /// Rotate: also write a statement, signed by the signing key in this
    /// file, that the new key speaks for it from now on (for publishers
    /// bound to the old key; add it to the trust policy with `tenon trust
    /// add --rotation STATEMENT`).
    #[arg(long, value_name = "OLD_KEYFILE")]
    rotate_from: Option<PathBuf>,
    /// Where the rotation statement goes (default: FILE.rotation.json; it
    /// must not exist).
    #[arg(long, value_name = "FILE", requires = "rotate_from")]
    rotation_out: Option<PathBuf>,
    /// Make the rotation statement for this publisher's plugins only: it
    /// moves that publisher's binding and no other's, and trusts the new
    /// key for that publisher only.
    #[arg(long, value_name = "PUBLISHER", requires = "rotate_from")]
    publisher: Option<String>,
}

/// What `tenon new` prints in JSON.
#[derive(Serialize)]
struct NewJson {
    id: String,
    kind: &'static str,
    dir: String,
    files: Vec<String>,
}

/// Runs `tenon new`.
pub(crate) fn new(args: NewArgs, output: &Output) -> CommandResult {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let mut options = ScaffoldOptions {
        publisher: args.publisher,
        toolchain_file: !args.no_toolchain_file,
        lockfile: args.lockfile,
        ..ScaffoldOptions::default()
    };
    if let Some(path) = args.pdk_path {
        options.pdk = PdkSource::Path(absolute(&path)?);
    } else if let Some(version) = args.pdk_version {
        options.pdk = PdkSource::Version(version);
    }
    let scaffolded = tenon_build::scaffold(&args.name, args.kind.runtime(), &dir, &options)?;
    let policy = Path::new(".tenon").join(TRUST_POLICY_FILE);
    let policy_path = scaffolded.dir.join(&policy);
    std::fs::create_dir_all(policy_path.parent().unwrap_or(&scaffolded.dir))
        .and_then(|()| std::fs::write(&policy_path, PROJECT_TRUST_POLICY))
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", policy_path.display())))?;
    let files: Vec<String> = scaffolded
        .files
        .iter()
        .chain([&policy])
        .map(|f| f.display().to_string())
        .collect();
    if output.is_json() {
        return output.json(&NewJson {
            id: scaffolded.id,
            kind: args.kind.runtime().as_str(),
            dir: absolute(&scaffolded.dir)?.display().to_string(),
            files,
        });
    }
    let mut text = format!(
        "{} {} ({} plugin) in {}\n",
        output.good("Created"),
        output.bold(&scaffolded.id),
        args.kind.runtime().as_str(),
        scaffolded.dir.display()
    );
    for file in &files {
        text.push_str(&format!("  {file}\n"));
    }
    let cd = scaffolded.dir.display();
    text.push_str(&match args.kind {
        Kind::Component => format!(
            "Next: cd {cd} && cargo test    (builds it and runs it under tenon-pdk's mock host)\n      cd {cd} && tenon install .    (builds it and installs it; .tenon/trust.toml has the development switch on)\n"
        ),
        Kind::Extism => format!(
            "Next: cd {cd} && tenon install .    (builds it and installs it; .tenon/trust.toml has the development switch on)\n"
        ),
        Kind::Process => format!(
            "Next: cd {cd} && cargo test    (runs the plugin's code directly)\n      cd {cd} && tenon install .    (builds the executable and installs it; .tenon/trust.toml has the development switch on)\n"
        ),
    });
    output.text(&text)
}

/// The trust policy of a new project's own registry (`.tenon/trust.toml`):
/// the development switch on, so that the project installs from its
/// directory.
const PROJECT_TRUST_POLICY: &str = "\
# The trust policy of this project's development registry (.tenon/), read by
# `tenon` commands run here. The development switch lets plugin directories
# and unsigned packages in, at trust level `internal`. A production registry
# keeps it off and lists the keys it trusts: see Tenon's docs/package-format.md.
allow_unsigned = \"local\"
allow_unsigned_directories = true
unsigned_level = \"internal\"
";

/// What `tenon build` prints in JSON.
#[derive(Serialize)]
struct BuildJson {
    id: String,
    version: String,
    kind: &'static str,
    package: String,
    dir: String,
    module: String,
    module_size: u64,
    module_sha256: String,
}

fn build_json(built: &BuiltPlugin) -> Result<BuildJson, Failure> {
    let bytes = built.module_bytes()?;
    Ok(BuildJson {
        id: built.id().to_owned(),
        version: built.manifest.plugin.version.to_string(),
        kind: built.manifest.runtime.kind.as_str(),
        package: built.package.clone(),
        dir: built.dir.display().to_string(),
        module: built.module_path.display().to_string(),
        module_size: bytes.len() as u64,
        module_sha256: tenon_marketplace::Sha256Digest::of(&bytes).to_string(),
    })
}

/// Builds the project in `dir`, with a spinner.
fn build_project(
    dir: &Path,
    options: &BuildOptions,
    output: &Output,
) -> Result<BuiltPlugin, Failure> {
    let target = project_target(dir).unwrap_or("this machine");
    let _spinner = output.spinner(&format!("compiling {} for {target}", dir.display()));
    Ok(tenon_build::build_plugin(dir, options)?)
}

/// The Rust target of the project in `dir`, from its manifest (`None` for
/// a process plugin, built for this machine, or an unreadable manifest).
fn project_target(dir: &Path) -> Option<&'static str> {
    tenon_build::target_for(read_manifest_lenient(dir)?.runtime.kind)
}

/// Runs `tenon build`.
pub(crate) fn build(args: BuildArgs, output: &Output) -> CommandResult {
    let mut options = args.flags.options();
    options.out_dir = args.out_dir;
    let built = build_project(&args.dir, &options, output)?;
    let report = build_json(&built)?;
    if output.is_json() {
        return output.json(&report);
    }
    output.text(&format!(
        "{} {} {} ({}, {} bytes)\n  {}\n",
        output.good("Built"),
        output.bold(&report.id),
        report.version,
        report.kind,
        report.module_size,
        report.dir
    ))
}

/// A path made absolute against the current directory.
fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(path)
        .map_err(|e| Failure::usage(format!("cannot resolve {}: {e}", path.display())))
}

/// A plugin ready to install or pack.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// A package archive.
    Archive(PathBuf),
    /// A plugin directory (manifest and module); `built` when it was just
    /// built from a project.
    Directory {
        /// The directory.
        dir: PathBuf,
        /// Whether it was built from a project.
        built: bool,
    },
}

impl Prepared {
    /// The path to install or pack.
    pub(crate) fn path(&self) -> &Path {
        match self {
            Self::Archive(path) | Self::Directory { dir: path, .. } => path,
        }
    }

    /// Whether a project was built for it.
    pub(crate) fn built(&self) -> bool {
        matches!(self, Self::Directory { built: true, .. })
    }
}

/// A directory's manifest, parsed without host checks; `None` when it has
/// none or it does not parse (whoever reads the directory next reports why).
fn read_manifest_lenient(dir: &Path) -> Option<tenon_manifest::Manifest> {
    let (format, path) = ManifestFormat::ALL
        .iter()
        .map(|f| (*f, dir.join(f.file_name())))
        .find(|(_, path)| path.is_file())?;
    let bytes = std::fs::read(path).ok()?;
    let context = ValidationContext {
        api_versions: Vec::new(),
        ..ValidationContext::default()
    };
    tenon_manifest::parse_bytes(&bytes, format, &context).manifest
}

/// Turns `path` into something installable: an archive as it is; a plugin
/// directory as it is when its module is there; a plugin project built
/// first when its module is missing.
pub(crate) fn prepare(
    path: &Path,
    flags: &BuildFlags,
    output: &Output,
) -> Result<Prepared, Failure> {
    let metadata = std::fs::metadata(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    if !metadata.is_dir() {
        return Ok(Prepared::Archive(path.to_owned()));
    }
    let directory = Prepared::Directory {
        dir: path.to_owned(),
        built: false,
    };
    let is_project = path.join("Cargo.toml").is_file();
    let Some(manifest) = read_manifest_lenient(path) else {
        if is_project {
            // Let the build say what is wrong with the project's manifest.
            let built = build_project(path, &flags.options(), output)?;
            return Ok(Prepared::Directory {
                dir: built.dir,
                built: true,
            });
        }
        return Ok(directory);
    };
    let runtime = &manifest.runtime;
    let module_present = match (&runtime.module, &runtime.command, runtime.kind) {
        (Some(module), _, kind) if kind.is_wasm() => path.join(module).is_file(),
        // A process plugin's module is its executable.
        (_, Some(command), RuntimeKind::Process) => path.join(command).is_file(),
        _ => true,
    };
    if module_present || !is_project {
        return Ok(directory);
    }
    let built = build_project(path, &flags.options(), output)?;
    Ok(Prepared::Directory {
        dir: built.dir,
        built: true,
    })
}

/// What `tenon pack` prints in JSON.
#[derive(Serialize)]
struct PackJson {
    file: String,
    sha256: String,
    id: String,
    version: String,
    size: u64,
    files: Vec<FileInfo>,
    built: bool,
    signature: Option<SignatureJson>,
}

#[derive(Serialize)]
struct SignatureJson {
    file: String,
    role: &'static str,
    key_id: String,
    public_key: String,
}

/// Runs `tenon pack`.
pub(crate) fn pack(args: PackArgs, output: &Output) -> CommandResult {
    let prepared = prepare(&args.dir, &args.flags, output)?;
    let Prepared::Directory { dir, built } = &prepared else {
        return Err(Failure::usage(format!(
            "{} is a file: pack takes a plugin directory or project",
            args.dir.display()
        )));
    };
    let key = match &args.sign {
        Some(path) => Some(read_signing_key(path)?),
        None => None,
    };
    let packed = {
        let _spinner = output.spinner("packing");
        tenon_marketplace::pack(dir, &PackOptions::default())?
    };
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(packed.file_name()));
    write_atomically(&out, &packed.bytes)?;
    let signature_path = SignatureFile::path_for(&out);
    let signature = match key {
        Some(key) => {
            let mut file = SignatureFile::for_package(&packed.info);
            file.sign(Role::Author, &key);
            write_atomically(&signature_path, file.to_json().as_bytes())?;
            Some(SignatureJson {
                file: signature_path.display().to_string(),
                role: Role::Author.as_str(),
                key_id: key.key_id().to_string(),
                public_key: key.public_key().to_base64(),
            })
        }
        None => {
            // A signature file left from an earlier pack would not match the
            // new archive and make installing it fail.
            if signature_path.is_file() {
                std::fs::remove_file(&signature_path).map_err(|e| {
                    Failure::usage(format!(
                        "cannot remove the stale {}: {e}",
                        signature_path.display()
                    ))
                })?;
            }
            None
        }
    };
    let report = PackJson {
        file: out.display().to_string(),
        sha256: packed.sha256().to_string(),
        id: packed.info.id().to_string(),
        version: packed.info.version().to_string(),
        size: packed.bytes.len() as u64,
        files: packed.info.files.clone(),
        built: *built,
        signature,
    };
    if output.is_json() {
        return output.json(&report);
    }
    let mut text = format!(
        "{} {} {} into {} ({} bytes, {} files)\nsha256 {}\n",
        output.good("Packed"),
        output.bold(&report.id),
        report.version,
        report.file,
        report.size,
        report.files.len(),
        report.sha256
    );
    if let Some(signature) = &report.signature {
        text.push_str(&format!(
            "signed by key {} in {}\n",
            signature.key_id, signature.file
        ));
    }
    output.text(&text)
}

fn read_signing_key(path: &Path) -> Result<SigningKey, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(format!(
            "cannot read the signing key {}: {e}",
            path.display()
        ))
    })?;
    SigningKey::from_base64(&text).map_err(|e| {
        Failure::usage(format!(
            "{} is not a signing key: {e} (make one with `tenon keygen FILE`)",
            path.display()
        ))
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&temp, bytes)
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            Failure::usage(format!("cannot write {}: {e}", path.display()))
        })
}

/// What `tenon keygen` prints in JSON.
#[derive(Serialize)]
struct KeygenJson {
    file: String,
    key_id: String,
    public_key: String,
    /// With `--rotate-from`: the statement and where it was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation: Option<RotationJson>,
}

/// A rotation statement `tenon keygen --rotate-from` wrote.
#[derive(Serialize)]
struct RotationJson {
    file: String,
    from_key_id: String,
    to_key_id: String,
    statement: KeyRotation,
}

/// Runs `tenon keygen`.
pub(crate) fn keygen(args: KeygenArgs, output: &Output) -> CommandResult {
    // The old key is read, and the statement's file checked, before anything
    // is written.
    if let Some(publisher) = &args.publisher {
        tenon_manifest::PluginId::check_publisher(publisher).map_err(|e| {
            Failure::usage(format!(
                "`--publisher {publisher}` is not a publisher name: {e} (a publisher is the part of a plugin id before `/`)"
            ))
        })?;
    }
    let old = args
        .rotate_from
        .as_deref()
        .map(read_signing_key)
        .transpose()?;
    let rotation_path = args.rotate_from.as_ref().map(|_| {
        args.rotation_out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.rotation.json", args.file.display())))
    });
    if let Some(path) = &rotation_path
        && path.exists()
    {
        return Err(Failure::usage(format!(
            "cannot create {}: it exists",
            path.display()
        )));
    }
    let key = SigningKey::generate();
    crate::session::write_private(&args.file, format!("{}\n", key.to_base64()).as_bytes())
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", args.file.display())))?;
    let rotation = match (old, rotation_path) {
        (Some(old), Some(path)) => {
            let statement = match &args.publisher {
                Some(publisher) => KeyRotation::sign_for(&old, &key.public_key(), publisher),
                None => KeyRotation::sign(&old, &key.public_key()),
            };
            crate::session::write_private(&path, statement.to_json().as_bytes())
                .map_err(|e| Failure::usage(format!("cannot create {}: {e}", path.display())))?;
            Some(RotationJson {
                file: path.display().to_string(),
                from_key_id: old.key_id().to_string(),
                to_key_id: key.key_id().to_string(),
                statement,
            })
        }
        _ => None,
    };
    let report = KeygenJson {
        file: args.file.display().to_string(),
        key_id: key.key_id().to_string(),
        public_key: key.public_key().to_base64(),
        rotation,
    };
    if output.is_json() {
        return output.json(&report);
    }
    let mut text = format!(
        "{} signing key {} in {} (keep it secret)\npublic key: {}\n",
        output.good("Wrote"),
        report.key_id,
        report.file,
        report.public_key
    );
    if let Some(rotation) = &report.rotation {
        text.push_str(&format!(
            "{} rotation statement {} → {} in {}\n  operators add it to their trust policy with `tenon trust add --rotation {}`;\n  from then on packages signed by {} install wherever {} was trusted or bound\n",
            output.good("Wrote"),
            rotation.from_key_id,
            rotation.to_key_id,
            rotation.file,
            rotation.file,
            rotation.to_key_id,
            rotation.from_key_id,
        ));
    }
    output.text(&text)
}
