//! `reel abr simulate` over the shared trace data.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::common::REEL;

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/abr-data")
}

#[test]
fn simulate_prints_json_per_algorithm_and_trace_set() {
    // Two traces copied into a folder keep the run short.
    let dir = tempfile::tempdir().expect("temp dir");
    let source = shared().join("traces/hsdpa/test");
    let mut names: Vec<_> = std::fs::read_dir(&source)
        .expect("shared abr-data traces")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    names.sort();
    for path in names.iter().take(2) {
        std::fs::copy(path, dir.path().join(path.file_name().expect("file name")))
            .expect("copy trace");
    }
    let output = Command::new(REEL)
        .args([
            "abr",
            "simulate",
            "--algorithm",
            "rmpc",
            "--json",
            "--traces",
        ])
        .arg(dir.path())
        .arg("--video")
        .arg(shared().join("video"))
        .output()
        .expect("run reel abr simulate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON list");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["algorithm"], "rmpc");
    assert_eq!(rows[0]["n_traces"], 2);
    let mean_qoe = rows[0]["mean_qoe"].as_f64().expect("mean_qoe");
    assert!(
        mean_qoe.is_finite() && mean_qoe > -500.0 && mean_qoe < 200.0,
        "{mean_qoe}"
    );
}

#[test]
fn simulate_rejects_unknown_algorithms_and_missing_folders() {
    let output = Command::new(REEL)
        .args([
            "abr",
            "simulate",
            "--algorithm",
            "magic",
            "--traces",
            "/nonexistent",
            "--video",
        ])
        .arg(shared().join("video"))
        .output()
        .expect("run reel");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown algorithm \"magic\""));
    let output = Command::new(REEL)
        .args(["abr", "simulate", "--traces", "/nonexistent", "--video"])
        .arg(shared().join("video"))
        .output()
        .expect("run reel");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("reading trace folder /nonexistent"));
}
