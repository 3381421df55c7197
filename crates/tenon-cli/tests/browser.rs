//! The admin page in a real browser: `tenon serve` on loopback with a
//! throw-away registry and a token made by `tenon token create`, and
//! headless Chromium driven by `tests/browser/admin.mjs` (playwright-core)
//! through sign-in, the install wizard (upload, preview, configure with a
//! secret, grant, enable), a hook dispatch seen live in the timeline,
//! upgrade, rollback and disable, then as a viewer, who sees no action its
//! role may not take. Screenshots go to `target/ui-screenshots`.
//!
//! `cargo xtask test` installs what it needs (Debian's chromium, the
//! committed `tests/browser` lockfile's playwright-core). Under `CI=true`
//! a missing piece fails the test; elsewhere the test says why it cannot
//! run and returns.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod support;

use support::{Tenon, copy_example, example, with_version};

/// The browser the tests drive.
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long the whole browser run may take before it is killed.
const BROWSER_LIMIT: Duration = Duration::from_secs(240);

/// A child process killed and reaped on every way out of the test.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The browser run: node, and the Chromium it starts in a process group of
/// its own (which killing node leaves running), found by the run's own
/// profile directory on its command line. Both are killed on every way out
/// of the test, so a run cut short leaves no browser behind.
struct BrowserRun {
    node: Killed,
    profile: PathBuf,
}

impl Drop for BrowserRun {
    fn drop(&mut self) {
        let _ = self.node.0.kill();
        let _ = self.node.0.wait();
        kill_processes_naming(&self.profile);
    }
}

/// Kills every process whose command line names `marker`.
fn kill_processes_naming(marker: &Path) {
    let marker = marker.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let pids: Vec<String> = entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().into_string().ok()?;
            pid.parse::<u32>().ok()?;
            let command_line = std::fs::read(entry.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&command_line)
                .contains(&marker)
                .then_some(pid)
        })
        .collect();
    if !pids.is_empty() {
        let _ = Command::new("kill").arg("-KILL").args(&pids).status();
    }
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/tenon-cli is two levels down")
        .to_path_buf()
}

/// What is missing for the browser run, if anything.
fn missing(browser_dir: &Path) -> Option<String> {
    if !Path::new(CHROMIUM).exists() {
        return Some(format!("{CHROMIUM} is not installed"));
    }
    if !browser_dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return Some(format!(
            "playwright-core is not installed in {} (npm ci)",
            browser_dir.display()
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("node is not installed".to_owned()),
    }
}

fn packed(tenon: &Tenon, dir: &Path, out: &Path) -> PathBuf {
    tenon.ok(&[
        "pack",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(out.is_file(), "{} was not written", out.display());
    out.to_path_buf()
}

#[test]
fn the_admin_page_installs_configures_and_operates_a_plugin_in_chromium() {
    let root = repository();
    let browser_dir = root.join("tests").join("browser");
    if let Some(why) = missing(&browser_dir) {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !ci,
            "the browser tests must run under CI, but {why}: `cargo xtask test` installs what they need"
        );
        eprintln!(
            "skipping the browser test: {why} (`cargo xtask test` installs chromium and playwright-core)"
        );
        return;
    }

    let tenon = Tenon::new();
    // An upload is remote to the trust policy, and these packages are
    // unsigned: the development policy's "local" would refuse them.
    tenon.set_policy(
        "allow_unsigned = \"always\"\nallow_unsigned_directories = true\nunsigned_level = \"internal\"\n",
    );
    let work = tempfile::tempdir().unwrap();
    let first = packed(
        &tenon,
        &example("notifier"),
        &work.path().join("notifier-0.1.0.tenon"),
    );
    let newer_dir = copy_example("notifier", &work.path().join("notifier-0.2.0"), |t| {
        with_version(&t, "0.2.0")
    });
    let second = packed(
        &tenon,
        &newer_dir,
        &work.path().join("notifier-0.2.0.tenon"),
    );
    let token = tenon
        .ok(&["token", "create", "browser", "--role", "admin"])
        .trim()
        .to_owned();
    assert!(token.starts_with("tenon_"), "{token}");
    let viewer = tenon
        .ok(&["token", "create", "watcher", "--role", "viewer"])
        .trim()
        .to_owned();

    let mut server = tenon
        // The notifier posts to the test's webhook sink on loopback.
        .command(&[
            "--allow-private-networks",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let server = Killed(server);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("tenon serve says where it listens within a minute");
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };

    let screenshots = root.join("target").join("ui-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let mut node = Command::new("node");
    node.arg(browser_dir.join("admin.mjs"))
        .current_dir(&browser_dir)
        .env("TENON_URL", &url)
        .env("TENON_TOKEN", &token)
        .env("TENON_VIEWER_TOKEN", &viewer)
        .env("TENON_PACKAGE_V1", &first)
        .env("TENON_PACKAGE_V2", &second)
        .env("TENON_SCREENSHOTS", &screenshots)
        .env("TENON_CHROMIUM", CHROMIUM)
        .env("TENON_PROFILE", profile.path())
        .stdin(Stdio::null());
    let mut browser = BrowserRun {
        node: Killed(node.spawn().expect("node starts")),
        profile: profile.path().to_path_buf(),
    };
    let started = Instant::now();
    let status = loop {
        if let Some(status) = browser.node.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < BROWSER_LIMIT,
            "the browser run took longer than {BROWSER_LIMIT:?} and was killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "the browser run failed ({status}); its output is above, screenshots in {}",
        screenshots.display()
    );
    drop(server);
}
