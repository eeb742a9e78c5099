//! Helpers that start the real `reel` binary on loopback with a temp data dir.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use reel_testkit::process::Process;

use serde_json::Value;

pub const REEL: &str = env!("CARGO_BIN_EXE_reel");

/// A database and object store shared by the processes of one test.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub database: String,
    pub storage: String,
}

impl Env {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = format!("sqlite://{}", dir.path().join("reel.db").display());
        let storage = format!("file://{}", dir.path().join("objects").display());
        Self {
            dir,
            database,
            storage,
        }
    }

    pub async fn postgres() -> Self {
        let database = reel_testkit::postgres::fresh_database().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = format!("file://{}", dir.path().join("objects").display());
        Self {
            dir,
            database,
            storage,
        }
    }

    pub fn objects_dir(&self) -> PathBuf {
        self.dir.path().join("objects")
    }

    /// Runs a `reel` command to completion and returns its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let output = self.command(args).output().expect("run reel");
        assert!(
            output.status.success(),
            "reel {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(REEL);
        command
            .args(args)
            .args([
                "--database",
                &self.database,
                "--storage",
                &self.storage,
                "--data-dir",
            ])
            .arg(self.dir.path())
            .env("REEL_LOG", "info,sqlx=warn")
            .env("REEL_WORKER_LEASE", "2s")
            .env("REEL_WORKER_HEARTBEAT", "300ms")
            .env("REEL_WORKER_POLL", "200ms")
            .env("REEL_WORKER_RETRY_BASE", "50ms");
        command
    }

    /// `reel ingest FILE --wait --json` against `url` with `key`: the video
    /// as it prints it; panics with both outputs when it prints no JSON.
    pub fn ingest(&self, url: &str, key: &str, file: &Path) -> Value {
        let output = self
            .command(&["ingest", "--wait", "--json", "--server", url])
            .arg(file)
            .env("REEL_API_KEY", key)
            .output()
            .expect("run reel ingest");
        let stdout = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(&stdout).unwrap_or_else(|error| {
            panic!(
                "reel ingest printed no JSON ({error}): stdout {stdout} stderr {}",
                String::from_utf8_lossy(&output.stderr),
            )
        })
    }

    /// An admin key with a name of its own (names are unique).
    pub fn create_key(&self) -> String {
        let name = format!("test-{}", reel_core::JobId::new_random());
        let out = self.run(&[
            "keys", "create", "--name", &name, "--role", "admin", "--json",
        ]);
        let value: Value =
            serde_json::from_str(out.trim()).expect("keys create --json prints JSON");
        value["key"].as_str().expect("key").to_string()
    }

    /// Starts a process and collects its stdout and stderr lines.
    pub fn spawn(&self, args: &[&str]) -> Process {
        self.spawn_with(args, &[])
    }

    /// Starts a process with extra environment variables.
    pub fn spawn_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Process {
        let mut command = self.command(args);
        command.envs(envs.iter().copied());
        Process::spawn(command)
    }

    /// Starts `reel serve` on a free port and waits until it listens.
    pub fn serve(&self, workers: usize) -> (Process, String) {
        self.serve_with(workers, &[])
    }

    /// Starts `reel serve` with extra environment variables.
    pub fn serve_with(&self, workers: usize, envs: &[(&str, &str)]) -> (Process, String) {
        let process = self.spawn_with(
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--workers",
                &workers.to_string(),
            ],
            envs,
        );
        let url = process.listening_url();
        (process, url)
    }
}

pub struct Api {
    pub url: String,
    pub key: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(url: String, key: String) -> Self {
        Self {
            url,
            key,
            client: reqwest::Client::new(),
        }
    }

    pub async fn selftest(&self, spec: Value) -> Value {
        let response = self
            .client
            .post(format!("{}/v1/jobs/selftest", self.url))
            .bearer_auth(&self.key)
            .json(&spec)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        response.json().await.expect("job json")
    }

    pub async fn job(&self, id: &str) -> Value {
        self.client
            .get(format!("{}/v1/jobs/{id}", self.url))
            .send()
            .await
            .expect("get job")
            .json()
            .await
            .expect("job json")
    }

    pub async fn wait_until(
        &self,
        id: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let job = self.job(id).await;
            if done(&job) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job never reached the condition: {job:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_for_end(&self, id: &str, limit: Duration) -> Value {
        self.wait_until(id, limit, |job| {
            ["succeeded", "failed", "cancelled"].contains(&job["state"].as_str().unwrap_or(""))
        })
        .await
    }
}

/// Files below `dir`, relative paths, sorted.
pub fn list_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if let Ok(relative) = path.strip_prefix(base) {
                out.push(relative.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A short test video generated with ffmpeg's lavfi sources.
pub fn generated_video(dir: &Path) -> PathBuf {
    reel_testkit::media::Lavfi::video("320x180", "25", 3)
        .with_audio(44100)
        .write(dir.join("source.mp4"))
}

/// `tests/clients/`: the third-party clients the tests drive.
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients")
}

/// Runs `tests/clients/SCRIPT ARGS…` with the clients' Python venv; the
/// output is returned whatever the exit status.
pub fn client_python<I, S>(script: &str, args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let python = clients_dir().join(".venv/bin/python");
    Command::new(&python)
        .arg(clients_dir().join(script))
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "{}: {error}; run scripts/install-test-clients.sh (make test does)",
                python.display()
            )
        })
}

/// One caption cue of a generated subtitle, in milliseconds.
#[derive(Clone, Debug)]
pub struct GeneratedCue {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

/// A Matroska video with English and French audio (two tones) and an
/// English SubRip track whose cues start every 1.2 s from 1 s on and last
/// 0.8 s (`Cue 1`, `Cue 2`, …): the cues, to compare with what players show.
pub fn tracks_video(dir: &Path, size: &str, seconds: u32) -> (PathBuf, Vec<GeneratedCue>) {
    let cues: Vec<GeneratedCue> = (0..)
        .map(|cue_idx: u64| 1000 + cue_idx * 1200)
        .take_while(|start_ms| start_ms + 800 <= u64::from(seconds) * 1000)
        .enumerate()
        .map(|(cue_idx, start_ms)| GeneratedCue {
            start_ms,
            end_ms: start_ms + 800,
            text: format!("Cue {}", cue_idx + 1),
        })
        .collect();
    let srt = dir.join("tracks-en.srt");
    std::fs::write(&srt, subrip(&cues)).expect("write the SubRip file");
    let path = dir.join("tracks.mkv");
    let srt = srt.display().to_string();
    let seconds = seconds.to_string();
    let args = [
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size={size}:rate=25"),
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=300:sample_rate=48000",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=600:sample_rate=48000",
        "-i",
        &srt,
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:a",
        "-map",
        "3:s",
        "-t",
        &seconds,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-c:s",
        "srt",
        "-metadata:s:a:0",
        "language=eng",
        "-metadata:s:a:0",
        "title=English",
        "-metadata:s:a:1",
        "language=fre",
        "-metadata:s:a:1",
        "title=Français",
        "-metadata:s:s:0",
        "language=eng",
        "-metadata:s:s:0",
        "title=English",
    ];
    reel_testkit::media::ffmpeg(args, &path);
    (path, cues)
}

/// `cues` as a SubRip file.
pub fn subrip(cues: &[GeneratedCue]) -> String {
    let time = |ms: u64| {
        format!(
            "{:02}:{:02}:{:02},{:03}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        )
    };
    cues.iter()
        .enumerate()
        .map(|(cue_idx, cue)| {
            format!(
                "{}\n{} --> {}\n{}\n\n",
                cue_idx + 1,
                time(cue.start_ms),
                time(cue.end_ms),
                cue.text
            )
        })
        .collect()
}

/// Runs the node script `tests/clients/SCRIPT ARGS…` (a browser client) and
/// returns the ONE JSON object it prints; it must exit 0.
pub fn run_client(script: &str, args: &[&str]) -> Value {
    let output = Command::new("node")
        .arg(clients_dir().join(script))
        .args(args)
        .output()
        .expect("node: run scripts/install-test-clients.sh (make test does)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|error| {
        panic!(
            "{script} printed no JSON ({error}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(
        output.status.success(),
        "{script} failed: {report:#}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    report
}

/// The counter `name` of the edge at `edge`'s `/metrics`, read with `client`.
pub async fn edge_metric(client: &reqwest::Client, edge: &str, name: &str) -> u64 {
    let metrics = client
        .get(format!("{edge}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    metrics
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.split_whitespace().last())
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {name}: {metrics}")) as u64
}

/// `reel_edge_upstream_requests_total` of the edge at `edge`.
pub async fn upstream_requests(client: &reqwest::Client, edge: &str) -> u64 {
    edge_metric(client, edge, "reel_edge_upstream_requests_total").await
}

/// Plays `url` with `tests/clients/SCRIPT` (play-hls.mjs or play-shaka.mjs)
/// in chromium at rate 8, with `extra_args` after the URL: whether it
/// exited 0, and its JSON report.
pub async fn play_in_chromium(
    script: &'static str,
    url: String,
    extra_args: Vec<String>,
) -> (bool, Value) {
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(clients_dir().join(script))
            .arg(&url)
            .args(["--timeout", "60", "--rate", "8", "--stall-timeout", "20"])
            .args(&extra_args)
            .output()
            .expect("node: run scripts/install-test-clients.sh (make test does)")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!(
            "{script} printed no JSON ({error}): {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), report)
}

/// The errors of a player's report that failed the play.
pub fn fatal_errors(report: &Value) -> Vec<&Value> {
    report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter(|error| error["fatal"] == true)
        .collect()
}
