//! HTTP dates (RFC 9110 5.6.7), through the `httpdate` crate only.

use std::time::SystemTime;

use axum::http::HeaderValue;

/// Parses an HTTP date (IMF-fixdate and the two obsolete forms).
pub fn parse(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(text.trim()).ok()
}

/// Formats `time` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn format(time: SystemTime) -> String {
    httpdate::fmt_http_date(time)
}

/// `time` as a header value.
pub fn header_value(time: SystemTime) -> HeaderValue {
    HeaderValue::from_str(&format(time)).expect("an HTTP date is ASCII")
}

/// `time` without its fraction of a second: what a date header can say, so
/// what a conditional request compares against.
pub fn whole_seconds(time: SystemTime) -> SystemTime {
    SystemTime::from(httpdate::HttpDate::from(time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn round_trips_and_truncates() {
        let time = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(format(time), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse(" Sun, 06 Nov 1994 08:49:37 GMT "), Some(time));
        assert_eq!(parse("Sunday, 06-Nov-94 08:49:37 GMT"), Some(time));
        assert_eq!(parse("garbage"), None);
        assert_eq!(whole_seconds(time + Duration::from_millis(999)), time);
    }
}
