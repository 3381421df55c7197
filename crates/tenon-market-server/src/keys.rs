//! The marketplace's keys: the offline root keys (made by [`init`], kept
//! away from the server) and the online key the server signs targets,
//! snapshot and timestamp with, and counter-signs packages with.

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
/// `root.json` (version 1, signed by every root key). Refuses to overwrite
/// an existing root.
pub fn init(
    dir: &Path,
    count: usize,
    threshold: u32,
    now: OffsetDateTime,
) -> Result<InitReport, MarketError> {
    if threshold == 0 || threshold as usize > count {
        return Err(MarketError::BadRequest(format!(
            "a root threshold must be between 1 and the number of root keys ({count}), not {threshold}"
        )));
    }
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
    fs::write(&root_path, sign_metadata(&root, &signers))
        .map_err(|source| io("write", &root_path, source))?;
    Ok(report)
}

impl MarketKeys {
    /// Reads `root.json` and `online.key` from `dir`, and checks that the
    /// root is valid now and names the online key for every online role.
    pub fn load(dir: &Path, now: OffsetDateTime) -> Result<Self, MarketError> {
        let root_path = dir.join(ROOT_FILE);
        let root = fs::read(&root_path).map_err(|source| io("read", &root_path, source))?;
        let key_path = dir.join(ONLINE_KEY_FILE);
        let text = fs::read_to_string(&key_path).map_err(|source| io("read", &key_path, source))?;
        let online = SigningKey::from_base64(&text)?;
        let keys = Self { root, online };
        keys.check(now)?;
        Ok(keys)
    }

    /// Checks that the root verifies and names the online key for the
    /// targets, snapshot and timestamp roles.
    pub fn check(&self, now: OffsetDateTime) -> Result<(), MarketError> {
        let trusted = TrustedMetadata::new(&self.root, SeenVersions::default(), now)?;
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
