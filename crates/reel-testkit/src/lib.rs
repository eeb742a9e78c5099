//! Test fixtures shared by every test suite of reel, written once:
//!
//! - [`postgres`]: a fresh database per test on the PostgreSQL server that
//!   `make test` (through `scripts/with-postgres.sh`) starts;
//! - [`media`]: test media generated per run with ffmpeg's lavfi sources
//!   (no video file is committed);
//! - [`process`]: a child process whose output is collected, waited on by
//!   its lines (never by a timer's luck), and killed when dropped.
//!
//! A dev-dependency only: nothing here is built into reel.

pub mod media;
pub mod postgres;
pub mod process;
