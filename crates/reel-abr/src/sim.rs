//! Trace-driven session simulator, a port of Pensieve's `sim/fixed_env.py`, and session scoring.
//!
//! Arithmetic follows the reference line by line (milliseconds as `f64`, the same order of
//! operations), so deterministic policies reproduce its per-trace scores to about 1e-9.

use std::time::Duration;

use crate::link::{PlayerBuffer, TraceLink};
use crate::player::{Algorithm, ChunkRecord, Observation};
use crate::qoe::QoeMetric;
use crate::trace::Trace;
use crate::video::Video;

/// Parameters of the simulated player and link.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Number of chunks played per session (48 in Pensieve).
    pub n_chunks: usize,
    /// Buffer cap; above it the player sleeps (60 s).
    pub buffer_cap: Duration,
    /// Sleep granularity when draining the buffer down to the cap (500 ms).
    pub drain_step: Duration,
    /// Round-trip time added to every download (80 ms).
    pub rtt: Duration,
    /// Fraction of the link throughput that carries payload (0.95).
    pub payload_fraction: f64,
    /// Level of the first chunk, which no algorithm chooses (1).
    pub first_level_idx: usize,
}

impl SimConfig {
    /// The parameters of Pensieve's `fixed_env.py` and `test/*.py`.
    pub fn pensieve() -> SimConfig {
        SimConfig {
            n_chunks: 48,
            buffer_cap: Duration::from_secs(60),
            drain_step: Duration::from_millis(500),
            rtt: Duration::from_millis(80),
            payload_fraction: 0.95,
            first_level_idx: 1,
        }
    }
}

/// Why a [`Setup`] is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SetupError {
    /// The session wants more chunks than the video has, or none.
    #[error("session plays {n_chunks} chunks but the video has {n_video_chunks}; use 1..={n_video_chunks}")]
    BadChunkCount {
        /// Requested chunks per session.
        n_chunks: usize,
        /// Chunks in the video.
        n_video_chunks: usize,
    },
    /// The first level is not in the ladder.
    #[error("first level {level_idx} is not in the {n_levels}-level ladder")]
    BadFirstLevel {
        /// The requested level.
        level_idx: usize,
        /// Levels in the ladder.
        n_levels: usize,
    },
    /// The payload fraction is not in (0, 1].
    #[error("payload fraction {0} must be in (0, 1]")]
    BadPayloadFraction(f64),
    /// The drain step is zero.
    #[error("drain step must be positive")]
    ZeroDrainStep,
}

/// A validated combination of video, simulator parameters and QoE metric.
#[derive(Debug, Clone)]
pub struct Setup {
    video: Video,
    config: SimConfig,
    metric: QoeMetric,
}

impl Setup {
    /// Checks that `config` fits `video` and builds the setup.
    pub fn new(video: Video, config: SimConfig, metric: QoeMetric) -> Result<Setup, SetupError> {
        if config.n_chunks == 0 || config.n_chunks > video.n_chunks() {
            return Err(SetupError::BadChunkCount {
                n_chunks: config.n_chunks,
                n_video_chunks: video.n_chunks(),
            });
        }
        if config.first_level_idx >= video.n_levels() {
            return Err(SetupError::BadFirstLevel {
                level_idx: config.first_level_idx,
                n_levels: video.n_levels(),
            });
        }
        if !(config.payload_fraction > 0.0 && config.payload_fraction <= 1.0) {
            return Err(SetupError::BadPayloadFraction(config.payload_fraction));
        }
        if config.drain_step.is_zero() {
            return Err(SetupError::ZeroDrainStep);
        }
        Ok(Setup {
            video,
            config,
            metric,
        })
    }

    /// The video.
    pub fn video(&self) -> &Video {
        &self.video
    }

    /// The simulator parameters.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The QoE metric used for scoring.
    pub fn metric(&self) -> QoeMetric {
        self.metric
    }
}

/// One simulated session: a record per chunk, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Per-chunk records; the first chunk is the unscored start-up chunk.
    pub records: Vec<ChunkRecord>,
}

/// Summary of a session over the scored chunks (all but the first).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionScore {
    /// Sum of the per-chunk rewards.
    pub qoe: f64,
    /// Mean nominal bitrate in kbit/s.
    pub mean_bitrate_kbps: f64,
    /// Total stall.
    pub rebuffer: Duration,
    /// Number of level changes, counting the change from the first chunk.
    pub n_switches: usize,
    /// Sum of `|q(R_n) − q(R_{n−1})|` under the setup's metric.
    pub smoothness: f64,
}

impl Session {
    /// The levels played, in order.
    pub fn levels(&self) -> Vec<usize> {
        self.records.iter().map(|record| record.level_idx).collect()
    }

    /// Scores chunks 1.. of the session under `setup`'s metric.
    pub fn score(&self, setup: &Setup) -> SessionScore {
        let video = &setup.video;
        let metric = setup.metric;
        let mut qoe = 0.0;
        let mut bitrate_sum = 0.0;
        let mut rebuffer_secs = 0.0;
        let mut n_switches = 0;
        let mut smoothness = 0.0;
        for pair in self.records.windows(2) {
            let (prev, cur) = (&pair[0], &pair[1]);
            let rebuf_secs = cur.rebuffer_ms / 1000.0;
            qoe += metric.chunk_reward(video, cur.level_idx, prev.level_idx, rebuf_secs);
            bitrate_sum += video.ladder()[cur.level_idx].kbps() as f64;
            rebuffer_secs += rebuf_secs;
            if cur.level_idx != prev.level_idx {
                n_switches += 1;
            }
            smoothness += (metric.utility(video, cur.level_idx)
                - metric.utility(video, prev.level_idx))
            .abs();
        }
        let n_scored = self.records.len().saturating_sub(1).max(1);
        SessionScore {
            qoe,
            mean_bitrate_kbps: bitrate_sum / n_scored as f64,
            rebuffer: Duration::from_secs_f64(rebuffer_secs),
            n_switches,
            smoothness,
        }
    }
}

/// Plays one session of `setup` over `trace`, asking `algorithm` for every chunk after the first.
///
/// The algorithm is reset first. Levels it returns above the top level are clamped.
pub fn simulate(setup: &Setup, trace: &Trace, algorithm: &mut dyn Algorithm) -> Session {
    algorithm.reset();
    let mut link = Link::start(trace);
    let mut records = Vec::with_capacity(setup.config.n_chunks);
    let mut level_idx = setup.config.first_level_idx;
    for chunk_idx in 0..setup.config.n_chunks {
        if chunk_idx > 0 {
            let obs = Observation {
                video: &setup.video,
                n_chunks: setup.config.n_chunks,
                next_chunk_idx: chunk_idx,
                history: &records,
            };
            level_idx = algorithm.choose(&obs).min(setup.video.n_levels() - 1);
        }
        records.push(link.download(setup, chunk_idx, level_idx));
    }
    Session { records }
}

/// Replays a fixed list of levels (the first entry is ignored: chunk 0 uses the configured level).
pub(crate) fn replay(setup: &Setup, trace: &Trace, levels: &[usize]) -> Session {
    let mut link = Link::start(trace);
    let records = (0..setup.config.n_chunks)
        .map(|chunk_idx| {
            let level_idx = if chunk_idx == 0 {
                setup.config.first_level_idx
            } else {
                levels[chunk_idx]
            };
            link.download(setup, chunk_idx, level_idx)
        })
        .collect();
    Session { records }
}

/// The link and buffer state of `fixed_env.py`: a [`TraceLink`] and a [`PlayerBuffer`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link<'a> {
    link: TraceLink<'a>,
    buffer: Option<PlayerBuffer>,
}

impl<'a> Link<'a> {
    /// Starts at the first sample with an empty buffer.
    pub(crate) fn start(trace: &'a Trace) -> Link<'a> {
        Link {
            link: TraceLink::start(trace),
            buffer: None,
        }
    }

    /// Downloads chunk `chunk_idx` at `level_idx`, mirroring `Environment.get_video_chunk`.
    pub(crate) fn download(
        &mut self,
        setup: &Setup,
        chunk_idx: usize,
        level_idx: usize,
    ) -> ChunkRecord {
        let config = &setup.config;
        let size_bytes = setup
            .video
            .chunk_size(level_idx, chunk_idx)
            .expect("setup checks chunk and level ranges");
        let delay = self
            .link
            .transfer(size_bytes as f64, config.payload_fraction);
        let delay_ms = delay * 1000.0 + duration_ms(config.rtt);
        let buffer = self
            .buffer
            .get_or_insert_with(|| PlayerBuffer::new(config.buffer_cap, config.drain_step));
        let step = buffer.add_chunk(delay_ms, duration_ms(setup.video.chunk_duration()));
        if step.sleep_ms > 0.0 {
            self.link.idle(step.sleep_ms);
        }
        ChunkRecord {
            chunk_idx,
            level_idx,
            size_bytes,
            delay_ms,
            rebuffer_ms: step.rebuffer_ms,
            sleep_ms: step.sleep_ms,
            buffer_ms: step.buffer_ms,
        }
    }

    /// Position in the trace as (sample pointer, trace time in seconds), for state keys.
    pub(crate) fn trace_time(&self) -> (usize, f64) {
        self.link.position()
    }
}

fn duration_ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::player::tests::Fixed;
    use crate::video::Bitrate;

    /// Two levels, 500 and 1000 kbit/s; every chunk is exactly 4 s of payload at its bitrate.
    fn setup(n_chunks: usize, first_level_idx: usize) -> Setup {
        let ladder = vec![Bitrate::from_kbps(500), Bitrate::from_kbps(1000)];
        let sizes = vec![vec![250_000; n_chunks], vec![500_000; n_chunks]];
        let video = Video::new(ladder, sizes, Duration::from_secs(4)).expect("valid video");
        let config = SimConfig {
            n_chunks,
            first_level_idx,
            ..SimConfig::pensieve()
        };
        Setup::new(video, config, QoeMetric::Linear).expect("valid setup")
    }

    fn constant_trace(mbps: f64) -> Trace {
        let times: Vec<f64> = (0..=1000).map(|idx| idx as f64).collect();
        Trace::new(times.clone(), vec![mbps; times.len()]).expect("valid trace")
    }

    fn check(records: &[ChunkRecord], expected: &[(f64, f64, f64)]) {
        assert_eq!(records.len(), expected.len());
        for (record, &(delay_ms, rebuffer_ms, buffer_ms)) in records.iter().zip(expected) {
            assert!(
                (record.delay_ms - delay_ms).abs() < 1e-6,
                "{record:?} vs delay {delay_ms}"
            );
            assert!(
                (record.rebuffer_ms - rebuffer_ms).abs() < 1e-6,
                "{record:?} vs rebuffer {rebuffer_ms}"
            );
            assert!(
                (record.buffer_ms - buffer_ms).abs() < 1e-6,
                "{record:?} vs buffer {buffer_ms}"
            );
        }
    }

    #[test]
    fn constant_link_top_level_stalls_every_chunk() {
        // 1 Mbit/s link, 0.95 payload: 118_750 bytes/s. A 500_000-byte chunk takes
        // 500_000 / 118_750 = 4.210526 s, plus 80 ms RTT = 4290.526 ms.
        // Chunk 0: buffer 0 -> stall 4290.526 ms, buffer 4000.
        // Chunk 1: stall 4290.526 - 4000 = 290.526 ms, buffer 0 + 4000 = 4000, and so on.
        let setup = setup(3, 1);
        let session = simulate(&setup, &constant_trace(1.0), &mut Fixed(1));
        let delay = 500_000.0 / 118_750.0 * 1000.0 + 80.0;
        check(
            &session.records,
            &[
                (delay, delay, 4000.0),
                (delay, delay - 4000.0, 4000.0),
                (delay, delay - 4000.0, 4000.0),
            ],
        );
        // QoE over chunks 1 and 2: 2 * (1.0 - 4.3 * 0.290526) with no switches.
        let score = session.score(&setup);
        let expected_qoe = 2.0 * (1.0 - 4.3 * (delay - 4000.0) / 1000.0);
        assert!((score.qoe - expected_qoe).abs() < 1e-9);
        assert_eq!(score.n_switches, 0);
        assert!((score.mean_bitrate_kbps - 1000.0).abs() < 1e-9);
    }

    #[test]
    fn constant_link_low_level_fills_buffer_until_cap() {
        // A 250_000-byte chunk takes 250_000 / 118_750 = 2.105263 s + 80 ms = 2185.263 ms.
        // The buffer grows by 4000 - 2185.263 = 1814.737 ms per chunk after the first.
        // Chunk 0 (level 0): stall 2185.263 ms, buffer 4000.
        let setup = setup(40, 0);
        let session = simulate(&setup, &constant_trace(1.0), &mut Fixed(0));
        let delay = 250_000.0 / 118_750.0 * 1000.0 + 80.0;
        let gain = 4000.0 - delay;
        let mut buffer: f64 = 4000.0;
        let mut expected = vec![(delay, delay, buffer)];
        for _ in 1..40 {
            buffer += gain;
            if buffer > 60_000.0 {
                // Above the cap the player sleeps in whole 500 ms steps.
                buffer -= ((buffer - 60_000.0) / 500.0).ceil() * 500.0;
            }
            expected.push((delay, 0.0, buffer));
        }
        check(&session.records, &expected);
        // 4000 + 31 * 1814.737 = 60256.8 > 60000 first at chunk 31: sleep 500 ms.
        assert_eq!(session.records[30].sleep_ms, 0.0);
        assert_eq!(session.records[31].sleep_ms, 500.0);
        let score = session.score(&setup);
        assert_eq!(score.rebuffer, Duration::ZERO);
        assert!((score.qoe - 39.0 * 0.5).abs() < 1e-9);
    }

    #[test]
    fn trace_loops_from_time_zero_with_sample_one() {
        // Samples: (0, -), (1, 8 Mbit/s), (2, 0 Mbit/s). One pass delivers 8 Mbit * 0.95 = 950_000
        // bytes in (0, 1] and nothing in (1, 2]. A 1_000_000-byte chunk needs the first pass
        // (2 s, 950_000 bytes), then restarts at time 0 with sample 1: 50_000 bytes at 950_000 B/s
        // take 0.0526316 s. Delay = 2052.6316 + 80 ms.
        let ladder = vec![Bitrate::from_kbps(2000)];
        let video =
            Video::new(ladder, vec![vec![1_000_000]], Duration::from_secs(4)).expect("valid video");
        let config = SimConfig {
            n_chunks: 1,
            first_level_idx: 0,
            ..SimConfig::pensieve()
        };
        let setup = Setup::new(video, config, QoeMetric::Linear).expect("valid setup");
        let trace = Trace::new(vec![0.0, 1.0, 2.0], vec![0.0, 8.0, 0.0]).expect("valid trace");
        let session = simulate(&setup, &trace, &mut Fixed(0));
        let delay = (2.0 + 50_000.0 / 1_000_000.0 / 0.95) * 1000.0 + 80.0;
        check(&session.records, &[(delay, delay, 4000.0)]);
    }

    #[test]
    fn rejects_bad_setups() {
        let ladder = vec![Bitrate::from_kbps(300)];
        let video =
            Video::new(ladder, vec![vec![1; 4]], Duration::from_secs(4)).expect("valid video");
        let too_many = SimConfig {
            n_chunks: 5,
            ..SimConfig::pensieve()
        };
        assert_eq!(
            Setup::new(video.clone(), too_many, QoeMetric::Linear).err(),
            Some(SetupError::BadChunkCount {
                n_chunks: 5,
                n_video_chunks: 4
            })
        );
        let bad_level = SimConfig {
            n_chunks: 4,
            ..SimConfig::pensieve()
        };
        assert_eq!(
            Setup::new(video, bad_level, QoeMetric::Linear).err(),
            Some(SetupError::BadFirstLevel {
                level_idx: 1,
                n_levels: 1
            })
        );
    }
}
