//! Running an algorithm (or the offline optimum) over a set of traces and summarising the scores.

use crate::optimum;
use crate::player::Algorithm;
use crate::sim::{simulate, Session, SessionScore, Setup};
use crate::trace::Trace;

/// Scores of one policy over a set of traces.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// One score per trace, in input order.
    pub per_trace: Vec<SessionScore>,
    /// Mean QoE over traces.
    pub mean_qoe: f64,
    /// Half-width of the 95 % confidence interval of the mean QoE (1.96 × standard error).
    pub qoe_ci95: f64,
    /// Mean over traces of the mean bitrate, in kbit/s.
    pub mean_bitrate_kbps: f64,
    /// Mean over traces of the total stall, in seconds.
    pub mean_rebuffer_secs: f64,
    /// Mean over traces of the number of switches.
    pub mean_switches: f64,
}

/// Plays `algorithm` on every trace and summarises the scores under `setup`'s metric.
pub fn evaluate(setup: &Setup, traces: &[Trace], algorithm: &mut dyn Algorithm) -> Evaluation {
    let sessions = traces.iter().map(|trace| simulate(setup, trace, algorithm));
    summarise(setup, sessions)
}

/// Plans the offline optimum on every trace and summarises the scores under `setup`'s metric.
pub fn evaluate_optimum(setup: &Setup, traces: &[Trace]) -> Evaluation {
    let sessions = traces.iter().map(|trace| optimum::optimal(setup, trace));
    summarise(setup, sessions)
}

fn summarise(setup: &Setup, sessions: impl Iterator<Item = Session>) -> Evaluation {
    let per_trace: Vec<SessionScore> = sessions.map(|session| session.score(setup)).collect();
    let n_traces = per_trace.len().max(1) as f64;
    let mean =
        |value: fn(&SessionScore) -> f64| per_trace.iter().map(value).sum::<f64>() / n_traces;
    let mean_qoe = mean(|score| score.qoe);
    let variance = if per_trace.len() > 1 {
        per_trace
            .iter()
            .map(|score| (score.qoe - mean_qoe).powi(2))
            .sum::<f64>()
            / (n_traces - 1.0)
    } else {
        0.0
    };
    Evaluation {
        qoe_ci95: 1.96 * (variance / n_traces).sqrt(),
        mean_qoe,
        mean_bitrate_kbps: mean(|score| score.mean_bitrate_kbps),
        mean_rebuffer_secs: mean(|score| score.rebuffer.as_secs_f64()),
        mean_switches: mean(|score| score.n_switches as f64),
        per_trace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bb::BufferBased;
    use crate::player::tests::ladder_video;
    use crate::qoe::QoeMetric;
    use crate::sim::SimConfig;

    #[test]
    fn summarises_identical_traces_with_zero_interval() {
        let config = SimConfig {
            n_chunks: 10,
            ..SimConfig::pensieve()
        };
        let setup = Setup::new(ladder_video(), config, QoeMetric::Linear).expect("valid setup");
        let trace = Trace::new(vec![0.0, 1000.0], vec![3.0, 3.0]).expect("valid trace");
        let traces = vec![trace.clone(), trace];
        let evaluation = evaluate(&setup, &traces, &mut BufferBased);
        assert_eq!(evaluation.per_trace.len(), 2);
        assert_eq!(evaluation.per_trace[0], evaluation.per_trace[1]);
        assert!((evaluation.mean_qoe - evaluation.per_trace[0].qoe).abs() < 1e-12);
        assert_eq!(evaluation.qoe_ci95, 0.0);
        let optimum = evaluate_optimum(&setup, &traces);
        assert!(optimum.mean_qoe >= evaluation.mean_qoe);
    }
}
