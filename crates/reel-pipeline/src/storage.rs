//! Opens the object store named by a `storage` URL.

use std::path::Path;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::ObjectStore;

/// Errors of opening the object store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL names no supported store.
    #[error("unsupported storage url {0:?}: use file:///ABSOLUTE/PATH or s3://BUCKET")]
    UnsupportedUrl(String),
    /// The local directory could not be created.
    #[error("creating storage directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// object_store refused the configuration.
    #[error("opening object store: {0}")]
    Open(#[from] object_store::Error),
}

/// Settings for an S3-compatible store; credentials come from the
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
#[derive(Clone, Debug, Default)]
pub struct S3Settings {
    /// Endpoint URL for S3-compatible stores (MinIO, R2, Garage).
    pub endpoint: Option<String>,
    /// The region.
    pub region: Option<String>,
}

/// The local file system store of a `file:///path` URL (None for other
/// stores), for callers that work on its files directly.
pub fn local_file_system(url: &str) -> Result<Option<Arc<LocalFileSystem>>, StorageError> {
    match url.strip_prefix("file://") {
        Some(path) if Path::new(path).is_absolute() => {
            Ok(Some(Arc::new(LocalFileSystem::new_with_prefix(path)?)))
        }
        Some(_) => Err(StorageError::UnsupportedUrl(url.to_string())),
        None => Ok(None),
    }
}

/// Opens `file:///path` (created if missing) or `s3://bucket`.
pub fn open_object_store(url: &str, s3: &S3Settings) -> Result<Arc<dyn ObjectStore>, StorageError> {
    if let Some(path) = url.strip_prefix("file://") {
        let path = Path::new(path);
        if !path.is_absolute() {
            return Err(StorageError::UnsupportedUrl(url.to_string()));
        }
        std::fs::create_dir_all(path).map_err(|source| StorageError::CreateDir {
            path: path.display().to_string(),
            source,
        })?;
        return Ok(Arc::new(LocalFileSystem::new_with_prefix(path)?));
    }
    if let Some(bucket) = url.strip_prefix("s3://") {
        let bucket = bucket.trim_end_matches('/');
        if bucket.is_empty() || bucket.contains('/') {
            return Err(StorageError::UnsupportedUrl(url.to_string()));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = &s3.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(region) = &s3.region {
            builder = builder.with_region(region);
        }
        return Ok(Arc::new(builder.build()?));
    }
    Err(StorageError::UnsupportedUrl(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_relative_and_unknown_urls() {
        let settings = S3Settings::default();
        assert!(open_object_store("file://relative/path", &settings).is_err());
        assert!(open_object_store("ftp://host/x", &settings).is_err());
        assert!(open_object_store("s3://", &settings).is_err());
    }
}
