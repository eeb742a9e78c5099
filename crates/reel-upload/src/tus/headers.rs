//! The tus headers: numbers, checksums, metadata, concatenation, dates.

use super::*;

pub(super) fn header_text<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<Option<&'a str>, TusError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|text| Some(text.trim()))
            .map_err(|_| TusError::BadRequest(format!("header {name} is not ASCII text"))),
    }
}

/// A non-negative decimal header (tus: Upload-Offset, Upload-Length).
pub(super) fn header_number(headers: &HeaderMap, name: &str) -> Result<Option<u64>, TusError> {
    let Some(text) = header_text(headers, name)? else {
        return Ok(None);
    };
    let valid =
        !text.is_empty() && text.len() <= 20 && text.bytes().all(|byte| byte.is_ascii_digit());
    match text.parse::<u64>() {
        Ok(number) if valid => Ok(Some(number)),
        _ => Err(TusError::BadRequest(format!(
            "header {name} is {:?}; expected a non-negative integer",
            text.chars().take(40).collect::<String>()
        ))),
    }
}

pub(super) fn content_type_is_offset_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
}

pub(super) fn parse_checksum_header(headers: &HeaderMap) -> Result<Option<BodyChecksum>, TusError> {
    match header_text(headers, "upload-checksum")? {
        Some(text) => parse_checksum(text).map(Some),
        None => Ok(None),
    }
}

/// tus checksum: `Upload-Checksum: <algorithm> <base64 digest>`.
pub(super) fn parse_checksum(text: &str) -> Result<BodyChecksum, TusError> {
    let (algorithm, encoded) = text.split_once(' ').ok_or_else(|| {
        TusError::BadRequest(format!(
            "Upload-Checksum {text:?} must be `ALGORITHM BASE64DIGEST`, e.g. `sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=`"
        ))
    })?;
    let digest = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|error| {
            TusError::BadRequest(format!("Upload-Checksum digest is not base64: {error}"))
        })?;
    let (checksum, expected_len) = match algorithm {
        "sha1" => (BodyChecksum::Sha1(digest.clone()), 20),
        "sha256" => (BodyChecksum::Sha256(digest.clone()), 32),
        other => {
            return Err(TusError::BadRequest(format!(
            "Upload-Checksum algorithm {:?} is not supported; use one of {TUS_CHECKSUM_ALGORITHMS}",
            other.chars().take(40).collect::<String>()
        )))
        }
    };
    if digest.len() != expected_len {
        return Err(TusError::BadRequest(format!(
            "Upload-Checksum {algorithm} digest has {} bytes; expected {expected_len}",
            digest.len()
        )));
    }
    Ok(checksum)
}

/// tus creation: `Upload-Metadata: key base64value,key2,…`; values must be
/// base64, keys unique, non-empty and without spaces or commas.
pub(super) fn parse_metadata(
    text: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, TusError> {
    let mut metadata = serde_json::Map::new();
    for pair in text
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        let (key, encoded) = match pair.split_once(' ') {
            Some((key, encoded)) => (key, encoded.trim()),
            None => (pair, ""),
        };
        if key.is_empty() || key.contains(' ') {
            return Err(TusError::BadRequest(format!(
                "Upload-Metadata pair {pair:?} has an invalid key"
            )));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|error| {
                TusError::BadRequest(format!(
                    "Upload-Metadata value of {key:?} is not base64: {error}"
                ))
            })?;
        let value = String::from_utf8_lossy(&decoded).into_owned();
        if metadata.insert(key.to_string(), value.into()).is_some() {
            return Err(TusError::BadRequest(format!(
                "Upload-Metadata key {key:?} appears twice"
            )));
        }
    }
    Ok(metadata)
}

/// The inverse of [`parse_metadata`], for HEAD.
pub(super) fn metadata_header(metadata: &serde_json::Value) -> Option<String> {
    let object = metadata.as_object().filter(|object| !object.is_empty())?;
    let pairs: Vec<String> = object
        .iter()
        .map(|(key, value)| {
            let text = value.as_str().unwrap_or_default();
            if text.is_empty() {
                key.clone()
            } else {
                format!(
                    "{key} {}",
                    base64::engine::general_purpose::STANDARD.encode(text)
                )
            }
        })
        .collect();
    Some(pairs.join(","))
}

/// tus concatenation: `partial`, or `final;URL URL…` where each URL (absolute
/// or a path) must name an upload of this server: `{base_path}/{id}`.
pub(super) fn parse_concat(text: &str, base_path: &str) -> Result<ConcatRequest, TusError> {
    if text == "partial" {
        return Ok(ConcatRequest::Partial);
    }
    let Some(urls) = text.strip_prefix("final;") else {
        return Err(TusError::BadRequest(format!(
            "Upload-Concat must be `partial` or `final;URL URL…`, not {:?}",
            text.chars().take(80).collect::<String>()
        )));
    };
    let mut partials: Vec<UploadId> = Vec::new();
    for url in urls.split(' ').filter(|url| !url.is_empty()) {
        let id = partial_id_from_url(url, base_path)?;
        if partials.contains(&id) {
            return Err(TusError::BadRequest(format!(
                "Upload-Concat names partial upload {id} twice"
            )));
        }
        partials.push(id);
    }
    if partials.is_empty() {
        return Err(TusError::BadRequest(
            "Upload-Concat final names no partial uploads".to_string(),
        ));
    }
    Ok(ConcatRequest::Final(partials))
}

pub(super) fn partial_id_from_url(url: &str, base_path: &str) -> Result<UploadId, TusError> {
    let invalid = || {
        TusError::BadRequest(format!(
            "Upload-Concat URL {:?} is not an upload of this server ({base_path}/ID)",
            url.chars().take(120).collect::<String>()
        ))
    };
    let path = match url.split_once("://") {
        Some((scheme, rest)) if scheme == "http" || scheme == "https" => rest
            .find('/')
            .map(|slash| &rest[slash..])
            .ok_or_else(invalid)?,
        Some(_) => return Err(invalid()),
        None => url,
    };
    let id_text = path
        .strip_prefix(base_path)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(invalid)?;
    id_text.parse().map_err(|_| invalid())
}

/// `scheme://host` as the client reached this server.
pub(super) fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'))
        })
        .unwrap_or("localhost");
    // Behind a TLS-terminating proxy the Location must still be https
    // (tusd issues #277 and #1227).
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
    {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

pub(super) fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

pub(super) fn number_header(number: u64) -> HeaderValue {
    HeaderValue::from(number)
}

pub(super) fn text_header(text: &str) -> Result<HeaderValue, TusError> {
    HeaderValue::from_str(text)
        .map_err(|_| TusError::Internal(format!("{text:?} is not a valid header value")))
}

pub(super) fn system_time(timestamp: Timestamp) -> SystemTime {
    let micros = u64::try_from(timestamp.as_micros()).unwrap_or(0);
    SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(micros)
}

/// tus expiration: `Upload-Expires` in the HTTP date format (RFC 9110).
pub(super) fn expires_header(expires_at: Timestamp) -> HeaderValue {
    HeaderValue::from_str(&httpdate::fmt_http_date(system_time(expires_at)))
        .expect("an HTTP date is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_metadata(text: &str, expected: Option<serde_json::Value>) {
        let parsed = parse_metadata(text).ok().map(serde_json::Value::Object);
        assert_eq!(parsed, expected, "{text:?}");
    }

    #[test]
    fn metadata_pairs_decode_from_base64() {
        check_metadata(
            "filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential",
            Some(json!({"filename": "world_domination_plan.pdf", "is_confidential": ""})),
        );
        check_metadata("", Some(json!({})));
        check_metadata("filename not*base64", None);
        check_metadata("a YQ==,a Yg==", None);
        check_metadata(" YQ==", Some(json!({"YQ==": ""})));
    }

    fn check_concat_url(url: &str, valid: bool) {
        assert_eq!(partial_id_from_url(url, "/files").is_ok(), valid, "{url:?}");
    }

    #[test]
    fn concat_urls_must_name_uploads_of_this_server() {
        let id = "0123456789abcdef0123456789abcdef";
        check_concat_url(&format!("/files/{id}"), true);
        check_concat_url(&format!("http://127.0.0.1:8080/files/{id}"), true);
        check_concat_url(&format!("https://example.com/files/{id}"), true);
        check_concat_url(&format!("/files/../files/{id}"), false);
        check_concat_url(&format!("/other/{id}"), false);
        check_concat_url(&format!("file:///files/{id}"), false);
        check_concat_url("/files/../../etc/passwd", false);
        check_concat_url(&format!("/files/{id}/x"), false);
        check_concat_url(id, false);
    }

    fn check_checksum(text: &str, valid: bool) {
        assert_eq!(parse_checksum(text).is_ok(), valid, "{text:?}");
    }

    #[test]
    fn checksums_name_a_known_algorithm_and_a_full_digest() {
        check_checksum("sha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=", true);
        check_checksum("sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", true);
        check_checksum("md5 1B2M2Y8AsgTpgAmY7PhCfg==", false);
        check_checksum("sha1 2jmj7l5rSw0y", false);
        check_checksum("sha1", false);
        check_checksum("sha256 2jmj7l5rSw0yVb/vlWAYkK/YBwk=", false);
    }
}
