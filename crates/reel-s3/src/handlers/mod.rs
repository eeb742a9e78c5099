//! The S3 operations: every request is authenticated, parsed into an
//! operation on one key of the one bucket, and answered with S3's XML.

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use md5::{Digest, Md5};
use object_store::path::Path;
use object_store::{ObjectStore, WriteMultipart};
use percent_encoding::percent_decode_str;
use sha2::Sha256;
use tracing::Instrument;

use crate::checksum::{Checksum, ChecksumAlgorithm, Checksummer};
use crate::chunked::ChunkedDecoder;
use crate::error::{S3Error, S3ErrorKind};
use crate::inplace::{self, FixedLayout, LocalFiles, PartFile};
use crate::layout::{self, PartNumber, PartRecord, UploadId, UploadManifest, MULTIPART_PREFIX};
use crate::sigv4::{self, PayloadCheck, SignedRequest};
use crate::xml::{self, to_document, S3_XMLNS};
use crate::S3State;

mod complete;
mod direct;
mod list;
mod upload;

use complete::*;
pub use direct::*;
use list::*;
use upload::*;

/// S3 limits keys to 1024 bytes of UTF-8.
const MAX_KEY_BYTES: usize = 1024;
/// 10000 `<Part>` elements of ~100 bytes each fit comfortably.
const MAX_COMPLETE_BODY_BYTES: usize = 4 << 20;
/// Bodies of the other operations are empty.
const MAX_SMALL_BODY_BYTES: usize = 64 << 10;
/// The chunk size of writes to the store: the smallest part S3-like
/// backends accept, and the memory one request may buffer per chunk.
const WRITE_CHUNK_BYTES: usize = 5 << 20;
/// Store writes in flight per request.
const MAX_WRITES_IN_FLIGHT: usize = 2;
/// Bytes read and hashed at a time when parts are joined.
const JOIN_BLOCK_BYTES: u64 = 8 << 20;
/// Hashing up to this many bytes takes well under 0.5 ms, so it runs on the
/// async thread; larger chunks go to the blocking pool.
const INLINE_HASH_BYTES: usize = 64 << 10;

/// Answers every `/{bucket}/{key}` request.
pub(crate) async fn handle_object_request(
    State(state): State<S3State>,
    request: Request,
) -> Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let (parts, body) = request.into_parts();
    let original_uri = parts
        .extensions
        .get::<OriginalUri>()
        .map(|original| original.0.clone())
        .unwrap_or_else(|| parts.uri.clone());
    let resource = original_uri.path().to_string();
    // The query is not recorded: a presigned URL's signature is in it.
    let span = tracing::debug_span!("s3_request", request_id = %request_id, method = %parts.method);
    let result = handle_authenticated(&state, &parts, &original_uri, body)
        .instrument(span)
        .await;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => error.into_response_for(&resource, &request_id),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amz-request-id", value);
    }
    response
}

/// Answers paths that are not `/{bucket}/{key}`, such as bucket listings.
pub(crate) async fn handle_unsupported_request() -> Response {
    S3Error::new(
        S3ErrorKind::NotImplemented,
        "only multipart uploads to /{bucket}/{key} are supported by this endpoint",
    )
    .into_response()
}

async fn handle_authenticated(
    state: &S3State,
    parts: &Parts,
    original_uri: &axum::http::Uri,
    body: Body,
) -> Result<Response, S3Error> {
    let signed_request = SignedRequest {
        method: &parts.method,
        raw_path: original_uri.path(),
        raw_query: original_uri.query(),
        headers: &parts.headers,
        uri_authority: parts.uri.authority().map(|authority| authority.as_str()),
    };
    let config = &state.config;
    let payload_check = sigv4::authenticate(
        &config.credentials,
        &signed_request,
        Utc::now(),
        config.max_clock_skew,
    )?;
    let target = parse_target(parts.uri.path())?;
    if target.bucket != config.bucket {
        return Err(S3Error::new(
            S3ErrorKind::NoSuchBucket,
            format!(
                "the bucket {:?} does not exist; this endpoint serves {:?}",
                target.bucket, config.bucket
            ),
        ));
    }
    let query = sigv4::parse_query(parts.uri.query().unwrap_or(""));
    let query_value = |name: &str| {
        query
            .iter()
            .find(|(pair_name, _)| pair_name == name)
            .map(|(_, value)| value.as_str())
    };
    let has_uploads = query_value("uploads").is_some();
    let is_part_upload = parts.method == Method::PUT && query_value("partNumber").is_some();
    if payload_check == PayloadCheck::UnsignedTrailer && !is_part_upload {
        return Err(S3Error::new(
            S3ErrorKind::NotImplemented,
            "aws-chunked bodies are supported for UploadPart only",
        ));
    }
    let upload_id = query_value("uploadId").map(UploadId::parse).transpose()?;
    let part_number = query_value("partNumber")
        .map(PartNumber::parse)
        .transpose()?;
    let object = ObjectTarget {
        bucket: target.bucket,
        key: target.key,
        path: target.path,
        resource: original_uri.path().to_string(),
    };
    match (&parts.method, has_uploads, upload_id, part_number) {
        (&Method::POST, true, None, None) => {
            read_small_body(body, payload_check, MAX_SMALL_BODY_BYTES).await?;
            create_multipart_upload(state, &object).await
        }
        (&Method::PUT, false, Some(upload_id), Some(part_number)) => {
            let part_upload = PartUpload {
                upload_id,
                part_number,
                content_length: content_length(parts, payload_check)?,
                content_md5: content_md5(parts)?,
                payload_check,
                checksum: declared_checksum(parts, payload_check)?,
            };
            upload_part(state, &object, part_upload, body).await
        }
        (&Method::GET, false, Some(upload_id), None) => {
            read_small_body(body, payload_check, MAX_SMALL_BODY_BYTES).await?;
            list_parts(state, &object, &upload_id, &query).await
        }
        (&Method::POST, false, Some(upload_id), None) => {
            let declared_crc64nvme = declared_full_object(parts)?;
            let request_body = read_small_body(body, payload_check, MAX_COMPLETE_BODY_BYTES).await?;
            complete_multipart_upload(state, &object, &upload_id, &request_body, declared_crc64nvme)
                .await
                .map(|completion| completion.response)
        }
        (&Method::DELETE, false, Some(upload_id), None) => {
            read_small_body(body, payload_check, MAX_SMALL_BODY_BYTES).await?;
            abort_multipart_upload(state, &object, &upload_id).await
        }
        _ => Err(S3Error::new(
            S3ErrorKind::NotImplemented,
            "this endpoint supports only CreateMultipartUpload, UploadPart, ListParts, CompleteMultipartUpload and AbortMultipartUpload",
        )),
    }
}

/// The bucket and key of a request, validated.
struct Target {
    bucket: String,
    key: String,
    path: Path,
}

/// The key an operation works on.
struct ObjectTarget {
    bucket: String,
    key: String,
    /// Where the completed object goes in the store.
    path: Path,
    /// The request path, for `Location` and error bodies.
    resource: String,
}

/// Parses `/{bucket}/{key}` (after any router prefix) into a key the store
/// can hold under the same name.
fn parse_target(path: &str) -> Result<Target, S3Error> {
    let invalid_key = |message: String| S3Error::new(S3ErrorKind::InvalidArgument, message);
    let without_slash = path.strip_prefix('/').unwrap_or(path);
    let (raw_bucket, raw_key) = without_slash.split_once('/').unwrap_or((without_slash, ""));
    let decode = |raw: &str| {
        percent_decode_str(raw)
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| invalid_key("the bucket and key must be UTF-8".to_string()))
    };
    let bucket = decode(raw_bucket)?;
    let key = decode(raw_key)?;
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(invalid_key(format!(
            "object keys must be 1 to {MAX_KEY_BYTES} bytes long"
        )));
    }
    // The store path must name exactly this key: Path::parse refuses empty,
    // "." and ".." segments, and the round trip refuses leading or trailing
    // slashes, so no key can reach outside its place in the store.
    let stored_path = Path::parse(&key)
        .ok()
        .filter(|parsed| parsed.as_ref() == key)
        .ok_or_else(|| {
            invalid_key(format!(
                "object key {key:?} cannot be stored; use '/'-separated names without empty, '.' or '..' segments"
            ))
        })?;
    if stored_path
        .parts()
        .next()
        .is_some_and(|first| first.as_ref() == MULTIPART_PREFIX)
    {
        return Err(invalid_key(format!(
            "object keys under {MULTIPART_PREFIX}/ are reserved for upload parts"
        )));
    }
    Ok(Target {
        bucket,
        key,
        path: stored_path,
    })
}

/// What an UploadPart request says about its body.
struct PartUpload {
    upload_id: UploadId,
    part_number: PartNumber,
    content_length: Option<u64>,
    content_md5: Option<[u8; 16]>,
    payload_check: PayloadCheck,
    checksum: Option<DeclaredChecksum>,
}

/// A part the store holds, for in-process callers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPart {
    /// 1 to 10,000.
    pub part_number: u32,
    /// Bytes.
    pub size: u64,
    /// The part's ETag (hex MD5, unquoted).
    pub etag: String,
    /// The part's CRC64NVME, computed as it was stored (`None` for parts
    /// stored before reel recorded it).
    pub crc64nvme: Option<u64>,
}

/// An S3 operation refused or failed, for in-process callers: the S3 code,
/// the HTTP status it would have had, and the message.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct OperationError {
    /// The S3 error code, e.g. `InvalidPart`.
    pub code: &'static str,
    /// The HTTP status the endpoint would answer with.
    pub status: u16,
    /// What went wrong.
    pub message: String,
}

impl From<S3Error> for OperationError {
    fn from(error: S3Error) -> OperationError {
        let (status, code) = error.status_and_code();
        OperationError {
            code,
            status: status.as_u16(),
            message: error.message,
        }
    }
}

/// What a body is hashed for: the part's ETag (MD5 as S3 does, or the much
/// cheaper XXH3-128 for in-place parts, whose ETags only reel's API reads),
/// a Content-MD5 check, a signed payload's SHA-256, the part's CRC64NVME
/// (always: full-object checksums combine it) and the checksum the client
/// declared, when it is another algorithm.
struct BodyHasher {
    md5: Option<Md5>,
    xxh3: Option<Box<xxhash_rust::xxh3::Xxh3>>,
    sha256: Option<Sha256>,
    crc64nvme: Checksummer,
    declared: Option<Checksummer>,
}

struct BodyDigests {
    md5: Option<[u8; 16]>,
    xxh3: Option<[u8; 16]>,
    sha256: Option<[u8; 32]>,
    crc64nvme: Checksum,
    declared: Option<Checksum>,
}

impl BodyDigests {
    /// The part's ETag, unquoted hex.
    fn etag(&self) -> String {
        match (&self.xxh3, &self.md5) {
            (Some(xxh3), _) => hex::encode(xxh3),
            (None, Some(md5)) => hex::encode(md5),
            (None, None) => String::new(),
        }
    }

    /// The body's checksum of `algorithm`, when it was computed.
    fn checksum(&self, algorithm: ChecksumAlgorithm) -> Option<&Checksum> {
        if algorithm == ChecksumAlgorithm::Crc64Nvme {
            return Some(&self.crc64nvme);
        }
        self.declared
            .as_ref()
            .filter(|checksum| checksum.algorithm() == algorithm)
    }
}

impl BodyHasher {
    /// MD5 for the ETag, as S3 does.
    fn new(part_upload: &PartUpload) -> BodyHasher {
        BodyHasher {
            md5: Some(Md5::new()),
            xxh3: None,
            sha256: Self::sha256_for(part_upload.payload_check),
            crc64nvme: Checksummer::new(ChecksumAlgorithm::Crc64Nvme),
            declared: Self::declared_for(part_upload),
        }
    }

    /// XXH3-128 for the ETag; MD5 only to check a Content-MD5.
    fn fast(part_upload: &PartUpload) -> BodyHasher {
        BodyHasher {
            md5: part_upload.content_md5.is_some().then(Md5::new),
            xxh3: Some(Box::default()),
            sha256: Self::sha256_for(part_upload.payload_check),
            crc64nvme: Checksummer::new(ChecksumAlgorithm::Crc64Nvme),
            declared: Self::declared_for(part_upload),
        }
    }

    fn sha256_for(payload_check: PayloadCheck) -> Option<Sha256> {
        match payload_check {
            PayloadCheck::Unsigned | PayloadCheck::UnsignedTrailer => None,
            PayloadCheck::Sha256(_) => Some(Sha256::new()),
        }
    }

    fn declared_for(part_upload: &PartUpload) -> Option<Checksummer> {
        part_upload
            .checksum
            .as_ref()
            .map(DeclaredChecksum::algorithm)
            .filter(|algorithm| *algorithm != ChecksumAlgorithm::Crc64Nvme)
            .map(Checksummer::new)
    }

    async fn update(mut self, chunk: Bytes) -> Result<BodyHasher, S3Error> {
        if chunk.len() <= INLINE_HASH_BYTES {
            self.update_now(&chunk);
            return Ok(self);
        }
        tokio::task::spawn_blocking(move || {
            self.update_now(&chunk);
            self
        })
        .await
        .map_err(|error| S3Error::internal("hashing a body", error))
    }

    fn update_now(&mut self, chunk: &[u8]) {
        if let Some(md5) = &mut self.md5 {
            md5.update(chunk);
        }
        if let Some(xxh3) = &mut self.xxh3 {
            xxh3.update(chunk);
        }
        if let Some(sha256) = &mut self.sha256 {
            sha256.update(chunk);
        }
        self.crc64nvme.update(chunk);
        if let Some(declared) = &mut self.declared {
            declared.update(chunk);
        }
    }

    fn finish(self) -> BodyDigests {
        BodyDigests {
            md5: self.md5.map(|md5| md5.finalize().into()),
            xxh3: self.xxh3.map(|xxh3| xxh3.digest128().to_be_bytes()),
            sha256: self.sha256.map(|sha256| sha256.finalize().into()),
            crc64nvme: self.crc64nvme.finish(),
            declared: self.declared.map(|declared| declared.finish()),
        }
    }
}

/// The checksum a client declared for a part's body.
enum DeclaredChecksum {
    /// In an `x-amz-checksum-*` header.
    Header(Checksum),
    /// In a trailer of the aws-chunked body, named by `x-amz-trailer`.
    Trailer(ChecksumAlgorithm),
}

impl DeclaredChecksum {
    fn algorithm(&self) -> ChecksumAlgorithm {
        match self {
            DeclaredChecksum::Header(checksum) => checksum.algorithm(),
            DeclaredChecksum::Trailer(algorithm) => *algorithm,
        }
    }
}

/// The checksum in an `x-amz-checksum-*` header of `algorithm`.
fn header_checksum(algorithm: ChecksumAlgorithm, value: &HeaderValue) -> Result<Checksum, S3Error> {
    value
        .to_str()
        .ok()
        .and_then(|text| Checksum::from_base64(algorithm, text))
        .ok_or_else(|| {
            S3Error::new(
                S3ErrorKind::InvalidRequest,
                format!(
                    "value for {} header is invalid: it must be the base64 of the {} digest",
                    algorithm.header_name(),
                    algorithm.name()
                ),
            )
        })
}

/// The checksum a request declares in `x-amz-checksum-*` headers or in
/// `x-amz-trailer`; S3 takes at most one.
fn declared_checksum(
    parts: &Parts,
    payload_check: PayloadCheck,
) -> Result<Option<DeclaredChecksum>, S3Error> {
    let mut declared = None;
    for (name, value) in &parts.headers {
        let Some(algorithm) = ChecksumAlgorithm::from_header_name(name.as_str()) else {
            continue;
        };
        if declared.is_some() {
            return Err(S3Error::new(
                S3ErrorKind::InvalidRequest,
                "expecting a single x-amz-checksum- header; multiple checksum types are not allowed",
            ));
        }
        declared = Some(DeclaredChecksum::Header(header_checksum(algorithm, value)?));
    }
    if let Some(trailer) = parts.headers.get("x-amz-trailer") {
        let trailer_name = trailer.to_str().unwrap_or_default().trim();
        let algorithm = ChecksumAlgorithm::from_header_name(trailer_name).ok_or_else(|| {
            S3Error::new(
                S3ErrorKind::InvalidRequest,
                format!(
                    "x-amz-trailer {trailer_name:?} is not supported; name one of x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256"
                ),
            )
        })?;
        if payload_check != PayloadCheck::UnsignedTrailer {
            return Err(S3Error::new(
                S3ErrorKind::InvalidRequest,
                "x-amz-trailer needs x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER and an aws-chunked body",
            ));
        }
        if declared.is_some() {
            return Err(S3Error::new(
                S3ErrorKind::InvalidRequest,
                "expecting a single x-amz-checksum- header or trailer, not both",
            ));
        }
        declared = Some(DeclaredChecksum::Trailer(algorithm));
    }
    Ok(declared)
}

fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn xml_response(body: String) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, expected: Result<(&str, &str), S3ErrorKind>) {
        let actual = parse_target(path)
            .map(|target| (target.bucket, target.key))
            .map_err(|error| error.kind);
        let expected = expected.map(|(bucket, key)| (bucket.to_string(), key.to_string()));
        assert_eq!(actual, expected);
    }

    #[test]
    fn parses_bucket_and_decoded_key() {
        check("/reel/videos/a%20b.mp4", Ok(("reel", "videos/a b.mp4")));
        check("/reel/a+b", Ok(("reel", "a+b")));
    }

    #[test]
    fn refuses_keys_that_would_escape_or_alias() {
        check("/reel/../etc/passwd", Err(S3ErrorKind::InvalidArgument));
        check("/reel/a/%2E%2E/b", Err(S3ErrorKind::InvalidArgument));
        check("/reel/a//b", Err(S3ErrorKind::InvalidArgument));
        check("/reel//a", Err(S3ErrorKind::InvalidArgument));
        check("/reel/a/", Err(S3ErrorKind::InvalidArgument));
        check("/reel/", Err(S3ErrorKind::InvalidArgument));
        check("/reel/s3-multipart/x", Err(S3ErrorKind::InvalidArgument));
        check("/reel/%FF", Err(S3ErrorKind::InvalidArgument));
    }
}
