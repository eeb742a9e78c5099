//! QoE metrics of the Pensieve paper: linear, logarithmic and HD reward.

use crate::video::Video;

/// The reward of the HD metric for each level, lowest first (`BITRATE_REWARD` in Pensieve).
const HD_REWARDS: [f64; 6] = [1.0, 2.0, 3.0, 12.0, 15.0, 20.0];

/// A QoE metric: per chunk `q(R_n) − μ·rebuffer_n − |q(R_n) − q(R_{n−1})|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QoeMetric {
    /// QoE_lin: `q(R)` is the bitrate in Mbit/s, μ = 4.3.
    Linear,
    /// QoE_log: `q(R) = ln(R / R_lowest)`, μ = 2.66.
    Log,
    /// QoE_hd: `q` is 1, 2, 3, 12, 15, 20 by level (levels above 5 score 20), μ = 8.
    Hd,
}

impl QoeMetric {
    /// The utility `q` of playing level `level_idx` of `video`.
    pub fn utility(self, video: &Video, level_idx: usize) -> f64 {
        let ladder = video.ladder();
        let level_idx = level_idx.min(ladder.len() - 1);
        match self {
            QoeMetric::Linear => ladder[level_idx].kbps() as f64 / 1000.0,
            QoeMetric::Log => (ladder[level_idx].kbps() as f64 / ladder[0].kbps() as f64).ln(),
            QoeMetric::Hd => HD_REWARDS[level_idx.min(HD_REWARDS.len() - 1)],
        }
    }

    /// Penalty μ per second of rebuffering.
    pub fn rebuffer_penalty(self) -> f64 {
        match self {
            QoeMetric::Linear => 4.3,
            QoeMetric::Log => 2.66,
            QoeMetric::Hd => 8.0,
        }
    }

    /// Reward of one chunk at `level_idx` after `last_level_idx`, with `rebuffer_secs` of stall.
    pub fn chunk_reward(
        self,
        video: &Video,
        level_idx: usize,
        last_level_idx: usize,
        rebuffer_secs: f64,
    ) -> f64 {
        let utility = self.utility(video, level_idx);
        let last_utility = self.utility(video, last_level_idx);
        utility - self.rebuffer_penalty() * rebuffer_secs - (utility - last_utility).abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::Bitrate;
    use std::time::Duration;

    fn envivio_like() -> Video {
        let ladder = [300, 750, 1200, 1850, 2850, 4300]
            .iter()
            .map(|&k| Bitrate::from_kbps(k))
            .collect();
        Video::new(ladder, vec![vec![1]; 6], Duration::from_secs(4)).expect("valid video")
    }

    #[test]
    fn chunk_rewards_match_definitions() {
        let video = envivio_like();
        let lin = QoeMetric::Linear.chunk_reward(&video, 2, 1, 0.5);
        assert!((lin - (1.2 - 4.3 * 0.5 - 0.45)).abs() < 1e-12);
        let log = QoeMetric::Log.chunk_reward(&video, 0, 0, 1.0);
        assert!((log - -2.66).abs() < 1e-12);
        let hd = QoeMetric::Hd.chunk_reward(&video, 5, 3, 0.0);
        assert!((hd - 12.0).abs() < 1e-12);
    }
}
