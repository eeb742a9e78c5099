//! `POST /v1/videos/{id}/downloads` `{"renditions": ["h264-720p"]}` (owner or
//! admin, a ready video): a `download` job that remuxes each rendition and
//! the default audio into a progressive MP4 at
//! `/v/{id}/download/{rendition}.mp4` (no re-encode), served with the
//! video's own access rules, Range and `Content-Disposition: attachment`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::access::owned_video;
use crate::captions::ready_presentation;
use crate::videos::parse_video_id;
use crate::{ApiError, AppState, Signed};

#[derive(Deserialize, Default)]
pub(crate) struct DownloadRequest {
    /// Rendition ids; none: every rendition.
    #[serde(default)]
    renditions: Vec<String>,
}

pub(crate) async fn create_downloads(
    Signed(caller): Signed,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<DownloadRequest>>,
) -> Result<Response, ApiError> {
    let video_id = parse_video_id(&id)?;
    let row = owned_video(&state, video_id, &caller).await?;
    let presentation = ready_presentation(&state, video_id, row.job_id).await?;
    let request = body.map(|Json(request)| request).unwrap_or_default();
    let available: Vec<String> = presentation.video.iter().map(|r| r.id.clone()).collect();
    let renditions = if request.renditions.is_empty() {
        available.clone()
    } else {
        request.renditions
    };
    if let Some(unknown) = renditions.iter().find(|id| !available.contains(id)) {
        return Err(ApiError::BadRequest(format!(
            "video {video_id} has no rendition {unknown:?}; it has {}",
            available.join(", ")
        )));
    }
    if renditions.is_empty() {
        return Err(ApiError::Conflict(format!(
            "video {video_id} has no video rendition to download"
        )));
    }
    let job_id = state
        .store
        .create_job(reel_pipeline::video::download_job(video_id, &renditions))
        .await?;
    let base = crate::videos::base_url(&headers);
    let downloads: Vec<_> = renditions
        .iter()
        .map(|rendition| {
            json!({
                "rendition": rendition,
                "url": format!("{base}/v/{video_id}/download/{rendition}.mp4"),
            })
        })
        .collect();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job_id": job_id, "downloads": downloads})),
    )
        .into_response())
}
