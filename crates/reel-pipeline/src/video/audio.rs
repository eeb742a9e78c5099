//! `audio`, `audio-2`, …: encodes one audio track once and packages it
//! (also the encode of a dub, `dub.rs`).

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use reel_core::VideoId;
use reel_jobs::store::Completion;
use reel_jobs::worker::{TaskContext, TaskError, TaskHandler};
use reel_manifest::AudioRendition;
use reel_media::encode::FfmpegProgress;
use reel_media::plan::AudioPlan;
use serde_json::json;

use super::scratch::Scratch;
use super::{dag, io_error, media_error, payload, AudioPayload, Shared, VideoLayout};

pub(super) struct AudioTask(pub(super) Arc<Shared>);

#[async_trait]
impl TaskHandler for AudioTask {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let input: AudioPayload = payload(&ctx)?;
        let shared = &self.0;
        let source = shared.sources.get(&input.source).await?;
        let language = input
            .language
            .clone()
            .filter(|language| !language.is_empty() && language != "und");
        let name = reel_media::language::track_name(
            input.title.as_deref(),
            language.as_deref(),
            input.track,
        );
        let spec = AudioTrackSpec {
            video: input.video,
            id: dag::audio_key(input.track),
            name,
            language: language.map(|tag| reel_media::language::bcp47(&tag)),
            default: input.track <= 1,
        };
        let rendition = encode_audio_track(shared, &ctx, source.path(), &input.plan, spec).await?;
        Ok(Completion {
            output: json!({"rendition": rendition}),
            ..Completion::default()
        })
    }
}

/// What an audio track is called and where it goes.
pub(super) struct AudioTrackSpec {
    pub(super) video: VideoId,
    /// Its folder and id, e.g. `audio-2`.
    pub(super) id: String,
    pub(super) name: String,
    /// The BCP 47 tag, if known.
    pub(super) language: Option<String>,
    pub(super) default: bool,
}

/// Encodes `plan`'s stream of `source` once, packages it (a short last
/// segment joined) and writes its init, segments and playlist: the track
/// of a video job, or a dub added later.
pub(super) async fn encode_audio_track(
    shared: &Shared,
    ctx: &TaskContext,
    source: &Path,
    plan: &AudioPlan,
    spec: AudioTrackSpec,
) -> Result<AudioRendition, TaskError> {
    let scratch = Scratch::create(&shared.settings.scratch_dir, ctx).await?;
    let output = scratch.path().join("audio.mp4");
    let args = reel_media::encode::audio_args(source, plan, &output);
    let duration = plan.duration_seconds;
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
        let mut track = reel_cmaf::assemble(vec![parsed]).map_err(|error| error.to_string())?;
        // No runt at the end: hls.js never reaches `ended` after one.
        track.join_short_last_segment();
        Ok(track)
    })
    .await
    .map_err(|error| TaskError::retryable(format!("packaging thread: {error}")))?
    .map_err(|error| TaskError::permanent(format!("package audio: {error}")))?;
    // The sample entry's channelcount is 2 for AAC in MP4 whatever the
    // stream holds (ISO/IEC 14496-14); the encoder made what the plan says.
    let sample_rate = match track.info.kind {
        reel_cmaf::TrackKind::Audio { sample_rate, .. } => sample_rate,
        reel_cmaf::TrackKind::Video { .. } => {
            return Err(TaskError::permanent(
                "package audio: the encoder wrote video, not audio",
            ))
        }
    };
    let segments = shared
        .write_track(VideoLayout::new(spec.video), &spec.id, &track, false)
        .await?;
    Ok(AudioRendition {
        id: spec.id,
        codec: track.info.codec.clone(),
        name: spec.name,
        language: spec.language,
        default: spec.default,
        channels: plan.channels,
        sample_rate,
        timescale: track.info.timescale,
        average_bitrate: track.average_bitrate(),
        peak_bitrate: track.peak_bitrate(),
        segments,
    })
}
