//! Turns the fragments of a rendition's chunk files into one numbered track,
//! and re-checks an assembled track end to end.
//!
//! A segment is a fragment's bytes with `mfhd` set to the segment number.
//! When the encoder already numbered its fragments that way (ffmpeg
//! `-fragment_index N` for a chunk whose first segment is N), the segment is
//! a zero-copy slice of the chunk buffer. Otherwise the fragment is copied
//! once into a new buffer and its sequence number patched: a measured
//! multi-GB/s memcpy (see `examples/throughput.rs`), cheaper for callers than
//! handing out a header and a body to be written separately.

use bytes::{Bytes, BytesMut};

use crate::fragment::{check_sample_data, parse_moof, ParsedFile};
use crate::init::{parse_init_with_defaults, TrackKind};
use crate::reader::Boxes;
use crate::{CmafError, TrackInfo};

/// A rendition's media: one init segment and numbered media segments.
#[derive(Clone, Debug)]
pub struct Track {
    /// What the init segment says about the track.
    pub info: TrackInfo,
    /// The init segment (`ftyp+moov`), shared by every segment.
    pub init: Bytes,
    /// Media segments in order, numbered from 1.
    pub segments: Vec<Segment>,
    /// The `tfdt` of the first segment, in track timescale.
    pub first_decode_time: u64,
}

/// One media segment: `[styp] moof mdat` with `mfhd` set to its number.
#[derive(Clone, Debug)]
pub struct Segment {
    /// 1-based segment number, also the `mfhd` sequence number.
    pub number: u32,
    /// The `tfdt`, in track timescale.
    pub start: u64,
    /// The sum of sample durations, in track timescale.
    pub duration: u64,
    /// `data.len()`.
    pub size: u64,
    /// The number of samples (frames for video).
    pub sample_count: u32,
    /// For video, the bytes from the segment start to the end of the first
    /// (sync) sample: what an HLS I-frame playlist points at.
    pub iframe: Option<ByteRange>,
    /// The segment file's bytes.
    pub data: Bytes,
}

/// A byte range inside a segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte.
    pub offset: u64,
    /// The number of bytes.
    pub length: u64,
}

impl Track {
    /// The sum of segment durations, in track timescale.
    pub fn total_duration(&self) -> u64 {
        self.segments.iter().map(|segment| segment.duration).sum()
    }

    /// The sum of segment durations in seconds.
    pub fn total_duration_seconds(&self) -> f64 {
        self.total_duration() as f64 / f64::from(self.info.timescale)
    }

    /// Media bits per second over the whole track (segments only, not the
    /// init segment), rounded up; 0 for an empty track.
    pub fn average_bitrate(&self) -> u64 {
        let total_size = self.segments.iter().map(|segment| segment.size).sum();
        bits_per_second(total_size, self.total_duration(), self.info.timescale)
    }

    /// The highest bits per second of any single segment, rounded up.
    pub fn peak_bitrate(&self) -> u64 {
        self.segments
            .iter()
            .map(|segment| bits_per_second(segment.size, segment.duration, self.info.timescale))
            .max()
            .unwrap_or(0)
    }

    /// Joins a last segment shorter than half of the one before it to that
    /// segment, so no segment is shorter than half the target duration (a
    /// runt at the end is a gap to some players: hls.js never reaches
    /// `ended` after a 4 ms audio segment, issue 14). The joined segment
    /// holds both fragments, each with its own `moof` (a CMAF segment may
    /// hold several fragments), numbered `n` and `n + 1`; it may last up to
    /// 1.5 times the target. Returns whether it joined.
    pub fn join_short_last_segment(&mut self) -> bool {
        let n_segments = self.segments.len();
        if n_segments < 2 {
            return false;
        }
        let (last, previous) = (
            &self.segments[n_segments - 1],
            &self.segments[n_segments - 2],
        );
        if last.duration.saturating_mul(2) >= previous.duration {
            return false;
        }
        let last = self.segments.pop().expect("two segments were checked");
        let previous = self.segments.last_mut().expect("two segments were checked");
        let mut data = BytesMut::with_capacity(previous.data.len() + last.data.len());
        data.extend_from_slice(&previous.data);
        data.extend_from_slice(&last.data);
        previous.data = data.freeze();
        previous.size = previous.data.len() as u64;
        previous.duration += last.duration;
        previous.sample_count += last.sample_count;
        true
    }
}

/// Assembles the chunk files of one rendition, in order, into a track.
///
/// Checks that every chunk's init segment is byte-identical to chunk 0's,
/// that every video segment starts with a sync sample, and that each
/// segment's `tfdt` is where the previous one ends. Segments are numbered
/// 1..=N across all chunks and `mfhd` is rewritten to match.
pub fn assemble(chunks: Vec<ParsedFile>) -> Result<Track, CmafError> {
    let Some(first) = chunks.first() else {
        return Err(CmafError::NoChunks);
    };
    for (chunk_idx, chunk) in chunks.iter().enumerate().skip(1) {
        if chunk.init != first.init {
            return Err(CmafError::InitMismatch { chunk: chunk_idx });
        }
    }
    let is_video = matches!(first.info.kind, TrackKind::Video { .. });
    let n_segments: usize = chunks.iter().map(|chunk| chunk.fragments.len()).sum();
    let mut segments: Vec<Segment> = Vec::with_capacity(n_segments);
    let mut previous_end: Option<u64> = None;
    for (chunk_idx, chunk) in chunks.iter().enumerate() {
        for fragment in &chunk.fragments {
            let number = u32::try_from(segments.len() + 1).map_err(|_| CmafError::Unsupported {
                what: "more than 4294967295 segments".to_string(),
            })?;
            if is_video && !fragment.starts_with_sync() {
                return Err(CmafError::NotSync {
                    segment: number,
                    chunk: chunk_idx,
                });
            }
            let start = fragment.base_decode_time();
            if let Some(expected) = previous_end {
                if start != expected {
                    return Err(CmafError::Discontinuity {
                        segment: number,
                        chunk: chunk_idx,
                        expected,
                        found: start,
                    });
                }
            }
            previous_end = Some(start.checked_add(fragment.duration()).ok_or_else(|| {
                CmafError::SegmentMismatch {
                    segment: number,
                    reason: format!(
                        "tfdt {start} plus duration {} overflows",
                        fragment.duration()
                    ),
                }
            })?);
            let data = numbered_bytes(fragment.bytes(), fragment.sequence_number_offset(), number);
            segments.push(Segment {
                number,
                start,
                duration: fragment.duration(),
                size: data.len() as u64,
                sample_count: fragment.sample_count(),
                iframe: is_video.then(|| ByteRange {
                    offset: 0,
                    length: fragment.first_sample_offset()
                        + u64::from(fragment.first_sample_size()),
                }),
                data,
            });
        }
    }
    let first_decode_time = segments.first().map_or(0, |segment| segment.start);
    Ok(Track {
        info: first.info.clone(),
        init: first.init.clone(),
        segments,
        first_decode_time,
    })
}

/// The fragment with `mfhd` sequence number `number`: the same buffer when it
/// already says so, else a patched copy.
fn numbered_bytes(bytes: &Bytes, sequence_number_offset: usize, number: u32) -> Bytes {
    let wanted = number.to_be_bytes();
    let range = sequence_number_offset..sequence_number_offset + 4;
    if bytes[range.clone()] == wanted {
        return bytes.clone();
    }
    let mut copy = BytesMut::with_capacity(bytes.len());
    copy.extend_from_slice(bytes);
    copy[range].copy_from_slice(&wanted);
    copy.freeze()
}

/// Re-reads every segment's bytes and checks the track end to end.
///
/// The init segment must parse and match `track.info`; segment `n` must
/// carry `mfhd` sequence number `n` (its later fragments, if any, `n + 1`
/// and on) and a `tfdt` equal to its `start`; the
/// first segment must start at `expected_start` and each later one where the
/// previous one ends; sample durations must add up to `duration`; video
/// segments must start with a sync sample; and sample data must lie inside
/// the segment's `mdat`.
pub fn check_continuity(track: &Track, expected_start: u64) -> Result<(), CmafError> {
    let init = parse_init_with_defaults(&track.init)?;
    if init.info != track.info {
        return Err(CmafError::SegmentMismatch {
            segment: 0,
            reason: format!(
                "init segment describes {:?}, the track says {:?}",
                init.info, track.info
            ),
        });
    }
    let is_video = matches!(init.info.kind, TrackKind::Video { .. });
    let mut expected = expected_start;
    for (segment_idx, segment) in track.segments.iter().enumerate() {
        let number = segment_idx as u32 + 1;
        let mismatch = |reason: String| CmafError::SegmentMismatch {
            segment: number,
            reason,
        };
        if segment.number != number {
            return Err(mismatch(format!("numbered {}", segment.number)));
        }
        if segment.size != segment.data.len() as u64 {
            return Err(mismatch(format!(
                "size {} but {} bytes of data",
                segment.size,
                segment.data.len()
            )));
        }
        // The fragments of the segment: `moof mdat` pairs, usually one (two
        // after `Track::join_short_last_segment`).
        let mut fragments = Vec::with_capacity(1);
        let mut open_moof = None;
        for found in Boxes::new(&segment.data, 0) {
            let found = found?;
            if found.box_type.is(b"moof") {
                open_moof = Some(found);
            } else if found.box_type.is(b"mdat") {
                if let Some(moof) = open_moof.take() {
                    fragments.push((moof, found));
                }
            }
        }
        if fragments.is_empty() {
            return Err(mismatch("expected a moof followed by an mdat".to_string()));
        }
        let (segment_start, mut duration, mut sample_count) = (expected, 0u64, 0u32);
        for (fragment_idx, (moof, mdat)) in fragments.iter().enumerate() {
            let summary = parse_moof(moof, init.info.track_id, init.defaults)?;
            let wanted_number = number.saturating_add(fragment_idx as u32);
            if summary.sequence_number != wanted_number {
                return Err(mismatch(format!(
                    "mfhd sequence number {} in fragment {fragment_idx}, expected {wanted_number}",
                    summary.sequence_number
                )));
            }
            if summary.base_decode_time != expected {
                return Err(if segment_idx == 0 && fragment_idx == 0 {
                    CmafError::WrongStart {
                        expected,
                        found: summary.base_decode_time,
                    }
                } else {
                    CmafError::Discontinuity {
                        segment: number,
                        chunk: 0,
                        expected,
                        found: summary.base_decode_time,
                    }
                });
            }
            if is_video && !summary.starts_with_sync {
                return Err(CmafError::NotSync {
                    segment: number,
                    chunk: 0,
                });
            }
            check_sample_data(moof, &summary, mdat.start + mdat.header_len, mdat.end())?;
            expected = summary.base_decode_time.saturating_add(summary.duration);
            duration = duration.saturating_add(summary.duration);
            sample_count = sample_count.saturating_add(summary.sample_count);
        }
        if segment_start != segment.start
            || duration != segment.duration
            || sample_count != segment.sample_count
        {
            return Err(mismatch(format!(
                "bytes say start {segment_start} duration {duration} samples {sample_count}, metadata says start {} duration {} samples {}",
                segment.start,
                segment.duration,
                segment.sample_count
            )));
        }
    }
    Ok(())
}

/// `size` bytes over `duration` ticks, in bits per second, rounded up.
fn bits_per_second(size: u64, duration: u64, timescale: u32) -> u64 {
    if duration == 0 {
        return 0;
    }
    let bits_times_ticks = u128::from(size) * 8 * u128::from(timescale);
    let rate = bits_times_ticks.div_ceil(u128::from(duration));
    u64::try_from(rate).unwrap_or(u64::MAX)
}
