//! Batched event appends off the hot path: hook receipts, lifecycle
//! events and plugins' log lines are queued without waiting and written in
//! batches by a background task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::event::NewEvent;
use crate::log::NewLog;
use crate::store::RegistryStore;

/// How an [`EventWriter`] batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventWriterConfig {
    /// The most events written in one transaction.
    pub max_batch: usize,
    /// The longest an event waits for its batch to fill.
    pub max_delay: Duration,
    /// The most events queued; beyond it [`EventWriter::record`] drops the
    /// event (and counts it) rather than make the caller wait.
    pub capacity: usize,
    /// Attempts after a failed batch before its events are given up.
    pub retries: u32,
    /// The wait before the first retry (doubled each time).
    pub retry_backoff: Duration,
    /// The most log lines kept per plugin; older lines are dropped, the
    /// oldest first, and counted.
    pub logs_per_plugin: u64,
}

impl Default for EventWriterConfig {
    fn default() -> Self {
        Self {
            max_batch: 100,
            max_delay: Duration::from_millis(100),
            capacity: 10_000,
            retries: 3,
            retry_backoff: Duration::from_millis(100),
            logs_per_plugin: 1000,
        }
    }
}

/// What an [`EventWriter`] has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventWriterStats {
    /// Events written.
    pub written: u64,
    /// Events dropped because the queue was full or the writer stopped.
    pub dropped: u64,
    /// Events given up after the store kept failing.
    pub failed: u64,
    /// Batches written (transactions).
    pub batches: u64,
}

/// What an [`EventWriter`] has done with log lines so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogWriterStats {
    /// Lines kept.
    pub written: u64,
    /// Lines dropped because the queue was full or the writer stopped.
    pub dropped: u64,
    /// Lines given up after the store kept failing.
    pub failed: u64,
    /// Older lines dropped to keep each plugin within
    /// [`EventWriterConfig::logs_per_plugin`].
    pub pruned: u64,
}

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    batches: AtomicU64,
    logs_written: AtomicU64,
    logs_dropped: AtomicU64,
    logs_failed: AtomicU64,
    logs_pruned: AtomicU64,
}

enum Message {
    Event(NewEvent),
    Log(NewLog),
    Flush(oneshot::Sender<()>),
}

/// Queues events for a store and appends them in batches from a background
/// task, so that recording a hook receipt never waits for the database.
///
/// Clones share the queue. The task stops once every clone is dropped,
/// after writing what was queued.
#[derive(Debug, Clone)]
pub struct EventWriter {
    sender: mpsc::Sender<Message>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Event(event) => f.debug_tuple("Event").field(&event.kind).finish(),
            Self::Log(log) => f.debug_tuple("Log").field(&log.plugin).finish(),
            Self::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl EventWriter {
    /// Starts the background task on the current tokio runtime.
    pub fn spawn(store: Arc<dyn RegistryStore>, config: EventWriterConfig) -> Self {
        let (sender, receiver) = mpsc::channel(config.capacity.max(1));
        let counters = Arc::new(Counters::default());
        tokio::spawn(run(store, config, receiver, Arc::clone(&counters)));
        Self { sender, counters }
    }

    /// Queues an event without waiting. Returns `false` (and counts it as
    /// dropped) if the queue is full.
    pub fn record(&self, event: NewEvent) -> bool {
        match self.sender.try_send(Message::Event(event)) {
            Ok(()) => true,
            Err(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Queues a plugin's log line without waiting. Returns `false` (and
    /// counts it as dropped) if the queue is full.
    pub fn record_log(&self, log: NewLog) -> bool {
        match self.sender.try_send(Message::Log(log)) {
            Ok(()) => true,
            Err(_) => {
                self.counters.logs_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Waits until every event and log line queued before this call was
    /// written (or given up).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> EventWriterStats {
        EventWriterStats {
            written: self.counters.written.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            batches: self.counters.batches.load(Ordering::Relaxed),
        }
    }

    /// What the writer has done with log lines so far.
    pub fn log_stats(&self) -> LogWriterStats {
        LogWriterStats {
            written: self.counters.logs_written.load(Ordering::Relaxed),
            dropped: self.counters.logs_dropped.load(Ordering::Relaxed),
            failed: self.counters.logs_failed.load(Ordering::Relaxed),
            pruned: self.counters.logs_pruned.load(Ordering::Relaxed),
        }
    }
}

async fn run(
    store: Arc<dyn RegistryStore>,
    config: EventWriterConfig,
    mut receiver: mpsc::Receiver<Message>,
    counters: Arc<Counters>,
) {
    let max_batch = config.max_batch.max(1);
    let mut batch = Batch::default();
    let mut open = true;
    while open {
        // Wait for the first message of a batch, then fill it until it is
        // full, its delay is up, or someone waits for it.
        match receiver.recv().await {
            Some(message) => batch.take(message),
            None => open = false,
        }
        let deadline = Instant::now() + config.max_delay;
        while open && batch.waiters.is_empty() && !batch.is_empty() && batch.len() < max_batch {
            tokio::select! {
                message = receiver.recv() => match message {
                    Some(message) => batch.take(message),
                    None => open = false,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        if !batch.events.is_empty() {
            let events = &batch.events;
            match retrying(&config, "events", events.len(), || {
                store.append_events(events)
            })
            .await
            {
                Some(()) => {
                    counters
                        .written
                        .fetch_add(events.len() as u64, Ordering::Relaxed);
                    counters.batches.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    counters
                        .failed
                        .fetch_add(events.len() as u64, Ordering::Relaxed);
                }
            }
            batch.events.clear();
        }
        if !batch.logs.is_empty() {
            let logs = &batch.logs;
            let keep = config.logs_per_plugin;
            match retrying(&config, "log lines", logs.len(), || {
                store.append_logs(logs, keep)
            })
            .await
            {
                Some(pruned) => {
                    counters
                        .logs_written
                        .fetch_add(logs.len() as u64, Ordering::Relaxed);
                    counters.logs_pruned.fetch_add(pruned, Ordering::Relaxed);
                }
                None => {
                    counters
                        .logs_failed
                        .fetch_add(logs.len() as u64, Ordering::Relaxed);
                }
            }
            batch.logs.clear();
        }
        for done in batch.waiters.drain(..) {
            let _ = done.send(());
        }
    }
}

/// What the writer task has gathered for its next write.
#[derive(Default)]
struct Batch {
    events: Vec<NewEvent>,
    logs: Vec<NewLog>,
    waiters: Vec<oneshot::Sender<()>>,
}

impl Batch {
    fn take(&mut self, message: Message) {
        match message {
            Message::Event(event) => self.events.push(event),
            Message::Log(log) => self.logs.push(log),
            Message::Flush(done) => self.waiters.push(done),
        }
    }

    fn len(&self) -> usize {
        self.events.len() + self.logs.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs `append` until it succeeds or the retries are used up (then gives
/// up, saying so); its result, if it succeeded.
async fn retrying<T, F>(
    config: &EventWriterConfig,
    what: &str,
    count: usize,
    mut append: impl FnMut() -> F,
) -> Option<T>
where
    F: Future<Output = crate::error::Result<T>>,
{
    let mut backoff = config.retry_backoff;
    let mut attempt = 0;
    loop {
        match append().await {
            Ok(value) => return Some(value),
            Err(error) if attempt < config.retries => {
                tracing::warn!(%error, what, count, attempt, "appending failed; retrying");
                attempt += 1;
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(error) => {
                tracing::error!(%error, what, count, "appending failed; giving them up");
                return None;
            }
        }
    }
}

#[cfg(all(test, feature = "memory"))]
mod tests {
    use super::*;
    use crate::event::{EventKind, EventQuery, EventStatus};
    use crate::{MemoryStore, RegistryOptions, TenantId};

    fn event(n: u64) -> NewEvent {
        NewEvent::new(TenantId::default(), EventKind::Hook, EventStatus::Ok)
            .with_detail(serde_json::json!({ "n": n }))
    }

    async fn stored(store: &MemoryStore) -> usize {
        let query = EventQuery::default().with_limit(1000);
        store
            .list_events(&TenantId::default(), &query)
            .await
            .unwrap()
            .events
            .len()
    }

    /// Lets the writer task run until it waits on its queue or a timer.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn batches_by_size_and_by_delay() {
        let store = Arc::new(MemoryStore::new(&RegistryOptions::default()));
        let config = EventWriterConfig {
            max_batch: 10,
            max_delay: Duration::from_millis(100),
            ..EventWriterConfig::default()
        };
        let writer = EventWriter::spawn(store.clone(), config);
        for n in 0..3 {
            assert!(writer.record(event(n)));
        }
        settle().await;
        tokio::time::advance(Duration::from_millis(50)).await;
        settle().await;
        assert_eq!(
            stored(&store).await,
            0,
            "a partial batch waits for its delay"
        );
        tokio::time::advance(Duration::from_millis(60)).await;
        settle().await;
        assert_eq!(stored(&store).await, 3, "then it is written");
        assert_eq!(writer.stats().batches, 1);

        for n in 0..25 {
            assert!(writer.record(event(n)));
        }
        settle().await;
        assert_eq!(stored(&store).await, 23, "full batches go at once");
        tokio::time::advance(Duration::from_millis(100)).await;
        settle().await;
        assert_eq!(stored(&store).await, 28);
        assert_eq!(
            writer.stats(),
            EventWriterStats {
                written: 28,
                dropped: 0,
                failed: 0,
                batches: 4,
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_drops_and_a_failing_store_gives_up() {
        let store = Arc::new(MemoryStore::new(&RegistryOptions::default()));
        let config = EventWriterConfig {
            capacity: 2,
            retries: 2,
            ..EventWriterConfig::default()
        };
        let writer = EventWriter::spawn(store.clone(), config);
        // The task has not run yet: the queue holds two.
        let accepted: Vec<bool> = (0..5).map(|n| writer.record(event(n))).collect();
        assert_eq!(accepted, [true, true, false, false, false]);
        writer.flush().await;
        assert_eq!(stored(&store).await, 2);
        // A batch the store refuses is retried, then given up and counted.
        let bad = NewEvent::new(
            TenantId::default(),
            EventKind::Custom("NOT VALID".into()),
            EventStatus::Ok,
        );
        assert!(writer.record(bad));
        writer.flush().await;
        let stats = writer.stats();
        assert_eq!((stats.written, stats.dropped, stats.failed), (2, 3, 1));
    }
}
