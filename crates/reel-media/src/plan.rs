//! Encoding plans: what to make from a probed source. Pure, no IO.
//!
//! A [`Plan`] fixes the output frame rate and the frame grid every rendition
//! shares: a GOP is about 2 s of frames, a segment is 2 GOPs (about 4 s), a
//! chunk (the unit of parallel work) is a whole number of segments. Because
//! all renditions cut on the same frames, their segments align and one chunk
//! can be encoded independently of the others.

use reel_core::FrameRate;
use serde::{Deserialize, Serialize};

use crate::{MediaError, MediaInfo, VideoInfo};

/// How a plan is made. No `Default`: take [`PlanSettings::standard`] or
/// build one explicitly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanSettings {
    /// The rungs to consider, any order; rungs taller than the source's short
    /// side are dropped.
    pub ladder: Vec<Rung>,
    /// How many segments one chunk (one encode task) holds; at least 1.
    pub segments_per_chunk: u32,
    /// The codecs every rung is encoded in, H.264 first: each codec gets
    /// its own rendition of every rung, on the same frame grid. Settings
    /// written before codecs were listed are H.264 only.
    #[serde(default = "h264_only")]
    pub codecs: Vec<VideoCodec>,
}

fn h264_only() -> Vec<VideoCodec> {
    vec![VideoCodec::H264]
}

/// One rung of the ladder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    /// The name, e.g. `720p`.
    pub name: String,
    /// The short side in pixels: the height of landscape video, the width of
    /// portrait video.
    pub short_side: u32,
    /// The average bitrate at up to 30 frames per second, in kbit/s.
    pub bitrate_kbps: u32,
}

impl PlanSettings {
    /// The standard ladder, after the H.264 table of Apple's HLS authoring
    /// specification: 1080p 6000k, 720p 3000k, 480p 1100k, 360p 730k and
    /// 240p 145k. (Apple lists 432p at 730k and 1100k and 360p at 365k;
    /// reel's 480p takes the 1100k rung and its 360p the 730k one, because
    /// 365k at 360p looks poor with x264's fast presets.) Chunks are one
    /// segment, about 4 s: the default of `encode.segments_per_chunk`.
    pub fn standard() -> PlanSettings {
        let rung = |name: &str, short_side, bitrate_kbps| Rung {
            name: name.to_string(),
            short_side,
            bitrate_kbps,
        };
        PlanSettings {
            ladder: vec![
                rung("1080p", 1080, 6000),
                rung("720p", 720, 3000),
                rung("480p", 480, 1100),
                rung("360p", 360, 730),
                rung("240p", 240, 145),
            ],
            segments_per_chunk: 1,
            codecs: h264_only(),
        }
    }
}

/// What to make of one title. Stored as JSON with the title.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The source timestamp, in seconds of the source's own timeline, that
    /// becomes t=0 in every output: the first video frame's, or the first
    /// audio sample's for titles without video. Audio before it is trimmed;
    /// audio starting after it is preceded by silence. The video and audio
    /// plans carry the same value so each encode is self-contained.
    pub origin_seconds: f64,
    /// The output duration: the video's planned frames, or the audio's
    /// duration for audio-only titles.
    pub duration_seconds: f64,
    /// The video encode, if the source has video.
    pub video: Option<VideoPlan>,
    /// The audio encode, if the source has audio: its first (default)
    /// audio stream.
    pub audio: Option<AudioPlan>,
    /// The encodes of its other audio streams, one track each, in the
    /// order of [`MediaInfo::more_audio`].
    #[serde(default)]
    pub more_audio: Vec<AudioPlan>,
}

impl Plan {
    /// Every audio encode, the default one first.
    pub fn audio_tracks(&self) -> impl Iterator<Item = &AudioPlan> {
        self.audio.iter().chain(&self.more_audio)
    }
}

/// The shared frame grid and the ladder of one title.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VideoPlan {
    /// The source stream index.
    pub source_index: u32,
    /// The source timestamp that becomes t=0: [`Plan::origin_seconds`].
    pub origin_seconds: f64,
    /// The constant output frame rate of every rendition.
    pub frame_rate: FrameRate,
    /// The MP4 track timescale: `lcm(frame_rate.num(), 90000)` (the numerator
    /// itself if that overflows), so every frame lasts a whole number of ticks
    /// and every chunk's init segment is the same.
    pub timescale: u32,
    /// Frames per GOP: round(2 s × rate), e.g. 60 at 29.97 fps (2.002 s).
    pub gop_frames: u32,
    /// Frames per segment: two GOPs.
    pub segment_frames: u32,
    /// Frames per chunk: `segments_per_chunk` segments.
    pub chunk_frames: u32,
    /// Frames in the whole output: max(1, round(duration × rate)).
    pub total_frames: u64,
    /// The chunks in order, each a whole number of segments of
    /// [`VideoPlan::segment_frame_counts`]; only the last may differ.
    pub chunks: Vec<ChunkPlan>,
    /// The renditions: by codec in [`VideoCodec`] order (H.264 first),
    /// tallest first within a codec.
    pub renditions: Vec<RenditionPlan>,
    /// Set for HDR sources, which are tone-mapped to SDR BT.709. Every
    /// output is 8-bit 4:2:0 whether or not this is set.
    pub tonemap: Option<HdrTransfer>,
    /// The longest gap between source keyframes, when they were scanned:
    /// thumbnails may then decode keyframes only.
    #[serde(default)]
    pub max_keyframe_gap_seconds: Option<f64>,
    /// Set for interlaced sources (field order `tt`, `bb`, `tb` or `bt`):
    /// every decode runs bwdif before scaling, one frame per frame.
    #[serde(default)]
    pub deinterlace: bool,
}

impl VideoPlan {
    /// The output duration: `total_frames` at `frame_rate`.
    pub fn duration_seconds(&self) -> f64 {
        self.frames_to_seconds(self.total_frames)
    }

    /// The output time of a frame: `frame / frame_rate`.
    pub fn frames_to_seconds(&self, frame: u64) -> f64 {
        frame as f64 * f64::from(self.frame_rate.den()) / f64::from(self.frame_rate.num())
    }

    /// The frames of each media segment, in order: `segment_frames` each,
    /// except that the last may be shorter, or, when the tail is shorter
    /// than half a segment, that tail joined to the segment before it (up
    /// to 1.5 × `segment_frames`). The packager makes exactly these.
    pub fn segment_frame_counts(&self) -> Vec<u64> {
        segment_grid(self.total_frames, self.segment_frames)
    }
}

/// The HDR transfer function of a source that needs tone mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HdrTransfer {
    /// SMPTE ST 2084 (`smpte2084`).
    Pq,
    /// Hybrid log-gamma (`arib-std-b67`).
    Hlg,
}

/// One chunk of the frame grid: a whole number of segments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChunkPlan {
    /// The position of the chunk, from 0.
    pub index: u32,
    /// The first output frame.
    pub start_frame: u64,
    /// How many frames the chunk has.
    pub frame_count: u32,
    /// The output time of its first frame: start_frame / rate.
    pub start_seconds: f64,
    /// Where to seek in the source (its own timeline, seconds): the
    /// keyframe at or before the chunk's first frame, when the container
    /// has an exact seek index; `None` means seek with a safety margin.
    #[serde(default)]
    pub seek_seconds: Option<f64>,
}

/// A video codec reel encodes to: its value here, its encoder arguments in
/// [`crate::encode`], and its share of the rung's bitrate in the plan. The
/// order is the order codecs are encoded and published in.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    /// H.264 (AVC) with libx264: plays everywhere.
    #[default]
    H264,
    /// AV1 with SVT-AV1 (`libsvtav1`): plays in every current browser but
    /// older Safari; planned at 60 % of H.264's rates.
    Av1,
    /// HEVC (H.265) with libx265, tagged `hvc1` as Apple's devices need:
    /// plays on Apple's devices and some others, not in Chromium's MSE.
    Hevc,
}

impl VideoCodec {
    /// Every codec, in encode order.
    pub const ALL: [VideoCodec; 3] = [VideoCodec::H264, VideoCodec::Av1, VideoCodec::Hevc];

    /// The short name used in rendition ids and config: `h264`, `av1`, `hevc`.
    pub fn as_str(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::Av1 => "av1",
            VideoCodec::Hevc => "hevc",
        }
    }

    /// The codec's bitrate for a rung, as a share of the rung's H.264
    /// bitrate in percent: H.264 100, AV1 60 and HEVC 70, the usual gains
    /// of those encoders at equal quality. bench/RESULTS.md measures AV1's
    /// (34–59 % of H.264's bitrate at equal SSIM up to 720p, but 134 % at
    /// 1080p on a noisy source); HEVC's is not measured.
    pub fn bitrate_percent(self) -> u32 {
        match self {
            VideoCodec::H264 => 100,
            VideoCodec::Av1 => 60,
            VideoCodec::Hevc => 70,
        }
    }
}

impl std::fmt::Display for VideoCodec {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A codec name that is not one of [`VideoCodec::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown video codec {0:?}; accepted: h264, av1, hevc")]
pub struct UnknownVideoCodec(String);

impl std::str::FromStr for VideoCodec {
    type Err = UnknownVideoCodec;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        VideoCodec::ALL
            .into_iter()
            .find(|codec| codec.as_str() == text)
            .ok_or_else(|| UnknownVideoCodec(text.chars().take(64).collect()))
    }
}

/// A rendition's id, unique in a video: codec and name, e.g. `h264-720p`.
/// It names the rendition's tasks, its folder in the object store and its
/// entry in the manifests.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RenditionId(String);

impl RenditionId {
    /// The id of rendition `name` in `codec`.
    pub fn new(codec: VideoCodec, name: &str) -> RenditionId {
        RenditionId(format!("{}-{name}", codec.as_str()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RenditionId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// One video rendition: a rung of the ladder in one codec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenditionPlan {
    /// The codec; plans written before codecs were named are H.264.
    #[serde(default)]
    pub codec: VideoCodec,
    /// The rung's name, e.g. `720p`: what players show.
    pub name: String,
    /// The width in (square) pixels, even.
    pub width: u32,
    /// The height in pixels, even.
    pub height: u32,
    /// The average bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// The VBV maximum rate: 1.1 × the average.
    pub maxrate_kbps: u32,
    /// The VBV buffer: 2 × the maximum rate.
    pub bufsize_kbits: u32,
    /// The profile: for H.264 `high`, or `main` below 480p; `main` for
    /// AV1 and HEVC.
    pub profile: String,
    /// For H.264 the lowest level that fits, e.g. `3.1`; empty for AV1 and
    /// HEVC, whose encoders choose the level from the stream.
    pub level: String,
}

impl RenditionPlan {
    /// The rendition's id: [`RenditionId::new`] of its codec and name.
    pub fn id(&self) -> RenditionId {
        RenditionId::new(self.codec, &self.name)
    }
}

/// The audio track: AAC-LC, encoded once per title.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AudioPlan {
    /// The source stream index.
    pub source_index: u32,
    /// The source timestamp that becomes t=0: [`Plan::origin_seconds`].
    pub origin_seconds: f64,
    /// The output duration, [`Plan::duration_seconds`], so audio and video
    /// end together; short audio is padded with silence.
    pub duration_seconds: f64,
    /// 1 for mono sources, else 2.
    pub channels: u32,
    /// Always 48000.
    pub sample_rate: u32,
    /// 128 kbit/s for stereo, 96 for mono.
    pub bitrate_kbps: u32,
    /// The fragment duration: the video's segment, or 4 s without video.
    pub segment_seconds: f64,
}

/// Plans the encode of a probed title.
///
/// The ladder never upscales: rungs taller than the source's short side (as
/// displayed: after rotation and with square pixels) are dropped, and a source
/// smaller than every rung gets one rendition at its own size. Portrait
/// sources are scaled on their short side. Above 30 fps, bitrates are 1.5×
/// the rung's. The output rate is constant: rates above 60 fps are halved
/// until they are not, variable-rate sources use their average rate rounded
/// to the nearest standard rate, and rates within 0.1 % of a standard rate
/// snap to it.
pub fn plan(info: &MediaInfo, settings: &PlanSettings) -> Result<Plan, MediaError> {
    if info.video.is_none() && info.audio.is_none() {
        return Err(MediaError::unprocessable(
            "the file has no decodable video or audio stream",
        ));
    }
    if settings.segments_per_chunk == 0 || settings.ladder.is_empty() {
        return Err(MediaError::unprocessable(
            "the plan settings need a ladder and at least one segment per chunk",
        ));
    }
    let video = info
        .video
        .as_ref()
        .map(|video| plan_video(video, settings))
        .transpose()?;
    let (origin_seconds, duration_seconds) = match (&video, &info.video, &info.audio) {
        (Some(video_plan), Some(video), _) => {
            (video.start_time_seconds, video_plan.duration_seconds())
        }
        (_, _, Some(audio)) => (
            audio.start_time_seconds,
            audio.duration_seconds.unwrap_or(info.duration_seconds),
        ),
        _ => (info.start_time_seconds, info.duration_seconds),
    };
    if duration_seconds.is_nan() || duration_seconds <= 0.0 {
        return Err(MediaError::unprocessable(
            "the file has a zero or unknown duration",
        ));
    }
    let segment_seconds = video
        .as_ref()
        .map(|video_plan| video_plan.frames_to_seconds(u64::from(video_plan.segment_frames)))
        .unwrap_or(AUDIO_ONLY_SEGMENT_SECONDS);
    let audio_plan = |audio: &crate::AudioInfo| {
        // Mono stays mono; everything else becomes stereo AAC.
        let channels = if audio.channels == 1 { 1 } else { 2 };
        AudioPlan {
            source_index: audio.index,
            origin_seconds,
            duration_seconds,
            channels,
            sample_rate: 48_000,
            bitrate_kbps: if channels == 1 { 96 } else { 128 },
            segment_seconds,
        }
    };
    let audio = info.audio.as_ref().map(audio_plan);
    let more_audio = info.more_audio.iter().map(audio_plan).collect();
    Ok(Plan {
        origin_seconds,
        duration_seconds,
        video,
        audio,
        more_audio,
    })
}

/// The segment duration of titles without video.
const AUDIO_ONLY_SEGMENT_SECONDS: f64 = 4.0;

impl Plan {
    /// The media segments' durations in microseconds, as the manifests
    /// will list them (each the difference of cumulative times rounded to a
    /// microsecond): the video's segment grid, or for a title without video
    /// 4 s segments with the same joined tail. Text tracks are cut on them.
    pub fn segment_durations_micros(&self) -> Vec<u64> {
        let Some(video) = &self.video else {
            let total_micros = (self.duration_seconds.max(0.0) * 1e6).round() as u64;
            return segment_grid(total_micros, (AUDIO_ONLY_SEGMENT_SECONDS * 1e6) as u32);
        };
        let (num, den) = (
            u128::from(video.frame_rate.num()),
            u128::from(video.frame_rate.den()),
        );
        // Frame f starts at f × den / num s, rounded half up to a microsecond.
        let micros_at = |frame: u64| -> u64 {
            let doubled = 2 * u128::from(frame) * den * 1_000_000;
            u64::try_from((doubled + num) / (2 * num)).unwrap_or(u64::MAX)
        };
        let mut start_frame = 0u64;
        video
            .segment_frame_counts()
            .into_iter()
            .map(|frames| {
                let end_frame = start_frame + frames;
                let micros = micros_at(end_frame) - micros_at(start_frame);
                start_frame = end_frame;
                micros
            })
            .collect()
    }
}

/// Cuts `total_frames` into segments of `segment_frames`; a tail shorter
/// than half a segment joins the segment before it (issue 14: no segment
/// shorter than half the target duration).
fn segment_grid(total_frames: u64, segment_frames: u32) -> Vec<u64> {
    let segment_frames = u64::from(segment_frames.max(1));
    let n_full = total_frames / segment_frames;
    let tail = total_frames % segment_frames;
    let mut segments = vec![segment_frames; n_full as usize];
    match segments.last_mut() {
        Some(last) if tail * 2 < segment_frames => *last += tail,
        _ if tail > 0 => segments.push(tail),
        _ => {}
    }
    segments
}

/// The rates a variable-rate source is rounded to, and constant rates snap to.
const STANDARD_RATES: [(u32, u32); 8] = [
    (24000, 1001),
    (24, 1),
    (25, 1),
    (30000, 1001),
    (30, 1),
    (50, 1),
    (60000, 1001),
    (60, 1),
];

/// The latest keyframe time at or before `time` (with a microsecond of
/// slack for rounding), if any was scanned.
fn keyframe_at_or_before(keyframes: &[f64], time: f64) -> Option<f64> {
    let idx = keyframes.partition_point(|keyframe| *keyframe <= time + 1e-6);
    idx.checked_sub(1).map(|idx| keyframes[idx])
}

/// The longest gap between scanned keyframes, including to the end.
fn max_keyframe_gap(keyframes: &[f64], end: f64) -> Option<f64> {
    let last = *keyframes.last()?;
    let gaps = keyframes.windows(2).map(|pair| pair[1] - pair[0]);
    Some(gaps.chain([end - last]).fold(0.0, f64::max))
}

fn plan_video(video: &VideoInfo, settings: &PlanSettings) -> Result<VideoPlan, MediaError> {
    let frame_rate = output_frame_rate(video);
    let fps = frame_rate.as_f64();
    let gop_frames = ((2.0 * fps).round() as u32).max(1);
    let segment_frames = 2 * gop_frames;
    let chunk_frames = segment_frames
        .checked_mul(settings.segments_per_chunk)
        .ok_or_else(|| MediaError::unprocessable("segments_per_chunk is too large"))?;
    let total_frames = ((video.duration_seconds * fps).round() as u64).max(1);
    let segments = segment_grid(total_frames, segment_frames);
    let chunks = segments
        .chunks(settings.segments_per_chunk as usize)
        .scan(0u64, |next_start, chunk_segments| {
            let start_frame = *next_start;
            let frame_count: u64 = chunk_segments.iter().sum();
            *next_start += frame_count;
            Some((start_frame, frame_count))
        })
        .enumerate()
        .map(|(chunk_idx, (start_frame, frame_count))| {
            let frame_count = u32::try_from(frame_count).unwrap_or(u32::MAX);
            let start_seconds =
                start_frame as f64 * f64::from(frame_rate.den()) / f64::from(frame_rate.num());
            ChunkPlan {
                index: chunk_idx as u32,
                start_frame,
                frame_count,
                start_seconds,
                seek_seconds: keyframe_at_or_before(
                    &video.keyframes_seconds,
                    video.start_time_seconds + start_seconds,
                ),
            }
        })
        .collect();
    let tonemap = match video.color_transfer.as_deref() {
        Some("smpte2084") => Some(HdrTransfer::Pq),
        Some("arib-std-b67") => Some(HdrTransfer::Hlg),
        _ => None,
    };
    Ok(VideoPlan {
        source_index: video.index,
        origin_seconds: video.start_time_seconds,
        frame_rate,
        timescale: track_timescale(frame_rate),
        gop_frames,
        segment_frames,
        chunk_frames,
        total_frames,
        chunks,
        renditions: renditions(video, frame_rate, settings),
        tonemap,
        deinterlace: matches!(
            video.field_order.as_deref(),
            Some("tt" | "bb" | "tb" | "bt")
        ),
        max_keyframe_gap_seconds: max_keyframe_gap(
            &video.keyframes_seconds,
            video.start_time_seconds + video.duration_seconds,
        ),
    })
}

fn output_frame_rate(video: &VideoInfo) -> FrameRate {
    let source = video.frame_rate;
    let mut rate = if video.variable_frame_rate {
        nearest_standard_rate(source)
    } else {
        let nearest = nearest_standard_rate(source);
        let relative_gap = (nearest.as_f64() - source.as_f64()).abs() / source.as_f64();
        if relative_gap < 0.001 {
            nearest
        } else {
            source
        }
    };
    while rate.as_f64() > 60.0 + 1e-9 {
        let halved = if rate.num() % 2 == 0 {
            FrameRate::new(rate.num() / 2, rate.den())
        } else {
            rate.den()
                .checked_mul(2)
                .and_then(|den| FrameRate::new(rate.num(), den))
        };
        match halved {
            Some(halved) => rate = halved,
            None => break,
        }
    }
    rate
}

fn nearest_standard_rate(rate: FrameRate) -> FrameRate {
    STANDARD_RATES
        .iter()
        .filter_map(|(num, den)| FrameRate::new(*num, *den))
        .min_by(|left, right| {
            let left_gap = (left.as_f64() - rate.as_f64()).abs();
            let right_gap = (right.as_f64() - rate.as_f64()).abs();
            left_gap.total_cmp(&right_gap)
        })
        .expect("the standard rates are not empty")
}

fn track_timescale(rate: FrameRate) -> u32 {
    let num = u64::from(rate.num());
    let lcm = num / gcd(num, 90_000) * 90_000;
    u32::try_from(lcm).unwrap_or(rate.num())
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        let rest = a % b;
        a = b;
        b = rest;
    }
    a
}

fn renditions(
    video: &VideoInfo,
    frame_rate: FrameRate,
    settings: &PlanSettings,
) -> Vec<RenditionPlan> {
    let ladder = &settings.ladder;
    let display_width = video.display_width.max(1);
    let display_height = video.display_height.max(1);
    let portrait = display_height > display_width;
    let source_short = display_width.min(display_height);
    let source_long = display_width.max(display_height);
    let mut rungs: Vec<&Rung> = ladder
        .iter()
        .filter(|rung| rung.short_side > 0 && rung.short_side <= source_short)
        .collect();
    rungs.sort_by_key(|rung| std::cmp::Reverse(rung.short_side));
    let mut chosen: Vec<(String, u32, u32)> = rungs
        .iter()
        .map(|rung| {
            (
                rung.name.clone(),
                round_even(f64::from(rung.short_side)),
                rung.bitrate_kbps,
            )
        })
        .collect();
    if chosen.is_empty() {
        let smallest = ladder
            .iter()
            .min_by_key(|rung| rung.short_side)
            .map(|rung| rung.bitrate_kbps)
            .unwrap_or(145);
        let short = (source_short & !1).max(2);
        chosen.push((format!("{short}p"), short, smallest));
    }
    let high_frame_rate = frame_rate.as_f64() > 30.5;
    let mut codecs = settings.codecs.clone();
    codecs.sort();
    codecs.dedup();
    if codecs.is_empty() {
        codecs = h264_only();
    }
    codecs
        .into_iter()
        .flat_map(|codec| chosen.iter().map(move |rung| (codec, rung)))
        .map(|(codec, (name, short, rung_kbps))| {
            let (short, rung_kbps) = (*short, *rung_kbps);
            let long =
                round_even(f64::from(short) * f64::from(source_long) / f64::from(source_short));
            let (width, height) = if portrait {
                (short, long)
            } else {
                (long, short)
            };
            let h264_kbps = if high_frame_rate {
                rung_kbps * 3 / 2
            } else {
                rung_kbps
            };
            let bitrate_kbps = (h264_kbps * codec.bitrate_percent() / 100).max(1);
            let maxrate_kbps = (f64::from(bitrate_kbps) * 1.1).round() as u32;
            let bufsize_kbits = 2 * maxrate_kbps;
            let (profile, level) = match codec {
                VideoCodec::H264 => {
                    let profile = if short >= 480 { "high" } else { "main" };
                    let level = h264_level(
                        width,
                        height,
                        frame_rate,
                        maxrate_kbps,
                        bufsize_kbits,
                        profile,
                    );
                    (profile, level)
                }
                VideoCodec::Av1 | VideoCodec::Hevc => ("main", String::new()),
            };
            RenditionPlan {
                codec,
                name: name.clone(),
                width,
                height,
                bitrate_kbps,
                maxrate_kbps,
                bufsize_kbits,
                profile: profile.to_string(),
                level,
            }
        })
        .collect()
}

/// The smallest H.264 level (Table A-1) whose frame size, macroblock rate,
/// bitrate and buffer limits fit; 3.0 at the least, the floor every device
/// reel targets decodes.
fn h264_level(
    width: u32,
    height: u32,
    frame_rate: FrameRate,
    maxrate_kbps: u32,
    bufsize_kbits: u32,
    profile: &str,
) -> String {
    // (level, MaxMBPS, MaxFS, MaxBR and MaxCPB in 1000 bits for Main).
    const LEVELS: [(&str, f64, u32, u32, u32); 9] = [
        ("3.0", 40_500.0, 1_620, 10_000, 10_000),
        ("3.1", 108_000.0, 3_600, 14_000, 14_000),
        ("3.2", 216_000.0, 5_120, 20_000, 20_000),
        ("4.0", 245_760.0, 8_192, 20_000, 25_000),
        ("4.1", 245_760.0, 8_192, 50_000, 62_500),
        ("4.2", 522_240.0, 8_704, 50_000, 62_500),
        ("5.0", 589_824.0, 22_080, 135_000, 135_000),
        ("5.1", 983_040.0, 36_864, 240_000, 240_000),
        ("5.2", 2_073_600.0, 36_864, 240_000, 240_000),
    ];
    // High profile allows 1.25 times Main's bitrate and buffer (Table A-2).
    let factor = if profile == "high" { 1.25 } else { 1.0 };
    let frame_macroblocks = width.div_ceil(16) * height.div_ceil(16);
    let macroblock_rate = f64::from(frame_macroblocks) * frame_rate.as_f64();
    LEVELS
        .iter()
        .find(|(_, max_mbps, max_fs, max_br, max_cpb)| {
            frame_macroblocks <= *max_fs
                && macroblock_rate <= *max_mbps
                && f64::from(maxrate_kbps) <= f64::from(*max_br) * factor
                && f64::from(bufsize_kbits) <= f64::from(*max_cpb) * factor
        })
        .map(|(level, ..)| level.to_string())
        .unwrap_or_else(|| "5.2".to_string())
}

/// Rounds to the nearest even number, halves up, at least 2.
fn round_even(value: f64) -> u32 {
    (((value / 2.0).round() as u32) * 2).max(2)
}

#[cfg(test)]
mod tests;
