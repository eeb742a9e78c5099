//! AWS Signature Version 4 for S3: verifying header-signed and presigned
//! (query-signed) requests, and presigning URLs.
//!
//! The canonical request, string to sign and signing key follow
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>
//! and `sigv4-query-string-auth.html`. S3 differs from other services in two
//! ways that matter here: the path is encoded once (not twice) and is not
//! normalized, and a presigned request's payload hash is `UNSIGNED-PAYLOAD`.

use std::time::{Duration, SystemTime};

use axum::http::{header, HeaderMap, Method};
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{S3Error, S3ErrorKind};
use crate::{PresignError, PresignRequest, S3Credentials};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const STREAMING_UNSIGNED_PAYLOAD_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// SigV4 query authentication allows at most 7 days.
const MAX_PRESIGN_EXPIRES_SECS: u64 = 604_800;

/// SigV4 "URI-encode": everything but `A-Za-z0-9-_.~` is percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same for object key paths, where `/` stays as is.
const UNRESERVED_AND_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

/// How the handler must check the body against what was signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PayloadCheck {
    /// `UNSIGNED-PAYLOAD`: the body is not covered by the signature.
    Unsigned,
    /// The body's SHA-256 must equal this.
    Sha256([u8; 32]),
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: an unsigned `aws-chunked`
    /// body whose checksum follows in a trailer (`x-amz-trailer`).
    UnsignedTrailer,
}

/// The parts of a request that the signature covers.
pub(crate) struct SignedRequest<'a> {
    pub(crate) method: &'a Method,
    /// The full path as received, before any router prefix was stripped,
    /// still percent-encoded.
    pub(crate) raw_path: &'a str,
    pub(crate) raw_query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
    /// The authority from the request line, for HTTP/2 requests without `Host`.
    pub(crate) uri_authority: Option<&'a str>,
}

/// Checks the request's SigV4 signature (header or query) against
/// `credentials` at time `now`, returning what the body must hash to.
pub(crate) fn authenticate(
    credentials: &S3Credentials,
    request: &SignedRequest<'_>,
    now: DateTime<Utc>,
    max_clock_skew: Duration,
) -> Result<PayloadCheck, S3Error> {
    let query_pairs = parse_query(request.raw_query.unwrap_or(""));
    if let Some(authorization) = request.headers.get(header::AUTHORIZATION) {
        let authorization = authorization.to_str().map_err(|_| {
            S3Error::new(
                S3ErrorKind::AuthorizationHeaderMalformed,
                "the Authorization header is not ASCII",
            )
        })?;
        authenticate_header(
            credentials,
            request,
            authorization,
            &query_pairs,
            now,
            max_clock_skew,
        )
    } else if query_pairs
        .iter()
        .any(|(name, _)| name == "X-Amz-Algorithm")
    {
        authenticate_query(credentials, request, &query_pairs, now, max_clock_skew)
    } else {
        Err(S3Error::new(
            S3ErrorKind::AccessDenied,
            "anonymous requests are not allowed; sign the request with AWS SigV4 or use a presigned URL",
        ))
    }
}

fn authenticate_header(
    credentials: &S3Credentials,
    request: &SignedRequest<'_>,
    authorization: &str,
    query_pairs: &[(String, String)],
    now: DateTime<Utc>,
    max_clock_skew: Duration,
) -> Result<PayloadCheck, S3Error> {
    let malformed = |what: &str| {
        S3Error::new(
            S3ErrorKind::AuthorizationHeaderMalformed,
            format!("the Authorization header is malformed: {what}"),
        )
    };
    let Some(fields) = authorization.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(malformed("only AWS4-HMAC-SHA256 is supported"));
    };
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for field in fields.split(',') {
        match field.trim().split_once('=') {
            Some(("Credential", value)) => credential = Some(value),
            Some(("SignedHeaders", value)) => signed_headers = Some(value),
            Some(("Signature", value)) => signature = Some(value),
            _ => {
                return Err(malformed(
                    "expected Credential=…, SignedHeaders=…, Signature=…",
                ))
            }
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(malformed(
            "Credential, SignedHeaders and Signature are all required",
        ));
    };
    let amz_date_text = header_text(request.headers, "x-amz-date").ok_or_else(|| {
        S3Error::new(
            S3ErrorKind::AccessDenied,
            "header-signed requests need an x-amz-date header",
        )
    })?;
    let amz_date = parse_amz_date(amz_date_text).ok_or_else(|| {
        S3Error::new(
            S3ErrorKind::AccessDenied,
            format!("x-amz-date {amz_date_text:?} is not in the form 20240102T030405Z"),
        )
    })?;
    let scope = check_credential_scope(
        credentials,
        credential,
        amz_date_text,
        S3ErrorKind::AuthorizationHeaderMalformed,
    )?;
    let payload_hash = header_text(request.headers, "x-amz-content-sha256").ok_or_else(|| {
        S3Error::new(
            S3ErrorKind::InvalidRequest,
            "missing required header for this request: x-amz-content-sha256",
        )
    })?;
    let payload_check = parse_payload_hash(payload_hash)?;
    let canonical_request = canonical_request(request, query_pairs, signed_headers, payload_hash)?;
    check_signature(
        credentials,
        &scope,
        amz_date_text,
        &canonical_request,
        signature,
    )?;
    let skew = (now - amz_date).abs().to_std().unwrap_or(Duration::MAX);
    if skew > max_clock_skew {
        return Err(S3Error::new(
            S3ErrorKind::RequestTimeTooSkewed,
            format!(
                "the difference between the request time and the server's time is too large ({} s, allowed {} s); fix the client's clock",
                skew.as_secs(),
                max_clock_skew.as_secs()
            ),
        ));
    }
    Ok(payload_check)
}

fn authenticate_query(
    credentials: &S3Credentials,
    request: &SignedRequest<'_>,
    query_pairs: &[(String, String)],
    now: DateTime<Utc>,
    max_clock_skew: Duration,
) -> Result<PayloadCheck, S3Error> {
    let parameter = |name: &str| {
        query_pairs
            .iter()
            .find(|(pair_name, _)| pair_name == name)
            .map(|(_, value)| value.as_str())
            .ok_or_else(|| {
                S3Error::new(
                    S3ErrorKind::AuthorizationQueryParametersError,
                    format!("the presigned URL has no {name} parameter"),
                )
            })
    };
    if parameter("X-Amz-Algorithm")? != ALGORITHM {
        return Err(S3Error::new(
            S3ErrorKind::AuthorizationQueryParametersError,
            "X-Amz-Algorithm must be AWS4-HMAC-SHA256",
        ));
    }
    let credential = parameter("X-Amz-Credential")?;
    let amz_date_text = parameter("X-Amz-Date")?;
    let expires_text = parameter("X-Amz-Expires")?;
    let signed_headers = parameter("X-Amz-SignedHeaders")?;
    let signature = parameter("X-Amz-Signature")?;
    let amz_date = parse_amz_date(amz_date_text).ok_or_else(|| {
        S3Error::new(
            S3ErrorKind::AuthorizationQueryParametersError,
            format!("X-Amz-Date {amz_date_text:?} is not in the form 20240102T030405Z"),
        )
    })?;
    let expires_secs = expires_text
        .parse::<u64>()
        .ok()
        .filter(|secs| (1..=MAX_PRESIGN_EXPIRES_SECS).contains(secs))
        .ok_or_else(|| {
            S3Error::new(
                S3ErrorKind::AuthorizationQueryParametersError,
                "X-Amz-Expires must be a number of seconds from 1 to 604800 (7 days)",
            )
        })?;
    let scope = check_credential_scope(
        credentials,
        credential,
        amz_date_text,
        S3ErrorKind::AuthorizationQueryParametersError,
    )?;
    // A presigned request may still carry a signed x-amz-content-sha256
    // header; without it the payload is unsigned.
    let payload_hash =
        header_text(request.headers, "x-amz-content-sha256").unwrap_or(UNSIGNED_PAYLOAD);
    let payload_check = parse_payload_hash(payload_hash)?;
    let unsigned_pairs: Vec<(String, String)> = query_pairs
        .iter()
        .filter(|(name, _)| name != "X-Amz-Signature")
        .cloned()
        .collect();
    let canonical_request =
        canonical_request(request, &unsigned_pairs, signed_headers, payload_hash)?;
    check_signature(
        credentials,
        &scope,
        amz_date_text,
        &canonical_request,
        signature,
    )?;
    let expires_at = amz_date + chrono::Duration::seconds(expires_secs as i64);
    if now > expires_at {
        return Err(S3Error::new(
            S3ErrorKind::AccessDenied,
            "Request has expired",
        ));
    }
    let not_valid_before =
        amz_date - chrono::Duration::from_std(max_clock_skew).unwrap_or(chrono::Duration::zero());
    if now < not_valid_before {
        return Err(S3Error::new(
            S3ErrorKind::AccessDenied,
            "request is not valid yet: its X-Amz-Date is in the future; fix the signer's clock",
        ));
    }
    Ok(payload_check)
}

/// The `Credential` value `AKID/20240102/region/s3/aws4_request` after checking
/// it names our key, our region and the request's date.
struct CredentialScope {
    date: String,
    region: String,
}

fn check_credential_scope(
    credentials: &S3Credentials,
    credential: &str,
    amz_date_text: &str,
    malformed_kind: S3ErrorKind,
) -> Result<CredentialScope, S3Error> {
    let fields: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = fields.as_slice() else {
        return Err(S3Error::new(
            malformed_kind,
            "the credential must look like ACCESS_KEY/YYYYMMDD/REGION/s3/aws4_request",
        ));
    };
    if *access_key_id != credentials.access_key_id {
        return Err(S3Error::new(
            S3ErrorKind::InvalidAccessKeyId,
            "the access key id you provided does not exist in our records",
        ));
    }
    if *service != "s3" || *terminator != "aws4_request" {
        return Err(S3Error::new(
            malformed_kind,
            "the credential scope must end in /s3/aws4_request",
        ));
    }
    if *region != credentials.region {
        return Err(S3Error::new(
            malformed_kind,
            format!(
                "the region {region:?} is wrong; expecting {:?}",
                credentials.region
            ),
        ));
    }
    if !amz_date_text.starts_with(date) || date.len() != 8 {
        return Err(S3Error::new(
            malformed_kind,
            "the credential date does not match the request date",
        ));
    }
    Ok(CredentialScope {
        date: date.to_string(),
        region: region.to_string(),
    })
}

fn parse_payload_hash(payload_hash: &str) -> Result<PayloadCheck, S3Error> {
    if payload_hash == UNSIGNED_PAYLOAD {
        return Ok(PayloadCheck::Unsigned);
    }
    if payload_hash == STREAMING_UNSIGNED_PAYLOAD_TRAILER {
        return Ok(PayloadCheck::UnsignedTrailer);
    }
    if payload_hash.starts_with("STREAMING-") {
        return Err(S3Error::new(
            S3ErrorKind::NotImplemented,
            "signed aws-chunked payloads (STREAMING-AWS4-HMAC-SHA256-*) are not supported; send STREAMING-UNSIGNED-PAYLOAD-TRAILER, UNSIGNED-PAYLOAD or the body's SHA-256",
        ));
    }
    let mut digest = [0u8; 32];
    hex::decode_to_slice(payload_hash, &mut digest).map_err(|_| {
        S3Error::new(
            S3ErrorKind::InvalidArgument,
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a hex SHA-256",
        )
    })?;
    Ok(PayloadCheck::Sha256(digest))
}

fn check_signature(
    credentials: &S3Credentials,
    scope: &CredentialScope,
    amz_date_text: &str,
    canonical_request: &str,
    provided_signature: &str,
) -> Result<(), S3Error> {
    let expected_signature = signature(
        &credentials.secret_access_key,
        &scope.date,
        &scope.region,
        amz_date_text,
        canonical_request,
    );
    let provided_lowercase = provided_signature.to_ascii_lowercase();
    let matches: bool = expected_signature
        .as_bytes()
        .ct_eq(provided_lowercase.as_bytes())
        .into();
    if !matches {
        return Err(S3Error::new(
            S3ErrorKind::SignatureDoesNotMatch,
            "the request signature we calculated does not match the signature you provided; check your key and signing method",
        ));
    }
    Ok(())
}

/// Builds the canonical request from the received request; `query_pairs`
/// are decoded and exclude `X-Amz-Signature` for presigned requests.
fn canonical_request(
    request: &SignedRequest<'_>,
    query_pairs: &[(String, String)],
    signed_headers: &str,
    payload_hash: &str,
) -> Result<String, S3Error> {
    let header_names: Vec<&str> = signed_headers.split(';').collect();
    if !header_names.contains(&"host") {
        return Err(S3Error::new(
            S3ErrorKind::AccessDenied,
            "the signed headers must include host",
        ));
    }
    let mut canonical_headers = String::new();
    for name in &header_names {
        let value = if *name == "host" {
            header_text(request.headers, "host")
                .or(request.uri_authority)
                .map(canonical_header_value)
        } else {
            let values: Option<Vec<String>> = request
                .headers
                .get_all(*name)
                .iter()
                .map(|value| value.to_str().ok().map(canonical_header_value))
                .collect();
            values
                .filter(|values| !values.is_empty())
                .map(|values| values.join(","))
        };
        let value = value.ok_or_else(|| {
            S3Error::new(
                S3ErrorKind::AccessDenied,
                format!("the signed header {name:?} is missing or not ASCII"),
            )
        })?;
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&value);
        canonical_headers.push('\n');
    }
    Ok(format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        request.method.as_str(),
        canonical_uri(request.raw_path),
        canonical_query(query_pairs),
    ))
}

/// Makes the presigned URL for [`crate::presign`].
pub(crate) fn presign(
    request: &PresignRequest<'_>,
    now: SystemTime,
) -> Result<String, PresignError> {
    let expires_secs = request.expires.as_secs();
    if !(1..=MAX_PRESIGN_EXPIRES_SECS).contains(&expires_secs)
        || request.expires.subsec_nanos() != 0
    {
        return Err(PresignError::ExpiresOutOfRange(request.expires));
    }
    if let Some((name, _)) = request
        .query
        .iter()
        .find(|(name, _)| name.to_ascii_lowercase().starts_with("x-amz-"))
    {
        return Err(PresignError::ReservedQueryParameter(name.to_string()));
    }
    let host = request
        .endpoint
        .host_str()
        .ok_or_else(|| PresignError::EndpointWithoutHost(request.endpoint.to_string()))?;
    let host = match request.endpoint.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let amz_date_text = DateTime::<Utc>::from(now)
        .format(AMZ_DATE_FORMAT)
        .to_string();
    let date = &amz_date_text[..8];
    let credentials = request.credentials;
    let credential = format!(
        "{}/{date}/{}/s3/aws4_request",
        credentials.access_key_id, credentials.region
    );
    let mut query_pairs: Vec<(String, String)> = request
        .query
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    query_pairs.extend([
        ("X-Amz-Algorithm".to_string(), ALGORITHM.to_string()),
        ("X-Amz-Credential".to_string(), credential),
        ("X-Amz-Date".to_string(), amz_date_text.clone()),
        ("X-Amz-Expires".to_string(), expires_secs.to_string()),
        ("X-Amz-SignedHeaders".to_string(), "host".to_string()),
    ]);
    let base_path = request.endpoint.path().trim_end_matches('/');
    let path = format!(
        "{}/{}/{}",
        canonical_uri(base_path),
        percent_encode(request.bucket.as_bytes(), UNRESERVED),
        percent_encode(request.key.as_bytes(), UNRESERVED_AND_SLASH),
    );
    let query = canonical_query(&query_pairs);
    let canonical_request = format!(
        "{}\n{path}\n{query}\nhost:{host}\n\nhost\n{UNSIGNED_PAYLOAD}",
        request.method.as_str()
    );
    let signature = signature(
        &credentials.secret_access_key,
        date,
        &credentials.region,
        &amz_date_text,
        &canonical_request,
    );
    Ok(format!(
        "{}://{host}{path}?{query}&X-Amz-Signature={signature}",
        request.endpoint.scheme()
    ))
}

/// The hex signature of `canonical_request` (SigV4 task 2 to 4).
fn signature(
    secret: &str,
    date: &str,
    region: &str,
    amz_date_text: &str,
    canonical_request: &str,
) -> String {
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date_text}\n{date}/{region}/s3/aws4_request\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let date_key = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let region_key = hmac_sha256(&date_key, region.as_bytes());
    let service_key = hmac_sha256(&region_key, b"s3");
    let signing_key = hmac_sha256(&service_key, b"aws4_request");
    hex::encode(hmac_sha256(&signing_key, string_to_sign.as_bytes()))
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn parse_amz_date(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, AMZ_DATE_FORMAT)
        .ok()
        .map(|naive| naive.and_utc())
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Trims the value and collapses runs of spaces, as SigV4 requires.
fn canonical_header_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The path encoded once, as S3 signs it: decode what the client sent, then
/// encode everything but unreserved characters and `/`.
fn canonical_uri(raw_path: &str) -> String {
    let decoded: Vec<u8> = percent_decode_str(raw_path).collect();
    let encoded = percent_encode(&decoded, UNRESERVED_AND_SLASH).to_string();
    if encoded.is_empty() {
        "/".to_string()
    } else {
        encoded
    }
}

/// Decodes `a=1&b&c=%2F` into pairs; `+` stays a plus sign, as in SigV4.
pub(crate) fn parse_query(raw_query: &str) -> Vec<(String, String)> {
    raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode_str(name).decode_utf8_lossy().into_owned(),
                percent_decode_str(value).decode_utf8_lossy().into_owned(),
            )
        })
        .collect()
}

fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .map(|(name, value)| {
            (
                percent_encode(name.as_bytes(), UNRESERVED).to_string(),
                percent_encode(value.as_bytes(), UNRESERVED).to_string(),
            )
        })
        .collect();
    encoded.sort();
    encoded
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests;
