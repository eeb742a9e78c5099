//! BOLA-basic as in dash.js `BolaRule.js`: Lyapunov utility maximisation driven by the buffer level.
//!
//! Utilities are `ln(R_m / R_0) + 1` over the nominal bitrates `R_m`, and scores divide by `R_m`,
//! exactly as dash.js (a size-based utility `ln(S_m / S_0)` on the next chunk's sizes was tried
//! and does not reproduce the reference scores, while this form matches them on every test
//! trace). The control parameters follow dash.js: the buffer target is
//! `max(buffer at top quality 30 s, 10 s + 2 s × levels)`, `gp = (u_max − 1) / (target / 10 s − 1)`
//! and `V = 10 s / gp`, so BOLA picks the lowest level at 10 s of buffer and the top one at the
//! target.

use crate::player::{Algorithm, Observation};

/// dash.js `MINIMUM_BUFFER_S`.
const MINIMUM_BUFFER_SECS: f64 = 10.0;
/// dash.js `MINIMUM_BUFFER_PER_BITRATE_LEVEL_S`.
const BUFFER_PER_LEVEL_SECS: f64 = 2.0;
/// dash.js default `bufferTimeAtTopQuality`, the stable buffer time BOLA uses for VoD.
const STABLE_BUFFER_SECS: f64 = 30.0;

/// BOLA-basic (no placeholder buffer, no insufficient-buffer rule).
#[derive(Debug, Clone, Default)]
pub struct Bola;

impl Algorithm for Bola {
    fn name(&self) -> &str {
        "bola"
    }

    fn reset(&mut self) {}

    fn choose(&mut self, obs: &Observation) -> usize {
        let video = obs.video;
        let n_levels = video.n_levels();
        let bitrates: Vec<f64> = (0..n_levels)
            .map(|level_idx| video.ladder()[level_idx].kbps() as f64)
            .collect();
        let utilities: Vec<f64> = bitrates
            .iter()
            .map(|kbps| (kbps / bitrates[0]).ln() + 1.0)
            .collect();
        let top_utility = utilities.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if top_utility <= 1.0 {
            return 0;
        }
        let buffer_target_secs =
            STABLE_BUFFER_SECS.max(MINIMUM_BUFFER_SECS + BUFFER_PER_LEVEL_SECS * n_levels as f64);
        let gp = (top_utility - 1.0) / (buffer_target_secs / MINIMUM_BUFFER_SECS - 1.0);
        let v = MINIMUM_BUFFER_SECS / gp;
        let buffer_secs = obs.buffer_secs();
        let mut best_level_idx = 0;
        let mut best_score = f64::NEG_INFINITY;
        for (level_idx, (&utility, &kbps)) in utilities.iter().zip(&bitrates).enumerate() {
            let score = (v * (utility + gp) - buffer_secs) / kbps;
            if score >= best_score {
                best_score = score;
                best_level_idx = level_idx;
            }
        }
        best_level_idx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::player::tests::{ladder_video, observation, record};

    fn check(buffer_secs: f64, expected_level_idx: usize) {
        let video = ladder_video();
        let history = [record(&video, 1, 1000.0, buffer_secs)];
        assert_eq!(
            Bola.choose(&observation(&video, &history)),
            expected_level_idx,
            "buffer {buffer_secs}"
        );
    }

    #[test]
    fn climbs_the_ladder_as_the_buffer_grows() {
        // Target = max(30, 10 + 2 × 6) = 30 s: lowest level up to 10 s, top level from 30 s.
        check(2.0, 0);
        check(10.0, 0);
        check(30.0, 5);
        check(45.0, 5);
        let video = ladder_video();
        let levels: Vec<usize> = (0..=30)
            .map(|secs| {
                Bola.choose(&observation(
                    &video,
                    &[record(&video, 1, 1000.0, secs as f64)],
                ))
            })
            .collect();
        assert!(
            levels.windows(2).all(|pair| pair[0] <= pair[1]),
            "{levels:?}"
        );
    }
}
