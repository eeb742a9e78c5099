//! The report printed for bench/RESULTS.md.

use super::*;

pub(super) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

pub(super) fn machine() -> String {
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

pub(super) fn print_report(report: &Report<'_>) -> anyhow::Result<()> {
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
        "Signed playback: a second `reel edge` (same flags, plus `--jwks` with the keys of the tokens) serves the \
         same objects under `/v/{{video}}/t/{{token}}/s{{i}}.bin`, marked `reel-access: private` by the origin, so \
         every request's token is checked (Ed25519 JWT; {N_TOKENS} viewers' tokens in turn, each verified once and \
         then found in the edge's cache of verified tokens); before the runs it refused a request with no token, a \
         tampered token and another video's token (403 each). Same load, same Zipf sequences, in the same runs."
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "| α | CPU-s per GB, signed / unsigned (goal ≤ 1.05) | p99, signed / unsigned | p50, signed / unsigned | achieved throughput, signed / unsigned |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    for (alpha_idx, alpha) in ALPHAS.iter().enumerate() {
        let unsigned = figures_of(1, alpha_idx);
        let signed = figures_of(2, alpha_idx);
        let ratio =
            |field: fn(&Figures) -> f64| median_of(&signed, field) / median_of(&unsigned, field);
        writeln!(
            out,
            "| {alpha:.1} | **{:.3}** | **{:.2}** | {:.2} | {:.2} |",
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
    for (target_idx, target) in report.targets.iter().enumerate().take(HERD_TARGETS) {
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
