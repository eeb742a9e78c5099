//! The tus server on a real loopback listener, driven by the real
//! third-party clients (tuspy, tus-js-client under Node) and by raw HTTP for
//! every error the protocol defines.

mod clients;
mod errors;
mod harness;
mod reaper;
