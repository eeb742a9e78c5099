//! A child process whose stdout and stderr lines are collected as they
//! come, so a test waits for what it prints (`listening on …`) instead of
//! sleeping; killed when dropped.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running child with its output lines.
pub struct Process {
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `command` with piped output; panics with the error when it
    /// cannot start.
    pub fn spawn(mut command: Command) -> Process {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {:?}: {error}", command.get_program()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let pipes: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ];
        for pipe in pipes.into_iter().flatten() {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        Process { child, lines }
    }

    /// The `http://…` or `https://…` URL the process said it listens on (a
    /// line `listening on http://…`, waited for up to 30 s).
    pub fn listening_url(&self) -> String {
        let line = self.wait_for_line("listening on http", Duration::from_secs(30));
        line.split("listening on ")
            .nth(1)
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// The first line containing `needle`, waited for up to `limit`; panics
    /// with everything printed so far when none comes.
    pub fn wait_for_line(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find(|line| line.contains(needle))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {needle:?} in: {:#?}",
                self.lines.lock().unwrap_or_else(|e| e.into_inner())
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything printed so far, one line each.
    pub fn output(&self) -> String {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill(2) with a pid we own has no memory-safety preconditions.
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "kill({pid}, {signal})");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_a_line_on_either_stream() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo one; echo 'listening on http://127.0.0.1:9' >&2"]);
        let process = Process::spawn(command);
        assert_eq!(process.listening_url(), "http://127.0.0.1:9");
        assert!(
            process.output().contains("one")
                || process.wait_for_line("one", Duration::from_secs(5)) == "one"
        );
    }
}
