//! Drives ffprobe and ffmpeg as child processes.
//!
//! The crate has three layers:
//!
//! - [`inspect`] runs ffprobe on an upload and turns its report into a
//!   [`MediaInfo`], rejecting anything that is not a real media container or
//!   is over the [`MediaLimits`]. The older [`probe`] returns ffprobe's raw
//!   JSON as a [`ProbeReport`].
//! - [`plan::plan`] is pure: from a `MediaInfo` and [`plan::PlanSettings`] it decides
//!   the output frame rate, the frame grid (GOPs, segments, chunks), the
//!   rendition ladder and the audio track, as a [`plan::Plan`] that is stored
//!   as JSON next to the title.
//! - [`encode::video_chunk_args`], [`encode::audio_args`],
//!   [`encode::poster_args`] and [`encode::storyboard_args`] turn a plan into
//!   ffmpeg argument lists, and [`encode::run_ffmpeg`] runs one with a time
//!   limit and reports its progress.
//!
//! Every run opens only local files (`-protocol_whitelist file`) and only
//! real containers (`-format_whitelist`, see [`ALLOWED_DEMUXERS`]), so a
//! playlist or concat list disguised as a video cannot make ffmpeg fetch its
//! references; every run has a time limit; stderr is drained while the
//! process runs and its tail becomes the error text; the child is killed when
//! the future is dropped.
//!
//! **Time origin.** Every output of one title shares one t=0: the source
//! timestamp of the first video frame (the first audio sample for titles
//! without video), [`plan::Plan::origin_seconds`]. Inputs are read with `-copyts`
//! and the filter graphs subtract the origin, so audio that starts after the
//! video is padded with silence and audio that starts before it is trimmed.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

pub mod encode;
mod inspect;
pub mod language;
pub mod plan;
mod process;

pub use inspect::{
    inspect, AudioInfo, MediaInfo, MediaLimits, StreamCounts, SubtitleInfo, VideoInfo,
    ALLOWED_DEMUXERS,
};
pub use process::{child_limits, set_child_limits, ChildLimits};
pub use reel_core::redact_paths;

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
    /// The program exited with an error.
    #[error("{program} failed ({status}): {stderr_tail}; command: {command_line}")]
    Failed {
        /// ffprobe or ffmpeg.
        program: String,
        /// The exit status.
        status: String,
        /// The last lines of its stderr.
        stderr_tail: String,
        /// The program and its arguments, quoted like a shell line.
        command_line: String,
    },
    /// The program's output was not what it documents.
    #[error("{program} printed output reel cannot read: {detail}")]
    BadOutput {
        /// ffprobe or ffmpeg.
        program: String,
        /// What was wrong.
        detail: String,
    },
    /// A local file could not be read.
    #[error("reading {path:?} failed: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The input can never be processed: it is not media, not a supported
    /// container, has no usable stream, or is over a limit.
    #[error("{reason}")]
    Unprocessable {
        /// What is wrong with the input, for the uploader.
        reason: String,
    },
}

impl MediaError {
    /// True when retrying with the same input cannot succeed, so the job
    /// should fail for good instead of being retried.
    pub fn is_permanent(&self) -> bool {
        matches!(self, MediaError::Unprocessable { .. })
    }

    /// The error as an uploader may read it: no command line and no paths
    /// of the server (`Display` keeps them, for the operator's log).
    pub fn user_message(&self) -> String {
        match self {
            MediaError::Failed {
                program,
                status,
                stderr_tail,
                ..
            } => format!("{program} failed ({status}): {}", redact_paths(stderr_tail)),
            MediaError::Io { source, .. } => format!("reading a working file failed: {source}"),
            other => redact_paths(&other.to_string()),
        }
    }

    pub(crate) fn unprocessable(reason: impl Into<String>) -> MediaError {
        MediaError::Unprocessable {
            reason: reason.into(),
        }
    }
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
///
/// Only demuxers in [`ALLOWED_DEMUXERS`] may open the file; anything else
/// (playlists, concat lists, image sequences, text) fails with
/// [`MediaError::Failed`]. [`inspect`] is the stricter, typed variant.
pub async fn probe(path: &Path, limit: Duration) -> Result<ProbeReport, MediaError> {
    let json = inspect::ffprobe_json(path, limit).await?;
    Ok(ProbeReport { json })
}

pub(crate) fn ffprobe_command() -> Command {
    let mut command = Command::new("ffprobe");
    let max_pixels = process::child_limits()
        .max_pixels
        .min(i32::MAX.unsigned_abs().into());
    command.args(["-max_pixels", &max_pixels.to_string()]);
    command.args([
        "-v",
        "error",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        ALLOWED_DEMUXERS,
        "-print_format",
        "json",
    ]);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_messages_leave_out_the_command_line_and_paths() {
        let failed = MediaError::Failed {
            program: "ffprobe".into(),
            status: "exit status: 1".into(),
            stderr_tail:
                "/srv/reel/scratch/task-7-1/source: Invalid data found when processing input".into(),
            command_line: "ffprobe -i /srv/reel/scratch/task-7-1/source".into(),
        };
        let message = failed.user_message();
        assert_eq!(
            message,
            "ffprobe failed (exit status: 1): <file>: Invalid data found when processing input"
        );
        assert!(
            failed.to_string().contains("/srv/reel/scratch"),
            "the log keeps the detail"
        );
        let io = MediaError::Io {
            path: "/srv/reel/scratch/x".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
        };
        assert_eq!(io.user_message(), "reading a working file failed: gone");
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
