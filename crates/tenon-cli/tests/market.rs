//! `tenon market`: init, serve with a seeded package, query it over HTTP,
//! and make a token while it runs.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use tenon_marketplace::{PackOptions, Role, SignatureFile, SigningKey, pack};

fn tenon(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tenon"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// A signed package of `acme/hello` 1.0.0 written as `hello.tenon` (and
/// `hello.tenon.sig`) in `dir`.
fn signed_package(dir: &Path) {
    let (archive, signatures) = hello(dir, "1.0.0");
    std::fs::write(dir.join("hello.tenon"), archive).unwrap();
    std::fs::write(dir.join("hello.tenon.sig"), signatures.to_json()).unwrap();
}

/// `acme/hello` at `version`, packed and signed by the seed key.
fn hello(dir: &Path, version: &str) -> (Vec<u8>, SignatureFile) {
    let src = dir.join(format!("src-{version}"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("tenon.toml"),
        format!("manifest_version = 1\n\n[plugin]\nid = \"acme/hello\"\nname = \"Hello\"\nversion = \"{version}\"\ndescription = \"Says hello.\"\nlicense = \"MIT\"\ncategories = [\"greeting\"]\n\n[engine]\ntenon = \"^1\"\n\n[runtime]\nkind = \"component\"\nmodule = \"plugin.wasm\"\n"),
    )
    .unwrap();
    std::fs::write(src.join("plugin.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let packed = pack(&src, &PackOptions::default()).unwrap();
    let mut signatures = SignatureFile::for_package(&packed.info);
    signatures.sign(Role::Author, &seed_key());
    (packed.bytes, signatures)
}

fn seed_key() -> SigningKey {
    SigningKey::from_seed(&[3; 32])
}

/// A plain HTTP/1.0 GET; the response body.
fn get(addr: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// `tenon market token ACCOUNT --scope SCOPE` in `dir`.
fn market_token(dir: &Path, account: &str, scope: &str) -> std::process::Output {
    tenon(
        &[
            "market",
            "token",
            "--keys",
            "keys",
            "--db",
            "market.db",
            account,
            "--scope",
            scope,
        ],
        dir,
    )
}

/// A plain HTTP/1.0 PUT of `body` with a bearer token; the status line.
fn put(addr: &str, path: &str, token: &str, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "PUT {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.lines().next().unwrap_or_default().to_owned()
}

/// Starts `tenon market serve` in `dir` (keys made), seeded with
/// `hello.tenon`; the server and its address.
fn serve_seeded(dir: &Path) -> (Killed, String) {
    let init = tenon(&["market", "init", "--keys", "keys"], dir);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    signed_package(dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenon"))
        .args([
            "market",
            "serve",
            "--keys",
            "keys",
            "--db",
            "market.db",
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "hello.tenon",
        ])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Killed(child);
    let mut lines = BufReader::new(stdout).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "seeded acme/hello 1.0.0");
    let listening = lines.next().unwrap().unwrap();
    let addr = listening
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{listening}"))
        .to_owned();
    (child, addr)
}

fn json_of(output: &std::process::Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn install_by_name_shows_the_plan_and_update_check_sees_a_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = serve_seeded(dir.path());
    let url = format!("http://{addr}");
    // The operator trusts the seed key for `acme`.
    std::fs::create_dir_all(dir.path().join(".tenon")).unwrap();
    std::fs::write(
        dir.path().join(".tenon/trust.toml"),
        format!(
            "[publisher_keys]\nacme = [\"{}\"]\n",
            seed_key().public_key().to_base64()
        ),
    )
    .unwrap();

    // Without --yes and without a terminal: the plan, and nothing installed.
    let asked = tenon(&["install", "acme/hello", "--from", &url], dir.path());
    assert_eq!(asked.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&asked.stderr);
    for needle in ["acme/hello", "1.0.0", "requested", "--yes"] {
        assert!(stderr.contains(needle), "`{needle}` missing from: {stderr}");
    }
    let listed = json_of(&tenon(&["list", "--format", "json"], dir.path()));
    assert_eq!(listed, serde_json::json!({"plugins": []}));

    let installed = json_of(&tenon(
        &[
            "install",
            "acme/hello@^1",
            "--from",
            &url,
            "--yes",
            "--format",
            "json",
        ],
        dir.path(),
    ));
    assert_eq!(
        installed["installed"],
        serde_json::json!(["acme/hello 1.0.0"])
    );
    assert_eq!(installed["plan"][0]["dependency"], false);

    let check = |dir: &Path| {
        json_of(&tenon(
            &["update", "--check", "--from", &url, "--format", "json"],
            dir,
        ))
    };
    assert_eq!(check(dir.path()), serde_json::json!({"updates": []}));

    // A new version is published while the server runs.
    let token = market_token(dir.path(), "seed", "publish");
    let token = String::from_utf8_lossy(&token.stdout).trim().to_owned();
    let (archive, signatures) = hello(dir.path(), "1.1.0");
    let body = tenon_market_server::encode_upload(signatures.to_json().as_bytes(), &archive);
    let status = put(&addr, "/api/v1/publish", &token, &body);
    assert!(status.contains("201"), "{status}");
    assert_eq!(
        check(dir.path()),
        serde_json::json!({"updates": [{"id": "acme/hello", "installed": "1.0.0", "available": "1.1.0"}]})
    );
    let upgraded = json_of(&tenon(
        &["update", "--from", &url, "--format", "json"],
        dir.path(),
    ));
    assert_eq!(upgraded["to"], "1.1.0", "{upgraded}");
    assert_eq!(check(dir.path()), serde_json::json!({"updates": []}));
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn market_init_serve_seed_and_search() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = serve_seeded(dir.path());
    assert!(dir.path().join("keys/root.json").exists());
    // A second init refuses to overwrite the root.
    let again = tenon(&["market", "init", "--keys", "keys"], dir.path());
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("initialised once"));

    let (status, body) = get(&addr, "/api/v1/search?q=hello&api=1.0.0");
    assert!(status.contains("200"), "{status}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["total"], 1);
    assert_eq!(page["hits"][0]["id"], "acme/hello");
    assert_eq!(page["hits"][0]["compatible_version"], "1.0.0");
    let (status, body) = get(&addr, "/index/acme/hello");
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("\"version\":\"1.0.0\""), "{body}");

    // A token made while the server runs works against it.
    let token = market_token(dir.path(), "ops", "yank");
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    assert!(String::from_utf8_lossy(&token.stdout).starts_with("tnm_"));
    drop(child);
}

/// Starts `tenon market serve` in `dir` with `args` after `serve`; the
/// server, the lines it printed before listening, and its address.
fn serve_with(dir: &Path, args: &[&str]) -> (Killed, Vec<String>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenon"))
        .args(["market", "serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Killed(child);
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(addr) = line.strip_prefix("listening on http://") {
            return (child, printed, addr.to_owned());
        }
        printed.push(line);
    }
    panic!("the server stopped before listening; it printed {printed:?}")
}

/// What `cargo xtask market-serve` does, step by step with the same
/// commands: every example plugin (and no hostile one) packed, signed and
/// seeded, found by search and in the index; serving again with the same
/// keys, database and seeds skips them all and serves the same catalog.
#[test]
fn the_example_plugins_seed_a_marketplace_and_seeding_again_skips_them() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = tenon(args, dir.path());
        assert!(
            out.status.success(),
            "tenon {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    run(&["keygen", "author.key"]);
    run(&["market", "init", "--keys", "keys"]);
    let examples: Vec<_> = tenon_build::ensure_examples_built().showcase().collect();
    assert!(examples.len() >= 4, "{examples:?}");
    let mut seeds = Vec::new();
    let mut ids = Vec::new();
    let mut keys = std::collections::BTreeSet::new();
    for (name, plugin) in &examples {
        let out = format!("{name}.tenon");
        let packed = json_of(&tenon(
            &[
                "--format",
                "json",
                "pack",
                plugin.dir.to_str().unwrap(),
                "--sign",
                "author.key",
                "--out",
                &out,
            ],
            dir.path(),
        ));
        keys.insert(
            packed["signature"]["public_key"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        ids.push(format!(
            "{} {}",
            packed["id"].as_str().unwrap(),
            packed["version"].as_str().unwrap()
        ));
        seeds.extend(["--seed".to_owned(), out]);
    }
    assert_eq!(keys.len(), 1, "one author key signs them all");
    let mut args = vec!["--keys", "keys", "--db", "market.db"];
    args.extend(seeds.iter().map(String::as_str));

    let (server, printed, addr) = serve_with(dir.path(), &args);
    let seeded: Vec<String> = ids.iter().map(|id| format!("seeded {id}")).collect();
    assert_eq!(printed, seeded);
    let search_finds_every_example = |addr: &str| {
        for (name, plugin) in &examples {
            let (status, body) = get(addr, &format!("/api/v1/search?q={name}&api=1.0.0"));
            assert!(status.contains("200"), "{status}");
            let page: serde_json::Value = serde_json::from_str(&body).unwrap();
            let hits: Vec<&str> = page["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["id"].as_str().unwrap())
                .collect();
            assert!(hits.contains(&plugin.id()), "search for {name}: {body}");
            let (status, body) = get(addr, &format!("/index/{}", plugin.id()));
            assert!(status.contains("200"), "{status}");
            assert!(body.contains("\"version\":\"0.1.0\""), "{body}");
        }
        let (_, body) = get(addr, "/api/v1/search?limit=100");
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(page["total"], examples.len(), "{body}");
        assert!(!body.contains("tenon-hostile"), "{body}");
    };
    search_finds_every_example(&addr);
    drop(server);

    // Again, as a second `cargo xtask market-serve` does: packed again (the
    // same bytes), the same keys and database.
    for (name, plugin) in &examples {
        run(&[
            "pack",
            plugin.dir.to_str().unwrap(),
            "--sign",
            "author.key",
            "--out",
            &format!("{name}.tenon"),
        ]);
    }
    let (_server, printed, addr) = serve_with(dir.path(), &args);
    let skipped: Vec<String> = examples
        .iter()
        .map(|(name, _)| format!("already published {name}.tenon"))
        .collect();
    assert_eq!(printed, skipped);
    search_finds_every_example(&addr);
}

#[test]
fn market_rotate_root_needs_the_current_threshold_and_serve_serves_every_root() {
    let dir = tempfile::tempdir().unwrap();
    let init = tenon(&["market", "init", "--keys", "keys"], dir.path());
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let rotate = |keys: &[&str]| {
        let mut args = vec![
            "market",
            "rotate-root",
            "--keys",
            "keys",
            "--format",
            "json",
        ];
        for key in keys {
            args.extend(["--root-key", key]);
        }
        tenon(&args, dir.path())
    };
    // One key of the 2-of-3 root: refused, nothing written.
    let short = rotate(&["keys/root-1.key"]);
    assert_eq!(short.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("cannot sign root 2"),
        "{}",
        String::from_utf8_lossy(&short.stderr)
    );
    assert!(!dir.path().join("keys/2.root.json").exists());
    let rotated = json_of(&rotate(&["keys/root-1.key", "keys/root-3.key"]));
    assert_eq!(rotated["version"], 2, "{rotated}");
    assert_eq!(rotated["root_keys"].as_array().unwrap().len(), 3);

    // A proxy that is not an address is refused before anything starts.
    let bad = tenon(
        &[
            "market",
            "serve",
            "--keys",
            "keys",
            "--trusted-proxy",
            "10.0.0.1/8",
        ],
        dir.path(),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("10.0.0.1/8"));

    let (child, _, addr) = serve_with(
        dir.path(),
        &[
            "--keys",
            "keys",
            "--db",
            "market.db",
            "--trusted-proxy",
            "127.0.0.1",
        ],
    );
    let (status, one) = get(&addr, "/meta/1.root.json");
    assert!(status.contains("200"), "{status}");
    let (status, two) = get(&addr, "/meta/2.root.json");
    assert!(status.contains("200"), "{status}");
    assert_ne!(one, two);
    assert_eq!(get(&addr, "/meta/root.json").1, two);
    let (status, _) = get(&addr, "/meta/3.root.json");
    assert!(status.contains("404"), "{status}");
    drop(child);
}

/// Two different loopback URLs nothing listens on (ports bound together,
/// then let go).
fn dead_urls() -> (String, String) {
    let one = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let two = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = |l: &std::net::TcpListener| format!("http://{}", l.local_addr().unwrap());
    (url(&one), url(&two))
}

#[test]
fn the_marketplace_is_the_flag_else_the_environment_else_the_trust_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr) = serve_seeded(dir.path());
    let live = format!("http://{addr}");
    let (flag, env) = dead_urls();
    let (flag, env, live) = (flag.as_str(), env.as_str(), live.as_str());
    let policy = |marketplace: Option<&str>| {
        let line = marketplace.map_or(String::new(), |url| format!("marketplace = \"{url}\"\n"));
        std::fs::write(dir.path().join("policy.toml"), line).unwrap();
    };
    // (flag, environment, policy file) → the marketplace asked, or none.
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
    );
    let cases: [Case<'_>; 5] = [
        (Some(flag), Some(env), Some(live), Some(flag)),
        (None, Some(env), Some(live), Some(env)),
        (None, None, Some(live), Some(live)),
        (Some(live), None, None, Some(live)),
        (None, None, None, None),
    ];
    for (flag, env, file, expected) in cases {
        policy(file);
        let mut command = Command::new(env!("CARGO_BIN_EXE_tenon"));
        command
            .args([
                "--registry",
                ":memory:",
                "--data-dir",
                "data",
                "--trust-policy",
                "policy.toml",
                "update",
                "--check",
                "--format",
                "json",
            ])
            .current_dir(dir.path())
            .env_remove("TENON_MARKETPLACE");
        if let Some(url) = flag {
            command.args(["--from", url]);
        }
        if let Some(url) = env {
            command.env("TENON_MARKETPLACE", url);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let case = format!("flag {flag:?}, env {env:?}, policy {file:?}: {stderr}");
        match expected {
            Some(url) if url == live => {
                assert_eq!(
                    json_of(&output),
                    serde_json::json!({"updates": []}),
                    "{case}"
                );
            }
            Some(url) => {
                assert_eq!(output.status.code(), Some(2), "{case}");
                assert!(stderr.contains(url), "{case}");
            }
            None => {
                assert_eq!(output.status.code(), Some(2), "{case}");
                assert!(stderr.contains("no marketplace given"), "{case}");
                assert!(stderr.contains("trust policy"), "{case}");
            }
        }
    }
}
