//! `reel play URL`: a headless HLS and DASH player that streams a reel video through
//! its edges with one of reel's ABR algorithms, in real time (or scaled
//! time), and reports start-up time, stalls, renditions, switches and QoE.
//!
//! - It reads the HLS multivariant playlist or the DASH MPD (steered or
//!   not; an MPD is recognised by its content, `<?xml` or `<MPD`, or by
//!   `.mpd` in the path, and read by [`crate::dash`] into the same ladder
//!   per pathway, one pathway per `BaseURL@serviceLocation`), follows
//!   content steering (the steering server's pathway order,
//!   `PATHWAY-PRIORITY` or `SERVICE-LOCATION-PRIORITY`, reloaded every TTL;
//!   a pathway whose requests fail is skipped), and asks for each media
//!   segment with CMCD (`br`, `bl`, `d`, `mtp`, `nor`, `ot`, `sf`, `sid`,
//!   `cid`, `su`) in the query.
//! - Segment sizes come from HEAD requests before playback, so algorithms
//!   that plan ahead (RobustMPC, reel) see the sizes they will download.
//! - `--trace FILE` shapes its own download rate to a network trace
//!   (`seconds Mbit/s` per line) exactly as the simulator does (payload
//!   fraction 0.95, 80 ms RTT per request, trace time advancing with
//!   transfers and buffer-drain sleeps), so its QoE can be compared with
//!   `reel abr simulate` on the same trace and sizes; `--json` then also
//!   prints the simulator's result.
//! - The buffer follows the simulator's model (60 s cap, drained in 500 ms
//!   steps) with the times it really measured; the first chunk is the
//!   start-up, and its download time is the start-up delay.
//!
//! Only video segments are fetched (the ABR decision is about video).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use reel_abr::player::{Algorithm, ChunkRecord, Observation};
use reel_abr::qoe::QoeMetric;
use reel_abr::sim::{Session, SetupError, SimConfig};
use reel_abr::trace::Trace;
use reel_abr::video::{Bitrate, Video};
use serde_json::{json, Value};
use url::Url;

use crate::dash;
use crate::hls::{self, MediaPlaylist, Multivariant};

/// What `reel play` was asked.
pub struct PlayArgs {
    pub url: String,
    pub algorithm: String,
    pub trace: Option<PathBuf>,
    pub speed: f64,
    pub max_chunks: Option<usize>,
    pub first_level: usize,
    pub json: bool,
}

/// Media time runs `speed` times faster than the wall clock.
#[derive(Clone, Copy)]
struct Clock {
    started: Instant,
    speed: f64,
}

impl Clock {
    fn now_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0 * self.speed
    }

    async fn sleep_ms(&self, ms: f64) {
        if ms > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0 / self.speed)).await;
        }
    }

    async fn sleep_until_ms(&self, at_ms: f64) {
        let now = self.now_ms();
        self.sleep_ms(at_ms - now).await;
    }
}

/// The trace link of the simulator (`fixed_env.py`): a pointer into the
/// trace and the trace time, advanced by transfers and drain sleeps only.
#[derive(Clone, Copy)]
struct TraceLink<'a> {
    trace: &'a Trace,
    ptr: usize,
    last_time: f64,
}

/// The simulator's payload fraction.
const PAYLOAD_FRACTION: f64 = 0.95;
/// The simulator's round-trip time per request.
const RTT_MS: f64 = 80.0;
/// The simulator's buffer cap and drain step.
const BUFFER_CAP_MS: f64 = 60_000.0;
const DRAIN_STEP_MS: f64 = 500.0;

impl<'a> TraceLink<'a> {
    fn start(trace: &'a Trace) -> TraceLink<'a> {
        TraceLink {
            trace,
            ptr: 1,
            last_time: trace.times()[0],
        }
    }

    fn advance_ptr(&mut self) {
        self.ptr += 1;
        if self.ptr >= self.trace.len() {
            self.ptr = 1;
            self.last_time = 0.0;
        }
    }

    /// Seconds of trace time to deliver `bytes`; advances the link.
    fn transfer(&mut self, bytes: f64) -> f64 {
        let (times, mbps) = (self.trace.times(), self.trace.mbps());
        let mut delay = 0.0;
        let mut sent = 0.0;
        loop {
            let throughput = mbps[self.ptr] * 1_000_000.0 / 8.0;
            let duration = times[self.ptr] - self.last_time;
            let payload = throughput * duration * PAYLOAD_FRACTION;
            if sent + payload > bytes {
                let fractional = (bytes - sent) / throughput / PAYLOAD_FRACTION;
                self.last_time += fractional;
                return delay + fractional;
            }
            sent += payload;
            delay += duration;
            self.last_time = times[self.ptr];
            self.advance_ptr();
        }
    }

    /// Lets `ms` of trace time pass (a drain sleep).
    fn idle(&mut self, ms: f64) {
        let times = self.trace.times();
        let mut remaining = ms;
        loop {
            let duration = times[self.ptr] - self.last_time;
            if duration > remaining / 1000.0 {
                self.last_time += remaining / 1000.0;
                return;
            }
            remaining -= duration * 1000.0;
            self.last_time = times[self.ptr];
            self.advance_ptr();
        }
    }
}

/// The pathways in steering order, and where to ask again.
struct Steering {
    server: Option<Url>,
    order: Vec<String>,
    ttl: Duration,
    loaded: Instant,
    penalized: Vec<String>,
    /// DASH steering: `_DASH_pathway` and `_DASH_throughput` in the query.
    dash: bool,
}

impl Steering {
    async fn reload(&mut self, client: &reqwest::Client, current: &str, throughput_bps: u64) {
        let Some(server) = &self.server else {
            return;
        };
        let mut url = server.clone();
        let (pathway_key, throughput_key) = if self.dash {
            ("_DASH_pathway", "_DASH_throughput")
        } else {
            ("_HLS_pathway", "_HLS_throughput")
        };
        url.query_pairs_mut()
            .append_pair(pathway_key, current)
            .append_pair(throughput_key, &throughput_bps.to_string());
        self.loaded = Instant::now();
        let Ok(response) = client.get(url).send().await else {
            return;
        };
        let Ok(manifest) = response.json::<Value>().await else {
            return;
        };
        let server = server.clone();
        self.apply(&server, &manifest);
    }

    /// Takes a steering manifest's answer: the pathway order
    /// (`PATHWAY-PRIORITY` for HLS, `SERVICE-LOCATION-PRIORITY` for DASH),
    /// the TTL and the reload URI.
    fn apply(&mut self, server: &Url, manifest: &Value) {
        let order = manifest["PATHWAY-PRIORITY"]
            .as_array()
            .or_else(|| manifest["SERVICE-LOCATION-PRIORITY"].as_array());
        if let Some(order) = order {
            let order: Vec<String> = order
                .iter()
                .filter_map(|id| id.as_str().map(str::to_string))
                .collect();
            if !order.is_empty() {
                self.order = order;
            }
        }
        if let Some(ttl) = manifest["TTL"].as_u64() {
            self.ttl = Duration::from_secs(ttl.max(1));
        }
        if let Some(reload) = manifest["RELOAD-URI"].as_str() {
            if let Ok(next) = server.join(reload) {
                self.server = Some(next);
            }
        }
    }

    /// The best pathway not penalized (or the best one if all are).
    fn best(&self, available: &[String]) -> String {
        self.order
            .iter()
            .chain(available.iter())
            .find(|id| available.contains(id) && !self.penalized.contains(id))
            .or_else(|| self.order.iter().find(|id| available.contains(id)))
            .cloned()
            .unwrap_or_else(|| available[0].clone())
    }
}

/// Reads the multivariant playlist or the MPD at `url`.
async fn load_manifest(client: &reqwest::Client, url: &Url) -> anyhow::Result<Multivariant> {
    let text = hls::fetch_text(client, url).await?;
    if dash::is_mpd(&text, url) {
        dash::parse_mpd(&text, url)
    } else {
        hls::parse_multivariant(&text, url)
    }
}

/// One rendition's media playlist: already resolved (DASH), or fetched;
/// the outer error is a failed request, the inner one a bad playlist.
async fn media_playlist(
    client: &reqwest::Client,
    rendition: &hls::Rendition,
) -> anyhow::Result<anyhow::Result<MediaPlaylist>> {
    if let Some(media) = &rendition.media {
        return Ok(Ok(media.clone()));
    }
    let text = hls::fetch_text(client, &rendition.playlist).await?;
    Ok(hls::parse_media(&text, &rendition.playlist))
}

/// The CMCD query value of a segment request.
struct Cmcd<'a> {
    bitrate_kbps: u64,
    buffer_ms: f64,
    duration_ms: f64,
    measured_kbps: Option<f64>,
    next: Option<&'a str>,
    session: &'a str,
    content: &'a str,
    startup: bool,
    /// `sf`: `h` (HLS) or `d` (DASH).
    format: char,
}

impl Cmcd<'_> {
    fn value(&self) -> String {
        let mut keys = vec![
            format!("bl={}", (self.buffer_ms / 100.0).round() as u64 * 100),
            format!("br={}", self.bitrate_kbps),
            format!("cid=\"{}\"", self.content),
            format!("d={}", self.duration_ms.round() as u64),
        ];
        if let Some(measured) = self.measured_kbps {
            keys.push(format!("mtp={}", (measured / 100.0).round() as u64 * 100));
        }
        if let Some(next) = self.next {
            keys.push(format!("nor=\"{next}\""));
        }
        keys.push("ot=v".to_string());
        keys.push(format!("sf={}", self.format));
        keys.push(format!("sid=\"{}\"", self.session));
        if self.startup {
            keys.push("su".to_string());
        }
        keys.join(",")
    }
}

fn algorithm(name: &str) -> anyhow::Result<Box<dyn Algorithm>> {
    crate::abr::algorithm(name).with_context(|| {
        format!(
            "unknown algorithm {name:?}; use one of {}",
            crate::abr::PLAYABLE.join(", ")
        )
    })
}

/// What one chunk download measured.
struct Fetched {
    size: u64,
    delay_ms: f64,
    host: String,
}

struct Player<'a> {
    client: reqwest::Client,
    clock: Clock,
    link: Option<TraceLink<'a>>,
}

impl Player<'_> {
    /// Downloads `url`, shaped to the trace when there is one; the delay
    /// includes the RTT when shaping (as the simulator counts it).
    async fn download(&mut self, url: &Url) -> anyhow::Result<Fetched> {
        let started = self.clock.now_ms();
        if self.link.is_some() {
            self.clock.sleep_ms(RTT_MS).await;
        }
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET {url} answered {}",
            response.status()
        );
        let transfer_start = self.clock.now_ms();
        let mut body = response.bytes_stream();
        let mut received: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.with_context(|| format!("reading {url}"))?;
            received += chunk.len() as u64;
            if let Some(link) = &self.link {
                let mut probe = *link;
                let due_ms = transfer_start + probe.transfer(received as f64) * 1000.0;
                self.clock.sleep_until_ms(due_ms).await;
            }
        }
        if let Some(link) = &mut self.link {
            let due_ms = transfer_start + link.transfer(received as f64) * 1000.0;
            self.clock.sleep_until_ms(due_ms).await;
        }
        Ok(Fetched {
            size: received,
            delay_ms: self.clock.now_ms() - started,
            host: url.host_str().unwrap_or_default().to_string()
                + &url
                    .port()
                    .map(|port| format!(":{port}"))
                    .unwrap_or_default(),
        })
    }
}

/// One pathway's media playlists (lowest rendition first) and the video
/// the ABR sees: average bandwidths as the ladder, HEAD sizes per segment.
pub async fn load_ladder(
    client: &reqwest::Client,
    multivariant: &Multivariant,
    pathway: &str,
) -> anyhow::Result<(Vec<MediaPlaylist>, Video)> {
    let mut media: Vec<MediaPlaylist> = Vec::new();
    for rendition in multivariant.ladder(pathway) {
        media.push(media_playlist(client, &rendition).await??);
    }
    let ladder: Vec<u64> = multivariant
        .ladder(pathway)
        .iter()
        .map(|rendition| rendition.average_bandwidth)
        .collect();
    let mut sizes = Vec::with_capacity(media.len());
    for playlist in &media {
        sizes.push(hls::segment_sizes(client, playlist).await?);
    }
    let n_chunks = sizes.iter().map(Vec::len).min().unwrap_or(0);
    for level in &mut sizes {
        level.truncate(n_chunks);
    }
    let chunk_duration = media[0].segments[0].1;
    let video = Video::new(
        ladder
            .iter()
            .map(|&bps| Bitrate::from_kbps(bps / 1000))
            .collect(),
        sizes,
        chunk_duration,
    )
    .context("the renditions do not form a ladder the ABR can use")?;
    Ok((media, video))
}

/// The video of a reel multivariant playlist (or MPD) URL, for the simulator.
pub async fn video_from_url(url: &str) -> anyhow::Result<Video> {
    let client = reqwest::Client::new();
    let url = Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
    let multivariant = load_manifest(&client, &url).await?;
    let pathway = multivariant.pathways()[0].clone();
    Ok(load_ladder(&client, &multivariant, &pathway).await?.1)
}

pub async fn play(args: PlayArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.speed.is_finite() && (0.1..=64.0).contains(&args.speed),
        "--speed must be between 0.1 and 64"
    );
    let mut abr = algorithm(&args.algorithm)?;
    let trace = match &args.trace {
        Some(path) => Some(
            reel_abr::load::parse_trace(
                &std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
            )
            .with_context(|| format!("parsing the trace {}", path.display()))?,
        ),
        None => None,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = Url::parse(&args.url).with_context(|| format!("{:?} is not a URL", args.url))?;
    let multivariant = load_manifest(&client, &url).await?;
    let pathways = multivariant.pathways();
    let mut steering = Steering {
        server: multivariant
            .steering
            .as_ref()
            .map(|(server, _)| server.clone()),
        order: multivariant
            .steering
            .as_ref()
            .and_then(|(_, initial)| initial.clone())
            .into_iter()
            .chain(pathways.iter().cloned())
            .collect(),
        ttl: Duration::from_secs(300),
        loaded: Instant::now(),
        penalized: Vec::new(),
        dash: multivariant.dash,
    };
    steering.reload(&client, &pathways[0], 0).await;
    let mut pathway = steering.best(&pathways);

    // The ladder and every segment's size.
    let (media, video) = load_ladder(&client, &multivariant, &pathway).await?;
    let n_chunks = args
        .max_chunks
        .map_or(video.n_chunks(), |max| max.min(video.n_chunks()));
    anyhow::ensure!(n_chunks >= 2, "the video has fewer than 2 segments");
    let chunk_duration = video.chunk_duration();
    let first_level = args.first_level.min(video.n_levels() - 1);

    let session_id = uuid::Uuid::new_v4().to_string();
    let content_id = url
        .path_segments()
        .and_then(|mut segments| segments.find(|part| part.len() == 36))
        .unwrap_or("video")
        .to_string();
    let clock = Clock {
        started: Instant::now(),
        speed: args.speed,
    };
    let mut player = Player {
        client: client.clone(),
        clock,
        link: trace.as_ref().map(TraceLink::start),
    };
    abr.reset();
    let mut records: Vec<ChunkRecord> = Vec::with_capacity(n_chunks);
    let mut hosts: Vec<String> = Vec::with_capacity(n_chunks);
    let mut buffer_ms = 0.0;
    let mut media_by_pathway: std::collections::HashMap<String, Vec<MediaPlaylist>> =
        std::collections::HashMap::from([(pathway.clone(), media)]);
    let mut inits_loaded: Vec<(String, usize)> = Vec::new();
    let chunk_ms = chunk_duration.as_secs_f64() * 1000.0;
    let mut level = first_level;
    for chunk_idx in 0..n_chunks {
        if chunk_idx > 0 {
            let observation = Observation {
                video: &video,
                n_chunks,
                next_chunk_idx: chunk_idx,
                history: &records,
            };
            level = abr.choose(&observation).min(video.n_levels() - 1);
        }
        if steering.server.is_some() && steering.loaded.elapsed() >= steering.ttl {
            let throughput = records
                .last()
                .map_or(0, |record| (record.throughput_kbps() * 1000.0) as u64);
            steering.reload(&client, &pathway, throughput).await;
            pathway = steering.best(&pathways);
        }
        // Try the pathways in steering order until one delivers the chunk.
        let fetched = loop {
            if !media_by_pathway.contains_key(&pathway) {
                let mut playlists = Vec::new();
                let mut failed = None;
                for rendition in multivariant.ladder(&pathway) {
                    match media_playlist(&client, &rendition).await {
                        Ok(parsed) => playlists.push(parsed?),
                        Err(error) => {
                            failed = Some(error);
                            break;
                        }
                    }
                }
                if let Some(error) = failed {
                    tracing::warn!(%pathway, %error, "pathway failed; trying the next");
                    steering.penalized.push(pathway.clone());
                    anyhow::ensure!(
                        steering.penalized.len() < pathways.len(),
                        "every pathway failed: {error:#}"
                    );
                    pathway = steering.best(&pathways);
                    continue;
                }
                media_by_pathway.insert(pathway.clone(), playlists);
            }
            let playlists = &media_by_pathway[&pathway];
            let playlist = &playlists[level];
            let mut result = Ok(());
            if let Some(init) = &playlist.init {
                if !inits_loaded.contains(&(pathway.clone(), level)) {
                    result = player.download(init).await.map(|_| ());
                    if result.is_ok() {
                        inits_loaded.push((pathway.clone(), level));
                    }
                }
            }
            let outcome = match result {
                Ok(()) => {
                    let (segment, _) = &playlist.segments[chunk_idx];
                    let next = playlist
                        .segments
                        .get(chunk_idx + 1)
                        .and_then(|(url, _)| url.path_segments()?.next_back().map(str::to_string));
                    let cmcd = Cmcd {
                        bitrate_kbps: video.ladder()[level].kbps(),
                        buffer_ms,
                        duration_ms: chunk_ms,
                        measured_kbps: records.last().map(ChunkRecord::throughput_kbps),
                        next: next.as_deref(),
                        session: &session_id,
                        content: &content_id,
                        startup: chunk_idx == 0,
                        format: if multivariant.dash { 'd' } else { 'h' },
                    };
                    let mut request_url = segment.clone();
                    request_url
                        .query_pairs_mut()
                        .append_pair("CMCD", &cmcd.value());
                    player.download(&request_url).await
                }
                Err(error) => Err(error),
            };
            match outcome {
                Ok(fetched) => break fetched,
                Err(error) => {
                    tracing::warn!(%pathway, %error, "pathway failed; trying the next");
                    media_by_pathway.remove(&pathway);
                    steering.penalized.push(pathway.clone());
                    anyhow::ensure!(
                        steering.penalized.len() < pathways.len(),
                        "every pathway failed: {error:#}"
                    );
                    pathway = steering.best(&pathways);
                }
            }
        };
        // The simulator's buffer arithmetic, with the measured delay.
        let delay_ms = fetched.delay_ms;
        let rebuffer_ms = (delay_ms - buffer_ms).max(0.0);
        buffer_ms = (buffer_ms - delay_ms).max(0.0) + chunk_ms;
        let mut sleep_ms = 0.0;
        if buffer_ms > BUFFER_CAP_MS {
            sleep_ms = ((buffer_ms - BUFFER_CAP_MS) / DRAIN_STEP_MS).ceil() * DRAIN_STEP_MS;
            buffer_ms -= sleep_ms;
            if let Some(link) = &mut player.link {
                link.idle(sleep_ms);
            }
            clock.sleep_ms(sleep_ms).await;
        }
        records.push(ChunkRecord {
            chunk_idx,
            level_idx: level,
            size_bytes: fetched.size,
            delay_ms,
            rebuffer_ms,
            sleep_ms,
            buffer_ms,
        });
        hosts.push(fetched.host);
        if !args.json {
            eprintln!(
                "chunk {chunk_idx:>3}  level {level} ({} kbit/s)  {:>8} B in {:>7.0} ms  buffer {:>5.1} s{}",
                video.ladder()[level].kbps(),
                fetched.size,
                delay_ms,
                buffer_ms / 1000.0,
                if rebuffer_ms > 0.0 && chunk_idx > 0 {
                    format!("  STALL {:.2} s", rebuffer_ms / 1000.0)
                } else {
                    String::new()
                }
            );
        }
    }

    let setup = |n_chunks| -> Result<reel_abr::sim::Setup, SetupError> {
        reel_abr::sim::Setup::new(
            video.clone(),
            SimConfig {
                n_chunks,
                first_level_idx: first_level,
                ..SimConfig::pensieve()
            },
            QoeMetric::Linear,
        )
    };
    let setup = setup(n_chunks)?;
    let session = Session {
        records: records.clone(),
    };
    let score = session.score(&setup);
    let simulated = match &trace {
        Some(trace) => {
            let mut fresh = algorithm(&args.algorithm)?;
            let simulated = reel_abr::sim::simulate(&setup, trace, fresh.as_mut());
            let sim_score = simulated.score(&setup);
            Some(json!({
                "qoe_lin": sim_score.qoe,
                "mean_bitrate_kbps": sim_score.mean_bitrate_kbps,
                "rebuffer_seconds": sim_score.rebuffer.as_secs_f64(),
                "switches": sim_score.n_switches,
                "levels": simulated.levels(),
            }))
        }
        None => None,
    };
    let report = json!({
        "url": args.url,
        "algorithm": abr.name(),
        "speed": args.speed,
        "chunks": n_chunks,
        "chunk_seconds": chunk_duration.as_secs_f64(),
        "ladder_kbps": video.ladder().iter().map(|rate| rate.kbps()).collect::<Vec<_>>(),
        "startup_ms": records[0].delay_ms,
        "rebuffer_seconds": score.rebuffer.as_secs_f64(),
        "stalls": records.iter().skip(1).filter(|record| record.rebuffer_ms > 0.0).count(),
        "switches": score.n_switches,
        "mean_bitrate_kbps": score.mean_bitrate_kbps,
        "qoe_lin": score.qoe,
        "levels": session.levels(),
        "hosts": hosts,
        "delays_ms": records.iter().map(|record| record.delay_ms.round()).collect::<Vec<_>>(),
        "simulated": simulated,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: startup {:.0} ms, rebuffering {:.2} s, {} switches, mean {:.0} kbit/s, QoE_lin {:.2}",
            abr.name(),
            records[0].delay_ms,
            score.rebuffer.as_secs_f64(),
            score.n_switches,
            score.mean_bitrate_kbps,
            score.qoe
        );
        if let Some(simulated) = report["simulated"].as_object() {
            println!(
                "simulator on the same trace and sizes: QoE_lin {:.2}",
                simulated["qoe_lin"].as_f64().unwrap_or_default()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmcd_keys_are_sorted_and_rounded() {
        let value = Cmcd {
            bitrate_kbps: 730,
            buffer_ms: 12_345.0,
            duration_ms: 4000.0,
            measured_kbps: Some(2_468.0),
            next: Some("seg-00003.m4s"),
            session: "s",
            content: "c",
            startup: true,
            format: 'h',
        }
        .value();
        assert_eq!(
            value,
            "bl=12300,br=730,cid=\"c\",d=4000,mtp=2500,nor=\"seg-00003.m4s\",ot=v,sf=h,sid=\"s\",su"
        );
    }

    #[test]
    fn steering_answers_in_either_protocol_set_the_order() {
        let server = Url::parse("http://router/v1/steering/x?proto=dash").expect("url");
        let mut steering = Steering {
            server: Some(server.clone()),
            order: vec!["a".to_string(), "b".to_string()],
            ttl: Duration::from_secs(300),
            loaded: Instant::now(),
            penalized: Vec::new(),
            dash: true,
        };
        let available = ["a".to_string(), "b".to_string()];
        steering.apply(
            &server,
            &json!({"VERSION": 1, "TTL": 4, "RELOAD-URI": "/v1/steering/x?proto=dash&n=1",
                    "SERVICE-LOCATION-PRIORITY": ["b", "a"]}),
        );
        assert_eq!(steering.order, ["b", "a"]);
        assert_eq!(steering.best(&available), "b");
        assert_eq!(steering.ttl, Duration::from_secs(4));
        assert_eq!(
            steering.server.as_ref().map(Url::as_str),
            Some("http://router/v1/steering/x?proto=dash&n=1")
        );
        steering.apply(&server, &json!({"PATHWAY-PRIORITY": ["a", "b"]}));
        assert_eq!(steering.order, ["a", "b"]);
        steering.apply(&server, &json!({"PATHWAY-PRIORITY": []}));
        assert_eq!(steering.order, ["a", "b"]);
    }

    #[test]
    fn the_trace_link_matches_the_simulator() {
        // 1 Mbit/s for 10 s: 1 s delivers 0.95 × 125,000 bytes.
        let trace = Trace::new(vec![0.0, 10.0, 20.0], vec![1.0, 1.0, 1.0]).expect("trace");
        let mut link = TraceLink::start(&trace);
        let seconds = link.transfer(118_750.0);
        assert!((seconds - 1.0).abs() < 1e-9, "{seconds}");
        link.idle(2_000.0);
        assert!((link.last_time - 3.0).abs() < 1e-9);
    }
}
