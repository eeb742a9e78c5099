//! DASH MPDs read with `dash-mpd`, into the ladder per pathway the player uses for HLS too.
//!
//! - A first pass with quick-xml's reader (the parser `dash-mpd` is built on) bounds the
//!   nesting depth and reads what `dash-mpd` has no field for: the MPD-level
//!   `<ContentSteering defaultServiceLocation="...">URI</ContentSteering>`.
//! - Pathways are the MPD-level `<BaseURL serviceLocation="...">` elements; with none, there
//!   is one pathway `.` whose base is the MPD's URL.
//! - Only video adaptation sets are read (`contentType="video"` or a `video/` MIME type).
//! - A rendition's bandwidth is `Representation@bandwidth`.
//! - Templates may use `$RepresentationID$`, `$Number$`, `$Time$` and `$Bandwidth$` (with
//!   `%0Nd` widths up to [`ManifestLimits::max_number_width`]) and `$$`; `SegmentTemplate` may
//!   sit on the adaptation set or the representation. `BaseURL` below the MPD level,
//!   `SegmentBase`, `SegmentList` and negative `S@r` are not supported (reel writes none of
//!   them) and are errors, as are more segments than [`ManifestLimits::max_segments`].

use std::sync::Arc;
use std::time::Duration;

use quick_xml::events::Event;
use url::Url;

use crate::error::ManifestError;
use crate::hls::check_ladders;
use crate::limits::ManifestLimits;
use crate::model::{
    video_codec_family, Format, Manifest, MediaPlaylist, MediaSource, Rendition, SteeringTag,
};

/// Whether a fetched manifest is an MPD: it starts with `<?xml` or holds `<MPD`, or (when it
/// is not an HLS playlist) its path names a `.mpd`.
pub fn is_mpd(text: &str, url: &Url) -> bool {
    let head = text.trim_start_matches('\u{feff}').trim_start();
    if head.starts_with("#EXTM3U") {
        return false;
    }
    head.starts_with("<?xml") || text.contains("<MPD") || url.path().contains(".mpd")
}

/// One `S` of a `SegmentTimeline`, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    t: Option<u64>,
    d: u64,
    r: u64,
}

/// A video representation's segments, checked against the limits when the MPD was read and
/// resolved against a pathway's base URL on demand.
#[derive(Debug, PartialEq)]
pub struct DashMedia {
    id: String,
    bandwidth: u64,
    /// The video codec family (`avc1`, `av01`), the representation's `@codecs` over its
    /// adaptation set's.
    codec: String,
    timescale: u64,
    initialization: Option<String>,
    media: String,
    start_number: u64,
    timeline: Vec<Entry>,
    max_number_width: usize,
}

impl DashMedia {
    /// The init segment and every media segment against `base`.
    pub fn resolve(&self, base: &Url) -> Result<MediaPlaylist, ManifestError> {
        let join = |path: String| {
            base.join(&path)
                .map_err(|error| ManifestError::invalid(base, format!("URI {path:?}: {error}")))
        };
        let expand = |template: &str, number: u64, time: u64| {
            expand(
                template,
                &self.id,
                number,
                time,
                self.bandwidth,
                self.max_number_width,
            )
            .map_err(|reason| ManifestError::invalid(base, reason))
        };
        let init = self
            .initialization
            .as_deref()
            .map(|initialization| join(expand(initialization, 0, 0)?))
            .transpose()?;
        let mut number = self.start_number;
        let mut time = 0u64;
        let mut segments = Vec::new();
        for entry in &self.timeline {
            if let Some(t) = entry.t {
                time = t;
            }
            let duration = Duration::from_secs_f64(entry.d as f64 / self.timescale as f64);
            for _ in 0..=entry.r {
                segments.push((join(expand(&self.media, number, time)?)?, duration));
                number = number.saturating_add(1);
                time = time.saturating_add(entry.d);
            }
        }
        Ok(MediaPlaylist { init, segments })
    }
}

/// Expands `$RepresentationID$`, `$Number$`, `$Time$`, `$Bandwidth$` (each with an optional
/// `%0Nd`, N at most `max_width`) and `$$` in a template.
fn expand(
    template: &str,
    id: &str,
    number: u64,
    time: u64,
    bandwidth: u64,
    max_width: usize,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 8);
    let mut rest = template;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('$')
            .ok_or_else(|| format!("unterminated $ in template {template:?}"))?;
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
            "RepresentationID" if format.is_none() => {
                out.push_str(id);
                continue;
            }
            "RepresentationID" => return Err("a width on $RepresentationID$".to_string()),
            "Number" => number,
            "Time" => time,
            "Bandwidth" => bandwidth,
            other => {
                return Err(format!(
                    "unknown identifier ${other}$ in template {template:?}"
                ))
            }
        };
        match format {
            None => out.push_str(&value.to_string()),
            Some(format) => {
                let width = format
                    .strip_prefix('0')
                    .unwrap_or(format)
                    .strip_suffix('d')
                    .and_then(|width| width.parse::<usize>().ok())
                    .ok_or_else(|| format!("format %{format} in template {template:?}"))?;
                if width > max_width {
                    return Err(format!(
                        "the width %0{width}d in template {template:?} is wider than {max_width} (a manifest limit)"
                    ));
                }
                out.push_str(&format!("{value:0width$}"));
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The first pass: the nesting depth is bounded, the root is `<MPD>`, and the MPD-level
/// `ContentSteering` is read (`defaultServiceLocation`, the server URI).
fn prescan(
    text: &str,
    url: &Url,
    limits: &ManifestLimits,
) -> Result<Option<(Option<String>, String)>, ManifestError> {
    let malformed = |error: &dyn std::fmt::Display| {
        ManifestError::invalid(url, format!("not well-formed XML: {error}"))
    };
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut in_steering = false;
    let mut steering: Option<(Option<String>, String)> = None;
    loop {
        let event = reader.read_event().map_err(|error| malformed(&error))?;
        match event {
            Event::Start(ref element) | Event::Empty(ref element) => {
                let empty = matches!(event, Event::Empty(_));
                let name = element.local_name();
                if depth == 0 && name.as_ref() != b"MPD" {
                    return Err(ManifestError::invalid(
                        url,
                        format!(
                            "the root element is <{}>, not <MPD>",
                            String::from_utf8_lossy(name.as_ref())
                        ),
                    ));
                }
                if depth == 1 && name.as_ref() == b"ContentSteering" {
                    let mut default = None;
                    for attribute in element.attributes() {
                        let attribute = attribute.map_err(|error| malformed(&error))?;
                        if attribute.key.local_name().as_ref() == b"defaultServiceLocation" {
                            default = Some(
                                attribute
                                    .unescape_value()
                                    .map_err(|error| malformed(&error))?
                                    .into_owned(),
                            );
                        }
                    }
                    steering = Some((default, String::new()));
                    in_steering = !empty;
                }
                if empty {
                    continue;
                }
                depth += 1;
                if depth > limits.max_xml_depth {
                    return Err(ManifestError::limit(
                        url,
                        format!("XML nested deeper than {} elements", limits.max_xml_depth),
                    ));
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                in_steering = false;
            }
            Event::Text(content) if in_steering => {
                let content = content.xml_content().map_err(|error| malformed(&error))?;
                if let Some((_, server)) = steering.as_mut() {
                    server.push_str(&content);
                }
            }
            Event::GeneralRef(reference) if in_steering => {
                let character = match reference
                    .resolve_char_ref()
                    .map_err(|error| malformed(&error))?
                {
                    Some(character) => character,
                    None => match reference
                        .decode()
                        .map_err(|error| malformed(&error))?
                        .as_ref()
                    {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => {
                            return Err(ManifestError::invalid(
                                url,
                                format!("unknown entity &{other};"),
                            ))
                        }
                    },
                };
                if let Some((_, server)) = steering.as_mut() {
                    server.push(character);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 {
        return Err(ManifestError::invalid(
            url,
            "not well-formed XML: unclosed elements",
        ));
    }
    Ok(steering)
}

fn unsupported(url: &Url, what: &str) -> ManifestError {
    ManifestError::invalid(url, format!("{what} is not supported (only SegmentTemplate with SegmentTimeline and MPD-level BaseURLs)"))
}

/// A representation's template fields, the representation's own over the adaptation set's.
fn template_field<T: Clone>(
    own: Option<&dash_mpd::SegmentTemplate>,
    parent: Option<&dash_mpd::SegmentTemplate>,
    field: impl Fn(&dash_mpd::SegmentTemplate) -> Option<T>,
) -> Option<T> {
    own.and_then(&field).or_else(|| parent.and_then(&field))
}

/// Checks a timeline against the limits.
fn timeline(
    s: &[dash_mpd::S],
    id: &str,
    url: &Url,
    limits: &ManifestLimits,
) -> Result<Vec<Entry>, ManifestError> {
    let mut entries = Vec::with_capacity(s.len().min(limits.max_segments));
    let mut n_segments: u64 = 0;
    for entry in s {
        if entry.d == 0 {
            return Err(ManifestError::invalid(
                url,
                format!("representation {id}: an S with d=0"),
            ));
        }
        let r = match entry.r.unwrap_or(0) {
            r if r < 0 => {
                return Err(ManifestError::invalid(
                    url,
                    format!("representation {id}: S@r={r} (negative repeats are not supported)"),
                ))
            }
            r => r as u64,
        };
        if r > limits.max_repeat {
            return Err(ManifestError::limit(
                url,
                format!(
                    "representation {id}: S@r={r}, more than {}",
                    limits.max_repeat
                ),
            ));
        }
        n_segments = n_segments.saturating_add(r + 1);
        if n_segments > limits.max_segments as u64 {
            return Err(ManifestError::limit(
                url,
                format!(
                    "representation {id} has more than {} segments",
                    limits.max_segments
                ),
            ));
        }
        entries.push(Entry {
            t: entry.t,
            d: entry.d,
            r,
        });
    }
    if entries.is_empty() {
        return Err(ManifestError::invalid(
            url,
            format!("representation {id} has no segment"),
        ));
    }
    Ok(entries)
}

/// One video representation's checked segments.
fn dash_media(
    representation: &dash_mpd::Representation,
    adaptation: &dash_mpd::AdaptationSet,
    url: &Url,
    limits: &ManifestLimits,
) -> Result<DashMedia, ManifestError> {
    let id = representation
        .id
        .clone()
        .ok_or_else(|| ManifestError::invalid(url, "a Representation without id"))?;
    if representation.SegmentBase.is_some() || representation.SegmentList.is_some() {
        return Err(unsupported(url, "SegmentBase or SegmentList"));
    }
    if !representation.BaseURL.is_empty() {
        return Err(unsupported(url, "BaseURL below the MPD level"));
    }
    let bandwidth = representation.bandwidth.ok_or_else(|| {
        ManifestError::invalid(url, format!("representation {id} has no bandwidth"))
    })?;
    let own = representation.SegmentTemplate.as_ref();
    let parent = adaptation.SegmentTemplate.as_ref();
    let timescale = template_field(own, parent, |t| t.timescale).unwrap_or(1);
    if timescale == 0 {
        return Err(ManifestError::invalid(
            url,
            format!("representation {id}: timescale 0"),
        ));
    }
    let media = template_field(own, parent, |t| t.media.clone()).ok_or_else(|| {
        ManifestError::invalid(
            url,
            format!("representation {id}: SegmentTemplate without media"),
        )
    })?;
    let segments = template_field(own, parent, |t| t.SegmentTimeline.clone()).ok_or_else(|| {
        ManifestError::invalid(
            url,
            format!("representation {id}: SegmentTemplate without SegmentTimeline"),
        )
    })?;
    let dash_media = DashMedia {
        timeline: timeline(&segments.segments, &id, url, limits)?,
        initialization: template_field(own, parent, |t| t.initialization.clone()),
        start_number: template_field(own, parent, |t| t.startNumber).unwrap_or(1),
        id,
        bandwidth,
        codec: representation
            .codecs
            .as_deref()
            .or(adaptation.codecs.as_deref())
            .map(video_codec_family)
            .unwrap_or_default(),
        timescale,
        media,
        max_number_width: limits.max_number_width,
    };
    // The templates' syntax and widths, checked once here rather than per segment.
    for template in [Some(&dash_media.media), dash_media.initialization.as_ref()]
        .into_iter()
        .flatten()
    {
        expand(
            template,
            &dash_media.id,
            0,
            0,
            bandwidth,
            limits.max_number_width,
        )
        .map_err(|reason| ManifestError::invalid(url, reason))?;
    }
    Ok(dash_media)
}

fn is_video(adaptation: &dash_mpd::AdaptationSet) -> bool {
    let video_mime = |mime: &Option<String>| {
        mime.as_deref()
            .is_some_and(|mime| mime.starts_with("video/"))
    };
    adaptation.contentType.as_deref() == Some("video")
        || video_mime(&adaptation.mimeType)
        || adaptation
            .representations
            .iter()
            .any(|representation| video_mime(&representation.mimeType))
}

/// Parses an MPD fetched from `url`.
pub fn parse_mpd(
    text: &str,
    url: &Url,
    limits: &ManifestLimits,
) -> Result<Manifest, ManifestError> {
    let steering = prescan(text, url, limits)?;
    let mpd = dash_mpd::parse(text).map_err(|error| {
        let mut reason = error.to_string();
        if reason.len() > 300 {
            let mut end = 300;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        ManifestError::invalid(url, format!("not a valid MPD: {reason}"))
    })?;
    let mut video = Vec::new();
    for period in &mpd.periods {
        if !period.BaseURL.is_empty() {
            return Err(unsupported(url, "BaseURL below the MPD level"));
        }
        if period.SegmentBase.is_some() || period.SegmentList.is_some() {
            return Err(unsupported(url, "SegmentBase or SegmentList"));
        }
        for adaptation in period.adaptations.iter().filter(|set| is_video(set)) {
            if !adaptation.BaseURL.is_empty() {
                return Err(unsupported(url, "BaseURL below the MPD level"));
            }
            if adaptation.SegmentBase.is_some() || adaptation.SegmentList.is_some() {
                return Err(unsupported(url, "SegmentBase or SegmentList"));
            }
            for representation in &adaptation.representations {
                if video.len() >= limits.max_renditions {
                    return Err(ManifestError::limit(
                        url,
                        format!("more than {} video representations", limits.max_renditions),
                    ));
                }
                video.push(Arc::new(dash_media(
                    representation,
                    adaptation,
                    url,
                    limits,
                )?));
            }
        }
    }
    if video.is_empty() {
        return Err(ManifestError::invalid(
            url,
            "the MPD has no video representation",
        ));
    }
    if mpd.base_url.len() > limits.max_pathways {
        return Err(ManifestError::limit(
            url,
            format!(
                "{} BaseURLs, more than {}",
                mpd.base_url.len(),
                limits.max_pathways
            ),
        ));
    }
    let pathways: Vec<(String, Url)> = if mpd.base_url.is_empty() {
        vec![(".".to_string(), url.clone())]
    } else {
        mpd.base_url
            .iter()
            .enumerate()
            .map(|(index, base)| {
                let text = base.base.trim();
                let joined = url.join(text).map_err(|error| {
                    ManifestError::invalid(url, format!("BaseURL {text:?}: {error}"))
                })?;
                Ok((
                    base.serviceLocation
                        .clone()
                        .unwrap_or_else(|| index.to_string()),
                    joined,
                ))
            })
            .collect::<Result<_, ManifestError>>()?
    };
    let mut renditions = Vec::new();
    for (pathway, base) in &pathways {
        for media in &video {
            renditions.push(Rendition {
                pathway: pathway.clone(),
                bandwidth: media.bandwidth,
                codec: media.codec.clone(),
                source: MediaSource::Dash(Arc::clone(media), base.clone()),
            });
        }
    }
    let steering = match steering {
        Some((initial, server)) => {
            let server = server.trim();
            Some(SteeringTag {
                server: url.join(server).map_err(|error| {
                    ManifestError::invalid(url, format!("ContentSteering URI {server:?}: {error}"))
                })?,
                initial,
            })
        }
        None => None,
    };
    let manifest = Manifest {
        format: Format::Dash,
        renditions,
        steering,
    };
    check_ladders(&manifest, url, limits)?;
    Ok(manifest)
}

#[cfg(test)]
#[path = "dash_tests.rs"]
mod tests;
