//! Media time to text: exact tick arithmetic, rounded once to microseconds.
//!
//! Segment durations are written from cumulative times (end minus start,
//! each rounded to a microsecond) so that a playlist's durations add up to
//! the rendition's total within a microsecond however many segments it has;
//! rounding each duration alone would drift by up to 0.5 us per segment.

use crate::SegmentRef;

/// `ticks` in microseconds, rounded half up; 0 when `timescale` is 0.
pub(crate) fn micros(ticks: u64, timescale: u32) -> u64 {
    if timescale == 0 {
        return 0;
    }
    let timescale = u128::from(timescale);
    let rounded = (u128::from(ticks) * 1_000_000 + timescale / 2) / timescale;
    u64::try_from(rounded).unwrap_or(u64::MAX)
}

/// Microseconds as seconds with six decimals, e.g. `4.004000`.
pub(crate) fn seconds_text(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// Microseconds as an xs:duration, e.g. `PT32.032S`.
pub(crate) fn xs_duration(micros: u64) -> String {
    let text = seconds_text(micros);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("PT{text}S")
}

/// The duration of each listed interval in microseconds, each computed as
/// the difference of cumulative times from `origin`.
pub(crate) fn interval_micros(
    intervals: impl Iterator<Item = (u64, u64)>,
    origin: u64,
    timescale: u32,
) -> Vec<u64> {
    intervals
        .map(|(start, end)| {
            let start_micros = micros(start.saturating_sub(origin), timescale);
            let end_micros = micros(end.saturating_sub(origin), timescale);
            end_micros.saturating_sub(start_micros)
        })
        .collect()
}

/// The microsecond durations of `segments`, from cumulative times.
pub(crate) fn segment_micros(segments: &[SegmentRef], timescale: u32) -> Vec<u64> {
    let origin = segments.first().map_or(0, |segment| segment.start);
    interval_micros(
        segments.iter().map(|segment| {
            (
                segment.start,
                segment.start.saturating_add(segment.duration),
            )
        }),
        origin,
        timescale,
    )
}

/// RFC 8216 4.3.3.1: the target duration is at least every segment duration
/// rounded to the nearest integer; at least 1.
pub(crate) fn target_duration(durations_micros: &[u64]) -> u64 {
    durations_micros
        .iter()
        .map(|&duration| duration.saturating_add(500_000) / 1_000_000)
        .max()
        .unwrap_or(0)
        .max(1)
}

/// `bytes` over `micros`, in bits per second, rounded up; 0 for no time.
pub(crate) fn bits_per_second(bytes: u64, micros: u64) -> u64 {
    if micros == 0 {
        return 0;
    }
    let rate = (u128::from(bytes) * 8 * 1_000_000).div_ceil(u128::from(micros));
    u64::try_from(rate).unwrap_or(u64::MAX)
}
