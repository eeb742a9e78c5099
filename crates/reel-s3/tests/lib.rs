//! reel-s3's integration tests: the router on a real loopback listener over
//! a local-file-system store in a temp dir, driven by the real boto3 (through
//! `tests/clients/s3-multipart.py`) and by reqwest with [`reel_s3::presign`].

mod boto3_client;
mod common;
mod presigned;
