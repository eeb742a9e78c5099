//! The HTTP server loop of `reel serve` and `reel edge`: HTTP/1.1 connections accepted under
//! a cap (`server.max_connections`, `reel edge --max-connections`; over it, new connections wait in the
//! listen queue), each with a header-read timeout
//! (`server.header_read_timeout`, which also closes connections that send
//! nothing) and request bodies cut when they send nothing for
//! `server.body_idle_timeout` while the server waits for them. On shutdown
//! it stops accepting and lets open requests finish.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::Router;
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How long open requests get to finish after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The limits of the HTTP server.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// The most connections open at once.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// How long a request body may send nothing while it is read.
    pub body_idle_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown`.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: wait for a descriptor to come free
                    // instead of spinning or giving up.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let body_idle_timeout = limits.body_idle_timeout;
        let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
            let mut request = request.map(|body| IdleTimeoutBody::new(body, body_idle_timeout));
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still open {SHUTDOWN_GRACE:?} after shutdown began; closing them");
    }
}

/// A request body that fails when it sends nothing for `timeout` while it
/// is being read (the time the handler spends between reads is not counted).
struct IdleTimeoutBody<B> {
    inner: B,
    timeout: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    waiting: bool,
    failed: bool,
}

impl<B> IdleTimeoutBody<B> {
    fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: None,
            waiting: false,
            failed: false,
        }
    }
}

/// The error a stalled body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body sent nothing for {0:?} (server.body_idle_timeout); the request was cut")]
struct BodyIdle(Duration);

impl<B> Body for IdleTimeoutBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        if !this.waiting {
            let deadline = tokio::time::Instant::now() + this.timeout;
            match this.deadline.as_mut() {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => this.deadline = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            this.waiting = true;
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        match this.deadline.as_mut().map(|sleep| sleep.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => {
                this.failed = true;
                Poll::Ready(Some(Err(BodyIdle(this.timeout).into())))
            }
            _ => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
