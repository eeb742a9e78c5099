//! Delivery through real `reel edge` processes: content steering by
//! proximity (clients on 127.0.0.2 and 127.0.0.3 are placed in Paris and
//! New York by network rules), health checks that drop a stopped edge
//! within one TTL, steered HLS and DASH manifests, the 302 mode, and hls.js
//! in headless Chromium moving to the next pathway when its edge stops;
//! and clients located by a GeoIP database (`steering.geoip_db`, a `.mmdb`
//! written per run by PyPI `mmdb-writer`) when no network rule covers them.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{client_python, clients_dir, upstream_requests, Env, Process};

const PARIS: &str = "48.86,2.35";
const NEW_YORK: &str = "40.71,-74.0";
/// The steering TTL the server is given; a dead edge must leave the
/// steering answers within it.
const TTL_SECONDS: u64 = 4;

/// A 24 s 320x180 source with audio (six 4 s segments).
fn source(dir: &Path) -> PathBuf {
    reel_testkit::media::Lavfi::video("320x180", "25", 24)
        .with_audio(48000)
        .write(dir.join("delivery.mp4"))
}

/// A client whose requests come from `address` (a loopback alias).
fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(Some(address.parse().expect("ip")))
        .build()
        .expect("client")
}

fn start_edge(
    env: &Env,
    name: &str,
    upstream: &str,
    location: &str,
    extra: &[&str],
) -> (Process, String) {
    let mut args = vec![
        "edge",
        "--listen",
        "127.0.0.1:0",
        "--name",
        name,
        "--upstream",
        upstream,
        "--location",
        location,
        "--cache-memory",
        "64MiB",
    ];
    args.extend_from_slice(extra);
    let process = env.spawn(&args);
    let url = process.listening_url();
    (process, url)
}

async fn priority(client: &reqwest::Client, url: &str, video: &str) -> Vec<String> {
    let answer: Value = client
        .get(format!(
            "{url}/v1/steering/{video}?proto=hls&_HLS_pathway=x"
        ))
        .send()
        .await
        .expect("steering")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["VERSION"], 1, "{answer:#}");
    assert_eq!(answer["TTL"], TTL_SECONDS, "{answer:#}");
    answer["PATHWAY-PRIORITY"]
        .as_array()
        .expect("priority")
        .iter()
        .map(|id| id.as_str().unwrap_or_default().to_string())
        .collect()
}

/// The id of the video's highest rendition.
fn highest_rendition(video: &Value) -> String {
    video["renditions"]
        .as_array()
        .and_then(|renditions| {
            renditions
                .iter()
                .max_by_key(|rendition| rendition["height"].as_u64().unwrap_or(0))
        })
        .and_then(|rendition| rendition["id"].as_str())
        .unwrap_or_else(|| panic!("no renditions: {video:#}"))
        .to_string()
}

async fn wait_until_healthy(url: &str, key: &str, names: &[&str]) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let edges: Value = client
            .get(format!("{url}/v1/edges"))
            .bearer_auth(key)
            .send()
            .await
            .expect("edges")
            .json()
            .await
            .expect("json");
        let healthy = |name: &str| {
            edges["edges"].as_array().is_some_and(|all| {
                all.iter()
                    .any(|e| e["name"] == name && e["healthy"] == true)
            })
        };
        if names.iter().all(|name| healthy(name)) {
            return;
        }
        assert!(Instant::now() < deadline, "edges never healthy: {edges:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steering_by_proximity_with_failover_in_hls_js() {
    let env = Env::sqlite();
    let key = env.create_key();
    let networks = format!("127.0.0.1/32={PARIS};127.0.0.2/32={PARIS};127.0.0.3/32={NEW_YORK}");
    let ttl = format!("{TTL_SECONDS}s");
    let (server, url) = env.serve_with(
        2,
        &[
            ("REEL_STEERING_NETWORKS", networks.as_str()),
            ("REEL_STEERING_TTL", ttl.as_str()),
            ("REEL_STEERING_HEALTH_INTERVAL", "500ms"),
        ],
    );
    let file = source(env.dir.path());
    let video = env.ingest(&url, &key, &file);
    assert_eq!(video["state"], "ready", "{video:#}");
    let id = video["id"].as_str().expect("id").to_string();

    // Paris registers itself; New York is registered through the API; a
    // shield in front of the origin serves both (edge → shield → origin).
    let (_shield, shield_url) = start_edge(&env, "shield", &url, PARIS, &[]);
    let (mut paris, paris_url) = start_edge(
        &env,
        "paris",
        &shield_url,
        PARIS,
        &["--register", &url, "--api-key", &key],
    );
    let (_new_york, new_york_url) = start_edge(&env, "new-york", &shield_url, NEW_YORK, &[]);
    let registered = reqwest::Client::new()
        .post(format!("{url}/v1/edges"))
        .bearer_auth(&key)
        .json(&json!({"name": "new-york", "url": new_york_url, "location": NEW_YORK}))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), 200);
    let refused = reqwest::Client::new()
        .post(format!("{url}/v1/edges"))
        .json(&json!({"name": "x", "url": "http://x"}))
        .send()
        .await
        .expect("register");
    assert_eq!(refused.status(), 401, "registering needs an API key");
    wait_until_healthy(&url, &key, &["paris", "new-york"]).await;

    // Each client gets its nearest edge first, the origin last.
    let from_paris = client_from("127.0.0.2");
    let from_new_york = client_from("127.0.0.3");
    assert_eq!(
        priority(&from_paris, &url, &id).await,
        ["paris", "new-york", "origin"]
    );
    assert_eq!(
        priority(&from_new_york, &url, &id).await,
        ["new-york", "paris", "origin"]
    );

    // The steered playlist lists every pathway; its initial one is the
    // client's nearest.
    let playlist = from_new_york
        .get(format!("{url}/v1/videos/{id}/play.m3u8"))
        .send()
        .await
        .expect("play.m3u8")
        .text()
        .await
        .expect("text");
    assert!(
        playlist.contains(&format!(
            "#EXT-X-CONTENT-STEERING:SERVER-URI=\"/v1/steering/{id}?proto=hls\",PATHWAY-ID=\"new-york\""
        )),
        "{playlist}"
    );
    for pathway in ["paris", "new-york", "origin"] {
        assert!(
            playlist.contains(&format!("PATHWAY-ID=\"{pathway}\"")),
            "{playlist}"
        );
    }
    assert!(
        playlist.contains(&format!("{paris_url}/v/{id}/")),
        "{playlist}"
    );
    let mpd = from_paris
        .get(format!("{url}/v1/videos/{id}/play.mpd"))
        .send()
        .await
        .expect("play.mpd")
        .text()
        .await
        .expect("text");
    assert!(
        mpd.contains(
            "<ContentSteering defaultServiceLocation=\"paris\" queryBeforeStart=\"true\">"
        ),
        "{mpd}"
    );
    assert!(
        mpd.contains(&format!(
            "<BaseURL serviceLocation=\"new-york\">{new_york_url}/v/{id}/</BaseURL>"
        )),
        "{mpd}"
    );
    let dash_steering: Value = from_paris
        .get(format!("{url}/v1/steering/{id}?proto=dash"))
        .send()
        .await
        .expect("steering")
        .json()
        .await
        .expect("json");
    assert_eq!(
        dash_steering["SERVICE-LOCATION-PRIORITY"],
        json!(["paris", "new-york", "origin"])
    );

    // 100 concurrent requests for one cold segment through New York →
    // shield → origin: one fetch per tier, every client the origin's bytes.
    let segment_path = format!("/v/{id}/{}/seg-00006.m4s", highest_rendition(&video));
    let expected = reqwest::get(format!("{url}{segment_path}"))
        .await
        .expect("origin")
        .bytes()
        .await
        .expect("bytes");
    let upstream_before = (
        upstream_requests(&reqwest::Client::new(), &new_york_url).await,
        upstream_requests(&reqwest::Client::new(), &shield_url).await,
    );
    let requests = (0..100).map(|_| {
        let target = format!("{new_york_url}{segment_path}");
        async move {
            let response = reqwest::get(target).await.expect("edge");
            let cache = response.headers()["x-cache"]
                .to_str()
                .unwrap_or_default()
                .to_string();
            (cache, response.bytes().await.expect("bytes"))
        }
    });
    let answers = futures::future::join_all(requests).await;
    assert!(answers.iter().all(|(_, body)| *body == expected));
    assert_eq!(
        answers.iter().filter(|(cache, _)| cache == "MISS").count(),
        1,
        "{:?}",
        answers.iter().map(|(cache, _)| cache).collect::<Vec<_>>()
    );
    assert_eq!(
        (
            upstream_requests(&reqwest::Client::new(), &new_york_url).await - upstream_before.0,
            upstream_requests(&reqwest::Client::new(), &shield_url).await - upstream_before.1
        ),
        (1, 1)
    );

    // The 302 mode sends a client without steering to its nearest edge.
    let no_redirects = reqwest::Client::builder()
        .local_address(Some("127.0.0.3".parse().expect("ip")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let redirected = no_redirects
        .get(format!("{url}/r/{id}/master.m3u8"))
        .send()
        .await
        .expect("redirect");
    assert_eq!(redirected.status(), 302);
    assert_eq!(
        redirected.headers()["location"].to_str().expect("ascii"),
        format!("{new_york_url}/v/{id}/master.m3u8")
    );

    // hls.js (Chromium connects from 127.0.0.1: Paris) plays through the
    // Paris edge with a short buffer; Paris is stopped mid-stream and
    // playback goes on through the next pathway to the end.
    let hls_config = json!({
        "maxBufferLength": 4,
        "maxMaxBufferLength": 6,
        "cmcd": {"sessionId": "delivery-test", "contentId": id},
    })
    .to_string();
    let mut player = Command::new("node")
        .arg(clients_dir().join("play-hls.mjs"))
        .arg(format!("{url}/v1/videos/{id}/play.m3u8"))
        .args(["--timeout", "90", "--rate", "2", "--stall-timeout", "25"])
        .args(["--hls-config", &hls_config, "--progress"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node: run scripts/install-test-clients.sh");
    let stderr = player.stderr.take().expect("stderr");
    let paris_host = paris_url.trim_start_matches("http://").to_string();
    let (killed_tx, killed_rx) = std::sync::mpsc::channel::<f64>();
    let watcher = std::thread::spawn(move || {
        let mut sent = false;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if !sent {
                let mut fields = line.split_whitespace();
                if fields.next() == Some("progress") {
                    let time: f64 = fields.next().and_then(|t| t.parse().ok()).unwrap_or(0.0);
                    let host = fields.next().unwrap_or("");
                    if time >= 5.0 && host == paris_host {
                        let _ = killed_tx.send(time);
                        sent = true;
                    }
                }
            }
            lines.push(line);
        }
        lines
    });
    let killed_at_media_time =
        tokio::task::spawn_blocking(move || killed_rx.recv_timeout(Duration::from_secs(60)))
            .await
            .expect("join")
            .unwrap_or_else(|_| panic!("playback never reached 5 s through the Paris edge"));
    paris.signal(libc::SIGKILL);
    let killed = Instant::now();
    // Within one TTL the steering answer puts Paris first no more.
    let dropped_after = loop {
        let order = priority(&from_paris, &url, &id).await;
        if order.first().map(String::as_str) != Some("paris") {
            assert_eq!(order, ["new-york", "origin"]);
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(TTL_SECONDS),
            "Paris still first {:?} after the kill",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = tokio::task::spawn_blocking(move || player.wait_with_output())
        .await
        .expect("join")
        .expect("player");
    let progress = watcher.join().expect("watcher");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!("play-hls.mjs printed no JSON ({error}): {stdout} {progress:?}")
    });
    assert_eq!(report["ended"], true, "{report:#}");
    let fatal: Vec<&Value> = report["errors"]
        .as_array()
        .map(|errors| errors.iter().filter(|e| e["fatal"] == true).collect())
        .unwrap_or_default();
    assert!(fatal.is_empty(), "{report:#}");
    let hosts = report["fragHosts"].as_object().expect("fragHosts");
    let paris_host = paris_url.trim_start_matches("http://");
    let new_york_host = new_york_url.trim_start_matches("http://");
    assert!(hosts.contains_key(paris_host), "{report:#}");
    assert!(
        hosts.contains_key(new_york_host),
        "after Paris stopped, fragments came from New York: {report:#}"
    );
    // hls.js sent CMCD; its `nor` (next object) made the edge prefetch.
    let new_york_metrics = reqwest::get(format!("{new_york_url}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let metric = |name: &str| {
        new_york_metrics
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().last())
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        metric("reel_edge_cmcd_requests_total") > 0.0,
        "{new_york_metrics}"
    );
    assert!(
        metric("reel_edge_prefetches_total") > 0.0,
        "{new_york_metrics}"
    );
    eprintln!(
        "edge stopped at media time {killed_at_media_time:.1} s; steering dropped it after {dropped_after:?}; fragments per host {hosts:?}"
    );
    let _ = paris.child.wait();

    // Ranges and conditionals are answered from the edge's copy.
    let segment_url = format!("{new_york_url}{segment_path}");
    let client = reqwest::Client::new();
    let ranged = client
        .get(&segment_url)
        .header("range", "bytes=100-1099")
        .send()
        .await
        .expect("range");
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        ranged.headers()["content-range"].to_str().expect("ascii"),
        format!("bytes 100-1099/{}", expected.len())
    );
    assert_eq!(
        ranged.bytes().await.expect("bytes"),
        expected.slice(100..1100)
    );
    let etag = client
        .head(&segment_url)
        .send()
        .await
        .expect("head")
        .headers()["etag"]
        .clone();
    let conditional = client
        .get(&segment_url)
        .header("if-none-match", etag)
        .send()
        .await
        .expect("conditional");
    assert_eq!(conditional.status(), 304);
    // With the origin (and so the shield's upstream) gone, cached objects
    // are still served; an object never fetched gets a 502 that says why.
    server.signal(libc::SIGKILL);
    let cached = client.get(&segment_url).send().await.expect("cached");
    assert_eq!(cached.status(), 200);
    assert_eq!(cached.bytes().await.expect("bytes"), expected);
    let playlist = client
        .get(format!(
            "{new_york_url}/v/{id}/{}/index.m3u8",
            highest_rendition(&video)
        ))
        .send()
        .await
        .expect("playlist");
    assert_eq!(
        playlist.status(),
        200,
        "the media playlist was cached during playback"
    );
    let never_fetched = client
        .get(format!("{new_york_url}/v/{id}/poster.jpg?never=1"))
        .send()
        .await
        .expect("uncached");
    assert_eq!(never_fetched.status(), 502);
}

/// The edge at `edge_url` counted requests that carried CMCD.
async fn assert_edge_counted_cmcd(edge_url: &str) {
    let metrics = reqwest::get(format!("{edge_url}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("reel_edge_cmcd_requests_total") && !line.ends_with(" 0")),
        "{metrics}"
    );
}

/// Makes a `seconds`-long 854x480 source with audio and ingests it with
/// `reel ingest --wait --json`; returns the video as that prints it.
fn ingest_test_video(env: &Env, url: &str, key: &str, name: &str, seconds: u32) -> Value {
    let file = reel_testkit::media::Lavfi::video("854x480", "30", seconds)
        .with_audio(48000)
        .write(env.dir.path().join(format!("{name}.mp4")));
    env.ingest(url, key, &file)
}

/// `reel play` through a real edge, its rate shaped by a trace that steps
/// 4 → 1 → 4 Mbit/s: it steps down and back up, never stalls (1 Mbit/s is
/// well above the lowest rendition), and its QoE matches the simulator's on
/// the same trace and segment sizes within 10 %.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reel_play_follows_a_trace_through_an_edge() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve_with(2, &[("REEL_ENCODE_PRESET", "ultrafast")]);
    let video = ingest_test_video(&env, &url, &key, "ladder", 60);
    assert_eq!(video["state"], "ready", "{video:#}");
    assert_eq!(video["renditions"].as_array().map(Vec::len), Some(3));
    let id = video["id"].as_str().expect("id");
    let (_edge, edge_url) = start_edge(&env, "edge-1", &url, PARIS, &[]);
    reqwest::Client::new()
        .post(format!("{url}/v1/edges"))
        .bearer_auth(&key)
        .json(&json!({"name": "edge-1", "url": edge_url, "location": PARIS}))
        .send()
        .await
        .expect("register");
    wait_until_healthy(&url, &key, &["edge-1"]).await;

    let trace = env.dir.path().join("step.trace");
    let lines: Vec<String> = (0..=120)
        .map(|second| {
            let mbps = if (10..24).contains(&second) { 1.0 } else { 4.0 };
            format!("{second} {mbps}")
        })
        .collect();
    std::fs::write(&trace, lines.join("\n")).expect("trace");
    let played = env
        .command(&["play", "--json", "--speed", "4", "--algorithm", "reel"])
        .arg(format!("{url}/v1/videos/{id}/play.m3u8"))
        .arg("--trace")
        .arg(&trace)
        .output()
        .expect("reel play");
    let report: Value = serde_json::from_slice(&played.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&played.stderr)));
    let levels: Vec<u64> = report["levels"]
        .as_array()
        .expect("levels")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(levels.len(), 15, "{report:#}");
    let top = *levels.iter().max().expect("levels");
    let lowest_after_top = levels
        .iter()
        .skip_while(|level| **level != top)
        .min()
        .copied()
        .expect("levels");
    assert!(lowest_after_top < top, "never stepped down: {levels:?}");
    let last_low = levels
        .iter()
        .rposition(|level| *level == lowest_after_top)
        .expect("position");
    assert!(
        levels[last_low..]
            .iter()
            .any(|level| *level > lowest_after_top),
        "never stepped back up: {levels:?}"
    );
    assert_eq!(report["stalls"], 0, "{report:#}");
    assert_eq!(report["rebuffer_seconds"], 0.0, "{report:#}");
    let qoe = report["qoe_lin"].as_f64().expect("qoe");
    let simulated = report["simulated"]["qoe_lin"]
        .as_f64()
        .expect("simulated qoe");
    assert!(simulated > 0.0, "{report:#}");
    assert!(
        (qoe - simulated).abs() <= 0.1 * simulated,
        "player QoE {qoe} vs simulator {simulated}: {report:#}"
    );
    // Every segment came through the edge, with CMCD.
    let edge_host = edge_url.trim_start_matches("http://");
    assert!(
        report["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .all(|host| host == edge_host),
        "{report:#}"
    );
    assert_edge_counted_cmcd(&edge_url).await;
    eprintln!("reel play: levels {levels:?}, QoE {qoe:.2} vs simulator {simulated:.2}");
}

/// `reel play` on DASH: the origin's `manifest.mpd` (one pathway, the
/// origin itself) and the steered `play.mpd` (the edge's `BaseURL` first,
/// steered with `SERVICE-LOCATION-PRIORITY`) both play every segment of
/// every chunk without a stall, asking the edge with CMCD `sf=d`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reel_play_plays_dash_from_the_origin_and_through_an_edge() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve_with(2, &[("REEL_ENCODE_PRESET", "ultrafast")]);
    let video = ingest_test_video(&env, &url, &key, "dash", 20);
    assert_eq!(video["state"], "ready", "{video:#}");
    let n_renditions = video["renditions"].as_array().map_or(0, Vec::len);
    assert!(n_renditions >= 2, "{video:#}");
    let id = video["id"].as_str().expect("id");
    // The segment count, from the HLS media playlist (not the MPD).
    let media = reqwest::get(format!(
        "{url}/v/{id}/{}/index.m3u8",
        highest_rendition(&video)
    ))
    .await
    .expect("media playlist")
    .text()
    .await
    .expect("text");
    let n_segments = media.matches("#EXTINF:").count();
    assert!(n_segments >= 4, "{media}");

    let (_edge, edge_url) = start_edge(&env, "edge-1", &url, PARIS, &[]);
    reqwest::Client::new()
        .post(format!("{url}/v1/edges"))
        .bearer_auth(&key)
        .json(&json!({"name": "edge-1", "url": edge_url, "location": PARIS}))
        .send()
        .await
        .expect("register");
    wait_until_healthy(&url, &key, &["edge-1"]).await;

    let origin_host = url.trim_start_matches("http://").to_string();
    let edge_host = edge_url.trim_start_matches("http://").to_string();
    for (manifest, host) in [
        (format!("{url}/v/{id}/manifest.mpd"), &origin_host),
        (format!("{url}/v1/videos/{id}/play.mpd"), &edge_host),
    ] {
        let played = env
            .command(&["play", "--json", "--speed", "8", "--algorithm", "bola"])
            .arg(&manifest)
            .output()
            .expect("reel play");
        let report: Value = serde_json::from_slice(&played.stdout).unwrap_or_else(|error| {
            panic!(
                "{manifest}: {error}: {}",
                String::from_utf8_lossy(&played.stderr)
            )
        });
        assert_eq!(
            report["chunks"], n_segments as u64,
            "{manifest}: {report:#}"
        );
        assert_eq!(
            report["levels"].as_array().map(Vec::len),
            Some(n_segments),
            "{manifest}: {report:#}"
        );
        assert_eq!(
            report["ladder_kbps"].as_array().map(Vec::len),
            Some(n_renditions),
            "{manifest}: {report:#}"
        );
        assert_eq!(report["stalls"], 0, "{manifest}: {report:#}");
        assert_eq!(report["rebuffer_seconds"], 0.0, "{manifest}: {report:#}");
        assert!(
            report["hosts"]
                .as_array()
                .expect("hosts")
                .iter()
                .all(|played_from| played_from == host.as_str()),
            "{manifest}: expected every segment from {host}: {report:#}"
        );
    }
    assert_edge_counted_cmcd(&edge_url).await;
}

/// A `.mmdb` (GeoLite2-City layout) written by PyPI `mmdb-writer`, mapping
/// each `CIDR=LAT,LON` rule to a location.
fn make_mmdb(path: &Path, rules: &[&str]) {
    let mut args = vec![path.as_os_str().to_owned()];
    args.extend(rules.iter().map(std::ffi::OsString::from));
    let output = client_python("make-mmdb.py", args);
    assert!(
        output.status.success(),
        "make-mmdb.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An edge stand-in whose `/healthz` answers after 200 ms, so its health
/// round trip is always worse than the origin's and a client of unknown
/// location is always steered to the other edge first.
async fn slow_healthz() -> (tokio::task::JoinHandle<()>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let app = axum::Router::new().route(
        "/healthz",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            "ok"
        }),
    );
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve healthz");
    });
    (task, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geoip_db_steers_clients_no_network_rule_covers() {
    let (slow_task, slow_url) = slow_healthz().await;
    let ttl = format!("{TTL_SECONDS}s");
    // The video need not exist: the steering server only ranks pathways.
    let video = reel_core::VideoId::new_random().to_string();
    // "paris" is fast, "new-york" slow: without a client location the
    // order is paris first, so the New York database below fails the
    // test if the database were ignored.
    for (database_city, expected_first, expected_second) in [
        (PARIS, "paris", "new-york"),
        (NEW_YORK, "new-york", "paris"),
    ] {
        let env = Env::sqlite();
        let key = env.create_key();
        let mmdb = env.dir.path().join("geoip.mmdb");
        let loopback_rule = format!("127.0.0.0/8={database_city}");
        make_mmdb(&mmdb, &[loopback_rule.as_str()]);
        // Operator rules win over the database: 127.0.0.3 is placed in the
        // other city.
        let networks = format!(
            "127.0.0.3/32={}",
            if database_city == PARIS {
                NEW_YORK
            } else {
                PARIS
            }
        );
        let mmdb_text = mmdb.to_str().expect("utf-8 temp path");
        let (_server, url) = env.serve_with(
            0,
            &[
                ("REEL_STEERING_GEOIP_DB", mmdb_text),
                ("REEL_STEERING_NETWORKS", networks.as_str()),
                ("REEL_STEERING_TTL", ttl.as_str()),
                ("REEL_STEERING_HEALTH_INTERVAL", "300ms"),
            ],
        );
        let client = reqwest::Client::new();
        for (name, edge_url, location) in [
            ("paris", url.as_str(), PARIS),
            ("new-york", slow_url.as_str(), NEW_YORK),
        ] {
            let response = client
                .post(format!("{url}/v1/edges"))
                .bearer_auth(&key)
                .json(&json!({"name": name, "url": edge_url, "location": location}))
                .send()
                .await
                .expect("register edge");
            assert!(response.status().is_success(), "{response:?}");
        }
        wait_until_healthy(&url, &key, &["paris", "new-york"]).await;
        assert_eq!(
            priority(&client_from("127.0.0.1"), &url, &video).await,
            [expected_first, expected_second, "origin"],
            "client 127.0.0.1 with the database placing loopback at {database_city}"
        );
        assert_eq!(
            priority(&client_from("127.0.0.3"), &url, &video).await,
            [expected_second, expected_first, "origin"],
            "client 127.0.0.3 placed by steering.networks"
        );
    }
    slow_task.abort();

    // A missing database stops start-up with the key and the path.
    let env = Env::sqlite();
    let missing = env.dir.path().join("missing.mmdb");
    let missing_text = missing.to_str().expect("utf-8 temp path");
    let mut server = env.spawn_with(
        &["serve", "--listen", "127.0.0.1:0", "--workers", "0"],
        &[("REEL_STEERING_GEOIP_DB", missing_text)],
    );
    let line = server.wait_for_line("steering.geoip_db", Duration::from_secs(30));
    assert!(line.contains(missing_text), "{line}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve kept running: {}",
            server.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "{}", server.output());
}
