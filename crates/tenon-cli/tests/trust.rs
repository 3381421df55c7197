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
    let pack = |version: &str, key: &str| {
        let dir = copy_example(
            "counter",
            &work.path().join(format!("c-{version}")),
            |text| with_version(&text, version),
        );
        let out = path(&format!("counter-{version}-{key}.tenon"));
        t.json(&[
            "pack",
            &dir.display().to_string(),
            "--out",
            &out,
            "--sign",
            &path(&format!("{key}.key")),
        ]);
        out
    };
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
