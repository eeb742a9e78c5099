//! The origin: `/v/{video}/{path}` serves what the pipeline published under
//! `videos/{video}/`, for players, edges and CDNs.
//!
//! Media segments, init segments and images never change once written, so
//! they are `immutable`; manifests change while the video is processing (the
//! multivariant playlist grows), so they get a max-age of a few seconds until
//! the job has succeeded. Then browsers get a short max-age and edges, by
//! `CDN-Cache-Control` (RFC 9213), a long one: every later change of a
//! ready video's manifests (captions, visibility, deletion) purges the
//! registered edges. Every response has an ETag and answers conditional
//! GETs (`If-None-Match`, `If-Modified-Since`); single byte ranges get 206,
//! guarded by `If-Range`; CORS allows any origin to read and exposes the
//! headers players need. The HTTP semantics are `reel-http`'s, shared with
//! the edge.

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore};
use reel_http::range::{content_range, unsatisfiable_content_range};
use reel_http::{cors, date, RangeAnswer, Validators};
use reel_jobs::store::JobState;
use reel_model::Videos as _;

use crate::videos::parse_video_id;
use crate::{ApiError, AppState};
use reel_pipeline::video::VideoLayout;

static CDN_CACHE_CONTROL: header::HeaderName = header::HeaderName::from_static("cdn-cache-control");

/// Cache-Control of objects that never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache-Control of manifests while their video is still processing: they
/// grow as renditions are published (so a new one shows within a second
/// through any edge); edges may serve a copy up to a minute
/// old if the origin is down.
const MANIFEST_PROCESSING: &str = "public, max-age=1, stale-if-error=60";
/// Cache-Control of manifests of a finished video, for browsers.
const MANIFEST_FINAL: &str = "public, max-age=10";
/// CDN-Cache-Control of manifests of a finished video, for edges (which
/// are purged when they change): kept a day, refreshed in the background,
/// served for a day while the origin is down.
const MANIFEST_FINAL_CDN: &str = "max-age=86400, stale-while-revalidate=60, stale-if-error=86400";

/// What kind of file a path names, by its extension.
fn content_type(path: &str) -> Option<(&'static str, bool)> {
    let extension = path.rsplit_once('.').map(|(_, extension)| extension)?;
    // (content type, whether it is a manifest that may change)
    Some(match extension {
        "m3u8" => ("application/vnd.apple.mpegurl", true),
        "mpd" => ("application/dash+xml", true),
        "json" => ("application/json", true),
        "vtt" => ("text/vtt; charset=utf-8", true),
        "m4s" => ("video/iso.segment", false),
        "mp4" => ("video/mp4", false),
        "jpg" => ("image/jpeg", false),
        _ => return None,
    })
}

/// Accepts only plain relative paths: segments of letters, digits, `-`,
/// `_` and `.`, none of them `.` or `..`.
fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 256
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

fn not_found(video: &str, path: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no file {path:?} for video {video}: it does not exist or is not published yet"
    ))
}

/// `GET /v/{video}/{path}`; every answer, refusals and errors included,
/// carries the media CORS headers, so a player in a page can read why it
/// was refused (a 403 without them reaches it as a network error).
pub(crate) async fn serve_object(
    state: State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Path<(String, String)>,
) -> Response {
    let mut response = match serve_object_inner(state, method, headers, path).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    cors::add_read_headers(response.headers_mut());
    response
}

async fn serve_object_inner(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((id, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let video_id = parse_video_id(&id)?;
    // `/v/{id}/t/{token}/{path}`: the signed form of `/v/{id}/{path}`.
    let (token, path) = match path
        .strip_prefix("t/")
        .and_then(|rest| rest.split_once('/'))
    {
        Some((token, file)) => (Some(token.to_owned()), file.to_owned()),
        None => (None, path),
    };
    let visibility =
        crate::playback::check_access(&state, video_id, token.as_deref(), &headers).await?;
    if !valid_path(&path) {
        return Err(ApiError::BadRequest(format!(
            "{path:?} is not a valid file path inside a video"
        )));
    }
    let (mime, is_manifest) = content_type(&path).ok_or_else(|| not_found(&id, &path))?;
    let cache_control = if is_manifest {
        let finished = match state.store.video(video_id).await? {
            Some(row) => match row.job_id {
                Some(job_id) => state.store.job_state(job_id).await? == Some(JobState::Succeeded),
                None => false,
            },
            None => return Err(not_found(&id, &path)),
        };
        if finished {
            (MANIFEST_FINAL, Some(MANIFEST_FINAL_CDN))
        } else {
            (MANIFEST_PROCESSING, None)
        }
    } else {
        (IMMUTABLE, None)
    };
    let (cache_control, cdn_cache_control) = cache_control;
    let location = ObjectPath::from(VideoLayout::new(video_id).object(&path));
    let meta = match state.objects.head(&location).await {
        Ok(meta) => meta,
        Err(object_store::Error::NotFound { .. }) => return Err(not_found(&id, &path)),
        Err(error) => return Err(ApiError::internal("reading the file", &error)),
    };
    let etag = format!(
        "\"{}\"",
        meta.e_tag
            .clone()
            .unwrap_or_else(|| format!(
                "{:x}-{:x}",
                meta.size,
                meta.last_modified.timestamp_micros()
            ))
            .trim_matches('"')
    );
    let modified = SystemTime::from(meta.last_modified);
    let validators = Validators::new(HeaderValue::from_str(&etag).ok(), Some(modified));
    let mut response_headers = HeaderMap::new();
    cors::add_read_headers(&mut response_headers);
    crate::playback::mark(&mut response_headers, visibility);
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Some(cdn) = cdn_cache_control {
        response_headers.insert(CDN_CACHE_CONTROL.clone(), HeaderValue::from_static(cdn));
    }
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(file) = path.strip_prefix("download/") {
        // `file` passed valid_path: letters, digits, `.`, `_`, `-` only.
        if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{id}-{file}\"")) {
            response_headers.insert(header::CONTENT_DISPOSITION, value);
        }
    }
    if let Some(etag) = &validators.etag {
        response_headers.insert(header::ETAG, etag.clone());
    }
    response_headers.insert(header::LAST_MODIFIED, date::header_value(modified));
    if reel_http::is_not_modified(&headers, &validators) {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }
    let size = meta.size;
    // A Range header the origin does not handle is ignored (RFC 9110): the
    // whole object is sent; so is a stale If-Range.
    let (status, body_range) = match reel_http::range_answer(&headers, &validators, size) {
        RangeAnswer::Full => (StatusCode::OK, 0..size),
        RangeAnswer::Partial(bounds) => {
            response_headers.insert(header::CONTENT_RANGE, content_range(&bounds, size));
            (StatusCode::PARTIAL_CONTENT, bounds)
        }
        RangeAnswer::Unsatisfiable => {
            response_headers.insert(header::CONTENT_RANGE, unsatisfiable_content_range(size));
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response());
        }
    };
    response_headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(body_range.end - body_range.start),
    );
    if method == Method::HEAD {
        return Ok((status, response_headers).into_response());
    }
    let options = GetOptions {
        range: (status == StatusCode::PARTIAL_CONTENT)
            .then(|| GetRange::Bounded(body_range.clone())),
        ..GetOptions::default()
    };
    let result = match state.objects.get_opts(&location, options).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Err(not_found(&id, &path)),
        Err(error) => return Err(ApiError::internal("reading the file", &error)),
    };
    let stream = result.into_stream().map_err(std::io::Error::other);
    Ok((status, response_headers, Body::from_stream(stream)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_traversal_and_odd_names() {
        assert!(valid_path("720p/seg-00001.m4s"));
        assert!(valid_path("master.m3u8"));
        assert!(!valid_path("../sources/x"));
        assert!(!valid_path("a/../../b"));
        assert!(!valid_path("a//b"));
        assert!(!valid_path("a\\b"));
        assert!(!valid_path("%2e%2e/x"));
        assert!(!valid_path(""));
    }
}
