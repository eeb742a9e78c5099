//! Range requests and conditional requests answered by the edge itself
//! (RFC 9110 13 and 14), against a stored or streaming response.

use std::ops::Range;
use std::time::SystemTime;

use axum::http::{header, HeaderMap, HeaderValue};

use crate::cache_control::parse_http_date;

/// How to answer a request's `Range` for a body of known length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeAnswer {
    /// No usable range: send the whole body (200).
    Full,
    /// Send these bytes (206).
    Partial(Range<u64>),
    /// 416, with `Content-Range: bytes */length`.
    Unsatisfiable,
}

/// Resolves a `Range` header against a body of `length` bytes. Syntax the
/// edge does not handle (other units, several ranges, garbage) is ignored,
/// as RFC 9110 14.2 allows, and answered with the full body.
pub(crate) fn resolve_range(value: Option<&HeaderValue>, length: u64) -> RangeAnswer {
    let Some(text) = value.and_then(|value| value.to_str().ok()) else {
        return RangeAnswer::Full;
    };
    let Some(spec) = text.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeAnswer::Full;
    };
    let parse = |text: &str| -> Option<u64> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Overlong numbers are larger than any body: saturate.
        Some(text.parse::<u64>().unwrap_or(u64::MAX))
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (false, true) => match parse(first) {
            Some(start) if start < length => RangeAnswer::Partial(start..length),
            Some(_) => RangeAnswer::Unsatisfiable,
            None => RangeAnswer::Full,
        },
        (true, false) => match parse(last) {
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if length == 0 => RangeAnswer::Unsatisfiable,
            Some(suffix) => RangeAnswer::Partial(length.saturating_sub(suffix)..length),
            None => RangeAnswer::Full,
        },
        (false, false) => match (parse(first), parse(last)) {
            (Some(start), Some(end)) if end < start => RangeAnswer::Full,
            (Some(start), Some(_)) if start >= length => RangeAnswer::Unsatisfiable,
            (Some(start), Some(end)) => {
                RangeAnswer::Partial(start..end.saturating_add(1).min(length))
            }
            _ => RangeAnswer::Full,
        },
        (true, true) => RangeAnswer::Full,
    }
}

/// The validators of a response.
#[derive(Debug, Clone, Default)]
pub(crate) struct Validators {
    pub(crate) etag: Option<HeaderValue>,
    pub(crate) last_modified: Option<SystemTime>,
}

impl Validators {
    pub(crate) fn of(headers: &HeaderMap) -> Validators {
        Validators {
            etag: headers.get(header::ETAG).cloned(),
            last_modified: headers
                .get(header::LAST_MODIFIED)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_http_date),
        }
    }
}

/// Whether a GET/HEAD with these headers is answered 304 (RFC 9110 13.2.2:
/// `If-None-Match` wins over `If-Modified-Since`).
pub(crate) fn is_not_modified(request: &HeaderMap, validators: &Validators) -> bool {
    if let Some(if_none_match) = request.get(header::IF_NONE_MATCH) {
        let Ok(text) = if_none_match.to_str() else {
            return false;
        };
        if text.trim() == "*" {
            return true;
        }
        let Some(etag) = validators.etag.as_ref().and_then(|etag| etag.to_str().ok()) else {
            return false;
        };
        let etag = weak_form(etag);
        return text
            .split(',')
            .any(|candidate| weak_form(candidate) == etag);
    }
    let Some(since) = request
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_http_date)
    else {
        return false;
    };
    validators
        .last_modified
        .is_some_and(|last_modified| last_modified <= since)
}

/// Whether `If-Range` (if any) allows answering the `Range` (RFC 9110
/// 13.1.5: a strong ETag match, or an exact Last-Modified date).
pub(crate) fn if_range_allows(request: &HeaderMap, validators: &Validators) -> bool {
    let Some(value) = request.get(header::IF_RANGE) else {
        return true;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let text = text.trim();
    if text.starts_with('"') || text.starts_with("W/") {
        let Some(etag) = validators.etag.as_ref().and_then(|etag| etag.to_str().ok()) else {
            return false;
        };
        return !text.starts_with("W/") && !etag.trim().starts_with("W/") && text == etag.trim();
    }
    match (parse_http_date(text), validators.last_modified) {
        (Some(date), Some(last_modified)) => date == last_modified,
        _ => false,
    }
}

fn weak_form(tag: &str) -> &str {
    let tag = tag.trim();
    tag.strip_prefix("W/").unwrap_or(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(range: &str, length: u64, expected: RangeAnswer) {
        let value = HeaderValue::from_str(range).expect("test header value");
        assert_eq!(
            resolve_range(Some(&value), length),
            expected,
            "{range:?} of {length}"
        );
    }

    #[test]
    fn resolves_ranges() {
        check("bytes=0-99", 1000, RangeAnswer::Partial(0..100));
        check("bytes=990-2000", 1000, RangeAnswer::Partial(990..1000));
        check("bytes=100-", 1000, RangeAnswer::Partial(100..1000));
        check("bytes=-5", 1000, RangeAnswer::Partial(995..1000));
        check("bytes=-5000", 1000, RangeAnswer::Partial(0..1000));
        check("bytes=1000-", 1000, RangeAnswer::Unsatisfiable);
        check("bytes=1000-1001", 1000, RangeAnswer::Unsatisfiable);
        check("bytes=-0", 1000, RangeAnswer::Unsatisfiable);
        check("bytes=0-", 0, RangeAnswer::Unsatisfiable);
        check(
            "bytes=99999999999999999999999-",
            10,
            RangeAnswer::Unsatisfiable,
        );
        check(
            "bytes=0-99999999999999999999999",
            10,
            RangeAnswer::Partial(0..10),
        );
        check("bytes=9-3", 1000, RangeAnswer::Full);
        check("bytes=0-1,5-6", 1000, RangeAnswer::Full);
        check("items=0-1", 1000, RangeAnswer::Full);
        check("bytes=-", 1000, RangeAnswer::Full);
        check("bytes=a-b", 1000, RangeAnswer::Full);
        check("bytes=+1-2", 1000, RangeAnswer::Full);
        assert_eq!(resolve_range(None, 10), RangeAnswer::Full);
    }

    #[test]
    fn range_parsing_survives_arbitrary_input() {
        let alphabet = ['b', 'y', 't', 'e', 's', '=', '-', ',', '0', '9', ' ', '1'];
        let mut state = 7u64;
        for _ in 0..5_000 {
            let mut text = String::new();
            for _ in 0..(state % 16) {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                text.push(alphabet[(state >> 33) as usize % alphabet.len()]);
            }
            let Ok(value) = HeaderValue::from_str(&text) else {
                continue;
            };
            for length in [0, 1, 10, u64::MAX] {
                if let RangeAnswer::Partial(range) = resolve_range(Some(&value), length) {
                    assert!(range.start < range.end && range.end <= length, "{text:?}");
                }
            }
        }
    }

    fn request(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                name.clone(),
                HeaderValue::from_str(value).expect("test value"),
            );
        }
        map
    }

    #[test]
    fn answers_conditionals() {
        let validators = Validators {
            etag: Some(HeaderValue::from_static("\"abc\"")),
            last_modified: parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
        };
        let not_modified =
            |pairs: &[(header::HeaderName, &str)]| is_not_modified(&request(pairs), &validators);
        assert!(not_modified(&[(header::IF_NONE_MATCH, "\"abc\"")]));
        assert!(not_modified(&[(header::IF_NONE_MATCH, "\"x\", W/\"abc\"")]));
        assert!(not_modified(&[(header::IF_NONE_MATCH, "*")]));
        assert!(!not_modified(&[(header::IF_NONE_MATCH, "\"abd\"")]));
        assert!(not_modified(&[(
            header::IF_MODIFIED_SINCE,
            "Sun, 06 Nov 1994 08:49:37 GMT"
        )]));
        assert!(!not_modified(&[(
            header::IF_MODIFIED_SINCE,
            "Sat, 05 Nov 1994 08:49:37 GMT"
        )]));
        assert!(!not_modified(&[
            (header::IF_NONE_MATCH, "\"other\""),
            (header::IF_MODIFIED_SINCE, "Sun, 06 Nov 1994 08:49:37 GMT"),
        ]));
        assert!(!not_modified(&[(header::IF_MODIFIED_SINCE, "garbage")]));
        let if_range =
            |value: &str| if_range_allows(&request(&[(header::IF_RANGE, value)]), &validators);
        assert!(if_range("\"abc\""));
        assert!(!if_range("W/\"abc\""));
        assert!(!if_range("\"x\""));
        assert!(if_range("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert!(!if_range("Sun, 06 Nov 1994 08:49:38 GMT"));
        assert!(if_range_allows(&HeaderMap::new(), &validators));
    }
}
