//! The errors of reading manifests and of playing.

/// Why a manifest (a multivariant or media playlist, or an MPD) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The request failed or was answered with an error status.
    #[error("fetching {url}: {reason}")]
    Http {
        /// The manifest's URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The body is larger than [`crate::ManifestLimits::max_bytes`].
    #[error("{url} is larger than the {limit}-byte manifest limit")]
    TooLarge {
        /// The manifest's URL.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The manifest is not what it should be (syntax, missing fields, unsupported features).
    #[error("{url}: {reason}")]
    Invalid {
        /// The manifest's URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The manifest asks for more than a [`crate::ManifestLimits`] allows.
    #[error("{url}: {reason} (a manifest limit)")]
    Limit {
        /// The manifest's URL.
        url: String,
        /// Which limit, and the value asked for.
        reason: String,
    },
    /// The manifest references itself, or playlists loop.
    #[error("{url}: {reason}")]
    Loop {
        /// The manifest's URL.
        url: String,
        /// Which reference loops.
        reason: String,
    },
}

impl ManifestError {
    pub(crate) fn invalid(url: &url::Url, reason: impl Into<String>) -> ManifestError {
        ManifestError::Invalid {
            url: url.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn limit(url: &url::Url, reason: impl Into<String>) -> ManifestError {
        ManifestError::Limit {
            url: url.to_string(),
            reason: reason.into(),
        }
    }
}

/// Why a playback could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    /// A manifest could not be read.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The options make no sense (unknown algorithm, speed out of range, a bad URL).
    #[error("{0}")]
    Options(String),
    /// The network trace could not be read.
    #[error("the trace {path}: {reason}")]
    Trace {
        /// The trace file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A segment request failed.
    #[error("{url}: {reason}")]
    Segment {
        /// The segment's URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Every pathway failed.
    #[error("every pathway failed; the last error: {0}")]
    AllPathwaysFailed(String),
    /// The renditions do not form a ladder the ABR can use.
    #[error("the renditions do not form a ladder the ABR can use: {0}")]
    Ladder(#[from] reel_abr::video::VideoError),
    /// The session cannot be scored or simulated.
    #[error(transparent)]
    Setup(#[from] reel_abr::sim::SetupError),
}
