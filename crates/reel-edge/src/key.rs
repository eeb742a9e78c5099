//! Cache keys: the normalised path and query of a request.
//!
//! The key is the only input that selects a cached object, and the upstream
//! is asked for exactly the key (upstream base + key), so whatever is stored
//! under a key is what the upstream serves for it: no request header, no
//! `Host`, and no dropped query parameter can change it.
//!
//! Dropped parameters carry per-client data that never changes the
//! response: `CMCD` (CTA-5004 client data), the content-steering
//! parameters `_HLS_pathway`/`_HLS_throughput` and every `_DASH_*`. LL-HLS
//! delivery directives (`_HLS_msn`, `_HLS_part`, `_HLS_skip`) do change the
//! playlist, so they stay in the key.

use std::fmt;
use std::sync::Arc;

use url::Url;

/// Placeholder authority used to parse request targets with the `url` crate.
const PARSE_BASE: &str = "http://edge.invalid";

/// A normalised `path[?query]`; cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey(Arc<str>);

impl CacheKey {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Builds the key of an origin-form request target (`/path?query`).
/// Returns `None` for targets that are not origin-form.
pub(crate) fn cache_key(path_and_query: &str) -> Option<CacheKey> {
    if !path_and_query.starts_with('/') {
        return None;
    }
    // Parsing with a fixed authority (instead of joining) keeps `//host/x`
    // a path; the url crate resolves dot segments and normalises escaping.
    let url = Url::parse(&format!("{PARSE_BASE}{path_and_query}")).ok()?;
    Some(key_of_url(&url))
}

/// Resolves a CMCD `nor` (a URL relative to the request) into a cache key.
/// Returns `None` when it points at another host or is not a valid URL.
pub(crate) fn resolve_relative(request_path_and_query: &str, relative: &str) -> Option<CacheKey> {
    let base = Url::parse(&format!("{PARSE_BASE}{request_path_and_query}")).ok()?;
    let resolved = base.join(relative).ok()?;
    if resolved.scheme() != "http" || resolved.host_str() != Some("edge.invalid") {
        return None;
    }
    if resolved.port().is_some() || !resolved.username().is_empty() {
        return None;
    }
    Some(key_of_url(&resolved))
}

/// The key of `reference` (a `Location` or `Content-Location`) resolved
/// against a request for `request_path_and_query` on `authority` (its
/// `Host`), if it is on the same host and port; `None` otherwise.
pub(crate) fn same_origin_key(
    request_path_and_query: &str,
    authority: Option<&str>,
    reference: &str,
) -> Option<CacheKey> {
    let authority = authority.unwrap_or("edge.invalid");
    let base = Url::parse(&format!("http://{authority}{request_path_and_query}")).ok()?;
    let resolved = base.join(reference).ok()?;
    let same = resolved.host_str() == base.host_str()
        && resolved.port_or_known_default() == base.port_or_known_default()
        && resolved.username().is_empty();
    same.then(|| key_of_url(&resolved))
}

/// The upstream URL of `key`: the upstream base (no trailing slash) plus the
/// key verbatim.
pub(crate) fn upstream_url(upstream_base: &str, key: &CacheKey) -> Option<Url> {
    Url::parse(&format!("{upstream_base}{}", key.as_str())).ok()
}

/// The raw value of the `CMCD` query parameter, percent-decoded.
pub(crate) fn cmcd_query_value(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name.eq_ignore_ascii_case("cmcd"))
        .map(|(_, value)| value.into_owned())
}

fn key_of_url(url: &Url) -> CacheKey {
    let mut key = String::with_capacity(url.path().len() + url.query().map_or(0, str::len) + 1);
    key.push_str(url.path());
    if let Some(query) = url.query() {
        let mut params: Vec<&str> = query
            .split('&')
            .filter(|param| !param.is_empty() && !is_unkeyed(param))
            .collect();
        // Stable sort by name: repeated parameters keep their order, which
        // may matter to the upstream.
        params.sort_by(|a, b| param_name(a).cmp(param_name(b)));
        for (param_idx, param) in params.iter().enumerate() {
            key.push(if param_idx == 0 { '?' } else { '&' });
            key.push_str(param);
        }
    }
    CacheKey(Arc::from(key))
}

fn param_name(param: &str) -> &str {
    param.split_once('=').map_or(param, |(name, _)| name)
}

fn is_unkeyed(param: &str) -> bool {
    let raw_name = param_name(param);
    let name: String = url::form_urlencoded::parse(raw_name.as_bytes())
        .next()
        .map(|(name, _)| name.into_owned())
        .unwrap_or_default();
    name.eq_ignore_ascii_case("cmcd")
        || name.starts_with("_DASH_")
        || name == "_HLS_pathway"
        || name == "_HLS_throughput"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(target: &str, expected: Option<&str>) {
        let key = cache_key(target);
        assert_eq!(key.as_ref().map(CacheKey::as_str), expected, "{target:?}");
    }

    #[test]
    fn normalises_keys() {
        check("/v/a/seg-1.m4s", Some("/v/a/seg-1.m4s"));
        check("/v/a/seg.m4s?b=2&a=1", Some("/v/a/seg.m4s?a=1&b=2"));
        check("/v/a/seg.m4s?a=2&b=1&a=1", Some("/v/a/seg.m4s?a=2&a=1&b=1"));
        check(
            "/v/a/seg.m4s?CMCD=bl%3D2000%2Csid%3D%22x%22",
            Some("/v/a/seg.m4s"),
        );
        check("/v/a/seg.m4s?cmcd=x&z=1", Some("/v/a/seg.m4s?z=1"));
        check("/v/a/seg.m4s?%43MCD=x", Some("/v/a/seg.m4s"));
        check(
            "/v/a/x.m3u8?_HLS_pathway=%22eu%22&_HLS_throughput=5000000",
            Some("/v/a/x.m3u8"),
        );
        check(
            "/v/a/x.m3u8?_HLS_part=2&_HLS_msn=10&_HLS_skip=YES",
            Some("/v/a/x.m3u8?_HLS_msn=10&_HLS_part=2&_HLS_skip=YES"),
        );
        check(
            "/v/a/x.mpd?_DASH_pathway=a&_DASH_throughput=1",
            Some("/v/a/x.mpd"),
        );
        check("/v/a/seg.m4s?&&", Some("/v/a/seg.m4s"));
        check("/v/a/../b/seg.m4s", Some("/v/b/seg.m4s"));
        check("/v/a/./seg.m4s", Some("/v/a/seg.m4s"));
        check("/../../etc/passwd", Some("/etc/passwd"));
        check("//evil.example/x", Some("//evil.example/x"));
        check("http://evil.example/x", None);
        check("*", None);
    }

    #[test]
    fn upstream_url_is_base_plus_key() {
        let key = cache_key("//evil.example/x?b=1").expect("valid target");
        let url = upstream_url("http://127.0.0.1:9000", &key).expect("valid url");
        assert_eq!(url.host_str(), Some("127.0.0.1"));
        assert_eq!(url.as_str(), "http://127.0.0.1:9000//evil.example/x?b=1");
        let prefixed = upstream_url("http://origin.example/base", &key).expect("valid url");
        assert_eq!(prefixed.path(), "/base//evil.example/x");
    }

    #[test]
    fn resolves_next_object_requests() {
        let resolve = |relative| {
            resolve_relative("/v/a/720p/seg-10.m4s?CMCD=x", relative)
                .map(|key| key.as_str().to_owned())
        };
        assert_eq!(
            resolve("seg-11.m4s").as_deref(),
            Some("/v/a/720p/seg-11.m4s")
        );
        assert_eq!(
            resolve("../480p/seg-11.m4s").as_deref(),
            Some("/v/a/480p/seg-11.m4s")
        );
        assert_eq!(resolve("/v/b/x.m4s?q=1").as_deref(), Some("/v/b/x.m4s?q=1"));
        assert_eq!(resolve("http://other.example/x"), None);
        assert_eq!(resolve("//other.example/x"), None);
    }

    #[test]
    fn same_origin_locations_only() {
        let key = |authority, reference| {
            same_origin_key("/a/b?x=1", authority, reference).map(|key| key.as_str().to_owned())
        };
        assert_eq!(key(Some("edge:8081"), "c").as_deref(), Some("/a/c"));
        assert_eq!(
            key(Some("edge:8081"), "/d?z=2&y=1").as_deref(),
            Some("/d?y=1&z=2")
        );
        assert_eq!(
            key(Some("edge:8081"), "http://edge:8081/e").as_deref(),
            Some("/e")
        );
        assert_eq!(key(Some("edge:8081"), "http://edge:9000/e"), None);
        assert_eq!(key(Some("edge:8081"), "http://other.example/e"), None);
        assert_eq!(key(Some("edge"), "http://edge:80/f").as_deref(), Some("/f"));
        assert_eq!(key(None, "//other.example/g"), None);
    }

    #[test]
    fn extracts_cmcd_query_value() {
        assert_eq!(
            cmcd_query_value("a=1&CMCD=bl%3D300%2Cnor%3D%22s.m4s%22").as_deref(),
            Some("bl=300,nor=\"s.m4s\"")
        );
        assert_eq!(cmcd_query_value("a=1"), None);
    }
}
