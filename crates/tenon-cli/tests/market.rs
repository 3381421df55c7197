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
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("tenon.toml"),
        "manifest_version = 1\n\n[plugin]\nid = \"acme/hello\"\nname = \"Hello\"\nversion = \"1.0.0\"\ndescription = \"Says hello.\"\nlicense = \"MIT\"\ncategories = [\"greeting\"]\n\n[engine]\ntenon = \"^1\"\n\n[runtime]\nkind = \"component\"\nmodule = \"plugin.wasm\"\n",
    )
    .unwrap();
    std::fs::write(src.join("plugin.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let packed = pack(&src, &PackOptions::default()).unwrap();
    let mut signatures = SignatureFile::for_package(&packed.info);
    signatures.sign(Role::Author, &SigningKey::from_seed(&[3; 32]));
    std::fs::write(dir.join("hello.tenon"), &packed.bytes).unwrap();
    std::fs::write(dir.join("hello.tenon.sig"), signatures.to_json()).unwrap();
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
    let init = tenon(&["market", "init", "--keys", "keys"], dir.path());
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(dir.path().join("keys/root.json").exists());
    // A second init refuses to overwrite the root.
    let again = tenon(&["market", "init", "--keys", "keys"], dir.path());
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("initialised once"));

    signed_package(dir.path());
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
        .current_dir(dir.path())
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
    let token = tenon(
        &[
            "market",
            "token",
            "--keys",
            "keys",
            "--db",
            "market.db",
            "ops",
            "--scope",
            "yank",
        ],
        dir.path(),
    );
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    assert!(String::from_utf8_lossy(&token.stdout).starts_with("tnm_"));
    drop(child);
}
