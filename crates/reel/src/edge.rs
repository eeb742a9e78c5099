//! `reel edge`: a caching edge in front of reel's origin (or another edge),
//! optionally registering itself with a reel server's steering.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use reel_core::ByteSize;
use tokio_util::sync::CancellationToken;

/// What `reel edge` was asked to do.
#[derive(clap::Args)]
pub struct EdgeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: std::net::SocketAddr,
    /// The origin (or the next tier's edge), e.g. http://origin:8080.
    #[arg(long)]
    pub upstream: String,
    /// This edge's name: its pathway id in content steering.
    #[arg(long, default_value = "edge")]
    pub name: String,
    /// Where the edge is, LAT,LON in degrees (for proximity routing).
    #[arg(long)]
    pub location: Option<String>,
    /// Memory tier capacity.
    #[arg(long, default_value = "1GiB")]
    pub cache_memory: ByteSize,
    /// Disk tier capacity (0 for none).
    #[arg(long, default_value = "0")]
    pub cache_disk: ByteSize,
    /// Directory of the disk tier (needed when --cache-disk is above 0).
    #[arg(long)]
    pub disk_dir: Option<PathBuf>,
    /// Bearer token of the purge and session endpoints (none: they answer
    /// 403, unless --register is given: then a random one is made). Sent to
    /// the --register server, which purges deleted videos with it.
    #[arg(long, env = "REEL_EDGE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Eviction policy: s3-fifo or lru.
    #[arg(long, default_value = "s3-fifo")]
    pub eviction: String,
    /// A reel server to register with for content steering, e.g. http://origin:8080.
    #[arg(long)]
    pub register: Option<String>,
    /// The URL viewers reach this edge at (default: http:// or https:// + the listen address).
    #[arg(long)]
    pub public_url: Option<String>,
    /// An admin API key of the server given to --register.
    #[arg(long, env = "REEL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Verify playback tokens with this JWKS file instead of fetching the
    /// origin's `/.well-known/reel-jwks.json` (at start and every minute).
    #[arg(long)]
    pub jwks: Option<PathBuf>,
    /// The origin's `server.edge_secret`, sent as `reel-edge-secret` so it
    /// serves private videos' objects to this edge (which checks viewers' tokens).
    #[arg(long, env = "REEL_EDGE_SECRET", hide_env_values = true)]
    pub origin_secret: Option<String>,
    /// The most viewer connections open at once; over it, new connections
    /// wait in the listen queue.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// How long a viewer may take to send a request's headers (also closes
    /// connections that send nothing), e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// How long a request body may send nothing while it is read, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_idle_timeout: Duration,
    /// This edge's targeted cache-control field (RFC 9213): its directives,
    /// then `CDN-Cache-Control`'s, take precedence over `Cache-Control` here
    /// (which still reaches viewers unchanged).
    #[arg(long, default_value = "Reel-Cache-Control")]
    pub targeted_cache_control: String,
    /// Request headers (comma-separated, at most 8) a cached response may
    /// `Vary` on; they are sent upstream. A response varying on any other
    /// header is passed through uncached.
    #[arg(long, value_delimiter = ',')]
    pub vary_headers: Vec<String>,
    /// Further request headers (comma-separated) GET and HEAD send upstream;
    /// by default only the `--vary-headers` and `Authorization` are.
    #[arg(long, value_delimiter = ',')]
    pub forward_headers: Vec<String>,
    /// Serve viewers HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with this PEM
    /// certificate chain; needs --tls-key; reloaded on SIGHUP.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM bundle of the CAs an https:// --upstream must chain to (e.g. a
    /// private CA between tiers); default: the system's roots.
    #[arg(long)]
    pub upstream_ca: Option<PathBuf>,
}

/// Parses `LAT,LON` in degrees.
pub fn parse_location(text: &str) -> anyhow::Result<(f64, f64)> {
    let (lat, lon) = text
        .split_once(',')
        .context("a location is LAT,LON in degrees, e.g. 48.85,2.35")?;
    let lat: f64 = lat.trim().parse().context("the latitude is not a number")?;
    let lon: f64 = lon
        .trim()
        .parse()
        .context("the longitude is not a number")?;
    anyhow::ensure!(
        (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon),
        "a location needs a latitude in -90..90 and a longitude in -180..180"
    );
    Ok((lat, lon))
}

pub async fn run(mut args: EdgeArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    if args.register.is_some() && args.admin_token.is_none() {
        // The server it registers with needs a purge credential, so that
        // deleting a video reaches this edge's cache.
        let mut random = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut random);
        args.admin_token = Some(hex::encode(random));
    }
    let upstream = url::Url::parse(&args.upstream)
        .with_context(|| format!("--upstream {:?} is not a URL", args.upstream))?;
    let location = args.location.as_deref().map(parse_location).transpose()?;
    let eviction = match args.eviction.as_str() {
        "s3-fifo" => reel_edge::policy::PolicyKind::S3Fifo,
        "lru" => reel_edge::policy::PolicyKind::Lru,
        other => anyhow::bail!("--eviction {other:?}: use s3-fifo or lru"),
    };
    let tls_files = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(reel_http::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let tls = crate::load_server_tls(tls_files).await?;
    if let Some(bundle) = args.upstream_ca.clone() {
        // Checked before listening; the edge reads it again to build its
        // client (a small file).
        tokio::task::spawn_blocking(move || {
            reel_http::tls::client_config(reel_http::tls::ClientRoots::Bundle(&bundle))
        })
        .await
        .context("checking --upstream-ca")??;
    }
    let config = reel_edge::EdgeConfig {
        name: args.name.clone(),
        upstream,
        location,
        cache_memory: args.cache_memory.bytes(),
        cache_disk: args.cache_disk.bytes(),
        disk_dir: args.disk_dir.clone(),
        admin_token: args.admin_token.clone(),
        upstream_timeout: Duration::from_secs(10),
        eviction,
        max_object_fraction: 0.125,
        error_ttl: Duration::from_secs(2),
        targeted_cache_control: args.targeted_cache_control.clone(),
        vary_headers: args.vary_headers.clone(),
        forward_headers: args.forward_headers.clone(),
        max_prefetches: 8,
        access: reel_edge::EdgeAccess {
            jwks_file: args.jwks.clone(),
            upstream_secret: args.origin_secret.clone(),
        },
        http: reel_http::server::HttpLimits {
            max_connections: args.max_connections.max(1),
            header_read_timeout: args.header_read_timeout,
            body_idle_timeout: args.body_idle_timeout,
        },
        tls: tls.clone(),
        upstream_ca: args.upstream_ca.clone(),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}; pick another --listen", args.listen))?;
    let address = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("reel edge {} listening on {scheme}://{address}", args.name);
    if let Some(router) = &args.register {
        let public_url = args
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{address}"));
        let api_key = args
            .api_key
            .clone()
            .context("--register needs an API key: pass --api-key or set REEL_API_KEY")?;
        let body = serde_json::json!({
            "name": args.name,
            "url": public_url,
            "location": location.map(|(lat, lon)| format!("{lat},{lon}")),
            "purge_token": args.admin_token,
        });
        tokio::spawn(register_loop(
            router.trim_end_matches('/').to_string(),
            api_key,
            body,
            shutdown.clone(),
        ));
    }
    let stop = shutdown.clone();
    reel_edge::serve(listener, config, async move { stop.cancelled().await })
        .await
        .context("serving the edge")
}

/// Registers the edge (`body`: its name, URL, location and purge token)
/// with the router now and every 30 s (so a restarted router learns it
/// again); the router's health checks do the rest.
async fn register_loop(
    router: String,
    api_key: String,
    body: serde_json::Value,
    shutdown: CancellationToken,
) {
    let client = reqwest::Client::new();
    loop {
        let sent = client
            .post(format!("{router}/v1/edges"))
            .bearer_auth(&api_key)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                tracing::debug!(router, "registered with the router")
            }
            Ok(response) => {
                tracing::warn!(router, status = %response.status(), "the router refused the registration")
            }
            Err(error) => tracing::warn!(router, %error, "could not reach the router"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_lat_comma_lon() {
        assert_eq!(parse_location("48.85, 2.35").ok(), Some((48.85, 2.35)));
        assert!(parse_location("48.85").is_err());
        assert!(parse_location("91,0").is_err());
        assert!(parse_location("a,b").is_err());
    }
}
