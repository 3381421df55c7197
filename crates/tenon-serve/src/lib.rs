//! Tenon's HTTP accept loop.
//!
//! This crate owns how Tenon's two servers (`tenon serve`, through
//! `tenon-http`, and `tenon market serve`, through `tenon-market-server`)
//! hold connections: [`serve`] runs an axum [`Router`] over HTTP/1.1 with
//! the limits `axum::serve` does not set ([`ConnectionLimits`]):
//!
//! - a **header-read timeout**: a client must send a request's whole head
//!   within it, and an idle keep-alive connection is closed after it (a
//!   slowloris connection that trickles a header, or never sends one, is
//!   closed);
//! - a **write-stall timeout**: a response the client stops reading is cut
//!   once no byte could be written for that long (a client cannot pin a
//!   response's memory by never reading it);
//! - **connection caps**, in total and per client address: a connection
//!   over a cap is closed as soon as it is accepted, before anything is
//!   read;
//! - a **bounded graceful shutdown**: once `shutdown` resolves, no
//!   connection is accepted, idle ones close, and requests in flight (an
//!   event stream too) get [`ConnectionLimits::shutdown_grace`] to finish
//!   before they are cut.
//!
//! Handlers see the client's address as axum's `ConnectInfo<SocketAddr>`.
//! Request-level limits (bodies, request time, authentication before a body
//! is read) stay with the routers. Nothing here knows Tenon's engine or
//! marketplace; `tenon-http` and `tenon-market-server` depend on it, and
//! share its [`client_key`] and [`RateWindows`] for their rate limits.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tower::ServiceExt as _;

mod rate;

pub use rate::RateWindows;

/// How connections are held. The defaults suit a server on the open
/// network; tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's head (request line
    /// and headers), and how long an idle keep-alive connection is kept.
    pub header_read_timeout: Duration,
    /// How long a response may wait for the client to read any of it
    /// before the connection is cut.
    pub write_stall_timeout: Duration,
    /// The most connections open at once.
    pub max_connections: usize,
    /// The most connections open at once from one client address (IPv6
    /// addresses counted per /64).
    pub max_connections_per_address: usize,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            write_stall_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_address: 64,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The key a client address is counted under: the address itself for IPv4,
/// its /64 network for IPv6 (one subscriber's usual allocation, so that
/// rotating through it does not make a client many).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then shuts down
/// within [`ConnectionLimits::shutdown_grace`]. A failed accept (a
/// connection reset before it was accepted, file descriptors short) is
/// logged and retried after a moment.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let counts = Arc::new(Counts::default());
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!("accepting a connection failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let Some(slot) = Counts::admit(&counts, peer.ip(), &limits) else {
            tracing::debug!("connection from {peer} refused: over the connection limit");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Stalling::new(stream, limits.write_stall_timeout));
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(io, service);
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            let _slot = slot;
            if let Err(error) = connection.await {
                tracing::debug!("connection from {peer} ended: {error}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!(
            "{} connection(s) still busy after {:?}: cut",
            connections.len(),
            limits.shutdown_grace
        );
    }
    connections.shutdown().await;
}

/// Open connections, in total and per client key.
#[derive(Default)]
struct Counts {
    inner: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl Counts {
    fn admit(counts: &Arc<Self>, ip: IpAddr, limits: &ConnectionLimits) -> Option<Slot> {
        let key = client_key(ip);
        let mut inner = counts.inner.lock();
        let (total, per) = &mut *inner;
        let mine = per.get(&key).copied().unwrap_or(0);
        if *total >= limits.max_connections || mine >= limits.max_connections_per_address {
            return None;
        }
        *total += 1;
        per.insert(key, mine + 1);
        Some(Slot {
            counts: counts.clone(),
            key,
        })
    }
}

/// One admitted connection; dropping it frees its place.
struct Slot {
    counts: Arc<Counts>,
    key: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.counts.inner.lock();
        let (total, per) = &mut *inner;
        *total -= 1;
        if let Some(mine) = per.get_mut(&self.key) {
            *mine -= 1;
            if *mine == 0 {
                per.remove(&self.key);
            }
        }
    }
}

/// A stream whose writes fail once none could make progress for `limit`.
struct Stalling {
    inner: TcpStream,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl Stalling {
    fn new(inner: TcpStream, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// `poll` for a write-side operation: progress resets the clock;
    /// waiting past the limit fails.
    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll(Pin::new(&mut self.inner), cx) {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let limit = self.limit;
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client read nothing for {limit:?}"),
                )))
            }
        }
    }
}

impl AsyncRead for Stalling {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stalling {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().guard(cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .guard(cx, |s, cx| s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().guard(cx, |s, cx| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().guard(cx, |s, cx| s.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys_group_ipv6_by_64_and_keep_ipv4_whole() {
        let cases: &[(&str, &str)] = &[
            ("192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"),
            ("2001:db8:1:2::1", "2001:db8:1:2::"),
            ("2001:db8:1:3::1", "2001:db8:1:3::"),
            ("::ffff:192.0.2.9", "192.0.2.9"),
        ];
        for (ip, key) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(client_key(ip), key.parse::<IpAddr>().unwrap(), "{ip}");
        }
    }
}
