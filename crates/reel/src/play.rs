//! `reel play URL`: the options; the headless player itself is the `reel-player` library.

use std::path::PathBuf;

use reel_player::{ManifestLimits, PlayOptions};

/// Play a reel video headlessly with an ABR algorithm and report start-up, stalls, switches and QoE.
#[derive(clap::Args)]
pub struct PlayArgs {
    /// The multivariant playlist or the MPD, e.g. http://server/v1/videos/ID/play.m3u8 (steered) or …/v/ID/master.m3u8, …/manifest.mpd.
    pub url: String,
    /// The ABR algorithm: bb, rb, throughput, bola, rmpc or reel.
    #[arg(long, default_value = "reel")]
    pub algorithm: String,
    /// Shape the download rate to this network trace (`seconds Mbit/s` per line), as the simulator does.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Run media and trace time this many times faster than the wall clock (tests use 4).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Play at most this many segments.
    #[arg(long)]
    pub max_chunks: Option<usize>,
    /// The level of the first segment (0 is the lowest).
    #[arg(long, default_value_t = 0)]
    pub first_level: usize,
    /// The video codec to play, by sample entry: avc1 (H.264), av01 (AV1), hvc1 (HEVC).
    /// One codec's ladder is played, as a browser plays what it decodes; the default is
    /// H.264 when the manifest has it.
    #[arg(long)]
    pub codec: Option<String>,
    /// Print the report (and the simulator's, with --trace) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Plays and prints the report (a line per segment on stderr unless --json).
pub async fn run(args: PlayArgs) -> anyhow::Result<()> {
    let json = args.json;
    let options = PlayOptions {
        url: args.url,
        algorithm: args.algorithm,
        trace: args.trace,
        speed: args.speed,
        max_chunks: args.max_chunks,
        first_level: args.first_level,
        codec: args.codec,
        limits: ManifestLimits::default(),
    };
    let report = reel_player::play(options, |line| {
        if !json {
            eprintln!("{line}");
        }
    })
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report.json)?);
    } else {
        println!("{}", report.summary);
    }
    Ok(())
}
