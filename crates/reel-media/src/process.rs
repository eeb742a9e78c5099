//! Runs ffprobe and ffmpeg as child processes with a time limit.
//!
//! Both pipes are drained while the child runs, so a chatty child cannot
//! block on a full pipe; only the last bytes of stderr are kept, so a long
//! encode cannot grow memory without bound; the child is killed when the
//! future is dropped or the limit passes.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::MediaError;

/// How many lines of a failed process's stderr go into its error.
const STDERR_TAIL_LINES: usize = 40;

/// How many bytes of stderr are kept while the process runs.
const STDERR_KEPT_BYTES: usize = 64 * 1024;

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
        .kill_on_drop(true);
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
                    stderr.extend_from_slice(&buffer[..n_read]);
                    if stderr.len() > 2 * STDERR_KEPT_BYTES {
                        let excess = stderr.len() - STDERR_KEPT_BYTES;
                        stderr.drain(..excess);
                    }
                }
            }
        };
        tokio::join!(read_stdout, read_stderr);
        let status = child.wait().await;
        (status, stderr)
    };
    let (status, stderr) =
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
    async fn a_process_over_its_limit_is_killed() {
        let mut command = Command::new("sleep");
        command.arg("10");
        let error = run_collect("sleep", command, Duration::from_millis(100))
            .await
            .expect_err("times out");
        assert!(matches!(error, MediaError::TimedOut { .. }), "{error}");
    }
}
