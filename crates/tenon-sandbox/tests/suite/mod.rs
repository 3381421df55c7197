//! The behaviour suite every runtime must pass, parameterized by a
//! [`Fixture`] that says how to get "the counter plugin", "the looping
//! plugin"… for one runtime. `tests/component.rs` runs it for the component
//! runtime; other runtimes (Extism) run it the same way:
//!
//! ```ignore
//! mod suite;
//! suite::suite_tests!(my_fixture(), [echo_roundtrip, looper_is_contained, …]);
//! ```
#![allow(dead_code, unreachable_pub)]

pub mod fixtures;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tenon_manifest::{Isolation, Manifest};
use tenon_sandbox::{
    CallOptions, Caller, Causation, HookCall, HookContextData, HookResponse, LoadRequest,
    MemoryHost, Plugin, Runtime, SandboxConfig, SandboxError, TrapKind,
};

/// The plugins the suite needs, by what they do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `call("echo", x)` → `x`; hook `echo.patch` → patch `{"echoed":true}`.
    Echo,
    /// Counts hooks per name in KV (`call("get", hook)`), keeps an in-memory
    /// tally (`call("tally")`); `max_instances = 1`.
    Counter,
    /// `call("loop")` spins forever, `call("host-loop")` spins through host
    /// calls, `call("ping")` → `pong`.
    Looper,
    /// `call("grow")` allocates until it fails.
    MemoryBomb,
    /// `call("recurse")` overflows the stack; `call("depth", n)`.
    DeepRecursion,
    /// `call("panic")` panics, `call("trap")` executes `unreachable`.
    Panicker,
    /// `call("get", url)` GETs a URL (only `allowed.example.com`,
    /// `localhost`, on their default ports, are allowlisted).
    ForbiddenHost,
    /// Filesystem: `data` read-write, `assets` read-only; `read`/`write`
    /// take a path.
    PathEscape,
    /// `call("print", n)` prints n MiB; `call("log", n)` logs n MiB.
    HugeOutput,
    /// `call("on-event", event)` publishes `bounce.back` with the event's
    /// `payload.round` plus one.
    PingPong,
}

/// How to run the suite on one runtime.
pub trait Fixture: Send + Sync {
    /// The runtime under the host policy `sandbox`.
    fn runtime(&self, sandbox: SandboxConfig) -> Arc<dyn Runtime>;
    /// The manifest and module of the plugin playing `role`.
    fn plugin(&self, role: Role) -> (Manifest, Arc<[u8]>);
}

/// A runtime, an in-memory host and a data directory.
pub struct Harness {
    pub host: Arc<MemoryHost>,
    pub runtime: Arc<dyn Runtime>,
    pub data_dir: tempfile::TempDir,
}

impl Harness {
    pub fn new(fixture: &dyn Fixture) -> Self {
        Self::with_sandbox(fixture, SandboxConfig::default())
    }

    pub fn with_sandbox(fixture: &dyn Fixture, sandbox: SandboxConfig) -> Self {
        Self {
            host: Arc::new(MemoryHost::new()),
            runtime: fixture.runtime(sandbox),
            data_dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn request(&self, manifest: Manifest, module: Arc<[u8]>, tenant: &str) -> LoadRequest {
        let caller = Arc::new(Caller {
            plugin: manifest.plugin.id.clone(),
            version: manifest.plugin.version.clone(),
            tenant: tenant.to_owned(),
            permissions: Arc::new(manifest.permissions.clone()),
        });
        LoadRequest {
            manifest: Arc::new(manifest),
            module,
            caller,
            host: self.host.clone(),
            observer: self.host.clone(),
            data_dir: Some(self.data_dir.path().to_owned()),
        }
    }

    /// The error loading `manifest` for `tenant-a` fails with.
    pub async fn refused(&self, manifest: Manifest, module: Arc<[u8]>) -> SandboxError {
        match self
            .runtime
            .load(self.request(manifest, module, "tenant-a"))
            .await
        {
            Ok(_) => panic!("the load was expected to be refused"),
            Err(err) => err,
        }
    }

    /// Loads and starts the plugin playing `role`, after `edit` changed its
    /// manifest.
    pub async fn start(
        &self,
        fixture: &dyn Fixture,
        role: Role,
        edit: impl FnOnce(&mut Manifest),
    ) -> Arc<dyn Plugin> {
        let (mut manifest, module) = fixture.plugin(role);
        edit(&mut manifest);
        let plugin = self
            .runtime
            .load(self.request(manifest, module, "tenant-a"))
            .await
            .unwrap_or_else(|e| panic!("loading {role:?}: {e}"));
        plugin
            .start(&serde_json::json!({}))
            .await
            .unwrap_or_else(|e| panic!("starting {role:?}: {e}"));
        plugin
    }
}

/// What a plugin publishes while handling an event continues the event's
/// causation chain (the host bounds its depth); what it publishes outside
/// the handling of an event starts a chain.
pub async fn events_carry_their_causation(fixture: &dyn Fixture) {
    let h = Harness::new(fixture);
    let plugin = h.start(fixture, Role::PingPong, |_| {}).await;
    let event = r#"{"topic":"bounce.start","source":null,"payload":{"round":3}}"#;
    let cause = Causation::default()
        .then("bounce.start", None)
        .then("bounce.back", Some("acme/other"));
    let options = CallOptions {
        cause: cause.clone(),
        ..CallOptions::default()
    };
    plugin
        .call("on-event", event.as_bytes(), options)
        .await
        .expect("handled");
    plugin
        .call("on-event", event.as_bytes(), CallOptions::default())
        .await
        .expect("handled");
    let published: Vec<_> = h
        .host
        .events()
        .into_iter()
        .map(|e| (e.topic, e.payload["round"].clone(), e.cause))
        .collect();
    assert_eq!(
        published,
        [
            ("bounce.back".to_owned(), serde_json::json!(4), cause),
            (
                "bounce.back".to_owned(),
                serde_json::json!(4),
                Causation::default()
            ),
        ]
    );
}

pub async fn call(
    plugin: &dyn Plugin,
    function: &str,
    input: &str,
) -> Result<String, SandboxError> {
    plugin
        .call(function, input.as_bytes(), CallOptions::default())
        .await
        .map(|out| String::from_utf8_lossy(&out).into_owned())
}

/// `call`, with a call timeout shorter than the manifest's.
pub async fn call_within(
    plugin: &dyn Plugin,
    function: &str,
    input: &str,
    timeout: Duration,
) -> Result<String, SandboxError> {
    let options = CallOptions {
        timeout: Some(timeout),
        ..CallOptions::default()
    };
    plugin
        .call(function, input.as_bytes(), options)
        .await
        .map(|out| String::from_utf8_lossy(&out).into_owned())
}

pub async fn hook(
    plugin: &dyn Plugin,
    name: &str,
    data: &str,
) -> Result<HookResponse, SandboxError> {
    let context = HookContextData {
        execution_id: "exec-1".to_owned(),
        tenant: "tenant-a".to_owned(),
        timestamp_ms: 1,
        state: "{}".to_owned(),
        ..HookContextData::default()
    };
    plugin
        .handle_hook(HookCall {
            hook: name,
            context: &context,
            data,
            options: CallOptions::default(),
        })
        .await
}

async fn assert_pings(plugin: &dyn Plugin) {
    assert_eq!(
        call(plugin, "ping", "")
            .await
            .expect("ping after the hostile call"),
        "pong"
    );
}

/// Another plugin of the same runtime still works.
async fn assert_others_unaffected(h: &Harness, fixture: &dyn Fixture) {
    let echo = h.start(fixture, Role::Echo, |_| {}).await;
    assert_eq!(
        call(&*echo, "echo", "still here").await.unwrap(),
        "still here"
    );
}

pub async fn echo_roundtrip(f: &dyn Fixture) {
    let h = Harness::new(f);
    let echo = h.start(f, Role::Echo, |_| {}).await;
    assert_eq!(call(&*echo, "echo", "hello").await.unwrap(), "hello");
    let response = hook(&*echo, "echo.patch", r#"{"text":"hi"}"#)
        .await
        .unwrap();
    let HookResponse::Continue { patch: Some(patch) } = response else {
        panic!("expected a patch, got {response:?}");
    };
    let patch: serde_json::Value = serde_json::from_str(&patch).unwrap();
    assert_eq!(patch, serde_json::json!({"echoed": true}));
    let err = call(&*echo, "no-such-function", "").await.unwrap_err();
    assert!(matches!(err, SandboxError::Plugin { .. }), "{err:?}");
    // A plugin error is the plugin's answer, not a broken instance.
    assert_eq!(call(&*echo, "echo", "again").await.unwrap(), "again");
    let stats = echo.stats();
    assert!(stats.calls >= 4 && stats.failures >= 1, "{stats:?}");
    assert!(echo.health().ready);
}

pub async fn counter_concurrent_calls(f: &dyn Fixture) {
    let h = Harness::new(f);
    let counter = h.start(f, Role::Counter, |_| {}).await;
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let counter = counter.clone();
            tokio::spawn(async move { hook(&*counter, "model.pre_call", "{}").await })
        })
        .collect();
    for task in tasks {
        task.await
            .unwrap()
            .expect("every concurrent hook call succeeds");
    }
    assert_eq!(
        call(&*counter, "get", "model.pre_call").await.unwrap(),
        "64"
    );
}

pub async fn looper_is_contained(f: &dyn Fixture) {
    let h = Harness::new(f);
    // The loops get 100 ms from the call; the manifest's 5 s leave the
    // `ping` after them time to make a new instance on a loaded machine
    // (a cancelled call's engine is not used again).
    let looper = h
        .start(f, Role::Looper, |m| {
            m.limits.timeout = Duration::from_secs(5).into();
        })
        .await;
    let short = Duration::from_millis(100);
    let started = Instant::now();
    let err = call_within(&*looper, "loop", "", short).await.unwrap_err();
    assert!(matches!(err, SandboxError::Timeout { .. }), "{err:?}");
    // Stopping takes at most a tick past the 100 ms (the bound leaves room
    // for a loaded machine and stays under the manifest's 5 s).
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let err = call_within(&*looper, "host-loop", "", short)
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Timeout { .. }), "{err:?}");
    assert_pings(&*looper).await;
    assert!(looper.health().last_error.is_some());
    assert_others_unaffected(&h, f).await;
}

/// Hostile: a plugin looping until its deadline on every instance it may
/// have (eight) does not keep other plugins from being served: an echo
/// plugin of the same tenant and one of another tenant answer every call
/// at once, while every loop still holds its slot; the loops end at their
/// deadline.
pub async fn a_plugin_looping_on_every_slot_does_not_starve_others(f: &dyn Fixture) {
    const SLOTS: u32 = 8;
    let h = Harness::new(f);
    let looper = h
        .start(f, Role::Looper, |m| {
            m.limits.max_instances = SLOTS;
            // Long enough that, on a loaded machine, every slot is seen
            // taken and ten calls are served before the loops end; the
            // loops still end at this deadline.
            m.limits.timeout = Duration::from_secs(20).into();
            m.limits.wait_timeout = Duration::from_millis(20).into();
        })
        .await;
    let same_tenant = h.start(f, Role::Echo, |_| {}).await;
    let other_tenant = {
        let (manifest, module) = f.plugin(Role::Echo);
        let plugin = h
            .runtime
            .load(h.request(manifest, module, "tenant-b"))
            .await
            .unwrap();
        plugin.start(&serde_json::json!({})).await.unwrap();
        plugin
    };
    let loops: Vec<_> = (0..SLOTS)
        .map(|_| {
            let looper = looper.clone();
            tokio::spawn(async move { call(&*looper, "loop", "").await })
        })
        .collect();
    // Every slot is taken by a loop: the looper has none left.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        match call(&*looper, "ping", "").await {
            Err(SandboxError::Busy { max_instances, .. }) => {
                break assert_eq!(max_instances, SLOTS);
            }
            other => assert!(Instant::now() < deadline, "a slot stayed free: {other:?}"),
        }
    }
    for good in [&same_tenant, &other_tenant] {
        for round in 0..5 {
            let started = Instant::now();
            let answer = call(&**good, "echo", "still served").await;
            assert_eq!(answer.as_deref(), Ok("still served"), "round {round}");
            // A starved call would wait for the loops' deadline (20 s).
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "a call waited {:?} behind the loops",
                started.elapsed()
            );
        }
    }
    assert!(
        loops.iter().all(|l| !l.is_finished()),
        "the loops ended before the other plugins were served"
    );
    for stopped in loops {
        let err = stopped.await.unwrap().unwrap_err();
        assert!(matches!(err, SandboxError::Timeout { .. }), "{err:?}");
    }
    assert_pings(&*looper).await;
}

pub async fn memory_bomb_is_contained(f: &dyn Fixture) {
    let h = Harness::new(f);
    let bomb = h.start(f, Role::MemoryBomb, |_| {}).await;
    let err = call(&*bomb, "grow", "").await.unwrap_err();
    assert!(matches!(err, SandboxError::OutOfMemory { .. }), "{err:?}");
    assert_pings(&*bomb).await;
    assert_others_unaffected(&h, f).await;
}

pub async fn deep_recursion_is_contained(f: &dyn Fixture) {
    let h = Harness::new(f);
    let deep = h.start(f, Role::DeepRecursion, |_| {}).await;
    let err = call(&*deep, "recurse", "").await.unwrap_err();
    // The wasm stack overflows as `StackOverflow`; a Rust guest's shadow
    // stack lives in linear memory, and overflowing it is an out-of-bounds
    // access below address 0.
    assert!(
        matches!(
            err,
            SandboxError::Trap {
                kind: TrapKind::StackOverflow | TrapKind::MemoryOutOfBounds,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(call(&*deep, "depth", "100").await.unwrap(), "100");
    assert_others_unaffected(&h, f).await;
}

pub async fn panics_and_traps_are_contained(f: &dyn Fixture) {
    let h = Harness::new(f);
    let panicker = h.start(f, Role::Panicker, |_| {}).await;
    let err = call(&*panicker, "panic", "").await.unwrap_err();
    let SandboxError::Trap { message, .. } = &err else {
        panic!("expected a trap, got {err:?}");
    };
    assert!(message.contains("deliberate panic"), "{message}");
    let err = call(&*panicker, "trap", "").await.unwrap_err();
    assert!(
        matches!(
            err,
            SandboxError::Trap {
                kind: TrapKind::Unreachable,
                ..
            }
        ),
        "{err:?}"
    );
    assert_pings(&*panicker).await;
    assert_others_unaffected(&h, f).await;
}

pub async fn forbidden_host_is_denied(f: &dyn Fixture) {
    let h = Harness::new(f);
    let plugin = h.start(f, Role::ForbiddenHost, |_| {}).await;
    let err = call(&*plugin, "get", "https://evil.example.net/")
        .await
        .unwrap_err();
    let SandboxError::PermissionDenied { permission, .. } = &err else {
        panic!("expected a denial, got {err:?}");
    };
    assert_eq!(permission, "network");
    // `localhost` is allowlisted (on its default port), but loopback is
    // private: refused.
    let err = call(&*plugin, "get", "http://localhost/")
        .await
        .unwrap_err();
    assert!(
        matches!(err, SandboxError::PermissionDenied { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("loopback"), "{err}");
    // Another port of an allowlisted host is not allowlisted.
    let err = call(&*plugin, "get", "http://localhost:6379/")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("localhost:6379 is not in permissions.network.outbound"),
        "{err}"
    );
    let denials = h.host.denials();
    assert!(denials.len() >= 2, "{denials:?}");
    assert!(denials.iter().all(|d| d.denial.permission == "network"));
    assert_pings(&*plugin).await;
}

pub async fn filesystem_is_confined(f: &dyn Fixture) {
    let h = Harness::new(f);
    let plugin = h.start(f, Role::PathEscape, |_| {}).await;
    let root = h.data_dir.path();
    std::fs::write(root.join("assets/readme.txt"), "asset").unwrap();
    std::fs::write(root.join("secret.txt"), "outside").unwrap();
    call(&*plugin, "write", "data/ok.txt")
        .await
        .expect("data is read-write");
    assert_eq!(
        std::fs::read_to_string(root.join("data/ok.txt")).unwrap(),
        "tenon"
    );
    assert_eq!(
        call(&*plugin, "read", "assets/readme.txt").await.unwrap(),
        "asset"
    );
    assert_eq!(
        call(&*plugin, "read", "/assets/readme.txt").await.unwrap(),
        "asset"
    );
    for path in [
        "assets/written.txt",
        "data/../escaped.txt",
        "/tmp/tenon-escaped.txt",
    ] {
        let err = call(&*plugin, "write", path).await.unwrap_err();
        assert!(
            matches!(err, SandboxError::Plugin { .. }),
            "{path}: {err:?}"
        );
    }
    for path in [
        "/etc/passwd",
        "data/../secret.txt",
        "data/../../etc/passwd",
        "/data/../secret.txt",
    ] {
        let err = call(&*plugin, "read", path).await.unwrap_err();
        assert!(
            matches!(err, SandboxError::Plugin { .. }),
            "{path}: {err:?}"
        );
    }
    assert!(!root.join("escaped.txt").exists());
    assert!(!root.join("assets/written.txt").exists());
    assert_pings(&*plugin).await;
}

pub async fn output_is_bounded(f: &dyn Fixture) {
    let mut sandbox = SandboxConfig::default();
    sandbox.max_log_lines_per_call = 20;
    let h = Harness::with_sandbox(f, sandbox);
    let plugin = h.start(f, Role::HugeOutput, |_| {}).await;
    call(&*plugin, "print", "4")
        .await
        .expect("printing succeeds");
    call(&*plugin, "log", "4").await.expect("logging succeeds");
    let logs = h.host.logs();
    // Two calls, each at most 20 lines plus the line saying the rest was
    // dropped.
    assert!(logs.len() <= 2 * 21, "{} lines", logs.len());
    assert!(logs.iter().any(|l| l.message.contains("log limit reached")));
    assert!(logs.iter().all(|l| l.message.len() <= 4096 + 64));
    assert_pings(&*plugin).await;
}

pub async fn fresh_instances_keep_no_state(f: &dyn Fixture) {
    let h = Harness::new(f);
    let reuse = h.start(f, Role::Counter, |_| {}).await;
    let fresh = h
        .start(f, Role::Counter, |m| m.limits.isolation = Isolation::Fresh)
        .await;
    for _ in 0..3 {
        hook(&*reuse, "tool.pre_exec", "{}").await.unwrap();
        hook(&*fresh, "tool.pre_exec", "{}").await.unwrap();
    }
    let reuse_tally: serde_json::Value =
        serde_json::from_str(&call(&*reuse, "tally", "").await.unwrap()).unwrap();
    let fresh_tally: serde_json::Value =
        serde_json::from_str(&call(&*fresh, "tally", "").await.unwrap()).unwrap();
    assert_eq!(reuse_tally["tool.pre_exec"], 3, "{reuse_tally}");
    assert!(fresh_tally.get("tool.pre_exec").is_none(), "{fresh_tally}");
    // KV outlives instances in both modes (same plugin, same tenant: 6).
    assert_eq!(call(&*fresh, "get", "tool.pre_exec").await.unwrap(), "6");
}

/// The looper with one instance, a 3 s timeout (long enough for a loaded
/// machine to see its loop hold the instance) and a 20 ms wait.
pub async fn single_slot_looper(h: &Harness, f: &dyn Fixture) -> Arc<dyn Plugin> {
    h.start(f, Role::Looper, |m| {
        m.limits.max_instances = 1;
        m.limits.timeout = Duration::from_secs(3).into();
        m.limits.wait_timeout = Duration::from_millis(20).into();
    })
    .await
}

/// `ping` finds the only instance busy.
pub async fn assert_busy(looper: &dyn Plugin) {
    let err = call(looper, "ping", "").await.unwrap_err();
    assert!(
        matches!(
            err,
            SandboxError::Busy {
                max_instances: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

pub async fn busy_after_wait_timeout(f: &dyn Fixture) {
    let h = Harness::new(f);
    let looper = single_slot_looper(&h, f).await;
    let busy = looper.clone();
    assert_eq!(looper.stats().instances_pooled, 1, "one warm instance");
    let first = tokio::spawn(async move { call(&*busy, "loop", "").await });
    // The first call takes the only instance.
    while looper.stats().instances_pooled > 0 {
        assert!(!first.is_finished(), "the loop ended at once");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_busy(&*looper).await;
    let first = first.await.unwrap().unwrap_err();
    assert!(matches!(first, SandboxError::Timeout { .. }), "{first:?}");
    assert_pings(&*looper).await;
}

pub async fn stop_and_restart(f: &dyn Fixture) {
    let h = Harness::new(f);
    let echo = h.start(f, Role::Echo, |_| {}).await;
    echo.stop().await.unwrap();
    assert!(!echo.health().ready);
    let err = call(&*echo, "echo", "x").await.unwrap_err();
    assert!(matches!(err, SandboxError::NotRunning { .. }), "{err:?}");
    echo.start(&serde_json::json!({})).await.unwrap();
    assert_eq!(call(&*echo, "echo", "x").await.unwrap(), "x");
}

/// Expands to one `#[tokio::test]` per named suite function, each running it
/// against `$fixture`.
#[macro_export]
macro_rules! suite_tests {
    ($fixture:expr, [$($name:ident),* $(,)?]) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = $fixture;
                $crate::suite::$name(&fixture).await;
            }
        )*
    };
}
#[allow(unused_imports)]
pub use suite_tests;
