//! A tus server on `127.0.0.1:0` with a temp SQLite database and a local
//! object store, plus raw-HTTP helpers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use reel_jobs::store::JobStore;
use reel_model::uploads::{UploadId, UploadRow, UploadStatus};
use reel_model::{Uploads as _, Videos as _};
use reel_upload::{tus_router, UploadSettings, UploadState};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

pub const TUS: &str = "1.0.0";
pub const OFFSET_STREAM: &str = "application/offset+octet-stream";

pub struct TestServer {
    pub state: UploadState,
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    /// The creation URL, `{origin}/files/`.
    pub endpoint: String,
    pub key: String,
    pub db_url: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<()>>,
}

pub fn settings() -> UploadSettings {
    UploadSettings {
        max_upload_bytes: 64 << 20,
        part_size: 4 << 20,
        expiry: Duration::from_secs(3600),
        lock_lease: Duration::from_secs(10),
        quota_per_key: None,
    }
}

impl TestServer {
    pub async fn start(settings: UploadSettings) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_url = format!("sqlite://{}", dir.path().join("reel.db").display());
        let store = reel_model::connect(&db_url, 8).await.expect("sqlite store");
        let objects_dir = dir.path().join("objects");
        std::fs::create_dir_all(&objects_dir).expect("objects dir");
        let objects: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(&objects_dir).expect("local object store"));
        let key = reel_model::keys::create_key(&store, "tester")
            .await
            .expect("api key");
        let state = UploadState {
            store,
            objects,
            settings,
        };
        // The tus router gets its caller from whoever mounts it (reel-api
        // in the server); here a bearer key is the only credential.
        let app = axum::Router::new()
            .nest_service("/files", tus_router(state.clone()))
            .layer(axum::middleware::from_fn_with_state(
                state.store.clone(),
                bearer_caller,
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await
                    .expect("serve");
            }
        });
        let origin = format!("http://{addr}");
        TestServer {
            state,
            endpoint: format!("{origin}/files/"),
            origin,
            key,
            db_url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            dir,
            shutdown,
            server: Some(server),
        }
    }

    /// A request with the key and `Tus-Resumable` set.
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header("tus-resumable", TUS)
            .bearer_auth(&self.key)
    }

    /// Creates an upload; returns its absolute URL.
    pub async fn create(&self, length: u64) -> String {
        let response = self
            .request(reqwest::Method::POST, &self.endpoint)
            .header("upload-length", length)
            .header("upload-metadata", "filename Y2xpcC5iaW4=")
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        location(&response)
    }

    pub async fn patch(&self, url: &str, offset: u64, body: Vec<u8>) -> reqwest::Response {
        self.request(reqwest::Method::PATCH, url)
            .header("upload-offset", offset)
            .header("content-type", OFFSET_STREAM)
            .body(body)
            .send()
            .await
            .expect("PATCH")
    }

    pub async fn head(&self, url: &str) -> reqwest::Response {
        self.request(reqwest::Method::HEAD, url)
            .send()
            .await
            .expect("HEAD")
    }

    pub async fn upload_row(&self, url: &str) -> UploadRow {
        self.state
            .store
            .upload(&upload_id(url))
            .await
            .expect("read upload")
            .expect("upload row exists")
    }

    /// Every object key under `prefix`.
    pub async fn objects_under(&self, prefix: &str) -> Vec<String> {
        let prefix = ObjectPath::from(prefix);
        let mut keys: Vec<String> = self
            .state
            .objects
            .list(Some(&prefix))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .expect("list objects");
        keys.sort();
        keys
    }

    /// Checks that the upload at `url` became a video whose source is
    /// `expected` (by SHA-256 and size), and that no part is left.
    pub async fn assert_completed_as(&self, url: &str, expected: &[u8]) {
        let row = self.upload_row(url).await;
        assert_eq!(row.status, UploadStatus::Complete, "{row:?}");
        let video_id = row.video_id.expect("complete upload has a video");
        let video = self
            .state
            .store
            .video(video_id)
            .await
            .expect("read video")
            .expect("video exists");
        assert!(video.job_id.is_some(), "video {video_id} has no job");
        let expected_sha256 = sha256_hex(expected);
        assert_eq!(video.source_sha256, expected_sha256);
        assert_eq!(video.source_size, expected.len() as u64);
        let stored = self
            .state
            .objects
            .get(&ObjectPath::from(video.source_key.as_str()))
            .await
            .expect("source object")
            .bytes()
            .await
            .expect("source bytes");
        assert_eq!(sha256_hex(&stored), expected_sha256);
        assert_eq!(self.objects_under("uploads").await, Vec::<String>::new());
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .expect("Location header")
        .to_str()
        .expect("ASCII Location")
        .to_string()
}

pub fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().expect("ASCII header").to_string())
}

pub fn upload_id(url: &str) -> UploadId {
    url.rsplit('/')
        .next()
        .expect("url has a path")
        .parse()
        .expect("url ends in an upload id")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        bytes.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// `tests/clients` at the workspace root.
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients")
}

/// Puts the [`reel_model::Caller`] of a request's bearer key in its extensions.
async fn bearer_caller(
    axum::extract::State(store): axum::extract::State<JobStore>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let bearer = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_string);
    let caller = match bearer {
        None => reel_model::Caller::Anonymous,
        Some(secret) => match reel_model::keys::verify_key(&store, &secret)
            .await
            .expect("verify key")
        {
            Some(principal) => reel_model::Caller::Key(principal),
            None => reel_model::Caller::Refused("the API key is not valid"),
        },
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}
