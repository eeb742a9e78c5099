//! reel's own ABR algorithm: RobustMPC's predictor with a planner that values the buffer it
//! leaves behind and knows when the video ends.
//!
//! Each decision predicts throughput as the harmonic mean of the last 5 chunk throughputs
//! divided by `1 + max relative prediction error over the last 5 chunks` (RobustMPC's predictor),
//! then searches all level sequences over the next 5 chunks like RobustMPC, with two changes:
//!
//! * the plan is charged `PLANNED_REBUFFER_PENALTY` (6) per second of predicted stall instead of
//!   4.3, because predicted stalls underestimate real ones on volatile links;
//! * while chunks remain after the horizon, the plan earns `TERMINAL_VALUE_PER_SEC` (1 per
//!   second) for the buffer it leaves, up to `TERMINAL_BUFFER_CAP_SECS` (12 s). RobustMPC's
//!   short horizon otherwise spends the buffer at its end as if the video stopped there; near
//!   the real end of the video the term is dropped, so leftover buffer is worth nothing.
//!
//! The constants were chosen by a grid search on the training folders only (`fcc/train` and
//! `hsdpa/train`), maximising the sum of the gains in mean QoE_lin over RobustMPC on the two
//! folders. The algorithm never sees which trace it plays.

use crate::mpc::{best_first_level, PlanRequest, RobustPredictor, TerminalValue};
use crate::player::{Algorithm, Observation};

/// Past chunk throughputs in the harmonic mean.
const THROUGHPUT_WINDOW: usize = 5;
/// Past prediction errors whose maximum discounts the prediction.
const ERROR_WINDOW: usize = 5;
/// Number of future chunks planned.
const HORIZON: usize = 5;
/// QoE charged per second of predicted stall in the plan.
const PLANNED_REBUFFER_PENALTY: f64 = 6.0;
/// QoE credited per second of buffer left at the end of the horizon.
const TERMINAL_VALUE_PER_SEC: f64 = 1.0;
/// Buffer above this level earns no terminal credit.
const TERMINAL_BUFFER_CAP_SECS: f64 = 12.0;

/// reel's ABR algorithm (name `reel`).
#[derive(Debug, Clone, Default)]
pub struct Reel {
    predictor: RobustPredictor,
}

impl Reel {
    /// A fresh instance with no throughput history.
    pub fn new() -> Reel {
        Reel::default()
    }
}

impl Algorithm for Reel {
    fn name(&self) -> &str {
        "reel"
    }

    fn reset(&mut self) {
        self.predictor.reset();
    }

    fn choose(&mut self, obs: &Observation) -> usize {
        let bandwidth_mbyte_per_s = self.predictor.predict(obs, THROUGHPUT_WINDOW, ERROR_WINDOW);
        let horizon = HORIZON.min(obs.n_remaining());
        let chunks_after_horizon = obs.n_remaining() > horizon;
        let plan = PlanRequest {
            video: obs.video,
            first_size_idx: obs.next_chunk_idx,
            horizon,
            start_buffer_secs: obs.buffer_secs(),
            last_level_idx: obs.last_level_idx(),
            bandwidth_mbyte_per_s,
            rebuffer_penalty: PLANNED_REBUFFER_PENALTY,
            terminal: chunks_after_horizon.then_some(TerminalValue {
                per_sec: TERMINAL_VALUE_PER_SEC,
                cap_secs: TERMINAL_BUFFER_CAP_SECS,
            }),
        };
        best_first_level(&plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::player::tests::{ladder_video, observation, record};

    #[test]
    fn reel_follows_the_link_and_resets() {
        let video = ladder_video();
        let mut reel = Reel::new();
        let fast_history = [record(&video, 3, 100_000.0, 20.0)];
        assert_eq!(reel.choose(&observation(&video, &fast_history)), 5);
        reel.reset();
        // After a reset it decides as a fresh instance does.
        let probe_history = [record(&video, 2, 5_000.0, 2.0)];
        assert_eq!(
            reel.clone().choose(&observation(&video, &probe_history)),
            Reel::new().choose(&observation(&video, &probe_history))
        );
        let slow_history = [record(&video, 3, 100.0, 1.0)];
        assert_eq!(reel.choose(&observation(&video, &slow_history)), 0);
        assert_eq!(reel.name(), "reel");
    }
}
