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

impl Manifest {
    /// The pathways, in first-seen order (never empty for a parsed manifest).
    pub fn pathways(&self) -> Vec<String> {
        let mut pathways: Vec<String> = Vec::new();
        for rendition in &self.renditions {
            if !pathways.contains(&rendition.pathway) {
                pathways.push(rendition.pathway.clone());
            }
        }
        pathways
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
