//! The origin: `/v/{video}/{path}` serves what the pipeline published under
//! `videos/{video}/`, for players, edges and CDNs.
//!
//! Media segments, init segments and images never change once written, so
//! they are `immutable`; manifests change while the video is processing (the
//! multivariant playlist grows), so they get a max-age of a few seconds until
//! the job has succeeded. Every response has an ETag and answers conditional
//! GETs; single byte ranges get 206; CORS allows any origin to read and
//! exposes the headers players need.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore};
use reel_jobs::store::JobState;

use crate::videos::parse_video_id;
use crate::{ApiError, AppState};
use reel_pipeline::video::VideoLayout;

/// Cache-Control of objects that never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache-Control of manifests while their video is still processing: they
/// grow as renditions are published; edges may serve a copy up to a minute
/// old if the origin is down.
const MANIFEST_PROCESSING: &str = "public, max-age=2, stale-if-error=60";
/// Cache-Control of manifests of a finished video: edges refresh them in the
/// background and keep serving them for a day while the origin is down.
const MANIFEST_FINAL: &str = "public, max-age=300, stale-while-revalidate=60, stale-if-error=86400";

pub(crate) async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    add_cors(headers);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Range, If-None-Match, If-Modified-Since, CMCD-Request, CMCD-Object, CMCD-Status, CMCD-Session"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

fn add_cors(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Length, Content-Range, ETag, Age, Cache-Control"),
    );
}

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

/// Parses a single `bytes=` range; `Ok(None)` for no or an ignorable header
/// (several ranges are answered with the whole object, as RFC 9110 allows).
fn parse_range(headers: &HeaderMap) -> Result<Option<GetRange>, ()> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| ())?;
    let spec = text.trim().strip_prefix("bytes=").ok_or(())?;
    if spec.contains(',') {
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = (start.trim(), end.trim());
    match (start.is_empty(), end.is_empty()) {
        (false, true) => Ok(Some(GetRange::Offset(start.parse().map_err(|_| ())?))),
        (true, false) => {
            let suffix: u64 = end.parse().map_err(|_| ())?;
            if suffix == 0 {
                return Err(());
            }
            Ok(Some(GetRange::Suffix(suffix)))
        }
        (false, false) => {
            let first: u64 = start.parse().map_err(|_| ())?;
            let last: u64 = end.parse().map_err(|_| ())?;
            if last < first {
                return Err(());
            }
            Ok(Some(GetRange::Bounded(first..last.saturating_add(1))))
        }
        (true, true) => Err(()),
    }
}

fn not_found(video: &str, path: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no file {path:?} for video {video}: it does not exist or is not published yet"
    ))
}

pub(crate) async fn serve_object(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((id, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let video_id = parse_video_id(&id)?;
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
            MANIFEST_FINAL
        } else {
            MANIFEST_PROCESSING
        }
    } else {
        IMMUTABLE
    };
    let location = ObjectPath::from(VideoLayout::new(video_id).object(&path));
    let meta = match state.objects.head(&location).await {
        Ok(meta) => meta,
        Err(object_store::Error::NotFound { .. }) => return Err(not_found(&id, &path)),
        Err(error) => return Err(ApiError::Internal(format!("reading {location}: {error}"))),
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
    let last_modified = meta
        .last_modified
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let mut response_headers = HeaderMap::new();
    add_cors(&mut response_headers);
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&last_modified) {
        response_headers.insert(header::LAST_MODIFIED, value);
    }
    if let Some(if_none_match) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        let matches = if_none_match
            .split(',')
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == "*" || tag == etag);
        if matches {
            return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
        }
    } else if let Some(since) = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
    {
        if meta.last_modified.timestamp() <= since {
            return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
        }
    }
    let size = meta.size;
    // An invalid Range header is ignored (RFC 9110): the whole object is sent.
    let range = parse_range(&headers).unwrap_or_default();
    let resolved = match &range {
        None => None,
        Some(GetRange::Bounded(bounds)) if bounds.start < size => {
            Some(bounds.start..bounds.end.min(size))
        }
        Some(GetRange::Offset(start)) if *start < size => Some(*start..size),
        Some(GetRange::Suffix(suffix)) if size > 0 => Some(size.saturating_sub(*suffix)..size),
        Some(_) => {
            response_headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii header"),
            );
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response());
        }
    };
    let (status, body_range) = match resolved {
        Some(bounds) => {
            response_headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {}-{}/{size}", bounds.start, bounds.end - 1))
                    .expect("ascii header"),
            );
            (StatusCode::PARTIAL_CONTENT, bounds)
        }
        None => (StatusCode::OK, 0..size),
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
        Err(error) => return Err(ApiError::Internal(format!("reading {location}: {error}"))),
    };
    let stream = result.into_stream().map_err(std::io::Error::other);
    Ok((status, response_headers, Body::from_stream(stream)).into_response())
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to Unix seconds.
fn parse_http_date(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(text)
        .ok()
        .map(|date| date.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> Result<Option<GetRange>, ()> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(text).unwrap());
        parse_range(&headers)
    }

    #[test]
    fn parses_single_ranges() {
        assert_eq!(range("bytes=0-99"), Ok(Some(GetRange::Bounded(0..100))));
        assert_eq!(range("bytes=100-"), Ok(Some(GetRange::Offset(100))));
        assert_eq!(range("bytes=-5"), Ok(Some(GetRange::Suffix(5))));
        assert_eq!(range("bytes=0-1,5-6"), Ok(None));
        assert_eq!(range("bytes=9-3"), Err(()));
        assert_eq!(range("items=0-1"), Err(()));
        assert_eq!(range("bytes=-"), Err(()));
    }

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
