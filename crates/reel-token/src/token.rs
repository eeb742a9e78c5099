//! The claims, minting and verification of one token.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::AUDIENCE;

/// What a playback token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// The video id the token opens.
    pub sub: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds: refused from this second on.
    pub exp: u64,
    /// Allowed referrer domains (a domain also allows its subdomains);
    /// absent or empty: any referrer, or none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<String>,
}

impl Claims {
    /// Checks a request's `Referer` header against [`Claims::referrers`].
    pub fn check_referrer(&self, referer: Option<&str>) -> Result<(), TokenError> {
        if self.referrers.is_empty() {
            return Ok(());
        }
        let host = referer
            .and_then(|value| url::Url::parse(value).ok())
            .and_then(|url| url.host_str().map(|host| host.to_ascii_lowercase()));
        let Some(host) = host else {
            return Err(TokenError::ReferrerNotAllowed);
        };
        let allowed = self.referrers.iter().any(|domain| {
            let domain = domain.trim_start_matches('.').to_ascii_lowercase();
            host == domain
                || host
                    .strip_suffix(domain.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        });
        if allowed {
            Ok(())
        } else {
            Err(TokenError::ReferrerNotAllowed)
        }
    }
}

/// Why a token was refused (or could not be minted). [`TokenError::code`]
/// is stable: servers put it in their 403 answers and tests match on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no playback token")]
    Missing,
    #[error("the playback token is not a well-formed JWT")]
    Malformed,
    #[error("the playback token is signed with {0}, only EdDSA is accepted")]
    UnsupportedAlgorithm(String),
    #[error("the playback token's signing key {0:?} is not in the key set")]
    UnknownKey(String),
    #[error("the playback token's signature does not verify")]
    BadSignature,
    #[error("the playback token is not for reel playback (audience)")]
    WrongAudience,
    #[error("the playback token expired")]
    Expired,
    #[error("the playback token is for another video")]
    WrongVideo,
    #[error("the playback token does not allow this referrer")]
    ReferrerNotAllowed,
    #[error("cannot mint a playback token: {0}")]
    Mint(String),
}

impl TokenError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "token_missing",
            Self::Malformed => "token_malformed",
            Self::UnsupportedAlgorithm(_) => "token_algorithm",
            Self::UnknownKey(_) => "token_unknown_kid",
            Self::BadSignature => "token_bad_signature",
            Self::WrongAudience => "token_audience",
            Self::Expired => "token_expired",
            Self::WrongVideo => "token_wrong_video",
            Self::ReferrerNotAllowed => "token_referrer",
            Self::Mint(_) => "token_mint",
        }
    }
}

/// Seconds since the Unix epoch (0 on a clock before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

pub(crate) fn mint(kid: &str, key: &EncodingKey, claims: &Claims) -> Result<String, TokenError> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).map_err(|error| TokenError::Mint(error.to_string()))
}

/// The key id of a token, read before its signature is checked.
pub(crate) fn token_kid(token: &str) -> Result<String, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.alg != Algorithm::EdDSA {
        return Err(TokenError::UnsupportedAlgorithm(format!(
            "{:?}",
            header.alg
        )));
    }
    header
        .kid
        .ok_or_else(|| TokenError::UnknownKey(String::new()))
}

/// Verifies signature and audience with `key`, then expiry against `now`
/// and the subject against `video`.
pub(crate) fn verify(
    token: &str,
    key: &DecodingKey,
    video: &str,
    now: u64,
) -> Result<Claims, TokenError> {
    let mut validation = Validation::new(Algorithm::EdDSA);
    // Expiry is checked here against the caller's clock, without leeway.
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    validation.set_audience(&[AUDIENCE]);
    let data =
        jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|error| {
            match error.kind() {
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAudience | ErrorKind::MissingRequiredClaim(_) => {
                    TokenError::WrongAudience
                }
                ErrorKind::InvalidAlgorithm => TokenError::UnsupportedAlgorithm("other".into()),
                _ => TokenError::Malformed,
            }
        })?;
    let claims = data.claims;
    if claims.aud != AUDIENCE {
        return Err(TokenError::WrongAudience);
    }
    if now >= claims.exp {
        return Err(TokenError::Expired);
    }
    if claims.sub != video {
        return Err(TokenError::WrongVideo);
    }
    Ok(claims)
}
