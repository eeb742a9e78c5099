//! Loading a manifest and one pathway's ladder, and mapping the ABR's level onto the ladder
//! of the pathway being played.

use reel_abr::video::{Bitrate, Video};
use url::Url;

use crate::error::{ManifestError, PlayError};
use crate::fetch::{fetch_text, segment_sizes};
use crate::limits::ManifestLimits;
use crate::model::{Manifest, MediaPlaylist, MediaSource, Rendition};
use crate::{dash, hls};

/// Reads the multivariant playlist or the MPD at `url`.
pub async fn load_manifest(
    client: &reqwest::Client,
    url: &Url,
    limits: &ManifestLimits,
) -> Result<Manifest, ManifestError> {
    let text = fetch_text(client, url, limits).await?;
    if dash::is_mpd(&text, url) {
        dash::parse_mpd(&text, url, limits)
    } else {
        hls::parse_multivariant(&text, url, limits)
    }
}

/// One rendition's media playlist: resolved from the MPD, or fetched and parsed.
pub async fn media_playlist(
    client: &reqwest::Client,
    rendition: &Rendition,
    limits: &ManifestLimits,
) -> Result<MediaPlaylist, ManifestError> {
    match &rendition.source {
        MediaSource::Dash(media, base) => media.resolve(base),
        MediaSource::Playlist(url) => {
            let text = fetch_text(client, url, limits).await?;
            hls::parse_media(&text, url, limits)
        }
    }
}

/// One pathway's renditions as played: media playlists and bandwidths, lowest first.
#[derive(Debug, Clone)]
pub struct PathwayLadder {
    /// Each rendition's segments.
    pub playlists: Vec<MediaPlaylist>,
    /// Each rendition's bandwidth in bit/s.
    pub bandwidths: Vec<u64>,
}

impl PathwayLadder {
    /// Fetches (or resolves) every media playlist of `pathway`.
    pub async fn load(
        client: &reqwest::Client,
        manifest: &Manifest,
        pathway: &str,
        limits: &ManifestLimits,
    ) -> Result<PathwayLadder, ManifestError> {
        let ladder = manifest.ladder(pathway);
        let mut playlists = Vec::with_capacity(ladder.len());
        for rendition in &ladder {
            playlists.push(media_playlist(client, rendition, limits).await?);
        }
        Ok(PathwayLadder {
            playlists,
            bandwidths: ladder.iter().map(|rendition| rendition.bandwidth).collect(),
        })
    }

    /// The rendition of this ladder for a target bitrate: the highest at or below it, else
    /// the lowest. Always an index of this ladder (which is never empty).
    pub fn rendition_for(&self, target_kbps: u64) -> usize {
        self.bandwidths
            .iter()
            .rposition(|&bps| bps / 1000 <= target_kbps)
            .unwrap_or(0)
    }
}

/// A pathway's media playlists and the video the ABR sees: bandwidths as the ladder, HEAD
/// sizes per segment (cut to the shortest rendition).
pub async fn load_ladder(
    client: &reqwest::Client,
    manifest: &Manifest,
    pathway: &str,
    limits: &ManifestLimits,
) -> Result<(PathwayLadder, Video), PlayError> {
    let ladder = PathwayLadder::load(client, manifest, pathway, limits).await?;
    let mut sizes = Vec::with_capacity(ladder.playlists.len());
    for playlist in &ladder.playlists {
        sizes.push(segment_sizes(client, playlist).await?);
    }
    let n_chunks = sizes.iter().map(Vec::len).min().unwrap_or(0);
    for level in &mut sizes {
        level.truncate(n_chunks);
    }
    let chunk_duration = ladder
        .playlists
        .first()
        .and_then(|playlist| playlist.segments.first())
        .map(|(_, duration)| *duration)
        .unwrap_or_default();
    let video = Video::new(
        ladder
            .bandwidths
            .iter()
            .map(|&bps| Bitrate::from_kbps(bps / 1000))
            .collect(),
        sizes,
        chunk_duration,
    )?;
    Ok((ladder, video))
}

/// The video of a reel multivariant playlist (or MPD) URL, for the simulator: the first
/// pathway's ladder and segment sizes, of H.264 when the manifest has several codecs.
pub async fn video_from_url(url: &str, limits: &ManifestLimits) -> Result<Video, PlayError> {
    let client = reqwest::Client::new();
    let url = Url::parse(url)
        .map_err(|error| PlayError::Options(format!("{url:?} is not a URL: {error}")))?;
    let mut manifest = load_manifest(&client, &url, limits).await?;
    manifest.keep_one_codec(None).map_err(PlayError::Options)?;
    let pathway = manifest.pathways().swap_remove(0);
    Ok(load_ladder(&client, &manifest, &pathway, limits).await?.1)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ladder(bandwidths: Vec<u64>) -> PathwayLadder {
        PathwayLadder {
            playlists: Vec::new(),
            bandwidths,
        }
    }

    #[test]
    fn the_same_ladder_maps_each_level_to_itself() {
        let bandwidths = vec![300_000, 750_000, 1_200_000];
        let same = ladder(bandwidths.clone());
        for (level, bps) in bandwidths.iter().enumerate() {
            assert_eq!(same.rendition_for(bps / 1000), level);
        }
        let fewer = ladder(vec![300_000, 750_000]);
        assert_eq!(fewer.rendition_for(1_200), 1);
        assert_eq!(fewer.rendition_for(100), 0);
    }

    proptest! {
        #[test]
        fn any_target_maps_into_any_ladder(
            mut bandwidths in prop::collection::vec(1u64..100_000_000, 1..10),
            target in any::<u64>(),
        ) {
            bandwidths.sort_unstable();
            let n = bandwidths.len();
            let chosen = ladder(bandwidths.clone()).rendition_for(target);
            prop_assert!(chosen < n);
            if bandwidths[chosen] / 1000 > target {
                prop_assert_eq!(chosen, 0);
            }
        }
    }
}
