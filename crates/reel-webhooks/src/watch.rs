//! The watcher: turns the engine's committed state into outbox rows.
//!
//! It reads only what is durable and final: a video row (`video.created`),
//! the first `published` row of its job in `job_events` (`video.playable`;
//! the completion that records it is fenced by the task's attempt, so a
//! retried or redone publish cannot record a different first one), the
//! job's end state (`video.ready`, `video.failed`) and a `complete` upload
//! (`upload.completed`). It reads from a cursor persisted in
//! `webhook_cursor`, rereading a short overlap every round and a long one
//! at start and every minute, so a transition committed late (a slow
//! transaction, a worker's clock a little behind) or while no server was
//! running is still seen. Seeing one twice adds nothing: the outbox's
//! unique key absorbs it.

use std::time::Duration;

use reel_core::Timestamp;
use serde_json::json;
use sqlx::Row;

use crate::{Event, EventType, WebhookError, WebhookStore};

/// Reread every round.
pub const SHORT_OVERLAP: Duration = Duration::from_secs(5);
/// Reread at start and every [`LONG_OVERLAP_EVERY`].
pub const LONG_OVERLAP: Duration = Duration::from_secs(10 * 60);
/// How often the long overlap is reread.
pub const LONG_OVERLAP_EVERY: Duration = Duration::from_secs(60);

const CURSOR: &str = "watcher";

/// The watcher's memory between rounds (the cursor itself is in the database).
#[derive(Debug, Default)]
pub struct Watcher {
    last_long_scan: Option<tokio::time::Instant>,
}

impl Watcher {
    /// One round: enqueues what happened since the cursor; returns how many
    /// deliveries were added and how many webhooks exist.
    pub async fn scan(&mut self, store: &WebhookStore) -> Result<Scan, WebhookError> {
        let started = Timestamp::now();
        let long = self
            .last_long_scan
            .is_none_or(|at| at.elapsed() >= LONG_OVERLAP_EVERY);
        let overlap = if long { LONG_OVERLAP } else { SHORT_OVERLAP };
        let n_webhooks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks")
            .fetch_one(store.pool())
            .await?;
        let mut added = 0;
        if n_webhooks > 0 {
            let cursor = read_cursor(store).await?.unwrap_or(started);
            let since = cursor.as_micros().saturating_sub(micros(overlap));
            for event in observed_since(store, since).await? {
                added += store.enqueue(&event).await?;
            }
        }
        // Without webhooks there is nothing to remember often (a webhook
        // created later gets nothing older than itself anyway).
        if n_webhooks > 0 || long {
            write_cursor(store, started).await?;
        }
        if long {
            self.last_long_scan = Some(tokio::time::Instant::now());
        }
        Ok(Scan {
            added,
            webhooks: u64::try_from(n_webhooks).unwrap_or(0),
        })
    }
}

/// What one round of the watcher found.
#[derive(Clone, Copy, Debug)]
pub struct Scan {
    /// Deliveries added.
    pub added: u64,
    /// Webhooks registered (none: the dispatcher idles).
    pub webhooks: u64,
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

async fn read_cursor(store: &WebhookStore) -> Result<Option<Timestamp>, WebhookError> {
    let at: Option<i64> = sqlx::query_scalar("SELECT at FROM webhook_cursor WHERE name = $1")
        .bind(CURSOR)
        .fetch_optional(store.pool())
        .await?;
    Ok(at.map(Timestamp::from_micros))
}

async fn write_cursor(store: &WebhookStore, at: Timestamp) -> Result<(), WebhookError> {
    // Never backwards: two servers watching one database share the cursor.
    sqlx::query("INSERT INTO webhook_cursor (name, at) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET at = excluded.at WHERE webhook_cursor.at < excluded.at")
        .bind(CURSOR)
        .bind(at.as_micros())
        .execute(store.pool())
        .await?;
    Ok(())
}

/// The transitions committed at or after `since` (µs), oldest kind first.
async fn observed_since(store: &WebhookStore, since: i64) -> Result<Vec<Event>, WebhookError> {
    let pool = store.pool();
    let mut events = Vec::new();
    let created = sqlx::query("SELECT id, title, created_at FROM videos WHERE created_at >= $1")
        .bind(since)
        .fetch_all(pool)
        .await?;
    for row in created {
        let video_id: String = row.try_get("id")?;
        let title: String = row.try_get("title")?;
        events.push(Event {
            kind: EventType::VideoCreated,
            subject: video_id.clone(),
            at: Timestamp::from_micros(row.try_get("created_at")?),
            data: json!({"video_id": video_id, "title": title}),
        });
    }
    let uploads = sqlx::query("SELECT u.id AS upload_id, u.video_id AS video_id, v.created_at AS at FROM uploads u JOIN videos v ON v.id = u.video_id WHERE u.state = 'complete' AND v.created_at >= $1")
        .bind(since)
        .fetch_all(pool)
        .await?;
    for row in uploads {
        let upload_id: String = row.try_get("upload_id")?;
        let video_id: String = row.try_get("video_id")?;
        events.push(Event {
            kind: EventType::UploadCompleted,
            subject: upload_id.clone(),
            at: Timestamp::from_micros(row.try_get("at")?),
            data: json!({"upload_id": upload_id, "video_id": video_id}),
        });
    }
    // The first publication of the job, even when a later one is what
    // brought it into the window.
    let playable = sqlx::query("SELECT v.id AS video_id, v.job_id AS job_id, MIN(e.at) AS first_at FROM videos v JOIN job_events e ON e.job_id = v.job_id WHERE e.kind = 'published' AND v.job_id IN (SELECT job_id FROM job_events WHERE kind = 'published' AND at >= $1) GROUP BY v.id, v.job_id")
        .bind(since)
        .fetch_all(pool)
        .await?;
    for row in playable {
        let video_id: String = row.try_get("video_id")?;
        let job_id: String = row.try_get("job_id")?;
        events.push(Event {
            kind: EventType::VideoPlayable,
            subject: video_id.clone(),
            at: Timestamp::from_micros(row.try_get("first_at")?),
            data: json!({"video_id": video_id, "job_id": job_id}),
        });
    }
    let finished = sqlx::query("SELECT v.id AS video_id, j.id AS job_id, j.state AS state, j.finished_at AS finished_at, j.error_step AS error_step, j.error_text AS error_text FROM jobs j JOIN videos v ON v.job_id = j.id WHERE j.finished_at >= $1 AND j.state IN ('succeeded', 'failed')")
        .bind(since)
        .fetch_all(pool)
        .await?;
    for row in finished {
        let video_id: String = row.try_get("video_id")?;
        let job_id: String = row.try_get("job_id")?;
        let state: String = row.try_get("state")?;
        let (kind, data) = if state == "succeeded" {
            (
                EventType::VideoReady,
                json!({"video_id": video_id, "job_id": job_id}),
            )
        } else {
            let step: Option<String> = row.try_get("error_step")?;
            let message: Option<String> = row.try_get("error_text")?;
            (
                EventType::VideoFailed,
                json!({"video_id": video_id, "job_id": job_id, "error": {"step": step, "message": message}}),
            )
        };
        events.push(Event {
            kind,
            subject: video_id,
            at: Timestamp::from_micros(row.try_get("finished_at")?),
            data,
        });
    }
    Ok(events)
}
