//! Adaptive-bitrate (ABR) algorithms, a trace-driven simulator and an offline optimum.
//!
//! How the pieces fit together:
//!
//! * [`video::Video`] (bitrate ladder and chunk sizes) and [`trace::Trace`] (link throughput over
//!   time) are the inputs; [`load`] parses both from text, and the caller reads the files.
//! * [`sim::Setup`] bundles a video, the simulator parameters ([`sim::SimConfig`], Pensieve's by
//!   default) and a [`qoe::QoeMetric`].
//! * [`sim::simulate`] plays one session, asking an [`player::Algorithm`] for each chunk through
//!   an [`player::Observation`], and returns a [`sim::Session`] with per-chunk records.
//! * Algorithms: [`bb::BufferBased`], [`rate::RateBased`], [`rate::Throughput`], [`bola::Bola`],
//!   [`mpc::RobustMpc`] and reel's own [`reel::Reel`].
//! * [`link::TraceLink`] and [`link::PlayerBuffer`] are the simulator's link and buffer model,
//!   public so a real player can shape its downloads the same way; [`catalog::by_name`] is the
//!   one table from an algorithm's name to an instance.
//! * [`optimum::optimal`] plans the best session with full knowledge of the trace (dynamic
//!   programming), and [`eval::evaluate`] runs an algorithm over many traces.
//!
//! **Invariant:** the crate does no IO and reads no clock; results are deterministic.

#![deny(missing_docs)]

pub mod bb;
pub mod bola;
pub mod catalog;
pub mod eval;
pub mod link;
pub mod load;
pub mod mpc;
pub mod optimum;
pub mod player;
pub mod qoe;
pub mod rate;
pub mod reel;
pub mod sim;
pub mod trace;
pub mod video;
