//! The worker runtime: slots that claim ready tasks, run their handlers under
//! a heartbeat, and report the result, plus the lease reaper.
//!
//! A handler runs in its own tokio task. A heartbeat loop beside it renews the
//! lease; when the heartbeat learns that the job was cancelled or the lease
//! was lost, the handler's future is dropped, which kills any child process
//! it started with `kill_on_drop`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reel_core::{JobId, TaskId, WorkerId};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::metrics::Metrics;
use crate::store::{
    Backend, ClaimedTask, Completion, FailureKind, HeartbeatOutcome, JobStore, RetryPolicy,
    StoreError, NOTIFY_CHANNEL,
};

/// A task's failure, as its handler reports it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    /// Whether another attempt may succeed.
    pub kind: FailureKind,
    /// What went wrong, for the job's error.
    pub message: String,
}

impl TaskError {
    /// A failure worth retrying (a network error, a killed process).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Retryable,
            message: message.into(),
        }
    }

    /// A failure that will repeat (bad input): the job fails now.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Permanent,
            message: message.into(),
        }
    }
}

/// Everything a handler knows about the task it runs.
#[derive(Clone)]
pub struct TaskContext {
    /// The job.
    pub job_id: JobId,
    /// The task.
    pub task_id: TaskId,
    /// The task's key within its job.
    pub key: String,
    /// The attempt number (1 for the first run).
    pub attempt: i64,
    /// The handler's input.
    pub payload: serde_json::Value,
    /// The worker running it.
    pub worker: WorkerId,
    /// Cancelled when the task must stop.
    pub cancel: CancellationToken,
    store: JobStore,
    progress: Arc<AtomicU64>,
}

impl TaskContext {
    /// Reports progress from 0 to 1; the next heartbeat stores it.
    pub fn set_progress(&self, fraction: f64) {
        self.progress
            .store(fraction.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }

    /// Outputs of the tasks this one depends on, by key.
    pub async fn dependency_outputs(
        &self,
    ) -> Result<HashMap<String, serde_json::Value>, TaskError> {
        self.store
            .dependency_outputs(self.job_id, &self.key)
            .await
            .map_err(|error| TaskError::retryable(format!("reading dependency outputs: {error}")))
    }
}

/// Runs one kind of task.
#[async_trait]
pub trait TaskHandler: Send + Sync + 'static {
    /// Runs the task. Dropping the returned future must stop the work.
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError>;
}

/// The handlers of a worker, by task kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn TaskHandler>>,
}

impl Registry {
    /// Adds the handler for tasks of `kind`.
    pub fn register(&mut self, kind: &str, handler: Arc<dyn TaskHandler>) {
        self.handlers.insert(kind.to_string(), handler);
    }
}

/// How a worker pool runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// A human name for the pool, shown in job listings.
    pub name: String,
    /// Tasks run at once.
    pub slots: usize,
    /// How long a claimed task is held without a heartbeat.
    pub lease: Duration,
    /// How often a running task renews its lease (at most a third of `lease`).
    pub heartbeat_interval: Duration,
    /// How often idle slots look for work when no wake-up arrives.
    pub poll_interval: Duration,
    /// Backoff between attempts.
    pub retry: RetryPolicy,
    /// How long shutdown waits for running tasks.
    pub shutdown_grace: Duration,
}

/// Runs a worker pool until `shutdown` is cancelled.
pub async fn run_worker_pool(
    store: JobStore,
    registry: Registry,
    config: WorkerConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(), StoreError> {
    let worker = WorkerId::new_random();
    store
        .register_worker(worker, &config.name, config.slots)
        .await?;
    info!(%worker, name = %config.name, slots = config.slots, "worker pool started");
    let wake = store.local_wake();
    let mut background = JoinSet::new();
    if store.backend() == Backend::Postgres {
        background.spawn(listen_for_tasks(
            store.url().to_string(),
            wake.clone(),
            shutdown.clone(),
        ));
    }
    background.spawn(reap_expired_leases(
        store.clone(),
        config.clone(),
        worker,
        shutdown.clone(),
    ));
    let registry = Arc::new(registry);
    let mut slots = JoinSet::new();
    for slot_idx in 0..config.slots.max(1) {
        let slot = Slot {
            store: store.clone(),
            registry: registry.clone(),
            config: config.clone(),
            metrics: metrics.clone(),
            worker,
            wake: wake.clone(),
        };
        slots.spawn(
            slot.run(shutdown.clone())
                .instrument(info_span!("slot", slot_idx)),
        );
    }
    shutdown.cancelled().await;
    let deadline = tokio::time::sleep(config.shutdown_grace);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = slots.join_next() => if next.is_none() { break },
            _ = &mut deadline => {
                warn!(running = slots.len(), "shutdown deadline passed; running tasks will be redone after their lease expires");
                slots.abort_all();
                break;
            }
        }
    }
    background.abort_all();
    info!(%worker, "worker pool stopped");
    Ok(())
}

struct Slot {
    store: JobStore,
    registry: Arc<Registry>,
    config: WorkerConfig,
    metrics: Arc<Metrics>,
    worker: WorkerId,
    wake: Arc<Notify>,
}

impl Slot {
    async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            // Register interest before claiming, so that a task made ready
            // between an empty claim and the wait still wakes this slot.
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.store.claim(self.worker, 1, self.config.lease).await {
                Ok(tasks) if !tasks.is_empty() => {
                    for task in tasks {
                        self.metrics.observe_dispatch(task.dispatch_latency);
                        self.run_task(task).await;
                    }
                }
                Ok(_) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Err(error) => {
                    warn!(%error, "claiming tasks failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
    }

    async fn run_task(&self, task: ClaimedTask) {
        let span = info_span!("task", job_id = %task.job_id, task = %task.key, kind = %task.kind, attempt = task.lease.attempt);
        async {
            let started = Instant::now();
            let lease = task.lease;
            let Some(handler) = self.registry.handlers.get(&task.kind).cloned() else {
                let message = format!(
                    "no handler for task kind {:?} in this worker; upgrade the worker",
                    task.kind
                );
                self.report(
                    self.store
                        .fail(lease, FailureKind::Retryable, &message, self.config.retry)
                        .await,
                );
                return;
            };
            let cancel = CancellationToken::new();
            let progress = Arc::new(AtomicU64::new(0f64.to_bits()));
            let ctx = TaskContext {
                job_id: task.job_id,
                task_id: lease.task_id,
                key: task.key.clone(),
                attempt: lease.attempt,
                payload: task.payload,
                worker: self.worker,
                cancel: cancel.clone(),
                store: self.store.clone(),
                progress: progress.clone(),
            };
            let mut handler_task = tokio::spawn(async move { handler.run(ctx).await });
            let mut heartbeat = tokio::time::interval(self.config.heartbeat_interval);
            heartbeat.tick().await;
            let stop_reason = loop {
                tokio::select! {
                    joined = &mut handler_task => break Ok(joined),
                    _ = heartbeat.tick() => {
                        let fraction = f64::from_bits(progress.load(Ordering::Relaxed));
                        match self.store.heartbeat(lease, self.config.lease, fraction).await {
                            Ok(HeartbeatOutcome::Continue) => {}
                            Ok(outcome) => break Err(outcome),
                            Err(error) => warn!(%error, "heartbeat failed; the lease may expire"),
                        }
                    }
                }
            };
            let joined = match stop_reason {
                Ok(joined) => joined,
                Err(outcome) => {
                    cancel.cancel();
                    handler_task.abort();
                    // Wait for the abort, so child processes are gone before the slot moves on.
                    let _ = handler_task.await;
                    if outcome == HeartbeatOutcome::Cancelled {
                        info!("job cancelled; task stopped");
                        self.report(self.store.mark_cancelled(lease).await);
                    } else {
                        warn!("lease lost; another worker has the task");
                    }
                    return;
                }
            };
            self.metrics.observe_task_duration(started.elapsed());
            let result = match joined {
                Ok(result) => result,
                Err(join_error) => Err(TaskError::retryable(format!(
                    "task handler crashed: {join_error}"
                ))),
            };
            match result {
                Ok(completion) => {
                    debug!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "task succeeded"
                    );
                    self.report(self.store.complete(lease, completion).await);
                }
                Err(error) => {
                    warn!(kind = ?error.kind, error = %error.message, "task failed");
                    // The stored message is shown to the job's owner; the
                    // server's paths stay in this log line.
                    let message = reel_core::redact_paths(&error.message);
                    self.report(
                        self.store
                            .fail(lease, error.kind, &message, self.config.retry)
                            .await,
                    );
                }
            }
        }
        .instrument(span)
        .await
    }

    fn report(&self, result: Result<(), StoreError>) {
        match result {
            Ok(()) => {}
            Err(StoreError::LeaseLost { task, attempt }) => {
                self.metrics.count_fenced();
                warn!(%task, attempt, "result rejected: the lease was lost (fenced)");
            }
            Err(error) => {
                warn!(%error, "recording the task result failed; the lease will expire and the task will be redone")
            }
        }
    }
}

async fn reap_expired_leases(
    store: JobStore,
    config: WorkerConfig,
    worker: WorkerId,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval((config.lease / 4).max(Duration::from_millis(100)));
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match store.requeue_expired(config.retry).await {
            Ok(0) => {}
            Ok(n_requeued) => info!(n_requeued, "requeued tasks whose lease expired"),
            Err(error) => warn!(%error, "requeueing expired leases failed"),
        }
        if let Err(error) = store.touch_worker(worker).await {
            warn!(%error, "worker heartbeat failed");
        }
    }
}

async fn listen_for_tasks(url: String, wake: Arc<Notify>, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        let listener = async {
            let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
            listener.listen(NOTIFY_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        let mut listener = match listener {
            Ok(listener) => listener,
            Err(error) => {
                warn!(%error, "LISTEN failed; polling until it is back");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        loop {
            tokio::select! {
                received = listener.recv() => match received {
                    Ok(_) => wake.notify_waiters(),
                    Err(error) => {
                        warn!(%error, "LISTEN connection lost; reconnecting");
                        break;
                    }
                },
                _ = shutdown.cancelled() => return,
            }
        }
    }
}
