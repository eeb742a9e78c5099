//! Real third-party tus clients against the server: tuspy (interrupted and
//! resumed by a new client) and tus-js-client under Node (one PATCH, small
//! chunks, and parallel uploads through concatenation).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{clients_dir, random_bytes, settings, TestServer};

const INSTALL_HINT: &str = "run scripts/install-test-clients.sh (installs tuspy in tests/clients/.venv and tus-js-client in tests/clients/node_modules)";

/// Runs a client script; returns its stdout parsed as JSON.
async fn run_client(server: &TestServer, program: &Path, args: &[String]) -> serde_json::Value {
    assert!(
        program.exists() || program == Path::new("node"),
        "{} is missing: {INSTALL_HINT}",
        program.display()
    );
    let started = Instant::now();
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(program)
            .args(args)
            .current_dir(clients_dir())
            .env("REEL_API_KEY", &server.key)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("client finished within 120 s")
    .unwrap_or_else(|error| panic!("running {}: {error}; {INSTALL_HINT}", program.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} {args:?} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        program.display(),
        output.status
    );
    eprintln!("client {} took {:?}", args[0], started.elapsed());
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|error| panic!("client output {stdout:?}: {error}"))
}

fn write_file(server: &TestServer, name: &str, bytes: &[u8]) -> String {
    let path = server.dir.path().join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path.display().to_string()
}

async fn tuspy_upload(checksum: bool) {
    let server = TestServer::start(settings()).await;
    let bytes = random_bytes(20 << 20, 7);
    let file = write_file(&server, "tuspy.bin", &bytes);
    let stop_at = (7 << 20) + 123;
    let python = clients_dir().join(".venv/bin/python");
    let mut args = vec![
        clients_dir().join("tuspy-upload.py").display().to_string(),
        file,
        server.endpoint.clone(),
        "--stop-at".to_string(),
        stop_at.to_string(),
        "--chunk-size".to_string(),
        (5 << 20).to_string(),
    ];
    if checksum {
        args.push("--checksum".to_string());
    }
    let report = run_client(&server, &python, &args).await;
    assert_eq!(report["offset_after_stop"], stop_at);
    // The new client learned the offset from HEAD: nothing was lost.
    assert_eq!(report["offset_on_resume"], stop_at);
    assert_eq!(report["final_offset"], bytes.len());
    let url = report["url"].as_str().expect("url").to_string();
    assert!(url.starts_with(&server.endpoint), "{url}");
    server.assert_completed_as(&url, &bytes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuspy_resumes_with_a_new_client_after_interruption() {
    tuspy_upload(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuspy_resumes_with_sha1_checksums() {
    tuspy_upload(true).await;
}

async fn tus_js_upload(extra: &[&str]) {
    let server = TestServer::start(settings()).await;
    let bytes = random_bytes((20 << 20) + 4321, 11);
    let file = write_file(&server, "tus-js.bin", &bytes);
    let mut args = vec![
        clients_dir().join("tus-upload.mjs").display().to_string(),
        file,
        server.endpoint.clone(),
    ];
    args.extend(extra.iter().map(|arg| arg.to_string()));
    let report = run_client(&server, Path::new("node"), &args).await;
    let url = report["url"].as_str().expect("url").to_string();
    server.assert_completed_as(&url, &bytes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_client_uploads_in_one_patch() {
    tus_js_upload(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_client_uploads_in_small_chunks() {
    tus_js_upload(&["--chunk-size", &(3 << 20).to_string()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_client_parallel_uploads_are_concatenated() {
    tus_js_upload(&["--parallel", "3"]).await;
}
