//! reel's resumable uploads: a tus 1.0 server over any object store.
//!
//! An upload is a row in the database (`reel_model::uploads`) plus numbered
//! part objects `uploads/{id}/parts/{n:06}` in the object store. The tus
//! server ([`tus_router`]) streams each PATCH body into parts of
//! [`UploadSettings::part_size`], persisting a short tail as its own part
//! when the request ends, so the offset it answers is always the number of
//! bytes durably stored. Parts are plain objects, so this works on every
//! object store, including the local file system, which has no part-level
//! multipart API.
//!
//! When the offset reaches the length, completion concatenates the parts in
//! order into the video's source object, hashing on the way, creates the
//! video and its processing job, and deletes the parts, all before the last
//! PATCH is answered. [`reap_expired`] aborts uploads that expired and
//! removes their parts.
//!
//! Concurrency: every write of an upload happens under a lease in the
//! database (so several API processes sharing one database exclude each
//! other), and parts are recorded by compare-and-set on the offset (so two
//! writers can never both advance it, even if a lease expired under one).
#![deny(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use reel_jobs::store::{JobStore, StoreError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod complete;
mod parts;
mod reaper;
mod tus;

/// The part size used unless configured: 8 MiB.
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;

/// How long an unfinished upload lives unless configured: 24 hours.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// How long a request's lease on an upload lasts without renewal unless
/// configured. Writers renew it while they work, so it only bounds how long
/// an upload stays locked after its writer's process died.
pub const DEFAULT_LOCK_LEASE: Duration = Duration::from_secs(30);

/// What the upload services share.
#[derive(Clone, Debug)]
pub struct UploadState {
    /// The database: uploads, videos, jobs and API keys.
    pub store: JobStore,
    /// Where parts and video sources are stored.
    pub objects: Arc<dyn ObjectStore>,
    /// Limits and timings.
    pub settings: UploadSettings,
}

/// Limits and timings of the upload services.
#[derive(Clone, Debug)]
pub struct UploadSettings {
    /// The largest upload accepted, in bytes (`Tus-Max-Size`).
    pub max_upload_bytes: u64,
    /// The size of each stored part but the last of a request; also the
    /// most a request buffers in memory. Values below 1 are treated as 1.
    pub part_size: u64,
    /// How long an unfinished upload lives after its creation.
    pub expiry: Duration,
    /// How long a request's lease on an upload lasts without renewal.
    pub lock_lease: Duration,
    /// The most bytes one API key may hold (videos plus unfinished uploads).
    pub quota_per_key: Option<u64>,
}

/// Errors of the reaper.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The database failed.
    #[error("upload store: {0}")]
    Store(#[from] StoreError),
    /// The object store failed.
    #[error("object store: {0}")]
    Objects(#[from] object_store::Error),
}

/// The tus 1.0 server, to be nested at `/files` with
/// `Router::nest_service("/files", tus_router(state))`: uploads are created
/// with `POST /files/` (or `/files`) and live at `/files/{id}`. (Plain
/// `Router::nest` would not route `/files/`, the endpoint tus clients are
/// usually given.) Every request but OPTIONS needs an authenticated caller:
/// the router does not read credentials itself; whoever mounts it puts a
/// [`reel_model::Caller`] in each request's extensions (reel-api does, from a
/// bearer key or a session cookie). A request without one is anonymous.
pub fn tus_router(state: UploadState) -> axum::Router {
    tus::router(state)
}

/// Aborts every open upload whose expiry has passed and deletes its part
/// objects; returns how many it aborted. Uploads another request holds the
/// lease of are left for the next round.
pub async fn reap_expired(state: &UploadState) -> Result<usize, UploadError> {
    reaper::reap_expired(state).await
}

/// Runs [`reap_expired`] every `interval` until `shutdown` is cancelled.
pub fn spawn_reaper(
    state: UploadState,
    interval: Duration,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(reaper::run_reaper(state, interval, shutdown))
}
