//! `/v1/uploads`: direct-to-storage multipart uploads with presigned part
//! URLs (the way Mux and Cloudflare Stream direct uploads work).
//!
//! The bytes never pass through these routes: the client PUTs each part to
//! a presigned URL of the store (the embedded S3 endpoint at `/s3` with the
//! default local storage), short-lived and scoped to one part of one upload.
//! `GET /v1/uploads/{id}` reports the parts storage holds (the truth a
//! client resumes from), and `complete` checks every part's presence and
//! size, assembles the object at the video's source key, checks the
//! end-to-end checksum, and starts the video's job.
//!
//! The end-to-end checksum is the full-object CRC64NVME by default: the
//! client sends each part with `x-amz-checksum-crc64nvme` (verified as the
//! part lands) and completes with the CRC of the whole file, which the
//! endpoint combines from the part CRCs, reading nothing again. An upload
//! created with `"checksum": "sha256"` (or a `sha256`) has its whole
//! object's SHA-256 computed as well, one more pass over its bytes.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use object_store::path::Path as ObjectPath;
use reel_core::{Timestamp, VideoId};
use reel_model::uploads::{
    NewUpload, UploadId, UploadPart, UploadProtocol, UploadRow, UploadStatus,
};
use reel_model::videos::NewVideo;
use reel_model::{Uploads as _, Videos as _};
use reel_pipeline::video::{video_job, video_source_key};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::videos::{base_url, video_view};
use crate::{ApiError, AppState, Authenticated};

/// How long a presigned part URL lives.
pub(crate) const PART_URL_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// The smallest part size handed out (S3's minimum is 5 MiB).
const MIN_PART_SIZE: u64 = 8 << 20;
/// S3's largest part count.
const MAX_PARTS: u64 = 10_000;
/// The most URLs one request may ask for.
const MAX_URLS_PER_REQUEST: usize = 1000;
/// How long an unfinished upload lives.
const UPLOAD_EXPIRY: Duration = Duration::from_secs(24 * 3600);

#[derive(Deserialize)]
pub(crate) struct CreateBody {
    filename: Option<String>,
    size: u64,
    sha256: Option<String>,
    /// `crc64nvme` (the default) or `sha256`.
    checksum: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct PartsBody {
    part_numbers: Vec<u32>,
}

#[derive(Deserialize)]
pub(crate) struct CompletePart {
    pub(crate) part_number: u32,
    pub(crate) etag: Option<String>,
    /// The part's CRC64NVME as the client computed it, base64.
    #[serde(default)]
    pub(crate) crc64nvme: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct CompleteBody {
    #[serde(default)]
    pub(crate) parts: Vec<CompletePart>,
    pub(crate) sha256: Option<String>,
    /// The whole file's CRC64NVME (S3's FULL_OBJECT type), base64.
    #[serde(default)]
    pub(crate) crc64nvme: Option<String>,
}

/// Where a multipart upload's object and S3 upload live (kept in the
/// upload's metadata).
pub(crate) struct Target {
    pub(crate) key: String,
    pub(crate) s3_upload_id: String,
    pub(crate) video_id: VideoId,
}

pub(crate) fn target(row: &UploadRow) -> Result<Target, ApiError> {
    let corrupt = || ApiError::Internal(format!("upload {} has no storage target", row.id));
    let key = row.metadata["key"]
        .as_str()
        .ok_or_else(corrupt)?
        .to_string();
    let s3_upload_id = row.metadata["s3_upload_id"]
        .as_str()
        .ok_or_else(corrupt)?
        .to_string();
    let video_id = row.metadata["video_id"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .ok_or_else(corrupt)?;
    Ok(Target {
        key,
        s3_upload_id,
        video_id,
    })
}

/// The whole-upload checksum an upload row was opened with.
fn whole_checksum(row: &UploadRow) -> reel_s3::WholeChecksum {
    match row.metadata["checksum"].as_str() {
        Some("crc64nvme") => reel_s3::WholeChecksum::Crc64Nvme,
        // Uploads opened before the CRC existed computed the SHA-256.
        _ => reel_s3::WholeChecksum::Sha256,
    }
}

fn checksum_name(whole: reel_s3::WholeChecksum) -> &'static str {
    match whole {
        reel_s3::WholeChecksum::Crc64Nvme => "crc64nvme",
        reel_s3::WholeChecksum::Sha256 => "sha256",
    }
}

/// Parses a base64 CRC64NVME of the API (`what` names it in errors).
fn parse_crc64nvme(text: &str, what: &str) -> Result<u64, ApiError> {
    use reel_s3::checksum::{Checksum, ChecksumAlgorithm};
    Checksum::from_base64(ChecksumAlgorithm::Crc64Nvme, text)
        .and_then(|checksum| checksum.digest().try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{what} must be the base64 of the 8-byte CRC64NVME, as in x-amz-checksum-crc64nvme"
            ))
        })
}

fn crc64nvme_text(value: u64) -> String {
    reel_s3::checksum::Checksum::crc64nvme(value).to_base64()
}

fn valid_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

pub(crate) fn s3_state(state: &AppState) -> Result<&reel_s3::MultipartStore, ApiError> {
    state.multipart.as_ref().ok_or_else(|| {
        ApiError::NotImplemented(
            "presigned multipart uploads need the embedded S3 endpoint (local storage); with s3:// storage use tus at /files/".to_string(),
        )
    })
}

pub(crate) fn s3_error(error: reel_s3::OperationError) -> ApiError {
    match error.status {
        404 => ApiError::NotFound(format!("storage has no such upload ({})", error.message)),
        400..=499 => ApiError::Conflict(format!("storage refused: {}", error.message)),
        _ => ApiError::internal("the storage request", &error),
    }
}

/// The part size for `size` bytes: at least 8 MiB, and large enough that
/// the upload has at most 10,000 parts (rounded up to whole MiB).
pub(crate) fn part_size_for(size: u64) -> u64 {
    let needed = size.div_ceil(MAX_PARTS);
    needed
        .div_ceil(1 << 20)
        .saturating_mul(1 << 20)
        .max(MIN_PART_SIZE)
}

fn part_count(row: &UploadRow) -> u64 {
    row.length.unwrap_or(0).div_ceil(row.part_size.max(1))
}

fn expected_part_size(row: &UploadRow, part_number: u32) -> u64 {
    let length = row.length.unwrap_or(0);
    let start = u64::from(part_number.saturating_sub(1)) * row.part_size;
    row.part_size.min(length.saturating_sub(start))
}

/// The caller's upload; another key's upload is reported as missing.
pub(crate) async fn owned_upload(
    state: &AppState,
    owner: &str,
    id: &str,
) -> Result<UploadRow, ApiError> {
    let id: UploadId = id
        .parse()
        .map_err(|error: reel_model::uploads::ParseUploadIdError| {
            ApiError::BadRequest(error.to_string())
        })?;
    let row = state
        .store
        .upload(&id)
        .await?
        .filter(|row| row.owner == owner && row.protocol == UploadProtocol::Multipart)
        .ok_or_else(|| ApiError::NotFound(format!("no upload with id {id}")))?;
    Ok(row)
}

pub(crate) fn check_open(row: &UploadRow) -> Result<(), ApiError> {
    match row.status {
        UploadStatus::Open if row.expires_at >= Timestamp::now() => Ok(()),
        UploadStatus::Open | UploadStatus::Aborted => Err(ApiError::Gone(format!(
            "upload {} has expired or was cancelled; start a new one",
            row.id
        ))),
        UploadStatus::Completing | UploadStatus::Complete => Err(ApiError::Conflict(format!(
            "upload {} is already complete",
            row.id
        ))),
    }
}

fn status_name(status: UploadStatus) -> &'static str {
    match status {
        UploadStatus::Open => "open",
        UploadStatus::Completing => "completing",
        UploadStatus::Complete => "complete",
        UploadStatus::Aborted => "aborted",
    }
}

async fn upload_view(
    state: &AppState,
    headers: &HeaderMap,
    row: &UploadRow,
) -> Result<Value, ApiError> {
    let target = target(row)?;
    let s3 = s3_state(state)?;
    let parts: Vec<Value> = if row.status == UploadStatus::Open {
        s3.stored_parts(&target.key, &target.s3_upload_id)
            .await
            .map_err(s3_error)?
            .into_iter()
            .map(|part| json!({"part_number": part.part_number, "size": part.size, "etag": part.etag, "crc64nvme": part.crc64nvme.map(crc64nvme_text)}))
            .collect()
    } else {
        Vec::new()
    };
    Ok(json!({
        "id": row.id.to_string(),
        "filename": row.filename,
        "size": row.length,
        "part_size": row.part_size,
        "part_count": part_count(row),
        "checksum": checksum_name(whole_checksum(row)),
        "state": status_name(row.status),
        "parts": parts,
        "video_id": (row.status == UploadStatus::Complete).then(|| target.video_id.to_string()),
        "expires_at": row.expires_at,
        "error": row.error,
        // Where the parts go, for S3 clients (Uppy's `{key, uploadId}`).
        "storage": {
            "endpoint": s3.endpoint(&embedded_endpoint(headers)?).as_str().trim_end_matches('/'),
            "bucket": s3.bucket(),
            "key": target.key,
            "upload_id": target.s3_upload_id,
        },
    }))
}

pub(crate) async fn create_upload(
    Authenticated(owner): Authenticated,
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<CreateBody>,
) -> Result<Response, ApiError> {
    if body.size == 0 {
        return Err(ApiError::BadRequest("size must be above 0".to_string()));
    }
    let whole = match (body.checksum.as_deref(), &body.sha256) {
        (Some("sha256"), _) | (None, Some(_)) => reel_s3::WholeChecksum::Sha256,
        (Some("crc64nvme") | None, None) => reel_s3::WholeChecksum::Crc64Nvme,
        (Some("crc64nvme"), Some(_)) => {
            return Err(ApiError::BadRequest(
                "a sha256 needs \"checksum\": \"sha256\"".to_string(),
            ))
        }
        (Some(other), _) => {
            return Err(ApiError::BadRequest(format!(
                "checksum {other:?} is not supported; use \"crc64nvme\" (the default) or \"sha256\""
            )))
        }
    };
    let row = open_upload(
        &state,
        OpenUpload {
            owner,
            filename: body.filename.unwrap_or_default(),
            size: Some(body.size),
            sha256: body.sha256,
            whole,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(upload_view(&state, &headers, &row).await?),
    )
        .into_response())
}

/// What a new multipart upload is.
pub(crate) struct OpenUpload {
    pub(crate) owner: String,
    pub(crate) filename: String,
    pub(crate) size: Option<u64>,
    pub(crate) sha256: Option<String>,
    pub(crate) whole: reel_s3::WholeChecksum,
}

/// Opens a multipart upload into a new video's source key. With `size`
/// known the part layout is fixed (and parts are written in place on the
/// local store); without it (Uppy's create call has no size) any S3 part
/// sizes are taken and the limits are checked as parts are signed and at
/// completion.
pub(crate) async fn open_upload(
    state: &AppState,
    request: OpenUpload,
) -> Result<UploadRow, ApiError> {
    let OpenUpload {
        owner,
        filename,
        size,
        sha256,
        whole,
    } = request;
    let s3 = s3_state(state)?;
    if let Some(size) = size {
        check_size(state, size)?;
        crate::check_quota(state, &owner, size).await?;
    }
    if let Some(sha256) = &sha256 {
        if !valid_sha256(sha256) {
            return Err(ApiError::BadRequest(
                "sha256 must be 64 hex digits".to_string(),
            ));
        }
    }
    let video_id = VideoId::new_random();
    let key = video_source_key(video_id);
    let (part_size, s3_upload_id) = match size {
        Some(size) => {
            let part_size = part_size_for(size);
            let s3_upload_id = s3
                .start_upload(&key, Some((part_size, size)), whole)
                .await
                .map_err(s3_error)?;
            (part_size, s3_upload_id)
        }
        None => (
            reel_s3::S3_MIN_PART_SIZE.bytes(),
            s3.start_upload(&key, None, whole).await.map_err(s3_error)?,
        ),
    };
    let id = UploadId::new_random();
    let filename: String = filename
        .chars()
        .filter(|character| !character.is_control())
        .take(255)
        .collect();
    let upload = NewUpload {
        id: id.clone(),
        owner,
        protocol: UploadProtocol::Multipart,
        length: size,
        offset: 0,
        part_size,
        declared_sha256: sha256.map(|text| text.to_ascii_lowercase()),
        filename,
        metadata: json!({"key": key, "s3_upload_id": s3_upload_id, "video_id": video_id.to_string(), "checksum": checksum_name(whole)}),
        concat: None,
        expires_at: Timestamp::from_micros(
            Timestamp::now().as_micros()
                + i64::try_from(UPLOAD_EXPIRY.as_micros()).unwrap_or(i64::MAX),
        ),
    };
    state.store.create_upload(&upload).await?;
    state
        .store
        .upload(&id)
        .await?
        .ok_or_else(|| ApiError::Internal("the upload vanished after creation".to_string()))
}

fn check_size(state: &AppState, size: u64) -> Result<(), ApiError> {
    if size > state.max_upload_bytes {
        return Err(ApiError::TooLarge(format!(
            "the file has {size} bytes, over the limit of {}; raise limits.max_upload_size",
            state.max_upload_bytes
        )));
    }
    Ok(())
}

pub(crate) async fn show_upload(
    Authenticated(owner): Authenticated,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = owned_upload(&state, &owner, &id).await?;
    Ok(Json(upload_view(&state, &headers, &row).await?).into_response())
}

pub(crate) async fn part_urls(
    Authenticated(owner): Authenticated,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<PartsBody>,
) -> Result<Response, ApiError> {
    let s3 = s3_state(&state)?;
    let row = owned_upload(&state, &owner, &id).await?;
    check_open(&row)?;
    let n_parts = signable_parts(&state, s3, &row).await?;
    if body.part_numbers.is_empty() || body.part_numbers.len() > MAX_URLS_PER_REQUEST {
        return Err(ApiError::BadRequest(format!(
            "ask for 1 to {MAX_URLS_PER_REQUEST} part numbers at a time"
        )));
    }
    if let Some(bad) = body
        .part_numbers
        .iter()
        .find(|number| **number == 0 || u64::from(**number) > n_parts)
    {
        return Err(ApiError::BadRequest(format!(
            "part {bad} does not exist: this upload has parts 1 to {n_parts}"
        )));
    }
    let target = target(&row)?;
    let mut urls = Vec::with_capacity(body.part_numbers.len());
    for part_number in &body.part_numbers {
        urls.push(json!({
            "part_number": part_number,
            "url": presign_part(s3, &headers, &target, *part_number)?,
            "method": "PUT",
            "size": row.length.map(|_| expected_part_size(&row, *part_number)),
        }));
    }
    Ok(
        Json(json!({"urls": urls, "expires_in_seconds": PART_URL_LIFETIME.as_secs()}))
            .into_response(),
    )
}

/// How many parts may be signed: the layout's count for a sized upload; for
/// one without a size, 10,000 while the parts stored so far are within the
/// size limit.
pub(crate) async fn signable_parts(
    state: &AppState,
    s3: &reel_s3::MultipartStore,
    row: &UploadRow,
) -> Result<u64, ApiError> {
    if row.length.is_some() {
        return Ok(part_count(row));
    }
    let target = target(row)?;
    let stored: u64 = s3
        .stored_parts(&target.key, &target.s3_upload_id)
        .await
        .map_err(s3_error)?
        .iter()
        .map(|part| part.size)
        .sum();
    check_size(state, stored)?;
    // No more parts once what is stored reaches the quota; completion
    // checks the listed parts again.
    if let Some(reason) = state
        .store
        .quota_excess(&row.owner, state.quota_per_key, stored)
        .await?
    {
        return Err(ApiError::TooLarge(reason));
    }
    Ok(MAX_PARTS)
}

/// A presigned PUT URL for one part of the upload, valid for
/// [`PART_URL_LIFETIME`].
pub(crate) fn presign_part(
    s3: &reel_s3::MultipartStore,
    headers: &HeaderMap,
    target: &Target,
    part_number: u32,
) -> Result<String, ApiError> {
    s3.part_url(
        &embedded_endpoint(headers)?,
        &target.key,
        &target.s3_upload_id,
        part_number,
        PART_URL_LIFETIME,
    )
    .map_err(|error| ApiError::internal("presigning the part URLs", &error))
}

/// A stored object's digests, read back (a real store's completed upload).
struct ObjectDigests {
    sha256: String,
    crc64nvme: u64,
}

/// The SHA-256 and CRC64NVME of a stored object, read in blocks hashed off
/// the async threads.
async fn read_object_digests(
    state: &AppState,
    location: &ObjectPath,
) -> Result<ObjectDigests, ApiError> {
    use futures::StreamExt;
    use sha2::{Digest, Sha256};
    const BLOCK: usize = 8 << 20;
    let failed = |error: object_store::Error| {
        ApiError::internal("reading the completed upload back", &error)
    };
    let mut stream = state
        .objects
        .get(location)
        .await
        .map_err(failed)?
        .into_stream();
    let mut sha = Sha256::new();
    let mut crc =
        reel_s3::checksum::Checksummer::new(reel_s3::checksum::ChecksumAlgorithm::Crc64Nvme);
    let mut block: Vec<u8> = Vec::with_capacity(BLOCK);
    loop {
        let chunk = stream.next().await.transpose().map_err(failed)?;
        let done = chunk.is_none();
        if let Some(chunk) = chunk {
            block.extend_from_slice(&chunk);
        }
        if block.len() >= BLOCK || (done && !block.is_empty()) {
            let full = std::mem::take(&mut block);
            let mut hasher = std::mem::take(&mut sha);
            let mut crc_hasher = crc.clone();
            (sha, crc) = tokio::task::spawn_blocking(move || {
                hasher.update(&full);
                crc_hasher.update(&full);
                (hasher, crc_hasher)
            })
            .await
            .map_err(|error| ApiError::internal("hashing the upload", &error))?;
            block.reserve(BLOCK);
        }
        if done {
            let crc64nvme = crc
                .finish()
                .digest()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| ApiError::Internal("a CRC64NVME is 8 bytes".to_string()))?;
            return Ok(ObjectDigests {
                sha256: hex::encode(sha.finalize()),
                crc64nvme,
            });
        }
    }
}

/// The embedded S3 endpoint as this request reached the server.
fn embedded_endpoint(headers: &HeaderMap) -> Result<url::Url, ApiError> {
    url::Url::parse(&format!("{}/s3", base_url(headers)))
        .map_err(|error| ApiError::internal("building the storage URL", &error))
}

pub(crate) async fn complete_upload(
    Authenticated(owner): Authenticated,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<CompleteBody>>,
) -> Result<Response, ApiError> {
    let body = body.map(|Json(body)| body).unwrap_or_default();
    let row = owned_upload(&state, &owner, &id).await?;
    Ok(Json(complete(&state, &headers, &row, body).await?).into_response())
}

/// Completes an open upload under its lock: `{"upload": …, "video": …}`.
pub(crate) async fn complete(
    state: &AppState,
    headers: &HeaderMap,
    row: &UploadRow,
    body: CompleteBody,
) -> Result<Value, ApiError> {
    let s3 = s3_state(state)?;
    check_open(row)?;
    let holder = format!("complete-{}", VideoId::new_random());
    if !state
        .store
        .lock_upload(&row.id, &holder, Duration::from_secs(300))
        .await?
    {
        return Err(ApiError::Locked(format!(
            "upload {} is being completed by another request; wait and ask GET /v1/uploads/{}",
            row.id, row.id
        )));
    }
    let result = complete_locked(state, s3, headers, row, body).await;
    let _ = state.store.unlock_upload(&row.id, &holder).await;
    result
}

/// The `(part, etag)` pairs of a sized upload: every part of its layout,
/// each of its expected size.
fn sized_pairs(
    row: &UploadRow,
    stored: &[reel_s3::StoredPart],
) -> Result<Vec<(u32, String)>, ApiError> {
    let n_parts = part_count(row);
    let mut pairs = Vec::with_capacity(stored.len());
    let mut missing = Vec::new();
    for part_number in 1..=u32::try_from(n_parts).unwrap_or(u32::MAX) {
        match stored.iter().find(|part| part.part_number == part_number) {
            Some(part) if part.size == expected_part_size(row, part_number) => {
                pairs.push((part_number, part.etag.clone()))
            }
            Some(part) => {
                return Err(ApiError::Conflict(format!(
                    "part {part_number} has {} bytes, expected {}; upload it again",
                    part.size,
                    expected_part_size(row, part_number)
                )))
            }
            None => missing.push(part_number),
        }
    }
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(20).map(u32::to_string).collect();
        return Err(ApiError::Conflict(format!(
            "{} of {n_parts} parts are not in storage yet (parts {}{}); upload them, then complete",
            missing.len(),
            shown.join(", "),
            if missing.len() > 20 { ", …" } else { "" }
        )));
    }
    Ok(pairs)
}

/// The `(part, etag)` pairs and total size of an upload opened without a
/// size: the parts the client lists, which storage must hold.
fn listed_pairs(
    body: &CompleteBody,
    stored: &[reel_s3::StoredPart],
) -> Result<(Vec<(u32, String)>, u64), ApiError> {
    if body.parts.is_empty() {
        return Err(ApiError::BadRequest(
            "list the parts to complete with: {\"parts\": [{\"part_number\": 1, \"etag\": \"…\"}, …]}".to_string(),
        ));
    }
    let mut pairs = Vec::with_capacity(body.parts.len());
    let mut size: u64 = 0;
    for part in &body.parts {
        let held = stored
            .iter()
            .find(|held| held.part_number == part.part_number)
            .ok_or_else(|| {
                ApiError::Conflict(format!(
                    "part {} is not in storage; upload it, then complete",
                    part.part_number
                ))
            })?;
        size += held.size;
        pairs.push((part.part_number, held.etag.clone()));
    }
    if size == 0 {
        return Err(ApiError::BadRequest("the parts hold no bytes".to_string()));
    }
    Ok((pairs, size))
}

async fn complete_locked(
    state: &AppState,
    s3: &reel_s3::MultipartStore,
    headers: &HeaderMap,
    row: &UploadRow,
    body: CompleteBody,
) -> Result<Value, ApiError> {
    let target = target(row)?;
    let stored = s3
        .stored_parts(&target.key, &target.s3_upload_id)
        .await
        .map_err(s3_error)?;
    let (pairs, size) = match row.length {
        Some(length) => (sized_pairs(row, &stored)?, length),
        None => listed_pairs(&body, &stored)?,
    };
    if row.length.is_none() {
        // Uploads opened without a size meet their limits here.
        let refused = match check_size(state, size) {
            Err(error) => Some(error),
            Ok(()) => state
                .store
                .quota_excess(&row.owner, state.quota_per_key, size)
                .await?
                .map(ApiError::TooLarge),
        };
        if let Some(error) = refused {
            let _ = s3.cancel_upload(&target.key, &target.s3_upload_id).await;
            state
                .store
                .abort_upload(&row.id, "over the size limit or quota")
                .await?;
            return Err(error);
        }
    }
    for part in &body.parts {
        let stored_etag = pairs
            .iter()
            .find(|(number, _)| *number == part.part_number)
            .map(|(_, etag)| etag.as_str());
        if let (Some(claimed), Some(stored_etag)) = (&part.etag, stored_etag) {
            if claimed.trim_matches('"') != stored_etag {
                return Err(ApiError::Conflict(format!(
                    "part {} in storage has ETag {stored_etag}, not {claimed}; upload it again",
                    part.part_number
                )));
            }
        }
    }
    // Each part's CRC as the client computed it from the buffer it sent,
    // against the one the endpoint computed as the part landed.
    for part in &body.parts {
        let Some(claimed) = &part.crc64nvme else {
            continue;
        };
        let claimed = parse_crc64nvme(claimed, &format!("part {}'s crc64nvme", part.part_number))?;
        let stored_crc = stored
            .iter()
            .find(|held| held.part_number == part.part_number)
            .and_then(|held| held.crc64nvme);
        if let Some(stored_crc) = stored_crc {
            if stored_crc != claimed {
                return Err(ApiError::Conflict(format!(
                    "part {} in storage has CRC64NVME {}, not the {} computed from the file; upload part {} again",
                    part.part_number,
                    crc64nvme_text(stored_crc),
                    crc64nvme_text(claimed),
                    part.part_number
                )));
            }
        }
    }
    let declared_crc64nvme = body
        .crc64nvme
        .as_deref()
        .map(|text| parse_crc64nvme(text, "crc64nvme"))
        .transpose()?;
    let declared = row
        .declared_sha256
        .clone()
        .or_else(|| body.sha256.map(|text| text.to_ascii_lowercase()));
    if let Some(declared) = &declared {
        if !valid_sha256(declared) {
            return Err(ApiError::BadRequest(
                "sha256 must be 64 hex digits".to_string(),
            ));
        }
    }
    // The embedded endpoint checks the full-object CRC64NVME, combined from
    // the part CRCs, before it assembles anything: a mismatch leaves the
    // upload open and its parts stored. Its SHA-256 (when asked for) was
    // computed while the parts landed or were joined.
    let finished = s3
        .finish_upload(
            &target.key,
            &target.s3_upload_id,
            &pairs,
            declared_crc64nvme,
        )
        .await
        .map_err(|error| match error.code {
            "BadDigest" => {
                ApiError::Unprocessable(format!("{}; the upload is still open", error.message))
            }
            _ => s3_error(error),
        })?;
    let location = ObjectPath::from(target.key.as_str());
    // A real store's object is read back to check it; the embedded
    // endpoint computed what it was asked for on the way.
    let wants_sha256 = declared.is_some() || whole_checksum(row) == reel_s3::WholeChecksum::Sha256;
    let (sha256, crc64nvme) = match (finished.sha256, finished.crc64nvme) {
        (Some(sha256), crc64nvme) => (sha256, crc64nvme),
        (None, Some(crc64nvme)) if !wants_sha256 => (String::new(), Some(crc64nvme)),
        (None, _) => {
            let digests = read_object_digests(state, &location).await?;
            (digests.sha256, Some(digests.crc64nvme))
        }
    };
    if let (Some(declared), Some(actual)) = (declared_crc64nvme, crc64nvme) {
        if declared != actual {
            let _ = state.objects.delete(&location).await;
            state
                .store
                .abort_upload(
                    &row.id,
                    "the stored file's CRC64NVME differs from the declared one",
                )
                .await?;
            return Err(ApiError::Unprocessable(format!(
                "the stored file has CRC64NVME {}, not the declared {}; nothing was kept: upload the file again",
                crc64nvme_text(actual),
                crc64nvme_text(declared)
            )));
        }
    }
    if let Some(declared) = declared {
        if declared != sha256 {
            let _ = state.objects.delete(&location).await;
            state
                .store
                .abort_upload(
                    &row.id,
                    "the assembled file's SHA-256 differs from the declared one",
                )
                .await?;
            return Err(ApiError::Unprocessable(format!(
                "the assembled file has SHA-256 {sha256}, not the declared {declared}; nothing was kept: upload the file again"
            )));
        }
    }
    let parts: Vec<UploadPart> = stored
        .iter()
        .map(|part| UploadPart {
            number: part.part_number,
            size: part.size,
            sha256: part.etag.clone(),
        })
        .collect();
    if row.length.is_none() {
        state.store.set_upload_length(&row.id, size).await?;
    }
    state.store.record_upload_parts(&row.id, 0, &parts).await?;
    state
        .store
        .begin_upload_completion(&row.id, target.video_id)
        .await?;
    let stored_object = reel_pipeline::jobs::StoredObject {
        key: target.key.clone(),
        size,
        sha256,
    };
    let title = if row.filename.is_empty() {
        "Untitled".to_string()
    } else {
        row.filename.clone()
    };
    let video = NewVideo {
        id: target.video_id,
        title,
        source_key: target.key.clone(),
        source_size: size,
        source_sha256: stored_object.sha256.clone(),
        owner: Some(row.owner.clone()),
        visibility: reel_model::Visibility::Public,
    };
    reel_model::create_video(
        &state.store,
        &video,
        video_job(target.video_id, &stored_object),
    )
    .await?;
    state.store.complete_upload(&row.id).await?;
    let video_row = state
        .store
        .video(target.video_id)
        .await?
        .ok_or_else(|| ApiError::Internal("the video vanished after creation".to_string()))?;
    let video = video_view(state, headers, video_row).await?;
    let upload_row = state
        .store
        .upload(&row.id)
        .await?
        .unwrap_or_else(|| row.clone());
    Ok(json!({
        "upload": upload_view(state, headers, &upload_row).await?,
        "video": video,
        "checksums": {
            "crc64nvme": crc64nvme.map(crc64nvme_text),
            "sha256": (!stored_object.sha256.is_empty()).then_some(&stored_object.sha256),
        },
    }))
}

pub(crate) async fn delete_upload(
    Authenticated(owner): Authenticated,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = owned_upload(&state, &owner, &id).await?;
    cancel(&state, &row).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Aborts an unfinished upload and removes its parts from storage.
pub(crate) async fn cancel(state: &AppState, row: &UploadRow) -> Result<(), ApiError> {
    let s3 = s3_state(state)?;
    if row.status == UploadStatus::Complete {
        return Err(ApiError::Conflict(format!(
            "upload {} is complete; delete its video instead",
            row.id
        )));
    }
    let target = target(row)?;
    match s3.cancel_upload(&target.key, &target.s3_upload_id).await {
        Ok(()) => {}
        Err(error) if error.status == 404 => {}
        Err(error) => return Err(s3_error(error)),
    }
    state
        .store
        .abort_upload(&row.id, "cancelled by the client")
        .await?;
    Ok(())
}

/// Aborts expired multipart uploads and removes their parts from storage.
pub async fn reap_expired_multipart(
    store: &reel_jobs::store::JobStore,
    s3: &reel_s3::MultipartStore,
) -> Result<usize, ApiError> {
    let mut reaped = 0;
    for row in store.expired_uploads(Timestamp::now(), 500).await? {
        if row.protocol != UploadProtocol::Multipart {
            continue;
        }
        if let Ok(target) = target(&row) {
            match s3.cancel_upload(&target.key, &target.s3_upload_id).await {
                Ok(()) => {}
                Err(error) if error.status == 404 => {}
                Err(error) => return Err(s3_error(error)),
            }
        }
        if store.abort_upload(&row.id, "expired").await? {
            reaped += 1;
        }
    }
    Ok(reaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_keep_uploads_under_ten_thousand_parts() {
        assert_eq!(part_size_for(1), MIN_PART_SIZE);
        assert_eq!(part_size_for(2 << 30), MIN_PART_SIZE);
        let huge: u64 = 200 << 30;
        let size = part_size_for(huge);
        assert!(huge.div_ceil(size) <= MAX_PARTS);
        assert_eq!(size % (1 << 20), 0);
    }
}
