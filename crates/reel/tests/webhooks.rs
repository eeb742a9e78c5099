//! Webhooks against the real binary: a receiver on 127.0.0.1:0 checks the
//! HMAC signature of every delivery and reports what it got on a channel;
//! the tests wait on that channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::common::{generated_video, Env};

const ALL_EVENTS: [&str; 6] = [
    "video.created",
    "video.playable",
    "video.ready",
    "video.failed",
    "video.deleted",
    "upload.completed",
];

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Delivery {
    /// `reel-webhook-id`.
    id: String,
    /// The body's `type`.
    kind: String,
    /// The body's `data.video_id`.
    video_id: String,
    /// The body.
    body: Value,
    /// Whether `reel-signature` is the HMAC of `t.body` with the secret.
    verified: bool,
}

#[derive(Clone)]
struct Receiver {
    secret: Arc<Mutex<Option<String>>>,
    /// `Some(url)`: answer every request with a redirect there.
    redirect_to: Option<String>,
    deliveries: mpsc::UnboundedSender<Delivery>,
}

/// Whether `signature` (`t=…,v1=…`) signs `body` with `secret`, at most 5 min old.
fn verify(secret: &str, signature: &str, body: &[u8]) -> bool {
    let mut timestamp = None;
    let mut v1 = None;
    for part in signature.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(timestamp), Some(v1)) = (timestamp, v1) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    if (now - timestamp).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

async fn hook(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = receiver.secret.lock().expect("secret").clone() else {
        // Created a moment ago; the secret is not known yet: try again.
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let signature = headers
        .get("reel-signature")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let delivery = Delivery {
        id: headers
            .get("reel-webhook-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_string(),
        kind: parsed["type"].as_str().unwrap_or("").to_string(),
        video_id: parsed["data"]["video_id"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        verified: verify(&secret, signature, &body),
        body: parsed,
    };
    let _ = receiver.deliveries.send(delivery);
    match &receiver.redirect_to {
        Some(target) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, target.clone())],
        )
            .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// A receiver on `listener` at `/hook`; returns the secret slot and the deliveries.
fn start_receiver(
    listener: tokio::net::TcpListener,
    redirect_to: Option<String>,
) -> (
    Arc<Mutex<Option<String>>>,
    mpsc::UnboundedReceiver<Delivery>,
) {
    let (sender, deliveries) = mpsc::unbounded_channel();
    let secret = Arc::new(Mutex::new(None));
    let state = Receiver {
        secret: secret.clone(),
        redirect_to,
        deliveries: sender,
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (secret, deliveries)
}

async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    (listener, url)
}

/// A port nothing listens on (yet).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

async fn create_webhook(server: &str, key: &str, url: &str, events: &[&str]) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{server}/v1/webhooks"))
        .bearer_auth(key)
        .json(&json!({"url": url, "events": events}))
        .send()
        .await
        .expect("post webhook");
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let created: Value = response.json().await.expect("json");
    assert!(
        created["secret"]
            .as_str()
            .unwrap_or("")
            .starts_with("whsec_"),
        "{created:#}"
    );
    created
}

async fn list_webhooks(server: &str, key: &str) -> Vec<Value> {
    let listed: Value = reqwest::Client::new()
        .get(format!("{server}/v1/webhooks"))
        .bearer_auth(key)
        .send()
        .await
        .expect("list webhooks")
        .json()
        .await
        .expect("json");
    listed["webhooks"].as_array().expect("webhooks").clone()
}

/// Polls the webhook list until `done` holds for the only webhook.
async fn wait_for_webhook(server: &str, key: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let webhooks = list_webhooks(server, key).await;
        if let Some(webhook) = webhooks.first().filter(|webhook| done(webhook)) {
            return webhook.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the webhook never got there: {webhooks:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Posts a body that is no video: `video.created`, then `video.failed`.
async fn post_unplayable_video(server: &str, key: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{server}/v1/videos?title=junk"))
        .bearer_auth(key)
        .body("this is not a video")
        .send()
        .await
        .expect("post video");
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let video: Value = response.json().await.expect("json");
    video["id"].as_str().expect("id").to_string()
}

/// Receives until `(type, video_id)` has arrived; returns everything received.
async fn receive_until(
    deliveries: &mut mpsc::UnboundedReceiver<Delivery>,
    received: &mut Vec<Delivery>,
    kind: &str,
    video_id: &str,
    limit: Duration,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !received
        .iter()
        .any(|delivery| delivery.kind == kind && delivery.video_id == video_id)
    {
        match tokio::time::timeout_at(deadline, deliveries.recv()).await {
            Ok(Some(delivery)) => received.push(delivery),
            _ => panic!("no {kind} for {video_id} within {limit:?}; got {received:#?}"),
        }
    }
}

fn count(received: &[Delivery]) -> HashMap<(String, String), usize> {
    let mut counts = HashMap::new();
    for delivery in received {
        *counts
            .entry((delivery.kind.clone(), delivery.video_id.clone()))
            .or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn every_delivery_is_signed_and_each_transition_arrives_once() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (mut server, url) = env.serve(2);
    let (listener, hook_url) = bind().await;
    let (secret, mut deliveries) = start_receiver(listener, None);

    // Malformed subscriptions are refused with a reason.
    for (body, needle) in [
        (
            json!({"url": hook_url, "events": ["video.exploded"]}),
            "unknown event",
        ),
        (
            json!({"url": "ftp://example.com/", "events": ["video.ready"]}),
            "http",
        ),
        (json!({"url": hook_url, "events": []}), "events is empty"),
    ] {
        let response = reqwest::Client::new()
            .post(format!("{url}/v1/webhooks"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 400);
        let text = response.text().await.expect("text");
        assert!(text.contains(needle), "{text}");
    }
    let unauthenticated = reqwest::Client::new()
        .get(format!("{url}/v1/webhooks"))
        .send()
        .await
        .expect("get");
    assert_eq!(unauthenticated.status(), 401);

    let created = create_webhook(&url, &key, &hook_url, &ALL_EVENTS).await;
    *secret.lock().expect("secret") = Some(created["secret"].as_str().expect("secret").into());
    let listed = list_webhooks(&url, &key).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], created["id"]);
    assert!(listed[0].get("secret").is_none(), "{listed:#?}");

    // A real video through a resumable upload: completed, created,
    // playable, ready; deleted after a restart.
    let source = generated_video(env.dir.path());
    let upload = env
        .command(&["upload", "--server", &url, "--api-key", &key, "--json"])
        .arg(&source)
        .output();
    let output = tokio::task::spawn_blocking(move || upload)
        .await
        .expect("join")
        .expect("reel upload");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let uploaded: Value = serde_json::from_slice(&output.stdout).expect("json");
    let video = uploaded[0]["video"]["id"]
        .as_str()
        .expect("video id")
        .to_string();
    let mut received = Vec::new();
    for kind in [
        "upload.completed",
        "video.created",
        "video.playable",
        "video.ready",
    ] {
        receive_until(
            &mut deliveries,
            &mut received,
            kind,
            &video,
            Duration::from_secs(300),
        )
        .await;
    }
    // Every delivery recorded as such before the restart.
    let n_received = received.len() as u64;
    wait_for_webhook(&url, &key, |webhook| {
        webhook["deliveries"]["delivered"].as_u64() == Some(n_received)
    })
    .await;
    // A restart rereads the engine's recent history (the upload, the video
    // and its job): it must add nothing. The events of a delete and of a
    // failed video after it are the marker that the rescan is over
    // (rescanned events would be older, and deliveries go oldest first).
    server.signal(libc::SIGTERM);
    let _ = server.child.wait();
    let (server, url) = env.serve(1);
    server.wait_for_line("webhook watcher caught up", Duration::from_secs(30));
    // Deleted after the rescan, which therefore saw its history.
    let deleted = reqwest::Client::new()
        .delete(format!("{url}/v1/videos/{video}"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 200);
    receive_until(
        &mut deliveries,
        &mut received,
        "video.deleted",
        &video,
        Duration::from_secs(30),
    )
    .await;
    let junk = post_unplayable_video(&url, &key).await;
    // Both may be claimed in one round and sent side by side: either may come first.
    for kind in ["video.created", "video.failed"] {
        receive_until(
            &mut deliveries,
            &mut received,
            kind,
            &junk,
            Duration::from_secs(60),
        )
        .await;
    }
    while let Ok(late) = deliveries.try_recv() {
        received.push(late);
    }

    assert!(
        received.iter().all(|delivery| delivery.verified),
        "a signature did not verify: {received:#?}"
    );
    let counts = count(&received);
    for kind in [
        "upload.completed",
        "video.created",
        "video.playable",
        "video.ready",
        "video.deleted",
    ] {
        assert_eq!(
            counts.get(&(kind.to_string(), video.clone())),
            Some(&1),
            "{kind}: {received:#?}"
        );
    }
    for kind in ["video.created", "video.failed"] {
        assert_eq!(
            counts.get(&(kind.to_string(), junk.clone())),
            Some(&1),
            "{kind}: {received:#?}"
        );
    }
    assert!(
        counts.values().all(|&n| n == 1),
        "a duplicate: {received:#?}"
    );
    // The event's shape, and an id that is the dedupe header.
    for delivery in &received {
        assert_eq!(delivery.body["id"].as_str(), Some(delivery.id.as_str()));
        assert!(delivery.id.starts_with("evt_"), "{delivery:#?}");
        assert!(
            delivery.body["created_at"].as_i64().is_some(),
            "{delivery:#?}"
        );
    }
    let failed = received
        .iter()
        .find(|delivery| delivery.kind == "video.failed")
        .expect("failed");
    assert!(
        failed.body["data"]["error"]["message"].is_string(),
        "{failed:#?}"
    );
    let completed = received
        .iter()
        .find(|delivery| delivery.kind == "upload.completed")
        .expect("completed");
    assert_eq!(
        completed.body["data"]["upload_id"], uploaded[0]["upload_id"],
        "{completed:#?}"
    );
    let webhook = wait_for_webhook(&url, &key, |webhook| {
        webhook["deliveries"]["delivered"].as_u64() == Some(received.len() as u64)
    })
    .await;
    assert_eq!(webhook["deliveries"]["pending"], 0, "{webhook:#}");
    assert_eq!(webhook["deliveries"]["failed"], 0, "{webhook:#}");

    let removed = reqwest::Client::new()
        .delete(format!(
            "{url}/v1/webhooks/{}",
            created["id"].as_str().expect("id")
        ))
        .bearer_auth(&key)
        .send()
        .await
        .expect("delete webhook");
    assert_eq!(removed.status(), 200);
    assert!(list_webhooks(&url, &key).await.is_empty());
}

#[tokio::test]
async fn a_receiver_down_for_10_s_still_gets_the_events() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve(1);
    let port = closed_port();
    let hook_url = format!("http://127.0.0.1:{port}/hook");
    let created = create_webhook(&url, &key, &hook_url, &["video.created", "video.failed"]).await;
    let video = post_unplayable_video(&url, &key).await;
    // The server tried and failed: the receiver is down.
    let webhook = wait_for_webhook(&url, &key, |webhook| {
        webhook["last_error"]
            .as_str()
            .is_some_and(|error| error.contains("could not connect"))
    })
    .await;
    assert_eq!(webhook["deliveries"]["delivered"], 0, "{webhook:#}");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut deliveries = receiver_on(port, &created).await;
    expect_created_and_failed(&mut deliveries, &video, Duration::from_secs(60)).await;
}

/// A receiver on `port`, where nothing listened, with the webhook's secret.
async fn receiver_on(port: u16, created: &Value) -> mpsc::UnboundedReceiver<Delivery> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind the receiver's port");
    let (secret, deliveries) = start_receiver(listener, None);
    *secret.lock().expect("secret") = Some(created["secret"].as_str().expect("secret").into());
    deliveries
}

/// Waits for `video.created` and `video.failed` of `video`: each once, signed.
async fn expect_created_and_failed(
    deliveries: &mut mpsc::UnboundedReceiver<Delivery>,
    video: &str,
    limit: Duration,
) {
    let mut received = Vec::new();
    for kind in ["video.created", "video.failed"] {
        receive_until(deliveries, &mut received, kind, video, limit).await;
    }
    assert!(
        received.iter().all(|delivery| delivery.verified),
        "{received:#?}"
    );
    assert!(count(&received).values().all(|&n| n == 1), "{received:#?}");
}

async fn pending_deliveries_survive_a_restart(env: Env) {
    let key = env.create_key();
    let (mut server, url) = env.serve(1);
    let port = closed_port();
    let hook_url = format!("http://127.0.0.1:{port}/hook");
    let created = create_webhook(&url, &key, &hook_url, &["video.created", "video.failed"]).await;
    let video = post_unplayable_video(&url, &key).await;
    wait_for_webhook(&url, &key, |webhook| {
        webhook["deliveries"]["pending"].as_u64() == Some(2)
            && webhook["last_error"].as_str().is_some()
    })
    .await;
    // Killed outright with both deliveries pending, then the receiver comes up.
    server.child.kill().expect("kill");
    let _ = server.child.wait();
    let mut deliveries = receiver_on(port, &created).await;
    let (_server, url) = env.serve(0);
    expect_created_and_failed(&mut deliveries, &video, Duration::from_secs(90)).await;
    let webhook = wait_for_webhook(&url, &key, |webhook| {
        webhook["deliveries"]["delivered"].as_u64() == Some(2)
    })
    .await;
    assert_eq!(webhook["deliveries"]["pending"], 0, "{webhook:#}");
}

#[tokio::test]
async fn pending_deliveries_survive_a_server_restart_sqlite() {
    pending_deliveries_survive_a_restart(Env::sqlite()).await;
}

#[tokio::test]
async fn pending_deliveries_survive_a_server_restart_postgres() {
    pending_deliveries_survive_a_restart(Env::postgres().await).await;
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve(0);
    let (target_listener, target_url) = bind().await;
    let (_target_secret, mut target) = start_receiver(target_listener, None);
    let (listener, hook_url) = bind().await;
    let (secret, mut deliveries) = start_receiver(listener, Some(target_url));
    let created = create_webhook(&url, &key, &hook_url, &["video.created"]).await;
    *secret.lock().expect("secret") = Some(created["secret"].as_str().expect("secret").into());
    let video = post_unplayable_video(&url, &key).await;
    // Two attempts at the redirecting receiver: the first redirect was a failure.
    let mut attempts = Vec::new();
    while attempts.len() < 2 {
        let delivery = tokio::time::timeout(Duration::from_secs(30), deliveries.recv())
            .await
            .expect("a second attempt")
            .expect("receiver open");
        attempts.push(delivery);
    }
    assert!(attempts
        .iter()
        .all(|attempt| attempt.video_id == video && attempt.verified));
    assert_eq!(attempts[0].id, attempts[1].id, "a retry keeps the event id");
    assert!(target.try_recv().is_err(), "the redirect was followed");
    let webhook = wait_for_webhook(&url, &key, |webhook| {
        webhook["last_error"]
            .as_str()
            .is_some_and(|error| error.contains("redirects are not followed"))
    })
    .await;
    assert_eq!(webhook["deliveries"]["delivered"], 0, "{webhook:#}");
}
