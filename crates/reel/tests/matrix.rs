//! The browser matrix of issue 14: hls.js, dash.js and Shaka Player in
//! Debian's chromium (`tests/clients/play-{hls,dash,shaka}.mjs`) against one
//! `reel serve` that encoded each source once: a video with English and
//! French audio and English captions (the audio switched mid-play, each cue
//! shown within 100 ms of the time it was generated with, H.264 chosen with
//! AV1 reported unsupported), an audio-only video and a 120 s video (each
//! played to `ended` three times in one browser session); and, on a server
//! of its own encoding H.264 and AV1, a video on which each player chooses AV1 unless AV1 is reported
//! unsupported.

use serde_json::Value;

use crate::common::{run_client, tracks_video, Env, GeneratedCue};

/// Each player's script and the manifest it plays (`hls` or `dash` of the
/// video's JSON).
const PLAYERS: [(&str, &str); 3] = [
    ("play-hls.mjs", "hls"),
    ("play-dash.mjs", "dash"),
    ("play-shaka.mjs", "dash"),
];

/// How far from its generated start a cue may be shown, in media seconds.
const CUE_TOLERANCE_SECONDS: f64 = 0.1;

/// Plays runs faster than real time: the players still fetch and append
/// every segment and must reach `ended`.
const FAST_RATE: &str = "16";

/// The video codec among the codec strings a player gave MSE.
fn video_codec(report: &Value) -> String {
    report["chosenCodecs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_ascii_lowercase)
        .find(|codec| {
            ["avc1", "avc3", "av01", "hvc1", "hev1"]
                .iter()
                .any(|prefix| codec.starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no video codec chosen: {report:#}"))
}

/// `script` playing the video's manifest `kind` with `args`.
fn play(script: &str, video: &Value, kind: &str, args: &[&str]) -> Value {
    let url = video[kind].as_str().expect("manifest URL");
    let report = run_client(script, &[&[url], args].concat());
    eprintln!(
        "{script} {}: {} ms, chosen {}",
        args.join(" "),
        report["elapsedMs"],
        report["chosenCodecs"]
    );
    report
}

/// The audio switch happened mid-play: the player reported the new track
/// active, and media went on playing past the switch without restarting.
fn check_audio_switch(script: &str, report: &Value) {
    let change = &report["audioSwitch"];
    assert_eq!(change["before"], "en", "{script}: {report:#}");
    let requested_at = change["requestedAt"].as_f64().expect("requestedAt");
    let active_at = change["activeAt"]
        .as_f64()
        .unwrap_or_else(|| panic!("{script} never reported French active: {report:#}"));
    assert!(active_at >= requested_at, "{script}: {report:#}");
    assert!(
        change["playedTo"].as_f64() > Some(active_at + 1.0)
            && change["lowest"].as_f64() >= Some(requested_at - 0.1),
        "{script}: media did not play on past the switch: {report:#}"
    );
}

/// Every generated cue was shown, within the tolerance of its start.
fn check_cues(script: &str, report: &Value, cues: &[GeneratedCue]) {
    let events = report["cueEvents"].as_array().expect("cueEvents");
    for cue in cues {
        let shown = events
            .iter()
            .find(|event| event["text"] == cue.text.as_str())
            .unwrap_or_else(|| panic!("{script} never showed {:?}: {report:#}", cue.text));
        let at = shown["currentTime"].as_f64().expect("currentTime");
        let start = cue.start_ms as f64 / 1000.0;
        assert!(
            (at - start).abs() <= CUE_TOLERANCE_SECONDS,
            "{script} showed {:?} at {at} s, generated at {start} s: {report:#}",
            cue.text
        );
    }
}

/// Every one of the three runs reached `ended` at the video's duration.
fn check_three_ended(script: &str, report: &Value, seconds: f64) {
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3, "{script}: {report:#}");
    for run in runs {
        assert_eq!(run["ended"], true, "{script}: {report:#}");
        let played = run["currentTime"].as_f64().expect("currentTime");
        assert!((played - seconds).abs() < 0.5, "{script}: {report:#}");
    }
}

#[test]
fn every_player_switches_audio_shows_cues_on_time_ends_every_run_and_picks_h264() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve_with(2, &[("REEL_ENCODE_PRESET", "ultrafast")]);
    let dir = env.dir.path();
    let (tracks_file, cues) = tracks_video(dir, "320x180", 9);
    let audio_only = dir.join("audio-only.m4a");
    reel_testkit::media::ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "10",
            "-c:a",
            "aac",
        ],
        &audio_only,
    );
    let long = reel_testkit::media::Lavfi::video("160x90", "10", 120)
        .with_audio(48000)
        .write(dir.join("long.mp4"));
    let ingest = |file: &std::path::Path| {
        let video = env.ingest(&url, &key, file);
        assert_eq!(video["state"], "ready", "{video:#}");
        video
    };
    let tracks = &ingest(&tracks_file);
    let audio_only = &ingest(&audio_only);
    let long = &ingest(&long);
    for (script, kind) in PLAYERS {
        let report = play(
            script,
            tracks,
            kind,
            &[
                "--timeout",
                "90",
                "--rate",
                "2",
                "--audio-language",
                "fr",
                "--switch-at",
                "2",
                "--text-language",
                "en",
                "--block-codec",
                "av01",
            ],
        );
        check_audio_switch(script, &report);
        check_cues(script, &report, &cues);
        assert!(
            video_codec(&report).starts_with("avc1"),
            "{script}: {report:#}"
        );

        let report = play(
            script,
            audio_only,
            kind,
            &["--timeout", "60", "--rate", FAST_RATE, "--runs", "3"],
        );
        check_three_ended(script, &report, 10.0);

        let report = play(
            script,
            long,
            kind,
            &["--timeout", "120", "--rate", FAST_RATE, "--runs", "3"],
        );
        check_three_ended(script, &report, 120.0);
        assert!(
            video_codec(&report).starts_with("avc1"),
            "{script}: {report:#}"
        );
    }
}

/// Issue 14's codec choice with an H.264 + AV1 presentation: each player
/// chooses AV1, and H.264 when AV1 is reported unsupported.
#[test]
fn plays_h264_and_av1_choosing_av1_unless_blocked() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve_with(
        2,
        &[
            ("REEL_ENCODE_PRESET", "ultrafast"),
            ("REEL_ENCODE_CODECS", "h264,av1"),
        ],
    );
    let file = reel_testkit::media::Lavfi::video("320x180", "25", 4)
        .with_audio(48000)
        .write(env.dir.path().join("two-codecs.mp4"));
    let video = env.ingest(&url, &key, &file);
    assert_eq!(video["state"], "ready", "{video:#}");
    for (script, kind) in PLAYERS {
        let free = play(script, &video, kind, &["--timeout", "60", "--rate", "4"]);
        assert!(video_codec(&free).starts_with("av01"), "{script}: {free:#}");
        let blocked = play(
            script,
            &video,
            kind,
            &["--timeout", "60", "--rate", "4", "--block-codec", "av01"],
        );
        assert!(
            video_codec(&blocked).starts_with("avc1"),
            "{script}: {blocked:#}"
        );
    }
}
