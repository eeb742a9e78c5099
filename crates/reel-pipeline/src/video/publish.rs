//! `publish-{n}`: writes the presentation, the MPD and the multivariant
//! playlist of what is packaged so far; the last one completes the video
//! and removes the job's intermediates.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use reel_jobs::store::Completion;
use reel_jobs::worker::{TaskContext, TaskError, TaskHandler};
use reel_manifest::{Presentation, VideoRendition};
use serde_json::json;

use super::{
    dag, payload, scratch, store_error, write_presentation, JobLayout, Publication, PublishPayload,
    RenditionSummary, Shared,
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
        let audio = tracks(&outputs, dag::audio_key, "rendition")?;
        let text = tracks(&outputs, dag::text_key, "track")?;
        let presentation = Presentation {
            video,
            audio,
            text,
            complete: input.complete,
        };
        let thumbnails = outputs.get(dag::THUMBNAILS_KEY);
        let poster = thumbnails.and_then(|t| t["poster"].as_str().map(str::to_string));
        let storyboard = thumbnails.and_then(|t| t["storyboard"].as_str().map(str::to_string));
        // The rendition playlists exist already; the manifests come last.
        write_presentation(shared.objects.as_ref(), input.video, &presentation)
            .await
            .map_err(|error| TaskError::retryable(format!("publish: {error}")))?;
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

/// The outputs' tracks `key(1)`, `key(2)`, … (as many as there are), each
/// read from the output's `field`.
fn tracks<T: serde::de::DeserializeOwned>(
    outputs: &HashMap<String, serde_json::Value>,
    key: fn(u32) -> String,
    field: &str,
) -> Result<Vec<T>, TaskError> {
    let mut found = Vec::new();
    for track in 1.. {
        let key = key(track);
        let Some(output) = outputs.get(&key) else {
            break;
        };
        found.push(
            serde_json::from_value(output[field].clone())
                .map_err(|error| TaskError::permanent(format!("publish: {key}: {error}")))?,
        );
    }
    Ok(found)
}
