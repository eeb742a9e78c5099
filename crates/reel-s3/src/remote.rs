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
use crate::xml::escape;
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
                format!("the store did not answer: {error}"),
            )
        })?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        // CompleteMultipartUpload may answer 200 with an error document.
        if !(200..300).contains(&status) || text.contains("<Error>") {
            let code = element(&text, "Code").unwrap_or_else(|| "InternalError".to_string());
            let message = element(&text, "Message").unwrap_or_else(|| text.clone());
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
        element(&text, "UploadId").ok_or_else(|| {
            failure(
                502,
                "InternalError",
                "the store's CreateMultipartUpload answer has no UploadId".to_string(),
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
            let document = roxmltree::Document::parse(&text).map_err(|error| {
                failure(
                    502,
                    "InternalError",
                    format!("the store's ListParts answer is not XML: {error}"),
                )
            })?;
            for part in document
                .descendants()
                .filter(|node| node.has_tag_name("Part"))
            {
                let child = |name: &str| {
                    part.children()
                        .find(|node| node.has_tag_name(name))
                        .and_then(|node| node.text())
                        .map(str::trim)
                };
                let (Some(number), Some(size), Some(etag)) = (
                    child("PartNumber").and_then(|text| text.parse().ok()),
                    child("Size").and_then(|text| text.parse().ok()),
                    child("ETag"),
                ) else {
                    continue;
                };
                parts.push(StoredPart {
                    part_number: number,
                    size,
                    etag: etag.trim_matches('"').to_string(),
                });
            }
            let truncated = element(&text, "IsTruncated").as_deref() == Some("true");
            let next = element(&text, "NextPartNumberMarker").and_then(|text| text.parse().ok());
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
        let mut body = String::from("<CompleteMultipartUpload>");
        for (number, etag) in parts {
            body.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>\"{}\"</ETag></Part>",
                escape(etag.trim_matches('"'))
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let text = self
            .call(Method::POST, key, &[("uploadId", upload_id)], Some(body))
            .await?;
        Ok(element(&text, "ETag")
            .map(|etag| etag.trim_matches('"').to_string())
            .unwrap_or_default())
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

/// The text of the first `<name>` element of an XML document.
fn element(xml: &str, name: &str) -> Option<String> {
    let document = roxmltree::Document::parse(xml).ok()?;
    document
        .descendants()
        .find(|node| node.has_tag_name(name))
        .and_then(|node| node.text())
        .map(|text| text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_read_from_s3_documents() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>k</Key><UploadId>abc123</UploadId></InitiateMultipartUploadResult>"#;
        assert_eq!(element(xml, "UploadId").as_deref(), Some("abc123"));
        assert_eq!(element(xml, "Missing"), None);
        assert_eq!(element("not xml", "UploadId"), None);
    }

    #[test]
    fn unknown_codes_map_to_internal_error() {
        assert_eq!(static_code("NoSuchUpload"), "NoSuchUpload");
        assert_eq!(static_code("SlowDown"), "InternalError");
    }
}
