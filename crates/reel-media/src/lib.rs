//! Drives ffprobe (and later ffmpeg) as child processes.
//!
//! Every run opens only local files (`-protocol_whitelist file`), so a
//! playlist or concat list disguised as a video cannot make ffmpeg fetch its
//! references; every run has a time limit; stderr is drained while the
//! process runs and its tail becomes the error text; the child is killed when
//! the future is dropped.
#![deny(missing_docs)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// How many lines of a failed process's stderr go into its error.
const STDERR_TAIL_LINES: usize = 40;

/// Errors of running ffprobe or ffmpeg.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The program is not installed.
    #[error("{program} not found on PATH; install ffmpeg >= 5.1 (apt-get install ffmpeg)")]
    NotInstalled {
        /// ffprobe or ffmpeg.
        program: String,
    },
    /// The program could not be started.
    #[error("starting {program} failed: {source}")]
    Spawn {
        /// ffprobe or ffmpeg.
        program: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The program ran past its time limit and was killed.
    #[error("{program} ran longer than its limit of {limit:?} and was killed")]
    TimedOut {
        /// ffprobe or ffmpeg.
        program: String,
        /// The limit.
        limit: Duration,
    },
    /// The program exited with an error: the input is not what it claims.
    #[error("{program} failed ({status}): {stderr_tail}")]
    Failed {
        /// ffprobe or ffmpeg.
        program: String,
        /// The exit status.
        status: String,
        /// The last lines of its stderr.
        stderr_tail: String,
    },
    /// The program's output was not what it documents.
    #[error("{program} printed output reel cannot read: {detail}")]
    BadOutput {
        /// ffprobe or ffmpeg.
        program: String,
        /// What was wrong.
        detail: String,
    },
}

/// What ffprobe says about a file: its format and streams, as ffprobe's JSON.
#[derive(Clone, Debug)]
pub struct ProbeReport {
    /// ffprobe's `-show_format -show_streams` JSON.
    pub json: serde_json::Value,
}

impl ProbeReport {
    /// The container format name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub fn format_name(&self) -> &str {
        self.json["format"]["format_name"].as_str().unwrap_or("")
    }

    /// The duration in seconds, if known.
    pub fn duration_seconds(&self) -> Option<f64> {
        self.json["format"]["duration"]
            .as_str()
            .and_then(|text| text.parse().ok())
    }

    /// How many streams of `codec_type` (video, audio, …) the file has.
    pub fn count_streams(&self, codec_type: &str) -> usize {
        self.json["streams"]
            .as_array()
            .map(|streams| {
                streams
                    .iter()
                    .filter(|stream| stream["codec_type"] == codec_type)
                    .count()
            })
            .unwrap_or(0)
    }
}

/// Runs ffprobe on a local file with a time limit and returns its report.
pub async fn probe(path: &Path, limit: Duration) -> Result<ProbeReport, MediaError> {
    let mut command = Command::new("ffprobe");
    command
        .args([
            "-v",
            "error",
            "-protocol_whitelist",
            "file",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path);
    let stdout = run("ffprobe", command, limit).await?;
    let json: serde_json::Value =
        serde_json::from_slice(&stdout).map_err(|error| MediaError::BadOutput {
            program: "ffprobe".to_string(),
            detail: error.to_string(),
        })?;
    Ok(ProbeReport { json })
}

async fn run(program: &str, mut command: Command, limit: Duration) -> Result<Vec<u8>, MediaError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            MediaError::NotInstalled {
                program: program.to_string(),
            }
        } else {
            MediaError::Spawn {
                program: program.to_string(),
                source,
            }
        }
    })?;
    let mut stdout_pipe = child.stdout.take();
    let mut stderr_pipe = child.stderr.take();
    // Both pipes are drained while the process runs, so a chatty child
    // cannot block on a full pipe.
    let drain = async {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let read_stdout = async {
            if let Some(pipe) = stdout_pipe.as_mut() {
                let _ = pipe.read_to_end(&mut stdout).await;
            }
        };
        let read_stderr = async {
            if let Some(pipe) = stderr_pipe.as_mut() {
                let _ = pipe.read_to_end(&mut stderr).await;
            }
        };
        tokio::join!(read_stdout, read_stderr);
        let status = child.wait().await;
        (status, stdout, stderr)
    };
    let (status, stdout, stderr) =
        tokio::time::timeout(limit, drain)
            .await
            .map_err(|_| MediaError::TimedOut {
                program: program.to_string(),
                limit,
            })?;
    let status = status.map_err(|source| MediaError::Spawn {
        program: program.to_string(),
        source,
    })?;
    if !status.success() {
        return Err(MediaError::Failed {
            program: program.to_string(),
            status: status.to_string(),
            stderr_tail: stderr_tail(&stderr),
        });
    }
    Ok(stdout)
}

fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let start = lines.len().saturating_sub(STDERR_TAIL_LINES);
    let tail = lines[start..].join("; ");
    if tail.is_empty() {
        "no error output".to_string()
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        let text: String = (0..100).map(|idx| format!("line {idx}\n")).collect();
        let tail = stderr_tail(text.as_bytes());
        assert!(
            tail.starts_with("line 60;") && tail.ends_with("line 99"),
            "{tail}"
        );
        assert_eq!(stderr_tail(b""), "no error output");
    }

    #[tokio::test]
    async fn rejects_a_playlist_that_references_another_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let playlist = dir.path().join("video.mp4");
        std::fs::write(
            &playlist,
            "#EXTM3U\n#EXTINF:1,\nhttp://127.0.0.1:9/secret.ts\n#EXT-X-ENDLIST\n",
        )
        .expect("write");
        let error = probe(&playlist, Duration::from_secs(20))
            .await
            .expect_err("not media");
        assert!(matches!(error, MediaError::Failed { .. }), "{error}");
    }

    #[tokio::test]
    async fn rejects_text_that_is_not_media() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notes.mp4");
        std::fs::write(&path, "these are not the frames you are looking for").expect("write");
        let error = probe(&path, Duration::from_secs(20))
            .await
            .expect_err("not media");
        assert!(error.to_string().contains("ffprobe failed"), "{error}");
    }
}
