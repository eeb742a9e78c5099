//! The `verify` and `selftest` jobs: how they are created and how each of
//! their tasks runs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use reel_jobs::store::{Completion, FailureKind, NewJob, NewTask};
use reel_jobs::worker::{Registry, TaskContext, TaskError, TaskHandler};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Settings of the task handlers.
#[derive(Clone, Debug)]
pub struct PipelineSettings {
    /// Time limit of one ffprobe run.
    pub probe_timeout: Duration,
    /// Byte range of one `checksum` task.
    pub checksum_range: u64,
    /// Where probe copies sources to (a local scratch directory).
    pub scratch_dir: std::path::PathBuf,
}

/// Errors of storing an uploaded body.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body is larger than allowed.
    #[error("the body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The body is empty.
    #[error("the body is empty")]
    Empty,
    /// Reading the body failed.
    #[error("reading the request body failed: {0}")]
    Body(String),
    /// The object store failed.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// Writing to the store failed.
    #[error("object store write: {0}")]
    Write(#[from] std::io::Error),
}

/// An object stored from a stream, with what was measured on the way.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredObject {
    /// The object's key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
}

/// Streams `body` into the object store at `key`, hashing on the way, and
/// refuses (deleting what was written) a body over `max_size` bytes.
pub async fn store_stream<S, E>(
    objects: Arc<dyn ObjectStore>,
    key: &str,
    body: S,
    max_size: u64,
) -> Result<StoredObject, IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let path = ObjectPath::from(key);
    let mut writer = BufWriter::new(objects.clone(), path.clone());
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut body = body;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                let _ = writer.abort().await;
                return Err(IngestError::Body(error.to_string()));
            }
        };
        size += chunk.len() as u64;
        if size > max_size {
            let _ = writer.abort().await;
            return Err(IngestError::TooLarge { limit: max_size });
        }
        hasher.update(&chunk);
        writer.write_all(&chunk).await?;
    }
    if size == 0 {
        let _ = writer.abort().await;
        return Err(IngestError::Empty);
    }
    writer.shutdown().await?;
    Ok(StoredObject {
        key: key.to_string(),
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// The key an uploaded source for a `verify` job is stored at.
pub fn source_key(upload_id: &str) -> String {
    format!("sources/{upload_id}/source")
}

/// The job that verifies a stored object end to end.
pub fn verify_job(source: &StoredObject) -> NewJob {
    NewJob {
        kind: "verify".to_string(),
        // Smaller objects first, as a short video goes before a long one.
        priority: i64::try_from(source.size >> 20).unwrap_or(i64::MAX),
        input: json!({"source": source}),
        tasks: vec![NewTask {
            key: "probe".to_string(),
            kind: "probe".to_string(),
            priority: 0,
            payload: json!({"source": source}),
            depends_on: Vec::new(),
            max_attempts: VERIFY_ATTEMPTS,
        }],
    }
}

/// What a `selftest` job does in each of its tasks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SelftestSpec {
    /// How many `touch` tasks to fan out to.
    pub tasks: u32,
    /// How long each touch task waits after writing its marker.
    #[serde(default)]
    pub delay_ms: u64,
    /// Makes every touch task fail: `retryable` or `permanent`.
    #[serde(default)]
    pub fail: Option<String>,
    /// Attempts per task.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
}

fn default_attempts() -> u32 {
    3
}

/// The most tasks one selftest job may fan out to.
pub const MAX_SELFTEST_TASKS: u32 = 2_000;
/// The longest a selftest task may wait.
pub const MAX_SELFTEST_DELAY_MS: u64 = 60_000;
/// The most slot time one selftest job may ask for: tasks × delay.
pub const MAX_SELFTEST_TOTAL_DELAY_MS: u64 = 10 * 60_000;
/// The most attempts per selftest task.
pub const MAX_SELFTEST_ATTEMPTS: u32 = 5;
/// Selftest jobs run after everything else: lower values run first, and a
/// video's priority is its size in 16 MiB units.
pub const SELFTEST_PRIORITY: i64 = 1 << 48;

impl SelftestSpec {
    /// Checks the bounds: 1 to [`MAX_SELFTEST_TASKS`] tasks, a delay of at
    /// most [`MAX_SELFTEST_DELAY_MS`] and [`MAX_SELFTEST_TOTAL_DELAY_MS`]
    /// in all, 1 to [`MAX_SELFTEST_ATTEMPTS`] attempts, and a known `fail`.
    pub fn check(&self) -> Result<(), String> {
        if self.tasks == 0 || self.tasks > MAX_SELFTEST_TASKS {
            return Err(format!(
                "tasks must be between 1 and {MAX_SELFTEST_TASKS}, not {}",
                self.tasks
            ));
        }
        if self.delay_ms > MAX_SELFTEST_DELAY_MS {
            return Err(format!(
                "delay_ms must be at most {MAX_SELFTEST_DELAY_MS}, not {}",
                self.delay_ms
            ));
        }
        let total = u64::from(self.tasks).saturating_mul(self.delay_ms);
        if total > MAX_SELFTEST_TOTAL_DELAY_MS {
            return Err(format!(
                "tasks × delay_ms is {total} ms, over the limit of {MAX_SELFTEST_TOTAL_DELAY_MS} ms; ask for fewer tasks or a shorter delay"
            ));
        }
        if self.max_attempts == 0 || self.max_attempts > MAX_SELFTEST_ATTEMPTS {
            return Err(format!(
                "max_attempts must be between 1 and {MAX_SELFTEST_ATTEMPTS}, not {}",
                self.max_attempts
            ));
        }
        if let Some(fail) = &self.fail {
            if fail != "retryable" && fail != "permanent" {
                return Err(format!(
                    "fail must be \"retryable\" or \"permanent\", not {fail:?}"
                ));
            }
        }
        Ok(())
    }
}

/// The job that exercises the engine.
pub fn selftest_job(spec: &SelftestSpec) -> NewJob {
    NewJob {
        kind: "selftest".to_string(),
        priority: SELFTEST_PRIORITY,
        input: json!(spec),
        tasks: vec![NewTask {
            key: "plan".to_string(),
            kind: "plan".to_string(),
            priority: 0,
            payload: json!(spec),
            depends_on: Vec::new(),
            max_attempts: spec.max_attempts.max(1),
        }],
    }
}

/// The handlers of every task kind, ready for a worker pool.
pub fn registry(objects: Arc<dyn ObjectStore>, settings: PipelineSettings) -> Registry {
    let shared = Arc::new(Shared { objects, settings });
    let mut registry = Registry::default();
    let cleaning = |handler: Arc<dyn TaskHandler>| {
        Arc::new(RemovesSourceAtEnd {
            handler,
            shared: shared.clone(),
        })
    };
    registry.register("probe", cleaning(Arc::new(Probe(shared.clone()))));
    registry.register("checksum", cleaning(Arc::new(Checksum(shared.clone()))));
    registry.register("verify", cleaning(Arc::new(Verify(shared.clone()))));
    registry.register("plan", Arc::new(Plan));
    registry.register("touch", Arc::new(Touch(shared.clone())));
    registry.register("join", Arc::new(Join(shared)));
    registry
}

struct Shared {
    objects: Arc<dyn ObjectStore>,
    settings: PipelineSettings,
}

fn retryable(context: &str) -> impl Fn(object_store::Error) -> TaskError + '_ {
    move |error| TaskError::retryable(format!("{context}: {error}"))
}

/// Writes a small JSON document at a deterministic key.
async fn put_json(
    objects: &Arc<dyn ObjectStore>,
    key: &str,
    value: &serde_json::Value,
    context: &str,
) -> Result<(), TaskError> {
    objects
        .put(&ObjectPath::from(key), PutPayload::from(value.to_string()))
        .await
        .map_err(|error| TaskError::retryable(format!("{context}: {error}")))?;
    Ok(())
}

fn payload_field<T: serde::de::DeserializeOwned>(
    ctx: &TaskContext,
    field: &str,
) -> Result<T, TaskError> {
    serde_json::from_value(ctx.payload[field].clone()).map_err(|error| {
        TaskError::permanent(format!("task payload field {field:?} is invalid: {error}"))
    })
}

/// Attempts of every task of a verify job.
const VERIFY_ATTEMPTS: u32 = 3;

/// A verify job's source is removed when the job ends: by its last task
/// when it succeeds, by the task whose failure ends the job otherwise (a
/// permanent error, or a retryable one on the last attempt).
struct RemovesSourceAtEnd {
    handler: Arc<dyn TaskHandler>,
    shared: Arc<Shared>,
}

#[async_trait]
impl TaskHandler for RemovesSourceAtEnd {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let source = ctx.payload["source"]["key"].as_str().map(str::to_string);
        let last = ctx.key == "verify";
        let attempt = ctx.attempt;
        let result = self.handler.run(ctx).await;
        let ends_job = match &result {
            Ok(_) => last,
            Err(error) => {
                matches!(error.kind, FailureKind::Permanent)
                    || attempt >= i64::from(VERIFY_ATTEMPTS)
            }
        };
        if let (true, Some(key)) = (ends_job, source) {
            if let Err(error) = self.shared.objects.delete(&ObjectPath::from(key)).await {
                tracing::warn!(%error, "removing a verify job's source failed");
            }
        }
        result
    }
}

struct Probe(Arc<Shared>);

#[async_trait]
impl TaskHandler for Probe {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let source: StoredObject = payload_field(&ctx, "source")?;
        let scratch = self
            .0
            .settings
            .scratch_dir
            .join(format!("probe-{}-{}", ctx.task_id, ctx.attempt));
        tokio::fs::create_dir_all(&scratch).await.map_err(|error| {
            TaskError::retryable(format!(
                "creating scratch dir {}: {error}",
                scratch.display()
            ))
        })?;
        let result = self.probe_copy(&ctx, &source, &scratch).await;
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        let report = result?;
        let range = self.0.settings.checksum_range.max(1);
        let n_ranges = source.size.div_ceil(range);
        let mut new_tasks = Vec::new();
        let mut keys = Vec::new();
        for range_idx in 0..n_ranges {
            let key = format!("checksum-{range_idx}");
            let offset = range_idx * range;
            new_tasks.push(NewTask {
                key: key.clone(),
                kind: "checksum".to_string(),
                priority: 0,
                payload: json!({"source": source, "index": range_idx, "offset": offset, "length": range.min(source.size - offset)}),
                depends_on: Vec::new(),
                max_attempts: VERIFY_ATTEMPTS,
            });
            keys.push(key);
        }
        new_tasks.push(NewTask {
            key: "verify".to_string(),
            kind: "verify".to_string(),
            priority: 0,
            payload: json!({"source": source}),
            depends_on: keys,
            max_attempts: VERIFY_ATTEMPTS,
        });
        Ok(Completion {
            output: report,
            new_tasks,
            publish: Vec::new(),
        })
    }
}

impl Probe {
    async fn probe_copy(
        &self,
        ctx: &TaskContext,
        source: &StoredObject,
        scratch: &std::path::Path,
    ) -> Result<serde_json::Value, TaskError> {
        let local = scratch.join("source");
        let mut file = tokio::fs::File::create(&local).await.map_err(|error| {
            TaskError::retryable(format!("creating {}: {error}", local.display()))
        })?;
        let object = self
            .0
            .objects
            .get(&ObjectPath::from(source.key.as_str()))
            .await
            .map_err(retryable("reading the source"))?;
        let mut stream = object.into_stream();
        let mut copied: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(retryable("reading the source"))?;
            copied += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|error| TaskError::retryable(format!("writing scratch copy: {error}")))?;
            ctx.set_progress(copied as f64 / source.size.max(1) as f64 * 0.5);
        }
        file.flush()
            .await
            .map_err(|error| TaskError::retryable(format!("writing scratch copy: {error}")))?;
        drop(file);
        let report = reel_media::probe(&local, self.0.settings.probe_timeout)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "probing the upload failed");
                match error {
                    reel_media::MediaError::Failed { .. }
                    | reel_media::MediaError::BadOutput { .. } => TaskError::permanent(format!(
                        "the file is not media reel can read: {}",
                        error.user_message()
                    )),
                    other => TaskError::retryable(other.user_message()),
                }
            })?;
        let n_streams = report.json["streams"].as_array().map(Vec::len).unwrap_or(0);
        if n_streams == 0 {
            return Err(TaskError::permanent("the file has no decodable stream"));
        }
        Ok(json!({
            "format": report.format_name(),
            "duration_seconds": report.duration_seconds(),
            "video_streams": report.count_streams("video"),
            "audio_streams": report.count_streams("audio"),
        }))
    }
}

struct Checksum(Arc<Shared>);

#[async_trait]
impl TaskHandler for Checksum {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let source: StoredObject = payload_field(&ctx, "source")?;
        let index: u64 = payload_field(&ctx, "index")?;
        let offset: u64 = payload_field(&ctx, "offset")?;
        let length: u64 = payload_field(&ctx, "length")?;
        let range = offset..offset + length;
        let bytes = self
            .0
            .objects
            .get_range(&ObjectPath::from(source.key.as_str()), range)
            .await
            .map_err(retryable("reading the byte range"))?;
        if bytes.len() as u64 != length {
            return Err(TaskError::permanent(format!(
                "range at {offset} has {} bytes, expected {length}",
                bytes.len()
            )));
        }
        let digest = tokio::task::spawn_blocking(move || hex::encode(Sha256::digest(&bytes)))
            .await
            .map_err(|error| TaskError::retryable(format!("hashing: {error}")))?;
        let output = json!({"index": index, "offset": offset, "length": length, "sha256": digest});
        let key = format!("jobs/{}/checksums/{index}.json", ctx.job_id);
        put_json(&self.0.objects, &key, &output, "writing the range checksum").await?;
        Ok(Completion {
            output,
            ..Completion::default()
        })
    }
}

struct Verify(Arc<Shared>);

#[async_trait]
impl TaskHandler for Verify {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let source: StoredObject = payload_field(&ctx, "source")?;
        let outputs = ctx.dependency_outputs().await?;
        let mut ranges: Vec<(u64, u64)> = outputs
            .values()
            .map(|output| {
                (
                    output["offset"].as_u64().unwrap_or(u64::MAX),
                    output["length"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        ranges.sort();
        let mut covered: u64 = 0;
        for (offset, length) in &ranges {
            if *offset != covered {
                return Err(TaskError::permanent(format!(
                    "checksum ranges leave a gap at byte {covered}"
                )));
            }
            covered += length;
        }
        if covered != source.size {
            return Err(TaskError::permanent(format!(
                "checksum ranges cover {covered} of {} bytes",
                source.size
            )));
        }
        let object = self
            .0
            .objects
            .get(&ObjectPath::from(source.key.as_str()))
            .await
            .map_err(retryable("reading the source"))?;
        let mut stream = object.into_stream();
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            hasher.update(&chunk.map_err(retryable("reading the source"))?);
        }
        let digest = hex::encode(hasher.finalize());
        if digest != source.sha256 {
            return Err(TaskError::permanent(format!(
                "stored object has sha256 {digest}, expected {}",
                source.sha256
            )));
        }
        let report_key = format!("jobs/{}/report.json", ctx.job_id);
        let report = json!({"source": source.key, "size": source.size, "sha256": digest, "ranges": ranges.len()});
        put_json(&self.0.objects, &report_key, &report, "writing the report").await?;
        Ok(Completion {
            output: report.clone(),
            new_tasks: Vec::new(),
            publish: vec![json!({"report": report_key, "sha256": digest})],
        })
    }
}

struct Plan;

#[async_trait]
impl TaskHandler for Plan {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let spec: SelftestSpec = serde_json::from_value(ctx.payload.clone())
            .map_err(|error| TaskError::permanent(format!("invalid selftest spec: {error}")))?;
        spec.check()
            .map_err(|error| TaskError::permanent(format!("invalid selftest spec: {error}")))?;
        let mut new_tasks = Vec::with_capacity(spec.tasks as usize + 1);
        let mut keys = Vec::with_capacity(spec.tasks as usize);
        for task_idx in 0..spec.tasks {
            let key = format!("touch-{task_idx}");
            new_tasks.push(NewTask {
                key: key.clone(),
                kind: "touch".to_string(),
                priority: 0,
                payload: json!(spec),
                depends_on: Vec::new(),
                max_attempts: spec.max_attempts.max(1),
            });
            keys.push(key);
        }
        new_tasks.push(NewTask {
            key: "join".to_string(),
            kind: "join".to_string(),
            priority: 0,
            payload: json!({"tasks": keys.len()}),
            depends_on: keys,
            max_attempts: spec.max_attempts.max(1),
        });
        Ok(Completion {
            output: json!({"tasks": spec.tasks}),
            new_tasks,
            publish: Vec::new(),
        })
    }
}

struct Touch(Arc<Shared>);

#[async_trait]
impl TaskHandler for Touch {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let spec: SelftestSpec = serde_json::from_value(ctx.payload.clone())
            .map_err(|error| TaskError::permanent(format!("invalid selftest spec: {error}")))?;
        let marker = format!(
            "jobs/{}/marks/{}/attempt-{}-worker-{}",
            ctx.job_id, ctx.key, ctx.attempt, ctx.worker
        );
        let started = reel_core::Timestamp::now();
        put_json(
            &self.0.objects,
            &marker,
            &json!({"started_at": started}),
            "writing the marker",
        )
        .await?;
        if spec.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(spec.delay_ms)).await;
        }
        match spec.fail.as_deref() {
            Some("permanent") => {
                return Err(TaskError::permanent(
                    "selftest task told to fail permanently",
                ))
            }
            Some("retryable") => return Err(TaskError::retryable("selftest task told to fail")),
            _ => {}
        }
        let finished = reel_core::Timestamp::now();
        Ok(Completion {
            output: json!({"marker": marker, "started_at": started, "finished_at": finished}),
            ..Completion::default()
        })
    }
}

struct Join(Arc<Shared>);

#[async_trait]
impl TaskHandler for Join {
    async fn run(&self, ctx: TaskContext) -> Result<Completion, TaskError> {
        let outputs = ctx.dependency_outputs().await?;
        let expected = ctx.payload["tasks"].as_u64().unwrap_or(0) as usize;
        if outputs.len() != expected {
            return Err(TaskError::permanent(format!(
                "join saw {} inputs, expected {expected}",
                outputs.len()
            )));
        }
        let summary_key = format!("jobs/{}/summary.json", ctx.job_id);
        let summary = json!({"touched": outputs.len()});
        put_json(
            &self.0.objects,
            &summary_key,
            &summary,
            "writing the summary",
        )
        .await?;
        Ok(Completion {
            output: summary.clone(),
            new_tasks: Vec::new(),
            publish: vec![json!({"summary": summary_key, "touched": outputs.len()})],
        })
    }
}
