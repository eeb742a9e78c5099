//! Who may see a video: visibility (`public | unlisted | private`) and
//! `PATCH /v1/videos/{id}`.
//!
//! Public videos are listed to everyone; unlisted and private ones only to
//! their owner. Unlisted videos play by id; private ones only with a signed
//! playback token (see [`crate::playback`]).

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use reel_core::VideoId;
use reel_model::{Principal, VideoRow, Videos as _, Visibilities as _, Visibility};
use serde::Deserialize;

use crate::videos::{parse_video_id, video_view};
use crate::{ApiError, AppState, Signed};

/// The caller when the request carries a valid key or session, `None` for
/// anonymous (or refused) requests, on routes open to anyone.
pub struct MaybeCaller(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match crate::auth::authenticate_request(&state.store, parts).await? {
            reel_model::Caller::Key(principal) => Ok(Self(Some(principal))),
            _ => Ok(Self(None)),
        }
    }
}

/// Parses `?visibility=`; absent means public.
pub(crate) fn parse_visibility(text: Option<&str>) -> Result<Visibility, ApiError> {
    match text {
        None => Ok(Visibility::Public),
        Some(text) => text.parse().map_err(ApiError::BadRequest),
    }
}

/// A video's visibility (public when the row vanished meanwhile).
pub(crate) async fn visibility_of(state: &AppState, id: VideoId) -> Result<Visibility, ApiError> {
    Ok(state.store.video_visibility(id).await?.unwrap_or_default())
}

/// Whether `caller` owns the video or is an admin.
pub(crate) fn owns(row: &VideoRow, caller: Option<&Principal>) -> bool {
    caller.is_some_and(|caller| caller.may_act_for(row.owner.as_deref()))
}

/// Whether the video appears in `caller`'s listing.
pub(crate) fn listed_to(
    row: &VideoRow,
    visibility: Visibility,
    caller: Option<&Principal>,
) -> bool {
    visibility == Visibility::Public || owns(row, caller)
}

/// Whether `caller` may read the video's record (`GET /v1/videos/{id}`):
/// private videos exist only for their owner.
pub(crate) fn readable_by(
    row: &VideoRow,
    visibility: Visibility,
    caller: Option<&Principal>,
) -> bool {
    visibility != Visibility::Private || owns(row, caller)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchVideo {
    visibility: Option<String>,
}

/// `PATCH /v1/videos/{id}` `{"visibility": "public|unlisted|private"}`, by its owner.
pub(crate) async fn patch_video(
    Signed(caller): Signed,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(patch): Json<PatchVideo>,
) -> Result<Response, ApiError> {
    let video_id = parse_video_id(&id)?;
    let row = owned_video(&state, video_id, &caller).await?;
    if let Some(visibility) = patch.visibility.as_deref() {
        let visibility = parse_visibility(Some(visibility))?;
        let before = visibility_of(&state, video_id).await?;
        state
            .store
            .set_video_visibility(video_id, visibility)
            .await?;
        state.playback.visibility.forget(video_id);
        // Edges keep what they cached under the old visibility (a public
        // copy carries no mark that it needs a token): purged.
        if before != visibility {
            state.edges.purge_video(video_id);
        }
    }
    Ok(Json(video_view(&state, &headers, row).await?).into_response())
}

/// The video if `caller` owns it; 404 when it is private to someone else
/// (its existence is not revealed), 403 otherwise.
pub(crate) async fn owned_video(
    state: &AppState,
    video_id: VideoId,
    caller: &Principal,
) -> Result<VideoRow, ApiError> {
    let not_found = || ApiError::NotFound(format!("no video with id {video_id}"));
    let row = state.store.video(video_id).await?.ok_or_else(not_found)?;
    if owns(&row, Some(caller)) {
        return Ok(row);
    }
    if visibility_of(state, video_id).await? == Visibility::Private {
        return Err(not_found());
    }
    Err(ApiError::Forbidden(format!(
        "video {video_id} belongs to another key: only its owner may change it or mint playback tokens"
    )))
}
