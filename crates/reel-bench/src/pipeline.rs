//! `reel-bench pipeline`: reel's whole video pipeline against one ffmpeg
//! command that makes the same ladder, on the same machine, in one run.
//!
//! 1. Generates a 1080p30 source with audio (ffmpeg lavfi), not timed.
//! 2. reel: starts `reel serve` (default workers) on a fresh data dir,
//!    uploads the source, polls until the video is ready. Wall time runs from
//!    the first byte of the upload to `ready`; time to first playable until
//!    the state is first `playable`; CPU seconds are the server's and its
//!    ffmpeg children's user+system time (from `getrusage(RUSAGE_CHILDREN)`
//!    after the server exits).
//! 3. ffmpeg: one command with the same renditions, frame rate, GOP and x264
//!    settings that reel's plan used, writing HLS with fMP4 segments; timed
//!    the same way.
//! 4. The DAG's critical path: the longest chain of measured task durations
//!    through the job's dependency edges (the wall time with one worker per
//!    chunk, as on a cluster).
//! 5. The packager alone: reel's 1080p output cut back into one-segment
//!    chunks and assembled again in memory, MB/s of segments.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde_json::Value;

/// Settings of one pipeline benchmark run.
pub struct PipelineBench {
    /// The `reel` binary.
    pub reel: PathBuf,
    /// Source duration in seconds.
    pub seconds: u32,
}

pub(crate) fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass and has no other effect.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let result = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(result, 0, "getrusage");
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

pub(crate) fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {what}"))?;
    if !output.status.success() {
        anyhow::bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .rev()
                .take(10)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Ok(())
}

/// Makes the source, like a phone's recording: 1080p30 at 15 Mbit/s with a
/// keyframe every 2 s (`REEL_BENCH_SOURCE_GOP` frames to change it), a test
/// pattern with light temporal noise (so the encoders have real work) and a
/// tone.
pub(crate) fn make_source(dir: &Path, seconds: u32) -> anyhow::Result<PathBuf> {
    let path = dir.join("source.mp4");
    let gop = std::env::var("REEL_BENCH_SOURCE_GOP").unwrap_or_else(|_| "60".to_string());
    run(
        Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1920x1080:rate=30",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
                "-t",
                &seconds.to_string(),
                "-vf",
                "noise=alls=6:allf=t",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-b:v",
                "15M",
                "-maxrate",
                "20M",
                "-bufsize",
                "30M",
                "-g",
                &gop,
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-b:a",
                "192k",
                "-shortest",
            ])
            .arg(&path),
        "generating the source",
    )?;
    Ok(path)
}

/// What one reel run measured.
pub struct ReelRun {
    wall: Duration,
    first_playable: Option<Duration>,
    cpu_seconds: f64,
    critical_path: Duration,
    job: Value,
    probe: Value,
    objects: PathBuf,
    video_id: String,
}

fn run_reel(
    bench: &PipelineBench,
    dir: &Path,
    source: &Path,
    envs: &[(&str, &str)],
) -> anyhow::Result<ReelRun> {
    let data = dir.join(format!("reel-data-{}", envs.len()));
    let cpu_before = children_cpu_seconds();
    let mut server = Command::new(&bench.reel)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("REEL_LOG", "warn")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting reel serve")?;
    let stdout = server.stdout.take().context("server stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut key = None;
    let mut url = None;
    for line in lines.by_ref() {
        let line = line?;
        if line.contains("admin API key") {
            key = line.rsplit(' ').next().map(str::to_string);
        }
        if let Some(rest) = line.split("listening on ").nth(1) {
            url = Some(rest.trim().to_string());
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let key = key.context("no admin key printed")?;
    let url = url.context("server did not start")?;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let body = std::fs::read(source)?;
    let started = Instant::now();
    let created: Value = client
        .post(format!("{url}/v1/videos?title=bench"))
        .bearer_auth(&key)
        .body(body)
        .send()?
        .error_for_status()?
        .json()?;
    let id = created["id"].as_str().context("video id")?.to_string();
    let job_id = created["job_id"].as_str().context("job id")?.to_string();
    let mut first_playable = None;
    let wall = loop {
        let view: Value = client.get(format!("{url}/v1/videos/{id}")).send()?.json()?;
        match view["state"].as_str().unwrap_or("") {
            "playable" if first_playable.is_none() => first_playable = Some(started.elapsed()),
            "ready" => {
                if first_playable.is_none() {
                    first_playable = Some(started.elapsed());
                }
                break started.elapsed();
            }
            "failed" | "cancelled" => anyhow::bail!("reel failed: {view:#}"),
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let job: Value = client
        .get(format!("{url}/v1/jobs/{job_id}"))
        .send()?
        .json()?;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    server.wait()?;
    let cpu_seconds = children_cpu_seconds() - cpu_before;
    let probe = job["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|task| task["kind"] == "media-probe"))
        .map(|task| task["output"].clone())
        .context("no probe output")?;
    Ok(ReelRun {
        wall,
        first_playable,
        cpu_seconds,
        critical_path: critical_path(&job)?,
        job,
        probe,
        objects: data.join("objects"),
        video_id: id,
    })
}

/// The longest chain of task durations through the job's DAG. Tasks created
/// by a fan-out depend on the task that created them (the probe).
pub fn critical_path(job: &Value) -> anyhow::Result<Duration> {
    let tasks = job["tasks"].as_array().context("tasks")?;
    let mut duration = HashMap::new();
    let mut deps: HashMap<String, Vec<String>> = HashMap::new();
    for task in tasks {
        let key = task["key"].as_str().context("key")?.to_string();
        let started = task["started_at"].as_i64().context("started_at")?;
        let finished = task["finished_at"].as_i64().context("finished_at")?;
        duration.insert(key.clone(), (finished - started).max(0));
        let mut list: Vec<String> = task["depends_on"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|d| d.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if key != "media-probe" {
            list.push("media-probe".to_string());
        }
        deps.insert(key, list);
    }
    fn longest(
        key: &str,
        duration: &HashMap<String, i64>,
        deps: &HashMap<String, Vec<String>>,
        memo: &mut HashMap<String, i64>,
    ) -> i64 {
        if let Some(value) = memo.get(key) {
            return *value;
        }
        let before = deps
            .get(key)
            .map(|list| {
                list.iter()
                    .map(|dep| longest(dep, duration, deps, memo))
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        let total = before + duration.get(key).copied().unwrap_or(0);
        memo.insert(key.to_string(), total);
        total
    }
    let mut memo = HashMap::new();
    let micros = duration
        .keys()
        .map(|key| longest(key, &duration, &deps, &mut memo))
        .max()
        .unwrap_or(0);
    Ok(Duration::from_micros(micros as u64))
}

/// What the one-shot ffmpeg run measured.
pub struct FfmpegRun {
    wall: Duration,
    cpu_seconds: f64,
}

fn run_ffmpeg_ladder(
    dir: &Path,
    source: &Path,
    probe: &Value,
    preset: &str,
) -> anyhow::Result<FfmpegRun> {
    let out = dir.join("ffmpeg-hls");
    std::fs::create_dir_all(&out)?;
    let args = one_shot_args(source, probe, preset, &out)?;
    let cpu_before = children_cpu_seconds();
    let started = Instant::now();
    run(Command::new("ffmpeg").args(&args), "one-shot ffmpeg")?;
    let wall = started.elapsed();
    Ok(FfmpegRun {
        wall,
        cpu_seconds: children_cpu_seconds() - cpu_before,
    })
}

/// One ffmpeg command: one decode, a split into every rendition of reel's
/// plan, the same x264 settings per rendition, audio once, HLS fMP4.
pub fn one_shot_args(
    source: &Path,
    probe: &Value,
    preset: &str,
    out: &Path,
) -> anyhow::Result<Vec<String>> {
    // reel's rate control: CRF capped by each rung's maxrate and bufsize.
    let crf = match reel_media::encode::EncodeSettings::standard().rate_control {
        reel_media::encode::RateControl::Crf { h264, .. } => h264,
        reel_media::encode::RateControl::Bitrate => {
            anyhow::bail!("the bench assumes CRF rate control")
        }
    };
    let video = &probe["plan"]["video"];
    let renditions = video["renditions"].as_array().context("renditions")?;
    let rate = video["frame_rate"].as_str().context("frame_rate")?;
    let gop = video["gop_frames"].as_u64().context("gop_frames")?;
    let segment_frames = video["segment_frames"].as_u64().context("segment_frames")?;
    let rate_value: reel_core::FrameRate = rate.parse()?;
    let segment_seconds = rate_value.frame_time_seconds(segment_frames);
    let mut filter = format!(
        "[0:v:0]fps={rate},format=yuv420p,split={}",
        renditions.len()
    );
    for idx in 0..renditions.len() {
        filter.push_str(&format!("[s{idx}]"));
    }
    for (idx, rendition) in renditions.iter().enumerate() {
        filter.push_str(&format!(
            ";[s{idx}]scale={}:{},setsar=1[v{idx}]",
            rendition["width"], rendition["height"]
        ));
    }
    let mut args: Vec<String> = vec![
        "-hide_banner".into(),
        "-v".into(),
        "error".into(),
        "-y".into(),
        "-nostdin".into(),
        "-i".into(),
        source.display().to_string(),
        "-filter_complex".into(),
        filter,
    ];
    let mut stream_map = Vec::new();
    for (idx, rendition) in renditions.iter().enumerate() {
        args.extend([
            "-map".to_string(),
            format!("[v{idx}]"),
            format!("-c:v:{idx}"),
            "libx264".into(),
            format!("-preset:v:{idx}"),
            preset.into(),
            format!("-profile:v:{idx}"),
            rendition["profile"].as_str().unwrap_or("high").into(),
            format!("-level:v:{idx}"),
            rendition["level"].as_str().unwrap_or("4.1").into(),
            format!("-crf:v:{idx}"),
            crf.to_string(),
            format!("-maxrate:v:{idx}"),
            format!("{}k", rendition["maxrate_kbps"]),
            format!("-bufsize:v:{idx}"),
            format!("{}k", rendition["bufsize_kbits"]),
        ]);
        stream_map.push(format!("v:{idx},agroup:audio"));
    }
    args.extend([
        "-g".to_string(),
        gop.to_string(),
        "-keyint_min".into(),
        gop.to_string(),
        "-sc_threshold".into(),
        "0".into(),
        "-bf".into(),
        "2".into(),
        "-force_key_frames".into(),
        format!("expr:eq(mod(n,{gop}),0)"),
    ]);
    if !probe["plan"]["audio"].is_null() {
        args.extend([
            "-map".to_string(),
            "0:a:0".into(),
            "-c:a".into(),
            "aac".into(),
            "-b:a".into(),
            format!(
                "{}k",
                probe["plan"]["audio"]["bitrate_kbps"]
                    .as_u64()
                    .unwrap_or(128)
            ),
            "-ac".into(),
            "2".into(),
            "-ar".into(),
            "48000".into(),
        ]);
        stream_map.push("a:0,agroup:audio".into());
    }
    args.extend([
        "-f".to_string(),
        "hls".into(),
        "-hls_time".into(),
        format!("{segment_seconds:.3}"),
        "-hls_playlist_type".into(),
        "vod".into(),
        "-hls_segment_type".into(),
        "fmp4".into(),
        "-master_pl_name".into(),
        "master.m3u8".into(),
        "-var_stream_map".into(),
        stream_map.join(" "),
        "-hls_segment_filename".into(),
        out.join("%v/seg-%05d.m4s").display().to_string(),
        out.join("%v/index.m3u8").display().to_string(),
    ]);
    Ok(args)
}

/// MB/s of reel's packager on the top rendition's segments, each made back
/// into a one-segment chunk (init + moof + mdat) as the encoder writes
/// them, parsed, checked and assembled in memory, repeated for at least 2 s.
/// Two cases: fragments already numbered as the title's segments (what
/// reel's encoder writes, `-fragment_index`; no byte is copied) and every
/// fragment numbered 0 (each segment's moof is rewritten, one copy of the
/// segment).
fn packager_throughput(run: &ReelRun) -> anyhow::Result<(f64, f64, u64)> {
    let summary = run.job["published"]
        .as_array()
        .and_then(|list| list.last())
        .context("no publication")?;
    let top = summary["renditions"]
        .as_array()
        .and_then(|list| list.last())
        .context("no rendition")?;
    let name = top["name"].as_str().context("name")?;
    let dir = run.objects.join("videos").join(&run.video_id).join(name);
    let init = std::fs::read(dir.join("init.mp4"))?;
    let mut numbered = Vec::new();
    let mut unnumbered = Vec::new();
    for number in 1.. {
        let path = dir.join(format!("seg-{number:05}.m4s"));
        let Ok(segment) = std::fs::read(&path) else {
            break;
        };
        let mut chunk = init.clone();
        chunk.extend_from_slice(&segment);
        numbered.push(Bytes::from(chunk.clone()));
        // moof header (8 bytes), then mfhd: header (8), version+flags (4), sequence (4).
        let at = init.len();
        anyhow::ensure!(
            chunk.get(at + 4..at + 8) == Some(b"moof")
                && chunk.get(at + 12..at + 16) == Some(b"mfhd"),
            "segment {number} does not start with moof/mfhd"
        );
        chunk[at + 20..at + 24].copy_from_slice(&[0, 0, 0, 0]);
        unnumbered.push(Bytes::from(chunk));
    }
    let bytes_per_round: u64 = numbered.iter().map(|c| c.len() as u64).sum();
    let measure = |chunks: &[Bytes]| -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut rounds = 0u64;
        while started.elapsed() < Duration::from_secs(2) || rounds < 3 {
            let parsed: Vec<_> = chunks
                .iter()
                .map(|chunk| reel_cmaf::parse_fragmented(chunk.clone()))
                .collect::<Result<_, _>>()?;
            let track = reel_cmaf::assemble(parsed)?;
            std::hint::black_box(&track);
            rounds += 1;
        }
        Ok(bytes_per_round as f64 * rounds as f64 / started.elapsed().as_secs_f64() / 1e6)
    };
    Ok((measure(&numbered)?, measure(&unnumbered)?, bytes_per_round))
}

/// Runs the whole comparison and prints a Markdown report.
pub fn run_bench(bench: PipelineBench) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    eprintln!("generating a {} s 1080p30 source", bench.seconds);
    let source = make_source(dir.path(), bench.seconds)?;
    let source_size = std::fs::metadata(&source)?.len();
    eprintln!("running reel serve (defaults)");
    let reel = run_reel(&bench, dir.path(), &source, &[])?;
    let preset = std::env::var("REEL_ENCODE_PRESET").unwrap_or_else(|_| "veryfast".to_string());
    eprintln!("running the one-shot ffmpeg ladder");
    let ffmpeg = run_ffmpeg_ladder(dir.path(), &source, &reel.probe, &preset)?;
    eprintln!("running reel serve (one pass per chunk)");
    let single = run_reel(
        &bench,
        dir.path(),
        &source,
        &[("REEL_ENCODE_LOWEST_RENDITION_FIRST", "false")],
    )?;
    let (numbered_mbps, renumber_mbps, packager_bytes) = packager_throughput(&reel)?;
    let renditions: Vec<String> = reel.probe["plan"]["video"]["renditions"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|r| r["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let chunks = reel.probe["plan"]["video"]["chunks"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    let encode_tasks = |run: &ReelRun| {
        run.job["tasks"]
            .as_array()
            .map(|tasks| tasks.iter().filter(|t| t["kind"] == "encode").count())
            .unwrap_or(0)
    };
    for (label, run) in [("default", &reel), ("one pass", &single)] {
        for task in run.job["tasks"].as_array().into_iter().flatten() {
            let seconds = (task["finished_at"].as_i64().unwrap_or(0)
                - task["started_at"].as_i64().unwrap_or(0)) as f64
                / 1e6;
            eprintln!(
                "{label:<9} task {:<24} {seconds:>7.2} s",
                task["key"].as_str().unwrap_or("?")
            );
        }
    }
    let one_shot = ffmpeg.wall.as_secs_f64();
    let gop = std::env::var("REEL_BENCH_SOURCE_GOP").unwrap_or_else(|_| "60".to_string());
    println!(
        "Source: {} s 1080p30 testsrc2 with light noise, 15 Mbit/s, keyframe every {gop} frames, AAC 48 kHz ({:.1} MB). \
         Ladder: {} + AAC audio, x264 preset {preset}, CRF capped by each rung's maxrate; {chunks} chunks of one 4 s segment. \
         reel (default): the lowest rendition first in its own pass ({} encode tasks); reel (one pass): every rendition from one decode per chunk ({} encode tasks).",
        bench.seconds,
        source_size as f64 / 1e6,
        renditions.join(", "),
        encode_tasks(&reel),
        encode_tasks(&single),
    );
    println!();
    println!("| measure | reel (default) | reel (one pass) | one ffmpeg | reel default / ffmpeg | reel one pass / ffmpeg |");
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, a: f64, b: f64, c: f64| {
        println!(
            "| {name} | {a:.1} | {b:.1} | {c:.1} | **{:.2}** | **{:.2}** |",
            a / c,
            b / c
        );
    };
    row(
        "wall time (s)",
        reel.wall.as_secs_f64(),
        single.wall.as_secs_f64(),
        one_shot,
    );
    row(
        "CPU time (s, user+sys)",
        reel.cpu_seconds,
        single.cpu_seconds,
        ffmpeg.cpu_seconds,
    );
    let first = |run: &ReelRun| run.first_playable.unwrap_or(run.wall).as_secs_f64();
    row(
        "time to first playable (s; ffmpeg: its wall time)",
        first(&reel),
        first(&single),
        one_shot,
    );
    row(
        "DAG critical path (s; ratio to ffmpeg's wall time)",
        reel.critical_path.as_secs_f64(),
        single.critical_path.as_secs_f64(),
        one_shot,
    );
    println!();
    println!(
        "Packager alone, on the top rendition ({:.1} MB in one-segment chunks, in memory, parse + checks + assembly): \
         {renumber_mbps:.0} MB/s when every segment's moof must be renumbered (one copy per segment); \
         {numbered_mbps:.0} MB/s as reel's encoder writes them (already numbered: zero-copy, headers only).",
        packager_bytes as f64 / 1e6
    );
    Ok(())
}
