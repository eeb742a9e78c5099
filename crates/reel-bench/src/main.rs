//! `reel-bench engine` (the default): throughput of the DAG engine with 4 worker slots on
//! trivial tasks, and dispatch latency from ready to claimed (p50, p99), on
//! SQLite and on PostgreSQL (`REEL_TEST_DATABASE_URL`). Prints a Markdown
//! table for bench/RESULTS.md.
//!
//! `reel-bench pipeline [SECONDS]`: see [`pipeline`].
//! `reel-bench codecs [SECONDS]`: see [`codecs`].
//! `reel-bench upload [GIB]`: see [`upload`].
//! `reel-bench edge [SECONDS [RATE [RUNS]]]`: see [`edge`].

mod codecs;
mod edge;
mod pipeline;
mod upload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use reel_jobs::metrics::Metrics;
use reel_jobs::store::{Completion, JobState, JobStore, NewJob, NewTask, RetryPolicy};
use reel_jobs::worker::{
    run_worker_pool, Registry, TaskContext, TaskError, TaskHandler, WorkerConfig,
};
use sqlx::Row;
use tokio_util::sync::CancellationToken;

const N_THROUGHPUT_TASKS: usize = 5_000;
const N_LATENCY_JOBS: usize = 300;
const SLOTS: usize = 4;

struct Noop;

#[async_trait]
impl TaskHandler for Noop {
    async fn run(&self, _ctx: TaskContext) -> Result<Completion, TaskError> {
        Ok(Completion::default())
    }
}

fn config() -> WorkerConfig {
    WorkerConfig {
        name: "bench".to_string(),
        slots: SLOTS,
        lease: Duration::from_secs(30),
        heartbeat_interval: Duration::from_secs(5),
        poll_interval: Duration::from_secs(1),
        retry: RetryPolicy {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
        },
        shutdown_grace: Duration::from_secs(5),
    }
}

fn noop_task(key: String) -> NewTask {
    NewTask {
        key,
        kind: "noop".to_string(),
        priority: 0,
        payload: serde_json::Value::Null,
        depends_on: Vec::new(),
        max_attempts: 1,
    }
}

struct Figures {
    tasks_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn wait_done(store: &JobStore, job_id: reel_core::JobId) -> anyhow::Result<()> {
    loop {
        let state: String = sqlx::query("SELECT state FROM jobs WHERE id = $1")
            .bind(job_id.to_string())
            .fetch_one(store.pool())
            .await?
            .try_get("state")?;
        if state != "queued" && state != "running" {
            anyhow::ensure!(state == "succeeded", "bench job ended {state}");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// `producer` creates jobs; `consumer` runs the workers. They are the same
/// store for the embedded case (in-process wake-ups) and separate pools for
/// the distributed case (PostgreSQL LISTEN/NOTIFY).
async fn measure(producer: JobStore, consumer: JobStore) -> anyhow::Result<Figures> {
    let mut registry = Registry::default();
    registry.register("noop", Arc::new(Noop));
    let shutdown = CancellationToken::new();
    let pool = tokio::spawn(run_worker_pool(
        consumer.clone(),
        registry,
        config(),
        Arc::new(Metrics::new()),
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Throughput: one job with N independent tasks, claimed and completed one by one.
    let tasks = (0..N_THROUGHPUT_TASKS)
        .map(|idx| noop_task(format!("t{idx}")))
        .collect();
    let job_id = producer
        .create_job(NewJob {
            kind: "bench".into(),
            priority: 0,
            input: serde_json::Value::Null,
            tasks,
        })
        .await?;
    let started = Instant::now();
    wait_done(&producer, job_id).await?;
    let tasks_per_second = N_THROUGHPUT_TASKS as f64 / started.elapsed().as_secs_f64();

    // Dispatch latency: single-task jobs arriving at idle workers, 5 ms apart.
    let mut job_ids = Vec::with_capacity(N_LATENCY_JOBS);
    for _ in 0..N_LATENCY_JOBS {
        job_ids.push(
            producer
                .create_job(NewJob {
                    kind: "bench".into(),
                    priority: 0,
                    input: serde_json::Value::Null,
                    tasks: vec![noop_task("only".into())],
                })
                .await?,
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut latencies_us = Vec::with_capacity(N_LATENCY_JOBS);
    for job_id in job_ids {
        wait_done(&producer, job_id).await?;
        let view = producer.job(job_id).await?;
        anyhow::ensure!(view.state == JobState::Succeeded, "latency job failed");
        let row = sqlx::query("SELECT first_claim_latency_us FROM tasks WHERE job_id = $1")
            .bind(job_id.to_string())
            .fetch_one(producer.pool())
            .await?;
        latencies_us.push(
            row.try_get::<Option<i64>, _>("first_claim_latency_us")?
                .unwrap_or(0),
        );
    }
    shutdown.cancel();
    pool.await??;
    latencies_us.sort();
    let percentile = |p: f64| {
        latencies_us[((latencies_us.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
    };
    Ok(Figures {
        tasks_per_second,
        p50_ms: percentile(0.5),
        p99_ms: percentile(0.99),
    })
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("engine") => tokio::runtime::Runtime::new()?.block_on(engine()),
        Some("pipeline") => {
            let seconds = match args.get(1) {
                Some(text) => text.parse().context("SECONDS must be a whole number")?,
                None => 60,
            };
            let reel = std::env::current_exe()?
                .parent()
                .context("bench binary has no directory")?
                .join("reel");
            pipeline::run_bench(pipeline::PipelineBench { reel, seconds })
        }
        Some("codecs") => {
            let seconds = match args.get(1) {
                Some(text) => text.parse().context("SECONDS must be a whole number")?,
                None => 60,
            };
            codecs::run_bench(codecs::CodecsBench { seconds })
        }
        Some("upload") => {
            let gib = match args.get(1) {
                Some(text) => text.parse().context("GIB must be a whole number")?,
                None => 2,
            };
            let reel = std::env::current_exe()?
                .parent()
                .context("bench binary has no directory")?
                .join("reel");
            upload::run_bench(upload::UploadBench { reel, gib })
        }
        Some("edge") => {
            let number = |idx: usize, name: &str, default: u64| -> anyhow::Result<u64> {
                match args.get(idx) {
                    Some(text) => text
                        .parse()
                        .with_context(|| format!("{name} must be a whole number, got {text:?}")),
                    None => Ok(default),
                }
            };
            let reel = std::env::current_exe()?
                .parent()
                .context("bench binary has no directory")?
                .join("reel");
            edge::run_bench(edge::EdgeBench {
                reel,
                seconds: number(1, "SECONDS", 20)?,
                rate: u32::try_from(number(2, "RATE", 400)?).context("RATE is too large")?,
                runs: usize::try_from(number(3, "RUNS", 3)?).context("RUNS is too large")?,
            })
        }
        Some(other) => anyhow::bail!(
            "unknown benchmark {other:?}: use engine, pipeline [SECONDS], codecs [SECONDS], upload [GIB] or edge [SECONDS [RATE [RUNS]]]"
        ),
    }
}

async fn engine() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let sqlite_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let sqlite = JobStore::connect(&sqlite_url, 8).await?;
    let sqlite_figures = measure(sqlite.clone(), sqlite).await?;
    let pg_url = std::env::var("REEL_TEST_DATABASE_URL").context(
        "REEL_TEST_DATABASE_URL is not set: run through scripts/with-postgres.sh (make bench does)",
    )?;
    let pg_producer = JobStore::connect(&pg_url, 4).await?;
    let pg_consumer = JobStore::connect(&pg_url, 8).await?;
    let pg_figures = measure(pg_producer, pg_consumer).await?;
    println!("| backend | wake-up path | tasks/s (4 slots, {N_THROUGHPUT_TASKS} no-op tasks) | dispatch p50 (ms) | dispatch p99 (ms) |");
    println!("|---|---|---|---|---|");
    for (name, wake, figures) in [
        (
            "SQLite (WAL, synchronous=NORMAL)",
            "in-process (reel serve)",
            sqlite_figures,
        ),
        (
            "PostgreSQL 15",
            "LISTEN/NOTIFY (separate pools)",
            pg_figures,
        ),
    ] {
        println!(
            "| {name} | {wake} | {:.0} | {:.2} | {:.2} |",
            figures.tasks_per_second, figures.p50_ms, figures.p99_ms
        );
    }
    Ok(())
}
