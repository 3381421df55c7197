//! TUF-lite metadata: what a client accepts, and every attack it refuses
//! with a named cause.

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

use tenon_manifest::PluginId;
use tenon_marketplace::metadata::{
    FileMeta, MetaRole, Pinning, RoleKeys, Root, SNAPSHOT_FILE, SPEC_VERSION, SeenVersions,
    TARGETS_FILE, Targets, sign_metadata,
};
use tenon_marketplace::{MetadataError, SigningKey, TrustedMetadata, index_path, parse_index_file};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_seed(&[seed; 32])
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

/// A repository: root keys 1, 2, 3 (threshold 2) and one online key (4)
/// for the other roles.
struct Repo {
    root_keys: Vec<SigningKey>,
    online: SigningKey,
    root_version: u64,
}

impl Repo {
    fn new() -> Self {
        Self {
            root_keys: vec![key(1), key(2), key(3)],
            online: key(4),
            root_version: 1,
        }
    }

    fn root_body(&self) -> Root {
        let mut keys = BTreeMap::new();
        for k in self.root_keys.iter().chain([&self.online]) {
            keys.insert(k.key_id(), k.public_key());
        }
        let root_ids = self.root_keys.iter().map(SigningKey::key_id).collect();
        let online = || RoleKeys {
            keyids: vec![self.online.key_id()],
            threshold: 1,
        };
        Root {
            role: MetaRole::Root,
            spec_version: SPEC_VERSION,
            version: self.root_version,
            expires: now() + Duration::days(365),
            keys,
            roles: BTreeMap::from([
                (
                    MetaRole::Root,
                    RoleKeys {
                        keyids: root_ids,
                        threshold: 2,
                    },
                ),
                (MetaRole::Targets, online()),
                (MetaRole::Snapshot, online()),
                (MetaRole::Timestamp, online()),
            ]),
        }
    }

    fn root(&self) -> Vec<u8> {
        sign_metadata(&self.root_body(), &[&self.root_keys[0], &self.root_keys[1]])
    }

    fn targets(&self, version: u64, expires: OffsetDateTime, files: &[(&str, &[u8])]) -> Vec<u8> {
        let targets = files
            .iter()
            .map(|(path, bytes)| ((*path).to_owned(), FileMeta::of(bytes, None)))
            .collect();
        sign_metadata(
            &Targets {
                role: MetaRole::Targets,
                spec_version: SPEC_VERSION,
                version,
                expires,
                targets,
            },
            &[&self.online],
        )
    }

    fn pinning(
        &self,
        role: MetaRole,
        version: u64,
        expires: OffsetDateTime,
        file: &str,
        pinned: &[u8],
        pinned_version: u64,
    ) -> Vec<u8> {
        sign_metadata(
            &Pinning {
                role,
                spec_version: SPEC_VERSION,
                version,
                expires,
                meta: BTreeMap::from([(
                    file.to_owned(),
                    FileMeta::of(pinned, Some(pinned_version)),
                )]),
            },
            &[&self.online],
        )
    }

    /// A consistent set at `version` (every role at the same number).
    fn set(&self, version: u64, index: &[u8]) -> Set {
        let later = now() + Duration::days(1);
        let targets = self.targets(version, later, &[("index/acme/hello", index)]);
        let snapshot = self.pinning(
            MetaRole::Snapshot,
            version,
            later,
            TARGETS_FILE,
            &targets,
            version,
        );
        let timestamp = self.pinning(
            MetaRole::Timestamp,
            version,
            later,
            SNAPSHOT_FILE,
            &snapshot,
            version,
        );
        Set {
            timestamp,
            snapshot,
            targets,
        }
    }
}

/// A timestamp at version 5 pinning `snapshot` as version 5.
fn timestamp_5(repo: &Repo, snapshot: &[u8]) -> Vec<u8> {
    let later = now() + Duration::days(1);
    repo.pinning(MetaRole::Timestamp, 5, later, SNAPSHOT_FILE, snapshot, 5)
}

struct Set {
    timestamp: Vec<u8>,
    snapshot: Vec<u8>,
    targets: Vec<u8>,
}

fn load(client: &mut TrustedMetadata, set: &Set) -> Result<(), MetadataError> {
    client.update_timestamp(&set.timestamp, now())?;
    client.update_snapshot(&set.snapshot, now())?;
    client.update_targets(&set.targets, now())?;
    Ok(())
}

fn client(repo: &Repo) -> TrustedMetadata {
    TrustedMetadata::new(&repo.root(), SeenVersions::default(), now()).unwrap()
}

#[test]
fn a_consistent_set_is_accepted_and_pins_the_index() {
    let repo = Repo::new();
    let mut c = client(&repo);
    load(&mut c, &repo.set(3, b"line\n")).unwrap();
    c.check_target("index/acme/hello", b"line\n").unwrap();
    assert_eq!(
        c.versions(),
        SeenVersions {
            timestamp: 3,
            snapshot: 3,
            targets: 3
        }
    );
    let err = c.check_target("index/acme/hello", b"line 2\n").unwrap_err();
    assert!(matches!(err, MetadataError::Mismatch { .. }), "{err}");
    let err = c.check_target("index/acme/other", b"").unwrap_err();
    assert!(matches!(err, MetadataError::UnknownTarget(_)), "{err}");
}

/// Each attack: a tampering of a good set, and the cause it must be refused
/// with.
#[test]
fn attacks_on_the_chain_are_refused_with_their_cause() {
    type Attack = fn(&Repo, Set) -> Set;
    let cases: Vec<(&str, Attack, &str)> = vec![
        (
            "timestamp signed by an unknown key",
            |_, mut s| {
                let body = unsigned_body(&s.timestamp);
                s.timestamp = resign::<Pinning>(&body, &key(9));
                s
            },
            "threshold",
        ),
        (
            "timestamp body edited after signing",
            |_, mut s| {
                s.timestamp = String::from_utf8(s.timestamp)
                    .unwrap()
                    .replacen("\"version\":5", "\"version\":50", 1)
                    .into_bytes();
                s
            },
            "threshold",
        ),
        (
            "expired timestamp (freeze)",
            |r, mut s| {
                let snapshot = s.snapshot.clone();
                s.timestamp = r.pinning(
                    MetaRole::Timestamp,
                    5,
                    now() - Duration::seconds(1),
                    SNAPSHOT_FILE,
                    &snapshot,
                    5,
                );
                s
            },
            "expired",
        ),
        (
            "snapshot from another moment (mix-and-match)",
            |r, mut s| {
                s.snapshot = r.set(4, b"old\n").snapshot;
                s
            },
            "mismatch",
        ),
        (
            "targets from another moment (mix-and-match)",
            |r, mut s| {
                s.targets = r.set(4, b"old\n").targets;
                s
            },
            "mismatch",
        ),
        (
            "snapshot whose version is not the pinned one",
            |r, mut s| {
                let targets = s.targets.clone();
                s.snapshot = r.pinning(
                    MetaRole::Snapshot,
                    6,
                    now() + Duration::days(1),
                    TARGETS_FILE,
                    &targets,
                    5,
                );
                s.timestamp = timestamp_5(r, &s.snapshot);
                s
            },
            "version-mismatch",
        ),
        (
            "a timestamp presented as a snapshot",
            |r, mut s| {
                s.snapshot = s.timestamp.clone();
                s.timestamp = timestamp_5(r, &s.snapshot);
                s
            },
            "invalid",
        ),
        (
            "endless timestamp",
            |_, mut s| {
                s.timestamp = vec![b' '; 1 << 20];
                s
            },
            "too-large",
        ),
    ];
    for (name, attack, cause) in cases {
        let repo = Repo::new();
        let mut c = client(&repo);
        let set = attack(&repo, repo.set(5, b"new\n"));
        let err = load(&mut c, &set).expect_err(name);
        assert_eq!(kind(&err), cause, "{name}: {err}");
        assert!(
            c.check_target("index/acme/hello", b"new\n").is_err(),
            "{name}: nothing is trusted after a refusal"
        );
    }
}

#[test]
fn a_replayed_older_set_is_refused_across_restarts() {
    let repo = Repo::new();
    let mut c = client(&repo);
    load(&mut c, &repo.set(7, b"new\n")).unwrap();
    let seen = c.versions();

    let old = repo.set(6, b"old\n");
    let err = load(&mut c, &old).unwrap_err();
    assert!(
        matches!(
            err,
            MetadataError::Rollback {
                trusted: 7,
                offered: 6,
                ..
            }
        ),
        "{err}"
    );

    // A restarted client that kept its versions refuses it too.
    let mut restarted = TrustedMetadata::new(&repo.root(), seen, now()).unwrap();
    let err = load(&mut restarted, &old).unwrap_err();
    assert!(matches!(err, MetadataError::Rollback { .. }), "{err}");

    // A newer timestamp that pins an older snapshot is a rollback as well.
    let later = now() + Duration::days(1);
    let stale_snapshot = repo.set(6, b"old\n").snapshot;
    let ts = repo.pinning(
        MetaRole::Timestamp,
        8,
        later,
        SNAPSHOT_FILE,
        &stale_snapshot,
        6,
    );
    let err = restarted.update_timestamp(&ts, now()).unwrap_err();
    assert!(
        matches!(
            err,
            MetadataError::Rollback {
                role: MetaRole::Snapshot,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn root_rotation_needs_the_old_and_the_new_threshold() {
    let repo = Repo::new();
    let mut next = Repo::new();
    next.root_version = 2;
    next.root_keys = vec![key(5), key(6), key(7)];
    let body = next.root_body();

    let cases: Vec<(&str, Vec<&SigningKey>, Result<(), &str>)> = vec![
        (
            "old and new thresholds",
            vec![
                &repo.root_keys[0],
                &repo.root_keys[1],
                &next.root_keys[0],
                &next.root_keys[1],
            ],
            Ok(()),
        ),
        (
            "only the old keys",
            vec![&repo.root_keys[0], &repo.root_keys[1]],
            Err("threshold"),
        ),
        (
            "only the new keys",
            vec![&next.root_keys[0], &next.root_keys[1]],
            Err("threshold"),
        ),
        (
            "one old key signing twice",
            vec![
                &repo.root_keys[0],
                &repo.root_keys[0],
                &next.root_keys[0],
                &next.root_keys[1],
            ],
            Err("threshold"),
        ),
    ];
    for (name, keys, expected) in cases {
        let mut c = client(&repo);
        let bytes = sign_metadata(&body, &keys);
        let got = c.update_root(&bytes).map_err(|e| kind(&e));
        assert_eq!(got, expected, "{name}");
        if got.is_ok() {
            assert_eq!(c.root().version, 2);
        }
    }

    // Skipping a version is refused.
    let mut skipped = body.clone();
    skipped.version = 3;
    let bytes = sign_metadata(
        &skipped,
        &[
            &repo.root_keys[0],
            &repo.root_keys[1],
            &next.root_keys[0],
            &next.root_keys[1],
        ],
    );
    let err = client(&repo).update_root(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            MetadataError::RootVersion {
                expected: 2,
                found: 3
            }
        ),
        "{err}"
    );
}

/// Hostile: nothing follows the last root version there can be; the next
/// version is not computed by wrapping around to 0.
#[test]
fn no_root_follows_the_last_version() {
    let repo = Repo::new();
    let signers = [&repo.root_keys[0], &repo.root_keys[1]];
    let mut last = repo.root_body();
    last.version = u64::MAX;
    let mut trusted = TrustedMetadata::new(
        &sign_metadata(&last, &signers),
        SeenVersions::default(),
        now(),
    )
    .unwrap();
    let mut wrapped = repo.root_body();
    wrapped.version = 0;
    let err = trusted
        .update_root(&sign_metadata(&wrapped, &signers))
        .unwrap_err();
    assert!(
        matches!(err, MetadataError::RootVersion { found: 0, .. }),
        "{err}"
    );
    assert_eq!(trusted.root().version, u64::MAX);
}

#[test]
fn a_root_that_cannot_meet_its_thresholds_is_refused() {
    let repo = Repo::new();
    let mut body = repo.root_body();
    body.roles.get_mut(&MetaRole::Timestamp).unwrap().threshold = 2;
    let err = TrustedMetadata::new(
        &sign_metadata(&body, &[&repo.root_keys[0], &repo.root_keys[1]]),
        SeenVersions::default(),
        now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("timestamp role needs 2"), "{err}");

    let expired = TrustedMetadata::new(
        &repo.root(),
        SeenVersions::default(),
        now() + Duration::days(400),
    )
    .unwrap_err();
    assert!(
        matches!(
            expired,
            MetadataError::Expired {
                role: MetaRole::Root,
                ..
            }
        ),
        "{expired}"
    );
}

#[test]
fn index_files_list_one_plugin_each_version_once() {
    let id = PluginId::new("acme/hello").unwrap();
    assert_eq!(index_path(&id), "index/acme/hello");
    let line = r#"{"id":"acme/hello","version":"1.0.0","name":"Hello","engine":{"tenon":"^1"},"runtime":"component","sha256":"0000000000000000000000000000000000000000000000000000000000000000","size":10,"signatures":[],"published_at":"2027-01-01T00:00:00Z"}"#;
    let entries = parse_index_file(&id, format!("{line}\n").as_bytes()).unwrap();
    assert_eq!(entries.len(), 1);
    assert!(!entries[0].yanked);

    let cases = [
        (format!("{line}\n{line}\n"), "repeats version 1.0.0"),
        (line.replace("acme/hello", "evil/hello"), "lists evil/hello"),
        ("{not json\n".to_owned(), "line 1"),
        (
            format!("\n{}", line.replace("\"size\":10", "\"size\":-1")),
            "line 2",
        ),
    ];
    for (text, mention) in cases {
        let err = parse_index_file(&id, text.as_bytes()).unwrap_err();
        assert!(err.to_string().contains(mention), "{mention}: {err}");
    }
}

fn kind(err: &MetadataError) -> &'static str {
    match err {
        MetadataError::TooLarge { .. } => "too-large",
        MetadataError::Invalid { .. } => "invalid",
        MetadataError::Threshold { .. } => "threshold",
        MetadataError::Expired { .. } => "expired",
        MetadataError::Rollback { .. } => "rollback",
        MetadataError::VersionMismatch { .. } => "version-mismatch",
        MetadataError::Mismatch { .. } => "mismatch",
        MetadataError::RootVersion { .. } => "root-version",
        MetadataError::TooManyRootRotations { .. } => "too-many-root-rotations",
        MetadataError::Missing(_) => "missing",
        MetadataError::UnknownTarget(_) => "unknown-target",
    }
}

fn unsigned_body(file: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(file).unwrap();
    value["signed"].to_string()
}

fn resign<T: tenon_marketplace::metadata::Signed>(body: &str, key: &SigningKey) -> Vec<u8> {
    let body: T = serde_json::from_str(body).unwrap();
    sign_metadata(&body, &[key])
}

mod never_panics {
    use std::sync::LazyLock;

    use proptest::prelude::*;

    use super::*;

    /// Signing is slow in debug builds: one repository, signed once.
    static SIGNED: LazyLock<(Vec<u8>, Vec<Vec<u8>>)> = LazyLock::new(|| {
        let repo = Repo::new();
        let set = repo.set(2, b"line\n");
        let root = repo.root();
        (
            root.clone(),
            vec![set.timestamp, set.snapshot, set.targets, root],
        )
    });

    /// Every metadata reader on `bytes`: refusals are fine, panics are not,
    /// and a timestamp verifies only if it is the signed one.
    fn read_metadata_every_way(bytes: &[u8]) {
        let (root, files) = &*SIGNED;
        let mut c = TrustedMetadata::new(root, SeenVersions::default(), now()).unwrap();
        let _ = TrustedMetadata::new(bytes, SeenVersions::default(), now());
        let _ = c.clone().update_root(bytes);
        if bytes != files[0].as_slice() {
            assert!(
                c.update_timestamp(bytes, now()).is_err(),
                "altered bytes verified"
            );
        }
        let _ = parse_index_file(&PluginId::new("acme/hello").unwrap(), bytes);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            read_metadata_every_way(&bytes);
        }

        #[test]
        fn mutated_metadata(at in any::<prop::sample::Index>(), bit in 0u8..8) {
            for file in &SIGNED.1 {
                let mut bytes = file.clone();
                let i = at.index(bytes.len());
                bytes[i] ^= 1 << bit;
                read_metadata_every_way(&bytes);
            }
        }
    }
}
