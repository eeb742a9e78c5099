//! Test harness: a small axum origin that counts requests, can answer
//! slowly, fail or stop, and helpers that start edges on 127.0.0.1:0.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use reel_edge::policy::PolicyKind;
use reel_edge::{EdgeConfig, EdgeError};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// One object the origin serves.
#[derive(Clone)]
pub struct Object {
    pub body: Bytes,
    pub cache_control: String,
    pub etag: Option<String>,
    pub status: StatusCode,
    /// Send the body in chunks of this size with this delay before each.
    pub slow: Option<(usize, Duration)>,
    /// Send without Content-Length (chunked transfer coding).
    pub chunked: bool,
}

impl Object {
    pub fn new(body: impl Into<Bytes>, cache_control: &str) -> Object {
        Object {
            body: body.into(),
            cache_control: cache_control.to_owned(),
            etag: None,
            status: StatusCode::OK,
            slow: None,
            chunked: false,
        }
    }

    pub fn with_etag(mut self, etag: &str) -> Object {
        self.etag = Some(format!("\"{etag}\""));
        self
    }

    pub fn slow(mut self, chunk: usize, delay: Duration) -> Object {
        self.slow = Some((chunk, delay));
        self
    }

    pub fn chunked(mut self) -> Object {
        self.chunked = true;
        self.slow = self.slow.or(Some((4096, Duration::ZERO)));
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Object {
        self.status = status;
        self
    }
}

/// A request as the origin saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub status: StatusCode,
}

#[derive(Default)]
pub struct OriginState {
    objects: Mutex<HashMap<String, Object>>,
    seen: Mutex<Vec<Seen>>,
    failing: AtomicBool,
    finished_at: Mutex<HashMap<String, Instant>>,
}

pub struct Origin {
    pub addr: SocketAddr,
    pub state: Arc<OriginState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Origin {
    pub async fn start() -> Origin {
        let state = Arc::new(OriginState::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().expect("origin address");
        let router = Router::new()
            .fallback(origin_handler)
            .with_state(state.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Origin {
            addr,
            state,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn put(&self, path: &str, object: Object) {
        self.state
            .objects
            .lock()
            .expect("objects lock")
            .insert(path.to_owned(), object);
    }

    /// Requests the origin got for `path`.
    pub fn requests(&self, path: &str) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .expect("seen lock")
            .iter()
            .filter(|seen| seen.path == path)
            .cloned()
            .collect()
    }

    pub fn count(&self, path: &str) -> usize {
        self.requests(path).len()
    }

    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    pub fn finished_at(&self, path: &str) -> Option<Instant> {
        self.state
            .finished_at
            .lock()
            .expect("finished lock")
            .get(path)
            .copied()
    }

    /// Stops the origin: its port refuses connections afterwards.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                panic!("origin did not stop");
            }
        }
    }
}

/// Headers an attacker might use to make the origin vary its answer.
const POISON_HEADERS: [&str; 6] = [
    "x-forwarded-host",
    "x-http-method-override",
    "x-original-url",
    "x-forwarded-scheme",
    "cookie",
    "x-evil",
];

async fn origin_handler(State(state): State<Arc<OriginState>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let headers = request.headers().clone();
    let mut status = StatusCode::OK;
    let response = if state.failing.load(Ordering::SeqCst) {
        status = StatusCode::SERVICE_UNAVAILABLE;
        // Like reel's origin, errors carry no Cache-Control.
        plain(status, "", Bytes::from_static(b"origin is failing"))
    } else {
        let object = state
            .objects
            .lock()
            .expect("objects lock")
            .get(&path)
            .cloned();
        match object {
            None => {
                status = StatusCode::NOT_FOUND;
                plain(status, "", Bytes::from_static(b"not found"))
            }
            Some(object) => {
                let poisoned = POISON_HEADERS
                    .iter()
                    .find(|name| headers.contains_key(**name));
                let not_modified = match (&object.etag, headers.get(header::IF_NONE_MATCH)) {
                    (Some(etag), Some(candidate)) => candidate.as_bytes() == etag.as_bytes(),
                    _ => false,
                };
                if let Some(name) = poisoned {
                    plain(
                        StatusCode::OK,
                        &object.cache_control,
                        Bytes::from(format!("POISONED by {name}")),
                    )
                } else if not_modified {
                    status = StatusCode::NOT_MODIFIED;
                    let mut response = plain(status, &object.cache_control, Bytes::new());
                    response.headers_mut().remove(header::CONTENT_TYPE);
                    if let Some(etag) = &object.etag {
                        response
                            .headers_mut()
                            .insert(header::ETAG, HeaderValue::from_str(etag).expect("etag"));
                    }
                    response
                } else {
                    status = object.status;
                    object_response(&state, &path, object)
                }
            }
        }
    };
    state.seen.lock().expect("seen lock").push(Seen {
        path,
        query,
        headers,
        status,
    });
    response
}

fn plain(status: StatusCode, cache_control: &str, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if !cache_control.is_empty() {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_str(cache_control).expect("cache control"),
        );
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn object_response(state: &Arc<OriginState>, path: &str, object: Object) -> Response {
    let length = object.body.len();
    let body = match object.slow {
        None => Body::from(object.body.clone()),
        Some((chunk_size, delay)) => {
            let state = state.clone();
            let path = path.to_owned();
            let chunks: Vec<Bytes> = (0..length)
                .step_by(chunk_size.max(1))
                .map(|start| object.body.slice(start..(start + chunk_size).min(length)))
                .collect();
            let stream = futures::stream::unfold(
                (chunks.into_iter(), state, path),
                move |(mut chunks, state, path)| async move {
                    let chunk = chunks.next()?;
                    tokio::time::sleep(delay).await;
                    // hyper stops polling once Content-Length bytes are out,
                    // so the last chunk marks the end of sending.
                    if chunks.len() == 0 {
                        state
                            .finished_at
                            .lock()
                            .expect("finished lock")
                            .insert(path.clone(), Instant::now());
                    }
                    Some((Ok::<_, std::io::Error>(chunk), (chunks, state, path)))
                },
            );
            Body::from_stream(stream)
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = object.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&object.cache_control).expect("cache control"),
    );
    if !object.chunked {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("video/iso.segment"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if let Some(etag) = &object.etag {
        headers.insert(header::ETAG, HeaderValue::from_str(etag).expect("etag"));
    }
    response
}

pub fn edge_config(name: &str, upstream: &str) -> EdgeConfig {
    EdgeConfig {
        name: name.to_owned(),
        upstream: url::Url::parse(upstream).expect("upstream url"),
        location: Some((48.85, 2.35)),
        cache_memory: 64 * 1024 * 1024,
        cache_disk: 0,
        disk_dir: None,
        admin_token: Some(ADMIN_TOKEN.to_owned()),
        upstream_timeout: Duration::from_secs(5),
        eviction: PolicyKind::S3Fifo,
        max_object_fraction: 0.25,
        error_ttl: Duration::from_secs(1),
        targeted_cache_control: "Reel-Cache-Control".to_owned(),
        vary_headers: Vec::new(),
        forward_headers: Vec::new(),
        max_prefetches: 4,
        access: Default::default(),
        http: reel_http::server::HttpLimits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(30),
        },
        tls: None,
        upstream_ca: None,
    }
}

pub struct RunningEdge {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), EdgeError>>>,
}

impl RunningEdge {
    pub async fn start(config: EdgeConfig) -> RunningEdge {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind edge");
        let addr = listener.local_addr().expect("edge address");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(reel_edge::serve(listener, config, async move {
            let _ = stopped.await;
        }));
        RunningEdge {
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn metrics(&self, client: &reqwest::Client) -> String {
        client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics request")
            .text()
            .await
            .expect("metrics body")
    }

    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("edge stops in time")
                .expect("edge task");
            result.expect("edge served without error");
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("test client")
}

/// The value of one sample line (`name{labels}`) of a metrics text.
pub fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse::<f64>().ok())?
        })
        .unwrap_or_else(|| panic!("no metric {sample} in:\n{text}"))
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Deterministic pseudo-random bytes.
pub fn pseudo_random_bytes(length: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut bytes = Vec::with_capacity(length);
    while bytes.len() < length {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(length);
    Bytes::from(bytes)
}

pub fn temp_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("edge-cache");
    (dir, path)
}

/// Polls `condition` every 10 ms for up to 5 s.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}
