//! Uploaded caption files: SubRip (`.srt`) or WebVTT read, checked and
//! written back as one WebVTT file. An error names the line that is wrong.

use std::fmt::Write;

/// The WebVTT header line that places cues on the media's timeline for HLS
/// players (RFC 8216 3.5): reel's media start at 0.
pub const TIMESTAMP_MAP: &str = "X-TIMESTAMP-MAP=MPEGTS=0,LOCAL=00:00:00.000";

/// The most cues one file may hold.
pub const MAX_CUES: usize = 100_000;

/// One cue: from `start_ms` to `end_ms`, its text lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cue {
    /// Start, in milliseconds of the video.
    pub start_ms: u64,
    /// End, in milliseconds; not before the start.
    pub end_ms: u64,
    /// The text, lines joined with `\n`.
    pub text: String,
}

/// Why a caption file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CaptionError {
    /// The 1-based line where it went wrong (0: the file as a whole).
    pub line: usize,
    /// What was expected.
    pub message: String,
}

fn error(line: usize, message: impl Into<String>) -> CaptionError {
    CaptionError {
        line,
        message: message.into(),
    }
}

/// Parses a SubRip or WebVTT file (told apart by the `WEBVTT` header).
pub fn parse_captions(text: &str) -> Result<Vec<Cue>, CaptionError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .collect();
    let is_vtt = lines
        .first()
        .is_some_and(|first| first.starts_with("WEBVTT"));
    let mut cues = Vec::new();
    let mut line_idx = 0;
    if is_vtt {
        // The header block ends at the first blank line.
        while line_idx < lines.len() && !lines[line_idx].trim().is_empty() {
            line_idx += 1;
        }
    }
    while line_idx < lines.len() {
        if lines[line_idx].trim().is_empty() {
            line_idx += 1;
            continue;
        }
        let block_start = line_idx;
        let mut block_end = line_idx;
        while block_end < lines.len() && !lines[block_end].trim().is_empty() {
            block_end += 1;
        }
        let block = &lines[block_start..block_end];
        line_idx = block_end;
        if is_vtt
            && ["NOTE", "STYLE", "REGION"]
                .iter()
                .any(|kind| block[0].starts_with(kind))
        {
            continue;
        }
        // An identifier (SubRip's number, WebVTT's optional id) before the times.
        let timing_offset = usize::from(!block[0].contains("-->"));
        let Some(timing) = block.get(timing_offset) else {
            return Err(error(
                block_start + 1,
                format!("a cue number with no time range after it: {:?}", block[0]),
            ));
        };
        let timing_line = block_start + timing_offset + 1;
        if !is_vtt && timing_offset == 1 && block[0].trim().parse::<u64>().is_err() {
            return Err(error(
                block_start + 1,
                format!("expected a cue number, found {:?}", block[0]),
            ));
        }
        let (start, rest) = timing.split_once("-->").ok_or_else(|| {
            error(
                timing_line,
                format!(
                    "expected a time range such as 00:00:01,000 --> 00:00:02,500, found {timing:?}"
                ),
            )
        })?;
        let end = rest.split_whitespace().next().unwrap_or("");
        let start_ms = parse_time(start.trim()).ok_or_else(|| {
            error(
                timing_line,
                format!("{:?} is not a time such as 00:00:01,000", start.trim()),
            )
        })?;
        let end_ms = parse_time(end).ok_or_else(|| {
            error(
                timing_line,
                format!("{end:?} is not a time such as 00:00:02,500"),
            )
        })?;
        if end_ms < start_ms {
            return Err(error(timing_line, "the cue ends before it starts"));
        }
        let text: Vec<&str> = block[timing_offset + 1..].to_vec();
        if text.iter().any(|line| line.contains("-->")) {
            return Err(error(
                timing_line + 1,
                "a cue's text holds \"-->\": is a blank line missing before the next cue?",
            ));
        }
        cues.push(Cue {
            start_ms,
            end_ms,
            text: text.join("\n"),
        });
        if cues.len() > MAX_CUES {
            return Err(error(block_start + 1, format!("more than {MAX_CUES} cues")));
        }
    }
    if cues.is_empty() {
        return Err(error(
            0,
            "no cues: expected SubRip (1, a time range, text) or WebVTT",
        ));
    }
    Ok(cues)
}

/// `hh:mm:ss,mmm`, `hh:mm:ss.mmm` or `mm:ss.mmm` in milliseconds.
fn parse_time(text: &str) -> Option<u64> {
    let (clock, millis) = text.split_once([',', '.'])?;
    if millis.len() != 3 || !millis.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let parts: Vec<&str> = clock.split(':').collect();
    let (hours, minutes, seconds) = match parts.as_slice() {
        [hours, minutes, seconds] => (*hours, *minutes, *seconds),
        [minutes, seconds] => ("0", *minutes, *seconds),
        _ => return None,
    };
    let number = |part: &str, max: u64| {
        (!part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()))
            .then(|| part.parse::<u64>().ok())
            .flatten()
            .filter(|value| *value <= max)
    };
    let total = number(hours, 999)? * 3_600_000
        + number(minutes, 59)? * 60_000
        + number(seconds, 59)? * 1000
        + millis.parse::<u64>().ok()?;
    Some(total)
}

/// The cues as a WebVTT file, with [`TIMESTAMP_MAP`] in its header.
pub fn to_webvtt(cues: &[Cue]) -> String {
    let mut out = format!("WEBVTT\n{TIMESTAMP_MAP}\n");
    for cue in cues {
        let _ = write!(
            out,
            "\n{} --> {}\n{}\n",
            vtt_time(cue.start_ms),
            vtt_time(cue.end_ms),
            cue.text
        );
    }
    out
}

/// The cues cut into WebVTT segments of `durations_micros` (from t=0),
/// each a file of its own with [`TIMESTAMP_MAP`]: a segment holds every cue
/// that overlaps it, so a cue across a boundary is in both (RFC 8216 3.5);
/// a zero-length cue belongs to the segment it starts in. Cues after the
/// last segment end are in the last one.
pub fn segment_webvtt(cues: &[Cue], durations_micros: &[u64]) -> Vec<String> {
    let mut segments = Vec::with_capacity(durations_micros.len());
    let mut start_micros = 0u64;
    for (segment_idx, duration) in durations_micros.iter().enumerate() {
        let is_last = segment_idx + 1 == durations_micros.len();
        let end_micros = start_micros.saturating_add(*duration);
        let overlapping: Vec<Cue> = cues
            .iter()
            .filter(|cue| {
                let (cue_start, cue_end) = (cue.start_ms * 1000, cue.end_ms * 1000);
                let starts_before_end = cue_start < end_micros || is_last;
                let ends_after_start =
                    cue_end > start_micros || (cue_end == cue_start && cue_start >= start_micros);
                starts_before_end && ends_after_start
            })
            .cloned()
            .collect();
        segments.push(to_webvtt(&overlapping));
        start_micros = end_micros;
    }
    segments
}

fn vtt_time(ms: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subrip_and_webvtt_read_alike() {
        let srt = "1\r\n00:00:00,500 --> 00:00:01,500\r\nHello <b>there</b>\r\n\r\n2\r\n00:00:02,000 --> 00:00:03,000\r\nSecond\r\ncue\r\n";
        let vtt = "WEBVTT\n\nNOTE a comment\n\nintro\n00:00.500 --> 00:00:01.500 align:start\nHello <b>there</b>\n\n00:00:02.000 --> 00:00:03.000\nSecond\ncue\n";
        let from_srt = parse_captions(srt).expect("srt");
        assert_eq!(from_srt, parse_captions(vtt).expect("vtt"));
        assert_eq!(from_srt[1].text, "Second\ncue");
        assert_eq!(
            to_webvtt(&from_srt),
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS=0,LOCAL=00:00:00.000\n\n00:00:00.500 --> 00:00:01.500\nHello <b>there</b>\n\n00:00:02.000 --> 00:00:03.000\nSecond\ncue\n"
        );
    }

    #[test]
    fn segments_hold_the_cues_that_overlap_them() {
        let cue = |start_ms, end_ms, text: &str| Cue {
            start_ms,
            end_ms,
            text: text.to_string(),
        };
        let cues = [
            cue(500, 1500, "first"),
            cue(3500, 4500, "across"),
            cue(4004, 4004, "instant"),
            cue(9000, 9500, "late"),
        ];
        let segments = segment_webvtt(&cues, &[4_004_000, 4_004_000]);
        let texts: Vec<Vec<String>> = segments
            .iter()
            .map(|segment| {
                assert!(segment.starts_with(&format!("WEBVTT\n{TIMESTAMP_MAP}\n")));
                parse_captions(segment)
                    .map(|cues| cues.into_iter().map(|cue| cue.text).collect())
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(texts[0], ["first", "across"]);
        assert_eq!(texts[1], ["across", "instant", "late"]);
        // A segment without cues is a header alone.
        let empty = segment_webvtt(&cues[..1], &[2_000_000, 2_000_000]);
        assert_eq!(empty[1], format!("WEBVTT\n{TIMESTAMP_MAP}\n"));
    }

    #[test]
    fn errors_name_the_line() {
        let bad_time = "1\n00:00:01,000 --> 00:00:0X,000\ntext\n";
        assert_eq!(parse_captions(bad_time).unwrap_err().line, 2);
        let backwards = "1\n00:00:01,000 --> 00:00:00,500\ntext\n\n";
        let refused = parse_captions(backwards).unwrap_err();
        assert_eq!(
            (refused.line, refused.message.as_str()),
            (2, "the cue ends before it starts")
        );
        let missing_blank =
            "1\n00:00:01,000 --> 00:00:02,000\ntext\n2\n00:00:03,000 --> 00:00:04,000\n";
        assert_eq!(parse_captions(missing_blank).unwrap_err().line, 3);
        let not_a_number = "one\n00:00:01,000 --> 00:00:02,000\ntext\n";
        assert_eq!(parse_captions(not_a_number).unwrap_err().line, 1);
        assert_eq!(parse_captions("WEBVTT\n\n").unwrap_err().line, 0);
        assert!(parse_captions("\u{0}\u{1}binary").is_err());
    }
}
