//! Response freshness (RFC 9111, RFC 5861, RFC 9213): parses
//! `Cache-Control` and the targeted fields (`Reel-Cache-Control` or
//! another configured name, then `CDN-Cache-Control`) and decides whether
//! and for how long a response may be stored and reused.
//!
//! The first targeted field that is a valid structured-field dictionary
//! with at least one member wins, and then `Cache-Control` and `Expires`
//! are ignored by the edge (RFC 9213 2.2); they still reach the client
//! unchanged.
//!
//! Request `Cache-Control` is deliberately ignored: clients must not be able
//! to make the edge skip the cache and hammer the origin.

use std::time::{Duration, SystemTime};

use axum::http::{header, HeaderMap, HeaderName, StatusCode};

/// RFC 9111 1.2.2: a delta-seconds value that overflows is taken as 2^31.
const DELTA_SECONDS_MAX: u64 = 2_147_483_648;
/// Heuristic freshness (RFC 9111 4.2.2) is capped at one day.
const HEURISTIC_MAX: Duration = Duration::from_secs(86_400);
/// How long past its lifetime a stored response may stand in for an
/// upstream that cannot be reached (when `stale-if-error` allows less).
const STALE_WHEN_UNREACHABLE: Duration = Duration::from_secs(86_400);

/// The directives of a response's `Cache-Control` that the edge acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CacheControl {
    pub(crate) no_store: bool,
    pub(crate) no_cache: bool,
    pub(crate) private: bool,
    pub(crate) public: bool,
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
    /// `no-cache`: never served stale either, not even when the upstream
    /// is unreachable.
    pub(crate) no_cache: bool,
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
        no_cache: true,
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
    /// An upstream that answered with an error allows it inside the
    /// `stale-if-error` window; one that could not be reached at all
    /// (`disconnected`, RFC 9111 4.2.4) for up to a day past the lifetime
    /// too, unless the directives forbid serving stale.
    pub(crate) fn usable_on_error(&self, age: Duration, disconnected: bool) -> bool {
        if self.must_revalidate || self.no_cache {
            return false;
        }
        let window = match disconnected {
            true => self.stale_if_error.max(STALE_WHEN_UNREACHABLE),
            false => self.stale_if_error,
        };
        age < self.lifetime + window
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
                "public" => directives.public = true,
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

/// The header a CDN-targeted `Cache-Control` is read from (RFC 9213).
pub(crate) static CDN_CACHE_CONTROL: HeaderName = HeaderName::from_static("cdn-cache-control");

/// The configured rules the edge stores responses by.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// Caps the lifetime of 404/410 answers without explicit freshness
    /// (zero: those are not stored).
    pub(crate) error_ttl: Duration,
    /// This edge's own targeted field, preferred over `CDN-Cache-Control`.
    pub(crate) targeted_field: HeaderName,
    /// Request headers a stored response may `Vary` on; a `Vary` naming any
    /// other (but `Accept-Encoding`, which the edge neutralises) bypasses.
    pub(crate) vary_headers: Vec<HeaderName>,
}

/// Parses a targeted cache-control field (RFC 9213 2.1): a structured-field
/// dictionary (RFC 8941 3.2) over all its lines. `None` when the field is
/// absent, empty or not a valid dictionary: then it is ignored as a whole.
/// A known directive whose value has the wrong type is ignored.
pub(crate) fn parse_targeted(headers: &HeaderMap, name: &HeaderName) -> Option<CacheControl> {
    let mut text = String::new();
    for value in headers.get_all(name) {
        if !text.is_empty() {
            text.push(',');
        }
        text.push_str(value.to_str().ok()?);
    }
    let members = sf_dictionary(&text)?;
    if members.is_empty() {
        return None;
    }
    let mut directives = CacheControl::default();
    for (key, value) in members {
        let flag = value == SfValue::True;
        let seconds = match value {
            // Negative integers are not delta-seconds; ignore them.
            SfValue::Integer(n) if n >= 0 => {
                Some(Duration::from_secs((n as u64).min(DELTA_SECONDS_MAX)))
            }
            _ => None,
        };
        match key.as_str() {
            "no-store" if flag => directives.no_store = true,
            "no-cache" if flag || matches!(value, SfValue::Other) => directives.no_cache = true,
            "private" if flag || matches!(value, SfValue::Other) => directives.private = true,
            "public" if flag => directives.public = true,
            "must-revalidate" | "proxy-revalidate" if flag => directives.must_revalidate = true,
            "immutable" if flag => directives.immutable = true,
            "max-age" => directives.max_age = min_option(directives.max_age, seconds),
            "s-maxage" => directives.s_maxage = min_option(directives.s_maxage, seconds),
            "stale-while-revalidate" => {
                directives.stale_while_revalidate =
                    min_option(directives.stale_while_revalidate, seconds)
            }
            "stale-if-error" => {
                directives.stale_if_error = min_option(directives.stale_if_error, seconds)
            }
            _ => {}
        }
    }
    Some(directives)
}

/// The value of a dictionary member, as far as cache directives care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SfValue {
    True,
    Integer(i64),
    /// A string, token, decimal, byte sequence, `?0` or inner list.
    Other,
}

/// RFC 8941 4.2.2: parses a dictionary; `None` if it is not one. Later
/// duplicates of a key replace earlier ones, as the RFC says.
fn sf_dictionary(text: &str) -> Option<Vec<(String, SfValue)>> {
    let mut input = text.as_bytes();
    let mut members: Vec<(String, SfValue)> = Vec::new();
    skip(&mut input, b" ");
    while !input.is_empty() {
        let key = sf_key(&mut input)?;
        let value = if input.first() == Some(&b'=') {
            input = &input[1..];
            if input.first() == Some(&b'(') {
                sf_inner_list(&mut input)?;
                SfValue::Other
            } else {
                sf_bare_item(&mut input)?
            }
        } else {
            SfValue::True
        };
        sf_parameters(&mut input)?;
        members.retain(|(existing, _)| *existing != key);
        members.push((key, value));
        skip(&mut input, b" \t");
        if input.is_empty() {
            break;
        }
        if input[0] != b',' {
            return None;
        }
        input = &input[1..];
        skip(&mut input, b" \t");
        if input.is_empty() {
            // A trailing comma is invalid.
            return None;
        }
    }
    Some(members)
}

fn skip(input: &mut &[u8], bytes: &[u8]) {
    while input.first().is_some_and(|b| bytes.contains(b)) {
        *input = &input[1..];
    }
}

fn sf_key(input: &mut &[u8]) -> Option<String> {
    let first = *input.first()?;
    if !(first.is_ascii_lowercase() || first == b'*') {
        return None;
    }
    let length = input
        .iter()
        .position(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.*".contains(b)))
        .unwrap_or(input.len());
    let key = String::from_utf8(input[..length].to_vec()).ok()?;
    *input = &input[length..];
    Some(key)
}

fn sf_parameters(input: &mut &[u8]) -> Option<()> {
    while input.first() == Some(&b';') {
        *input = &input[1..];
        skip(input, b" ");
        sf_key(input)?;
        if input.first() == Some(&b'=') {
            *input = &input[1..];
            sf_bare_item(input)?;
        }
    }
    Some(())
}

fn sf_inner_list(input: &mut &[u8]) -> Option<()> {
    *input = &input[1..];
    loop {
        skip(input, b" ");
        match input.first()? {
            b')' => {
                *input = &input[1..];
                return sf_parameters(input);
            }
            _ => {
                sf_bare_item(input)?;
                sf_parameters(input)?;
                if !matches!(input.first(), Some(b' ' | b')')) {
                    return None;
                }
            }
        }
    }
}

fn sf_bare_item(input: &mut &[u8]) -> Option<SfValue> {
    let first = *input.first()?;
    let take = |input: &mut &[u8], length: usize| *input = &input[length..];
    match first {
        b'-' | b'0'..=b'9' => {
            let negative = first == b'-';
            let digits_start = usize::from(negative);
            let length = input[digits_start..]
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b'.'))
                .map_or(input.len(), |end| end + digits_start);
            let number = std::str::from_utf8(&input[digits_start..length]).ok()?;
            take(input, length);
            match number.split_once('.') {
                None if !number.is_empty() && number.len() <= 15 => {
                    let n: i64 = number.parse().ok()?;
                    Some(SfValue::Integer(if negative { -n } else { n }))
                }
                Some((whole, fraction))
                    if !whole.is_empty()
                        && whole.len() <= 12
                        && !fraction.is_empty()
                        && fraction.len() <= 3
                        && !fraction.contains('.') =>
                {
                    Some(SfValue::Other)
                }
                _ => None,
            }
        }
        b'"' => {
            let mut idx = 1;
            loop {
                match *input.get(idx)? {
                    b'\\' => {
                        if !matches!(input.get(idx + 1)?, b'"' | b'\\') {
                            return None;
                        }
                        idx += 2;
                    }
                    b'"' => break,
                    b if (0x20..0x7f).contains(&b) => idx += 1,
                    _ => return None,
                }
            }
            take(input, idx + 1);
            Some(SfValue::Other)
        }
        b':' => {
            let end = input[1..].iter().position(|b| *b == b':')? + 1;
            if !input[1..end]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b))
            {
                return None;
            }
            take(input, end + 1);
            Some(SfValue::Other)
        }
        b'?' => {
            let value = match input.get(1)? {
                b'1' => SfValue::True,
                b'0' => SfValue::Other,
                _ => return None,
            };
            take(input, 2);
            Some(value)
        }
        b if b.is_ascii_alphabetic() || b == b'*' => {
            let length = input
                .iter()
                .position(|b| !(b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(b)))
                .unwrap_or(input.len());
            take(input, length);
            Some(SfValue::Other)
        }
        _ => None,
    }
}

/// Why a response is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotStored {
    NoStore,
    Private,
    SetCookie,
    /// The request carried `Authorization` and the response does not say
    /// it may be shared (RFC 9111 3.5).
    Authorization,
    Vary,
    Status,
    NoFreshness,
}

impl NotStored {
    /// Whether the response is for its requester only: not handed to other
    /// waiters of the same fill either.
    pub(crate) fn is_private(self) -> bool {
        matches!(
            self,
            NotStored::NoStore
                | NotStored::Private
                | NotStored::SetCookie
                | NotStored::Authorization
        )
    }
}

/// The directives the edge obeys: those of the first targeted field that
/// is valid and not empty (the configured one, then `CDN-Cache-Control`),
/// else `Cache-Control`. The flag says whether a targeted field won.
pub(crate) fn edge_directives(
    headers: &HeaderMap,
    targeted_field: &HeaderName,
) -> (CacheControl, bool) {
    for name in [targeted_field, &CDN_CACHE_CONTROL] {
        if let Some(directives) = parse_targeted(headers, name) {
            return (directives, true);
        }
    }
    (parse_cache_control(headers), false)
}

/// RFC 9111 4.2.2: the statuses a cache may give heuristic freshness.
fn heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Decides whether a response from the upstream may be stored and, if so,
/// its freshness. `authorized` says the request carried `Authorization`.
/// Any final status but 206 and 304 is stored when its freshness is
/// explicit; without, only the heuristically cacheable ones are, and
/// 404/410 then live for `error_ttl` at most, so a briefly missing object
/// cannot stick.
pub(crate) fn storable_freshness(
    status: StatusCode,
    headers: &HeaderMap,
    rules: &Rules,
    authorized: bool,
    now: SystemTime,
) -> Result<Freshness, NotStored> {
    let (directives, targeted) = edge_directives(headers, &rules.targeted_field);
    if directives.no_store {
        return Err(NotStored::NoStore);
    }
    if directives.private {
        return Err(NotStored::Private);
    }
    if headers.contains_key(header::SET_COOKIE) {
        return Err(NotStored::SetCookie);
    }
    if authorized
        && !(directives.public || directives.must_revalidate || directives.s_maxage.is_some())
    {
        return Err(NotStored::Authorization);
    }
    if vary_names(headers).is_none_or(|names| {
        names
            .iter()
            .any(|name| !rules.vary_headers.iter().any(|allowed| allowed == name))
    }) {
        return Err(NotStored::Vary);
    }
    if status.is_informational()
        || status == StatusCode::PARTIAL_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Err(NotStored::Status);
    }
    let explicit = directives.s_maxage.or(directives.max_age).or_else(|| {
        // A targeted field replaces Expires as well as Cache-Control.
        (!targeted)
            .then(|| expires_lifetime(headers, now))
            .flatten()
    });
    let heuristic = heuristically_cacheable(status) || directives.public;
    let is_error = matches!(status, StatusCode::NOT_FOUND | StatusCode::GONE);
    let mut lifetime = match explicit {
        Some(lifetime) => lifetime,
        None if is_error => {
            if rules.error_ttl.is_zero() {
                return Err(NotStored::Status);
            }
            rules.error_ttl
        }
        None if heuristic => heuristic_lifetime(headers, now).unwrap_or(Duration::ZERO),
        None => return Err(NotStored::Status),
    };
    if directives.no_cache {
        lifetime = Duration::ZERO;
    }
    let guessed_error = is_error && explicit.is_none();
    let freshness = Freshness {
        lifetime,
        stale_while_revalidate: match guessed_error {
            true => Duration::ZERO,
            false => directives.stale_while_revalidate.unwrap_or(Duration::ZERO),
        },
        stale_if_error: match guessed_error {
            true => Duration::ZERO,
            false => directives.stale_if_error.unwrap_or(Duration::ZERO),
        },
        // RFC 9111 5.2.2.10: s-maxage implies proxy-revalidate.
        must_revalidate: directives.must_revalidate
            || directives.s_maxage.is_some()
            || guessed_error,
        no_cache: directives.no_cache,
    };
    let has_validator =
        headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED);
    if freshness.lifetime.is_zero() && freshness.stale_while_revalidate.is_zero() && !has_validator
    {
        return Err(NotStored::NoFreshness);
    }
    Ok(freshness)
}

/// The response's `Age` (RFC 9111 5.1), as the age it had when received.
/// `Age` is a single value: of a list (or of several lines) only the first
/// member counts, and an invalid one is ignored.
pub(crate) fn initial_age(headers: &HeaderMap) -> Duration {
    headers
        .get(header::AGE)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.split(',').next())
        .map(str::trim)
        .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .map(parse_delta_seconds)
        .unwrap_or(Duration::ZERO)
}

/// The request headers a response varies on (lower-case names), leaving
/// out `Accept-Encoding`, which the edge neutralises by always asking for
/// `identity`. `None` for `Vary: *` (or an unreadable `Vary`): it matches
/// no request.
pub(crate) fn vary_names(headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for value in headers.get_all(header::VARY) {
        for name in split_list(value.to_str().ok()?) {
            if name == "*" {
                return None;
            }
            let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
            if name != header::ACCEPT_ENCODING && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Some(names)
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
                public: true,
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

    fn rules(error_ttl: u64) -> Rules {
        Rules {
            error_ttl: Duration::from_secs(error_ttl),
            targeted_field: HeaderName::from_static("reel-cache-control"),
            vary_headers: vec![HeaderName::from_static("accept-language")],
        }
    }

    fn stored(
        status: StatusCode,
        pairs: &[(&str, &str)],
        authorized: bool,
    ) -> Result<Freshness, NotStored> {
        storable_freshness(
            status,
            &headers(pairs),
            &rules(5),
            authorized,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        )
    }

    fn freshness(pairs: &[(&str, &str)]) -> Result<Freshness, NotStored> {
        stored(StatusCode::OK, pairs, false)
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
        let lifetime = |status, pairs: &[(&str, &str)], error_ttl| {
            storable_freshness(
                status,
                &headers(pairs),
                &rules(error_ttl),
                false,
                SystemTime::now(),
            )
            .map(|f| f.lifetime)
        };
        let no_freshness: &[(&str, &str)] = &[("etag", "\"e\"")];
        let explicit: &[(&str, &str)] = &[("cache-control", "max-age=3600")];
        assert_eq!(
            lifetime(StatusCode::NOT_FOUND, no_freshness, 5),
            Ok(Duration::from_secs(5))
        );
        assert_eq!(
            lifetime(StatusCode::NOT_FOUND, no_freshness, 0),
            Err(NotStored::Status)
        );
        // Explicit freshness is honoured for every final status but 206/304.
        for status in [
            StatusCode::NOT_FOUND,
            StatusCode::BAD_REQUEST,
            StatusCode::FOUND,
            StatusCode::SERVICE_UNAVAILABLE,
        ] {
            assert_eq!(
                lifetime(status, explicit, 5),
                Ok(Duration::from_secs(3600)),
                "{status}"
            );
        }
        assert_eq!(
            lifetime(StatusCode::SERVICE_UNAVAILABLE, no_freshness, 5),
            Err(NotStored::Status)
        );
        assert_eq!(
            lifetime(StatusCode::PARTIAL_CONTENT, explicit, 5),
            Err(NotStored::Status)
        );
        assert_eq!(
            lifetime(StatusCode::NOT_MODIFIED, explicit, 5),
            Err(NotStored::Status)
        );
        // Heuristic freshness only for the statuses RFC 9111 4.2.2 lists.
        let modified: &[(&str, &str)] = &[
            ("date", "Mon, 12 Jan 1970 13:46:40 GMT"),
            ("last-modified", "Mon, 12 Jan 1970 13:30:00 GMT"),
        ];
        assert!(lifetime(StatusCode::NO_CONTENT, modified, 5).is_ok());
        assert_eq!(
            lifetime(StatusCode::FOUND, modified, 5),
            Err(NotStored::Status)
        );
    }

    #[test]
    fn age_is_the_first_value() {
        let age = |lines: &[&str]| {
            let pairs: Vec<(&str, &str)> = lines.iter().map(|line| ("age", *line)).collect();
            initial_age(&headers(&pairs)).as_secs()
        };
        assert_eq!(age(&["7200"]), 7200);
        assert_eq!(age(&["7200, 0"]), 7200);
        assert_eq!(age(&["0, 7200"]), 0);
        assert_eq!(age(&["7200", "0"]), 7200);
        assert_eq!(age(&["0", "7200"]), 0);
        for invalid in ["abc", "-7200", "7200.0", "7200;foo=bar", ""] {
            assert_eq!(age(&[invalid]), 0, "{invalid:?}");
        }
        assert_eq!(age(&["2147483649"]), DELTA_SECONDS_MAX);
        assert_eq!(age(&[]), 0);
    }

    #[test]
    fn targeted_fields_win_over_cache_control() {
        let edge = |pairs: &[(&str, &str)]| {
            edge_directives(
                &headers(pairs),
                &HeaderName::from_static("reel-cache-control"),
            )
        };
        let (directives, targeted) = edge(&[
            ("cache-control", "no-store"),
            ("cdn-cache-control", "max-age=10000"),
        ]);
        assert!(targeted && !directives.no_store);
        assert_eq!(directives.max_age, secs(10_000));
        // Ours is preferred over CDN-Cache-Control.
        let (directives, _) = edge(&[
            ("cdn-cache-control", "max-age=10"),
            ("reel-cache-control", "max-age=20, stale-if-error=5"),
        ]);
        assert_eq!(
            (directives.max_age, directives.stale_if_error),
            (secs(20), secs(5))
        );
        // An invalid dictionary is ignored as a whole.
        for invalid in [
            "max-age=10000, &&&&&",
            "MaX-aGe=3600",
            "max-age=1,",
            "max-age =1",
        ] {
            let (directives, targeted) = edge(&[
                ("cache-control", "no-store"),
                ("cdn-cache-control", invalid),
            ]);
            assert!(!targeted && directives.no_store, "{invalid:?}");
        }
        // A directive of the wrong type is ignored, the field still used.
        let (directives, targeted) = edge(&[
            ("cache-control", "max-age=60"),
            ("cdn-cache-control", "max-age=\"10000\""),
        ]);
        assert!(targeted);
        assert_eq!(directives.max_age, None);
        let (directives, _) = edge(&[(
            "cdn-cache-control",
            "foobar, private, no-cache=\"set-cookie\", max-age=99999999999, x;a=1;b=?0, y=(1 2)",
        )]);
        assert!(directives.private && directives.no_cache);
        assert_eq!(directives.max_age, secs(DELTA_SECONDS_MAX));
        // Multiple lines are one dictionary.
        let (directives, _) = edge(&[
            ("cdn-cache-control", "no-store"),
            ("cdn-cache-control", "max-age=5"),
        ]);
        assert!(directives.no_store);
        assert_eq!(directives.max_age, secs(5));
    }

    #[test]
    fn targeted_field_replaces_expires() {
        let lifetime = |pairs: &[(&str, &str)]| freshness(pairs).map(|f| f.lifetime);
        let date = ("date", "Mon, 12 Jan 1970 13:46:40 GMT");
        assert_eq!(
            lifetime(&[
                date,
                ("cdn-cache-control", "max-age=3600"),
                ("expires", "0")
            ]),
            Ok(Duration::from_secs(3600))
        );
        assert_eq!(
            lifetime(&[
                date,
                ("cdn-cache-control", "max-age=0"),
                ("expires", "Mon, 12 Jan 1970 16:46:40 GMT"),
                ("etag", "\"e\"")
            ]),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            freshness(&[
                ("cdn-cache-control", "private"),
                ("cache-control", "max-age=60")
            ]),
            Err(NotStored::Private)
        );
        let no_cache = freshness(&[
            ("cdn-cache-control", "no-cache"),
            ("cache-control", "max-age=60"),
            ("etag", "\"e\""),
        ]);
        assert_eq!(
            no_cache.map(|f| (f.lifetime, f.no_cache)),
            Ok((Duration::ZERO, true))
        );
    }

    #[test]
    fn authorization_needs_permission_to_share() {
        let auth = |cache_control| {
            stored(StatusCode::OK, &[("cache-control", cache_control)], true).map(|_| ())
        };
        assert_eq!(auth("max-age=60"), Err(NotStored::Authorization));
        assert!(NotStored::Authorization.is_private());
        assert_eq!(auth("max-age=60, public"), Ok(()));
        assert_eq!(auth("max-age=60, must-revalidate"), Ok(()));
        assert_eq!(auth("s-maxage=60"), Ok(()));
    }

    #[test]
    fn vary_only_on_configured_headers() {
        let vary =
            |value| freshness(&[("cache-control", "max-age=60"), ("vary", value)]).map(|_| ());
        assert_eq!(vary("Accept-Language"), Ok(()));
        assert_eq!(vary("accept-encoding, Accept-Language"), Ok(()));
        assert_eq!(vary(""), Ok(()));
        for bypassed in ["Origin", "*", "Accept-Language, *", ", *"] {
            assert_eq!(vary(bypassed), Err(NotStored::Vary), "{bypassed:?}");
        }
        assert_eq!(
            vary_names(&headers(&[
                ("vary", "Foo, Bar"),
                ("vary", "foo, Accept-Encoding")
            ])),
            Some(vec![
                HeaderName::from_static("foo"),
                HeaderName::from_static("bar")
            ])
        );
    }

    #[test]
    fn freshness_windows() {
        let policy = Freshness {
            lifetime: Duration::from_secs(2),
            stale_while_revalidate: Duration::from_secs(3),
            stale_if_error: Duration::from_secs(10),
            must_revalidate: false,
            no_cache: false,
        };
        assert_eq!(policy.state(Duration::from_secs(1)), FreshnessState::Fresh);
        assert_eq!(
            policy.state(Duration::from_secs(4)),
            FreshnessState::StaleWhileRevalidate
        );
        assert_eq!(policy.state(Duration::from_secs(5)), FreshnessState::Stale);
        assert!(policy.usable_on_error(Duration::from_secs(11), false));
        assert!(!policy.usable_on_error(Duration::from_secs(12), false));
        // Unreachable upstream: any age, unless the directives forbid stale.
        assert!(policy.usable_on_error(Duration::from_secs(1_000), true));
        assert!(!policy.usable_on_error(Duration::from_secs(86_402), true));
        let no_cache = Freshness {
            no_cache: true,
            ..policy
        };
        assert!(!no_cache.usable_on_error(Duration::from_secs(3), true));
        let strict = Freshness {
            must_revalidate: true,
            ..policy
        };
        assert_eq!(strict.state(Duration::from_secs(3)), FreshnessState::Stale);
        assert!(!strict.usable_on_error(Duration::from_secs(3), true));
    }
}
