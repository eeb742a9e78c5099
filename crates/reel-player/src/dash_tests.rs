//! Tests of `dash.rs`: reel's own MPDs, steered MPDs, templates and hostile MPDs.

use reel_core::FrameRate;
use reel_manifest::{dash_mpd, AudioRendition, Presentation, SegmentRef, VideoRendition};
use reel_steer::Pathway;

use super::*;

fn limits() -> ManifestLimits {
    ManifestLimits::default()
}

fn resolved(rendition: &Rendition) -> MediaPlaylist {
    match &rendition.source {
        MediaSource::Dash(media, base) => media.resolve(base).expect("resolved"),
        MediaSource::Playlist(url) => panic!("a DASH rendition with a playlist URL {url}"),
    }
}

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
        audio: vec![AudioRendition {
            id: "audio".to_string(),
            codec: "mp4a.40.2".to_string(),
            language: None,
            name: "Audio".to_string(),
            default: true,
            channels: 2,
            sample_rate: 48000,
            timescale: 48000,
            average_bitrate: 128_000,
            peak_bitrate: 130_000,
            segments: segments(9, 192_512, 1024),
        }],
        text: Vec::new(),
        complete: true,
    }
}

#[test]
fn reels_mpd_becomes_a_ladder_with_resolved_segments() {
    let presentation = presentation();
    let mpd = dash_mpd(&presentation);
    let url = Url::parse("http://origin/v/abc/manifest.mpd").expect("url");
    assert!(is_mpd(&mpd, &url));
    let parsed = parse_mpd(&mpd, &url, &limits()).expect("parsed");
    assert_eq!(parsed.format, Format::Dash);
    assert!(parsed.steering.is_none());
    assert_eq!(parsed.pathways(), ["."]);
    // Video only: the audio representation is not a rendition.
    let ladder = parsed.ladder(".");
    assert_eq!(ladder.len(), 2);
    assert_eq!(ladder[0].bandwidth, 800_000);
    assert_eq!(ladder[1].bandwidth, 3_000_000);
    for (rendition, source) in ladder
        .iter()
        .zip([&presentation.video[1], &presentation.video[0]])
    {
        let media = resolved(rendition);
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
    let parsed = parse_mpd(&steered, &url, &limits()).expect("parsed");
    assert_eq!(parsed.pathways(), ["edge-1", "origin"]);
    let steering = parsed.steering.clone().expect("steering");
    assert_eq!(
        steering.server.as_str(),
        "http://router/v1/steering/abc?proto=dash"
    );
    assert_eq!(steering.initial.as_deref(), Some("edge-1"));
    let edge = parsed.ladder("edge-1");
    let media = resolved(&edge[1]);
    assert_eq!(
        media.segments[7].0.as_str(),
        "http://e1:8080/v/abc/720p/seg-00008.m4s"
    );
    let origin = parsed.ladder("origin");
    assert_eq!(
        resolved(&origin[0]).init.as_ref().map(Url::as_str),
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
            5,
            32
        )
        .expect("expanded"),
        "a/s-00007-90-5$.m4s"
    );
    assert!(expand("$Nope$", "a", 1, 0, 0, 32).is_err());
    assert!(expand("$Number", "a", 1, 0, 0, 32).is_err());
    assert!(expand("$Number%033d$", "a", 1, 0, 0, 32).is_err());
    let hls = Url::parse("http://e/v/x/master.m3u8").expect("url");
    assert!(!is_mpd("#EXTM3U\n", &hls));
    assert!(is_mpd("<MPD/>", &hls));
    assert!(is_mpd(
        "",
        &Url::parse("http://e/v/x/manifest.mpd").expect("url")
    ));
    assert!(parse_mpd("#EXTM3U\n", &hls, &limits()).is_err());
    assert!(parse_mpd("<MPD></MPD>", &hls, &limits()).is_err());
}

/// An MPD of one video representation with `template` and `timeline` (S elements).
fn mpd(template: &str, timeline: &str) -> String {
    format!(
            "<?xml version=\"1.0\"?><MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\"><Period>\
<AdaptationSet contentType=\"video\"><SegmentTemplate timescale=\"1000\" media=\"{template}\" initialization=\"init.mp4\">\
<SegmentTimeline>{timeline}</SegmentTimeline></SegmentTemplate>\
<Representation id=\"v\" bandwidth=\"100000\"/></AdaptationSet></Period></MPD>"
        )
}

#[test]
fn hostile_mpds_end_in_errors() {
    let url = Url::parse("http://e/v/x/manifest.mpd").expect("url");
    let ok = mpd("seg-$Number%05d$.m4s", "<S d=\"4000\" r=\"2\"/>");
    let parsed = parse_mpd(&ok, &url, &limits()).expect("a fine MPD");
    assert_eq!(resolved(&parsed.ladder(".")[0]).segments.len(), 3);
    let wide = mpd("seg-$Number%01000000000d$.m4s", "<S d=\"4000\"/>");
    assert!(
        matches!(parse_mpd(&wide, &url, &limits()), Err(ManifestError::Invalid { reason, .. }) if reason.contains("wider"))
    );
    let repeat = mpd(
        "seg-$Number$.m4s",
        &format!("<S d=\"4000\" r=\"{}\"/>", u64::MAX),
    );
    assert!(parse_mpd(&repeat, &url, &limits()).is_err());
    let repeat = mpd(
        "seg-$Number$.m4s",
        &format!("<S d=\"4000\" r=\"{}\"/>", i64::MAX),
    );
    assert!(matches!(
        parse_mpd(&repeat, &url, &limits()),
        Err(ManifestError::Limit { .. })
    ));
    let many = mpd("seg-$Number$.m4s", &"<S d=\"4000\" r=\"40000\"/>".repeat(3));
    assert!(matches!(
        parse_mpd(&many, &url, &limits()),
        Err(ManifestError::Limit { .. })
    ));
    let negative = mpd("seg-$Number$.m4s", "<S d=\"4000\" r=\"-1\"/>");
    assert!(parse_mpd(&negative, &url, &limits()).is_err());
    let deep = format!(
        "<MPD>{}{}</MPD>",
        "<a>".repeat(100_000),
        "</a>".repeat(100_000)
    );
    assert!(matches!(
        parse_mpd(&deep, &url, &limits()),
        Err(ManifestError::Limit { .. })
    ));
    assert!(parse_mpd("<MPD><Period>", &url, &limits()).is_err());
    assert!(parse_mpd("<html/>", &url, &limits()).is_err());
}

proptest::proptest! {
    #[test]
    fn any_text_is_an_mpd_or_an_error(text in "(<[A-Za-z]{1,3}( [a-z]=\"[0-9$%d]{0,4}\")?/?>|</[A-Za-z]{1,3}>|[a-z$%0-9 ]{0,5}){0,40}") {
        let url = Url::parse("http://e/manifest.mpd").expect("url");
        let _ = parse_mpd(&format!("<MPD>{text}</MPD>"), &url, &limits());
    }

    #[test]
    fn templates_expand_or_fail_within_the_width_limit(template in "[a-z$%0-9]{0,24}", number in proptest::prelude::any::<u64>()) {
        if let Ok(expanded) = expand(&template, "id", number, number, number, 32) {
            proptest::prop_assert!(expanded.len() <= template.len() * 32 + 64);
        }
    }
}
