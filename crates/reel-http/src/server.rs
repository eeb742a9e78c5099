//! The HTTP server loop of `reel serve` and `reel edge`: HTTP/1.1 connections accepted under
//! a cap (`server.max_connections`, `reel edge --max-connections`; over it, new connections wait in the
//! listen queue), each with a header-read timeout
//! (`server.header_read_timeout`, which also closes connections that send
//! nothing) and request bodies cut when they send nothing for
//! `server.body_idle_timeout` while the server waits for them. On shutdown
//! it stops accepting and lets open requests finish.
//!
//! Each request carries an [`Interim`] extension that can send 1xx
//! informational responses (103 Early Hints) before the final one: hyper
//! 1.x has no API for that (it turns a 1xx response into a 500), so they
//! are written to the socket directly, and only when hyper has nothing of
//! the connection buffered (see [`Interim::send`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
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
        let shared = Arc::new(SharedConnection {
            stream,
            dirty: AtomicBool::new(false),
            started: AtomicU64::new(0),
            finished: Arc::new(AtomicU64::new(0)),
        });
        let io = SharedIo(shared.clone());
        let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
            let idx = shared.started.fetch_add(1, Ordering::AcqRel);
            let interim = Interim {
                // Pipelined behind an unfinished response: no interim.
                allowed: request.version() == hyper::Version::HTTP_11
                    && shared.finished.load(Ordering::Acquire) == idx,
                connection: shared.clone(),
            };
            let mut request = request.map(|body| IdleTimeoutBody::new(body, body_idle_timeout));
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(interim);
            let finished = shared.finished.clone();
            let response = router.clone().oneshot(request);
            async move {
                let response = response.await?;
                Ok::<_, Infallible>(response.map(|body| CountedBody {
                    inner: body,
                    finished: Some(finished),
                }))
            }
        });
        let connection = builder.serve_connection(TokioIo::new(io), service);
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

/// A connection's socket, shared by hyper (through [`SharedIo`]) and the
/// [`Interim`] handles of its requests.
struct SharedConnection {
    stream: TcpStream,
    /// hyper wrote bytes it has not flushed yet (its buffer may hold more).
    dirty: AtomicBool,
    /// Requests started on the connection.
    started: AtomicU64,
    /// Responses whose body hyper is done with.
    finished: Arc<AtomicU64>,
}

/// hyper's side of a [`SharedConnection`].
struct SharedIo(Arc<SharedConnection>);

impl AsyncRead for SharedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let stream = &self.0.stream;
        loop {
            ready!(stream.poll_read_ready(cx))?;
            match stream.try_read_buf(buf) {
                Ok(_) => return Poll::Ready(Ok(())),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl AsyncWrite for SharedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.dirty.store(true, Ordering::Release);
        let stream = &self.0.stream;
        loop {
            ready!(stream.poll_write_ready(cx))?;
            match stream.try_write(buf) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.0.dirty.store(true, Ordering::Release);
        let stream = &self.0.stream;
        loop {
            ready!(stream.poll_write_ready(cx))?;
            match stream.try_write_vectored(bufs) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // hyper flushes its inner io only once its own buffer is empty.
        self.0.dirty.store(false, Ordering::Release);
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let socket = socket2::SockRef::from(&self.0.stream);
        Poll::Ready(match socket.shutdown(std::net::Shutdown::Write) {
            Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(()),
            result => result,
        })
    }
}

/// Sends 1xx informational responses of one request before its final one
/// (a request extension of every request [`serve_http`] serves).
#[derive(Clone)]
pub struct Interim {
    /// An HTTP/1.1 request not pipelined behind an unfinished response.
    allowed: bool,
    connection: Arc<SharedConnection>,
}

impl Interim {
    /// Writes `status` (a 1xx other than 101) with `headers` to the client,
    /// if it can be done safely: an HTTP/1.1 request, no earlier response of
    /// the connection still being written, nothing buffered by hyper. Must be
    /// called before the handler returns its response. Returns whether it
    /// was sent.
    pub async fn send(&self, status: StatusCode, headers: &HeaderMap) -> io::Result<bool> {
        if !self.allowed
            || !status.is_informational()
            || status == StatusCode::SWITCHING_PROTOCOLS
            || self.connection.dirty.load(Ordering::Acquire)
        {
            return Ok(false);
        }
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Informational")
        )
        .into_bytes();
        for (name, value) in headers {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let stream = &self.connection.stream;
        let mut written = 0;
        while written < head.len() {
            stream.writable().await?;
            match stream.try_write(&head[written..]) {
                Ok(n) => written += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Err(error),
            }
        }
        Ok(true)
    }
}

/// A response body that counts itself finished on the connection when
/// hyper drops it (after its last frame, or on an abort).
struct CountedBody<B> {
    inner: B,
    finished: Option<Arc<AtomicU64>>,
}

impl<B> Drop for CountedBody<B> {
    fn drop(&mut self) {
        if let Some(finished) = self.finished.take() {
            finished.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl<B> Body for CountedBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
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
