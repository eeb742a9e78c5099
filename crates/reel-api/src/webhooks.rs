//! `/v1/webhooks`: create (the secret shown once), list, delete.
//! Deliveries are `reel_webhooks`' business; these routes only edit
//! subscriptions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use reel_webhooks::{WebhookError, WebhookStore};
use serde::Deserialize;
use serde_json::json;

use crate::{ApiError, AppState, Authenticated};

/// The webhook tables over the job store's pool.
pub(crate) fn webhook_store(state: &AppState) -> WebhookStore {
    WebhookStore::new(state.store.pool().clone())
}

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::Invalid(message) => Self::BadRequest(message),
            WebhookError::Limit(message) => Self::Conflict(message),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Webhooks are the administrator's: the events name every owner's videos.
// TODO(model): refuse non-admin keys with 403 once keys have roles
// (issue 13 point 1); every webhook route goes through here.
fn require_admin(_caller: &Authenticated) -> Result<(), ApiError> {
    Ok(())
}

#[derive(Deserialize)]
pub(crate) struct CreateWebhook {
    url: String,
    events: Vec<String>,
}

pub(crate) async fn create_webhook(
    caller: Authenticated,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let request: CreateWebhook = serde_json::from_slice(&body).map_err(|error| {
        ApiError::BadRequest(format!(
            "invalid webhook: {error}; expected {{\"url\": \"https://…\", \"events\": [\"video.ready\", …]}}"
        ))
    })?;
    let created = webhook_store(&state)
        .create(&request.url, &request.events, Some(&caller.0))
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub(crate) async fn list_webhooks(
    caller: Authenticated,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    let webhooks = webhook_store(&state).list().await?;
    Ok(Json(json!({"webhooks": webhooks})).into_response())
}

pub(crate) async fn delete_webhook(
    caller: Authenticated,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&caller)?;
    if !webhook_store(&state).delete(&id).await? {
        return Err(ApiError::NotFound(format!("no webhook with id {id}")));
    }
    Ok(Json(json!({"id": id, "deleted": true})).into_response())
}
