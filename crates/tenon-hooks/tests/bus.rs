//! The event bus: patterns, bounded queues, lag reports, a publisher that never waits.

use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::json;
use tenon_hooks::{BusError, BusItem, EventBus, Subscription};

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
