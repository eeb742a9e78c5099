//! Part storage: the lease on an upload, streaming a request body into part
//! objects, and removing an upload's objects.
//!
//! A body is cut into parts of the upload's part size; at most one part is
//! buffered in memory. Without a checksum, each part is recorded (and the
//! offset advanced) as soon as its object is stored, and the tail is stored
//! as its own, shorter part when the body ends or breaks, so every byte
//! received is kept and the answered offset is what is durable. With a
//! checksum, parts are stored but recorded only once the whole body matched,
//! in one compare-and-set; on a mismatch their objects are deleted.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use reel_model::uploads::{UploadId, UploadPart};
use reel_model::Uploads as _;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::tus::TusError;
use crate::UploadState;

/// How long a body may send nothing before the request is ended.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// The object key of part `number` of an upload.
pub(crate) fn part_key(id: &UploadId, number: u32) -> ObjectPath {
    ObjectPath::from(format!("uploads/{id}/parts/{number:06}"))
}

/// Deletes every object under `uploads/{id}/`, recorded or not.
pub(crate) async fn delete_upload_objects(
    objects: &dyn ObjectStore,
    id: &UploadId,
) -> Result<usize, object_store::Error> {
    let prefix = ObjectPath::from(format!("uploads/{id}"));
    let locations: Vec<ObjectPath> = objects
        .list(Some(&prefix))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await?;
    let mut n_deleted = 0;
    for location in locations {
        match objects.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => n_deleted += 1,
            Err(error) => return Err(error),
        }
    }
    Ok(n_deleted)
}

/// A request's lease on one or more uploads (a final concatenation holds
/// its partials too). Release it with [`UploadLock::release`]; a lock that is
/// dropped instead simply expires.
pub(crate) struct UploadLock {
    ids: Vec<UploadId>,
    holder: String,
    lease: Duration,
    renewed_at: Instant,
}

impl UploadLock {
    /// Takes the lease of every upload in `ids`, `None` (holding nothing) if
    /// another request holds any of them.
    pub(crate) async fn acquire(
        state: &UploadState,
        ids: &[UploadId],
    ) -> Result<Option<UploadLock>, TusError> {
        let mut lock = UploadLock {
            ids: Vec::new(),
            holder: UploadId::new_random().to_string(),
            lease: state.settings.lock_lease,
            renewed_at: Instant::now(),
        };
        for id in ids {
            if !state
                .store
                .lock_upload(id, &lock.holder, lock.lease)
                .await?
            {
                lock.release(state).await?;
                return Ok(None);
            }
            lock.ids.push(id.clone());
        }
        Ok(Some(lock))
    }

    /// Adds `id` (just created, so free) to the lease.
    pub(crate) async fn extend_to(
        &mut self,
        state: &UploadState,
        id: &UploadId,
    ) -> Result<(), TusError> {
        if !state
            .store
            .lock_upload(id, &self.holder, self.lease)
            .await?
        {
            return Err(TusError::Locked(format!(
                "upload {id} is being written by another request; retry shortly"
            )));
        }
        self.ids.push(id.clone());
        Ok(())
    }

    /// Renews the lease if a third of it has passed; fails if it was lost.
    pub(crate) async fn keep_alive(&mut self, state: &UploadState) -> Result<(), TusError> {
        if self.renewed_at.elapsed() < self.lease / 3 {
            return Ok(());
        }
        for id in &self.ids {
            if !state
                .store
                .lock_upload(id, &self.holder, self.lease)
                .await?
            {
                return Err(TusError::Locked(format!(
                    "upload {id} was taken over by another request while this one was writing; resume from the offset HEAD reports"
                )));
            }
        }
        self.renewed_at = Instant::now();
        Ok(())
    }

    /// Releases the lease.
    pub(crate) async fn release(self, state: &UploadState) -> Result<(), TusError> {
        for id in &self.ids {
            state.store.unlock_upload(id, &self.holder).await?;
        }
        Ok(())
    }
}

/// A checksum the client declared for a whole request body.
#[derive(Clone, Debug)]
pub(crate) enum BodyChecksum {
    Sha1(Vec<u8>),
    Sha256(Vec<u8>),
}

/// Where a body goes.
pub(crate) struct BodyTarget<'a> {
    pub(crate) id: &'a UploadId,
    /// The upload's offset when the request started (already checked).
    pub(crate) start_offset: u64,
    /// The most bytes this body may carry.
    pub(crate) max_bytes: u64,
    /// The number of the first new part.
    pub(crate) first_part_number: u32,
    /// The upload's part size, as recorded at its creation.
    pub(crate) part_size: u64,
    pub(crate) checksum: Option<BodyChecksum>,
}

/// How a body ended.
pub(crate) struct BodyOutcome {
    /// The durable offset afterwards.
    pub(crate) offset: u64,
    /// Why the body could not be taken whole, after storing what it could.
    pub(crate) error: Option<TusError>,
}

enum ChunkHasher {
    Sha1(Sha1),
    Sha256(Sha256),
}

impl ChunkHasher {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            ChunkHasher::Sha1(hasher) => hasher.update(bytes),
            ChunkHasher::Sha256(hasher) => hasher.update(bytes),
        }
    }

    fn matches(self, checksum: &BodyChecksum) -> bool {
        match (self, checksum) {
            (ChunkHasher::Sha1(hasher), BodyChecksum::Sha1(expected)) => {
                hasher.finalize().as_slice() == expected.as_slice()
            }
            (ChunkHasher::Sha256(hasher), BodyChecksum::Sha256(expected)) => {
                hasher.finalize().as_slice() == expected.as_slice()
            }
            _ => false,
        }
    }
}

/// Streams `body` into parts of `target.id`. Errors are returned only when
/// nothing can be said about the offset; a body that breaks or carries too
/// much is reported in [`BodyOutcome::error`] with the offset reached.
pub(crate) async fn write_body<S, E>(
    state: &UploadState,
    lock: &mut UploadLock,
    target: BodyTarget<'_>,
    body: S,
) -> Result<BodyOutcome, TusError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let part_size = usize::try_from(target.part_size.max(1)).unwrap_or(usize::MAX);
    let mut writer = PartWriter {
        id: target.id,
        next_number: target.first_part_number,
        offset: target.start_offset,
        deferred: target.checksum.is_some(),
        unrecorded: Vec::new(),
        buffer: BytesMut::new(),
        part_hasher: Sha256::new(),
    };
    let mut chunk_hasher = target.checksum.as_ref().map(|checksum| match checksum {
        BodyChecksum::Sha1(_) => ChunkHasher::Sha1(Sha1::new()),
        BodyChecksum::Sha256(_) => ChunkHasher::Sha256(Sha256::new()),
    });
    let mut body = body;
    let mut n_received: u64 = 0;
    let mut body_error: Option<TusError> = None;
    loop {
        let frame = match tokio::time::timeout(BODY_IDLE_TIMEOUT, body.next()).await {
            Err(_elapsed) => {
                body_error = Some(TusError::BadRequest(format!(
                    "the request body sent nothing for {BODY_IDLE_TIMEOUT:?}; resume from the offset HEAD reports"
                )));
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                body_error = Some(TusError::BadRequest(format!(
                    "reading the request body failed: {error}; resume from the offset HEAD reports"
                )));
                break;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let frame_len = frame.len() as u64;
        if n_received + frame_len > target.max_bytes {
            body_error = Some(TusError::TooLarge(format!(
                "the body carries more than the {} bytes left in upload {}; bytes past that were discarded",
                target.max_bytes, target.id
            )));
            break;
        }
        n_received += frame_len;
        if let Some(hasher) = chunk_hasher.as_mut() {
            hasher.update(&frame);
        }
        let mut rest = frame;
        while !rest.is_empty() {
            let room = part_size - writer.buffer.len();
            let piece = rest.split_to(room.min(rest.len()));
            writer.part_hasher.update(&piece);
            if writer.buffer.is_empty() {
                let most_left = usize::try_from(target.max_bytes).unwrap_or(usize::MAX);
                writer.buffer.reserve(part_size.min(most_left));
            }
            writer.buffer.extend_from_slice(&piece);
            if writer.buffer.len() == part_size {
                lock.keep_alive(state).await?;
                writer.store_part(state).await?;
            }
        }
        lock.keep_alive(state).await?;
    }

    let checksum_failed = match (&target.checksum, chunk_hasher) {
        (Some(checksum), Some(hasher)) => body_error.is_some() || !hasher.matches(checksum),
        _ => false,
    };
    if checksum_failed {
        // tus checksum extension: the chunk is discarded, offset unchanged.
        writer.discard_unrecorded(state).await?;
        let error = body_error.unwrap_or_else(|| {
            TusError::ChecksumMismatch(format!(
                "the body of this PATCH does not match its Upload-Checksum; it was discarded, upload {} stays at offset {}",
                target.id, target.start_offset
            ))
        });
        return Ok(BodyOutcome {
            offset: target.start_offset,
            error: Some(error),
        });
    }
    if !writer.buffer.is_empty() {
        writer.store_part(state).await?;
    }
    writer.record_unrecorded(state).await?;
    Ok(BodyOutcome {
        offset: writer.offset,
        error: body_error,
    })
}

struct PartWriter<'a> {
    id: &'a UploadId,
    next_number: u32,
    /// The durable (recorded) offset.
    offset: u64,
    /// Whether parts wait for [`PartWriter::record_unrecorded`].
    deferred: bool,
    unrecorded: Vec<UploadPart>,
    buffer: BytesMut,
    part_hasher: Sha256,
}

impl PartWriter<'_> {
    /// Stores the buffer as the next part, and records it unless deferred.
    async fn store_part(&mut self, state: &UploadState) -> Result<(), TusError> {
        let bytes = self.buffer.split().freeze();
        let hasher = std::mem::take(&mut self.part_hasher);
        let part = UploadPart {
            number: self.next_number,
            size: bytes.len() as u64,
            sha256: hex::encode(hasher.finalize()),
        };
        self.next_number = self.next_number.checked_add(1).ok_or_else(|| {
            TusError::BadRequest(format!(
                "upload {} has too many parts; send larger PATCH requests",
                self.id
            ))
        })?;
        state
            .objects
            .put(&part_key(self.id, part.number), PutPayload::from(bytes))
            .await?;
        self.unrecorded.push(part);
        if !self.deferred {
            self.record_unrecorded(state).await?;
        }
        Ok(())
    }

    /// Records the stored parts and advances the offset, if no other writer
    /// advanced it first.
    async fn record_unrecorded(&mut self, state: &UploadState) -> Result<(), TusError> {
        if self.unrecorded.is_empty() {
            return Ok(());
        }
        let added: u64 = self.unrecorded.iter().map(|part| part.size).sum();
        if !state
            .store
            .record_upload_parts(self.id, self.offset, &self.unrecorded)
            .await?
        {
            return Err(TusError::Locked(format!(
                "another request advanced upload {} past offset {} while this one was writing; resume from the offset HEAD reports",
                self.id, self.offset
            )));
        }
        self.offset += added;
        self.unrecorded.clear();
        Ok(())
    }

    /// Deletes the objects of stored but unrecorded parts.
    async fn discard_unrecorded(&mut self, state: &UploadState) -> Result<(), TusError> {
        for part in self.unrecorded.drain(..) {
            match state.objects.delete(&part_key(self.id, part.number)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        self.buffer.clear();
        Ok(())
    }
}
