//! `dub` (a `dub` job of its own, made by `POST /v1/videos/{id}/audio`):
//! probes an uploaded audio file (or a video file's first audio stream),
//! encodes it as an AAC track on the video's own timeline, padded or
//! trimmed to the video's duration, and republishes both manifests with
//! it. The video's segments are not touched.

use std::sync::Arc;

use async_trait::async_trait;
use object_store::path::Path as ObjectPath;
use reel_core::VideoId;
use reel_jobs::store::{Completion, NewJob, NewTask};
use reel_jobs::worker::{TaskContext, TaskError, TaskHandler};
use reel_media::plan::AudioPlan;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audio::{encode_audio_track, AudioTrackSpec};
use super::{
    media_error, payload, read_presentation, write_presentation, PresentationError, Shared,
    TaskKind,
};
use crate::jobs::StoredObject;

/// An audio track to add to a published video.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DubRequest {
    /// The track's id and folder, e.g. `audio-3`; not one the video has.
    pub id: String,
    /// The BCP 47 language tag.
    pub language: String,
    /// The name players show.
    pub name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct DubPayload {
    video: VideoId,
    source: StoredObject,
    request: DubRequest,
}

/// The job that adds `request`'s track to `video` from the stored `source`.
pub fn dub_job(video: VideoId, source: &StoredObject, request: DubRequest) -> NewJob {
    NewJob {
        kind: "dub".to_string(),
        priority: 0,
        input: json!({"video": video, "track": request.id}),
        tasks: vec![NewTask {
            key: format!("dub-{}", request.id),
            kind: TaskKind::Dub.as_str().to_string(),
            priority: 0,
            payload: json!(DubPayload {
                video,
                source: source.clone(),
                request,
            }),
            depends_on: Vec::new(),
            max_attempts: 3,
        }],
    }
}

/// Where a dub's uploaded file is kept until its job is done: beside the
/// video's source, so deleting the video deletes it.
pub fn dub_source_key(video: VideoId, id: &str) -> String {
    format!(
        "{}/dub-{id}",
        super::VideoLayout::new(video).source_prefix()
    )
}

pub(super) struct DubTask(pub(super) Arc<Shared>);

fn presentation_error(error: PresentationError) -> TaskError {
    match error {
        PresentationError::Corrupt(_) => TaskError::permanent(format!("dub: {error}")),
        PresentationError::Store { .. } => TaskError::retryable(format!("dub: {error}")),
    }
}

#[async_trait]
impl TaskHandler for DubTask {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let input: DubPayload = payload(&ctx)?;
        let shared = &self.0;
        let presentation = read_presentation(shared.objects.as_ref(), input.video)
            .await
            .map_err(presentation_error)?;
        let segments_micros = presentation.segment_durations_micros();
        let duration_micros: u64 = segments_micros.iter().sum();
        if presentation.video.is_empty() || duration_micros == 0 {
            return Err(TaskError::permanent(
                "dub: the video has no published video track to add audio to",
            ));
        }
        let local = shared.sources.get(&input.source).await?;
        let info = reel_media::inspect(
            local.path(),
            &shared.settings.limits,
            shared.settings.limits.probe_timeout,
        )
        .await
        .map_err(|error| media_error("dub: probe", error))?;
        // The file's first audio stream, whatever its default flag.
        let Some(audio) = info
            .audio
            .iter()
            .chain(&info.more_audio)
            .min_by_key(|audio| audio.index)
        else {
            return Err(TaskError::permanent(
                "dub: the file has no decodable audio stream; send an audio file, or a video file with sound",
            ));
        };
        let channels = if audio.channels == 1 { 1 } else { 2 };
        let plan = AudioPlan {
            source_index: audio.index,
            // The file's own start is the video's t=0.
            origin_seconds: audio.start_time_seconds,
            duration_seconds: duration_micros as f64 / 1e6,
            channels,
            sample_rate: 48_000,
            bitrate_kbps: if channels == 1 { 96 } else { 128 },
            segment_seconds: segments_micros[0] as f64 / 1e6,
        };
        let spec = AudioTrackSpec {
            video: input.video,
            id: input.request.id.clone(),
            name: input.request.name.clone(),
            language: Some(input.request.language.clone()),
            default: false,
        };
        let rendition = encode_audio_track(shared, &ctx, local.path(), &plan, spec).await?;
        // Read again: captions may have changed while this encoded.
        let mut presentation = read_presentation(shared.objects.as_ref(), input.video)
            .await
            .map_err(presentation_error)?;
        if presentation
            .audio
            .iter()
            .any(|existing| existing.id == rendition.id)
        {
            return Err(TaskError::permanent(format!(
                "dub: the video has an audio track {} already",
                rendition.id
            )));
        }
        // The only audio track of a video that had none is its default.
        let mut rendition = rendition;
        rendition.default = presentation.audio.is_empty();
        presentation.audio.push(rendition.clone());
        write_presentation(shared.objects.as_ref(), input.video, &presentation)
            .await
            .map_err(presentation_error)?;
        // The uploaded file is no longer needed.
        let _ = shared
            .objects
            .delete(&ObjectPath::from(input.source.key.as_str()))
            .await;
        Ok(Completion {
            output: json!({"rendition": rendition}),
            ..Completion::default()
        })
    }
}
