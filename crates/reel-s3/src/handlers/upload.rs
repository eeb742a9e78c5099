//! CreateMultipartUpload and UploadPart: a part's body streamed into the
//! store (or in place, at its offset) while it is hashed.

use super::*;

/// Records a new multipart upload of `object` and returns its id.
pub(super) async fn new_upload(
    state: &S3State,
    object: &ObjectTarget,
    layout: Option<FixedLayout>,
    whole: WholeChecksum,
) -> Result<UploadId, S3Error> {
    let upload_id = UploadId::generate();
    let manifest = UploadManifest {
        version: UploadManifest::VERSION,
        bucket: object.bucket.clone(),
        key: object.key.clone(),
        created: Utc::now(),
        layout: layout.filter(|_| state.local.is_some()),
        whole_sha256: whole == WholeChecksum::Sha256,
    };
    layout::write_manifest(state.objects.as_ref(), &upload_id, &manifest).await?;
    Ok(upload_id)
}

pub(super) async fn create_multipart_upload(
    state: &S3State,
    object: &ObjectTarget,
) -> Result<Response, S3Error> {
    // S3 clients get what S3 gives them: a multipart ETag and, from the
    // part CRCs, the full-object CRC64NVME; no SHA-256 pass.
    let upload_id = new_upload(state, object, None, WholeChecksum::Crc64Nvme).await?;
    tracing::debug!(
        upload_id = upload_id.as_str(),
        "s3 multipart upload created"
    );
    Ok(xml_response(to_document(&xml::InitiateResult {
        xmlns: S3_XMLNS,
        bucket: &object.bucket,
        key: &object.key,
        upload_id: upload_id.as_str().into(),
    })))
}

pub(super) async fn upload_part(
    state: &S3State,
    object: &ObjectTarget,
    part_upload: PartUpload,
    body: Body,
) -> Result<Response, S3Error> {
    let max_part_bytes = state.config.max_part_size.bytes();
    let too_large = || {
        S3Error::new(
            S3ErrorKind::EntityTooLarge,
            format!("your proposed upload exceeds the maximum part size of {max_part_bytes} bytes"),
        )
    };
    if part_upload
        .content_length
        .is_some_and(|length| length > max_part_bytes)
    {
        return Err(too_large());
    }
    let objects = state.objects.as_ref();
    let upload_id = &part_upload.upload_id;
    let manifest = layout::read_manifest(objects, upload_id, &object.bucket, &object.key).await?;
    if let (Some(fixed), Some(local)) = (manifest.layout, &state.local) {
        let in_place = InPlace {
            local,
            layout: fixed,
            whole_sha256: manifest.whole_sha256,
        };
        return upload_part_in_place(state, in_place, part_upload, body).await;
    }

    let part_path = upload_id.part_path(part_upload.part_number);
    let store_upload = objects
        .put_multipart(&part_path)
        .await
        .map_err(|error| S3Error::internal("starting a part write", error))?;
    let mut writer = WriteMultipart::new_with_chunk_size(store_upload, WRITE_CHUNK_BYTES);
    let hasher = BodyHasher::new(&part_upload);
    let written = stream_body_into(
        PartSink::Store(&mut writer),
        body,
        hasher,
        max_part_bytes,
        part_upload.payload_check,
    )
    .await;
    let checked = written.and_then(|streamed| {
        let digests = streamed.hasher.finish();
        let verified = check_part_digests(&part_upload, &digests, &streamed.trailers)?;
        Ok((
            digests.etag(),
            streamed.n_bytes,
            digests.crc64nvme,
            verified,
        ))
    });
    let (md5_hex, size, crc64nvme, verified) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            // Nothing of a refused body may remain in the store.
            if let Err(abort_error) = writer.abort().await {
                tracing::warn!(error = %abort_error, "s3 endpoint could not discard a refused part");
            }
            return Err(error);
        }
    };
    writer
        .finish()
        .await
        .map_err(|error| S3Error::internal("storing a part", error))?;
    let object_etag = objects
        .head(&upload_id.part_path(part_upload.part_number))
        .await
        .ok()
        .and_then(|meta| meta.e_tag);
    let record = PartRecord {
        version: PartRecord::VERSION,
        md5: md5_hex.clone(),
        size,
        stored: Utc::now(),
        object_etag,
        crc64nvme: crc64nvme_value(&crc64nvme),
        checksum: recorded_checksum(verified.as_ref()),
    };
    layout::write_part_record(objects, upload_id, part_upload.part_number, &record).await?;
    // An abort or complete that ran while the body streamed has deleted the
    // upload; remove what this request left behind.
    if !layout::manifest_exists(objects, upload_id).await? {
        layout::delete_upload(objects, upload_id).await?;
        return Err(layout::no_such_upload());
    }
    tracing::debug!(
        upload_id = upload_id.as_str(),
        part_number = part_upload.part_number.get(),
        size,
        "s3 part stored"
    );
    Ok(part_response(&md5_hex, verified.as_ref()))
}

/// Where an in-place part goes and what its upload computes.
pub(super) struct InPlace<'a> {
    pub(super) local: &'a LocalFiles,
    pub(super) layout: FixedLayout,
    pub(super) whole_sha256: bool,
}

/// UploadPart of an upload with a fixed layout on the local store: the body
/// goes straight to its offset in the upload's one file.
pub(super) async fn upload_part_in_place(
    state: &S3State,
    in_place: InPlace<'_>,
    part_upload: PartUpload,
    body: Body,
) -> Result<Response, S3Error> {
    let InPlace {
        local,
        layout: fixed,
        whole_sha256,
    } = in_place;
    let objects = state.objects.as_ref();
    let upload_id = &part_upload.upload_id;
    let part_number = part_upload.part_number;
    let (offset, length) = fixed
        .span(part_number)
        .ok_or_else(|| fixed.misfit(part_number, part_upload.content_length))?;
    if part_upload
        .content_length
        .is_some_and(|declared| declared != length)
    {
        return Err(fixed.misfit(part_number, part_upload.content_length));
    }
    let lock = local.lock(upload_id);
    let _writing = lock.read().await;
    // The region is about to change: the part is not stored until its new
    // bytes are checked and recorded again.
    layout::delete_part_record(objects, upload_id, part_number).await?;
    local.part_changing(upload_id, part_number);
    let mut file = PartFile::open(&local.assembly_path(upload_id)?, offset).await?;
    let hasher = BodyHasher::fast(&part_upload);
    let written = stream_body_into(
        PartSink::File(&mut file),
        body,
        hasher,
        length,
        part_upload.payload_check,
    )
    .await;
    file.finish().await?;
    let streamed = written?;
    let size = streamed.n_bytes;
    if size != length {
        return Err(fixed.misfit(part_number, Some(size)));
    }
    let digests = streamed.hasher.finish();
    let verified = check_part_digests(&part_upload, &digests, &streamed.trailers)?;
    let md5_hex = digests.etag();
    let record = PartRecord {
        version: PartRecord::VERSION,
        md5: md5_hex.clone(),
        size,
        stored: Utc::now(),
        object_etag: None,
        crc64nvme: crc64nvme_value(&digests.crc64nvme),
        checksum: recorded_checksum(verified.as_ref()),
    };
    layout::write_part_record(objects, upload_id, part_number, &record).await?;
    if !layout::manifest_exists(objects, upload_id).await? {
        layout::delete_upload(objects, upload_id).await?;
        return Err(layout::no_such_upload());
    }
    if whole_sha256 {
        local.part_stored(state.objects.clone(), upload_id, fixed);
    }
    tracing::debug!(
        upload_id = upload_id.as_str(),
        part_number = part_number.get(),
        size,
        "s3 part written in place"
    );
    Ok(part_response(&md5_hex, verified.as_ref()))
}

/// UploadPart's answer: the ETag and, as S3 does, the verified checksum.
pub(super) fn part_response(md5_hex: &str, verified: Option<&Checksum>) -> Response {
    let mut response = StatusCode::OK.into_response();
    let etag = HeaderValue::from_str(&format!("\"{md5_hex}\""))
        .expect("a quoted hex digest is a valid header value");
    response.headers_mut().insert(header::ETAG, etag);
    if let Some(checksum) = verified {
        let value =
            HeaderValue::from_str(&checksum.to_base64()).expect("base64 is a valid header value");
        response
            .headers_mut()
            .insert(checksum.algorithm().header_name(), value);
    }
    response
}

pub(super) fn crc64nvme_value(checksum: &Checksum) -> Option<u64> {
    let digest: [u8; 8] = checksum.digest().try_into().ok()?;
    Some(u64::from_be_bytes(digest))
}

fn recorded_checksum(verified: Option<&Checksum>) -> Option<(String, String)> {
    verified.map(|checksum| {
        (
            checksum.algorithm().name().to_string(),
            checksum.to_base64(),
        )
    })
}

/// Checks a part's body against every digest its request declared; returns
/// the declared `x-amz-checksum-*` value, verified.
pub(super) fn check_part_digests(
    part_upload: &PartUpload,
    digests: &BodyDigests,
    trailers: &[(String, String)],
) -> Result<Option<Checksum>, S3Error> {
    if let (PayloadCheck::Sha256(expected), Some(actual)) =
        (part_upload.payload_check, digests.sha256)
    {
        if expected != actual {
            return Err(S3Error::new(
                S3ErrorKind::XAmzContentSha256Mismatch,
                "the body's SHA-256 does not match x-amz-content-sha256",
            ));
        }
    }
    if part_upload
        .content_md5
        .is_some_and(|expected| Some(expected) != digests.md5)
    {
        return Err(S3Error::new(
            S3ErrorKind::BadDigest,
            "the Content-MD5 you specified did not match what we received",
        ));
    }
    let part_number = part_upload.part_number.get();
    let expected = match &part_upload.checksum {
        None => return Ok(None),
        Some(DeclaredChecksum::Header(checksum)) => checksum.clone(),
        Some(DeclaredChecksum::Trailer(algorithm)) => trailers
            .iter()
            .find(|(name, _)| name == algorithm.header_name())
            .ok_or_else(|| {
                S3Error::new(
                    S3ErrorKind::InvalidRequest,
                    format!(
                        "part {part_number}: x-amz-trailer names {} but the body has no such trailer",
                        algorithm.header_name()
                    ),
                )
            })
            .and_then(|(_, value)| {
                Checksum::from_base64(*algorithm, value).ok_or_else(|| {
                    S3Error::new(
                        S3ErrorKind::InvalidRequest,
                        format!(
                            "part {part_number}: the trailer {} is not the base64 of a {} digest",
                            algorithm.header_name(),
                            algorithm.name()
                        ),
                    )
                })
            })?,
    };
    let algorithm = expected.algorithm();
    let actual = digests.checksum(algorithm).ok_or_else(|| {
        S3Error::internal("checking a part", "the declared checksum was not computed")
    })?;
    if *actual != expected {
        return Err(S3Error::new(
            S3ErrorKind::BadDigest,
            format!(
                "part {part_number}: the {} you specified ({}) did not match the calculated checksum ({}); the part was not stored, send it again",
                algorithm.name(),
                expected.to_base64(),
                actual.to_base64()
            ),
        ));
    }
    Ok(Some(expected))
}

/// Where a part's body goes as it streams in.
pub(super) enum PartSink<'a> {
    Store(&'a mut WriteMultipart),
    File(&'a mut PartFile),
}

/// A body streamed into its sink.
pub(super) struct StreamedBody {
    pub(super) hasher: BodyHasher,
    /// Bytes of data (decoded, for an aws-chunked body).
    pub(super) n_bytes: u64,
    /// The trailers of an aws-chunked body.
    pub(super) trailers: Vec<(String, String)>,
}

/// Streams `body` into `sink` while hashing it (decoding aws-chunked
/// bodies on the way), refusing more than `max_bytes` of data.
pub(super) async fn stream_body_into(
    mut sink: PartSink<'_>,
    body: Body,
    mut hasher: BodyHasher,
    max_bytes: u64,
    payload_check: PayloadCheck,
) -> Result<StreamedBody, S3Error> {
    let mut decoder =
        (payload_check == PayloadCheck::UnsignedTrailer).then(ChunkedDecoder::default);
    let mut n_bytes: u64 = 0;
    let mut frames = body.into_data_stream();
    while let Some(frame) = frames.next().await {
        let frame = frame.map_err(|error| {
            S3Error::new(
                S3ErrorKind::IncompleteBody,
                format!("the request body could not be read completely: {error}"),
            )
        })?;
        let pieces = match &mut decoder {
            Some(decoder) => decoder.feed(frame)?,
            None => vec![frame],
        };
        for chunk in pieces {
            n_bytes += chunk.len() as u64;
            if n_bytes > max_bytes {
                return Err(S3Error::new(
                    S3ErrorKind::EntityTooLarge,
                    format!(
                        "your proposed upload exceeds the maximum part size of {max_bytes} bytes"
                    ),
                ));
            }
            hasher = hasher.update(chunk.clone()).await?;
            match &mut sink {
                PartSink::Store(writer) => {
                    writer
                        .wait_for_capacity(MAX_WRITES_IN_FLIGHT)
                        .await
                        .map_err(|error| S3Error::internal("storing a part", error))?;
                    writer.put(chunk);
                }
                PartSink::File(file) => file.write(&chunk).await?,
            }
        }
    }
    let trailers = match decoder {
        Some(decoder) => decoder.finish()?,
        None => Vec::new(),
    };
    Ok(StreamedBody {
        hasher,
        n_bytes,
        trailers,
    })
}

/// Reads a small body whole and checks it against a signed SHA-256.
pub(super) async fn read_small_body(
    body: Body,
    payload_check: PayloadCheck,
    max_bytes: usize,
) -> Result<Bytes, S3Error> {
    let bytes = axum::body::to_bytes(body, max_bytes).await.map_err(|_| {
        S3Error::new(
            S3ErrorKind::EntityTooLarge,
            format!("the request body could not be read or is over {max_bytes} bytes"),
        )
    })?;
    if let PayloadCheck::Sha256(expected) = payload_check {
        let actual: [u8; 32] = Sha256::digest(&bytes).into();
        if actual != expected {
            return Err(S3Error::new(
                S3ErrorKind::XAmzContentSha256Mismatch,
                "the body's SHA-256 does not match x-amz-content-sha256",
            ));
        }
    }
    Ok(bytes)
}

/// The length of the part's data: `Content-Length`, or for an aws-chunked
/// body `x-amz-decoded-content-length`.
pub(super) fn content_length(
    parts: &Parts,
    payload_check: PayloadCheck,
) -> Result<Option<u64>, S3Error> {
    let name = match payload_check {
        PayloadCheck::UnsignedTrailer => "x-amz-decoded-content-length",
        PayloadCheck::Unsigned | PayloadCheck::Sha256(_) => header::CONTENT_LENGTH.as_str(),
    };
    parts
        .headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
                .ok_or_else(|| {
                    S3Error::new(
                        S3ErrorKind::InvalidArgument,
                        format!("{name} is not a number"),
                    )
                })
        })
        .transpose()
}

pub(super) fn content_md5(parts: &Parts) -> Result<Option<[u8; 16]>, S3Error> {
    let Some(value) = parts.headers.get("content-md5") else {
        return Ok(None);
    };
    let invalid = || {
        S3Error::new(
            S3ErrorKind::InvalidDigest,
            "the Content-MD5 you specified is not the base64 of 16 bytes",
        )
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.as_bytes())
        .map_err(|_| invalid())?;
    let digest: [u8; 16] = decoded.try_into().map_err(|_| invalid())?;
    Ok(Some(digest))
}
