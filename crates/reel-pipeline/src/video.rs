//! The `video` job: from a stored source to published HLS and DASH.
//!
//! ```text
//! media-probe ─┬─ encode-{group}-{chunk} ×N ─ package-{rendition} ─┐
//!              ├─ audio (encode once + package) ────────────────────┼─ publish-1 → … → publish-K
//!              └─ thumbnails ───────────────────────────────────────┘        (last one: complete)
//! ```
//!
//! `media-probe` inspects the source (whitelisted containers only, explicit
//! limits), plans the ladder and the frame grid, and fans out. Each encode
//! task decodes one chunk once and encodes it for a group of renditions; the
//! lowest rendition has its own group and runs first, so a video becomes
//! playable early. `package-{rendition}` assembles the chunks into CMAF
//! segments in Rust and writes the rendition's media playlists. The publish
//! chain writes the multivariant playlist and the MPD, lowest rendition
//! first, so what a viewer can see grows and is never half-written; the
//! last publish marks the video complete and removes intermediate chunks.
//!
//! Object layout: sources at `sources/{video}/source`, intermediates at
//! `jobs/{job}/chunks/{rendition}/{chunk}.mp4`, and everything a viewer
//! fetches at `videos/{video}/…` (see [`video_prefix`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use reel_core::VideoId;
use reel_jobs::store::{Completion, NewJob, NewTask};
use reel_jobs::worker::{Registry, TaskContext, TaskError, TaskHandler};
use reel_manifest::{AudioRendition, Presentation, SegmentRef, VideoRendition};
use reel_media::encode::StoryboardSettings;
use reel_media::encode::{EncodeSettings, FfmpegProgress};
use reel_media::plan::{AudioPlan, ChunkPlan, Plan, PlanSettings, RenditionPlan, VideoPlan};
use reel_media::{MediaError, MediaInfo, MediaLimits};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tracing::{debug, info};

use crate::jobs::StoredObject;

/// Settings of the video pipeline's task handlers.
#[derive(Clone, Debug)]
pub struct VideoSettings {
    /// What sources are accepted.
    pub limits: MediaLimits,
    /// The ladder and grid.
    pub plan: PlanSettings,
    /// x264 settings.
    pub encode: EncodeSettings,
    /// Time limit of one ffprobe run.
    pub probe_timeout: Duration,
    /// Time limit of one ffmpeg run, per second of media it encodes (a
    /// chunk of 4 s gets 4 × this), at least one minute.
    pub ffmpeg_time_per_media_second: Duration,
    /// Local scratch directory for sources and encoder outputs.
    pub scratch_dir: PathBuf,
    /// When the object store is a local directory, its root: sources are
    /// then read in place instead of copied to scratch.
    pub local_store_root: Option<PathBuf>,
    /// Encode the lowest rendition in its own tasks, first, so the video is
    /// playable early (one more decode of the source).
    pub lowest_rendition_first: bool,
}

/// The prefix of everything a viewer fetches for `video`.
pub fn video_prefix(video: VideoId) -> String {
    format!("videos/{video}")
}

/// The key a video's source is stored at.
pub fn video_source_key(video: VideoId) -> String {
    format!("sources/{video}/source")
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
            key: "media-probe".to_string(),
            kind: "media-probe".to_string(),
            priority: 0,
            payload: json!(input),
            depends_on: Vec::new(),
            max_attempts: 3,
        }],
    }
}

/// Registers the video pipeline's handlers.
pub fn register(registry: &mut Registry, objects: Arc<dyn ObjectStore>, settings: VideoSettings) {
    let shared = Arc::new(Shared {
        objects,
        settings,
        sources: SourceCache::default(),
    });
    registry.register("media-probe", Arc::new(ProbeTask(shared.clone())));
    registry.register("encode", Arc::new(EncodeTask(shared.clone())));
    registry.register("audio", Arc::new(AudioTask(shared.clone())));
    registry.register("package", Arc::new(PackageTask(shared.clone())));
    registry.register("thumbnails", Arc::new(ThumbnailTask(shared.clone())));
    registry.register("publish", Arc::new(PublishTask(shared)));
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
    /// Its name, e.g. `720p`.
    pub name: String,
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
struct VideoTaskInput {
    video: VideoId,
    source: StoredObject,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct EncodePayload {
    video: VideoId,
    source: StoredObject,
    plan: VideoPlan,
    chunk: ChunkPlan,
    renditions: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct AudioPayload {
    video: VideoId,
    source: StoredObject,
    plan: AudioPlan,
    /// The source audio's language tag, if any.
    language: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PackagePayload {
    video: VideoId,
    rendition: RenditionPlan,
    frame_rate: reel_core::FrameRate,
    chunks: usize,
    planned_frames: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct ThumbnailPayload {
    video: VideoId,
    source: StoredObject,
    plan: VideoPlan,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct PublishPayload {
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

/// A per-task scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    async fn create(root: &Path, ctx: &TaskContext) -> Result<Scratch, TaskError> {
        let dir = root.join(format!("task-{}-{}", ctx.task_id, ctx.attempt));
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_error("creating the scratch directory"))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Local copies of sources, shared by the tasks of one worker process.
///
/// With a local object store the source is read in place. Otherwise it is
/// downloaded once per process into the scratch directory (to a temporary
/// name, renamed when complete), so chunk tasks of the same video on the same
/// machine share one copy.
#[derive(Default)]
struct SourceCache {
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Shared {
    async fn local_source(&self, source: &StoredObject) -> Result<PathBuf, TaskError> {
        if let Some(root) = &self.settings.local_store_root {
            let path = root.join(&source.key);
            if tokio::fs::metadata(&path).await.is_ok() {
                return Ok(path);
            }
        }
        let lock = {
            let mut locks = self.sources.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(source.key.clone()).or_default().clone()
        };
        let _guard = lock.lock().await;
        let dir = self.settings.scratch_dir.join("sources");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_error("creating the source cache"))?;
        let name = hex::encode(sha2::Digest::finalize(
            <sha2::Sha256 as sha2::Digest>::new_with_prefix(source.key.as_bytes()),
        ));
        let path = dir.join(&name[..32]);
        if let Ok(meta) = tokio::fs::metadata(&path).await {
            if meta.len() == source.size {
                return Ok(path);
            }
        }
        let partial = dir.join(format!("{}.partial", &name[..32]));
        let mut file = tokio::fs::File::create(&partial)
            .await
            .map_err(io_error("creating the source copy"))?;
        let mut stream = self
            .objects
            .get(&ObjectPath::from(source.key.as_str()))
            .await
            .map_err(store_error("reading the source"))?
            .into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(store_error("reading the source"))?;
            file.write_all(&chunk)
                .await
                .map_err(io_error("writing the source copy"))?;
        }
        file.flush()
            .await
            .map_err(io_error("writing the source copy"))?;
        drop(file);
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(io_error("renaming the source copy"))?;
        Ok(path)
    }

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

    /// Writes a packaged track's init and media segments under `dir`.
    async fn write_track(&self, dir: &str, track: &reel_cmaf::Track) -> Result<(), TaskError> {
        self.put(
            &format!("{dir}/init.mp4"),
            track.init.clone(),
            "writing the init segment",
        )
        .await?;
        let writes: Vec<(ObjectPath, Bytes)> = track
            .segments
            .iter()
            .map(|segment| {
                (
                    ObjectPath::from(format!("{dir}/{}", segment_name(segment.number))),
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
        Ok(())
    }
}

fn segment_name(number: u32) -> String {
    format!("seg-{number:05}.m4s")
}

fn chunk_key(job: reel_core::JobId, rendition: &str, chunk: u64) -> String {
    format!("jobs/{job}/chunks/{rendition}/{chunk:05}.mp4")
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

struct ProbeTask(Arc<Shared>);

#[async_trait]
impl TaskHandler for ProbeTask {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let input: VideoTaskInput = payload(&ctx)?;
        let shared = &self.0;
        if input.source.size > shared.settings.limits.max_size_bytes {
            return Err(TaskError::permanent(format!(
                "the source is {} bytes, over the limit of {} bytes",
                input.source.size, shared.settings.limits.max_size_bytes
            )));
        }
        let local = shared.local_source(&input.source).await?;
        let info = reel_media::inspect(
            &local,
            &shared.settings.limits,
            shared.settings.probe_timeout,
        )
        .await
        .map_err(|error| media_error("probe", error))?;
        let plan = reel_media::plan::plan(&info, &shared.settings.plan)
            .map_err(|error| media_error("plan", error))?;
        info!(video = %input.video, duration = plan.duration_seconds, "planned");
        let new_tasks = fan_out(&input, &info, &plan, shared.settings.lowest_rendition_first);
        let output = ProbeOutput { info, plan };
        Ok(Completion {
            output: json!(output),
            new_tasks,
            publish: Vec::new(),
        })
    }
}

/// The tasks after the probe: encodes, audio, packaging, thumbnails and the
/// publish chain.
fn fan_out(
    input: &VideoTaskInput,
    info: &MediaInfo,
    plan: &Plan,
    lowest_rendition_first: bool,
) -> Vec<NewTask> {
    let mut tasks = Vec::new();
    let mut publish_deps: Vec<Vec<String>> = Vec::new();
    let mut publish_renditions: Vec<String> = Vec::new();
    if let Some(audio) = &plan.audio {
        tasks.push(NewTask {
            key: "audio".to_string(),
            kind: "audio".to_string(),
            priority: 0,
            payload: json!(AudioPayload {
                video: input.video,
                source: input.source.clone(),
                plan: audio.clone(),
                language: info.audio.as_ref().and_then(|audio| audio.language.clone()),
            }),
            depends_on: Vec::new(),
            max_attempts: 3,
        });
    }
    let mut thumbnails_key = None;
    if let Some(video) = &plan.video {
        // Renditions lowest first; groups of renditions encoded from one decode.
        let mut renditions = video.renditions.clone();
        renditions
            .sort_by_key(|rendition| u64::from(rendition.width) * u64::from(rendition.height));
        // (name, renditions, priority, chunks): the low pass is off the
        // critical path, so it takes bigger chunks (fewer process starts
        // and seeks); its chunks are whole runs of the plan's chunks, so
        // segments still line up.
        let mut groups: Vec<(String, Vec<RenditionPlan>, i64, Vec<ChunkPlan>)> = Vec::new();
        if lowest_rendition_first && renditions.len() > 1 {
            groups.push((
                "low".to_string(),
                renditions[..1].to_vec(),
                0,
                merge_chunks(&video.chunks, LOW_PASS_CHUNKS_PER_TASK),
            ));
            groups.push((
                "main".to_string(),
                renditions[1..].to_vec(),
                20,
                video.chunks.clone(),
            ));
        } else {
            groups.push((
                "all".to_string(),
                renditions.clone(),
                10,
                video.chunks.clone(),
            ));
        }
        let mut plan_without_chunks = video.clone();
        plan_without_chunks.chunks = Vec::new();
        let mut encode_keys_by_rendition: HashMap<String, Vec<String>> = HashMap::new();
        let mut chunks_by_rendition: HashMap<String, usize> = HashMap::new();
        for (group, members, priority, chunks) in &groups {
            for member in members {
                chunks_by_rendition.insert(member.name.clone(), chunks.len());
            }
            for chunk in chunks {
                let key = format!("encode-{group}-{:05}", chunk.index);
                for member in members {
                    encode_keys_by_rendition
                        .entry(member.name.clone())
                        .or_default()
                        .push(key.clone());
                }
                tasks.push(NewTask {
                    key,
                    kind: "encode".to_string(),
                    priority: *priority,
                    payload: json!(EncodePayload {
                        video: input.video,
                        source: input.source.clone(),
                        plan: plan_without_chunks.clone(),
                        chunk: chunk.clone(),
                        renditions: members.iter().map(|member| member.name.clone()).collect(),
                    }),
                    depends_on: Vec::new(),
                    max_attempts: 4,
                });
            }
        }
        for rendition in &renditions {
            let key = format!("package-{}", rendition.name);
            tasks.push(NewTask {
                key: key.clone(),
                kind: "package".to_string(),
                priority: 0,
                payload: json!(PackagePayload {
                    video: input.video,
                    rendition: rendition.clone(),
                    frame_rate: video.frame_rate,
                    chunks: chunks_by_rendition
                        .get(&rendition.name)
                        .copied()
                        .unwrap_or(video.chunks.len()),
                    planned_frames: video.total_frames,
                }),
                depends_on: encode_keys_by_rendition
                    .remove(&rendition.name)
                    .unwrap_or_default(),
                max_attempts: 3,
            });
            publish_renditions.push(rendition.name.clone());
            publish_deps.push(vec![key]);
        }
        tasks.push(NewTask {
            key: "thumbnails".to_string(),
            kind: "thumbnails".to_string(),
            priority: 15,
            payload: json!(ThumbnailPayload {
                video: input.video,
                source: input.source.clone(),
                plan: plan_without_chunks.clone(),
            }),
            depends_on: Vec::new(),
            max_attempts: 3,
        });
        thumbnails_key = Some("thumbnails".to_string());
    }
    let has_audio = plan.audio.is_some();
    if publish_deps.is_empty() {
        // Audio only: one publication.
        publish_deps.push(Vec::new());
    }
    let n_steps = publish_deps.len();
    let mut previous: Option<String> = None;
    for (step_idx, step_deps) in publish_deps.into_iter().enumerate() {
        let complete = step_idx + 1 == n_steps;
        let key = format!("publish-{}", step_idx + 1);
        let mut depends_on = step_deps;
        // Every publication lists all renditions so far, so it depends on
        // their package tasks, and follows the previous publication.
        for earlier in publish_renditions.iter().take(step_idx) {
            depends_on.push(format!("package-{earlier}"));
        }
        if has_audio {
            depends_on.push("audio".to_string());
        }
        if let Some(previous) = &previous {
            depends_on.push(previous.clone());
        }
        if complete {
            if let Some(thumbnails) = &thumbnails_key {
                depends_on.push(thumbnails.clone());
            }
        }
        tasks.push(NewTask {
            key: key.clone(),
            kind: "publish".to_string(),
            priority: 0,
            payload: json!(PublishPayload {
                video: input.video,
                complete,
                renditions: publish_renditions
                    .iter()
                    .take(step_idx + 1)
                    .cloned()
                    .collect(),
                audio: has_audio,
            }),
            depends_on,
            max_attempts: 3,
        });
        previous = Some(key);
    }
    tasks
}

/// How many of the plan's chunks one task of the lowest-rendition pass
/// encodes.
const LOW_PASS_CHUNKS_PER_TASK: usize = 3;

/// Joins runs of `per_task` consecutive chunks into one (renumbered from 0).
fn merge_chunks(chunks: &[ChunkPlan], per_task: usize) -> Vec<ChunkPlan> {
    chunks
        .chunks(per_task.max(1))
        .enumerate()
        .map(|(merged_idx, run)| ChunkPlan {
            index: merged_idx as u32,
            start_frame: run[0].start_frame,
            frame_count: run.iter().map(|chunk| chunk.frame_count).sum(),
            start_seconds: run[0].start_seconds,
            seek_seconds: run[0].seek_seconds,
        })
        .collect()
}

struct EncodeTask(Arc<Shared>);

#[async_trait]
impl TaskHandler for EncodeTask {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let input: EncodePayload = payload(&ctx)?;
        let shared = &self.0;
        let source = shared.local_source(&input.source).await?;
        let scratch = Scratch::create(&shared.settings.scratch_dir, &ctx).await?;
        let renditions: Vec<RenditionPlan> = input
            .renditions
            .iter()
            .filter_map(|name| {
                input
                    .plan
                    .renditions
                    .iter()
                    .find(|r| &r.name == name)
                    .cloned()
            })
            .collect();
        if renditions.len() != input.renditions.len() {
            return Err(TaskError::permanent(
                "encode task names a rendition the plan does not have",
            ));
        }
        let outputs: Vec<PathBuf> = renditions
            .iter()
            .map(|rendition| scratch.0.join(format!("{}.mp4", rendition.name)))
            .collect();
        let args = reel_media::encode::video_chunk_args(
            &source,
            &input.plan,
            &input.chunk,
            &renditions,
            &outputs,
            &shared.settings.encode,
        );
        let chunk_seconds = input
            .plan
            .frame_rate
            .frame_time_seconds(u64::from(input.chunk.frame_count));
        let limit = shared.ffmpeg_limit(chunk_seconds);
        let started = Instant::now();
        let progress_ctx = ctx.clone();
        reel_media::encode::run_ffmpeg(args, limit, move |progress: FfmpegProgress| {
            if let Some(done) = progress.out_time {
                progress_ctx.set_progress(done.as_secs_f64() / chunk_seconds.max(0.001));
            }
        })
        .await
        .map_err(|error| media_error(&format!("encode chunk {}", input.chunk.index), error))?;
        let encode_seconds = started.elapsed().as_secs_f64();
        let mut sizes = serde_json::Map::new();
        for (rendition, output) in renditions.iter().zip(&outputs) {
            let key = chunk_key(ctx.job_id, &rendition.name, u64::from(input.chunk.index));
            let size = shared
                .put_file(&key, output, "storing an encoded chunk")
                .await?;
            sizes.insert(rendition.name.clone(), json!(size));
        }
        debug!(chunk = input.chunk.index, encode_seconds, "chunk encoded");
        Ok(Completion {
            output: json!({
                "chunk": input.chunk.index,
                "renditions": input.renditions,
                "sizes": sizes,
                "encode_seconds": encode_seconds,
            }),
            ..Completion::default()
        })
    }
}

struct PackageTask(Arc<Shared>);

#[async_trait]
impl TaskHandler for PackageTask {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let input: PackagePayload = payload(&ctx)?;
        let shared = &self.0;
        let name = input.rendition.name.clone();
        let keys: Vec<String> = (0..input.chunks as u64)
            .map(|chunk| chunk_key(ctx.job_id, &name, chunk))
            .collect();
        let objects = shared.objects.clone();
        let chunks: Vec<Bytes> = futures::stream::iter(keys)
            .map(move |key| {
                let objects = objects.clone();
                async move {
                    let location = ObjectPath::from(key.as_str());
                    let read = async { objects.get(&location).await?.bytes().await };
                    read.await.map_err(|error| {
                        TaskError::retryable(format!("reading an encoded chunk ({key}): {error}"))
                    })
                }
            })
            .buffered(8)
            .try_collect()
            .await?;
        let started = Instant::now();
        let track = tokio::task::spawn_blocking(move || -> Result<reel_cmaf::Track, String> {
            let mut parsed = Vec::with_capacity(chunks.len());
            for (chunk_idx, data) in chunks.into_iter().enumerate() {
                parsed.push(
                    reel_cmaf::parse_fragmented(data)
                        .map_err(|error| format!("chunk {chunk_idx}: {error}"))?,
                );
            }
            reel_cmaf::assemble(parsed).map_err(|error| error.to_string())
        })
        .await
        .map_err(|error| TaskError::retryable(format!("packaging thread: {error}")))?
        .map_err(|error| TaskError::permanent(format!("package {name}: {error}")))?;
        let package_seconds = started.elapsed().as_secs_f64();
        let frames: u64 = track
            .segments
            .iter()
            .map(|segment| u64::from(segment.sample_count))
            .sum();
        if frames != input.planned_frames {
            return Err(TaskError::permanent(format!(
                "package {name}: the chunks hold {frames} frames, the plan has {}",
                input.planned_frames
            )));
        }
        if track.first_decode_time != 0 {
            return Err(TaskError::permanent(format!(
                "package {name}: the first segment starts at {} ticks, not 0",
                track.first_decode_time
            )));
        }
        let (width, height) = match track.info.kind {
            reel_cmaf::TrackKind::Video { width, height } => (width, height),
            reel_cmaf::TrackKind::Audio { .. } => {
                return Err(TaskError::permanent(format!(
                    "package {name}: the chunks hold audio, not video"
                )))
            }
        };
        let dir = format!("{}/{name}", video_prefix(input.video));
        shared.write_track(&dir, &track).await?;
        let rendition = VideoRendition {
            id: name.clone(),
            codec: track.info.codec.clone(),
            width,
            height,
            frame_rate: input.frame_rate,
            timescale: track.info.timescale,
            average_bitrate: track.average_bitrate(),
            peak_bitrate: track.peak_bitrate(),
            segments: segment_refs(&track),
        };
        write_media_playlists(shared, &dir, &rendition.segments, rendition.timescale, true).await?;
        let summary = RenditionSummary {
            name: name.clone(),
            width,
            height,
            average_bitrate: rendition.average_bitrate,
            peak_bitrate: rendition.peak_bitrate,
            frames,
            segments: rendition.segments.len(),
        };
        Ok(Completion {
            output: json!({"rendition": rendition, "summary": summary, "package_seconds": package_seconds}),
            ..Completion::default()
        })
    }
}

async fn write_media_playlists(
    shared: &Shared,
    dir: &str,
    segments: &[SegmentRef],
    timescale: u32,
    iframes: bool,
) -> Result<(), TaskError> {
    let media = reel_manifest::hls_media(segments, timescale);
    shared
        .put(
            &format!("{dir}/index.m3u8"),
            Bytes::from(media),
            "writing a media playlist",
        )
        .await?;
    if iframes {
        let iframe_playlist = reel_manifest::hls_iframes(segments, timescale);
        shared
            .put(
                &format!("{dir}/iframes.m3u8"),
                Bytes::from(iframe_playlist),
                "writing an I-frame playlist",
            )
            .await?;
    }
    Ok(())
}

struct AudioTask(Arc<Shared>);

#[async_trait]
impl TaskHandler for AudioTask {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let input: AudioPayload = payload(&ctx)?;
        let shared = &self.0;
        let source = shared.local_source(&input.source).await?;
        let scratch = Scratch::create(&shared.settings.scratch_dir, &ctx).await?;
        let output = scratch.0.join("audio.mp4");
        let args = reel_media::encode::audio_args(&source, &input.plan, &output);
        let duration = input.plan.duration_seconds;
        let progress_ctx = ctx.clone();
        reel_media::encode::run_ffmpeg(
            args,
            shared.ffmpeg_limit(duration / 10.0),
            move |progress: FfmpegProgress| {
                if let Some(done) = progress.out_time {
                    progress_ctx.set_progress(done.as_secs_f64() / duration.max(0.001));
                }
            },
        )
        .await
        .map_err(|error| media_error("encode audio", error))?;
        let data = Bytes::from(
            tokio::fs::read(&output)
                .await
                .map_err(io_error("reading the encoded audio"))?,
        );
        let track = tokio::task::spawn_blocking(move || -> Result<reel_cmaf::Track, String> {
            let parsed = reel_cmaf::parse_fragmented(data).map_err(|error| error.to_string())?;
            reel_cmaf::assemble(vec![parsed]).map_err(|error| error.to_string())
        })
        .await
        .map_err(|error| TaskError::retryable(format!("packaging thread: {error}")))?
        .map_err(|error| TaskError::permanent(format!("package audio: {error}")))?;
        let (channels, sample_rate) = match track.info.kind {
            reel_cmaf::TrackKind::Audio {
                channels,
                sample_rate,
            } => (channels, sample_rate),
            reel_cmaf::TrackKind::Video { .. } => {
                return Err(TaskError::permanent(
                    "package audio: the encoder wrote video, not audio",
                ))
            }
        };
        let dir = format!("{}/audio", video_prefix(input.video));
        shared.write_track(&dir, &track).await?;
        let language = input
            .language
            .clone()
            .filter(|language| !language.is_empty() && language != "und");
        let rendition = AudioRendition {
            id: "audio".to_string(),
            codec: track.info.codec.clone(),
            name: language.clone().unwrap_or_else(|| "Audio".to_string()),
            language,
            channels,
            sample_rate,
            timescale: track.info.timescale,
            average_bitrate: track.average_bitrate(),
            peak_bitrate: track.peak_bitrate(),
            segments: segment_refs(&track),
        };
        write_media_playlists(
            shared,
            &dir,
            &rendition.segments,
            rendition.timescale,
            false,
        )
        .await?;
        Ok(Completion {
            output: json!({"rendition": rendition}),
            ..Completion::default()
        })
    }
}

struct ThumbnailTask(Arc<Shared>);

#[async_trait]
impl TaskHandler for ThumbnailTask {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let input: ThumbnailPayload = payload(&ctx)?;
        let shared = &self.0;
        let source = shared.local_source(&input.source).await?;
        let scratch = Scratch::create(&shared.settings.scratch_dir, &ctx).await?;
        let duration = input.plan.duration_seconds();
        let limit = shared.ffmpeg_limit(duration / 4.0);
        let poster = scratch.0.join("poster.jpg");
        let args = reel_media::encode::poster_args(&source, &input.plan, &poster);
        reel_media::encode::run_ffmpeg(args, limit, |_| {})
            .await
            .map_err(|error| media_error("poster", error))?;
        let prefix = video_prefix(input.video);
        shared
            .put_file(
                &format!("{prefix}/poster.jpg"),
                &poster,
                "storing the poster",
            )
            .await?;
        let storyboard = StoryboardSettings::standard();
        let sheets_dir = scratch.0.join("storyboard");
        tokio::fs::create_dir_all(&sheets_dir)
            .await
            .map_err(io_error("creating the storyboard directory"))?;
        let args =
            reel_media::encode::storyboard_args(&source, &input.plan, &storyboard, &sheets_dir);
        reel_media::encode::run_ffmpeg(args, limit, |_| {})
            .await
            .map_err(|error| media_error("storyboard", error))?;
        let mut sheets = 0;
        loop {
            let name = format!("storyboard-{sheets}.jpg");
            let sheet = sheets_dir.join(&name);
            if tokio::fs::metadata(&sheet).await.is_err() {
                break;
            }
            shared
                .put_file(
                    &format!("{prefix}/storyboard/{name}"),
                    &sheet,
                    "storing a storyboard sheet",
                )
                .await?;
            sheets += 1;
        }
        let vtt = reel_media::encode::storyboard_vtt(&input.plan, &storyboard);
        shared
            .put(
                &format!("{prefix}/storyboard/index.vtt"),
                Bytes::from(vtt),
                "storing the storyboard index",
            )
            .await?;
        Ok(Completion {
            output: json!({"poster": "poster.jpg", "storyboard": "storyboard/index.vtt", "sheets": sheets}),
            ..Completion::default()
        })
    }
}

struct PublishTask(Arc<Shared>);

#[async_trait]
impl TaskHandler for PublishTask {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let input: PublishPayload = payload(&ctx)?;
        let shared = &self.0;
        let outputs = ctx.dependency_outputs().await?;
        let mut video = Vec::new();
        let mut summaries = Vec::new();
        for name in &input.renditions {
            let output = outputs.get(&format!("package-{name}")).ok_or_else(|| {
                TaskError::permanent(format!("publish: rendition {name} was not packaged"))
            })?;
            let rendition: VideoRendition = serde_json::from_value(output["rendition"].clone())
                .map_err(|error| {
                    TaskError::permanent(format!("publish: rendition {name}: {error}"))
                })?;
            let summary: RenditionSummary = serde_json::from_value(output["summary"].clone())
                .map_err(|error| {
                    TaskError::permanent(format!("publish: rendition {name}: {error}"))
                })?;
            video.push(rendition);
            summaries.push(summary);
        }
        let audio = match outputs.get("audio") {
            Some(output) => Some(
                serde_json::from_value::<AudioRendition>(output["rendition"].clone())
                    .map_err(|error| TaskError::permanent(format!("publish: audio: {error}")))?,
            ),
            None => None,
        };
        let presentation = Presentation {
            video,
            audio,
            complete: input.complete,
        };
        let prefix = video_prefix(input.video);
        let thumbnails = outputs.get("thumbnails");
        let poster = thumbnails.and_then(|t| t["poster"].as_str().map(str::to_string));
        let storyboard = thumbnails.and_then(|t| t["storyboard"].as_str().map(str::to_string));
        // The rendition playlists exist already; the multivariant playlist
        // and the MPD are written last, each in one put.
        shared
            .put(
                &format!("{prefix}/presentation.json"),
                Bytes::from(json!(presentation).to_string()),
                "writing the presentation",
            )
            .await?;
        shared
            .put(
                &format!("{prefix}/manifest.mpd"),
                Bytes::from(reel_manifest::dash_mpd(&presentation)),
                "writing the MPD",
            )
            .await?;
        shared
            .put(
                &format!("{prefix}/master.m3u8"),
                Bytes::from(reel_manifest::hls_multivariant(&presentation)),
                "writing the multivariant playlist",
            )
            .await?;
        if input.complete {
            let chunks = ObjectPath::from(format!("jobs/{}", ctx.job_id));
            let listed: Vec<_> = shared
                .objects
                .list(Some(&chunks))
                .map_ok(|meta| meta.location)
                .try_collect()
                .await
                .map_err(store_error("listing intermediate chunks"))?;
            for location in listed {
                let _ = shared.objects.delete(&location).await;
            }
        }
        let publication = Publication {
            renditions: summaries,
            audio: input.audio,
            complete: input.complete,
            poster,
            storyboard,
        };
        Ok(Completion {
            output: json!(publication),
            new_tasks: Vec::new(),
            publish: vec![json!(publication)],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_chunks_cover_the_same_frames_in_whole_runs() {
        let chunks: Vec<ChunkPlan> = (0..7u32)
            .map(|idx| ChunkPlan {
                index: idx,
                start_frame: u64::from(idx) * 120,
                frame_count: if idx == 6 { 45 } else { 120 },
                start_seconds: f64::from(idx) * 4.0,
                seek_seconds: Some(f64::from(idx) * 4.0 - 0.5),
            })
            .collect();
        let merged = merge_chunks(&chunks, 3);
        let summary: Vec<(u32, u64, u32, Option<f64>)> = merged
            .iter()
            .map(|chunk| {
                (
                    chunk.index,
                    chunk.start_frame,
                    chunk.frame_count,
                    chunk.seek_seconds,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, 0, 360, Some(-0.5)),
                (1, 360, 360, Some(11.5)),
                (2, 720, 45, Some(23.5)),
            ]
        );
    }
}
