//! The HTTP API of `reel serve`: keys, the verify job over real media, errors.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{generated_video, list_files, Api, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_an_admin_key_that_works() {
    let env = Env::sqlite();
    let (server, url) = env.serve(1);
    let line = server.wait_for_line("admin API key", Duration::from_secs(5));
    let key = line.rsplit(' ').next().expect("key").to_string();
    assert!(key.starts_with("reel_"), "{line}");
    let api = Api::new(url, key);
    let job = api.selftest(json!({"tasks": 3})).await;
    let done = api
        .wait_for_end(job["id"].as_str().expect("id"), Duration::from_secs(30))
        .await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let metrics = api
        .client
        .get(format!("{}/metrics", api.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("reel_tasks{state=\"succeeded\"} 5"),
        "{metrics}"
    );
    assert!(metrics.contains("reel_queue_depth 0"), "{metrics}");
    assert!(
        metrics.contains("reel_dispatch_latency_seconds_count 5"),
        "{metrics}"
    );
    // A second start with the same data dir creates no new key.
    drop(server);
    let (again, _) = env.serve(0);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !again.output().contains("admin API key"),
        "{}",
        again.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changing_routes_need_a_key_and_say_how_to_get_one() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve(0);
    let client = reqwest::Client::new();
    for auth in [None, Some("Bearer reel_wrong"), Some("Basic abc")] {
        let mut request = client
            .post(format!("{url}/v1/jobs/selftest"))
            .json(&json!({"tasks": 1}));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.expect("post");
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("reel keys create"),
            "{body}"
        );
    }
    // Reading needs no key.
    let listed = client
        .get(format!("{url}/v1/jobs"))
        .send()
        .await
        .expect("get");
    assert_eq!(listed.status(), 200);
    let malformed = client
        .get(format!("{url}/v1/jobs/..%2F..%2Fetc"))
        .send()
        .await
        .expect("get");
    assert_eq!(malformed.status(), 400);
    let missing = client
        .get(format!("{url}/v1/jobs/{}", reel_core::JobId::new_random()))
        .send()
        .await
        .expect("get");
    assert_eq!(missing.status(), 404);
    let bad_spec = client
        .post(format!("{url}/v1/jobs/selftest"))
        .bearer_auth(&key)
        .body("{\"tasks\": 0}")
        .send()
        .await
        .expect("post");
    assert_eq!(bad_spec.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_job_probes_media_fans_out_checksums_and_publishes_once() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve(2);
    let video = generated_video(env.dir.path());
    let bytes = std::fs::read(&video).expect("read video");
    let api = Api::new(url.clone(), key.clone());
    let response = api
        .client
        .post(format!("{url}/v1/jobs/verify"))
        .bearer_auth(&key)
        .body(bytes.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 201);
    let job: Value = response.json().await.expect("json");
    let id = job["id"].as_str().expect("id").to_string();
    let done = api.wait_for_end(&id, Duration::from_secs(60)).await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let probe = done["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|task| task["key"] == "probe")
        .expect("probe");
    assert_eq!(probe["output"]["video_streams"], 1);
    assert_eq!(probe["output"]["audio_streams"], 1);
    let n_checksums = done["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|task| task["kind"] == "checksum")
        .count();
    assert_eq!(n_checksums as u64, (bytes.len() as u64).div_ceil(1 << 20));
    let published = done["published"].as_array().expect("published");
    assert_eq!(published.len(), 1, "{done:#}");
    use sha2::Digest;
    assert_eq!(
        published[0]["sha256"],
        hex::encode(sha2::Sha256::digest(&bytes))
    );
    assert!(list_files(&env.objects_dir()).contains(&format!("jobs/{id}/report.json")));
    // `reel jobs show` reads the same state.
    let shown = env.run(&["jobs", "show", &id]);
    assert!(
        shown.contains("succeeded") && shown.contains("checksum-0") && shown.contains("published"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_media_fails_permanently_at_probe_with_the_reason() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve(1);
    let api = Api::new(url.clone(), key.clone());
    // A playlist disguised as a video must not make ffprobe fetch anything.
    let playlist =
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n";
    let response = api
        .client
        .post(format!("{url}/v1/jobs/verify"))
        .bearer_auth(&key)
        .body(playlist)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 201);
    let job: Value = response.json().await.expect("json");
    let done = api
        .wait_for_end(job["id"].as_str().expect("id"), Duration::from_secs(60))
        .await;
    assert_eq!(done["state"], "failed", "{done:#}");
    assert_eq!(done["error"]["step"], "probe");
    assert!(
        done["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("not media"),
        "{done:#}"
    );
    let probe = &done["tasks"][0];
    assert_eq!(probe["attempt"], 1, "a permanent error is not retried");
    let empty = api
        .client
        .post(format!("{url}/v1/jobs/verify"))
        .bearer_auth(&key)
        .body("")
        .send()
        .await
        .expect("post");
    assert_eq!(empty.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_uploads_over_the_size_limit() {
    let env = Env::sqlite();
    let key = env.create_key();
    let checked = env
        .command(&["config", "check"])
        .env("REEL_MAX_UPLOAD_SIZE", "1KiB")
        .output()
        .expect("config check");
    let resolved = String::from_utf8_lossy(&checked.stdout).to_string();
    assert!(
        resolved.contains("max_upload_size = \"1KiB\""),
        "{resolved}"
    );
    let (_server, url) = env.serve_with(0, &[("REEL_MAX_UPLOAD_SIZE", "1KiB")]);
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{url}/v1/jobs/verify"))
        .bearer_auth(&key)
        .body(vec![0u8; 4096])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("max_upload_size"),
        "{body}"
    );
    let sources = list_files(&env.objects_dir())
        .into_iter()
        .filter(|path| path.starts_with("sources/"))
        .count();
    assert_eq!(sources, 0, "nothing is left behind");
}
