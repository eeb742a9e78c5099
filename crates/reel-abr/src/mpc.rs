//! RobustMPC, a port of Pensieve's `test/mpc.py`: horizon 5, harmonic-mean throughput discounted
//! by the largest recent prediction error, and an exhaustive search over all level sequences.

use crate::player::{Algorithm, Observation};
use crate::video::Video;

/// Number of future chunks planned.
const HORIZON: usize = 5;
/// Number of past throughputs in the harmonic mean and of past errors in the discount.
const WINDOW: usize = 5;
/// Rebuffer penalty of QoE_lin, which `mpc.py` optimises.
const REBUF_PENALTY: f64 = 4.3;

/// Which chunk sizes the planner uses for the chunk it is about to request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkIndexing {
    /// Plans chunk n with the sizes of chunks n, n+1, ….
    Aligned,
    /// Pensieve's off-by-one (`mpc.py` line 199): plans chunk n with the sizes of chunks n+1, ….
    PensieveSlip,
}

/// RobustMPC as in `mpc.py`, with the prediction-error history reset at every session.
#[derive(Debug, Clone)]
pub struct RobustMpc {
    indexing: ChunkIndexing,
    predictor: RobustPredictor,
}

/// RobustMPC's throughput predictor: the harmonic mean of the last `window` chunk throughputs,
/// divided by `1 + the largest relative prediction error of the last `window` chunks`.
#[derive(Debug, Clone, Default)]
pub(crate) struct RobustPredictor {
    past_errors: Vec<f64>,
    past_bandwidth_ests: Vec<f64>,
}

impl RobustPredictor {
    /// Forgets the history (a new session).
    pub(crate) fn reset(&mut self) {
        self.past_errors.clear();
        self.past_bandwidth_ests.clear();
    }

    /// Scores the previous prediction against the last chunk and predicts the next throughput in MB/s.
    pub(crate) fn predict(
        &mut self,
        obs: &Observation,
        throughput_window: usize,
        error_window: usize,
    ) -> f64 {
        let actual = obs.last().throughput_mbyte_per_s();
        let curr_error = match self.past_bandwidth_ests.last() {
            Some(&last_est) => (last_est - actual).abs() / actual,
            None => 0.0,
        };
        self.past_errors.push(curr_error);
        let harmonic = harmonic_mean_throughput(obs, throughput_window);
        let error_start = self.past_errors.len().saturating_sub(error_window);
        // Errors are never negative, so folding from zero equals mpc.py's max().
        let max_error = self.past_errors[error_start..]
            .iter()
            .copied()
            .fold(0.0, f64::max);
        self.past_bandwidth_ests.push(harmonic);
        harmonic / (1.0 + max_error)
    }
}

impl RobustMpc {
    /// RobustMPC using the sizes of the chunks it actually plans (name `rmpc`).
    pub fn new() -> RobustMpc {
        RobustMpc::with_indexing(ChunkIndexing::Aligned)
    }

    /// RobustMPC with the given chunk indexing (`rmpc` or `rmpc-p`).
    pub fn with_indexing(indexing: ChunkIndexing) -> RobustMpc {
        RobustMpc {
            indexing,
            predictor: RobustPredictor::default(),
        }
    }
}

impl Default for RobustMpc {
    fn default() -> RobustMpc {
        RobustMpc::new()
    }
}

impl Algorithm for RobustMpc {
    fn name(&self) -> &str {
        match self.indexing {
            ChunkIndexing::Aligned => "rmpc",
            ChunkIndexing::PensieveSlip => "rmpc-p",
        }
    }

    fn reset(&mut self) {
        self.predictor.reset();
    }

    fn choose(&mut self, obs: &Observation) -> usize {
        let future_bandwidth = self.predictor.predict(obs, WINDOW, WINDOW);
        let first_size_idx = match self.indexing {
            ChunkIndexing::Aligned => obs.next_chunk_idx,
            ChunkIndexing::PensieveSlip => obs.next_chunk_idx + 1,
        };
        let plan = PlanRequest {
            video: obs.video,
            first_size_idx,
            horizon: HORIZON.min(obs.n_remaining()),
            start_buffer_secs: obs.buffer_secs(),
            last_level_idx: obs.last_level_idx(),
            bandwidth_mbyte_per_s: future_bandwidth,
            rebuffer_penalty: REBUF_PENALTY,
            terminal: None,
        };
        best_first_level(&plan)
    }
}

/// Harmonic mean of the last `window` chunk throughputs in MB/s, summed oldest first like `mpc.py`.
pub(crate) fn harmonic_mean_throughput(obs: &Observation, window: usize) -> f64 {
    let start = obs.history.len().saturating_sub(window);
    let samples = &obs.history[start..];
    let mut inverse_sum = 0.0;
    for record in samples {
        inverse_sum += 1.0 / record.throughput_mbyte_per_s();
    }
    1.0 / (inverse_sum / samples.len() as f64)
}

/// Inputs of the exhaustive `mpc.py` search.
pub(crate) struct PlanRequest<'a> {
    pub(crate) video: &'a Video,
    /// Index of the chunk whose sizes the first planned download uses.
    pub(crate) first_size_idx: usize,
    pub(crate) horizon: usize,
    pub(crate) start_buffer_secs: f64,
    pub(crate) last_level_idx: usize,
    pub(crate) bandwidth_mbyte_per_s: f64,
    /// QoE lost per second of planned stall.
    pub(crate) rebuffer_penalty: f64,
    /// Value given to the buffer left at the end of the horizon; `None` values it at zero.
    pub(crate) terminal: Option<TerminalValue>,
}

/// Value of the buffer left at the end of a plan: `per_sec × min(buffer, cap_secs)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TerminalValue {
    pub(crate) per_sec: f64,
    pub(crate) cap_secs: f64,
}

/// Level of the first chunk of the best plan; among equal plans the lexicographically last wins,
/// as with `mpc.py`'s `reward >= max_reward` over `itertools.product` order.
pub(crate) fn best_first_level(plan: &PlanRequest) -> usize {
    let mut best = Best {
        reward: -100_000_000.0,
        first_level_idx: 0,
    };
    if plan.horizon == 0 {
        return 0;
    }
    let start = Partial {
        buffer_secs: plan.start_buffer_secs,
        rebuffer_secs: 0.0,
        bitrate_sum_kbps: 0,
        smoothness_kbps: 0,
        last_level_idx: plan.last_level_idx,
    };
    search(plan, 0, None, start, &mut best);
    best.first_level_idx
}

struct Best {
    reward: f64,
    first_level_idx: usize,
}

#[derive(Clone, Copy)]
struct Partial {
    buffer_secs: f64,
    rebuffer_secs: f64,
    bitrate_sum_kbps: i64,
    smoothness_kbps: i64,
    last_level_idx: usize,
}

fn search(
    plan: &PlanRequest,
    depth: usize,
    first_level_idx: Option<usize>,
    partial: Partial,
    best: &mut Best,
) {
    if depth == plan.horizon {
        let mut reward = partial.bitrate_sum_kbps as f64 / 1000.0
            - plan.rebuffer_penalty * partial.rebuffer_secs
            - partial.smoothness_kbps as f64 / 1000.0;
        if let Some(terminal) = plan.terminal {
            reward += terminal.per_sec * partial.buffer_secs.min(terminal.cap_secs);
        }
        if reward >= best.reward {
            best.reward = reward;
            best.first_level_idx = first_level_idx.unwrap_or(0);
        }
        return;
    }
    let video = plan.video;
    let chunk_secs = video.chunk_duration().as_secs_f64();
    let size_idx = plan.first_size_idx + depth;
    for level_idx in 0..video.n_levels() {
        // `get_chunk_size` returns 0 past the end of the size table.
        let size = video.chunk_size(level_idx, size_idx).unwrap_or(0);
        let download_secs = (size as f64 / 1_000_000.0) / plan.bandwidth_mbyte_per_s;
        let mut next = partial;
        if next.buffer_secs < download_secs {
            next.rebuffer_secs += download_secs - next.buffer_secs;
            next.buffer_secs = 0.0;
        } else {
            next.buffer_secs -= download_secs;
        }
        next.buffer_secs += chunk_secs;
        let kbps = video.ladder()[level_idx].kbps() as i64;
        let last_kbps = video.ladder()[partial.last_level_idx].kbps() as i64;
        next.bitrate_sum_kbps += kbps;
        next.smoothness_kbps += (kbps - last_kbps).abs();
        next.last_level_idx = level_idx;
        search(
            plan,
            depth + 1,
            Some(first_level_idx.unwrap_or(level_idx)),
            next,
            best,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::player::tests::{ladder_video, observation, record};

    fn plan(
        video: &Video,
        last_level_idx: usize,
        buffer_secs: f64,
        mbyte_per_s: f64,
    ) -> PlanRequest<'_> {
        PlanRequest {
            video,
            first_size_idx: 1,
            horizon: HORIZON,
            start_buffer_secs: buffer_secs,
            last_level_idx,
            bandwidth_mbyte_per_s: mbyte_per_s,
            rebuffer_penalty: REBUF_PENALTY,
            terminal: None,
        }
    }

    #[test]
    fn plans_top_level_on_a_fast_link_and_bottom_on_a_slow_one() {
        let video = ladder_video();
        assert_eq!(best_first_level(&plan(&video, 5, 10.0, 100.0)), 5);
        assert_eq!(best_first_level(&plan(&video, 0, 0.0, 0.01)), 0);
    }

    #[test]
    fn keeps_the_lexicographically_last_tied_plan() {
        // Horizon 1 after level 1 (2 Mbit/s) on a fast link: every level q >= 1 scores
        // q - (q - 2) = 2 exactly (whole Mbit/s keep the float arithmetic exact). `mpc.py` keeps
        // the last tied plan, so the answer is the top level.
        let ladder = [1000, 2000, 3000, 4000]
            .iter()
            .map(|&kbps| crate::video::Bitrate::from_kbps(kbps))
            .collect();
        let sizes = [1000, 2000, 3000, 4000]
            .iter()
            .map(|&kbps| vec![kbps * 500; 4])
            .collect();
        let video =
            Video::new(ladder, sizes, std::time::Duration::from_secs(4)).expect("valid video");
        let request = PlanRequest {
            horizon: 1,
            ..plan(&video, 1, 10.0, 100.0)
        };
        assert_eq!(best_first_level(&request), 3);
    }

    #[test]
    fn robust_mpc_follows_the_link() {
        let video = ladder_video();
        let fast_history = [record(&video, 3, 100_000.0, 20.0)];
        assert_eq!(
            RobustMpc::new().choose(&observation(&video, &fast_history)),
            5
        );
        // 100 kbit/s with 1 s of buffer: even level 0 stalls, and every higher level stalls more.
        let slow_history = [record(&video, 3, 100.0, 1.0)];
        assert_eq!(
            RobustMpc::new().choose(&observation(&video, &slow_history)),
            0
        );
        assert_eq!(RobustMpc::new().name(), "rmpc");
        assert_eq!(
            RobustMpc::with_indexing(ChunkIndexing::PensieveSlip).name(),
            "rmpc-p"
        );
    }
}
