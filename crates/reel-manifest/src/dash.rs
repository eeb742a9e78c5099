//! The DASH MPD: one static period, a video adaptation set with one
//! representation per rendition and an audio adaptation set, all addressed
//! with `SegmentTemplate` and an explicit `SegmentTimeline`.

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
    let mut longest_micros = 0;
    let mut longest_segment_micros = 0;
    let timelines = presentation
        .video
        .iter()
        .map(|rendition| (&rendition.segments, rendition.timescale))
        .chain(
            presentation
                .audio
                .iter()
                .map(|audio| (&audio.segments, audio.timescale)),
        );
    for (segments, timescale) in timelines {
        let durations = segment_micros(segments, timescale);
        longest_micros = longest_micros.max(durations.iter().sum());
        longest_segment_micros =
            longest_segment_micros.max(durations.iter().copied().max().unwrap_or(0));
    }
    let min_buffer_seconds = longest_segment_micros.div_ceil(1_000_000).max(1);

    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019\" type=\"static\" mediaPresentationDuration=\"{}\" minBufferTime=\"PT{min_buffer_seconds}S\">",
        xs_duration(longest_micros),
    );
    out.push_str("  <Period id=\"0\" start=\"PT0S\">\n");
    let mut adaptation_set_id = 0;
    if !presentation.video.is_empty() {
        let max_width = presentation
            .video
            .iter()
            .map(|rendition| rendition.width)
            .max()
            .unwrap_or(0);
        let max_height = presentation
            .video
            .iter()
            .map(|rendition| rendition.height)
            .max()
            .unwrap_or(0);
        let max_frame_rate = presentation
            .video
            .iter()
            .map(|rendition| rendition.frame_rate)
            .reduce(faster)
            .map(|rate| rate.to_string())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    <AdaptationSet id=\"{adaptation_set_id}\" contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\" maxWidth=\"{max_width}\" maxHeight=\"{max_height}\" maxFrameRate=\"{max_frame_rate}\">"
        );
        adaptation_set_id += 1;
        let mut video: Vec<_> = presentation.video.iter().collect();
        video.sort_by_key(|rendition| (rendition.peak_bitrate, rendition.id.as_str()));
        for rendition in video {
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
    if let Some(audio) = &presentation.audio {
        let _ = writeln!(
            out,
            "    <AdaptationSet id=\"{adaptation_set_id}\" contentType=\"audio\" mimeType=\"audio/mp4\" lang=\"{}\" segmentAlignment=\"true\" startWithSAP=\"1\">",
            escape(audio.language.as_deref().unwrap_or("und")),
        );
        out.push_str("      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"main\"/>\n");
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
