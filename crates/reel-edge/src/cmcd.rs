//! Common Media Client Data (CTA-5004): parsing and per-session stats.
//!
//! Players send CMCD either as one `CMCD` query parameter or split over the
//! `CMCD-Object`, `CMCD-Request`, `CMCD-Session` and `CMCD-Status` headers;
//! both use the same `key[=value]` list syntax. Parsing never fails: keys
//! that are unknown or malformed are skipped.

use std::collections::HashMap;
use std::time::Instant;

use axum::http::HeaderMap;
use serde::Serialize;

/// Longest string value kept (CTA-5004 caps sid/cid at 64 characters).
const MAX_STRING_CHARS: usize = 256;
/// Sessions tracked at once; the least recently seen one makes room.
const MAX_SESSIONS: usize = 4096;

/// The CMCD keys the edge understands.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Cmcd {
    /// Encoded bitrate, kbps.
    pub(crate) br: Option<u64>,
    /// Buffer length, ms.
    pub(crate) bl: Option<u64>,
    /// Buffer starvation since the last request.
    pub(crate) bs: bool,
    /// Content id.
    pub(crate) cid: Option<String>,
    /// Object duration, ms.
    pub(crate) d: Option<u64>,
    /// Deadline, ms.
    pub(crate) dl: Option<u64>,
    /// Measured throughput, kbps.
    pub(crate) mtp: Option<u64>,
    /// Next object request: a URL relative to this request.
    pub(crate) nor: Option<String>,
    /// Next range request.
    pub(crate) nrr: Option<String>,
    /// Object type (m, a, v, av, i, c, tt, k, o).
    pub(crate) ot: Option<String>,
    /// Playback rate.
    pub(crate) pr: Option<f64>,
    /// Requested maximum throughput, kbps.
    pub(crate) rtp: Option<u64>,
    /// Streaming format (d, h, s, o).
    pub(crate) sf: Option<String>,
    /// Session id.
    pub(crate) sid: Option<String>,
    /// Stream type (v, l).
    pub(crate) st: Option<String>,
    /// Startup.
    pub(crate) su: bool,
    /// Top bitrate, kbps.
    pub(crate) tb: Option<u64>,
    /// CMCD version.
    pub(crate) v: Option<u64>,
}

/// CMCD of a request, from its query and headers; `None` when it has none.
pub(crate) fn cmcd_from_request(query_value: Option<&str>, headers: &HeaderMap) -> Option<Cmcd> {
    let mut cmcd = Cmcd::default();
    let mut found = false;
    if let Some(text) = query_value {
        parse_cmcd(text, &mut cmcd);
        found = true;
    }
    for name in ["cmcd-object", "cmcd-request", "cmcd-session", "cmcd-status"] {
        for value in headers.get_all(name) {
            if let Ok(text) = value.to_str() {
                parse_cmcd(text, &mut cmcd);
                found = true;
            }
        }
    }
    found.then_some(cmcd)
}

/// Parses one CMCD list into `cmcd`; later keys overwrite earlier ones.
pub(crate) fn parse_cmcd(text: &str, cmcd: &mut Cmcd) {
    for (key, value) in split_items(text) {
        let integer = || match &value {
            Value::Token(token) => token.parse::<u64>().ok(),
            _ => None,
        };
        let string = || match &value {
            Value::String(text) => Some(text.clone()),
            _ => None,
        };
        let token = || match &value {
            Value::Token(token) if !token.is_empty() => Some(token.clone()),
            _ => None,
        };
        let boolean = matches!(value, Value::True);
        match key {
            "br" => cmcd.br = integer().or(cmcd.br),
            "bl" => cmcd.bl = integer().or(cmcd.bl),
            "bs" => cmcd.bs = boolean,
            "cid" => cmcd.cid = string().or(cmcd.cid.take()),
            "d" => cmcd.d = integer().or(cmcd.d),
            "dl" => cmcd.dl = integer().or(cmcd.dl),
            "mtp" => cmcd.mtp = integer().or(cmcd.mtp),
            "nor" => cmcd.nor = string().or(cmcd.nor.take()),
            "nrr" => cmcd.nrr = string().or(cmcd.nrr.take()),
            "ot" => cmcd.ot = token().or(cmcd.ot.take()),
            "pr" => {
                cmcd.pr = match &value {
                    Value::Token(token) => {
                        token.parse::<f64>().ok().filter(|rate| rate.is_finite())
                    }
                    _ => None,
                }
                .or(cmcd.pr)
            }
            "rtp" => cmcd.rtp = integer().or(cmcd.rtp),
            "sf" => cmcd.sf = token().or(cmcd.sf.take()),
            "sid" => cmcd.sid = string().or(cmcd.sid.take()),
            "st" => cmcd.st = token().or(cmcd.st.take()),
            "su" => cmcd.su = boolean,
            "tb" => cmcd.tb = integer().or(cmcd.tb),
            "v" => cmcd.v = integer().or(cmcd.v),
            _ => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// A key without `=`: boolean true.
    True,
    String(String),
    Token(String),
}

/// Splits `k=v,k="s",k` into keys and values, honouring quotes and `\`
/// escapes inside them.
fn split_items(text: &str) -> Vec<(&str, Value)> {
    let mut items = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let key_end = rest.find([',', '=']).unwrap_or(rest.len());
        let key = rest[..key_end].trim();
        rest = &rest[key_end..];
        let value = if let Some(after_equals) = rest.strip_prefix('=') {
            let after_equals = after_equals.trim_start();
            if let Some(quoted) = after_equals.strip_prefix('"') {
                let mut value = String::new();
                let mut consumed = quoted.len();
                let mut escaped = false;
                for (char_idx, c) in quoted.char_indices() {
                    if escaped {
                        value.push(c);
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        consumed = char_idx + 1;
                        break;
                    } else {
                        value.push(c);
                    }
                }
                rest = &quoted[consumed..];
                let skip_to = rest.find(',').unwrap_or(rest.len());
                rest = &rest[skip_to..];
                Value::String(value.chars().take(MAX_STRING_CHARS).collect())
            } else {
                let value_end = after_equals.find(',').unwrap_or(after_equals.len());
                let token = after_equals[..value_end].trim();
                rest = &after_equals[value_end..];
                Value::Token(token.chars().take(MAX_STRING_CHARS).collect())
            }
        } else {
            Value::True
        };
        rest = rest.strip_prefix(',').unwrap_or(rest);
        if !key.is_empty() {
            items.push((key, value));
        }
    }
    items
}

/// What the edge remembers about one playback session.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SessionStats {
    pub(crate) content_id: Option<String>,
    pub(crate) requests: u64,
    pub(crate) buffer_starvations: u64,
    pub(crate) startups: u64,
    pub(crate) last_bitrate_kbps: Option<u64>,
    pub(crate) top_bitrate_kbps: Option<u64>,
    pub(crate) last_buffer_ms: Option<u64>,
    pub(crate) min_buffer_ms: Option<u64>,
    pub(crate) last_throughput_kbps: Option<u64>,
    pub(crate) last_object_type: Option<String>,
    pub(crate) streaming_format: Option<String>,
    pub(crate) stream_type: Option<String>,
    pub(crate) seconds_since_seen: u64,
    #[serde(skip)]
    last_seen: Option<Instant>,
}

/// Per-session stats, bounded to [`MAX_SESSIONS`] entries.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: HashMap<String, SessionStats>,
}

impl Sessions {
    pub(crate) fn record(&mut self, cmcd: &Cmcd, now: Instant) {
        let Some(session_id) = &cmcd.sid else {
            return;
        };
        if !self.by_id.contains_key(session_id) && self.by_id.len() >= MAX_SESSIONS {
            let oldest = self
                .by_id
                .iter()
                .min_by_key(|(_, stats)| stats.last_seen)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                self.by_id.remove(&oldest);
            }
        }
        let stats = self
            .by_id
            .entry(session_id.clone())
            .or_insert_with(|| SessionStats {
                content_id: None,
                requests: 0,
                buffer_starvations: 0,
                startups: 0,
                last_bitrate_kbps: None,
                top_bitrate_kbps: None,
                last_buffer_ms: None,
                min_buffer_ms: None,
                last_throughput_kbps: None,
                last_object_type: None,
                streaming_format: None,
                stream_type: None,
                seconds_since_seen: 0,
                last_seen: None,
            });
        stats.requests += 1;
        stats.buffer_starvations += u64::from(cmcd.bs);
        stats.startups += u64::from(cmcd.su);
        stats.last_seen = Some(now);
        if cmcd.cid.is_some() {
            stats.content_id.clone_from(&cmcd.cid);
        }
        if cmcd.br.is_some() {
            stats.last_bitrate_kbps = cmcd.br;
        }
        if cmcd.tb.is_some() {
            stats.top_bitrate_kbps = cmcd.tb;
        }
        if let Some(buffer_ms) = cmcd.bl {
            stats.last_buffer_ms = Some(buffer_ms);
            stats.min_buffer_ms = Some(stats.min_buffer_ms.map_or(buffer_ms, |m| m.min(buffer_ms)));
        }
        if cmcd.mtp.is_some() {
            stats.last_throughput_kbps = cmcd.mtp;
        }
        if cmcd.ot.is_some() {
            stats.last_object_type.clone_from(&cmcd.ot);
        }
        if cmcd.sf.is_some() {
            stats.streaming_format.clone_from(&cmcd.sf);
        }
        if cmcd.st.is_some() {
            stats.stream_type.clone_from(&cmcd.st);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// A copy of every session's stats, for the admin API.
    pub(crate) fn snapshot(&self, now: Instant) -> HashMap<String, SessionStats> {
        self.by_id
            .iter()
            .map(|(id, stats)| {
                let mut stats = stats.clone();
                stats.seconds_since_seen = stats
                    .last_seen
                    .map_or(0, |seen| now.saturating_duration_since(seen).as_secs());
                (id.clone(), stats)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn check(text: &str, expected: Cmcd) {
        let mut parsed = Cmcd::default();
        parse_cmcd(text, &mut parsed);
        assert_eq!(parsed, expected, "{text:?}");
    }

    #[test]
    fn parses_cmcd_lists() {
        check(
            "bl=31700,br=3200,bs,cid=\"faec5fc2-ac30-11ea-bb37-0242ac130002\",d=4004,mtp=10600,nor=\"..%2F300kbps%2Fsegment35.m4v\",ot=v,sf=d,sid=\"6e2fb550-c457-11e9-bb97-0800200c9a66\",st=v,su,tb=6000",
            Cmcd {
                bl: Some(31_700),
                br: Some(3_200),
                bs: true,
                cid: Some("faec5fc2-ac30-11ea-bb37-0242ac130002".into()),
                d: Some(4_004),
                mtp: Some(10_600),
                nor: Some("..%2F300kbps%2Fsegment35.m4v".into()),
                ot: Some("v".into()),
                sf: Some("d".into()),
                sid: Some("6e2fb550-c457-11e9-bb97-0800200c9a66".into()),
                st: Some("v".into()),
                su: true,
                tb: Some(6_000),
                ..Cmcd::default()
            },
        );
        check(
            "sid=\"a\\\"b,c\",pr=1.5,v=1",
            Cmcd {
                sid: Some("a\"b,c".into()),
                pr: Some(1.5),
                v: Some(1),
                ..Cmcd::default()
            },
        );
        check(
            "br=abc,bl=-5,sid=unquoted,nor=\"unterminated",
            Cmcd {
                nor: Some("unterminated".into()),
                ..Cmcd::default()
            },
        );
        check(
            " ,,=,x-custom=\"y\",pr=NaN,br=10",
            Cmcd {
                br: Some(10),
                ..Cmcd::default()
            },
        );
        check("", Cmcd::default());
    }

    #[test]
    fn parsing_survives_arbitrary_bytes() {
        let alphabet = ['a', 'b', '=', ',', '"', '\\', 's', 'i', 'd', '1', ' ', 'é'];
        let mut state = 1u64;
        for _ in 0..5_000 {
            let mut text = String::new();
            for _ in 0..(state % 24) {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                text.push(alphabet[(state >> 33) as usize % alphabet.len()]);
            }
            let mut cmcd = Cmcd::default();
            parse_cmcd(&text, &mut cmcd);
        }
    }

    #[test]
    fn merges_headers_and_query() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "cmcd-request",
            HeaderValue::from_static("bl=2100,mtp=25400,nor=\"seg-2.m4s\""),
        );
        headers.insert(
            "cmcd-session",
            HeaderValue::from_static("sid=\"s1\",cid=\"c1\",sf=h"),
        );
        headers.insert("cmcd-object", HeaderValue::from_static("br=3000,ot=v"));
        headers.insert("cmcd-status", HeaderValue::from_static("bs"));
        let cmcd = cmcd_from_request(Some("su"), &headers).expect("has cmcd");
        assert_eq!(cmcd.bl, Some(2_100));
        assert_eq!(cmcd.nor.as_deref(), Some("seg-2.m4s"));
        assert_eq!(cmcd.sid.as_deref(), Some("s1"));
        assert_eq!(cmcd.ot.as_deref(), Some("v"));
        assert!(cmcd.bs && cmcd.su);
        assert_eq!(cmcd_from_request(None, &HeaderMap::new()), None);
    }

    #[test]
    fn sessions_are_bounded() {
        let mut sessions = Sessions::default();
        let now = Instant::now();
        for session_idx in 0..(MAX_SESSIONS + 10) {
            let cmcd = Cmcd {
                sid: Some(format!("s{session_idx}")),
                bl: Some(100),
                ..Cmcd::default()
            };
            sessions.record(
                &cmcd,
                now + std::time::Duration::from_millis(session_idx as u64),
            );
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        let later = now + std::time::Duration::from_secs(60);
        let cmcd = Cmcd {
            sid: Some("s4100".into()),
            bl: Some(50),
            bs: true,
            ..Cmcd::default()
        };
        sessions.record(&cmcd, later);
        let snapshot = sessions.snapshot(later);
        assert!(
            !snapshot.contains_key("s0"),
            "the least recently seen session made room"
        );
        let stats = &snapshot["s4100"];
        assert_eq!(stats.requests, 2);
        assert_eq!(stats.min_buffer_ms, Some(50));
        assert_eq!(stats.buffer_starvations, 1);
    }
}
