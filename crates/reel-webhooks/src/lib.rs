//! Webhooks: subscriptions, a durable outbox of video and upload events, and
//! signed delivery with retries.
//!
//! Events reach the outbox (`webhook_deliveries`) in two ways: the API calls
//! [`WebhookStore::video_deleted`] after a delete (the row it would be
//! observed from is gone), and the watcher ([`watch`]) reads the engine's
//! committed state — `videos.created_at`, the first `job_events`
//! publication, `jobs.state`/`finished_at`, completed `uploads` — from a
//! persisted cursor with an overlap. Every insert is
//! `INSERT … ON CONFLICT DO NOTHING` against a unique key on
//! (webhook, event type, subject), so however often a transition is seen (a
//! task retried, a rescan after a restart, two servers watching one
//! database) it is delivered once per subscriber.
//!
//! The dispatcher ([`run`]) claims due rows by moving their
//! `next_attempt_at` forward (a lease), POSTs the stored body with a
//! `reel-signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>` header
//! (the Stripe/Mux scheme), follows no redirect, bounds the time and the
//! response size, and reschedules failures with exponential backoff. All of
//! its state is in the database, so a restarted server resumes where the old
//! one stopped, and nothing in it runs on the pipeline's path.
#![deny(missing_docs)]

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, Mac};
use rand::RngCore;
use reel_core::Timestamp;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};

mod deliver;
pub mod watch;

pub use deliver::{backoff_after, run, DispatchSettings};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "reel-signature";
/// The header carrying the event id, the same on every attempt and for every
/// subscriber: receivers dedupe on it.
pub const ID_HEADER: &str = "reel-webhook-id";
/// The most webhooks a server keeps.
pub const MAX_WEBHOOKS: i64 = 50;
/// The longest URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// Errors of webhooks.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The request is malformed (URL, event names, …).
    #[error("{0}")]
    Invalid(String),
    /// Too many webhooks.
    #[error("{0}")]
    Limit(String),
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the webhook migrations failed.
    #[error("webhook migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The event types a webhook can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A video was recorded (API upload, tus, multipart).
    VideoCreated,
    /// Its lowest rendition is published: it plays.
    VideoPlayable,
    /// Every rendition is published.
    VideoReady,
    /// Its job failed.
    VideoFailed,
    /// It was deleted.
    VideoDeleted,
    /// A resumable upload completed and became a video.
    UploadCompleted,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 6] = [
        Self::VideoCreated,
        Self::VideoPlayable,
        Self::VideoReady,
        Self::VideoFailed,
        Self::VideoDeleted,
        Self::UploadCompleted,
    ];

    /// The wire name, e.g. `video.ready`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VideoCreated => "video.created",
            Self::VideoPlayable => "video.playable",
            Self::VideoReady => "video.ready",
            Self::VideoFailed => "video.failed",
            Self::VideoDeleted => "video.deleted",
            Self::UploadCompleted => "upload.completed",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = WebhookError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|kind| kind.as_str()).collect();
                WebhookError::Invalid(format!(
                    "unknown event {text:?}; the events are {}",
                    names.join(", ")
                ))
            })
    }
}

/// An event about to be put in the outbox.
#[derive(Clone, Debug)]
pub struct Event {
    /// What happened.
    pub kind: EventType,
    /// The video or upload id it happened to.
    pub subject: String,
    /// When the transition happened (subscribers created later do not get it).
    pub at: Timestamp,
    /// The event's `data`; always carries `video_id` (and `upload_id` for uploads).
    pub data: serde_json::Value,
}

impl Event {
    /// The event id: derived from type and subject, so every observer of
    /// one transition computes the same id.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(format!("{}:{}", self.kind, self.subject));
        format!("evt_{}", hex::encode(&digest[..16]))
    }

    /// The JSON body every subscriber receives.
    pub fn body(&self) -> String {
        serde_json::json!({
            "id": self.id(),
            "type": self.kind.as_str(),
            "created_at": self.at,
            "data": self.data,
        })
        .to_string()
    }
}

/// The `reel-signature` header value for `body` sent at `unix_seconds`:
/// `t=<unix>,v1=<hex HMAC-SHA256 keyed with the secret's UTF-8 bytes over "t.body">`.
pub fn signature(secret: &str, unix_seconds: i64, body: &str) -> String {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC key");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// A webhook as listed (never with its secret).
#[derive(Clone, Debug, Serialize)]
pub struct WebhookView {
    /// The id, `wh_…`.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The subscribed event types.
    pub events: Vec<String>,
    /// The API key that created it.
    pub owner: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Deliveries by state: `pending`, `delivered`, `failed`.
    pub deliveries: DeliveryCounts,
    /// The last failed attempt's error, if any delivery is still pending or failed.
    pub last_error: Option<String>,
}

/// Deliveries of one webhook by state.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DeliveryCounts {
    /// Waiting for (another) attempt.
    pub pending: i64,
    /// Answered 2xx.
    pub delivered: i64,
    /// Gave up after the last attempt.
    pub failed: i64,
}

/// A webhook just created: the only time its secret is shown.
#[derive(Clone, Debug, Serialize)]
pub struct CreatedWebhook {
    /// The id, `wh_…`.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The subscribed event types.
    pub events: Vec<String>,
    /// The signing secret, `whsec_…`.
    pub secret: String,
    /// Creation time.
    pub created_at: Timestamp,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate::Migrator {
    // The database also holds reel-jobs' migrations (and other crates'):
    // they are not ours to know.
    ignore_missing: true,
    ..sqlx::migrate!("./migrations")
};

/// The webhook tables over the job store's pool.
#[derive(Clone, Debug)]
pub struct WebhookStore {
    pool: AnyPool,
}

impl WebhookStore {
    /// The store over `pool` (the job store's, already migrated by reel-jobs).
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// Applies the webhook migrations (after reel-jobs' own).
    pub async fn migrate(&self) -> Result<(), WebhookError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Creates a webhook after validating its URL and events.
    pub async fn create(
        &self,
        url: &str,
        events: &[String],
        owner: Option<&str>,
    ) -> Result<CreatedWebhook, WebhookError> {
        let url = validate_url(url)?;
        let events = validate_events(events)?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks")
            .fetch_one(&self.pool)
            .await?;
        if count >= MAX_WEBHOOKS {
            return Err(WebhookError::Limit(format!(
                "this server has {count} webhooks, the most it keeps; delete one first"
            )));
        }
        let id = format!("wh_{}", random_hex(16));
        let secret = format!("whsec_{}", random_hex(32));
        let created_at = Timestamp::now();
        sqlx::query("INSERT INTO webhooks (id, url, events, secret, owner, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&id)
            .bind(&url)
            .bind(format!(",{},", events.join(",")))
            .bind(&secret)
            .bind(owner.map(str::to_string))
            .bind(created_at.as_micros())
            .execute(&self.pool)
            .await?;
        deliver::wake();
        Ok(CreatedWebhook {
            id,
            url,
            events,
            secret,
            created_at,
        })
    }

    /// Every webhook with its delivery counts, oldest first.
    pub async fn list(&self) -> Result<Vec<WebhookView>, WebhookError> {
        let rows = sqlx::query(
            "SELECT id, url, events, owner, created_at FROM webhooks ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        let counts = sqlx::query(
            "SELECT webhook_id, state, COUNT(*) AS n FROM webhook_deliveries GROUP BY webhook_id, state",
        )
        .fetch_all(&self.pool)
        .await?;
        let errors = sqlx::query("SELECT webhook_id, last_error FROM webhook_deliveries WHERE state <> 'delivered' AND last_error IS NOT NULL ORDER BY next_attempt_at")
            .fetch_all(&self.pool)
            .await?;
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id")?;
            let mut deliveries = DeliveryCounts::default();
            for count in counts.iter() {
                if count.try_get::<String, _>("webhook_id")? != id {
                    continue;
                }
                let n: i64 = count.try_get("n")?;
                match count.try_get::<String, _>("state")?.as_str() {
                    "pending" => deliveries.pending = n,
                    "delivered" => deliveries.delivered = n,
                    "failed" => deliveries.failed = n,
                    _ => {}
                }
            }
            let mut last_error = None;
            for error in errors.iter() {
                if error.try_get::<String, _>("webhook_id")? == id {
                    last_error = error.try_get("last_error")?;
                }
            }
            let events: String = row.try_get("events")?;
            views.push(WebhookView {
                id,
                url: row.try_get("url")?,
                events: events
                    .split(',')
                    .filter(|name| !name.is_empty())
                    .map(str::to_string)
                    .collect(),
                owner: row.try_get("owner")?,
                created_at: Timestamp::from_micros(row.try_get("created_at")?),
                deliveries,
                last_error,
            });
        }
        Ok(views)
    }

    /// Deletes a webhook and its deliveries; returns whether it existed.
    pub async fn delete(&self, id: &str) -> Result<bool, WebhookError> {
        // Deliveries first: the cascade needs SQLite's foreign_keys pragma,
        // which a pool opened elsewhere may not set.
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        let result = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Puts `event` in the outbox of every webhook subscribed to its type
    /// that existed when it happened; a second call for the same transition
    /// adds nothing. Returns how many deliveries were added.
    pub async fn enqueue(&self, event: &Event) -> Result<u64, WebhookError> {
        let result = sqlx::query("INSERT INTO webhook_deliveries (id, webhook_id, event_id, event_type, subject_id, payload, state, attempts, next_attempt_at, created_at) SELECT $1 || '.' || w.id, w.id, $1, $2, $3, $4, 'pending', 0, $5, $6 FROM webhooks w WHERE w.events LIKE $7 AND w.created_at <= $5 ON CONFLICT DO NOTHING")
            .bind(event.id())
            .bind(event.kind.as_str())
            .bind(&event.subject)
            .bind(event.body())
            .bind(event.at.as_micros())
            .bind(Timestamp::now().as_micros())
            .bind(format!("%,{},%", event.kind))
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// Records that a video was deleted (and, should the watcher not have
    /// seen it yet, that it had been created).
    pub async fn video_deleted(
        &self,
        video_id: &str,
        created_at: Timestamp,
    ) -> Result<(), WebhookError> {
        self.enqueue(&Event {
            kind: EventType::VideoCreated,
            subject: video_id.to_string(),
            at: created_at,
            data: serde_json::json!({"video_id": video_id}),
        })
        .await?;
        self.enqueue(&Event {
            kind: EventType::VideoDeleted,
            subject: video_id.to_string(),
            at: Timestamp::now(),
            data: serde_json::json!({"video_id": video_id}),
        })
        .await?;
        deliver::wake();
        Ok(())
    }
}

/// An `http` or `https` URL with a host and no credentials.
fn validate_url(text: &str) -> Result<String, WebhookError> {
    if text.len() > MAX_URL_CHARS {
        return Err(WebhookError::Invalid(format!(
            "the url has {} characters, over the limit of {MAX_URL_CHARS}",
            text.len()
        )));
    }
    let url = url::Url::parse(text)
        .map_err(|error| WebhookError::Invalid(format!("invalid url {text:?}: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(WebhookError::Invalid(format!(
            "the url must be http:// or https://, not {}:",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(WebhookError::Invalid(format!(
            "the url {text:?} has no host"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(WebhookError::Invalid(
            "the url must not carry credentials; authenticate deliveries by their signature"
                .to_string(),
        ));
    }
    Ok(url.to_string())
}

/// Known, deduplicated event names, in the order of [`EventType::ALL`].
fn validate_events(events: &[String]) -> Result<Vec<String>, WebhookError> {
    if events.is_empty() {
        return Err(WebhookError::Invalid(
            "events is empty: name at least one, e.g. [\"video.ready\"]".to_string(),
        ));
    }
    let parsed = events
        .iter()
        .map(|name| name.parse::<EventType>())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EventType::ALL
        .into_iter()
        .filter(|kind| parsed.contains(kind))
        .map(|kind| kind.as_str().to_string())
        .collect())
}

fn random_hex(n_bytes: usize) -> String {
    let mut bytes = vec![0u8; n_bytes];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Reference value: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            signature("whsec_test", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn event_ids_depend_on_type_and_subject_only() {
        let event = |kind, subject: &str, at| Event {
            kind,
            subject: subject.to_string(),
            at: Timestamp::from_micros(at),
            data: serde_json::json!({}),
        };
        let a = event(EventType::VideoReady, "v1", 1);
        assert_eq!(a.id(), event(EventType::VideoReady, "v1", 2).id());
        assert_ne!(a.id(), event(EventType::VideoFailed, "v1", 1).id());
        assert_ne!(a.id(), event(EventType::VideoReady, "v2", 1).id());
        assert!(a.id().starts_with("evt_"));
    }

    #[test]
    fn urls_and_events_are_validated() {
        assert!(validate_url("https://example.com/hook").is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "http://user:pw@example.com/",
            "not a url",
        ] {
            assert!(validate_url(bad).is_err(), "{bad}");
        }
        assert!(validate_events(&[]).is_err());
        assert!(validate_events(&["video.exploded".to_string()]).is_err());
        assert_eq!(
            validate_events(&[
                "video.ready".into(),
                "video.created".into(),
                "video.ready".into()
            ])
            .expect("valid"),
            vec!["video.created", "video.ready"]
        );
    }
}
