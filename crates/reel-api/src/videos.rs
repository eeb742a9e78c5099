//! `/v1/videos`: create (a streamed body), list, show, delete.
//!
//! A video's state is derived from its job: `processing` until the first
//! publication, `playable` once its lowest rendition is published, `ready`
//! when the job succeeded, `failed` (with the failing step and why) or
//! `cancelled`.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use reel_core::VideoId;
use reel_jobs::store::TaskState;
use reel_model::videos::{NewVideo, VideoRow};
use reel_model::{Role, Videos as _};
use reel_pipeline::video::{video_job, video_progress, video_source_key, JobLayout, VideoLayout};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    check_declared_length, ingest_error, ApiError, AppState, Authenticated, ListQuery, Signed,
};

/// A video as the API shows it.
#[derive(Debug, Serialize)]
pub struct VideoView {
    id: VideoId,
    title: String,
    visibility: reel_model::Visibility,
    state: &'static str,
    /// 0 to 100.
    percent: f64,
    duration_seconds: Option<f64>,
    source_size: u64,
    created_at: reel_core::Timestamp,
    job_id: Option<reel_core::JobId>,
    renditions: Vec<reel_pipeline::video::RenditionSummary>,
    audio: bool,
    urls: serde_json::Value,
    /// The pipeline's steps, in order: `{name, done, total}` counts of tasks.
    steps: Vec<reel_pipeline::video::PipelineStep>,
    error: Option<serde_json::Value>,
    /// The progressive MP4s made so far (`POST /v1/videos/{id}/downloads`),
    /// `{rendition, url}` by rendition id: shown by `GET /v1/videos/{id}`
    /// only (a listing would list every video's store folder).
    #[serde(skip_serializing_if = "Option::is_none")]
    downloads: Option<Vec<serde_json::Value>>,
}

impl VideoView {
    /// Its media URLs (`hls`, `dash`, `poster`, `storyboard`, ...).
    pub(crate) fn urls(&self) -> &serde_json::Value {
        &self.urls
    }
}

#[derive(Deserialize)]
pub(crate) struct CreateQuery {
    title: Option<String>,
    visibility: Option<String>,
}

/// How long a delete waits for the video's running tasks to stop.
const DELETE_DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The longest title kept.
const MAX_TITLE_CHARS: usize = 200;

pub(crate) async fn create_video(
    Authenticated(owner): Authenticated,
    State(state): State<AppState>,
    Query(query): Query<CreateQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_declared_length(&headers, state.max_upload_bytes)?;
    let visibility = crate::access::parse_visibility(query.visibility.as_deref())?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    crate::check_quota(&state, &owner, declared).await?;
    let title: String = query
        .title
        .or_else(|| {
            headers
                .get("x-reel-title")
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "Untitled".to_string())
        .chars()
        .filter(|character| !character.is_control())
        .take(MAX_TITLE_CHARS)
        .collect();
    let video_id = VideoId::new_random();
    let key = video_source_key(video_id);
    let stream = body.into_data_stream().map_err(|error| error.to_string());
    let stored = reel_pipeline::jobs::store_stream(
        state.objects.clone(),
        &key,
        Box::pin(stream),
        state.max_upload_bytes,
    )
    .await
    .map_err(ingest_error)?;
    if declared == 0 {
        // Without a declared length the quota is checked on what arrived.
        if let Err(error) = crate::check_quota(&state, &owner, stored.size).await {
            let _ = state
                .objects
                .delete(&ObjectPath::from(stored.key.as_str()))
                .await;
            return Err(error);
        }
    }
    let video = NewVideo {
        id: video_id,
        title,
        source_key: stored.key.clone(),
        source_size: stored.size,
        source_sha256: stored.sha256.clone(),
        owner: Some(owner),
        visibility,
    };
    reel_model::create_video(&state.store, &video, video_job(video_id, &stored)).await?;
    let view = video_view(&state, &headers, video_row(&state, video_id).await?).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// An uploader lists its own videos; an admin lists every video; a caller
/// without a key lists the public ones.
pub(crate) async fn list_videos(
    crate::access::MaybeCaller(caller): crate::access::MaybeCaller,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let rows = match &caller {
        Some(caller) if caller.role == Role::Uploader => {
            state.store.list_videos_owned(&caller.key_id, limit).await?
        }
        _ => state.store.list_videos(limit).await?,
    };
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        let visibility = crate::access::visibility_of(&state, row.id).await?;
        if !crate::access::listed_to(&row, visibility, caller.as_ref()) {
            continue;
        }
        views.push(video_view(&state, &headers, row).await?);
    }
    Ok(Json(json!({"videos": views})).into_response())
}

pub(crate) async fn show_video(
    crate::access::MaybeCaller(caller): crate::access::MaybeCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let video_id = parse_video_id(&id)?;
    let row = video_row(&state, video_id).await?;
    let visibility = crate::access::visibility_of(&state, video_id).await?;
    if !crate::access::readable_by(&row, visibility, caller.as_ref()) {
        return Err(ApiError::NotFound(format!("no video with id {video_id}")));
    }
    let mut view = video_view(&state, &headers, row).await?;
    if view.state == "ready" {
        view.downloads = Some(published_downloads(&state, &headers, video_id).await?);
    }
    Ok(Json(view).into_response())
}

/// The download MP4s in the video's store folder, by rendition id (each is
/// stored whole when its task finishes, so a listed one is complete).
async fn published_downloads(
    state: &AppState,
    headers: &HeaderMap,
    video_id: VideoId,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let layout = VideoLayout::new(video_id);
    let folder = ObjectPath::from(layout.object(reel_pipeline::video::layout::DOWNLOADS));
    let locations: Vec<ObjectPath> = state
        .objects
        .list(Some(&folder))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .map_err(|error| ApiError::internal("listing the video's downloads", &error))?;
    let mut renditions: Vec<String> = locations
        .iter()
        .filter_map(|location| {
            let name = location.filename()?.strip_suffix(".mp4")?;
            (layout.download(name) == location.as_ref()).then(|| name.to_string())
        })
        .collect();
    renditions.sort();
    let base = base_url(headers);
    Ok(renditions
        .into_iter()
        .map(|rendition| {
            json!({
                "rendition": rendition,
                "url": format!("{base}/v/{video_id}/download/{rendition}.mp4"),
            })
        })
        .collect())
}

pub(crate) async fn delete_video(
    Signed(caller): Signed,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let video_id = parse_video_id(&id)?;
    let row = video_row(&state, video_id).await?;
    // Another key's video is not the caller's to know of.
    if !caller.may_act_for(row.owner.as_deref()) {
        return Err(ApiError::NotFound(format!("no video with id {video_id}")));
    }
    if let Some(job_id) = row.job_id {
        // Cancelled first, and its running tasks given time to see it at
        // their next heartbeat, so no task writes objects after they are
        // removed.
        state.store.cancel_job(job_id).await?;
        let deadline = tokio::time::Instant::now() + DELETE_DRAIN_LIMIT;
        loop {
            let job = state.store.job(job_id).await?;
            if !job
                .tasks
                .iter()
                .any(|task| task.state == TaskState::Running)
            {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::Conflict(format!(
                    "video {video_id} still has running tasks after {DELETE_DRAIN_LIMIT:?}; retry the delete"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    let layout = VideoLayout::new(video_id);
    let mut prefixes = vec![layout.prefix(), layout.source_prefix()];
    if let Some(job_id) = row.job_id {
        prefixes.push(JobLayout::new(job_id).prefix());
    }
    let mut removed = 0usize;
    for prefix in prefixes {
        let prefix = ObjectPath::from(prefix);
        let locations: Vec<ObjectPath> = state
            .objects
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|error| ApiError::internal("listing the video's objects", &error))?;
        for location in locations {
            match state.objects.delete(&location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => removed += 1,
                Err(error) => {
                    return Err(ApiError::internal(
                        "removing the video's files (retry the delete)",
                        &error,
                    ))
                }
            }
        }
    }
    // The objects are gone, so an edge refilling after its purge gets 404.
    let edges_purging = state.edges.purge_video(video_id);
    let deleted = state.store.delete_video(video_id).await?;
    state.playback.visibility.forget(video_id);
    if deleted {
        // The row is gone, so no watcher can see this transition: enqueued here.
        // The video is gone either way: a failed enqueue is logged, not
        // turned into an error the client could only retry into a 404.
        if let Err(error) = crate::webhooks::webhook_store(&state)
            .video_deleted(&video_id.to_string(), row.created_at)
            .await
        {
            tracing::error!(%video_id, %error, "recording the video.deleted webhook event failed");
        }
    }
    Ok(Json(json!({
        "id": video_id,
        "deleted": true,
        "objects_removed": removed,
        "edges_purging": edges_purging,
    }))
    .into_response())
}

pub(crate) fn parse_video_id(text: &str) -> Result<VideoId, ApiError> {
    text.parse()
        .map_err(|error: reel_core::ParseIdError| ApiError::BadRequest(error.to_string()))
}

async fn video_row(state: &AppState, video_id: VideoId) -> Result<VideoRow, ApiError> {
    state
        .store
        .video(video_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no video with id {video_id}")))
}

/// The base URL clients reached this server at, from the Host header.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            host.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

pub(crate) async fn video_view(
    state: &AppState,
    headers: &HeaderMap,
    row: VideoRow,
) -> Result<VideoView, ApiError> {
    let base = base_url(headers);
    let prefix = format!("{base}/v/{}", row.id);
    let visibility = crate::access::visibility_of(state, row.id).await?;
    let mut view = VideoView {
        id: row.id,
        title: row.title,
        visibility,
        state: "processing",
        percent: 0.0,
        duration_seconds: None,
        source_size: row.source_size,
        created_at: row.created_at,
        job_id: row.job_id,
        renditions: Vec::new(),
        audio: false,
        urls: json!({}),
        steps: Vec::new(),
        error: None,
        downloads: None,
    };
    let Some(job_id) = row.job_id else {
        return Ok(view);
    };
    let job = state.store.job(job_id).await?;
    let progress = video_progress(&job);
    view.state = progress.state.as_str();
    view.percent = progress.percent;
    view.steps = progress.steps;
    view.duration_seconds = progress.duration_seconds;
    if let Some(publication) = progress.publication {
        view.renditions = publication.renditions;
        view.audio = publication.audio;
        view.urls = json!({
            "hls": format!("{prefix}/master.m3u8"),
            "dash": format!("{prefix}/manifest.mpd"),
            "poster": publication.poster.map(|path| format!("{prefix}/{path}")),
            "storyboard": publication.storyboard.map(|path| format!("{prefix}/{path}")),
            "play_hls": format!("{base}/v1/videos/{}/play.m3u8", row.id),
            "play_dash": format!("{base}/v1/videos/{}/play.mpd", row.id),
        });
    }
    if let Some(failure) = &job.error {
        view.error = Some(json!({
            "step": failure.step,
            "task": failure.task,
            "message": failure.message,
        }));
    }
    Ok(view)
}
