//! `thumbnails`: the poster and the storyboard (sheets and WebVTT index).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use reel_jobs::store::Completion;
use reel_jobs::worker::{TaskContext, TaskError, TaskHandler};
use reel_media::encode::StoryboardSettings;
use serde_json::json;

use super::scratch::Scratch;
use super::{io_error, layout, media_error, payload, Shared, ThumbnailPayload, VideoLayout};

pub(super) struct ThumbnailTask(pub(super) Arc<Shared>);

#[async_trait]
impl TaskHandler for ThumbnailTask {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let input: ThumbnailPayload = payload(&ctx)?;
        let shared = &self.0;
        let source = shared.sources.get(&input.source).await?;
        let scratch = Scratch::create(&shared.settings.scratch_dir, &ctx).await?;
        let duration = input.plan.duration_seconds();
        let limit = shared.ffmpeg_limit(duration / 4.0);
        let poster = scratch.path().join("poster.jpg");
        let args = reel_media::encode::poster_args(source.path(), &input.plan, &poster);
        reel_media::encode::run_ffmpeg(args, limit, |_| {})
            .await
            .map_err(|error| media_error("poster", error))?;
        let layout = VideoLayout::new(input.video);
        shared
            .put_file(&layout.poster(), &poster, "storing the poster")
            .await?;
        let storyboard = StoryboardSettings::standard();
        let sheets_dir = scratch.path().join("storyboard");
        tokio::fs::create_dir_all(&sheets_dir)
            .await
            .map_err(io_error("creating the storyboard directory"))?;
        let args = reel_media::encode::storyboard_args(
            source.path(),
            &input.plan,
            &storyboard,
            &sheets_dir,
        );
        reel_media::encode::run_ffmpeg(args, limit, |_| {})
            .await
            .map_err(|error| media_error("storyboard", error))?;
        let mut sheets = 0;
        loop {
            let sheet = sheets_dir.join(layout::storyboard_sheet_name(sheets));
            if tokio::fs::metadata(&sheet).await.is_err() {
                break;
            }
            shared
                .put_file(
                    &layout.storyboard_sheet(sheets),
                    &sheet,
                    "storing a storyboard sheet",
                )
                .await?;
            sheets += 1;
        }
        let vtt = reel_media::encode::storyboard_vtt(&input.plan, &storyboard);
        shared
            .put(
                &layout.storyboard_index(),
                Bytes::from(vtt),
                "storing the storyboard index",
            )
            .await?;
        Ok(Completion {
            output: json!({"poster": layout::POSTER, "storyboard": layout::STORYBOARD_INDEX, "sheets": sheets}),
            ..Completion::default()
        })
    }
}
