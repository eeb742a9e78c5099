//! reel's HTTP API.
//!
//! Routes that change state need an API key (`Authorization: Bearer reel_…`);
//! reading does not. Every error maps to a status and a stable code string in
//! [`ApiError::status_and_code`], and its message says what to do.
#![deny(missing_docs)]

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::TryStreamExt;
use object_store::ObjectStore;
use reel_core::{JobId, TaskId};
use reel_jobs::metrics::Metrics;
use reel_jobs::store::{JobStore, StoreError};
use reel_model::{Principal, Role, Uploads as _, Videos as _};
use reel_pipeline::jobs::{IngestError, SelftestSpec};
use serde::Deserialize;
use serde_json::json;

mod access;
pub mod auth;
mod captions;
mod companion;
mod downloads;
mod dubs;
mod origin;
pub mod playback;
mod request_id;
pub mod same_origin;
pub mod steering;
pub mod uploads;
mod videos;
mod web;
mod webhooks;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The job store.
    pub store: JobStore,
    /// The object store.
    pub objects: Arc<dyn ObjectStore>,
    /// Metrics of this process's workers.
    pub metrics: Arc<Metrics>,
    /// The largest body `POST /v1/jobs/verify` and `POST /v1/videos` accept.
    pub max_upload_bytes: u64,
    /// The embedded S3 endpoint (local storage only), served at `/s3`.
    pub s3: Option<reel_s3::S3State>,
    /// Where presigned multipart uploads go: the embedded endpoint, or the
    /// real store for `s3://` storage. `None`: `/v1/uploads` answers 501.
    pub multipart: Option<reel_s3::MultipartStore>,
    /// The tus server's state, served at `/files`.
    pub tus: reel_upload::UploadState,
    /// The most bytes one API key may hold (videos plus unfinished uploads).
    pub quota_per_key: Option<u64>,
    /// The edges content steering sends viewers to.
    pub edges: Arc<steering::Edges>,
    /// The built web app (`web/dist`), served at `/`; `None`: no web app.
    pub web_dir: Option<std::path::PathBuf>,
    /// Where browsers reach the server (`server.public_url`).
    pub public_origin: same_origin::PublicOrigin,
    /// Signing keys and the edge credential of signed playback.
    pub playback: Arc<playback::Playback>,
}

/// Errors of the API.
#[derive(Debug)]
pub enum ApiError {
    /// No or a wrong API key.
    Unauthorized(String),
    /// The key's role may not do this, or a playback token was refused.
    Forbidden(String),
    /// Nothing at that id.
    NotFound(String),
    /// The request is malformed.
    BadRequest(String),
    /// The body is over the limit.
    TooLarge(String),
    /// The job already ended, or the request conflicts with the resource's state.
    Conflict(String),
    /// The resource expired or was cancelled.
    Gone(String),
    /// Another request holds the resource.
    Locked(String),
    /// The request is well-formed but its content is refused.
    Unprocessable(String),
    /// The feature is not available with this configuration.
    NotImplemented(String),
    /// Something failed on the server side. The message is sent to the
    /// client: build it with [`ApiError::internal`], which keeps the
    /// error's own text (store keys, file paths, URLs) in the log.
    Internal(String),
}

impl ApiError {
    /// A server-side failure of `what` (for instance "reading the file"):
    /// the log line gets the error with the request's `x-request-id` (the
    /// request span); the client gets `what` in words and no store or
    /// filesystem text.
    pub fn internal(what: &str, error: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%error, "{what} failed");
        ApiError::Internal(format!(
            "{what} failed on the server; the server log has the details under this response's x-request-id"
        ))
    }

    /// The single mapping from error to HTTP status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Gone(_) => (StatusCode::GONE, "gone"),
            Self::Locked(_) => (StatusCode::LOCKED, "locked"),
            Self::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            Self::NotImplemented(_) => (StatusCode::NOT_IMPLEMENTED, "not_implemented"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// What went wrong and what to do.
    pub fn message(&self) -> &str {
        match self {
            Self::Unauthorized(message)
            | Self::Forbidden(message)
            | Self::NotFound(message)
            | Self::BadRequest(message)
            | Self::TooLarge(message)
            | Self::Conflict(message)
            | Self::Gone(message)
            | Self::Locked(message)
            | Self::Unprocessable(message)
            | Self::NotImplemented(message)
            | Self::Internal(message) => message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(code, message = self.message(), "request failed");
        }
        let mut response = (
            status,
            Json(json!({"error": {"code": code, "message": self.message()}})),
        )
            .into_response();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // Refused before its body was read: the rest of that body is
            // still on the connection, so it cannot carry another request.
            // Saying so keeps clients from reusing it and failing mid-send.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::JobNotFound(id) => Self::NotFound(format!("no job with id {id}")),
            StoreError::InvalidJob(message) => Self::BadRequest(message),
            other => Self::internal("the database request", &other),
        }
    }
}

/// The routes.
pub fn router(state: AppState) -> Router {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/v1/jobs", get(list_jobs))
        .route("/v1/jobs/{id}", get(show_job))
        .route("/v1/jobs/{id}/cancel", post(cancel_job))
        .route("/v1/jobs/verify", post(create_verify_job))
        .route("/v1/jobs/selftest", post(create_selftest_job))
        .route(
            "/v1/videos",
            get(videos::list_videos).post(videos::create_video),
        )
        .route(
            "/v1/videos/{id}",
            get(videos::show_video)
                .delete(videos::delete_video)
                .patch(access::patch_video),
        )
        .route(
            "/v/{id}/{*path}",
            get(origin::serve_object).options(|| async { reel_http::cors::preflight() }),
        )
        .route("/v1/uploads", post(uploads::create_upload))
        .route(
            "/v1/uploads/{id}",
            get(uploads::show_upload).delete(uploads::delete_upload),
        )
        .route("/v1/uploads/{id}/parts", post(uploads::part_urls))
        .route("/v1/uploads/{id}/complete", post(uploads::complete_upload))
        .route(
            "/v1/videos/{id}/captions",
            post(captions::add_captions).layer(axum::extract::DefaultBodyLimit::max(
                captions::MAX_CAPTION_BYTES + 1,
            )),
        )
        .route(
            "/v1/videos/{id}/captions/{track}",
            axum::routing::delete(captions::delete_captions),
        )
        .route(
            "/v1/videos/{id}/downloads",
            post(downloads::create_downloads),
        )
        .route("/v1/videos/{id}/audio", post(dubs::add_audio))
        .route(
            "/v1/videos/{id}/audio/{track}",
            axum::routing::delete(dubs::delete_audio),
        )
        .route("/v1/videos/{id}/playback", post(playback::mint))
        .route(reel_token::JWKS_PATH, get(playback::jwks))
        .route("/v1/videos/{id}/play.m3u8", get(steering::play_hls))
        .route("/v1/videos/{id}/play.mpd", get(steering::play_dash))
        .route("/v1/steering/{id}", get(steering::steering))
        .route("/r/{id}/{*path}", get(steering::redirect))
        .route(
            "/v1/edges",
            get(steering::list_edges).post(steering::register_edge),
        )
        .route(
            "/v1/edges/{name}",
            axum::routing::delete(steering::remove_edge),
        )
        .route(
            "/v1/session",
            get(web::show_session)
                .post(web::sign_in)
                .delete(web::sign_out),
        )
        .route(
            "/v1/webhooks",
            get(webhooks::list_webhooks).post(webhooks::create_webhook),
        )
        .route(
            "/v1/webhooks/{id}",
            axum::routing::delete(webhooks::delete_webhook),
        )
        .route("/v1/companion/s3/multipart", post(companion::create))
        .route(
            "/v1/companion/s3/multipart/{upload_id}",
            get(companion::list_parts).delete(companion::abort),
        )
        .route(
            "/v1/companion/s3/multipart/{upload_id}/{part_number}",
            get(companion::sign_part),
        )
        .route(
            "/v1/companion/s3/multipart/{upload_id}/complete",
            post(companion::complete),
        )
        .fallback(web::fallback);
    // The tus server gets its caller from the API's authentication.
    let tus = reel_upload::tus_router(state.tus.clone()).layer(
        axum::middleware::from_fn_with_state(state.store.clone(), auth::with_caller),
    );
    let s3 = state.s3.clone();
    let public_origin = state.public_origin.clone();
    // tus clients are given `/files/`; nest_service serves `/files`,
    // `/files/` and `/files/{id}` alike.
    let app = app.with_state(state).nest_service("/files", tus);
    let app = match s3 {
        Some(s3) => app.nest("/s3", reel_s3::s3_router(s3)),
        None => app,
    };
    app.layer(axum::middleware::from_fn_with_state(
        public_origin,
        same_origin::check_origin,
    ))
    .layer(axum::middleware::from_fn(request_id::tag))
}

/// Proof that the request carried a valid API key, with the key's id: the
/// owner of what the request creates.
pub struct Authenticated(pub String);

/// The caller of a request that carried a valid API key.
pub struct Signed(pub Principal);

/// The caller of a request that carried a valid admin key; other keys get
/// 403 with a message naming the role.
pub struct Admin(pub Principal);

const KEY_HINT: &str = "sign in at /signin, or create a key with `reel keys create --name NAME` and send it as `Authorization: Bearer KEY`";

async fn principal(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    match auth::authenticate_request(&state.store, parts).await? {
        reel_model::Caller::Key(principal) => Ok(principal),
        reel_model::Caller::Anonymous => Err(ApiError::Unauthorized(format!(
            "this route needs an API key: {KEY_HINT}"
        ))),
        reel_model::Caller::Refused(reason) => {
            Err(ApiError::Unauthorized(format!("{reason}: {KEY_HINT}")))
        }
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Authenticated(principal(parts, state).await?.key_id))
    }
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Signed(principal(parts, state).await?))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = principal(parts, state).await?;
        if principal.role != Role::Admin {
            return Err(ApiError::Forbidden(format!(
                "{} {} needs the admin role; key {:?} is an uploader (an admin creates keys with `reel keys create --name NAME --role admin`)",
                parts.method,
                parts.uri.path(),
                principal.name
            )));
        }
        Ok(Admin(principal))
    }
}

async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let counts = state.store.task_counts().await?;
    let body = state.metrics.render(&counts);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

/// Refuses a body whose declared length is over `limit`, before reading it.
pub(crate) fn check_declared_length(headers: &HeaderMap, limit: u64) -> Result<(), ApiError> {
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
    {
        if length > limit {
            return Err(ApiError::TooLarge(format!(
                "the body has {length} bytes, over the limit of {limit}; raise limits.max_upload_size"
            )));
        }
    }
    Ok(())
}

/// Refuses `length` more bytes for `owner` when that passes the quota.
pub(crate) async fn check_quota(
    state: &AppState,
    owner: &str,
    length: u64,
) -> Result<(), ApiError> {
    match state
        .store
        .quota_excess(owner, state.quota_per_key, length)
        .await?
    {
        Some(reason) => Err(ApiError::TooLarge(reason)),
        None => Ok(()),
    }
}

/// The API error of a failed ingest.
pub(crate) fn ingest_error(error: IngestError) -> ApiError {
    match error {
        IngestError::TooLarge { .. } => {
            ApiError::TooLarge(format!("{error}; raise limits.max_upload_size"))
        }
        IngestError::Empty => {
            ApiError::BadRequest("the body is empty: send the file as the request body".to_string())
        }
        IngestError::Body(_) => ApiError::BadRequest(error.to_string()),
        other => ApiError::internal("storing the upload", &other),
    }
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    limit: Option<i64>,
}

/// An admin lists every job; an uploader the jobs of its videos; an
/// anonymous caller none (reading one job by its id needs no key).
async fn list_jobs(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    let (parts, _) = request.into_parts();
    let jobs = match auth::authenticate_request(&state.store, &parts).await? {
        reel_model::Caller::Key(principal) if principal.role == Role::Admin => {
            state.store.list_jobs(limit).await?
        }
        reel_model::Caller::Key(principal) => {
            let mut jobs = Vec::new();
            for video in state
                .store
                .list_videos_owned(&principal.key_id, limit)
                .await?
            {
                if let Some(job_id) = video.job_id {
                    jobs.push(state.store.job(job_id).await?);
                }
            }
            jobs
        }
        _ => Vec::new(),
    };
    Ok(Json(json!({"jobs": jobs})).into_response())
}

fn parse_job_id(text: &str) -> Result<JobId, ApiError> {
    text.parse()
        .map_err(|error: reel_core::ParseIdError| ApiError::BadRequest(error.to_string()))
}

async fn show_job(
    access::MaybeCaller(caller): access::MaybeCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job_id = parse_job_id(&id)?;
    let job = state.store.job(job_id).await?;
    // A private video's job is as hidden as the video: 404 to all but its
    // owner and admins.
    if let Some(row) = state.store.video_of_job(job_id).await? {
        let visibility = access::visibility_of(&state, row.id).await?;
        if !access::readable_by(&row, visibility, caller.as_ref()) {
            return Err(ApiError::NotFound(format!("no job with id {job_id}")));
        }
    }
    Ok(Json(job).into_response())
}

async fn cancel_job(
    Signed(caller): Signed,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job_id = parse_job_id(&id)?;
    // An uploader may cancel its own videos' jobs; anything else is not
    // its to know of.
    if caller.role != Role::Admin {
        let owner = state
            .store
            .video_of_job(job_id)
            .await?
            .and_then(|video| video.owner);
        if !caller.may_act_for(owner.as_deref()) {
            return Err(ApiError::NotFound(format!("no job with id {job_id}")));
        }
    }
    if !state.store.cancel_job(job_id).await? {
        return Err(ApiError::Conflict(format!(
            "job {job_id} has already ended; nothing to cancel"
        )));
    }
    Ok(Json(state.store.job(job_id).await?).into_response())
}

async fn create_verify_job(
    Admin(admin): Admin,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_declared_length(&headers, state.max_upload_bytes)?;
    // The source stays until the job ends, so it counts like an upload.
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    check_quota(&state, &admin.key_id, declared).await?;
    let upload_id = TaskId::new_random().to_string();
    let key = reel_pipeline::jobs::source_key(&upload_id);
    let stream = body.into_data_stream().map_err(|error| error.to_string());
    let stored = reel_pipeline::jobs::store_stream(
        state.objects.clone(),
        &key,
        Box::pin(stream),
        state.max_upload_bytes,
    )
    .await
    .map_err(ingest_error)?;
    let job_id = state
        .store
        .create_job(reel_pipeline::jobs::verify_job(&stored))
        .await?;
    Ok((StatusCode::CREATED, Json(state.store.job(job_id).await?)).into_response())
}

async fn create_selftest_job(
    _admin: Admin,
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let spec: SelftestSpec = serde_json::from_slice(&body).map_err(|error| {
        ApiError::BadRequest(format!(
            "invalid selftest spec: {error}; expected {{\"tasks\": N, \"delay_ms\": MS}}"
        ))
    })?;
    spec.check().map_err(ApiError::BadRequest)?;
    let job_id = state
        .store
        .create_job(reel_pipeline::jobs::selftest_job(&spec))
        .await?;
    Ok((StatusCode::CREATED, Json(state.store.job(job_id).await?)).into_response())
}
