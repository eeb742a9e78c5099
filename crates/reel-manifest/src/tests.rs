//! Unit tests of the writers on hand-built presentations.

use quick_xml::events::Event;
use reel_core::FrameRate;

use crate::*;

const NTSC_SEGMENT: u64 = 120120;

/// Seven 4.004 s segments and a 2.002 s one at 30000/1001.
fn ntsc_segments() -> Vec<SegmentRef> {
    let mut segments: Vec<SegmentRef> = (0..7u64)
        .map(|segment_idx| SegmentRef {
            start: segment_idx * NTSC_SEGMENT,
            duration: NTSC_SEGMENT,
            size: 500_000 + segment_idx * 1000,
            iframe: Some(ByteRange {
                offset: 0,
                length: 40_000,
            }),
        })
        .collect();
    segments.push(SegmentRef {
        start: 7 * NTSC_SEGMENT,
        duration: NTSC_SEGMENT / 2,
        size: 250_000,
        iframe: Some(ByteRange {
            offset: 0,
            length: 40_000,
        }),
    });
    segments
}

/// 48 kHz AAC: 188 frames of 1024 samples per segment (4.010667 s), which
/// does not round to whole microseconds.
fn audio_segments(n_segments: u64) -> Vec<SegmentRef> {
    (0..n_segments)
        .map(|segment_idx| SegmentRef {
            start: segment_idx * 188 * 1024,
            duration: 188 * 1024,
            size: 64_000,
            iframe: None,
        })
        .collect()
}

fn video(id: &str, height: u32, peak_bitrate: u64) -> VideoRendition {
    VideoRendition {
        id: id.to_string(),
        codec: "avc1.64001f".to_string(),
        width: height * 16 / 9,
        height,
        frame_rate: FrameRate::new(30000, 1001).unwrap(),
        timescale: 30000,
        average_bitrate: peak_bitrate * 8 / 10,
        peak_bitrate,
        segments: ntsc_segments(),
    }
}

fn audio() -> AudioRendition {
    AudioRendition {
        id: "audio".to_string(),
        codec: "mp4a.40.2".to_string(),
        language: Some("en".to_string()),
        name: "English \"main\"".to_string(),
        default: false,
        channels: 2,
        sample_rate: 48000,
        timescale: 48000,
        average_bitrate: 128_000,
        peak_bitrate: 130_000,
        segments: audio_segments(8),
    }
}

fn presentation() -> Presentation {
    Presentation {
        video: vec![video("720p", 720, 3_000_000), video("360p", 360, 800_000)],
        audio: vec![audio()],
        text: Vec::new(),
        complete: true,
    }
}

/// The `EXTINF` values of a playlist, in microseconds, parsed back.
fn extinf_micros(playlist: &str) -> Vec<u64> {
    playlist
        .lines()
        .filter_map(|line| line.strip_prefix("#EXTINF:"))
        .map(|value| {
            let (seconds, fraction) = value.trim_end_matches(',').split_once('.').unwrap();
            assert_eq!(fraction.len(), 6, "{value}");
            seconds.parse::<u64>().unwrap() * 1_000_000 + fraction.parse::<u64>().unwrap()
        })
        .collect()
}

fn tag_value<'a>(playlist: &'a str, tag: &str) -> &'a str {
    playlist
        .lines()
        .find_map(|line| line.strip_prefix(tag))
        .unwrap_or_else(|| panic!("no {tag} in\n{playlist}"))
}

#[test]
fn media_playlist_lists_exact_durations() {
    let playlist = hls_media(&ntsc_segments(), 30000);
    let expected = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.004000,\nseg-00001.m4s\n";
    assert!(playlist.starts_with(expected), "{playlist}");
    assert!(
        playlist.ends_with("#EXTINF:2.002000,\nseg-00008.m4s\n#EXT-X-ENDLIST\n"),
        "{playlist}"
    );
    let durations = extinf_micros(&playlist);
    assert_eq!(durations.len(), 8);
    assert_eq!(durations.iter().sum::<u64>(), 30_030_000);
}

#[test]
fn extinf_sum_stays_within_a_microsecond() {
    // 1000 segments of 4.0106666... s: rounding each alone would drift by
    // 333 us; cumulative rounding keeps the sum exact to 1 us.
    let segments = audio_segments(1000);
    let durations = extinf_micros(&hls_media(&segments, 48000));
    let total_exact = 1000.0 * 188.0 * 1024.0 / 48000.0 * 1e6;
    let total_listed = durations.iter().sum::<u64>() as f64;
    assert!(
        (total_listed - total_exact).abs() <= 1.0,
        "{total_listed} vs {total_exact}"
    );
    assert!(durations
        .iter()
        .all(|&duration| duration == 4_010_666 || duration == 4_010_667));
}

#[test]
fn target_duration_is_the_largest_rounded_extinf() {
    let segment = |start: u64, duration: u64| SegmentRef {
        start,
        duration,
        size: 1,
        iframe: None,
    };
    // 4.004 s rounds to 4.
    assert_eq!(
        tag_value(
            &hls_media(&ntsc_segments(), 30000),
            "#EXT-X-TARGETDURATION:"
        ),
        "4"
    );
    // 6.4 s rounds to 6 and 4.5 s to 5: the target is 6.
    let mixed = [segment(0, 4500), segment(4500, 6400)];
    assert_eq!(
        tag_value(&hls_media(&mixed, 1000), "#EXT-X-TARGETDURATION:"),
        "6"
    );
    // 6.5 s rounds to 7.
    let long = [segment(0, 6500)];
    assert_eq!(
        tag_value(&hls_media(&long, 1000), "#EXT-X-TARGETDURATION:"),
        "7"
    );
    // Nothing, or a zero timescale from bad JSON, still gives a valid tag.
    assert_eq!(
        tag_value(&hls_media(&[], 30000), "#EXT-X-TARGETDURATION:"),
        "1"
    );
    assert_eq!(
        tag_value(&hls_media(&long, 0), "#EXT-X-TARGETDURATION:"),
        "1"
    );
}

#[test]
fn iframe_playlist_points_at_byte_ranges() {
    let mut segments = ntsc_segments();
    segments[2].iframe = None;
    let playlist = hls_iframes(&segments, 30000);
    assert!(
        playlist.contains("#EXT-X-I-FRAMES-ONLY\n#EXT-X-MAP:URI=\"init.mp4\"\n"),
        "{playlist}"
    );
    assert!(
        playlist.contains("#EXTINF:4.004000,\n#EXT-X-BYTERANGE:40000@0\nseg-00001.m4s\n"),
        "{playlist}"
    );
    // Segment 3 has no range, so segment 2's I-frame lasts two segments.
    assert!(playlist.contains("#EXTINF:8.008000,\n#EXT-X-BYTERANGE:40000@0\nseg-00002.m4s\n#EXTINF:4.004000,\n#EXT-X-BYTERANGE:40000@0\nseg-00004.m4s\n"), "{playlist}");
    assert_eq!(extinf_micros(&playlist).iter().sum::<u64>(), 30_030_000);
    assert_eq!(tag_value(&playlist, "#EXT-X-TARGETDURATION:"), "8");
}

#[test]
fn multivariant_orders_by_bandwidth_and_adds_audio() {
    let playlist = hls_multivariant(&presentation());
    let expected = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS

#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"English 'main'\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\"

#EXT-X-STREAM-INF:BANDWIDTH=930000,AVERAGE-BANDWIDTH=768000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=640x360,FRAME-RATE=29.970,AUDIO=\"audio\"
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=3130000,AVERAGE-BANDWIDTH=2528000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO=\"audio\"
720p/index.m3u8

#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=159841,AVERAGE-BANDWIDTH=85249,CODECS=\"avc1.64001f\",RESOLUTION=640x360,URI=\"360p/iframes.m3u8\"
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=159841,AVERAGE-BANDWIDTH=85249,CODECS=\"avc1.64001f\",RESOLUTION=1280x720,URI=\"720p/iframes.m3u8\"
";
    assert_eq!(playlist, expected);
}

#[test]
fn multivariant_handles_unknown_language_and_missing_parts() {
    let mut without_language = presentation();
    without_language.audio[0].language = None;
    assert!(hls_multivariant(&without_language).contains("LANGUAGE=\"und\""));

    let audio_only = Presentation {
        video: Vec::new(),
        audio: vec![audio()],
        text: Vec::new(),
        complete: true,
    };
    assert_eq!(
        hls_multivariant(&audio_only),
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\n#EXT-X-STREAM-INF:BANDWIDTH=130000,AVERAGE-BANDWIDTH=128000,CODECS=\"mp4a.40.2\"\naudio/index.m3u8\n"
    );

    let video_only = Presentation {
        video: vec![video("720p", 720, 3_000_000)],
        audio: Vec::new(),
        text: Vec::new(),
        complete: false,
    };
    let playlist = hls_multivariant(&video_only);
    assert!(playlist.contains("#EXT-X-STREAM-INF:BANDWIDTH=3000000,AVERAGE-BANDWIDTH=2400000,CODECS=\"avc1.64001f\",RESOLUTION=1280x720,FRAME-RATE=29.970\n"), "{playlist}");
    assert!(!playlist.contains("EXT-X-MEDIA"));
}

/// The attributes of one `S` element, in document order.
type Attributes = Vec<(String, String)>;

/// Parses the MPD with an XML reader and returns every `S` element's
/// attributes, per representation id, checking well-formedness on the way.
fn parse_timelines(mpd: &str) -> Vec<(String, Vec<Attributes>)> {
    let mut reader = quick_xml::Reader::from_str(mpd);
    let mut timelines: Vec<(String, Vec<Attributes>)> = Vec::new();
    let mut depth = 0i32;
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|error| panic!("bad XML: {error}\n{mpd}"));
        let attributes = |element: &quick_xml::events::BytesStart<'_>| -> Attributes {
            element
                .attributes()
                .map(|attribute| {
                    let attribute = attribute.unwrap();
                    (
                        String::from_utf8(attribute.key.as_ref().to_vec()).unwrap(),
                        attribute.unescape_value().unwrap().into_owned(),
                    )
                })
                .collect()
        };
        match event {
            Event::Start(element) => {
                depth += 1;
                if element.name().as_ref() == b"Representation" {
                    let id = attributes(&element)
                        .into_iter()
                        .find(|(key, _)| key == "id")
                        .unwrap()
                        .1;
                    timelines.push((id, Vec::new()));
                }
            }
            Event::Empty(element) if element.name().as_ref() == b"S" => {
                timelines.last_mut().unwrap().1.push(attributes(&element));
            }
            Event::End(_) => depth -= 1,
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unbalanced elements");
    timelines
}

fn pairs(items: &[(&str, &str)]) -> Attributes {
    items
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

#[test]
fn mpd_is_well_formed_with_compressed_timelines() {
    let mut presentation = presentation();
    presentation.video[0].id = "hd & \"co\"".to_string();
    let mpd = dash_mpd(&presentation);
    let timelines = parse_timelines(&mpd);
    let video_timeline = vec![
        pairs(&[("t", "0"), ("d", "120120"), ("r", "6")]),
        pairs(&[("d", "60060")]),
    ];
    assert_eq!(timelines[0], ("360p".to_string(), video_timeline.clone()));
    assert_eq!(timelines[1], ("hd & \"co\"".to_string(), video_timeline));
    assert_eq!(
        timelines[2],
        (
            "audio".to_string(),
            vec![pairs(&[("t", "0"), ("d", "192512"), ("r", "7")])]
        )
    );
    for expected in [
        "type=\"static\" mediaPresentationDuration=\"PT32.085333S\" minBufferTime=\"PT5S\"",
        "maxWidth=\"1280\" maxHeight=\"720\" maxFrameRate=\"30000/1001\"",
        "<Representation id=\"360p\" bandwidth=\"800000\" codecs=\"avc1.64001f\" width=\"640\" height=\"360\" frameRate=\"30000/1001\" sar=\"1:1\">",
        "<SegmentTemplate timescale=\"30000\" initialization=\"$RepresentationID$/init.mp4\" media=\"$RepresentationID$/seg-$Number%05d$.m4s\" startNumber=\"1\">",
        "contentType=\"audio\" mimeType=\"audio/mp4\" lang=\"en\"",
        "<AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"2\"/>",
    ] {
        assert!(mpd.contains(expected), "missing {expected} in\n{mpd}");
    }
}

#[test]
fn mpd_timeline_restarts_after_a_gap() {
    let mut presentation = presentation();
    presentation.audio.clear();
    presentation.video.truncate(1);
    presentation.video[0].segments.remove(3);
    let timelines = parse_timelines(&dash_mpd(&presentation));
    assert_eq!(
        timelines[0].1,
        vec![
            pairs(&[("t", "0"), ("d", "120120"), ("r", "2")]),
            pairs(&[("t", "480480"), ("d", "120120"), ("r", "2")]),
            pairs(&[("d", "60060")]),
        ]
    );
}

#[test]
fn presentation_round_trips_through_json() {
    let presentation = presentation();
    let json = serde_json::to_string(&presentation).unwrap();
    assert!(json.contains("\"frame_rate\":\"30000/1001\""), "{json}");
    let back: Presentation = serde_json::from_str(&json).unwrap();
    assert_eq!(back, presentation);
}

fn english_and_french() -> Presentation {
    let mut french = audio();
    french.id = "audio-fr".to_string();
    french.language = Some("fr".to_string());
    french.name = "Français".to_string();
    french.default = true;
    french.peak_bitrate = 150_000;
    let mut av1 = video("av1-720p", 720, 2_000_000);
    av1.codec = "av01.0.05M.08".to_string();
    Presentation {
        video: vec![video("h264-720p", 720, 3_000_000), av1],
        audio: vec![audio(), french],
        text: vec![TextTrack {
            id: "text-en".to_string(),
            language: Some("en".to_string()),
            name: "English".to_string(),
            default: false,
            duration_micros: 30_030_000,
            size: 3_003,
            segments_micros: Vec::new(),
        }],
        complete: true,
    }
}

#[test]
fn multivariant_lists_every_codec_language_and_text_track() {
    let playlist = hls_multivariant(&english_and_french());
    for expected in [
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"English 'main'\",LANGUAGE=\"en\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\"\n",
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"Français\",LANGUAGE=\"fr\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-fr/index.m3u8\"\n",
        "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"text\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=NO,AUTOSELECT=YES,URI=\"text-en/index.m3u8\"\n",
        // The largest audio peak of the group counts in every variant.
        "#EXT-X-STREAM-INF:BANDWIDTH=2150000,AVERAGE-BANDWIDTH=1728000,CODECS=\"av01.0.05M.08,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO=\"audio\",SUBTITLES=\"text\"\nav1-720p/index.m3u8\n",
        "#EXT-X-STREAM-INF:BANDWIDTH=3150000,AVERAGE-BANDWIDTH=2528000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO=\"audio\",SUBTITLES=\"text\"\nh264-720p/index.m3u8\n",
    ] {
        assert!(playlist.contains(expected), "missing {expected} in\n{playlist}");
    }
    // A track written before captions were segmented: its whole file.
    let mut track = english_and_french().text[0].clone();
    assert_eq!(
        hls_text(&track),
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:30\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:30.030000,\ncaptions.vtt\n#EXT-X-ENDLIST\n"
    );
    // Segmented: one WebVTT segment per media segment.
    track.segments_micros = vec![4_004_000, 4_004_000, 5_005_000];
    assert_eq!(
        hls_text(&track),
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:5\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:4.004000,\nseg-00001.vtt\n#EXTINF:4.004000,\nseg-00002.vtt\n#EXTINF:5.005000,\nseg-00003.vtt\n#EXT-X-ENDLIST\n"
    );
    assert_eq!(
        english_and_french().segment_durations_micros().len(),
        english_and_french().video[0].segments.len()
    );
}

#[test]
fn mpd_puts_each_codec_family_language_and_text_track_in_its_own_set() {
    let mpd = dash_mpd(&english_and_french());
    let timelines = parse_timelines(&mpd);
    let ids: Vec<&str> = timelines.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        ["av1-720p", "h264-720p", "audio", "audio-fr", "text-en"]
    );
    assert!(timelines[4].1.is_empty(), "a text track has no timeline");
    let sets = mpd.matches("<AdaptationSet ").count();
    assert_eq!(sets, 5, "{mpd}");
    for expected in [
        "<AdaptationSet id=\"0\" contentType=\"video\"",
        "<AdaptationSet id=\"1\" contentType=\"video\"",
        "lang=\"fr\" segmentAlignment=\"true\" startWithSAP=\"1\">\n      <Label>Français</Label>\n      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"main\"/>",
        "lang=\"en\" segmentAlignment=\"true\" startWithSAP=\"1\">\n      <Label>English &quot;main&quot;</Label>\n      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"alternate\"/>",
        "<AdaptationSet id=\"4\" contentType=\"text\" mimeType=\"text/vtt\" lang=\"en\">",
        "<Representation id=\"text-en\" bandwidth=\"800\">\n        <BaseURL>text-en/captions.vtt</BaseURL>",
    ] {
        assert!(mpd.contains(expected), "missing {expected} in\n{mpd}");
    }
}

#[test]
fn presentations_written_with_one_audio_rendition_still_read() {
    let mut old = serde_json::to_value(presentation()).unwrap();
    let single = old["audio"][0].clone();
    old["audio"] = single;
    old.as_object_mut().unwrap().remove("text");
    let back: Presentation = serde_json::from_value(old.clone()).unwrap();
    assert_eq!(back, presentation());
    old["audio"] = serde_json::Value::Null;
    let silent: Presentation = serde_json::from_value(old).unwrap();
    assert!(silent.audio.is_empty() && silent.text.is_empty());
}
