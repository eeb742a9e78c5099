//! Content steering and proximity routing: the edges the router knows (from
//! configuration and from `POST /v1/edges`), their health checks, steered
//! manifests, the steering server, and a 302 mode for players without
//! steering.
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/videos/{id}/play.m3u8` | the multivariant playlist with one pathway per healthy edge plus `origin`, and `EXT-X-CONTENT-STEERING` |
//! | `GET /v1/videos/{id}/play.mpd` | the MPD with `<ContentSteering>` and a `BaseURL@serviceLocation` per pathway |
//! | `GET /v1/steering/{id}?proto=hls\|dash` | the steering manifest: pathways nearest the client first, dead edges left out |
//! | `GET /r/{id}/{path}` | 302 to the nearest healthy edge's copy |
//! | `GET/POST /v1/edges`, `DELETE /v1/edges/{name}` | the registry (API key) |

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use object_store::path::Path as ObjectPath;
use reel_core::VideoId;
use reel_model::{Principal, Role};
use reel_pipeline::video::VideoLayout;
use reel_steer::{Candidate, ClientLocator, GeoPoint, Pathway, Protocol};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::videos::{base_url, parse_video_id};
use crate::{Admin, ApiError, AppState};

mod purge;
pub use purge::PurgeToken;

/// An edge's health checks fail this many times in a row before it is
/// dropped from steering answers.
const FAILURES_TO_DROP: u32 = 2;
/// The pathway id of the origin itself, always listed last.
pub const ORIGIN_PATHWAY: &str = "origin";

/// How the router steers.
#[derive(Clone, Debug)]
pub struct SteeringSettings {
    /// The TTL of steering manifests: how soon players ask again.
    pub ttl: Duration,
    /// How often each edge's `/healthz` is checked.
    pub health_interval: Duration,
    /// Client locations: network rules, then the GeoIP database.
    pub locator: ClientLocator,
    /// How many edges the registry holds at most (`steering.max_edges`).
    pub max_edges: usize,
}

/// One edge as the router sees it.
#[derive(Clone, Debug)]
struct Edge {
    name: String,
    url: url::Url,
    location: Option<GeoPoint>,
    failures: u32,
    checked: bool,
    /// Health-check round trip, smoothed, in ms.
    rtt_ms: f64,
    /// The credential of the edge's purge endpoint, if it gave one.
    purge_token: Option<PurgeToken>,
    /// The key that registered it; `None` for a configured edge.
    registered_by: Option<String>,
}

impl Edge {
    fn healthy(&self) -> bool {
        self.checked && self.failures < FAILURES_TO_DROP
    }
}

/// The edges the router steers to, shared by the handlers and the health
/// checker.
#[derive(Debug)]
pub struct Edges {
    settings: SteeringSettings,
    edges: RwLock<Vec<Edge>>,
}

/// An edge to register.
#[derive(Clone, Debug, Deserialize)]
pub struct EdgeSpec {
    /// Its pathway id: 1 to 64 of A-Z a-z 0-9 . _ -.
    pub name: String,
    /// Where viewers reach it, e.g. `http://edge-eu:8081`.
    pub url: String,
    /// `LAT,LON` in degrees.
    pub location: Option<String>,
    /// The bearer token of its purge endpoint (`reel edge --admin-token`):
    /// deleting a video purges it there.
    #[serde(default)]
    pub purge_token: Option<PurgeToken>,
}

impl Edges {
    /// A registry with the configured edges (checked before use).
    pub fn new(settings: SteeringSettings, configured: &[EdgeSpec]) -> Result<Edges, ApiError> {
        let edges = Edges {
            settings,
            edges: RwLock::new(Vec::new()),
        };
        for spec in configured {
            edges.upsert(spec, None)?;
        }
        Ok(edges)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Edge>> {
        self.edges
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Edge>> {
        self.edges
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds or updates an edge, for `caller` (`None`: the configuration);
    /// a new or moved edge waits for its first health check before it is
    /// steered to. Refused (409) over `max_edges`, and when `caller` may not
    /// change the existing edge of that name ([`may_change_edge`]).
    pub fn upsert(&self, spec: &EdgeSpec, caller: Option<&Principal>) -> Result<(), ApiError> {
        let valid_name = (1..=64).contains(&spec.name.len())
            && spec.name != ORIGIN_PATHWAY
            && spec
                .name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
        if !valid_name {
            return Err(ApiError::BadRequest(format!(
                "edge name {:?}: use 1 to 64 of A-Z a-z 0-9 . _ - (and not \"origin\")",
                spec.name
            )));
        }
        let url = url::Url::parse(&spec.url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
            .ok_or_else(|| {
                ApiError::BadRequest(format!("edge url {:?} is not an http(s) URL", spec.url))
            })?;
        let location = match &spec.location {
            Some(text) => Some(GeoPoint::parse(text).ok_or_else(|| {
                ApiError::BadRequest(format!("edge location {text:?}: write LAT,LON in degrees"))
            })?),
            None => None,
        };
        let max_edges = self.settings.max_edges;
        let mut edges = self.write();
        let full = edges.len() >= max_edges;
        let fresh = Edge {
            name: spec.name.clone(),
            url,
            location,
            failures: 0,
            checked: false,
            rtt_ms: 0.0,
            purge_token: spec.purge_token.clone(),
            registered_by: caller.map(|principal| principal.key_id.clone()),
        };
        match edges.iter_mut().find(|edge| edge.name == spec.name) {
            Some(edge) => {
                if let Some(caller) = caller {
                    if !may_change_edge(caller, edge, &fresh) {
                        return Err(ApiError::Conflict(format!(
                            "edge {:?} is already registered by another registration; only an admin may change it (or the edge itself, with its purge token)",
                            spec.name
                        )));
                    }
                }
                if edge.url == fresh.url {
                    edge.location = fresh.location;
                    edge.purge_token = fresh.purge_token;
                } else {
                    *edge = fresh;
                }
            }
            None if full => {
                return Err(ApiError::Conflict(format!(
                    "the edge registry is full: it holds steering.max_edges = {max_edges} edges; remove one with DELETE /v1/edges/{{name}} or raise steering.max_edges"
                )))
            }
            None => edges.push(fresh),
        }
        Ok(())
    }

    /// Removes an edge; false if there was none of that name.
    pub fn remove(&self, name: &str) -> bool {
        let mut edges = self.write();
        let before = edges.len();
        edges.retain(|edge| edge.name != name);
        edges.len() != before
    }

    /// Checks every edge's `/healthz` once: a 2xx is healthy; a redirect,
    /// another status, an error or a timeout is a failure.
    pub async fn check_all(&self, client: &reqwest::Client) {
        let targets: Vec<(String, url::Url)> = self
            .read()
            .iter()
            .map(|edge| (edge.name.clone(), edge.url.clone()))
            .collect();
        let checks = targets.into_iter().map(|(name, url)| async move {
            let started = Instant::now();
            let healthz = url.join("healthz").unwrap_or(url.clone());
            let ok = matches!(
                client.get(healthz).send().await,
                Ok(response) if response.status().is_success()
            );
            (name, url, ok, started.elapsed())
        });
        let results = futures::future::join_all(checks).await;
        let mut edges = self.write();
        for (name, url, ok, elapsed) in results {
            let Some(edge) = edges
                .iter_mut()
                .find(|edge| edge.name == name && edge.url == url)
            else {
                continue;
            };
            let was_healthy = edge.healthy();
            edge.checked = true;
            if ok {
                edge.failures = 0;
                let rtt = elapsed.as_secs_f64() * 1000.0;
                edge.rtt_ms = if edge.rtt_ms == 0.0 {
                    rtt
                } else {
                    0.7 * edge.rtt_ms + 0.3 * rtt
                };
            } else {
                edge.failures = edge.failures.saturating_add(1);
            }
            if was_healthy != edge.healthy() {
                tracing::info!(edge = %edge.name, healthy = edge.healthy(), "edge health changed");
            }
        }
    }

    /// Runs the health checks until `shutdown`.
    pub fn spawn_health_checks(self: Arc<Self>, shutdown: CancellationToken) {
        let interval = self.settings.health_interval;
        tokio::spawn(async move {
            let client = match health_check_client(interval) {
                Ok(client) => client,
                Err(error) => {
                    // Edges stay unchecked, so none is steered to.
                    tracing::error!(%error, "building the edge health-check client");
                    return;
                }
            };
            loop {
                self.check_all(&client).await;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        });
    }

    /// Healthy edges for a client, best first.
    fn ranked(&self, client: Option<GeoPoint>) -> Vec<(String, url::Url)> {
        let edges = self.read();
        let candidates: Vec<Candidate> = edges
            .iter()
            .map(|edge| Candidate {
                id: edge.name.clone(),
                location: edge.location,
                healthy: edge.healthy(),
                load: edge.rtt_ms,
            })
            .collect();
        reel_steer::order(client, &candidates)
            .into_iter()
            .filter_map(|name| {
                edges
                    .iter()
                    .find(|edge| edge.name == name)
                    .map(|edge| (name, edge.url.clone()))
            })
            .collect()
    }

    fn view(&self) -> Vec<Value> {
        self.read()
            .iter()
            .map(|edge| {
                json!({
                    "name": edge.name,
                    "url": edge.url.as_str(),
                    "location": edge.location.map(|point| format!("{},{}", point.lat(), point.lon())),
                    "healthy": edge.healthy(),
                    "checked": edge.checked,
                    "consecutive_failures": edge.failures,
                    "rtt_ms": edge.rtt_ms,
                })
            })
            .collect()
    }
}

/// Whether `caller` may change the registered edge `existing` (its URL,
/// location or purge token) to `proposed`: the admin role may (and only
/// admins reach `POST /v1/edges`: another key gets 403 before this); so may
/// the registration that made it, i.e. the edge itself presenting the same
/// purge token, or the same key re-registering; anyone may repeat the
/// registration as it stands (giving a purge token where there was none).
/// Every such check goes through here.
fn may_change_edge(caller: &Principal, existing: &Edge, proposed: &Edge) -> bool {
    let caller_is_admin = caller.role == Role::Admin;
    let same_token = match (&existing.purge_token, &proposed.purge_token) {
        (Some(stored), Some(presented)) => stored.matches(presented),
        _ => false,
    };
    let same_key = existing.registered_by.as_deref() == Some(caller.key_id.as_str());
    let unchanged = existing.url == proposed.url
        && existing.location == proposed.location
        && (existing.purge_token.is_none() || same_token);
    caller_is_admin || same_token || same_key || unchanged
}

/// The health checker's client: it follows no redirect (a 3xx is
/// unhealthy, so an edge URL cannot make the server fetch another URL), and
/// its requests are bounded in time; only the status is read, never the
/// body.
fn health_check_client(interval: Duration) -> Result<reqwest::Client, reqwest::Error> {
    let limit = interval.clamp(Duration::from_millis(200), Duration::from_secs(5));
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(limit)
        .connect_timeout(limit)
        .build()
}

/// The client's location, from its address: the TCP peer (forwarded
/// headers are not trusted).
fn client_location(state: &AppState, request: &Request) -> Option<GeoPoint> {
    let peer: IpAddr = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())?;
    state.edges.settings.locator.locate(peer)
}

/// Every pathway for this client, best first, the origin last.
fn pathways(state: &AppState, request: &Request, video: &str) -> Result<Vec<Pathway>, ApiError> {
    let client = client_location(state, request);
    let origin = base_url(request.headers());
    let mut pathways = Vec::new();
    for (name, url) in state.edges.ranked(client) {
        let base = url
            .join(&format!("v/{video}/"))
            .map_err(|error| ApiError::internal("building the edge URL", &error))?;
        pathways.push(Pathway { id: name, base });
    }
    let base = url::Url::parse(&format!("{origin}/v/{video}/"))
        .map_err(|error| ApiError::internal("building the origin URL", &error))?;
    pathways.push(Pathway {
        id: ORIGIN_PATHWAY.to_string(),
        base,
    });
    Ok(pathways)
}

async fn stored_manifest(state: &AppState, video: VideoId, name: &str) -> Result<String, ApiError> {
    let location = ObjectPath::from(VideoLayout::new(video).object(name));
    let missing = || {
        ApiError::NotFound(format!(
            "video {video} has no {name} yet; wait until it is playable"
        ))
    };
    let result = match state.objects.get(&location).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Err(missing()),
        Err(error) => return Err(ApiError::internal("reading the stored manifest", &error)),
    };
    let bytes = result
        .bytes()
        .await
        .map_err(|error| ApiError::internal("reading the stored manifest", &error))?;
    String::from_utf8(bytes.to_vec()).map_err(|_| missing())
}

fn no_store(mut response: Response, content_type: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn steer_error(error: reel_steer::SteerError) -> ApiError {
    ApiError::internal("steering the stored manifest", &error)
}

pub(crate) async fn play_hls(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let video_id = parse_video_id(&id)?;
    // A private video's steered playlists need a token like its media:
    // the playback endpoint's signed URLs are the way in.
    crate::playback::check_access(&state, video_id, None, request.headers()).await?;
    let video = video_id.to_string();
    let master = stored_manifest(&state, video_id, "master.m3u8").await?;
    let pathways = pathways(&state, &request, &video)?;
    let initial = pathways[0].id.clone();
    let steered = reel_steer::steer_hls(
        &master,
        &pathways,
        &format!("/v1/steering/{video}?proto=hls"),
        &initial,
    )
    .map_err(steer_error)?;
    Ok(no_store(
        steered.into_response(),
        "application/vnd.apple.mpegurl",
    ))
}

pub(crate) async fn play_dash(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let video_id = parse_video_id(&id)?;
    crate::playback::check_access(&state, video_id, None, request.headers()).await?;
    let video = video_id.to_string();
    let mpd = stored_manifest(&state, video_id, "manifest.mpd").await?;
    let pathways = pathways(&state, &request, &video)?;
    let initial = pathways[0].id.clone();
    let server = format!(
        "{}/v1/steering/{video}?proto=dash",
        base_url(request.headers())
    );
    let steered =
        reel_steer::steer_dash(&mpd, &pathways, &server, &initial).map_err(steer_error)?;
    Ok(no_store(steered.into_response(), "application/dash+xml"))
}

#[derive(Deserialize)]
pub(crate) struct SteeringQuery {
    proto: Option<String>,
}

pub(crate) async fn steering(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<SteeringQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let video_id = parse_video_id(&id)?;
    // Refused for a private video; an unknown id still gets the edges'
    // order (it names nothing of any video).
    match crate::playback::check_access(&state, video_id, None, request.headers()).await {
        Ok(_) | Err(ApiError::NotFound(_)) => {}
        Err(refused) => return Err(refused),
    }
    let video = video_id.to_string();
    let protocol = match query.proto.as_deref() {
        Some("hls") | None => Protocol::Hls,
        Some("dash") => Protocol::Dash,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "proto {other:?}: use hls or dash"
            )))
        }
    };
    let priority: Vec<String> = pathways(&state, &request, &video)?
        .into_iter()
        .map(|pathway| pathway.id)
        .collect();
    let proto = if protocol == Protocol::Hls {
        "hls"
    } else {
        "dash"
    };
    let manifest = reel_steer::steering_manifest(
        protocol,
        &priority,
        state.edges.settings.ttl.as_secs().max(1),
        &format!("/v1/steering/{video}?proto={proto}"),
    );
    Ok(no_store(Json(manifest).into_response(), "application/json"))
}

pub(crate) async fn redirect(
    State(state): State<AppState>,
    Path((id, path)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let video_id = parse_video_id(&id)?;
    if !is_media_path(&path) {
        return Err(ApiError::BadRequest(format!(
            "bad path {path:?}: /r/ takes a video's relative media path, such as master.m3u8 or v0/seg-00001.m4s"
        )));
    }
    // The media rules of the origin: a private video's paths carry a token
    // (`t/{token}/…`), checked here before any edge is named.
    let token = path
        .strip_prefix("t/")
        .and_then(|rest| rest.split_once('/'))
        .map(|(token, _)| token);
    crate::playback::check_access(&state, video_id, token, request.headers()).await?;
    let video = video_id.to_string();
    let best = pathways(&state, &request, &video)?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal("no pathway".to_string()))?;
    // The path is plain segments, so the join stays under the base; checked
    // again so that no future change of the rule turns this into an open
    // redirect.
    let target = best
        .base
        .join(&path)
        .ok()
        .filter(|target| target.as_str().starts_with(best.base.as_str()))
        .ok_or_else(|| ApiError::BadRequest(format!("bad path {path:?}")))?;
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(target.as_str())
            .map_err(|_| ApiError::BadRequest(format!("bad path {path:?}")))?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(response)
}

/// Whether `path` is a relative media path under a video's base: 1 to 16
/// segments of 1 to 200 of A-Z a-z 0-9 . _ -, none `.` or `..`. So no
/// scheme, no `//`, no `..`, no `:`, no backslash, no query.
fn is_media_path(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    segments.len() <= 16
        && segments.iter().all(|segment| {
            (1..=200).contains(&segment.len())
                && *segment != "."
                && *segment != ".."
                && segment
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
        })
}

pub(crate) async fn list_edges(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    Ok(Json(json!({"edges": state.edges.view()})).into_response())
}

pub(crate) async fn register_edge(
    admin: Admin,
    State(state): State<AppState>,
    Json(spec): Json<EdgeSpec>,
) -> Result<Response, ApiError> {
    state.edges.upsert(&spec, Some(&admin.0))?;
    Ok(Json(json!({"edges": state.edges.view()})).into_response())
}

pub(crate) async fn remove_edge(
    _admin: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    _headers: HeaderMap,
) -> Result<Response, ApiError> {
    if state.edges.remove(&name) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound(format!("no edge named {name:?}")))
    }
}
