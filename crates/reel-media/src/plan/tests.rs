use super::*;
use crate::{AudioInfo, StreamCounts};

fn rate(text: &str) -> FrameRate {
    text.parse().expect("valid rate")
}

#[test]
fn chunks_seek_to_the_keyframe_before_them() {
    let mut source = video(1920, 1080, "30");
    source.duration_seconds = 12.0;
    source.keyframes_seconds = vec![0.0, 2.0, 4.0, 7.5, 9.0];
    let settings = PlanSettings {
        segments_per_chunk: 1,
        ..PlanSettings::standard()
    };
    let plan = plan_video(&source, &settings).expect("plan");
    let seeks: Vec<Option<f64>> = plan.chunks.iter().map(|chunk| chunk.seek_seconds).collect();
    assert_eq!(seeks, vec![Some(0.0), Some(4.0), Some(7.5)]);
    assert_eq!(plan.max_keyframe_gap_seconds, Some(3.5));
    source.keyframes_seconds.clear();
    let plan = plan_video(&source, &settings).expect("plan");
    assert!(plan.chunks.iter().all(|chunk| chunk.seek_seconds.is_none()));
    assert_eq!(plan.max_keyframe_gap_seconds, None);
}

fn video(width: u32, height: u32, frame_rate: &str) -> VideoInfo {
    VideoInfo {
        index: 0,
        codec: "h264".to_string(),
        width,
        height,
        sample_aspect_ratio: (1, 1),
        display_width: width,
        display_height: height,
        rotation_degrees: 0,
        frame_rate: rate(frame_rate),
        variable_frame_rate: false,
        pix_fmt: "yuv420p".to_string(),
        bit_depth: 8,
        color_transfer: None,
        color_primaries: None,
        color_space: None,
        hdr: false,
        field_order: Some("progressive".to_string()),
        start_time_seconds: 0.0,
        frame_count: None,
        duration_seconds: 10.01,
        keyframes_seconds: Vec::new(),
    }
}

fn audio(channels: u32) -> AudioInfo {
    AudioInfo {
        index: 1,
        codec: "aac".to_string(),
        channels,
        channel_layout: None,
        sample_rate: 44_100,
        start_time_seconds: 0.0,
        duration_seconds: Some(12.5),
        language: None,
        title: None,
        default: false,
    }
}

fn info(video: Option<VideoInfo>, audio: Option<AudioInfo>) -> MediaInfo {
    MediaInfo {
        format_name: "mov,mp4,m4a,3gp,3g2,mj2".to_string(),
        size_bytes: 1,
        duration_seconds: 10.01,
        start_time_seconds: 0.0,
        video,
        audio,
        more_audio: Vec::new(),
        subtitles: Vec::new(),
        skipped_subtitles: Vec::new(),
        streams: StreamCounts {
            video: 1,
            audio: 1,
            subtitle: 0,
            data: 0,
            other: 0,
        },
    }
}

/// The standard ladder in two-segment chunks.
fn video_plan(source: VideoInfo) -> VideoPlan {
    let settings = PlanSettings {
        segments_per_chunk: 2,
        ..PlanSettings::standard()
    };
    plan(&info(Some(source), None), &settings)
        .expect("plannable")
        .video
        .expect("video")
}

/// Checks the ladder as `name widthxheight`.
fn check_ladder(source: VideoInfo, expected: &[&str]) {
    let ladder: Vec<String> = video_plan(source)
        .renditions
        .iter()
        .map(|rendition| {
            format!(
                "{} {}x{}",
                rendition.name, rendition.width, rendition.height
            )
        })
        .collect();
    assert_eq!(ladder, expected);
}

#[test]
fn landscape_1080p_gets_the_whole_ladder() {
    check_ladder(
        video(1920, 1080, "30000/1001"),
        &[
            "1080p 1920x1080",
            "720p 1280x720",
            "480p 854x480",
            "360p 640x360",
            "240p 426x240",
        ],
    );
}

#[test]
fn portrait_is_scaled_on_its_short_side() {
    check_ladder(
        video(1080, 1920, "30"),
        &[
            "1080p 1080x1920",
            "720p 720x1280",
            "480p 480x854",
            "360p 360x640",
            "240p 240x426",
        ],
    );
}

#[test]
fn rotated_landscape_storage_is_planned_as_portrait() {
    let mut source = video(1280, 720, "30");
    source.rotation_degrees = -90;
    source.display_width = 720;
    source.display_height = 1280;
    check_ladder(
        source,
        &[
            "720p 720x1280",
            "480p 480x854",
            "360p 360x640",
            "240p 240x426",
        ],
    );
}

#[test]
fn odd_dimensions_become_even() {
    check_ladder(
        video(853, 480, "25"),
        &["480p 854x480", "360p 640x360", "240p 426x240"],
    );
}

#[test]
fn anamorphic_pixels_are_made_square() {
    let mut source = video(720, 576, "25");
    source.sample_aspect_ratio = (4, 3);
    source.display_width = 960;
    check_ladder(source, &["480p 800x480", "360p 600x360", "240p 400x240"]);
}

#[test]
fn a_tiny_source_keeps_its_size() {
    check_ladder(video(100, 60, "25"), &["60p 100x60"]);
    check_ladder(video(101, 61, "25"), &["60p 100x60"]);
}

#[test]
fn the_grid_is_two_second_gops_in_four_second_segments() {
    let ntsc = video_plan(video(1280, 720, "30000/1001"));
    assert_eq!(ntsc.frame_rate, rate("30000/1001"));
    assert_eq!(
        (ntsc.gop_frames, ntsc.segment_frames, ntsc.chunk_frames),
        (60, 120, 240)
    );
    assert_eq!(ntsc.total_frames, 300);
    assert_eq!(ntsc.timescale, 90_000);
    let chunks: Vec<(u64, u32)> = ntsc
        .chunks
        .iter()
        .map(|chunk| (chunk.start_frame, chunk.frame_count))
        .collect();
    assert_eq!(chunks, [(0, 240), (240, 60)]);
    assert!((ntsc.chunks[1].start_seconds - 8.008).abs() < 1e-9);

    let pal = video_plan(video(1280, 720, "25"));
    assert_eq!((pal.gop_frames, pal.segment_frames), (50, 100));
    let film = video_plan(video(1280, 720, "24000/1001"));
    assert_eq!((film.gop_frames, film.timescale), (48, 360_000));
}

#[test]
fn a_tail_shorter_than_half_a_segment_joins_the_segment_before_it() {
    let check = |total_frames: u64, expected: &[u64]| {
        assert_eq!(segment_grid(total_frames, 120), expected, "{total_frames}");
    };
    check(1, &[1]);
    check(119, &[119]);
    check(120, &[120]);
    check(121, &[121]);
    check(179, &[179]);
    check(180, &[120, 60]);
    check(270, &[120, 150]);
    check(360, &[120, 120, 120]);

    // 9 s at 29.97 fps in one-segment chunks: the 30-frame tail is no chunk
    // of its own but the end of the last one, and the keyframes stay on the
    // GOP grid (the joined segment has three GOPs).
    let mut source = video(640, 360, "30000/1001");
    source.duration_seconds = 9.0;
    let settings = PlanSettings {
        segments_per_chunk: 1,
        ..PlanSettings::standard()
    };
    let ntsc = plan_video(&source, &settings).expect("plan");
    assert_eq!(ntsc.total_frames, 270);
    assert_eq!(ntsc.segment_frame_counts(), vec![120, 150]);
    let titled = plan(&info(Some(source.clone()), None), &settings).expect("plan");
    assert_eq!(
        titled.segment_durations_micros(),
        vec![4_004_000, 5_005_000]
    );
    // Without video: 4 s segments of the 12.5 s stream, the 0.5 s tail
    // joined to the last.
    let sound = plan(&info(None, Some(audio(2))), &settings).expect("plan");
    assert_eq!(
        sound.segment_durations_micros(),
        vec![4_000_000, 4_000_000, 4_500_000]
    );
    let chunks: Vec<(u64, u32)> = ntsc
        .chunks
        .iter()
        .map(|chunk| (chunk.start_frame, chunk.frame_count))
        .collect();
    assert_eq!(chunks, [(0, 120), (120, 150)]);
    // Two-segment chunks group the same grid.
    let pairs = video_plan(source);
    let chunks: Vec<(u64, u32)> = pairs
        .chunks
        .iter()
        .map(|chunk| (chunk.start_frame, chunk.frame_count))
        .collect();
    assert_eq!(chunks, [(0, 270)]);
}

#[test]
fn a_source_shorter_than_a_segment_is_one_chunk() {
    let mut source = video(640, 360, "25");
    source.duration_seconds = 0.01;
    let short = video_plan(source);
    assert_eq!(short.total_frames, 1);
    assert_eq!(short.chunks.len(), 1);
    assert_eq!(short.chunks[0].frame_count, 1);
}

#[test]
fn frame_rates_above_60_are_halved() {
    assert_eq!(video_plan(video(1280, 720, "120")).frame_rate, rate("60"));
    assert_eq!(video_plan(video(1280, 720, "240")).frame_rate, rate("60"));
    assert_eq!(
        video_plan(video(1280, 720, "120000/1001")).frame_rate,
        rate("60000/1001")
    );
    assert_eq!(
        video_plan(video(1280, 720, "60000/1001")).frame_rate,
        rate("60000/1001")
    );
    assert_eq!(
        video_plan(video(1280, 720, "2997/100")).frame_rate,
        rate("30000/1001")
    );
    assert_eq!(video_plan(video(1280, 720, "15")).frame_rate, rate("15"));
    let hfr = video_plan(video(1920, 1080, "60"));
    assert_eq!(hfr.renditions[0].bitrate_kbps, 9000);
    assert_eq!(hfr.renditions[0].level, "4.2");
}

#[test]
fn variable_rates_round_to_a_standard_rate() {
    let mut source = video(1280, 720, "514/10");
    source.variable_frame_rate = true;
    assert_eq!(video_plan(source.clone()).frame_rate, rate("50"));
    source.frame_rate = rate("29");
    assert_eq!(video_plan(source).frame_rate, rate("30000/1001"));
}

#[test]
fn hdr_is_tone_mapped() {
    let mut source = video(3840, 2160, "25");
    source.pix_fmt = "yuv420p10le".to_string();
    source.bit_depth = 10;
    source.color_transfer = Some("smpte2084".to_string());
    source.hdr = true;
    let hdr = video_plan(source);
    assert_eq!(hdr.tonemap, Some(HdrTransfer::Pq));
    assert_eq!(hdr.renditions[0].name, "1080p");
    assert_eq!(video_plan(video(640, 360, "25")).tonemap, None);
}

#[test]
fn rates_and_levels_follow_the_rung() {
    let ladder = video_plan(video(1920, 1080, "25")).renditions;
    let summary: Vec<(u32, u32, u32, &str, &str)> = ladder
        .iter()
        .map(|rendition| {
            (
                rendition.bitrate_kbps,
                rendition.maxrate_kbps,
                rendition.bufsize_kbits,
                rendition.profile.as_str(),
                rendition.level.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (6000, 6600, 13200, "high", "4.0"),
            (3000, 3300, 6600, "high", "3.1"),
            (1100, 1210, 2420, "high", "3.0"),
            (730, 803, 1606, "main", "3.0"),
            (145, 160, 320, "main", "3.0"),
        ]
    );
}

#[test]
fn audio_follows_the_video_segments() {
    let mut source = video(640, 360, "30000/1001");
    source.start_time_seconds = 10.0;
    let planned = plan(
        &info(Some(source), Some(audio(6))),
        &PlanSettings::standard(),
    )
    .expect("plannable");
    assert_eq!(planned.origin_seconds, 10.0);
    assert!((planned.duration_seconds - 10.01).abs() < 1e-9);
    let audio_plan = planned.audio.expect("audio");
    assert_eq!((audio_plan.channels, audio_plan.bitrate_kbps), (2, 128));
    assert!((audio_plan.segment_seconds - 4.004).abs() < 1e-9);
}

#[test]
fn audio_only_uses_four_second_segments() {
    let planned = plan(&info(None, Some(audio(1))), &PlanSettings::standard()).expect("plannable");
    assert!(planned.video.is_none());
    assert_eq!(planned.duration_seconds, 12.5);
    let audio_plan = planned.audio.expect("audio");
    assert_eq!(
        (
            audio_plan.channels,
            audio_plan.sample_rate,
            audio_plan.bitrate_kbps
        ),
        (1, 48_000, 96)
    );
    assert_eq!(audio_plan.segment_seconds, 4.0);
}

#[test]
fn plans_round_trip_through_json() {
    let planned = plan(
        &info(Some(video(1280, 720, "30000/1001")), Some(audio(2))),
        &PlanSettings::standard(),
    )
    .expect("plannable");
    let json = serde_json::to_string(&planned).expect("serializes");
    assert!(json.contains("\"frame_rate\":\"30000/1001\""), "{json}");
    let back: Plan = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, planned);
}

#[test]
fn renditions_are_identified_by_codec_and_name() {
    let planned = plan(
        &info(Some(video(1280, 720, "30")), None),
        &PlanSettings::standard(),
    )
    .expect("plannable");
    let renditions = &planned.video.expect("video").renditions;
    let ids: Vec<String> = renditions.iter().map(|r| r.id().to_string()).collect();
    assert_eq!(ids, ["h264-720p", "h264-480p", "h264-360p", "h264-240p"]);
    assert!(renditions.iter().all(|r| r.codec == VideoCodec::H264));
    // Plans stored before renditions named their codec read as H.264.
    let mut old = serde_json::to_value(&renditions[0]).expect("serializes");
    assert_eq!(old["codec"], "h264");
    old.as_object_mut().expect("object").remove("codec");
    let back: RenditionPlan = serde_json::from_value(old).expect("deserializes");
    assert_eq!(back, renditions[0]);
}

#[test]
fn every_codec_gets_every_rung_at_its_share_of_the_bitrate() {
    let settings = PlanSettings {
        codecs: vec![VideoCodec::Hevc, VideoCodec::H264, VideoCodec::Av1],
        ..PlanSettings::standard()
    };
    let planned = plan(&info(Some(video(854, 480, "25")), None), &settings).expect("plannable");
    let renditions = &planned.video.expect("video").renditions;
    let summary: Vec<(String, u32, u32, &str, &str)> = renditions
        .iter()
        .map(|r| {
            (
                r.id().to_string(),
                r.height,
                r.bitrate_kbps,
                r.profile.as_str(),
                r.level.as_str(),
            )
        })
        .collect();
    let expected = [
        ("h264-480p", 480, 1100, "high", "3.0"),
        ("h264-360p", 360, 730, "main", "3.0"),
        ("h264-240p", 240, 145, "main", "3.0"),
        ("av1-480p", 480, 660, "main", ""),
        ("av1-360p", 360, 438, "main", ""),
        ("av1-240p", 240, 87, "main", ""),
        ("hevc-480p", 480, 770, "main", ""),
        ("hevc-360p", 360, 511, "main", ""),
        ("hevc-240p", 240, 101, "main", ""),
    ];
    let expected: Vec<(String, u32, u32, &str, &str)> = expected
        .into_iter()
        .map(|(id, height, kbps, profile, level)| (id.to_string(), height, kbps, profile, level))
        .collect();
    assert_eq!(summary, expected);
    // Settings stored before codecs were listed are H.264 only.
    let mut old = serde_json::to_value(PlanSettings::standard()).expect("serializes");
    old.as_object_mut().expect("object").remove("codecs");
    let back: PlanSettings = serde_json::from_value(old).expect("deserializes");
    assert_eq!(back.codecs, vec![VideoCodec::H264]);
    assert_eq!("av1".parse::<VideoCodec>().ok(), Some(VideoCodec::Av1));
    assert_eq!(
        "vp9"
            .parse::<VideoCodec>()
            .map_err(|error| error.to_string())
            .err(),
        Some("unknown video codec \"vp9\"; accepted: h264, av1, hevc".to_string())
    );
}
