//! Writes HLS playlists and DASH MPDs for a packaged presentation.
//!
//! A [`Presentation`] lists the tracks of one video: its video renditions
//! (of any codecs), its audio renditions (one per language or mix) and its
//! text tracks (WebVTT captions), each with the timing, size and I-frame
//! byte range of every media segment. Five pure functions turn it into text:
//!
//! - [`hls_multivariant`]: `master.m3u8`, served at `/v/{video}/master.m3u8`;
//! - [`hls_media`]: a rendition's `{id}/index.m3u8`;
//! - [`hls_iframes`]: a video rendition's `{id}/iframes.m3u8`;
//! - [`hls_text`]: a text track's `{id}/index.m3u8`;
//! - [`dash_mpd`]: `manifest.mpd`, served at `/v/{video}/manifest.mpd`.
//!
//! All URIs are relative and follow one layout: a rendition lives in the
//! directory named by its id, with `init.mp4` and media segments
//! `seg-00001.m4s`, `seg-00002.m4s`, ... numbered from 1; a text track's
//! directory holds one `captions.vtt`.
//!
//! A new codec needs no change here (the codec string is data, and DASH
//! puts each codec family in an adaptation set of its own); a new track
//! kind is a new list in [`Presentation`] and its lines in each writer.
//!
//! **Architecture invariant:** this crate does no IO and nothing async; it
//! takes values and returns strings. It never opens media, and it never
//! panics, whatever the (possibly deserialized) input.
#![deny(missing_docs)]

pub mod captions;
mod dash;
mod hls;
pub mod paths;
mod timing;

pub use dash::dash_mpd;
pub use hls::{hls_iframes, hls_media, hls_multivariant, hls_text};

use reel_core::FrameRate;
use serde::{Deserialize, Deserializer, Serialize};

/// Everything the manifests of one video describe; stored as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presentation {
    /// The video renditions, in any order; manifests sort them by bandwidth.
    pub video: Vec<VideoRendition>,
    /// The audio renditions: none for a silent video, else one per
    /// language or mix; players start with the one marked default (the
    /// first when none is).
    #[serde(default, deserialize_with = "one_or_many")]
    pub audio: Vec<AudioRendition>,
    /// The text tracks (captions, subtitles), possibly none.
    #[serde(default)]
    pub text: Vec<TextTrack>,
    /// Whether every planned rendition is listed. The writers describe what
    /// is listed either way; the pipeline rewrites the manifests as
    /// renditions are added.
    pub complete: bool,
}

/// One packaged video rendition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoRendition {
    /// The rendition's name and directory, e.g. `720p`.
    pub id: String,
    /// The RFC 6381 codec string, e.g. `avc1.64001f`.
    pub codec: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The exact frame rate.
    pub frame_rate: FrameRate,
    /// Ticks per second of the segment times.
    pub timescale: u32,
    /// Bits per second over the whole rendition.
    pub average_bitrate: u64,
    /// The highest bits per second of any segment.
    pub peak_bitrate: u64,
    /// The media segments in order; segment `n` (1-based) is `seg-{n:05}.m4s`.
    pub segments: Vec<SegmentRef>,
}

/// One packaged audio rendition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioRendition {
    /// The rendition's directory, unique in the video: `audio` for a single
    /// track.
    pub id: String,
    /// The RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub codec: String,
    /// The BCP 47 or ISO 639 language of the source; manifests say `und`
    /// when it is unknown.
    pub language: Option<String>,
    /// The name players show in their audio menu.
    pub name: String,
    /// Whether players start with this one.
    #[serde(default)]
    pub default: bool,
    /// Channel count.
    pub channels: u32,
    /// Samples per second.
    pub sample_rate: u32,
    /// Ticks per second of the segment times.
    pub timescale: u32,
    /// Bits per second over the whole rendition.
    pub average_bitrate: u64,
    /// The highest bits per second of any segment.
    pub peak_bitrate: u64,
    /// The media segments in order.
    pub segments: Vec<SegmentRef>,
}

/// One text track: a whole WebVTT file, `{id}/captions.vtt` (what the MPD
/// lists), and the same cues cut on the media segments' boundaries,
/// `{id}/seg-00001.vtt`, … (what its HLS playlist lists).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextTrack {
    /// The track's directory, unique in the video, e.g. `text-en`.
    pub id: String,
    /// The BCP 47 language; manifests say `und` when it is unknown.
    pub language: Option<String>,
    /// The name players show in their captions menu.
    pub name: String,
    /// Whether players show it without being asked.
    #[serde(default)]
    pub default: bool,
    /// How long the track lasts, in microseconds: the video's duration.
    pub duration_micros: u64,
    /// The WebVTT file's size in bytes.
    pub size: u64,
    /// The duration of each WebVTT segment in microseconds, those of the
    /// media segments; empty for tracks written before captions were
    /// segmented, whose playlist lists the whole file.
    #[serde(default)]
    pub segments_micros: Vec<u64>,
}

impl Presentation {
    /// How long the presentation lasts, in microseconds: its longest track.
    pub fn duration_micros(&self) -> u64 {
        let media = self
            .video
            .iter()
            .map(|rendition| (&rendition.segments, rendition.timescale))
            .chain(
                self.audio
                    .iter()
                    .map(|audio| (&audio.segments, audio.timescale)),
            )
            .map(|(segments, timescale)| timing::segment_micros(segments, timescale).iter().sum());
        media
            .chain(self.text.iter().map(|track| track.duration_micros))
            .max()
            .unwrap_or(0)
    }

    /// The media segments' durations in microseconds, on which text tracks
    /// are cut: the first video rendition's (every rendition has the same
    /// boundaries), else the default audio's.
    pub fn segment_durations_micros(&self) -> Vec<u64> {
        match (self.video.first(), self.default_audio()) {
            (Some(video), _) => timing::segment_micros(&video.segments, video.timescale),
            (None, Some(audio)) => timing::segment_micros(&audio.segments, audio.timescale),
            (None, None) => Vec::new(),
        }
    }

    /// The audio rendition players start with: the one marked default, else
    /// the first.
    pub fn default_audio(&self) -> Option<&AudioRendition> {
        self.audio
            .iter()
            .find(|audio| audio.default)
            .or_else(|| self.audio.first())
    }
}

/// Presentations written before audio became a list hold `null` or one
/// object there.
fn one_or_many<'de, D>(deserializer: D) -> Result<Vec<AudioRendition>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<AudioRendition>),
        One(Box<AudioRendition>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::One(audio)) => vec![*audio],
        Some(OneOrMany::Many(audio)) => audio,
    })
}

/// One media segment of a rendition, in the rendition's timescale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRef {
    /// Decode time of the first sample (`tfdt`).
    pub start: u64,
    /// The segment's duration.
    pub duration: u64,
    /// The segment file's size in bytes.
    pub size: u64,
    /// For video, the bytes holding the `moof` and the first (sync) frame.
    pub iframe: Option<ByteRange>,
}

/// A byte range inside a segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    /// The first byte.
    pub offset: u64,
    /// The number of bytes.
    pub length: u64,
}

#[cfg(test)]
mod tests;
