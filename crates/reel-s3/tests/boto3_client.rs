//! The real boto3 against the endpoint: header-signed create/list/complete,
//! presigned part PUTs with `requests`, and the failures S3 clients must see.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reel_core::ByteSize;
use serde_json::Value;

use crate::common::{self, PartLimits, TestServer};

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients")
}

/// Runs one scenario of `tests/clients/s3-multipart.py` and returns its JSON.
async fn run_boto3(
    server: &TestServer,
    scenario: &str,
    key: &str,
    file: Option<&Path>,
    part_size: u64,
) -> Value {
    let python = clients_dir().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing; run scripts/install-test-clients.sh (it needs boto3 and requests in the venv)",
        python.display()
    );
    let credentials = common::credentials();
    let mut command = tokio::process::Command::new(&python);
    command
        .arg(clients_dir().join("s3-multipart.py"))
        .args(["--endpoint", server.endpoint.as_str()])
        .args(["--bucket", common::BUCKET, "--key", key])
        .args(["--access-key", &credentials.access_key_id])
        .args(["--secret", &credentials.secret_access_key])
        .args(["--region", &credentials.region])
        .args(["--scenario", scenario])
        .args(["--part-size", &part_size.to_string()])
        .kill_on_drop(true);
    if let Some(file) = file {
        command.arg("--file").arg(file);
    }
    let started = Instant::now();
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the boto3 scenario finishes within 120 s")
        .expect("running the boto3 helper");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "boto3 scenario {scenario} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    eprintln!("boto3 scenario {scenario} took {:?}", started.elapsed());
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|error| panic!("boto3 output is not JSON ({error}): {stdout}"))
}

fn write_input(server: &TestServer, bytes: &[u8]) -> PathBuf {
    // Outside the store, so the store holds only what the endpoint wrote.
    let path = server.scratch_dir.path().join("input");
    std::fs::write(&path, bytes).expect("writing the input file");
    path
}

fn small_limits() -> PartLimits {
    PartLimits {
        min_part_size: ByteSize::from_bytes(64 << 10),
        max_part_size: ByteSize::from_bytes(1 << 20),
    }
}

/// Uploads `input` with boto3 in `part_size` parts and checks every value
/// boto3 saw and the bytes the store holds.
async fn check_upload(server: &TestServer, input: &[u8], part_size: usize, n_parts: usize) {
    let key = "sources/video one/source.mp4";
    let input_path = write_input(server, input);
    let result = run_boto3(server, "upload", key, Some(&input_path), part_size as u64).await;

    let chunks: Vec<&[u8]> = input.chunks(part_size).collect();
    assert_eq!(chunks.len(), n_parts);
    let expected_parts: Vec<Value> = chunks
        .iter()
        .enumerate()
        .map(|(index, chunk)| serde_json::json!({"PartNumber": index + 1, "ETag": format!("\"{}\"", common::md5_hex(chunk))}))
        .collect();
    assert_eq!(result["parts"], Value::Array(expected_parts));
    let expected_listed: Vec<Value> = chunks
        .iter()
        .enumerate()
        .map(|(index, chunk)| {
            serde_json::json!({"PartNumber": index + 1, "ETag": format!("\"{}\"", common::md5_hex(chunk)), "Size": chunk.len()})
        })
        .collect();
    assert_eq!(result["listed"], Value::Array(expected_listed));
    assert_eq!(result["list_pages"], n_parts.div_ceil(2));
    assert_eq!(result["etag"], common::multipart_etag(&chunks));

    let stored = server.read_stored(key);
    assert_eq!(stored.len(), input.len());
    assert_eq!(common::sha256_hex(&stored), common::sha256_hex(input));
    // Completing removes the parts, their records and the manifest.
    assert_eq!(server.stored_files(), vec![key.to_string()]);
}

#[tokio::test]
async fn boto3_uploads_three_presigned_parts_with_a_lowered_minimum() {
    let server = common::start_server(small_limits()).await;
    let part_size = 64 << 10;
    let input = common::test_bytes(2 * part_size + 1000, 1);
    check_upload(&server, &input, part_size, 3).await;
}

#[tokio::test]
async fn boto3_uploads_12_mib_at_the_real_5_mib_minimum() {
    let server = common::start_server(PartLimits {
        min_part_size: reel_s3::S3_MIN_PART_SIZE,
        max_part_size: reel_s3::S3_MAX_PART_SIZE,
    })
    .await;
    let input = common::test_bytes(12 << 20, 2);
    check_upload(&server, &input, 5 << 20, 3).await;
}

#[tokio::test]
async fn boto3_complete_with_a_wrong_etag_is_invalid_part() {
    let server = common::start_server(small_limits()).await;
    let input_path = write_input(&server, &common::test_bytes(3 * (64 << 10), 3));
    let result = run_boto3(&server, "wrong-etag", "k", Some(&input_path), 64 << 10).await;
    assert_eq!(result["error"]["code"], "InvalidPart");
    assert_eq!(result["error"]["status"], 400);
}

#[tokio::test]
async fn boto3_parts_out_of_order_are_invalid_part_order() {
    let server = common::start_server(small_limits()).await;
    let input_path = write_input(&server, &common::test_bytes(3 * (64 << 10), 4));
    let result = run_boto3(&server, "out-of-order", "k", Some(&input_path), 64 << 10).await;
    assert_eq!(result["error"]["code"], "InvalidPartOrder");
    assert_eq!(result["error"]["status"], 400);
}

#[tokio::test]
async fn boto3_small_middle_part_is_entity_too_small() {
    let server = common::start_server(small_limits()).await;
    let input_path = write_input(&server, &common::test_bytes(3 * (64 << 10), 5));
    let result = run_boto3(&server, "small-middle", "k", Some(&input_path), 64 << 10).await;
    assert_eq!(result["n_parts"], 3);
    assert_eq!(result["error"]["code"], "EntityTooSmall");
    assert_eq!(result["error"]["status"], 400);
    assert!(!server.stored_files().contains(&"k".to_string()));
}

#[tokio::test]
async fn boto3_part_upload_after_abort_is_no_such_upload() {
    let server = common::start_server(small_limits()).await;
    let input_path = write_input(&server, &common::test_bytes(64 << 10, 6));
    let result = run_boto3(&server, "abort", "k", Some(&input_path), 64 << 10).await;
    assert_eq!(result["put_after_abort"]["status"], 404);
    assert_eq!(result["put_after_abort"]["code"], "NoSuchUpload");
    assert_eq!(result["list_after_abort"]["code"], "NoSuchUpload");
    assert_eq!(server.stored_files(), Vec::<String>::new());
}

#[tokio::test]
async fn boto3_with_a_wrong_secret_is_signature_does_not_match() {
    let server = common::start_server(small_limits()).await;
    let result = run_boto3(&server, "wrong-secret", "k", None, 64 << 10).await;
    assert_eq!(result["error"]["status"], 403);
    assert_eq!(result["error"]["code"], "SignatureDoesNotMatch");
    assert_eq!(server.stored_files(), Vec::<String>::new());
}

#[tokio::test]
async fn boto3_presigned_url_with_tampered_part_number_or_signature_is_refused() {
    let server = common::start_server(small_limits()).await;
    let input = common::test_bytes(64 << 10, 7);
    let input_path = write_input(&server, &input);
    let result = run_boto3(&server, "tamper", "k", Some(&input_path), 64 << 10).await;
    assert_eq!(result["other_part"]["status"], 403);
    assert_eq!(result["other_part"]["code"], "SignatureDoesNotMatch");
    assert_eq!(result["bad_signature"]["status"], 403);
    assert_eq!(result["bad_signature"]["code"], "SignatureDoesNotMatch");
    // Only the honest part 1 was stored.
    let listed = result["listed"].as_array().expect("listed is an array");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["PartNumber"], 1);
    assert_eq!(
        listed[0]["ETag"],
        format!("\"{}\"", common::md5_hex(&input))
    );
}

/// The base64 `x-amz-checksum-*` value of `bytes` for `algorithm`.
fn checksum_b64(algorithm: reel_s3::checksum::ChecksumAlgorithm, bytes: &[u8]) -> String {
    let mut checksummer = reel_s3::checksum::Checksummer::new(algorithm);
    checksummer.update(bytes);
    checksummer.finish().to_base64()
}

/// Checks a `checksums` or `trailers` run: every part's checksum, as boto3
/// computed it and storage verified and echoed it, is the one of its bytes;
/// the FULL_OBJECT upload completes with the whole input's CRC64NVME.
fn check_checksum_uploads(
    server: &TestServer,
    result: &Value,
    input: &[u8],
    part_size: usize,
    trailers: bool,
) {
    use reel_s3::checksum::ChecksumAlgorithm;
    let uploads = result.as_array().expect("one result per algorithm");
    let names: Vec<&str> = uploads
        .iter()
        .map(|upload| upload["algorithm"].as_str().unwrap_or("default"))
        .collect();
    assert_eq!(names, ["default", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]);
    let chunks: Vec<&[u8]> = input.chunks(part_size).collect();
    for upload in uploads {
        // boto3 1.36 and later send CRC32 when nothing is asked for.
        let algorithm = match upload["algorithm"].as_str() {
            None => ChecksumAlgorithm::Crc32,
            Some(name) => ChecksumAlgorithm::parse(name).expect("a known algorithm"),
        };
        let field = format!("Checksum{}", algorithm.name());
        // Trailers ride on unsigned aws-chunked bodies; headers on bodies
        // whose SHA-256 is signed.
        for payload in upload["payloads"].as_array().expect("payloads") {
            let payload = payload.as_str().unwrap_or_default();
            if trailers {
                assert_eq!(payload, "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
            } else {
                assert_eq!(payload.len(), 64, "{payload}");
            }
        }
        let echoed = upload["echoed"].as_array().expect("echoed checksums");
        assert_eq!(echoed.len(), chunks.len());
        for (chunk, echo) in chunks.iter().zip(echoed) {
            assert_eq!(
                echo[field.as_str()],
                checksum_b64(algorithm, chunk),
                "{upload}"
            );
        }
        assert!(
            upload["etag"]
                .as_str()
                .is_some_and(|etag| etag.ends_with(&format!("-{}\"", chunks.len()))),
            "{upload}"
        );
        // Every completion reports the full-object CRC64NVME, combined from
        // the part CRCs.
        assert_eq!(
            upload["crc64nvme"],
            checksum_b64(ChecksumAlgorithm::Crc64Nvme, input),
            "{upload}"
        );
        assert_eq!(upload["checksum_type"], "FULL_OBJECT");
    }
    assert_eq!(server.read_stored("k"), input);
}

#[tokio::test]
async fn boto3_part_checksums_of_every_algorithm_are_verified() {
    let server = common::start_server(small_limits()).await;
    let part_size = 64 << 10;
    let input = common::test_bytes(2 * part_size + 777, 8);
    let input_path = write_input(&server, &input);
    let result = run_boto3(
        &server,
        "checksums",
        "k",
        Some(&input_path),
        part_size as u64,
    )
    .await;
    check_checksum_uploads(&server, &result, &input, part_size, false);
}

#[tokio::test]
async fn boto3_trailing_checksums_in_aws_chunked_bodies_are_verified() {
    let server = common::start_server(small_limits()).await;
    let part_size = 64 << 10;
    let input = common::test_bytes(2 * part_size + 555, 9);
    let input_path = write_input(&server, &input);
    let result = run_boto3(
        &server,
        "trailers",
        "k",
        Some(&input_path),
        part_size as u64,
    )
    .await;
    check_checksum_uploads(&server, &result, &input, part_size, true);
}

#[tokio::test]
async fn boto3_wrong_part_and_full_object_checksums_are_bad_digest() {
    let server = common::start_server(small_limits()).await;
    let part_size = 64 << 10;
    let input = common::test_bytes(3 * part_size, 10);
    let input_path = write_input(&server, &input);
    let result = run_boto3(
        &server,
        "bad-checksum",
        "k",
        Some(&input_path),
        part_size as u64,
    )
    .await;
    assert_eq!(result["refused_part"]["status"], 400, "{result}");
    assert_eq!(result["refused_part"]["code"], "BadDigest", "{result}");
    let message = result["refused_part"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.starts_with("part 2: the CRC32"), "{message}");
    // The refused part was not stored (only part 1 was, then).
    assert_eq!(result["listed_after_refusal"], serde_json::json!([1]));
    assert_eq!(result["wrong_complete"]["code"], "BadDigest", "{result}");
    let message = result["wrong_complete"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("full-object CRC64NVME"), "{message}");
    // A refused completion changes nothing: the right one then succeeds.
    assert_eq!(
        result["crc64nvme"],
        checksum_b64(reel_s3::checksum::ChecksumAlgorithm::Crc64Nvme, &input)
    );
    assert_eq!(server.read_stored("k"), input);
}
