//! `POST /v1/videos/{id}/audio?language=…&name=…` (owner or admin, a ready
//! video) stores an audio file, or a video file whose first audio stream is
//! used, and starts a `dub` job that adds it as an audio track on the
//! video's timeline (`reel_pipeline::video::dub_job`); `DELETE
//! /v1/videos/{id}/audio/{track}` removes an audio track, but never the
//! last one. Neither touches a video segment.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use reel_pipeline::video::{dub_job, dub_source_key, DubRequest, VideoLayout};
use serde::Deserialize;
use serde_json::json;

use crate::access::owned_video;
use crate::captions::{parse_language, ready_presentation, republish, EDITS};
use crate::videos::parse_video_id;
use crate::{check_declared_length, ingest_error, ApiError, AppState, Signed};

#[derive(Deserialize)]
pub(crate) struct DubQuery {
    language: Option<String>,
    name: Option<String>,
}

/// The longest track name kept.
const MAX_NAME_CHARS: usize = 100;

pub(crate) async fn add_audio(
    Signed(caller): Signed,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<DubQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let video_id = parse_video_id(&id)?;
    let row = owned_video(&state, video_id, &caller).await?;
    check_declared_length(&headers, state.max_upload_bytes)?;
    let language = parse_language(query.language)?.ok_or_else(|| {
        ApiError::BadRequest(
            "language= is required: the BCP 47 tag of the track, such as fr or pt-BR".to_string(),
        )
    })?;
    let presentation = ready_presentation(&state, video_id, row.job_id).await?;
    if presentation.video.is_empty() {
        return Err(ApiError::Conflict(format!(
            "video {video_id} has no video track to add audio to"
        )));
    }
    let number = presentation
        .audio
        .iter()
        .map(|audio| match audio.id.strip_prefix("audio-") {
            Some(number) => number.parse::<u32>().unwrap_or(0),
            None => 1,
        })
        .max()
        .unwrap_or(0)
        + 1;
    // The pipeline's names: `audio` for the first track, `audio-{n}` after.
    let track = if number <= 1 {
        "audio".to_string()
    } else {
        format!("audio-{number}")
    };
    let name: String = query
        .name
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| reel_media::language::track_name(None, Some(&language), number))
        .chars()
        .filter(|character| !character.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let stream = body.into_data_stream().map_err(|error| error.to_string());
    let stored = reel_pipeline::jobs::store_stream(
        state.objects.clone(),
        &dub_source_key(video_id, &track),
        Box::pin(stream),
        state.max_upload_bytes,
    )
    .await
    .map_err(ingest_error)?;
    let request = DubRequest {
        id: track.clone(),
        language,
        name,
    };
    let job_id = state
        .store
        .create_job(dub_job(video_id, &stored, request))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job_id": job_id, "track": track})),
    )
        .into_response())
}

pub(crate) async fn delete_audio(
    Signed(caller): Signed,
    State(state): State<AppState>,
    Path((id, track)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let video_id = parse_video_id(&id)?;
    let row = owned_video(&state, video_id, &caller).await?;
    let _edit = EDITS.lock().await;
    let mut presentation = ready_presentation(&state, video_id, row.job_id).await?;
    let Some(position) = presentation
        .audio
        .iter()
        .position(|audio| audio.id == track)
    else {
        return Err(ApiError::NotFound(format!(
            "video {video_id} has no audio track {track:?}; GET its manifests for the ids (audio, audio-2, …)"
        )));
    };
    if presentation.audio.len() == 1 {
        return Err(ApiError::Conflict(format!(
            "{track} is the only audio track of video {video_id}: add another before removing it"
        )));
    }
    let removed = presentation.audio.remove(position);
    if removed.default {
        presentation.audio[0].default = true;
    }
    republish(&state, video_id, &presentation).await?;
    let layout = VideoLayout::new(video_id);
    let files = [
        layout.init_segment(&removed.id),
        layout.media_playlist(&removed.id),
    ]
    .into_iter()
    .chain(
        (1..=removed.segments.len()).map(|number| layout.media_segment(&removed.id, number as u32)),
    );
    for key in files {
        let _ = state.objects.delete(&ObjectPath::from(key)).await;
    }
    Ok(Json(json!({"deleted": track})).into_response())
}
