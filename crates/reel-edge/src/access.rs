//! Signed playback at the edge: viewers' tokens are verified here with the
//! origin's public keys (JWKS), on hits and misses alike, and never reach
//! the upstream. The cache key leaves the token out
//! (`/v/{video}/t/{token}/{file}` is stored as `/v/{video}/{file}`), so
//! viewers with different tokens share one copy; an object the upstream
//! marked `reel-access: private` is served only to a request whose token
//! verified. The edge fetches such objects with the shared upstream
//! credential ([`EdgeAccess::upstream_secret`], header `reel-edge-secret`).

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::http::HeaderMap;
use reel_token::{unix_now, PublicKeySet, TokenError, VerifiedTokenCache, JWKS_PATH};

use crate::{Edge, EdgeError};

/// How often the JWKS is fetched again from the upstream.
const JWKS_REFRESH: Duration = Duration::from_secs(60);
/// How soon a failed JWKS fetch is retried.
const JWKS_RETRY: Duration = Duration::from_secs(2);

/// Signed playback settings of an edge.
#[derive(Clone, Default)]
pub struct EdgeAccess {
    /// A JWKS file to verify tokens with; `None`: the JWKS is fetched from
    /// `<upstream>/.well-known/reel-jwks.json` at start and every minute.
    pub jwks_file: Option<PathBuf>,
    /// Sent as `reel-edge-secret` with every upstream fetch, so the origin
    /// (`server.edge_secret`) serves private objects to this edge.
    pub upstream_secret: Option<String>,
}

/// The header marking objects that need a token.
pub(crate) const ACCESS_HEADER: &str = "reel-access";
/// The header carrying the upstream credential.
pub(crate) const SECRET_HEADER: &str = "reel-edge-secret";

pub(crate) struct Tokens {
    keys: RwLock<Arc<PublicKeySet>>,
    verified: VerifiedTokenCache,
}

impl Tokens {
    /// Keys from `config.jwks_file`, or none yet (fetched by [`spawn_refresh`]).
    pub(crate) fn load(config: &EdgeAccess) -> Result<Self, EdgeError> {
        let keys = match &config.jwks_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|error| {
                    EdgeError::Config(format!("reading --jwks {}: {error}", path.display()))
                })?;
                PublicKeySet::from_json(&text, &path.display().to_string())
                    .map_err(|error| EdgeError::Config(format!("--jwks: {error}")))?
            }
            None => PublicKeySet::default(),
        };
        Ok(Self {
            keys: RwLock::new(Arc::new(keys)),
            verified: VerifiedTokenCache::new(100_000),
        })
    }

    /// Verifies a viewer's token for `video`, and its referrer restriction.
    pub(crate) fn check(
        &self,
        token: &str,
        video: &str,
        headers: &HeaderMap,
    ) -> Result<(), TokenError> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let claims = self.verified.verify(&keys, token, video, unix_now())?;
        let referer = headers
            .get(axum::http::header::REFERER)
            .and_then(|value| value.to_str().ok());
        claims.check_referrer(referer)
    }

    /// The keys this edge verifies with, as a JWKS document; `None` until
    /// it has any.
    fn jwks(&self) -> Option<String> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        (!keys.kids().is_empty()).then(|| keys.to_json())
    }

    fn replace(&self, keys: PublicKeySet) {
        let mut current = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if **current != keys {
            tracing::info!(kids = ?keys.kids(), "playback keys updated");
            *current = Arc::new(keys);
            // A removed key must stop opening videos at once.
            self.verified.clear();
        }
    }
}

/// Whether a stored response needs a verified token.
pub(crate) fn is_private(headers: &HeaderMap) -> bool {
    headers
        .get(ACCESS_HEADER)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"private"))
}

/// Fetches the upstream's JWKS now and then every minute (unless a file was given).
pub(crate) fn spawn_refresh(edge: &Arc<Edge>, config: &EdgeAccess) {
    if config.jwks_file.is_some() {
        return;
    }
    let edge_for_task = edge.clone();
    edge.tasks.spawn(async move {
        let edge = edge_for_task;
        let url = format!("{}{JWKS_PATH}", edge.settings.upstream_base);
        loop {
            let wait = match fetch_jwks(&edge, &url).await {
                Ok(keys) => {
                    edge.tokens.replace(keys);
                    JWKS_REFRESH
                }
                Err(error) => {
                    tracing::warn!(%url, %error, "fetching the playback JWKS failed; tokens cannot be verified until it succeeds");
                    JWKS_RETRY
                }
            };
            tokio::select! {
                _ = edge.cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
}

async fn fetch_jwks(edge: &Edge, url: &str) -> Result<PublicKeySet, String> {
    let response = edge
        .client
        .get(url)
        .timeout(edge.settings.upstream_timeout)
        .send()
        .await
        .map_err(|error| error.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let text = response.text().await.map_err(|error| error.to_string())?;
    PublicKeySet::from_json(&text, url).map_err(|error| error.to_string())
}

/// `GET /.well-known/reel-jwks.json` on an edge: the keys it verifies with,
/// answered by the edge itself. A lower tier fetches its keys from here, so
/// key refreshes never travel up the chain as proxied requests (and never
/// count as upstream fills).
pub(crate) async fn serve_jwks(
    axum::extract::State(edge): axum::extract::State<Arc<Edge>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match edge.tokens.jwks() {
        Some(json) => (
            [
                (axum::http::header::CONTENT_TYPE, "application/json"),
                (axum::http::header::CACHE_CONTROL, "max-age=60"),
            ],
            json,
        )
            .into_response(),
        None => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "this edge has no playback keys yet; it fetches them from its upstream",
        )
            .into_response(),
    }
}
