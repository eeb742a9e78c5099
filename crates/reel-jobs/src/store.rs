//! The durable job store: jobs, tasks, dependencies and events in SQLite or
//! PostgreSQL, and every state transition of the DAG engine.
//!
//! Every transition that a worker makes is fenced by the task's attempt
//! number: a claim increments it, and a heartbeat, completion or failure only
//! applies while the row still has that attempt and is `running`. A worker
//! whose lease expired and was redone elsewhere therefore cannot overwrite the
//! newer attempt's result.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reel_core::{JobId, TaskId, Timestamp, WorkerId};
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use tokio::sync::Notify;

/// The channel PostgreSQL workers LISTEN on for new ready tasks.
pub const NOTIFY_CHANNEL: &str = "reel_tasks";

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
    fn parse(text: &str) -> Result<Self, StoreError> {
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

    fn parse(text: &str) -> Result<Self, StoreError> {
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

/// The connection pool and every query of the engine.
#[derive(Clone)]
pub struct JobStore {
    pool: AnyPool,
    backend: Backend,
    url: String,
    local_wake: Arc<Notify>,
    /// SQLite allows one writer; queueing writers of this process here is
    /// much faster than letting them spin in SQLite's busy handler.
    sqlite_writer: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl std::fmt::Debug for JobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobStore")
            .field("backend", &self.backend)
            .finish()
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    // Other crates (reel-webhooks: versions 3000 and up) keep their own
    // migration sets in this database; their versions are not ours to know.
    ignore_missing: true,
    ..sqlx::migrate!("./migrations")
};

impl JobStore {
    /// Connects to `url` (`sqlite://PATH` or `postgres://…`), creating a SQLite
    /// file if missing, and applies the schema migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let connect_url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |connection, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; NORMAL
                        // sync is durable across process crashes, which is
                        // what a killed worker needs.
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *connection)
                            .await?;
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *connection)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 30000")
                            .execute(&mut *connection)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *connection)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            backend,
            url: url.to_string(),
            local_wake: Arc::new(Notify::new()),
            sqlite_writer: (backend == Backend::Sqlite)
                .then(|| Arc::new(tokio::sync::Mutex::new(()))),
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database URL (may carry a password: never log it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The pool, for other metadata tables of the same database.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.sqlite_writer {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }

    /// Woken whenever this process makes a task ready.
    pub fn local_wake(&self) -> Arc<Notify> {
        self.local_wake.clone()
    }

    /// Creates a job and its initial tasks; tasks without dependencies are ready at once.
    pub async fn create_job(&self, job: NewJob) -> Result<JobId, StoreError> {
        validate_new_tasks(&job.tasks, &[])?;
        let job_id = JobId::new_random();
        let now = Timestamp::now();
        let _writer = self.write_guard().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO jobs (id, kind, state, priority, input, n_unfinished, created_at) VALUES ($1, $2, 'queued', $3, $4, 0, $5)")
            .bind(job_id.to_string())
            .bind(&job.kind)
            .bind(job.priority)
            .bind(job.input.to_string())
            .bind(now.as_micros())
            .execute(&mut *tx)
            .await?;
        let n_ready = insert_tasks(&mut tx, job_id, job.priority, &job.tasks, now).await?;
        if n_ready > 0 && self.backend == Backend::Postgres {
            notify(&mut tx).await?;
        }
        tx.commit().await?;
        self.local_wake.notify_waiters();
        Ok(job_id)
    }

    /// Claims up to `limit` ready tasks for `worker`, lowest priority value
    /// first, with a lease of `lease`.
    pub async fn claim(
        &self,
        worker: WorkerId,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<ClaimedTask>, StoreError> {
        let now = Timestamp::now();
        // PostgreSQL: SKIP LOCKED lets concurrent claimers pass over each
        // other's rows. SQLite: one UPDATE … RETURNING statement runs under
        // the database's single write lock, so the claim is atomic.
        let lock_clause = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE tasks SET state = 'running', attempt = attempt + 1, worker_id = $1, \
             lease_expires_at = $2, started_at = $3, progress = 0, \
             first_claim_latency_us = COALESCE(first_claim_latency_us, $3 - ready_at) \
             WHERE id IN (SELECT id FROM tasks WHERE state = 'ready' AND run_after <= $3 \
             ORDER BY priority, ready_at LIMIT $4 {lock_clause}) \
             RETURNING id, job_id, task_key, kind, attempt, max_attempts, payload, ready_at"
        );
        let writer = self.write_guard().await;
        let rows = sqlx::query(&sql)
            .bind(worker.to_string())
            .bind(now.plus(lease).as_micros())
            .bind(now.as_micros())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        let mut job_ids = Vec::new();
        for row in rows {
            let ready_at: Option<i64> = row.try_get("ready_at")?;
            let task = ClaimedTask {
                lease: Lease {
                    task_id: parse_id(&row, "id", "tasks")?,
                    attempt: row.try_get("attempt")?,
                    max_attempts: row.try_get("max_attempts")?,
                },
                job_id: parse_id(&row, "job_id", "tasks")?,
                key: row.try_get("task_key")?,
                kind: row.try_get("kind")?,
                payload: parse_json(&row, "payload", "tasks")?,
                dispatch_latency: now
                    .since(Timestamp::from_micros(ready_at.unwrap_or(now.as_micros()))),
            };
            job_ids.push(task.job_id);
            claimed.push(task);
        }
        job_ids.sort();
        job_ids.dedup();
        for job_id in job_ids {
            sqlx::query("UPDATE jobs SET state = 'running', started_at = $1 WHERE id = $2 AND state = 'queued'")
                .bind(now.as_micros())
                .bind(job_id.to_string())
                .execute(&self.pool)
                .await?;
        }
        drop(writer);
        Ok(claimed)
    }

    /// Renews a lease and records progress; says whether to go on.
    pub async fn heartbeat(
        &self,
        lease: Lease,
        lease_length: Duration,
        progress: f64,
    ) -> Result<HeartbeatOutcome, StoreError> {
        let now = Timestamp::now();
        let renewed = sqlx::query(
            "UPDATE tasks SET lease_expires_at = $1, progress = $2 WHERE id = $3 AND attempt = $4 AND state = 'running' RETURNING job_id",
        )
        .bind(now.plus(lease_length).as_micros())
        .bind(progress.clamp(0.0, 1.0))
        .bind(lease.task_id.to_string())
        .bind(lease.attempt)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = renewed else {
            return Ok(HeartbeatOutcome::LeaseLost);
        };
        let job_id: String = row.try_get("job_id")?;
        let state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
            .bind(job_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(match JobState::parse(&state)? {
            JobState::Queued | JobState::Running => HeartbeatOutcome::Continue,
            _ => HeartbeatOutcome::Cancelled,
        })
    }

    /// Marks a task succeeded, adds the tasks it created, makes dependents
    /// ready, records its publications and finishes the job when nothing is
    /// left, all in one transaction fenced by the lease.
    pub async fn complete(&self, lease: Lease, completion: Completion) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let _writer = self.write_guard().await;
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE tasks SET state = 'succeeded', output = $1, finished_at = $2, progress = 1, lease_expires_at = NULL \
             WHERE id = $3 AND attempt = $4 AND state = 'running' RETURNING job_id, task_key, priority",
        )
        .bind(completion.output.to_string())
        .bind(now.as_micros())
        .bind(lease.task_id.to_string())
        .bind(lease.attempt)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::LeaseLost {
                task: lease.task_id,
                attempt: lease.attempt,
            });
        };
        let job_id: JobId = parse_id(&row, "job_id", "tasks")?;
        let key: String = row.try_get("task_key")?;
        let job_state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
            .bind(job_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        if JobState::parse(&job_state)?.is_terminal() {
            // A cancelled or failed job publishes nothing more.
            return Err(StoreError::LeaseLost {
                task: lease.task_id,
                attempt: lease.attempt,
            });
        }
        // Dependents that exist already lose one pending dependency and
        // become ready at zero. This runs before the new tasks are inserted,
        // which count only their unfinished dependencies.
        sqlx::query(
            "UPDATE tasks SET deps_remaining = deps_remaining - 1 WHERE job_id = $1 AND task_key IN \
             (SELECT task_key FROM task_deps WHERE job_id = $1 AND dep_key = $2)",
        )
        .bind(job_id.to_string())
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        let promoted = sqlx::query(
            "UPDATE tasks SET state = 'ready', ready_at = $3, run_after = $3 WHERE job_id = $1 AND state = 'blocked' \
             AND deps_remaining <= 0 AND task_key IN (SELECT task_key FROM task_deps WHERE job_id = $1 AND dep_key = $2)",
        )
        .bind(job_id.to_string())
        .bind(&key)
        .bind(now.as_micros())
        .execute(&mut *tx)
        .await?;
        let mut n_ready = promoted.rows_affected();
        if !completion.new_tasks.is_empty() {
            let existing: Vec<String> =
                sqlx::query_scalar("SELECT task_key FROM tasks WHERE job_id = $1")
                    .bind(job_id.to_string())
                    .fetch_all(&mut *tx)
                    .await?;
            validate_new_tasks(&completion.new_tasks, &existing)?;
            let job_priority: i64 = sqlx::query_scalar("SELECT priority FROM jobs WHERE id = $1")
                .bind(job_id.to_string())
                .fetch_one(&mut *tx)
                .await?;
            n_ready +=
                insert_tasks(&mut tx, job_id, job_priority, &completion.new_tasks, now).await?;
        }
        for publication in &completion.publish {
            sqlx::query("INSERT INTO job_events (id, job_id, task_key, attempt, kind, detail, at) VALUES ($1, $2, $3, $4, 'published', $5, $6)")
                .bind(TaskId::new_random().to_string())
                .bind(job_id.to_string())
                .bind(&key)
                .bind(lease.attempt)
                .bind(publication.to_string())
                .bind(now.as_micros())
                .execute(&mut *tx)
                .await?;
        }
        // The job ends when its count of unfinished tasks reaches zero.
        let n_unfinished: i64 = sqlx::query_scalar(
            "UPDATE jobs SET n_unfinished = n_unfinished - 1 WHERE id = $1 RETURNING n_unfinished",
        )
        .bind(job_id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        if n_unfinished <= 0 {
            sqlx::query("UPDATE jobs SET state = 'succeeded', finished_at = $1 WHERE id = $2")
                .bind(now.as_micros())
                .bind(job_id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        if n_ready > 0 && self.backend == Backend::Postgres {
            notify(&mut tx).await?;
        }
        tx.commit().await?;
        if n_ready > 0 {
            self.local_wake.notify_waiters();
        }
        Ok(())
    }

    /// Records a failed attempt: retried after a backoff while attempts
    /// remain and the error is retryable, otherwise the task and its job fail.
    pub async fn fail(
        &self,
        lease: Lease,
        kind: FailureKind,
        message: &str,
        retry: RetryPolicy,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let message: String = message.chars().take(8_000).collect();
        let _writer = self.write_guard().await;
        let mut tx = self.pool.begin().await?;
        if kind == FailureKind::Retryable && lease.attempt < lease.max_attempts {
            let run_after = now.plus(retry.delay_after(lease.attempt));
            let updated = sqlx::query(
                "UPDATE tasks SET state = 'ready', run_after = $1, ready_at = $1, lease_expires_at = NULL, last_error = $2 \
                 WHERE id = $3 AND attempt = $4 AND state = 'running'",
            )
            .bind(run_after.as_micros())
            .bind(&message)
            .bind(lease.task_id.to_string())
            .bind(lease.attempt)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::LeaseLost {
                    task: lease.task_id,
                    attempt: lease.attempt,
                });
            }
            tx.commit().await?;
            return Ok(());
        }
        let row = sqlx::query(
            "UPDATE tasks SET state = 'failed', finished_at = $1, lease_expires_at = NULL, last_error = $2 \
             WHERE id = $3 AND attempt = $4 AND state = 'running' RETURNING job_id, task_key, kind",
        )
        .bind(now.as_micros())
        .bind(&message)
        .bind(lease.task_id.to_string())
        .bind(lease.attempt)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::LeaseLost {
                task: lease.task_id,
                attempt: lease.attempt,
            });
        };
        let job_id: String = row.try_get("job_id")?;
        let key: String = row.try_get("task_key")?;
        let step: String = row.try_get("kind")?;
        let attempts_note = if kind == FailureKind::Permanent {
            "permanent error".to_string()
        } else {
            format!("gave up after {} attempts", lease.attempt)
        };
        sqlx::query(
            "UPDATE jobs SET state = 'failed', finished_at = $1, error_task = $2, error_step = $3, error_text = $4 \
             WHERE id = $5 AND state IN ('queued', 'running')",
        )
        .bind(now.as_micros())
        .bind(&key)
        .bind(&step)
        .bind(format!("{message} ({attempts_note})"))
        .bind(&job_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE tasks SET state = 'cancelled', finished_at = $1 WHERE job_id = $2 AND state IN ('blocked', 'ready')")
            .bind(now.as_micros())
            .bind(&job_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that a running attempt stopped because its job was cancelled.
    pub async fn mark_cancelled(&self, lease: Lease) -> Result<(), StoreError> {
        let _writer = self.write_guard().await;
        sqlx::query("UPDATE tasks SET state = 'cancelled', finished_at = $1, lease_expires_at = NULL WHERE id = $2 AND attempt = $3 AND state = 'running'")
            .bind(Timestamp::now().as_micros())
            .bind(lease.task_id.to_string())
            .bind(lease.attempt)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Treats every running task whose lease expired as a failed, retryable
    /// attempt, so that another worker redoes it. Returns how many it found.
    pub async fn requeue_expired(&self, retry: RetryPolicy) -> Result<usize, StoreError> {
        let now = Timestamp::now();
        let rows = sqlx::query("SELECT id, attempt, max_attempts, worker_id FROM tasks WHERE state = 'running' AND lease_expires_at < $1")
            .bind(now.as_micros())
            .fetch_all(&self.pool)
            .await?;
        let mut n_requeued = 0;
        for row in rows {
            let lease = Lease {
                task_id: parse_id(&row, "id", "tasks")?,
                attempt: row.try_get("attempt")?,
                max_attempts: row.try_get("max_attempts")?,
            };
            let worker: Option<String> = row.try_get("worker_id")?;
            let message = format!(
                "lease expired: worker {} stopped sending heartbeats",
                worker.unwrap_or_default()
            );
            match self
                .fail(lease, FailureKind::Retryable, &message, retry)
                .await
            {
                Ok(()) => n_requeued += 1,
                // Another process requeued it first, or the worker came back.
                Err(StoreError::LeaseLost { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        if n_requeued > 0 {
            self.local_wake.notify_waiters();
        }
        Ok(n_requeued)
    }

    /// Cancels a job: pending tasks are cancelled now, running ones at their
    /// next heartbeat. Returns false if the job had already ended.
    pub async fn cancel_job(&self, job_id: JobId) -> Result<bool, StoreError> {
        let now = Timestamp::now();
        let _writer = self.write_guard().await;
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query("UPDATE jobs SET state = 'cancelled', finished_at = $1 WHERE id = $2 AND state IN ('queued', 'running')")
            .bind(now.as_micros())
            .bind(job_id.to_string())
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            let exists: Option<String> = sqlx::query_scalar("SELECT id FROM jobs WHERE id = $1")
                .bind(job_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
            return match exists {
                Some(_) => Ok(false),
                None => Err(StoreError::JobNotFound(job_id)),
            };
        }
        sqlx::query("UPDATE tasks SET state = 'cancelled', finished_at = $1 WHERE job_id = $2 AND state IN ('blocked', 'ready')")
            .bind(now.as_micros())
            .bind(job_id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Outputs of the tasks `key` depends on, by their keys.
    pub async fn dependency_outputs(
        &self,
        job_id: JobId,
        key: &str,
    ) -> Result<HashMap<String, serde_json::Value>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.task_key, t.output FROM task_deps d JOIN tasks t ON t.job_id = d.job_id AND t.task_key = d.dep_key \
             WHERE d.job_id = $1 AND d.task_key = $2",
        )
        .bind(job_id.to_string())
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        let mut outputs = HashMap::with_capacity(rows.len());
        for row in rows {
            let dep_key: String = row.try_get("task_key")?;
            let output: Option<String> = row.try_get("output")?;
            let value = match output {
                Some(text) => serde_json::from_str(&text).map_err(|error| StoreError::Corrupt {
                    table: "tasks",
                    detail: format!("output of {dep_key}: {error}"),
                })?,
                None => serde_json::Value::Null,
            };
            outputs.insert(dep_key, value);
        }
        Ok(outputs)
    }

    /// A job with its tasks and publications.
    pub async fn job(&self, job_id: JobId) -> Result<JobView, StoreError> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(job_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::JobNotFound(job_id))?;
        let mut view = job_from_row(&row)?;
        let task_rows =
            sqlx::query("SELECT * FROM tasks WHERE job_id = $1 ORDER BY created_at, task_key")
                .bind(job_id.to_string())
                .fetch_all(&self.pool)
                .await?;
        for task_row in task_rows {
            view.tasks.push(task_from_row(&task_row)?);
        }
        let edges = sqlx::query("SELECT task_key, dep_key FROM task_deps WHERE job_id = $1")
            .bind(job_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        let mut deps: HashMap<String, Vec<String>> = HashMap::new();
        for edge in edges {
            deps.entry(edge.try_get("task_key")?)
                .or_default()
                .push(edge.try_get("dep_key")?);
        }
        for task in &mut view.tasks {
            if let Some(mut keys) = deps.remove(&task.key) {
                keys.sort();
                task.depends_on = keys;
            }
        }
        let published: Vec<String> = sqlx::query_scalar("SELECT detail FROM job_events WHERE job_id = $1 AND kind = 'published' ORDER BY at, id")
            .bind(job_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        for detail in published {
            view.published
                .push(serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)));
        }
        Ok(view)
    }

    /// Just a job's state (one indexed read), if the job exists.
    pub async fn job_state(&self, job_id: JobId) -> Result<Option<JobState>, StoreError> {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
            .bind(job_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        state.as_deref().map(JobState::parse).transpose()
    }

    /// The newest jobs, without their tasks.
    pub async fn list_jobs(&self, limit: i64) -> Result<Vec<JobView>, StoreError> {
        let rows = sqlx::query("SELECT * FROM jobs ORDER BY created_at DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Counts of tasks by state, over all jobs.
    pub async fn task_counts(&self) -> Result<TaskCounts, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let mut counts = TaskCounts::default();
        for row in rows {
            counts
                .by_state
                .insert(row.try_get("state")?, row.try_get("n")?);
        }
        Ok(counts)
    }

    /// Registers a worker process.
    pub async fn register_worker(
        &self,
        worker: WorkerId,
        name: &str,
        slots: usize,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now().as_micros();
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_string());
        sqlx::query("INSERT INTO workers (id, name, host, pid, slots, started_at, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $6)")
            .bind(worker.to_string())
            .bind(name)
            .bind(host)
            .bind(i64::from(std::process::id()))
            .bind(i64::try_from(slots).unwrap_or(i64::MAX))
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that a worker process is alive.
    pub async fn touch_worker(&self, worker: WorkerId) -> Result<(), StoreError> {
        sqlx::query("UPDATE workers SET last_seen = $1 WHERE id = $2")
            .bind(Timestamp::now().as_micros())
            .bind(worker.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn validate_new_tasks(tasks: &[NewTask], existing: &[String]) -> Result<(), StoreError> {
    let mut keys: Vec<&str> = existing.iter().map(String::as_str).collect();
    for task in tasks {
        if task.key.is_empty() || task.key.len() > 200 {
            return Err(StoreError::InvalidJob(format!(
                "task key {:?} must be 1 to 200 characters",
                task.key
            )));
        }
        if keys.contains(&task.key.as_str()) {
            return Err(StoreError::InvalidJob(format!(
                "duplicate task key {:?}",
                task.key
            )));
        }
        if task.max_attempts == 0 {
            return Err(StoreError::InvalidJob(format!(
                "task {:?} needs at least one attempt",
                task.key
            )));
        }
        keys.push(&task.key);
    }
    // A dependency must name an earlier task, which also rules out cycles.
    let mut known: Vec<&str> = existing.iter().map(String::as_str).collect();
    for task in tasks {
        for dep in &task.depends_on {
            if !known.contains(&dep.as_str()) {
                return Err(StoreError::InvalidJob(format!(
                    "task {:?} depends on {dep:?}, which is not an earlier task of the job",
                    task.key
                )));
            }
        }
        known.push(&task.key);
    }
    Ok(())
}

async fn insert_tasks(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    job_id: JobId,
    job_priority: i64,
    tasks: &[NewTask],
    now: Timestamp,
) -> Result<u64, StoreError> {
    let mut n_ready = 0;
    for task in tasks {
        let mut deps_remaining: i64 = 0;
        for dep in &task.depends_on {
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM tasks WHERE job_id = $1 AND task_key = $2")
                    .bind(job_id.to_string())
                    .bind(dep)
                    .fetch_optional(&mut **tx)
                    .await?;
            if state.as_deref() != Some(TaskState::Succeeded.as_str()) {
                deps_remaining += 1;
            }
            sqlx::query("INSERT INTO task_deps (job_id, task_key, dep_key) VALUES ($1, $2, $3)")
                .bind(job_id.to_string())
                .bind(&task.key)
                .bind(dep)
                .execute(&mut **tx)
                .await?;
        }
        let (state, ready_at) = if deps_remaining == 0 {
            n_ready += 1;
            ("ready", Some(now.as_micros()))
        } else {
            ("blocked", None)
        };
        sqlx::query(
            "INSERT INTO tasks (id, job_id, task_key, kind, state, ready_at, priority, deps_remaining, attempt, max_attempts, payload, run_after, created_at, progress) \
             VALUES ($1, $2, $3, $4, $10, $11, $5, $6, 0, $7, $8, $9, $9, 0)",
        )
        .bind(TaskId::new_random().to_string())
        .bind(job_id.to_string())
        .bind(&task.key)
        .bind(&task.kind)
        .bind(job_priority.saturating_add(task.priority))
        .bind(deps_remaining)
        .bind(i64::from(task.max_attempts))
        .bind(task.payload.to_string())
        .bind(now.as_micros())
        .bind(state)
        .bind(ready_at)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("UPDATE jobs SET n_unfinished = n_unfinished + $1 WHERE id = $2")
        .bind(i64::try_from(tasks.len()).unwrap_or(i64::MAX))
        .bind(job_id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(n_ready)
}

async fn notify(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), StoreError> {
    sqlx::query(&format!("NOTIFY {NOTIFY_CHANNEL}"))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn parse_id<T: std::str::FromStr>(
    row: &AnyRow,
    column: &str,
    table: &'static str,
) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    text.parse().map_err(|_| StoreError::Corrupt {
        table,
        detail: format!("{column} {text:?} is not an id"),
    })
}

fn parse_json(
    row: &AnyRow,
    column: &str,
    table: &'static str,
) -> Result<serde_json::Value, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|error| StoreError::Corrupt {
        table,
        detail: format!("{column}: {error}"),
    })
}

fn job_from_row(row: &AnyRow) -> Result<JobView, StoreError> {
    let error_task: Option<String> = row.try_get("error_task")?;
    let error = match error_task {
        Some(task) => Some(JobFailure {
            task,
            step: row
                .try_get::<Option<String>, _>("error_step")?
                .unwrap_or_default(),
            message: row
                .try_get::<Option<String>, _>("error_text")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(JobView {
        id: parse_id(row, "id", "jobs")?,
        kind: row.try_get("kind")?,
        state: JobState::parse(&row.try_get::<String, _>("state")?)?,
        priority: row.try_get("priority")?,
        input: parse_json(row, "input", "jobs")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        error,
        tasks: Vec::new(),
        published: Vec::new(),
    })
}

fn task_from_row(row: &AnyRow) -> Result<TaskView, StoreError> {
    let output: Option<String> = row.try_get("output")?;
    Ok(TaskView {
        id: parse_id(row, "id", "tasks")?,
        key: row.try_get("task_key")?,
        kind: row.try_get("kind")?,
        state: TaskState::parse(&row.try_get::<String, _>("state")?)?,
        attempt: row.try_get("attempt")?,
        max_attempts: row.try_get("max_attempts")?,
        worker: row.try_get("worker_id")?,
        progress: row.try_get("progress")?,
        ready_at: row.try_get("ready_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        last_error: row.try_get("last_error")?,
        output: output.and_then(|text| serde_json::from_str(&text).ok()),
        depends_on: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let policy = RetryPolicy {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
        };
        assert_eq!(policy.delay_after(1), Duration::from_secs(1));
        assert_eq!(policy.delay_after(2), Duration::from_secs(2));
        assert_eq!(policy.delay_after(4), Duration::from_secs(8));
        assert_eq!(policy.delay_after(5), Duration::from_secs(10));
        assert_eq!(policy.delay_after(400), Duration::from_secs(10));
    }

    fn task(key: &str, deps: &[&str]) -> NewTask {
        NewTask {
            key: key.to_string(),
            kind: "noop".to_string(),
            priority: 0,
            payload: serde_json::Value::Null,
            depends_on: deps.iter().map(|dep| dep.to_string()).collect(),
            max_attempts: 1,
        }
    }

    #[test]
    fn rejects_forward_and_unknown_dependencies() {
        assert!(validate_new_tasks(&[task("a", &[]), task("b", &["a"])], &[]).is_ok());
        assert!(validate_new_tasks(&[task("a", &["b"]), task("b", &[])], &[]).is_err());
        assert!(validate_new_tasks(&[task("a", &["a"])], &[]).is_err());
        assert!(validate_new_tasks(&[task("a", &[]), task("a", &[])], &[]).is_err());
        assert!(validate_new_tasks(&[task("b", &["a"])], &["a".to_string()]).is_ok());
    }
}
