//! `/v1/companion/s3/multipart…`: the routes and payloads of Uppy
//! Companion's S3 multipart API, so that `@uppy/aws-s3` uploads to reel as
//! it is, with `endpoint: "<server>/v1/companion"` and the API key in its
//! `headers` option.
//!
//! | Uppy call | route | answer |
//! |---|---|---|
//! | createMultipartUpload | `POST s3/multipart` `{filename, type, metadata}` | `{uploadId, key}` |
//! | signPart | `GET s3/multipart/{uploadId}/{partNumber}?key=` | `{url, method, expires}` |
//! | listParts | `GET s3/multipart/{uploadId}?key=` | `[{PartNumber, Size, ETag}]` |
//! | completeMultipartUpload | `POST s3/multipart/{uploadId}/complete?key=` `{parts}` | `{location, video}` |
//! | abortMultipartUpload | `DELETE s3/multipart/{uploadId}?key=` | `{}` |
//!
//! `uploadId` is reel's upload id and `key` the object key of the video's
//! source; each call checks that the two belong together. Uppy's create call
//! carries no size, so these uploads take any S3 part sizes and meet the
//! size limit and quota as parts are signed and at completion.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use reel_model::uploads::UploadRow;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::uploads::{self, CompleteBody, CompletePart};
use crate::{ApiError, AppState, Authenticated};

#[derive(Deserialize)]
pub(crate) struct CreateBody {
    filename: Option<String>,
    #[serde(default)]
    metadata: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
pub(crate) struct KeyQuery {
    key: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UppyPart {
    part_number: u32,
    #[serde(rename = "ETag")]
    etag: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct CompleteRequest {
    #[serde(default)]
    parts: Vec<UppyPart>,
}

/// The caller's upload named by `uploadId`, which must hold `key`.
async fn keyed_upload(
    state: &AppState,
    owner: &str,
    upload_id: &str,
    query: &KeyQuery,
) -> Result<(UploadRow, uploads::Target), ApiError> {
    let row = uploads::owned_upload(state, owner, upload_id).await?;
    let target = uploads::target(&row)?;
    match &query.key {
        Some(key) if *key == target.key => Ok((row, target)),
        Some(_) => Err(ApiError::NotFound(format!(
            "upload {upload_id} does not write that key; use the key its create call returned"
        ))),
        None => Err(ApiError::BadRequest(
            "the key query parameter is missing; pass the key the create call returned".to_string(),
        )),
    }
}

pub(crate) async fn create(
    Authenticated(owner): Authenticated,
    State(state): State<AppState>,
    Json(body): Json<CreateBody>,
) -> Result<Response, ApiError> {
    let filename = body
        .filename
        .or_else(|| {
            body.metadata
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    let row = uploads::open_upload(
        &state,
        uploads::OpenUpload {
            owner,
            filename,
            size: None,
            sha256: None,
            whole: reel_s3::WholeChecksum::Crc64Nvme,
        },
    )
    .await?;
    let target = uploads::target(&row)?;
    Ok(Json(json!({"uploadId": row.id.to_string(), "key": target.key})).into_response())
}

pub(crate) async fn sign_part(
    Authenticated(owner): Authenticated,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((upload_id, part_number)): Path<(String, String)>,
    Query(query): Query<KeyQuery>,
) -> Result<Response, ApiError> {
    let (row, target) = keyed_upload(&state, &owner, &upload_id, &query).await?;
    uploads::check_open(&row)?;
    let s3 = uploads::s3_state(&state)?;
    let n_parts = uploads::signable_parts(&state, s3, &row).await?;
    let part_number: u32 = part_number
        .parse()
        .ok()
        .filter(|number| *number >= 1 && u64::from(*number) <= n_parts)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "part number {part_number:?} is invalid: use 1 to {n_parts}"
            ))
        })?;
    let url = uploads::presign_part(s3, &headers, &target, part_number)?;
    Ok(Json(json!({
        "url": url,
        "method": "PUT",
        "expires": uploads::PART_URL_LIFETIME.as_secs(),
    }))
    .into_response())
}

pub(crate) async fn list_parts(
    Authenticated(owner): Authenticated,
    State(state): State<AppState>,
    Path(upload_id): Path<String>,
    Query(query): Query<KeyQuery>,
) -> Result<Response, ApiError> {
    let (row, target) = keyed_upload(&state, &owner, &upload_id, &query).await?;
    uploads::check_open(&row)?;
    let s3 = uploads::s3_state(&state)?;
    let parts: Vec<Value> = s3.stored_parts(&target.key, &target.s3_upload_id)
        .await
        .map_err(uploads::s3_error)?
        .into_iter()
        .map(|part| {
            json!({"PartNumber": part.part_number, "Size": part.size, "ETag": format!("\"{}\"", part.etag)})
        })
        .collect();
    Ok(Json(parts).into_response())
}

pub(crate) async fn complete(
    Authenticated(owner): Authenticated,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(upload_id): Path<String>,
    Query(query): Query<KeyQuery>,
    Json(body): Json<CompleteRequest>,
) -> Result<Response, ApiError> {
    let (row, _) = keyed_upload(&state, &owner, &upload_id, &query).await?;
    let mut parts: Vec<CompletePart> = body
        .parts
        .into_iter()
        .map(|part| CompletePart {
            part_number: part.part_number,
            etag: part.etag,
            crc64nvme: None,
        })
        .collect();
    parts.sort_by_key(|part| part.part_number);
    let completed = uploads::complete(
        &state,
        &headers,
        &row,
        CompleteBody {
            parts,
            sha256: None,
            crc64nvme: None,
        },
    )
    .await?;
    // The video's API resource; its HLS and DASH URLs appear there once the
    // first rendition is published.
    let location = format!(
        "{}/v1/videos/{}",
        crate::videos::base_url(&headers),
        completed["video"]["id"].as_str().unwrap_or_default()
    );
    Ok(Json(json!({
        "location": location,
        "video": completed["video"],
        "upload": completed["upload"],
    }))
    .into_response())
}

pub(crate) async fn abort(
    Authenticated(owner): Authenticated,
    State(state): State<AppState>,
    Path(upload_id): Path<String>,
    Query(query): Query<KeyQuery>,
) -> Result<Response, ApiError> {
    let (row, _) = keyed_upload(&state, &owner, &upload_id, &query).await?;
    uploads::cancel(&state, &row).await?;
    Ok((StatusCode::OK, Json(json!({}))).into_response())
}
