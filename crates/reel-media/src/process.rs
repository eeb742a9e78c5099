//! Runs ffprobe and ffmpeg as child processes with a time limit.
//!
//! Both pipes are drained while the child runs, so a chatty child cannot
//! block on a full pipe; only the last bytes of stderr are kept, so a long
//! encode cannot grow memory without bound; the child is killed when the
//! future is dropped or the limit passes.
//!
//! Every child also runs under the process-wide [`ChildLimits`]: decoders
//! refuse frames over `max_pixels` (`-max_pixels`, so a stream that switches
//! to a huge size mid-way cannot make the decoder allocate for it, and the
//! run fails as unprocessable), and the child's address space is capped
//! (`RLIMIT_AS`), so no input can make one child exhaust the host's memory.

use std::process::Stdio;
use std::sync::RwLock;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::MediaError;

/// How many lines of a failed process's stderr go into its error.
const STDERR_TAIL_LINES: usize = 40;

/// How many bytes of stderr are kept while the process runs.
const STDERR_KEPT_BYTES: usize = 64 * 1024;

/// What libavutil prints when a decoder refuses a frame over `-max_pixels`.
const PIXEL_LIMIT_MESSAGE: &[u8] = b"exceeds specified max pixel count";

/// Limits every ffmpeg and ffprobe child runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildLimits {
    /// The most pixels of one decoded frame (`-max_pixels`): the widest
    /// times the tallest accepted video.
    pub max_pixels: u64,
    /// The most address space of one child, in bytes (`RLIMIT_AS`).
    pub memory_bytes: u64,
}

impl ChildLimits {
    /// 8192x8192 frames and 2 GiB per child.
    pub const fn standard() -> ChildLimits {
        ChildLimits {
            max_pixels: 8192 * 8192,
            memory_bytes: 2 << 30,
        }
    }
}

static CHILD_LIMITS: RwLock<ChildLimits> = RwLock::new(ChildLimits::standard());

/// Sets the limits of every child started from now on; the binary calls it
/// once at start-up from its configuration.
pub fn set_child_limits(limits: ChildLimits) {
    *CHILD_LIMITS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = limits;
}

/// The limits children run under.
pub fn child_limits() -> ChildLimits {
    *CHILD_LIMITS
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `args` of an ffmpeg run with `-max_pixels N` before every `-i` (it is an
/// input option).
pub(crate) fn with_max_pixels(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let max_pixels = std::ffi::OsString::from(
        child_limits()
            .max_pixels
            .min(i32::MAX.unsigned_abs().into())
            .to_string(),
    );
    let mut out = Vec::with_capacity(args.len() + 4);
    for arg in args {
        if arg == "-i" {
            out.push("-max_pixels".into());
            out.push(max_pixels.clone());
        }
        out.push(arg);
    }
    out
}

/// Runs `command` and returns everything it printed on stdout.
pub(crate) async fn run_collect(
    program: &str,
    command: Command,
    limit: Duration,
) -> Result<Vec<u8>, MediaError> {
    let mut stdout = Vec::new();
    run_with_stdout(program, command, limit, |bytes| {
        stdout.extend_from_slice(bytes)
    })
    .await?;
    Ok(stdout)
}

/// Runs `command` and calls `on_line` with every line it prints on stdout,
/// as soon as the line is complete.
pub(crate) async fn run_lines(
    program: &str,
    command: Command,
    limit: Duration,
    mut on_line: impl FnMut(&str) + Send,
) -> Result<(), MediaError> {
    let mut pending = Vec::new();
    run_with_stdout(program, command, limit, |bytes| {
        pending.extend_from_slice(bytes);
        while let Some(newline_idx) = pending.iter().position(|byte| *byte == b'\n') {
            let line: Vec<u8> = pending.drain(..=newline_idx).collect();
            on_line(String::from_utf8_lossy(&line).trim_end());
        }
    })
    .await?;
    if !pending.is_empty() {
        on_line(String::from_utf8_lossy(&pending).trim_end());
    }
    Ok(())
}

async fn run_with_stdout(
    program: &str,
    mut command: Command,
    limit: Duration,
    mut on_stdout: impl FnMut(&[u8]) + Send,
) -> Result<(), MediaError> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Fewer malloc arenas: each reserves 64 MiB of address space, which
        // counts against RLIMIT_AS without being used.
        .env("MALLOC_ARENA_MAX", "2");
    let memory_bytes = child_limits().memory_bytes;
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls setrlimit(2), which is async-signal-safe; it allocates nothing
    // and takes no lock.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: memory_bytes as libc::rlim_t,
                rlim_max: memory_bytes as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let command_line = command_line(&command);
    tracing::debug!(program, command = %command_line, "starting");
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
    let drain = async {
        let mut stderr = Vec::new();
        let mut over_pixel_limit = false;
        let read_stdout = async {
            if let Some(pipe) = stdout_pipe.as_mut() {
                let mut buffer = vec![0u8; 16 * 1024];
                while let Ok(n_read) = pipe.read(&mut buffer).await {
                    if n_read == 0 {
                        break;
                    }
                    on_stdout(&buffer[..n_read]);
                }
            }
        };
        let read_stderr = async {
            if let Some(pipe) = stderr_pipe.as_mut() {
                let mut buffer = vec![0u8; 8 * 1024];
                while let Ok(n_read) = pipe.read(&mut buffer).await {
                    if n_read == 0 {
                        break;
                    }
                    let scan_from = stderr.len().saturating_sub(PIXEL_LIMIT_MESSAGE.len());
                    stderr.extend_from_slice(&buffer[..n_read]);
                    over_pixel_limit = over_pixel_limit
                        || stderr[scan_from..]
                            .windows(PIXEL_LIMIT_MESSAGE.len())
                            .any(|window| window == PIXEL_LIMIT_MESSAGE);
                    if stderr.len() > 2 * STDERR_KEPT_BYTES {
                        let excess = stderr.len() - STDERR_KEPT_BYTES;
                        stderr.drain(..excess);
                    }
                }
            }
        };
        tokio::join!(read_stdout, read_stderr);
        let status = child.wait().await;
        (status, stderr, over_pixel_limit)
    };
    let (status, stderr, over_pixel_limit) =
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
    if over_pixel_limit {
        // The decoder dropped those frames and may even have exited 0: the
        // output would silently miss them, so the input is refused.
        return Err(MediaError::unprocessable(format!(
            "the video has frames over the limit of {} pixels (limits.max_width × limits.max_height): its picture size changes mid-stream to one too large",
            child_limits().max_pixels
        )));
    }
    if !status.success() {
        return Err(MediaError::Failed {
            program: program.to_string(),
            status: status.to_string(),
            stderr_tail: stderr_tail(&stderr),
            command_line,
        });
    }
    Ok(())
}

/// The command as a shell-like line, for logs and errors.
fn command_line(command: &Command) -> String {
    let std_command = command.as_std();
    let mut parts = vec![std_command.get_program().to_string_lossy().into_owned()];
    for arg in std_command.get_args() {
        let text = arg.to_string_lossy();
        if text.is_empty() || text.contains([' ', '\'', '"', ';', '[', ']', '(', ')']) {
            parts.push(format!("'{}'", text.replace('\'', "'\\''")));
        } else {
            parts.push(text.into_owned());
        }
    }
    parts.join(" ")
}

pub(crate) fn stderr_tail(stderr: &[u8]) -> String {
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

    #[test]
    fn command_line_quotes_arguments_with_spaces() {
        let mut command = Command::new("ffmpeg");
        command.args(["-vf", "fps=25,scale=1:2[a]", "x y.mp4"]);
        assert_eq!(
            command_line(&command),
            "ffmpeg -vf 'fps=25,scale=1:2[a]' 'x y.mp4'"
        );
    }

    #[tokio::test]
    async fn lines_arrive_split_and_the_last_without_newline() {
        let mut command = Command::new("printf");
        command.arg("a=1\nb=2\nc=3");
        let mut lines = Vec::new();
        run_lines("printf", command, Duration::from_secs(5), |line| {
            lines.push(line.to_string())
        })
        .await
        .expect("printf runs");
        assert_eq!(lines, ["a=1", "b=2", "c=3"]);
    }

    #[tokio::test]
    async fn children_run_under_the_memory_limit() {
        let mut command = Command::new("sh");
        command.args(["-c", "ulimit -v"]);
        let stdout = run_collect("sh", command, Duration::from_secs(5))
            .await
            .expect("sh runs");
        let kib: u64 = String::from_utf8_lossy(&stdout)
            .trim()
            .parse()
            .expect("ulimit -v prints KiB");
        assert_eq!(kib * 1024, child_limits().memory_bytes);
    }

    #[test]
    fn every_ffmpeg_input_gets_the_pixel_limit() {
        let args = ["-ss", "4", "-i", "a.mp4", "-i", "b.wav", "out.mp4"]
            .map(std::ffi::OsString::from)
            .to_vec();
        let limited: Vec<String> = with_max_pixels(args)
            .into_iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let max_pixels = child_limits().max_pixels.to_string();
        assert_eq!(
            limited,
            [
                "-ss",
                "4",
                "-max_pixels",
                &max_pixels,
                "-i",
                "a.mp4",
                "-max_pixels",
                &max_pixels,
                "-i",
                "b.wav",
                "out.mp4"
            ]
        );
    }

    #[tokio::test]
    async fn a_process_over_its_limit_is_killed() {
        let mut command = Command::new("sleep");
        command.arg("10");
        let error = run_collect("sleep", command, Duration::from_millis(100))
            .await
            .expect_err("times out");
        assert!(matches!(error, MediaError::TimedOut { .. }), "{error}");
    }
}
