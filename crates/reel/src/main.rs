//! The `reel` binary: command-line parsing, configuration, tracing, and the
//! wiring of the API server and the workers.

mod abr;
mod client;
mod config;
mod edge;
mod ingest;
mod pipeline;
mod play;
mod redact;
mod signing;
mod upload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use reel_core::JobId;
use reel_jobs::metrics::Metrics;
use reel_jobs::store::{JobStore, JobView};
use reel_jobs::worker::run_worker_pool;
use reel_pipeline::storage::{S3Settings, StorageUrl};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::{Config, FlagOverrides, SteeringConfig};

/// reel turns uploaded videos into adaptive streams; this binary runs every role.
#[derive(Parser)]
#[command(name = "reel", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct GlobalArgs {
    /// Configuration file (default: ./reel.toml when it exists).
    #[arg(long, global = true, env = "REEL_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory for the embedded SQLite database and local object store.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER:PASSWORD@HOST/DB.
    #[arg(long, global = true)]
    database: Option<String>,
    /// Object store URL: file:///PATH or s3://BUCKET.
    #[arg(long, global = true)]
    storage: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API with in-process workers.
    Serve {
        /// Address to listen on (127.0.0.1:0 picks a free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Worker slots inside this process (0 for an API-only process).
        #[arg(long)]
        workers: Option<usize>,
        /// Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) with this PEM
        /// certificate chain; needs --tls-key; reloaded on SIGHUP.
        #[arg(long)]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long)]
        tls_key: Option<PathBuf>,
    },
    /// Send a video file to a reel server; with --wait, follow it until it is ready.
    Ingest(ingest::IngestArgs),
    /// Upload video files resumably, in parallel parts straight to storage; run it again to resume.
    Upload(upload::UploadArgs),
    /// Run task workers against a shared database and object store.
    Worker {
        /// Tasks this process runs at once.
        #[arg(long)]
        slots: Option<usize>,
        /// A name for this worker, shown in job listings.
        #[arg(long)]
        name: Option<String>,
    },
    /// List, show and cancel jobs.
    Jobs {
        #[command(subcommand)]
        command: Option<JobsCommand>,
        /// Print JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Adaptive bitrate: simulate algorithms over network traces.
    Abr {
        #[command(subcommand)]
        command: AbrCommand,
    },
    /// Run a caching edge in front of a reel origin (or another edge, for tiers).
    Edge(Box<edge::EdgeArgs>),
    /// Play a reel video headlessly with an ABR algorithm and report start-up, stalls, switches and QoE.
    Play(play::PlayArgs),
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// List the newest jobs.
    List {
        /// How many jobs.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Show one job with each task's state, attempts, worker, timings and error.
    Show {
        /// The job id.
        id: String,
    },
    /// Cancel a job; its running tasks stop at their next heartbeat.
    Cancel {
        /// The job id.
        id: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key and print it once (only its hash is stored).
    Create {
        /// A name for the key, e.g. the person or script that uses it.
        #[arg(long)]
        name: String,
        /// What the key may do: `uploader` (its own videos and uploads) or
        /// `admin` (anything).
        #[arg(long, default_value = "uploader", value_parser = ["admin", "uploader"])]
        role: String,
        /// Print JSON (`key`, `name`, `role`).
        #[arg(long)]
        json: bool,
    },
    /// List API keys (never their secrets).
    List,
    /// Add a new playback signing key to `DATA_DIR/signing-keys.json`: it
    /// signs new tokens after the server restarts; tokens signed by older
    /// keys keep verifying until they expire. `--remove KID` drops a key.
    RotateSigning {
        /// Remove this key id instead (its tokens stop verifying).
        #[arg(long)]
        remove: Option<String>,
    },
}

#[derive(Subcommand)]
enum AbrCommand {
    /// Run ABR algorithms over folders of traces (Pensieve's simulation setup) and print mean QoE, bitrate, rebuffering and switches.
    Simulate(abr::AbrArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the resolved configuration with secrets redacted, after validating it.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REEL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut flags = FlagOverrides {
        data_dir: cli.global.data_dir.clone(),
        database: cli.global.database.clone(),
        storage: cli.global.storage.clone(),
        ..FlagOverrides::default()
    };
    match &cli.command {
        Command::Serve {
            listen,
            workers,
            tls_cert,
            tls_key,
        } => {
            flags.listen = *listen;
            flags.workers = *workers;
            flags.tls_cert = tls_cert.clone();
            flags.tls_key = tls_key.clone();
        }
        Command::Worker { slots, .. } => flags.workers = *slots,
        _ => {}
    }
    let command = match cli.command {
        Command::Abr {
            command: AbrCommand::Simulate(args),
        } => {
            // Pure computation: no configuration, database or storage involved.
            return abr::run(args).await;
        }
        Command::Play(args) => return play::run(args).await,
        Command::Edge(args) => {
            // An edge needs no database or storage of its own.
            return edge::run(*args, shutdown_on_signal()).await;
        }
        other => other,
    };
    let config = Config::load(cli.global.config.as_deref(), &flags)?;
    match command {
        Command::Serve { .. } => serve(config).await,
        Command::Worker { name, .. } => worker(config, name).await,
        Command::Jobs { command, json } => jobs(config, command, json).await,
        Command::Keys { command } => keys(config, command).await,
        Command::Upload(args) => {
            let target = args.server.resolve(&config)?;
            upload::upload(args, target).await
        }
        Command::Ingest(args) => {
            let target = args.server.resolve(&config)?;
            ingest::ingest(args, target).await
        }
        Command::Abr { .. } | Command::Edge(_) | Command::Play(_) => Ok(()),
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            print!("{}", config.redacted_toml()?);
            Ok(())
        }
    }
}

async fn open_store(config: &Config, max_connections: u32) -> anyhow::Result<JobStore> {
    let url = config.database_url()?;
    if let Some(path) = url.strip_prefix("sqlite://") {
        if let Some(parent) = std::path::Path::new(path).parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating data directory {}", parent.display()))?;
        }
    }
    reel_model::connect(&url, max_connections)
        .await
        .map_err(|error| {
            anyhow::anyhow!(
                "opening database {}: {}",
                redact::redact_url(&url),
                redact::redact_url_in(&error.to_string(), &url)
            )
        })
}

fn open_objects(config: &Config) -> anyhow::Result<Arc<dyn object_store::ObjectStore>> {
    let settings = S3Settings {
        endpoint: config.s3.endpoint.clone(),
        region: config.s3.region.clone(),
    };
    reel_pipeline::storage::open(&config.storage()?, &settings).context("opening the object store")
}

/// How often expired uploads are reaped.
const UPLOAD_REAP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// The embedded S3 endpoint's signing secret: read from
/// `DATA_DIR/embedded-s3.secret`, created (mode 0600) on first start.
/// Presigned multipart uploads straight to the store for `s3://bucket`
/// storage, signed with the credentials object_store uses
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`); `None` without them.
fn remote_multipart(
    config: &config::Config,
    storage: &StorageUrl,
) -> anyhow::Result<Option<reel_s3::RemoteS3>> {
    let Some(bucket) = storage.s3_bucket() else {
        return Ok(None);
    };
    let (Ok(access_key_id), Ok(secret_access_key)) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) else {
        tracing::warn!("s3:// storage without AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: /v1/uploads is off (tus at /files/ still works)");
        return Ok(None);
    };
    let region = config
        .s3
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .unwrap_or_else(|| "us-east-1".to_string());
    let endpoint = match &config.s3.endpoint {
        Some(endpoint) => endpoint.clone(),
        None => format!("https://s3.{region}.amazonaws.com"),
    };
    let endpoint = url::Url::parse(&endpoint)
        .with_context(|| format!("s3.endpoint {endpoint:?} is not a URL"))?;
    Ok(Some(reel_s3::RemoteS3::new(
        endpoint,
        bucket.to_string(),
        reel_s3::S3Credentials {
            access_key_id,
            secret_access_key,
            region,
        },
    )))
}

fn embedded_s3_secret(config: &Config) -> anyhow::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = config.data_dir.clone();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("embedded-s3.secret");
    if let Ok(secret) = std::fs::read_to_string(&path) {
        let secret = secret.trim().to_string();
        if secret.len() >= 32 {
            return Ok(secret);
        }
    }
    let mut random = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut random);
    let secret = hex::encode(random);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(secret.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

/// `$XDG_STATE_HOME/reel/uploads`, else `~/.local/state/reel/uploads`.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    trigger.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        info!("shutting down");
        trigger.cancel();
    });
    token
}

/// The TLS identity of `files` (`reel serve` and `reel edge`), read on a
/// blocking thread; none without files.
async fn load_server_tls(
    files: Option<reel_http::tls::TlsFiles>,
) -> anyhow::Result<Option<Arc<reel_http::tls::ServerTls>>> {
    let Some(files) = files else {
        return Ok(None);
    };
    let tls = tokio::task::spawn_blocking(move || reel_http::tls::ServerTls::load(files))
        .await
        .context("loading the tls certificate")??;
    Ok(Some(Arc::new(tls)))
}

/// Where steering locates clients: `steering.networks`, then
/// `steering.geoip_db`, read here once.
async fn client_locator(config: &SteeringConfig) -> anyhow::Result<reel_steer::ClientLocator> {
    let networks = reel_steer::NetworkRules::parse(config.networks.iter().map(String::as_str))
        .context("steering.networks")?;
    let geoip = match &config.geoip_db {
        Some(path) => {
            let path = path.clone();
            let db = tokio::task::spawn_blocking(move || load_geoip_db(&path))
                .await
                .context("loading steering.geoip_db")??;
            Some(db)
        }
        None => None,
    };
    Ok(reel_steer::ClientLocator { networks, geoip })
}

/// Reads and parses `steering.geoip_db`; blocking (a city database is tens
/// of MB), so it runs on a blocking thread.
fn load_geoip_db(path: &Path) -> anyhow::Result<reel_steer::GeoIpDb> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "steering.geoip_db {}: cannot read the GeoIP database; point steering.geoip_db (REEL_STEERING_GEOIP_DB) at a readable .mmdb file",
            path.display()
        )
    })?;
    let db = reel_steer::GeoIpDb::from_bytes(bytes)
        .with_context(|| format!("steering.geoip_db {}", path.display()))?;
    info!(path = %path.display(), database_type = db.database_type(), "geoip database loaded");
    Ok(db)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let tls = load_server_tls(config.server.tls_files()?).await?;
    let locator = client_locator(&config.steering).await?;
    let store = open_store(&config, 16).await?;
    let objects = open_objects(&config)?;
    if reel_model::keys::count_keys(&store).await? == 0 {
        let secret =
            reel_model::keys::create_key_with_role(&store, "admin", reel_model::Role::Admin)
                .await?;
        println!("created the admin API key (shown once; keep it): {secret}");
    }
    let metrics = Arc::new(Metrics::new());
    let shutdown = shutdown_on_signal();
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| {
            format!(
                "listening on {}; is another server using it? pick another with --listen",
                config.server.listen
            )
        })?;
    let address = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("reel serve listening on {scheme}://{address}");
    let storage = config.storage()?;
    // The embedded S3 endpoint serves presigned multipart uploads into the
    // local store; its signing secret lives in the data dir, so URLs stay
    // valid across restarts and for every API process sharing the dir.
    let s3 = if let Some(local_files) = reel_pipeline::storage::local_file_system(&storage)? {
        let credentials = reel_s3::S3Credentials {
            access_key_id: "reel-embedded".to_string(),
            secret_access_key: embedded_s3_secret(&config)?,
            region: "us-east-1".to_string(),
        };
        Some(
            reel_s3::S3State::new(
                objects.clone(),
                reel_s3::S3Config {
                    bucket: "reel".to_string(),
                    credentials,
                    min_part_size: reel_s3::S3_MIN_PART_SIZE,
                    max_part_size: reel_s3::S3_MAX_PART_SIZE,
                    max_clock_skew: std::time::Duration::from_secs(15 * 60),
                    local_files: Some(local_files),
                },
            )
            .context("configuring the embedded S3 endpoint")?,
        )
    } else {
        None
    };
    let tus = reel_upload::UploadState {
        store: store.clone(),
        objects: objects.clone(),
        settings: reel_upload::UploadSettings {
            max_upload_bytes: config.limits.max_upload_size.bytes(),
            part_size: reel_upload::DEFAULT_PART_SIZE,
            expiry: reel_upload::DEFAULT_EXPIRY,
            lock_lease: reel_upload::DEFAULT_LOCK_LEASE,
            quota_per_key: config.limits.quota_per_key.map(|quota| quota.bytes()),
        },
    };
    let multipart = match &s3 {
        Some(embedded) => Some(reel_s3::MultipartStore::Embedded(embedded.clone())),
        None => remote_multipart(&config, &storage)?.map(reel_s3::MultipartStore::Remote),
    };
    let configured_edges: Vec<reel_api::steering::EdgeSpec> = config
        .steering
        .edges
        .iter()
        .map(|edge| reel_api::steering::EdgeSpec {
            name: edge.name.clone(),
            url: edge.url.clone(),
            location: edge.location.clone(),
            purge_token: None,
        })
        .collect();
    let edges = Arc::new(
        reel_api::steering::Edges::new(
            reel_api::steering::SteeringSettings {
                ttl: config.steering.ttl,
                health_interval: config.steering.health_interval,
                locator,
                max_edges: config.steering.max_edges,
            },
            &configured_edges,
        )
        .map_err(|error| anyhow::anyhow!("steering.edges: {}", error.message()))?,
    );
    edges.clone().spawn_health_checks(shutdown.clone());
    let signing = reel_token::SigningKeySet::load_or_generate(&signing::signing_keys_path(&config))
        .context("loading the playback signing keys")?;
    let state = reel_api::AppState {
        playback: reel_api::playback::shared(signing, config.server.edge_secret.clone()),
        store: store.clone(),
        objects: objects.clone(),
        metrics: metrics.clone(),
        max_upload_bytes: config.limits.max_upload_size.bytes(),
        s3: s3.clone(),
        multipart: multipart.clone(),
        edges,
        web_dir: config
            .server
            .web_dir
            .clone()
            .or_else(|| Some(PathBuf::from("web/dist")).filter(|dir| dir.is_dir())),
        tus: tus.clone(),
        quota_per_key: config.limits.quota_per_key.map(|quota| quota.bytes()),
        public_origin: reel_api::same_origin::PublicOrigin {
            url: config.public_url()?,
            serves_https: tls.is_some(),
        },
    };
    let webhooks = reel_webhooks::WebhookStore::new(store.pool().clone());
    webhooks
        .migrate()
        .await
        .context("preparing the webhook tables")?;
    let dispatcher = tokio::spawn(reel_webhooks::run(
        webhooks,
        reel_webhooks::DispatchSettings::default(),
        shutdown.clone(),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    if config.server.workers > 0 {
        let registry = pipeline::registry(&config, &store, objects.clone(), config.server.workers)?;
        let worker_config =
            pipeline::worker_config(&config, "serve".to_string(), config.server.workers);
        tasks.spawn(run_worker_pool(
            store.clone(),
            registry,
            worker_config,
            metrics.clone(),
            shutdown.clone(),
        ));
    }
    // Expired uploads of both protocols are aborted and their parts removed.
    let reaper = reel_upload::spawn_reaper(tus, UPLOAD_REAP_INTERVAL, shutdown.clone());
    if let Some(multipart) = multipart {
        let store = store.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                if let Err(error) =
                    reel_api::uploads::reap_expired_multipart(&store, &multipart).await
                {
                    tracing::warn!(?error, "reaping expired multipart uploads failed");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(UPLOAD_REAP_INTERVAL) => {}
                }
            }
        });
    }
    let limits = reel_http::server::HttpLimits {
        max_connections: config.server.max_connections,
        header_read_timeout: config.server.header_read_timeout,
        body_idle_timeout: config.server.body_idle_timeout,
    };
    let server = reel_http::server::HttpServer { limits, tls };
    reel_http::server::serve_http(listener, reel_api::router(state), server, shutdown.clone())
        .await;
    shutdown.cancel();
    let _ = reaper.await;
    let _ = dispatcher.await;
    while let Some(result) = tasks.join_next().await {
        result.context("worker pool panicked")??;
    }
    Ok(())
}

async fn worker(config: Config, name: Option<String>) -> anyhow::Result<()> {
    let slots = config.worker.slots.max(1);
    let store = open_store(&config, u32::try_from(slots).unwrap_or(64) + 4).await?;
    let objects = open_objects(&config)?;
    let registry = pipeline::registry(&config, &store, objects, slots)?;
    let name = name.unwrap_or_else(|| format!("worker-{}", std::process::id()));
    println!("reel worker {name} running {slots} slots");
    let shutdown = shutdown_on_signal();
    run_worker_pool(
        store,
        registry,
        pipeline::worker_config(&config, name, slots),
        Arc::new(Metrics::new()),
        shutdown,
    )
    .await?;
    Ok(())
}

async fn jobs(config: Config, command: Option<JobsCommand>, json: bool) -> anyhow::Result<()> {
    let store = open_store(&config, 2).await?;
    match command.unwrap_or(JobsCommand::List { limit: 20 }) {
        JobsCommand::List { limit } => {
            let jobs = store.list_jobs(limit.clamp(1, 10_000)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else {
                println!("{:<36}  {:<10}  {:<10}  CREATED", "ID", "KIND", "STATE");
                for job in jobs {
                    println!(
                        "{:<36}  {:<10}  {:<10}  {}",
                        job.id,
                        job.kind,
                        state_name(&job),
                        format_time(job.created_at)
                    );
                }
            }
        }
        JobsCommand::Show { id } => {
            let job_id: JobId = id.parse()?;
            let job = store.job(job_id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&job)?);
            } else {
                print_job(&job);
            }
        }
        JobsCommand::Cancel { id } => {
            let job_id: JobId = id.parse()?;
            if store.cancel_job(job_id).await? {
                println!("cancelled job {job_id}; running tasks stop at their next heartbeat");
            } else {
                println!("job {job_id} had already ended");
            }
        }
    }
    Ok(())
}

fn state_name(job: &JobView) -> String {
    serde_json::to_value(job.state)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn format_time(micros: i64) -> String {
    let time = std::time::UNIX_EPOCH
        + std::time::Duration::from_micros(u64::try_from(micros).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

fn print_job(job: &JobView) {
    println!(
        "job {}  kind {}  state {}  created {}",
        job.id,
        job.kind,
        state_name(job),
        format_time(job.created_at)
    );
    if let Some(error) = &job.error {
        println!(
            "failed at task {} (step {}): {}",
            error.task, error.step, error.message
        );
    }
    println!(
        "{:<16} {:<9} {:<10} {:>8} {:>9} {:<36}  ERROR",
        "TASK", "KIND", "STATE", "ATTEMPTS", "RUN (ms)", "WORKER"
    );
    for task in &job.tasks {
        let run_ms = match (task.started_at, task.finished_at) {
            (Some(started), Some(finished)) => format!("{}", (finished - started) / 1000),
            (Some(_), None) => format!("{:.0}%", task.progress * 100.0),
            _ => "-".to_string(),
        };
        println!(
            "{:<16} {:<9} {:<10} {:>8} {:>9} {:<36}  {}",
            task.key,
            task.kind,
            task.state,
            format!("{}/{}", task.attempt, task.max_attempts),
            run_ms,
            task.worker.as_deref().unwrap_or("-"),
            task.last_error.as_deref().unwrap_or("")
        );
    }
    for published in &job.published {
        println!("published: {published}");
    }
}

async fn keys(config: Config, command: KeysCommand) -> anyhow::Result<()> {
    if let KeysCommand::RotateSigning { remove } = command {
        return signing::rotate_signing(&config, remove.as_deref());
    }
    let store = open_store(&config, 2).await?;
    match command {
        KeysCommand::Create { name, role, json } => {
            let role = reel_model::Role::parse(&role).unwrap_or(reel_model::Role::Uploader);
            let secret = reel_model::keys::create_key_with_role(&store, &name, role).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"key": secret, "name": name, "role": role.as_str()})
                );
            } else {
                println!("{secret}");
                eprintln!("created {} API key {name:?}; it is shown only this once. Send it as `Authorization: Bearer KEY`.", role.as_str());
            }
        }
        KeysCommand::RotateSigning { .. } => {}
        KeysCommand::List => {
            for key in reel_model::keys::list_keys(&store).await? {
                println!(
                    "{}  {}  {}…  {}",
                    key.name,
                    key.role.as_str(),
                    key.prefix,
                    format_time(key.created_at)
                );
            }
        }
    }
    Ok(())
}
