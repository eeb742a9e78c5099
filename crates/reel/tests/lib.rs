//! Integration tests: the real `reel` binary on loopback, real ffprobe,
//! SQLite and the PostgreSQL that `make test` starts.

mod abr;
mod api;
mod common;
mod delivery;
mod edge_cache;
mod engine;
mod hostile;
mod matrix;
mod playback;
mod player;
mod tls;
mod upload;
mod video;
mod web;
mod webhooks;
