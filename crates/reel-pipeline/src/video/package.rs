//! `package-{rendition}`: assembles a rendition's encoded chunks into CMAF
//! segments and writes them with the rendition's media playlists.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use reel_jobs::store::Completion;
use reel_jobs::worker::{TaskContext, TaskError, TaskHandler};
use reel_manifest::VideoRendition;
use serde_json::json;

use super::{payload, JobLayout, PackagePayload, RenditionSummary, Shared, VideoLayout};

pub(super) struct PackageTask(pub(super) Arc<Shared>);

#[async_trait]
impl TaskHandler for PackageTask {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let input: PackagePayload = payload(&ctx)?;
        let shared = &self.0;
        let id = input.rendition.id().to_string();
        let name = id.clone();
        let keys: Vec<String> = (0..input.chunks as u64)
            .map(|chunk| JobLayout::new(ctx.job_id).chunk(&id, chunk))
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
            let mut track = reel_cmaf::assemble(parsed).map_err(|error| error.to_string())?;
            // The plan put a short tail in the last chunk; its fragment
            // joins the one before it (VideoPlan::segment_frame_counts).
            track.join_short_last_segment();
            Ok(track)
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
        let segments = shared
            .write_track(VideoLayout::new(input.video), &id, &track, true)
            .await?;
        let rendition = VideoRendition {
            id: id.clone(),
            codec: track.info.codec.clone(),
            width,
            height,
            frame_rate: input.frame_rate,
            timescale: track.info.timescale,
            average_bitrate: track.average_bitrate(),
            peak_bitrate: track.peak_bitrate(),
            segments,
        };
        let summary = RenditionSummary {
            id,
            name: input.rendition.name.clone(),
            codec: input.rendition.codec,
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
