//! A playback session: the ABR picks a level per segment, the level is mapped onto the
//! ladder of the pathway being played, the segment is fetched with CMCD (shaped to a trace
//! when there is one), and the buffer follows the simulator's model.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reel_abr::link::{PlayerBuffer, TraceLink};
use reel_abr::player::{Algorithm, ChunkRecord, Observation};
use reel_abr::qoe::QoeMetric;
use reel_abr::sim::{Session, Setup, SimConfig};
use reel_abr::trace::Trace;
use serde_json::{json, Value};
use url::Url;

use crate::cmcd::Cmcd;
use crate::error::PlayError;
use crate::ladder::{load_ladder, load_manifest, PathwayLadder};
use crate::limits::ManifestLimits;
use crate::model::Format;
use crate::steering::Steering;

/// What to play, and how.
#[derive(Debug, Clone)]
pub struct PlayOptions {
    /// The multivariant playlist or MPD.
    pub url: String,
    /// An algorithm of [`reel_abr::catalog::NAMES`].
    pub algorithm: String,
    /// A network trace file (`seconds Mbit/s` per line) to shape downloads to.
    pub trace: Option<PathBuf>,
    /// Media (and trace) time runs this many times faster than the wall clock (0.1 to 64).
    pub speed: f64,
    /// Play at most this many segments.
    pub max_chunks: Option<usize>,
    /// The ABR level of the first segment (0 is the lowest).
    pub first_level: usize,
    /// The video codec to play (`avc1`, `av01`, `hvc1`): one codec's ladder, as a browser
    /// plays what it decodes; `None` is H.264 when the manifest has it, else its first.
    pub codec: Option<String>,
    /// Bounds on the manifests read.
    pub limits: ManifestLimits,
}

/// The outcome of a session.
#[derive(Debug, Clone)]
pub struct Report {
    /// Every figure, as `reel play --json` prints it.
    pub json: Value,
    /// One line for people.
    pub summary: String,
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

/// What one download measured.
struct Fetched {
    size: u64,
    delay_ms: f64,
    host: String,
}

struct Downloader<'a> {
    client: reqwest::Client,
    clock: Clock,
    link: Option<TraceLink<'a>>,
    config: SimConfig,
}

impl Downloader<'_> {
    /// Downloads `url`, shaped to the trace when there is one; the delay includes the RTT
    /// when shaping (as the simulator counts it). The body is counted, not kept.
    async fn download(&mut self, url: &Url) -> Result<Fetched, PlayError> {
        let failed = |reason: String| PlayError::Segment {
            url: url.to_string(),
            reason,
        };
        let started = self.clock.now_ms();
        if self.link.is_some() {
            self.clock
                .sleep_ms(self.config.rtt.as_secs_f64() * 1000.0)
                .await;
        }
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|error| failed(error.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("answered {}", response.status())));
        }
        let payload = self.config.payload_fraction;
        let transfer_start = self.clock.now_ms();
        let mut body = response.bytes_stream();
        let mut received: u64 = 0;
        while let Some(chunk) = body.next().await {
            received += chunk.map_err(|error| failed(error.to_string()))?.len() as u64;
            if let Some(link) = &self.link {
                let mut probe = *link;
                let due_ms = transfer_start + probe.transfer(received as f64, payload) * 1000.0;
                self.clock.sleep_until_ms(due_ms).await;
            }
        }
        if let Some(link) = &mut self.link {
            let due_ms = transfer_start + link.transfer(received as f64, payload) * 1000.0;
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

fn algorithm(name: &str) -> Result<Box<dyn Algorithm + Send>, PlayError> {
    reel_abr::catalog::by_name(name).ok_or_else(|| {
        PlayError::Options(format!(
            "unknown algorithm {name:?}; use one of {}",
            reel_abr::catalog::NAMES.join(", ")
        ))
    })
}

fn read_trace(path: &PathBuf) -> Result<Trace, PlayError> {
    let error = |reason: String| PlayError::Trace {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    reel_abr::load::parse_trace(&text).map_err(|e| error(e.to_string()))
}

/// Plays `options.url` to the end (or `max_chunks`), calling `on_chunk` with a line per
/// segment, and reports start-up, stalls, levels, switches, bitrate and QoE_lin.
pub async fn play(
    options: PlayOptions,
    mut on_chunk: impl FnMut(&str),
) -> Result<Report, PlayError> {
    if !(options.speed.is_finite() && (0.1..=64.0).contains(&options.speed)) {
        return Err(PlayError::Options(
            "--speed must be between 0.1 and 64".to_string(),
        ));
    }
    let limits = &options.limits;
    let mut abr = algorithm(&options.algorithm)?;
    let trace = options.trace.as_ref().map(read_trace).transpose()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|error| PlayError::Options(format!("HTTP client: {error}")))?;
    let url = Url::parse(&options.url)
        .map_err(|error| PlayError::Options(format!("{:?} is not a URL: {error}", options.url)))?;
    let mut manifest = load_manifest(&client, &url, limits).await?;
    let codec = manifest
        .keep_one_codec(options.codec.as_deref())
        .map_err(PlayError::Options)?;
    let pathways = manifest.pathways();
    let mut steering = Steering::new(&manifest);
    steering.reload(&client, &pathways[0], 0).await;
    let mut pathway = steering
        .best(&pathways, &[])
        .unwrap_or_else(|| pathways[0].clone());

    // The ABR's view: the first pathway's ladder and every segment's size.
    let (first_ladder, video) = load_ladder(&client, &manifest, &pathway, limits).await?;
    let n_chunks = options
        .max_chunks
        .map_or(video.n_chunks(), |max| max.min(video.n_chunks()));
    if n_chunks < 2 {
        return Err(PlayError::Options(
            "the video has fewer than 2 segments".to_string(),
        ));
    }
    let chunk_duration = video.chunk_duration();
    let first_level = options.first_level.min(video.n_levels() - 1);
    let config = SimConfig {
        n_chunks,
        first_level_idx: first_level,
        ..SimConfig::pensieve()
    };

    let session_id = uuid::Uuid::new_v4().to_string();
    let content_id = url
        .path_segments()
        .and_then(|mut segments| segments.find(|part| part.len() == 36))
        .unwrap_or("video")
        .to_string();
    let clock = Clock {
        started: Instant::now(),
        speed: options.speed,
    };
    let mut downloader = Downloader {
        client: client.clone(),
        clock,
        link: trace.as_ref().map(TraceLink::start),
        config: config.clone(),
    };
    abr.reset();
    let mut records: Vec<ChunkRecord> = Vec::with_capacity(n_chunks);
    let mut hosts: Vec<String> = Vec::with_capacity(n_chunks);
    let mut played_kbps: Vec<u64> = Vec::with_capacity(n_chunks);
    let mut buffer = PlayerBuffer::new(config.buffer_cap, config.drain_step);
    let mut ladders: HashMap<String, PathwayLadder> =
        HashMap::from([(pathway.clone(), first_ladder)]);
    // Pathways whose requests failed, and pathways with no segment left to play.
    let mut penalized: Vec<String> = Vec::new();
    let mut exhausted: Vec<String> = Vec::new();
    let mut inits_loaded: Vec<(String, usize)> = Vec::new();
    let chunk_ms = chunk_duration.as_secs_f64() * 1000.0;
    let format = if manifest.format == Format::Dash {
        'd'
    } else {
        'h'
    };
    let mut level = first_level;
    let mut ended_early = false;
    'chunks: for chunk_idx in 0..n_chunks {
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
            let excluded: Vec<String> = penalized.iter().chain(&exhausted).cloned().collect();
            if let Some(best) = steering.best(&pathways, &excluded) {
                pathway = best;
            }
        }
        let target_kbps = video.ladder()[level].kbps();
        // Try the pathways in steering order until one delivers the chunk; every index
        // comes from the ladder of the pathway being played.
        let mut last_error = String::new();
        let (fetched, kbps) = loop {
            let excluded: Vec<String> = penalized.iter().chain(&exhausted).cloned().collect();
            if excluded.contains(&pathway) {
                match steering.best(&pathways, &excluded) {
                    Some(next) => pathway = next,
                    None if !exhausted.is_empty() && !records.is_empty() => {
                        tracing::warn!(chunk_idx, "no pathway has this segment; playback ends");
                        ended_early = true;
                        break 'chunks;
                    }
                    None => return Err(PlayError::AllPathwaysFailed(last_error)),
                }
            }
            if !ladders.contains_key(&pathway) {
                match PathwayLadder::load(&client, &manifest, &pathway, limits).await {
                    Ok(ladder) => {
                        ladders.insert(pathway.clone(), ladder);
                    }
                    Err(error) => {
                        tracing::warn!(%pathway, %error, "pathway failed; trying the next");
                        last_error = error.to_string();
                        penalized.push(pathway.clone());
                        continue;
                    }
                }
            }
            let ladder = &ladders[&pathway];
            let rendition = ladder.rendition_for(target_kbps);
            let playlist = &ladder.playlists[rendition];
            let Some((segment, _)) = playlist.segments.get(chunk_idx) else {
                tracing::warn!(%pathway, chunk_idx, "the pathway has fewer segments; trying the next");
                exhausted.push(pathway.clone());
                continue;
            };
            let kbps = ladder.bandwidths[rendition] / 1000;
            let mut result = Ok(());
            if let Some(init) = &playlist.init {
                if !inits_loaded.contains(&(pathway.clone(), rendition)) {
                    result = downloader.download(init).await.map(|_| ());
                    if result.is_ok() {
                        inits_loaded.push((pathway.clone(), rendition));
                    }
                }
            }
            let outcome = match result {
                Ok(()) => {
                    let next = playlist
                        .segments
                        .get(chunk_idx + 1)
                        .and_then(|(url, _)| url.path_segments()?.next_back().map(str::to_string));
                    let cmcd = Cmcd {
                        bitrate_kbps: kbps,
                        buffer_ms: buffer.level_ms(),
                        duration_ms: chunk_ms,
                        measured_kbps: records.last().map(ChunkRecord::throughput_kbps),
                        next: next.as_deref(),
                        session: &session_id,
                        content: &content_id,
                        startup: chunk_idx == 0,
                        format,
                    };
                    let mut request_url = segment.clone();
                    request_url
                        .query_pairs_mut()
                        .append_pair("CMCD", &cmcd.value());
                    downloader.download(&request_url).await
                }
                Err(error) => Err(error),
            };
            match outcome {
                Ok(fetched) => break (fetched, kbps),
                Err(error) => {
                    tracing::warn!(%pathway, %error, "pathway failed; trying the next");
                    last_error = error.to_string();
                    ladders.remove(&pathway);
                    penalized.push(pathway.clone());
                }
            }
        };
        // The simulator's buffer arithmetic, with the measured delay.
        let delay_ms = fetched.delay_ms;
        let step = buffer.add_chunk(delay_ms, chunk_ms);
        if step.sleep_ms > 0.0 {
            if let Some(link) = &mut downloader.link {
                link.idle(step.sleep_ms);
            }
            clock.sleep_ms(step.sleep_ms).await;
        }
        records.push(ChunkRecord {
            chunk_idx,
            level_idx: level,
            size_bytes: fetched.size,
            delay_ms,
            rebuffer_ms: step.rebuffer_ms,
            sleep_ms: step.sleep_ms,
            buffer_ms: step.buffer_ms,
        });
        played_kbps.push(kbps);
        on_chunk(&format!(
            "chunk {chunk_idx:>3}  level {level} ({kbps} kbit/s from {})  {:>8} B in {:>7.0} ms  buffer {:>5.1} s{}",
            fetched.host,
            fetched.size,
            delay_ms,
            step.buffer_ms / 1000.0,
            if step.rebuffer_ms > 0.0 && chunk_idx > 0 {
                format!("  STALL {:.2} s", step.rebuffer_ms / 1000.0)
            } else {
                String::new()
            }
        ));
        hosts.push(fetched.host);
    }

    let n_played = records.len();
    let setup = Setup::new(
        video.clone(),
        SimConfig {
            n_chunks: n_played,
            ..config
        },
        QoeMetric::Linear,
    )?;
    let session = Session {
        records: records.clone(),
    };
    let score = session.score(&setup);
    let simulated = match &trace {
        Some(trace) => {
            let mut fresh = algorithm(&options.algorithm)?;
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
    let json = json!({
        "url": options.url,
        "algorithm": abr.name(),
        "codec": codec,
        "speed": options.speed,
        "chunks": n_played,
        "ended_early": ended_early,
        "chunk_seconds": chunk_duration.as_secs_f64(),
        "ladder_kbps": video.ladder().iter().map(|rate| rate.kbps()).collect::<Vec<_>>(),
        "startup_ms": records[0].delay_ms,
        "rebuffer_seconds": score.rebuffer.as_secs_f64(),
        "stalls": records.iter().skip(1).filter(|record| record.rebuffer_ms > 0.0).count(),
        "switches": score.n_switches,
        "mean_bitrate_kbps": score.mean_bitrate_kbps,
        "qoe_lin": score.qoe,
        "levels": session.levels(),
        "played_kbps": played_kbps,
        "hosts": hosts,
        "delays_ms": records.iter().map(|record| record.delay_ms.round()).collect::<Vec<_>>(),
        "simulated": simulated,
    });
    let mut summary = format!(
        "{}: startup {:.0} ms, rebuffering {:.2} s, {} switches, mean {:.0} kbit/s, QoE_lin {:.2}",
        abr.name(),
        records[0].delay_ms,
        score.rebuffer.as_secs_f64(),
        score.n_switches,
        score.mean_bitrate_kbps,
        score.qoe
    );
    if let Some(simulated) = json["simulated"].as_object() {
        summary.push_str(&format!(
            "\nsimulator on the same trace and sizes: QoE_lin {:.2}",
            simulated["qoe_lin"].as_f64().unwrap_or_default()
        ));
    }
    Ok(Report { json, summary })
}
