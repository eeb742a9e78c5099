//! Private videos and signed playback against the real binary: visibility
//! in listings, `POST /v1/videos/{id}/playback`, and the origin refusing
//! private media without a valid token (403) while the signed URLs it hands
//! out play as they are (relative URIs inherit the token).

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{
    fatal_errors, generated_video, play_in_chromium, upstream_requests, Env, Process,
};

const EDGE_SECRET: &str = "edge-credential-for-tests";

/// Uploads the generated test video with `visibility` and waits until it is ready.
async fn ready_video(
    env: &Env,
    client: &reqwest::Client,
    url: &str,
    key: &str,
    visibility: &str,
) -> String {
    let body = std::fs::read(generated_video(env.dir.path())).expect("test video");
    let created: Value = client
        .post(format!(
            "{url}/v1/videos?title=secret&visibility={visibility}"
        ))
        .bearer_auth(key)
        .body(body)
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("json");
    assert_eq!(created["visibility"], visibility, "{created:#}");
    let id = created["id"].as_str().expect("id").to_string();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let video: Value = client
            .get(format!("{url}/v1/videos/{id}"))
            .bearer_auth(key)
            .send()
            .await
            .expect("show")
            .json()
            .await
            .expect("json");
        match video["state"].as_str() {
            Some("ready") => return id,
            Some("failed") => panic!("video failed: {video:#}"),
            _ if Instant::now() > deadline => panic!("video not ready in time: {video:#}"),
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

async fn status(client: &reqwest::Client, url: &str) -> StatusCode {
    client.get(url).send().await.expect("request").status()
}

/// The first URI line of a playlist, resolved against the playlist's URL.
async fn first_uri(client: &reqwest::Client, playlist: &str) -> String {
    let text = client
        .get(playlist)
        .send()
        .await
        .expect("playlist")
        .text()
        .await
        .expect("text");
    let line = text
        .lines()
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .unwrap_or_else(|| panic!("no URI in {text}"));
    url::Url::parse(playlist)
        .expect("url")
        .join(line)
        .expect("join")
        .to_string()
}

fn mint_with_data_dir_keys(env: &Env, video: &str, ttl: u64, now: u64) -> String {
    let keys = reel_token::SigningKeySet::load(&env.dir.path().join("signing-keys.json"))
        .expect("the server generated its signing keys");
    keys.mint(video, ttl, now, &[]).expect("minted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_serves_private_media_only_with_a_valid_token() {
    let env = Env::sqlite();
    let key = env.create_key();
    let other_key = {
        let out = env.run(&["keys", "create", "--name", "other", "--json"]);
        let value: Value = serde_json::from_str(out.trim()).expect("json");
        value["key"].as_str().expect("key").to_string()
    };
    let (_server, url) = env.serve_with(
        2,
        &[
            ("REEL_ENCODE_PRESET", "ultrafast"),
            ("REEL_EDGE_SECRET", EDGE_SECRET),
        ],
    );
    let client = reqwest::Client::new();
    let id = ready_video(&env, &client, &url, &key, "private").await;

    // Listed to its owner only; its record is hidden from everyone else.
    let listed = |caller: Option<String>| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let mut request = client.get(format!("{url}/v1/videos"));
            if let Some(caller) = caller {
                request = request.bearer_auth(caller);
            }
            let body: Value = request
                .send()
                .await
                .expect("list")
                .json()
                .await
                .expect("json");
            body["videos"]
                .as_array()
                .expect("videos")
                .iter()
                .filter_map(|video| video["id"].as_str().map(str::to_string))
                .collect::<Vec<_>>()
        }
    };
    assert!(listed(Some(key.clone())).await.contains(&id));
    assert!(!listed(None).await.contains(&id));
    assert!(!listed(Some(other_key.clone())).await.contains(&id));
    assert_eq!(
        status(&client, &format!("{url}/v1/videos/{id}")).await,
        StatusCode::NOT_FOUND
    );

    // Only the owner mints.
    let playback = format!("{url}/v1/videos/{id}/playback");
    let anonymous = client
        .post(&playback)
        .json(&json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let stranger = client
        .post(&playback)
        .bearer_auth(&other_key)
        .json(&json!({"ttl_seconds": 60}))
        .send()
        .await
        .expect("post");
    assert_eq!(
        stranger.status(),
        StatusCode::NOT_FOUND,
        "a private video is not revealed"
    );
    let too_long = client
        .post(&playback)
        .bearer_auth(&key)
        .json(&json!({"ttl_seconds": 0}))
        .send()
        .await
        .expect("post");
    assert_eq!(too_long.status(), StatusCode::BAD_REQUEST);
    let minted: Value = client
        .post(&playback)
        .bearer_auth(&key)
        .json(&json!({"ttl_seconds": 600}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let token = minted["token"].as_str().expect("token").to_string();
    let hls = minted["hls"].as_str().expect("hls").to_string();
    assert_eq!(
        hls,
        format!("{url}/v/{id}/t/{token}/master.m3u8"),
        "{minted:#}"
    );
    assert!(minted["dash"]
        .as_str()
        .expect("dash")
        .ends_with(&format!("/t/{token}/manifest.mpd")));
    assert!(minted["poster"]
        .as_str()
        .expect("poster")
        .contains(&format!("/t/{token}/")));
    let now = reel_token::unix_now();
    let expires_at = minted["expires_at"].as_u64().expect("expires_at");
    assert!((now + 590..=now + 610).contains(&expires_at), "{minted:#}");

    // The signed URLs play as they are: manifests and segments by relative URIs.
    let response = client.get(&hls).send().await.expect("master");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["reel-access"], "private");
    let variant = first_uri(&client, &hls).await;
    assert!(variant.contains(&format!("/t/{token}/")), "{variant}");
    let segment = first_uri(&client, &variant).await;
    assert!(segment.contains(&format!("/t/{token}/")), "{segment}");
    assert_eq!(status(&client, &segment).await, StatusCode::OK);
    let unsigned_segment = segment.replace(&format!("t/{token}/"), "");
    let unsigned_master = format!("{url}/v/{id}/master.m3u8");

    // Without, with an expired, tampered or other video's token: 403.
    let expired = mint_with_data_dir_keys(&env, &id, 1, now - 100);
    let other_video =
        mint_with_data_dir_keys(&env, "00000000-0000-4000-8000-000000000000", 600, now);
    let stranger_key = reel_token::SigningKeySet::generate()
        .mint(&id, 600, now, &[])
        .expect("minted");
    let at = token.rfind('.').expect("signature") + 1;
    let mut tampered = token.clone();
    tampered.replace_range(
        at..at + 1,
        if token[at..].starts_with('A') {
            "B"
        } else {
            "A"
        },
    );
    for (what, target, code) in [
        ("no token, master", unsigned_master.clone(), "token_missing"),
        (
            "no token, segment",
            unsigned_segment.clone(),
            "token_missing",
        ),
        (
            "expired",
            segment.replace(&token, &expired),
            "token_expired",
        ),
        (
            "tampered",
            segment.replace(&token, &tampered),
            "token_bad_signature",
        ),
        (
            "other video",
            segment.replace(&token, &other_video),
            "token_wrong_video",
        ),
        (
            "unknown key",
            hls.replace(&token, &stranger_key),
            "token_unknown_kid",
        ),
        ("garbage", hls.replace(&token, "x.y.z"), "token_malformed"),
    ] {
        let response = client.get(&target).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}: {target}");
        // A player in a page reads the refusal only with CORS headers.
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "*",
            "{what}"
        );
        let body: Value = response.json().await.expect("json error");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(code), "{what}: {body}");
    }

    // The edge credential fetches private objects without a token.
    let with_secret = |secret: &'static str| {
        client
            .get(&unsigned_segment)
            .header("reel-edge-secret", secret)
            .send()
    };
    assert_eq!(
        with_secret(EDGE_SECRET).await.expect("edge").status(),
        StatusCode::OK
    );
    assert_eq!(
        with_secret("wrong").await.expect("edge").status(),
        StatusCode::FORBIDDEN
    );

    // The JWKS verifies the token without the origin's private keys.
    let jwks = client
        .get(format!("{url}{}", reel_token::JWKS_PATH))
        .send()
        .await
        .expect("jwks")
        .text()
        .await
        .expect("text");
    assert!(!jwks.contains("\"d\""), "{jwks}");
    let public = reel_token::PublicKeySet::from_json(&jwks, "jwks").expect("jwks");
    assert!(public.verify(&token, &id, now).is_ok());

    // Unlisted: plays without a token, listed to its owner only; public: listed.
    let patch = |visibility: &str| {
        client
            .patch(format!("{url}/v1/videos/{id}"))
            .bearer_auth(&key)
            .json(&json!({"visibility": visibility}))
            .send()
    };
    let stranger_patch = client
        .patch(format!("{url}/v1/videos/{id}"))
        .bearer_auth(&other_key)
        .json(&json!({"visibility": "public"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(stranger_patch.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        patch("sometimes").await.expect("patch").status(),
        StatusCode::BAD_REQUEST
    );
    let unlisted: Value = patch("unlisted")
        .await
        .expect("patch")
        .json()
        .await
        .expect("json");
    assert_eq!(unlisted["visibility"], "unlisted");
    let response = client.get(&unsigned_segment).send().await.expect("segment");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("reel-access").is_none());
    assert!(!listed(None).await.contains(&id));
    assert!(!listed(Some(other_key.clone())).await.contains(&id));
    assert_eq!(
        status(&client, &format!("{url}/v1/videos/{id}")).await,
        StatusCode::OK
    );
    // A bad token is refused even where none is needed.
    assert_eq!(
        status(&client, &segment.replace(&token, &tampered)).await,
        StatusCode::FORBIDDEN
    );
    patch("public").await.expect("patch");
    assert!(listed(None).await.contains(&id));
    let stranger_mint = client
        .post(&playback)
        .bearer_auth(&other_key)
        .json(&json!({"ttl_seconds": 60}))
        .send()
        .await
        .expect("post");
    assert_eq!(stranger_mint.status(), StatusCode::FORBIDDEN);
}

/// Starts `reel edge` in front of `origin` with the edge credential. With
/// `jwks` it verifies tokens with that file; without, with the origin's
/// JWKS, which it is waited for to have fetched.
fn start_edge(env: &Env, origin: &str, jwks: Option<&Path>) -> (Process, String) {
    let jwks_arg = jwks.map(|path| path.display().to_string());
    let mut args = vec![
        "edge",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        origin,
        "--name",
        "edge-1",
        "--origin-secret",
        EDGE_SECRET,
    ];
    if let Some(jwks) = &jwks_arg {
        args.extend(["--jwks", jwks]);
    }
    let edge = env.spawn(&args);
    let edge_url = edge.listening_url();
    if jwks.is_none() {
        edge.wait_for_line("playback keys updated", Duration::from_secs(30));
    }
    (edge, edge_url)
}

async fn mint(client: &reqwest::Client, url: &str, key: &str, id: &str, ttl: u64) -> Value {
    client
        .post(format!("{url}/v1/videos/{id}/playback"))
        .bearer_auth(key)
        .json(&json!({"ttl_seconds": ttl}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reel_edge_verifies_tokens_itself_and_shares_one_cached_copy() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve_with(
        2,
        &[
            ("REEL_ENCODE_PRESET", "ultrafast"),
            ("REEL_EDGE_SECRET", EDGE_SECRET),
        ],
    );
    let client = reqwest::Client::new();
    let id = ready_video(&env, &client, &url, &key, "private").await;
    let (_edge, edge_url) = start_edge(&env, &url, None);

    // Two viewers' tokens (Ed25519 is deterministic: other claims, other token).
    let first = mint(&client, &url, &key, &id, 600).await;
    let second = mint(&client, &url, &key, &id, 900).await;
    let (token_1, token_2) = (
        first["token"].as_str().expect("token").to_string(),
        second["token"].as_str().expect("token").to_string(),
    );
    assert_ne!(token_1, token_2);
    let master_1 = first["hls"]
        .as_str()
        .expect("hls")
        .replacen(&url, &edge_url, 1);
    // Not yet cached, no token: refused (the origin marks it private).
    let unsigned_master = format!("{edge_url}/v/{id}/master.m3u8");
    assert_eq!(
        status(&client, &unsigned_master).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(status(&client, &master_1).await, StatusCode::OK);
    let variant = first_uri(&client, &master_1).await;
    let segment_1 = first_uri(&client, &variant).await;
    assert!(
        segment_1.starts_with(&edge_url) && segment_1.contains(&token_1),
        "{segment_1}"
    );

    let response = client.get(&segment_1).send().await.expect("segment");
    assert_eq!(response.status(), StatusCode::OK);
    let body_1 = response.bytes().await.expect("body");
    let fetched = upstream_requests(&reqwest::Client::new(), &edge_url).await;

    // Another viewer, another token: the same cached copy, no origin fetch.
    let segment_2 = segment_1.replace(&token_1, &token_2);
    let response = client.get(&segment_2).send().await.expect("segment");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-cache"], "HIT");
    assert_eq!(response.bytes().await.expect("body"), body_1);
    assert_eq!(
        upstream_requests(&reqwest::Client::new(), &edge_url).await,
        fetched,
        "one origin fetch for two viewers"
    );

    // The cached segment is refused without a valid token.
    let now = reel_token::unix_now();
    let expired = mint_with_data_dir_keys(&env, &id, 1, now - 100);
    let other_video =
        mint_with_data_dir_keys(&env, "00000000-0000-4000-8000-000000000000", 600, now);
    let at = token_1.rfind('.').expect("signature") + 1;
    let mut tampered = token_1.clone();
    tampered.replace_range(
        at..at + 1,
        if token_1[at..].starts_with('A') {
            "B"
        } else {
            "A"
        },
    );
    let unsigned_segment = segment_1.replace(&format!("t/{token_1}/"), "");
    for (what, target, code) in [
        ("no token", unsigned_segment.clone(), "token_missing"),
        (
            "expired",
            segment_1.replace(&token_1, &expired),
            "token_expired",
        ),
        (
            "tampered",
            segment_1.replace(&token_1, &tampered),
            "token_bad_signature",
        ),
        (
            "other video",
            segment_1.replace(&token_1, &other_video),
            "token_wrong_video",
        ),
    ] {
        let response = client.get(&target).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}: {target}");
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "*",
            "{what}"
        );
        let text = response.text().await.expect("text");
        assert!(text.contains(code), "{what}: {text}");
    }
    assert_eq!(
        upstream_requests(&reqwest::Client::new(), &edge_url).await,
        fetched,
        "refusals fetch nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_and_shaka_play_a_private_video_through_an_edge_only_with_a_token() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve_with(
        2,
        &[
            ("REEL_ENCODE_PRESET", "ultrafast"),
            ("REEL_EDGE_SECRET", EDGE_SECRET),
        ],
    );
    let client = reqwest::Client::new();
    let id = ready_video(&env, &client, &url, &key, "private").await;
    // The edge verifies with the origin's public keys, given as a file.
    let jwks = client
        .get(format!("{url}{}", reel_token::JWKS_PATH))
        .send()
        .await
        .expect("jwks")
        .text()
        .await
        .expect("text");
    let jwks_file = env.dir.path().join("origin-jwks.json");
    std::fs::write(&jwks_file, jwks).expect("write the JWKS");
    let (_edge, edge_url) = start_edge(&env, &url, Some(&jwks_file));
    let edge_host = edge_url.trim_start_matches("http://").to_string();

    let minted = mint(&client, &url, &key, &id, 600).await;
    let at_edge = |name: &str| {
        minted[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} in {minted:#}"))
            .replacen(&url, &edge_url, 1)
    };
    for (script, signed, hosts) in [
        ("play-hls.mjs", at_edge("hls"), "fragHosts"),
        ("play-shaka.mjs", at_edge("dash"), "segHosts"),
    ] {
        let (success, report) = play_in_chromium(script, signed, Vec::new()).await;
        assert!(success, "{script} with a token: {report:#}");
        assert_eq!(report["ended"], true, "{script}: {report:#}");
        assert!(fatal_errors(&report).is_empty(), "{script}: {report:#}");
        let duration = report["duration"].as_f64().expect("duration");
        assert!((duration - 3.0).abs() < 0.2, "{script}: {report:#}");
        assert!(
            report["decodedFrames"].as_u64().unwrap_or(0) >= 70,
            "{script}: {report:#}"
        );
        let segment_hosts: Vec<&String> = report[hosts].as_object().expect(hosts).keys().collect();
        assert_eq!(segment_hosts, [&edge_host], "{script}: {report:#}");
    }

    // The same players on the edge's plain URLs: refused with 403, fatally.
    for (script, plain) in [
        ("play-hls.mjs", format!("{edge_url}/v/{id}/master.m3u8")),
        ("play-shaka.mjs", format!("{edge_url}/v/{id}/manifest.mpd")),
    ] {
        let (success, report) = play_in_chromium(script, plain, Vec::new()).await;
        assert!(!success, "{script} without a token: {report:#}");
        assert_eq!(report["ended"], false, "{script}: {report:#}");
        assert!(
            fatal_errors(&report)
                .iter()
                .any(|error| error["httpStatus"] == 403),
            "{script} without a token records a fatal 403: {report:#}"
        );
        assert_eq!(report["decodedFrames"], 0, "{script}: {report:#}");
    }
}
