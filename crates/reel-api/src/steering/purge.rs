//! Deleting a video reaches the edges: each registered edge may give the
//! server its purge credential (the `reel edge --admin-token`), kept with
//! the edge in the registry and never logged nor listed; a delete then
//! purges `/v/{id}/` on every such edge in the background, with retries
//! bounded in time and no redirect followed.

use std::time::Duration;

use reel_core::VideoId;
use serde::Deserialize;

use super::Edges;

/// One purge request's time limit.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(5);
/// How long a delete keeps retrying an edge's purge.
const RETRY_LIMIT: Duration = Duration::from_secs(120);

/// An edge's purge credential: its admin bearer token. Its `Debug` prints
/// no secret, so no log line or error can carry it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct PurgeToken(String);

impl PurgeToken {
    /// Compares without an early exit, so timing does not reveal how much
    /// of a guess matched.
    pub(super) fn matches(&self, other: &PurgeToken) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for PurgeToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PurgeToken(<redacted>)")
    }
}

impl Edges {
    /// Purges the video's manifests and segments (`/v/{video}/`) on every
    /// edge registered with a purge credential, in the background; returns
    /// how many edges are being purged.
    pub fn purge_video(&self, video: VideoId) -> usize {
        let targets: Vec<(String, url::Url, PurgeToken)> = self
            .read()
            .iter()
            .filter_map(|edge| {
                let token = edge.purge_token.clone()?;
                let target = edge.url.join(&format!("_edge/purge/v/{video}")).ok()?;
                Some((edge.name.clone(), target, token))
            })
            .collect();
        if targets.is_empty() {
            return 0;
        }
        let client = match purge_client() {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%video, %error, "building the edge purge client");
                return 0;
            }
        };
        let count = targets.len();
        for (edge, target, token) in targets {
            tokio::spawn(purge_edge(client.clone(), video, edge, target, token));
        }
        count
    }
}

/// The purge client: no redirect followed (a 3xx is a failure), every
/// request bounded in time, only the status read.
fn purge_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(ATTEMPT_LIMIT)
        .connect_timeout(ATTEMPT_LIMIT)
        .build()
}

/// Sends `DELETE target` until the edge answers 2xx, it refuses for good
/// (a 3xx or a 4xx other than 408 and 429), or [`RETRY_LIMIT`] has passed;
/// the delay between attempts doubles from 250 ms up to 5 s.
async fn purge_edge(
    client: reqwest::Client,
    video: VideoId,
    edge: String,
    target: url::Url,
    token: PurgeToken,
) {
    let deadline = tokio::time::Instant::now() + RETRY_LIMIT;
    let mut delay = Duration::from_millis(250);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let sent = client
            .delete(target.clone())
            .bearer_auth(&token.0)
            .send()
            .await;
        let retryable = match sent {
            Ok(response) if response.status().is_success() => {
                tracing::info!(%video, %edge, attempts, "purged the deleted video on the edge");
                return;
            }
            Ok(response) => {
                let status = response.status();
                let retryable = status.is_server_error()
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
                tracing::warn!(%video, %edge, %status, attempts, "the edge refused the purge");
                retryable
            }
            Err(error) => {
                // The error's text names the URL, never the header.
                tracing::warn!(%video, %edge, error = %error.without_url(), attempts, "the edge purge failed");
                true
            }
        };
        if !retryable || tokio::time::Instant::now() + delay > deadline {
            tracing::error!(%video, %edge, attempts, "gave up purging the deleted video on the edge");
            return;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(ATTEMPT_LIMIT);
    }
}
