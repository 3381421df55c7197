//! Hostile plugins against containment, in both WebAssembly runtimes: what
//! a plugin hands the host is size-checked before the host copies it, and
//! the host's own memory stays bounded while it refuses.
//!
//! The host's heap is measured by a counting allocator (guest linear
//! memory is mapped by wasmtime directly, so it is not counted): every
//! test here takes [`SERIAL`] so that no other test of this binary
//! allocates while one measures.

mod suite;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use std::sync::Arc;

use suite::fixtures::{Components, INLINE, runtime_config};
use suite::{Fixture, Harness, Role, call, hook};
use tenon_manifest::ByteSize;
use tenon_sandbox::component::AllocatorKind;
use tenon_sandbox::{ComponentRuntime, HookResponse, MemoryHost, SandboxConfig, SandboxError};

/// Counts the bytes the host holds on its heap, and the most it held.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code)]
// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed through.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let held = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(held, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed through.
        unsafe { System.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed through.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                let held = HELD.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(held, Ordering::Relaxed);
            } else {
                HELD.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One measuring test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `work` and returns what it returned with how far the host's heap
/// grew above where it stood when `work` started.
async fn heap_growth<T>(work: impl Future<Output = T>) -> (T, usize) {
    let base = HELD.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = work.await;
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

const MIB: usize = 1 << 20;

/// What the host may hold on its heap while it refuses a huge answer: its
/// own bookkeeping, never a copy of the answer.
const REFUSAL_HEAP: usize = 4 * MIB;

fn assert_too_large(what: &str, result: Result<String, SandboxError>, limits: &[u64]) {
    match result {
        Err(SandboxError::OutputTooLarge { limit, .. }) if limits.contains(&limit) => {}
        other => panic!("{what}: expected output_too_large naming {limits:?}, got {other:?}"),
    }
}

/// A plugin answering 100 MiB (or failing with a 100 MiB message, or
/// handing a host call 100 MiB) is refused with `output_too_large` before
/// the host copies a byte of it: the host's heap grows by less than
/// [`REFUSAL_HEAP`] each time, and the plugin and its neighbours answer
/// normally afterwards.
pub async fn huge_answers_are_refused_before_they_are_copied(f: &dyn Fixture) {
    let _serial = SERIAL.lock().await;
    let h = Harness::new(f);
    let plugin = h.start(f, Role::HugeOutput, |_| {}).await;
    let echo = h.start(f, Role::Echo, |_| {}).await;
    assert_eq!(call(&*plugin, "ping", "").await.unwrap(), "pong");
    let config = SandboxConfig::default();
    let answer = config.default_output;
    // The most one transfer may carry (the component runtime's hostcall
    // fuel): the answer limit or the largest host-call arguments.
    let transfer = (config.max_http_request_body + 64 * 1024) as u64;
    let limits = [answer, transfer];

    for (function, mib, what) in [
        ("big", "100", "a 100 MiB answer"),
        ("zeros", "100", "a 100 MiB JSON array"),
        ("error", "64", "a 64 MiB error message"),
    ] {
        let (result, grew) = heap_growth(call(&*plugin, function, mib)).await;
        assert_too_large(what, result, &limits);
        assert!(
            grew < REFUSAL_HEAP,
            "{what}: the host's heap grew by {grew} bytes"
        );
        assert_eq!(call(&*plugin, "ping", "").await.unwrap(), "pong", "{what}");
    }

    for (data, what) in [
        (r#"{"mib": 64}"#, "a 64 MiB patch"),
        (r#"{"mib": 16, "shape": "zeros"}"#, "a 16 MiB [0,0,…] patch"),
    ] {
        let (result, grew) = heap_growth(hook(&*plugin, "response.pre_deliver", data)).await;
        let result = result.map(|r| format!("{r:?}"));
        assert_too_large(what, result, &limits);
        assert!(
            grew < REFUSAL_HEAP,
            "{what}: the host's heap grew by {grew} bytes"
        );
    }
    // Between the answer limit and the most one transfer carries, the
    // component runtime copies the answer once before refusing it (the
    // Extism runtime reads its length in place): never more.
    let (result, grew) = heap_growth(hook(
        &*plugin,
        "response.pre_deliver",
        r#"{"mib": 4, "shape": "zeros"}"#,
    ))
    .await;
    assert_too_large(
        "a 4 MiB [0,0,…] patch",
        result.map(|r| format!("{r:?}")),
        &[answer],
    );
    assert!(
        grew < transfer as usize + REFUSAL_HEAP,
        "a 4 MiB patch: the host's heap grew by {grew} bytes"
    );

    // Host calls: 32 MiB of arguments (four times what one transfer may
    // carry) is refused (a trap with the named cause in the component
    // runtime, an error value the plugin sees in Extism) without being
    // copied; a 32 MiB log line is cut to its limit.
    for (function, what) in [
        ("kv", "a 32 MiB KV value"),
        ("event", "a 32 MiB event payload"),
        ("post", "a 32 MiB HTTP body"),
        ("log-line", "a 32 MiB log line"),
    ] {
        let (result, grew) = heap_growth(call(&*plugin, function, "32")).await;
        match &result {
            // The component runtime: refused as the host call's arguments.
            Err(SandboxError::OutputTooLarge { what: said, .. }) if said.contains("host call") => {}
            // Extism: the host function's error value, which the plugin
            // returned as its own error.
            Err(SandboxError::Plugin { code, message, .. })
                if code == "quota_exceeded" && message.contains("the limit is") => {}
            // Extism's own `log_info` cannot fail: the line is cut.
            Ok(_) if function == "log-line" => {}
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
        assert!(
            grew < REFUSAL_HEAP,
            "{what}: the host's heap grew by {grew} bytes"
        );
    }
    assert!(
        h.host
            .kv_entries(&plugin.caller().plugin, "tenant-a")
            .is_empty(),
        "nothing of the refused value was stored"
    );
    assert!(h.host.events().is_empty(), "no refused event was published");
    assert!(
        h.host
            .logs()
            .iter()
            .all(|l| l.message.len() <= config.max_log_line + 64),
        "every log line was cut"
    );

    // Health and receipts carry bounded text.
    let last = plugin.health().last_error.unwrap_or_default();
    assert!(
        last.len() <= config.max_error_message + 256,
        "{} bytes",
        last.len()
    );
    assert_eq!(call(&*plugin, "ping", "").await.unwrap(), "pong");
    assert_eq!(call(&*echo, "echo", "after").await.unwrap(), "after");
}

/// An answer over the plugin's own `limits.max_output` (under the host's
/// cap) is refused with its size; one under it passes.
pub async fn the_manifest_sets_the_answer_limit_within_the_host_cap(f: &dyn Fixture) {
    let _serial = SERIAL.lock().await;
    let h = Harness::new(f);
    let plugin = h
        .start(f, Role::HugeOutput, |m| {
            m.limits.max_output = Some(ByteSize::mib(3));
        })
        .await;
    assert_eq!(call(&*plugin, "big", "2").await.unwrap().len(), 2 * MIB);
    let err = call(&*plugin, "big", "4").await.unwrap_err();
    assert!(
        matches!(
            err,
            SandboxError::OutputTooLarge { size: Some(size), limit, .. }
                if size == 4 * MIB as u64 && limit == 3 * MIB as u64
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "output_too_large");
    // A 2 MiB patch passes as text; the host parses it only where it
    // applies it.
    let response = hook(&*plugin, "response.pre_deliver", r#"{"mib": 2}"#)
        .await
        .unwrap();
    assert!(
        matches!(&response, HookResponse::Continue { patch: Some(p) } if p.len() > 2 * MIB),
        "a 2 MiB patch"
    );
    // Above the host's cap, the manifest is refused at load.
    let (mut manifest, module) = f.plugin(Role::HugeOutput);
    manifest.limits.max_output = Some(ByteSize::mib(65));
    let err = h.refused(manifest, module).await;
    assert!(err.to_string().contains("limits.max_output"), "{err}");
}

/// The most elements a plugin's table may hold, in every runtime
/// (`docs/security.md`, "Limits").
const TABLE_CAP: u32 = 100_000;

/// A `tenon:plugin@1.0.0` component written by hand (no tenon-pdk guest
/// can grow a table) whose core module declares `table` (a funcref table
/// with no maximum). `call("ping")` answers `pong`; any other call grows
/// the table, 65,536 elements at a time and then by halves, until a
/// growth by one is refused, and answers the table's size (four bytes,
/// little-endian). Hooks continue unchanged, the rest succeeds.
fn table_grower(table: &str) -> Arc<[u8]> {
    let text = format!(
        r#"(component
  (import "tenon:plugin/types@1.0.0" (instance $types
    (type $pe (record (field "code" string) (field "message" string)))
    (export "plugin-error" (type (eq $pe)))
    (type $ctx (record
      (field "execution-id" string) (field "tenant" string)
      (field "user-id" (option string)) (field "session-id" (option string))
      (field "timestamp-ms" u64) (field "state" string)))
    (export "hook-context" (type (eq $ctx)))
    (type $act (variant (case "continue" (option string)) (case "block" (option string))))
    (export "hook-action" (type (eq $act)))))
  (alias export $types "plugin-error" (type $plugin-error))
  (alias export $types "hook-context" (type $hook-context))
  (alias export $types "hook-action" (type $hook-action))
  (core module $m
    (memory (export "memory") 16)
    {table}
    (global $heap (mut i32) (i32.const 4096))
    ;; A bump allocator that starts again low once past 512 KiB: what the
    ;; host copies in is small and lives for one call.
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      (if (i32.gt_u (global.get $heap) (i32.const 0x80000))
        (then (global.set $heap (i32.const 4096))))
      (local.set $at (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
      (global.set $heap (i32.add (local.get $at) (local.get 3)))
      (local.get $at))
    ;; Every answer is written at 0: a zeroed result is `ok` (and a
    ;; hook's `continue(none)`).
    (func $ok (result i32)
      (i32.store (i32.const 0) (i32.const 0))
      (i32.store (i32.const 4) (i32.const 0))
      (i32.store (i32.const 8) (i32.const 0))
      (i32.const 0))
    (func (export "activate") (param i32 i32) (result i32) (call $ok))
    (func (export "configure") (param i32 i32) (result i32) (call $ok))
    (func (export "deactivate") (result i32) (call $ok))
    (func (export "handle-hook") (param i32) (result i32) (call $ok))
    (func (export "call") (param $name i32) (param i32 i32 i32) (result i32)
      (local $delta i32)
      (drop (call $ok))
      (i32.store (i32.const 4) (i32.const 32))
      (i32.store (i32.const 8) (i32.const 4))
      ;; "ping" → "pong"
      (if (i32.eq (i32.load8_u (local.get $name)) (i32.const 0x70))
        (then
          (i32.store (i32.const 32) (i32.const 0x676e6f70))
          (return (i32.const 0))))
      (local.set $delta (i32.const 65536))
      (block $done
        (loop $again
          (if (i32.eq (table.grow 0 (ref.null func) (local.get $delta)) (i32.const -1))
            (then
              (br_if $done (i32.le_u (local.get $delta) (i32.const 1)))
              (local.set $delta (i32.shr_u (local.get $delta) (i32.const 1)))))
          (br $again)))
      (i32.store (i32.const 32) (table.size 0))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (func $activate (param "config" string) (result (result (error $plugin-error)))
    (canon lift (core func $i "activate") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (func $configure (param "config" string) (result (result (error $plugin-error)))
    (canon lift (core func $i "configure") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (func $deactivate (result (result (error $plugin-error)))
    (canon lift (core func $i "deactivate") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (func $handle-hook
    (param "hook" string) (param "context" $hook-context) (param "data" string)
    (result (result $hook-action (error $plugin-error)))
    (canon lift (core func $i "handle-hook") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (func $call (param "function" string) (param "input" (list u8))
    (result (result (list u8) (error $plugin-error)))
    (canon lift (core func $i "call") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (instance $guest
    (export "activate" (func $activate))
    (export "configure" (func $configure))
    (export "deactivate" (func $deactivate))
    (export "handle-hook" (func $handle-hook))
    (export "call" (func $call)))
  (export "tenon:plugin/guest@1.0.0" (instance $guest)))"#
    );
    wat::parse_str(text).expect("valid component text").into()
}

/// Hostile, the component runtime: a plugin growing a table with no
/// maximum in a loop (its elements live in the host's memory, outside
/// `limits.memory`) stops at the table cap, under either allocator (the
/// pooling allocator's own slots hold fewer); the host's heap grows by no
/// more than the capped table, and the plugin and a neighbour answer
/// afterwards. A table declared larger than the cap does not instantiate,
/// and says why. (The Extism runtime refuses such modules at load: the
/// `tables` row of `every_limit_holds_in_every_runtime`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_table_cannot_grow_past_the_cap() {
    let _serial = SERIAL.lock().await;
    for pooling in [false, true] {
        let mut config = runtime_config(SandboxConfig::default()).with_pooling(pooling);
        config.pool_instances = 16;
        let runtime = ComponentRuntime::new(config).expect("a component runtime");
        let allocator = runtime.allocator();
        let h = Harness {
            host: Arc::new(MemoryHost::new()),
            runtime: Arc::new(runtime),
            data_dir: tempfile::tempdir().unwrap(),
        };
        let (manifest, _) = Components.plugin(Role::Echo);
        let grower = h
            .runtime
            .load(h.request(
                manifest.clone(),
                table_grower("(table 1 funcref)"),
                "tenant-a",
            ))
            .await
            .expect("the grower loads");
        grower.start(&serde_json::json!({})).await.expect("starts");
        let case = format!("pooling {pooling}");
        assert_eq!(call(&*grower, "ping", "").await.unwrap(), "pong", "{case}");
        let (answer, grew) = heap_growth(grower.call("grow", b"", Default::default())).await;
        let answer = answer.unwrap_or_else(|e| panic!("{case}: the grower failed: {e}"));
        let size = u32::from_le_bytes(answer[..].try_into().expect("four bytes"));
        match allocator {
            // On demand, the table is the host's heap: the limiter stops
            // it at the cap exactly.
            AllocatorKind::OnDemand => assert_eq!(size, TABLE_CAP, "{case}"),
            // Pooled, the slot's table is smaller still.
            AllocatorKind::Pooling => assert!((1..=TABLE_CAP).contains(&size), "{case}: {size}"),
        }
        // A funcref is a pointer, at most 16 bytes with its bookkeeping.
        assert!(
            grew < 16 * TABLE_CAP as usize + REFUSAL_HEAP,
            "{case}: the host's heap grew by {grew} bytes"
        );
        // It grows no further on a second try, and still answers.
        let again = grower.call("grow", b"", Default::default()).await.unwrap();
        assert_eq!(
            u32::from_le_bytes(again[..].try_into().unwrap()),
            size,
            "{case}"
        );
        assert_eq!(call(&*grower, "ping", "").await.unwrap(), "pong", "{case}");

        // Declared above the cap: the instance is never made.
        let big = h
            .runtime
            .load(h.request(
                manifest.clone(),
                table_grower(&format!("(table {} funcref)", TABLE_CAP + 1)),
                "tenant-a",
            ))
            .await;
        let refused = match big {
            Err(e) => e,
            Ok(plugin) => match plugin.start(&serde_json::json!({})).await {
                Err(e) => e,
                Ok(()) => match call(&*plugin, "ping", "").await {
                    Err(e) => e,
                    Ok(answer) => panic!("{case}: a table over the cap instantiated: {answer}"),
                },
            },
        };
        let message = refused.to_string();
        assert!(
            message.contains("tenon-examples/echo") && message.contains("table"),
            "{case}: {refused:?}"
        );

        // The neighbour is served.
        let echo = h.start(&Components, Role::Echo, |_| {}).await;
        assert_eq!(
            call(&*echo, "echo", "after").await.unwrap(),
            "after",
            "{case}"
        );
    }
}

/// One test per runtime for each named function.
macro_rules! in_both_runtimes {
    ($($name:ident),* $(,)?) => {
        mod component {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&super::Components).await;
                }
            )*
        }
        mod extism {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&super::INLINE).await;
                }
            )*
        }
    };
}

in_both_runtimes!(
    huge_answers_are_refused_before_they_are_copied,
    the_manifest_sets_the_answer_limit_within_the_host_cap,
);
