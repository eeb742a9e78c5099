//! The `videos` table: one row per uploaded title.
//!
//! A video's processing state is its job's state; this table holds what
//! outlives or precedes the job: title, source object, owner. Deleting a
//! video removes its row (its job is cancelled and its objects removed by the
//! caller). Videos are created with [`crate::create_video`], together
//! with their job.

use reel_core::{JobId, Timestamp, VideoId};
use serde::Serialize;
use sqlx::Row;

use reel_jobs::store::{JobStore, StoreError};

/// A video row.
#[derive(Clone, Debug, Serialize)]
pub struct VideoRow {
    /// The video id.
    pub id: VideoId,
    /// Its title.
    pub title: String,
    /// The key of its source object.
    pub source_key: String,
    /// The source's size in bytes.
    pub source_size: u64,
    /// The source's SHA-256, hex.
    pub source_sha256: String,
    /// The job that processes it.
    pub job_id: Option<JobId>,
    /// The API key id that created it.
    pub owner: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A video about to be recorded.
#[derive(Clone, Debug)]
pub struct NewVideo {
    /// The id (chosen before the source is stored, since it names the source).
    pub id: VideoId,
    /// Its title.
    pub title: String,
    /// The key of its source object.
    pub source_key: String,
    /// The source's size in bytes.
    pub source_size: u64,
    /// The source's SHA-256, hex.
    pub source_sha256: String,
    /// The API key id that created it.
    pub owner: Option<String>,
    /// Who may list and play it, recorded with the row (a private video is
    /// never public for a moment).
    pub visibility: crate::Visibility,
}

/// The `videos` table, on the engine's database.
pub trait Videos: Sync {
    /// The engine store whose pool holds the tables.
    fn jobs(&self) -> &JobStore;

    /// One video, if it exists.
    fn video(
        &self,
        id: VideoId,
    ) -> impl std::future::Future<Output = Result<Option<VideoRow>, StoreError>> + Send {
        async move {
            let row = sqlx::query("SELECT id, title, source_key, source_size, source_sha256, job_id, owner, created_at FROM videos WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(self.jobs().pool())
                .await?;
            row.as_ref().map(video_from_row).transpose()
        }
    }

    /// The newest videos.
    fn list_videos(
        &self,
        limit: i64,
    ) -> impl std::future::Future<Output = Result<Vec<VideoRow>, StoreError>> + Send {
        async move {
            let rows = sqlx::query("SELECT id, title, source_key, source_size, source_sha256, job_id, owner, created_at FROM videos ORDER BY created_at DESC LIMIT $1")
                .bind(limit)
                .fetch_all(self.jobs().pool())
                .await?;
            rows.iter().map(video_from_row).collect()
        }
    }

    /// The newest videos of `owner` (a key id).
    fn list_videos_owned(
        &self,
        owner: &str,
        limit: i64,
    ) -> impl std::future::Future<Output = Result<Vec<VideoRow>, StoreError>> + Send {
        async move {
            let rows = sqlx::query(
                "SELECT id, title, source_key, source_size, source_sha256, job_id, owner, created_at FROM videos WHERE owner = $1 ORDER BY created_at DESC LIMIT $2",
            )
            .bind(owner)
            .bind(limit)
            .fetch_all(self.jobs().pool())
            .await?;
            rows.iter().map(video_from_row).collect()
        }
    }

    /// The video a job processes, if it is a video job.
    fn video_of_job(
        &self,
        job_id: JobId,
    ) -> impl std::future::Future<Output = Result<Option<VideoRow>, StoreError>> + Send {
        async move {
            let row = sqlx::query("SELECT id, title, source_key, source_size, source_sha256, job_id, owner, created_at FROM videos WHERE job_id = $1")
                .bind(job_id.to_string())
                .fetch_optional(self.jobs().pool())
                .await?;
            row.as_ref().map(video_from_row).transpose()
        }
    }

    /// Records that `id` lasts `millis` if its owner's other videos leave
    /// room for it within `budget_millis`; otherwise records nothing and
    /// says what the others already take.
    fn reserve_media_millis(
        &self,
        id: VideoId,
        millis: i64,
        budget_millis: i64,
    ) -> impl std::future::Future<Output = Result<MediaReservation, StoreError>> + Send {
        async move {
            // One statement, so two probes of one owner cannot both pass on
            // the same remainder (the row lock or SQLite's write lock orders them).
            let updated = sqlx::query(
                "UPDATE videos SET media_millis = $1 WHERE id = $2 AND $1 + (SELECT CAST(COALESCE(SUM(other.media_millis), 0) AS BIGINT) FROM videos other WHERE other.owner = videos.owner AND other.id <> $2) <= $3",
            )
            .bind(millis)
            .bind(id.to_string())
            .bind(budget_millis)
            .execute(self.jobs().pool())
            .await?;
            if updated.rows_affected() > 0 {
                return Ok(MediaReservation::Reserved);
            }
            let owner: Option<String> =
                sqlx::query_scalar("SELECT owner FROM videos WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(self.jobs().pool())
                    .await?;
            let Some(owner) = owner else {
                return Ok(MediaReservation::Missing);
            };
            let used: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(media_millis), 0) AS BIGINT) FROM videos WHERE owner = $1 AND id <> $2",
            )
            .bind(owner)
            .bind(id.to_string())
            .fetch_one(self.jobs().pool())
            .await?;
            Ok(MediaReservation::Refused { used_millis: used })
        }
    }

    /// Removes a video's row; returns whether it existed.
    fn delete_video(
        &self,
        id: VideoId,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send {
        async move {
            let result = sqlx::query("DELETE FROM videos WHERE id = $1")
                .bind(id.to_string())
                .execute(self.jobs().pool())
                .await?;
            Ok(result.rows_affected() > 0)
        }
    }
}

/// What [`Videos::reserve_media_millis`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaReservation {
    /// The video's duration is recorded against its owner's budget.
    Reserved,
    /// The owner's other videos take `used_millis`, leaving too little.
    Refused {
        /// What the owner's other videos take.
        used_millis: i64,
    },
    /// No such video (deleted meanwhile).
    Missing,
}

impl Videos for JobStore {
    fn jobs(&self) -> &JobStore {
        self
    }
}

fn video_from_row(row: &sqlx::any::AnyRow) -> Result<VideoRow, StoreError> {
    let id: String = row.try_get("id")?;
    let job_id: Option<String> = row.try_get("job_id")?;
    let corrupt = |what: &str, text: &str| StoreError::Corrupt {
        table: "videos",
        detail: format!("{what} {text:?} is not an id"),
    };
    Ok(VideoRow {
        id: id.parse().map_err(|_| corrupt("id", &id))?,
        title: row.try_get("title")?,
        source_key: row.try_get("source_key")?,
        source_size: u64::try_from(row.try_get::<i64, _>("source_size")?).unwrap_or(0),
        source_sha256: row.try_get("source_sha256")?,
        job_id: match job_id {
            Some(text) => Some(text.parse().map_err(|_| corrupt("job_id", &text))?),
            None => None,
        },
        owner: row.try_get("owner")?,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
    })
}
