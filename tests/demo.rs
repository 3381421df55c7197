//! The demo host runs to completion and every example plugin does its part.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_to_completion() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut story = Vec::new();
    let summary = tenon_demo::run(dir.path(), &mut story)
        .await
        .expect("the demo succeeds");
    let story = String::from_utf8(story).expect("UTF-8");
    assert!(summary.moderator_blocked, "{story}");
    assert!(summary.redacted, "{story}");
    assert!(summary.delivered_after_disable, "{story}");
    assert_eq!(summary.webhooks.len(), 2, "{story}");
    assert_eq!(summary.counts["tool.post_exec"], 1, "{story}");
    assert!(
        story.contains("blocked by tenon-examples/moderator"),
        "{story}"
    );
    assert!(story.contains("STRIPE_KEY=[REDACTED]"), "{story}");
}
