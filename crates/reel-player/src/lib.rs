//! reel's headless player: reads a reel video's HLS multivariant playlist (with `m3u8-rs`)
//! or DASH MPD (with `dash-mpd`), follows content steering (`EXT-X-CONTENT-STEERING`,
//! `BaseURL@serviceLocation`, `PATHWAY-PRIORITY` / `SERVICE-LOCATION-PRIORITY`; a pathway
//! whose requests fail is skipped), asks for each video segment with CMCD, picks each level
//! with an ABR algorithm of `reel-abr`, and reports start-up, stalls, switches and QoE.
//!
//! - [`ManifestLimits`] bound every manifest: its size, segments, renditions, pathways,
//!   template widths, `S@r` repeats and XML depth; playlists that reference themselves are
//!   refused. A hostile manifest ends in a [`ManifestError`], never a panic or unbounded
//!   memory.
//! - The ABR sees the first pathway's ladder and HEAD sizes; each segment is fetched from the
//!   ladder of the pathway being played (the ABR's bitrate mapped onto it), so failing over to
//!   a pathway with fewer renditions or segments never indexes out of range: playback ends
//!   when no pathway has the next segment.
//! - With a trace, downloads are shaped by `reel_abr::link::TraceLink` and the buffer follows
//!   `reel_abr::link::PlayerBuffer`, the simulator's own model, so the player's QoE can be
//!   compared with `reel abr simulate` on the same trace and sizes.
//!
//! Only video segments are fetched (the ABR decision is about video).

mod cmcd;
pub mod dash;
mod error;
mod fetch;
pub mod hls;
mod ladder;
mod limits;
mod model;
mod play;
mod steering;

pub use error::{ManifestError, PlayError};
pub use fetch::{fetch_text, segment_sizes};
pub use ladder::{load_ladder, load_manifest, media_playlist, video_from_url, PathwayLadder};
pub use limits::ManifestLimits;
pub use model::{Format, Manifest, MediaPlaylist, MediaSource, Rendition, SteeringTag};
pub use play::{play, PlayOptions, Report};
