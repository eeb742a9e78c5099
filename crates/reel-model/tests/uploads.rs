//! The upload table suite, run against SQLite and against the PostgreSQL
//! that `make test` starts (its URL in `REEL_TEST_DATABASE_URL`).

use std::time::Duration;

use reel_core::{Timestamp, VideoId};
use reel_jobs::store::JobStore;
use reel_model::uploads::{
    NewUpload, UploadConcat, UploadId, UploadPart, UploadProtocol, UploadStatus,
};
use reel_model::Uploads as _;
use serde_json::json;

struct Backend {
    store: JobStore,
    /// A second pool on the same database: another API process.
    other: JobStore,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("reel.db").display());
    Backend {
        store: reel_model::connect(&url, 4).await.expect("sqlite store"),
        other: reel_model::connect(&url, 4)
            .await
            .expect("second sqlite store"),
        _dir: Some(dir),
    }
}

async fn postgres() -> Backend {
    let url = reel_testkit::postgres::fresh_database().await;
    Backend {
        store: reel_model::connect(&url, 4).await.expect("postgres store"),
        other: reel_model::connect(&url, 4)
            .await
            .expect("second postgres store"),
        _dir: None,
    }
}

fn new_upload(length: Option<u64>) -> NewUpload {
    NewUpload {
        id: UploadId::new_random(),
        owner: "tester".to_string(),
        protocol: UploadProtocol::Tus,
        length,
        offset: 0,
        part_size: 8 << 20,
        declared_sha256: None,
        filename: "clip.mp4".to_string(),
        metadata: json!({"filename": "clip.mp4"}),
        concat: None,
        expires_at: Timestamp::now().plus(Duration::from_secs(3600)),
    }
}

fn part(number: u32, size: u64) -> UploadPart {
    UploadPart {
        number,
        size,
        sha256: format!("{number:064}"),
    }
}

async fn create_and_read_back(backend: Backend) {
    let mut upload = new_upload(None);
    let partial = UploadId::new_random();
    upload.concat = Some(UploadConcat::Final(vec![partial.clone()]));
    upload.declared_sha256 = Some("ab".repeat(32));
    backend.store.create_upload(&upload).await.expect("create");
    let row = backend
        .store
        .upload(&upload.id)
        .await
        .expect("get")
        .expect("row exists");
    assert_eq!(row.owner, "tester");
    assert_eq!(row.protocol, UploadProtocol::Tus);
    assert_eq!(row.length, None);
    assert_eq!(row.offset, 0);
    assert_eq!(row.status, UploadStatus::Open);
    assert_eq!(row.concat, Some(UploadConcat::Final(vec![partial])));
    assert_eq!(row.metadata, json!({"filename": "clip.mp4"}));
    assert_eq!(row.declared_sha256, upload.declared_sha256);
    assert!(row.lease.is_none());
    let missing = backend
        .store
        .upload(&UploadId::new_random())
        .await
        .expect("get missing");
    assert!(missing.is_none());
}

async fn lease_excludes_other_processes_until_it_expires(backend: Backend) {
    let upload = new_upload(Some(100));
    backend.store.create_upload(&upload).await.expect("create");
    let lease = Duration::from_millis(300);
    assert!(backend
        .store
        .lock_upload(&upload.id, "a", lease)
        .await
        .expect("lock a"));
    assert!(!backend
        .other
        .lock_upload(&upload.id, "b", lease)
        .await
        .expect("lock b"));
    // The holder may renew its own lease.
    assert!(backend
        .store
        .lock_upload(&upload.id, "a", lease)
        .await
        .expect("renew a"));
    // Unlocking by a non-holder changes nothing.
    backend
        .other
        .unlock_upload(&upload.id, "b")
        .await
        .expect("unlock b");
    assert!(!backend
        .other
        .lock_upload(&upload.id, "b", lease)
        .await
        .expect("lock b again"));
    tokio::time::sleep(lease + Duration::from_millis(50)).await;
    assert!(backend
        .other
        .lock_upload(&upload.id, "b", lease)
        .await
        .expect("lock b after expiry"));
    backend
        .other
        .unlock_upload(&upload.id, "b")
        .await
        .expect("unlock b");
    assert!(backend
        .store
        .lock_upload(&upload.id, "a", lease)
        .await
        .expect("lock a after unlock"));
    assert!(!backend
        .store
        .lock_upload(&UploadId::new_random(), "a", lease)
        .await
        .expect("lock missing"));
}

async fn offset_advances_only_from_the_expected_offset(backend: Backend) {
    let upload = new_upload(Some(25));
    backend.store.create_upload(&upload).await.expect("create");
    assert!(backend
        .store
        .record_upload_parts(&upload.id, 0, &[part(1, 10), part(2, 5)])
        .await
        .expect("record"));
    // A second writer that started from offset 0 loses.
    assert!(!backend
        .other
        .record_upload_parts(&upload.id, 0, &[part(1, 10)])
        .await
        .expect("stale record"));
    // Parts may not pass the length.
    assert!(!backend
        .store
        .record_upload_parts(&upload.id, 15, &[part(3, 11)])
        .await
        .expect("too long"));
    assert!(backend
        .store
        .record_upload_parts(&upload.id, 15, &[part(3, 10)])
        .await
        .expect("record last"));
    let row = backend
        .store
        .upload(&upload.id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(row.offset, 25);
    let parts = backend.store.upload_parts(&upload.id).await.expect("parts");
    assert_eq!(parts, vec![part(1, 10), part(2, 5), part(3, 10)]);
}

async fn concurrent_writers_never_both_advance(backend: Backend) {
    let upload = new_upload(None);
    backend.store.create_upload(&upload).await.expect("create");
    let mut handles = Vec::new();
    for writer_idx in 0..8u64 {
        let store = if writer_idx % 2 == 0 {
            backend.store.clone()
        } else {
            backend.other.clone()
        };
        let id = upload.id.clone();
        handles.push(tokio::spawn(async move {
            store
                .record_upload_parts(&id, 0, &[part(1, 1 + writer_idx)])
                .await
                .expect("record")
        }));
    }
    let mut n_won = 0;
    for handle in handles {
        if handle.await.expect("join") {
            n_won += 1;
        }
    }
    assert_eq!(n_won, 1);
    let parts = backend.store.upload_parts(&upload.id).await.expect("parts");
    let row = backend
        .store
        .upload(&upload.id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(parts.len(), 1);
    assert_eq!(row.offset, parts[0].size);
}

async fn deferred_length_is_set_once(backend: Backend) {
    let upload = new_upload(None);
    backend.store.create_upload(&upload).await.expect("create");
    assert!(backend
        .store
        .record_upload_parts(&upload.id, 0, &[part(1, 10)])
        .await
        .expect("record"));
    assert!(!backend
        .store
        .set_upload_length(&upload.id, 9)
        .await
        .expect("shorter than stored"));
    assert!(backend
        .store
        .set_upload_length(&upload.id, 10)
        .await
        .expect("set"));
    assert!(!backend
        .store
        .set_upload_length(&upload.id, 12)
        .await
        .expect("set twice"));
}

async fn completion_keeps_its_video_id_across_retries(backend: Backend) {
    let upload = new_upload(Some(10));
    backend.store.create_upload(&upload).await.expect("create");
    let first = VideoId::new_random();
    assert_eq!(
        backend
            .store
            .begin_upload_completion(&upload.id, first)
            .await
            .expect("not all stored"),
        None
    );
    assert!(backend
        .store
        .record_upload_parts(&upload.id, 0, &[part(1, 10)])
        .await
        .expect("record"));
    assert_eq!(
        backend
            .store
            .begin_upload_completion(&upload.id, first)
            .await
            .expect("begin"),
        Some(first)
    );
    // No more bytes while completing.
    assert!(!backend
        .store
        .record_upload_parts(&upload.id, 10, &[part(2, 0)])
        .await
        .expect("record while completing"));
    assert!(backend
        .store
        .reopen_upload(&upload.id, "object store down")
        .await
        .expect("reopen"));
    let reopened = backend
        .store
        .upload(&upload.id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(reopened.status, UploadStatus::Open);
    assert_eq!(reopened.error.as_deref(), Some("object store down"));
    assert_eq!(
        backend
            .store
            .begin_upload_completion(&upload.id, VideoId::new_random())
            .await
            .expect("begin again"),
        Some(first)
    );
    assert!(backend
        .store
        .complete_upload(&upload.id)
        .await
        .expect("complete"));
    let done = backend
        .store
        .upload(&upload.id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(done.status, UploadStatus::Complete);
    assert_eq!(done.video_id, Some(first));
    assert!(backend
        .store
        .upload_parts(&upload.id)
        .await
        .expect("parts")
        .is_empty());
    assert!(!backend
        .store
        .abort_upload(&upload.id, "late")
        .await
        .expect("abort complete"));
}

async fn expired_uploads_are_listed_aborted_and_deleted(backend: Backend) {
    let mut expired = new_upload(Some(10));
    expired.expires_at = Timestamp::now().plus(Duration::from_millis(1));
    let fresh = new_upload(Some(10));
    backend.store.create_upload(&expired).await.expect("create");
    backend.store.create_upload(&fresh).await.expect("create");
    assert!(backend
        .store
        .record_upload_parts(&expired.id, 0, &[part(1, 4)])
        .await
        .expect("record"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let listed = backend
        .store
        .expired_uploads(Timestamp::now(), 100)
        .await
        .expect("expired");
    let ids: Vec<UploadId> = listed.into_iter().map(|row| row.id).collect();
    assert_eq!(ids, vec![expired.id.clone()]);
    assert!(backend
        .store
        .abort_upload(&expired.id, "expired")
        .await
        .expect("abort"));
    let aborted = backend
        .store
        .upload(&expired.id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(aborted.status, UploadStatus::Aborted);
    assert!(backend
        .store
        .upload_parts(&expired.id)
        .await
        .expect("parts")
        .is_empty());
    assert!(backend
        .store
        .expired_uploads(Timestamp::now(), 100)
        .await
        .expect("expired")
        .is_empty());
    assert!(backend
        .store
        .delete_upload(&fresh.id)
        .await
        .expect("delete"));
    assert!(!backend
        .store
        .delete_upload(&fresh.id)
        .await
        .expect("delete twice"));
    assert!(backend
        .store
        .upload(&fresh.id)
        .await
        .expect("get")
        .is_none());
}

macro_rules! backend_suite {
    ($($scenario:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::sqlite().await).await }) *
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::postgres().await).await }) *
        }
    };
}

backend_suite!(
    create_and_read_back,
    lease_excludes_other_processes_until_it_expires,
    offset_advances_only_from_the_expected_offset,
    concurrent_writers_never_both_advance,
    deferred_length_is_set_once,
    completion_keeps_its_video_id_across_retries,
    expired_uploads_are_listed_aborted_and_deleted,
);
