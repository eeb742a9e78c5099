//! The same operations for in-process callers (`/v1/uploads`), without
//! HTTP or signatures.

use super::*;

pub(super) fn direct_target(state: &S3State, key: &str) -> Result<ObjectTarget, S3Error> {
    let resource = format!("/{}/{key}", state.config.bucket);
    let target = parse_target(&resource)?;
    Ok(ObjectTarget {
        bucket: target.bucket,
        key: target.key,
        path: target.path,
        resource,
    })
}

/// The end-to-end checksum of a whole upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WholeChecksum {
    /// The full-object CRC64NVME, combined at completion from the part
    /// CRCs computed as each part streamed in: no byte is read again.
    Crc64Nvme,
    /// The SHA-256 of the whole object as well, computed as the parts land
    /// (in place) or while they are joined: one more pass over the bytes.
    Sha256,
}

/// Starts a multipart upload of `key` (as CreateMultipartUpload does) and
/// returns its upload id.
pub async fn start_upload(
    state: &S3State,
    key: &str,
    whole: WholeChecksum,
) -> Result<String, OperationError> {
    let object = direct_target(state, key)?;
    let upload_id = new_upload(state, &object, None, whole).await?;
    Ok(upload_id.as_str().to_string())
}

/// Starts a multipart upload of `key` whose parts are all `part_size` bytes
/// but the last, `total_size` in all. Parts that do not fit are refused;
/// on the local store they are written in place and completion moves the
/// file into place instead of copying it.
pub async fn start_upload_sized(
    state: &S3State,
    key: &str,
    part_size: u64,
    total_size: u64,
    whole: WholeChecksum,
) -> Result<String, OperationError> {
    let object = direct_target(state, key)?;
    let fixed = FixedLayout::new(part_size, total_size).ok_or_else(|| {
        S3Error::new(
            S3ErrorKind::InvalidArgument,
            format!("{total_size} bytes in parts of {part_size} is not 1 to 10000 parts"),
        )
    })?;
    let upload_id = new_upload(state, &object, Some(fixed), whole).await?;
    Ok(upload_id.as_str().to_string())
}

/// The parts storage holds for an upload, in part order (as ListParts).
pub async fn stored_parts(
    state: &S3State,
    key: &str,
    upload_id: &str,
) -> Result<Vec<StoredPart>, OperationError> {
    let object = direct_target(state, key)?;
    let upload_id = UploadId::parse(upload_id)?;
    let objects = state.objects.as_ref();
    layout::read_manifest(objects, &upload_id, &object.bucket, &object.key).await?;
    let mut parts = Vec::new();
    for part_number in layout::list_part_numbers(objects, &upload_id).await? {
        if let Some(record) = layout::read_part_record(objects, &upload_id, part_number).await? {
            parts.push(StoredPart {
                part_number: part_number.get(),
                size: record.size,
                etag: record.md5,
                crc64nvme: record.crc64nvme,
            });
        }
    }
    Ok(parts)
}

/// A completed upload: its multipart ETag and whole-object checksums,
/// computed without reading the object back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedUpload {
    /// `md5(part md5s)-n`.
    pub etag: String,
    /// Hex SHA-256 of the assembled object, for uploads started with
    /// [`WholeChecksum::Sha256`].
    pub sha256: Option<String>,
    /// The full-object CRC64NVME combined from the part CRCs (`None` when a
    /// part was stored before reel recorded them).
    pub crc64nvme: Option<u64>,
}

/// Completes an upload from `(part number, etag)` pairs with every check of
/// CompleteMultipartUpload; with `declared_crc64nvme`, the full-object
/// CRC64NVME must equal it (`BadDigest` otherwise, and the upload is left
/// as it was).
pub async fn finish_upload(
    state: &S3State,
    key: &str,
    upload_id: &str,
    parts: &[(u32, String)],
    declared_crc64nvme: Option<u64>,
) -> Result<FinishedUpload, OperationError> {
    let object = direct_target(state, key)?;
    let upload_id = UploadId::parse(upload_id)?;
    let body = xml::complete_request_body(parts);
    let completion = complete_multipart_upload(
        state,
        &object,
        &upload_id,
        body.as_bytes(),
        declared_crc64nvme,
    )
    .await?;
    Ok(FinishedUpload {
        etag: completion.etag,
        sha256: completion.sha256.map(hex::encode),
        crc64nvme: completion.crc64nvme,
    })
}

/// Aborts an upload and removes its parts (as AbortMultipartUpload).
pub async fn cancel_upload(
    state: &S3State,
    key: &str,
    upload_id: &str,
) -> Result<(), OperationError> {
    let object = direct_target(state, key)?;
    let upload_id = UploadId::parse(upload_id)?;
    abort_multipart_upload(state, &object, &upload_id).await?;
    Ok(())
}
