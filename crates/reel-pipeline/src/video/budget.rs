//! The media-time budget a video's probe draws on: whoever hosts the
//! pipeline decides what a video may take (reel: its owner's
//! `limits.media_seconds_per_key`), so a tiny file that declares hours of
//! low-rate video is refused before one encode task exists.

use async_trait::async_trait;
use reel_core::VideoId;

/// Why a video's duration did not fit.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// The owner's budget has no room: the message says how much is used
    /// and what to do. A permanent failure of the probe.
    #[error("{0}")]
    Exceeded(String),
    /// The budget could not be read or written; worth another attempt.
    #[error("the media-time budget could not be checked: {0}")]
    Unavailable(String),
}

/// Records a probed video's duration against a budget.
#[async_trait]
pub trait MediaBudget: Send + Sync {
    /// Takes `seconds` for `video`, or says why not. Called again for the
    /// same video (a retried probe), it replaces that video's earlier share.
    async fn reserve(&self, video: VideoId, seconds: f64) -> Result<(), BudgetError>;
}

/// No budget: every duration fits.
pub struct Unlimited;

#[async_trait]
impl MediaBudget for Unlimited {
    async fn reserve(&self, _video: VideoId, _seconds: f64) -> Result<(), BudgetError> {
        Ok(())
    }
}
