//! The marketplace's keys: the offline root keys (made by [`init`], kept
//! away from the server, replaced by [`rotate_root`]) and the online key
//! the server signs targets, snapshot and timestamp with, and counter-signs
//! packages with.
//!
//! A key directory holds `root.json` (the current root), `<N>.root.json`
//! for every root since version 2 (clients that trust an older root walk
//! them one version at a time), the root keys (`root-<k>.key` from
//! [`init`], `root-<N>-<k>.key` from the rotation to version `N`) and
//! `online.key`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use tenon_marketplace::SigningKey;
use tenon_marketplace::metadata::{MetaRole, RoleKeys, Root, SPEC_VERSION, sign_metadata};
use tenon_marketplace::{TrustedMetadata, metadata::SeenVersions};
use time::{Duration, OffsetDateTime};

use crate::error::MarketError;

/// The root file's name in a key directory.
pub const ROOT_FILE: &str = "root.json";
/// The online key's file name in a key directory.
pub const ONLINE_KEY_FILE: &str = "online.key";

/// How long a root made by [`init`] is valid.
pub const ROOT_LIFETIME: Duration = Duration::days(365);

/// What the server needs: the root it serves and the online key.
#[derive(Debug, Clone)]
pub struct MarketKeys {
    /// The signed root file, as served.
    pub root: Vec<u8>,
    /// Every earlier root from version 2 on (and version 1 when kept), by
    /// version, served as `meta/<N>.root.json` (the current one too).
    pub roots: BTreeMap<u64, Vec<u8>>,
    /// The key of the targets, snapshot and timestamp roles.
    pub online: SigningKey,
}

/// What [`init`] wrote.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The root file (give it to clients).
    pub root: PathBuf,
    /// The root key files (move them offline).
    pub root_keys: Vec<PathBuf>,
    /// The online key file (the server reads it).
    pub online_key: PathBuf,
}

/// Creates a marketplace's keys in `dir`: `count` root keys of which
/// `threshold` must sign a root, one online key for the other roles, and
/// `root.json` (version 1, signed by every root key; also kept as
/// `1.root.json`). Refuses to overwrite
/// an existing root.
pub fn init(
    dir: &Path,
    count: usize,
    threshold: u32,
    now: OffsetDateTime,
) -> Result<InitReport, MarketError> {
    check_threshold(count, threshold)?;
    let root_path = dir.join(ROOT_FILE);
    if root_path.exists() {
        return Err(MarketError::Conflict(format!(
            "`{}` exists already; a marketplace is initialised once",
            root_path.display()
        )));
    }
    fs::create_dir_all(dir).map_err(|source| io("create", dir, source))?;
    let root_keys: Vec<SigningKey> = (0..count).map(|_| SigningKey::generate()).collect();
    let online = SigningKey::generate();
    let mut keys = BTreeMap::new();
    for key in root_keys.iter().chain([&online]) {
        keys.insert(key.key_id(), key.public_key());
    }
    let online_role = || RoleKeys {
        keyids: vec![online.key_id()],
        threshold: 1,
    };
    let root = Root {
        role: MetaRole::Root,
        spec_version: SPEC_VERSION,
        version: 1,
        expires: now + ROOT_LIFETIME,
        keys,
        roles: BTreeMap::from([
            (
                MetaRole::Root,
                RoleKeys {
                    keyids: root_keys.iter().map(SigningKey::key_id).collect(),
                    threshold,
                },
            ),
            (MetaRole::Targets, online_role()),
            (MetaRole::Snapshot, online_role()),
            (MetaRole::Timestamp, online_role()),
        ]),
    };
    let signers: Vec<&SigningKey> = root_keys.iter().collect();
    let mut report = InitReport {
        root: root_path.clone(),
        root_keys: Vec::new(),
        online_key: dir.join(ONLINE_KEY_FILE),
    };
    for (n, key) in root_keys.iter().enumerate() {
        let path = dir.join(format!("root-{}.key", n + 1));
        write_secret(&path, &key.to_base64())?;
        report.root_keys.push(path);
    }
    write_secret(&report.online_key, &online.to_base64())?;
    let bytes = sign_metadata(&root, &signers);
    write_file(&dir.join(versioned_root_file(1)), &bytes)?;
    write_file(&root_path, &bytes)?;
    Ok(report)
}

/// What [`rotate_root`] wrote.
#[derive(Debug, Clone)]
pub struct RotateReport {
    /// The new root's version.
    pub version: u64,
    /// The new root (`root.json`, also kept as `<version>.root.json`).
    pub root: PathBuf,
    /// The new root key files (move them offline).
    pub root_keys: Vec<PathBuf>,
}

/// The file an earlier (or the current) root is kept in.
pub fn versioned_root_file(version: u64) -> String {
    format!("{version}.root.json")
}

/// Replaces the root in `dir` with version N+1: `count` new root keys of
/// which `threshold` must sign, the online roles unchanged. It is signed by
/// `old_keys` — which must meet root N's threshold, or nothing is written —
/// and by every new key, so that a client trusting root N accepts it (TUF's
/// root rotation). Root N stays as `<N>.root.json`; the new one is written
/// as `<N+1>.root.json` and `root.json`. The server serves it once
/// restarted.
pub fn rotate_root(
    dir: &Path,
    old_keys: &[SigningKey],
    count: usize,
    threshold: u32,
    now: OffsetDateTime,
) -> Result<RotateReport, MarketError> {
    check_threshold(count, threshold)?;
    let root_path = dir.join(ROOT_FILE);
    let current = fs::read(&root_path).map_err(|source| io("read", &root_path, source))?;
    let mut trusted = TrustedMetadata::trusting_root(&current, SeenVersions::default())?;
    let old = trusted.root().clone();
    let old_version = old.version;
    let version = old_version + 1;
    let new_keys: Vec<SigningKey> = (0..count).map(|_| SigningKey::generate()).collect();
    let mut keys: BTreeMap<_, _> = old
        .keys
        .iter()
        .filter(|(id, _)| {
            [MetaRole::Targets, MetaRole::Snapshot, MetaRole::Timestamp]
                .iter()
                .any(|role| old.roles[role].keyids.contains(id))
        })
        .map(|(id, key)| (id.clone(), *key))
        .collect();
    for key in &new_keys {
        keys.insert(key.key_id(), key.public_key());
    }
    let mut roles = old.roles.clone();
    roles.insert(
        MetaRole::Root,
        RoleKeys {
            keyids: new_keys.iter().map(SigningKey::key_id).collect(),
            threshold,
        },
    );
    let root = Root {
        version,
        expires: now + ROOT_LIFETIME,
        keys,
        roles,
        ..old
    };
    let signers: Vec<&SigningKey> = old_keys.iter().chain(&new_keys).collect();
    let bytes = sign_metadata(&root, &signers);
    trusted.update_root(&bytes).map_err(|error| {
        MarketError::BadRequest(format!(
            "the root keys given cannot sign root {version} for clients that trust root {old_version}: {error}"
        ))
    })?;
    let mut report = RotateReport {
        version,
        root: root_path.clone(),
        root_keys: Vec::new(),
    };
    for (n, key) in new_keys.iter().enumerate() {
        let path = dir.join(format!("root-{version}-{}.key", n + 1));
        write_secret(&path, &key.to_base64())?;
        report.root_keys.push(path);
    }
    let previous = dir.join(versioned_root_file(old_version));
    if !previous.exists() {
        write_file(&previous, &current)?;
    }
    write_file(&dir.join(versioned_root_file(version)), &bytes)?;
    let staged = dir.join(format!("{ROOT_FILE}.new"));
    write_file(&staged, &bytes)?;
    fs::rename(&staged, &root_path).map_err(|source| io("replace", &root_path, source))?;
    Ok(report)
}

impl MarketKeys {
    /// Reads `root.json`, the earlier roots (`<N>.root.json`, each of
    /// versions 2 to the current one required) and `online.key` from
    /// `dir`, and checks them ([`MarketKeys::check`]).
    pub fn load(dir: &Path, now: OffsetDateTime) -> Result<Self, MarketError> {
        let root_path = dir.join(ROOT_FILE);
        let root = fs::read(&root_path).map_err(|source| io("read", &root_path, source))?;
        let current = TrustedMetadata::trusting_root(&root, SeenVersions::default())?
            .root()
            .version;
        let mut roots = BTreeMap::new();
        for version in 1..=current {
            let path = dir.join(versioned_root_file(version));
            match fs::read(&path) {
                Ok(bytes) => {
                    roots.insert(version, bytes);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && version < 2 => {}
                Err(source) => return Err(io("read", &path, source)),
            }
        }
        let key_path = dir.join(ONLINE_KEY_FILE);
        let text = fs::read_to_string(&key_path).map_err(|source| io("read", &key_path, source))?;
        let online = SigningKey::from_base64(&text)?;
        let keys = Self {
            root,
            roots,
            online,
        };
        keys.check(now)?;
        Ok(keys)
    }

    /// Checks that the root verifies, is valid at `now` and names the
    /// online key for the targets, snapshot and timestamp roles, and that
    /// each earlier root leads to the next as a client checks it (signed by
    /// the earlier one's threshold and its own), the last being the root.
    pub fn check(&self, now: OffsetDateTime) -> Result<(), MarketError> {
        let trusted = TrustedMetadata::new(&self.root, SeenVersions::default(), now)?;
        let mut chain = self.roots.iter();
        if let Some((first, bytes)) = chain.next() {
            let mut walked = TrustedMetadata::trusting_root(bytes, SeenVersions::default())
                .map_err(|e| MarketError::BadRequest(format!("root {first}: {e}")))?;
            for (version, bytes) in chain {
                walked
                    .update_root(bytes)
                    .map_err(|e| MarketError::BadRequest(format!("root {version}: {e}")))?;
            }
            if walked.root() != trusted.root() {
                return Err(MarketError::BadRequest(format!(
                    "`{}` is not the root the earlier roots lead to",
                    versioned_root_file(walked.root().version)
                )));
            }
        }
        let id = self.online.key_id();
        for role in [MetaRole::Targets, MetaRole::Snapshot, MetaRole::Timestamp] {
            if !trusted.root().roles[&role].keyids.contains(&id) {
                return Err(MarketError::BadRequest(format!(
                    "the root does not list the online key {id} for the {role} role"
                )));
            }
        }
        Ok(())
    }
}

fn check_threshold(count: usize, threshold: u32) -> Result<(), MarketError> {
    if threshold == 0 || threshold as usize > count {
        return Err(MarketError::BadRequest(format!(
            "a root threshold must be between 1 and the number of root keys ({count}), not {threshold}"
        )));
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), MarketError> {
    fs::write(path, bytes).map_err(|source| io("write", path, source))
}

fn write_secret(path: &Path, text: &str) -> Result<(), MarketError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|source| io("create", path, source))?;
    writeln!(file, "{text}").map_err(|source| io("write", path, source))
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> MarketError {
    MarketError::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}
