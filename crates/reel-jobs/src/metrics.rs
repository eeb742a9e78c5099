//! In-process metrics of the engine, rendered in the Prometheus text format.
//!
//! Histograms use fixed buckets and atomics, so recording never takes a lock.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::store::TaskCounts;

const BUCKETS_SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0,
];

struct Histogram {
    buckets: [AtomicU64; BUCKETS_SECONDS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS_SECONDS) {
            if seconds <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(value.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS_SECONDS) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Counters and histograms of one process's workers.
pub struct Metrics {
    dispatch_latency: Histogram,
    task_duration: Histogram,
    fenced_results: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Self {
            dispatch_latency: Histogram::new(),
            task_duration: Histogram::new(),
            fenced_results: AtomicU64::new(0),
        }
    }

    /// Records the time from a task becoming ready to its claim.
    pub fn observe_dispatch(&self, latency: Duration) {
        self.dispatch_latency.observe(latency);
    }

    /// Records how long a task's handler ran.
    pub fn observe_task_duration(&self, duration: Duration) {
        self.task_duration.observe(duration);
    }

    /// Counts a result rejected because its lease was lost.
    pub fn count_fenced(&self) {
        self.fenced_results.fetch_add(1, Ordering::Relaxed);
    }

    /// Renders the metrics, with task counts from the database, as Prometheus text.
    pub fn render(&self, counts: &TaskCounts) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP reel_tasks Tasks by state, over all jobs.\n# TYPE reel_tasks gauge"
        );
        let mut states: Vec<_> = counts.by_state.iter().collect();
        states.sort();
        for (state, n) in states {
            let _ = writeln!(out, "reel_tasks{{state=\"{state}\"}} {n}");
        }
        let queue_depth = counts.by_state.get("ready").copied().unwrap_or(0);
        let _ = writeln!(out, "# HELP reel_queue_depth Tasks ready and waiting for a worker.\n# TYPE reel_queue_depth gauge\nreel_queue_depth {queue_depth}");
        self.dispatch_latency.render(
            "reel_dispatch_latency_seconds",
            "Time from a task becoming ready to its claim by a worker of this process.",
            &mut out,
        );
        self.task_duration.render(
            "reel_task_duration_seconds",
            "Run time of task handlers in this process.",
            &mut out,
        );
        let _ = writeln!(
            out,
            "# HELP reel_fenced_results_total Results rejected because the worker had lost its lease.\n# TYPE reel_fenced_results_total counter\nreel_fenced_results_total {}",
            self.fenced_results.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::new();
        metrics.observe_dispatch(Duration::from_micros(300));
        metrics.observe_dispatch(Duration::from_millis(20));
        let text = metrics.render(&TaskCounts::default());
        assert!(
            text.contains("reel_dispatch_latency_seconds_bucket{le=\"0.0005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("reel_dispatch_latency_seconds_bucket{le=\"0.025\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("reel_dispatch_latency_seconds_count 2"),
            "{text}"
        );
        assert!(text.contains("reel_queue_depth 0"), "{text}");
    }
}
