//! reel's own ABR algorithm: a Fugu-style stochastic planner. It predicts a *distribution* of
//! chunk delivery times from the session's own recent prediction errors and maximises the
//! expected QoE_lin until the end of the video by value iteration over a discretised buffer.
//!
//! Each decision:
//!
//! 1. **Point estimate.** The payload throughput of a past chunk is `size / (delay − RTT)`, with
//!    `ASSUMED_RTT_SECS` (80 ms) taken off because the request round trip does not scale with
//!    the chunk size. The estimate is the harmonic mean of the last `ESTIMATE_WINDOW` (5) of them,
//!    or of the last `FAST_WINDOW` (2) if that is lower (reacts quickly to drops).
//! 2. **Error distribution.** For each of the last `RATIO_WINDOW` (25) chunks, the ratio
//!    `actual / estimate` (the estimate made just before that chunk, clamped to
//!    [`MIN_RATIO`, `MAX_RATIO`] = [0.05, 4]) is a scenario; a ratio `a` chunks old weighs
//!    `RATIO_DECAY^a` (0.85). The weighted ratios are compressed to `N_QUANTILES` (8) equally
//!    likely quantiles, which carry `1 − PRIOR_WEIGHT` of the probability. A pessimistic prior
//!    scenario (ratio `PRIOR_LOW_RATIO` = 0.5) carries `PRIOR_WEIGHT` (0.1), so that a session
//!    whose recent predictions were all accurate still hedges against a sudden drop. With no
//!    history yet, the empirical part is the single ratio 1.
//! 3. **Delivery time.** Chunk `c` at level `q` under ratio `r` takes
//!    `size(c, q) / (estimate × r) + RTT` seconds; chunk sizes of future chunks are known.
//! 4. **Plan.** Finite-horizon value iteration over the next `HORIZON` (47, i.e. the rest of
//!    this video) chunks on the state (buffer on a `BUFFER_STEP_SECS` = 1 s grid, linear
//!    interpolation; level of the previous chunk; regime of the previous chunk). Each planned
//!    chunk keeps the scenario (regime) of the chunk before it with probability `PERSISTENCE`
//!    (0.5) and otherwise draws a fresh one from the scenario distribution (0 would be Fugu's
//!    independent draws). For the next chunk, the ratio of the last download to the current
//!    estimate is an extra scenario of probability `INITIAL_PERSISTENCE` (0.3). A chunk is worth its bitrate in Mbit/s, minus
//!    `SWITCH_PENALTY` (1.5) × the change of bitrate, minus `REBUFFER_PENALTY` (6) per second of
//!    stall — the weights of QoE_lin, with stalls and switches charged more than the metric
//!    does because the predicted distribution is narrower than reality. The buffer is capped at
//!    the player's 60 s. If chunks remain beyond the horizon (videos longer than 48 chunks), the
//!    buffer left earns `TERMINAL_VALUE_PER_SEC` (1) per second up to `TERMINAL_BUFFER_CAP_SECS`
//!    (25 s); otherwise leftover buffer is worth nothing, so the plan spends it near the end.
//!    The level with the highest expected value for the next chunk is chosen.
//!
//! The algorithm is stateless (everything is recomputed from the [`Observation`]) and only uses
//! what a real player sees: past chunk sizes and download times, the buffer, the last level and
//! the sizes of future chunks.
//!
//! **How the constants were chosen.** By grid searches on the training folders only
//! (`fcc/train`, `hsdpa/train`), never on the test folders. Because the training traces are long
//! (median 900–1600 s) while a session lasts about 200 s, each training trace was cut into 320 s
//! windows every 160 s (311 HSDPA and 452 FCC sessions), which makes the mean far less noisy.
//! The objective was the sum over the two folders of the fraction of the RobustMPC → offline
//! optimum gap closed. Searched: horizon 5–47, estimate window 3–8, ratio window 10–47, decay
//! 0.85–1, prior 0.1–0.25 at ratio 0.1–0.5, an extra "outage" scenario (rejected: it costs far
//! more bitrate than it saves in stalls), rebuffer penalty 4.3–30, switch penalty 1–2.5. A
//! second round added partly persistent scenarios (persistence 0–0.8, initial persistence
//! 0–0.6) and the fast estimate (window 0, 2, 3); together with a rebuffer penalty of 6
//! (searched 5–11) they raised the training score from 0.85 to 0.96 (HSDPA 26.41 → 27.70,
//! FCC 22.26 → 22.68). Re-searched with them and not better: prior 0.05–0.2 at ratio 0.25–0.5,
//! a prior growing with the share of recent ratios below the prior's, 12 or all quantiles,
//! switch penalty 2–3, estimate window 4–8 with decay 0.8–0.9. Many settings score within
//! noise of each other; the chosen one is the best of the last grid and needs no
//! terminal-value heuristic on this video. `examples/tune.rs` reproduces the search.

use crate::player::{Algorithm, ChunkRecord, Observation};

/// Future chunks planned (47 covers the whole Pensieve session).
const HORIZON: usize = 47;
/// Past chunks in the harmonic-mean throughput estimate.
const ESTIMATE_WINDOW: usize = 5;
/// Past prediction ratios that form the error distribution.
const RATIO_WINDOW: usize = 25;
/// Weight decay per chunk of age of a prediction ratio.
const RATIO_DECAY: f64 = 0.85;
/// Quantiles the empirical ratios are compressed to.
const N_QUANTILES: usize = 8;
/// Probability of the pessimistic prior scenario.
const PRIOR_WEIGHT: f64 = 0.1;
/// Ratio (actual / predicted throughput) of the pessimistic prior scenario.
const PRIOR_LOW_RATIO: f64 = 0.5;
/// QoE charged per second of planned stall.
const REBUFFER_PENALTY: f64 = 6.0;
/// Multiplier of QoE_lin's switching penalty in the plan.
const SWITCH_PENALTY: f64 = 1.5;
/// QoE credited per second of buffer left when chunks remain beyond the horizon.
const TERMINAL_VALUE_PER_SEC: f64 = 1.0;
/// Buffer above this level earns no terminal credit.
const TERMINAL_BUFFER_CAP_SECS: f64 = 25.0;
/// Step of the buffer grid of the value iteration.
const BUFFER_STEP_SECS: f64 = 1.0;
/// Round-trip time of a request, which does not scale with the chunk size.
const ASSUMED_RTT_SECS: f64 = 0.08;
/// Lower clamp of a prediction ratio.
const MIN_RATIO: f64 = 0.05;
/// Upper clamp of a prediction ratio.
const MAX_RATIO: f64 = 4.0;
/// Probability that a planned chunk keeps the ratio regime (scenario) of the chunk before it.
const PERSISTENCE: f64 = 0.5;
/// Probability that the next chunk keeps the regime of the last downloaded chunk.
const INITIAL_PERSISTENCE: f64 = 0.3;
/// Past chunks of the fast estimate; the throughput estimate is the lower of the
/// `ESTIMATE_WINDOW` and `FAST_WINDOW` harmonic means.
const FAST_WINDOW: usize = 2;
/// The player's buffer cap.
const BUFFER_CAP_SECS: f64 = 60.0;

/// Parameters of [`Reel`]; [`ReelParams::default`] holds the tuned constants of the module doc.
/// Other values exist for tuning experiments (`examples/tune.rs`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReelParams {
    /// Future chunks planned.
    pub horizon: usize,
    /// Past chunks in the harmonic-mean throughput estimate.
    pub estimate_window: usize,
    /// Past prediction ratios that form the error distribution.
    pub ratio_window: usize,
    /// Weight of a ratio `a` chunks old is `ratio_decay^a`.
    pub ratio_decay: f64,
    /// Quantiles the empirical ratios are compressed to (0 keeps every ratio).
    pub n_quantiles: usize,
    /// Probability of the pessimistic prior scenario.
    pub prior_weight: f64,
    /// Ratio of the pessimistic prior scenario.
    pub prior_low: f64,
    /// QoE charged per second of planned stall.
    pub rebuffer_penalty: f64,
    /// Multiplier of the switching penalty in the plan.
    pub switch_penalty: f64,
    /// QoE credited per second of buffer left when chunks remain beyond the horizon.
    pub terminal_per_sec: f64,
    /// Buffer above this level earns no terminal credit.
    pub terminal_cap_secs: f64,
    /// Step of the buffer grid.
    pub buffer_step_secs: f64,
    /// Round-trip time assumed per request.
    pub rtt_secs: f64,
    /// Lower clamp of a ratio.
    pub min_ratio: f64,
    /// Upper clamp of a ratio.
    pub max_ratio: f64,
    /// Probability that a planned chunk keeps the ratio regime of the chunk before it.
    pub persistence: f64,
    /// Probability that the next chunk keeps the regime of the last downloaded chunk.
    pub initial_persistence: f64,
    /// Past chunks of the fast estimate; the estimate is the lower of both (0: off).
    pub fast_window: usize,
}

impl Default for ReelParams {
    fn default() -> ReelParams {
        ReelParams {
            horizon: HORIZON,
            estimate_window: ESTIMATE_WINDOW,
            ratio_window: RATIO_WINDOW,
            ratio_decay: RATIO_DECAY,
            n_quantiles: N_QUANTILES,
            prior_weight: PRIOR_WEIGHT,
            prior_low: PRIOR_LOW_RATIO,
            rebuffer_penalty: REBUFFER_PENALTY,
            switch_penalty: SWITCH_PENALTY,
            terminal_per_sec: TERMINAL_VALUE_PER_SEC,
            terminal_cap_secs: TERMINAL_BUFFER_CAP_SECS,
            buffer_step_secs: BUFFER_STEP_SECS,
            rtt_secs: ASSUMED_RTT_SECS,
            min_ratio: MIN_RATIO,
            max_ratio: MAX_RATIO,
            persistence: PERSISTENCE,
            initial_persistence: INITIAL_PERSISTENCE,
            fast_window: FAST_WINDOW,
        }
    }
}

/// reel's ABR algorithm (name `reel`).
#[derive(Debug, Clone, Default)]
pub struct Reel {
    params: ReelParams,
}

impl Reel {
    /// reel with its tuned constants.
    pub fn new() -> Reel {
        Reel::default()
    }

    /// reel with explicit parameters, for tuning experiments.
    pub fn with_params(params: ReelParams) -> Reel {
        Reel { params }
    }
}

impl Algorithm for Reel {
    fn name(&self) -> &str {
        "reel"
    }

    fn reset(&mut self) {}

    fn choose(&mut self, obs: &Observation) -> usize {
        plan(&self.params, obs)
    }
}

/// Payload throughput of a download in bytes per second, net of the round-trip time.
fn payload_bytes_per_sec(record: &ChunkRecord, rtt_secs: f64) -> f64 {
    let secs = (record.delay_ms / 1000.0 - rtt_secs).max(1e-3);
    record.size_bytes as f64 / secs
}

/// Harmonic mean of the payload throughput of the last `window` downloads in `history` (which
/// must not be empty), in bytes per second.
fn harmonic_estimate(history: &[ChunkRecord], window: usize, rtt_secs: f64) -> f64 {
    let start = history.len().saturating_sub(window.max(1));
    let samples = &history[start..];
    let inverse_sum: f64 = samples
        .iter()
        .map(|record| 1.0 / payload_bytes_per_sec(record, rtt_secs))
        .sum();
    samples.len() as f64 / inverse_sum
}

/// The throughput estimate after `history` (not empty), in bytes per second: the harmonic mean
/// of the last `estimate_window` downloads, or of the last `fast_window` if that is lower.
fn estimate(history: &[ChunkRecord], params: &ReelParams) -> f64 {
    let slow = harmonic_estimate(history, params.estimate_window, params.rtt_secs);
    if params.fast_window == 0 {
        return slow;
    }
    slow.min(harmonic_estimate(
        history,
        params.fast_window,
        params.rtt_secs,
    ))
}

/// The scenarios `(ratio of actual to predicted throughput, probability)` for the next chunks;
/// the probabilities sum to 1.
fn scenarios(history: &[ChunkRecord], params: &ReelParams) -> Vec<(f64, f64)> {
    let mut empirical = Vec::new();
    let first = history.len().saturating_sub(params.ratio_window).max(1);
    for idx in first..history.len() {
        let predicted = estimate(&history[..idx], params);
        let actual = payload_bytes_per_sec(&history[idx], params.rtt_secs);
        let ratio = (actual / predicted).clamp(params.min_ratio, params.max_ratio);
        let age = history.len() - 1 - idx;
        empirical.push((ratio, params.ratio_decay.powi(age as i32)));
    }
    if empirical.is_empty() {
        empirical.push((1.0, 1.0));
    }
    if params.n_quantiles > 0 && empirical.len() > params.n_quantiles {
        empirical = weighted_quantiles(empirical, params.n_quantiles);
    }
    let total: f64 = empirical.iter().map(|scenario| scenario.1).sum();
    let empirical_mass = 1.0 - params.prior_weight;
    let mut out: Vec<(f64, f64)> = empirical
        .into_iter()
        .map(|(ratio, weight)| (ratio, weight * empirical_mass / total))
        .collect();
    if params.prior_weight > 0.0 {
        out.push((params.prior_low, params.prior_weight));
    }
    out
}

/// Compresses weighted samples to `n` equally likely values: the weighted quantiles at
/// probabilities `(i + 0.5) / n` (each the smallest sample whose cumulative weight reaches it).
fn weighted_quantiles(mut samples: Vec<(f64, f64)>, n: usize) -> Vec<(f64, f64)> {
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = samples.iter().map(|sample| sample.1).sum();
    let mut out = Vec::with_capacity(n);
    let mut cumulative = samples[0].1;
    let mut idx = 0;
    for i in 0..n {
        let target = (i as f64 + 0.5) / n as f64 * total;
        while idx + 1 < samples.len() && cumulative < target {
            idx += 1;
            cumulative += samples[idx].1;
        }
        out.push((samples[idx].0, 1.0 / n as f64));
    }
    out
}

/// Linear interpolation of `values` sampled every `step` seconds, clamped to the last sample.
fn interpolate(values: &[f64], step: f64, buffer_secs: f64) -> f64 {
    let pos = buffer_secs / step;
    let last = values.len() - 1;
    if pos >= last as f64 {
        return values[last];
    }
    let idx = pos as usize;
    let frac = pos - idx as f64;
    values[idx] * (1.0 - frac) + values[idx + 1] * frac
}

/// Stall and next buffer (capped) after a download of `download_secs` from `buffer_secs`.
fn transition(buffer_secs: f64, download_secs: f64, chunk_secs: f64) -> (f64, f64) {
    let rebuffer = (download_secs - buffer_secs).max(0.0);
    let next = ((buffer_secs - download_secs).max(0.0) + chunk_secs).min(BUFFER_CAP_SECS);
    (rebuffer, next)
}

/// Index of the scenario whose ratio is closest to `ratio` on a log scale.
fn nearest_scenario(scenarios: &[(f64, f64)], ratio: f64) -> usize {
    let distance = |scenario: &(f64, f64)| (scenario.0 / ratio).ln().abs();
    (0..scenarios.len())
        .min_by(|&a, &b| distance(&scenarios[a]).total_cmp(&distance(&scenarios[b])))
        .expect("at least one scenario")
}

/// The level of the next chunk: the first step of the expected-QoE-optimal policy.
fn plan(params: &ReelParams, obs: &Observation) -> usize {
    let video = obs.video;
    let n_levels = video.n_levels();
    let chunk_secs = video.chunk_duration().as_secs_f64();
    let horizon = params.horizon.min(obs.n_remaining());
    if horizon == 0 {
        return 0;
    }
    let estimate = estimate(obs.history, params);
    let scenarios = scenarios(obs.history, params);
    let n_scenarios = scenarios.len();
    // With persistence the value depends on the regime (scenario) of the previous chunk.
    let n_regimes = if params.persistence > 0.0 {
        n_scenarios
    } else {
        1
    };
    let regime_of = |j: usize| if n_regimes == 1 { 0 } else { j };
    let utility: Vec<f64> = video
        .ladder()
        .iter()
        .map(|bitrate| bitrate.mbps())
        .collect();
    let step = params.buffer_step_secs;
    let start_buffer = obs.buffer_secs();
    // No state reachable within the horizon holds more buffer than this.
    let max_buffer = (start_buffer + chunk_secs * horizon as f64).min(BUFFER_CAP_SECS);
    let n_grid = (max_buffer / step).ceil() as usize + 1;
    let terminal = |buffer_secs: f64| {
        if obs.n_remaining() > horizon {
            params.terminal_per_sec * buffer_secs.min(params.terminal_cap_secs)
        } else {
            0.0
        }
    };
    // Delivery time of the `h`-th planned chunk at level `q` under ratio `ratio`.
    let delivery = |h: usize, q: usize, ratio: f64| {
        let size = video.chunk_size(q, obs.next_chunk_idx + h).unwrap_or(0) as f64;
        size / (estimate * ratio) + params.rtt_secs
    };
    // Stall cost plus continuation value of downloading chunk `h` at level `q` from
    // `buffer_secs` under `ratio`, given `next_value` (the value after that chunk, by buffer
    // grid point).
    let outcome_under = |h: usize, q: usize, ratio: f64, buffer_secs: f64, next_value: &[f64]| {
        let (rebuffer, next) = transition(buffer_secs, delivery(h, q, ratio), chunk_secs);
        interpolate(next_value, step, next) - params.rebuffer_penalty * rebuffer
    };
    // value[k][l][g]: expected QoE of the chunks after the current stage, given that the
    // current chunk ran in regime k and was played at level l, with buffer g × step.
    let terminal_row: Vec<f64> = (0..n_grid).map(|g| terminal(g as f64 * step)).collect();
    let mut value = vec![vec![terminal_row; n_levels]; n_regimes];
    // outcome[j][q][g]: outcome of the current chunk at level q from buffer g in regime j.
    let mut outcome = vec![vec![vec![0.0; n_grid]; n_levels]; n_scenarios];
    let mut mean_outcome = vec![vec![0.0; n_grid]; n_levels];
    let mut choice = vec![0.0; n_levels];
    for h in (1..horizon).rev() {
        for (j, rows) in outcome.iter_mut().enumerate() {
            let ratio = scenarios[j].0;
            for (q, row) in rows.iter_mut().enumerate() {
                let next_value = &value[regime_of(j)][q];
                for (g, cell) in row.iter_mut().enumerate() {
                    *cell = outcome_under(h, q, ratio, g as f64 * step, next_value);
                }
            }
        }
        for (q, row) in mean_outcome.iter_mut().enumerate() {
            for (g, cell) in row.iter_mut().enumerate() {
                *cell = (0..n_scenarios)
                    .map(|j| scenarios[j].1 * outcome[j][q][g])
                    .sum();
            }
        }
        for (k, rows) in value.iter_mut().enumerate() {
            for g in 0..n_grid {
                for (q, cell) in choice.iter_mut().enumerate() {
                    let expected = if n_regimes == 1 {
                        mean_outcome[q][g]
                    } else {
                        params.persistence * outcome[k][q][g]
                            + (1.0 - params.persistence) * mean_outcome[q][g]
                    };
                    *cell = utility[q] + expected;
                }
                for (l, row) in rows.iter_mut().enumerate() {
                    row[g] = (0..n_levels)
                        .map(|q| {
                            choice[q] - params.switch_penalty * (utility[q] - utility[l]).abs()
                        })
                        .fold(f64::NEG_INFINITY, f64::max);
                }
            }
        }
    }
    // The next chunk: each scenario with its probability, plus, with `initial_persistence`, the
    // regime of the last download (its throughput relative to the current estimate).
    let last_ratio = (payload_bytes_per_sec(obs.last(), params.rtt_secs) / estimate)
        .clamp(params.min_ratio, params.max_ratio);
    let mut first: Vec<(f64, f64, usize)> = scenarios
        .iter()
        .enumerate()
        .map(|(j, &(ratio, probability))| {
            (ratio, probability * (1.0 - params.initial_persistence), j)
        })
        .collect();
    if params.initial_persistence > 0.0 {
        let regime = nearest_scenario(&scenarios, last_ratio);
        first.push((last_ratio, params.initial_persistence, regime));
    }
    let last = obs.last_level_idx();
    let mut best_level = 0;
    let mut best_value = f64::NEG_INFINITY;
    for q in 0..n_levels {
        let expected: f64 = first
            .iter()
            .map(|&(ratio, probability, j)| {
                probability * outcome_under(0, q, ratio, start_buffer, &value[regime_of(j)][q])
            })
            .sum();
        let candidate =
            utility[q] - params.switch_penalty * (utility[q] - utility[last]).abs() + expected;
        if candidate > best_value {
            best_value = candidate;
            best_level = q;
        }
    }
    best_level
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::player::tests::{ladder_video, observation, record};

    fn record_with_delay(size_bytes: u64, delay_ms: f64) -> ChunkRecord {
        ChunkRecord {
            chunk_idx: 0,
            level_idx: 0,
            size_bytes,
            delay_ms,
            rebuffer_ms: 0.0,
            sleep_ms: 0.0,
            buffer_ms: 4000.0,
        }
    }

    #[test]
    fn payload_throughput_excludes_the_round_trip() {
        // 1 MB in 1.08 s with an 80 ms RTT: 1 MB/s of payload.
        let record = record_with_delay(1_000_000, 1080.0);
        assert!((payload_bytes_per_sec(&record, 0.08) - 1_000_000.0).abs() < 1e-6);
    }

    #[test]
    fn harmonic_estimate_uses_the_last_window() {
        // Payload rates 4000, 1000 and 4000 B/s (RTT 0): the last two average to 1600 B/s.
        let history = [
            record_with_delay(4000, 1000.0),
            record_with_delay(1000, 1000.0),
            record_with_delay(4000, 1000.0),
        ];
        let estimate = harmonic_estimate(&history, 2, 0.0);
        assert!((estimate - 1600.0).abs() < 1e-9);
        // A window longer than the history uses all of it: 3 / (1/4000 + 1/1000 + 1/4000).
        assert!((harmonic_estimate(&history, 10, 0.0) - 2000.0).abs() < 1e-9);
    }

    #[test]
    fn estimate_is_the_lower_of_the_slow_and_fast_means() {
        // Payload rates 4000, 4000, 4000, 1000 B/s (RTT 0): the 2-chunk mean 1600 is below the
        // 4-chunk mean 16000/7.
        let history = [
            record_with_delay(4000, 1000.0),
            record_with_delay(4000, 1000.0),
            record_with_delay(4000, 1000.0),
            record_with_delay(1000, 1000.0),
        ];
        let params = ReelParams {
            estimate_window: 4,
            fast_window: 2,
            rtt_secs: 0.0,
            ..ReelParams::default()
        };
        assert!((estimate(&history, &params) - 1600.0).abs() < 1e-9);
        let slow_only = ReelParams {
            fast_window: 0,
            ..params
        };
        assert!((estimate(&history, &slow_only) - 16000.0 / 7.0).abs() < 1e-9);
    }

    #[test]
    fn scenarios_are_decayed_prediction_ratios_plus_the_prior() {
        let params = ReelParams {
            estimate_window: 1,
            fast_window: 0,
            ratio_decay: 0.5,
            n_quantiles: 0,
            prior_weight: 0.1,
            prior_low: 0.5,
            rtt_secs: 0.0,
            ..ReelParams::default()
        };
        // Rates 1000, 2000, 1000 B/s; with a one-chunk estimate the ratios are 2 (age 1) and 0.5 (age 0).
        let history = [
            record_with_delay(1000, 1000.0),
            record_with_delay(2000, 1000.0),
            record_with_delay(1000, 1000.0),
        ];
        let scenarios = scenarios(&history, &params);
        let expected = [(2.0, 0.9 / 3.0), (0.5, 0.9 * 2.0 / 3.0), (0.5, 0.1)];
        assert_eq!(scenarios.len(), expected.len());
        for (got, want) in scenarios.iter().zip(expected) {
            assert!((got.0 - want.0).abs() < 1e-12 && (got.1 - want.1).abs() < 1e-12);
        }
        // With one download there is no ratio yet: the empirical part is ratio 1.
        let first = scenarios_of_one(&params);
        assert_eq!(first, vec![(1.0, 0.9), (0.5, 0.1)]);
    }

    fn scenarios_of_one(params: &ReelParams) -> Vec<(f64, f64)> {
        scenarios(&[record_with_delay(1000, 1000.0)], params)
    }

    #[test]
    fn weighted_quantiles_pick_midpoint_probabilities() {
        // Values 1..=4 with weights 1, 1, 1, 5 (total 8). Two quantiles at 2 and 6 of cumulative
        // weight: the first reaches 2 at value 2, the second reaches 6 at value 4.
        let samples = vec![(4.0, 5.0), (2.0, 1.0), (1.0, 1.0), (3.0, 1.0)];
        assert_eq!(weighted_quantiles(samples, 2), vec![(2.0, 0.5), (4.0, 0.5)]);
    }

    #[test]
    fn interpolation_is_linear_and_clamped() {
        let values = [0.0, 10.0, 20.0];
        assert!((interpolate(&values, 2.0, 1.0) - 5.0).abs() < 1e-12);
        assert!((interpolate(&values, 2.0, 3.5) - 17.5).abs() < 1e-12);
        assert_eq!(interpolate(&values, 2.0, 9.0), 20.0);
    }

    #[test]
    fn transition_stalls_then_refills() {
        assert_eq!(transition(3.0, 5.0, 4.0), (2.0, 4.0));
        assert_eq!(transition(10.0, 4.0, 4.0), (0.0, 10.0));
        assert_eq!(transition(59.0, 1.0, 4.0), (0.0, 60.0));
    }

    #[test]
    fn reel_follows_the_link_and_resets() {
        let video = ladder_video();
        let mut reel = Reel::new();
        let fast_history = [record(&video, 3, 100_000.0, 20.0)];
        assert_eq!(reel.choose(&observation(&video, &fast_history)), 5);
        reel.reset();
        let slow_history = [record(&video, 3, 100.0, 1.0)];
        assert_eq!(reel.choose(&observation(&video, &slow_history)), 0);
        assert_eq!(reel.name(), "reel");
    }

    #[test]
    fn reel_picks_the_highest_sustainable_level_on_a_steady_link() {
        // A steady 1.5 Mbit/s payload link (every ratio is 1) and no prior scenario, so the plan
        // is deterministic. With 4 s of buffer a level-3 chunk (1.85 Mbit/s, 4.93 s + RTT) would
        // stall for 1 s (charged 8), while level 2 (1.2 Mbit/s, 3.2 s + RTT) never stalls and
        // gains 0.72 s of buffer per chunk.
        let video = ladder_video();
        let history: Vec<ChunkRecord> = (0..5)
            .map(|_| {
                let mut r = record(&video, 2, 1500.0, 4.0);
                r.delay_ms += 80.0;
                r
            })
            .collect();
        let params = ReelParams {
            prior_weight: 0.0,
            ..ReelParams::default()
        };
        let obs = observation(&video, &history);
        assert_eq!(Reel::with_params(params).choose(&obs), 2);
    }
}
