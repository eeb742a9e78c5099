//! Validators and conditional requests (RFC 9110 13): `ETag`,
//! `Last-Modified`, `If-None-Match`, `If-Modified-Since` and `If-Range`.

use std::time::SystemTime;

use axum::http::{header, HeaderMap, HeaderValue};

use crate::date;
use crate::range::{resolve_range, RangeAnswer};

/// The validators of a response.
#[derive(Debug, Clone, Default)]
pub struct Validators {
    pub etag: Option<HeaderValue>,
    pub last_modified: Option<SystemTime>,
}

impl Validators {
    /// The validators a response with these headers carries.
    pub fn of(headers: &HeaderMap) -> Validators {
        Validators {
            etag: headers.get(header::ETAG).cloned(),
            last_modified: headers
                .get(header::LAST_MODIFIED)
                .and_then(|value| value.to_str().ok())
                .and_then(date::parse),
        }
    }

    /// Validators of a stored object: its ETag (quoted) and modification
    /// time, cut to the whole second a `Last-Modified` header can carry.
    pub fn new(etag: Option<HeaderValue>, last_modified: Option<SystemTime>) -> Validators {
        Validators {
            etag,
            last_modified: last_modified.map(date::whole_seconds),
        }
    }
}

/// Whether a GET/HEAD with these headers is answered 304 (RFC 9110 13.2.2:
/// `If-None-Match` wins over `If-Modified-Since`).
pub fn is_not_modified(request: &HeaderMap, validators: &Validators) -> bool {
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
        .and_then(date::parse)
    else {
        return false;
    };
    validators
        .last_modified
        .is_some_and(|last_modified| last_modified <= since)
}

/// Whether `If-Range` (if any) allows answering the `Range` (RFC 9110
/// 13.1.5: a strong ETag match, or an exact Last-Modified date).
pub fn if_range_allows(request: &HeaderMap, validators: &Validators) -> bool {
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
    match (date::parse(text), validators.last_modified) {
        (Some(date), Some(last_modified)) => date == last_modified,
        _ => false,
    }
}

fn weak_form(tag: &str) -> &str {
    let tag = tag.trim();
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// The range to answer for a complete (200) representation of `length`
/// bytes: `If-Range` first (a stale one gets the whole body), then `Range`.
/// Check [`is_not_modified`] before.
pub fn range_answer(request: &HeaderMap, validators: &Validators, length: u64) -> RangeAnswer {
    if if_range_allows(request, validators) {
        resolve_range(request.get(header::RANGE), length)
    } else {
        RangeAnswer::Full
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::date;

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
            last_modified: date::parse("Sun, 06 Nov 1994 08:49:37 GMT"),
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

    #[test]
    fn if_range_guards_the_range() {
        let validators = Validators::new(
            Some(HeaderValue::from_static("\"abc\"")),
            date::parse("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        let answer =
            |pairs: &[(header::HeaderName, &str)]| range_answer(&request(pairs), &validators, 10);
        assert_eq!(answer(&[]), RangeAnswer::Full);
        assert_eq!(
            answer(&[(header::RANGE, "bytes=2-3")]),
            RangeAnswer::Partial(2..4)
        );
        assert_eq!(
            answer(&[(header::RANGE, "bytes=20-")]),
            RangeAnswer::Unsatisfiable
        );
        assert_eq!(
            answer(&[(header::RANGE, "bytes=2-3"), (header::IF_RANGE, "\"old\"")]),
            RangeAnswer::Full
        );
        assert_eq!(
            answer(&[(header::RANGE, "bytes=2-3"), (header::IF_RANGE, "\"abc\"")]),
            RangeAnswer::Partial(2..4)
        );
    }
}
