use super::*;

#[test]
fn keyframe_csv_keeps_flagged_packets_sorted() {
    let text = "0.066667,K__\n0.133333,___\n2.066667,K_\nN/A,K_\n1.5,K\n";
    assert_eq!(parse_keyframe_csv(text), vec![0.066667, 1.5, 2.066667]);
}

#[test]
fn bit_depth_comes_from_the_pixel_format() {
    for (pix_fmt, depth) in [
        ("yuv420p", 8),
        ("yuvj420p", 8),
        ("yuv420p10le", 10),
        ("yuv422p12be", 12),
        ("p010le", 10),
        ("nv12", 8),
        ("gray", 8),
        ("gray10le", 8),
        ("rgb48le", 16),
    ] {
        assert_eq!(bit_depth(pix_fmt), depth, "{pix_fmt}");
    }
}

#[test]
fn variable_frame_rate_needs_varying_deltas() {
    let steady: Vec<f64> = (0..300)
        .map(|idx| f64::from(idx) * 1001.0 / 30000.0)
        .collect();
    assert!(!is_variable_frame_rate(&steady));
    // Millisecond time bases alternate 33 and 34 ms at 29.97 fps.
    let rounded: Vec<f64> = steady
        .iter()
        .map(|t| (t * 1000.0).round() / 1000.0)
        .collect();
    assert!(!is_variable_frame_rate(&rounded));
    // Every 7th frame of a 60 fps stream dropped: the notes' VFR source.
    let dropped: Vec<f64> = (0..600)
        .filter(|idx| idx % 7 != 6)
        .map(|idx| f64::from(idx) / 60.0)
        .collect();
    assert!(is_variable_frame_rate(&dropped));
    assert!(!is_variable_frame_rate(&[0.0, 0.04]));
}

#[test]
fn reads_a_rotated_anamorphic_stream() {
    let json = serde_json::json!({
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "start_time": "0.000000", "duration": "10.0"},
        "streams": [
            {"index": 0, "codec_type": "video", "codec_name": "mjpeg", "pix_fmt": "yuvj420p",
             "width": 300, "height": 300, "r_frame_rate": "90000/1", "avg_frame_rate": "0/0",
             "disposition": {"attached_pic": 1}},
            {"index": 1, "codec_type": "video", "codec_name": "h264", "pix_fmt": "yuv420p10le",
             "width": 720, "height": 576, "sample_aspect_ratio": "16:15",
             "r_frame_rate": "25/1", "avg_frame_rate": "25/1", "color_transfer": "arib-std-b67",
             "start_time": "0.040000", "duration": "9.960000", "nb_frames": "249",
             "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}],
             "disposition": {"attached_pic": 0}},
            {"index": 2, "codec_type": "audio", "codec_name": "aac", "sample_fmt": "fltp",
             "sample_rate": "48000", "channels": 1, "channel_layout": "mono",
             "start_time": "0.000000", "tags": {"language": "und"}},
            {"index": 3, "codec_type": "subtitle", "codec_name": "mov_text"}
        ]
    });
    let info = media_info_from_json(&json, 1234).expect("valid");
    let video = info.video.expect("video");
    assert_eq!(video.index, 1);
    assert_eq!((video.display_width, video.display_height), (576, 768));
    assert_eq!(video.rotation_degrees, -90);
    assert_eq!(video.bit_depth, 10);
    assert!(video.hdr);
    assert_eq!(video.frame_count, Some(249));
    assert_eq!(video.frame_rate, FrameRate::new(25, 1).expect("rate"));
    let audio = info.audio.expect("audio");
    assert_eq!((audio.index, audio.channels, audio.language), (2, 1, None));
    assert_eq!(info.duration_seconds, 9.96);
    assert_eq!(
        info.streams,
        StreamCounts {
            video: 2,
            audio: 1,
            subtitle: 1,
            data: 0,
            other: 0
        }
    );
}

#[test]
fn limits_name_the_value_and_the_limit() {
    let json = serde_json::json!({
        "format": {"format_name": "matroska,webm", "duration": "10.0"},
        "streams": [
            {"index": 0, "codec_type": "video", "codec_name": "h264", "pix_fmt": "yuv420p",
             "width": 9000, "height": 9000, "r_frame_rate": "25/1", "avg_frame_rate": "25/1"}
        ]
    });
    let info = media_info_from_json(&json, 1).expect("valid");
    let error = check_limits(&info, &MediaLimits::standard()).expect_err("too big");
    assert!(error.is_permanent());
    assert_eq!(
        error.to_string(),
        "the video is 9000x9000 pixels, over the limit of 8192x8192"
    );
    let no_streams = serde_json::json!({"format": {"duration": "1"}, "streams": []});
    let error = media_info_from_json(&no_streams, 1).expect_err("nothing to decode");
    assert!(error.is_permanent(), "{error}");
    let mut zero = info.clone();
    zero.duration_seconds = 0.0;
    zero.video = None;
    let error = check_limits(&zero, &MediaLimits::standard()).expect_err("no duration");
    assert!(
        error.to_string().contains("zero or unknown duration"),
        "{error}"
    );
}

#[test]
fn a_matroska_duration_tag_is_an_end_time_after_the_stream_start() {
    // What ffprobe says of `-output_ts_offset 5` into Matroska: the format
    // starts with the audio (AAC priming), DURATION tags are end times.
    let json = serde_json::json!({
        "format": {"format_name": "matroska,webm", "start_time": "4.979000", "duration": "8.000000"},
        "streams": [
            {"index": 0, "codec_type": "video", "codec_name": "h264", "pix_fmt": "yuv420p",
             "width": 160, "height": 90, "r_frame_rate": "25/1", "avg_frame_rate": "25/1",
             "start_time": "5.000000", "tags": {"DURATION": "00:00:08.000000000"}},
            {"index": 1, "codec_type": "audio", "codec_name": "aac", "sample_fmt": "fltp",
             "sample_rate": "48000", "channels": 1, "start_time": "4.979000",
             "tags": {"DURATION": "00:00:08.000000000"}}
        ]
    });
    let info = media_info_from_json(&json, 1).expect("valid");
    let video = info.video.expect("video");
    assert!((video.duration_seconds - 3.0).abs() < 1e-9, "{video:?}");
    assert!((info.duration_seconds - 3.0).abs() < 1e-9);
    let audio = info.audio.expect("audio");
    let audio_seconds = audio.duration_seconds.expect("audio duration");
    assert!((audio_seconds - 3.021).abs() < 1e-9, "{audio:?}");
}
