//! Findings 4 and 5: the edge health checker follows no redirect, and
//! `/r/{id}/{path}` redirects only to a video's media path under an edge.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Env, Process};

/// The admin key `reel serve` prints on its first start.
pub fn admin_key(server: &Process) -> String {
    let line = server.wait_for_line("created the admin API key", Duration::from_secs(30));
    line.rsplit(' ').next().expect("key").trim().to_string()
}

/// A loopback HTTP server answering every request with `response` (built
/// from its own URL) and counting requests.
async fn spawn_http(
    response: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let own_url = url.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buffer = [0u8; 1024];
            while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n_read) => head.extend_from_slice(&buffer[..n_read]),
                }
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(response(&own_url).as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (url, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_health_check_follows_no_redirect_to_a_canary() {
    let env = Env::sqlite();
    let (server, url) = env.serve_with(0, &[("REEL_STEERING_HEALTH_INTERVAL", "200ms")]);
    let admin = admin_key(&server);
    let (canary, canary_hits) = spawn_http(|_| {
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_string()
    })
    .await;
    let target = format!("{canary}/healthz");
    let (redirector, redirector_hits) = spawn_http(move |_| {
        format!("HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    })
    .await;
    let client = reqwest::Client::new();
    let registered = client
        .post(format!("{url}/v1/edges"))
        .bearer_auth(&admin)
        .json(&json!({"name": "redirecting", "url": redirector}))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while redirector_hits.load(Ordering::SeqCst) < 3 {
        assert!(
            Instant::now() < deadline,
            "the edge was never health-checked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let edges: Value = client
        .get(format!("{url}/v1/edges"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let edge = &edges["edges"][0];
    assert_eq!(edge["name"], "redirecting", "{edges}");
    assert_eq!(edge["checked"], true, "{edges}");
    assert_eq!(edge["healthy"], false, "a 3xx is unhealthy: {edges}");
    assert_eq!(
        canary_hits.load(Ordering::SeqCst),
        0,
        "the redirect target was fetched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redirect_route_is_no_open_redirect() {
    let env = Env::sqlite();
    let (server, url) = env.serve(0);
    let admin = admin_key(&server);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let created: Value = client
        .post(format!("{url}/v1/videos?title=x"))
        .bearer_auth(&admin)
        .body(vec![0u8; 1000])
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("video id").to_string();
    for path in [
        "https:evil.example",
        "https:%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example%2F",
        "javascript:alert(1)",
        "/evil.example/x",
        "%2F%2Fevil.example",
        "..%2F..%2Fv%2Fother",
        "a%5C..%5Cevil",
        "master.m3u8%3Fx=1",
    ] {
        let response = client
            .get(format!("{url}/r/{id}/{path}"))
            .send()
            .await
            .expect("get");
        assert!(
            response.status() == 400 || response.status() == 404,
            "{path}: {}",
            response.status()
        );
        assert!(
            response.headers().get("location").is_none(),
            "{path}: Location {:?}",
            response.headers().get("location")
        );
    }
    let unknown = client
        .get(format!(
            "{url}/r/{}/master.m3u8",
            reel_core::VideoId::new_random()
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(unknown.status(), 404);
    assert!(unknown.headers().get("location").is_none());
    let valid = client
        .get(format!("{url}/r/{id}/v0/seg-00001.m4s"))
        .send()
        .await
        .expect("get");
    assert_eq!(valid.status(), 302);
    let location = valid.headers()["location"].to_str().expect("ascii");
    assert_eq!(location, format!("{url}/v/{id}/v0/seg-00001.m4s"));
}

/// The steered entry points follow the media rules: a private video's
/// `play.m3u8`, `play.mpd`, steering answer and `/r/` redirect are refused
/// without a token (403), as its media are, while a public video's are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steered_entry_points_refuse_a_private_video_without_a_token() {
    let tenants = crate::hostile::Tenants::start();
    let create = |visibility: &'static str| {
        let request = tenants
            .request(
                reqwest::Method::POST,
                &format!("/v1/videos?title=t&visibility={visibility}"),
                &tenants.alice,
            )
            .body(vec![7u8; 4096]);
        async move {
            let response = request.send().await.expect("POST /v1/videos");
            assert_eq!(response.status(), 201);
            let video: Value = response.json().await.expect("JSON");
            video["id"].as_str().expect("id").to_string()
        }
    };
    let private = create("private").await;
    let public = create("public").await;
    let status = |path: String| {
        let request = tenants.http.get(format!("{}{path}", tenants.url));
        async move { request.send().await.expect("GET").status().as_u16() }
    };
    for path in [
        "/v1/videos/{id}/play.m3u8",
        "/v1/videos/{id}/play.mpd",
        "/v1/steering/{id}?proto=hls",
        "/r/{id}/master.m3u8",
        "/r/{id}/t/not.a.token/master.m3u8",
    ] {
        assert_eq!(status(path.replace("{id}", &private)).await, 403, "{path}");
    }
    // The public one is not refused (it has no manifest yet: 404).
    assert_eq!(status(format!("/v1/videos/{public}/play.m3u8")).await, 404);
    assert_ne!(
        status(format!("/v1/steering/{public}?proto=hls")).await,
        403
    );
}

/// A private video's job is hidden like the video: 404 to anyone but its
/// owner and admins (its tasks and errors say what the video is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_videos_job_is_hidden_like_the_video() {
    let tenants = crate::hostile::Tenants::start();
    let response = tenants
        .request(
            reqwest::Method::POST,
            "/v1/videos?title=t&visibility=private",
            &tenants.alice,
        )
        .body(vec![7u8; 4096])
        .send()
        .await
        .expect("POST /v1/videos");
    assert_eq!(response.status(), 201);
    let video: Value = response.json().await.expect("JSON");
    let job = format!("/v1/jobs/{}", video["job_id"].as_str().expect("job id"));
    let anonymous = tenants
        .http
        .get(format!("{}{job}", tenants.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(anonymous.status(), 404);
    assert_eq!(tenants.get(&job, &tenants.mallory).await.0, 404);
    assert_eq!(tenants.get(&job, &tenants.alice).await.0, 200);
    assert_eq!(tenants.get(&job, &tenants.admin).await.0, 200);
}
