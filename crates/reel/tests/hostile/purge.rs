//! Finding 8 and the cap of finding 3: deleting a video (or changing its
//! visibility) purges it on every
//! registered edge (with the purge credential the edge gave when it
//! registered, never listed nor logged), and the edge registry holds
//! `steering.max_edges` edges at most.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::edges::admin_key;
use crate::common::{edge_metric, generated_video, Env};

/// The `reel edge --admin-token` of the test, looked for in every output.
const PURGE_TOKEN: &str = "purge-credential-4f1c9a7e2b";

async fn edges(url: &str, key: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{url}/v1/edges"))
        .bearer_auth(key)
        .send()
        .await
        .expect("edges")
        .json()
        .await
        .expect("json")
}

/// Status and `x-cache` of a GET, body read to the end (so a miss's fill
/// has completed and the next request cannot join it).
async fn fetch(target: &str) -> (StatusCode, String) {
    let response = reqwest::get(target).await.expect("get");
    let cache = response
        .headers()
        .get("x-cache")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let status = response.status();
    response.bytes().await.expect("body");
    (status, cache)
}

/// The body of a GET.
async fn body_of(target: &str) -> String {
    let response = reqwest::get(target).await.expect("get");
    response.text().await.expect("body")
}

/// Polls `condition` until it holds, failing after one second.
async fn within_a_second<F, Fut>(what: &str, condition: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !condition().await {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{what} took over a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Each target is served, and the second time from the edge's cache.
async fn assert_cached(targets: &[&str]) {
    for target in targets {
        assert_eq!(fetch(target).await.0, StatusCode::OK, "{target}");
        assert_eq!(
            fetch(target).await,
            (StatusCode::OK, "HIT".to_string()),
            "{target}"
        );
    }
}

/// Waits until the edge counts a purge after `before` (purges arrive in the
/// background).
async fn wait_for_purge(edge_url: &str, before: u64, server: &crate::common::Process) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while edge_metric(&reqwest::Client::new(), edge_url, "reel_edge_purges_total").await == before {
        assert!(
            Instant::now() < deadline,
            "the edge was never purged: {}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_video_or_making_it_private_purges_it_on_every_registered_edge() {
    let env = Env::sqlite();
    let (server, url) = env.serve(1);
    let key = admin_key(&server);
    let file = generated_video(env.dir.path());
    let video = env.ingest(&url, &key, &file);
    assert_eq!(video["state"], "ready", "{video:#}");
    let id = video["id"].as_str().expect("id").to_string();
    let rendition = video["renditions"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no rendition: {video:#}"))
        .to_string();

    let edge = env.spawn(&[
        "edge",
        "--listen",
        "127.0.0.1:0",
        "--name",
        "purgeable",
        "--upstream",
        &url,
        "--cache-memory",
        "64MiB",
        "--register",
        &url,
        "--api-key",
        &key,
        "--admin-token",
        PURGE_TOKEN,
    ]);
    let edge_url = edge.listening_url();
    let deadline = Instant::now() + Duration::from_secs(20);
    let listed = loop {
        let listed = edges(&url, &key).await;
        if listed["edges"]
            .as_array()
            .is_some_and(|all| all.iter().any(|edge| edge["name"] == "purgeable"))
        {
            break listed;
        }
        assert!(Instant::now() < deadline, "never registered: {listed:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        !listed.to_string().contains(PURGE_TOKEN),
        "GET /v1/edges shows the purge credential: {listed:#}"
    );

    // Cached at the edge: the second request of each is a hit.
    let manifest = format!("{edge_url}/v/{id}/master.m3u8");
    let segment = format!("{edge_url}/v/{id}/{rendition}/seg-00001.m4s");
    assert_cached(&[&manifest, &segment]).await;

    // Made private, the video is purged too: the edge's public copies
    // carried no mark that they need a token.
    let purges_before =
        edge_metric(&reqwest::Client::new(), &edge_url, "reel_edge_purges_total").await;
    let patch = |visibility: &'static str| {
        let url = url.clone();
        let key = key.clone();
        let id = id.clone();
        async move {
            let response = reqwest::Client::new()
                .patch(format!("{url}/v1/videos/{id}"))
                .bearer_auth(&key)
                .json(&json!({ "visibility": visibility }))
                .send()
                .await
                .expect("patch");
            assert_eq!(response.status(), StatusCode::OK);
        }
    };
    patch("private").await;
    wait_for_purge(&edge_url, purges_before, &server).await;
    for target in [&manifest, &segment] {
        let (status, cache) = fetch(target).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{target} is {cache}");
    }
    let purges_before =
        edge_metric(&reqwest::Client::new(), &edge_url, "reel_edge_purges_total").await;
    patch("public").await;
    wait_for_purge(&edge_url, purges_before, &server).await;
    assert_cached(&[&manifest, &segment]).await;

    // A ready video's manifest is kept a day by edges (CDN-Cache-Control),
    // yet a newly published caption rendition shows through the edge within
    // a second of its POST answering: the POST purges every edge.
    assert!(!body_of(&manifest).await.contains("SUBTITLES"));
    let added = reqwest::Client::new()
        .post(format!("{url}/v1/videos/{id}/captions?language=fr"))
        .bearer_auth(&key)
        .body("WEBVTT\n\n00:00.250 --> 00:01.000\nBonjour\n")
        .send()
        .await
        .expect("captions");
    assert_eq!(added.status(), StatusCode::CREATED);
    within_a_second("the caption rendition through the edge", || async {
        body_of(&manifest).await.contains("TYPE=SUBTITLES")
    })
    .await;

    let deleted = reqwest::Client::new()
        .delete(format!("{url}/v1/videos/{id}"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), StatusCode::OK);
    let deleted: Value = deleted.json().await.expect("json");
    assert_eq!(deleted["edges_purging"], 1, "{deleted:#}");

    within_a_second("the deletion through the edge", || async {
        fetch(&manifest).await.0 == StatusCode::NOT_FOUND
            && fetch(&segment).await.0 == StatusCode::NOT_FOUND
    })
    .await;
    assert!(
        edge_metric(
            &reqwest::Client::new(),
            &edge_url,
            "reel_edge_purged_objects_total"
        )
        .await
            >= 2,
        "the manifest and the segment were cached"
    );
    for target in [&manifest, &segment] {
        let (status, cache) = fetch(target).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{target} is {cache}");
    }
    assert!(
        !server.output().contains(PURGE_TOKEN),
        "the server logged the purge credential"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_over_the_cap_or_over_another_edge_are_refused() {
    let env = Env::sqlite();
    let (server, url) = env.serve_with(1, &[("REEL_STEERING_MAX_EDGES", "2")]);
    let key = admin_key(&server);
    let other_key = super::uploader(&env, "other");
    let client = reqwest::Client::new();
    let register = |key: String, spec: Value| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let response = client
                .post(format!("{url}/v1/edges"))
                .bearer_auth(key)
                .json(&spec)
                .send()
                .await
                .expect("register");
            let status = response.status();
            (status, response.text().await.expect("text"))
        }
    };
    for name in ["one", "two"] {
        let spec = json!({"name": name, "url": format!("http://127.0.0.1:9/{name}/")});
        let (status, body) = register(key.clone(), spec).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = register(
        key.clone(),
        json!({"name": "three", "url": "http://127.0.0.1:9/three/"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("steering.max_edges = 2"), "{body}");

    // Repeating a registration is no new edge, so the cap lets it through.
    let (status, body) = register(
        key.clone(),
        json!({"name": "two", "url": "http://127.0.0.1:9/two/"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A non-admin key cannot point an existing edge elsewhere: only
    // admins may register edges at all.
    let (status, body) = register(
        other_key,
        json!({"name": "one", "url": "http://127.0.0.1:9/elsewhere/"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let listed = edges(&url, &key).await;
    let stored: Vec<(&str, &str)> = listed["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|edge| {
            (
                edge["name"].as_str().unwrap_or_default(),
                edge["url"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        stored,
        [
            ("one", "http://127.0.0.1:9/one/"),
            ("two", "http://127.0.0.1:9/two/")
        ],
        "{listed:#}"
    );
}
