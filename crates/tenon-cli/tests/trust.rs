//! Trust through the CLI: the policy file beside the registry and `--dev`,
//! refusals with what the policy wanted, verification shown by `install`,
//! `list`, `info` and `doctor`, downgrades refused.

mod support;

use support::{Tenon, copy_example, example_arg, with_version};

const COUNTER: &str = "tenon-examples/counter";

#[test]
fn the_policy_decides_what_installs_and_the_verification_is_shown() {
    let t = Tenon::strict();
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name).display().to_string();

    // No policy: a plugin directory is refused, nothing is stored.
    t.fails(
        &["install", &example_arg("counter")],
        1,
        "allows directories only with the development switch",
    );
    assert_eq!(t.json(&["list"])["plugins"], serde_json::json!([]));

    // Keys: the publisher's, and a stranger's.
    let author = t.json(&["keygen", &path("author.key")]);
    t.json(&["keygen", &path("stranger.key")]);
    let pack = |version: &str, key: &str| pack_counter(&t, work.path(), version, key);
    let by_stranger = pack("0.2.0", "stranger");
    let by_author = pack("0.2.0", "author");
    let older = pack("0.1.0", "author");

    // A policy naming the publisher's key.
    t.set_policy(&format!(
        "[publisher_keys]\n\"tenon-examples\" = [\"{}\"]\n",
        author["public_key"].as_str().unwrap()
    ));
    t.fails(
        &["install", &by_stranger],
        1,
        "not signed by an author key the trust policy trusts for publisher `tenon-examples`",
    );
    assert_eq!(t.json(&["list"])["plugins"], serde_json::json!([]));
    let installed = t.json(&["install", &by_author]);
    assert_eq!(installed["trust"]["checked"], "trusted");
    assert_eq!(installed["trust"]["level"], "partner");
    assert_eq!(installed["trust"]["signers"][0]["key_id"], author["key_id"]);
    assert_eq!(
        installed["trust"]["posture"]["badge"],
        "partner · sandboxed"
    );

    let listed = t.json(&["list"]);
    assert_eq!(listed["plugins"][0]["trust"]["level"], "partner");
    assert!(t.ok(&["list"]).contains("partner · sandboxed"));
    let info = t.json(&["info", COUNTER]);
    assert_eq!(info["trust"], installed["trust"]);
    assert_eq!(info["versions"][0]["trust"], installed["trust"]);
    let text = t.ok(&["info", COUNTER]);
    assert!(
        text.contains("partner · sandboxed (trusted, signed by"),
        "{text}"
    );
    // (doctor exits 1: the counter's KV permission is not granted yet)
    let doctor = t.run(&["--format", "json", "doctor"]).json();
    assert_eq!(doctor["plugins"][0]["trust"], installed["trust"]);

    // A downgrade is refused; rollback is the way back.
    t.fails(&["upgrade", &older], 1, "upgrade never goes back");
    assert_eq!(
        t.json(&["info", COUNTER])["versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A broken policy file is a usage error naming the file.
    t.set_policy("unsigned_level = \"root\"\n");
    t.fails(&["list"], 2, "trust.toml: the trust policy does not parse");

    // The development switch lets a directory in, at level internal.
    t.set_policy("");
    let dev = t.json(&["--dev", "install", &example_arg("moderator")]);
    assert_eq!(dev["trust"]["checked"], "directory");
    assert_eq!(dev["trust"]["level"], "internal");
}

#[test]
fn keys_are_managed_verified_and_rotated_and_publishers_stay_bound() {
    let t = Tenon::strict();
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name).display().to_string();
    let policy_text =
        || std::fs::read_to_string(t.registry().with_file_name("trust.toml")).unwrap();
    let old = t.json(&["keygen", &path("old.key")]);
    let stranger = t.json(&["keygen", &path("stranger.key")]);
    let key = |k: &serde_json::Value| k["public_key"].as_str().unwrap().to_owned();
    let id = |k: &serde_json::Value| k["key_id"].as_str().unwrap().to_owned();
    let pack = |version: &str, signer: &str| pack_counter(&t, work.path(), version, signer);

    // The policy file is edited in place: its comment stays.
    t.set_policy("# Our keys; keep this comment.\nallow_unsigned = \"never\"\n");
    let added = t.json(&["trust", "add", &key(&old)]);
    assert_eq!(added["changed"], serde_json::json!(["author_keys"]));
    let added = t.json(&["trust", "add", &key(&stranger), "--level", "partner"]);
    assert_eq!(
        added["changed"],
        serde_json::json!(["author_keys", "key_levels"])
    );
    let again = t.json(&["trust", "add", &key(&old)]);
    assert_eq!(again["changed"], serde_json::json!([]), "already there");
    assert!(
        policy_text().starts_with("# Our keys; keep this comment.\n"),
        "{}",
        policy_text()
    );
    let listed = t.json(&["trust", "list"]);
    let keys: Vec<(&str, &str, &str)> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["key_id"].as_str().unwrap(),
                k["role"].as_str().unwrap(),
                k["level"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            (id(&old).as_str(), "author", "partner"),
            (id(&stranger).as_str(), "author", "partner")
        ]
    );
    assert_eq!(listed["bindings"], serde_json::json!([]));

    // Hostile and wrong input: a clear error, and the file as it was.
    let before = policy_text();
    for (args, code, text) in [
        (vec!["trust", "add", "not-a-key"], 2, "is not a public key"),
        (vec!["trust", "remove", "0123456789abcdef"], 1, "is not in"),
        (
            vec!["trust", "remove", "nonsense"],
            2,
            "neither a public key",
        ),
        (
            vec!["trust", "add", &key(&old), "--marketplace", "--revoke"],
            2,
            "cannot be used with",
        ),
        (vec!["verify", "no-such.tenon"], 2, "no such file"),
    ] {
        t.fails(&args, code, text);
    }
    assert_eq!(policy_text(), before, "nothing was written");
    // A policy file named elsewhere is created, with its directory.
    let elsewhere = path("policies/new/trust.toml");
    t.json(&["--trust-policy", &elsewhere, "trust", "add", &key(&old)]);
    assert!(
        std::fs::read_to_string(&elsewhere)
            .unwrap()
            .contains(&key(&old))
    );

    // What a package proves: its signer, level, and the binding it makes.
    let first = pack("0.1.0", "old");
    let verified = t.json(&["verify", &first]);
    assert_eq!(verified["accepted"], true);
    assert_eq!(verified["trust"]["level"], "partner");
    assert_eq!(
        verified["trust"]["signers"][0]["key_id"].as_str(),
        Some(id(&old).as_str())
    );
    assert_eq!(
        verified["would_bind"],
        serde_json::json!([id(&old), "first-signature"])
    );
    assert_eq!(
        t.json(&["list"])["plugins"],
        serde_json::json!([]),
        "verify stores nothing"
    );
    t.json(&["install", &first]);
    let bound = t.json(&["trust", "list"])["bindings"].clone();
    assert_eq!(bound[0]["publisher"], "tenon-examples");
    assert_eq!(bound[0]["key_id"].as_str(), Some(id(&old).as_str()));
    assert_eq!(bound[0]["bound_by"], "first-signature");

    // Another trusted key cannot take the publisher over.
    let by_stranger = pack("0.2.0", "stranger");
    let refused = t.run(&["--format", "json", "verify", &by_stranger]);
    assert_eq!(refused.code, 1);
    let refused = refused.json();
    assert_eq!(refused["accepted"], false);
    assert!(
        refused["refused"]
            .as_str()
            .unwrap()
            .contains(&format!("is bound to key {}", id(&old)))
    );
    t.fails(
        &["upgrade", &by_stranger],
        1,
        &format!("is bound to key {}", id(&old)),
    );

    // Rotation: a new key and the old key's statement; a tampered statement
    // is refused.
    let new = t.json(&[
        "keygen",
        &path("new.key"),
        "--rotate-from",
        &path("old.key"),
    ]);
    let statement = new["rotation"]["file"].as_str().unwrap().to_owned();
    assert_eq!(
        new["rotation"]["from_key_id"].as_str(),
        Some(id(&old).as_str())
    );
    let by_new = pack("0.2.0", "new");
    t.fails(&["upgrade", &by_new], 1, "not signed by an author key");
    let tampered = path("tampered.json");
    std::fs::write(
        &tampered,
        std::fs::read_to_string(&statement)
            .unwrap()
            .replace(&key(&new), &key(&stranger)),
    )
    .unwrap();
    t.fails(&["trust", "add", "--rotation", &tampered], 1, "rotation");
    assert_eq!(policy_text(), before, "nothing was written");
    let added = t.json(&["trust", "add", "--rotation", &statement]);
    assert_eq!(added["changed"], serde_json::json!(["rotations"]));
    assert!(policy_text().starts_with("# Our keys; keep this comment.\n"));
    let verified = t.json(&["verify", &by_new]);
    assert_eq!(
        verified["would_bind"],
        serde_json::json!([id(&new), "rotation"])
    );
    assert!(
        t.ok(&["verify", &by_new])
            .contains("installing this moves it to key")
    );
    t.json(&["upgrade", &by_new]);
    assert_eq!(
        t.json(&["trust", "list"])["bindings"][0]["key_id"].as_str(),
        Some(id(&new).as_str())
    );

    // A reinstall of the uninstalled id by another publisher is refused,
    // leaving what it left; the bound publisher's gets it.
    t.json(&["grant", COUNTER, "--all"]);
    t.json(&["uninstall", COUNTER]);
    t.fails(
        &["install", &pack("0.3.0", "stranger")],
        1,
        &format!("is bound to key {}", id(&new)),
    );
    assert_eq!(t.json(&["list"])["plugins"], serde_json::json!([]));
    let again = t.json(&["install", &by_new]);
    assert_eq!(again["leftovers"]["passed"], true, "{again}");
    assert_eq!(again["leftovers"]["grants"], 1);
    assert_eq!(again["granted"], true);

    // Removing a key takes it out everywhere, rotations naming it too.
    let removed = t.json(&["trust", "remove", &id(&old)]);
    assert_eq!(
        removed["changed"],
        serde_json::json!(["author_keys", "rotations"])
    );
    assert!(policy_text().starts_with("# Our keys; keep this comment.\n"));
}

#[test]
fn removing_a_key_never_lifts_its_revocation_and_publishers_are_checked() {
    let t = Tenon::strict();
    let work = tempfile::tempdir().unwrap();
    let policy_file = t.registry().with_file_name("trust.toml");
    let policy = || {
        tenon_marketplace::TrustPolicy::from_toml(
            &std::fs::read_to_string(&policy_file).unwrap_or_default(),
        )
        .unwrap()
    };
    let made = t.json(&["keygen", &work.path().join("k.key").display().to_string()]);
    let key = made["public_key"].as_str().unwrap().to_owned();
    let id = made["key_id"].as_str().unwrap().to_owned();
    let parsed: tenon_marketplace::PublicKey = key.parse().unwrap();
    t.json(&["trust", "add", &key]);
    t.json(&["trust", "add", &key, "--revoke"]);
    // (arguments, exit code, text of the error or the fields changed)
    let steps: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["trust", "add", &key, "--publisher", "Acme"],
            2,
            "`--publisher Acme` is not a publisher name",
        ),
        (
            vec!["trust", "add", &key, "--publisher", "acme/tools"],
            2,
            "is not a publisher name",
        ),
        (
            vec!["trust", "add", &key, "--publisher", ""],
            2,
            "is not a publisher name",
        ),
        (
            vec!["trust", "remove", &key, "--publisher", "ACME"],
            2,
            "is not a publisher name",
        ),
        // Removing the trusted key leaves its revocation.
        (vec!["trust", "remove", &key], 0, "author_keys"),
        (
            vec!["trust", "remove", &key],
            1,
            "it is revoked, and stays so",
        ),
        (vec!["trust", "remove", &id], 1, "--revoked"),
        // Only `--revoked` lifts it.
        (
            vec!["trust", "remove", &key, "--revoked"],
            0,
            "revoked_keys",
        ),
        (
            vec!["trust", "remove", &key, "--revoked"],
            1,
            "is not revoked in",
        ),
    ];
    for (args, code, text) in steps {
        let before = std::fs::read_to_string(&policy_file).unwrap();
        if code == 0 {
            let done = t.json(&args);
            assert_eq!(done["changed"], serde_json::json!([text]), "{args:?}");
            continue;
        }
        t.fails(&args, code, text);
        assert_eq!(
            std::fs::read_to_string(&policy_file).unwrap(),
            before,
            "{args:?}: nothing was written"
        );
        if text.contains("stays so") {
            assert!(policy().is_revoked(&parsed), "still revoked");
        }
    }
    assert!(!policy().is_revoked(&parsed));
    assert!(policy().publisher_keys.is_empty());

    // A rotation made for one publisher says so, and the policy keeps it.
    let old = work.path().join("k.key").display().to_string();
    let next = work.path().join("next.key").display().to_string();
    t.fails(
        &[
            "keygen",
            &next,
            "--rotate-from",
            &old,
            "--publisher",
            "Beta",
        ],
        2,
        "is not a publisher name",
    );
    let made = t.json(&[
        "keygen",
        &next,
        "--rotate-from",
        &old,
        "--publisher",
        "beta",
    ]);
    assert_eq!(made["rotation"]["statement"]["publisher"], "beta");
    let statement = made["rotation"]["file"].as_str().unwrap().to_owned();
    t.json(&["trust", "add", "--rotation", &statement]);
    assert_eq!(
        policy().rotations[0].publisher.as_deref(),
        Some("beta"),
        "kept with its publisher"
    );
    assert_eq!(
        t.json(&["trust", "list"])["rotations"][0]["publisher"],
        "beta"
    );
}

/// Packs the counter example at `version` into `work`, signed by the key in
/// `work/<signer>.key`; returns the archive's path.
fn pack_counter(t: &Tenon, work: &std::path::Path, version: &str, signer: &str) -> String {
    let dir = copy_example(
        "counter",
        &work.join(format!("c-{version}-{signer}")),
        |text| with_version(&text, version),
    );
    let out = work
        .join(format!("counter-{version}-{signer}.tenon"))
        .display()
        .to_string();
    let key = work.join(format!("{signer}.key")).display().to_string();
    t.json(&[
        "pack",
        &dir.display().to_string(),
        "--out",
        &out,
        "--sign",
        &key,
    ]);
    out
}
