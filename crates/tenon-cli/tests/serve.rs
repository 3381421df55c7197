//! `tenon token` and `tenon serve`: a token made by the command line opens
//! the admin API of a running server; `--demo` installs the examples. A
//! running host's process plugin dies with it, `kill -9` included.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

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

/// The parent pid, state and start time (in clock ticks since boot) of the
/// process `pid`, from `/proc/PID/stat`; `None` once it is gone.
fn stat(pid: u32) -> Option<(u32, char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields after it
    // start after its last `)`.
    let (_, rest) = text.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    let parent = fields.get(1)?.parse().ok()?;
    let started = fields.get(19)?.parse().ok()?;
    Some((parent, state, started))
}

/// The processes whose parent is `parent`, with their start times.
fn children_of(parent: u32) -> Vec<(u32, u64)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (ppid, _, started) = stat(pid)?;
            (ppid == parent).then_some((pid, started))
        })
        .collect()
}

/// `tenon dev` runs a process plugin; killed with `SIGKILL` (no chance to
/// clean up), the host takes the plugin's process with it: the child was
/// started with `PR_SET_PDEATHSIG(SIGKILL)` and never outlives its host.
#[test]
fn a_process_plugin_dies_when_its_host_is_killed_with_sigkill() {
    let tenon = Tenon::new();
    let plugin = support::example("process-counter");
    let dir = plugin.to_str().unwrap();
    tenon.ok(&["install", dir]);
    tenon.ok(&["grant", "tenon-examples/process-counter", "--all"]);
    let mut child = tenon
        .command(&["--format", "json", "dev", dir])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let host = child.id();
    let stdout = child.stdout.take().unwrap();
    let mut child = Killed(child);
    let mut watching = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.contains(r#""event":"watching""#) {
            watching = true;
            break;
        }
    }
    assert!(watching, "tenon dev runs the plugin and says so");

    // The plugin's process is the host's child (the host starts nothing else
    // that outlives a call).
    let plugins: Vec<(u32, u64)> = children_of(host)
        .into_iter()
        .filter(|(pid, _)| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.starts_with("process-counte"))
        })
        .collect();
    assert_eq!(plugins.len(), 1, "one plugin process: {plugins:?}");
    let (pid, started) = plugins[0];

    // SIGKILL; reaping the host leaves the plugin to the kernel's death signal.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // Alive: the same process (pid and start time) and not a zombie.
    let alive = || stat(pid).is_some_and(|(_, state, since)| since == started && state != 'Z');
    let deadline = Instant::now() + Duration::from_secs(60);
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !alive(),
        "the plugin process {pid} outlived its host killed with SIGKILL"
    );
}
