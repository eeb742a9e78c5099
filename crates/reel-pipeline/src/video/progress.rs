//! What the API shows of a video's job: its state, percent done, pipeline
//! steps, duration and latest publication, computed here from the job's
//! tasks so that no other crate names a task kind.

use reel_jobs::store::{JobState, JobView, TaskState, TaskView};
use serde::Serialize;

use super::{ProbeOutput, Publication, TaskKind};

/// A video's state as the API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoState {
    /// Being processed, nothing playable yet.
    Processing,
    /// Some renditions are published, more are coming.
    Playable,
    /// Every rendition is published.
    Ready,
    /// Processing failed.
    Failed,
    /// Processing was cancelled.
    Cancelled,
}

impl VideoState {
    /// The state's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            VideoState::Processing => "processing",
            VideoState::Playable => "playable",
            VideoState::Ready => "ready",
            VideoState::Failed => "failed",
            VideoState::Cancelled => "cancelled",
        }
    }
}

/// One step of the pipeline and how many of its tasks are done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PipelineStep {
    /// probe, encode, thumbnails, package or publish.
    pub name: &'static str,
    /// Tasks of the step that succeeded.
    pub done: usize,
    /// Tasks of the step so far.
    pub total: usize,
}

/// A video job's progress.
#[derive(Clone, Debug)]
pub struct VideoProgress {
    /// The video's state.
    pub state: VideoState,
    /// Percent done, one decimal.
    pub percent: f64,
    /// The pipeline steps in order.
    pub steps: Vec<PipelineStep>,
    /// The source's duration, once probed.
    pub duration_seconds: Option<f64>,
    /// The latest publication, once a rendition is playable.
    pub publication: Option<Publication>,
}

/// The progress of a video job.
pub fn video_progress(job: &JobView) -> VideoProgress {
    let duration_seconds = job
        .tasks
        .iter()
        .find(|task| kind(task) == Some(TaskKind::MediaProbe))
        .and_then(|task| task.output.clone())
        .and_then(|output| serde_json::from_value::<ProbeOutput>(output).ok())
        .map(|probe| probe.plan.duration_seconds);
    VideoProgress {
        state: video_state(job),
        percent: percent_done(job),
        steps: pipeline_steps(job),
        duration_seconds,
        publication: job
            .published
            .last()
            .and_then(|latest| serde_json::from_value(latest.clone()).ok()),
    }
}

fn kind(task: &TaskView) -> Option<TaskKind> {
    task.kind.parse().ok()
}

/// The video's state, derived from its job.
fn video_state(job: &JobView) -> VideoState {
    match job.state {
        JobState::Succeeded => VideoState::Ready,
        JobState::Failed => VideoState::Failed,
        JobState::Cancelled => VideoState::Cancelled,
        JobState::Queued | JobState::Running if !job.published.is_empty() => VideoState::Playable,
        JobState::Queued | JobState::Running => VideoState::Processing,
    }
}

/// The pipeline steps of a video job and how many of each step's tasks
/// have finished.
fn pipeline_steps(job: &JobView) -> Vec<PipelineStep> {
    const STEPS: [(&str, &[TaskKind]); 5] = [
        ("probe", &[TaskKind::MediaProbe]),
        (
            "encode",
            &[TaskKind::Encode, TaskKind::Audio, TaskKind::Text],
        ),
        ("thumbnails", &[TaskKind::Thumbnails]),
        ("package", &[TaskKind::Package]),
        ("publish", &[TaskKind::Publish]),
    ];
    STEPS
        .iter()
        .map(|(name, kinds)| {
            let tasks = job
                .tasks
                .iter()
                .filter(|task| kind(task).is_some_and(|kind| kinds.contains(&kind)));
            let (done, total) = tasks.fold((0, 0), |(done, total), task| {
                (
                    done + usize::from(task.state == TaskState::Succeeded),
                    total + 1,
                )
            });
            PipelineStep { name, done, total }
        })
        .collect()
}

/// Percent done: the probe is the first 5 %; then every task counts, an
/// encode task (the expensive ones) ten times as much as the others.
fn percent_done(job: &JobView) -> f64 {
    if job.state == JobState::Succeeded {
        return 100.0;
    }
    let mut probe_done = 0.0;
    let mut total = 0.0;
    let mut done = 0.0;
    for task in &job.tasks {
        let progress = if task.state == TaskState::Succeeded {
            1.0
        } else {
            task.progress.clamp(0.0, 1.0)
        };
        let weight = match kind(task) {
            Some(TaskKind::MediaProbe) => {
                probe_done = progress;
                continue;
            }
            Some(TaskKind::Encode) => 10.0,
            _ => 1.0,
        };
        total += weight;
        done += weight * progress;
    }
    let rest = if total > 0.0 { done / total } else { 0.0 };
    ((5.0 * probe_done + 95.0 * rest) * 10.0).round() / 10.0
}
