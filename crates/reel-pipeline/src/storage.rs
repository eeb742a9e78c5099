//! The `storage` URL, parsed once into a [`StorageUrl`], and [`open`], the
//! one place that opens the object store it names.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::ObjectStore;

/// Errors of opening the object store.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL names no supported store.
    #[error("unsupported storage url {0:?}: use file:///ABSOLUTE/PATH, s3://BUCKET or memory://")]
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

/// Where objects are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageUrl {
    /// `file:///ABSOLUTE/PATH`: a local directory (created if missing).
    File(PathBuf),
    /// `s3://BUCKET`: an S3-compatible bucket.
    S3 {
        /// The bucket.
        bucket: String,
    },
    /// `memory://`: in this process's memory, gone when it exits (tests).
    Memory,
}

impl FromStr for StorageUrl {
    type Err = StorageError;
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let unsupported = || StorageError::UnsupportedUrl(url.chars().take(200).collect());
        if let Some(path) = url.strip_prefix("file://") {
            let path = Path::new(path);
            if !path.is_absolute() {
                return Err(unsupported());
            }
            return Ok(StorageUrl::File(path.to_path_buf()));
        }
        if let Some(bucket) = url.strip_prefix("s3://") {
            let bucket = bucket.trim_end_matches('/');
            if bucket.is_empty() || bucket.contains('/') {
                return Err(unsupported());
            }
            return Ok(StorageUrl::S3 {
                bucket: bucket.to_string(),
            });
        }
        if url == "memory://" || url == "memory" {
            return Ok(StorageUrl::Memory);
        }
        Err(unsupported())
    }
}

impl fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageUrl::File(path) => write!(f, "file://{}", path.display()),
            StorageUrl::S3 { bucket } => write!(f, "s3://{bucket}"),
            StorageUrl::Memory => f.write_str("memory://"),
        }
    }
}

impl StorageUrl {
    /// The directory of a `file://` store, whose files callers may read in
    /// place.
    pub fn local_root(&self) -> Option<&Path> {
        match self {
            StorageUrl::File(path) => Some(path),
            _ => None,
        }
    }

    /// The bucket of an `s3://` store.
    pub fn s3_bucket(&self) -> Option<&str> {
        match self {
            StorageUrl::S3 { bucket } => Some(bucket),
            _ => None,
        }
    }
}

/// The local file system store of a `file://` URL (None for other stores),
/// for callers that work on its files directly.
pub fn local_file_system(url: &StorageUrl) -> Result<Option<Arc<LocalFileSystem>>, StorageError> {
    match url {
        StorageUrl::File(path) => Ok(Some(Arc::new(LocalFileSystem::new_with_prefix(path)?))),
        _ => Ok(None),
    }
}

/// Opens the store `url` names: the one place reel opens an object store.
pub fn open(url: &StorageUrl, s3: &S3Settings) -> Result<Arc<dyn ObjectStore>, StorageError> {
    match url {
        StorageUrl::File(path) => {
            std::fs::create_dir_all(path).map_err(|source| StorageError::CreateDir {
                path: path.display().to_string(),
                source,
            })?;
            Ok(Arc::new(LocalFileSystem::new_with_prefix(path)?))
        }
        StorageUrl::S3 { bucket } => {
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            if let Some(endpoint) = &s3.endpoint {
                builder = builder
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"));
            }
            if let Some(region) = &s3.region {
                builder = builder.with_region(region);
            }
            Ok(Arc::new(builder.build()?))
        }
        StorageUrl::Memory => Ok(Arc::new(InMemory::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_relative_and_unknown_urls() {
        assert!("file://relative/path".parse::<StorageUrl>().is_err());
        assert!("ftp://host/x".parse::<StorageUrl>().is_err());
        assert!("s3://".parse::<StorageUrl>().is_err());
        assert!("s3://bucket/prefix".parse::<StorageUrl>().is_err());
    }

    #[test]
    fn parses_each_kind_and_prints_it_back() {
        for url in [
            "file:///var/lib/reel/objects",
            "s3://reel-media",
            "memory://",
        ] {
            let parsed: StorageUrl = url.parse().expect("valid");
            assert_eq!(parsed.to_string(), url);
        }
        assert_eq!(
            "s3://reel-media/"
                .parse::<StorageUrl>()
                .expect("valid")
                .s3_bucket(),
            Some("reel-media")
        );
    }
}
