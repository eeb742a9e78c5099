//! reel's jobs and their task handlers.
//!
//! Two kinds of job exist today:
//! - `verify`: checks a stored object end to end. `probe` runs ffprobe on it
//!   and fans out into `checksum` tasks over byte ranges, joined by `verify`,
//!   which checks that the ranges cover the object and that its SHA-256 is
//!   the one computed when it was stored, then publishes a report.
//! - `selftest`: `plan` fans out into N `touch` tasks, each of which writes a
//!   marker object per attempt, joined by `join`. It exercises the engine
//!   (fan-out, kills, cancellation, poison tasks) without media.
//!
//! Handlers read and write the object store only at deterministic keys under
//! `jobs/{job_id}/`, so that a re-run overwrites rather than duplicates.
#![deny(missing_docs)]

pub mod jobs;
pub mod storage;
pub mod video;
