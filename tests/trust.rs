//! Trust, end to end through the engine: the operator's policy enforced on
//! every install and upgrade before anything is stored, verification and
//! posture recorded per version, trust levels capping what a plugin may
//! ask for, downgrades refused, secrets kept secret.

use std::path::{Path, PathBuf};

use serde_json::json;
use tenon_engine::{
    Checked, EngineError, EventKind, EventQuery, GrantPolicy, GrantRequest, HostPlugin,
    InstallSource, PluginEngine, PluginId, TrustLevel, TrustPolicy, UninstallOptions,
};
use tenon_marketplace::{AllowUnsigned, KeyRotation, Role, SignatureFile, SigningKey};
use tenon_tests::{builder, copy_plugin, plugin, set_field};

const COUNTER: &str = "tenon-examples/counter";

struct Keys {
    author: SigningKey,
    stranger: SigningKey,
    next: SigningKey,
    internal: SigningKey,
}

fn keys() -> Keys {
    Keys {
        author: SigningKey::from_seed(&[1; 32]),
        stranger: SigningKey::from_seed(&[2; 32]),
        next: SigningKey::from_seed(&[3; 32]),
        internal: SigningKey::from_seed(&[4; 32]),
    }
}

/// How a test archive is signed.
#[derive(Clone, Copy)]
enum Sig<'a> {
    None,
    By(&'a SigningKey),
    /// Signed, then the signature altered.
    Altered(&'a SigningKey),
}

/// Packs example plugin `name` at `version` (its manifest edited by
/// `edit`) into `dir`, signed as `sig` says; returns the archive's path.
fn archive(dir: &Path, name: &str, version: &str, sig: Sig<'_>) -> PathBuf {
    let work = dir.join(format!("src-{name}-{version}"));
    let copy = copy_plugin(name, &work, |text| set_field(&text, "version", version));
    let packed = tenon_marketplace::pack(&copy, &Default::default()).expect("packs");
    let path = dir.join(format!("{name}-{version}.tenon"));
    std::fs::write(&path, &packed.bytes).unwrap();
    let mut file = SignatureFile::for_package(&packed.info);
    match sig {
        Sig::None => {
            // (An earlier signed archive of the same version may lie here.)
            let _ = std::fs::remove_file(SignatureFile::path_for(&path));
            return path;
        }
        Sig::By(key) => file.sign(Role::Author, key),
        Sig::Altered(key) => {
            file.sign(Role::Author, key);
            let entry = &mut file.signatures[0].signature;
            let flipped = if entry.starts_with('A') { "B" } else { "A" };
            entry.replace_range(0..1, flipped);
        }
    }
    std::fs::write(SignatureFile::path_for(&path), file.to_json()).unwrap();
    path
}

/// A stable name for why the engine refused.
fn code(error: &EngineError) -> String {
    match error {
        EngineError::Package { source, .. } => source.code().to_owned(),
        EngineError::UnsignedDirectory { .. } => "unsigned-directory".to_owned(),
        EngineError::TrustLevel { .. } => "trust-level".to_owned(),
        EngineError::SecretReclassified { .. } => "secret-reclassified".to_owned(),
        EngineError::Version { .. } => "version".to_owned(),
        EngineError::PublisherKey { .. } => "publisher-key".to_owned(),
        other => format!("other: {other}"),
    }
}

async fn engine_with(dir: &Path, policy: TrustPolicy, grants: GrantPolicy) -> PluginEngine {
    builder(dir)
        .trust_policy(policy)
        .grant_policy(grants)
        .build()
        .await
        .expect("the engine builds")
}

fn strict(k: &Keys) -> TrustPolicy {
    TrustPolicy {
        key_levels: [(k.internal.public_key(), TrustLevel::Internal)].into(),
        ..TrustPolicy::default()
    }
    .with_publisher_key("tenon-examples", k.author.public_key())
    .with_publisher_key("tenon-examples", k.internal.public_key())
}

/// What an install should come to.
enum Expect {
    /// Installed at this level, checked so, auto-granted or not.
    Installed(TrustLevel, Checked, bool),
    /// Refused with this code, and a message containing this text.
    Refused(&'static str, &'static str),
}

#[tokio::test]
async fn installs_are_checked_against_the_policy_before_anything_is_stored() {
    let k = keys();
    let base = strict(&k);
    let rotated = TrustPolicy {
        rotations: vec![KeyRotation::sign(&k.author, &k.next.public_key())],
        ..base.clone()
    };
    let revoked = TrustPolicy {
        revoked_keys: vec![k.author.public_key()],
        ..base.clone()
    };
    let lenient = TrustPolicy {
        allow_unsigned: AllowUnsigned::Local,
        ..base.clone()
    };
    let trusted_publisher = GrantPolicy::default().trust_publisher("tenon-examples");
    type Case<'a> = (&'a str, TrustPolicy, &'a str, Sig<'a>, Expect);
    let cases: Vec<Case<'_>> = vec![
        (
            "signed by the publisher's key",
            base.clone(),
            "counter",
            Sig::By(&k.author),
            Expect::Installed(TrustLevel::Partner, Checked::Trusted, true),
        ),
        (
            "signed by a key the policy makes internal",
            base.clone(),
            "counter",
            Sig::By(&k.internal),
            Expect::Installed(TrustLevel::Internal, Checked::Trusted, true),
        ),
        (
            "unsigned",
            base.clone(),
            "counter",
            Sig::None,
            Expect::Refused("unsigned", "not signed"),
        ),
        (
            "wrongly signed",
            base.clone(),
            "counter",
            Sig::Altered(&k.author),
            Expect::Refused("bad-signature", "does not verify"),
        ),
        (
            "signed by an unknown key",
            base.clone(),
            "counter",
            Sig::By(&k.stranger),
            Expect::Refused("untrusted-author", "not signed by an author key"),
        ),
        (
            "signed by a revoked key",
            revoked,
            "counter",
            Sig::By(&k.author),
            Expect::Refused("revoked-key", "revokes"),
        ),
        (
            "signed by a rotated key without the rotation statement",
            base.clone(),
            "counter",
            Sig::By(&k.next),
            Expect::Refused("untrusted-author", "not signed by an author key"),
        ),
        (
            "signed by a rotated key with the rotation statement",
            rotated,
            "counter",
            Sig::By(&k.next),
            Expect::Installed(TrustLevel::Partner, Checked::Trusted, true),
        ),
        (
            "claiming a trusted publisher without its key",
            lenient.clone(),
            "counter",
            Sig::By(&k.stranger),
            Expect::Refused(
                "publisher-key",
                "publisher `tenon-examples` is bound to key",
            ),
        ),
        (
            "claiming a trusted publisher unsigned",
            lenient.clone(),
            "counter",
            Sig::None,
            Expect::Refused("publisher-key", "but this package is not signed"),
        ),
        (
            "untrusted with a fail-closed hook",
            lenient,
            "moderator",
            Sig::None,
            Expect::Refused(
                "trust-level",
                "a fail-closed hook on `response.pre_deliver`",
            ),
        ),
    ];
    for (name, policy, plugin_name, sig, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_with(dir.path(), policy, trusted_publisher.clone()).await;
        let path = archive(dir.path(), plugin_name, "0.1.0", sig);
        let result = engine.install(InstallSource::Archive(path)).await;
        match (result, expected) {
            (Ok(report), Expect::Installed(level, checked, granted)) => {
                assert_eq!(
                    (report.trust.level, report.trust.checked, report.granted),
                    (level, checked, granted),
                    "{name}"
                );
                assert_eq!(report.trust.posture.level, level, "{name}");
                assert!(report.trust.posture.badge.starts_with(level.as_str()));
                let record = engine.record(&report.id).await.unwrap();
                let stored =
                    tenon_engine::TrustRecord::from_stored(record.verification.as_ref()).unwrap();
                assert_eq!(stored, report.trust, "{name}: recorded as reported");
                let diagnosis = engine.doctor().await.unwrap().plugins.remove(0);
                assert_eq!(diagnosis.trust, Some(stored), "{name}: doctor shows it");
            }
            (Err(error), Expect::Refused(expected_code, text)) => {
                assert_eq!(code(&error), expected_code, "{name}: {error}");
                assert!(error.to_string().contains(text), "{name}: {error}");
                assert!(
                    engine.list().await.unwrap().is_empty(),
                    "{name}: nothing stored"
                );
                assert!(
                    engine
                        .store()
                        .list_publisher_keys(engine.tenant())
                        .await
                        .unwrap()
                        .is_empty(),
                    "{name}: no publisher bound"
                );
            }
            (Ok(report), _) => panic!("{name}: installed at {:?}", report.trust.level),
            (Err(error), _) => panic!("{name}: refused: {error}"),
        }
        engine.shutdown().await;
    }
}

#[tokio::test]
async fn directories_need_the_development_switch() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), TrustPolicy::default(), GrantPolicy::default()).await;
    let error = engine
        .install(plugin("counter").dir.as_path())
        .await
        .unwrap_err();
    assert_eq!(code(&error), "unsigned-directory", "{error}");
    assert!(error.to_string().contains("development switch"), "{error}");
    assert!(engine.list().await.unwrap().is_empty());
    engine.shutdown().await;

    let switched = TrustPolicy {
        allow_unsigned_directories: true,
        ..TrustPolicy::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), switched, GrantPolicy::default()).await;
    let report = engine
        .install(plugin("counter").dir.as_path())
        .await
        .unwrap();
    assert_eq!(
        (report.trust.checked, report.trust.level),
        (Checked::Directory, TrustLevel::Untrusted)
    );
    assert_eq!(report.trust.posture.badge, "untrusted · sandboxed");
    // At the default level for unsigned code, a fail-closed hook is refused.
    let error = engine
        .install(plugin("moderator").dir.as_path())
        .await
        .unwrap_err();
    assert_eq!(code(&error), "trust-level", "{error}");
    engine.shutdown().await;
}

#[tokio::test]
async fn upgrades_never_go_back_and_secrets_stay_secret() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(dir.path(), strict(&k), GrantPolicy::default()).await;
    let counter: PluginId = COUNTER.parse().unwrap();
    engine
        .install(InstallSource::Archive(archive(
            dir.path(),
            "counter",
            "0.2.0",
            Sig::By(&k.author),
        )))
        .await
        .unwrap();
    let older = archive(dir.path(), "counter", "0.1.0", Sig::By(&k.author));
    let error = engine
        .upgrade(InstallSource::Archive(older))
        .await
        .unwrap_err();
    assert_eq!(code(&error), "version", "{error}");
    assert!(error.to_string().contains("rollback"), "{error}");
    assert_eq!(
        engine.versions(&counter).await.unwrap().len(),
        1,
        "nothing stored"
    );
    let newer = archive(dir.path(), "counter", "0.3.0", Sig::By(&k.author));
    let report = engine.upgrade(InstallSource::Archive(newer)).await.unwrap();
    assert_eq!(report.trust.map(|t| t.level), Some(TrustLevel::Partner));
    let versions = engine.versions(&counter).await.unwrap();
    assert!(
        versions.iter().all(|v| v.verification.is_some()),
        "each version keeps its own"
    );
    engine.shutdown().await;

    // A version that stops declaring a stored secret secret is refused.
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with(
        dir.path(),
        TrustPolicy::development(),
        GrantPolicy::default(),
    )
    .await;
    let notifier: PluginId = "tenon-examples/notifier".parse().unwrap();
    engine
        .install(plugin("notifier").dir.as_path())
        .await
        .unwrap();
    engine
        .set_config(&notifier, "token", json!("hunter2"))
        .await
        .unwrap();
    let plain = copy_plugin("notifier", &dir.path().join("plain"), |text| {
        set_field(&text, "version", "0.2.0").replace("secret = true\n", "")
    });
    let error = engine.upgrade(plain.as_path()).await.unwrap_err();
    assert_eq!(code(&error), "secret-reclassified", "{error}");
    assert!(
        error.to_string().contains("`token` is stored as a secret"),
        "{error}"
    );
    assert!(!error.to_string().contains("hunter2"));
    assert_eq!(
        engine.versions(&notifier).await.unwrap().len(),
        1,
        "nothing stored"
    );
    // Once the operator re-classifies it (unsets it), the upgrade goes ahead.
    engine.unset_config(&notifier, "token").await.unwrap();
    engine.upgrade(plain.as_path()).await.unwrap();
    engine.shutdown().await;
}

/// One step of a publisher-binding case.
enum Step<'a> {
    /// Install the counter at this version, signed so.
    Install(&'a str, Sig<'a>),
    /// Upgrade the counter to this version, signed so.
    Upgrade(&'a str, Sig<'a>),
    /// Grant what it declares, then uninstall it keeping what it leaves.
    GrantAndUninstall,
}

/// What the last step should come to.
enum Outcome {
    /// Done, the publisher bound to this key (by seed) so; for an install,
    /// whether an earlier install's grant passed to it.
    Done(u8, &'static str, Option<bool>),
    /// Refused with this code and text; nothing stored, the binding (to the
    /// key with this seed) and the leftovers as they were.
    Refused(&'static str, &'static str, u8),
}

#[tokio::test]
async fn publishers_are_bound_to_keys_and_leftovers_follow_them() {
    let k = keys();
    // Every key is trusted for every publisher: only the binding decides.
    let all = TrustPolicy::default()
        .with_author_key(k.author.public_key())
        .with_author_key(k.next.public_key())
        .with_author_key(k.stranger.public_key());
    let rotated = TrustPolicy {
        rotations: vec![KeyRotation::sign(&k.author, &k.next.public_key())],
        ..all.clone()
    };
    let lenient = TrustPolicy {
        allow_unsigned: AllowUnsigned::Local,
        ..all.clone()
    };
    use Step::*;
    type Case<'a> = (&'a str, TrustPolicy, Vec<Step<'a>>, Outcome);
    let cases: Vec<Case<'_>> = vec![
        (
            "a later version signed by a rotated key, without the rotation statement",
            all.clone(),
            vec![
                Install("0.1.0", Sig::By(&k.author)),
                Upgrade("0.2.0", Sig::By(&k.next)),
            ],
            Outcome::Refused("publisher-key", "is bound to key", 1),
        ),
        (
            "a later version signed by a rotated key, with the rotation statement",
            rotated.clone(),
            vec![
                Install("0.1.0", Sig::By(&k.author)),
                Upgrade("0.2.0", Sig::By(&k.next)),
            ],
            Outcome::Done(3, "rotation", None),
        ),
        (
            "a later version unsigned",
            lenient.clone(),
            vec![
                Install("0.1.0", Sig::By(&k.author)),
                Upgrade("0.2.0", Sig::None),
            ],
            Outcome::Refused("publisher-key", "but this package is not signed", 1),
        ),
        (
            "a reinstall of an uninstalled id by another publisher",
            all.clone(),
            vec![
                Install("0.1.0", Sig::By(&k.author)),
                GrantAndUninstall,
                Install("0.1.0", Sig::By(&k.stranger)),
            ],
            Outcome::Refused("publisher-key", "is bound to key", 1),
        ),
        (
            "a reinstall by the bound publisher",
            all.clone(),
            vec![
                Install("0.1.0", Sig::By(&k.author)),
                GrantAndUninstall,
                Install("0.1.0", Sig::By(&k.author)),
            ],
            Outcome::Done(1, "first-signature", Some(true)),
        ),
        (
            "a reinstall by the bound publisher's rotated key",
            rotated,
            vec![
                Install("0.1.0", Sig::By(&k.author)),
                GrantAndUninstall,
                Install("0.1.0", Sig::By(&k.next)),
            ],
            Outcome::Done(3, "rotation", Some(true)),
        ),
        (
            "an unsigned reinstall of a bound publisher's id",
            lenient,
            vec![
                Install("0.1.0", Sig::By(&k.author)),
                GrantAndUninstall,
                Install("0.1.0", Sig::None),
            ],
            Outcome::Done(1, "first-signature", Some(false)),
        ),
    ];
    let counter: PluginId = COUNTER.parse().unwrap();
    for (name, policy, steps, outcome) in cases {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_with(dir.path(), policy, GrantPolicy::default()).await;
        let (setup, last) = steps.split_at(steps.len() - 1);
        let run = async |step: &Step<'_>| match step {
            Install(version, sig) => engine
                .install(InstallSource::Archive(archive(
                    dir.path(),
                    "counter",
                    version,
                    *sig,
                )))
                .await
                .map(|r| r.leftovers.map(|l| l.passed)),
            Upgrade(version, sig) => engine
                .upgrade(InstallSource::Archive(archive(
                    dir.path(),
                    "counter",
                    version,
                    *sig,
                )))
                .await
                .map(|_| None),
            GrantAndUninstall => {
                engine.grant(&counter, GrantRequest::all("op")).await?;
                engine
                    .uninstall(&counter, UninstallOptions::default())
                    .await?;
                Ok(None)
            }
        };
        for step in setup {
            run(step)
                .await
                .unwrap_or_else(|e| panic!("{name}: a setup step: {e}"));
        }
        let plugins_before = engine.list().await.unwrap();
        let grants_before = engine
            .store()
            .list_grants(engine.tenant(), &counter)
            .await
            .unwrap();
        let result = run(&last[0]).await;
        let bindings = engine.publisher_bindings().await.unwrap();
        let bound = |seed: u8| SigningKey::from_seed(&[seed; 32]).key_id().to_string();
        match (result, outcome) {
            (Ok(leftovers), Outcome::Done(seed, how, passed)) => {
                assert_eq!(
                    bindings
                        .iter()
                        .map(|b| (b.publisher.as_str(), b.key_id.clone(), b.bound_by.as_str()))
                        .collect::<Vec<_>>(),
                    [("tenon-examples", bound(seed), how)],
                    "{name}"
                );
                assert_eq!(leftovers, passed, "{name}: leftovers");
                let grants = engine
                    .store()
                    .list_grants(engine.tenant(), &counter)
                    .await
                    .unwrap();
                if let Some(passed) = passed {
                    assert_eq!(
                        grants.len(),
                        usize::from(passed),
                        "{name}: the grant passed or was purged"
                    );
                }
                let record = engine.record(&counter).await.unwrap();
                let trust =
                    tenon_engine::TrustRecord::from_stored(record.verification.as_ref()).unwrap();
                let expected_level = if matches!(trust.checked, Checked::Trusted) {
                    TrustLevel::Partner
                } else {
                    TrustLevel::Untrusted
                };
                assert_eq!(
                    (trust.level, trust.posture.level),
                    (expected_level, expected_level),
                    "{name}"
                );
            }
            (Err(error), Outcome::Refused(expected, text, seed)) => {
                assert_eq!(code(&error), expected, "{name}: {error}");
                assert!(error.to_string().contains(text), "{name}: {error}");
                assert!(
                    error.to_string().contains(&bound(seed)),
                    "{name}: names the bound key: {error}"
                );
                let plugins = engine.list().await.unwrap();
                assert_eq!(
                    plugins
                        .iter()
                        .map(|p| (p.id.clone(), p.version.clone()))
                        .collect::<Vec<_>>(),
                    plugins_before
                        .iter()
                        .map(|p| (p.id.clone(), p.version.clone()))
                        .collect::<Vec<_>>(),
                    "{name}: nothing stored"
                );
                if let Some(installed) = plugins.first() {
                    assert_eq!(
                        engine.versions(&installed.id).await.unwrap().len(),
                        1,
                        "{name}: no version stored"
                    );
                }
                assert_eq!(
                    bindings
                        .iter()
                        .map(|b| b.key_id.clone())
                        .collect::<Vec<_>>(),
                    [bound(seed)],
                    "{name}: the binding stays"
                );
                assert_eq!(
                    engine
                        .store()
                        .list_grants(engine.tenant(), &counter)
                        .await
                        .unwrap(),
                    grants_before,
                    "{name}: the leftovers stay"
                );
            }
            (Ok(_), _) => panic!("{name}: accepted"),
            (Err(error), _) => panic!("{name}: refused: {error}"),
        }
        engine.shutdown().await;
    }
}

/// Who installs a plugin: the host (its own built-in plugin) or a package
/// (an unsigned plugin directory).
#[derive(Clone, Copy)]
enum Installer {
    Host,
    Directory,
}

/// The notifier as `installer` would install it.
fn notifier_from(installer: Installer) -> InstallSource {
    let built = plugin("notifier");
    match installer {
        Installer::Host => {
            let manifest = std::fs::read_to_string(built.dir.join("tenon.toml")).unwrap();
            let module = std::fs::read(built.dir.join("plugin.wasm")).unwrap();
            HostPlugin::builtin(&manifest, module).into()
        }
        Installer::Directory => built.dir.as_path().into(),
    }
}

#[tokio::test]
async fn leftovers_pass_only_to_an_install_of_the_same_kind_and_purges_are_logged() {
    use Installer::*;
    // (case, who left them, who reinstalls, whether they pass)
    let cases = [
        (
            "the host's plugin, reinstalled by the host",
            Host,
            Host,
            true,
        ),
        (
            "the host's plugin, reinstalled from an unsigned directory",
            Host,
            Directory,
            false,
        ),
        (
            "a directory's plugin, reinstalled by the host",
            Directory,
            Host,
            false,
        ),
        (
            "a directory's plugin, reinstalled from a directory",
            Directory,
            Directory,
            true,
        ),
    ];
    let notifier: PluginId = "tenon-examples/notifier".parse().unwrap();
    for (name, first, second, passes) in cases {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_with(
            dir.path(),
            TrustPolicy::development(),
            GrantPolicy::default(),
        )
        .await;
        engine.install(notifier_from(first)).await.unwrap();
        engine
            .set_config(
                &notifier,
                "webhook_url",
                json!("https://hooks.example.com/a"),
            )
            .await
            .unwrap();
        engine
            .grant(&notifier, GrantRequest::all("op"))
            .await
            .unwrap();
        engine
            .uninstall(&notifier, UninstallOptions::default())
            .await
            .unwrap();
        let report = engine.install(notifier_from(second)).await.unwrap();
        let leftovers = report.leftovers.expect("it left config and a grant");
        assert_eq!(leftovers.passed, passes, "{name}: {}", leftovers.reason);
        assert_eq!(
            (leftovers.config_keys, leftovers.grants),
            (1, 1),
            "{name}: what was left"
        );
        assert_eq!(leftovers.keys, ["webhook_url"], "{name}: which keys");
        let config = engine
            .store()
            .get_config(engine.tenant(), &notifier)
            .await
            .unwrap();
        assert_eq!(
            config.values.contains_key("webhook_url"),
            passes,
            "{name}: the config passed or was purged"
        );
        let operator_grant = engine
            .store()
            .list_grants(engine.tenant(), &notifier)
            .await
            .unwrap()
            .iter()
            .any(|g| g.granted_by == "op");
        if !passes {
            assert!(!operator_grant, "{name}: the operator's grant was purged");
            assert!(
                leftovers.reason.contains("purged"),
                "{name}: {}",
                leftovers.reason
            );
        }
        // The event log says exactly what was purged.
        let purges = engine
            .events(
                &EventQuery::default()
                    .with_plugin(notifier.clone())
                    .with_kinds(&[EventKind::parse("leftovers_purged").unwrap()]),
            )
            .await
            .unwrap()
            .events;
        if passes {
            assert!(purges.is_empty(), "{name}: nothing purged");
        } else {
            assert_eq!(purges.len(), 1, "{name}: one purge logged");
            let detail = &purges[0].detail;
            assert_eq!(detail["config_keys"], json!(["webhook_url"]), "{name}");
            assert_eq!(detail["grants"], json!(1), "{name}");
            assert_eq!(detail["kv_entries"], json!(0), "{name}");
            assert!(
                detail["reason"].as_str().unwrap().contains("purged"),
                "{name}: {detail}"
            );
        }
        engine.shutdown().await;
    }
}

/// How a stored secret meets a version that stops declaring it secret.
#[derive(Clone, Copy)]
enum Inherit {
    /// Uninstalled keeping its config, then reinstalled.
    Reinstall,
    /// Reloaded from its directory at the same version.
    Reload,
}

#[tokio::test]
async fn secrets_stay_secret_on_every_path_that_inherits_them() {
    let notifier: PluginId = "tenon-examples/notifier".parse().unwrap();
    for (name, path) in [
        ("a reinstall finding the secret left", Inherit::Reinstall),
        ("a same-version reload", Inherit::Reload),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_with(
            dir.path(),
            TrustPolicy::development(),
            GrantPolicy::default(),
        )
        .await;
        let source = copy_plugin("notifier", &dir.path().join("notifier"), |text| text);
        engine.install(source.as_path()).await.unwrap();
        engine
            .set_config(
                &notifier,
                "webhook_url",
                json!("https://hooks.example.com/a"),
            )
            .await
            .unwrap();
        engine
            .set_config(&notifier, "token", json!("hunter2"))
            .await
            .unwrap();
        engine
            .grant(&notifier, GrantRequest::all("op"))
            .await
            .unwrap();
        // The same version, no longer declaring `token` secret.
        let plain = |text: String| text.replace("secret = true\n", "");
        let result = match path {
            Inherit::Reinstall => {
                engine
                    .uninstall(&notifier, UninstallOptions::default())
                    .await
                    .unwrap();
                let plain = copy_plugin("notifier", &dir.path().join("plain"), plain);
                engine.install(plain.as_path()).await.map(|_| ())
            }
            Inherit::Reload => {
                engine.enable(&notifier).await.unwrap();
                copy_plugin("notifier", &source, plain);
                engine.reload(&notifier).await.map(|_| ())
            }
        };
        let error = result.expect_err(name);
        assert_eq!(code(&error), "secret-reclassified", "{name}: {error}");
        assert!(
            error.to_string().contains("`token` is stored as a secret"),
            "{name}: {error}"
        );
        assert!(!error.to_string().contains("hunter2"), "{name}");
        let stored = engine
            .store()
            .get_config(engine.tenant(), &notifier)
            .await
            .unwrap();
        assert!(
            stored.values.get("token").is_some_and(|v| v.is_secret()),
            "{name}: the secret stays stored as one"
        );
        match path {
            Inherit::Reinstall => {
                assert!(
                    engine.list().await.unwrap().is_empty(),
                    "{name}: nothing installed"
                );
                assert!(
                    error.to_string().contains("not installed"),
                    "{name}: says how to re-classify it: {error}"
                );
            }
            Inherit::Reload => {
                let record = engine.record(&notifier).await.unwrap();
                assert_eq!(
                    record.state,
                    tenon_engine::PluginState::Active,
                    "{name}: the old code keeps running"
                );
            }
        }
        engine.shutdown().await;
    }
}
