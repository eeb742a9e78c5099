//! The video pipeline end to end: sources generated with ffmpeg, ingested
//! through the real binary, processed by its workers, and checked through
//! the served HLS and DASH URLs with ffmpeg, reel's own box parser, Python's
//! `m3u8` and `mpegdash`, and hls.js in headless Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};

use crate::common::{client_python, clients_dir, Env, Process};

/// How a source is made: ffmpeg arguments between `-y` and the output path.
struct Source {
    name: &'static str,
    args: Vec<String>,
    extension: &'static str,
}

fn args(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// Generates a source with ffmpeg's lavfi inputs into `dir`.
fn make_source(dir: &Path, source: &Source) -> PathBuf {
    let path = dir.join(format!("{}.{}", source.name, source.extension));
    reel_testkit::media::ffmpeg(&source.args, &path);
    path
}

/// A running server with a key.
struct Server {
    env: Env,
    process: Process,
    url: String,
    key: String,
    client: reqwest::Client,
}

impl Server {
    fn start(workers: usize, envs: &[(&str, &str)]) -> Server {
        Server::start_in(Env::sqlite(), workers, envs)
    }

    fn start_in(env: Env, workers: usize, envs: &[(&str, &str)]) -> Server {
        let key = env.create_key();
        let (process, url) = env.serve_with(workers, envs);
        Server {
            env,
            process,
            url,
            key,
            client: reqwest::Client::new(),
        }
    }

    /// `reel ingest FILE --wait --json` against this server.
    fn ingest(&self, file: &Path) -> Value {
        self.env.ingest(&self.url, &self.key, file)
    }

    async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json")
    }

    async fn get_bytes(&self, url: &str) -> Bytes {
        let response = self.client.get(url).send().await.expect("get");
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        response.bytes().await.expect("body")
    }

    async fn get_text(&self, url: &str) -> String {
        String::from_utf8(self.get_bytes(url).await.to_vec()).expect("utf-8")
    }

    /// The probe task's output (`info` and `plan`) of a video's job.
    async fn probe_output(&self, video: &Value) -> Value {
        let view = self
            .get_json(&format!("/v1/videos/{}", video["id"].as_str().expect("id")))
            .await;
        let job = self
            .get_json(&format!(
                "/v1/jobs/{}",
                view["job_id"].as_str().expect("job id")
            ))
            .await;
        job["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .find(|task| task["kind"] == "media-probe")
            .expect("probe task")["output"]
            .clone()
    }
}

/// One media playlist as served: its segments and what they contain.
struct ServedTrack {
    timescale: u32,
    extinf_sum: f64,
    /// Each segment's EXTINF, in order.
    extinfs: Vec<f64>,
    /// `EXT-X-TARGETDURATION`.
    target_duration: u64,
    fragments: Vec<reel_cmaf::Fragment>,
}

/// Reads a media playlist, fetches its init and every segment, and parses
/// them with reel's box parser.
async fn fetch_track(server: &Server, playlist_url: &str) -> ServedTrack {
    let playlist = server.get_text(playlist_url).await;
    let base = &playlist_url[..playlist_url.rfind('/').expect("slash") + 1];
    let mut init_uri = None;
    let mut extinfs = Vec::new();
    let mut target_duration = 0;
    let mut segment_uris = Vec::new();
    for line in playlist.lines() {
        if let Some(rest) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            init_uri = Some(rest.trim_end_matches('"').to_string());
        } else if let Some(rest) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            target_duration = rest.trim().parse().expect("EXT-X-TARGETDURATION number");
        } else if let Some(rest) = line.strip_prefix("#EXTINF:") {
            extinfs.push(
                rest.trim_end_matches(',')
                    .parse::<f64>()
                    .expect("EXTINF number"),
            );
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            segment_uris.push(line.trim().to_string());
        }
    }
    assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    let mut whole = server
        .get_bytes(&format!("{base}{}", init_uri.expect("EXT-X-MAP")))
        .await
        .to_vec();
    for uri in &segment_uris {
        whole.extend_from_slice(&server.get_bytes(&format!("{base}{uri}")).await);
    }
    let parsed = reel_cmaf::parse_fragmented(Bytes::from(whole)).expect("served segments parse");
    // One fragment per segment, but a joined last segment holds two.
    assert!(
        [segment_uris.len(), segment_uris.len() + 1].contains(&parsed.fragments.len()),
        "{} fragments in {} segments",
        parsed.fragments.len(),
        segment_uris.len()
    );
    ServedTrack {
        timescale: parsed.info.timescale,
        extinf_sum: extinfs.iter().sum(),
        extinfs,
        target_duration,
        fragments: parsed.fragments,
    }
}

impl ServedTrack {
    fn check_continuous(&self, what: &str) {
        for pair in self.fragments.windows(2) {
            assert_eq!(
                pair[1].base_decode_time(),
                pair[0].base_decode_time() + pair[0].duration(),
                "{what}: tfdt is not continuous"
            );
        }
        let total_ticks: u64 = self.fragments.iter().map(|f| f.duration()).sum();
        let total = total_ticks as f64 / f64::from(self.timescale);
        assert!(
            (total - self.extinf_sum).abs() < 1e-6 * self.fragments.len() as f64 + 1e-9,
            "{what}: EXTINF sum {} != sample durations {total}",
            self.extinf_sum
        );
        // Issue 14: no segment shorter than half the target duration (a
        // short tail joins the segment before it), and RFC 8216 4.3.3.1:
        // the target is the longest EXTINF rounded (at least 1).
        let longest = self.extinfs.iter().copied().fold(0.0, f64::max);
        assert_eq!(
            self.target_duration,
            (longest.round() as u64).max(1),
            "{what}: EXT-X-TARGETDURATION for {:?}",
            self.extinfs
        );
        if let [first, .., last] = self.extinfs[..] {
            assert!(
                2.0 * last >= first,
                "{what}: last segment {last} s is shorter than half of {first} s"
            );
        }
    }

    fn start_seconds(&self) -> f64 {
        self.fragments[0].base_decode_time() as f64 / f64::from(self.timescale)
    }

    fn frames(&self) -> u64 {
        self.fragments
            .iter()
            .map(|f| u64::from(f.sample_count()))
            .sum()
    }

    fn total_ticks(&self) -> u64 {
        self.fragments.iter().map(|f| f.duration()).sum()
    }
}

/// Frames ffprobe decodes from a URL's video stream `stream` (one at a
/// time: reading several representations at once, ffprobe leaves the last
/// B-frames of all but one in their decoders).
fn decoded_frames(url: &str, stream: usize) -> Vec<u64> {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            &format!("v:{stream}"),
            "-count_frames",
            "-show_entries",
            "stream=codec_type,nb_read_frames",
            "-of",
            "json",
        ])
        .arg(url)
        .output()
        .expect("ffprobe");
    assert!(
        output.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout).expect("ffprobe json");
    json["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .filter(|stream| stream["codec_type"] == "video")
        .map(|stream| {
            stream["nb_read_frames"]
                .as_str()
                .and_then(|n| n.parse().ok())
                .expect("nb_read_frames")
        })
        .collect()
}

/// Sums of SegmentTimeline durations per Representation id, in ticks, with
/// their timescale (a Representation's own SegmentTemplate, else its
/// AdaptationSet's).
fn mpd_timelines(mpd: &str) -> Vec<(String, u64, u32)> {
    use quick_xml::events::{BytesStart, Event};
    let attribute = |element: &BytesStart<'_>, name: &str| -> Option<String> {
        element
            .try_get_attribute(name)
            .expect("attributes")
            .map(|value| value.unescape_value().expect("value").into_owned())
    };
    let mut reader = quick_xml::Reader::from_str(mpd);
    let mut out = Vec::new();
    // Per AdaptationSet: its representations with their own totals, and
    // the set's total; `in_representation` says where an S counts.
    let mut representations: Vec<(String, Option<(u64, u32)>)> = Vec::new();
    let mut set_total: Option<(u64, u32)> = None;
    let mut in_representation = false;
    loop {
        let (element, is_start) = match reader.read_event().expect("the MPD is XML") {
            Event::Start(element) => (element, true),
            Event::Empty(element) => (element, false),
            Event::End(end) => {
                match end.local_name().as_ref() {
                    b"Representation" => in_representation = false,
                    b"AdaptationSet" => {
                        // A text track is one file, without a timeline.
                        for (id, own) in representations.drain(..) {
                            if let Some((total, timescale)) = own.or(set_total) {
                                out.push((id, total, timescale));
                            }
                        }
                        set_total = None;
                    }
                    _ => {}
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        match element.local_name().as_ref() {
            b"Representation" => {
                representations.push((attribute(&element, "id").expect("id"), None));
                in_representation = is_start;
            }
            b"SegmentTemplate" => {
                let timescale: u32 = attribute(&element, "timescale")
                    .map(|text| text.parse().expect("timescale number"))
                    .unwrap_or(1);
                if in_representation {
                    representations.last_mut().expect("representation").1 = Some((0, timescale));
                } else {
                    set_total = Some((0, timescale));
                }
            }
            b"S" => {
                let duration: u64 = attribute(&element, "d")
                    .expect("d")
                    .parse()
                    .expect("d number");
                let repeat: u64 = attribute(&element, "r")
                    .map(|r| r.parse().expect("r"))
                    .unwrap_or(0);
                let total = if in_representation {
                    representations
                        .last_mut()
                        .expect("representation")
                        .1
                        .as_mut()
                } else {
                    set_total.as_mut()
                };
                total.expect("S inside a SegmentTemplate").0 += duration * (repeat + 1);
            }
            _ => {}
        }
    }
    out
}

/// One audio frame at 48 kHz: how far apart audio and video may end.
const AAC_FRAME_SECONDS: f64 = 1024.0 / 48_000.0;

/// Issue 14: audio and video last the same within one audio frame, as a
/// player reads the manifests: every media playlist's EXTINF sum in the
/// multivariant playlist, and every Representation's SegmentTimeline.
async fn check_audio_and_video_durations_agree(server: &Server, hls: &str, mpd: &str) {
    let master = server.get_text(hls).await;
    let base = &hls[..hls.rfind('/').expect("slash") + 1];
    let mut hls_durations: Vec<(String, bool, f64)> = Vec::new();
    let mut next_is_variant = false;
    for line in master.lines() {
        let (uri, is_audio) = if line.starts_with("#EXT-X-STREAM-INF:") {
            next_is_variant = true;
            continue;
        } else if next_is_variant && !line.starts_with('#') {
            next_is_variant = false;
            (line.trim().to_string(), false)
        } else if line.starts_with("#EXT-X-MEDIA:TYPE=AUDIO") {
            let uri = line
                .split("URI=\"")
                .nth(1)
                .expect("URI")
                .trim_end_matches('"');
            (uri.to_string(), true)
        } else {
            continue;
        };
        let playlist = server.get_text(&format!("{base}{uri}")).await;
        let seconds: f64 = playlist
            .lines()
            .filter_map(|line| line.strip_prefix("#EXTINF:"))
            .map(|rest| rest.trim_end_matches(',').parse::<f64>().expect("EXTINF"))
            .sum();
        hls_durations.push((uri, is_audio, seconds));
    }
    let dash_durations: Vec<(String, bool, f64)> = mpd_timelines(mpd)
        .into_iter()
        .map(|(id, ticks, timescale)| {
            let is_audio = id.starts_with("audio");
            (id, is_audio, ticks as f64 / f64::from(timescale))
        })
        .collect();
    for (manifest, durations) in [("HLS", &hls_durations), ("DASH", &dash_durations)] {
        let audio = durations.iter().filter(|(_, is_audio, _)| *is_audio);
        for (audio_id, _, audio_seconds) in audio {
            let video = durations.iter().filter(|(_, is_audio, _)| !*is_audio);
            for (video_id, _, video_seconds) in video {
                assert!(
                    (audio_seconds - video_seconds).abs() <= AAC_FRAME_SECONDS,
                    "{manifest}: {audio_id} lasts {audio_seconds} s, {video_id} {video_seconds} s"
                );
            }
        }
    }
}

/// What a case must publish.
struct Expect {
    video: bool,
    audio: bool,
}

/// Every check of a playable video, through its served URLs.
async fn check_playable(server: &Server, video: &Value, expect: Expect) -> Value {
    assert_eq!(
        video["state"],
        "ready",
        "{video:#} {}",
        server.process.output()
    );
    let probe = server.probe_output(video).await;
    let plan = &probe["plan"];
    let hls = video["hls"].as_str().expect("hls url").to_string();
    let dash = video["dash"].as_str().expect("dash url").to_string();
    let base = &hls[..hls.rfind('/').expect("slash") + 1];
    let master = server.get_text(&hls).await;
    assert!(master.starts_with("#EXTM3U"), "{master}");
    let mpd = server.get_text(&dash).await;
    let timelines = mpd_timelines(&mpd);
    let mut audio_start = None;
    if expect.audio {
        let audio = fetch_track(server, &format!("{base}audio/index.m3u8")).await;
        audio.check_continuous("audio");
        let (_, dash_ticks, _) = timelines
            .iter()
            .find(|(id, ..)| id == "audio")
            .expect("audio representation");
        assert_eq!(*dash_ticks, audio.total_ticks(), "audio SegmentTimeline");
        audio_start = Some(audio.start_seconds());
    }
    if expect.video {
        let video_plan = &plan["video"];
        let planned_frames = video_plan["total_frames"].as_u64().expect("total_frames");
        let renditions = video["renditions"].as_array().expect("renditions");
        assert!(!renditions.is_empty(), "{video:#}");
        let frame_rate: reel_core::FrameRate =
            serde_json::from_value(video_plan["frame_rate"].clone()).expect("rate");
        for rendition in renditions {
            let name = rendition["id"].as_str().expect("id");
            let playlist = format!("{base}{name}/index.m3u8");
            assert!(master.contains(&format!("{name}/index.m3u8")), "{master}");
            let track = fetch_track(server, &playlist).await;
            track.check_continuous(name);
            assert_eq!(
                track.frames(),
                planned_frames,
                "{name}: frames in the segments"
            );
            assert!(
                track.fragments.iter().all(|f| f.starts_with_sync()),
                "{name}: a segment does not start with a sync sample"
            );
            assert_eq!(track.start_seconds(), 0.0, "{name} starts at 0");
            let (_, dash_ticks, _) = timelines
                .iter()
                .find(|(id, ..)| id == name)
                .unwrap_or_else(|| panic!("no representation {name} in {mpd}"));
            assert_eq!(
                *dash_ticks,
                track.total_ticks(),
                "{name}: SegmentTimeline sum"
            );
            assert_eq!(
                decoded_frames(&playlist, 0),
                vec![planned_frames],
                "{name}: frames ffmpeg decodes through HLS"
            );
            if let Some(audio_start) = audio_start {
                let frame = 1.0 / frame_rate.as_f64();
                assert!(
                    (audio_start - track.start_seconds()).abs() <= frame,
                    "audio starts at {audio_start}, video at {}",
                    track.start_seconds()
                );
            }
        }
        let through_dash: Vec<u64> = (0..renditions.len())
            .flat_map(|stream| decoded_frames(&dash, stream))
            .collect();
        assert_eq!(
            through_dash,
            vec![planned_frames; renditions.len()],
            "frames ffmpeg decodes per representation through DASH"
        );
    }
    check_audio_and_video_durations_agree(server, &hls, &mpd).await;
    check_with_python(&hls, &dash, expect.video);
    probe
}

/// Python's `m3u8` and `mpegdash` parse the manifests.
fn check_with_python(hls: &str, dash: &str, has_video: bool) {
    let output = client_python("check-manifests.py", [hls, dash]);
    assert!(
        output.status.success(),
        "check-manifests.py: {} {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("report json");
    let variants = report["variants"].as_array().expect("variants");
    assert!(!variants.is_empty(), "{report:#}");
    for variant in variants {
        assert!(variant["segments"].as_u64().unwrap_or(0) > 0, "{report:#}");
        assert!(variant["bandwidth"].as_u64().unwrap_or(0) > 0, "{report:#}");
        if has_video {
            assert!(
                variant["average_bandwidth"].as_u64().unwrap_or(0) > 0,
                "{report:#}"
            );
            assert!(
                variant["resolution"].is_array() || variant["resolution"].is_string(),
                "{report:#}"
            );
        }
    }
    assert_eq!(report["mpd"]["periods"], 1, "{report:#}");
}

fn lavfi_video(size: &str, rate: &str, seconds: f64, extra: &str) -> Vec<String> {
    let mut out = args(&format!(
        "-f lavfi -i testsrc2=size={size}:rate={rate} -f lavfi -i sine=frequency=440:sample_rate=44100 -t {seconds}"
    ));
    out.extend(args(extra));
    out
}

const X264: &str = "-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -b:a 96k -shortest";

async fn run_case(source: Source, expect: Expect) -> Value {
    let server = Server::start(2, &[]);
    let file = make_source(server.env.dir.path(), &source);
    let video = server.ingest(&file);
    check_playable(&server, &video, expect).await
}

fn av() -> Expect {
    Expect {
        video: true,
        audio: true,
    }
}

fn planned(probe: &Value, field: &str) -> Value {
    probe["plan"]["video"][field].clone()
}

fn rendition_sizes(probe: &Value) -> Vec<(u64, u64)> {
    probe["plan"]["video"]["renditions"]
        .as_array()
        .expect("renditions")
        .iter()
        .map(|r| {
            (
                r["width"].as_u64().expect("w"),
                r["height"].as_u64().expect("h"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fps_25() {
    let probe = run_case(
        Source {
            name: "fps25",
            args: lavfi_video("640x360", "25", 5.0, X264),
            extension: "mp4",
        },
        av(),
    )
    .await;
    assert_eq!(planned(&probe, "frame_rate"), "25");
    assert_eq!(planned(&probe, "total_frames"), 125);
    assert_eq!(rendition_sizes(&probe), vec![(640, 360), (426, 240)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fps_30() {
    let probe = run_case(
        Source {
            name: "fps30",
            args: lavfi_video("640x360", "30", 5.0, X264),
            extension: "mp4",
        },
        av(),
    )
    .await;
    assert_eq!(planned(&probe, "total_frames"), 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fps_29_97_with_a_short_tail_joined_to_the_last_segment() {
    let server = Server::start(2, &[]);
    let source = Source {
        name: "fps2997",
        args: lavfi_video("640x360", "30000/1001", 9.0, X264),
        extension: "mp4",
    };
    let video = server.ingest(&make_source(server.env.dir.path(), &source));
    let probe = check_playable(&server, &video, av()).await;
    let hls = video["hls"].as_str().expect("hls url");
    let base = &hls[..hls.rfind('/').expect("slash") + 1];
    let mut served_segments = Vec::new();
    let renditions = video["renditions"].as_array().expect("renditions");
    let tracks = renditions
        .iter()
        .map(|rendition| rendition["id"].as_str().expect("id"))
        .chain(["audio"]);
    for track in tracks {
        let served = fetch_track(&server, &format!("{base}{track}/index.m3u8")).await;
        assert_eq!(served.target_duration, 5, "{track}");
        served_segments.push((track, served.extinfs));
    }
    assert_eq!(planned(&probe, "frame_rate"), "30000/1001");
    // 9 s at 29.97 fps: 269.73 frames, rounded to 270.
    assert_eq!(planned(&probe, "total_frames"), 270);
    assert_eq!(planned(&probe, "segment_frames"), 120);
    // The 30-frame tail (1 s) is shorter than half a segment: it joined
    // the segment before it, in every rendition and in the audio.
    let chunks: Vec<u64> = planned(&probe, "chunks")
        .as_array()
        .expect("chunks")
        .iter()
        .map(|chunk| chunk["frame_count"].as_u64().expect("frame_count"))
        .collect();
    assert_eq!(chunks, vec![120, 150]);
    for (track, segments) in served_segments {
        assert_eq!(segments.len(), 2, "{track}: {segments:?}");
        if track != "audio" {
            assert!((segments[0] - 4.004).abs() < 1e-6, "{track}: {segments:?}");
            assert!((segments[1] - 5.005).abs() < 1e-6, "{track}: {segments:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fps_60() {
    let probe = run_case(
        Source {
            name: "fps60",
            args: lavfi_video("640x360", "60", 5.0, X264),
            extension: "mp4",
        },
        av(),
    )
    .await;
    assert_eq!(planned(&probe, "total_frames"), 300);
    assert_eq!(planned(&probe, "gop_frames"), 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variable_frame_rate() {
    // 60 fps with every 7th frame dropped and jittered timestamps.
    let extra = format!(
        "-vf select='not(eq(mod(n\\,7)\\,6))',setpts=PTS+0.002*sin(N)/TB -fps_mode vfr {X264}"
    );
    let probe = run_case(
        Source {
            name: "vfr",
            args: lavfi_video("640x360", "60", 5.0, &extra),
            extension: "mp4",
        },
        av(),
    )
    .await;
    assert_eq!(
        probe["info"]["video"]["variable_frame_rate"], true,
        "{probe:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portrait() {
    let probe = run_case(
        Source {
            name: "portrait",
            args: lavfi_video("360x640", "30", 4.0, X264),
            extension: "mp4",
        },
        av(),
    )
    .await;
    assert_eq!(rendition_sizes(&probe), vec![(360, 640), (240, 426)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_by_a_display_matrix() {
    let server = Server::start(2, &[]);
    let dir = server.env.dir.path();
    let stored = make_source(
        dir,
        &Source {
            name: "landscape",
            args: lavfi_video("640x360", "30", 4.0, X264),
            extension: "mp4",
        },
    );
    // ffmpeg 5.1 writes a display matrix only when remuxing.
    let rotated = make_source(
        dir,
        &Source {
            name: "rotated",
            args: vec![
                "-i".into(),
                stored.display().to_string(),
                "-c".into(),
                "copy".into(),
                "-metadata:s:v:0".into(),
                "rotate=90".into(),
            ],
            extension: "mp4",
        },
    );
    let video = server.ingest(&rotated);
    let probe = check_playable(&server, &video, av()).await;
    assert_ne!(probe["info"]["video"]["rotation_degrees"], 0, "{probe:#}");
    // Stored landscape, displayed portrait: the ladder is portrait.
    assert_eq!(rendition_sizes(&probe), vec![(360, 640), (240, 426)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_dimensions() {
    let extra = "-c:v libx264 -preset ultrafast -pix_fmt yuv444p -c:a aac -shortest";
    let probe = run_case(
        Source {
            name: "odd",
            args: lavfi_video("321x241", "25", 4.0, extra),
            extension: "mp4",
        },
        av(),
    )
    .await;
    for (width, height) in rendition_sizes(&probe) {
        assert_eq!((width % 2, height % 2), (0, 0), "{width}x{height}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_square_pixels() {
    let extra = format!("-vf setsar=4/3 {X264}");
    let probe = run_case(
        Source {
            name: "anamorphic",
            args: lavfi_video("480x360", "25", 4.0, &extra),
            extension: "mp4",
        },
        av(),
    )
    .await;
    // 480x360 with 4:3 pixels displays as 640x360.
    assert_eq!(rendition_sizes(&probe)[0], (640, 360));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_bit_becomes_eight_bit() {
    let server = Server::start(2, &[]);
    let extra = "-c:v libx264 -preset ultrafast -pix_fmt yuv420p10le -c:a aac -shortest";
    let file = make_source(
        server.env.dir.path(),
        &Source {
            name: "tenbit",
            args: lavfi_video("640x360", "25", 4.0, extra),
            extension: "mkv",
        },
    );
    let video = server.ingest(&file);
    let probe = check_playable(&server, &video, av()).await;
    assert_eq!(probe["info"]["video"]["bit_depth"], 10, "{probe:#}");
    let hls = video["hls"].as_str().expect("hls");
    let base = &hls[..hls.rfind('/').expect("slash") + 1];
    for rendition in video["renditions"].as_array().expect("renditions") {
        let url = format!("{base}{}/index.m3u8", rendition["id"].as_str().expect("id"));
        let output = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=pix_fmt",
                "-of",
                "csv=p=0",
            ])
            .arg(&url)
            .output()
            .expect("ffprobe");
        let formats: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| line.trim().to_string())
            .collect();
        assert!(
            !formats.is_empty() && formats.iter().all(|f| f == "yuv420p"),
            "{url}: {formats:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_audio() {
    let probe = run_case(
        Source {
            name: "silent",
            args: args("-f lavfi -i testsrc2=size=640x360:rate=25 -t 4 -c:v libx264 -preset ultrafast -pix_fmt yuv420p"),
            extension: "mp4",
        },
        Expect { video: true, audio: false },
    )
    .await;
    assert!(probe["plan"]["audio"].is_null(), "{probe:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_audio_stream_becomes_a_track_with_its_language() {
    let server = Server::start(2, &[]);
    let source = Source {
        name: "two-languages",
        args: args(
            "-f lavfi -i testsrc2=size=320x180:rate=25 \
             -f lavfi -i sine=frequency=300:sample_rate=48000 \
             -f lavfi -i sine=frequency=600:sample_rate=44100 \
             -map 0:v -map 1:a -map 2:a -t 4 -c:v libx264 -preset ultrafast -pix_fmt yuv420p \
             -c:a aac -ac:a:0 2 -ac:a:1 1 -metadata:s:a:0 language=eng -metadata:s:a:1 language=fre \
             -metadata:s:a:1 title=Commentaire",
        ),
        extension: "mkv",
    };
    let file = make_source(server.env.dir.path(), &source);
    let video = server.ingest(&file);
    let probe = check_playable(&server, &video, av()).await;
    assert_eq!(
        probe["plan"]["more_audio"][0]["channels"], 1,
        "mono stays mono"
    );
    let hls = video["hls"].as_str().expect("hls");
    let base = &hls[..hls.rfind('/').expect("slash") + 1];
    let master = server.get_text(hls).await;
    for expected in [
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\"",
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"Commentaire\",LANGUAGE=\"fr\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"1\",URI=\"audio-2/index.m3u8\"",
    ] {
        assert!(master.contains(expected), "missing {expected} in\n{master}");
    }
    let first = fetch_track(&server, &format!("{base}audio/index.m3u8")).await;
    let second = fetch_track(&server, &format!("{base}audio-2/index.m3u8")).await;
    second.check_continuous("audio-2");
    // Both tracks last the title, within one AAC frame.
    let seconds = |track: &ServedTrack| track.total_ticks() as f64 / f64::from(track.timescale);
    assert!(
        (seconds(&first) - seconds(&second)).abs() <= 1024.0 / 48_000.0,
        "{} s and {} s",
        seconds(&first),
        seconds(&second)
    );
    let mpd = server.get_text(video["dash"].as_str().expect("dash")).await;
    assert_eq!(mpd.matches("contentType=\"audio\"").count(), 2, "{mpd}");
    assert!(
        mpd.contains("lang=\"en\"") && mpd.contains("lang=\"fr\""),
        "{mpd}"
    );
    assert!(
        mpd_timelines(&mpd).iter().any(|(id, ..)| id == "audio-2"),
        "{mpd}"
    );
}

/// A text track's HLS playlist as served: one WebVTT segment per segment of
/// the first video rendition, with the same EXTINFs, each a WebVTT file with
/// `X-TIMESTAMP-MAP`; returns the segments' texts.
async fn segmented_text(server: &Server, video: &Value, track: &str) -> Vec<String> {
    let hls = video["hls"].as_str().expect("hls");
    let base = &hls[..hls.rfind('/').expect("slash") + 1];
    let extinfs = |playlist: &str| -> Vec<String> {
        playlist
            .lines()
            .filter(|line| line.starts_with("#EXTINF:"))
            .map(str::to_string)
            .collect()
    };
    let rendition = video["renditions"][0]["id"].as_str().expect("rendition");
    let video_playlist = server
        .get_text(&format!("{base}{rendition}/index.m3u8"))
        .await;
    let playlist = server.get_text(&format!("{base}{track}/index.m3u8")).await;
    assert_eq!(extinfs(&playlist), extinfs(&video_playlist), "{playlist}");
    assert!(!playlist.contains("EXT-X-MAP"), "{playlist}");
    let uris: Vec<&str> = playlist
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .collect();
    let mut texts = Vec::new();
    for (segment_idx, uri) in uris.iter().enumerate() {
        assert_eq!(
            *uri,
            format!("seg-{:05}.vtt", segment_idx + 1),
            "{playlist}"
        );
        let text = server.get_text(&format!("{base}{track}/{uri}")).await;
        assert!(
            text.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS=0,LOCAL=00:00:00.000\n"),
            "{uri}: {text}"
        );
        texts.push(text);
    }
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_subtitle_streams_become_webvtt_tracks() {
    let server = Server::start(2, &[]);
    let dir = server.env.dir.path();
    let srt = dir.join("cues.srt");
    std::fs::write(
        &srt,
        "1\n00:00:00,500 --> 00:00:01,500\nHello <b>there</b>\n\n2\n00:00:02,000 --> 00:00:03,000\nSecond cue\n\n3\n00:00:03,500 --> 00:00:04,500\nAcross\n\n4\n00:00:06,000 --> 00:00:07,000\nLast\n",
    )
    .expect("srt");
    let srt = srt.display().to_string();
    // SubRip and ASS in Matroska, mov_text in MP4.
    let cases = [
        (
            "subs.mkv",
            format!(
                "-f lavfi -i testsrc2=size=320x180:rate=25 -i {srt} -i {srt} -t 9 -map 0:v -map 1:s -map 2:s \
                 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:s:0 srt -c:s:1 ass \
                 -metadata:s:s:0 language=eng -metadata:s:s:1 language=fre -metadata:s:s:1 title=Sous-titres"
            ),
            2,
        ),
        (
            "subs.mp4",
            format!(
                "-f lavfi -i testsrc2=size=320x180:rate=25 -i {srt} -t 9 -map 0:v -map 1:s \
                 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:s mov_text -metadata:s:s:0 language=eng"
            ),
            1,
        ),
    ];
    for (name, ffmpeg_args, n_tracks) in cases {
        let path = dir.join(name);
        reel_testkit::media::ffmpeg(args(&ffmpeg_args), &path);
        let video = server.ingest(&path);
        check_playable(
            &server,
            &video,
            Expect {
                video: true,
                audio: false,
            },
        )
        .await;
        let hls = video["hls"].as_str().expect("hls");
        let base = &hls[..hls.rfind('/').expect("slash") + 1];
        let master = server.get_text(hls).await;
        assert_eq!(
            master.matches("TYPE=SUBTITLES").count(),
            n_tracks,
            "{name}: {master}"
        );
        assert!(
            master.contains("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"text\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=NO,AUTOSELECT=YES,URI=\"text-1/index.m3u8\""),
            "{name}: {master}"
        );
        assert!(master.contains(",SUBTITLES=\"text\"\n"), "{name}: {master}");
        // 9 s: segments of 4 s and 5 s (the 1 s tail joined). A cue
        // across the boundary at 4 s is in both.
        let segments = segmented_text(&server, &video, "text-1").await;
        assert_eq!(segments.len(), 2, "{name}: {segments:?}");
        for (segment, expected) in segments.iter().zip([
            ["Second cue", "Across"].as_slice(),
            ["Across", "Last"].as_slice(),
        ]) {
            for text in expected {
                assert!(segment.contains(text), "{name}: {text} not in {segment}");
            }
        }
        assert!(!segments[1].contains("Second cue"), "{name}: {segments:?}");
        let response = server
            .client
            .get(format!("{base}text-1/captions.vtt"))
            .send()
            .await
            .expect("captions");
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap_or_default()
                .starts_with("text/vtt"),
            "{:?}",
            response.headers()
        );
        let vtt = response.text().await.expect("text");
        assert!(
            vtt.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS=0,LOCAL=00:00:00.000\n"),
            "{vtt}"
        );
        // The cues keep their times on the video's timeline.
        assert!(
            vtt.contains("00:00:00.500 --> 00:00:01.500"),
            "{name}: {vtt}"
        );
        assert!(
            vtt.contains("00:00:02.000 --> 00:00:03.000"),
            "{name}: {vtt}"
        );
        assert!(vtt.contains("Second cue"), "{name}: {vtt}");
        let mpd = server.get_text(video["dash"].as_str().expect("dash")).await;
        assert_eq!(
            mpd.matches("contentType=\"text\" mimeType=\"text/vtt\"")
                .count(),
            n_tracks,
            "{mpd}"
        );
        assert!(
            mpd.contains("<BaseURL>text-1/captions.vtt</BaseURL>"),
            "{mpd}"
        );
        if n_tracks == 2 {
            assert!(
                master.contains("NAME=\"Sous-titres\",LANGUAGE=\"fr\""),
                "{master}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_captions_join_both_manifests_and_leave_them_when_deleted() {
    let server = Server::start(2, &[]);
    let video = server.ingest(&crate::common::generated_video(server.env.dir.path()));
    assert_eq!(video["state"], "ready", "{video:#}");
    let id = video["id"].as_str().expect("id");
    let hls = video["hls"].as_str().expect("hls").to_string();
    let dash = video["dash"].as_str().expect("dash").to_string();
    let captions = format!("{}/v1/videos/{id}/captions", server.url);
    let post = |query: &'static str, body: &'static str| {
        server
            .client
            .post(format!("{captions}?{query}"))
            .bearer_auth(&server.key)
            .body(body)
            .send()
    };
    // A wrong file is refused with the line that is wrong; nothing changes.
    let refused = post(
        "language=fr",
        "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 -> 00:00:04,000\nbad\n",
    )
    .await
    .expect("POST");
    assert_eq!(refused.status(), 422);
    let message = refused.text().await.unwrap_or_default();
    assert!(message.contains("line 6"), "{message}");
    assert!(!server.get_text(&hls).await.contains("SUBTITLES"));
    let added = post(
        "language=fre&name=Fran%C3%A7ais",
        "WEBVTT\n\n00:00.250 --> 00:01.000\nBonjour\n",
    )
    .await
    .expect("POST");
    assert_eq!(added.status(), 201);
    let added: Value = added.json().await.expect("JSON");
    assert_eq!(added["track"]["id"], "text-1", "{added}");
    assert_eq!(added["track"]["language"], "fr", "{added}");
    let master = server.get_text(&hls).await;
    assert!(
        master.contains("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"text\",NAME=\"Français\",LANGUAGE=\"fr\",DEFAULT=NO,AUTOSELECT=YES,URI=\"text-1/index.m3u8\""),
        "{master}"
    );
    let mpd = server.get_text(&dash).await;
    assert!(
        mpd.contains("<BaseURL>text-1/captions.vtt</BaseURL>"),
        "{mpd}"
    );
    let vtt = server.get_text(added["url"].as_str().expect("url")).await;
    assert!(
        vtt.contains("00:00:00.250 --> 00:00:01.000\nBonjour"),
        "{vtt}"
    );
    // HLS reads it segmented on the video's segments, like the source's.
    let segments = segmented_text(&server, &video, "text-1").await;
    assert!(segments[0].contains("Bonjour"), "{segments:?}");
    let objects = server.env.objects_dir();
    let track_files = || {
        crate::common::list_files(&objects)
            .into_iter()
            .filter(|file| file.contains("/text-1/"))
            .count()
    };
    // captions.vtt, index.m3u8 and each segment.
    assert_eq!(track_files(), 2 + segments.len());
    // The video's segments are the same objects as before: only manifests moved.
    let base = &hls[..hls.rfind('/').expect("slash") + 1];
    let rendition = video["renditions"][0]["id"].as_str().expect("rendition");
    let status = server
        .client
        .get(format!("{base}{rendition}/seg-00001.m4s"))
        .send()
        .await
        .expect("segment")
        .status();
    assert_eq!(status, 200);
    // Parsed by the third-party parsers too.
    let output = client_python("check-manifests.py", [hls.as_str(), dash.as_str()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let delete = |track: &str| {
        server
            .client
            .delete(format!("{captions}/{track}"))
            .bearer_auth(&server.key)
            .send()
    };
    assert_eq!(delete("text-9").await.expect("DELETE").status(), 404);
    assert_eq!(delete("text-1").await.expect("DELETE").status(), 200);
    assert_eq!(track_files(), 0, "the track's files are deleted");
    assert!(!server.get_text(&hls).await.contains("SUBTITLES"));
    assert!(!server.get_text(&dash).await.contains("text/vtt"));
}

/// SHA-256 of every file of the video renditions' folders, by path.
fn video_segment_hashes(objects: &Path, video: &Value) -> Vec<(String, String)> {
    use sha2::Digest;
    let prefix = format!("videos/{}/h264-", video["id"].as_str().expect("id"));
    crate::common::list_files(objects)
        .into_iter()
        .filter(|file| file.starts_with(&prefix))
        .map(|file| {
            let bytes = std::fs::read(objects.join(&file)).expect("read");
            (file, format!("{:x}", sha2::Sha256::digest(&bytes)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dub_joins_both_manifests_on_the_videos_timeline() {
    let server = Server::start(2, &[]);
    let dir = server.env.dir.path();
    let video = server.ingest(&crate::common::generated_video(dir));
    assert_eq!(video["state"], "ready", "{video:#}");
    let id = video["id"].as_str().expect("id");
    let hashes_before = video_segment_hashes(&server.env.objects_dir(), &video);
    assert!(!hashes_before.is_empty());
    // A French dub at another pitch, a little longer than the video: it is
    // trimmed to the video's duration.
    let dub = dir.join("dub.m4a");
    reel_testkit::media::ffmpeg(
        args("-f lavfi -i sine=frequency=880:sample_rate=48000 -t 3.5 -c:a aac"),
        &dub,
    );
    let audio = format!("{}/v1/videos/{id}/audio", server.url);
    let post = |query: &str, body: Vec<u8>| {
        server
            .client
            .post(format!("{audio}?{query}"))
            .bearer_auth(&server.key)
            .body(body)
            .send()
    };
    let refused = post("language=not%20a%20tag", b"x".to_vec())
        .await
        .expect("POST");
    assert_eq!(refused.status(), 400);
    let created = post(
        "language=fre&name=Fran%C3%A7ais",
        std::fs::read(&dub).expect("dub"),
    )
    .await
    .expect("POST");
    assert_eq!(created.status(), 202);
    let created: Value = created.json().await.expect("JSON");
    assert_eq!(created["track"], "audio-2", "{created}");
    let api = crate::common::Api::new(server.url.clone(), server.key.clone());
    let job = api
        .wait_for_end(
            created["job_id"].as_str().expect("job"),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    let hls = video["hls"].as_str().expect("hls");
    let dash = video["dash"].as_str().expect("dash");
    let master = server.get_text(hls).await;
    assert!(
        master.contains("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"Français\",LANGUAGE=\"fr\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"1\",URI=\"audio-2/index.m3u8\""),
        "{master}"
    );
    let mpd = server.get_text(dash).await;
    assert!(mpd.contains("lang=\"fr\""), "{mpd}");
    check_audio_and_video_durations_agree(&server, hls, &mpd).await;
    // Its segments decode to the video's duration within one audio frame.
    let base = &hls[..hls.rfind('/').expect("slash") + 1];
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=pts_time,duration_time",
            "-of",
            "csv=p=0",
        ])
        .arg(format!("{base}audio-2/index.m3u8"))
        .output()
        .expect("ffprobe");
    let end = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let (pts, duration) = line.split_once(',')?;
            Some(pts.parse::<f64>().ok()? + duration.trim().parse::<f64>().ok()?)
        })
        .fold(0.0, f64::max);
    let expected = video["duration_seconds"].as_f64().expect("duration");
    assert!(
        (end - expected).abs() <= AAC_FRAME_SECONDS + 1e-3,
        "the dub decodes to {end} s, the video lasts {expected} s"
    );
    assert_eq!(
        video_segment_hashes(&server.env.objects_dir(), &video),
        hashes_before,
        "the video segments are untouched"
    );
    // A file without sound fails the job for good, saying why.
    let silent = dir.join("silent.mp4");
    reel_testkit::media::ffmpeg(
        args("-f lavfi -i testsrc2=size=160x90:rate=25 -t 1 -c:v libx264 -preset ultrafast"),
        &silent,
    );
    let created = post("language=de", std::fs::read(&silent).expect("silent"))
        .await
        .expect("POST");
    assert_eq!(created.status(), 202);
    let created: Value = created.json().await.expect("JSON");
    let job = api
        .wait_for_end(
            created["job_id"].as_str().expect("job"),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(job["state"], "failed", "{job:#}");
    let error = job["tasks"][0]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("no decodable audio stream"), "{job:#}");
    assert_eq!(job["tasks"][0]["attempt"], 1, "not retried: {job:#}");
    // The dub can be removed; the last audio track cannot.
    let delete = |track: &str| {
        server
            .client
            .delete(format!("{audio}/{track}"))
            .bearer_auth(&server.key)
            .send()
    };
    assert_eq!(delete("audio-2").await.expect("DELETE").status(), 200);
    assert!(!server.get_text(hls).await.contains("audio-2"));
    assert!(!server.get_text(dash).await.contains("lang=\"fr\""));
    assert_eq!(delete("audio").await.expect("DELETE").status(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interlaced_sources_are_deinterlaced() {
    let probe = run_case(
        Source {
            name: "interlaced",
            args: args(
                "-f lavfi -i testsrc2=size=720x576:rate=50 -f lavfi -i sine=sample_rate=48000 -vf interlace -t 3 \
                 -c:v libx264 -preset ultrafast -flags +ildct+ilme -x264opts tff=1 -pix_fmt yuv420p -c:a aac",
            ),
            extension: "mkv",
        },
        av(),
    )
    .await;
    assert_eq!(probe["info"]["video"]["field_order"], "tb", "{probe:#}");
    assert_eq!(planned(&probe, "deinterlace"), true, "{probe:#}");
    // 25 interlaced frames a second stay 25 progressive ones.
    assert_eq!(planned(&probe, "frame_rate"), "25", "{probe:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_frame_video_becomes_a_one_frame_presentation_with_its_poster() {
    let server = Server::start(2, &[]);
    let source = Source {
        name: "one-frame",
        args: args("-f lavfi -i testsrc2=size=320x240:rate=25 -frames:v 1 -c:v libx264 -preset ultrafast -pix_fmt yuv420p"),
        extension: "mp4",
    };
    let file = make_source(server.env.dir.path(), &source);
    let video = server.ingest(&file);
    let probe = check_playable(
        &server,
        &video,
        Expect {
            video: true,
            audio: false,
        },
    )
    .await;
    assert_eq!(planned(&probe, "total_frames"), 1, "{probe:#}");
    let hls = video["hls"].as_str().expect("hls");
    let base = &hls[..hls.rfind('/').expect("slash") + 1];
    let response = server
        .client
        .get(format!("{base}poster.jpg"))
        .send()
        .await
        .expect("poster");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
}

/// Ingests a two-rung source (640x360: 360p and 240p) with `codecs` and
/// checks everything [`check_playable`] checks, for every rendition of
/// every codec; then that the codecs' segments start and end on the same
/// frames (the EXTINFs and every fragment's tfdt of every rendition are the
/// first rendition's), that the multivariant playlist has a variant and an
/// I-frame playlist per rendition with CODECS starting with `prefix` for
/// `codec`, and that the MPD has that codec's AdaptationSet. 9 s at 25 fps
/// is 225 frames: segments of 100 and 125 frames, the 25-frame tail joined.
async fn check_codecs(codecs: &str, codec: &str, prefix: &str) -> (Server, Value) {
    let server = Server::start(
        2,
        &[
            ("REEL_ENCODE_CODECS", codecs),
            ("REEL_ENCODE_PRESET", "ultrafast"),
        ],
    );
    let source = Source {
        name: "codecs",
        args: lavfi_video("640x360", "25", 9.0, X264),
        extension: "mp4",
    };
    let video = server.ingest(&make_source(server.env.dir.path(), &source));
    let probe = check_playable(&server, &video, av()).await;
    assert_eq!(planned(&probe, "total_frames"), 225);
    let hls = video["hls"].as_str().expect("hls url");
    let base = &hls[..hls.rfind('/').expect("slash") + 1];
    let ids: Vec<&str> = video["renditions"]
        .as_array()
        .expect("renditions")
        .iter()
        .map(|rendition| rendition["id"].as_str().expect("id"))
        .collect();
    let mut expected_ids = vec!["h264-240p", "h264-360p"];
    let codec_ids = [format!("{codec}-240p"), format!("{codec}-360p")];
    expected_ids.extend(codec_ids.iter().map(String::as_str));
    assert_eq!(ids, expected_ids, "{video:#}");
    let mut boundaries = Vec::new();
    for id in &ids {
        let track = fetch_track(&server, &format!("{base}{id}/index.m3u8")).await;
        let starts: Vec<u64> = track
            .fragments
            .iter()
            .map(|fragment| fragment.base_decode_time())
            .collect();
        let total_ticks = track.total_ticks();
        boundaries.push((id, track.extinfs, starts, total_ticks));
    }
    let (first_id, first_extinfs, first_starts, first_ticks) = &boundaries[0];
    assert_eq!(first_extinfs, &vec![4.0, 5.0], "{first_id}");
    for (id, extinfs, starts, ticks) in &boundaries[1..] {
        assert_eq!(
            (extinfs, starts, ticks),
            (first_extinfs, first_starts, first_ticks),
            "{id} and {first_id} cut segments on different frames"
        );
    }
    let master = server.get_text(hls).await;
    for id in &codec_ids {
        let variant = master
            .lines()
            .zip(master.lines().skip(1))
            .find(|(_, uri)| *uri == format!("{id}/index.m3u8"))
            .map(|(stream_inf, _)| stream_inf)
            .unwrap_or_else(|| panic!("no variant {id} in {master}"));
        assert!(
            variant.contains(&format!("CODECS=\"{prefix}")),
            "{id}: {variant}"
        );
        let iframes = master
            .lines()
            .find(|line| line.contains(&format!("URI=\"{id}/iframes.m3u8\"")))
            .unwrap_or_else(|| panic!("no I-frame playlist of {id} in {master}"));
        assert!(
            iframes.starts_with("#EXT-X-I-FRAME-STREAM-INF:")
                && iframes.contains(&format!("CODECS=\"{prefix}")),
            "{id}: {iframes}"
        );
        let playlist = server.get_text(&format!("{base}{id}/iframes.m3u8")).await;
        assert_eq!(
            playlist.matches("#EXT-X-BYTERANGE:").count(),
            2,
            "{id}: one I-frame per segment in {playlist}"
        );
    }
    let mpd = server
        .get_text(video["dash"].as_str().expect("dash url"))
        .await;
    let codec_sets = mpd
        .split("<AdaptationSet ")
        .filter(|set| set.contains("contentType=\"video\""))
        .filter(|set| {
            set.contains(&format!("codecs=\"{prefix}"))
                && codec_ids
                    .iter()
                    .all(|id| set.contains(&format!("id=\"{id}\"")))
        })
        .count();
    assert_eq!(codec_sets, 1, "one {codec} AdaptationSet in {mpd}");
    (server, video)
}

/// Issue 14: H.264 and AV1 renditions of every rung in one presentation,
/// each decoding through HLS and DASH to the planned frames on the same
/// segments; the H.264 renditions are published before any AV1 one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_and_av1_renditions_share_the_segments_of_one_presentation() {
    let (server, video) = check_codecs("h264,av1", "av1", "av01.").await;
    let view = server
        .get_json(&format!("/v1/videos/{}", video["id"].as_str().expect("id")))
        .await;
    let job = server
        .get_json(&format!(
            "/v1/jobs/{}",
            view["job_id"].as_str().expect("job id")
        ))
        .await;
    let publications: Vec<Vec<String>> = (1..=4)
        .map(|step| {
            let task = job["tasks"]
                .as_array()
                .expect("tasks")
                .iter()
                .find(|task| task["key"] == format!("publish-{step}"))
                .unwrap_or_else(|| panic!("no publish-{step} in {job:#}"));
            task["output"]["renditions"]
                .as_array()
                .expect("renditions")
                .iter()
                .map(|rendition| rendition["id"].as_str().expect("id").to_string())
                .collect()
        })
        .collect();
    assert_eq!(
        publications,
        vec![
            vec!["h264-240p"],
            vec!["h264-240p", "h264-360p"],
            vec!["h264-240p", "h264-360p", "av1-240p"],
            vec!["h264-240p", "h264-360p", "av1-240p", "av1-360p"],
        ],
        "{job:#}"
    );
    // reel's own player plays one codec's ladder with that codec's sizes, as a
    // browser plays what it decodes: H.264 unless asked for another.
    let hls = video["hls"].as_str().expect("hls url");
    let dash = video["dash"].as_str().expect("dash url");
    let mut ladders = Vec::new();
    for (url, codec, expected) in [
        (hls, None, "avc1"),
        (hls, Some("av01"), "av01"),
        (dash, Some("av01"), "av01"),
    ] {
        let mut command = server.env.command(&["play", "--json", "--speed", "8"]);
        if let Some(codec) = codec {
            command.args(["--codec", codec]);
        }
        let played = command.arg(url).output().expect("reel play");
        let report: Value = serde_json::from_slice(&played.stdout)
            .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&played.stderr)));
        assert_eq!(report["codec"], expected, "{report:#}");
        assert_eq!(report["ended_early"], false, "{report:#}");
        let ladder = report["ladder_kbps"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(ladder.len(), 2, "{report:#}");
        ladders.push(ladder);
    }
    assert_ne!(ladders[0], ladders[1], "the AV1 ladder has its own rates");
    let missing = server
        .env
        .command(&["play", "--codec", "hvc1"])
        .arg(hls)
        .output()
        .expect("reel play");
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("no hvc1 video") && stderr.contains("av01"),
        "{stderr}"
    );
}

/// Issue 14: HEVC renditions as `hvc1` fMP4 beside H.264, decoding
/// through HLS and DASH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_renditions_are_hvc1_beside_h264() {
    check_codecs("h264,hevc", "hevc", "hvc1.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_is_one_progressive_mp4_of_the_rendition_with_its_audio() {
    let server = Server::start(2, &[]);
    let video = server.ingest(&crate::common::generated_video(server.env.dir.path()));
    assert_eq!(video["state"], "ready", "{video:#}");
    let id = video["id"].as_str().expect("id");
    let rendition = video["renditions"][0]["id"]
        .as_str()
        .expect("rendition")
        .to_string();
    let downloads = format!("{}/v1/videos/{id}/downloads", server.url);
    let unknown = server
        .client
        .post(&downloads)
        .bearer_auth(&server.key)
        .json(&json!({"renditions": ["h264-9999p"]}))
        .send()
        .await
        .expect("POST");
    assert_eq!(unknown.status(), 400);
    let created = server
        .client
        .post(&downloads)
        .bearer_auth(&server.key)
        .json(&json!({"renditions": [rendition]}))
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 202);
    let created: Value = created.json().await.expect("JSON");
    let api = crate::common::Api::new(server.url.clone(), server.key.clone());
    let job = api
        .wait_for_end(
            created["job_id"].as_str().expect("job"),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(job["state"], "succeeded", "{job:#}");
    let url = created["downloads"][0]["url"]
        .as_str()
        .expect("url")
        .to_string();
    // The video lists it (the web app's download links come from here).
    let shown: Value = server
        .client
        .get(format!("{}/v1/videos/{id}", server.url))
        .bearer_auth(&server.key)
        .send()
        .await
        .expect("show")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        shown["downloads"],
        json!([{"rendition": rendition, "url": url}]),
        "{shown:#}"
    );
    let response = server.client.get(&url).send().await.expect("download");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "video/mp4");
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .expect("disposition");
    assert!(
        disposition.starts_with("attachment; filename="),
        "{disposition}"
    );
    let ranged = server
        .client
        .get(&url)
        .header("range", "bytes=0-99")
        .send()
        .await
        .expect("range");
    assert_eq!(ranged.status(), 206);
    let bytes = response.bytes().await.expect("body");
    check_progressive_mp4(&server, &video, &bytes);
}

/// A download as ffprobe reads it: video and audio streams, the video's
/// duration within one frame (25 fps), and faststart (the index, moov,
/// before the media, mdat).
fn check_progressive_mp4(server: &Server, video: &Value, bytes: &[u8]) {
    let file = server.env.dir.path().join("download.mp4");
    std::fs::write(&file, bytes).expect("write");
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type:format=duration",
            "-of",
            "json",
        ])
        .arg(&file)
        .output()
        .expect("ffprobe");
    let probed: Value = serde_json::from_slice(&output.stdout).expect("ffprobe JSON");
    let kinds: Vec<&str> = probed["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|stream| stream["codec_type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["video", "audio"], "{probed}");
    let duration: f64 = probed["format"]["duration"]
        .as_str()
        .expect("duration")
        .parse()
        .expect("number");
    let expected = video["duration_seconds"]
        .as_f64()
        .expect("duration_seconds");
    assert!(
        (duration - expected).abs() <= 1.0 / 25.0 + 0.03,
        "{duration} s vs {expected} s"
    );
    let moov = bytes.windows(4).position(|w| w == b"moov").expect("moov");
    let mdat = bytes.windows(4).position(|w| w == b"mdat").expect("mdat");
    assert!(moov < mdat, "moov at {moov}, mdat at {mdat}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encode_downloads_makes_the_chosen_downloads_in_the_video_job() {
    let server = Server::start(2, &[("REEL_ENCODE_DOWNLOADS", "240p")]);
    let source = reel_testkit::media::Lavfi::video("640x360", "25", 3)
        .with_audio(44100)
        .write(server.env.dir.path().join("source.mp4"));
    let video = server.ingest(&source);
    assert_eq!(video["state"], "ready", "{video:#}");
    let id = video["id"].as_str().expect("id");
    let view = server.get_json(&format!("/v1/videos/{id}")).await;
    let job = server
        .get_json(&format!(
            "/v1/jobs/{}",
            view["job_id"].as_str().expect("job")
        ))
        .await;
    let mut download_tasks: Vec<&str> = job["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|task| task["kind"] == "download")
        .map(|task| task["key"].as_str().expect("key"))
        .collect();
    download_tasks.sort();
    // 640x360 makes 360p and 240p: only the chosen one becomes a task.
    let renditions: Vec<&str> = video["renditions"]
        .as_array()
        .expect("renditions")
        .iter()
        .map(|rendition| rendition["id"].as_str().expect("id"))
        .collect();
    let chosen: Vec<String> = renditions
        .iter()
        .filter(|id| id.ends_with("-240p"))
        .map(|id| format!("download-{id}"))
        .collect();
    assert_eq!(renditions.len(), 2, "{renditions:?}");
    assert_eq!(download_tasks, chosen, "{renditions:?}");
    assert_eq!(chosen.len(), 1, "{renditions:?}");
    for rendition in &renditions {
        let url = format!("{}/v/{id}/download/{rendition}.mp4", server.url);
        let response = server.client.get(&url).send().await.expect("download");
        if rendition.ends_with("-240p") {
            assert_eq!(response.status(), 200, "{url}");
            let bytes = response.bytes().await.expect("body");
            check_progressive_mp4(&server, &video, &bytes);
        } else {
            assert_eq!(response.status(), 404, "{url}: not chosen");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_only() {
    let probe = run_case(
        Source {
            name: "audio",
            args: args("-f lavfi -i sine=frequency=300:sample_rate=44100 -t 6 -c:a aac -b:a 96k"),
            extension: "m4a",
        },
        Expect {
            video: false,
            audio: true,
        },
    )
    .await;
    assert!(probe["plan"]["video"].is_null(), "{probe:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_zero_start_times() {
    // Video starts at 10 s, audio 0.4 s after it.
    let source = Source {
        name: "offset",
        args: args(&format!(
            "-f lavfi -i testsrc2=size=640x360:rate=25 -itsoffset 0.4 -f lavfi -i sine=sample_rate=48000 -t 5 -output_ts_offset 10 {X264}"
        )),
        extension: "mp4",
    };
    let probe = run_case(source, av()).await;
    let start: f64 = probe["info"]["video"]["start_time_seconds"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(start >= 9.9, "{probe:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matroska_source_that_starts_late_keeps_its_length() {
    // Matroska's DURATION tag is the stream's end time (8 s here), which
    // made a 10 s plan for 3 s of media and failed packaging with "no moof
    // box" (issue 14).
    let source = Source {
        name: "offset-mkv",
        args: lavfi_video("320x180", "25", 3.0, &format!("{X264} -output_ts_offset 5")),
        extension: "mkv",
    };
    let probe = run_case(source, av()).await;
    assert_eq!(planned(&probe, "total_frames"), 75, "{probe:#}");
    let seconds = probe["info"]["duration_seconds"]
        .as_f64()
        .expect("duration");
    assert!((seconds - 3.0).abs() < 0.05, "{probe:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shorter_than_one_segment() {
    let probe = run_case(
        Source {
            name: "short",
            args: lavfi_video("640x360", "30", 1.5, X264),
            extension: "mp4",
        },
        av(),
    )
    .await;
    assert_eq!(planned(&probe, "total_frames"), 45);
    assert_eq!(planned(&probe, "chunks").as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_open_gop_source() {
    let extra = "-c:v libx264 -preset ultrafast -pix_fmt yuv420p -bf 3 -x264-params keyint=300:min-keyint=300:open-gop=1:scenecut=0 -c:a aac -shortest";
    let probe = run_case(
        Source {
            name: "opengop",
            args: lavfi_video("640x360", "30", 12.0, extra),
            extension: "mp4",
        },
        av(),
    )
    .await;
    assert_eq!(planned(&probe, "total_frames"), 360);
}

/// Ingests `bytes` and returns the final video; it must have failed.
async fn failed_case(file_name: &str, bytes: &[u8], envs: &[(&str, &str)]) -> Value {
    let server = Server::start(1, envs);
    let path = server.env.dir.path().join(file_name);
    std::fs::write(&path, bytes).expect("write");
    let video = server.ingest(&path);
    assert_eq!(video["state"], "failed", "{video:#}");
    video
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_media_fails_permanently_and_says_why() {
    let mut noise = vec![0u8; 200_000];
    let mut state: u32 = 12345;
    for byte in noise.iter_mut() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *byte = (state >> 16) as u8;
    }
    let video = failed_case("noise.mp4", &noise, &[]).await;
    assert_eq!(video["error"]["step"], "media-probe", "{video:#}");
    let message = video["error"]["message"].as_str().expect("message");
    assert!(message.contains("probe"), "{message}");
    let video = failed_case("notes.mp4", b"just some text, not a video\n", &[]).await;
    assert_eq!(video["error"]["step"], "media-probe", "{video:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playlist_disguised_as_video_is_rejected_without_following_it() {
    // A listener that records whether anything connects to it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let playlist = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nhttp://127.0.0.1:{port}/segment.ts\n#EXTINF:4,\nfile:///etc/hostname\n#EXT-X-ENDLIST\n"
    );
    let video = failed_case("evil.mp4", playlist.as_bytes(), &[]).await;
    let message = video["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("container") || message.contains("format"),
        "{message}"
    );
    assert!(
        listener.accept().is_err(),
        "ffmpeg followed a reference in the playlist"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_over_the_duration_limit_fails_with_the_limit() {
    let dir = tempfile::tempdir().expect("dir");
    let file = make_source(
        dir.path(),
        &Source {
            name: "long",
            args: lavfi_video("320x180", "25", 5.0, X264),
            extension: "mp4",
        },
    );
    let bytes = std::fs::read(file).expect("read");
    let video = failed_case("long.mp4", &bytes, &[("REEL_MAX_DURATION", "3s")]).await;
    let message = video["error"]["message"].as_str().expect("message");
    assert!(message.contains("limit"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_serves_with_cache_headers_ranges_and_cors() {
    let server = Server::start(2, &[]);
    let file = make_source(
        server.env.dir.path(),
        &Source {
            name: "origin",
            args: lavfi_video("320x180", "25", 3.0, X264),
            extension: "mp4",
        },
    );
    let video = server.ingest(&file);
    assert_eq!(video["state"], "ready", "{video:#}");
    let hls = video["hls"].as_str().expect("hls");
    let base = &hls[..hls.rfind('/').expect("slash") + 1];
    let rendition = video["renditions"][0]["id"].as_str().expect("id");
    let segment_url = format!("{base}{rendition}/seg-00001.m4s");
    let client = &server.client;
    let full = client.get(&segment_url).send().await.expect("get");
    assert_eq!(full.status(), 200);
    let headers = full.headers().clone();
    assert_eq!(headers["content-type"], "video/iso.segment");
    assert!(headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(headers["access-control-allow-origin"], "*");
    let etag = headers["etag"].to_str().expect("etag").to_string();
    let body = full.bytes().await.expect("body");
    let not_modified = client
        .get(&segment_url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("conditional");
    assert_eq!(not_modified.status(), 304);
    let partial = client
        .get(&segment_url)
        .header("Range", "bytes=8-99")
        .send()
        .await
        .expect("range");
    assert_eq!(partial.status(), 206);
    assert_eq!(
        partial.headers()["content-range"],
        format!("bytes 8-99/{}", body.len()).as_str()
    );
    assert_eq!(partial.bytes().await.expect("body"), body.slice(8..100));
    // If-Range: the current ETag keeps the range, another one gets the
    // whole object; If-Modified-Since with the object's date is a 304.
    for (if_range, status) in [(etag.as_str(), 206), ("\"other\"", 200)] {
        let guarded = client
            .get(&segment_url)
            .header("Range", "bytes=8-99")
            .header("If-Range", if_range)
            .send()
            .await
            .expect("if-range");
        assert_eq!(guarded.status(), status, "If-Range {if_range}");
    }
    let last_modified = headers["last-modified"].to_str().expect("date").to_string();
    let since = client
        .get(&segment_url)
        .header("If-Modified-Since", &last_modified)
        .send()
        .await
        .expect("if-modified-since");
    assert_eq!(since.status(), 304);
    let unsatisfiable = client
        .get(&segment_url)
        .header("Range", format!("bytes={}-", body.len() + 10))
        .send()
        .await
        .expect("range");
    assert_eq!(unsatisfiable.status(), 416);
    let head = client.head(&segment_url).send().await.expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        body.len().to_string().as_str()
    );
    let master = client.get(hls).send().await.expect("master");
    assert_eq!(
        master.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    // Short for browsers, long for edges (purged when a manifest changes).
    assert_eq!(master.headers()["cache-control"], "public, max-age=10");
    assert_eq!(
        master.headers()["cdn-cache-control"],
        "max-age=86400, stale-while-revalidate=60, stale-if-error=86400"
    );
    let mpd = client
        .get(video["dash"].as_str().expect("dash"))
        .send()
        .await
        .expect("mpd");
    assert_eq!(mpd.headers()["content-type"], "application/dash+xml");
    let preflight = client
        .request(reqwest::Method::OPTIONS, &segment_url)
        .header("Origin", "http://example.test")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "range")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success());
    assert!(preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("Range"));
    for bad in [
        "..%2F..%2Freel.db",
        "../sources/x/source",
        "nothing.m4s",
        "source",
    ] {
        let response = client
            .get(format!("{base}{bad}"))
            .send()
            .await
            .expect("get");
        assert!(
            response.status() == 400 || response.status() == 404,
            "{bad}: {}",
            response.status()
        );
    }
    let poster = client
        .get(format!("{base}poster.jpg"))
        .send()
        .await
        .expect("poster");
    assert_eq!(poster.status(), 200);
    assert_eq!(poster.headers()["content-type"], "image/jpeg");
    let storyboard = server
        .get_text(&format!("{base}storyboard/index.vtt"))
        .await;
    assert!(storyboard.starts_with("WEBVTT"), "{storyboard}");
    assert!(storyboard.contains("#xywh="), "{storyboard}");
    // Deleting the video removes its objects and its URLs.
    let id = video["id"].as_str().expect("id");
    let deleted = client
        .delete(format!("{}/v1/videos/{id}", server.url))
        .bearer_auth(&server.key)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        client.get(&segment_url).send().await.expect("get").status(),
        404
    );
    assert_eq!(
        client
            .get(format!("{}/v1/videos/{id}", server.url))
            .send()
            .await
            .expect("get")
            .status(),
        404
    );
    let left = crate::common::list_files(&server.env.objects_dir());
    assert!(left.is_empty(), "objects left after delete: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_plays_the_stream_to_the_end_in_chromium() {
    let server = Server::start(2, &[]);
    let file = make_source(
        server.env.dir.path(),
        &Source {
            name: "browser",
            args: lavfi_video("640x360", "30", 6.0, X264),
            extension: "mp4",
        },
    );
    let video = server.ingest(&file);
    assert_eq!(video["state"], "ready", "{video:#}");
    let hls = video["hls"].as_str().expect("hls");
    let output = Command::new("node")
        .arg(clients_dir().join("play-hls.mjs"))
        .args([
            hls,
            "--timeout",
            "90",
            "--rate",
            "4",
            "--stall-timeout",
            "20",
        ])
        .output()
        .expect("node: run scripts/install-test-clients.sh (make test does)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!(
            "play-hls.mjs printed no JSON ({error}): {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(report["ended"], true, "{report:#}");
    assert!(
        report["errors"]
            .as_array()
            .map(|e| e.iter().all(|e| e["fatal"] != true))
            .unwrap_or(false),
        "{report:#}"
    );
    let duration = report["duration"].as_f64().expect("duration");
    assert!((duration - 6.0).abs() < 0.2, "{report:#}");
    assert!(
        report["decodedFrames"].as_u64().unwrap_or(0) >= 170,
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_during_an_encode_still_yields_a_complete_video() {
    // Scale-out shape: PostgreSQL, an API-only server and separate workers.
    let envs = [
        ("REEL_WORKER_LEASE", "2s"),
        ("REEL_WORKER_HEARTBEAT", "500ms"),
        ("REEL_WORKER_POLL", "200ms"),
        ("REEL_WORKER_RETRY_BASE", "100ms"),
        ("REEL_ENCODE_PRESET", "medium"),
        ("REEL_ENCODE_SEGMENTS_PER_CHUNK", "2"),
    ];
    let server = Server::start_in(Env::postgres().await, 0, &envs);
    let file = make_source(
        server.env.dir.path(),
        &Source {
            name: "kill",
            args: lavfi_video("1280x720", "30", 8.0, X264),
            extension: "mp4",
        },
    );
    let first = server
        .env
        .spawn_with(&["worker", "--slots", "1", "--name", "first"], &envs);
    let response = server
        .client
        .post(format!("{}/v1/videos?title=kill", server.url))
        .bearer_auth(&server.key)
        .body(std::fs::read(&file).expect("read"))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("json");
    let job_id = created["job_id"].as_str().expect("job").to_string();
    // Wait until an encode task is running with ffmpeg mid-way, then SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = server.get_json(&format!("/v1/jobs/{job_id}")).await;
        let encoding = job["tasks"].as_array().expect("tasks").iter().any(|task| {
            task["kind"] == "encode"
                && task["state"] == "running"
                && task["progress"].as_f64().unwrap_or(0.0) > 0.0
        });
        if encoding {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no encode ever ran: {job:#} {}",
            first.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The API shows the encode's progress (from ffmpeg's -progress).
    let midway = server
        .get_json(&format!(
            "/v1/videos/{}",
            created["id"].as_str().expect("id")
        ))
        .await;
    let percent = midway["percent"].as_f64().expect("percent");
    assert!(percent > 5.0 && percent < 100.0, "{midway:#}");
    // Mid-encode the video is processing, or already playable in the
    // renditions published so far (the lowest goes first).
    assert!(
        ["processing", "playable"].contains(&midway["state"].as_str().unwrap_or("")),
        "{midway:#}"
    );
    if midway["state"] == "playable" {
        let master = server
            .get_text(midway["urls"]["hls"].as_str().expect("hls"))
            .await;
        let published = midway["renditions"].as_array().expect("renditions").len();
        assert!(published >= 1, "{midway:#}");
        assert_eq!(
            master.matches("#EXT-X-STREAM-INF").count(),
            published,
            "{master}"
        );
    }
    first.signal(libc::SIGKILL);
    let _second = server
        .env
        .spawn_with(&["worker", "--slots", "2", "--name", "second"], &envs);
    let id = created["id"].as_str().expect("id");
    let deadline = Instant::now() + Duration::from_secs(240);
    let video = loop {
        let view = server.get_json(&format!("/v1/videos/{id}")).await;
        if ["ready", "failed", "cancelled"].contains(&view["state"].as_str().unwrap_or("")) {
            break view;
        }
        assert!(Instant::now() < deadline, "never finished: {view:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let summary = serde_json::json!({
        "id": video["id"], "state": video["state"], "hls": video["urls"]["hls"],
        "dash": video["urls"]["dash"], "renditions": video["renditions"],
    });
    check_playable(&server, &summary, av()).await;
    let job = server.get_json(&format!("/v1/jobs/{job_id}")).await;
    let redone = job["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|task| task["kind"] == "encode" && task["attempt"].as_i64().unwrap_or(0) >= 2)
        .count();
    assert!(redone >= 1, "no encode task was redone: {job:#}");
}

/// The bytes of the files directly in `dir` (0 when it does not exist).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.metadata().ok())
                .filter(|meta| meta.is_file())
                .map(|meta| meta.len())
                .sum()
        })
        .unwrap_or(0)
}

/// With `s3://` storage each worker copies sources into its scratch
/// directory; over 20 videos the copies stay within `worker.source_cache`
/// (here room for 2 sources), least recently used ones evicted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_storage_keeps_the_video_source_cache_within_its_budget() {
    let s3 = crate::upload::start_s3_server("reel-cache").await;
    let mut env = Env::sqlite();
    env.storage = "s3://reel-cache".to_string();
    let dir = env.dir.path().to_path_buf();
    let source = make_source(
        &dir,
        &Source {
            name: "small",
            args: lavfi_video("160x90", "25", 1.0, X264),
            extension: "mp4",
        },
    );
    let size = std::fs::metadata(&source).expect("source").len();
    // Two sources fit, a third does not.
    let budget = 2 * size + size / 2;
    let budget_text = budget.to_string();
    let envs = [
        ("REEL_S3_ENDPOINT", s3.endpoint.as_str()),
        ("REEL_S3_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "reel-test"),
        ("AWS_SECRET_ACCESS_KEY", "reel-test-secret"),
        ("REEL_WORKER_SOURCE_CACHE", budget_text.as_str()),
    ];
    let server = Arc::new(Server::start_in(env, 2, &envs));
    let cache = dir.join("scratch/sources");

    // The cache's size after every change the sampler sees.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let cache = cache.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut peak, mut samples) = (0u64, 0u64);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                peak = peak.max(dir_bytes(&cache));
                samples += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            (peak.max(dir_bytes(&cache)), samples)
        })
    };
    let ingests: Vec<_> = (0..20)
        .map(|_| {
            let server = server.clone();
            let source = source.clone();
            tokio::task::spawn_blocking(move || server.ingest(&source))
        })
        .collect();
    for ingest in ingests {
        let video = ingest.await.expect("ingest thread");
        assert_eq!(video["state"], "ready", "{video:#}");
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (peak, samples) = sampler.join().expect("sampler");
    let copies = std::fs::read_dir(&cache).expect("cache dir").count();
    assert!(
        samples > 0 && peak >= size,
        "the cache was used: peak {peak} bytes"
    );
    assert!(
        peak <= budget,
        "the source cache reached {peak} bytes, over its budget of {budget} ({size} per source)"
    );
    assert!(copies <= 2, "{copies} copies kept, room for 2");
}
