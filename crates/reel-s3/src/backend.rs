//! One face for multipart uploads, whichever store takes the bytes: the
//! embedded endpoint over reel's own store, or a real S3-compatible store.

use std::time::Duration;

use axum::http::Method;
use url::Url;

use crate::handlers::{self, OperationError, StoredPart, WholeChecksum};
use crate::remote::RemoteS3;
use crate::S3State;

/// Where presigned multipart uploads go.
#[derive(Clone)]
pub enum MultipartStore {
    /// The embedded endpoint (local storage), mounted by the API server.
    Embedded(S3State),
    /// A real S3-compatible store (`storage = "s3://…"`).
    Remote(RemoteS3),
}

/// A completed upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed {
    /// The object's multipart ETag.
    pub etag: String,
    /// Hex SHA-256 of the object when the store computed it on the way
    /// (the embedded endpoint does, for uploads started with
    /// [`WholeChecksum::Sha256`]); `None` otherwise.
    pub sha256: Option<String>,
    /// The full-object CRC64NVME combined from the part CRCs (the embedded
    /// endpoint); `None` for a real store, whose object the caller reads
    /// back to check.
    pub crc64nvme: Option<u64>,
}

impl MultipartStore {
    /// Starts an upload of `key`; `layout` is `(part_size, total_size)` when
    /// the size is known (the embedded endpoint then fixes the part layout).
    /// `whole` says whether the embedded endpoint computes the whole
    /// object's SHA-256 too.
    pub async fn start_upload(
        &self,
        key: &str,
        layout: Option<(u64, u64)>,
        whole: WholeChecksum,
    ) -> Result<String, OperationError> {
        match (self, layout) {
            (MultipartStore::Embedded(state), Some((part_size, total))) => {
                handlers::start_upload_sized(state, key, part_size, total, whole).await
            }
            (MultipartStore::Embedded(state), None) => {
                handlers::start_upload(state, key, whole).await
            }
            (MultipartStore::Remote(remote), _) => remote.start_upload(key).await,
        }
    }

    /// The parts the store holds, in part order.
    pub async fn stored_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<StoredPart>, OperationError> {
        match self {
            MultipartStore::Embedded(state) => handlers::stored_parts(state, key, upload_id).await,
            MultipartStore::Remote(remote) => remote.stored_parts(key, upload_id).await,
        }
    }

    /// Completes the upload from `(part number, etag)` pairs; the embedded
    /// endpoint refuses (`BadDigest`, the upload left open) a full-object
    /// CRC64NVME other than `declared_crc64nvme`.
    pub async fn finish_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        declared_crc64nvme: Option<u64>,
    ) -> Result<Completed, OperationError> {
        match self {
            MultipartStore::Embedded(state) => {
                let finished =
                    handlers::finish_upload(state, key, upload_id, parts, declared_crc64nvme)
                        .await?;
                Ok(Completed {
                    etag: finished.etag,
                    sha256: finished.sha256,
                    crc64nvme: finished.crc64nvme,
                })
            }
            MultipartStore::Remote(remote) => Ok(Completed {
                etag: remote.finish_upload(key, upload_id, parts).await?,
                sha256: None,
                crc64nvme: None,
            }),
        }
    }

    /// Aborts the upload; its parts are removed.
    pub async fn cancel_upload(&self, key: &str, upload_id: &str) -> Result<(), OperationError> {
        match self {
            MultipartStore::Embedded(state) => handlers::cancel_upload(state, key, upload_id).await,
            MultipartStore::Remote(remote) => remote.cancel_upload(key, upload_id).await,
        }
    }

    /// Where clients send parts: the embedded endpoint as this request
    /// reached it (`embedded_endpoint`), or the real store.
    pub fn endpoint(&self, embedded_endpoint: &Url) -> Url {
        match self {
            MultipartStore::Embedded(_) => embedded_endpoint.clone(),
            MultipartStore::Remote(remote) => remote.endpoint().clone(),
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        match self {
            MultipartStore::Embedded(state) => state.bucket(),
            MultipartStore::Remote(remote) => remote.bucket(),
        }
    }

    /// A presigned PUT URL for one part, valid `lifetime`.
    pub fn part_url(
        &self,
        embedded_endpoint: &Url,
        key: &str,
        upload_id: &str,
        part_number: u32,
        lifetime: Duration,
    ) -> Result<String, OperationError> {
        let part_text = part_number.to_string();
        let query = [("partNumber", part_text.as_str()), ("uploadId", upload_id)];
        match self {
            MultipartStore::Embedded(state) => crate::presign(
                &crate::PresignRequest {
                    credentials: state.credentials(),
                    endpoint: embedded_endpoint,
                    method: &Method::PUT,
                    bucket: state.bucket(),
                    key,
                    query: &query,
                    expires: lifetime,
                },
                std::time::SystemTime::now(),
            )
            .map_err(|error| OperationError {
                code: "InvalidRequest",
                status: 500,
                message: error.to_string(),
            }),
            MultipartStore::Remote(remote) => remote.presign(&Method::PUT, key, &query, lifetime),
        }
    }
}
