//! `text-{n}`: converts one text subtitle stream of the source to a WebVTT
//! track (`text-{n}/captions.vtt` and its one-segment `index.m3u8`).

use std::sync::Arc;

use async_trait::async_trait;
use reel_jobs::store::Completion;
use reel_jobs::worker::{TaskContext, TaskError, TaskHandler};
use reel_manifest::captions::TIMESTAMP_MAP;
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
        let vtt = with_timestamp_map(&text);
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
            size: vtt.len() as u64,
        };
        write_text_track(shared.objects.as_ref(), input.video, &track, vtt)
            .await
            .map_err(|error| TaskError::retryable(format!("captions: {error}")))?;
        Ok(Completion {
            output: json!({"track": track}),
            ..Completion::default()
        })
    }
}

/// The WebVTT text with [`TIMESTAMP_MAP`] in its header (after the
/// `WEBVTT` line), which HLS players use to place the cues.
fn with_timestamp_map(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match text.split_once('\n') {
        Some((first, rest)) if first.trim_end().starts_with("WEBVTT") => {
            format!("{}\n{TIMESTAMP_MAP}\n{rest}", first.trim_end())
        }
        _ => format!("WEBVTT\n{TIMESTAMP_MAP}\n\n{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_timestamp_map;

    #[test]
    fn the_timestamp_map_goes_in_the_header() {
        assert_eq!(
            with_timestamp_map("WEBVTT\n\n00:00.500 --> 00:01.500\nHi\n"),
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS=0,LOCAL=00:00:00.000\n\n00:00.500 --> 00:01.500\nHi\n"
        );
        assert!(with_timestamp_map("").starts_with("WEBVTT\nX-TIMESTAMP-MAP"));
    }
}
