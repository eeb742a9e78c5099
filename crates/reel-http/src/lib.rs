//! HTTP semantics shared by the origin (`reel-api`) and the edge
//! (`reel-edge`), written once so the two cannot drift: single byte ranges
//! (RFC 9110 14), validators and conditional requests (RFC 9110 13), HTTP
//! dates (one crate, `httpdate`), the CORS policy of the read-only media
//! routes, and percent-decoding (the `percent-encoding` crate); and the one
//! server loop both run ([`server`]: connection cap, header-read and body
//! idle timeouts, graceful shutdown, TLS with HTTP/2 by ALPN), with the
//! rustls setup of both directions ([`tls`]: the server's certificate,
//! reloaded on SIGHUP; an HTTPS client's trusted roots).
//!
//! Everything but [`server`] and [`tls`] is pure functions over `http`
//! types: no IO, no async.

pub mod conditional;
pub mod cors;
pub mod date;
pub mod range;
pub mod server;
pub mod tls;

pub use conditional::{if_range_allows, is_not_modified, range_answer, Validators};
pub use range::{resolve_range, RangeAnswer};

/// Decodes `%XX` escapes (invalid escapes are kept as they are; invalid
/// UTF-8 becomes U+FFFD).
pub fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(
            percent_decode("..%2F300kbps%2Fseg%2035.m4v"),
            "../300kbps/seg 35.m4v"
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%"), "%zz%");
    }
}
