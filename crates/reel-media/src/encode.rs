//! ffmpeg argument lists for the encodes of a [`Plan`](crate::plan::Plan), and the
//! runner that executes them with progress reports.
//!
//! Every argument list is complete and can be pasted into a shell after
//! `ffmpeg`; [`run_ffmpeg`] only adds `-nostats -progress pipe:1`. Inputs are
//! opened with `-protocol_whitelist file` and the demuxer whitelist, read with
//! `-copyts`, and the filter graph subtracts the plan's origin, so every
//! output starts at the same t=0.
//!
//! A video chunk decodes the source once from just before its first frame and
//! feeds every requested rendition through a `split` filter. The `fps` filter
//! puts frames on the plan's grid and `-frames:v` cuts each output to the
//! chunk's exact frame count; `tpad` clones the last frame, so a source that
//! ends early still fills its last chunk. The MP4 flags (from the packaging
//! notes, verified on ffmpeg 5.1) write one `moof` per segment with an
//! absolute `tfdt`, no edit list and first-frame PTS = DTS, so the chunks of
//! a rendition share one `moov` and their fragments are the media segments.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::plan::{AudioPlan, ChunkPlan, HdrTransfer, RenditionPlan, VideoCodec, VideoPlan};
use crate::process::run_lines;
use crate::{MediaError, ALLOWED_DEMUXERS};

/// How far before a chunk's first frame the input seek lands, so the
/// decoder starts from a keyframe at or before it even with inexact seeking
/// (MPEG-TS); the `fps` filter drops the extra frames.
const SEEK_MARGIN_SECONDS: f64 = 1.0;

/// The widest poster.
const POSTER_MAX_WIDTH: u32 = 1280;

/// How the encoders are driven. No `Default`: take [`EncodeSettings::standard`].
#[derive(Clone, Debug, PartialEq)]
pub struct EncodeSettings {
    /// The x264 preset, e.g. `veryfast`; x265 takes the same name.
    pub preset: String,
    /// The SVT-AV1 preset, 0 (slowest) to 13 (fastest).
    pub av1_preset: u8,
    /// Constant quality or average bitrate, both capped by the rendition's
    /// VBV maximum rate and buffer.
    pub rate_control: RateControl,
    /// Threads per output (x264 `-threads`, SVT-AV1 `lp`, x265 `pools`);
    /// `None` lets each encoder choose.
    pub threads: Option<u32>,
}

/// How the encoders spend bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateControl {
    /// Constant quality capped by `-maxrate`/`-bufsize`: x264's CRF
    /// `h264`, x265's `hevc`, SVT-AV1's `av1` (its own 0–63 scale).
    Crf {
        /// x264's `-crf`.
        h264: u8,
        /// SVT-AV1's `-crf`.
        av1: u8,
        /// x265's `-crf`.
        hevc: u8,
    },
    /// The rendition's average bitrate (`-b:v`), capped likewise.
    Bitrate,
}

impl EncodeSettings {
    /// x264 `veryfast` at CRF 21, SVT-AV1 preset 9 at CRF 35 (its default
    /// quality), x265 at CRF 24 (x265's CRF is about 3 higher than x264's
    /// at the same quality), each capped by the rung's VBV; threads
    /// chosen by each encoder.
    pub fn standard() -> EncodeSettings {
        EncodeSettings {
            preset: "veryfast".to_string(),
            av1_preset: 9,
            rate_control: RateControl::Crf {
                h264: 21,
                av1: 35,
                hevc: 24,
            },
            threads: None,
        }
    }
}

/// One `-progress` report of a running ffmpeg.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FfmpegProgress {
    /// Frames written so far (video outputs only).
    pub frame: Option<u64>,
    /// The output time reached, when ffmpeg knows it.
    pub out_time: Option<Duration>,
    /// The speed as a multiple of real time, e.g. 3.2.
    pub speed: Option<f64>,
    /// True on the last report (`progress=end`).
    pub finished: bool,
}

/// How storyboards (seek-preview sprite sheets) are made.
#[derive(Clone, Debug, PartialEq)]
pub struct StoryboardSettings {
    /// The time between thumbnails; under 0.1 s counts as 0.1 s.
    pub interval: Duration,
    /// The thumbnail width in pixels (the height follows the aspect ratio).
    pub thumb_width: u32,
    /// Thumbnails per sheet row; 0 counts as 1.
    pub columns: u32,
    /// Rows per sheet; 0 counts as 1.
    pub rows: u32,
}

impl StoryboardSettings {
    /// One 160-pixel-wide thumbnail every 5 s, 10x10 per sheet.
    pub fn standard() -> StoryboardSettings {
        StoryboardSettings {
            interval: Duration::from_secs(5),
            thumb_width: 160,
            columns: 10,
            rows: 10,
        }
    }
}

/// Runs ffmpeg with `args` (as built by this module), kills it after
/// `limit`, and calls `on_progress` with every `-progress` report. Failures
/// carry the exit status, the command line and the tail of stderr.
pub async fn run_ffmpeg(
    args: Vec<OsString>,
    limit: Duration,
    mut on_progress: impl FnMut(FfmpegProgress) + Send,
) -> Result<(), MediaError> {
    let mut command = Command::new("ffmpeg");
    command
        .args(["-nostats", "-progress", "pipe:1"])
        .args(crate::process::with_max_pixels(args));
    let mut current = FfmpegProgress::default();
    run_lines("ffmpeg", command, limit, |line| {
        if let Some(report) = parse_progress_line(&mut current, line) {
            on_progress(report);
        }
    })
    .await
}

/// The arguments that encode one chunk into several renditions from one
/// decode: `outputs[i]` receives `renditions[i]` (extra entries of the longer
/// slice are ignored). Each output is a fragmented MP4 with exactly
/// `chunk.frame_count` frames, a keyframe every `plan.gop_frames` and a
/// fragment every `plan.segment_frames`, timestamped from
/// `chunk.start_seconds` in `plan.timescale`.
pub fn video_chunk_args(
    source: &Path,
    plan: &VideoPlan,
    chunk: &ChunkPlan,
    renditions: &[RenditionPlan],
    outputs: &[PathBuf],
    settings: &EncodeSettings,
) -> Vec<OsString> {
    debug_assert_eq!(renditions.len(), outputs.len());
    let n_outputs = renditions.len().min(outputs.len());
    let mut args = input_args();
    if skips_deblocking(plan, renditions) {
        // Every output is at most a third of the top rendition's size: the
        // blocking that skipping the deblocking filter leaves is averaged
        // away by the downscale, and the decode is about 15 % cheaper.
        push(&mut args, ["-skip_loop_filter", "all"]);
    }
    if chunk.start_frame > 0 {
        // With -copyts and -seek_timestamp the seek is in source time.
        // ffmpeg's accurate seek would trim at a position that ignores
        // -seek_timestamp, so it is off and the fps filter trims instead.
        // With a scanned keyframe the seek lands exactly on it (the slack
        // keeps rounding from landing one keyframe earlier); without one,
        // a margin covers inexact seeking (MPEG-TS).
        let seek_seconds = match chunk.seek_seconds {
            Some(keyframe) => keyframe + 0.0005,
            None => plan.origin_seconds + chunk.start_seconds - SEEK_MARGIN_SECONDS,
        };
        push(
            &mut args,
            ["-noaccurate_seek", "-seek_timestamp", "1", "-ss"],
        );
        args.push(seconds(seek_seconds).into());
    }
    push(&mut args, ["-copyts", "-i"]);
    args.push(source.into());

    let chunk_seconds = plan.frames_to_seconds(u64::from(chunk.frame_count));
    let mut graph = format!(
        "[0:{index}]setpts=PTS-{origin}/TB,{deinterlace}fps={rate}:start_time={start},\
         tpad=stop_mode=clone:stop_duration={pad}",
        deinterlace = deinterlace_filter(plan),
        index = plan.source_index,
        origin = seconds(plan.origin_seconds),
        rate = plan.frame_rate,
        start = seconds(chunk.start_seconds),
        pad = seconds(chunk_seconds),
    );
    if let Some(transfer) = plan.tonemap {
        graph.push(',');
        graph.push_str(&tonemap_filter(transfer));
    }
    // Cascaded scaling: each rendition is scaled from the next larger one,
    // not from the source, which costs a third less than scaling every
    // rendition from full size (measured on a 1080p ladder).
    let mut order: Vec<usize> = (0..n_outputs).collect();
    order.sort_by_key(|idx| {
        std::cmp::Reverse(u64::from(renditions[*idx].width) * u64::from(renditions[*idx].height))
    });
    graph.push_str("[c0]");
    for (step, output_idx) in order.iter().enumerate() {
        let rendition = &renditions[*output_idx];
        let last = step + 1 == order.len();
        graph.push_str(&format!(
            ";[c{step}]scale={}:{},setsar=1,format=yuv420p",
            rendition.width, rendition.height
        ));
        if last {
            graph.push_str(&format!("[v{output_idx}]"));
        } else {
            graph.push_str(&format!(",split=2[v{output_idx}][c{}]", step + 1));
        }
    }
    push(&mut args, ["-filter_complex"]);
    args.push(graph.into());

    let gop = plan.gop_frames.to_string();
    let segment_micros = plan.frames_to_seconds(u64::from(plan.segment_frames)) * 1e6;
    let half_frame_micros = plan.frames_to_seconds(1) * 1e6 / 2.0;
    let min_fragment_micros = (segment_micros - half_frame_micros).round().max(1.0);
    for (output_idx, (rendition, output)) in renditions.iter().zip(outputs).enumerate() {
        args.push("-map".into());
        args.push(format!("[v{output_idx}]").into());
        push(
            &mut args,
            [
                "-an",
                "-sn",
                "-dn",
                "-map_metadata",
                "-1",
                "-map_chapters",
                "-1",
            ],
        );
        args.push("-frames:v".into());
        args.push(chunk.frame_count.to_string().into());
        push_codec_args(&mut args, rendition, &gop, settings);
        if plan.tonemap.is_some() {
            push(
                &mut args,
                [
                    "-color_primaries",
                    "bt709",
                    "-color_trc",
                    "bt709",
                    "-colorspace",
                    "bt709",
                ],
            );
        }
        args.push("-video_track_timescale".into());
        args.push(plan.timescale.to_string().into());
        // Fragments numbered as the title's segments (1-based), so the
        // packager can use them without rewriting their mfhd.
        args.push("-fragment_index".into());
        args.push(
            (chunk.start_frame / u64::from(plan.segment_frames.max(1)) + 1)
                .to_string()
                .into(),
        );
        push(
            &mut args,
            [
                "-movflags",
                "+frag_keyframe+empty_moov+default_base_moof+frag_discont+negative_cts_offsets+cmaf+skip_trailer",
                "-use_editlist",
                "0",
                "-min_frag_duration",
            ],
        );
        args.push(format!("{min_fragment_micros:.0}").into());
        push(&mut args, ["-f", "mp4"]);
        args.push(output.into());
    }
    args
}

/// The arguments that convert text subtitle stream `index` to one WebVTT
/// file, its cue times moved to the shared t=0 (`origin_seconds` of the
/// source timeline).
pub fn text_args(source: &Path, index: u32, origin_seconds: f64, output: &Path) -> Vec<OsString> {
    let mut args = input_args();
    push(&mut args, ["-copyts", "-itsoffset"]);
    args.push(seconds(-origin_seconds).into());
    args.push("-i".into());
    args.push(source.into());
    args.push("-map".into());
    args.push(format!("0:{index}").into());
    push(
        &mut args,
        [
            "-vn",
            "-an",
            "-dn",
            "-map_metadata",
            "-1",
            "-map_chapters",
            "-1",
            "-c:s",
            "webvtt",
            "-f",
            "webvtt",
        ],
    );
    args.push(output.into());
    args
}

/// The arguments that remux a packaged video track (and an audio track)
/// into one progressive MP4 with its index first (`+faststart`), copying
/// the streams: no re-encode.
pub fn remux_args(video: &Path, audio: Option<&Path>, output: &Path) -> Vec<OsString> {
    let mut args = input_args();
    args.push("-i".into());
    args.push(video.into());
    if let Some(audio) = audio {
        args.push("-i".into());
        args.push(audio.into());
    }
    push(&mut args, ["-map", "0:v:0"]);
    if audio.is_some() {
        push(&mut args, ["-map", "1:a:0"]);
    }
    push(
        &mut args,
        [
            "-c",
            "copy",
            "-map_metadata",
            "-1",
            "-map_chapters",
            "-1",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
        ],
    );
    args.push(output.into());
    args
}

/// The arguments that encode the title's audio once: AAC-LC at 48 kHz into a
/// fragmented MP4 with a fragment about every `plan.segment_seconds`,
/// starting at the shared t=0 (silence fills a late start, an early start is
/// trimmed) and lasting `plan.duration_seconds` rounded up to whole AAC
/// frames.
///
/// The encoder's priming (1,024 samples of delay) is trimmed from the
/// input, not signalled: without an edit list (players ignore it in
/// fragmented MP4) the first packet sits at t=0, so the input starts
/// `AAC_PRIMING_SAMPLES` later and is that much shorter. Source sample `t`
/// then plays at `t` and the track ends within one AAC frame after the
/// video (issue 14: it was 21 ms late and 1,024 samples longer).
pub fn audio_args(source: &Path, plan: &AudioPlan, output: &Path) -> Vec<OsString> {
    let priming_seconds = f64::from(AAC_PRIMING_SAMPLES) / f64::from(plan.sample_rate.max(1));
    let mut args = input_args();
    push(&mut args, ["-copyts", "-i"]);
    args.push(source.into());
    args.push("-map".into());
    args.push(format!("0:{}", plan.source_index).into());
    push(
        &mut args,
        [
            "-vn",
            "-sn",
            "-dn",
            "-map_metadata",
            "-1",
            "-map_chapters",
            "-1",
            "-af",
        ],
    );
    args.push(
        format!(
            "asetpts=PTS-{}/TB,aresample=async=1:first_pts=0,apad",
            seconds(plan.origin_seconds + priming_seconds)
        )
        .into(),
    );
    args.push("-t".into());
    // A title shorter than the priming still gets one frame.
    args.push(seconds((plan.duration_seconds - priming_seconds).max(0.001)).into());
    args.push("-ac".into());
    args.push(plan.channels.to_string().into());
    args.push("-ar".into());
    args.push(plan.sample_rate.to_string().into());
    push(&mut args, ["-c:a", "aac", "-b:a"]);
    args.push(format!("{}k", plan.bitrate_kbps).into());
    push(
        &mut args,
        [
            "-movflags",
            "+empty_moov+default_base_moof+cmaf+skip_trailer",
            "-use_editlist",
            "0",
            "-frag_duration",
        ],
    );
    args.push(format!("{:.0}", plan.segment_seconds * 1e6).into());
    push(&mut args, ["-f", "mp4"]);
    args.push(output.into());
    args
}

/// The delay of ffmpeg's AAC encoder (`initial_padding`), in samples.
const AAC_PRIMING_SAMPLES: u32 = 1024;

/// The encoder, rate-control and GOP arguments of one rendition's codec.
///
/// Every codec puts a closed-GOP keyframe on every `gop`-th frame of the
/// chunk and nowhere else (no scene-cut keyframes). The chunk starts on a
/// GOP boundary, so frame n of the chunk is a keyframe exactly when n of
/// the title is, and the segments of every codec start on the same frames
/// (the packager cuts the plan's segments, a joined tail included, at
/// those keyframes).
fn push_codec_args(
    args: &mut Vec<OsString>,
    rendition: &RenditionPlan,
    gop: &str,
    settings: &EncodeSettings,
) {
    match rendition.codec {
        VideoCodec::H264 => {
            push(args, ["-c:v", "libx264", "-preset"]);
            args.push(settings.preset.clone().into());
            push(args, ["-profile:v"]);
            args.push(rendition.profile.clone().into());
            push(args, ["-level:v"]);
            args.push(rendition.level.clone().into());
            push_rate_args(args, rendition, settings.rate_control);
            push(args, ["-g", gop, "-keyint_min", gop, "-sc_threshold", "0"]);
            push_forced_keyframes(args, gop);
            push(args, ["-bf", "2"]);
            if let Some(threads) = settings.threads {
                args.push("-threads".into());
                args.push(threads.to_string().into());
            }
        }
        VideoCodec::Av1 => {
            // ffmpeg 5.1's libsvtav1 ignores forced keyframes, so the GOP
            // length alone places them: SVT-AV1's key frames (closed GOP,
            // `irefresh-type=2`) every `gop` frames from the chunk's first,
            // scene-change detection off.
            push(args, ["-c:v", "libsvtav1", "-preset"]);
            args.push(settings.av1_preset.to_string().into());
            push_rate_args(args, rendition, settings.rate_control);
            push(args, ["-g", gop, "-svtav1-params"]);
            let mut params = "scd=0:irefresh-type=2".to_string();
            if let Some(threads) = settings.threads {
                params.push_str(&format!(":lp={threads}"));
            }
            args.push(params.into());
        }
        VideoCodec::Hevc => {
            // Apple's HLS authoring rules: `hvc1` (parameter sets in the
            // sample entry only), closed GOPs of IDR frames, no scene cuts.
            push(args, ["-c:v", "libx265", "-preset"]);
            args.push(settings.preset.clone().into());
            push(args, ["-profile:v"]);
            args.push(rendition.profile.clone().into());
            push_rate_args(args, rendition, settings.rate_control);
            push(args, ["-g", gop, "-keyint_min", gop]);
            push_forced_keyframes(args, gop);
            push(args, ["-forced-idr", "1", "-bf", "2", "-x265-params"]);
            let mut params = format!(
                "keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:repeat-headers=0:log-level=error"
            );
            if let Some(threads) = settings.threads {
                params.push_str(&format!(":pools={threads}"));
            }
            args.push(params.into());
            push(args, ["-tag:v", "hvc1"]);
        }
    }
}

/// `-crf` (the rendition's codec's) or `-b:v`, then the VBV cap.
fn push_rate_args(args: &mut Vec<OsString>, rendition: &RenditionPlan, rate_control: RateControl) {
    let crf = match rate_control {
        RateControl::Crf { h264, av1, hevc } => Some(match rendition.codec {
            VideoCodec::H264 => h264,
            VideoCodec::Av1 => av1,
            VideoCodec::Hevc => hevc,
        }),
        RateControl::Bitrate => None,
    };
    match crf {
        Some(crf) => {
            args.push("-crf".into());
            args.push(crf.to_string().into());
        }
        None => {
            args.push("-b:v".into());
            args.push(format!("{}k", rendition.bitrate_kbps).into());
        }
    }
    args.push("-maxrate".into());
    args.push(format!("{}k", rendition.maxrate_kbps).into());
    args.push("-bufsize".into());
    args.push(format!("{}k", rendition.bufsize_kbits).into());
}

/// A keyframe on every `gop`-th frame, counted from the chunk's first.
fn push_forced_keyframes(args: &mut Vec<OsString>, gop: &str) {
    args.push("-force_key_frames".into());
    args.push(format!("expr:eq(mod(n,{gop}),0)").into());
}

/// Whether every rendition in `renditions` is at most a third of the
/// plan's top rendition in each dimension.
fn skips_deblocking(plan: &VideoPlan, renditions: &[RenditionPlan]) -> bool {
    let Some(top) = plan.renditions.iter().map(|r| r.height.min(r.width)).max() else {
        return false;
    };
    !renditions.is_empty()
        && renditions
            .iter()
            .all(|rendition| rendition.height.min(rendition.width) * 3 <= top)
}

/// The arguments that write one JPEG poster: the frame at 10 % of the
/// title (the first frame of a title of under ten frames), at most 1280
/// pixels wide, with square pixels and SDR colours.
pub fn poster_args(source: &Path, plan: &VideoPlan, output: &Path) -> Vec<OsString> {
    // On a frame's own time, so `trim` keeps that frame even in a title of one.
    let poster_seconds = plan.frames_to_seconds(plan.total_frames / 10);
    let (width, height) = scaled_size(plan, POSTER_MAX_WIDTH.min(display_width(plan)));
    let mut args = input_args();
    push(
        &mut args,
        ["-noaccurate_seek", "-seek_timestamp", "1", "-ss"],
    );
    args.push(seconds(plan.origin_seconds + poster_seconds - SEEK_MARGIN_SECONDS).into());
    push(&mut args, ["-copyts", "-i"]);
    args.push(source.into());
    let mut graph = format!(
        "[0:{index}]setpts=PTS-{origin}/TB,{deinterlace}trim=start={start}",
        deinterlace = deinterlace_filter(plan),
        index = plan.source_index,
        origin = seconds(plan.origin_seconds),
        start = seconds(poster_seconds),
    );
    if let Some(transfer) = plan.tonemap {
        graph.push(',');
        graph.push_str(&tonemap_filter(transfer));
    }
    graph.push_str(&format!(
        ",scale={width}:{height}:out_range=full,setsar=1,format=yuvj420p[poster]"
    ));
    push(&mut args, ["-filter_complex"]);
    args.push(graph.into());
    push(
        &mut args,
        [
            "-map",
            "[poster]",
            "-map_metadata",
            "-1",
            "-frames:v",
            "1",
            "-c:v",
            "mjpeg",
            "-q:v",
            "3",
            "-f",
            "image2",
            "-update",
            "1",
        ],
    );
    args.push(output.into());
    args
}

/// The arguments that write the storyboard sheets `storyboard-0.jpg`,
/// `storyboard-1.jpg`, … into `output_dir`: one thumbnail per interval from
/// t=0, `columns` × `rows` per sheet, the last sheet partly filled.
/// [`storyboard_vtt`] describes the same thumbnails.
pub fn storyboard_args(
    source: &Path,
    plan: &VideoPlan,
    settings: &StoryboardSettings,
    output_dir: &Path,
) -> Vec<OsString> {
    let layout = StoryboardLayout::new(plan, settings);
    let mut args = input_args();
    if plan
        .max_keyframe_gap_seconds
        .is_some_and(|gap| gap <= layout.interval_seconds)
    {
        // A keyframe falls in every interval: decoding keyframes only
        // costs a few percent of a full decode, and each thumbnail is at
        // most one keyframe gap from its cue's start.
        push(&mut args, ["-skip_frame", "nokey"]);
    }
    push(&mut args, ["-copyts", "-i"]);
    args.push(source.into());
    // tpad guarantees a frame for the last interval; trim keeps exactly as
    // many thumbnails as the WebVTT index lists.
    let mut graph = format!(
        "[0:{index}]setpts=PTS-{origin}/TB,{deinterlace}tpad=stop_mode=clone:stop_duration={interval},\
         fps=1000000/{interval_micros}:start_time=0,trim=end_frame={count}",
        deinterlace = deinterlace_filter(plan),
        index = plan.source_index,
        origin = seconds(plan.origin_seconds),
        interval = seconds(layout.interval_seconds),
        interval_micros = (layout.interval_seconds * 1e6).round() as u64,
        count = layout.n_thumbs,
    );
    if let Some(transfer) = plan.tonemap {
        graph.push(',');
        graph.push_str(&tonemap_filter(transfer));
    }
    graph.push_str(&format!(
        ",scale={}:{}:out_range=full,setsar=1,format=yuvj420p,tile={}x{}[sheets]",
        layout.thumb_width, layout.thumb_height, layout.columns, layout.rows
    ));
    push(&mut args, ["-filter_complex"]);
    args.push(graph.into());
    push(
        &mut args,
        [
            "-map",
            "[sheets]",
            "-map_metadata",
            "-1",
            "-c:v",
            "mjpeg",
            "-q:v",
            "4",
            "-start_number",
            "0",
            "-f",
            "image2",
        ],
    );
    args.push(output_dir.join("storyboard-%d.jpg").into());
    args
}

/// The WebVTT index of the storyboard [`storyboard_args`] writes: one cue per
/// thumbnail, pointing at `storyboard-N.jpg#xywh=x,y,w,h` (relative to the
/// index).
pub fn storyboard_vtt(plan: &VideoPlan, settings: &StoryboardSettings) -> String {
    let layout = StoryboardLayout::new(plan, settings);
    let per_sheet = u64::from(layout.columns) * u64::from(layout.rows);
    let duration = plan.duration_seconds();
    let mut vtt = String::from("WEBVTT\n");
    for thumb_idx in 0..layout.n_thumbs {
        let start = thumb_idx as f64 * layout.interval_seconds;
        let end = ((thumb_idx + 1) as f64 * layout.interval_seconds).min(duration);
        let sheet_idx = thumb_idx / per_sheet;
        let position = thumb_idx % per_sheet;
        let x = (position % u64::from(layout.columns)) * u64::from(layout.thumb_width);
        let y = (position / u64::from(layout.columns)) * u64::from(layout.thumb_height);
        vtt.push_str(&format!(
            "\n{} --> {}\nstoryboard-{sheet_idx}.jpg#xywh={x},{y},{},{}\n",
            vtt_time(start),
            vtt_time(end),
            layout.thumb_width,
            layout.thumb_height
        ));
    }
    vtt
}

/// The geometry shared by [`storyboard_args`] and [`storyboard_vtt`].
struct StoryboardLayout {
    interval_seconds: f64,
    n_thumbs: u64,
    thumb_width: u32,
    thumb_height: u32,
    columns: u32,
    rows: u32,
}

impl StoryboardLayout {
    fn new(plan: &VideoPlan, settings: &StoryboardSettings) -> StoryboardLayout {
        let interval_seconds = settings.interval.as_secs_f64().max(0.1);
        // Whole microseconds, as the fps filter receives it.
        let interval_seconds = (interval_seconds * 1e6).round() / 1e6;
        let n_thumbs = ((plan.duration_seconds() / interval_seconds).ceil() as u64).max(1);
        let thumb_width = even(settings.thumb_width.max(2));
        let (thumb_width, thumb_height) = scaled_size(plan, thumb_width);
        StoryboardLayout {
            interval_seconds,
            n_thumbs,
            thumb_width,
            thumb_height,
            columns: settings.columns.max(1),
            rows: settings.rows.max(1),
        }
    }
}

fn input_args() -> Vec<OsString> {
    [
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "warning",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        ALLOWED_DEMUXERS,
    ]
    .into_iter()
    .map(OsString::from)
    .collect()
}

fn push<const N: usize>(args: &mut Vec<OsString>, items: [&str; N]) {
    args.extend(items.into_iter().map(OsString::from));
}

/// Seconds with microsecond precision, as ffmpeg options and expressions
/// take them.
fn seconds(value: f64) -> String {
    format!("{value:.6}")
}

/// bwdif for interlaced sources (one frame per frame, fields found from the
/// stream), followed by a comma; nothing for progressive ones.
fn deinterlace_filter(plan: &VideoPlan) -> &'static str {
    if plan.deinterlace {
        "bwdif=mode=send_frame:parity=auto:deint=all,"
    } else {
        ""
    }
}

/// HDR to SDR BT.709 (the packaging notes' zscale chain), with the input's
/// transfer, primaries and matrix stated so untagged frames still convert.
fn tonemap_filter(transfer: HdrTransfer) -> String {
    let transfer_in = match transfer {
        HdrTransfer::Pq => "smpte2084",
        HdrTransfer::Hlg => "arib-std-b67",
    };
    format!(
        "zscale=tin={transfer_in}:pin=bt2020:min=bt2020nc:t=linear:npl=100,format=gbrpf32le,\
         zscale=p=bt709,tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
    )
}

/// The display width of the tallest rendition (square pixels).
fn display_width(plan: &VideoPlan) -> u32 {
    plan.renditions
        .first()
        .map(|rendition| rendition.width)
        .unwrap_or(POSTER_MAX_WIDTH)
}

/// `width` (made even) and the even height that keeps the renditions'
/// aspect ratio (16:9 when the plan has no rendition).
fn scaled_size(plan: &VideoPlan, width: u32) -> (u32, u32) {
    let width = even(width.max(2));
    let (aspect_width, aspect_height) = plan
        .renditions
        .first()
        .map(|rendition| (rendition.width.max(1), rendition.height.max(1)))
        .unwrap_or((16, 9));
    let height = f64::from(width) * f64::from(aspect_height) / f64::from(aspect_width);
    (width, (((height / 2.0).round() as u32) * 2).max(2))
}

fn even(value: u32) -> u32 {
    (value & !1).max(2)
}

fn vtt_time(total_seconds: f64) -> String {
    let total_millis = (total_seconds * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        total_millis / 3_600_000,
        total_millis / 60_000 % 60,
        total_millis / 1000 % 60,
        total_millis % 1000
    )
}

/// Folds one `-progress` line into `current`; returns the report when the
/// line ends a block (`progress=continue` or `progress=end`).
fn parse_progress_line(current: &mut FfmpegProgress, line: &str) -> Option<FfmpegProgress> {
    let (key, value) = line.split_once('=')?;
    let value = value.trim();
    match key.trim() {
        "frame" => current.frame = value.parse().ok(),
        "out_time_us" => {
            current.out_time = value
                .parse::<i64>()
                .ok()
                .and_then(|micros| u64::try_from(micros).ok())
                .map(Duration::from_micros)
        }
        "speed" => {
            current.speed = value
                .trim_end_matches('x')
                .trim()
                .parse()
                .ok()
                .filter(|speed: &f64| speed.is_finite())
        }
        "progress" => {
            current.finished = value == "end";
            return Some(current.clone());
        }
        _ => {}
    }
    None
}

#[cfg(test)]
mod tests;
