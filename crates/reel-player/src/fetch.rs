//! HTTP reads of manifests (bounded) and of segment sizes.

use futures::{StreamExt, TryStreamExt};
use url::Url;

use crate::error::ManifestError;
use crate::limits::ManifestLimits;
use crate::model::MediaPlaylist;

/// How many HEAD requests run at once.
const HEAD_CONCURRENCY: usize = 16;

/// GETs a manifest, reading at most `limits.max_bytes` of it.
pub async fn fetch_text(
    client: &reqwest::Client,
    url: &Url,
    limits: &ManifestLimits,
) -> Result<String, ManifestError> {
    let http = |reason: String| ManifestError::Http {
        url: url.to_string(),
        reason,
    };
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|error| http(error.to_string()))?;
    if !response.status().is_success() {
        return Err(http(format!("answered {}", response.status())));
    }
    let too_large = || ManifestError::TooLarge {
        url: url.to_string(),
        limit: limits.max_bytes,
    };
    if response
        .content_length()
        .is_some_and(|length| length > limits.max_bytes as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| http(error.to_string()))?;
        if body.len() + chunk.len() > limits.max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| ManifestError::invalid(url, "the manifest is not UTF-8"))
}

/// The size in bytes of every segment of `playlist` (HEAD requests, a few at a time).
pub async fn segment_sizes(
    client: &reqwest::Client,
    playlist: &MediaPlaylist,
) -> Result<Vec<u64>, ManifestError> {
    futures::stream::iter(&playlist.segments)
        .map(|(url, _)| async move {
            let http = |reason: String| ManifestError::Http {
                url: url.to_string(),
                reason,
            };
            let response = client
                .head(url.clone())
                .send()
                .await
                .map_err(|error| http(format!("HEAD: {error}")))?;
            if !response.status().is_success() {
                return Err(http(format!("HEAD answered {}", response.status())));
            }
            response
                .headers()
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u64>().ok())
                .ok_or_else(|| http("HEAD gave no Content-Length".to_string()))
        })
        .buffered(HEAD_CONCURRENCY)
        .try_collect()
        .await
}
