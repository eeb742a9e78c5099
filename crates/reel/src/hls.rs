//! Reading a reel video's HLS playlists over HTTP: the multivariant playlist
//! (steered or not), each rendition's media playlist, and the size of every
//! segment, for `reel play` and `reel abr simulate --video URL`.

use std::time::Duration;

use anyhow::Context;
use url::Url;

/// One video rendition on one pathway.
#[derive(Clone, Debug)]
pub struct Rendition {
    /// `PATHWAY-ID` (`.` when the playlist is not steered).
    pub pathway: String,
    /// Average bandwidth in bit/s (`AVERAGE-BANDWIDTH`, else `BANDWIDTH`).
    pub average_bandwidth: u64,
    /// The media playlist (for DASH, the MPD).
    pub playlist: Url,
    /// The media playlist already resolved (DASH: from the MPD's
    /// `SegmentTemplate`); `None` when it must be fetched from `playlist`.
    pub media: Option<MediaPlaylist>,
}

/// A multivariant playlist.
#[derive(Clone, Debug)]
pub struct Multivariant {
    /// Video renditions of every pathway, in playlist order.
    pub renditions: Vec<Rendition>,
    /// `EXT-X-CONTENT-STEERING`: the steering server and the initial pathway.
    pub steering: Option<(Url, Option<String>)>,
    /// Read from a DASH MPD (steering then speaks DASH: `_DASH_pathway`,
    /// `SERVICE-LOCATION-PRIORITY`, CMCD `sf=d`).
    pub dash: bool,
}

impl Multivariant {
    /// The pathways, in first-seen order.
    pub fn pathways(&self) -> Vec<String> {
        let mut pathways: Vec<String> = Vec::new();
        for rendition in &self.renditions {
            if !pathways.contains(&rendition.pathway) {
                pathways.push(rendition.pathway.clone());
            }
        }
        pathways
    }

    /// The renditions of one pathway, lowest average bandwidth first.
    pub fn ladder(&self, pathway: &str) -> Vec<Rendition> {
        let mut ladder: Vec<Rendition> = self
            .renditions
            .iter()
            .filter(|rendition| rendition.pathway == pathway)
            .cloned()
            .collect();
        ladder.sort_by_key(|rendition| rendition.average_bandwidth);
        ladder
    }
}

/// A media playlist: the init segment and every media segment.
#[derive(Clone, Debug)]
pub struct MediaPlaylist {
    /// `EXT-X-MAP`.
    pub init: Option<Url>,
    /// Each segment's URL and duration.
    pub segments: Vec<(Url, Duration)>,
}

/// The value of `NAME=` in an attribute list (quotes removed).
fn attribute(list: &str, name: &str) -> Option<String> {
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

/// Parses a multivariant playlist fetched from `base`.
pub fn parse_multivariant(text: &str, base: &Url) -> anyhow::Result<Multivariant> {
    anyhow::ensure!(
        text.trim_start().starts_with("#EXTM3U"),
        "not an HLS playlist (no #EXTM3U)"
    );
    let mut renditions = Vec::new();
    let mut steering = None;
    let mut pending: Option<&str> = None;
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        if let Some(list) = pending.take() {
            let number = |name: &str| attribute(list, name).and_then(|value| value.parse().ok());
            let bandwidth: u64 = number("BANDWIDTH").context("a variant has no BANDWIDTH")?;
            renditions.push(Rendition {
                pathway: attribute(list, "PATHWAY-ID").unwrap_or_else(|| ".".to_string()),
                average_bandwidth: number("AVERAGE-BANDWIDTH").unwrap_or(bandwidth),
                playlist: base
                    .join(line)
                    .with_context(|| format!("variant URI {line:?}"))?,
                media: None,
            });
        } else if let Some(list) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            pending = Some(list);
        } else if let Some(list) = line.strip_prefix("#EXT-X-CONTENT-STEERING:") {
            let server = attribute(list, "SERVER-URI")
                .context("EXT-X-CONTENT-STEERING without SERVER-URI")?;
            steering = Some((
                base.join(&server)
                    .with_context(|| format!("steering URI {server:?}"))?,
                attribute(list, "PATHWAY-ID"),
            ));
        }
    }
    anyhow::ensure!(!renditions.is_empty(), "the playlist lists no variant");
    Ok(Multivariant {
        renditions,
        steering,
        dash: false,
    })
}

/// Parses a media playlist fetched from `base`.
pub fn parse_media(text: &str, base: &Url) -> anyhow::Result<MediaPlaylist> {
    anyhow::ensure!(
        text.trim_start().starts_with("#EXTM3U"),
        "not an HLS playlist (no #EXTM3U)"
    );
    let mut init = None;
    let mut segments = Vec::new();
    let mut duration: Option<f64> = None;
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        if let Some(list) = line.strip_prefix("#EXT-X-MAP:") {
            let uri = attribute(list, "URI").context("EXT-X-MAP without URI")?;
            init = Some(
                base.join(&uri)
                    .with_context(|| format!("init URI {uri:?}"))?,
            );
        } else if let Some(value) = line.strip_prefix("#EXTINF:") {
            let seconds = value.split(',').next().unwrap_or_default();
            duration = Some(
                seconds
                    .parse()
                    .with_context(|| format!("EXTINF {seconds:?} is not a number"))?,
            );
        } else if !line.starts_with('#') {
            let seconds = duration.take().context("a segment without EXTINF")?;
            anyhow::ensure!(
                seconds.is_finite() && seconds > 0.0,
                "a segment lasts {seconds} s"
            );
            segments.push((
                base.join(line)
                    .with_context(|| format!("segment URI {line:?}"))?,
                Duration::from_secs_f64(seconds),
            ));
        }
    }
    anyhow::ensure!(!segments.is_empty(), "the media playlist has no segment");
    Ok(MediaPlaylist { init, segments })
}

/// GETs a text resource.
pub async fn fetch_text(client: &reqwest::Client, url: &Url) -> anyhow::Result<String> {
    let response = client
        .get(url.clone())
        .send()
        .await
        .with_context(|| format!("fetching {url}"))?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url} answered {}",
        response.status()
    );
    response
        .text()
        .await
        .with_context(|| format!("reading {url}"))
}

/// The size in bytes of every segment of `playlist` (HEAD requests).
pub async fn segment_sizes(
    client: &reqwest::Client,
    playlist: &MediaPlaylist,
) -> anyhow::Result<Vec<u64>> {
    let heads = playlist.segments.iter().map(|(url, _)| async move {
        let response = client
            .head(url.clone())
            .send()
            .await
            .with_context(|| format!("HEAD {url}"))?;
        anyhow::ensure!(
            response.status().is_success(),
            "HEAD {url} answered {}",
            response.status()
        );
        response
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())
            .with_context(|| format!("HEAD {url} gave no Content-Length"))
    });
    futures::future::try_join_all(heads).await
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
    fn steered_playlists_group_renditions_by_pathway() {
        let text = "#EXTM3U\n#EXT-X-CONTENT-STEERING:SERVER-URI=\"/v1/steering/x?proto=hls\",PATHWAY-ID=\"b\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=900,AVERAGE-BANDWIDTH=800,PATHWAY-ID=\"a\"\nhttp://a/v/x/480p/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=300,AVERAGE-BANDWIDTH=200,PATHWAY-ID=\"a\"\nhttp://a/v/x/240p/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=300,AVERAGE-BANDWIDTH=200,PATHWAY-ID=\"b\"\nhttp://b/v/x/240p/index.m3u8\n";
        let base = Url::parse("http://router/v1/videos/x/play.m3u8").expect("url");
        let parsed = parse_multivariant(text, &base).expect("parsed");
        assert_eq!(parsed.pathways(), ["a", "b"]);
        let (server, initial) = parsed.steering.clone().expect("steering");
        assert_eq!(server.as_str(), "http://router/v1/steering/x?proto=hls");
        assert_eq!(initial.as_deref(), Some("b"));
        let ladder = parsed.ladder("a");
        assert_eq!(ladder.len(), 2);
        assert_eq!(ladder[0].average_bandwidth, 200);
        assert_eq!(ladder[1].playlist.as_str(), "http://a/v/x/480p/index.m3u8");
        assert!(parse_multivariant("#EXTM3U\n", &base).is_err());
        assert!(parse_multivariant("junk", &base).is_err());
    }

    #[test]
    fn media_playlists_give_init_and_segments() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.000000,\nseg-00001.m4s\n#EXTINF:2.5,\nseg-00002.m4s\n#EXT-X-ENDLIST\n";
        let base = Url::parse("http://e/v/x/240p/index.m3u8").expect("url");
        let media = parse_media(text, &base).expect("parsed");
        assert_eq!(
            media.init.map(String::from).as_deref(),
            Some("http://e/v/x/240p/init.mp4")
        );
        assert_eq!(media.segments.len(), 2);
        assert_eq!(media.segments[1].1, Duration::from_millis(2500));
        assert!(parse_media("#EXTM3U\nseg.m4s\n", &base).is_err());
        assert!(parse_media("#EXTM3U\n#EXTINF:-1,\nseg.m4s\n", &base).is_err());
    }
}
