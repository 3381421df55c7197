//! The admin page (feature `ui`): `/` and every embedded file answer with
//! their content type and the security headers; revalidation answers 304;
//! anything else under `/ui/` is 404; the page references only files that
//! are embedded and carries no inline script or style.
#![cfg(feature = "ui")]

use std::collections::BTreeSet;

use reqwest::StatusCode;
use tenon_engine::PluginEngine;
use tenon_http::HttpConfig;
use tenon_http::ui::{CONTENT_SECURITY_POLICY, asset_names};

async fn start() -> String {
    let engine = PluginEngine::builder()
        .registry("memory:")
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tenon_http::serve(
        engine,
        HttpConfig::default(),
        listener,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

fn expected_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        other => panic!("an asset with an unexpected extension: {other:?}"),
    }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} on {}", response.url()))
        .to_str()
        .unwrap()
}

fn assert_secured(response: &reqwest::Response) {
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
    assert_eq!(
        header(response, "content-security-policy"),
        CONTENT_SECURITY_POLICY
    );
    assert_eq!(header(response, "referrer-policy"), "no-referrer");
    assert_eq!(header(response, "x-frame-options"), "DENY");
    assert_eq!(
        header(response, "cross-origin-opener-policy"),
        "same-origin"
    );
    assert_eq!(
        header(response, "cross-origin-resource-policy"),
        "same-origin"
    );
    assert_eq!(header(response, "cache-control"), "no-cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_files_are_served_with_their_types_and_headers() {
    let url = start().await;
    let http = reqwest::Client::new();

    // The policy allows nothing inline and nothing from elsewhere.
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'none'",
    ] {
        assert!(
            CONTENT_SECURITY_POLICY.contains(directive),
            "{directive} missing"
        );
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));

    let index = http.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert_secured(&index);
    assert_eq!(header(&index, "content-type"), "text/html; charset=utf-8");
    let tag = header(&index, "etag").to_owned();
    let html = index.text().await.unwrap();

    // Revalidation: the same tag is not sent again.
    let again = http
        .get(format!("{url}/"))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_secured(&again);
    assert!(again.bytes().await.unwrap().is_empty());

    let names: BTreeSet<&str> = asset_names().collect();
    let mut sources = vec![html.clone()];
    for name in &names {
        let response = http.get(format!("{url}/ui/{name}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_secured(&response);
        assert_eq!(
            header(&response, "content-type"),
            expected_type(name),
            "{name}"
        );
        assert!(!header(&response, "etag").is_empty());
        sources.push(response.text().await.unwrap());
    }
    assert_eq!(
        http.get(format!("{url}/ui/index.html"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        html
    );

    // Every `ui/NAME` the page names and every module a script imports is
    // embedded; no inline script, no inline style, no event attribute.
    let mut referenced = BTreeSet::new();
    for source in &sources {
        for (marker, end) in [("\"ui/", '"'), ("from './", '\'')] {
            for piece in source.split(marker).skip(1) {
                let name = piece.split(end).next().unwrap();
                referenced.insert(name.to_owned());
            }
        }
    }
    for name in &referenced {
        assert!(
            names.contains(name.as_str()),
            "{name} is referenced but not embedded"
        );
    }
    assert!(referenced.contains("app.js") && referenced.contains("api.js"));
    for script in html.split("<script").skip(1) {
        let open = script.split('>').next().unwrap();
        assert!(open.contains("src="), "an inline script: <script{open}>");
    }
    for forbidden in [" style=\"", " onclick=", " onload=", "javascript:"] {
        assert!(!html.contains(forbidden), "the page has {forbidden}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anything_else_under_ui_is_not_found() {
    let url = start().await;
    let http = reqwest::Client::new();
    for path in [
        "/ui/",
        "/ui/missing.js",
        "/ui/APP.JS",
        "/ui/app.js.map",
        "/ui/../Cargo.toml",
        "/ui/%2e%2e/src/lib.rs",
        "/ui/sub/app.js",
        "/ui/app.js/",
        "/index.html",
    ] {
        let response = http.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "no_route", "{path}");
    }
    // The page's routes answer GET only.
    let post = http.post(format!("{url}/")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
}
