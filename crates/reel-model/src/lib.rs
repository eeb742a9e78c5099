//! reel's product model: the `videos`, `uploads`, `api_keys` and `sessions`
//! tables, in the engine's database but not the engine's business.
//!
//! The engine (`reel_jobs`) runs jobs and knows nothing of what they are
//! for. This crate records what the product needs around them: who holds
//! which key ([`keys`]), who uploaded what ([`uploads`], [`videos`]), and
//! creates a video together with its job in one transaction
//! ([`create_video`]), so that no failure leaves a video without a job or a
//! job without its video.
//!
//! The tables are reached through extension traits on the engine's store
//! ([`videos::Videos`], [`uploads::Uploads`]): one pool, one database.
//! Their migrations are this crate's own (versions from 1000 on, beside the
//! engine's in `_sqlx_migrations`); [`connect`] applies both sets.
#![deny(missing_docs)]

pub mod caller;
pub mod keys;
pub mod uploads;
pub mod videos;
pub mod visibility;

use reel_core::{JobId, Timestamp};
use reel_jobs::store::{create_job_in, JobStore, NewJob, StoreError};

pub use caller::{Caller, Principal, Role};
pub use uploads::Uploads;
pub use videos::{NewVideo, VideoRow, Videos};
pub use visibility::{Visibilities, Visibility};

/// The product's migrations: versions 1000 on. The engine's versions in the
/// same `_sqlx_migrations` table are not this crate's, so they are ignored.
fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// Applies the product's migrations to the engine's database (idempotent:
/// databases made before the split already have the tables).
pub async fn migrate(store: &JobStore) -> Result<(), StoreError> {
    migrator().run(store.pool()).await?;
    Ok(())
}

/// Connects to `url` like [`JobStore::connect`] and applies the engine's
/// and then the product's migrations.
pub async fn connect(url: &str, max_connections: u32) -> Result<JobStore, StoreError> {
    let store = JobStore::connect(url, max_connections).await?;
    migrate(&store).await?;
    Ok(store)
}

/// Records `video` and creates `job`, the job that processes it, in one
/// transaction: either both exist afterwards or neither does. Returns the
/// job's id.
pub async fn create_video(
    store: &JobStore,
    video: &NewVideo,
    job: NewJob,
) -> Result<JobId, StoreError> {
    let mut tx = store.begin().await?;
    sqlx::query("INSERT INTO videos (id, title, state, source_key, job_id, created_at, source_size, source_sha256, owner, visibility) VALUES ($1, $2, 'active', $3, NULL, $4, $5, $6, $7, $8)")
        .bind(video.id.to_string())
        .bind(&video.title)
        .bind(&video.source_key)
        .bind(Timestamp::now().as_micros())
        .bind(i64::try_from(video.source_size).unwrap_or(i64::MAX))
        .bind(&video.source_sha256)
        .bind(&video.owner)
        .bind(video.visibility.as_str())
        .execute(&mut *tx.connection())
        .await?;
    let job_id = create_job_in(&mut tx, job).await?;
    sqlx::query("UPDATE videos SET job_id = $1 WHERE id = $2")
        .bind(job_id.to_string())
        .bind(video.id.to_string())
        .execute(&mut *tx.connection())
        .await?;
    tx.commit().await?;
    Ok(job_id)
}
