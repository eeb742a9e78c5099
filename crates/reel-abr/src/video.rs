//! The video being streamed: a bitrate ladder and the size of every chunk at every level.

use std::time::Duration;

/// A nominal encoding bitrate, stored in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bitrate {
    bits_per_second: u64,
}

impl Bitrate {
    /// Builds a bitrate from kilobits per second (1 kbit = 1000 bit).
    pub fn from_kbps(kbps: u64) -> Bitrate {
        Bitrate {
            bits_per_second: kbps * 1000,
        }
    }

    /// The bitrate in kilobits per second.
    pub fn kbps(self) -> u64 {
        self.bits_per_second / 1000
    }

    /// The bitrate in megabits per second, as used by QoE_lin.
    pub fn mbps(self) -> f64 {
        self.bits_per_second as f64 / 1_000_000.0
    }
}

/// Why a [`Video`] could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VideoError {
    /// The ladder has no levels.
    #[error("video has no bitrate levels")]
    NoLevels,
    /// The ladder is not strictly increasing.
    #[error("bitrate ladder must be strictly increasing; level {level_idx} is not above the level below it")]
    LadderNotIncreasing {
        /// The first offending level.
        level_idx: usize,
    },
    /// The ladder and the size table disagree on the number of levels.
    #[error("{n_ladder} bitrates but {n_size_levels} size lists; give one size list per level")]
    LevelCountMismatch {
        /// Levels in the ladder.
        n_ladder: usize,
        /// Levels in the size table.
        n_size_levels: usize,
    },
    /// Two levels have a different number of chunks.
    #[error("level {level_idx} has {n_chunks} chunks but level 0 has {n_chunks_level0}")]
    ChunkCountMismatch {
        /// The offending level.
        level_idx: usize,
        /// Its chunk count.
        n_chunks: usize,
        /// The chunk count of level 0.
        n_chunks_level0: usize,
    },
    /// The video has no chunks.
    #[error("video has no chunks")]
    NoChunks,
    /// A chunk has size zero, which no throughput measurement can come from.
    #[error("chunk {chunk_idx} at level {level_idx} has size 0")]
    EmptyChunk {
        /// Level of the chunk.
        level_idx: usize,
        /// Index of the chunk.
        chunk_idx: usize,
    },
    /// The chunk duration is zero.
    #[error("chunk duration must be positive")]
    ZeroChunkDuration,
}

/// A video: bitrate ladder (lowest first), chunk sizes per level, and chunk duration.
///
/// Invariants (checked by [`Video::new`]): at least one level and one chunk, a strictly
/// increasing ladder, the same number of chunks at every level, and no empty chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Video {
    ladder: Vec<Bitrate>,
    sizes: Vec<Vec<u64>>,
    chunk_duration: Duration,
}

impl Video {
    /// Validates and builds a video; `sizes[level][chunk]` is in bytes.
    pub fn new(
        ladder: Vec<Bitrate>,
        sizes: Vec<Vec<u64>>,
        chunk_duration: Duration,
    ) -> Result<Video, VideoError> {
        if ladder.is_empty() {
            return Err(VideoError::NoLevels);
        }
        if let Some(level_idx) = (1..ladder.len()).find(|&idx| ladder[idx] <= ladder[idx - 1]) {
            return Err(VideoError::LadderNotIncreasing { level_idx });
        }
        if ladder.len() != sizes.len() {
            return Err(VideoError::LevelCountMismatch {
                n_ladder: ladder.len(),
                n_size_levels: sizes.len(),
            });
        }
        let n_chunks_level0 = sizes[0].len();
        if n_chunks_level0 == 0 {
            return Err(VideoError::NoChunks);
        }
        for (level_idx, level_sizes) in sizes.iter().enumerate() {
            if level_sizes.len() != n_chunks_level0 {
                return Err(VideoError::ChunkCountMismatch {
                    level_idx,
                    n_chunks: level_sizes.len(),
                    n_chunks_level0,
                });
            }
            if let Some(chunk_idx) = level_sizes.iter().position(|&size| size == 0) {
                return Err(VideoError::EmptyChunk {
                    level_idx,
                    chunk_idx,
                });
            }
        }
        if chunk_duration.is_zero() {
            return Err(VideoError::ZeroChunkDuration);
        }
        Ok(Video {
            ladder,
            sizes,
            chunk_duration,
        })
    }

    /// The bitrate ladder, lowest level first.
    pub fn ladder(&self) -> &[Bitrate] {
        &self.ladder
    }

    /// Number of levels in the ladder.
    pub fn n_levels(&self) -> usize {
        self.ladder.len()
    }

    /// Number of chunks in the size table.
    pub fn n_chunks(&self) -> usize {
        self.sizes[0].len()
    }

    /// Playback duration of one chunk.
    pub fn chunk_duration(&self) -> Duration {
        self.chunk_duration
    }

    /// Size in bytes of chunk `chunk_idx` at level `level_idx`, or `None` if either is out of range.
    pub fn chunk_size(&self, level_idx: usize, chunk_idx: usize) -> Option<u64> {
        self.sizes.get(level_idx)?.get(chunk_idx).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ladder(kbps: &[u64]) -> Vec<Bitrate> {
        kbps.iter().map(|&k| Bitrate::from_kbps(k)).collect()
    }

    #[test]
    fn builds_valid_video() {
        let video = Video::new(
            ladder(&[300, 750]),
            vec![vec![1, 2], vec![3, 4]],
            Duration::from_secs(4),
        );
        let video = video.expect("valid video");
        assert_eq!(video.n_levels(), 2);
        assert_eq!(video.n_chunks(), 2);
        assert_eq!(video.chunk_size(1, 0), Some(3));
        assert_eq!(video.chunk_size(2, 0), None);
        assert_eq!(video.ladder()[1].kbps(), 750);
    }

    #[test]
    fn rejects_bad_videos() {
        let four = Duration::from_secs(4);
        assert_eq!(Video::new(vec![], vec![], four), Err(VideoError::NoLevels));
        assert_eq!(
            Video::new(ladder(&[750, 300]), vec![vec![1], vec![1]], four),
            Err(VideoError::LadderNotIncreasing { level_idx: 1 })
        );
        assert_eq!(
            Video::new(ladder(&[300, 750]), vec![vec![1], vec![1, 2]], four),
            Err(VideoError::ChunkCountMismatch {
                level_idx: 1,
                n_chunks: 2,
                n_chunks_level0: 1
            })
        );
        assert_eq!(
            Video::new(ladder(&[300]), vec![vec![0]], four),
            Err(VideoError::EmptyChunk {
                level_idx: 0,
                chunk_idx: 0
            })
        );
        assert_eq!(
            Video::new(ladder(&[300]), vec![vec![1]], Duration::ZERO),
            Err(VideoError::ZeroChunkDuration)
        );
    }
}
