//! Measures packaging throughput: `parse_fragmented` plus `assemble` over
//! synthetic chunk files shaped like the pipeline's (29.97 fps, 120-frame
//! fragments, two per chunk, ~20 KB frames), in MB of input per second.
//!
//! Run with `cargo run --release -p reel-cmaf --example throughput [MB]`.
//! It measures two cases: chunks whose `mfhd` numbers restart at 1 (ffmpeg's
//! default, so every segment is copied once to renumber it) and chunks
//! encoded with `-fragment_index` (already numbered, zero-copy).

#[path = "../src/synthetic.rs"]
mod synthetic;

use std::time::Instant;

use bytes::Bytes;
use synthetic::{chunk, SyntheticTrack, TrunLayout};

fn main() {
    let total_megabytes: usize = std::env::args()
        .nth(1)
        .map(|arg| arg.parse().expect("the argument is a size in MB"))
        .unwrap_or(512);
    let n_rounds = 5;
    for layout in [TrunLayout::PerSample, TrunLayout::Defaults] {
        let track = SyntheticTrack {
            timescale: 30000,
            sample_duration: 1001,
            samples_per_fragment: 120,
            sample_size: 20_000,
            layout,
            starts_with_sync: true,
            with_styp: false,
        };
        for prenumbered in [false, true] {
            let chunk_len = chunk(&track, 1, 0, 2).len();
            let n_chunks = (total_megabytes * 1_000_000).div_ceil(chunk_len);
            let chunks: Vec<Bytes> = (0..n_chunks as u32)
                .map(|chunk_idx| {
                    let first_number = if prenumbered { chunk_idx * 2 + 1 } else { 1 };
                    Bytes::from(chunk(
                        &track,
                        first_number,
                        u64::from(chunk_idx) * 240_240,
                        2,
                    ))
                })
                .collect();
            let n_bytes: usize = chunks.iter().map(Bytes::len).sum();
            let mut rates = Vec::new();
            for _ in 0..n_rounds {
                let started = Instant::now();
                let parsed = chunks
                    .iter()
                    .map(|data| reel_cmaf::parse_fragmented(data.clone()))
                    .collect::<Result<Vec<_>, _>>()
                    .expect("synthetic chunks parse");
                let assembled = reel_cmaf::assemble(parsed).expect("synthetic chunks assemble");
                let seconds = started.elapsed().as_secs_f64();
                assert_eq!(assembled.segments.len(), n_chunks * 2);
                rates.push(n_bytes as f64 / 1e6 / seconds);
                drop(assembled);
            }
            rates.sort_by(f64::total_cmp);
            println!(
                "{layout:?} trun, {}: {:.0} MB in {n_chunks} chunks, median {:.0} MB/s (min {:.0}, max {:.0})",
                if prenumbered { "pre-numbered (zero-copy)" } else { "renumbered (one copy)" },
                n_bytes as f64 / 1e6,
                rates[n_rounds / 2],
                rates[0],
                rates[n_rounds - 1],
            );
        }
    }
}
