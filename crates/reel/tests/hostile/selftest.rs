//! Finding 7: `POST /v1/jobs/selftest` is bounded and runs after every
//! video, so it cannot stall other users' videos.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::edges::admin_key;
use crate::common::{generated_video, Api, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selftest_specs_over_the_bounds_are_refused_and_nothing_is_created() {
    let env = Env::sqlite();
    let (server, url) = env.serve(0);
    let admin = admin_key(&server);
    let client = reqwest::Client::new();
    for (spec, needle) in [
        (json!({"tasks": 100_000}), "tasks must be between 1 and"),
        (
            json!({"tasks": 1, "delay_ms": 1_000_000_000u64}),
            "delay_ms must be at most",
        ),
        (
            json!({"tasks": 2000, "delay_ms": 60_000}),
            "tasks × delay_ms",
        ),
        (
            json!({"tasks": 1, "max_attempts": 1000}),
            "max_attempts must be between 1 and",
        ),
        (
            json!({"tasks": 1, "max_attempts": 0}),
            "max_attempts must be between 1 and",
        ),
    ] {
        let response = client
            .post(format!("{url}/v1/jobs/selftest"))
            .bearer_auth(&admin)
            .json(&spec)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 400, "{spec}");
        let body: Value = response.json().await.expect("json");
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(needle), "{spec}: {message}");
    }
    let jobs: Value = client
        .get(format!("{url}/v1/jobs"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(jobs["jobs"].as_array().map(Vec::len), Some(0), "{jobs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_selftest_does_not_stall_a_video_behind_it() {
    let env = Env::sqlite();
    let (server, url) = env.serve(1);
    let admin = admin_key(&server);
    let api = Api::new(url.clone(), admin.clone());
    // 1,000 tasks of 500 ms on the one slot: over eight minutes of work,
    // queued before the video.
    let selftest = api.selftest(json!({"tasks": 1000, "delay_ms": 500})).await;
    let selftest_id = selftest["id"].as_str().expect("id").to_string();
    api.wait_until(&selftest_id, Duration::from_secs(60), |job| {
        job["tasks"].as_array().is_some_and(|tasks| tasks.len() > 1)
    })
    .await;
    let source = std::fs::read(generated_video(env.dir.path())).expect("video");
    let created: Value = api
        .client
        .post(format!("{url}/v1/videos?title=behind"))
        .bearer_auth(&admin)
        .body(source)
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let video_job = created["job_id"].as_str().expect("job id").to_string();
    let started = Instant::now();
    let done = api.wait_for_end(&video_job, Duration::from_secs(300)).await;
    assert_eq!(done["state"], "succeeded", "{}", done["error"]);
    let selftest = api.job(&selftest_id).await;
    let touched = selftest["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|task| task["state"] == "succeeded")
        .count();
    assert_ne!(selftest["state"], "succeeded", "the selftest ran first");
    assert!(
        touched < 1000,
        "{touched} selftest tasks ran before the video finished ({:?})",
        started.elapsed()
    );
}
