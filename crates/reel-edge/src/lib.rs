//! reel's caching edge: a reverse proxy cache for the origin (or for any
//! HTTP upstream that sends cache headers, including another edge).
//!
//! [`serve`] runs an edge described by an [`EdgeConfig`] on a listener.
//! How the pieces fit:
//!
//! - `proxy` routes each request. The cache key is the request's
//!   normalised path and query (`key`); the upstream is asked for exactly
//!   that key and never sees client headers, so nothing a client sends can
//!   change what another client receives.
//! - `store` is the index: a memory tier and an optional disk tier, each
//!   bounded in bytes and run by an eviction policy from [`policy`]
//!   (S3-FIFO by default, LRU for comparison). In-flight fills reserve
//!   their bytes first, so the bounds hold under load.
//! - `fill` fetches a missing or stale key once, however many requests
//!   want it, and streams the bytes to all of them as they arrive.
//! - `cache_control` decides freshness (max-age, s-maxage,
//!   stale-while-revalidate, stale-if-error, ...); `conditional` answers
//!   Range and conditional requests from the stored full response.
//! - `cmcd` reads CTA-5004 client data for per-session stats and next
//!   object prefetch; `admin` and `metrics` serve purge, sessions and
//!   Prometheus metrics.
//!
//! [`policy::replay`] runs the eviction policies over a trace, for
//! benchmarks.
#![deny(missing_docs)]

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::Router;
use reel_http::tls::ClientRoots;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use access::EdgeAccess;

mod access;
mod admin;
mod cache_control;
mod cmcd;
mod fill;
mod key;
mod metrics;
pub mod policy;
mod proxy;
mod store;

/// How long shutdown waits for fills and disk writes to finish.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);
/// Cache files written at once; more completed fills stay memory-only.
const MAX_DISK_WRITES: usize = 4;
/// The most request headers `vary_headers` may name, which bounds the
/// request data a stored response is selected by.
const MAX_VARY_HEADERS: usize = 8;

/// Everything an edge needs; validated by [`serve`].
#[derive(Clone)]
pub struct EdgeConfig {
    /// Name of this edge, as in `Via`, `/healthz` and metrics. Letters,
    /// digits, `.`, `_` and `-`, at most 64 characters.
    pub name: String,
    /// Base URL of the upstream (the origin, or another edge acting as a
    /// shield): `http(s)://host[:port][/prefix]`, without query. A request
    /// for `/v/x` is fetched from `<upstream>/v/x`.
    pub upstream: url::Url,
    /// Where this edge is, as (latitude, longitude) in degrees; reported in
    /// metrics for steering.
    pub location: Option<(f64, f64)>,
    /// Capacity of the memory tier in bytes, counting fills in progress.
    pub cache_memory: u64,
    /// Capacity of the disk tier in bytes; 0 disables the disk tier.
    pub cache_disk: u64,
    /// Directory of the disk tier's files; required when `cache_disk > 0`.
    /// Files ending in `.reel-edge` found there at startup are deleted.
    pub disk_dir: Option<PathBuf>,
    /// Bearer token for `DELETE /_edge/purge` and `GET /_edge/sessions`;
    /// without one those routes answer 403.
    pub admin_token: Option<String>,
    /// Limit for connecting to the upstream, for its response head, and for
    /// each gap between body chunks.
    pub upstream_timeout: Duration,
    /// Eviction policy of both tiers.
    pub eviction: policy::PolicyKind,
    /// Objects larger than this fraction of `cache_memory` are not cached
    /// (nor coalesced) but streamed through; in `(0, 1]`, e.g. `0.125`.
    pub max_object_fraction: f64,
    /// How long a 404 or 410 from the upstream without explicit freshness
    /// is cached; zero never caches those. Explicit freshness (`max-age`,
    /// `s-maxage`, `Expires`, a targeted field) is honoured for every status.
    pub error_ttl: Duration,
    /// This edge's targeted cache-control field (RFC 9213), preferred over
    /// `CDN-Cache-Control`, which is preferred over `Cache-Control`; e.g.
    /// `Reel-Cache-Control`.
    pub targeted_cache_control: String,
    /// Request headers a stored response may `Vary` on (sent upstream);
    /// a response varying on any other is passed through uncached.
    pub vary_headers: Vec<String>,
    /// Further request headers of GET and HEAD sent upstream (unsafe
    /// methods are passed through with all their headers).
    pub forward_headers: Vec<String>,
    /// CMCD `nor` prefetches in flight at once; more are skipped.
    pub max_prefetches: usize,
    /// Signed playback: where the keys come from, the upstream credential.
    pub access: EdgeAccess,
    /// Viewer-facing connection limits: the cap, the header-read and
    /// request-body idle timeouts.
    pub http: reel_http::server::HttpLimits,
    /// The viewer-facing TLS identity (HTTP/2 and HTTP/1.1 by ALPN,
    /// reloaded on SIGHUP); none: plain HTTP/1.1.
    pub tls: Option<Arc<reel_http::tls::ServerTls>>,
    /// PEM bundle of the CAs an `https://` upstream's certificate must
    /// chain to (e.g. a private CA between tiers); none: the system's roots.
    pub upstream_ca: Option<PathBuf>,
}

impl fmt::Debug for EdgeConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("EdgeConfig")
            .field("name", &self.name)
            .field("upstream", &self.upstream.as_str())
            .field("location", &self.location)
            .field("cache_memory", &self.cache_memory)
            .field("cache_disk", &self.cache_disk)
            .field("disk_dir", &self.disk_dir)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("upstream_timeout", &self.upstream_timeout)
            .field("eviction", &self.eviction)
            .field("max_object_fraction", &self.max_object_fraction)
            .field("error_ttl", &self.error_ttl)
            .field("targeted_cache_control", &self.targeted_cache_control)
            .field("vary_headers", &self.vary_headers)
            .field("forward_headers", &self.forward_headers)
            .field("max_prefetches", &self.max_prefetches)
            .field("http", &self.http)
            .field("tls", &self.tls.as_ref().map(|tls| tls.files().clone()))
            .field("upstream_ca", &self.upstream_ca)
            .finish()
    }
}

/// Why an edge could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// A config field is invalid; the message names it.
    #[error("invalid edge config: {0}")]
    Config(String),
    /// The disk tier's directory could not be prepared.
    #[error("preparing cache directory {path}: {source}")]
    DiskDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The upstream HTTP client could not be built.
    #[error("building the upstream http client: {0}")]
    Client(#[source] reqwest::Error),
    /// The upstream's TLS trust could not be set up.
    #[error("the upstream tls setup: {0}")]
    UpstreamTls(#[source] reel_http::tls::TlsError),
}

/// Serves the edge on `listener` until `shutdown` completes, then lets open
/// connections finish and waits (a few seconds at most) for fills in flight.
pub async fn serve(
    listener: TcpListener,
    config: EdgeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), EdgeError> {
    let settings = Settings::validate(&config)?;
    let disk = match (&config.disk_dir, config.cache_disk) {
        (_, 0) => None,
        (Some(dir), capacity) => {
            let blocking_dir = dir.clone();
            let cleared = tokio::task::spawn_blocking(move || store::clear_disk_dir(&blocking_dir))
                .await
                .map_err(|error| EdgeError::DiskDir {
                    path: dir.clone(),
                    source: std::io::Error::other(error),
                })?
                .map_err(|source| EdgeError::DiskDir {
                    path: dir.clone(),
                    source,
                })?;
            if cleared > 0 {
                tracing::info!(dir = %dir.display(), n_files = cleared, "removed cache files of a previous run");
            }
            Some((dir.clone(), capacity))
        }
        (None, _) => {
            return Err(EdgeError::Config(
                "cache_disk > 0 needs disk_dir; set a directory or cache_disk = 0".to_owned(),
            ))
        }
    };
    let mut default_headers = HeaderMap::new();
    // Bodies are stored as sent; asking for identity keeps `Vary:
    // Accept-Encoding` meaningless for the edge.
    default_headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    if let Some(via) = fill::via_value(&settings.name) {
        default_headers.insert(header::VIA, via);
    }
    if let Some(secret) = &config.access.upstream_secret {
        let mut value = HeaderValue::from_str(secret).map_err(|_| {
            EdgeError::Config("the upstream secret must be printable ASCII".to_owned())
        })?;
        value.set_sensitive(true);
        default_headers.insert(access::SECRET_HEADER, value);
    }
    if let Ok(agent) = HeaderValue::from_str(&format!(
        "reel-edge/{} ({})",
        env!("CARGO_PKG_VERSION"),
        settings.name
    )) {
        default_headers.insert(header::USER_AGENT, agent);
    }
    let tokens = access::Tokens::load(&config.access)?;
    // GET and HEAD go through hyper's pooled client (over rustls for an
    // https:// upstream), which reports 1xx responses (forwarded to
    // viewers); unsafe methods through reqwest with the same TLS trust.
    let upstream_tls = {
        let ca = config.upstream_ca.clone();
        let https = config.upstream.scheme() == "https";
        tokio::task::spawn_blocking(move || {
            let roots = match (&ca, https) {
                (Some(bundle), _) => ClientRoots::Bundle(bundle),
                (None, true) => ClientRoots::System,
                (None, false) => ClientRoots::Unused,
            };
            reel_http::tls::client_config(roots)
        })
        .await
        .map_err(|error| EdgeError::Config(format!("loading the upstream tls roots: {error}")))?
        .map_err(EdgeError::UpstreamTls)?
    };
    let upstream_client = {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_connect_timeout(Some(settings.upstream_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(upstream_tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector)
    };
    let client = reqwest::Client::builder()
        .default_headers(default_headers.clone())
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(settings.upstream_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .use_preconfigured_tls(upstream_tls)
        .build()
        .map_err(EdgeError::Client)?;
    let edge = Arc::new(Edge {
        store: Arc::new(store::Store::new(
            config.eviction,
            config.cache_memory,
            disk,
        )),
        client,
        upstream_client,
        upstream_headers: default_headers,
        metrics: metrics::Metrics::default(),
        sessions: Mutex::new(cmcd::Sessions::default()),
        prefetch_permits: Arc::new(Semaphore::new(config.max_prefetches)),
        disk_writes: Arc::new(Semaphore::new(MAX_DISK_WRITES)),
        tasks: TaskTracker::new(),
        cancel: CancellationToken::new(),
        tokens,
        settings,
    });
    access::spawn_refresh(&edge, &config.access);
    let router = Router::new()
        .route(
            reel_token::JWKS_PATH,
            axum::routing::get(access::serve_jwks),
        )
        .fallback(proxy::route)
        .with_state(edge.clone());
    tracing::info!(
        edge = %edge.settings.name,
        address = ?listener.local_addr().ok(),
        upstream = %edge.settings.upstream_base,
        cache_memory = config.cache_memory,
        cache_disk = config.cache_disk,
        "edge listening"
    );
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.cancel();
    });
    let server = reel_http::server::HttpServer {
        limits: config.http.clone(),
        tls: config.tls.clone(),
    };
    reel_http::server::serve_http(listener, router, server, stop).await;
    edge.cancel.cancel();
    edge.tasks.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, edge.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = edge.tasks.len(),
            "background tasks still running at shutdown"
        );
    }
    tracing::info!(edge = %edge.settings.name, "edge stopped");
    Ok(())
}

/// hyper's pooled client of the upstream, `http://` or `https://`.
pub(crate) type UpstreamClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    axum::body::Body,
>;

/// State shared by every request and background task.
pub(crate) struct Edge {
    pub(crate) settings: Settings,
    pub(crate) store: Arc<store::Store>,
    /// The client of unsafe methods, passed through.
    pub(crate) client: reqwest::Client,
    /// The client of GET and HEAD (sees 1xx responses).
    pub(crate) upstream_client: UpstreamClient,
    /// Headers every upstream request carries (user agent, `Via`,
    /// `Accept-Encoding: identity`, the upstream secret).
    pub(crate) upstream_headers: HeaderMap,
    pub(crate) metrics: metrics::Metrics,
    sessions: Mutex<cmcd::Sessions>,
    pub(crate) prefetch_permits: Arc<Semaphore>,
    pub(crate) disk_writes: Arc<Semaphore>,
    pub(crate) tasks: TaskTracker,
    pub(crate) cancel: CancellationToken,
    pub(crate) tokens: access::Tokens,
}

impl Edge {
    pub(crate) fn sessions(&self) -> MutexGuard<'_, cmcd::Sessions> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The validated parts of [`EdgeConfig`] the request path uses.
pub(crate) struct Settings {
    pub(crate) name: String,
    /// The upstream URL without a trailing `/`; keys are appended to it.
    pub(crate) upstream_base: String,
    pub(crate) location: Option<(f64, f64)>,
    pub(crate) admin_token: Option<String>,
    pub(crate) upstream_timeout: Duration,
    pub(crate) rules: cache_control::Rules,
    /// Client headers of GET and HEAD sent upstream: the configured ones,
    /// the `Vary` set and `Authorization`.
    pub(crate) forward_headers: Vec<HeaderName>,
    pub(crate) max_object_bytes: u64,
}

impl Settings {
    fn validate(config: &EdgeConfig) -> Result<Settings, EdgeError> {
        let invalid = |message: String| Err(EdgeError::Config(message));
        let name_ok = !config.name.is_empty()
            && config.name.len() <= 64
            && config
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !name_ok {
            return invalid(format!(
                "name {:?} must be 1-64 letters, digits, '.', '_' or '-'",
                config.name
            ));
        }
        let upstream = &config.upstream;
        if !matches!(upstream.scheme(), "http" | "https") || upstream.host_str().is_none() {
            return invalid(format!(
                "upstream {upstream} must be an http:// or https:// URL with a host"
            ));
        }
        if upstream.query().is_some() || upstream.fragment().is_some() {
            return invalid(format!(
                "upstream {upstream} must not have a query or fragment"
            ));
        }
        if config.cache_memory == 0 {
            return invalid("cache_memory must be above 0 bytes".to_owned());
        }
        if !(config.max_object_fraction > 0.0 && config.max_object_fraction <= 1.0) {
            return invalid(format!(
                "max_object_fraction {} must be in (0, 1], e.g. 0.125",
                config.max_object_fraction
            ));
        }
        if config.upstream_timeout.is_zero() {
            return invalid("upstream_timeout must be above zero, e.g. 10s".to_owned());
        }
        if let Some((latitude, longitude)) = config.location {
            if !((-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude)) {
                return invalid(format!(
                    "location ({latitude}, {longitude}) must be latitude in [-90, 90] and longitude in [-180, 180]"
                ));
            }
        }
        if config
            .admin_token
            .as_ref()
            .is_some_and(|token| token.trim().is_empty())
        {
            return invalid(
                "admin_token must not be empty; leave it unset to disable admin routes".to_owned(),
            );
        }
        let max_object_bytes =
            ((config.cache_memory as f64 * config.max_object_fraction) as u64).max(1);
        let header_name = |what: &str, name: &str| {
            HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| EdgeError::Config(format!("{what}: {name:?} is not a header name")))
        };
        let header_names = |what: &str, names: &[String]| {
            names
                .iter()
                .map(|name| header_name(what, name))
                .collect::<Result<Vec<HeaderName>, EdgeError>>()
        };
        let targeted_field = header_name("targeted_cache_control", &config.targeted_cache_control)?;
        let vary_headers = header_names("vary_headers", &config.vary_headers)?;
        if vary_headers.len() > MAX_VARY_HEADERS {
            return invalid(format!(
                "vary_headers names {} headers; at most {MAX_VARY_HEADERS}",
                vary_headers.len()
            ));
        }
        let mut forward_headers = header_names("forward_headers", &config.forward_headers)?;
        for name in vary_headers.iter().chain([&header::AUTHORIZATION]) {
            if !forward_headers.contains(name) {
                forward_headers.push(name.clone());
            }
        }
        Ok(Settings {
            name: config.name.clone(),
            upstream_base: upstream.as_str().trim_end_matches('/').to_owned(),
            location: config.location,
            admin_token: config.admin_token.clone(),
            upstream_timeout: config.upstream_timeout,
            rules: cache_control::Rules {
                error_ttl: config.error_ttl,
                targeted_field,
                vary_headers,
            },
            forward_headers,
            max_object_bytes,
        })
    }
}
