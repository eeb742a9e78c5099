//! Counters of the edge and their Prometheus text rendering.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::{StoreStats, TierStats};

/// Reads one value out of a tier's stats.
type TierValue = fn(&TierStats) -> u64;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn inc(&self) {
        self.add(1);
    }

    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Every counter the edge exports.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) coalesced: Counter,
    pub(crate) stale_while_revalidate: Counter,
    pub(crate) stale_if_error: Counter,
    pub(crate) revalidated: Counter,
    pub(crate) bypassed: Counter,
    pub(crate) served_bytes: Counter,
    pub(crate) upstream_requests: Counter,
    pub(crate) upstream_errors: Counter,
    pub(crate) upstream_bytes: Counter,
    pub(crate) revalidations_not_modified: Counter,
    pub(crate) revalidations_modified: Counter,
    pub(crate) revalidations_failed: Counter,
    pub(crate) prefetches_started: Counter,
    pub(crate) prefetches_cached: Counter,
    pub(crate) prefetches_busy: Counter,
    pub(crate) prefetches_invalid: Counter,
    pub(crate) purges: Counter,
    pub(crate) purged_objects: Counter,
    pub(crate) cmcd_requests: Counter,
    pub(crate) disk_writes: Counter,
    pub(crate) disk_writes_skipped: Counter,
    pub(crate) disk_writes_failed: Counter,
}

/// Values the counters do not hold.
pub(crate) struct Gauges<'a> {
    pub(crate) name: &'a str,
    pub(crate) location: Option<(f64, f64)>,
    pub(crate) store: StoreStats,
    pub(crate) cmcd_sessions: usize,
}

impl Metrics {
    /// Prometheus text exposition format 0.0.4.
    pub(crate) fn render(&self, gauges: &Gauges<'_>) -> String {
        let mut out = String::with_capacity(4096);
        let location = match gauges.location {
            Some((latitude, longitude)) => {
                format!(",latitude=\"{latitude}\",longitude=\"{longitude}\"")
            }
            None => String::new(),
        };
        family(
            &mut out,
            "reel_edge_info",
            "gauge",
            "This edge: its name and location.",
        );
        let _ = writeln!(
            out,
            "reel_edge_info{{name=\"{}\"{location}}} 1",
            gauges.name
        );

        family(
            &mut out,
            "reel_edge_requests_total",
            "counter",
            "Proxied GET/HEAD requests by how the cache answered (X-Cache).",
        );
        for (result, value) in [
            ("hit", self.hits.get()),
            ("miss", self.misses.get()),
            ("coalesced", self.coalesced.get()),
            (
                "stale",
                self.stale_while_revalidate.get() + self.stale_if_error.get(),
            ),
            ("revalidated", self.revalidated.get()),
            ("bypass", self.bypassed.get()),
        ] {
            let _ = writeln!(
                out,
                "reel_edge_requests_total{{cache=\"{result}\"}} {value}"
            );
        }
        simple(
            &mut out,
            "reel_edge_hits_total",
            "counter",
            "Requests answered from a fresh cached object.",
            self.hits.get(),
        );
        simple(
            &mut out,
            "reel_edge_misses_total",
            "counter",
            "Requests that started an upstream fill.",
            self.misses.get(),
        );
        simple(
            &mut out,
            "reel_edge_coalesced_waiters_total",
            "counter",
            "Requests that joined a fill already in flight instead of fetching.",
            self.coalesced.get(),
        );
        family(
            &mut out,
            "reel_edge_stale_served_total",
            "counter",
            "Stale objects served, by reason.",
        );
        let _ = writeln!(
            out,
            "reel_edge_stale_served_total{{reason=\"while_revalidate\"}} {}",
            self.stale_while_revalidate.get()
        );
        let _ = writeln!(
            out,
            "reel_edge_stale_served_total{{reason=\"if_error\"}} {}",
            self.stale_if_error.get()
        );
        let answered_from_cache = self.hits.get()
            + self.stale_while_revalidate.get()
            + self.stale_if_error.get()
            + self.revalidated.get();
        let all =
            answered_from_cache + self.misses.get() + self.coalesced.get() + self.bypassed.get();
        let hit_ratio = if all == 0 {
            0.0
        } else {
            answered_from_cache as f64 / all as f64
        };
        family(
            &mut out,
            "reel_edge_hit_ratio",
            "gauge",
            "Share of proxied requests answered with a stored body (hit, stale, revalidated).",
        );
        let _ = writeln!(out, "reel_edge_hit_ratio {hit_ratio:.6}");
        simple(
            &mut out,
            "reel_edge_served_bytes_total",
            "counter",
            "Body bytes of proxied responses.",
            self.served_bytes.get(),
        );
        simple(
            &mut out,
            "reel_edge_upstream_requests_total",
            "counter",
            "Requests sent upstream.",
            self.upstream_requests.get(),
        );
        simple(
            &mut out,
            "reel_edge_upstream_errors_total",
            "counter",
            "Upstream requests that got no response (unreachable, timeout).",
            self.upstream_errors.get(),
        );
        simple(
            &mut out,
            "reel_edge_upstream_bytes_total",
            "counter",
            "Body bytes received from upstream.",
            self.upstream_bytes.get(),
        );
        family(
            &mut out,
            "reel_edge_revalidations_total",
            "counter",
            "Conditional requests for stale objects, by outcome.",
        );
        for (result, counter) in [
            ("not_modified", &self.revalidations_not_modified),
            ("modified", &self.revalidations_modified),
            ("failed", &self.revalidations_failed),
        ] {
            let _ = writeln!(
                out,
                "reel_edge_revalidations_total{{result=\"{result}\"}} {}",
                counter.get()
            );
        }
        family(
            &mut out,
            "reel_edge_prefetches_total",
            "counter",
            "CMCD next-object prefetches, by outcome.",
        );
        for (result, counter) in [
            ("started", &self.prefetches_started),
            ("already_cached_or_in_flight", &self.prefetches_cached),
            ("busy", &self.prefetches_busy),
            ("invalid", &self.prefetches_invalid),
        ] {
            let _ = writeln!(
                out,
                "reel_edge_prefetches_total{{result=\"{result}\"}} {}",
                counter.get()
            );
        }
        simple(
            &mut out,
            "reel_edge_purges_total",
            "counter",
            "Purge requests served.",
            self.purges.get(),
        );
        simple(
            &mut out,
            "reel_edge_purged_objects_total",
            "counter",
            "Objects removed by purges.",
            self.purged_objects.get(),
        );
        simple(
            &mut out,
            "reel_edge_cmcd_requests_total",
            "counter",
            "Requests that carried CMCD.",
            self.cmcd_requests.get(),
        );
        simple(
            &mut out,
            "reel_edge_cmcd_sessions",
            "gauge",
            "CMCD sessions tracked.",
            gauges.cmcd_sessions as u64,
        );
        family(
            &mut out,
            "reel_edge_disk_writes_total",
            "counter",
            "Copies of stored objects to the disk tier, by outcome.",
        );
        for (result, counter) in [
            ("written", &self.disk_writes),
            ("skipped", &self.disk_writes_skipped),
            ("failed", &self.disk_writes_failed),
        ] {
            let _ = writeln!(
                out,
                "reel_edge_disk_writes_total{{result=\"{result}\"}} {}",
                counter.get()
            );
        }
        simple(
            &mut out,
            "reel_edge_inflight_fills",
            "gauge",
            "Upstream fills in flight.",
            gauges.store.inflight_fills,
        );
        let tiers: Vec<(&str, TierStats)> = std::iter::once(("memory", gauges.store.memory))
            .chain(gauges.store.disk.map(|disk| ("disk", disk)))
            .collect();
        let per_tier: [(&str, &str, &str, TierValue); 5] = [
            (
                "reel_edge_resident_bytes",
                "gauge",
                "Bytes held by a tier: stored objects plus reservations of fills and writes in progress. Never above capacity.",
                |tier| tier.stored + tier.reserved,
            ),
            (
                "reel_edge_reserved_bytes",
                "gauge",
                "Bytes reserved by fills and writes in progress.",
                |tier| tier.reserved,
            ),
            ("reel_edge_capacity_bytes", "gauge", "Configured capacity of a tier.", |tier| tier.capacity),
            ("reel_edge_objects", "gauge", "Objects stored in a tier.", |tier| tier.objects),
            ("reel_edge_evictions_total", "counter", "Objects evicted from a tier.", |tier| tier.evictions),
        ];
        for (name, kind, help, value) in per_tier {
            family(&mut out, name, kind, help);
            for (tier_name, stats) in &tiers {
                let _ = writeln!(out, "{name}{{tier=\"{tier_name}\"}} {}", value(stats));
            }
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn simple(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}
