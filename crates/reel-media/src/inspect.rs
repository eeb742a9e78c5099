//! Safe probing: ffprobe an upload and turn its report into a [`MediaInfo`].
//!
//! ffprobe runs with `-protocol_whitelist file` and `-format_whitelist` set
//! to [`ALLOWED_DEMUXERS`], so an HLS playlist, a DASH manifest, an ffconcat
//! list or an image sequence saved as `video.mp4` is refused before any
//! reference in it is opened. A second, short ffprobe pass reads the first
//! ~10 s of video packet timestamps to tell constant from variable frame rate.

use std::path::Path;
use std::time::Duration;

use reel_core::{ByteSize, FrameRate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::process::run_collect;
use crate::{ffprobe_command, MediaError};

/// The demuxers an upload may be opened with, as a `-format_whitelist` value.
///
/// ffmpeg matches every comma-separated part of a demuxer's name against this
/// list, so `mov` admits `mov,mp4,m4a,3gp,3g2,mj2` and `matroska` admits
/// `matroska,webm`. Left out on purpose: `hls`, `dash`, `concat`, `image2`
/// and other sequence or playlist demuxers (they open other files or URLs),
/// subtitle formats, `tty`, `lavfi`, and raw formats other than H.264/HEVC
/// elementary streams.
pub const ALLOWED_DEMUXERS: &str =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,flv,ogg,wav,mp3,aac,flac,mpeg,mxf,asf,ivf,h264,hevc";

/// How many seconds of video packets the frame-rate pass reads.
const PACKET_PASS_SECONDS: u32 = 10;

/// What reel accepts as input: the `[limits]` section of `reel.toml`, with
/// its one set of defaults, [`MediaLimits::standard`]. There is no
/// `Default`: every caller picks its limits, or takes the standard ones
/// explicitly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default = "MediaLimits::standard")]
pub struct MediaLimits {
    /// The largest file one request may upload.
    pub max_upload_size: ByteSize,
    /// Time limit of one ffprobe run.
    #[serde(with = "humantime_serde")]
    pub probe_timeout: Duration,
    /// The longest video accepted.
    #[serde(with = "humantime_serde")]
    pub max_duration: Duration,
    /// The widest video accepted, in coded pixels.
    pub max_width: u32,
    /// The tallest video accepted, in coded pixels.
    pub max_height: u32,
    /// The most streams of any kind a source may have.
    pub max_streams: u32,
    /// The highest video frame rate accepted.
    pub max_frame_rate: FrameRate,
    /// The most bytes one API key may hold: its videos' sources plus its
    /// unfinished uploads (unset: no quota).
    pub quota_per_key: Option<ByteSize>,
    /// The most seconds of video all of one API key's videos may last
    /// together, checked when each is probed (0: no limit); a video over
    /// it fails at the probe, before any encode task exists.
    pub media_seconds_per_key: u64,
    /// The address space of one ffmpeg or ffprobe child (RLIMIT_AS); a
    /// decode that needs more fails instead of exhausting the host.
    pub ffmpeg_memory: ByteSize,
}

impl MediaLimits {
    /// The limits for ordinary uploads: 20 GiB, a 60 s probe, 6 hours,
    /// 8192x8192 pixels, 16 streams, 240 frames per second, no byte quota,
    /// 100 hours of video per key, 2 GiB of address space per ffmpeg.
    pub fn standard() -> MediaLimits {
        MediaLimits {
            max_upload_size: ByteSize::from_bytes(20 << 30),
            probe_timeout: Duration::from_secs(60),
            max_duration: Duration::from_secs(6 * 3600),
            max_width: 8192,
            max_height: 8192,
            max_streams: 16,
            max_frame_rate: FrameRate::new(240, 1).expect("240 is a positive rate"),
            quota_per_key: None,
            media_seconds_per_key: 100 * 3600,
            ffmpeg_memory: ByteSize::from_bytes(2 << 30),
        }
    }
}

/// What reel knows about an accepted upload. Stored as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    /// ffprobe's name of the demuxer, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format_name: String,
    /// The file size.
    pub size_bytes: u64,
    /// The title's duration: the video stream's, or the audio stream's when
    /// there is no video, or the container's when the stream has none.
    pub duration_seconds: f64,
    /// The container's start time: the smallest start time of its streams.
    pub start_time_seconds: f64,
    /// The first decodable video stream that is not cover art.
    pub video: Option<VideoInfo>,
    /// The first decodable audio stream (the one marked default, if any is).
    pub audio: Option<AudioInfo>,
    /// Every other decodable audio stream, in container order: each
    /// becomes an audio track of its own (a language, a commentary).
    #[serde(default)]
    pub more_audio: Vec<AudioInfo>,
    /// The text subtitle streams (SubRip, ASS/SSA, mov_text, WebVTT), in
    /// container order: each becomes a WebVTT track.
    #[serde(default)]
    pub subtitles: Vec<SubtitleInfo>,
    /// The subtitle streams left out, with why (bitmap subtitles such as
    /// PGS or DVB are not converted to text): `stream 3: hdmv_pgs_subtitle …`.
    #[serde(default)]
    pub skipped_subtitles: Vec<String>,
    /// How many streams of each kind the container has.
    pub streams: StreamCounts,
}

/// A text subtitle stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubtitleInfo {
    /// The stream index in the container (for `-map 0:N`).
    pub index: u32,
    /// The codec, e.g. `subrip` or `mov_text`.
    pub codec: String,
    /// The `language` tag, unless absent or `und`.
    pub language: Option<String>,
    /// The `title` tag, when present.
    pub title: Option<String>,
    /// Whether the container marks it as the default track.
    pub default: bool,
}

/// Subtitle codecs that are text, which ffmpeg converts to WebVTT.
const TEXT_SUBTITLE_CODECS: &[&str] =
    &["subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text"];

fn subtitle_info(stream: &Value) -> Option<Result<SubtitleInfo, String>> {
    if stream["codec_type"] != "subtitle" {
        return None;
    }
    let index = u32::try_from(stream["index"].as_u64()?).ok()?;
    let codec = stream["codec_name"]
        .as_str()
        .unwrap_or("unknown")
        .to_string();
    if !TEXT_SUBTITLE_CODECS.contains(&codec.as_str()) {
        return Some(Err(format!(
            "stream {index}: {codec} (bitmap or unknown subtitles are not converted to text)"
        )));
    }
    Some(Ok(SubtitleInfo {
        index,
        codec,
        language: known_text(&stream["tags"]["language"]).filter(|language| language != "und"),
        title: known_text(&stream["tags"]["title"]),
        default: stream["disposition"]["default"].as_u64() == Some(1),
    }))
}

/// The video stream reel encodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VideoInfo {
    /// The stream index in the container (for `-map 0:N`).
    pub index: u32,
    /// The codec, e.g. `h264`.
    pub codec: String,
    /// The coded width in pixels.
    pub width: u32,
    /// The coded height in pixels.
    pub height: u32,
    /// The sample (pixel) aspect ratio as (num, den); (1, 1) when unknown.
    pub sample_aspect_ratio: (u32, u32),
    /// The width as shown: after the sample aspect ratio and the rotation.
    pub display_width: u32,
    /// The height as shown: after the rotation.
    pub display_height: u32,
    /// The display-matrix rotation in degrees as ffprobe reports it (ffmpeg
    /// 5.1 says -90 for a phone held upright); 0 when there is none.
    pub rotation_degrees: i32,
    /// The frame rate: `r_frame_rate` for constant-rate streams, the average
    /// rate for variable-rate ones.
    pub frame_rate: FrameRate,
    /// True when frame durations vary in the first ~10 s, or the nominal
    /// and average rates disagree.
    pub variable_frame_rate: bool,
    /// The pixel format, e.g. `yuv420p10le`.
    pub pix_fmt: String,
    /// Bits per sample, from the pixel format.
    pub bit_depth: u32,
    /// The transfer characteristic, e.g. `smpte2084`.
    pub color_transfer: Option<String>,
    /// The colour primaries, e.g. `bt2020`.
    pub color_primaries: Option<String>,
    /// The matrix coefficients, e.g. `bt2020nc`.
    pub color_space: Option<String>,
    /// True for PQ (`smpte2084`) and HLG (`arib-std-b67`) transfers.
    pub hdr: bool,
    /// The field order, e.g. `progressive` or `tt`, when known.
    pub field_order: Option<String>,
    /// The stream's first timestamp, in seconds of the source timeline.
    pub start_time_seconds: f64,
    /// The number of frames, when the container says.
    pub frame_count: Option<u64>,
    /// The stream's duration in seconds.
    pub duration_seconds: f64,
    /// Presentation times (source timeline, seconds) of the keyframes, from
    /// a packet scan of containers with an exact seek index (MP4, Matroska);
    /// empty otherwise. Used by the plan to seek each chunk to the keyframe
    /// just before it; not stored.
    #[serde(skip)]
    pub keyframes_seconds: Vec<f64>,
}

/// The audio stream reel encodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AudioInfo {
    /// The stream index in the container (for `-map 0:N`).
    pub index: u32,
    /// The codec, e.g. `aac`.
    pub codec: String,
    /// The number of channels.
    pub channels: u32,
    /// The channel layout, e.g. `stereo`, when known.
    pub channel_layout: Option<String>,
    /// Samples per second.
    pub sample_rate: u32,
    /// The stream's first timestamp, in seconds of the source timeline.
    pub start_time_seconds: f64,
    /// The stream's duration in seconds, when known.
    pub duration_seconds: Option<f64>,
    /// The `language` tag, e.g. `eng`, unless absent or `und`.
    pub language: Option<String>,
    /// The `title` tag, e.g. `Director's commentary`, when present.
    #[serde(default)]
    pub title: Option<String>,
    /// Whether the container marks it as the default track.
    #[serde(default)]
    pub default: bool,
}

/// How many streams of each kind a container has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCounts {
    /// Video streams, cover art included.
    pub video: u32,
    /// Audio streams.
    pub audio: u32,
    /// Subtitle streams.
    pub subtitle: u32,
    /// Data streams (timecode, metadata).
    pub data: u32,
    /// Streams of any other kind (attachments).
    pub other: u32,
}

/// Probes a local upload and returns what reel needs to plan its encode.
///
/// Fails with [`MediaError::Unprocessable`] when the file is not in a
/// supported container, has no decodable video or audio stream, has a zero
/// or unknown duration, or is over any of `limits`; `timeout` bounds each of
/// the two ffprobe runs.
pub async fn inspect(
    path: &Path,
    limits: &MediaLimits,
    timeout: Duration,
) -> Result<MediaInfo, MediaError> {
    let metadata = tokio::fs::metadata(path)
        .await
        .map_err(|source| MediaError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let size_bytes = metadata.len();
    if size_bytes == 0 {
        return Err(MediaError::unprocessable("the file is empty"));
    }
    if size_bytes > limits.max_upload_size.bytes() {
        return Err(MediaError::unprocessable(format!(
            "the file is {size_bytes} bytes, over the limit of {} bytes",
            limits.max_upload_size.bytes()
        )));
    }
    let json = ffprobe_json(path, timeout)
        .await
        .map_err(|error| match error {
            MediaError::Failed { stderr_tail, .. } => MediaError::unprocessable(format!(
                "not a supported container or not media ({stderr_tail}); accepted containers: {ALLOWED_DEMUXERS}"
            )),
            other => other,
        })?;
    let mut info = media_info_from_json(&json, size_bytes)?;
    check_stream_limits(&info, limits)?;
    let exact_seek_index =
        info.format_name.starts_with("mov,") || info.format_name.starts_with("matroska");
    if let Some(video) = info.video.as_mut() {
        let packet_times = video_packet_times(path, video.index, timeout).await?;
        apply_packet_times(video, &packet_times);
        if exact_seek_index {
            video.keyframes_seconds = keyframe_times(path, video.index, timeout).await?;
        }
    }
    check_limits(&info, limits)?;
    Ok(info)
}

/// Runs ffprobe `-show_format -show_streams` with the whitelists.
pub(crate) async fn ffprobe_json(path: &Path, limit: Duration) -> Result<Value, MediaError> {
    let mut command = ffprobe_command();
    command.args(["-show_format", "-show_streams"]).arg(path);
    let stdout = run_collect("ffprobe", command, limit).await?;
    serde_json::from_slice(&stdout).map_err(|error| MediaError::BadOutput {
        program: "ffprobe".to_string(),
        detail: error.to_string(),
    })
}

/// Runs ffprobe over the packets of one stream with `entries` options.
async fn read_packets(
    path: &Path,
    stream_index: u32,
    entries: &[&str],
    limit: Duration,
) -> Result<Vec<u8>, MediaError> {
    let mut command = ffprobe_command();
    command
        .args(["-select_streams", &stream_index.to_string()])
        .args(entries)
        .arg(path);
    run_collect("ffprobe", command, limit)
        .await
        .map_err(|error| match error {
            MediaError::Failed { stderr_tail, .. } => MediaError::unprocessable(format!(
                "the video packets cannot be read ({stderr_tail})"
            )),
            other => other,
        })
}

/// Reads the presentation times of the first seconds of one video stream.
async fn video_packet_times(
    path: &Path,
    stream_index: u32,
    limit: Duration,
) -> Result<Vec<f64>, MediaError> {
    let stdout = read_packets(
        path,
        stream_index,
        &[
            "-read_intervals",
            &format!("%+{PACKET_PASS_SECONDS}"),
            "-show_entries",
            "packet=pts_time,dts_time,duration_time",
        ],
        limit,
    )
    .await?;
    let json: Value = serde_json::from_slice(&stdout).map_err(|error| MediaError::BadOutput {
        program: "ffprobe".to_string(),
        detail: error.to_string(),
    })?;
    let packets = json["packets"].as_array().cloned().unwrap_or_default();
    Ok(packets
        .iter()
        .filter_map(|packet| number(&packet["pts_time"]).or_else(|| number(&packet["dts_time"])))
        .collect())
}

/// Reads the presentation times of every keyframe of one video stream: a
/// demux-only pass (no decoding), sorted.
async fn keyframe_times(
    path: &Path,
    stream_index: u32,
    limit: Duration,
) -> Result<Vec<f64>, MediaError> {
    // ffprobe_command asks for JSON; the last -of wins, and CSV is far
    // smaller for a long title's packet list.
    let stdout = read_packets(
        path,
        stream_index,
        &["-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"],
        limit,
    )
    .await?;
    Ok(parse_keyframe_csv(&String::from_utf8_lossy(&stdout)))
}

/// Parses `pts_time,flags` lines; keeps the times of packets flagged `K`.
fn parse_keyframe_csv(text: &str) -> Vec<f64> {
    let mut times: Vec<f64> = text
        .lines()
        .filter_map(|line| {
            let (pts, flags) = line.trim().split_once(',')?;
            if !flags.contains('K') {
                return None;
            }
            pts.parse::<f64>().ok().filter(|time| time.is_finite())
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

/// Builds a `MediaInfo` from ffprobe's JSON; `variable_frame_rate` only
/// reflects the nominal and average rates until the packet pass runs.
fn media_info_from_json(json: &Value, size_bytes: u64) -> Result<MediaInfo, MediaError> {
    let format = &json["format"];
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let format_name = format["format_name"].as_str().unwrap_or("").to_string();
    let format_start = number(&format["start_time"]).unwrap_or(0.0);
    let format_duration = number(&format["duration"]).filter(|seconds| *seconds > 0.0);

    let mut counts = StreamCounts {
        video: 0,
        audio: 0,
        subtitle: 0,
        data: 0,
        other: 0,
    };
    for stream in &streams {
        match stream["codec_type"].as_str().unwrap_or("") {
            "video" => counts.video += 1,
            "audio" => counts.audio += 1,
            "subtitle" => counts.subtitle += 1,
            "data" => counts.data += 1,
            _ => counts.other += 1,
        }
    }

    let video = streams
        .iter()
        .find_map(|stream| video_info(stream, format_start, format_duration));
    let mut audio_streams: Vec<AudioInfo> = streams
        .iter()
        .filter_map(|stream| audio_info(stream, format_start))
        .collect();
    // The default track first: it is the one players start with.
    if let Some(default_idx) = audio_streams.iter().position(|audio| audio.default) {
        let default = audio_streams.remove(default_idx);
        audio_streams.insert(0, default);
    }
    let mut audio_streams = audio_streams.into_iter();
    let audio = audio_streams.next();
    let more_audio: Vec<AudioInfo> = audio_streams.collect();
    let (mut subtitles, mut skipped_subtitles) = (Vec::new(), Vec::new());
    for found in streams.iter().filter_map(subtitle_info) {
        match found {
            Ok(subtitle) => subtitles.push(subtitle),
            Err(skipped) => skipped_subtitles.push(skipped),
        }
    }
    if video.is_none() && audio.is_none() {
        return Err(MediaError::unprocessable(
            "the file has no decodable video or audio stream",
        ));
    }
    let stream_duration = match (&video, &audio) {
        (Some(video), _) => Some(video.duration_seconds),
        (None, Some(audio)) => audio.duration_seconds,
        (None, None) => None,
    };
    let duration_seconds = stream_duration
        .filter(|seconds| *seconds > 0.0)
        .or(format_duration)
        .unwrap_or(0.0);
    Ok(MediaInfo {
        format_name,
        size_bytes,
        duration_seconds,
        start_time_seconds: format_start,
        video,
        audio,
        more_audio,
        subtitles,
        skipped_subtitles,
        streams: counts,
    })
}

fn video_info(
    stream: &Value,
    format_start: f64,
    format_duration: Option<f64>,
) -> Option<VideoInfo> {
    if stream["codec_type"] != "video" || stream["disposition"]["attached_pic"] == 1 {
        return None;
    }
    let codec = stream["codec_name"].as_str()?.to_string();
    // ffprobe leaves out the pixel format when it has no decoder for the
    // codec or cannot find the stream parameters.
    let pix_fmt = stream["pix_fmt"].as_str()?.to_string();
    let width = u32::try_from(stream["width"].as_u64()?).ok()?;
    let height = u32::try_from(stream["height"].as_u64()?).ok()?;
    if width == 0 || height == 0 {
        return None;
    }
    let nominal_rate = rate(&stream["r_frame_rate"]);
    let average_rate = rate(&stream["avg_frame_rate"]);
    let (frame_rate, rates_disagree) = match (nominal_rate, average_rate) {
        (Some(nominal), Some(average)) => {
            let disagree = (nominal.as_f64() - average.as_f64()).abs() > 0.01 * average.as_f64();
            (if disagree { average } else { nominal }, disagree)
        }
        (Some(nominal), None) => (nominal, false),
        (None, Some(average)) => (average, false),
        (None, None) => return None,
    };
    let sample_aspect_ratio = ratio(&stream["sample_aspect_ratio"]).unwrap_or((1, 1));
    let rotation_degrees = stream["side_data_list"]
        .as_array()
        .and_then(|side_data| {
            side_data
                .iter()
                .find(|entry| entry["side_data_type"] == "Display Matrix")
        })
        .and_then(|entry| number(&entry["rotation"]))
        .map(|degrees| degrees.round() as i32)
        .unwrap_or(0);
    let square_width = (f64::from(width) * f64::from(sample_aspect_ratio.0)
        / f64::from(sample_aspect_ratio.1))
    .round()
    .max(1.0) as u32;
    let (display_width, display_height) = if rotation_degrees.rem_euclid(180) == 90 {
        (height, square_width)
    } else {
        (square_width, height)
    };
    let color_transfer = known_text(&stream["color_transfer"]);
    let hdr = matches!(
        color_transfer.as_deref(),
        Some("smpte2084") | Some("arib-std-b67")
    );
    let start_time_seconds = number(&stream["start_time"]).unwrap_or(format_start);
    let duration_seconds = number(&stream["duration"])
        .filter(|seconds| *seconds > 0.0)
        // Matroska's DURATION tag is the stream's end time on the file's
        // timeline, not its length: subtract where the stream starts.
        .or_else(|| tag_duration(stream).map(|end| end - start_time_seconds))
        .or_else(|| format_duration.map(|seconds| seconds - (start_time_seconds - format_start)))
        .unwrap_or(0.0)
        .max(0.0);
    Some(VideoInfo {
        index: u32::try_from(stream["index"].as_u64()?).ok()?,
        codec,
        width,
        height,
        sample_aspect_ratio,
        display_width,
        display_height,
        rotation_degrees,
        frame_rate,
        variable_frame_rate: rates_disagree,
        bit_depth: bit_depth(&pix_fmt),
        pix_fmt,
        color_transfer,
        color_primaries: known_text(&stream["color_primaries"]),
        color_space: known_text(&stream["color_space"]),
        hdr,
        field_order: known_text(&stream["field_order"]),
        start_time_seconds,
        frame_count: stream["nb_frames"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .filter(|count| *count > 0),
        duration_seconds,
        keyframes_seconds: Vec::new(),
    })
}

fn audio_info(stream: &Value, format_start: f64) -> Option<AudioInfo> {
    if stream["codec_type"] != "audio" {
        return None;
    }
    let codec = stream["codec_name"].as_str()?.to_string();
    // Without a decoder ffprobe cannot tell the sample format.
    stream["sample_fmt"].as_str()?;
    let sample_rate: u32 = stream["sample_rate"].as_str()?.parse().ok()?;
    let channels = u32::try_from(stream["channels"].as_u64()?).ok()?;
    if sample_rate == 0 || channels == 0 {
        return None;
    }
    let start_time_seconds = number(&stream["start_time"]).unwrap_or(format_start);
    Some(AudioInfo {
        index: u32::try_from(stream["index"].as_u64()?).ok()?,
        codec,
        channels,
        channel_layout: known_text(&stream["channel_layout"]),
        sample_rate,
        start_time_seconds,
        duration_seconds: number(&stream["duration"])
            .filter(|seconds| *seconds > 0.0)
            .or_else(|| tag_duration(stream).map(|end| end - start_time_seconds))
            .filter(|seconds| *seconds > 0.0),
        language: known_text(&stream["tags"]["language"]).filter(|language| language != "und"),
        title: known_text(&stream["tags"]["title"]),
        default: stream["disposition"]["default"].as_u64() == Some(1),
    })
}

/// Records what the packet pass found: variable frame durations make the
/// stream VFR. The rate stays as chosen from the container: the average
/// rate when the nominal and average rates disagree, else the nominal one.
fn apply_packet_times(video: &mut VideoInfo, pts_seconds: &[f64]) {
    if is_variable_frame_rate(pts_seconds) {
        video.variable_frame_rate = true;
    }
}

/// Decides whether frame durations vary: after sorting presentation times,
/// more than 2 % of the deltas differ from the median delta by more than
/// 10 % of it (and by more than 1.5 ms, which absorbs the millisecond time
/// base of Matroska and FLV).
fn is_variable_frame_rate(pts_seconds: &[f64]) -> bool {
    let mut sorted: Vec<f64> = pts_seconds
        .iter()
        .copied()
        .filter(|t| t.is_finite())
        .collect();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    let deltas: Vec<f64> = sorted.windows(2).map(|pair| pair[1] - pair[0]).collect();
    if deltas.len() < 3 {
        return false;
    }
    let mut ordered = deltas.clone();
    ordered.sort_by(f64::total_cmp);
    let median = ordered[ordered.len() / 2];
    let tolerance = (0.1 * median).max(0.0015);
    let n_irregular = deltas
        .iter()
        .filter(|delta| (**delta - median).abs() > tolerance)
        .count();
    n_irregular * 50 > deltas.len()
}

fn check_stream_limits(info: &MediaInfo, limits: &MediaLimits) -> Result<(), MediaError> {
    let streams = &info.streams;
    let n_streams = streams.video + streams.audio + streams.subtitle + streams.data + streams.other;
    if n_streams > limits.max_streams {
        return Err(MediaError::unprocessable(format!(
            "the file has {n_streams} streams, over the limit of {}",
            limits.max_streams
        )));
    }
    Ok(())
}

fn check_limits(info: &MediaInfo, limits: &MediaLimits) -> Result<(), MediaError> {
    check_stream_limits(info, limits)?;
    if info.duration_seconds.is_nan() || info.duration_seconds <= 0.0 {
        return Err(MediaError::unprocessable(
            "the file has a zero or unknown duration",
        ));
    }
    let max_seconds = limits.max_duration.as_secs_f64();
    if info.duration_seconds > max_seconds {
        return Err(MediaError::unprocessable(format!(
            "the title is {:.1} s long, over the limit of {max_seconds:.0} s",
            info.duration_seconds
        )));
    }
    if let Some(video) = &info.video {
        if video.width > limits.max_width || video.height > limits.max_height {
            return Err(MediaError::unprocessable(format!(
                "the video is {}x{} pixels, over the limit of {}x{}",
                video.width, video.height, limits.max_width, limits.max_height
            )));
        }
        if video.frame_rate.as_f64() > limits.max_frame_rate.as_f64() {
            return Err(MediaError::unprocessable(format!(
                "the video has {:.2} frames per second, over the limit of {}",
                video.frame_rate.as_f64(),
                limits.max_frame_rate
            )));
        }
    }
    Ok(())
}

/// Bits per sample from an ffmpeg pixel format name: `yuv420p10le` → 10,
/// `p010le` → 10, `rgb48le` → 16, anything else → 8.
fn bit_depth(pix_fmt: &str) -> u32 {
    let name = pix_fmt
        .strip_suffix("le")
        .or_else(|| pix_fmt.strip_suffix("be"))
        .unwrap_or(pix_fmt);
    if let Some(depth) = ["p010", "p016", "p012", "p210", "p216", "p410", "p416"]
        .iter()
        .find(|prefix| name == **prefix)
        .and_then(|prefix| prefix[2..].parse::<u32>().ok())
    {
        return depth;
    }
    let digits: String = name
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<char>>()
        .into_iter()
        .rev()
        .collect();
    let before_digits = &name[..name.len() - digits.len()];
    match digits.parse::<u32>() {
        Ok(depth) if before_digits.ends_with('p') && (9..=16).contains(&depth) => depth,
        Ok(48) | Ok(64) if before_digits.starts_with("rgb") || before_digits.starts_with("bgr") => {
            16
        }
        _ => 8,
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.as_f64(),
        _ => None,
    }
    .filter(|number: &f64| number.is_finite())
}

fn rate(value: &Value) -> Option<FrameRate> {
    value.as_str()?.parse().ok()
}

fn ratio(value: &Value) -> Option<(u32, u32)> {
    let (num, den) = value.as_str()?.split_once(':')?;
    let num: u32 = num.parse().ok()?;
    let den: u32 = den.parse().ok()?;
    if num == 0 || den == 0 {
        return None;
    }
    Some((num, den))
}

fn known_text(value: &Value) -> Option<String> {
    value
        .as_str()
        .filter(|text| !text.is_empty() && *text != "unknown")
        .map(str::to_string)
}

/// Matroska keeps stream durations in a `DURATION` tag: `00:00:10.010000000`.
fn tag_duration(stream: &Value) -> Option<f64> {
    let text = stream["tags"]["DURATION"].as_str()?;
    let mut parts = text.split(':');
    let hours: f64 = parts.next()?.parse().ok()?;
    let minutes: f64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next()?.parse().ok()?;
    Some(hours * 3600.0 + minutes * 60.0 + seconds).filter(|total| *total > 0.0)
}

#[cfg(test)]
mod tests;
