//! The dispatcher: claims due deliveries, POSTs them signed, reschedules
//! failures with exponential backoff.
//!
//! A claim moves the row's `next_attempt_at` forward by the lease (fenced
//! on the value it read, so two servers never send one attempt) and counts
//! the attempt; the result is written fenced on that attempt. A server
//! killed mid-attempt leaves the row pending with its lease, and whichever
//! server runs next sends it again once the lease ends: at-least-once, and
//! receivers dedupe on `reel-webhook-id`.

use std::time::Duration;

use reel_core::Timestamp;
use sqlx::Row;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::watch::Watcher;
use crate::{signature, WebhookError, WebhookStore, ID_HEADER, SIGNATURE_HEADER};

/// How the dispatcher runs.
#[derive(Clone, Debug)]
pub struct DispatchSettings {
    /// How often the watcher scans and due deliveries are claimed while
    /// webhooks exist.
    pub tick: Duration,
    /// How often it looks for a first webhook while none exists (a webhook
    /// created through this process, or an event enqueued by it, wakes it
    /// at once; one made through another server is seen within this).
    pub idle_tick: Duration,
    /// Connect timeout and total time of one attempt, body included.
    pub timeout: Duration,
    /// How long a claimed attempt holds its row.
    pub lease: Duration,
    /// The most attempts in flight.
    pub max_in_flight: usize,
    /// Attempts before a delivery is given up.
    pub max_attempts: i64,
    /// Age after which a delivery is given up.
    pub max_age: Duration,
    /// The most response bytes read.
    pub max_response_bytes: usize,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            tick: Duration::from_millis(500),
            idle_tick: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            lease: Duration::from_secs(60),
            max_in_flight: 16,
            max_attempts: 30,
            max_age: Duration::from_secs(24 * 3600),
            max_response_bytes: 64 * 1024,
        }
    }
}

/// The wait after failed attempt `attempt` (1-based): 1 s × 2^(attempt−1), at most 5 min.
pub fn backoff_after(attempt: i64) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    Duration::from_secs(1)
        .saturating_mul(1u32 << exponent)
        .min(Duration::from_secs(300))
}

/// Wakes this process's dispatcher from its idle wait.
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Tells the dispatcher there is work (a webhook was created, an event
/// enqueued), so it need not poll while there is none.
pub(crate) fn wake() {
    WAKE.notify_one();
}

/// Runs the watcher and the dispatcher until `shutdown`.
pub async fn run(store: WebhookStore, settings: DispatchSettings, shutdown: CancellationToken) {
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(settings.timeout)
        .timeout(settings.timeout)
        .user_agent(concat!("reel-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook HTTP client; no webhook will be delivered");
            return;
        }
    };
    let mut watcher = Watcher::default();
    let mut caught_up = false;
    let mut in_flight = JoinSet::new();
    // The first round runs at once.
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
            _ = WAKE.notified() => {}
        }
        wait = settings.tick;
        while in_flight.try_join_next().is_some() {}
        match watcher.scan(&store).await {
            Ok(scan) => {
                if !caught_up {
                    caught_up = true;
                    tracing::info!(added = scan.added, "webhook watcher caught up");
                }
                // No webhook: nothing to deliver (deliveries go with their
                // webhook), so nothing to claim and no reason to poll often.
                if scan.webhooks == 0 && in_flight.is_empty() {
                    wait = settings.idle_tick;
                    continue;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "webhook watcher round failed; retrying next round")
            }
        }
        let room = settings.max_in_flight.saturating_sub(in_flight.len());
        if room == 0 {
            continue;
        }
        match claim_due(&store, room, settings.lease).await {
            Ok(claimed) => {
                for attempt in claimed {
                    in_flight.spawn(attempt_delivery(
                        store.clone(),
                        client.clone(),
                        settings.clone(),
                        attempt,
                    ));
                }
            }
            Err(error) => tracing::warn!(%error, "claiming webhook deliveries failed"),
        }
    }
    // Attempts under way are let finish (each is bounded by the timeout), so
    // a graceful stop records them; what a kill interrupts keeps its lease
    // and is sent again after it.
    let grace = settings.timeout + Duration::from_secs(1);
    let drained = tokio::time::timeout(grace, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        in_flight.shutdown().await;
    }
}

/// One claimed attempt.
#[derive(Debug)]
struct Claimed {
    id: String,
    event_id: String,
    url: String,
    secret: String,
    payload: String,
    attempt: i64,
    created_at: Timestamp,
}

async fn claim_due(
    store: &WebhookStore,
    limit: usize,
    lease: Duration,
) -> Result<Vec<Claimed>, WebhookError> {
    let now = Timestamp::now();
    let rows = sqlx::query("SELECT d.id AS id, d.event_id AS event_id, d.payload AS payload, d.attempts AS attempts, d.next_attempt_at AS next_attempt_at, d.created_at AS created_at, w.url AS url, w.secret AS secret FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.state = 'pending' AND d.next_attempt_at <= $1 ORDER BY d.next_attempt_at LIMIT $2")
        .bind(now.as_micros())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(store.pool())
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id")?;
        let seen: i64 = row.try_get("next_attempt_at")?;
        let attempts: i64 = row.try_get("attempts")?;
        let taken = sqlx::query("UPDATE webhook_deliveries SET next_attempt_at = $1, attempts = attempts + 1 WHERE id = $2 AND state = 'pending' AND next_attempt_at = $3 AND attempts = $4")
            .bind(now.plus(lease).as_micros())
            .bind(&id)
            .bind(seen)
            .bind(attempts)
            .execute(store.pool())
            .await?;
        if taken.rows_affected() == 0 {
            continue; // another server took it
        }
        claimed.push(Claimed {
            id,
            event_id: row.try_get("event_id")?,
            url: row.try_get("url")?,
            secret: row.try_get("secret")?,
            payload: row.try_get("payload")?,
            attempt: attempts + 1,
            created_at: Timestamp::from_micros(row.try_get("created_at")?),
        });
    }
    Ok(claimed)
}

/// What one attempt got: the status, if any, and why it failed, if it did.
async fn send(
    client: &reqwest::Client,
    settings: &DispatchSettings,
    attempt: &Claimed,
) -> (Option<u16>, Result<(), String>) {
    let unix = Timestamp::now().as_micros() / 1_000_000;
    let request = client
        .post(&attempt.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(ID_HEADER, &attempt.event_id)
        .header(
            SIGNATURE_HEADER,
            signature(&attempt.secret, unix, &attempt.payload),
        )
        .body(attempt.payload.clone());
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) => return (None, Err(describe(&error))),
    };
    let status = response.status();
    // Read (a bounded prefix of) the body so the connection can be reused
    // and the error can quote it; a huge or endless body is cut off.
    let mut prefix = Vec::new();
    let mut read = 0usize;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len();
                let room = 200usize.saturating_sub(prefix.len());
                prefix.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if read >= settings.max_response_bytes {
                    break;
                }
            }
            Ok(None) => break,
            Err(error) => {
                if status.is_success() {
                    break; // the status is what counts
                }
                return (Some(status.as_u16()), Err(describe(&error)));
            }
        }
    }
    if status.is_success() {
        return (Some(status.as_u16()), Ok(()));
    }
    let text = String::from_utf8_lossy(&prefix);
    let why = if status.is_redirection() {
        format!("answered {status}; redirects are not followed, register the final URL")
    } else {
        format!("answered {status}: {}", text.trim())
    };
    (Some(status.as_u16()), Err(why))
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        format!("could not connect: {error}")
    } else {
        error.to_string()
    }
}

async fn attempt_delivery(
    store: WebhookStore,
    client: reqwest::Client,
    settings: DispatchSettings,
    attempt: Claimed,
) {
    let (status, outcome) = send(&client, &settings, &attempt).await;
    let now = Timestamp::now();
    let status = status.map(i64::from);
    let result = match &outcome {
        Ok(()) => {
            sqlx::query("UPDATE webhook_deliveries SET state = 'delivered', delivered_at = $1, last_status = $2, last_error = NULL WHERE id = $3 AND attempts = $4 AND state = 'pending'")
                .bind(now.as_micros())
                .bind(status)
                .bind(&attempt.id)
                .bind(attempt.attempt)
                .execute(store.pool())
                .await
        }
        Err(why) => {
            let give_up = attempt.attempt >= settings.max_attempts
                || now.since(attempt.created_at) >= settings.max_age;
            let state = if give_up { "failed" } else { "pending" };
            tracing::info!(delivery = %attempt.id, attempt = attempt.attempt, give_up, error = %why, "webhook delivery failed");
            sqlx::query("UPDATE webhook_deliveries SET state = $1, next_attempt_at = $2, last_status = $3, last_error = $4 WHERE id = $5 AND attempts = $6 AND state = 'pending'")
                .bind(state)
                .bind(now.plus(backoff_after(attempt.attempt)).as_micros())
                .bind(status)
                .bind(format!("attempt {}: {why}", attempt.attempt))
                .bind(&attempt.id)
                .bind(attempt.attempt)
                .execute(store.pool())
                .await
        }
    };
    if let Err(error) = result {
        tracing::warn!(delivery = %attempt.id, %error, "recording a webhook attempt failed; it is retried after its lease");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_five_minutes() {
        let secs: Vec<u64> = (1..=11).map(|n| backoff_after(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff_after(1000), Duration::from_secs(300));
    }
}
