//! Buffer-based algorithm BB, as Pensieve's `test/bb.py` (reservoir 5 s, cushion 10 s).

use crate::player::{Algorithm, Observation};

/// Below this buffer level BB plays the lowest level.
const RESERVOIR_SECS: f64 = 5.0;
/// Over this many seconds above the reservoir BB ramps linearly to the top level.
const CUSHION_SECS: f64 = 10.0;

/// Buffer-based rate selection: level = ⌊(levels − 1) · (buffer − reservoir) / cushion⌋, clamped.
#[derive(Debug, Clone, Default)]
pub struct BufferBased;

impl Algorithm for BufferBased {
    fn name(&self) -> &str {
        "bb"
    }

    fn reset(&mut self) {}

    fn choose(&mut self, obs: &Observation) -> usize {
        let top_level_idx = obs.video.n_levels() - 1;
        let buffer_secs = obs.buffer_secs();
        if buffer_secs < RESERVOIR_SECS {
            0
        } else if buffer_secs >= RESERVOIR_SECS + CUSHION_SECS {
            top_level_idx
        } else {
            // Same operation order as bb.py: (A_DIM - 1) * (buffer - RESEVOIR) / CUSHION, then int().
            (top_level_idx as f64 * (buffer_secs - RESERVOIR_SECS) / CUSHION_SECS) as usize
        }
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
            BufferBased.choose(&observation(&video, &history)),
            expected_level_idx,
            "buffer {buffer_secs}"
        );
    }

    #[test]
    fn maps_buffer_to_level_through_reservoir_and_cushion() {
        check(0.0, 0);
        check(4.99, 0);
        check(5.0, 0);
        // 5 * (7 - 5) / 10 = 1.0 -> level 1.
        check(7.0, 1);
        // 5 * (14.9 - 5) / 10 = 4.95 -> level 4.
        check(14.9, 4);
        check(15.0, 5);
        check(60.0, 5);
    }
}
