//! A network throughput trace in the Pensieve "cooked" form: timestamps and link throughput.

/// Why a [`Trace`] could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TraceError {
    /// Fewer than two samples: the first sample's throughput is never used, so nothing would be left.
    #[error("trace has {n_samples} samples; at least 2 are needed")]
    TooShort {
        /// Number of samples found.
        n_samples: usize,
    },
    /// Timestamps and throughputs have different lengths.
    #[error("{n_times} timestamps but {n_throughputs} throughput values")]
    LengthMismatch {
        /// Number of timestamps.
        n_times: usize,
        /// Number of throughput values.
        n_throughputs: usize,
    },
    /// A timestamp is negative, not finite, or smaller than the one before it.
    #[error("timestamp {time} at sample {sample_idx} is negative, not finite, or decreasing")]
    BadTimestamp {
        /// Index of the sample.
        sample_idx: usize,
        /// The offending value.
        time: f64,
    },
    /// A throughput is negative or not finite.
    #[error("throughput {mbps} Mbit/s at sample {sample_idx} is negative or not finite")]
    BadThroughput {
        /// Index of the sample.
        sample_idx: usize,
        /// The offending value.
        mbps: f64,
    },
    /// One pass through the trace delivers no data, so a download would never finish.
    #[error("trace delivers no data in a full pass; a download would never finish")]
    NoCapacity,
}

/// A validated throughput trace.
///
/// Sample `i` says the link delivered `mbps[i]` Mbit/s during `(times[i-1], times[i]]`; the
/// throughput of sample 0 is never used. Invariants: at least two samples, finite non-negative
/// non-decreasing timestamps, finite non-negative throughputs, and a positive amount of data
/// delivered over one pass (so the simulator, which loops the trace, always terminates).
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    times: Vec<f64>,
    mbps: Vec<f64>,
}

impl Trace {
    /// Validates and builds a trace from timestamps (seconds) and throughputs (Mbit/s).
    pub fn new(times: Vec<f64>, mbps: Vec<f64>) -> Result<Trace, TraceError> {
        if times.len() != mbps.len() {
            return Err(TraceError::LengthMismatch {
                n_times: times.len(),
                n_throughputs: mbps.len(),
            });
        }
        if times.len() < 2 {
            return Err(TraceError::TooShort {
                n_samples: times.len(),
            });
        }
        for (sample_idx, &time) in times.iter().enumerate() {
            let decreasing = sample_idx > 0 && time < times[sample_idx - 1];
            if !time.is_finite() || time < 0.0 || decreasing {
                return Err(TraceError::BadTimestamp { sample_idx, time });
            }
        }
        if let Some(sample_idx) = mbps.iter().position(|v| !v.is_finite() || *v < 0.0) {
            return Err(TraceError::BadThroughput {
                sample_idx,
                mbps: mbps[sample_idx],
            });
        }
        // After the first pass the simulator restarts at time 0 with sample 1, so sample 1
        // covers (0, times[1]] from then on; count the data of that repeating pass.
        let first_span = times[1] * mbps[1];
        let rest: f64 = (2..times.len())
            .map(|idx| (times[idx] - times[idx - 1]) * mbps[idx])
            .sum();
        if first_span + rest <= 0.0 {
            return Err(TraceError::NoCapacity);
        }
        Ok(Trace { times, mbps })
    }

    /// Sample timestamps in seconds.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// Sample throughputs in Mbit/s.
    pub fn mbps(&self) -> &[f64] {
        &self.mbps
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Always false: a trace has at least two samples.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_invalid_traces() {
        assert_eq!(
            Trace::new(vec![0.0], vec![1.0]),
            Err(TraceError::TooShort { n_samples: 1 })
        );
        assert_eq!(
            Trace::new(vec![0.0, 1.0], vec![1.0]),
            Err(TraceError::LengthMismatch {
                n_times: 2,
                n_throughputs: 1
            })
        );
        assert_eq!(
            Trace::new(vec![0.0, 2.0, 1.0], vec![1.0, 1.0, 1.0]),
            Err(TraceError::BadTimestamp {
                sample_idx: 2,
                time: 1.0
            })
        );
        assert_eq!(
            Trace::new(vec![0.0, 1.0], vec![1.0, -1.0]),
            Err(TraceError::BadThroughput {
                sample_idx: 1,
                mbps: -1.0
            })
        );
        assert_eq!(
            Trace::new(vec![0.0, 1.0], vec![5.0, 0.0]),
            Err(TraceError::NoCapacity)
        );
    }

    #[test]
    fn accepts_valid_trace() {
        let trace = Trace::new(vec![0.0, 1.0, 2.0], vec![0.0, 1.0, 0.5]).expect("valid trace");
        assert_eq!(trace.len(), 3);
        assert!(!trace.is_empty());
    }
}
