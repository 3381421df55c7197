//! The notifier under tenon-pdk's mock host, posting to its fake webhook.

use tenon_pdk::serde_json::json;
use tenon_pdk::testing::{TestHost, TestHostBuilder};

fn builder() -> TestHostBuilder {
    TestHost::builder(env!("CARGO_MANIFEST_DIR"))
}

/// A notifier whose webhook is the test host's fake HTTP server.
fn host(token: Option<&str>) -> TestHost {
    // The fake server's address is known once the host runs: start once to
    // learn it, then configure.
    let mut host = builder()
        .config(json!({"webhook_url": "http://127.0.0.1/unused"}))
        .start()
        .expect("the notifier builds and activates");
    let mut config = json!({"webhook_url": format!("{}/hook", host.http_url())});
    if let Some(token) = token {
        config["token"] = json!(token);
    }
    host.configure(config).unwrap();
    host
}

#[test]
fn posts_a_summary_of_each_delivered_response() {
    let host = host(Some("s3cret"));
    let outcome = host
        .hook(
            "response.post_deliver",
            json!({"content": "Your report is ready.", "workItemId": "wi-7", "pluginType": "slack"}),
        )
        .unwrap();
    assert!(!outcome.is_blocked());
    let requests = host.http_requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/hook")
    );
    assert_eq!(request.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let summary = request.json();
    assert_eq!(summary["hook"], "response.post_deliver");
    assert_eq!(summary["work_item_id"], "wi-7");
    assert_eq!(summary["tenant"], "test");
    assert_eq!(
        summary["text"],
        "response delivered via slack: Your report is ready."
    );
    let events = host.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].topic, "notifier.sent");
    assert_eq!(events[0].payload["status"], 200);
}

#[test]
fn posts_new_work_items_and_sends_no_token_when_none_is_set() {
    let host = host(None);
    host.hook(
        "work_item.post_create",
        json!({"workItem": {"id": "wi-1", "title": "Deploy"}, "pluginType": "github"}),
    )
    .unwrap();
    let request = &host.http_requests()[0];
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.json()["text"], "work item created: Deploy");
}

#[test]
fn a_failing_webhook_is_an_error() {
    let mut host = builder()
        .config(json!({"webhook_url": "http://127.0.0.1/unused"}))
        .http_response("/down", 503, "maintenance")
        .start()
        .unwrap();
    host.configure(json!({"webhook_url": format!("{}/down", host.http_url())}))
        .unwrap();
    let error = host
        .hook("response.post_deliver", json!({"content": "x"}))
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("delivery-failed") && text.contains("503"),
        "{text}"
    );
    assert!(host.events().is_empty());
}

#[test]
fn hosts_outside_the_allowlist_are_refused() {
    let host = builder()
        .config(json!({"webhook_url": "https://evil.example.net/collect"}))
        .start()
        .unwrap();
    let error = host
        .hook("response.post_deliver", json!({"content": "x"}))
        .unwrap_err();
    assert!(error.to_string().contains("permission-denied"), "{error}");
    let denials = host.denials();
    assert_eq!(denials.len(), 1);
    assert_eq!(denials[0].denial.permission, "network");
}

#[test]
fn the_webhook_url_must_be_http() {
    let error = builder()
        .config(json!({"webhook_url": "ftp://files.example.com/"}))
        .start()
        .unwrap_err();
    assert!(error.to_string().contains("invalid-config"), "{error}");
}
