//! Soak: a well-behaved plugin answering hook calls alone, then with
//! hostile plugins misbehaving in loops beside it in the same runtime
//! (spinners, memory eaters, denial flooders, event emitters), in both
//! WebAssembly runtimes, in one run. For each phase it prints the p50, p99
//! and maximum latency of the well-behaved plugin's hook calls (`echo.noop`
//! on the echo plugin, one after the other from a Tokio worker, as a
//! dispatcher makes them) and the process's resident memory (its largest
//! sample, every 10 ms, and at the end of the phase).
//!
//! Run: `cargo bench -p tenon-sandbox --features component,extism --bench soak`
//! (`TENON_SOAK_SECS` sets each phase's length, default 10 s).

// A bench binary: its own `main`.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tenon_manifest::Manifest;
use tenon_sandbox::{
    CallOptions, CallThreading, Caller, Causation, ComponentConfig, ComponentRuntime, ExtismConfig,
    ExtismRuntime, HookCall, HostApi, HostError, LoadRequest, LogLevel, PermissionDenial, Plugin,
    Runtime, SandboxObserver,
};

use common::context;

#[allow(dead_code)]
mod common;

/// A host that keeps nothing a plugin sends it (so that the resident
/// memory measured is the runtime's, not a test host's records): it counts
/// log lines, events and denials, and has an empty KV and config.
#[derive(Default)]
struct Counting {
    logs: AtomicU64,
    events: AtomicU64,
    denials: AtomicU64,
}

#[async_trait]
impl HostApi for Counting {
    fn log(&self, _: &Caller, _: LogLevel, _: &str, _: &[(String, String)]) {
        self.logs.fetch_add(1, Ordering::Relaxed);
    }

    async fn config_get(
        &self,
        _: &Caller,
        _: &str,
    ) -> Result<Option<serde_json::Value>, HostError> {
        Ok(None)
    }

    async fn kv_get(&self, _: &Caller, _: &str) -> Result<Option<Vec<u8>>, HostError> {
        Ok(None)
    }

    async fn kv_set(&self, _: &Caller, _: &str, _: &[u8]) -> Result<(), HostError> {
        Ok(())
    }

    async fn kv_delete(&self, _: &Caller, _: &str) -> Result<(), HostError> {
        Ok(())
    }

    async fn kv_list(&self, _: &Caller, _: &str) -> Result<Vec<String>, HostError> {
        Ok(Vec::new())
    }

    async fn emit_event(
        &self,
        _: &Caller,
        _: &str,
        _: &serde_json::Value,
        _: &Causation,
    ) -> Result<(), HostError> {
        self.events.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl SandboxObserver for Counting {
    fn permission_denied(&self, _: &Caller, _: &PermissionDenial) {
        self.denials.fetch_add(1, Ordering::Relaxed);
    }
}

fn request(manifest: &Manifest, module: &Arc<[u8]>, host: &Arc<Counting>) -> LoadRequest {
    LoadRequest {
        caller: Arc::new(Caller {
            plugin: manifest.plugin.id.clone(),
            version: manifest.plugin.version.clone(),
            tenant: "bench".to_owned(),
            permissions: Arc::new(manifest.permissions.clone()),
        }),
        manifest: Arc::new(manifest.clone()),
        module: module.clone(),
        host: host.clone(),
        observer: host.clone(),
        data_dir: None,
    }
}

fn built(package: &str) -> (Manifest, Arc<[u8]>) {
    let plugin = tenon_build::ensure_examples_built().expect(package);
    let module = plugin.module_bytes().expect("the built module");
    (plugin.manifest.clone(), module.into())
}

async fn start(runtime: &dyn Runtime, package: &str, host: &Arc<Counting>) -> Arc<dyn Plugin> {
    let (manifest, module) = built(package);
    let plugin = runtime
        .load(request(&manifest, &module, host))
        .await
        .unwrap();
    plugin.start(&serde_json::json!({})).await.unwrap();
    plugin
}

/// The resident set size of this process, in bytes (Linux; 0 elsewhere).
fn resident() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// What one phase measured.
struct Phase {
    calls: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    rss_peak: u64,
    rss_end: u64,
    hostile_calls: u64,
}

/// The hostile behaviours: (package, function, input), each looping on its
/// own task.
fn hostile(runtime: &str) -> [(String, &'static str, &'static str); 4] {
    let p = |name: &str| match runtime {
        "extism" => format!("hostile-extism-{name}"),
        _ => format!("hostile-{name}"),
    };
    [
        // Spins until its 100 ms deadline.
        (p("looper"), "loop", ""),
        // Allocates 1 MiB blocks until its 32 MiB limit traps it.
        (p("memory-bomb"), "grow", ""),
        // 1000 denied publishes per call.
        (p("forbidden-host"), "flood", "1000"),
        // Publishes an event per call.
        (
            p("ping-pong"),
            "on-event",
            r#"{"topic":"bounce.start","payload":{"round":0}}"#,
        ),
    ]
}

async fn phase(well: Arc<dyn Plugin>, length: Duration, hostile_calls: &AtomicU64) -> Phase {
    let sampling = Arc::new(AtomicBool::new(true));
    let peak = Arc::new(AtomicU64::new(resident()));
    let sampler = {
        let sampling = sampling.clone();
        let peak = peak.clone();
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(resident(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let before = hostile_calls.load(Ordering::Relaxed);
    let latencies = tokio::spawn(async move {
        let cx = context();
        let mut latencies = Vec::new();
        let started = Instant::now();
        while started.elapsed() < length {
            let call = HookCall {
                hook: "echo.noop",
                context: &cx,
                data: r#"{"message":"hello"}"#,
                options: CallOptions::default(),
            };
            let at = Instant::now();
            let answer = well.handle_hook(call).await;
            latencies.push(at.elapsed());
            answer.expect("the well-behaved plugin answers");
        }
        latencies
    })
    .await
    .unwrap();
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let mut sorted = latencies;
    sorted.sort_unstable();
    let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
    Phase {
        calls: sorted.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: *sorted.last().unwrap(),
        rss_peak: peak.load(Ordering::Relaxed),
        rss_end: resident(),
        hostile_calls: hostile_calls.load(Ordering::Relaxed) - before,
    }
}

fn print(runtime: &str, name: &str, p: &Phase) {
    println!(
        "{runtime:<9} {name:<13} calls {:>7}  p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}  \
         rss peak {:>6.1} MiB  end {:>6.1} MiB  hostile calls {}",
        p.calls,
        p.p50,
        p.p99,
        p.max,
        p.rss_peak as f64 / (1 << 20) as f64,
        p.rss_end as f64 / (1 << 20) as f64,
        p.hostile_calls,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let length = Duration::from_secs(
        std::env::var("TENON_SOAK_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
    );
    let cache = tempfile::tempdir().unwrap();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Build the example plugins before anything is measured.
    tenon_build::ensure_examples_built();
    tokio.block_on(async {
        let runtimes: [(&str, &str, Arc<dyn Runtime>); 2] = [
            (
                "component",
                "echo",
                Arc::new(
                    ComponentRuntime::new(
                        ComponentConfig::default().with_cache_dir(cache.path().join("component")),
                    )
                    .unwrap(),
                ),
            ),
            (
                "extism",
                "extism-echo",
                Arc::new(ExtismRuntime::new(
                    ExtismConfig::default()
                        .with_cache_dir(cache.path().join("extism"))
                        .with_threading(CallThreading::Dedicated),
                )),
            ),
        ];
        println!(
            "soak: {}s per phase, 2 Tokio workers, {} CPUs",
            length.as_secs(),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        let host = Arc::new(Counting::default());
        for (name, echo, runtime) in runtimes {
            let well = start(&*runtime, echo, &host).await;
            let counted = Arc::new(AtomicU64::new(0));
            // Warm up.
            let _ = phase(well.clone(), Duration::from_millis(500), &counted).await;
            let alone = phase(well.clone(), length, &counted).await;
            print(name, "alone", &alone);
            let stop = Arc::new(AtomicBool::new(false));
            let mut tasks = Vec::new();
            for (package, function, input) in hostile(name) {
                let plugin = start(&*runtime, &package, &host).await;
                // Two loops of each: more than one instance each.
                for _ in 0..2 {
                    let plugin = plugin.clone();
                    let stop = stop.clone();
                    let counted = counted.clone();
                    tasks.push(tokio::spawn(async move {
                        while !stop.load(Ordering::Relaxed) {
                            let _ = plugin
                                .call(function, input.as_bytes(), CallOptions::default())
                                .await;
                            counted.fetch_add(1, Ordering::Relaxed);
                        }
                    }));
                }
            }
            let beside = phase(well.clone(), length, &counted).await;
            print(name, "with hostile", &beside);
            stop.store(true, Ordering::Relaxed);
            for task in tasks {
                let _ = task.await;
            }
            println!(
                "{name:<9} the host received {} events and {} denials, {} log lines so far",
                host.events.load(Ordering::Relaxed),
                host.denials.load(Ordering::Relaxed),
                host.logs.load(Ordering::Relaxed)
            );
        }
    });
}
