//! What a player knows when it picks the next chunk, and the trait every ABR algorithm implements.

use crate::video::Video;

/// What happened when one chunk was downloaded.
///
/// Times are `f64` milliseconds because the reference simulator (`fixed_env.py`) computes in
/// floating-point milliseconds, and the algorithms reproduce its arithmetic bit for bit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkRecord {
    /// Index of the chunk in the video.
    pub chunk_idx: usize,
    /// Level it was downloaded at.
    pub level_idx: usize,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// Download time including the round-trip time, in milliseconds.
    pub delay_ms: f64,
    /// Stall caused by this download, in milliseconds.
    pub rebuffer_ms: f64,
    /// Time the player slept afterwards because the buffer was over its cap, in milliseconds.
    pub sleep_ms: f64,
    /// Buffer level after the download and any sleep, in milliseconds.
    pub buffer_ms: f64,
}

impl ChunkRecord {
    /// Measured throughput in bytes per millisecond divided by 1000 (MB/s), exactly as Pensieve's
    /// `state[3]`: `size / delay / 1000`.
    pub fn throughput_mbyte_per_s(&self) -> f64 {
        self.size_bytes as f64 / self.delay_ms / 1000.0
    }

    /// Measured throughput in kbit/s (bytes × 8 per millisecond).
    pub fn throughput_kbps(&self) -> f64 {
        self.size_bytes as f64 * 8.0 / self.delay_ms
    }
}

/// The player state shown to an algorithm before it picks the level of the next chunk.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The video, with the sizes of all chunks at all levels.
    pub video: &'a Video,
    /// Number of chunks played in this session.
    pub n_chunks: usize,
    /// Index of the chunk about to be requested; always at least 1.
    pub next_chunk_idx: usize,
    /// Every chunk downloaded so far, oldest first; never empty.
    pub history: &'a [ChunkRecord],
}

impl Observation<'_> {
    /// The most recent download.
    pub fn last(&self) -> &ChunkRecord {
        // The simulator downloads the first chunk before asking any algorithm.
        self.history
            .last()
            .expect("the first chunk is downloaded before any decision")
    }

    /// Buffer level in seconds.
    pub fn buffer_secs(&self) -> f64 {
        self.last().buffer_ms / 1000.0
    }

    /// Level of the last downloaded chunk.
    pub fn last_level_idx(&self) -> usize {
        self.last().level_idx
    }

    /// Number of chunks still to download, including the next one.
    pub fn n_remaining(&self) -> usize {
        self.n_chunks.saturating_sub(self.next_chunk_idx)
    }
}

/// An adaptive-bitrate algorithm.
pub trait Algorithm {
    /// Short stable name, for example `"bb"` or `"rmpc"`.
    fn name(&self) -> &str;

    /// Forgets everything learned in the previous session; called before each session.
    fn reset(&mut self);

    /// Picks the level of chunk `obs.next_chunk_idx`; values past the top level are clamped.
    fn choose(&mut self, obs: &Observation) -> usize;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::video::Bitrate;
    use std::time::Duration;

    /// The Pensieve ladder with constant-bitrate chunks: 10 chunks of 4 s, size = kbps × 500 bytes.
    /// A policy that always plays one level.
    pub(crate) struct Fixed(pub(crate) usize);

    impl Algorithm for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn reset(&mut self) {}
        fn choose(&mut self, _obs: &Observation) -> usize {
            self.0
        }
    }

    pub(crate) fn ladder_video() -> Video {
        let kbps = [300, 750, 1200, 1850, 2850, 4300];
        let ladder = kbps.iter().map(|&k| Bitrate::from_kbps(k)).collect();
        let sizes = kbps.iter().map(|&k| vec![k * 500; 10]).collect();
        Video::new(ladder, sizes, Duration::from_secs(4)).expect("valid video")
    }

    /// A record of a chunk at `level_idx` downloaded at `throughput_kbps`, leaving `buffer_secs`.
    pub(crate) fn record(
        video: &Video,
        level_idx: usize,
        throughput_kbps: f64,
        buffer_secs: f64,
    ) -> ChunkRecord {
        let size_bytes = video.chunk_size(level_idx, 0).expect("level in range");
        ChunkRecord {
            chunk_idx: 0,
            level_idx,
            size_bytes,
            delay_ms: size_bytes as f64 * 8.0 / throughput_kbps,
            rebuffer_ms: 0.0,
            sleep_ms: 0.0,
            buffer_ms: buffer_secs * 1000.0,
        }
    }

    /// An observation before chunk `history.len()` of a 10-chunk session.
    pub(crate) fn observation<'a>(video: &'a Video, history: &'a [ChunkRecord]) -> Observation<'a> {
        Observation {
            video,
            n_chunks: 10,
            next_chunk_idx: history.len(),
            history,
        }
    }

    #[test]
    fn observation_exposes_last_chunk() {
        let video = ladder_video();
        let history = [
            record(&video, 1, 1000.0, 4.0),
            record(&video, 3, 2000.0, 6.5),
        ];
        let obs = observation(&video, &history);
        assert_eq!(obs.last_level_idx(), 3);
        assert!((obs.buffer_secs() - 6.5).abs() < 1e-12);
        assert_eq!(obs.n_remaining(), 8);
        assert!((history[1].throughput_kbps() - 2000.0).abs() < 1e-9);
        assert!((history[1].throughput_mbyte_per_s() - 0.25).abs() < 1e-12);
    }
}
