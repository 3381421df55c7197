//! What each wasmtime `Store` holds: the WASI context with only what was
//! granted, the memory limiter, captured output and the call's scope.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::boundary::{Boundary, CallScope, OutputStream as Stream};
use crate::stats::PluginStats;

/// A directory granted by `permissions.filesystem`.
#[derive(Debug, Clone)]
pub(crate) struct Preopen {
    /// The opened directory; `host` names it while this lives.
    pub(crate) dir: crate::boundary::GrantedDirectory,
    pub(crate) host: PathBuf,
    pub(crate) guest: String,
    pub(crate) perms: FsPerms,
}

/// The data of one instance's store.
pub(crate) struct StoreData {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) boundary: Arc<Boundary>,
    /// The scope of the call in progress.
    pub(crate) call: CallScope,
    /// The call's deadline on the clock the epoch callback reads.
    pub(crate) deadline: Instant,
    /// Set by the epoch callback when it stopped the call.
    pub(crate) timed_out: bool,
    pub(crate) output: Arc<Capture>,
    /// A panic message the guest logged during the call (a log line with
    /// the field `panic = "true"`, as tenon-pdk's panic hook writes).
    pub(crate) panic: Option<String>,
}

impl StoreData {
    pub(crate) fn new(
        boundary: Arc<Boundary>,
        memory_limit: u64,
        preopens: &[Preopen],
    ) -> Result<Self, String> {
        let output = Arc::new(Capture::new(boundary.config().max_output_per_call));
        let mut wasi = WasiCtxBuilder::new();
        // No environment, no arguments, empty stdin, no sockets, no name
        // lookup: only clocks, random and what is preopened below.
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .stdout(CaptureStream {
                capture: output.clone(),
                stream: Stream::Stdout,
            })
            .stderr(CaptureStream {
                capture: output.clone(),
                stream: Stream::Stderr,
            });
        for p in preopens {
            wasi.preopened_dir(&p.host, &p.guest, p.perms)
                .map_err(|e| {
                    format!(
                        "cannot open the granted directory {}: {e}",
                        p.dir.relative.display()
                    )
                })?;
        }
        let stats = boundary.stats().clone();
        stats.instance_created();
        Ok(Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: usize::try_from(memory_limit).unwrap_or(usize::MAX),
                used: 0,
                exceeded: false,
                stats,
            },
            boundary,
            call: CallScope::new(std::time::Duration::ZERO),
            deadline: Instant::now(),
            timed_out: false,
            output,
            panic: None,
        })
    }
}

impl Drop for StoreData {
    fn drop(&mut self) {
        self.limiter.stats.instance_dropped();
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps the linear memory of one instance (all its memories together) at
/// `limits.memory`. Growth past the cap fails inside the guest (as
/// `memory.grow` returning -1) and marks the store, so that the trap that
/// usually follows is reported as [`crate::SandboxError::OutOfMemory`].
pub(crate) struct MemoryLimiter {
    limit: usize,
    used: usize,
    pub(crate) exceeded: bool,
    stats: Arc<PluginStats>,
}

impl MemoryLimiter {
    pub(crate) fn limit(&self) -> u64 {
        self.limit as u64
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.stats.memory_released(self.used as u64);
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let delta = desired.saturating_sub(current);
        let after = self.used.saturating_add(delta);
        if after > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        self.used = after;
        self.stats.memory_grew(delta as u64, after as u64);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= crate::limits::MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}

/// Captured stdout and stderr of one instance, bounded per call.
pub(crate) struct Capture {
    cap: usize,
    inner: Mutex<CaptureState>,
}

#[derive(Default)]
struct CaptureState {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    kept: usize,
    dropped: u64,
}

/// What one call wrote.
#[derive(Default)]
pub(crate) struct CallOutput {
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    pub(crate) dropped: u64,
}

impl Capture {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            inner: Mutex::new(CaptureState::default()),
        }
    }

    fn write(&self, stream: Stream, bytes: &[u8]) {
        let mut state = self.inner.lock();
        let room = self.cap.saturating_sub(state.kept);
        let kept = room.min(bytes.len());
        state.kept += kept;
        state.dropped += (bytes.len() - kept) as u64;
        match stream {
            Stream::Stdout => state.stdout.extend_from_slice(&bytes[..kept]),
            Stream::Stderr => state.stderr.extend_from_slice(&bytes[..kept]),
        }
    }

    /// Takes what the call wrote, leaving the capture empty for the next
    /// one. Cheap when nothing was written.
    pub(crate) fn take(&self) -> Option<CallOutput> {
        let mut state = self.inner.lock();
        if state.kept == 0 && state.dropped == 0 {
            return None;
        }
        let out = CallOutput {
            stdout: std::mem::take(&mut state.stdout),
            stderr: std::mem::take(&mut state.stderr),
            dropped: state.dropped,
        };
        state.kept = 0;
        state.dropped = 0;
        Some(out)
    }
}

/// The guest's view of one captured stream: writes always succeed; what
/// exceeds the per-call cap is counted and discarded.
struct CaptureStream {
    capture: Arc<Capture>,
    stream: Stream,
}

impl IsTerminal for CaptureStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CaptureStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(CaptureWriter {
            capture: self.capture.clone(),
            stream: self.stream,
        })
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(CaptureWriter {
            capture: self.capture.clone(),
            stream: self.stream,
        })
    }
}

struct CaptureWriter {
    capture: Arc<Capture>,
    stream: Stream,
}

/// What a guest may write per `write` call (it asks with `check-write`).
const WRITE_BUDGET: usize = 64 * 1024;

impl OutputStream for CaptureWriter {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.capture.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_BUDGET)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CaptureWriter {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CaptureWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.capture.write(self.stream, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Sends what a call wrote to the plugin's log, line by line, and returns
/// the guest's panic message when stderr holds one.
pub(crate) fn flush_output(
    boundary: &Boundary,
    call: &CallScope,
    out: CallOutput,
) -> Option<String> {
    for (stream, bytes) in [(Stream::Stdout, &out.stdout), (Stream::Stderr, &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            boundary.log_output(call, stream, line);
        }
    }
    if out.dropped > 0 {
        boundary.log(
            call,
            crate::host::LogLevel::Warn,
            &format!(
                "{} bytes of output dropped: the limit is {} bytes per call",
                out.dropped,
                boundary.config().max_output_per_call
            ),
            &[],
        );
    }
    panic_message(&String::from_utf8_lossy(&out.stderr))
}

/// The message of the last Rust panic in `stderr`:
/// `thread '…' panicked at src/lib.rs:3:5:\nthe message`.
pub(crate) fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.rfind("panicked at ")?;
    let rest = &stderr[start + "panicked at ".len()..];
    let (location, message) = match rest.split_once(":\n") {
        Some((location, message)) => (location, message),
        None => (rest.lines().next().unwrap_or(rest), ""),
    };
    let message: Vec<&str> = message
        .lines()
        .take_while(|l| !l.starts_with("note: ") && !l.trim().is_empty())
        .collect();
    let message = message.join("\n");
    Some(if message.is_empty() {
        format!("panicked at {location}")
    } else {
        format!("{message} (panicked at {location})")
    })
}

#[cfg(test)]
mod tests {
    use super::panic_message;

    #[test]
    fn panic_messages() {
        let stderr = "some line\nthread '<unnamed>' panicked at src/lib.rs:12:9:\nthe plugin gave up\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("the plugin gave up (panicked at src/lib.rs:12:9)")
        );
        assert_eq!(panic_message("nothing to see"), None);
    }
}
