//! A video's visibility (`videos.visibility`): who may list and play it.

use reel_core::VideoId;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use reel_jobs::store::{JobStore, StoreError};

/// Who may list and play a video.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Listed to everyone, playable by anyone.
    #[default]
    Public,
    /// Playable by anyone with its id, listed to its owner only.
    Unlisted,
    /// Listed to its owner only, playable with a signed playback token.
    Private,
}

impl Visibility {
    /// The stored and API form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Unlisted => "unlisted",
            Self::Private => "private",
        }
    }
}

impl std::str::FromStr for Visibility {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "public" => Ok(Self::Public),
            "unlisted" => Ok(Self::Unlisted),
            "private" => Ok(Self::Private),
            other => Err(format!(
                "visibility {other:?} is not one of public, unlisted, private"
            )),
        }
    }
}

/// Reading and changing a video's visibility (`videos.visibility`).
pub trait Visibilities: Sync {
    /// A video's visibility; `None` when there is no such video.
    fn video_visibility(
        &self,
        id: VideoId,
    ) -> impl std::future::Future<Output = Result<Option<Visibility>, StoreError>> + Send;

    /// Sets a video's visibility; returns whether the video exists.
    fn set_video_visibility(
        &self,
        id: VideoId,
        visibility: Visibility,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send;
}

impl Visibilities for JobStore {
    async fn video_visibility(&self, id: VideoId) -> Result<Option<Visibility>, StoreError> {
        let row = sqlx::query("SELECT visibility FROM videos WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let text: String = row.try_get("visibility")?;
        text.parse()
            .map(Some)
            .map_err(|detail| StoreError::Corrupt {
                table: "videos",
                detail,
            })
    }

    async fn set_video_visibility(
        &self,
        id: VideoId,
        visibility: Visibility,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE videos SET visibility = $1 WHERE id = $2")
            .bind(visibility.as_str())
            .bind(id.to_string())
            .execute(self.pool())
            .await?;
        Ok(result.rows_affected() > 0)
    }
}
