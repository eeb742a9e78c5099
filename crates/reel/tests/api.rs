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
    // The owner reads why, not where: no server paths, no command line.
    let message = done["error"]["message"].as_str().unwrap_or("");
    let data_dir = env.dir.path().to_string_lossy().to_string();
    assert!(
        !message.contains(&data_dir) && !message.contains("command:"),
        "{message}"
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

/// Signing in once gives an HTTP-only session cookie that authenticates
/// like the key, refuses state changes from other origins, and ends at
/// sign-out; the built web app is served with its pages falling back to
/// `index.html`, and nothing outside its folder is reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sessions_and_the_web_app() {
    let env = Env::sqlite();
    let key = env.create_key();
    let web = env.dir.path().join("web");
    std::fs::create_dir_all(web.join("assets")).expect("mkdir");
    std::fs::write(
        web.join("index.html"),
        "<!doctype html><title>reel app</title>",
    )
    .expect("write");
    std::fs::write(web.join("assets/app-1234.js"), "console.log(1)").expect("write");
    std::fs::write(env.dir.path().join("secret.txt"), "do not serve").expect("write");
    let web_dir = web.display().to_string();
    let (_server, url) = env.serve_with(0, &[("REEL_WEB_DIR", web_dir.as_str())]);
    let client = reqwest::Client::new();
    let host = url.trim_start_matches("http://").to_string();

    let refused = client
        .post(format!("{url}/v1/session"))
        .json(&json!({"api_key": "reel_wrong"}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(refused.status(), 401);
    let signed_in = client
        .post(format!("{url}/v1/session"))
        .json(&json!({"api_key": key}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), 200);
    let cookie_header = signed_in.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(cookie_header.contains("HttpOnly"), "{cookie_header}");
    assert!(cookie_header.contains("SameSite=Strict"), "{cookie_header}");
    assert!(
        !cookie_header.contains(&key),
        "the key never goes into the cookie"
    );
    let cookie = cookie_header.split(';').next().expect("pair").to_string();
    let session: Value = client
        .get(format!("{url}/v1/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    assert_eq!(session["signed_in"], true, "{session:#}");
    // A state change by cookie needs the server's own Origin.
    let upload = |origin: Option<String>| {
        let mut request = client
            .post(format!("{url}/v1/uploads"))
            .header("cookie", &cookie)
            .json(&json!({"size": 1000}));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    assert_eq!(upload(None).await.expect("post").status(), 401);
    let cross = upload(Some("http://evil.example".to_string()))
        .await
        .expect("post");
    assert_eq!(cross.status(), 401);
    let message = cross.text().await.expect("text");
    assert!(message.contains("Origin"), "{message}");
    assert_eq!(
        upload(Some(format!("http://{host}")))
            .await
            .expect("post")
            .status(),
        201
    );
    let signed_out = client
        .delete(format!("{url}/v1/session"))
        .header("cookie", &cookie)
        .header("origin", format!("http://{host}"))
        .send()
        .await
        .expect("sign out");
    assert_eq!(signed_out.status(), 204);
    let after = client
        .get(format!("{url}/v1/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("session");
    assert_eq!(after.status(), 401);

    for page in ["/", "/upload", "/signin", "/watch/some-id"] {
        let response = client
            .get(format!("{url}{page}"))
            .send()
            .await
            .expect("page");
        assert_eq!(response.status(), 200, "{page}");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        assert!(response.text().await.expect("text").contains("reel app"));
    }
    let asset = client
        .get(format!("{url}/assets/app-1234.js"))
        .send()
        .await
        .expect("asset");
    assert_eq!(asset.status(), 200);
    assert!(asset.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/javascript"));
    assert!(asset.headers()["cache-control"]
        .to_str()
        .expect("ascii")
        .contains("immutable"));
    for escape in [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/nothing",
    ] {
        let response = client
            .get(format!("{url}{escape}"))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 404, "{escape}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_errors_tell_clients_what_failed_without_store_text() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (server, url) = env.serve(0);
    // The video exists (the origin answers 404 for media of a missing one);
    // with no worker its job never starts.
    let created = reqwest::Client::new()
        .post(format!("{url}/v1/videos?title=blocked"))
        .bearer_auth(&key)
        .body(vec![7u8; 4096])
        .send()
        .await
        .expect("POST /v1/videos");
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("video JSON");
    let video = created["id"].as_str().expect("video id").to_string();
    let video = video.as_str();
    // A real store failure: the video's folder is a file, so reading a
    // segment under it fails with "Not a directory" and the file's path.
    let videos_dir = env.objects_dir().join("videos");
    let folder = videos_dir.join(video);
    if folder.exists() {
        std::fs::remove_dir_all(&folder).expect("remove the video's folder");
    }
    std::fs::create_dir_all(&videos_dir).expect("videos dir");
    std::fs::write(&folder, b"not a folder").expect("blocking file");
    let response = reqwest::Client::new()
        .get(format!("{url}/v/{video}/h264-720p/seg-00001.m4s"))
        .header("x-request-id", "test-request-42")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["x-request-id"], "test-request-42");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "internal", "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("reading the file failed"), "{message}");
    let objects = env.objects_dir().display().to_string();
    for leak in [
        objects.as_str(),
        "videos/",
        video,
        "directory",
        "os error",
        "/tmp",
    ] {
        assert!(!message.contains(leak), "{leak:?} in {message}");
    }
    // The log keeps the detail, under the request's id.
    let line = server.wait_for_line("reading the file failed", Duration::from_secs(5));
    assert!(line.contains("test-request-42"), "{line}");
    assert!(line.contains(video), "{line}");
}
