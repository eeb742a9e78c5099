//! End-to-end tests of the edge over real HTTP on 127.0.0.1: an axum origin,
//! one or two edges in front of it, and reqwest clients.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use bytes::Bytes;
use common::{
    client, edge_config, eventually, metric, pseudo_random_bytes, sha256, temp_dir, Object, Origin,
    RunningEdge, ADMIN_TOKEN,
};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn x_cache(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-cache")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

async fn get(client: &reqwest::Client, url: &str) -> (StatusCode, String, Bytes) {
    let response = client.get(url).send().await.expect("request");
    let status = response.status();
    let cache = x_cache(&response);
    let body = response.bytes().await.expect("body");
    (status, cache, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_origin_fetch_for_100_concurrent_cold_requests_through_a_shield() {
    let origin = Origin::start().await;
    // 1 MiB in 16 chunks, 60 ms apart: the fill takes about a second.
    let body = pseudo_random_bytes(1024 * 1024, 1);
    let expected = sha256(&body);
    origin.put(
        "/v/a/seg-1.m4s",
        Object::new(body.clone(), IMMUTABLE)
            .with_etag("s1")
            .slow(64 * 1024, Duration::from_millis(60)),
    );
    let mut shield = RunningEdge::start(edge_config("shield", &origin.url())).await;
    let mut edge =
        RunningEdge::start(edge_config("edge", &format!("http://{}", shield.addr))).await;
    let client = client();
    let url = edge.url("/v/a/seg-1.m4s");
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut response = client.get(&url).send().await.expect("request");
            assert_eq!(response.status(), StatusCode::OK);
            let cache = x_cache(&response);
            let mut bytes = Vec::new();
            let mut first_chunk_at = None;
            while let Some(chunk) = response.chunk().await.expect("chunk") {
                if first_chunk_at.is_none() && !chunk.is_empty() {
                    first_chunk_at = Some(Instant::now());
                }
                bytes.extend_from_slice(&chunk);
            }
            (sha256(&bytes), cache, first_chunk_at)
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("client task"));
    }
    assert_eq!(
        origin.count("/v/a/seg-1.m4s"),
        1,
        "exactly one origin fetch"
    );
    let origin_finished = origin
        .finished_at("/v/a/seg-1.m4s")
        .expect("origin finished sending");
    let mut n_early = 0;
    for (hash, _, first_chunk_at) in &results {
        assert_eq!(hash, &expected, "every waiter gets the same bytes");
        if first_chunk_at.is_some_and(|at| at < origin_finished) {
            n_early += 1;
        }
    }
    let n_miss = results
        .iter()
        .filter(|(_, cache, _)| cache == "MISS")
        .count();
    let n_coalesced = results
        .iter()
        .filter(|(_, cache, _)| cache == "COALESCED")
        .count();
    eprintln!("{n_early}/100 clients got bytes before the origin finished; {n_miss} MISS, {n_coalesced} COALESCED");
    assert!(
        n_early >= 50,
        "only {n_early} of 100 clients streamed during the fill"
    );
    assert_eq!(n_miss, 1);
    assert_eq!(n_coalesced, 99);
    let edge_metrics = edge.metrics(&client).await;
    assert_eq!(
        metric(&edge_metrics, "reel_edge_upstream_requests_total"),
        1.0
    );
    assert_eq!(
        metric(&edge_metrics, "reel_edge_coalesced_waiters_total"),
        99.0
    );
    let shield_metrics = shield.metrics(&client).await;
    assert_eq!(
        metric(&shield_metrics, "reel_edge_upstream_requests_total"),
        1.0
    );
    // Both tiers of the chain now hold it.
    let (status, cache, again) = get(&client, &url).await;
    assert_eq!((status, cache.as_str()), (StatusCode::OK, "HIT"));
    assert_eq!(sha256(&again), expected);
    edge.stop().await;
    shield.stop().await;
}

#[tokio::test]
async fn answers_ranges_from_the_full_object() {
    let origin = Origin::start().await;
    let body = pseudo_random_bytes(10_000, 2);
    origin.put(
        "/v/a/seg.m4s",
        Object::new(body.clone(), IMMUTABLE).with_etag("r"),
    );
    let mut edge = RunningEdge::start(edge_config("edge", &origin.url())).await;
    let client = client();
    let url = edge.url("/v/a/seg.m4s");

    let response = client
        .get(&url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(x_cache(&response), "MISS");
    assert_eq!(response.headers()["content-range"], "bytes 100-199/10000");
    assert_eq!(response.bytes().await.expect("body"), body.slice(100..200));
    let seen = origin.requests("/v/a/seg.m4s");
    assert_eq!(seen.len(), 1);
    assert!(
        !seen[0].headers.contains_key("range"),
        "a miss fetches the full object"
    );

    let response = client
        .get(&url)
        .header("range", "bytes=-10")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(x_cache(&response), "HIT");
    assert_eq!(response.headers()["content-range"], "bytes 9990-9999/10000");
    assert_eq!(response.bytes().await.expect("body"), body.slice(9990..));

    let response = client
        .get(&url)
        .header("range", "bytes=9000-")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["content-length"], "1000");
    assert_eq!(response.bytes().await.expect("body"), body.slice(9000..));

    let response = client
        .get(&url)
        .header("range", "bytes=20000-")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(response.headers()["content-range"], "bytes */10000");

    // A stale If-Range gets the whole object.
    let response = client
        .get(&url)
        .header("range", "bytes=0-9")
        .header("if-range", "\"other\"")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.expect("body"), body);

    // A full GET after range requests is the full object, not a 206.
    let (status, cache, full) = get(&client, &url).await;
    assert_eq!((status, cache.as_str()), (StatusCode::OK, "HIT"));
    assert_eq!(full, body);
    assert_eq!(origin.count("/v/a/seg.m4s"), 1);
    edge.stop().await;
}

#[tokio::test]
async fn range_requests_join_a_fill_in_flight() {
    let origin = Origin::start().await;
    let body = pseudo_random_bytes(256 * 1024, 3);
    origin.put(
        "/v/a/slow.m4s",
        Object::new(body.clone(), IMMUTABLE).slow(32 * 1024, Duration::from_millis(30)),
    );
    let mut edge = RunningEdge::start(edge_config("edge", &origin.url())).await;
    let client = client();
    let url = edge.url("/v/a/slow.m4s");
    let full = tokio::spawn({
        let client = client.clone();
        let url = url.clone();
        async move { get(&client, &url).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let response = client
        .get(&url)
        .header("range", "bytes=40000-40099")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(x_cache(&response), "COALESCED");
    assert_eq!(
        response.bytes().await.expect("body"),
        body.slice(40000..40100)
    );
    let (status, _, full_body) = full.await.expect("full request");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(full_body, body);
    assert_eq!(origin.count("/v/a/slow.m4s"), 1);
    edge.stop().await;
}

#[tokio::test]
async fn answers_conditional_gets_and_head_from_cache() {
    let origin = Origin::start().await;
    origin.put(
        "/v/a/init.mp4",
        Object::new("init-bytes", IMMUTABLE).with_etag("init1"),
    );
    let mut edge = RunningEdge::start(edge_config("edge", &origin.url())).await;
    let client = client();
    let url = edge.url("/v/a/init.mp4");

    let response = client.head(&url).send().await.expect("head");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-length"], "10");
    assert_eq!(response.bytes().await.expect("body").len(), 0);

    let (_, cache, body) = get(&client, &url).await;
    assert_eq!((cache.as_str(), &body[..]), ("HIT", &b"init-bytes"[..]));

    let response = client
        .get(&url)
        .header("if-none-match", "\"init1\"")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()["etag"], "\"init1\"");

    let response = client
        .get(&url)
        .header("if-none-match", "\"older\"")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        origin.count("/v/a/init.mp4"),
        1,
        "conditionals answered by the edge"
    );
    let seen = origin.requests("/v/a/init.mp4");
    assert!(!seen[0].headers.contains_key("if-none-match"));
    edge.stop().await;
}

#[tokio::test]
async fn revalidates_stale_objects_with_304() {
    let origin = Origin::start().await;
    origin.put(
        "/v/a/master.m3u8",
        Object::new("#EXTM3U v1", "public, max-age=1").with_etag("m1"),
    );
    let mut edge = RunningEdge::start(edge_config("edge", &origin.url())).await;
    let client = client();
    let url = edge.url("/v/a/master.m3u8");
    let (_, cache, _) = get(&client, &url).await;
    assert_eq!(cache, "MISS");
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let response = client.get(&url).send().await.expect("request");
    assert_eq!(x_cache(&response), "REVALIDATED");
    assert_eq!(response.headers()["age"], "0");
    assert_eq!(response.bytes().await.expect("body"), "#EXTM3U v1");
    let seen = origin.requests("/v/a/master.m3u8");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].headers["if-none-match"], "\"m1\"");
    assert_eq!(seen[1].status, StatusCode::NOT_MODIFIED);

    let (_, cache, _) = get(&client, &url).await;
    assert_eq!(cache, "HIT", "a 304 refreshes the entry");
    let metrics = edge.metrics(&client).await;
    assert_eq!(
        metric(
            &metrics,
            "reel_edge_revalidations_total{result=\"not_modified\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&metrics, "reel_edge_requests_total{cache=\"revalidated\"}"),
        1.0
    );
    edge.stop().await;
}

#[tokio::test]
async fn serves_stale_while_revalidating_in_the_background() {
    let origin = Origin::start().await;
    let path = "/v/a/live.m3u8";
    origin.put(
        path,
        Object::new("v1", "max-age=1, stale-while-revalidate=30").with_etag("1"),
    );
    let mut edge = RunningEdge::start(edge_config("edge", &origin.url())).await;
    let client = client();
    let url = edge.url(path);
    get(&client, &url).await;
    // The new version is slow: a stale answer must not wait for it.
    origin.put(
        path,
        Object::new("v2", "max-age=1, stale-while-revalidate=30")
            .with_etag("2")
            .slow(1, Duration::from_millis(400)),
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let started = Instant::now();
    let (status, cache, body) = get(&client, &url).await;
    assert_eq!(
        (status, cache.as_str(), &body[..]),
        (StatusCode::OK, "STALE", &b"v1"[..])
    );
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "stale answer was not immediate"
    );
    // Concurrent stale requests share the one background refresh.
    let (_, cache, _) = get(&client, &url).await;
    assert_eq!(cache, "STALE");
    eventually("background refresh", || {
        let client = client.clone();
        let url = url.clone();
        async move { get(&client, &url).await.2 == "v2" }
    })
    .await;
    assert_eq!(origin.count(path), 2);
    edge.stop().await;
}

#[tokio::test]
async fn serves_stale_if_error_within_the_window_only() {
    let mut origin = Origin::start().await;
    let path = "/v/a/seg-9.m4s";
    origin.put(
        path,
        Object::new("segment", "max-age=1, stale-if-error=2").with_etag("9"),
    );
    let mut edge = RunningEdge::start(edge_config("edge", &origin.url())).await;
    let client = client();
    let url = edge.url(path);
    get(&client, &url).await;

    // A 5xx counts as an error.
    origin.set_failing(true);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, cache, body) = get(&client, &url).await;
    assert_eq!(
        (status, cache.as_str(), &body[..]),
        (StatusCode::OK, "STALE", &b"segment"[..])
    );

    // Past max-age + stale-if-error, an error status shows, with a reason.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let response = client.get(&url).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(response.headers()["x-edge-error"], "upstream_error_status");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let message = response.text().await.expect("body");
    assert!(message.contains("stale-if-error"), "{message}");

    // An origin that is gone is a disconnection (RFC 9111 4.2.4): the
    // stale copy stands in past the stale-if-error window too.
    origin.stop().await;
    let (status, cache, body) = get(&client, &url).await;
    assert_eq!(
        (status, cache.as_str(), &body[..]),
        (StatusCode::OK, "STALE", &b"segment"[..])
    );
    let metrics = edge.metrics(&client).await;
    assert_eq!(
        metric(
            &metrics,
            "reel_edge_stale_served_total{reason=\"if_error\"}"
        ),
        2.0
    );
    edge.stop().await;
}

#[tokio::test]
async fn never_caches_no_store_private_or_5xx_without_freshness() {
    let origin = Origin::start().await;
    origin.put("/no-store", Object::new("a", "no-store"));
    origin.put("/private", Object::new("b", "private, max-age=60"));
    origin.put(
        "/broken",
        Object::new("c", "").with_status(StatusCode::INTERNAL_SERVER_ERROR),
    );
    // RFC 9111 3: any final status may be stored when its freshness is explicit.
    origin.put(
        "/broken-fresh",
        Object::new("d", "max-age=60").with_status(StatusCode::INTERNAL_SERVER_ERROR),
    );
    let mut edge = RunningEdge::start(edge_config("edge", &origin.url())).await;
    let client = client();
    for _ in 0..3 {
        let (status, cache, body) = get(&client, &edge.url("/no-store")).await;
        assert_eq!(
            (status, cache.as_str(), &body[..]),
            (StatusCode::OK, "BYPASS", &b"a"[..])
        );
        let (_, cache, _) = get(&client, &edge.url("/private")).await;
        assert_eq!(cache, "BYPASS");
        let (status, _, body) = get(&client, &edge.url("/broken")).await;
        assert_eq!(
            (status, &body[..]),
            (StatusCode::INTERNAL_SERVER_ERROR, &b"c"[..])
        );
    }
    for expected in ["MISS", "HIT"] {
        let (status, cache, body) = get(&client, &edge.url("/broken-fresh")).await;
        assert_eq!(
            (status, cache.as_str(), &body[..]),
            (StatusCode::INTERNAL_SERVER_ERROR, expected, &b"d"[..])
        );
    }
    assert_eq!(origin.count("/no-store"), 3);
    assert_eq!(origin.count("/private"), 3);
    assert_eq!(origin.count("/broken"), 3);
    assert_eq!(origin.count("/broken-fresh"), 1);
    edge.stop().await;
}

#[tokio::test]
async fn caches_404_only_briefly() {
    let origin = Origin::start().await;
    let mut edge = RunningEdge::start(edge_config("edge", &origin.url())).await;
    let client = client();
    let url = edge.url("/v/a/not-yet.m3u8");
    // The origin's 404 has no freshness; the edge keeps it for error_ttl (1 s).
    let (status, cache, _) = get(&client, &url).await;
    assert_eq!((status, cache.as_str()), (StatusCode::NOT_FOUND, "MISS"));
    let (status, cache, _) = get(&client, &url).await;
    assert_eq!((status, cache.as_str()), (StatusCode::NOT_FOUND, "HIT"));
    origin.put("/v/a/not-yet.m3u8", Object::new("#EXTM3U", "max-age=2"));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, _, body) = get(&client, &url).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"#EXTM3U"[..]));
    assert_eq!(origin.count("/v/a/not-yet.m3u8"), 2);
    edge.stop().await;
}

#[tokio::test]
async fn cache_poisoning_attempts_fail() {
    let origin = Origin::start().await;
    origin.put("/v/a/poison.m3u8", Object::new("clean", "max-age=60"));
    let mut edge = RunningEdge::start(edge_config("edge", &origin.url())).await;
    let attacker = client();
    let url = edge.url("/v/a/poison.m3u8");
    let attacks: [(&str, &str); 7] = [
        ("x-forwarded-host", "evil.example"),
        ("x-http-method-override", "DELETE"),
        ("x-original-url", "/admin"),
        ("x-forwarded-scheme", "nothttps"),
        ("cookie", "session=attacker"),
        ("x-evil", "\u{1}".trim_start_matches('\u{1}')),
        ("host", "evil.example"),
    ];
    for (name, value) in attacks {
        let response = attacker
            .get(format!("{url}?CMCD=bl%3D1&_HLS_pathway=x"))
            .header(name, value)
            .header("range", "bytes=0-1")
            .send()
            .await
            .expect("attack request");
        assert_ne!(response.text().await.expect("body"), "POISONED", "{name}");
    }
    let victim = client();
    let (status, _, body) = get(&victim, &url).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"clean"[..]));
    for seen in origin.requests("/v/a/poison.m3u8") {
        assert_eq!(seen.query, None, "unkeyed parameters are not forwarded");
        for name in [
            "x-forwarded-host",
            "x-http-method-override",
            "x-original-url",
            "cookie",
            "range",
        ] {
            assert!(
                !seen.headers.contains_key(name),
                "{name} reached the origin"
            );
        }
        assert_eq!(
            seen.headers["host"].to_str().ok(),
            Some(origin.addr.to_string().as_str())
        );
    }
    assert_eq!(
        origin.count("/v/a/poison.m3u8"),
        1,
        "every variant shares one key"
    );
    // A method-override POST is passed through, uncached: not a way in either.
    let response = attacker
        .post(&url)
        .header("x-http-method-override", "GET")
        .body("x")
        .send()
        .await
        .expect("post");
    assert_eq!(response.headers()["x-cache"].to_str().ok(), Some("BYPASS"));

    // The POST reached the origin (with its headers, as a pass-through)
    // and invalidated the key; the next GET is clean again.
    let (status, _, body) = get(&victim, &url).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"clean"[..]));
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_bounds_hold_under_ten_times_the_capacity() {
    let origin = Origin::start().await;
    let object_size = 64 * 1024;
    let n_objects = 160; // 10 MiB against a 1 MiB memory tier
    for object_idx in 0..n_objects {
        origin.put(
            &format!("/v/load/{object_idx}.m4s"),
            Object::new(
                pseudo_random_bytes(object_size, object_idx as u64),
                IMMUTABLE,
            ),
        );
    }
    let (_temp, disk_dir) = temp_dir();
    let mut config = edge_config("edge", &origin.url());
    config.cache_memory = 1024 * 1024;
    config.cache_disk = 2 * 1024 * 1024;
    config.disk_dir = Some(disk_dir.clone());
    config.max_object_fraction = 0.125;
    let mut edge = RunningEdge::start(config).await;
    let client = client();

    let stop_sampling = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = tokio::spawn({
        let client = client.clone();
        let url = edge.url("/metrics");
        let stop = stop_sampling.clone();
        async move {
            let (mut max_memory, mut max_disk, mut n_samples) = (0.0f64, 0.0f64, 0);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let text = client
                    .get(&url)
                    .send()
                    .await
                    .expect("metrics")
                    .text()
                    .await
                    .expect("text");
                max_memory =
                    max_memory.max(metric(&text, "reel_edge_resident_bytes{tier=\"memory\"}"));
                max_disk = max_disk.max(metric(&text, "reel_edge_resident_bytes{tier=\"disk\"}"));
                n_samples += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (max_memory, max_disk, n_samples)
        }
    });
    for _round in 0..3 {
        let mut workers = Vec::new();
        for worker_idx in 0..16 {
            let client = client.clone();
            let base = edge.url("/v/load/");
            workers.push(tokio::spawn(async move {
                for object_idx in (worker_idx..n_objects).step_by(16) {
                    // Each cold object is followed by one of four hot ones.
                    for object_idx in [object_idx, object_idx % 4] {
                        let (status, _, body) =
                            get(&client, &format!("{base}{object_idx}.m4s")).await;
                        assert_eq!(status, StatusCode::OK);
                        assert_eq!(body, pseudo_random_bytes(object_size, object_idx as u64));
                    }
                }
            }));
        }
        for worker in workers {
            worker.await.expect("worker");
        }
    }
    stop_sampling.store(true, std::sync::atomic::Ordering::SeqCst);
    let (max_memory, max_disk, n_samples) = sampler.await.expect("sampler");
    let metrics = edge.metrics(&client).await;
    eprintln!(
        "{n_samples} samples: max resident memory {max_memory} / 1048576, disk {max_disk} / 2097152; hit ratio {}",
        metric(&metrics, "reel_edge_hit_ratio")
    );
    assert!(n_samples > 10);
    assert!(
        max_memory >= 512.0 * 1024.0,
        "the load never filled the memory tier"
    );
    assert!(
        metric(&metrics, "reel_edge_hit_ratio") > 0.3,
        "hot objects should stay cached"
    );
    assert!(
        max_memory <= 1024.0 * 1024.0,
        "memory tier over its bound: {max_memory}"
    );
    assert!(
        max_disk <= 2.0 * 1024.0 * 1024.0,
        "disk tier over its bound: {max_disk}"
    );
    assert!(metric(&metrics, "reel_edge_evictions_total{tier=\"memory\"}") > 0.0);
    assert!(metric(&metrics, "reel_edge_disk_writes_total{result=\"written\"}") > 0.0);
    let on_disk: u64 = std::fs::read_dir(&disk_dir)
        .expect("disk dir")
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|metadata| metadata.len())
        .sum();
    assert!(on_disk <= 2 * 1024 * 1024, "{on_disk} bytes of cache files");
    edge.stop().await;
}

#[tokio::test]
async fn serves_from_the_disk_tier_after_memory_eviction() {
    let origin = Origin::start().await;
    for object_idx in 0..8 {
        origin.put(
            &format!("/v/d/{object_idx}.m4s"),
            Object::new(pseudo_random_bytes(100_000, 100 + object_idx), IMMUTABLE),
        );
    }
    let (_temp, disk_dir) = temp_dir();
    let mut config = edge_config("edge", &origin.url());
    config.cache_memory = 300_000;
    config.cache_disk = 10_000_000;
    config.disk_dir = Some(disk_dir);
    config.max_object_fraction = 0.5;
    let mut edge = RunningEdge::start(config).await;
    let client = client();
    for object_idx in 0..8 {
        get(&client, &edge.url(&format!("/v/d/{object_idx}.m4s"))).await;
    }
    eventually("disk writes", || {
        let client = client.clone();
        let edge_url = edge.url("/metrics");
        async move {
            let text = client
                .get(&edge_url)
                .send()
                .await
                .expect("m")
                .text()
                .await
                .expect("t");
            metric(&text, "reel_edge_objects{tier=\"disk\"}") == 8.0
        }
    })
    .await;
    // Object 0 left memory long ago; it comes from disk, ranges too.
    let (status, cache, body) = get(&client, &edge.url("/v/d/0.m4s")).await;
    assert_eq!((status, cache.as_str()), (StatusCode::OK, "HIT"));
    assert_eq!(body, pseudo_random_bytes(100_000, 100));
    let response = client
        .get(edge.url("/v/d/0.m4s"))
        .header("range", "bytes=50000-50009")
        .send()
        .await
        .expect("range");
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        response.bytes().await.expect("body"),
        pseudo_random_bytes(100_000, 100).slice(50000..50010)
    );
    assert_eq!(origin.count("/v/d/0.m4s"), 1);
    edge.stop().await;
}

#[tokio::test]
async fn cmcd_next_object_is_prefetched() {
    let origin = Origin::start().await;
    for segment_idx in 1..=3 {
        origin.put(
            &format!("/v/a/720p/seg-{segment_idx}.m4s"),
            Object::new(format!("segment {segment_idx}"), IMMUTABLE),
        );
    }
    let mut edge = RunningEdge::start(edge_config("edge", &origin.url())).await;
    let client = client();
    let response = client
        .get(edge.url(
            "/v/a/720p/seg-1.m4s?CMCD=bl%3D1200%2Cbr%3D3000%2Cmtp%3D25000%2Cnor%3D%22seg-2.m4s%22%2Cot%3Dv%2Csid%3D%22session-1%22%2Ccid%3D%22video-a%22",
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    eventually("prefetch of seg-2", || async {
        origin.count("/v/a/720p/seg-2.m4s") == 1
    })
    .await;
    eventually("prefetch stored", || {
        let client = client.clone();
        let url = edge.url("/metrics");
        async move {
            let text = client
                .get(&url)
                .send()
                .await
                .expect("m")
                .text()
                .await
                .expect("t");
            metric(&text, "reel_edge_inflight_fills") == 0.0
        }
    })
    .await;
    let (_, cache, body) = get(&client, &edge.url("/v/a/720p/seg-2.m4s")).await;
    assert_eq!((cache.as_str(), &body[..]), ("HIT", &b"segment 2"[..]));

    // The same through CMCD headers.
    client
        .get(edge.url("/v/a/720p/seg-2.m4s"))
        .header("cmcd-request", "bl=800,nor=\"seg-3.m4s\"")
        .header("cmcd-session", "sid=\"session-1\",sf=h")
        .send()
        .await
        .expect("request");
    eventually("prefetch of seg-3", || async {
        origin.count("/v/a/720p/seg-3.m4s") == 1
    })
    .await;
    eventually("prefetch stored", || {
        let client = client.clone();
        let url = edge.url("/metrics");
        async move {
            let text = client
                .get(&url)
                .send()
                .await
                .expect("m")
                .text()
                .await
                .expect("t");
            metric(&text, "reel_edge_inflight_fills") == 0.0
        }
    })
    .await;
    let (_, cache, _) = get(&client, &edge.url("/v/a/720p/seg-3.m4s")).await;
    assert_eq!(cache, "HIT");
    assert_eq!(origin.count("/v/a/720p/seg-3.m4s"), 1);

    let sessions: serde_json::Value = client
        .get(edge.url("/_edge/sessions"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("sessions")
        .json()
        .await
        .expect("json");
    let session = &sessions["sessions"]["session-1"];
    assert_eq!(session["requests"], 2);
    assert_eq!(session["content_id"], "video-a");
    assert_eq!(session["min_buffer_ms"], 800);
    let metrics = edge.metrics(&client).await;
    assert_eq!(
        metric(&metrics, "reel_edge_prefetches_total{result=\"started\"}"),
        2.0
    );
    assert_eq!(metric(&metrics, "reel_edge_cmcd_sessions"), 1.0);
    edge.stop().await;
}

#[tokio::test]
async fn purge_needs_the_token_and_removes_a_prefix_from_both_tiers() {
    let origin = Origin::start().await;
    for path in ["/v/a/1.m4s", "/v/a/2.m4s", "/v/ab/1.m4s", "/v/b/1.m4s"] {
        origin.put(path, Object::new(path.to_owned(), IMMUTABLE));
    }
    let (_temp, disk_dir) = temp_dir();
    let mut config = edge_config("edge", &origin.url());
    config.cache_disk = 10_000_000;
    config.disk_dir = Some(disk_dir.clone());
    let mut edge = RunningEdge::start(config).await;
    let client = client();
    for path in ["/v/a/1.m4s", "/v/a/2.m4s", "/v/ab/1.m4s", "/v/b/1.m4s"] {
        get(&client, &edge.url(path)).await;
    }
    eventually("disk copies", || {
        let client = client.clone();
        let url = edge.url("/metrics");
        async move {
            let text = client
                .get(&url)
                .send()
                .await
                .expect("m")
                .text()
                .await
                .expect("t");
            metric(&text, "reel_edge_objects{tier=\"disk\"}") == 4.0
        }
    })
    .await;
    let purge_url = edge.url("/_edge/purge?prefix=/v/a/");
    let response = client.delete(&purge_url).send().await.expect("purge");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = client
        .delete(&purge_url)
        .bearer_auth("wrong")
        .send()
        .await
        .expect("purge");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = client
        .delete(&purge_url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("purge");
    assert_eq!(response.status(), StatusCode::OK);
    let answer: serde_json::Value = response.json().await.expect("json");
    assert_eq!(answer["purged"], 2);

    let (_, cache, _) = get(&client, &edge.url("/v/a/1.m4s")).await;
    assert_eq!(cache, "MISS");
    let (_, cache, _) = get(&client, &edge.url("/v/ab/1.m4s")).await;
    assert_eq!(cache, "HIT");

    // The path form purges /v/b and below, not /v/ab.
    let response = client
        .delete(edge.url("/_edge/purge/v/b"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("purge");
    let answer: serde_json::Value = response.json().await.expect("json");
    assert_eq!(answer["purged"], 1);
    let (_, cache, _) = get(&client, &edge.url("/v/b/1.m4s")).await;
    assert_eq!(cache, "MISS");
    let (_, cache, _) = get(&client, &edge.url("/v/ab/1.m4s")).await;
    assert_eq!(cache, "HIT");
    let metrics = edge.metrics(&client).await;
    assert_eq!(metric(&metrics, "reel_edge_purged_objects_total"), 3.0);
    edge.stop().await;
}

#[tokio::test]
async fn health_metrics_and_cors() {
    let origin = Origin::start().await;
    origin.put("/v/a/x.m4s", Object::new("0123456789", IMMUTABLE));
    let mut edge = RunningEdge::start(edge_config("edge-par1", &origin.url())).await;
    let client = client();
    let health = client
        .get(edge.url("/healthz"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.expect("text"), "ok edge-par1\n");

    let response = client
        .get(edge.url("/v/a/x.m4s"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    get(&client, &edge.url("/v/a/x.m4s")).await;
    let preflight = client
        .request(reqwest::Method::OPTIONS, edge.url("/v/a/x.m4s"))
        .header("origin", "https://player.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .expect("options");
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert!(preflight.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .contains("CMCD-Request"));

    let metrics = edge.metrics(&client).await;
    for family in [
        "reel_edge_hits_total",
        "reel_edge_misses_total",
        "reel_edge_coalesced_waiters_total",
        "reel_edge_stale_served_total",
        "reel_edge_upstream_requests_total",
        "reel_edge_upstream_bytes_total",
        "reel_edge_served_bytes_total",
        "reel_edge_hit_ratio",
        "reel_edge_resident_bytes",
        "reel_edge_prefetches_total",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
    assert_eq!(metric(&metrics, "reel_edge_hits_total"), 1.0);
    assert_eq!(metric(&metrics, "reel_edge_misses_total"), 1.0);
    assert_eq!(metric(&metrics, "reel_edge_hit_ratio"), 0.5);
    assert_eq!(metric(&metrics, "reel_edge_upstream_requests_total"), 1.0);
    assert_eq!(metric(&metrics, "reel_edge_upstream_bytes_total"), 10.0);
    assert_eq!(metric(&metrics, "reel_edge_served_bytes_total"), 20.0);
    assert_eq!(
        metric(&metrics, "reel_edge_resident_bytes{tier=\"memory\"}"),
        10.0
    );
    assert!(metrics
        .contains("reel_edge_info{name=\"edge-par1\",latitude=\"48.85\",longitude=\"2.35\"} 1"));
    edge.stop().await;
}

#[tokio::test]
async fn caches_chunked_responses_and_streams_oversized_ones() {
    let origin = Origin::start().await;
    let small = pseudo_random_bytes(50_000, 7);
    let large = pseudo_random_bytes(300_000, 8);
    origin.put(
        "/v/a/chunked.m3u8",
        Object::new(small.clone(), IMMUTABLE).chunked(),
    );
    origin.put(
        "/v/a/large.mp4",
        Object::new(large.clone(), IMMUTABLE).chunked(),
    );
    let mut config = edge_config("edge", &origin.url());
    config.cache_memory = 1_000_000;
    config.max_object_fraction = 0.2;
    let mut edge = RunningEdge::start(config).await;
    let client = client();
    let (status, cache, body) = get(&client, &edge.url("/v/a/chunked.m3u8")).await;
    assert_eq!((status, cache.as_str()), (StatusCode::OK, "MISS"));
    assert_eq!(body, small);
    let response = client
        .get(edge.url("/v/a/chunked.m3u8"))
        .header("range", "bytes=10-19")
        .send()
        .await
        .expect("range");
    assert_eq!(x_cache(&response), "HIT");
    assert_eq!(response.bytes().await.expect("body"), small.slice(10..20));
    assert_eq!(origin.count("/v/a/chunked.m3u8"), 1);

    // 300 kB is over 20% of the memory tier: streamed through, not stored.
    for _ in 0..2 {
        let (status, cache, body) = get(&client, &edge.url("/v/a/large.mp4")).await;
        assert_eq!((status, cache.as_str()), (StatusCode::OK, "BYPASS"));
        assert_eq!(body, large);
    }
    assert_eq!(origin.count("/v/a/large.mp4"), 2);
    let metrics = edge.metrics(&client).await;
    assert_eq!(
        metric(&metrics, "reel_edge_reserved_bytes{tier=\"memory\"}"),
        0.0
    );
    assert_eq!(
        metric(&metrics, "reel_edge_resident_bytes{tier=\"memory\"}"),
        50_000.0
    );
    edge.stop().await;
}

#[tokio::test]
async fn rejects_invalid_configs() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut config = edge_config("bad name", "http://127.0.0.1:1");
    let error = reel_edge::serve(listener, config.clone(), async {})
        .await
        .expect_err("invalid name");
    assert!(error.to_string().contains("name"), "{error}");
    config.name = "edge".to_owned();
    config.cache_disk = 1;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let error = reel_edge::serve(listener, config, async {})
        .await
        .expect_err("disk without dir");
    assert!(error.to_string().contains("disk_dir"), "{error}");
}

/// Reads one HTTP/1.1 exchange's bytes from `stream` until `needle` (the
/// final body) arrives or 5 s pass.
async fn read_until(stream: &mut tokio::net::TcpStream, needle: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&received).contains(needle) {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in {:?}", String::from_utf8_lossy(&received)))
            .expect("read");
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_hints_are_forwarded_but_never_stored() {
    use tokio::io::AsyncWriteExt;
    // An origin that answers every request with a 103 and then a fresh 200
    // (hyper's server cannot send 1xx, so this one writes HTTP by hand).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin_url = format!("http://{}", listener.local_addr().expect("address"));
    let origin = tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.expect("accept");
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    let answer = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n\
                        HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 5\r\n\r\nhello";
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let mut edge = RunningEdge::start(edge_config("edge", &origin_url)).await;
    let mut stream = tokio::net::TcpStream::connect(edge.addr)
        .await
        .expect("connect");
    let request = "GET /hinted HTTP/1.1\r\nHost: edge\r\n\r\n";
    stream.write_all(request.as_bytes()).await.expect("write");
    let first = read_until(&mut stream, "hello").await;
    let hint = first.find("HTTP/1.1 103 ").expect("a 103 first");
    let link = first
        .find("link: </style.css>; rel=preload")
        .expect("its Link");
    let last = first.find("HTTP/1.1 200 ").expect("then the 200");
    assert!(hint < link && link < last, "{first}");
    assert!(first.contains("x-cache: MISS"), "{first}");
    // The stored response comes without the interim one, on the same
    // connection (its previous response is complete).
    stream.write_all(request.as_bytes()).await.expect("write");
    let second = read_until(&mut stream, "hello").await;
    assert!(second.starts_with("HTTP/1.1 200 "), "{second}");
    assert!(second.contains("x-cache: HIT"), "{second}");
    edge.stop().await;
    origin.abort();
}
