//! `encode-{group}-{chunk}`: decodes one chunk of the source once and
//! encodes it for a group of renditions.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use reel_jobs::store::Completion;
use reel_jobs::worker::{TaskContext, TaskError, TaskHandler};
use reel_media::encode::FfmpegProgress;
use reel_media::plan::RenditionPlan;
use serde_json::json;
use tracing::debug;

use super::scratch::Scratch;
use super::{media_error, payload, EncodePayload, JobLayout, Shared};

pub(super) struct EncodeTask(pub(super) Arc<Shared>);

#[async_trait]
impl TaskHandler for EncodeTask {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let input: EncodePayload = payload(&ctx)?;
        let shared = &self.0;
        let source = shared.sources.get(&input.source).await?;
        let scratch = Scratch::create(&shared.settings.scratch_dir, &ctx).await?;
        let renditions: Vec<RenditionPlan> = input
            .renditions
            .iter()
            .filter_map(|id| {
                // Tasks queued before rendition ids named the codec hold names.
                input
                    .plan
                    .renditions
                    .iter()
                    .find(|r| r.id().as_str() == id || &r.name == id)
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
            .map(|rendition| scratch.path().join(format!("{}.mp4", rendition.id())))
            .collect();
        let args = reel_media::encode::video_chunk_args(
            source.path(),
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
            let id = rendition.id();
            let key = JobLayout::new(ctx.job_id).chunk(id.as_str(), u64::from(input.chunk.index));
            let size = shared
                .put_file(&key, output, "storing an encoded chunk")
                .await?;
            sizes.insert(id.to_string(), json!(size));
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
