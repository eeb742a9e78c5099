//! The HTTP server loop of `reel serve` and `reel edge`: HTTP/1.1 connections, or with TLS
//! HTTP/2 and HTTP/1.1 chosen by ALPN ([`crate::tls`]; the certificate is reloaded on SIGHUP),
//! accepted under
//! a cap (`server.max_connections`, `reel edge --max-connections`; over it, new connections wait in the
//! listen queue), each with a header-read timeout
//! (`server.header_read_timeout`, which also closes connections that send
//! nothing, and bounds the TLS handshake) and request bodies cut when they send nothing for
//! `server.body_idle_timeout` while the server waits for them. On shutdown
//! it stops accepting and lets open requests finish.
//!
//! Each request carries an [`Interim`] extension that can send 1xx
//! informational responses (103 Early Hints) before the final one: hyper
//! 1.x has no API for that (it turns a 1xx response into a 500), so they
//! are written to the socket directly, and only when hyper has nothing of
//! the connection buffered (see [`Interim::send`]); over TLS they are not
//! sent. HTTP/2 connections carry at most 128 streams at once and are
//! closed when the client stops answering pings.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::Router;
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::tls::ServerTls;

/// How long open requests get to finish after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Streams one HTTP/2 connection may have open at once (RFC 9113
/// SETTINGS_MAX_CONCURRENT_STREAMS); a player needs a handful.
const MAX_HTTP2_STREAMS: u32 = 128;

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

/// How a server answers on its listener.
#[derive(Clone)]
pub struct HttpServer {
    /// The connection limits.
    pub limits: HttpLimits,
    /// TLS (HTTP/2 or HTTP/1.1 by ALPN); none: plain HTTP/1.1.
    pub tls: Option<Arc<ServerTls>>,
}

/// Serves `router` on `listener` until `shutdown`. With TLS, SIGHUP
/// reloads the certificate and key for new connections.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    server: HttpServer,
    shutdown: CancellationToken,
) {
    let limits = server.limits;
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_HTTP2_STREAMS)
        // A client that stops answering pings is gone.
        .keep_alive_interval(Some(limits.header_read_timeout))
        .keep_alive_timeout(limits.header_read_timeout);
    let reloads = server.tls.clone().map(|tls| {
        let stop = shutdown.child_token();
        (
            tokio::spawn(reload_on_hangup(tls, stop.clone())),
            stop.drop_guard(),
        )
    });
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
        let context = ConnectionContext {
            router: router.clone(),
            peer,
            body_idle_timeout: limits.body_idle_timeout,
        };
        let watcher = graceful.watcher();
        let Some(tls) = &server.tls else {
            let shared = Arc::new(SharedConnection {
                stream,
                dirty: AtomicBool::new(false),
            });
            let io = SharedIo(shared.clone());
            let connection = watcher
                .watch(http1.serve_connection(TokioIo::new(io), context.service(Some(shared))));
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
                drop(permit);
            });
            continue;
        };
        let acceptor = tls.acceptor();
        let handshake_timeout = limits.header_read_timeout;
        let http1 = http1.clone();
        let http2 = http2.clone();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, %peer, "tls handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "tls handshake timed out");
                        return;
                    }
                };
            let is_http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let io = TokioIo::new(stream);
            let result = if is_http2 {
                watcher
                    .watch(http2.serve_connection(io, context.service(None)))
                    .await
            } else {
                watcher
                    .watch(http1.serve_connection(io, context.service(None)))
                    .await
            };
            if let Err(error) = result {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if let Some((reloader, stop)) = reloads {
        drop(stop);
        let _ = reloader.await;
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still open {SHUTDOWN_GRACE:?} after shutdown began; closing them");
    }
}

/// What every request of one connection is served with.
struct ConnectionContext {
    router: Router,
    peer: SocketAddr,
    body_idle_timeout: Duration,
}

impl ConnectionContext {
    /// The connection's hyper service. `shared`: the plain-HTTP socket that
    /// [`Interim`] writes 1xx responses to (none over TLS, where they are
    /// not sent).
    fn service(
        self,
        shared: Option<Arc<SharedConnection>>,
    ) -> impl hyper::service::Service<
        hyper::Request<hyper::body::Incoming>,
        Response = axum::response::Response<CountedBody<axum::body::Body>>,
        Error = Infallible,
        Future: Send + 'static,
    > + Send
           + 'static {
        // Requests started on the connection, and responses whose body
        // hyper is done with.
        let started = Arc::new(AtomicU64::new(0));
        let finished = Arc::new(AtomicU64::new(0));
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let idx = started.fetch_add(1, Ordering::AcqRel);
            let connection = shared.clone();
            let finished = finished.clone();
            let interim = Interim {
                // Pipelined behind an unfinished response: no interim.
                allowed: request.version() == hyper::Version::HTTP_11
                    && finished.load(Ordering::Acquire) == idx,
                connection,
            };
            let mut request =
                request.map(|body| IdleTimeoutBody::new(body, self.body_idle_timeout));
            add_host_from_authority(&mut request);
            request.extensions_mut().insert(ConnectInfo(self.peer));
            request.extensions_mut().insert(interim);
            let response = self.router.clone().oneshot(request);
            async move {
                let response = response.await?;
                Ok::<_, Infallible>(response.map(|body| CountedBody {
                    inner: body,
                    finished: Some(finished),
                }))
            }
        })
    }
}

/// Gives an HTTP/2 request (which names its host in `:authority`, RFC
/// 9113 8.3.1, and usually sends no `Host`) the `Host` header that HTTP/1.1
/// requests carry, so handlers read the host one way whatever the version.
fn add_host_from_authority<B>(request: &mut hyper::Request<B>) {
    if request.headers().contains_key(header::HOST) {
        return;
    }
    let host = request
        .uri()
        .authority()
        .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok());
    if let Some(host) = host {
        request.headers_mut().insert(header::HOST, host);
    }
}

/// Reloads `tls` from its files on every SIGHUP until `stop`; a failed
/// reload keeps the current certificate.
async fn reload_on_hangup(tls: Arc<ServerTls>, stop: CancellationToken) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; the tls certificate will not be reloaded");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            received = hangups.recv() => if received.is_none() { return },
        }
        let reloading = tls.clone();
        match tokio::task::spawn_blocking(move || reloading.reload()).await {
            Ok(Ok(())) => tracing::info!(
                cert = %tls.files().cert.display(),
                key = %tls.files().key.display(),
                "tls certificate reloaded"
            ),
            Ok(Err(error)) => {
                tracing::warn!(%error, "tls reload failed; keeping the current certificate")
            }
            Err(error) => {
                tracing::warn!(%error, "tls reload failed; keeping the current certificate")
            }
        }
    }
}

/// A connection's socket, shared by hyper (through [`SharedIo`]) and the
/// [`Interim`] handles of its requests.
struct SharedConnection {
    stream: TcpStream,
    /// hyper wrote bytes it has not flushed yet (its buffer may hold more).
    dirty: AtomicBool,
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
    /// The plain-HTTP socket; none over TLS, where no interim is sent.
    connection: Option<Arc<SharedConnection>>,
}

impl Interim {
    /// Writes `status` (a 1xx other than 101) with `headers` to the client,
    /// if it can be done safely: an HTTP/1.1 request, no earlier response of
    /// the connection still being written, nothing buffered by hyper. Must be
    /// called before the handler returns its response. Returns whether it
    /// was sent. Over TLS (HTTP/1.1 or HTTP/2) nothing is sent: hyper owns
    /// the encrypted stream.
    pub async fn send(&self, status: StatusCode, headers: &HeaderMap) -> io::Result<bool> {
        let Some(connection) = &self.connection else {
            return Ok(false);
        };
        if !self.allowed
            || !status.is_informational()
            || status == StatusCode::SWITCHING_PROTOCOLS
            || connection.dirty.load(Ordering::Acquire)
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
        let stream = &connection.stream;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn host_after(uri: &str, host: Option<&str>) -> Option<String> {
        let mut builder = hyper::Request::builder().uri(uri);
        if let Some(host) = host {
            builder = builder.header(header::HOST, host);
        }
        let mut request = builder.body(()).expect("request");
        add_host_from_authority(&mut request);
        request
            .headers()
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    }

    #[test]
    fn http2_authority_becomes_the_host_header() {
        assert_eq!(
            host_after("https://127.0.0.1:8443/v/x", None).as_deref(),
            Some("127.0.0.1:8443")
        );
        assert_eq!(
            host_after("https://a.example/v/x", Some("b.example")).as_deref(),
            Some("b.example")
        );
        assert_eq!(host_after("/v/x", None), None);
    }
}
