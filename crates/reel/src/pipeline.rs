//! How this process hosts the pipeline: its handlers, their settings from
//! the config, and the owner's media-time budget each probe draws on.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use reel_core::VideoId;
use reel_jobs::store::{JobStore, RetryPolicy};
use reel_jobs::worker::WorkerConfig;
use reel_media::encode::EncodeSettings;
use reel_media::plan::PlanSettings;
use reel_model::videos::MediaReservation;
use reel_model::Videos;
use reel_pipeline::jobs::PipelineSettings;
use reel_pipeline::video::{BudgetError, MediaBudget, VideoSettings};

use crate::config::Config;

pub(crate) fn worker_config(config: &Config, name: String, slots: usize) -> WorkerConfig {
    WorkerConfig {
        name,
        slots,
        lease: config.worker.lease,
        heartbeat_interval: config.worker.heartbeat,
        poll_interval: config.worker.poll,
        retry: RetryPolicy {
            base_delay: config.worker.retry_base,
            max_delay: config.worker.retry_max,
        },
        shutdown_grace: config.worker.lease,
    }
}

fn pipeline_settings(config: &Config) -> anyhow::Result<PipelineSettings> {
    Ok(PipelineSettings {
        probe_timeout: config.limits.probe_timeout,
        checksum_range: 1 << 20,
        scratch_dir: config.scratch_dir()?,
    })
}

/// Every task handler: the engine's own jobs and the video pipeline, whose
/// probes draw on each owner's `limits.media_seconds_per_key`.
pub(crate) fn registry(
    config: &Config,
    store: &JobStore,
    objects: Arc<dyn object_store::ObjectStore>,
    slots: usize,
) -> anyhow::Result<reel_jobs::worker::Registry> {
    reel_media::set_child_limits(reel_media::ChildLimits {
        max_pixels: u64::from(config.limits.max_width) * u64::from(config.limits.max_height),
        memory_bytes: config.limits.ffmpeg_memory.bytes(),
    });
    let mut registry = reel_pipeline::jobs::registry(objects.clone(), pipeline_settings(config)?);
    let budget: Arc<dyn MediaBudget> = match config.limits.media_seconds_per_key {
        0 => Arc::new(reel_pipeline::video::budget::Unlimited),
        seconds => Arc::new(OwnerBudget {
            store: store.clone(),
            seconds,
        }),
    };
    reel_pipeline::video::register(
        &mut registry,
        objects,
        video_settings(config, slots)?,
        budget,
    );
    Ok(registry)
}

/// x264 threads per encoder: the configured number, or else the cores
/// shared out among the slots (parallelism comes from running chunks side
/// by side; one thread per encoder on 2 cores and 2 slots measured 6 % less
/// CPU than x264's own threading, see bench/RESULTS.md).
fn x264_threads(configured: u32, slots: usize) -> u32 {
    if configured > 0 {
        return configured;
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    u32::try_from((cores / slots.max(1)).max(1)).unwrap_or(1)
}

fn video_settings(config: &Config, slots: usize) -> anyhow::Result<VideoSettings> {
    let storage = config.storage()?;
    Ok(VideoSettings {
        limits: config.limits.clone(),
        plan: PlanSettings {
            segments_per_chunk: config.encode.segments_per_chunk,
            codecs: config.encode.video_codecs()?,
            ..PlanSettings::standard()
        },
        encode: EncodeSettings {
            preset: config.encode.preset.clone(),
            threads: Some(x264_threads(config.encode.x264_threads, slots)),
            ..EncodeSettings::standard()
        },
        ffmpeg_time_per_media_second: config.encode.time_per_media_second,
        scratch_dir: config.scratch_dir()?,
        local_store_root: storage.local_root().map(Path::to_path_buf),
        source_cache_bytes: config.worker.source_cache.bytes(),
        lowest_rendition_first: config.encode.lowest_rendition_first,
        downloads: config.encode.download_selection()?,
    })
}

/// `limits.media_seconds_per_key`: the seconds of video all of one key's
/// videos may last together, recorded on each video's row by its probe.
struct OwnerBudget {
    store: JobStore,
    seconds: u64,
}

#[async_trait]
impl MediaBudget for OwnerBudget {
    async fn reserve(&self, video: VideoId, seconds: f64) -> Result<(), BudgetError> {
        let millis = (seconds.max(0.0) * 1000.0).ceil().min(i64::MAX as f64) as i64;
        let budget = i64::try_from(self.seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        match self.store.reserve_media_millis(video, millis, budget).await {
            Ok(MediaReservation::Reserved | MediaReservation::Missing) => Ok(()),
            Ok(MediaReservation::Refused { used_millis }) => Err(BudgetError::Exceeded(format!(
                "the video lasts {:.0} s, but its owner's other videos already take {} s of the {} s one key may hold (limits.media_seconds_per_key): delete videos or raise the limit",
                seconds,
                used_millis / 1000,
                self.seconds
            ))),
            Err(error) => Err(BudgetError::Unavailable(error.to_string())),
        }
    }
}
