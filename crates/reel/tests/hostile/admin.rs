//! The admin parts of findings 3 and 7: edges and the verify and selftest
//! jobs need the admin role (403, naming it), and nothing is stored.

use reqwest::Method;
use serde_json::json;

use super::{refusal, Tenants};

/// Finding 3: registering, replacing or removing an edge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_need_the_admin_role() {
    let t = Tenants::start();
    let edge = json!({"name": "eu", "url": "http://127.0.0.1:9", "location": "50,8"});
    let response = t
        .request(Method::POST, "/v1/edges", &t.admin)
        .json(&edge)
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), 200);

    let hostile = json!({"name": "eu", "url": "http://127.0.0.1:1", "location": "0,0"});
    for response in [
        t.request(Method::POST, "/v1/edges", &t.mallory)
            .json(&hostile),
        t.request(Method::POST, "/v1/edges", &t.mallory)
            .json(&json!({"name": "first", "url": "http://127.0.0.1:2"})),
        t.request(Method::DELETE, "/v1/edges/eu", &t.mallory),
        t.request(Method::GET, "/v1/edges", &t.mallory),
    ] {
        let message = refusal(response.send().await.expect("edge request"), 403).await;
        assert!(message.contains("needs the admin role"), "{message}");
    }
    // The registry is as the admin left it.
    let (status, edges) = t.get("/v1/edges", &t.admin).await;
    assert_eq!(status, 200);
    let edges = edges["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 1, "{edges:?}");
    assert_eq!(edges[0]["name"], "eu");
    assert_eq!(edges[0]["url"], "http://127.0.0.1:9/");
}

/// Finding 7 (and 6's verify part): engine jobs that are not videos.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_selftest_jobs_need_the_admin_role() {
    let t = Tenants::start();
    let selftest = t
        .request(Method::POST, "/v1/jobs/selftest", &t.mallory)
        .json(&json!({"tasks": 100000, "delay_ms": 1000}))
        .send()
        .await
        .expect("selftest");
    let message = refusal(selftest, 403).await;
    assert!(message.contains("needs the admin role"), "{message}");
    let verify = t
        .request(Method::POST, "/v1/jobs/verify", &t.mallory)
        .body(vec![1u8; 10_000])
        .send()
        .await
        .expect("verify");
    let message = refusal(verify, 403).await;
    assert!(message.contains("needs the admin role"), "{message}");

    // No job exists and nothing was stored.
    assert!(t.listed_jobs(&t.admin).await.is_empty());
    let objects = t.env.objects_dir();
    let stored = std::fs::read_dir(&objects)
        .map(|entries| entries.count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "objects were stored under {}", objects.display());

    // The admin still may.
    let selftest = t
        .request(Method::POST, "/v1/jobs/selftest", &t.admin)
        .json(&json!({"tasks": 2, "delay_ms": 0}))
        .send()
        .await
        .expect("selftest");
    assert_eq!(selftest.status(), 201);
}

/// Webhooks carry every owner's events: an uploader may not subscribe, list
/// or delete them, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_need_the_admin_role() {
    let t = Tenants::start();
    let hook = json!({"url": "http://127.0.0.1:9/hook", "events": ["video.ready"]});
    let created = t
        .request(Method::POST, "/v1/webhooks", &t.admin)
        .json(&hook)
        .send()
        .await
        .expect("admin subscribes");
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.expect("webhook json");
    let id = created["id"].as_str().expect("webhook id").to_string();
    for response in [
        t.request(Method::POST, "/v1/webhooks", &t.mallory)
            .json(&hook),
        t.request(Method::GET, "/v1/webhooks", &t.mallory),
        t.request(Method::DELETE, &format!("/v1/webhooks/{id}"), &t.mallory),
    ] {
        let message = refusal(response.send().await.expect("webhook request"), 403).await;
        assert!(message.contains("needs the admin role"), "{message}");
    }
    let (status, listed) = t.get("/v1/webhooks", &t.admin).await;
    assert_eq!(status, 200);
    let listed = listed["webhooks"].as_array().expect("webhooks");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.as_str());
}
