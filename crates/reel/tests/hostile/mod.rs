//! The hostile-tenant suite (issue 13): each finding as a test against the
//! real binary.

mod edges;
mod media;
mod redaction;
mod selftest;
mod server;
mod session;
