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
use tenon_pdk::{Config, Error, HookAction, HookContext, HookData};
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
            "child" => {
                let exe = std::env::current_exe().map_err(|e| Error::internal(e.to_string()))?;
                let child = std::process::Command::new(exe)
                    .arg("orphan")
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

async fn children_die_with_the_plugin() {
    let (_host, plugin) = load("").await;
    plugin.start(&serde_json::json!({})).await.unwrap();
    let child: u32 = String::from_utf8(call(&plugin, "child").await.unwrap())
        .unwrap()
        .parse()
        .unwrap();
    let process = plugin.pid().unwrap();
    assert!(alive(child) && alive(process));
    drop(plugin);
    assert!(
        dies(process).await,
        "the plugin's process {process} outlived it"
    );
    assert!(dies(child).await, "its child {child} outlived it");
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

type Test = std::pin::Pin<Box<dyn Future<Output = ()>>>;

fn main() {
    if std::env::var_os(MAGIC_COOKIE_KEY).is_some() {
        std::process::exit(plugin_main());
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
