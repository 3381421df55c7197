//! [`EventBus`]: publish/subscribe by topic pattern.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tenon_types::TopicError;
pub use tenon_types::{Causation, CauseLink};
use tokio::sync::Notify;

/// The queue length of a subscription made with [`EventBus::subscribe`].
pub const DEFAULT_SUBSCRIBER_CAPACITY: usize = 1024;

/// How deep a causation chain may grow by default: an event may be caused
/// by at most this many events (see [`EventBus::with_max_depth`]).
pub const DEFAULT_MAX_CAUSATION_DEPTH: usize = 8;

/// The deepest causation chain a bus can be set to allow.
pub const MAX_CAUSATION_DEPTH: usize = 64;

/// The longest topic or pattern accepted, in bytes.
pub use tenon_types::MAX_TOPIC_LEN;
/// A subscription pattern (see [`EventBus`](EventBus#topics-and-patterns)).
pub use tenon_types::TopicPattern;

/// An event as subscribers receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its sequence number on this bus (increasing in publication order).
    pub id: u64,
    /// Its topic, such as `plugin.installed`.
    pub topic: String,
    /// Who published it: a plugin id, or `None` for the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What it says.
    pub payload: Value,
    /// When it was published.
    pub timestamp: SystemTime,
    /// The events that led to it (empty when it starts a chain). Kept in
    /// memory only: a serialized event does not carry it.
    #[serde(skip)]
    pub cause: Causation,
}

impl Event {
    /// The causation of an event published while handling this one.
    pub fn caused(&self) -> Causation {
        self.cause.then(&self.topic, self.source.as_deref())
    }
}

/// What a subscription receives.
#[derive(Debug, Clone, PartialEq)]
pub enum BusItem {
    /// An event whose topic matches the subscription's pattern.
    Event(Arc<Event>),
    /// The queue overflowed: this many events (the oldest) were dropped.
    Lagged(u64),
}

/// An invalid topic, pattern or subscription.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// The topic cannot be published.
    #[error("`{topic}` is not a valid event topic: {reason}")]
    InvalidTopic {
        /// The topic.
        topic: String,
        /// What is wrong with it.
        reason: TopicError,
    },
    /// The pattern cannot be subscribed to.
    #[error("`{pattern}` is not a valid topic pattern: {reason}")]
    InvalidPattern {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        reason: TopicError,
    },
    /// A queue of zero events was asked for.
    #[error("a subscription's queue must hold at least one event")]
    ZeroCapacity,
    /// The event would be caused by more events than the bus allows: the
    /// chain is cut here, it is not delivered.
    #[error(
        "`{topic}` is not delivered: it would be caused by {depth} events, more than the causation depth limit of {limit} (a loop?): {cause}",
        depth = cause.depth()
    )]
    CausationTooDeep {
        /// The refused event's topic.
        topic: String,
        /// The events that led to it, oldest first.
        cause: Causation,
        /// The bus's limit.
        limit: usize,
    },
}

/// Checks a topic for publication.
pub fn validate_topic(topic: &str) -> Result<(), BusError> {
    tenon_types::check_topic(topic).map_err(|reason| BusError::InvalidTopic {
        topic: topic.to_owned(),
        reason,
    })
}

struct Queue {
    events: VecDeque<Arc<Event>>,
    missed: u64,
    closed: bool,
}

struct Subscriber {
    id: u64,
    pattern: TopicPattern,
    capacity: usize,
    queue: Mutex<Queue>,
    ready: Notify,
}

impl Subscriber {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, event: Arc<Event>) {
        {
            let mut queue = self.queue();
            if queue.events.len() >= self.capacity {
                queue.events.pop_front();
                queue.missed += 1;
            }
            queue.events.push_back(event);
        }
        self.ready.notify_one();
    }

    fn close(&self) {
        self.queue().closed = true;
        self.ready.notify_one();
    }
}

struct BusInner {
    subscribers: ArcSwap<Vec<Arc<Subscriber>>>,
    writer: Mutex<()>,
    next_event: AtomicU64,
    next_subscriber: AtomicU64,
    max_depth: usize,
    cut: AtomicU64,
}

impl BusInner {
    fn update(&self, f: impl FnOnce(&mut Vec<Arc<Subscriber>>)) {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut subscribers = Vec::clone(&self.subscribers.load());
        f(&mut subscribers);
        self.subscribers.store(Arc::new(subscribers));
    }
}

impl Drop for BusInner {
    fn drop(&mut self) {
        for subscriber in self.subscribers.load().iter() {
            subscriber.close();
        }
    }
}

/// Publish/subscribe by topic pattern, with a bounded queue per subscriber
/// that never makes the publisher wait.
///
/// # Topics and patterns
///
/// A topic is a dot-separated name such as `plugin.installed`: no whitespace,
/// no `*`, no empty segment. In a pattern, the segment `*` matches exactly
/// one segment and the segment `**` one or more: `plugin.*` matches
/// `plugin.installed` but not `plugin.config.changed` (`plugin.**` matches
/// both, neither matches `plugin`), `a.*.c` never matches `a.b.x.c`,
/// `**.failed` matches every topic ending in `.failed`, and `**` alone
/// matches every topic. Matching is case-sensitive. This is the one matcher
/// of `tenon-types`, the same that checks what a plugin may publish and
/// subscribe to.
///
/// # Slow subscribers
///
/// Each subscription has its own queue (default [`DEFAULT_SUBSCRIBER_CAPACITY`]
/// events). Publishing never waits: when a queue is full its oldest event is
/// dropped, and the subscriber's next receive returns
/// [`BusItem::Lagged`]`(n)`, the number of events it missed, before the events
/// still queued.
///
/// # Causation
///
/// Every event carries its [`Causation`]: the events that led to it. One
/// the host publishes ([`publish`](Self::publish)) or a plugin publishes on
/// its own ([`publish_from`](Self::publish_from)) starts a chain; one a
/// plugin publishes while handling an event ([`publish_caused`](Self::publish_caused),
/// with [`Event::caused`]) continues it. An event that would be caused by
/// more than the bus's limit ([`DEFAULT_MAX_CAUSATION_DEPTH`] by default) is
/// refused with [`BusError::CausationTooDeep`], naming the chain, and
/// counted ([`EventBus::cut_chains`]): two subscribers answering each other's
/// events stop after at most that many rounds.
///
/// Cheap to clone (clones share subscribers); when the last clone is dropped,
/// subscriptions drain their queues and then end.
///
/// ```
/// use tenon_hooks::{BusItem, EventBus};
/// use serde_json::json;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let bus = EventBus::new();
/// let mut lifecycle = bus.subscribe("plugin.*")?;
/// assert_eq!(bus.publish("plugin.installed", json!({"id": "acme.guard"}))?, 1);
/// assert_eq!(bus.publish("host.started", json!({}))?, 0);
/// let Some(BusItem::Event(event)) = lifecycle.recv().await else { unreachable!() };
/// assert_eq!(event.topic, "plugin.installed");
/// # Ok::<(), tenon_hooks::BusError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBus")
            .field("subscribers", &self.subscriber_count())
            .finish()
    }
}

impl EventBus {
    /// A bus with no subscribers and the default causation depth limit.
    pub fn new() -> Self {
        Self::with_max_depth(DEFAULT_MAX_CAUSATION_DEPTH)
    }

    /// A bus whose events may be caused by at most `max_depth` events
    /// (at most [`MAX_CAUSATION_DEPTH`]; 0 refuses every caused event).
    pub fn with_max_depth(max_depth: usize) -> Self {
        Self {
            inner: Arc::new(BusInner {
                subscribers: ArcSwap::from_pointee(Vec::new()),
                writer: Mutex::new(()),
                next_event: AtomicU64::new(1),
                next_subscriber: AtomicU64::new(1),
                max_depth: max_depth.min(MAX_CAUSATION_DEPTH),
                cut: AtomicU64::new(0),
            }),
        }
    }

    /// How many events an event may be caused by.
    pub fn max_depth(&self) -> usize {
        self.inner.max_depth
    }

    /// How many events were refused for a causation chain deeper than the
    /// limit since the bus was made.
    pub fn cut_chains(&self) -> u64 {
        self.inner.cut.load(Ordering::Relaxed)
    }

    /// Subscribes to topics matching `pattern`, with a queue of
    /// [`DEFAULT_SUBSCRIBER_CAPACITY`] events.
    pub fn subscribe(&self, pattern: &str) -> Result<Subscription, BusError> {
        self.subscribe_with_capacity(pattern, DEFAULT_SUBSCRIBER_CAPACITY)
    }

    /// Subscribes with a queue of `capacity` events.
    pub fn subscribe_with_capacity(
        &self,
        pattern: &str,
        capacity: usize,
    ) -> Result<Subscription, BusError> {
        if capacity == 0 {
            return Err(BusError::ZeroCapacity);
        }
        let subscriber = Arc::new(Subscriber {
            id: self.inner.next_subscriber.fetch_add(1, Ordering::Relaxed),
            pattern: TopicPattern::new(pattern).map_err(|reason| BusError::InvalidPattern {
                pattern: pattern.to_owned(),
                reason,
            })?,
            capacity,
            queue: Mutex::new(Queue {
                events: VecDeque::new(),
                missed: 0,
                closed: false,
            }),
            ready: Notify::new(),
        });
        self.inner.update(|subs| subs.push(Arc::clone(&subscriber)));
        Ok(Subscription {
            subscriber,
            bus: Arc::downgrade(&self.inner),
        })
    }

    /// Publishes an event from the host; returns how many subscriptions it
    /// was queued for. Never waits.
    pub fn publish(&self, topic: &str, payload: Value) -> Result<usize, BusError> {
        self.publish_caused(None, topic, payload, Causation::default())
    }

    /// Publishes an event on behalf of `source` (a plugin id), starting a
    /// causation chain.
    pub fn publish_from(
        &self,
        source: &str,
        topic: &str,
        payload: Value,
    ) -> Result<usize, BusError> {
        self.publish_caused(Some(source), topic, payload, Causation::default())
    }

    /// Publishes an event on behalf of `source` (a plugin id, or `None` for
    /// the host) that `cause` led to (see [`Event::caused`]). Refused, and
    /// counted, when `cause` is deeper than the bus's limit.
    pub fn publish_caused(
        &self,
        source: Option<&str>,
        topic: &str,
        payload: Value,
        cause: Causation,
    ) -> Result<usize, BusError> {
        validate_topic(topic)?;
        if cause.depth() > self.inner.max_depth {
            self.inner.cut.fetch_add(1, Ordering::Relaxed);
            return Err(BusError::CausationTooDeep {
                topic: topic.to_owned(),
                cause,
                limit: self.inner.max_depth,
            });
        }
        let id = self.inner.next_event.fetch_add(1, Ordering::Relaxed);
        let mut payload = Some(payload);
        let mut cause = Some(cause);
        let mut event: Option<Arc<Event>> = None;
        let mut delivered = 0;
        for subscriber in self.inner.subscribers.load().iter() {
            if !subscriber.pattern.matches(topic) {
                continue;
            }
            let event = event.get_or_insert_with(|| {
                Arc::new(Event {
                    id,
                    topic: topic.to_owned(),
                    source: source.map(str::to_owned),
                    payload: payload.take().unwrap_or(Value::Null),
                    timestamp: SystemTime::now(),
                    cause: cause.take().unwrap_or_default(),
                })
            });
            subscriber.push(Arc::clone(event));
            delivered += 1;
        }
        Ok(delivered)
    }

    /// How many subscriptions are live.
    pub fn subscriber_count(&self) -> usize {
        self.inner.subscribers.load().len()
    }
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    subscriber: Arc<Subscriber>,
    bus: Weak<BusInner>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("pattern", &self.subscriber.pattern)
            .field("capacity", &self.subscriber.capacity)
            .finish()
    }
}

impl Subscription {
    /// The next item: a missed-events report first if events were dropped,
    /// then events in publication order. `None` once the bus is gone and the
    /// queue is empty.
    pub async fn recv(&mut self) -> Option<BusItem> {
        loop {
            if let Some(item) = self.take() {
                return item;
            }
            // A push between `take` and here leaves a permit: no lost wake-up.
            self.subscriber.ready.notified().await;
        }
    }

    /// The next item if one is queued now (`None` if not, or if the bus is gone).
    pub fn try_recv(&mut self) -> Option<BusItem> {
        self.take().flatten()
    }

    /// `Some(item)` when there is an answer (an item, or `None` for closed);
    /// `None` when the caller should wait.
    fn take(&self) -> Option<Option<BusItem>> {
        let mut queue = self.subscriber.queue();
        if queue.missed > 0 {
            return Some(Some(BusItem::Lagged(std::mem::take(&mut queue.missed))));
        }
        if let Some(event) = queue.events.pop_front() {
            return Some(Some(BusItem::Event(event)));
        }
        queue.closed.then_some(None)
    }

    /// The pattern subscribed to.
    pub fn pattern(&self) -> &TopicPattern {
        &self.subscriber.pattern
    }

    /// How many events the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.subscriber.capacity
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            let id = self.subscriber.id;
            bus.update(|subs| subs.retain(|s| s.id != id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names() {
        for topic in ["", "a..b", ".a", "a.", "a b", "plugin.*"] {
            assert!(
                matches!(validate_topic(topic), Err(BusError::InvalidTopic { .. })),
                "{topic:?}"
            );
        }
        let bus = EventBus::new();
        for pattern in ["", "a..*", "* ", "plug*", "a*b*c"] {
            assert!(
                matches!(bus.subscribe(pattern), Err(BusError::InvalidPattern { .. })),
                "{pattern:?}"
            );
        }
        assert!(validate_topic(&"a".repeat(MAX_TOPIC_LEN + 1)).is_err());
    }
}
