//! S3-FIFO against LRU by trace replay over a Zipf request sequence.

use super::*;

/// `n_requests` object indices in `0..n_objects`, index `k` drawn with
/// probability proportional to `1 / (k + 1)^alpha`.
pub(super) fn zipf_sequence(
    alpha: f64,
    n_objects: usize,
    n_requests: usize,
    seed: u64,
) -> Vec<u32> {
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

/// Sizes log-uniform in 16 KiB .. 8 MiB (audio parts to high-rate video
/// segments), independent of popularity.
pub(super) fn replay_object_sizes() -> Vec<u64> {
    let mut random = SplitMix64::new(0x51_2e5);
    let (low, high) = ((16u64 << 10) as f64, (8u64 << 20) as f64);
    (0..N_REPLAY_OBJECTS)
        .map(|_| (low * (high / low).powf(random.next_f64())) as u64)
        .collect()
}

pub(super) fn replay_all() -> (u64, Vec<ReplayRow>) {
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
