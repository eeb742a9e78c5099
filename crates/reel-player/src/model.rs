//! What the player reads from a manifest: renditions per pathway, each with the media
//! playlist of its segments (fetched for HLS, resolved from the MPD for DASH).

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::dash::DashMedia;

/// The manifest's protocol; steering and CMCD speak it (`_HLS_*` or `_DASH_*`, `sf=h|d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An HLS multivariant playlist.
    Hls,
    /// A DASH MPD.
    Dash,
}

/// Where a rendition's segments are listed.
#[derive(Debug, Clone)]
pub enum MediaSource {
    /// An HLS media playlist to fetch.
    Playlist(Url),
    /// A DASH representation's `SegmentTemplate`, resolved against a pathway's base URL.
    Dash(Arc<DashMedia>, Url),
}

/// One video rendition on one pathway.
#[derive(Debug, Clone)]
pub struct Rendition {
    /// `PATHWAY-ID` or `BaseURL@serviceLocation` (`.` when the manifest is not steered).
    pub pathway: String,
    /// Bit/s: `AVERAGE-BANDWIDTH`, else `BANDWIDTH` (HLS), `Representation@bandwidth` (DASH).
    pub bandwidth: u64,
    /// The video codec's family, the sample entry of its RFC 6381 string (`avc1` of
    /// `avc1.64001f`, `av01`, `hvc1`); empty when the manifest names no codec.
    pub codec: String,
    /// Its segments.
    pub source: MediaSource,
}

/// `EXT-X-CONTENT-STEERING` or `<ContentSteering>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SteeringTag {
    /// The steering server.
    pub server: Url,
    /// The initial pathway (`PATHWAY-ID`, `defaultServiceLocation`).
    pub initial: Option<String>,
}

/// A multivariant playlist or an MPD.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Its protocol.
    pub format: Format,
    /// Video renditions of every pathway, in manifest order.
    pub renditions: Vec<Rendition>,
    /// Content steering, if any.
    pub steering: Option<SteeringTag>,
}

/// Sample entries of codecs that are not video, skipped when a `CODECS` list is read.
const NOT_VIDEO: [&str; 10] = [
    "mp4a", "ac-3", "ec-3", "ac-4", "opus", "Opus", "flac", "fLaC", "wvtt", "stpp",
];

/// The video codec family of an RFC 6381 list (`avc1.64001f,mp4a.40.2` → `avc1`): the
/// sample entry of its first entry that is not audio or text; empty when there is none.
pub(crate) fn video_codec_family(codecs: &str) -> String {
    codecs
        .split(',')
        .map(|codec| codec.trim().split('.').next().unwrap_or_default())
        .find(|entry| !entry.is_empty() && !NOT_VIDEO.contains(entry))
        .unwrap_or_default()
        .to_string()
}

/// H.264's sample entries: what every player decodes, so the default choice.
const H264: [&str; 2] = ["avc1", "avc3"];

impl Manifest {
    /// The video codec families of the manifest, in first-seen order.
    pub fn codecs(&self) -> Vec<String> {
        self.distinct(|rendition| &rendition.codec)
    }

    /// Keeps one codec's renditions, as a player that can switch bitrate but not codec
    /// mid-stream must (one decoder, one source buffer): `wanted` (`avc1`, `av01`, `hvc1`,
    /// …), else H.264 when the manifest has it, else its first codec. Returns the family
    /// kept; a `wanted` codec the manifest lacks is an error that lists what it has.
    pub fn keep_one_codec(&mut self, wanted: Option<&str>) -> Result<String, String> {
        let codecs = self.codecs();
        let chosen = match wanted {
            Some(wanted) => codecs
                .iter()
                .find(|codec| codec.eq_ignore_ascii_case(wanted))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "the manifest has no {wanted} video; its codecs: {}",
                        codecs.join(", ")
                    )
                })?,
            None => codecs
                .iter()
                .find(|codec| H264.contains(&codec.as_str()))
                .or_else(|| codecs.first())
                .cloned()
                .unwrap_or_default(),
        };
        self.renditions
            .retain(|rendition| rendition.codec == chosen);
        Ok(chosen)
    }

    /// The pathways, in first-seen order (never empty for a parsed manifest).
    pub fn pathways(&self) -> Vec<String> {
        self.distinct(|rendition| &rendition.pathway)
    }

    /// One field of every rendition, each value once, in first-seen order.
    fn distinct(&self, field: impl Fn(&Rendition) -> &String) -> Vec<String> {
        let mut values: Vec<String> = Vec::new();
        for rendition in &self.renditions {
            if !values.contains(field(rendition)) {
                values.push(field(rendition).clone());
            }
        }
        values
    }

    /// The renditions of one pathway, lowest bandwidth first.
    pub fn ladder(&self, pathway: &str) -> Vec<Rendition> {
        let mut ladder: Vec<Rendition> = self
            .renditions
            .iter()
            .filter(|rendition| rendition.pathway == pathway)
            .cloned()
            .collect();
        ladder.sort_by_key(|rendition| rendition.bandwidth);
        ladder
    }
}

/// A rendition's init segment and media segments.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    /// `EXT-X-MAP` or `SegmentTemplate@initialization`.
    pub init: Option<Url>,
    /// Each segment's URL and duration (never empty).
    pub segments: Vec<(Url, Duration)>,
}
