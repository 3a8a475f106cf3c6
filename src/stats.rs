//! Statistics: lock-free counters the worker threads bump, plus what only the
//! event loop sees (published transcripts, drops, latencies).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::audio::capture::CaptureCounters;
use crate::dsp::DspCounters;
use crate::event::DropReason;
use crate::transcribe::TranscriberCounters;

/// Locks the statistics; a panic elsewhere while holding them cannot leave
/// them inconsistent (plain counters), so a poisoned lock is used as is.
pub fn lock(stats: &std::sync::Mutex<Stats>) -> std::sync::MutexGuard<'_, Stats> {
    stats.lock().unwrap_or_else(|e| e.into_inner())
}

/// Latencies kept for the percentiles: the most recent ones, so memory is fixed.
const LATENCY_WINDOW: usize = 4096;

/// Counters shared with the worker threads (atomics only).
#[derive(Debug, Default, Clone)]
pub struct SharedCounters {
    pub capture: Arc<CaptureCounters>,
    pub dsp: Arc<DspCounters>,
    pub transcriber: Arc<TranscriberCounters>,
}

/// Everything `GetStats` reports. Written by the event loop; the D-Bus object
/// holds a clone of the `Arc<Mutex<…>>` and only copies it.
#[derive(Debug)]
pub struct Stats {
    pub shared: SharedCounters,
    pub started: Instant,
    pub transcripts: u64,
    pub dropped_deadline: u64,
    pub dropped_overload: u64,
    pub dropped_no_speech: u64,
    pub dropped_shutdown: u64,
    pub dropped_error: u64,
    latencies: VecDeque<u64>,
}

/// A point-in-time copy of the statistics, in plain numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub utterances: u64,
    pub transcripts: u64,
    pub dropped_deadline: u64,
    pub dropped_overload: u64,
    pub dropped_no_speech: u64,
    pub dropped_shutdown: u64,
    pub dropped_error: u64,
    pub frames_captured: u64,
    pub frames_lost: u64,
    pub latency_p50_ms: u64,
    pub latency_p95_ms: u64,
    pub latency_max_ms: u64,
    /// Decode time over audio time (below 1 is faster than real time).
    pub decode_rtf: f64,
    pub uptime_s: u64,
}

impl Stats {
    pub fn new(shared: SharedCounters) -> Self {
        Self {
            shared,
            started: Instant::now(),
            transcripts: 0,
            dropped_deadline: 0,
            dropped_overload: 0,
            dropped_no_speech: 0,
            dropped_shutdown: 0,
            dropped_error: 0,
            latencies: VecDeque::with_capacity(LATENCY_WINDOW),
        }
    }

    pub fn record_transcript(&mut self, latency_ms: u64) {
        self.transcripts += 1;
        if self.latencies.len() == LATENCY_WINDOW {
            self.latencies.pop_front();
        }
        self.latencies.push_back(latency_ms);
    }

    pub fn record_drop(&mut self, reason: DropReason) {
        match reason {
            DropReason::Deadline => self.dropped_deadline += 1,
            DropReason::Overload => self.dropped_overload += 1,
            DropReason::NoSpeech => self.dropped_no_speech += 1,
            DropReason::Shutdown => self.dropped_shutdown += 1,
            DropReason::Error => self.dropped_error += 1,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut sorted: Vec<u64> = self.latencies.iter().copied().collect();
        sorted.sort_unstable();
        let pct = |p: f64| -> u64 {
            if sorted.is_empty() {
                return 0;
            }
            let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[rank - 1]
        };
        let t = &self.shared.transcriber;
        let audio_ms = t.audio_ms.load(Ordering::Relaxed);
        Snapshot {
            utterances: self.shared.dsp.utterances.load(Ordering::Relaxed),
            transcripts: self.transcripts,
            dropped_deadline: self.dropped_deadline,
            dropped_overload: self.dropped_overload,
            dropped_no_speech: self.dropped_no_speech,
            dropped_shutdown: self.dropped_shutdown,
            dropped_error: self.dropped_error,
            frames_captured: self.shared.capture.frames_captured.load(Ordering::Relaxed),
            frames_lost: self.shared.capture.frames_lost.load(Ordering::Relaxed),
            latency_p50_ms: pct(0.50),
            latency_p95_ms: pct(0.95),
            latency_max_ms: sorted.last().copied().unwrap_or(0),
            decode_rtf: if audio_ms == 0 {
                0.0
            } else {
                t.decode_ms.load(Ordering::Relaxed) as f64 / audio_ms as f64
            },
            uptime_s: self.started.elapsed().as_secs(),
        }
    }
}
