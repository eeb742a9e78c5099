//! Admin and observability routes: purge, CMCD sessions, metrics.
//!
//! Purge and sessions need `Authorization: Bearer <admin token>`; with no
//! token configured they are disabled. `/metrics` and `/healthz` are open,
//! like the origin's.

use std::time::Instant;

use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::key::cache_key;
use crate::metrics::Gauges;
use crate::proxy::text_response;
use crate::Edge;

const PURGE_PATH: &str = "/_edge/purge";
const SESSIONS_PATH: &str = "/_edge/sessions";

/// Decides whether a cache key is purged.
type KeyMatcher = Box<dyn Fn(&str) -> bool>;

/// Routes under `/_edge/`.
pub(crate) fn handle(edge: &Edge, parts: &Parts) -> Response {
    let path = parts.uri.path();
    if path == PURGE_PATH || path.starts_with("/_edge/purge/") {
        if parts.method != Method::DELETE {
            return method_not_allowed("DELETE");
        }
        if let Some(rejection) = reject_unauthorized(edge, &parts.headers) {
            return rejection;
        }
        return purge(edge, parts);
    }
    if path == SESSIONS_PATH {
        if parts.method != Method::GET {
            return method_not_allowed("GET");
        }
        if let Some(rejection) = reject_unauthorized(edge, &parts.headers) {
            return rejection;
        }
        let sessions = edge.sessions().snapshot(Instant::now());
        return axum::Json(json!({ "edge": edge.settings.name, "sessions": sessions }))
            .into_response();
    }
    text_response(
        StatusCode::NOT_FOUND,
        Some("not_found"),
        format!(
            "no admin route {path}; try DELETE {PURGE_PATH}?prefix=/v/ID/ or GET {SESSIONS_PATH}\n"
        ),
    )
}

/// `GET /metrics`.
pub(crate) fn metrics(edge: &Edge) -> Response {
    let cmcd_sessions = edge.sessions().len();
    let text = edge.metrics.render(&Gauges {
        name: &edge.settings.name,
        location: edge.settings.location,
        store: edge.store.stats(),
        cmcd_sessions,
    });
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn purge(edge: &Edge, parts: &Parts) -> Response {
    let path = parts.uri.path();
    let (description, matcher): (String, KeyMatcher) = if path == PURGE_PATH {
        let prefix = parts.uri.query().and_then(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(name, _)| name == "prefix")
                .map(|(_, value)| value.into_owned())
        });
        let Some(prefix) = prefix.filter(|prefix| prefix.starts_with('/')) else {
            return text_response(
                StatusCode::BAD_REQUEST,
                Some("bad_purge"),
                format!(
                    "purge needs a prefix starting with '/': DELETE {PURGE_PATH}?prefix=/v/VIDEO_ID/ or DELETE {PURGE_PATH}/v/VIDEO_ID\n"
                ),
            );
        };
        let description = prefix.clone();
        (
            description,
            Box::new(move |key: &str| key.starts_with(&prefix)),
        )
    } else {
        // `/_edge/purge/v/ID` removes `/v/ID`, everything below it and its
        // query variants, but not `/v/ID2`.
        let target = &path[PURGE_PATH.len()..];
        let Some(base) = cache_key(target) else {
            return text_response(
                StatusCode::BAD_REQUEST,
                Some("bad_purge"),
                format!("cannot purge {target:?}: not a path\n"),
            );
        };
        let base = base.as_str().trim_end_matches('/').to_owned();
        let description = format!("{base}/");
        (
            description,
            Box::new(move |key: &str| match key.strip_prefix(base.as_str()) {
                Some(rest) => rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'),
                None => false,
            }),
        )
    };
    let n_purged = edge.store.purge(&*matcher);
    edge.metrics.purges.inc();
    edge.metrics.purged_objects.add(n_purged as u64);
    tracing::info!(edge = %edge.settings.name, prefix = %description, n_purged, "purged cache");
    axum::Json(json!({ "purged": n_purged, "prefix": description })).into_response()
}

/// The response refusing a request without the admin token, if it has none.
fn reject_unauthorized(edge: &Edge, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &edge.settings.admin_token else {
        return Some(text_response(
            StatusCode::FORBIDDEN,
            Some("admin_disabled"),
            "admin routes are disabled on this edge: configure an admin token to enable them\n"
                .to_owned(),
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(presented) if constant_time_eq(presented.as_bytes(), token.as_bytes()) => None,
        _ => {
            let mut response = text_response(
                StatusCode::UNAUTHORIZED,
                Some("unauthorized"),
                "missing or wrong admin token: send Authorization: Bearer <admin token>\n"
                    .to_owned(),
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            Some(response)
        }
    }
}

/// Compares without an early exit, so timing does not reveal the prefix
/// of the token that matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn method_not_allowed(allowed: &'static str) -> Response {
    let mut response = text_response(
        StatusCode::METHOD_NOT_ALLOWED,
        Some("method_not_allowed"),
        format!("use {allowed} on this route\n"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_tokens() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
