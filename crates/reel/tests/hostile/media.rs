//! Finding 10: decoder pixel limits on every ffmpeg run. An MPEG-TS whose
//! first frames are small (so ffprobe's first SPS passes the limits) and
//! whose later frames are over `limits.max_width × limits.max_height` fails
//! with a job error naming the step, instead of being decoded.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::edges::admin_key;
use crate::common::{Api, Env};

fn transport_stream(dir: &Path, name: &str, size: &str, seconds: &str) -> Vec<u8> {
    let path = reel_testkit::media::Lavfi::video(size, "25", seconds)
        .args(["-g", "25", "-f", "mpegts"])
        .write(dir.join(name));
    std::fs::read(&path).expect("read ts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_grows_past_the_pixel_limit_mid_way_fails_its_job() {
    let env = Env::sqlite();
    let (server, url) = env.serve_with(
        1,
        &[
            ("REEL_MAX_WIDTH", "640"),
            ("REEL_MAX_HEIGHT", "480"),
            ("REEL_FFMPEG_MEMORY", "1GiB"),
        ],
    );
    let admin = admin_key(&server);
    // 320x240 for 4 s, then 1280x960 (four times the limit's pixels).
    let mut source = transport_stream(env.dir.path(), "small.ts", "320x240", "4");
    source.extend(transport_stream(
        env.dir.path(),
        "large.ts",
        "1280x960",
        "2",
    ));
    let api = Api::new(url.clone(), admin.clone());
    let created: Value = api
        .client
        .post(format!("{url}/v1/videos?title=switching"))
        .bearer_auth(&admin)
        .body(source)
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let job_id = created["job_id"].as_str().expect("job id").to_string();
    let done = api.wait_for_end(&job_id, Duration::from_secs(240)).await;
    assert_eq!(done["state"], "failed", "{done:#}");
    let error = &done["error"];
    let step = error["step"].as_str().unwrap_or("");
    let message = error["message"].as_str().unwrap_or("");
    assert!(!step.is_empty(), "the error names no step: {error}");
    assert!(
        message.contains("over the limit of 307200 pixels"),
        "{step}: {message}"
    );
    let video: Value = api
        .client
        .get(format!(
            "{url}/v1/videos/{}",
            created["id"].as_str().expect("id")
        ))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(video["state"], "failed", "{video}");
}
