//! The DASH MPD: one static period; a video adaptation set per codec family
//! (players switch seamlessly only inside one), with one representation per
//! rendition; an adaptation set per audio rendition and per text track. The
//! media is addressed with `SegmentTemplate` and an explicit
//! `SegmentTimeline`; a text track is one WebVTT file.

use std::fmt::Write;

use reel_core::FrameRate;

use crate::timing::{segment_micros, xs_duration};
use crate::{Presentation, SegmentRef};

/// Writes the MPD (`manifest.mpd`) for a presentation.
///
/// The MPD is static (ISO/IEC 23009-1 isoff-live and CMAF profiles). Its
/// duration is that of the longest rendition; `minBufferTime` is the
/// longest segment, rounded up to whole seconds. Every representation uses
/// `$RepresentationID$/init.mp4` and `$RepresentationID$/seg-$Number%05d$.m4s`
/// with a run-length `SegmentTimeline` in its own timescale.
pub fn dash_mpd(presentation: &Presentation) -> String {
    let longest_micros = presentation.duration_micros();
    let longest_segment_micros = presentation
        .video
        .iter()
        .map(|rendition| (&rendition.segments, rendition.timescale))
        .chain(
            presentation
                .audio
                .iter()
                .map(|audio| (&audio.segments, audio.timescale)),
        )
        .flat_map(|(segments, timescale)| segment_micros(segments, timescale))
        .max()
        .unwrap_or(0);
    let min_buffer_seconds = longest_segment_micros.div_ceil(1_000_000).max(1);

    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019\" type=\"static\" mediaPresentationDuration=\"{}\" minBufferTime=\"PT{min_buffer_seconds}S\">",
        xs_duration(longest_micros),
    );
    out.push_str("  <Period id=\"0\" start=\"PT0S\">\n");
    let mut adaptation_set_id = 0;
    let mut video: Vec<_> = presentation.video.iter().collect();
    video.sort_by_key(|rendition| (rendition.peak_bitrate, rendition.id.as_str()));
    let mut families: Vec<&str> = Vec::new();
    for rendition in &video {
        let family = codec_family(&rendition.codec);
        if !families.contains(&family) {
            families.push(family);
        }
    }
    for family in families {
        let members: Vec<_> = video
            .iter()
            .copied()
            .filter(|rendition| codec_family(&rendition.codec) == family)
            .collect();
        let max_width = members.iter().map(|rendition| rendition.width).max();
        let max_height = members.iter().map(|rendition| rendition.height).max();
        let max_frame_rate = members
            .iter()
            .map(|rendition| rendition.frame_rate)
            .reduce(faster)
            .map(|rate| rate.to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    <AdaptationSet id=\"{adaptation_set_id}\" contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\" maxWidth=\"{}\" maxHeight=\"{}\" maxFrameRate=\"{max_frame_rate}\">",
            max_width.unwrap_or(0),
            max_height.unwrap_or(0),
        );
        adaptation_set_id += 1;
        for rendition in members {
            let _ = writeln!(
                out,
                "      <Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\" width=\"{}\" height=\"{}\" frameRate=\"{}\" sar=\"1:1\">",
                escape(&rendition.id),
                rendition.peak_bitrate,
                escape(&rendition.codec),
                rendition.width,
                rendition.height,
                rendition.frame_rate,
            );
            write_segment_template(&mut out, &rendition.segments, rendition.timescale);
            out.push_str("      </Representation>\n");
        }
        out.push_str("    </AdaptationSet>\n");
    }
    let default_audio = presentation.default_audio();
    for audio in &presentation.audio {
        let is_default = default_audio.is_some_and(|chosen| std::ptr::eq(chosen, audio));
        let _ = writeln!(
            out,
            "    <AdaptationSet id=\"{adaptation_set_id}\" contentType=\"audio\" mimeType=\"audio/mp4\" lang=\"{}\" segmentAlignment=\"true\" startWithSAP=\"1\">",
            escape(audio.language.as_deref().unwrap_or("und")),
        );
        adaptation_set_id += 1;
        if presentation.audio.len() > 1 {
            let _ = writeln!(out, "      <Label>{}</Label>", escape(&audio.name));
        }
        let _ = writeln!(
            out,
            "      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{}\"/>",
            if is_default { "main" } else { "alternate" }
        );
        let _ = writeln!(
            out,
            "      <Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\" audioSamplingRate=\"{}\">",
            escape(&audio.id),
            audio.peak_bitrate,
            escape(&audio.codec),
            audio.sample_rate,
        );
        let _ = writeln!(
            out,
            "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{}\"/>",
            audio.channels
        );
        write_segment_template(&mut out, &audio.segments, audio.timescale);
        out.push_str("      </Representation>\n    </AdaptationSet>\n");
    }
    for track in &presentation.text {
        let _ = writeln!(
            out,
            "    <AdaptationSet id=\"{adaptation_set_id}\" contentType=\"text\" mimeType=\"text/vtt\" lang=\"{}\">",
            escape(track.language.as_deref().unwrap_or("und")),
        );
        adaptation_set_id += 1;
        let _ = writeln!(out, "      <Label>{}</Label>", escape(&track.name));
        let _ = writeln!(
            out,
            "      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{}\"/>",
            if track.default { "main" } else { "subtitle" }
        );
        let bandwidth = crate::timing::bits_per_second(track.size, track.duration_micros.max(1));
        let _ = writeln!(
            out,
            "      <Representation id=\"{}\" bandwidth=\"{}\">\n        <BaseURL>{}/{}</BaseURL>\n      </Representation>\n    </AdaptationSet>",
            escape(&track.id),
            bandwidth.max(1),
            escape(&track.id),
            crate::paths::TEXT_FILE,
        );
    }
    out.push_str("  </Period>\n</MPD>\n");
    out
}

/// `SegmentTemplate` with a `SegmentTimeline`: the first `S` carries `t`,
/// later ones only when a gap or overlap breaks the timeline, and runs of
/// equal durations collapse into one `S` with `r` repeats.
fn write_segment_template(out: &mut String, segments: &[SegmentRef], timescale: u32) {
    let _ = writeln!(
        out,
        "        <SegmentTemplate timescale=\"{timescale}\" initialization=\"$RepresentationID$/{}\" media=\"$RepresentationID$/{}\" startNumber=\"1\">",
        crate::paths::INIT_SEGMENT,
        crate::paths::DASH_SEGMENT_TEMPLATE,
    );
    out.push_str("          <SegmentTimeline>\n");
    let mut segment_idx = 0;
    let mut previous_end = None;
    while segment_idx < segments.len() {
        let first = segments[segment_idx];
        let mut n_repeats = 0;
        while let Some(next) = segments.get(segment_idx + n_repeats + 1) {
            let expected_start = first
                .start
                .saturating_add(first.duration.saturating_mul(n_repeats as u64 + 1));
            if next.duration != first.duration || next.start != expected_start {
                break;
            }
            n_repeats += 1;
        }
        out.push_str("            <S");
        if previous_end != Some(first.start) {
            let _ = write!(out, " t=\"{}\"", first.start);
        }
        let _ = write!(out, " d=\"{}\"", first.duration);
        if n_repeats > 0 {
            let _ = write!(out, " r=\"{n_repeats}\"");
        }
        out.push_str("/>\n");
        previous_end = Some(
            first
                .start
                .saturating_add(first.duration.saturating_mul(n_repeats as u64 + 1)),
        );
        segment_idx += n_repeats + 1;
    }
    out.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n");
}

/// The codec family of an RFC 6381 string: `avc1` of `avc1.64001f`.
fn codec_family(codec: &str) -> &str {
    codec.split('.').next().unwrap_or(codec)
}

/// The faster of two frame rates, compared exactly.
fn faster(left: FrameRate, right: FrameRate) -> FrameRate {
    let left_value = u64::from(left.num()) * u64::from(right.den());
    let right_value = u64::from(right.num()) * u64::from(left.den());
    if right_value > left_value {
        right
    } else {
        left
    }
}

/// Escapes text for an XML attribute value (quick-xml's escaping).
fn escape(value: &str) -> String {
    // XML 1.0 forbids most control characters even when escaped.
    let printable: String = value
        .chars()
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .collect();
    quick_xml::escape::escape(&printable).into_owned()
}
