//! Multipart uploads on a real S3-compatible store (AWS S3, MinIO, R2,
//! Garage): the same operations as the embedded endpoint's in-process
//! calls, sent to the store with SigV4 query signatures, and part URLs
//! presigned for the store itself so that clients upload straight to it.
//!
//! `object_store` has no presigned part URLs and no ListParts, so these few
//! calls are made here with the crate's own signer. Addressing is
//! path-style (`{endpoint}/{bucket}/{key}`), which MinIO, R2 and Garage use
//! and AWS still serves.

use std::time::{Duration, SystemTime};

use axum::http::Method;
use url::Url;

use crate::handlers::{OperationError, StoredPart};
use crate::xml::{self, from_document, Refused};
use crate::{presign, PresignRequest, S3Credentials};

/// How long the signature of one API call lives.
const CALL_LIFETIME: Duration = Duration::from_secs(300);
/// The longest ListParts page S3 returns.
const LIST_PAGE: u32 = 1000;

/// A real store's multipart API.
#[derive(Clone, Debug)]
pub struct RemoteS3 {
    endpoint: Url,
    bucket: String,
    credentials: S3Credentials,
    client: reqwest::Client,
}

impl RemoteS3 {
    /// The store at `endpoint` (e.g. `https://s3.eu-west-1.amazonaws.com`
    /// or `http://minio:9000`), one bucket, and the credentials reel signs
    /// with (never logged).
    pub fn new(endpoint: Url, bucket: String, credentials: S3Credentials) -> RemoteS3 {
        RemoteS3 {
            endpoint,
            bucket,
            credentials,
            client: reqwest::Client::new(),
        }
    }

    /// The bucket uploads go to.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The store's endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// A presigned URL for `method` on `key` with `query`, valid `expires`.
    pub fn presign(
        &self,
        method: &Method,
        key: &str,
        query: &[(&str, &str)],
        expires: Duration,
    ) -> Result<String, OperationError> {
        presign(
            &PresignRequest {
                credentials: &self.credentials,
                endpoint: &self.endpoint,
                method,
                bucket: &self.bucket,
                key,
                query,
                expires,
            },
            SystemTime::now(),
        )
        .map_err(|error| failure(500, "InvalidRequest", error.to_string()))
    }

    async fn call(
        &self,
        method: Method,
        key: &str,
        query: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<String, OperationError> {
        let url = self.presign(&method, key, query, CALL_LIFETIME)?;
        let mut request = self.client.request(method, url);
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.map_err(|error| {
            failure(
                503,
                "ServiceUnavailable",
                // Without the URL: it carries the presigned signature.
                format!("the store did not answer: {}", error.without_url()),
            )
        })?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        // CompleteMultipartUpload may answer 200 with an error document.
        if !(200..300).contains(&status) || text.contains("<Error>") {
            let error: Option<xml::ErrorDocument> = from_document(&text, "Error").ok();
            let code = error
                .as_ref()
                .map_or("InternalError", |error| error.code.as_str())
                .to_string();
            let message = error
                .and_then(|error| error.message)
                .unwrap_or_else(|| format!("HTTP {status}"));
            let status = if status < 300 { 500 } else { status };
            return Err(OperationError {
                code: static_code(&code),
                status,
                message: format!("the store answered {code}: {message}"),
            });
        }
        Ok(text)
    }

    /// CreateMultipartUpload: the new upload id.
    pub async fn start_upload(&self, key: &str) -> Result<String, OperationError> {
        let text = self
            .call(Method::POST, key, &[("uploads", "")], None)
            .await?;
        from_document::<xml::InitiateResult>(&text, "InitiateMultipartUploadResult")
            .map(|result| result.upload_id.trim().to_string())
            .map_err(|Refused(why)| {
                failure(
                    502,
                    "InternalError",
                    format!("the store's CreateMultipartUpload answer has no UploadId: {why}"),
                )
            })
    }

    /// ListParts, every page: the parts the store holds.
    pub async fn stored_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<StoredPart>, OperationError> {
        let mut parts = Vec::new();
        let mut marker = 0u32;
        loop {
            let marker_text = marker.to_string();
            let page_text = LIST_PAGE.to_string();
            let text = self
                .call(
                    Method::GET,
                    key,
                    &[
                        ("max-parts", &page_text),
                        ("part-number-marker", &marker_text),
                        ("uploadId", upload_id),
                    ],
                    None,
                )
                .await?;
            // S3 answers `ListPartsResult`; some compatible stores (moto)
            // name the root `ListPartsResponse` with the same content.
            let listing: xml::StoreListParts = from_document(&text, "ListPartsResult")
                .or_else(|_| from_document(&text, "ListPartsResponse"))
                .map_err(|Refused(why)| {
                    failure(
                        502,
                        "InternalError",
                        format!("the store's ListParts answer is not valid: {why}"),
                    )
                })?;
            for part in listing.parts {
                let (Some(number), Some(size), Some(etag)) =
                    (part.part_number, part.size, part.etag)
                else {
                    continue;
                };
                parts.push(StoredPart {
                    part_number: number,
                    size,
                    etag: etag.trim().trim_matches('"').to_string(),
                    crc64nvme: None,
                });
            }
            let (truncated, next) = (listing.is_truncated, listing.next_part_number_marker);
            match next {
                Some(next) if truncated && next > marker => marker = next,
                _ => break,
            }
        }
        parts.sort_by_key(|part| part.part_number);
        Ok(parts)
    }

    /// CompleteMultipartUpload from `(part number, etag)` pairs: the
    /// object's ETag.
    pub async fn finish_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<String, OperationError> {
        let body = xml::complete_request_body(parts);
        let text = self
            .call(Method::POST, key, &[("uploadId", upload_id)], Some(body))
            .await?;
        Ok(
            from_document::<xml::CompleteResult>(&text, "CompleteMultipartUploadResult")
                .map(|result| result.etag.trim().trim_matches('"').to_string())
                .unwrap_or_default(),
        )
    }

    /// AbortMultipartUpload.
    pub async fn cancel_upload(&self, key: &str, upload_id: &str) -> Result<(), OperationError> {
        self.call(Method::DELETE, key, &[("uploadId", upload_id)], None)
            .await
            .map(|_| ())
    }
}

fn failure(status: u16, code: &'static str, message: String) -> OperationError {
    OperationError {
        code,
        status,
        message,
    }
}

/// The S3 codes callers act on, as static names.
fn static_code(code: &str) -> &'static str {
    match code {
        "NoSuchUpload" => "NoSuchUpload",
        "InvalidPart" => "InvalidPart",
        "InvalidPartOrder" => "InvalidPartOrder",
        "EntityTooSmall" => "EntityTooSmall",
        "AccessDenied" => "AccessDenied",
        "SignatureDoesNotMatch" => "SignatureDoesNotMatch",
        "NoSuchBucket" => "NoSuchBucket",
        _ => "InternalError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_read_from_s3_documents() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>k</Key><UploadId>abc123</UploadId></InitiateMultipartUploadResult>"#;
        let upload_id = |text: &str| {
            from_document::<xml::InitiateResult>(text, "InitiateMultipartUploadResult")
                .ok()
                .map(|result| result.upload_id.to_string())
        };
        assert_eq!(upload_id(xml).as_deref(), Some("abc123"));
        assert_eq!(upload_id("<InitiateMultipartUploadResult/>"), None);
        assert_eq!(upload_id("not xml"), None);
        let listing = r#"<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><IsTruncated>true</IsTruncated><NextPartNumberMarker>2</NextPartNumberMarker><Part><PartNumber>1</PartNumber><LastModified>x</LastModified><ETag>"a"</ETag><Size>5</Size></Part><Part><PartNumber>2</PartNumber><Size>7</Size></Part><Owner><ID>o</ID></Owner></ListPartsResult>"#;
        let listing: xml::StoreListParts =
            from_document(listing, "ListPartsResult").expect("listing");
        assert!(listing.is_truncated);
        assert_eq!(listing.next_part_number_marker, Some(2));
        assert_eq!(listing.parts.len(), 2);
        assert_eq!(listing.parts[1].etag, None);
    }

    #[test]
    fn unknown_codes_map_to_internal_error() {
        assert_eq!(static_code("NoSuchUpload"), "NoSuchUpload");
        assert_eq!(static_code("SlowDown"), "InternalError");
    }
}
