//! Evaluates ABR algorithms on folders of traces, for tuning `reel` on the training folders.
//!
//! ```text
//! cargo run --release -p reel-abr --example tune -- [OPTIONS] FOLDER...
//! ```
//!
//! `FOLDER` is relative to `DIR/traces` (default data directory: `../shared/abr-data` beside the
//! checkout), for example `hsdpa/train fcc/train`. Options:
//!
//! * `--data DIR`: the abr-data directory.
//! * `--algos a,b,…`: algorithms to report (`bb`, `rb`, `bola`, `rmpc`, `reel`, `optimum`;
//!   default `reel`). `pertrace` prints per-trace scores of optimum, rmpc and reel (the optimum is
//!   cached in the temp directory); `show:IDX` prints reel's session on trace IDX of the first
//!   folder.
//! * `--set key=value`: overrides one [`ReelParams`] field of `reel`.
//! * `--grid key=v1,v2,…` (repeatable): evaluates `reel` over the product of the listed values
//!   and prints one line per combination.
//! * `--windows LEN,STRIDE`: cuts every trace into LEN-second windows every STRIDE seconds
//!   (reel was tuned with `--windows 320,160` on the train folders).
//! * `--ref rmpc1,opt1,rmpc2,opt2,…`: with `--grid`, sums the fractions of the RobustMPC →
//!   optimum gap closed per folder instead of the raw means.
//!
//! The tuning command behind reel's constants:
//!
//! ```text
//! tune --windows 320,160 --ref 18.48,38.69,18.00,27.36 --grid … hsdpa/train fcc/train
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reel_abr::eval::{evaluate, evaluate_optimum, Evaluation};
use reel_abr::load::{parse_chunk_sizes, parse_trace};
use reel_abr::player::Algorithm;
use reel_abr::qoe::QoeMetric;
use reel_abr::reel::{Reel, ReelParams};
use reel_abr::sim::{Setup, SimConfig};
use reel_abr::trace::Trace;
use reel_abr::video::{Bitrate, Video};

const LADDER_KBPS: [u64; 6] = [300, 750, 1200, 1850, 2850, 4300];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn setup(data: &Path) -> Setup {
    let ladder = LADDER_KBPS.iter().map(|&k| Bitrate::from_kbps(k)).collect();
    let sizes = (0..LADDER_KBPS.len())
        .map(|level| {
            let path = data.join(format!("video/envivio_sizes_{level}.txt"));
            parse_chunk_sizes(&read(&path)).expect("valid sizes")
        })
        .collect();
    let video = Video::new(ladder, sizes, Duration::from_secs(4)).expect("valid video");
    Setup::new(video, SimConfig::pensieve(), QoeMetric::Linear).expect("valid setup")
}

fn load_folder(dir: &Path) -> Vec<Trace> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.expect("entry").path())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| parse_trace(&read(path)).expect("valid trace"))
        .collect()
}

/// Cuts `trace` into windows of `len` seconds every `stride` seconds (windows shorter than `len`
/// are dropped, but a trace shorter than `len` is kept whole), each rebased to start at 0.
fn windows(trace: &Trace, len: f64, stride: f64) -> Vec<Trace> {
    let times = trace.times();
    let mbps = trace.mbps();
    let total = times[times.len() - 1] - times[0];
    if total < len {
        return vec![trace.clone()];
    }
    let mut out = Vec::new();
    let mut start = times[0];
    while start + len <= times[times.len() - 1] + 1e-9 {
        let first = times
            .iter()
            .position(|&t| t >= start)
            .expect("start inside trace");
        let t0 = times[first];
        let mut wt = Vec::new();
        let mut wm = Vec::new();
        for idx in first..times.len() {
            if times[idx] - t0 > len {
                break;
            }
            wt.push(times[idx] - t0);
            wm.push(mbps[idx]);
        }
        if wt.len() >= 2 {
            out.push(Trace::new(wt, wm).expect("valid window"));
        }
        start += stride;
    }
    out
}

fn set_param(params: &mut ReelParams, key: &str, value: &str) {
    let f = || value.parse::<f64>().expect("numeric value");
    match key {
        "horizon" => params.horizon = f() as usize,
        "estimate_window" => params.estimate_window = f() as usize,
        "ratio_window" => params.ratio_window = f() as usize,
        "ratio_decay" => params.ratio_decay = f(),
        "n_quantiles" => params.n_quantiles = f() as usize,
        "prior_low" => params.prior_low = f(),
        "prior_weight" => params.prior_weight = f(),
        "rebuffer_penalty" => params.rebuffer_penalty = f(),
        "terminal_per_sec" => params.terminal_per_sec = f(),
        "terminal_cap_secs" => params.terminal_cap_secs = f(),
        "buffer_step_secs" => params.buffer_step_secs = f(),
        "rtt_secs" => params.rtt_secs = f(),
        "min_ratio" => params.min_ratio = f(),
        "max_ratio" => params.max_ratio = f(),
        "switch_penalty" => params.switch_penalty = f(),
        "persistence" => params.persistence = f(),
        "initial_persistence" => params.initial_persistence = f(),
        "fast_window" => params.fast_window = f() as usize,
        other => panic!("unknown parameter {other}"),
    }
}

fn algorithm(name: &str, params: ReelParams) -> Box<dyn Algorithm + Send> {
    match name {
        "reel" => Box::new(Reel::with_params(params)),
        other => {
            reel_abr::catalog::by_name(other).unwrap_or_else(|| panic!("unknown algorithm {other}"))
        }
    }
}

/// Evaluates on two threads (halves of the trace list) and merges the per-trace scores.
fn run(setup: &Setup, traces: &[Trace], name: &str, params: ReelParams) -> Evaluation {
    let mid = traces.len() / 2;
    let (a, b) = traces.split_at(mid);
    let (ea, eb) = std::thread::scope(|scope| {
        let job = |chunk: &[Trace]| {
            if name == "optimum" {
                evaluate_optimum(setup, chunk)
            } else {
                evaluate(setup, chunk, algorithm(name, params).as_mut())
            }
        };
        let ha = scope.spawn(move || job(a));
        let eb = job(b);
        (ha.join().expect("thread"), eb)
    });
    let mut per_trace = ea.per_trace;
    per_trace.extend(eb.per_trace);
    let n = per_trace.len() as f64;
    Evaluation {
        mean_qoe: per_trace.iter().map(|s| s.qoe).sum::<f64>() / n,
        qoe_ci95: 0.0,
        mean_bitrate_kbps: per_trace.iter().map(|s| s.mean_bitrate_kbps).sum::<f64>() / n,
        mean_rebuffer_secs: per_trace
            .iter()
            .map(|s| s.rebuffer.as_secs_f64())
            .sum::<f64>()
            / n,
        mean_switches: per_trace.iter().map(|s| s.smoothness).sum::<f64>() / n,
        per_trace,
    }
}

fn main() {
    let mut data = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/abr-data"
    ));
    let mut algos = vec!["reel".to_string()];
    let mut params = ReelParams::default();
    let mut grid: Vec<(String, Vec<String>)> = Vec::new();
    let mut folders = Vec::new();
    let mut window_spec: Option<(f64, f64)> = None;
    // Per folder (RobustMPC mean, optimum mean): grid lines then report the fraction of the gap.
    let mut refs: Vec<f64> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--windows" => {
                let spec = args.next().expect("--windows LEN,STRIDE");
                let (len, stride) = spec.split_once(',').expect("LEN,STRIDE");
                window_spec = Some((len.parse().expect("len"), stride.parse().expect("stride")));
            }
            "--ref" => {
                refs = args
                    .next()
                    .expect("--ref LO,HI,...")
                    .split(',')
                    .map(|v| v.parse().expect("number"))
                    .collect()
            }
            "--data" => data = PathBuf::from(args.next().expect("--data DIR")),
            "--algos" => {
                algos = args
                    .next()
                    .expect("--algos LIST")
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            "--set" => {
                let kv = args.next().expect("--set key=value");
                let (key, value) = kv.split_once('=').expect("key=value");
                set_param(&mut params, key, value);
            }
            "--grid" => {
                let kv = args.next().expect("--grid key=v1,v2");
                let (key, values) = kv.split_once('=').expect("key=values");
                grid.push((
                    key.to_string(),
                    values.split(',').map(str::to_string).collect(),
                ));
            }
            folder => folders.push(folder.to_string()),
        }
    }
    let setup = setup(&data);
    let sets: Vec<(String, Vec<Trace>)> = folders
        .iter()
        .map(|folder| {
            let traces = load_folder(&data.join("traces").join(folder));
            let traces = match window_spec {
                Some((len, stride)) => traces
                    .iter()
                    .flat_map(|trace| windows(trace, len, stride))
                    .collect(),
                None => traces,
            };
            (folder.clone(), traces)
        })
        .collect();
    for (folder, traces) in &sets {
        eprintln!("{folder}: {} traces", traces.len());
    }
    if !grid.is_empty() {
        let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
        for (key, values) in &grid {
            combos = combos
                .into_iter()
                .flat_map(|combo| {
                    values.iter().map(move |value| {
                        let mut next = combo.clone();
                        next.push((key.clone(), value.clone()));
                        next
                    })
                })
                .collect();
        }
        for combo in combos {
            let mut p = params;
            for (key, value) in &combo {
                set_param(&mut p, key, value);
            }
            let label: Vec<String> = combo.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let mut line = label.join(" ");
            let mut total = 0.0;
            for (set_idx, (_, traces)) in sets.iter().enumerate() {
                let e = run(&setup, traces, "reel", p);
                total += match refs.get(2 * set_idx..2 * set_idx + 2) {
                    Some(&[lo, hi]) => (e.mean_qoe - lo) / (hi - lo),
                    _ => e.mean_qoe,
                };
                line += &format!(
                    " | {:.2} ({:.0}k {:.2}s {:.1})",
                    e.mean_qoe, e.mean_bitrate_kbps, e.mean_rebuffer_secs, e.mean_switches
                );
            }
            println!("{line} | sum {total:.2}");
        }
        return;
    }
    if let Some(idx) = algos.iter().find_map(|a| a.strip_prefix("show:")) {
        let idx: usize = idx.parse().expect("trace index");
        let trace = &sets[0].1[idx];
        let session = reel_abr::sim::simulate(&setup, trace, &mut Reel::with_params(params));
        for r in &session.records {
            println!(
                "chunk {:2} level {} delay {:8.0}ms rebuf {:8.0}ms buffer {:6.0}ms tput {:7.0}kbps",
                r.chunk_idx,
                r.level_idx,
                r.delay_ms,
                r.rebuffer_ms,
                r.buffer_ms,
                r.throughput_kbps()
            );
        }
        return;
    }
    if algos.iter().any(|a| a == "pertrace") {
        for (folder, traces) in &sets {
            let cache = std::env::temp_dir().join(format!(
                "reel-abr-opt-{}-{}.txt",
                folder.replace('/', "_"),
                traces.len()
            ));
            let opt: Vec<f64> = match std::fs::read_to_string(&cache) {
                Ok(text) => text.lines().map(|l| l.parse().expect("number")).collect(),
                Err(_) => {
                    let e = run(&setup, traces, "optimum", params);
                    let v: Vec<f64> = e.per_trace.iter().map(|s| s.qoe).collect();
                    let text: Vec<String> = v.iter().map(|q| q.to_string()).collect();
                    std::fs::write(&cache, text.join("\n")).expect("write cache");
                    v
                }
            };
            let rmpc = run(&setup, traces, "rmpc", params);
            let reel = run(&setup, traces, "reel", params);
            let rows = opt.iter().zip(&rmpc.per_trace).zip(&reel.per_trace);
            for (idx, ((opt, rmpc), reel)) in rows.enumerate() {
                println!(
                    "{folder} {idx:3} opt {opt:7.2} rmpc {:7.2} reel {:7.2}  reel-rebuf {:5.2} reel-smooth {:5.2} reel-kbps {:5.0}",
                    rmpc.qoe,
                    reel.qoe,
                    reel.rebuffer.as_secs_f64(),
                    reel.smoothness,
                    reel.mean_bitrate_kbps,
                );
            }
        }
        return;
    }
    for (folder, traces) in &sets {
        for name in &algos {
            let start = Instant::now();
            let e = run(&setup, traces, name, params);
            println!(
                "{folder:12} {name:8} qoe {:7.2}  bitrate {:6.0}  rebuf {:5.2}s  smooth {:5.2}  ({:.1}s)",
                e.mean_qoe,
                e.mean_bitrate_kbps,
                e.mean_rebuffer_secs,
                e.mean_switches,
                start.elapsed().as_secs_f64()
            );
        }
    }
}
