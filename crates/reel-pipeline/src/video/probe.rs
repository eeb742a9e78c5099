//! `media-probe`: inspects the source, plans, and fans out the DAG.

use std::sync::Arc;

use async_trait::async_trait;
use reel_jobs::store::Completion;
use reel_jobs::worker::{TaskContext, TaskError, TaskHandler};
use serde_json::json;
use tracing::info;

use super::{dag, media_error, payload, BudgetError, ProbeOutput, Shared, VideoTaskInput};

pub(super) struct ProbeTask(pub(super) Arc<Shared>);

#[async_trait]
impl TaskHandler for ProbeTask {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let input: VideoTaskInput = payload(&ctx)?;
        let shared = &self.0;
        if input.source.size > shared.settings.limits.max_upload_size.bytes() {
            return Err(TaskError::permanent(format!(
                "the source is {} bytes, over the limit of {} bytes",
                input.source.size,
                shared.settings.limits.max_upload_size.bytes()
            )));
        }
        let local = shared.sources.get(&input.source).await?;
        let info = reel_media::inspect(
            local.path(),
            &shared.settings.limits,
            shared.settings.limits.probe_timeout,
        )
        .await
        .map_err(|error| media_error("probe", error))?;
        let plan = reel_media::plan::plan(&info, &shared.settings.plan)
            .map_err(|error| media_error("plan", error))?;
        info!(video = %input.video, duration = plan.duration_seconds, "planned");
        shared
            .budget
            .reserve(input.video, plan.duration_seconds)
            .await
            .map_err(|error| match error {
                BudgetError::Exceeded(reason) => TaskError::permanent(reason),
                unavailable @ BudgetError::Unavailable(_) => {
                    TaskError::retryable(unavailable.to_string())
                }
            })?;
        let new_tasks = dag::fan_out(&input, &info, &plan, &shared.settings);
        let output = ProbeOutput { info, plan };
        Ok(Completion {
            output: json!(output),
            new_tasks,
            publish: Vec::new(),
        })
    }
}
