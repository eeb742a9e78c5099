//! The browser side of the server's origin: `Secure` session cookies when
//! `server.public_url` is https (or, without one, when the server itself
//! speaks HTTPS), and the check that a state-changing request
//! carried by a session cookie comes from the server's own pages, comparing
//! the Origin's scheme, host and port.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// Where browsers reach the server.
#[derive(Clone, Debug)]
pub struct PublicOrigin {
    /// `server.public_url`; `None`: the server's own scheme and the
    /// request's Host.
    pub url: Option<url::Url>,
    /// The server itself speaks HTTPS (`server.tls_cert`), so without a
    /// public URL its own scheme is `https`.
    pub serves_https: bool,
}

impl PublicOrigin {
    /// Whether session cookies are `Secure`: the public URL is https, or
    /// without one, the server speaks HTTPS.
    pub fn secure_cookies(&self) -> bool {
        match &self.url {
            Some(url) => url.scheme() == "https",
            None => self.serves_https,
        }
    }

    /// Whether `origin` (an Origin header) is the server's own: the same
    /// scheme, host and port as `server.public_url`, or, without one, as
    /// the server's own scheme and `host` (a Host header).
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let Ok(origin) = url::Url::parse(origin) else {
            return false;
        };
        let scheme = if self.serves_https { "https" } else { "http" };
        let expected = match &self.url {
            Some(url) => url.clone(),
            None => {
                match host.and_then(|host| url::Url::parse(&format!("{scheme}://{host}/")).ok()) {
                    Some(url) => url,
                    None => return false,
                }
            }
        };
        origin.origin() == expected.origin()
    }
}

/// Refuses a state-changing request authenticated by a session cookie (no
/// `Authorization` header) whose Origin is not the server's own.
pub(crate) async fn check_origin(
    State(public): State<PublicOrigin>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let by_cookie = !request.method().is_safe()
        && !headers.contains_key(header::AUTHORIZATION)
        && headers
            .get(header::COOKIE)
            .and_then(|value| value.to_str().ok())
            .and_then(crate::auth::session_token)
            .is_some();
    if by_cookie {
        let origin = headers
            .get(header::ORIGIN)
            .and_then(|value| value.to_str().ok());
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok());
        if !origin.is_some_and(|origin| public.allows(origin, host)) {
            return ApiError::Unauthorized(
                "a signed-in browser may change things only from reel's own pages (the Origin's scheme, host and port must be server.public_url's, or the server's own scheme and the Host)".to_string(),
            )
            .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_host_and_port_must_match() {
        let plain = PublicOrigin {
            url: None,
            serves_https: false,
        };
        assert!(plain.allows("http://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(!plain.allows("https://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(!plain.allows("http://127.0.0.1:8081", Some("127.0.0.1:8080")));
        assert!(!plain.allows("null", Some("127.0.0.1:8080")));
        let public = PublicOrigin {
            url: url::Url::parse("https://video.example.org/").ok(),
            serves_https: false,
        };
        assert!(public.secure_cookies());
        assert!(public.allows("https://video.example.org", Some("127.0.0.1:8080")));
        assert!(public.allows("https://video.example.org:443", None));
        assert!(!public.allows("http://video.example.org", Some("video.example.org")));
        assert!(!public.allows("https://video.example.org:8443", None));
        assert!(!plain.secure_cookies());
        // Served over TLS without a public URL: https and the Host.
        let tls = PublicOrigin {
            url: None,
            serves_https: true,
        };
        assert!(tls.secure_cookies());
        assert!(tls.allows("https://127.0.0.1:8443", Some("127.0.0.1:8443")));
        assert!(!tls.allows("http://127.0.0.1:8443", Some("127.0.0.1:8443")));
    }
}
