//! Looking up the caller's upload and the checks every route makes on it.

use super::*;

pub(super) fn parse_upload_id(text: &str) -> Result<UploadId, TusError> {
    text.parse()
        .map_err(|error: reel_model::uploads::ParseUploadIdError| {
            TusError::BadRequest(error.to_string())
        })
}

/// The upload `id` if it belongs to `owner`; others' uploads do not exist.
pub(super) async fn owned_upload(
    state: &UploadState,
    owner: &str,
    id: &UploadId,
) -> Result<UploadRow, TusError> {
    match state.store.upload(id).await? {
        Some(row) if row.owner == owner => Ok(row),
        _ => Err(TusError::NotFound(format!("no upload with id {id}"))),
    }
}

/// tus expiration: an aborted or expired upload is gone (410).
pub(super) fn check_live(row: &UploadRow) -> Result<(), TusError> {
    if row.status == UploadStatus::Aborted {
        return Err(TusError::Gone(format!(
            "upload {} was aborted ({}); start a new upload",
            row.id,
            row.error.as_deref().unwrap_or("no reason recorded")
        )));
    }
    if row.status == UploadStatus::Open && row.expires_at < Timestamp::now() {
        return Err(TusError::Gone(format!(
            "upload {} expired at {}; start a new upload",
            row.id,
            httpdate::fmt_http_date(system_time(row.expires_at))
        )));
    }
    Ok(())
}

/// tus concatenation: a final upload takes no PATCH.
pub(super) fn check_writable(row: &UploadRow) -> Result<(), TusError> {
    if matches!(row.concat, Some(UploadConcat::Final(_))) {
        return Err(TusError::Forbidden(format!(
            "upload {} is a final concatenation; PATCH its partial uploads instead",
            row.id
        )));
    }
    Ok(())
}

/// Refuses an upload that would take the key past its quota.
pub(super) async fn check_quota(
    state: &UploadState,
    owner: &str,
    length: u64,
) -> Result<(), TusError> {
    match state
        .store
        .quota_excess(owner, state.settings.quota_per_key, length)
        .await?
    {
        Some(reason) => Err(TusError::TooLarge(reason)),
        None => Ok(()),
    }
}

/// What is left of the key's quota (None: no quota).
pub(super) async fn quota_left(state: &UploadState, owner: &str) -> Result<Option<u64>, TusError> {
    let Some(quota) = state.settings.quota_per_key else {
        return Ok(None);
    };
    let used = state.store.bytes_used_by(owner).await?;
    Ok(Some(quota.saturating_sub(used)))
}

pub(super) fn check_size(state: &UploadState, length: u64) -> Result<(), TusError> {
    let limit = state.settings.max_upload_bytes;
    if length > limit {
        return Err(TusError::TooLarge(format!(
            "the upload is {length} bytes but the limit is {limit} (Tus-Max-Size)"
        )));
    }
    Ok(())
}
