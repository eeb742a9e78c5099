//! `reel edge` (the real binary) in front of a small origin that sends the
//! cache headers under test: RFC 9111 3.5 (`Authorization`) and RFC 9213
//! (`CDN-Cache-Control`, the edge's own `Reel-Cache-Control`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::common::Env;

/// Requests the origin saw, by path.
type Seen = Arc<Mutex<HashMap<String, usize>>>;

/// The response headers of each origin path, as (name, value) pairs.
fn headers_of(path: &str) -> &'static [(&'static str, &'static str)] {
    match path {
        "auth-default" => &[("cache-control", "max-age=60")],
        "auth-public" => &[("cache-control", "max-age=60, public")],
        "cdn-beats-cc" => &[
            ("cache-control", "no-store"),
            ("cdn-cache-control", "max-age=60"),
        ],
        "reel-beats-cdn" => &[
            ("cache-control", "max-age=60"),
            ("cdn-cache-control", "max-age=60"),
            ("reel-cache-control", "no-store"),
        ],
        _ => &[],
    }
}

/// Answers `/{path}` with the headers of `headers_of(path)` and a body
/// naming the request's `Authorization` (or "anonymous").
async fn origin_object(
    State(seen): State<Seen>,
    Path(path): Path<String>,
    request: HeaderMap,
) -> impl IntoResponse {
    *seen.lock().expect("seen").entry(path.clone()).or_default() += 1;
    let who = request
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("anonymous")
        .to_string();
    let mut headers = HeaderMap::new();
    for (name, value) in headers_of(&path) {
        headers.insert(*name, value.parse().expect("header value"));
    }
    (StatusCode::OK, headers, format!("for {who}"))
}

struct Setup {
    _env: Env,
    _edge: crate::common::Process,
    edge_url: String,
    seen: Seen,
    _origin: tokio::task::JoinHandle<()>,
}

async fn setup() -> Setup {
    let seen = Seen::default();
    let app = Router::new()
        .route("/{path}", get(origin_object))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind origin");
    let origin_url = format!("http://{}", listener.local_addr().expect("origin address"));
    let origin = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("origin");
    });
    let env = Env::sqlite();
    let edge = env.spawn(&[
        "edge",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &origin_url,
        "--cache-memory",
        "16MiB",
    ]);
    let edge_url = edge.listening_url();
    Setup {
        _env: env,
        _edge: edge,
        edge_url,
        seen,
        _origin: origin,
    }
}

impl Setup {
    /// GET `path` through the edge, with `authorization` if given: status
    /// is 200; returns (x-cache, body, headers).
    async fn get(&self, path: &str, authorization: Option<&str>) -> (String, String, HeaderMap) {
        // A client of its own for every request: no connection reuse.
        let mut request = reqwest::Client::new().get(format!("{}/{path}", self.edge_url));
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let response = request.send().await.expect("edge request");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        let cache = headers
            .get("x-cache")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (cache, response.text().await.expect("body"), headers)
    }

    fn origin_count(&self, path: &str) -> usize {
        self.seen
            .lock()
            .expect("seen")
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_authorization_is_never_answered_from_another_clients_stored_response() {
    let edge = setup().await;
    let path = "auth-default";
    // Alice's answer (max-age=60, not public) is for her alone: not stored.
    let (_, body, _) = edge.get(path, Some("Bearer alice")).await;
    assert_eq!(body, "for Bearer alice");
    let (cache, body, _) = edge.get(path, None).await;
    assert_eq!((cache.as_str(), body.as_str()), ("MISS", "for anonymous"));
    // The anonymous answer is stored and shared with other anonymous clients...
    let (cache, body, _) = edge.get(path, None).await;
    assert_eq!((cache.as_str(), body.as_str()), ("HIT", "for anonymous"));
    // ...but never given to a request with Authorization, nor Alice's to Bob.
    let (_, body, _) = edge.get(path, Some("Bearer bob")).await;
    assert_eq!(body, "for Bearer bob");
    let (_, body, _) = edge.get(path, Some("Bearer alice")).await;
    assert_eq!(body, "for Bearer alice");
    assert_eq!(edge.origin_count(path), 4, "alice, anonymous, bob, alice");

    // With `public` the origin allows sharing Alice's answer: stored, and
    // anonymous clients get it; Bob, with Authorization, still asks the origin.
    let path = "auth-public";
    let (_, body, _) = edge.get(path, Some("Bearer alice")).await;
    assert_eq!(body, "for Bearer alice");
    let (cache, body, _) = edge.get(path, None).await;
    assert_eq!((cache.as_str(), body.as_str()), ("HIT", "for Bearer alice"));
    let (_, body, _) = edge.get(path, Some("Bearer bob")).await;
    assert_eq!(body, "for Bearer bob");
    assert_eq!(edge.origin_count(path), 2, "alice, bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdn_cache_control_beats_cache_control_at_the_edge_and_viewers_get_the_original() {
    let edge = setup().await;
    // Cache-Control: no-store for browsers, CDN-Cache-Control: max-age=60
    // for the edge: stored, and the viewer still sees no-store.
    let path = "cdn-beats-cc";
    for expected in ["MISS", "HIT", "HIT"] {
        let (cache, body, headers) = edge.get(path, None).await;
        assert_eq!((cache.as_str(), body.as_str()), (expected, "for anonymous"));
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["cdn-cache-control"], "max-age=60");
    }
    assert_eq!(edge.origin_count(path), 1);
    // The edge's own field (Reel-Cache-Control) beats both.
    let path = "reel-beats-cdn";
    for _ in 0..2 {
        let (cache, _, headers) = edge.get(path, None).await;
        assert_eq!(cache, "BYPASS");
        assert_eq!(headers["cache-control"], "max-age=60");
    }
    assert_eq!(edge.origin_count(path), 2);
}
