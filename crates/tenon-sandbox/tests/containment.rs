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

use suite::fixtures::{Components, INLINE};
use suite::{Fixture, Harness, Role, call, hook};
use tenon_manifest::ByteSize;
use tenon_sandbox::{HookResponse, SandboxConfig, SandboxError};

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
