//! CompleteMultipartUpload (parts joined in order, every digest checked
//! again, the full-object CRC64NVME combined from the part CRCs) and
//! AbortMultipartUpload.

use super::*;

/// What a completion computed besides its answer.
pub(super) struct Completion {
    pub(super) response: Response,
    /// The multipart ETag, unquoted.
    pub(super) etag: String,
    /// The whole object's SHA-256, when its upload asked for it.
    pub(super) sha256: Option<[u8; 32]>,
    /// The full-object CRC64NVME, when every part has a recorded CRC.
    pub(super) crc64nvme: Option<u64>,
}

/// The full-object checksum a CompleteMultipartUpload request declares
/// (`x-amz-checksum-crc64nvme`, with `x-amz-checksum-type: FULL_OBJECT` or
/// none); other algorithms' whole-object checksums are refused, since only
/// CRC64NVME is combined from the parts.
pub(super) fn declared_full_object(parts: &Parts) -> Result<Option<u64>, S3Error> {
    if let Some(kind) = parts.headers.get("x-amz-checksum-type") {
        if !kind.as_bytes().eq_ignore_ascii_case(b"FULL_OBJECT") {
            return Err(S3Error::new(
                S3ErrorKind::InvalidRequest,
                "only x-amz-checksum-type FULL_OBJECT (with x-amz-checksum-crc64nvme) is supported at completion",
            ));
        }
    }
    let mut declared = None;
    for (name, value) in &parts.headers {
        let Some(algorithm) = ChecksumAlgorithm::from_header_name(name.as_str()) else {
            continue;
        };
        if algorithm != ChecksumAlgorithm::Crc64Nvme {
            return Err(S3Error::new(
                S3ErrorKind::InvalidRequest,
                format!(
                    "{} is not checked at completion; send the full-object x-amz-checksum-crc64nvme, or list part checksums in the body",
                    algorithm.header_name()
                ),
            ));
        }
        declared = crc64nvme_value(&header_checksum(algorithm, value)?);
    }
    Ok(declared)
}

pub(super) async fn complete_multipart_upload(
    state: &S3State,
    object: &ObjectTarget,
    upload_id: &UploadId,
    request_body: &[u8],
    declared_crc64nvme: Option<u64>,
) -> Result<Completion, S3Error> {
    let requested_parts = xml::parse_complete_request(request_body)?;
    for pair in requested_parts.windows(2) {
        if pair[1].part_number <= pair[0].part_number {
            return Err(S3Error::new(
                S3ErrorKind::InvalidPartOrder,
                format!(
                    "the list of parts was not in ascending order: part {} follows part {}",
                    pair[1].part_number, pair[0].part_number
                ),
            ));
        }
    }
    let objects = state.objects.as_ref();
    let manifest = layout::read_manifest(objects, upload_id, &object.bucket, &object.key).await?;
    let in_place = manifest.layout.zip(state.local.as_ref());
    // Completion waits for part writes in flight and keeps new ones out.
    let lock = in_place.map(|(_, local)| local.lock(upload_id));
    let _completing = match &lock {
        Some(lock) => Some(lock.write().await),
        None => None,
    };
    let mut parts: Vec<(PartNumber, PartRecord)> = Vec::with_capacity(requested_parts.len());
    for requested in &requested_parts {
        let not_found = || {
            S3Error::new(
                S3ErrorKind::InvalidPart,
                format!(
                    "part {} could not be found or its ETag does not match; upload it again or list the parts",
                    requested.part_number
                ),
            )
        };
        let part_number = PartNumber::new(requested.part_number).ok_or_else(not_found)?;
        let record = layout::read_part_record(objects, upload_id, part_number)
            .await?
            .filter(|record| record.md5 == requested.etag)
            .ok_or_else(not_found)?;
        check_listed_checksums(part_number, &record, &requested.checksums)?;
        parts.push((part_number, record));
    }
    let min_part_bytes = state.config.min_part_size.bytes();
    let all_but_last = &parts[..parts.len() - 1];
    if let Some((part_number, record)) = all_but_last
        .iter()
        .find(|(_, record)| record.size < min_part_bytes)
    {
        return Err(S3Error::new(
            S3ErrorKind::EntityTooSmall,
            format!(
                "part {} is {} bytes; every part but the last must be at least {min_part_bytes} bytes",
                part_number.get(),
                record.size
            ),
        ));
    }

    // The full-object CRC64NVME, from the part CRCs alone: a mismatch is
    // refused before anything is assembled, so the upload stays whole.
    let crc64nvme = parts
        .iter()
        .map(|(_, record)| Some((record.crc64nvme?, record.size)))
        .collect::<Option<Vec<_>>>()
        .map(crate::checksum::full_object_crc64nvme);
    if let Some(declared) = declared_crc64nvme {
        let actual = crc64nvme.ok_or_else(|| {
            S3Error::new(
                S3ErrorKind::InvalidRequest,
                "some parts of this upload were stored without a CRC64NVME; the full-object checksum cannot be checked",
            )
        })?;
        if actual != declared {
            return Err(S3Error::new(
                S3ErrorKind::BadDigest,
                format!(
                    "the full-object CRC64NVME you specified ({}) did not match the one combined from the stored parts ({}); list the parts and send again the ones that differ",
                    Checksum::crc64nvme(declared).to_base64(),
                    Checksum::crc64nvme(actual).to_base64()
                ),
            ));
        }
    }
    let mut whole_sha256 = manifest.whole_sha256.then(Sha256::new);
    let multipart_etag = match in_place {
        Some((fixed, local)) => {
            let expected = fixed.n_parts();
            let is_whole = parts.len() as u64 == expected
                && parts
                    .iter()
                    .enumerate()
                    .all(|(index, (number, _))| number.get() as usize == index + 1);
            if !is_whole {
                return Err(S3Error::new(
                    S3ErrorKind::InvalidPart,
                    format!("this upload completes with parts 1 to {expected}, each listed once"),
                ));
            }
            inplace::complete(
                local,
                upload_id,
                fixed,
                &parts,
                &object.path,
                whole_sha256.as_mut(),
            )
            .await?
        }
        None => {
            concatenate_parts(
                objects,
                upload_id,
                &parts,
                &object.path,
                whole_sha256.as_mut(),
            )
            .await?
        }
    };
    layout::delete_upload(objects, upload_id).await?;
    tracing::debug!(
        upload_id = upload_id.as_str(),
        n_parts = parts.len(),
        "s3 multipart upload completed"
    );
    let crc64nvme_text = crc64nvme.map(|value| Checksum::crc64nvme(value).to_base64());
    let mut response = xml_response(to_document(&xml::CompleteResult {
        xmlns: S3_XMLNS.to_string(),
        location: object.resource.clone(),
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        etag: format!("\"{multipart_etag}\""),
        checksum_crc64nvme: crc64nvme_text.clone(),
        checksum_type: crc64nvme_text.as_ref().map(|_| "FULL_OBJECT".to_string()),
    }));
    let etag = HeaderValue::from_str(&format!("\"{multipart_etag}\""))
        .expect("a multipart ETag is a valid header value");
    response.headers_mut().insert(header::ETAG, etag);
    if let Some(text) = &crc64nvme_text {
        let headers = response.headers_mut();
        headers.insert(
            ChecksumAlgorithm::Crc64Nvme.header_name(),
            HeaderValue::from_str(text).expect("base64 is a valid header value"),
        );
        headers.insert(
            "x-amz-checksum-type",
            HeaderValue::from_static("FULL_OBJECT"),
        );
    }
    Ok(Completion {
        response,
        etag: multipart_etag,
        sha256: whole_sha256.map(|sha| sha.finalize().into()),
        crc64nvme,
    })
}

/// Checks the part checksums a CompleteMultipartUpload body lists against
/// the ones verified when the part was stored.
fn check_listed_checksums(
    part_number: PartNumber,
    record: &PartRecord,
    listed: &[(ChecksumAlgorithm, String)],
) -> Result<(), S3Error> {
    for (algorithm, value) in listed {
        let stored = match algorithm {
            ChecksumAlgorithm::Crc64Nvme => record
                .crc64nvme
                .map(|crc| Checksum::crc64nvme(crc).to_base64()),
            _ => record
                .checksum
                .as_ref()
                .filter(|(name, _)| name == algorithm.name())
                .map(|(_, stored)| stored.clone()),
        };
        match stored {
            Some(stored) if stored == *value => {}
            Some(stored) => {
                return Err(S3Error::new(
                    S3ErrorKind::InvalidPart,
                    format!(
                        "part {}: the listed {} ({value}) is not the stored part's ({stored}); upload it again",
                        part_number.get(),
                        algorithm.name()
                    ),
                ))
            }
            None => {
                return Err(S3Error::new(
                    S3ErrorKind::InvalidPart,
                    format!(
                        "part {} was uploaded without a {} checksum, so the listed one cannot be checked; upload it again with {}",
                        part_number.get(),
                        algorithm.name(),
                        algorithm.header_name()
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// Writes the parts, in order, to `destination` and returns the multipart
/// ETag `md5(part md5s)-n`. Each part's MD5 is computed again on the way, so
/// a part overwritten after its record was read is caught.
pub(super) async fn concatenate_parts(
    objects: &dyn ObjectStore,
    upload_id: &UploadId,
    parts: &[(PartNumber, PartRecord)],
    destination: &Path,
    mut whole: Option<&mut Sha256>,
) -> Result<String, S3Error> {
    let store_upload = objects
        .put_multipart(destination)
        .await
        .map_err(|error| S3Error::internal("starting the object write", error))?;
    let mut writer = WriteMultipart::new_with_chunk_size(store_upload, WRITE_CHUNK_BYTES);
    let mut etag_hasher = Md5::new();
    for (part_number, record) in parts {
        match copy_part(
            objects,
            &mut writer,
            upload_id,
            *part_number,
            record,
            whole.as_deref_mut(),
        )
        .await
        {
            Ok(md5) => etag_hasher.update(md5),
            Err(error) => {
                if let Err(abort_error) = writer.abort().await {
                    tracing::warn!(error = %abort_error, "s3 endpoint could not discard a failed object write");
                }
                return Err(error);
            }
        }
    }
    writer
        .finish()
        .await
        .map_err(|error| S3Error::internal("storing the object", error))?;
    Ok(format!(
        "{}-{}",
        hex::encode(etag_hasher.finalize()),
        parts.len()
    ))
}

pub(super) async fn copy_part(
    objects: &dyn ObjectStore,
    writer: &mut WriteMultipart,
    upload_id: &UploadId,
    part_number: PartNumber,
    record: &PartRecord,
    mut whole: Option<&mut Sha256>,
) -> Result<[u8; 16], S3Error> {
    let changed = || {
        S3Error::new(
            S3ErrorKind::InvalidPart,
            format!(
                "part {} changed or vanished while completing; upload it again",
                part_number.get()
            ),
        )
    };
    let location = upload_id.part_path(part_number);
    // While the store's ETag of the part is the one recorded when it was
    // written (checked before and after reading), its bytes are the ones
    // the recorded MD5 covers, and the MD5 need not be computed again.
    let current_etag = || async {
        objects
            .head(&location)
            .await
            .ok()
            .filter(|meta| meta.size == record.size)
            .and_then(|meta| meta.e_tag)
    };
    let unchanged = match &record.object_etag {
        Some(recorded) => current_etag().await.as_ref() == Some(recorded),
        None => false,
    };
    let mut md5 = Md5::new();
    let mut offset: u64 = 0;
    // Large blocks, with the part's MD5 and the object's SHA-256 computed
    // on two blocking threads at once: joining is bound by hashing, and
    // the store's own stream hands out small chunks.
    while offset < record.size {
        let end = (offset + JOIN_BLOCK_BYTES).min(record.size);
        let block = match objects.get_range(&location, offset..end).await {
            Ok(block) => block,
            Err(object_store::Error::NotFound { .. }) => return Err(changed()),
            Err(error) => return Err(S3Error::internal("reading a part", error)),
        };
        if block.len() as u64 != end - offset {
            return Err(changed());
        }
        let md5_block = block.clone();
        let md5_task = tokio::task::spawn_blocking(move || {
            if !unchanged {
                md5.update(&md5_block);
            }
            md5
        });
        let sha_task = whole.as_deref_mut().map(|whole| {
            let mut sha = std::mem::take(whole);
            let sha_block = block.clone();
            tokio::task::spawn_blocking(move || {
                sha.update(&sha_block);
                sha
            })
        });
        md5 = md5_task
            .await
            .map_err(|error| S3Error::internal("hashing a part", error))?;
        if let (Some(whole), Some(task)) = (whole.as_deref_mut(), sha_task) {
            *whole = task
                .await
                .map_err(|error| S3Error::internal("hashing the object", error))?;
        }
        writer
            .wait_for_capacity(MAX_WRITES_IN_FLIGHT)
            .await
            .map_err(|error| S3Error::internal("storing the object", error))?;
        writer.put(block);
        offset = end;
    }
    // A part longer than its record has changed too.
    let actual = objects.head(&location).await.map_err(|_| changed())?.size;
    if actual != record.size {
        return Err(changed());
    }
    if unchanged {
        if current_etag().await != record.object_etag {
            return Err(changed());
        }
        let mut recorded = [0u8; 16];
        hex::decode_to_slice(&record.md5, &mut recorded).map_err(|_| changed())?;
        return Ok(recorded);
    }
    let md5: [u8; 16] = md5.finalize().into();
    if hex::encode(md5) != record.md5 {
        return Err(changed());
    }
    Ok(md5)
}

pub(super) async fn abort_multipart_upload(
    state: &S3State,
    object: &ObjectTarget,
    upload_id: &UploadId,
) -> Result<Response, S3Error> {
    let objects = state.objects.as_ref();
    layout::read_manifest(objects, upload_id, &object.bucket, &object.key).await?;
    layout::delete_upload(objects, upload_id).await?;
    if let Some(local) = &state.local {
        local.forget(upload_id);
    }
    tracing::debug!(
        upload_id = upload_id.as_str(),
        "s3 multipart upload aborted"
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}
