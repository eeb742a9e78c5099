//! `reel-bench edge [SECONDS [RATE [RUNS]]]`: `reel edge` against nginx
//! `proxy_cache`, side by side in front of the same nginx origin; `reel
//! edge` serving signed playback URLs (every request's token verified, the
//! objects marked private) against the same edge unsigned; and S3-FIFO
//! against LRU by trace replay.
//!
//! The origin (nginx, sendfile, 1,000 random 1 MiB objects sent with
//! `Cache-Control: public, max-age=31536000, immutable` and ETags) and the
//! load generator share core 1; the cache under test runs on core 0 (nginx
//! with one worker, `reel edge` with one tokio worker thread, since tokio
//! sizes its pool from the affinity mask). Both caches are larger than the
//! working set and pre-warmed, so the live part measures the hit path.
//!
//! The load is open loop: request `i` is due at `start + i / RATE`, whatever
//! happened to the earlier ones, and its latency runs from that due time to
//! the last body byte, so a stalled server is charged for the requests it
//! delayed (no coordinated omission). The due times are kept by a plain
//! thread (sub-millisecond sleeps); the requests run on a one-thread tokio
//! runtime. Every (alpha, run) pair replays the same seeded Zipf sequence
//! against both caches; the order of the two alternates between runs.
//!
//! Server CPU is utime + stime from `/proc/PID/stat` of the cache's
//! processes (nginx: master, worker, cache manager and loader); origin
//! requests are the lines of the origin's access log.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use reel_edge::policy::{replay, PolicyKind, ReplayStats};

mod cache_replay;
mod cpu;
mod daemons;
mod report;

use cache_replay::*;
use cpu::*;
use daemons::*;
use report::*;

/// Objects on the origin.
const N_OBJECTS: usize = 1_000;
/// Size of each origin object.
const OBJECT_BYTES: usize = 1 << 20;
/// Zipf exponents of both parts.
const ALPHAS: [f64; 2] = [0.8, 1.0];
/// Requests still running when a new one is due; past this the new one is
/// counted as an error instead of being sent (only a stalled server gets
/// there).
const MAX_IN_FLIGHT: usize = 2_048;
/// Per-request limit of the load generator.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests in the trace replay.
const N_REPLAY_REQUESTS: usize = 1_000_000;
/// Distinct objects in the trace replay.
const N_REPLAY_OBJECTS: usize = 100_000;
/// Replay capacities, in per mille of the trace's total object bytes.
const REPLAY_CAPACITIES_PER_MILLE: [u64; 3] = [10, 50, 100];
/// The CPU that runs the cache under test; the origin and the load
/// generator run on the other one.
const CACHE_CPU: usize = 0;
const LOAD_CPU: usize = 1;
/// Concurrent clients asking for one cold object in the herd part.
const HERD_CLIENTS: usize = 100;
/// The targets the herd runs on: nginx and unsigned `reel edge`.
const HERD_TARGETS: usize = 2;
/// Herd rounds per cache, each on an object neither cache has seen.
const HERD_ROUNDS: usize = 3;
/// The origin's send rate for `/slow/` (nginx `limit_rate`): a 1 MiB fill
/// takes about half a second, as from a distant origin.
const HERD_ORIGIN_RATE: &str = "2m";
/// Distinct viewers' tokens in the signed runs (each request carries one,
/// round robin: a token is verified once, then found in the edge's cache of
/// verified tokens, as with real viewers who fetch many segments each).
const N_TOKENS: usize = 200;
/// The video id of the signed paths.
const SIGNED_VIDEO: &str = "0b3a5e9c-1d2f-4a6b-8c7d-9e0f1a2b3c4d";

/// Nice value of everything the bench runs, when allowed (see
/// `raise_priority`).
const NICE: i32 = -15;

/// Settings of the edge benchmark.
pub struct EdgeBench {
    /// The `reel` binary.
    pub reel: PathBuf,
    /// Length of each measured run.
    pub seconds: u64,
    /// Offered load in requests per second.
    pub rate: u32,
    /// Measured runs per (cache, alpha).
    pub runs: usize,
}

/// Runs the comparison and prints a Markdown report.
pub fn run_bench(bench: EdgeBench) -> anyhow::Result<()> {
    anyhow::ensure!(
        bench.seconds > 0 && bench.rate > 0 && bench.runs > 0,
        "SECONDS, RATE and RUNS must be above 0"
    );
    let n_cpus = std::thread::available_parallelism().map_or(1, usize::from);
    anyhow::ensure!(
        n_cpus > LOAD_CPU,
        "the edge benchmark pins the cache to CPU {CACHE_CPU} and the load to CPU {LOAD_CPU}; this machine has {n_cpus} CPU(s)"
    );
    let nginx_version = command_output(Command::new("nginx").arg("-v"))
        .context("nginx not found; apt-get install nginx-light (or nginx)")?;
    command_output(Command::new("taskset").arg("-V"))
        .context("taskset not found; apt-get install util-linux")?;
    let load_before = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let nice = raise_priority();

    let dir = tempfile::tempdir_in(
        std::env::var("REEL_BENCH_DIR").unwrap_or_else(|_| "/tmp".to_string()),
    )?;
    let cache_root = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        dir.path().to_path_buf()
    };
    let cache_dir = tempfile::tempdir_in(&cache_root)?;
    let origin_root = dir.path().join("origin");
    eprintln!("writing {N_OBJECTS} objects of {OBJECT_BYTES} bytes");
    write_objects(&origin_root.join("seg"))?;

    let origin_port = free_port()?;
    let nginx_port = free_port()?;
    let reel_port = free_port()?;
    let signed_port = free_port()?;
    let signing = reel_token::SigningKeySet::generate();
    let jwks = dir.path().join("jwks.json");
    fs::write(&jwks, signing.public().to_json())?;
    let now = reel_token::unix_now();
    let tokens: Vec<String> = (0..N_TOKENS)
        .map(|viewer| {
            // A distinct token per viewer: the iat differs.
            signing.mint(SIGNED_VIDEO, 24 * 3600, now - viewer as u64, &[])
        })
        .collect::<Result<_, _>>()?;
    let origin_log = dir.path().join("origin-access.log");
    let origin_conf = dir.path().join("origin.conf");
    fs::write(
        &origin_conf,
        origin_config(
            dir.path(),
            &origin_root,
            &origin_log,
            origin_port,
            free_port()?,
        ),
    )?;
    let nginx_conf = dir.path().join("nginx-edge.conf");
    fs::write(
        &nginx_conf,
        nginx_edge_config(dir.path(), cache_dir.path(), origin_port, nginx_port),
    )?;

    let origin = start_nginx(&origin_conf, dir.path(), "origin", LOAD_CPU, origin_port)?;
    let nginx_edge = start_nginx(&nginx_conf, dir.path(), "nginx-edge", CACHE_CPU, nginx_port)?;
    let reel_edge = start_reel_edge(&bench.reel, dir.path(), origin_port, reel_port, None)?;
    let signed_edge = start_reel_edge(
        &bench.reel,
        dir.path(),
        origin_port,
        signed_port,
        Some(&jwks),
    )?;
    pin_current_thread(LOAD_CPU)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let targets = [
        Target {
            name: "nginx proxy_cache",
            base: format!("http://127.0.0.1:{nginx_port}"),
            pids: Pids::NginxMaster(nginx_edge.child.id()),
            tokens: Vec::new(),
        },
        Target {
            name: "reel edge",
            base: format!("http://127.0.0.1:{reel_port}"),
            pids: Pids::Process(reel_edge.child.id()),
            tokens: Vec::new(),
        },
        Target {
            name: "reel edge, signed",
            base: format!("http://127.0.0.1:{signed_port}"),
            pids: Pids::Process(signed_edge.child.id()),
            tokens,
        },
    ];
    for target in &targets {
        eprintln!("pre-warming {}", target.name);
        runtime.block_on(prewarm(&client, target))?;
        if !target.tokens.is_empty() {
            runtime.block_on(check_refusals(&client, target))?;
        }
    }

    let n_requests = bench.seconds as usize * bench.rate as usize;
    let mut results: Vec<Measurement> = Vec::new();
    for run_idx in 0..bench.runs {
        for (alpha_idx, alpha) in ALPHAS.iter().copied().enumerate() {
            let seed = 0x5eed_0000 + (run_idx as u64) * 16 + alpha_idx as u64;
            let sequence = zipf_sequence(alpha, N_OBJECTS, n_requests, seed);
            // Each target goes first, second and third in turn.
            let mut order: Vec<usize> = (0..targets.len()).collect();
            order.rotate_left((run_idx + alpha_idx) % targets.len());
            for target_idx in order {
                let target = &targets[target_idx];
                let load = LoadPlan {
                    rate: bench.rate,
                    sequence: &sequence,
                };
                let measured = measure(&runtime, &client, target, &origin_log, load)?;
                eprintln!(
                    "run {} alpha {alpha} {}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:.3} CPU-s/GB, {} origin requests, {} errors, load generator {:.0} % CPU",
                    run_idx + 1,
                    target.name,
                    measured.achieved_rps,
                    measured.p50_ms,
                    measured.p99_ms,
                    measured.max_ms,
                    measured.cpu_seconds_per_gb(),
                    measured.origin_requests,
                    measured.errors,
                    measured.load_cpu_fraction * 100.0,
                );
                results.push(Measurement {
                    target_idx,
                    alpha_idx,
                    figures: measured,
                });
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    }
    let mut herds = Vec::new();
    for round in 0..HERD_ROUNDS {
        // The herd compares the two caches unsigned.
        for (target_idx, target) in targets.iter().enumerate().take(HERD_TARGETS) {
            let path = format!("/slow/s{}.bin", round * HERD_TARGETS + target_idx);
            let herd = runtime.block_on(herd(&client, &target.base, &path, &origin_log))?;
            eprintln!(
                "herd {} {}: {} origin fetches, first byte p50 {:.0} ms max {:.0} ms, complete p50 {:.0} ms max {:.0} ms, {} errors",
                round + 1,
                target.name,
                herd.origin_fetches,
                herd.first_byte_p50_ms,
                herd.first_byte_max_ms,
                herd.complete_p50_ms,
                herd.complete_max_ms,
                herd.errors
            );
            herds.push((target_idx, herd));
        }
    }
    let load_after = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    drop(signed_edge);
    drop(reel_edge);
    drop(nginx_edge);
    drop(origin);

    eprintln!("replaying {N_REPLAY_REQUESTS}-request traces");
    let replays = replay_all();

    let report = Report {
        bench: &bench,
        nice,
        nginx_version: nginx_version.trim().trim_start_matches("nginx version: "),
        load_before: load_before.trim(),
        load_after: load_after.trim(),
        targets: &targets,
        results: &results,
        herds: &herds,
        replays: &replays,
    };
    print_report(&report)
}

/// One cache under test.
struct Target {
    name: &'static str,
    base: String,
    pids: Pids,
    /// Viewers' tokens: empty for unsigned paths (`/seg/s{i}.bin`);
    /// otherwise request `n` asks for `/v/{video}/t/{tokens[n % len]}/s{i}.bin`.
    tokens: Vec<String>,
}

impl Target {
    /// The URL of object `object_idx` for request `request_idx`.
    fn url(&self, object_idx: usize, request_idx: usize) -> String {
        if self.tokens.is_empty() {
            format!("{}/seg/s{object_idx}.bin", self.base)
        } else {
            let token = &self.tokens[request_idx % self.tokens.len()];
            format!(
                "{}{}",
                self.base,
                reel_token::signed_path(SIGNED_VIDEO, token, &format!("s{object_idx}.bin"))
            )
        }
    }
}

/// A signed target refuses what it must: no token, a tampered one, one for
/// another video (so the signed runs measure checks that really happen).
async fn check_refusals(client: &reqwest::Client, target: &Target) -> anyhow::Result<()> {
    let token = &target.tokens[0];
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap_or('A');
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let cases = [
        format!("{}/v/{SIGNED_VIDEO}/s0.bin", target.base),
        format!(
            "{}{}",
            target.base,
            reel_token::signed_path(SIGNED_VIDEO, &tampered, "s0.bin")
        ),
        format!(
            "{}{}",
            target.base,
            reel_token::signed_path("1b3a5e9c-1d2f-4a6b-8c7d-9e0f1a2b3c4d", token, "s0.bin")
        ),
    ];
    for url in cases {
        let status = client.get(&url).send().await?.status();
        anyhow::ensure!(
            status == reqwest::StatusCode::FORBIDDEN,
            "GET {url} through the signed edge: {status}, expected 403"
        );
    }
    Ok(())
}

/// Whose CPU time counts for a cache.
enum Pids {
    /// One process, all its threads.
    Process(u32),
    /// An nginx master and every process it started.
    NginxMaster(u32),
}

/// What one measured run saw.
struct Figures {
    achieved_rps: f64,
    megabytes_per_second: f64,
    bytes: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    cpu_seconds: f64,
    origin_requests: u64,
    errors: u64,
    load_cpu_fraction: f64,
}

impl Figures {
    fn cpu_seconds_per_gb(&self) -> f64 {
        self.cpu_seconds / (self.bytes as f64 / 1e9).max(f64::MIN_POSITIVE)
    }
}

struct Measurement {
    target_idx: usize,
    alpha_idx: usize,
    figures: Figures,
}

/// The offered load of one run.
struct LoadPlan<'a> {
    rate: u32,
    /// Object index of each request, in order.
    sequence: &'a [u32],
}

/// What one request of the load generator ended with.
struct Outcome {
    latency: Duration,
    bytes: u64,
    ok: bool,
}

/// A child process stopped (SIGTERM, then SIGKILL after 5 s) when dropped.
struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child. nginx's master stops its workers
        // on SIGTERM; SIGKILL would orphan them.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fetches every object twice; the second pass must be all hits.
async fn prewarm(client: &reqwest::Client, target: &Target) -> anyhow::Result<()> {
    let base = &target.base;
    for pass in 0..2 {
        let mut misses = 0;
        for object_idx in 0..N_OBJECTS {
            let url = target.url(object_idx, object_idx + pass);
            let response = client
                .get(&url)
                .send()
                .await
                .with_context(|| format!("GET {url}"))?;
            anyhow::ensure!(
                response.status().is_success(),
                "GET {url}: {}",
                response.status()
            );
            let cache_status = response
                .headers()
                .get("x-cache")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = response.bytes().await?;
            anyhow::ensure!(
                body.len() == OBJECT_BYTES,
                "GET {url}: {} bytes instead of {OBJECT_BYTES}",
                body.len()
            );
            if cache_status != "HIT" {
                misses += 1;
            }
        }
        if pass == 1 {
            anyhow::ensure!(
                misses == 0,
                "{misses} of {N_OBJECTS} objects missed at {base} after pre-warming; the cache does not hold the working set"
            );
        }
    }
    Ok(())
}

fn measure(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    target: &Target,
    origin_log: &Path,
    load: LoadPlan<'_>,
) -> anyhow::Result<Figures> {
    let origin_before = count_lines(origin_log)?;
    let cpu_before = cpu_ticks(&target.pids)?;
    let load_cpu_before = process_ticks(std::process::id())?;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let interval = Duration::from_secs_f64(1.0 / f64::from(load.rate));
    let start = Instant::now() + Duration::from_millis(5);
    let mut handles = Vec::with_capacity(load.sequence.len());
    let mut refused = 0u64;
    for (request_idx, object_idx) in load.sequence.iter().enumerate() {
        let due = start + interval.mul_f64(request_idx as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            refused += 1;
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let request = fetch(
            client.clone(),
            target.url(*object_idx as usize, request_idx),
            due,
            in_flight.clone(),
        );
        handles.push(runtime.spawn(request));
    }
    let mut outcomes = Vec::with_capacity(handles.len());
    for handle in handles {
        outcomes.push(runtime.block_on(handle)?);
    }
    let elapsed = start.elapsed();
    let cpu_after = cpu_ticks(&target.pids)?;
    let load_cpu_after = process_ticks(std::process::id())?;
    // The origin appends its log line after the response; let it land.
    std::thread::sleep(Duration::from_millis(200));
    let origin_after = count_lines(origin_log)?;

    let ticks_per_second = clock_ticks_per_second();
    let mut latencies: Vec<Duration> = outcomes
        .iter()
        .filter(|outcome| outcome.ok)
        .map(|outcome| outcome.latency)
        .collect();
    latencies.sort();
    let n_ok = latencies.len();
    let errors = refused + (outcomes.len() - n_ok) as u64;
    let percentile_ms = |fraction: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let idx = ((latencies.len() - 1) as f64 * fraction).round() as usize;
        latencies[idx].as_secs_f64() * 1e3
    };
    let bytes: u64 = outcomes
        .iter()
        .filter(|outcome| outcome.ok)
        .map(|outcome| outcome.bytes)
        .sum();
    Ok(Figures {
        achieved_rps: n_ok as f64 / elapsed.as_secs_f64(),
        megabytes_per_second: bytes as f64 / 1e6 / elapsed.as_secs_f64(),
        bytes,
        p50_ms: percentile_ms(0.5),
        p99_ms: percentile_ms(0.99),
        max_ms: percentile_ms(1.0),
        cpu_seconds: (cpu_after - cpu_before) as f64 / ticks_per_second,
        origin_requests: origin_after.saturating_sub(origin_before),
        errors,
        load_cpu_fraction: (load_cpu_after - load_cpu_before) as f64
            / ticks_per_second
            / elapsed.as_secs_f64(),
    })
}

async fn fetch(
    client: reqwest::Client,
    url: String,
    due: Instant,
    in_flight: Arc<AtomicUsize>,
) -> Outcome {
    let mut bytes = 0u64;
    let ok = async {
        let mut response = client.get(&url).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        while let Some(chunk) = response.chunk().await.ok()? {
            bytes += chunk.len() as u64;
        }
        Some(())
    }
    .await
    .is_some()
        && bytes == OBJECT_BYTES as u64;
    in_flight.fetch_sub(1, Ordering::Relaxed);
    Outcome {
        latency: due.elapsed(),
        bytes,
        ok,
    }
}

/// What a herd of clients asking for one cold object saw.
struct Herd {
    /// Origin requests for the object.
    origin_fetches: u64,
    /// Time from the start to each client's first body byte.
    first_byte_p50_ms: f64,
    first_byte_max_ms: f64,
    /// Time from the start to each client's last body byte.
    complete_p50_ms: f64,
    complete_max_ms: f64,
    /// Clients that got an error or wrong bytes.
    errors: u64,
}

/// [`HERD_CLIENTS`] concurrent requests for `path`, which no cache holds
/// yet, through a throttled origin location.
async fn herd(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    origin_log: &Path,
) -> anyhow::Result<Herd> {
    let url = format!("{base}{path}");
    let expected = fs::metadata(origin_log)?.len();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(HERD_CLIENTS);
    for _ in 0..HERD_CLIENTS {
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut first_byte = None;
            let mut bytes = 0usize;
            let mut response = client.get(&url).send().await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            while let Some(chunk) = response.chunk().await.ok()? {
                if first_byte.is_none() && !chunk.is_empty() {
                    first_byte = Some(start.elapsed());
                }
                bytes += chunk.len();
            }
            (bytes == OBJECT_BYTES).then(|| (first_byte.unwrap_or_default(), start.elapsed()))
        }));
    }
    let mut first_bytes = Vec::new();
    let mut completes = Vec::new();
    let mut errors = 0;
    for task in tasks {
        match task.await? {
            Some((first_byte, complete)) => {
                first_bytes.push(first_byte.as_secs_f64() * 1e3);
                completes.push(complete.as_secs_f64() * 1e3);
            }
            None => errors += 1,
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = fs::read(origin_log)?;
    let new_lines = log.get(expected as usize..).unwrap_or_default();
    let needle = path.as_bytes();
    let origin_fetches = new_lines
        .split(|byte| *byte == b'\n')
        .filter(|line| line.windows(needle.len()).any(|window| window == needle))
        .count() as u64;
    let max = |values: &[f64]| values.iter().copied().fold(f64::NAN, f64::max);
    Ok(Herd {
        origin_fetches,
        first_byte_p50_ms: median(first_bytes.clone()),
        first_byte_max_ms: max(&first_bytes),
        complete_p50_ms: median(completes.clone()),
        complete_max_ms: max(&completes),
        errors,
    })
}

/// SplitMix64 (Steele et al.): a small seeded generator, so every run
/// replays the same requests.
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Hit ratios of one trace at one capacity.
struct ReplayRow {
    alpha: f64,
    capacity_per_mille: u64,
    capacity_bytes: u64,
    s3_fifo: ReplayStats,
    lru: ReplayStats,
}

struct Report<'a> {
    bench: &'a EdgeBench,
    nice: i32,
    nginx_version: &'a str,
    load_before: &'a str,
    load_after: &'a str,
    targets: &'a [Target],
    results: &'a [Measurement],
    herds: &'a [(usize, Herd)],
    replays: &'a (u64, Vec<ReplayRow>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_sequence_favours_low_ranks_and_is_seeded() {
        let first = zipf_sequence(1.0, 1_000, 20_000, 7);
        let second = zipf_sequence(1.0, 1_000, 20_000, 7);
        assert_eq!(first, second);
        let rank0 = first.iter().filter(|idx| **idx == 0).count() as f64;
        // P(rank 0) = 1 / H(1000) ≈ 0.134 at alpha 1.
        assert!((rank0 / 20_000.0 - 0.134).abs() < 0.01, "{rank0}");
        assert!(first.iter().all(|idx| *idx < 1_000));
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn stat_fields_skip_command_names_with_spaces() {
        let fields = stat_fields(std::process::id()).expect("own stat");
        assert!(matches!(fields[0].as_str(), "R" | "S" | "D"));
        assert!(process_ticks(std::process::id()).is_ok());
    }
}
