//! The file names the manifests reference, relative to the video (the
//! multivariant playlist and the MPD) or to a rendition's directory (the
//! rest). Defined once here; the pipeline's object layout builds its keys
//! from them.

/// The multivariant HLS playlist.
pub const MULTIVARIANT: &str = "master.m3u8";
/// The DASH MPD.
pub const MPD: &str = "manifest.mpd";
/// A rendition's media playlist.
pub const MEDIA_PLAYLIST: &str = "index.m3u8";
/// A video rendition's I-frame playlist.
pub const IFRAME_PLAYLIST: &str = "iframes.m3u8";
/// A rendition's init segment.
pub const INIT_SEGMENT: &str = "init.mp4";
/// A text track's whole WebVTT file (the DASH sidecar).
pub const TEXT_FILE: &str = "captions.vtt";
/// The DASH `SegmentTemplate@media` pattern that yields [`segment_file_name`].
pub const DASH_SEGMENT_TEMPLATE: &str = "seg-$Number%05d$.m4s";

/// The media segment file name for 1-based segment `number`.
pub fn segment_file_name(number: usize) -> String {
    format!("seg-{number:05}.m4s")
}

/// A text track's WebVTT segment file for 1-based segment `number`.
pub fn text_segment_file_name(number: usize) -> String {
    format!("seg-{number:05}.vtt")
}
