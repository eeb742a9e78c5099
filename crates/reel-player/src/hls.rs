//! HLS playlists read with `m3u8-rs`: the multivariant playlist (steered or not:
//! `EXT-X-CONTENT-STEERING` comes through m3u8-rs' unknown tags, `PATHWAY-ID` through a
//! variant's other attributes) and the media playlists, both within [`ManifestLimits`].

use std::time::Duration;

use m3u8_rs::Playlist;
use url::Url;

use crate::error::ManifestError;
use crate::limits::ManifestLimits;
use crate::model::{
    video_codec_family, Format, Manifest, MediaPlaylist, MediaSource, Rendition, SteeringTag,
};

/// The value of `NAME=` in an attribute list (quotes removed).
pub(crate) fn attribute(list: &str, name: &str) -> Option<String> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((value, remainder)) => (value, remainder),
                None => (after, ""),
            }
        };
        if key.trim() == name {
            return Some(value.to_string());
        }
        rest = remainder;
    }
    None
}

/// Counts lines starting with `prefix`, before m3u8-rs builds a value per line.
fn count_lines(text: &str, prefix: &str) -> usize {
    text.lines()
        .filter(|line| line.trim_start().starts_with(prefix))
        .count()
}

fn parse(text: &str, url: &Url) -> Result<Playlist, ManifestError> {
    if !text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with("#EXTM3U")
    {
        return Err(ManifestError::invalid(
            url,
            "not an HLS playlist (no #EXTM3U)",
        ));
    }
    m3u8_rs::parse_playlist_res(text.as_bytes())
        .map_err(|_| ManifestError::invalid(url, "not a well-formed HLS playlist"))
}

fn join(url: &Url, reference: &str, what: &str) -> Result<Url, ManifestError> {
    url.join(reference)
        .map_err(|error| ManifestError::invalid(url, format!("{what} {reference:?}: {error}")))
}

/// Parses a multivariant playlist fetched from `url`.
pub fn parse_multivariant(
    text: &str,
    url: &Url,
    limits: &ManifestLimits,
) -> Result<Manifest, ManifestError> {
    let max_variants = limits.max_renditions * limits.max_pathways;
    let n_variants = count_lines(text, "#EXT-X-STREAM-INF");
    if n_variants > max_variants {
        return Err(ManifestError::limit(
            url,
            format!("{n_variants} variants, more than {max_variants}"),
        ));
    }
    let master = match parse(text, url)? {
        Playlist::MasterPlaylist(master) => master,
        Playlist::MediaPlaylist(_) => {
            return Err(ManifestError::invalid(
                url,
                "a media playlist, not a multivariant playlist",
            ))
        }
    };
    let mut renditions = Vec::new();
    for variant in master.variants.iter().filter(|variant| !variant.is_i_frame) {
        let playlist = join(url, &variant.uri, "variant URI")?;
        if playlist == *url {
            return Err(ManifestError::Loop {
                url: url.to_string(),
                reason: "the multivariant playlist lists itself as a variant".to_string(),
            });
        }
        let pathway = variant
            .other_attributes
            .as_ref()
            .and_then(|attributes| attributes.get("PATHWAY-ID"))
            .map_or_else(|| ".".to_string(), |id| id.as_str().to_string());
        renditions.push(Rendition {
            pathway,
            bandwidth: variant.average_bandwidth.unwrap_or(variant.bandwidth),
            codec: variant
                .codecs
                .as_deref()
                .map(video_codec_family)
                .unwrap_or_default(),
            source: MediaSource::Playlist(playlist),
        });
    }
    if renditions.is_empty() {
        return Err(ManifestError::invalid(url, "the playlist lists no variant"));
    }
    let steering = match master
        .unknown_tags
        .iter()
        .find(|tag| tag.tag == "X-CONTENT-STEERING")
    {
        Some(tag) => {
            let list = tag.rest.as_deref().unwrap_or_default();
            let server = attribute(list, "SERVER-URI").ok_or_else(|| {
                ManifestError::invalid(url, "EXT-X-CONTENT-STEERING without SERVER-URI")
            })?;
            Some(SteeringTag {
                server: join(url, &server, "steering URI")?,
                initial: attribute(list, "PATHWAY-ID"),
            })
        }
        None => None,
    };
    let manifest = Manifest {
        format: Format::Hls,
        renditions,
        steering,
    };
    check_ladders(&manifest, url, limits)?;
    Ok(manifest)
}

/// At most `max_pathways` pathways of at most `max_renditions` renditions each.
pub(crate) fn check_ladders(
    manifest: &Manifest,
    url: &Url,
    limits: &ManifestLimits,
) -> Result<(), ManifestError> {
    let pathways = manifest.pathways();
    if pathways.len() > limits.max_pathways {
        return Err(ManifestError::limit(
            url,
            format!(
                "{} pathways, more than {}",
                pathways.len(),
                limits.max_pathways
            ),
        ));
    }
    for pathway in &pathways {
        let n = manifest.ladder(pathway).len();
        if n > limits.max_renditions {
            return Err(ManifestError::limit(
                url,
                format!(
                    "pathway {pathway:?} has {n} renditions, more than {}",
                    limits.max_renditions
                ),
            ));
        }
    }
    Ok(())
}

/// Parses a media playlist fetched from `url`.
pub fn parse_media(
    text: &str,
    url: &Url,
    limits: &ManifestLimits,
) -> Result<MediaPlaylist, ManifestError> {
    let n_segments = count_lines(text, "#EXTINF");
    if n_segments > limits.max_segments {
        return Err(ManifestError::limit(
            url,
            format!("{n_segments} segments, more than {}", limits.max_segments),
        ));
    }
    let media = match parse(text, url)? {
        Playlist::MediaPlaylist(media) => media,
        Playlist::MasterPlaylist(_) => {
            return Err(ManifestError::Loop {
                url: url.to_string(),
                reason: "a variant's playlist is itself a multivariant playlist".to_string(),
            })
        }
    };
    let mut init = None;
    let mut segments = Vec::with_capacity(media.segments.len());
    for segment in &media.segments {
        if let Some(map) = &segment.map {
            if init.is_none() {
                init = Some(join(url, &map.uri, "init URI")?);
            }
        }
        let seconds = f64::from(segment.duration);
        if !(seconds.is_finite() && seconds > 0.0) {
            return Err(ManifestError::invalid(
                url,
                format!("a segment lasts {seconds} s"),
            ));
        }
        let segment_url = join(url, &segment.uri, "segment URI")?;
        if segment_url == *url {
            return Err(ManifestError::Loop {
                url: url.to_string(),
                reason: "the media playlist lists itself as a segment".to_string(),
            });
        }
        // EXTINF is read as f32: round to the microsecond it was written with.
        let micros = (seconds * 1e6).round() as u64;
        segments.push((segment_url, Duration::from_micros(micros)));
    }
    if segments.is_empty() {
        return Err(ManifestError::invalid(
            url,
            "the media playlist has no segment",
        ));
    }
    Ok(MediaPlaylist { init, segments })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_with_quotes_and_commas() {
        let list =
            "BANDWIDTH=500,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=640x360,PATHWAY-ID=\"eu\"";
        assert_eq!(attribute(list, "BANDWIDTH").as_deref(), Some("500"));
        assert_eq!(
            attribute(list, "CODECS").as_deref(),
            Some("avc1.64001e,mp4a.40.2")
        );
        assert_eq!(attribute(list, "PATHWAY-ID").as_deref(), Some("eu"));
        assert_eq!(attribute(list, "AUDIO"), None);
    }

    #[test]
    fn one_codec_is_kept_h264_unless_another_is_asked_for() {
        let text = "#EXTM3U\n\
#EXT-X-STREAM-INF:BANDWIDTH=600,AVERAGE-BANDWIDTH=500,CODECS=\"av01.0.05M.08,mp4a.40.2\"\nav1-360p/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=900,AVERAGE-BANDWIDTH=800,CODECS=\"avc1.64001e,mp4a.40.2\"\nh264-360p/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=300,AVERAGE-BANDWIDTH=200,CODECS=\"mp4a.40.2,avc1.64000d\"\nh264-180p/index.m3u8\n";
        let base = Url::parse("http://origin/v/x/master.m3u8").expect("url");
        let parsed = parse_multivariant(text, &base, &ManifestLimits::default()).expect("parsed");
        assert_eq!(parsed.codecs(), ["av01", "avc1"]);

        let mut h264 = parsed.clone();
        assert_eq!(h264.keep_one_codec(None).as_deref(), Ok("avc1"));
        let bandwidths: Vec<u64> = h264.ladder(".").iter().map(|r| r.bandwidth).collect();
        assert_eq!(bandwidths, [200, 800]);

        let mut av1 = parsed.clone();
        assert_eq!(av1.keep_one_codec(Some("av01")).as_deref(), Ok("av01"));
        assert_eq!(av1.renditions.len(), 1);
        assert_eq!(av1.renditions[0].bandwidth, 500);

        let mut missing = parsed;
        let error = missing.keep_one_codec(Some("hvc1")).expect_err("no HEVC");
        assert!(error.contains("av01, avc1"), "{error}");
    }

    #[test]
    fn steered_playlists_group_renditions_by_pathway() {
        let text = "#EXTM3U\n#EXT-X-CONTENT-STEERING:SERVER-URI=\"/v1/steering/x?proto=hls\",PATHWAY-ID=\"b\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=900,AVERAGE-BANDWIDTH=800,PATHWAY-ID=\"a\"\nhttp://a/v/x/480p/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=300,AVERAGE-BANDWIDTH=200,PATHWAY-ID=\"a\"\nhttp://a/v/x/240p/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=300,AVERAGE-BANDWIDTH=200,PATHWAY-ID=\"b\"\nhttp://b/v/x/240p/index.m3u8\n";
        let base = Url::parse("http://router/v1/videos/x/play.m3u8").expect("url");
        let limits = ManifestLimits::default();
        let parsed = parse_multivariant(text, &base, &limits).expect("parsed");
        assert_eq!(parsed.pathways(), ["a", "b"]);
        let steering = parsed.steering.clone().expect("steering");
        assert_eq!(
            steering.server.as_str(),
            "http://router/v1/steering/x?proto=hls"
        );
        assert_eq!(steering.initial.as_deref(), Some("b"));
        let ladder = parsed.ladder("a");
        assert_eq!(ladder.len(), 2);
        assert_eq!(ladder[0].bandwidth, 200);
        let MediaSource::Playlist(top) = &ladder[1].source else {
            panic!("an HLS rendition has a playlist URL");
        };
        assert_eq!(top.as_str(), "http://a/v/x/480p/index.m3u8");
        assert!(parse_multivariant("#EXTM3U\n", &base, &limits).is_err());
        assert!(parse_multivariant("junk", &base, &limits).is_err());
    }

    #[test]
    fn media_playlists_give_init_and_segments() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.004,\nseg-00001.m4s\n#EXTINF:2.5,\nseg-00002.m4s\n#EXT-X-ENDLIST\n";
        let base = Url::parse("http://e/v/x/240p/index.m3u8").expect("url");
        let limits = ManifestLimits::default();
        let media = parse_media(text, &base, &limits).expect("parsed");
        assert_eq!(
            media.init.map(String::from).as_deref(),
            Some("http://e/v/x/240p/init.mp4")
        );
        assert_eq!(media.segments.len(), 2);
        assert_eq!(media.segments[0].1, Duration::from_micros(4_004_000));
        assert_eq!(media.segments[1].1, Duration::from_millis(2500));
        assert!(parse_media("#EXTM3U\n#EXT-X-ENDLIST\n", &base, &limits).is_err());
        assert!(parse_media("#EXTM3U\n#EXTINF:-1,\nseg.m4s\n", &base, &limits).is_err());
    }

    #[test]
    fn self_references_and_oversized_playlists_are_refused() {
        let url = Url::parse("http://e/v/x/master.m3u8").expect("url");
        let limits = ManifestLimits::default();
        let itself = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nmaster.m3u8\n";
        assert!(matches!(
            parse_multivariant(itself, &url, &limits),
            Err(ManifestError::Loop { .. })
        ));
        // A variant whose playlist is a multivariant playlist again.
        assert!(matches!(
            parse_media(itself, &url.join("other.m3u8").expect("url"), &limits),
            Err(ManifestError::Loop { .. })
        ));
        let small = ManifestLimits {
            max_segments: 2,
            ..ManifestLimits::default()
        };
        let three = "#EXTM3U\n#EXTINF:4,\na\n#EXTINF:4,\nb\n#EXTINF:4,\nc\n";
        assert!(matches!(
            parse_media(three, &url, &small),
            Err(ManifestError::Limit { .. })
        ));
    }
}
