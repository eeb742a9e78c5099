//! S3 errors: every error the endpoint returns, mapped to its HTTP status
//! and S3 error code in one function, and rendered as S3's XML error body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::xml::{to_document, ErrorDocument};

/// The S3 error codes this endpoint returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum S3ErrorKind {
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    BadDigest,
    EntityTooLarge,
    EntityTooSmall,
    IncompleteBody,
    InternalError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidDigest,
    InvalidPart,
    InvalidPartOrder,
    MalformedXml,
    InvalidRequest,
    NoSuchBucket,
    NoSuchUpload,
    NotImplemented,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
    XAmzContentSha256Mismatch,
}

/// An error with the message the client sees.
#[derive(Debug)]
pub(crate) struct S3Error {
    pub(crate) kind: S3ErrorKind,
    pub(crate) message: String,
}

impl S3Error {
    pub(crate) fn new(kind: S3ErrorKind, message: impl Into<String>) -> S3Error {
        S3Error {
            kind,
            message: message.into(),
        }
    }

    /// A store failure: the client sees a generic message, the log the cause.
    pub(crate) fn internal(context: &str, error: impl std::fmt::Display) -> S3Error {
        tracing::warn!(error = %error, context, "s3 endpoint storage failure");
        S3Error::new(
            S3ErrorKind::InternalError,
            format!("{context} failed; retry later"),
        )
    }

    /// The single mapping from error to HTTP status and S3 code.
    pub(crate) fn status_and_code(&self) -> (StatusCode, &'static str) {
        use S3ErrorKind::*;
        match self.kind {
            AccessDenied => (StatusCode::FORBIDDEN, "AccessDenied"),
            AuthorizationHeaderMalformed => {
                (StatusCode::BAD_REQUEST, "AuthorizationHeaderMalformed")
            }
            AuthorizationQueryParametersError => {
                (StatusCode::BAD_REQUEST, "AuthorizationQueryParametersError")
            }
            BadDigest => (StatusCode::BAD_REQUEST, "BadDigest"),
            EntityTooLarge => (StatusCode::BAD_REQUEST, "EntityTooLarge"),
            EntityTooSmall => (StatusCode::BAD_REQUEST, "EntityTooSmall"),
            IncompleteBody => (StatusCode::BAD_REQUEST, "IncompleteBody"),
            InternalError => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
            InvalidAccessKeyId => (StatusCode::FORBIDDEN, "InvalidAccessKeyId"),
            InvalidArgument => (StatusCode::BAD_REQUEST, "InvalidArgument"),
            InvalidDigest => (StatusCode::BAD_REQUEST, "InvalidDigest"),
            InvalidPart => (StatusCode::BAD_REQUEST, "InvalidPart"),
            InvalidPartOrder => (StatusCode::BAD_REQUEST, "InvalidPartOrder"),
            MalformedXml => (StatusCode::BAD_REQUEST, "MalformedXML"),
            InvalidRequest => (StatusCode::BAD_REQUEST, "InvalidRequest"),
            NoSuchBucket => (StatusCode::NOT_FOUND, "NoSuchBucket"),
            NoSuchUpload => (StatusCode::NOT_FOUND, "NoSuchUpload"),
            NotImplemented => (StatusCode::NOT_IMPLEMENTED, "NotImplemented"),
            RequestTimeTooSkewed => (StatusCode::FORBIDDEN, "RequestTimeTooSkewed"),
            SignatureDoesNotMatch => (StatusCode::FORBIDDEN, "SignatureDoesNotMatch"),
            XAmzContentSha256Mismatch => (StatusCode::BAD_REQUEST, "XAmzContentSHA256Mismatch"),
        }
    }

    /// The XML error response for the request `request_id` on `resource`.
    pub(crate) fn into_response_for(self, resource: &str, request_id: &str) -> Response {
        let (status, code) = self.status_and_code();
        tracing::debug!(
            code,
            status = status.as_u16(),
            request_id,
            "s3 request refused"
        );
        let body = to_document(&ErrorDocument {
            code: code.to_string(),
            message: Some(self.message),
            resource: resource.to_string(),
            request_id: request_id.to_string(),
        });
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        response
    }
}

impl IntoResponse for S3Error {
    fn into_response(self) -> Response {
        self.into_response_for("", "")
    }
}
