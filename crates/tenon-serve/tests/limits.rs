//! Hostile clients against a real server on loopback: each connection that
//! would pin a file descriptor or memory forever is closed.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tenon_serve::{ConnectionLimits, serve};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Longer than any limit a test sets: reaching it means the server kept a
/// connection it should have closed.
const HANG: Duration = Duration::from_secs(20);

const BIG: usize = 32 << 20;

fn router() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/big", get(|| async { vec![b'x'; BIG] }))
        .route("/hang", get(std::future::pending::<&'static str>))
}

/// Limits that keep every connection open unless a test shortens one.
fn patient() -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Duration::from_secs(60),
        write_stall_timeout: Duration::from_secs(60),
        max_connections: 1000,
        max_connections_per_address: 1000,
        shutdown_grace: Duration::from_secs(60),
    }
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

async fn start(limits: ConnectionLimits) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(serve(router(), listener, limits, async move {
        let _ = stopped.await;
    }));
    Server {
        addr,
        stop: Some(stop),
        done,
    }
}

/// Reads until the server closes the connection (an error such as a reset
/// counts as closed); `None` if it is still open after [`HANG`].
async fn until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    match tokio::time::timeout(HANG, stream.read_to_end(&mut got)).await {
        Ok(_) => Some(got),
        Err(_) => None,
    }
}

async fn get_ok(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = until_closed(&mut stream).await.expect("a closed response");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_silent_headers_and_idle_keep_alive_are_closed() {
    let server = start(ConnectionLimits {
        header_read_timeout: Duration::from_secs(2),
        ..patient()
    })
    .await;
    let cases: &[(&str, &[u8])] = &[
        ("sends nothing", b""),
        ("a partial request line", b"GET / HT"),
        (
            "a partial header",
            b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: aaaa",
        ),
        (
            "headers without the blank line",
            b"GET / HTTP/1.1\r\nHost: t\r\n",
        ),
    ];
    for (what, sent) in cases {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(sent).await.unwrap();
        let got = until_closed(&mut stream).await;
        assert!(got.is_some(), "{what}: the server kept the connection open");
        let got = String::from_utf8_lossy(got.as_deref().unwrap_or_default()).into_owned();
        assert!(!got.contains("200 OK"), "{what}: {got}");
    }
    // A complete request is answered, then the idle keep-alive connection
    // is closed.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let got = until_closed(&mut stream)
        .await
        .expect("the idle keep-alive connection is closed");
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_a_cap_are_closed_at_once_and_places_come_back() {
    let cases = [
        (
            "per address",
            ConnectionLimits {
                max_connections_per_address: 2,
                ..patient()
            },
        ),
        (
            "in total",
            ConnectionLimits {
                max_connections: 2,
                ..patient()
            },
        ),
    ];
    for (what, limits) in cases {
        let server = start(limits).await;
        let first = TcpStream::connect(server.addr).await.unwrap();
        let mut second = TcpStream::connect(server.addr).await.unwrap();
        // The second is accepted (and so counted) once it is served.
        second
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        second.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200", "{what}");
        let mut third = TcpStream::connect(server.addr).await.unwrap();
        let _ = third.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
        let got = until_closed(&mut third)
            .await
            .unwrap_or_else(|| panic!("{what}: the connection over the cap was kept"));
        assert!(got.is_empty(), "{what}: served over the cap");
        drop(first);
        drop(second);
        // Places come back when connections close.
        let mut answered = false;
        for _ in 0..200 {
            if get_ok(server.addr).await.starts_with("HTTP/1.1 200 OK") {
                answered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(answered, "{what}: a freed place is given again");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_the_client_never_reads_is_cut() {
    let server = start(ConnectionLimits {
        write_stall_timeout: Duration::from_millis(100),
        ..patient()
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    // Read nothing for much longer than the stall limit.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(HANG, stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the stalled connection was kept open");
    assert!(
        got.len() < BIG,
        "the whole response ({} bytes) was sent to a client that read nothing",
        got.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_connections_and_cuts_busy_ones_after_the_grace() {
    let mut server = start(ConnectionLimits {
        shutdown_grace: Duration::from_millis(200),
        ..patient()
    })
    .await;
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let mut busy = TcpStream::connect(server.addr).await.unwrap();
    busy.write_all(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        get_ok(server.addr).await.lines().next(),
        Some("HTTP/1.1 200 OK")
    );
    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(HANG, &mut server.done)
        .await
        .expect("serve returned after the grace")
        .unwrap();
    assert!(
        until_closed(&mut idle).await.is_some(),
        "idle connection closed"
    );
    assert!(
        until_closed(&mut busy).await.is_some(),
        "busy connection cut"
    );
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "nothing accepted after shutdown"
    );
}
