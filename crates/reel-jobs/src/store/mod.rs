//! The durable job store: jobs, tasks, dependencies and events in SQLite or
//! PostgreSQL, and every state transition of the DAG engine.
//!
//! Every transition that a worker makes is fenced by the task's attempt
//! number: a claim increments it, and a heartbeat, completion or failure only
//! applies while the row still has that attempt and is `running`. A worker
//! whose lease expired and was redone elsewhere therefore cannot overwrite the
//! newer attempt's result.

mod rows;
mod types;

pub use types::*;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reel_core::{JobId, TaskId, Timestamp, WorkerId};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use tokio::sync::Notify;

use rows::{
    insert_tasks, job_from_row, notify, parse_id, parse_json, task_from_row, validate_new_tasks,
};

/// The channel PostgreSQL workers LISTEN on for new ready tasks.
pub const NOTIFY_CHANNEL: &str = "reel_tasks";

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
    // The engine's versions are 100 to 999. Other crates keep their own
    // migration sets in this database (reel-model: 1000 and up,
    // reel-webhooks: 3000 and up), and databases made before the split
    // applied versions 1 to 4; those versions are not ours to know.
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

    /// Starts a transaction on the engine's database, for callers that
    /// write their own rows together with a job ([`create_job_in`]). On
    /// SQLite it holds this process's writer lock until it ends.
    pub async fn begin(&self) -> Result<JobTx<'_>, StoreError> {
        let writer = self.write_guard().await;
        let tx = self.pool.begin().await?;
        Ok(JobTx {
            store: self,
            tx,
            _writer: writer,
        })
    }

    /// Creates a job and its initial tasks; tasks without dependencies are ready at once.
    pub async fn create_job(&self, job: NewJob) -> Result<JobId, StoreError> {
        let mut tx = self.begin().await?;
        let job_id = create_job_in(&mut tx, job).await?;
        tx.commit().await?;
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

/// A transaction on the engine's database ([`JobStore::begin`]): dropped
/// without [`JobTx::commit`], everything written in it is rolled back.
pub struct JobTx<'s> {
    store: &'s JobStore,
    // Declared before the writer lock, so it ends (rolls back) first.
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _writer: Option<tokio::sync::MutexGuard<'s, ()>>,
}

impl std::fmt::Debug for JobTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobTx")
            .field("backend", &self.store.backend)
            .finish()
    }
}

impl JobTx<'_> {
    /// The transaction's connection, for the caller's own statements.
    pub fn connection(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    /// Commits, then wakes this process's workers (jobs created in the
    /// transaction may have ready tasks).
    pub async fn commit(self) -> Result<(), StoreError> {
        let store = self.store;
        self.tx.commit().await?;
        store.local_wake.notify_waiters();
        Ok(())
    }
}

/// Creates a job and its initial tasks inside `tx`: they exist once `tx`
/// commits, and not at all if it is rolled back. Tasks without dependencies
/// are ready at once.
pub async fn create_job_in(tx: &mut JobTx<'_>, job: NewJob) -> Result<JobId, StoreError> {
    validate_new_tasks(&job.tasks, &[])?;
    let job_id = JobId::new_random();
    let now = Timestamp::now();
    sqlx::query("INSERT INTO jobs (id, kind, state, priority, input, n_unfinished, created_at) VALUES ($1, $2, 'queued', $3, $4, 0, $5)")
        .bind(job_id.to_string())
        .bind(&job.kind)
        .bind(job.priority)
        .bind(job.input.to_string())
        .bind(now.as_micros())
        .execute(&mut *tx.tx)
        .await?;
    let n_ready = insert_tasks(&mut tx.tx, job_id, job.priority, &job.tasks, now).await?;
    if n_ready > 0 && tx.store.backend == Backend::Postgres {
        notify(&mut tx.tx).await?;
    }
    Ok(job_id)
}
