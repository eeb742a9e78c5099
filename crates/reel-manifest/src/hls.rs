//! HLS playlists (RFC 8216 plus the Apple HLS authoring spec): the
//! multivariant playlist, media playlists and I-frame playlists.

use std::fmt::Write;

use crate::paths::{segment_file_name, IFRAME_PLAYLIST, MEDIA_PLAYLIST};
use crate::timing::{
    bits_per_second, interval_micros, seconds_text, segment_micros, target_duration,
};
use crate::{ByteRange, Presentation, SegmentRef, TextTrack, VideoRendition};

/// Writes the multivariant playlist (`master.m3u8`).
///
/// Audio renditions form the `EXT-X-MEDIA` group `audio` and text tracks
/// the group `text`, each entry with its LANGUAGE (Apple 8.10), DEFAULT=YES
/// on the default one only. Video renditions become `EXT-X-STREAM-INF`
/// entries sorted by BANDWIDTH ascending, each followed by its
/// `EXT-X-I-FRAME-STREAM-INF` when its segments carry I-frame ranges.
/// BANDWIDTH and AVERAGE-BANDWIDTH add the largest audio peak and average
/// of the group; CODECS names the video codec and every audio codec. A
/// presentation without video gets one audio-only `EXT-X-STREAM-INF` on the
/// default audio rendition.
pub fn hls_multivariant(presentation: &Presentation) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let default_audio = presentation.default_audio();
    let audio_group = !presentation.audio.is_empty()
        && (!presentation.video.is_empty() || presentation.audio.len() > 1);
    if audio_group {
        out.push('\n');
        for audio in &presentation.audio {
            let is_default = default_audio.is_some_and(|chosen| std::ptr::eq(chosen, audio));
            let _ = writeln!(
                out,
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"{}\",LANGUAGE=\"{}\",DEFAULT={},AUTOSELECT=YES,CHANNELS=\"{}\",URI=\"{}/{MEDIA_PLAYLIST}\"",
                quoted(&audio.name),
                quoted(audio.language.as_deref().unwrap_or("und")),
                yes_no(is_default),
                audio.channels,
                quoted(&audio.id),
            );
        }
    }
    let default_text = presentation
        .text
        .iter()
        .find(|track| track.default)
        .map(|track| track.id.as_str());
    if !presentation.text.is_empty() {
        if !audio_group {
            out.push('\n');
        }
        for track in &presentation.text {
            let _ = writeln!(
                out,
                "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"text\",NAME=\"{}\",LANGUAGE=\"{}\",DEFAULT={},AUTOSELECT=YES,URI=\"{}/{MEDIA_PLAYLIST}\"",
                quoted(&track.name),
                quoted(track.language.as_deref().unwrap_or("und")),
                yes_no(default_text == Some(track.id.as_str())),
                quoted(&track.id),
            );
        }
    }
    let audio_peak = presentation
        .audio
        .iter()
        .map(|audio| audio.peak_bitrate)
        .max()
        .unwrap_or(0);
    let audio_average = presentation
        .audio
        .iter()
        .map(|audio| audio.average_bitrate)
        .max()
        .unwrap_or(0);
    let mut audio_codecs: Vec<&str> = Vec::new();
    for audio in &presentation.audio {
        if !audio_codecs.contains(&audio.codec.as_str()) {
            audio_codecs.push(&audio.codec);
        }
    }
    let mut groups = String::new();
    if audio_group {
        groups.push_str(",AUDIO=\"audio\"");
    }
    if !presentation.text.is_empty() {
        groups.push_str(",SUBTITLES=\"text\"");
    }

    if presentation.video.is_empty() {
        if let Some(audio) = default_audio {
            let _ = writeln!(
                out,
                "\n#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"{groups}\n{}/{MEDIA_PLAYLIST}",
                audio_peak,
                audio_average,
                quoted(&audio_codecs.join(",")),
                quoted(&audio.id),
            );
        }
        return out;
    }

    let mut video: Vec<&VideoRendition> = presentation.video.iter().collect();
    video.sort_by_key(|rendition| {
        (
            rendition.peak_bitrate.saturating_add(audio_peak),
            rendition.average_bitrate,
            rendition.id.as_str(),
        )
    });
    out.push('\n');
    for rendition in &video {
        let mut codecs = rendition.codec.clone();
        for codec in &audio_codecs {
            codecs.push(',');
            codecs.push_str(codec);
        }
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\",RESOLUTION={}x{},FRAME-RATE={:.3}{groups}",
            rendition.peak_bitrate.saturating_add(audio_peak),
            rendition.average_bitrate.saturating_add(audio_average),
            quoted(&codecs),
            rendition.width,
            rendition.height,
            rendition.frame_rate.as_f64(),
        );
        let _ = writeln!(out, "\n{}/{MEDIA_PLAYLIST}", quoted(&rendition.id));
    }
    let mut wrote_iframe_header = false;
    for rendition in &video {
        let entries = iframe_entries(&rendition.segments, rendition.timescale);
        if entries.is_empty() {
            continue;
        }
        if !wrote_iframe_header {
            out.push('\n');
            wrote_iframe_header = true;
        }
        let peak = entries
            .iter()
            .map(|entry| bits_per_second(entry.range.length, entry.duration_micros))
            .max()
            .unwrap_or(0);
        let total_bytes = entries.iter().map(|entry| entry.range.length).sum();
        let total_micros = entries.iter().map(|entry| entry.duration_micros).sum();
        let _ = writeln!(
            out,
            "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={},CODECS=\"{}\",RESOLUTION={}x{},URI=\"{}/{IFRAME_PLAYLIST}\"",
            bits_per_second(total_bytes, total_micros),
            quoted(&rendition.codec),
            rendition.width,
            rendition.height,
            quoted(&rendition.id),
        );
    }
    out
}

/// Writes a rendition's media playlist (`{id}/index.m3u8`), a VOD playlist
/// whose URIs are relative to the rendition directory.
///
/// Each `EXTINF` has six decimals and is computed from cumulative times, so
/// the durations add up to the rendition's length within a microsecond.
/// The media sequence starts at 1, like the segment file numbers.
pub fn hls_media(segments: &[SegmentRef], timescale: u32) -> String {
    let durations = segment_micros(segments, timescale);
    let mut out = playlist_header(target_duration(&durations), false);
    for (segment_idx, duration) in durations.iter().enumerate() {
        let _ = writeln!(
            out,
            "#EXTINF:{},\n{}",
            seconds_text(*duration),
            segment_file_name(segment_idx + 1)
        );
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// Writes a video rendition's I-frame playlist (`{id}/iframes.m3u8`).
///
/// Each segment with an I-frame range contributes one entry: the range of
/// its segment file, lasting until the next listed I-frame (the last one
/// until the end of the last segment). Segments without a range are left
/// out, so an audio rendition yields a playlist with no entries.
pub fn hls_iframes(segments: &[SegmentRef], timescale: u32) -> String {
    let entries = iframe_entries(segments, timescale);
    let durations: Vec<u64> = entries.iter().map(|entry| entry.duration_micros).collect();
    let mut out = playlist_header(target_duration(&durations), true);
    for entry in &entries {
        let _ = writeln!(
            out,
            "#EXTINF:{},\n#EXT-X-BYTERANGE:{}@{}\n{}",
            seconds_text(entry.duration_micros),
            entry.range.length,
            entry.range.offset,
            segment_file_name(entry.number),
        );
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// Writes a text track's playlist (`{id}/index.m3u8`): one WebVTT segment
/// per media segment, with the same durations (RFC 8216 3.5: each holds
/// the cues that overlap it); a track without segment durations lists its
/// whole file as one segment.
pub fn hls_text(track: &TextTrack) -> String {
    let whole = [track.duration_micros.max(1)];
    let durations: &[u64] = if track.segments_micros.is_empty() {
        &whole
    } else {
        &track.segments_micros
    };
    // No EXT-X-MAP: WebVTT segments are text, without an init segment.
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n",
        target_duration(durations)
    );
    for (segment_idx, duration) in durations.iter().enumerate() {
        let file = if track.segments_micros.is_empty() {
            crate::paths::TEXT_FILE.to_string()
        } else {
            crate::paths::text_segment_file_name(segment_idx + 1)
        };
        let _ = writeln!(out, "#EXTINF:{},\n{file}", seconds_text(*duration));
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "YES"
    } else {
        "NO"
    }
}

fn playlist_header(target_duration: u64, iframes_only: bool) -> String {
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target_duration}\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    );
    if iframes_only {
        out.push_str("#EXT-X-I-FRAMES-ONLY\n");
    } else {
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", crate::paths::INIT_SEGMENT);
    out
}

struct IframeEntry {
    /// 1-based segment number.
    number: usize,
    range: ByteRange,
    duration_micros: u64,
}

fn iframe_entries(segments: &[SegmentRef], timescale: u32) -> Vec<IframeEntry> {
    let listed: Vec<(usize, u64, ByteRange)> = segments
        .iter()
        .enumerate()
        .filter_map(|(segment_idx, segment)| {
            segment
                .iframe
                .map(|range| (segment_idx + 1, segment.start, range))
        })
        .collect();
    let track_end = segments
        .last()
        .map_or(0, |segment| segment.start.saturating_add(segment.duration));
    let ends = listed
        .iter()
        .skip(1)
        .map(|&(_, start, _)| start)
        .chain(std::iter::once(track_end));
    let origin = segments.first().map_or(0, |segment| segment.start);
    let durations = interval_micros(
        listed
            .iter()
            .zip(ends)
            .map(|(&(_, start, _), end)| (start, end)),
        origin,
        timescale,
    );
    listed
        .into_iter()
        .zip(durations)
        .map(|((number, _, range), duration_micros)| IframeEntry {
            number,
            range,
            duration_micros,
        })
        .collect()
}

/// RFC 8216 4.2: a quoted-string cannot contain `"`, CR or LF.
fn quoted(value: &str) -> String {
    value
        .chars()
        .map(|character| match character {
            '"' => '\'',
            '\r' | '\n' => ' ',
            other => other,
        })
        .collect()
}
