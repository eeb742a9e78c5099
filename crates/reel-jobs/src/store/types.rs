//! The engine's public types: backends, errors, new and claimed tasks, views.

use std::collections::HashMap;
use std::time::Duration;

use reel_core::{JobId, TaskId};
use serde::Serialize;

/// Which database a store talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server shared by many processes.
    Postgres,
}

/// Errors of the job store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names no supported database.
    #[error("unsupported database url {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// The database could not be reached or a query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The worker no longer holds the task: its lease expired and the task
    /// was handed to another worker, or the job was cancelled.
    #[error("task {task} attempt {attempt} no longer holds its lease")]
    LeaseLost {
        /// The task.
        task: TaskId,
        /// The attempt that lost its lease.
        attempt: i64,
    },
    /// No job has this id.
    #[error("no job with id {0}")]
    JobNotFound(JobId),
    /// A job definition is inconsistent.
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// A stored row could not be decoded.
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// A task to add to a job, at creation or from a running task.
#[derive(Clone, Debug)]
pub struct NewTask {
    /// The task's name, unique within its job, e.g. `checksum-3`.
    pub key: String,
    /// The handler that runs it.
    pub kind: String,
    /// Lower runs first.
    pub priority: i64,
    /// Input for the handler (object keys and parameters, never media bytes).
    pub payload: serde_json::Value,
    /// Keys of tasks of the same job that must succeed first.
    pub depends_on: Vec<String>,
    /// Attempts before the task and its job fail.
    pub max_attempts: u32,
}

/// A job to create.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// What the job does, e.g. `verify`.
    pub kind: String,
    /// Lower runs first; added to every task's priority.
    pub priority: i64,
    /// The job's input, for display.
    pub input: serde_json::Value,
    /// The initial tasks.
    pub tasks: Vec<NewTask>,
}

/// A task claimed by a worker, with the lease that fences its writes.
#[derive(Clone, Debug)]
pub struct ClaimedTask {
    /// The lease: task id and attempt.
    pub lease: Lease,
    /// The job.
    pub job_id: JobId,
    /// The task's key within the job.
    pub key: String,
    /// The handler kind.
    pub kind: String,
    /// The handler's input.
    pub payload: serde_json::Value,
    /// How long the task waited between becoming ready and being claimed.
    pub dispatch_latency: Duration,
}

/// A worker's hold on one attempt of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The task.
    pub task_id: TaskId,
    /// The attempt number, the fencing token.
    pub attempt: i64,
    /// The max attempts of the task.
    pub max_attempts: i64,
}

/// What a heartbeat learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeartbeatOutcome {
    /// Keep going.
    Continue,
    /// The job was cancelled or failed elsewhere: stop.
    Cancelled,
    /// Another worker holds the task now: stop without writing.
    LeaseLost,
}

/// What a successful task hands back.
#[derive(Clone, Debug, Default)]
pub struct Completion {
    /// The task's output, visible to dependent tasks.
    pub output: serde_json::Value,
    /// Tasks to add to the job (fan-out), possibly depending on each other
    /// and on existing tasks.
    pub new_tasks: Vec<NewTask>,
    /// Results to publish for the job, recorded once with the completion.
    pub publish: Vec<serde_json::Value>,
}

/// Whether a failure may succeed on another attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Worth another attempt after a backoff.
    Retryable,
    /// Will fail the same way again: fail the job now.
    Permanent,
}

/// How retries back off.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt.
    pub base_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The delay before attempt `failed_attempt + 1`: base × 2^(attempt−1), capped.
    pub fn delay_after(&self, failed_attempt: i64) -> Duration {
        let exponent = u32::try_from(failed_attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay)
    }
}

/// The state of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// No task has started yet.
    Queued,
    /// At least one task started.
    Running,
    /// Every task succeeded.
    Succeeded,
    /// A task failed permanently or ran out of attempts.
    Failed,
    /// Cancelled by a user.
    Cancelled,
}

impl JobState {
    pub(crate) fn parse(text: &str) -> Result<Self, StoreError> {
        Ok(match text {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            other => {
                return Err(StoreError::Corrupt {
                    table: "jobs",
                    detail: format!("unknown state {other:?}"),
                })
            }
        })
    }

    /// Whether the job can no longer change.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// The state of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waits for tasks it depends on.
    Blocked,
    /// May be claimed (once its retry delay is over).
    Ready,
    /// Claimed by a worker.
    Running,
    /// Done, with its output.
    Succeeded,
    /// Failed permanently or ran out of attempts.
    Failed,
    /// Cancelled with its job, or never to run because its job failed.
    Cancelled,
}

impl TaskState {
    /// Every state.
    pub const ALL: [TaskState; 6] = [
        Self::Blocked,
        Self::Ready,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The name stored in the `tasks` table.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Blocked => "blocked",
            Self::Ready => "ready",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt {
                table: "tasks",
                detail: format!("unknown state {text:?}"),
            })
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<str> for TaskState {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for TaskState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why a job failed: the task, its step and the error text.
#[derive(Clone, Debug, Serialize)]
pub struct JobFailure {
    /// The failing task's key.
    pub task: String,
    /// The failing task's kind (the pipeline step).
    pub step: String,
    /// The error text.
    pub message: String,
}

/// One task as shown by the API and `reel jobs show`.
#[derive(Clone, Debug, Serialize)]
pub struct TaskView {
    /// The task id.
    pub id: TaskId,
    /// Its key within the job.
    pub key: String,
    /// Its handler kind.
    pub kind: String,
    /// Its state.
    pub state: TaskState,
    /// Attempts made so far.
    pub attempt: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
    /// The worker of the latest attempt.
    pub worker: Option<String>,
    /// Progress of the running attempt, 0 to 1.
    pub progress: f64,
    /// When it last became ready (µs since the epoch).
    pub ready_at: Option<i64>,
    /// When its latest attempt started.
    pub started_at: Option<i64>,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// The last error.
    pub last_error: Option<String>,
    /// Its output, once succeeded.
    pub output: Option<serde_json::Value>,
    /// Keys of the tasks it waits for (in `job` views; empty in listings).
    pub depends_on: Vec<String>,
}

/// A job with its tasks, as shown by the API and `reel jobs show`.
#[derive(Clone, Debug, Serialize)]
pub struct JobView {
    /// The job id.
    pub id: JobId,
    /// What the job does.
    pub kind: String,
    /// Its state.
    pub state: JobState,
    /// Its priority.
    pub priority: i64,
    /// Its input.
    pub input: serde_json::Value,
    /// Creation time (µs since the epoch).
    pub created_at: i64,
    /// When the first task started.
    pub started_at: Option<i64>,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// Why it failed.
    pub error: Option<JobFailure>,
    /// Its tasks, oldest first (empty in listings).
    pub tasks: Vec<TaskView>,
    /// Results published by its tasks, in order.
    pub published: Vec<serde_json::Value>,
}

/// Counts of tasks by state.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TaskCounts {
    /// State name to count.
    pub by_state: HashMap<String, i64>,
}
