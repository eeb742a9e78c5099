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

use crate::{Admin, ApiError, AppState};

/// The webhook tables over the job store's pool.
pub(crate) fn webhook_store(state: &AppState) -> WebhookStore {
    WebhookStore::new(state.store.pool().clone())
}

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::Invalid(message) => Self::BadRequest(message),
            WebhookError::Limit(message) => Self::Conflict(message),
            other => ApiError::internal("the webhook store", &other),
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct CreateWebhook {
    url: String,
    events: Vec<String>,
}

/// Webhooks are the administrator's (the `Admin` extractor on every route):
/// the events name every owner's videos.
pub(crate) async fn create_webhook(
    Admin(caller): Admin,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: CreateWebhook = serde_json::from_slice(&body).map_err(|error| {
        ApiError::BadRequest(format!(
            "invalid webhook: {error}; expected {{\"url\": \"https://…\", \"events\": [\"video.ready\", …]}}"
        ))
    })?;
    let created = webhook_store(&state)
        .create(&request.url, &request.events, Some(&caller.key_id))
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub(crate) async fn list_webhooks(
    Admin(_admin): Admin,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let webhooks = webhook_store(&state).list().await?;
    Ok(Json(json!({"webhooks": webhooks})).into_response())
}

pub(crate) async fn delete_webhook(
    Admin(_admin): Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !webhook_store(&state).delete(&id).await? {
        return Err(ApiError::NotFound(format!("no webhook with id {id}")));
    }
    Ok(Json(json!({"id": id, "deleted": true})).into_response())
}
