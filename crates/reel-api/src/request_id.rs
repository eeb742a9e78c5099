//! `x-request-id`: every request gets an id (the client's, if it sent a
//! sane one, else a new UUID), every log line of its handling carries it
//! (a `request` span), and the response names it, so a client quoting it
//! finds the log lines an internal error left.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-chosen id kept.
const MAX_LEN: usize = 128;

pub(crate) async fn tag(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|text| usable(text))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path());
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}

/// Whether a client's id can go into logs and headers as it is.
fn usable(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_plain_client_ids() {
        assert!(usable("3f2b-a1_x.y"));
        assert!(!usable(""));
        assert!(!usable("a b"));
        assert!(!usable("line\nbreak"));
        assert!(!usable(&"a".repeat(MAX_LEN + 1)));
    }
}
