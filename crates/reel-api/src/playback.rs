//! Signed playback: minting tokens (`POST /v1/videos/{id}/playback`), the
//! JWKS (`/.well-known/reel-jwks.json`) and the access check of the origin's
//! media routes.
//!
//! Media of a private video is served only under `/v/{id}/t/{token}/...`
//! with a token valid for that video, or to an edge that presents the shared
//! edge credential (`reel-edge-secret` header, `server.edge_secret`); edges
//! check viewers' tokens themselves. A token given for any video is checked
//! (a bad one is refused even for a public video). Private objects carry
//! `reel-access: private`, which edges store with the cached copy.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use reel_core::VideoId;
use reel_model::{Visibilities as _, Visibility};
use reel_token::{unix_now, PublicKeySet, SigningKeySet, TokenError, VerifiedTokenCache};
use serde::Deserialize;
use serde_json::json;

mod cache;

pub use cache::VisibilityCache;

use crate::videos::{base_url, parse_video_id, video_view};
use crate::{ApiError, AppState};

/// The header an edge sends with the shared credential to fetch private objects.
pub const EDGE_SECRET_HEADER: &str = "reel-edge-secret";
/// The response header that marks an object as needing a token.
pub const ACCESS_HEADER: &str = "reel-access";
/// Default and longest token lifetimes.
const DEFAULT_TTL_SECONDS: u64 = 3600;
const MAX_TTL_SECONDS: u64 = 7 * 24 * 3600;

/// The origin's keys and the edge credential.
pub struct Playback {
    signing: SigningKeySet,
    public: PublicKeySet,
    verified: VerifiedTokenCache,
    edge_secret: Option<String>,
    /// Each video's visibility, for the media routes.
    pub(crate) visibility: VisibilityCache,
}

impl Playback {
    /// Playback with these signing keys; `edge_secret` lets edges fetch private objects.
    pub fn new(signing: SigningKeySet, edge_secret: Option<String>) -> Self {
        let public = signing.public();
        Self {
            signing,
            public,
            verified: VerifiedTokenCache::new(100_000),
            visibility: VisibilityCache::new(100_000),
            edge_secret: edge_secret.filter(|secret| !secret.is_empty()),
        }
    }

    fn is_edge(&self, headers: &HeaderMap) -> bool {
        let Some(secret) = &self.edge_secret else {
            return false;
        };
        headers
            .get(EDGE_SECRET_HEADER)
            .is_some_and(|given| constant_time_eq(given.as_bytes(), secret.as_bytes()))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn refused(error: &TokenError) -> ApiError {
    ApiError::Forbidden(format!(
        "{error} ({}): ask the video's owner for a playback URL (POST /v1/videos/ID/playback)",
        error.code()
    ))
}

/// Decides whether a media request may be served; returns the video's
/// visibility so the response can be marked.
pub(crate) async fn check_access(
    state: &AppState,
    video_id: VideoId,
    token: Option<&str>,
    headers: &HeaderMap,
) -> Result<Visibility, ApiError> {
    let playback = &state.playback;
    let visibility = match playback.visibility.get(video_id) {
        Some(known) => known,
        None => {
            let read = state.store.video_visibility(video_id).await?;
            playback.visibility.put(video_id, read);
            read
        }
    };
    // Nothing of a video that does not exist (or no longer does) is served.
    let Some(visibility) = visibility else {
        return Err(ApiError::NotFound(format!(
            "no video with id {video_id}: it does not exist or was deleted"
        )));
    };
    if let Some(token) = token {
        let claims = playback
            .verified
            .verify(&playback.public, token, &video_id.to_string(), unix_now())
            .map_err(|error| refused(&error))?;
        let referer = headers
            .get(header::REFERER)
            .and_then(|value| value.to_str().ok());
        claims
            .check_referrer(referer)
            .map_err(|error| refused(&error))?;
    } else if visibility == Visibility::Private && !playback.is_edge(headers) {
        return Err(refused(&TokenError::Missing));
    }
    Ok(visibility)
}

/// Marks a private object's response for edges.
pub(crate) fn mark(headers: &mut HeaderMap, visibility: Visibility) {
    if visibility == Visibility::Private {
        headers.insert(ACCESS_HEADER, HeaderValue::from_static("private"));
    }
}

/// `GET /.well-known/reel-jwks.json`.
pub(crate) async fn jwks(State(state): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        state.playback.public.to_json(),
    )
        .into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlaybackRequest {
    ttl_seconds: Option<u64>,
    #[serde(default)]
    referrers: Vec<String>,
}

/// `POST /v1/videos/{id}/playback` `{"ttl_seconds": N, "referrers": [...]}`
/// by the owner: a token and URLs that play as they are.
pub(crate) async fn mint(
    crate::Signed(caller): crate::Signed,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<PlaybackRequest>>,
) -> Result<Response, ApiError> {
    let video_id = parse_video_id(&id)?;
    let row = crate::access::owned_video(&state, video_id, &caller).await?;
    let request = body.map(|Json(request)| request).unwrap_or_default();
    let ttl = request.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
    if ttl == 0 || ttl > MAX_TTL_SECONDS {
        return Err(ApiError::BadRequest(format!(
            "ttl_seconds must be between 1 and {MAX_TTL_SECONDS}, not {ttl}"
        )));
    }
    if let Some(bad) = request
        .referrers
        .iter()
        .find(|domain| domain.is_empty() || domain.contains(['/', ':', ' ']))
    {
        return Err(ApiError::BadRequest(format!(
            "referrers are domain names such as \"example.com\", not {bad:?}"
        )));
    }
    let now = unix_now();
    let token = state
        .playback
        .signing
        .mint(&video_id.to_string(), ttl, now, &request.referrers)
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    let view = video_view(&state, &headers, row).await?;
    let plain = format!("{}/v/{video_id}/", base_url(&headers));
    let signed = format!("{plain}t/{token}/");
    let sign = |name: &str| {
        view.urls()
            .get(name)
            .and_then(|url| url.as_str())
            .map(|url| url.replacen(&plain, &signed, 1))
    };
    Ok(Json(json!({
        "token": token,
        "expires_at": now + ttl,
        "hls": sign("hls").unwrap_or_else(|| format!("{signed}master.m3u8")),
        "dash": sign("dash").unwrap_or_else(|| format!("{signed}manifest.mpd")),
        "poster": sign("poster"),
        "storyboard": sign("storyboard"),
    }))
    .into_response())
}

/// The shared playback state for [`AppState::playback`].
pub fn shared(signing: SigningKeySet, edge_secret: Option<String>) -> Arc<Playback> {
    Arc::new(Playback::new(signing, edge_secret))
}
