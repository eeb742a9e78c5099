//! Reading credentials from a request: a bearer key, else the session
//! cookie with its Origin check. The API's extractor ([`crate::Authenticated`])
//! and the protocols mounted beside it (the tus server) get the result as a
//! [`Caller`]; the protocols never read credentials themselves.

use axum::extract::{Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use reel_jobs::store::{JobStore, StoreError};
use reel_model::{keys, Caller};

/// The cookie that carries a browser session.
pub const SESSION_COOKIE: &str = "reel_session";

/// [`authenticate`] on a request's headers: shared by the API's extractor
/// and [`with_caller`], so every route reads credentials the same way.
pub async fn authenticate_request(store: &JobStore, parts: &Parts) -> Result<Caller, StoreError> {
    let header = |name: header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    authenticate(
        store,
        header(header::AUTHORIZATION),
        header(header::COOKIE),
        parts.method.is_safe(),
        header(header::ORIGIN),
        header(header::HOST),
    )
    .await
}

/// Middleware for the protocols mounted under the API (the tus server):
/// authenticates the request and puts its [`Caller`] in the extensions.
/// A database failure leaves the caller anonymous, which is refused.
pub async fn with_caller(State(store): State<JobStore>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let caller = match authenticate_request(&store, &parts).await {
        Ok(caller) => caller,
        Err(error) => {
            tracing::error!(%error, "authentication failed");
            Caller::Refused("the server could not check the credentials; try again")
        }
    };
    parts.extensions.insert(caller);
    next.run(Request::from_parts(parts, body)).await
}

/// The session token in a `Cookie` header, if any.
pub fn session_token(cookie_header: &str) -> Option<&str> {
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
}

/// Authenticates a request from its `Authorization` and `Cookie` headers, its
/// method, and its `Origin` and `Host` headers.
///
/// A bearer key wins over a cookie. A request that changes state on the
/// strength of a cookie must come from the server's own pages: its
/// `Origin` must name the same host (the cookie is also `SameSite=Strict`).
pub async fn authenticate(
    store: &JobStore,
    authorization: Option<&str>,
    cookie: Option<&str>,
    method_is_safe: bool,
    origin: Option<&str>,
    host: Option<&str>,
) -> Result<Caller, StoreError> {
    if let Some(value) = authorization {
        let Some(secret) = value.strip_prefix("Bearer ") else {
            return Ok(Caller::Refused(
                "the Authorization header must be `Bearer KEY`",
            ));
        };
        return Ok(match keys::verify_key(store, secret.trim()).await? {
            Some(principal) => Caller::Key(principal),
            None => Caller::Refused("the API key is not valid"),
        });
    }
    let Some(token) = cookie.and_then(session_token) else {
        return Ok(Caller::Anonymous);
    };
    if !method_is_safe && !same_origin(origin, host) {
        return Ok(Caller::Refused(
            "a signed-in browser may change things only from reel's own pages (Origin does not match Host)",
        ));
    }
    Ok(match keys::verify_session(store, token).await? {
        Some(principal) => Caller::Key(principal),
        None => Caller::Refused("the session has expired or was signed out; sign in again"),
    })
}

/// Whether `origin` (`scheme://host[:port]`) names `host` (`host[:port]`).
fn same_origin(origin: Option<&str>, host: Option<&str>) -> bool {
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

#[cfg(test)]
mod session_tests {
    use super::*;

    #[test]
    fn session_tokens_come_from_the_cookie_header() {
        assert_eq!(
            session_token("a=1; reel_session=rs_abc; b=2"),
            Some("rs_abc")
        );
        assert_eq!(session_token("reel_session_x=1"), None);
        assert_eq!(session_token(""), None);
    }

    #[test]
    fn unsafe_cookie_requests_need_the_same_origin() {
        assert!(same_origin(
            Some("http://127.0.0.1:8080"),
            Some("127.0.0.1:8080")
        ));
        assert!(!same_origin(
            Some("http://evil.example"),
            Some("127.0.0.1:8080")
        ));
        assert!(!same_origin(None, Some("127.0.0.1:8080")));
        assert!(!same_origin(Some("null"), Some("127.0.0.1:8080")));
    }
}
