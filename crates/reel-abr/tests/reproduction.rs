//! Reproduction of the reference benchmark in /work/shared/abr-data: baseline means (and
//! per-trace scores) of the README tables, reel beating RobustMPC, and the offline optimum
//! bounding every algorithm. These tests read the data files; the library itself does no IO.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reel_abr::eval::evaluate;
use reel_abr::load::{parse_chunk_sizes, parse_trace};
use reel_abr::mpc::{ChunkIndexing, RobustMpc};
use reel_abr::optimum::optimal;
use reel_abr::player::Algorithm;
use reel_abr::qoe::QoeMetric;
use reel_abr::reel::Reel;
use reel_abr::sim::{simulate, Setup, SimConfig};
use reel_abr::trace::Trace;
use reel_abr::video::{Bitrate, Video};

/// The shared data beside the checkout (`../shared/abr-data`), as CI lays it out.
const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/abr-data");
const LADDER_KBPS: [u64; 6] = [300, 750, 1200, 1850, 2850, 4300];

/// README tables: (folder, policy, mean QoE_lin, 95 % CI half-width).
const REFERENCE_MEANS: [(&str, &str, f64, f64); 10] = [
    ("hsdpa/test", "rb", 35.02, 4.14),
    ("hsdpa/test", "bb", 30.04, 5.03),
    ("hsdpa/test", "bola", 39.32, 3.75),
    ("hsdpa/test", "rmpc", 42.27, 4.86),
    ("hsdpa/test", "rmpc-p", 39.59, 5.28),
    ("fcc/test", "rb", 40.73, 5.98),
    ("fcc/test", "bb", 36.21, 6.31),
    ("fcc/test", "bola", 40.23, 5.44),
    ("fcc/test", "rmpc", 48.40, 6.12),
    ("fcc/test", "rmpc-p", 46.96, 6.09),
];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

fn pensieve_setup() -> Setup {
    let ladder = LADDER_KBPS
        .iter()
        .map(|&kbps| Bitrate::from_kbps(kbps))
        .collect();
    let sizes = (0..LADDER_KBPS.len())
        .map(|level_idx| {
            let path = PathBuf::from(format!("{DATA_DIR}/video/envivio_sizes_{level_idx}.txt"));
            parse_chunk_sizes(&read(&path)).expect("valid chunk-size file")
        })
        .collect();
    let video = Video::new(ladder, sizes, Duration::from_secs(4)).expect("valid video");
    Setup::new(video, SimConfig::pensieve(), QoeMetric::Linear).expect("valid setup")
}

/// Traces of a folder, sorted by file name.
fn load_folder(folder: &str) -> Vec<(String, Trace)> {
    let dir = PathBuf::from(format!("{DATA_DIR}/traces/{folder}"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("trace folder exists")
        .map(|entry| {
            entry
                .expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let trace = parse_trace(&read(&dir.join(&name))).expect("valid trace");
            (name, trace)
        })
        .collect()
}

/// Per-trace QoE_lin from baseline_scores_test.csv, keyed by (folder, trace, policy).
fn reference_scores() -> HashMap<(String, String, String), f64> {
    let csv = read(&PathBuf::from(format!(
        "{DATA_DIR}/baseline_scores_test.csv"
    )));
    csv.lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let qoe = fields[3].parse::<f64>().expect("numeric qoe");
            (
                (
                    fields[0].to_string(),
                    fields[1].to_string(),
                    fields[2].to_string(),
                ),
                qoe,
            )
        })
        .collect()
}

fn algorithm(name: &str) -> Box<dyn Algorithm> {
    match name {
        "rmpc-p" => Box::new(RobustMpc::with_indexing(ChunkIndexing::PensieveSlip)),
        other => {
            reel_abr::catalog::by_name(other).unwrap_or_else(|| panic!("unknown algorithm {other}"))
        }
    }
}

#[test]
fn baselines_match_reference_means_and_per_trace_scores() {
    let setup = pensieve_setup();
    let reference = reference_scores();
    for folder in ["hsdpa/test", "fcc/test"] {
        let named_traces = load_folder(folder);
        let traces: Vec<Trace> = named_traces
            .iter()
            .map(|(_, trace)| trace.clone())
            .collect();
        for &(_, policy, table_mean, table_ci) in
            REFERENCE_MEANS.iter().filter(|row| row.0 == folder)
        {
            let mut algo = algorithm(policy);
            assert_eq!(algo.name(), policy);
            let evaluation = evaluate(&setup, &traces, algo.as_mut());
            assert!(
                (evaluation.mean_qoe - table_mean).abs() <= table_ci,
                "{folder} {policy}: mean {} outside {table_mean} ± {table_ci}",
                evaluation.mean_qoe
            );
            // The port is exact: every per-trace score matches the reference to 1e-6.
            for ((name, _), score) in named_traces.iter().zip(&evaluation.per_trace) {
                let key = (folder.to_string(), name.clone(), policy.to_string());
                let expected = reference
                    .get(&key)
                    .unwrap_or_else(|| panic!("no reference for {key:?}"));
                assert!(
                    (score.qoe - expected).abs() < 1e-6,
                    "{key:?}: {} vs {expected}",
                    score.qoe
                );
            }
        }
    }
}

#[test]
fn reel_beats_robust_mpc_on_both_test_folders() {
    let setup = pensieve_setup();
    for folder in ["hsdpa/test", "fcc/test"] {
        let traces: Vec<Trace> = load_folder(folder)
            .into_iter()
            .map(|(_, trace)| trace)
            .collect();
        let rmpc = evaluate(&setup, &traces, &mut RobustMpc::new());
        let reel = evaluate(&setup, &traces, &mut Reel::new());
        assert!(
            reel.mean_qoe > rmpc.mean_qoe + 2.0,
            "{folder}: reel {} vs rmpc {}",
            reel.mean_qoe,
            rmpc.mean_qoe
        );
    }
}

#[test]
fn optimum_bounds_every_algorithm_on_every_test_trace() {
    let setup = pensieve_setup();
    let names = ["rb", "bb", "bola", "rmpc", "rmpc-p", "throughput", "reel"];
    let mut checked = 0;
    for folder in ["hsdpa/test", "fcc/test"] {
        for (trace_name, trace) in load_folder(folder) {
            let optimum = optimal(&setup, &trace).score(&setup).qoe;
            for name in names {
                let session = simulate(&setup, &trace, algorithm(name).as_mut());
                let qoe = session.score(&setup).qoe;
                // The DP works on a grid, so allow rounding in the 9th digit.
                assert!(
                    optimum >= qoe - 1e-9,
                    "{folder}/{trace_name}: optimum {optimum} < {name} {qoe}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, (142 + 100) * names.len());
}
