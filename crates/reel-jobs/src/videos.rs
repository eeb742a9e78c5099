//! The `videos` table: one row per uploaded title.
//!
//! A video's processing state is its job's state; this table holds what
//! outlives or precedes the job: title, source object, owner. Deleting a
//! video removes its row (its job is cancelled and its objects removed by the
//! caller).

use reel_core::{JobId, Timestamp, VideoId};
use serde::Serialize;
use sqlx::Row;

use crate::store::{JobStore, StoreError};

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
}

impl JobStore {
    /// Records a video and the job that processes it.
    pub async fn insert_video(&self, video: &NewVideo, job_id: JobId) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO videos (id, title, state, source_key, job_id, created_at, source_size, source_sha256, owner) VALUES ($1, $2, 'active', $3, $4, $5, $6, $7, $8)")
            .bind(video.id.to_string())
            .bind(&video.title)
            .bind(&video.source_key)
            .bind(job_id.to_string())
            .bind(Timestamp::now().as_micros())
            .bind(i64::try_from(video.source_size).unwrap_or(i64::MAX))
            .bind(&video.source_sha256)
            .bind(&video.owner)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// One video, if it exists.
    pub async fn video(&self, id: VideoId) -> Result<Option<VideoRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM videos WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(video_from_row).transpose()
    }

    /// The newest videos.
    pub async fn list_videos(&self, limit: i64) -> Result<Vec<VideoRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM videos ORDER BY created_at DESC LIMIT $1")
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(video_from_row).collect()
    }

    /// Removes a video's row; returns whether it existed.
    pub async fn delete_video(&self, id: VideoId) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM videos WHERE id = $1")
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected() > 0)
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
