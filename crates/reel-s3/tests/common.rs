//! What every test shares: a server on `127.0.0.1:0` nested under `/s3`,
//! its temp-dir store, its credentials, and deterministic test bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reel_core::ByteSize;
use reel_s3::{s3_router, S3Config, S3Credentials, S3State};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use url::Url;

pub const BUCKET: &str = "reel";

pub fn credentials() -> S3Credentials {
    S3Credentials {
        access_key_id: "reel-test-access-key".to_string(),
        secret_access_key: "reel-test-secret/0123456789abcdef".to_string(),
        region: "us-east-1".to_string(),
    }
}

/// The part size limits a test server enforces.
pub struct PartLimits {
    pub min_part_size: ByteSize,
    pub max_part_size: ByteSize,
}

/// A running endpoint; dropping it stops the server and removes the store.
pub struct TestServer {
    /// Where the router is mounted, e.g. `http://127.0.0.1:41234/s3`.
    pub endpoint: Url,
    pub store_dir: TempDir,
    /// For test inputs, outside the store.
    pub scratch_dir: TempDir,
    server_task: tokio::task::JoinHandle<()>,
    /// The router's state, for in-process calls.
    pub state: S3State,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server_task.abort();
    }
}

impl TestServer {
    /// The bytes of `key` as the store holds them on disk.
    pub fn read_stored(&self, key: &str) -> Vec<u8> {
        let path = self.store_dir.path().join(key);
        std::fs::read(&path)
            .unwrap_or_else(|error| panic!("reading stored object {}: {error}", path.display()))
    }

    /// Every file in the store, relative to its root, sorted.
    pub fn stored_files(&self) -> Vec<String> {
        let mut files = Vec::new();
        collect_files(self.store_dir.path(), self.store_dir.path(), &mut files);
        files.sort();
        files
    }
}

fn collect_files(root: &Path, dir: &Path, files: &mut Vec<String>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|error| panic!("listing {}: {error}", dir.display()));
    for entry in entries {
        let path: PathBuf = entry.expect("directory entries are readable").path();
        if path.is_dir() {
            collect_files(root, &path, files);
        } else {
            let relative = path.strip_prefix(root).expect("entries are under the root");
            files.push(relative.to_string_lossy().into_owned());
        }
    }
}

pub async fn start_server(limits: PartLimits) -> TestServer {
    let store_dir = tempfile::tempdir().expect("creating the store temp dir");
    let objects = Arc::new(
        object_store::local::LocalFileSystem::new_with_prefix(store_dir.path())
            .expect("opening the local store")
            .with_automatic_cleanup(true),
    );
    let config = S3Config {
        bucket: BUCKET.to_string(),
        credentials: credentials(),
        min_part_size: limits.min_part_size,
        max_part_size: limits.max_part_size,
        max_clock_skew: Duration::from_secs(15 * 60),
        local_files: Some(objects.clone()),
    };
    let state = S3State::new(objects, config).expect("the test config is valid");
    let app = axum::Router::new().nest("/s3", s3_router(state.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a loopback port");
    let address = listener.local_addr().expect("the listener has an address");
    let server_task = tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("the test server runs");
    });
    let endpoint = Url::parse(&format!("http://{address}/s3")).expect("a valid endpoint url");
    TestServer {
        endpoint,
        store_dir,
        scratch_dir: tempfile::tempdir().expect("creating the scratch temp dir"),
        server_task,
        state,
    }
}

/// `n_bytes` of deterministic, incompressible-looking bytes (xorshift64).
pub fn test_bytes(n_bytes: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..n_bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Md5;
    hex::encode(Md5::digest(bytes))
}

/// The S3 multipart ETag of `parts`: `md5(concat of part md5s)-n`.
pub fn multipart_etag(parts: &[&[u8]]) -> String {
    use md5::Md5;
    let mut hasher = Md5::new();
    for part in parts {
        hasher.update(Md5::digest(part));
    }
    format!("\"{}-{}\"", hex::encode(hasher.finalize()), parts.len())
}
