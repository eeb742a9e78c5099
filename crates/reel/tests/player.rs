//! `reel play` against manifests served on loopback by the test itself: a corpus of
//! hostile manifests, each of which must end in an error (not a panic) with the player's
//! peak RSS under 64 MiB, and a failover to a pathway with fewer renditions and segments.

use std::process::{Command, Stdio};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use crate::common::REEL;

/// Serves `handler` on 127.0.0.1:0 and gives its base URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{address}")
}

/// How a `reel play` run ended.
struct Run {
    exit_code: Option<i32>,
    signal: Option<i32>,
    peak_rss_kib: i64,
    stdout: String,
    stderr: String,
}

/// Starts `reel play` from a small Python process, which reports the peak RSS of its
/// child (`RUSAGE_CHILDREN`) into a file and ends as the child did. The test binary
/// cannot measure it with wait4 itself: a child spawned with vfork or posix_spawn
/// shares the parent's memory until it execs, and `ru_maxrss` keeps that high-water
/// mark, so it would report the test harness's RSS, not the player's.
const MEASURE_RSS: &str = r#"
import os, resource, signal, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"#;

/// Runs `reel play ARGS URL` and measures its peak RSS.
async fn play(url: String, args: &'static [&'static str]) -> Run {
    tokio::task::spawn_blocking(move || {
        let stdout = tempfile::NamedTempFile::new().expect("stdout file");
        let stderr = tempfile::NamedTempFile::new().expect("stderr file");
        let peak = tempfile::NamedTempFile::new().expect("peak RSS file");
        let status = Command::new("python3")
            .arg("-c")
            .arg(MEASURE_RSS)
            .arg(peak.path())
            .arg(REEL)
            .arg("play")
            .args(args)
            .arg(&url)
            .env("REEL_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(stdout.reopen().expect("stdout"))
            .stderr(stderr.reopen().expect("stderr"))
            .status()
            .expect("spawn python3 running reel play");
        use std::os::unix::process::ExitStatusExt;
        let peak_rss_kib = std::fs::read_to_string(peak.path())
            .expect("peak RSS")
            .trim()
            .parse()
            .expect("peak RSS in KiB");
        Run {
            exit_code: status.code(),
            signal: status.signal(),
            peak_rss_kib,
            stdout: std::fs::read_to_string(stdout.path()).expect("stdout"),
            stderr: std::fs::read_to_string(stderr.path()).expect("stderr"),
        }
    })
    .await
    .expect("play thread")
}

fn mpd(template: &str, timeline: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\"><Period>\
<AdaptationSet contentType=\"video\" mimeType=\"video/mp4\"><SegmentTemplate timescale=\"1000\" media=\"{template}\" initialization=\"init.mp4\">\
<SegmentTimeline>{timeline}</SegmentTimeline></SegmentTemplate>\
<Representation id=\"v\" bandwidth=\"100000\"/></AdaptationSet></Period></MPD>"
    )
}

/// The hostile corpus, by name: what is served, and a phrase the error must contain.
fn hostile(name: &str) -> Option<Response> {
    let text = |body: String| body.into_response();
    Some(match name {
        "wide.mpd" => text(mpd("seg-$Number%01000000000d$.m4s", "<S d=\"4000\"/>")),
        "repeat.mpd" => text(mpd(
            "seg-$Number$.m4s",
            &format!("<S d=\"4000\" r=\"{}\"/>", u64::MAX),
        )),
        "repeat-i64.mpd" => text(mpd(
            "seg-$Number$.m4s",
            &format!("<S d=\"4000\" r=\"{}\"/>", i64::MAX),
        )),
        "deep.mpd" => text(format!(
            "<MPD>{}{}</MPD>",
            "<a>".repeat(500_000),
            "</a>".repeat(500_000)
        )),
        "big.m3u8" => {
            // 100 MB, streamed without a Content-Length.
            let line = Bytes::from("#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n".repeat(27_000));
            let head = Bytes::from_static(b"#EXTM3U\n");
            let chunks = std::iter::once(head)
                .chain(std::iter::repeat_n(line, 100))
                .map(Ok::<_, std::io::Error>);
            Body::from_stream(futures::stream::iter(chunks)).into_response()
        }
        "self.m3u8" => text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nself.m3u8\n".into()),
        "loop.m3u8" => text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nloop-b.m3u8\n".into()),
        "loop-b.m3u8" => text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nloop.m3u8\n".into()),
        "segments.m3u8" => {
            text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nsegments-media.m3u8\n".into())
        }
        "segments-media.m3u8" => text(format!(
            "#EXTM3U\n{}",
            "#EXTINF:4,\ns.m4s\n".repeat(400_000)
        )),
        "variants.m3u8" => text(format!(
            "#EXTM3U\n{}",
            "#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n".repeat(100_000)
        )),
        _ => return None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_manifests_end_in_errors_within_64_mib() {
    let app = axum::Router::new().route(
        "/{name}",
        axum::routing::get(|Path(name): Path<String>| async move {
            hostile(&name).unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
        }),
    );
    let base = serve(app).await;
    let cases = [
        ("wide.mpd", "wider than 32"),
        ("repeat.mpd", "not a valid MPD"),
        ("repeat-i64.mpd", "S@r="),
        ("deep.mpd", "nested deeper than 32"),
        ("big.m3u8", "larger than the 8388608-byte manifest limit"),
        ("self.m3u8", "lists itself"),
        ("loop.m3u8", "is itself a multivariant playlist"),
        ("segments.m3u8", "400000 segments, more than 50000"),
        ("variants.m3u8", "100000 variants"),
    ];
    for (name, expected) in cases {
        let run = play(format!("{base}/{name}"), &["--json", "--speed", "64"]).await;
        let peak_mib = run.peak_rss_kib as f64 / 1024.0;
        eprintln!(
            "{name}: exit {:?}, peak RSS {peak_mib:.1} MiB",
            run.exit_code
        );
        assert_eq!(
            run.signal, None,
            "{name}: killed by a signal: {}",
            run.stderr
        );
        assert_eq!(
            run.exit_code,
            Some(2),
            "{name}: expected an error exit, got {:?}: {} {}",
            run.exit_code,
            run.stdout,
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains("error:") && run.stderr.contains(expected),
            "{name}: expected {expected:?} in: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{name}: {}", run.stdout);
        assert!(
            peak_mib < 64.0,
            "{name}: peak RSS {peak_mib:.1} MiB is over 64 MiB"
        );
    }
}

/// Pathway `a`: three renditions of six segments, whose segments fail from the third on;
/// pathway `b` (another server): two renditions of four segments.
#[derive(Clone)]
struct Pathways {
    a: String,
    b: String,
}

const BANDWIDTHS: [u64; 3] = [300_000, 750_000, 1_200_000];

async fn pathway(
    State((name, n_renditions, n_segments)): State<(&'static str, usize, usize)>,
    method: Method,
    Path((rendition, file)): Path<(usize, String)>,
) -> Response {
    if rendition >= n_renditions {
        return StatusCode::NOT_FOUND.into_response();
    }
    if file == "index.m3u8" {
        let mut playlist =
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\"\n".to_string();
        for segment in 0..n_segments {
            playlist.push_str(&format!("#EXTINF:4.000,\nseg-{segment}.m4s\n"));
        }
        playlist.push_str("#EXT-X-ENDLIST\n");
        return playlist.into_response();
    }
    if file == "init.mp4" {
        return vec![0u8; 100].into_response();
    }
    let Some(segment) = file
        .strip_prefix("seg-")
        .and_then(|rest| rest.strip_suffix(".m4s"))
        .and_then(|index| index.parse::<usize>().ok())
        .filter(|index| *index < n_segments)
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if name == "a" && method == Method::GET && segment >= 2 {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    // Four seconds at the rendition's bitrate.
    vec![0u8; (BANDWIDTHS[rendition] / 2) as usize].into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_a_pathway_with_fewer_renditions_and_segments_keeps_playing() {
    let a = serve(
        axum::Router::new()
            .route("/{rendition}/{file}", axum::routing::get(pathway))
            .with_state(("a", 3, 6)),
    )
    .await;
    let b = serve(
        axum::Router::new()
            .route("/{rendition}/{file}", axum::routing::get(pathway))
            .with_state(("b", 2, 4)),
    )
    .await;
    let pathways = Pathways { a, b };
    let master = {
        let pathways = pathways.clone();
        let mut text = "#EXTM3U\n".to_string();
        for (name, base, n) in [("a", &pathways.a, 3), ("b", &pathways.b, 2)] {
            for (rendition, bandwidth) in BANDWIDTHS.iter().enumerate().take(n) {
                text.push_str(&format!(
                    "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},PATHWAY-ID=\"{name}\"\n{base}/{rendition}/index.m3u8\n"
                ));
            }
        }
        text
    };
    let url = serve(axum::Router::new().route(
        "/master.m3u8",
        axum::routing::get(move || {
            let master = master.clone();
            async move { master }
        }),
    ))
    .await;
    let run = play(
        format!("{url}/master.m3u8"),
        &[
            "--json",
            "--speed",
            "64",
            "--first-level",
            "2",
            "--algorithm",
            "bb",
        ],
    )
    .await;
    assert_eq!(run.exit_code, Some(0), "{} {}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).expect("report");
    assert_eq!(
        report["ladder_kbps"],
        serde_json::json!([300, 750, 1200]),
        "{report:#}"
    );
    // Two segments from a, then b's four segments end the playback.
    assert_eq!(report["chunks"], 4, "{report:#}");
    assert_eq!(report["ended_early"], true, "{report:#}");
    let hosts: Vec<&str> = report["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let host = |base: &str| base.trim_start_matches("http://").to_string();
    assert_eq!(
        hosts,
        [
            host(&pathways.a),
            host(&pathways.a),
            host(&pathways.b),
            host(&pathways.b)
        ],
        "{report:#}"
    );
    // The first segment is a's top rendition; after the failover every segment is one of
    // b's two renditions.
    let played: Vec<u64> = report["played_kbps"]
        .as_array()
        .expect("played")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(played[0], 1200, "{report:#}");
    assert!(
        played[2..].iter().all(|kbps| [300, 750].contains(kbps)),
        "{report:#}"
    );
    assert!(run.stderr.contains("pathway failed"), "{}", run.stderr);
}
