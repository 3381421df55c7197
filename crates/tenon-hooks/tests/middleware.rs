//! The middleware pipeline: order, short-circuit, changing requests and responses.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pretty_assertions::assert_eq;
use tenon_hooks::{Next, Pipeline, Priority, endpoint_fn, middleware_fn};

#[derive(Debug, Clone, PartialEq)]
struct Request {
    path: String,
    user: Option<String>,
    headers: Vec<String>,
}

type Response = Result<String, String>;
type Trace = Arc<Mutex<Vec<String>>>;

fn request(path: &str, user: Option<&str>) -> Request {
    Request {
        path: path.into(),
        user: user.map(Into::into),
        headers: Vec::new(),
    }
}

fn pipeline(trace: &Trace) -> Pipeline<Request, Response> {
    let trace = Arc::clone(trace);
    Pipeline::new(endpoint_fn(move |req: Request| {
        let trace = Arc::clone(&trace);
        async move {
            trace
                .lock()
                .expect("lock")
                .push(format!("core {}", req.headers.join(",")));
            Ok(format!("{} for {}", req.path, req.user.unwrap_or_default()))
        }
    }))
}

/// A layer that records entering and leaving and tags the request.
fn tagging(
    trace: &Trace,
    name: &'static str,
) -> Arc<dyn tenon_hooks::Middleware<Request, Response>> {
    let trace = Arc::clone(trace);
    middleware_fn(move |mut req: Request, next: Next<Request, Response>| {
        let trace = Arc::clone(&trace);
        async move {
            trace.lock().expect("lock").push(format!("enter {name}"));
            req.headers.push(name.to_owned());
            let res = next.run(req).await;
            trace.lock().expect("lock").push(format!("leave {name}"));
            res
        }
    })
}

#[tokio::test]
async fn layers_run_outermost_first_by_priority_then_plugin_then_order() {
    let trace = Trace::default();
    let pipeline = pipeline(&trace);
    pipeline.add("b.plugin", Priority::NORMAL, tagging(&trace, "b1"));
    pipeline.add("a.plugin", Priority::NORMAL, tagging(&trace, "a"));
    pipeline.add("z.plugin", Priority::HIGH, tagging(&trace, "z"));
    pipeline.add("b.plugin", Priority::NORMAL, tagging(&trace, "b2"));
    pipeline.add("c.plugin", Priority::LOW, tagging(&trace, "c"));

    let plugins: Vec<_> = pipeline.layers().into_iter().map(|l| l.plugin).collect();
    assert_eq!(
        plugins,
        ["z.plugin", "a.plugin", "b.plugin", "b.plugin", "c.plugin"]
    );
    assert_eq!(
        pipeline.call(request("/x", Some("ann"))).await,
        Ok("/x for ann".into())
    );
    assert_eq!(
        *trace.lock().expect("lock"),
        [
            "enter z",
            "enter a",
            "enter b1",
            "enter b2",
            "enter c",
            "core z,a,b1,b2,c",
            "leave c",
            "leave b2",
            "leave b1",
            "leave a",
            "leave z",
        ]
    );
}

#[tokio::test]
async fn a_layer_can_short_circuit_and_change_request_and_response() {
    let trace = Trace::default();
    let pipeline = pipeline(&trace);
    // Outermost: wraps whatever comes back.
    pipeline.add(
        "acme.envelope",
        Priority::HIGH,
        middleware_fn(|req: Request, next: Next<Request, Response>| async move {
            next.run(req).await.map(|body| format!("<{body}>"))
        }),
    );
    // Then: refuses anonymous requests without calling the rest.
    pipeline.add(
        "acme.auth",
        Priority::NORMAL,
        middleware_fn(|req: Request, next: Next<Request, Response>| async move {
            match req.user {
                None => Err("401 unauthenticated".to_owned()),
                Some(_) => next.run(req).await,
            }
        }),
    );
    // Innermost: rewrites the path.
    pipeline.add(
        "acme.rewrite",
        Priority::LOW,
        middleware_fn(
            |mut req: Request, next: Next<Request, Response>| async move {
                req.path = req.path.replace("/old", "/new");
                next.run(req).await
            },
        ),
    );

    assert_eq!(
        pipeline.call(request("/old/page", Some("ann"))).await,
        Ok("</new/page for ann>".into())
    );
    assert_eq!(
        pipeline.call(request("/old/page", None)).await,
        Err("401 unauthenticated".into())
    );
    assert_eq!(
        trace.lock().expect("lock").len(),
        1,
        "the core ran only for the authenticated call"
    );
}

#[tokio::test(start_paused = true)]
async fn removing_layers_affects_the_next_call_only() {
    let trace = Trace::default();
    let pipeline = pipeline(&trace);
    let slow = pipeline.add(
        "acme.slow",
        Priority::HIGH,
        middleware_fn(|req: Request, next: Next<Request, Response>| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            next.run(req).await
        }),
    );
    pipeline.add("acme.tag", Priority::NORMAL, tagging(&trace, "tag"));
    pipeline.add("acme.tag", Priority::LOW, tagging(&trace, "tag2"));

    let running = tokio::spawn({
        let pipeline = pipeline.clone();
        async move { pipeline.call(request("/a", Some("u"))).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(pipeline.remove_plugin("acme.tag"), 2);
    assert!(pipeline.remove(slow));
    assert!(!pipeline.remove(slow));
    assert_eq!(running.await.expect("joins"), Ok("/a for u".into()));
    assert_eq!(
        pipeline.call(request("/b", Some("u"))).await,
        Ok("/b for u".into())
    );
    let trace = trace.lock().expect("lock");
    assert_eq!(
        trace
            .iter()
            .filter(|t| t.starts_with("core"))
            .cloned()
            .collect::<Vec<_>>(),
        ["core tag,tag2", "core "]
    );
    assert!(pipeline.layers().is_empty());
}
