//! Test media made per run with ffmpeg's lavfi sources.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `ffmpeg -hide_banner -nostdin -v error -y ARGS OUTPUT`; panics with
/// ffmpeg's own message when it fails.
pub fn ffmpeg<I, S>(args: I, output: &Path)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let result = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(args)
        .arg(output)
        .output()
        .unwrap_or_else(|error| {
            panic!("running ffmpeg ({error}): install it with apt-get install ffmpeg (make deps)")
        });
    assert!(
        result.status.success(),
        "ffmpeg failed to make {}: {}",
        output.display(),
        String::from_utf8_lossy(&result.stderr)
    );
}

/// A test video: ffmpeg's `testsrc2` picture, optionally a 440 Hz `sine`
/// tone, encoded with libx264 `ultrafast` (and AAC), to any container the
/// output's extension names.
#[derive(Clone, Debug)]
pub struct Lavfi {
    size: String,
    rate: String,
    seconds: String,
    audio_rate: Option<u32>,
    extra: Vec<String>,
}

impl Lavfi {
    /// `seconds` of `size` (e.g. `320x180`) at `rate` frames per second
    /// (e.g. `25` or `30000/1001`), with no sound yet.
    pub fn video(size: &str, rate: &str, seconds: impl ToString) -> Self {
        Self {
            size: size.to_string(),
            rate: rate.to_string(),
            seconds: seconds.to_string(),
            audio_rate: None,
            extra: Vec::new(),
        }
    }

    /// Adds a sine tone at `sample_rate` Hz (the file ends with the shorter
    /// stream, the picture).
    pub fn with_audio(mut self, sample_rate: u32) -> Self {
        self.audio_rate = Some(sample_rate);
        self
    }

    /// More output options, before the output (e.g. `-g 25 -f mpegts`).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: ToString,
    {
        self.extra
            .extend(args.into_iter().map(|arg| arg.to_string()));
        self
    }

    /// The ffmpeg arguments before the output path.
    pub fn to_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("testsrc2=size={}:rate={}", self.size, self.rate),
        ];
        if let Some(sample_rate) = self.audio_rate {
            args.extend([
                "-f".into(),
                "lavfi".into(),
                "-i".into(),
                format!("sine=frequency=440:sample_rate={sample_rate}"),
            ]);
        }
        args.extend(["-t".into(), self.seconds.clone()]);
        args.extend(["-c:v", "libx264", "-preset", "ultrafast"].map(String::from));
        if self.audio_rate.is_some() {
            args.extend(["-c:a", "aac", "-shortest"].map(String::from));
        }
        args.extend(self.extra.iter().cloned());
        args
    }

    /// Writes the video to `path` and returns it.
    pub fn write(&self, path: impl Into<PathBuf>) -> PathBuf {
        let path = path.into();
        ffmpeg(self.to_args(), &path);
        path
    }
}

#[cfg(test)]
mod tests {
    use super::Lavfi;

    #[test]
    fn audio_adds_the_tone_and_ends_with_the_picture() {
        let args = Lavfi::video("320x180", "25", 3).with_audio(48000).to_args();
        assert!(args.contains(&"sine=frequency=440:sample_rate=48000".to_string()));
        assert!(args.contains(&"-shortest".to_string()));
        let silent = Lavfi::video("320x180", "25", 3)
            .args(["-g", "25"])
            .to_args();
        assert!(!silent.iter().any(|arg| arg.starts_with("sine")));
        assert_eq!(&silent[silent.len() - 2..], ["-g", "25"]);
    }
}
