//! The reaper: expired uploads are aborted and leave no object behind.

use std::time::Duration;

use reel_core::Timestamp;
use reel_model::uploads::{NewUpload, UploadId, UploadProtocol, UploadStatus};
use reel_model::Uploads as _;
use tokio_util::sync::CancellationToken;

use crate::harness::{settings, TestServer};

#[tokio::test]
async fn reaper_aborts_expired_uploads_and_deletes_their_parts() {
    let mut short = settings();
    short.expiry = Duration::from_millis(500);
    short.part_size = 16;
    let server = TestServer::start(short).await;
    let expired = server.create(1000).await;
    assert_eq!(server.patch(&expired, 0, vec![3; 100]).await.status(), 204);
    assert_eq!(server.objects_under("uploads").await.len(), 7);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // An upload that is still alive (created directly, with a long expiry).
    let fresh_id = UploadId::new_random();
    // Uploads belong to a key's id (issue 13), the tester key's here.
    let tester = reel_model::keys::verify_key(&server.state.store, &server.key)
        .await
        .expect("verify")
        .expect("the tester key");
    server
        .state
        .store
        .create_upload(&NewUpload {
            id: fresh_id.clone(),
            owner: tester.key_id.clone(),
            protocol: UploadProtocol::Tus,
            length: Some(1000),
            offset: 0,
            part_size: 16,
            declared_sha256: None,
            filename: String::new(),
            metadata: serde_json::json!({}),
            concat: None,
            expires_at: Timestamp::now().plus(Duration::from_secs(3600)),
        })
        .await
        .expect("create fresh upload");
    let fresh = format!("{}{fresh_id}", server.endpoint);
    assert_eq!(server.patch(&fresh, 0, vec![4; 10]).await.status(), 204);

    let n_reaped = reel_upload::reap_expired(&server.state)
        .await
        .expect("reap");
    assert_eq!(n_reaped, 1);
    let row = server.upload_row(&expired).await;
    assert_eq!(row.status, UploadStatus::Aborted);
    assert_eq!(row.error.as_deref(), Some("expired"));
    assert_eq!(
        server.objects_under("uploads").await,
        vec![format!("uploads/{fresh_id}/parts/000001")]
    );
    assert_eq!(server.head(&expired).await.status(), 410);
    assert_eq!(
        reel_upload::reap_expired(&server.state)
            .await
            .expect("reap again"),
        0
    );
}

#[tokio::test]
async fn spawned_reaper_runs_until_shutdown() {
    let mut short = settings();
    short.expiry = Duration::from_millis(200);
    let server = TestServer::start(short).await;
    let url = server.create(100).await;
    assert_eq!(server.patch(&url, 0, vec![1; 10]).await.status(), 204);
    let shutdown = CancellationToken::new();
    let reaper = reel_upload::spawn_reaper(
        server.state.clone(),
        Duration::from_millis(100),
        shutdown.clone(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.upload_row(&url).await.status != UploadStatus::Aborted {
        assert!(
            tokio::time::Instant::now() < deadline,
            "reaper did not abort the upload"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.objects_under("uploads").await, Vec::<String>::new());
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), reaper)
        .await
        .expect("reaper stopped on shutdown")
        .expect("reaper task");
}
