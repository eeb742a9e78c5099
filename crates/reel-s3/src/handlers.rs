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

use crate::error::{S3Error, S3ErrorKind};
use crate::inplace::{self, FixedLayout, LocalFiles, PartFile};
use crate::layout::{self, PartNumber, PartRecord, UploadId, UploadManifest, MULTIPART_PREFIX};
use crate::sigv4::{self, PayloadCheck, SignedRequest};
use crate::xml::{self, escape};
use crate::S3State;

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
const S3_XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

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
                content_length: content_length(parts)?,
                content_md5: content_md5(parts)?,
                payload_check,
            };
            upload_part(state, &object, part_upload, body).await
        }
        (&Method::GET, false, Some(upload_id), None) => {
            read_small_body(body, payload_check, MAX_SMALL_BODY_BYTES).await?;
            list_parts(state, &object, &upload_id, &query).await
        }
        (&Method::POST, false, Some(upload_id), None) => {
            let request_body = read_small_body(body, payload_check, MAX_COMPLETE_BODY_BYTES).await?;
            complete_multipart_upload(state, &object, &upload_id, &request_body, None).await
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

/// Records a new multipart upload of `object` and returns its id.
async fn new_upload(
    state: &S3State,
    object: &ObjectTarget,
    layout: Option<FixedLayout>,
) -> Result<UploadId, S3Error> {
    let upload_id = UploadId::generate();
    let manifest = UploadManifest {
        version: UploadManifest::VERSION,
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        created: Utc::now(),
        layout: layout.filter(|_| state.local.is_some()),
    };
    layout::write_manifest(state.objects.as_ref(), &upload_id, &manifest).await?;
    Ok(upload_id)
}

async fn create_multipart_upload(
    state: &S3State,
    object: &ObjectTarget,
) -> Result<Response, S3Error> {
    let upload_id = new_upload(state, object, None).await?;
    tracing::debug!(
        upload_id = upload_id.as_str(),
        "s3 multipart upload created"
    );
    Ok(xml_response(format!(
        "<InitiateMultipartUploadResult xmlns=\"{S3_XMLNS}\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{}</UploadId></InitiateMultipartUploadResult>",
        escape(&object.bucket),
        escape(&object.key),
        upload_id.as_str(),
    )))
}

/// What an UploadPart request says about its body.
struct PartUpload {
    upload_id: UploadId,
    part_number: PartNumber,
    content_length: Option<u64>,
    content_md5: Option<[u8; 16]>,
    payload_check: PayloadCheck,
}

async fn upload_part(
    state: &S3State,
    object: &ObjectTarget,
    part_upload: PartUpload,
    body: Body,
) -> Result<Response, S3Error> {
    let max_part_bytes = state.config.max_part_size.bytes();
    let too_large = || {
        S3Error::new(
            S3ErrorKind::EntityTooLarge,
            format!("your proposed upload exceeds the maximum part size of {max_part_bytes} bytes"),
        )
    };
    if part_upload
        .content_length
        .is_some_and(|length| length > max_part_bytes)
    {
        return Err(too_large());
    }
    let objects = state.objects.as_ref();
    let upload_id = &part_upload.upload_id;
    let manifest = layout::read_manifest(objects, upload_id, &object.bucket, &object.key).await?;
    if let (Some(fixed), Some(local)) = (manifest.layout, &state.local) {
        return upload_part_in_place(state, local, fixed, part_upload, body).await;
    }

    let part_path = upload_id.part_path(part_upload.part_number);
    let store_upload = objects
        .put_multipart(&part_path)
        .await
        .map_err(|error| S3Error::internal("starting a part write", error))?;
    let mut writer = WriteMultipart::new_with_chunk_size(store_upload, WRITE_CHUNK_BYTES);
    let hasher = BodyHasher::new(part_upload.payload_check);
    let written =
        stream_body_into(PartSink::Store(&mut writer), body, hasher, max_part_bytes).await;
    let checked = written.and_then(|(hasher, size)| {
        let digests = hasher.finish();
        check_part_digests(&part_upload, &digests)?;
        Ok((digests.etag(), size))
    });
    let (md5_hex, size) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            // Nothing of a refused body may remain in the store.
            if let Err(abort_error) = writer.abort().await {
                tracing::warn!(error = %abort_error, "s3 endpoint could not discard a refused part");
            }
            return Err(error);
        }
    };
    writer
        .finish()
        .await
        .map_err(|error| S3Error::internal("storing a part", error))?;
    let object_etag = objects
        .head(&upload_id.part_path(part_upload.part_number))
        .await
        .ok()
        .and_then(|meta| meta.e_tag);
    let record = PartRecord {
        version: PartRecord::VERSION,
        md5: md5_hex.clone(),
        size,
        stored: Utc::now(),
        object_etag,
    };
    layout::write_part_record(objects, upload_id, part_upload.part_number, &record).await?;
    // An abort or complete that ran while the body streamed has deleted the
    // upload; remove what this request left behind.
    if !layout::manifest_exists(objects, upload_id).await? {
        layout::delete_upload(objects, upload_id).await?;
        return Err(layout::no_such_upload());
    }
    tracing::debug!(
        upload_id = upload_id.as_str(),
        part_number = part_upload.part_number.get(),
        size,
        "s3 part stored"
    );
    let mut response = StatusCode::OK.into_response();
    let etag = HeaderValue::from_str(&format!("\"{md5_hex}\""))
        .expect("a quoted hex digest is a valid header value");
    response.headers_mut().insert(header::ETAG, etag);
    Ok(response)
}

/// UploadPart of an upload with a fixed layout on the local store: the body
/// goes straight to its offset in the upload's one file.
async fn upload_part_in_place(
    state: &S3State,
    local: &LocalFiles,
    fixed: FixedLayout,
    part_upload: PartUpload,
    body: Body,
) -> Result<Response, S3Error> {
    let objects = state.objects.as_ref();
    let upload_id = &part_upload.upload_id;
    let part_number = part_upload.part_number;
    let (offset, length) = fixed
        .span(part_number)
        .ok_or_else(|| fixed.misfit(part_number, part_upload.content_length))?;
    if part_upload
        .content_length
        .is_some_and(|declared| declared != length)
    {
        return Err(fixed.misfit(part_number, part_upload.content_length));
    }
    let lock = local.lock(upload_id);
    let _writing = lock.read().await;
    // The region is about to change: the part is not stored until its new
    // bytes are checked and recorded again.
    layout::delete_part_record(objects, upload_id, part_number).await?;
    local.part_changing(upload_id, part_number);
    let mut file = PartFile::open(&local.assembly_path(upload_id)?, offset).await?;
    let hasher = BodyHasher::fast(part_upload.payload_check, part_upload.content_md5.is_some());
    let written = stream_body_into(PartSink::File(&mut file), body, hasher, length).await;
    file.finish().await?;
    let (hasher, size) = written?;
    if size != length {
        return Err(fixed.misfit(part_number, Some(size)));
    }
    let digests = hasher.finish();
    check_part_digests(&part_upload, &digests)?;
    let md5_hex = digests.etag();
    let record = PartRecord {
        version: PartRecord::VERSION,
        md5: md5_hex.clone(),
        size,
        stored: Utc::now(),
        object_etag: None,
    };
    layout::write_part_record(objects, upload_id, part_number, &record).await?;
    if !layout::manifest_exists(objects, upload_id).await? {
        layout::delete_upload(objects, upload_id).await?;
        return Err(layout::no_such_upload());
    }
    local.part_stored(state.objects.clone(), upload_id, fixed);
    tracing::debug!(
        upload_id = upload_id.as_str(),
        part_number = part_number.get(),
        size,
        "s3 part written in place"
    );
    Ok(etag_response(&md5_hex))
}

fn etag_response(md5_hex: &str) -> Response {
    let mut response = StatusCode::OK.into_response();
    let etag = HeaderValue::from_str(&format!("\"{md5_hex}\""))
        .expect("a quoted hex digest is a valid header value");
    response.headers_mut().insert(header::ETAG, etag);
    response
}

fn check_part_digests(part_upload: &PartUpload, digests: &BodyDigests) -> Result<(), S3Error> {
    if let (PayloadCheck::Sha256(expected), Some(actual)) =
        (part_upload.payload_check, digests.sha256)
    {
        if expected != actual {
            return Err(S3Error::new(
                S3ErrorKind::XAmzContentSha256Mismatch,
                "the body's SHA-256 does not match x-amz-content-sha256",
            ));
        }
    }
    if part_upload
        .content_md5
        .is_some_and(|expected| Some(expected) != digests.md5)
    {
        return Err(S3Error::new(
            S3ErrorKind::BadDigest,
            "the Content-MD5 you specified did not match what we received",
        ));
    }
    Ok(())
}

/// Streams `body` into `writer` while hashing it, refusing more than
/// `max_bytes`; returns the hasher and the number of bytes.
/// Where a part's body goes as it streams in.
enum PartSink<'a> {
    Store(&'a mut WriteMultipart),
    File(&'a mut PartFile),
}

async fn stream_body_into(
    mut sink: PartSink<'_>,
    body: Body,
    mut hasher: BodyHasher,
    max_bytes: u64,
) -> Result<(BodyHasher, u64), S3Error> {
    let mut n_bytes: u64 = 0;
    let mut frames = body.into_data_stream();
    while let Some(frame) = frames.next().await {
        let chunk = frame.map_err(|error| {
            S3Error::new(
                S3ErrorKind::IncompleteBody,
                format!("the request body could not be read completely: {error}"),
            )
        })?;
        n_bytes += chunk.len() as u64;
        if n_bytes > max_bytes {
            return Err(S3Error::new(
                S3ErrorKind::EntityTooLarge,
                format!("your proposed upload exceeds the maximum part size of {max_bytes} bytes"),
            ));
        }
        hasher = hasher.update(chunk.clone()).await?;
        match &mut sink {
            PartSink::Store(writer) => {
                writer
                    .wait_for_capacity(MAX_WRITES_IN_FLIGHT)
                    .await
                    .map_err(|error| S3Error::internal("storing a part", error))?;
                writer.put(chunk);
            }
            PartSink::File(file) => file.write(&chunk).await?,
        }
    }
    Ok((hasher, n_bytes))
}

async fn list_parts(
    state: &S3State,
    object: &ObjectTarget,
    upload_id: &UploadId,
    query: &[(String, String)],
) -> Result<Response, S3Error> {
    let query_number = |name: &str, default: u32, max: u32| -> Result<u32, S3Error> {
        match query.iter().find(|(pair_name, _)| pair_name == name) {
            None => Ok(default),
            Some((_, value)) => value
                .parse::<u32>()
                .ok()
                .filter(|number| *number <= max)
                .ok_or_else(|| {
                    S3Error::new(
                        S3ErrorKind::InvalidArgument,
                        format!("{name} must be an integer from 0 to {max}"),
                    )
                }),
        }
    };
    // ListParts returns at most 1000 parts per page.
    let max_parts = query_number("max-parts", 1000, 1000)?.max(1);
    let part_number_marker = query_number("part-number-marker", 0, PartNumber::MAX)?;
    let objects = state.objects.as_ref();
    layout::read_manifest(objects, upload_id, &object.bucket, &object.key).await?;
    let after_marker: Vec<PartNumber> = layout::list_part_numbers(objects, upload_id)
        .await?
        .into_iter()
        .filter(|part_number| part_number.get() > part_number_marker)
        .collect();
    let is_truncated = after_marker.len() > max_parts as usize;
    let page = &after_marker[..after_marker.len().min(max_parts as usize)];
    let mut parts_xml = String::new();
    for part_number in page {
        // A record listed a moment ago may vanish with a concurrent abort.
        let Some(record) = layout::read_part_record(objects, upload_id, *part_number).await? else {
            continue;
        };
        parts_xml.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size></Part>",
            part_number.get(),
            format_time(record.stored),
            escape(&record.md5),
            record.size,
        ));
    }
    let next_marker = page.last().map_or(part_number_marker, |last| last.get());
    Ok(xml_response(format!(
        "<ListPartsResult xmlns=\"{S3_XMLNS}\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{}</UploadId><StorageClass>STANDARD</StorageClass><PartNumberMarker>{part_number_marker}</PartNumberMarker><NextPartNumberMarker>{next_marker}</NextPartNumberMarker><MaxParts>{max_parts}</MaxParts><IsTruncated>{is_truncated}</IsTruncated>{parts_xml}</ListPartsResult>",
        escape(&object.bucket),
        escape(&object.key),
        upload_id.as_str(),
    )))
}

async fn complete_multipart_upload(
    state: &S3State,
    object: &ObjectTarget,
    upload_id: &UploadId,
    request_body: &[u8],
    whole_sha256: Option<&mut Sha256>,
) -> Result<Response, S3Error> {
    let requested_parts = xml::parse_complete_request(request_body)?;
    for pair in requested_parts.windows(2) {
        if pair[1].part_number <= pair[0].part_number {
            return Err(S3Error::new(
                S3ErrorKind::InvalidPartOrder,
                format!(
                    "the list of parts was not in ascending order: part {} follows part {}",
                    pair[1].part_number, pair[0].part_number
                ),
            ));
        }
    }
    let objects = state.objects.as_ref();
    let manifest = layout::read_manifest(objects, upload_id, &object.bucket, &object.key).await?;
    let in_place = manifest.layout.zip(state.local.as_ref());
    // Completion waits for part writes in flight and keeps new ones out.
    let lock = in_place.map(|(_, local)| local.lock(upload_id));
    let _completing = match &lock {
        Some(lock) => Some(lock.write().await),
        None => None,
    };
    let mut parts: Vec<(PartNumber, PartRecord)> = Vec::with_capacity(requested_parts.len());
    for requested in &requested_parts {
        let not_found = || {
            S3Error::new(
                S3ErrorKind::InvalidPart,
                format!(
                    "part {} could not be found or its ETag does not match; upload it again or list the parts",
                    requested.part_number
                ),
            )
        };
        let part_number = PartNumber::new(requested.part_number).ok_or_else(not_found)?;
        let record = layout::read_part_record(objects, upload_id, part_number)
            .await?
            .filter(|record| record.md5 == requested.etag)
            .ok_or_else(not_found)?;
        parts.push((part_number, record));
    }
    let min_part_bytes = state.config.min_part_size.bytes();
    let all_but_last = &parts[..parts.len() - 1];
    if let Some((part_number, record)) = all_but_last
        .iter()
        .find(|(_, record)| record.size < min_part_bytes)
    {
        return Err(S3Error::new(
            S3ErrorKind::EntityTooSmall,
            format!(
                "part {} is {} bytes; every part but the last must be at least {min_part_bytes} bytes",
                part_number.get(),
                record.size
            ),
        ));
    }

    let multipart_etag = match in_place {
        Some((fixed, local)) => {
            let expected = fixed.n_parts();
            let is_whole = parts.len() as u64 == expected
                && parts
                    .iter()
                    .enumerate()
                    .all(|(index, (number, _))| number.get() as usize == index + 1);
            if !is_whole {
                return Err(S3Error::new(
                    S3ErrorKind::InvalidPart,
                    format!("this upload completes with parts 1 to {expected}, each listed once"),
                ));
            }
            inplace::complete(local, upload_id, fixed, &parts, &object.path, whole_sha256).await?
        }
        None => concatenate_parts(objects, upload_id, &parts, &object.path, whole_sha256).await?,
    };
    layout::delete_upload(objects, upload_id).await?;
    tracing::debug!(
        upload_id = upload_id.as_str(),
        n_parts = parts.len(),
        "s3 multipart upload completed"
    );
    let mut response = xml_response(format!(
        "<CompleteMultipartUploadResult xmlns=\"{S3_XMLNS}\"><Location>{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>&quot;{multipart_etag}&quot;</ETag></CompleteMultipartUploadResult>",
        escape(&object.resource),
        escape(&object.bucket),
        escape(&object.key),
    ));
    let etag = HeaderValue::from_str(&format!("\"{multipart_etag}\""))
        .expect("a multipart ETag is a valid header value");
    response.headers_mut().insert(header::ETAG, etag);
    Ok(response)
}

/// Writes the parts, in order, to `destination` and returns the multipart
/// ETag `md5(part md5s)-n`. Each part's MD5 is computed again on the way, so
/// a part overwritten after its record was read is caught.
async fn concatenate_parts(
    objects: &dyn ObjectStore,
    upload_id: &UploadId,
    parts: &[(PartNumber, PartRecord)],
    destination: &Path,
    mut whole: Option<&mut Sha256>,
) -> Result<String, S3Error> {
    let store_upload = objects
        .put_multipart(destination)
        .await
        .map_err(|error| S3Error::internal("starting the object write", error))?;
    let mut writer = WriteMultipart::new_with_chunk_size(store_upload, WRITE_CHUNK_BYTES);
    let mut etag_hasher = Md5::new();
    for (part_number, record) in parts {
        match copy_part(
            objects,
            &mut writer,
            upload_id,
            *part_number,
            record,
            whole.as_deref_mut(),
        )
        .await
        {
            Ok(md5) => etag_hasher.update(md5),
            Err(error) => {
                if let Err(abort_error) = writer.abort().await {
                    tracing::warn!(error = %abort_error, "s3 endpoint could not discard a failed object write");
                }
                return Err(error);
            }
        }
    }
    writer
        .finish()
        .await
        .map_err(|error| S3Error::internal("storing the object", error))?;
    Ok(format!(
        "{}-{}",
        hex::encode(etag_hasher.finalize()),
        parts.len()
    ))
}

async fn copy_part(
    objects: &dyn ObjectStore,
    writer: &mut WriteMultipart,
    upload_id: &UploadId,
    part_number: PartNumber,
    record: &PartRecord,
    mut whole: Option<&mut Sha256>,
) -> Result<[u8; 16], S3Error> {
    let changed = || {
        S3Error::new(
            S3ErrorKind::InvalidPart,
            format!(
                "part {} changed or vanished while completing; upload it again",
                part_number.get()
            ),
        )
    };
    let location = upload_id.part_path(part_number);
    // While the store's ETag of the part is the one recorded when it was
    // written (checked before and after reading), its bytes are the ones
    // the recorded MD5 covers, and the MD5 need not be computed again.
    let current_etag = || async {
        objects
            .head(&location)
            .await
            .ok()
            .filter(|meta| meta.size == record.size)
            .and_then(|meta| meta.e_tag)
    };
    let unchanged = match &record.object_etag {
        Some(recorded) => current_etag().await.as_ref() == Some(recorded),
        None => false,
    };
    let mut md5 = Md5::new();
    let mut offset: u64 = 0;
    // Large blocks, with the part's MD5 and the object's SHA-256 computed
    // on two blocking threads at once: joining is bound by hashing, and
    // the store's own stream hands out small chunks.
    while offset < record.size {
        let end = (offset + JOIN_BLOCK_BYTES).min(record.size);
        let block = match objects.get_range(&location, offset..end).await {
            Ok(block) => block,
            Err(object_store::Error::NotFound { .. }) => return Err(changed()),
            Err(error) => return Err(S3Error::internal("reading a part", error)),
        };
        if block.len() as u64 != end - offset {
            return Err(changed());
        }
        let md5_block = block.clone();
        let md5_task = tokio::task::spawn_blocking(move || {
            if !unchanged {
                md5.update(&md5_block);
            }
            md5
        });
        let sha_task = whole.as_deref_mut().map(|whole| {
            let mut sha = std::mem::take(whole);
            let sha_block = block.clone();
            tokio::task::spawn_blocking(move || {
                sha.update(&sha_block);
                sha
            })
        });
        md5 = md5_task
            .await
            .map_err(|error| S3Error::internal("hashing a part", error))?;
        if let (Some(whole), Some(task)) = (whole.as_deref_mut(), sha_task) {
            *whole = task
                .await
                .map_err(|error| S3Error::internal("hashing the object", error))?;
        }
        writer
            .wait_for_capacity(MAX_WRITES_IN_FLIGHT)
            .await
            .map_err(|error| S3Error::internal("storing the object", error))?;
        writer.put(block);
        offset = end;
    }
    // A part longer than its record has changed too.
    let actual = objects.head(&location).await.map_err(|_| changed())?.size;
    if actual != record.size {
        return Err(changed());
    }
    if unchanged {
        if current_etag().await != record.object_etag {
            return Err(changed());
        }
        let mut recorded = [0u8; 16];
        hex::decode_to_slice(&record.md5, &mut recorded).map_err(|_| changed())?;
        return Ok(recorded);
    }
    let md5: [u8; 16] = md5.finalize().into();
    if hex::encode(md5) != record.md5 {
        return Err(changed());
    }
    Ok(md5)
}

async fn abort_multipart_upload(
    state: &S3State,
    object: &ObjectTarget,
    upload_id: &UploadId,
) -> Result<Response, S3Error> {
    let objects = state.objects.as_ref();
    layout::read_manifest(objects, upload_id, &object.bucket, &object.key).await?;
    layout::delete_upload(objects, upload_id).await?;
    if let Some(local) = &state.local {
        local.forget(upload_id);
    }
    tracing::debug!(
        upload_id = upload_id.as_str(),
        "s3 multipart upload aborted"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
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

fn direct_target(state: &S3State, key: &str) -> Result<ObjectTarget, S3Error> {
    let resource = format!("/{}/{key}", state.config.bucket);
    let target = parse_target(&resource)?;
    Ok(ObjectTarget {
        bucket: target.bucket,
        key: target.key,
        path: target.path,
        resource,
    })
}

/// Starts a multipart upload of `key` (as CreateMultipartUpload does) and
/// returns its upload id.
pub async fn start_upload(state: &S3State, key: &str) -> Result<String, OperationError> {
    let object = direct_target(state, key)?;
    let upload_id = new_upload(state, &object, None).await?;
    Ok(upload_id.as_str().to_string())
}

/// Starts a multipart upload of `key` whose parts are all `part_size` bytes
/// but the last, `total_size` in all. Parts that do not fit are refused;
/// on the local store they are written in place and completion moves the
/// file into place instead of copying it.
pub async fn start_upload_sized(
    state: &S3State,
    key: &str,
    part_size: u64,
    total_size: u64,
) -> Result<String, OperationError> {
    let object = direct_target(state, key)?;
    let fixed = FixedLayout::new(part_size, total_size).ok_or_else(|| {
        S3Error::new(
            S3ErrorKind::InvalidArgument,
            format!("{total_size} bytes in parts of {part_size} is not 1 to 10000 parts"),
        )
    })?;
    let upload_id = new_upload(state, &object, Some(fixed)).await?;
    Ok(upload_id.as_str().to_string())
}

/// The parts storage holds for an upload, in part order (as ListParts).
pub async fn stored_parts(
    state: &S3State,
    key: &str,
    upload_id: &str,
) -> Result<Vec<StoredPart>, OperationError> {
    let object = direct_target(state, key)?;
    let upload_id = UploadId::parse(upload_id)?;
    let objects = state.objects.as_ref();
    layout::read_manifest(objects, &upload_id, &object.bucket, &object.key).await?;
    let mut parts = Vec::new();
    for part_number in layout::list_part_numbers(objects, &upload_id).await? {
        if let Some(record) = layout::read_part_record(objects, &upload_id, part_number).await? {
            parts.push(StoredPart {
                part_number: part_number.get(),
                size: record.size,
                etag: record.md5,
            });
        }
    }
    Ok(parts)
}

/// A completed upload: its multipart ETag and the whole object's SHA-256,
/// computed while the parts were joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedUpload {
    /// `md5(part md5s)-n`.
    pub etag: String,
    /// Hex SHA-256 of the assembled object.
    pub sha256: String,
}

/// Completes an upload from `(part number, etag)` pairs with every check of
/// CompleteMultipartUpload.
pub async fn finish_upload(
    state: &S3State,
    key: &str,
    upload_id: &str,
    parts: &[(u32, String)],
) -> Result<FinishedUpload, OperationError> {
    let object = direct_target(state, key)?;
    let upload_id = UploadId::parse(upload_id)?;
    let mut body = String::from("<CompleteMultipartUpload>");
    for (part_number, etag) in parts {
        body.push_str(&format!(
            "<Part><PartNumber>{part_number}</PartNumber><ETag>\"{}\"</ETag></Part>",
            escape(etag.trim_matches('"'))
        ));
    }
    body.push_str("</CompleteMultipartUpload>");
    let mut whole = Sha256::new();
    let response = complete_multipart_upload(
        state,
        &object,
        &upload_id,
        body.as_bytes(),
        Some(&mut whole),
    )
    .await?;
    let etag = response
        .headers()
        .get(header::ETAG)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .trim_matches('"')
        .to_string();
    Ok(FinishedUpload {
        etag,
        sha256: hex::encode(whole.finalize()),
    })
}

/// Aborts an upload and removes its parts (as AbortMultipartUpload).
pub async fn cancel_upload(
    state: &S3State,
    key: &str,
    upload_id: &str,
) -> Result<(), OperationError> {
    let object = direct_target(state, key)?;
    let upload_id = UploadId::parse(upload_id)?;
    abort_multipart_upload(state, &object, &upload_id).await?;
    Ok(())
}

/// What a body is hashed for: the part's ETag (MD5 as S3 does, or the much
/// cheaper XXH3-128 for in-place parts, whose ETags only reel's API reads),
/// a Content-MD5 check, and a signed payload's SHA-256.
struct BodyHasher {
    md5: Option<Md5>,
    xxh3: Option<Box<xxhash_rust::xxh3::Xxh3>>,
    sha256: Option<Sha256>,
}

struct BodyDigests {
    md5: Option<[u8; 16]>,
    xxh3: Option<[u8; 16]>,
    sha256: Option<[u8; 32]>,
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
}

impl BodyHasher {
    /// MD5 for the ETag, as S3 does.
    fn new(payload_check: PayloadCheck) -> BodyHasher {
        BodyHasher {
            md5: Some(Md5::new()),
            xxh3: None,
            sha256: Self::sha256_for(payload_check),
        }
    }

    /// XXH3-128 for the ETag; MD5 only to check a Content-MD5.
    fn fast(payload_check: PayloadCheck, content_md5: bool) -> BodyHasher {
        BodyHasher {
            md5: content_md5.then(Md5::new),
            xxh3: Some(Box::default()),
            sha256: Self::sha256_for(payload_check),
        }
    }

    fn sha256_for(payload_check: PayloadCheck) -> Option<Sha256> {
        match payload_check {
            PayloadCheck::Unsigned => None,
            PayloadCheck::Sha256(_) => Some(Sha256::new()),
        }
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
    }

    fn finish(self) -> BodyDigests {
        BodyDigests {
            md5: self.md5.map(|md5| md5.finalize().into()),
            xxh3: self.xxh3.map(|xxh3| xxh3.digest128().to_be_bytes()),
            sha256: self.sha256.map(|sha256| sha256.finalize().into()),
        }
    }
}

/// Reads a small body whole and checks it against a signed SHA-256.
async fn read_small_body(
    body: Body,
    payload_check: PayloadCheck,
    max_bytes: usize,
) -> Result<Bytes, S3Error> {
    let bytes = axum::body::to_bytes(body, max_bytes).await.map_err(|_| {
        S3Error::new(
            S3ErrorKind::EntityTooLarge,
            format!("the request body could not be read or is over {max_bytes} bytes"),
        )
    })?;
    if let PayloadCheck::Sha256(expected) = payload_check {
        let actual: [u8; 32] = Sha256::digest(&bytes).into();
        if actual != expected {
            return Err(S3Error::new(
                S3ErrorKind::XAmzContentSha256Mismatch,
                "the body's SHA-256 does not match x-amz-content-sha256",
            ));
        }
    }
    Ok(bytes)
}

fn content_length(parts: &Parts) -> Result<Option<u64>, S3Error> {
    parts
        .headers
        .get(header::CONTENT_LENGTH)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                .ok_or_else(|| {
                    S3Error::new(
                        S3ErrorKind::InvalidArgument,
                        "Content-Length is not a number",
                    )
                })
        })
        .transpose()
}

fn content_md5(parts: &Parts) -> Result<Option<[u8; 16]>, S3Error> {
    let Some(value) = parts.headers.get("content-md5") else {
        return Ok(None);
    };
    let invalid = || {
        S3Error::new(
            S3ErrorKind::InvalidDigest,
            "the Content-MD5 you specified is not the base64 of 16 bytes",
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.as_bytes())
        .map_err(|_| invalid())?;
    let digest: [u8; 16] = decoded.try_into().map_err(|_| invalid())?;
    Ok(Some(digest))
}

fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn xml_response(body: String) -> Response {
    let mut response =
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}").into_response();
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
