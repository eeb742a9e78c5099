//! reel's durable DAG task engine.
//!
//! A job is a DAG of typed tasks stored in SQLite or PostgreSQL
//! ([`store::JobStore`]). A task becomes ready when every task it depends on
//! has succeeded; a running task may add tasks to its own job (fan-out) in the
//! same transaction that records its success. Workers
//! ([`worker::run_worker_pool`]) claim ready tasks atomically, hold a lease
//! that heartbeats renew, and complete or fail them; every write of a worker
//! is fenced by the attempt number it claimed. An expired lease makes the task
//! ready again, so a killed worker's task is redone elsewhere.
//!
//! Handlers ([`worker::TaskHandler`]) know nothing of the database: they get
//! a [`worker::TaskContext`] and return a [`store::Completion`]. Task inputs
//! and outputs are small JSON values that name objects in the object store,
//! never media bytes.
#![deny(missing_docs)]

pub mod metrics;
pub mod store;
pub mod worker;
