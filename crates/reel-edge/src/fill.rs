//! Fills: one upstream fetch per cache key, streamed to every waiter while
//! it is still arriving, then stored.
//!
//! A fill is registered in the store's in-flight map before it starts, so
//! every request for the same key that arrives meanwhile joins it instead
//! of fetching. Its task runs detached from any client (owned by the edge's
//! task tracker), so a waiter hanging up does not cancel it. Waiters read
//! the chunk list by index and sleep on a `watch` channel between chunks.
//!
//! Bodies of unknown length are buffered to the end (up to the object size
//! limit) before waiters are told, because a fill must know its size to
//! reserve cache bytes; larger ones become pass-through.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::{watch, OwnedSemaphorePermit};

use crate::cache_control::{initial_age, storable_freshness, vary_names, Freshness, Rules};
use crate::key::{upstream_url, CacheKey};
use crate::store::{
    CachedObject, CachedObjectKey, DiskFile, ObjectMeta, Reservation, TierKind, DISK_FILE_SUFFIX,
};
use crate::Edge;
use reel_http::Validators;

/// How long a key stays pass-through after an uncacheable answer.
const PASS_DURATION: Duration = Duration::from_secs(10);
/// Buffer size of cache file writes.
const DISK_WRITE_BUFFER: usize = 256 * 1024;
/// Bodies up to this size that arrived in several chunks are copied into
/// one buffer before they are stored, so a hit is sent as one frame.
const MAX_COMPACT_BYTES: u64 = 32 * 1024 * 1024;
/// Larger copies run on a blocking thread (async code may not spend more
/// than ~0.5 ms of CPU at once).
const INLINE_COMPACT_BYTES: u64 = 256 * 1024;

/// Why the upstream could not provide a response.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("did not answer within {0:?}")]
    Timeout(Duration),
    #[error("is unreachable: {0}")]
    Unreachable(String),
    #[error("answered {0}")]
    Status(StatusCode),
    #[error("broke off the body: {0}")]
    Body(String),
    #[error("sent {received} bytes where Content-Length promised {expected}")]
    Truncated { expected: u64, received: u64 },
    #[error("fetch was abandoned because the edge is shutting down")]
    Aborted,
}

impl UpstreamError {
    /// The upstream could not be reached or did not answer (as opposed to
    /// answering with an error status): stale copies may stand in at any
    /// age the directives allow (RFC 9111 4.2.4).
    pub(crate) fn is_disconnection(&self) -> bool {
        matches!(
            self,
            UpstreamError::Timeout(_) | UpstreamError::Unreachable(_)
        )
    }

    /// What failed, in words for clients: no URL, address or OS text.
    pub(crate) fn summary(&self) -> String {
        match self {
            UpstreamError::Unreachable(_) => "is unreachable".to_string(),
            UpstreamError::Body(_) => "broke off the body".to_string(),
            other => other.to_string(),
        }
    }
}

/// What waiters learn once the upstream has answered.
#[derive(Debug, Clone)]
pub(crate) enum FillHead {
    /// A response whose body streams through [`Fill::body_stream`].
    Stream(Arc<ObjectMeta>),
    /// A revalidation got 304: the stored body with refreshed headers.
    Refreshed(CachedObject),
    /// Not shareable (private, too large, no room): the first waiter takes
    /// the response with [`Fill::take_pass`], the others fetch their own.
    Pass,
    /// No usable response. Waiters may fall back to the stale base.
    Failed(UpstreamError),
}

/// An upstream response handed to one client unbuffered.
pub(crate) struct PassBody {
    pub(crate) meta: Arc<ObjectMeta>,
    /// Chunks already read while deciding.
    pub(crate) prefix: Vec<Bytes>,
    pub(crate) rest: BoxStream<'static, io::Result<Bytes>>,
}

/// The request headers a response was selected by (its `Vary`), as the
/// edge compares them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Variant {
    /// No `Vary` (or only `Accept-Encoding`): serves every request.
    #[default]
    Any,
    /// `Vary: *`, or a header outside the configured set: serves no other
    /// request.
    Never,
    /// Serves requests whose values of these headers are the same.
    Values(Vec<(HeaderName, Option<String>)>),
}

impl Variant {
    /// The variant of a response to a request with `request` headers.
    pub(crate) fn of(response: &HeaderMap, request: &HeaderMap, rules: &Rules) -> Variant {
        match vary_names(response) {
            None => Variant::Never,
            Some(names) if names.is_empty() => Variant::Any,
            Some(names) if names.iter().any(|name| !rules.vary_headers.contains(name)) => {
                Variant::Never
            }
            Some(names) => Variant::Values(
                names
                    .into_iter()
                    .map(|name| {
                        let value = request_value(request, &name);
                        (name, value)
                    })
                    .collect(),
            ),
        }
    }

    /// Whether a request with `request` headers may be given this variant.
    pub(crate) fn matches(&self, request: &HeaderMap) -> bool {
        match self {
            Variant::Any => true,
            Variant::Never => false,
            Variant::Values(values) => values
                .iter()
                .all(|(name, value)| request_value(request, name) == *value),
        }
    }
}

/// A request header's lines as one list, members trimmed (RFC 9111 4.1:
/// values are compared after normalising whitespace).
fn request_value(request: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut members: Vec<&str> = Vec::new();
    let mut found = false;
    for value in request.get_all(name) {
        found = true;
        let text = std::str::from_utf8(value.as_bytes()).unwrap_or("\u{fffd}");
        members.extend(text.split(',').map(str::trim));
    }
    found.then(|| members.join(","))
}

/// What the fill's upstream request carries from the client's.
#[derive(Debug, Clone, Default)]
pub(crate) struct Forward {
    /// Client headers sent upstream.
    pub(crate) headers: HeaderMap,
    /// The request carried `Authorization`: the response is stored only
    /// when it says it may be shared.
    pub(crate) authorized: bool,
}

/// One fetch of one key, shared by its waiters.
pub(crate) struct Fill {
    pub(crate) key: CacheKey,
    /// The stale object being revalidated, if any.
    pub(crate) base: Option<CachedObject>,
    /// The leading request's headers for the upstream.
    pub(crate) forward: Forward,
    /// Registered in the store's in-flight map (others may join it); a
    /// fill for one request alone leaves no hit-for-pass marker.
    shared: bool,
    state: Mutex<FillState>,
    changed: watch::Sender<()>,
    purged: AtomicBool,
}

#[derive(Default)]
struct FillState {
    /// 1xx responses the upstream sent before its final one.
    interim: Vec<(StatusCode, HeaderMap)>,
    head: Option<FillHead>,
    chunks: Vec<Bytes>,
    end: Option<Result<(), UpstreamError>>,
    pass: Option<PassBody>,
}

impl Fill {
    /// A fill others may join (the store registers it).
    pub(crate) fn new(key: CacheKey, base: Option<CachedObject>, forward: Forward) -> Fill {
        Fill {
            key,
            base,
            forward,
            shared: true,
            state: Mutex::new(FillState::default()),
            changed: watch::Sender::new(()),
            purged: AtomicBool::new(false),
        }
    }

    /// A fill for one request alone (one with `Authorization`): never
    /// joined, but its response is stored if it may be.
    pub(crate) fn alone(key: CacheKey, forward: Forward) -> Fill {
        Fill {
            shared: false,
            ..Fill::new(key, None, forward)
        }
    }

    fn lock(&self) -> MutexGuard<'_, FillState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn mark_purged(&self) {
        self.purged.store(true, Ordering::Release);
    }

    pub(crate) fn is_purged(&self) -> bool {
        self.purged.load(Ordering::Acquire)
    }

    /// Waits until the upstream has answered, sending the 1xx responses it
    /// sent meanwhile (never stored) through `interim`, when given.
    pub(crate) async fn head(&self, interim: Option<&reel_http::server::Interim>) -> FillHead {
        let mut changes = self.changed.subscribe();
        let mut n_sent = 0;
        loop {
            changes.borrow_and_update();
            let (head, pending) = {
                let state = self.lock();
                (state.head.clone(), state.interim[n_sent..].to_vec())
            };
            n_sent += pending.len();
            if let Some(interim) = interim {
                for (status, headers) in &pending {
                    if let Err(error) = interim.send(*status, headers).await {
                        tracing::debug!(%error, "sending an interim response failed");
                    }
                }
            }
            if let Some(head) = head {
                return head;
            }
            // The sender lives in `self`, so this only returns on a change.
            let _ = changes.changed().await;
        }
    }

    fn push_interim(&self, status: StatusCode, headers: HeaderMap) {
        let mut state = self.lock();
        if state.head.is_none() {
            state.interim.push((status, headers));
        }
        drop(state);
        self.changed.send_replace(());
    }

    pub(crate) fn take_pass(&self) -> Option<PassBody> {
        self.lock().pass.take()
    }

    /// The body from its first byte, as it arrives; ends with an error if
    /// the upstream breaks off.
    pub(crate) fn body_stream(self: Arc<Self>) -> BoxStream<'static, io::Result<Bytes>> {
        let changes = self.changed.subscribe();
        futures::stream::unfold(
            (self, 0usize, changes, false),
            |(fill, chunk_idx, mut changes, finished)| async move {
                if finished {
                    return None;
                }
                loop {
                    changes.borrow_and_update();
                    let step = {
                        let state = fill.lock();
                        match state.chunks.get(chunk_idx) {
                            Some(chunk) => Some(Ok(chunk.clone())),
                            None => match &state.end {
                                Some(Ok(())) => return None,
                                Some(Err(error)) => Some(Err(io::Error::other(format!(
                                    "upstream {error} while streaming {}",
                                    fill.key
                                )))),
                                None => None,
                            },
                        }
                    };
                    match step {
                        Some(Ok(chunk)) => {
                            return Some((Ok(chunk), (fill, chunk_idx + 1, changes, false)))
                        }
                        Some(Err(error)) => {
                            return Some((Err(error), (fill, chunk_idx, changes, true)))
                        }
                        None => {
                            let _ = changes.changed().await;
                        }
                    }
                }
            },
        )
        .boxed()
    }

    fn set_head(&self, head: FillHead) {
        self.lock().head = Some(head);
        self.changed.send_replace(());
    }

    fn set_pass(&self, pass: PassBody) {
        let mut state = self.lock();
        state.pass = Some(pass);
        state.head = Some(FillHead::Pass);
        state.end = Some(Ok(()));
        drop(state);
        self.changed.send_replace(());
    }

    fn push(&self, chunk: Bytes) {
        self.lock().chunks.push(chunk);
        self.changed.send_replace(());
    }

    fn finish(&self, result: Result<(), UpstreamError>) {
        let mut state = self.lock();
        if state.head.is_none() {
            if let Err(error) = &result {
                state.head = Some(FillHead::Failed(error.clone()));
            }
        }
        if state.end.is_none() {
            state.end = Some(result);
        }
        drop(state);
        self.changed.send_replace(());
    }

    fn chunks(&self) -> Arc<[Bytes]> {
        Arc::from(self.lock().chunks.as_slice())
    }

    /// Points every chunk at the same bytes inside `joined`, so waiters
    /// still reading continue unchanged and the original buffers are freed.
    fn replace_chunks(&self, joined: &Bytes) {
        let mut state = self.lock();
        let mut offset = 0;
        for chunk in state.chunks.iter_mut() {
            let chunk_length = chunk.len();
            debug_assert!(offset + chunk_length <= joined.len());
            *chunk = joined.slice(offset..offset + chunk_length);
            offset += chunk_length;
        }
    }
}

/// Ends a fill whose task stopped early (shutdown or panic), so no waiter
/// waits forever and the key can be fetched again.
struct FillGuard {
    edge: Arc<Edge>,
    fill: Arc<Fill>,
}

impl Drop for FillGuard {
    fn drop(&mut self) {
        self.fill.finish(Err(UpstreamError::Aborted));
        self.edge.store.abandon(&self.fill);
    }
}

/// Runs `fill` as a task owned by the edge. `permit`, if any, is held until
/// the fill ends (prefetches are bounded that way).
pub(crate) fn spawn_fill(edge: &Arc<Edge>, fill: Arc<Fill>, permit: Option<OwnedSemaphorePermit>) {
    let task_edge = edge.clone();
    edge.tasks.spawn(async move {
        let guard = FillGuard {
            edge: task_edge.clone(),
            fill: fill.clone(),
        };
        tokio::select! {
            _ = task_edge.cancel.cancelled() => {}
            _ = run_fill(&task_edge, &fill) => {}
        }
        drop(guard);
        drop(permit);
    });
}

/// Sends a GET for `key` upstream (with `conditional` validators and the
/// `forward` headers) and waits for the response head. The upstream's 1xx
/// responses go to `fill`, when given.
pub(crate) async fn fetch_upstream(
    edge: &Edge,
    key: &CacheKey,
    conditional: Option<&ObjectMeta>,
    forward: &HeaderMap,
    fill: Option<&Arc<Fill>>,
) -> Result<reqwest::Response, UpstreamError> {
    let url = upstream_url(&edge.settings.upstream_base, key)
        .ok_or_else(|| UpstreamError::Unreachable(format!("no valid upstream url for {key}")))?;
    let mut request = axum::http::Request::new(axum::body::Body::empty());
    *request.uri_mut() = url
        .as_str()
        .parse()
        .map_err(|_| UpstreamError::Unreachable(format!("no valid upstream url for {key}")))?;
    let headers = request.headers_mut();
    headers.extend(forward.clone());
    for (name, value) in &edge.upstream_headers {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    if let Some(meta) = conditional {
        add_validators(headers, meta);
    }
    if let Some(fill) = fill {
        let fill = Arc::downgrade(fill);
        hyper::ext::on_informational(&mut request, move |interim| {
            if let Some(fill) = fill.upgrade() {
                fill.push_interim(interim.status(), without_hop_by_hop(interim.headers(), &[]));
            }
        });
    }
    let sent = tokio::time::timeout(
        edge.settings.upstream_timeout,
        edge.upstream_client.request(request),
    );
    let result = match sent.await {
        Err(_) => Err(UpstreamError::Timeout(edge.settings.upstream_timeout)),
        Ok(Err(error)) => Err(UpstreamError::Unreachable(error_chain(&error))),
        Ok(Ok(response)) => Ok(reqwest::Response::from(response.map(reqwest::Body::wrap))),
    };
    edge.metrics.upstream_requests.inc();
    if let Err(error) = &result {
        edge.metrics.upstream_errors.inc();
        tracing::warn!(key = %key, %error, "upstream request failed");
    }
    result
}

/// Adds the validators of a stored response, to revalidate it.
fn add_validators(headers: &mut HeaderMap, meta: &ObjectMeta) {
    if let Some(etag) = &meta.validators.etag {
        headers.insert(header::IF_NONE_MATCH, etag.clone());
    }
    if let Some(last_modified) = meta.headers.get(header::LAST_MODIFIED) {
        headers.insert(header::IF_MODIFIED_SINCE, last_modified.clone());
    }
}

/// Sends `request` (an unsafe method passed through) and waits for the
/// response head, counting upstream requests and errors.
pub(crate) async fn send_upstream(
    edge: &Edge,
    key: &CacheKey,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, UpstreamError> {
    edge.metrics.upstream_requests.inc();
    let timeout = edge.settings.upstream_timeout;
    let result = match tokio::time::timeout(timeout, request.send()).await {
        Err(_) => Err(UpstreamError::Timeout(timeout)),
        Ok(Err(error)) if error.is_timeout() => Err(UpstreamError::Timeout(timeout)),
        Ok(Err(error)) => Err(UpstreamError::Unreachable(error_chain(&error))),
        Ok(Ok(response)) => Ok(response),
    };
    if let Err(error) = &result {
        edge.metrics.upstream_errors.inc();
        tracing::warn!(key = %key, %error, "upstream request failed");
    }
    result
}

/// The upstream body as a stream, failing when a chunk takes longer than
/// the upstream timeout; counts upstream bytes.
pub(crate) fn upstream_body(
    edge: &Arc<Edge>,
    response: reqwest::Response,
) -> BoxStream<'static, io::Result<Bytes>> {
    let edge = edge.clone();
    let timeout = edge.settings.upstream_timeout;
    futures::stream::unfold(
        (response.bytes_stream().boxed(), edge, false),
        move |(mut stream, edge, finished)| async move {
            if finished {
                return None;
            }
            match tokio::time::timeout(timeout, stream.next()).await {
                Err(_) => Some((
                    Err(io::Error::other(UpstreamError::Timeout(timeout))),
                    (stream, edge, true),
                )),
                Ok(None) => None,
                Ok(Some(Err(error))) => Some((
                    Err(io::Error::other(UpstreamError::Body(error_chain(&error)))),
                    (stream, edge, true),
                )),
                Ok(Some(Ok(chunk))) => {
                    edge.metrics.upstream_bytes.add(chunk.len() as u64);
                    Some((Ok(chunk), (stream, edge, false)))
                }
            }
        },
    )
    .boxed()
}

/// The stored form of an upstream response head.
pub(crate) fn response_meta(
    status: StatusCode,
    upstream_headers: &HeaderMap,
    freshness: Freshness,
    length: Option<u64>,
    variant: Variant,
) -> ObjectMeta {
    ObjectMeta {
        status,
        variant,
        headers: end_to_end_headers(upstream_headers),
        length,
        freshness,
        received_at: Instant::now(),
        initial_age: initial_age(upstream_headers),
        validators: Validators::of(upstream_headers),
    }
}

async fn run_fill(edge: &Arc<Edge>, fill: &Arc<Fill>) {
    let base_meta = fill.base.as_ref().map(|base| base.meta.clone());
    let response = match fetch_upstream(
        edge,
        &fill.key,
        base_meta.as_deref(),
        &fill.forward.headers,
        Some(fill),
    )
    .await
    {
        Ok(response) => response,
        Err(error) => {
            if fill.base.is_some() {
                edge.metrics.revalidations_failed.inc();
            }
            fill.finish(Err(error));
            edge.store.abandon(fill);
            return;
        }
    };
    let status = response.status();
    if let Some(base) = &fill.base {
        if status == StatusCode::NOT_MODIFIED {
            edge.metrics.revalidations_not_modified.inc();
            let meta = Arc::new(refreshed_meta(&base.meta, response.headers(), edge));
            edge.store.refresh(fill, base.body_id, meta.clone());
            fill.set_head(FillHead::Refreshed(CachedObject {
                meta,
                body: base.body.clone(),
                body_id: base.body_id,
            }));
            fill.finish(Ok(()));
            return;
        }
        if status.is_server_error() {
            // RFC 5861 4: a 5xx counts as an error for stale-if-error.
            edge.metrics.revalidations_failed.inc();
            fill.finish(Err(UpstreamError::Status(status)));
            edge.store.abandon(fill);
            return;
        }
        edge.metrics.revalidations_modified.inc();
    }
    let rules = &edge.settings.rules;
    let storable = storable_freshness(
        status,
        response.headers(),
        rules,
        fill.forward.authorized,
        SystemTime::now(),
    );
    // Private answers are never shared with other waiters, let alone stored.
    let private = storable.is_err_and(|why| why.is_private());
    let freshness = storable.unwrap_or(Freshness::NONE);
    let content_length = response.content_length();
    let variant = Variant::of(response.headers(), &fill.forward.headers, rules);
    let meta = response_meta(
        status,
        response.headers(),
        freshness,
        content_length,
        variant,
    );
    let max_object_bytes = edge.settings.max_object_bytes;
    let body = upstream_body(edge, response);
    if private || content_length.is_some_and(|length| length > max_object_bytes) {
        pass(edge, fill, meta, Vec::new(), body, true);
        return;
    }
    match content_length {
        Some(length) => {
            let Some(reservation) = edge.store.reserve(TierKind::Memory, length) else {
                pass(edge, fill, meta, Vec::new(), body, false);
                return;
            };
            let meta = Arc::new(meta);
            fill.set_head(FillHead::Stream(meta.clone()));
            let mut body = body;
            let mut received = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(error) => {
                        fill.finish(Err(UpstreamError::Body(error.to_string())));
                        edge.store.abandon(fill);
                        return;
                    }
                };
                received += chunk.len() as u64;
                if received > length {
                    break;
                }
                fill.push(chunk);
            }
            if received != length {
                fill.finish(Err(UpstreamError::Truncated {
                    expected: length,
                    received,
                }));
                edge.store.abandon(fill);
                return;
            }
            complete(edge, fill, meta, storable.is_ok(), reservation).await;
        }
        None => {
            let Some(mut reservation) = edge.store.reserve(TierKind::Memory, 0) else {
                pass(edge, fill, meta, Vec::new(), body, false);
                return;
            };
            let mut body = body;
            let mut prefix = Vec::new();
            let mut received = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(error) => {
                        fill.finish(Err(UpstreamError::Body(error.to_string())));
                        edge.store.abandon(fill);
                        return;
                    }
                };
                let chunk_length = chunk.len() as u64;
                prefix.push(chunk);
                if received + chunk_length > max_object_bytes || !reservation.grow(chunk_length) {
                    drop(reservation);
                    pass(edge, fill, meta, prefix, body, true);
                    return;
                }
                received += chunk_length;
            }
            let meta = Arc::new(ObjectMeta {
                length: Some(received),
                ..meta
            });
            for chunk in prefix {
                fill.push(chunk);
            }
            fill.set_head(FillHead::Stream(meta.clone()));
            complete(edge, fill, meta, storable.is_ok(), reservation).await;
        }
    }
}

/// Hands the response to one waiter and ends the fill.
fn pass(
    edge: &Arc<Edge>,
    fill: &Arc<Fill>,
    meta: ObjectMeta,
    prefix: Vec<Bytes>,
    rest: BoxStream<'static, io::Result<Bytes>>,
    remember: bool,
) {
    if remember && fill.shared {
        edge.store.abandon_with_pass(fill, PASS_DURATION);
    } else {
        edge.store.abandon(fill);
    }
    fill.set_pass(PassBody {
        meta: Arc::new(meta),
        prefix,
        rest,
    });
}

/// Stores a completely received body (when allowed) and ends the fill.
async fn complete(
    edge: &Arc<Edge>,
    fill: &Arc<Fill>,
    meta: Arc<ObjectMeta>,
    storable: bool,
    mut reservation: Reservation,
) {
    let chunks = if storable {
        compact(fill, &mut reservation, meta.length.unwrap_or(0)).await
    } else {
        fill.chunks()
    };
    let body_id = if storable {
        edge.store
            .store_fill(fill, meta.clone(), chunks.clone(), reservation)
    } else {
        edge.store.abandon(fill);
        drop(reservation);
        None
    };
    fill.finish(Ok(()));
    if let Some(body_id) = body_id {
        write_to_disk(
            edge,
            CachedObjectKey {
                key: fill.key.clone(),
                body_id,
                meta,
                epoch: edge.store.purge_epoch(),
            },
            chunks,
        );
    }
}

/// The body as one contiguous chunk when it arrived in several: one copy
/// per fill buys single-frame hits. The copy's bytes are reserved while both
/// versions exist; without room the chunks are kept as they are.
async fn compact(fill: &Arc<Fill>, reservation: &mut Reservation, length: u64) -> Arc<[Bytes]> {
    let chunks = fill.chunks();
    if chunks.len() <= 1 || length > MAX_COMPACT_BYTES || !reservation.grow(length) {
        return chunks;
    }
    let join = move || {
        let mut joined = bytes::BytesMut::with_capacity(length as usize);
        for chunk in chunks.iter() {
            joined.extend_from_slice(chunk);
        }
        (joined.freeze(), chunks)
    };
    let joined = if length <= INLINE_COMPACT_BYTES {
        Some(join())
    } else {
        tokio::task::spawn_blocking(join).await.ok()
    };
    let result = match joined {
        Some((joined, _original)) => {
            fill.replace_chunks(&joined);
            Arc::from([joined])
        }
        None => fill.chunks(),
    };
    reservation.shrink(length);
    result
}

/// Copies a stored body to the disk tier in the background, if there is
/// one, a write slot is free and the bytes fit.
fn write_to_disk(edge: &Arc<Edge>, object: CachedObjectKey, chunks: Arc<[Bytes]>) {
    let Some(dir) = edge.store.disk_dir() else {
        return;
    };
    let length = object.meta.length.unwrap_or(0);
    let Ok(permit) = edge.disk_writes.clone().try_acquire_owned() else {
        edge.metrics.disk_writes_skipped.inc();
        return;
    };
    let Some(reservation) = edge.store.reserve(TierKind::Disk, length) else {
        edge.metrics.disk_writes_skipped.inc();
        return;
    };
    let file = DiskFile {
        path: dir.join(format!("{:016x}{DISK_FILE_SUFFIX}", edge.store.next_id())),
    };
    let task_edge = edge.clone();
    edge.tasks.spawn(async move {
        let written = tokio::task::spawn_blocking(move || {
            let result = write_chunks(&file.path, &chunks);
            // On failure the file is dropped (and unlinked) here, off the
            // async threads.
            result.map(|()| file)
        })
        .await;
        match written {
            Ok(Ok(file)) => {
                let kept = task_edge
                    .store
                    .attach_disk(&object, Arc::new(file), reservation);
                if kept {
                    task_edge.metrics.disk_writes.inc();
                }
            }
            Ok(Err(error)) => {
                task_edge.metrics.disk_writes_failed.inc();
                tracing::warn!(key = %object.key, %error, "writing cache file failed");
            }
            Err(error) => {
                task_edge.metrics.disk_writes_failed.inc();
                tracing::warn!(key = %object.key, %error, "cache file writer stopped");
            }
        }
        drop(permit);
    });
}

fn write_chunks(path: &std::path::Path, chunks: &[Bytes]) -> io::Result<()> {
    use std::io::Write;
    let file = std::fs::File::create(path)?;
    let mut writer = io::BufWriter::with_capacity(DISK_WRITE_BUFFER, file);
    for chunk in chunks {
        writer.write_all(chunk)?;
    }
    writer.flush()
}

/// RFC 9111 4.3.4: a 304 updates the stored headers with its own.
fn refreshed_meta(base: &ObjectMeta, not_modified_headers: &HeaderMap, edge: &Edge) -> ObjectMeta {
    let mut headers = base.headers.clone();
    let updates = end_to_end_headers(not_modified_headers);
    for name in updates.keys() {
        if name == header::CONTENT_TYPE || name == header::CONTENT_ENCODING {
            continue;
        }
        headers.remove(name);
        for value in updates.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let freshness = storable_freshness(
        base.status,
        &headers,
        &edge.settings.rules,
        false,
        SystemTime::now(),
    )
    .unwrap_or(Freshness::NONE);
    ObjectMeta {
        status: base.status,
        variant: base.variant.clone(),
        validators: Validators::of(&headers),
        headers,
        length: base.length,
        freshness,
        received_at: Instant::now(),
        initial_age: initial_age(not_modified_headers),
    }
}

/// Headers that describe one connection (RFC 9110 7.6.1), or that the edge
/// sets itself, are not stored or forwarded.
pub(crate) fn end_to_end_headers(upstream: &HeaderMap) -> HeaderMap {
    let mut headers = without_hop_by_hop(upstream, &["content-length", "age", "x-cache", "vary"]);
    // Vary is dropped above only when it is safe to ignore; otherwise it is
    // kept for the client (and the edge's own variant check).
    if vary_names(upstream).is_none_or(|names| !names.is_empty()) {
        for vary in upstream.get_all(header::VARY) {
            headers.append(header::VARY, vary.clone());
        }
    }
    headers
}

/// `headers` without the hop-by-hop ones (RFC 9110 7.6.1: the fixed list
/// and those named in `Connection`) and without `also_dropped`.
pub(crate) fn without_hop_by_hop(headers: &HeaderMap, also_dropped: &[&str]) -> HeaderMap {
    const HOP_BY_HOP: [&str; 9] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    ];
    let listed_in_connection: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if HOP_BY_HOP.contains(&name.as_str())
            || also_dropped.contains(&name.as_str())
            || listed_in_connection.contains(name)
        {
            continue;
        }
        kept.append(name.clone(), value.clone());
    }
    kept
}

/// The error with its sources, for messages (reqwest's own text omits them).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The value of a `Via` header naming this edge.
pub(crate) fn via_value(name: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("1.1 {name}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_hop_by_hop_headers() {
        let mut upstream = HeaderMap::new();
        upstream.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        upstream.insert("x-secret", HeaderValue::from_static("1"));
        upstream.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        upstream.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        upstream.insert(header::AGE, HeaderValue::from_static("3"));
        upstream.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        upstream.insert(header::ETAG, HeaderValue::from_static("\"e\""));
        upstream.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        let headers = end_to_end_headers(&upstream);
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["access-control-allow-origin", "etag"]);
        upstream.insert(header::VARY, HeaderValue::from_static("Origin"));
        assert!(end_to_end_headers(&upstream).contains_key(header::VARY));
    }
}
