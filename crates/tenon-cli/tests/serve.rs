//! `tenon token` and `tenon serve`: a token made by the command line opens
//! the admin API of a running server; `--demo` installs the examples.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Stdio};

mod support;

use support::Tenon;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plain HTTP/1.0 request; the status line and the body.
fn request(addr: &str, method: &str, path: &str, token: Option<&str>) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[test]
fn tokens_made_by_the_command_line_open_the_served_api() {
    let tenon = Tenon::new();
    let viewer = tenon.ok(&["token", "create", "grafana", "--role", "viewer"]);
    let viewer = viewer.trim().to_owned();
    assert!(viewer.starts_with("tenon_"), "{viewer}");
    tenon.fails(
        &["token", "create", "grafana", "--role", "admin"],
        1,
        "already exists",
    );
    tenon.fails(
        &["token", "create", "bad name", "--role", "admin"],
        1,
        "token name",
    );
    let listed = tenon.json(&["token", "list"]);
    assert_eq!(listed["tokens"][0]["name"], "grafana");
    assert_eq!(listed["tokens"][0]["role"], "viewer");
    assert!(
        !listed.to_string().contains(&viewer),
        "a secret is never listed"
    );

    let plugins = tenon_build::plugins_target_dir();
    let mut command = tenon.command(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--demo",
        "--plugins",
        plugins.to_str().unwrap(),
    ]);
    // The examples are built once per process.
    support::example("echo");
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let _child = Killed(child);
    let mut admin = None;
    let mut addr = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(token) = line.strip_prefix("admin token `demo` (shown once): ") {
            admin = Some(token.to_owned());
        }
        if let Some(rest) = line.strip_prefix("listening on http://") {
            addr = Some(rest.split(' ').next().unwrap().to_owned());
            break;
        }
    }
    let addr = addr.expect("the server says where it listens");
    let admin = admin.expect("--demo makes an admin token");

    let (status, body) = request(&addr, "GET", "/api/v1/plugins", Some(&viewer));
    assert!(status.contains("200"), "{status} {body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = page["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"tenon-examples/echo"), "{ids:?}");
    assert!(
        ids.iter().all(|id| id.starts_with("tenon-examples/")),
        "{ids:?}"
    );

    // The viewer may not disable; the demo's admin may.
    let (status, body) = request(
        &addr,
        "POST",
        "/api/v1/plugins/tenon-examples/echo/disable",
        Some(&viewer),
    );
    assert!(status.contains("403"), "{status} {body}");
    let (status, body) = request(
        &addr,
        "POST",
        "/api/v1/plugins/tenon-examples/echo/disable",
        Some(&admin),
    );
    assert!(status.contains("200"), "{status} {body}");
    let (status, body) = request(&addr, "GET", "/metrics", Some(&viewer));
    assert!(status.contains("200"), "{status} {body}");

    // A revoked token is refused at once.
    tenon.ok(&["token", "revoke", "grafana"]);
    let (status, _) = request(&addr, "GET", "/api/v1/plugins", Some(&viewer));
    assert!(status.contains("401"), "{status}");
    tenon.fails(&["token", "revoke", "grafana"], 1, "no token named");
}
