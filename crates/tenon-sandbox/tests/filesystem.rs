//! Hostile plugins against the filesystem boundary, in both WebAssembly
//! runtimes: whatever a plugin does inside the directories it was granted,
//! no later instance of it can reach outside its data directory.
//!
//! The data directory is laid out as the engine lays it out
//! (`<root>/data/<tenant>/<publisher>/<name>`), with a `secret.key` at the
//! root, as a registry directory holds one.

mod suite;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use suite::fixtures::{Components, INLINE, built};
use suite::{Fixture, call};
use tenon_manifest::{FsMode, FsPermission, Manifest};
use tenon_sandbox::boundary::granted_directories;
use tenon_sandbox::{Caller, LoadRequest, MemoryHost, Plugin, SandboxConfig, SandboxError};

const SECRET: &str = "the registry's secret key";

/// The runtimes, each with its path-escape plugin (grants `data`
/// read-write, `data/sub` and `assets` read-only).
fn runtimes() -> Vec<(&'static str, Box<dyn Fixture>)> {
    vec![
        ("hostile-path-escape", Box::new(Components)),
        ("hostile-extism-path-escape", Box::new(INLINE)),
    ]
}

/// A root directory holding `secret.key`, and the plugin's data directory
/// five levels below it.
struct Layout {
    root: tempfile::TempDir,
    data_dir: PathBuf,
}

impl Layout {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(root.path().join("secret.key"), SECRET).unwrap();
        let data_dir = root.path().join("data/tenant-a/tenon-hostile/path-escape");
        std::fs::create_dir_all(&data_dir).unwrap();
        Self { root, data_dir }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }
}

fn request(manifest: &Manifest, module: &Arc<[u8]>, data_dir: &Path) -> LoadRequest {
    let host = Arc::new(MemoryHost::new());
    LoadRequest {
        manifest: Arc::new(manifest.clone()),
        module: module.clone(),
        caller: Arc::new(Caller {
            plugin: manifest.plugin.id.clone(),
            version: manifest.plugin.version.clone(),
            tenant: "tenant-a".to_owned(),
            permissions: Arc::new(manifest.permissions.clone()),
        }),
        host: host.clone(),
        observer: host,
        data_dir: Some(data_dir.to_owned()),
    }
}

/// Loads and starts the plugin: every load is a new instance, as after a
/// restart.
async fn start(
    fixture: &dyn Fixture,
    package: &str,
    data_dir: &Path,
) -> Result<Arc<dyn Plugin>, SandboxError> {
    let (manifest, module) = built(package);
    let runtime = fixture.runtime(SandboxConfig::default());
    let plugin = runtime.load(request(&manifest, &module, data_dir)).await?;
    plugin.start(&serde_json::json!({})).await?;
    Ok(plugin)
}

/// The attack: grants `data` read-write and `data/sub` read; one
/// call replaces `data/sub` with a symlink five levels up, a new instance
/// reads `secret.key` through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_planted_under_a_nested_grant_leads_nowhere() {
    for (package, fixture) in runtimes() {
        let layout = Layout::new();
        let plugin = start(&*fixture, package, &layout.data_dir)
            .await
            .unwrap_or_else(|e| panic!("{package}: {e}"));
        // Planting is allowed: `data` is the plugin's to change.
        assert_eq!(call(&*plugin, "plant", "").await.expect(package), "planted");
        drop(plugin);
        // A new instance: whatever it does, the secret stays out of reach.
        let outcome = match start(&*fixture, package, &layout.data_dir).await {
            Err(refused) => Err(refused),
            Ok(plugin) => {
                let mut read = Vec::new();
                for path in [
                    "/data/sub/secret.key",
                    "data/sub/secret.key",
                    "/data/./sub/secret.key",
                ] {
                    read.push((path, call(&*plugin, "read", path).await));
                }
                assert_eq!(call(&*plugin, "ping", "").await.expect(package), "pong");
                Ok(read)
            }
        };
        match outcome {
            Err(refused) => panic!("{package}: a restart after the plant was refused: {refused}"),
            Ok(reads) => {
                for (path, result) in reads {
                    match result {
                        Err(SandboxError::Plugin { code, .. }) => {
                            assert_eq!(code, "io", "{package} {path}")
                        }
                        Ok(bytes) => panic!(
                            "{package}: ESCAPED: read {path} through the planted link: {bytes:?}"
                        ),
                        Err(other) => panic!("{package} {path}: unexpected {other:?}"),
                    }
                }
            }
        }
        assert_eq!(
            std::fs::read_to_string(layout.root().join("secret.key")).unwrap(),
            SECRET
        );
    }
}

/// Paths and modes: grants in a manifest, or directories opened.
type Grants<'a> = &'a [(&'a str, FsMode)];

fn with_grants(grants: Grants<'_>) -> Manifest {
    let (mut manifest, _) = built("hostile-path-escape");
    manifest.permissions.filesystem = grants
        .iter()
        .map(|(path, mode)| FsPermission {
            path: (*path).to_owned(),
            mode: *mode,
        })
        .collect();
    manifest
}

/// Nested grants are flattened: a grant at or beneath a read-write grant is
/// reached through it; beneath read-only grants it keeps its own directory.
#[test]
fn nested_grants_are_flattened_into_their_writable_parent() {
    use FsMode::{Read, ReadWrite};
    let table: &[(Grants<'_>, Grants<'_>)] = &[
        (
            &[("data", ReadWrite), ("data/sub", Read)],
            &[("/data", ReadWrite)],
        ),
        (
            &[("data/sub", Read), ("./data", ReadWrite)],
            &[("/data", ReadWrite)],
        ),
        (
            &[("data", Read), ("data/sub", ReadWrite)],
            &[("/data", Read), ("/data/sub", ReadWrite)],
        ),
        (
            &[("data", Read), ("data", ReadWrite)],
            &[("/data", ReadWrite)],
        ),
        (
            &[("data", ReadWrite), ("database", Read)],
            &[("/data", ReadWrite), ("/database", Read)],
        ),
        (
            &[(".", ReadWrite), ("data", Read), ("a/b", ReadWrite)],
            &[("/", ReadWrite)],
        ),
        (
            &[("a/b", ReadWrite), ("a/b/c/d", Read), ("a/c", Read)],
            &[("/a/b", ReadWrite), ("/a/c", Read)],
        ),
    ];
    for (grants, expected) in table {
        let layout = Layout::new();
        let manifest = with_grants(grants);
        let module: Arc<[u8]> = Arc::from(Vec::new());
        let dirs = granted_directories(&request(&manifest, &module, &layout.data_dir))
            .unwrap_or_else(|e| panic!("{grants:?}: {e}"));
        let got: Vec<(&str, FsMode)> = dirs.iter().map(|d| (d.guest.as_str(), d.mode)).collect();
        assert_eq!(&got, expected, "{grants:?}");
        for dir in &dirs {
            assert!(layout.data_dir.join(&dir.relative).is_dir(), "{grants:?}");
        }
    }
}

/// A granted directory whose path runs through a symlink (left by a plugin,
/// or by anyone) is refused with a named cause, in every runtime, before
/// the plugin runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_through_a_symlink_is_refused() {
    for (package, fixture) in runtimes() {
        for planted in ["data", "data/sub"] {
            let layout = Layout::new();
            let at = layout.data_dir.join(planted);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(layout.root(), &at).unwrap();
            let (mut manifest, module) = built(package);
            manifest.permissions.filesystem = vec![FsPermission {
                path: "data/sub".to_owned(),
                mode: FsMode::Read,
            }];
            let runtime = fixture.runtime(SandboxConfig::default());
            match runtime
                .load(request(&manifest, &module, &layout.data_dir))
                .await
            {
                Err(SandboxError::Filesystem { path, message, .. }) => {
                    assert_eq!(path, "data/sub", "{package} {planted}");
                    assert!(
                        message.contains("symbolic link"),
                        "{package} {planted}: {message}"
                    );
                    assert!(
                        message.contains(&format!("`{planted}`")),
                        "{package}: {message}"
                    );
                }
                Err(other) => panic!("{package} {planted}: unexpected {other}"),
                Ok(_) => panic!("{package} {planted}: loaded through a symlink"),
            }
        }
    }
}
