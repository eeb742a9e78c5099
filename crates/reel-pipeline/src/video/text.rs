//! `text-{n}`: converts one text subtitle stream of the source to a WebVTT
//! track (`text-{n}/captions.vtt`, its segments and their `index.m3u8`).

use std::sync::Arc;

use async_trait::async_trait;
use reel_jobs::store::Completion;
use reel_jobs::worker::{TaskContext, TaskError, TaskHandler};
use reel_manifest::TextTrack;
use serde_json::json;

use super::scratch::Scratch;
use super::{dag, io_error, media_error, payload, write_text_track, Shared, TextPayload};

/// The largest WebVTT file a track may become.
const MAX_TEXT_BYTES: u64 = 16 << 20;

pub(super) struct TextTask(pub(super) Arc<Shared>);

#[async_trait]
impl TaskHandler for TextTask {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let input: TextPayload = payload(&ctx)?;
        let shared = &self.0;
        let source = shared.sources.get(&input.source).await?;
        let scratch = Scratch::create(&shared.settings.scratch_dir, &ctx).await?;
        let output = scratch.path().join("captions.vtt");
        let args = reel_media::encode::text_args(
            source.path(),
            input.index,
            input.origin_seconds,
            &output,
        );
        reel_media::encode::run_ffmpeg(args, shared.ffmpeg_limit(1.0), |_| {})
            .await
            .map_err(|error| media_error("convert captions", error))?;
        let size = tokio::fs::metadata(&output)
            .await
            .map_err(io_error("reading the captions"))?
            .len();
        if size > MAX_TEXT_BYTES {
            return Err(TaskError::permanent(format!(
                "captions: subtitle stream {} makes {size} bytes of WebVTT, over the limit of {MAX_TEXT_BYTES}",
                input.index
            )));
        }
        let text = tokio::fs::read_to_string(&output)
            .await
            .map_err(|error| TaskError::permanent(format!("captions: not UTF-8 text: {error}")))?;
        // ffmpeg's WebVTT read back as cues, to be cut on the segments; a
        // stream without a single cue becomes an empty track.
        let cues = if text.contains("-->") {
            reel_manifest::captions::parse_captions(&text).map_err(|error| {
                TaskError::permanent(format!(
                    "captions: subtitle stream {} converts to WebVTT reel cannot read: {error}",
                    input.index
                ))
            })?
        } else {
            Vec::new()
        };
        let size = reel_manifest::captions::to_webvtt(&cues).len() as u64;
        let id = dag::text_key(input.track);
        let language = input.language.as_deref().map(reel_media::language::bcp47);
        let track = TextTrack {
            id,
            name: reel_media::language::track_name(
                input.title.as_deref(),
                input.language.as_deref(),
                input.track,
            ),
            language,
            default: input.default,
            duration_micros: (input.duration_seconds.max(0.0) * 1e6).round() as u64,
            size,
            segments_micros: input.segments_micros.clone(),
        };
        write_text_track(shared.objects.as_ref(), input.video, &track, &cues)
            .await
            .map_err(|error| TaskError::retryable(format!("captions: {error}")))?;
        Ok(Completion {
            output: json!({"track": track}),
            ..Completion::default()
        })
    }
}
