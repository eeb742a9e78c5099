//! The tus 1.0 server: core protocol plus the creation,
//! creation-with-upload, creation-defer-length, expiration, checksum,
//! termination and concatenation extensions.
//!
//! Handlers parse headers into validated values first, so that a malformed
//! request is refused before anything is locked or written. Every request
//! that writes (PATCH, DELETE, POST with a body, POST of a final
//! concatenation) takes the upload's lease in the database and runs in its
//! own task, so a client that disconnects cannot cancel it half-way: the
//! task stores what it received, records it and releases the lease.

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{FromRequestParts, OriginalUri, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::{Json, Router};
use base64::Engine;
use futures::TryStreamExt;
use reel_core::{Timestamp, VideoId};
use reel_jobs::store::StoreError;
use reel_model::uploads::{
    NewUpload, UploadConcat, UploadId, UploadProtocol, UploadRow, UploadStatus,
};
use reel_model::Uploads as _;
use serde_json::json;

use crate::complete::complete_upload;
use crate::parts::{delete_upload_objects, write_body, BodyChecksum, BodyTarget, UploadLock};
use crate::UploadState;

mod checks;
mod headers;

use checks::*;
use headers::*;

/// The protocol version this server speaks.
const TUS_VERSION: &str = "1.0.0";
/// The extensions this server implements (`Tus-Extension`).
const TUS_EXTENSIONS: &str = "creation,creation-with-upload,creation-defer-length,expiration,checksum,termination,concatenation";
/// The checksum algorithms this server verifies (`Tus-Checksum-Algorithm`).
const TUS_CHECKSUM_ALGORITHMS: &str = "sha1,sha256";
/// The media type of PATCH bodies.
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
/// The response header naming the video a completed upload became.
const VIDEO_ID_HEADER: &str = "reel-video-id";
/// How to get an API key, for 401 answers.
const KEY_HINT: &str = "create a key with `reel keys create --name NAME` and send it as `Authorization: Bearer KEY` (tus-js-client: the `headers` option; tuspy: `TusClient(url, headers=...)`)";

/// Everything a tus request can fail with.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TusError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    UnsupportedVersion(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Locked(String),
    #[error("{0}")]
    ChecksumMismatch(String),
    #[error("{0}")]
    Internal(String),
    #[error("upload store: {0}")]
    Store(#[from] StoreError),
    #[error("object store: {0}")]
    Objects(#[from] object_store::Error),
}

impl TusError {
    /// The single mapping from error to HTTP status and stable code.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "offset_mismatch"),
            Self::Gone(_) => (StatusCode::GONE, "gone"),
            Self::UnsupportedVersion(_) => (StatusCode::PRECONDITION_FAILED, "unsupported_version"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::Locked(_) => (StatusCode::LOCKED, "locked"),
            Self::ChecksumMismatch(_) => (
                StatusCode::from_u16(460).expect("460 is within the valid status range"),
                "checksum_mismatch",
            ),
            Self::Internal(_) | Self::Store(_) | Self::Objects(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

impl IntoResponse for TusError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = self.to_string();
        if status.is_server_error() {
            tracing::error!(code, message, "tus request failed");
        } else {
            tracing::debug!(code, message, "tus request refused");
        }
        let mut response = (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response();
        if matches!(self, Self::UnsupportedVersion(_)) {
            response
                .headers_mut()
                .insert("tus-version", HeaderValue::from_static(TUS_VERSION));
        }
        response
    }
}

pub(crate) fn router(state: UploadState) -> Router {
    let upload_routes: MethodRouter<UploadState> = axum::routing::head(head_upload)
        .patch(patch_upload)
        .delete(terminate_upload)
        .options(options);
    Router::new()
        .route("/", post(create_upload).options(options))
        .route("/{id}", upload_routes)
        .layer(middleware::from_fn(tus_protocol))
        .with_state(state)
}

/// tus core: every request but OPTIONS names the protocol version, and
/// every response but OPTIONS's carries it.
async fn tus_protocol(request: Request, next: Next) -> Response {
    if request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    let mut response = match request.headers().get("tus-resumable") {
        Some(version) if version == TUS_VERSION => next.run(request).await,
        Some(version) => TusError::UnsupportedVersion(format!(
            "Tus-Resumable {:?} is not supported; this server speaks tus {TUS_VERSION}",
            String::from_utf8_lossy(version.as_bytes())
        ))
        .into_response(),
        None => TusError::UnsupportedVersion(format!(
            "the Tus-Resumable header is missing; send `Tus-Resumable: {TUS_VERSION}`"
        ))
        .into_response(),
    };
    response
        .headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    response
}

/// The name of the API key that sent the request, from the [`reel_model::Caller`]
/// that the mounting router's authentication put in the request.
struct Caller(String);

impl FromRequestParts<UploadState> for Caller {
    type Rejection = TusError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &UploadState,
    ) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<reel_model::Caller>() {
            Some(reel_model::Caller::Key(principal)) => Ok(Caller(principal.key_id.clone())),
            None | Some(reel_model::Caller::Anonymous) => Err(TusError::Unauthorized(format!(
                "uploads need an API key: {KEY_HINT}"
            ))),
            Some(reel_model::Caller::Refused(reason)) => {
                Err(TusError::Unauthorized(format!("{reason}: {KEY_HINT}")))
            }
        }
    }
}

async fn options(State(state): State<UploadState>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    headers.insert("tus-extension", HeaderValue::from_static(TUS_EXTENSIONS));
    headers.insert(
        "tus-max-size",
        number_header(state.settings.max_upload_bytes),
    );
    headers.insert(
        "tus-checksum-algorithm",
        HeaderValue::from_static(TUS_CHECKSUM_ALGORITHMS),
    );
    (StatusCode::NO_CONTENT, headers).into_response()
}

// ---------------------------------------------------------------------------
// Creation
// ---------------------------------------------------------------------------

/// What `Upload-Concat` asked for.
enum ConcatRequest {
    Partial,
    Final(Vec<UploadId>),
}

async fn create_upload(
    Caller(owner): Caller,
    State(state): State<UploadState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, TusError> {
    let base_path = uri.path().trim_end_matches('/').to_string();
    let base_url = format!("{}{base_path}", origin(&headers));
    let concat = match header_text(&headers, "upload-concat")? {
        Some(text) => Some(parse_concat(text, &base_path)?),
        None => None,
    };
    let metadata = match header_text(&headers, "upload-metadata")? {
        Some(text) => parse_metadata(text)?,
        None => serde_json::Map::new(),
    };
    let declared_sha256 = match metadata.get("sha256").and_then(|value| value.as_str()) {
        Some(text) if is_sha256_hex(text) => Some(text.to_ascii_lowercase()),
        Some(text) => {
            return Err(TusError::BadRequest(format!(
                "metadata sha256 {:?} is not a SHA-256 in hex (64 hex digits)",
                text.chars().take(80).collect::<String>()
            )))
        }
        None => None,
    };
    // Checked here so that a video cannot end up public because a value
    // was misspelt; completion reads it back (`complete::visibility_of`).
    if let Some(visibility) = metadata.get("visibility") {
        let text = visibility.as_str().unwrap_or_default();
        text.parse::<reel_model::Visibility>()
            .map_err(|error| TusError::BadRequest(format!("metadata visibility: {error}")))?;
    }
    let filename = ["filename", "name"]
        .iter()
        .find_map(|key| metadata.get(*key).and_then(|value| value.as_str()))
        .unwrap_or("")
        .chars()
        .filter(|character| !character.is_control())
        .take(255)
        .collect::<String>();
    let body_length = header_number(&headers, header::CONTENT_LENGTH.as_str())?;
    let has_body = body_length != Some(0) && content_type_is_offset_stream(&headers);
    if !has_body && body_length.unwrap_or(0) > 0 {
        return Err(TusError::UnsupportedMediaType(format!(
            "a creation request with data needs `Content-Type: {OFFSET_OCTET_STREAM}`"
        )));
    }
    let accepted = AcceptedCreation {
        owner,
        metadata: serde_json::Value::Object(metadata),
        declared_sha256,
        filename,
    };
    if let Some(ConcatRequest::Final(partials)) = concat {
        if headers.contains_key("upload-length") || headers.contains_key("upload-defer-length") {
            return Err(TusError::BadRequest(
                "a final concatenation takes its length from its partial uploads; drop Upload-Length".to_string(),
            ));
        }
        if has_body {
            return Err(TusError::Forbidden(
                "a final concatenation takes no data of its own".to_string(),
            ));
        }
        let task_state = state.clone();
        let outcome =
            tokio::spawn(async move { create_final(&task_state, accepted, partials).await })
                .await
                .map_err(|error| {
                    TusError::Internal(format!("the concatenation task failed: {error}"))
                })??;
        let mut response_headers = HeaderMap::new();
        response_headers.insert(
            header::LOCATION,
            text_header(&format!("{base_url}/{}", outcome.id))?,
        );
        response_headers.insert(VIDEO_ID_HEADER, text_header(&outcome.video_id.to_string())?);
        return Ok((StatusCode::CREATED, response_headers).into_response());
    }

    let length = match (
        header_number(&headers, "upload-length")?,
        header_text(&headers, "upload-defer-length")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(TusError::BadRequest(
                "send either Upload-Length or Upload-Defer-Length, not both".to_string(),
            ))
        }
        (Some(length), None) => Some(length),
        (None, Some("1")) => None,
        (None, Some(other)) => {
            return Err(TusError::BadRequest(format!(
                "Upload-Defer-Length must be 1, not {other:?}"
            )))
        }
        (None, None) => {
            return Err(TusError::BadRequest(
                "send Upload-Length (the upload's size in bytes) or Upload-Defer-Length: 1"
                    .to_string(),
            ))
        }
    };
    check_size(&state, length.unwrap_or(0))?;
    check_quota(&state, &accepted.owner, length.unwrap_or(0)).await?;
    let is_partial = matches!(concat, Some(ConcatRequest::Partial));
    if length == Some(0) && !is_partial {
        return Err(TusError::BadRequest(
            "Upload-Length is 0: an empty file cannot become a video".to_string(),
        ));
    }
    let id = UploadId::new_random();
    let new_upload = NewUpload {
        id: id.clone(),
        owner: accepted.owner.clone(),
        protocol: UploadProtocol::Tus,
        length,
        offset: 0,
        part_size: state.settings.part_size.max(1),
        declared_sha256: accepted.declared_sha256,
        filename: accepted.filename,
        metadata: accepted.metadata,
        concat: is_partial.then_some(UploadConcat::Partial),
        expires_at: Timestamp::now().plus(state.settings.expiry),
    };
    state.store.create_upload(&new_upload).await?;
    tracing::debug!(upload_id = %id, ?length, "tus upload created");
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::LOCATION, text_header(&format!("{base_url}/{id}"))?);
    response_headers.insert("upload-expires", expires_header(new_upload.expires_at));
    if has_body {
        // creation-with-upload: the body is the first PATCH, at offset 0.
        let request = PatchRequest {
            owner: accepted.owner,
            id: id.clone(),
            client_offset: 0,
            new_length: None,
            content_length: body_length,
            checksum: parse_checksum_header(&headers)?,
        };
        let outcome = match run_patch(&state, request, body).await {
            Ok(outcome) => outcome,
            Err(error) => {
                // The upload exists: say where, so the client can resume it.
                let mut response = error.into_response();
                response.headers_mut().extend(
                    response_headers
                        .into_iter()
                        .filter_map(|(name, value)| Some((name?, value))),
                );
                return Ok(response);
            }
        };
        response_headers.insert("upload-offset", number_header(outcome.offset));
        if let Some(video_id) = outcome.video_id {
            response_headers.insert(VIDEO_ID_HEADER, text_header(&video_id.to_string())?);
        }
    }
    Ok((StatusCode::CREATED, response_headers).into_response())
}

/// A creation request's validated, protocol-independent fields.
struct AcceptedCreation {
    owner: String,
    metadata: serde_json::Value,
    declared_sha256: Option<String>,
    filename: String,
}

struct FinalOutcome {
    id: UploadId,
    video_id: VideoId,
}

/// tus concatenation: records the final upload of `partials` (all finished
/// and owned by the caller) and completes it.
async fn create_final(
    state: &UploadState,
    accepted: AcceptedCreation,
    partials: Vec<UploadId>,
) -> Result<FinalOutcome, TusError> {
    let Some(mut lock) = UploadLock::acquire(state, &partials).await? else {
        return Err(TusError::Locked(
            "a partial upload of this concatenation is being written by another request; retry shortly".to_string(),
        ));
    };
    let result = create_final_locked(state, &mut lock, accepted, &partials).await;
    lock.release(state).await?;
    result
}

async fn create_final_locked(
    state: &UploadState,
    lock: &mut UploadLock,
    accepted: AcceptedCreation,
    partials: &[UploadId],
) -> Result<FinalOutcome, TusError> {
    let mut total: u64 = 0;
    for partial_id in partials {
        let partial = owned_upload(state, &accepted.owner, partial_id).await?;
        check_live(&partial)?;
        if partial.concat != Some(UploadConcat::Partial) {
            return Err(TusError::BadRequest(format!(
                "upload {partial_id} is not a partial upload (create it with `Upload-Concat: partial`)"
            )));
        }
        if partial.status != UploadStatus::Open || partial.length != Some(partial.offset) {
            return Err(TusError::BadRequest(format!(
                "partial upload {partial_id} is not finished ({} of {} bytes); finish it before concatenating",
                partial.offset,
                partial.length.map_or_else(|| "unknown".to_string(), |length| length.to_string())
            )));
        }
        total = total.saturating_add(partial.offset);
    }
    check_size(state, total)?;
    if total == 0 {
        return Err(TusError::BadRequest(
            "the partial uploads are empty: an empty file cannot become a video".to_string(),
        ));
    }
    let id = UploadId::new_random();
    let final_upload = NewUpload {
        id: id.clone(),
        owner: accepted.owner,
        protocol: UploadProtocol::Tus,
        length: Some(total),
        offset: total,
        part_size: state.settings.part_size.max(1),
        declared_sha256: accepted.declared_sha256,
        filename: accepted.filename,
        metadata: accepted.metadata,
        concat: Some(UploadConcat::Final(partials.to_vec())),
        expires_at: Timestamp::now().plus(state.settings.expiry),
    };
    state.store.create_upload(&final_upload).await?;
    lock.extend_to(state, &id).await?;
    let row =
        state.store.upload(&id).await?.ok_or_else(|| {
            TusError::Internal(format!("upload {id} vanished after its creation"))
        })?;
    let video_id = complete_upload(state, lock, &row).await?;
    Ok(FinalOutcome { id, video_id })
}

// ---------------------------------------------------------------------------
// HEAD, PATCH, DELETE
// ---------------------------------------------------------------------------

async fn head_upload(
    Caller(owner): Caller,
    State(state): State<UploadState>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
) -> Result<Response, TusError> {
    let id = parse_upload_id(&id)?;
    let row = owned_upload(&state, &owner, &id).await?;
    check_live(&row)?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("upload-offset", number_header(row.offset));
    match row.length {
        Some(length) => headers.insert("upload-length", number_header(length)),
        None => headers.insert("upload-defer-length", HeaderValue::from_static("1")),
    };
    if row.status == UploadStatus::Open {
        headers.insert("upload-expires", expires_header(row.expires_at));
    }
    if let Some(metadata) = metadata_header(&row.metadata) {
        headers.insert("upload-metadata", text_header(&metadata)?);
    }
    match &row.concat {
        Some(UploadConcat::Partial) => {
            headers.insert("upload-concat", HeaderValue::from_static("partial"));
        }
        Some(UploadConcat::Final(partials)) => {
            // This route is `{base}/{id}`: the partials live beside it.
            let base_path = uri.path().rsplit_once('/').map_or("", |(base, _)| base);
            let urls: Vec<String> = partials
                .iter()
                .map(|partial| format!("{base_path}/{partial}"))
                .collect();
            headers.insert(
                "upload-concat",
                text_header(&format!("final;{}", urls.join(" ")))?,
            );
        }
        None => {}
    }
    if row.status == UploadStatus::Complete {
        if let Some(video_id) = row.video_id {
            headers.insert(VIDEO_ID_HEADER, text_header(&video_id.to_string())?);
        }
    }
    Ok((StatusCode::OK, headers).into_response())
}

async fn patch_upload(
    Caller(owner): Caller,
    State(state): State<UploadState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, TusError> {
    if !content_type_is_offset_stream(&headers) {
        return Err(TusError::UnsupportedMediaType(format!(
            "PATCH bodies must be sent as `Content-Type: {OFFSET_OCTET_STREAM}`"
        )));
    }
    let id = parse_upload_id(&id)?;
    let client_offset = header_number(&headers, "upload-offset")?.ok_or_else(|| {
        TusError::BadRequest("PATCH needs Upload-Offset: the offset HEAD reports".to_string())
    })?;
    let request = PatchRequest {
        owner,
        id,
        client_offset,
        new_length: header_number(&headers, "upload-length")?,
        content_length: header_number(&headers, header::CONTENT_LENGTH.as_str())?,
        checksum: parse_checksum_header(&headers)?,
    };
    let outcome = run_patch(&state, request, body).await?;
    let mut response_headers = HeaderMap::new();
    response_headers.insert("upload-offset", number_header(outcome.offset));
    match outcome.video_id {
        Some(video_id) => {
            response_headers.insert(VIDEO_ID_HEADER, text_header(&video_id.to_string())?);
        }
        None => {
            response_headers.insert("upload-expires", expires_header(outcome.expires_at));
        }
    }
    Ok((StatusCode::NO_CONTENT, response_headers).into_response())
}

/// A PATCH (or the data of a creation) with its headers validated.
struct PatchRequest {
    owner: String,
    id: UploadId,
    client_offset: u64,
    new_length: Option<u64>,
    content_length: Option<u64>,
    checksum: Option<BodyChecksum>,
}

struct PatchOutcome {
    offset: u64,
    expires_at: Timestamp,
    video_id: Option<VideoId>,
}

/// Checks, locks and writes one PATCH in its own task.
async fn run_patch(
    state: &UploadState,
    request: PatchRequest,
    body: Body,
) -> Result<PatchOutcome, TusError> {
    // Refuse what can be refused without the lease, so that a stale or
    // malformed request never makes a writer wait.
    let row = owned_upload(state, &request.owner, &request.id).await?;
    check_live(&row)?;
    check_writable(&row)?;
    let Some(lock) = UploadLock::acquire(state, std::slice::from_ref(&request.id)).await? else {
        return Err(TusError::Locked(format!(
            "upload {} is being written by another request; retry after it finishes (HEAD shows the offset)",
            request.id
        )));
    };
    let task_state = state.clone();
    tokio::spawn(async move {
        let mut lock = lock;
        let result = patch_locked(&task_state, &mut lock, request, body).await;
        if let Err(error) = lock.release(&task_state).await {
            tracing::warn!(%error, "releasing an upload lease failed; it expires on its own");
        }
        result
    })
    .await
    .map_err(|error| TusError::Internal(format!("the upload task failed: {error}")))?
}

async fn patch_locked(
    state: &UploadState,
    lock: &mut UploadLock,
    request: PatchRequest,
    body: Body,
) -> Result<PatchOutcome, TusError> {
    // Read again under the lease: the offset may have moved meanwhile.
    let mut row = owned_upload(state, &request.owner, &request.id).await?;
    check_live(&row)?;
    check_writable(&row)?;
    if request.client_offset != row.offset {
        return Err(TusError::Conflict(format!(
            "Upload-Offset {} does not match upload {}'s offset {}; resume from {}",
            request.client_offset, row.id, row.offset, row.offset
        )));
    }
    if row.status == UploadStatus::Complete {
        // A retried last PATCH whose answer was lost.
        return Ok(PatchOutcome {
            offset: row.offset,
            expires_at: row.expires_at,
            video_id: row.video_id,
        });
    }
    if let Some(new_length) = request.new_length {
        match row.length {
            Some(length) if length == new_length => {}
            Some(length) => {
                return Err(TusError::BadRequest(format!(
                    "upload {}'s length is already {length}; it cannot change to {new_length}",
                    row.id
                )))
            }
            None => {
                check_size(state, new_length)?;
                // The bytes already received count toward the quota (a
                // deferred upload counts its offset); the rest must fit.
                check_quota(state, &request.owner, new_length.saturating_sub(row.offset)).await?;
                if new_length == 0 && row.concat.is_none() {
                    return Err(TusError::BadRequest(
                        "Upload-Length is 0: an empty file cannot become a video".to_string(),
                    ));
                }
                if !state.store.set_upload_length(&row.id, new_length).await? {
                    return Err(TusError::BadRequest(format!(
                        "Upload-Length {new_length} is less than the {} bytes upload {} already has",
                        row.offset, row.id
                    )));
                }
                row.length = Some(new_length);
            }
        }
    }
    let room = match row.length {
        Some(length) => length.saturating_sub(row.offset),
        None => {
            // A deferred length: the size limit and what is left of the
            // quota bound what this PATCH may add.
            let room = state.settings.max_upload_bytes.saturating_sub(row.offset);
            match quota_left(state, &request.owner).await? {
                Some(left) if left < room => {
                    if request.content_length.is_some_and(|length| length > left) {
                        return Err(TusError::TooLarge(format!(
                            "key {:?} has {left} bytes left of its quota of {} bytes; this body has {}: delete videos or raise limits.quota_per_key",
                            request.owner,
                            state.settings.quota_per_key.unwrap_or(0),
                            request.content_length.unwrap_or(0),
                        )));
                    }
                    left
                }
                _ => room,
            }
        }
    };
    if let Some(content_length) = request.content_length {
        if content_length > room {
            return Err(TusError::TooLarge(format!(
                "the body is {content_length} bytes but upload {} has room for {room} (length {}, offset {}, limit {})",
                row.id,
                row.length.map_or_else(|| "deferred".to_string(), |length| length.to_string()),
                row.offset,
                state.settings.max_upload_bytes
            )));
        }
    }
    let mut offset = row.offset;
    if row.status == UploadStatus::Open {
        let parts = state.store.upload_parts(&row.id).await?;
        let first_part_number = parts.last().map_or(1, |part| part.number.saturating_add(1));
        let target = BodyTarget {
            id: &row.id,
            start_offset: row.offset,
            max_bytes: room,
            first_part_number,
            part_size: row.part_size,
            checksum: request.checksum,
        };
        let stream = body.into_data_stream().map_err(|error| error.to_string());
        let outcome = write_body(state, lock, target, stream).await?;
        if let Some(error) = outcome.error {
            return Err(error);
        }
        offset = outcome.offset;
    }
    let mut video_id = None;
    let is_partial = row.concat == Some(UploadConcat::Partial);
    if row.length == Some(offset) && !is_partial {
        row.offset = offset;
        video_id = Some(complete_upload(state, lock, &row).await?);
    }
    Ok(PatchOutcome {
        offset,
        expires_at: row.expires_at,
        video_id,
    })
}

async fn terminate_upload(
    Caller(owner): Caller,
    State(state): State<UploadState>,
    Path(id): Path<String>,
) -> Result<Response, TusError> {
    let id = parse_upload_id(&id)?;
    owned_upload(&state, &owner, &id).await?;
    let Some(lock) = UploadLock::acquire(&state, std::slice::from_ref(&id)).await? else {
        return Err(TusError::Locked(format!(
            "upload {id} is being written by another request; retry the DELETE after it finishes"
        )));
    };
    let task_state = state.clone();
    tokio::spawn(async move {
        let result = async {
            // Objects first: a row without objects is harmless, the reverse leaks.
            delete_upload_objects(task_state.objects.as_ref(), &id).await?;
            task_state.store.delete_upload(&id).await?;
            Ok::<(), TusError>(())
        }
        .await;
        lock.release(&task_state).await?;
        result
    })
    .await
    .map_err(|error| TusError::Internal(format!("the termination task failed: {error}")))??;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------
// Checks and header parsing
// ---------------------------------------------------------------------------
