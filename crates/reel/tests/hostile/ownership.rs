//! Findings 1, 2 and 12: another key's videos, uploads and jobs. A key may
//! not learn that another's exist: 404, and nothing changes.

use reqwest::Method;

use super::Tenants;

/// Finding 1: `DELETE /v1/videos/{id}` of another key's video.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_keys_video_cannot_be_deleted() {
    let t = Tenants::start();
    let video = t.upload(&t.alice).await;
    let id = video["id"].as_str().expect("id");
    let source = t.env.objects_dir().join(format!("sources/{id}/source"));
    assert!(source.exists());

    let response = t
        .request(Method::DELETE, &format!("/v1/videos/{id}"), &t.mallory)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status(), 404);

    // Nothing was removed: the row, its job and its source are all there.
    let (status, still) = t.get(&format!("/v1/videos/{id}"), &t.alice).await;
    assert_eq!(status, 200);
    assert_eq!(still["job_id"], video["job_id"]);
    assert!(source.exists(), "the source was removed");
    // The owner still can, and so can an admin.
    let other = t.upload(&t.alice).await;
    for (video, key) in [(&video, &t.alice), (&other, &t.admin)] {
        let response = t
            .request(
                Method::DELETE,
                &format!("/v1/videos/{}", video["id"].as_str().expect("id")),
                key,
            )
            .send()
            .await
            .expect("DELETE");
        assert_eq!(response.status(), 200);
    }
}

/// Finding 2: `POST /v1/jobs/{id}/cancel` of another key's video job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_keys_job_cannot_be_cancelled() {
    let t = Tenants::start();
    let video = t.upload(&t.alice).await;
    let job = video["job_id"].as_str().expect("job id").to_string();

    let response = t
        .request(Method::POST, &format!("/v1/jobs/{job}/cancel"), &t.mallory)
        .send()
        .await
        .expect("cancel");
    assert_eq!(response.status(), 404);
    let (_, view) = t.get(&format!("/v1/jobs/{job}"), &t.admin).await;
    assert_eq!(view["state"], "queued", "{view}");

    // The owner's own cancel works.
    let response = t
        .request(Method::POST, &format!("/v1/jobs/{job}/cancel"), &t.alice)
        .send()
        .await
        .expect("cancel");
    assert_eq!(response.status(), 200);
}

/// Uploaders list only their own videos and jobs; an admin lists all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaders_list_only_their_own() {
    let t = Tenants::start();
    let video = t.upload(&t.alice).await;
    let id = video["id"].as_str().expect("id").to_string();
    let job = video["job_id"].as_str().expect("job").to_string();

    assert_eq!(t.listed_videos(&t.alice).await, vec![id.clone()]);
    assert!(t.listed_videos(&t.mallory).await.is_empty());
    assert_eq!(t.listed_videos(&t.admin).await, vec![id]);
    assert_eq!(t.listed_jobs(&t.alice).await, vec![job.clone()]);
    assert!(t.listed_jobs(&t.mallory).await.is_empty());
    assert_eq!(t.listed_jobs(&t.admin).await, vec![job]);
}

/// Finding 12: ownership was the key's name, which was not unique, so a
/// second key named like the first read its uploads. Names are unique now,
/// and uploads belong to the key's id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_key_with_the_same_name_is_refused() {
    let t = Tenants::start();
    let output = t
        .env
        .command(&["keys", "create", "--name", "alice", "--json"])
        .output()
        .expect("run reel");
    assert!(
        !output.status.success(),
        "a second key named alice was created"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("already"), "{stderr}");

    // Alice's open upload is hers alone.
    let response = t
        .request(Method::POST, "/v1/uploads", &t.alice)
        .json(&serde_json::json!({"filename": "a.mp4", "size": 1000}))
        .send()
        .await
        .expect("create upload");
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let upload: serde_json::Value = response.json().await.expect("upload JSON");
    let upload_id = upload["id"].as_str().expect("upload id");
    for method in [Method::GET, Method::DELETE] {
        let response = t
            .request(method, &format!("/v1/uploads/{upload_id}"), &t.mallory)
            .send()
            .await
            .expect("upload request");
        assert_eq!(response.status(), 404);
    }
    let (status, mine) = t.get(&format!("/v1/uploads/{upload_id}"), &t.alice).await;
    assert_eq!(status, 200);
    assert_eq!(mine["state"], "open", "{mine}");
}
