//! Every `[limits]` key, and the host's fairness caps, in both WebAssembly
//! runtimes: one table of (limit, runtime, what the hostile guest does,
//! the typed error it gets). Where a runtime enforces a limit differently
//! (Extism refuses at load a module whose tables could grow past the cap),
//! the row asserts that refusal.

mod suite;

use std::sync::Arc;
use std::time::Duration;

use suite::fixtures::{Components, DEDICATED, runtime as extism_runtime, runtime_config};
use suite::{Fixture, Harness, Role, call};
use tenon_manifest::{ByteSize, Manifest};
use tenon_sandbox::{
    CallThreading, ComponentRuntime, FairnessLimits, MemoryHost, Plugin, Runtime, SandboxConfig,
    SandboxError, TrapKind,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rt {
    Component,
    Extism,
}

/// What the test does to the plugin.
#[derive(Debug, Clone, Copy)]
enum Act {
    /// Loads it (the refusal is expected at load).
    Load,
    /// Starts it and calls `function` with `input`.
    Call(&'static str, &'static str),
    /// Starts it, keeps `function` running (it loops), and calls `ping`
    /// until the second call is refused.
    Hold(&'static str),
}

/// The module of a row: the role's built plugin, or an Extism module from
/// WAT text.
#[derive(Debug, Clone, Copy)]
enum Module {
    Built(Role),
    Wat(Role, &'static str),
}

struct Row {
    limit: &'static str,
    runtime: Rt,
    behaviour: &'static str,
    module: Module,
    edit: fn(&mut Manifest),
    fairness: Option<FairnessLimits>,
    act: Act,
    expected: &'static str,
    check: fn(&SandboxError) -> bool,
}

/// A core module whose table has no maximum, growing it in a loop (Extism
/// 1.41's limiter would let it grow without bound, in host memory).
const TABLE_GROWER: &str = r#"(module
    (table $t 1 funcref)
    (func (export "grow") (result i32)
        (loop $again
            (br_if $again (i32.ne (table.grow $t (ref.null func) (i32.const 65536))
                                  (i32.const -1))))
        (i32.const 0)))"#;

fn no_edit(_: &mut Manifest) {}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    for runtime in [Rt::Component, Rt::Extism] {
        rows.extend([
            Row {
                limit: "memory",
                runtime,
                behaviour: "allocates 1 MiB blocks, touching each, until refused",
                module: Module::Built(Role::MemoryBomb),
                edit: |m| m.limits.memory = ByteSize::mib(16),
                fairness: None,
                act: Act::Call("grow", ""),
                expected: "OutOfMemory at 16 MiB",
                check: |e| matches!(e, SandboxError::OutOfMemory { limit, .. } if *limit == 16 << 20),
            },
            Row {
                limit: "timeout",
                runtime,
                behaviour: "loops in plugin code",
                module: Module::Built(Role::Looper),
                edit: |m| m.limits.timeout = Duration::from_millis(150).into(),
                fairness: None,
                act: Act::Call("loop", ""),
                expected: "Timeout after 150 ms",
                check: |e| {
                    matches!(e, SandboxError::Timeout { after, .. } if *after == Duration::from_millis(150))
                },
            },
            Row {
                limit: "timeout",
                runtime,
                behaviour: "loops through host calls",
                module: Module::Built(Role::Looper),
                edit: |m| m.limits.timeout = Duration::from_millis(150).into(),
                fairness: None,
                act: Act::Call("host-loop", ""),
                expected: "Timeout after 150 ms",
                check: |e| matches!(e, SandboxError::Timeout { .. }),
            },
            Row {
                limit: "fuel",
                runtime,
                behaviour: "loops in plugin code with a fuel budget",
                module: Module::Built(Role::Looper),
                edit: |m| {
                    m.limits.fuel = Some(5_000_000);
                    m.limits.timeout = Duration::from_secs(30).into();
                },
                fairness: None,
                act: Act::Call("loop", ""),
                expected: "Trap(OutOfFuel)",
                check: |e| {
                    matches!(
                        e,
                        SandboxError::Trap {
                            kind: TrapKind::OutOfFuel,
                            ..
                        }
                    )
                },
            },
            Row {
                limit: "max_instances, wait_timeout",
                runtime,
                behaviour: "holds its only instance in a loop while a second call waits",
                module: Module::Built(Role::Looper),
                edit: |m| {
                    m.limits.max_instances = 1;
                    m.limits.timeout = Duration::from_secs(3).into();
                    m.limits.wait_timeout = Duration::from_millis(20).into();
                },
                fairness: None,
                act: Act::Hold("loop"),
                expected: "Busy (max_instances 1) after the 20 ms wait",
                check: |e| {
                    matches!(e, SandboxError::Busy { max_instances: 1, waited, .. } if *waited >= Duration::from_millis(20))
                },
            },
            Row {
                limit: "host cap: FairnessLimits::tenant_instances",
                runtime,
                behaviour: "asks for a second instance while its tenant's only one loops",
                module: Module::Built(Role::Looper),
                edit: |m| {
                    m.limits.max_instances = 4;
                    m.limits.timeout = Duration::from_secs(3).into();
                },
                fairness: Some(FairnessLimits::for_pool(4)),
                act: Act::Hold("loop"),
                expected: "InstanceCap naming tenant-a's cap of 1",
                check: |e| {
                    matches!(e, SandboxError::InstanceCap { cap, setting, .. }
                        if cap.starts_with("tenant `tenant-a` is at its cap of 1 live")
                            && *setting == "tenant_instances")
                },
            },
            Row {
                limit: "host cap: FairnessLimits::plugin_memory",
                runtime,
                behaviour: "asks for more memory per instance than a plugin may reserve",
                module: Module::Built(Role::Looper),
                edit: |m| m.limits.memory = ByteSize::mib(128),
                fairness: Some(FairnessLimits::for_pool(4).with_plugin_memory(64 << 20)),
                act: Act::Load,
                expected: "Unsupported at load, naming FairnessLimits::plugin_memory",
                check: |e| {
                    matches!(e, SandboxError::Unsupported { message, .. }
                        if message.contains("FairnessLimits::plugin_memory"))
                },
            },
            Row {
                limit: "max_output",
                runtime,
                behaviour: "answers 1 MiB with max_output 64 KiB",
                module: Module::Built(Role::HugeOutput),
                edit: |m| m.limits.max_output = Some(ByteSize(64 << 10)),
                fairness: None,
                act: Act::Call("big", "1"),
                expected: "OutputTooLarge naming the 64 KiB limit",
                check: |e| {
                    matches!(e, SandboxError::OutputTooLarge { limit, .. } if *limit == 64 << 10)
                },
            },
            Row {
                limit: "stack",
                runtime,
                behaviour: "asks for a larger wasm stack than the host's (1 MiB)",
                module: Module::Built(Role::DeepRecursion),
                edit: |m| m.limits.stack = Some(ByteSize::mib(2)),
                fairness: None,
                act: Act::Load,
                expected: "Unsupported at load, naming limits.stack",
                check: |e| {
                    matches!(e, SandboxError::Unsupported { message, .. } if message.contains("limits.stack"))
                },
            },
            Row {
                limit: "stack",
                runtime,
                behaviour: "recurses without bound under the host's largest wasm stack (1 MiB)",
                module: Module::Built(Role::DeepRecursion),
                edit: |m| m.limits.stack = Some(ByteSize::mib(1)),
                fairness: None,
                act: Act::Call("recurse", ""),
                expected: "Trap(StackOverflow or out-of-bounds below the shadow stack), the host's thread intact",
                check: |e| {
                    matches!(
                        e,
                        SandboxError::Trap {
                            kind: TrapKind::StackOverflow | TrapKind::MemoryOutOfBounds,
                            ..
                        }
                    )
                },
            },
            Row {
                limit: "max_output",
                runtime,
                behaviour: "asks for more than the host's maximum (64 MiB)",
                module: Module::Built(Role::HugeOutput),
                edit: |m| m.limits.max_output = Some(ByteSize::mib(65)),
                fairness: None,
                act: Act::Load,
                expected: "Unsupported at load, naming limits.max_output",
                check: |e| {
                    matches!(e, SandboxError::Unsupported { message, .. } if message.contains("limits.max_output"))
                },
            },
        ]);
    }
    rows.extend([
        Row {
            limit: "stack",
            runtime: Rt::Component,
            behaviour: "recurses without bound",
            module: Module::Built(Role::DeepRecursion),
            edit: no_edit,
            fairness: None,
            act: Act::Call("recurse", ""),
            expected: "Trap(StackOverflow or out-of-bounds below the shadow stack)",
            check: |e| {
                matches!(
                    e,
                    SandboxError::Trap {
                        kind: TrapKind::StackOverflow | TrapKind::MemoryOutOfBounds,
                        ..
                    }
                )
            },
        },
        Row {
            limit: "stack",
            runtime: Rt::Extism,
            behaviour: "recurses without bound under a 256 KiB wasm stack",
            module: Module::Built(Role::DeepRecursion),
            edit: |m| m.limits.stack = Some(ByteSize(256 << 10)),
            fairness: None,
            act: Act::Call("recurse", ""),
            expected: "Trap(StackOverflow or out-of-bounds below the shadow stack)",
            check: |e| {
                matches!(
                    e,
                    SandboxError::Trap {
                        kind: TrapKind::StackOverflow | TrapKind::MemoryOutOfBounds,
                        ..
                    }
                )
            },
        },
        Row {
            limit: "tables",
            runtime: Rt::Extism,
            behaviour: "a module whose table has no maximum grows it in a loop",
            module: Module::Wat(Role::Echo, TABLE_GROWER),
            edit: no_edit,
            fairness: None,
            act: Act::Load,
            expected: "refused at load: the table could grow without bound",
            check: |e| {
                matches!(e, SandboxError::Compile { message, .. } if message.contains("no maximum size"))
            },
        },
    ]);
    rows
}

fn runtime_for(row: &Row) -> Arc<dyn Runtime> {
    let sandbox = SandboxConfig::default();
    match row.runtime {
        Rt::Component => {
            let mut config = runtime_config(sandbox);
            if let Some(limits) = row.fairness {
                config = config.with_fairness(limits);
            }
            Arc::new(ComponentRuntime::new(config).expect("a component runtime"))
        }
        Rt::Extism => {
            let runtime = match row.fairness {
                Some(limits) => tenon_sandbox::ExtismRuntime::new(
                    tenon_sandbox::ExtismConfig::default()
                        .with_sandbox(sandbox)
                        .with_cache_dir(suite::fixtures::shared_cache())
                        .with_threading(CallThreading::Dedicated)
                        .with_fairness(limits),
                ),
                None => extism_runtime(sandbox, CallThreading::Dedicated),
            };
            Arc::new(runtime)
        }
    }
}

fn fixture(runtime: Rt) -> &'static dyn Fixture {
    match runtime {
        Rt::Component => &Components,
        Rt::Extism => &DEDICATED,
    }
}

/// Starts `held` (a call that loops until its deadline), waits until it has
/// taken the plugin's warm instance, then calls `ping`: the refusal.
async fn refused_while_held(
    plugin: &Arc<dyn Plugin>,
    held: &'static str,
    case: &str,
) -> SandboxError {
    assert_eq!(
        plugin.stats().instances_pooled,
        1,
        "{case}: one warm instance"
    );
    let holder = plugin.clone();
    let hold = tokio::spawn(async move { call(&*holder, held, "").await });
    while plugin.stats().instances_pooled > 0 {
        assert!(!hold.is_finished(), "{case}: the held call ended at once");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let refused = match call(&**plugin, "ping", "").await {
        Ok(answer) => panic!("{case}: ping answered {answer:?} while the instance was held"),
        Err(refused) => refused,
    };
    let held = hold.await.expect("the held call's task");
    assert!(
        matches!(held, Err(SandboxError::Timeout { .. })),
        "{case}: the held call: {held:?}"
    );
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_limit_holds_in_every_runtime() {
    for row in rows() {
        let case = format!(
            "{} / {:?} / {}: expected {}",
            row.limit, row.runtime, row.behaviour, row.expected
        );
        let runtime = runtime_for(&row);
        let h = Harness {
            host: Arc::new(MemoryHost::new()),
            runtime,
            data_dir: tempfile::tempdir().unwrap(),
        };
        let f = fixture(row.runtime);
        let (mut manifest, module) = match row.module {
            Module::Built(role) => f.plugin(role),
            Module::Wat(role, text) => {
                let (manifest, _) = f.plugin(role);
                (manifest, wat::parse_str(text).expect("valid WAT").into())
            }
        };
        (row.edit)(&mut manifest);
        let id = manifest.plugin.id.to_string();
        let loaded = h
            .runtime
            .load(h.request(manifest, module, "tenant-a"))
            .await;
        let error = match (row.act, loaded) {
            (Act::Load, Ok(_)) => panic!("{case}: loaded"),
            (Act::Load, Err(e)) => e,
            (_, Err(e)) => panic!("{case}: not loaded: {e}"),
            (Act::Call(function, input), Ok(plugin)) => {
                plugin.start(&serde_json::json!({})).await.unwrap();
                let error = match call(&*plugin, function, input).await {
                    Ok(answer) => panic!("{case}: answered {answer:?}"),
                    Err(error) => error,
                };
                // The plugin still serves afterwards, where it can. After a
                // timeout the next call makes a new instance (on a new
                // engine, in Extism) within the row's short manifest
                // timeout: on a loaded machine that may not fit once, but
                // the instance it made serves the next try.
                if row.module_pings() {
                    let mut answer = call(&*plugin, "ping", "").await;
                    for _ in 0..4 {
                        if !matches!(answer, Err(SandboxError::Timeout { .. })) {
                            break;
                        }
                        answer = call(&*plugin, "ping", "").await;
                    }
                    assert_eq!(answer.unwrap(), "pong", "{case}");
                }
                error
            }
            (Act::Hold(function), Ok(plugin)) => {
                plugin.start(&serde_json::json!({})).await.unwrap();
                let error = refused_while_held(&plugin, function, &case).await;
                assert_eq!(call(&*plugin, "ping", "").await.unwrap(), "pong", "{case}");
                error
            }
        };
        assert!((row.check)(&error), "{case}: got {error:?}");
        // A refusal says what and where.
        let message = error.to_string();
        assert!(message.contains(&id), "{case}: {message}");
    }
}

impl Row {
    /// Whether the row's plugin answers `ping` (every hostile plugin
    /// does).
    fn module_pings(&self) -> bool {
        matches!(self.module, Module::Built(_))
    }
}
