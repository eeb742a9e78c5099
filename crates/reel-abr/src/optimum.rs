//! Offline optimum: dynamic programming over (chunk, level, trace time) with full trace knowledge.
//!
//! Like Pensieve's `test/dp.cc` the search runs on a 0.05 s grid, here on the position in the
//! trace. Each grid cell keeps the exact simulator state of the best path reaching it (not the
//! cell centre), so the returned plan is a real session of the exact simulator and its score is
//! achievable. Cells do not include the buffer level: within one cell the path with the higher
//! reward wins even if it holds less buffer. That keeps the search to about 0.5 s per trace in
//! release builds. The result is not a proof of optimality; on the 242 test traces it scores at
//! least as well as every algorithm of this crate on every trace.

use std::collections::HashMap;

use crate::sim::{replay, Link, Session, Setup};
use crate::trace::Trace;

/// Grid step on trace time, in seconds.
const TIME_STEP_SECS: f64 = 0.05;

/// The best session found by the DP on `trace` under `setup`'s metric.
pub fn optimal(setup: &Setup, trace: &Trace) -> Session {
    let video = setup.video();
    let metric = setup.metric();
    let n_chunks = setup.config().n_chunks;
    let mut link = Link::start(trace);
    let first_level_idx = setup.config().first_level_idx;
    link.download(setup, 0, first_level_idx);
    let mut stages: Vec<Vec<Node>> = vec![vec![Node {
        link,
        reward: 0.0,
        level_idx: first_level_idx,
        parent_idx: 0,
    }]];
    let mut index: HashMap<(usize, i64), usize> = HashMap::new();
    for chunk_idx in 1..n_chunks {
        index.clear();
        let mut next_stage: Vec<Node> = Vec::new();
        let stage = &stages[chunk_idx - 1];
        for (parent_idx, parent) in stage.iter().enumerate() {
            for level_idx in 0..video.n_levels() {
                let mut link = parent.link;
                let record = link.download(setup, chunk_idx, level_idx);
                let reward = parent.reward
                    + metric.chunk_reward(
                        video,
                        level_idx,
                        parent.level_idx,
                        record.rebuffer_ms / 1000.0,
                    );
                let (_, trace_time) = link.trace_time();
                let key = (level_idx, (trace_time / TIME_STEP_SECS).floor() as i64);
                let node = Node {
                    link,
                    reward,
                    level_idx,
                    parent_idx,
                };
                match index.get(&key) {
                    Some(&existing_idx) => {
                        if reward > next_stage[existing_idx].reward {
                            next_stage[existing_idx] = node;
                        }
                    }
                    None => {
                        index.insert(key, next_stage.len());
                        next_stage.push(node);
                    }
                }
            }
        }
        stages.push(next_stage);
    }
    let last_stage = stages
        .last()
        .expect("at least the first chunk's stage exists");
    let mut node_idx = (0..last_stage.len())
        .max_by(|&a, &b| last_stage[a].reward.total_cmp(&last_stage[b].reward))
        .expect("every stage has at least one node");
    let mut levels = vec![0; n_chunks];
    for chunk_idx in (0..n_chunks).rev() {
        let node = &stages[chunk_idx][node_idx];
        levels[chunk_idx] = node.level_idx;
        node_idx = node.parent_idx;
    }
    replay(setup, trace, &levels)
}

#[derive(Clone, Copy)]
struct Node<'a> {
    link: Link<'a>,
    reward: f64,
    level_idx: usize,
    parent_idx: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::player::tests::ladder_video;
    use crate::player::tests::Fixed;
    use crate::qoe::QoeMetric;
    use crate::sim::{simulate, SimConfig};

    #[test]
    fn optimum_beats_every_fixed_level_on_a_varying_trace() {
        let config = SimConfig {
            n_chunks: 10,
            ..SimConfig::pensieve()
        };
        let setup = Setup::new(ladder_video(), config, QoeMetric::Linear).expect("valid setup");
        // Alternating 0.5 and 4 Mbit/s every 3 s.
        let times: Vec<f64> = (0..40).map(|idx| idx as f64 * 3.0).collect();
        let mbps: Vec<f64> = (0..40)
            .map(|idx| if idx % 2 == 0 { 0.5 } else { 4.0 })
            .collect();
        let trace = Trace::new(times, mbps).expect("valid trace");
        let optimum = optimal(&setup, &trace);
        assert_eq!(optimum.records.len(), 10);
        let optimum_qoe = optimum.score(&setup).qoe;
        for level_idx in 0..6 {
            let fixed_qoe = simulate(&setup, &trace, &mut Fixed(level_idx))
                .score(&setup)
                .qoe;
            assert!(
                optimum_qoe >= fixed_qoe,
                "level {level_idx}: {fixed_qoe} > {optimum_qoe}"
            );
        }
    }
}
