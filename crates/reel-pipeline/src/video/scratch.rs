//! A task's scratch directory: `{scratch}/jobs/{job}/task-{task}-{attempt}`,
//! removed when the task ends, whichever way it ends. Removal runs on the
//! blocking pool, never on the async runtime's threads; dropping a
//! [`Scratch`] does not wait for it.

use std::path::{Path, PathBuf};

use reel_core::JobId;
use reel_jobs::worker::{TaskContext, TaskError};

use super::io_error;

/// A per-task scratch directory, removed when dropped.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// Creates the task's directory under `root`.
    pub(crate) async fn create(root: &Path, ctx: &TaskContext) -> Result<Scratch, TaskError> {
        let dir =
            job_scratch(root, ctx.job_id).join(format!("task-{}-{}", ctx.task_id, ctx.attempt));
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io_error("creating the scratch directory"))?;
        Ok(Scratch(dir))
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        remove_in_background(std::mem::take(&mut self.0));
    }
}

/// The scratch directory of all of a job's tasks on this machine.
pub(crate) fn job_scratch(root: &Path, job: JobId) -> PathBuf {
    root.join("jobs").join(job.to_string())
}

/// Removes a job's scratch directory (once its last task is done).
pub(crate) async fn remove_job_scratch(root: &Path, job: JobId) {
    let dir = job_scratch(root, job);
    if let Err(error) = tokio::fs::remove_dir_all(&dir).await {
        if error.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), %error, "removing a job's scratch directory");
        }
    }
}

/// Removes `dir` without blocking the caller: on the runtime's blocking
/// pool, or on a thread of its own outside a runtime.
fn remove_in_background(dir: PathBuf) {
    if dir.as_os_str().is_empty() {
        return;
    }
    let remove = move || {
        if let Err(error) = std::fs::remove_dir_all(&dir) {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), %error, "removing a scratch directory");
            }
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn_blocking(remove);
        }
        Err(_) => {
            std::thread::spawn(remove);
        }
    }
}
