//! The one typed configuration: defaults < `reel.toml` < `REEL_*` environment
//! variables < command-line flags, validated once at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use reel_core::ByteSize;
use reel_media::encode::EncodeSettings;
use reel_media::plan::{PlanSettings, VideoCodec};
use reel_pipeline::video::DownloadSelection;
use serde::{Deserialize, Serialize};

pub mod env;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the embedded defaults: the SQLite database and the local object store.
    pub data_dir: PathBuf,
    /// Database URL: `sqlite://PATH` (default: `DATA_DIR/reel.db`) or `postgres://USER:PASSWORD@HOST/DB`.
    pub database: Option<String>,
    /// Object store URL: `file:///PATH` (default: `DATA_DIR/objects`) or `s3://BUCKET`.
    pub storage: Option<String>,
    /// The HTTP server of `reel serve`.
    pub server: ServerConfig,
    /// The task workers of `reel serve` and `reel worker`.
    pub worker: WorkerSection,
    /// Limits on what users may submit.
    pub limits: LimitsConfig,
    /// Settings of an `s3://` store; credentials come from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    pub s3: S3Config,
    /// How videos are encoded.
    pub encode: EncodeConfig,
    /// Content steering: the edges viewers are sent to.
    pub steering: SteeringConfig,
}

/// Content steering: the edges viewers are sent to, and how.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SteeringConfig {
    /// How long players keep a steering answer before asking again.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// How often each edge's `/healthz` is checked (two failures drop it).
    #[serde(with = "humantime_serde")]
    pub health_interval: Duration,
    /// Client locations by network, `CIDR=LAT,LON` (the longest prefix wins);
    /// these rules override `geoip_db`.
    pub networks: Vec<String>,
    /// A GeoIP database in MaxMind's `.mmdb` format (GeoLite2-City or
    /// GeoIP2-City layout), read once at start-up; it locates clients that
    /// no `networks` rule covers.
    pub geoip_db: Option<PathBuf>,
    /// Edges known from the start (edges may also register with `reel edge --register`).
    pub edges: Vec<EdgeEntry>,
    /// How many edges the registry holds at most, configured and registered;
    /// a registration over it is refused with 409.
    pub max_edges: usize,
}

/// One configured edge.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeEntry {
    /// Its pathway id.
    pub name: String,
    /// Where viewers reach it.
    pub url: String,
    /// `LAT,LON` in degrees.
    pub location: Option<String>,
}

impl Default for SteeringConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(10),
            health_interval: Duration::from_secs(1),
            networks: Vec::new(),
            geoip_db: None,
            edges: Vec::new(),
            max_edges: 64,
        }
    }
}

/// How videos are encoded.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncodeConfig {
    /// The x264 preset (ultrafast … veryslow).
    pub preset: String,
    /// Media segments per encode chunk (one segment is about 4 s).
    pub segments_per_chunk: u32,
    /// Encode the lowest rendition in its own tasks, first, so a video is playable early.
    pub lowest_rendition_first: bool,
    /// Threads per x264 encoder (0: the cores divided by the worker slots, at least 1);
    /// SVT-AV1 (`lp`) and x265 (`pools`) take the same number.
    pub x264_threads: u32,
    /// Time limit of an ffmpeg run per second of media it encodes (at least one minute per run).
    #[serde(with = "humantime_serde")]
    pub time_per_media_second: Duration,
    /// Progressive MP4 downloads every video job makes after its last
    /// publication: `off` (made on request), `all`, or rendition names or
    /// ids separated by commas (`720p,h264-240p`).
    pub downloads: String,
    /// The video codecs every rung is encoded in: `h264`, `h264,av1`,
    /// `h264,hevc` or `h264,av1,hevc`. H.264 is always first and always
    /// published first; the others join the presentation as they finish.
    pub codecs: String,
}

impl EncodeConfig {
    /// `codecs` as the plan takes it.
    pub fn video_codecs(&self) -> anyhow::Result<Vec<VideoCodec>> {
        const ACCEPTED: [&str; 4] = ["h264", "h264,av1", "h264,hevc", "h264,av1,hevc"];
        let names: Vec<&str> = self.codecs.split(',').map(str::trim).collect();
        let normalized = names.join(",");
        if !ACCEPTED.contains(&normalized.as_str()) {
            anyhow::bail!(
                "encode.codecs {:?} is not accepted; use one of {}",
                self.codecs,
                ACCEPTED.join(" or ")
            );
        }
        names
            .into_iter()
            .map(|name| name.parse::<VideoCodec>().map_err(anyhow::Error::from))
            .collect()
    }

    /// `downloads` as the pipeline takes it.
    pub fn download_selection(&self) -> anyhow::Result<DownloadSelection> {
        let text = self.downloads.trim();
        if text.is_empty() || text == "off" {
            return Ok(DownloadSelection::Off);
        }
        if text == "all" {
            return Ok(DownloadSelection::All);
        }
        let names: Vec<String> = text
            .split(',')
            .map(|name| name.trim().to_string())
            .collect();
        let valid = |name: &String| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        };
        if let Some(bad) = names.iter().find(|name| !valid(name)) {
            anyhow::bail!(
                "encode.downloads {text:?}: {bad:?} is not a rendition name; use all, or names or ids such as 720p,h264-240p"
            );
        }
        Ok(DownloadSelection::Renditions(names))
    }
}

impl Default for EncodeConfig {
    fn default() -> Self {
        Self {
            preset: EncodeSettings::standard().preset,
            segments_per_chunk: PlanSettings::standard().segments_per_chunk,
            lowest_rendition_first: true,
            x264_threads: 0,
            time_per_media_second: Duration::from_secs(30),
            downloads: "off".to_string(),
            codecs: VideoCodec::H264.as_str().to_string(),
        }
    }
}

/// The HTTP server.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Worker slots that run inside `reel serve` (0 for an API-only process).
    pub workers: usize,
    /// The built web app served at `/` (default: `web/dist` when it exists).
    pub web_dir: Option<PathBuf>,
    /// The URL browsers reach the server at, e.g. `https://video.example.org`
    /// behind a TLS proxy: with `https`, session cookies are `Secure`, and a
    /// signed-in browser's Origin must match its scheme, host and port
    /// (unset: `http://`, or `https://` with `tls_cert`, and the request's
    /// Host).
    pub public_url: Option<String>,
    /// The most client connections open at once; more wait in the listen
    /// queue until one closes.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers before the
    /// connection is closed.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// How long a request body may send nothing while the server waits for
    /// it before the request is cut.
    #[serde(with = "humantime_serde")]
    pub body_idle_timeout: Duration,
    /// The credential `reel edge --origin-secret` sends (`reel-edge-secret`
    /// header) to fetch private videos' objects without a viewer token.
    pub edge_secret: Option<String>,
    /// PEM certificate chain (leaf first) to serve HTTPS with, HTTP/2 and
    /// HTTP/1.1 by ALPN; needs `tls_key`. Reloaded on SIGHUP.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

/// The task workers.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSection {
    /// Tasks one `reel worker` process runs at once.
    pub slots: usize,
    /// How long a claimed task is held without a heartbeat before another worker may redo it.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often a running task renews its lease and checks for cancellation.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// How often idle workers look for work when no wake-up arrives.
    #[serde(with = "humantime_serde")]
    pub poll: Duration,
    /// Delay before the second attempt of a failed task; doubles with each attempt.
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    /// The longest delay between attempts.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Scratch directory for local copies of media (default: `DATA_DIR/scratch`).
    pub scratch_dir: Option<PathBuf>,
    /// The most bytes of source copies a worker keeps in its scratch
    /// directory (with `s3://` storage); least recently used go first.
    pub source_cache: ByteSize,
}

/// The `[limits]` section: what users may submit, and what the media tools
/// may use (one type with `reel-media`, which enforces it).
pub type LimitsConfig = reel_media::MediaLimits;

/// An S3-compatible store.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Endpoint URL for S3-compatible stores (MinIO, R2, Garage); unset for AWS.
    pub endpoint: Option<String>,
    /// The region.
    pub region: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./reel-data"),
            database: None,
            storage: None,
            server: ServerConfig::default(),
            worker: WorkerSection::default(),
            limits: LimitsConfig::standard(),
            s3: S3Config::default(),
            encode: EncodeConfig::default(),
            steering: SteeringConfig::default(),
        }
    }
}

impl ServerConfig {
    /// The TLS files, when HTTPS is configured (both keys, or neither).
    pub fn tls_files(&self) -> anyhow::Result<Option<reel_http::tls::TlsFiles>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(reel_http::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => anyhow::bail!(
                "server.tls_cert is set without server.tls_key; give both (--tls-key, REEL_SERVER_TLS_KEY) or neither"
            ),
            (None, Some(_)) => anyhow::bail!(
                "server.tls_key is set without server.tls_cert; give both (--tls-cert, REEL_SERVER_TLS_CERT) or neither"
            ),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 2,
            web_dir: None,
            public_url: None,
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(60),
            edge_secret: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl Default for WorkerSection {
    fn default() -> Self {
        Self {
            slots: 2,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(5),
            poll: Duration::from_secs(1),
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            scratch_dir: None,
            source_cache: ByteSize::from_bytes(reel_pipeline::video::DEFAULT_SOURCE_CACHE_BYTES),
        }
    }
}

/// Values given on the command line, which override everything else.
#[derive(Clone, Debug, Default)]
pub struct FlagOverrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--database`.
    pub database: Option<String>,
    /// `--storage`.
    pub storage: Option<String>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--workers` (serve) or `--slots` (worker).
    pub workers: Option<usize>,
    /// `--tls-cert` (serve).
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key` (serve).
    pub tls_key: Option<PathBuf>,
}

impl Config {
    /// Loads the configuration from `file` (or `./reel.toml` if present), the
    /// environment and the flags, and validates it.
    pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> anyhow::Result<Self> {
        let mut config = match file {
            Some(path) => read_file(path)?,
            None if Path::new("reel.toml").is_file() => read_file(Path::new("reel.toml"))?,
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        if let Some(data_dir) = &flags.data_dir {
            config.data_dir = data_dir.clone();
        }
        if let Some(database) = &flags.database {
            config.database = Some(database.clone());
        }
        if let Some(storage) = &flags.storage {
            config.storage = Some(storage.clone());
        }
        if let Some(listen) = flags.listen {
            config.server.listen = listen;
        }
        if let Some(workers) = flags.workers {
            config.server.workers = workers;
            config.worker.slots = workers;
        }
        if let Some(cert) = &flags.tls_cert {
            config.server.tls_cert = Some(cert.clone());
        }
        if let Some(key) = &flags.tls_key {
            config.server.tls_key = Some(key.clone());
        }
        config.validate()?;
        Ok(config)
    }

    /// Sets every key named by a `REEL_*` variable (see [`env`]).
    fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        *self = env::apply(self, var)?;
        Ok(())
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.worker.heartbeat.is_zero() || self.worker.heartbeat * 2 > self.worker.lease {
            anyhow::bail!(
                "worker.heartbeat ({}) must be above zero and at most half of worker.lease ({}), so that one missed heartbeat does not lose the lease",
                humantime::format_duration(self.worker.heartbeat),
                humantime::format_duration(self.worker.lease)
            );
        }
        if self.worker.poll.is_zero() {
            anyhow::bail!("worker.poll must be above zero");
        }
        self.public_url()?;
        if self.server.max_connections == 0 {
            anyhow::bail!("server.max_connections must be at least 1");
        }
        self.server.tls_files()?;
        if self.server.header_read_timeout.is_zero() || self.server.body_idle_timeout.is_zero() {
            anyhow::bail!(
                "server.header_read_timeout and server.body_idle_timeout must be above zero"
            );
        }
        if self.limits.ffmpeg_memory.bytes() < 64 << 20 {
            anyhow::bail!(
                "limits.ffmpeg_memory must be at least 64MiB: ffmpeg needs that much to start"
            );
        }
        const PRESETS: [&str; 10] = [
            "ultrafast",
            "superfast",
            "veryfast",
            "faster",
            "fast",
            "medium",
            "slow",
            "slower",
            "veryslow",
            "placebo",
        ];
        if !PRESETS.contains(&self.encode.preset.as_str()) {
            anyhow::bail!(
                "encode.preset {:?} is not an x264 preset; use one of {}",
                self.encode.preset,
                PRESETS.join(", ")
            );
        }
        self.encode.download_selection()?;
        self.encode.video_codecs()?;
        if self.encode.segments_per_chunk == 0 || self.encode.segments_per_chunk > 64 {
            anyhow::bail!("encode.segments_per_chunk must be between 1 and 64");
        }
        Ok(())
    }

    /// `server.public_url`, parsed: an http(s) URL with a host.
    pub fn public_url(&self) -> anyhow::Result<Option<url::Url>> {
        let Some(text) = &self.server.public_url else {
            return Ok(None);
        };
        let url = url::Url::parse(text)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
            .with_context(|| {
                format!("server.public_url {text:?} must be an http(s) URL such as https://video.example.org")
            })?;
        Ok(Some(url))
    }

    /// The database URL, with the default under the data dir.
    pub fn database_url(&self) -> anyhow::Result<String> {
        match &self.database {
            Some(url) => Ok(url.clone()),
            None => Ok(format!(
                "sqlite://{}",
                absolute(&self.data_dir)?.join("reel.db").display()
            )),
        }
    }

    /// The storage URL, with the default under the data dir.
    pub fn storage_url(&self) -> anyhow::Result<String> {
        match &self.storage {
            Some(url) => Ok(url.clone()),
            None => Ok(format!(
                "file://{}",
                absolute(&self.data_dir)?.join("objects").display()
            )),
        }
    }

    /// The parsed storage URL.
    pub fn storage(&self) -> anyhow::Result<reel_pipeline::storage::StorageUrl> {
        Ok(self.storage_url()?.parse()?)
    }

    /// The scratch directory for local media copies.
    pub fn scratch_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.worker.scratch_dir {
            Some(dir) => Ok(dir.clone()),
            None => Ok(absolute(&self.data_dir)?.join("scratch")),
        }
    }

    /// The resolved configuration as TOML, with passwords and secret query
    /// values in URLs redacted.
    pub fn redacted_toml(&self) -> anyhow::Result<String> {
        let mut resolved = self.clone();
        resolved.database = Some(redact_url(&self.database_url()?));
        resolved.storage = Some(redact_url(&self.storage_url()?));
        resolved.s3.endpoint = self.s3.endpoint.as_deref().map(redact_url);
        resolved.server.public_url = self.server.public_url.as_deref().map(redact_url);
        if resolved.server.edge_secret.is_some() {
            resolved.server.edge_secret = Some("***".to_string());
        }
        for edge in &mut resolved.steering.edges {
            edge.url = redact_url(&edge.url);
        }
        if resolved.server.edge_secret.is_some() {
            resolved.server.edge_secret = Some("REDACTED".into());
        }
        Ok(toml::to_string_pretty(&resolved)?)
    }
}

fn read_file(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is invalid", path.display()))
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("reading the current directory")?
        .join(path))
}

pub use crate::redact::redact_url;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_urls() {
        assert_eq!(
            redact_url("postgres://reel:hunter2@db:5432/reel"),
            "postgres://reel:***@db:5432/reel"
        );
        assert_eq!(
            redact_url("postgres://reel@db/reel"),
            "postgres://reel@db/reel"
        );
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let mut config: Config =
            toml::from_str("[worker]\nslots = 3\nlease = \"10s\"\nheartbeat = \"2s\"\n")
                .expect("valid toml");
        assert_eq!(config.worker.slots, 3);
        config
            .apply_env(|name| match name {
                "REEL_WORKER_SLOTS" => Some("5".to_string()),
                "REEL_DATABASE" => Some("postgres://a:b@c/d".to_string()),
                "REEL_STEERING_GEOIP_DB" => Some("/srv/GeoLite2-City.mmdb".to_string()),
                _ => None,
            })
            .expect("valid env");
        assert_eq!(config.worker.slots, 5);
        assert_eq!(config.worker.lease, Duration::from_secs(10));
        assert_eq!(
            config.steering.geoip_db.as_deref(),
            Some(Path::new("/srv/GeoLite2-City.mmdb"))
        );
        assert!(config
            .redacted_toml()
            .expect("toml")
            .contains("postgres://a:***@c/d"));
    }

    #[test]
    fn rejects_unknown_keys_and_bad_heartbeats() {
        assert!(toml::from_str::<Config>("databse = \"x\"").is_err());
        let config: Config =
            toml::from_str("[worker]\nlease = \"4s\"\nheartbeat = \"3s\"\n").expect("valid toml");
        let error = config
            .validate()
            .expect_err("heartbeat too long")
            .to_string();
        assert!(error.contains("at most half"), "{error}");
    }

    #[test]
    fn rejects_bad_env_values_with_the_variable_name() {
        let mut config = Config::default();
        let error = config
            .apply_env(|name| (name == "REEL_WORKER_LEASE").then(|| "soon".to_string()))
            .expect_err("bad duration");
        assert!(format!("{error:#}").contains("REEL_WORKER_LEASE"));
    }

    #[test]
    fn accepts_only_the_listed_codec_sets() {
        let codecs = |text: &str| {
            let mut config = Config::default();
            config.encode.codecs = text.to_string();
            config
                .validate()
                .and_then(|()| config.encode.video_codecs())
                .map_err(|error| error.to_string())
        };
        assert_eq!(codecs("h264"), Ok(vec![VideoCodec::H264]));
        assert_eq!(
            codecs("h264, av1,hevc"),
            Ok(vec![VideoCodec::H264, VideoCodec::Av1, VideoCodec::Hevc])
        );
        assert_eq!(
            codecs("h264,hevc"),
            Ok(vec![VideoCodec::H264, VideoCodec::Hevc])
        );
        for bad in ["av1", "av1,h264", "h264,vp9", "", "h264,h264"] {
            assert_eq!(
                codecs(bad),
                Err(format!(
                    "encode.codecs {bad:?} is not accepted; use one of h264 or h264,av1 or h264,hevc or h264,av1,hevc"
                ))
            );
        }
    }
    /// The rows of README.md's configuration table: each row's backticked
    /// names in the key, env and default columns.
    fn readme_rows() -> Vec<[Vec<String>; 3]> {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("\n## Configuration\n")
            .nth(1)
            .expect("README.md has a Configuration section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let ticked = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        section
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| {
                let cells: Vec<&str> = line.split(" | ").collect();
                assert!(cells.len() >= 4, "a short row: {line}");
                [ticked(cells[0]), ticked(cells[1]), ticked(cells[2])]
            })
            .collect()
    }

    #[test]
    fn readme_table_lists_every_key() {
        let keys = env::keys();
        let defaults = serde_json::to_value(Config::default()).expect("serializes");
        let mut listed = Vec::new();
        for [names, envs, default] in readme_rows() {
            assert_eq!(names.len(), 1, "one key per row: {names:?}");
            let key = &names[0];
            listed.push(key.clone());
            assert_eq!(envs, env::names(key), "the env column of {key}");
            let value = key.split('.').fold(&defaults, |node, part| &node[part]);
            let expected = match value {
                serde_json::Value::String(text) => Some(text.clone()),
                serde_json::Value::Number(_) | serde_json::Value::Bool(_) => {
                    Some(value.to_string())
                }
                _ => None,
            };
            if let Some(expected) = expected {
                assert_eq!(
                    default.first(),
                    Some(&expected),
                    "the default column of {key}"
                );
            }
        }
        let mut sorted = listed.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), listed.len(), "a key listed twice: {listed:?}");
        let mut expected = keys.clone();
        expected.sort();
        assert_eq!(
            sorted, expected,
            "README.md's table against the Config struct"
        );
    }

    #[test]
    fn every_key_is_settable_from_the_environment() {
        let vars = [
            ("REEL_SERVER_LISTEN", "127.0.0.1:9000"),
            ("REEL_LISTEN", "127.0.0.1:9001"),
            ("REEL_WEB_DIR", "/srv/web"),
            ("REEL_WORKER_RETRY_MAX", "7m"),
            ("REEL_MAX_UPLOAD_SIZE", "3GiB"),
            ("REEL_LIMITS_PROBE_TIMEOUT", "9s"),
            ("REEL_LIMITS_MAX_FRAME_RATE", "30000/1001"),
            ("REEL_QUOTA_PER_KEY", "1GiB"),
            ("REEL_ENCODE_LOWEST_RENDITION_FIRST", "false"),
            ("REEL_ENCODE_TIME_PER_MEDIA_SECOND", "45s"),
            ("REEL_ENCODE_DOWNLOADS", "720p, h264-240p"),
            ("REEL_ENCODE_CODECS", "h264,av1"),
            (
                "REEL_STEERING_NETWORKS",
                "10.0.0.0/8=1,2; ;192.168.0.0/16=3,4",
            ),
            (
                "REEL_STEERING_EDGES",
                "[{name = \"a\", url = \"http://a:8081\", location = \"1,2\"}]",
            ),
        ];
        let mut config = Config::default();
        config
            .apply_env(|name| {
                vars.iter()
                    .find(|(var, _)| *var == name)
                    .map(|(_, value)| value.to_string())
            })
            .expect("valid env");
        assert_eq!(
            config.server.listen,
            "127.0.0.1:9000".parse().expect("addr")
        );
        assert_eq!(
            config.server.web_dir.as_deref(),
            Some(Path::new("/srv/web"))
        );
        assert_eq!(config.worker.retry_max, Duration::from_secs(420));
        assert_eq!(config.limits.max_upload_size.bytes(), 3 << 30);
        assert_eq!(config.limits.probe_timeout, Duration::from_secs(9));
        assert_eq!(config.limits.max_frame_rate.to_string(), "30000/1001");
        assert_eq!(
            config.limits.quota_per_key.map(|q| q.bytes()),
            Some(1 << 30)
        );
        assert!(!config.encode.lowest_rendition_first);
        assert_eq!(config.encode.time_per_media_second, Duration::from_secs(45));
        assert_eq!(
            config.encode.download_selection().expect("valid"),
            DownloadSelection::Renditions(vec!["720p".to_string(), "h264-240p".to_string()])
        );
        assert_eq!(
            config.encode.video_codecs().expect("valid"),
            [VideoCodec::H264, VideoCodec::Av1]
        );
        assert_eq!(
            config.steering.networks,
            ["10.0.0.0/8=1,2", "192.168.0.0/16=3,4"]
        );
        assert_eq!(config.steering.edges.len(), 1);
        assert_eq!(config.steering.edges[0].url, "http://a:8081");
        let error = Config::default()
            .apply_env(|name| (name == "REEL_SERVER_WORKERS").then(|| "many".to_string()))
            .expect_err("not a number");
        assert!(
            format!("{error:#}").contains("REEL_SERVER_WORKERS"),
            "{error:#}"
        );
    }
}
