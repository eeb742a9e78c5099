//! Row decoding, validation and the statements shared by several transitions.

use reel_core::{JobId, TaskId, Timestamp};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{
    JobFailure, JobState, JobView, NewTask, StoreError, TaskState, TaskView, NOTIFY_CHANNEL,
};

pub(super) fn validate_new_tasks(tasks: &[NewTask], existing: &[String]) -> Result<(), StoreError> {
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

pub(super) async fn insert_tasks(
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

pub(super) async fn notify(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), StoreError> {
    sqlx::query(&format!("NOTIFY {NOTIFY_CHANNEL}"))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) fn parse_id<T: std::str::FromStr>(
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

pub(super) fn parse_json(
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

pub(super) fn job_from_row(row: &AnyRow) -> Result<JobView, StoreError> {
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

pub(super) fn task_from_row(row: &AnyRow) -> Result<TaskView, StoreError> {
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
    use crate::store::RetryPolicy;
    use std::time::Duration;

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
