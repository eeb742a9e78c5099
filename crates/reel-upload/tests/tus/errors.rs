//! Raw HTTP: every protocol path and every error status of the server.

use std::time::Duration;

use base64::Engine;
use reel_jobs::store::JobStore;
use reel_model::uploads::UploadStatus;
use reel_model::{Uploads as _, Videos as _, Visibilities as _};
use reqwest::Method;
use sha1::Digest;

use crate::harness::{
    header, location, random_bytes, settings, upload_id, TestServer, OFFSET_STREAM, TUS,
};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn message(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    body["error"]["message"]
        .as_str()
        .expect("message")
        .to_string()
}

#[tokio::test]
async fn options_advertises_version_extensions_and_limits() {
    let server = TestServer::start(settings()).await;
    let response = server
        .http
        .request(Method::OPTIONS, &server.endpoint)
        .send()
        .await
        .expect("OPTIONS");
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "tus-version").as_deref(), Some(TUS));
    let extensions = header(&response, "tus-extension").expect("Tus-Extension");
    for extension in [
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "expiration",
        "checksum",
        "termination",
        "concatenation",
    ] {
        assert!(
            extensions.split(',').any(|name| name == extension),
            "{extension}"
        );
    }
    assert_eq!(
        header(&response, "tus-max-size"),
        Some((64u64 << 20).to_string())
    );
    assert_eq!(
        header(&response, "tus-checksum-algorithm").as_deref(),
        Some("sha1,sha256")
    );
    assert_eq!(header(&response, "tus-resumable"), None);
}

#[tokio::test]
async fn create_head_patch_complete_with_video_id() {
    let server = TestServer::start(settings()).await;
    let bytes = random_bytes(5 << 20, 1);
    let url = server.create(bytes.len() as u64).await;
    assert!(
        url.starts_with(&format!("{}/files/", server.origin)),
        "{url}"
    );
    let head = server.head(&url).await;
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "upload-offset").as_deref(), Some("0"));
    assert_eq!(
        header(&head, "upload-length"),
        Some(bytes.len().to_string())
    );
    assert_eq!(header(&head, "cache-control").as_deref(), Some("no-store"));
    assert_eq!(header(&head, "tus-resumable").as_deref(), Some(TUS));
    assert_eq!(
        header(&head, "upload-metadata").as_deref(),
        Some("filename Y2xpcC5iaW4=")
    );
    assert!(header(&head, "upload-expires")
        .expect("Upload-Expires")
        .ends_with(" GMT"));

    let first = server.patch(&url, 0, bytes[..1000].to_vec()).await;
    assert_eq!(first.status(), 204);
    assert_eq!(header(&first, "upload-offset").as_deref(), Some("1000"));
    assert_eq!(header(&first, "reel-video-id"), None);
    let last = server.patch(&url, 1000, bytes[1000..].to_vec()).await;
    assert_eq!(last.status(), 204);
    assert_eq!(
        header(&last, "upload-offset"),
        Some(bytes.len().to_string())
    );
    let video_id = header(&last, "reel-video-id").expect("Reel-Video-Id on the last PATCH");
    let row = server.upload_row(&url).await;
    assert_eq!(row.video_id.map(|id| id.to_string()), Some(video_id));
    assert_eq!(row.filename, "clip.bin");
    server.assert_completed_as(&url, &bytes).await;
    let video = server
        .state
        .store
        .video(row.video_id.expect("video id"))
        .await
        .expect("video")
        .expect("video row");
    assert_eq!(video.title, "clip.bin");
    // Owned by the key's id (issue 13: names are not identities).
    let tester = reel_model::keys::verify_key(&server.state.store, &server.key)
        .await
        .expect("verify")
        .expect("the tester key");
    assert_eq!(tester.name, "tester");
    assert_eq!(video.owner.as_deref(), Some(tester.key_id.as_str()));
}

#[tokio::test]
async fn creation_with_upload_and_deferred_length() {
    let server = TestServer::start(settings()).await;
    let bytes = random_bytes(300_000, 2);
    let response = server
        .request(Method::POST, &server.endpoint)
        .header("upload-defer-length", "1")
        .header("content-type", OFFSET_STREAM)
        .body(bytes[..100_000].to_vec())
        .send()
        .await
        .expect("POST with data");
    assert_eq!(response.status(), 201);
    assert_eq!(
        header(&response, "upload-offset").as_deref(),
        Some("100000")
    );
    let url = location(&response);
    let head = server.head(&url).await;
    assert_eq!(header(&head, "upload-defer-length").as_deref(), Some("1"));
    assert_eq!(header(&head, "upload-length"), None);
    let last = server
        .request(Method::PATCH, &url)
        .header("upload-offset", 100_000)
        .header("upload-length", bytes.len())
        .header("content-type", OFFSET_STREAM)
        .body(bytes[100_000..].to_vec())
        .send()
        .await
        .expect("PATCH with length");
    assert_eq!(last.status(), 204, "{:?}", last.text().await);
    server.assert_completed_as(&url, &bytes).await;
}

#[tokio::test]
async fn declared_sha256_is_verified_on_completion() {
    let server = TestServer::start(settings()).await;
    let bytes = random_bytes(1000, 3);
    let wrong = "00".repeat(32);
    let response = server
        .request(Method::POST, &server.endpoint)
        .header("upload-length", bytes.len())
        .header(
            "upload-metadata",
            format!("sha256 {}", b64(wrong.as_bytes())),
        )
        .send()
        .await
        .expect("POST");
    let url = location(&response);
    let last = server.patch(&url, 0, bytes.clone()).await;
    assert_eq!(last.status(), 460);
    assert!(message(last).await.contains("declared"));
    assert_eq!(server.upload_row(&url).await.status, UploadStatus::Aborted);
    assert_eq!(server.objects_under("uploads").await, Vec::<String>::new());
    assert_eq!(server.objects_under("sources").await, Vec::<String>::new());
    assert_eq!(server.head(&url).await.status(), 410);
}

#[tokio::test]
async fn visibility_metadata_makes_the_video_private_and_a_bad_value_is_400() {
    let server = TestServer::start(settings()).await;
    let create = |visibility: &str| {
        server
            .request(Method::POST, &server.endpoint)
            .header("upload-length", 1000)
            .header(
                "upload-metadata",
                format!(
                    "filename {},visibility {}",
                    b64(b"a.mp4"),
                    b64(visibility.as_bytes())
                ),
            )
            .send()
    };
    let refused = create("secret").await.expect("POST");
    assert_eq!(refused.status(), 400);
    assert!(message(refused).await.contains("visibility"));
    assert_eq!(server.objects_under("uploads").await, Vec::<String>::new());

    let bytes = random_bytes(1000, 4);
    let url = location(&create("private").await.expect("POST"));
    assert_eq!(server.patch(&url, 0, bytes.clone()).await.status(), 204);
    server.assert_completed_as(&url, &bytes).await;
    let video_id = server.upload_row(&url).await.video_id.expect("video");
    let visibility = server
        .state
        .store
        .video_visibility(video_id)
        .await
        .expect("read")
        .expect("video");
    assert_eq!(visibility, reel_model::Visibility::Private);
}

#[tokio::test]
async fn offset_mismatch_is_409_and_writes_nothing() {
    let server = TestServer::start(settings()).await;
    let url = server.create(100).await;
    assert_eq!(server.patch(&url, 0, vec![1; 10]).await.status(), 204);
    let response = server.patch(&url, 5, vec![2; 10]).await;
    assert_eq!(response.status(), 409);
    assert!(message(response).await.contains("resume from 10"));
    let head = server.head(&url).await;
    assert_eq!(header(&head, "upload-offset").as_deref(), Some("10"));
    let id = upload_id(&url);
    assert_eq!(
        server.objects_under(&format!("uploads/{id}")).await.len(),
        1
    );
    assert_eq!(
        server
            .state
            .store
            .upload_parts(&id)
            .await
            .expect("parts")
            .len(),
        1
    );
}

#[tokio::test]
async fn checksum_mismatch_is_460_and_discards_the_chunk() {
    let server = TestServer::start(settings()).await;
    let url = server.create(100).await;
    let body = vec![7u8; 40];
    let wrong = sha1::Sha1::digest(b"something else");
    let response = server
        .request(Method::PATCH, &url)
        .header("upload-offset", 0)
        .header("content-type", OFFSET_STREAM)
        .header("upload-checksum", format!("sha1 {}", b64(&wrong)))
        .body(body.clone())
        .send()
        .await
        .expect("PATCH");
    assert_eq!(response.status(), 460);
    let head = server.head(&url).await;
    assert_eq!(header(&head, "upload-offset").as_deref(), Some("0"));
    let id = upload_id(&url);
    assert_eq!(
        server.objects_under(&format!("uploads/{id}")).await,
        Vec::<String>::new()
    );
    // The same chunk with its right sha256 is taken.
    let right = sha2::Sha256::digest(&body);
    let response = server
        .request(Method::PATCH, &url)
        .header("upload-offset", 0)
        .header("content-type", OFFSET_STREAM)
        .header("upload-checksum", format!("sha256 {}", b64(&right)))
        .body(body)
        .send()
        .await
        .expect("PATCH");
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "upload-offset").as_deref(), Some("40"));
}

#[tokio::test]
async fn unknown_checksum_algorithm_is_400() {
    let server = TestServer::start(settings()).await;
    let url = server.create(100).await;
    let response = server
        .request(Method::PATCH, &url)
        .header("upload-offset", 0)
        .header("content-type", OFFSET_STREAM)
        .header("upload-checksum", "md5 1B2M2Y8AsgTpgAmY7PhCfg==")
        .body(vec![0u8; 10])
        .send()
        .await
        .expect("PATCH");
    assert_eq!(response.status(), 400);
    assert!(message(response).await.contains("sha1,sha256"));
}

#[tokio::test]
async fn wrong_or_missing_version_is_412() {
    let server = TestServer::start(settings()).await;
    let url = server.create(100).await;
    let response = server
        .http
        .head(&url)
        .header("tus-resumable", "0.2.2")
        .bearer_auth(&server.key)
        .send()
        .await
        .expect("HEAD");
    assert_eq!(response.status(), 412);
    assert_eq!(header(&response, "tus-version").as_deref(), Some(TUS));
    assert_eq!(header(&response, "tus-resumable").as_deref(), Some(TUS));
    let response = server
        .http
        .post(&server.endpoint)
        .header("upload-length", 10)
        .bearer_auth(&server.key)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 412);
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let server = TestServer::start(settings()).await;
    let url = server.create(100).await;
    let response = server
        .request(Method::PATCH, &url)
        .header("upload-offset", 0)
        .header("content-type", "application/octet-stream")
        .body(vec![0u8; 10])
        .send()
        .await
        .expect("PATCH");
    assert_eq!(response.status(), 415);
    let head = server.head(&url).await;
    assert_eq!(header(&head, "upload-offset").as_deref(), Some("0"));
}

#[tokio::test]
async fn over_the_size_limit_is_413() {
    let mut limited = settings();
    limited.max_upload_bytes = 1000;
    let server = TestServer::start(limited).await;
    let response = server
        .request(Method::POST, &server.endpoint)
        .header("upload-length", 1001)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 413);
    assert!(message(response).await.contains("limit is 1000"));
    // A deferred length is checked when it is declared...
    let response = server
        .request(Method::POST, &server.endpoint)
        .header("upload-defer-length", "1")
        .send()
        .await
        .expect("POST deferred");
    let deferred = location(&response);
    let response = server
        .request(Method::PATCH, &deferred)
        .header("upload-offset", 0)
        .header("upload-length", 5000)
        .header("content-type", OFFSET_STREAM)
        .body(vec![0u8; 10])
        .send()
        .await
        .expect("PATCH");
    assert_eq!(response.status(), 413);
    // ...and so is a body past the limit.
    let response = server.patch(&deferred, 0, vec![0u8; 1001]).await;
    assert_eq!(response.status(), 413);
    // A body longer than the declared length writes nothing.
    let url = server.create(100).await;
    let response = server.patch(&url, 0, vec![0u8; 101]).await;
    assert_eq!(response.status(), 413);
    assert_eq!(
        header(&server.head(&url).await, "upload-offset").as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn unknown_or_foreign_upload_is_404() {
    let server = TestServer::start(settings()).await;
    let unknown = format!("{}0123456789abcdef0123456789abcdef", server.endpoint);
    assert_eq!(server.head(&unknown).await.status(), 404);
    assert_eq!(server.patch(&unknown, 0, vec![1]).await.status(), 404);
    let url = server.create(100).await;
    let other_key = reel_model::keys::create_key(&server.state.store, "someone-else")
        .await
        .expect("second key");
    let response = server
        .http
        .head(&url)
        .header("tus-resumable", TUS)
        .bearer_auth(&other_key)
        .send()
        .await
        .expect("HEAD");
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn expired_upload_is_410() {
    let mut short = settings();
    short.expiry = Duration::from_millis(300);
    let server = TestServer::start(short).await;
    let url = server.create(100).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(server.head(&url).await.status(), 410);
    let response = server.patch(&url, 0, vec![1; 10]).await;
    assert_eq!(response.status(), 410);
    assert!(message(response).await.contains("expired"));
}

#[tokio::test]
async fn malformed_id_or_header_is_400() {
    let server = TestServer::start(settings()).await;
    for id in [
        "not-an-id",
        "..%2F..%2Fetc%2Fpasswd",
        "0123456789ABCDEF0123456789ABCDEF",
    ] {
        let response = server.head(&format!("{}{id}", server.endpoint)).await;
        assert_eq!(response.status(), 400, "{id}");
    }
    let url = server.create(100).await;
    let response = server
        .request(Method::PATCH, &url)
        .header("upload-offset", "-1")
        .header("content-type", OFFSET_STREAM)
        .body(vec![1])
        .send()
        .await
        .expect("PATCH");
    assert_eq!(response.status(), 400);
    for (name, value) in [
        ("upload-length", "ten"),
        ("upload-defer-length", "2"),
        ("upload-metadata", "filename !!!"),
        ("upload-concat", "final;/files/../../etc/passwd"),
        (
            "upload-concat",
            "final;http://elsewhere.example/other/0123456789abcdef0123456789abcdef",
        ),
        ("upload-concat", "sideways"),
    ] {
        let mut request = server
            .request(Method::POST, &server.endpoint)
            .header(name, value);
        if name != "upload-length" && name != "upload-defer-length" && name != "upload-concat" {
            request = request.header("upload-length", 10);
        }
        if name == "upload-concat" && value == "sideways" {
            request = request.header("upload-length", 10);
        }
        assert_eq!(
            request.send().await.expect("POST").status(),
            400,
            "{name}: {value}"
        );
    }
}

#[tokio::test]
async fn concatenation_assembles_partials_and_refuses_patch_on_final() {
    let server = TestServer::start(settings()).await;
    let bytes = random_bytes(3000, 4);
    let mut partial_urls = Vec::new();
    for chunk in bytes.chunks(1000) {
        let response = server
            .request(Method::POST, &server.endpoint)
            .header("upload-length", chunk.len())
            .header("upload-concat", "partial")
            .send()
            .await
            .expect("POST partial");
        let url = location(&response);
        let patched = server.patch(&url, 0, chunk.to_vec()).await;
        assert_eq!(patched.status(), 204);
        assert_eq!(
            header(&patched, "reel-video-id"),
            None,
            "a partial is no video"
        );
        partial_urls.push(url);
    }
    // An unfinished partial cannot be concatenated.
    let response = server
        .request(Method::POST, &server.endpoint)
        .header("upload-length", 10)
        .header("upload-concat", "partial")
        .send()
        .await
        .expect("POST partial");
    let unfinished = location(&response);
    let response = server
        .request(Method::POST, &server.endpoint)
        .header(
            "upload-concat",
            format!("final;{} {unfinished}", partial_urls[0]),
        )
        .send()
        .await
        .expect("POST final");
    assert_eq!(response.status(), 400);
    // Relative and absolute URLs both name partials.
    let relative = partial_urls[1]
        .trim_start_matches(&server.origin)
        .to_string();
    let response = server
        .request(Method::POST, &server.endpoint)
        .header(
            "upload-concat",
            format!("final;{} {relative} {}", partial_urls[0], partial_urls[2]),
        )
        .header("upload-metadata", "filename am9pbmVkLmJpbg==")
        .send()
        .await
        .expect("POST final");
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    assert!(header(&response, "reel-video-id").is_some());
    let final_url = location(&response);
    server.assert_completed_as(&final_url, &bytes).await;
    let head = server.head(&final_url).await;
    assert_eq!(
        header(&head, "upload-offset"),
        Some(bytes.len().to_string())
    );
    assert!(header(&head, "upload-concat")
        .expect("Upload-Concat")
        .starts_with("final;/files/"));
    let response = server.patch(&final_url, 3000, vec![1]).await;
    assert_eq!(response.status(), 403);
    // The partials were consumed.
    assert_eq!(server.head(&partial_urls[0]).await.status(), 404);
}

#[tokio::test]
async fn final_upload_refuses_another_owners_partials() {
    let server = TestServer::start(settings()).await;
    let response = server
        .request(Method::POST, &server.endpoint)
        .header("upload-length", 10)
        .header("upload-concat", "partial")
        .send()
        .await
        .expect("POST partial");
    let partial = location(&response);
    assert_eq!(server.patch(&partial, 0, vec![1; 10]).await.status(), 204);
    let other_key = reel_model::keys::create_key(&server.state.store, "someone-else")
        .await
        .expect("second key");
    let response = server
        .http
        .post(&server.endpoint)
        .header("tus-resumable", TUS)
        .bearer_auth(&other_key)
        .header("upload-concat", format!("final;{partial}"))
        .send()
        .await
        .expect("POST final");
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn locked_upload_is_423_until_released() {
    let server = TestServer::start(settings()).await;
    let url = server.create(100).await;
    let id = upload_id(&url);
    // Another API process sharing the database holds the lease.
    let other_process = JobStore::connect(&server.db_url, 2)
        .await
        .expect("second store handle");
    assert!(other_process
        .lock_upload(&id, "other-process", Duration::from_secs(60))
        .await
        .expect("lock"));
    let response = server.patch(&url, 0, vec![1; 10]).await;
    assert_eq!(response.status(), 423);
    assert!(message(response).await.contains("another request"));
    let response = server
        .request(Method::DELETE, &url)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status(), 423);
    // HEAD takes no lease.
    let head = server.head(&url).await;
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "upload-offset").as_deref(), Some("0"));
    other_process
        .unlock_upload(&id, "other-process")
        .await
        .expect("unlock");
    assert_eq!(server.patch(&url, 0, vec![1; 10]).await.status(), 204);
}

#[tokio::test]
async fn missing_or_invalid_key_is_401_with_a_hint() {
    let server = TestServer::start(settings()).await;
    let response = server
        .http
        .post(&server.endpoint)
        .header("tus-resumable", TUS)
        .header("upload-length", 10)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 401);
    assert_eq!(header(&response, "tus-resumable").as_deref(), Some(TUS));
    assert!(message(response).await.contains("reel keys create"));
    let url = server.create(10).await;
    let response = server
        .http
        .head(&url)
        .header("tus-resumable", TUS)
        .bearer_auth("reel_not_a_real_key")
        .send()
        .await
        .expect("HEAD");
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn termination_removes_the_upload_and_its_parts() {
    let server = TestServer::start(settings()).await;
    let url = server.create(100).await;
    assert_eq!(server.patch(&url, 0, vec![1; 10]).await.status(), 204);
    let id = upload_id(&url);
    assert_eq!(
        server.objects_under(&format!("uploads/{id}")).await.len(),
        1
    );
    let response = server
        .request(Method::DELETE, &url)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "tus-resumable").as_deref(), Some(TUS));
    assert_eq!(server.head(&url).await.status(), 404);
    assert_eq!(server.objects_under("uploads").await, Vec::<String>::new());
}

#[tokio::test]
async fn interrupted_patch_keeps_the_bytes_received() {
    use tokio::io::AsyncWriteExt;

    let server = TestServer::start(settings()).await;
    let bytes = random_bytes(3 << 20, 5);
    let url = server.create(bytes.len() as u64).await;
    let path = url.trim_start_matches(&server.origin).to_string();
    let sent = (3 << 19) + 1000;
    let mut socket = tokio::net::TcpStream::connect(server.origin.trim_start_matches("http://"))
        .await
        .expect("connect");
    let request_head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: {TUS}\r\nAuthorization: Bearer {}\r\nUpload-Offset: 0\r\nContent-Type: {OFFSET_STREAM}\r\nContent-Length: {}\r\n\r\n",
        server.key,
        bytes.len()
    );
    socket
        .write_all(request_head.as_bytes())
        .await
        .expect("send head");
    socket
        .write_all(&bytes[..sent])
        .await
        .expect("send part of the body");
    socket.flush().await.expect("flush");
    // Give the server time to read what was sent, then vanish.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(socket);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let offset = loop {
        let head = server.head(&url).await;
        let offset: u64 = header(&head, "upload-offset")
            .expect("Upload-Offset")
            .parse()
            .expect("number");
        if offset > 0 || tokio::time::Instant::now() > deadline {
            break offset;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(offset, sent as u64, "every byte received was stored");
    // The lease was released: the client resumes at once.
    let response = server.patch(&url, offset, bytes[sent..].to_vec()).await;
    assert_eq!(response.status(), 204, "{:?}", response.text().await);
    server.assert_completed_as(&url, &bytes).await;
}
