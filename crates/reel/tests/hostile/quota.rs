//! Findings 6 and 13: the byte quota on every way in (a tus upload whose
//! length is deferred, an unsized Companion upload, `verify` jobs) and the
//! per-key budget of media seconds, checked at the probe.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{list_files, Api, Env};

const QUOTA: &str = "100000";

async fn head_offset(client: &reqwest::Client, location: &str, key: &str) -> (u64, bool) {
    let head = client
        .head(location)
        .bearer_auth(key)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), 200);
    let offset = head.headers()["upload-offset"]
        .to_str()
        .expect("offset")
        .parse()
        .expect("number");
    (offset, head.headers().contains_key("upload-defer-length"))
}

async fn tus_patch(
    client: &reqwest::Client,
    location: &str,
    key: &str,
    offset: u64,
    length: Option<u64>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = client
        .patch(location)
        .bearer_auth(key)
        .header("Tus-Resumable", "1.0.0")
        .header("Content-Type", "application/offset+octet-stream")
        .header("Upload-Offset", offset.to_string());
    if let Some(length) = length {
        request = request.header("Upload-Length", length.to_string());
    }
    request.body(body).send().await.expect("PATCH")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tus_upload_with_a_deferred_length_counts_toward_the_quota() {
    let env = Env::sqlite();
    let key = crate::hostile::uploader(&env, "alice");
    let (_server, url) = env.serve_with(0, &[("REEL_QUOTA_PER_KEY", QUOTA)]);
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{url}/files/"))
        .bearer_auth(&key)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Defer-Length", "1")
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("{url}{location}")
    };
    let first = tus_patch(&client, &location, &key, 0, None, vec![1u8; 60_000]).await;
    assert_eq!(first.status(), 204);
    // What arrived counts: another way in no longer has room.
    let video = client
        .post(format!("{url}/v1/videos?title=more"))
        .bearer_auth(&key)
        .body(vec![2u8; 50_000])
        .send()
        .await
        .expect("POST /v1/videos");
    assert_eq!(video.status(), 413);
    // A body past what is left of the quota is refused and writes nothing.
    let over = tus_patch(&client, &location, &key, 60_000, None, vec![3u8; 60_000]).await;
    assert_eq!(over.status(), 413);
    let text = over.text().await.unwrap_or_default();
    assert!(text.contains("quota"), "{text}");
    assert_eq!(head_offset(&client, &location, &key).await, (60_000, true));
    // Declaring a length past the quota is refused and changes nothing.
    let declared = tus_patch(&client, &location, &key, 60_000, Some(200_000), Vec::new()).await;
    assert_eq!(declared.status(), 413);
    assert_eq!(head_offset(&client, &location, &key).await, (60_000, true));
    // Within the quota, the upload completes into a video.
    let done = tus_patch(
        &client,
        &location,
        &key,
        60_000,
        Some(90_000),
        vec![4u8; 30_000],
    )
    .await;
    assert_eq!(done.status(), 204);
    assert!(
        done.headers().contains_key("reel-video-id"),
        "{:?}",
        done.headers()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsized_companion_upload_stops_at_the_quota() {
    let env = Env::sqlite();
    let key = crate::hostile::uploader(&env, "alice");
    let (_server, url) = env.serve_with(0, &[("REEL_QUOTA_PER_KEY", QUOTA)]);
    let client = reqwest::Client::new();
    let companion = format!("{url}/v1/companion/s3/multipart");
    let created: Value = client
        .post(&companion)
        .bearer_auth(&key)
        .json(&json!({"filename": "big.bin", "metadata": {}}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("JSON");
    let upload_id = created["uploadId"].as_str().expect("uploadId").to_string();
    let object_key = created["key"].as_str().expect("key").to_string();
    let sign = |part: u32| {
        client
            .get(format!("{companion}/{upload_id}/{part}"))
            .query(&[("key", object_key.as_str())])
            .bearer_auth(&key)
            .send()
    };
    let mut etags = Vec::new();
    for part in 1..=2u32 {
        let signed = sign(part).await.expect("sign");
        assert_eq!(signed.status(), 200, "part {part}");
        let signed: Value = signed.json().await.expect("JSON");
        let put = client
            .put(signed["url"].as_str().expect("url"))
            .body(vec![part as u8; 60_000])
            .send()
            .await
            .expect("PUT");
        assert_eq!(put.status(), 200, "{:?}", put.text().await);
        etags.push(put.headers()["etag"].to_str().expect("etag").to_string());
    }
    // 120,000 bytes stored: no more parts are signed.
    let third = sign(3).await.expect("sign");
    assert_eq!(third.status(), 413);
    let message = crate::hostile::refusal(third, 413).await;
    assert!(message.contains("quota"), "{message}");
    // Completing what is stored is refused too, and the parts are dropped.
    let parts: Vec<Value> = etags
        .iter()
        .enumerate()
        .map(|(idx, etag)| json!({"PartNumber": idx + 1, "ETag": etag}))
        .collect();
    let completed = client
        .post(format!("{companion}/{upload_id}/complete"))
        .query(&[("key", object_key.as_str())])
        .bearer_auth(&key)
        .json(&json!({"parts": parts}))
        .send()
        .await
        .expect("complete");
    assert_eq!(completed.status(), 413);
    let videos: Value = client
        .get(format!("{url}/v1/videos"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    assert_eq!(videos["videos"], json!([]), "{videos}");
    let (status, upload) = {
        let response = client
            .get(format!("{url}/v1/uploads/{upload_id}"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("GET upload");
        let status = response.status().as_u16();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    assert!(
        status == 404 || upload["state"] == "aborted",
        "{status} {upload}"
    );
}

fn sources(env: &Env) -> Vec<String> {
    list_files(&env.objects_dir())
        .into_iter()
        .filter(|path| path.starts_with("sources/"))
        .collect()
}

async fn verify(api: &Api, body: Vec<u8>) -> reqwest::Response {
    api.client
        .post(format!("{}/v1/jobs/verify", api.url))
        .bearer_auth(&api.key)
        .body(body)
        .send()
        .await
        .expect("POST verify")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_jobs_meet_the_quota_and_remove_their_source_when_they_end() {
    let env = Env::sqlite();
    let admin = env.create_key();
    let media = std::fs::read(crate::common::generated_video(env.dir.path())).expect("video");
    // A quota just above the video: an over-quota body stays small enough
    // to be sent whole before the server's early 413 (no broken pipe).
    let quota = media.len() + 1024;
    let (_server, url) = env.serve_with(1, &[("REEL_QUOTA_PER_KEY", &quota.to_string())]);
    let api = Api::new(url, admin);
    let over = verify(&api, vec![0u8; quota + 1]).await;
    assert_eq!(over.status(), 413);
    assert!(sources(&env).is_empty(), "{:?}", sources(&env));
    // A job that fails (not media) and one that succeeds: neither keeps
    // its source once it has ended.
    for (body, end) in [
        (b"not media at all".to_vec(), "failed"),
        (media, "succeeded"),
    ] {
        let created = verify(&api, body).await;
        assert_eq!(created.status(), 201);
        let job: Value = created.json().await.expect("JSON");
        let done = api
            .wait_for_end(job["id"].as_str().expect("id"), Duration::from_secs(120))
            .await;
        assert_eq!(done["state"], end, "{done:#}");
        assert!(sources(&env).is_empty(), "{end}: {:?}", sources(&env));
    }
}

/// A still picture lasting `seconds` at `rate` frames per second: a tiny
/// file that declares a long duration.
fn long_and_sparse(dir: &Path, name: &str, seconds: u32, rate: &str) -> Vec<u8> {
    let path = dir.join(name);
    let source = format!("color=c=gray:size=64x64:rate={rate}");
    let seconds = seconds.to_string();
    reel_testkit::media::ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            &source,
            "-t",
            &seconds,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "1000",
        ],
        &path,
    );
    std::fs::read(&path).expect("generated")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_media_seconds_budget_refuses_at_the_probe_with_no_encode_task() {
    let env = Env::sqlite();
    let admin = env.create_key();
    let alice = crate::hostile::uploader(&env, "alice");
    let (_server, url) = env.serve_with(1, &[("REEL_MEDIA_SECONDS_PER_KEY", "60")]);
    let api = Api::new(url.clone(), admin);
    let forty = long_and_sparse(env.dir.path(), "forty.mp4", 40, "1");
    // The finding: 21,000 s at 0.1 fps in a few kilobytes.
    let sparse = long_and_sparse(env.dir.path(), "sparse.mp4", 21_000, "0.1");
    assert!(sparse.len() < 200_000, "{} bytes", sparse.len());
    let upload = |body: Vec<u8>| {
        let client = api.client.clone();
        let url = url.clone();
        let alice = alice.clone();
        async move {
            let response = client
                .post(format!("{url}/v1/videos?title=t"))
                .bearer_auth(&alice)
                .body(body)
                .send()
                .await
                .expect("POST /v1/videos");
            assert_eq!(response.status(), 201);
            let video: Value = response.json().await.expect("JSON");
            (
                video["id"].as_str().expect("id").to_string(),
                video["job_id"].as_str().expect("job id").to_string(),
            )
        }
    };
    let refused = |job: Value, used: &str| {
        assert_eq!(job["state"], "failed", "{job:#}");
        assert_eq!(job["error"]["step"], "media-probe", "{job:#}");
        let message = job["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("limits.media_seconds_per_key") && message.contains(used),
            "{message}"
        );
        let kinds: Vec<&str> = job["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|task| task["kind"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(kinds, ["media-probe"], "no task after the probe: {job:#}");
    };
    let limit = Duration::from_secs(180);
    let (first, first_job) = upload(forty.clone()).await;
    assert_eq!(
        api.wait_for_end(&first_job, limit).await["state"],
        "succeeded"
    );
    // Each alone fits (or not); together the budget holds.
    let (_, second_job) = upload(forty.clone()).await;
    refused(
        api.wait_for_end(&second_job, limit).await,
        "already take 40 s",
    );
    let (_, sparse_job) = upload(sparse).await;
    refused(api.wait_for_end(&sparse_job, limit).await, "lasts 21000 s");
    // Deleting a video gives its seconds back.
    let deleted = api
        .client
        .delete(format!("{url}/v1/videos/{first}"))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 200);
    let (_, third_job) = upload(forty).await;
    assert_eq!(
        api.wait_for_end(&third_job, limit).await["state"],
        "succeeded"
    );
}
