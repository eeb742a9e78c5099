//! Response freshness (RFC 9111, RFC 5861): parses `Cache-Control` and
//! decides whether and for how long a response may be stored and reused.
//!
//! Request `Cache-Control` is deliberately ignored: clients must not be able
//! to make the edge skip the cache and hammer the origin.

use std::time::{Duration, SystemTime};

use axum::http::{header, HeaderMap, StatusCode};

/// RFC 9111 1.2.2: a delta-seconds value that overflows is taken as 2^31.
const DELTA_SECONDS_MAX: u64 = 2_147_483_648;
/// Heuristic freshness (RFC 9111 4.2.2) is capped at one day.
const HEURISTIC_MAX: Duration = Duration::from_secs(86_400);

/// The directives of a response's `Cache-Control` that the edge acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CacheControl {
    pub(crate) no_store: bool,
    pub(crate) no_cache: bool,
    pub(crate) private: bool,
    pub(crate) must_revalidate: bool,
    pub(crate) immutable: bool,
    pub(crate) max_age: Option<Duration>,
    pub(crate) s_maxage: Option<Duration>,
    pub(crate) stale_while_revalidate: Option<Duration>,
    pub(crate) stale_if_error: Option<Duration>,
}

/// How long a stored response may be reused, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Freshness {
    /// Fresh while its age is below this.
    pub(crate) lifetime: Duration,
    /// Past `lifetime`, it may be served for this long while revalidating.
    pub(crate) stale_while_revalidate: Duration,
    /// Past `lifetime`, it may be served for this long if the upstream fails.
    pub(crate) stale_if_error: Duration,
    /// `must-revalidate`/`proxy-revalidate`/`s-maxage`: never served stale.
    pub(crate) must_revalidate: bool,
}

/// What a cached response's age allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FreshnessState {
    Fresh,
    /// Stale, but inside the stale-while-revalidate window.
    StaleWhileRevalidate,
    /// Stale: a validated answer from the upstream is needed.
    Stale,
}

impl Freshness {
    /// Freshness of a response that is not stored.
    pub(crate) const NONE: Freshness = Freshness {
        lifetime: Duration::ZERO,
        stale_while_revalidate: Duration::ZERO,
        stale_if_error: Duration::ZERO,
        must_revalidate: true,
    };

    pub(crate) fn state(&self, age: Duration) -> FreshnessState {
        if age < self.lifetime {
            FreshnessState::Fresh
        } else if !self.must_revalidate && age < self.lifetime + self.stale_while_revalidate {
            FreshnessState::StaleWhileRevalidate
        } else {
            FreshnessState::Stale
        }
    }

    /// Whether a response of this `age` may stand in for a failed upstream.
    pub(crate) fn usable_on_error(&self, age: Duration) -> bool {
        !self.must_revalidate && age < self.lifetime + self.stale_if_error
    }
}

/// Parses every `Cache-Control` field line of `headers` as one list.
/// Unknown directives are ignored; a repeated directive keeps its most
/// conservative value.
pub(crate) fn parse_cache_control(headers: &HeaderMap) -> CacheControl {
    let mut directives = CacheControl::default();
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(text) = value.to_str() else {
            // Unreadable directives could be no-store: assume the worst.
            directives.no_store = true;
            continue;
        };
        for item in split_list(text) {
            let (name, argument) = match item.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (item.trim(), None),
            };
            let seconds = || argument.map(parse_delta_seconds);
            match name.to_ascii_lowercase().as_str() {
                "no-store" => directives.no_store = true,
                // A field-name argument (`no-cache="Set-Cookie"`) is treated as
                // plain no-cache and `private="x"` as private: simpler, stricter.
                "no-cache" => directives.no_cache = true,
                "private" => directives.private = true,
                "must-revalidate" | "proxy-revalidate" => directives.must_revalidate = true,
                "immutable" => directives.immutable = true,
                "max-age" => directives.max_age = min_option(directives.max_age, seconds()),
                "s-maxage" => directives.s_maxage = min_option(directives.s_maxage, seconds()),
                "stale-while-revalidate" => {
                    directives.stale_while_revalidate =
                        min_option(directives.stale_while_revalidate, seconds())
                }
                "stale-if-error" => {
                    directives.stale_if_error = min_option(directives.stale_if_error, seconds())
                }
                _ => {}
            }
        }
    }
    directives
}

/// Why a response is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotStored {
    NoStore,
    Private,
    SetCookie,
    Vary,
    Status,
    NoFreshness,
}

/// Decides whether a response from the upstream may be stored and, if so,
/// its freshness. `error_ttl` caps the lifetime of cached 404/410 answers
/// (zero disables caching them), so a briefly missing object cannot stick.
pub(crate) fn storable_freshness(
    status: StatusCode,
    headers: &HeaderMap,
    error_ttl: Duration,
    now: SystemTime,
) -> Result<Freshness, NotStored> {
    let directives = parse_cache_control(headers);
    if directives.no_store {
        return Err(NotStored::NoStore);
    }
    if directives.private {
        return Err(NotStored::Private);
    }
    if headers.contains_key(header::SET_COOKIE) {
        return Err(NotStored::SetCookie);
    }
    if !vary_is_safe(headers) {
        return Err(NotStored::Vary);
    }
    let is_error = match status {
        StatusCode::OK => false,
        StatusCode::NOT_FOUND | StatusCode::GONE => true,
        _ => return Err(NotStored::Status),
    };
    let explicit = directives
        .s_maxage
        .or(directives.max_age)
        .or_else(|| expires_lifetime(headers, now));
    let mut lifetime = match explicit {
        Some(lifetime) => lifetime,
        None => heuristic_lifetime(headers, now).unwrap_or(Duration::ZERO),
    };
    if directives.no_cache {
        lifetime = Duration::ZERO;
    }
    let mut freshness = Freshness {
        lifetime,
        stale_while_revalidate: directives.stale_while_revalidate.unwrap_or(Duration::ZERO),
        stale_if_error: directives.stale_if_error.unwrap_or(Duration::ZERO),
        // RFC 9111 5.2.2.10: s-maxage implies proxy-revalidate.
        must_revalidate: directives.must_revalidate || directives.s_maxage.is_some(),
    };
    if is_error {
        if error_ttl.is_zero() {
            return Err(NotStored::Status);
        }
        freshness = Freshness {
            lifetime: if explicit.is_some() {
                lifetime.min(error_ttl)
            } else {
                error_ttl
            },
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            must_revalidate: true,
        };
    }
    let has_validator =
        headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED);
    if freshness.lifetime.is_zero() && freshness.stale_while_revalidate.is_zero() && !has_validator
    {
        return Err(NotStored::NoFreshness);
    }
    Ok(freshness)
}

/// The response's `Age` (RFC 9111 5.1), as the age it had when received.
pub(crate) fn initial_age(headers: &HeaderMap) -> Duration {
    headers
        .get(header::AGE)
        .and_then(|value| value.to_str().ok())
        .map(parse_delta_seconds)
        .unwrap_or(Duration::ZERO)
}

/// A `Vary` is safe to ignore when it names nothing, or only
/// `Accept-Encoding`: the edge always asks the upstream for `identity`.
fn vary_is_safe(headers: &HeaderMap) -> bool {
    headers.get_all(header::VARY).iter().all(|value| {
        value.to_str().is_ok_and(|text| {
            split_list(text).all(|name| {
                let name = name.trim();
                name.is_empty() || name.eq_ignore_ascii_case("accept-encoding")
            })
        })
    })
}

fn expires_lifetime(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let expires = headers.get(header::EXPIRES)?.to_str().ok()?;
    // RFC 9111 5.3: an invalid Expires means "already expired".
    let Some(expires) = reel_http::date::parse(expires) else {
        return Some(Duration::ZERO);
    };
    let date = header_date(headers, header::DATE).unwrap_or(now);
    Some(expires.duration_since(date).unwrap_or(Duration::ZERO))
}

fn heuristic_lifetime(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let last_modified = header_date(headers, header::LAST_MODIFIED)?;
    let date = header_date(headers, header::DATE).unwrap_or(now);
    let unchanged_for = date.duration_since(last_modified).ok()?;
    Some((unchanged_for / 10).min(HEURISTIC_MAX))
}

fn header_date(headers: &HeaderMap, name: header::HeaderName) -> Option<SystemTime> {
    reel_http::date::parse(headers.get(name)?.to_str().ok()?)
}

/// Splits a comma-separated header list, keeping commas inside quotes.
fn split_list(text: &str) -> impl Iterator<Item = &str> {
    let mut in_quotes = false;
    text.split(move |c: char| {
        if c == '"' {
            in_quotes = !in_quotes;
        }
        c == ',' && !in_quotes
    })
    .map(str::trim)
    .filter(|item| !item.is_empty())
}

fn parse_delta_seconds(text: &str) -> Duration {
    let text = text.trim().trim_matches('"');
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        // An invalid value is read as zero: the response is stale at once.
        return Duration::ZERO;
    }
    let seconds = text.parse::<u64>().unwrap_or(DELTA_SECONDS_MAX);
    Duration::from_secs(seconds.min(DELTA_SECONDS_MAX))
}

fn min_option(current: Option<Duration>, new: Option<Duration>) -> Option<Duration> {
    match (current, new) {
        (Some(current), Some(new)) => Some(current.min(new)),
        (current, new) => current.or(new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).expect("test header name"),
                HeaderValue::from_str(value).expect("test header value"),
            );
        }
        map
    }

    fn check(cache_control: &str, expected: CacheControl) {
        let parsed = parse_cache_control(&headers(&[("cache-control", cache_control)]));
        assert_eq!(parsed, expected, "{cache_control:?}");
    }

    fn secs(n: u64) -> Option<Duration> {
        Some(Duration::from_secs(n))
    }

    #[test]
    fn parses_directives() {
        check(
            "public, max-age=31536000, immutable",
            CacheControl {
                max_age: secs(31_536_000),
                immutable: true,
                ..CacheControl::default()
            },
        );
        check(
            "max-age=2, stale-while-revalidate=10, stale-if-error=60",
            CacheControl {
                max_age: secs(2),
                stale_while_revalidate: secs(10),
                stale_if_error: secs(60),
                ..CacheControl::default()
            },
        );
        check(
            "No-Store, PRIVATE",
            CacheControl {
                no_store: true,
                private: true,
                ..CacheControl::default()
            },
        );
        check(
            "s-maxage=\"30\", max-age=5, must-revalidate",
            CacheControl {
                s_maxage: secs(30),
                max_age: secs(5),
                must_revalidate: true,
                ..CacheControl::default()
            },
        );
        check(
            "no-cache=\"Set-Cookie, X-A\", max-age=9",
            CacheControl {
                no_cache: true,
                max_age: secs(9),
                ..CacheControl::default()
            },
        );
        check(
            "max-age=abc",
            CacheControl {
                max_age: secs(0),
                ..CacheControl::default()
            },
        );
        check(
            "max-age=99999999999999999999999",
            CacheControl {
                max_age: secs(DELTA_SECONDS_MAX),
                ..CacheControl::default()
            },
        );
        check(
            "max-age=60, max-age=10",
            CacheControl {
                max_age: secs(10),
                ..CacheControl::default()
            },
        );
        check(",,, ,", CacheControl::default());
    }

    fn freshness(pairs: &[(&str, &str)]) -> Result<Freshness, NotStored> {
        storable_freshness(
            StatusCode::OK,
            &headers(pairs),
            Duration::from_secs(5),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        )
    }

    #[test]
    fn decides_storability() {
        assert_eq!(
            freshness(&[("cache-control", "no-store, max-age=60")]),
            Err(NotStored::NoStore)
        );
        assert_eq!(
            freshness(&[("cache-control", "private, max-age=60")]),
            Err(NotStored::Private)
        );
        assert_eq!(
            freshness(&[("cache-control", "max-age=60"), ("set-cookie", "a=b")]),
            Err(NotStored::SetCookie)
        );
        assert_eq!(
            freshness(&[("cache-control", "max-age=60"), ("vary", "Origin")]),
            Err(NotStored::Vary)
        );
        assert_eq!(
            freshness(&[("cache-control", "max-age=60"), ("vary", "*")]),
            Err(NotStored::Vary)
        );
        assert!(freshness(&[("cache-control", "max-age=60"), ("vary", "Accept-Encoding")]).is_ok());
        assert_eq!(freshness(&[]), Err(NotStored::NoFreshness));
        let no_cache = freshness(&[("cache-control", "no-cache"), ("etag", "\"a\"")]);
        assert_eq!(no_cache.map(|f| f.lifetime), Ok(Duration::ZERO));
        let s_maxage = freshness(&[("cache-control", "max-age=5, s-maxage=50")]);
        assert_eq!(
            s_maxage.map(|f| (f.lifetime, f.must_revalidate)),
            Ok((Duration::from_secs(50), true))
        );
    }

    #[test]
    fn expires_and_heuristics() {
        let from_expires = freshness(&[
            ("date", "Mon, 12 Jan 1970 13:46:40 GMT"),
            ("expires", "Mon, 12 Jan 1970 13:47:40 GMT"),
        ]);
        assert_eq!(
            from_expires.map(|f| f.lifetime),
            Ok(Duration::from_secs(60))
        );
        let invalid_expires = freshness(&[("expires", "0"), ("etag", "\"x\"")]);
        assert_eq!(invalid_expires.map(|f| f.lifetime), Ok(Duration::ZERO));
        let heuristic = freshness(&[
            ("date", "Mon, 12 Jan 1970 13:46:40 GMT"),
            ("last-modified", "Mon, 12 Jan 1970 13:30:00 GMT"),
        ]);
        assert_eq!(heuristic.map(|f| f.lifetime), Ok(Duration::from_secs(100)));
    }

    #[test]
    fn errors_are_cached_briefly() {
        let long = storable_freshness(
            StatusCode::NOT_FOUND,
            &headers(&[("cache-control", "max-age=3600")]),
            Duration::from_secs(5),
            SystemTime::now(),
        );
        assert_eq!(long.map(|f| f.lifetime), Ok(Duration::from_secs(5)));
        let disabled = storable_freshness(
            StatusCode::NOT_FOUND,
            &headers(&[("cache-control", "max-age=3600")]),
            Duration::ZERO,
            SystemTime::now(),
        );
        assert_eq!(disabled, Err(NotStored::Status));
        let server_error = storable_freshness(
            StatusCode::SERVICE_UNAVAILABLE,
            &headers(&[("cache-control", "max-age=3600")]),
            Duration::from_secs(5),
            SystemTime::now(),
        );
        assert_eq!(server_error, Err(NotStored::Status));
        let partial = storable_freshness(
            StatusCode::PARTIAL_CONTENT,
            &headers(&[("cache-control", "max-age=3600")]),
            Duration::from_secs(5),
            SystemTime::now(),
        );
        assert_eq!(partial, Err(NotStored::Status));
    }

    #[test]
    fn freshness_windows() {
        let policy = Freshness {
            lifetime: Duration::from_secs(2),
            stale_while_revalidate: Duration::from_secs(3),
            stale_if_error: Duration::from_secs(10),
            must_revalidate: false,
        };
        assert_eq!(policy.state(Duration::from_secs(1)), FreshnessState::Fresh);
        assert_eq!(
            policy.state(Duration::from_secs(4)),
            FreshnessState::StaleWhileRevalidate
        );
        assert_eq!(policy.state(Duration::from_secs(5)), FreshnessState::Stale);
        assert!(policy.usable_on_error(Duration::from_secs(11)));
        assert!(!policy.usable_on_error(Duration::from_secs(12)));
        let strict = Freshness {
            must_revalidate: true,
            ..policy
        };
        assert_eq!(strict.state(Duration::from_secs(3)), FreshnessState::Stale);
        assert!(!strict.usable_on_error(Duration::from_secs(3)));
    }
}
