//! The web app's side of the API: browser sessions (`/v1/session`) and the
//! built app itself (`web/dist`), served with a fallback to `index.html` for
//! the app's own paths.
//!
//! Signing in exchanges an API key for an HTTP-only, `SameSite=Strict`
//! cookie; the key itself never reaches the page's storage.

use std::path::{Component, Path as FsPath, PathBuf};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use reel_model::keys;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{session_token, SESSION_COOKIE};
use crate::{ApiError, AppState, Signed};

/// How long a browser session lasts.
const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Deserialize)]
pub(crate) struct SignIn {
    api_key: String,
}

/// The session cookie; `Secure` when `server.public_url` is https (or,
/// without one, when the server speaks HTTPS).
fn session_cookie(state: &AppState, token: &str, max_age: u64) -> Result<HeaderValue, ApiError> {
    let secure = if state.public_origin.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    ))
    .map_err(|_| ApiError::Internal("building the session cookie".to_string()))
}

pub(crate) async fn sign_in(
    State(state): State<AppState>,
    Json(body): Json<SignIn>,
) -> Result<Response, ApiError> {
    let Some(key) = keys::verify_key(&state.store, body.api_key.trim()).await? else {
        return Err(ApiError::Unauthorized(
            "that API key is not valid: use the key `reel serve` printed or one from `reel keys create --name NAME`".to_string(),
        ));
    };
    let token = keys::create_session(&state.store, &key, SESSION_LIFETIME).await?;
    let mut response =
        Json(json!({"key_name": key.name, "role": key.role.as_str()})).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&state, &token, SESSION_LIFETIME.as_secs())?,
    );
    Ok(response)
}

pub(crate) async fn show_session(Signed(key): Signed) -> Response {
    Json(json!({"signed_in": true, "key_name": key.name, "role": key.role.as_str()}))
        .into_response()
}

pub(crate) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = headers
        .get(header::COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(session_token)
    {
        keys::delete_session(&state.store, token).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, "", 0)?);
    Ok(response)
}

/// The app's own page paths, answered with `index.html`.
fn is_app_page(path: &str) -> bool {
    matches!(path, "/" | "/upload" | "/signin" | "/library")
        || path
            .strip_prefix("/watch/")
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
}

fn content_type(path: &FsPath) -> &'static str {
    match path.extension().and_then(|extension| extension.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json" | "webmanifest") => "application/json",
        Some("woff2") => "font/woff2",
        Some("map") => "application/json",
        _ => "application/octet-stream",
    }
}

/// `relative` under `root`, if it is a plain path (no `..`, no absolute
/// parts, no hidden files).
fn confined(root: &FsPath, relative: &str) -> Option<PathBuf> {
    let relative = FsPath::new(relative.trim_start_matches('/'));
    let plain = relative.components().all(|component| match component {
        Component::Normal(part) => !part.to_string_lossy().starts_with('.'),
        _ => false,
    });
    plain.then(|| root.join(relative))
}

async fn file_response(path: &FsPath, cache: &'static str) -> Option<Response> {
    let bytes = tokio::fs::read(path).await.ok()?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(response)
}

/// Everything no route matched: the app's files and pages, else 404.
pub(crate) async fn fallback(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let not_found = || {
        ApiError::NotFound(format!(
            "nothing at {path}; the API is under /v1 (see the README)"
        ))
        .into_response()
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return not_found();
    }
    let Some(root) = &state.web_dir else {
        return not_found();
    };
    if is_app_page(&path) {
        return match file_response(&root.join("index.html"), "no-cache").await {
            Some(response) => response,
            None => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<!doctype html><title>reel</title><p>The web app is not built. Run <code>make web</code> (or <code>make run</code>), then reload.</p>",
            )
                .into_response(),
        };
    }
    // Built assets have content hashes in their names: cache them for good.
    let cache = if path.starts_with("/assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    match confined(root, &path) {
        Some(file) => file_response(&file, cache).await.unwrap_or_else(not_found),
        None => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_pages_and_confined_paths() {
        assert!(is_app_page("/"));
        assert!(is_app_page("/watch/abc"));
        assert!(!is_app_page("/watch/"));
        assert!(!is_app_page("/watch/a/b"));
        assert!(!is_app_page("/v1/videos"));
        let root = FsPath::new("/srv/web");
        assert_eq!(
            confined(root, "/assets/app.js"),
            Some(PathBuf::from("/srv/web/assets/app.js"))
        );
        assert_eq!(confined(root, "/../etc/passwd"), None);
        assert_eq!(confined(root, "/assets/../../x"), None);
        assert_eq!(confined(root, "/.env"), None);
    }
}
