//! The plugin-call threads of one Extism runtime: a fixed number of threads
//! that run Extism calls off the async runtime's workers.
//!
//! A call is a boxed closure pushed on one queue; a thread takes it, runs it
//! and sends the answer back through a oneshot channel. No thread is
//! created per call. The hand-off is cheap when calls come steadily: a
//! thread that just finished a call watches the queue for a short while
//! (`THREAD_SPIN`) before it sleeps, and the caller watches for the answer
//! for a short while (`CALLER_SPIN`) before it yields its worker, so a short
//! call is handed over and answered without putting a thread to sleep and
//! waking it. Both windows are bounded: a long call costs its caller's
//! worker at most `CALLER_SPIN`, never the call's duration.
//!
//! The threads end when the last handle (the runtime and every plugin it
//! loaded) is dropped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

/// How long a thread that finished a call watches the queue before it
/// sleeps.
const THREAD_SPIN: Duration = Duration::from_micros(50);

/// How long a caller watches for its answer before it yields its worker.
const CALLER_SPIN: Duration = Duration::from_micros(30);

type Task = Box<dyn FnOnce() + Send>;

/// A handle on the threads; clones share them.
#[derive(Clone)]
pub(super) struct CallThreads {
    handle: Arc<Handle>,
}

/// Closes the queue when the last [`CallThreads`] goes.
struct Handle {
    shared: Arc<Shared>,
    threads: usize,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Tells a sleeping thread that a task (or the close) is there.
    ready: Condvar,
    /// Tasks in the queue, readable without the lock by spinning threads.
    queued: AtomicUsize,
    /// How many threads started (at the first call), or why none could.
    started: OnceLock<Result<usize, String>>,
}

struct Queue {
    tasks: VecDeque<Task>,
    /// Threads waiting on `ready`.
    sleeping: usize,
    closed: bool,
}

impl std::fmt::Debug for CallThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallThreads")
            .field("threads", &self.handle.threads)
            .field("queued", &self.handle.shared.queued.load(Ordering::Relaxed))
            .finish()
    }
}

impl CallThreads {
    /// `threads` threads (at least one), started at the first call.
    pub(super) fn new(threads: usize) -> Self {
        Self {
            handle: Arc::new(Handle {
                shared: Arc::new(Shared {
                    queue: Mutex::new(Queue {
                        tasks: VecDeque::new(),
                        sleeping: 0,
                        closed: false,
                    }),
                    ready: Condvar::new(),
                    queued: AtomicUsize::new(0),
                    started: OnceLock::new(),
                }),
                threads: threads.max(1),
            }),
        }
    }

    /// Runs `work` on one of the threads and waits for its answer without
    /// blocking the caller's thread (beyond `CALLER_SPIN`).
    ///
    /// If the caller's future is dropped, `work` still runs to its end: what
    /// it holds (an instance slot) is released only then. `Err` when no
    /// thread can be started, or when `work` panicked.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.start_threads()?;
        let (answer, mut answered) = oneshot::channel();
        self.push(Box::new(move || {
            let _ = answer.send(work());
        }));
        let mut early = None;
        spin(CALLER_SPIN, || match answered.try_recv() {
            Ok(value) => {
                early = Some(Ok(value));
                true
            }
            Err(oneshot::error::TryRecvError::Closed) => {
                early = Some(Err(PANICKED.to_owned()));
                true
            }
            Err(oneshot::error::TryRecvError::Empty) => false,
        });
        match early {
            Some(answer) => answer,
            None => answered.await.map_err(|_| PANICKED.to_owned()),
        }
    }

    fn push(&self, task: Task) {
        let shared = &self.handle.shared;
        let mut queue = shared.queue.lock();
        queue.tasks.push_back(task);
        shared.queued.fetch_add(1, Ordering::Release);
        if queue.sleeping > 0 {
            shared.ready.notify_one();
        }
    }

    fn start_threads(&self) -> Result<(), String> {
        let shared = &self.handle.shared;
        // After the first call: one atomic load.
        let started = shared.started.get_or_init(|| {
            let mut started = 0;
            while started < self.handle.threads {
                let worker = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("tenon-extism-call-{started}"))
                    .spawn(move || work(&worker));
                match spawned {
                    Ok(_) => started += 1,
                    Err(e) if started == 0 => {
                        return Err(format!("cannot start a plugin-call thread: {e}"));
                    }
                    Err(e) => {
                        // Fewer threads than asked: calls still run, on those.
                        tracing::error!(error = %e, started, "cannot start every plugin-call thread");
                        break;
                    }
                }
            }
            Ok(started)
        });
        started.as_ref().map(drop).map_err(Clone::clone)
    }
}

const PANICKED: &str = "the plugin-call thread failed while running the call";

impl Drop for Handle {
    fn drop(&mut self) {
        let mut queue = self.shared.queue.lock();
        queue.closed = true;
        self.shared.ready.notify_all();
    }
}

/// One thread's life: take a task, run it, watch for the next, sleep.
fn work(shared: &Shared) {
    loop {
        let Some(task) = next(shared) else {
            return;
        };
        // A panicking call must not take the thread with it (the caller
        // sees its oneshot closed).
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task));
    }
}

/// The next task: after a short watch of the queue, asleep until one comes;
/// `None` once the queue is closed and empty.
fn next(shared: &Shared) -> Option<Task> {
    spin(THREAD_SPIN, || shared.queued.load(Ordering::Acquire) > 0);
    let mut queue = shared.queue.lock();
    loop {
        if let Some(task) = queue.tasks.pop_front() {
            shared.queued.fetch_sub(1, Ordering::Release);
            return Some(task);
        }
        if queue.closed {
            return None;
        }
        queue.sleeping += 1;
        shared.ready.wait(&mut queue);
        queue.sleeping -= 1;
    }
}

/// Checks `done` until it says so or `limit` has passed.
fn spin(limit: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    let mut checks = 0u32;
    while !done() {
        checks = checks.wrapping_add(1);
        // The clock is read once every few checks.
        if checks.is_multiple_of(16) && Instant::now() >= until {
            return;
        }
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_run_on_the_threads_and_answer() {
        let threads = CallThreads::new(2);
        let here = std::thread::current().id();
        let there = threads.run(move || std::thread::current().id()).await;
        assert_ne!(there.unwrap(), here);
        assert_eq!(threads.run(|| 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_panicking_call_is_an_error_and_the_thread_lives_on() {
        let threads = CallThreads::new(1);
        let err = threads.run(|| panic!("boom")).await.unwrap_err();
        assert!(err.contains("failed"), "{err}");
        assert_eq!(threads.run(|| 1).await.unwrap(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_calls_run_at_once_than_there_are_threads() {
        let threads = CallThreads::new(3);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let calls = (0..12).map(|_| {
            let (running, most) = (running.clone(), most.clone());
            threads.run(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        for result in futures::future::join_all(calls).await {
            result.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_threads_end_with_the_last_handle() {
        let threads = CallThreads::new(1);
        let shared = Arc::downgrade(&threads.handle.shared);
        threads.start_threads().unwrap();
        drop(threads);
        let deadline = Instant::now() + Duration::from_secs(5);
        while shared.strong_count() > 0 {
            assert!(Instant::now() < deadline, "the thread did not end");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
