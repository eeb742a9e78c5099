//! Resumable uploads through the real `reel serve`: `reel upload` (presigned
//! multipart to the embedded S3 endpoint) killed again and again, the server
//! killed and restarted mid-upload, tuspy and tus-js-client over tus, and
//! the API's refusals; `checksums` holds the CRC64NVME checks end to end.

mod checksums;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::{clients_dir, Env, Process};

/// The base64 CRC64NVME of a file, as `reel upload` reports it.
fn crc64nvme_of(path: &Path) -> String {
    let bytes = std::fs::read(path).expect("reading the file back");
    reel_s3::checksum::Checksum::crc64nvme(reel_s3::checksum::crc64nvme(&bytes)).to_base64()
}

/// A file of pseudo-random bytes (incompressible, deterministic).
fn random_file(dir: &Path, name: &str, size: usize) -> (PathBuf, String) {
    let path = dir.join(name);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut data = Vec::with_capacity(size);
    while data.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(size);
    std::fs::File::create(&path)
        .and_then(|mut file| file.write_all(&data))
        .expect("write file");
    (path, hex::encode(Sha256::digest(&data)))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn serve_on(env: &Env, port: u16) -> Process {
    let process = env.spawn(&[
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--workers",
        "0",
    ]);
    process.wait_for_line("listening on http://", Duration::from_secs(30));
    process
}

/// Files of the store under any of `prefixes`.
fn stored_under(env: &Env, prefixes: &[&str]) -> Vec<String> {
    crate::common::list_files(&env.objects_dir())
        .into_iter()
        .filter(|path| prefixes.iter().any(|prefix| path.starts_with(prefix)))
        .collect()
}

async fn video(url: &str, id: &str) -> Value {
    reqwest::get(format!("{url}/v1/videos/{id}"))
        .await
        .expect("get video")
        .json()
        .await
        .expect("video json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reel_upload_resumes_after_twenty_kills_and_a_server_restart() {
    let env = Env::sqlite();
    let key = env.create_key();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = serve_on(&env, port);
    // 30 parts of 8 MiB (the smallest part size reel hands out).
    let (file, sha256) = random_file(env.dir.path(), "big.bin", 30 * (8 << 20) - 12345);
    let state_dir = env.dir.path().join("upload-state");
    let upload_command = || {
        // Paced, so that every kill lands mid-upload.
        let mut command = env.command(&[
            "upload",
            "--json",
            "--parallel",
            "3",
            "--limit-rate",
            "24MiB",
            "--server",
            &url,
        ]);
        command
            .arg(&file)
            .arg("--state-dir")
            .arg(&state_dir)
            .env("REEL_API_KEY", &key);
        command
    };
    let client = reqwest::Client::new();
    let stored_parts = |upload_id: String| {
        let client = client.clone();
        let url = url.clone();
        let key = key.clone();
        async move {
            let view: Value = client
                .get(format!("{url}/v1/uploads/{upload_id}"))
                .bearer_auth(&key)
                .send()
                .await
                .expect("get upload")
                .json()
                .await
                .expect("upload json");
            view["parts"].as_array().map(Vec::len).unwrap_or(0)
        }
    };
    let mut rng_state: u64 = 42;
    let mut previous_parts = 0;
    let mut upload_id = None;
    let mut interruptions = 0;
    while interruptions < 20 {
        let mut child = upload_command()
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn reel upload");
        rng_state = rng_state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(150 + (rng_state >> 33) % 400);
        std::thread::sleep(delay);
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        interruptions += 1;
        if interruptions == 10 {
            // The server dies mid-upload too, and comes back on the same address.
            server.signal(libc::SIGKILL);
            let _ = server.child.wait();
            server = serve_on(&env, port);
        }
        if upload_id.is_none() {
            upload_id = std::fs::read_dir(&state_dir)
                .ok()
                .and_then(|mut entries| entries.next())
                .and_then(|entry| entry.ok())
                .and_then(|entry| std::fs::read_to_string(entry.path()).ok())
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .and_then(|hint| hint["upload_id"].as_str().map(str::to_string));
        }
        if let Some(id) = &upload_id {
            let parts = stored_parts(id.clone()).await;
            assert!(
                parts >= previous_parts,
                "storage lost parts: {parts} < {previous_parts}"
            );
            previous_parts = parts;
        }
    }
    let upload_id = upload_id.expect("the first runs created an upload");
    let before_final = stored_parts(upload_id.clone()).await;
    assert!(
        before_final > 0 && before_final < 30,
        "{before_final} parts stored after 20 kills"
    );
    let output = upload_command().output().expect("final reel upload");
    assert!(
        output.status.success(),
        "{} {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("upload json");
    let report = &report[0];
    assert_eq!(
        report["upload_id"],
        upload_id.as_str(),
        "resumed the same upload"
    );
    // The CRC64NVME of every part and of the whole file was checked; no
    // SHA-256 was asked for.
    assert_eq!(report["crc64nvme"], crc64nvme_of(&file).as_str());
    assert_eq!(report["sha256"], Value::Null);
    // The last run sent exactly the parts storage did not hold: nothing
    // already stored was sent again.
    let size = 30 * (8u64 << 20) - 12345;
    let expected_resent = size - before_final as u64 * (8 << 20);
    assert_eq!(report["resent_bytes"], expected_resent, "{report:#}");
    let video_id = report["video"]["id"].as_str().expect("video id");
    let view = video(&url, video_id).await;
    assert_eq!(view["source_size"], size);
    let stored = std::fs::read(env.objects_dir().join(format!("sources/{video_id}/source")))
        .expect("source");
    assert_eq!(
        hex::encode(Sha256::digest(&stored)),
        sha256,
        "stored source is byte-identical"
    );
    // Nothing of the multipart upload is left beside the source.
    let leftovers = stored_under(&env, &["s3-multipart"]);
    assert!(leftovers.is_empty(), "{leftovers:?}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_clients_upload_and_resume_into_videos() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve(0);
    let (file, sha256) = random_file(env.dir.path(), "tus.bin", 12 << 20);
    let endpoint = format!("{url}/files/");
    // tuspy: stops after 5 MiB, then a new client resumes from the URL.
    let output = Command::new(clients_dir().join(".venv/bin/python"))
        .arg(clients_dir().join("tuspy-upload.py"))
        .arg(&file)
        .arg(&endpoint)
        .args([
            "--stop-at",
            &(5 << 20).to_string(),
            "--chunk-size",
            &(1 << 20).to_string(),
        ])
        .env("REEL_API_KEY", &key)
        .output()
        .expect("tuspy (run scripts/install-test-clients.sh)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // tus-js-client with parallel uploads (concatenation).
    let output = Command::new("node")
        .arg(clients_dir().join("tus-upload.mjs"))
        .arg(&file)
        .arg(&endpoint)
        .args(["--parallel", "3"])
        .env("REEL_API_KEY", &key)
        .output()
        .expect("node");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let videos: Value = reqwest::get(format!("{url}/v1/videos"))
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let videos = videos["videos"].as_array().expect("videos");
    assert_eq!(videos.len(), 2, "{videos:#?}");
    for listed in videos {
        let id = listed["id"].as_str().expect("id");
        let stored =
            std::fs::read(env.objects_dir().join(format!("sources/{id}/source"))).expect("source");
        assert_eq!(hex::encode(Sha256::digest(&stored)), sha256);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_api_refuses_bad_requests_with_reasons() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve_with(0, &[("REEL_MAX_UPLOAD_SIZE", "64MiB")]);
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{url}{path}"))
            .bearer_auth(&key)
            .json(&body)
    };
    let error_of = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        (
            status,
            body["error"]["message"].as_str().unwrap_or("").to_string(),
        )
    };
    // Over the size limit.
    let (status, message) = error_of(
        post("/v1/uploads", json!({"size": 100u64 << 20}))
            .send()
            .await
            .expect("post"),
    )
    .await;
    assert_eq!(status, 413, "{message}");
    assert!(message.contains("limit"), "{message}");
    // Malformed and unknown ids.
    let (status, _) = error_of(
        client
            .get(format!("{url}/v1/uploads/not-an-id"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = error_of(
        client
            .get(format!("{url}/v1/uploads/{}", "0".repeat(32)))
            .bearer_auth(&key)
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, 404);
    // No key.
    let status = client
        .post(format!("{url}/v1/uploads"))
        .json(&json!({"size": 10}))
        .send()
        .await
        .expect("post")
        .status();
    assert_eq!(status, 401);
    // A real upload: two parts, one of them sent.
    let (file, _) = random_file(env.dir.path(), "two.bin", (8 << 20) + 1000);
    let data = std::fs::read(&file).expect("read");
    let created: Value = post(
        "/v1/uploads",
        json!({"size": data.len(), "sha256": "ab".repeat(32)}),
    )
    .send()
    .await
    .expect("post")
    .json()
    .await
    .expect("json");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["part_count"], 2, "{created:#}");
    let urls: Value = post(
        &format!("/v1/uploads/{id}/parts"),
        json!({"part_numbers": [1, 2]}),
    )
    .send()
    .await
    .expect("parts")
    .json()
    .await
    .expect("json");
    let first_url = urls["urls"][0]["url"].as_str().expect("url").to_string();
    let second_url = urls["urls"][1]["url"].as_str().expect("url").to_string();
    // Part numbers outside the upload.
    let (status, message) = error_of(
        post(
            &format!("/v1/uploads/{id}/parts"),
            json!({"part_numbers": [3]}),
        )
        .send()
        .await
        .expect("parts"),
    )
    .await;
    assert_eq!(status, 400, "{message}");
    // A tampered URL (another part number) is refused by storage.
    let tampered = first_url.replace("partNumber=1", "partNumber=2");
    let status = client
        .put(&tampered)
        .body(data[..1000].to_vec())
        .send()
        .await
        .expect("put")
        .status();
    assert_eq!(status, 403);
    let status = client
        .put(&first_url)
        .body(data[..8 << 20].to_vec())
        .send()
        .await
        .expect("put")
        .status();
    assert!(status.is_success(), "{status}");
    // Completing with a part missing says which.
    let (status, message) = error_of(
        post(&format!("/v1/uploads/{id}/complete"), json!({}))
            .send()
            .await
            .expect("complete"),
    )
    .await;
    assert_eq!(status, 409, "{message}");
    assert!(message.contains("parts 2"), "{message}");
    let status = client
        .put(&second_url)
        .body(data[8 << 20..].to_vec())
        .send()
        .await
        .expect("put")
        .status();
    assert!(status.is_success(), "{status}");
    // The declared SHA-256 was wrong: refused, and nothing is kept.
    let (status, message) = error_of(
        post(&format!("/v1/uploads/{id}/complete"), json!({}))
            .send()
            .await
            .expect("complete"),
    )
    .await;
    assert_eq!(status, 422, "{message}");
    assert!(message.contains("SHA-256"), "{message}");
    let left = stored_under(&env, &["sources", "s3-multipart"]);
    assert!(left.is_empty(), "{left:?}");
    let (status, _) = error_of(
        post(
            &format!("/v1/uploads/{id}/parts"),
            json!({"part_numbers": [1]}),
        )
        .send()
        .await
        .expect("parts"),
    )
    .await;
    assert_eq!(status, 410);
    // A deleted upload leaves nothing behind.
    let created: Value = post("/v1/uploads", json!({"size": 1000}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_string();
    let urls: Value = post(
        &format!("/v1/uploads/{id}/parts"),
        json!({"part_numbers": [1]}),
    )
    .send()
    .await
    .expect("parts")
    .json()
    .await
    .expect("json");
    let url_one = urls["urls"][0]["url"].as_str().expect("url").to_string();
    assert!(client
        .put(&url_one)
        .body(vec![7u8; 1000])
        .send()
        .await
        .expect("put")
        .status()
        .is_success());
    let status = client
        .delete(format!("{url}/v1/uploads/{id}"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("delete")
        .status();
    assert_eq!(status, 204);
    let status = client
        .put(&url_one)
        .body(vec![7u8; 1000])
        .send()
        .await
        .expect("put")
        .status();
    assert_eq!(status, 404, "a part of a cancelled upload");
    let left = stored_under(&env, &["s3-multipart"]);
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_uploads_presigned_parts_into_a_video() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve(0);
    let (file, sha256) = random_file(env.dir.path(), "boto.bin", (16 << 20) + 4321);
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{url}/v1/uploads"))
        .bearer_auth(&key)
        .json(&json!({"size": (16 << 20) + 4321, "filename": "boto.bin", "sha256": sha256}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let storage = &created["storage"];
    // The operator's boto3 holds the embedded endpoint's credentials.
    let secret = std::fs::read_to_string(env.dir.path().join("embedded-s3.secret"))
        .expect("the embedded endpoint's secret in the data dir");
    let output = Command::new(clients_dir().join(".venv/bin/python"))
        .arg(clients_dir().join("s3-parts-for-upload.py"))
        .arg(&file)
        .args([
            storage["endpoint"].as_str().expect("endpoint"),
            storage["bucket"].as_str().expect("bucket"),
            storage["key"].as_str().expect("key"),
            storage["upload_id"].as_str().expect("upload id"),
            &created["part_size"].to_string(),
        ])
        .env("REEL_S3_ACCESS_KEY", "reel-embedded")
        .env("REEL_S3_SECRET", secret.trim())
        .output()
        .expect("boto3 (run scripts/install-test-clients.sh)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(
        listed["parts"].as_array().map(Vec::len),
        Some(3),
        "{listed:#}"
    );
    let id = created["id"].as_str().expect("id");
    let completed: Value = client
        .post(format!("{url}/v1/uploads/{id}/complete"))
        .bearer_auth(&key)
        .json(&json!({"parts": listed["parts"]}))
        .send()
        .await
        .expect("complete")
        .json()
        .await
        .expect("json");
    let video_id = completed["video"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{completed:#}"));
    let stored = std::fs::read(env.objects_dir().join(format!("sources/{video_id}/source")))
        .expect("source");
    assert_eq!(hex::encode(Sha256::digest(&stored)), sha256);
    assert_eq!(completed["upload"]["state"], "complete", "{completed:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_per_key_holds_across_every_way_in() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve_with(0, &[("REEL_QUOTA_PER_KEY", "1MiB")]);
    let client = reqwest::Client::new();
    // A streamed video within the quota is taken.
    let first = client
        .post(format!("{url}/v1/videos?title=a"))
        .bearer_auth(&key)
        .body(vec![1u8; 600 << 10])
        .send()
        .await
        .expect("post");
    assert_eq!(first.status(), 201);
    // The next one would pass it: refused, with the quota in the message.
    let second = client
        .post(format!("{url}/v1/videos?title=b"))
        .bearer_auth(&key)
        .body(vec![2u8; 600 << 10])
        .send()
        .await
        .expect("post");
    assert_eq!(second.status(), 413);
    let body: Value = second.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("quota"),
        "{body:#}"
    );
    // Presigned multipart and tus are refused at creation.
    let multipart = client
        .post(format!("{url}/v1/uploads"))
        .bearer_auth(&key)
        .json(&json!({"size": 600 << 10}))
        .send()
        .await
        .expect("post");
    assert_eq!(multipart.status(), 413);
    let tus = client
        .post(format!("{url}/files/"))
        .bearer_auth(&key)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", (600u64 << 10).to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(tus.status(), 413);
    let text = tus.text().await.unwrap_or_default();
    assert!(text.contains("quota"), "{text}");
    // Nothing of the refused ones was kept.
    let videos: Value = reqwest::get(format!("{url}/v1/videos"))
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(videos["videos"].as_array().map(Vec::len), Some(1));
    assert_eq!(stored_under(&env, &["sources"]).len(), 1);
}

/// The calls `@uppy/aws-s3` makes with `endpoint: "<server>/v1/companion"`,
/// in its order and with its payloads (PascalCase parts, quoted ETags).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uppy_companion_routes_upload_resume_and_abort() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (server, url) = env.serve_with(0, &[("REEL_MAX_UPLOAD_SIZE", "12MiB")]);
    let companion = format!("{url}/v1/companion/s3/multipart");
    let client = reqwest::Client::new();
    let size = (10 << 20) + 777;
    let (file, sha256) = random_file(env.dir.path(), "uppy.bin", size);
    let bytes = std::fs::read(&file).expect("read");
    let chunks: Vec<&[u8]> = bytes.chunks(5 << 20).collect();
    let call = |request: reqwest::RequestBuilder| {
        let key = key.clone();
        async move {
            let response = request.bearer_auth(key).send().await.expect("send");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };
    let (status, created) = call(client.post(&companion).json(&json!({
        "filename": "uppy.bin", "type": "application/octet-stream",
        "metadata": {"name": "uppy.bin", "type": "application/octet-stream"}
    })))
    .await;
    assert_eq!(status, 200, "{created:#}");
    let upload_id = created["uploadId"].as_str().expect("uploadId").to_string();
    let object_key = created["key"].as_str().expect("key").to_string();
    let query = format!("key={}", urlencode(&object_key));
    let put_part = |number: usize| {
        let client = client.clone();
        let sign_url = format!("{companion}/{upload_id}/{number}?{query}");
        let body = chunks[number - 1].to_vec();
        async move {
            let (status, signed) = call(client.get(sign_url)).await;
            assert_eq!(status, 200, "{signed:#}");
            assert_eq!(signed["method"], "PUT");
            assert!(signed["expires"].as_u64().is_some_and(|secs| secs > 0));
            let stored = client
                .put(signed["url"].as_str().expect("url"))
                .body(body)
                .send()
                .await
                .expect("put");
            assert_eq!(stored.status(), 200);
            stored.headers()["etag"].to_str().expect("etag").to_string()
        }
    };
    // Two parts, then the page "reloads": listParts says what storage holds.
    let first = put_part(1).await;
    let second = put_part(2).await;
    let (status, listed) = call(client.get(format!("{companion}/{upload_id}?{query}"))).await;
    assert_eq!(status, 200, "{listed:#}");
    let listed = listed.as_array().expect("a list of parts").clone();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["PartNumber"], 1);
    assert_eq!(listed[0]["Size"], 5 << 20);
    assert_eq!(listed[0]["ETag"], first.as_str());
    assert_eq!(listed[1]["ETag"], second.as_str());
    let third = put_part(3).await;
    // A wrong key is refused; so is a part number out of range.
    let (status, _) =
        call(client.get(format!("{companion}/{upload_id}?key=sources%2Fother"))).await;
    assert_eq!(status, 404);
    let (status, refused) = call(client.get(format!("{companion}/{upload_id}/0?{query}"))).await;
    assert_eq!(status, 400, "{refused:#}");
    let parts = json!({"parts": [
        {"PartNumber": 1, "ETag": first}, {"PartNumber": 2, "ETag": second}, {"PartNumber": 3, "ETag": third}
    ]});
    let (status, completed) = call(
        client
            .post(format!("{companion}/{upload_id}/complete?{query}"))
            .json(&parts),
    )
    .await;
    assert_eq!(status, 200, "{completed:#} {}", server.output());
    let video_id = completed["video"]["id"].as_str().expect("video id");
    assert_eq!(
        completed["location"],
        format!("{url}/v1/videos/{video_id}").as_str()
    );
    let stored = std::fs::read(env.objects_dir().join(&object_key)).expect("source");
    assert_eq!(hex::encode(Sha256::digest(&stored)), sha256);

    // Over the size limit: refused at completion, nothing kept.
    let (_, big) = call(
        client
            .post(&companion)
            .json(&json!({"filename": "big.bin"})),
    )
    .await;
    let big_id = big["uploadId"].as_str().expect("uploadId").to_string();
    let big_query = format!("key={}", urlencode(big["key"].as_str().expect("key")));
    let mut big_parts = Vec::new();
    for number in 1..=3 {
        let (status, signed) =
            call(client.get(format!("{companion}/{big_id}/{number}?{big_query}"))).await;
        assert_eq!(status, 200, "{signed:#}");
        let stored = client
            .put(signed["url"].as_str().expect("url"))
            .body(vec![7u8; 5 << 20])
            .send()
            .await
            .expect("put");
        let etag = stored.headers()["etag"].to_str().expect("etag").to_string();
        big_parts.push(json!({"PartNumber": number, "ETag": etag}));
    }
    // 15 MiB stored: no more parts are signed.
    let (status, refused) = call(client.get(format!("{companion}/{big_id}/4?{big_query}"))).await;
    assert_eq!(status, 413, "{refused:#}");
    let (status, refused) = call(
        client
            .post(format!("{companion}/{big_id}/complete?{big_query}"))
            .json(&json!({"parts": big_parts})),
    )
    .await;
    assert_eq!(status, 413, "{refused:#}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("limits.max_upload_size"),
        "{refused:#}"
    );
    // Abort answers `{}` and removes the parts.
    let (_, aborted_upload) = call(client.post(&companion).json(&json!({"filename": "x"}))).await;
    let aborted_id = aborted_upload["uploadId"].as_str().expect("uploadId");
    let aborted_query = format!(
        "key={}",
        urlencode(aborted_upload["key"].as_str().expect("key"))
    );
    let (status, signed) =
        call(client.get(format!("{companion}/{aborted_id}/1?{aborted_query}"))).await;
    assert_eq!(status, 200);
    client
        .put(signed["url"].as_str().expect("url"))
        .body(vec![1u8; 1000])
        .send()
        .await
        .expect("put");
    let (status, aborted) =
        call(client.delete(format!("{companion}/{aborted_id}?{aborted_query}"))).await;
    assert_eq!((status, aborted), (200, json!({})));
    assert_eq!(stored_under(&env, &["s3-multipart"]), Vec::<String>::new());
    assert_eq!(
        stored_under(&env, &["sources"]),
        vec![object_key.clone()],
        "only the completed upload's source remains"
    );
}

/// Percent-encodes a source key (`sources/{id}/source`) for a query.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// moto's S3 server on a free loopback port, with one bucket.
pub(crate) struct S3Server {
    child: std::process::Child,
    pub(crate) endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn start_s3_server(bucket: &str) -> S3Server {
    let port = free_port();
    let child = Command::new(clients_dir().join(".venv/bin/python"))
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("moto's S3 server (run scripts/install-test-clients.sh)");
    let server = S3Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(response) = client
            .put(format!("{}/{bucket}", server.endpoint))
            .send()
            .await
        {
            assert!(response.status().is_success(), "creating the bucket");
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto's S3 server did not start");
}

/// With `storage = "s3://…"` the part URLs point at the store itself: the
/// bytes never pass through reel, and completion, SHA-256 check and abort
/// go to the store's multipart API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_storage_hands_out_part_urls_of_the_store() {
    let s3 = start_s3_server("reel-media").await;
    let mut env = Env::sqlite();
    env.storage = "s3://reel-media".to_string();
    let key = env.create_key();
    let s3_env = [
        ("REEL_S3_ENDPOINT", s3.endpoint.as_str()),
        ("REEL_S3_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "reel-test"),
        ("AWS_SECRET_ACCESS_KEY", "reel-test-secret"),
    ];
    let (_server, url) = env.serve_with(0, &s3_env);
    let size = (20 << 20) + 12_345;
    let (file, sha256) = random_file(env.dir.path(), "to-s3.bin", size);
    let output = env
        .command(&[
            "upload",
            "--server",
            &url,
            "--api-key",
            &key,
            "--json",
            "--sha256",
        ])
        .arg(&file)
        .output()
        .expect("reel upload");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let uploaded: Value = serde_json::from_slice(&output.stdout).expect("json");
    let uploaded = &uploaded[0];
    assert_eq!(uploaded["sha256"], sha256.as_str(), "{uploaded:#}");
    assert_eq!(uploaded["crc64nvme"], crc64nvme_of(&file).as_str());
    let video_id = uploaded["video"]["id"].as_str().expect("video id");
    // The source is in the store, byte for byte.
    let stored = reqwest::get(format!(
        "{}/reel-media/sources/{video_id}/source",
        s3.endpoint
    ))
    .await
    .expect("get")
    .bytes()
    .await
    .expect("bytes");
    assert_eq!(
        hex::encode(Sha256::digest(&stored)),
        sha256,
        "{} bytes: {}",
        stored.len(),
        String::from_utf8_lossy(&stored[..stored.len().min(300)])
    );

    // Part URLs name the store; a declared SHA-256 that differs is refused
    // after completion and nothing is kept; abort leaves no upload behind.
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{url}/v1/uploads"))
        .bearer_auth(&key)
        .json(&json!({"size": 6 << 20, "sha256": "0".repeat(64)}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    assert_eq!(created["storage"]["endpoint"], s3.endpoint.as_str());
    let id = created["id"].as_str().expect("id");
    let urls: Value = client
        .post(format!("{url}/v1/uploads/{id}/parts"))
        .bearer_auth(&key)
        .json(&json!({"part_numbers": [1]}))
        .send()
        .await
        .expect("parts")
        .json()
        .await
        .expect("json");
    let part_url = urls["urls"][0]["url"].as_str().expect("url");
    assert!(part_url.starts_with(&s3.endpoint), "{part_url}");
    assert!(part_url.contains("X-Amz-Signature="), "{part_url}");
    let put = client
        .put(part_url)
        .body(vec![3u8; 6 << 20])
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);
    let listed: Value = client
        .get(format!("{url}/v1/uploads/{id}"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("show")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["parts"][0]["size"], 6 << 20, "{listed:#}");
    let refused = client
        .post(format!("{url}/v1/uploads/{id}/complete"))
        .bearer_auth(&key)
        .json(&json!({}))
        .send()
        .await
        .expect("complete");
    assert_eq!(refused.status(), 422);
    let objects = reqwest::get(format!("{}/reel-media?list-type=2", s3.endpoint))
        .await
        .expect("list")
        .text()
        .await
        .expect("text");
    assert_eq!(
        objects.matches("<Key>").count(),
        1,
        "only the first video's source: {objects}"
    );
    let another: Value = client
        .post(format!("{url}/v1/uploads"))
        .bearer_auth(&key)
        .json(&json!({"size": 1000}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let deleted = client
        .delete(format!(
            "{url}/v1/uploads/{}",
            another["id"].as_str().expect("id")
        ))
        .bearer_auth(&key)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    let in_progress = reqwest::get(format!("{}/reel-media?uploads", s3.endpoint))
        .await
        .expect("list uploads")
        .text()
        .await
        .expect("text");
    assert_eq!(in_progress.matches("<Upload>").count(), 0, "{in_progress}");
}
