//! The web app in Debian's headless Chromium (playwright-core), against the
//! real `reel serve` with the built app (`make web` builds `web/dist`):
//! sign in, upload a private video through the page with the network cut
//! mid-upload, wait until ready, play it to the end through the signed URLs
//! the watch page mints and renews, refused to an anonymous browser until
//! the owner makes it public there; the watch page's player stepping
//! down under CDP throttling and back up when it is lifted; and its tracks:
//! the audio and captions menus in both engines, the codec line, a caption
//! upload (a broken file shows the server's error) and an MP4 download.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{run_client as browser, subrip, tracks_video, Env, GeneratedCue};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn web_dir() -> String {
    let dir = root().join("web/dist");
    assert!(
        dir.join("index.html").is_file(),
        "{} has no built app: run `make web` (make test does)",
        dir.display()
    );
    dir.display().to_string()
}

fn generate(path: &Path, size: &str, seconds: u32) {
    reel_testkit::media::Lavfi::video(size, "30", seconds)
        .with_audio(48000)
        .write(path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_uploads_a_private_video_through_a_network_cut_and_only_its_owner_plays_it() {
    let env = Env::sqlite();
    let key = env.create_key();
    let web = web_dir();
    let (_server, url) = env.serve_with(
        2,
        &[
            ("REEL_WEB_DIR", web.as_str()),
            ("REEL_ENCODE_PRESET", "ultrafast"),
        ],
    );
    let file = env.dir.path().join("from-the-browser.mp4");
    generate(&file, "854x480", 12);
    let report = browser(
        "web-e2e.mjs",
        &[&url, &key, &file.display().to_string(), "--timeout", "240"],
    );
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["ended"], true, "{report:#}");
    assert!(
        report["offlineAt"].as_f64().is_some(),
        "the network was cut: {report:#}"
    );
    assert_eq!(report["resumed"], true, "{report:#}");
    let video_id = report["videoId"].as_str().expect("video id");
    let duration = report["duration"].as_f64().expect("duration");
    let played = report["currentTime"].as_f64().expect("currentTime");
    assert!((duration - 12.0).abs() < 0.5, "{report:#}");
    assert!(played >= duration - 0.5, "{report:#}");
    // Private: uploaded so, played only through signed URLs, renewed in time.
    let private = &report["private"];
    eprintln!("private playback: {private}");
    assert_eq!(private["libraryVisibility"], "private", "{report:#}");
    assert_eq!(private["unsignedRequests"], 0, "{report:#}");
    assert_eq!(private["refusals"], 0, "{report:#}");
    assert!(
        private["mints"].as_u64() >= Some(2) && private["tokensUsed"].as_u64() >= Some(2),
        "the page renewed its token and the player used the new one: {report:#}"
    );
    assert!(
        private["lateRequests"].as_u64() >= Some(1),
        "media was fetched after the first token ended: {report:#}"
    );
    // Shaka plays the signed DASH manifest too.
    assert!(private["dashManifests"].as_u64() >= Some(1), "{report:#}");
    assert!(private["dashPlayedTo"].as_f64() > Some(1.0), "{report:#}");
    // An anonymous browser: a message, no player, no media, not listed.
    let message = private["anonymousMessage"].as_str().unwrap_or_default();
    assert!(message.contains("private"), "{report:#}");
    assert_eq!(private["anonymousPlayer"], false, "{report:#}");
    assert_eq!(private["anonymousMediaRequests"], 0, "{report:#}");
    assert_eq!(private["anonymousListed"], false, "{report:#}");
    // The owner made it public on the watch page: the server says so, and
    // the anonymous page loaded it.
    assert!(
        private["publicReadyState"].as_u64() >= Some(1),
        "{report:#}"
    );
    let shown: Value = reqwest::get(format!("{url}/v1/videos/{video_id}"))
        .await
        .expect("show")
        .json()
        .await
        .expect("json");
    assert_eq!(shown["visibility"], "public", "{shown:#}");
    // The file that arrived is the file that was picked.
    let sent = std::fs::read(&file).expect("file");
    let stored = std::fs::read(env.objects_dir().join(format!("sources/{video_id}/source")))
        .expect("the uploaded source");
    assert_eq!(Sha256::digest(&stored), Sha256::digest(&sent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_page_steps_down_when_throttled_and_back_up() {
    let env = Env::sqlite();
    let key = env.create_key();
    let web = web_dir();
    let (_server, url) = env.serve_with(
        2,
        &[
            ("REEL_WEB_DIR", web.as_str()),
            ("REEL_ENCODE_PRESET", "ultrafast"),
        ],
    );
    let file = env.dir.path().join("ladder.mp4");
    generate(&file, "854x480", 60);
    let video = env.ingest(&url, &key, &file);
    assert_eq!(
        video["renditions"].as_array().map(Vec::len),
        Some(3),
        "{video:#}"
    );
    let id = video["id"].as_str().expect("id");
    let report = browser("web-abr.mjs", &[&url, id, "--timeout", "240"]);
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["steppedDown"], true, "{report:#}");
    assert_eq!(report["steppedUp"], true, "{report:#}");
    // The heights seen: the top one before the throttle, the lowest under
    // it, a higher one after it was lifted.
    let heights: Vec<(String, u64)> = report["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .filter_map(|sample| {
            Some((
                sample["phase"].as_str()?.to_string(),
                sample["height"].as_u64()?,
            ))
        })
        .collect();
    let lowest = report["lowest"].as_u64().expect("lowest");
    assert!(
        heights
            .iter()
            .any(|(phase, height)| phase == "throttled" && *height == lowest),
        "{report:#}"
    );
    eprintln!("watch page levels: {heights:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_page_switches_audio_shows_captions_takes_a_caption_file_and_downloads_an_mp4() {
    let env = Env::sqlite();
    let key = env.create_key();
    let web = web_dir();
    let (_server, url) = env.serve_with(
        2,
        &[
            ("REEL_WEB_DIR", web.as_str()),
            ("REEL_ENCODE_PRESET", "ultrafast"),
        ],
    );
    let dir = env.dir.path();
    let (file, _) = tracks_video(dir, "320x180", 40);
    let video = env.ingest(&url, &key, &file);
    assert_eq!(video["state"], "ready", "{video:#}");
    let id = video["id"].as_str().expect("id");
    let good = dir.join("deutsch.srt");
    let german: Vec<GeneratedCue> = (0..20)
        .map(|cue_idx| GeneratedCue {
            start_ms: cue_idx * 2000,
            end_ms: cue_idx * 2000 + 1900,
            text: format!("Untertitel {}", cue_idx + 1),
        })
        .collect();
    std::fs::write(&good, subrip(&german)).expect("write");
    // The second cue's arrow is wrong (line 6).
    let bad = dir.join("broken.srt");
    std::fs::write(
        &bad,
        "1\n00:00:01,000 --> 00:00:02,000\nGut\n\n2\n00:00:03,000 -> 00:00:04,000\nKaputt\n",
    )
    .expect("write");
    let downloads = dir.join("downloads");
    std::fs::create_dir_all(&downloads).expect("mkdir");
    let path = |path: &Path| path.display().to_string();
    let report = browser(
        "web-tracks.mjs",
        &[
            &url,
            &key,
            id,
            &path(&good),
            &path(&bad),
            &path(&downloads),
            "--timeout",
            "240",
        ],
    );
    eprintln!("watch page tracks: {report}");
    assert_eq!(report["ok"], true, "{report:#}");
    for engine in ["hls", "dash"] {
        let seen = &report["engines"][engine];
        assert_eq!(seen["audioLanguageBefore"], "en", "{engine}: {report:#}");
        assert_eq!(seen["audioLanguageAfter"], "fr", "{engine}: {report:#}");
        let switched_at = seen["switchedAt"].as_f64().expect("switchedAt");
        assert!(
            seen["lowestAfterSwitch"].as_f64() >= Some(switched_at - 0.1)
                && seen["playedTo"].as_f64() > Some(switched_at + 1.0),
            "{engine}: the switch did not restart playback: {report:#}"
        );
        assert!(
            seen["cue"]
                .as_str()
                .is_some_and(|cue| cue.starts_with("Cue ")),
            "{engine}: {report:#}"
        );
        assert!(
            seen["codecLine"]
                .as_str()
                .is_some_and(|line| line.starts_with("H.264 (avc1.")),
            "{engine}: {report:#}"
        );
    }
    let refused = report["badUpload"]["message"].as_str().unwrap_or_default();
    assert!(
        refused.contains("line 6") && report["badUpload"]["alert"] == true,
        "{report:#}"
    );
    assert!(
        report["goodUpload"]["message"]
            .as_str()
            .is_some_and(|message| message.starts_with("Added \"Deutsch\" (20 cues)")),
        "{report:#}"
    );
    assert!(
        report["goodUpload"]["cue"]
            .as_str()
            .is_some_and(|cue| cue.starts_with("Untertitel ")),
        "{report:#}"
    );
    // The file the link downloaded is the MP4 of the video, sound included.
    let downloaded = report["download"]["path"].as_str().expect("download path");
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type:format=duration,format_name",
            "-of",
            "json",
            downloaded,
        ])
        .output()
        .expect("ffprobe");
    let probed: Value = serde_json::from_slice(&output.stdout).expect("ffprobe JSON");
    assert!(
        probed["format"]["format_name"]
            .as_str()
            .is_some_and(|name| name.contains("mp4")),
        "{probed}"
    );
    let kinds: Vec<&str> = probed["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .filter_map(|stream| stream["codec_type"].as_str())
        .collect();
    assert_eq!(kinds, ["video", "audio"], "{probed}");
    let duration: f64 = probed["format"]["duration"]
        .as_str()
        .and_then(|text| text.parse().ok())
        .expect("duration");
    assert!((duration - 40.0).abs() < 0.1, "{probed}");
}
