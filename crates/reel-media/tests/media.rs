//! Runs real ffprobe and ffmpeg on sources generated per run with lavfi.
//!
//! Checks what the unit tests cannot: that ffprobe refuses disguised
//! playlists without fetching their references, that chunks come out frame
//! exact with absolute timestamps and identical init segments, and that
//! rotation, odd sizes, anamorphic pixels and 10-bit HDR come out as planned.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reel_media::encode::{
    audio_args, poster_args, run_ffmpeg, storyboard_args, storyboard_vtt, video_chunk_args,
    EncodeSettings, FfmpegProgress, StoryboardSettings,
};
use reel_media::plan::{plan, Plan, PlanSettings, Rung};
use reel_media::{inspect, MediaError, MediaInfo, MediaLimits};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

/// Runs ffmpeg synchronously to make a test source at `path`.
fn make_source_to(path: &Path, args: &[&str]) {
    reel_testkit::media::ffmpeg(args, path);
}

fn ffprobe(path: &Path, args: &[&str]) -> Value {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe must be installed: apt-get install ffmpeg");
    assert!(
        output.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("ffprobe prints JSON")
}

fn counted_frames(path: &Path) -> u64 {
    let json = ffprobe(
        path,
        &["-count_frames", "-show_entries", "stream=nb_read_frames"],
    );
    json["streams"][0]["nb_read_frames"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .expect("a frame count")
}

fn first_packet_dts(path: &Path) -> i64 {
    let json = ffprobe(
        path,
        &["-show_entries", "packet=pts,dts", "-read_intervals", "%+#1"],
    );
    json["packets"][0]["dts"].as_i64().expect("a dts")
}

fn video_stream(path: &Path) -> Value {
    ffprobe(path, &["-show_streams", "-select_streams", "v:0"])["streams"][0].clone()
}

/// The top-level boxes of an MP4 as (type, offset, size).
fn boxes(data: &[u8], start: usize, end: usize) -> Vec<(String, usize, usize)> {
    let mut found = Vec::new();
    let mut offset = start;
    while offset + 8 <= end {
        let size =
            u32::from_be_bytes(data[offset..offset + 4].try_into().expect("4 bytes")) as usize;
        let kind = String::from_utf8_lossy(&data[offset + 4..offset + 8]).into_owned();
        assert!(
            size >= 8 && offset + size <= end,
            "bad box {kind} at {offset}"
        );
        found.push((kind, offset, size));
        offset += size;
    }
    found
}

/// The `baseMediaDecodeTime` of every fragment, in order.
fn fragment_start_times(data: &[u8]) -> Vec<u64> {
    let mut times = Vec::new();
    for (_, moof_offset, moof_size) in boxes(data, 0, data.len())
        .into_iter()
        .filter(|(kind, ..)| kind == "moof")
    {
        for (_, traf_offset, traf_size) in boxes(data, moof_offset + 8, moof_offset + moof_size)
            .into_iter()
            .filter(|(kind, ..)| kind == "traf")
        {
            for (_, tfdt_offset, _) in boxes(data, traf_offset + 8, traf_offset + traf_size)
                .into_iter()
                .filter(|(kind, ..)| kind == "tfdt")
            {
                let body = &data[tfdt_offset + 8..];
                let time = if body[0] == 1 {
                    u64::from_be_bytes(body[4..12].try_into().expect("8 bytes"))
                } else {
                    u64::from(u32::from_be_bytes(body[4..8].try_into().expect("4 bytes")))
                };
                times.push(time);
            }
        }
    }
    times
}

/// Everything before the first `moof`: `ftyp` and `moov`, the init segment.
fn init_segment(data: &[u8]) -> Vec<u8> {
    let first_moof = boxes(data, 0, data.len())
        .into_iter()
        .find(|(kind, ..)| kind == "moof")
        .map(|(_, offset, _)| offset)
        .expect("a fragmented MP4");
    data[..first_moof].to_vec()
}

async fn inspect_and_plan(path: &Path, settings: &PlanSettings) -> (MediaInfo, Plan) {
    let info = inspect(path, &MediaLimits::standard(), LIMIT)
        .await
        .expect("inspectable");
    let planned = plan(&info, settings).expect("plannable");
    (info, planned)
}

fn settings_with(ladder: &[(&str, u32, u32)], segments_per_chunk: u32) -> PlanSettings {
    PlanSettings {
        ladder: ladder
            .iter()
            .map(|(name, short_side, bitrate_kbps)| Rung {
                name: name.to_string(),
                short_side: *short_side,
                bitrate_kbps: *bitrate_kbps,
            })
            .collect(),
        segments_per_chunk,
        codecs: vec![reel_media::plan::VideoCodec::H264],
    }
}

fn fast_encode() -> EncodeSettings {
    EncodeSettings {
        preset: "ultrafast".to_string(),
        ..EncodeSettings::standard()
    }
}

async fn run(args: Vec<OsString>) -> Vec<FfmpegProgress> {
    let mut reports = Vec::new();
    run_ffmpeg(args, LIMIT, |report| reports.push(report))
        .await
        .expect("ffmpeg succeeds");
    reports
}

async fn expect_unsupported(path: &Path) -> String {
    let error = inspect(path, &MediaLimits::standard(), LIMIT)
        .await
        .expect_err("not media");
    assert!(error.is_permanent(), "{error}");
    assert!(
        matches!(error, MediaError::Unprocessable { .. }),
        "{error:?}"
    );
    error.to_string()
}

#[tokio::test]
async fn disguised_playlists_and_non_media_are_refused_without_fetching() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("address").port();
    let other = dir.path().join("other.ts");
    std::fs::write(&other, b"secret").expect("write");

    let playlist = dir.path().join("evil.mp4");
    std::fs::write(
        &playlist,
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/hostname\n\
             #EXTINF:1,\n{}\n#EXTINF:1,\nhttp://127.0.0.1:{port}/x\n#EXTINF:1,\n\
             http://127.0.0.1:9/x\n#EXT-X-ENDLIST\n",
            other.display()
        ),
    )
    .expect("write");
    let message = expect_unsupported(&playlist).await;
    assert!(message.contains("not a supported container"), "{message}");

    let concat = dir.path().join("list.mkv");
    std::fs::write(
        &concat,
        format!(
            "ffconcat version 1.0\nfile {}\nfile http://127.0.0.1:{port}/y\n",
            other.display()
        ),
    )
    .expect("write");
    let message = expect_unsupported(&concat).await;
    assert!(message.contains("not a supported container"), "{message}");

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "these are not the frames you are looking for\n").expect("write");
    expect_unsupported(&text).await;

    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").expect("write");
    let message = expect_unsupported(&empty).await;
    assert_eq!(message, "the file is empty");

    match listener.accept() {
        Err(error) if error.kind() == ErrorKind::WouldBlock => {}
        other => panic!("ffprobe connected to the listener: {other:?}"),
    }
}

#[tokio::test]
async fn ntsc_chunks_are_frame_exact_with_absolute_times_and_one_init_segment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("source.mp4");
    // The container's timeline starts at 10 s, as after a cut from a stream.
    make_source_to(
        &source,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=30000/1001",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "10.01",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "250",
            "-c:a",
            "aac",
            "-output_ts_offset",
            "10",
        ],
    );
    let settings = settings_with(&[("180p", 180, 400), ("120p", 120, 200)], 1);
    let (info, planned) = inspect_and_plan(&source, &settings).await;
    let video = info.video.as_ref().expect("video");
    assert!(!video.variable_frame_rate);
    assert!((video.start_time_seconds - 10.0).abs() < 1e-6, "{video:?}");
    let video_plan = planned.video.as_ref().expect("video plan");
    assert_eq!(video_plan.origin_seconds, video.start_time_seconds);
    assert_eq!(video_plan.total_frames, 300);
    let chunk_frames: Vec<u32> = video_plan
        .chunks
        .iter()
        .map(|chunk| chunk.frame_count)
        .collect();
    assert_eq!(chunk_frames, [120, 120, 60]);
    let sizes: Vec<(u32, u32)> = video_plan
        .renditions
        .iter()
        .map(|rendition| (rendition.width, rendition.height))
        .collect();
    assert_eq!(sizes, [(320, 180), (214, 120)]);

    let mut init_segments: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 2];
    for chunk in &video_plan.chunks {
        let outputs: Vec<PathBuf> = video_plan
            .renditions
            .iter()
            .map(|rendition| {
                dir.path()
                    .join(format!("{}-{}.mp4", rendition.name, chunk.index))
            })
            .collect();
        let args = video_chunk_args(
            &source,
            video_plan,
            chunk,
            &video_plan.renditions,
            &outputs,
            &fast_encode(),
        );
        let reports = run(args).await;
        let times: Vec<Duration> = reports
            .iter()
            .filter_map(|report| report.out_time)
            .collect();
        assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?}");
        assert!(
            reports.last().is_some_and(|report| report.finished),
            "{reports:?}"
        );
        let start_ticks = chunk.start_frame * 3003;
        for (rendition_idx, output) in outputs.iter().enumerate() {
            assert_eq!(
                counted_frames(output),
                u64::from(chunk.frame_count),
                "{output:?}"
            );
            assert_eq!(first_packet_dts(output), start_ticks as i64, "{output:?}");
            let data = std::fs::read(output).expect("read chunk");
            let expected_fragments: Vec<u64> = (0..u64::from(chunk.frame_count).div_ceil(120))
                .map(|segment_idx| start_ticks + segment_idx * 120 * 3003)
                .collect();
            assert_eq!(
                fragment_start_times(&data),
                expected_fragments,
                "{output:?}"
            );
            init_segments[rendition_idx].push(init_segment(&data));
        }
    }
    for rendition_inits in &init_segments {
        assert!(
            rendition_inits.windows(2).all(|pair| pair[0] == pair[1]),
            "init segments differ between chunks"
        );
    }

    // Audio: once per title, on the same t=0, fragments every segment.
    let audio_plan = planned.audio.as_ref().expect("audio plan");
    let audio_output = dir.path().join("audio.mp4");
    run(audio_args(&source, audio_plan, &audio_output)).await;
    let data = std::fs::read(&audio_output).expect("read audio");
    let starts = fragment_start_times(&data);
    assert_eq!(starts.first(), Some(&0));
    let segment_samples = 4.004 * 48_000.0;
    for pair in starts.windows(2) {
        let gap = (pair[1] - pair[0]) as f64;
        assert!((gap - segment_samples).abs() <= 1024.0, "{starts:?}");
    }
    let stream = ffprobe(&audio_output, &["-show_streams"])["streams"][0].clone();
    assert_eq!(stream["sample_rate"], "48000");
    let duration: f64 = stream["duration"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .expect("duration");
    assert!((duration - 10.01).abs() < 0.05, "{duration}");
}

/// Encodes chunk 0 of the smallest rendition and returns its path.
async fn encode_first_chunk(source: &Path, planned: &Plan, dir: &Path) -> PathBuf {
    let video_plan = planned.video.as_ref().expect("video plan");
    let rendition = video_plan.renditions.last().expect("a rendition").clone();
    let output = dir.join("chunk.mp4");
    run(video_chunk_args(
        source,
        video_plan,
        &video_plan.chunks[0],
        &[rendition],
        std::slice::from_ref(&output),
        &fast_encode(),
    ))
    .await;
    output
}

#[tokio::test]
async fn sixty_fps_chunks_use_two_second_gops() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("source.mkv");
    make_source_to(
        &source,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=60",
            "-t",
            // 6 s: a 2 s tail, half a segment, stays a chunk of its own (a
            // shorter one would join the segment before it).
            "6",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let (_, planned) = inspect_and_plan(&source, &settings_with(&[("180p", 180, 400)], 1)).await;
    let video_plan = planned.video.as_ref().expect("video plan");
    assert_eq!(
        (video_plan.gop_frames, video_plan.segment_frames),
        (120, 240)
    );
    let chunk_frames: Vec<u32> = video_plan
        .chunks
        .iter()
        .map(|chunk| chunk.frame_count)
        .collect();
    assert_eq!(chunk_frames, [240, 120]);
    let last = video_plan.chunks.last().expect("a chunk");
    let output = dir.path().join("last.mp4");
    run(video_chunk_args(
        &source,
        video_plan,
        last,
        &video_plan.renditions,
        std::slice::from_ref(&output),
        &fast_encode(),
    ))
    .await;
    assert_eq!(counted_frames(&output), 120);
    // 90000 / 60 = 1500 ticks per frame.
    assert_eq!(first_packet_dts(&output), 240 * 1500);
}

#[tokio::test]
async fn odd_sizes_and_anamorphic_pixels_come_out_even_and_square() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("source.mkv");
    // FFV1 in 4:4:4 allows odd sizes, which 4:2:0 does not (testsrc2 and
    // crop round a 4:2:0 width down to even).
    make_source_to(
        &source,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=854x480:rate=25",
            "-t",
            "2",
            "-vf",
            "format=yuv444p,crop=853:480:0:0,setsar=4/3",
            "-c:v",
            "ffv1",
        ],
    );
    let (info, planned) = inspect_and_plan(&source, &PlanSettings::standard()).await;
    let video = info.video.as_ref().expect("video");
    assert_eq!(video.sample_aspect_ratio, (4, 3));
    assert_eq!((video.display_width, video.display_height), (1137, 480));
    let ladder: Vec<(u32, u32)> = planned
        .video
        .as_ref()
        .expect("video plan")
        .renditions
        .iter()
        .map(|rendition| (rendition.width, rendition.height))
        .collect();
    assert_eq!(ladder, [(1138, 480), (852, 360), (568, 240)]);
    let output = encode_first_chunk(&source, &planned, dir.path()).await;
    let stream = video_stream(&output);
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(568), Some(240))
    );
    assert_eq!(stream["sample_aspect_ratio"], "1:1");
}

#[tokio::test]
async fn rotated_sources_are_planned_and_encoded_upright() {
    let dir = tempfile::tempdir().expect("temp dir");
    let landscape = dir.path().join("landscape.mp4");
    make_source_to(
        &landscape,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    // ffmpeg 5.1 writes a display matrix from the rotate tag only when the
    // stream is copied, not when it is encoded.
    let source = dir.path().join("rotated.mp4");
    let landscape_text = landscape.to_str().expect("utf-8 temp path");
    make_source_to(
        &source,
        &[
            "-i",
            landscape_text,
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
        ],
    );
    let (info, planned) = inspect_and_plan(&source, &PlanSettings::standard()).await;
    let video = info.video.as_ref().expect("video");
    assert_eq!(video.rotation_degrees.abs(), 90, "{video:?}");
    assert_eq!((video.display_width, video.display_height), (180, 320));
    let rendition = &planned.video.as_ref().expect("video plan").renditions[0];
    assert_eq!(
        (rendition.name.as_str(), rendition.width, rendition.height),
        ("180p", 180, 320)
    );
    let output = encode_first_chunk(&source, &planned, dir.path()).await;
    let stream = video_stream(&output);
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(180), Some(320))
    );
    assert!(stream["side_data_list"].is_null(), "{stream}");
}

#[tokio::test]
async fn ten_bit_hdr_comes_out_eight_bit_sdr() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("hdr.mp4");
    make_source_to(
        &source,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25",
            "-t",
            "1",
            "-pix_fmt",
            "yuv420p10le",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-color_primaries",
            "bt2020",
            "-color_trc",
            "smpte2084",
            "-colorspace",
            "bt2020nc",
        ],
    );
    let (info, planned) = inspect_and_plan(&source, &PlanSettings::standard()).await;
    let video = info.video.as_ref().expect("video");
    assert_eq!((video.bit_depth, video.hdr), (10, true), "{video:?}");
    assert!(planned
        .video
        .as_ref()
        .expect("video plan")
        .tonemap
        .is_some());
    let output = encode_first_chunk(&source, &planned, dir.path()).await;
    assert_eq!(counted_frames(&output), 25);
    let stream = video_stream(&output);
    assert_eq!(stream["pix_fmt"], "yuv420p");
    assert_eq!(stream["color_transfer"], "bt709");
}

#[tokio::test]
async fn late_audio_is_preceded_by_silence() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("late.mp4");
    make_source_to(
        &source,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x90:rate=25",
            "-itsoffset",
            "0.5",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-c:a",
            "aac",
        ],
    );
    let (info, planned) = inspect_and_plan(&source, &PlanSettings::standard()).await;
    let audio = info.audio.as_ref().expect("audio");
    assert!((audio.start_time_seconds - 0.5).abs() < 0.05, "{audio:?}");
    let output = dir.path().join("audio.mp4");
    run(audio_args(
        &source,
        planned.audio.as_ref().expect("audio plan"),
        &output,
    ))
    .await;
    let loudness = |start: &str, end: &str| -> f64 {
        let result = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-i"])
            .arg(&output)
            .args([
                "-af",
                &format!("atrim={start}:{end},volumedetect"),
                "-f",
                "null",
                "-",
            ])
            .output()
            .expect("ffmpeg runs");
        let stderr = String::from_utf8_lossy(&result.stderr);
        stderr
            .lines()
            .find_map(|line| line.split("max_volume: ").nth(1))
            .and_then(|value| value.trim_end_matches(" dB").trim().parse().ok())
            .expect("volumedetect prints max_volume")
    };
    assert!(loudness("0", "0.4") < -80.0);
    assert!(loudness("0.6", "1.0") > -30.0);
}

#[tokio::test]
async fn poster_and_storyboard_match_their_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("source.mp4");
    make_source_to(
        &source,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25",
            "-t",
            "10.5",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
    );
    let (_, planned) = inspect_and_plan(&source, &PlanSettings::standard()).await;
    let video_plan = planned.video.as_ref().expect("video plan");
    let poster = dir.path().join("poster.jpg");
    run(poster_args(&source, video_plan, &poster)).await;
    let stream = video_stream(&poster);
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(640), Some(360))
    );

    let settings = StoryboardSettings {
        interval: Duration::from_secs(1),
        thumb_width: 160,
        columns: 4,
        rows: 2,
    };
    run(storyboard_args(&source, video_plan, &settings, dir.path())).await;
    let vtt = storyboard_vtt(video_plan, &settings);
    // 10.5 s at one thumbnail a second: 11 thumbnails on two sheets of 8.
    assert_eq!(vtt.matches("#xywh=").count(), 11);
    assert!(vtt.contains("storyboard-1.jpg#xywh=320,0,160,90"), "{vtt}");
    let first = video_stream(&dir.path().join("storyboard-0.jpg"));
    assert_eq!(
        (first["width"].as_u64(), first["height"].as_u64()),
        (Some(640), Some(180))
    );
    assert!(dir.path().join("storyboard-1.jpg").is_file());
    assert!(!dir.path().join("storyboard-2.jpg").exists());
}
