//! The request path: routes a request, answers it from the cache, a fill
//! or the upstream, and builds every response the edge sends.
//!
//! For GET and HEAD only the normalised path and query (the cache key) and
//! the configured request headers (`forward_headers`, the `Vary` set and
//! `Authorization`) reach the upstream, so nothing else a client sends can
//! change what is stored. A request with `Authorization` is never answered
//! from the cache nor joined to another's fill; its response is stored
//! only when it says it may be shared. Conditional and Range requests are
//! answered here from the stored (or streaming) full response.
//!
//! Other methods (POST, PUT, DELETE, PATCH, ...) are passed through with
//! their headers and body and never cached; a 2xx or 3xx answer
//! invalidates the request URL and its same-origin `Location` and
//! `Content-Location` (RFC 9111 4.4).

use std::convert::Infallible;
use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use reel_http::range::{content_range, unsatisfiable_content_range};
use reel_http::{cors, percent_decode, RangeAnswer};

use crate::cmcd::cmcd_from_request;
use crate::fill::{
    end_to_end_headers, fetch_upstream, response_meta, send_upstream, spawn_fill, upstream_body,
    without_hop_by_hop, Fill, FillHead, Forward, UpstreamError, Variant,
};
use crate::key::{cache_key, cmcd_query_value, resolve_relative, same_origin_key, CacheKey};
use crate::store::{CachedObject, Claim, ObjectMeta, StoredBody};
use crate::{admin, Edge};

/// Read size when streaming a cache file.
const DISK_READ_CHUNK: usize = 256 * 1024;

static X_CACHE: HeaderName = HeaderName::from_static("x-cache");
static X_EDGE_ERROR: HeaderName = HeaderName::from_static("x-edge-error");

/// How a response was produced, sent as `X-Cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CacheResult {
    /// A fresh stored object.
    Hit,
    /// This request started the upstream fill.
    Miss,
    /// This request joined a fill in flight.
    Coalesced,
    /// A stale object, served while a background refresh runs.
    StaleWhileRevalidate,
    /// A stale object, served because the upstream failed.
    StaleIfError,
    /// A stale object the upstream confirmed with 304.
    Revalidated,
    /// Not cacheable: fetched for this request alone.
    Bypass,
}

impl CacheResult {
    fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            CacheResult::Hit => "HIT",
            CacheResult::Miss => "MISS",
            CacheResult::Coalesced => "COALESCED",
            CacheResult::StaleWhileRevalidate | CacheResult::StaleIfError => "STALE",
            CacheResult::Revalidated => "REVALIDATED",
            CacheResult::Bypass => "BYPASS",
        })
    }

    fn count(self, edge: &Edge) {
        let counter = match self {
            CacheResult::Hit => &edge.metrics.hits,
            CacheResult::Miss => &edge.metrics.misses,
            CacheResult::Coalesced => &edge.metrics.coalesced,
            CacheResult::StaleWhileRevalidate => &edge.metrics.stale_while_revalidate,
            CacheResult::StaleIfError => &edge.metrics.stale_if_error,
            CacheResult::Revalidated => &edge.metrics.revalidated,
            CacheResult::Bypass => &edge.metrics.bypassed,
        };
        counter.inc();
    }
}

/// What the response needs from the client's request.
struct ClientRequest {
    head_only: bool,
    headers: HeaderMap,
    /// What the upstream request carries from this one.
    forward: Forward,
    /// The request carried a playback token that verified.
    token_verified: bool,
    /// Sends 1xx responses of the upstream ahead of the final one.
    interim: Option<reel_http::server::Interim>,
}

/// Where a response body comes from.
enum BodySource {
    Stored(StoredBody),
    Fill(Arc<Fill>),
    Upstream {
        prefix: Vec<Bytes>,
        rest: BoxStream<'static, io::Result<Bytes>>,
    },
}

/// The one handler: admin and health routes, then the cache.
pub(crate) async fn route(State(edge): State<Arc<Edge>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let is_read = parts.method == Method::GET || parts.method == Method::HEAD;
    if path == "/healthz" && is_read {
        return text_response(StatusCode::OK, None, format!("ok {}\n", edge.settings.name));
    }
    if path == "/metrics" && is_read {
        return admin::metrics(&edge);
    }
    if path.starts_with("/_edge/") {
        return admin::handle(&edge, &parts);
    }
    if parts.method == Method::OPTIONS {
        return cors::preflight();
    }
    if !is_read {
        return pass_through(&edge, parts, body).await;
    }
    // Refusals and upstream errors carry the CORS headers too, so a player
    // in a page can read their status (cached answers have them from the origin).
    let mut response = proxy(edge, parts).await;
    cors::add_read_headers(response.headers_mut());
    response
}

async fn proxy(edge: Arc<Edge>, parts: Parts) -> Response {
    // `/v/{video}/t/{token}/{file}` is cached as `/v/{video}/{file}`.
    let signed = reel_token::split_signed_path(parts.uri.path());
    let target = match (&signed, parts.uri.query()) {
        (Some(signed), Some(query)) => Some(format!("{}?{query}", signed.unsigned())),
        (Some(signed), None) => Some(signed.unsigned()),
        (None, _) => parts.uri.path_and_query().map(|target| target.to_string()),
    };
    let Some(key) = target.as_deref().and_then(cache_key) else {
        return text_response(
            StatusCode::BAD_REQUEST,
            Some("bad_target"),
            format!("request target {} is not a path\n", parts.uri),
        );
    };
    let token_verified = match signed {
        Some(signed) => match edge
            .tokens
            .check(signed.token, signed.video, &parts.headers)
        {
            Ok(()) => true,
            Err(error) => return token_refused(&error),
        },
        None => false,
    };
    observe_cmcd(&edge, &parts);
    let request = ClientRequest {
        head_only: parts.method == Method::HEAD,
        forward: forward_for_read(&edge.settings.forward_headers, &parts.headers),
        interim: parts.extensions.get().cloned(),
        headers: parts.headers,
        token_verified,
    };
    if request.forward.authorized {
        // RFC 9111 3.5: answered by the upstream alone, for this client.
        let fill = Arc::new(Fill::alone(key, request.forward.clone()));
        spawn_fill(&edge, fill.clone(), None);
        return respond_from_fill(&edge, fill, true, &request).await;
    }
    let now = Instant::now();
    match edge
        .store
        .claim(&key, now, &request.headers, request.forward.clone())
    {
        Claim::Fresh(object) => respond_object(&edge, object, &request, CacheResult::Hit).await,
        Claim::Stale {
            object,
            revalidation,
        } => {
            if let Some(fill) = revalidation {
                spawn_fill(&edge, fill, None);
            }
            respond_object(&edge, object, &request, CacheResult::StaleWhileRevalidate).await
        }
        Claim::Wait { fill, lead } => {
            if lead {
                spawn_fill(&edge, fill.clone(), None);
            }
            respond_from_fill(&edge, fill, lead, &request).await
        }
        Claim::Pass => respond_direct(&edge, &key, &request).await,
    }
}

async fn respond_from_fill(
    edge: &Arc<Edge>,
    fill: Arc<Fill>,
    lead: bool,
    request: &ClientRequest,
) -> Response {
    match fill.head(request.interim.as_ref()).await {
        FillHead::Stream(meta) if !lead && !meta.variant.matches(&request.headers) => {
            // The fill is for another variant of the key: fetch our own.
            respond_direct(edge, &fill.key, request).await
        }
        FillHead::Stream(meta) => {
            let result = if lead {
                CacheResult::Miss
            } else {
                CacheResult::Coalesced
            };
            respond(
                edge,
                &meta,
                Some(meta.age(Instant::now())),
                BodySource::Fill(fill),
                request,
                result,
            )
            .await
        }
        FillHead::Refreshed(object) => {
            respond_object(edge, object, request, CacheResult::Revalidated).await
        }
        FillHead::Pass => match fill.take_pass() {
            Some(pass) => {
                let source = BodySource::Upstream {
                    prefix: pass.prefix,
                    rest: pass.rest,
                };
                respond(edge, &pass.meta, None, source, request, CacheResult::Bypass).await
            }
            None => respond_direct(edge, &fill.key, request).await,
        },
        FillHead::Failed(error) => {
            let now = Instant::now();
            match &fill.base {
                Some(base)
                    if base.meta.variant.matches(&request.headers)
                        && base
                            .meta
                            .freshness
                            .usable_on_error(base.meta.age(now), error.is_disconnection()) =>
                {
                    tracing::info!(key = %fill.key, %error, "serving stale copy: upstream failed");
                    respond_object(edge, base.clone(), request, CacheResult::StaleIfError).await
                }
                base => upstream_error_response(edge, &fill.key, &error, base.is_some()),
            }
        }
    }
}

/// Fetches `key` for this request alone and streams it through.
async fn respond_direct(edge: &Arc<Edge>, key: &CacheKey, request: &ClientRequest) -> Response {
    match fetch_upstream(edge, key, None, &request.forward.headers, None).await {
        Ok(response) => {
            let meta = response_meta(
                response.status(),
                response.headers(),
                crate::cache_control::Freshness::NONE,
                response.content_length(),
                Variant::Never,
            );
            let source = BodySource::Upstream {
                prefix: Vec::new(),
                rest: upstream_body(edge, response),
            };
            respond(edge, &meta, None, source, request, CacheResult::Bypass).await
        }
        Err(error) => upstream_error_response(edge, key, &error, false),
    }
}

async fn respond_object(
    edge: &Arc<Edge>,
    object: CachedObject,
    request: &ClientRequest,
    result: CacheResult,
) -> Response {
    let age = object.meta.age(Instant::now());
    respond(
        edge,
        &object.meta,
        Some(age),
        BodySource::Stored(object.body),
        request,
        result,
    )
    .await
}

/// Builds a response for `meta`, answering conditionals and ranges itself.
async fn respond(
    edge: &Arc<Edge>,
    meta: &ObjectMeta,
    age: Option<Duration>,
    source: BodySource,
    request: &ClientRequest,
    result: CacheResult,
) -> Response {
    if !request.token_verified && crate::access::is_private(&meta.headers) {
        return token_refused(&reel_token::TokenError::Missing);
    }
    result.count(edge);
    let mut headers = meta.headers.clone();
    headers.insert(X_CACHE.clone(), result.header_value());
    if let Some(age) = age {
        headers.insert(header::AGE, HeaderValue::from(age.as_secs()));
    }
    let is_ok = meta.status == StatusCode::OK;
    if is_ok && reel_http::is_not_modified(&request.headers, &meta.validators) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let (status, range) = match (is_ok, meta.length) {
        (true, Some(length)) => {
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            match reel_http::range_answer(&request.headers, &meta.validators, length) {
                RangeAnswer::Full => (StatusCode::OK, Some(0..length)),
                RangeAnswer::Partial(range) => {
                    headers.insert(header::CONTENT_RANGE, content_range(&range, length));
                    (StatusCode::PARTIAL_CONTENT, Some(range))
                }
                RangeAnswer::Unsatisfiable => {
                    headers.insert(header::CONTENT_RANGE, unsatisfiable_content_range(length));
                    headers.remove(header::CONTENT_TYPE);
                    return (StatusCode::RANGE_NOT_SATISFIABLE, headers).into_response();
                }
            }
        }
        (_, length) => (meta.status, length.map(|length| 0..length)),
    };
    if let Some(range) = &range {
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(range.end - range.start),
        );
    }
    if request.head_only {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        return response;
    }
    let full = match (&range, meta.length) {
        (Some(range), Some(length)) => range.start == 0 && range.end == length,
        _ => true,
    };
    if let Some(range) = &range {
        edge.metrics.served_bytes.add(range.end - range.start);
    }
    let body = match source {
        BodySource::Stored(StoredBody::Memory(chunks)) => {
            let range = range.unwrap_or(0..meta.length.unwrap_or(0));
            memory_body(chunks, range)
        }
        BodySource::Stored(StoredBody::Disk(file)) => {
            let range = range.unwrap_or(0..meta.length.unwrap_or(0));
            match open_range(&file.path, &range).await {
                Ok(reader) => {
                    // The stream owns `file`, so an eviction meanwhile does not
                    // unlink it before the response is sent.
                    let stream =
                        ReaderStream::with_capacity(reader, DISK_READ_CHUNK).map(move |chunk| {
                            let _owner = &file;
                            chunk
                        });
                    Body::from_stream(stream)
                }
                Err(error) => {
                    tracing::warn!(path = %file.path.display(), %error, "reading cache file failed");
                    return text_response(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Some("cache_read_failed"),
                        format!("reading the cached copy failed: {error}; retry the request\n"),
                    );
                }
            }
        }
        BodySource::Fill(fill) => sliced_body(fill.body_stream(), range.filter(|_| !full)),
        BodySource::Upstream { prefix, rest } => {
            let stream = futures::stream::iter(prefix.into_iter().map(Ok))
                .chain(rest)
                .boxed();
            sliced_body(stream, range.filter(|_| !full))
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

fn memory_body(chunks: Arc<[Bytes]>, range: Range<u64>) -> Body {
    // A body held in one chunk (or a range inside one) is one frame.
    let mut slices = ChunkSlices {
        chunks,
        chunk_idx: 0,
        chunk_start: 0,
        range,
    };
    let mut peek = slices.clone();
    match (peek.next(), peek.next()) {
        (None, _) => Body::empty(),
        (Some(only), None) => Body::from(only),
        _ => {
            let first = slices.next();
            Body::from_stream(futures::stream::iter(
                first.into_iter().chain(slices).map(Ok::<_, Infallible>),
            ))
        }
    }
}

/// The parts of a chunk list that fall into a byte range.
#[derive(Clone)]
struct ChunkSlices {
    chunks: Arc<[Bytes]>,
    chunk_idx: usize,
    chunk_start: u64,
    range: Range<u64>,
}

impl Iterator for ChunkSlices {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        while let Some(chunk) = self.chunks.get(self.chunk_idx) {
            let start = self.chunk_start;
            let end = start + chunk.len() as u64;
            self.chunk_idx += 1;
            self.chunk_start = end;
            if start >= self.range.end {
                return None;
            }
            let from = self.range.start.max(start);
            let to = self.range.end.min(end);
            if from < to {
                return Some(chunk.slice((from - start) as usize..(to - start) as usize));
            }
        }
        None
    }
}

async fn open_range(
    path: &std::path::Path,
    range: &Range<u64>,
) -> io::Result<tokio::io::Take<tokio::fs::File>> {
    let mut file = tokio::fs::File::open(path).await?;
    if range.start > 0 {
        file.seek(io::SeekFrom::Start(range.start)).await?;
    }
    Ok(file.take(range.end - range.start))
}

/// A body from `stream`, cut to `range` when one is given.
fn sliced_body(stream: BoxStream<'static, io::Result<Bytes>>, range: Option<Range<u64>>) -> Body {
    let Some(range) = range else {
        return Body::from_stream(stream);
    };
    let sliced = futures::stream::unfold(
        (stream, 0u64, range),
        |(mut stream, position, range)| async move {
            let mut position = position;
            loop {
                // Stop as soon as the range is sent, without waiting for the
                // rest of a fill.
                if position >= range.end {
                    return None;
                }
                let chunk = match stream.next().await? {
                    Ok(chunk) => chunk,
                    Err(error) => return Some((Err(error), (stream, u64::MAX, range))),
                };
                let start = position;
                let end = start + chunk.len() as u64;
                position = end;
                let from = range.start.max(start);
                let to = range.end.min(end);
                if from < to {
                    let slice = chunk.slice((from - start) as usize..(to - start) as usize);
                    return Some((Ok(slice), (stream, position, range)));
                }
            }
        },
    );
    Body::from_stream(sliced)
}

/// The client headers a GET or HEAD sends upstream: those named in
/// `names` (the configured ones, the `Vary` set and `Authorization`).
fn forward_for_read(names: &[HeaderName], client: &HeaderMap) -> Forward {
    let mut headers = HeaderMap::new();
    for name in names {
        for value in client.get_all(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    Forward {
        authorized: client.contains_key(header::AUTHORIZATION),
        headers,
    }
}

/// Client request headers that are not sent upstream by a pass-through:
/// the connection's own, and the ones the edge sets itself.
const NOT_FORWARDED: [&str; 4] = ["host", "expect", "via", crate::access::SECRET_HEADER];

/// Passes an unsafe (or unknown) method's request through to the upstream,
/// body streamed, and its answer back, uncached. A 2xx or 3xx answer
/// invalidates the target and its same-origin `Location` and
/// `Content-Location` (RFC 9111 4.4).
async fn pass_through(edge: &Arc<Edge>, parts: Parts, body: Body) -> Response {
    let target = parts.uri.path_and_query().map(|target| target.as_str());
    let Some(key) = target.and_then(cache_key) else {
        return text_response(
            StatusCode::BAD_REQUEST,
            Some("bad_target"),
            format!("request target {} is not a path\n", parts.uri),
        );
    };
    let Some(url) = crate::key::upstream_url(&edge.settings.upstream_base, &key) else {
        return upstream_error_response(
            edge,
            &key,
            &UpstreamError::Unreachable(format!("no valid upstream url for {key}")),
            false,
        );
    };
    let headers = without_hop_by_hop(&parts.headers, &NOT_FORWARDED);
    let request = edge
        .client
        .request(parts.method.clone(), url)
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    let response = match send_upstream(edge, &key, request).await {
        Ok(response) => response,
        Err(error) => return upstream_error_response(edge, &key, &error, false),
    };
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        let authority = parts
            .headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .or(parts.uri.authority().map(|authority| authority.as_str()));
        let mut invalidated = vec![key.clone()];
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            let reference = response.headers().get(name).and_then(|v| v.to_str().ok());
            let target = target.unwrap_or("/");
            if let Some(other) = reference.and_then(|r| same_origin_key(target, authority, r)) {
                invalidated.push(other);
            }
        }
        for key in &invalidated {
            if edge.store.invalidate(key) {
                edge.metrics.purged_objects.inc();
            }
        }
    }
    CacheResult::Bypass.count(edge);
    let mut headers = end_to_end_headers(response.headers());
    headers.insert(X_CACHE.clone(), CacheResult::Bypass.header_value());
    let mut answer = Response::new(Body::from_stream(upstream_body(edge, response)));
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    answer
}

/// Logs a request's CMCD, updates its session and prefetches `nor`.
fn observe_cmcd(edge: &Arc<Edge>, parts: &Parts) {
    let query_value = parts.uri.query().and_then(cmcd_query_value);
    let Some(cmcd) = cmcd_from_request(query_value.as_deref(), &parts.headers) else {
        return;
    };
    edge.metrics.cmcd_requests.inc();
    tracing::info!(
        target: "reel_edge::cmcd",
        edge = %edge.settings.name,
        path = parts.uri.path(),
        sid = cmcd.sid.as_deref(),
        cid = cmcd.cid.as_deref(),
        br = cmcd.br,
        bl = cmcd.bl,
        mtp = cmcd.mtp,
        tb = cmcd.tb,
        d = cmcd.d,
        ot = cmcd.ot.as_deref(),
        sf = cmcd.sf.as_deref(),
        st = cmcd.st.as_deref(),
        bs = cmcd.bs,
        su = cmcd.su,
        nor = cmcd.nor.as_deref(),
        "cmcd"
    );
    edge.sessions().record(&cmcd, Instant::now());
    let Some(next_object) = &cmcd.nor else {
        return;
    };
    let Some(target) = parts.uri.path_and_query() else {
        return;
    };
    // CTA-5004: `nor` is URL-encoded, relative to the request URL.
    let Some(key) = resolve_relative(target.as_str(), &percent_decode(next_object)) else {
        edge.metrics.prefetches_invalid.inc();
        return;
    };
    prefetch(edge, key);
}

/// Starts a low-priority fill of `key` unless it is cached or in flight, or
/// all prefetch slots are busy.
fn prefetch(edge: &Arc<Edge>, key: CacheKey) {
    let Ok(permit) = edge.prefetch_permits.clone().try_acquire_owned() else {
        edge.metrics.prefetches_busy.inc();
        return;
    };
    match edge.store.claim_prefetch(&key, Instant::now()) {
        Some(fill) => {
            edge.metrics.prefetches_started.inc();
            tracing::debug!(key = %key, "prefetching next object");
            spawn_fill(edge, fill, Some(permit));
        }
        None => edge.metrics.prefetches_cached.inc(),
    }
}

/// The one place that turns an upstream failure into a status and code.
fn upstream_error_response(
    edge: &Edge,
    key: &CacheKey,
    error: &UpstreamError,
    had_stale_copy: bool,
) -> Response {
    let (status, code) = match error {
        UpstreamError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
        UpstreamError::Aborted => (StatusCode::SERVICE_UNAVAILABLE, "edge_shutting_down"),
        UpstreamError::Status(_) => (StatusCode::BAD_GATEWAY, "upstream_error_status"),
        UpstreamError::Unreachable(_)
        | UpstreamError::Body(_)
        | UpstreamError::Truncated { .. } => (StatusCode::BAD_GATEWAY, "upstream_unreachable"),
    };
    tracing::warn!(
        key = %key,
        upstream = %edge.settings.upstream_base,
        error = %error,
        "upstream failed"
    );
    let stale_note = if had_stale_copy {
        "; the cached copy is too old to stand in (past its stale-if-error window)"
    } else {
        "; no cached copy"
    };
    text_response(
        status,
        Some(code),
        // In words only: the error's own text carries the upstream's URLs
        // and addresses, which stay in the log.
        format!(
            "edge {}: the upstream {} for {key}{stale_note}\n",
            edge.settings.name,
            error.summary()
        ),
    )
}

/// A plain-text response that no cache may store.
fn token_refused(error: &reel_token::TokenError) -> Response {
    text_response(
        StatusCode::FORBIDDEN,
        Some(error.code()),
        format!(
            "{error} ({}): this object needs a valid playback URL\n",
            error.code()
        ),
    )
}

pub(crate) fn text_response(
    status: StatusCode,
    code: Option<&'static str>,
    message: String,
) -> Response {
    let mut response = (status, message).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(code) = code {
        headers.insert(X_EDGE_ERROR.clone(), HeaderValue::from_static(code));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slices(chunks: &[&'static [u8]], range: Range<u64>) -> Vec<u8> {
        let chunks: Arc<[Bytes]> = chunks
            .iter()
            .map(|chunk| Bytes::from_static(chunk))
            .collect();
        ChunkSlices {
            chunks,
            chunk_idx: 0,
            chunk_start: 0,
            range,
        }
        .flat_map(|slice| slice.to_vec())
        .collect()
    }

    #[test]
    fn slices_chunk_lists() {
        let chunks: [&[u8]; 3] = [b"abc", b"def", b"ghij"];
        assert_eq!(slices(&chunks, 0..10), b"abcdefghij");
        assert_eq!(slices(&chunks, 2..5), b"cde");
        assert_eq!(slices(&chunks, 3..6), b"def");
        assert_eq!(slices(&chunks, 9..10), b"j");
        assert_eq!(slices(&chunks, 4..4), b"");
    }
}
