//! `publish-{n}`: writes the presentation, the MPD and the multivariant
//! playlist of what is packaged so far; the last one completes the video
//! and removes the job's intermediates.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use reel_jobs::store::Completion;
use reel_jobs::worker::{TaskContext, TaskError, TaskHandler};
use reel_manifest::{AudioRendition, Presentation, TextTrack, VideoRendition};
use serde_json::json;

use super::{
    dag, payload, scratch, store_error, JobLayout, Publication, PublishPayload, RenditionSummary,
    Shared, VideoLayout,
};

pub(super) struct PublishTask(pub(super) Arc<Shared>);

#[async_trait]
impl TaskHandler for PublishTask {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let input: PublishPayload = payload(&ctx)?;
        let shared = &self.0;
        let outputs = ctx.dependency_outputs().await?;
        let mut video = Vec::new();
        let mut summaries = Vec::new();
        for name in &input.renditions {
            let output = outputs.get(&dag::package_key(name)).ok_or_else(|| {
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
        let mut audio = Vec::new();
        for track in 1.. {
            let key = dag::audio_key(track);
            let Some(output) = outputs.get(&key) else {
                break;
            };
            audio.push(
                serde_json::from_value::<AudioRendition>(output["rendition"].clone())
                    .map_err(|error| TaskError::permanent(format!("publish: {key}: {error}")))?,
            );
        }
        let mut text = Vec::new();
        for track in 1.. {
            let key = dag::text_key(track);
            let Some(output) = outputs.get(&key) else {
                break;
            };
            text.push(
                serde_json::from_value::<TextTrack>(output["track"].clone())
                    .map_err(|error| TaskError::permanent(format!("publish: {key}: {error}")))?,
            );
        }
        let presentation = Presentation {
            video,
            audio,
            text,
            complete: input.complete,
        };
        let layout = VideoLayout::new(input.video);
        let thumbnails = outputs.get(dag::THUMBNAILS_KEY);
        let poster = thumbnails.and_then(|t| t["poster"].as_str().map(str::to_string));
        let storyboard = thumbnails.and_then(|t| t["storyboard"].as_str().map(str::to_string));
        // The rendition playlists exist already; the multivariant playlist
        // and the MPD are written last, each in one put.
        shared
            .put(
                &layout.presentation(),
                Bytes::from(json!(presentation).to_string()),
                "writing the presentation",
            )
            .await?;
        shared
            .put(
                &layout.mpd(),
                Bytes::from(reel_manifest::dash_mpd(&presentation)),
                "writing the MPD",
            )
            .await?;
        shared
            .put(
                &layout.multivariant(),
                Bytes::from(reel_manifest::hls_multivariant(&presentation)),
                "writing the multivariant playlist",
            )
            .await?;
        if input.complete {
            let chunks = ObjectPath::from(JobLayout::new(ctx.job_id).prefix());
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
            scratch::remove_job_scratch(&shared.settings.scratch_dir, ctx.job_id).await;
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
