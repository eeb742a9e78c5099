//! Throughput-based algorithms: `rb` (harmonic mean of the last 5 chunks, as dash.js case 3 in
//! Pensieve's emulation setup) and `throughput` (hls.js-style fast/slow EWMA with safety factors).

use crate::player::{Algorithm, Observation};

/// Number of past chunks in the harmonic mean of `rb`.
const RB_WINDOW: usize = 5;

/// Highest level whose nominal bitrate is at most the harmonic mean of the last 5 chunk throughputs.
#[derive(Debug, Clone, Default)]
pub struct RateBased;

impl Algorithm for RateBased {
    fn name(&self) -> &str {
        "rb"
    }

    fn reset(&mut self) {}

    fn choose(&mut self, obs: &Observation) -> usize {
        let window_start = obs.history.len().saturating_sub(RB_WINDOW);
        let window = &obs.history[window_start..];
        let inverse_sum: f64 = window
            .iter()
            .map(|record| 1.0 / record.throughput_kbps())
            .sum();
        let harmonic_kbps = window.len() as f64 / inverse_sum;
        highest_level_below(obs, harmonic_kbps)
    }
}

/// Half-life of the fast EWMA, in seconds of download time (hls.js `abrEwmaFastVoD`).
const EWMA_FAST_HALF_LIFE_SECS: f64 = 3.0;
/// Half-life of the slow EWMA, in seconds of download time (hls.js `abrEwmaSlowVoD`).
const EWMA_SLOW_HALF_LIFE_SECS: f64 = 9.0;
/// Fraction of the estimate usable when staying or switching down (hls.js `abrBandWidthFactor`).
const SAFETY_FACTOR: f64 = 0.95;
/// Fraction of the estimate usable when switching up (hls.js `abrBandWidthUpFactor`).
const UP_SAFETY_FACTOR: f64 = 0.7;

/// An exponentially weighted moving average weighted by sample duration, with zero-bias correction.
#[derive(Debug, Clone)]
struct Ewma {
    alpha: f64,
    estimate: f64,
    total_weight: f64,
}

impl Ewma {
    fn new(half_life_secs: f64) -> Ewma {
        Ewma {
            alpha: (0.5f64.ln() / half_life_secs).exp(),
            estimate: 0.0,
            total_weight: 0.0,
        }
    }

    fn sample(&mut self, weight_secs: f64, value: f64) {
        let adjusted_alpha = self.alpha.powf(weight_secs);
        self.estimate = value * (1.0 - adjusted_alpha) + adjusted_alpha * self.estimate;
        self.total_weight += weight_secs;
    }

    fn get(&self) -> f64 {
        let zero_factor = 1.0 - self.alpha.powf(self.total_weight);
        if zero_factor > 0.0 {
            self.estimate / zero_factor
        } else {
            self.estimate
        }
    }
}

/// hls.js-style throughput rule: estimate = min(fast EWMA, slow EWMA) of chunk throughputs, then
/// the highest level under 0.95 × estimate (0.7 × estimate for an up-switch).
#[derive(Debug, Clone)]
pub struct Throughput {
    fast: Ewma,
    slow: Ewma,
    n_seen: usize,
}

impl Throughput {
    /// A fresh estimator with the hls.js VoD half-lives (3 s and 9 s).
    pub fn new() -> Throughput {
        Throughput {
            fast: Ewma::new(EWMA_FAST_HALF_LIFE_SECS),
            slow: Ewma::new(EWMA_SLOW_HALF_LIFE_SECS),
            n_seen: 0,
        }
    }
}

impl Default for Throughput {
    fn default() -> Throughput {
        Throughput::new()
    }
}

impl Algorithm for Throughput {
    fn name(&self) -> &str {
        "throughput"
    }

    fn reset(&mut self) {
        *self = Throughput::new();
    }

    fn choose(&mut self, obs: &Observation) -> usize {
        for record in &obs.history[self.n_seen..] {
            let weight_secs = record.delay_ms / 1000.0;
            self.fast.sample(weight_secs, record.throughput_kbps());
            self.slow.sample(weight_secs, record.throughput_kbps());
        }
        self.n_seen = obs.history.len();
        let estimate_kbps = self.fast.get().min(self.slow.get());
        let last_level_idx = obs.last_level_idx();
        let level_idx = highest_level_below(obs, SAFETY_FACTOR * estimate_kbps);
        if level_idx <= last_level_idx {
            return level_idx;
        }
        highest_level_below(obs, UP_SAFETY_FACTOR * estimate_kbps).max(last_level_idx)
    }
}

/// The highest level whose nominal bitrate is at most `kbps`, or level 0.
fn highest_level_below(obs: &Observation, kbps: f64) -> usize {
    obs.video
        .ladder()
        .iter()
        .rposition(|bitrate| bitrate.kbps() as f64 <= kbps)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::player::tests::{ladder_video, observation, record};

    #[test]
    fn rb_uses_harmonic_mean_of_last_five() {
        let video = ladder_video();
        // The first sample falls out of the window; the harmonic mean of 1000 and 4 × 4000 kbit/s
        // is 5 / (1/1000 + 4/4000) = 2500 kbit/s -> 1850 kbit/s (level 3).
        let mut history = vec![
            record(&video, 1, 100.0, 4.0),
            record(&video, 1, 1000.0, 4.0),
        ];
        history.extend((0..4).map(|_| record(&video, 1, 4000.0, 4.0)));
        assert_eq!(RateBased.choose(&observation(&video, &history)), 3);
    }

    #[test]
    fn throughput_switches_up_only_with_margin() {
        let video = ladder_video();
        let history = [record(&video, 1, 2000.0, 4.0)];
        // Estimate 2000: 0.95 × 2000 = 1900 allows level 3, but it is an up-switch and
        // 0.7 × 2000 = 1400 only allows level 2.
        assert_eq!(Throughput::new().choose(&observation(&video, &history)), 2);
        let history = [record(&video, 4, 2000.0, 4.0)];
        // Down-switch from level 4 uses 0.95 × 2000 = 1900 -> level 3.
        assert_eq!(Throughput::new().choose(&observation(&video, &history)), 3);
    }

    #[test]
    fn ewma_of_constant_samples_is_that_constant() {
        let mut ewma = Ewma::new(3.0);
        ewma.sample(1.5, 800.0);
        ewma.sample(0.5, 800.0);
        assert!((ewma.get() - 800.0).abs() < 1e-9);
    }
}
