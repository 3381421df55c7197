//! The event bus: patterns, bounded queues, lag reports, a publisher that never waits.

use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::json;
use tenon_hooks::{
    BusError, BusItem, Causation, DEFAULT_MAX_CAUSATION_DEPTH, EventBus, MAX_CAUSATION_DEPTH,
    Subscription,
};

fn topics(items: &[BusItem]) -> Vec<String> {
    items
        .iter()
        .map(|item| match item {
            BusItem::Event(event) => event.topic.clone(),
            BusItem::Lagged(n) => format!("lagged({n})"),
        })
        .collect()
}

fn drain(subscription: &mut Subscription) -> Vec<BusItem> {
    std::iter::from_fn(|| subscription.try_recv()).collect()
}

#[test]
fn subscribers_get_the_topics_their_patterns_match() {
    let bus = EventBus::new();
    let patterns = [
        "plugin.*",
        "**",
        "plugin.installed",
        "**.failed",
        "host.*",
        "a.*.c",
    ];
    let mut subscriptions: Vec<_> = patterns
        .iter()
        .map(|p| bus.subscribe(p).expect(p))
        .collect();
    let published = [
        ("plugin.installed", 3),
        ("plugin.activation.failed", 2),
        ("registry.sync", 1),
        ("plugin", 1),
        // `*` is one segment: `a.*.c` does not receive `a.b.x.c`.
        ("a.b.x.c", 1),
        ("a.b.c", 2),
    ];
    for (topic, receivers) in published {
        assert_eq!(
            bus.publish(topic, json!({"topic": topic})),
            Ok(receivers),
            "{topic}"
        );
    }
    let expected: [&[&str]; 6] = [
        &["plugin.installed"],
        &[
            "plugin.installed",
            "plugin.activation.failed",
            "registry.sync",
            "plugin",
            "a.b.x.c",
            "a.b.c",
        ],
        &["plugin.installed"],
        &["plugin.activation.failed"],
        &[],
        &["a.b.c"],
    ];
    for ((subscription, want), pattern) in subscriptions.iter_mut().zip(expected).zip(patterns) {
        assert_eq!(topics(&drain(subscription)), want, "{pattern}");
    }
}

#[test]
fn events_carry_source_payload_and_increasing_ids() {
    let bus = EventBus::new();
    let mut all = bus.subscribe("**").expect("valid");
    bus.publish("plugin.installed", json!({"id": "a"}))
        .expect("valid");
    bus.publish_from("acme.guard", "acme.alert", json!(1))
        .expect("valid");
    let items = drain(&mut all);
    let [BusItem::Event(first), BusItem::Event(second)] = items.as_slice() else {
        panic!("two events expected, got {items:?}");
    };
    assert_eq!(
        (first.source.as_deref(), &first.payload),
        (None, &json!({"id": "a"}))
    );
    assert_eq!(
        (second.source.as_deref(), &second.payload),
        (Some("acme.guard"), &json!(1))
    );
    assert!(first.id < second.id);
}

#[test]
fn a_full_queue_drops_the_oldest_and_reports_how_many() {
    let bus = EventBus::new();
    let mut slow = bus.subscribe_with_capacity("**", 2).expect("valid");
    for i in 1..=5 {
        assert_eq!(bus.publish(&format!("e.{i}"), json!(i)), Ok(1));
    }
    assert_eq!(topics(&drain(&mut slow)), ["lagged(3)", "e.4", "e.5"]);
    bus.publish("e.6", json!(6)).expect("valid");
    assert_eq!(
        topics(&drain(&mut slow)),
        ["e.6"],
        "the lag is reported once"
    );
}

#[test]
fn a_subscriber_that_never_reads_never_blocks_the_publisher() {
    let bus = EventBus::new();
    let mut stalled = bus.subscribe_with_capacity("load.*", 16).expect("valid");
    let mut other = bus.subscribe("other").expect("valid");
    for i in 0..100_000 {
        bus.publish("load.tick", json!(i)).expect("valid");
    }
    bus.publish("other", json!("still flowing")).expect("valid");
    assert_eq!(topics(&drain(&mut other)), ["other"]);
    let items = drain(&mut stalled);
    assert_eq!(items.len(), 17);
    assert_eq!(items[0], BusItem::Lagged(100_000 - 16));
    let BusItem::Event(last) = &items[16] else {
        panic!("event expected")
    };
    assert_eq!(last.payload, json!(99_999));
}

#[tokio::test(start_paused = true)]
async fn recv_waits_for_the_next_event() {
    let bus = EventBus::new();
    let mut subscription = bus.subscribe("plugin.*").expect("valid");
    let waiter = tokio::spawn(async move {
        let item = subscription.recv().await;
        (item, subscription)
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    bus.publish("plugin.activated", json!({})).expect("valid");
    let (item, _subscription) = waiter.await.expect("joins");
    let Some(BusItem::Event(event)) = item else {
        panic!("event expected, got {item:?}")
    };
    assert_eq!(event.topic, "plugin.activated");
}

#[tokio::test]
async fn dropping_subscriptions_and_the_bus() {
    let bus = EventBus::new();
    let first = bus.subscribe("*").expect("valid");
    let mut second = bus.subscribe("*").expect("valid");
    assert_eq!(bus.subscriber_count(), 2);
    drop(first);
    assert_eq!(bus.subscriber_count(), 1);
    assert_eq!(bus.publish("x", json!(null)), Ok(1));
    drop(bus);
    // Queued events are still delivered, then the subscription ends.
    assert!(matches!(second.recv().await, Some(BusItem::Event(_))));
    assert_eq!(second.recv().await, None);
    assert_eq!(second.try_recv(), None);
}

#[test]
fn invalid_topics_patterns_and_capacities_are_refused() {
    let bus = EventBus::new();
    assert!(matches!(
        bus.publish("plugin.*", json!(null)),
        Err(BusError::InvalidTopic { .. })
    ));
    assert!(matches!(
        bus.publish("", json!(null)),
        Err(BusError::InvalidTopic { .. })
    ));
    assert!(matches!(
        bus.subscribe("plugin..x"),
        Err(BusError::InvalidPattern { .. })
    ));
    assert_eq!(
        bus.subscribe_with_capacity("*", 0).map(drop),
        Err(BusError::ZeroCapacity)
    );
    let err = bus.publish("a b", json!(null)).expect_err("whitespace");
    assert_eq!(
        err.to_string(),
        "`a b` is not a valid event topic: it contains whitespace or control characters"
    );
}

/// Two subscribers that answer each other's events, as two hostile plugins
/// would: `acme/a` answers every `b.*` with `a.x`, `acme/b` every `a.*`
/// with `b.y`, each publishing what the event it handles caused. Without a
/// causation limit they bounce for ever; with one, the chain stops after the
/// limit, the refusal names the loop, and the bus counts it.
#[test]
fn two_subscribers_bouncing_events_stop_at_the_causation_limit() {
    // (limit, events delivered in all: the host's and one per allowed depth)
    for (limit, delivered) in [(0, 1), (1, 2), (3, 4), (DEFAULT_MAX_CAUSATION_DEPTH, 9)] {
        let bus = if limit == DEFAULT_MAX_CAUSATION_DEPTH {
            EventBus::new()
        } else {
            EventBus::with_max_depth(limit)
        };
        assert_eq!(bus.max_depth(), limit);
        let mut players = [
            ("acme/a", bus.subscribe("b.*").unwrap(), "a.x"),
            ("acme/b", bus.subscribe("a.*").unwrap(), "b.y"),
        ];
        bus.publish("b.start", json!({})).unwrap();
        let (mut handled, mut refusal) = (0, None);
        // Far more rounds than any limit: only the guard ends the game.
        'game: for _ in 0..1000 {
            let mut moved = false;
            for (id, subscription, answer) in &mut players {
                while let Some(BusItem::Event(event)) = subscription.try_recv() {
                    moved = true;
                    handled += 1;
                    assert_eq!(event.cause.depth(), handled - 1, "{limit}");
                    if let Err(error) =
                        bus.publish_caused(Some(id), answer, json!({}), event.caused())
                    {
                        refusal = Some(error);
                        break 'game;
                    }
                }
            }
            assert!(moved, "limit {limit}: the game stopped without a refusal");
        }
        assert_eq!(handled, delivered, "limit {limit}");
        let Some(BusError::CausationTooDeep {
            topic,
            cause,
            limit: named,
        }) = refusal
        else {
            panic!("limit {limit}: no causation refusal: {refusal:?}");
        };
        assert_eq!((cause.depth(), named), (limit + 1, limit));
        assert_eq!(cause.links()[0].topic, "b.start");
        assert_eq!(cause.links()[0].source, None);
        assert_eq!(topic, if limit % 2 == 0 { "a.x" } else { "b.y" });
        assert_eq!(bus.cut_chains(), 1, "limit {limit}");
        // Both queues are empty: nothing more is coming.
        for (_, subscription, _) in &mut players {
            assert_eq!(subscription.try_recv(), None);
        }
    }
}

#[test]
fn a_refused_chain_names_the_loop_and_events_outside_handling_start_afresh() {
    let bus = EventBus::with_max_depth(2);
    let cause = Causation::default()
        .then("b.start", None)
        .then("a.x", Some("acme/a"))
        .then("b.y", Some("acme/b"));
    let error = bus
        .publish_caused(Some("acme/a"), "a.x", json!({}), cause)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "`a.x` is not delivered: it would be caused by 3 events, more than the causation depth \
         limit of 2 (a loop?): b.start from the host → a.x from acme/a → b.y from acme/b"
    );
    // A plugin publishing on its own (not while handling an event) starts a
    // new chain, whatever it published before.
    let mut all = bus.subscribe("**").unwrap();
    assert_eq!(bus.publish_from("acme/a", "a.x", json!({})), Ok(1));
    let Some(BusItem::Event(event)) = all.try_recv() else {
        panic!("delivered")
    };
    assert_eq!(event.cause.depth(), 0);
    assert_eq!(event.caused().to_string(), "a.x from acme/a");
    assert_eq!(
        EventBus::with_max_depth(1000).max_depth(),
        MAX_CAUSATION_DEPTH
    );
}
