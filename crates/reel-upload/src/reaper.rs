//! The reaper: expired uploads are aborted and their parts deleted, so an
//! abandoned upload leaves nothing behind in the object store.

use std::time::Duration;

use reel_core::Timestamp;
use tokio_util::sync::CancellationToken;

use reel_model::uploads::UploadId;
use reel_model::Uploads as _;

use crate::parts::delete_upload_objects;
use crate::{UploadError, UploadState};

/// How many expired uploads one query fetches.
const REAP_BATCH: i64 = 100;

pub(crate) async fn reap_expired(state: &UploadState) -> Result<usize, UploadError> {
    // One holder name for the whole round, like any other request's.
    let holder = format!("reaper-{}", UploadId::new_random());
    let mut n_reaped = 0;
    let mut n_skipped: usize = 0;
    loop {
        let expired = state
            .store
            .expired_uploads(Timestamp::now(), REAP_BATCH + n_skipped as i64)
            .await?;
        let n_fetched = expired.len();
        let mut n_skipped_now = 0;
        for row in expired {
            // The lease keeps the reaper away from an upload a request is
            // still writing (or completing); it is reaped next round.
            if !state
                .store
                .lock_upload(&row.id, &holder, state.settings.lock_lease)
                .await?
            {
                n_skipped_now += 1;
                continue;
            }
            let result = abort_locked(state, &row.id).await;
            if let Err(error) = state.store.unlock_upload(&row.id, &holder).await {
                tracing::warn!(upload_id = %row.id, %error, "releasing an upload lease failed; it expires on its own");
            }
            result?;
            n_reaped += 1;
            tracing::info!(upload_id = %row.id, "expired upload aborted");
        }
        if n_fetched < REAP_BATCH as usize + n_skipped || n_skipped_now == n_fetched {
            return Ok(n_reaped);
        }
        n_skipped = n_skipped_now;
    }
}

async fn abort_locked(state: &UploadState, id: &UploadId) -> Result<(), UploadError> {
    // Objects first: a row left open after a failed delete is retried next
    // round, while an aborted row with objects would leak them.
    delete_upload_objects(state.objects.as_ref(), id).await?;
    state.store.abort_upload(id, "expired").await?;
    Ok(())
}

pub(crate) async fn run_reaper(
    state: UploadState,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match reap_expired(&state).await {
            Ok(0) => {}
            Ok(n_reaped) => tracing::info!(n_reaped, "upload reaper round done"),
            Err(error) => tracing::warn!(%error, "upload reaper round failed; retrying next round"),
        }
    }
}
