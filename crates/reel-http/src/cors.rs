//! The CORS policy of the media routes (the origin's `/v/…` and every
//! edge): reads only, by any origin, exposing what players need.
//!
//! This is a small module rather than tower-http's `CorsLayer` because the
//! layer cannot keep the behaviour clients and tests rely on: it answers
//! preflights `200` (ours are `204 No Content`), only when the request
//! carries `Access-Control-Request-Method`, and it adds
//! `Vary: origin, access-control-request-method, access-control-request-headers`
//! to every response. The answer here is the same for every origin (`*`),
//! so that `Vary` would only split every edge's cache entries by the
//! viewer's page; and edges store the origin's headers, so both sides must
//! send the same set.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The methods the media routes serve.
pub const ALLOW_METHODS: &str = "GET, HEAD, OPTIONS";
/// The request headers a player may send: ranges, conditionals, CMCD.
pub const ALLOW_HEADERS: &str = "Range, If-None-Match, If-Modified-Since, If-Range, CMCD-Request, CMCD-Object, CMCD-Status, CMCD-Session";
/// The response headers a player may read.
pub const EXPOSE_HEADERS: &str = "Content-Length, Content-Range, ETag, Age, Cache-Control";
/// How long a browser may keep a preflight's answer, in seconds.
pub const MAX_AGE: &str = "86400";

/// Adds the headers every media response carries.
pub fn add_read_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
}

/// The answer to any `OPTIONS` request on a media route.
pub fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    add_read_headers(headers);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(MAX_AGE),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflight_allows_ranges_conditionals_and_cmcd() {
        let response = preflight();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let headers = response.headers();
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let allowed = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .expect("ascii");
        for name in [
            "Range",
            "If-None-Match",
            "If-Modified-Since",
            "If-Range",
            "CMCD-Request",
        ] {
            assert!(allowed.contains(name), "{name} in {allowed}");
        }
        assert!(!headers.contains_key(header::VARY));
    }
}
