//! Where multipart uploads live in the object store, and the small JSON
//! records kept next to their parts.
//!
//! ```text
//! s3-multipart/{upload_id}/upload.json   UploadManifest (bucket, key, created)
//! s3-multipart/{upload_id}/00001         part 1's bytes
//! s3-multipart/{upload_id}/00001.json    PartRecord (MD5, size) of part 1
//! ```
//!
//! The object store has no per-object metadata on every backend (local
//! files have none), so each part's MD5 is kept in its own record.

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{S3Error, S3ErrorKind};

/// The prefix every upload's objects live under; object keys may not use it.
pub(crate) const MULTIPART_PREFIX: &str = "s3-multipart";

/// A multipart upload id: 32 lowercase hex digits, made by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UploadId(String);

impl UploadId {
    pub(crate) fn generate() -> UploadId {
        UploadId(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Parses a client-supplied id; anything the server could not have made
    /// is `NoSuchUpload`, which also keeps ids from escaping the prefix.
    pub(crate) fn parse(text: &str) -> Result<UploadId, S3Error> {
        let is_valid = text.len() == 32
            && text
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
        if !is_valid {
            return Err(no_such_upload());
        }
        Ok(UploadId(text.to_string()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn prefix(&self) -> Path {
        Path::from_iter([MULTIPART_PREFIX, self.0.as_str()])
    }

    fn manifest_path(&self) -> Path {
        self.prefix().child("upload.json")
    }

    pub(crate) fn part_path(&self, part_number: PartNumber) -> Path {
        self.prefix().child(format!("{:05}", part_number.0))
    }

    fn part_record_path(&self, part_number: PartNumber) -> Path {
        self.prefix().child(format!("{:05}.json", part_number.0))
    }
}

/// A part number, 1 to 10000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PartNumber(u32);

impl PartNumber {
    pub(crate) const MAX: u32 = 10_000;

    pub(crate) fn new(number: u32) -> Option<PartNumber> {
        (1..=Self::MAX)
            .contains(&number)
            .then_some(PartNumber(number))
    }

    pub(crate) fn parse(text: &str) -> Result<PartNumber, S3Error> {
        text.parse::<u32>()
            .ok()
            .and_then(PartNumber::new)
            .ok_or_else(|| {
                S3Error::new(
                    S3ErrorKind::InvalidArgument,
                    format!("part number {text:?} is invalid; use an integer from 1 to 10000"),
                )
            })
    }

    pub(crate) fn get(self) -> u32 {
        self.0
    }

    /// The part number of a record file name such as `00042.json`.
    fn from_record_name(name: &str) -> Option<PartNumber> {
        let digits = name.strip_suffix(".json")?;
        if digits.len() != 5 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().and_then(PartNumber::new)
    }
}

/// What the server remembers about an upload (persisted; versioned).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UploadManifest {
    pub(crate) version: u32,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) created: DateTime<Utc>,
    /// Set when the upload writes its parts in place (local store, size
    /// known at creation): see `inplace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) layout: Option<crate::inplace::FixedLayout>,
    /// Whether completion computes the whole object's SHA-256 (one more
    /// pass over its bytes). Manifests written before the full-object
    /// CRC64NVME existed have no field and did.
    #[serde(default = "sha256_by_default")]
    pub(crate) whole_sha256: bool,
}

fn sha256_by_default() -> bool {
    true
}

impl UploadManifest {
    pub(crate) const VERSION: u32 = 1;
}

/// What the server remembers about one stored part (persisted; versioned).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PartRecord {
    pub(crate) version: u32,
    /// The part's ETag without quotes: lowercase hex MD5 as S3 has it, or
    /// XXH3-128 for parts written in place (see `inplace`).
    pub(crate) md5: String,
    pub(crate) size: u64,
    pub(crate) stored: DateTime<Utc>,
    /// The store's own ETag of the part object when it was written: while
    /// it is unchanged the bytes are the ones the MD5 was computed over, so
    /// joining need not hash them again.
    #[serde(default)]
    pub(crate) object_etag: Option<String>,
    /// The part's CRC64NVME, computed as it streamed in (absent in records
    /// written before it was): full-object checksums combine these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) crc64nvme: Option<u64>,
    /// The checksum the client sent with the part (`x-amz-checksum-*`),
    /// verified: the algorithm's S3 name and the base64 value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) checksum: Option<(String, String)>,
}

impl PartRecord {
    pub(crate) const VERSION: u32 = 1;
}

pub(crate) fn no_such_upload() -> S3Error {
    S3Error::new(
        S3ErrorKind::NoSuchUpload,
        "the specified multipart upload does not exist; it may have been aborted or completed",
    )
}

pub(crate) async fn write_manifest(
    objects: &dyn ObjectStore,
    upload_id: &UploadId,
    manifest: &UploadManifest,
) -> Result<(), S3Error> {
    write_json(
        objects,
        &upload_id.manifest_path(),
        manifest,
        "writing the upload manifest",
    )
    .await
}

/// Reads the manifest of an upload that must exist for `bucket`/`key`.
pub(crate) async fn read_manifest(
    objects: &dyn ObjectStore,
    upload_id: &UploadId,
    bucket: &str,
    key: &str,
) -> Result<UploadManifest, S3Error> {
    let manifest: UploadManifest = read_json(
        objects,
        &upload_id.manifest_path(),
        "reading the upload manifest",
    )
    .await?
    .ok_or_else(no_such_upload)?;
    if manifest.version != UploadManifest::VERSION {
        return Err(S3Error::internal(
            "reading the upload manifest",
            format!("unsupported manifest version {}", manifest.version),
        ));
    }
    // S3 answers NoSuchUpload when the id belongs to another key.
    if manifest.bucket != bucket || manifest.key != key {
        return Err(no_such_upload());
    }
    Ok(manifest)
}

pub(crate) async fn manifest_exists(
    objects: &dyn ObjectStore,
    upload_id: &UploadId,
) -> Result<bool, S3Error> {
    match objects.head(&upload_id.manifest_path()).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(error) => Err(S3Error::internal("checking the upload manifest", error)),
    }
}

pub(crate) async fn delete_manifest(
    objects: &dyn ObjectStore,
    upload_id: &UploadId,
) -> Result<(), S3Error> {
    match objects.delete(&upload_id.manifest_path()).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(error) => Err(S3Error::internal("deleting the upload manifest", error)),
    }
}

pub(crate) async fn write_part_record(
    objects: &dyn ObjectStore,
    upload_id: &UploadId,
    part_number: PartNumber,
    record: &PartRecord,
) -> Result<(), S3Error> {
    write_json(
        objects,
        &upload_id.part_record_path(part_number),
        record,
        "writing the part record",
    )
    .await
}

/// Deletes a part's record (the part then counts as missing).
pub(crate) async fn delete_part_record(
    objects: &dyn ObjectStore,
    upload_id: &UploadId,
    part_number: PartNumber,
) -> Result<(), S3Error> {
    match objects
        .delete(&upload_id.part_record_path(part_number))
        .await
    {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(error) => Err(S3Error::internal("deleting a part record", error)),
    }
}

pub(crate) async fn read_part_record(
    objects: &dyn ObjectStore,
    upload_id: &UploadId,
    part_number: PartNumber,
) -> Result<Option<PartRecord>, S3Error> {
    read_json(
        objects,
        &upload_id.part_record_path(part_number),
        "reading a part record",
    )
    .await
}

/// The part numbers that have a record, ascending.
pub(crate) async fn list_part_numbers(
    objects: &dyn ObjectStore,
    upload_id: &UploadId,
) -> Result<Vec<PartNumber>, S3Error> {
    use futures::TryStreamExt;
    let metas: Vec<object_store::ObjectMeta> = objects
        .list(Some(&upload_id.prefix()))
        .try_collect()
        .await
        .map_err(|error| S3Error::internal("listing parts", error))?;
    let mut part_numbers: Vec<PartNumber> = metas
        .iter()
        .filter_map(|meta| {
            meta.location
                .filename()
                .and_then(PartNumber::from_record_name)
        })
        .collect();
    part_numbers.sort();
    Ok(part_numbers)
}

/// Deletes every object of the upload, the manifest first so that
/// concurrent part uploads see `NoSuchUpload`.
pub(crate) async fn delete_upload(
    objects: &dyn ObjectStore,
    upload_id: &UploadId,
) -> Result<(), S3Error> {
    use futures::{StreamExt, TryStreamExt};
    delete_manifest(objects, upload_id).await?;
    let prefix = upload_id.prefix();
    let locations = objects
        .list(Some(&prefix))
        .map_ok(|meta| meta.location)
        .boxed();
    objects
        .delete_stream(locations)
        .try_for_each(|_| futures::future::ready(Ok(())))
        .await
        .or_else(|error| match error {
            object_store::Error::NotFound { .. } => Ok(()),
            other => Err(S3Error::internal("deleting the upload's parts", other)),
        })
}

async fn write_json<T: Serialize>(
    objects: &dyn ObjectStore,
    path: &Path,
    value: &T,
    context: &str,
) -> Result<(), S3Error> {
    let bytes = serde_json::to_vec(value).map_err(|error| S3Error::internal(context, error))?;
    objects
        .put(path, PutPayload::from(bytes))
        .await
        .map_err(|error| S3Error::internal(context, error))?;
    Ok(())
}

async fn read_json<T: for<'de> Deserialize<'de>>(
    objects: &dyn ObjectStore,
    path: &Path,
    context: &str,
) -> Result<Option<T>, S3Error> {
    let result = match objects.get(path).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(error) => return Err(S3Error::internal(context, error)),
    };
    let bytes = result
        .bytes()
        .await
        .map_err(|error| S3Error::internal(context, error))?;
    let value =
        serde_json::from_slice(&bytes).map_err(|error| S3Error::internal(context, error))?;
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_must_be_server_made() {
        let generated = UploadId::generate();
        assert_eq!(
            UploadId::parse(generated.as_str()).ok(),
            Some(generated.clone())
        );
        for bad in [
            "",
            "../../etc",
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef0123456789abcde/",
        ] {
            assert_eq!(
                UploadId::parse(bad).map_err(|error| error.kind),
                Err(S3ErrorKind::NoSuchUpload)
            );
        }
    }

    #[test]
    fn part_numbers_are_1_to_10000() {
        let check = |text: &str, expected: Option<u32>| {
            assert_eq!(PartNumber::parse(text).ok().map(PartNumber::get), expected);
        };
        check("1", Some(1));
        check("10000", Some(10_000));
        check("0", None);
        check("10001", None);
        check("-1", None);
        check("1.5", None);
        check("", None);
    }

    #[test]
    fn record_names_map_to_part_numbers() {
        assert_eq!(
            PartNumber::from_record_name("00042.json").map(PartNumber::get),
            Some(42)
        );
        assert_eq!(PartNumber::from_record_name("00042"), None);
        assert_eq!(PartNumber::from_record_name("upload.json"), None);
        assert_eq!(PartNumber::from_record_name("00000.json"), None);
    }
}
