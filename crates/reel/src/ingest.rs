//! `reel ingest FILE`: send a video file to a reel server and, with `--wait`,
//! follow its processing until it is ready.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tokio_util::io::ReaderStream;

/// What `reel ingest` was asked to do.
#[derive(clap::Args)]
pub struct IngestArgs {
    /// The video file.
    pub file: PathBuf,
    #[command(flatten)]
    pub server: crate::client::ServerArgs,
    /// The video's title (default: the file name).
    #[arg(long)]
    pub title: Option<String>,
    /// Follow processing until the video is ready or failed.
    #[arg(long)]
    pub wait: bool,
    /// Print the video's id, state and manifest URLs as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How often `--wait` asks the server for the video's state.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Sends the file and optionally waits; the video's final state decides the
/// exit status (a failed video is an error that says which step failed).
pub async fn ingest(args: IngestArgs, target: crate::client::Server) -> anyhow::Result<()> {
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("opening {}", args.file.display()))?;
    let size = file
        .metadata()
        .await
        .with_context(|| format!("reading the size of {}", args.file.display()))?
        .len();
    let title = args.title.clone().unwrap_or_else(|| {
        args.file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "Untitled".to_string())
    });
    let server = target.url.clone();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(size);
        bar.set_style(
            ProgressStyle::with_template(
                "uploading {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        );
        bar
    };
    let counted = {
        let bar = bar.clone();
        ReaderStream::with_capacity(file, 256 * 1024).inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                bar.inc(bytes.len() as u64);
            }
        })
    };
    let response = client
        .post(format!("{server}/v1/videos"))
        .query(&[("title", title.as_str())])
        .bearer_auth(&target.api_key)
        .header(reqwest::header::CONTENT_LENGTH, size)
        .body(reqwest::Body::wrap_stream(counted))
        .send()
        .await
        .with_context(|| format!("sending the file to {server}; is `reel serve` running there?"))?;
    bar.finish_and_clear();
    let mut video = read_json(response).await?;
    let id = video["id"].as_str().unwrap_or_default().to_string();
    if !args.json {
        eprintln!("uploaded {} as video {id}", args.file.display());
    }
    if args.wait {
        video = wait_for(&client, &server, &id, args.json).await?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary(&video))?);
    } else {
        print_human(&video);
    }
    if video["state"] == "failed" {
        anyhow::bail!(
            "processing failed at step {}: {}",
            video["error"]["step"].as_str().unwrap_or("?"),
            video["error"]["message"].as_str().unwrap_or("no message")
        );
    }
    Ok(())
}

async fn read_json(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("reading the server's answer ({status})"))?;
    if !status.is_success() {
        anyhow::bail!(
            "the server refused ({status}): {}",
            body["error"]["message"].as_str().unwrap_or("no message")
        );
    }
    Ok(body)
}

pub(crate) async fn wait_for(
    client: &reqwest::Client,
    server: &str,
    id: &str,
    json: bool,
) -> anyhow::Result<Value> {
    let bar = if json {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(1000);
        bar.set_style(
            ProgressStyle::with_template("processing {bar:30} {percent:>3}% {msg} [{elapsed}]")
                .expect("valid template"),
        );
        bar
    };
    loop {
        let response = client
            .get(format!("{server}/v1/videos/{id}"))
            .send()
            .await
            .with_context(|| format!("asking {server} for the video's state"))?;
        let video = read_json(response).await?;
        let percent = video["percent"].as_f64().unwrap_or(0.0);
        bar.set_position((percent * 10.0) as u64);
        let state = video["state"].as_str().unwrap_or("unknown").to_string();
        bar.set_message(state.clone());
        if matches!(state.as_str(), "ready" | "failed" | "cancelled") {
            bar.finish_and_clear();
            return Ok(video);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

pub(crate) fn summary(video: &Value) -> Value {
    serde_json::json!({
        "id": video["id"],
        "state": video["state"],
        "percent": video["percent"],
        "hls": video["urls"]["hls"],
        "dash": video["urls"]["dash"],
        "duration_seconds": video["duration_seconds"],
        "renditions": video["renditions"],
        "error": video["error"],
    })
}

pub(crate) fn print_human(video: &Value) {
    println!("video     {}", video["id"].as_str().unwrap_or("?"));
    println!("state     {}", video["state"].as_str().unwrap_or("?"));
    if let Some(hls) = video["urls"]["hls"].as_str() {
        println!("hls       {hls}");
    }
    if let Some(dash) = video["urls"]["dash"].as_str() {
        println!("dash      {dash}");
    }
    if let Some(renditions) = video["renditions"].as_array() {
        for rendition in renditions {
            println!(
                "rendition {:>6} {}x{} {} kbit/s",
                rendition["name"].as_str().unwrap_or("?"),
                rendition["width"],
                rendition["height"],
                rendition["average_bitrate"].as_u64().unwrap_or(0) / 1000
            );
        }
    }
    if video["state"] == "failed" {
        println!(
            "error     step {}: {}",
            video["error"]["step"].as_str().unwrap_or("?"),
            video["error"]["message"].as_str().unwrap_or("?")
        );
    }
}
