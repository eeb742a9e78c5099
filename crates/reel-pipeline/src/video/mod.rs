//! The `video` job: from a stored source to published HLS and DASH.
//!
//! ```text
//! media-probe ─┬─ encode-{group}-{chunk} ×N ─ package-{rendition} ─┐
//!              ├─ audio (encode once + package) ────────────────────┼─ publish-1 → … → publish-K
//!              └─ thumbnails ───────────────────────────────────────┘        (last one: complete)
//! ```
//!
//! `media-probe` inspects the source (whitelisted containers only, explicit
//! limits), plans the ladder and the frame grid, and fans out ([`dag`], a
//! pure function). Each encode task decodes one chunk once and encodes it
//! for a group of renditions; the lowest rendition has its own group and
//! runs first, so a video becomes playable early. `package-{rendition}`
//! assembles the chunks into CMAF segments in Rust and writes the
//! rendition's media playlists. The publish chain writes the multivariant
//! playlist and the MPD, lowest rendition first, so what a viewer can see
//! grows and is never half-written; the last publish marks the video
//! complete and removes intermediate chunks.
//!
//! One file per handler; every object key comes from [`layout`]; sources
//! are read through the worker's [`sources`] cache (a byte budget, least
//! recently used copies evicted); a task's scratch directory goes when the
//! task ends ([`scratch`]). What the API shows of a video's job (state,
//! percent, steps) is computed in [`progress`] from the task kinds of
//! [`TaskKind`].

mod audio;
pub mod budget;
mod dag;
mod download;
mod dub;
mod encode;
pub mod layout;
mod package;
mod presentation;
mod probe;
pub mod progress;
mod publish;
mod scratch;
mod sources;
mod text;
mod thumbnails;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use reel_core::VideoId;
use reel_jobs::store::{NewJob, NewTask};
use reel_jobs::worker::{Registry, TaskContext, TaskError};
use reel_manifest::SegmentRef;
use reel_media::encode::EncodeSettings;
use reel_media::plan::{AudioPlan, ChunkPlan, Plan, PlanSettings, RenditionPlan, VideoPlan};
use reel_media::{MediaError, MediaInfo, MediaLimits};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::jobs::StoredObject;
pub use budget::{BudgetError, MediaBudget};
pub use download::download_job;
pub use dub::{dub_job, dub_source_key, DubRequest};
pub use layout::{JobLayout, VideoLayout};
pub use presentation::{
    delete_text_track, read_presentation, write_presentation, write_text_track, PresentationError,
};
pub use progress::{video_progress, PipelineStep, VideoProgress, VideoState};
use sources::SourceCache;

/// The default of `worker.source_cache`: 20 GiB.
pub const DEFAULT_SOURCE_CACHE_BYTES: u64 = 20 << 30;

/// Settings of the video pipeline's task handlers.
#[derive(Clone, Debug)]
pub struct VideoSettings {
    /// What sources are accepted.
    pub limits: MediaLimits,
    /// The ladder and grid.
    pub plan: PlanSettings,
    /// x264 settings.
    pub encode: EncodeSettings,
    /// Time limit of one ffmpeg run, per second of media it encodes (a
    /// chunk of 4 s gets 4 × this), at least one minute.
    pub ffmpeg_time_per_media_second: Duration,
    /// Local scratch directory for sources and encoder outputs.
    pub scratch_dir: PathBuf,
    /// The most bytes of source copies kept in `scratch_dir/sources`
    /// (`worker.source_cache`); least recently used copies go first.
    pub source_cache_bytes: u64,
    /// When the object store is a local directory, its root: sources are
    /// then read in place instead of copied to scratch.
    pub local_store_root: Option<PathBuf>,
    /// Encode the lowest rendition in its own tasks, first, so the video is
    /// playable early (one more decode of the source).
    pub lowest_rendition_first: bool,
    /// The renditions whose progressive MP4 every video job makes, after
    /// its last publication (`encode.downloads`).
    pub downloads: DownloadSelection,
}

/// Which renditions a video job makes downloads of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownloadSelection {
    /// None: downloads are made on request (`POST /v1/videos/{id}/downloads`).
    Off,
    /// Every rendition.
    All,
    /// The renditions with these names (`720p`) or ids (`h264-720p`); a
    /// name the video's ladder does not have is skipped.
    Renditions(Vec<String>),
}

impl DownloadSelection {
    /// Whether the rendition with `id` and `name` is selected.
    pub fn includes(&self, id: &str, name: &str) -> bool {
        match self {
            DownloadSelection::Off => false,
            DownloadSelection::All => true,
            DownloadSelection::Renditions(names) => {
                names.iter().any(|wanted| wanted == id || wanted == name)
            }
        }
    }
}

/// The key a video's source is stored at ([`VideoLayout::source`]).
pub fn video_source_key(video: VideoId) -> String {
    VideoLayout::new(video).source()
}

/// The job that turns a stored source into a published video.
pub fn video_job(video: VideoId, source: &StoredObject) -> NewJob {
    let input = VideoTaskInput {
        video,
        source: source.clone(),
    };
    NewJob {
        kind: "video".to_string(),
        // Smaller sources first: a short clip does not wait behind a film.
        priority: i64::try_from(source.size >> 24).unwrap_or(i64::MAX),
        input: json!(input),
        tasks: vec![NewTask {
            key: TaskKind::MediaProbe.as_str().to_string(),
            kind: TaskKind::MediaProbe.as_str().to_string(),
            priority: 0,
            payload: json!(input),
            depends_on: Vec::new(),
            max_attempts: 3,
        }],
    }
}

/// The kinds of task of a video job, each with its handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// Inspects the source, plans, fans out.
    MediaProbe,
    /// Encodes one chunk for a group of renditions.
    Encode,
    /// Encodes and packages the audio track.
    Audio,
    /// Packages one rendition's chunks into CMAF segments.
    Package,
    /// Makes the poster and the storyboard.
    Thumbnails,
    /// Converts one text subtitle stream to a WebVTT track.
    Text,
    /// Remuxes a published rendition into a progressive MP4 (a `download` job).
    Download,
    /// Adds an audio track from an uploaded file (a `dub` job).
    Dub,
    /// Writes the manifests of what is ready.
    Publish,
}

impl TaskKind {
    /// Every kind.
    pub const ALL: [TaskKind; 9] = [
        TaskKind::MediaProbe,
        TaskKind::Encode,
        TaskKind::Audio,
        TaskKind::Package,
        TaskKind::Thumbnails,
        TaskKind::Text,
        TaskKind::Publish,
        TaskKind::Download,
        TaskKind::Dub,
    ];

    /// The name the engine stores.
    pub fn as_str(&self) -> &'static str {
        match self {
            TaskKind::MediaProbe => "media-probe",
            TaskKind::Encode => "encode",
            TaskKind::Audio => "audio",
            TaskKind::Package => "package",
            TaskKind::Thumbnails => "thumbnails",
            TaskKind::Text => "text",
            TaskKind::Download => "download",
            TaskKind::Dub => "dub",
            TaskKind::Publish => "publish",
        }
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task kind name that is not one of the video job's.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a video task kind")]
pub struct UnknownTaskKind(String);

impl std::str::FromStr for TaskKind {
    type Err = UnknownTaskKind;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TaskKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownTaskKind(text.chars().take(64).collect()))
    }
}

/// Registers the video pipeline's handlers; every probe draws the video's
/// duration from `budget`.
pub fn register(
    registry: &mut Registry,
    objects: Arc<dyn ObjectStore>,
    settings: VideoSettings,
    budget: Arc<dyn MediaBudget>,
) {
    let sources = SourceCache::new(
        objects.clone(),
        settings.scratch_dir.join("sources"),
        settings.source_cache_bytes,
        settings.local_store_root.clone(),
    );
    let shared = Arc::new(Shared {
        objects,
        settings,
        sources,
        budget,
    });
    for kind in TaskKind::ALL {
        let handler: Arc<dyn reel_jobs::worker::TaskHandler> = match kind {
            TaskKind::MediaProbe => Arc::new(probe::ProbeTask(shared.clone())),
            TaskKind::Encode => Arc::new(encode::EncodeTask(shared.clone())),
            TaskKind::Audio => Arc::new(audio::AudioTask(shared.clone())),
            TaskKind::Package => Arc::new(package::PackageTask(shared.clone())),
            TaskKind::Thumbnails => Arc::new(thumbnails::ThumbnailTask(shared.clone())),
            TaskKind::Text => Arc::new(text::TextTask(shared.clone())),
            TaskKind::Download => Arc::new(download::DownloadTask(shared.clone())),
            TaskKind::Dub => Arc::new(dub::DubTask(shared.clone())),
            TaskKind::Publish => Arc::new(publish::PublishTask(shared.clone())),
        };
        registry.register(kind.as_str(), handler);
    }
}

/// What the probe task publishes as its output: the source's facts and the plan.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeOutput {
    /// What ffprobe found.
    pub info: MediaInfo,
    /// The plan.
    pub plan: Plan,
}

/// What each publish step records (and the API shows).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Publication {
    /// The renditions playable so far, lowest first.
    pub renditions: Vec<RenditionSummary>,
    /// Whether the audio track is published.
    pub audio: bool,
    /// Whether this is the final publication.
    pub complete: bool,
    /// The poster image's path under the video, once made.
    pub poster: Option<String>,
    /// The storyboard's WebVTT index path under the video, once made.
    pub storyboard: Option<String>,
}

/// One published rendition.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RenditionSummary {
    /// Its id, e.g. `h264-720p`: its folder under the video (empty in
    /// publications written before ids named the codec).
    #[serde(default)]
    pub id: String,
    /// Its name, e.g. `720p`.
    pub name: String,
    /// Its video codec.
    #[serde(default)]
    pub codec: reel_media::plan::VideoCodec,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Average bitrate, bit/s.
    pub average_bitrate: u64,
    /// Peak segment bitrate, bit/s.
    pub peak_bitrate: u64,
    /// Frames in the rendition.
    pub frames: u64,
    /// Segments in the rendition.
    pub segments: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct VideoTaskInput {
    video: VideoId,
    source: StoredObject,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct EncodePayload {
    video: VideoId,
    source: StoredObject,
    plan: VideoPlan,
    chunk: ChunkPlan,
    renditions: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AudioPayload {
    video: VideoId,
    source: StoredObject,
    plan: AudioPlan,
    /// The source audio's language tag, if any.
    language: Option<String>,
    /// The track's number, from 1 (the default track): its task key and
    /// folder are `audio` for 1, `audio-{n}` after.
    #[serde(default = "first_track")]
    track: u32,
    /// The source stream's title tag, if any: the name players show.
    #[serde(default)]
    title: Option<String>,
}

/// One text track to make from a subtitle stream of the source.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TextPayload {
    video: VideoId,
    source: StoredObject,
    /// The subtitle stream's index in the source.
    index: u32,
    /// The track's number, from 1: its key and folder `text-{n}`.
    track: u32,
    /// The source timestamp that becomes t=0.
    origin_seconds: f64,
    /// The title's output duration.
    duration_seconds: f64,
    /// The media segments' durations, on which the WebVTT is cut
    /// (`Plan::segment_durations_micros`).
    #[serde(default)]
    segments_micros: Vec<u64>,
    language: Option<String>,
    title: Option<String>,
    default: bool,
}

fn first_track() -> u32 {
    1
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PackagePayload {
    video: VideoId,
    rendition: RenditionPlan,
    frame_rate: reel_core::FrameRate,
    chunks: usize,
    planned_frames: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ThumbnailPayload {
    video: VideoId,
    source: StoredObject,
    plan: VideoPlan,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PublishPayload {
    video: VideoId,
    complete: bool,
    /// Rendition names this step publishes, lowest first.
    renditions: Vec<String>,
    audio: bool,
}

struct Shared {
    objects: Arc<dyn ObjectStore>,
    settings: VideoSettings,
    sources: SourceCache,
    budget: Arc<dyn MediaBudget>,
}

fn payload<T: serde::de::DeserializeOwned>(ctx: &TaskContext) -> Result<T, TaskError> {
    serde_json::from_value(ctx.payload.clone())
        .map_err(|error| TaskError::permanent(format!("task payload is invalid: {error}")))
}

/// A task error from an ffmpeg/ffprobe failure: the job's message (which the
/// uploader sees) has no command line or server paths; the log has both (the
/// worker also strips any path left in a task's message).
fn media_error(step: &str, error: MediaError) -> TaskError {
    tracing::warn!(step, %error, "media step failed");
    let message = format!("{step}: {}", error.user_message());
    if error.is_permanent() {
        TaskError::permanent(message)
    } else {
        TaskError::retryable(message)
    }
}

fn store_error(context: &str) -> impl Fn(object_store::Error) -> TaskError + '_ {
    move |error| TaskError::retryable(format!("{context}: {error}"))
}

fn io_error(context: &str) -> impl Fn(std::io::Error) -> TaskError + '_ {
    move |error| TaskError::retryable(format!("{context}: {error}"))
}

impl Shared {
    async fn put(&self, key: &str, bytes: Bytes, context: &str) -> Result<(), TaskError> {
        self.objects
            .put(&ObjectPath::from(key), PutPayload::from(bytes))
            .await
            .map_err(|error| TaskError::retryable(format!("{context} ({key}): {error}")))?;
        Ok(())
    }

    async fn put_file(&self, key: &str, path: &Path, context: &str) -> Result<u64, TaskError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(io_error("reading an encoder output"))?;
        let size = bytes.len() as u64;
        self.put(key, Bytes::from(bytes), context).await?;
        Ok(size)
    }

    fn ffmpeg_limit(&self, media_seconds: f64) -> Duration {
        let scaled = self
            .settings
            .ffmpeg_time_per_media_second
            .mul_f64(media_seconds.max(1.0));
        scaled.max(Duration::from_secs(60))
    }

    /// Writes a packaged track's init and media segments, and its media
    /// playlists (with an I-frame playlist when `iframes`), in the
    /// directory of `rendition`.
    async fn write_track(
        &self,
        layout: VideoLayout,
        rendition: &str,
        track: &reel_cmaf::Track,
        iframes: bool,
    ) -> Result<Vec<SegmentRef>, TaskError> {
        self.put(
            &layout.init_segment(rendition),
            track.init.clone(),
            "writing the init segment",
        )
        .await?;
        let writes: Vec<(ObjectPath, Bytes)> = track
            .segments
            .iter()
            .map(|segment| {
                (
                    ObjectPath::from(layout.media_segment(rendition, segment.number)),
                    segment.data.clone(),
                )
            })
            .collect();
        let objects = self.objects.clone();
        futures::stream::iter(writes)
            .map(move |(location, data)| {
                let objects = objects.clone();
                async move {
                    objects
                        .put(&location, PutPayload::from(data))
                        .await
                        .map_err(|error| {
                            TaskError::retryable(format!(
                                "writing a media segment ({location}): {error}"
                            ))
                        })
                }
            })
            .buffer_unordered(16)
            .try_collect::<Vec<_>>()
            .await?;
        let segments = segment_refs(track);
        let timescale = track.info.timescale;
        self.put(
            &layout.media_playlist(rendition),
            Bytes::from(reel_manifest::hls_media(&segments, timescale)),
            "writing a media playlist",
        )
        .await?;
        if iframes {
            self.put(
                &layout.iframe_playlist(rendition),
                Bytes::from(reel_manifest::hls_iframes(&segments, timescale)),
                "writing an I-frame playlist",
            )
            .await?;
        }
        Ok(segments)
    }
}

fn segment_refs(track: &reel_cmaf::Track) -> Vec<SegmentRef> {
    track
        .segments
        .iter()
        .map(|segment| SegmentRef {
            start: segment.start,
            duration: segment.duration,
            size: segment.size,
            iframe: segment.iframe.map(|range| reel_manifest::ByteRange {
                offset: range.offset,
                length: range.length,
            }),
        })
        .collect()
}
