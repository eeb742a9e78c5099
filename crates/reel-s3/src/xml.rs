//! Every S3 XML document the crate writes or reads, as serde types through
//! quick-xml (the one XML parser of the tree): the endpoint's answers and
//! error documents, the CompleteMultipartUpload part list it reads (and
//! sends, to a real store), and the real store's answers.
//!
//! Bodies from clients and stores are checked by one pass of
//! [`check_shape`] first: the root element's name and a nesting depth of at
//! most [`MAX_DEPTH`], so a hostile document cannot make the parser recurse
//! or allocate without bound.

use crate::checksum::ChecksumAlgorithm;
use quick_xml::events::Event;
use quick_xml::se::{QuoteLevel, Serializer};
use serde::{Deserialize, Serialize};

use crate::error::{S3Error, S3ErrorKind};

/// The S3 namespace of every answer.
pub(crate) const S3_XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
/// The deepest nesting any S3 document the crate reads has (ListPartsResult
/// → Part → Owner → ID is four); anything much deeper is refused.
pub(crate) const MAX_DEPTH: usize = 16;

/// One `<Part>` of a CompleteMultipartUpload body, as the client sent it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RequestedPart {
    pub(crate) part_number: u32,
    /// The ETag without quotes.
    pub(crate) etag: String,
    /// The part checksums the client listed (`<ChecksumCRC32>` …), as
    /// `(algorithm, base64)`.
    pub(crate) checksums: Vec<(ChecksumAlgorithm, String)>,
}

/// `<CompleteMultipartUpload>`, written and read.
#[derive(Serialize, Deserialize)]
#[serde(rename = "CompleteMultipartUpload")]
struct CompleteRequest {
    #[serde(rename = "Part", default)]
    parts: Vec<CompleteRequestPart>,
}

#[derive(Serialize, Deserialize)]
struct CompleteRequestPart {
    #[serde(rename = "PartNumber")]
    part_number: u32,
    #[serde(rename = "ETag")]
    etag: String,
    #[serde(
        rename = "ChecksumCRC32",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    checksum_crc32: Option<String>,
    #[serde(
        rename = "ChecksumCRC32C",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    checksum_crc32c: Option<String>,
    #[serde(
        rename = "ChecksumCRC64NVME",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    checksum_crc64nvme: Option<String>,
    #[serde(
        rename = "ChecksumSHA1",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    checksum_sha1: Option<String>,
    #[serde(
        rename = "ChecksumSHA256",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    checksum_sha256: Option<String>,
}

/// `<InitiateMultipartUploadResult>`.
#[derive(Serialize, Deserialize)]
#[serde(rename = "InitiateMultipartUploadResult")]
pub(crate) struct InitiateResult<'a> {
    #[serde(rename = "@xmlns", default)]
    pub(crate) xmlns: &'a str,
    #[serde(rename = "Bucket", default)]
    pub(crate) bucket: &'a str,
    #[serde(rename = "Key", default)]
    pub(crate) key: &'a str,
    #[serde(rename = "UploadId", borrow)]
    pub(crate) upload_id: std::borrow::Cow<'a, str>,
}

/// `<ListPartsResult>` as the endpoint writes it.
#[derive(Serialize)]
#[serde(rename = "ListPartsResult")]
pub(crate) struct ListPartsResult<'a> {
    #[serde(rename = "@xmlns")]
    pub(crate) xmlns: &'a str,
    #[serde(rename = "Bucket")]
    pub(crate) bucket: &'a str,
    #[serde(rename = "Key")]
    pub(crate) key: &'a str,
    #[serde(rename = "UploadId")]
    pub(crate) upload_id: &'a str,
    #[serde(rename = "StorageClass")]
    pub(crate) storage_class: &'a str,
    #[serde(rename = "PartNumberMarker")]
    pub(crate) part_number_marker: u32,
    #[serde(rename = "NextPartNumberMarker")]
    pub(crate) next_part_number_marker: u32,
    #[serde(rename = "MaxParts")]
    pub(crate) max_parts: u32,
    #[serde(rename = "IsTruncated")]
    pub(crate) is_truncated: bool,
    #[serde(rename = "Part")]
    pub(crate) parts: Vec<ListedPart>,
}

/// One `<Part>` of a ListPartsResult the endpoint writes.
#[derive(Serialize)]
pub(crate) struct ListedPart {
    #[serde(rename = "PartNumber")]
    pub(crate) part_number: u32,
    #[serde(rename = "LastModified")]
    pub(crate) last_modified: String,
    /// Quoted, as S3 sends it.
    #[serde(rename = "ETag")]
    pub(crate) etag: String,
    #[serde(rename = "Size")]
    pub(crate) size: u64,
}

/// `<ListPartsResult>` as a real store answers it: parts missing a field
/// are skipped by the caller.
#[derive(Deserialize)]
pub(crate) struct StoreListParts {
    #[serde(rename = "IsTruncated", default)]
    pub(crate) is_truncated: bool,
    #[serde(rename = "NextPartNumberMarker", default)]
    pub(crate) next_part_number_marker: Option<u32>,
    #[serde(rename = "Part", default)]
    pub(crate) parts: Vec<StoreListedPart>,
}

/// One `<Part>` of a real store's ListPartsResult.
#[derive(Deserialize)]
pub(crate) struct StoreListedPart {
    #[serde(rename = "PartNumber")]
    pub(crate) part_number: Option<u32>,
    #[serde(rename = "Size")]
    pub(crate) size: Option<u64>,
    #[serde(rename = "ETag")]
    pub(crate) etag: Option<String>,
}

/// `<CompleteMultipartUploadResult>`.
#[derive(Serialize, Deserialize)]
#[serde(rename = "CompleteMultipartUploadResult")]
pub(crate) struct CompleteResult {
    #[serde(rename = "@xmlns", default)]
    pub(crate) xmlns: String,
    #[serde(rename = "Location", default)]
    pub(crate) location: String,
    #[serde(rename = "Bucket", default)]
    pub(crate) bucket: String,
    #[serde(rename = "Key", default)]
    pub(crate) key: String,
    /// Quoted, as S3 sends it.
    #[serde(rename = "ETag", default)]
    pub(crate) etag: String,
    /// The full-object CRC64NVME, base64.
    #[serde(
        rename = "ChecksumCRC64NVME",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) checksum_crc64nvme: Option<String>,
    /// `FULL_OBJECT` when the checksum above is given.
    #[serde(
        rename = "ChecksumType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) checksum_type: Option<String>,
}

/// `<Error>`, written by the endpoint and read from a real store.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Error")]
pub(crate) struct ErrorDocument {
    #[serde(rename = "Code", default)]
    pub(crate) code: String,
    #[serde(rename = "Message", default)]
    pub(crate) message: Option<String>,
    #[serde(rename = "Resource", default)]
    pub(crate) resource: String,
    #[serde(rename = "RequestId", default)]
    pub(crate) request_id: String,
}

/// A document with the XML declaration, every text character escaped.
pub(crate) fn to_document<T: Serialize>(value: &T) -> String {
    let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let mut serializer = Serializer::new(&mut body);
    serializer.set_quote_level(QuoteLevel::Full);
    value
        .serialize(serializer)
        .expect("the S3 documents serialize to XML");
    body
}

/// Why a document was refused.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) String);

/// Reads a document whose root element is `root`, after [`check_shape`].
pub(crate) fn from_document<'de, T: Deserialize<'de>>(
    text: &'de str,
    root: &str,
) -> Result<T, Refused> {
    check_shape(text, root)?;
    quick_xml::de::from_str(text).map_err(|error| Refused(error.to_string()))
}

/// Checks that `text` is well-formed XML whose root element is `root`
/// (any namespace) and that it nests at most [`MAX_DEPTH`] deep.
pub(crate) fn check_shape(text: &str, root: &str) -> Result<(), Refused> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut check_root = |name: &[u8]| {
        seen_root = true;
        if name == root.as_bytes() {
            Ok(())
        } else {
            Err(Refused(format!("the root element is not {root}")))
        }
    };
    loop {
        match reader
            .read_event()
            .map_err(|error| Refused(error.to_string()))?
        {
            Event::Start(element) => {
                if depth == 0 {
                    check_root(element.local_name().as_ref())?;
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Refused(format!(
                        "it nests deeper than {MAX_DEPTH} elements"
                    )));
                }
            }
            Event::Empty(element) if depth == 0 => check_root(element.local_name().as_ref())?,
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof => break,
            _ => {}
        }
    }
    if seen_root {
        Ok(())
    } else {
        Err(Refused(format!("it has no {root} element")))
    }
}

/// The CompleteMultipartUpload body for `(part number, etag)` pairs.
pub(crate) fn complete_request_body(parts: &[(u32, String)]) -> String {
    let request = CompleteRequest {
        parts: parts
            .iter()
            .map(|(part_number, etag)| CompleteRequestPart {
                part_number: *part_number,
                etag: format!("\"{}\"", etag.trim_matches('"')),
                checksum_crc32: None,
                checksum_crc32c: None,
                checksum_crc64nvme: None,
                checksum_sha1: None,
                checksum_sha256: None,
            })
            .collect(),
    };
    to_document(&request)
}

/// Parses `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"…"</ETag></Part>…`,
/// keeping the parts in document order (checking that order is the caller's job).
pub(crate) fn parse_complete_request(body: &[u8]) -> Result<Vec<RequestedPart>, S3Error> {
    let malformed = |what: &str| {
        S3Error::new(
            S3ErrorKind::MalformedXml,
            format!("the CompleteMultipartUpload body is not valid: {what}"),
        )
    };
    let text = std::str::from_utf8(body).map_err(|_| malformed("not UTF-8"))?;
    let request: CompleteRequest =
        from_document(text, "CompleteMultipartUpload").map_err(|Refused(why)| malformed(&why))?;
    if request.parts.is_empty() {
        return Err(malformed("it lists no parts"));
    }
    Ok(request
        .parts
        .into_iter()
        .map(|part| {
            let checksums = [
                (ChecksumAlgorithm::Crc32, part.checksum_crc32),
                (ChecksumAlgorithm::Crc32c, part.checksum_crc32c),
                (ChecksumAlgorithm::Crc64Nvme, part.checksum_crc64nvme),
                (ChecksumAlgorithm::Sha1, part.checksum_sha1),
                (ChecksumAlgorithm::Sha256, part.checksum_sha256),
            ]
            .into_iter()
            .filter_map(|(algorithm, value)| Some((algorithm, value?.trim().to_string())))
            .collect();
            RequestedPart {
                part_number: part.part_number,
                etag: part.etag.trim().trim_matches('"').to_ascii_lowercase(),
                checksums,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, expected: Result<Vec<(u32, &str)>, S3ErrorKind>) {
        let actual = parse_complete_request(body.as_bytes())
            .map(|parts| {
                parts
                    .into_iter()
                    .map(|part| (part.part_number, part.etag))
                    .collect::<Vec<_>>()
            })
            .map_err(|error| error.kind);
        let expected = expected.map(|parts| {
            parts
                .into_iter()
                .map(|(number, etag)| (number, etag.to_string()))
                .collect::<Vec<_>>()
        });
        assert_eq!(actual, expected);
    }

    #[test]
    fn parses_parts_with_namespace_and_quoted_etags() {
        check(
            r#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"AB12"</ETag><PartNumber>1</PartNumber></Part><Part><PartNumber>2</PartNumber><ETag>cd34</ETag></Part></CompleteMultipartUpload>"#,
            Ok(vec![(1, "ab12"), (2, "cd34")]),
        );
    }

    #[test]
    fn parses_entity_escaped_quotes() {
        check(
            "<CompleteMultipartUpload><Part><PartNumber>3</PartNumber><ETag>&quot;ab&quot;</ETag></Part></CompleteMultipartUpload>",
            Ok(vec![(3, "ab")]),
        );
    }

    #[test]
    fn rejects_empty_and_malformed_bodies() {
        check("<CompleteMultipartUpload/>", Err(S3ErrorKind::MalformedXml));
        check("<Other/>", Err(S3ErrorKind::MalformedXml));
        check("not xml", Err(S3ErrorKind::MalformedXml));
        check(
            "<CompleteMultipartUpload><Part><PartNumber>-1</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>",
            Err(S3ErrorKind::MalformedXml),
        );
        check(
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
            Err(S3ErrorKind::MalformedXml),
        );
    }

    #[test]
    fn refuses_deep_nesting() {
        let deep = format!(
            "<CompleteMultipartUpload>{}{}</CompleteMultipartUpload>",
            "<Part>".repeat(100_000),
            "</Part>".repeat(100_000)
        );
        check(&deep, Err(S3ErrorKind::MalformedXml));
        let error = check_shape(&deep, "CompleteMultipartUpload").expect_err("deep");
        assert!(error.0.contains("deeper"), "{}", error.0);
    }

    #[test]
    fn written_bodies_read_back() {
        let body = complete_request_body(&[(1, "\"ab\"".to_string()), (2, "cd".to_string())]);
        check(&body, Ok(vec![(1, "ab"), (2, "cd")]));
    }

    #[test]
    fn escapes_markup() {
        let document = to_document(&ErrorDocument {
            code: "InvalidArgument".to_string(),
            message: Some(r#"a<b>&"c'"#.to_string()),
            resource: String::new(),
            request_id: String::new(),
        });
        assert!(
            document.contains("<Message>a&lt;b&gt;&amp;&quot;c&apos;</Message>"),
            "{document}"
        );
    }
}
