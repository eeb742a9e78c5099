//! `reel upload FILE…`: resumable, parallel uploads straight to storage
//! through presigned part URLs.
//!
//! The server's view of an upload (`GET /v1/uploads/{id}`: which parts
//! storage holds) is the truth; a small state file per source file only
//! remembers the upload id, so a killed `reel upload` (or a killed server)
//! resumes from any machine that has the id, re-sending only the parts that
//! were in flight.
//!
//! Integrity end to end without a second read of the file: each part's
//! CRC64NVME is computed from the buffer that is sent and goes with it
//! (`x-amz-checksum-crc64nvme`, verified by storage as the part lands), and
//! the whole file's CRC64NVME, combined from the part CRCs, is checked by
//! the server at completion (S3's `FULL_OBJECT` checksum). `--sha256` adds
//! the file's SHA-256, computed beside the upload (one more read of the
//! file) and checked by the server the same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// What `reel upload` was asked to do.
#[derive(clap::Args)]
pub struct UploadArgs {
    /// The video files (one video each).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub server: crate::client::ServerArgs,
    /// Parts sent at once.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Follow processing until each video is ready or failed.
    #[arg(long)]
    pub wait: bool,
    /// Print JSON (upload id, crc64nvme, sha256, bytes re-sent, video) instead of progress bars.
    #[arg(long)]
    pub json: bool,
    /// Where resume hints are kept (default: $XDG_STATE_HOME/reel/uploads or ~/.local/state/reel/uploads).
    #[arg(long, env = "REEL_UPLOAD_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Send at most this many bytes per second (e.g. 20MiB), to leave room on a shared link.
    #[arg(long)]
    pub limit_rate: Option<reel_core::ByteSize>,
    /// Also check the whole file's SHA-256 end to end (one more read of the
    /// file here and one more pass on the server); the CRC64NVME of every
    /// part and of the whole file is always checked.
    #[arg(long)]
    pub sha256: bool,
}

/// Where resume hints are kept when `--state-dir` is not given.
fn default_state_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir).join("reel/uploads"));
    }
    let home = std::env::var_os("HOME")
        .context("neither XDG_STATE_HOME nor HOME is set: pass --state-dir")?;
    Ok(PathBuf::from(home).join(".local/state/reel/uploads"))
}

/// Attempts per part before the upload gives up (it can be resumed later).
const PART_ATTEMPTS: u32 = 6;
/// How many presigned URLs are asked for at once.
const URL_BATCH: usize = 32;

/// The resume hint for one file.
#[derive(Debug, Serialize, Deserialize)]
struct ResumeHint {
    server: String,
    upload_id: String,
    size: u64,
    modified_unix: u64,
}

/// A part as the server reports it.
#[derive(Clone, Debug, Deserialize)]
struct ServerPart {
    part_number: u32,
    size: u64,
    etag: String,
}

/// An upload as the server reports it.
#[derive(Clone, Debug, Deserialize)]
struct ServerUpload {
    id: String,
    size: u64,
    part_size: u64,
    state: String,
    #[serde(default)]
    parts: Vec<ServerPart>,
}

/// A presigned part URL.
#[derive(Clone, Debug, Deserialize)]
struct PartUrl {
    part_number: u32,
    url: String,
}

/// Uploads every file; with `--wait` follows each video to ready.
pub async fn upload(args: UploadArgs, target: crate::client::Server) -> anyhow::Result<()> {
    let state_dir = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => default_state_dir()?,
    };
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    let server = target.url.clone();
    let mut results = Vec::new();
    let mut failed = false;
    for file in &args.files {
        let mut result = upload_one(&client, &target, &state_dir, &args, file)
            .await
            .with_context(|| format!("uploading {}", file.display()))?;
        if args.wait {
            let id = result["video"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let video = crate::ingest::wait_for(&client, &server, &id, args.json).await?;
            failed |= video["state"] == "failed";
            result["video"] = video;
        }
        if !args.json {
            crate::ingest::print_human(&result["video"]);
        }
        results.push(json!({
            "file": file.display().to_string(),
            "upload_id": result["upload_id"],
            "crc64nvme": result["crc64nvme"],
            "sha256": result["sha256"],
            "resent_bytes": result["resent_bytes"],
            "video": crate::ingest::summary(&result["video"]),
        }));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    if failed {
        anyhow::bail!("a video failed to process; see its error above");
    }
    Ok(())
}

fn hint_path(state_dir: &Path, file: &Path, size: u64, modified: u64) -> PathBuf {
    let canonical = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let mut hasher = Sha256::new();
    hasher.update(canonical.to_string_lossy().as_bytes());
    hasher.update(size.to_le_bytes());
    hasher.update(modified.to_le_bytes());
    state_dir.join(format!("{}.json", &hex::encode(hasher.finalize())[..32]))
}

async fn api(request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let response = request.send().await.context("reaching the server")?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        anyhow::bail!(
            "the server refused ({status}): {}",
            body["error"]["message"].as_str().unwrap_or("no message")
        );
    }
    Ok(body)
}

async fn upload_one(
    client: &reqwest::Client,
    target: &crate::client::Server,
    state_dir: &Path,
    args: &UploadArgs,
    file: &Path,
) -> anyhow::Result<Value> {
    let metadata = tokio::fs::metadata(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    let size = metadata.len();
    if size == 0 {
        anyhow::bail!("{} is empty", file.display());
    }
    let modified = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |duration| duration.as_secs());
    let server = target.url.as_str();
    tokio::fs::create_dir_all(state_dir)
        .await
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let hint_file = hint_path(state_dir, file, size, modified);
    let auth = format!("Bearer {}", target.api_key);

    // Resume when the hint names an upload the server still has open.
    let mut resumed: Option<ServerUpload> = None;
    if let Ok(text) = tokio::fs::read_to_string(&hint_file).await {
        if let Ok(hint) = serde_json::from_str::<ResumeHint>(&text) {
            if hint.server == server && hint.size == size && hint.modified_unix == modified {
                let request = client
                    .get(format!("{server}/v1/uploads/{}", hint.upload_id))
                    .header("Authorization", &auth);
                if let Ok(body) = api(request).await {
                    if let Ok(upload) = serde_json::from_value::<ServerUpload>(body) {
                        if upload.state == "open" && upload.size == size {
                            resumed = Some(upload);
                        }
                    }
                }
            }
        }
    }
    let upload = match resumed {
        Some(upload) => upload,
        None => {
            let filename = file
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_else(|| "upload".to_string());
            let checksum = if args.sha256 { "sha256" } else { "crc64nvme" };
            let request = client
                .post(format!("{server}/v1/uploads"))
                .header("Authorization", &auth)
                .json(&json!({"filename": filename, "size": size, "checksum": checksum}));
            let body = api(request).await?;
            let upload: ServerUpload =
                serde_json::from_value(body).context("reading the created upload")?;
            let hint = ResumeHint {
                server: server.to_string(),
                upload_id: upload.id.clone(),
                size,
                modified_unix: modified,
            };
            tokio::fs::write(&hint_file, serde_json::to_vec(&hint)?)
                .await
                .with_context(|| format!("writing {}", hint_file.display()))?;
            upload
        }
    };
    let part_size = upload.part_size.max(1);
    let n_parts = u32::try_from(size.div_ceil(part_size)).context("too many parts")?;
    let expected_size = |part_number: u32| -> u64 {
        let start = u64::from(part_number - 1) * part_size;
        part_size.min(size - start)
    };
    let mut etags: Vec<Option<String>> = vec![None; n_parts as usize];
    let mut part_crcs: Vec<Option<u64>> = vec![None; n_parts as usize];
    for part in &upload.parts {
        if part.part_number >= 1
            && part.part_number <= n_parts
            && part.size == expected_size(part.part_number)
        {
            etags[(part.part_number - 1) as usize] = Some(part.etag.clone());
        }
    }
    let missing: Vec<u32> = (1..=n_parts)
        .filter(|number| etags[(*number - 1) as usize].is_none())
        .collect();
    let already: u64 = (1..=n_parts)
        .filter(|number| etags[(*number - 1) as usize].is_some())
        .map(expected_size)
        .sum();

    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(size);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        );
        bar.set_message(
            file.file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        bar.set_position(already);
        bar
    };
    // With --sha256, the file's SHA-256 is computed beside the upload.
    let hashing = args.sha256.then(|| {
        let hash_path = file.to_path_buf();
        tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            use std::io::Read;
            let mut reader = std::fs::File::open(&hash_path)?;
            let mut hasher = Sha256::new();
            let mut buffer = vec![0u8; 1 << 20];
            loop {
                let n = reader.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
            }
            Ok(hex::encode(hasher.finalize()))
        })
    });

    let shared = Arc::new(PartContext {
        client: client.clone(),
        server: server.to_string(),
        auth: auth.clone(),
        upload_id: upload.id.clone(),
        file: file.to_path_buf(),
        part_size,
        size,
        bar: bar.clone(),
        pacer: args.limit_rate.map(|rate| rate.bytes()).map(|rate| Pacer {
            rate: rate.max(1),
            started: std::time::Instant::now(),
            granted: std::sync::Mutex::new(0),
        }),
    });
    // Parts stored by an earlier run are read here (not sent) for their
    // CRCs, so the whole file's CRC covers every byte as it is on disk.
    for part_number in (1..=n_parts).filter(|number| etags[(*number - 1) as usize].is_some()) {
        let data = shared.read_part(part_number).await?;
        part_crcs[(part_number - 1) as usize] = Some(part_crc(data).await?.0);
    }
    let mut resent: u64 = 0;
    // URLs are fetched a batch at a time as the parts are sent, with no
    // pause at the end of a batch.
    let sent = futures::stream::iter(missing.chunks(URL_BATCH))
        .then(|batch| {
            let shared = shared.clone();
            async move { shared.part_urls(batch).await }
        })
        .map_ok(|urls| futures::stream::iter(urls.into_iter().map(Ok::<_, anyhow::Error>)))
        .try_flatten()
        .map_ok(|part| {
            let shared = shared.clone();
            async move { shared.send_part(part).await }
        })
        .try_buffer_unordered(args.parallel.max(1));
    futures::pin_mut!(sent);
    while let Some(sent_part) = sent.try_next().await? {
        let index = (sent_part.part_number - 1) as usize;
        resent += expected_size(sent_part.part_number);
        etags[index] = Some(sent_part.etag);
        part_crcs[index] = Some(sent_part.crc64nvme);
    }
    bar.finish_and_clear();
    let sha256 = match hashing {
        Some(hashing) => Some(
            hashing
                .await
                .context("hashing thread")?
                .with_context(|| format!("reading {}", file.display()))?,
        ),
        None => None,
    };
    let part_crcs: Vec<u64> = part_crcs
        .into_iter()
        .collect::<Option<_>>()
        .context("a part has no CRC64NVME")?;
    let whole_crc = reel_s3::checksum::full_object_crc64nvme(
        part_crcs
            .iter()
            .enumerate()
            .map(|(index, crc)| (*crc, expected_size(index as u32 + 1))),
    );
    let whole_crc_text = crc64nvme_text(whole_crc);
    let parts: Vec<Value> = etags
        .iter()
        .zip(&part_crcs)
        .enumerate()
        .map(|(idx, (etag, crc))| {
            json!({"part_number": idx + 1, "etag": etag, "crc64nvme": crc64nvme_text(*crc)})
        })
        .collect();
    let request = client
        .post(format!("{server}/v1/uploads/{}/complete", upload.id))
        .header("Authorization", &auth)
        .json(&json!({
            "parts": parts,
            "crc64nvme": whole_crc_text,
            "checksum_type": "FULL_OBJECT",
            "sha256": sha256,
        }));
    let completed = api(request).await?;
    let _ = tokio::fs::remove_file(&hint_file).await;
    if !args.json {
        let sha256_note = sha256
            .as_ref()
            .map(|sha256| format!(", sha256 {sha256}"))
            .unwrap_or_default();
        eprintln!(
            "uploaded {} ({} parts, crc64nvme {whole_crc_text}{sha256_note}) as video {}",
            file.display(),
            n_parts,
            completed["video"]["id"].as_str().unwrap_or("?")
        );
    }
    Ok(json!({
        "upload_id": upload.id,
        "crc64nvme": whole_crc_text,
        "sha256": sha256,
        "resent_bytes": resent,
        "video": completed["video"],
    }))
}

/// A part storage took, with the CRC64NVME it checked.
struct SentPart {
    part_number: u32,
    etag: String,
    crc64nvme: u64,
}

fn crc64nvme_text(value: u64) -> String {
    reel_s3::checksum::Checksum::crc64nvme(value).to_base64()
}

/// The CRC64NVME of a part's buffer, computed off the async threads; the
/// buffer comes back.
async fn part_crc(data: Vec<u8>) -> anyhow::Result<(u64, Vec<u8>)> {
    tokio::task::spawn_blocking(move || (reel_s3::checksum::crc64nvme(&data), data))
        .await
        .context("checksum thread")
}

/// The S3 error message of a refused request's XML body, if it has one.
fn storage_message(body: &str) -> Option<&str> {
    let start = body.find("<Message>")? + "<Message>".len();
    let end = start + body[start..].find("</Message>")?;
    Some(&body[start..end])
}

/// What every part upload of one file shares.
struct PartContext {
    client: reqwest::Client,
    server: String,
    auth: String,
    upload_id: String,
    file: PathBuf,
    part_size: u64,
    size: u64,
    bar: ProgressBar,
    pacer: Option<Pacer>,
}

/// Keeps the average send rate of one file at or under `rate` bytes/s.
struct Pacer {
    rate: u64,
    started: std::time::Instant,
    granted: std::sync::Mutex<u64>,
}

impl Pacer {
    /// Reserves `bytes` and waits until sending them keeps the average rate.
    async fn wait_for(&self, bytes: u64) {
        let total = {
            let mut granted = self
                .granted
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            *granted += bytes;
            *granted
        };
        let due = Duration::from_secs_f64(total as f64 / self.rate as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
}

impl PartContext {
    async fn part_urls(&self, numbers: &[u32]) -> anyhow::Result<Vec<PartUrl>> {
        let request = self
            .client
            .post(format!(
                "{}/v1/uploads/{}/parts",
                self.server, self.upload_id
            ))
            .header("Authorization", &self.auth)
            .json(&json!({"part_numbers": numbers}));
        let body = api(request).await?;
        serde_json::from_value(body["urls"].clone()).context("reading presigned part URLs")
    }

    async fn read_part(&self, part_number: u32) -> anyhow::Result<Vec<u8>> {
        let start = u64::from(part_number - 1) * self.part_size;
        let length = self.part_size.min(self.size - start);
        let mut file = tokio::fs::File::open(&self.file).await?;
        file.seek(std::io::SeekFrom::Start(start)).await?;
        let mut data = vec![0u8; usize::try_from(length)?];
        file.read_exact(&mut data).await?;
        Ok(data)
    }

    /// Sends one part, retrying with backoff; a refused (expired) URL is
    /// asked for again.
    async fn send_part(&self, part: PartUrl) -> anyhow::Result<SentPart> {
        let (crc64nvme, data) = part_crc(self.read_part(part.part_number).await?).await?;
        let crc_text = crc64nvme_text(crc64nvme);
        let data = bytes::Bytes::from(data);
        if let Some(pacer) = &self.pacer {
            pacer.wait_for(data.len() as u64).await;
        }
        let mut url = part.url;
        let mut delay = Duration::from_millis(200);
        let mut last_error = String::new();
        for attempt in 1..=PART_ATTEMPTS {
            let result = self
                .client
                .put(&url)
                .header(reqwest::header::CONTENT_LENGTH, data.len())
                .header("x-amz-checksum-crc64nvme", &crc_text)
                .body(data.clone())
                .send()
                .await;
            match result {
                Ok(response) if response.status().is_success() => {
                    let etag = response
                        .headers()
                        .get(reqwest::header::ETAG)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    self.bar.inc(data.len() as u64);
                    return Ok(SentPart {
                        part_number: part.part_number,
                        etag,
                        crc64nvme,
                    });
                }
                Ok(response) if response.status() == reqwest::StatusCode::FORBIDDEN => {
                    last_error = format!("storage refused part {} (403)", part.part_number);
                    if let Ok(mut fresh) = self.part_urls(&[part.part_number]).await {
                        if let Some(fresh) = fresh.pop() {
                            url = fresh.url;
                        }
                    }
                }
                Ok(response) => {
                    // A part refused for its checksum (BadDigest: changed
                    // on the way) is sent again like any failed attempt.
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    let detail = storage_message(&body)
                        .map(|message| format!(": {message}"))
                        .unwrap_or_default();
                    last_error = format!(
                        "storage answered {status} for part {}{detail}",
                        part.part_number
                    );
                    tracing::warn!(part = part.part_number, %status, "storage refused a part");
                }
                Err(error) => {
                    last_error = format!("sending part {}: {error}", part.part_number);
                }
            }
            if attempt < PART_ATTEMPTS {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
        anyhow::bail!("{last_error}; run the same command again to resume")
    }
}
