//! `reel-bench upload [GIB]`: `reel upload` of a large file on loopback
//! against one `curl -T` of the same file to the same server, and what a
//! kill at 50 % costs.
//!
//! Both go to a fresh `reel serve` with no workers (nothing processes the
//! videos meanwhile). curl streams the file in one request into
//! `POST /v1/videos` (stored while hashed). `reel upload` sends 8 MiB parts,
//! 4 at a time, to presigned URLs of the embedded S3 endpoint, each with
//! the CRC64NVME of the buffer it sends (verified as the part lands), and
//! completes with the whole file's CRC64NVME, which the server combines
//! from the part CRCs (its default; `--sha256` is not used). Each time runs from the command's start to its
//! exit, so both include everything until the video exists.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

/// Settings of the upload benchmark.
pub struct UploadBench {
    /// The `reel` binary.
    pub reel: PathBuf,
    /// File size in GiB.
    pub gib: u64,
}

fn write_random_file(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut file = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(path)?);
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut block = vec![0u8; 1 << 20];
    let mut written = 0;
    while written < size {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = (size - written).min(block.len() as u64) as usize;
        file.write_all(&block[..n])?;
        written += n as u64;
    }
    file.flush()?;
    Ok(())
}

struct Server {
    child: std::process::Child,
    url: String,
    key: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(reel: &Path, data: &Path) -> anyhow::Result<Server> {
    use std::io::BufRead;
    let mut child = Command::new(reel)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "0",
            "--data-dir",
        ])
        .arg(data)
        .env("REEL_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting reel serve")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
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
    Ok(Server {
        child,
        url: url.context("server did not start")?,
        key: key.context("no admin key")?,
    })
}

fn upload_command(reel: &Path, server: &Server, file: &Path, state_dir: &Path) -> Command {
    let mut command = Command::new(reel);
    command
        .args([
            "upload",
            "--json",
            "--parallel",
            "4",
            "--server",
            &server.url,
        ])
        .arg(file)
        .arg("--state-dir")
        .arg(state_dir)
        .env("REEL_API_KEY", &server.key)
        .stdin(Stdio::null());
    command
}

/// Timed rounds of each client.
const ROUNDS: usize = 3;

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|value| format!("{value:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes dirty pages back (`sync`), so a run does not pay for the last one's.
fn flush_page_cache() {
    let _ = Command::new("sync").status();
}

/// `curl -T` of the file into a fresh server: seconds from start to exit.
fn time_curl(bench: &UploadBench, dir: &Path, file: &Path) -> anyhow::Result<f64> {
    let data = dir.join("curl-data");
    let server = start_server(&bench.reel, &data)?;
    let started = Instant::now();
    let output = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-X", "POST", "-T"])
        .arg(file)
        .args(["-H", &format!("Authorization: Bearer {}", server.key)])
        .arg(format!("{}/v1/videos?title=curl", server.url))
        .stdin(Stdio::null())
        .output()
        .context("running curl (apt-get install curl)")?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    Ok(seconds)
}

/// `reel upload` of the file into a fresh server: seconds from start to exit.
fn time_reel(bench: &UploadBench, dir: &Path, file: &Path, round: usize) -> anyhow::Result<f64> {
    let data = dir.join("reel-data");
    let server = start_server(&bench.reel, &data)?;
    let state_dir = dir.join(format!("state-{round}"));
    let started = Instant::now();
    let output = upload_command(&bench.reel, &server, file, &state_dir).output()?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        output.status.success(),
        "reel upload failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    Ok(seconds)
}

/// Runs the comparison and prints a Markdown report.
pub fn run_bench(bench: UploadBench) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(
        std::env::var("REEL_BENCH_DIR").unwrap_or_else(|_| "/tmp".to_string()),
    )?;
    let size = bench.gib << 30;
    let file = dir.path().join("big.bin");
    eprintln!("writing a {} GiB file", bench.gib);
    write_random_file(&file, size)?;

    // Three rounds, alternating which client goes first; each timed run
    // starts after `sync`, so neither inherits the other's dirty pages.
    let mut curl_times = Vec::new();
    let mut reel_times = Vec::new();
    for round in 0..ROUNDS {
        let curl_first = round % 2 == 0;
        for run_curl in [curl_first, !curl_first] {
            flush_page_cache();
            if run_curl {
                curl_times.push(time_curl(&bench, dir.path(), &file)?);
            } else {
                reel_times.push(time_reel(&bench, dir.path(), &file, round)?);
            }
        }
    }
    let ratios: Vec<f64> = curl_times
        .iter()
        .zip(&reel_times)
        .map(|(curl, reel)| curl / reel)
        .collect();
    let curl_seconds = median(&curl_times);
    let reel_seconds = median(&reel_times);
    flush_page_cache();

    // reel upload killed once half the parts are stored, then resumed.
    let server = start_server(&bench.reel, &dir.path().join("kill-data"))?;
    let state_dir = dir.path().join("state-kill");
    let client = reqwest::blocking::Client::new();
    let mut child = upload_command(&bench.reel, &server, &file, &state_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let part_size: u64 = 8 << 20;
    let n_parts = size.div_ceil(part_size) as usize;
    let deadline = Instant::now() + Duration::from_secs(600);
    let (upload_id, stored_at_kill) = loop {
        anyhow::ensure!(Instant::now() < deadline, "the upload never reached 50 %");
        std::thread::sleep(Duration::from_millis(20));
        let Some(hint) = std::fs::read_dir(&state_dir)
            .ok()
            .and_then(|mut entries| entries.next())
            .and_then(|entry| entry.ok())
            .and_then(|entry| std::fs::read_to_string(entry.path()).ok())
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        else {
            continue;
        };
        let id = hint["upload_id"].as_str().unwrap_or_default().to_string();
        let view: Value = client
            .get(format!("{}/v1/uploads/{id}", server.url))
            .bearer_auth(&server.key)
            .send()?
            .json()?;
        let stored = view["parts"].as_array().map(Vec::len).unwrap_or(0);
        if stored * 2 >= n_parts {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
            break (id, stored);
        }
    };
    let view: Value = client
        .get(format!("{}/v1/uploads/{upload_id}", server.url))
        .bearer_auth(&server.key)
        .send()?
        .json()?;
    let stored_after_kill = view["parts"].as_array().map(Vec::len).unwrap_or(0);
    let output = upload_command(&bench.reel, &server, &file, &state_dir).output()?;
    anyhow::ensure!(
        output.status.success(),
        "resumed reel upload failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout)?;
    let resumed = &report[0];
    anyhow::ensure!(
        resumed["upload_id"] == upload_id.as_str(),
        "the second run did not resume the same upload"
    );
    let sent_after = resumed["resent_bytes"].as_u64().unwrap_or(0);
    let missing = size - (stored_after_kill as u64 * part_size).min(size);
    drop(server);

    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    println!("File: {} GiB of random bytes. Server: `reel serve --workers 0`, SQLite, local store, loopback.", bench.gib);
    println!();
    println!("| client | time (s) | MiB/s | throughput ratio to curl |");
    println!("|---|---|---|---|");
    println!(
        "| `curl -T` into `POST /v1/videos` (one stream) | {curl_seconds:.2} ({}) | {:.0} | 1.00 |",
        list(&curl_times),
        mib(size) / curl_seconds
    );
    println!(
        "| `reel upload --parallel 4` (8 MiB presigned parts, CRC64NVME per part and full object end to end) | {reel_seconds:.2} ({}) | {:.0} | **{:.2}** (per round: {}) |",
        list(&reel_times),
        mib(size) / reel_seconds,
        median(&ratios),
        list(&ratios)
    );
    println!();
    println!(
        "Kill at 50 %: `reel upload` SIGKILLed when {stored_at_kill} of {n_parts} parts were stored ({stored_after_kill} once the parts in flight settled); \
         the resumed run sent {:.0} MiB, exactly the {:.0} MiB storage lacked, so nothing stored was sent twice; \
         the bytes lost at the kill are those of the at most 4 parts in flight (≤ 32 MiB, {:.1} % of the file).",
        mib(sent_after),
        mib(missing),
        100.0 * 32.0 / mib(size)
    );
    Ok(())
}
