//! One engine test suite, run against SQLite and against the PostgreSQL that
//! `make test` starts (its URL in `REEL_TEST_DATABASE_URL`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reel_core::WorkerId;
use reel_jobs::metrics::Metrics;
use reel_jobs::store::{
    Completion, FailureKind, JobState, JobStore, NewJob, NewTask, RetryPolicy, StoreError,
};
use reel_jobs::worker::{
    run_worker_pool, Registry, TaskContext, TaskError, TaskHandler, WorkerConfig,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

struct Backend {
    store: JobStore,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("reel.db").display());
    Backend {
        store: JobStore::connect(&url, 8).await.expect("sqlite store"),
        _dir: Some(dir),
    }
}

async fn postgres() -> Backend {
    // A fresh database per test keeps the suites independent.
    let url = reel_testkit::postgres::fresh_database().await;
    Backend {
        store: JobStore::connect(&url, 16).await.expect("postgres store"),
        _dir: None,
    }
}

fn task(key: &str, kind: &str, deps: &[&str], payload: serde_json::Value) -> NewTask {
    NewTask {
        key: key.to_string(),
        kind: kind.to_string(),
        priority: 0,
        payload,
        depends_on: deps.iter().map(|dep| dep.to_string()).collect(),
        max_attempts: 3,
    }
}

fn fast_config(slots: usize) -> WorkerConfig {
    WorkerConfig {
        name: "test".to_string(),
        slots,
        lease: Duration::from_millis(600),
        heartbeat_interval: Duration::from_millis(100),
        poll_interval: Duration::from_millis(50),
        retry: RetryPolicy {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        shutdown_grace: Duration::from_secs(5),
    }
}

/// Splits a number into `n` parts: fans out to `sum` tasks that add ranges,
/// joined by a `join` task that checks the total.
struct Split;
#[async_trait]
impl TaskHandler for Split {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let n_parts = ctx.payload["parts"].as_u64().unwrap_or(1);
        let upto = ctx.payload["upto"].as_u64().unwrap_or(0);
        let chunk = upto.div_ceil(n_parts);
        let mut new_tasks = Vec::new();
        let mut keys = Vec::new();
        for part in 0..n_parts {
            let key = format!("sum-{part}");
            new_tasks.push(task(
                &key,
                "sum",
                &[],
                json!({"from": part * chunk, "to": ((part + 1) * chunk).min(upto)}),
            ));
            keys.push(key);
        }
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        new_tasks.push(task(
            "join",
            "join",
            &key_refs,
            json!({"expected": upto * upto.saturating_sub(1) / 2}),
        ));
        Ok(Completion {
            output: json!({"parts": n_parts}),
            new_tasks,
            publish: Vec::new(),
        })
    }
}

struct Sum;
#[async_trait]
impl TaskHandler for Sum {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let from = ctx.payload["from"].as_u64().unwrap_or(0);
        let to = ctx.payload["to"].as_u64().unwrap_or(0);
        Ok(Completion {
            output: json!({"sum": (from..to).sum::<u64>()}),
            ..Completion::default()
        })
    }
}

struct Join;
#[async_trait]
impl TaskHandler for Join {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let outputs = ctx.dependency_outputs().await?;
        let total: u64 = outputs
            .values()
            .map(|output| output["sum"].as_u64().unwrap_or(0))
            .sum();
        let expected = ctx.payload["expected"].as_u64().unwrap_or(u64::MAX);
        if total != expected {
            return Err(TaskError::permanent(format!(
                "sum {total} != expected {expected}"
            )));
        }
        Ok(Completion {
            output: json!({"total": total, "inputs": outputs.len()}),
            new_tasks: Vec::new(),
            publish: vec![json!({"total": total})],
        })
    }
}

struct AlwaysFails {
    kind: FailureKind,
    runs: Arc<AtomicUsize>,
}
#[async_trait]
impl TaskHandler for AlwaysFails {
    async fn run(&self, _ctx: TaskContext) -> Result<Completion, TaskError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Err(TaskError {
            kind: self.kind,
            message: "input is not decodable".to_string(),
        })
    }
}

/// Starts a child process and waits on it; records its pid.
struct SpawnsSleep {
    pid: Arc<AtomicUsize>,
}
#[async_trait]
impl TaskHandler for SpawnsSleep {
    async fn run(&self, _ctx: TaskContext) -> Result<Completion, TaskError> {
        let mut child = tokio::process::Command::new("sleep")
            .arg("60")
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| TaskError::permanent(error.to_string()))?;
        self.pid
            .store(child.id().unwrap_or(0) as usize, Ordering::SeqCst);
        child
            .wait()
            .await
            .map_err(|error| TaskError::retryable(error.to_string()))?;
        Ok(Completion::default())
    }
}

async fn wait_for_end(
    store: &JobStore,
    job_id: reel_core::JobId,
    limit: Duration,
) -> reel_jobs::store::JobView {
    let deadline = Instant::now() + limit;
    loop {
        let view = store.job(job_id).await.expect("job view");
        if view.state.is_terminal() || Instant::now() > deadline {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn fan_out_and_join(backend: Backend) {
    let store = backend.store;
    let mut registry = Registry::default();
    registry.register("split", Arc::new(Split));
    registry.register("sum", Arc::new(Sum));
    registry.register("join", Arc::new(Join));
    let shutdown = CancellationToken::new();
    let pool = tokio::spawn(run_worker_pool(
        store.clone(),
        registry,
        fast_config(4),
        Arc::new(Metrics::new()),
        shutdown.clone(),
    ));
    let job_id = store
        .create_job(NewJob {
            kind: "sum".into(),
            priority: 0,
            input: json!({}),
            tasks: vec![task(
                "split",
                "split",
                &[],
                json!({"parts": 16, "upto": 10_000}),
            )],
        })
        .await
        .expect("create job");
    let view = wait_for_end(&store, job_id, Duration::from_secs(30)).await;
    shutdown.cancel();
    pool.await.expect("pool joins").expect("pool ok");
    assert_eq!(view.state, JobState::Succeeded, "{view:?}");
    assert_eq!(view.tasks.len(), 18);
    let join = view
        .tasks
        .iter()
        .find(|task| task.key == "join")
        .expect("join task");
    assert_eq!(
        join.output.as_ref().expect("join output")["total"],
        json!(10_000u64 * 9_999 / 2)
    );
    assert_eq!(
        join.output.as_ref().expect("join output")["inputs"],
        json!(16)
    );
    assert_eq!(view.published, vec![json!({"total": 49_995_000u64})]);
}

async fn stale_completion_is_fenced(backend: Backend) {
    let store = backend.store;
    let job_id = store
        .create_job(NewJob {
            kind: "t".into(),
            priority: 0,
            input: json!({}),
            tasks: vec![task("only", "sum", &[], json!({}))],
        })
        .await
        .expect("create job");
    let first = store
        .claim(WorkerId::new_random(), 1, Duration::from_millis(50))
        .await
        .expect("claim")
        .remove(0);
    tokio::time::sleep(Duration::from_millis(80)).await;
    let retry = RetryPolicy {
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };
    assert_eq!(store.requeue_expired(retry).await.expect("requeue"), 1);
    let second = store
        .claim(WorkerId::new_random(), 1, Duration::from_secs(30))
        .await
        .expect("claim")
        .remove(0);
    assert_eq!(second.lease.attempt, first.lease.attempt + 1);
    let late = store
        .complete(
            first.lease,
            Completion {
                output: json!("stale"),
                ..Completion::default()
            },
        )
        .await;
    assert!(
        matches!(late, Err(StoreError::LeaseLost { .. })),
        "{late:?}"
    );
    store
        .complete(
            second.lease,
            Completion {
                output: json!("fresh"),
                ..Completion::default()
            },
        )
        .await
        .expect("fresh completion");
    let view = store.job(job_id).await.expect("view");
    assert_eq!(view.state, JobState::Succeeded);
    assert_eq!(view.tasks[0].output, Some(json!("fresh")));
}

async fn poison_task_fails_job_after_max_attempts(backend: Backend) {
    let store = backend.store;
    let runs = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::default();
    registry.register(
        "poison",
        Arc::new(AlwaysFails {
            kind: FailureKind::Retryable,
            runs: runs.clone(),
        }),
    );
    let shutdown = CancellationToken::new();
    let pool = tokio::spawn(run_worker_pool(
        store.clone(),
        registry,
        fast_config(2),
        Arc::new(Metrics::new()),
        shutdown.clone(),
    ));
    let job_id = store
        .create_job(NewJob {
            kind: "t".into(),
            priority: 0,
            input: json!({}),
            tasks: vec![
                task("decode", "poison", &[], json!({})),
                task("after", "poison", &["decode"], json!({})),
            ],
        })
        .await
        .expect("create job");
    let view = wait_for_end(&store, job_id, Duration::from_secs(30)).await;
    shutdown.cancel();
    pool.await.expect("pool joins").expect("pool ok");
    assert_eq!(view.state, JobState::Failed);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        3,
        "three attempts, then give up"
    );
    let error = view.error.expect("job error");
    assert_eq!(error.task, "decode");
    assert_eq!(error.step, "poison");
    assert!(
        error.message.contains("input is not decodable") && error.message.contains("3 attempts"),
        "{}",
        error.message
    );
    let after = view
        .tasks
        .iter()
        .find(|task| task.key == "after")
        .expect("after");
    assert_eq!(after.state, "cancelled");
}

async fn permanent_error_fails_at_once(backend: Backend) {
    let store = backend.store;
    let runs = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::default();
    registry.register(
        "bad",
        Arc::new(AlwaysFails {
            kind: FailureKind::Permanent,
            runs: runs.clone(),
        }),
    );
    let shutdown = CancellationToken::new();
    let pool = tokio::spawn(run_worker_pool(
        store.clone(),
        registry,
        fast_config(1),
        Arc::new(Metrics::new()),
        shutdown.clone(),
    ));
    let job_id = store
        .create_job(NewJob {
            kind: "t".into(),
            priority: 0,
            input: json!({}),
            tasks: vec![task("probe", "bad", &[], json!({}))],
        })
        .await
        .expect("create job");
    let view = wait_for_end(&store, job_id, Duration::from_secs(30)).await;
    shutdown.cancel();
    pool.await.expect("pool joins").expect("pool ok");
    assert_eq!(view.state, JobState::Failed);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(view
        .error
        .expect("error")
        .message
        .contains("permanent error"));
}

async fn cancel_stops_running_task_within_one_heartbeat(backend: Backend) {
    let store = backend.store;
    let pid = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::default();
    registry.register("sleep", Arc::new(SpawnsSleep { pid: pid.clone() }));
    let shutdown = CancellationToken::new();
    let config = fast_config(1);
    let heartbeat = config.heartbeat_interval;
    let pool = tokio::spawn(run_worker_pool(
        store.clone(),
        registry,
        config,
        Arc::new(Metrics::new()),
        shutdown.clone(),
    ));
    let job_id = store
        .create_job(NewJob {
            kind: "t".into(),
            priority: 0,
            input: json!({}),
            tasks: vec![task("encode", "sleep", &[], json!({}))],
        })
        .await
        .expect("create job");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pid.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let child_pid = pid.load(Ordering::SeqCst);
    assert_ne!(child_pid, 0, "the task started its child process");
    let cancelled_at = Instant::now();
    assert!(store.cancel_job(job_id).await.expect("cancel"));
    let stopped = loop {
        let view = store.job(job_id).await.expect("view");
        if view.tasks[0].state == "cancelled" {
            break cancelled_at.elapsed();
        }
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(5),
            "task never stopped: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // One heartbeat interval plus the database round trips.
    assert!(
        stopped <= heartbeat + Duration::from_millis(150),
        "stopped after {stopped:?}"
    );
    let alive = std::path::Path::new(&format!("/proc/{child_pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{child_pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ");
    assert!(!alive, "the child process {child_pid} was killed");
    shutdown.cancel();
    pool.await.expect("pool joins").expect("pool ok");
    assert_eq!(
        store.job(job_id).await.expect("view").state,
        JobState::Cancelled
    );
}

async fn lower_priority_value_runs_first(backend: Backend) {
    let store = backend.store;
    let mut job_ids = Vec::new();
    for priority in [30, 10, 20] {
        job_ids.push(
            store
                .create_job(NewJob {
                    kind: "t".into(),
                    priority,
                    input: json!({}),
                    tasks: vec![task("only", "sum", &[], json!({}))],
                })
                .await
                .expect("create job"),
        );
    }
    let worker = WorkerId::new_random();
    let mut claimed = Vec::new();
    for _ in 0..3 {
        claimed.push(
            store
                .claim(worker, 1, Duration::from_secs(10))
                .await
                .expect("claim")
                .remove(0)
                .job_id,
        );
    }
    assert_eq!(claimed, vec![job_ids[1], job_ids[2], job_ids[0]]);
}

async fn rejects_tasks_that_depend_on_unknown_tasks(backend: Backend) {
    let result = backend
        .store
        .create_job(NewJob {
            kind: "t".into(),
            priority: 0,
            input: json!({}),
            tasks: vec![task("a", "sum", &["missing"], json!({}))],
        })
        .await;
    assert!(
        matches!(result, Err(StoreError::InvalidJob(_))),
        "{result:?}"
    );
}

macro_rules! backend_suite {
    ($($scenario:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::sqlite().await).await }) *
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::postgres().await).await }) *
        }
    };
}

backend_suite!(
    fan_out_and_join,
    stale_completion_is_fenced,
    poison_task_fails_job_after_max_attempts,
    permanent_error_fails_at_once,
    cancel_stops_running_task_within_one_heartbeat,
    lower_priority_value_runs_first,
    rejects_tasks_that_depend_on_unknown_tasks,
);
