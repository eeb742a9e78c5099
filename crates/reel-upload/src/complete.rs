//! Completion: an upload whose every byte is stored becomes a video.
//!
//! The parts are concatenated in order into the video's source object while
//! the whole is hashed (and each part re-hashed against what was recorded,
//! so a part overwritten after it was recorded is caught rather than
//! published). Then the video and its job are created and the parts deleted.
//!
//! Completion is resumable: the video id is recorded when it starts, so a
//! completion that crashed is finished by the next request with the same id,
//! and a video that already exists is not created twice.

use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use reel_core::VideoId;
use reel_model::uploads::{UploadConcat, UploadId, UploadPart, UploadRow};
use reel_model::videos::NewVideo;
use reel_model::{Uploads as _, Videos as _};
use reel_pipeline::jobs::StoredObject;
use reel_pipeline::video::{video_job, video_source_key};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::parts::{delete_upload_objects, part_key, UploadLock};
use crate::tus::TusError;
use crate::UploadState;

/// The longest title kept, as in the videos API.
const MAX_TITLE_CHARS: usize = 200;

/// Turns the fully stored upload `row` into a video; returns its id. The
/// caller holds the lease of `row` and of every partial it concatenates.
pub(crate) async fn complete_upload(
    state: &UploadState,
    lock: &mut UploadLock,
    row: &UploadRow,
) -> Result<VideoId, TusError> {
    let video_id = state
        .store
        .begin_upload_completion(&row.id, VideoId::new_random())
        .await?
        .ok_or_else(|| {
            TusError::Conflict(format!(
                "upload {} is not fully stored or no longer open; check it with HEAD",
                row.id
            ))
        })?;
    let sources: Vec<UploadId> = match &row.concat {
        Some(UploadConcat::Final(partials)) => partials.clone(),
        _ => vec![row.id.clone()],
    };
    if state.store.video(video_id).await?.is_none() {
        let stored = match assemble(state, lock, &sources, video_id).await {
            Ok(stored) => stored,
            Err(error) => {
                state
                    .store
                    .reopen_upload(&row.id, &error.to_string())
                    .await?;
                return Err(error);
            }
        };
        if let Some(declared) = &row.declared_sha256 {
            if !declared.eq_ignore_ascii_case(&stored.sha256) {
                let message = format!(
                    "upload {} has sha256 {} but {declared} was declared; the upload was aborted, start a new one",
                    row.id, stored.sha256
                );
                remove_object(state, &ObjectPath::from(stored.key.as_str())).await?;
                state.store.abort_upload(&row.id, &message).await?;
                for source in &sources {
                    if source != &row.id {
                        state.store.abort_upload(source, &message).await?;
                    }
                    delete_upload_objects(state.objects.as_ref(), source).await?;
                }
                return Err(TusError::ChecksumMismatch(message));
            }
        }
        let video = NewVideo {
            id: video_id,
            title: title_of(row),
            source_key: stored.key.clone(),
            source_size: stored.size,
            source_sha256: stored.sha256.clone(),
            owner: Some(row.owner.clone()),
            visibility: visibility_of(row),
        };
        let job_id =
            reel_model::create_video(&state.store, &video, video_job(video_id, &stored)).await?;
        tracing::info!(upload_id = %row.id, %video_id, %job_id, size = stored.size, "upload complete");
    }
    for source in &sources {
        delete_upload_objects(state.objects.as_ref(), source).await?;
        if source != &row.id {
            // A concatenated partial has served its purpose.
            state.store.delete_upload(source).await?;
        }
    }
    state.store.complete_upload(&row.id).await?;
    Ok(video_id)
}

/// The video title: the `title` metadata, else the file name.
fn title_of(row: &UploadRow) -> String {
    let from_metadata = row
        .metadata
        .get("title")
        .and_then(|value| value.as_str())
        .filter(|title| !title.trim().is_empty());
    let title = match from_metadata {
        Some(title) => title,
        None if !row.filename.trim().is_empty() => row.filename.as_str(),
        None => "Untitled",
    };
    title
        .chars()
        .filter(|character| !character.is_control())
        .take(MAX_TITLE_CHARS)
        .collect()
}

/// The video's visibility: the `visibility` metadata (`public`, `unlisted`
/// or `private`, checked at creation), else public. A stored value that does
/// not parse (creation refuses those) makes the video private rather than
/// exposing what its uploader may have meant to hide.
fn visibility_of(row: &UploadRow) -> reel_model::Visibility {
    match row
        .metadata
        .get("visibility")
        .and_then(|value| value.as_str())
    {
        None => reel_model::Visibility::Public,
        Some(text) => text.parse().unwrap_or(reel_model::Visibility::Private),
    }
}

/// Concatenates the parts of `sources` into the video's source object.
async fn assemble(
    state: &UploadState,
    lock: &mut UploadLock,
    sources: &[UploadId],
    video_id: VideoId,
) -> Result<StoredObject, TusError> {
    let key = video_source_key(video_id);
    let path = ObjectPath::from(key.as_str());
    let mut writer = BufWriter::new(state.objects.clone(), path.clone());
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    for source in sources {
        let parts = state.store.upload_parts(source).await?;
        for part in &parts {
            lock.keep_alive(state).await?;
            if let Err(error) = copy_part(state, source, part, &mut writer, &mut hasher).await {
                let _ = writer.abort().await;
                return Err(error);
            }
            size += part.size;
        }
    }
    writer.shutdown().await.map_err(|error| {
        TusError::Internal(format!("writing the source of video {video_id}: {error}"))
    })?;
    Ok(StoredObject {
        key,
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}

async fn copy_part(
    state: &UploadState,
    source: &UploadId,
    part: &UploadPart,
    writer: &mut BufWriter,
    hasher: &mut Sha256,
) -> Result<(), TusError> {
    let mut stream = state
        .objects
        .get(&part_key(source, part.number))
        .await?
        .into_stream();
    let mut part_hasher = Sha256::new();
    let mut part_size: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        part_size += chunk.len() as u64;
        hasher.update(&chunk);
        part_hasher.update(&chunk);
        writer
            .write_all(&chunk)
            .await
            .map_err(|error| TusError::Internal(format!("writing a video source: {error}")))?;
    }
    let part_sha256 = hex::encode(part_hasher.finalize());
    if part_size != part.size || part_sha256 != part.sha256 {
        return Err(TusError::Internal(format!(
            "part {} of upload {source} changed after it was recorded ({part_size} bytes, sha256 {part_sha256}; recorded {} bytes, sha256 {})",
            part.number, part.size, part.sha256
        )));
    }
    Ok(())
}

async fn remove_object(state: &UploadState, path: &ObjectPath) -> Result<(), TusError> {
    match state.objects.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(error) => Err(error.into()),
    }
}
