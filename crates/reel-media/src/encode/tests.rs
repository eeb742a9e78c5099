//! Tests of the ffmpeg argument builders.

use super::*;
use crate::plan::{plan, PlanSettings};
use crate::{MediaInfo, StreamCounts, VideoInfo};

fn ntsc_plan(duration_seconds: f64) -> VideoPlan {
    let video = VideoInfo {
        index: 0,
        codec: "h264".to_string(),
        width: 320,
        height: 180,
        sample_aspect_ratio: (1, 1),
        display_width: 320,
        display_height: 180,
        rotation_degrees: 0,
        frame_rate: "30000/1001".parse().expect("rate"),
        variable_frame_rate: false,
        pix_fmt: "yuv420p".to_string(),
        bit_depth: 8,
        color_transfer: None,
        color_primaries: None,
        color_space: None,
        hdr: false,
        field_order: None,
        start_time_seconds: 0.0,
        frame_count: None,
        duration_seconds,
        keyframes_seconds: Vec::new(),
    };
    let info = MediaInfo {
        format_name: "mov,mp4,m4a,3gp,3g2,mj2".to_string(),
        size_bytes: 1,
        duration_seconds,
        start_time_seconds: 0.0,
        video: Some(video),
        audio: None,
        more_audio: Vec::new(),
        subtitles: Vec::new(),
        skipped_subtitles: Vec::new(),
        streams: StreamCounts {
            video: 1,
            audio: 0,
            subtitle: 0,
            data: 0,
            other: 0,
        },
    };
    // Two-segment chunks, as these tests were written for.
    let settings = PlanSettings {
        segments_per_chunk: 2,
        ..PlanSettings::standard()
    };
    plan(&info, &settings)
        .expect("plannable")
        .video
        .expect("video")
}

fn check_progress(lines: &str, expected: &[FfmpegProgress]) {
    let mut current = FfmpegProgress::default();
    let reports: Vec<FfmpegProgress> = lines
        .lines()
        .filter_map(|line| parse_progress_line(&mut current, line))
        .collect();
    assert_eq!(reports, expected);
}

#[test]
fn progress_blocks_become_reports() {
    check_progress(
        "frame=12\nfps=0.00\nout_time_us=-23220\nspeed=N/A\nprogress=continue\n\
         frame=300\nout_time_us=10010000\nout_time=00:00:10.010000\nspeed=12.5x\nprogress=end\n",
        &[
            FfmpegProgress {
                frame: Some(12),
                out_time: None,
                speed: None,
                finished: false,
            },
            FfmpegProgress {
                frame: Some(300),
                out_time: Some(Duration::from_micros(10_010_000)),
                speed: Some(12.5),
                finished: true,
            },
        ],
    );
}

#[test]
fn one_rendition_is_a_plain_chain_and_two_share_a_split() {
    let plan = ntsc_plan(30.0);
    let chunk = &plan.chunks[1];
    let settings = EncodeSettings::standard();
    let text = |args: Vec<OsString>| -> String {
        args.iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect::<Vec<String>>()
            .join(" ")
    };
    let single = text(video_chunk_args(
        Path::new("in.mp4"),
        &plan,
        chunk,
        &plan.renditions[..1],
        &[PathBuf::from("a.mp4")],
        &settings,
    ));
    assert!(
        single.contains("-ss 7.008000 -copyts -i in.mp4"),
        "{single}"
    );
    assert!(
        single.contains(
            "[0:0]setpts=PTS-0.000000/TB,fps=30000/1001:start_time=8.008000,\
             tpad=stop_mode=clone:stop_duration=8.008000[c0];[c0]scale=320:180,setsar=1,format=yuv420p[v0]"
        ),
        "{single}"
    );
    assert!(single.contains("-frames:v 240"), "{single}");
    assert!(single.contains("expr:eq(mod(n,60),0)"), "{single}");
    assert!(single.contains("-min_frag_duration 3987317"), "{single}");
    assert!(single.contains("-video_track_timescale 90000"), "{single}");
    let renditions = [plan.renditions[0].clone(), plan.renditions[0].clone()];
    let double = text(video_chunk_args(
        Path::new("in.mp4"),
        &plan,
        &plan.chunks[0],
        &renditions,
        &[PathBuf::from("a.mp4"), PathBuf::from("b.mp4")],
        &settings,
    ));
    assert!(!double.contains("-ss"), "{double}");
    assert!(
        double.contains(
            "[c0];[c0]scale=320:180,setsar=1,format=yuv420p,split=2[v0][c1];[c1]scale=320:180"
        ),
        "{double}"
    );
    assert_eq!(double.matches("-f mp4").count(), 2, "{double}");
}

#[test]
fn the_storyboard_index_matches_the_tiles() {
    let plan = ntsc_plan(12.0);
    let settings = StoryboardSettings {
        interval: Duration::from_secs(5),
        thumb_width: 160,
        columns: 2,
        rows: 1,
    };
    assert_eq!(
        storyboard_vtt(&plan, &settings),
        "WEBVTT\n\
         \n00:00:00.000 --> 00:00:05.000\nstoryboard-0.jpg#xywh=0,0,160,90\n\
         \n00:00:05.000 --> 00:00:10.000\nstoryboard-0.jpg#xywh=160,0,160,90\n\
         \n00:00:10.000 --> 00:00:12.012\nstoryboard-1.jpg#xywh=0,0,160,90\n"
    );
}

#[test]
fn interlaced_sources_go_through_bwdif_before_the_frame_rate() {
    let mut plan = ntsc_plan(30.0);
    plan.deinterlace = true;
    let args: Vec<String> = video_chunk_args(
        Path::new("in.mp4"),
        &plan,
        &plan.chunks[0],
        &plan.renditions[..1],
        &[PathBuf::from("a.mp4")],
        &EncodeSettings::standard(),
    )
    .iter()
    .map(|arg| arg.to_string_lossy().into_owned())
    .collect();
    let graph = args.join(" ");
    assert!(
        graph.contains(
            "[0:0]setpts=PTS-0.000000/TB,bwdif=mode=send_frame:parity=auto:deint=all,fps=30000/1001"
        ),
        "{graph}"
    );
}

#[test]
fn av1_and_hevc_renditions_key_every_gop_with_closed_gops() {
    let plan = ntsc_plan(30.0);
    let settings = EncodeSettings {
        threads: Some(1),
        ..EncodeSettings::standard()
    };
    let codec_args = |codec: VideoCodec| -> String {
        let rendition = RenditionPlan {
            codec,
            ..plan.renditions[0].clone()
        };
        let mut args = Vec::new();
        push_codec_args(&mut args, &rendition, "60", &settings);
        args.iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect::<Vec<String>>()
            .join(" ")
    };
    let h264 = codec_args(VideoCodec::H264);
    assert!(h264.starts_with("-c:v libx264 -preset veryfast"), "{h264}");
    assert!(h264.contains("-crf 21 -maxrate"), "{h264}");
    assert!(
        h264.contains("-force_key_frames expr:eq(mod(n,60),0)"),
        "{h264}"
    );
    let av1 = codec_args(VideoCodec::Av1);
    assert_eq!(
        av1,
        "-c:v libsvtav1 -preset 9 -crf 35 -maxrate 160k -bufsize 320k -g 60 \
         -svtav1-params scd=0:irefresh-type=2:lp=1"
    );
    let hevc = codec_args(VideoCodec::Hevc);
    assert_eq!(
        hevc,
        "-c:v libx265 -preset veryfast -profile:v main -crf 24 -maxrate 160k -bufsize 320k \
         -g 60 -keyint_min 60 -force_key_frames expr:eq(mod(n,60),0) -forced-idr 1 -bf 2 \
         -x265-params keyint=60:min-keyint=60:scenecut=0:open-gop=0:repeat-headers=0:log-level=error:pools=1 \
         -tag:v hvc1"
    );
}
