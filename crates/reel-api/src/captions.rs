//! `POST /v1/videos/{id}/captions?language=…&name=…` adds a caption track
//! from an uploaded SubRip or WebVTT file; `DELETE
//! /v1/videos/{id}/captions/{track}` removes one. Both rewrite the stored
//! presentation and the two manifests, never a media segment, and purge the
//! edges (their copies of the manifests are stale).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use reel_core::VideoId;
use reel_jobs::store::JobState;
use reel_manifest::paths::TEXT_FILE;
use reel_manifest::{Presentation, TextTrack};
use serde::Deserialize;
use serde_json::json;

use crate::access::owned_video;
use crate::videos::parse_video_id;
use crate::{ApiError, AppState, Signed};

/// The largest caption file taken.
pub(crate) const MAX_CAPTION_BYTES: usize = 4 << 20;

/// The most text tracks a video may have.
const MAX_TEXT_TRACKS: usize = 32;

/// One caption edit at a time in this process: each reads, changes and
/// writes the presentation whole.
pub(crate) static EDITS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Deserialize)]
pub(crate) struct CaptionQuery {
    language: Option<String>,
    name: Option<String>,
}

/// The ready video's presentation (captions join a finished video only: a
/// running publish chain would write over them).
/// A `language=` query value as a BCP 47 tag (`fre` becomes `fr`); none
/// when it is absent or empty.
pub(crate) fn parse_language(language: Option<String>) -> Result<Option<String>, ApiError> {
    language
        .filter(|language| !language.is_empty())
        .map(|language| {
            let valid = language.len() <= 35
                && language
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-');
            valid
                .then(|| reel_media::language::bcp47(&language))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "language {language:?} is not a BCP 47 tag such as en or pt-BR"
                    ))
                })
        })
        .transpose()
}

pub(crate) async fn ready_presentation(
    state: &AppState,
    video_id: VideoId,
    job_id: Option<reel_core::JobId>,
) -> Result<Presentation, ApiError> {
    let ready = match job_id {
        Some(job_id) => state.store.job_state(job_id).await? == Some(JobState::Succeeded),
        None => false,
    };
    if !ready {
        return Err(ApiError::Conflict(format!(
            "video {video_id} is not ready yet: add captions once GET /v1/videos/{video_id} says ready"
        )));
    }
    reel_pipeline::video::read_presentation(state.objects.as_ref(), video_id)
        .await
        .map_err(|error| ApiError::internal("reading the presentation", &error))
}

/// Writes the presentation and both manifests, then purges the edges.
pub(crate) async fn republish(
    state: &AppState,
    video_id: VideoId,
    presentation: &Presentation,
) -> Result<(), ApiError> {
    reel_pipeline::video::write_presentation(state.objects.as_ref(), video_id, presentation)
        .await
        .map_err(|error| ApiError::internal("rewriting the manifests", &error))?;
    state.edges.purge_video(video_id);
    Ok(())
}

pub(crate) async fn add_captions(
    Signed(caller): Signed,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<CaptionQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let video_id = parse_video_id(&id)?;
    let row = owned_video(&state, video_id, &caller).await?;
    if body.len() > MAX_CAPTION_BYTES {
        return Err(ApiError::TooLarge(format!(
            "the caption file is {} bytes; the limit is {MAX_CAPTION_BYTES}",
            body.len()
        )));
    }
    let text = std::str::from_utf8(&body).map_err(|error| {
        ApiError::Unprocessable(format!(
            "the caption file is not UTF-8 text (byte {}): save it as UTF-8 SubRip or WebVTT",
            error.valid_up_to()
        ))
    })?;
    let cues = reel_manifest::captions::parse_captions(text).map_err(|error| {
        ApiError::Unprocessable(format!("the caption file is refused: {error}"))
    })?;
    let language = parse_language(query.language)?;
    let _edit = EDITS.lock().await;
    let mut presentation = ready_presentation(&state, video_id, row.job_id).await?;
    if presentation.text.len() >= MAX_TEXT_TRACKS {
        return Err(ApiError::Conflict(format!(
            "video {video_id} has {MAX_TEXT_TRACKS} caption tracks already: delete one first"
        )));
    }
    let number = presentation
        .text
        .iter()
        .filter_map(|track| track.id.strip_prefix("text-")?.parse::<u32>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let id = format!("text-{number}");
    let size = reel_manifest::captions::to_webvtt(&cues).len() as u64;
    let duration_micros = match presentation.duration_micros() {
        0 => cues.iter().map(|cue| cue.end_ms * 1000).max().unwrap_or(0),
        micros => micros,
    };
    let track = TextTrack {
        id: id.clone(),
        name: reel_media::language::track_name(query.name.as_deref(), language.as_deref(), number),
        language,
        default: false,
        duration_micros,
        size,
        segments_micros: presentation.segment_durations_micros(),
    };
    reel_pipeline::video::write_text_track(state.objects.as_ref(), video_id, &track, &cues)
        .await
        .map_err(|error| ApiError::internal("writing the captions", &error))?;
    presentation.text.push(track.clone());
    republish(&state, video_id, &presentation).await?;
    let base = crate::videos::base_url(&headers);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "track": track,
            "cues": cues.len(),
            "url": format!("{base}/v/{video_id}/{id}/{TEXT_FILE}"),
        })),
    )
        .into_response())
}

pub(crate) async fn delete_captions(
    Signed(caller): Signed,
    State(state): State<AppState>,
    Path((id, track)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let video_id = parse_video_id(&id)?;
    let row = owned_video(&state, video_id, &caller).await?;
    let _edit = EDITS.lock().await;
    let mut presentation = ready_presentation(&state, video_id, row.job_id).await?;
    let Some(position) = presentation
        .text
        .iter()
        .position(|existing| existing.id == track)
    else {
        return Err(ApiError::NotFound(format!(
            "video {video_id} has no caption track {track:?}; GET its manifests for the ids (text-1, …)"
        )));
    };
    let removed = presentation.text.remove(position);
    republish(&state, video_id, &presentation).await?;
    reel_pipeline::video::delete_text_track(state.objects.as_ref(), video_id, &removed).await;
    Ok(Json(json!({"deleted": track})).into_response())
}
