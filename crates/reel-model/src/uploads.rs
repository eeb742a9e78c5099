//! The `uploads` and `upload_parts` tables: resumable uploads in progress.
//!
//! An upload's bytes live in the object store as numbered parts; this module
//! only records which parts are durable and how many bytes they hold. Two
//! guards make several API processes sharing one database safe:
//!
//! - a lease (`lock_owner`, `lock_until`) taken by compare-and-set, so one
//!   request at a time writes an upload ([`JobStore::lock_upload`]);
//! - the offset itself: parts are recorded only if the offset is still the
//!   one the writer started from ([`JobStore::record_upload_parts`]), so two
//!   writers can never both advance it, even if a lease expired under one.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::RngCore;
use reel_core::{Timestamp, VideoId};
use sqlx::Row;

use reel_jobs::store::{JobStore, StoreError};

/// Identifies an upload: 32 lowercase hex digits, safe in URLs and object keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UploadId(String);

/// The error returned when a string is not a valid upload id.
#[derive(Debug, thiserror::Error)]
#[error("invalid upload id {value:?}: expected 32 lowercase hex digits")]
pub struct ParseUploadIdError {
    value: String,
}

/// The wire protocol an upload was created with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadProtocol {
    /// tus 1.0 (`/files`).
    Tus,
    /// S3-style multipart with presigned part URLs.
    Multipart,
}

/// The tus concatenation role of an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadConcat {
    /// A part of a later final upload; completing it creates no video.
    Partial,
    /// The concatenation of these partial uploads, in order.
    Final(Vec<UploadId>),
}

/// Where an upload is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadStatus {
    /// Accepting bytes.
    Open,
    /// Every byte is stored and its parts are being assembled into a video
    /// source; a crashed completion is resumed from here.
    Completing,
    /// Assembled; the upload's video exists.
    Complete,
    /// Expired or failed; its parts are gone.
    Aborted,
}

/// An upload about to be recorded.
#[derive(Clone, Debug)]
pub struct NewUpload {
    /// Its id.
    pub id: UploadId,
    /// The id of the API key that created it (ownership is a key id, never a name).
    pub owner: String,
    /// The protocol it speaks.
    pub protocol: UploadProtocol,
    /// Its total size, `None` while deferred.
    pub length: Option<u64>,
    /// Bytes already stored at creation: 0, or the total of the partials of
    /// a final concatenation (which has no parts of its own).
    pub offset: u64,
    /// The size of each stored part but the last of a request.
    pub part_size: u64,
    /// The SHA-256 (hex) the client declared for the whole upload.
    pub declared_sha256: Option<String>,
    /// The client's file name, empty if none.
    pub filename: String,
    /// Client metadata, a JSON object of strings.
    pub metadata: serde_json::Value,
    /// Its concatenation role, if any.
    pub concat: Option<UploadConcat>,
    /// When it expires unless complete.
    pub expires_at: Timestamp,
}

/// A recorded upload.
#[derive(Clone, Debug)]
pub struct UploadRow {
    /// Its id.
    pub id: UploadId,
    /// The id of the API key that created it (ownership is a key id, never a name).
    pub owner: String,
    /// The protocol it speaks.
    pub protocol: UploadProtocol,
    /// Its total size, `None` while deferred.
    pub length: Option<u64>,
    /// Bytes durably stored.
    pub offset: u64,
    /// The size of each stored part but the last of a request.
    pub part_size: u64,
    /// The SHA-256 (hex) the client declared for the whole upload.
    pub declared_sha256: Option<String>,
    /// The client's file name, empty if none.
    pub filename: String,
    /// Client metadata, a JSON object of strings.
    pub metadata: serde_json::Value,
    /// Its concatenation role, if any.
    pub concat: Option<UploadConcat>,
    /// Where it is in its life.
    pub status: UploadStatus,
    /// Creation time.
    pub created_at: Timestamp,
    /// When it expires unless complete.
    pub expires_at: Timestamp,
    /// Who holds its lease, and until when (possibly already past).
    pub lease: Option<(String, Timestamp)>,
    /// The video its bytes became (set when completion starts).
    pub video_id: Option<VideoId>,
    /// Why its last completion failed, or why it was aborted.
    pub error: Option<String>,
}

/// One durably stored part of an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadPart {
    /// Its position, from 1.
    pub number: u32,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
}

impl UploadId {
    /// A new random id.
    pub fn new_random() -> Self {
        let mut random = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut random);
        Self(hex::encode(random))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for UploadId {
    type Err = ParseUploadIdError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let valid = value.len() == 32
            && value
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        if !valid {
            return Err(ParseUploadIdError {
                value: value.chars().take(64).collect(),
            });
        }
        Ok(Self(value.to_string()))
    }
}

impl UploadProtocol {
    fn as_str(self) -> &'static str {
        match self {
            UploadProtocol::Tus => "tus",
            UploadProtocol::Multipart => "multipart",
        }
    }
}

impl UploadConcat {
    fn to_column(&self) -> String {
        match self {
            UploadConcat::Partial => "partial".to_string(),
            UploadConcat::Final(partials) => serde_json::Value::from(
                partials
                    .iter()
                    .map(|id| id.as_str().to_string())
                    .collect::<Vec<_>>(),
            )
            .to_string(),
        }
    }
}

fn to_db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_db(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The `uploads` and `upload_parts` tables, on the engine's database.
pub trait Uploads: Sync {
    /// The engine store whose pool holds the tables.
    fn jobs(&self) -> &JobStore;

    /// Bytes an API key holds: its videos' sources plus its unfinished
    /// uploads' declared lengths, or what arrived of an upload whose length
    /// is deferred (for the per-key quota).
    fn bytes_used_by(
        &self,
        owner: &str,
    ) -> impl std::future::Future<Output = Result<u64, StoreError>> + Send {
        async move {
            let videos: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(source_size), 0) AS BIGINT) FROM videos WHERE owner = $1",
            )
            .bind(owner)
            .fetch_one(self.jobs().pool())
            .await?;
            let uploads: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(COALESCE(length, upload_offset)), 0) AS BIGINT) FROM uploads WHERE owner = $1 AND state IN ('open', 'completing')")
                .bind(owner)
                .fetch_one(self.jobs().pool())
                .await?;
            Ok(u64::try_from(videos.max(0)).unwrap_or(0)
                + u64::try_from(uploads.max(0)).unwrap_or(0))
        }
    }

    /// Why `length` more bytes would take `owner` past `quota` (None: within it, or no quota).
    fn quota_excess(
        &self,
        owner: &str,
        quota: Option<u64>,
        length: u64,
    ) -> impl std::future::Future<Output = Result<Option<String>, StoreError>> + Send {
        async move {
            let Some(quota) = quota else {
                return Ok(None);
            };
            let used = self.bytes_used_by(owner).await?;
            Ok((used.saturating_add(length) > quota).then(|| {
                format!(
                    "key {owner:?} holds {used} bytes; {length} more would pass its quota of {quota} bytes: delete videos or raise limits.quota_per_key"
                )
            }))
        }
    }

    /// Records a new open upload.
    fn create_upload(
        &self,
        upload: &NewUpload,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send {
        async move {
            sqlx::query("INSERT INTO uploads (id, owner, protocol, length, upload_offset, part_size, declared_sha256, filename, metadata, concat, state, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', $11, $12)")
                .bind(upload.id.as_str())
                .bind(&upload.owner)
                .bind(upload.protocol.as_str())
                .bind(upload.length.map(to_db))
                .bind(to_db(upload.offset))
                .bind(to_db(upload.part_size))
                .bind(&upload.declared_sha256)
                .bind(&upload.filename)
                .bind(upload.metadata.to_string())
                .bind(upload.concat.as_ref().map(UploadConcat::to_column))
                .bind(Timestamp::now().as_micros())
                .bind(upload.expires_at.as_micros())
                .execute(self.jobs().pool())
                .await?;
            Ok(())
        }
    }

    /// One upload, if it exists.
    fn upload(
        &self,
        id: &UploadId,
    ) -> impl std::future::Future<Output = Result<Option<UploadRow>, StoreError>> + Send {
        async move {
            let row = sqlx::query("SELECT * FROM uploads WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(self.jobs().pool())
                .await?;
            row.as_ref().map(upload_from_row).transpose()
        }
    }

    /// Takes or renews the upload's lease for `holder` until `lease` from
    /// now; false if another holder's lease is still running (or no such
    /// upload exists).
    fn lock_upload(
        &self,
        id: &UploadId,
        holder: &str,
        lease: Duration,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send {
        async move {
            let now = Timestamp::now();
            let result = sqlx::query("UPDATE uploads SET lock_owner = $1, lock_until = $2 WHERE id = $3 AND (lock_owner IS NULL OR lock_until < $4 OR lock_owner = $1)")
                .bind(holder)
                .bind(now.plus(lease).as_micros())
                .bind(id.as_str())
                .bind(now.as_micros())
                .execute(self.jobs().pool())
                .await?;
            Ok(result.rows_affected() == 1)
        }
    }

    /// Releases the lease if `holder` still has it.
    fn unlock_upload(
        &self,
        id: &UploadId,
        holder: &str,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send {
        async move {
            sqlx::query("UPDATE uploads SET lock_owner = NULL, lock_until = NULL WHERE id = $1 AND lock_owner = $2")
                .bind(id.as_str())
                .bind(holder)
                .execute(self.jobs().pool())
                .await?;
            Ok(())
        }
    }

    /// Records `parts` (numbered after the upload's existing parts) and
    /// advances the offset by their total, in one transaction, if the upload
    /// is open, its offset is still `expected_offset` and the new offset does
    /// not pass its length. False (and nothing recorded) otherwise: another
    /// writer got there first.
    fn record_upload_parts(
        &self,
        id: &UploadId,
        expected_offset: u64,
        parts: &[UploadPart],
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send {
        async move {
            let added: u64 = parts.iter().map(|part| part.size).sum();
            let new_offset = expected_offset.saturating_add(added);
            let now = Timestamp::now().as_micros();
            let mut tx = self.jobs().pool().begin().await?;
            // The guarded write comes first: on SQLite it takes the write lock
            // before the transaction reads anything, so it cannot fail on a
            // stale snapshot.
            let advanced = sqlx::query("UPDATE uploads SET upload_offset = $1 WHERE id = $2 AND upload_offset = $3 AND state = 'open' AND (length IS NULL OR length >= $1)")
                .bind(to_db(new_offset))
                .bind(id.as_str())
                .bind(to_db(expected_offset))
                .execute(&mut *tx)
                .await?;
            if advanced.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            for part in parts {
                sqlx::query("INSERT INTO upload_parts (upload_id, part_number, size, sha256, created_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(id.as_str())
                    .bind(i64::from(part.number))
                    .bind(to_db(part.size))
                    .bind(&part.sha256)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        }
    }

    /// The upload's recorded parts, in order.
    fn upload_parts(
        &self,
        id: &UploadId,
    ) -> impl std::future::Future<Output = Result<Vec<UploadPart>, StoreError>> + Send {
        async move {
            let rows = sqlx::query("SELECT part_number, size, sha256 FROM upload_parts WHERE upload_id = $1 ORDER BY part_number")
                .bind(id.as_str())
                .fetch_all(self.jobs().pool())
                .await?;
            rows.iter()
                .map(|row| {
                    let number: i64 = row.try_get("part_number")?;
                    Ok(UploadPart {
                        number: u32::try_from(number).map_err(|_| StoreError::Corrupt {
                            table: "upload_parts",
                            detail: format!("part number {number} of upload {id} is out of range"),
                        })?,
                        size: from_db(row.try_get("size")?),
                        sha256: row.try_get("sha256")?,
                    })
                })
                .collect()
        }
    }

    /// Sets a deferred length; false if the length is already known, the
    /// upload is not open, or more than `length` bytes are already stored.
    fn set_upload_length(
        &self,
        id: &UploadId,
        length: u64,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send {
        async move {
            let result = sqlx::query("UPDATE uploads SET length = $1 WHERE id = $2 AND length IS NULL AND state = 'open' AND upload_offset <= $1")
                .bind(to_db(length))
                .bind(id.as_str())
                .execute(self.jobs().pool())
                .await?;
            Ok(result.rows_affected() == 1)
        }
    }

    /// Moves a fully stored upload to `completing` and returns the video id
    /// its completion must use: one chosen by an earlier, interrupted
    /// completion if any, else `video_id`. `None` if the upload is not open
    /// or completing, or not every byte is stored.
    fn begin_upload_completion(
        &self,
        id: &UploadId,
        video_id: VideoId,
    ) -> impl std::future::Future<Output = Result<Option<VideoId>, StoreError>> + Send {
        async move {
            let result = sqlx::query("UPDATE uploads SET state = 'completing', video_id = COALESCE(video_id, $1) WHERE id = $2 AND state IN ('open', 'completing') AND length IS NOT NULL AND upload_offset = length")
                .bind(video_id.to_string())
                .bind(id.as_str())
                .execute(self.jobs().pool())
                .await?;
            if result.rows_affected() != 1 {
                return Ok(None);
            }
            match self.upload(id).await? {
                Some(row) => Ok(row.video_id),
                None => Ok(None),
            }
        }
    }

    /// Marks a completing upload complete and forgets its parts.
    fn complete_upload(
        &self,
        id: &UploadId,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send {
        async move {
            let mut tx = self.jobs().pool().begin().await?;
            let result = sqlx::query("UPDATE uploads SET state = 'complete', error = NULL WHERE id = $1 AND state = 'completing'")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM upload_parts WHERE upload_id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(result.rows_affected() == 1)
        }
    }

    /// Returns a completing upload to `open` after a completion failed for
    /// a reason a retry may fix, recording why.
    fn reopen_upload(
        &self,
        id: &UploadId,
        error: &str,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send {
        async move {
            let result = sqlx::query(
                "UPDATE uploads SET state = 'open', error = $1 WHERE id = $2 AND state = 'completing'",
            )
            .bind(error)
            .bind(id.as_str())
            .execute(self.jobs().pool())
            .await?;
            Ok(result.rows_affected() == 1)
        }
    }

    /// Aborts an open or completing upload, recording why, and forgets its
    /// parts (the caller deletes their objects).
    fn abort_upload(
        &self,
        id: &UploadId,
        error: &str,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send {
        async move {
            let mut tx = self.jobs().pool().begin().await?;
            let result = sqlx::query("UPDATE uploads SET state = 'aborted', error = $1 WHERE id = $2 AND state IN ('open', 'completing')")
                .bind(error)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM upload_parts WHERE upload_id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(result.rows_affected() == 1)
        }
    }

    /// Up to `limit` open or completing uploads whose expiry is before `now`,
    /// oldest first.
    fn expired_uploads(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> impl std::future::Future<Output = Result<Vec<UploadRow>, StoreError>> + Send {
        async move {
            let rows = sqlx::query("SELECT * FROM uploads WHERE state IN ('open', 'completing') AND expires_at < $1 ORDER BY expires_at LIMIT $2")
                .bind(now.as_micros())
                .bind(limit)
                .fetch_all(self.jobs().pool())
                .await?;
            rows.iter().map(upload_from_row).collect()
        }
    }

    /// Removes an upload and its parts' rows; returns whether it existed.
    fn delete_upload(
        &self,
        id: &UploadId,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send {
        async move {
            let mut tx = self.jobs().pool().begin().await?;
            let result = sqlx::query("DELETE FROM uploads WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM upload_parts WHERE upload_id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(result.rows_affected() == 1)
        }
    }
}

impl Uploads for JobStore {
    fn jobs(&self) -> &JobStore {
        self
    }
}

fn upload_from_row(row: &sqlx::any::AnyRow) -> Result<UploadRow, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        table: "uploads",
        detail,
    };
    let id_text: String = row.try_get("id")?;
    let id: UploadId = id_text
        .parse()
        .map_err(|error: ParseUploadIdError| corrupt(error.to_string()))?;
    let protocol = match row.try_get::<String, _>("protocol")?.as_str() {
        "tus" => UploadProtocol::Tus,
        "multipart" => UploadProtocol::Multipart,
        other => {
            return Err(corrupt(format!(
                "unknown protocol {other:?} of upload {id}"
            )))
        }
    };
    let status = match row.try_get::<String, _>("state")?.as_str() {
        "open" => UploadStatus::Open,
        "completing" => UploadStatus::Completing,
        "complete" => UploadStatus::Complete,
        "aborted" => UploadStatus::Aborted,
        other => return Err(corrupt(format!("unknown state {other:?} of upload {id}"))),
    };
    let concat = match row.try_get::<Option<String>, _>("concat")? {
        None => None,
        Some(text) if text == "partial" => Some(UploadConcat::Partial),
        Some(text) => {
            let ids: Vec<String> = serde_json::from_str(&text)
                .map_err(|error| corrupt(format!("concat of upload {id}: {error}")))?;
            let partials = ids
                .iter()
                .map(|partial| partial.parse())
                .collect::<Result<Vec<UploadId>, _>>()
                .map_err(|error| corrupt(format!("concat of upload {id}: {error}")))?;
            Some(UploadConcat::Final(partials))
        }
    };
    let metadata_text: String = row.try_get("metadata")?;
    let metadata = serde_json::from_str(&metadata_text)
        .map_err(|error| corrupt(format!("metadata of upload {id}: {error}")))?;
    let video_id = match row.try_get::<Option<String>, _>("video_id")? {
        None => None,
        Some(text) => Some(
            text.parse()
                .map_err(|error: reel_core::ParseIdError| corrupt(error.to_string()))?,
        ),
    };
    let lock_owner: Option<String> = row.try_get("lock_owner")?;
    let lock_until: Option<i64> = row.try_get("lock_until")?;
    Ok(UploadRow {
        owner: row.try_get("owner")?,
        protocol,
        length: row.try_get::<Option<i64>, _>("length")?.map(from_db),
        offset: from_db(row.try_get("upload_offset")?),
        part_size: from_db(row.try_get("part_size")?),
        declared_sha256: row.try_get("declared_sha256")?,
        filename: row.try_get("filename")?,
        metadata,
        concat,
        status,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
        expires_at: Timestamp::from_micros(row.try_get("expires_at")?),
        lease: lock_owner.zip(lock_until.map(Timestamp::from_micros)),
        video_id,
        error: row.try_get("error")?,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_id(text: &str, valid: bool) {
        assert_eq!(text.parse::<UploadId>().is_ok(), valid, "{text:?}");
    }

    #[test]
    fn upload_ids_are_32_lowercase_hex_digits() {
        check_id(UploadId::new_random().as_str(), true);
        check_id("0123456789abcdef0123456789abcdef", true);
        check_id("0123456789ABCDEF0123456789abcdef", false);
        check_id("0123456789abcdef0123456789abcde", false);
        check_id("../3456789abcdef0123456789abcdef", false);
        check_id("", false);
    }

    #[test]
    fn concat_column_round_trips_through_json() {
        let id = UploadId::new_random();
        let column = UploadConcat::Final(vec![id.clone()]).to_column();
        assert_eq!(column, format!("[\"{id}\"]"));
        assert_eq!(UploadConcat::Partial.to_column(), "partial");
    }
}
