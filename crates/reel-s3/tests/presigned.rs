//! URLs from reel's own [`reel_s3::presign`] used with reqwest: a whole
//! upload, and every way a presigned URL must fail.

use std::time::{Duration, SystemTime};

use axum::http::Method;
use reel_core::ByteSize;
use reel_s3::{presign, PresignRequest, S3Credentials};

use crate::common::{self, PartLimits, TestServer};

const PART_BYTES: usize = 64 << 10;

fn limits() -> PartLimits {
    PartLimits {
        min_part_size: ByteSize::from_bytes(PART_BYTES as u64),
        max_part_size: ByteSize::from_bytes(1 << 20),
    }
}

/// A URL for `method` on `key` signed with `credentials` at `signed_at`.
struct Sign<'a> {
    credentials: &'a S3Credentials,
    method: Method,
    key: &'a str,
    query: &'a [(&'a str, &'a str)],
    expires: Duration,
    signed_at: SystemTime,
}

fn sign(server: &TestServer, request: Sign<'_>) -> String {
    presign(
        &PresignRequest {
            credentials: request.credentials,
            endpoint: &server.endpoint,
            method: &request.method,
            bucket: common::BUCKET,
            key: request.key,
            query: request.query,
            expires: request.expires,
        },
        request.signed_at,
    )
    .expect("the presign request is valid")
}

/// A 15-minute URL signed now with the server's credentials.
fn sign_now(server: &TestServer, method: Method, key: &str, query: &[(&str, &str)]) -> String {
    sign(
        server,
        Sign {
            credentials: &common::credentials(),
            method,
            key,
            query,
            expires: Duration::from_secs(15 * 60),
            signed_at: SystemTime::now(),
        },
    )
}

/// The status and the S3 error code of a response.
async fn status_and_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body = response.text().await.expect("reading the response body");
    (status, xml_text(&body, "Code").unwrap_or_default())
}

fn xml_text(xml: &str, element: &str) -> Option<String> {
    let start = xml.find(&format!("<{element}>"))? + element.len() + 2;
    let end = start + xml[start..].find(&format!("</{element}>"))?;
    Some(xml[start..end].to_string())
}

async fn create_upload(client: &reqwest::Client, server: &TestServer, key: &str) -> String {
    let url = sign_now(server, Method::POST, key, &[("uploads", "")]);
    let response = client
        .post(url)
        .send()
        .await
        .expect("sending CreateMultipartUpload");
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("reading the create response");
    xml_text(&body, "UploadId").expect("the create response has an UploadId")
}

async fn put_part(client: &reqwest::Client, url: String, bytes: Vec<u8>) -> reqwest::Response {
    client
        .put(url)
        .body(bytes)
        .send()
        .await
        .expect("sending UploadPart")
}

#[tokio::test]
async fn presigned_urls_drive_a_whole_upload() {
    let server = common::start_server(limits()).await;
    let client = reqwest::Client::new();
    let key = "sources/äöü video/source.mp4";
    let input = common::test_bytes(2 * PART_BYTES + 777, 11);
    let upload_id = create_upload(&client, &server, key).await;

    let mut etags = Vec::new();
    for (index, chunk) in input.chunks(PART_BYTES).enumerate() {
        let part_number = (index + 1).to_string();
        let url = sign_now(
            &server,
            Method::PUT,
            key,
            &[("partNumber", &part_number), ("uploadId", &upload_id)],
        );
        let response = put_part(&client, url, chunk.to_vec()).await;
        assert_eq!(response.status(), 200);
        let etag = response.headers()["etag"]
            .to_str()
            .expect("an ASCII ETag")
            .to_string();
        assert_eq!(etag, format!("\"{}\"", common::md5_hex(chunk)));
        etags.push(etag);
    }

    let list_url = sign_now(&server, Method::GET, key, &[("uploadId", &upload_id)]);
    let listing = client
        .get(list_url)
        .send()
        .await
        .expect("sending ListParts");
    assert_eq!(listing.status(), 200);
    let listing = listing.text().await.expect("reading ListParts");
    assert_eq!(listing.matches("<Part>").count(), 3);
    assert_eq!(xml_text(&listing, "IsTruncated").as_deref(), Some("false"));

    let parts_xml: String = etags
        .iter()
        .enumerate()
        .map(|(index, etag)| {
            format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>",
                index + 1
            )
        })
        .collect();
    let complete_url = sign_now(&server, Method::POST, key, &[("uploadId", &upload_id)]);
    let completed = client
        .post(complete_url)
        .body(format!(
            "<CompleteMultipartUpload>{parts_xml}</CompleteMultipartUpload>"
        ))
        .send()
        .await
        .expect("sending CompleteMultipartUpload");
    assert_eq!(completed.status(), 200);
    let completed = completed
        .text()
        .await
        .expect("reading the complete response");
    let chunks: Vec<&[u8]> = input.chunks(PART_BYTES).collect();
    let expected_etag = common::multipart_etag(&chunks).replace('"', "&quot;");
    assert_eq!(xml_text(&completed, "ETag"), Some(expected_etag));
    assert_eq!(
        common::sha256_hex(&server.read_stored(key)),
        common::sha256_hex(&input)
    );

    // The upload is gone: its part URLs, though unexpired, no longer work.
    let late_url = sign_now(
        &server,
        Method::PUT,
        key,
        &[("partNumber", "1"), ("uploadId", &upload_id)],
    );
    let late = put_part(&client, late_url, b"late".to_vec()).await;
    assert_eq!(
        status_and_code(late).await,
        (404, "NoSuchUpload".to_string())
    );
    assert_eq!(server.stored_files(), vec![key.to_string()]);
}

#[tokio::test]
async fn expired_presigned_urls_are_access_denied() {
    let server = common::start_server(limits()).await;
    let client = reqwest::Client::new();
    let upload_id = create_upload(&client, &server, "k").await;
    let query = [("partNumber", "1"), ("uploadId", upload_id.as_str())];
    let old_url = sign(
        &server,
        Sign {
            credentials: &common::credentials(),
            method: Method::PUT,
            key: "k",
            query: &query,
            expires: Duration::from_secs(15 * 60),
            signed_at: SystemTime::now() - Duration::from_secs(3600),
        },
    );
    let response = put_part(&client, old_url, vec![1; 10]).await;
    assert_eq!(response.status(), 403);
    let body = response.text().await.expect("reading the error body");
    assert_eq!(xml_text(&body, "Code").as_deref(), Some("AccessDenied"));
    assert_eq!(
        xml_text(&body, "Message").as_deref(),
        Some("Request has expired")
    );

    let short_url = sign(
        &server,
        Sign {
            credentials: &common::credentials(),
            method: Method::PUT,
            key: "k",
            query: &query,
            expires: Duration::from_secs(1),
            signed_at: SystemTime::now(),
        },
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = put_part(&client, short_url, vec![1; 10]).await;
    assert_eq!(
        status_and_code(response).await,
        (403, "AccessDenied".to_string())
    );
    let manifest_only = vec![format!("s3-multipart/{upload_id}/upload.json")];
    assert_eq!(server.stored_files(), manifest_only);
}

#[tokio::test]
async fn tampered_presigned_urls_are_signature_does_not_match() {
    let server = common::start_server(limits()).await;
    let client = reqwest::Client::new();
    let upload_id = create_upload(&client, &server, "k").await;
    let other_upload_id = create_upload(&client, &server, "k").await;
    let url = sign_now(
        &server,
        Method::PUT,
        "k",
        &[("partNumber", "1"), ("uploadId", &upload_id)],
    );

    let last_character = url.chars().last().expect("the url is not empty");
    let replacement = if last_character == '0' { "1" } else { "0" };
    let tampered_urls = [
        url.replace("partNumber=1", "partNumber=2"),
        url.replace(&upload_id, &other_upload_id),
        url.replace("/reel/k?", "/reel/other?"),
        url.replace("X-Amz-Expires=900", "X-Amz-Expires=3600"),
        format!("{}{replacement}", &url[..url.len() - 1]),
    ];
    for tampered_url in tampered_urls {
        let response = put_part(&client, tampered_url, vec![2; 10]).await;
        assert_eq!(
            status_and_code(response).await,
            (403, "SignatureDoesNotMatch".to_string())
        );
    }
    // The method is signed too.
    let response = client
        .delete(url.clone())
        .send()
        .await
        .expect("sending a DELETE");
    assert_eq!(
        status_and_code(response).await,
        (403, "SignatureDoesNotMatch".to_string())
    );
    // The untouched URL works.
    assert_eq!(put_part(&client, url, vec![3; 10]).await.status(), 200);
}

#[tokio::test]
async fn wrong_credentials_and_unsigned_requests_are_refused() {
    let server = common::start_server(limits()).await;
    let client = reqwest::Client::new();
    let wrong_secret = S3Credentials {
        secret_access_key: "not-the-secret".to_string(),
        ..common::credentials()
    };
    let wrong_key_id = S3Credentials {
        access_key_id: "someone-else".to_string(),
        ..common::credentials()
    };
    let cases = [
        (&wrong_secret, "SignatureDoesNotMatch"),
        (&wrong_key_id, "InvalidAccessKeyId"),
    ];
    for (credentials, expected_code) in cases {
        let url = sign(
            &server,
            Sign {
                credentials,
                method: Method::POST,
                key: "k",
                query: &[("uploads", "")],
                expires: Duration::from_secs(60),
                signed_at: SystemTime::now(),
            },
        );
        let response = client
            .post(url)
            .send()
            .await
            .expect("sending CreateMultipartUpload");
        assert_eq!(
            status_and_code(response).await,
            (403, expected_code.to_string())
        );
    }
    let unsigned_url = format!("{}/{}/k?uploads", server.endpoint, common::BUCKET);
    let response = client
        .post(unsigned_url)
        .send()
        .await
        .expect("sending CreateMultipartUpload");
    assert_eq!(
        status_and_code(response).await,
        (403, "AccessDenied".to_string())
    );
    assert_eq!(server.stored_files(), Vec::<String>::new());
}

#[tokio::test]
async fn oversized_parts_are_entity_too_large_and_not_stored() {
    let server = common::start_server(limits()).await;
    let client = reqwest::Client::new();
    let upload_id = create_upload(&client, &server, "k").await;
    let query = [("partNumber", "1"), ("uploadId", upload_id.as_str())];
    let max_bytes = 1 << 20;

    // Refused from Content-Length, before any byte is read.
    let url = sign_now(&server, Method::PUT, "k", &query);
    let response = put_part(&client, url.clone(), vec![0; max_bytes + 1]).await;
    assert_eq!(
        status_and_code(response).await,
        (400, "EntityTooLarge".to_string())
    );

    // Refused while streaming a chunked body without Content-Length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..40).map(|_| Ok(vec![7; 64 << 10])).collect();
    let streamed = client
        .put(url.clone())
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    // The server may answer and close before the client has sent everything.
    if let Ok(response) = streamed {
        assert_eq!(
            status_and_code(response).await,
            (400, "EntityTooLarge".to_string())
        );
    }
    let manifest_only = vec![format!("s3-multipart/{upload_id}/upload.json")];
    assert_eq!(server.stored_files(), manifest_only);

    // Exactly the maximum is fine.
    let response = put_part(&client, url, vec![0; max_bytes]).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn signed_payload_hash_and_content_md5_are_verified() {
    let server = common::start_server(limits()).await;
    let client = reqwest::Client::new();
    let upload_id = create_upload(&client, &server, "k").await;
    let url = sign_now(
        &server,
        Method::PUT,
        "k",
        &[("partNumber", "1"), ("uploadId", &upload_id)],
    );
    let wrong_md5 = "AAAAAAAAAAAAAAAAAAAAAA==";
    let response = client
        .put(url.clone())
        .header("content-md5", wrong_md5)
        .body(vec![5; 100])
        .send()
        .await
        .expect("sending UploadPart");
    assert_eq!(
        status_and_code(response).await,
        (400, "BadDigest".to_string())
    );
    let manifest_only = vec![format!("s3-multipart/{upload_id}/upload.json")];
    assert_eq!(server.stored_files(), manifest_only);
}

#[tokio::test]
async fn cors_preflight_allows_uploads_and_exposes_etag() {
    let server = common::start_server(limits()).await;
    let client = reqwest::Client::new();
    let part_url = format!(
        "{}/{}/k?partNumber=1&uploadId=0123",
        server.endpoint,
        common::BUCKET
    );
    let preflight = client
        .request(reqwest::Method::OPTIONS, &part_url)
        .header("origin", "https://app.example")
        .header("access-control-request-method", "PUT")
        .header(
            "access-control-request-headers",
            "content-type, content-md5",
        )
        .send()
        .await
        .expect("sending a preflight");
    assert!(
        preflight.status().is_success(),
        "preflight status {}",
        preflight.status()
    );
    let header = |name: &str| {
        preflight
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    assert_eq!(header("access-control-allow-origin"), "*");
    for method in ["put", "post", "get", "delete"] {
        assert!(
            header("access-control-allow-methods").contains(method),
            "{method} not allowed"
        );
    }
    for allowed in [
        "authorization",
        "x-amz-date",
        "x-amz-content-sha256",
        "content-type",
        "content-md5",
    ] {
        assert!(
            header("access-control-allow-headers").contains(allowed),
            "{allowed} not allowed"
        );
    }
    assert!(header("access-control-expose-headers").contains("etag"));

    // The actual PUT's answer exposes the ETag too.
    let upload_id = create_upload(&client, &server, "k").await;
    let url = sign_now(
        &server,
        Method::PUT,
        "k",
        &[("partNumber", "1"), ("uploadId", &upload_id)],
    );
    let response = client
        .put(url)
        .header("origin", "https://app.example")
        .body(vec![1; 10])
        .send()
        .await
        .expect("sending UploadPart");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ASCII header")
        .to_ascii_lowercase();
    assert!(exposed.contains("etag"));
}

#[tokio::test]
async fn sized_uploads_write_parts_in_place_and_complete_by_rename() {
    let server = common::start_server(limits()).await;
    let client = reqwest::Client::new();
    let key = "sources/äöü video/in place.mp4";
    let input = common::test_bytes(3 * PART_BYTES + 999, 12);
    let upload_id = reel_s3::start_upload_sized(
        &server.state,
        key,
        PART_BYTES as u64,
        input.len() as u64,
        reel_s3::WholeChecksum::Sha256,
    )
    .await
    .expect("starting a sized upload");
    let part_url = |number: usize| {
        sign_now(
            &server,
            Method::PUT,
            key,
            &[
                ("partNumber", &number.to_string()),
                ("uploadId", &upload_id),
            ],
        )
    };
    let chunks: Vec<&[u8]> = input.chunks(PART_BYTES).collect();
    // A part of the wrong size, and one past the end, are refused and say why.
    for (number, body) in [(2, chunks[3].to_vec()), (5, b"extra".to_vec())] {
        let refused = put_part(&client, part_url(number), body).await;
        let status = refused.status().as_u16();
        let text = refused.text().await.expect("reading the refusal");
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("this upload takes parts 1 to 4"), "{text}");
    }
    // Parts land out of order; their ETags are XXH3-128, not MD5.
    let mut etag_of = std::collections::HashMap::new();
    for number in [4, 2, 1, 3] {
        let stored = put_part(&client, part_url(number), chunks[number - 1].to_vec()).await;
        assert_eq!(stored.status(), 200);
        let etag = stored.headers()["etag"]
            .to_str()
            .expect("ASCII")
            .to_string();
        assert_eq!(etag.len(), 34, "{etag}");
        assert_ne!(etag, format!("\"{}\"", common::md5_hex(chunks[number - 1])));
        etag_of.insert(number, etag.trim_matches('"').to_string());
    }
    // A rewrite of part 2 whose Content-MD5 does not match is refused, and
    // part 2 then counts as missing: its region may hold other bytes now.
    let rewrite = client
        .put(part_url(2))
        .header("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==")
        .body(chunks[1].to_vec())
        .send()
        .await
        .expect("sending UploadPart");
    assert_eq!(rewrite.status(), 400);
    let stored: Vec<u32> = reel_s3::stored_parts(&server.state, key, &upload_id)
        .await
        .expect("listing parts")
        .iter()
        .map(|part| part.part_number)
        .collect();
    assert_eq!(stored, vec![1, 3, 4]);
    let etags = |numbers: &[usize]| -> Vec<(u32, String)> {
        numbers
            .iter()
            .map(|&number| (number as u32, etag_of[&number].clone()))
            .collect()
    };
    let incomplete =
        reel_s3::finish_upload(&server.state, key, &upload_id, &etags(&[1, 3, 4]), None)
            .await
            .expect_err("part 2 is missing");
    assert_eq!(incomplete.code, "InvalidPart");
    assert!(incomplete.message.contains("parts 1 to 4"), "{incomplete}");

    let stored = put_part(&client, part_url(2), chunks[1].to_vec()).await;
    assert_eq!(stored.status(), 200);
    // The same bytes give the same ETag.
    assert_eq!(
        stored.headers()["etag"].to_str().expect("ASCII"),
        format!("\"{}\"", etag_of[&2])
    );
    let whole_crc = reel_s3::checksum::crc64nvme(&input);
    let finished = reel_s3::finish_upload(
        &server.state,
        key,
        &upload_id,
        &etags(&[1, 2, 3, 4]),
        Some(whole_crc),
    )
    .await
    .expect("completing");
    assert_eq!(finished.sha256, Some(common::sha256_hex(&input)));
    assert_eq!(finished.crc64nvme, Some(whole_crc));
    assert!(finished.etag.ends_with("-4"), "{}", finished.etag);
    assert_eq!(
        Some(common::sha256_hex(&server.read_stored(key))),
        finished.sha256
    );
    assert_eq!(server.stored_files(), vec![key.to_string()]);
}
