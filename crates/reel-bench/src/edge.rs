//! `reel-bench edge [SECONDS [RATE [RUNS]]]`: `reel edge` against nginx
//! `proxy_cache`, side by side in front of the same nginx origin, and
//! S3-FIFO against LRU by trace replay.
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
/// Herd rounds per cache, each on an object neither cache has seen.
const HERD_ROUNDS: usize = 3;
/// The origin's send rate for `/slow/` (nginx `limit_rate`): a 1 MiB fill
/// takes about half a second, as from a distant origin.
const HERD_ORIGIN_RATE: &str = "2m";
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
    let reel_edge = start_reel_edge(&bench.reel, dir.path(), origin_port, reel_port)?;
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
        },
        Target {
            name: "reel edge",
            base: format!("http://127.0.0.1:{reel_port}"),
            pids: Pids::Process(reel_edge.child.id()),
        },
    ];
    for target in &targets {
        eprintln!("pre-warming {}", target.name);
        runtime.block_on(prewarm(&client, &target.base))?;
    }

    let n_requests = bench.seconds as usize * bench.rate as usize;
    let mut results: Vec<Measurement> = Vec::new();
    for run_idx in 0..bench.runs {
        for (alpha_idx, alpha) in ALPHAS.iter().copied().enumerate() {
            let seed = 0x5eed_0000 + (run_idx as u64) * 16 + alpha_idx as u64;
            let sequence = zipf_sequence(alpha, N_OBJECTS, n_requests, seed);
            let mut order = [0, 1];
            if (run_idx + alpha_idx) % 2 == 1 {
                order.reverse();
            }
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
        for (target_idx, target) in targets.iter().enumerate() {
            let path = format!("/slow/s{}.bin", round * targets.len() + target_idx);
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

fn command_output(command: &mut Command) -> anyhow::Result<String> {
    let output = command.stdin(Stdio::null()).output()?;
    anyhow::ensure!(output.status.success(), "{:?} failed", command);
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// Writes the origin's objects `s0.bin` .. `s999.bin` of random bytes.
fn write_objects(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir)?;
    let mut random = SplitMix64::new(0x0b1e_c75e);
    let mut block = vec![0u8; OBJECT_BYTES];
    for object_idx in 0..N_OBJECTS {
        for word in block.chunks_exact_mut(8) {
            word.copy_from_slice(&random.next_u64().to_le_bytes());
        }
        let path = dir.join(format!("s{object_idx}.bin"));
        fs::write(&path, &block).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Directives every nginx config here shares: one worker, logs and temp
/// files in the bench directory, and root workers (the files are the
/// bench's own).
fn nginx_common(dir: &Path, name: &str) -> String {
    let dir = dir.display();
    format!(
        "worker_processes 1;\n\
         user root root;\n\
         pid {dir}/{name}.pid;\n\
         error_log {dir}/{name}-error.log warn;\n\
         events {{ worker_connections 4096; }}\n"
    )
}

fn origin_config(dir: &Path, root: &Path, access_log: &Path, port: u16, slow_port: u16) -> String {
    let common = nginx_common(dir, "origin");
    let temp = dir.display();
    let root = root.display();
    let access_log = access_log.display();
    format!(
        "{common}\
         http {{\n\
           access_log {access_log};\n\
           client_body_temp_path {temp}/origin-body; proxy_temp_path {temp}/origin-proxy;\n\
           default_type application/octet-stream;\n\
           sendfile on; tcp_nopush on; keepalive_requests 100000; etag on;\n\
           server {{ listen 127.0.0.1:{port}; root {root};\n\
             location /seg/ {{ add_header Cache-Control \"public, max-age=31536000, immutable\"; }}\n\
             location /slow/ {{ proxy_pass http://127.0.0.1:{slow_port}; proxy_buffering off; }} }}\n\
           server {{ listen 127.0.0.1:{slow_port} sndbuf=32k; access_log off; sendfile off;\
             location /slow/ {{ alias {root}/seg/; limit_rate {HERD_ORIGIN_RATE}; \
               add_header Cache-Control \"public, max-age=31536000, immutable\"; }} }}\n\
         }}\n"
    )
}

/// nginx `proxy_cache` as the edge: cache on tmpfs, larger than the working
/// set, coalescing on, no access log (reel logs nothing per request either).
fn nginx_edge_config(dir: &Path, cache_dir: &Path, origin_port: u16, port: u16) -> String {
    let common = nginx_common(dir, "nginx-edge");
    let temp = dir.display();
    let cache_dir = cache_dir.display();
    format!(
        "{common}\
         http {{\n\
           access_log off;\n\
           client_body_temp_path {temp}/edge-body; proxy_temp_path {temp}/edge-proxy;\n\
           sendfile on; tcp_nopush on; keepalive_requests 100000;\n\
           proxy_cache_path {cache_dir}/nginx levels=1:2 keys_zone=edge:16m max_size=4g inactive=7d use_temp_path=off;\n\
           upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 64; }}\n\
           server {{ listen 127.0.0.1:{port};\n\
             location / {{\n\
               proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection \"\";\n\
               proxy_cache edge; proxy_cache_key $uri$is_args$args;\n\
               proxy_cache_lock on; proxy_cache_lock_timeout 5s; proxy_cache_revalidate on;\n\
               add_header X-Cache $upstream_cache_status;\n\
             }} }}\n\
         }}\n"
    )
}

fn start_nginx(
    conf: &Path,
    dir: &Path,
    name: &str,
    cpu: usize,
    port: u16,
) -> anyhow::Result<Daemon> {
    let error_log = dir.join(format!("{name}-error.log"));
    let child = Command::new("taskset")
        .args(["-c", &cpu.to_string(), "nginx", "-e"])
        .arg(&error_log)
        .arg("-c")
        .arg(conf)
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting nginx ({name})"))?;
    let mut daemon = Daemon { child };
    wait_listening(&mut daemon, port, &error_log)
        .with_context(|| format!("nginx ({name}) did not start"))?;
    Ok(daemon)
}

fn start_reel_edge(reel: &Path, dir: &Path, origin_port: u16, port: u16) -> anyhow::Result<Daemon> {
    let stderr_path = dir.join("reel-edge.log");
    let child = Command::new("taskset")
        .args(["-c", &CACHE_CPU.to_string()])
        .arg(reel)
        .args([
            "edge",
            "--upstream",
            &format!("http://127.0.0.1:{origin_port}"),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--name",
            "bench",
            // Twice the working set: each tier counts its bytes with
            // headers and fills in flight.
            "--cache-memory",
            "2GiB",
            "--eviction",
            "s3-fifo",
        ])
        .env("REEL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr_path)?)
        .spawn()
        .with_context(|| format!("starting {} edge", reel.display()))?;
    let mut daemon = Daemon { child };
    wait_listening(&mut daemon, port, &stderr_path).context("reel edge did not start")?;
    Ok(daemon)
}

/// Waits until `port` accepts connections; on failure the error carries
/// the end of `log`.
fn wait_listening(daemon: &mut Daemon, port: u16, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        let exited = daemon.child.try_wait()?;
        if exited.is_some() || Instant::now() > deadline {
            let text = fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            anyhow::bail!(
                "not listening on port {port} ({}); {}:\n{}",
                match exited {
                    Some(status) => format!("exited with {status}"),
                    None => "timed out after 10 s".to_string(),
                },
                log.display(),
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asks for nice [`NICE`] (root only) before anything is spawned, so the
/// caches, the origin and the load generator all inherit it and other work
/// on a shared machine disturbs the latencies less; returns the nice value
/// in force.
fn raise_priority() -> i32 {
    // SAFETY: setpriority and getpriority only read their integer
    // arguments; `who` 0 is the calling thread, whose value threads and
    // processes created later inherit.
    unsafe {
        if libc::setpriority(libc::PRIO_PROCESS, 0, NICE) != 0 {
            eprintln!(
                "could not raise priority to nice {NICE} ({}); measuring at the default",
                std::io::Error::last_os_error()
            );
        }
        libc::getpriority(libc::PRIO_PROCESS, 0)
    }
}

fn pin_current_thread(cpu: usize) -> anyhow::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only read and write that set.
    let result = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    anyhow::ensure!(
        result == 0,
        "pinning the load generator to CPU {cpu}: {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// Fetches every object twice; the second pass must be all hits.
async fn prewarm(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for pass in 0..2 {
        let mut misses = 0;
        for object_idx in 0..N_OBJECTS {
            let url = format!("{base}/seg/s{object_idx}.bin");
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
    let urls: Vec<String> = (0..N_OBJECTS)
        .map(|object_idx| format!("{}/seg/s{object_idx}.bin", target.base))
        .collect();
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
            urls[*object_idx as usize].clone(),
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

fn count_lines(path: &Path) -> anyhow::Result<u64> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes.iter().filter(|byte| **byte == b'\n').count() as u64)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// utime + stime of every process of a cache, in clock ticks.
fn cpu_ticks(pids: &Pids) -> anyhow::Result<u64> {
    match pids {
        Pids::Process(pid) => process_ticks(*pid),
        Pids::NginxMaster(master) => {
            let mut total = process_ticks(*master)?;
            for child in children_of(*master)? {
                // A worker may exit between the listing and the read.
                total += process_ticks(child).unwrap_or(0);
            }
            Ok(total)
        }
    }
}

/// The fields of `/proc/PID/stat` after the command name.
fn stat_fields(pid: u32) -> anyhow::Result<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces.
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc stat")?;
    Ok(rest.split_whitespace().map(str::to_string).collect())
}

fn process_ticks(pid: u32) -> anyhow::Result<u64> {
    let fields = stat_fields(pid)?;
    // proc(5): utime and stime are fields 14 and 15; field 3 is the first
    // after the command name.
    let field = |number: usize| -> anyhow::Result<u64> {
        fields
            .get(number - 3)
            .context("short /proc stat")?
            .parse()
            .context("malformed /proc stat")
    };
    Ok(field(14)? + field(15)?)
}

fn children_of(parent: u32) -> anyhow::Result<Vec<u32>> {
    let mut children = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fields) = stat_fields(pid) else {
            continue;
        };
        if fields.get(1).and_then(|ppid| ppid.parse::<u32>().ok()) == Some(parent) {
            children.push(pid);
        }
    }
    Ok(children)
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

/// `n_requests` object indices in `0..n_objects`, index `k` drawn with
/// probability proportional to `1 / (k + 1)^alpha`.
fn zipf_sequence(alpha: f64, n_objects: usize, n_requests: usize, seed: u64) -> Vec<u32> {
    let mut cdf = Vec::with_capacity(n_objects);
    let mut sum = 0.0;
    for rank in 1..=n_objects {
        sum += 1.0 / (rank as f64).powf(alpha);
        cdf.push(sum);
    }
    let mut random = SplitMix64::new(seed);
    (0..n_requests)
        .map(|_| {
            let draw = random.next_f64() * sum;
            cdf.partition_point(|cumulative| *cumulative <= draw)
                .min(n_objects - 1) as u32
        })
        .collect()
}

/// Hit ratios of one trace at one capacity.
struct ReplayRow {
    alpha: f64,
    capacity_per_mille: u64,
    capacity_bytes: u64,
    s3_fifo: ReplayStats,
    lru: ReplayStats,
}

/// Sizes log-uniform in 16 KiB .. 8 MiB (audio parts to high-rate video
/// segments), independent of popularity.
fn replay_object_sizes() -> Vec<u64> {
    let mut random = SplitMix64::new(0x51_2e5);
    let (low, high) = ((16u64 << 10) as f64, (8u64 << 20) as f64);
    (0..N_REPLAY_OBJECTS)
        .map(|_| (low * (high / low).powf(random.next_f64())) as u64)
        .collect()
}

fn replay_all() -> (u64, Vec<ReplayRow>) {
    let sizes = replay_object_sizes();
    let total_bytes: u64 = sizes.iter().sum();
    let mut rows = Vec::new();
    for (alpha_idx, alpha) in ALPHAS.iter().copied().enumerate() {
        let trace = zipf_sequence(
            alpha,
            N_REPLAY_OBJECTS,
            N_REPLAY_REQUESTS,
            0x7ace_0000 + alpha_idx as u64,
        );
        for per_mille in REPLAY_CAPACITIES_PER_MILLE {
            let capacity_bytes = total_bytes * per_mille / 1000;
            let requests = || {
                trace
                    .iter()
                    .map(|object_idx| (u64::from(*object_idx), sizes[*object_idx as usize]))
            };
            rows.push(ReplayRow {
                alpha,
                capacity_per_mille: per_mille,
                capacity_bytes,
                s3_fifo: replay(PolicyKind::S3Fifo, capacity_bytes, requests()),
                lru: replay(PolicyKind::Lru, capacity_bytes, requests()),
            });
        }
    }
    (total_bytes, rows)
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

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("unknown CPU", |(_, model)| model.trim())
        .to_string();
    // Counted from cpuinfo: the bench pins itself, which narrows
    // available_parallelism to one CPU.
    let n_cpus = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    format!("{model}, {n_cpus} cores")
}

fn print_report(report: &Report<'_>) -> anyhow::Result<()> {
    let bench = report.bench;
    let date = command_output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .unwrap_or_default();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Command: `./target/release/reel-bench edge {} {} {}` (the edge step of `make bench`).",
        bench.seconds, bench.rate, bench.runs
    )?;
    writeln!(
        out,
        "Machine: {}. Measured {}; load average (1, 5, 15 min, runnable/total, last pid) before: {}, after: {}.",
        machine(),
        date.trim(),
        report.load_before,
        report.load_after
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Setup: origin {} (sendfile, ETag, `Cache-Control: public, max-age=31536000, immutable`) serving \
         {N_OBJECTS} random objects of 1 MiB from the page cache; in front of it, one at a time, nginx \
         `proxy_cache` (1 worker, cache on /dev/shm, `max_size=4g`, `proxy_cache_lock on`, no access log) \
         and `reel edge --cache-memory 2GiB --eviction s3-fifo` (release build, one tokio worker). Cache on \
         CPU {CACHE_CPU}; origin and load generator on CPU {LOAD_CPU}; all of them at nice {}. Both caches pre-warmed (a second pass over \
         all objects is all hits). Open-loop load: {} req/s for {} s per run, latency from each request's due \
         time to its last byte (corrected for coordinated omission); Zipf sequences seeded per (run, α), the same \
         for both caches; {} run(s), alternating which cache goes first; medians over runs. CPU = utime + stime of \
         the cache's processes (nginx: master, worker, cache manager and loader) per GB (10^9 bytes) of body served.",
        report.nginx_version,
        report.nice,
        bench.rate,
        bench.seconds,
        bench.runs
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| α | cache | achieved req/s | MB/s | p50 (ms) | p99 (ms) | max (ms) | CPU-s per GB | origin requests | errors | p99 per run (ms) |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|")?;
    let figures_of = |target_idx: usize, alpha_idx: usize| -> Vec<&Figures> {
        report
            .results
            .iter()
            .filter(|measurement| {
                measurement.target_idx == target_idx && measurement.alpha_idx == alpha_idx
            })
            .map(|measurement| &measurement.figures)
            .collect()
    };
    let median_of = |figures: &[&Figures], field: fn(&Figures) -> f64| -> f64 {
        median(figures.iter().map(|figures| field(figures)).collect())
    };
    for (alpha_idx, alpha) in ALPHAS.iter().enumerate() {
        for (target_idx, target) in report.targets.iter().enumerate() {
            let figures = figures_of(target_idx, alpha_idx);
            let per_run: Vec<String> = figures
                .iter()
                .map(|figures| format!("{:.1}", figures.p99_ms))
                .collect();
            writeln!(
                out,
                "| {alpha:.1} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.1} | {:.3} | {:.0} | {:.0} | {} |",
                target.name,
                median_of(&figures, |figures| figures.achieved_rps),
                median_of(&figures, |figures| figures.megabytes_per_second),
                median_of(&figures, |figures| figures.p50_ms),
                median_of(&figures, |figures| figures.p99_ms),
                median_of(&figures, |figures| figures.max_ms),
                median_of(&figures, Figures::cpu_seconds_per_gb),
                median_of(&figures, |figures| figures.origin_requests as f64),
                median_of(&figures, |figures| figures.errors as f64),
                per_run.join(" / "),
            )?;
        }
    }
    let load_cpu = median(
        report
            .results
            .iter()
            .map(|measurement| measurement.figures.load_cpu_fraction)
            .collect(),
    );
    writeln!(out)?;
    writeln!(
        out,
        "Load generator: median {:.0} % of its CPU, so it kept its schedule. Origin requests are those made \
         during the measured runs (the working set was cached before).",
        load_cpu * 100.0
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| α | CPU-s per GB, reel / nginx (goal ≤ 1) | p99, reel / nginx (goal ≤ 1) | p50, reel / nginx | achieved throughput, reel / nginx |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    for (alpha_idx, alpha) in ALPHAS.iter().enumerate() {
        let nginx = figures_of(0, alpha_idx);
        let reel = figures_of(1, alpha_idx);
        let ratio = |field: fn(&Figures) -> f64| median_of(&reel, field) / median_of(&nginx, field);
        writeln!(
            out,
            "| {alpha:.1} | **{:.2}** | **{:.2}** | {:.2} | {:.2} |",
            ratio(Figures::cpu_seconds_per_gb),
            ratio(|figures| figures.p99_ms),
            ratio(|figures| figures.p50_ms),
            ratio(|figures| figures.achieved_rps),
        )?;
    }

    writeln!(out)?;
    writeln!(
        out,
        "Herd: {HERD_CLIENTS} concurrent requests for one object neither cache holds, from an origin location \
         throttled to {HERD_ORIGIN_RATE} bytes/s (a second nginx server with `limit_rate` and `sndbuf=32k` behind the origin, unbuffered, so a 1 MiB fill takes about 0.5 s); \
         {HERD_ROUNDS} rounds per cache, a new object each time; times from the start of the herd; medians over rounds."
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| cache | origin fetches per object | first byte p50 (ms) | first byte max (ms) | complete p50 (ms) | complete max (ms) | errors |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for (target_idx, target) in report.targets.iter().enumerate() {
        let herds: Vec<&Herd> = report
            .herds
            .iter()
            .filter(|(idx, _)| *idx == target_idx)
            .map(|(_, herd)| herd)
            .collect();
        let median_of =
            |field: fn(&Herd) -> f64| median(herds.iter().map(|herd| field(herd)).collect());
        writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            target.name,
            median_of(|herd| herd.origin_fetches as f64),
            median_of(|herd| herd.first_byte_p50_ms),
            median_of(|herd| herd.first_byte_max_ms),
            median_of(|herd| herd.complete_p50_ms),
            median_of(|herd| herd.complete_max_ms),
            median_of(|herd| herd.errors as f64),
        )?;
    }

    let (total_bytes, rows) = report.replays;
    writeln!(out)?;
    writeln!(
        out,
        "Hit ratio by trace replay (`reel_edge::policy::replay`, the policies the edge runs): {N_REPLAY_REQUESTS} \
         requests, Zipf(α) over {N_REPLAY_OBJECTS} objects of log-uniform sizes 16 KiB to 8 MiB independent of \
         popularity ({:.1} GB in all), seeded; capacity in bytes, equal for both policies. No public CDN trace \
         is available offline here, so only synthetic traces were replayed.",
        *total_bytes as f64 / 1e9
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| α | capacity | S3-FIFO hit ratio | LRU hit ratio | difference (points; goal ≥ +5) | S3-FIFO byte hit ratio | LRU byte hit ratio |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for row in rows {
        writeln!(
            out,
            "| {:.1} | {} % ({:.2} GB) | {:.3} | {:.3} | **{:+.1}** | {:.3} | {:.3} |",
            row.alpha,
            row.capacity_per_mille as f64 / 10.0,
            row.capacity_bytes as f64 / 1e9,
            row.s3_fifo.hit_ratio(),
            row.lru.hit_ratio(),
            (row.s3_fifo.hit_ratio() - row.lru.hit_ratio()) * 100.0,
            row.s3_fifo.byte_hit_ratio(),
            row.lru.byte_hit_ratio(),
        )?;
    }
    Ok(())
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
