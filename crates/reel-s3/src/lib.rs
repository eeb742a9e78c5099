//! An embedded S3 endpoint for presigned multipart uploads.
//!
//! Browsers and tools upload large files to S3 in parts, each part with its
//! own short-lived presigned URL. reel's default storage is an
//! [`ObjectStore`] on the local file system, which has no part-level
//! multipart API, so this crate answers the few S3 calls such uploads need
//! over any object store:
//!
//! - [`s3_router`] serves CreateMultipartUpload, UploadPart, ListParts,
//!   CompleteMultipartUpload and AbortMultipartUpload with path-style
//!   addressing (`/{bucket}/{key}`) for one configured bucket, behind AWS
//!   Signature Version 4 (header or presigned query authentication) and a
//!   CORS layer that exposes `ETag` to browsers.
//! - [`presign`] makes the SigV4 query-signed URLs that the router (and real
//!   S3 or MinIO) accepts, so reel's API can hand out one URL per part.
//!
//! Every part's CRC64NVME is computed as it streams in and recorded;
//! [`checksum`] holds the `x-amz-checksum-*` algorithms a part may also be
//! declared with (header or aws-chunked trailer, verified before the part
//! counts as stored) and the CRC combination that gives completion the
//! full-object CRC64NVME without reading the object again.
//!
//! Parts live in the store as `s3-multipart/{upload_id}/{part:05}`, each
//! with a `{part:05}.json` record of its MD5 and size, next to the upload's
//! `upload.json` manifest; completing an upload concatenates the parts into
//! the key and deletes that prefix.
//!
//! **Invariant:** no secret or signature is ever logged or echoed in a
//! response.
#![deny(missing_docs)]

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::any;
use axum::Router;
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;
use reel_core::ByteSize;
use tower_http::cors::{Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use url::Url;

mod backend;
pub mod checksum;
mod chunked;
mod error;
mod handlers;
mod inplace;
mod layout;
mod remote;
mod sigv4;
mod xml;

pub use backend::{Completed, MultipartStore};
pub use handlers::{
    cancel_upload, finish_upload, start_upload, start_upload_sized, stored_parts, FinishedUpload,
    OperationError, StoredPart, WholeChecksum,
};
pub use remote::RemoteS3;

/// The access key the server holds, and the region it claims to be.
#[derive(Clone)]
pub struct S3Credentials {
    /// The access key id clients sign with, e.g. `reel`.
    pub access_key_id: String,
    /// The secret both sides derive signing keys from; never logged.
    pub secret_access_key: String,
    /// The region in credential scopes, e.g. `us-east-1`.
    pub region: String,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("region", &self.region)
            .finish()
    }
}

/// S3's smallest part size for every part but the last (5 MiB).
pub const S3_MIN_PART_SIZE: ByteSize = ByteSize::from_bytes(5 << 20);

/// S3's largest part size (5 GiB).
pub const S3_MAX_PART_SIZE: ByteSize = ByteSize::from_bytes(5 << 30);

/// How the endpoint behaves.
#[derive(Clone, Debug)]
pub struct S3Config {
    /// The only bucket name the router answers to, e.g. `reel`.
    pub bucket: String,
    /// The one key clients must sign with.
    pub credentials: S3Credentials,
    /// The smallest size of every part but the last; S3 uses [`S3_MIN_PART_SIZE`].
    pub min_part_size: ByteSize,
    /// The largest part body accepted; larger ones get `EntityTooLarge` and
    /// are not stored. S3 uses [`S3_MAX_PART_SIZE`].
    pub max_part_size: ByteSize,
    /// How far a header-signed request's `x-amz-date` may be from the
    /// server's clock (S3 allows 15 minutes).
    pub max_clock_skew: Duration,
    /// The local file system store behind `objects`, when it is one: uploads
    /// started with [`start_upload_sized`] then write each part in place in
    /// one file and complete by renaming it, so no byte is written twice.
    pub local_files: Option<Arc<LocalFileSystem>>,
}

/// What the router's handlers share: the store and the validated config.
#[derive(Clone)]
pub struct S3State {
    objects: Arc<dyn ObjectStore>,
    config: Arc<S3Config>,
    local: Option<inplace::LocalFiles>,
}

/// Why an [`S3Config`] was refused.
#[derive(Debug, thiserror::Error)]
pub enum S3ConfigError {
    /// The bucket name cannot appear in a path-style URL.
    #[error("invalid s3 bucket name {0:?}: use 3 to 63 lowercase letters, digits, '-' or '.'")]
    InvalidBucket(String),
    /// The minimum part size is above the maximum.
    #[error("s3 min part size {min} is above max part size {max}; lower the min or raise the max")]
    PartSizes {
        /// The configured minimum.
        min: ByteSize,
        /// The configured maximum.
        max: ByteSize,
    },
    /// The access key id or secret is empty.
    #[error("s3 credentials need a non-empty access key id and secret")]
    EmptyCredentials,
}

impl S3State {
    /// Checks `config` and pairs it with the store parts and objects go to.
    pub fn new(objects: Arc<dyn ObjectStore>, config: S3Config) -> Result<S3State, S3ConfigError> {
        let bucket_is_valid = (3..=63).contains(&config.bucket.len())
            && config.bucket.bytes().all(|byte| {
                byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'.'
            });
        if !bucket_is_valid {
            return Err(S3ConfigError::InvalidBucket(config.bucket));
        }
        if config.min_part_size > config.max_part_size {
            return Err(S3ConfigError::PartSizes {
                min: config.min_part_size,
                max: config.max_part_size,
            });
        }
        if config.credentials.access_key_id.is_empty()
            || config.credentials.secret_access_key.is_empty()
        {
            return Err(S3ConfigError::EmptyCredentials);
        }
        let local = config.local_files.clone().map(inplace::LocalFiles::new);
        Ok(S3State {
            objects,
            config: Arc::new(config),
            local,
        })
    }

    /// The one bucket this endpoint serves.
    pub fn bucket(&self) -> &str {
        &self.config.bucket
    }

    /// The credentials it checks signatures against.
    pub fn credentials(&self) -> &S3Credentials {
        &self.config.credentials
    }
}

/// The S3 endpoint: nest it under a prefix (`Router::nest("/s3", ..)`) or
/// serve it at the root of its own listener.
///
/// Presigned URLs must be made for the same prefix, because the full path is
/// signed.
pub fn s3_router(state: S3State) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::PUT,
            Method::POST,
            Method::DELETE,
            Method::HEAD,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("content-md5"),
            HeaderName::from_static("x-amz-date"),
            HeaderName::from_static("x-amz-content-sha256"),
            HeaderName::from_static("x-amz-user-agent"),
            HeaderName::from_static("x-amz-checksum-crc32"),
            HeaderName::from_static("x-amz-checksum-crc32c"),
            HeaderName::from_static("x-amz-checksum-crc64nvme"),
            HeaderName::from_static("x-amz-checksum-sha1"),
            HeaderName::from_static("x-amz-checksum-sha256"),
            HeaderName::from_static("x-amz-checksum-type"),
            HeaderName::from_static("x-amz-sdk-checksum-algorithm"),
        ])
        .max_age(Duration::from_secs(3600));
    // Uppy's @uppy/aws-s3 reads the ETag of each part PUT, which browsers
    // hide unless it is exposed. The header goes on every response,
    // preflight answers included, so one preflight shows the whole policy.
    let expose_headers = SetResponseHeaderLayer::overriding(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("ETag, Location, x-amz-request-id, x-amz-checksum-crc32, x-amz-checksum-crc32c, x-amz-checksum-crc64nvme, x-amz-checksum-sha1, x-amz-checksum-sha256, x-amz-checksum-type"),
    );
    Router::new()
        .route("/{bucket}/{*key}", any(handlers::handle_object_request))
        .fallback(handlers::handle_unsupported_request)
        .layer(cors)
        .layer(expose_headers)
        .with_state(state)
}

/// What to presign: one request on one key.
#[derive(Clone, Copy, Debug)]
pub struct PresignRequest<'a> {
    /// The key to sign with.
    pub credentials: &'a S3Credentials,
    /// Where the endpoint is mounted, e.g. `http://127.0.0.1:8080/s3` or
    /// `https://s3.eu-west-1.amazonaws.com`.
    pub endpoint: &'a Url,
    /// The request's method, e.g. `PUT` for UploadPart.
    pub method: &'a Method,
    /// The bucket (path-style addressing).
    pub bucket: &'a str,
    /// The object key, unencoded.
    pub key: &'a str,
    /// Operation parameters that become part of the signature, e.g.
    /// `[("partNumber", "3"), ("uploadId", id)]`; changing any of them in
    /// the URL breaks it.
    pub query: &'a [(&'a str, &'a str)],
    /// How long the URL works: whole seconds, 1 s to 7 days.
    pub expires: Duration,
}

/// Why a URL could not be presigned.
#[derive(Debug, thiserror::Error)]
pub enum PresignError {
    /// SigV4 allows 1 to 604800 seconds.
    #[error("presign expiry of {0:?} is out of range; use 1 s to 7 days")]
    ExpiresOutOfRange(Duration),
    /// The endpoint URL has no host to sign.
    #[error("presign endpoint {0:?} has no host")]
    EndpointWithoutHost(String),
    /// The caller passed a parameter that the signer sets itself.
    #[error("presign query parameter {0:?} is reserved for the signature; remove it")]
    ReservedQueryParameter(String),
}

/// Makes a SigV4 query-signed (presigned) URL with `UNSIGNED-PAYLOAD`,
/// signed at `now`, that works until `now + expires`.
pub fn presign(request: &PresignRequest<'_>, now: SystemTime) -> Result<String, PresignError> {
    sigv4::presign(request, now)
}
