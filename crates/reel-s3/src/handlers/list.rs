//! ListParts.

use super::*;

pub(super) async fn list_parts(
    state: &S3State,
    object: &ObjectTarget,
    upload_id: &UploadId,
    query: &[(String, String)],
) -> Result<Response, S3Error> {
    let query_number = |name: &str, default: u32, max: u32| -> Result<u32, S3Error> {
        match query.iter().find(|(pair_name, _)| pair_name == name) {
            None => Ok(default),
            Some((_, value)) => value
                .parse::<u32>()
                .ok()
                .filter(|number| *number <= max)
                .ok_or_else(|| {
                    S3Error::new(
                        S3ErrorKind::InvalidArgument,
                        format!("{name} must be an integer from 0 to {max}"),
                    )
                }),
        }
    };
    // ListParts returns at most 1000 parts per page.
    let max_parts = query_number("max-parts", 1000, 1000)?.max(1);
    let part_number_marker = query_number("part-number-marker", 0, PartNumber::MAX)?;
    let objects = state.objects.as_ref();
    layout::read_manifest(objects, upload_id, &object.bucket, &object.key).await?;
    let after_marker: Vec<PartNumber> = layout::list_part_numbers(objects, upload_id)
        .await?
        .into_iter()
        .filter(|part_number| part_number.get() > part_number_marker)
        .collect();
    let is_truncated = after_marker.len() > max_parts as usize;
    let page = &after_marker[..after_marker.len().min(max_parts as usize)];
    let mut parts = Vec::with_capacity(page.len());
    for part_number in page {
        // A record listed a moment ago may vanish with a concurrent abort.
        let Some(record) = layout::read_part_record(objects, upload_id, *part_number).await? else {
            continue;
        };
        parts.push(xml::ListedPart {
            part_number: part_number.get(),
            last_modified: format_time(record.stored),
            etag: format!("\"{}\"", record.md5),
            size: record.size,
        });
    }
    let next_marker = page.last().map_or(part_number_marker, |last| last.get());
    Ok(xml_response(to_document(&xml::ListPartsResult {
        xmlns: S3_XMLNS,
        bucket: &object.bucket,
        key: &object.key,
        upload_id: upload_id.as_str(),
        storage_class: "STANDARD",
        part_number_marker,
        next_part_number_marker: next_marker,
        max_parts,
        is_truncated,
        parts,
    })))
}
