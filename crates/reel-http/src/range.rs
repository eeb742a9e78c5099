//! Single byte ranges (RFC 9110 14): parsing against a body of known
//! length, and the `Content-Range` values of 206 and 416 answers.

use std::ops::Range;

use axum::http::HeaderValue;

/// How to answer a request's `Range` for a body of known length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeAnswer {
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
pub fn resolve_range(value: Option<&HeaderValue>, length: u64) -> RangeAnswer {
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

/// `Content-Range` of a 206 answer with `range` of a body of `length` bytes.
pub fn content_range(range: &Range<u64>, length: u64) -> HeaderValue {
    let text = format!(
        "bytes {}-{}/{length}",
        range.start,
        range.end.saturating_sub(1)
    );
    HeaderValue::from_str(&text).expect("digits are ASCII")
}

/// `Content-Range` of a 416 answer for a body of `length` bytes.
pub fn unsatisfiable_content_range(length: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("bytes */{length}")).expect("digits are ASCII")
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
    fn content_ranges() {
        assert_eq!(content_range(&(0..100), 1000), "bytes 0-99/1000");
        assert_eq!(unsatisfiable_content_range(10), "bytes */10");
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
}
