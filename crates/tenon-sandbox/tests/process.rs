//! The process runtime against real processes. This test binary is also the
//! plugin: started by the runtime (the handshake's magic cookie is in its
//! environment) it serves a `tenon_pdk::Plugin` over gRPC, or misbehaves as
//! its first argument (`runtime.args`) asks. The hostile modes are the
//! failures go-plugin's users meet: a plugin that never prints the
//! handshake, prints garbage, exits at start-up or mid-call, or leaves a
//! child behind.

use std::sync::Arc;
use std::time::Duration;

use tenon_manifest::{Format, Manifest, ValidationContext};
use tenon_pdk::host::{config, kv};
use tenon_pdk::{
    Config, EndpointRequest, EndpointResponse, Error, HookAction, HookContext, HookData,
};
use tenon_plugin_proto::handshake::MAGIC_COOKIE_KEY;
use tenon_sandbox::process::{ProcessConfig, ProcessPlugin, ProcessRuntime};
use tenon_sandbox::{
    CallOptions, Caller, HookCall, HookContextData, HookResponse, LoadRequest, MemoryHost, Plugin,
    ProcessFailure, SandboxConfig, SandboxError,
};

// ------------------------------------------------------------ the plugin

struct Probe {
    greeting: String,
    count: u64,
}

impl tenon_pdk::Plugin for Probe {
    fn activate(config: Config) -> Result<Self, Error> {
        Ok(Self {
            greeting: config.get_or("greeting", "hello".to_owned())?,
            count: 0,
        })
    }

    fn handle_hook(
        &mut self,
        hook: &str,
        _context: &HookContext,
        data: HookData,
    ) -> Result<HookAction, Error> {
        self.count += 1;
        kv::set("last", data.as_str())?;
        match hook {
            "block" => Ok(HookAction::block("blocked by the probe")),
            _ => HookAction::set("/greeting", self.greeting.clone()),
        }
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            "echo" => Ok(input.to_vec()),
            "kv" => Ok(kv::get("last")?.unwrap_or_default()),
            "secret" => Ok(config::secret("token")?.unwrap_or_default().into_bytes()),
            "exit" => std::process::exit(7),
            // `MODE MARKER`: starts `orphan MARKER`, in the plugin's group
            // (`stay`), in a group of its own (`group`), or through a child
            // in a group of its own that exits at once (`detach`: a double
            // fork, the orphan reparented away from the plugin).
            "child" => {
                use std::os::unix::process::CommandExt;
                let text =
                    std::str::from_utf8(input).map_err(|e| Error::internal(e.to_string()))?;
                let (mode, marker) = text
                    .split_once(' ')
                    .ok_or_else(|| Error::invalid_input("`child` takes MODE MARKER"))?;
                let program = if mode == "detach" { "detach" } else { "orphan" };
                let exe = std::env::current_exe().map_err(|e| Error::internal(e.to_string()))?;
                let mut command = std::process::Command::new(exe);
                command.args([program, marker]);
                if mode != "stay" {
                    command.process_group(0);
                }
                let child = command
                    .spawn()
                    .map_err(|e| Error::internal(e.to_string()))?;
                Ok(child.id().to_string().into_bytes())
            }
            "sleep" => {
                std::thread::sleep(Duration::from_secs(600));
                Ok(Vec::new())
            }
            "big" => Ok(vec![b'x'; 4 * 1024 * 1024]),
            other => Err(Error::unknown_function(other)),
        }
    }

    /// `echo` answers the body and says what it was asked; `big` answers
    /// 4 MiB; `fail` fails; every other function is served by nobody.
    fn handle_request(&mut self, request: EndpointRequest) -> Result<EndpointResponse, Error> {
        match request.function.as_str() {
            "echo" => {
                let asked = format!(
                    "{} {}?{} {}",
                    request.method,
                    request.path,
                    request.query,
                    request.header("content-type").unwrap_or("-")
                );
                Ok(EndpointResponse::new(201, request.body).with_header("x-asked", asked))
            }
            "big" => Ok(EndpointResponse::new(200, vec![b'x'; 4 * 1024 * 1024])),
            "fail" => Err(Error::invalid_input("the probe refuses")),
            _ => Err(Error::no_endpoints()),
        }
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>, Error> {
        Ok(Some(self.count.to_string().into_bytes()))
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), Error> {
        self.count = String::from_utf8_lossy(state).parse().unwrap_or(0);
        Ok(())
    }
}

#[allow(clippy::print_stderr)]
fn plugin_main() -> i32 {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "silent" => {
            eprintln!("probe: waiting for nothing");
            std::thread::sleep(Duration::from_secs(600));
            0
        }
        "garbage" => {
            println!("Welcome to the probe, version 3!");
            std::thread::sleep(Duration::from_secs(600));
            0
        }
        "early-exit" => {
            eprintln!("probe: cannot open libfrobnicate.so.3");
            3
        }
        "orphan" => {
            std::thread::sleep(Duration::from_secs(600));
            0
        }
        "detach" => {
            use std::os::unix::process::CommandExt;
            let marker = std::env::args().nth(2).unwrap_or_default();
            let spawned = std::env::current_exe().and_then(|exe| {
                std::process::Command::new(exe)
                    .args(["orphan", &marker])
                    .process_group(0)
                    .spawn()
            });
            i32::from(spawned.is_err())
        }
        _ => tenon_pdk::process::serve::<Probe>(),
    }
}

// ------------------------------------------------------------ the host side

fn manifest(args: &str) -> Manifest {
    let source = format!(
        r#"
manifest_version = 1
[plugin]
id = "acme/probe"
name = "Probe"
version = "1.0.0"
[runtime]
kind = "process"
command = "bin/probe"
args = [{args}]
[permissions]
kv = {{ quota = "64KiB" }}
[[config.fields]]
key = "greeting"
type = "string"
[[config.fields]]
key = "token"
type = "string"
secret = true
[limits]
timeout = "5s"
"#
    );
    tenon_manifest::parse(&source, Format::Toml, &ValidationContext::default())
        .into_result()
        .unwrap_or_else(|d| panic!("{d:?}"))
}

fn executable() -> Arc<[u8]> {
    Arc::from(std::fs::read(std::env::current_exe().unwrap()).unwrap())
}

async fn load_with(args: &str, config: ProcessConfig) -> (Arc<MemoryHost>, Arc<ProcessPlugin>) {
    let runtime = ProcessRuntime::new(SandboxConfig::default(), config);
    let manifest = manifest(args);
    let host = Arc::new(MemoryHost::new());
    let caller = Arc::new(Caller {
        plugin: manifest.plugin.id.clone(),
        version: manifest.plugin.version.clone(),
        tenant: "t".to_owned(),
        permissions: Arc::new(manifest.permissions.clone()),
    });
    let plugin = runtime
        .load_process(LoadRequest {
            manifest: Arc::new(manifest),
            module: executable(),
            caller,
            host: host.clone(),
            observer: host.clone(),
            data_dir: None,
        })
        .unwrap();
    (host, plugin)
}

async fn load(args: &str) -> (Arc<MemoryHost>, Arc<ProcessPlugin>) {
    load_with(args, ProcessConfig::default()).await
}

async fn hook(plugin: &ProcessPlugin, name: &str) -> Result<HookResponse, SandboxError> {
    let context = HookContextData::default();
    plugin
        .handle_hook(HookCall {
            hook: name,
            context: &context,
            data: r#"{"text":"hi"}"#,
            options: CallOptions::default(),
        })
        .await
}

async fn call(plugin: &ProcessPlugin, function: &str) -> Result<Vec<u8>, SandboxError> {
    plugin.call(function, b"ping", CallOptions::default()).await
}

fn alive(pid: u32) -> bool {
    // A zombie (state Z) is dead; only its entry remains until it is reaped.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits (bounded) for `pid` to die; true when it did.
async fn dies(pid: u32) -> bool {
    for _ in 0..100 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn serves_hooks_calls_and_the_host_api() {
    let (host, plugin) = load("").await;
    plugin
        .start(&serde_json::json!({"greeting": "bonjour"}))
        .await
        .unwrap();
    assert!(plugin.health().ready);
    let cases: [(&str, HookResponse); 2] = [
        (
            "message.received",
            HookResponse::Continue {
                patch: Some(r#"{"greeting":"bonjour"}"#.to_owned()),
            },
        ),
        (
            "block",
            HookResponse::Block {
                reason: Some("blocked by the probe".to_owned()),
            },
        ),
    ];
    for (name, expected) in cases {
        assert_eq!(hook(&plugin, name).await.unwrap(), expected, "{name}");
    }
    // The hook wrote through the host API, inside the boundary.
    let id = tenon_manifest::PluginId::new("acme/probe").unwrap();
    assert_eq!(
        host.kv_entries(&id, "t").get("last").map(Vec::as_slice),
        Some(&br#"{"text":"hi"}"#[..])
    );
    assert_eq!(call(&plugin, "kv").await.unwrap(), br#"{"text":"hi"}"#);
    assert_eq!(call(&plugin, "echo").await.unwrap(), b"ping");
    // A secret the plugin was not granted is refused at the boundary and
    // reads as in every other runtime.
    match call(&plugin, "secret").await {
        Err(SandboxError::PermissionDenied { permission, .. }) => assert_eq!(permission, "secrets"),
        other => panic!("{other:?}"),
    }
    assert_eq!(host.denials().len(), 1);
    match call(&plugin, "nope").await {
        Err(SandboxError::Plugin { code, .. }) => assert_eq!(code, "unknown-function"),
        other => panic!("{other:?}"),
    }
    // Snapshot and restore carry the plugin's state.
    assert_eq!(plugin.snapshot().await.unwrap(), Some(b"2".to_vec()));
    plugin.restore(b"40").await.unwrap();
    assert_eq!(plugin.snapshot().await.unwrap(), Some(b"40".to_vec()));
    plugin
        .configure(&serde_json::json!({"greeting": "hej"}))
        .await
        .unwrap();
    assert_eq!(
        hook(&plugin, "x").await.unwrap(),
        HookResponse::Continue {
            patch: Some(r#"{"greeting":"hej"}"#.to_owned())
        }
    );
    plugin.stop().await.unwrap();
    assert!(!plugin.health().ready);
    assert!(matches!(
        call(&plugin, "echo").await,
        Err(SandboxError::NotRunning { .. })
    ));
    // It starts again after a stop.
    plugin.start(&serde_json::json!({})).await.unwrap();
    assert_eq!(call(&plugin, "echo").await.unwrap(), b"ping");
}

async fn hostile_start_ups_are_named() {
    // The silent one is waited for 1.5 s; the others fail on their own
    // and get 20 s, so that a loaded machine's slow start is not mistaken
    // for a timeout.
    let within = |start_timeout| {
        let mut config = ProcessConfig::default();
        config.start_timeout = start_timeout;
        config
    };
    let cases: [(&str, Duration, ProcessFailure, &str); 3] = [
        (
            "\"silent\"",
            Duration::from_millis(1500),
            ProcessFailure::StartTimeout,
            "probe: waiting for nothing",
        ),
        (
            "\"garbage\"",
            Duration::from_secs(20),
            ProcessFailure::Handshake,
            "Welcome to the probe, version 3!",
        ),
        (
            "\"early-exit\"",
            Duration::from_secs(20),
            ProcessFailure::Exited,
            "probe: cannot open libfrobnicate.so.3",
        ),
    ];
    for (args, start_timeout, cause, quoted) in cases {
        let (_host, plugin) = load_with(args, within(start_timeout)).await;
        match plugin.start(&serde_json::json!({})).await {
            Err(SandboxError::Process {
                cause: found,
                message,
                ..
            }) => {
                assert_eq!(found, cause, "{args}: {message}");
                assert!(message.contains(quoted), "{args}: {message}");
            }
            other => panic!("{args}: {other:?}"),
        }
        assert!(!plugin.health().ready, "{args}");
    }
}

async fn a_process_that_exits_mid_call_is_named_and_restarted_with_backoff() {
    let mut config = ProcessConfig::default();
    config.restart_backoff = Duration::from_secs(1);
    config.restart_backoff_max = Duration::from_secs(60);
    let (_host, plugin) = load_with("", config).await;
    plugin
        .start(&serde_json::json!({"greeting": "bonjour"}))
        .await
        .unwrap();
    let first = plugin.pid().unwrap();
    match call(&plugin, "exit").await {
        Err(SandboxError::Process { cause, message, .. }) => {
            assert_eq!(cause, ProcessFailure::Exited, "{message}");
            assert!(message.contains("exit status: 7"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(plugin.pid(), None, "the dead process is out of service");
    // The next call waits out the backoff (1 s, counted from the death)
    // and meets a new process, activated with the config the plugin had.
    let before = std::time::Instant::now();
    assert_eq!(call(&plugin, "echo").await.unwrap(), b"ping");
    assert!(before.elapsed() >= Duration::from_millis(500), "no backoff");
    let second = plugin.pid().unwrap();
    assert_ne!(first, second);
    assert_eq!(
        hook(&plugin, "x").await.unwrap(),
        HookResponse::Continue {
            patch: Some(r#"{"greeting":"bonjour"}"#.to_owned())
        }
    );
    // A second death in a row doubles the backoff (2 s): a call whose
    // deadline is shorter fails at once and says when the next starts.
    assert!(call(&plugin, "exit").await.is_err());
    let short = CallOptions {
        timeout: Some(Duration::from_millis(200)),
        ..CallOptions::default()
    };
    match plugin.call("echo", b"", short).await {
        Err(SandboxError::Process { cause, message, .. }) => {
            assert_eq!(cause, ProcessFailure::Exited, "{message}");
            assert!(message.contains("2 time(s) in a row"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(call(&plugin, "echo").await.unwrap(), b"ping");
    // A stopped plugin is not restarted.
    plugin.stop().await.unwrap();
    assert!(matches!(
        call(&plugin, "echo").await,
        Err(SandboxError::NotRunning { .. })
    ));
}

async fn a_call_past_its_deadline_kills_the_process() {
    let (_host, plugin) = load("").await;
    plugin.start(&serde_json::json!({})).await.unwrap();
    let options = CallOptions {
        timeout: Some(Duration::from_millis(300)),
        ..CallOptions::default()
    };
    match plugin.call("sleep", b"", options).await {
        Err(SandboxError::Timeout { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(!plugin.health().ready);
}

async fn an_answer_over_the_limit_is_refused() {
    let (_host, plugin) = load("").await;
    plugin.start(&serde_json::json!({})).await.unwrap();
    match call(&plugin, "big").await {
        Err(SandboxError::OutputTooLarge { limit, .. }) => assert_eq!(limit, 1024 * 1024),
        other => panic!("{other:?}"),
    }
}

/// The live processes with `marker` among their arguments.
fn marked(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| line.split(|&b| b == 0).any(|arg| arg == marker.as_bytes()))
                && alive(pid)
        })
        .collect()
}

/// Polls (bounded) until `marked(marker)` has `count` processes; returns them.
async fn marked_count(marker: &str, count: usize) -> Vec<u32> {
    let mut found = marked(marker);
    for _ in 0..200 {
        if found.len() == count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        found = marked(marker);
    }
    found
}

async fn children_die_with_the_plugin() {
    let (_host, plugin) = load("").await;
    plugin.start(&serde_json::json!({})).await.unwrap();
    let marker = format!("tenon-probe-{}", std::process::id());
    // In its group, in a group of its own, and through a double fork.
    for mode in ["stay", "group", "detach"] {
        let input = format!("{mode} {marker}");
        plugin
            .call("child", input.as_bytes(), CallOptions::default())
            .await
            .unwrap();
    }
    let children = marked_count(&marker, 3).await;
    assert_eq!(children.len(), 3, "{children:?}");
    let process = plugin.pid().unwrap();
    assert!(alive(process));
    let contained = plugin
        .sandbox_layers()
        .iter()
        .any(|l| l.name == "pid namespace" && l.applied);
    drop(plugin);
    assert!(
        dies(process).await,
        "the plugin's process {process} outlived it"
    );
    let left = marked_count(&marker, 0).await;
    if contained {
        assert!(left.is_empty(), "its children {left:?} outlived it");
    } else {
        // Without a PID namespace only the group is killed (the host says
        // so in its layers); the two that left it are the admitted hole.
        for pid in &left {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        assert_eq!(left.len(), 2, "{left:?}");
    }
}

async fn a_changed_executable_is_not_started_and_layers_are_reported() {
    let (_host, plugin) = load("").await;
    let layers = plugin.sandbox_layers();
    assert!(
        layers.iter().any(|l| l.name == "RLIMIT_AS" && l.applied),
        "{layers:?}"
    );
    // What is not in force is said, never skipped in silence.
    assert!(
        layers.iter().any(|l| l.name == "landlock" && !l.applied),
        "{layers:?}"
    );
    let path = plugin.executable().to_path_buf();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    match plugin.start(&serde_json::json!({})).await {
        Err(SandboxError::Process { cause, message, .. }) => {
            assert_eq!(cause, ProcessFailure::Tampered, "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(plugin.pid(), None);
}

async fn endpoints_are_served_and_a_plugin_without_them_serves_none() {
    let (_host, plugin) = load("").await;
    plugin.start(&serde_json::json!({})).await.unwrap();
    let request = |function: &str| tenon_sandbox::EndpointRequest {
        function: function.to_owned(),
        method: "POST".to_owned(),
        path: "/echo/1".to_owned(),
        query: "a=1".to_owned(),
        headers: vec![("content-type".to_owned(), "text/plain".to_owned())],
        body: b"hello".to_vec(),
    };
    let answer = plugin
        .handle_request(&request("echo"), CallOptions::default())
        .await
        .unwrap();
    assert_eq!(answer.status, 201);
    assert_eq!(answer.body, b"hello");
    assert_eq!(
        answer.headers,
        vec![(
            "x-asked".to_owned(),
            "POST /echo/1?a=1 text/plain".to_owned()
        )]
    );
    let process = plugin.pid().unwrap();
    // (function, what the host makes of the answer)
    type Expected = fn(&SandboxError) -> bool;
    let table: [(&str, Expected); 3] = [
        // Served by nobody: gRPC UNIMPLEMENTED, as from a plugin written
        // before HandleRequest existed; the process is kept.
        (
            "none",
            |e| matches!(e, SandboxError::MissingExport { export, .. } if export == "handle_request"),
        ),
        (
            "fail",
            |e| matches!(e, SandboxError::Plugin { code, .. } if code == "invalid-input"),
        ),
        // Over the answer limit (1 MiB): refused before it is decoded.
        ("big", |e| matches!(e, SandboxError::OutputTooLarge { .. })),
    ];
    for (function, expected) in table {
        let error = plugin
            .handle_request(&request(function), CallOptions::default())
            .await
            .expect_err(function);
        assert!(expected(&error), "{function}: {error:?}");
        if function != "big" {
            assert_eq!(plugin.pid(), Some(process), "{function} kept the process");
        }
    }
}

/// When the process `pid` started, from field 22 of `/proc/PID/stat`.
fn started(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(") ").unwrap();
    rest.split(' ').nth(19).unwrap().parse().unwrap()
}

async fn directories_left_by_dead_hosts_are_removed_and_live_ones_kept() {
    let root = tempfile::tempdir().unwrap();
    let me = std::process::id();
    let now = started(me);
    // (name, kept): a host that runs (this one), one whose pid cannot
    // exist (above the kernel's PID_MAX_LIMIT), one whose pid was reused by
    // a process started at another time, and names of other forms.
    let table = [
        (format!("tenon-p-{me}-{now}-live"), true),
        ("tenon-p-4194305-1-dead".to_owned(), false),
        (format!("tenon-p-{me}-{}-reused", now + 1), false),
        ("tenon-p-old".to_owned(), true),
        ("tenon-p-12-x-odd".to_owned(), true),
        ("other-1-2-x".to_owned(), true),
    ];
    for (name, _) in &table {
        let dir = root.path().join(name);
        std::fs::create_dir_all(dir.join("s")).unwrap();
        std::fs::write(dir.join("s/plugin.sock"), b"").unwrap();
    }
    // A symbolic link with a stale name, to a directory that must survive.
    let target = root.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::os::unix::fs::symlink(&target, root.path().join("tenon-p-4194305-1-link")).unwrap();

    let mut config = ProcessConfig::default();
    config.work_root = root.path().to_path_buf();
    let _runtime = ProcessRuntime::new(SandboxConfig::default(), config);
    for (name, kept) in &table {
        assert_eq!(root.path().join(name).exists(), *kept, "{name}");
    }
    assert!(target.exists(), "the link was not followed");
    assert!(root.path().join("tenon-p-4194305-1-link").is_symlink());
    // A second runtime finds nothing more to remove.
    assert_eq!(ProcessRuntime::remove_stale_dirs(root.path()), 0);
}

/// A host killed with SIGKILL leaves its plugin's directory; the next
/// host's runtime removes it. The host is this test binary, run as `host
/// ROOT`: it starts the probe plugin, prints its directory and waits.
async fn a_sigkilled_hosts_directory_is_removed_at_the_next_start() {
    use std::io::BufRead;
    let root = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut host = std::process::Command::new(exe)
        .arg("--host")
        .arg(root.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(host.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let dir = std::path::PathBuf::from(line.trim());
    assert!(dir.starts_with(root.path()) && dir.exists(), "{line}");
    host.kill().unwrap();
    host.wait().unwrap();
    assert!(dir.exists(), "a SIGKILLed host cleans nothing up");
    let mut config = ProcessConfig::default();
    config.work_root = root.path().to_path_buf();
    let _runtime = ProcessRuntime::new(SandboxConfig::default(), config);
    assert!(!dir.exists(), "{} is left behind", dir.display());
}

/// `--host ROOT`: a host for the test above.
fn host_main(root: std::path::PathBuf) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut config = ProcessConfig::default();
        config.work_root = root;
        let (_host, plugin) = load_with("", config).await;
        plugin.start(&serde_json::json!({})).await.unwrap();
        let dir = plugin.executable().parent().unwrap().parent().unwrap();
        println!("{}", dir.display());
        tokio::time::sleep(Duration::from_secs(600)).await;
    });
}

type Test = std::pin::Pin<Box<dyn Future<Output = ()>>>;

fn main() {
    if std::env::var_os(MAGIC_COOKIE_KEY).is_some() {
        std::process::exit(plugin_main());
    }
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--host") {
        host_main(args.next().unwrap().into());
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let tests: Vec<(&str, Test)> = vec![
        (
            "serves_hooks_calls_and_the_host_api",
            Box::pin(serves_hooks_calls_and_the_host_api()),
        ),
        (
            "hostile_start_ups_are_named",
            Box::pin(hostile_start_ups_are_named()),
        ),
        (
            "a_process_that_exits_mid_call_is_named_and_restarted_with_backoff",
            Box::pin(a_process_that_exits_mid_call_is_named_and_restarted_with_backoff()),
        ),
        (
            "a_call_past_its_deadline_kills_the_process",
            Box::pin(a_call_past_its_deadline_kills_the_process()),
        ),
        (
            "an_answer_over_the_limit_is_refused",
            Box::pin(an_answer_over_the_limit_is_refused()),
        ),
        (
            "children_die_with_the_plugin",
            Box::pin(children_die_with_the_plugin()),
        ),
        (
            "endpoints_are_served_and_a_plugin_without_them_serves_none",
            Box::pin(endpoints_are_served_and_a_plugin_without_them_serves_none()),
        ),
        (
            "directories_left_by_dead_hosts_are_removed_and_live_ones_kept",
            Box::pin(directories_left_by_dead_hosts_are_removed_and_live_ones_kept()),
        ),
        (
            "a_sigkilled_hosts_directory_is_removed_at_the_next_start",
            Box::pin(a_sigkilled_hosts_directory_is_removed_at_the_next_start()),
        ),
        (
            "a_changed_executable_is_not_started_and_layers_are_reported",
            Box::pin(a_changed_executable_is_not_started_and_layers_are_reported()),
        ),
    ];
    for (name, test) in tests {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        runtime.block_on(test);
        println!("test {name} ... ok");
    }
}
