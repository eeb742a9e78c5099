//! `reel abr simulate`: runs ABR algorithms over folders of network traces
//! with the Pensieve-compatible simulator of `reel-abr`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use reel_abr::eval::{evaluate, evaluate_optimum, Evaluation};
use reel_abr::load::{parse_chunk_sizes, parse_trace};
use reel_abr::qoe::QoeMetric;
use reel_abr::sim::{Setup, SimConfig};
use reel_abr::trace::Trace;
use reel_abr::video::{Bitrate, Video};
use serde_json::json;

/// The algorithms `--algorithm` accepts, in the order they are reported.
const ALGORITHMS: [&str; 7] = ["bb", "rb", "throughput", "bola", "rmpc", "reel", "optimum"];

/// Run ABR algorithms over folders of traces (Pensieve's simulation setup) and print mean QoE, bitrate, rebuffering and switches.
#[derive(clap::Args)]
pub struct AbrArgs {
    /// A folder of trace files (seconds and Mbit/s per line); repeat for several trace sets.
    #[arg(long, required = true)]
    pub traces: Vec<PathBuf>,
    /// A folder with one `*_sizes_<level>.txt` chunk-size file per ladder level, or the URL of a reel video's HLS playlist (its real segment sizes and ladder; --ladder is then ignored).
    #[arg(long)]
    pub video: String,
    /// The ladder in kbit/s, lowest first.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "300,750,1200,1850,2850,4300"
    )]
    pub ladder: Vec<u64>,
    /// One of bb, rb, throughput, bola, rmpc, reel, optimum (default: all).
    #[arg(long)]
    pub algorithm: Option<String>,
    /// QoE metric: lin, log or hd.
    #[arg(long, default_value = "lin")]
    pub metric: String,
    /// Print a JSON list with `algorithm` and `mean_qoe` per trace set.
    #[arg(long)]
    pub json: bool,
}

/// Loads the video (a folder, or a reel video's URL through `reel-player`) and runs the
/// simulation on a blocking thread.
pub async fn run(args: AbrArgs) -> anyhow::Result<()> {
    let video = if args.video.starts_with("http://") || args.video.starts_with("https://") {
        VideoSource::Loaded(
            reel_player::video_from_url(&args.video, &reel_player::ManifestLimits::default())
                .await?,
        )
    } else {
        VideoSource::Folder(PathBuf::from(&args.video))
    };
    tokio::task::spawn_blocking(move || simulate(args, video))
        .await
        .context("simulation thread")?
}

fn load_video(dir: &Path, ladder_kbps: &[u64]) -> anyhow::Result<Video> {
    let mut sizes = Vec::with_capacity(ladder_kbps.len());
    for level_idx in 0..ladder_kbps.len() {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("reading video folder {}", dir.display()))?;
        let suffix = format!("_sizes_{level_idx}.txt");
        let path = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.file_name().and_then(|name| name.to_str()).is_some_and(|name| name.ends_with(&suffix)))
            .with_context(|| format!("no file ending in {suffix} in {}; one chunk-size file per ladder level is needed", dir.display()))?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        sizes
            .push(parse_chunk_sizes(&text).with_context(|| format!("parsing {}", path.display()))?);
    }
    let ladder = ladder_kbps
        .iter()
        .map(|&kbps| Bitrate::from_kbps(kbps))
        .collect();
    Ok(Video::new(ladder, sizes, Duration::from_secs(4))?)
}

fn load_traces(dir: &Path) -> anyhow::Result<Vec<Trace>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading trace folder {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    anyhow::ensure!(
        !paths.is_empty(),
        "trace folder {} has no files",
        dir.display()
    );
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            parse_trace(&text).with_context(|| format!("parsing trace {}", path.display()))
        })
        .collect()
}

/// Where the chunk sizes come from.
enum VideoSource {
    /// A folder with one `*_sizes_<level>.txt` file per ladder level.
    Folder(PathBuf),
    /// A reel video's real segment sizes (read from its HLS playlists).
    Loaded(Video),
}

/// Runs the simulation and prints a table or JSON.
fn simulate(args: AbrArgs, video: VideoSource) -> anyhow::Result<()> {
    let metric = match args.metric.as_str() {
        "lin" => QoeMetric::Linear,
        "log" => QoeMetric::Log,
        "hd" => QoeMetric::Hd,
        other => anyhow::bail!("unknown metric {other:?}; use lin, log or hd"),
    };
    let names: Vec<&str> = match &args.algorithm {
        Some(name) if ALGORITHMS.contains(&name.as_str()) => vec![name.as_str()],
        Some(name) => anyhow::bail!(
            "unknown algorithm {name:?}; choose one of {}",
            ALGORITHMS.join(", ")
        ),
        None => ALGORITHMS.to_vec(),
    };
    let (video, config) = match video {
        VideoSource::Folder(dir) => (load_video(&dir, &args.ladder)?, SimConfig::pensieve()),
        VideoSource::Loaded(video) => {
            let config = SimConfig {
                n_chunks: video.n_chunks().min(SimConfig::pensieve().n_chunks),
                first_level_idx: 0,
                ..SimConfig::pensieve()
            };
            (video, config)
        }
    };
    let setup = Setup::new(video, config, metric)?;
    let mut rows = Vec::new();
    for folder in &args.traces {
        let traces = load_traces(folder)?;
        for name in &names {
            let evaluation: Evaluation = match reel_abr::catalog::by_name(name) {
                Some(mut policy) => evaluate(&setup, &traces, policy.as_mut()),
                None => evaluate_optimum(&setup, &traces),
            };
            rows.push((
                folder.display().to_string(),
                name.to_string(),
                traces.len(),
                evaluation,
            ));
        }
    }
    if args.json {
        let values: Vec<_> = rows
            .iter()
            .map(|(traces, name, n_traces, evaluation)| {
                json!({
                    "traces": traces, "n_traces": n_traces, "algorithm": name, "metric": args.metric,
                    "mean_qoe": evaluation.mean_qoe, "qoe_ci95": evaluation.qoe_ci95,
                    "mean_bitrate_kbps": evaluation.mean_bitrate_kbps,
                    "mean_rebuffer_seconds": evaluation.mean_rebuffer_secs,
                    "total_rebuffer_seconds": evaluation.mean_rebuffer_secs * *n_traces as f64,
                    "mean_switches": evaluation.mean_switches,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&values)?);
        return Ok(());
    }
    println!(
        "{:<40} {:<11} {:>14} {:>14} {:>16} {:>10}",
        "TRACES", "ALGORITHM", "MEAN QOE", "BITRATE kbps", "REBUFFER s total", "SWITCHES"
    );
    for (traces, name, n_traces, evaluation) in rows {
        println!(
            "{:<40} {:<11} {:>8.2} ±{:>5.2} {:>14.0} {:>16.1} {:>10.1}",
            traces,
            name,
            evaluation.mean_qoe,
            evaluation.qoe_ci95,
            evaluation.mean_bitrate_kbps,
            evaluation.mean_rebuffer_secs * n_traces as f64,
            evaluation.mean_switches
        );
    }
    Ok(())
}
