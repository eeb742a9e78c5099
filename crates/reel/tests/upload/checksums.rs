//! CRC64NVME end to end (issue 17 point 3): a part changed on its way to
//! storage is refused with its number named and nothing stored is lost;
//! a wrong whole-file CRC leaves the upload open; `reel upload` re-sends a
//! part corrupted in transit by a relay and completes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{crc64nvme_of, free_port, random_file, serve_on};
use crate::common::Env;

fn crc_text(bytes: &[u8]) -> String {
    reel_s3::checksum::Checksum::crc64nvme(reel_s3::checksum::crc64nvme(bytes)).to_base64()
}

/// The most server answer bytes a relay keeps.
const MAX_KEPT_ANSWER_BYTES: usize = 1 << 20;

/// A TCP relay in front of the server that flips one bit of the first
/// client-to-server stream reaching `flip_at` bytes (inside a part body),
/// and keeps what the server answered.
struct CorruptingRelay {
    address: SocketAddr,
    answers: Arc<Mutex<Vec<u8>>>,
    flipped: Arc<AtomicBool>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Drop for CorruptingRelay {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl CorruptingRelay {
    async fn start(upstream: SocketAddr, flip_at: u64) -> CorruptingRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the relay");
        let address = listener.local_addr().expect("relay address");
        let answers: Arc<Mutex<Vec<u8>>> = Arc::default();
        let flipped = Arc::new(AtomicBool::new(false));
        let task_answers = answers.clone();
        let task_flipped = flipped.clone();
        let accept_task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                connections.spawn(relay_connection(
                    inbound,
                    upstream,
                    flip_at,
                    task_flipped.clone(),
                    task_answers.clone(),
                ));
            }
        });
        CorruptingRelay {
            address,
            answers,
            flipped,
            accept_task,
        }
    }

    fn answers(&self) -> String {
        String::from_utf8_lossy(&self.answers.lock().expect("answers lock")).into_owned()
    }
}

async fn relay_connection(
    inbound: tokio::net::TcpStream,
    upstream: SocketAddr,
    flip_at: u64,
    flipped: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<u8>>>,
) {
    let Ok(outbound) = tokio::net::TcpStream::connect(upstream).await else {
        return;
    };
    let (mut in_read, mut in_write) = inbound.into_split();
    let (mut out_read, mut out_write) = outbound.into_split();
    let client_to_server = async {
        let mut offset: u64 = 0;
        let mut buffer = vec![0u8; 64 << 10];
        loop {
            let n = match in_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let end = offset + n as u64;
            if (offset..end).contains(&flip_at) && !flipped.swap(true, Ordering::SeqCst) {
                buffer[(flip_at - offset) as usize] ^= 0x01;
            }
            offset = end;
            if out_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = out_write.shutdown().await;
    };
    let server_to_client = async {
        let mut buffer = vec![0u8; 64 << 10];
        loop {
            let n = match out_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            {
                let mut kept = answers.lock().expect("answers lock");
                let room = MAX_KEPT_ANSWER_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..n.min(room)]);
            }
            if in_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = in_write.shutdown().await;
    };
    tokio::join!(client_to_server, server_to_client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reel_upload_resends_a_part_corrupted_in_transit_and_completes() {
    let env = Env::sqlite();
    let key = env.create_key();
    let port = free_port();
    let _server = serve_on(&env, port);
    let relay = CorruptingRelay::start(
        SocketAddr::from(([127, 0, 0, 1], port)),
        // Inside the first 8 MiB part body of whichever connection gets there.
        3 << 20,
    )
    .await;
    let relay_url = format!("http://{}", relay.address);
    let size = 4 * (8 << 20) + 4321;
    let (file, sha256) = random_file(env.dir.path(), "relayed.bin", size);
    let output = env
        .command(&["upload", "--json", "--server", &relay_url])
        .arg(&file)
        .arg("--state-dir")
        .arg(env.dir.path().join("relay-state"))
        .env("REEL_API_KEY", &key)
        .output()
        .expect("reel upload");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        relay.flipped.load(Ordering::SeqCst),
        "the relay altered a byte"
    );
    // Storage refused the altered part, naming it; reel upload sent it again.
    let answers = relay.answers();
    assert!(answers.contains("<Code>BadDigest</Code>"), "{answers}");
    let named = named_part_number(&answers).expect("the refusal names the part");
    assert!((1..=5).contains(&named), "part {named}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("upload json");
    let report = &report[0];
    assert_eq!(report["crc64nvme"], crc64nvme_of(&file).as_str());
    let video_id = report["video"]["id"].as_str().expect("video id");
    let stored = std::fs::read(env.objects_dir().join(format!("sources/{video_id}/source")))
        .expect("source");
    assert_eq!(hex::encode(Sha256::digest(&stored)), sha256);
}

/// The part number of "part N: the CRC64NVME you specified" in `text`.
fn named_part_number(text: &str) -> Option<u32> {
    let marker = ": the CRC64NVME you specified";
    let end = text.find(marker)?;
    let start = text[..end].rfind("part ")? + "part ".len();
    text[start..end].parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_parts_and_a_wrong_whole_crc_are_refused_and_the_upload_resumes() {
    let env = Env::sqlite();
    let key = env.create_key();
    let port = free_port();
    let _server = serve_on(&env, port);
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let size: usize = (8 << 20) + 1000;
    let (file, _) = random_file(env.dir.path(), "two-parts.bin", size);
    let data = std::fs::read(&file).expect("reading the file");
    let (first, second) = data.split_at(8 << 20);

    let created: Value = client
        .post(format!("{url}/v1/uploads"))
        .bearer_auth(&key)
        .json(&json!({"size": size, "filename": "two-parts.bin"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    assert_eq!(created["checksum"], "crc64nvme", "{created:#}");
    let id = created["id"].as_str().expect("id").to_string();
    let urls: Value = client
        .post(format!("{url}/v1/uploads/{id}/parts"))
        .bearer_auth(&key)
        .json(&json!({"part_numbers": [1, 2]}))
        .send()
        .await
        .expect("parts")
        .json()
        .await
        .expect("json");
    let part_url = |index: usize| {
        urls["urls"][index]["url"]
            .as_str()
            .expect("url")
            .to_string()
    };
    let put = |url: String, body: Vec<u8>, crc: String| {
        let client = client.clone();
        async move {
            client
                .put(url)
                .header("x-amz-checksum-crc64nvme", crc)
                .body(body)
                .send()
                .await
                .expect("put")
        }
    };
    let stored = put(part_url(0), first.to_vec(), crc_text(first)).await;
    assert_eq!(stored.status(), 200);
    assert_eq!(
        stored.headers()["x-amz-checksum-crc64nvme"],
        crc_text(first).as_str()
    );
    // Part 2 changed on the way: one bit of its body differs from the bytes
    // its CRC was computed over.
    let mut altered = second.to_vec();
    altered[500] ^= 0x10;
    let refused = put(part_url(1), altered, crc_text(second)).await;
    assert_eq!(refused.status(), 400);
    let text = refused.text().await.expect("refusal");
    assert!(text.contains("<Code>BadDigest</Code>"), "{text}");
    assert!(
        text.contains("part 2: the CRC64NVME you specified"),
        "{text}"
    );
    let show = || {
        let client = client.clone();
        let url = format!("{url}/v1/uploads/{id}");
        let key = key.clone();
        async move {
            client
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .expect("show")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    // Part 1 is kept, with the CRC storage computed; part 2 is not stored.
    let view = show().await;
    assert_eq!(
        view["parts"],
        json!([{"part_number": 1, "size": 8 << 20, "etag": view["parts"][0]["etag"], "crc64nvme": crc_text(first)}]),
        "{view:#}"
    );
    assert_eq!(
        put(part_url(1), second.to_vec(), crc_text(second))
            .await
            .status(),
        200
    );

    let complete = |body: Value| {
        let client = client.clone();
        let url = format!("{url}/v1/uploads/{id}/complete");
        let key = key.clone();
        async move {
            client
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .expect("complete")
        }
    };
    // A part CRC that differs from storage's names the part.
    let wrong_part = complete(json!({"parts": [
        {"part_number": 1, "crc64nvme": crc_text(second)},
        {"part_number": 2, "crc64nvme": crc_text(second)},
    ], "crc64nvme": crc_text(&data)}))
    .await;
    assert_eq!(wrong_part.status(), 409);
    let text = wrong_part.text().await.expect("text");
    assert!(text.contains("upload part 1 again"), "{text}");
    // A whole-file CRC that the parts do not combine to is refused before
    // anything is assembled: the upload stays open with both parts.
    let wrong_whole = complete(json!({"crc64nvme": crc_text(first)})).await;
    assert_eq!(wrong_whole.status(), 422);
    let text = wrong_whole.text().await.expect("text");
    assert!(text.contains("full-object CRC64NVME"), "{text}");
    assert!(text.contains("still open"), "{text}");
    let view = show().await;
    assert_eq!(view["state"], "open");
    assert_eq!(view["parts"].as_array().map(Vec::len), Some(2));

    let done = complete(json!({"parts": [
        {"part_number": 1, "crc64nvme": crc_text(first)},
        {"part_number": 2, "crc64nvme": crc_text(second)},
    ], "crc64nvme": crc_text(&data)}))
    .await;
    assert_eq!(done.status(), 200);
    let done: Value = done.json().await.expect("json");
    assert_eq!(done["checksums"]["crc64nvme"], crc_text(&data).as_str());
    assert_eq!(done["checksums"]["sha256"], Value::Null);
    let video_id = done["video"]["id"].as_str().expect("video id");
    let stored = std::fs::read(env.objects_dir().join(format!("sources/{video_id}/source")))
        .expect("source");
    assert!(stored == data, "the source is the file, byte for byte");
}
