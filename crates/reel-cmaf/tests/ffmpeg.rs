//! Reads and assembles files written by the real ffmpeg, with the flags the
//! pipeline uses (`/work/shared/notes/packaging.md`, appendix A).
//!
//! The media is generated once per test run into a temporary directory and
//! shared through a `OnceLock`. A missing ffmpeg fails the tests with an
//! install hint.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bytes::Bytes;
use reel_cmaf::{
    assemble, check_continuity, parse_fragmented, parse_init, CmafError, ParsedFile, TrackKind,
};

const FRAGMENT_FLAGS: &str =
    "+frag_keyframe+empty_moov+default_base_moof+frag_discont+negative_cts_offsets+cmaf+skip_trailer";

/// 29.97 fps, 60-frame GOPs, 120-frame (4.004 s) segments, 240-frame chunks.
const FRAMES_PER_CHUNK: u64 = 240;
const N_CHUNKS: u64 = 4;

struct Media {
    _dir: tempfile::TempDir,
    chunks: Vec<PathBuf>,
    small_chunk: PathBuf,
    hevc_chunk: PathBuf,
    audio: PathBuf,
    dir: PathBuf,
}

fn media() -> &'static Media {
    static MEDIA: OnceLock<Media> = OnceLock::new();
    MEDIA.get_or_init(generate)
}

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run {program} ({error}); install ffmpeg >= 5.1 (apt-get install ffmpeg)")
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn generate() -> Media {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = |name: &str| dir.path().join(name);
    let source = path("source.mp4");
    let total_seconds = format!(
        "{:.3}",
        (N_CHUNKS * FRAMES_PER_CHUNK) as f64 * 1001.0 / 30000.0
    );
    reel_testkit::media::Lavfi::video("320x240", "30000/1001", &total_seconds)
        .args(["-g", "250", "-pix_fmt", "yuv420p"])
        .write(&source);
    let encode_chunk = |chunk_idx: u64, scale: &str, codec: &[&str], output: &Path| {
        let first_frame = chunk_idx * FRAMES_PER_CHUNK;
        let start = format!("{:.6}", first_frame as f64 * 1001.0 / 30000.0);
        let filter = format!("fps=30000/1001:start_time={start},{scale}format=yuv420p");
        let frames = FRAMES_PER_CHUNK.to_string();
        let mut args = vec![
            "-hide_banner",
            "-nostdin",
            "-y",
            "-ss",
            &start,
            "-copyts",
            "-i",
            source.to_str().unwrap(),
            "-map",
            "0:v:0",
            "-an",
            "-sn",
            "-dn",
            "-map_metadata",
            "-1",
            "-vf",
            &filter,
        ];
        if chunk_idx + 1 < N_CHUNKS {
            args.extend(["-frames:v", &frames]);
        }
        args.extend(codec);
        args.extend([
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-force_key_frames",
            "expr:eq(mod(n,60),0)",
            "-movflags",
            FRAGMENT_FLAGS,
            "-use_editlist",
            "0",
            "-min_frag_duration",
            "4000000",
            "-f",
            "mp4",
            output.to_str().unwrap(),
        ]);
        run("ffmpeg", &args);
    };
    let x264 = [
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        "high",
        "-level:v",
        "3.0",
        "-crf",
        "23",
        "-sc_threshold",
        "0",
        "-bf",
        "2",
    ];
    let chunks: Vec<PathBuf> = (0..N_CHUNKS)
        .map(|chunk_idx| {
            let output = path(&format!("chunk_{chunk_idx:04}.mp4"));
            encode_chunk(chunk_idx, "", &x264, &output);
            output
        })
        .collect();
    let small_chunk = path("small_0001.mp4");
    encode_chunk(1, "scale=160:120,", &x264, &small_chunk);
    let hevc_chunk = path("hevc_0000.mp4");
    let x265 = [
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-tag:v",
        "hvc1",
        "-x265-params",
        "log-level=error",
    ];
    encode_chunk(0, "", &x265, &hevc_chunk);
    let audio = path("audio.mp4");
    run(
        "ffmpeg",
        &[
            "-hide_banner",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            &total_seconds,
            "-map",
            "0:a:0",
            "-vn",
            "-sn",
            "-dn",
            "-map_metadata",
            "-1",
            "-af",
            "aresample=async=1:first_pts=0",
            "-ac",
            "2",
            "-ar",
            "48000",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-movflags",
            "+empty_moov+default_base_moof+cmaf+skip_trailer",
            "-use_editlist",
            "0",
            "-frag_duration",
            "4004000",
            "-f",
            "mp4",
            audio.to_str().unwrap(),
        ],
    );
    Media {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        chunks,
        small_chunk,
        hevc_chunk,
        audio,
    }
}

fn read(path: &Path) -> Bytes {
    Bytes::from(std::fs::read(path).expect("generated file is readable"))
}

fn parse(path: &Path) -> ParsedFile {
    parse_fragmented(read(path)).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn ffprobe_stream(path: &Path) -> HashMap<String, String> {
    let output = run(
        "ffprobe",
        &[
            "-v", "error", "-select_streams", "0", "-count_frames", "-show_entries",
            "stream=codec_name,codec_tag_string,profile,level,width,height,channels,sample_rate,nb_read_frames",
            "-of", "default=nw=1", path.to_str().unwrap(),
        ],
    );
    output
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

#[test]
fn chunks_assemble_into_continuous_segments() {
    let media = media();
    let parsed: Vec<ParsedFile> = media.chunks.iter().map(|chunk| parse(chunk)).collect();
    for (chunk_idx, chunk) in parsed.iter().enumerate() {
        let starts: Vec<u64> = chunk
            .fragments
            .iter()
            .map(|fragment| fragment.base_decode_time())
            .collect();
        let chunk_start = chunk_idx as u64 * 240240;
        assert_eq!(
            starts,
            vec![chunk_start, chunk_start + 120120],
            "chunk {chunk_idx}"
        );
    }
    let track = assemble(parsed).unwrap();
    assert_eq!(track.info.timescale, 30000);
    assert_eq!(track.segments.len(), 8);
    for (segment_idx, segment) in track.segments.iter().enumerate() {
        assert_eq!(segment.number, segment_idx as u32 + 1);
        assert_eq!(segment.start, segment_idx as u64 * 120120);
        assert_eq!(segment.duration, 120120);
        assert_eq!(segment.sample_count, 120);
        let iframe = segment.iframe.unwrap();
        assert!(
            iframe.length > 1000 && iframe.length < segment.size,
            "{iframe:?}"
        );
    }
    check_continuity(&track, 0).unwrap();
    assert!(track.peak_bitrate() >= track.average_bitrate());
    assert!((track.total_duration_seconds() - 32.032).abs() < 1e-9);

    // The assembled track is a valid progressive-looking fMP4 file again.
    let joined = media.dir.join("joined.mp4");
    let mut bytes = track.init.to_vec();
    for segment in &track.segments {
        bytes.extend_from_slice(&segment.data);
    }
    std::fs::write(&joined, &bytes).unwrap();
    assert_eq!(ffprobe_stream(&joined)["nb_read_frames"], "960");
    let reparsed = assemble(vec![parse(&joined)]).unwrap();
    check_continuity(&reparsed, 0).unwrap();
}

/// The B-frame input really exercises version 1 `trun` entries with
/// negative composition offsets.
#[test]
fn ffmpeg_writes_negative_composition_offsets() {
    let data = read(&media().chunks[1]);
    let trun_at = data
        .windows(4)
        .position(|window| window == b"trun")
        .unwrap();
    let word = |at: usize| u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    let version_and_flags = word(trun_at + 4);
    assert_eq!(version_and_flags >> 24, 1, "trun version");
    let flags = version_and_flags & 0xff_ffff;
    assert_ne!(flags & 0x800, 0, "composition offsets present");
    let sample_count = word(trun_at + 8) as usize;
    let mut at = trun_at + 12;
    at += if flags & 0x1 != 0 { 4 } else { 0 };
    at += if flags & 0x4 != 0 { 4 } else { 0 };
    let entry_len = 4 * (flags & 0xf00).count_ones() as usize;
    let offset_field = entry_len - 4;
    let negative = (0..sample_count)
        .map(|sample_idx| word(at + sample_idx * entry_len + offset_field) as i32)
        .filter(|&offset| offset < 0)
        .count();
    assert!(negative > 0, "no negative composition offsets");
    let fragment = &parse(&media().chunks[1]).fragments[0];
    assert_eq!(fragment.sample_count() as usize, sample_count);
    assert!(fragment.starts_with_sync());
}

#[test]
fn codec_string_matches_ffprobe() {
    let media = media();
    let info = parse_init(&read(&media.chunks[0])).unwrap();
    let probed = ffprobe_stream(&media.chunks[0]);
    assert_eq!(probed["profile"], "High");
    let level: u8 = probed["level"].parse().unwrap();
    assert_eq!(
        info.codec,
        format!("{}.6400{level:02x}", probed["codec_tag_string"])
    );
    assert_eq!(info.codec, "avc1.64001e");
    assert_eq!(
        info.kind,
        TrackKind::Video {
            width: 320,
            height: 240
        }
    );

    let hevc = parse_init(&read(&media.hevc_chunk)).unwrap();
    let probed = ffprobe_stream(&media.hevc_chunk);
    assert_eq!(probed["profile"], "Main");
    let prefix = format!("hvc1.1.6.L{}.", probed["level"]);
    assert!(
        hevc.codec.starts_with(&prefix),
        "{} vs {prefix}",
        hevc.codec
    );
}

#[test]
fn audio_file_assembles() {
    let media = media();
    let track = assemble(vec![parse(&media.audio)]).unwrap();
    assert_eq!(track.info.codec, "mp4a.40.2");
    assert_eq!(ffprobe_stream(&media.audio)["profile"], "LC");
    assert_eq!(
        track.info.kind,
        TrackKind::Audio {
            channels: 2,
            sample_rate: 48000
        }
    );
    assert_eq!(track.info.timescale, 48000);
    assert!(
        track.segments.len() >= 8,
        "{} segments",
        track.segments.len()
    );
    assert!(track
        .segments
        .iter()
        .all(|segment| segment.iframe.is_none()));
    check_continuity(&track, 0).unwrap();
    // 32.032 s of audio rounded to whole 1024-sample frames.
    let total = track.total_duration_seconds();
    assert!((total - 32.032).abs() < 0.03, "{total}");
}

#[test]
fn rejects_a_chunk_with_another_resolution() {
    let media = media();
    let chunks = vec![parse(&media.chunks[0]), parse(&media.small_chunk)];
    assert_eq!(
        assemble(chunks).unwrap_err(),
        CmafError::InitMismatch { chunk: 1 }
    );
}

#[test]
fn rejects_a_missing_chunk() {
    let media = media();
    let chunks = vec![
        parse(&media.chunks[0]),
        parse(&media.chunks[1]),
        parse(&media.chunks[3]),
    ];
    assert_eq!(
        assemble(chunks).unwrap_err(),
        CmafError::Discontinuity {
            segment: 5,
            chunk: 2,
            expected: 480480,
            found: 720720
        }
    );
}

/// Truncates and corrupts a real chunk at many offsets: every attempt must
/// return `Ok` or `Err`, never panic.
#[test]
fn corrupted_real_file_never_panics() {
    let original = std::fs::read(&media().chunks[1]).unwrap();
    let init_len = parse(&media().chunks[1]).init.len();
    // Every byte of the headers, then a stride through the sample data.
    let offsets = (0..init_len + 2048).chain((init_len + 2048..original.len()).step_by(97));
    let mut n_errors = 0;
    for offset in offsets.filter(|&offset| offset < original.len()) {
        if parse_fragmented(Bytes::copy_from_slice(&original[..offset])).is_err() {
            n_errors += 1;
        }
        for replacement in [0xffu8, 0x00] {
            let mut corrupted = original.clone();
            corrupted[offset] = replacement;
            if let Ok(parsed) = parse_fragmented(Bytes::from(corrupted)) {
                if let Ok(track) = assemble(vec![parsed]) {
                    let _ = check_continuity(&track, 240240);
                }
            }
        }
    }
    assert!(n_errors > 0);
}
