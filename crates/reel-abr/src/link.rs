//! The link and buffer model of Pensieve's `fixed_env.py`, shared by the simulator
//! ([`crate::sim`]) and by a real player that shapes its downloads to a trace
//! (`reel-player`), so both count time the same way.
//!
//! * [`TraceLink`]: a pointer into the trace and the trace time; it advances only with
//!   transfers ([`TraceLink::transfer`]) and idle time ([`TraceLink::idle`]).
//! * [`PlayerBuffer`]: the playout buffer after each download: stall, drain to the cap in
//!   whole steps.

use std::time::Duration;

use crate::trace::Trace;

/// A position on a network trace, advanced by transfers and idle time only.
#[derive(Debug, Clone, Copy)]
pub struct TraceLink<'a> {
    trace: &'a Trace,
    ptr: usize,
    last_time: f64,
}

impl<'a> TraceLink<'a> {
    /// Starts at the trace's first sample.
    pub fn start(trace: &'a Trace) -> TraceLink<'a> {
        TraceLink {
            trace,
            ptr: 1,
            last_time: trace.times()[0],
        }
    }

    /// Seconds of trace time to deliver `bytes` when `payload_fraction` of the throughput
    /// carries payload (no RTT); advances the link past the transfer.
    pub fn transfer(&mut self, bytes: f64, payload_fraction: f64) -> f64 {
        let (times, mbps) = (self.trace.times(), self.trace.mbps());
        let mut delay = 0.0;
        let mut sent = 0.0;
        loop {
            let throughput = mbps[self.ptr] * 1_000_000.0 / 8.0;
            let duration = times[self.ptr] - self.last_time;
            let payload = throughput * duration * payload_fraction;
            if sent + payload > bytes {
                let fractional = (bytes - sent) / throughput / payload_fraction;
                self.last_time += fractional;
                return delay + fractional;
            }
            sent += payload;
            delay += duration;
            self.last_time = times[self.ptr];
            self.advance_ptr();
        }
    }

    /// Lets `ms` of trace time pass without a transfer (a drain sleep).
    pub fn idle(&mut self, ms: f64) {
        let times = self.trace.times();
        let mut remaining_ms = ms;
        loop {
            let duration = times[self.ptr] - self.last_time;
            if duration > remaining_ms / 1000.0 {
                self.last_time += remaining_ms / 1000.0;
                return;
            }
            remaining_ms -= duration * 1000.0;
            self.last_time = times[self.ptr];
            self.advance_ptr();
        }
    }

    /// The position as (sample pointer, trace time in seconds).
    pub fn position(&self) -> (usize, f64) {
        (self.ptr, self.last_time)
    }

    fn advance_ptr(&mut self) {
        self.ptr += 1;
        if self.ptr >= self.trace.len() {
            self.ptr = 1;
            self.last_time = 0.0;
        }
    }
}

/// What one download did to the buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BufferStep {
    /// Stall while downloading (the delay beyond the buffer).
    pub rebuffer_ms: f64,
    /// Sleep to drain the buffer down to the cap (whole drain steps).
    pub sleep_ms: f64,
    /// The buffer after the chunk was added and the sleep taken.
    pub buffer_ms: f64,
}

/// The playout buffer of `fixed_env.py`, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayerBuffer {
    buffer_ms: f64,
    cap_ms: f64,
    drain_step_ms: f64,
}

impl PlayerBuffer {
    /// An empty buffer with a cap and a drain step.
    pub fn new(cap: Duration, drain_step: Duration) -> PlayerBuffer {
        PlayerBuffer {
            buffer_ms: 0.0,
            cap_ms: cap.as_secs_f64() * 1000.0,
            drain_step_ms: drain_step.as_secs_f64() * 1000.0,
        }
    }

    /// The buffer level.
    pub fn level_ms(&self) -> f64 {
        self.buffer_ms
    }

    /// A chunk of `chunk_ms` arrived after `delay_ms`: the buffer drains while downloading
    /// (stalling when it runs dry), gains the chunk, and above the cap the player sleeps in
    /// whole drain steps. The caller lets `sleep_ms` pass on its link and clock.
    pub fn add_chunk(&mut self, delay_ms: f64, chunk_ms: f64) -> BufferStep {
        let rebuffer_ms = (delay_ms - self.buffer_ms).max(0.0);
        self.buffer_ms = (self.buffer_ms - delay_ms).max(0.0);
        self.buffer_ms += chunk_ms;
        let mut sleep_ms = 0.0;
        if self.buffer_ms > self.cap_ms {
            sleep_ms =
                ((self.buffer_ms - self.cap_ms) / self.drain_step_ms).ceil() * self.drain_step_ms;
            self.buffer_ms -= sleep_ms;
        }
        BufferStep {
            rebuffer_ms,
            sleep_ms,
            buffer_ms: self.buffer_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_and_idle_time_advance_the_trace() {
        // 1 Mbit/s for 10 s: 1 s delivers 0.95 × 125,000 bytes.
        let trace = Trace::new(vec![0.0, 10.0, 20.0], vec![1.0, 1.0, 1.0]).expect("trace");
        let mut link = TraceLink::start(&trace);
        let seconds = link.transfer(118_750.0, 0.95);
        assert!((seconds - 1.0).abs() < 1e-9, "{seconds}");
        link.idle(2_000.0);
        assert!((link.position().1 - 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_buffer_stalls_and_drains_in_steps() {
        let mut buffer = PlayerBuffer::new(Duration::from_secs(10), Duration::from_millis(500));
        let first = buffer.add_chunk(1_000.0, 4_000.0);
        assert_eq!(
            (first.rebuffer_ms, first.sleep_ms, first.buffer_ms),
            (1_000.0, 0.0, 4_000.0)
        );
        buffer.add_chunk(0.0, 4_000.0);
        let capped = buffer.add_chunk(100.0, 4_000.0);
        // 8000 - 100 + 4000 = 11900 > 10000: sleep 4 steps.
        assert_eq!(capped.sleep_ms, 2_000.0);
        assert_eq!(capped.buffer_ms, 9_900.0);
        assert_eq!(buffer.level_ms(), 9_900.0);
    }
}
