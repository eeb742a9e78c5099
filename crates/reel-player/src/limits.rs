//! Bounds on what a manifest may ask of the player, so that a hostile manifest ends in a
//! [`crate::ManifestError`] instead of unbounded memory or time.

/// Bounds on manifests; [`ManifestLimits::default`] fits every reel video with room to spare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestLimits {
    /// The largest manifest body read, in bytes (8 MiB).
    pub max_bytes: usize,
    /// The most segments of one rendition (HLS media playlist or DASH timeline): 50,000, about
    /// 55 hours of 4 s segments.
    pub max_segments: usize,
    /// The most video renditions per pathway (64).
    pub max_renditions: usize,
    /// The most pathways (DASH `BaseURL`s, HLS `PATHWAY-ID`s): 32.
    pub max_pathways: usize,
    /// The widest `%0Nd` in a DASH template (32).
    pub max_number_width: usize,
    /// The largest `S@r` of a DASH timeline (the segment limit).
    pub max_repeat: u64,
    /// The deepest XML element nesting of an MPD (32; reel writes 6).
    pub max_xml_depth: usize,
}

impl Default for ManifestLimits {
    fn default() -> ManifestLimits {
        ManifestLimits {
            max_bytes: 8 * 1024 * 1024,
            max_segments: 50_000,
            max_renditions: 64,
            max_pathways: 32,
            max_number_width: 32,
            max_repeat: 50_000,
            max_xml_depth: 32,
        }
    }
}
