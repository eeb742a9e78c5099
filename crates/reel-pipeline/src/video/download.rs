//! `download-{rendition}` (a `download` job of its own, made on request):
//! remuxes a published rendition and the default audio track into one
//! progressive MP4, `download/{rendition}.mp4`, copying the streams.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use reel_core::VideoId;
use reel_jobs::store::{Completion, NewJob, NewTask};
use reel_jobs::worker::{TaskContext, TaskError, TaskHandler};
use reel_manifest::paths::{segment_file_name, INIT_SEGMENT};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::scratch::Scratch;
use super::{
    io_error, media_error, payload, read_presentation, store_error, PresentationError, Shared,
    TaskKind, VideoLayout,
};

/// What one download task makes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DownloadPayload {
    video: VideoId,
    /// The video rendition's id, e.g. `h264-720p`.
    rendition: String,
}

/// The job that makes the progressive MP4s of `renditions` of a published video.
pub fn download_job(video: VideoId, renditions: &[String]) -> NewJob {
    NewJob {
        kind: "download".to_string(),
        priority: 0,
        input: json!({"video": video, "renditions": renditions}),
        tasks: renditions
            .iter()
            .map(|rendition| download_task(video, rendition, Vec::new()))
            .collect(),
    }
}

/// The task that makes `rendition`'s download once `depends_on` succeeded:
/// in a download job, or at the end of the video job (`encode.downloads`).
pub(super) fn download_task(video: VideoId, rendition: &str, depends_on: Vec<String>) -> NewTask {
    NewTask {
        key: format!("download-{rendition}"),
        kind: TaskKind::Download.as_str().to_string(),
        priority: 0,
        payload: json!(DownloadPayload {
            video,
            rendition: rendition.to_string(),
        }),
        depends_on,
        max_attempts: 3,
    }
}

pub(super) struct DownloadTask(pub(super) Arc<Shared>);

impl DownloadTask {
    /// Writes the track's init segment and its `count` media segments, in
    /// order, into one fragmented MP4 at `path`.
    async fn assemble(
        &self,
        layout: &VideoLayout,
        track: &str,
        count: usize,
        path: &Path,
    ) -> Result<(), TaskError> {
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(io_error("creating a download part"))?;
        let keys =
            std::iter::once(layout.object(&format!("{track}/{INIT_SEGMENT}")))
                .chain((1..=count).map(|number| {
                    layout.object(&format!("{track}/{}", segment_file_name(number)))
                }));
        for key in keys {
            let mut stream = self
                .0
                .objects
                .get(&ObjectPath::from(key.as_str()))
                .await
                .map_err(store_error("reading a segment for the download"))?
                .into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(store_error("reading a segment for the download"))?;
                file.write_all(&chunk)
                    .await
                    .map_err(io_error("writing a download part"))?;
            }
        }
        file.flush()
            .await
            .map_err(io_error("writing a download part"))?;
        Ok(())
    }
}

#[async_trait]
impl TaskHandler for DownloadTask {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let input: DownloadPayload = payload(&ctx)?;
        let shared = &self.0;
        let layout = VideoLayout::new(input.video);
        let presentation = read_presentation(shared.objects.as_ref(), input.video)
            .await
            .map_err(|error| match error {
                PresentationError::Corrupt(_) => TaskError::permanent(format!("download: {error}")),
                PresentationError::Store { .. } => {
                    TaskError::retryable(format!("download: {error}"))
                }
            })?;
        let rendition = presentation
            .video
            .iter()
            .find(|rendition| rendition.id == input.rendition)
            .ok_or_else(|| {
                TaskError::permanent(format!(
                    "download: the video has no rendition {}",
                    input.rendition
                ))
            })?;
        let scratch = Scratch::create(&shared.settings.scratch_dir, &ctx).await?;
        let video_part = scratch.path().join("video.mp4");
        self.assemble(
            &layout,
            &rendition.id,
            rendition.segments.len(),
            &video_part,
        )
        .await?;
        let audio_part = match presentation.default_audio() {
            Some(audio) => {
                let path = scratch.path().join("audio.mp4");
                self.assemble(&layout, &audio.id, audio.segments.len(), &path)
                    .await?;
                Some(path)
            }
            None => None,
        };
        let output = scratch.path().join("download.mp4");
        let args = reel_media::encode::remux_args(&video_part, audio_part.as_deref(), &output);
        // A copy: a twentieth of the media's time-limit allowance.
        let seconds = presentation.duration_micros() as f64 / 1e6;
        reel_media::encode::run_ffmpeg(args, shared.ffmpeg_limit(seconds / 20.0), |_| {})
            .await
            .map_err(|error| media_error("download remux", error))?;
        let key = layout.download(&rendition.id);
        let size = shared
            .put_file(&key, &output, "storing the download")
            .await?;
        Ok(Completion {
            output: json!({"rendition": rendition.id, "key": key, "size": size}),
            ..Completion::default()
        })
    }
}
