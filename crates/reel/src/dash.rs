//! Reading a reel video's DASH MPD (the origin's `/v/{id}/manifest.mpd` or
//! the steered `/v1/videos/{id}/play.mpd`) into the structures `reel play`
//! already uses for HLS: one [`Rendition`] per video `Representation` and
//! pathway, each carrying its [`MediaPlaylist`] resolved up front from the
//! `SegmentTemplate` and `SegmentTimeline` against the pathway's `BaseURL`.
//!
//! - Pathways are the MPD-level `<BaseURL serviceLocation="...">` elements;
//!   with none, there is one pathway `.` whose base is the MPD's URL.
//! - `<ContentSteering defaultServiceLocation="...">URI</ContentSteering>`
//!   gives the steering server and the initial pathway.
//! - Only video adaptation sets are read (`contentType="video"` or a
//!   `video/` MIME type), as the HLS path reads only video variants.
//! - A rendition's bandwidth is the `Representation@bandwidth` (a peak, as
//!   reel writes it: the MPD has no average).
//! - Templates may use `$RepresentationID$`, `$Number$`, `$Time$` and
//!   `$Bandwidth$` (with `%0Nd` widths) and `$$`; `SegmentTemplate` may sit
//!   on the adaptation set or the representation. `BaseURL` below the MPD
//!   level, `SegmentBase`, `SegmentList` and negative `S@r` are not
//!   supported (reel writes none of them) and are reported as errors.

use std::time::Duration;

use anyhow::Context;
use quick_xml::events::{BytesStart, Event};
use url::Url;

use crate::hls::{MediaPlaylist, Multivariant, Rendition};

/// Whether a fetched manifest is an MPD: it starts with `<?xml` or holds
/// `<MPD`, or (when it is not an HLS playlist) its path names a `.mpd`.
pub fn is_mpd(text: &str, url: &Url) -> bool {
    let head = text.trim_start_matches('\u{feff}').trim_start();
    if head.starts_with("#EXTM3U") {
        return false;
    }
    head.starts_with("<?xml") || text.contains("<MPD") || url.path().contains(".mpd")
}

/// One `S` of a `SegmentTimeline`.
#[derive(Clone, Copy, Debug)]
struct Entry {
    t: Option<u64>,
    d: u64,
    r: u64,
}

/// A `SegmentTemplate`; unset fields inherit from the adaptation set's.
#[derive(Clone, Debug, Default)]
struct Template {
    timescale: Option<u64>,
    initialization: Option<String>,
    media: Option<String>,
    start_number: Option<u64>,
    timeline: Option<Vec<Entry>>,
}

impl Template {
    fn inherit(self, parent: &Template) -> Template {
        Template {
            timescale: self.timescale.or(parent.timescale),
            initialization: self
                .initialization
                .or_else(|| parent.initialization.clone()),
            media: self.media.or_else(|| parent.media.clone()),
            start_number: self.start_number.or(parent.start_number),
            timeline: self.timeline.or_else(|| parent.timeline.clone()),
        }
    }
}

/// A video `Representation`.
#[derive(Debug)]
struct Representation {
    id: String,
    bandwidth: u64,
    template: Option<Template>,
}

/// An `AdaptationSet` being read.
#[derive(Debug, Default)]
struct AdaptationSet {
    video: bool,
    template: Option<Template>,
    representations: Vec<Representation>,
}

fn attribute(element: &BytesStart<'_>, name: &str) -> anyhow::Result<Option<String>> {
    for attribute in element.attributes() {
        let attribute = attribute.context("a malformed XML attribute")?;
        if attribute.key.local_name().as_ref() == name.as_bytes() {
            return Ok(Some(
                attribute
                    .unescape_value()
                    .context("a malformed XML attribute value")?
                    .into_owned(),
            ));
        }
    }
    Ok(None)
}

fn number(element: &BytesStart<'_>, name: &str) -> anyhow::Result<Option<u64>> {
    attribute(element, name)?
        .map(|value| {
            value
                .trim()
                .parse::<u64>()
                .with_context(|| format!("{name}={value:?} is not a whole number"))
        })
        .transpose()
}

/// Expands `$RepresentationID$`, `$Number$`, `$Time$`, `$Bandwidth$` (each
/// with an optional `%0Nd`) and `$$` in a template.
fn expand(
    template: &str,
    id: &str,
    number: u64,
    time: u64,
    bandwidth: u64,
) -> anyhow::Result<String> {
    let mut out = String::with_capacity(template.len() + 8);
    let mut rest = template;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('$')
            .with_context(|| format!("unterminated $ in template {template:?}"))?;
        let token = &after[..end];
        rest = &after[end + 1..];
        if token.is_empty() {
            out.push('$');
            continue;
        }
        let (name, format) = match token.split_once('%') {
            Some((name, format)) => (name, Some(format)),
            None => (token, None),
        };
        let value = match name {
            "RepresentationID" => {
                anyhow::ensure!(format.is_none(), "a width on $RepresentationID$");
                out.push_str(id);
                continue;
            }
            "Number" => number,
            "Time" => time,
            "Bandwidth" => bandwidth,
            other => anyhow::bail!("unknown identifier ${other}$ in template {template:?}"),
        };
        match format {
            None => out.push_str(&value.to_string()),
            Some(format) => {
                let width = format
                    .strip_prefix('0')
                    .unwrap_or(format)
                    .strip_suffix('d')
                    .and_then(|width| width.parse::<usize>().ok())
                    .with_context(|| format!("format %{format} in template {template:?}"))?;
                out.push_str(&format!("{value:0width$}"));
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The media playlist of one representation against one base URL.
fn media_playlist(
    representation: &Representation,
    template: &Template,
    base: &Url,
) -> anyhow::Result<MediaPlaylist> {
    let id = &representation.id;
    let timescale = template.timescale.unwrap_or(1);
    anyhow::ensure!(timescale > 0, "representation {id}: timescale 0");
    let media = template
        .media
        .as_deref()
        .with_context(|| format!("representation {id}: SegmentTemplate without media"))?;
    let timeline = template
        .timeline
        .as_deref()
        .with_context(|| format!("representation {id}: SegmentTemplate without SegmentTimeline"))?;
    let init = template
        .initialization
        .as_deref()
        .map(|initialization| {
            let path = expand(initialization, id, 0, 0, representation.bandwidth)?;
            base.join(&path)
                .with_context(|| format!("init URI {path:?}"))
        })
        .transpose()?;
    let mut number = template.start_number.unwrap_or(1);
    let mut time = 0u64;
    let mut segments = Vec::new();
    for entry in timeline {
        if let Some(t) = entry.t {
            time = t;
        }
        anyhow::ensure!(entry.d > 0, "representation {id}: an S with d=0");
        for _ in 0..=entry.r {
            let path = expand(media, id, number, time, representation.bandwidth)?;
            segments.push((
                base.join(&path)
                    .with_context(|| format!("segment URI {path:?}"))?,
                Duration::from_secs_f64(entry.d as f64 / timescale as f64),
            ));
            number += 1;
            time = time.saturating_add(entry.d);
        }
    }
    anyhow::ensure!(!segments.is_empty(), "representation {id} has no segment");
    Ok(MediaPlaylist { init, segments })
}

/// Parses an MPD fetched from `url`.
pub fn parse_mpd(text: &str, url: &Url) -> anyhow::Result<Multivariant> {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().expand_empty_elements = true;
    let mut stack: Vec<String> = Vec::new();
    let mut seen_mpd = false;
    // MPD-level BaseURLs: (serviceLocation, text).
    let mut bases: Vec<(Option<String>, String)> = Vec::new();
    let mut steering: Option<(Option<String>, String)> = None;
    let mut adaptation: Option<AdaptationSet> = None;
    let mut representation: Option<Representation> = None;
    let mut video: Vec<(Representation, Template)> = Vec::new();
    loop {
        let event = reader
            .read_event()
            .with_context(|| format!("{url} is not well-formed XML"))?;
        match event {
            Event::Start(element) => {
                let name = String::from_utf8_lossy(element.local_name().as_ref()).into_owned();
                let parent = stack.last().map(String::as_str);
                match (parent, name.as_str()) {
                    (None, "MPD") => seen_mpd = true,
                    (None, other) => {
                        anyhow::bail!("{url}: the root element is <{other}>, not <MPD>")
                    }
                    (Some("MPD"), "BaseURL") => {
                        bases.push((attribute(&element, "serviceLocation")?, String::new()));
                    }
                    (Some(_), "BaseURL") => {
                        anyhow::bail!("{url}: BaseURL below the MPD level is not supported")
                    }
                    (Some("MPD"), "ContentSteering") => {
                        steering = Some((
                            attribute(&element, "defaultServiceLocation")?,
                            String::new(),
                        ));
                    }
                    (Some(_), "SegmentBase" | "SegmentList") => {
                        anyhow::bail!("{url}: {name} is not supported (only SegmentTemplate)")
                    }
                    (Some("Period"), "AdaptationSet") => {
                        let content_type = attribute(&element, "contentType")?;
                        let mime_type = attribute(&element, "mimeType")?;
                        adaptation = Some(AdaptationSet {
                            video: content_type.as_deref() == Some("video")
                                || mime_type
                                    .as_deref()
                                    .is_some_and(|mime| mime.starts_with("video/")),
                            ..AdaptationSet::default()
                        });
                    }
                    (Some("AdaptationSet"), "Representation") => {
                        let id = attribute(&element, "id")?
                            .with_context(|| format!("{url}: a Representation without id"))?;
                        let bandwidth = number(&element, "bandwidth")?.with_context(|| {
                            format!("{url}: representation {id} has no bandwidth")
                        })?;
                        if let (Some(set), Some(mime)) =
                            (adaptation.as_mut(), attribute(&element, "mimeType")?)
                        {
                            set.video |= mime.starts_with("video/");
                        }
                        representation = Some(Representation {
                            id,
                            bandwidth,
                            template: None,
                        });
                    }
                    (Some(owner @ ("AdaptationSet" | "Representation")), "SegmentTemplate") => {
                        let template = Template {
                            timescale: number(&element, "timescale")?,
                            initialization: attribute(&element, "initialization")?,
                            media: attribute(&element, "media")?,
                            start_number: number(&element, "startNumber")?,
                            timeline: None,
                        };
                        if owner == "Representation" {
                            if let Some(representation) = representation.as_mut() {
                                representation.template = Some(template);
                            }
                        } else if let Some(set) = adaptation.as_mut() {
                            set.template = Some(template);
                        }
                    }
                    (Some("SegmentTemplate"), "SegmentTimeline") => {
                        let template = match representation.as_mut() {
                            Some(representation) => representation.template.as_mut(),
                            None => adaptation.as_mut().and_then(|set| set.template.as_mut()),
                        };
                        if let Some(template) = template {
                            template.timeline = Some(Vec::new());
                        }
                    }
                    (Some("SegmentTimeline"), "S") => {
                        let r = match attribute(&element, "r")? {
                            None => 0,
                            Some(value) => value.trim().parse::<u64>().with_context(|| {
                                format!("{url}: S@r={value:?} (negative repeats are not supported)")
                            })?,
                        };
                        let entry = Entry {
                            t: number(&element, "t")?,
                            d: number(&element, "d")?
                                .with_context(|| format!("{url}: an S without d"))?,
                            r,
                        };
                        let template = match representation.as_mut() {
                            Some(representation) => representation.template.as_mut(),
                            None => adaptation.as_mut().and_then(|set| set.template.as_mut()),
                        };
                        if let Some(timeline) =
                            template.and_then(|template| template.timeline.as_mut())
                        {
                            timeline.push(entry);
                        }
                    }
                    _ => {}
                }
                stack.push(name);
            }
            Event::Text(content) => {
                let content = content
                    .xml_content()
                    .with_context(|| format!("{url}: malformed text"))?;
                append_text(&stack, &mut bases, &mut steering, &content);
            }
            Event::CData(content) => {
                let content = content
                    .decode()
                    .with_context(|| format!("{url}: malformed CDATA"))?;
                append_text(&stack, &mut bases, &mut steering, &content);
            }
            Event::GeneralRef(reference) => {
                let character = match reference.resolve_char_ref()? {
                    Some(character) => character,
                    None => match reference.decode()?.as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => anyhow::bail!("{url}: unknown entity &{other};"),
                    },
                };
                append_text(
                    &stack,
                    &mut bases,
                    &mut steering,
                    character.encode_utf8(&mut [0; 4]),
                );
            }
            Event::End(_) => match stack.pop().as_deref() {
                Some("Representation") => {
                    if let (Some(set), Some(done)) = (adaptation.as_mut(), representation.take()) {
                        set.representations.push(done);
                    }
                }
                Some("AdaptationSet") => {
                    if let Some(set) = adaptation.take() {
                        if set.video {
                            let parent = set.template.unwrap_or_default();
                            for mut done in set.representations {
                                let template =
                                    done.template.take().unwrap_or_default().inherit(&parent);
                                video.push((done, template));
                            }
                        }
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    anyhow::ensure!(seen_mpd, "{url} is not an MPD (no <MPD> element)");
    anyhow::ensure!(
        !video.is_empty(),
        "{url}: the MPD has no video representation"
    );

    let pathways: Vec<(String, Url)> = if bases.is_empty() {
        vec![(".".to_string(), url.clone())]
    } else {
        bases
            .iter()
            .enumerate()
            .map(|(index, (location, base))| {
                let base = base.trim();
                Ok((
                    location.clone().unwrap_or_else(|| index.to_string()),
                    url.join(base)
                        .with_context(|| format!("BaseURL {base:?}"))?,
                ))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let mut renditions = Vec::new();
    for (pathway, base) in &pathways {
        for (representation, template) in &video {
            renditions.push(Rendition {
                pathway: pathway.clone(),
                average_bandwidth: representation.bandwidth,
                playlist: url.clone(),
                media: Some(media_playlist(representation, template, base)?),
            });
        }
    }
    let steering = match steering {
        Some((initial, server)) => {
            let server = server.trim();
            Some((
                url.join(server)
                    .with_context(|| format!("ContentSteering URI {server:?}"))?,
                initial,
            ))
        }
        None => None,
    };
    Ok(Multivariant {
        renditions,
        steering,
        dash: true,
    })
}

/// Text inside a `BaseURL` or `ContentSteering` element.
fn append_text(
    stack: &[String],
    bases: &mut [(Option<String>, String)],
    steering: &mut Option<(Option<String>, String)>,
    text: &str,
) {
    let n = stack.len();
    if n < 2 || stack[n - 2] != "MPD" {
        return;
    }
    match stack[n - 1].as_str() {
        "BaseURL" => {
            if let Some((_, base)) = bases.last_mut() {
                base.push_str(text);
            }
        }
        "ContentSteering" => {
            if let Some((_, server)) = steering.as_mut() {
                server.push_str(text);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use reel_core::FrameRate;
    use reel_manifest::{dash_mpd, AudioRendition, Presentation, SegmentRef, VideoRendition};
    use reel_steer::Pathway;

    use super::*;

    /// Segments of `duration` ticks, the last one `last` ticks, and a gap
    /// before segment 4 so the timeline restarts with a `t`.
    fn segments(n_segments: u64, duration: u64, last: u64) -> Vec<SegmentRef> {
        let mut start = 0;
        (0..n_segments)
            .map(|segment_idx| {
                if segment_idx == 3 {
                    start += 10;
                }
                let length = if segment_idx + 1 == n_segments {
                    last
                } else {
                    duration
                };
                let segment = SegmentRef {
                    start,
                    duration: length,
                    size: 1000 + segment_idx,
                    iframe: None,
                };
                start += length;
                segment
            })
            .collect()
    }

    fn video(id: &str, height: u32, peak_bitrate: u64) -> VideoRendition {
        VideoRendition {
            id: id.to_string(),
            codec: "avc1.64001f".to_string(),
            width: height * 16 / 9,
            height,
            frame_rate: FrameRate::new(30000, 1001).expect("rate"),
            timescale: 30000,
            average_bitrate: peak_bitrate * 8 / 10,
            peak_bitrate,
            segments: segments(8, 120_120, 60_060),
        }
    }

    fn presentation() -> Presentation {
        Presentation {
            video: vec![video("720p", 720, 3_000_000), video("360p", 360, 800_000)],
            audio: Some(AudioRendition {
                id: "audio".to_string(),
                codec: "mp4a.40.2".to_string(),
                language: None,
                name: "Audio".to_string(),
                channels: 2,
                sample_rate: 48000,
                timescale: 48000,
                average_bitrate: 128_000,
                peak_bitrate: 130_000,
                segments: segments(9, 192_512, 1024),
            }),
            complete: true,
        }
    }

    #[test]
    fn reels_mpd_becomes_a_ladder_with_resolved_segments() {
        let presentation = presentation();
        let mpd = dash_mpd(&presentation);
        let url = Url::parse("http://origin/v/abc/manifest.mpd").expect("url");
        assert!(is_mpd(&mpd, &url));
        let parsed = parse_mpd(&mpd, &url).expect("parsed");
        assert!(parsed.dash);
        assert!(parsed.steering.is_none());
        assert_eq!(parsed.pathways(), ["."]);
        // Video only: the audio representation is not a rendition.
        let ladder = parsed.ladder(".");
        assert_eq!(ladder.len(), 2);
        assert_eq!(ladder[0].average_bandwidth, 800_000);
        assert_eq!(ladder[1].average_bandwidth, 3_000_000);
        for (rendition, source) in ladder
            .iter()
            .zip([&presentation.video[1], &presentation.video[0]])
        {
            let media = rendition.media.as_ref().expect("media");
            assert_eq!(
                media.init.as_ref().map(Url::as_str),
                Some(format!("http://origin/v/abc/{}/init.mp4", source.id).as_str())
            );
            assert_eq!(media.segments.len(), source.segments.len());
            for (number, ((url, duration), segment)) in
                media.segments.iter().zip(&source.segments).enumerate()
            {
                assert_eq!(
                    url.as_str(),
                    format!(
                        "http://origin/v/abc/{}/seg-{:05}.m4s",
                        source.id,
                        number + 1
                    )
                );
                assert_eq!(
                    *duration,
                    Duration::from_secs_f64(segment.duration as f64 / 30000.0)
                );
            }
            let total: f64 = media.segments.iter().map(|(_, d)| d.as_secs_f64()).sum();
            let expected: u64 = source.segments.iter().map(|segment| segment.duration).sum();
            assert!((total - expected as f64 / 30000.0).abs() < 1e-6, "{total}");
        }
    }

    #[test]
    fn steered_mpds_give_a_ladder_per_service_location() {
        let mpd = dash_mpd(&presentation());
        let pathways = [
            Pathway {
                id: "edge-1".to_string(),
                base: Url::parse("http://e1:8080/v/abc/").expect("url"),
            },
            Pathway {
                id: "origin".to_string(),
                base: Url::parse("http://origin/v/abc/").expect("url"),
            },
        ];
        let steered = reel_steer::steer_dash(
            &mpd,
            &pathways,
            "http://router/v1/steering/abc?proto=dash",
            "edge-1",
        )
        .expect("steered");
        let url = Url::parse("http://router/v1/videos/abc/play.mpd").expect("url");
        let parsed = parse_mpd(&steered, &url).expect("parsed");
        assert_eq!(parsed.pathways(), ["edge-1", "origin"]);
        let (server, initial) = parsed.steering.clone().expect("steering");
        assert_eq!(server.as_str(), "http://router/v1/steering/abc?proto=dash");
        assert_eq!(initial.as_deref(), Some("edge-1"));
        let edge = parsed.ladder("edge-1");
        let media = edge[1].media.as_ref().expect("media");
        assert_eq!(
            media.segments[7].0.as_str(),
            "http://e1:8080/v/abc/720p/seg-00008.m4s"
        );
        let origin = parsed.ladder("origin");
        assert_eq!(
            origin[0]
                .media
                .as_ref()
                .expect("media")
                .init
                .as_ref()
                .map(Url::as_str),
            Some("http://origin/v/abc/360p/init.mp4")
        );
    }

    #[test]
    fn templates_expand_numbers_times_and_widths() {
        assert_eq!(
            expand(
                "$RepresentationID$/s-$Number%05d$-$Time$-$Bandwidth$$$.m4s",
                "a",
                7,
                90,
                5
            )
            .expect("expanded"),
            "a/s-00007-90-5$.m4s"
        );
        assert!(expand("$Nope$", "a", 1, 0, 0).is_err());
        assert!(expand("$Number", "a", 1, 0, 0).is_err());
        let hls = Url::parse("http://e/v/x/master.m3u8").expect("url");
        assert!(!is_mpd("#EXTM3U\n", &hls));
        assert!(is_mpd("<MPD/>", &hls));
        assert!(is_mpd(
            "",
            &Url::parse("http://e/v/x/manifest.mpd").expect("url")
        ));
        assert!(parse_mpd("#EXTM3U\n", &hls).is_err());
        assert!(parse_mpd("<MPD></MPD>", &hls).is_err());
    }
}
